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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, ClientName, Decision, Reason};
    use crate::group::Grouper;
    use crate::tally::{MICROS_PER_DAY, Tally};

    /// A window with one sender greylisted 15 times from three networks, each mail passing
    /// after 40 minutes from its first server.
    fn report() -> Report {
        let grouper = Grouper::builtin();
        let mut tally = Tally::default();
        let t0 = 20_000 * MICROS_PER_DAY;
        let decision = |action, reason, delay_s, host: &str, ip: &str, mail: u32| Decision {
            queue_id: None,
            action,
            reason: Some(reason),
            delay_s,
            client_name: Some(ClientName::Host(host.to_owned())),
            client_address: Some(ip.parse().unwrap()),
            // Bounce addresses postgrey keys apart: `bounce-1` and `bounce-2` would be one
            // triplet to it (a number standing alone is replaced), so the later mails would be
            // early retries rather than new.
            sender: Some(format!(
                "bounce-{}@esp.example",
                ["ann", "bob", "cy", "di", "ed"][mail as usize]
            )),
            recipient: Some("bob@example.org".to_owned()),
        };
        for mail in 0..5 {
            let at = t0 + i64::from(mail) * 3_600_000_000;
            for (i, net) in ["192.0.2", "198.51.100", "203.0.113"].iter().enumerate() {
                let host = format!("o{mail}-{i}.out.esp.example");
                let ip = format!("{net}.{}", 10 + mail);
                let d = decision(Action::Greylist, Reason::New, None, &host, &ip, mail);
                tally.record_decision(&grouper, at + i as i64, &d);
            }
            let host = format!("o{mail}-0.out.esp.example");
            let ip = format!("192.0.2.{}", 10 + mail);
            let d = decision(
                Action::Pass,
                Reason::TripletFound,
                Some(2400),
                &host,
                &ip,
                mail,
            );
            tally.record_decision(&grouper, at + 2_400_000_000, &d);
        }
        crate::report::assemble_plain(&tally, 20_000, 20_000)
    }

    #[test]
    fn a_run_writes_a_summary_and_one_entry_per_candidate_with_every_field() {
        let facts = RunFacts {
            entries_read: 1,
            cursor_lost: false,
        };
        let entries = entries(&report(), &facts);
        assert_eq!(
            entries[0],
            [
                "MESSAGE=postgrey-advisor: 1 entry read since the previous run; in the window 15 \
                 greylisted, 1 candidate to review",
                "MESSAGE_ID=81e1a72418af45329193ed2abb060aad",
                "PRIORITY=5",
                "PGADVISOR_KIND=summary",
                "PGADVISOR_CANDIDATES=1",
                "PGADVISOR_ENTRIES_READ=1",
                "PGADVISOR_GREYLISTED=15",
                "PGADVISOR_UNTRUSTED_SKIPPED=0",
                "PGADVISOR_CURSOR_LOST=0",
            ]
        );
        assert_eq!(
            entries[1],
            [
                "MESSAGE=postgrey-advisor: esp.example: whitelist, 15 greylisted, suggest \
                 out.esp.example",
                "MESSAGE_ID=81e1a72418af45329193ed2abb060aad",
                "PRIORITY=5",
                "PGADVISOR_KIND=candidate",
                "PGADVISOR_DOMAIN=esp.example",
                "PGADVISOR_NEW=15",
                "PGADVISOR_GREYLISTED=15",
                "PGADVISOR_RETRIED_FROM_OTHER_NET=10",
                "PGADVISOR_PASSED_AFTER_DELAY=5",
                "PGADVISOR_STATUS=candidate",
                "PGADVISOR_VERDICT=whitelist",
                "PGADVISOR_REASON=multi-server sender: 10 of 15 greylistings retried from another \
                 network, 5 passed after delay, median wait 40m",
                "PGADVISOR_SUGGESTION=out.esp.example",
            ]
        );
        assert_eq!(entries.len(), 2);
    }

    /// The catalog and README explain every field a run writes, and say what `PGADVISOR_NEW`
    /// and the priority really mean.
    #[test]
    fn catalog_and_readme_explain_every_field() {
        let catalog = include_str!("../../units/postgrey-advisor.catalog");
        let readme = include_str!("../../README.md");
        let facts = RunFacts {
            entries_read: 1,
            cursor_lost: true,
        };
        for entry in entries(&report(), &facts) {
            for field in entry {
                let name = field.split_once('=').map_or("", |(name, _)| name);
                if name.starts_with("PGADVISOR_") {
                    assert!(catalog.contains(name), "{name} not in the catalog");
                    assert!(readme.contains(name), "{name} not in README");
                }
            }
        }
        let flat = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let (catalog, readme) = (flat(catalog), flat(readme));
        assert!(
            catalog.contains("PGADVISOR_NEW were first attempts (postgrey's reason=new)"),
            "{catalog}"
        );
        assert!(
            readme.contains(
                "`PGADVISOR_NEW` (how many of those were first attempts, postgrey's `reason=new`"
            ),
            "{readme}"
        );
        assert!(
            catalog.contains("Priority \"notice\" means at least one candidate is unreviewed"),
            "{catalog}"
        );
        assert!(
            readme.contains(
                "`PRIORITY` is notice (5) while any candidate in the window is unreviewed"
            ),
            "{readme}"
        );
    }
}
