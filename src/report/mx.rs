//! The report's view of a site with several MX hosts: what each host logged, and the note on
//! greylistings repeated at another MX host (see `tally::mx`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Finding, plural};
use crate::tally::{Day, MxTotals, Tally};

/// What one MX host logged over the window. Fields in alphabetical order, as every object of
/// the JSON report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MxHost {
    pub entries: u64,
    pub greylisted: u64,
    pub host: String,
}

/// Every MX host of the days `[first, last]`, by name; empty when there are fewer than two
/// (a report of one host says nothing per host).
pub fn mx_hosts(tally: &Tally, first: Day, last: Day) -> Vec<MxHost> {
    if first > last {
        return Vec::new();
    }
    let mut hosts: BTreeMap<&str, MxTotals> = BTreeMap::new();
    for day in tally.mx_totals.range(first..=last).map(|(_, d)| d) {
        for (host, totals) in day {
            hosts.entry(host.as_str()).or_default().add(totals);
        }
    }
    if hosts.len() < 2 {
        return Vec::new();
    }
    hosts
        .into_iter()
        .map(|(host, totals)| MxHost {
            entries: totals.entries,
            greylisted: totals.greylisted,
            host: host.to_owned(),
        })
        .collect()
}

/// Groups named in the note, most hit first.
const NAMED: usize = 3;

/// The note on greylistings repeated at another MX host, when there were any: advice about the
/// site (one greylisting database for all MX hosts), and the senders hit most.
pub fn mx_note<'a>(
    findings: impl Iterator<Item = &'a Finding>,
    hosts: &[MxHost],
) -> Option<String> {
    let mut hit: Vec<(&Finding, u64)> = findings
        .map(|f| (f, f.evidence.retried_at_other_mx))
        .filter(|(_, n)| *n > 0)
        .collect();
    let total: u64 = hit.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    hit.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.key.cmp(&b.0.key)));
    let named: Vec<String> = hit
        .iter()
        .take(NAMED)
        .map(|(f, n)| format!("{} ({n})", f.key))
        .collect();
    let names: Vec<&str> = hosts.iter().map(|h| h.host.as_str()).collect();
    let at = if names.is_empty() {
        String::new()
    } else {
        format!(" ({})", names.join(", "))
    };
    Some(format!(
        "{total} {} a greylisting at another MX host (same sender, recipient and network): \
         the MX hosts{at} keep separate greylisting databases, so a sender that retries at \
         another MX host waits again. One database for all of them fixes it (one postgrey \
         that every MX host's Postfix asks: postgrey --inet=ADDRESS:10023, \
         check_policy_service inet:ADDRESS:10023), or whitelisting the senders hit most: {}",
        plural(total, "greylisting repeated", "greylistings repeated"),
        named.join(", ")
    ))
}
