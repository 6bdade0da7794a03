//! The systemd units, the sysusers.d file, the journal catalog, the options file and the Debian
//! package, each checked by the tool that consumes it: `systemd-analyze verify` and `security`,
//! `systemd-sysusers`, `journalctl --update-catalog`, clap's own definitions, `dpkg-buildpackage`,
//! `dpkg-deb` and `lintian`.
//!
//! `systemd-analyze verify` insists that `ExecStart=`'s binary exists. Rather than verify an edited
//! copy, the tests verify the shipped files unchanged inside a throwaway root (`--root=`) that
//! holds the distribution's units, the unit files and the freshly built binary at
//! `/usr/bin/postgrey-advisor`.
//!
//! The package build takes minutes and is `#[ignore]`d; CI runs it with
//! `cargo test --test units -- --ignored debian_package`.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use clap::CommandFactory;
use common::{assert_success, project_file, read_project_file as read};
use postgrey_advisor::cli::Cli;
use tempfile::TempDir;

/// The `MESSAGE_ID` of every journal entry `run` writes (also in README and the catalog).
const MESSAGE_ID: &str = "81e1a72418af45329193ed2abb060aad";
const SERVICE: &str = "postgrey-advisor.service";
const TIMER: &str = "postgrey-advisor.timer";
/// The distribution's unit directory; verify needs sysinit.target & co. inside the root.
const SYSTEM_UNITS: &str = "/usr/lib/systemd/system";

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn copy(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::copy(from, to).unwrap_or_else(|e| panic!("{} → {}: {e}", from.display(), to.display()));
}

/// Copies the distribution's unit directory into `dir` (as `dir/system`), modes and links kept.
fn copy_system_units(dir: &Path) {
    assert_success(
        &run(Command::new("cp").arg("-a").arg(SYSTEM_UNITS).arg(dir)),
        "copying the system units",
    );
}

/// A root directory for `systemd-analyze --root=`: the distribution's units, ours on top, and
/// the built binary where `ExecStart=` expects it.
fn unit_root(drop_ins: &[&str]) -> TempDir {
    let root = TempDir::new().unwrap();
    let unit_dir = root.path().join("usr/lib/systemd");
    fs::create_dir_all(&unit_dir).unwrap();
    copy_system_units(&unit_dir);
    let unit_dir = unit_dir.join("system");
    for unit in [SERVICE, TIMER] {
        copy(
            &project_file(&format!("units/{unit}")),
            &unit_dir.join(unit),
        );
    }
    for drop_in in drop_ins {
        copy(
            &project_file(&format!("units/{drop_in}")),
            &unit_dir.join(format!("{SERVICE}.d/{drop_in}")),
        );
    }
    let binary = root.path().join("usr/bin/postgrey-advisor");
    let built = Path::new(env!("CARGO_BIN_EXE_postgrey-advisor"));
    fs::create_dir_all(binary.parent().unwrap()).unwrap();
    // The debug binary is large: link it when the file system allows.
    if fs::hard_link(built, &binary).is_err() {
        copy(built, &binary);
    }
    root
}

fn analyze_verify(root: &Path) -> Output {
    run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .args([SERVICE, TIMER]))
}

/// `systemd-analyze verify` of the units in `root` succeeds and prints nothing.
fn assert_verify_is_clean(root: &Path, what: &str) {
    let output = analyze_verify(root);
    assert_success(&output, what);
    assert_eq!(text(&output.stdout), "");
    assert_eq!(text(&output.stderr), "");
}

#[test]
fn systemd_analyze_verify_prints_nothing() {
    assert_verify_is_clean(unit_root(&[]).path(), "systemd-analyze verify");
}

#[test]
fn systemd_analyze_verify_accepts_the_sendmail_drop_in() {
    assert_verify_is_clean(
        unit_root(&["sendmail.conf"]).path(),
        "systemd-analyze verify with sendmail.conf",
    );
}

/// Proves the root trick checks what it should: without the binary, verify complains.
#[test]
fn systemd_analyze_verify_notices_a_missing_binary() {
    let root = unit_root(&[]);
    fs::remove_file(root.path().join("usr/bin/postgrey-advisor")).unwrap();
    let output = analyze_verify(root.path());
    assert!(!output.status.success());
    assert_eq!(
        text(&output.stderr),
        "postgrey-advisor.service: Command /usr/bin/postgrey-advisor is not executable: \
         No such file or directory\n"
    );
}

fn security(unit: &Path) -> Output {
    run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(unit))
}

#[test]
fn hardening_exposure_is_at_most_2() {
    let output = security(&project_file("units/postgrey-advisor.service"));
    assert_success(&output, "systemd-analyze security --threshold=20");
    let report = text(&output.stdout);
    let overall = report
        .lines()
        .find_map(|line| {
            line.strip_prefix("→ Overall exposure level for postgrey-advisor.service: ")
        })
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"));
    let exposure: f64 = overall
        .split_whitespace()
        .next()
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("unreadable exposure {overall:?}"));
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{report}");
    assert_eq!(overall, "1.0 OK 🙂");

    // What remains exposed, each for a reason: SMTP to localhost (Internet sockets, the
    // network, a localhost-only allow list), the journal socket (AF_UNIX), journal files
    // (systemd-journal group), ProtectClock='s read-only rtc, and no chroot.
    let exposed: Vec<&str> = report
        .lines()
        .filter_map(|line| line.strip_prefix("✗ "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(
        exposed,
        [
            "RootDirectory=/RootImage=",
            "SupplementaryGroups=",
            "RestrictAddressFamilies=~AF_UNIX",
            "RestrictAddressFamilies=~AF_(INET|INET6)",
            "PrivateNetwork=",
            "DeviceAllow=",
            "IPAddressDeny=",
        ]
    );
}

/// `[section]` → `key=value` lines of a unit file, in order (comments and blanks dropped).
fn unit_section(unit: &str, section: &str) -> Vec<String> {
    let mut inside = false;
    let mut lines = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            lines.push(line.to_owned());
        }
    }
    lines
}

#[test]
fn service_runs_the_job_as_the_static_user_with_journal_access() {
    let service = unit_section(&read("units/postgrey-advisor.service"), "Service");
    for expected in [
        "Type=oneshot",
        "ExecStart=/usr/bin/postgrey-advisor run",
        "EnvironmentFile=-/etc/default/postgrey-advisor",
        "User=_postgrey-advisor",
        "SupplementaryGroups=systemd-journal",
        "StateDirectory=postgrey-advisor",
        "ProtectSystem=strict",
        "IPAddressDeny=any",
        "IPAddressAllow=localhost",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ] {
        assert!(
            service.iter().any(|line| line == expected),
            "{expected} missing: {service:#?}"
        );
    }
    // `run` writes only its StateDirectory: nothing else may be made writable.
    assert!(
        !service
            .iter()
            .any(|line| line.starts_with("ReadWritePaths=")),
        "{service:#?}"
    );
}

#[test]
fn timer_runs_weekly_catching_up_missed_runs() {
    let timer = read("units/postgrey-advisor.timer");
    assert_eq!(
        unit_section(&timer, "Timer"),
        [
            "OnCalendar=weekly",
            "Persistent=true",
            "RandomizedDelaySec=1h"
        ]
    );
    assert_eq!(unit_section(&timer, "Install"), ["WantedBy=timers.target"]);

    let output = run(Command::new("systemd-analyze").args(["calendar", "weekly"]));
    assert_success(&output, "systemd-analyze calendar weekly");
    let normalized = text(&output.stdout);
    assert!(
        normalized.contains("Normalized form: Mon *-*-* 00:00:00\n"),
        "{normalized}"
    );
}

#[test]
fn sysusers_creates_the_system_user() {
    let root = TempDir::new().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    let output = run(Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(project_file("units/postgrey-advisor.sysusers")));
    assert_success(&output, "systemd-sysusers");
    assert_eq!(
        fs::read_to_string(root.path().join("etc/passwd")).unwrap(),
        "_postgrey-advisor:x:999:999:postgrey-advisor:/var/lib/postgrey-advisor:/usr/sbin/nologin\n"
    );
    assert_eq!(
        fs::read_to_string(root.path().join("etc/group")).unwrap(),
        "_postgrey-advisor:x:999:\n"
    );
}

/// Indexes `catalog` as `usr/lib/systemd/catalog/postgrey-advisor.catalog` in a fresh root.
fn update_catalog(catalog: &str) -> (TempDir, Output) {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("usr/lib/systemd/catalog");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("postgrey-advisor.catalog"), catalog).unwrap();
    let output = run(Command::new("journalctl")
        .arg(format!("--root={}", root.path().display()))
        .arg("--update-catalog"));
    (root, output)
}

#[test]
fn journal_catalog_indexes_the_message_id() {
    let (root, output) = update_catalog(&read("units/postgrey-advisor.catalog"));
    assert_success(&output, "journalctl --update-catalog");
    assert_eq!(text(&output.stderr), "");

    let root_arg = format!("--root={}", root.path().display());
    let listed = run(Command::new("journalctl").args([&root_arg, "--list-catalog"]));
    assert_success(&listed, "journalctl --list-catalog");
    assert_eq!(
        text(&listed.stdout),
        format!(
            "{MESSAGE_ID} postgrey-advisor: Greylisting review: senders worth whitelisting in postgrey\n"
        )
    );

    let entry = run(Command::new("journalctl").args([&root_arg, "--dump-catalog", MESSAGE_ID]));
    assert_success(&entry, "journalctl --dump-catalog");
    let entry = text(&entry.stdout);
    for field in [
        "PGADVISOR_DOMAIN",
        "PGADVISOR_NEW",
        "PGADVISOR_VERDICT",
        "PGADVISOR_SUGGESTION",
    ] {
        assert!(entry.contains(field), "{field} not explained:\n{entry}");
    }
}

/// Proves the catalog check checks: journalctl refuses a catalog whose entry has no valid ID.
#[test]
fn journal_catalog_check_rejects_a_broken_copy() {
    let broken = read("units/postgrey-advisor.catalog").replace(
        &format!("-- {MESSAGE_ID}"),
        &format!("-- {}", &MESSAGE_ID[1..]),
    );
    let (_root, output) = update_catalog(&broken);
    assert!(!output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("Got payload before ID."));
}

#[test]
fn service_and_catalog_name_the_same_message_id() {
    assert!(read("units/postgrey-advisor.catalog").contains(&format!("\n-- {MESSAGE_ID}\n")));
    assert!(read("units/postgrey-advisor.service").contains(&format!("MESSAGE_ID={MESSAGE_ID}")));
}

/// Every variable the options file mentions (set or commented out) is one that `run` reads,
/// so an example cannot silently do nothing.
#[test]
fn options_file_sets_only_variables_that_run_reads() {
    let cli = Cli::command();
    let run_command = cli.find_subcommand("run").expect("the run command exists");
    let known: BTreeSet<String> = run_command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect();

    let options = read("units/default/postgrey-advisor");
    let mut active = Vec::new();
    for line in options.lines() {
        let assignment = line.trim_start_matches('#');
        let Some((name, value)) = assignment.split_once('=') else {
            continue;
        };
        if !name.starts_with("POSTGREY_ADVISOR_") {
            continue;
        }
        assert!(
            known.contains(name),
            "{name} is not an option of run: {known:?}"
        );
        if !line.starts_with('#') {
            active.push((name, value));
        }
    }
    assert_eq!(active, [("POSTGREY_ADVISOR_MAIL", "postmaster")]);
}

// ---------------------------------------------------------------------------------------------
// The Debian package.

/// One line of `dpkg-deb -c`: mode, owner, path (without the leading `.`), link target.
#[derive(Debug)]
struct PackagedFile {
    mode: String,
    owner: String,
    path: String,
    link: Option<String>,
}

fn package_contents(deb: &Path) -> Vec<PackagedFile> {
    let output = run(Command::new("dpkg-deb").arg("-c").arg(deb));
    assert_success(&output, "dpkg-deb -c");
    text(&output.stdout)
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.splitn(6, char::is_whitespace).collect();
            let rest = line
                .split_whitespace()
                .skip(5)
                .collect::<Vec<_>>()
                .join(" ");
            let (path, link) = match rest.split_once(" -> ") {
                Some((path, link)) => (path.to_owned(), Some(link.to_owned())),
                None => (rest, None),
            };
            PackagedFile {
                mode: fields[0].to_owned(),
                owner: fields[1].to_owned(),
                path: path.trim_start_matches('.').to_owned(),
                link,
            }
        })
        .collect()
}

#[test]
#[ignore = "builds the .deb (minutes): cargo test --test units -- --ignored debian_package"]
fn debian_package_installs_everything_in_place() {
    let work = TempDir::new().unwrap();
    let deb = common::package::build();

    let contents = package_contents(&deb);
    let find = |path: &str| {
        contents
            .iter()
            .find(|file| file.path == path)
            .unwrap_or_else(|| panic!("{path} not in the package: {contents:#?}"))
    };
    for file in &contents {
        assert_eq!(file.owner, "root/root", "{file:?}");
    }
    assert_eq!(find("/usr/bin/postgrey-advisor").mode, "-rwxr-xr-x");
    assert_eq!(
        find("/usr/lib/nagios/plugins/check_postgrey_whitelist")
            .link
            .as_deref(),
        Some("../../../bin/postgrey-advisor")
    );
    for path in [
        "/lib/systemd/system/postgrey-advisor.service",
        "/lib/systemd/system/postgrey-advisor.timer",
        "/usr/lib/sysusers.d/postgrey-advisor.conf",
        "/usr/lib/systemd/catalog/postgrey-advisor.catalog",
        "/etc/default/postgrey-advisor",
        "/etc/nagios-plugins/config/postgrey-advisor.cfg",
        "/usr/share/icinga2/include/plugins-contrib.d/postgrey-advisor.conf",
        "/usr/share/man/man1/postgrey-advisor.1.gz",
        "/usr/share/bash-completion/completions/postgrey-advisor",
        "/usr/share/zsh/vendor-completions/_postgrey-advisor",
        "/usr/share/fish/vendor_completions.d/postgrey-advisor.fish",
        "/usr/share/doc/postgrey-advisor/copyright",
        "/usr/share/doc/postgrey-advisor/examples/sendmail.conf",
        "/usr/share/doc/postgrey-advisor/examples/nagios-service.cfg",
        "/usr/share/doc/postgrey-advisor/examples/icinga2-service.conf",
    ] {
        assert_eq!(find(path).mode, "-rw-r--r--", "{path}");
    }
    assert_eq!(find("/etc/postgrey-advisor/").mode, "drwxr-xr-x");
    // The state directory belongs to systemd (StateDirectory=), not to the package.
    assert!(!contents.iter().any(|file| file.path.starts_with("/var/")));

    let conffiles = run(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .arg("conffiles"));
    assert_success(&conffiles, "dpkg-deb --info conffiles");
    assert_eq!(
        text(&conffiles.stdout),
        "/etc/default/postgrey-advisor\n/etc/nagios-plugins/config/postgrey-advisor.cfg\n"
    );

    // Unpack and check the packaged files with the tools, as installed.
    let installed = work.path().join("installed");
    assert_success(
        &run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&installed)),
        "dpkg-deb -x",
    );
    for (shipped, packaged) in [
        (
            "units/postgrey-advisor.service",
            "lib/systemd/system/postgrey-advisor.service",
        ),
        (
            "units/postgrey-advisor.timer",
            "lib/systemd/system/postgrey-advisor.timer",
        ),
        (
            "units/postgrey-advisor.sysusers",
            "usr/lib/sysusers.d/postgrey-advisor.conf",
        ),
        (
            "units/postgrey-advisor.catalog",
            "usr/lib/systemd/catalog/postgrey-advisor.catalog",
        ),
        (
            "units/default/postgrey-advisor",
            "etc/default/postgrey-advisor",
        ),
        (
            "monitoring/nagios/postgrey-advisor.cfg",
            "etc/nagios-plugins/config/postgrey-advisor.cfg",
        ),
        (
            "monitoring/icinga2/postgrey-advisor.conf",
            "usr/share/icinga2/include/plugins-contrib.d/postgrey-advisor.conf",
        ),
    ] {
        assert_eq!(
            fs::read(installed.join(packaged)).unwrap(),
            fs::read(project_file(shipped)).unwrap(),
            "{packaged} differs from {shipped}"
        );
    }
    let binary = installed.join("usr/bin/postgrey-advisor");
    assert_eq!(
        fs::metadata(&binary).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let version = run(Command::new(&binary).arg("--version"));
    assert_success(&version, "postgrey-advisor --version");
    assert_eq!(text(&version.stdout), "postgrey-advisor 0.1.0\n");

    // The packaged units, verified against the packaged binary in the unpacked tree.
    let unit_dir = installed.join("usr/lib/systemd");
    copy_system_units(&unit_dir);
    for unit in [SERVICE, TIMER] {
        copy(
            &installed.join(format!("lib/systemd/system/{unit}")),
            &unit_dir.join(format!("system/{unit}")),
        );
    }
    assert_verify_is_clean(&installed, "systemd-analyze verify of the packaged units");

    // Maintainer scripts: the user is created, the timer enabled and started; the job itself is
    // started once, on the first installation only, and never stopped or restarted by an upgrade.
    let control = work.path().join("control");
    assert_success(
        &run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control)),
        "dpkg-deb -e",
    );
    let postinst = fs::read_to_string(control.join("postinst")).unwrap();
    assert!(
        postinst
            .contains("systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} postgrey-advisor.conf"),
        "{postinst}"
    );
    assert!(
        postinst.contains("deb-systemd-helper unmask 'postgrey-advisor.timer'"),
        "{postinst}"
    );
    assert!(
        postinst.contains("deb-systemd-invoke $_dh_action 'postgrey-advisor.timer'"),
        "{postinst}"
    );
    assert!(
        postinst.contains(
            "if [ \"$1\" = \"configure\" ] && [ -z \"$2\" ] && [ -d /run/systemd/system ]; then\n"
        ),
        "{postinst}"
    );
    let starts: Vec<&str> = postinst
        .lines()
        .filter(|line| line.contains("postgrey-advisor.service"))
        .map(str::trim)
        .collect();
    assert_eq!(
        starts,
        [
            "/usr/sbin/policy-rc.d postgrey-advisor.service start || allowed=$?",
            "systemctl --no-block start postgrey-advisor.service || true",
        ],
        "{postinst}"
    );
    for script in ["prerm", "postrm"] {
        let body = fs::read_to_string(control.join(script)).unwrap();
        assert!(
            !body.contains("postgrey-advisor.service"),
            "{script}:\n{body}"
        );
    }
    let postrm = fs::read_to_string(control.join("postrm")).unwrap();
    assert!(
        postrm.contains("if [ \"$1\" = \"purge\" ]; then\n\trm -rf /var/lib/postgrey-advisor\n"),
        "{postrm}"
    );

    let fields = run(Command::new("dpkg-deb")
        .args(["--field"])
        .arg(&deb)
        .arg("Depends"));
    assert_success(&fields, "dpkg-deb --field Depends");
    let depends = text(&fields.stdout);
    for dependency in ["systemd | systemd-sysusers", "libsystemd0"] {
        assert!(
            depends.contains(dependency),
            "{dependency} not in Depends: {depends}"
        );
    }

    // Clean even when pedantic; the overrides are the ones with a reason in the package: a
    // first upload that closes no ITP bug (not uploaded to Debian), and the first-run start of
    // a static unit, which deb-systemd-invoke does not do.
    let lintian = run(Command::new("lintian").arg("--pedantic").arg(&deb));
    assert_eq!(text(&lintian.stdout), "");
    let overrides = run(Command::new("lintian").arg("--show-overrides").arg(&deb));
    let overrides = text(&overrides.stdout);
    let overridden: Vec<&str> = overrides
        .lines()
        .filter_map(|line| line.strip_prefix("O: postgrey-advisor: "))
        .map(|line| line.split(" [").next().unwrap_or(line))
        .collect();
    assert_eq!(
        overridden,
        [
            "initial-upload-closes-no-bugs",
            "maintainer-script-calls-systemctl"
        ]
    );
}
