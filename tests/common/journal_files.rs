//! Real journal files built at test time from export text with `systemd-journal-remote`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::export::{ExportEntry, export_text};
use super::{
    JournalEntry, journal_dir_entries, journal_files_in, journalctl_json, opt_path,
    world_readable_tempdir,
};

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// A temporary directory (mode 0755, removed on drop) holding journal files, for the binary's
/// `--journal-dir DIR` or `--journal-file FILE`.
pub struct JournalFiles {
    dir: tempfile::TempDir,
}

impl JournalFiles {
    /// An empty directory.
    pub fn new() -> Self {
        JournalFiles {
            dir: world_readable_tempdir(),
        }
    }

    /// A directory with one file `test.journal` holding `entries`; its path is
    /// `files.dir().join("test.journal")` or [`JournalFiles::files`]`()[0]`.
    pub fn with_entries(entries: &[ExportEntry]) -> Self {
        let files = Self::new();
        files.add("test", entries);
        files
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `entries` into a new journal file `DIR/NAME.journal` and returns its path.
    pub fn add(&self, name: &str, entries: &[ExportEntry]) -> PathBuf {
        self.add_export(name, export_text(entries))
    }

    /// Writes export-format text (for instance a fixture made by `journalctl -o export`) into a
    /// new journal file `DIR/NAME.journal` and returns its path.
    pub fn add_export(&self, name: &str, export: impl AsRef<[u8]>) -> PathBuf {
        let file_name = if name.ends_with(".journal") {
            name.to_owned()
        } else {
            format!("{name}.journal")
        };
        let path = self.dir.path().join(file_name);
        assert!(!path.exists(), "{} exists already", path.display());
        let mut child = Command::new(JOURNAL_REMOTE)
            .arg(opt_path("--output=", &path))
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {JOURNAL_REMOTE} (package systemd-journal-remote): {e}")
            });
        let mut stdin = child.stdin.take().expect("journal-remote stdin");
        stdin
            .write_all(export.as_ref())
            .expect("write export text to journal-remote");
        drop(stdin);
        let output = child.wait_with_output().expect("wait for journal-remote");
        assert!(
            output.status.success() && path.exists(),
            "{JOURNAL_REMOTE} --output={} failed ({}): {}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        path
    }

    /// The journal files in the directory, sorted by name.
    pub fn files(&self) -> Vec<PathBuf> {
        journal_files_in(self.dir.path())
    }

    /// Every entry of every file, as `journalctl -D DIR -o json` shows them, optionally filtered
    /// by matches such as `SYSLOG_IDENTIFIER=postgrey`.
    pub fn entries(&self, matches: &[&str]) -> Vec<JournalEntry> {
        journal_dir_entries(self.dir.path(), matches)
    }
}

impl Default for JournalFiles {
    fn default() -> Self {
        Self::new()
    }
}

/// Entries of one journal file, as `journalctl --file FILE -o json` shows them.
pub fn journal_file_entries(file: &Path) -> Vec<JournalEntry> {
    journalctl_json([opt_path("--file=", file)])
}
