//! Several sources read at once and handed on as one stream in time order.
//!
//! The mail logs of several MX hosts (`--file mx1/mail.log --file mx2/mail.log`) are each in
//! time order, but read one after the other they are not: a sender greylisted at mx2 at 10:05
//! would come before its greylisting at mx1 at 10:00. A k-way merge by time stamp hands on the
//! entry with the earliest stamp of all sources' next ones, so that what happened across hosts
//! is seen in the order it happened. Each source is read on a thread of its own, in batches
//! (as [`super::pipelined`] does for one).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc;

use anyhow::Result;

use super::{BATCH_ENTRIES, Batch, OnEntry, Stopped, entry_in};

/// One source's reading: what it hands on goes to the merge.
pub type Read<'r, S> = Box<dyn FnOnce(&mut OnEntry<'_>) -> Result<S> + Send + 'r>;

/// Runs every `reads` on a thread of its own and hands their entries to `on_entry` in time
/// order: each time the one with the earliest `realtime_us` of all sources' next entries,
/// an earlier source first on a tie. A source out of time order in itself keeps its own order.
/// Returns each source's result, in the order given; the first error stops all of them
/// (the consumer's first, then the sources' in their order).
pub fn merged_in_time<S: Send>(
    reads: Vec<Read<'_, S>>,
    on_entry: &mut OnEntry<'_>,
) -> Result<Vec<S>> {
    std::thread::scope(|scope| {
        let mut sources = Vec::new();
        let mut readers = Vec::new();
        for read in reads {
            let (full_tx, full_rx) = mpsc::sync_channel::<Batch<()>>(2);
            readers.push(scope.spawn(move || {
                let mut batch = Batch::default();
                let read = read(&mut |entry| {
                    batch.push(&entry, ());
                    if batch.entries.len() >= BATCH_ENTRIES {
                        let full = std::mem::take(&mut batch);
                        full_tx.send(full).map_err(|_| Stopped)?;
                    }
                    Ok(())
                });
                if !batch.entries.is_empty() {
                    let _ = full_tx.send(batch);
                }
                read
            }));
            sources.push(Source {
                incoming: full_rx,
                batch: Batch::default(),
                next: 0,
            });
        }
        let consumed = merge(&mut sources, on_entry);
        // Readers still running stop at their next batch.
        drop(sources);
        let mut results = Vec::new();
        let mut failed = None;
        for reader in readers {
            match reader.join() {
                Ok(Ok(result)) => results.push(result),
                Ok(Err(error)) => {
                    if failed.is_none() && error.downcast_ref::<Stopped>().is_none() {
                        failed = Some(error);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        consumed?;
        match failed {
            Some(error) => Err(error),
            None => Ok(results),
        }
    })
}

/// A source being merged: its current batch and the position of its next entry there.
struct Source {
    incoming: mpsc::Receiver<Batch<()>>,
    batch: Batch<()>,
    next: usize,
}

impl Source {
    /// The stamp of the next entry, waiting for a batch when the current one is done; `None`
    /// once the source has ended.
    fn head(&mut self) -> Option<i64> {
        while self.next >= self.batch.entries.len() {
            self.batch = self.incoming.recv().ok()?;
            self.next = 0;
        }
        Some(self.batch.entries[self.next].realtime_us)
    }
}

fn merge(sources: &mut [Source], on_entry: &mut OnEntry<'_>) -> Result<()> {
    let mut heads = BinaryHeap::new();
    for (index, source) in sources.iter_mut().enumerate() {
        if let Some(at) = source.head() {
            heads.push(Reverse((at, index)));
        }
    }
    while let Some(Reverse((_, index))) = heads.pop() {
        let source = &mut sources[index];
        on_entry(entry_in(
            &source.batch.bytes,
            &source.batch.entries[source.next],
        ))?;
        source.next += 1;
        if let Some(at) = source.head() {
            heads.push(Reverse((at, index)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Entry, Origin};

    /// A source of entries at these seconds, named `name` in their host.
    fn source(name: &'static str, seconds: Vec<i64>, fail: bool) -> Read<'static, usize> {
        Box::new(move |on_entry: &mut OnEntry<'_>| {
            for &s in &seconds {
                on_entry(Entry {
                    realtime_us: s,
                    message: b"m",
                    origin: Origin::Unknown,
                    host: Some(name.as_bytes()),
                    cursor: None,
                })?;
            }
            anyhow::ensure!(!fail, "{name} broke");
            Ok(seconds.len())
        })
    }

    #[test]
    fn entries_come_in_time_order_across_sources() {
        let many: Vec<i64> = (0..3 * BATCH_ENTRIES as i64).map(|i| 2 * i).collect();
        let mut seen = Vec::new();
        let counts = merged_in_time(
            vec![
                source("a", vec![1, 3, 3, 10], false),
                source("b", many.clone(), false),
                source("c", vec![], false),
                source("d", vec![3, 2, 2000], false),
            ],
            &mut |entry| {
                seen.push((entry.realtime_us, entry.host.unwrap()[0]));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(counts, [4, many.len(), 0, 3]);
        assert_eq!(
            seen[..9],
            [
                (0, b'b'),
                (1, b'a'),
                (2, b'b'),
                (3, b'a'),
                (3, b'a'),
                // d is out of order in itself: 2 follows its 3.
                (3, b'd'),
                (2, b'd'),
                (4, b'b'),
                (6, b'b'),
            ]
        );
        assert_eq!(seen.len(), 7 + many.len());
        // Only d's own step back breaks the order.
        let back: Vec<_> = seen.windows(2).filter(|w| w[1].0 < w[0].0).collect();
        assert_eq!(back, [[(3, b'd'), (2, b'd')]]);
    }

    #[test]
    fn the_first_error_stops_the_merge() {
        let error = merged_in_time(
            vec![source("a", vec![1, 2], false), source("b", vec![1], true)],
            &mut |_| Ok(()),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "b broke");

        let mut count = 0;
        let many: Vec<i64> = (0..10 * BATCH_ENTRIES as i64).collect();
        let error = merged_in_time(
            vec![source("a", many.clone(), false), source("b", many, false)],
            &mut |_| {
                count += 1;
                anyhow::ensure!(count < 5, "consumer gives up");
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "consumer gives up");
    }
}
