//! Evidence per sender group, in UTC day buckets.
//!
//! Greylisting hurts a sender that retries from a different network each time: postgrey keys its
//! triplets by client network (/24 with `--lookup-by-subnet`, or its `--ipv4cidr`/`--ipv6cidr`,
//! see [`Network`]), so a retry from another network is `new` again. The tally therefore
//! records, per group and day, how often postgrey said `new`, `early-retry` and `triplet found`
//! (with the delay the mail waited, and the sum of the delays), which hosts, addresses and
//! networks were seen, and how often a (sender, recipient) pair — the sender as postgrey keys
//! it — was greylisted again from another network of the same group (`retried_from_other_net`,
//! the multi-server signature).
//!
//! Day buckets let one representation serve both an ad-hoc report and the timer job's state
//! file: evidence over any window inside the retention is the merge of its days. Distinct sets,
//! the delays kept for the median and the pairs remembered are capped per day (per group for
//! pairs) to keep the state bounded; [`Evidence::caps`] says which cap was hit. A window merges
//! its days without capping again: its sets are the unions of the days' sets.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::net::IpAddr;

use ipnet::IpNet;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::event::{Action, ClientName, Decision, Event, Reason};
use crate::group::{GroupKey, Grouper};
use crate::postgrey::Network;
use crate::source::{Entry, Origin, Share};
use crate::state::stored::LoadedForm;

mod compact;
mod mx;
mod pairs;
mod sorted;
pub use compact::{Compaction, Folded, Limit, TRIMMED_DELAYS, TRIMMED_DISTINCT};
pub use mx::{MX_BITS, MxCounts, MxDefaults, MxHosts, MxTotals};
pub use pairs::{PAIR_CAP, PAIR_MEMORY_US, PairTrack, Pairs, PrehashedHasher};
pub use sorted::{SortedMap, SortedSet};

/// Days since 1970-01-01, UTC.
pub type Day = i64;

pub const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// Most distinct addresses, networks or host names kept per group and day.
pub const DISTINCT_CAP: usize = 256;
/// Most individual delays kept per group and day (for the median).
pub const DELAY_CAP: usize = 512;
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
    /// Mails that passed after greylisting (`triplet found` with `delay=`), of every group.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delayed: u64,
    /// The sum of their `delay=`: what greylisting cost the senders, in seconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_total_s: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Totals {
    pub fn add(&mut self, other: &Totals) {
        self.entries += other.entries;
        self.postgrey_lines += other.postgrey_lines;
        self.decisions += other.decisions;
        self.greylisted += other.greylisted;
        self.untrusted_skipped += other.untrusted_skipped;
        self.malformed += other.malformed;
        self.delayed += other.delayed;
        self.delay_total_s = self.delay_total_s.saturating_add(other.delay_total_s);
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
pub type Client = (IpAddr, Option<Name>);

/// A host name as a day keeps it: shared between the day's `hosts` and `clients`, and by a
/// loaded state between all days of a group, instead of a copy in each.
pub type Name = std::sync::Arc<str>;

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
    /// Greylisted again at another MX host, from a network the pair was greylisted from
    /// before (see `tally::mx`): what a database shared by the MX hosts would have saved.
    pub retried_at_other_mx: u64,
    /// Greylistings (`new` + `early_retry`) per MX host; empty when no host was logged.
    pub mx: MxCounts,
    /// The day's delays in seconds: all of them up to [`DELAY_CAP`], beyond that a uniform
    /// sample of that many (reservoir sampling, see `DayStats::add_delay`).
    pub delays: Vec<u64>,
    /// The longest delay, also of those beyond the cap; `None` only when there was none.
    pub max_delay_s: Option<u64>,
    /// The sum of all the day's delays, also of those beyond the cap.
    pub delay_total_s: u64,
    pub ips: SortedSet<IpAddr>,
    pub nets: SortedSet<IpNet>,
    /// Host name → how many decisions named it.
    pub hosts: SortedMap<Name, u64>,
    /// Which name came with which address. Only pairs whose address is in `ips` and whose
    /// name is in `hosts`, so that the state file can refer to both by position.
    pub clients: SortedSet<Client>,
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

/// Everything known about one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupTally {
    /// Day buckets in a sorted vector: most groups have a few days, and a `BTreeMap` node of
    /// eleven buckets per group was a third of a busy week's memory.
    pub days: SortedMap<Day, DayStats>,
    /// The pairs greylisted lately, for `retried_from_other_net`.
    pub pairs: Pairs,
    /// The group's text in the state file it was loaded from, while the group is as it was
    /// loaded: saving copies it (see [`LoadedForm`]). Whatever changes a group forgets it.
    pub loaded_form: LoadedForm,
}

/// Evidence per group over a set of days.
///
/// Serialises to the compact form the state file holds (`state::stored`), which keeps
/// only the pairs of the last day ([`PAIR_CARRY_OVER_US`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub groups: BTreeMap<GroupKey, GroupTally>,
    pub totals: BTreeMap<Day, Totals>,
    /// Greylistings of groups folded to keep the state file within its limit (see
    /// [`Tally::compact`]): still in `totals`, under no group.
    pub folded: BTreeMap<Day, Folded>,
    /// The networks postgrey keyed its triplets by when this tally was counted: the networks
    /// of the days' sets, of the pairs and of unresolved groups. See [`Tally::adopt_network`].
    pub network: Network,
    /// Every MX host seen (see `tally::mx`).
    pub mx_hosts: MxHosts,
    /// What each MX host logged, per day.
    pub mx_totals: BTreeMap<Day, BTreeMap<String, MxTotals>>,
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
    /// The sum of the delays of the mails that passed after greylisting (seconds).
    pub delay_total_s: u64,
    pub distinct_ips: u64,
    pub distinct_nets: u64,
    pub distinct_hosts: u64,
    pub retried_from_other_net: u64,
    pub retried_at_other_mx: u64,
    /// Greylistings per MX host.
    pub mx: MxCounts,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    /// Every host seen, most frequent first (ties by name); shared with the days it was seen on.
    pub hosts: Vec<Name>,
    /// Every address seen.
    pub ips: Vec<IpAddr>,
    /// Every client seen: the name logged with an address (`None` for `unknown`), by address.
    pub clients: Vec<(Option<Name>, IpAddr)>,
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

/// The group of `decision`'s client (see [`Grouper::key`]), with its hash.
fn group_of(grouper: &Grouper, decision: &Decision) -> Option<HashedKey> {
    grouper
        .key(decision.client_name.as_ref(), decision.client_address)
        .map(HashedKey::new)
}

/// [`group_of`] a decision just parsed from a log line (see [`Grouper::key_of_logged`]).
fn group_of_logged(grouper: &Grouper, decision: &Decision) -> Option<HashedKey> {
    grouper
        .key_of_logged(decision.client_name.as_ref(), decision.client_address)
        .map(HashedKey::new)
}

/// The pair whose greylisting `decision` is, when it is the first of a triplet (`new`) from a
/// known address: the only decisions the pair memory follows.
fn pair_of(decision: &Decision, sender: Option<&str>, recipient: Option<&str>) -> Option<u64> {
    match (&decision.action, &decision.reason, decision.client_address) {
        (Action::Greylist, Some(Reason::New), Some(_)) => Some(pair_hash(sender, recipient)),
        _ => None,
    }
}

/// What counting an entry takes that depends on the entry alone: its message parsed, and for
/// a decision its group and pair. Making it is most of the cost of an entry and needs no
/// tally, so a source's reading thread makes it while the tally counts the entries before.
// Made and kept in a batch's vector: boxing the decision would add an allocation per entry.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Prepared {
    /// journald does not vouch that postgrey wrote it: never parsed, never counted.
    Untrusted,
    /// A postgrey line that did not parse.
    Malformed,
    /// A postgrey line of another kind (maintenance, warnings, the auto-whitelist).
    Other,
    Decision(GroupedDecision),
    /// Left to counting (see [`Share`]).
    Later,
}

/// A decision with its group key (`None`: neither a name nor an address to group by) and the
/// hash of the pair it greylisted (see [`pair_of`]).
#[derive(Debug, PartialEq, Eq)]
pub struct GroupedDecision {
    decision: Decision,
    group: Option<HashedKey>,
    pair: Option<u64>,
}

/// A group key with its hash, worked out where the entry is prepared (the reading thread), so
/// that counting finds the group without hashing its name again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedKey {
    hash: u64,
    key: GroupKey,
}

/// Seeded once per process, like std's maps: client names come from DNS, which a sender
/// controls, so the hash must not be one they can aim collisions at.
static GROUP_HASHER: std::sync::LazyLock<std::hash::RandomState> =
    std::sync::LazyLock::new(std::hash::RandomState::new);

impl HashedKey {
    fn new(key: GroupKey) -> HashedKey {
        HashedKey {
            hash: GROUP_HASHER.hash_one(&key),
            key,
        }
    }
}

impl std::hash::Hash for HashedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Prepared {
    /// What counting `entry` takes that depends on it alone; with [`Share::Part`], nothing:
    /// counting prepares it.
    pub fn of(grouper: &Grouper, entry: &Entry<'_>, share: Share) -> Prepared {
        if entry.origin == Origin::Untrusted {
            return Prepared::Untrusted;
        }
        if share == Share::Part {
            return Prepared::Later;
        }
        match crate::event::parse_apart(entry.message) {
            Ok((Event::Decision(decision), details)) => {
                let group = group_of_logged(grouper, &decision);
                // Counting reads neither the queue id nor the addresses once the pair is
                // hashed: not kept while the entry waits to be counted.
                let pair = pair_of(
                    &decision,
                    details.sender.as_deref(),
                    details.recipient.as_deref(),
                );
                Prepared::Decision(GroupedDecision {
                    decision,
                    group,
                    pair,
                })
            }
            Ok(_) => Prepared::Other,
            Err(_) => Prepared::Malformed,
        }
    }
}

fn pair_hash(sender: Option<&str>, recipient: Option<&str>) -> u64 {
    // postgrey keys a triplet by `lc "NETWORK/SENDER/RECIPIENT"` with the sender normalised
    // (BATV tag and `+extension` removed, numbers standing alone replaced): senders that
    // differ only there are one pair, as they are one triplet to postgrey.
    // FNV is stable across builds, unlike std's RandomState: the hashes live in the state file.
    // FNV takes one byte at a time: lowercasing on the way equals hashing the lowercased text.
    let mut hasher = fnv::FnvHasher::default();
    crate::postgrey::triplet_sender_into(sender.unwrap_or(""), &mut |byte| {
        hasher.write_u8(byte.to_ascii_lowercase())
    });
    hasher.write_u8(0);
    for byte in recipient.unwrap_or("").bytes() {
        hasher.write_u8(byte.to_ascii_lowercase());
    }
    hasher.finish()
}

/// Inserts `value` unless the set is full; whether the set holds it afterwards.
fn insert_capped<T: Ord>(set: &mut SortedSet<T>, value: T, capped: &mut bool) -> bool {
    if set.len() < DISTINCT_CAP {
        set.insert(value);
        true
    } else if set.contains(&value) {
        true
    } else {
        *capped = true;
        false
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

    fn see_client(
        &mut self,
        realtime_us: i64,
        name: Option<&ClientName>,
        address: Option<IpAddr>,
        network: Network,
    ) {
        self.first_seen_us = self.first_seen_us.min(realtime_us);
        self.last_seen_us = self.last_seen_us.max(realtime_us);
        let capped = &mut self.caps.distinct;
        let mut address_kept = false;
        if let Some(address) = address {
            address_kept = insert_capped(&mut self.ips, address, capped);
            insert_capped(&mut self.nets, network.of(address), capped);
        }
        let host = name.and_then(ClientName::host);
        let mut host_kept = true;
        if let Some(host) = host {
            if let Some(count) = self.hosts.get_mut(host) {
                *count += 1;
            } else if self.hosts.len() < DISTINCT_CAP {
                self.hosts.insert(Name::from(host), 1);
            } else {
                *capped = true;
                host_kept = false;
            }
        }
        // Only pairs of a kept address and a kept name (see `DayStats::clients`).
        let Some(address) = address.filter(|_| address_kept && host_kept) else {
            return;
        };
        // Looked up without allocating: most decisions come from a client seen before.
        let known = self
            .clients
            .tail_from(&(address, None))
            .iter()
            .take_while(|(a, _)| *a == address)
            .any(|(_, name)| name.as_deref() == host);
        if !known {
            // The day's own copy of the name, kept in `hosts` just above.
            let name = host.and_then(|host| self.hosts.get_key_value(host).map(|(n, _)| n.clone()));
            insert_capped(&mut self.clients, (address, name), capped);
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
        self.delay_total_s = self.delay_total_s.saturating_add(delay_s);
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
    retried_at_other_mx: u64,
    mx: MxCounts,
    delays: Vec<(u64, f64)>,
    max_delay_s: Option<u64>,
    delay_total_s: u64,
    /// The days' sets one after the other: each day's is sorted, so a stable sort merges
    /// them as runs, cheaper than building a tree of a big sender's thousands of hosts.
    ips: Vec<IpAddr>,
    nets: Vec<IpNet>,
    hosts: Vec<(&'a Name, u64)>,
    clients: Vec<&'a Client>,
    first_seen_us: i64,
    last_seen_us: i64,
    caps: Caps,
    dropped: DroppedSets,
}

impl<'a> WindowStats<'a> {
    /// Room for the sets and delays of `days`, so that adding them does not grow the vectors
    /// step by step (which cost a report of thousands of groups more than merging them).
    fn for_days<'d>(days: impl Iterator<Item = &'d DayStats> + Clone) -> Self {
        let total = |size: fn(&DayStats) -> usize| days.clone().map(size).sum::<usize>();
        WindowStats {
            delays: Vec::with_capacity(total(|d| d.delays.len())),
            ips: Vec::with_capacity(total(|d| d.ips.len())),
            nets: Vec::with_capacity(total(|d| d.nets.len())),
            hosts: Vec::with_capacity(total(|d| d.hosts.len())),
            clients: Vec::with_capacity(total(|d| d.clients.len())),
            ..WindowStats::new()
        }
    }

    fn new() -> Self {
        WindowStats {
            new: 0,
            early_retry: 0,
            passed_after_delay: 0,
            passed_known: 0,
            passed_whitelisted: 0,
            retried_from_other_net: 0,
            retried_at_other_mx: 0,
            mx: MxCounts::default(),
            delays: Vec::new(),
            max_delay_s: None,
            delay_total_s: 0,
            ips: Vec::new(),
            nets: Vec::new(),
            hosts: Vec::new(),
            clients: Vec::new(),
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
        self.retried_at_other_mx += day.retried_at_other_mx;
        self.mx.add_all(&day.mx);
        if !day.delays.is_empty() {
            // Exactly 1 for a day whose delays were all kept.
            let weight = day.passed_after_delay.max(day.delays.len() as u64) as f64
                / day.delays.len() as f64;
            self.delays.extend(day.delays.iter().map(|&d| (d, weight)));
        }
        self.max_delay_s = self.max_delay_s.max(day.max_delay_s);
        self.delay_total_s = self.delay_total_s.saturating_add(day.delay_total_s);
        self.ips.extend(day.ips.iter().copied());
        self.nets.extend(day.nets.iter().copied());
        self.hosts
            .extend(day.hosts.iter().map(|(host, count)| (host, *count)));
        self.clients.extend(day.clients.iter());
        self.first_seen_us = self.first_seen_us.min(day.first_seen_us);
        self.last_seen_us = self.last_seen_us.max(day.last_seen_us);
        self.caps = self.caps.union(day.caps);
        self.dropped = self.dropped.max(day.dropped);
    }

    fn evidence(mut self, per_day: Vec<(Day, u64)>) -> Evidence {
        self.ips.sort();
        self.ips.dedup();
        self.nets.sort();
        self.nets.dedup();
        self.clients.sort();
        self.clients.dedup();
        let mut hosts = self.hosts;
        hosts.sort_by(|a, b| a.0.cmp(b.0));
        hosts.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += later.1;
            }
            same
        });
        hosts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        Evidence {
            new: self.new,
            early_retry: self.early_retry,
            passed_after_delay: self.passed_after_delay,
            passed_known: self.passed_known,
            passed_whitelisted: self.passed_whitelisted,
            median_delay_s: weighted_median(&mut self.delays),
            max_delay_s: self.max_delay_s,
            delay_total_s: self.delay_total_s,
            distinct_ips: (self.ips.len() as u64).max(self.dropped.ips),
            distinct_nets: (self.nets.len() as u64).max(self.dropped.nets),
            distinct_hosts: (hosts.len() as u64).max(self.dropped.hosts),
            retried_from_other_net: self.retried_from_other_net,
            retried_at_other_mx: self.retried_at_other_mx,
            mx: self.mx,
            first_seen_us: self.first_seen_us,
            last_seen_us: self.last_seen_us,
            hosts: hosts.into_iter().map(|(h, _)| Name::clone(h)).collect(),
            ips: self.ips,
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
    pub(crate) fn forget_pairs_before(&mut self, cutoff_us: i64) {
        let before = self.pairs.len();
        self.pairs.retain_since(cutoff_us);
        if self.pairs.len() != before {
            self.loaded_form.forget();
        }
    }

    /// Evidence over the days in `[first, last]`, `None` when the group has none there.
    /// `per_day` lists every day of `[first, last]` (see [`Evidence::per_day`]).
    pub fn evidence(&self, first: Day, last: Day) -> Option<Evidence> {
        if first > last {
            return None;
        }
        let mut window = WindowStats::for_days(self.days.range(first..=last).map(|(_, s)| s));
        let mut per_day = Vec::with_capacity(self.days.len());
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
    // Both in order: one walk, no map.
    let mut given = days.into_iter().peekable();
    (first..=last)
        .map(|d| (d, given.next_if(|&(day, _)| day == d).map_or(0, |(_, n)| n)))
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
    /// Adds what a [`Counter`] counted of `day`.
    fn add_day_totals(&mut self, day: Day, totals: &Totals, mx: Vec<(String, MxTotals)>) {
        self.totals.entry(day).or_default().add(totals);
        if mx.is_empty() {
            return;
        }
        let day = self.mx_totals.entry(day).or_default();
        for (host, add) in mx {
            match day.get_mut(&host) {
                Some(totals) => totals.add(&add),
                None => {
                    day.insert(host, add);
                }
            }
        }
    }

    /// Takes one entry through parse → group → tally.
    pub fn ingest(&mut self, grouper: &Grouper, entry: &Entry<'_>) {
        self.counter()
            .count(grouper, entry, &Prepared::of(grouper, entry, Share::All));
    }

    /// Counts entries into this tally until the counter is dropped.
    pub fn counter(&mut self) -> Counter<'_> {
        Counter {
            tally: self,
            staged: Vec::new(),
            staged_at: HashMap::default(),
            today: None,
        }
    }

    /// Records one policy decision at `realtime_us`, of no known MX host.
    pub fn record_decision(&mut self, grouper: &Grouper, realtime_us: i64, decision: &Decision) {
        self.record_decision_at(grouper, realtime_us, None, decision);
    }

    /// Records one policy decision at `realtime_us`, logged by the MX host `host`.
    pub fn record_decision_at(
        &mut self,
        grouper: &Grouper,
        realtime_us: i64,
        host: Option<&str>,
        decision: &Decision,
    ) {
        let group = group_of(grouper, decision);
        let pair = pair_of(
            decision,
            decision.sender.as_deref(),
            decision.recipient.as_deref(),
        );
        self.counter()
            .record_grouped(grouper, realtime_us, host, decision, group.as_ref(), pair);
    }

    /// Counts from now on with postgrey's networks cut as `network` says (its settings changed
    /// since this tally was counted, e.g. `--ipv4cidr=32` added). The days' networks are cut
    /// again from their addresses, so that a window's `distinct_nets` counts the new networks
    /// (a day whose addresses were capped keeps the lower bound it had). What cannot be
    /// recounted stays as it was counted: `retried_from_other_net` of the days before, and
    /// the groups of unresolved clients already keyed by the old networks (they age out with
    /// the days). The pairs remembered are dropped: they are keyed by the old networks, and a
    /// retry compared across the change would be counted wrongly.
    pub fn adopt_network(&mut self, network: Network) {
        self.network = network;
        for group in self.groups.values_mut() {
            group.loaded_form.forget();
            group.pairs = Pairs::default();
            for day in group.days.values_mut() {
                day.nets = day.ips.iter().map(|ip| network.of(*ip)).collect();
            }
        }
    }

    /// Drops day buckets before `first_kept` and pairs not seen since `pair_cutoff_us`.
    pub fn prune(&mut self, first_kept: Day, pair_cutoff_us: i64) {
        self.totals.retain(|day, _| *day >= first_kept);
        self.folded.retain(|day, _| *day >= first_kept);
        self.mx_totals.retain(|day, _| *day >= first_kept);
        for group in self.groups.values_mut() {
            let days = group.days.len();
            group.days.retain(|day, _| *day >= first_kept);
            if group.days.len() != days {
                group.loaded_form.forget();
            }
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
        self.evidence_between_into(first, last, &|key, evidence| (key.clone(), evidence))
    }

    /// [`Tally::evidence_between`], each group's evidence handed to `finding` and what it makes
    /// returned, in the order of the groups. A report of thousands of groups merges their days
    /// on every core.
    pub fn evidence_between_into<T: Send>(
        &self,
        first: Day,
        last: Day,
        finding: &(dyn Fn(&GroupKey, Evidence) -> T + Sync),
    ) -> Vec<T> {
        /// Fewer groups than this are not worth handing to another core.
        const GROUPS_PER_TASK: usize = 64;
        let Some((known_first, known_last)) = self.span() else {
            return Vec::new();
        };
        let (first, last) = (first.max(known_first), last.min(known_last));
        let groups: Vec<(&GroupKey, &GroupTally)> = self.groups.iter().collect();
        groups
            .par_iter()
            .with_min_len(GROUPS_PER_TASK)
            .filter_map(|(key, g)| g.evidence(first, last).map(|e| finding(key, e)))
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

/// Counts entries into a [`Tally`]. A busy week has thousands of groups, and finding one in the
/// tally's ordered map compares names a dozen times for every entry: a counter moves each
/// group it counts into a hash map on first sight and the groups back when it is dropped, so
/// that the tally is whole again (also when counting stopped on an error).
pub struct Counter<'t> {
    tally: &'t mut Tally,
    staged: Vec<(GroupKey, GroupTally)>,
    /// Where in `staged` each group is.
    staged_at: HashMap<HashedKey, usize, BuildHasherDefault<PrehashedHasher>>,
    /// The totals of the day counted last, added to the tally's when an entry of another day
    /// comes and when the groups go back: a log is in time order, and a lookup in the tally's
    /// maps for each of an entry's figures cost as much as counting it into its group.
    today: Option<DayTotals>,
}

/// What a [`Counter`] counted of one day and not yet added to the tally.
struct DayTotals {
    day: Day,
    totals: Totals,
    /// Per MX host: a few of them.
    mx: Vec<(String, MxTotals)>,
}

impl Drop for Counter<'_> {
    fn drop(&mut self) {
        self.unstage();
    }
}

impl Counter<'_> {
    /// Counts `entry`, of which `prepared` is what [`Prepared::of`] made.
    pub fn count(&mut self, grouper: &Grouper, entry: &Entry<'_>, prepared: &Prepared) {
        if *prepared == Prepared::Later {
            return self.count(grouper, entry, &Prepared::of(grouper, entry, Share::All));
        }
        let at = entry.realtime_us;
        self.totals_of(at).entries += 1;
        let host = mx::host_text(entry.host);
        if let Some(host) = &host {
            let entry = MxTotals {
                entries: 1,
                greylisted: 0,
            };
            self.add_mx_totals(at, host, entry);
        }
        if *prepared == Prepared::Untrusted {
            self.totals_of(at).untrusted_skipped += 1;
            return;
        }
        self.totals_of(at).postgrey_lines += 1;
        match prepared {
            Prepared::Decision(grouped) => self.record_grouped(
                grouper,
                at,
                host.as_deref(),
                &grouped.decision,
                grouped.group.as_ref(),
                grouped.pair,
            ),
            Prepared::Malformed => self.totals_of(at).malformed += 1,
            Prepared::Untrusted | Prepared::Other | Prepared::Later => {}
        }
    }

    /// [`Tally::record_decision_at`], with the decision's group key and pair hash (see
    /// [`pair_of`]) worked out already.
    fn record_grouped(
        &mut self,
        grouper: &Grouper,
        realtime_us: i64,
        host: Option<&str>,
        decision: &Decision,
        group: Option<&HashedKey>,
        pair: Option<u64>,
    ) {
        let network = grouper.network();
        if network != self.tally.network {
            self.unstage();
            self.tally.adopt_network(network);
        }
        self.totals_of(realtime_us).decisions += 1;
        let greylisted = decision.action == Action::Greylist;
        if greylisted {
            self.totals_of(realtime_us).greylisted += 1;
        }
        let (mx_bit, mx_host) = match host {
            Some(host) if greylisted => {
                let greylisting = MxTotals {
                    entries: 0,
                    greylisted: 1,
                };
                self.add_mx_totals(realtime_us, host, greylisting);
                let (bit, name) = self.tally.mx_hosts.intern(host);
                (bit, Some(name))
            }
            _ => (0, None),
        };
        let Some(key) = group else {
            return;
        };
        let group = self.group(key);
        let mut retried_at_other_mx = false;
        let retried_elsewhere = match (pair, decision.client_address) {
            (Some(pair), Some(address)) => {
                let net = network.of(address);
                let greylisting = group.pairs.greylisted(pair, net, realtime_us, mx_bit);
                retried_at_other_mx = greylisting.retried_at_other_mx;
                greylisting.retried_from_other_net
            }
            _ => Some(false),
        };
        let day = group
            .days
            .get_or_insert_with(day_of(realtime_us), || DayStats::new_at(realtime_us));
        day.coarse = false;
        day.see_client(
            realtime_us,
            decision.client_name.as_ref(),
            decision.client_address,
            network,
        );
        match retried_elsewhere {
            Some(true) => day.retried_from_other_net += 1,
            Some(false) => {}
            None => day.caps.pairs = true,
        }
        if retried_at_other_mx {
            day.retried_at_other_mx += 1;
        }
        if let Some(host) = &mx_host {
            day.mx.add(host, 1);
        }
        match (&decision.action, &decision.reason) {
            (Action::Greylist, Some(Reason::EarlyRetry { .. })) => day.early_retry += 1,
            (Action::Greylist, _) => day.new += 1,
            (Action::Pass, Some(Reason::TripletFound)) => match decision.delay_s {
                Some(delay) => {
                    day.add_delay(delay);
                    let totals = self.totals_of(realtime_us);
                    totals.delayed += 1;
                    totals.delay_total_s = totals.delay_total_s.saturating_add(delay);
                }
                None => day.passed_known += 1,
            },
            (Action::Pass, Some(Reason::ClientWhitelist | Reason::ClientAwl)) => {
                day.passed_whitelisted += 1
            }
            _ => {}
        }
    }

    /// The group `key`, staged.
    fn group(&mut self, hashed: &HashedKey) -> &mut GroupTally {
        let at = match self.staged_at.get(hashed) {
            Some(&at) => at,
            None => {
                let mut group = self.tally.groups.remove(&hashed.key).unwrap_or_default();
                // Staged to be counted: no longer as it was loaded.
                group.loaded_form.forget();
                self.staged.push((hashed.key.clone(), group));
                self.staged_at.insert(hashed.clone(), self.staged.len() - 1);
                self.staged.len() - 1
            }
        };
        &mut self.staged[at].1
    }

    /// The totals of the day of `realtime_us`.
    fn totals_of(&mut self, realtime_us: i64) -> &mut Totals {
        &mut self.today_at(realtime_us).totals
    }

    /// Adds to what the MX host `host` logged on the day of `realtime_us`.
    fn add_mx_totals(&mut self, realtime_us: i64, host: &str, add: MxTotals) {
        let mx = &mut self.today_at(realtime_us).mx;
        match mx.iter_mut().find(|(name, _)| name == host) {
            Some((_, totals)) => totals.add(&add),
            None => mx.push((host.to_owned(), add)),
        }
    }

    fn today_at(&mut self, realtime_us: i64) -> &mut DayTotals {
        let day = day_of(realtime_us);
        if self.today.as_ref().is_some_and(|today| today.day != day) {
            self.add_today();
        }
        self.today.get_or_insert_with(|| DayTotals {
            day,
            totals: Totals::default(),
            mx: Vec::new(),
        })
    }

    fn add_today(&mut self) {
        if let Some(DayTotals { day, totals, mx }) = self.today.take() {
            self.tally.add_day_totals(day, &totals, mx);
        }
    }

    /// Moves the staged groups and the day's totals back into the tally.
    fn unstage(&mut self) {
        self.add_today();
        self.staged_at.clear();
        if self.tally.groups.is_empty() {
            // Sorted first and built bottom-up: a report's thousands of groups inserted one by
            // one cost a search and a node split each, all after the last entry was read.
            self.staged.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            self.tally.groups = BTreeMap::from_iter(self.staged.drain(..));
        } else {
            self.tally.groups.extend(self.staged.drain(..));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

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
        assert_eq!(&*e.hosts[0], "c.smtp.example.com");
        assert_eq!(f.tally.totals_between(*d, *d).greylisted, 4);
    }

    #[test]
    fn an_entry_left_to_counting_is_counted_as_one_prepared_before() {
        let grouper = Grouper::builtin();
        let messages: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    "action=greylist, reason=new, client_name=out{}.mail.example.co.uk, \
                     client_address=192.0.{}.7, sender=news{i}@example.co.uk, recipient=bob@example.org",
                    i % 7,
                    i % 5
                )
            })
            .chain(["action=greylist, reason=new, client_address=198.51.100.9".to_owned()])
            .collect();
        let count = |share_of: &dyn Fn(usize) -> Share| {
            let mut tally = Tally::default();
            let mut counter = tally.counter();
            for (i, message) in messages.iter().enumerate() {
                let entry = Entry {
                    realtime_us: T0 + i as i64 * 60_000_000,
                    message: message.as_bytes(),
                    origin: Origin::Unknown,
                    host: Some(b"mx1"),
                    cursor: None,
                };
                counter.count(
                    &grouper,
                    &entry,
                    &Prepared::of(&grouper, &entry, share_of(i)),
                );
            }
            drop(counter);
            tally
        };
        let worked_out = count(&|_| Share::All);
        let left = count(&|i| if i % 3 == 0 { Share::Part } else { Share::All });
        assert_eq!(left, worked_out);
        let keys: Vec<String> = worked_out.groups.keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["example.co.uk", "198.51.100.0/24"]);
        let day = &worked_out.groups[&key("example.co.uk")].days[&day_of(T0)];
        assert_eq!((day.new, day.ips.len(), day.hosts.len()), (40, 5, 7));
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
                 \"untrusted_skipped\":0,\"malformed\":0,\"delayed\":1,\"delay_total_s\":3600}}}}}}",
                s = format_args!("{:016x}", pair_hash(Some("s@x"), Some("bob@example.org"))),
            )
        );
    }

    /// postgrey run with `--ipv4cidr=32`.
    const HOST_V4: Network = Network {
        ipv4_prefix: 32,
        ipv6_prefix: 64,
    };

    #[test]
    fn networks_are_postgreys_own() {
        let mut f = Fixture::new();
        f.grouper = Grouper::builtin().with_network(HOST_V4);
        multi_server_day(&mut f);
        // The retry from 192.0.2.2 is another network for a /32 postgrey: greylisted again.
        let g = &f.tally.groups[&key("example.com")];
        let d = day_of(T0);
        let e = g.evidence(d, d).unwrap();
        assert_eq!((e.distinct_nets, e.retried_from_other_net), (3, 2));
        // Unresolved clients are grouped by the same networks.
        let unknown = decision(
            Reason::New,
            Action::Greylist,
            "unknown",
            "203.0.113.9",
            "u@x",
            None,
        );
        f.record(T0, unknown);
        let net = GroupKey::Network("203.0.113.9/32".parse().unwrap());
        assert!(
            f.tally.groups.contains_key(&net),
            "{:?}",
            f.tally.groups.keys()
        );
        // The state file records the prefixes and keeps the networks as counted.
        let stored = serde_json::to_string(&f.tally).unwrap();
        assert!(stored.ends_with(",\"net\":[32,64]}"), "{stored}");
        let loaded = through_state_file(&f.tally);
        assert_eq!(loaded.network, HOST_V4);
        for (key, group) in &f.tally.groups {
            assert_eq!(loaded.groups[key].days, group.days, "{key}");
        }
    }

    #[test]
    fn senders_postgrey_keys_as_one_are_one_pair() {
        let mut f = Fixture::new();
        let hour = 3_600_000_000;
        let nets = [
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "100.64.0.1",
            "198.18.0.1",
        ];
        let senders = [
            "bounce-1@esp.example",
            "prvs=0123456789=bounce-2@esp.example",
            "Bounce-3+tag@ESP.example",
            // Kept apart by postgrey: a number inside a word is no VERP number.
            "bounce-a4@esp.example",
            "other@esp.example",
        ];
        for (i, (ip, sender)) in nets.iter().zip(senders).enumerate() {
            let host = format!("o{i}.esp.example");
            let d = decision(Reason::New, Action::Greylist, &host, ip, sender, None);
            f.record(T0 + i as i64 * hour, d);
        }
        let d = day_of(T0);
        let e = f.tally.groups[&key("esp.example")].evidence(d, d).unwrap();
        assert_eq!((e.new, e.retried_from_other_net), (5, 2));
    }

    #[test]
    fn a_change_of_postgreys_networks_recuts_the_days_and_forgets_the_pairs() {
        let mut f = Fixture::new();
        multi_server_day(&mut f);
        let d = day_of(T0);
        let before = f.tally.groups[&key("example.com")].evidence(d, d).unwrap();
        assert_eq!(
            (before.distinct_nets, before.retried_from_other_net),
            (2, 1)
        );
        f.grouper = Grouper::builtin().with_network(HOST_V4);
        // The same mail again from its first address: no retry from another network, since
        // the pairs of the /24 count are forgotten rather than compared across the change.
        f.record(
            T0 + 4 * 3_600_000_000,
            decision(
                Reason::New,
                Action::Greylist,
                "a.smtp.example.com",
                "192.0.2.1",
                "s@x",
                None,
            ),
        );
        assert_eq!(f.tally.network, HOST_V4);
        let after = f.tally.groups[&key("example.com")].evidence(d, d).unwrap();
        assert_eq!((after.distinct_nets, after.retried_from_other_net), (3, 1));
        assert_eq!(after.new, 4);
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
        let client = |name: Option<&str>, ip: &str| (name.map(Name::from), ip.parse().unwrap());
        let expected: Vec<Vec<(Option<Name>, IpAddr)>> = vec![
            vec![
                client(Some("a.example.com"), "192.0.2.1"),
                client(Some("b.example.com"), "192.0.2.1"),
                client(Some("b.example.com"), "198.51.100.7"),
            ],
            vec![client(None, "203.0.113.8")],
        ];
        let clients_of = |tally: &Tally| -> Vec<Vec<(Option<Name>, IpAddr)>> {
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
        // Ten a second: all on the day of T0.
        for i in 0..=PAIR_CAP as i64 {
            f.record(
                T0 + i * 100_000,
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
