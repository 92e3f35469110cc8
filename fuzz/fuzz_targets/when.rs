//! The WHEN parser: never panics, and what parses prints as a form that
//! parses to the same moment.
#![no_main]
use std::str::FromStr;

use materializer::When;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(when) = When::from_str(text) {
        let again = When::from_str(&when.to_string());
        assert_eq!(again.as_ref().ok(), Some(&when), "{text:?} printed as {when}");
    }
});
