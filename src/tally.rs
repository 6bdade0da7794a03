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

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayStats {
    #[serde(default)]
    pub new: u64,
    #[serde(default)]
    pub early_retry: u64,
    #[serde(default)]
    pub passed_after_delay: u64,
    /// `triplet found` without `delay=`: a later mail of a known triplet.
    #[serde(default)]
    pub passed_known: u64,
    /// Passed because of `client whitelist` or `client AWL`.
    #[serde(default)]
    pub passed_whitelisted: u64,
    #[serde(default)]
    pub retried_from_other_net: u64,
    /// Up to [`DELAY_CAP`] delays, seconds.
    #[serde(default)]
    pub delays: Vec<u64>,
    #[serde(default)]
    pub max_delay_s: Option<u64>,
    #[serde(default)]
    pub ips: BTreeSet<IpAddr>,
    #[serde(default)]
    pub nets: BTreeSet<IpNet>,
    /// Host name → how many decisions named it.
    #[serde(default)]
    pub hosts: BTreeMap<String, u64>,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    /// A distinct set or the delay list reached its cap.
    #[serde(default)]
    pub capped: bool,
}

/// A greylisted (sender, recipient) pair: from which networks, and when last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairTrack {
    pub nets: Vec<IpNet>,
    pub last_us: i64,
}

/// Everything known about one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupTally {
    pub days: BTreeMap<Day, DayStats>,
    /// Keyed by a stable 64-bit hash of sender and recipient (addresses are not kept).
    #[serde(default)]
    pub pairs: HashMap<u64, PairTrack>,
}

/// Evidence per group over a set of days.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

    #[test]
    fn multi_server_retry_is_counted_once_per_other_network() {
        let mut f = Fixture::new();
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
