//! What greylisting cost: the delays postgrey logged summed per group and in all, the part the
//! suggested whitelist lines would have spared, and where they are shown (the table's and the
//! digest's headline, JSON, `check`'s perfdata, Prometheus). On a week generated relative to
//! today, so that it is in the window whatever day the test runs; the bundled sample's figures
//! are in first_hour.rs, check.rs and run.rs.

mod common;

use std::path::Path;

use common::fixtures::{DAY_S, rfc3339};
use common::{ExportEntry, JournalFiles, bin};
use serde_json::Value;

const RECIPIENT: &str = "bob@example.org";

fn decision(at_s: i64, head: &str, host: &str, address: &str, sender: &str) -> ExportEntry {
    ExportEntry::postgrey(
        &rfc3339(at_s),
        format!(
            "{head}, client_name={host}, client_address={address}, sender={sender}, \
             recipient={RECIPIENT}"
        ),
    )
}

/// Seven days from `first_day` (days since the epoch):
/// - bigsender.example, a multi-server sender: 4 mails a day, each greylisted from three
///   networks in turn and passing from the third after 600·(i+1) + 60·day seconds (i = 0…3):
///   7·600·10 + 4·60·21 = 47,040 s for 28 mails.
/// - slowshop.example, one server: 3 mails a day, each passing after 400 s: 8,400 s for 21.
fn week(first_day: i64) -> Vec<ExportEntry> {
    let mut entries = Vec::new();
    for day in 0..7 {
        let midnight = (first_day + day) * DAY_S;
        for i in 0..4 {
            let at = midnight + 3600 * (i + 1);
            // Senders that postgrey keys apart (no number standing alone).
            let sender = format!("list{day}x{i}@bigsender.example");
            for (n, net) in ["198.51.100", "203.0.113", "192.0.2"].iter().enumerate() {
                let n = n as i64;
                let host = format!("o{n}.out.bigsender.example");
                let address = format!("{net}.{}", 10 + i);
                entries.push(decision(
                    at + 60 * n,
                    "action=greylist, reason=new",
                    &host,
                    &address,
                    &sender,
                ));
            }
            let delay = 600 * (i + 1) + 60 * day;
            entries.push(decision(
                at + delay,
                &format!("action=pass, reason=triplet found, delay={delay}"),
                "o2.out.bigsender.example",
                &format!("192.0.2.{}", 10 + i),
                &sender,
            ));
        }
        for i in 0..3 {
            let at = midnight + 7200 * (i + 1) + 30;
            let sender = format!("order{day}x{i}@slowshop.example");
            entries.push(decision(
                at,
                "action=greylist, reason=new",
                "mail.slowshop.example",
                "198.18.0.5",
                &sender,
            ));
            entries.push(decision(
                at + 400,
                "action=pass, reason=triplet found, delay=400",
                "mail.slowshop.example",
                "198.18.0.5",
                &sender,
            ));
        }
    }
    entries
}

fn today() -> i64 {
    jiff::Timestamp::now().as_second().div_euclid(DAY_S)
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success() || output.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The postmaster's files: empty whitelist and ignore file, postgrey's default options.
fn files(dir: &Path) -> Vec<String> {
    for name in ["whitelist_clients", "ignore"] {
        std::fs::write(dir.join(name), "").unwrap();
    }
    std::fs::write(dir.join("postgrey"), "POSTGREY_OPTS=\"--inet=10023\"\n").unwrap();
    let path = |name: &str| dir.join(name).display().to_string();
    vec![
        "--whitelist-clients".into(),
        path("whitelist_clients"),
        "--ignore-file".into(),
        path("ignore"),
        "--legacy-ignore-file".into(),
        String::new(),
        "--postgrey-config".into(),
        path("postgrey"),
    ]
}

#[test]
fn a_generated_week_says_what_greylisting_cost_and_what_the_suggestion_spares() {
    let first_day = today() - 7;
    let journal = JournalFiles::with_entries(&week(first_day));
    let dir = tempfile::tempdir().unwrap();
    let lists = files(dir.path());
    let state = dir.path().join("state.json");
    let prom = dir.path().join("postgrey_advisor.prom");

    // The timer's job over the last 8 days (today included): the whole week.
    let output = bin()
        .env("TZ", "UTC")
        .args(["run", "--journal-dir"])
        .arg(journal.dir())
        .arg("--state")
        .arg(&state)
        .args([
            "--window",
            "8d",
            "--initial-since",
            "@0",
            "--format",
            "json",
        ])
        .arg("--prometheus")
        .arg(&prom)
        .args(&lists)
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let group = |name: &str| common::fixtures::group(&report, name).clone();
    let big = group("bigsender.example");
    assert_eq!(
        (
            &big["new"],
            &big["retried_from_other_net"],
            &big["passed_after_delay"],
            &big["delay_total_s"],
            &big["verdict"],
            &big["suggestion"],
        ),
        (
            &Value::from(84),
            &Value::from(56),
            &Value::from(28),
            &Value::from(47_040),
            &Value::from("whitelist"),
            &Value::from("out.bigsender.example"),
        )
    );
    let shop = group("slowshop.example");
    assert_eq!(
        (&shop["passed_after_delay"], &shop["delay_total_s"]),
        (&Value::from(21), &Value::from(8_400))
    );
    assert_ne!(shop["verdict"], "whitelist");
    assert_eq!(report["totals"]["delay_total_s"], 55_440);
    assert_eq!(report["totals"]["passed_after_delay"], 49);
    assert_eq!(report["spared_delay_s"], 47_040);

    let metrics = std::fs::read_to_string(&prom).unwrap();
    for line in [
        "postgrey_advisor_delay_seconds_total{domain=\"bigsender.example\",status=\"candidate\"} 47040\n",
        "postgrey_advisor_delay_seconds_total{domain=\"slowshop.example\",status=\"candidate\"} 8400\n",
        "postgrey_advisor_window_delay_seconds 55440\n",
        "postgrey_advisor_window_spared_delay_seconds 47040\n",
    ] {
        assert!(metrics.contains(line), "no {line:?} in:\n{metrics}");
    }

    // The monitoring check from the run's summary.
    let output = bin()
        .arg("check")
        .arg("--summary")
        .arg(dir.path().join("summary.json"))
        .args(&lists[..6])
        .args(["--window", "8d"])
        .output()
        .unwrap();
    let check = stdout(&output);
    assert!(
        check.contains(" greylisted=105;;;0 delay=55440s;;;0 groups=2;;;0 "),
        "{check}"
    );

    // The table over exactly the week: 49 mails held 55,440 s (15.4 h, said as 15 h); the one
    // suggested line would have spared bigsender.example's 47,040 s (13.1 h), 85 % of it.
    let output = bin()
        .env("TZ", "UTC")
        .args(["report", "--journal-dir"])
        .arg(journal.dir())
        .arg("--since")
        .arg(format!("@{}", first_day * DAY_S))
        .arg("--until")
        .arg(format!("@{}", (first_day + 7) * DAY_S))
        .args(&lists)
        .output()
        .unwrap();
    let table = stdout(&output);
    assert!(
        table.starts_with(
            "Greylisting held 49 mails for 15 h this week; the suggested line would have\n  \
             spared 13 h (85 %).\n\nWindow: "
        ),
        "{table}"
    );
}

/// The date of a UTC day number, as `accept` writes it.
fn date_of(day: i64) -> String {
    rfc3339(day * DAY_S)[..10].to_owned()
}

/// A line `accept` wrote five days ago whitelists esp.example: from that day on the report
/// shows how many of its mails postgrey passed at once, and the delay that spared at the
/// group's median wait before the date. A line without the date comment shows nothing.
#[test]
fn an_accepted_line_shows_what_it_spared_since_its_date() {
    let today = today();
    let on = today - 5;
    let mut entries = Vec::new();
    // Before: 5 days of 3 mails, each greylisted from two networks and passing after 600,
    // 1800 or 3000 s (median 1800 s).
    for day in today - 10..on {
        for (i, delay) in [600, 1800, 3000].into_iter().enumerate() {
            let at = day * DAY_S + 3600 * (i as i64 + 1);
            let sender = format!("list{i}x@esp.example");
            entries.push(decision(
                at,
                "action=greylist, reason=new",
                "o0.out.esp.example",
                "198.51.100.7",
                &sender,
            ));
            entries.push(decision(
                at + 60,
                "action=greylist, reason=new",
                "o1.out.esp.example",
                "203.0.113.7",
                &sender,
            ));
            entries.push(decision(
                at + delay,
                &format!("action=pass, reason=triplet found, delay={delay}"),
                "o1.out.esp.example",
                "203.0.113.7",
                &sender,
            ));
        }
        // old.example, whitelisted long ago by a line without a date, passes every day.
        entries.push(decision(
            day * DAY_S + 100,
            "action=pass, reason=client whitelist",
            "mx.old.example",
            "198.18.0.9",
            "a@old.example",
        ));
    }
    // From the date on: 4 mails a day pass at once, 20 in all.
    for day in on..today {
        for i in 0..4 {
            let host = format!("o{}.out.esp.example", i % 2);
            let address = if i % 2 == 0 {
                "198.51.100.7"
            } else {
                "203.0.113.7"
            };
            entries.push(decision(
                day * DAY_S + 3600 * (i + 1),
                "action=pass, reason=client whitelist",
                &host,
                address,
                &format!("list{i}y@esp.example"),
            ));
        }
    }
    let journal = JournalFiles::with_entries(&entries);
    let dir = tempfile::tempdir().unwrap();
    let mut lists = files(dir.path());
    let whitelist = dir.path().join("whitelist_clients");
    std::fs::write(
        &whitelist,
        format!(
            "old.example\n\n# added by postgrey-advisor on {}\nout.esp.example\n",
            date_of(on)
        ),
    )
    .unwrap();
    lists.extend(["--all".to_owned()]);
    let report = |format: &str| {
        let output = bin()
            .env("TZ", "UTC")
            .args(["report", "--format", format, "--journal-dir"])
            .arg(journal.dir())
            .arg("--since")
            .arg(format!("@{}", (today - 10) * DAY_S))
            .arg("--until")
            .arg(format!("@{}", today * DAY_S))
            .args(&lists)
            .output()
            .unwrap();
        stdout(&output)
    };
    let json: Value = serde_json::from_str(&report("json")).unwrap();
    let group = |name: &str| common::fixtures::group(&json, name).clone();
    let esp = group("esp.example");
    assert_eq!(esp["status"], "whitelisted");
    assert_eq!(
        esp["accepted"],
        serde_json::json!({
            "entry": "out.esp.example",
            "on": date_of(on),
            "passed_at_once": 20,
            "spared_delay_s": 36_000,
        })
    );
    assert_eq!(esp["median_delay_s"], 1800);
    let old = group("old.example");
    assert_eq!(old["status"], "whitelisted");
    assert_eq!(old["accepted"], Value::Null);

    let table = report("table");
    assert!(
        table.contains(&format!(
            "\nAccepted lines at work:\n  out.esp.example (added {}): 20 mails of esp.example passed at once\n    since, sparing 10 h at its median wait of 30m.\n",
            date_of(on)
        )),
        "{table}"
    );
}
