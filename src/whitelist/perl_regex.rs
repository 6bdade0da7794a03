//! postgrey compiles each `/re/` line with Perl's `qr{re}i`; this carries such a pattern over to
//! the `regex` crate, or says precisely why it cannot.
//!
//! The two dialects agree on everything a whitelist normally uses. Where they differ:
//! - Perl features with no equivalent here (lookaround, backreferences, atomic groups, possessive
//!   quantifiers, recursion, `\K`, …) are refused as [`Refusal::PerlOnly`]: postgrey uses such a
//!   line, postgrey-advisor cannot evaluate it.
//! - Patterns perl cannot compile either (an unclosed group, …) are [`Refusal::InvalidInPerl`]:
//!   postgrey dies when it reads the file.
//! - A few spellings mean different things and are rewritten: `\Z` (the same as `\z` for a client
//!   name, which never ends in a newline), `\<` `\>` (plain characters in Perl, word boundaries in
//!   the `regex` crate), a `{` or `}` that is not a quantifier (a plain character in Perl), a `[`
//!   inside a class (plain in Perl, a nested class here), `(?'name'…)`, and Perl's charset flags
//!   `a d l u p n`, which change nothing for ASCII host names.
//!
//! Case-insensitive Unicode matching (`regex`) and Perl's byte semantics agree on client names,
//! because postfix only passes verified names made of ASCII letters, digits, `-`, `_` and `.`.

use regex::{Regex, RegexBuilder};
use regex_syntax::ast::{self, Ast};

/// Why a pattern is not compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// perl refuses it too: postgrey stops with an error when it reads the file.
    InvalidInPerl(String),
    /// A Perl feature the `regex` crate does not have.
    PerlOnly(String),
    /// The `regex` crate rejects it for another reason; perl may accept it.
    Untranslatable(String),
}

/// Compiles a pattern the way postgrey does (case-insensitive, unanchored).
pub fn compile(perl: &str) -> Result<Regex, Refusal> {
    let translated = translate(perl)?;
    // The syntax tree tells apart what perl refuses too; the regex crate's errors do not.
    parse(&translated)?;
    RegexBuilder::new(&translated)
        .case_insensitive(true)
        .build()
        .map_err(|e| Refusal::Untranslatable(last_line(&e.to_string())))
}

/// The syntax tree of a translated pattern (the audit inspects it).
pub fn parse(translated: &str) -> Result<Ast, Refusal> {
    ast::parse::Parser::new()
        .parse(translated)
        .map_err(|e| classify(e.kind()))
}

/// The `regex` crate's multi-line syntax errors end with the one line that says what is wrong.
fn last_line(message: &str) -> String {
    let line = message.lines().last().unwrap_or(message).trim();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

fn classify(kind: &ast::ErrorKind) -> Refusal {
    use ast::ErrorKind as K;
    let invalid = |what: &str| Refusal::InvalidInPerl(what.to_string());
    match kind {
        K::GroupUnclosed => invalid("an unclosed group"),
        K::GroupUnopened => invalid("an unopened group: a ')' without '('"),
        K::ClassUnclosed => invalid("an unclosed character class"),
        K::EscapeUnexpectedEof => invalid("a trailing backslash"),
        K::ClassRangeInvalid => invalid("a character range whose start is after its end"),
        K::RepetitionMissing => invalid("a quantifier that follows nothing"),
        K::UnsupportedLookAround => Refusal::PerlOnly("a lookahead or lookbehind".to_string()),
        K::UnsupportedBackreference => Refusal::PerlOnly("a backreference".to_string()),
        other => Refusal::Untranslatable(other.to_string()),
    }
}

fn perl_only(what: &str) -> Refusal {
    Refusal::PerlOnly(what.to_string())
}

/// Rewrites a Perl pattern into the `regex` crate's syntax (see the module docs).
pub fn translate(perl: &str) -> Result<String, Refusal> {
    let chars: Vec<char> = perl.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut out = String::with_capacity(perl.len() + 8);
    let mut i = 0;
    let mut last = Last::Other;
    while let Some(c) = at(i) {
        match c {
            '\\' => {
                last = Last::Other;
                let Some(next) = at(i + 1) else {
                    out.push('\\');
                    i += 1;
                    continue;
                };
                i += 2;
                match next {
                    '1'..='9' | 'g' | 'k' => return Err(perl_only("a backreference")),
                    'K' => return Err(perl_only("\\K (keep the left part out of the match)")),
                    'G' => return Err(perl_only("\\G (the end of the previous match)")),
                    'h' | 'H' | 'v' | 'V' | 'R' | 'X' | 'N' | 'C' | 'o' | 'c' => {
                        return Err(Refusal::PerlOnly(format!("the Perl escape \\{next}")));
                    }
                    'b' | 'B' if at(i) == Some('{') => {
                        return Err(Refusal::PerlOnly(format!(
                            "the Perl boundary \\{next}{{…}}"
                        )));
                    }
                    'Z' => out.push_str("\\z"),
                    'e' => out.push_str("\\x1B"),
                    '<' | '>' => out.push(next),
                    _ => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            '[' => {
                last = Last::Other;
                i = copy_class(&chars, i, &mut out)?;
            }
            '(' => {
                last = Last::Other;
                i = open_group(&chars, i, &mut out)?;
            }
            '*' | '+' | '?' => {
                last = match (last, c) {
                    (Last::Other, _) => Last::Quantifier,
                    (Last::Quantifier, '?') => Last::Modified,
                    (Last::Quantifier, '+') => return Err(perl_only("a possessive quantifier")),
                    _ => return Err(nested_quantifiers()),
                };
                out.push(c);
                i += 1;
            }
            '{' => match quantifier_end(&chars, i) {
                Some(end) => {
                    if last != Last::Other {
                        return Err(nested_quantifiers());
                    }
                    out.extend(&chars[i..end]);
                    last = Last::Quantifier;
                    i = end;
                }
                None => {
                    // Perl reads a brace that does not start a quantifier as itself.
                    out.push_str("\\{");
                    last = Last::Other;
                    i += 1;
                }
            },
            '}' => {
                out.push_str("\\}");
                last = Last::Other;
                i += 1;
            }
            _ => {
                out.push(c);
                last = Last::Other;
                i += 1;
            }
        }
    }
    Ok(out)
}

/// What the previous token was, for the quantifier that may follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    Other,
    /// `*`, `+`, `?`, `{n,m}`: a `?` may make it lazy, a `+` possessive.
    Quantifier,
    /// A quantifier made lazy: nothing may follow.
    Modified,
}

fn nested_quantifiers() -> Refusal {
    Refusal::InvalidInPerl("nested quantifiers".to_string())
}

/// `{n}`, `{n,}`, `{n,m}` or `{,m}` starting at `start`: the index after its `}`.
fn quantifier_end(chars: &[char], start: usize) -> Option<usize> {
    let close = start + chars[start..].iter().position(|&c| c == '}')?;
    let inside: String = chars[start + 1..close].iter().collect();
    let (low, high) = match inside.split_once(',') {
        Some((low, high)) => (low, Some(high)),
        None => (inside.as_str(), None),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let valid = match high {
        None => !low.is_empty() && digits(low),
        Some(high) => digits(low) && digits(high) && !(low.is_empty() && high.is_empty()),
    };
    valid.then_some(close + 1)
}

/// Copies a bracketed class starting at `start` (a `[`); returns the index after it.
fn copy_class(chars: &[char], start: usize, out: &mut String) -> Result<usize, Refusal> {
    let mut i = start + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` first in the class is a member, in both dialects.
    if chars.get(i) == Some(&']') {
        out.push_str("\\]");
        i += 1;
    }
    while let Some(&c) = chars.get(i) {
        match c {
            ']' => {
                out.push(']');
                return Ok(i + 1);
            }
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    out.push('\\');
                    return Ok(i + 1);
                };
                if matches!(next, 'h' | 'H' | 'v' | 'V' | 'N' | 'o' | 'c' | 'g' | 'k') {
                    return Err(Refusal::PerlOnly(format!("the Perl escape \\{next}")));
                }
                match next {
                    'e' => out.push_str("\\x1B"),
                    _ => {
                        out.push('\\');
                        out.push(next);
                    }
                }
                i += 2;
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                // A POSIX class such as [:alpha:], written the same in both dialects.
                let rest: String = chars[i..].iter().collect();
                match rest.find(":]") {
                    Some(end) => {
                        out.push_str(&rest[..end + 2]);
                        i += rest[..end + 2].chars().count();
                    }
                    None => {
                        out.push_str("\\[");
                        i += 1;
                    }
                }
            }
            // Plain members in Perl; nesting and set operators in the `regex` crate.
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Unclosed: left for the parser to report.
    Ok(i)
}

/// Handles `(` at `start` and what follows it up to the group's content; returns the next index.
fn open_group(chars: &[char], start: usize, out: &mut String) -> Result<usize, Refusal> {
    let at = |k: usize| chars.get(start + k).copied();
    match (at(1), at(2)) {
        (Some('*'), Some(c)) if c.is_ascii_uppercase() || c == ':' => {
            Err(perl_only("a backtracking control verb such as (*FAIL)"))
        }
        (Some('?'), Some(c)) => match c {
            '=' | '!' => Err(perl_only("a lookahead or lookbehind")),
            '<' if matches!(at(3), Some('=' | '!')) => Err(perl_only("a lookahead or lookbehind")),
            '>' => Err(perl_only("an atomic group (?>…)")),
            '|' => Err(perl_only("a branch reset group (?|…)")),
            '(' => Err(perl_only("a conditional group (?(…)…)")),
            'R' | '&' | '0'..='9' | '+' => Err(perl_only("a recursive pattern")),
            '-' if at(3).is_some_and(|d| d.is_ascii_digit()) => {
                Err(perl_only("a recursive pattern"))
            }
            'P' if matches!(at(3), Some('>' | '=')) => Err(perl_only("a named backreference")),
            // Named groups (?<name>…) and (?P<name>…), written the same in both dialects.
            '<' => {
                out.push_str("(?<");
                Ok(start + 3)
            }
            'P' if at(3) == Some('<') => {
                out.push_str("(?P<");
                Ok(start + 4)
            }
            '{' | '?' => Err(Refusal::InvalidInPerl(
                "code in a regex, which perl refuses at run time".to_string(),
            )),
            '^' => Err(perl_only("the flag reset (?^…)")),
            '\'' => {
                // (?'name'…) is (?<name>…) here.
                let rest = &chars[start + 3..];
                match rest.iter().position(|&q| q == '\'') {
                    Some(end) => {
                        out.push_str("(?<");
                        out.extend(&rest[..end]);
                        out.push('>');
                        Ok(start + 3 + end + 1)
                    }
                    None => {
                        out.push_str("(?'");
                        Ok(start + 3)
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '-' || c == ':' || c == ')' => {
                flag_group(chars, start, out)
            }
            _ => {
                out.push('(');
                Ok(start + 1)
            }
        },
        _ => {
            out.push('(');
            Ok(start + 1)
        }
    }
}

/// `(?flags)` or `(?flags:` at `start`: keeps the flags both dialects share, drops Perl's charset
/// flags, refuses what perl does not know.
fn flag_group(chars: &[char], start: usize, out: &mut String) -> Result<usize, Refusal> {
    let mut on = String::new();
    let mut off = String::new();
    let mut negated = false;
    let mut i = start + 2;
    loop {
        let Some(&c) = chars.get(i) else {
            out.push_str("(?");
            return Ok(start + 2);
        };
        match c {
            'i' | 'm' | 's' | 'x' => {
                if negated {
                    off.push(c)
                } else {
                    on.push(c)
                }
            }
            // Charset and capture flags (and `g c o`, which perl only warns about): no effect
            // on which host names match.
            'a' | 'd' | 'l' | 'u' | 'p' | 'n' | 'g' | 'c' | 'o' => {}
            '-' => negated = true,
            ')' | ':' => {
                if on.is_empty() && off.is_empty() {
                    if c == ':' {
                        out.push_str("(?:");
                    }
                } else {
                    out.push_str("(?");
                    out.push_str(&on);
                    if !off.is_empty() {
                        out.push('-');
                        out.push_str(&off);
                    }
                    out.push(c);
                }
                return Ok(i + 1);
            }
            other => {
                return Err(Refusal::InvalidInPerl(format!(
                    "the unknown flag {other:?} in (?…)"
                )));
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(p: &str) -> Refusal {
        match compile(p) {
            Ok(_) => panic!("{p} compiled"),
            Err(r) => r,
        }
    }

    #[test]
    fn plain_patterns_pass_through() {
        for p in [
            r"^mail\d+\.telekom\.de$",
            r"^(?:smtp\w*|postfix)[0-9]+-g[0-9]+\.free\.fr$",
            r"^.*?.server.arvato-systems.de$",
            r"^s[cv]\d+pub\.verizon\.net$",
            r"(?i)^A{2,3}b{,2}$",
        ] {
            assert_eq!(translate(p), Ok(p.to_string()));
        }
    }

    #[test]
    fn rewrites_spellings_that_differ() {
        assert_eq!(translate(r"foo\Z"), Ok(r"foo\z".into()));
        assert_eq!(translate(r"\<a\>"), Ok("<a>".into()));
        assert_eq!(translate("a{b}"), Ok(r"a\{b\}".into()));
        assert_eq!(translate("[a[b]"), Ok(r"[a\[b]".into()));
        assert_eq!(translate("[]a]"), Ok(r"[\]a]".into()));
        assert_eq!(translate("[[:digit:]&]"), Ok(r"[[:digit:]\&]".into()));
        assert_eq!(translate("(?'n'x)"), Ok("(?<n>x)".into()));
        assert_eq!(translate("(?aa)x"), Ok("x".into()));
        assert_eq!(translate("(?ai-u:x)"), Ok("(?i:x)".into()));
        assert_eq!(translate("(?a:x)"), Ok("(?:x)".into()));
        assert_eq!(translate("(?<n>x)(?P<m>y)"), Ok("(?<n>x)(?P<m>y)".into()));
    }

    #[test]
    fn lazy_is_not_possessive() {
        assert_eq!(translate("a+?b*?c??"), Ok("a+?b*?c??".into()));
        assert_eq!(translate("a?+"), Err(perl_only("a possessive quantifier")));
        assert_eq!(
            translate("a{2}+"),
            Err(perl_only("a possessive quantifier"))
        );
    }

    #[test]
    fn perl_only_features_are_named() {
        let lookaround = perl_only("a lookahead or lookbehind");
        assert_eq!(refusal("(?<=foo)bar"), lookaround);
        assert_eq!(refusal("(?<!foo)bar"), lookaround);
        assert_eq!(refusal("foo(?=bar)"), lookaround);
        assert_eq!(refusal("foo(?!bar)"), lookaround);
        assert_eq!(refusal(r"(a)\1"), perl_only("a backreference"));
        assert_eq!(refusal(r"(?<n>a)\k<n>"), perl_only("a backreference"));
        assert_eq!(refusal("(?>a+)b"), perl_only("an atomic group (?>…)"));
        assert_eq!(refusal("a++"), perl_only("a possessive quantifier"));
        assert_eq!(refusal("(?R)"), perl_only("a recursive pattern"));
        assert_eq!(
            refusal("a(*FAIL)"),
            perl_only("a backtracking control verb such as (*FAIL)")
        );
        assert_eq!(
            refusal(r"foo\Kbar"),
            perl_only("\\K (keep the left part out of the match)")
        );
        assert_eq!(refusal(r"a\hb"), perl_only("the Perl escape \\h"));
    }

    #[test]
    fn what_perl_refuses_too() {
        let invalid = |s: &str| Refusal::InvalidInPerl(s.to_string());
        assert_eq!(refusal("foo("), invalid("an unclosed group"));
        assert_eq!(
            refusal("foo)"),
            invalid("an unopened group: a ')' without '('")
        );
        assert_eq!(refusal("[abc"), invalid("an unclosed character class"));
        assert_eq!(refusal("foo\\"), invalid("a trailing backslash"));
        assert_eq!(
            refusal("[z-a]"),
            invalid("a character range whose start is after its end")
        );
        assert_eq!(
            refusal("*foo"),
            invalid("a quantifier that follows nothing")
        );
        assert_eq!(refusal("a**"), invalid("nested quantifiers"));
        assert_eq!(refusal("a*{2}"), invalid("nested quantifiers"));
        assert_eq!(refusal("a*?+"), invalid("nested quantifiers"));
        assert_eq!(refusal("(?U)a"), invalid("the unknown flag 'U' in (?…)"));
        assert_eq!(
            refusal("(?{ 1 })"),
            invalid("code in a regex, which perl refuses at run time")
        );
    }

    #[test]
    fn escaped_punctuation_is_literal() {
        let regex = compile(r"^a\/b\_c\-d\.e$").expect("compiles");
        assert!(regex.is_match("a/b_c-d.e"));
        let regex = compile(r"^(?<n>x)(?P<m>y)$").expect("compiles");
        assert!(regex.is_match("XY"));
    }

    #[test]
    fn compiled_is_case_insensitive_and_unanchored() {
        let regex = compile(r"mail\d+\.example").expect("compiles");
        assert!(regex.is_match("X.MAIL12.Example.com"));
        assert!(!regex.is_match("mail.example"));
    }
}
