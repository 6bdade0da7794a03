//! Evidence per sender group, in UTC day buckets.
//!
//! Greylisting hurts a sender that retries from a different network each time: postgrey keys its
//! triplets by client network (/24 with `--lookup-by-subnet`), so a retry from another /24 is
//! `new` again. The tally therefore records, per group and day, how often postgrey said `new`,
//! `early-retry` and `triplet found` (with the delay the mail waited), which hosts, addresses and
//! networks were seen, and how often a (sender, recipient) pair was greylisted again from another
//! network of the same group (`retried_from_other_net`, the multi-server signature).
//!
//! Day buckets let one representation serve both an ad-hoc report and the timer job's state
//! file: evidence over any window inside the retention is the merge of its days. Distinct sets,
//! the delays kept for the median and the pairs remembered are capped per day (per group for
//! pairs) to keep the state bounded; [`Evidence::caps`] says which cap was hit. A window merges
//! its days without capping again: its sets are the unions of the days' sets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hasher;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::event::{Action, ClientName, Decision, Event, Reason};
use crate::group::{GroupKey, Grouper, network_of};
use crate::source::{Entry, Origin};

mod compact;
pub use compact::{Compaction, Folded, Limit, TRIMMED_DELAYS, TRIMMED_DISTINCT};

/// Days since 1970-01-01, UTC.
pub type Day = i64;

pub const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// Most distinct addresses, networks or host names kept per group and day.
pub const DISTINCT_CAP: usize = 256;
/// Most individual delays kept per group and day (for the median).
pub const DELAY_CAP: usize = 512;
/// Most (sender, recipient) pairs remembered per group for `retried_from_other_net`.
pub const PAIR_CAP: usize = 4096;
/// Networks remembered per pair: a retry from a third network is as telling as from a second.
const PAIR_NET_CAP: usize = 4;
/// How long a greylisted pair is remembered. Postfix gives up on a deferred mail after 5 days.
pub const PAIR_MEMORY_US: i64 = 5 * MICROS_PER_DAY;
/// Pairs the state file carries over to the next run: those greylisted within this span before
/// the group's newest decision. A multi-server sender retries from its other networks within
/// hours (Postfix's `maximal_backoff_time` is 4000 s), so a day covers a retry straddling the
/// run boundary, while carrying all of [`PAIR_MEMORY_US`] would store every greylisted mail of
/// the last five days — most of the state on a busy server (issue 4: ≤ 10 MB for 1M
/// greylistings a week). Within a run, pairs are remembered for [`PAIR_MEMORY_US`].
pub const PAIR_CARRY_OVER_US: i64 = MICROS_PER_DAY;

pub fn day_of(realtime_us: i64) -> Day {
    realtime_us.div_euclid(MICROS_PER_DAY)
}

/// Counters over all entries read, per day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Entries the source attributed to postgrey (trusted or not).
    pub entries: u64,
    /// Trusted entries that were examined.
    pub postgrey_lines: u64,
    /// Policy decisions among them (`action=…`): not postgrey's start-up, reload or warning
    /// lines. Absent from states written before it was counted.
    #[serde(default)]
    pub decisions: u64,
    /// `action=greylist` decisions.
    pub greylisted: u64,
    /// Entries journald does not vouch for (see `source::Origin`).
    pub untrusted_skipped: u64,
    /// Lines that look like postgrey decisions but are broken, or are not postgrey lines at all.
    pub malformed: u64,
}

impl Totals {
    pub fn add(&mut self, other: &Totals) {
        self.entries += other.entries;
        self.postgrey_lines += other.postgrey_lines;
        self.decisions += other.decisions;
        self.greylisted += other.greylisted;
        self.untrusted_skipped += other.untrusted_skipped;
        self.malformed += other.malformed;
    }
}

/// Which per-day caps were hit. A capped day's distinct sets, delay sample or pair memory are a
/// representative part of what was seen, not all of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// A distinct set (addresses, networks, host names, clients) reached [`DISTINCT_CAP`]: the
    /// distinct counts are lower bounds.
    pub distinct: bool,
    /// More than [`DELAY_CAP`] mails passed after a delay: the median is estimated from a
    /// sample.
    pub delays: bool,
    /// The group's pair memory was full ([`PAIR_CAP`]): `retried_from_other_net` is a lower
    /// bound.
    pub pairs: bool,
}

impl Caps {
    pub fn any(self) -> bool {
        self.distinct || self.delays || self.pairs
    }

    pub fn union(self, other: Caps) -> Caps {
        Caps {
            distinct: self.distinct || other.distinct,
            delays: self.delays || other.delays,
            pairs: self.pairs || other.pairs,
        }
    }
}

/// A client as postgrey saw it: its address and the name logged with it (`None` when
/// `unknown` or not logged). Address first, so that a day's clients are listed by address.
pub type Client = (IpAddr, Option<String>);

/// What one group did on one day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayStats {
    pub new: u64,
    pub early_retry: u64,
    pub passed_after_delay: u64,
    /// `triplet found` without `delay=`: a later mail of a known triplet.
    pub passed_known: u64,
    /// Passed because of `client whitelist` or `client AWL`.
    pub passed_whitelisted: u64,
    pub retried_from_other_net: u64,
    /// The day's delays in seconds: all of them up to [`DELAY_CAP`], beyond that a uniform
    /// sample of that many (reservoir sampling, see `DayStats::add_delay`).
    pub delays: Vec<u64>,
    /// The longest delay, also of those beyond the cap; `None` only when there was none.
    pub max_delay_s: Option<u64>,
    pub ips: BTreeSet<IpAddr>,
    pub nets: BTreeSet<IpNet>,
    /// Host name → how many decisions named it.
    pub hosts: BTreeMap<String, u64>,
    /// Which name came with which address. Only pairs whose address is in `ips` and whose
    /// name is in `hosts`, so that the state file can refer to both by position.
    pub clients: BTreeSet<Client>,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    pub caps: Caps,
    /// How many distinct addresses, networks and hosts the day had when the state file dropped
    /// its sets (see [`Tally::compact`]): lower bounds for a window's distinct counts.
    pub dropped: DroppedSets,
    /// What [`Tally::compact`] left of a day before the detail window (stored in the short
    /// form). A decision recorded on such a day later makes it an ordinary day again.
    pub coarse: bool,
}

/// Distinct counts of a day whose sets were dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DroppedSets {
    pub ips: u64,
    pub nets: u64,
    pub hosts: u64,
}

impl DroppedSets {
    fn max(self, other: DroppedSets) -> DroppedSets {
        DroppedSets {
            ips: self.ips.max(other.ips),
            nets: self.nets.max(other.nets),
            hosts: self.hosts.max(other.hosts),
        }
    }
}

/// A greylisted (sender, recipient) pair: from which networks, and when last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairTrack {
    pub nets: Vec<IpNet>,
    pub last_us: i64,
}

/// Everything known about one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupTally {
    pub days: BTreeMap<Day, DayStats>,
    /// Keyed by a stable 64-bit hash of sender and recipient (addresses are not kept).
    pub pairs: HashMap<u64, PairTrack>,
}

/// Evidence per group over a set of days.
///
/// Serialises to the compact form the state file holds (module `stored` below), which keeps
/// only the pairs of the last day ([`PAIR_CARRY_OVER_US`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub groups: BTreeMap<GroupKey, GroupTally>,
    pub totals: BTreeMap<Day, Totals>,
    /// Greylistings of groups folded to keep the state file within its limit (see
    /// [`Tally::compact`]): still in `totals`, under no group.
    pub folded: BTreeMap<Day, Folded>,
}

/// A group's evidence over a window: what `report` prints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    pub new: u64,
    pub early_retry: u64,
    pub passed_after_delay: u64,
    pub passed_known: u64,
    pub passed_whitelisted: u64,
    pub median_delay_s: Option<u64>,
    pub max_delay_s: Option<u64>,
    pub distinct_ips: u64,
    pub distinct_nets: u64,
    pub distinct_hosts: u64,
    pub retried_from_other_net: u64,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    /// Every host seen, most frequent first (ties by name).
    pub hosts: Vec<String>,
    /// Every address seen.
    pub ips: Vec<IpAddr>,
    /// Every client seen: the name logged with an address (`None` for `unknown`), by address.
    pub clients: Vec<(Option<String>, IpAddr)>,
    /// Greylistings (`new` + `early_retry`) per day, oldest first: every day of the window
    /// (see [`Tally::evidence_between`]), or only the group's own days when the window is
    /// longer than [`MAX_FILLED_DAYS`].
    pub per_day: Vec<(Day, u64)>,
    /// The per-day caps hit on any day of the window.
    pub caps: Caps,
}

impl Evidence {
    /// How often postgrey made this group wait.
    pub fn greylisted(&self) -> u64 {
        self.new + self.early_retry
    }
}

/// Longest window whose every day gets an entry in [`Evidence::per_day`]: a year. A longer one
/// (a log with a stray stamp decades off) lists only the days with decisions, so that no
/// caller can make every group allocate an entry per day of an absurd span.
pub const MAX_FILLED_DAYS: i64 = 366;

fn pair_hash(sender: Option<&str>, recipient: Option<&str>) -> u64 {
    // FNV is stable across builds, unlike std's RandomState: the hashes live in the state file.
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(sender.unwrap_or("").to_ascii_lowercase().as_bytes());
    hasher.write_u8(0);
    hasher.write(recipient.unwrap_or("").to_ascii_lowercase().as_bytes());
    hasher.finish()
}

fn insert_capped<T: Ord>(set: &mut BTreeSet<T>, value: T, capped: &mut bool) {
    if set.len() < DISTINCT_CAP || set.contains(&value) {
        set.insert(value);
    } else {
        *capped = true;
    }
}

/// SplitMix64's output function: a fixed, well-mixed pseudo-random number for `n`. Fixed, so
/// that the delay sample of a run resumed from the state file is that of one pass.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl DayStats {
    fn new_at(realtime_us: i64) -> Self {
        DayStats {
            first_seen_us: realtime_us,
            last_seen_us: realtime_us,
            ..DayStats::default()
        }
    }

    fn see_client(&mut self, realtime_us: i64, name: Option<&ClientName>, address: Option<IpAddr>) {
        self.first_seen_us = self.first_seen_us.min(realtime_us);
        self.last_seen_us = self.last_seen_us.max(realtime_us);
        let capped = &mut self.caps.distinct;
        if let Some(address) = address {
            insert_capped(&mut self.ips, address, capped);
            insert_capped(&mut self.nets, network_of(address), capped);
        }
        let host = name.and_then(ClientName::host);
        if let Some(host) = host {
            if let Some(count) = self.hosts.get_mut(host) {
                *count += 1;
            } else if self.hosts.len() < DISTINCT_CAP {
                self.hosts.insert(host.to_owned(), 1);
            } else {
                *capped = true;
            }
        }
        let Some(address) = address.filter(|a| self.ips.contains(a)) else {
            return;
        };
        if host.is_some_and(|h| !self.hosts.contains_key(h)) {
            return;
        }
        // Looked up without allocating: most decisions come from a client seen before.
        let known = self
            .clients
            .range((address, None)..)
            .take_while(|(a, _)| *a == address)
            .any(|(_, name)| name.as_deref() == host);
        if !known {
            insert_capped(
                &mut self.clients,
                (address, host.map(str::to_owned)),
                capped,
            );
        }
    }

    /// Counts a pass after `delay_s` and keeps the delay in the sample: the first
    /// [`DELAY_CAP`] all, then the n-th (from 0) in place of a random one of the sample with
    /// probability `DELAY_CAP / (n + 1)` (Vitter's algorithm R), so that every delay of the
    /// day is equally likely to be in it, early or late.
    fn add_delay(&mut self, delay_s: u64) {
        let n = self.passed_after_delay;
        self.passed_after_delay += 1;
        self.max_delay_s = Some(self.max_delay_s.map_or(delay_s, |m| m.max(delay_s)));
        if self.delays.len() < DELAY_CAP {
            self.delays.push(delay_s);
            return;
        }
        self.caps.delays = true;
        let slot = mix(n) % n.saturating_add(1);
        if let Some(kept) = usize::try_from(slot)
            .ok()
            .and_then(|slot| self.delays.get_mut(slot))
        {
            *kept = delay_s;
        }
    }
}

/// The days of a window taken together. A window has no caps of its own: its sets are the
/// unions of its days' (each capped per day), and its delay sample the days' samples, each
/// delay weighted by how many of its day's delays it stands for.
struct WindowStats<'a> {
    new: u64,
    early_retry: u64,
    passed_after_delay: u64,
    passed_known: u64,
    passed_whitelisted: u64,
    retried_from_other_net: u64,
    delays: Vec<(u64, f64)>,
    max_delay_s: Option<u64>,
    ips: BTreeSet<IpAddr>,
    nets: BTreeSet<IpNet>,
    hosts: BTreeMap<&'a str, u64>,
    clients: BTreeSet<&'a Client>,
    first_seen_us: i64,
    last_seen_us: i64,
    caps: Caps,
    dropped: DroppedSets,
}

impl<'a> WindowStats<'a> {
    fn new() -> Self {
        WindowStats {
            new: 0,
            early_retry: 0,
            passed_after_delay: 0,
            passed_known: 0,
            passed_whitelisted: 0,
            retried_from_other_net: 0,
            delays: Vec::new(),
            max_delay_s: None,
            ips: BTreeSet::new(),
            nets: BTreeSet::new(),
            hosts: BTreeMap::new(),
            clients: BTreeSet::new(),
            first_seen_us: i64::MAX,
            last_seen_us: i64::MIN,
            caps: Caps::default(),
            dropped: DroppedSets::default(),
        }
    }

    fn add(&mut self, day: &'a DayStats) {
        self.new += day.new;
        self.early_retry += day.early_retry;
        self.passed_after_delay += day.passed_after_delay;
        self.passed_known += day.passed_known;
        self.passed_whitelisted += day.passed_whitelisted;
        self.retried_from_other_net += day.retried_from_other_net;
        if !day.delays.is_empty() {
            // Exactly 1 for a day whose delays were all kept.
            let weight = day.passed_after_delay.max(day.delays.len() as u64) as f64
                / day.delays.len() as f64;
            self.delays.extend(day.delays.iter().map(|&d| (d, weight)));
        }
        self.max_delay_s = self.max_delay_s.max(day.max_delay_s);
        self.ips.extend(day.ips.iter().copied());
        self.nets.extend(day.nets.iter().copied());
        for (host, count) in &day.hosts {
            *self.hosts.entry(host.as_str()).or_default() += count;
        }
        self.clients.extend(day.clients.iter());
        self.first_seen_us = self.first_seen_us.min(day.first_seen_us);
        self.last_seen_us = self.last_seen_us.max(day.last_seen_us);
        self.caps = self.caps.union(day.caps);
        self.dropped = self.dropped.max(day.dropped);
    }

    fn evidence(mut self, per_day: Vec<(Day, u64)>) -> Evidence {
        let mut hosts: Vec<(&str, u64)> = self.hosts.into_iter().collect();
        hosts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        Evidence {
            new: self.new,
            early_retry: self.early_retry,
            passed_after_delay: self.passed_after_delay,
            passed_known: self.passed_known,
            passed_whitelisted: self.passed_whitelisted,
            median_delay_s: weighted_median(&mut self.delays),
            max_delay_s: self.max_delay_s,
            distinct_ips: (self.ips.len() as u64).max(self.dropped.ips),
            distinct_nets: (self.nets.len() as u64).max(self.dropped.nets),
            distinct_hosts: (hosts.len() as u64).max(self.dropped.hosts),
            retried_from_other_net: self.retried_from_other_net,
            first_seen_us: self.first_seen_us,
            last_seen_us: self.last_seen_us,
            hosts: hosts.into_iter().map(|(h, _)| h.to_owned()).collect(),
            ips: self.ips.into_iter().collect(),
            clients: self
                .clients
                .into_iter()
                .map(|(address, name)| (name.clone(), *address))
                .collect(),
            per_day,
            caps: self.caps,
        }
    }
}

impl GroupTally {
    /// Records a greylisting of the pair from `net`: `Some(true)` when the pair was greylisted
    /// before from a different network of this group (within [`PAIR_MEMORY_US`]), `None` when
    /// the pair could not be remembered because [`PAIR_CAP`] pairs already are.
    fn greylisted_from(&mut self, pair: u64, net: IpNet, realtime_us: i64) -> Option<bool> {
        if !self.pairs.contains_key(&pair) && self.pairs.len() >= PAIR_CAP {
            self.forget_pairs_before(realtime_us - PAIR_MEMORY_US);
            if self.pairs.len() >= PAIR_CAP {
                return None;
            }
        }
        let track = self.pairs.entry(pair).or_default();
        if realtime_us - track.last_us > PAIR_MEMORY_US {
            track.nets.clear();
        }
        track.last_us = track.last_us.max(realtime_us);
        if track.nets.contains(&net) {
            return Some(false);
        }
        let seen_elsewhere = !track.nets.is_empty();
        if track.nets.len() < PAIR_NET_CAP {
            track.nets.push(net);
        }
        Some(seen_elsewhere)
    }

    pub(crate) fn forget_pairs_before(&mut self, cutoff_us: i64) {
        self.pairs.retain(|_, track| track.last_us >= cutoff_us);
    }

    /// Evidence over the days in `[first, last]`, `None` when the group has none there.
    /// `per_day` lists every day of `[first, last]` (see [`Evidence::per_day`]).
    pub fn evidence(&self, first: Day, last: Day) -> Option<Evidence> {
        if first > last {
            return None;
        }
        let mut window = WindowStats::new();
        let mut per_day = Vec::new();
        for (day, stats) in self.days.range(first..=last) {
            per_day.push((*day, stats.new + stats.early_retry));
            window.add(stats);
        }
        if per_day.is_empty() {
            return None;
        }
        Some(window.evidence(fill_days(first, last, per_day)))
    }
}

/// Every day of `[first, last]`, with zero where `days` has none; just `days` when the span is
/// longer than [`MAX_FILLED_DAYS`]. `days` are in order and inside the span.
fn fill_days(first: Day, last: Day, days: Vec<(Day, u64)>) -> Vec<(Day, u64)> {
    let span = last.checked_sub(first).and_then(|d| d.checked_add(1));
    if !span.is_some_and(|n| (1..=MAX_FILLED_DAYS).contains(&n)) {
        return days;
    }
    let given: BTreeMap<Day, u64> = days.into_iter().collect();
    (first..=last)
        .map(|d| (d, given.get(&d).copied().unwrap_or(0)))
        .collect()
}

/// Median of sorted values; the lower middle for an even count, so it is a delay that happened.
pub fn median(sorted: &[u64]) -> Option<u64> {
    if sorted.is_empty() {
        None
    } else {
        Some(sorted[(sorted.len() - 1) / 2])
    }
}

/// Median of weighted values: the smallest value with at least half the weight at or below
/// it. With all weights 1 that is [`median`] (the lower middle).
fn weighted_median(values: &mut [(u64, f64)]) -> Option<u64> {
    values.sort_by_key(|&(value, _)| value);
    let total: f64 = values.iter().map(|&(_, weight)| weight).sum();
    let mut below = 0.0;
    for &(value, weight) in values.iter() {
        below += weight;
        if below * 2.0 >= total {
            return Some(value);
        }
    }
    values.last().map(|&(value, _)| value)
}

impl Tally {
    fn totals_of(&mut self, realtime_us: i64) -> &mut Totals {
        self.totals.entry(day_of(realtime_us)).or_default()
    }

    /// Takes one entry through parse → group → tally.
    pub fn ingest(&mut self, grouper: &Grouper, entry: &Entry) {
        let at = entry.realtime_us;
        self.totals_of(at).entries += 1;
        if entry.origin == Origin::Untrusted {
            self.totals_of(at).untrusted_skipped += 1;
            return;
        }
        self.totals_of(at).postgrey_lines += 1;
        match crate::event::parse(&entry.message) {
            Ok(Event::Decision(decision)) => self.record_decision(grouper, at, &decision),
            Ok(_) => {}
            Err(_) => self.totals_of(at).malformed += 1,
        }
    }

    /// Records one policy decision at `realtime_us`.
    pub fn record_decision(&mut self, grouper: &Grouper, realtime_us: i64, decision: &Decision) {
        self.totals_of(realtime_us).decisions += 1;
        if decision.action == Action::Greylist {
            self.totals_of(realtime_us).greylisted += 1;
        }
        let Some(key) = grouper.key(decision.client_name.as_ref(), decision.client_address) else {
            return;
        };
        let group = self.groups.entry(key).or_default();
        let pair = pair_hash(decision.sender.as_deref(), decision.recipient.as_deref());
        let retried_elsewhere = match (&decision.action, &decision.reason, decision.client_address)
        {
            (Action::Greylist, Some(Reason::New), Some(address)) => {
                group.greylisted_from(pair, network_of(address), realtime_us)
            }
            _ => Some(false),
        };
        let day = group
            .days
            .entry(day_of(realtime_us))
            .or_insert_with(|| DayStats::new_at(realtime_us));
        day.coarse = false;
        day.see_client(
            realtime_us,
            decision.client_name.as_ref(),
            decision.client_address,
        );
        match retried_elsewhere {
            Some(true) => day.retried_from_other_net += 1,
            Some(false) => {}
            None => day.caps.pairs = true,
        }
        match (&decision.action, &decision.reason) {
            (Action::Greylist, Some(Reason::EarlyRetry { .. })) => day.early_retry += 1,
            (Action::Greylist, _) => day.new += 1,
            (Action::Pass, Some(Reason::TripletFound)) => match decision.delay_s {
                Some(delay) => day.add_delay(delay),
                None => day.passed_known += 1,
            },
            (Action::Pass, Some(Reason::ClientWhitelist | Reason::ClientAwl)) => {
                day.passed_whitelisted += 1
            }
            _ => {}
        }
    }

    /// Drops day buckets before `first_kept` and pairs not seen since `pair_cutoff_us`.
    pub fn prune(&mut self, first_kept: Day, pair_cutoff_us: i64) {
        self.totals.retain(|day, _| *day >= first_kept);
        self.folded.retain(|day, _| *day >= first_kept);
        for group in self.groups.values_mut() {
            group.days.retain(|day, _| *day >= first_kept);
            group.forget_pairs_before(pair_cutoff_us);
        }
        self.groups.retain(|_, g| !g.days.is_empty());
    }

    /// Totals over the days in `[first, last]`.
    pub fn totals_between(&self, first: Day, last: Day) -> Totals {
        let mut sum = Totals::default();
        for totals in self.totals.range(first..=last).map(|(_, t)| t) {
            sum.add(totals);
        }
        sum
    }

    /// Evidence of every group active in `[first, last]`. Their `per_day` cover the same
    /// days, the window's days this tally knows of (see [`Tally::span`]), so that they line up.
    pub fn evidence_between(&self, first: Day, last: Day) -> Vec<(GroupKey, Evidence)> {
        let Some((known_first, known_last)) = self.span() else {
            return Vec::new();
        };
        let (first, last) = (first.max(known_first), last.min(known_last));
        self.groups
            .iter()
            .filter_map(|(key, g)| g.evidence(first, last).map(|e| (key.clone(), e)))
            .collect()
    }

    /// The first and last day this tally knows of: of its totals and of its groups' days.
    pub fn span(&self) -> Option<(Day, Day)> {
        let group_days = self
            .groups
            .values()
            .filter_map(|g| Some((*g.days.keys().next()?, *g.days.keys().next_back()?)));
        let total_days = self
            .totals
            .keys()
            .next()
            .zip(self.totals.keys().next_back())
            .map(|(first, last)| (*first, *last));
        group_days
            .chain(total_days)
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
    }
}

/// Group keys are stored as their display form: a domain, or a network in CIDR notation (a
/// domain never parses as a network).
impl Serialize for GroupKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GroupKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.parse::<IpNet>() {
            Ok(net) => GroupKey::Network(net),
            Err(_) => GroupKey::Domain(text),
        })
    }
}

/// The state file's form of a tally: compact, and lossless for everything [`Evidence`] is made
/// of.
///
/// A busy server greylists a million times a week from tens of thousands of groups, and the
/// state keeps eight weeks of day buckets, so every byte of a bucket counts:
///
/// - Field names are short (the mapping is at `GroupOut` and `DayOut`), and a field at its
///   default (zero, empty, `false`) is left out.
/// - A group lists its addresses and host names once; its days refer to them by position.
/// - Host names are relative to the group's domain, as in a zone file: `mx1` is
///   `mx1.example.com` in the group `example.com`, `@` is the domain itself, and a name that
///   does not end in the domain is written absolute, with a trailing dot.
/// - What follows from other fields is left out and rebuilt on load: the networks of a day when
///   they are those of its addresses (they differ only once a cap dropped some), the longest
///   delay when it is the longest of the delays kept, and which name came with which address
///   when every address of the day came with every name of the day (one name, or one address,
///   or no name at all: most days of most groups). Otherwise a day lists, for each of its
///   addresses in order, the position of the name it came with (`-1`: none), or a list of them
///   when it came with several.
/// - Times are µs after the day's midnight (first seen) and after first seen (last seen).
/// - Only the pairs greylisted within [`PAIR_CARRY_OVER_US`] of the group's newest decision
///   are carried over, listed by network; on load they count as greylisted at that decision.
///
/// ```text
/// {"groups": {"example.com": {
///     "i": ["192.0.2.1", "198.51.100.3"],
///     "h": ["a.smtp", "c.smtp"],
///     "d": {"20410": {"n": 3, "r": 1, "p": 1, "dl": [3600], "h": [1, 2], "a": [0, 1],
///                     "f": 3600000000, "l": 7200000000}},
///     "p": {"192.0.2.0/24": ["9ae16a3b2f90404f"], "198.51.100.0/24": ["9ae16a3b2f90404f"]}}},
///  "totals": {"20410": {"entries": 5, "postgrey_lines": 5, "greylisted": 4, …}}}
/// ```
mod stored {
    use std::borrow::Cow;
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::net::IpAddr;

    use ipnet::IpNet;
    use serde::de::Error as _;
    use serde::ser::SerializeStruct as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{
        Caps, Client, DISTINCT_CAP, Day, DayStats, DroppedSets, Folded, GroupTally, MICROS_PER_DAY,
        PAIR_CARRY_OVER_US, PAIR_NET_CAP, Tally, Totals,
    };
    use crate::group::{GroupKey, network_of};

    /// The name of a group's domain itself among its relative host names.
    const ORIGIN: &str = "@";

    fn is_default<T: Default + PartialEq>(value: &T) -> bool {
        *value == T::default()
    }

    /// A day bucket as stored. Field names: `n` new, `e` early_retry, `p` passed_after_delay,
    /// `k` passed_known, `w` passed_whitelisted, `r` retried_from_other_net, `dl` delays, `mx`
    /// max_delay_s (only when not the largest of `dl`), `i` ips as positions in the group's
    /// `i` (left out when the day saw every one of them), `nt` nets (only when not the
    /// networks of the ips), `h` how often each of the group's `h` was seen, in their order
    /// (see [`encode_counts`]), `a` the names of the addresses (see [`ClientNames`]; left out
    /// when they follow from `i` and `h`), `f` first seen (µs after the day's midnight), `l`
    /// last seen (µs after first seen), `c` the caps hit (see [`caps_bits`]).
    #[derive(Serialize)]
    struct DayOut<'a> {
        #[serde(rename = "n", skip_serializing_if = "is_default")]
        new: u64,
        #[serde(rename = "e", skip_serializing_if = "is_default")]
        early_retry: u64,
        #[serde(rename = "p", skip_serializing_if = "is_default")]
        passed_after_delay: u64,
        #[serde(rename = "k", skip_serializing_if = "is_default")]
        passed_known: u64,
        #[serde(rename = "w", skip_serializing_if = "is_default")]
        passed_whitelisted: u64,
        #[serde(rename = "r", skip_serializing_if = "is_default")]
        retried_from_other_net: u64,
        #[serde(rename = "dl", skip_serializing_if = "<[u64]>::is_empty")]
        delays: &'a [u64],
        #[serde(rename = "mx", skip_serializing_if = "Option::is_none")]
        max_delay_s: Option<u64>,
        #[serde(rename = "i", skip_serializing_if = "Option::is_none")]
        ips: Option<Vec<usize>>,
        #[serde(rename = "nt", skip_serializing_if = "Option::is_none")]
        nets: Option<&'a BTreeSet<IpNet>>,
        #[serde(rename = "h", skip_serializing_if = "Vec::is_empty")]
        hosts: Vec<i64>,
        #[serde(rename = "a", skip_serializing_if = "Option::is_none")]
        clients: Option<Vec<ClientNames>>,
        #[serde(rename = "f")]
        first_seen: i64,
        #[serde(rename = "l", skip_serializing_if = "is_default")]
        last_seen: i64,
        #[serde(rename = "c", skip_serializing_if = "is_default")]
        caps: u8,
        #[serde(rename = "x", skip_serializing_if = "is_default")]
        dropped: [u64; 3],
    }

    /// [`DayOut`] as read back.
    #[derive(Deserialize)]
    struct DayIn {
        #[serde(rename = "n", default)]
        new: u64,
        #[serde(rename = "e", default)]
        early_retry: u64,
        #[serde(rename = "p", default)]
        passed_after_delay: u64,
        #[serde(rename = "k", default)]
        passed_known: u64,
        #[serde(rename = "w", default)]
        passed_whitelisted: u64,
        #[serde(rename = "r", default)]
        retried_from_other_net: u64,
        #[serde(rename = "dl", default)]
        delays: Vec<u64>,
        #[serde(rename = "mx", default)]
        max_delay_s: Option<u64>,
        #[serde(rename = "i", default)]
        ips: Option<Vec<usize>>,
        #[serde(rename = "nt", default)]
        nets: Option<BTreeSet<IpNet>>,
        #[serde(rename = "h", default)]
        hosts: Vec<i64>,
        #[serde(rename = "a", default)]
        clients: Option<Vec<ClientNames>>,
        #[serde(rename = "f")]
        first_seen: i64,
        #[serde(rename = "l", default)]
        last_seen: i64,
        #[serde(rename = "c", default)]
        caps: u8,
        #[serde(rename = "x", default)]
        dropped: [u64; 3],
    }

    /// A day as stored: the short form when it can be, else [`DayOut`].
    #[derive(Serialize)]
    #[serde(untagged)]
    enum DayOutAny<'a> {
        Short(Vec<u64>),
        Long(DayOut<'a>),
    }

    /// Fields of the short form, in order (see [`short_form`]).
    const SHORT_FIELDS: usize = 16;

    /// The short form of a day that kept at most one client (an address, a host name seen
    /// once, or both), its networks those of the address, and at most one delay, with whole
    /// seconds for its times: what `Tally::compact` leaves of a day before the detail window.
    /// Days as recorded keep the long form. The short form:
    /// `[first seen (s after midnight), last seen (s after first), n, address, host, e, p, k,
    /// w, r, delay, longest delay minus delay, caps, addresses, networks, hosts]`: address and
    /// host are the client's positions in the group's lists plus one (0: none), addresses,
    /// networks and hosts the distinct counts the day had before compaction; trailing zeros
    /// are left out, so that an old day of one greylisting is `[first, 0, 1, address, host]`.
    /// `None` when the day needs the long form.
    fn short_form(
        day: Day,
        stats: &DayStats,
        ip_position: impl Fn(&IpAddr) -> Option<usize>,
        host_position: impl Fn(&str) -> Option<usize>,
    ) -> Option<Vec<u64>> {
        let (delay, longer) = match (stats.passed_after_delay, stats.delays.as_slice()) {
            (0, []) if stats.max_delay_s.is_none() => (0, 0),
            (1.., [delay]) => (*delay, stats.max_delay_s?.checked_sub(*delay)?),
            _ => return None,
        };
        // Only what compaction left: a day as recorded keeps the long form, readable as it
        // always was.
        if !stats.coarse {
            return None;
        }
        let one_client = stats.ips.len() <= 1
            && stats.hosts.len() <= 1
            && stats.hosts.values().all(|&count| count == 1)
            && nets_of(&stats.ips) == stats.nets
            && clients_follow(stats);
        if !one_client {
            return None;
        }
        let example = |position: Option<Option<usize>>| match position {
            None => Some(0),
            Some(found) => found.and_then(|i| u64::try_from(i).ok()?.checked_add(1)),
        };
        let address = example(stats.ips.first().map(&ip_position))?;
        let host = example(stats.hosts.keys().next().map(|h| host_position(h)))?;
        let first = stats.first_seen_us.checked_sub(midnight_us(day))?;
        let last = stats.last_seen_us.checked_sub(stats.first_seen_us)?;
        let whole = |us: i64| (us % 1_000_000 == 0).then(|| u64::try_from(us / 1_000_000).ok())?;
        let mut form = vec![
            whole(first)?,
            whole(last)?,
            stats.new,
            address,
            host,
            stats.early_retry,
            stats.passed_after_delay,
            stats.passed_known,
            stats.passed_whitelisted,
            stats.retried_from_other_net,
            delay,
            longer,
            u64::from(caps_bits(stats.caps)),
            stats.dropped.ips,
            stats.dropped.nets,
            stats.dropped.hosts,
        ];
        while form.len() > 2 && form.last() == Some(&0) {
            form.pop();
        }
        Some(form)
    }

    /// The inverse of [`short_form`], as the long form it stands for.
    fn from_short_form(form: &[u64]) -> Result<DayIn, String> {
        if !(2..=SHORT_FIELDS).contains(&form.len()) {
            return Err(format!(
                "a short day has {} fields, not 2 to {SHORT_FIELDS}",
                form.len()
            ));
        }
        let field = |i: usize| form.get(i).copied().unwrap_or(0);
        let micros = |s: u64| {
            i64::try_from(s)
                .ok()
                .and_then(|s| s.checked_mul(1_000_000))
                .ok_or_else(|| String::from("a time out of range"))
        };
        let passed_after_delay = field(6);
        let (delay, longer) = (field(10), field(11));
        let (delays, max_delay_s) = if passed_after_delay == 0 {
            if delay != 0 || longer != 0 {
                return Err(String::from("a delay without a mail that waited"));
            }
            (Vec::new(), None)
        } else {
            let longest = delay
                .checked_add(longer)
                .ok_or_else(|| String::from("a delay out of range"))?;
            (vec![delay], Some(longest))
        };
        let position = |i: usize| usize::try_from(field(i)).unwrap_or(usize::MAX);
        let ips = match position(3) {
            0 => Vec::new(),
            address => vec![address - 1],
        };
        // The counts of the group's names, up to the example's (see `encode_counts`).
        let hosts = match i64::try_from(position(4)).unwrap_or(i64::MAX) {
            0 => Vec::new(),
            1 => vec![1],
            host => vec![1 - host, 1],
        };
        Ok(DayIn {
            new: field(2),
            early_retry: field(5),
            passed_after_delay,
            passed_known: field(7),
            passed_whitelisted: field(8),
            retried_from_other_net: field(9),
            delays,
            max_delay_s,
            ips: Some(ips),
            nets: None,
            hosts,
            clients: None,
            first_seen: micros(field(0))?,
            last_seen: micros(field(1))?,
            caps: u8::try_from(field(12))
                .map_err(|_| format!("caps {} are not a combination of 1, 2 and 4", field(12)))?,
            dropped: [field(13), field(14), field(15)],
        })
    }

    /// A stored day: a list is the short form, a map the long one.
    enum DayInAny {
        Short(Vec<u64>),
        Long(Box<DayIn>),
    }

    impl<'de> Deserialize<'de> for DayInAny {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Either;
            impl<'de> serde::de::Visitor<'de> for Either {
                type Value = DayInAny;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a day bucket (a map, or a list of counts)")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    seq: A,
                ) -> Result<DayInAny, A::Error> {
                    let deserializer = serde::de::value::SeqAccessDeserializer::new(seq);
                    Vec::deserialize(deserializer).map(DayInAny::Short)
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    map: A,
                ) -> Result<DayInAny, A::Error> {
                    let deserializer = serde::de::value::MapAccessDeserializer::new(map);
                    DayIn::deserialize(deserializer).map(|day| DayInAny::Long(Box::new(day)))
                }
            }
            deserializer.deserialize_any(Either)
        }
    }

    /// The names an address of a day came with, as positions in the group's `h`, `-1` for no
    /// name: one number for one name (the usual case), a list for several or for none (a cap
    /// dropped the pair).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(untagged)]
    enum ClientNames {
        One(i64),
        Several(Vec<i64>),
    }

    /// Position of no name among a day's client names.
    const NO_NAME: i64 = -1;

    /// The caps of a day as stored: 1 distinct sets, 2 delays, 4 pairs, or-ed.
    fn caps_bits(caps: Caps) -> u8 {
        u8::from(caps.distinct) | u8::from(caps.delays) << 1 | u8::from(caps.pairs) << 2
    }

    /// The inverse of [`caps_bits`].
    fn caps_of(bits: u8) -> Result<Caps, String> {
        if bits > 7 {
            return Err(format!("caps {bits} are not a combination of 1, 2 and 4"));
        }
        Ok(Caps {
            distinct: bits & 1 != 0,
            delays: bits & 2 != 0,
            pairs: bits & 4 != 0,
        })
    }

    /// A group as stored: `i` every address of its days, `h` every host name (relative), `d`
    /// its day buckets, `p` the carried-over pairs as network → pair hashes (16 hex digits; a
    /// pair seen from several networks is listed under each).
    #[derive(Serialize)]
    struct GroupOut<'a> {
        #[serde(rename = "i", skip_serializing_if = "Vec::is_empty")]
        ips: Vec<IpAddr>,
        #[serde(rename = "h", skip_serializing_if = "Vec::is_empty")]
        hosts: Vec<Cow<'a, str>>,
        #[serde(rename = "d")]
        days: BTreeMap<Day, DayOutAny<'a>>,
        #[serde(rename = "p", skip_serializing_if = "BTreeMap::is_empty")]
        pairs: BTreeMap<IpNet, Vec<String>>,
    }

    /// [`GroupOut`] as read back.
    #[derive(Deserialize)]
    struct GroupIn {
        #[serde(rename = "i", default)]
        ips: Vec<IpAddr>,
        #[serde(rename = "h", default)]
        hosts: Vec<String>,
        #[serde(rename = "d", default)]
        days: BTreeMap<Day, DayInAny>,
        #[serde(rename = "p", default)]
        pairs: BTreeMap<IpNet, Vec<String>>,
    }

    /// The tally as read back; `groups` and `totals` keep their names for scripts reading the
    /// file.
    #[derive(Deserialize)]
    struct TallyIn {
        #[serde(default)]
        groups: BTreeMap<GroupKey, GroupIn>,
        #[serde(default)]
        totals: BTreeMap<Day, Totals>,
        #[serde(default)]
        folded: BTreeMap<Day, Folded>,
    }

    /// Counts of a day, one per name of the group's list: a positive number is the next name's
    /// count, `-n` skips `n` names the day did not see; unseen names at the end are left out.
    /// A day of a small group is a plain list of counts, and a day that saw a few of a big
    /// group's many names costs a number per gap rather than a zero per name.
    fn encode_counts(counts: &[u64]) -> Vec<i64> {
        let mut encoded = Vec::new();
        let mut unseen: i64 = 0;
        for &count in counts {
            if count == 0 {
                unseen += 1;
                continue;
            }
            if unseen > 0 {
                encoded.push(-unseen);
                unseen = 0;
            }
            encoded.push(i64::try_from(count).unwrap_or(i64::MAX));
        }
        encoded
    }

    /// The inverse of [`encode_counts`]: (position, count) of the names seen.
    fn decode_counts(encoded: &[i64]) -> impl Iterator<Item = (usize, u64)> + '_ {
        let mut position = 0usize;
        encoded.iter().filter_map(move |&n| {
            let skip = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
            if n > 0 {
                position = position.saturating_add(1);
                Some((position - 1, n.unsigned_abs()))
            } else {
                position = position.saturating_add(skip);
                None
            }
        })
    }

    fn nets_of(ips: &BTreeSet<IpAddr>) -> BTreeSet<IpNet> {
        ips.iter().map(|ip| network_of(*ip)).collect()
    }

    fn longest(delays: &[u64]) -> Option<u64> {
        delays.iter().max().copied()
    }

    fn midnight_us(day: Day) -> i64 {
        day.saturating_mul(MICROS_PER_DAY)
    }

    fn domain_of(key: &GroupKey) -> Option<&str> {
        match key {
            GroupKey::Domain(d) => Some(d),
            GroupKey::Network(_) => None,
        }
    }

    /// `host` relative to `domain` (see the module docs).
    fn relative<'a>(host: &'a str, domain: Option<&str>) -> Cow<'a, str> {
        let Some(domain) = domain else {
            return Cow::Borrowed(host);
        };
        if host == domain {
            return Cow::Borrowed(ORIGIN);
        }
        match host
            .strip_suffix(domain)
            .and_then(|rest| rest.strip_suffix('.'))
        {
            // Only what reads back as the same name.
            Some(label) if !label.is_empty() && label != ORIGIN && !label.ends_with('.') => {
                Cow::Borrowed(label)
            }
            _ => Cow::Owned(format!("{host}.")),
        }
    }

    /// The inverse of [`relative`].
    fn absolute(stored: &str, domain: Option<&str>) -> String {
        let Some(domain) = domain else {
            return stored.to_owned();
        };
        if stored == ORIGIN {
            domain.to_owned()
        } else if let Some(name) = stored.strip_suffix('.') {
            name.to_owned()
        } else {
            format!("{stored}.{domain}")
        }
    }

    /// Whether the day's clients are every pair of its addresses with its names (with no name
    /// when it has none): what [`following_clients`] rebuilds.
    fn clients_follow(stats: &DayStats) -> bool {
        let names = stats.hosts.len().max(1);
        stats.ips.len().checked_mul(names) == Some(stats.clients.len())
            && stats.clients.iter().all(|(address, name)| {
                stats.ips.contains(address)
                    && match name {
                        Some(name) => stats.hosts.contains_key(name),
                        None => stats.hosts.is_empty(),
                    }
            })
    }

    /// The clients a day without `a` had: see [`clients_follow`].
    fn following_clients(
        ips: &BTreeSet<IpAddr>,
        hosts: &BTreeMap<String, u64>,
    ) -> BTreeSet<Client> {
        let names: Vec<Option<&String>> = if hosts.is_empty() {
            vec![None]
        } else {
            hosts.keys().map(Some).collect()
        };
        ips.iter()
            .flat_map(|ip| names.iter().map(|name| (*ip, name.cloned())))
            .collect()
    }

    /// The day's `a`: for each of its addresses, the names it came with, as positions in the
    /// group's `hosts`; the addresses at the end without any are left out.
    fn client_names(stats: &DayStats, hosts: &[&str]) -> Vec<ClientNames> {
        let position = |name: &Option<String>| match name {
            // The group's names include every client's name.
            Some(name) => hosts
                .binary_search(&name.as_str())
                .map_or(NO_NAME, |i| i64::try_from(i).unwrap_or(i64::MAX)),
            None => NO_NAME,
        };
        let mut names: Vec<ClientNames> = stats
            .ips
            .iter()
            .map(|ip| {
                let mut positions: Vec<i64> = stats
                    .clients
                    .range((*ip, None)..)
                    .take_while(|(address, _)| address == ip)
                    .map(|(_, name)| position(name))
                    .collect();
                match positions.len() {
                    1 => ClientNames::One(positions.remove(0)),
                    _ => ClientNames::Several(positions),
                }
            })
            .collect();
        while names.last() == Some(&ClientNames::Several(Vec::new())) {
            names.pop();
        }
        names
    }

    /// The inverse of [`client_names`].
    fn clients_of(
        names: &[ClientNames],
        ips: &BTreeSet<IpAddr>,
        hosts: &[String],
    ) -> Result<BTreeSet<Client>, String> {
        if names.len() > ips.len() {
            return Err(String::from("more client names than addresses"));
        }
        let mut clients = BTreeSet::new();
        for (ip, names) in ips.iter().zip(names) {
            let positions = match names {
                ClientNames::One(position) => std::slice::from_ref(position),
                ClientNames::Several(positions) => positions.as_slice(),
            };
            for &position in positions {
                let name = if position == NO_NAME {
                    None
                } else {
                    let host = usize::try_from(position).ok().and_then(|i| hosts.get(i));
                    Some(
                        host.ok_or_else(|| {
                            format!("client name position {position} is out of range")
                        })?
                        .clone(),
                    )
                };
                clients.insert((*ip, name));
            }
        }
        Ok(clients)
    }

    impl<'a> DayOut<'a> {
        /// `stats` of `day`, its addresses and host names given by position in the group's.
        fn new(day: Day, stats: &'a DayStats, ips: &[IpAddr], hosts: &[&str]) -> Self {
            let day_ips = (stats.ips.len() != ips.len()).then(|| {
                stats
                    .ips
                    .iter()
                    .filter_map(|ip| ips.binary_search(ip).ok())
                    .collect()
            });
            let mut counts = vec![0; hosts.len()];
            for (host, count) in &stats.hosts {
                if let Ok(i) = hosts.binary_search(&host.as_str()) {
                    counts[i] = *count;
                }
            }
            let clients = (!clients_follow(stats)).then(|| client_names(stats, hosts));
            DayOut {
                new: stats.new,
                early_retry: stats.early_retry,
                passed_after_delay: stats.passed_after_delay,
                passed_known: stats.passed_known,
                passed_whitelisted: stats.passed_whitelisted,
                retried_from_other_net: stats.retried_from_other_net,
                delays: &stats.delays,
                max_delay_s: stats
                    .max_delay_s
                    .filter(|&max| Some(max) != longest(&stats.delays)),
                ips: day_ips,
                nets: (nets_of(&stats.ips) != stats.nets).then_some(&stats.nets),
                hosts: encode_counts(&counts),
                clients,
                first_seen: stats.first_seen_us - midnight_us(day),
                last_seen: stats.last_seen_us - stats.first_seen_us,
                caps: caps_bits(stats.caps),
                dropped: [stats.dropped.ips, stats.dropped.nets, stats.dropped.hosts],
            }
        }
    }

    impl<'a> GroupOut<'a> {
        /// `group` as stored, without its days before `from`.
        fn new(key: &GroupKey, group: &'a GroupTally, carry_from_us: i64, from: Day) -> Self {
            // Sorted, so that a day finds its positions by binary search.
            let ips: Vec<IpAddr> = group
                .days
                .range(from..)
                .map(|(_, d)| d)
                .flat_map(|d| d.ips.iter().copied())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let hosts: Vec<&str> = group
                .days
                .range(from..)
                .map(|(_, d)| d)
                .flat_map(|d| {
                    let client_names = d.clients.iter().filter_map(|(_, name)| name.as_deref());
                    d.hosts.keys().map(String::as_str).chain(client_names)
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let days = group
                .days
                .range(from..)
                .map(|(day, stats)| {
                    let ip_position = |ip: &IpAddr| ips.binary_search(ip).ok();
                    let host_position = |host: &str| hosts.binary_search(&host).ok();
                    let form = match short_form(*day, stats, ip_position, host_position) {
                        Some(short) => DayOutAny::Short(short),
                        None => DayOutAny::Long(DayOut::new(*day, stats, &ips, &hosts)),
                    };
                    (*day, form)
                })
                .collect();
            let mut pairs: BTreeMap<IpNet, Vec<u64>> = BTreeMap::new();
            for (hash, track) in &group.pairs {
                if track.last_us >= carry_from_us {
                    for net in &track.nets {
                        pairs.entry(*net).or_default().push(*hash);
                    }
                }
            }
            GroupOut {
                ips,
                hosts: hosts.iter().map(|h| relative(h, domain_of(key))).collect(),
                days,
                pairs: pairs
                    .into_iter()
                    .map(|(net, mut hashes)| {
                        hashes.sort_unstable();
                        (net, hashes.iter().map(|h| format!("{h:016x}")).collect())
                    })
                    .collect(),
            }
        }
    }

    /// Most a state file may count for one group, or in its totals, over all days: 2^53 (exact
    /// as a float), more than any server logs, and far enough below `u64::MAX` that adding up
    /// the days of a window and the decisions of the next runs cannot overflow.
    const MAX_COUNT: u64 = 1 << 53;

    /// `sum + count`, when that stays within [`MAX_COUNT`].
    fn add_count(sum: u64, count: u64) -> Option<u64> {
        sum.checked_add(count).filter(|&sum| sum <= MAX_COUNT)
    }

    /// A stored group's day buckets, or why they do not make sense.
    fn days_of(
        days: BTreeMap<Day, DayInAny>,
        ips: &[IpAddr],
        hosts: &[String],
        domain: Option<&str>,
    ) -> Result<BTreeMap<Day, DayStats>, String> {
        let hosts: Vec<String> = hosts.iter().map(|h| absolute(h, domain)).collect();
        let mut result = BTreeMap::new();
        let mut counted: u64 = 0;
        for (day, stored) in days {
            let (stored, coarse) = match stored {
                DayInAny::Long(long) => (*long, false),
                DayInAny::Short(short) => (
                    from_short_form(&short).map_err(|why| format!("day {day}: {why}"))?,
                    true,
                ),
            };
            let [ips_had, nets_had, hosts_had] = stored.dropped;
            if nets_had > ips_had.max(1) || ips_had > MAX_COUNT || hosts_had > MAX_COUNT {
                return Err(format!(
                    "day {day}: distinct counts {:?} that no day can have",
                    stored.dropped
                ));
            }
            let day_ips: BTreeSet<IpAddr> = match &stored.ips {
                None => ips.iter().copied().collect(),
                Some(positions) => positions
                    .iter()
                    .map(|&i| ips.get(i).copied())
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("day {day}: an address position is out of range"))?,
            };
            let mut day_hosts = BTreeMap::new();
            for (position, count) in decode_counts(&stored.hosts) {
                let host = hosts
                    .get(position)
                    .ok_or_else(|| format!("day {day}: more host counts than host names"))?;
                day_hosts.insert(host.clone(), count);
            }
            let counts = [
                stored.new,
                stored.early_retry,
                stored.passed_after_delay,
                stored.passed_known,
                stored.passed_whitelisted,
                stored.retried_from_other_net,
            ];
            counted = counts
                .into_iter()
                .chain(day_hosts.values().copied())
                .try_fold(counted, add_count)
                .ok_or_else(|| format!("day {day}: counts beyond any real log"))?;
            // A day keeps at most DISTINCT_CAP of each (see `DayStats::see_client`), and its
            // clients are left out only when they are every address with every name; more
            // would be a few bytes of file standing for millions of clients.
            let names = day_hosts.len().max(1);
            let follow_too_many =
                stored.clients.is_none() && day_ips.len().saturating_mul(names) > DISTINCT_CAP;
            if day_ips.len() > DISTINCT_CAP || day_hosts.len() > DISTINCT_CAP || follow_too_many {
                return Err(format!(
                    "day {day}: more addresses or host names than a day keeps ({DISTINCT_CAP})"
                ));
            }
            let clients = match &stored.clients {
                None => following_clients(&day_ips, &day_hosts),
                Some(names) => clients_of(names, &day_ips, &hosts)
                    .map_err(|why| format!("day {day}: {why}"))?,
            };
            let caps = caps_of(stored.caps).map_err(|why| format!("day {day}: {why}"))?;
            // A day of the tally is a real day since the epoch, and both times lie inside it:
            // anything else comes from a damaged file and would break the pair arithmetic.
            let within_day = |offset: i64| (0..MICROS_PER_DAY).contains(&offset);
            let first_seen_us = day
                .checked_mul(MICROS_PER_DAY)
                .filter(|_| day >= 0)
                .filter(|_| within_day(stored.first_seen))
                .and_then(|midnight| midnight.checked_add(stored.first_seen));
            let last_seen_us = first_seen_us
                .filter(|_| within_day(stored.first_seen.saturating_add(stored.last_seen)))
                .filter(|_| stored.last_seen >= 0)
                .and_then(|first| first.checked_add(stored.last_seen));
            let (Some(first_seen_us), Some(last_seen_us)) = (first_seen_us, last_seen_us) else {
                return Err(format!("day {day}: a time out of range"));
            };
            let stats = DayStats {
                new: stored.new,
                early_retry: stored.early_retry,
                passed_after_delay: stored.passed_after_delay,
                passed_known: stored.passed_known,
                passed_whitelisted: stored.passed_whitelisted,
                retried_from_other_net: stored.retried_from_other_net,
                max_delay_s: stored.max_delay_s.or_else(|| longest(&stored.delays)),
                delays: stored.delays,
                nets: stored.nets.unwrap_or_else(|| nets_of(&day_ips)),
                ips: day_ips,
                hosts: day_hosts,
                clients,
                first_seen_us,
                last_seen_us,
                caps,
                dropped: DroppedSets {
                    ips: ips_had,
                    nets: nets_had,
                    hosts: hosts_had,
                },
                coarse,
            };
            result.insert(day, stats);
        }
        Ok(result)
    }

    /// The tally's groups as stored.
    struct GroupsOut<'a> {
        groups: &'a BTreeMap<GroupKey, GroupTally>,
    }

    impl Serialize for GroupsOut<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.groups.iter().map(|(key, group)| {
                let carry_from_us = group.newest_us().saturating_sub(PAIR_CARRY_OVER_US);
                (key, GroupOut::new(key, group, carry_from_us, Day::MIN))
            }))
        }
    }

    impl GroupTally {
        /// When the group's newest decision was made. Per group, so that one entry with a wrong
        /// clock (a future date) moves only its own group's pair horizon.
        pub(in crate::tally) fn newest_us(&self) -> i64 {
            self.days
                .values()
                .next_back()
                .map_or(i64::MIN, |d| d.last_seen_us)
        }
    }

    impl Serialize for Tally {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut tally = serializer.serialize_struct("Tally", 3)?;
            tally.serialize_field(
                "groups",
                &GroupsOut {
                    groups: &self.groups,
                },
            )?;
            tally.serialize_field("totals", &self.totals)?;
            if self.folded.is_empty() {
                tally.skip_field("folded")?;
            } else {
                tally.serialize_field("folded", &self.folded)?;
            }
            tally.end()
        }
    }

    /// Counts the bytes written to it.
    #[derive(Default)]
    struct ByteCount(usize);

    impl std::io::Write for ByteCount {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn stored_len<T: Serialize + ?Sized>(value: &T) -> usize {
        let mut count = ByteCount::default();
        // Writing to a counter cannot fail, and a stored form always serialises.
        let _ = serde_json::to_writer(&mut count, value);
        count.0
    }

    /// Bytes `group` takes in the stored tally, with its key and separators.
    pub(super) fn group_size(key: &GroupKey, group: &GroupTally) -> usize {
        group_size_from(key, group, Day::MIN)
    }

    /// What [`group_size`] would be without the days before `from`: 0 when none is left.
    pub(super) fn group_size_from(key: &GroupKey, group: &GroupTally, from: Day) -> usize {
        if group.days.range(from..).next().is_none() {
            return 0;
        }
        let carry_from_us = group.newest_us().saturating_sub(PAIR_CARRY_OVER_US);
        stored_len(key) + 2 + stored_len(&GroupOut::new(key, group, carry_from_us, from))
    }

    /// Bytes the stored tally takes besides its groups.
    pub(super) fn size_without_groups(tally: &Tally) -> usize {
        size_without_groups_from(tally, Day::MIN)
    }

    /// What [`size_without_groups`] would be without the days before `from`.
    pub(super) fn size_without_groups_from(tally: &Tally, from: Day) -> usize {
        let skeleton = Tally {
            groups: BTreeMap::new(),
            totals: tally.totals.range(from..).map(|(d, t)| (*d, *t)).collect(),
            folded: tally.folded.range(from..).map(|(d, f)| (*d, *f)).collect(),
        };
        stored_len(&skeleton)
    }

    fn pair_hash(text: &str) -> Option<u64> {
        if text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            u64::from_str_radix(text, 16).ok()
        } else {
            None
        }
    }

    impl<'de> Deserialize<'de> for Tally {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let stored = TallyIn::deserialize(deserializer)?;
            stored
                .totals
                .values()
                .flat_map(|t| {
                    [
                        t.entries,
                        t.postgrey_lines,
                        t.decisions,
                        t.greylisted,
                        t.untrusted_skipped,
                        t.malformed,
                    ]
                })
                .try_fold(0, add_count)
                .ok_or_else(|| D::Error::custom("totals: counts beyond any real log"))?;
            stored
                .folded
                .values()
                .flat_map(|f| [f.greylisted, f.largest])
                .try_fold(0, add_count)
                .ok_or_else(|| D::Error::custom("folded: counts beyond any real log"))?;
            let mut tally = Tally {
                groups: BTreeMap::new(),
                totals: stored.totals,
                folded: stored.folded,
            };
            let mut stored_pairs = Vec::new();
            for (key, group) in stored.groups {
                let days = days_of(group.days, &group.ips, &group.hosts, domain_of(&key))
                    .map_err(|why| D::Error::custom(format!("group {key}: {why}")))?;
                stored_pairs.push((key.clone(), group.pairs));
                tally.groups.insert(
                    key,
                    GroupTally {
                        days,
                        pairs: HashMap::new(),
                    },
                );
            }
            for (key, pairs) in stored_pairs {
                let Some(group) = tally.groups.get_mut(&key) else {
                    continue;
                };
                let newest_us = group.newest_us();
                for (net, hashes) in pairs {
                    for text in hashes {
                        let hash = pair_hash(&text).ok_or_else(|| {
                            D::Error::custom(format!(
                                "group {key}: pair hash {text:?} is not 16 hex digits"
                            ))
                        })?;
                        let track = group.pairs.entry(hash).or_default();
                        track.last_us = newest_us;
                        if !track.nets.contains(&net) && track.nets.len() < PAIR_NET_CAP {
                            track.nets.push(net);
                        }
                    }
                }
            }
            Ok(tally)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn host_names_are_relative_to_the_domain_and_read_back() {
            let domain = Some("example.com");
            let cases = [
                ("mx1.example.com", "mx1"),
                ("a.smtp-out.example.com", "a.smtp-out"),
                ("example.com", "@"),
                ("@.example.com", "@.example.com."),
                ("notexample.com", "notexample.com."),
                ("mx.example.net", "mx.example.net."),
                ("a..example.com", "a..example.com."),
                ("example.com.", "example.com.."),
                ("", "."),
            ];
            for (host, stored) in cases {
                assert_eq!(relative(host, domain), stored, "{host}");
                assert_eq!(absolute(stored, domain), host, "{stored}");
            }
            // A network group has no domain: names stay as they are.
            assert_eq!(relative("mx.example.com", None), "mx.example.com");
            assert_eq!(absolute("mx.example.com", None), "mx.example.com");
        }

        #[test]
        fn a_stored_tally_that_makes_no_sense_is_refused_with_the_reason() {
            let cases = [
                (
                    r#"{"groups":{"example.com":{"i":["192.0.2.1"],"d":{"3":{"i":[1],"f":0}}}}}"#,
                    "group example.com: day 3: an address position is out of range",
                ),
                (
                    r#"{"groups":{"example.com":{"h":["mx"],"d":{"3":{"h":[-1,2],"f":0}}}}}"#,
                    "group example.com: day 3: more host counts than host names",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":{"f":9223372036854775807}}}}}"#,
                    "group example.com: day 3: a time out of range",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":{"f":-1}}}}}"#,
                    "group example.com: day 3: a time out of range",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":{"f":86399999999,"l":2}}}}}"#,
                    "group example.com: day 3: a time out of range",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"-106751991":{"f":0}}}}}"#,
                    "group example.com: day -106751991: a time out of range",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":[1]}}}}"#,
                    "group example.com: day 3: a short day has 1 fields, not 2 to 16",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}}}}"#,
                    "group example.com: day 3: a short day has 17 fields, not 2 to 16",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":[0,0,1,0,0,0,0,0,0,0,300]}}}}"#,
                    "group example.com: day 3: a delay without a mail that waited",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":[86399,1,1]}}}}"#,
                    "group example.com: day 3: a time out of range",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":[0,0,1,0,0,0,0,0,0,0,0,0,8]}}}}"#,
                    "group example.com: day 3: caps 8 are not a combination of 1, 2 and 4",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":[0,0,1,0,0,0,0,0,0,0,0,0,0,1,5]}}}}"#,
                    "group example.com: day 3: distinct counts [1, 5, 0] that no day can have",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":[0,0,1,0,0,0,0,0,0,0,0,0,256]}}}}"#,
                    "group example.com: day 3: caps 256 are not a combination of 1, 2 and 4",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":{"f":0,"x":[18446744073709551615,0,0]}}}}}"#,
                    "group example.com: day 3: distinct counts [18446744073709551615, 0, 0] that no day can have",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":[0,-1]}}}}"#,
                    "invalid value: integer `-1`, expected u64",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":"x"}}}}"#,
                    "invalid type: string \"x\", expected a day bucket (a map, or a list of counts)",
                ),
                (
                    r#"{"groups":{"example.com":{"d":{"3":{"f":0}},"p":{"192.0.2.0/24":["+123456789abcdef"]}}}}"#,
                    "group example.com: pair hash \"+123456789abcdef\" is not 16 hex digits",
                ),
            ];
            for (json, reason) in cases {
                let err = serde_json::from_str::<Tally>(json).unwrap_err().to_string();
                assert!(err.starts_with(reason), "{err}");
            }
        }

        #[test]
        fn counts_skip_unseen_names() {
            assert_eq!(encode_counts(&[3, 1]), vec![3, 1]);
            assert_eq!(encode_counts(&[0, 0, 2, 0, 7, 0, 0]), vec![-2, 2, -1, 7]);
            assert_eq!(encode_counts(&[0, 0]), Vec::<i64>::new());
            let decoded: Vec<(usize, u64)> = decode_counts(&[-2, 2, -1, 7]).collect();
            assert_eq!(decoded, vec![(2, 2), (4, 7)]);
            // A zero, which is never written, reads as nothing.
            let decoded: Vec<(usize, u64)> = decode_counts(&[0, 5]).collect();
            assert_eq!(decoded, vec![(0, 5)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_000_000_000_000; // 2026-11-18 …

    pub(super) fn decision(
        reason: Reason,
        action: Action,
        name: &str,
        ip: &str,
        sender: &str,
        delay: Option<u64>,
    ) -> Decision {
        Decision {
            queue_id: None,
            action,
            reason: Some(reason),
            delay_s: delay,
            client_name: Some(if name == "unknown" {
                ClientName::Unknown
            } else {
                ClientName::Host(name.to_owned())
            }),
            client_address: Some(ip.parse().unwrap()),
            sender: Some(sender.to_owned()),
            recipient: Some("bob@example.org".to_owned()),
        }
    }

    fn key(d: &str) -> GroupKey {
        GroupKey::Domain(d.to_owned())
    }

    /// A group under a test-only list: every name's last two labels.
    struct Fixture {
        tally: Tally,
        grouper: Grouper,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                tally: Tally::default(),
                grouper: Grouper::builtin(),
            }
        }
        fn record(&mut self, at: i64, d: Decision) {
            self.tally.record_decision(&self.grouper, at, &d);
        }
        fn record_all(&mut self, events: &[(i64, Decision)]) {
            for (at, d) in events {
                self.record(*at, d.clone());
            }
        }
    }

    /// 40 `new` greylistings of bulk.example.net, `spacing_us` apart, from 5 networks and
    /// `hosts` host names, for 3 senders.
    fn bulk_greylistings(spacing_us: i64, hosts: i64) -> Vec<(i64, Decision)> {
        (0..40)
            .map(|i| {
                let ip = format!("198.51.{}.{}", i % 5, i);
                let host = format!("m{}.bulk.example.net", i % hosts);
                let sender = format!("s{}@x", i % 3);
                let d = decision(Reason::New, Action::Greylist, &host, &ip, &sender, None);
                (T0 + i * spacing_us, d)
            })
            .collect()
    }

    /// A multi-server sender's day: three `new` (two /24s), a pass after an hour, an early retry.
    fn multi_server_day(f: &mut Fixture) {
        let hour = 3_600_000_000;
        f.record(
            T0,
            decision(
                Reason::New,
                Action::Greylist,
                "a.smtp.example.com",
                "192.0.2.1",
                "s@x",
                None,
            ),
        );
        // same pair from same /24: not a retry from another network
        f.record(
            T0 + hour,
            decision(
                Reason::New,
                Action::Greylist,
                "b.smtp.example.com",
                "192.0.2.2",
                "s@x",
                None,
            ),
        );
        // from another /24: the signature
        f.record(
            T0 + 2 * hour,
            decision(
                Reason::New,
                Action::Greylist,
                "c.smtp.example.com",
                "198.51.100.3",
                "s@x",
                None,
            ),
        );
        f.record(
            T0 + 3 * hour,
            decision(
                Reason::TripletFound,
                Action::Pass,
                "c.smtp.example.com",
                "198.51.100.3",
                "s@x",
                Some(3600),
            ),
        );
        f.record(
            T0 + 3 * hour,
            decision(
                Reason::EarlyRetry { missing_s: 4 },
                Action::Greylist,
                "c.smtp.example.com",
                "198.51.100.3",
                "t@x",
                None,
            ),
        );
    }

    #[test]
    fn multi_server_retry_is_counted_once_per_other_network() {
        let mut f = Fixture::new();
        multi_server_day(&mut f);
        let g = &f.tally.groups[&key("example.com")];
        let (d, _) = g.days.iter().next().unwrap();
        let e = g.evidence(*d, d + 10).unwrap();
        assert_eq!(e.new, 3);
        assert_eq!(e.early_retry, 1);
        assert_eq!(e.retried_from_other_net, 1);
        assert_eq!(e.passed_after_delay, 1);
        assert_eq!(e.median_delay_s, Some(3600));
        assert_eq!(e.distinct_ips, 3);
        assert_eq!(e.distinct_nets, 2);
        assert_eq!(e.distinct_hosts, 3);
        assert_eq!(e.hosts[0], "c.smtp.example.com");
        assert_eq!(f.tally.totals_between(*d, *d).greylisted, 4);
    }

    #[test]
    fn a_run_continuing_the_last_ones_tally_equals_one_pass() {
        let events = bulk_greylistings(7_200_000_000, 40);
        let mut whole = Fixture::new();
        whole.record_all(&events);
        let mut first = Fixture::new();
        let mut second = Fixture::new();
        first.record_all(&events[..17]);
        // the second run starts from the first's state, as the timer job does
        second.tally = first.tally.clone();
        second.record_all(&events[17..]);
        assert_eq!(whole.tally, second.tally);
        let (a, b) = whole.tally.span().unwrap();
        let w = whole.tally.evidence_between(a, b);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].1.new, 40);
        assert_eq!(w[0].1.distinct_ips, 40);
    }

    /// `tally` saved to and loaded from the state file's form.
    fn through_state_file(tally: &Tally) -> Tally {
        serde_json::from_str(&serde_json::to_string(tally).unwrap()).unwrap()
    }

    #[test]
    fn the_state_file_form_is_compact() {
        let mut f = Fixture::new();
        multi_server_day(&mut f);
        let d = day_of(T0);
        assert_eq!(
            serde_json::to_string(&f.tally).unwrap(),
            format!(
                "{{\"groups\":{{\"example.com\":{{\
                 \"i\":[\"192.0.2.1\",\"192.0.2.2\",\"198.51.100.3\"],\
                 \"h\":[\"a.smtp\",\"b.smtp\",\"c.smtp\"],\
                 \"d\":{{\"{d}\":{{\"n\":3,\"e\":1,\"p\":1,\"r\":1,\"dl\":[3600],\
                 \"h\":[1,1,3],\"a\":[0,1,2],\"f\":40000000000,\"l\":10800000000}}}},\
                 \"p\":{{\"192.0.2.0/24\":[\"{s}\"],\"198.51.100.0/24\":[\"{s}\"]}}}}}},\
                 \"totals\":{{\"{d}\":{{\"entries\":0,\"postgrey_lines\":0,\"decisions\":5,\"greylisted\":4,\
                 \"untrusted_skipped\":0,\"malformed\":0}}}}}}",
                s = format_args!("{:016x}", pair_hash(Some("s@x"), Some("bob@example.org"))),
            )
        );
    }

    #[test]
    fn the_state_file_keeps_every_day_as_it_was() {
        let mut f = Fixture::new();
        let minute = 60_000_000;
        // Day 0: more addresses than the cap, the last ones in another /24 (so the networks
        // are no longer those of the addresses kept), and many more delays than the cap, the
        // longest (the first) no longer in the sample.
        for i in 0..(DISTINCT_CAP as i64 + 40) {
            let ip = if i < DISTINCT_CAP as i64 {
                format!("10.{}.0.{}", i / 200, i % 200 + 1)
            } else {
                format!("10.9.9.{}", i - DISTINCT_CAP as i64 + 1)
            };
            let name = if i % 2 == 0 {
                "example.com"
            } else {
                "mx.example.com"
            };
            let sender = format!("s{i}@x");
            f.record(
                T0 + i * minute,
                decision(Reason::New, Action::Greylist, name, &ip, &sender, None),
            );
        }
        let longest = 100_000;
        for i in 0..(20 * DELAY_CAP as u64) {
            f.record(
                T0 + 400 * minute,
                decision(
                    Reason::TripletFound,
                    Action::Pass,
                    "mx.example.com",
                    "10.0.0.1",
                    "s@x",
                    Some(if i == 0 { longest } else { 300 + i % 1000 }),
                ),
            );
        }
        // Day 2: one of day 0's addresses and a host of its own; an unresolved client.
        let later = T0 + 2 * MICROS_PER_DAY;
        f.record(
            later,
            decision(
                Reason::New,
                Action::Greylist,
                "mx2.example.com",
                "10.0.0.1",
                "s@x",
                None,
            ),
        );
        f.record(
            later + minute,
            decision(
                Reason::New,
                Action::Greylist,
                "unknown",
                "192.0.2.7",
                "u@y",
                None,
            ),
        );
        let day0 = &f.tally.groups[&key("example.com")].days[&day_of(T0)];
        assert_eq!(
            day0.caps,
            Caps {
                distinct: true,
                delays: true,
                pairs: false
            }
        );
        assert_eq!(day0.nets.len(), 3);
        assert_eq!(day0.max_delay_s, Some(longest));
        assert!(!day0.delays.contains(&longest));

        // Each of those is in the file only because it cannot be rebuilt.
        let stored = serde_json::to_value(&f.tally).unwrap();
        let group = &stored["groups"]["example.com"];
        let stored_day0 = &group["d"][day_of(T0).to_string()];
        assert_eq!(stored_day0["nt"].as_array().unwrap().len(), 3);
        assert_eq!(stored_day0["mx"], longest);
        assert_eq!(stored_day0["i"], serde_json::Value::Null);
        assert_eq!(stored_day0["c"], 3);
        assert_eq!(group["h"], serde_json::json!(["@", "mx", "mx2"]));
        let stored_day2 = &group["d"][day_of(later).to_string()];
        assert_eq!(stored_day2["i"], serde_json::json!([0]));
        assert_eq!(stored_day2["a"], serde_json::Value::Null);
        assert_eq!(stored_day2["h"], serde_json::json!([-2, 1]));
        assert_eq!(stored_day2["nt"], serde_json::Value::Null);
        assert_eq!(stored_day2["mx"], serde_json::Value::Null);
        // Day 0 saw two names, each with half of the addresses kept.
        let names_day0 = stored_day0["a"].as_array().unwrap();
        assert_eq!(names_day0.len(), DISTINCT_CAP);
        assert_eq!(names_day0[..3], [0, 1, 0]);

        let loaded = through_state_file(&f.tally);
        assert_eq!(loaded.totals, f.tally.totals);
        assert_eq!(
            loaded.groups.keys().collect::<Vec<_>>(),
            f.tally.groups.keys().collect::<Vec<_>>()
        );
        for (key, group) in &f.tally.groups {
            assert_eq!(loaded.groups[key].days, group.days, "{key}");
        }
        let (first, last) = f.tally.span().unwrap();
        assert_eq!(
            loaded.evidence_between(first, last),
            f.tally.evidence_between(first, last)
        );
        // Saving what was loaded writes the same file.
        assert_eq!(
            serde_json::to_string(&loaded).unwrap(),
            serde_json::to_string(&f.tally).unwrap()
        );
    }

    #[test]
    fn the_state_file_carries_over_the_pairs_of_the_last_day() {
        let mut f = Fixture::new();
        let hour = 3_600_000_000;
        let greylist = |ip: &str, sender: &str| {
            decision(
                Reason::New,
                Action::Greylist,
                "mx.example.com",
                ip,
                sender,
                None,
            )
        };
        f.record(T0, greylist("192.0.2.1", "old@x"));
        f.record(T0 + 30 * hour, greylist("192.0.2.1", "recent@x"));
        f.record(T0 + 31 * hour, greylist("198.51.100.1", "recent@x"));
        f.record(T0 + 32 * hour, greylist("192.0.2.1", "newest@x"));
        let newest_us = T0 + 32 * hour;
        let group = &f.tally.groups[&key("example.com")];
        assert_eq!(group.pairs.len(), 3);

        let loaded = through_state_file(&f.tally);
        let pairs = &loaded.groups[&key("example.com")].pairs;
        let recent = pair_hash(Some("recent@x"), Some("bob@example.org"));
        let newest = pair_hash(Some("newest@x"), Some("bob@example.org"));
        let mut hashes: Vec<u64> = pairs.keys().copied().collect();
        hashes.sort_unstable();
        let mut expected = vec![recent, newest];
        expected.sort_unstable();
        // `old@x` was greylisted 32 hours before the newest decision: not carried over.
        assert_eq!(hashes, expected);
        let nets = |p: &PairTrack| p.nets.iter().map(IpNet::to_string).collect::<BTreeSet<_>>();
        assert_eq!(
            nets(&pairs[&recent]),
            BTreeSet::from(["192.0.2.0/24".to_owned(), "198.51.100.0/24".to_owned()])
        );
        assert_eq!(pairs[&recent].last_us, newest_us);
        assert_eq!(pairs[&newest].last_us, newest_us);

        // The next run still knows `recent@x` came from two networks: a third one counts.
        let mut next = Fixture::new();
        next.tally = loaded;
        next.record(T0 + 40 * hour, greylist("203.0.113.1", "recent@x"));
        let day = day_of(T0 + 40 * hour);
        let group = &next.tally.groups[&key("example.com")];
        assert_eq!(group.days[&day].retried_from_other_net, 1);
    }

    /// One entry with a wrong clock (a year ahead) in another group must not push this group's
    /// pairs out of the state file.
    #[test]
    fn a_future_dated_entry_elsewhere_keeps_this_groups_pairs() {
        let mut f = Fixture::new();
        let hour = 3_600_000_000;
        let greylist =
            |name: &str, ip: &str| decision(Reason::New, Action::Greylist, name, ip, "s@x", None);
        f.record(T0, greylist("a.mx.example.com", "192.0.2.1"));
        f.record(
            T0 + 365 * 24 * hour,
            greylist("mail.future.example", "198.18.0.1"),
        );
        let loaded = through_state_file(&f.tally);
        assert_eq!(loaded.groups[&key("example.com")].pairs.len(), 1);
        let mut next = Fixture::new();
        next.tally = loaded;
        next.record(T0 + hour, greylist("b.mx.example.com", "198.51.100.1"));
        let group = &next.tally.groups[&key("example.com")];
        assert_eq!(group.days[&day_of(T0)].retried_from_other_net, 1);
    }

    #[test]
    fn a_run_resumed_from_the_state_file_counts_like_one_pass() {
        let events = bulk_greylistings(2_700_000_000, 7);
        let mut whole = Fixture::new();
        whole.record_all(&events);
        let mut resumed = Fixture::new();
        for (i, (at, d)) in events.iter().enumerate() {
            if i % 9 == 0 {
                resumed.tally = through_state_file(&resumed.tally);
            }
            resumed.record(*at, d.clone());
        }
        let (a, b) = whole.tally.span().unwrap();
        let evidence = whole.tally.evidence_between(a, b);
        assert_eq!(evidence[0].1.retried_from_other_net, 15);
        assert_eq!(resumed.tally.evidence_between(a, b), evidence);
        assert_eq!(
            serde_json::to_string(&resumed.tally).unwrap(),
            serde_json::to_string(&whole.tally).unwrap()
        );
    }

    #[test]
    fn median_takes_the_lower_middle() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5]), Some(5));
        assert_eq!(median(&[1, 2, 3, 4]), Some(2));
        assert_eq!(median(&[1, 2, 3]), Some(2));
    }

    #[test]
    fn per_day_fills_gaps() {
        assert_eq!(
            fill_days(9, 13, vec![(10, 2), (12, 1)]),
            vec![(9, 0), (10, 2), (11, 0), (12, 1), (13, 0)]
        );
        // An absurd window lists only the days given.
        assert_eq!(
            fill_days(0, MAX_FILLED_DAYS, vec![(10, 2), (12, 1)]),
            vec![(10, 2), (12, 1)]
        );
        assert_eq!(fill_days(i64::MIN, i64::MAX, vec![(10, 2)]), vec![(10, 2)]);
        assert_eq!(fill_days(1, MAX_FILLED_DAYS, vec![]).len(), 366);
    }

    #[test]
    fn prune_drops_old_days_and_empty_groups() {
        let mut f = Fixture::new();
        f.record(
            T0,
            decision(
                Reason::New,
                Action::Greylist,
                "a.example.com",
                "192.0.2.1",
                "s@x",
                None,
            ),
        );
        let d = day_of(T0);
        f.tally.prune(d + 1, T0 + 1);
        assert!(f.tally.groups.is_empty());
        assert!(f.tally.totals.is_empty());
    }

    fn greylist(name: &str, ip: &str, sender: &str) -> Decision {
        decision(Reason::New, Action::Greylist, name, ip, sender, None)
    }

    fn passed_after(delay_s: u64) -> Decision {
        decision(
            Reason::TripletFound,
            Action::Pass,
            "mx.example.com",
            "192.0.2.1",
            "s@x",
            Some(delay_s),
        )
    }

    #[test]
    fn a_window_merges_its_days_without_capping_again() {
        // A big sender: 40 addresses and names a day, new ones every day for a week.
        let mut f = Fixture::new();
        for day in 0..7 {
            for i in 0..40 {
                f.record(
                    T0 + day * MICROS_PER_DAY + i * 60_000_000,
                    greylist(
                        &format!("o{day}-{i}.mail.example.com"),
                        &format!("10.{day}.{i}.1"),
                        "s@x",
                    ),
                );
            }
        }
        let (first, last) = f.tally.span().unwrap();
        let evidence = f.tally.evidence_between(first, last);
        let e = &evidence[0].1;
        assert_eq!(e.caps, Caps::default());
        assert_eq!(e.distinct_ips, 280);
        assert_eq!(e.distinct_nets, 280);
        assert_eq!(e.distinct_hosts, 280);
        assert_eq!(e.clients.len(), 280);
        assert_eq!(e.new, 280);
    }

    #[test]
    fn evidence_tells_which_name_came_with_which_address() {
        let mut f = Fixture::new();
        f.record(T0, greylist("a.example.com", "192.0.2.1", "s@x"));
        f.record(T0 + 1, greylist("b.example.com", "198.51.100.7", "s@x"));
        // The next day, a's address under b's name too; an unresolved client.
        f.record(
            T0 + MICROS_PER_DAY,
            greylist("b.example.com", "192.0.2.1", "s@x"),
        );
        f.record(
            T0 + MICROS_PER_DAY,
            greylist("unknown", "203.0.113.8", "s@x"),
        );
        let client = |name: Option<&str>, ip: &str| (name.map(str::to_owned), ip.parse().unwrap());
        let expected: Vec<Vec<(Option<String>, IpAddr)>> = vec![
            vec![
                client(Some("a.example.com"), "192.0.2.1"),
                client(Some("b.example.com"), "192.0.2.1"),
                client(Some("b.example.com"), "198.51.100.7"),
            ],
            vec![client(None, "203.0.113.8")],
        ];
        let clients_of = |tally: &Tally| -> Vec<Vec<(Option<String>, IpAddr)>> {
            let (first, last) = tally.span().unwrap();
            tally
                .evidence_between(first, last)
                .into_iter()
                .map(|(_, e)| e.clients)
                .collect()
        };
        assert_eq!(clients_of(&f.tally), expected);
        let loaded = through_state_file(&f.tally);
        assert_eq!(clients_of(&loaded), expected);
        let stored = serde_json::to_value(&f.tally).unwrap();
        let group = &stored["groups"]["example.com"];
        // Day 1 saw both names on 192.0.2.1 only; day 0 one name per address.
        assert_eq!(
            group["d"][(day_of(T0) + 1).to_string()]["a"],
            serde_json::Value::Null
        );
        assert_eq!(
            group["d"][day_of(T0).to_string()]["a"],
            serde_json::json!([0, 1])
        );
    }

    #[test]
    fn clients_that_follow_from_addresses_and_names_are_not_stored() {
        let mut f = Fixture::new();
        // One name on two addresses, one address under two names, no name at all.
        f.record(T0, greylist("mx.one.example", "192.0.2.1", "s@x"));
        f.record(T0 + 1, greylist("mx.one.example", "192.0.2.2", "s@x"));
        f.record(T0, greylist("a.two.example", "192.0.2.3", "s@x"));
        f.record(T0 + 1, greylist("b.two.example", "192.0.2.3", "s@x"));
        f.record(T0, greylist("unknown", "203.0.113.4", "s@x"));
        let stored = serde_json::to_value(&f.tally).unwrap();
        let d = day_of(T0).to_string();
        for group in ["one.example", "two.example", "203.0.113.0/24"] {
            assert_eq!(
                stored["groups"][group]["d"][&d]["a"],
                serde_json::Value::Null,
                "{group}"
            );
        }
        let loaded = through_state_file(&f.tally);
        for (key, group) in &f.tally.groups {
            assert_eq!(loaded.groups[key].days, group.days, "{key}");
        }
        assert_eq!(
            loaded.groups[&key("two.example")].days[&day_of(T0)]
                .clients
                .len(),
            2
        );
    }

    #[test]
    fn stored_client_names_that_make_no_sense_are_refused() {
        let cases = [
            (
                r#"{"groups":{"example.com":{"i":["192.0.2.1"],"h":["mx"],"d":{"3":{"a":[0,0],"f":0}}}}}"#,
                "group example.com: day 3: more client names than addresses",
            ),
            (
                r#"{"groups":{"example.com":{"i":["192.0.2.1"],"h":["mx"],"d":{"3":{"a":[[0,1]],"f":0}}}}}"#,
                "group example.com: day 3: client name position 1 is out of range",
            ),
            (
                r#"{"groups":{"example.com":{"i":["192.0.2.1"],"h":["mx"],"d":{"3":{"a":[-2],"f":0}}}}}"#,
                "group example.com: day 3: client name position -2 is out of range",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":{"c":8,"f":0}}}}}"#,
                "group example.com: day 3: caps 8 are not a combination of 1, 2 and 4",
            ),
        ];
        for (json, reason) in cases {
            let err = serde_json::from_str::<Tally>(json).unwrap_err().to_string();
            assert!(err.starts_with(reason), "{err}");
        }
    }

    #[test]
    fn a_full_pair_memory_is_a_cap() {
        let mut f = Fixture::new();
        for i in 0..=PAIR_CAP as i64 {
            f.record(
                T0 + i * 1_000_000,
                greylist("mx.example.com", "192.0.2.1", &format!("s{i}@x")),
            );
        }
        let day = &f.tally.groups[&key("example.com")].days[&day_of(T0)];
        assert_eq!(
            day.caps,
            Caps {
                distinct: false,
                delays: false,
                pairs: true
            }
        );
        let stored = serde_json::to_value(&f.tally).unwrap();
        assert_eq!(
            stored["groups"]["example.com"]["d"][day_of(T0).to_string()]["c"],
            4
        );
        let loaded = through_state_file(&f.tally);
        let (first, last) = loaded.span().unwrap();
        assert!(loaded.evidence_between(first, last)[0].1.caps.pairs);
    }

    #[test]
    fn the_median_of_a_capped_day_is_that_of_all_its_delays() {
        // Delays growing through the day: keeping the first ones would put the median near
        // the start.
        let mut f = Fixture::new();
        let n = 4 * DELAY_CAP as u64;
        for i in 0..n {
            f.record(T0 + i as i64, passed_after(300 + i));
        }
        let day = &f.tally.groups[&key("example.com")].days[&day_of(T0)];
        assert_eq!(day.delays.len(), DELAY_CAP);
        assert!(day.caps.delays);
        assert_eq!(day.max_delay_s, Some(300 + n - 1));
        // The sample reaches over the whole day.
        let late = day.delays.iter().filter(|&&d| d >= 300 + n / 2).count();
        assert!(
            (200..=312).contains(&late),
            "{late} of the sample from the later half"
        );
        let (first, last) = f.tally.span().unwrap();
        let median = f.tally.evidence_between(first, last)[0].1.median_delay_s;
        let exact = 300 + (n - 1) / 2;
        assert!(
            median.is_some_and(|m| m.abs_diff(exact) <= n / 20),
            "median {median:?}, exact {exact}"
        );
        // Sampling is deterministic: a run resumed from the state file keeps the same sample.
        let mut resumed = Fixture::new();
        for i in 0..n {
            if i % 700 == 0 {
                resumed.tally = through_state_file(&resumed.tally);
            }
            resumed.record(T0 + i as i64, passed_after(300 + i));
        }
        assert_eq!(resumed.tally, f.tally);
    }

    #[test]
    fn a_windows_median_weighs_each_day_by_its_delays() {
        // A quiet day of short waits (more than the cap, so sampled), then a busy day of long
        // ones: most mail waited long.
        let mut f = Fixture::new();
        for i in 0..600 {
            f.record(T0 + i, passed_after(300));
        }
        for i in 0..2000 {
            f.record(T0 + MICROS_PER_DAY + i, passed_after(10_000));
        }
        let (first, last) = f.tally.span().unwrap();
        let e = &f.tally.evidence_between(first, last)[0].1;
        assert_eq!(e.passed_after_delay, 2600);
        assert_eq!(e.median_delay_s, Some(10_000));
        assert!(e.caps.delays);
        // Days whose delays were all kept: the exact lower middle.
        let mut g = Fixture::new();
        for (i, delay) in [400, 100, 300, 200].into_iter().enumerate() {
            g.record(T0 + i as i64 * MICROS_PER_DAY, passed_after(delay));
        }
        let (first, last) = g.tally.span().unwrap();
        let e = &g.tally.evidence_between(first, last)[0].1;
        assert_eq!(e.median_delay_s, Some(200));
        assert_eq!(e.caps, Caps::default());
    }

    #[test]
    fn every_group_lists_the_same_days_of_the_window() {
        let mut f = Fixture::new();
        f.record(T0, greylist("mx.early.example", "192.0.2.1", "s@x"));
        f.record(
            T0 + 3 * MICROS_PER_DAY,
            greylist("mx.late.example", "198.51.100.1", "s@x"),
        );
        let d = day_of(T0);
        // A window wider than what the tally knows of is cut to it.
        for (first, last) in [(d - 5, d + 9), (i64::MIN, i64::MAX), (d, d + 3)] {
            let evidence = f.tally.evidence_between(first, last);
            let per_day: Vec<&Vec<(Day, u64)>> = evidence.iter().map(|(_, e)| &e.per_day).collect();
            assert_eq!(
                per_day,
                [
                    &vec![(d, 1), (d + 1, 0), (d + 2, 0), (d + 3, 0)],
                    &vec![(d, 0), (d + 1, 0), (d + 2, 0), (d + 3, 1)],
                ]
            );
        }
        assert!(f.tally.evidence_between(d + 1, d + 2).is_empty());
        assert!(f.tally.evidence_between(d + 2, d).is_empty());
        let group = &f.tally.groups[&key("early.example")];
        assert_eq!(group.evidence(d, d - 1), None);
        assert_eq!(
            group.evidence(i64::MIN, i64::MAX).unwrap().per_day,
            vec![(d, 1)]
        );
    }

    #[test]
    fn the_span_covers_days_with_decisions_but_no_totals() {
        let mut f = Fixture::new();
        f.record(T0, passed_after(300));
        f.tally.totals.clear();
        let d = day_of(T0);
        assert_eq!(f.tally.span(), Some((d, d)));
        assert_eq!(f.tally.evidence_between(d, d).len(), 1);
        assert_eq!(Tally::default().span(), None);
    }
}
