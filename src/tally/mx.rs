//! Sites with several MX hosts.
//!
//! A domain's MX hosts usually run a postgrey each, each with its own triplet database. A sender
//! greylisted at one MX host that retries at another — from the same network — is greylisted
//! there again, although a shared database would have let it pass: `retried_at_other_mx`. The
//! host is the entry's `_HOSTNAME` (journal) or syslog host field (text).
//!
//! The tally keeps, per day, how many entries and greylistings each host logged (for the
//! report's `mx_hosts`), and each group's days keep their greylistings per host
//! (`DayStats::mx`). A pair remembers the hosts it was greylisted at as bits of a mask
//! ([`PairTrack::mx`](super::PairTrack)), positions in the tally's list of hosts
//! ([`MxHosts`]); hosts beyond the first [`MX_BITS`] get no bit, and their retries are not
//! told apart.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many hosts a pair's mask can tell apart.
pub const MX_BITS: usize = 64;

/// What one MX host logged on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxTotals {
    /// Entries attributed to postgrey (trusted or not).
    pub entries: u64,
    /// `action=greylist` decisions.
    pub greylisted: u64,
}

impl MxTotals {
    pub fn add(&mut self, other: &MxTotals) {
        self.entries += other.entries;
        self.greylisted += other.greylisted;
    }
}

/// Every host seen, in the order first seen: a host's position is its bit in pair masks. Its
/// names are shared by every count of the host ([`MxCounts`]). Stored as a list of names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MxHosts(pub Vec<Arc<str>>);

impl MxHosts {
    /// The mask bit of `host` (0 beyond [`MX_BITS`] hosts) and its shared name, learning it
    /// when new.
    pub fn intern(&mut self, host: &str) -> (u64, Arc<str>) {
        let position = match self.0.iter().position(|known| &**known == host) {
            Some(position) => position,
            None => {
                self.0.push(Arc::from(host));
                self.0.len() - 1
            }
        };
        let bit = if position < MX_BITS { 1 << position } else { 0 };
        (bit, self.0[position].clone())
    }

    /// The first host seen: the one a site with a single MX host has.
    pub fn first(&self) -> Option<&str> {
        self.0.first().map(|host| &**host)
    }
}

impl Serialize for MxHosts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|host| &**host))
    }
}

impl<'de> Deserialize<'de> for MxHosts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        Ok(MxHosts(names.into_iter().map(Arc::from).collect()))
    }
}

/// Greylistings per MX host, by host name. Most groups' days see one host: that one is kept
/// inline, without an allocation, its name shared with the tally's [`MxHosts`]; several are a
/// list sorted by name. Written and read as a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MxCounts {
    #[default]
    None,
    One((Arc<str>, u64)),
    /// Two or more.
    Several(Vec<(Arc<str>, u64)>),
}

impl MxCounts {
    fn as_slice(&self) -> &[(Arc<str>, u64)] {
        match self {
            MxCounts::None => &[],
            MxCounts::One(count) => std::slice::from_ref(count),
            MxCounts::Several(counts) => counts,
        }
    }

    /// Adds `n` to `host`'s count.
    pub fn add(&mut self, host: &Arc<str>, n: u64) {
        match self {
            MxCounts::None => *self = MxCounts::One((host.clone(), n)),
            MxCounts::One((known, count)) if **known == **host => *count += n,
            MxCounts::One(known) => {
                let mut counts = vec![known.clone(), (host.clone(), n)];
                counts.sort_by(|a, b| a.0.cmp(&b.0));
                *self = MxCounts::Several(counts);
            }
            MxCounts::Several(counts) => {
                match counts.binary_search_by(|(known, _)| (**known).cmp(&**host)) {
                    Ok(at) => counts[at].1 += n,
                    Err(at) => counts.insert(at, (host.clone(), n)),
                }
            }
        }
    }

    /// Adds every count of `other`.
    pub fn add_all(&mut self, other: &MxCounts) {
        for (host, n) in other.as_slice() {
            self.add(host, *n);
        }
    }

    pub fn get(&self, host: &str) -> Option<u64> {
        let counts = self.as_slice();
        counts
            .binary_search_by(|(known, _)| (**known).cmp(host))
            .ok()
            .map(|at| counts[at].1)
    }

    /// (host, count) by host name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.as_slice().iter().map(|(host, n)| (&**host, *n))
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

impl<const N: usize> From<[(&str, u64); N]> for MxCounts {
    fn from(counts: [(&str, u64); N]) -> Self {
        let mut mx = MxCounts::default();
        for (host, n) in counts {
            mx.add(&Arc::from(host), n);
        }
        mx
    }
}

impl Serialize for MxCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for MxCounts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, u64>::deserialize(deserializer)?;
        let mut counts = MxCounts::default();
        for (host, n) in map {
            counts.add(&Arc::from(host), n);
        }
        Ok(counts)
    }
}

/// What the state file leaves out for a site whose MX hosts are `first` and no other: the
/// greylistings of a day all at that host, every pair greylisted there (its mask bit 1).
/// With one MX host (most sites), nothing per host is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MxDefaults<'a> {
    pub first: Option<&'a str>,
}

impl MxDefaults<'_> {
    /// The greylistings per host of a day of `greylisted` greylistings.
    pub fn day(self, greylisted: u64) -> MxCounts {
        match self.first {
            Some(host) if greylisted > 0 => MxCounts::from([(host, greylisted)]),
            _ => MxCounts::default(),
        }
    }

    /// Whether `mx` is what [`MxDefaults::day`] gives.
    pub fn is_day(self, mx: &MxCounts, greylisted: u64) -> bool {
        match (self.first, mx.len()) {
            (_, 0) => greylisted == 0 || self.first.is_none(),
            (Some(host), 1) => mx.get(host) == Some(greylisted),
            _ => false,
        }
    }

    /// The mask of a pair.
    pub fn mask(self) -> u64 {
        u64::from(self.first.is_some())
    }
}

/// The host of an entry as text; `None` when it names none. The host field of a text log is
/// whatever the line says: a name with characters no host name has (controls, hidden Unicode,
/// a backslash) is kept escaped (`escape::printable`), so that no sink ever receives them.
pub fn host_text(host: Option<&[u8]>) -> Option<std::borrow::Cow<'_, str>> {
    let host = host.filter(|h| !h.is_empty())?;
    if host.iter().all(|&b| b.is_ascii_graphic() && b != b'\\') {
        return Some(String::from_utf8_lossy(host));
    }
    let text = String::from_utf8_lossy(host);
    Some(std::borrow::Cow::Owned(crate::escape::printable(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, ClientName, Decision, Reason};
    use crate::group::{GroupKey, Grouper};
    use crate::tally::{Tally, day_of};

    const T0: i64 = 1_795_000_000_000_000;
    const MINUTE: i64 = 60_000_000;

    fn greylist(ip: &str, sender: &str) -> Decision {
        Decision {
            queue_id: None,
            action: Action::Greylist,
            reason: Some(Reason::New),
            delay_s: None,
            client_name: Some(ClientName::Host("mail.example.com".to_owned())),
            client_address: Some(ip.parse().unwrap()),
            sender: Some(sender.to_owned()),
            recipient: Some("bob@example.org".to_owned()),
        }
    }

    fn record(tally: &mut Tally, at: i64, host: &str, d: Decision) {
        tally.record_decision_at(&Grouper::builtin(), at, Some(host), &d);
    }

    fn through_state_file(tally: &Tally) -> Tally {
        serde_json::from_str(&serde_json::to_string(tally).unwrap()).unwrap()
    }

    /// Greylisted at mx1, then at mx2 from the same address: the retry a shared database saves.
    /// From another network it is the multi-server signature instead; at mx2 again, nothing.
    #[test]
    fn a_pair_greylisted_again_at_another_host_is_counted_once() {
        let mut tally = Tally::default();
        record(&mut tally, T0, "mx1", greylist("192.0.2.1", "s@x"));
        record(&mut tally, T0 + MINUTE, "mx2", greylist("192.0.2.1", "s@x"));
        record(
            &mut tally,
            T0 + 2 * MINUTE,
            "mx2",
            greylist("192.0.2.1", "s@x"),
        );
        record(
            &mut tally,
            T0 + 3 * MINUTE,
            "mx3",
            greylist("198.51.100.1", "s@x"),
        );
        record(
            &mut tally,
            T0 + 4 * MINUTE,
            "mx1",
            greylist("192.0.2.9", "t@x"),
        );
        let key = GroupKey::Domain("example.com".to_owned());
        let day = day_of(T0);
        let e = tally.groups[&key].evidence(day, day).unwrap();
        assert_eq!(e.retried_at_other_mx, 1);
        assert_eq!(e.retried_from_other_net, 1);
        assert_eq!(e.mx, MxCounts::from([("mx2", 2), ("mx1", 2), ("mx3", 1)]));
        let hosts: Vec<&str> = tally.mx_hosts.0.iter().map(|h| &**h).collect();
        assert_eq!(hosts, ["mx1", "mx2", "mx3"]);
        assert_eq!(
            tally.mx_totals[&day]["mx2"],
            MxTotals {
                entries: 0,
                greylisted: 2
            }
        );

        // The state file keeps the hosts of the day and of the pairs carried over: the next
        // run knows `t@x` was greylisted at mx1 only.
        let stored = serde_json::to_value(&tally).unwrap();
        let group = &stored["groups"]["example.com"];
        assert_eq!(
            group["d"][day.to_string()]["g"],
            serde_json::json!({"mx1": 2, "mx2": 2, "mx3": 1})
        );
        assert_eq!(group["d"][day.to_string()]["ra"], 1);
        let mut next = through_state_file(&tally);
        assert_eq!(next.groups[&key].days, tally.groups[&key].days);
        assert_eq!(next.mx_totals, tally.mx_totals);
        record(
            &mut next,
            T0 + 5 * MINUTE,
            "mx2",
            greylist("192.0.2.9", "t@x"),
        );
        let e = next.groups[&key].evidence(day, day).unwrap();
        assert_eq!((e.retried_at_other_mx, e.mx.get("mx2")), (2, Some(3)));
    }

    /// Another host's entries arriving later with older stamps count only within the pair
    /// memory of the greylisting remembered, as one pass in time order would count them.
    #[test]
    fn a_late_host_counts_only_within_the_pair_memory() {
        let day = 86_400_000_000;
        let mut tally = Tally::default();
        record(
            &mut tally,
            T0 + 6 * day,
            "mx1",
            greylist("192.0.2.1", "s@x"),
        );
        record(
            &mut tally,
            T0 + 6 * day,
            "mx1",
            greylist("192.0.2.1", "t@x"),
        );
        let mut next = through_state_file(&tally);
        record(&mut next, T0, "mx2", greylist("192.0.2.1", "s@x"));
        record(&mut next, T0 + 2 * day, "mx2", greylist("192.0.2.1", "t@x"));
        let key = GroupKey::Domain("example.com".to_owned());
        let e = next.groups[&key]
            .evidence(day_of(T0), day_of(T0 + 6 * day))
            .unwrap();
        assert_eq!(e.retried_at_other_mx, 1);
    }

    /// A site with one MX host stores nothing per host, and loads it back as it was.
    #[test]
    fn one_mx_host_costs_the_state_file_nothing_per_group() {
        let mut tally = Tally::default();
        record(&mut tally, T0, "mx1", greylist("192.0.2.1", "s@x"));
        record(&mut tally, T0 + MINUTE, "mx1", greylist("192.0.2.2", "t@x"));
        let text = serde_json::to_string(&tally).unwrap();
        let group = &serde_json::from_str::<serde_json::Value>(&text).unwrap()["groups"];
        assert!(!group.to_string().contains("\"g\"") && !group.to_string().contains("pm"));
        let loaded = through_state_file(&tally);
        let days = |t: &Tally| {
            t.groups
                .values()
                .map(|g| g.days.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(days(&loaded), days(&tally));
        assert_eq!(
            loaded
                .groups
                .values()
                .next()
                .unwrap()
                .pairs
                .values()
                .map(|p| p.mx)
                .collect::<Vec<_>>(),
            [1, 1]
        );
    }

    #[test]
    fn hosts_get_bits_in_the_order_first_seen() {
        let mut hosts = MxHosts::default();
        assert_eq!(hosts.first(), None);
        let mut bit = |host: &str| hosts.intern(host).0;
        assert_eq!(bit("mx1"), 1);
        assert_eq!(bit("mx2"), 2);
        assert_eq!(bit("mx1"), 1);
        for i in 2..MX_BITS {
            assert_eq!(bit(&format!("h{i}")), 1 << i);
        }
        assert_eq!(bit("one too many"), 0);
        assert_eq!(hosts.first(), Some("mx1"));
        assert_eq!(&*hosts.intern("mx2").1, "mx2");
        let none = MxDefaults::default();
        let one = MxDefaults { first: Some("mx1") };
        let mx = |pairs: &[(&str, u64)]| {
            let mut counts = MxCounts::default();
            for (host, n) in pairs {
                counts.add(&Arc::from(*host), *n);
            }
            counts
        };
        assert_eq!(one.day(3), mx(&[("mx1", 3)]));
        assert_eq!((one.day(0), none.day(3)), (mx(&[]), mx(&[])));
        assert!(one.is_day(&mx(&[("mx1", 3)]), 3));
        assert!(!one.is_day(&mx(&[("mx1", 2)]), 3));
        assert!(!one.is_day(&mx(&[("mx2", 3)]), 3));
        assert!(!one.is_day(&mx(&[]), 3));
        assert!(one.is_day(&mx(&[]), 0));
        assert!(none.is_day(&mx(&[]), 3));
        assert!(!none.is_day(&mx(&[("mx1", 3)]), 3));
        assert_eq!((one.mask(), none.mask()), (1, 0));
        assert_eq!(host_text(Some(b"")), None);
        assert_eq!(host_text(Some(b"mx\xff")).unwrap(), "mx\u{fffd}");
        assert_eq!(host_text(Some(b"mx\x7f\\")).unwrap(), "mx\\x7f\\\\");
        assert_eq!(host_text(Some(b"mx-1.example")).unwrap(), "mx-1.example");
    }
}
