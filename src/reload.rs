//! Making postgrey read its whitelists again after `accept`.
//!
//! postgrey rereads `whitelist_clients` on SIGHUP (it logs `HUP received: reloading
//! whitelists...`). Debian 12's `postgrey.service` has no `ExecReload=`, so `systemctl reload
//! postgrey` fails ("Job type reload is not applicable"); what works is sending the signal to
//! the unit's main process through systemd. A postgrey started otherwise (Debian's init script,
//! `--daemonize`) writes its pid to `--pidfile`, and gets the signal there — after checking that
//! the pid still is postgrey's, since a stale pid file may name any process.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::postgrey::Settings;

const UNIT: &str = "postgrey.service";
/// The pid file Debian's init script passes to postgrey.
const DEBIAN_PIDFILE: &str = "/var/run/postgrey.pid";

/// The command that reloads postgrey under Debian 12's unit, for hints.
pub const SYSTEMD_COMMAND: &str = "systemctl kill -s HUP --kill-whom=main postgrey.service";

/// Sends postgrey SIGHUP, through systemd when it runs as its unit, else to the pid in its pid
/// file; returns what was done, in words.
pub fn reload(settings: &Settings) -> anyhow::Result<String> {
    if runs_as_unit() {
        let status = Command::new("systemctl")
            .args(["kill", "-s", "HUP", "--kill-whom=main", UNIT])
            .status()
            .context("cannot run systemctl")?;
        if !status.success() {
            bail!("`{SYSTEMD_COMMAND}` failed ({status})");
        }
        return Ok(format!("sent SIGHUP to {UNIT} ({SYSTEMD_COMMAND})"));
    }
    let pidfile = settings
        .pidfile
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEBIAN_PIDFILE));
    let pid = postgrey_pid(&pidfile)?;
    kill(Pid::from_raw(pid), Signal::SIGHUP)
        .with_context(|| format!("cannot send SIGHUP to postgrey (pid {pid})"))?;
    Ok(format!(
        "sent SIGHUP to postgrey (pid {pid}, from {})",
        pidfile.display()
    ))
}

/// Whether systemd runs here and `postgrey.service` is active.
fn runs_as_unit() -> bool {
    Path::new("/run/systemd/system").is_dir()
        && Command::new("systemctl")
            .args(["is-active", "--quiet", UNIT])
            .status()
            .is_ok_and(|status| status.success())
}

/// The pid in `pidfile`, if it is a running postgrey's.
fn postgrey_pid(pidfile: &Path) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(pidfile).with_context(|| {
        format!(
            "cannot read postgrey's pid file {} (postgrey.service is not active either; \
             give the options file that names its --pidfile with --postgrey-config)",
            pidfile.display()
        )
    })?;
    let pid: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|&pid| pid > 1)
        .with_context(|| format!("{}: {:?} is not a pid", pidfile.display(), text.trim()))?;
    // postgrey rewrites its command line to `postgrey --inet …` once started; before that,
    // Perl runs it as `perl -T /usr/sbin/postgrey …`. A word that merely contains "postgrey"
    // (a path such as /srv/postgrey-advisor/…) does not count.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).with_context(|| {
        format!(
            "{} names pid {pid}, which is not running (a stale pid file?)",
            pidfile.display()
        )
    })?;
    let is_postgrey = cmdline
        .split(|&b| b == 0)
        .flat_map(|arg| arg.split(|&b| b == b' ').take(1))
        .any(|word| {
            Path::new(std::ffi::OsStr::from_bytes(word)).file_name() == Some("postgrey".as_ref())
        });
    if !is_postgrey {
        bail!(
            "{} names pid {pid}, which is not postgrey (a stale pid file?)",
            pidfile.display()
        );
    }
    Ok(pid)
}
