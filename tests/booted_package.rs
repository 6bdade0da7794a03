//! The Debian package as a postmaster runs it: built with `dpkg-buildpackage`, installed with
//! `dpkg` into a booted Debian 12 (systemd as PID 1 in `systemd-nspawn`) with real postgrey and
//! a local-only Postfix, driven by policy requests, the job started the way its timer starts it,
//! then purged.
//!
//! The root file system comes from `tests/booted/rootfs.sh` (mmdebstrap), cached as a tarball
//! under `/var/cache/postgrey-advisor-tests` (or `$POSTGREY_ADVISOR_TEST_CACHE`) and unpacked
//! afresh for every run. The package is the one `tests/units.rs` checks (`common::package`).
//!
//! Booting on a host whose PID 1 is not systemd and that has no system bus:
//! - `--register=no --keep-unit`: nspawn would otherwise ask machined over the bus and fail;
//!   for the same reason commands enter the container with `nsenter`, not `machinectl`.
//! - `--system-call-filter=bpf`: without `bpf()` the container's systemd runs units **without**
//!   their IP firewall and logs nothing, so `IPAddressDeny=` would seem to hold when it does not.
//!   The test proves the firewall by a connection that works from outside the unit only.
//! - `--private-network`: the container's own loopback, so its postgrey (:10023) and Postfix
//!   (:25) never meet the host's.
//!
//! Takes minutes (the package build, the boot, a 30 s SMTP timeout): `#[ignore]`d; CI runs it
//! with `cargo test -- --include-ignored`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_success, project_file};
use serde_json::Value;
use tempfile::TempDir;

const MESSAGE_ID: &str = "81e1a72418af45329193ed2abb060aad";
const HOST: &str = "mx.pga-test.example";
const PLUGIN: &str = "/usr/lib/nagios/plugins/check_postgrey_whitelist";
const STATE_DIR: &str = "/var/lib/postgrey-advisor";
/// Where the digest lands: the options file mails `postmaster`, an alias of root.
const MAILBOX: &str = "/var/mail/root";
/// A non-loopback address inside the container (on its `lo`) for the firewall test.
const OUTSIDE: &str = "192.0.2.25";
const OUTSIDE_PORT: u16 = 2525;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"))
}

/// Polls `probe` every 200 ms until it gives a value; panics naming `what` after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// The package and the root file system.

/// The cached root file system tarball (made on first use; see tests/booted/rootfs.sh).
fn rootfs_tarball() -> PathBuf {
    let cache = std::env::var_os("POSTGREY_ADVISOR_TEST_CACHE").map_or_else(
        || PathBuf::from("/var/cache/postgrey-advisor-tests"),
        PathBuf::from,
    );
    let output = run(Command::new(project_file("tests/booted/rootfs.sh")).arg(&cache));
    assert_success(&output, "tests/booted/rootfs.sh");
    PathBuf::from(text(&output.stdout).trim())
}

// ---------------------------------------------------------------------------------------------
// The booted machine.

/// A booted container; powered off (killed if need be) and deleted on drop.
struct Machine {
    nspawn: Child,
    pid1: u32,
    /// Holds `root/` (the container's file system) and `boot.log`.
    dir: TempDir,
}

impl Machine {
    fn boot(tarball: &Path) -> Machine {
        let dir = TempDir::new_in("/var/tmp").unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let unpack = run(Command::new("tar")
            .arg("-xf")
            .arg(tarball)
            .arg("-C")
            .arg(&root));
        assert_success(&unpack, "unpacking the root file system");
        let log = fs::File::create(dir.path().join("boot.log")).unwrap();
        let nspawn = Command::new("systemd-nspawn")
            .args(["--boot", "--directory"])
            .arg(&root)
            // Unique, so that runs on one host do not share nspawn's per-machine directories.
            .arg(format!("--machine=pga-test-{}", std::process::id()))
            .args([
                "--private-network",
                "--register=no",
                "--keep-unit",
                "--console=read-only",
                "--system-call-filter=bpf",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("systemd-nspawn (Debian package systemd-container)");
        let mut machine = Machine {
            nspawn,
            pid1: 0,
            dir,
        };
        let nspawn_pid = machine.nspawn.id().to_string();
        machine.pid1 = wait_for("the container's systemd", Duration::from_secs(60), || {
            let found = run(Command::new("pgrep").args(["-P", &nspawn_pid, "-x", "systemd"]));
            text(&found.stdout).trim().parse().ok()
        });
        // Until PID 1 has its bus socket, systemctl cannot ask it anything.
        let state = wait_for("systemd's state", Duration::from_secs(120), || {
            let output = machine.sh("systemctl is-system-running --wait");
            (!output.stdout.is_empty()).then_some(output)
        });
        assert_eq!(
            text(&state.stdout),
            "running\n",
            "boot did not finish cleanly: {}",
            text(
                &machine
                    .sh("systemctl --failed --no-pager; journalctl -b -p warning --no-pager | tail -30")
                    .stdout
            )
        );
        machine
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Runs `script` with bash inside the container: all of PID 1's namespaces, a clean
    /// environment as a login shell of root would have it.
    fn sh(&self, script: &str) -> Output {
        run(Command::new("nsenter")
            .args(["-t", &self.pid1.to_string(), "-a", "--"])
            .args([
                "/usr/bin/env",
                "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root",
                "TERM=dumb",
                "LANG=C.UTF-8",
                "SYSTEMD_PAGER=",
                "SYSTEMD_COLORS=0",
                "/bin/bash",
                "-c",
                script,
            ]))
    }

    /// Runs `script`, asserts success, returns stdout.
    fn ok(&self, script: &str) -> String {
        let output = self.sh(script);
        assert_success(&output, script);
        text(&output.stdout)
    }

    /// Copies a host file into the container.
    fn put(&self, from: &Path, to: &str) {
        let target = self.root().join(to.trim_start_matches('/'));
        fs::copy(from, &target)
            .unwrap_or_else(|e| panic!("{} → {}: {e}", from.display(), target.display()));
    }

    fn exists(&self, path: &str) -> bool {
        self.root().join(path.trim_start_matches('/')).exists()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let started = Instant::now();
        let poweroff = self.sh("systemctl poweroff --no-block");
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                eprintln!("powered off in {:.1} s", started.elapsed().as_secs_f64());
                self.remove_root();
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "the container did not power off within 30 s ({}{}); killing it",
            text(&poweroff.stdout),
            text(&poweroff.stderr)
        );
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        self.remove_root();
    }
}

impl Machine {
    /// Deletes the unpacked root file system (`rm` is much faster at it than `TempDir`'s drop).
    fn remove_root(&self) {
        let started = Instant::now();
        let _ = Command::new("rm")
            .args(["-rf", "--one-file-system"])
            .arg(self.root())
            .status();
        eprintln!(
            "root file system removed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// What the test reads inside.

/// Policy requests from one multi-server sender (tests/booted/drive.py): `mails` mails, each
/// greylisted from three /24s and then passed after 1900 s. Waits until postgrey has logged
/// all of them and returns how many decisions that made.
fn drive(machine: &Machine, domain: &str, mails: u32, tag: &str) -> u64 {
    let before = postgrey_decisions(machine);
    let reply = machine.ok(&format!("python3 /root/drive.py {domain} {mails} {tag}"));
    let reply: Value = serde_json::from_str(&reply).unwrap();
    let requests = u64::from(mails) * 4;
    assert_eq!(reply["requests"], requests);
    assert_eq!(
        reply["answers"]["action=DEFER_IF_PERMIT"],
        u64::from(mails) * 3
    );
    assert_eq!(reply["answers"]["action=PREPEND"], u64::from(mails));
    wait_for(
        "postgrey's decisions in the journal",
        Duration::from_secs(30),
        || (postgrey_decisions(machine) == before + requests).then_some(()),
    );
    requests
}

/// postgrey's policy decisions in the journal so far.
fn postgrey_decisions(machine: &Machine) -> u64 {
    machine
        .ok("journalctl _SYSTEMD_UNIT=postgrey.service -o cat --no-pager")
        .lines()
        .filter(|line| line.starts_with("action="))
        .count() as u64
}

/// Every line postgrey's unit logged so far.
fn postgrey_lines(machine: &Machine) -> u64 {
    machine
        .ok("journalctl _SYSTEMD_UNIT=postgrey.service -o cat --no-pager")
        .lines()
        .count() as u64
}

/// The report entries (`MESSAGE_ID`) in the journal, oldest first, as journalctl's JSON.
fn report_entries(machine: &Machine) -> Vec<Value> {
    machine
        .ok(&format!(
            "journalctl MESSAGE_ID={MESSAGE_ID} -o json --no-pager"
        ))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The `PGADVISOR_*`, `MESSAGE` and `PRIORITY` fields of a journal entry, sorted.
fn report_fields(entry: &Value) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = entry
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("PGADVISOR_") || *k == "MESSAGE" || *k == "PRIORITY")
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    fields.sort();
    fields
}

fn owned(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    fields.sort();
    fields
}

/// Messages in root's mailbox.
fn mail_count(machine: &Machine) -> usize {
    fs::read(machine.root().join(MAILBOX.trim_start_matches('/')))
        .map(|bytes| {
            text(&bytes)
                .lines()
                .filter(|line| line.starts_with("From "))
                .count()
        })
        .unwrap_or(0)
}

/// Waits for message `n` (1-based) in root's mailbox and returns it as bsd-mailx prints it in
/// a plain terminal (`p n`, then leave the mailbox unchanged).
fn mail_as_read(machine: &Machine, n: usize) -> String {
    wait_for(
        &format!("message {n} in {MAILBOX}"),
        Duration::from_secs(60),
        || (mail_count(machine) >= n).then_some(()),
    );
    machine.ok(&format!("printf 'p {n}\\nx\\n' | mail -N -f {MAILBOX}"))
}

/// The `Subject:` of a message as `mail` prints it, unfolded (a long one continues on lines
/// that start with a space).
fn subject_of(read: &str) -> String {
    let mut lines = read
        .lines()
        .skip_while(|line| !line.starts_with("Subject: "));
    let mut subject = lines.next().unwrap_or_default().to_owned();
    for continuation in lines.take_while(|line| line.starts_with([' ', '\t'])) {
        subject.push_str(continuation);
    }
    subject
}

/// The text of message `n` in the mailbox as stored (headers and encoded body).
fn mail_raw(machine: &Machine, n: usize) -> String {
    let mbox = text(&fs::read(machine.root().join(MAILBOX.trim_start_matches('/'))).unwrap());
    let mut messages = Vec::new();
    for line in mbox.split_inclusive('\n') {
        if line.starts_with("From ") {
            messages.push(String::new());
        }
        if let Some(current) = messages.last_mut() {
            current.push_str(line);
        }
    }
    messages[n - 1].clone()
}

/// The plugin as `user` (nagios, nobody): exit code and output.
fn plugin_as(machine: &Machine, user: &str) -> (i32, String) {
    let output = machine.sh(&format!("runuser -u {user} -- {PLUGIN}"));
    (output.status.code().unwrap_or(-1), text(&output.stdout))
}

/// `systemctl show -p PROPERTY --value UNIT`.
fn property(machine: &Machine, unit: &str, property: &str) -> String {
    machine
        .ok(&format!("systemctl show -p {property} --value {unit}"))
        .trim_end()
        .to_owned()
}

/// Waits until the oneshot job is no longer running and returns its `Result`.
fn job_result(machine: &Machine) -> String {
    wait_for(
        "postgrey-advisor.service to finish",
        Duration::from_secs(300),
        || {
            (property(machine, "postgrey-advisor.service", "ActiveState") == "inactive"
                || property(machine, "postgrey-advisor.service", "ActiveState") == "failed")
                .then_some(())
        },
    );
    property(machine, "postgrey-advisor.service", "Result")
}

/// Seconds from `since` until the summary exists and the job has finished.
fn first_run_after(machine: &Machine, since: Instant) -> f64 {
    wait_for(
        "summary.json after the installation",
        Duration::from_secs(300),
        || {
            machine
                .exists(&format!("{STATE_DIR}/summary.json"))
                .then_some(())
        },
    );
    let seconds = since.elapsed().as_secs_f64();
    assert_eq!(job_result(machine), "success");
    seconds
}

fn summary(machine: &Machine) -> Value {
    let path = machine.root().join(format!(
        "{}/summary.json",
        STATE_DIR.trim_start_matches('/')
    ));
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "builds the .deb and boots Debian 12 in systemd-nspawn (minutes): \
            cargo test --test booted_package -- --ignored"]
fn the_installed_package_works_under_a_booted_systemd() {
    let started = Instant::now();
    let deb = common::package::build();
    eprintln!("package built: {:.0} s", started.elapsed().as_secs_f64());
    let tarball = rootfs_tarball();
    eprintln!(
        "root file system ready: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let machine = Machine::boot(&tarball);
    eprintln!("booted: {:.0} s", started.elapsed().as_secs_f64());
    machine.put(&deb, "/root/postgrey-advisor.deb");
    machine.put(&project_file("tests/booted/drive.py"), "/root/drive.py");

    // Mail from a multi-server sender, with postgrey's start-up and reload lines around it.
    machine.ok("systemctl kill -s HUP --kill-whom=main postgrey.service");
    wait_for("postgrey's reload line", Duration::from_secs(30), || {
        machine
            .ok("journalctl _SYSTEMD_UNIT=postgrey.service -o cat --no-pager")
            .contains("HUP received: reloading whitelists...")
            .then_some(())
    });
    let round_1 = drive(&machine, "esp-one.net", 6, "r1");
    assert_eq!(round_1, 24);
    let lines_before_install = postgrey_lines(&machine);
    assert!(lines_before_install > round_1, "no start-up lines?");

    // Unpacked but not configured: the plugin is there, no run has happened.
    machine.ok("dpkg --unpack /root/postgrey-advisor.deb");
    for user in ["nagios", "nobody"] {
        assert_eq!(
            plugin_as(&machine, user),
            (
                3,
                format!(
                    "POSTGREY WHITELIST UNKNOWN - no run of postgrey-advisor has completed yet: \
                     {STATE_DIR}/summary.json does not exist (start one: systemctl start \
                     postgrey-advisor.service)\n"
                )
            )
        );
    }

    // Configuring it (the second half of `dpkg -i`) starts the first run.
    let configured = Instant::now();
    machine.ok("dpkg --configure postgrey-advisor");
    let first_run_s = first_run_after(&machine, configured);
    eprintln!("first run finished {first_run_s:.1} s after dpkg --configure");
    assert!(first_run_s < 180.0, "{first_run_s} s");

    // The timer, the user, the files.
    assert_eq!(
        machine.ok("systemctl is-enabled postgrey-advisor.timer"),
        "enabled\n"
    );
    assert_eq!(
        machine.ok("systemctl is-active postgrey-advisor.timer"),
        "active\n"
    );
    assert_eq!(
        property(&machine, "postgrey-advisor.timer", "Unit"),
        "postgrey-advisor.service"
    );
    let passwd = machine.ok("getent passwd _postgrey-advisor");
    assert!(
        passwd.starts_with("_postgrey-advisor:x:")
            && passwd.ends_with(":postgrey-advisor:/var/lib/postgrey-advisor:/usr/sbin/nologin\n"),
        "{passwd}"
    );
    // Journal access comes from the unit's SupplementaryGroups=, not from the user's groups.
    assert_eq!(
        machine.ok("id -nG _postgrey-advisor"),
        "_postgrey-advisor\n"
    );
    let uid = machine.ok("id -u _postgrey-advisor").trim().to_owned();
    assert_eq!(
        machine.ok(&format!(
            "stat -c '%a %U %G %n' {STATE_DIR} {STATE_DIR}/state.json {STATE_DIR}/summary.json"
        )),
        format!(
            "755 _postgrey-advisor _postgrey-advisor {STATE_DIR}\n\
             600 _postgrey-advisor _postgrey-advisor {STATE_DIR}/state.json\n\
             644 _postgrey-advisor _postgrey-advisor {STATE_DIR}/summary.json\n"
        )
    );

    // The hardened unit read the whole journal through the systemd-journal group: every line
    // postgrey's unit logged, of which only the policy requests count as decisions.
    let first = summary(&machine);
    assert_eq!(first["entries_read"], lines_before_install);
    assert_eq!(first["totals"]["decisions"], 24);
    assert_eq!(first["totals"]["greylisted"], 18);

    // The journal report: a summary and one entry per candidate, every field.
    let entries = report_entries(&machine);
    assert_eq!(entries.len(), 2, "{entries:#?}");
    for entry in &entries {
        assert_eq!(entry["_SYSTEMD_UNIT"], "postgrey-advisor.service");
        assert_eq!(entry["_UID"], uid.as_str());
    }
    assert_eq!(
        report_fields(&entries[0]),
        owned(&[
            (
                "MESSAGE",
                &format!(
                    "postgrey-advisor: {lines_before_install} entries read since the previous \
                     run; in the window 18 greylisted, 1 candidate to review"
                )
            ),
            ("PRIORITY", "5"),
            ("PGADVISOR_KIND", "summary"),
            ("PGADVISOR_CANDIDATES", "1"),
            ("PGADVISOR_ENTRIES_READ", &lines_before_install.to_string()),
            ("PGADVISOR_GREYLISTED", "18"),
            ("PGADVISOR_UNTRUSTED_SKIPPED", "0"),
            ("PGADVISOR_CURSOR_LOST", "0"),
        ])
    );
    let candidate = report_fields(&entries[1]);
    let reason = candidate
        .iter()
        .find(|(k, _)| k == "PGADVISOR_REASON")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert_eq!(
        candidate,
        owned(&[
            (
                "MESSAGE",
                "postgrey-advisor: esp-one.net: whitelist, 18 greylisted, suggest out.esp-one.net"
            ),
            ("PRIORITY", "5"),
            ("PGADVISOR_KIND", "candidate"),
            ("PGADVISOR_DOMAIN", "esp-one.net"),
            ("PGADVISOR_NEW", "18"),
            ("PGADVISOR_GREYLISTED", "18"),
            ("PGADVISOR_RETRIED_FROM_OTHER_NET", "12"),
            ("PGADVISOR_PASSED_AFTER_DELAY", "6"),
            ("PGADVISOR_STATUS", "candidate"),
            ("PGADVISOR_VERDICT", "whitelist"),
            ("PGADVISOR_REASON", &reason),
            ("PGADVISOR_SUGGESTION", "out.esp-one.net"),
        ])
    );
    assert!(!reason.is_empty());
    // The catalog shipped with the package is indexed.
    assert!(
        machine
            .ok("journalctl --list-catalog --no-pager")
            .contains(&format!(
                "{MESSAGE_ID} postgrey-advisor: Greylisting review"
            )),
    );

    // The digest, delivered by SMTP to the local Postfix from inside IPAddressDeny=any, as
    // 8bit text that a plain terminal mail reader shows as it was written.
    let raw = mail_raw_after(&machine, 1);
    assert!(raw.contains("\nContent-Transfer-Encoding: 8bit\n"), "{raw}");
    assert!(!raw.contains("=E2=96"), "{raw}");
    let read = mail_as_read(&machine, 1);
    eprintln!("the first digest as mail shows it:\n{read}");
    assert_eq!(
        subject_of(&read),
        format!("Subject: postgrey-advisor on {HOST}: 1 new candidate to review")
    );
    for expected in [
        "24 decisions by postgrey, 18 greylisted, 0 untrusted entries skipped.\n\
         This is the first digest.\n\n\
         Senders that need a decision (1):\n\n\
         esp-one.net  [whitelist]\n\
         \x20 18 greylisted, 12 retried from another network, 6 passed after delay, median\n\
         \x20   wait 31m\n\
         \x20 18 hosts, 18 addresses, 3 networks, e.g. o0-0.out.esp-one.net\n\
         \x20 per day |█|\n",
        "Ready to paste into /etc/postgrey/whitelist_clients.local:\n\n",
        "\nout.esp-one.net\n",
    ] {
        assert!(read.contains(expected), "no {expected:?} in:\n{read}");
    }

    // The plugin, as the monitoring users, from the world-readable summary.
    for user in ["nagios", "nobody"] {
        let (code, output) = plugin_as(&machine, user);
        assert_eq!(code, 1, "{output}");
        assert!(
            output.starts_with("POSTGREY WHITELIST WARNING - 1 unreviewed sender"),
            "{output}"
        );
    }

    // A second run, started as the timer starts it, counts exactly what came since.
    let round_2 = drive(&machine, "esp-two.com", 5, "r2");
    machine.ok("systemctl start postgrey-advisor.service");
    assert_eq!(job_result(&machine), "success");
    assert_eq!(summary(&machine)["entries_read"], round_2);
    let entries = report_entries(&machine);
    let second_summary = entries
        .iter()
        .filter(|e| e["PGADVISOR_KIND"] == "summary")
        .nth(1)
        .expect("a second summary entry");
    assert_eq!(
        second_summary["PGADVISOR_ENTRIES_READ"],
        round_2.to_string()
    );
    assert_eq!(second_summary["PGADVISOR_CANDIDATES"], "2");
    let read = mail_as_read(&machine, 2);
    eprintln!("the second digest as mail shows it:\n{read}");
    assert_eq!(
        subject_of(&read),
        format!("Subject: postgrey-advisor on {HOST}: 1 new candidate, 1 still unreviewed")
    );
    for expected in [
        "New since the previous digest (1):\n\nesp-two.com  [whitelist]\n",
        "Still unreviewed, listed in an earlier digest (1):\n  esp-one.net [whitelist] 18 \
         greylisted, listed since ",
    ] {
        assert!(read.contains(expected), "no {expected:?} in:\n{read}");
    }

    // The IP firewall: a listener on a non-loopback address of the container takes a
    // connection from outside the unit, but the unit's own SMTP connection to it never
    // arrives, and the run fails for want of delivery.
    machine.ok(&format!("ip address add {OUTSIDE}/32 dev lo"));
    machine.ok(&format!(
        "systemd-run --unit=outside-listener python3 -c 'import socket
s = socket.create_server((\"0.0.0.0\", {OUTSIDE_PORT}))
while True:
    c, a = s.accept()
    print(\"connection from\", a[0], flush=True)
    c.close()'"
    ));
    let connections = || {
        machine
            .ok("journalctl -u outside-listener -o cat --no-pager")
            .lines()
            .filter(|l| l.starts_with("connection from"))
            .count()
    };
    wait_for("the listener", Duration::from_secs(30), || {
        machine
            .sh(&format!(
                "python3 -c 'import socket; socket.create_connection((\"{OUTSIDE}\", {OUTSIDE_PORT}), 5)'"
            ))
            .status
            .success()
            .then_some(())
    });
    wait_for("the control connection", Duration::from_secs(10), || {
        (connections() == 1).then_some(())
    });
    let round_3 = drive(&machine, "esp-three.org", 5, "r3");
    machine.ok(&format!(
        "mkdir -p /run/systemd/system/postgrey-advisor.service.d && printf \
         '[Service]\\nEnvironment=POSTGREY_ADVISOR_SMTP={OUTSIDE}:{OUTSIDE_PORT}\\n' \
         > /run/systemd/system/postgrey-advisor.service.d/outside.conf && systemctl daemon-reload"
    ));
    let failed = machine.sh("systemctl start postgrey-advisor.service");
    assert!(!failed.status.success());
    assert_eq!(job_result(&machine), "exit-code");
    assert_eq!(
        connections(),
        1,
        "the unit reached {OUTSIDE}: no IP firewall"
    );
    assert_eq!(summary(&machine)["entries_read"], round_3);
    let log = machine.ok(
        "journalctl -u postgrey-advisor.service -o cat --no-pager _SYSTEMD_UNIT=postgrey-advisor.service",
    );
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("not delivered") || l.starts_with(':'))
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].starts_with(&format!(
            "postgrey-advisor: the digest to postmaster was not delivered; the next run mails \
             these findings again: SMTP delivery to {OUTSIDE}:{OUTSIDE_PORT} failed: "
        )),
        "{log}"
    );
    assert_eq!(mail_count(&machine), 2);

    // Back to the local Postfix: the next run reads nothing new and mails what the failed
    // one found.
    machine.ok(
        "rm -r /run/systemd/system/postgrey-advisor.service.d && systemctl daemon-reload \
         && systemctl start postgrey-advisor.service",
    );
    assert_eq!(job_result(&machine), "success");
    assert_eq!(summary(&machine)["entries_read"], 0);
    let read = mail_as_read(&machine, 3);
    eprintln!("the third digest (after the failed delivery) as mail shows it:\n{read}");
    assert_eq!(
        subject_of(&read),
        format!("Subject: postgrey-advisor on {HOST}: 1 new candidate, 2 still unreviewed")
    );
    let expected = "New since the previous digest (1):\n\nesp-three.org  [whitelist]\n";
    assert!(read.contains(expected), "no {expected:?} in:\n{read}");

    // Reviewed: the plugin is OK for both monitoring users.
    machine.ok("postgrey-advisor ignore esp-one.net esp-two.com esp-three.org");
    for user in ["nagios", "nobody"] {
        let (code, output) = plugin_as(&machine, user);
        assert_eq!(code, 0, "{output}");
        assert!(
            output.starts_with("POSTGREY WHITELIST OK - no unreviewed senders"),
            "{output}"
        );
    }

    // accept --reload under systemd: the whitelist line, then SIGHUP through systemd (Debian
    // 12's postgrey.service has no ExecReload), after which postgrey passes the accepted
    // provider's client at once.
    let hup = "journalctl _SYSTEMD_UNIT=postgrey.service -o cat --no-pager \
               | grep -c -F 'HUP received: reloading whitelists...' || true";
    let hups_before: u64 = machine.ok(hup).trim().parse().unwrap();
    let said = machine.ok("postgrey-advisor accept --reload esp-four.net");
    assert_eq!(
        said,
        "added to /etc/postgrey/whitelist_clients.local:\n  esp-four.net\n\
         sent SIGHUP to postgrey.service (systemctl kill -s HUP --kill-whom=main \
         postgrey.service)\n"
    );
    wait_for(
        "postgrey's second reload line",
        Duration::from_secs(30),
        || {
            let hups: u64 = machine.ok(hup).trim().parse().unwrap();
            (hups == hups_before + 1).then_some(())
        },
    );
    let answer = machine.ok("python3 - <<'EOF'\n\
         import socket\n\
         s = socket.create_connection(('127.0.0.1', 10023), timeout=30)\n\
         name = 'o9.out.esp-four.net'\n\
         request = {'request': 'smtpd_access_policy', 'protocol_state': 'RCPT',\n\
         \x20   'protocol_name': 'ESMTP', 'client_address': '198.51.100.99', 'client_name': name,\n\
         \x20   'reverse_client_name': name, 'helo_name': name, 'sender': 'news@esp-four.net',\n\
         \x20   'recipient': 'bob@mx.pga-test.example', 'instance': 'accept.1'}\n\
         s.sendall(''.join(f'{k}={v}\\n' for k, v in request.items()).encode() + b'\\n')\n\
         print(s.makefile().readline().strip())\n\
         EOF");
    assert_eq!(answer, "action=DUNNO\n");
    wait_for("postgrey's whitelist pass", Duration::from_secs(30), || {
        machine
            .ok("journalctl _SYSTEMD_UNIT=postgrey.service -o cat --no-pager")
            .contains(
                "action=pass, reason=client whitelist, client_name=o9.out.esp-four.net, \
                 client_address=198.51.100.99",
            )
            .then_some(())
    });

    // Purge leaves nothing of the package behind (the system user stays, as usual).
    let files: Vec<String> = machine
        .ok("dpkg -L postgrey-advisor")
        .lines()
        .map(str::to_owned)
        .collect();
    machine.ok("dpkg -P postgrey-advisor");
    assert!(!machine.sh("dpkg -s postgrey-advisor").status.success());
    for file in &files {
        let path = machine.root().join(file.trim_start_matches('/'));
        assert!(
            path.is_dir() || fs::symlink_metadata(&path).is_err(),
            "{file} is left after purge"
        );
    }
    let left = machine.sh(
        "find / -xdev \\( -path /proc -o -path /sys -o -path /root -o -path /var/log/journal \\) -prune \
         -o -name '*postgrey-advisor*' -print",
    );
    assert_eq!(text(&left.stdout), "", "left after purge");
    assert_eq!(
        machine
            .sh("systemctl is-active postgrey-advisor.timer")
            .stdout,
        b"inactive\n"
    );
    assert!(
        !machine
            .ok("journalctl --list-catalog --no-pager")
            .contains(MESSAGE_ID)
    );

    // A new installation with `dpkg -i`: a summary within minutes, the plugin not UNKNOWN.
    let installed = Instant::now();
    machine.ok("dpkg -i /root/postgrey-advisor.deb");
    let first_run_s = first_run_after(&machine, installed);
    eprintln!("first run finished {first_run_s:.1} s after dpkg -i");
    assert!(first_run_s < 180.0, "{first_run_s} s");
    for user in ["nagios", "nobody"] {
        let (code, output) = plugin_as(&machine, user);
        assert_eq!(code, 1, "{output}");
        assert!(
            output.starts_with("POSTGREY WHITELIST WARNING - 3 unreviewed senders"),
            "{output}"
        );
    }
    eprintln!("whole test: {:.0} s", started.elapsed().as_secs_f64());
}

/// Waits for message `n` and returns it as stored.
fn mail_raw_after(machine: &Machine, n: usize) -> String {
    wait_for(
        &format!("message {n} in {MAILBOX}"),
        Duration::from_secs(60),
        || (mail_count(machine) >= n).then_some(()),
    );
    mail_raw(machine, n)
}
