//! Time syntax of `--since`/`--until` (points in time) and of options such as `--max-age 8d`
//! (spans): the part of systemd.time(7) that `journalctl --since` accepts, so a postmaster can
//! paste the same strings into both tools and get the same instant.
//!
//! Points in time, as systemd 252 parses them:
//! - `now`; `today`, `yesterday`, `tomorrow` (local midnight, so `yesterday` is 23 or 25 hours
//!   back across a DST change);
//! - `+SPAN`, `-SPAN`, `SPAN ago`, `SPAN left`: relative to now by an exact span;
//! - `@SPAN`: seconds since the Unix epoch (`@1764000000`, `@1764000000.5`);
//! - `[WEEKDAY ]YYYY-MM-DD[ HH:MM[:SS[.FRACTION]]]` or a bare `HH:MM[:SS[.FRACTION]]` (today),
//!   two-digit years as strptime's `%y` reads them (69–99 → 19xx, else 20xx);
//! - a trailing ` UTC`, the local zone's abbreviation (` CET`, ` CEST`) or an IANA zone name.
//!
//! A span is a sum of `NUMBER[.FRACTION][UNIT]` terms (`1h 30min`, `-1d12h`, `600` = seconds).
//! systemd's units are fixed lengths, not calendar arithmetic: a month is 30.4375 days and a year
//! 365.25 days, so `1M ago` is exactly 2 629 800 s before now. This is why spans are parsed here
//! rather than with jiff's friendly format, whose `m`, `mo` and `y` mean other things.
//!
//! Deliberate differences from systemd 252, all towards clarity:
//! - also accepted: RFC 3339 (`2026-11-01T10:00:00Z`, `…+01:00`, as newer systemd does), zone
//!   names other than the local one, keywords with a zone (`today Europe/London`), surrounding
//!   whitespace;
//! - refused where glibc's strptime/mktime silently normalise: `2026-02-31`, `10:00:60`, a time
//!   glued to the date (`2026-11-0110:00`);
//! - zone names: systemd 252 refuses every suffix that names a zone file (`Europe/London`, `GMT`,
//!   even `CET`, while `cet` works); here they are read in that zone;
//! - a local abbreviation stands for its offset whatever the date, as glibc reads it:
//!   `2026-07-01 10:00 cet` is 09:00 UTC;
//! - a civil time that occurs twice (the repeated hour) always means the earlier instant; glibc's
//!   mktime takes whichever its search from UTC meets first (the later one in Berlin, the earlier
//!   in Havana). `02:30 cet` picks the later one.
//!
//! Results are kept to microseconds, like the journal; results before the Unix epoch are refused
//! as systemd does. IANA zone names are looked up in jiff's time zone database, the only place
//! this module reaches outside its arguments.

use std::fmt;
use std::time::Duration;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

const USEC_PER_SEC: u64 = 1_000_000;
const USEC_PER_MINUTE: u64 = 60 * USEC_PER_SEC;
const USEC_PER_HOUR: u64 = 60 * USEC_PER_MINUTE;
const USEC_PER_DAY: u64 = 24 * USEC_PER_HOUR;
const USEC_PER_WEEK: u64 = 7 * USEC_PER_DAY;
/// 365.25 days, as systemd defines it.
const USEC_PER_YEAR: u64 = 31_557_600 * USEC_PER_SEC;
/// A twelfth of systemd's year: 30.4375 days.
const USEC_PER_MONTH: u64 = USEC_PER_YEAR / 12;

/// systemd's unit names (src/basic/time-util.c); case matters: `M` is a month, `m` a minute.
const UNITS: &[(&str, u64)] = &[
    ("seconds", USEC_PER_SEC),
    ("second", USEC_PER_SEC),
    ("sec", USEC_PER_SEC),
    ("s", USEC_PER_SEC),
    ("minutes", USEC_PER_MINUTE),
    ("minute", USEC_PER_MINUTE),
    ("min", USEC_PER_MINUTE),
    ("m", USEC_PER_MINUTE),
    ("months", USEC_PER_MONTH),
    ("month", USEC_PER_MONTH),
    ("M", USEC_PER_MONTH),
    ("msec", 1_000),
    ("ms", 1_000),
    ("hours", USEC_PER_HOUR),
    ("hour", USEC_PER_HOUR),
    ("hr", USEC_PER_HOUR),
    ("h", USEC_PER_HOUR),
    ("days", USEC_PER_DAY),
    ("day", USEC_PER_DAY),
    ("d", USEC_PER_DAY),
    ("weeks", USEC_PER_WEEK),
    ("week", USEC_PER_WEEK),
    ("w", USEC_PER_WEEK),
    ("years", USEC_PER_YEAR),
    ("year", USEC_PER_YEAR),
    ("y", USEC_PER_YEAR),
    ("usec", 1),
    ("us", 1),
    ("\u{3bc}s", 1), // Greek small letter mu
    ("\u{b5}s", 1),  // micro sign
];

const WEEKDAYS: &[(&str, Weekday)] = &[
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];

/// systemd's WHITESPACE set.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// A time or span that could not be parsed; the message quotes the value as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {what} {input:?}: {problem}")]
pub struct TimeError {
    what: What,
    input: String,
    problem: TimeProblem,
}

impl TimeError {
    /// The value as the user gave it.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &TimeProblem {
        &self.problem
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Time,
    Span,
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            What::Time => "time",
            What::Span => "time span",
        })
    }
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeProblem {
    #[error("it is empty")]
    Empty,
    #[error("expected a number at {0:?}")]
    ExpectedNumber(String),
    #[error("unexpected {0:?} after a number")]
    UnexpectedAfterNumber(String),
    #[error("unknown unit {0:?} (units: us, ms, s, min, h, d, w, M, y and their long forms)")]
    UnknownUnit(String),
    #[error("a span cannot be negative")]
    NegativeSpan,
    #[error("a decimal point must be followed by digits")]
    BareDecimalPoint,
    #[error(
        "not a form journalctl accepts; use now, today, yesterday, tomorrow, +SPAN, -SPAN, \
         \"SPAN ago\", @EPOCH_SECONDS or YYYY-MM-DD [HH:MM[:SS[.FRACTION]]] [UTC|ZONE]"
    )]
    Unrecognised,
    #[error("there is no date {0}")]
    NoSuchDate(String),
    #[error("there is no time of day {0}")]
    NoSuchTime(String),
    #[error("{date} is a {actual:?}, not a {given:?}")]
    WrongWeekday {
        date: Date,
        given: Weekday,
        actual: Weekday,
    },
    #[error("it lies before 1970-01-01 00:00:00 UTC")]
    BeforeEpoch,
    #[error("it lies outside the supported range of years")]
    OutOfRange,
}

/// Parses a point in time as `journalctl --since` does, relative to `now`, reading civil times
/// in `tz` unless the value names its own zone.
pub fn parse_timestamp(input: &str, now: Timestamp, tz: &TimeZone) -> Result<Timestamp, TimeError> {
    timestamp(input.trim_matches(is_blank), now, tz).map_err(|problem| TimeError {
        what: What::Time,
        input: input.to_owned(),
        problem,
    })
}

/// Parses a systemd time span (`7d`, `8w`, `1h 30min`, `600` = seconds) to microsecond precision.
pub fn parse_span(input: &str) -> Result<Duration, TimeError> {
    span_micros(input)
        .map(Duration::from_micros)
        .map_err(|problem| TimeError {
            what: What::Span,
            input: input.to_owned(),
            problem,
        })
}

fn timestamp(s: &str, now: Timestamp, tz: &TimeZone) -> Result<Timestamp, TimeProblem> {
    let instant = if s.is_empty() {
        return Err(TimeProblem::Empty);
    } else if s == "now" {
        now
    } else if let Some(span) = s.strip_prefix('+') {
        shift(now, span_micros(span)?, 1)?
    } else if let Some(span) = s.strip_prefix('-') {
        shift(now, span_micros(span)?, -1)?
    } else if let Some(span) = s.strip_suffix(" ago") {
        shift(now, span_micros(span)?, -1)?
    } else if let Some(span) = s.strip_suffix(" left") {
        shift(now, span_micros(span)?, 1)?
    } else if let Some(epoch_span) = s.strip_prefix('@') {
        shift(Timestamp::UNIX_EPOCH, span_micros(epoch_span)?, 1)?
    } else {
        absolute(s, now, tz)?
    };
    if instant < Timestamp::UNIX_EPOCH {
        return Err(TimeProblem::BeforeEpoch);
    }
    Ok(instant)
}

fn shift(from: Timestamp, micros: u64, sign: i64) -> Result<Timestamp, TimeProblem> {
    let micros = i64::try_from(micros).map_err(|_| TimeProblem::OutOfRange)?;
    from.checked_add(SignedDuration::from_micros(sign * micros))
        .map_err(|_| TimeProblem::OutOfRange)
}

/// Sums the terms of a span in microseconds, following systemd's `parse_time()`: whitespace may
/// separate a number from its unit and terms from each other, a number without a unit is in
/// seconds, and fractions are cut at microseconds.
fn span_micros(s: &str) -> Result<u64, TimeProblem> {
    let mut rest = s.trim_start_matches(is_blank);
    if rest.is_empty() {
        return Err(TimeProblem::Empty);
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if rest.starts_with('-') {
            return Err(TimeProblem::NegativeSpan);
        }
        let (whole, after_whole) = split_digits(rest);
        let (fraction, after_number) = match after_whole.strip_prefix('.') {
            Some(after_point) => {
                let (fraction, after_fraction) = split_digits(after_point);
                if fraction.is_empty() {
                    return Err(TimeProblem::BareDecimalPoint);
                }
                (fraction, after_fraction)
            }
            None if whole.is_empty() => return Err(TimeProblem::ExpectedNumber(rest.to_owned())),
            None => ("", after_whole),
        };

        let before_unit = after_number.trim_start_matches(is_blank);
        let word_len = before_unit
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(before_unit.len());
        let (word, after_unit) = before_unit.split_at(word_len);
        let multiplier = if word.is_empty() {
            // Another term may follow after whitespace ("5 6" is 11 s), but not directly ("5.5.5").
            if before_unit.len() == after_number.len() && !after_number.is_empty() {
                return Err(TimeProblem::UnexpectedAfterNumber(after_number.to_owned()));
            }
            USEC_PER_SEC
        } else {
            UNITS
                .iter()
                .find(|(name, _)| *name == word)
                .map(|&(_, usec)| usec)
                .ok_or_else(|| TimeProblem::UnknownUnit(word.to_owned()))?
        };

        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| TimeProblem::OutOfRange)?
        };
        let mut term = whole
            .checked_mul(multiplier)
            .ok_or(TimeProblem::OutOfRange)?;
        let mut digit_value = multiplier / 10;
        for digit in fraction.bytes() {
            term += u64::from(digit - b'0') * digit_value;
            digit_value /= 10;
        }
        total = total.checked_add(term).ok_or(TimeProblem::OutOfRange)?;
        rest = after_unit.trim_start_matches(is_blank);
    }
    Ok(total)
}

fn split_digits(s: &str) -> (&str, &str) {
    s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()))
}

/// Where a civil time is read.
enum Zone<'a> {
    /// The caller's zone.
    Local(&'a TimeZone),
    /// `UTC` or a named zone.
    Named(TimeZone),
    /// An RFC 3339 offset (`Z`, `+01:00`) or a local abbreviation's (`CEST`).
    Fixed(Offset),
}

impl Zone<'_> {
    fn today(&self, now: Timestamp) -> Date {
        match self {
            Zone::Local(tz) => tz.to_datetime(now).date(),
            Zone::Named(tz) => tz.to_datetime(now).date(),
            Zone::Fixed(offset) => offset.to_datetime(now).date(),
        }
    }

    fn resolve(&self, civil: DateTime) -> Result<Timestamp, TimeProblem> {
        match self {
            // A skipped civil time moves forward by the gap, a repeated one takes the earlier
            // instant: what glibc's mktime does for a midnight that DST skips.
            Zone::Local(tz) => tz.to_ambiguous_timestamp(civil).compatible(),
            Zone::Named(tz) => tz.to_ambiguous_timestamp(civil).compatible(),
            Zone::Fixed(offset) => offset.to_timestamp(civil),
        }
        .map_err(|_| TimeProblem::OutOfRange)
    }
}

fn absolute(s: &str, now: Timestamp, tz: &TimeZone) -> Result<Timestamp, TimeProblem> {
    let (body, named_zone) = split_zone(s, now, tz);
    let (weekday, body) = split_weekday(body);

    let zone = named_zone.unwrap_or(Zone::Local(tz));
    let day_offset = match body {
        "today" => Some(0),
        "yesterday" => Some(-1),
        "tomorrow" => Some(1),
        _ => None,
    };
    if let (Some(days), None) = (day_offset, weekday) {
        let day = zone
            .today(now)
            .checked_add(jiff::Span::new().days(days))
            .map_err(|_| TimeProblem::OutOfRange)?;
        return zone.resolve(day.to_datetime(Time::midnight()));
    }

    let form = CivilForm::parse(body).ok_or(TimeProblem::Unrecognised)?;
    let zone = match (form.offset, zone) {
        (Some(offset), Zone::Local(_)) => Zone::Fixed(offset),
        // Two zones, as in `10:00Z UTC`.
        (Some(_), _) => return Err(TimeProblem::Unrecognised),
        (None, zone) => zone,
    };
    let date = match form.date {
        Some((year, month, day)) => Date::new(year, month, day)
            .map_err(|_| TimeProblem::NoSuchDate(format!("{year:04}-{month:02}-{day:02}")))?,
        None => zone.today(now),
    };
    let (hour, minute, second) = form.time;
    let time = Time::new(hour, minute, second, 0)
        .map_err(|_| TimeProblem::NoSuchTime(format!("{hour:02}:{minute:02}:{second:02}")))?;
    if let Some(given) = weekday
        && given != date.weekday()
    {
        return Err(TimeProblem::WrongWeekday {
            date,
            given,
            actual: date.weekday(),
        });
    }
    let instant = zone.resolve(date.to_datetime(time))?;
    shift(instant, form.micros, 1)
}

/// Splits off a trailing zone word: `UTC`, an abbreviation the local zone uses around `now`, or an
/// IANA name. Anything else stays in the body, to be refused there as a whole.
fn split_zone<'a, 't>(s: &'a str, now: Timestamp, tz: &'t TimeZone) -> (&'a str, Option<Zone<'t>>) {
    let Some((body, word)) = s.rsplit_once(' ') else {
        return (s, None);
    };
    let body = body.trim_end_matches(is_blank);
    let plausible = word.chars().any(|c| c.is_ascii_alphabetic())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-'));
    if body.is_empty() || !plausible {
        return (s, None);
    }
    if word.eq_ignore_ascii_case("UTC") {
        return (body, Some(Zone::Named(TimeZone::UTC)));
    }
    // Whichever of standard and daylight time is not in effect now is in effect across the
    // nearest transition; these are the two names glibc's tzname holds.
    let current = tz.to_offset_info(now);
    let nearest = |transition: Option<jiff::tz::TimeZoneTransition<'_>>| {
        transition.map(|t| (t.abbreviation().to_owned(), t.offset()))
    };
    let local_abbreviations = [
        Some((current.abbreviation().to_owned(), current.offset())),
        nearest(tz.preceding(now).next()),
        nearest(tz.following(now).next()),
    ];
    if let Some((_, offset)) = local_abbreviations
        .into_iter()
        .flatten()
        .find(|(abbreviation, _)| abbreviation.eq_ignore_ascii_case(word))
    {
        return (body, Some(Zone::Fixed(offset)));
    }
    match jiff::tz::db().get(word) {
        Ok(named) => (body, Some(Zone::Named(named))),
        Err(_) => (s, None),
    }
}

fn split_weekday(s: &str) -> (Option<Weekday>, &str) {
    let Some((word, rest)) = s.split_once(' ') else {
        return (None, s);
    };
    let word = word.to_ascii_lowercase();
    let weekday = WEEKDAYS
        .iter()
        .find(|(name, _)| *name == word || name[..3] == word)
        .map(|&(_, weekday)| weekday);
    match weekday {
        Some(weekday) => (Some(weekday), rest.trim_start_matches(is_blank)),
        None => (None, s),
    }
}

/// The syntax of `YYYY-MM-DD[ HH:MM[:SS[.FRACTION]]][OFFSET]` or `HH:MM[:SS[.FRACTION]]`,
/// before checking that the date and time exist.
struct CivilForm {
    date: Option<(i16, i8, i8)>,
    time: (i8, i8, i8),
    micros: u64,
    offset: Option<Offset>,
}

impl CivilForm {
    fn parse(s: &str) -> Option<CivilForm> {
        match Self::date(s) {
            Some((date, "")) => Some(CivilForm {
                date: Some(date),
                time: (0, 0, 0),
                micros: 0,
                offset: None,
            }),
            Some((date, rest)) => {
                let rest = match rest.strip_prefix(['T', 't']) {
                    Some(rest) => rest,
                    None if rest.starts_with(is_blank) => rest.trim_start_matches(is_blank),
                    None => return None,
                };
                Self::time(rest, Some(date), true)
            }
            None => Self::time(s, None, false),
        }
    }

    fn date(s: &str) -> Option<((i16, i8, i8), &str)> {
        let (year, rest) = split_digits(s);
        let year: i16 = match year.len() {
            4 => year.parse().ok()?,
            // strptime's %y
            2 => match year.parse::<i16>().ok()? {
                short @ 69..=99 => 1900 + short,
                short => 2000 + short,
            },
            _ => return None,
        };
        let (month, rest) = field(rest.strip_prefix('-')?)?;
        let (day, rest) = field(rest.strip_prefix('-')?)?;
        Some(((year, month, day), rest))
    }

    fn time(s: &str, date: Option<(i16, i8, i8)>, allow_offset: bool) -> Option<CivilForm> {
        let (hour, rest) = field(s)?;
        let (minute, mut rest) = field(rest.strip_prefix(':')?)?;
        let mut second = 0;
        let mut micros = 0;
        if let Some(after_colon) = rest.strip_prefix(':') {
            (second, rest) = field(after_colon)?;
            if let Some(after_point) = rest.strip_prefix('.') {
                let (fraction, after_fraction) = split_digits(after_point);
                micros = fraction_micros(fraction)?;
                rest = after_fraction;
            }
        }
        let offset = match rest {
            "" => None,
            _ if allow_offset => Some(rfc3339_offset(rest)?),
            _ => return None,
        };
        Some(CivilForm {
            date,
            time: (hour, minute, second),
            micros,
            offset,
        })
    }
}

/// A one- or two-digit field, as strptime's `%m`, `%d`, `%H`, `%M`, `%S` read them.
fn field(s: &str) -> Option<(i8, &str)> {
    let (digits, rest) = split_digits(s);
    if digits.is_empty() || digits.len() > 2 {
        return None;
    }
    Some((digits.parse().ok()?, rest))
}

/// Six digits of a fraction of a second, rounded at the seventh like systemd does.
fn fraction_micros(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut micros = 0;
    for position in 0..6 {
        let digit = digits.as_bytes().get(position).map_or(0, |d| d - b'0');
        micros = micros * 10 + u64::from(digit);
    }
    if digits.as_bytes().get(6).is_some_and(|&d| d >= b'5') {
        micros += 1;
    }
    Some(micros)
}

/// `Z` or `±HH:MM`.
fn rfc3339_offset(s: &str) -> Option<Offset> {
    if s.eq_ignore_ascii_case("z") {
        return Some(Offset::UTC);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = s[1..].split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").expect("tzdata has Europe/Berlin")
    }

    fn ts(rfc3339: &str) -> Timestamp {
        rfc3339.parse().expect("test timestamp")
    }

    /// Saturday 2026-11-28 01:26:32.5 UTC = 02:26:32.5 CET.
    fn now() -> Timestamp {
        ts("2026-11-28T01:26:32.5Z")
    }

    fn at(input: &str) -> Timestamp {
        parse_timestamp(input, now(), &berlin())
            .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"))
    }

    fn problem(input: &str) -> TimeProblem {
        parse_timestamp(input, now(), &berlin())
            .expect_err(input)
            .problem()
            .clone()
    }

    fn span(input: &str) -> Duration {
        parse_span(input).unwrap_or_else(|e| panic!("{input:?} should parse: {e}"))
    }

    #[test]
    fn keywords_are_local_midnights() {
        assert_eq!(at("now"), now());
        assert_eq!(at("today"), ts("2026-11-27T23:00:00Z"));
        assert_eq!(at("yesterday"), ts("2026-11-26T23:00:00Z"));
        assert_eq!(at("tomorrow"), ts("2026-11-28T23:00:00Z"));
        assert_eq!(at("today UTC"), ts("2026-11-28T00:00:00Z"));
        assert_eq!(at("yesterday UTC"), ts("2026-11-27T00:00:00Z"));
    }

    #[test]
    fn yesterday_across_spring_forward_is_23_hours_before_today() {
        // Monday 2026-03-30 12:00 CEST; Sunday 2026-03-29 lost an hour at 02:00 CET.
        let now = ts("2026-03-30T10:00:00Z");
        let parse = |input| parse_timestamp(input, now, &berlin()).expect(input);
        assert_eq!(parse("today"), ts("2026-03-29T22:00:00Z"));
        assert_eq!(parse("yesterday"), ts("2026-03-28T23:00:00Z"));
        assert_eq!(parse("-1d"), ts("2026-03-29T10:00:00Z"));
    }

    #[test]
    fn yesterday_across_fall_back_is_25_hours_before_today() {
        // Monday 2026-10-26 12:00 CET; Sunday 2026-10-25 repeated 02:00–03:00.
        let now = ts("2026-10-26T11:00:00Z");
        let parse = |input| parse_timestamp(input, now, &berlin()).expect(input);
        assert_eq!(parse("today"), ts("2026-10-25T23:00:00Z"));
        assert_eq!(parse("yesterday"), ts("2026-10-24T22:00:00Z"));
        assert_eq!(parse("1 day ago"), ts("2026-10-25T11:00:00Z"));
    }

    #[test]
    fn skipped_midnight_moves_forward_by_the_gap() {
        // Cuba moves from 00:00 CST to 01:00 CDT on 2026-03-08.
        let havana = TimeZone::get("America/Havana").expect("tzdata has America/Havana");
        let now = ts("2026-03-09T12:00:00Z");
        let parse = |input| parse_timestamp(input, now, &havana).expect(input);
        assert_eq!(parse("2026-03-08"), ts("2026-03-08T05:00:00Z"));
        assert_eq!(parse("yesterday"), ts("2026-03-08T05:00:00Z"));
    }

    #[test]
    fn relative_spans() {
        assert_eq!(at("-2d"), ts("2026-11-26T01:26:32.5Z"));
        assert_eq!(at("+3h"), ts("2026-11-28T04:26:32.5Z"));
        assert_eq!(at("2 days ago"), ts("2026-11-26T01:26:32.5Z"));
        assert_eq!(at("1 week ago"), ts("2026-11-21T01:26:32.5Z"));
        assert_eq!(at("1h 30min ago"), ts("2026-11-27T23:56:32.5Z"));
        assert_eq!(at("-1d12h"), ts("2026-11-26T13:26:32.5Z"));
        assert_eq!(at("2h left"), ts("2026-11-28T03:26:32.5Z"));
        assert_eq!(at("-0"), now());
        // Fixed lengths, not calendar months and years.
        assert_eq!(at("1M ago"), ts("2026-10-28T14:56:32.5Z"));
        assert_eq!(at("1y ago"), ts("2025-11-27T19:26:32.5Z"));
    }

    #[test]
    fn epoch_seconds() {
        assert_eq!(at("@1764000000"), ts("2025-11-24T16:00:00Z"));
        assert_eq!(at("@1764000000.5"), ts("2025-11-24T16:00:00.5Z"));
        assert_eq!(at("@0"), Timestamp::UNIX_EPOCH);
        assert_eq!(at("@1.5h"), ts("1970-01-01T01:30:00Z"));
    }

    #[test]
    fn calendar_dates_in_the_local_zone() {
        assert_eq!(at("2026-11-01"), ts("2026-10-31T23:00:00Z"));
        assert_eq!(at("2026-11-01 10:00"), ts("2026-11-01T09:00:00Z"));
        assert_eq!(at("2026-11-01 10:00:00"), ts("2026-11-01T09:00:00Z"));
        assert_eq!(at("2026-11-01T10:00:00"), ts("2026-11-01T09:00:00Z"));
        assert_eq!(at("2026-07-01 10:00"), ts("2026-07-01T08:00:00Z"));
        assert_eq!(at("2026-1-1 1:2"), ts("2026-01-01T00:02:00Z"));
        assert_eq!(at("26-11-01"), ts("2026-10-31T23:00:00Z"));
        assert_eq!(at("99-11-01"), ts("1999-10-31T23:00:00Z"));
        assert_eq!(at("10:00"), ts("2026-11-28T09:00:00Z"));
        assert_eq!(at("23:59:59.25"), ts("2026-11-28T22:59:59.25Z"));
    }

    #[test]
    fn fractions_round_at_the_microsecond() {
        assert_eq!(
            at("2026-11-01 10:00:00.123"),
            ts("2026-11-01T09:00:00.123Z")
        );
        assert_eq!(
            at("2026-11-01 10:00:00.1234565"),
            ts("2026-11-01T09:00:00.123457Z")
        );
        assert_eq!(
            at("2026-11-01 10:00:00.1234564"),
            ts("2026-11-01T09:00:00.123456Z")
        );
        assert_eq!(
            at("2026-11-01 10:00:59.9999999"),
            ts("2026-11-01T09:01:00Z")
        );
    }

    #[test]
    fn zones() {
        assert_eq!(at("2026-11-01 10:00 UTC"), ts("2026-11-01T10:00:00Z"));
        assert_eq!(at("2026-11-01 10:00 utc"), ts("2026-11-01T10:00:00Z"));
        assert_eq!(at("2026-11-01 10:00 cet"), ts("2026-11-01T09:00:00Z"));
        assert_eq!(at("2026-07-01 10:00 CEST"), ts("2026-07-01T08:00:00Z"));
        assert_eq!(
            at("2026-11-01 10:00 Asia/Tokyo"),
            ts("2026-11-01T01:00:00Z")
        );
        assert_eq!(at("2026-11-01T10:00:00Z"), ts("2026-11-01T10:00:00Z"));
        assert_eq!(at("2026-11-01T10:00:00+05:30"), ts("2026-11-01T04:30:00Z"));
        assert_eq!(
            at("2026-11-01 10:00:00.5-01:00"),
            ts("2026-11-01T11:00:00.5Z")
        );
    }

    #[test]
    fn repeated_hour_is_the_earlier_unless_the_abbreviation_says_otherwise() {
        assert_eq!(at("2026-10-25 02:30"), ts("2026-10-25T00:30:00Z"));
        assert_eq!(at("2026-10-25 02:30 CEST"), ts("2026-10-25T00:30:00Z"));
        assert_eq!(at("2026-10-25 02:30 CET"), ts("2026-10-25T01:30:00Z"));
        // Skipped hour: moved forward by the gap.
        assert_eq!(at("2026-03-29 02:30"), ts("2026-03-29T01:30:00Z"));
    }

    #[test]
    fn local_abbreviation_is_its_offset_whatever_the_date() {
        assert_eq!(at("2026-07-01 10:00 CET"), ts("2026-07-01T09:00:00Z"));
        assert_eq!(at("2026-11-01 10:00 CEST"), ts("2026-11-01T08:00:00Z"));
        assert_eq!(at("2026-03-29 02:30 CEST"), ts("2026-03-29T00:30:00Z"));
        assert_eq!(at("today CEST"), ts("2026-11-27T22:00:00Z"));
        // In summer, the abbreviations are the same two.
        let summer = ts("2026-07-01T12:00:00Z");
        let parse = |input| parse_timestamp(input, summer, &berlin()).expect(input);
        assert_eq!(parse("2026-11-01 10:00 CET"), ts("2026-11-01T09:00:00Z"));
        assert_eq!(parse("2026-11-01 10:00 CEST"), ts("2026-11-01T08:00:00Z"));
    }

    #[test]
    fn weekday_prefix_must_match() {
        assert_eq!(at("Sat 2026-11-28"), ts("2026-11-27T23:00:00Z"));
        assert_eq!(at("saturday 2026-11-28 10:00"), ts("2026-11-28T09:00:00Z"));
        assert_eq!(at("Sat 10:00"), ts("2026-11-28T09:00:00Z"));
        assert_eq!(
            problem("Sun 2026-11-28"),
            TimeProblem::WrongWeekday {
                date: jiff::civil::date(2026, 11, 28),
                given: Weekday::Sunday,
                actual: Weekday::Saturday,
            }
        );
        assert_eq!(problem("Sat today"), TimeProblem::Unrecognised);
    }

    #[test]
    fn invalid_times_name_the_value() {
        let error = parse_timestamp("next tuesday", now(), &berlin()).expect_err("invalid");
        assert_eq!(error.input(), "next tuesday");
        assert!(
            error
                .to_string()
                .starts_with("cannot parse time \"next tuesday\": not a form journalctl accepts"),
            "{error}"
        );
        let error = parse_timestamp("5 mins ago", now(), &berlin()).expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "cannot parse time \"5 mins ago\": unknown unit \"mins\" \
             (units: us, ms, s, min, h, d, w, M, y and their long forms)"
        );
        let error = parse_timestamp("x\u{1b}[1m", now(), &berlin()).expect_err("invalid");
        assert!(
            error
                .to_string()
                .starts_with("cannot parse time \"x\\u{1b}[1m\":")
        );
    }

    #[test]
    fn invalid_times() {
        use TimeProblem::*;
        let cases = [
            ("", Empty),
            ("   ", Empty),
            ("NOW", Unrecognised),
            ("Today", Unrecognised),
            ("2026-11-01 foo", Unrecognised),
            ("2026-11-01 10", Unrecognised),
            ("2026-11-01 10:00.5", Unrecognised),
            ("2026-11-0110:00", Unrecognised),
            ("2026/11/01", Unrecognised),
            ("202-11-01", Unrecognised),
            ("2026-11-01 10:00:00Z UTC", Unrecognised),
            ("10:00Z", Unrecognised),
            ("2026-11-01T10:00:00+1", Unrecognised),
            ("2026-02-31", NoSuchDate("2026-02-31".into())),
            ("2026-13-01", NoSuchDate("2026-13-01".into())),
            ("2026-11-01 24:00", NoSuchTime("24:00:00".into())),
            ("2026-11-01 10:00:60", NoSuchTime("10:00:60".into())),
            ("1969-12-31", BeforeEpoch),
            ("69-12-31 23:00 UTC", BeforeEpoch),
            ("-60y", BeforeEpoch),
            ("2 Days ago", UnknownUnit("Days".into())),
            ("2 days", Unrecognised),
            ("ago", Unrecognised),
            (" ago", Unrecognised),
            ("--5", NegativeSpan),
            ("+", Empty),
            ("@", Empty),
            ("@-5", NegativeSpan),
            ("+99999999999999999999", OutOfRange),
            ("+9000y", OutOfRange),
        ];
        for (input, expected) in cases {
            assert_eq!(problem(input), expected, "{input:?}");
        }
    }

    #[test]
    fn spans() {
        assert_eq!(span("7d"), Duration::from_secs(7 * 86_400));
        assert_eq!(span("8w"), Duration::from_secs(56 * 86_400));
        assert_eq!(span("8d"), Duration::from_secs(8 * 86_400));
        assert_eq!(span("1h 30min"), Duration::from_secs(5_400));
        assert_eq!(span("1h30min"), Duration::from_secs(5_400));
        assert_eq!(span("600"), Duration::from_secs(600));
        assert_eq!(span(" 5 6 "), Duration::from_secs(11));
        assert_eq!(span("1.5h"), Duration::from_secs(5_400));
        assert_eq!(span(".5s"), Duration::from_millis(500));
        assert_eq!(span("12.34s.56"), Duration::from_millis(12_900));
        assert_eq!(span("2 days"), Duration::from_secs(2 * 86_400));
        assert_eq!(span("1M"), Duration::from_secs(2_629_800));
        assert_eq!(span("1y"), Duration::from_secs(31_557_600));
        assert_eq!(span("1 year 2 months"), Duration::from_secs(36_817_200));
        assert_eq!(span("250ms"), Duration::from_millis(250));
        assert_eq!(span("3us 2\u{3bc}s 1\u{b5}s"), Duration::from_micros(6));
        assert_eq!(span("1.5us"), Duration::from_micros(1));
        assert_eq!(span("1m"), Duration::from_secs(60));
        assert_eq!(span("0"), Duration::ZERO);
    }

    #[test]
    fn invalid_spans() {
        use TimeProblem::*;
        let cases = [
            ("", Empty),
            (" ", Empty),
            ("8x", UnknownUnit("x".into())),
            ("5secs", UnknownUnit("secs".into())),
            ("1D", UnknownUnit("D".into())),
            ("h", ExpectedNumber("h".into())),
            ("-5s", NegativeSpan),
            ("5 -3", NegativeSpan),
            ("3.", BareDecimalPoint),
            ("3.s", BareDecimalPoint),
            ("5.5.5", UnexpectedAfterNumber(".5".into())),
            ("5-3", UnexpectedAfterNumber("-3".into())),
            ("infinity", ExpectedNumber("infinity".into())),
            ("99999999999999999999", OutOfRange),
            ("999999999999y", OutOfRange),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_span(input).expect_err(input).problem(),
                &expected,
                "{input:?}"
            );
        }
        assert_eq!(
            parse_span("8x").expect_err("invalid").to_string(),
            "cannot parse time span \"8x\": unknown unit \"x\" \
             (units: us, ms, s, min, h, d, w, M, y and their long forms)"
        );
    }
}
