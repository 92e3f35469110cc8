//! A JSON writer for what is written once per row change (the envelope
//! and the key): byte for byte what `serde_json` writes for the same
//! values, but scanning strings for escapes a block at a time and writing
//! field names as constants. Everything written more rarely goes through
//! `serde_json`.

/// Bytes scanned at once for a byte that needs escaping.
const BLOCK: usize = 16;

/// Appends `s` as a JSON string, escaped exactly as `serde_json` escapes:
/// `"`, `\` and control characters only.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut rest = s.as_bytes();
    loop {
        let clean = clean_prefix(rest);
        let (plain, tail) = rest.split_at(clean);
        out.extend_from_slice(plain);
        let Some((&b, tail)) = tail.split_first() else {
            break;
        };
        escape(out, b);
        rest = tail;
    }
    out.push(b'"');
}

/// The length of the prefix of `bytes` that needs no escaping.
fn clean_prefix(bytes: &[u8]) -> usize {
    let mut n = 0;
    let mut blocks = bytes.chunks_exact(BLOCK);
    // A whole block at a time without branching per byte, which the
    // compiler turns into vector compares.
    for block in blocks.by_ref() {
        if block.iter().fold(false, |dirty, &b| dirty | needs_escape(b)) {
            break;
        }
        n += BLOCK;
    }
    n + bytes
        .get(n..)
        .unwrap_or_default()
        .iter()
        .position(|&b| needs_escape(b))
        .unwrap_or(bytes.len() - n)
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn escape(out: &mut Vec<u8>, b: u8) {
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let digit = |d: u8| HEX.get(usize::from(d)).copied().unwrap_or(b'0');
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', digit(b >> 4), digit(b & 0xf)]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// Appends an unsigned integer.
pub(crate) fn uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a signed integer.
pub(crate) fn int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, s);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn escapes_as_serde_json_does() {
        for s in [
            "",
            "plain",
            "\"",
            "\\",
            "a\u{0}b\u{1f}c\u{7f}",
            "\u{8}\u{c}\n\r\t/",
            "é ü 日本 🦀",
            "0123456789abcdef\"0123456789abcdef\n",
        ] {
            assert_eq!(ours(s), serde_json::to_string(s).expect("serializes"), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn any_string_escapes_as_serde_json_does(s in any::<String>(), pad in 0usize..40) {
            let s = format!("{}{s}", "x".repeat(pad));
            prop_assert_eq!(ours(&s), serde_json::to_string(&s).expect("serializes"));
        }

        #[test]
        fn integers_write_as_serde_json_does(u in any::<u64>(), i in any::<i64>()) {
            let mut out = Vec::new();
            uint(&mut out, u);
            out.push(b' ');
            int(&mut out, i);
            prop_assert_eq!(String::from_utf8(out).expect("UTF-8"), format!("{u} {i}"));
        }
    }
}
