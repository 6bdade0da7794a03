//! The assembled report: every group's evidence over a window with its advice, sorted the way
//! postmasters read it (most `new` greylistings first, ties by name). Pure; renderers only
//! format it.

use crate::advice::{Advice, Context, advise};
use crate::group::GroupKey;
use crate::tally::{Caps, DELAY_CAP, DISTINCT_CAP, Day, Evidence, Folded, PAIR_CAP, Tally, Totals};
use crate::whitelist::suggestion_line;

/// One group with its evidence and advice.
#[derive(Debug, Clone)]
pub struct Finding {
    pub key: GroupKey,
    pub evidence: Evidence,
    pub advice: Advice,
}

/// What every renderer formats.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    pub totals: Totals,
    /// Named groups (registrable domains).
    pub groups: Vec<Finding>,
    /// Clients without a name, by network.
    pub unresolved: Vec<Finding>,
    /// Groups below this many greylistings are hidden in tables unless `show_all`.
    pub min_count: u64,
    pub show_all: bool,
    /// Write suggestions as anchored regexes rather than plain names.
    pub suggest_regex: bool,
    /// Things the reader must know (a cursor lost, a cap hit), one sentence each.
    pub notes: Vec<String>,
}

impl Report {
    /// Groups a table shows: enough greylistings, or all of them with `--all`.
    pub fn shown<'a>(&'a self, findings: &'a [Finding]) -> impl Iterator<Item = &'a Finding> + 'a {
        findings
            .iter()
            .filter(move |f| self.show_all || f.evidence.greylisted() >= self.min_count)
    }

    /// Groups that need the postmaster's decision: neither whitelisted nor ignored, and with a
    /// verdict (so greylisted at least `min_count` times). What the digest lists, the journal
    /// report announces and the monitoring check counts.
    pub fn unreviewed(&self) -> impl Iterator<Item = &Finding> {
        self.groups
            .iter()
            .chain(self.unresolved.iter())
            .filter(|f| f.advice.status.is_unreviewed() && f.advice.verdict.is_some())
    }

    /// Findings with a whitelist suggestion, in report order, with the line to write.
    pub fn suggestion_lines(&self) -> impl Iterator<Item = (&Finding, String)> {
        self.groups.iter().filter_map(|f| {
            f.advice
                .suggestion
                .as_deref()
                .map(|s| (f, suggestion_line(s, self.suggest_regex)))
        })
    }
}

/// Evidence and advice for every group active in the days `[first, last]`.
pub fn assemble(tally: &Tally, first: Day, last: Day, ctx: &Context<'_>) -> Report {
    let mut groups = Vec::new();
    let mut unresolved = Vec::new();
    let mut caps = Caps::default();
    for (key, evidence) in tally.evidence_between(first, last) {
        caps = caps.union(evidence.caps);
        let advice = advise(&key, &evidence, ctx);
        let finding = Finding {
            key,
            evidence,
            advice,
        };
        match finding.key {
            GroupKey::Domain(_) => groups.push(finding),
            GroupKey::Network(_) => unresolved.push(finding),
        }
    }
    for list in [&mut groups, &mut unresolved] {
        list.sort_by(|a, b| {
            b.evidence
                .new
                .cmp(&a.evidence.new)
                .then_with(|| a.key.cmp(&b.key))
        });
    }
    Report {
        totals: tally.totals_between(first, last),
        groups,
        unresolved,
        min_count: ctx.thresholds.min_count,
        notes: cap_notes(caps)
            .into_iter()
            .chain(folded_note(tally.folded_between(first, last)))
            .collect(),
        ..Report::default()
    }
}

/// What folding took out of the window's groups (see `tally::compact`).
fn folded_note(folded: Folded) -> Option<String> {
    (folded.greylisted > 0).then(|| {
        format!(
            "{} greylistings of small groups (at most {} each) were folded to keep the state file within its size limit; they are in the totals but under no group",
            folded.greylisted, folded.largest
        )
    })
}

/// One sentence per cap hit: what it bounds and how that shows in the figures.
fn cap_notes(caps: Caps) -> Vec<String> {
    let mut notes = Vec::new();
    if caps.distinct {
        notes.push(format!(
            "some groups had more distinct hosts, addresses or clients than a day keeps ({DISTINCT_CAP}, fewer once the state file reaches --max-state-size); their distinct counts are lower bounds"
        ));
    }
    if caps.delays {
        notes.push(format!(
            "some groups passed more mails after a delay than a day keeps ({DELAY_CAP}, fewer once the state file reaches --max-state-size); their median wait is estimated from a sample"
        ));
    }
    if caps.pairs {
        notes.push(format!(
            "some groups had more than {PAIR_CAP} greylisted sender/recipient pairs to remember; their retries from another network are lower bounds"
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advice::Thresholds;
    use crate::event::{Action, ClientName, Decision, Reason};
    use crate::group::Grouper;
    use crate::tally::MICROS_PER_DAY;
    use crate::whitelist::Whitelist;

    const T0: i64 = 1_795_000_000_000_000;

    fn decision(host: &str, ip: String, sender: String, delay_s: Option<u64>) -> Decision {
        Decision {
            queue_id: None,
            action: if delay_s.is_some() {
                Action::Pass
            } else {
                Action::Greylist
            },
            reason: Some(if delay_s.is_some() {
                Reason::TripletFound
            } else {
                Reason::New
            }),
            delay_s,
            client_name: Some(ClientName::Host(host.to_owned())),
            client_address: ip.parse().ok(),
            sender: Some(sender),
            recipient: Some("bob@example.org".to_owned()),
        }
    }

    fn report_of(tally: &Tally) -> Report {
        let grouper = Grouper::builtin();
        let whitelist = Whitelist::default();
        let ctx = Context {
            whitelist: &whitelist,
            ignored: &[],
            grouper: &grouper,
            thresholds: Thresholds::default(),
        };
        let (first, last) = tally.span().unwrap_or((0, 0));
        assemble(tally, first, last, &ctx)
    }

    #[test]
    fn the_notes_say_which_cap_was_hit() {
        let grouper = Grouper::builtin();
        let mut tally = Tally::default();
        let record =
            |tally: &mut Tally, at: i64, d: Decision| tally.record_decision(&grouper, at, &d);
        record(
            &mut tally,
            T0,
            decision("mx.quiet.example", "192.0.2.1".into(), "s@x".into(), None),
        );
        assert_eq!(report_of(&tally).notes, Vec::<String>::new());

        for i in 0..=PAIR_CAP as i64 {
            let d = decision(
                "mx.pairs.example",
                "192.0.2.2".into(),
                format!("s{i}@x"),
                None,
            );
            record(&mut tally, T0 + i, d);
        }
        let notes = report_of(&tally).notes;
        assert_eq!(
            notes,
            [
                "some groups had more than 131072 greylisted sender/recipient pairs to remember; \
              their retries from another network are lower bounds"
            ]
        );

        for i in 0..=DELAY_CAP as u64 {
            let d = decision(
                "mx.delays.example",
                "192.0.2.3".into(),
                "s@x".into(),
                Some(300 + i),
            );
            record(&mut tally, T0 + MICROS_PER_DAY, d);
        }
        for i in 0..=DISTINCT_CAP {
            let ip = format!("10.0.{}.{}", i / 200, i % 200 + 1);
            let d = decision("mx.distinct.example", ip, "s@x".into(), None);
            record(&mut tally, T0, d);
        }
        let notes = report_of(&tally).notes;
        assert_eq!(
            notes,
            [
                "some groups had more distinct hosts, addresses or clients than a day keeps (256, \
                 fewer once the state file reaches --max-state-size); their distinct counts are \
                 lower bounds",
                "some groups passed more mails after a delay than a day keeps (512, fewer once the \
                 state file reaches --max-state-size); their median wait is estimated from a \
                 sample",
                "some groups had more than 131072 greylisted sender/recipient pairs to remember; \
                 their retries from another network are lower bounds",
            ]
        );
    }
}
