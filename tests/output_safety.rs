//! Invisible and reordering Unicode (a right-to-left override, zero-width characters, the byte
//! order mark) from files the tool reads never reaches a terminal or a plugin line as itself:
//! it would make one name look like another.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use common::bin;

const RLO: char = '\u{202e}';
const ZWSP: char = '\u{200b}';
const BOM: char = '\u{feff}';

fn hidden_characters(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c != '\n' && postgrey_advisor::escape::is_hidden(c))
        .collect()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A summary whose group names were crafted: the plugin shows them with `_` in place of each
/// hidden character, on its first line and in its long output.
#[test]
fn check_shows_no_hidden_characters_from_a_crafted_summary() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!(
            "Nov 21 10:00:{i:02} mx1 postgrey[42]: action=greylist, reason=new, \
             client_name=out.mx.sender.example, client_address=192.0.2.{}, \
             sender=news@sender.example, recipient=user{i}@example.org\n",
            i + 1
        ));
    }
    fs::write(&log, text).unwrap();
    let state = dir.path().join("state.json");
    bin()
        .env("TZ", "UTC")
        .args(["run", "--year", "2026", "--file"])
        .arg(&log)
        .arg("--state")
        .arg(&state)
        .args([
            "--whitelist-clients",
            "/dev/null",
            "--ignore-file",
            "/dev/null",
        ])
        .args([
            "--initial-since",
            "@0",
            "--window",
            "100000d",
            "--keep",
            "100000d",
        ])
        .args(["--format", "counts"])
        .assert()
        .success();
    let path = dir.path().join("summary.json");
    let mut summary: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let crafted = format!("moc.elgoog{RLO}.sender{ZWSP}.example{BOM}");
    summary["groups"][0]["domain"] = Value::String(crafted);
    fs::write(&path, serde_json::to_vec(&summary).unwrap()).unwrap();

    let output = bin()
        .args(["check", "--summary"])
        .arg(&path)
        .args([
            "--whitelist-clients",
            "/dev/null",
            "--ignore-file",
            "/dev/null",
        ])
        .args(["--window", "100000d", "-v"])
        .output()
        .unwrap();
    let shown = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert_eq!(hidden_characters(&shown), Vec::<char>::new(), "{shown}");
    assert!(
        shown.starts_with(
            "POSTGREY WHITELIST WARNING - 1 unreviewed sender: moc.elgoog_.sender_.example_ "
        ),
        "{shown}"
    );
}

/// `audit` quotes whitelist lines; a hidden character in one is shown as an escape.
#[test]
fn audit_escapes_hidden_characters_in_the_lines_it_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("whitelist_clients");
    fs::write(&list, format!("foo{ZWSP}bar.example\n")).unwrap();
    let output = bin()
        .args(["audit", "--whitelist-clients"])
        .arg(&list)
        .output()
        .unwrap();
    let shown = stdout(&output);
    assert_eq!(hidden_characters(&shown), Vec::<char>::new(), "{shown}");
    assert!(
        shown.starts_with(&format!(
            "{}:1: foo\\u{{200b}}bar.example never matches a host name",
            list.display()
        )),
        "{shown}"
    );
}

/// A report's notes name files; a file name with a right-to-left override is escaped in the
/// table.
#[test]
fn report_notes_escape_hidden_characters_in_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let odd_dir = dir.path().join(format!("etc{RLO}"));
    fs::create_dir(&odd_dir).unwrap();
    let list = odd_dir.join("whitelist_clients");
    fs::write(&list, "example.com extra\n").unwrap();
    let output = bin()
        .env("TZ", "UTC")
        .args(["report", "--year", "2026", "--file"])
        .arg(common::project_file("tests/fixtures/sample/mail.log"))
        .arg("--whitelist-clients")
        .arg(&list)
        .args(["--ignore-file", "/dev/null"])
        .output()
        .unwrap();
    let shown = stdout(&output);
    assert!(output.status.success(), "{shown}");
    assert_eq!(hidden_characters(&shown), Vec::<char>::new(), "{shown}");
    let escaped = Path::new(&dir.path().join("etc\\u{202e}")).join("whitelist_clients");
    assert!(
        shown.contains(&format!("Note: whitelist {}:1:", escaped.display())),
        "{shown}"
    );
}
