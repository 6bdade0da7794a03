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

use common::{ExportEntry, JournalFiles, Journald, bin_path};

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

/// The report has no note on journal files that could not be opened.
fn assert_nothing_skipped(report: &Value) {
    let notes = report["notes"].as_array().unwrap();
    assert!(
        !notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("could not be opened")),
        "{notes:?}"
    );
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
    assert_nothing_skipped(&complete);

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

const HOSTS: usize = 20;
const FILES_PER_HOST: usize = 25;
const ENTRIES_PER_FILE: usize = 4;

/// `systemd-journal-remote`'s gathering of 20 MX hosts, 25 files each: every file holds four
/// greylistings of pairs that every host greylists once (a sender that tries all MX hosts in
/// turn), all within the hour before now.
fn twenty_hosts() -> JournalFiles {
    let gathered = JournalFiles::new();
    let now_us = jiff::Timestamp::now().as_microsecond() as u64;
    let start_us = now_us - 3_600_000_000;
    for file in 0..FILES_PER_HOST {
        for host in 0..HOSTS {
            let entries: Vec<ExportEntry> = (0..ENTRIES_PER_FILE)
                .map(|e| {
                    let at =
                        start_us + ((file * HOSTS + host) * ENTRIES_PER_FILE + e) as u64 * 1000;
                    let message = format!(
                        "action=greylist, reason=new, client_name=out.bulk.example, \
                         client_address=198.51.100.7, sender=news{file}@bulk.example, \
                         recipient=user{e}@example.org"
                    );
                    let at = jiff::Timestamp::from_microsecond(at as i64).unwrap();
                    ExportEntry::postgrey(&at.to_string(), message)
                        .set("_MACHINE_ID", format!("{:032x}", 0xa0 + host))
                        .set("_HOSTNAME", format!("mx{host:02}"))
                })
                .collect();
            gathered.add(&format!("remote-mx{host:02}@{file:03}"), &entries);
        }
    }
    assert_eq!(gathered.files().len(), HOSTS * FILES_PER_HOST);
    gathered
}

#[test]
fn five_hundred_files_of_twenty_hosts_are_all_counted() {
    let gathered = twenty_hosts();
    let all = (HOSTS * FILES_PER_HOST * ENTRIES_PER_FILE) as u64;
    let report = report(gathered.dir(), "256:4096");
    assert_eq!(report["totals"]["entries"], all, "{}", report["totals"]);
    assert_eq!(report["totals"]["greylisted"], all);
    assert_nothing_skipped(&report);
    let per_host = (FILES_PER_HOST * ENTRIES_PER_FILE) as u64;
    let expected: Vec<Value> = (0..HOSTS)
        .map(|h| {
            serde_json::json!({"entries": per_host, "greylisted": per_host,
                               "host": format!("mx{h:02}")})
        })
        .collect();
    assert_eq!(report["mx_hosts"], Value::Array(expected));
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    // 100 pairs, each greylisted at 20 hosts: 19 times again at another one.
    let pairs = (FILES_PER_HOST * ENTRIES_PER_FILE) as u64;
    assert_eq!(groups[0]["retried_at_other_mx"], pairs * (HOSTS as u64 - 1));
    assert_eq!(groups[0]["retried_from_other_net"], 0);
    let mx = groups[0]["mx"].as_object().unwrap();
    assert_eq!(mx.len(), HOSTS);
    assert!(mx.values().all(|n| *n == per_host), "{mx:?}");
}
