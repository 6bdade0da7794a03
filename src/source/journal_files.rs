//! Which journal files sd-journal actually opened.
//!
//! sd-journal keeps every journal file it reads open (a descriptor and a mapping each). A
//! directory gathered by `systemd-journal-remote` from dozens of hosts holds hundreds of files,
//! more than the usual soft limit of 1,024 descriptors — and a file sd-journal cannot open
//! (no descriptor left, unreadable, not a journal file at all) is skipped *silently*: the
//! report would simply lack its entries. So, like journalctl, the limit is raised to the hard
//! limit first, and afterwards the files on disk are compared with the descriptors the process
//! holds, so that whatever was skipped can be named.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft limit on open files to the hard limit, as journalctl does before opening
/// journals. Failing to raise it is not an error: the files left over are reported instead.
pub fn raise_open_file_limit() {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The journal files sd-journal reads for `dir` (`sd_journal_open_directory`): `*.journal`
/// and `*.journal~` in it and in its subdirectories named by a machine id.
pub fn journal_files_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && is_machine_id(&name) {
            found.extend(journal_files_in(&path));
        } else if kind.is_file() && is_journal_file_name(&name) {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn is_journal_file_name(name: &str) -> bool {
    name.ends_with(".journal") || name.ends_with(".journal~")
}

/// 32 hex digits, optionally with a namespace (`<id>.NS`), as journal subdirectories are named.
fn is_machine_id(name: &str) -> bool {
    let id = name.split_once('.').map_or(name, |(id, _)| id);
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The files this process holds open, by path (`/proc/self/fd`).
pub fn open_files() -> BTreeSet<PathBuf> {
    let Ok(entries) = fs::read_dir("/proc/self/fd") else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .collect()
}

/// The files of `expected` that are not open now: what sd-journal skipped. Without
/// `/proc/self/fd` nothing can be told, and nothing is claimed.
pub fn skipped(expected: &[PathBuf], open: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
    if open.is_empty() {
        return Vec::new();
    }
    expected
        .iter()
        .filter(|path| {
            let real = fs::canonicalize(path).unwrap_or_else(|_| (*path).clone());
            !open.contains(&real)
        })
        .cloned()
        .collect()
}

/// A report note for skipped files, naming the first few.
pub fn skipped_note(location: &str, skipped: &[PathBuf]) -> Option<String> {
    const SHOWN: usize = 3;
    if skipped.is_empty() {
        return None;
    }
    let names: Vec<String> = skipped
        .iter()
        .take(SHOWN)
        .map(|p| p.display().to_string())
        .collect();
    let more = skipped.len().saturating_sub(SHOWN);
    Some(format!(
        "{} journal file{} in {location} could not be opened and {} not read ({}{}): \
         the open-file limit (ulimit -n) may be too low, or the files are unreadable or damaged",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" },
        if skipped.len() == 1 { "was" } else { "were" },
        names.join(", "),
        if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_id_directories_and_journal_names() {
        assert!(is_machine_id("3d1219c7c4c5404aaa1f6d2a48adfda4"));
        assert!(is_machine_id("3d1219c7c4c5404aaa1f6d2a48adfda4.mail"));
        assert!(!is_machine_id("remote"));
        assert!(is_journal_file_name("system.journal"));
        assert!(is_journal_file_name("system@x-1-2.journal~"));
        assert!(!is_journal_file_name("system.journal.gz"));
    }

    #[test]
    fn files_found_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("3d1219c7c4c5404aaa1f6d2a48adfda4");
        fs::create_dir(&sub).unwrap();
        fs::create_dir(dir.path().join("other")).unwrap();
        for path in [
            dir.path().join("a.journal"),
            sub.join("b.journal~"),
            dir.path().join("other/c.journal"),
            dir.path().join("notes.txt"),
        ] {
            fs::write(path, "x").unwrap();
        }
        let found = journal_files_in(dir.path());
        assert_eq!(
            found,
            vec![sub.join("b.journal~"), dir.path().join("a.journal")]
        );
        let held = fs::File::open(&found[1]).unwrap();
        let open = open_files();
        assert_eq!(skipped(&found, &open), vec![found[0].clone()]);
        drop(held);
        assert_eq!(
            skipped_note("DIR", &found).unwrap(),
            format!(
                "2 journal files in DIR could not be opened and were not read ({}, {}): the \
                 open-file limit (ulimit -n) may be too low, or the files are unreadable or damaged",
                found[0].display(),
                found[1].display()
            )
        );
    }
}
