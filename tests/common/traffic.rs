//! A week of postgrey decisions with known answers, as real postgrey 1.37 logs them.
//!
//! Every sender behaves the way its kind does in the wild, and every figure a test asserts
//! follows from the schedule below (7 days from [`WEEK_START`]):
//!
//! | group | behaviour | per day |
//! |---|---|---|
//! | amazonses.com | 4 mails; each greylisted from 3 different /24s, passes after 3 h | 12 new, 8 retried elsewhere, 4 passed (10800 s) |
//! | outlook.com | 3 mails; greylisted from 2 /24s, passes after 2 h | 6 new, 3 retried elsewhere, 3 passed (7200 s) |
//! | example-isp.net | 5 dynamic-pool hosts, each tries once, never again | 5 new |
//! | smallshop.de | 3 mails from one host, each retried after 6 min | 3 new, 3 passed (360 s) |
//! | mcsv.net | days 0–1: 10 greylisted; days 2–6: 4 passed by `client whitelist` | |
//! | bulk.co.uk | 3 mails like outlook.com (an ignored domain) | 6 new, 3 retried elsewhere, 3 passed (5400 s) |
//! | 192.0.2.0/24 | `client_name=unknown`, 2 mails that never come back | 2 new |
//! | ec2-3-80-1-D.compute-1.amazonaws.com | one EC2 host a day, a public suffix of its own | 1 new |
//!
//! plus, each day, one `recipient whitelist` pass, one `client AWL` pass, one
//! `whitelisted: name[ip]` line, a start-up line and one malformed line.
#![allow(dead_code)]

/// 2026-11-21T00:00:00Z.
pub const WEEK_START_S: i64 = 1_795_219_200;
const HOUR: i64 = 3600;
const MINUTE: i64 = 60;

/// One postgrey log message at a time (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub at_s: i64,
    pub message: String,
}

fn decision(
    action: &str,
    reason: &str,
    delay: Option<i64>,
    name: &str,
    ip: &str,
    sender: &str,
    rcpt: &str,
) -> String {
    let delay = delay.map(|d| format!(", delay={d}")).unwrap_or_default();
    format!(
        "action={action}, reason={reason}{delay}, client_name={name}, client_address={ip}, sender={sender}, recipient={rcpt}"
    )
}

fn greylist(name: &str, ip: &str, sender: &str) -> String {
    decision("greylist", "new", None, name, ip, sender, "bob@example.org")
}

fn passed(delay: i64, name: &str, ip: &str, sender: &str) -> String {
    decision(
        "pass",
        "triplet found",
        Some(delay),
        name,
        ip,
        sender,
        "bob@example.org",
    )
}

/// The week, in time order.
pub fn week() -> Vec<Line> {
    let mut lines = Vec::new();
    let mut push = |at_s: i64, message: String| lines.push(Line { at_s, message });
    for d in 0..7i64 {
        let day = WEEK_START_S + d * 24 * HOUR;
        // amazonses.com: a retry comes from another server in another /24 each time.
        for i in 0..4i64 {
            let t = day + (8 + 3 * i) * HOUR;
            let sender = format!("0102018c{d}{i}@eu-west-1.amazonses.com");
            let host = |k: i64| format!("a{i}-{k}.smtp-out.eu-west-1.amazonses.com");
            let ip = |k: i64| format!("54.240.{}.{}", 3 + k, 10 + i);
            push(t, greylist(&host(1), &ip(1), &sender));
            push(t + 15 * MINUTE, greylist(&host(2), &ip(2), &sender));
            push(t + 45 * MINUTE, greylist(&host(3), &ip(3), &sender));
            push(t + 3 * HOUR, passed(3 * HOUR, &host(1), &ip(1), &sender));
        }
        // outlook.com, with Postfix's queue id in front of the pass.
        for i in 0..3i64 {
            let t = day + (9 + 4 * i) * HOUR + 5 * MINUTE;
            let sender = format!("news{d}{i}@contoso.example");
            let host = |k: i64| format!("mail-db8eur0{i}on20{k}.outbound.protection.outlook.com");
            let ip = |k: i64| format!("40.107.{}.{}", 20 + k, 10 + i);
            push(t, greylist(&host(1), &ip(1), &sender));
            push(t + 20 * MINUTE, greylist(&host(2), &ip(2), &sender));
            push(
                t + 2 * HOUR,
                format!(
                    "4F2A91C0D{i}: {}",
                    passed(2 * HOUR, &host(1), &ip(1), &sender)
                ),
            );
        }
        // example-isp.net: dynamic pool, single attempts.
        for j in 0..5i64 {
            let n = d * 5 + j + 1;
            let t = day + (1 + 4 * j) * HOUR + 17 * MINUTE;
            push(
                t,
                greylist(
                    &format!("dynamic-203-0-113-{n}.adsl.example-isp.net"),
                    &format!("203.0.113.{n}"),
                    &format!("xk{d}{j}@random-bot.example"),
                ),
            );
        }
        // smallshop.de: one server that retries properly.
        for i in 0..3i64 {
            let t = day + (10 + 2 * i) * HOUR + 30 * MINUTE;
            let sender = format!("orders+{d}{i}@smallshop.de");
            push(t, greylist("mail.smallshop.de", "198.51.100.25", &sender));
            push(
                t + 6 * MINUTE,
                passed(360, "mail.smallshop.de", "198.51.100.25", &sender),
            );
        }
        // mcsv.net: greylisted until the postmaster whitelisted its CIDR on day 2.
        if d < 2 {
            for k in 0..10i64 {
                let t = day + 7 * HOUR + k * 11 * MINUTE;
                push(
                    t,
                    greylist(
                        &format!("mail{k}.atl{d}1.mcsv.net"),
                        &format!("205.201.{}.{}", 130 + d, 20 + k),
                        &format!("bounce-mc.us{k}@mcsv.net"),
                    ),
                );
            }
        } else {
            for k in 0..4i64 {
                let t = day + 7 * HOUR + k * 11 * MINUTE;
                push(
                    t,
                    decision(
                        "pass",
                        "client whitelist",
                        None,
                        &format!("mail{k}.atl{d}1.mcsv.net"),
                        &format!("205.201.{}.{}", 130 + d, 20 + k),
                        &format!("bounce-mc.us{k}@mcsv.net"),
                        "bob@example.org",
                    ),
                );
            }
        }
        // bulk.co.uk: a multi-server sender the postmaster decided to ignore.
        for i in 0..3i64 {
            let t = day + (11 + 3 * i) * HOUR + 40 * MINUTE;
            let sender = format!("list{d}{i}@bulk.co.uk");
            let host = |k: i64| format!("out{k}.mta.bulk.co.uk");
            let ip = |k: i64| format!("198.18.{k}.{}", 30 + i);
            push(t, greylist(&host(1), &ip(1), &sender));
            push(t + 25 * MINUTE, greylist(&host(2), &ip(2), &sender));
            push(
                t + 90 * MINUTE,
                passed(90 * MINUTE, &host(1), &ip(1), &sender),
            );
        }
        // Unresolved clients.
        for j in 0..2i64 {
            let t = day + (3 + 10 * j) * HOUR;
            push(
                t,
                greylist(
                    "unknown",
                    &format!("192.0.2.{}", 45 + d * 2 + j),
                    "newsletter@shop.example",
                ),
            );
        }
        // An EC2 host: its name is a public suffix, so it is a group of its own.
        push(
            day + 21 * HOUR,
            greylist(
                &format!("ec2-3-80-1-{d}.compute-1.amazonaws.com"),
                &format!("3.80.1.{d}"),
                "app@ec2.example",
            ),
        );
        // Lines that are not greylisting.
        push(
            day + 5 * HOUR,
            decision(
                "pass",
                "recipient whitelist",
                None,
                "mail.example.net",
                "198.51.100.20",
                "alice@example.net",
                "postmaster@example.org",
            ),
        );
        push(
            day + 6 * HOUR,
            decision(
                "pass",
                "client AWL",
                None,
                "mx.awl.example",
                "198.51.100.120",
                "list@awl.example",
                "bob@example.org",
            ),
        );
        push(
            day + 6 * HOUR,
            String::from("whitelisted: mx.awl.example[198.51.100.120]"),
        );
        push(
            day + 2 * MINUTE,
            String::from(
                "2026/11/21-00:02:00 postgrey (type Net::Server::Multiplex) starting! pid(4242)",
            ),
        );
        push(
            day + 23 * HOUR,
            String::from(
                "action=greylist, reason=new, client_name=bad name!, client_address=198.51.100.9",
            ),
        );
    }
    lines.sort_by_key(|l| l.at_s);
    lines
}

/// The week as Debian's `/var/log/mail.log` writes it (traditional stamps, in UTC here; tests
/// run with `TZ=UTC`).
pub fn syslog_text(lines: &[Line]) -> String {
    let mut out = String::new();
    for line in lines {
        let stamp = jiff::Timestamp::from_second(line.at_s)
            .map(|t| t.strftime("%b %e %H:%M:%S").to_string())
            .unwrap_or_default();
        out.push_str(&format!("{stamp} mx1 postgrey[4242]: {}\n", line.message));
        // Other programs share the file.
        out.push_str(&format!(
            "{stamp} mx1 postfix/smtpd[999]: connect from unknown[192.0.2.1]\n"
        ));
    }
    out
}
