//! `check` (also `check_postgrey_whitelist`): a Monitoring Plugin that counts *unreviewed*
//! sender groups — greylisted at least `--min-count` times in the window, neither whitelisted
//! nor ignored. It reads the summary the timer job writes (no journal access needed) and
//! re-evaluates every group against the whitelist and ignore files as they are *now*, so an
//! alert clears as soon as the postmaster adds the entry. Its window and `--min-count` are the
//! run's (the summary records them), so the check counts what the digest lists; flags override
//! them. With `--since` it scans the journal itself, for hosts without the timer.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::inputs::{AdviceInputs, Days, parse_span, parse_time, scan};
use crate::advice::{self, Seen, Status};
use crate::cli::{AdviceArgs, CheckArgs, DEFAULT_MIN_COUNT, ShowArgs};
use crate::group::GroupKey;
use crate::json_text::Text;
use crate::nagios::{self, Range, State, sanitize};
use crate::source::journal::Start;
use crate::tally::{Day, Tally};

pub const EXIT_UNKNOWN: i32 = 3;
const SERVICE: &str = "POSTGREY WHITELIST";
/// Longest first line before ` | `, for the monitoring UIs that show only that much.
const FIRST_LINE_BUDGET: usize = 80;

/// One group as the check sees it.
#[derive(Debug, Clone)]
struct Group {
    key: GroupKey,
    greylisted: u64,
    status: Status,
    verdict: Option<String>,
    suggestion: Option<String>,
    /// Greylistings in the window the verdict was given over (the run's, for a summary).
    judged_on: u64,
}

/// What the check counts.
#[derive(Debug, Default)]
struct Findings {
    /// The groups the output may name: from a summary, only those with at least `--min-count`
    /// greylistings unless -v lists every one.
    groups: Vec<Group>,
    /// Every group, listed or not (the `groups` perfdata).
    group_count: usize,
    /// Groups the whitelist lets pass now, listed or not.
    whitelisted: usize,
    greylisted: u64,
    /// The sum of the delays of the mails that passed after greylisting (seconds): over the
    /// run's window when read from the summary (it keeps no delays per day), over `--since`
    /// when scanned.
    delay_total_s: u64,
    age_s: Option<i64>,
    /// The run's `--min-count`, when the summary records it.
    run_min_count: Option<u64>,
}

/// The summary as the check reads it: borrowed from the file's bytes where it can be (names
/// are most of a big summary, and allocating each made loading it the check's main cost).
#[derive(Deserialize)]
struct SummaryFile<'a> {
    last_run: String,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    min_count: Option<u64>,
    #[serde(borrow)]
    groups: Vec<SummaryGroup<'a>>,
    #[serde(borrow)]
    unresolved: Vec<SummaryGroup<'a>>,
    /// Absent from summaries written before delays were summed.
    #[serde(default)]
    totals: SummaryTotals,
}

#[derive(Deserialize, Default)]
struct SummaryTotals {
    #[serde(default)]
    delay_total_s: u64,
}

/// One group of the summary. What its status is judged on stays unparsed text until the check
/// needs it: most of a big summary's groups were greylisted too seldom to be listed, and
/// parsing their names and addresses was most of the check's time.
#[derive(Deserialize)]
struct SummaryGroup<'a> {
    #[serde(default, borrow)]
    domain: Option<Text<'a>>,
    #[serde(default, borrow)]
    network: Option<Text<'a>>,
    greylisted: u64,
    /// Host names (`[name, …]`).
    #[serde(default, borrow)]
    hosts: Option<&'a RawValue>,
    /// Addresses (`[address, …]`).
    #[serde(default, borrow)]
    addresses: Option<&'a RawValue>,
    /// `[[name or null, address], …]`: the group is whitelisted when every one is covered by
    /// its name or its address.
    #[serde(default, borrow)]
    clients: Option<&'a RawValue>,
    #[serde(default, borrow)]
    verdict: Option<Text<'a>>,
    #[serde(default, borrow)]
    suggestion: Option<Text<'a>>,
    /// `daily_greylisted`, read when the group's count is taken (see [`DailyCounts`]).
    #[serde(default, borrow)]
    daily_greylisted: Option<&'a RawValue>,
}

/// A group's clients, host names and addresses, parsed from the summary.
struct Clients<'a> {
    hosts: Vec<Text<'a>>,
    addresses: Vec<IpAddr>,
    clients: Vec<(Option<Text<'a>>, IpAddr)>,
}

impl<'a> Clients<'a> {
    /// Host names and addresses count only for a group without clients (an old summary).
    fn of(group: &SummaryGroup<'a>) -> serde_json::Result<Self> {
        let clients = parse_list(group.clients)?;
        let (hosts, addresses) = if clients.is_empty() {
            (parse_list(group.hosts)?, parse_list(group.addresses)?)
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Clients {
            hosts,
            addresses,
            clients,
        })
    }

    fn seen(&self) -> Seen<'_, Text<'a>> {
        Seen {
            hosts: &self.hosts,
            ips: &self.addresses,
            clients: &self.clients,
        }
    }
}

fn parse_list<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> serde_json::Result<Vec<T>> {
    match raw {
        Some(raw) => serde_json::from_str(raw.get()),
        None => Ok(Vec::new()),
    }
}

/// `daily_greylisted`: date → greylistings, in the file's order.
#[derive(Default)]
struct DailyCounts<'a>(Vec<(Text<'a>, u64)>);

impl<'de: 'a, 'a> Deserialize<'de> for DailyCounts<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = DailyCounts<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of dates to counts")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<DailyCounts<'de>, A::Error> {
                let mut days = Vec::new();
                while let Some(day) = map.next_entry()? {
                    days.push(day);
                }
                Ok(DailyCounts(days))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn day_of_date(date: &str) -> Option<Day> {
    let date: jiff::civil::Date = date.parse().ok()?;
    let epoch = jiff::civil::date(1970, 1, 1);
    Some(i64::from(date.since(epoch).ok()?.get_days()))
}

/// The check lists every unreviewed group and suggests plain names.
const SHOW: ShowArgs = ShowArgs {
    all: true,
    regex: false,
};

/// The `--min-count` the check counts from: the flag's, else the run's, else the default.
fn min_count_of(args: &CheckArgs, run_min_count: Option<u64>) -> u64 {
    args.min_count
        .or(run_min_count)
        .unwrap_or(DEFAULT_MIN_COUNT)
}

fn from_summary(
    args: &CheckArgs,
    inputs: &AdviceInputs,
    now: Timestamp,
) -> anyhow::Result<Findings> {
    let path: &Path = &args.summary;
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        // Every completed run writes the summary: without one, none has completed yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(anyhow!(
                "no run of postgrey-advisor has completed yet: {} does not exist \
                 (start one: systemctl start postgrey-advisor.service)",
                path.display()
            ));
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read summary {}", path.display()));
        }
    };
    let corrupt = || format!("summary {} is corrupt", path.display());
    // Checked as a whole at once, the text's strings need no checking one by one; an invalid
    // file is left to serde_json, for the position in its message.
    let summary: SummaryFile = match std::str::from_utf8(&bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(&bytes),
    }
    .with_context(corrupt)?;
    let last_run: Timestamp = summary
        .last_run
        .parse()
        .with_context(|| format!("summary {}: bad last_run", path.display()))?;
    let age_s = now.as_second() - last_run.as_second();
    let max_age = parse_span("--max-age", &args.max_age)?;
    if age_s > i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX) {
        return Err(anyhow!(
            "summary {} is {} old (--max-age {}): is postgrey-advisor.timer running?",
            path.display(),
            advice::human_duration(age_s.unsigned_abs()),
            args.max_age
        ));
    }
    let summary_since = summary
        .since
        .as_deref()
        .and_then(|s| s.parse::<Timestamp>().ok());
    // Without --window the check counts over the run's window: the days since the summary's
    // `since` (every day it lists when it records none).
    let first_day = match (&args.window, summary_since) {
        (Some(window), _) => {
            let span = parse_span("--window", window)?;
            let first_day = Days::rolling(
                now.as_microsecond(),
                i64::try_from(span.as_micros()).unwrap_or(i64::MAX),
            )
            .first;
            // A summary covers only the run's --window: a wider check window cannot be answered.
            if let Some(since) = summary_since {
                let covered = Days::between(since.as_microsecond(), now.as_microsecond());
                if first_day < covered.first {
                    return Err(anyhow!(
                        "--window {window} is wider than summary {} covers (since {since}); widen the timer's --window",
                        path.display()
                    ));
                }
            }
            first_day
        }
        (None, Some(since)) => Days::between(since.as_microsecond(), now.as_microsecond()).first,
        (None, None) => Day::MIN,
    };
    let min_count = min_count_of(args, summary.min_count);
    let whitelist = &inputs.whitelist;
    let mut groups = Vec::new();
    let (mut group_count, mut whitelisted, mut total) = (0, 0, 0u64);
    // A week's summary names the same few dates in every group: each is parsed once.
    let mut days_of_dates: HashMap<String, Option<Day>, BuildHasherDefault<fnv::FnvHasher>> =
        HashMap::default();
    for g in summary.groups.iter().chain(&summary.unresolved) {
        let network = match (&g.domain, &g.network) {
            (Some(_), _) => None,
            (None, Some(n)) => Some(n.as_ref().parse().map_err(|_| {
                anyhow!("summary {}: bad network {:?}", path.display(), n.as_ref())
            })?),
            (None, None) => {
                return Err(anyhow!(
                    "summary {}: a group without a name",
                    path.display()
                ));
            }
        };
        // Days let a narrower --window than the run's be honoured.
        // Read one group at a time, the days need no memory of their own.
        let daily: DailyCounts = match g.daily_greylisted {
            Some(text) => serde_json::from_str(text.get()).with_context(corrupt)?,
            None => DailyCounts::default(),
        };
        let greylisted = if daily.0.is_empty() {
            g.greylisted
        } else {
            daily
                .0
                .iter()
                .filter(|(date, _)| {
                    let date: &str = date.as_ref();
                    let day = match days_of_dates.get(date) {
                        Some(day) => *day,
                        None => *days_of_dates
                            .entry(date.to_owned())
                            .or_insert(day_of_date(date)),
                    };
                    day.is_some_and(|d| d >= first_day)
                })
                // Saturating: the file is input, and no count is worth a crash.
                .fold(0, |sum: u64, (_, n)| sum.saturating_add(*n))
        };
        group_count += 1;
        // The run's total covers the run's window; the groups' sum honours this --window.
        total = total.saturating_add(greylisted);
        // An empty whitelist covers no client: no status needs the clients then.
        let clients = if whitelist.is_empty() {
            None
        } else {
            Some(Clients::of(g).with_context(corrupt)?)
        };
        if args.verbose == 0 && greylisted < min_count {
            // Never named: it counts only among the whitelisted groups.
            if clients.is_some_and(|c| advice::is_whitelisted(&c.seen(), whitelist)) {
                whitelisted += 1;
            }
            continue;
        }
        let key = match network {
            Some(network) => GroupKey::Network(network),
            None => GroupKey::Domain(g.domain.as_ref().map_or("", AsRef::as_ref).to_owned()),
        };
        let status = match &clients {
            Some(c) => advice::status_of(&key, &c.seen(), whitelist, &inputs.ignored),
            None => advice::status_of::<&str>(&key, &Seen::NOTHING, whitelist, &inputs.ignored),
        };
        if status == Status::Whitelisted {
            whitelisted += 1;
        }
        groups.push(Group {
            key,
            greylisted,
            status,
            verdict: g.verdict.as_ref().map(|v| v.as_ref().to_owned()),
            suggestion: g.suggestion.as_ref().map(|s| s.as_ref().to_owned()),
            judged_on: g.greylisted,
        });
    }
    Ok(Findings {
        groups,
        group_count,
        whitelisted,
        greylisted: total,
        delay_total_s: summary.totals.delay_total_s,
        age_s: Some(age_s),
        run_min_count: summary.min_count,
    })
}

fn from_journal(
    args: &CheckArgs,
    since: &str,
    inputs: &AdviceInputs,
    now: Timestamp,
) -> anyhow::Result<Findings> {
    let since_us = parse_time("--since", since, now)?;
    let mut tally = Tally::default();
    scan(
        &args.source,
        Start::Time(Some(since_us)),
        None,
        &inputs.grouper,
        &mut tally,
    )?;
    let report = inputs.report(&tally, Days::between(since_us, now.as_microsecond()), &SHOW);
    let groups: Vec<Group> = report
        .groups
        .iter()
        .chain(report.unresolved.iter())
        .map(|f| Group {
            key: f.key.clone(),
            greylisted: f.evidence.greylisted(),
            status: f.advice.status,
            verdict: f.advice.verdict.map(|v| v.as_str().to_owned()),
            suggestion: f.advice.suggestion.clone(),
            judged_on: f.evidence.greylisted(),
        })
        .collect();
    Ok(Findings {
        group_count: groups.len(),
        whitelisted: groups
            .iter()
            .filter(|g| g.status == Status::Whitelisted)
            .count(),
        groups,
        greylisted: report.totals.greylisted,
        delay_total_s: report.totals.delay_total_s,
        age_s: None,
        run_min_count: None,
    })
}

/// The first line's text: the count and as many names as fit, most greylisted first, the rest
/// as `+N more`; just the count when not even the first name fits.
fn headline(unreviewed: &[&Group], state: State) -> String {
    if unreviewed.is_empty() {
        return String::from("no unreviewed senders");
    }
    let noun = if unreviewed.len() == 1 {
        "sender"
    } else {
        "senders"
    };
    let budget = FIRST_LINE_BUDGET.saturating_sub(format!("{SERVICE} {state} - ").len());
    let mut text = format!("{} unreviewed {noun}", unreviewed.len());
    let mut shown = 0;
    for (i, g) in unreviewed.iter().enumerate() {
        let name = sanitize(&g.key.to_string());
        let rest = unreviewed.len() - i - 1;
        let more = if rest == 0 {
            0
        } else {
            format!(", +{rest} more").len()
        };
        // ": " before the first name, ", " before the others.
        if text.chars().count() + 2 + name.chars().count() + more > budget {
            break;
        }
        text.push_str(if i == 0 { ": " } else { ", " });
        text.push_str(&name);
        shown += 1;
    }
    if shown > 0 && shown < unreviewed.len() {
        text.push_str(&format!(", +{} more", unreviewed.len() - shown));
    }
    text
}

/// The check without its watchdog: the state and the plugin's output, or why it cannot tell.
pub fn evaluate(args: &CheckArgs) -> anyhow::Result<(State, String)> {
    let warning = Range::parse(&args.warning).map_err(|e| anyhow!("-w: {e}"))?;
    let critical = args
        .critical
        .as_deref()
        .map(Range::parse)
        .transpose()
        .map_err(|e| anyhow!("-c: {e}"))?;
    let now = Timestamp::now();
    let source = &args.source;
    if args.since.is_none()
        && (!source.files.is_empty()
            || source.journal_dir.is_some()
            || !source.journal_file.is_empty())
    {
        return Err(anyhow!(
            "--file, --journal-dir and --journal-file need --since (without it the check reads the summary {})",
            args.summary.display()
        ));
    }
    // Loaded with the default count: the summary's decides below unless --min-count is given.
    let advice = AdviceArgs {
        whitelist: args.whitelist.clone(),
        ignore_file: args.ignore_file.clone(),
        legacy_ignore: args.legacy_ignore.clone(),
        min_count: args.min_count.unwrap_or(DEFAULT_MIN_COUNT),
    };
    let inputs = AdviceInputs::load(&advice, &args.source)?;
    let findings = match &args.since {
        Some(since) => from_journal(args, since, &inputs, now)?,
        None => from_summary(args, &inputs, now)?,
    };
    let min_count = min_count_of(args, findings.run_min_count);
    let mut unreviewed: Vec<&Group> = findings
        .groups
        .iter()
        .filter(|g| g.greylisted >= min_count && g.status.is_unreviewed())
        .collect();
    unreviewed.sort_by(|a, b| {
        b.greylisted
            .cmp(&a.greylisted)
            .then_with(|| a.key.cmp(&b.key))
    });
    let count = unreviewed.len();
    let state = nagios::evaluate(count as f64, Some(&warning), critical.as_ref());
    let whitelisted = findings.whitelisted;
    let mut out = format!(
        "{SERVICE} {state} - {} | unreviewed={count};{};{};0 greylisted={};;;0 delay={}s;;;0 groups={};;;0 whitelisted_groups={whitelisted};;;0",
        headline(&unreviewed, state),
        warning.text,
        critical.as_ref().map_or("", |c| c.text.as_str()),
        findings.greylisted,
        findings.delay_total_s,
        findings.group_count,
    );
    if let Some(age) = findings.age_s {
        out.push_str(&format!(" age={age}s;;;0"));
    }
    for g in &unreviewed {
        out.push_str(&format!(
            "\n{}: {} greylisted, {}, {}{}",
            sanitize(&g.key.to_string()),
            g.greylisted,
            g.status,
            match &g.verdict {
                Some(v) => format!("verdict {}", known_verdict(v)),
                None => unjudged(g, findings.run_min_count),
            },
            g.suggestion
                .as_deref()
                .map(|s| format!(", suggest {}", sanitize(s)))
                .unwrap_or_default()
        ));
    }
    if args.verbose > 0 {
        for g in findings
            .groups
            .iter()
            .filter(|g| !unreviewed.iter().any(|u| u.key == g.key))
        {
            out.push_str(&format!(
                "\n{}: {} greylisted, {}",
                sanitize(&g.key.to_string()),
                g.greylisted,
                g.status
            ));
        }
        if let Some(note) = &inputs.legacy_ignore {
            out.push_str(&format!("\n{}", sanitize(note)));
        }
    }
    Ok((state, out))
}

/// Why a group the check counts has no verdict: the run saw too few greylistings (over its
/// window, from its --min-count), or the group was whitelisted or ignored when it ran.
fn unjudged(group: &Group, run_min_count: Option<u64>) -> String {
    match run_min_count {
        Some(m) if group.judged_on < m => {
            format!("no verdict yet (the run judges from {m} greylistings)")
        }
        _ => String::from("no verdict yet (whitelisted or ignored when the run judged)"),
    }
}

/// A verdict word from the summary, or `?` for anything else (a hand-edited file).
fn known_verdict(word: &str) -> &str {
    match word {
        "whitelist" | "spam-like" | "review" => word,
        _ => "?",
    }
}

fn unknown(reason: &str) -> String {
    format!("{SERVICE} UNKNOWN - {}", sanitize(reason))
}

/// A command line clap refused: UNKNOWN with clap's one-line reason on stdout, where the
/// monitoring core looks (clap's full message with the usage still goes to stderr).
pub fn refused_arguments(error: &clap::Error) -> i32 {
    let message = error.to_string();
    let reason = message.lines().next().unwrap_or_default();
    let reason = reason.strip_prefix("error: ").unwrap_or(reason);
    println!("{}", unknown(&format!("{reason} (see --help)")));
    EXIT_UNKNOWN
}

/// Runs the check and prints its result; returns the plugin exit code (0–3).
pub fn check(args: &CheckArgs) -> i32 {
    if args.version {
        println!(
            "check_postgrey_whitelist (postgrey-advisor) {}",
            env!("CARGO_PKG_VERSION")
        );
        return State::Ok.code();
    }
    let timeout = Duration::from_secs(args.timeout.max(1));
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        println!(
            "{}",
            unknown(&format!("timed out after {} s (-t)", timeout.as_secs()))
        );
        std::process::exit(EXIT_UNKNOWN);
    });
    match evaluate(args) {
        Ok((state, text)) => {
            println!("{text}");
            state.code()
        }
        Err(e) => {
            println!("{}", unknown(&format!("{e:#}")));
            EXIT_UNKNOWN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> Group {
        Group {
            key: GroupKey::Domain(name.to_owned()),
            greylisted: 20,
            status: Status::Candidate,
            verdict: None,
            suggestion: None,
            judged_on: 20,
        }
    }

    fn headline_in(state: State, names: &[&str]) -> String {
        let groups: Vec<Group> = names.iter().map(|n| group(n)).collect();
        let refs: Vec<&Group> = groups.iter().collect();
        headline(&refs, state)
    }

    fn headline_of(names: &[&str]) -> String {
        headline_in(State::Critical, names)
    }

    #[test]
    fn names_that_fit_are_listed_the_rest_counted() {
        assert_eq!(headline_of(&[]), "no unreviewed senders");
        assert_eq!(
            headline_of(&["amazonses.com"]),
            "1 unreviewed sender: amazonses.com"
        );
        assert_eq!(
            headline_of(&["amazonses.com", "outlook.com"]),
            "2 unreviewed senders: amazonses.com, outlook.com"
        );
        assert_eq!(
            headline_of(&["amazonses.com", "outlook.com", "example-isp.net"]),
            "3 unreviewed senders: amazonses.com, +2 more"
        );
    }

    #[test]
    fn a_shorter_state_leaves_room_for_more() {
        let names = ["example-isp.net", "smallshop.de"];
        assert_eq!(
            headline_in(State::Ok, &names),
            "2 unreviewed senders: example-isp.net, smallshop.de"
        );
        assert_eq!(
            headline_in(State::Critical, &names),
            "2 unreviewed senders: example-isp.net, +1 more"
        );
    }

    #[test]
    fn a_name_too_long_for_the_line_leaves_just_the_count() {
        let long = format!("{}.com", "a".repeat(63));
        assert_eq!(headline_of(&[&long]), "1 unreviewed sender");
        assert_eq!(headline_of(&[&long, "x.com"]), "2 unreviewed senders");
    }

    #[test]
    fn the_first_line_stays_within_its_budget() {
        let names: Vec<String> = (0..30)
            .map(|i| format!("sender{i:02}-{}.de", "x".repeat(i)))
            .collect();
        for state in [State::Ok, State::Warning, State::Critical] {
            for n in 1..names.len() {
                let refs: Vec<&str> = names[..n].iter().map(String::as_str).collect();
                let line = format!("{SERVICE} {state} - {}", headline_in(state, &refs));
                assert!(line.chars().count() <= FIRST_LINE_BUDGET, "{line}");
            }
        }
    }

    #[test]
    fn a_summary_group_is_judged_client_by_client() {
        // Host a is whitelisted by name, host b only by its address.
        let whitelist = crate::whitelist::parse("a.example.com\n198.51.100.0/24\n", "list");
        let status_of = |json: &str| {
            let json = format!(r#"{{"greylisted": 1, {}"#, &json.trim_start()[1..]);
            let group: SummaryGroup = serde_json::from_str(&json).unwrap();
            let clients = Clients::of(&group).unwrap();
            let key = GroupKey::Domain("example.com".to_owned());
            let status = advice::status_of(&key, &clients.seen(), &whitelist, &[]);
            assert_eq!(
                advice::is_whitelisted(&clients.seen(), &whitelist),
                status == Status::Whitelisted
            );
            status
        };
        assert_eq!(
            status_of(
                r#"{"hosts": ["a.example.com", "b.example.com"],
                    "addresses": ["192.0.2.1", "198.51.100.7"],
                    "clients": [["a.example.com", "192.0.2.1"], ["b.example.com", "198.51.100.7"]]}"#
            ),
            Status::Whitelisted
        );
        assert_eq!(
            status_of(
                r#"{"hosts": ["a.example.com", "c.example.com"],
                    "addresses": ["192.0.2.1", "203.0.113.7"],
                    "clients": [["a.example.com", "192.0.2.1"], ["c.example.com", "203.0.113.7"]]}"#
            ),
            Status::PartlyWhitelisted
        );
        assert_eq!(
            status_of(r#"{"clients": [[null, "198.51.100.9"]]}"#),
            Status::Whitelisted
        );
    }

    #[test]
    fn log_names_cannot_break_the_line() {
        assert_eq!(
            headline_of(&["evil|x\ny.com"]),
            "1 unreviewed sender: evil_x_y.com"
        );
    }
}
