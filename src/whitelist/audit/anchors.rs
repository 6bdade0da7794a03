//! Where the matches of a whitelist regex can begin and end in a client name.
//!
//! postgrey matches `/re/` case-insensitively and *unanchored*: a match may begin anywhere. That
//! is harmless when whatever the regex lets stand in front of its first label ends with a dot —
//! `/\.example\.com$/`, `/.*\.example\.com$/` and `/^.+\.example\.com$/` all begin their domain at
//! a label boundary, so `evilexample.com` never matches. It is unsafe when text can be glued to
//! the first label: `/example\.com$/`, `/^.*example\.com$/`, `/\bexample\.com$/` (a `-` is a word
//! boundary) all match `evilexample.com` or `evil-example.com`. At the end there is no such
//! boundary: only the end of the name is safe, `/example\.com\./` matches
//! `example.com.attacker.example`.
//!
//! The walk follows every path through the syntax tree from one edge of the pattern, keeping
//! only where it stands: at the edge of the name (after `^`), or after text a wildcard may have
//! filled (one that can or cannot contain a dot). The first character that is not a wildcard
//! decides the path: at the edge it is anchored; after a wildcard it is glued, unless it is a
//! literal dot at the start.

use regex::Regex;
use regex_syntax::ast::{AssertionKind, Ast, RepetitionKind, RepetitionRange};

/// How the matches of a pattern are bounded at one edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Every match begins (ends) at the edge of the name or at a label boundary, and some match
    /// can begin at the edge or after a label of a fixed shape.
    Safe,
    /// Every match begins right after a dot preceded by anything: the regex covers every name
    /// below a domain, not the domain itself. `rest` is where the pattern goes on after that dot.
    BelowOnly { rest: usize },
    /// Some match can have arbitrary text glued to it. `after_anchor`: a wildcard after `^`
    /// (before `$`) lets it in, rather than a missing anchor.
    Glued { after_anchor: bool },
}

/// Where the walk stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    /// At the edge of the name: `^` (or `$`, walking backwards).
    Edge,
    /// After text a wildcard may fill; `dots`: that text may contain a dot.
    Free { dots: bool, after_anchor: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Open(Pos),
    Anchored,
    /// A literal dot decided the path; `any_depth`: anything, dots included, may precede it.
    Boundary {
        any_depth: bool,
        rest: usize,
    },
    Glued {
        after_anchor: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Start,
    End,
}

/// Before the first match position postgrey tries every position: anything may precede.
const UNANCHORED: Pos = Pos::Free {
    dots: true,
    after_anchor: false,
};

/// How the matches of a (translated, parsed) pattern begin.
pub fn start(ast: &Ast) -> Anchor {
    let outcomes = close(walk(ast, UNANCHORED, Side::Start));
    if let Some(glued) = glued(&outcomes) {
        return glued;
    }
    let mut below_only = outcomes.iter().map(|o| match o {
        Outcome::Boundary {
            any_depth: true,
            rest,
        } => Some(*rest),
        _ => None,
    });
    match below_only.next().flatten() {
        Some(rest) if below_only.all(|r| r.is_some()) => Anchor::BelowOnly { rest },
        _ => Anchor::Safe,
    }
}

/// How the matches of a (translated, parsed) pattern end.
pub fn end(ast: &Ast) -> Anchor {
    glued(&close(walk(ast, UNANCHORED, Side::End))).unwrap_or(Anchor::Safe)
}

/// Paths still open when the pattern is used up end there.
fn close(outcomes: Vec<Outcome>) -> Vec<Outcome> {
    outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Open(Pos::Edge) => Outcome::Anchored,
            Outcome::Open(Pos::Free { after_anchor, .. }) => Outcome::Glued { after_anchor },
            decided => decided,
        })
        .collect()
}

/// A glued path, preferring the one without any anchor (the plainer advice).
fn glued(outcomes: &[Outcome]) -> Option<Anchor> {
    let mut found = None;
    for o in outcomes {
        if let Outcome::Glued { after_anchor } = o {
            if !after_anchor {
                return Some(Anchor::Glued {
                    after_anchor: false,
                });
            }
            found = Some(Anchor::Glued { after_anchor: true });
        }
    }
    found
}

fn push(outcomes: &mut Vec<Outcome>, o: Outcome) {
    if !outcomes.contains(&o) {
        outcomes.push(o);
    }
}

/// Every outcome of matching `ast` from `pos`, walking towards the middle from `side`.
fn walk(ast: &Ast, pos: Pos, side: Side) -> Vec<Outcome> {
    match ast {
        Ast::Empty(_) | Ast::Flags(_) => vec![Outcome::Open(pos)],
        Ast::Assertion(a) => {
            let edge = match side {
                Side::Start => {
                    matches!(a.kind, AssertionKind::StartLine | AssertionKind::StartText)
                }
                Side::End => matches!(a.kind, AssertionKind::EndLine | AssertionKind::EndText),
            };
            // A word boundary is no label boundary: "-" is one too.
            vec![Outcome::Open(if edge { Pos::Edge } else { pos })]
        }
        Ast::Group(g) => walk(&g.ast, pos, side),
        Ast::Alternation(a) => {
            let mut out = Vec::new();
            for branch in &a.asts {
                for o in walk(branch, pos, side) {
                    push(&mut out, o);
                }
            }
            out
        }
        Ast::Concat(c) => {
            let mut states = vec![Outcome::Open(pos)];
            let items: Box<dyn Iterator<Item = &Ast>> = match side {
                Side::Start => Box::new(c.asts.iter()),
                Side::End => Box::new(c.asts.iter().rev()),
            };
            for item in items {
                let mut next = Vec::new();
                for state in states {
                    match state {
                        Outcome::Open(p) => {
                            for o in walk(item, p, side) {
                                push(&mut next, o);
                            }
                        }
                        decided => push(&mut next, decided),
                    }
                }
                states = next;
            }
            states
        }
        Ast::Repetition(r) => {
            let (min, max) = bounds(&r.op.kind);
            let mut out = Vec::new();
            if min == 0 {
                push(&mut out, Outcome::Open(pos));
            }
            if max == Some(0) {
                return out;
            }
            // One pass, then more while they reach new places (there are only five).
            let mut seen = vec![pos];
            let mut frontier = vec![pos];
            while let Some(from) = frontier.pop() {
                let pass = match &*r.ast {
                    // Repeated, `.` is the wildcard it was meant to be.
                    atom @ (Ast::Dot(_)
                    | Ast::Literal(_)
                    | Ast::ClassBracketed(_)
                    | Ast::ClassPerl(_)
                    | Ast::ClassUnicode(_)) => one_char(&host_chars(atom), atom, from, side)
                        .into_iter()
                        .collect(),
                    group => walk(group, from, side),
                };
                for o in pass {
                    if let Outcome::Open(p) = o
                        && max != Some(1)
                        && !seen.contains(&p)
                    {
                        seen.push(p);
                        frontier.push(p);
                    }
                    push(&mut out, o);
                }
            }
            out
        }
        // A lone `.` is read as the dot it was meant to be: the audit reports it on its own, and
        // the advice on anchors is then the advice for the regex as meant.
        Ast::Dot(_) => one_char(".", ast, pos, side).into_iter().collect(),
        single => one_char(&host_chars(single), single, pos, side)
            .into_iter()
            .collect(),
    }
}

fn bounds(kind: &RepetitionKind) -> (u32, Option<u32>) {
    match kind {
        RepetitionKind::ZeroOrOne => (0, Some(1)),
        RepetitionKind::ZeroOrMore => (0, None),
        RepetitionKind::OneOrMore => (1, None),
        RepetitionKind::Range(RepetitionRange::Exactly(n)) => (*n, Some(*n)),
        RepetitionKind::Range(RepetitionRange::AtLeast(n)) => (*n, None),
        RepetitionKind::Range(RepetitionRange::Bounded(m, n)) => (*m, Some(*n)),
    }
}

/// The characters postfix can pass in a verified client name.
const HOST_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789-_.";

/// A literal, `.` or a class: one character of the name, one of `chars`. None: no name goes
/// this way.
fn one_char(chars: &str, ast: &Ast, pos: Pos, side: Side) -> Option<Outcome> {
    let dot_only = chars == ".";
    // Two or more characters: a wildcard, which fills text without deciding anything.
    if chars.chars().count() > 1 {
        let dots = chars.contains('.');
        return Some(Outcome::Open(match pos {
            Pos::Edge => Pos::Free {
                dots,
                after_anchor: true,
            },
            Pos::Free {
                dots: before,
                after_anchor,
            } => Pos::Free {
                dots: before || dots,
                after_anchor,
            },
        }));
    }
    Some(match (pos, side) {
        // Client names neither begin nor end with a dot.
        (Pos::Edge, _) if dot_only => return None,
        (Pos::Edge, _) => Outcome::Anchored,
        (Pos::Free { dots, .. }, Side::Start) if dot_only => Outcome::Boundary {
            any_depth: dots,
            rest: ast.span().end.offset,
        },
        (Pos::Free { after_anchor, .. }, _) => Outcome::Glued { after_anchor },
    })
}

/// The host name characters one character of the pattern matches, case-insensitively.
fn host_chars(ast: &Ast) -> String {
    match ast {
        Ast::Literal(l) => {
            let c = l.c.to_ascii_lowercase();
            if HOST_CHARS.contains(c) {
                c.to_string()
            } else {
                String::new()
            }
        }
        Ast::Dot(_) => HOST_CHARS.to_string(),
        class => match Regex::new(&format!("^(?i:{class})$")) {
            Ok(re) => HOST_CHARS
                .chars()
                .filter(|c| re.is_match(c.encode_utf8(&mut [0; 4])))
                .collect(),
            // Cannot tell: the widest reading, a wildcard.
            Err(_) => HOST_CHARS.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whitelist::perl_regex;

    fn both(perl: &str) -> (Anchor, Anchor) {
        let rust = perl_regex::translate(perl).unwrap();
        let ast = perl_regex::parse(&rust).unwrap();
        (start(&ast), end(&ast))
    }

    #[test]
    fn label_boundaries_at_the_start() {
        let glued = Anchor::Glued {
            after_anchor: false,
        };
        let wildcard = Anchor::Glued { after_anchor: true };
        let cases = [
            (r"^x\.com$", Anchor::Safe),
            (r"(^|\.)x\.com$", Anchor::Safe),
            (r"^(.*\.)?x\.com$", Anchor::Safe),
            (r"^[a-z]+\.x\.com$", Anchor::Safe),
            (r"\.x\.com$", Anchor::BelowOnly { rest: 2 }),
            (r".*\.x\.com$", Anchor::BelowOnly { rest: 4 }),
            (r"^.+\.x\.com$", Anchor::BelowOnly { rest: 5 }),
            (r"x\.com$", glued),
            (r"(.*\.)?x\.com$", glued),
            (r"\bx\.com$", glued),
            (r"^.*x\.com$", wildcard),
            (r"^[a-z]*x\.com$", wildcard),
        ];
        for (perl, expected) in cases {
            assert_eq!(both(perl).0, expected, "{perl}");
        }
    }

    #[test]
    fn only_the_end_of_the_name_is_safe_at_the_end() {
        assert_eq!(both(r"^x\.com$").1, Anchor::Safe);
        assert_eq!(
            both(r"^x\.com(\.|$)").1,
            Anchor::Glued {
                after_anchor: false
            }
        );
        assert_eq!(both(r"^x\.com.*$").1, Anchor::Glued { after_anchor: true });
        assert_eq!(
            both(r"^x\.com").1,
            Anchor::Glued {
                after_anchor: false
            }
        );
    }
}
