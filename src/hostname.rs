//! The syntax of the ASCII host names Postfix logs as `client_name`: labels of 1–63 letters,
//! digits, `-` or `_` (Postfix tolerates the underscore that real reverse DNS contains), no
//! hyphen at either end of a label, no empty label, at most 253 bytes, and a last label that is
//! not all digits (an IPv4 literal is never a name: no top-level domain is numeric).
//!
//! Every postgrey line names its client, and the name is checked where it is parsed and again
//! where it is grouped: one pass over the bytes with a table, no splitting and no allocation.

/// Longest DNS name in text form, without the trailing dot (RFC 1035).
pub const MAX_NAME_BYTES: usize = 253;
/// Longest DNS label (RFC 1035).
pub const MAX_LABEL_BYTES: usize = 63;

const DIGIT: u8 = 1;
const UPPER: u8 = 2;
const DOT: u8 = 4;
const NOT_IN_NAME: u8 = 8;

/// What each byte is in a name.
static CLASS: [u8; 256] = {
    let mut class = [NOT_IN_NAME; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        if b.is_ascii_digit() {
            class[byte] = DIGIT;
        } else if b.is_ascii_uppercase() {
            class[byte] = UPPER;
        } else if b.is_ascii_lowercase() || b == b'-' || b == b'_' {
            class[byte] = 0;
        } else if b == b'.' {
            class[byte] = DOT;
        }
        byte += 1;
    }
    class
};

/// A name that passed [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Whether it has upper-case letters, which a normalised name has not.
    pub has_upper: bool,
}

/// Whether `name` (without a trailing dot) is an ASCII host name as described above.
pub fn check(name: &[u8]) -> Option<Checked> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return None;
    }
    // The bytes first, all of them without a branch; then each label's ends and length.
    let seen = name
        .iter()
        .fold(0, |seen, &byte| seen | CLASS[usize::from(byte)]);
    if seen & NOT_IN_NAME != 0 {
        return None;
    }
    let mut last = name;
    if seen & DOT != 0 {
        for label in name.split(|&byte| byte == b'.') {
            if !is_label(label) {
                return None;
            }
            last = label;
        }
    } else if !is_label(name) {
        return None;
    }
    if last.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(Checked {
        has_upper: seen & UPPER != 0,
    })
}

/// Whether `label`, of bytes a name may hold, is a label: its length, and no hyphen at either
/// end.
fn is_label(label: &[u8]) -> bool {
    matches!(label, [first, .., last] | [first @ last] if *first != b'-' && *last != b'-')
        && label.len() <= MAX_LABEL_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass_and_tell_their_case() {
        let lower = Some(Checked { has_upper: false });
        let upper = Some(Checked { has_upper: true });
        assert_eq!(check(b"mail.example.com"), lower);
        assert_eq!(check(b"a0-1_b.smtp-out.amazonses.com"), lower);
        assert_eq!(check(b"localhost"), lower);
        assert_eq!(check(b"Mail.Example.COM"), upper);
        assert_eq!(check(b"1.2.3.com"), lower);
    }

    #[test]
    fn malformed_names_fail() {
        for bad in [
            &b""[..],
            b".",
            b"a..b",
            b".example.com",
            b"example.com.",
            b"-a.example.com",
            b"a-.example.com",
            b"a.example-",
            b"a b.example.com",
            b"mail.example.com\n",
            b"192.0.2.1",
            b"host.123",
            "caf\u{e9}.example".as_bytes(),
            b"a%41.example",
        ] {
            assert_eq!(check(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn lengths_are_bounded_by_label_and_name() {
        let label = "a".repeat(MAX_LABEL_BYTES);
        assert!(check(format!("{label}.example").as_bytes()).is_some());
        assert_eq!(check(format!("a{label}.example").as_bytes()), None);
        let name = [label.as_str(); 4].join(".");
        assert_eq!(name.len(), MAX_NAME_BYTES + 2);
        assert_eq!(check(name.as_bytes()), None);
        assert!(check(&name.as_bytes()[2..]).is_some());
    }
}
