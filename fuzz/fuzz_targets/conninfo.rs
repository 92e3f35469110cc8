//! libpq connection strings and URIs: never panics, whether it parses,
//! prints itself (redacted) or builds a client configuration.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // No environment: the input alone decides.
    if let Ok(info) = cdc_source::conninfo::parse_conninfo_with_env(text, |_| None) {
        let _ = info.to_string();
        let _ = info.config().get_hosts();
    }
});
