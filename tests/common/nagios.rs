//! Throwaway monitoring cores from Debian's packages, each run as the current user from a
//! configuration in a temporary directory and stopped by killing its process group ([`Core`]).
//!
//! [`check_once`] starts nagios4 with a 1 s check interval, waits until every service has been
//! checked once, stops it and returns what `status.dat` recorded; [`verify`] is `nagios4 -v` on
//! the same kind of configuration. tests/check.rs points [`check_once`] at the built binary
//! through [`shipped_commands`]; tests/monitoring_defs.rs runs small shell plugins and also
//! starts icinga2 as a [`Core`].

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::read_project_file;

/// Where the Debian package installs the plugin (a symlink to the binary).
pub const INSTALLED_PLUGIN: &str = "/usr/lib/nagios/plugins/check_postgrey_whitelist";
/// How long a core may take to run its first checks before the test gives up.
const CORE_DEADLINE: Duration = Duration::from_secs(120);

/// Debian's sample objects: templates (generic-service, generic-host), contacts, timeperiods.
const SAMPLE_OBJECTS: [&str; 4] = [
    "/etc/nagios4/objects/commands.cfg",
    "/etc/nagios4/objects/contacts.cfg",
    "/etc/nagios4/objects/timeperiods.cfg",
    "/etc/nagios4/objects/templates.cfg",
];

/// What nagios4 recorded in status.dat for a service after checking it once. `long_output`
/// is as Nagios stores it: lines after the first, joined by a literal `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    pub state: u8,
    pub output: String,
    pub long_output: String,
    pub perfdata: String,
}

/// The shipped Nagios command definitions (monitoring/nagios/postgrey-advisor.cfg) with the
/// plugin at `plugin` instead of its installed path; `plugin` is best a symlink named
/// check_postgrey_whitelist to the built binary.
pub fn shipped_commands(plugin: &Path) -> String {
    let shipped = read_project_file("monitoring/nagios/postgrey-advisor.cfg");
    assert!(shipped.contains(INSTALLED_PLUGIN), "{shipped}");
    shipped.replace(INSTALLED_PLUGIN, &plugin.display().to_string())
}

/// Exit status, stdout and stderr of a finished command, for a failure message.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The current user and group names: the cores drop privileges to these.
pub fn current_user() -> (String, String) {
    let name = |flag: &str| {
        let output = Command::new("id")
            .arg(flag)
            .output()
            .unwrap_or_else(|e| panic!("cannot run id: {e}"));
        assert!(output.status.success(), "id {flag}: {}", describe(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    (name("-un"), name("-gn"))
}

/// A started core; its whole process group is killed when dropped, also when a test fails.
pub struct Core {
    child: Child,
    stop_signal: Signal,
}

impl Core {
    /// Starts `command` in its own process group, stdout and stderr into `log`; dropping the
    /// value sends `stop_signal` to the group, then SIGKILL.
    pub fn start(command: &mut Command, stop_signal: Signal, log: &Path) -> Core {
        let log = fs::File::create(log).unwrap();
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Core { child, stop_signal }
    }

    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        // The group may already be gone; either way nothing of it may stay behind.
        let _ = killpg(group, self.stop_signal);
        let _ = self.child.wait();
        let _ = killpg(group, Signal::SIGKILL);
    }
}

/// Polls `probe` until it returns a value, or fails after [`CORE_DEADLINE`] with `context()`.
pub fn wait_for_core<T>(mut probe: impl FnMut() -> Option<T>, context: impl Fn() -> String) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            started.elapsed() < CORE_DEADLINE,
            "gave up after {CORE_DEADLINE:?}: {}",
            context()
        );
        sleep(Duration::from_millis(100));
    }
}

/// A throwaway nagios.cfg in `dir`: every path inside it, checks as often as possible (the
/// interval unit is one second), nothing but service checks enabled.
fn main_config(dir: &Path, object_files: &[PathBuf]) -> PathBuf {
    let (user, group) = current_user();
    let d = dir.display();
    fs::create_dir_all(dir.join("checkresults")).unwrap();
    fs::write(
        dir.join("resource.cfg"),
        "$USER1$=/usr/lib/nagios/plugins\n",
    )
    .unwrap();
    let mut config = format!(
        "log_file={d}/nagios.log\n\
         resource_file={d}/resource.cfg\n\
         status_file={d}/status.dat\n\
         status_update_interval=1\n\
         object_cache_file={d}/objects.cache\n\
         precached_object_file={d}/objects.precache\n\
         temp_file={d}/nagios.tmp\n\
         temp_path={d}\n\
         lock_file={d}/nagios.lock\n\
         check_result_path={d}/checkresults\n\
         check_result_reaper_frequency=1\n\
         query_socket={d}/nagios.qh\n\
         check_external_commands=0\n\
         interval_length=1\n\
         max_service_check_spread=1\n\
         service_inter_check_delay_method=n\n\
         use_syslog=0\n\
         retain_state_information=0\n\
         execute_host_checks=0\n\
         enable_notifications=0\n\
         enable_flap_detection=0\n\
         check_for_updates=0\n\
         illegal_macro_output_chars=`~$&|'\"<>\n\
         nagios_user={user}\n\
         nagios_group={group}\n"
    );
    for file in object_files {
        config.push_str(&format!("cfg_file={}\n", file.display()));
    }
    let main = dir.join("nagios.cfg");
    fs::write(&main, config).unwrap();
    main
}

/// Host `localhost` (never checked itself) and services "check 0", "check 1", … running
/// `check_commands` in that order.
fn services(check_commands: &[&str]) -> String {
    // No host check: the sample's check-host-alive lives in monitoring-plugins' configs.
    let mut objects = "define host{\n\tuse\tgeneric-host\n\thost_name\tlocalhost\n\
                       \taddress\t127.0.0.1\n\tcheck_period\t24x7\n\tmax_check_attempts\t1\n\
                       \tcontact_groups\tadmins\n\t}\n"
        .to_owned();
    for (index, check_command) in check_commands.iter().enumerate() {
        objects.push_str(&format!(
            "define service{{\n\tuse\tgeneric-service\n\thost_name\tlocalhost\n\
             \tservice_description\tcheck {index}\n\tcheck_command\t{check_command}\n\
             \tmax_check_attempts\t1\n\tcheck_interval\t1\n\tretry_interval\t1\n\t}}\n"
        ));
    }
    objects
}

/// The whole configuration in `dir`: Debian's sample objects, `command_definitions`, one
/// service per entry of `check_commands`, then `more_objects`; returns the main nagios.cfg.
fn write_config(
    dir: &Path,
    command_definitions: &str,
    check_commands: &[&str],
    more_objects: &[PathBuf],
) -> PathBuf {
    let commands = dir.join("commands.cfg");
    fs::write(&commands, command_definitions).unwrap();
    let services_file = dir.join("services.cfg");
    fs::write(&services_file, services(check_commands)).unwrap();
    let mut object_files: Vec<PathBuf> = SAMPLE_OBJECTS.iter().map(PathBuf::from).collect();
    object_files.extend([commands, services_file]);
    object_files.extend_from_slice(more_objects);
    main_config(dir, &object_files)
}

fn verify_main_config(main_config: &Path) -> Output {
    Command::new("nagios4")
        .arg("-v")
        .arg(main_config)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nagios4 (package nagios4): {e}"))
}

/// `nagios4 -v` (the pre-flight check) of `command_definitions` with a service of host
/// `localhost` for each of `check_commands`, plus the object files `more_objects`.
pub fn verify(
    command_definitions: &str,
    check_commands: &[&str],
    more_objects: &[PathBuf],
) -> Output {
    let dir = TempDir::new().unwrap();
    verify_main_config(&write_config(
        dir.path(),
        command_definitions,
        check_commands,
        more_objects,
    ))
}

/// `key=value` blocks of status.dat, by block type (`servicestatus`, ...).
fn status_blocks(status: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, BTreeMap<String, String>)> = None;
    for line in status.lines() {
        let line = line.trim_start();
        if let Some(kind) = line.strip_suffix(" {") {
            current = Some((kind.to_owned(), BTreeMap::new()));
        } else if line == "}" {
            blocks.extend(current.take());
        } else if let (Some((_, fields)), Some((key, value))) = (&mut current, line.split_once('='))
        {
            fields.insert(key.to_owned(), value.to_owned());
        }
    }
    blocks
}

/// Runs a throwaway nagios4 that checks each of `check_commands` (defined by
/// `command_definitions`) as a service of host `localhost`, waits until every one has been
/// checked once, stops Nagios and returns the services' status in the order given. The
/// configuration is verified with `nagios4 -v` first.
pub fn check_once(command_definitions: &str, check_commands: &[&str]) -> Vec<ServiceStatus> {
    let dir = TempDir::new().unwrap();
    let main = write_config(dir.path(), command_definitions, check_commands, &[]);
    let verified = verify_main_config(&main);
    assert!(
        verified.status.success(),
        "nagios4 -v: {}",
        describe(&verified)
    );

    let mut core = Core::start(
        Command::new("nagios4").arg(&main),
        Signal::SIGTERM,
        &dir.path().join("nagios4.out"),
    );
    let status_file = dir.path().join("status.dat");
    let nagios_log = || {
        format!(
            "nagios.log:\n{}\nstatus.dat:\n{}",
            fs::read_to_string(dir.path().join("nagios.log")).unwrap_or_default(),
            fs::read_to_string(&status_file).unwrap_or_default()
        )
    };
    let checked = wait_for_core(
        || {
            assert!(!core.has_exited(), "nagios4 exited: {}", nagios_log());
            // Nagios replaces status.dat by rename, so a read sees a whole file or none.
            let status = fs::read_to_string(&status_file).ok()?;
            let services: BTreeMap<String, BTreeMap<String, String>> = status_blocks(&status)
                .into_iter()
                .filter(|(kind, _)| kind == "servicestatus")
                .filter_map(|(_, fields)| {
                    Some((fields.get("service_description")?.clone(), fields))
                })
                .collect();
            let all_checked = (0..check_commands.len()).all(|index| {
                services
                    .get(&format!("check {index}"))
                    .is_some_and(|fields| {
                        fields.get("has_been_checked").map(String::as_str) == Some("1")
                    })
            });
            all_checked.then_some(services)
        },
        nagios_log,
    );
    drop(core);

    (0..check_commands.len())
        .map(|index| {
            let fields = &checked[&format!("check {index}")];
            let field = |key: &str| fields.get(key).cloned().unwrap_or_default();
            ServiceStatus {
                state: field("current_state")
                    .parse()
                    .expect("numeric current_state"),
                output: field("plugin_output"),
                long_output: field("long_plugin_output"),
                perfdata: field("performance_data"),
            }
        })
        .collect()
}
