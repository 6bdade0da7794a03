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
//! file: evidence over any window inside the retention is the merge of its days. Distinct sets
//! are capped per day to keep the state bounded; [`Evidence::capped`] says when a cap was hit,
//! and the distinct counts are then lower bounds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hasher;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::event::{Action, ClientName, Decision, Event, Reason};
use crate::group::{GroupKey, Grouper, network_of};
use crate::source::{Entry, Origin};

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
/// the newest decision counted. A multi-server sender retries from its other networks within
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
        self.greylisted += other.greylisted;
        self.untrusted_skipped += other.untrusted_skipped;
        self.malformed += other.malformed;
    }
}

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
    /// Up to [`DELAY_CAP`] delays, seconds.
    pub delays: Vec<u64>,
    /// The longest delay, also of those beyond the cap; `None` only when there was none.
    pub max_delay_s: Option<u64>,
    pub ips: BTreeSet<IpAddr>,
    pub nets: BTreeSet<IpNet>,
    /// Host name → how many decisions named it.
    pub hosts: BTreeMap<String, u64>,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    /// A distinct set or the delay list reached its cap.
    pub capped: bool,
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
    /// Greylistings (`new` + `early_retry`) per day, oldest first, every day of the span.
    pub per_day: Vec<(Day, u64)>,
    pub capped: bool,
}

impl Evidence {
    /// How often postgrey made this group wait.
    pub fn greylisted(&self) -> u64 {
        self.new + self.early_retry
    }
}

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
        if let Some(address) = address {
            insert_capped(&mut self.ips, address, &mut self.capped);
            insert_capped(&mut self.nets, network_of(address), &mut self.capped);
        }
        if let Some(host) = name.and_then(ClientName::host) {
            if let Some(count) = self.hosts.get_mut(host) {
                *count += 1;
            } else if self.hosts.len() < DISTINCT_CAP {
                self.hosts.insert(host.to_owned(), 1);
            } else {
                self.capped = true;
            }
        }
    }

    fn add_delay(&mut self, delay_s: u64) {
        self.passed_after_delay += 1;
        self.max_delay_s = Some(self.max_delay_s.map_or(delay_s, |m| m.max(delay_s)));
        if self.delays.len() < DELAY_CAP {
            self.delays.push(delay_s);
        } else {
            self.capped = true;
        }
    }

    fn merge(&mut self, other: &DayStats) {
        self.new += other.new;
        self.early_retry += other.early_retry;
        self.passed_after_delay += other.passed_after_delay;
        self.passed_known += other.passed_known;
        self.passed_whitelisted += other.passed_whitelisted;
        self.retried_from_other_net += other.retried_from_other_net;
        self.capped |= other.capped;
        for &d in &other.delays {
            if self.delays.len() < DELAY_CAP {
                self.delays.push(d);
            } else {
                self.capped = true;
            }
        }
        self.max_delay_s = match (self.max_delay_s, other.max_delay_s) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for ip in &other.ips {
            insert_capped(&mut self.ips, *ip, &mut self.capped);
        }
        for net in &other.nets {
            insert_capped(&mut self.nets, *net, &mut self.capped);
        }
        for (host, count) in &other.hosts {
            if let Some(c) = self.hosts.get_mut(host) {
                *c += count;
            } else if self.hosts.len() < DISTINCT_CAP {
                self.hosts.insert(host.clone(), *count);
            } else {
                self.capped = true;
            }
        }
        self.first_seen_us = self.first_seen_us.min(other.first_seen_us);
        self.last_seen_us = self.last_seen_us.max(other.last_seen_us);
    }
}

impl GroupTally {
    /// Records a greylisting of the pair from `net`; true when the pair was greylisted before
    /// from a different network of this group (within [`PAIR_MEMORY_US`]).
    fn greylisted_from(&mut self, pair: u64, net: IpNet, realtime_us: i64) -> bool {
        if !self.pairs.contains_key(&pair) && self.pairs.len() >= PAIR_CAP {
            self.forget_pairs_before(realtime_us - PAIR_MEMORY_US);
            if self.pairs.len() >= PAIR_CAP {
                return false;
            }
        }
        let track = self.pairs.entry(pair).or_default();
        if realtime_us - track.last_us > PAIR_MEMORY_US {
            track.nets.clear();
        }
        track.last_us = track.last_us.max(realtime_us);
        if track.nets.contains(&net) {
            return false;
        }
        let seen_elsewhere = !track.nets.is_empty();
        if track.nets.len() < PAIR_NET_CAP {
            track.nets.push(net);
        }
        seen_elsewhere
    }

    fn forget_pairs_before(&mut self, cutoff_us: i64) {
        self.pairs.retain(|_, track| track.last_us >= cutoff_us);
    }

    /// Evidence over the days in `[first, last]`.
    pub fn evidence(&self, first: Day, last: Day) -> Option<Evidence> {
        let mut merged: Option<DayStats> = None;
        let mut per_day = Vec::new();
        for (day, stats) in self.days.range(first..=last) {
            per_day.push((*day, stats.new + stats.early_retry));
            match merged.as_mut() {
                Some(m) => m.merge(stats),
                None => merged = Some(stats.clone()),
            }
        }
        let merged = merged?;
        let per_day = fill_days(&per_day);
        let mut delays = merged.delays.clone();
        delays.sort_unstable();
        let mut hosts: Vec<(&String, &u64)> = merged.hosts.iter().collect();
        hosts.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        Some(Evidence {
            new: merged.new,
            early_retry: merged.early_retry,
            passed_after_delay: merged.passed_after_delay,
            passed_known: merged.passed_known,
            passed_whitelisted: merged.passed_whitelisted,
            median_delay_s: median(&delays),
            max_delay_s: merged.max_delay_s,
            distinct_ips: merged.ips.len() as u64,
            distinct_nets: merged.nets.len() as u64,
            distinct_hosts: merged.hosts.len() as u64,
            retried_from_other_net: merged.retried_from_other_net,
            first_seen_us: merged.first_seen_us,
            last_seen_us: merged.last_seen_us,
            hosts: hosts.into_iter().map(|(h, _)| h.clone()).collect(),
            ips: merged.ips.into_iter().collect(),
            per_day,
            capped: merged.capped,
        })
    }
}

/// The days from the first to the last given, with zero where none was given.
fn fill_days(days: &[(Day, u64)]) -> Vec<(Day, u64)> {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Vec::new();
    };
    let given: BTreeMap<Day, u64> = days.iter().copied().collect();
    (first.0..=last.0)
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
            _ => false,
        };
        let day = group
            .days
            .entry(day_of(realtime_us))
            .or_insert_with(|| DayStats::new_at(realtime_us));
        day.see_client(
            realtime_us,
            decision.client_name.as_ref(),
            decision.client_address,
        );
        if retried_elsewhere {
            day.retried_from_other_net += 1;
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

    /// Folds a later tally into this one (the timer job adds each run's tally to its state).
    pub fn merge(&mut self, later: Tally) {
        for (day, totals) in later.totals {
            self.totals.entry(day).or_default().add(&totals);
        }
        for (key, group) in later.groups {
            let mine = self.groups.entry(key).or_default();
            for (day, stats) in group.days {
                match mine.days.get_mut(&day) {
                    Some(existing) => existing.merge(&stats),
                    None => {
                        mine.days.insert(day, stats);
                    }
                }
            }
            for (pair, track) in group.pairs {
                let entry = mine.pairs.entry(pair).or_default();
                for net in track.nets {
                    if !entry.nets.contains(&net) && entry.nets.len() < PAIR_NET_CAP {
                        entry.nets.push(net);
                    }
                }
                entry.last_us = entry.last_us.max(track.last_us);
            }
        }
    }

    /// Drops day buckets before `first_kept` and pairs not seen since `pair_cutoff_us`.
    pub fn prune(&mut self, first_kept: Day, pair_cutoff_us: i64) {
        self.totals.retain(|day, _| *day >= first_kept);
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

    /// Evidence of every group active in `[first, last]`.
    pub fn evidence_between(&self, first: Day, last: Day) -> Vec<(GroupKey, Evidence)> {
        self.groups
            .iter()
            .filter_map(|(key, g)| g.evidence(first, last).map(|e| (key.clone(), e)))
            .collect()
    }

    /// Every day this tally knows of.
    pub fn span(&self) -> Option<(Day, Day)> {
        let first = self.totals.keys().next()?;
        let last = self.totals.keys().next_back()?;
        Some((*first, *last))
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
///   they are those of its addresses (they differ only once a cap dropped some), and the
///   longest delay when it is the longest of the delays kept.
/// - Times are µs after the day's midnight (first seen) and after first seen (last seen).
/// - Only the pairs greylisted within [`PAIR_CARRY_OVER_US`] of the newest decision are
///   carried over, listed by network; on load they count as greylisted at that decision.
///
/// ```text
/// {"groups": {"example.com": {
///     "i": ["192.0.2.1", "198.51.100.3"],
///     "h": ["a.smtp", "c.smtp"],
///     "d": {"20410": {"n": 3, "r": 1, "p": 1, "dl": [3600], "h": [1, 2], "f": 3600000000,
///                     "l": 7200000000}},
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
        Day, DayStats, GroupTally, MICROS_PER_DAY, PAIR_CARRY_OVER_US, PAIR_NET_CAP, Tally, Totals,
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
    /// (see [`encode_counts`]), `f` first seen (µs after the day's midnight), `l` last seen (µs
    /// after first seen), `c` capped.
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
        #[serde(rename = "f")]
        first_seen: i64,
        #[serde(rename = "l", skip_serializing_if = "is_default")]
        last_seen: i64,
        #[serde(rename = "c", skip_serializing_if = "is_default")]
        capped: bool,
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
        #[serde(rename = "f")]
        first_seen: i64,
        #[serde(rename = "l", default)]
        last_seen: i64,
        #[serde(rename = "c", default)]
        capped: bool,
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
        days: BTreeMap<Day, DayOut<'a>>,
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
        days: BTreeMap<Day, DayIn>,
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

    /// Saturates for a day no clock reaches: then no stored time fits and the file is refused.
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
                first_seen: stats.first_seen_us - midnight_us(day),
                last_seen: stats.last_seen_us - stats.first_seen_us,
                capped: stats.capped,
            }
        }
    }

    impl<'a> GroupOut<'a> {
        fn new(key: &GroupKey, group: &'a GroupTally, carry_from_us: i64) -> Self {
            // Sorted, so that a day finds its positions by binary search.
            let ips: Vec<IpAddr> = group
                .days
                .values()
                .flat_map(|d| d.ips.iter().copied())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let hosts: Vec<&str> = group
                .days
                .values()
                .flat_map(|d| d.hosts.keys().map(String::as_str))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let days = group
                .days
                .iter()
                .map(|(day, stats)| (*day, DayOut::new(*day, stats, &ips, &hosts)))
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

    /// A stored group's day buckets, or why they do not make sense.
    fn days_of(
        days: BTreeMap<Day, DayIn>,
        ips: &[IpAddr],
        hosts: &[String],
        domain: Option<&str>,
    ) -> Result<BTreeMap<Day, DayStats>, String> {
        let hosts: Vec<String> = hosts.iter().map(|h| absolute(h, domain)).collect();
        let mut result = BTreeMap::new();
        for (day, stored) in days {
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
            let first_seen_us = midnight_us(day).checked_add(stored.first_seen);
            let last_seen_us = first_seen_us.and_then(|first| first.checked_add(stored.last_seen));
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
                first_seen_us,
                last_seen_us,
                capped: stored.capped,
            };
            result.insert(day, stats);
        }
        Ok(result)
    }

    /// The tally's groups as stored.
    struct GroupsOut<'a> {
        groups: &'a BTreeMap<GroupKey, GroupTally>,
        carry_from_us: i64,
    }

    impl Serialize for GroupsOut<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(
                self.groups
                    .iter()
                    .map(|(key, group)| (key, GroupOut::new(key, group, self.carry_from_us))),
            )
        }
    }

    impl Tally {
        /// When the newest decision counted was made.
        fn newest_us(&self) -> Option<i64> {
            self.groups
                .values()
                .filter_map(|g| g.days.values().next_back())
                .map(|d| d.last_seen_us)
                .max()
        }
    }

    impl Serialize for Tally {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let newest_us = self.newest_us().unwrap_or(i64::MIN);
            let mut tally = serializer.serialize_struct("Tally", 2)?;
            tally.serialize_field(
                "groups",
                &GroupsOut {
                    groups: &self.groups,
                    carry_from_us: newest_us.saturating_sub(PAIR_CARRY_OVER_US),
                },
            )?;
            tally.serialize_field("totals", &self.totals)?;
            tally.end()
        }
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
            let mut tally = Tally {
                groups: BTreeMap::new(),
                totals: stored.totals,
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
            let Some(newest_us) = tally.newest_us() else {
                return Ok(tally);
            };
            for (key, pairs) in stored_pairs {
                let Some(group) = tally.groups.get_mut(&key) else {
                    continue;
                };
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

    fn decision(
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
    fn merge_of_two_halves_equals_one_pass() {
        let events: Vec<(i64, Decision)> = (0..40)
            .map(|i| {
                let ip = format!("198.51.{}.{}", i % 5, i);
                let at = T0 + i * 7_200_000_000;
                (
                    at,
                    decision(
                        Reason::New,
                        Action::Greylist,
                        &format!("m{i}.bulk.example.net"),
                        &ip,
                        &format!("s{}@x", i % 3),
                        None,
                    ),
                )
            })
            .collect();
        let mut whole = Fixture::new();
        for (at, d) in &events {
            whole.record(*at, d.clone());
        }
        let mut first = Fixture::new();
        let mut second = Fixture::new();
        for (at, d) in &events[..17] {
            first.record(*at, d.clone());
        }
        // the second run starts from the first's state, as the timer job does
        second.tally = first.tally.clone();
        for (at, d) in &events[17..] {
            second.record(*at, d.clone());
        }
        assert_eq!(whole.tally, second.tally);
        let mut merged = first.tally.clone();
        let mut rest = Fixture::new();
        for (at, d) in &events[17..] {
            rest.record(*at, d.clone());
        }
        merged.merge(rest.tally);
        let (a, b) = whole.tally.span().unwrap();
        let w = whole.tally.evidence_between(a, b);
        let m = merged.evidence_between(a, b);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].1.new, m[0].1.new);
        assert_eq!(w[0].1.distinct_ips, m[0].1.distinct_ips);
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
                 \"h\":[1,1,3],\"f\":40000000000,\"l\":10800000000}}}},\
                 \"p\":{{\"192.0.2.0/24\":[\"{s}\"],\"198.51.100.0/24\":[\"{s}\"]}}}}}},\
                 \"totals\":{{\"{d}\":{{\"entries\":0,\"postgrey_lines\":0,\"greylisted\":4,\
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
        // are no longer those of the addresses kept), and more delays than the cap, the
        // longest among those dropped.
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
        for i in 0..(DELAY_CAP as u64 + 20) {
            f.record(
                T0 + 400 * minute,
                decision(
                    Reason::TripletFound,
                    Action::Pass,
                    "mx.example.com",
                    "10.0.0.1",
                    "s@x",
                    Some(300 + i),
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
        assert!(day0.capped);
        assert_eq!(day0.nets.len(), 3);
        assert_eq!(day0.max_delay_s, Some(300 + DELAY_CAP as u64 + 19));

        // Each of those is in the file only because it cannot be rebuilt.
        let stored = serde_json::to_value(&f.tally).unwrap();
        let group = &stored["groups"]["example.com"];
        let stored_day0 = &group["d"][day_of(T0).to_string()];
        assert_eq!(stored_day0["nt"].as_array().unwrap().len(), 3);
        assert_eq!(stored_day0["mx"], 300 + DELAY_CAP as u64 + 19);
        assert_eq!(stored_day0["i"], serde_json::Value::Null);
        assert_eq!(stored_day0["c"], true);
        assert_eq!(group["h"], serde_json::json!(["@", "mx", "mx2"]));
        let stored_day2 = &group["d"][day_of(later).to_string()];
        assert_eq!(stored_day2["i"], serde_json::json!([0]));
        assert_eq!(stored_day2["h"], serde_json::json!([-2, 1]));
        assert_eq!(stored_day2["nt"], serde_json::Value::Null);
        assert_eq!(stored_day2["mx"], serde_json::Value::Null);

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

    #[test]
    fn a_run_resumed_from_the_state_file_counts_like_one_pass() {
        let events: Vec<(i64, Decision)> = (0..40)
            .map(|i| {
                let ip = format!("198.51.{}.{}", i % 5, i);
                let at = T0 + i * 2_700_000_000;
                (
                    at,
                    decision(
                        Reason::New,
                        Action::Greylist,
                        &format!("m{}.bulk.example.net", i % 7),
                        &ip,
                        &format!("s{}@x", i % 3),
                        None,
                    ),
                )
            })
            .collect();
        let mut whole = Fixture::new();
        for (at, d) in &events {
            whole.record(*at, d.clone());
        }
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
            fill_days(&[(10, 2), (12, 1)]),
            vec![(10, 2), (11, 0), (12, 1)]
        );
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
}
