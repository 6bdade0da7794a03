//! Text that came from a log is attacker-controlled (a client name is whatever the sender's
//! DNS says, within what the parser accepts). Everything printed passes through one of these
//! escapers for its sink.

use std::fmt::Write;

/// For terminals and plain text (tables, mail bodies, Nagios output): control characters
/// (C0, DEL, C1) become `\xNN` / `\u{NNNN}`, a backslash is doubled, so nothing can move the
/// cursor, start an escape sequence or forge a line.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\r\nb"), "a\\x0d\\x0ab");
        assert_eq!(printable("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(printable("x\u{85}y"), "x\\u{0085}y");
        assert_eq!(printable("back\\slash"), "back\\\\slash");
        assert_eq!(printable("jürgen.example"), "jürgen.example");
    }
}
