//! Test support shared by every integration test (`mod common;` at the top of a test file).
//!
//! Everything here drives the real programs Debian ships, never stand-ins:
//! - [`JournalFiles`] turns journal export text ([`ExportEntry`]) into real journal files with
//!   `systemd-journal-remote`, so entries carry exactly the trusted fields (`_UID`,
//!   `_SYSTEMD_UNIT`, …) and timestamps a test needs;
//! - [`Journald`] runs a private `systemd-journald` namespace per test, and writes into it the way
//!   PID 1 connects a service's stdout ([`Journald::attach_as_unit`]) or the way an ordinary user's
//!   `logger` does ([`Journald::log_as_user`]);
//! - [`Postgrey`] runs `/usr/sbin/postgrey` as `postgrey.service` into such a journald and speaks
//!   the Postfix policy protocol to it;
//! - [`Postfix`] runs a private loopback-only Postfix for mail delivery tests;
//! - [`nagios::check_once`] runs a throwaway nagios4 that executes real plugins once;
//! - [`fixtures`] holds the postmaster's files and the figures of the week of [`traffic`].
//!
//! The tests need root (journald namespaces, chown to the `postgrey` user, port 25) and the
//! packages `.ci/run` installs. Every resource is unique per test (namespace name, ports bound
//! from port 0, temporary directories), so `cargo test` may run tests in parallel; only Postfix,
//! which needs port 25, is serialised by a file lock. Daemons are stopped and their files removed
//! when the owning value is dropped, also when the test panics. Keep each of these values owned by
//! its test (not in a `static`): a child daemon is also told to exit when the test thread that
//! started it ends.
//!
//! Waiting for a daemon uses generous bounds ([`WAIT_LIMIT`]); a bound that runs out is a failure
//! to start, never an assertion about how fast something is.
#![allow(dead_code)]

pub mod export;
pub mod fixtures;
pub mod journal_files;
pub mod journald;
pub mod nagios;
pub mod package;
pub mod postfix;
pub mod postgrey;
pub mod traffic;

#[allow(unused_imports)]
pub use export::{ExportEntry, export_text};
#[allow(unused_imports)]
pub use journal_files::JournalFiles;
#[allow(unused_imports)]
pub use journald::Journald;
#[allow(unused_imports)]
pub use postfix::Postfix;
#[allow(unused_imports)]
pub use postgrey::Postgrey;

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Upper bound for waiting on a daemon to come up, a journal entry to arrive or a mail to land.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Path of the `postgrey-advisor` binary cargo built for this test run.
pub fn bin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_postgrey-advisor"))
}

/// The binary under test, with `JOURNAL_STREAM` removed so that a test run started by a systemd
/// service does not make the binary believe its output goes to the journal.
pub fn bin() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(bin_path());
    cmd.env_remove("JOURNAL_STREAM");
    cmd
}

/// The binary under test, run so that `sd_journal_send` (which always writes to
/// `/run/systemd/journal/socket`) reaches `journald` instead of the host's journal. See
/// [`Journald::command_with_journal_socket`].
pub fn bin_in_journald(journald: &Journald) -> assert_cmd::Command {
    let mut cmd = journald.command_with_journal_socket(bin_path());
    cmd.env_remove("JOURNAL_STREAM");
    assert_cmd::Command::from_std(cmd)
}

/// A file of the project (units, monitoring definitions, …) by its path from the crate root.
pub fn project_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The text of a [`project_file`].
pub fn read_project_file(relative: &str) -> String {
    let path = project_file(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A temporary directory that other users can enter and read (mode 0755): `mktemp -d` makes
/// 0700 directories, which postgrey (running as user `postgrey`) cannot read its whitelist or
/// database from.
pub fn world_readable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pgadv-test.")
        .tempdir()
        .expect("create temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod 0755 temporary directory");
    dir
}

/// Polls `ready` every 50 ms until it returns `Some`, panicking with `what` after [`WAIT_LIMIT`].
pub fn wait_for<T>(what: &str, ready: impl FnMut() -> Option<T>) -> T {
    try_wait_for(ready).unwrap_or_else(|| panic!("gave up after {WAIT_LIMIT:?} waiting for {what}"))
}

/// Polls `ready` every 50 ms until it returns `Some`; `None` after [`WAIT_LIMIT`].
pub fn try_wait_for<T>(mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a command to completion and panics with its output when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert_success(&output, &format!("{cmd:?}"));
    output
}

/// Panics unless the tests run as root, with a message that says why they must.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests start journald namespaces, postgrey and postfix and must run as root \
         (see .ci/run)"
    );
}

/// One journal entry as `journalctl -o json` prints it.
#[derive(Clone, Debug)]
pub struct JournalEntry {
    fields: serde_json::Map<String, Value>,
}

impl JournalEntry {
    /// The field's value as text (non-UTF-8 bytes replaced); for a field that occurs several
    /// times, the first value.
    pub fn get(&self, field: &str) -> Option<String> {
        self.bytes(field)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The field's value as raw bytes (journalctl prints binary values as arrays of numbers).
    pub fn bytes(&self, field: &str) -> Option<Vec<u8>> {
        fn value_bytes(v: &Value) -> Option<Vec<u8>> {
            match v {
                Value::String(s) => Some(s.clone().into_bytes()),
                Value::Array(items) if items.iter().all(Value::is_u64) => items
                    .iter()
                    .map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok()))
                    .collect(),
                // A repeated field: an array of values.
                Value::Array(items) => items.first().and_then(value_bytes),
                _ => None,
            }
        }
        self.fields.get(field).and_then(value_bytes)
    }

    /// Whether the entry has the field at all.
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// `MESSAGE` as text.
    pub fn message(&self) -> Option<String> {
        self.get("MESSAGE")
    }

    /// All field names of the entry.
    pub fn field_names(&self) -> Vec<&str> {
        self.fields.keys().map(String::as_str).collect()
    }

    /// Asserts that the entry has each field of `expected` with exactly that value.
    pub fn assert_fields(&self, expected: &[(&str, &str)]) {
        for (field, value) in expected {
            assert_eq!(
                self.get(field).as_deref(),
                Some(*value),
                "{field} of {:?}",
                self.message()
            );
        }
    }
}

/// Runs `journalctl --no-pager -o json ARGS…` (a source such as `--file X` or `-D DIR`, then
/// optional matches like `_SYSTEMD_UNIT=postgrey.service`) and returns the entries in journal
/// order. No matching entry is an empty list, not an error.
pub fn journalctl_json<I, S>(args: I) -> Vec<JournalEntry>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("journalctl");
    cmd.args(["--no-pager", "--output=json", "--quiet"])
        .args(args);
    let output = run_ok(&mut cmd);
    output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let value: Value = serde_json::from_slice(line)
                .unwrap_or_else(|e| panic!("journalctl printed invalid JSON ({e}): {line:?}"));
            match value {
                Value::Object(fields) => JournalEntry { fields },
                other => panic!("journalctl printed a non-object entry: {other}"),
            }
        })
        .collect()
}

/// Entries of the journal files in `dir` (as `journalctl -D`), optionally filtered by matches.
pub fn journal_dir_entries(dir: &Path, matches: &[&str]) -> Vec<JournalEntry> {
    let mut args: Vec<&OsStr> = vec![OsStr::new("--directory"), dir.as_os_str()];
    args.extend(matches.iter().map(OsStr::new));
    journalctl_json(args)
}

/// The journal files (`*.journal`) in `dir`, sorted by name.
pub fn journal_files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list journal directory {}: {e}", dir.display()))
        .map(|e| e.expect("journal directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "journal"))
        .collect();
    files.sort();
    files
}

/// `OPTIONPATH` as one argument (e.g. `--dbdir=/tmp/x`), without a lossy conversion of the path.
pub fn opt_path(option: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(option);
    arg.push(path);
    arg
}

/// Fails, with everything the program said, unless `output` is a success.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
