//! A group's memory of greylisted (sender, recipient) pairs, for `retried_from_other_net`.
//!
//! A pair is remembered for [`PAIR_MEMORY_US`] after its last greylisting (Postfix gives up on
//! a deferred mail after 5 days). Pairs are forgotten only when the memory is full, so that
//! the count does not depend on the order files are read in (`mail.log mail.log.1` is newest
//! first): a pair greylisted at the end of last week and again this week is a retry whichever
//! file comes first. A full memory forgets the pairs that expired, oldest first, through a
//! queue built when the memory first fills (most groups never fill theirs, and need none):
//! each pair enters it once and is looked at again only when it reaches the front, so that
//! remembering a pair costs O(1) amortised however many a group holds (a full scan per new
//! pair made a big sender's lines the slowest).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Deref;

use ipnet::IpNet;
use smallvec::SmallVec;

use super::MICROS_PER_DAY;

/// Most (sender, recipient) pairs remembered per group. A pair costs about 150 bytes (its hash,
/// its networks, its place in the expiry queue), so a full memory costs about 20 MB: room for
/// the biggest providers, which greylist tens of thousands of distinct pairs in five days and
/// whose retries from other networks matter most, while a run over a garbage log stays bounded.
pub const PAIR_CAP: usize = 1 << 17;
/// Networks remembered per pair: a retry from a third network is as telling as from a second.
pub(crate) const PAIR_NET_CAP: usize = 4;
/// How long a greylisted pair is remembered. Postfix gives up on a deferred mail after 5 days.
pub const PAIR_MEMORY_US: i64 = 5 * MICROS_PER_DAY;

/// A greylisted (sender, recipient) pair: from which networks, at which MX hosts (bits, see
/// `tally::mx`), and when last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairTrack {
    /// Most pairs are greylisted from one network only: that one is kept inline, so that
    /// remembering a pair allocates nothing beyond the map's slot.
    pub nets: PairNets,
    pub mx: u64,
    pub last_us: i64,
}

/// The networks a pair was greylisted from, at most [`PAIR_NET_CAP`].
pub type PairNets = SmallVec<[IpNet; 1]>;

/// What one greylisting of a pair showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Greylisting {
    /// `Some(true)`: greylisted before from another network; `None`: not remembered (full).
    pub retried_from_other_net: Option<bool>,
    /// Greylisted before at another MX host from this very network.
    pub retried_at_other_mx: bool,
}

/// Hashes a key that is a hash already (a pair's FNV hash, a group's [`super::HashedKey`]):
/// one multiply-and-shift round spreads it over a map's buckets, where std's SipHash would hash
/// it again at every lookup.
#[derive(Default)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = super::mix(key);
    }
}

/// The map of a group's pairs.
pub type PairMap = HashMap<u64, PairTrack, BuildHasherDefault<PrehashedHasher>>;

/// The pairs of one group, keyed by a stable 64-bit hash of sender and recipient (addresses
/// are not kept). Reads through `Deref` to the map.
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    tracks: PairMap,
    /// Once the memory has been full: every pair with the time it was last greylisted when
    /// queued, the front queued first. A pair greylisted again since stays where it is until
    /// it reaches the front, and is then queued again with its newer time. A pair forgotten
    /// otherwise (see [`Pairs::retain_since`]) leaves no entry behind.
    expiry: Option<VecDeque<(i64, u64)>>,
}

/// Two memories are equal when they remember the same pairs, whatever their queues.
impl PartialEq for Pairs {
    fn eq(&self, other: &Self) -> bool {
        self.tracks == other.tracks
    }
}

impl Deref for Pairs {
    type Target = PairMap;

    fn deref(&self) -> &Self::Target {
        &self.tracks
    }
}

impl Pairs {
    /// Records a greylisting of `pair` from `net` at the MX host of mask bit `mx_bit` (0 when
    /// none is known). Its `retried_from_other_net` is `Some(true)` when the pair was
    /// greylisted before from a different network (within [`PAIR_MEMORY_US`]), `None` when it
    /// could not be remembered because [`PAIR_CAP`] pairs are.
    pub(crate) fn greylisted(
        &mut self,
        pair: u64,
        net: IpNet,
        realtime_us: i64,
        mx_bit: u64,
    ) -> Greylisting {
        let Some(track) = self.track_of(pair, realtime_us) else {
            return Greylisting {
                retried_from_other_net: None,
                retried_at_other_mx: false,
            };
        };
        // Another host's entries may arrive later with older stamps: within the memory before
        // or after.
        let known_net =
            (realtime_us - track.last_us).abs() <= PAIR_MEMORY_US && track.nets.contains(&net);
        if realtime_us - track.last_us > PAIR_MEMORY_US {
            track.nets.clear();
            track.mx = 0;
        }
        track.last_us = track.last_us.max(realtime_us);
        let retried_from_other_net = if track.nets.contains(&net) {
            false
        } else {
            let seen_elsewhere = !track.nets.is_empty();
            if track.nets.len() < PAIR_NET_CAP {
                track.nets.push(net);
            }
            seen_elsewhere
        };
        // Greylisted again at another MX host, from a network it was greylisted from before.
        let at_other_host = mx_bit != 0 && track.mx & !mx_bit != 0 && track.mx & mx_bit == 0;
        track.mx |= mx_bit;
        Greylisting {
            retried_from_other_net: Some(retried_from_other_net),
            retried_at_other_mx: at_other_host && known_net,
        }
    }

    /// [`Pairs::greylisted`] at no known MX host: whether it was a retry from another network.
    #[cfg(test)]
    pub(crate) fn greylisted_from(
        &mut self,
        pair: u64,
        net: IpNet,
        realtime_us: i64,
    ) -> Option<bool> {
        self.greylisted(pair, net, realtime_us, 0)
            .retried_from_other_net
    }

    /// The track of `pair`, a new one when it has none; `None` when the memory is full of
    /// pairs that have not expired.
    fn track_of(&mut self, pair: u64, realtime_us: i64) -> Option<&mut PairTrack> {
        if !self.tracks.contains_key(&pair) {
            if self.tracks.len() >= PAIR_CAP {
                if self.expiry.is_none() {
                    self.requeue();
                }
                self.expire_before(realtime_us - PAIR_MEMORY_US);
                if self.tracks.len() >= PAIR_CAP {
                    return None;
                }
            }
            if let Some(expiry) = &mut self.expiry {
                expiry.push_back((realtime_us, pair));
            }
        }
        Some(self.tracks.entry(pair).or_default())
    }

    /// Sets the MX hosts of a restored pair (loading a state file).
    pub(crate) fn restore_mx(&mut self, pair: u64, mask: u64) {
        if let Some(track) = self.tracks.get_mut(&pair) {
            track.mx = mask;
        }
    }

    /// Forgets pairs from the front of the queue while they were last greylisted before
    /// `cutoff_us`; a pair greylisted again since goes to the back. Stops at the first pair
    /// queued at or after the cutoff: with entries out of time order an expired pair may wait
    /// behind it, and the memory stays full a little longer.
    fn expire_before(&mut self, cutoff_us: i64) {
        let Some(expiry) = &mut self.expiry else {
            return;
        };
        while let Some(&(queued_us, pair)) = expiry.front() {
            if queued_us >= cutoff_us {
                return;
            }
            expiry.pop_front();
            match self.tracks.get(&pair) {
                Some(track) if track.last_us < cutoff_us => {
                    self.tracks.remove(&pair);
                }
                Some(track) => expiry.push_back((track.last_us, pair)),
                None => {}
            }
        }
    }

    /// Forgets every pair last greylisted before `cutoff_us` (pruning, compaction: once a run).
    pub(crate) fn retain_since(&mut self, cutoff_us: i64) {
        self.tracks.retain(|_, track| track.last_us >= cutoff_us);
        if self.expiry.is_some() {
            self.requeue();
        }
    }

    /// Remembers `pair` as greylisted from `net` at `last_us` (loading a state file), in
    /// addition to the networks it has.
    pub(crate) fn restore(&mut self, pair: u64, net: IpNet, last_us: i64) {
        let track = self.tracks.entry(pair).or_default();
        track.last_us = last_us;
        if !track.nets.contains(&net) && track.nets.len() < PAIR_NET_CAP {
            track.nets.push(net);
        }
    }

    /// Builds the expiry queue from the pairs remembered, oldest first.
    fn requeue(&mut self) {
        let mut queue: Vec<(i64, u64)> = self
            .tracks
            .iter()
            .map(|(pair, track)| (track.last_us, *pair))
            .collect();
        queue.sort_unstable();
        self.expiry = Some(queue.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_219_200_000_000;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn a_full_memory_forgets_the_expired_pairs_first_and_keeps_the_others() {
        let mut pairs = Pairs::default();
        let a = net("192.0.2.0/24");
        let b = net("198.51.100.0/24");
        for i in 0..PAIR_CAP as u64 {
            assert_eq!(pairs.greylisted_from(i, a, T0 + i as i64), Some(false));
        }
        // Pair 0 greylisted again later: it must outlive the pairs queued after it.
        assert_eq!(pairs.greylisted_from(0, b, T0 + PAIR_MEMORY_US), Some(true));
        // Full, nothing expired yet: a new pair cannot be remembered.
        assert_eq!(
            pairs.greylisted_from(u64::MAX, a, T0 + PAIR_MEMORY_US),
            None
        );
        // Pairs 1 and 2 have expired (5 days after T0+1 and T0+2): two new pairs fit.
        let later = T0 + PAIR_MEMORY_US + 3;
        assert_eq!(pairs.greylisted_from(u64::MAX, a, later), Some(false));
        assert_eq!(pairs.greylisted_from(u64::MAX - 1, a, later), Some(false));
        assert_eq!(pairs.greylisted_from(u64::MAX - 2, a, later), None);
        assert_eq!(pairs.len(), PAIR_CAP);
        assert!(pairs.contains_key(&0) && !pairs.contains_key(&1) && !pairs.contains_key(&2));
        assert_eq!(pairs[&0].nets.as_slice(), [a, b]);
    }

    #[test]
    fn forgetting_by_time_keeps_the_queue_in_step() {
        let mut pairs = Pairs::default();
        let a = net("192.0.2.0/24");
        pairs.greylisted_from(1, a, T0);
        pairs.greylisted_from(2, a, T0 + 10);
        // No queue until the memory is full.
        pairs.retain_since(T0 + 5);
        assert_eq!(pairs.keys().copied().collect::<Vec<_>>(), [2]);
        assert_eq!(pairs.expiry, None);
        pairs.restore(3, a, T0 + 7);
        pairs.requeue();
        pairs.greylisted_from(4, a, T0 + 12);
        assert_eq!(
            pairs.expiry,
            Some([(T0 + 7, 3), (T0 + 10, 2), (T0 + 12, 4)].into())
        );
        pairs.retain_since(T0 + 8);
        assert_eq!(pairs.expiry, Some([(T0 + 10, 2), (T0 + 12, 4)].into()));
    }
}
