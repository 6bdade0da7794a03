//! `accept`, `ignore` and `audit` through the real binary: exact output, exit codes and file
//! contents; files survive a SIGKILL mid-write; an accepted domain passes a real postgrey after
//! SIGHUP.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::fixtures::{DEBIAN_LIST, copy_debian_list};
use common::postgrey::{DUNNO_REPLY, greylist_reply};
use common::{Journald, Postgrey, bin, bin_path, wait_for, world_readable_tempdir};

const RELOAD_HINT: &str = "postgrey rereads its whitelists on SIGHUP: systemctl kill -s HUP --kill-whom=main postgrey.service (or accept --reload)\n";
const PAUSE_ENV: &str = "POSTGREY_ADVISOR_TEST_PAUSE_BEFORE_RENAME_MS";

/// The dates before and after a run: the dated comment carries one of them (they differ only
/// when the run spans midnight).
struct Today {
    before: String,
    after: String,
}

impl Today {
    fn around<T>(run: impl FnOnce() -> T) -> (Today, T) {
        let before = today();
        let result = run();
        (
            Today {
                before,
                after: today(),
            },
            result,
        )
    }

    fn assert_eq(&self, actual: &str, expected: impl Fn(&str) -> String) {
        if self.before == self.after {
            assert_eq!(actual, expected(&self.before));
        } else {
            assert!(
                actual == expected(&self.before) || actual == expected(&self.after),
                "{actual:?} carries neither {} nor {}",
                self.before,
                self.after
            );
        }
    }
}

fn today() -> String {
    jiff::ZonedDateTime::now().date().to_string()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8 output")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Runs the binary with `args` to the end.
fn advisor(args: &[&str]) -> Output {
    bin().args(args).output().expect("run")
}

/// [`advisor`], with the dates around the run for the dated comment it writes.
fn advisor_dated(args: &[&str]) -> (Today, Output) {
    Today::around(|| advisor(args))
}

/// What `accept` prints after adding `entries` to `path`.
fn added_to(path: &Path, entries: &[&str]) -> String {
    let lines: String = entries.iter().map(|e| format!("  {e}\n")).collect();
    format!("added to {}:\n{lines}{RELOAD_HINT}", path.display())
}

#[test]
fn accept_appends_a_dated_block_and_keeps_content_mode_and_owner() {
    common::require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("whitelist_clients.local");
    fs::write(&path, "# our additions\nexample.com").expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
    let (uid, gid) = (
        nix::unistd::Uid::from_raw(1234),
        nix::unistd::Gid::from_raw(4321),
    );
    nix::unistd::chown(&path, Some(uid), Some(gid)).expect("chown");

    let (today, out) = advisor_dated(&[
        "accept",
        "--whitelist-local",
        s(&path),
        "Outbound.Protection.Outlook.COM",
        "amazonses.com.",
    ]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        added_to(&path, &["outbound.protection.outlook.com", "amazonses.com"])
    );
    assert_eq!(out.status.code(), Some(0));
    today.assert_eq(&read(&path), |d| {
        format!(
            "# our additions\nexample.com\n# added by postgrey-advisor on {d}\n\
             outbound.protection.outlook.com\namazonses.com\n"
        )
    });
    let meta = fs::metadata(&path).expect("stat");
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), (1234, 4321));
    assert_eq!(names_in(dir.path()), ["whitelist_clients.local"]);
}

#[test]
fn accept_creates_a_missing_file_with_mode_0644() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("postgrey/whitelist_clients.local");
    let (today, out) = advisor_dated(&["accept", "--whitelist-local", s(&path), "mailer-esp.net"]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout), added_to(&path, &["mailer-esp.net"]));
    assert_eq!(out.status.code(), Some(0));
    today.assert_eq(&read(&path), |d| {
        format!("# added by postgrey-advisor on {d}\nmailer-esp.net\n")
    });
    assert_eq!(fs::metadata(&path).expect("stat").mode() & 0o7777, 0o644);
}

#[test]
fn accept_with_regex_writes_the_anchored_escaped_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("whitelist_clients.local");
    let (today, out) = advisor_dated(&[
        "accept",
        "--regex",
        "--whitelist-local",
        s(&path),
        "outbound.protection.outlook.com",
    ]);
    assert_eq!(
        text(&out.stdout),
        added_to(&path, &["/(^|\\.)outbound\\.protection\\.outlook\\.com$/"])
    );
    assert_eq!(out.status.code(), Some(0));
    today.assert_eq(&read(&path), |d| {
        format!(
            "# added by postgrey-advisor on {d}\n/(^|\\.)outbound\\.protection\\.outlook\\.com$/\n"
        )
    });
    // The same domain again, plain or as a regex, is a duplicate.
    let out = advisor(&[
        "accept",
        "--whitelist-local",
        s(&path),
        "outbound.protection.outlook.com",
    ]);
    assert_eq!(
        text(&out.stderr),
        format!(
            "postgrey-advisor: not adding outbound.protection.outlook.com: already covered by \
             /(^|\\.)outbound\\.protection\\.outlook\\.com$/ at {}:2\n",
            path.display(),
        )
    );
    // Already there is success: scripts may repeat a command.
    assert_eq!(
        text(&out.stdout),
        format!("nothing to add to {}: already there\n", path.display())
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn accept_skips_what_is_already_covered_and_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("whitelist_clients.local");
    let before = "example.com\n/(^|\\.)sendgrid\\.net$/\n";
    fs::write(&path, before).expect("write");
    let out = advisor(&[
        "accept",
        "--whitelist-local",
        s(&path),
        "example.com",
        "MX.example.com",
        "o1.sendgrid.net",
    ]);
    let p = path.display();
    assert_eq!(
        text(&out.stdout),
        format!("nothing to add to {p}: already there\n")
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "postgrey-advisor: not adding example.com: already covered by example.com at {p}:1\n\
             postgrey-advisor: not adding mx.example.com: already covered by example.com at {p}:1\n\
             postgrey-advisor: not adding o1.sendgrid.net: already covered by \
             /(^|\\.)sendgrid\\.net$/ at {p}:2\n"
        )
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(read(&path), before);
}

#[test]
fn accept_adds_the_rest_and_names_what_it_skips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("whitelist_clients.local");
    fs::write(&path, "example.com\n").expect("write");
    let (today, out) = advisor_dated(&[
        "accept",
        "--whitelist-local",
        s(&path),
        "new.example.net",
        "example.com",
        "a.new.example.net",
    ]);
    let p = path.display();
    assert_eq!(
        text(&out.stderr),
        format!(
            "postgrey-advisor: not adding example.com: already covered by example.com at {p}:1\n\
             postgrey-advisor: not adding a.new.example.net: already covered by \
             new.example.net, given before it\n"
        )
    );
    assert_eq!(text(&out.stdout), added_to(&path, &["new.example.net"]));
    assert_eq!(out.status.code(), Some(0));
    today.assert_eq(&read(&path), |d| {
        format!("example.com\n# added by postgrey-advisor on {d}\nnew.example.net\n")
    });
}

#[test]
fn accept_consults_the_main_whitelist_beside_the_local_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = copy_debian_list(dir.path());
    let local = dir.path().join("whitelist_clients.local");
    let out = advisor(&[
        "accept",
        "--whitelist-local",
        s(&local),
        "a1-2.smtp-out.eu-west-1.amazonses.com",
    ]);
    assert_eq!(
        text(&out.stderr),
        format!(
            "postgrey-advisor: not adding a1-2.smtp-out.eu-west-1.amazonses.com: already \
             covered by amazonses.com at {}:255\n",
            main.display(),
        )
    );
    assert_eq!(
        text(&out.stdout),
        format!("nothing to add to {}: already there\n", local.display())
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!local.exists());
}

#[test]
fn accept_dry_run_prints_the_diff_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("whitelist_clients.local");
    let before = "one.example\ntwo.example\nthree.example\nfour.example\n";
    fs::write(&path, before).expect("write");
    let p = path.display();
    let (today, out) = advisor_dated(&[
        "accept",
        "--dry-run",
        "--whitelist-local",
        s(&path),
        "five.example",
    ]);
    assert_eq!(text(&out.stderr), "");
    today.assert_eq(text(&out.stdout), |d| {
        format!(
            "--- {p}\n+++ {p}\n@@ -2,3 +2,5 @@\n two.example\n three.example\n four.example\n\
             +# added by postgrey-advisor on {d}\n+five.example\n"
        )
    });
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(read(&path), before);
    assert_eq!(names_in(dir.path()), ["whitelist_clients.local"]);

    // A file that does not exist yet is shown as new, and still not created.
    let missing = dir.path().join("new/whitelist_clients.local");
    let m = missing.display();
    let (today, out) = advisor_dated(&[
        "accept",
        "-n",
        "--regex",
        "--whitelist-local",
        s(&missing),
        "five.example",
    ]);
    today.assert_eq(text(&out.stdout), |d| {
        format!(
            "--- /dev/null\n+++ {m}\n@@ -0,0 +1,2 @@\n+# added by postgrey-advisor on {d}\n\
             +/(^|\\.)five\\.example$/\n"
        )
    });
    assert_eq!(out.status.code(), Some(0));
    assert!(!dir.path().join("new").exists());
}

#[test]
fn accept_rejects_what_is_not_a_usable_domain_as_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("whitelist_clients.local");
    for (domain, reason) in [
        (
            "co.uk",
            "it is a public suffix (or a single label): it would cover every host under it",
        ),
        (
            "*.example.com",
            "'*' does not occur in host names (only letters, digits, '-', '_' and '.')",
        ),
        (
            "10.1",
            "it is all digits, which postgrey reads as an address, not a name",
        ),
        (
            "/^mail/",
            "'/' does not occur in host names (only letters, digits, '-', '_' and '.')",
        ),
    ] {
        let out = advisor(&[
            "accept",
            "--whitelist-local",
            s(&path),
            "good.example.org",
            domain,
        ]);
        assert_eq!(
            text(&out.stderr),
            format!("postgrey-advisor: {domain:?} is not a usable domain: {reason}\n")
        );
        assert_eq!(text(&out.stdout), "");
        assert_eq!(out.status.code(), Some(2), "{domain}");
    }
    assert!(!path.exists());
}

#[test]
fn ignore_appends_and_skips_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("postgrey-advisor/ignore");
    let p = path.display();
    let (today, out) = advisor_dated(&[
        "ignore",
        "--ignore-file",
        s(&path),
        "Asianet.co.th",
        "asianet.co.th",
    ]);
    assert_eq!(
        text(&out.stderr),
        "postgrey-advisor: not adding asianet.co.th: given twice\n"
    );
    assert_eq!(
        text(&out.stdout),
        format!("added to {p}:\n  asianet.co.th\n")
    );
    assert_eq!(out.status.code(), Some(0));
    today.assert_eq(&read(&path), |d| {
        format!("# added by postgrey-advisor on {d}\nasianet.co.th\n")
    });
    assert_eq!(fs::metadata(&path).expect("stat").mode() & 0o7777, 0o644);

    let out = advisor(&["ignore", "--ignore-file", s(&path), "asianet.co.th"]);
    assert_eq!(
        text(&out.stderr),
        format!("postgrey-advisor: not adding asianet.co.th: already in {p}\n")
    );
    assert_eq!(
        text(&out.stdout),
        format!("nothing to add to {p}: already there\n")
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn audit_reports_each_finding_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("whitelist_clients");
    let local = dir.path().join("whitelist_clients.local");
    fs::write(
        &main,
        "# main list\nexample.com\n/mail\\.example\\.net/\n/^smtp\\d+.example.org$/\n10.1\n\
         *.example.biz\nfoo bar\n/(?<=x)y/\n",
    )
    .expect("write");
    fs::write(&local, "mx.example.com\n/^mx(\\d+\\.example\\.info$/\n").expect("write");
    let out = advisor(&[
        "audit",
        "--whitelist-clients",
        s(&main),
        "--whitelist-clients",
        s(&local),
    ]);
    let (m, l) = (main.display(), local.display());
    assert_eq!(
        text(&out.stdout),
        format!(
            "{m}:3: regex /mail\\.example\\.net/ is not anchored: postgrey matches it anywhere in \
             the client name, so it also matches names with anything before and after it; write \
             /^…$/ or /(^|\\.)…$/\n\
             {m}:4: regex /^smtp\\d+.example.org$/ has 2 unescaped \".\", which matches any \
             character, not only a dot; write \\.\n\
             {m}:5: 10.1 is read as 10.1.0.0/24: postgrey makes two octets a /24, not the /16 its \
             comment promises; write 10.1.0.0/24 to keep that, or 10.1.0.0/16 for the /16\n\
             {m}:6: *.example.biz never matches a host name: \"*\" is no wildcard here, postgrey \
             compares the entry literally; example.biz alone covers every name below it\n\
             {m}:7: postgrey skips this line with the warning \"doesn't look like a hostname\": it \
             has white space inside and is neither a /regex/ nor an address\n\
             {m}:8: this regex uses a lookahead or lookbehind, which postgrey-advisor cannot \
             evaluate: postgrey uses the line, postgrey-advisor treats it as matching nothing\n\
             {l}:1: mx.example.com is already covered by example.com at {m}:2\n\
             {l}:2: perl cannot compile this regex (an unclosed group): postgrey stops with an \
             error when it reads this file\n"
        )
    );
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn audit_of_a_clean_file_prints_nothing_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("whitelist_clients");
    fs::write(
        &main,
        "example.com\n/^mail\\d+\\.example\\.net$/\n192.0.2.0/24\n",
    )
    .expect("write");
    // The environment variable the unit's options file sets; a missing .local file is fine.
    let files = format!(
        "{},{}",
        main.display(),
        dir.path().join("whitelist_clients.local").display()
    );
    let out = bin()
        .arg("audit")
        .env("POSTGREY_ADVISOR_WHITELIST_CLIENTS", files)
        .output()
        .expect("run");
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn audit_of_the_shipped_debian_list() {
    let out = advisor(&["audit", "--whitelist-clients", DEBIAN_LIST]);
    let dots = |line: usize, re: &str, n: usize| {
        format!(
            "{DEBIAN_LIST}:{line}: regex {re} has {n} unescaped \".\", which matches any \
             character, not only a dot; write \\.\n"
        )
    };
    let expected = [
        dots(136, "/^odk.fdv.uni-lj.si$/", 3),
        dots(144, "/^mta[12].siol.net$/", 2),
        dots(164, "/^smtp\\d+.citigroup.com$/", 2),
        dots(194, "/^.*?.server.arvato-systems.de$/", 3),
        dots(
            196,
            "/^(?:mail|fallback-mx)\\d+.atl.registeredsite.com$/",
            3,
        ),
    ]
    .concat();
    assert_eq!(text(&out.stdout), expected);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn audit_names_a_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("whitelist_clients");
    let out = advisor(&["audit", "--whitelist-clients", s(&missing)]);
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "postgrey-advisor: cannot read whitelist {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    // Not 1, the code of findings: a check that cannot read is no finding.
    assert_eq!(out.status.code(), Some(66));
}

/// Temporary files a writer of `target` makes beside it.
fn temporaries(dir: &Path, target: &str) -> Vec<PathBuf> {
    let prefix = format!(".{target}.");
    names_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(&prefix) && n.ends_with(".tmp"))
        .map(|n| dir.join(n))
        .collect()
}

/// Kills `args` with SIGKILL while it writes, several times, and checks the file is untouched
/// each time; then a run to completion appends once and removes what the killed runs left.
fn survives_sigkill(args: &[&str], dir: &Path, target: &str, added: &str) {
    let path = dir.join(target);
    let original = fs::read(&path).expect("read original");
    for round in 0..6 {
        let stale = temporaries(dir, target);
        let mut child = Command::new(bin_path())
            .args(args)
            .env(PAUSE_ENV, "600000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the binary");
        // Even rounds kill as soon as the temporary file exists, odd rounds once it holds the
        // whole new content (the pause holds the process after the sync, before the rename).
        let temp = wait_for("the temporary file", || {
            temporaries(dir, target)
                .into_iter()
                .find(|t| !stale.contains(t))
        });
        if round % 2 == 1 {
            wait_for("the new content", || {
                let len = fs::metadata(&temp).map(|m| m.len()).unwrap_or(0);
                (len > original.len() as u64).then_some(())
            });
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        assert_eq!(fs::read(&path).expect("read"), original, "round {round}");
    }
    let (today, out) = Today::around(|| Command::new(bin_path()).args(args).output().expect("run"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    today.assert_eq(&read(&path), |d| {
        format!(
            "{}# added by postgrey-advisor on {d}\n{added}\n",
            text(&original)
        )
    });
    assert_eq!(names_in(dir), [target]);
}

#[test]
fn a_killed_accept_never_leaves_a_truncated_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("whitelist_clients.local");
    fs::write(&path, "# local\nexample.com\n".repeat(200)).expect("write");
    survives_sigkill(
        &["accept", "--whitelist-local", s(&path), "mailer-esp.net"],
        dir.path(),
        "whitelist_clients.local",
        "mailer-esp.net",
    );
}

#[test]
fn a_killed_ignore_never_leaves_a_truncated_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ignore");
    fs::write(&path, "# never propose\nasianet.co.th\n").expect("write");
    survives_sigkill(
        &["ignore", "--ignore-file", s(&path), "example-isp.net"],
        dir.path(),
        "ignore",
        "example-isp.net",
    );
}

#[test]
fn an_accepted_domain_passes_real_postgrey_after_sighup() {
    common::require_root();
    let journald = Journald::start();
    let files = world_readable_tempdir();
    let main = copy_debian_list(files.path());
    let local = files.path().join("whitelist_clients.local");
    let postgrey = Postgrey::builder()
        .whitelist_clients(&main)
        .whitelist_clients(&local)
        .start(&journald);
    let (sender, rcpt) = ("bounce@mailer-esp.net", "bob@example.org");

    // Greylisted from one network before the accept.
    let reply = postgrey.request("o1.mailer-esp.net", "198.51.100.7", sender, rcpt);
    assert_eq!(reply, greylist_reply("example.org"));

    bin()
        .args(["accept", "--whitelist-local", s(&local), "mailer-esp.net"])
        .assert()
        .success();
    postgrey.reload(&journald);
    // Passed from the provider's other network after the reload.
    let reply = postgrey.request("o2.mailer-esp.net", "203.0.113.9", sender, rcpt);
    assert_eq!(reply, DUNNO_REPLY);
    journald.wait_for_entries(
        &[&format!(
            "MESSAGE=action=pass, reason=client whitelist, client_name=o2.mailer-esp.net, \
             client_address=203.0.113.9, sender={sender}, recipient={rcpt}"
        )],
        1,
    );

    // The --regex form is read by postgrey the same way, at label boundaries only.
    bin()
        .args([
            "accept",
            "--regex",
            "--whitelist-local",
            s(&local),
            "other-esp.org",
        ])
        .assert()
        .success();
    postgrey.reload(&journald);
    let reply = postgrey.request(
        "mta7.eu.other-esp.org",
        "203.0.113.77",
        "x@other-esp.org",
        rcpt,
    );
    assert_eq!(reply, DUNNO_REPLY);
    let reply = postgrey.request(
        "mta7.evilother-esp.org",
        "198.51.100.99",
        "x@evil.example",
        rcpt,
    );
    assert_eq!(reply, greylist_reply("example.org"));
}

/// `accept --reload` with postgrey's options file naming its pid file, as Debian's init script
/// starts it: postgrey gets SIGHUP from the binary itself, logs that it rereads its
/// whitelists, and passes the accepted provider's other network.
#[test]
fn accept_reload_tells_a_real_postgrey_through_its_pid_file() {
    common::require_root();
    let journald = Journald::start();
    let files = world_readable_tempdir();
    let local = files.path().join("whitelist_clients.local");
    std::fs::write(&local, "").unwrap();
    let postgrey = Postgrey::builder()
        .whitelist_clients(&local)
        .start(&journald);
    let pidfile = files.path().join("postgrey.pid");
    std::fs::write(&pidfile, format!("{}\n", postgrey.pid())).unwrap();
    let options = files.path().join("postgrey");
    std::fs::write(
        &options,
        format!(
            "# as Debian's /etc/default/postgrey\nPOSTGREY_OPTS=\"--inet=10023 --pidfile={}\"\n",
            pidfile.display()
        ),
    )
    .unwrap();
    let (sender, rcpt) = ("bounce@mailer-esp.net", "bob@example.org");
    let reply = postgrey.request("o1.mailer-esp.net", "198.51.100.7", sender, rcpt);
    assert_eq!(reply, greylist_reply("example.org"));

    let hup = [
        format!("_PID={}", postgrey.pid()),
        "MESSAGE=HUP received: reloading whitelists...".to_string(),
    ];
    let hup: Vec<&str> = hup.iter().map(String::as_str).collect();
    assert_eq!(journald.entries(&hup).len(), 0);
    let output = bin()
        .args(["accept", "--reload", "--whitelist-local", s(&local)])
        .arg("--postgrey-config")
        .arg(&options)
        .arg("mailer-esp.net")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        format!(
            "added to {}:\n  mailer-esp.net\nsent SIGHUP to postgrey (pid {}, from {})\n",
            local.display(),
            postgrey.pid(),
            pidfile.display()
        )
    );
    journald.wait_for_entries(&hup, 1);
    let reply = postgrey.request("o2.mailer-esp.net", "203.0.113.9", sender, rcpt);
    assert_eq!(reply, DUNNO_REPLY);

    // A stale pid file names another process: refused, and the file stays changed.
    std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
    let output = bin()
        .args(["accept", "--reload", "--whitelist-local", s(&local)])
        .arg("--postgrey-config")
        .arg(&options)
        .arg("other-esp.org")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "postgrey-advisor: {} was changed, but postgrey was not told to reread it: {} names \
             pid {}, which is not postgrey (a stale pid file?)\n",
            local.display(),
            pidfile.display(),
            std::process::id()
        )
    );
    assert!(
        std::fs::read_to_string(&local)
            .unwrap()
            .contains("\nother-esp.org\n")
    );
}
