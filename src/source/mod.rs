//! Where postgrey's log lines come from: the systemd journal or classic syslog text files.
//! Every source yields [`Entry`] values in time order (per file) and nothing else.

pub mod journal;
pub mod journal_files;
mod merge;
pub mod text;

pub use merge::merged_in_time;

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::Result;

/// Whether journald vouches that an entry was written by postgrey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `_SYSTEMD_UNIT` or `_UID` (set by journald from kernel credentials) say postgrey.
    Trusted,
    /// Claims to be postgrey (`SYSLOG_IDENTIFIER`) but journald says otherwise: a forgery
    /// by an ordinary user is possible, so it never counts.
    Untrusted,
    /// Text files carry no credentials; the postmaster chose to trust them.
    Unknown,
}

/// One log message attributed to postgrey, borrowed from the source's buffers for the time of
/// one callback: reading allocates nothing per entry.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Wall-clock time, microseconds since the Unix epoch (UTC).
    pub realtime_us: i64,
    /// The message after the syslog prefix; raw bytes, maybe not UTF-8.
    pub message: &'a [u8],
    pub origin: Origin,
    /// The host that logged it: the syslog host field of a text line, `_HOSTNAME` of a journal
    /// entry; `None` when the entry names none.
    pub host: Option<&'a [u8]>,
    /// Journal cursor, only when read with details: it costs a lookup per entry, and a pass
    /// needs only its last one.
    pub cursor: Option<&'a str>,
}

impl Entry<'_> {
    /// A copy that outlives the callback.
    pub fn to_owned(&self) -> OwnedEntry {
        OwnedEntry {
            realtime_us: self.realtime_us,
            message: self.message.to_vec(),
            origin: self.origin,
            host: self
                .host
                .map(|host| String::from_utf8_lossy(host).into_owned()),
            cursor: self.cursor.map(str::to_owned),
        }
    }
}

/// An [`Entry`] kept beyond its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEntry {
    pub realtime_us: i64,
    pub message: Vec<u8>,
    pub origin: Origin,
    pub host: Option<String>,
    pub cursor: Option<String>,
}

impl OwnedEntry {
    pub fn as_entry(&self) -> Entry<'_> {
        Entry {
            realtime_us: self.realtime_us,
            message: &self.message,
            origin: self.origin,
            host: self.host.as_deref().map(str::as_bytes),
            cursor: self.cursor.as_deref(),
        }
    }
}

/// A half-open time window `[since, until)` in microseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
}

impl Window {
    pub fn contains(&self, realtime_us: i64) -> bool {
        self.since_us.is_none_or(|s| realtime_us >= s)
            && self.until_us.is_none_or(|u| realtime_us < u)
    }
}

/// Entries copied out of a source, to be handed on by another thread, each with what
/// [`Consumer::prepare`] made of it there.
struct Batch<P> {
    /// Messages, hosts and cursors, one after the other.
    bytes: Vec<u8>,
    entries: Vec<BatchEntry>,
    prepared: Vec<P>,
}

impl<P> Default for Batch<P> {
    fn default() -> Self {
        Batch {
            bytes: Vec::new(),
            entries: Vec::new(),
            prepared: Vec::new(),
        }
    }
}

struct BatchEntry {
    realtime_us: i64,
    origin: Origin,
    message: Range<usize>,
    host: Option<Range<usize>>,
    cursor: Option<Range<usize>>,
}

/// Entries per batch: enough that handing a batch over costs nothing per entry.
const BATCH_ENTRIES: usize = 1024;
/// Entries in the first batch; each next one holds twice as many, up to [`BATCH_ENTRIES`]: the
/// counting thread waits for the first one, and gets to work sooner when it is small.
const FIRST_BATCH_ENTRIES: usize = 256;

impl<P> Batch<P> {
    /// A batch with room for `entries` entries of a typical log line, so that filling it does
    /// not grow it step by step.
    fn with_capacity(entries: usize) -> Self {
        const TYPICAL_ENTRY_BYTES: usize = 256;
        Batch {
            bytes: Vec::with_capacity(entries * TYPICAL_ENTRY_BYTES),
            entries: Vec::with_capacity(entries),
            prepared: Vec::with_capacity(entries),
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    fn push(&mut self, entry: &Entry<'_>, prepared: P) {
        let message = self.append(entry.message);
        let host = entry.host.map(|host| self.append(host));
        let cursor = entry.cursor.map(|cursor| self.append(cursor.as_bytes()));
        self.entries.push(BatchEntry {
            realtime_us: entry.realtime_us,
            origin: entry.origin,
            message,
            host,
            cursor,
        });
        self.prepared.push(prepared);
    }

    /// Hands every entry on, with what was prepared of it. The batch keeps what was prepared
    /// until [`Batch::clear`]: the reading thread clears it before filling it again, so that what
    /// it allocated there is freed there too (freeing on another thread costs the allocator a
    /// lock per block).
    fn hand_on(&self, count: &mut dyn FnMut(Entry<'_>, &P) -> Result<()>) -> Result<()> {
        self.entries
            .iter()
            .zip(&self.prepared)
            .try_for_each(|(entry, prepared)| count(entry_in(&self.bytes, entry), prepared))
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.prepared.clear();
    }
}

/// The entry `entry` of a batch whose bytes are `bytes`.
fn entry_in<'b>(bytes: &'b [u8], entry: &BatchEntry) -> Entry<'b> {
    Entry {
        realtime_us: entry.realtime_us,
        message: &bytes[entry.message.clone()],
        origin: entry.origin,
        host: entry.host.clone().map(|range| &bytes[range]),
        // Copied from a `&str`, so the bytes are UTF-8.
        cursor: entry
            .cursor
            .clone()
            .and_then(|range| std::str::from_utf8(&bytes[range]).ok()),
    }
}

/// Where a source hands its entries.
pub type OnEntry<'f> = dyn FnMut(Entry<'_>) -> Result<()> + 'f;

/// What a source hands its entries to: `prepare` runs where an entry is read (on the reading
/// thread when the source has one), so that what depends on the entry alone — parsing it,
/// above all — is done there; `count` gets the entries in order, each with what `prepare` made
/// of it, and does what `prepare` left to it (see [`Share`]).
pub struct Consumer<'c, P> {
    pub prepare: &'c (dyn Fn(&Entry<'_>, Share) -> P + Sync),
    pub count: &'c mut dyn FnMut(Entry<'_>, &P) -> Result<()>,
}

/// How much of preparing an entry the reading thread takes on. Which of the two threads is the
/// slower one depends on the log (how much of it is postgrey's, how many groups and pairs), so
/// the reader does all of it while a batch waits for the counting thread, and leaves whole
/// entries to it (unparsed) while none does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    All,
    Part,
}

impl<'c> Consumer<'c, ()> {
    /// Nothing to prepare: every entry goes straight to `count`.
    pub fn unprepared(count: &'c mut dyn FnMut(Entry<'_>, &()) -> Result<()>) -> Self {
        Consumer {
            prepare: &|_, _| (),
            count,
        }
    }
}

impl<P> Consumer<'_, P> {
    /// Prepares and counts each entry on this thread.
    pub fn inline(&mut self) -> impl FnMut(Entry<'_>) -> Result<()> + '_ {
        let prepare = self.prepare;
        move |entry| {
            let prepared = prepare(&entry, Share::All);
            (self.count)(entry, &prepared)
        }
    }
}

/// Which thread of a [`pipelined`] source prepares its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareOn {
    /// The reading thread: reading is light (searching a text log), preparing is not.
    Reader,
    /// The counting thread: reading takes a core of its own already (sd-journal's lookups).
    Consumer,
}

/// The consumer stopped (its error is the one returned); the reader only needs to stop.
#[derive(Debug, thiserror::Error)]
#[error("reading stopped")]
struct Stopped;

/// Runs `read` on a thread of its own and hands its entries to `consumer` on this one, in
/// batches: reading (sd-journal's lookups, decompressing, searching a log) and preparing on
/// one core, counting on another, instead of one after the other. Entries keep their order.
/// An error from `consumer` stops the reading and is returned.
pub fn pipelined<S: Send, P: Send>(
    read: impl FnOnce(&mut OnEntry<'_>) -> Result<S> + Send,
    mut consumer: Consumer<'_, P>,
    prepare_on: PrepareOn,
) -> Result<S> {
    if prepare_on == PrepareOn::Consumer {
        let mut inline = consumer.inline();
        let mut count = |entry: Entry<'_>, _: &()| inline(entry);
        return pipelined(read, Consumer::unprepared(&mut count), PrepareOn::Reader);
    }
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch<P>>(2);
    let (empty_tx, empty_rx) = mpsc::channel::<Batch<P>>();
    let prepare = consumer.prepare;
    // Batches handed over and not yet taken by the counting thread (see `Share`).
    let in_flight = AtomicUsize::new(0);
    let in_flight = &in_flight;
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut batch_entries = FIRST_BATCH_ENTRIES;
            let mut batch = Batch::with_capacity(batch_entries);
            let read = read(&mut |entry| {
                let share = if in_flight.load(Ordering::Relaxed) == 0 {
                    Share::Part
                } else {
                    Share::All
                };
                batch.push(&entry, prepare(&entry, share));
                if batch.entries.len() >= batch_entries {
                    batch_entries = (2 * batch_entries).min(BATCH_ENTRIES);
                    let mut next = empty_rx
                        .try_recv()
                        .unwrap_or_else(|_| Batch::with_capacity(batch_entries));
                    next.clear();
                    let full = std::mem::replace(&mut batch, next);
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    full_tx.send(full).map_err(|_| Stopped)?;
                }
                Ok(())
            });
            if !batch.entries.is_empty() {
                // What was read before an error is handed on, as without a thread. The
                // consumer may have stopped: its error is then the one returned.
                in_flight.fetch_add(1, Ordering::Relaxed);
                let _ = full_tx.send(batch);
            }
            read
        });
        let mut consumed = Ok(());
        while let Ok(batch) = full_rx.recv() {
            in_flight.fetch_sub(1, Ordering::Relaxed);
            consumed = batch.hand_on(consumer.count);
            if consumed.is_err() {
                break;
            }
            // The reader may be done and gone: then the batch is not needed any more.
            let _ = empty_tx.send(batch);
        }
        drop(full_rx);
        let read = match reader.join() {
            Ok(read) => read,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        consumed?;
        read
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize, message: &[u8]) -> Entry<'_> {
        Entry {
            realtime_us: n as i64,
            message,
            origin: Origin::Unknown,
            host: Some(b"mx1"),
            cursor: None,
        }
    }

    /// Reads `n` entries, then fails when `fail` is set.
    fn reading(n: usize, fail: bool) -> impl FnOnce(&mut OnEntry<'_>) -> Result<usize> + Send {
        move |on_entry| {
            for i in 0..n {
                on_entry(entry(i, format!("m{i}").as_bytes()))?;
            }
            if fail {
                anyhow::bail!("broken after {n}");
            }
            Ok(n)
        }
    }

    #[test]
    fn a_pipeline_hands_on_every_entry_in_order_with_what_was_prepared() {
        let n = 3 * BATCH_ENTRIES + 5;
        for prepare_on in [PrepareOn::Reader, PrepareOn::Consumer] {
            let mut seen = Vec::new();
            let consumer = Consumer {
                prepare: &|entry: &Entry<'_>, _| {
                    format!("{}:{}", entry.realtime_us, entry.message.len())
                },
                count: &mut |entry, prepared| {
                    seen.push((entry.to_owned(), prepared.clone()));
                    Ok(())
                },
            };
            let read = pipelined(reading(n, false), consumer, prepare_on).unwrap();
            assert_eq!(read, n);
            assert_eq!(seen.len(), n, "{prepare_on:?}");
            assert!(seen.iter().enumerate().all(|(i, (e, prepared))| {
                e.realtime_us == i as i64
                    && e.message == format!("m{i}").as_bytes()
                    && e.host.as_deref() == Some("mx1")
                    && *prepared == format!("{i}:{}", format!("m{i}").len())
            }));
        }
    }

    #[test]
    fn the_consumers_error_stops_reading_and_the_readers_is_returned() {
        let mut count = 0;
        let error = pipelined(
            reading(10 * BATCH_ENTRIES, false),
            Consumer::unprepared(&mut |_, _| {
                count += 1;
                if count == 5 {
                    anyhow::bail!("consumer gives up");
                }
                Ok(())
            }),
            PrepareOn::Reader,
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "consumer gives up");

        let mut count = 0;
        let error = pipelined(
            reading(7, true),
            Consumer::unprepared(&mut |_, _| {
                count += 1;
                Ok(())
            }),
            PrepareOn::Consumer,
        )
        .unwrap_err();
        assert_eq!((error.to_string(), count), ("broken after 7".to_owned(), 7));
    }
}
