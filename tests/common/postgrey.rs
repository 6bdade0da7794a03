//! A real `/usr/sbin/postgrey` (Debian's postgrey 1.37) logging into a test's journald as
//! `postgrey.service`, and a client for the Postfix policy delegation protocol.
//!
//! Postgrey counts whole seconds: a retry passes only when more than `--delay` seconds have gone
//! by since the first attempt, so tests sleep a little more than `delay + 1` seconds between a
//! first attempt and the retry that should pass.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User, chown};

use super::journald::{Journald, stop_child};
use super::{opt_path, wait_for, world_readable_tempdir};

const POSTGREY: &str = "/usr/sbin/postgrey";

/// The line postgrey logs when SIGHUP makes it reread its whitelists.
pub const RELOAD_MESSAGE: &str = "HUP received: reloading whitelists...";

/// Postgrey's reply when it greylists, with its default `--greylist-text` (and the `4.2.0`
/// status it prepends when Postfix sends `etrn_domain`, as Postfix ≥ 2.3 always does), for a
/// recipient in `recipient_domain`.
pub fn greylist_reply(recipient_domain: &str) -> String {
    format!(
        "action=DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/{recipient_domain}.html"
    )
}

/// Postgrey's reply when a client or recipient whitelist matches, or a triplet passed before.
pub const DUNNO_REPLY: &str = "action=DUNNO";

/// How a reply to a retry that passes after the delay begins (postgrey adds the seconds, its
/// host name and the date).
pub const PASS_AFTER_DELAY_PREFIX: &str = "action=PREPEND X-Greylist: delayed ";

/// Options for [`Postgrey`]; start with [`Postgrey::builder`].
#[derive(Clone, Debug)]
pub struct PostgreyBuilder {
    delay: u32,
    whitelist_clients: Vec<PathBuf>,
    lookup_by_host: bool,
    identifier: String,
    unit: String,
    extra_args: Vec<OsString>,
}

impl PostgreyBuilder {
    /// `--delay=SECONDS` (default 2).
    pub fn delay(mut self, seconds: u32) -> Self {
        self.delay = seconds;
        self
    }

    /// `--whitelist-clients=FILE`, repeatable; replaces postgrey's default lists, as in postgrey.
    /// The file must be readable by user `postgrey` (see
    /// [`world_readable_tempdir`](super::world_readable_tempdir)).
    pub fn whitelist_clients(mut self, file: impl Into<PathBuf>) -> Self {
        self.whitelist_clients.push(file.into());
        self
    }

    /// `--lookup-by-host` instead of the default `--lookup-by-subnet`.
    pub fn lookup_by_host(mut self) -> Self {
        self.lookup_by_host = true;
        self
    }

    /// The unit journald records (`_SYSTEMD_UNIT`, default `postgrey.service`).
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit = unit.to_owned();
        self
    }

    /// The stream's `SYSLOG_IDENTIFIER` (default `postgrey`).
    pub fn identifier(mut self, identifier: &str) -> Self {
        self.identifier = identifier.to_owned();
        self
    }

    /// Any other postgrey option, e.g. `--greylist-text=…` or `--auto-whitelist-clients=0`.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Starts postgrey on a free loopback port with its stdout/stderr connected to `journald`
    /// as the unit, and waits until it accepts connections.
    pub fn start(self, journald: &Journald) -> Postgrey {
        let dir = world_readable_tempdir();
        let dbdir = dir.path().join("db");
        std::fs::create_dir(&dbdir).expect("create postgrey dbdir");
        let user = User::from_name("postgrey")
            .expect("look up user postgrey")
            .expect("user postgrey exists (package postgrey)");
        chown(&dbdir, Some(user.uid), Some(user.gid)).expect("chown dbdir to postgrey");

        // Another test may take the port between probing it and postgrey binding it; postgrey
        // then exits at once and the next attempt uses another port.
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(POSTGREY);
            cmd.arg(format!("--inet=127.0.0.1:{port}"))
                .arg(opt_path("--dbdir=", &dbdir))
                .arg(format!("--delay={}", self.delay))
                .arg(if self.lookup_by_host {
                    "--lookup-by-host"
                } else {
                    "--lookup-by-subnet"
                });
            for file in &self.whitelist_clients {
                cmd.arg(opt_path("--whitelist-clients=", file));
            }
            cmd.args(&self.extra_args).stdin(Stdio::null());
            journald.attach_as_unit(&mut cmd, &self.identifier, &self.unit);
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {POSTGREY}: {e}"));
            drop(cmd);
            let listening = wait_for(&format!("postgrey to listen on port {port}"), || {
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(Err(status));
                }
                TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                    .ok()
                    .map(|_| Ok(()))
            });
            match listening {
                Ok(()) => {
                    return Postgrey {
                        child: Some(child),
                        port,
                        unit: self.unit,
                        dir,
                        dbdir,
                        next_instance: AtomicU64::new(1),
                    };
                }
                Err(status) => {
                    let pid = child.id();
                    let said: Vec<String> = journald
                        .entries(&[&format!("_PID={pid}")])
                        .iter()
                        .filter_map(|e| e.message())
                        .collect();
                    failures.push(format!("port {port}: {status}: {}", said.join(" | ")));
                }
            }
        }
        panic!("postgrey did not start:\n{}", failures.join("\n"));
    }
}

/// A running postgrey; stopped (SIGTERM) on drop.
pub struct Postgrey {
    child: Option<Child>,
    port: u16,
    unit: String,
    dir: tempfile::TempDir,
    dbdir: PathBuf,
    next_instance: AtomicU64,
}

impl Postgrey {
    /// Options: delay 2 s, lookup by subnet, postgrey's default whitelists, unit
    /// `postgrey.service`, identifier `postgrey`.
    pub fn builder() -> PostgreyBuilder {
        PostgreyBuilder {
            delay: 2,
            whitelist_clients: Vec::new(),
            lookup_by_host: false,
            identifier: "postgrey".to_owned(),
            unit: "postgrey.service".to_owned(),
            extra_args: Vec::new(),
        }
    }

    /// Starts postgrey with the default options.
    pub fn start(journald: &Journald) -> Self {
        Self::builder().start(journald)
    }

    /// The loopback port postgrey listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Postgrey's process ID (`_PID` of its journal entries).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("postgrey was stopped")
    }

    /// The unit its entries carry.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// Its database directory.
    pub fn dbdir(&self) -> &Path {
        &self.dbdir
    }

    /// A world-readable directory that lives as long as this postgrey (for whitelist files).
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Asks as Postfix does at RCPT time and returns postgrey's reply line, e.g.
    /// `action=DEFER_IF_PERMIT Greylisted, see …`, `action=PREPEND X-Greylist: delayed …` or
    /// `action=DUNNO`.
    pub fn request(
        &self,
        client_name: &str,
        client_address: &str,
        sender: &str,
        recipient: &str,
    ) -> String {
        self.request_attrs(&[
            ("client_name", client_name),
            ("client_address", client_address),
            ("sender", sender),
            ("recipient", recipient),
        ])
    }

    /// Sends one policy request: the attributes Postfix 3.7 sends at RCPT time, in its order,
    /// with `attrs` replacing or adding to them (`reverse_client_name` and `helo_name` default
    /// to `client_name`; `instance` is unique per request). Returns the reply without the
    /// terminating empty line (lines joined with `\n`).
    pub fn request_attrs(&self, attrs: &[(&str, &str)]) -> String {
        let given = |name: &str| attrs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let client_name = given("client_name").unwrap_or("unknown");
        let instance = format!(
            "{:x}.{:x}.{:x}.0",
            std::process::id(),
            self.port,
            self.next_instance.fetch_add(1, Ordering::Relaxed)
        );
        let defaults: [(&str, &str); 31] = [
            ("request", "smtpd_access_policy"),
            ("protocol_state", "RCPT"),
            ("protocol_name", "ESMTP"),
            ("client_address", "192.0.2.1"),
            ("client_name", client_name),
            ("client_port", "44123"),
            ("reverse_client_name", client_name),
            ("server_address", "127.0.0.1"),
            ("server_port", "25"),
            ("helo_name", client_name),
            ("sender", ""),
            ("recipient", ""),
            ("recipient_count", "0"),
            ("queue_id", ""),
            ("instance", &instance),
            ("size", "0"),
            ("etrn_domain", ""),
            ("stress", ""),
            ("sasl_method", ""),
            ("sasl_username", ""),
            ("sasl_sender", ""),
            ("ccert_subject", ""),
            ("ccert_issuer", ""),
            ("ccert_fingerprint", ""),
            ("ccert_pubkey_fingerprint", ""),
            ("encryption_protocol", "TLSv1.3"),
            ("encryption_cipher", "TLS_AES_256_GCM_SHA384"),
            ("encryption_keysize", "256"),
            ("policy_context", ""),
            ("compatibility_level", "3.6"),
            ("mail_version", "3.7.11"),
        ];
        let mut request = String::new();
        for (name, default) in defaults {
            let value = given(name).unwrap_or(default);
            request.push_str(&format!("{name}={value}\n"));
        }
        for (name, value) in attrs {
            if !defaults.iter().any(|(n, _)| n == name) {
                request.push_str(&format!("{name}={value}\n"));
            }
        }
        request.push('\n');
        self.raw_request(request.as_bytes())
    }

    /// Sends raw bytes (a whole request including its empty line) and reads the reply up to the
    /// empty line.
    pub fn raw_request(&self, request: &[u8]) -> String {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect(address).expect("connect to postgrey");
        stream
            .set_read_timeout(Some(super::WAIT_LIMIT))
            .expect("set read timeout");
        stream.write_all(request).expect("send policy request");
        let mut reader = BufReader::new(stream);
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).expect("read postgrey reply");
            assert!(
                n > 0,
                "postgrey closed the connection; reply so far: {lines:?}"
            );
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                return lines.join("\n");
            }
            lines.push(line.to_owned());
        }
    }

    /// Sends SIGHUP (postgrey rereads its whitelists) and waits until postgrey has logged
    /// [`RELOAD_MESSAGE`] into `journald`; requests sent afterwards see the new lists (postgrey
    /// handles the signal before it serves the next request).
    pub fn reload(&self, journald: &Journald) {
        let matches = [
            format!("_PID={}", self.pid()),
            format!("MESSAGE={RELOAD_MESSAGE}"),
        ];
        let matches: Vec<&str> = matches.iter().map(String::as_str).collect();
        let before = journald.entries(&matches).len();
        let pid = i32::try_from(self.pid()).expect("pid fits i32");
        kill(Pid::from_raw(pid), Signal::SIGHUP).expect("send SIGHUP to postgrey");
        journald.wait_for_entries(&matches, before + 1);
    }

    /// Stops postgrey (SIGTERM, then waits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, Signal::SIGTERM);
        }
    }
}

impl Drop for Postgrey {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Sleeps long enough that postgrey, counting whole seconds, sees more than `delay` seconds
/// between a first attempt made before this call and a retry made after it.
pub fn sleep_past_delay(delay: u32) {
    std::thread::sleep(Duration::from_millis(u64::from(delay) * 1000 + 1200));
}
