//! `--format json`: a stable contract. Field names are snake_case and are never renamed; new
//! fields may be added.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::rfc3339;
use crate::report::{Finding, Report};
use crate::tally::{Day, MICROS_PER_DAY, Totals};

/// How many host names a group lists.
pub const SAMPLE_HOSTS: usize = 5;

#[derive(Serialize)]
struct JsonReport<'a> {
    /// Schema version, window in words, min_count, files read, what was read.
    #[serde(flatten)]
    meta: crate::report::JsonMeta<'a>,
    since: Option<String>,
    until: Option<String>,
    totals: &'a Totals,
    groups: Vec<JsonGroup<'a>>,
    unresolved: Vec<JsonUnresolved<'a>>,
    notes: &'a [String],
}

#[derive(Serialize)]
struct JsonGroup<'a> {
    domain: String,
    #[serde(flatten)]
    evidence: JsonEvidence<'a>,
    sample_hosts: &'a [String],
    suggestion: Option<String>,
}

#[derive(Serialize)]
struct JsonUnresolved<'a> {
    network: String,
    #[serde(flatten)]
    evidence: JsonEvidence<'a>,
}

#[derive(Serialize)]
struct JsonEvidence<'a> {
    new: u64,
    early_retry: u64,
    passed_after_delay: u64,
    median_delay_s: Option<u64>,
    max_delay_s: Option<u64>,
    distinct_ips: u64,
    distinct_nets: u64,
    distinct_hosts: u64,
    retried_from_other_net: u64,
    first_seen: String,
    last_seen: String,
    greylisted: u64,
    passed_whitelisted: u64,
    /// A per-day cap was hit (the report's notes say which).
    capped: bool,
    status: &'static str,
    verdict: Option<&'static str>,
    reason: Option<&'a str>,
    /// Every host seen (capped per day), most frequent first: lets `check` re-evaluate the
    /// whitelist without the journal.
    hosts: &'a [String],
    addresses: &'a [std::net::IpAddr],
    /// Every client seen as `[name, address]`, the name `null` when postgrey logged
    /// `unknown`: what `check` needs to tell whether each client is covered by name or address.
    clients: Vec<(Option<&'a str>, std::net::IpAddr)>,
    /// Greylistings per UTC day, `YYYY-MM-DD` → count; days without any are left out.
    daily_greylisted: BTreeMap<String, u64>,
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

fn evidence(f: &Finding) -> JsonEvidence<'_> {
    let e = &f.evidence;
    JsonEvidence {
        new: e.new,
        early_retry: e.early_retry,
        passed_after_delay: e.passed_after_delay,
        median_delay_s: e.median_delay_s,
        max_delay_s: e.max_delay_s,
        distinct_ips: e.distinct_ips,
        distinct_nets: e.distinct_nets,
        distinct_hosts: e.distinct_hosts,
        retried_from_other_net: e.retried_from_other_net,
        first_seen: rfc3339(e.first_seen_us),
        last_seen: rfc3339(e.last_seen_us),
        greylisted: e.greylisted(),
        passed_whitelisted: e.passed_whitelisted,
        capped: e.caps.any(),
        status: f.advice.status.as_str(),
        verdict: f.advice.verdict.map(|v| v.as_str()),
        reason: Some(f.advice.reason.as_str()).filter(|r| !r.is_empty()),
        hosts: &e.hosts,
        addresses: &e.ips,
        clients: e
            .clients
            .iter()
            .map(|(name, address)| (name.as_deref(), *address))
            .collect(),
        daily_greylisted: daily(&e.per_day),
    }
}

fn daily(per_day: &[(Day, u64)]) -> BTreeMap<String, u64> {
    let mut daily = BTreeMap::new();
    for &(day, n) in per_day.iter().filter(|(_, n)| *n > 0) {
        *daily.entry(date_of(day)).or_default() += n;
    }
    daily
}

/// The report as a JSON value (the summary file embeds it).
pub fn to_value(report: &Report) -> serde_json::Result<serde_json::Value> {
    let doc = JsonReport {
        meta: report.json_meta(),
        since: report.since_us.map(rfc3339),
        until: report.until_us.map(rfc3339),
        totals: &report.totals,
        groups: report
            .groups
            .iter()
            .map(|f| JsonGroup {
                domain: f.key.to_string(),
                evidence: evidence(f),
                sample_hosts: &f.evidence.hosts[..f.evidence.hosts.len().min(SAMPLE_HOSTS)],
                suggestion: f
                    .advice
                    .suggestion
                    .as_deref()
                    .map(|s| crate::whitelist::suggestion_line(s, report.suggest_regex)),
            })
            .collect(),
        unresolved: report
            .unresolved
            .iter()
            .map(|f| JsonUnresolved {
                network: f.key.to_string(),
                evidence: evidence(f),
            })
            .collect(),
        notes: &report.notes,
    };
    serde_json::to_value(doc)
}

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let value = to_value(report)?;
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let daily = daily(&[
            (20_410, 2),
            (20_411, 0),
            (20_412, 5),
            (i64::MAX, 1),
            (i64::MIN, 1),
        ]);
        assert_eq!(
            daily,
            BTreeMap::from([
                ("2025-11-18".to_owned(), 2),
                ("2025-11-20".to_owned(), 5),
                (INVALID_DATE.to_owned(), 2),
            ])
        );
    }
}
