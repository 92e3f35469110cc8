//! The pgoutput decoder: never panics, and every message it accepts
//! re-encodes to the same bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cdc_source::pgoutput::fuzz_parse(data));
