//! Every key decoder of the store: never panics on bytes a damaged store
//! could hold, and a decoded key encodes back to the same bytes.
#![no_main]
use changelog::keys;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(lsn) = keys::decode_lsn(data) {
        assert_eq!(keys::encode_lsn(lsn).as_slice(), data);
    }
    let _ = keys::decode_time_key(data);
    let _ = keys::decode_log_key(data);
    let _ = keys::decode_table_key(data);
    let _ = keys::decode_reset_key(data);
    let _ = keys::split_version_key(data);
});
