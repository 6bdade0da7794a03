//! postgrey's own code as the oracle: pieces of the installed `/usr/sbin/postgrey` run by Perl.
//! - How it keys a sender: `do_sender_substitutions` on generated senders, lower-cased as
//!   postgrey lower-cases the whole key, must equal `postgrey::triplet_sender` for every one.
//! - How it reads its options: its `GetOptions(…)` call on generated command lines, with the
//!   defaults it applies, must give what `postgrey::parse_options` gives (or both refuse).

use std::io::Write;
use std::process::{Command, Stdio};

use postgrey_advisor::postgrey::{parse_options, triplet_sender};

const POSTGREY: &str = "/usr/sbin/postgrey";

/// The piece of postgrey's source from `start` to the first line that is `end` alone.
fn postgrey_piece(start: &str, end: &str) -> String {
    let source = std::fs::read_to_string(POSTGREY).expect("postgrey is installed");
    let from = source.find(start).expect("postgrey has the piece");
    let to = from
        + source[from..]
            .find(end)
            .expect("the piece ends where expected");
    source[from..to + end.len()].to_string()
}

/// Runs `script` with `input` on standard input; its standard output, line by line.
fn perl(script: &str, input: String) -> Vec<String> {
    let mut perl = Command::new("perl")
        .arg("-e")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("perl runs");
    // Written from another thread: perl's answers fill its stdout pipe meanwhile.
    let mut stdin = perl.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = perl.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "perl failed");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Senders built from the pieces that matter: BATV tags in both orders, extensions, numbers
/// alone and inside words, case, odd characters.
fn senders() -> Vec<String> {
    let users = [
        "news",
        "News.Letter",
        "bounce-123-456",
        "bounce.42",
        "abc123",
        "123_x",
        "12",
        "a-1b-2",
        "x1-2y-3",
        "007",
        "msg-2026-11-21",
        "_9_",
        "ü-5",
        "",
    ];
    let batv = [
        "",
        "prvs=0123abcdef=",
        "prvs=0123ABCDEF=",
        "prvs=abcdefghij12=",
        "prvs=short=",
        "PRVS=0123abcdef=",
    ];
    let batv_after = ["", "=0123abcdef", "=abcdefghij", "=x"];
    let extensions = ["", "+list", "+123", "+a+b"];
    let domains = ["example.com", "Example.COM", "123.example", "x@y.example"];
    let mut out = vec!["no-at-sign".to_string(), "@example.com".to_string()];
    for user in users {
        for prefix in batv {
            for suffix in batv_after {
                for extension in extensions {
                    for domain in domains {
                        out.push(format!("{prefix}{user}{extension}{suffix}@{domain}"));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn senders_are_keyed_as_postgrey_keys_them() {
    let senders = senders();
    let script = format!(
        "use strict; no warnings;\n{}\nwhile (my $line = <STDIN>) {{\n  chomp $line;\n  \
         print lc(do_sender_substitutions(undef, $line)), \"\\n\";\n}}\n",
        postgrey_piece("sub do_sender_substitutions", "\n}\n")
    );
    let mut input = String::new();
    for s in &senders {
        input.push_str(s);
        input.push('\n');
    }
    let keys = perl(&script, input);
    assert_eq!(keys.len(), senders.len());
    let mut wrong = Vec::new();
    for (sender, key) in senders.iter().zip(&keys) {
        if triplet_sender(sender) != key.as_str() {
            wrong.push(format!(
                "{sender}: postgrey {key}, ours {}",
                triplet_sender(sender)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} senders keyed differently:\n{}",
        wrong.len(),
        senders.len(),
        wrong.join("\n")
    );
}

/// Command lines built from the options that matter, in the spellings Getopt::Long takes.
fn command_lines() -> Vec<Vec<String>> {
    let pieces: &[&[&str]] = &[
        &[
            "",
            "--lookup-by-host",
            "-lookup-by-h",
            "--LOOKUP-BY-HOST",
            "--lookup-by-subnet",
            "--lookup",
        ],
        &[
            "",
            "--delay=60",
            "--delay 0",
            "--del=600",
            "-DELAY=5",
            "--delay=5m",
            "--delay=-7",
            "--delay",
        ],
        &[
            "",
            "--ipv4cidr=32",
            "--ipv4=16",
            "--ipv4cidr 0",
            "--ipv4cidr=33",
            "--ipv6cidr=48",
            "--ipv6cidr=129",
        ],
        &["", "--max-age=7", "--max-age 0", "--max=3"],
        &[
            "",
            "--whitelist-clients=/a",
            "--whitelist-clients=/a --whitelist-clients /b",
            "--whitelist=/a",
        ],
        &[
            "",
            "--auto-whitelist-clients",
            "--auto-whitelist-clients=0",
            "--auto-whitelist-clients=12",
            "--auto-whitelist-clients 3",
        ],
        &[
            "",
            "--inet=10023 --dbdir=/var/lib/postgrey",
            "--privacy --exim",
            "--bogus",
        ],
    ];
    let mut lines: Vec<Vec<String>> = vec![Vec::new()];
    for choices in pieces {
        let mut next = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            // Every choice with the first lines; one choice each after that, to stay small.
            let picks: Vec<&str> = if i < 4 {
                choices.to_vec()
            } else {
                vec![choices[i % choices.len()]]
            };
            for choice in picks {
                let mut words = line.clone();
                words.extend(choice.split_whitespace().map(str::to_owned));
                next.push(words);
            }
        }
        lines = next;
    }
    lines
}

#[test]
fn options_are_read_as_postgrey_reads_them() {
    let lines = command_lines();
    // postgrey's GetOptions call, then the defaults it applies (`$opt{x} || default`).
    let script = format!(
        "use strict; no warnings; use Getopt::Long;\n\
         while (my $line = <STDIN>) {{\n  chomp $line;\n  local @ARGV = split / /, $line;\n  \
         my %opt;\n  local $SIG{{__WARN__}} = sub {{}};\n  \
         my $ok = {};\n  \
         if (!$ok) {{ print \"refused\\n\"; next; }}\n  \
         my $awl = defined $opt{{'auto-whitelist-clients'}} ? ($opt{{'auto-whitelist-clients'}} ne '' ? $opt{{'auto-whitelist-clients'}} : 5) : 5;\n  \
         my $wl = $opt{{'whitelist-clients'}} || ['/etc/postgrey/whitelist_clients', '/etc/postgrey/whitelist_clients.local'];\n  \
         printf \"host=%s delay=%d max_age=%d v4=%d v6=%d awl=%d wl=%s\\n\", \
           ($opt{{'lookup-by-host'}} ? 1 : 0), ($opt{{delay}} || 300), ($opt{{'max-age'}} || 35), \
           ($opt{{ipv4cidr}} || 24), ($opt{{ipv6cidr}} || 64), $awl, join(',', @$wl);\n\
         }}\n",
        postgrey_piece("GetOptions(\\%opt", ")").replacen(" or exit(1)", "", 1)
    );
    let input: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
    let answers = perl(&script, input);
    assert_eq!(answers.len(), lines.len());
    let mut wrong = Vec::new();
    let mut refused = 0;
    for (line, answer) in lines.iter().zip(&answers) {
        let ours = match parse_options(line) {
            Ok(s) => format!(
                "host={} delay={} max_age={} v4={} v6={} awl={} wl={}",
                u8::from(s.lookup_by_host),
                s.delay_s,
                s.max_age_days,
                s.ipv4cidr,
                s.ipv6cidr,
                s.auto_whitelist_clients,
                s.whitelist_clients
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Err(_) => "refused".to_string(),
        };
        if ours == "refused" {
            refused += 1;
        }
        // A CIDR out of range starts postgrey but fails at the first request, and a negative
        // delay lets every retry pass: both are refused here, as slips.
        let out_of_range = line
            .iter()
            .any(|w| w == "--ipv4cidr=33" || w == "--ipv6cidr=129" || w.contains("=-"));
        if ours != *answer && !(out_of_range && ours == "refused") {
            wrong.push(format!(
                "{}: postgrey {answer}, ours {ours}",
                line.join(" ")
            ));
        }
    }
    assert!(refused > 0 && refused < lines.len(), "{refused} refused");
    assert!(
        wrong.is_empty(),
        "{} of {} command lines read differently:\n{}",
        wrong.len(),
        lines.len(),
        wrong.join("\n")
    );
}
