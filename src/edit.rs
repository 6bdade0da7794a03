//! Appending to the small configuration files postgrey-advisor is allowed to change
//! (`whitelist_clients.local`, the ignore file) so that nothing is ever lost: postgrey may reread
//! the file at any moment (SIGHUP), and the machine may crash mid-write.
//!
//! The new content is the old content byte for byte (a final newline added if it lacked one),
//! then a dated comment and the new lines, written with [`atomic::replace`] (old owner and mode
//! kept; 0644 for a new file, so postgrey's own user can read it). Writers of the same directory
//! are serialised with a lock on the directory, under which temporary files left by a killed
//! writer are removed.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use similar::TextDiff;

use crate::atomic;

/// Mode of a file that did not exist before: postgrey (its own user) must read it.
const NEW_FILE_MODE: u32 = 0o644;

/// The comment line that heads each block postgrey-advisor appends.
pub fn dated_comment(date: jiff::civil::Date) -> String {
    format!("{}{date}", crate::whitelist::ADDED_ON_PREFIX)
}

/// A planned append: the file's content before (`None`: it does not exist) and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    pub before: Option<Vec<u8>>,
    pub after: Vec<u8>,
}

impl Change {
    /// Plans appending `lines` (each without its newline) to `before`.
    pub fn append(path: &Path, before: Option<Vec<u8>>, lines: &[String]) -> Change {
        let mut after = before.clone().unwrap_or_default();
        if !after.is_empty() && !after.ends_with(b"\n") {
            after.push(b'\n');
        }
        for line in lines {
            after.extend_from_slice(line.as_bytes());
            after.push(b'\n');
        }
        Change {
            path: path.to_path_buf(),
            before,
            after,
        }
    }

    /// A unified diff of the change (`--- /dev/null` for a new file), as `diff -u` prints it.
    /// Bytes that are not UTF-8 are shown replaced; the file itself keeps them.
    pub fn diff(&self) -> String {
        let name = self.path.display().to_string();
        let old_name = if self.before.is_some() {
            name.as_str()
        } else {
            "/dev/null"
        };
        let before = String::from_utf8_lossy(self.before.as_deref().unwrap_or_default());
        let after = String::from_utf8_lossy(&self.after);
        TextDiff::from_lines(before.as_ref(), after.as_ref())
            .unified_diff()
            .context_radius(3)
            .header(old_name, &name)
            .to_string()
    }

    /// Writes the new content atomically (see the module docs).
    pub fn apply(&self) -> anyhow::Result<()> {
        atomic::replace(&self.path, &self.after, NEW_FILE_MODE)
    }
}

/// The file's bytes, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Held while a file is read, changed and written; other postgrey-advisor writers of the same
/// directory wait.
#[derive(Debug)]
pub struct DirectoryLock {
    _lock: Flock<File>,
}

/// Creates the file's directory if needed, locks it, and removes temporary files that a killed
/// writer left behind (no writer can be using them while the lock is held).
pub fn lock_directory_of(path: &Path) -> anyhow::Result<DirectoryLock> {
    let target = atomic::real_target(path)?;
    let dir = atomic::directory_of(&target);
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let handle =
        File::open(dir).with_context(|| format!("cannot open directory {}", dir.display()))?;
    let lock = Flock::lock(handle, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("cannot lock directory {}", dir.display()))?;
    atomic::remove_stale_temporaries(&target)?;
    Ok(DirectoryLock { _lock: lock })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::Permissions;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn lines(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dated_comment_format() {
        assert_eq!(
            dated_comment(jiff::civil::date(2026, 11, 28)),
            "# added by postgrey-advisor on 2026-11-28"
        );
    }

    #[test]
    fn append_keeps_content_and_adds_a_missing_final_newline() {
        let path = Path::new("/etc/postgrey/whitelist_clients.local");
        let c = Change::append(
            path,
            Some(b"a.example\nb.example".to_vec()),
            &lines(&["# c", "d.example"]),
        );
        assert_eq!(c.after, b"a.example\nb.example\n# c\nd.example\n");
        let c = Change::append(path, Some(b"caf\xe9 # latin-1\n".to_vec()), &lines(&["x"]));
        assert_eq!(c.after, b"caf\xe9 # latin-1\nx\n");
        let c = Change::append(path, None, &lines(&["x"]));
        assert_eq!(c.after, b"x\n");
        let c = Change::append(path, Some(Vec::new()), &lines(&["x"]));
        assert_eq!(c.after, b"x\n");
    }

    #[test]
    fn diff_of_an_append() {
        let path = Path::new("/etc/wl");
        let before = b"one\ntwo\nthree\nfour\n".to_vec();
        let c = Change::append(path, Some(before), &lines(&["# added", "five"]));
        assert_eq!(
            c.diff(),
            "--- /etc/wl\n+++ /etc/wl\n@@ -2,3 +2,5 @@\n two\n three\n four\n+# added\n+five\n"
        );
    }

    #[test]
    fn diff_of_a_new_file() {
        let c = Change::append(Path::new("wl"), None, &lines(&["# added", "x"]));
        assert_eq!(
            c.diff(),
            "--- /dev/null\n+++ wl\n@@ -0,0 +1,2 @@\n+# added\n+x\n"
        );
    }

    #[test]
    fn diff_when_the_last_line_had_no_newline() {
        let c = Change::append(Path::new("wl"), Some(b"a\nb".to_vec()), &lines(&["x"]));
        assert_eq!(
            c.diff(),
            "--- wl\n+++ wl\n@@ -1,2 +1,3 @@\n a\n-b\n\\ No newline at end of file\n+b\n+x\n"
        );
    }

    #[test]
    fn replacing_keeps_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("whitelist_clients.local");
        fs::write(&path, "old\n").expect("write");
        fs::set_permissions(&path, Permissions::from_mode(0o640)).expect("chmod");
        let change = Change::append(&path, read_optional(&path).expect("read"), &lines(&["new"]));
        let _lock = lock_directory_of(&path).expect("lock");
        change.apply().expect("apply");
        assert_eq!(fs::read_to_string(&path).expect("read"), "old\nnew\n");
        let meta = fs::metadata(&path).expect("stat");
        assert_eq!(meta.mode() & 0o7777, 0o640);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["whitelist_clients.local"]);
    }

    #[test]
    fn a_new_file_gets_mode_0644_and_its_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("etc/postgrey-advisor/ignore");
        let _lock = lock_directory_of(&path).expect("lock creates the directory");
        Change::append(&path, None, &lines(&["x.example"]))
            .apply()
            .expect("apply");
        assert_eq!(fs::read_to_string(&path).expect("read"), "x.example\n");
        assert_eq!(fs::metadata(&path).expect("stat").mode() & 0o7777, 0o644);
    }

    #[test]
    fn a_symlink_stays_a_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        let link = dir.path().join("link");
        fs::write(&real, "a\n").expect("write");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        Change::append(&link, Some(b"a\n".to_vec()), &lines(&["b"]))
            .apply()
            .expect("apply");
        assert!(
            fs::symlink_metadata(&link)
                .expect("lstat")
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).expect("read"), "a\nb\n");
    }

    #[test]
    fn stale_temporaries_are_removed_under_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ignore");
        fs::write(dir.path().join(".ignore.Ab3xYz.tmp"), "partial").expect("write");
        fs::write(dir.path().join(".ignore.keep-me.tmp"), "other").expect("write");
        fs::write(dir.path().join(".other.Ab3xYz.tmp"), "other").expect("write");
        let _lock = lock_directory_of(&path).expect("lock");
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".ignore.keep-me.tmp", ".other.Ab3xYz.tmp"]);
    }

    #[test]
    fn a_directory_is_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = atomic::replace(dir.path(), b"x", NEW_FILE_MODE).expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!("{} is not a regular file", dir.path().display())
        );
    }
}
