//! Every value decoder of the store (version values, `latest` values,
//! rows): never panics on bytes a damaged store could hold.
#![no_main]
use changelog::codec;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_version_head(data);
    let _ = codec::decode_version_owned(data);
    let _ = codec::decode_latest(data);
    let mut pos = 0;
    let _ = codec::decode_row_owned(data, &mut pos);
    let mut pos = 0;
    let mut out = Vec::new();
    let _ = codec::decode_row_into(data, &mut pos, &mut out);
});
