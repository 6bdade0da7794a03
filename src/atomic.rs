//! Replacing a file so that nothing is ever lost: readers (postgrey on SIGHUP, a monitoring
//! check, the next run) see the old file or the new one, never a part, whenever the machine
//! crashes.
//!
//! The new content goes to a temporary file in the same directory (`.NAME.XXXXXX.tmp`), which
//! gets the old file's owner and mode (a given mode for a new file), is synced, and is renamed
//! over the old one; then the directory is synced. A symlinked file is written through its link.
//! A writer killed before the rename leaves its temporary file; [`remove_stale_temporaries`]
//! clears them, called by whoever holds the lock that keeps writers of that file apart.

use std::fs::{self, File, Permissions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

/// Hidden test knob: milliseconds to sleep after the temporary file is written and synced and
/// before it is renamed, so a test can kill the process mid-write. Unset in production.
pub const PAUSE_BEFORE_RENAME_ENV: &str = "POSTGREY_ADVISOR_TEST_PAUSE_BEFORE_RENAME_MS";

const TEMP_SUFFIX: &str = ".tmp";
const TEMP_RANDOM_LEN: usize = 6;

/// Replaces `path` with `contents` so that readers see either the old or the new file.
pub fn replace(path: &Path, contents: &[u8], new_file_mode: u32) -> anyhow::Result<()> {
    replace_with(path, new_file_mode, |out| out.write_all(contents))
}

/// [`replace`], with the new content written by `write` straight into the temporary file: a
/// big state or summary then never exists as a whole in memory beside what it is made from.
pub fn replace_with(
    path: &Path,
    new_file_mode: u32,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let target = real_target(path)?;
    let dir = directory_of(&target);
    let old = match fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => bail!("{} is not a regular file", target.display()),
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot examine {}", target.display())),
    };
    let temp = tempfile::Builder::new()
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
        None => new_file_mode,
    };
    // After the chown, which clears set-id bits.
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {temp_name}"))?;
    let written = {
        let mut out = BufWriter::with_capacity(1 << 16, WrittenBack::new(temp.as_file()));
        write(&mut out).and_then(|()| out.flush())
    };
    written
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

/// How much of a new file is written before the kernel is asked to start writing it to disk.
const WRITE_BACK_BYTES: u64 = 1 << 20;

/// Writes to a file, and has the kernel start writing each MiB to disk as soon as it is
/// written: the sync that follows then waits for the last one only (syncing a summary of a
/// few megabytes at once took 5 ms at the end of a run).
struct WrittenBack<'f> {
    file: &'f File,
    written: u64,
    started: u64,
}

impl<'f> WrittenBack<'f> {
    fn new(file: &'f File) -> Self {
        WrittenBack {
            file,
            written: 0,
            started: 0,
        }
    }
}

impl Write for WrittenBack<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(bytes)?;
        self.written += n as u64;
        if self.written - self.started >= WRITE_BACK_BYTES {
            start_write_back(self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to disk, without
/// waiting. A hint: where it fails (a file system without it), the sync does the work.
fn start_write_back(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd as _;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range takes no pointers, and the descriptor stays open while `file`
    // is borrowed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// The file a path names, following a symlink so the link itself stays in place.
pub fn real_target(path: &Path) -> anyhow::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path)
            .with_context(|| format!("cannot follow the symlink {}", path.display())),
        _ => Ok(path.to_path_buf()),
    }
}

pub fn directory_of(path: &Path) -> &Path {
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

pub fn remove_stale_temporaries(target: &Path) -> anyhow::Result<()> {
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

    #[test]
    fn an_existing_file_keeps_its_mode_and_a_new_one_gets_the_given_mode() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        fs::write(&old, b"old").unwrap();
        fs::set_permissions(&old, Permissions::from_mode(0o640)).unwrap();
        replace(&old, b"new", 0o600).unwrap();
        assert_eq!(fs::metadata(&old).unwrap().mode() & 0o777, 0o640);
        assert_eq!(fs::read(&old).unwrap(), b"new");
        let new = dir.path().join("new");
        replace(&new, b"x", 0o600).unwrap();
        assert_eq!(fs::metadata(&new).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn stale_temporaries_of_that_file_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("state.json");
        for name in [
            ".state.json.a1B2c3.tmp",
            ".summary.json.a1B2c3.tmp",
            ".state.json.keep",
        ] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        remove_stale_temporaries(&target).unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".state.json.keep", ".summary.json.a1B2c3.tmp"]);
    }
}
