//! Text that came from a log is attacker-controlled (a client name is whatever the sender's
//! DNS says, within what the parser accepts; whitelist and ignore files, file names and a
//! summary file may hold anything). Everything printed passes through one of these escapers
//! for its sink.
//!
//! Control characters are not the only danger: Unicode has characters that print nothing or
//! reorder what follows. A right-to-left override (U+202E) makes `moc.elgoog.evil` read as
//! `evil.google.com`; a zero-width space makes two different names look the same. Such
//! characters never belong in a host name, so they are shown as escapes too.

use std::fmt::Write;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` must not reach a reader as itself: controls (C0, DEL, C1), format characters
/// (bidi embeddings, overrides and isolates, zero-width space and joiners, the byte order mark,
/// soft hyphen, tag characters), line and paragraph separators, private-use and unassigned
/// code points, and the rest of Unicode's default-ignorable code points (variation selectors
/// and the fillers that render as blank).
pub fn is_hidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::Surrogate
    ) || matches!(
        c,
        // Default_Ignorable_Code_Point (DerivedCoreProperties.txt) outside category Cf.
        '\u{034F}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// For terminals and plain text (tables, mail bodies, journal fields): control characters
/// become `\xNN`, other hidden characters ([`is_hidden`]) `\u{NNNN}`, a backslash is doubled,
/// so nothing can move the cursor, start an escape sequence, forge a line or disguise a name.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_hidden(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// For text the reader may copy back into a file, such as a whitelist line quoted by `audit`:
/// hidden characters become `\u{NNNN}` as in [`printable`], but backslashes stay single, so
/// that a quoted regex reads as it is written.
pub fn with_hidden_shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hidden(c) {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        } else {
            out.push(c);
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

    #[test]
    fn invisible_and_reordering_characters_are_escaped() {
        assert_eq!(
            printable("moc.elgoog\u{202e}.evil"),
            "moc.elgoog\\u{202e}.evil"
        );
        assert_eq!(printable("a\u{200b}b\u{200d}c"), "a\\u{200b}b\\u{200d}c");
        assert_eq!(printable("\u{feff}bom"), "\\u{feff}bom");
        assert_eq!(printable("x\u{2066}y\u{2069}"), "x\\u{2066}y\\u{2069}");
        assert_eq!(printable("line\u{2028}sep"), "line\\u{2028}sep");
        assert_eq!(printable("tag\u{e0041}"), "tag\\u{e0041}");
        assert_eq!(printable("vs\u{fe0f}"), "vs\\u{fe0f}");
        assert_eq!(printable("fill\u{3164}er"), "fill\\u{3164}er");
        assert_eq!(printable("pua\u{e000}"), "pua\\u{e000}");
        assert_eq!(printable("soft\u{ad}hyphen"), "soft\\u{00ad}hyphen");
        assert_eq!(
            with_hidden_shown("/(^|\\.)x\\.com$/\u{202e}\n"),
            "/(^|\\.)x\\.com$/\\u{202e}\\u{000a}"
        );
        // Visible non-ASCII text stays as it is.
        assert_eq!(printable("Ünïcödé ✓ 日本"), "Ünïcödé ✓ 日本");
    }
}
