//! `audit`'s verdict on whitelist regexes, checked against Perl itself: postgrey compiles each
//! `/re/` line as `qr{re}i` and matches it, unanchored, against the client name. For every shape
//! below, perl matches the regex against names generated around the domain it is meant for, and
//! its answers decide the verdict:
//! - unsafe: it matches a different domain — text glued in front of the first label (`evilX`,
//!   `evil-X`, …), a dot turned into a letter, or names that go on after the domain (`X.evil…`);
//! - narrower: otherwise, it matches every name below the domain but not the domain itself;
//! - safe: otherwise.
//!
//! `audit` must agree: a finding for the unsafe, exactly one note for the narrower, nothing for
//! the safe.

mod common;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use common::bin;
use postgrey_advisor::whitelist;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Safe,
    Narrower,
    Unsafe,
}

use Verdict::{Narrower, Safe, Unsafe};

/// (regex as written between the slashes, the domain it is meant for, the expected verdict).
const SHAPES: &[(&str, &str, Verdict)] = &[
    // Anchored at the start of the name or at a label boundary, and at the end.
    (r"^x\.com$", "x.com", Safe),
    (r"(^|\.)x\.com$", "x.com", Safe),
    (r"(?:^|\.)x\.com$", "x.com", Safe),
    (r"(^|[.])x\.com$", "x.com", Safe),
    (r"^(.*\.)?x\.com$", "x.com", Safe),
    (r"^(?:.+\.)?x\.com$", "x.com", Safe),
    (r"^(www\.)?x\.com$", "x.com", Safe),
    (r"(^|\.)(x|y)\.com$", "x.com", Safe),
    (r"^[a-z0-9-]+\.x\.com$", "x.com", Safe),
    (r"^mail\d+\.x\.com$", "mail1.x.com", Safe),
    (r"^(mail|smtp)\.x\.com$", "mail.x.com", Safe),
    (r"^x\.com\z", "x.com", Safe),
    (r"^x\.com\Z", "x.com", Safe),
    (r"\Ax\.com$", "x.com", Safe),
    (r"^(?i)X\.COM$", "x.com", Safe),
    // A leading dot (after anything) is a label boundary: every name below, not the domain.
    (r"\.x\.com$", "x.com", Narrower),
    (r".*\.x\.com$", "x.com", Narrower),
    (r".+\.x\.com$", "x.com", Narrower),
    (r".*?\.x\.com$", "x.com", Narrower),
    (r"^.*\.x\.com$", "x.com", Narrower),
    (r"^.+\.x\.com$", "x.com", Narrower),
    (r"[.]x\.com$", "x.com", Narrower),
    (r"^.*[.]x\.com$", "x.com", Narrower),
    (r"[^.]+\.x\.com$", "x.com", Narrower),
    (r"\x2ex\.com$", "x.com", Narrower),
    (r".*\.x\.com\z", "x.com", Narrower),
    (
        r".*\.protection\.outlook\.com$",
        "protection.outlook.com",
        Narrower,
    ),
    (r"^.*\.rsgsv\.net$", "rsgsv.net", Narrower),
    // Text glued in front of the first label.
    (r"x\.com$", "x.com", Unsafe),
    (r".*x\.com$", "x.com", Unsafe),
    (r"^.*x\.com$", "x.com", Unsafe),
    (r"^(.*)x\.com$", "x.com", Unsafe),
    (r"(.*\.)?x\.com$", "x.com", Unsafe),
    (r"^[a-z]*x\.com$", "x.com", Unsafe),
    (r"^\w*x\.com$", "x.com", Unsafe),
    (r"\bx\.com$", "x.com", Unsafe),
    (r"(^|\W)x\.com$", "x.com", Unsafe),
    (r"(^|-)x\.com$", "x.com", Unsafe),
    (r"^.*?.x\.com$", "x.com", Unsafe),
    // A dot that matches any character.
    (r"^x.com$", "x.com", Unsafe),
    (r"^mail\d+.x\.com$", "mail1.x.com", Unsafe),
    // Names that go on after the domain.
    (r"^x\.com", "x.com", Unsafe),
    (r"(^|\.)x\.com", "x.com", Unsafe),
    (r"^x\.com.*$", "x.com", Unsafe),
    (r"^x\.com(\.|$)", "x.com", Unsafe),
    (r"^x\.com\b", "x.com", Unsafe),
    (r"x\.com", "x.com", Unsafe),
];

/// Names that are not the domain nor below it; a regex matching any of them is unsafe.
fn other_domains(x: &str) -> Vec<String> {
    let mut names = vec![
        format!("evil{x}"),
        format!("evil-{x}"),
        format!("evil_{x}"),
        format!("1{x}"),
        format!("a.evil{x}"),
        format!("{x}.evil.example"),
        format!("{x}-evil.example"),
        format!("{x}evil.example"),
        format!("a.{x}.evil.example"),
    ];
    // Each dot turned into a letter: what an unescaped "." lets in.
    for (i, _) in x.match_indices('.') {
        names.push(format!("{}x{}", &x[..i], &x[i + 1..]));
        names.push(format!("a.{}x{}", &x[..i], &x[i + 1..]));
    }
    names
}

/// Perl's answer for each (regex, name), matched as postgrey does: `$name =~ qr{$re}i`.
fn perl_matches(pairs: &[(String, String)]) -> Vec<bool> {
    let mut perl = Command::new("perl")
        .args([
            "-e",
            "$| = 1; while (<STDIN>) { chomp; my ($re, $name) = split /\\t/; \
             my $qr = qr{$re}i; print(($name =~ $qr) ? \"1\\n\" : \"0\\n\"); }",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run perl");
    let mut input = String::new();
    for (re, name) in pairs {
        input.push_str(&format!("{re}\t{name}\n"));
    }
    perl.stdin
        .take()
        .expect("perl stdin")
        .write_all(input.as_bytes())
        .expect("write to perl");
    let out = perl.wait_with_output().expect("perl output");
    assert!(out.status.success(), "perl failed");
    let answers: Vec<bool> = String::from_utf8(out.stdout)
        .expect("perl output is text")
        .lines()
        .map(|l| l == "1")
        .collect();
    assert_eq!(answers.len(), pairs.len());
    answers
}

/// The verdict perl's matching gives, from the names generated around `x`.
fn perl_verdict(re: &str, x: &str) -> Verdict {
    let bare = x.to_string();
    let below = [format!("a.{x}"), format!("a.b.{x}")];
    let others = other_domains(x);
    let mut pairs = vec![(re.to_string(), bare.clone())];
    pairs.extend(below.iter().map(|n| (re.to_string(), n.clone())));
    pairs.extend(others.iter().map(|n| (re.to_string(), n.clone())));
    let answers = perl_matches(&pairs);
    let (bare_matches, below_match) = (answers[0], answers[1] && answers[2]);
    assert!(
        answers[..3].iter().any(|m| *m),
        "/{re}/ matches neither {x} nor a name below it: not a useful shape"
    );
    if answers[3..].iter().any(|m| *m) {
        Unsafe
    } else if below_match && !bare_matches {
        Narrower
    } else {
        Safe
    }
}

/// The verdict `audit` gives on a file holding only this regex.
fn audit_verdict(re: &str) -> (Verdict, Vec<String>) {
    let findings = whitelist::audit(&format!("/{re}/\n"), "wl");
    let shown = findings.iter().map(|f| f.to_string()).collect();
    let verdict = if findings.iter().any(|f| !f.note) {
        Unsafe
    } else if findings.len() == 1 {
        Narrower
    } else {
        assert!(findings.is_empty(), "/{re}/: {shown:?}");
        Safe
    };
    (verdict, shown)
}

#[test]
fn audit_agrees_with_perl_on_every_shape() {
    assert!(SHAPES.len() >= 30);
    let mut disagreements = Vec::new();
    for (re, x, expected) in SHAPES {
        let by_perl = perl_verdict(re, x);
        let (by_audit, shown) = audit_verdict(re);
        if (by_perl, by_audit) != (*expected, *expected) {
            disagreements.push(format!(
                "/{re}/: expected {expected:?}, perl {by_perl:?}, audit {by_audit:?} {shown:?}"
            ));
        }
    }
    assert_eq!(disagreements, Vec::<String>::new());
}

/// The entries of the widespread recipe, and what perl says of them.
const RECIPE: [&str; 8] = [
    r"/.*\.protection\.outlook\.com$/",
    r"/.*\.amazonses\.com$/",
    r"/.*\.mcsv\.net$/",
    r"/.*\.rsgsv\.net$/",
    r"/.*\.mandrillapp\.com$/",
    r"/.*\.sendgrid\.net$/",
    r"/.*\.mailgun\.org$/",
    r"/.*\.sparkpostmail\.com$/",
];

/// The domain a recipe entry is meant for: `/.*\.mcsv\.net$/` → `mcsv.net`.
fn recipe_domain(entry: &str) -> String {
    entry
        .trim_start_matches("/.*\\.")
        .trim_end_matches("$/")
        .replace("\\.", ".")
}

/// `audit` run by the real binary on one file holding `text`; the output and the file's path.
fn audit_file(name: &str, text: &str) -> (std::process::Output, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    fs::write(&path, text).expect("write");
    let out = bin()
        .args(["audit", "--whitelist-clients"])
        .arg(&path)
        .output()
        .expect("run");
    (out, dir, path.display().to_string())
}

#[test]
fn the_recipes_eight_entries_are_safe_notes_only_and_exit_0() {
    let (out, _dir, p) = audit_file("whitelist_clients.local", &(RECIPE.join("\n") + "\n"));
    let expected: String = RECIPE
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let domain = recipe_domain(entry);
            format!(
                "{p}:{}: note: regex {entry} matches the names below {domain}, not {domain} \
                 itself; /(^|\\.){}$/ or the plain entry {domain} covers both\n",
                i + 1,
                domain.replace('.', "\\.")
            )
        })
        .collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));

    // What the notes say, perl confirms: below yes, glued no, the domain itself no.
    let pairs: Vec<(String, String)> = RECIPE
        .iter()
        .flat_map(|entry| {
            let re = entry.trim_matches('/').to_string();
            let domain = recipe_domain(entry);
            [
                (re.clone(), format!("a.{domain}")),
                (re.clone(), format!("evil{domain}")),
                (re, domain),
            ]
        })
        .collect();
    let answers = perl_matches(&pairs);
    assert_eq!(answers, [true, false, false].repeat(RECIPE.len()));
}

#[test]
fn a_finding_next_to_notes_still_fails_the_audit() {
    let (out, _dir, p) = audit_file(
        "whitelist_clients",
        "/.*\\.sendgrid\\.net$/\n/amazonses\\.com$/\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{p}:1: note: regex /.*\\.sendgrid\\.net$/ matches the names below sendgrid.net, not \
             sendgrid.net itself; /(^|\\.)sendgrid\\.net$/ or the plain entry sendgrid.net covers \
             both\n\
             {p}:2: regex /amazonses\\.com$/ is not anchored at the start: it also matches names \
             with anything in front, such as \"evil\" glued to the first label; start it with ^ \
             or (^|\\.)\n"
        )
    );
    assert_eq!(out.status.code(), Some(1));
}
