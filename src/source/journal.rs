//! Reading postgrey's entries from the systemd journal through sd-journal.
//!
//! Entries are selected by `SYSLOG_IDENTIFIER`, which any local user can set (`logger -t
//! postgrey …`), so it is no evidence of who wrote an entry. Evidence is what journald records
//! itself from kernel credentials and cgroups: `_SYSTEMD_UNIT` and `_UID`. An entry is
//! [`Origin::Trusted`] when one of them says postgrey ([`Trust`]); every other entry is still
//! handed on, as [`Origin::Untrusted`], so that it can be counted and reported but never tallied.
//!
//! Reading can start at a time, in one pass in journal order, or right after the cursors saved
//! by an earlier run ([`Start`]). A cursor names one entry, and "after it" means after it in
//! sd-journal's order, which interleaves the entries of all files by realtime. That order only
//! grows at its end for the journal of one machine. A directory gathered from several machines
//! (`systemd-journal-remote`) also grows in the middle: another machine's entries arrive later
//! with earlier stamps, and would all fall before a single cursor. So each machine
//! (`_MACHINE_ID`) is read in a pass of its own, after its own cursor ([`Start::AfterCursors`]);
//! entries without a machine id (journald sets it on every entry, but hand-made export text may
//! lack it) are one more pass, [`NO_MACHINE`], which skips the other machines' entries.
//!
//! When a cursor's entry was vacuumed or rotated away, sd-journal silently positions on the
//! "closest" entry instead. [`read`] detects that with `sd_journal_test_cursor` and then resumes
//! that machine from a fallback time, reporting [`MachineRead::cursor_lost`].
//!
//! sd-journal also silently skips journal files it cannot open, so a user who is not in group
//! `systemd-journal` would see an empty journal rather than an error; [`read`] checks for that
//! and fails with [`AccessError`].

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use systemd::journal::{Journal, OpenDirectoryOptions, OpenFilesOptions, OpenOptions};

use super::{Consumer, Entry, Origin, PrepareOn, journal_files};

/// Directories where journald keeps the system journal (persistent, volatile).
const SYSTEM_JOURNAL_DIRS: [&str; 2] = ["/var/log/journal", "/run/log/journal"];

/// Longest MESSAGE read in full; longer ones are cut (postgrey never logs that much).
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Which journal files to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// This machine's system journal (like plain `journalctl`).
    System,
    /// All journal files in a directory (like `journalctl -D DIR`).
    Directory(PathBuf),
    /// These journal files (like `journalctl --file FILE…`).
    Files(Vec<PathBuf>),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::System => {
                write!(f, "the system journal ({})", SYSTEM_JOURNAL_DIRS.join(", "))
            }
            Location::Directory(dir) => write!(f, "journal directory {}", dir.display()),
            Location::Files(files) => {
                let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
                write!(f, "journal file(s) {}", names.join(", "))
            }
        }
    }
}

/// Which entries journald vouches for as postgrey's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// `_SYSTEMD_UNIT` of postgrey's service.
    pub unit: String,
    /// `_UID`s that postgrey runs as (root starts it; the daemon drops to its own user).
    pub uids: Vec<u32>,
    /// Trust every entry with the identifier (for journals whose credentials mean nothing here).
    pub any: bool,
}

impl Trust {
    /// The service name of Debian's postgrey package.
    pub const DEFAULT_UNIT: &'static str = "postgrey.service";

    /// Root and, when it exists on this machine, the `postgrey` user.
    pub fn default_uids() -> Vec<u32> {
        let mut uids = vec![0];
        // A lookup failure (no NSS, broken passwd) only means fewer trusted uids.
        if let Ok(Some(user)) = nix::unistd::User::from_name("postgrey") {
            let uid = user.uid.as_raw();
            if !uids.contains(&uid) {
                uids.push(uid);
            }
        }
        uids
    }

    /// The origin of an entry with these journald-set fields (raw values, maybe absent).
    pub fn origin(&self, systemd_unit: Option<&[u8]>, uid: Option<&[u8]>) -> Origin {
        self.origin_by_unit(systemd_unit)
            .unwrap_or_else(|| self.origin_by_uid(uid))
    }

    /// [`Origin::Trusted`] when `--trust-any` or the unit vouches for the entry; `None` when
    /// the `_UID` decides.
    fn origin_by_unit(&self, systemd_unit: Option<&[u8]>) -> Option<Origin> {
        (self.any || systemd_unit.is_some_and(|unit| unit == self.unit.as_bytes()))
            .then_some(Origin::Trusted)
    }

    fn origin_by_uid(&self, uid: Option<&[u8]>) -> Origin {
        let uid = uid
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .and_then(|text| text.parse::<u32>().ok());
        match uid {
            Some(uid) if self.uids.contains(&uid) => Origin::Trusted,
            _ => Origin::Untrusted,
        }
    }
}

impl Default for Trust {
    fn default() -> Self {
        Trust {
            unit: Self::DEFAULT_UNIT.to_string(),
            uids: Self::default_uids(),
            any: false,
        }
    }
}

/// What to read and whom to believe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSpec {
    pub location: Location,
    /// `SYSLOG_IDENTIFIER` of postgrey's entries.
    pub identifier: String,
    pub trust: Trust,
}

/// Where reading begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Entries at or after this time (µs since the epoch); `None` = the oldest entry. One pass
    /// over all machines in journal order; [`ReadSummary::machines`] stays empty.
    Time(Option<i64>),
    /// Each machine's entries after its own saved position, one pass per machine present in
    /// the journal (see the module docs). A machine without a saved position starts at
    /// `default_since_us` (`None` = its oldest entry).
    AfterCursors {
        machines: BTreeMap<String, Resume>,
        default_since_us: Option<i64>,
    },
}

/// The key of the entries that have no `_MACHINE_ID` (or an empty or non-UTF-8 one).
pub const NO_MACHINE: &str = "";

/// Where one machine's reading resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The last entry read of this machine. `None` once a lost cursor was given up and no
    /// entry has been read since: then reading starts at `fallback_since_us`.
    pub cursor: Option<String>,
    /// Entries at or after this time (µs) when there is no cursor or its entry is gone
    /// (vacuumed, rotated away, files not given); [`MachineRead::cursor_lost`] is set then.
    pub fallback_since_us: i64,
}

/// How the pass over one machine's entries ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineRead {
    /// Cursor of the last entry of the pass (handed on or not), to resume after it next time.
    /// `None` when the pass read no entry; keep the previous position then.
    pub last_cursor: Option<String>,
    /// Realtime stamp of that entry (µs since the epoch).
    pub last_realtime_us: Option<i64>,
    /// The saved cursor's entry no longer exists: the pass resumed from the fallback time, and
    /// entries of this machine logged between the cursor and the oldest entry still present may
    /// have been lost.
    pub cursor_lost: bool,
}

/// What a [`read`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Entries handed to the callback (trusted and untrusted).
    pub entries: u64,
    /// Of those, entries journald does not vouch for ([`Origin::Untrusted`]).
    pub untrusted: u64,
    /// Entries with the identifier but without a MESSAGE field; not handed on.
    pub without_message: u64,
    /// Realtime stamp of the newest entry read (µs since the epoch), handed on or not.
    pub last_realtime_us: Option<i64>,
    /// For [`Start::AfterCursors`]: every machine present in the journal, and [`NO_MACHINE`],
    /// with how its pass ended.
    pub machines: BTreeMap<String, MachineRead>,
    /// Journal files of the directory or list that sd-journal could not open, and so skipped
    /// without a word (see [`super::journal_files`]).
    pub skipped_files: Vec<PathBuf>,
}

impl ReadSummary {
    /// True when some machine's saved cursor no longer exists.
    pub fn cursor_lost(&self) -> bool {
        self.machines.values().any(|machine| machine.cursor_lost)
    }
}

/// The journal cannot be read, in a way the postmaster can fix.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "permission denied reading {}: add the user to group `systemd-journal` (or `adm`), \
         e.g. `usermod -a -G systemd-journal USER`, and log in again",
        .path.display()
    )]
    PermissionDenied { path: PathBuf },
    #[error("no journal files found in {location}")]
    NoFiles { location: String },
}

/// Reads the entries of `spec.identifier` from `start` until `until_us` (exclusive), handing
/// each to `on_entry`: in journal order for [`Start::Time`], machine by machine (each in
/// journal order) for [`Start::AfterCursors`]. An error from `on_entry` stops reading and is
/// returned. Entries come without cursor (see [`read_with_details`]); their host is
/// `_HOSTNAME`, looked up per entry only when the journal holds several (see [`HostSource`]).
pub fn read<P: Send>(
    spec: &JournalSpec,
    start: Start,
    until_us: Option<i64>,
    consumer: Consumer<'_, P>,
) -> Result<ReadSummary> {
    super::pipelined(
        move |on_entry| read_as(spec, start, until_us, false, on_entry),
        consumer,
        PrepareOn::Consumer,
    )
}

/// [`read`], with each entry's `_HOSTNAME` and cursor looked up: two more lookups per entry,
/// for tests and for looking into a journal by hand.
pub fn read_with_details(
    spec: &JournalSpec,
    start: Start,
    until_us: Option<i64>,
    on_entry: &mut dyn FnMut(Entry<'_>) -> Result<()>,
) -> Result<ReadSummary> {
    read_as(spec, start, until_us, true, on_entry)
}

fn read_as(
    spec: &JournalSpec,
    start: Start,
    until_us: Option<i64>,
    details: bool,
    on_entry: &mut dyn FnMut(Entry<'_>) -> Result<()>,
) -> Result<ReadSummary> {
    let location = &spec.location;
    journal_files::raise_open_file_limit();
    let mut journal = open(location)?;
    journal
        .set_data_threshold(MAX_MESSAGE_BYTES)
        .with_context(|| format!("setting up {location}"))?;
    let expected = match location {
        Location::System => Vec::new(),
        Location::Directory(dir) => journal_files::journal_files_in(dir),
        Location::Files(files) => files.clone(),
    };
    let skipped_files = journal_files::skipped(&expected, &journal_files::open_files());
    let hosts = if details {
        HostSource::PerEntry
    } else {
        HostSource::of(&mut journal).with_context(|| format!("listing the hosts in {location}"))?
    };

    let mut reader = Reader {
        journal,
        spec,
        until_us,
        summary: ReadSummary {
            skipped_files,
            ..ReadSummary::default()
        },
        on_entry,
        details,
        hosts,
        fields: Fields::default(),
    };
    match start {
        Start::Time(since_us) => {
            reader
                .begin(Scope::All, |journal| {
                    seek_time(journal, since_us)?;
                    Ok(since_us)
                })
                .with_context(|| format!("seeking in {location}"))?;
            reader.pass(Scope::All, since_us)?;
        }
        Start::AfterCursors {
            machines,
            default_since_us,
        } => {
            let present = machine_ids(&mut reader.journal)
                .with_context(|| format!("listing the machines in {location}"))?;
            for machine in present.iter().map(String::as_str).chain([NO_MACHINE]) {
                let scope = Scope::of(machine);
                let mut lost = false;
                let since_us = reader
                    .begin(scope, |journal| match machines.get(machine) {
                        None => {
                            seek_time(journal, default_since_us)?;
                            Ok(default_since_us)
                        }
                        Some(resume) => {
                            position(journal, &spec.identifier, scope, resume, &mut lost)
                        }
                    })
                    .with_context(|| match machines.get(machine) {
                        Some(Resume {
                            cursor: Some(cursor),
                            ..
                        }) => format!("seeking to journal cursor {cursor:?} in {location}"),
                        _ => format!("seeking in {location}"),
                    })?;
                let mut read = reader.pass(scope, since_us)?;
                read.cursor_lost = lost;
                reader.summary.machines.insert(machine.to_string(), read);
            }
        }
    }
    Ok(reader.summary)
}

/// Which entries a pass reads, beyond the identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope<'a> {
    /// Every machine's.
    All,
    /// Those of the machine with this `_MACHINE_ID`.
    Machine(&'a str),
    /// Those without a usable `_MACHINE_ID` ([`NO_MACHINE`]).
    NoMachine,
}

impl<'a> Scope<'a> {
    fn of(machine: &'a str) -> Self {
        if machine == NO_MACHINE {
            Scope::NoMachine
        } else {
            Scope::Machine(machine)
        }
    }

    /// Sets the journal's matches to the entries of this scope, as far as matches can say: a
    /// match cannot ask for a field's absence, nor for its first value.
    fn set_matches(self, journal: &mut Journal, identifier: &str) -> systemd::Result<()> {
        journal.match_flush()?;
        journal.match_add("SYSLOG_IDENTIFIER", identifier)?;
        if let Scope::Machine(machine) = self {
            journal.match_add("_MACHINE_ID", machine)?;
        }
        Ok(())
    }

    /// Whether the current entry, which passed the matches, is this scope's. An entry belongs to
    /// the machine its first `_MACHINE_ID` names, so that one with several (hand-made) is still
    /// read by one pass only.
    fn owns_current(self, journal: &mut Journal) -> systemd::Result<bool> {
        let wanted = match self {
            Scope::All => return Ok(true),
            Scope::Machine(machine) => Some(machine),
            Scope::NoMachine => None,
        };
        let data = journal.get_data(c"_MACHINE_ID")?;
        Ok(data.as_ref().and_then(|d| d.value()).and_then(machine_key) == wanted)
    }
}

/// The machine a `_MACHINE_ID` value names; `None` for one that cannot be a key (empty, not
/// UTF-8): such entries are [`NO_MACHINE`]'s.
fn machine_key(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(raw).ok().filter(|id| !id.is_empty())
}

/// Every machine that has entries in the journal (of any program: `sd_journal_query_unique`
/// ignores matches; a machine without postgrey entries costs one empty pass).
fn machine_ids(journal: &mut Journal) -> systemd::Result<BTreeSet<String>> {
    journal.query_unique("_MACHINE_ID")?;
    let mut machines = BTreeSet::new();
    while let Some(data) = journal.enumerate_unique()? {
        if let Some(machine) = data.value().and_then(machine_key) {
            machines.insert(machine.to_string());
        }
    }
    Ok(machines)
}

/// One [`read`]: the journal, what to read, and what was seen so far.
struct Reader<'a> {
    journal: Journal,
    spec: &'a JournalSpec,
    until_us: Option<i64>,
    summary: ReadSummary,
    on_entry: &'a mut dyn FnMut(Entry<'_>) -> Result<()>,
    /// Whether entries carry their cursor.
    details: bool,
    hosts: HostSource,
    fields: Fields,
}

/// Where an entry's host (`_HOSTNAME`) comes from. A lookup per entry costs as much as the
/// MESSAGE's, and the journal of one machine names one host: only a journal that holds several
/// host names (a directory gathered from several MX hosts) is asked entry by entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostSource {
    /// The journal names only this `_HOSTNAME` (`None`: none at all); an entry without one,
    /// which journald never writes, is taken for that host's too.
    Only(Option<Vec<u8>>),
    PerEntry,
}

impl HostSource {
    /// Asks the journal which `_HOSTNAME` values it holds (of any program's entries:
    /// `sd_journal_query_unique` ignores matches, so a second host there costs lookups only).
    fn of(journal: &mut Journal) -> systemd::Result<HostSource> {
        journal.query_unique("_HOSTNAME")?;
        let mut only = None;
        while let Some(data) = journal.enumerate_unique()? {
            let host = data.value().unwrap_or_default();
            match &only {
                None => only = Some(host.to_vec()),
                Some(seen) if seen.as_slice() == host => {}
                Some(_) => return Ok(HostSource::PerEntry),
            }
        }
        Ok(HostSource::Only(only))
    }
}

/// The current entry's fields, copied out of sd-journal (whose pointers only last until the
/// next lookup) into buffers reused from entry to entry.
#[derive(Default)]
struct Fields {
    message: Vec<u8>,
    /// `None` when the entry has no `_HOSTNAME`.
    host: Option<Vec<u8>>,
    cursor: String,
}

impl Reader<'_> {
    /// Sets the matches of `scope` and positions the read pointer with `seek`, which returns the
    /// earliest realtime still to read (entries before it are skipped).
    fn begin(
        &mut self,
        scope: Scope<'_>,
        seek: impl FnOnce(&mut Journal) -> systemd::Result<Option<i64>>,
    ) -> systemd::Result<Option<i64>> {
        scope.set_matches(&mut self.journal, &self.spec.identifier)?;
        seek(&mut self.journal)
    }

    /// Reads the entries of `scope` from the current position to the end (or `until_us`).
    ///
    /// The pass resumes next time after its last entry (another machine's too: it is never read
    /// again). Its cursor is looked up once, at the end: on the entry the pointer rests on when
    /// the journal ends, one step back when `until_us` stopped the pass. Only an entry skipped
    /// for being older than `since_us` (a file out of time order) makes the pass take the
    /// cursor of the entry before it on the spot.
    fn pass(&mut self, scope: Scope<'_>, since_us: Option<i64>) -> Result<MachineRead> {
        let location = &self.spec.location;
        let mut read = MachineRead::default();
        // The pointer rests on the pass's last entry, whose cursor is not taken yet.
        let mut on_last = false;
        loop {
            let advanced = self
                .journal
                .next()
                .with_context(|| format!("reading {location}"))?;
            if advanced == 0 {
                break;
            }
            let realtime_us =
                realtime_of(&self.journal).with_context(|| format!("reading {location}"))?;
            if self.until_us.is_some_and(|until| realtime_us >= until) {
                if on_last {
                    self.journal
                        .previous()
                        .with_context(|| format!("reading {location}"))?;
                }
                break;
            }
            if since_us.is_some_and(|since| realtime_us < since) {
                // Only an entry from a file that interleaves out of time order lands here.
                if on_last {
                    self.journal
                        .previous()
                        .with_context(|| format!("reading {location}"))?;
                    read.last_cursor = Some(
                        self.journal
                            .cursor()
                            .with_context(|| format!("reading {location}"))?,
                    );
                    self.journal
                        .next()
                        .with_context(|| format!("reading {location}"))?;
                    on_last = false;
                }
                continue;
            }
            on_last = true;
            read.last_realtime_us = Some(realtime_us);
            let owned = scope
                .owns_current(&mut self.journal)
                .with_context(|| format!("reading an entry of {location}"))?;
            if !owned {
                continue;
            }
            self.summary.last_realtime_us = self.summary.last_realtime_us.max(Some(realtime_us));
            let origin = read_fields(
                &mut self.journal,
                &self.spec.trust,
                self.details,
                self.hosts == HostSource::PerEntry,
                &mut self.fields,
            )
            .with_context(|| format!("reading an entry of {location}"))?;
            let Some(origin) = origin else {
                self.summary.without_message += 1;
                continue;
            };
            self.summary.entries += 1;
            if origin == Origin::Untrusted {
                self.summary.untrusted += 1;
            }
            let fields = &self.fields;
            let host = match &self.hosts {
                HostSource::Only(host) => host.as_deref(),
                HostSource::PerEntry => fields.host.as_deref(),
            };
            (self.on_entry)(Entry {
                realtime_us,
                message: &fields.message,
                origin,
                host,
                cursor: self.details.then_some(fields.cursor.as_str()),
            })?;
        }
        if on_last {
            read.last_cursor = Some(
                self.journal
                    .cursor()
                    .with_context(|| format!("reading {location}"))?,
            );
        }
        Ok(read)
    }
}

/// Positions the read pointer (matches of `scope` set) after `resume`'s cursor so that the next
/// `next()` yields the first entry to read, and returns the earliest realtime still to read.
/// Sets `lost` when the cursor's entry is gone and reading falls back to the saved time.
fn position(
    journal: &mut Journal,
    identifier: &str,
    scope: Scope<'_>,
    resume: &Resume,
    lost: &mut bool,
) -> systemd::Result<Option<i64>> {
    let fallback = Some(resume.fallback_since_us);
    // The pass for entries without a machine id moves over every machine's entries, so its
    // cursor names another host's entry more often than not: when that host's files go, the
    // cursor is gone although nothing of this pass was lost. It resumes by time.
    let cursor = match (scope, &resume.cursor) {
        (Scope::NoMachine, _) | (_, None) => {
            seek_time(journal, fallback)?;
            return Ok(fallback);
        }
        (_, Some(cursor)) => cursor,
    };
    match seek_after_cursor(journal, identifier, scope, cursor)? {
        CursorSeek::Found => Ok(None),
        CursorSeek::Lost => {
            *lost = true;
            seek_time(journal, fallback)?;
            Ok(fallback)
        }
    }
}

/// Seeks to the first entry at or after `since_us` (`None`: the oldest).
fn seek_time(journal: &mut Journal, since_us: Option<i64>) -> systemd::Result<()> {
    match since_us.map(u64::try_from) {
        Some(Ok(usec)) => journal.seek_realtime_usec(usec),
        // No time, or one before the epoch.
        _ => journal.seek_head(),
    }
}

enum CursorSeek {
    /// The next `next()` yields the first entry after the cursor's.
    Found,
    /// The cursor's entry is not in the journal any more.
    Lost,
}

/// Seeks right after the entry `cursor` names, without skipping an entry that is not it.
///
/// `sd_journal_seek_cursor` + `sd_journal_next` lands on the cursor's entry when it exists and
/// passes the matches, otherwise on the closest following entry that passes them: skipping that
/// one blindly loses an entry (systemd#30288), so `sd_journal_test_cursor` decides. When the
/// landed entry is not the cursor's, a second look without matches tells a cursor that names
/// an entry the matches do not pass (which still exists: go on from the landed entry) from one
/// whose entry is gone (vacuumed, rotated away: lost).
fn seek_after_cursor(
    journal: &mut Journal,
    identifier: &str,
    scope: Scope<'_>,
    cursor: &str,
) -> systemd::Result<CursorSeek> {
    journal.seek_cursor(cursor)?;
    if journal.next()? > 0 && journal.test_cursor(cursor)? {
        return Ok(CursorSeek::Found);
    }

    journal.match_flush()?;
    journal.seek_cursor(cursor)?;
    let exists = journal.next()? > 0 && journal.test_cursor(cursor)?;
    scope.set_matches(journal, identifier)?;
    if !exists {
        return Ok(CursorSeek::Lost);
    }
    // The cursor's entry is not one of ours: the first of ours after it is still unread.
    journal.seek_cursor(cursor)?;
    Ok(CursorSeek::Found)
}

fn realtime_of(journal: &Journal) -> systemd::Result<i64> {
    let usec = journal.timestamp_usec()?;
    // Journal stamps are far below i64::MAX µs (year 294247); saturate rather than wrap.
    Ok(i64::try_from(usec).unwrap_or(i64::MAX))
}

/// Reads the current entry's MESSAGE into `fields` and tells its origin; `None` when it has no
/// MESSAGE. `_UID` is looked up only when `_SYSTEMD_UNIT` does not already vouch for it, the
/// host only with `host`, the cursor only with `details`.
fn read_fields(
    journal: &mut Journal,
    trust: &Trust,
    details: bool,
    host: bool,
    fields: &mut Fields,
) -> systemd::Result<Option<Origin>> {
    fields.message.clear();
    match journal.get_data(c"MESSAGE")? {
        Some(data) => fields
            .message
            .extend_from_slice(data.value().unwrap_or_default()),
        None => return Ok(None),
    }
    let origin = {
        let unit = journal.get_data(c"_SYSTEMD_UNIT")?;
        trust.origin_by_unit(unit.as_ref().and_then(|d| d.value()))
    };
    let origin = match origin {
        Some(origin) => origin,
        None => {
            let uid = journal.get_data(c"_UID")?;
            trust.origin_by_uid(uid.as_ref().and_then(|d| d.value()))
        }
    };
    if host {
        match (journal.get_data(c"_HOSTNAME")?, &mut fields.host) {
            (Some(data), Some(kept)) => {
                kept.clear();
                kept.extend_from_slice(data.value().unwrap_or_default());
            }
            (Some(data), kept) => *kept = Some(data.value().unwrap_or_default().to_vec()),
            (None, kept) => *kept = None,
        }
    }
    if details {
        fields.cursor = journal.cursor()?;
    }
    Ok(Some(origin))
}

/// Opens `location`, failing when sd-journal could open none of its files or, for lack of
/// permission, not all of the ones that matter.
fn open(location: &Location) -> Result<Journal> {
    let journal = match location {
        Location::System => OpenOptions::default()
            .local_only(true)
            .open()
            .with_context(|| format!("opening {location}"))?,
        Location::Directory(dir) => {
            let metadata = std::fs::metadata(dir).with_context(|| format!("opening {location}"))?;
            if !metadata.is_dir() {
                anyhow::bail!("opening {location}: not a directory");
            }
            // Before opening: sd-journal refuses an unreadable directory with a bare EACCES.
            let unreadable = unreadable_journal_files(std::slice::from_ref(dir), 1, |_| true);
            if let Some(path) = unreadable.into_iter().next() {
                return Err(AccessError::PermissionDenied { path }.into());
            }
            OpenDirectoryOptions::default()
                .open_directory(c_path(dir)?)
                .with_context(|| format!("opening {location}"))?
        }
        Location::Files(files) => {
            for file in files {
                check_readable(file)?;
            }
            let paths = files
                .iter()
                .map(|file| c_path(file))
                .collect::<Result<Vec<_>>>()?;
            OpenFilesOptions::default()
                .open_files(paths.iter())
                .with_context(|| format!("opening {location}"))?
        }
    };

    let opened_any = journal
        .usage()
        .with_context(|| format!("opening {location}"))?
        > 0;
    if *location == Location::System {
        let unreadable = unreadable_journal_files(
            &this_machines_journal_dirs(),
            0,
            // Other users' journals may be closed to us; postgrey logs to the system journal.
            |name| !opened_any || name.starts_with(b"system"),
        );
        if let Some(path) = unreadable.into_iter().next() {
            return Err(AccessError::PermissionDenied { path }.into());
        }
    }
    if !opened_any {
        return Err(AccessError::NoFiles {
            location: location.to_string(),
        }
        .into());
    }
    Ok(journal)
}

/// `/var/log/journal/<machine-id>` and `/run/log/journal/<machine-id>`: the default
/// namespace of this machine, what `sd_journal_open(SD_JOURNAL_LOCAL_ONLY)` reads.
fn this_machines_journal_dirs() -> Vec<PathBuf> {
    match std::fs::read_to_string("/etc/machine-id") {
        Ok(id) if !id.trim().is_empty() => SYSTEM_JOURNAL_DIRS
            .iter()
            .map(|root| Path::new(root).join(id.trim()))
            .collect(),
        // Without a machine id there is nothing to check against; sd-journal found what it found.
        _ => Vec::new(),
    }
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("path {} contains a NUL byte", path.display()))
}

fn check_readable(file: &Path) -> Result<()> {
    match File::open(file) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            Err(AccessError::PermissionDenied {
                path: file.to_path_buf(),
            }
            .into())
        }
        Err(error) => {
            Err(error).with_context(|| format!("opening journal file {}", file.display()))
        }
    }
}

/// Journal files (and directories) in `roots`, and `depth` levels of subdirectories, that we
/// may not read, among those whose file name passes `relevant`.
fn unreadable_journal_files(
    roots: &[PathBuf],
    depth: u32,
    relevant: impl Fn(&[u8]) -> bool,
) -> Vec<PathBuf> {
    let mut unreadable = Vec::new();
    for root in roots {
        scan_for_unreadable(root, depth, &relevant, &mut unreadable);
    }
    unreadable
}

fn scan_for_unreadable(
    dir: &Path,
    depth_left: u32,
    relevant: &impl Fn(&[u8]) -> bool,
    unreadable: &mut Vec<PathBuf>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            unreadable.push(dir.to_path_buf());
            return;
        }
        // Missing (no persistent journal) or unreadable for other reasons: sd-journal says so.
        Err(_) => return,
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.as_bytes();
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if is_dir {
            if depth_left > 0 {
                scan_for_unreadable(&path, depth_left - 1, relevant, unreadable);
            }
        } else if (name.ends_with(b".journal") || name.ends_with(b".journal~"))
            && relevant(name)
            && File::open(&path).is_err_and(|error| error.kind() == io::ErrorKind::PermissionDenied)
        {
            unreadable.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::OwnedEntry;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/journal");
    /// 2026-11-27T10:00:00Z, the first entry of `source-a.export`.
    const T0: i64 = 1_795_773_600_000_000;
    const SECOND: i64 = 1_000_000;
    /// Every fixture entry is this many µs into its second.
    const FRACTION: i64 = 123_456;
    /// `_MACHINE_ID` of every fixture entry.
    const MACHINE: &str = "0a1b2c3d4e5f40718293a4b5c6d7e8f9";

    fn trust() -> Trust {
        Trust {
            unit: "postgrey.service".to_string(),
            uids: vec![0, 102],
            any: false,
        }
    }

    /// Builds a real journal file from an export-format fixture.
    fn build_journal(dir: &Path, fixture: &str) -> PathBuf {
        let output = dir.join(fixture.replace(".export", ".journal"));
        let status = Command::new("/lib/systemd/systemd-journal-remote")
            .arg(format!("--output={}", output.display()))
            .arg(Path::new(FIXTURES).join(fixture))
            .status()
            .expect("systemd-journal-remote runs (package systemd-journal-remote)");
        assert!(
            status.success(),
            "systemd-journal-remote failed on {fixture}"
        );
        output
    }

    fn spec(location: Location, trust: Trust) -> JournalSpec {
        JournalSpec {
            location,
            identifier: "postgrey".to_string(),
            trust,
        }
    }

    fn read_all(
        spec: &JournalSpec,
        start: Start,
        until: Option<i64>,
    ) -> (Vec<OwnedEntry>, ReadSummary) {
        let mut entries = Vec::new();
        let summary = read_with_details(spec, start, until, &mut |entry| {
            entries.push(entry.to_owned());
            Ok(())
        })
        .expect("journal reads");
        (entries, summary)
    }

    /// Each machine's entries after its saved position (machine, cursor, fallback time); other
    /// machines' from their oldest entry.
    fn after_cursors(resumes: &[(&str, Option<&str>, i64)]) -> Start {
        Start::AfterCursors {
            machines: resumes
                .iter()
                .map(|(machine, cursor, fallback_since_us)| {
                    let resume = Resume {
                        cursor: cursor.map(str::to_string),
                        fallback_since_us: *fallback_since_us,
                    };
                    (machine.to_string(), resume)
                })
                .collect(),
            default_since_us: None,
        }
    }

    /// `MACHINE`'s entries after the entry `cursor` names.
    fn after_cursor(cursor: &str, fallback_since_us: i64) -> Start {
        after_cursors(&[(MACHINE, Some(cursor), fallback_since_us)])
    }

    fn offsets(entries: &[OwnedEntry]) -> Vec<i64> {
        entries
            .iter()
            .map(|entry| (entry.realtime_us - T0) / SECOND)
            .collect()
    }

    /// Builds a real journal file `NAME.journal` of postgrey entries, one per (realtime µs,
    /// `_MACHINE_ID` or none, `_HOSTNAME`).
    fn build_postgrey_journal(dir: &Path, name: &str, entries: &[(i64, Option<&str>, &str)]) {
        let mut export = String::new();
        for (realtime_us, machine, host) in entries {
            export.push_str(&format!(
                "__REALTIME_TIMESTAMP={realtime_us}\n__MONOTONIC_TIMESTAMP={realtime_us}\n\
                 _BOOT_ID=5e4a1d0c7b3f4e2a9d8c6b5a4f3e2d1c\n"
            ));
            if let Some(machine) = machine {
                export.push_str(&format!("_MACHINE_ID={machine}\n"));
            }
            export.push_str(&format!(
                "_HOSTNAME={host}\n_UID=0\n_SYSTEMD_UNIT=postgrey.service\n\
                 SYSLOG_IDENTIFIER=postgrey\nMESSAGE=action=greylist, reason=new, \
                 client_name=a.example.com, client_address=192.0.2.1/32, sender=a@example.com, \
                 recipient=b@example.net\n\n"
            ));
        }
        let input = dir.join(format!("{name}.export"));
        std::fs::write(&input, export).unwrap();
        let status = Command::new("/lib/systemd/systemd-journal-remote")
            .arg(format!(
                "--output={}",
                dir.join(format!("{name}.journal")).display()
            ))
            .arg(&input)
            .status()
            .expect("systemd-journal-remote runs (package systemd-journal-remote)");
        assert!(status.success(), "systemd-journal-remote failed on {name}");
        std::fs::remove_file(input).unwrap();
    }

    fn journal_a() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = build_journal(dir.path(), "source-a.export");
        (dir, file)
    }

    #[test]
    fn origin_follows_unit_and_uid_set_by_journald() {
        let trust = trust();
        assert_eq!(
            trust.origin(Some(b"postgrey.service"), Some(b"104")),
            Origin::Trusted
        );
        assert_eq!(trust.origin(None, Some(b"0")), Origin::Trusted);
        assert_eq!(trust.origin(None, Some(b"102")), Origin::Trusted);
        assert_eq!(trust.origin(None, Some(b"1000")), Origin::Untrusted);
        assert_eq!(
            trust.origin(Some(b"cron.service"), Some(b"1000")),
            Origin::Untrusted
        );
        assert_eq!(
            trust.origin(Some(b"postgrey.service "), None),
            Origin::Untrusted
        );
        assert_eq!(trust.origin(None, Some(b"0x0")), Origin::Untrusted);
        assert_eq!(trust.origin(None, None), Origin::Untrusted);
        let any = Trust { any: true, ..trust };
        assert_eq!(any.origin(None, Some(b"1000")), Origin::Trusted);
    }

    #[test]
    fn default_uids_are_root_and_the_local_postgrey_user() {
        let expected_postgrey = nix::unistd::User::from_name("postgrey")
            .unwrap()
            .map(|user| user.uid.as_raw());
        let mut expected = vec![0];
        expected.extend(expected_postgrey);
        assert_eq!(Trust::default_uids(), expected);
        assert_eq!(Trust::default().unit, "postgrey.service");
    }

    #[test]
    fn reads_postgrey_entries_with_origin_host_and_raw_bytes() {
        let (_dir, file) = journal_a();
        let (entries, summary) = read_all(
            &spec(Location::Files(vec![file]), trust()),
            Start::Time(None),
            None,
        );

        assert_eq!(offsets(&entries), vec![1, 2, 3, 5, 7, 8, 9, 10]);
        let origins: Vec<Origin> = entries.iter().map(|entry| entry.origin).collect();
        use Origin::{Trusted, Untrusted};
        assert_eq!(
            origins,
            vec![
                Trusted, Trusted, Untrusted, Trusted, Untrusted, Trusted, Trusted, Trusted
            ]
        );
        let hosts: Vec<&str> = entries
            .iter()
            .map(|entry| entry.host.as_deref().unwrap_or("-"))
            .collect();
        assert_eq!(
            hosts,
            vec!["mx1", "mx1", "mx1", "mx1", "mx2", "mx1", "mx1", "mx1"]
        );
        assert_eq!(
            entries[0].message,
            b"action=greylist, reason=new, client_name=a.mail.example.com, \
              client_address=192.0.2.1/32, sender=alice@example.com, recipient=bob@example.net"
        );
        assert_eq!(
            entries[3].message,
            b"action=greylist, reason=new, client_name=b\xffc.example.org, \
              client_address=198.51.100.7/32, sender=x@example.org, recipient=bob@example.net"
        );
        assert!(entries.iter().all(|entry| entry.cursor.is_some()));
        assert_eq!(
            summary,
            ReadSummary {
                entries: 8,
                untrusted: 2,
                without_message: 1,
                last_realtime_us: Some(T0 + 10 * SECOND + FRACTION),
                machines: BTreeMap::new(),
                skipped_files: Vec::new(),
            }
        );
        assert!(!summary.cursor_lost());
    }

    #[test]
    fn trust_uid_and_trust_any_widen_what_is_trusted() {
        let (_dir, file) = journal_a();
        let location = Location::Files(vec![file]);
        let with_uid = Trust {
            uids: vec![0, 102, 104],
            ..trust()
        };
        let (_, summary) = read_all(&spec(location.clone(), with_uid), Start::Time(None), None);
        assert_eq!((summary.entries, summary.untrusted), (8, 1));

        let any = Trust {
            any: true,
            ..trust()
        };
        let (_, summary) = read_all(&spec(location, any), Start::Time(None), None);
        assert_eq!((summary.entries, summary.untrusted), (8, 0));
    }

    #[test]
    fn other_identifier_selects_other_entries() {
        let (_dir, file) = journal_a();
        let mut other = spec(Location::Files(vec![file]), trust());
        other.identifier = "postfix/smtpd".to_string();
        let (entries, summary) = read_all(&other, Start::Time(None), None);
        assert_eq!(offsets(&entries), vec![6]);
        assert_eq!(summary.untrusted, 1);
    }

    #[test]
    fn time_window_is_half_open() {
        let (_dir, file) = journal_a();
        let spec = spec(Location::Files(vec![file]), trust());
        let (entries, summary) = read_all(
            &spec,
            Start::Time(Some(T0 + 3 * SECOND)),
            Some(T0 + 9 * SECOND),
        );
        assert_eq!(offsets(&entries), vec![3, 5, 7, 8]);
        assert_eq!(summary.last_realtime_us, Some(T0 + 8 * SECOND + FRACTION));
        assert_eq!(summary.without_message, 1);
    }

    #[test]
    fn resumes_exactly_after_a_cursor() {
        let (_dir, file) = journal_a();
        let spec = spec(Location::Files(vec![file]), trust());
        let (all, _) = read_all(&spec, Start::Time(None), None);

        for split in 0..all.len() {
            let start = after_cursor(
                all[split].cursor.as_deref().unwrap(),
                all[split].realtime_us + 1,
            );
            let (rest, summary) = read_all(&spec, start, None);
            assert_eq!(
                offsets(&rest),
                offsets(&all[split + 1..]),
                "after entry {split}"
            );
            assert!(!summary.cursor_lost());
        }
        let last = all.last().unwrap();
        let start = after_cursor(last.cursor.as_deref().unwrap(), last.realtime_us + 1);
        let (rest, summary) = read_all(&spec, start, None);
        assert!(rest.is_empty());
        assert_eq!(summary.machines[MACHINE], MachineRead::default());
    }

    /// systemd#30288: a cursor naming an entry the filter does not pass must not cost the
    /// following postgrey entry.
    #[test]
    fn cursor_of_another_programs_entry_skips_nothing() {
        let (_dir, file) = journal_a();
        let mut journal = OpenFilesOptions::default()
            .open_files([c_path(&file).unwrap()].iter())
            .unwrap();
        journal
            .match_add("SYSLOG_IDENTIFIER", "postfix/smtpd")
            .unwrap();
        assert_eq!(journal.next().unwrap(), 1);
        let postfix_cursor = journal.cursor().unwrap();
        assert_eq!(realtime_of(&journal).unwrap(), T0 + 6 * SECOND + FRACTION);

        let spec = spec(Location::Files(vec![file.clone()]), trust());
        let start = after_cursor(&postfix_cursor, T0 + 6 * SECOND + FRACTION + 1);
        let (rest, summary) = read_all(&spec, start, None);
        assert_eq!(offsets(&rest), vec![7, 8, 9, 10]);
        assert!(!summary.cursor_lost());
    }

    #[test]
    fn cursor_of_a_file_no_longer_there_resumes_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let file_a = build_journal(dir.path(), "source-a.export");
        let file_b = build_journal(dir.path(), "source-b.export");
        let both = spec(Location::Files(vec![file_a, file_b.clone()]), trust());
        let (all, summary) = read_all(&both, Start::Time(None), None);
        assert_eq!(offsets(&all), vec![1, 2, 3, 5, 7, 8, 9, 10, 60, 61, 62]);
        assert_eq!(summary.last_realtime_us, Some(T0 + 62 * SECOND + FRACTION));

        // The saved cursor names entry 8 of file a; a was "vacuumed".
        let saved = &all[5];
        let only_b = spec(Location::Files(vec![file_b]), trust());
        let start = after_cursor(saved.cursor.as_deref().unwrap(), saved.realtime_us + 1);
        let (rest, summary) = read_all(&only_b, start, None);
        assert_eq!(offsets(&rest), vec![60, 61, 62]);
        assert!(summary.cursor_lost());
        assert_eq!(
            summary.machines[MACHINE],
            MachineRead {
                last_cursor: rest[2].cursor.clone(),
                last_realtime_us: Some(T0 + 62 * SECOND + FRACTION),
                cursor_lost: true,
            }
        );

        // The fallback time applies: nothing before it is read again.
        let start = after_cursor(saved.cursor.as_deref().unwrap(), T0 + 61 * SECOND);
        let (rest, summary) = read_all(&only_b, start, None);
        assert_eq!(offsets(&rest), vec![61, 62]);
        assert!(summary.cursor_lost());

        // A given-up cursor: the saved time alone, and no loss reported again.
        let start = after_cursors(&[(MACHINE, None, T0 + 61 * SECOND)]);
        let (rest, summary) = read_all(&only_b, start, None);
        assert_eq!(offsets(&rest), vec![61, 62]);
        assert!(!summary.cursor_lost());
    }

    /// A machine whose entries arrive after another machine's newer ones is read all the same,
    /// after its own position; entries without a machine id have a pass of their own.
    #[test]
    fn each_machine_is_read_after_its_own_cursor() {
        const OTHER: &str = "1f2e3d4c5b6a47988796a5b4c3d2e1f0";
        let dir = tempfile::tempdir().unwrap();
        build_journal(dir.path(), "source-a.export");
        let spec = spec(Location::Directory(dir.path().to_path_buf()), trust());
        let (first, summary) = read_all(&spec, after_cursors(&[]), None);
        assert_eq!(offsets(&first), vec![1, 2, 3, 5, 7, 8, 9, 10]);
        let last_a = first[7].cursor.clone();
        let last_a_us = Some(T0 + 10 * SECOND + FRACTION);
        let machine_a = MachineRead {
            last_cursor: last_a.clone(),
            last_realtime_us: last_a_us,
            cursor_lost: false,
        };
        assert_eq!(
            summary.machines,
            BTreeMap::from([
                (MACHINE.to_string(), machine_a.clone()),
                // The pass over entries without a machine id went over A's (and took none).
                (NO_MACHINE.to_string(), machine_a),
            ])
        );

        // Another machine's entries arrive late, older than A's last; so does one without a
        // machine id, newer than everything read.
        build_postgrey_journal(
            dir.path(),
            "late",
            &[
                (T0 + 6 * SECOND + 500_000, Some(OTHER), "mx3"),
                (T0 + 9 * SECOND + 500_000, Some(OTHER), "mx3"),
                (T0 + 11 * SECOND + 500_000, None, "mx4"),
            ],
        );
        let saved = [
            (MACHINE, last_a.as_deref(), T0 + 10 * SECOND + FRACTION + 1),
            (
                NO_MACHINE,
                last_a.as_deref(),
                T0 + 10 * SECOND + FRACTION + 1,
            ),
        ];
        let (second, summary) = read_all(&spec, after_cursors(&saved), None);
        assert_eq!(offsets(&second), vec![6, 9, 11]);
        let hosts: Vec<&str> = second.iter().filter_map(|e| e.host.as_deref()).collect();
        assert_eq!(hosts, vec!["mx3", "mx3", "mx4"]);
        assert_eq!(summary.entries, 3);
        assert_eq!(
            summary.machines,
            BTreeMap::from([
                (MACHINE.to_string(), MachineRead::default()),
                (
                    OTHER.to_string(),
                    MachineRead {
                        last_cursor: second[1].cursor.clone(),
                        last_realtime_us: Some(T0 + 9 * SECOND + 500_000),
                        cursor_lost: false,
                    }
                ),
                (
                    NO_MACHINE.to_string(),
                    MachineRead {
                        last_cursor: second[2].cursor.clone(),
                        last_realtime_us: Some(T0 + 11 * SECOND + 500_000),
                        cursor_lost: false,
                    }
                ),
            ])
        );

        // Every machine after its own cursor: nothing new, nothing lost.
        let saved = [
            (MACHINE, last_a.as_deref(), T0 + 10 * SECOND + FRACTION + 1),
            (
                OTHER,
                second[1].cursor.as_deref(),
                T0 + 9 * SECOND + 500_001,
            ),
            (
                NO_MACHINE,
                second[2].cursor.as_deref(),
                T0 + 11 * SECOND + 500_001,
            ),
        ];
        let (third, summary) = read_all(&spec, after_cursors(&saved), None);
        assert!(third.is_empty());
        assert!(!summary.cursor_lost());
        assert_eq!(summary.last_realtime_us, None);

        // One report-style pass sees all of them in journal order.
        let (all, _) = read_all(&spec, Start::Time(None), None);
        assert_eq!(offsets(&all), vec![1, 2, 3, 5, 6, 7, 8, 9, 9, 10, 11]);
    }

    /// Hosts as a plain read hands them on: the one host of a one-host journal without a lookup
    /// per entry, each entry's own when the journal holds several.
    #[test]
    fn entries_carry_their_host() {
        let dir = tempfile::tempdir().unwrap();
        let other = "1f2e3d4c5b6a47988796a5b4c3d2e1f0";
        build_postgrey_journal(
            dir.path(),
            "one",
            &[
                (T0, Some(MACHINE), "mx1"),
                (T0 + SECOND, Some(MACHINE), "mx1"),
            ],
        );
        let spec = spec(Location::Directory(dir.path().to_path_buf()), trust());
        let hosts = |spec: &JournalSpec, start: Start| {
            let mut hosts = Vec::new();
            read(
                spec,
                start,
                None,
                Consumer::unprepared(&mut |entry, _| {
                    hosts.push(String::from_utf8(entry.host.unwrap().to_vec()).unwrap());
                    Ok(())
                }),
            )
            .unwrap();
            hosts
        };
        let mut journal = open(&spec.location).unwrap();
        assert_eq!(
            HostSource::of(&mut journal).unwrap(),
            HostSource::Only(Some(b"mx1".to_vec()))
        );
        assert_eq!(hosts(&spec, Start::Time(None)), ["mx1", "mx1"]);

        build_postgrey_journal(
            dir.path(),
            "two",
            &[
                (T0 + SECOND / 2, Some(other), "mx2"),
                (T0 + 2 * SECOND, Some(other), "mx2"),
            ],
        );
        let mut journal = open(&spec.location).unwrap();
        assert_eq!(HostSource::of(&mut journal).unwrap(), HostSource::PerEntry);
        assert_eq!(
            hosts(&spec, Start::Time(None)),
            ["mx1", "mx2", "mx1", "mx2"]
        );
        // Machine by machine, each after its own position.
        let mut by_machine = hosts(&spec, after_cursors(&[]));
        by_machine.sort();
        assert_eq!(by_machine, ["mx1", "mx1", "mx2", "mx2"]);
    }

    #[test]
    fn malformed_cursor_is_an_error_naming_it() {
        let (_dir, file) = journal_a();
        let spec = spec(Location::Files(vec![file.clone()]), trust());
        let start = after_cursor("not a cursor", T0);
        let error = read(&spec, start, None, Consumer::unprepared(&mut |_, _| Ok(()))).unwrap_err();
        assert!(
            format!("{error:#}").starts_with(&format!(
                "seeking to journal cursor \"not a cursor\" in journal file(s) {}: ",
                file.display()
            )),
            "{error:#}"
        );
    }

    #[test]
    fn reads_a_journal_directory() {
        let dir = tempfile::tempdir().unwrap();
        build_journal(dir.path(), "source-a.export");
        build_journal(dir.path(), "source-b.export");
        let spec = spec(Location::Directory(dir.path().to_path_buf()), trust());
        let (entries, summary) = read_all(&spec, Start::Time(None), None);
        assert_eq!(offsets(&entries), vec![1, 2, 3, 5, 7, 8, 9, 10, 60, 61, 62]);
        assert_eq!(summary.untrusted, 3);
    }

    #[test]
    fn callback_error_stops_reading() {
        let (_dir, file) = journal_a();
        let spec = spec(Location::Files(vec![file]), trust());
        let mut seen = 0;
        let error = read(
            &spec,
            Start::Time(None),
            None,
            Consumer::unprepared(&mut |_, _| {
                seen += 1;
                anyhow::ensure!(seen < 3, "closed pipe");
                Ok(())
            }),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "closed pipe");
        assert_eq!(seen, 3);
    }

    #[test]
    fn missing_and_empty_locations_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone.journal");
        let error = read(
            &spec(Location::Files(vec![missing.clone()]), trust()),
            Start::Time(None),
            None,
            Consumer::unprepared(&mut |_, _| Ok(())),
        )
        .unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!(
                "opening journal file {}: No such file or directory (os error 2)",
                missing.display()
            )
        );

        let error = read(
            &spec(Location::Directory(dir.path().to_path_buf()), trust()),
            Start::Time(None),
            None,
            Consumer::unprepared(&mut |_, _| Ok(())),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "no journal files found in journal directory {}",
                dir.path().display()
            )
        );

        let error = read(
            &spec(Location::Directory(missing.clone()), trust()),
            Start::Time(None),
            None,
            Consumer::unprepared(&mut |_, _| Ok(())),
        )
        .unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!(
                "opening journal directory {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
    }

    /// Runs the named test of this binary again as user `nobody`, with `PGA_TEST_JOURNAL` set
    /// to `file`.
    fn rerun_as_nobody(test: &str, file: &Path) {
        let exe = std::env::current_exe().unwrap();
        let reachable = exe
            .ancestors()
            .skip(1)
            .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
        assert!(reachable, "user nobody cannot reach {}", exe.display());
        let output = Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(exe)
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env("PGA_TEST_JOURNAL", file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child test failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `<tmp>/j/source-a.journal` and `<tmp>/closed/`, neither readable.
    #[test]
    fn permission_denied_names_the_file_and_the_group() {
        let (_dir, file) = match std::env::var_os("PGA_TEST_JOURNAL") {
            Some(file) => (None, PathBuf::from(file)),
            None => {
                let dir = tempfile::tempdir().unwrap();
                let journals = dir.path().join("j");
                std::fs::create_dir(&journals).unwrap();
                std::fs::create_dir(dir.path().join("closed")).unwrap();
                let file = build_journal(&journals, "source-a.export");
                for (path, mode) in [
                    (dir.path(), 0o755),
                    (&journals, 0o755),
                    (&dir.path().join("closed"), 0o000),
                    (&file, 0o000),
                ] {
                    std::fs::set_permissions(path, PermissionsExt::from_mode(mode)).unwrap();
                }
                if nix::unistd::geteuid().is_root() {
                    // root reads everything: look as an ordinary user.
                    rerun_as_nobody(
                        "source::journal::tests::permission_denied_names_the_file_and_the_group",
                        &file,
                    );
                    return;
                }
                (Some(dir), file)
            }
        };
        let journals = file.parent().unwrap().to_path_buf();
        let closed = journals.parent().unwrap().join("closed");
        let hint = "add the user to group `systemd-journal` (or `adm`), \
                    e.g. `usermod -a -G systemd-journal USER`, and log in again";
        for (location, denied) in [
            (Location::Files(vec![file.clone()]), &file),
            (Location::Directory(journals.clone()), &file),
            (Location::Directory(closed.clone()), &closed),
        ] {
            let error = read(
                &spec(location, trust()),
                Start::Time(None),
                None,
                Consumer::unprepared(&mut |_, _| Ok(())),
            )
            .unwrap_err();
            let expected = format!("permission denied reading {}: {hint}", denied.display());
            assert_eq!(error.to_string(), expected);
            assert!(error.downcast_ref::<AccessError>().is_some());
        }
    }
}
