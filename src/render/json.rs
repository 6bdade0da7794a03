//! `--format json`: a stable contract. Field names are snake_case and are never renamed; new
//! fields may be added.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::rfc3339;
use crate::group::GroupKey;
use crate::report::{Finding, Report};
use crate::tally::{Day, MICROS_PER_DAY, Name};

/// How many host names a group lists.
pub const SAMPLE_HOSTS: usize = 5;

// Every object lists its fields in alphabetical order: the order they had when the report
// went through a `serde_json::Value` (whose maps are sorted), kept so that the output is the
// same now that it is written straight out.

#[derive(Serialize)]
struct JsonReport<'a> {
    /// The summary file's: whether the run lost its journal cursor.
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor_lost: Option<bool>,
    /// The summary file's: how many entries the run read.
    #[serde(skip_serializing_if = "Option::is_none")]
    entries_read: Option<u64>,
    folded_greylisted: u64,
    groups: Groups<'a>,
    ignore_file: Option<&'a str>,
    /// The summary file's: when the run was.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_run: Option<String>,
    min_count: u64,
    /// What each MX host logged; left out unless there were several.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    mx_hosts: &'a [crate::report::MxHost],
    notes: &'a [String],
    postgrey: crate::report::JsonPostgrey,
    read: Option<crate::report::JsonReading<'a>>,
    schema_version: u32,
    since: Option<String>,
    /// The delay the suggested whitelist lines would have spared (seconds).
    spared_delay_s: u64,
    totals: JsonTotals,
    ungrouped_greylisted: u64,
    unresolved: Unresolved<'a>,
    until: Option<String>,
    whitelist_files: &'a [String],
    /// What `since` and `until` cover, in words (`null` means no bound).
    window: &'static str,
}

/// The groups, each turned into JSON as it is written rather than all of them first.
struct Groups<'a> {
    findings: &'a [Finding],
    suggest_regex: bool,
    /// postgrey's `--delay`, for what an accepted line spared (see `Accepted`).
    delay_s: u64,
}

impl Serialize for Groups<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.findings
                .iter()
                .map(|f| group(f, self.suggest_regex, self.delay_s)),
        )
    }
}

struct Unresolved<'a>(&'a [Finding], u64);

impl Serialize for Unresolved<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|f| unresolved(f, self.1)))
    }
}

#[derive(Serialize)]
struct JsonTotals {
    decisions: u64,
    delay_total_s: u64,
    entries: u64,
    greylisted: u64,
    malformed: u64,
    passed_after_delay: u64,
    postgrey_lines: u64,
    untrusted_skipped: u64,
}

/// A group, or a network of unresolved clients (`domain`, `sample_hosts` and `suggestion` are
/// a group's, `network` an unresolved network's).
#[derive(Serialize)]
struct JsonFinding<'a> {
    /// What a line `accept` wrote did for the group since its date; `null` when no dated line
    /// whitelists it.
    accepted: Option<JsonAccepted<'a>>,
    addresses: &'a [std::net::IpAddr],
    /// A per-day cap was hit (the report's notes say which).
    capped: bool,
    clients: Clients<'a>,
    /// Greylistings per UTC day, `YYYY-MM-DD` → count; days without any are left out.
    daily_greylisted: Daily<'a>,
    /// The sum of `delay=` of the mails that passed after greylisting (seconds).
    delay_total_s: u64,
    distinct_hosts: u64,
    distinct_ips: u64,
    distinct_nets: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a GroupKey>,
    early_retry: u64,
    first_seen: Rfc3339,
    greylisted: u64,
    /// Every host seen (capped per day), most frequent first: lets `check` re-evaluate the
    /// whitelist without the journal.
    hosts: &'a [Name],
    last_seen: Rfc3339,
    max_delay_s: Option<u64>,
    median_delay_s: Option<u64>,
    /// Greylistings per MX host (`_HOSTNAME`, or the syslog host field).
    mx: &'a crate::tally::MxCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<&'a GroupKey>,
    new: u64,
    passed_after_delay: u64,
    passed_whitelisted: u64,
    reason: Option<&'a str>,
    retried_at_other_mx: u64,
    retried_from_other_net: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_hosts: Option<&'a [Name]>,
    status: &'static str,
    /// A group's suggestion, `null` when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    suggestion: Option<Option<String>>,
    verdict: Option<&'static str>,
}

#[derive(Serialize)]
struct JsonAccepted<'a> {
    entry: &'a str,
    on: String,
    passed_at_once: u64,
    spared_delay_s: u64,
}

/// Every client seen as `[name, address]`, the name `null` when postgrey logged `unknown`:
/// what `check` needs to tell whether each client is covered by name or address.
struct Clients<'a>(&'a [(Option<Name>, std::net::IpAddr)]);

impl Serialize for Clients<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .iter()
                .map(|(name, address)| (name.as_deref(), address)),
        )
    }
}

/// Stands for a day no calendar reaches (a corrupt state file).
const INVALID_DATE: &str = "invalid-date";

/// `YYYY-MM-DD` of a UTC day number.
pub fn date_of(day: Day) -> String {
    match day.checked_mul(MICROS_PER_DAY).map(rfc3339) {
        Some(text) if text.len() >= 10 && text.as_bytes()[..4].iter().all(u8::is_ascii_digit) => {
            text[..10].to_owned()
        }
        _ => String::from(INVALID_DATE),
    }
}

/// A finding's fields; a group's own are set by [`group`].
fn finding(f: &Finding, delay_s: u64) -> JsonFinding<'_> {
    let e = &f.evidence;
    JsonFinding {
        accepted: f.accepted.as_ref().map(|a| JsonAccepted {
            entry: &a.entry,
            on: a.on.to_string(),
            passed_at_once: a.passed_at_once,
            spared_delay_s: a.spared_delay_s(delay_s),
        }),
        addresses: &e.ips,
        capped: e.caps.any(),
        clients: Clients(&e.clients),
        daily_greylisted: Daily(&e.per_day),
        delay_total_s: e.delay_total_s,
        distinct_hosts: e.distinct_hosts,
        distinct_ips: e.distinct_ips,
        distinct_nets: e.distinct_nets,
        domain: None,
        early_retry: e.early_retry,
        first_seen: Rfc3339(e.first_seen_us),
        greylisted: e.greylisted(),
        hosts: &e.hosts,
        last_seen: Rfc3339(e.last_seen_us),
        max_delay_s: e.max_delay_s,
        median_delay_s: e.median_delay_s,
        mx: &e.mx,
        network: None,
        new: e.new,
        passed_after_delay: e.passed_after_delay,
        passed_whitelisted: e.passed_whitelisted,
        reason: Some(f.advice.reason.as_str()).filter(|r| !r.is_empty()),
        retried_at_other_mx: e.retried_at_other_mx,
        retried_from_other_net: e.retried_from_other_net,
        sample_hosts: None,
        status: f.advice.status.as_str(),
        suggestion: None,
        verdict: f.advice.verdict.map(|v| v.as_str()),
    }
}

fn group(f: &Finding, suggest_regex: bool, delay_s: u64) -> JsonFinding<'_> {
    let hosts = &f.evidence.hosts;
    JsonFinding {
        domain: Some(&f.key),
        sample_hosts: Some(&hosts[..hosts.len().min(SAMPLE_HOSTS)]),
        suggestion: Some(
            f.advice
                .suggestion
                .as_deref()
                .map(|s| crate::whitelist::suggestion_line(s, suggest_regex)),
        ),
        ..finding(f, delay_s)
    }
}

fn unresolved(f: &Finding, delay_s: u64) -> JsonFinding<'_> {
    JsonFinding {
        network: Some(&f.key),
        ..finding(f, delay_s)
    }
}

/// Greylistings per UTC day, `YYYY-MM-DD` → count, days without any left out: written from the
/// evidence's days, which are in order and distinct, and so are their dates. Days beyond any
/// calendar (a damaged clock) share one name, and are summed under it.
struct Daily<'a>(&'a [(Day, u64)]);

impl Serialize for Daily<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let days = self.0.iter().filter(|(_, n)| *n > 0);
        let dates: Option<Vec<(jiff::civil::Date, u64)>> = days
            .clone()
            .map(|&(day, n)| Some((calendar_date(day)?, n)))
            .collect();
        match dates {
            Some(dates) => {
                serializer.collect_map(dates.iter().map(|(date, n)| (DateKey(*date), n)))
            }
            None => {
                let mut summed: BTreeMap<String, u64> = BTreeMap::new();
                for &(day, n) in days {
                    *summed.entry(date_of(day)).or_default() += n;
                }
                summed.serialize(serializer)
            }
        }
    }
}

/// The date of a UTC day number, when its year has four digits (as `date_of` writes it).
fn calendar_date(day: Day) -> Option<jiff::civil::Date> {
    let second = day.checked_mul(MICROS_PER_DAY / 1_000_000)?;
    let time = jiff::Timestamp::from_second(second).ok()?;
    let date = jiff::tz::TimeZone::UTC.to_datetime(time).date();
    (0..=9999).contains(&date.year()).then_some(date)
}

/// A date as a map key, `YYYY-MM-DD`, written without a string of its own.
struct DateKey(jiff::civil::Date);

impl Serialize for DateKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let date = self.0;
        let mut text = [0u8; 10];
        let digits = |n: i16, out: &mut [u8]| {
            let mut n = n.unsigned_abs();
            for place in out.iter_mut().rev() {
                *place = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        digits(date.year(), &mut text[0..4]);
        text[4] = b'-';
        digits(i16::from(date.month()), &mut text[5..7]);
        text[7] = b'-';
        digits(i16::from(date.day()), &mut text[8..10]);
        match std::str::from_utf8(&text) {
            Ok(text) => serializer.serialize_str(text),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

/// A time as RFC 3339 in UTC, like `rfc3339`, written without a string of its own.
struct Rfc3339(i64);

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match jiff::Timestamp::from_microsecond(self.0) {
            Ok(time) => serializer.collect_str(&time),
            Err(_) => serializer.serialize_str("invalid-time"),
        }
    }
}

fn document(report: &Report) -> JsonReport<'_> {
    let t = &report.totals;
    let meta = report.json_meta();
    JsonReport {
        cursor_lost: None,
        entries_read: None,
        last_run: None,
        folded_greylisted: meta.folded_greylisted,
        ignore_file: meta.ignore_file,
        min_count: meta.min_count,
        postgrey: meta.postgrey,
        read: meta.read,
        schema_version: meta.schema_version,
        ungrouped_greylisted: meta.ungrouped_greylisted,
        whitelist_files: meta.whitelist_files,
        window: meta.window,
        groups: Groups {
            findings: &report.groups,
            suggest_regex: report.suggest_regex,
            delay_s: report.postgrey.delay_s,
        },
        mx_hosts: &report.mx_hosts,
        notes: &report.notes,
        since: report.since_us.map(rfc3339),
        spared_delay_s: report.spared_delay_s(),
        totals: JsonTotals {
            decisions: t.decisions,
            delay_total_s: t.delay_total_s,
            entries: t.entries,
            greylisted: t.greylisted,
            malformed: t.malformed,
            passed_after_delay: t.delayed,
            postgrey_lines: t.postgrey_lines,
            untrusted_skipped: t.untrusted_skipped,
        },
        unresolved: Unresolved(&report.unresolved, report.postgrey.delay_s),
        until: report.until_us.map(rfc3339),
    }
}

/// What the summary file adds to the report: the run it comes from.
pub struct RunFields {
    pub last_run_us: i64,
    pub entries_read: u64,
    pub cursor_lost: bool,
}

/// The summary file: the report with the run's fields, compact (it is read by programs; `jq .`
/// pretty-prints it for people), serialised straight into bytes.
pub fn summary(report: &Report, run: &RunFields, out: &mut dyn Write) -> io::Result<()> {
    let document = JsonReport {
        cursor_lost: Some(run.cursor_lost),
        entries_read: Some(run.entries_read),
        last_run: Some(rfc3339(run.last_run_us)),
        ..document(report)
    };
    // serde_json writes a few bytes at a time: into `out` itself, each would be a call through
    // its vtable (a third of the summary's time).
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer(&mut out, &document)?;
    out.flush()
}

/// The report as a JSON value (tests compare it with what was written straight out).
#[cfg(test)]
pub fn to_value(report: &Report) -> serde_json::Result<serde_json::Value> {
    serde_json::to_value(document(report))
}

/// Writes the report pretty-printed (as `serde_json::to_writer_pretty` does), through a buffer
/// of its own: into `out` itself, serde_json's few bytes at a time would each be a call through
/// its vtable.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Indented::default());
    document(report).serialize(&mut serializer)?;
    writeln!(out)?;
    out.flush()
}

/// serde_json's `PrettyFormatter` with its indent of two spaces, byte for byte, but a line's
/// break and indent written at once rather than a write per level: a report of thousands of
/// groups has a million lines, most of them four or five levels deep.
#[derive(Default)]
struct Indented {
    depth: usize,
    has_value: bool,
}

/// A line break and the indent of up to 32 levels.
const BREAK_AND_INDENT: &[u8; 65] =
    b"\n                                                                ";

fn break_line<W: ?Sized + Write>(out: &mut W, depth: usize) -> io::Result<()> {
    match BREAK_AND_INDENT.get(..1 + 2 * depth) {
        Some(line) => out.write_all(line),
        None => {
            out.write_all(BREAK_AND_INDENT)?;
            (BREAK_AND_INDENT.len() / 2..depth).try_for_each(|_| out.write_all(b"  "))
        }
    }
}

impl Indented {
    /// `[` or `{`: a level deeper, nothing in it yet.
    fn open<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        out.write_all(bracket)
    }

    /// `]` or `}`, on a line of its own when something came before it.
    fn close<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            break_line(out, self.depth)?;
        }
        out.write_all(bracket)
    }

    /// An array's value or an object's key: on a line of its own, after a comma but the first.
    fn item<W: ?Sized + Write>(&self, out: &mut W, first: bool) -> io::Result<()> {
        if !first {
            out.write_all(b",")?;
        }
        break_line(out, self.depth)
    }
}

impl serde_json::ser::Formatter for Indented {
    fn begin_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.open(out, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.item(out, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.open(out, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.item(out, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        out.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written straight out, the report reads as it did through a `serde_json::Value`, whose
    /// objects list their keys in order: every struct above keeps its fields in that order.
    #[test]
    fn the_report_is_written_with_its_keys_in_order() {
        use crate::event::Event;
        use crate::group::Grouper;
        use crate::tally::Tally;

        let grouper = Grouper::builtin();
        let mut tally = Tally::default();
        let t0 = 1_795_219_200_000_000;
        for (i, (name, address)) in [
            ("mx1.example.com", "192.0.2.1"),
            ("mx2.example.com", "198.51.100.7"),
            ("unknown", "203.0.113.9"),
        ]
        .into_iter()
        .cycle()
        .take(60)
        .enumerate()
        {
            let line = format!(
                "action=greylist, reason=new, client_name={name}, client_address={address}, \
                 sender=s{}@example.com, recipient=bob@example.org",
                i % 7
            );
            let Ok(Event::Decision(decision)) = crate::event::parse(line.as_bytes()) else {
                panic!("{line}");
            };
            let mx = if i % 2 == 0 { "mx1" } else { "mx2" };
            tally.record_decision_at(&grouper, t0 + i as i64 * 60_000_000, Some(mx), &decision);
        }
        let (first, last) = tally.span().unwrap();
        let mut report = crate::report::assemble_plain(&tally, first, last);
        report.since_us = Some(t0);
        report.notes.push("a note".into());
        assert_eq!(report.groups.len(), 1);
        assert_eq!(report.unresolved.len(), 1);
        assert_eq!(report.mx_hosts.len(), 2);

        let mut written = Vec::new();
        write(&report, &mut written).unwrap();
        let mut through_value = serde_json::to_vec_pretty(&to_value(&report).unwrap()).unwrap();
        through_value.push(b'\n');
        assert_eq!(
            String::from_utf8(written).unwrap(),
            String::from_utf8(through_value).unwrap()
        );
    }

    #[test]
    fn indented_is_serde_jsons_pretty_printing() {
        let mut deep = serde_json::json!({"leaf": [1, {"a": []}]});
        for level in 0..40 {
            deep = serde_json::json!({"level": level, "empty": {}, "list": [deep, [], "x"]});
        }
        let mut ours = Vec::new();
        let mut serializer = serde_json::Serializer::with_formatter(&mut ours, Indented::default());
        deep.serialize(&mut serializer).unwrap();
        let theirs = serde_json::to_vec_pretty(&deep).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs).unwrap()
        );
    }

    #[test]
    fn a_day_out_of_any_calendar_is_no_overflow() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(20_410), "2025-11-18");
        assert_eq!(date_of(-1), "1969-12-31");
        assert_eq!(date_of(i64::MAX), INVALID_DATE);
        assert_eq!(date_of(i64::MIN), INVALID_DATE);
        // Inside i64 microseconds but beyond the calendar.
        assert_eq!(date_of(100_000_000), INVALID_DATE);
    }

    #[test]
    fn daily_greylisted_lists_only_days_with_greylistings() {
        let written = |days: &[(Day, u64)]| serde_json::to_string(&Daily(days)).unwrap();
        assert_eq!(
            written(&[(20_410, 2), (20_411, 0), (20_412, 5)]),
            r#"{"2025-11-18":2,"2025-11-20":5}"#
        );
        // Days beyond any calendar share one name, summed under it.
        assert_eq!(
            written(&[
                (-719_162, 3),
                (20_410, 2),
                (20_411, 0),
                (20_412, 5),
                (i64::MAX, 1),
                (i64::MIN, 1),
            ]),
            r#"{"0001-01-01":3,"2025-11-18":2,"2025-11-20":5,"invalid-date":2}"#
        );
        // The first day of year 0 has a date, the last of year -1 has none, as `date_of` says.
        assert_eq!(written(&[(-719_528, 4)]), r#"{"0000-01-01":4}"#);
        assert_eq!(date_of(-719_528), "0000-01-01");
        assert_eq!(written(&[(-719_529, 4)]), r#"{"invalid-date":4}"#);
        assert_eq!(date_of(-719_529), INVALID_DATE);
        assert_eq!(written(&[]), "{}");
    }
}
