//! `--format json`: a stable contract. Field names are snake_case and are never renamed; new
//! fields may be added.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::rfc3339;
use crate::report::{Finding, Report};
use crate::tally::Totals;

/// How many host names a group lists.
pub const SAMPLE_HOSTS: usize = 5;

#[derive(Serialize)]
struct JsonReport<'a> {
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
    capped: bool,
    status: &'static str,
    verdict: Option<&'static str>,
    reason: Option<&'a str>,
    /// Every host seen (capped per day), most frequent first: lets `check` re-evaluate the
    /// whitelist without the journal.
    hosts: &'a [String],
    addresses: &'a [std::net::IpAddr],
    /// Greylistings per UTC day, `YYYY-MM-DD` → count.
    daily_greylisted: BTreeMap<String, u64>,
}

/// `YYYY-MM-DD` of a UTC day number.
pub fn date_of(day: crate::tally::Day) -> String {
    let text = rfc3339(day * 86_400 * 1_000_000);
    text.get(..10).unwrap_or(&text).to_owned()
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
        capped: e.capped,
        status: f.advice.status.as_str(),
        verdict: f.advice.verdict.map(|v| v.as_str()),
        reason: Some(f.advice.reason.as_str()).filter(|r| !r.is_empty()),
        hosts: &e.hosts,
        addresses: &e.ips,
        daily_greylisted: e
            .per_day
            .iter()
            .map(|(day, n)| (date_of(*day), *n))
            .collect(),
    }
}

/// The report as a JSON value (the summary file embeds it).
pub fn to_value(report: &Report) -> serde_json::Result<serde_json::Value> {
    let doc = JsonReport {
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
