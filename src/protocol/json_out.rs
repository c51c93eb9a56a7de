//! Writing JSON values by hand into a byte buffer, for the few fixed shapes
//! on the hot path (frames), where serde's generic serializer cost more
//! than the work itself.
//!
//! Invariant: [`write_str`] produces exactly the JSON string serde_json
//! would (same escapes), so what it writes parses back to the same text.

/// Appends `value` in decimal.
pub fn write_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends `text` as a quoted JSON string, escaping `"`, `\` and control
/// characters; copies it whole when nothing needs escaping (the usual case).
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    if !text.bytes().any(needs_escape) {
        out.extend_from_slice(text.as_bytes());
    } else {
        for byte in text.bytes() {
            match byte {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                byte if byte < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(byte >> 4)]);
                    out.push(HEX[usize::from(byte & 0xf)]);
                }
                byte => out.push(byte),
            }
        }
    }
    out.push(b'"');
}

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_match_serde_json() {
        let cases = [
            "",
            "plain /v1/messages",
            "quote \" back \\ slash",
            "\n\r\t\u{8}\u{c}\u{1}\u{1f}",
            "ünï €",
            "\u{7f}",
        ];
        for text in cases {
            let mut out = Vec::new();
            write_str(&mut out, text);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(text).unwrap());
        }
    }

    #[test]
    fn numbers_are_decimal() {
        for value in [0, 7, 1_000_000, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, value);
            assert_eq!(out, value.to_string().into_bytes());
        }
    }
}
