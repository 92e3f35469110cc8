//! The streaming replication frames (XLogData, keepalive): never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cdc_source::replication::fuzz_copy_data(data));
