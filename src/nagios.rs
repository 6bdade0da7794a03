//! Monitoring Plugins conventions: threshold ranges, states, and the output line.
//!
//! A range `[@]start:end` describes when to alert, per the Monitoring Plugins development
//! guidelines: `10` alerts outside 0..10, `10:` below 10, `~:10` above 10, `10:20` outside
//! 10..20, and `@10:20` inside 10..20 (inclusive). The first output line is
//! `SERVICE STATE - text | perfdata`; further lines are long output.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl State {
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        })
    }
}

/// A threshold range.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// `None`: negative infinity (`~`).
    pub start: Option<f64>,
    /// `None`: positive infinity (empty end).
    pub end: Option<f64>,
    /// `@`: alert inside the range instead of outside.
    pub inside: bool,
    /// As given, for the perfdata.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid range {0:?} (forms: 10, 10:, ~:10, 10:20, @10:20)")]
pub struct RangeError(pub String);

fn number(text: &str, whole: &str) -> Result<f64, RangeError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| RangeError(whole.to_owned()))
}

impl Range {
    pub fn parse(text: &str) -> Result<Range, RangeError> {
        let trimmed = text.trim();
        let (inside, body) = match trimmed.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        if body.is_empty() {
            return Err(RangeError(text.to_owned()));
        }
        let (start, end) = match body.split_once(':') {
            None => (Some(0.0), Some(number(body, text)?)),
            Some((s, e)) => {
                let start = match s {
                    "~" => None,
                    "" => Some(0.0),
                    s => Some(number(s, text)?),
                };
                let end = if e.is_empty() {
                    None
                } else {
                    Some(number(e, text)?)
                };
                (start, end)
            }
        };
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(RangeError(text.to_owned()));
        }
        Ok(Range {
            start,
            end,
            inside,
            text: trimmed.to_owned(),
        })
    }

    /// True when `value` should raise an alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = self.start.is_none_or(|s| value >= s) && self.end.is_none_or(|e| value <= e);
        if self.inside { within } else { !within }
    }
}

/// The state for `value` given optional warning and critical ranges.
pub fn evaluate(value: f64, warning: Option<&Range>, critical: Option<&Range>) -> State {
    if critical.is_some_and(|c| c.alerts(value)) {
        State::Critical
    } else if warning.is_some_and(|w| w.alerts(value)) {
        State::Warning
    } else {
        State::Ok
    }
}

/// Text from a log, made safe for a plugin line: no `|` (starts perfdata), no line breaks or
/// other control characters (would forge long output or another check result), nothing
/// invisible or reordering (would disguise a name).
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '|' || crate::escape::is_hidden(c) {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(range: &str, value: f64) -> bool {
        Range::parse(range).unwrap().alerts(value)
    }

    /// The table of the Monitoring Plugins development guidelines.
    #[test]
    fn guideline_table() {
        // 10: < 0 or > 10
        assert!(alerts("10", -1.0));
        assert!(!alerts("10", 0.0));
        assert!(!alerts("10", 10.0));
        assert!(alerts("10", 10.5));
        // 10: : < 10
        assert!(alerts("10:", 9.0));
        assert!(!alerts("10:", 10.0));
        assert!(!alerts("10:", 1e9));
        // ~:10 : > 10
        assert!(!alerts("~:10", -1e9));
        assert!(!alerts("~:10", 10.0));
        assert!(alerts("~:10", 11.0));
        // 10:20 : < 10 or > 20
        assert!(alerts("10:20", 9.0));
        assert!(!alerts("10:20", 10.0));
        assert!(!alerts("10:20", 20.0));
        assert!(alerts("10:20", 21.0));
        // @10:20 : ≥ 10 and ≤ 20
        assert!(!alerts("@10:20", 9.0));
        assert!(alerts("@10:20", 10.0));
        assert!(alerts("@10:20", 20.0));
        assert!(!alerts("@10:20", 21.0));
        // the default -w 0: warn on the first unreviewed group
        assert!(!alerts("0", 0.0));
        assert!(alerts("0", 1.0));
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in ["", "@", "abc", "20:10", "1:x", "nan"] {
            assert!(Range::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn critical_wins_over_warning() {
        let w = Range::parse("0").unwrap();
        let c = Range::parse("5").unwrap();
        assert_eq!(evaluate(0.0, Some(&w), Some(&c)), State::Ok);
        assert_eq!(evaluate(3.0, Some(&w), Some(&c)), State::Warning);
        assert_eq!(evaluate(6.0, Some(&w), Some(&c)), State::Critical);
        assert_eq!(evaluate(6.0, None, None), State::Ok);
    }

    #[test]
    fn sanitize_keeps_output_on_one_line() {
        assert_eq!(sanitize("a|b\nc\rd"), "a_b_c_d");
        assert_eq!(sanitize("moc.elgoog\u{202e}.x\u{200b}"), "moc.elgoog_.x_");
    }
}
