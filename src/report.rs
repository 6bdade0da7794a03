//! The assembled report: every group's evidence over a window with its advice, sorted the way
//! postmasters read it (most `new` greylistings first, ties by name). Pure; renderers only
//! format it.

use serde::Serialize;

use crate::advice::{Advice, Context, Status, advise, human_duration};
use crate::group::GroupKey;
use crate::postgrey::Settings;
use crate::tally::{
    Caps, DELAY_CAP, DISTINCT_CAP, Day, Evidence, Folded, MICROS_PER_DAY, PAIR_CAP, Tally, Totals,
};
use crate::whitelist::suggestion_line;

mod mx;
pub use mx::{MxHost, mx_hosts};

/// Version of the JSON report's layout (`schema_version`): raised when a field changes meaning
/// or goes away; added fields keep it.
pub const SCHEMA_VERSION: u32 = 2;

/// What a scan read, so that a report can say why it is empty and which span its data covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// What was read, for people: `the system journal`, `/var/log/mail.log`, ….
    pub source: String,
    /// The program name postgrey's lines were looked for under (`--identifier`).
    pub identifier: String,
    /// Text files: every line read, of any program. `None` for the journal.
    pub lines: Option<u64>,
    /// Lines or entries of postgrey's handed on (within the window).
    pub entries: u64,
    /// Text files: postgrey's lines outside the window. `None` for the journal.
    pub outside_window: Option<u64>,
    /// Time of the oldest and newest entry handed on (µs).
    pub first_us: Option<i64>,
    pub last_us: Option<i64>,
    /// A `run` after an earlier one: the entries are those new since it (µs of that run).
    pub previous_run_us: Option<i64>,
}

/// One group with its evidence and advice.
#[derive(Debug, Clone)]
pub struct Finding {
    pub key: GroupKey,
    pub evidence: Evidence,
    pub advice: Advice,
    /// A whitelist line `accept` wrote lets this group's clients pass: what it did since.
    pub accepted: Option<Accepted>,
}

/// What a line `accept` wrote (dated) did for the group it whitelists, from its date to the
/// end of the window: the loop closed, the postmaster sees that the change worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The date of its `# added by postgrey-advisor on DATE` comment.
    pub on: jiff::civil::Date,
    /// The line as written.
    pub entry: String,
    /// Mails of the group postgrey passed at once (`client whitelist`) from that date on.
    pub passed_at_once: u64,
    /// The group's median wait before that date, when any mail of it waited then (over all
    /// the days the data holds, not only the window's).
    pub median_wait_s: Option<u64>,
}

impl Accepted {
    /// The delay the line spared: each mail passed at once at the group's median wait before
    /// the date, or postgrey's `--delay` (the least a greylisted mail waits) when none waited.
    pub fn spared_delay_s(&self, delay_s: u64) -> u64 {
        self.passed_at_once
            .saturating_mul(self.median_wait_s.unwrap_or(delay_s))
    }
}

/// Days since 1970-01-01 of a date.
fn day_of_date(date: jiff::civil::Date) -> Option<Day> {
    let epoch = jiff::civil::date(1970, 1, 1);
    Some(i64::from(date.since(epoch).ok()?.get_days()))
}

/// What the dated line that whitelists the group did since its date (see [`Accepted`]).
fn accepted(
    tally: &Tally,
    key: &GroupKey,
    evidence: &Evidence,
    advice: &Advice,
    ctx: &Context<'_>,
    last: Day,
) -> Option<Accepted> {
    if !matches!(
        advice.status,
        Status::Whitelisted | Status::PartlyWhitelisted
    ) {
        return None;
    }
    let rule = ctx.whitelist.accepted_rule_for(&evidence.clients)?;
    let on = rule.added_on?;
    let on_day = day_of_date(on)?;
    let group = tally.groups.get(key)?;
    let passed_at_once = group
        .days
        .range(on_day..)
        .take_while(|(day, _)| **day <= last)
        .fold(0u64, |sum, (_, d)| sum.saturating_add(d.passed_whitelisted));
    let median_wait_s = group
        .evidence(Day::MIN, on_day.saturating_sub(1))
        .and_then(|before| before.median_delay_s);
    Some(Accepted {
        on,
        entry: rule.entry.clone(),
        passed_at_once,
        median_wait_s,
    })
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
    /// Greylistings of small groups folded into the totals to bound the state file.
    pub folded: Folded,
    /// Groups below this many greylistings are hidden in tables unless `show_all`.
    pub min_count: u64,
    pub show_all: bool,
    /// Write suggestions as anchored regexes rather than plain names.
    pub suggest_regex: bool,
    /// Things the reader must know (a cursor lost, a cap hit), one sentence each.
    pub notes: Vec<String>,
    /// The whitelist files the statuses were computed against (those that exist).
    pub whitelist_files: Vec<String>,
    /// The ignore file read.
    pub ignore_file: Option<String>,
    /// What the scan behind the report read, when the report comes from one.
    pub reading: Option<Reading>,
    /// The settings of the postgrey advised (its defaults unless its options file says other).
    pub postgrey: Settings,
    /// What each MX host logged, when there were several (see `report::mx`).
    pub mx_hosts: Vec<MxHost>,
    /// Tables show each MX host's groups too (`report --by-mx`).
    pub by_mx: bool,
}

/// The fields of the JSON report that describe the report itself rather than the senders.
#[derive(Debug, Serialize)]
pub struct JsonMeta<'a> {
    pub schema_version: u32,
    /// What `since` and `until` cover, in words (`null` means no bound).
    pub window: &'static str,
    pub min_count: u64,
    pub whitelist_files: &'a [String],
    pub ignore_file: Option<&'a str>,
    /// `greylisted` of the totals that no group or unresolved network holds: neither a
    /// client name nor an address to group by, or folded away (`folded_greylisted`).
    pub ungrouped_greylisted: u64,
    pub folded_greylisted: u64,
    pub read: Option<JsonReading<'a>>,
    pub postgrey: JsonPostgrey,
}

/// The settings of the postgrey advised, for JSON; fields in alphabetical order.
#[derive(Debug, Serialize)]
pub struct JsonPostgrey {
    /// The options file they were read from; `null`: postgrey's defaults (no file).
    pub config: Option<String>,
    pub delay_s: u64,
    pub ipv4cidr: u8,
    pub ipv6cidr: u8,
    pub lookup_by_host: bool,
    /// The files postgrey reads (whether or not they exist).
    pub whitelist_clients: Vec<String>,
}

/// [`Reading`] for JSON; fields in alphabetical order, as every object of the report.
#[derive(Debug, Serialize)]
pub struct JsonReading<'a> {
    pub entries: u64,
    pub first: Option<String>,
    pub identifier: &'a str,
    pub last: Option<String>,
    pub lines: Option<u64>,
    pub outside_window: Option<u64>,
    pub previous_run: Option<String>,
    pub source: &'a str,
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

    /// Greylistings (of the totals) that neither a group nor an unresolved network holds, apart
    /// from folded ones: decisions with neither a usable client name nor an address.
    pub fn ungrouped_greylisted(&self) -> u64 {
        let grouped = self
            .groups
            .iter()
            .chain(self.unresolved.iter())
            .fold(0u64, |sum, f| sum.saturating_add(f.evidence.greylisted()));
        self.totals
            .greylisted
            .saturating_sub(grouped)
            .saturating_sub(self.folded.greylisted)
    }

    /// The delay the suggested whitelist lines would have spared: the delays of the groups
    /// that have one (verdict `whitelist`), in seconds.
    pub fn spared_delay_s(&self) -> u64 {
        self.suggestion_lines().fold(0u64, |sum, (f, _)| {
            sum.saturating_add(f.evidence.delay_total_s)
        })
    }

    /// What greylisting cost and what the suggestions would spare, in one sentence a
    /// postmaster reads at a glance: the first line of the table and of the digest. `None`
    /// when postgrey decided nothing in the window (the report then says why it is empty).
    pub fn headline(&self) -> Option<String> {
        if self.totals.decisions == 0 {
            return None;
        }
        let span = match (self.since_us, self.until_us) {
            (Some(since), Some(until)) if until > since => {
                let days = (until - since + MICROS_PER_DAY - 1) / MICROS_PER_DAY;
                match days {
                    1 => String::from("in 1 day"),
                    7 => String::from("this week"),
                    n if n <= crate::tally::MAX_FILLED_DAYS => format!("in {n} days"),
                    _ => String::from("in the window"),
                }
            }
            _ => String::from("in this log"),
        };
        let t = &self.totals;
        if t.delayed == 0 {
            return Some(format!("Greylisting held no mail past its delay {span}."));
        }
        let mut text = format!(
            "Greylisting held {} {} for {} {span}",
            thousands(t.delayed),
            plural(t.delayed, "mail", "mails"),
            hours(t.delay_total_s)
        );
        let lines = self.suggestion_lines().count() as u64;
        if lines > 0 {
            let spared = self.spared_delay_s();
            let percent = (u128::from(spared) * 100 + u128::from(t.delay_total_s) / 2)
                / u128::from(t.delay_total_s.max(1));
            let suggested = if lines == 1 {
                String::from("the suggested line")
            } else {
                format!("the {} suggested lines", thousands(lines))
            };
            text.push_str(&format!(
                "; {suggested} would have spared {} ({percent} %)",
                hours(spared)
            ));
        }
        text.push('.');
        Some(text)
    }

    /// One sentence per group a line `accept` wrote whitelists: what it did since its date.
    pub fn accepted_words(&self) -> Vec<String> {
        self.groups
            .iter()
            .chain(self.unresolved.iter())
            .filter_map(|f| {
                let a = f.accepted.as_ref()?;
                let spared = a.spared_delay_s(self.postgrey.delay_s);
                Some(format!(
                    "{} (added {}): {} {} of {} passed at once since, sparing {}{}.",
                    a.entry,
                    a.on,
                    thousands(a.passed_at_once),
                    plural(a.passed_at_once, "mail", "mails"),
                    f.key,
                    hours(spared),
                    match a.median_wait_s {
                        Some(wait) => format!(" at its median wait of {}", human_duration(wait)),
                        None => format!(
                            " at postgrey's delay of {}",
                            human_duration(self.postgrey.delay_s)
                        ),
                    }
                ))
            })
            .collect()
    }

    /// The one line the table and the digest show when postgrey runs with settings other
    /// than its defaults; `None` with the defaults.
    pub fn settings_words(&self) -> Option<String> {
        let settings = &self.postgrey;
        if settings.is_default() {
            return None;
        }
        let source = settings
            .config
            .as_ref()
            .map(|c| format!(" (from {})", c.display()))
            .unwrap_or_default();
        Some(format!(
            "Counted as postgrey runs{source}: {}.",
            settings.describe_changes()
        ))
    }

    /// What `since` and `until` mean, for the JSON's `window`.
    pub fn window_words(&self) -> &'static str {
        match (self.since_us, self.until_us) {
            (None, None) => "all data: since and until are null, the source was read whole",
            (Some(_), None) => "from since to the end of the data (until is null)",
            (None, Some(_)) => "from the start of the data (since is null) to until",
            (Some(_), Some(_)) => "from since (inclusive) to until (exclusive)",
        }
    }

    /// The self-describing part of the JSON report.
    pub fn json_meta(&self) -> JsonMeta<'_> {
        JsonMeta {
            schema_version: SCHEMA_VERSION,
            window: self.window_words(),
            min_count: self.min_count,
            whitelist_files: &self.whitelist_files,
            ignore_file: self.ignore_file.as_deref(),
            ungrouped_greylisted: self.ungrouped_greylisted(),
            folded_greylisted: self.folded.greylisted,
            postgrey: JsonPostgrey {
                config: self
                    .postgrey
                    .config
                    .as_ref()
                    .map(|p| p.display().to_string()),
                delay_s: self.postgrey.delay_s,
                ipv4cidr: self.postgrey.ipv4cidr,
                ipv6cidr: self.postgrey.ipv6cidr,
                lookup_by_host: self.postgrey.lookup_by_host,
                whitelist_clients: self
                    .postgrey
                    .whitelist_clients
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
            },
            read: self.reading.as_ref().map(|r| JsonReading {
                source: &r.source,
                identifier: &r.identifier,
                lines: r.lines,
                entries: r.entries,
                outside_window: r.outside_window,
                first: r.first_us.map(crate::render::rfc3339),
                last: r.last_us.map(crate::render::rfc3339),
                previous_run: r.previous_run_us.map(crate::render::rfc3339),
            }),
        }
    }

    /// What was read, in one sentence (`None` when the report comes from no scan). `when`
    /// formats a time for the reader.
    pub fn read_words(&self, when: impl Fn(i64) -> String) -> Option<String> {
        let r = self.reading.as_ref()?;
        let span = match (r.first_us, r.last_us) {
            (Some(first), Some(last)) => format!(", from {} to {}", when(first), when(last)),
            _ => String::new(),
        };
        let of_postgrey = match (r.lines, r.outside_window) {
            (Some(lines), Some(outside)) if outside > 0 => format!(
                "{lines} {}, {} of them {}'s in the window and {outside} outside it",
                plural(lines, "line", "lines"),
                r.entries,
                r.identifier
            ),
            (Some(lines), _) => format!(
                "{lines} {}, {} of them {}'s",
                plural(lines, "line", "lines"),
                r.entries,
                r.identifier
            ),
            (None, _) => format!(
                "{} {} of {}",
                r.entries,
                plural(r.entries, "entry", "entries"),
                r.identifier
            ),
        };
        Some(match r.previous_run_us {
            Some(previous) => format!(
                "Read {}: {} new {} since the last run ({}){span}.",
                r.source,
                r.entries,
                plural(r.entries, "entry", "entries"),
                when(previous)
            ),
            None => format!("Read {}: {of_postgrey}{span}.", r.source),
        })
    }

    /// Why no group is shown, when the window holds no postgrey line at all: what to change.
    /// `None` when there were postgrey lines (then too few greylistings is the reason).
    pub fn empty_words(&self) -> Option<String> {
        if self.totals.postgrey_lines > 0 {
            return None;
        }
        let Some(r) = self.reading.as_ref() else {
            return Some(String::from("No postgrey line in the window."));
        };
        let identifier_hint = format!(
            "if postgrey logs under another program name, give it with --identifier (now {:?})",
            r.identifier
        );
        Some(match (r.lines, r.outside_window) {
            (Some(0), _) => String::from("The files hold no lines."),
            (Some(lines), Some(0)) if r.entries == 0 => format!(
                "None of the {lines} {} is {}'s: {identifier_hint}.",
                plural(lines, "line", "lines"),
                r.identifier
            ),
            (_, Some(outside)) if r.entries == 0 && outside > 0 => format!(
                "All {outside} {}'s {} lie outside the window: widen --since/--until.",
                r.identifier,
                plural(outside, "line", "lines")
            ),
            _ if r.entries > 0 => format!(
                "None of the {} {} read lies in the window{}.",
                r.entries,
                plural(r.entries, "entry", "entries"),
                if r.previous_run_us.is_some() {
                    ""
                } else {
                    " (--window counts back from now; --since/--initial-since choose what is read)"
                }
            ),
            _ if r.previous_run_us.is_some() => {
                String::from("No postgrey line in the window, and nothing new since the last run.")
            }
            _ => format!(
                "No entry of {} in {} for the window: {identifier_hint}, --unit and --trust-uid which writer is trusted.",
                r.identifier, r.source
            ),
        })
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

/// `1,234,567`: a count as people read it.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A sum of delays in the unit a postmaster thinks of it: seconds below a minute and a half,
/// minutes below an hour and a half, hours above (one decimal below ten).
pub fn hours(seconds: u64) -> String {
    if seconds < 90 {
        format!("{seconds} s")
    } else if seconds < 5400 {
        format!("{} min", (seconds + 30) / 60)
    } else if seconds < 36_000 {
        format!("{:.1} h", seconds as f64 / 3600.0)
    } else {
        format!("{} h", thousands((seconds + 1800) / 3600))
    }
}

/// `one` or `many` by the count.
pub fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Evidence and advice for every group active in the days `[first, last]`.
pub fn assemble(tally: &Tally, first: Day, last: Day, ctx: &Context<'_>) -> Report {
    let mut caps = Caps::default();
    let mut findings = tally.evidence_between_into(first, last, &|key, evidence| {
        let advice = advise(key, &evidence, ctx);
        let accepted = accepted(tally, key, &evidence, &advice, ctx, last);
        Finding {
            key: key.clone(),
            evidence,
            advice,
            accepted,
        }
    });
    for finding in &findings {
        caps = caps.union(finding.evidence.caps);
    }
    // Taken out of the findings in place: the groups, thousands of findings of hundreds of
    // bytes each, are not moved into a list of their own.
    let mut unresolved: Vec<Finding> = findings
        .extract_if(.., |f| matches!(f.key, GroupKey::Network(_)))
        .collect();
    let mut groups = findings;
    for list in [&mut groups, &mut unresolved] {
        // Most new greylistings first, ties by key: the findings come in key order, and this
        // sort keeps the order of findings it ranks equal. A finding is hundreds of bytes:
        // sorted by a cached key, each is moved once rather than at every step of the sort.
        list.sort_by_cached_key(|f| std::cmp::Reverse(f.evidence.new));
    }
    let folded = tally.folded_between(first, last);
    let mx_hosts = mx_hosts(tally, first, last);
    let mx_note = mx::mx_note(groups.iter().chain(unresolved.iter()), &mx_hosts);
    let mut report = Report {
        totals: tally.totals_between(first, last),
        groups,
        unresolved,
        min_count: ctx.thresholds.min_count,
        notes: cap_notes(caps)
            .into_iter()
            .chain(folded_note(folded))
            .chain(mx_note)
            .collect(),
        folded,
        mx_hosts,
        ..Report::default()
    };
    let ungrouped = report.ungrouped_greylisted();
    if ungrouped > 0 {
        report.notes.push(format!(
            "{ungrouped} {} neither a usable client name nor a client address: in the totals but under no group",
            plural(ungrouped, "greylisting had", "greylistings had")
        ));
    }
    report
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

/// A report over `first..=last` with no whitelist, no ignore list, the built-in Public Suffix
/// List and the default thresholds: what the renderers' tests start from.
#[cfg(test)]
pub(crate) fn assemble_plain(tally: &Tally, first: Day, last: Day) -> Report {
    let whitelist = crate::whitelist::Whitelist::default();
    let grouper = crate::group::Grouper::builtin();
    let ctx = Context {
        whitelist: &whitelist,
        ignored: &[],
        grouper: &grouper,
        thresholds: crate::advice::Thresholds::default(),
    };
    assemble(tally, first, last, &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, ClientName, Decision, Reason};
    use crate::group::Grouper;
    use crate::tally::MICROS_PER_DAY;

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
        let (first, last) = tally.span().unwrap_or((0, 0));
        assemble_plain(tally, first, last)
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

    #[test]
    fn delays_read_as_a_postmaster_thinks_of_them() {
        let shown: Vec<String> = [0, 89, 90, 5399, 5400, 35_999, 36_000, 574_560, 4_500_000]
            .into_iter()
            .map(hours)
            .collect();
        assert_eq!(
            shown,
            [
                "0 s", "89 s", "2 min", "90 min", "1.5 h", "10.0 h", "10 h", "160 h", "1,250 h"
            ]
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
