//! The advice counted as the local postgrey runs: a real postgrey started with options other
//! than its defaults, its options file read with `--postgrey-config`, and the figures that
//! depend on them checked against what postgrey itself answered.

mod common;

use std::path::{Path, PathBuf};

use common::postgrey::{DUNNO_REPLY, greylist_reply};
use common::{Journald, Postgrey, bin, require_root, wait_for};
use serde_json::{Value, json};

const RECIPIENT: &str = "bob@example.org";
const UNIT_MATCH: &str = "_SYSTEMD_UNIT=postgrey.service";

/// Files named only in postgrey's options: its whitelist and its options file, plus an empty
/// ignore file so that the host's plays no part.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(whitelist: &str, options: &str) -> Site {
        let dir = common::world_readable_tempdir();
        let site = Site { dir };
        std::fs::write(site.whitelist(), whitelist).unwrap();
        std::fs::write(site.ignore(), "").unwrap();
        let options = options.replace("WHITELIST", &site.whitelist().display().to_string());
        std::fs::write(
            site.options(),
            format!("# as Debian's /etc/default/postgrey\nPOSTGREY_OPTS=\"{options}\"\n"),
        )
        .unwrap();
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn whitelist(&self) -> PathBuf {
        self.path("site_whitelist")
    }

    fn ignore(&self) -> PathBuf {
        self.path("ignore")
    }

    fn options(&self) -> PathBuf {
        self.path("postgrey")
    }
}

/// `postgrey-advisor report` over the test's journal, with `extra` arguments; stdout.
fn report(journald: &Journald, site: &Site, extra: &[&str]) -> String {
    let output = bin()
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .env_remove("POSTGREY_ADVISOR_POSTGREY_CONFIG")
        .arg("report")
        .arg("--journal-dir")
        .arg(journald.journal_dir())
        .arg("--ignore-file")
        .arg(site.ignore())
        .args(["--legacy-ignore-file", "", "--all"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn report_json(journald: &Journald, site: &Site, extra: &[&str]) -> Value {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let out = report(journald, site, &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn find<'a>(list: &'a Value, field: &str, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|g| g[field] == name)
        .unwrap_or_else(|| panic!("no {field} {name} in {list:#}"))
}

/// Waits until postgrey has logged `count` decisions.
fn wait_for_decisions(journald: &Journald, count: usize) {
    wait_for(&format!("{count} postgrey decisions"), || {
        let found = journald
            .entries(&[UNIT_MATCH])
            .into_iter()
            .filter(|e| e.message().is_some_and(|m| m.starts_with("action=")))
            .count();
        (found >= count).then_some(())
    });
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// postgrey with `--ipv4cidr=32` greylists a sender again from every other address of its /24,
/// and whitelists a client through a file named only in its options: read with
/// `--postgrey-config`, the report counts the networks and retries postgrey saw, and knows
/// the whitelisted group; read with postgrey's defaults it does not.
#[test]
fn a_slash_32_postgrey_and_its_own_whitelist_file() {
    require_root();
    let journald = Journald::start();
    let site = Site::new(
        "# the site's own list\ncovered.example\n",
        "--inet=10023 --delay=2 --ipv4cidr=32 --whitelist-clients=WHITELIST",
    );
    let postgrey = Postgrey::builder()
        .arg("--ipv4cidr=32")
        .whitelist_clients(site.whitelist())
        .start(&journald);
    let sender = "news@esp-many.example";
    for (host, address) in [
        ("o1.esp-many.example", "198.51.100.1"),
        ("o2.esp-many.example", "198.51.100.2"),
        ("o3.esp-many.example", "198.51.100.3"),
    ] {
        // Each a `new` greylisting: another /32, though the same /24.
        let reply = postgrey.request(host, address, sender, RECIPIENT);
        assert_eq!(reply, greylist_reply("example.org"), "{host}");
    }
    let reply = postgrey.request(
        "mx.covered.example",
        "203.0.113.5",
        "a@covered.example",
        RECIPIENT,
    );
    assert_eq!(reply, DUNNO_REPLY);
    let reply = postgrey.request("unknown", "192.0.2.7", "x@unresolved.example", RECIPIENT);
    assert_eq!(reply, greylist_reply("example.org"));
    wait_for_decisions(&journald, 5);
    let logged: Vec<String> = journald
        .entries(&[UNIT_MATCH])
        .iter()
        .filter_map(|e| e.message())
        .filter(|m| m.starts_with("action="))
        .collect();
    assert_eq!(
        logged
            .iter()
            .filter(|m| m.starts_with("action=greylist, reason=new"))
            .count(),
        4,
        "{logged:#?}"
    );

    let options = site.options();
    let config = ["--postgrey-config", s(&options)];
    let counted = report_json(&journald, &site, &config);
    assert_eq!(
        counted["postgrey"],
        json!({
            "config": s(&site.options()),
            "delay_s": 2,
            "ipv4cidr": 32,
            "ipv6cidr": 64,
            "lookup_by_host": false,
            "whitelist_clients": [s(&site.whitelist())],
        })
    );
    assert_eq!(counted["whitelist_files"], json!([s(&site.whitelist())]));
    let esp = find(&counted["groups"], "domain", "esp-many.example");
    assert_eq!(
        (
            &esp["new"],
            &esp["distinct_ips"],
            &esp["distinct_nets"],
            &esp["retried_from_other_net"]
        ),
        (&json!(3), &json!(3), &json!(3), &json!(2))
    );
    let covered = find(&counted["groups"], "domain", "covered.example");
    assert_eq!(covered["status"], "whitelisted");
    assert_eq!(covered["passed_whitelisted"], 1);
    let unresolved = find(&counted["unresolved"], "network", "192.0.2.7/32");
    assert_eq!(unresolved["new"], 1);

    // Read as if postgrey ran with its defaults: one /24, no retry from another network, and
    // the site's file unknown.
    let defaults = site.path("defaults");
    std::fs::write(&defaults, "POSTGREY_OPTS=\"--inet=10023\"\n").unwrap();
    let assumed = report_json(&journald, &site, &["--postgrey-config", s(&defaults)]);
    let esp = find(&assumed["groups"], "domain", "esp-many.example");
    assert_eq!(
        (&esp["distinct_nets"], &esp["retried_from_other_net"]),
        (&json!(1), &json!(0))
    );
    assert_ne!(
        find(&assumed["groups"], "domain", "covered.example")["status"],
        "whitelisted"
    );
    find(&assumed["unresolved"], "network", "192.0.2.0/24");
    assert_eq!(assumed["postgrey"]["ipv4cidr"], 24);

    // The table says in one line which settings it counted with; not with the defaults.
    let table = report(&journald, &site, &config);
    // Wrapped at 80 columns where the temporary paths make it: compared unwrapped.
    let line = format!(
        "\nCounted as postgrey runs (from {}): --ipv4cidr=32, --delay=2, --whitelist-clients={}.\n",
        site.options().display(),
        site.whitelist().display()
    );
    assert!(table.replace("\n  ", " ").contains(&line), "{table}");
    let table = report(&journald, &site, &["--postgrey-config", s(&defaults)]);
    assert!(!table.contains("Counted as postgrey runs"), "{table}");
}
