//! What several tests set up the same way: Debian's whitelist, the postmaster's files, the week
//! of [`traffic`](super::traffic) moved in time and turned into journal entries, and the figures
//! a report of that week must show.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ExportEntry;
use super::traffic::{self, Line};

pub const DAY_S: i64 = 86_400;

/// Debian's `whitelist_clients` as postgrey 1.37 ships it (a path from the crate root, where
/// cargo runs tests).
pub const DEBIAN_LIST: &str = "tests/fixtures/whitelist/whitelist_clients.debian-1.37";

/// A copy of [`DEBIAN_LIST`] as `dir/whitelist_clients`.
pub fn copy_debian_list(dir: &Path) -> PathBuf {
    let main = dir.join("whitelist_clients");
    std::fs::copy(DEBIAN_LIST, &main).expect("copy the Debian list");
    main
}

/// The postmaster's files in `dir`, as `(whitelist_clients, ignore)`: a whitelist whose CIDR
/// entry whitelists Mailchimp (mcsv.net), and an ignore file that names bulk.co.uk.
pub fn postmaster_files(dir: &Path) -> (PathBuf, PathBuf) {
    let whitelist = dir.join("whitelist_clients");
    std::fs::write(
        &whitelist,
        "# test whitelist\n205.201.128.0/20\nmx.awl.example\n",
    )
    .unwrap();
    let ignore = dir.join("ignore");
    std::fs::write(&ignore, "# decided: not worth it\nbulk.co.uk\n").unwrap();
    (whitelist, ignore)
}

pub fn rfc3339(at_s: i64) -> String {
    jiff::Timestamp::from_second(at_s).unwrap().to_string()
}

/// The week moved by whole days so that its day 0 is the UTC day `first_day` (days since the
/// epoch): every figure the table in traffic.rs gives stays the same.
pub fn week_from_day(first_day: i64) -> Vec<Line> {
    let shift = first_day * DAY_S - traffic::WEEK_START_S;
    traffic::week()
        .into_iter()
        .map(|l| Line {
            at_s: l.at_s + shift,
            message: l.message,
        })
        .collect()
}

/// `lines` as postgrey.service's journal entries.
pub fn export_entries(lines: &[Line]) -> Vec<ExportEntry> {
    lines
        .iter()
        .map(|l| ExportEntry::postgrey(&rfc3339(l.at_s), &l.message))
        .collect()
}

/// The group of `domain` in a report or summary.
pub fn group<'a>(report: &'a Value, domain: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["domain"] == domain)
        .unwrap_or_else(|| panic!("no group {domain} in {report:#}"))
}

/// The figures every reading of the week must give with the [`postmaster_files`] (see the
/// table in traffic.rs), wherever the week was moved to, and `entries` entries read in all.
pub fn assert_week(report: &Value, entries: u64) {
    let amazon = group(report, "amazonses.com");
    assert_eq!(amazon["new"], 84);
    assert_eq!(amazon["early_retry"], 0);
    assert_eq!(amazon["retried_from_other_net"], 56);
    assert_eq!(amazon["passed_after_delay"], 28);
    assert_eq!(amazon["median_delay_s"], 10800);
    assert_eq!(amazon["max_delay_s"], 10800);
    assert_eq!(amazon["distinct_ips"], 12);
    assert_eq!(amazon["distinct_nets"], 3);
    assert_eq!(amazon["distinct_hosts"], 12);
    assert_eq!(amazon["status"], "candidate");
    assert_eq!(amazon["verdict"], "whitelist");
    assert_eq!(amazon["suggestion"], "smtp-out.eu-west-1.amazonses.com");

    let outlook = group(report, "outlook.com");
    assert_eq!(
        (
            &outlook["new"],
            &outlook["retried_from_other_net"],
            &outlook["passed_after_delay"]
        ),
        (&Value::from(42), &Value::from(21), &Value::from(21))
    );
    assert_eq!(outlook["median_delay_s"], 7200);
    assert_eq!(
        (&outlook["distinct_ips"], &outlook["distinct_nets"]),
        (&Value::from(6), &Value::from(2))
    );
    assert_eq!(outlook["verdict"], "whitelist");
    assert_eq!(outlook["suggestion"], "outbound.protection.outlook.com");

    let isp = group(report, "example-isp.net");
    assert_eq!(
        (&isp["new"], &isp["distinct_ips"], &isp["distinct_hosts"]),
        (&Value::from(35), &Value::from(35), &Value::from(35))
    );
    assert_eq!(isp["retried_from_other_net"], 0);
    assert_eq!(isp["passed_after_delay"], 0);
    assert_eq!(isp["verdict"], "spam-like");
    assert_eq!(isp["suggestion"], Value::Null);

    let shop = group(report, "smallshop.de");
    assert_eq!(
        (&shop["new"], &shop["passed_after_delay"]),
        (&Value::from(21), &Value::from(21))
    );
    assert_eq!(shop["median_delay_s"], 360);
    assert_eq!(
        (&shop["distinct_ips"], &shop["distinct_nets"]),
        (&Value::from(1), &Value::from(1))
    );
    assert_eq!(shop["verdict"], "review");
    assert_eq!(shop["suggestion"], Value::Null);

    let mailchimp = group(report, "mcsv.net");
    assert_eq!(mailchimp["new"], 20);
    assert_eq!(mailchimp["distinct_ips"], 40);
    assert_eq!(mailchimp["status"], "whitelisted");
    assert_eq!(mailchimp["verdict"], Value::Null);

    let bulk = group(report, "bulk.co.uk");
    assert_eq!(
        (&bulk["new"], &bulk["retried_from_other_net"]),
        (&Value::from(42), &Value::from(21))
    );
    assert_eq!(bulk["status"], "ignored");
    assert_eq!(bulk["verdict"], Value::Null);

    let ec2 = group(report, "ec2-3-80-1-4.compute-1.amazonaws.com");
    assert_eq!(ec2["new"], 1);
    assert_eq!(ec2["verdict"], Value::Null);

    let unresolved = report["unresolved"].as_array().unwrap();
    assert_eq!(unresolved.len(), 1);
    assert_eq!(unresolved[0]["network"], "192.0.2.0/24");
    assert_eq!(unresolved[0]["new"], 14);
    assert_eq!(unresolved[0]["distinct_ips"], 14);

    // 6 organisations, 7 EC2 hosts, the AWL and recipient-whitelist clients.
    assert_eq!(report["groups"].as_array().unwrap().len(), 15);
    assert_eq!(report["totals"]["entries"], entries);
    assert_eq!(report["totals"]["greylisted"], 265);
    assert_eq!(report["totals"]["malformed"], 7);
}
