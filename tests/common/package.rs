//! The Debian package of the current source, built once for every test that needs it.
//!
//! `dpkg-buildpackage` runs in `target/tmp/package/postgrey-advisor-0.1.0`, a copy of the project
//! without build output. A fingerprint of the copied files is kept beside the `.deb`: while the
//! source is unchanged, [`build`] hands over the same package (the package tests of
//! `tests/units.rs` and the booted test of `tests/booted_package.rs` share one build), and a
//! changed source is rebuilt with the cargo target directory of the previous build kept, so only
//! this crate is compiled again. A file lock keeps test processes from building at once.

use std::fs::{self, File};
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Build output that must not be copied into the package's source tree.
const NOT_SOURCE: [&str; 6] = [
    "target",
    ".git",
    "debian/cargo-target",
    "debian/generated",
    "debian/.debhelper",
    "debian/postgrey-advisor",
];

/// The files of the package's source tree, relative to `from`, sorted.
fn source_files(from: &Path, relative: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(from.join(relative)).unwrap() {
        let entry = entry.unwrap();
        let path = relative.join(entry.file_name());
        if NOT_SOURCE.iter().any(|skip| Path::new(skip) == path) {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() && !kind.is_symlink() {
            source_files(from, &path, files);
        } else {
            files.push(path);
        }
    }
    files.sort();
}

/// Copies `files` (symlinks as symlinks) and returns their fingerprint: names, link targets
/// and contents. The integration tests are copied (they belong to the source) but do not count:
/// the package build neither compiles nor runs them.
fn copy_and_fingerprint(from: &Path, to: &Path, files: &[PathBuf]) -> String {
    let mut hash = fnv::FnvHasher::default();
    for path in files {
        let (source, target) = (from.join(path), to.join(path));
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        if path.starts_with("tests") {
            let copied = if fs::symlink_metadata(&source)
                .unwrap()
                .file_type()
                .is_symlink()
            {
                std::os::unix::fs::symlink(fs::read_link(&source).unwrap(), &target)
            } else {
                fs::copy(&source, &target).map(drop)
            };
            copied.unwrap();
            continue;
        }
        hash.write(path.as_os_str().as_encoded_bytes());
        hash.write_u8(0);
        if fs::symlink_metadata(&source)
            .unwrap()
            .file_type()
            .is_symlink()
        {
            let link = fs::read_link(&source).unwrap();
            hash.write(link.as_os_str().as_encoded_bytes());
            std::os::unix::fs::symlink(link, &target).unwrap();
        } else {
            hash.write(&fs::read(&source).unwrap());
            fs::copy(&source, &target).unwrap();
        }
        hash.write_u8(0);
    }
    format!("{:016x}", hash.finish())
}

/// The `.deb` of the current source (see the module documentation).
pub fn build() -> PathBuf {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package");
    fs::create_dir_all(&work).unwrap();
    let lock = File::create(work.join(".lock")).unwrap();
    lock.lock().unwrap();

    let arch = super::run_ok(Command::new("dpkg").arg("--print-architecture"));
    let deb = work.join(format!(
        "postgrey-advisor_0.1.0-1_{}.deb",
        String::from_utf8_lossy(&arch.stdout).trim()
    ));
    let stamp = work.join("source.fingerprint");
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    source_files(project, Path::new(""), &mut files);

    // A fresh copy of the source, keeping only the previous build's cargo target directory.
    let source = work.join("postgrey-advisor-0.1.0");
    let kept = work.join("cargo-target");
    if source.join("debian/cargo-target").is_dir() {
        let _ = fs::remove_dir_all(&kept);
        fs::rename(source.join("debian/cargo-target"), &kept).unwrap();
    }
    let _ = fs::remove_dir_all(&source);
    let fingerprint = copy_and_fingerprint(project, &source, &files);
    if kept.is_dir() {
        fs::rename(&kept, source.join("debian/cargo-target")).unwrap();
    }
    if deb.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(fingerprint.as_str()) {
        return deb;
    }
    let _ = fs::remove_file(&stamp);
    // --no-pre-clean: `debian/rules clean` would delete the kept target directory.
    super::run_ok(
        Command::new("dpkg-buildpackage")
            .args(["-us", "-uc", "-b", "--no-pre-clean"])
            .current_dir(&source),
    );
    assert!(deb.is_file(), "no {}", deb.display());
    fs::write(&stamp, fingerprint).unwrap();
    deb
}
