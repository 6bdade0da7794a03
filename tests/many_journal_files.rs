//! A journal directory of a thousand files — what `systemd-journal-remote` gathers from dozens
//! of hosts — read completely although the soft limit on open files is 256: sd-journal keeps
//! every file open and silently skips those it cannot open, so the binary raises the limit to
//! the hard limit first, and names the files it still could not open.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use common::{Journald, bin_path};

const FILES: usize = 1000;

/// One varlink call to journald (`io.systemd.Journal.Synchronize` or `.Rotate`), as
/// `journalctl --sync` / `--rotate` make it, without a process per call.
fn varlink(socket: &Path, method: &str) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .write_all(format!("{{\"method\":\"io.systemd.Journal.{method}\"}}\0").as_bytes())
        .unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read(&mut byte).unwrap() == 1 && byte[0] != 0 {
        reply.push(byte[0]);
    }
    let reply = String::from_utf8(reply).unwrap();
    assert!(!reply.contains("\"error\""), "{method}: {reply}");
}

/// A namespace whose directory holds `FILES` journal files, entry `i` in file `i`.
fn thousand_files() -> Journald {
    let journald = Journald::start_with_config(
        "RuntimeMaxFileSize=512K\nRuntimeMaxFiles=5000\nRuntimeMaxUse=4G\nRuntimeKeepFree=0\n",
    );
    let socket = UnixDatagram::unbound().unwrap();
    let control = journald.socket_dir().join("io.systemd.journal");
    for i in 0..FILES {
        let entry = format!(
            "SYSLOG_IDENTIFIER=postgrey\nMESSAGE=action=greylist, reason=new, \
             client_name=out{i}.mx.sender-{}.example, client_address=192.0.{}.{}, \
             sender=news@sender.example, recipient=user{i}@example.org\n",
            i % 40,
            i / 200,
            i % 200 + 1
        );
        socket
            .send_to(entry.as_bytes(), journald.native_socket())
            .unwrap();
        varlink(&control, "Synchronize");
        if i + 1 < FILES {
            varlink(&control, "Rotate");
        }
    }
    assert_eq!(journald.journal_files().len(), FILES);
    journald
}

fn report(dir: &Path, nofile: &str) -> Value {
    let output = Command::new("prlimit")
        .arg(format!("--nofile={nofile}"))
        .arg(bin_path())
        .args(["report", "--trust-any", "--all", "--format", "json"])
        .args([
            "--whitelist-clients",
            "/dev/null",
            "--ignore-file",
            "/dev/null",
        ])
        .arg("--journal-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_thousand_files_are_read_with_a_soft_limit_of_256() {
    let journald = thousand_files();
    let dir = journald.journal_dir();

    // journalctl itself, held to 256 descriptors, loses entries: the trap being avoided.
    let journalctl = Command::new("prlimit")
        .args(["--nofile=256:256", "journalctl", "-o", "cat", "-D"])
        .arg(dir)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&journalctl.stdout).lines().count();
    assert!(shown < FILES, "journalctl showed {shown}");

    // Soft limit 256, hard limit higher: every entry counted, nothing said to be skipped.
    let complete = report(dir, "256:4096");
    assert_eq!(
        complete["totals"]["greylisted"], FILES,
        "{}",
        complete["totals"]
    );
    let groups = complete["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 40);
    assert!(groups.iter().all(|g| g["new"] == 25), "{groups:?}");
    let notes = complete["notes"].as_array().unwrap();
    assert!(
        !notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("could not be opened")),
        "{notes:?}"
    );

    // A hard limit of 256: the files left over are named, and the count says what was read.
    let held = report(dir, "256:256");
    let new = held["totals"]["greylisted"].as_u64().unwrap();
    assert!(new < FILES as u64 && new > 200, "{new}");
    let note = held["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|n| n.contains("could not be opened"))
        .unwrap_or_else(|| panic!("no note on skipped files: {}", held["notes"]));
    let skipped: u64 = note.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(skipped, FILES as u64 - new, "{note}");
    assert!(
        note.ends_with(
            "the open-file limit (ulimit -n) may be too low, or the files are unreadable or damaged"
        ),
        "{note}"
    );
}
