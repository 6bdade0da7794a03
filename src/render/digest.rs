//! The digest mail's text: plain UTF-8 that reads well at 80 columns in a plain-text mail
//! client. Candidates first with their evidence, a per-day sparkline and ready-to-paste lines,
//! then the rest in brief. The envelope (headers, transport) is `app::run`'s business.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::advice::{Verdict, human_duration};
use crate::escape::printable;
use crate::report::{Finding, Report};

/// `▁▂▃▄▅▆▇█` scaled to the largest value; a blank for a day without greylistings.
pub fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                let steps = BARS.len() as u64;
                let index = ((v * steps).div_ceil(max) - 1) as usize;
                BARS[index.min(BARS.len() - 1)]
            }
        })
        .collect()
}

/// What earlier digests said: which candidates a reader has already been told about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Previous<'a> {
    /// When the last digest was delivered (µs).
    pub delivered_us: Option<i64>,
    /// Group key → when a delivered digest first listed it (µs), for candidates still listed.
    pub listed: Option<&'a BTreeMap<String, i64>>,
}

impl Previous<'_> {
    fn first_listed_us(&self, f: &Finding) -> Option<i64> {
        self.listed?.get(&f.key.to_string()).copied()
    }
}

/// `1 host`, `2 hosts`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The unreviewed candidates, split into those no delivered digest listed yet and those
/// already listed (a reminder, not news).
fn split<'a>(report: &'a Report, previous: &Previous<'_>) -> (Vec<&'a Finding>, Vec<&'a Finding>) {
    report
        .unreviewed()
        .partition(|f| previous.first_listed_us(f).is_none())
}

pub fn subject(host: &str, report: &Report, previous: &Previous<'_>) -> String {
    let (new, old) = split(report, previous);
    let (new, old) = (new.len() as u64, old.len() as u64);
    let what = match (new, old) {
        (0, 0) => String::from("no candidates to review"),
        (n, 0) => format!("{} to review", count(n, "new candidate", "new candidates")),
        (0, o) => format!("{} still unreviewed", count(o, "candidate", "candidates")),
        (n, o) => format!(
            "{}, {o} still unreviewed",
            count(n, "new candidate", "new candidates")
        ),
    };
    // The host name is ours, but it still passes the escaper: a header must stay one line.
    format!("postgrey-advisor on {}: {what}", printable(host))
}

/// A time as the reader's clock shows it, with its zone: `2026-12-04 13:05 UTC`.
pub fn when(realtime_us: i64) -> String {
    match jiff::Timestamp::from_microsecond(realtime_us) {
        Ok(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => String::from("?"),
    }
}

/// Columns a plain-text mail client shows without wrapping lines itself.
pub const WIDTH: usize = 80;

/// Writes `text` in lines of at most [`WIDTH`] columns, the first line starting with `first`,
/// the others with `rest`. Breaks only at spaces: a host name longer than a line stays whole
/// (a client wraps it, but a reader can still copy it).
fn wrapped(out: &mut String, first: &str, rest: &str, text: &str) {
    let options = textwrap::Options::new(WIDTH)
        .initial_indent(first)
        .subsequent_indent(rest)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .break_words(false);
    for line in textwrap::wrap(text, options) {
        let _ = writeln!(out, "{line}");
    }
}

/// `mx1 (5), mx2 (3)`: greylistings per MX host.
fn per_mx<'a>(counts: impl Iterator<Item = (&'a str, u64)>) -> String {
    counts
        .map(|(host, n)| format!("{} ({n})", printable(host)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One finding; with `several_mx`, where it was greylisted.
fn describe(f: &Finding, several_mx: bool, out: &mut String) {
    let e = &f.evidence;
    let verdict = f.advice.verdict.map_or("-", Verdict::as_str);
    let _ = writeln!(out, "{}  [{}]", printable(&f.key.to_string()), verdict);
    let wait = e
        .median_delay_s
        .map(|d| format!(", median wait {}", human_duration(d)))
        .unwrap_or_default();
    let counts = format!(
        "{} greylisted, {} retried from another network, {} passed after delay{wait}",
        e.greylisted(),
        e.retried_from_other_net,
        e.passed_after_delay
    );
    wrapped(out, "  ", "    ", &counts);
    if several_mx && !e.mx.is_empty() {
        let again = match e.retried_at_other_mx {
            0 => String::new(),
            n => format!("; {n} greylisted again at another MX host"),
        };
        let at = per_mx(e.mx.iter());
        wrapped(out, "  ", "    ", &format!("at {at}{again}"));
    }
    let sample = e
        .hosts
        .first()
        .map(|h| format!(", e.g. {}", printable(h)))
        .unwrap_or_default();
    let spread = format!(
        "{}, {}, {}{sample}",
        count(e.distinct_hosts, "host", "hosts"),
        count(e.distinct_ips, "address", "addresses"),
        count(e.distinct_nets, "network", "networks")
    );
    wrapped(out, "  ", "    ", &spread);
    let per_day: Vec<u64> = e.per_day.iter().map(|(_, n)| *n).collect();
    let _ = writeln!(out, "  per day |{}|", sparkline(&per_day));
    if !f.advice.reason.is_empty() {
        wrapped(out, "  why: ", "       ", &printable(&f.advice.reason));
    }
    let _ = writeln!(out);
}

/// The body. `suggestion_lines` are the whitelist lines as they would be written.
pub fn body(
    host: &str,
    report: &Report,
    previous: &Previous<'_>,
    suggestion_lines: &[(String, String)],
) -> String {
    let mut out = String::new();
    if let Some(headline) = report.headline() {
        wrapped(&mut out, "", "  ", &headline);
        let _ = writeln!(out);
    }
    let span = match (report.since_us, report.until_us) {
        // The counts are kept per UTC day: the span starts where its first day does.
        (Some(s), Some(u)) => format!("from {} to {} (whole days)", when(s), when(u)),
        _ => String::from("over the whole log"),
    };
    wrapped(
        &mut out,
        "",
        "",
        &format!("Greylisting on {} {span}.", printable(host)),
    );
    let t = &report.totals;
    wrapped(
        &mut out,
        "",
        "",
        &format!(
            "{} by postgrey, {} greylisted, {} skipped.",
            count(t.decisions, "decision", "decisions"),
            t.greylisted,
            count(t.untrusted_skipped, "untrusted entry", "untrusted entries")
        ),
    );
    if let Some(settings) = report.settings_words() {
        wrapped(&mut out, "", "  ", &printable(&settings));
    }
    if report.mx_hosts.len() > 1 {
        let hosts = per_mx(
            report
                .mx_hosts
                .iter()
                .map(|h| (h.host.as_str(), h.greylisted)),
        );
        wrapped(
            &mut out,
            "",
            "",
            &format!("Greylisted per MX host: {hosts}."),
        );
    }
    match previous.delivered_us {
        Some(at) => wrapped(
            &mut out,
            "",
            "",
            &format!("The previous digest was delivered {}.", when(at)),
        ),
        None => {
            let _ = writeln!(out, "This is the first digest.");
        }
    }
    let _ = writeln!(out);
    let (new, old) = split(report, previous);
    if new.is_empty() && old.is_empty() {
        let _ = writeln!(out, "No sender needs a decision.\n");
    }
    if !new.is_empty() {
        let heading = if previous.delivered_us.is_some() {
            "New since the previous digest"
        } else {
            "Senders that need a decision"
        };
        let _ = writeln!(out, "{heading} ({}):\n", new.len());
        for f in &new {
            describe(f, report.mx_hosts.len() > 1, &mut out);
        }
    }
    if !old.is_empty() {
        let _ = writeln!(
            out,
            "Still unreviewed, listed in an earlier digest ({}):",
            old.len()
        );
        for f in &old {
            let verdict = f.advice.verdict.map_or("-", Verdict::as_str);
            let since = previous
                .first_listed_us(f)
                .map(|at| format!(", listed since {}", when(at)))
                .unwrap_or_default();
            wrapped(
                &mut out,
                "  ",
                "      ",
                &format!(
                    "{} [{verdict}] {} greylisted{since}",
                    printable(&f.key.to_string()),
                    f.evidence.greylisted()
                ),
            );
        }
        let _ = writeln!(out);
    }
    if !suggestion_lines.is_empty() {
        let _ = writeln!(
            out,
            "Ready to paste into /etc/postgrey/whitelist_clients.local:\n"
        );
        for (line, why) in suggestion_lines {
            wrapped(&mut out, "# ", "#   ", &printable(why));
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "\nor run: postgrey-advisor accept --reload DOMAIN...\n"
        );
    }
    let accepted = report.accepted_words();
    if !accepted.is_empty() {
        let _ = writeln!(out, "Accepted lines at work:");
        for words in &accepted {
            wrapped(&mut out, "  ", "    ", &printable(words));
        }
        let _ = writeln!(out);
    }
    let rest: Vec<&Finding> = report
        .shown(&report.groups)
        .filter(|f| !report.unreviewed().any(|c| c.key == f.key))
        .collect();
    if !rest.is_empty() {
        let _ = writeln!(out, "Other senders:");
        for f in rest {
            let _ = writeln!(
                out,
                "  {:>6}  {:<40} {}",
                f.evidence.greylisted(),
                printable(&f.key.to_string()),
                f.advice.status
            );
        }
        let _ = writeln!(out);
    }
    for note in &report.notes {
        wrapped(&mut out, "Note: ", "      ", &printable(note));
    }
    let _ = writeln!(out, "-- \npostgrey-advisor {}", env!("CARGO_PKG_VERSION"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_maximum() {
        assert_eq!(sparkline(&[0, 1, 4, 8]), " ▁▄█");
        assert_eq!(sparkline(&[3, 3]), "██");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn long_text_wraps_at_spaces_and_keeps_host_names_whole() {
        let mut out = String::new();
        let host = "a0-1.smtp-out.eu-west-1.amazonses.com";
        wrapped(
            &mut out,
            "  why: ",
            "       ",
            &format!("{} e.g. {host}", "word ".repeat(20)),
        );
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(out.contains(host), "{out}");
        assert!(out.starts_with("  why: word"), "{out}");
        assert!(
            out.lines().skip(1).all(|l| l.starts_with("       ")),
            "{out}"
        );
    }

    #[test]
    fn every_groups_sparkline_covers_the_same_days() {
        use crate::event::{Action, ClientName, Decision, Reason};
        use crate::group::Grouper;
        use crate::tally::{MICROS_PER_DAY, Tally};

        let grouper = Grouper::builtin();
        let mut tally = Tally::default();
        let t0 = 1_795_000_000_000_000;
        for (host, day) in [("mx.early.example", 0), ("mx.late.example", 3)] {
            for i in 0..15 {
                let d = Decision {
                    queue_id: None,
                    action: Action::Greylist,
                    reason: Some(Reason::New),
                    delay_s: None,
                    client_name: Some(ClientName::Host(host.to_owned())),
                    client_address: Some("192.0.2.1".parse().unwrap()),
                    sender: Some(format!("s{i}@x")),
                    recipient: Some("bob@example.org".to_owned()),
                };
                tally.record_decision(&grouper, t0 + day * MICROS_PER_DAY + i, &d);
            }
        }
        let (first, last) = tally.span().unwrap();
        // The window reaches before the first day seen: the sparklines start there.
        let report = crate::report::assemble_plain(&tally, first - 10, last);
        let text = body("mx", &report, &Previous::default(), &[]);
        assert!(
            text.contains("early.example  [review]\n") && text.contains("late.example  [review]\n"),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("per day")).collect();
        assert_eq!(lines, ["  per day |█   |", "  per day |   █|"], "{text}");
    }

    #[test]
    fn subject_cannot_carry_a_line_break() {
        let s = subject(
            "mx\r\nBcc: x@example.org",
            &Report::default(),
            &Previous::default(),
        );
        assert!(!s.contains('\n') && !s.contains('\r'), "{s}");
    }

    /// Two candidates greylisted on day 20000 (one from a single server, 15 times; one from
    /// three networks), plus postgrey's start-up lines, which are no decisions.
    fn two_candidates() -> Report {
        use crate::event::{Action, ClientName, Decision, Reason};
        use crate::group::Grouper;
        use crate::source::{Entry, Origin};
        use crate::tally::{MICROS_PER_DAY, Tally};

        let grouper = Grouper::builtin();
        let mut tally = Tally::default();
        let t0 = 20_000 * MICROS_PER_DAY;
        for message in [
            "Process Backgrounded",
            "HUP received: reloading whitelists...",
        ] {
            let entry = Entry {
                realtime_us: t0,
                message: message.as_bytes(),
                origin: Origin::Trusted,
                host: None,
                cursor: None,
            };
            tally.ingest(&grouper, &entry);
        }
        let greylist = |host: &str, ip: &str, sender: String| Decision {
            queue_id: None,
            action: Action::Greylist,
            reason: Some(Reason::New),
            delay_s: None,
            client_name: Some(ClientName::Host(host.to_owned())),
            client_address: Some(ip.parse().unwrap()),
            sender: Some(sender),
            recipient: Some("bob@example.org".to_owned()),
        };
        for i in 0..15 {
            let d = greylist("mx.shop.example", "192.0.2.1", format!("s{i}@shop.example"));
            tally.record_decision(&grouper, t0 + i, &d);
            let net = ["198.51.100", "203.0.113", "192.0.2"][i as usize % 3];
            let d = greylist(
                &format!("o{i}.esp.example"),
                &format!("{net}.{}", 10 + i),
                format!("b{}@esp.example", i / 3),
            );
            tally.record_decision(&grouper, t0 + 100 + i, &d);
        }
        let mut report = crate::report::assemble_plain(&tally, 20_000, 20_000);
        report.since_us = Some(t0);
        report.until_us = Some(t0 + 3_600_000_000);
        report
    }

    /// With several MX hosts, the digest says what each greylisted, and where each sender was.
    #[test]
    fn a_digest_of_several_mx_hosts_names_them() {
        use crate::event::{Action, ClientName, Decision, Reason};
        use crate::group::Grouper;
        use crate::tally::{MICROS_PER_DAY, Tally};

        let grouper = Grouper::builtin();
        let mut tally = Tally::default();
        let t0 = 20_000 * MICROS_PER_DAY;
        for i in 0..16 {
            let d = Decision {
                queue_id: None,
                action: Action::Greylist,
                reason: Some(Reason::New),
                delay_s: None,
                client_name: Some(ClientName::Host("mx.shop.example".to_owned())),
                client_address: Some("192.0.2.1".parse().unwrap()),
                sender: Some(format!("s{}@shop.example", i / 2)),
                recipient: Some("bob@example.org".to_owned()),
            };
            let mx = if i % 2 == 0 { "mx1" } else { "mx2" };
            tally.record_decision_at(&grouper, t0 + i * 60_000_000, Some(mx), &d);
        }
        let report = crate::report::assemble_plain(&tally, 20_000, 20_000);
        let text = body("gather", &report, &Previous::default(), &[]);
        assert!(
            text.contains("\nGreylisted per MX host: mx1 (8), mx2 (8).\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n  16 greylisted, 0 retried from another network, 0 passed after delay\n  \
                 at mx1 (8), mx2 (8); 8 greylisted again at another MX host\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("Note: 8 greylistings repeated a greylisting at another MX host"),
            "{text}"
        );
    }

    #[test]
    fn a_first_digest_counts_decisions_only_and_says_one_host_in_the_singular() {
        let report = two_candidates();
        let previous = Previous::default();
        assert_eq!(
            subject("mx", &report, &previous),
            "postgrey-advisor on mx: 2 new candidates to review"
        );
        let text = body("mx", &report, &previous, &[]);
        let t0 = 20_000 * crate::tally::MICROS_PER_DAY;
        let expected_head = format!(
            "Greylisting held no mail past its delay in 1 day.\n\n\
             Greylisting on mx from {} to {} (whole days).\n\
             30 decisions by postgrey, 30 greylisted, 0 untrusted entries skipped.\n\
             This is the first digest.\n\n\
             Senders that need a decision (2):\n\n",
            when(t0),
            when(t0 + 3_600_000_000)
        );
        // The first line wraps where the time zone's name makes it.
        let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat(&text).starts_with(&flat(&expected_head)), "{text}");
        assert!(
            text.contains(
                "(whole\ndays).\n30 decisions by postgrey, 30 greylisted, 0 untrusted entries \
                 skipped.\nThis is the first digest.\n\nSenders that need a decision (2):\n\n"
            ) || text.contains(
                "(whole days).\n30 decisions by postgrey, 30 greylisted, 0 untrusted entries \
                 skipped.\nThis is the first digest.\n\nSenders that need a decision (2):\n\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\n  1 host, 1 address, 1 network, e.g. mx.shop.example\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  15 hosts, 15 addresses, 3 networks, e.g. o0.esp.example\n"),
            "{text}"
        );
        assert!(!text.contains("Still unreviewed"), "{text}");
    }

    #[test]
    fn the_digest_opens_with_what_greylisting_cost_and_names_postgreys_settings() {
        let mut report = two_candidates();
        let t0 = 20_000 * crate::tally::MICROS_PER_DAY;
        report.until_us = Some(t0 + 7 * crate::tally::MICROS_PER_DAY);
        report.totals.delayed = 1234;
        report.totals.delay_total_s = 312 * 3600;
        // esp.example passed after waiting 280 h in all, and is suggested for whitelisting.
        let esp = report
            .groups
            .iter_mut()
            .find(|f| f.key.to_string() == "esp.example")
            .unwrap();
        esp.evidence.delay_total_s = 280 * 3600;
        esp.advice.verdict = Some(crate::advice::Verdict::Whitelist);
        esp.advice.suggestion = Some(String::from("esp.example"));
        report.postgrey = crate::postgrey::parse_options(&["--ipv4cidr=32".to_string()]).unwrap();
        report.postgrey.config = Some("/etc/default/postgrey".into());
        let text = body("mx", &report, &Previous::default(), &[]);
        assert!(
            text.starts_with(
                "Greylisting held 1,234 mails for 312 h this week; the suggested line would have\n  \
                 spared 280 h (90 %).\n\nGreylisting on mx from "
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\nCounted as postgrey runs (from /etc/default/postgrey): --ipv4cidr=32.\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_later_digest_tells_new_candidates_from_ones_still_unreviewed() {
        let report = two_candidates();
        let t0 = 20_000 * crate::tally::MICROS_PER_DAY;
        let listed = BTreeMap::from([(String::from("shop.example"), t0 - 7 * 3_600_000_000)]);
        let previous = Previous {
            delivered_us: Some(t0 - 3_600_000_000),
            listed: Some(&listed),
        };
        assert_eq!(
            subject("mx", &report, &previous),
            "postgrey-advisor on mx: 1 new candidate, 1 still unreviewed"
        );
        let text = body("mx", &report, &previous, &[]);
        let expected = format!(
            "30 decisions by postgrey, 30 greylisted, 0 untrusted entries skipped.\n\
             The previous digest was delivered {}.\n\n\
             New since the previous digest (1):\n\n\
             esp.example  [",
            when(t0 - 3_600_000_000)
        );
        assert!(text.contains(&expected), "{text}");
        let expected = format!(
            "\n\nStill unreviewed, listed in an earlier digest (1):\n  shop.example [{}] 15 \
             greylisted, listed since {}\n\n",
            report
                .groups
                .iter()
                .find(|f| f.key.to_string() == "shop.example")
                .and_then(|f| f.advice.verdict)
                .map_or("-", Verdict::as_str),
            when(t0 - 7 * 3_600_000_000)
        );
        assert!(text.contains(&expected), "{text}");

        // Everything listed before: a reminder, no news.
        let listed = BTreeMap::from([
            (String::from("shop.example"), t0),
            (String::from("esp.example"), t0),
        ]);
        let previous = Previous {
            delivered_us: Some(t0),
            listed: Some(&listed),
        };
        assert_eq!(
            subject("mx", &report, &previous),
            "postgrey-advisor on mx: 2 candidates still unreviewed"
        );
        let text = body("mx", &report, &previous, &[]);
        assert!(!text.contains("New since"), "{text}");
        assert!(
            text.contains("Still unreviewed, listed in an earlier digest (2):\n"),
            "{text}"
        );
    }
}
