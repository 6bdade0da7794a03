//! A private `systemd-journald` namespace per test, and ways to write into it as journald's
//! real clients do.
//!
//! `systemd-journald NS` serves the namespace `NS`: sockets in `/run/systemd/journal.NS/`
//! (`stdout`, `socket`, `dev-log`, `io.systemd.journal`), files in
//! `/run/log/journal/<machine-id>.NS/`. It reads its configuration only from
//! `journald@NS.conf` or a `journald@NS.conf.d/` drop-in; the drop-in here turns off rate
//! limiting and sets `MaxRetentionSec` above 30 s, without which an idle namespaced journald
//! exits after 30 s. It is ten years rather than a day: under a shifted clock (CI runs the
//! suite again under `faketime`) journald's vacuum at rotation judges an archived file older
//! than a day and deletes it, although its entries were written a moment ago.
//!
//! Trusted fields come from the kernel, as on a real system: `_PID`/`_UID` are the credentials
//! of the process that connected, and `_SYSTEMD_UNIT` comes from its cgroup — for a process in
//! the root cgroup (no systemd as PID 1) journald takes the unit named in the stdout stream
//! header instead. Children that write as a unit therefore connect the socket themselves after
//! fork (so `_PID` is theirs) and first move to the root cgroup when the test runs inside a
//! systemd unit or session.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{JournalEntry, journal_dir_entries, journal_files_in, require_root, run_ok, wait_for};

const JOURNALD: &str = "/lib/systemd/systemd-journald";
const NAMESPACE_PREFIX: &str = "pgadv-";

/// Syslog priority PID 1 puts in a service's stream header: `SyslogFacility=daemon`,
/// `SyslogLevel=info` (3 << 3 | 6).
const DAEMON_INFO: u8 = 30;

/// A running `systemd-journald` for a namespace of its own; stopped, and its sockets,
/// configuration and journal files removed, on drop.
pub struct Journald {
    namespace: String,
    child: Option<Child>,
    conf_dir: PathBuf,
    socket_dir: PathBuf,
    journal_dir: PathBuf,
    output: tempfile::NamedTempFile,
}

impl Journald {
    /// Starts journald for a new namespace `pgadv-<pid>-<n>` with volatile storage and waits
    /// until its sockets and journal file exist.
    pub fn start() -> Self {
        Self::start_with_config("")
    }

    /// Like [`Journald::start`], with `extra` appended to the `[Journal]` section of its
    /// drop-in (for instance `"RuntimeMaxFileSize=1M\n"`).
    pub fn start_with_config(extra: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        require_root();
        let machine_id = machine_id();
        remove_stale_namespaces(&machine_id);
        let namespace = format!(
            "{NAMESPACE_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let paths = NamespacePaths::new(&namespace, &machine_id);
        paths.remove();
        fs::create_dir_all(&paths.conf_dir).expect("create journald drop-in directory");
        fs::write(
            paths.conf_dir.join("test.conf"),
            format!(
                "[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nMaxRetentionSec=3650d\n{extra}"
            ),
        )
        .expect("write journald drop-in");

        let output = tempfile::NamedTempFile::new().expect("journald output file");
        let mut cmd = Command::new(JOURNALD);
        cmd.arg(&namespace)
            .stdin(Stdio::null())
            .stdout(output.reopen().expect("reopen journald output"))
            .stderr(output.reopen().expect("reopen journald output"));
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {JOURNALD}: {e}"));
        let mut journald = Journald {
            namespace,
            child: Some(child),
            conf_dir: paths.conf_dir,
            socket_dir: paths.socket_dir,
            journal_dir: paths.journal_dir,
            output,
        };
        wait_for(
            &format!("journald {} to listen", journald.namespace),
            || {
                journald.assert_running();
                let ready = ["stdout", "socket", "dev-log", "io.systemd.journal"]
                    .iter()
                    .all(|s| journald.socket_dir.join(s).exists())
                    && journald.journal_dir.join("system.journal").exists();
                ready.then_some(())
            },
        );
        journald
    }

    /// The namespace name, for `journalctl --namespace=`.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `/run/systemd/journal.NS`, the directory of the namespace's sockets.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The stdout stream socket (what PID 1 connects a service's stdout/stderr to).
    pub fn stdout_socket(&self) -> PathBuf {
        self.socket_dir.join("stdout")
    }

    /// The syslog datagram socket (what `/dev/log` is for the default namespace).
    pub fn dev_log_socket(&self) -> PathBuf {
        self.socket_dir.join("dev-log")
    }

    /// The native protocol socket (what `sd_journal_send` writes to).
    pub fn native_socket(&self) -> PathBuf {
        self.socket_dir.join("socket")
    }

    /// `/run/log/journal/<machine-id>.NS`, where the journal files are (for `--journal-dir`).
    pub fn journal_dir(&self) -> &Path {
        &self.journal_dir
    }

    /// The journal files, sorted by name (`system.journal` and archived `system@….journal`).
    pub fn journal_files(&self) -> Vec<PathBuf> {
        journal_files_in(&self.journal_dir)
    }

    /// `journalctl --namespace=NS --sync`: everything journald has received is on disk.
    pub fn sync(&self) {
        self.journalctl(&["--sync"]);
    }

    /// `journalctl --namespace=NS --rotate`: the active file is archived and a new one started.
    pub fn rotate(&self) {
        self.journalctl(&["--rotate"]);
    }

    /// Removes every archived journal file, keeping only the active `system.journal`
    /// (`journalctl -D DIR --vacuum-files=1`). After [`Journald::rotate`] this deletes every
    /// entry written before the rotation, as retention does on a real system.
    pub fn vacuum_archived(&self) {
        let mut cmd = Command::new("journalctl");
        cmd.arg("--directory")
            .arg(&self.journal_dir)
            .arg("--vacuum-files=1");
        run_ok(&mut cmd);
        let left = self.journal_files();
        assert_eq!(
            left,
            vec![self.journal_dir.join("system.journal")],
            "vacuum left archived files"
        );
    }

    /// Syncs, then returns the namespace's entries (optionally filtered by matches such as
    /// `_SYSTEMD_UNIT=postgrey.service`) in journal order.
    pub fn entries(&self, matches: &[&str]) -> Vec<JournalEntry> {
        self.sync();
        journal_dir_entries(&self.journal_dir, matches)
    }

    /// Waits until at least `count` entries match, then returns all matching entries. Lines
    /// written to a stream socket reach the files a little later than the writer finishes, so
    /// tests wait for what they expect and then assert exact values on it.
    pub fn wait_for_entries(&self, matches: &[&str], count: usize) -> Vec<JournalEntry> {
        wait_for(
            &format!(
                "{count} journal entries matching {matches:?} in {}",
                self.namespace
            ),
            || {
                let entries = self.entries(matches);
                (entries.len() >= count).then_some(entries)
            },
        )
    }

    /// Connects `cmd`'s stdout and stderr to this journald the way PID 1 does for a service with
    /// `StandardOutput=journal`: a stream whose header names `identifier` (`SYSLOG_IDENTIFIER`)
    /// and `unit` (`_SYSTEMD_UNIT`), priority info, level prefixes on; `JOURNAL_STREAM` is set
    /// to the stream's device and inode as systemd sets it. The child connects after fork, so
    /// `_PID` and `_UID` are its own. Spawn the command once and drop it afterwards (it holds the
    /// socket until then).
    pub fn attach_as_unit<'c>(
        &self,
        cmd: &'c mut Command,
        identifier: &str,
        unit: &str,
    ) -> &'c mut Command {
        assert!(
            !identifier.contains('\n') && !unit.contains('\n'),
            "stream header fields cannot contain newlines"
        );
        let socket = unix_stream_socket();
        let stat = nix::sys::stat::fstat(&socket).expect("fstat stream socket");
        cmd.env("JOURNAL_STREAM", format!("{}:{}", stat.st_dev, stat.st_ino));
        let address = UnixAddress::new(&self.stdout_socket());
        let header = format!("{identifier}\n{unit}\n{DAEMON_INFO}\n1\n0\n0\n0\n").into_bytes();
        let cgroups = root_cgroup_procs_files();
        // SAFETY: the closure runs between fork and exec and only makes system calls
        // (open/write/close/connect/shutdown/dup2) on memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                move_to_root_cgroup(cgroups);
                address.connect(&socket)?;
                write_all_raw(&socket, &header)?;
                if libc::shutdown(socket.as_raw_fd(), libc::SHUT_RD) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                nix::unistd::dup2_stdout(&socket)?;
                nix::unistd::dup2_stderr(&socket)?;
                Ok(())
            });
        }
        cmd
    }

    /// Writes `text` (one entry per line) as service `unit` with `identifier`, through a real
    /// stdout stream (`cat` connected like a service). Returns when the writer has finished;
    /// use [`Journald::wait_for_entries`] to see the entries.
    pub fn log_as_unit(&self, identifier: &str, unit: &str, text: &str) {
        let mut cmd = Command::new("cat");
        cmd.stdin(Stdio::piped());
        self.attach_as_unit(&mut cmd, identifier, unit);
        let mut child = cmd.spawn().expect("spawn cat as a unit");
        drop(cmd);
        let mut stdin = child.stdin.take().expect("cat stdin");
        stdin.write_all(text.as_bytes()).expect("write to cat");
        drop(stdin);
        let status = child.wait().expect("wait for cat");
        assert!(status.success(), "cat as unit {unit} failed: {status}");
    }

    /// Sends `message` with tag `tag` to the namespace's `dev-log` socket with util-linux
    /// `logger`, as user and group `uid` (via `setpriv`, all supplementary groups dropped): what
    /// any local user can do to forge a `postgrey` line. journald records `_UID=uid`,
    /// `_TRANSPORT=syslog` and no `_SYSTEMD_UNIT`.
    pub fn log_as_user(&self, uid: u32, tag: &str, message: &str) {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .args([
                "--clear-groups",
                "--",
                "logger",
                "--socket-errors=on",
                "--socket",
            ])
            .arg(self.dev_log_socket())
            .args(["--tag", tag, "--"])
            .arg(message);
        let cgroups = root_cgroup_procs_files();
        // SAFETY: only open/write/close between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                move_to_root_cgroup(cgroups);
                Ok(())
            });
        }
        run_ok(&mut cmd);
    }

    /// A command that runs `program` in a private mount namespace where this journald's socket
    /// directory is bind-mounted onto `/run/systemd/journal`, so `sd_journal_send` and
    /// `sd_journal_print` (which always use `/run/systemd/journal/socket`) log into this
    /// namespace. Add the program's arguments with `.arg()`/`.args()`. The host's mounts are not
    /// touched (`/run/systemd/journal` is created empty if it does not exist).
    pub fn command_with_journal_socket(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-ec",
            "dir=$1; shift; mkdir -p /run/systemd/journal; \
             mount --bind \"$dir\" /run/systemd/journal; exec \"$@\"",
            "sh",
        ])
        .arg(&self.socket_dir)
        .arg(program.as_ref());
        cmd
    }

    /// Stops journald (SIGTERM, then waits), keeping its journal files until drop. After this
    /// only reading the files (`journal_dir`) works, not `sync` or writing.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, Signal::SIGTERM);
        }
    }

    /// Panics with journald's own output when it is no longer running.
    fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let log = fs::read_to_string(self.output.path()).unwrap_or_default();
            panic!("journald for {} exited ({status}):\n{log}", self.namespace);
        }
    }

    fn journalctl(&self, args: &[&str]) {
        let mut cmd = Command::new("journalctl");
        cmd.arg(format!("--namespace={}", self.namespace))
            .args(args);
        run_ok(&mut cmd);
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        self.stop();
        for dir in [&self.socket_dir, &self.conf_dir, &self.journal_dir] {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Sends `signal`, waits up to a minute, then kills. Never panics (used from `Drop`).
pub(crate) fn stop_child(child: &mut Child, signal: Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
    let deadline = Instant::now() + super::WAIT_LIMIT;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

struct NamespacePaths {
    conf_dir: PathBuf,
    socket_dir: PathBuf,
    journal_dir: PathBuf,
}

impl NamespacePaths {
    fn new(namespace: &str, machine_id: &str) -> Self {
        NamespacePaths {
            conf_dir: PathBuf::from(format!("/run/systemd/journald@{namespace}.conf.d")),
            socket_dir: PathBuf::from(format!("/run/systemd/journal.{namespace}")),
            journal_dir: PathBuf::from(format!("/run/log/journal/{machine_id}.{namespace}")),
        }
    }

    fn remove(&self) {
        for dir in [&self.conf_dir, &self.socket_dir, &self.journal_dir] {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// `/etc/machine-id`, created with `systemd-machine-id-setup` when missing (journald needs it).
fn machine_id() -> String {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let read = || {
            fs::read_to_string("/etc/machine-id")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        if read().is_empty() {
            run_ok(&mut Command::new("systemd-machine-id-setup"));
        }
        let id = read();
        assert_eq!(id.len(), 32, "/etc/machine-id is not a machine ID: {id:?}");
        id
    })
    .clone()
}

/// Removes the files of namespaces left behind by test processes that no longer exist
/// (killed before their `Drop` ran). Their journald got SIGTERM when the test died.
fn remove_stale_namespaces(machine_id: &str) {
    let Ok(entries) = fs::read_dir("/run/systemd") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(namespace) = name
            .to_str()
            .and_then(|n| n.strip_prefix("journald@"))
            .and_then(|n| n.strip_suffix(".conf.d"))
        else {
            continue;
        };
        let Some(pid) = namespace
            .strip_prefix(NAMESPACE_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            NamespacePaths::new(namespace, machine_id).remove();
        }
    }
}

/// A new, unconnected `AF_UNIX` stream socket (close-on-exec).
fn unix_stream_socket() -> OwnedFd {
    // SAFETY: plain system call; the result is checked before it is owned.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(
        fd >= 0,
        "socket(AF_UNIX): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is a fresh descriptor nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A `sockaddr_un`, built before fork so that connecting in the child allocates nothing.
#[derive(Clone, Copy)]
struct UnixAddress {
    addr: libc::sockaddr_un,
    len: libc::socklen_t,
}

impl UnixAddress {
    fn new(path: &Path) -> Self {
        // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_bytes();
        assert!(
            bytes.len() < addr.sun_path.len(),
            "socket path too long: {}",
            path.display()
        );
        for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
            *dst = src as libc::c_char;
        }
        let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
        UnixAddress {
            addr,
            len: len as libc::socklen_t,
        }
    }

    fn connect(&self, socket: &OwnedFd) -> std::io::Result<()> {
        // SAFETY: addr/len describe a valid sockaddr_un owned by self.
        let rc = unsafe {
            libc::connect(
                socket.as_raw_fd(),
                (&raw const self.addr).cast::<libc::sockaddr>(),
                self.len,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

fn write_all_raw(socket: &OwnedFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(socket, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The `cgroup.procs` files that move a process to the root cgroup, for each hierarchy in which
/// the test process is not at the root already (empty on hosts without systemd as PID 1).
fn root_cgroup_procs_files() -> &'static [CString] {
    static FILES: OnceLock<Vec<CString>> = OnceLock::new();
    FILES.get_or_init(|| {
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut files = Vec::new();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if path == "/" {
                continue;
            }
            let file = match controllers {
                "" if Path::new("/sys/fs/cgroup/cgroup.procs").exists() => {
                    "/sys/fs/cgroup/cgroup.procs"
                }
                "" => "/sys/fs/cgroup/unified/cgroup.procs",
                "name=systemd" => "/sys/fs/cgroup/systemd/cgroup.procs",
                _ => continue,
            };
            files.push(CString::new(file).expect("no NUL in a constant"));
        }
        files
    })
}

/// Best effort, between fork and exec: journald falls back to the stream header's unit only for
/// processes in the root cgroup.
fn move_to_root_cgroup(files: &[CString]) {
    for file in files {
        // SAFETY: open/write/close are async-signal-safe; file is a valid C string.
        unsafe {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                let _ = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
    }
}
