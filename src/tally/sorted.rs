//! Small ordered sets and maps kept in one sorted vector.
//!
//! A day bucket holds a handful of addresses, networks, host names and clients: a busy server's
//! week is some 180,000 buckets of one to three of each. A `BTreeSet` allocates a node of eleven
//! slots for the first element (about 200 bytes for addresses, 540 for clients), which made the
//! distinct sets most of a weekly run's memory. A sorted vector costs what it holds, keeps the
//! order the report and the state file rely on, and finds an element by binary search; a day
//! keeps at most `DISTINCT_CAP` of each, so inserting in the middle stays cheap.

use std::borrow::Borrow;
use std::fmt;
use std::ops::{Bound, RangeBounds};

/// An ordered set in a sorted vector, with the part of `BTreeSet`'s interface the tally uses.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedSet<T> {
    items: Vec<T>,
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        SortedSet { items: Vec::new() }
    }
}

impl<T: fmt::Debug> fmt::Debug for SortedSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.items).finish()
    }
}

impl<T: Ord> SortedSet<T> {
    pub fn new() -> Self {
        SortedSet::default()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    pub fn first(&self) -> Option<&T> {
        self.items.first()
    }

    pub fn contains<Q: Ord + ?Sized>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.items
            .binary_search_by(|item| item.borrow().cmp(value))
            .is_ok()
    }

    /// Inserts `value`; whether it was not there yet.
    pub fn insert(&mut self, value: T) -> bool {
        match self.items.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                // Most sets stay at one or two elements: grow by one, not by doubling.
                self.items.reserve_exact(1);
                self.items.insert(at, value);
                true
            }
        }
    }

    /// The elements from the first at or after `start` on, in order.
    pub fn tail_from<Q: Ord + ?Sized>(&self, start: &Q) -> &[T]
    where
        T: Borrow<Q>,
    {
        let at = self.items.partition_point(|item| item.borrow() < start);
        &self.items[at..]
    }

    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
    }

    pub fn as_slice(&self) -> &[T] {
        &self.items
    }
}

impl<T: Ord> FromIterator<T> for SortedSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut items: Vec<T> = iter.into_iter().collect();
        items.sort_unstable();
        items.dedup();
        items.shrink_to_fit();
        SortedSet { items }
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for SortedSet<T> {
    fn from(items: [T; N]) -> Self {
        items.into_iter().collect()
    }
}

impl<'a, T> IntoIterator for &'a SortedSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T> IntoIterator for SortedSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// An ordered map in a sorted vector, with the part of `BTreeMap`'s interface the tally uses.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SortedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    pub fn new() -> Self {
        SortedMap::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.position(key).ok().map(|at| &self.entries[at].1)
    }

    pub fn get_key_value<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        self.position(key).ok().map(|at| {
            let (k, v) = &self.entries[at];
            (k, v)
        })
    }

    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.position(key).ok().map(|at| &mut self.entries[at].1)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; the value it had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.reserve_exact(1);
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The value of `key`, inserted from `make` when there is none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        // Logs come in time order: a day's key is nearly always the last one, found without a
        // search through values that are not in the cache.
        let last = self.entries.len().checked_sub(1);
        let found = match last {
            Some(last) if self.entries[last].0 == key => Ok(last),
            _ => self.position(&key),
        };
        let at = match found {
            Ok(at) => at,
            Err(at) => {
                self.entries.reserve_exact(1);
                self.entries.insert(at, (key, make()));
                at
            }
        };
        &mut self.entries[at].1
    }

    /// The entries whose keys lie in `range`, in order.
    pub fn range(
        &self,
        range: impl RangeBounds<K>,
    ) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator + Clone {
        let whole = match (self.entries.first(), self.entries.last()) {
            (Some((first, _)), Some((last, _))) => range.contains(first) && range.contains(last),
            _ => true,
        };
        // A report's window holds all of a group's days: no search through them.
        let (start, end) = if whole {
            (0, self.entries.len())
        } else {
            self.bounds(&range)
        };
        self.entries[start..end.max(start)]
            .iter()
            .map(|(k, v)| (k, v))
    }

    /// Where the entries whose keys lie in `range` start and end.
    fn bounds(&self, range: &impl RangeBounds<K>) -> (usize, usize) {
        let start = match range.start_bound() {
            Bound::Included(first) => self.entries.partition_point(|(k, _)| k < first),
            Bound::Excluded(first) => self.entries.partition_point(|(k, _)| k <= first),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(last) => self.entries.partition_point(|(k, _)| k <= last),
            Bound::Excluded(last) => self.entries.partition_point(|(k, _)| k < last),
            Bound::Unbounded => self.entries.len(),
        };
        (start, end)
    }

    pub fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = (&K, &mut V)> + ExactSizeIterator {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }
}

/// Like `BTreeMap`'s: panics when `key` is missing, for callers that know it is there.
impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> std::ops::Index<&Q> for SortedMap<K, V> {
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no such key in the sorted map"),
        }
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    /// Like `BTreeMap`'s: of equal keys, the last value wins.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut entries: Vec<(K, V)> = iter.into_iter().collect();
        // Stable, so that equal keys keep their order and the last one can be kept.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.reverse();
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        entries.reverse();
        entries.shrink_to_fit();
        SortedMap { entries }
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for SortedMap<K, V> {
    fn from(entries: [(K, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<'a, K, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_keeps_its_elements_sorted_and_once() {
        let mut set = SortedSet::new();
        assert!(set.insert(3));
        assert!(set.insert(1));
        assert!(!set.insert(3));
        assert!(set.insert(2));
        assert_eq!(set.as_slice(), &[1, 2, 3]);
        assert!(set.contains(&2) && !set.contains(&4));
        assert_eq!(set.tail_from(&2), &[2, 3]);
        assert_eq!(SortedSet::from([5, 4, 5]).as_slice(), &[4, 5]);
    }

    #[test]
    fn a_map_keeps_its_keys_sorted_and_the_last_value_of_equal_keys() {
        let mut map: SortedMap<String, u64> = SortedMap::new();
        assert_eq!(map.insert("b".into(), 1), None);
        assert_eq!(map.insert("a".into(), 2), None);
        assert_eq!(map.insert("b".into(), 3), Some(1));
        if let Some(count) = map.get_mut("a") {
            *count += 1;
        }
        let pairs: Vec<(&String, &u64)> = map.iter().collect();
        assert_eq!(pairs, [(&"a".to_owned(), &3), (&"b".to_owned(), &3)]);
        let collected: SortedMap<u8, u8> = [(2, 1), (1, 1), (2, 2)].into_iter().collect();
        assert_eq!(collected, SortedMap::from([(1, 1), (2, 2)]));
        let days: SortedMap<i64, ()> = (1..=5).map(|d| (d, ())).collect();
        let keys = |r: Vec<(&i64, &())>| r.into_iter().map(|(k, _)| *k).collect::<Vec<_>>();
        assert_eq!(keys(days.range(2..=4).collect()), [2, 3, 4]);
        assert_eq!(keys(days.range(4..).collect()), [4, 5]);
        assert_eq!(keys(days.range(6..=9).collect()), Vec::<i64>::new());
        assert_eq!(keys(days.range(1..=5).collect()), [1, 2, 3, 4, 5]);
        assert_eq!(keys(days.range(0..9).collect()), [1, 2, 3, 4, 5]);
        assert_eq!(keys(days.range(1..5).collect()), [1, 2, 3, 4]);
        let empty: SortedMap<i64, ()> = SortedMap::new();
        assert_eq!(keys(empty.range(1..=5).collect()), Vec::<i64>::new());
    }

    #[test]
    fn a_value_is_found_or_inserted_in_its_place_whether_its_key_is_last_or_not() {
        let mut days: SortedMap<i64, u64> = SortedMap::new();
        for day in [3, 3, 5, 1, 5, 3, 4] {
            *days.get_or_insert_with(day, || 0) += 1;
        }
        assert_eq!(days, SortedMap::from([(1, 1), (3, 3), (4, 1), (5, 2)]));
    }
}
