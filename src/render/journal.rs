//! The report as structured journal entries: one summary entry and one per candidate, each with
//! a fixed `MESSAGE_ID` (documented in the journal catalog we ship) so that
//! `journalctl MESSAGE_ID=81e1a72418af45329193ed2abb060aad` lists every run's findings.

use super::digest::count;
use crate::escape::printable;
use crate::report::Report;

/// The catalog id of postgrey-advisor's report entries.
pub const MESSAGE_ID: &str = "81e1a72418af45329193ed2abb060aad";

/// syslog priorities: notice while any candidate in the window is unreviewed (whether or not an
/// earlier run reported it), info otherwise.
const PRIORITY_NOTICE: u8 = 5;
const PRIORITY_INFO: u8 = 6;

/// Facts about the run that the report does not hold.
pub struct RunFacts {
    pub entries_read: u64,
    pub cursor_lost: bool,
}

/// Field lists (`KEY=value`) for `sd_journal_send`, summary first.
pub fn entries(report: &Report, facts: &RunFacts) -> Vec<Vec<String>> {
    let candidates: Vec<_> = report.unreviewed().collect();
    let priority = if candidates.is_empty() {
        PRIORITY_INFO
    } else {
        PRIORITY_NOTICE
    };
    let mut all = Vec::with_capacity(candidates.len() + 1);
    let lost = if facts.cursor_lost {
        "; the saved cursor was gone, entries between runs may have been lost"
    } else {
        ""
    };
    all.push(vec![
        format!(
            "MESSAGE=postgrey-advisor: {} read since the previous run; in the window {} greylisted, {} to review{lost}",
            count(facts.entries_read, "entry", "entries"),
            report.totals.greylisted,
            count(candidates.len() as u64, "candidate", "candidates")
        ),
        format!("MESSAGE_ID={MESSAGE_ID}"),
        format!("PRIORITY={priority}"),
        String::from("PGADVISOR_KIND=summary"),
        format!("PGADVISOR_CANDIDATES={}", candidates.len()),
        format!("PGADVISOR_ENTRIES_READ={}", facts.entries_read),
        format!("PGADVISOR_GREYLISTED={}", report.totals.greylisted),
        format!("PGADVISOR_UNTRUSTED_SKIPPED={}", report.totals.untrusted_skipped),
        format!("PGADVISOR_CURSOR_LOST={}", u8::from(facts.cursor_lost)),
    ]);
    for f in candidates {
        let domain = printable(&f.key.to_string());
        let verdict = f.advice.verdict.map_or("none", |v| v.as_str());
        let suggestion = f.advice.suggestion.as_deref().map(printable);
        let mut fields = vec![
            format!(
                "MESSAGE=postgrey-advisor: {domain}: {verdict}, {} greylisted{}",
                f.evidence.greylisted(),
                suggestion
                    .as_deref()
                    .map(|s| format!(", suggest {s}"))
                    .unwrap_or_default()
            ),
            format!("MESSAGE_ID={MESSAGE_ID}"),
            format!("PRIORITY={PRIORITY_NOTICE}"),
            String::from("PGADVISOR_KIND=candidate"),
            format!("PGADVISOR_DOMAIN={domain}"),
            // Greylistings that were first attempts (postgrey's reason=new), not "newly
            // proposed": the catalog says so.
            format!("PGADVISOR_NEW={}", f.evidence.new),
            format!("PGADVISOR_GREYLISTED={}", f.evidence.greylisted()),
            format!(
                "PGADVISOR_RETRIED_FROM_OTHER_NET={}",
                f.evidence.retried_from_other_net
            ),
            format!(
                "PGADVISOR_PASSED_AFTER_DELAY={}",
                f.evidence.passed_after_delay
            ),
            format!("PGADVISOR_STATUS={}", f.advice.status),
            format!("PGADVISOR_VERDICT={verdict}"),
            format!("PGADVISOR_REASON={}", printable(&f.advice.reason)),
        ];
        if let Some(s) = suggestion {
            fields.push(format!("PGADVISOR_SUGGESTION={s}"));
        }
        all.push(fields);
    }
    all
}
