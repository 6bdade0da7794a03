//! The assembled report: every group's evidence over a window with its advice, sorted the way
//! postmasters read it (most `new` greylistings first, ties by name). Pure; renderers only
//! format it.

use crate::advice::{Advice, Context, advise};
use crate::group::GroupKey;
use crate::tally::{Day, Evidence, Tally, Totals};
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
    let mut capped = false;
    for (key, evidence) in tally.evidence_between(first, last) {
        capped |= evidence.capped;
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
    let mut notes = Vec::new();
    if capped {
        notes.push(format!(
            "some groups had more than {} distinct hosts or addresses a day; their distinct counts are lower bounds",
            crate::tally::DISTINCT_CAP
        ));
    }
    Report {
        totals: tally.totals_between(first, last),
        groups,
        unresolved,
        min_count: ctx.thresholds.min_count,
        notes,
        ..Report::default()
    }
}
