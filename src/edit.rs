//! Appending to the small configuration files postgrey-advisor is allowed to change
//! (`whitelist_clients.local`, the ignore file) so that nothing is ever lost: postgrey may reread
//! the file at any moment (SIGHUP), and the machine may crash mid-write.
//!
//! The new content is the old content byte for byte (a final newline added if it lacked one),
//! then a dated comment and the new lines. It is written to a temporary file in the same
//! directory, given the old file's mode and owner (0644 for a new file), synced, and renamed over
//! the old one; then the directory is synced. A reader sees the old file or the new one, never a
//! part. Writers of the same directory are serialised with a lock on the directory, under which
//! temporary files left by a killed writer are removed. A symlinked file is written through its
//! link.

use std::fs::{self, File, Permissions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::fcntl::{Flock, FlockArg};
use similar::TextDiff;

/// Hidden test knob: milliseconds to sleep after the temporary file is written and synced and
/// before it is renamed, so a test can kill the process mid-write.
pub const PAUSE_BEFORE_RENAME_ENV: &str = "POSTGREY_ADVISOR_TEST_PAUSE_BEFORE_RENAME_MS";

/// Mode of a file that did not exist before.
const NEW_FILE_MODE: u32 = 0o644;
const TEMP_SUFFIX: &str = ".tmp";
const TEMP_RANDOM_LEN: usize = 6;

/// The comment line that heads each block postgrey-advisor appends.
pub fn dated_comment(date: jiff::civil::Date) -> String {
    format!("# added by postgrey-advisor on {date}")
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
        replace_atomically(&self.path, &self.after)
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
    let target = real_target(path)?;
    let dir = directory_of(&target);
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let handle =
        File::open(dir).with_context(|| format!("cannot open directory {}", dir.display()))?;
    let lock = Flock::lock(handle, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("cannot lock directory {}", dir.display()))?;
    remove_stale_temporaries(&target)?;
    Ok(DirectoryLock { _lock: lock })
}

/// Replaces `path` with `contents` so that readers see either the old or the new file.
pub fn replace_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let target = real_target(path)?;
    let dir = directory_of(&target);
    let old = match fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => bail!("{} is not a regular file", target.display()),
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot examine {}", target.display())),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(&temp_prefix(&target))
        .suffix(TEMP_SUFFIX)
        .rand_bytes(TEMP_RANDOM_LEN)
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let temp_name = temp.path().display().to_string();
    let mode = match &old {
        Some(meta) => {
            let mine = temp
                .as_file()
                .metadata()
                .with_context(|| format!("cannot examine {temp_name}"))?;
            if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid()) {
                std::os::unix::fs::fchown(temp.as_file(), Some(meta.uid()), Some(meta.gid()))
                    .with_context(|| {
                        format!(
                            "cannot give the new {} the owner {}:{} of the old one",
                            target.display(),
                            meta.uid(),
                            meta.gid()
                        )
                    })?;
            }
            meta.mode() & 0o7777
        }
        None => NEW_FILE_MODE,
    };
    // After the chown, which clears set-id bits.
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {temp_name}"))?;
    temp.write_all(contents)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("cannot write {temp_name}"))?;
    pause_for_tests()?;
    temp.persist(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename {temp_name} to {}", target.display()))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))?;
    Ok(())
}

/// The file a path names, following a symlink so the link itself stays in place.
fn real_target(path: &Path) -> anyhow::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path)
            .with_context(|| format!("cannot follow the symlink {}", path.display())),
        _ => Ok(path.to_path_buf()),
    }
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.")
}

fn remove_stale_temporaries(target: &Path) -> anyhow::Result<()> {
    let dir = directory_of(target);
    let prefix = temp_prefix(target);
    let entries = fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(middle) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
        else {
            continue;
        };
        if middle.len() == TEMP_RANDOM_LEN && middle.bytes().all(|b| b.is_ascii_alphanumeric()) {
            fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn pause_for_tests() -> anyhow::Result<()> {
    let Some(value) = std::env::var_os(PAUSE_BEFORE_RENAME_ENV) else {
        return Ok(());
    };
    let millis: u64 = value
        .to_str()
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{PAUSE_BEFORE_RENAME_ENV} must be a number of milliseconds"))?;
    std::thread::sleep(Duration::from_millis(millis));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = replace_atomically(dir.path(), b"x").expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!("{} is not a regular file", dir.path().display())
        );
    }
}
