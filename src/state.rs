//! The timer job's memory: the journal cursors and the tally, in one JSON file.
//!
//! **Exactly once.** The cursors of the last entries read (one per machine, see
//! `source::journal`) and the counts that include them are written together in one atomic replace (temporary file in the same directory, fsync, rename,
//! fsync the directory). A run killed at any moment leaves either the old state or the new one,
//! never a mix, so the next run neither loses nor double-counts an entry.
//!
//! **One run at a time.** An exclusive `flock` on `<state>.lock` keeps runs apart. The lock
//! cannot live on the state file itself: the atomic rename replaces that inode, and a second
//! run would lock the new inode while the first still holds the old one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::error::Failure;
use crate::tally::Tally;

mod budget;
pub(crate) mod stored;

/// Bumped when the file layout changes incompatibly. 2: the compact tally (`state::stored`),
/// one journal position per machine.
pub const SCHEMA: u32 = 2;

/// What every version's state file has: its schema, read before the rest so that a file of
/// another version is refused by name rather than reported as corrupt.
#[derive(Deserialize)]
struct Schema {
    schema: u32,
}

/// Everything a run carries over to the next.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub schema: u32,
    /// Where reading the journal resumes, per machine (`_MACHINE_ID`; `""` for entries without
    /// one).
    pub machines: BTreeMap<String, MachinePosition>,
    /// Realtime of the newest entry counted, of any machine or text file (µs): where text
    /// files (`--file`) resume.
    pub last_entry_us: Option<i64>,
    /// When the last run finished (µs).
    pub last_run_us: Option<i64>,
    /// When a digest was last delivered (µs); the next digest reaches back at least to that
    /// day.
    pub last_mailed_us: Option<i64>,
    /// Candidates a delivered digest listed and that are still unreviewed: group key → when a
    /// digest first listed it (µs). The next digest tells them apart from new ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest_listed: BTreeMap<String, i64>,
    /// Day buckets per group, within the retention.
    pub tally: Tally,
}

/// Where reading one machine's journal entries resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachinePosition {
    /// Cursor of the last entry read. `None` after the cursor's entry was found gone (vacuumed,
    /// rotated away) and no entry has been read since.
    pub cursor: Option<String>,
    /// Realtime of that entry (µs): where to resume when the cursor is gone.
    pub last_entry_us: i64,
}

impl State {
    pub fn fresh() -> Self {
        State {
            schema: SCHEMA,
            ..State::default()
        }
    }
}

/// Bytes the stored `state` takes besides its tally: what of `--max-state-size` the tally
/// cannot have.
pub fn size_without_tally(state: &State) -> usize {
    let skeleton = State {
        schema: state.schema,
        machines: state.machines.clone(),
        last_entry_us: state.last_entry_us,
        last_run_us: state.last_run_us,
        last_mailed_us: state.last_mailed_us,
        digest_listed: state.digest_listed.clone(),
        tally: Tally::default(),
    };
    // The empty tally's own braces are the tally's, not the rest's.
    let empty_tally = serde_json::to_vec(&Tally::default()).map_or(0, |bytes| bytes.len());
    serde_json::to_vec(&skeleton).map_or(0, |bytes| bytes.len().saturating_sub(empty_tally))
}

/// Holds the run lock until dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive run lock, waiting up to `timeout`; a [`Failure::Busy`] after that.
pub fn lock(state: &Path, timeout: Duration) -> anyhow::Result<RunLock> {
    let path = lock_path(state);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create state directory {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(RunLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        if started.elapsed() >= timeout {
            return Err(Failure::Busy(format!(
                "another postgrey-advisor run holds {} (waited {} s); try again later",
                path.display(),
                timeout.as_secs()
            ))
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the state; a missing file is a fresh state. A file that does not parse is an error
/// naming it, and the file is left as it is.
pub fn load(path: &Path) -> anyhow::Result<State> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::fresh()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read state file {}", path.display()));
        }
    };
    let corrupt = || {
        format!(
            "state file {} is corrupt (left untouched; --reset-state starts over)",
            path.display()
        )
    };
    // One pass in the usual case; the schema alone is read only to say why a file that does
    // not load is refused, so that a file of another version is not called corrupt.
    // Checked as UTF-8 at once, the file's strings need no check one by one, and its names
    // are borrowed while the tally is built; a file that is no UTF-8 is left to serde_json, for
    // the position in its message.
    let loaded: Result<State, _> =
        budget::for_file(bytes.len(), || match std::str::from_utf8(&bytes) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(&bytes),
        });
    let schema = match &loaded {
        Ok(state) => state.schema,
        Err(_) => {
            let Schema { schema } = serde_json::from_slice(&bytes).with_context(corrupt)?;
            schema
        }
    };
    if schema != SCHEMA {
        bail!(
            "state file {} has schema {}, this version reads {} (--reset-state starts over)",
            path.display(),
            schema,
            SCHEMA
        );
    }
    loaded.with_context(corrupt)
}

/// Saves cursor and counts together (see the module docs). Mode 0600 for a new file: the state
/// holds host names of the mail peers.
pub fn save(path: &Path, state: &State) -> anyhow::Result<()> {
    write(path, &StateOut::of(state, &state.tally))
}

/// The stored form of a tally, serialised, when it takes at most `max_bytes`: what `run`
/// measures it by before it saves. `None` for a bigger one, which is compacted anyway: its text
/// would only take memory.
pub fn serialise_tally_within(
    tally: &Tally,
    max_bytes: usize,
) -> anyhow::Result<Option<SerialisedTally>> {
    let parts = stored::tally_text(tally, max_bytes).context("cannot serialise the state")?;
    Ok(parts.map(SerialisedTally))
}

/// The text of a stored tally, as [`serialise_tally_within`] wrote it: in parts, one after the
/// other (not joined: a copy of a big state).
#[derive(Debug)]
pub struct SerialisedTally(Vec<Vec<u8>>);

impl SerialisedTally {
    /// Bytes it takes.
    pub fn bytes(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }

    fn write_to(&self, out: &mut dyn io::Write) -> io::Result<()> {
        self.0.iter().try_for_each(|part| out.write_all(part))
    }

    #[cfg(test)]
    fn text(&self) -> String {
        String::from_utf8(self.0.concat()).unwrap()
    }
}

/// [`save`] of a state whose tally was serialised already (by [`serialise_tally_within`], and not
/// changed since): a big tally takes as long to serialise as the rest of a run.
pub fn save_serialised(path: &Path, state: &State, tally: &SerialisedTally) -> anyhow::Result<()> {
    // The tally is the state's last field: its text takes the place of a `null` one. (Not a
    // `RawValue`, which would parse the whole text again to check it.)
    let without_tally =
        serde_json::to_vec(&StateOut::of(state, &())).context("cannot serialise the state")?;
    let Some(start) = without_tally.strip_suffix(b"null}") else {
        bail!("the serialised state does not end with its tally");
    };
    atomic::replace_with(path, 0o600, |out| {
        out.write_all(start)?;
        tally.write_to(out)?;
        out.write_all(b"}")
    })
}

fn write<T: Serialize + ?Sized>(path: &Path, state: &StateOut<'_, T>) -> anyhow::Result<()> {
    atomic::replace_with(path, 0o600, |out| {
        serde_json::to_writer(out, state).map_err(io::Error::from)
    })
}

/// [`State`] as written, its tally given apart: both ways of saving go through it, so that
/// they write the same bytes.
#[derive(Serialize)]
struct StateOut<'a, T: ?Sized> {
    schema: u32,
    machines: &'a BTreeMap<String, MachinePosition>,
    last_entry_us: Option<i64>,
    last_run_us: Option<i64>,
    last_mailed_us: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    digest_listed: &'a BTreeMap<String, i64>,
    tally: &'a T,
}

impl<'a, T: ?Sized> StateOut<'a, T> {
    fn of(state: &'a State, tally: &'a T) -> Self {
        StateOut {
            schema: state.schema,
            machines: &state.machines,
            last_entry_us: state.last_entry_us,
            last_run_us: state.last_run_us,
            last_mailed_us: state.last_mailed_us,
            digest_listed: &state.digest_listed,
            tally,
        }
    }
}

/// A hidden knob for the crash-safety tests: sleep this many milliseconds at a critical point
/// so a test can kill the process there. Unset in production.
pub fn test_pause(variable: &str) {
    if let Some(ms) = std::env::var(variable)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// A hidden knob for the locking tests: when `variable` names a file, wait here until that file
/// exists, so a test decides how long a run holds the lock without guessing at durations.
/// Unset in production.
pub fn test_gate(variable: &str) {
    if let Some(path) = std::env::var_os(variable) {
        let path = PathBuf::from(path);
        while !path.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut state = State::fresh();
        let position = |cursor: Option<&str>, last_entry_us| MachinePosition {
            cursor: cursor.map(String::from),
            last_entry_us,
        };
        state.machines = BTreeMap::from([
            ("".into(), position(Some("s=abc;i=1"), 42)),
            (
                "0a1b2c3d4e5f40718293a4b5c6d7e8f9".into(),
                position(None, 41),
            ),
        ]);
        state.last_entry_us = Some(42);
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), state);
    }

    #[test]
    fn a_tally_serialised_beforehand_is_saved_as_the_state_would_be() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut state = State::fresh();
        state.last_run_us = Some(7);
        state.digest_listed = BTreeMap::from([("example.com".into(), 3)]);
        let stored = r#"{"groups": {"example.com": {"i": ["192.0.2.1"], "h": ["mx1"],
            "d": {"20410": {"n": 3, "h": [3], "f": 3600000000}}}}}"#;
        state.tally = serde_json::from_str(stored).unwrap();
        assert!(!state.tally.groups.is_empty());
        for digest_listed in [state.digest_listed.clone(), BTreeMap::new()] {
            state.digest_listed = digest_listed;
            save(&path, &state).unwrap();
            let whole = fs::read(&path).unwrap();
            assert_eq!(whole, serde_json::to_vec(&state).unwrap());
            let tally = serialise_tally_within(&state.tally, usize::MAX)
                .unwrap()
                .expect("within no limit");
            save_serialised(&path, &state, &tally).unwrap();
            assert_eq!(fs::read(&path).unwrap(), whole);
            let size = tally.bytes();
            assert!(
                serialise_tally_within(&state.tally, size)
                    .unwrap()
                    .is_some()
            );
            assert!(
                serialise_tally_within(&state.tally, size - 1)
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn a_tally_of_many_groups_is_serialised_in_parts_as_at_once() {
        let groups: Vec<String> = (0..700)
            .map(|i| {
                format!(
                    r#""g{i}.example.com":{{"i":["192.0.2.{}"],"h":["mx"],"d":{{"20410":{{"n":{},"h":[1],"f":3600000000}}}}}}"#,
                    i % 250,
                    i % 7 + 1
                )
            })
            .collect();
        let text = format!(r#"{{"groups":{{{}}},"totals":{{}}}}"#, groups.join(","));
        let tally: Tally = serde_json::from_str(&text).unwrap();
        assert_eq!(tally.groups.len(), 700);
        let whole = serde_json::to_string(&tally).unwrap();
        let serialised = serialise_tally_within(&tally, usize::MAX)
            .unwrap()
            .expect("within no limit");
        assert_eq!(serialised.text(), whole);
        let size = whole.len();
        assert!(serialise_tally_within(&tally, size).unwrap().is_some());
        assert!(serialise_tally_within(&tally, size - 1).unwrap().is_none());
    }

    #[test]
    fn unchanged_groups_are_saved_as_loaded_and_changed_ones_anew() {
        use crate::event::{Action, ClientName, Decision, Reason};
        use crate::group::{GroupKey, Grouper};
        use crate::tally::MICROS_PER_DAY;
        // Every group has day 20410, every tenth also 20409. example1.com is written with a space, as
        // no run writes it: a group saved as it was loaded keeps it.
        let mut groups: Vec<String> = (0..700)
            .map(|i| {
                let day_before = if i % 10 == 0 {
                    r#""20409":{"n":1,"h":[1],"f":7200000000},"#
                } else {
                    ""
                };
                let space = if i == 1 { " " } else { "" };
                format!(
                    r#""example{i}.com":{{"i":[{space}"192.0.2.{}"],"h":["mx"],"d":{{{day_before}"20410":{{"n":{},"h":[1],"f":3600000000}}}}}}"#,
                    i % 250,
                    i % 7 + 1
                )
            })
            .collect();
        // In the order of the tally's map, which is the names'.
        groups.sort();
        let text = format!(
            r#"{{"schema":{SCHEMA},"machines":{{}},"last_entry_us":null,"last_run_us":null,"last_mailed_us":null,"tally":{{"groups":{{{}}},"totals":{{}}}}}}"#,
            groups.join(",")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, &text).unwrap();
        let mut state = load(&path).unwrap();

        // Saved again unchanged: the very text loaded, the space too.
        save(&path, &state).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);

        // example2.com counts a greylisting; every tenth group loses its first day.
        let decision = Decision {
            queue_id: None,
            action: Action::Greylist,
            reason: Some(Reason::New),
            delay_s: None,
            client_name: Some(ClientName::Host(String::from("mx.example2.com"))),
            client_address: Some("192.0.2.2".parse().unwrap()),
            sender: Some(String::from("a@example.net")),
            recipient: Some(String::from("bob@example.org")),
        };
        let grouper = Grouper::builtin();
        let at_us = 20410 * MICROS_PER_DAY + 60_000_000;
        state.tally.record_decision(&grouper, at_us, &decision);
        state.tally.prune(20410, i64::MIN);
        let domain = |i: usize| GroupKey::Domain(format!("example{i}.com"));
        let kept = [1, 2, 3, 10].map(|i| state.tally.groups[&domain(i)].loaded_form.is_kept());
        assert_eq!(kept, [true, false, true, false]);
        assert_eq!(state.tally.groups[&domain(2)].days[&20410].new, 4);

        // What is saved is the stored form made anew, but for example1.com's space.
        let mut anew = state.clone();
        for group in anew.tally.groups.values_mut() {
            group.loaded_form.forget();
        }
        let anew = serde_json::to_string(&anew).unwrap();
        assert!(!anew.contains(r#""20409""#), "{anew}");
        for serialised in [true, false] {
            if serialised {
                let tally = serialise_tally_within(&state.tally, usize::MAX)
                    .unwrap()
                    .expect("within no limit");
                save_serialised(&path, &state, &tally).unwrap();
            } else {
                save(&path, &state).unwrap();
            }
            let saved = fs::read_to_string(&path).unwrap();
            let spaced = anew.replace(r#""example1.com":{"i":["#, r#""example1.com":{"i":[ "#);
            assert_eq!(saved, spaced);
            let read_anew: State = serde_json::from_str(&anew).unwrap();
            assert_eq!(load(&path).unwrap(), read_anew);
        }
    }

    #[test]
    fn missing_is_fresh_and_corrupt_is_an_error_that_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).unwrap(), State::fresh());
        fs::write(&path, b"{\"schema\":1,\"cur").unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("state.json is corrupt"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"{\"schema\":1,\"cur");
    }

    #[test]
    fn another_schema_is_refused_by_name_and_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let old = br#"{"schema":1,"cursor":null,"tally":{"groups":{"example.com":{"days":{}}}}}"#;
        fs::write(&path, old).unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert_eq!(
            err,
            format!(
                "state file {} has schema 1, this version reads 2 (--reset-state starts over)",
                path.display()
            )
        );
        assert_eq!(fs::read(&path).unwrap(), old);
    }

    #[test]
    fn second_lock_times_out_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let _held = lock(&path, Duration::ZERO).unwrap();
        let err = lock(&path, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<Failure>(),
            Some(Failure::Busy(_))
        ));
    }
}
