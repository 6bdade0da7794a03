//! Keeping the state file within a size limit on a busy server.
//!
//! A server that greylists a million times a week sees tens of thousands of sender groups, most
//! of them once or twice (spam from addresses without a name, each /24 a group of its own), and
//! the big senders bring hundreds of servers a day. Eight weeks of that in day buckets is over
//! a hundred megabytes. What the timer job needs from the state is, in order of worth:
//!
//! 1. every day of the rolling window (and of the digest not yet delivered) in full detail —
//!    the summary and the digest are made of them;
//! 2. the counts of every group and day of the retention, so that any window's `new`,
//!    `early-retry`, passes and retries from another network stay exact;
//! 3. the hosts and addresses of older days;
//! 4. groups that postgrey met too rarely to reach `--min-count` (a sender folded away that
//!    comes back counts from zero; with the weekly timer and a 7-day window its folded days lie
//!    before the next window).
//!
//! [`Tally::compact`] gives up the least worth first, and only while the stored form is over
//! the limit, so a state that fits is never touched and a small server's figures stay exact:
//!
//! 1. sender/recipient pairs greylisted hours before the run are forgotten (a retry from
//!    another network comes within hours); days before the detail window keep their counts,
//!    their median and longest wait, how many distinct addresses, networks and hosts they had,
//!    and one client as an example (a short form of a few dozen bytes);
//! 2. quiet groups below `--min-count` over the whole retention are *folded*: their
//!    greylistings stay in the day totals and in [`Folded`], but no longer under their name;
//! 3. the oldest days are dropped, one at a time, down to the detail window: the retention
//!    shortens (nothing the summary or the digest is made of);
//! 4. days inside the detail window keep [`TRIMMED_DISTINCT`] of each distinct set (and how
//!    many there were) and [`TRIMMED_DELAYS`] delays (evenly spread quantiles, so the median
//!    holds);
//! 5. the least greylisted groups are folded (the longest quiet first among equals) until the
//!    state fits.
//!
//! Every step sets the caps of what it cut ([`super::Caps`]), so a report over those days says
//! its distinct counts are lower bounds or its median an estimate; folding is reported with the
//! number of greylistings it took away and the biggest group it folded.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{Day, DayStats, DroppedSets, GroupTally, Name, SortedMap, SortedSet, Tally};
use crate::group::GroupKey;
use crate::state::stored;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Distinct values a day inside the detail window keeps once that is needed to fit.
pub const TRIMMED_DISTINCT: usize = 16;
/// Delays a day inside the detail window keeps once that is needed to fit.
pub const TRIMMED_DELAYS: usize = 16;

/// What folding took out of the groups on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folded {
    /// Greylistings (`new` and `early-retry`) of folded groups on that day.
    pub greylisted: u64,
    /// The most greylistings a folded group had over the retention when it was folded.
    pub largest: u64,
}

impl Folded {
    pub fn add(&mut self, other: &Folded) {
        self.greylisted = self.greylisted.saturating_add(other.greylisted);
        self.largest = self.largest.max(other.largest);
    }
}

/// What the state may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Most bytes the stored tally may take.
    pub max_bytes: usize,
    /// First day of the detail window: the days the summary and the digest are made of.
    pub detail_from: Day,
    /// Groups greylisted fewer times than this over the retention cannot become candidates.
    pub min_count: u64,
    /// A group with a decision at or after this may still be sending (µs).
    pub quiet_before_us: i64,
    /// Pairs greylisted before this are forgotten first (µs): a retry from another network
    /// comes within hours.
    pub pairs_from_us: i64,
}

/// What [`Tally::compact`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Size of the stored tally before (bytes).
    pub bytes_before: usize,
    /// Size of the stored tally after (bytes).
    pub bytes_after: usize,
    /// Days before the detail window were reduced to counts and one example client.
    pub coarse_days: bool,
    /// Days inside the detail window were trimmed.
    pub trimmed_days: bool,
    /// Sender/recipient pairs forgotten before their time.
    pub forgotten_pairs: u64,
    /// The days before this one were dropped: the retention was shortened.
    pub dropped_before: Option<Day>,
    /// Groups folded.
    pub folded_groups: u64,
    /// Their greylistings.
    pub folded_greylisted: u64,
    /// The most greylistings one of them had.
    pub largest_folded: u64,
}

impl Compaction {
    pub fn changed(&self) -> bool {
        self.coarse_days
            || self.trimmed_days
            || self.folded_groups > 0
            || self.dropped_before.is_some()
            || self.forgotten_pairs > 0
    }
}

/// The stored size of each group (with its key and a comma), kept up to date as groups change,
/// and their sum with the rest of the tally.
struct Sizes {
    of: BTreeMap<GroupKey, usize>,
    fixed: usize,
    total: usize,
}

impl Sizes {
    /// The stored tally's size: no comma after the last group.
    fn bytes(&self) -> usize {
        self.total - usize::from(!self.of.is_empty())
    }

    fn over(&self, limit: &Limit) -> bool {
        self.bytes() > limit.max_bytes
    }

    fn measure(tally: &Tally) -> Sizes {
        let of: BTreeMap<GroupKey, usize> = tally
            .groups
            .iter()
            .map(|(key, group)| (key.clone(), stored::group_size(key, group)))
            .collect();
        let fixed = stored::size_without_groups(tally);
        let total = fixed + of.values().sum::<usize>();
        Sizes { of, fixed, total }
    }

    fn update(&mut self, key: &GroupKey, group: Option<&GroupTally>) {
        let new = group.map_or(0, |g| stored::group_size(key, g));
        let old = match group {
            Some(_) => self.of.insert(key.clone(), new),
            None => self.of.remove(key),
        };
        self.total = self.total - old.unwrap_or(0) + new;
    }

    fn refresh_fixed(&mut self, tally: &Tally) {
        let fixed = stored::size_without_groups(tally);
        self.total = self.total - self.fixed + fixed;
        self.fixed = fixed;
    }
}

fn greylisted(group: &GroupTally) -> u64 {
    group
        .days
        .values()
        .map(|d| d.new.saturating_add(d.early_retry))
        .fold(0, u64::saturating_add)
}

impl DayStats {
    /// Keeps the counts, one delay (the median) with the longest, times to the second, the
    /// distinct counts, and one client as an example: the most frequent host (seen once, as
    /// far as the day now tells) with the first address it came with. What the short stored
    /// form holds. True when something changed.
    fn coarsen(&mut self) -> bool {
        let counts = self.distinct_counts();
        let host = self
            .hosts
            .iter()
            .max_by_key(|&(host, count)| (*count, Reverse(host)))
            .map(|(host, _)| host.clone());
        let address = self
            .clients
            .iter()
            .find(|(_, name)| *name == host)
            .map(|(ip, _)| *ip);
        let ips: SortedSet<_> = address.into_iter().collect();
        let hosts: SortedMap<Name, u64> = host.iter().map(|h| (h.clone(), 1)).collect();
        let clients: SortedSet<_> = address.map(|ip| (ip, host.clone())).into_iter().collect();
        let nets = nets_holding(&self.nets, &ips);
        let mut changed = false;
        if (&ips, &nets, &hosts, &clients) != (&self.ips, &self.nets, &self.hosts, &self.clients) {
            let cut = counts.ips > ips.len() as u64
                || counts.nets > nets.len() as u64
                || counts.hosts > hosts.len() as u64
                || clients.len() < self.clients.len();
            if cut {
                self.dropped = counts;
                self.caps.distinct = true;
            }
            (self.ips, self.nets, self.hosts, self.clients) = (ips, nets, hosts, clients);
            changed = true;
        }
        if self.delays.len() > 1 {
            self.delays = quantiles(&self.delays, 1);
            self.caps.delays = true;
            changed = true;
        }
        for time in [&mut self.first_seen_us, &mut self.last_seen_us] {
            let whole = *time - time.rem_euclid(MICROS_PER_SECOND);
            changed |= whole != *time;
            *time = whole;
        }
        changed |= !self.coarse;
        self.coarse = true;
        changed
    }

    /// How many distinct addresses, networks and hosts the day has (or had, when its sets were
    /// cut before).
    fn distinct_counts(&self) -> DroppedSets {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.dropped.max(DroppedSets {
            ips: count(self.ips.len()),
            nets: count(self.nets.len()),
            hosts: count(self.hosts.len()),
        })
    }

    /// Keeps at most `distinct` hosts (the most frequent), addresses (those that came with them
    /// first) and clients of those, the networks of the addresses kept, the distinct counts the
    /// day had, and at most `delays` delays (quantiles, see [`quantiles`]). True when something
    /// was cut.
    fn trim(&mut self, distinct: usize, delays: usize) -> bool {
        let mut cut = false;
        let counts = self.distinct_counts();
        if self.hosts.len() > distinct {
            let mut by_count: Vec<(&Name, u64)> = self.hosts.iter().map(|(h, n)| (h, *n)).collect();
            by_count.sort_by_key(|&(host, count)| (Reverse(count), host));
            let kept: BTreeSet<Name> = by_count
                .into_iter()
                .take(distinct)
                .map(|(h, _)| h.clone())
                .collect();
            self.hosts.retain(|host, _| kept.contains(host));
            cut = true;
        }
        if self.ips.len() > distinct {
            let named = self
                .clients
                .iter()
                .filter(|(_, name)| name.as_ref().is_some_and(|n| self.hosts.contains_key(n)))
                .map(|(ip, _)| *ip);
            let mut kept = SortedSet::new();
            for ip in named.chain(self.ips.iter().copied()) {
                if kept.len() == distinct {
                    break;
                }
                kept.insert(ip);
            }
            self.ips = kept;
            cut = true;
        }
        let (ips, hosts) = (&self.ips, &self.hosts);
        let before = self.clients.len();
        self.clients.retain(|(ip, name)| {
            ips.contains(ip) && name.as_ref().is_none_or(|n| hosts.contains_key(n))
        });
        if self.clients.len() > distinct {
            self.clients = std::mem::take(&mut self.clients)
                .into_iter()
                .take(distinct)
                .collect();
        }
        cut |= self.clients.len() < before;
        let nets = nets_holding(&self.nets, &self.ips);
        if nets != self.nets {
            self.nets = nets;
            cut = true;
        }
        if cut {
            self.caps.distinct = true;
            self.dropped = counts;
        }
        if self.delays.len() > delays {
            self.delays = quantiles(&self.delays, delays);
            self.caps.delays = true;
            cut = true;
        }
        cut
    }
}

/// The networks of `nets` that hold one of `ips`: the networks of the addresses a day keeps,
/// as they were cut when counted (postgrey's prefixes, whatever they were).
fn nets_holding(nets: &SortedSet<IpNet>, ips: &SortedSet<IpAddr>) -> SortedSet<IpNet> {
    nets.iter()
        .filter(|net| ips.iter().any(|ip| net.contains(ip)))
        .copied()
        .collect()
}

/// `count` values spread evenly over the distribution of `values`: the middle of each of
/// `count` equal slices of them sorted. One value is the lower median.
fn quantiles(values: &[u64], count: usize) -> Vec<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if count == 0 || n == 0 {
        return Vec::new();
    }
    (0..count)
        .filter_map(|j| sorted.get(((2 * j + 1) * n).saturating_sub(1) / (2 * count)))
        .copied()
        .collect()
}

impl Tally {
    /// Greylistings folded into no group on the days in `[first, last]`.
    pub fn folded_between(&self, first: Day, last: Day) -> Folded {
        let mut sum = Folded::default();
        if first <= last {
            for folded in self.folded.range(first..=last).map(|(_, f)| f) {
                sum.add(folded);
            }
        }
        sum
    }

    /// Takes `key` out of the groups; its greylistings stay in [`Tally::folded`].
    fn fold(&mut self, key: &GroupKey, done: &mut Compaction) {
        let Some(group) = self.groups.remove(key) else {
            return;
        };
        let total = greylisted(&group);
        for (day, stats) in &group.days {
            let entry = self.folded.entry(*day).or_default();
            entry.add(&Folded {
                greylisted: stats.new.saturating_add(stats.early_retry),
                largest: total,
            });
        }
        done.folded_groups += 1;
        done.folded_greylisted = done.folded_greylisted.saturating_add(total);
        done.largest_folded = done.largest_folded.max(total);
    }

    /// Folds the groups `eligible` allows, least greylisted and longest quiet first, until the
    /// stored tally fits.
    fn fold_until_fits(
        &mut self,
        sizes: &mut Sizes,
        limit: &Limit,
        eligible: impl Fn(&GroupTally) -> bool,
        done: &mut Compaction,
    ) {
        let mut order: Vec<(u64, i64, GroupKey)> = self
            .groups
            .iter()
            .filter(|(_, group)| eligible(group))
            .map(|(key, group)| (greylisted(group), group.newest_us(), key.clone()))
            .collect();
        order.sort();
        // Folding adds a few bytes of `folded` per day: measured again every so often, and
        // before deciding that the tally fits.
        for (i, (_, _, key)) in order.iter().enumerate() {
            if !sizes.over(limit) {
                sizes.refresh_fixed(self);
                if !sizes.over(limit) {
                    break;
                }
            }
            self.fold(key, done);
            sizes.update(key, None);
            if i % 256 == 255 {
                sizes.refresh_fixed(self);
            }
        }
        sizes.refresh_fixed(self);
    }

    /// Trims the days `which` selects with `trim` in every group, most costly groups first,
    /// until the stored tally fits. True when something was cut.
    fn trim_until_fits(
        &mut self,
        sizes: &mut Sizes,
        limit: &Limit,
        which: impl Fn(Day) -> bool,
        trim: impl Fn(&mut DayStats) -> bool,
    ) -> bool {
        let mut order: Vec<(usize, GroupKey)> =
            sizes.of.iter().map(|(k, s)| (*s, k.clone())).collect();
        order.sort_by_key(|(size, key)| (Reverse(*size), key.clone()));
        let mut cut = false;
        for (_, key) in order {
            if !sizes.over(limit) {
                break;
            }
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            let mut changed = false;
            for (_, stats) in group.days.iter_mut().filter(|(day, _)| which(**day)) {
                changed |= trim(stats);
            }
            if changed {
                cut = true;
                sizes.update(&key, Some(group));
            }
        }
        cut
    }

    /// The stored size if the days before `from` were dropped, measured without dropping them.
    fn bytes_if_kept_from(&self, sizes: &Sizes, from: Day) -> usize {
        let mut total = stored::size_without_groups_from(self, from);
        let mut groups = 0;
        for (key, group) in &self.groups {
            let size = match group.days.keys().next() {
                Some(first) if *first < from => stored::group_size_from(key, group, from),
                _ => sizes.of.get(key).copied().unwrap_or(0),
            };
            total += size;
            groups += usize::from(size > 0);
        }
        total - usize::from(groups > 0)
    }

    /// Drops the oldest days before `limit.detail_from` until the stored tally fits: the
    /// retention shortened. The first day kept, when any was dropped. The fewest days that fit
    /// are found by bisection, each step measured exactly: a day takes addresses and names from
    /// its groups' lists with it, which no estimate of its own entry foresees.
    fn drop_oldest_days_until_fits(&mut self, sizes: &mut Sizes, limit: &Limit) -> Option<Day> {
        if !sizes.over(limit) {
            return None;
        }
        let mut old_days: BTreeSet<Day> = self.totals.keys().copied().collect();
        old_days.extend(self.folded.keys().copied());
        for group in self.groups.values() {
            old_days.extend(group.days.keys().copied());
        }
        let old_days: Vec<Day> = old_days.range(..limit.detail_from).copied().collect();
        // Dropping through old_days[i]: keeping from old_days[i] + 1. Bisect for the least i
        // that fits; dropping them all when none does.
        let fits = |i: usize| self.bytes_if_kept_from(sizes, old_days[i] + 1) <= limit.max_bytes;
        let last = old_days.len().checked_sub(1)?;
        let (mut lo, mut hi) = (0, last);
        if fits(last) {
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if fits(mid) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
        }
        let kept_from = old_days[hi] + 1;
        self.totals.retain(|day, _| *day >= kept_from);
        self.folded.retain(|day, _| *day >= kept_from);
        for (key, group) in &mut self.groups {
            if group
                .days
                .keys()
                .next()
                .is_some_and(|first| *first < kept_from)
            {
                group.days.retain(|day, _| *day >= kept_from);
                sizes.update(key, (!group.days.is_empty()).then_some(&*group));
            }
        }
        self.groups.retain(|_, group| !group.days.is_empty());
        sizes.refresh_fixed(self);
        Some(kept_from)
    }

    /// Brings the stored tally within `limit.max_bytes`, giving up the least worth first (see
    /// the module docs). A tally that fits is left as it is.
    pub fn compact(&mut self, limit: &Limit) -> Compaction {
        self.compact_measured(limit, stored::tally_size(self))
    }

    /// [`Tally::compact`] of a tally whose stored form takes `bytes`, as its caller measured:
    /// one that fits (`bytes <= limit.max_bytes`) is left as it is.
    pub fn compact_measured(&mut self, limit: &Limit, bytes: usize) -> Compaction {
        // Most runs are well within the limit: one pass over the stored form says so, without
        // the size of every group that bringing it within the limit needs.
        if bytes <= limit.max_bytes {
            return Compaction {
                bytes_before: bytes,
                bytes_after: bytes,
                ..Compaction::default()
            };
        }
        // What follows changes groups here and there: none is saved as it was loaded.
        for group in self.groups.values_mut() {
            group.loaded_form.forget();
        }
        let mut sizes = Sizes::measure(self);
        let mut done = Compaction {
            bytes_before: sizes.bytes(),
            ..Compaction::default()
        };
        let detail_from = limit.detail_from;
        if sizes.over(limit) {
            for (key, group) in &mut self.groups {
                let before = group.pairs.len();
                group.forget_pairs_before(limit.pairs_from_us);
                if group.pairs.len() < before {
                    done.forgotten_pairs += (before - group.pairs.len()) as u64;
                    sizes.update(key, Some(group));
                }
            }
        }
        if sizes.over(limit) {
            done.coarse_days = self.trim_until_fits(
                &mut sizes,
                limit,
                |day| day < detail_from,
                DayStats::coarsen,
            );
        }
        if sizes.over(limit) {
            let quiet_and_small = |g: &GroupTally| {
                g.newest_us() < limit.quiet_before_us && greylisted(g) < limit.min_count
            };
            self.fold_until_fits(&mut sizes, limit, quiet_and_small, &mut done);
        }
        done.dropped_before = self.drop_oldest_days_until_fits(&mut sizes, limit);
        if sizes.over(limit) {
            done.trimmed_days = self.trim_until_fits(
                &mut sizes,
                limit,
                |day| day >= detail_from,
                |stats| stats.trim(TRIMMED_DISTINCT, TRIMMED_DELAYS),
            );
        }
        if sizes.over(limit) {
            self.fold_until_fits(&mut sizes, limit, |_| true, &mut done);
        }
        done.bytes_after = sizes.bytes();
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, Decision, Reason};
    use crate::group::{Grouper, network_of};
    use crate::tally::tests::decision;
    use crate::tally::{Caps, MICROS_PER_DAY, day_of};

    /// 2026-11-21T00:00:00Z, a midnight.
    const T0: i64 = 1_795_219_200_000_000;
    const HOUR: i64 = 3_600_000_000;
    const DAY0: Day = 20_778;

    fn greylist(name: &str, ip: &str) -> Decision {
        let sender = format!("{name}@sender.example");
        decision(Reason::New, Action::Greylist, name, ip, &sender, None)
    }

    fn passed(name: &str, ip: &str, delay: u64) -> Decision {
        let sender = format!("{name}@sender.example");
        decision(
            Reason::TripletFound,
            Action::Pass,
            name,
            ip,
            &sender,
            Some(delay),
        )
    }

    fn record(tally: &mut Tally, at: i64, d: Decision) {
        tally.record_decision(&Grouper::builtin(), at, &d);
    }

    fn stored_size(tally: &Tally) -> usize {
        serde_json::to_vec(tally).unwrap().len()
    }

    fn round_trip(tally: &Tally) -> Tally {
        serde_json::from_slice(&serde_json::to_vec(tally).unwrap()).unwrap()
    }

    fn limit(max_bytes: usize, detail_from: Day) -> Limit {
        Limit {
            max_bytes,
            detail_from,
            min_count: 15,
            quiet_before_us: T0 + 9 * MICROS_PER_DAY,
            pairs_from_us: i64::MIN,
        }
    }

    /// What the state file keeps of `t` reads back as `t` (pairs aside: the file carries only
    /// the recent ones).
    fn assert_round_trips(t: &Tally) {
        let back = round_trip(t);
        assert_eq!(back.totals, t.totals);
        assert_eq!(back.folded, t.folded);
        let days = |t: &Tally| -> Vec<(GroupKey, super::SortedMap<Day, DayStats>)> {
            t.groups
                .iter()
                .map(|(k, g)| (k.clone(), g.days.clone()))
                .collect()
        };
        assert_eq!(days(&back), days(t));
    }

    fn key(domain: &str) -> GroupKey {
        GroupKey::Domain(domain.to_owned())
    }

    #[test]
    fn day0_is_the_day_of_t0() {
        assert_eq!(day_of(T0), DAY0);
        assert_eq!(T0 % MICROS_PER_DAY, 0);
    }

    #[test]
    fn quantiles_are_the_middles_of_equal_slices() {
        let values: Vec<u64> = (1..=8).rev().collect();
        assert_eq!(quantiles(&values, 4), vec![1, 3, 5, 7]);
        assert_eq!(quantiles(&[4, 1, 3, 2], 1), vec![2]);
        assert_eq!(quantiles(&[7], 3), vec![7, 7, 7]);
        assert_eq!(quantiles(&[], 3), Vec::<u64>::new());
    }

    /// example.com on day 0: three hosts on three addresses in two /24s, three passes after
    /// 300, 600 and 900 s; on day 5 one more greylisting.
    fn two_days() -> Tally {
        let mut t = Tally::default();
        let at = T0 + HOUR + 123;
        record(&mut t, at, greylist("a.mx.example.com", "192.0.2.1"));
        record(&mut t, at + 1, greylist("b.mx.example.com", "192.0.2.2"));
        record(&mut t, at + 2, greylist("c.mx.example.com", "198.51.100.3"));
        for (i, delay) in [300, 600, 900].into_iter().enumerate() {
            record(
                &mut t,
                at + 3 + i as i64,
                passed("a.mx.example.com", "192.0.2.1", delay),
            );
        }
        record(
            &mut t,
            T0 + 5 * MICROS_PER_DAY,
            greylist("a.mx.example.com", "192.0.2.1"),
        );
        t
    }

    #[test]
    fn a_tally_that_fits_is_left_alone() {
        let mut t = two_days();
        let before = t.clone();
        let done = t.compact(&limit(stored_size(&t), DAY0 + 5));
        assert_eq!(t, before);
        assert!(!done.changed());
        assert_eq!(done.bytes_before, stored_size(&t));
        assert_eq!(done.bytes_after, done.bytes_before);
    }

    #[test]
    fn days_before_the_detail_window_keep_counts_and_distinct_counts() {
        let mut t = two_days();
        let detail = t.groups[&key("example.com")].days[&(DAY0 + 5)].clone();
        let done = t.compact(&limit(stored_size(&t) - 1, DAY0 + 5));
        assert!(done.coarse_days);
        assert_eq!((done.folded_groups, done.dropped_before), (0, None));
        assert!(!done.trimmed_days);
        let group = &t.groups[&key("example.com")];
        let old = &group.days[&DAY0];
        // One example: the most frequent host with its address.
        let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(old.ips, SortedSet::from([ip]));
        assert_eq!(old.nets, SortedSet::from([network_of(ip)]));
        assert_eq!(
            old.hosts,
            SortedMap::from([(Name::from("a.mx.example.com"), 1)])
        );
        assert_eq!(
            old.clients,
            SortedSet::from([(ip, Some(Name::from("a.mx.example.com")))])
        );
        assert_eq!(
            old.dropped,
            DroppedSets {
                ips: 3,
                nets: 2,
                hosts: 3
            }
        );
        assert_eq!((old.new, old.passed_after_delay), (3, 3));
        assert_eq!(
            (old.delays.clone(), old.max_delay_s),
            (vec![600], Some(900))
        );
        // Times to the second.
        assert_eq!(old.first_seen_us, T0 + HOUR);
        assert_eq!(old.last_seen_us, T0 + HOUR);
        assert_eq!(
            old.caps,
            Caps {
                distinct: true,
                delays: true,
                pairs: false
            }
        );
        assert_eq!(group.days[&(DAY0 + 5)], detail);
        // The short form, read back the same.
        let stored = serde_json::to_value(&t).unwrap();
        assert_eq!(
            stored["groups"]["example.com"]["d"][DAY0.to_string()],
            serde_json::json!([3600, 0, 3, 1, 1, 0, 3, 0, 0, 0, 600, 300, 3, 3, 2, 3])
        );
        assert_round_trips(&t);
        assert!(stored_size(&t) < done.bytes_before);
        // A window over both days: exact counts, distinct counts as lower bounds.
        let e = group.evidence(DAY0, DAY0 + 5).unwrap();
        assert_eq!((e.new, e.passed_after_delay), (4, 3));
        assert_eq!(
            (e.distinct_ips, e.distinct_nets, e.distinct_hosts),
            (3, 2, 3)
        );
        assert_eq!((e.median_delay_s, e.max_delay_s), (Some(600), Some(900)));
        assert_eq!(e.hosts, vec![Name::from("a.mx.example.com")]);
        assert!(e.caps.distinct && e.caps.delays);
    }

    #[test]
    fn quiet_groups_below_min_count_are_folded_first() {
        let mut t = Tally::default();
        for i in 0..20 {
            record(&mut t, T0 + i, greylist("mx.busy.example", "192.0.2.1"));
        }
        record(&mut t, T0, greylist("mx.quiet.example", "198.51.100.1"));
        record(
            &mut t,
            T0 + HOUR,
            greylist("mx.quiet.example", "198.51.100.2"),
        );
        // Greylisted on the last day: may come back.
        record(
            &mut t,
            T0 + 9 * MICROS_PER_DAY,
            greylist("mx.active.example", "203.0.113.1"),
        );
        let totals = t.totals.clone();
        let done = t.compact(&limit(stored_size(&t) - 1, DAY0));
        let kept: Vec<&GroupKey> = t.groups.keys().collect();
        assert_eq!(kept, [&key("active.example"), &key("busy.example")]);
        assert_eq!(
            t.folded,
            BTreeMap::from([(
                DAY0,
                Folded {
                    greylisted: 2,
                    largest: 2
                }
            )])
        );
        assert_eq!(t.totals, totals);
        assert_eq!(
            (
                done.folded_groups,
                done.folded_greylisted,
                done.largest_folded
            ),
            (1, 2, 2)
        );
        assert!(!done.coarse_days && !done.trimmed_days);
        assert_eq!(
            t.folded_between(DAY0, DAY0 + 9),
            Folded {
                greylisted: 2,
                largest: 2
            }
        );
        assert_eq!(t.folded_between(DAY0 + 1, DAY0 + 9), Folded::default());
        assert_round_trips(&t);
    }

    #[test]
    fn days_in_the_window_are_trimmed_with_their_distinct_counts_kept() {
        let mut t = Tally::default();
        for i in 0..40u8 {
            let host = format!("o{i}.mx.example.com");
            let ip = format!("10.{i}.0.1");
            for n in 0..=(i % 3) {
                record(
                    &mut t,
                    T0 + i64::from(i) * 1000 + i64::from(n),
                    greylist(&host, &ip),
                );
            }
            record(&mut t, T0 + HOUR, passed(&host, &ip, 300 + u64::from(i)));
        }
        let done = t.compact(&limit(stored_size(&t) - 1, DAY0));
        assert!(done.trimmed_days && !done.coarse_days);
        assert_eq!(done.folded_groups, 0);
        let day = &t.groups[&key("example.com")].days[&DAY0];
        assert_eq!(
            (day.ips.len(), day.hosts.len(), day.nets.len()),
            (16, 16, 16)
        );
        assert_eq!(
            day.dropped,
            DroppedSets {
                ips: 40,
                nets: 40,
                hosts: 40
            }
        );
        // The most frequent hosts: the 13 seen 4 times (i % 3 == 2), then 3 of those seen 3
        // times by name; the addresses they came with.
        let counts: Vec<u64> = day.hosts.values().copied().collect();
        assert_eq!(counts.iter().filter(|&&n| n == 4).count(), 13);
        let threes: Vec<&str> = day
            .hosts
            .iter()
            .filter(|(_, n)| **n == 3)
            .map(|(h, _)| &**h)
            .collect();
        assert_eq!(
            threes,
            [
                "o1.mx.example.com",
                "o10.mx.example.com",
                "o13.mx.example.com"
            ]
        );
        assert!(day.clients.iter().all(|(ip, name)| {
            day.ips.contains(ip) && name.as_ref().is_some_and(|n| day.hosts.contains_key(n))
        }));
        assert_eq!(day.clients.len(), 16);
        assert_eq!(
            day.delays,
            (0..16)
                .map(|j| 300 + (2 * j + 1) * 40 / 32)
                .collect::<Vec<_>>()
        );
        assert_eq!(day.max_delay_s, Some(339));
        let e = t.groups[&key("example.com")].evidence(DAY0, DAY0).unwrap();
        assert_eq!(
            (e.distinct_ips, e.distinct_nets, e.distinct_hosts),
            (40, 40, 40)
        );
        assert_eq!(e.new, 79);
        assert_round_trips(&t);
    }

    #[test]
    fn pairs_greylisted_hours_before_the_run_are_forgotten_first() {
        let mut t = Tally::default();
        let last_day = T0 + 9 * MICROS_PER_DAY;
        record(
            &mut t,
            last_day - 3 * HOUR,
            greylist("a.mx.example.com", "192.0.2.1"),
        );
        record(
            &mut t,
            last_day,
            greylist("b.mx.example.com", "198.51.100.1"),
        );
        let days = t.groups[&key("example.com")].days.clone();
        let mut at_limit = limit(stored_size(&t) - 1, DAY0);
        at_limit.pairs_from_us = last_day - HOUR;
        let done = t.compact(&at_limit);
        assert_eq!(done.forgotten_pairs, 1);
        assert_eq!(
            Compaction {
                forgotten_pairs: 0,
                ..done
            },
            Compaction {
                bytes_before: done.bytes_before,
                bytes_after: done.bytes_after,
                ..Compaction::default()
            }
        );
        let group = &t.groups[&key("example.com")];
        assert_eq!(group.days, days);
        let remembered: Vec<i64> = group.pairs.values().map(|p| p.last_us).collect();
        assert_eq!(remembered, [last_day]);
        assert!(stored_size(&t) < done.bytes_before);
    }

    #[test]
    fn an_old_day_of_one_greylisting_takes_the_short_form_and_a_late_entry_undoes_it() {
        let mut t = Tally::default();
        record(&mut t, T0 + HOUR, greylist("mx.example.com", "192.0.2.1"));
        record(
            &mut t,
            T0 + 5 * MICROS_PER_DAY,
            greylist("mx.example.com", "192.0.2.1"),
        );
        let done = t.compact(&limit(stored_size(&t) - 1, DAY0 + 5));
        assert!(done.coarse_days);
        let stored = serde_json::to_value(&t).unwrap();
        assert_eq!(
            stored["groups"]["example.com"]["d"][DAY0.to_string()],
            serde_json::json!([3600, 0, 1, 1, 1])
        );
        assert_round_trips(&t);
        // A late entry of that day (another host's journal): an ordinary day again, every
        // count kept.
        record(
            &mut t,
            T0 + 2 * HOUR,
            greylist("mx2.example.com", "198.51.100.1"),
        );
        let day = &t.groups[&key("example.com")].days[&DAY0];
        assert!(!day.coarse);
        assert_eq!((day.new, day.ips.len(), day.hosts.len()), (2, 2, 2));
        assert!(
            serde_json::to_value(&t).unwrap()["groups"]["example.com"]["d"][DAY0.to_string()]
                .is_object()
        );
        assert_round_trips(&t);
    }

    #[test]
    fn the_size_without_the_oldest_days_is_measured_exactly() {
        let whole = busy_fortnight();
        let sizes = Sizes::measure(&whole);
        assert_eq!(sizes.bytes(), stored_size(&whole));
        for from in DAY0..=DAY0 + 10 {
            let mut kept = whole.clone();
            kept.totals.retain(|day, _| *day >= from);
            for group in kept.groups.values_mut() {
                group.days.retain(|day, _| *day >= from);
            }
            kept.groups.retain(|_, group| !group.days.is_empty());
            assert_eq!(
                whole.bytes_if_kept_from(&sizes, from),
                stored_size(&kept),
                "{from}"
            );
        }
    }

    /// 30 groups over 10 days, from one-off senders to busy ones; quiet small ones in the
    /// first days; one with 40 servers a day in the last two.
    fn busy_fortnight() -> Tally {
        let mut t = Tally::default();
        for g in 0..5i64 {
            for n in 0..3 {
                let at = T0 + n * MICROS_PER_DAY + g;
                record(
                    &mut t,
                    at,
                    greylist(&format!("mx.q{g}.example"), "192.0.2.7"),
                );
            }
        }
        for day in 8..10i64 {
            for n in 0..40i64 {
                let at = T0 + day * MICROS_PER_DAY + n;
                let (host, ip) = (format!("o{n}.big.example"), format!("10.200.{n}.1"));
                record(&mut t, at, greylist(&host, &ip));
            }
        }
        for g in 0..30i64 {
            for day in 0..10i64 {
                for n in 0..((g * day) % 7 + g / 10) {
                    let at = T0 + day * MICROS_PER_DAY + n * 60_000_001;
                    let host = format!("m{}.g{g}.example", n % 5);
                    let ip = format!("10.{g}.{}.{}", n % 4, n % 50 + 1);
                    record(&mut t, at, greylist(&host, &ip));
                    if n % 2 == 0 {
                        record(&mut t, at + HOUR, passed(&host, &ip, 3600 + n as u64));
                    }
                }
            }
        }
        t
    }

    /// For every day: the greylistings of the groups and of the folded make the day's total.
    fn assert_conserved(t: &Tally) {
        for (day, totals) in &t.totals {
            let in_groups: u64 = t
                .groups
                .values()
                .filter_map(|g| g.days.get(day))
                .map(|d| d.new + d.early_retry)
                .sum();
            let folded = t.folded.get(day).map_or(0, |f| f.greylisted);
            assert_eq!(in_groups + folded, totals.greylisted, "day {day}");
        }
    }

    #[test]
    fn any_limit_holds_and_no_greylisting_is_lost_from_the_days_kept() {
        let whole = busy_fortnight();
        let full = stored_size(&whole);
        assert_conserved(&whole);
        // Each limit goes one step further: coarse old days, then the quiet small groups
        // folded and old days dropped, then the window trimmed and bigger groups folded.
        let steps = [
            (full, (false, false, None, 0)),
            (full * 3 / 4, (true, false, None, 0)),
            (full * 3 / 5, (true, false, Some(DAY0 + 3), 5)),
            (full / 2, (true, false, Some(DAY0 + 6), 5)),
            (full * 2 / 5, (true, true, Some(DAY0 + 8), 5)),
            (full / 4, (true, true, Some(DAY0 + 8), 21)),
            (full / 8, (true, true, Some(DAY0 + 8), 30)),
            (full / 20, (true, true, Some(DAY0 + 8), 34)),
            (300, (true, true, Some(DAY0 + 8), 34)),
        ];
        for (max_bytes, expected) in steps {
            let mut t = whole.clone();
            let done = t.compact(&limit(max_bytes, DAY0 + 8));
            let taken = (
                done.coarse_days,
                done.trimmed_days,
                done.dropped_before,
                done.folded_groups,
            );
            assert_eq!(taken, expected, "{max_bytes}");
            assert_eq!(done.bytes_after, stored_size(&t));
            if t.groups.is_empty() {
                // What cannot go: the totals of the detail window.
                assert_eq!(
                    t.totals.keys().collect::<Vec<_>>(),
                    [&(DAY0 + 8), &(DAY0 + 9)]
                );
            } else {
                assert!(
                    stored_size(&t) <= max_bytes,
                    "{max_bytes}: {}",
                    stored_size(&t)
                );
            }
            assert_round_trips(&t);
            assert_conserved(&t);
            let first_kept = done.dropped_before.unwrap_or(DAY0);
            let kept: BTreeMap<Day, _> = whole
                .totals
                .range(first_kept..)
                .map(|(d, t)| (*d, *t))
                .collect();
            assert_eq!(t.totals, kept);
        }
    }
}
