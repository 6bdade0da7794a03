//! A private Postfix (Debian's postfix 3.7) for mail tests: its own configuration, queue, data
//! and mail spool directories in a temporary directory, listening on 127.0.0.1:25 only,
//! delivering only locally (`localhost`, `localhost.localdomain`, and unqualified names such as
//! `root`) into mbox files `SPOOL/<user>`. Nothing in `/etc/postfix` or `/var` is used.
//!
//! Only one Postfix can have port 25, so [`Postfix::start`] first takes an exclusive lock on a
//! file shared by all test processes and holds it until the value is dropped; tests that need
//! mail run one after the other, the rest of the suite in parallel.

use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{User, chown};

use super::{require_root, run_ok, try_wait_for, wait_for, world_readable_tempdir};

/// Where Postfix listens.
pub const SMTP_ADDRESS: (Ipv4Addr, u16) = (Ipv4Addr::LOCALHOST, 25);

/// The services a local-only Postfix needs, none chrooted (Debian's default `master.cf`
/// chroots them into the queue directory, which would need a copy of `/etc` files there).
const MASTER_CF: &str = "\
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

/// A private Postfix; stopped, its files removed and the port-25 lock released on drop.
pub struct Postfix {
    running: bool,
    dir: tempfile::TempDir,
    // Declared last so that it is released after Postfix has stopped.
    _lock: File,
}

impl Postfix {
    /// Waits for the suite-wide Postfix lock, writes a fresh configuration, starts Postfix and
    /// waits until 127.0.0.1:25 accepts connections. Panics when something else listens on
    /// port 25 (another MTA on the machine).
    pub fn start() -> Self {
        require_root();
        let lock_path = std::env::temp_dir().join("postgrey-advisor-tests-postfix.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
        lock.lock()
            .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
        assert!(
            TcpStream::connect(SMTP_ADDRESS).is_err(),
            "something already listens on 127.0.0.1:25 (another MTA?); the mail tests need the port"
        );

        let dir = world_readable_tempdir();
        let root = dir.path();
        for sub in ["etc", "queue", "data", "mail"] {
            fs::create_dir(root.join(sub)).expect("create postfix directory");
        }
        let postfix = User::from_name("postfix")
            .expect("look up user postfix")
            .expect("user postfix exists (package postfix)");
        chown(&root.join("data"), Some(postfix.uid), Some(postfix.gid))
            .expect("chown postfix data directory");
        // Like /var/mail with a sticky bit: local(8) creates each mailbox as its owner.
        fs::set_permissions(root.join("mail"), fs::Permissions::from_mode(0o1777))
            .expect("chmod mail spool");
        let r = root.display();
        let main_cf = format!(
            "compatibility_level = 3.6
queue_directory = {r}/queue
data_directory = {r}/data
mail_spool_directory = {r}/mail
maillog_file = {r}/maillog
maillog_file_prefixes = {r}
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = localhost.localdomain
mydomain = localdomain
myorigin = localhost
mydestination = localhost, localhost.localdomain
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_banner = $myhostname ESMTP
"
        );
        fs::write(root.join("etc/main.cf"), main_cf).expect("write main.cf");
        fs::write(root.join("etc/master.cf"), MASTER_CF).expect("write master.cf");

        let mut server = Postfix {
            running: false,
            dir,
            _lock: lock,
        };
        server.start_again();
        server
    }

    /// Starts Postfix again after [`Postfix::stop`] (queue and mailboxes are kept).
    pub fn start_again(&mut self) {
        assert!(!self.running, "postfix is running already");
        run_ok(self.postfix().arg("start"));
        self.running = true;
        wait_for("postfix to listen on 127.0.0.1:25", || {
            TcpStream::connect(SMTP_ADDRESS).ok().map(|_| ())
        });
    }

    /// Stops Postfix (`postfix stop`) and waits until port 25 refuses connections.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        run_ok(self.postfix().arg("stop"));
        self.running = false;
        wait_for("postfix to close 127.0.0.1:25", || {
            TcpStream::connect(SMTP_ADDRESS).is_err().then_some(())
        });
    }

    /// Changes one `main.cf` setting (`name = value`) and reloads the running Postfix.
    pub fn set(&mut self, setting: &str) {
        run_ok(
            Command::new("postconf")
                .arg("-c")
                .arg(self.config_dir())
                .arg("-e")
                .arg(setting),
        );
        run_ok(self.postfix().arg("reload"));
    }

    /// The configuration directory. `/usr/sbin/sendmail` delivers through this Postfix when run
    /// as root with `MAIL_CONFIG` set to it (see [`Postfix::sendmail_env`]).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// The environment variable that points `/usr/sbin/sendmail` at this Postfix.
    pub fn sendmail_env(&self) -> (&'static str, PathBuf) {
        ("MAIL_CONFIG", self.config_dir())
    }

    /// The mbox file of local user `user`.
    pub fn mailbox_path(&self, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(user)
    }

    /// Postfix's log (`maillog_file`), for failure messages and delivery checks.
    pub fn maillog(&self) -> String {
        fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// The messages in `user`'s mailbox now, oldest first (see [`split_mbox`]).
    pub fn messages(&self, user: &str) -> Vec<String> {
        match fs::read(self.mailbox_path(user)) {
            Ok(bytes) => split_mbox(&String::from_utf8_lossy(&bytes)),
            Err(_) => Vec::new(),
        }
    }

    /// Waits until at least `count` messages have been delivered to `user`'s mailbox (and
    /// logged as delivered, so none is half written), then returns all of them.
    pub fn wait_for_messages(&self, user: &str, count: usize) -> Vec<String> {
        let delivered_line = format!("to=<{user}@");
        try_wait_for(|| {
            let messages = self.messages(user);
            let delivered = self
                .maillog()
                .lines()
                .filter(|l| l.contains(&delivered_line) && l.contains("status=sent"))
                .count();
            (messages.len() >= count && delivered >= messages.len()).then_some(messages)
        })
        .unwrap_or_else(|| {
            panic!(
                "gave up waiting for {count} messages for {user}; postfix log:\n{}",
                self.maillog()
            )
        })
    }

    fn postfix(&self) -> Command {
        let mut cmd = Command::new("postfix");
        cmd.arg("-c").arg(self.config_dir());
        cmd
    }

    /// The temporary directory holding everything of this Postfix.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if self.running {
            let _ = self.postfix().arg("stop").output();
            for _ in 0..1000 {
                if TcpStream::connect(SMTP_ADDRESS).is_err() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// Splits an mbox into its messages: each starts after a `From ` envelope line at the start of
/// the file or after an empty line; the envelope line and the empty line local(8) appends are
/// left out, so each message is the RFC 5322 text as delivered (with `Return-Path`,
/// `Delivered-To` and `Received` added; body lines starting with `From ` appear as `>From `).
pub fn split_mbox(mbox: &str) -> Vec<String> {
    let mut messages: Vec<String> = Vec::new();
    let mut previous_empty = true;
    for line in mbox.split_inclusive('\n') {
        if previous_empty && line.starts_with("From ") {
            messages.push(String::new());
        } else if let Some(current) = messages.last_mut() {
            current.push_str(line);
        }
        previous_empty = line == "\n";
    }
    for message in &mut messages {
        if message.ends_with("\n\n") {
            message.pop();
        }
    }
    messages
}
