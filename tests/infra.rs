//! Proves the test infrastructure in `tests/common` against the real programs, without the
//! project's binary: journal files built from export text, a private journald namespace, real
//! postgrey logging as `postgrey.service`, forged lines from an ordinary user, and a private
//! Postfix delivering mail.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::journal_files::journal_file_entries;
use common::postfix::{SMTP_ADDRESS, split_mbox};
use common::postgrey::{DUNNO_REPLY, PASS_AFTER_DELAY_PREFIX, greylist_reply, sleep_past_delay};
use common::{ExportEntry, JournalFiles, Journald, Postfix, Postgrey, world_readable_tempdir};

const GREYLIST_NEW: &str = "action=greylist, reason=new, client_name=mail.example.net, \
     client_address=198.51.100.20, sender=alice@example.net, recipient=bob@example.org";

#[test]
fn export_entries_become_a_journal_file_with_exactly_those_entries() {
    let binary_message: &[u8] = b"line one\nline two \xff\x01 end";
    let files = JournalFiles::with_entries(&[
        ExportEntry::postgrey("2026-11-20T10:00:00Z", GREYLIST_NEW),
        ExportEntry::forged("2026-11-20T10:00:01.5Z", 1000, "action=greylist, forged"),
        ExportEntry::postgrey("2026-11-20T10:00:02Z", binary_message),
    ]);
    let file = &files.files()[0];
    assert_eq!(file, &files.dir().join("test.journal"));

    let entries = journal_file_entries(file);
    assert_eq!(entries.len(), 3);

    entries[0].assert_fields(&[
        ("MESSAGE", GREYLIST_NEW),
        ("__REALTIME_TIMESTAMP", "1795168800000000"),
        ("_UID", "0"),
        ("_SYSTEMD_UNIT", "postgrey.service"),
        ("SYSLOG_IDENTIFIER", "postgrey"),
        ("_TRANSPORT", "stdout"),
        ("_BOOT_ID", common::export::DEFAULT_BOOT_ID),
    ]);

    entries[1].assert_fields(&[
        ("MESSAGE", "action=greylist, forged"),
        ("__REALTIME_TIMESTAMP", "1795168801500000"),
        ("_UID", "1000"),
        ("SYSLOG_IDENTIFIER", "postgrey"),
    ]);
    assert!(!entries[1].has("_SYSTEMD_UNIT"));

    assert_eq!(entries[2].bytes("MESSAGE").as_deref(), Some(binary_message));

    // The same through the directory, filtered as the product filters.
    let forged = files.entries(&["_UID=1000"]);
    assert_eq!(forged.len(), 1);
    assert_eq!(
        forged[0].message().as_deref(),
        Some("action=greylist, forged")
    );
}

#[test]
fn journal_files_keep_several_files_in_one_directory() {
    let files = JournalFiles::new();
    let a = files.add(
        "mx1",
        &[ExportEntry::postgrey("2026-11-20T10:00:00Z", "first")],
    );
    let b = files.add(
        "mx2.journal",
        &[
            ExportEntry::postgrey("2026-11-20T09:00:00Z", "earlier, other host")
                .set("_HOSTNAME", "mx2"),
        ],
    );
    assert_eq!(files.files(), vec![a, b]);
    let messages: Vec<String> = files
        .entries(&[])
        .iter()
        .filter_map(|e| e.message())
        .collect();
    assert_eq!(messages, ["earlier, other host", "first"]);
}

#[test]
fn a_unit_stream_carries_the_unit_the_pid_and_journal_stream() {
    let journald = Journald::start();
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        "echo \"env $JOURNAL_STREAM\"; stat -L -c 'fd1 %d:%i' /proc/self/fd/1; echo '<4>warned'",
    ]);
    journald.attach_as_unit(&mut cmd, "infra-test", "infra-test.service");
    let mut child = cmd.spawn().expect("spawn sh as a unit");
    drop(cmd);
    let pid = child.id().to_string();
    assert!(child.wait().expect("wait for sh").success());

    let entries = journald.wait_for_entries(&["_SYSTEMD_UNIT=infra-test.service"], 3);
    assert_eq!(entries.len(), 3);
    let messages: Vec<String> = entries.iter().filter_map(|e| e.message()).collect();
    let env = messages[0].strip_prefix("env ").expect("env line");
    let fd1 = messages[1].strip_prefix("fd1 ").expect("fd1 line");
    assert_eq!(env, fd1, "JOURNAL_STREAM names the stream on stdout");
    assert_eq!(messages[2], "warned");
    for entry in &entries {
        entry.assert_fields(&[
            ("SYSLOG_IDENTIFIER", "infra-test"),
            ("_TRANSPORT", "stdout"),
            ("_UID", "0"),
            ("SYSLOG_FACILITY", "3"),
            ("_NAMESPACE", journald.namespace()),
        ]);
    }
    // journald attributes each line to the process that wrote it (credentials passed with
    // the data): sh wrote the first and last line, stat the second.
    let pids: Vec<String> = entries.iter().filter_map(|e| e.get("_PID")).collect();
    assert_eq!(pids.len(), 3);
    assert_eq!(pids[0], pid);
    assert_eq!(pids[2], pid);
    assert_ne!(pids[1], pid);
    let priorities: Vec<String> = entries.iter().filter_map(|e| e.get("PRIORITY")).collect();
    assert_eq!(priorities, ["6", "6", "4"]);
}

#[test]
fn a_forged_logger_line_has_the_users_uid_and_no_unit() {
    let journald = Journald::start();
    journald.log_as_unit("postgrey", "postgrey.service", "genuine line\n");
    journald.log_as_user(65534, "postgrey", "action=greylist, reason=new, forged");

    let forged = journald.wait_for_entries(&["_UID=65534"], 1);
    assert_eq!(forged.len(), 1);
    forged[0].assert_fields(&[
        ("MESSAGE", "action=greylist, reason=new, forged"),
        ("SYSLOG_IDENTIFIER", "postgrey"),
        ("_TRANSPORT", "syslog"),
        ("_GID", "65534"),
    ]);
    assert!(!forged[0].has("_SYSTEMD_UNIT"));

    let genuine = journald.wait_for_entries(&["_SYSTEMD_UNIT=postgrey.service"], 1);
    assert_eq!(genuine.len(), 1);
    genuine[0].assert_fields(&[("MESSAGE", "genuine line"), ("_UID", "0")]);
}

#[test]
fn real_postgrey_greylists_passes_after_the_delay_and_rereads_its_whitelist() {
    let journald = Journald::start();
    let lists = world_readable_tempdir();
    let whitelist = lists.path().join("whitelist_clients");
    std::fs::write(&whitelist, "# test list\n").expect("write whitelist");
    let postgrey = Postgrey::builder()
        .delay(1)
        .whitelist_clients(&whitelist)
        .start(&journald);

    let first = postgrey.request(
        "mail.example.net",
        "198.51.100.20",
        "alice@example.net",
        "bob@example.org",
    );
    assert_eq!(first, greylist_reply("example.org"));

    let logged = journald.wait_for_entries(&[&format!("MESSAGE={GREYLIST_NEW}")], 1);
    assert_eq!(logged.len(), 1);
    logged[0].assert_fields(&[
        ("_SYSTEMD_UNIT", "postgrey.service"),
        ("SYSLOG_IDENTIFIER", "postgrey"),
        ("_TRANSPORT", "stdout"),
        ("_PID", &postgrey.pid().to_string()),
        ("_UID", "0"),
    ]);

    sleep_past_delay(1);
    let retry = postgrey.request(
        "mail.example.net",
        "198.51.100.20",
        "alice@example.net",
        "bob@example.org",
    );
    assert!(retry.starts_with(PASS_AFTER_DELAY_PREFIX), "{retry}");
    let passed = journald.wait_for_entries(
        &[
            "_SYSTEMD_UNIT=postgrey.service",
            "SYSLOG_IDENTIFIER=postgrey",
        ],
        1,
    );
    assert!(
        passed.iter().filter_map(|e| e.message()).any(|m| m
            .starts_with("action=pass, reason=triplet found, delay=")
            && m.ends_with(
                ", client_name=mail.example.net, client_address=198.51.100.20, \
             sender=alice@example.net, recipient=bob@example.org"
            )),
        "{passed:?}"
    );

    let trusted = |address: &str| {
        postgrey.request(
            "mx2.trusted.example",
            address,
            "news@trusted.example",
            "bob@example.org",
        )
    };
    assert_eq!(trusted("203.0.113.9"), greylist_reply("example.org"));
    std::fs::write(&whitelist, "# test list\ntrusted.example\n").expect("extend whitelist");
    postgrey.reload(&journald);
    assert_eq!(trusted("203.0.114.9"), DUNNO_REPLY);
    let whitelisted = journald.wait_for_entries(
        &[
            "MESSAGE=action=pass, reason=client whitelist, client_name=mx2.trusted.example, \
           client_address=203.0.114.9, sender=news@trusted.example, recipient=bob@example.org",
        ],
        1,
    );
    assert_eq!(whitelisted.len(), 1);
}

#[test]
fn sd_journal_send_reaches_the_namespace_through_the_bind_mounted_socket() {
    let journald = Journald::start();
    let mut cmd = journald.command_with_journal_socket("logger");
    cmd.arg("--journald").stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn logger --journald");
    child
        .stdin
        .take()
        .expect("logger stdin")
        .write_all(b"MESSAGE=structured entry\nPGADVISOR_TEST=42\nSYSLOG_IDENTIFIER=infra\n")
        .expect("write entry");
    assert!(child.wait().expect("wait for logger").success());

    let entries = journald.wait_for_entries(&["PGADVISOR_TEST=42"], 1);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].message().as_deref(), Some("structured entry"));
    assert_eq!(entries[0].get("_TRANSPORT").as_deref(), Some("journal"));
}

#[test]
fn rotate_and_vacuum_remove_the_entries_written_before() {
    let journald = Journald::start();
    journald.log_as_unit("postgrey", "postgrey.service", "before rotation\n");
    journald.wait_for_entries(&["MESSAGE=before rotation"], 1);
    journald.rotate();
    assert_eq!(journald.journal_files().len(), 2);
    journald.vacuum_archived();
    assert_eq!(
        journald.journal_files(),
        vec![journald.journal_dir().join("system.journal")]
    );
    assert!(journald.entries(&["MESSAGE=before rotation"]).is_empty());

    journald.log_as_unit("postgrey", "postgrey.service", "after rotation\n");
    let after = journald.wait_for_entries(&["_SYSTEMD_UNIT=postgrey.service"], 1);
    let messages: Vec<String> = after.iter().filter_map(|e| e.message()).collect();
    assert_eq!(messages, ["after rotation"]);
}

/// A minimal SMTP client dialog; panics unless every reply has the expected code.
fn smtp_send(from: &str, to: &str, message: &str) {
    let stream = TcpStream::connect(SMTP_ADDRESS).expect("connect to 127.0.0.1:25");
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    let mut expect = |code: &str| {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read SMTP reply");
            assert!(line.starts_with(code), "expected {code}, got {line:?}");
            // "250-..." continues a multi-line reply, "250 ..." ends it.
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    };
    expect("220");
    let mut say = |command: &str, code: &str, writer: &mut TcpStream| {
        writer
            .write_all(format!("{command}\r\n").as_bytes())
            .expect("send SMTP command");
        expect(code);
    };
    say("EHLO test.example", "250", &mut writer);
    say(&format!("MAIL FROM:<{from}>"), "250", &mut writer);
    say(&format!("RCPT TO:<{to}>"), "250", &mut writer);
    say("DATA", "354", &mut writer);
    let mut data = String::new();
    for line in message.lines() {
        // Dot-stuffing: a line starting with "." gets one more.
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    writer.write_all(data.as_bytes()).expect("send message");
    say(".", "250", &mut writer);
    say("QUIT", "221", &mut writer);
}

#[test]
fn postfix_delivers_smtp_and_sendmail_mail_into_the_root_mailbox() {
    let mut postfix = Postfix::start();
    smtp_send(
        "tester@localhost",
        "root",
        "From: tester@localhost\nTo: root\nSubject: infra check\n\nhello root\n",
    );
    let messages = postfix.wait_for_messages("root", 1);
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert!(
        message.starts_with("Return-Path: <tester@localhost>\n"),
        "{message}"
    );
    assert!(
        message.contains("\nDelivered-To: root@localhost\n"),
        "{message}"
    );
    assert!(message.contains("\nSubject: infra check\n"), "{message}");
    assert!(message.ends_with("\n\nhello root\n"), "{message}");

    let (var, config) = postfix.sendmail_env();
    let mut sendmail = Command::new("/usr/sbin/sendmail");
    sendmail
        .env(var, config)
        .args(["-i", "root"])
        .stdin(Stdio::piped());
    let mut child = sendmail.spawn().expect("spawn sendmail");
    child
        .stdin
        .take()
        .expect("sendmail stdin")
        .write_all(b"Subject: via sendmail\n\nsecond\n")
        .expect("write to sendmail");
    assert!(child.wait().expect("wait for sendmail").success());
    let messages = postfix.wait_for_messages("root", 2);
    assert_eq!(messages.len(), 2);
    assert!(
        messages[1].contains("\nSubject: via sendmail\n"),
        "{}",
        messages[1]
    );

    postfix.stop();
    assert!(TcpStream::connect(SMTP_ADDRESS).is_err());
    postfix.start_again();
    assert!(TcpStream::connect(SMTP_ADDRESS).is_ok());
}

#[test]
fn split_mbox_separates_messages_and_keeps_quoted_from_lines() {
    let mbox = "From a@x  Sat Nov 28 01:29:11 2026\nSubject: one\n\nbody\n>From here\n\n\
                From b@x  Sat Nov 28 01:29:12 2026\nSubject: two\n\n>From the body\n\n";
    assert_eq!(
        split_mbox(mbox),
        [
            "Subject: one\n\nbody\n>From here\n",
            "Subject: two\n\n>From the body\n"
        ]
    );
}
