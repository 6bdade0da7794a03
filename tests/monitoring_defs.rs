//! The shipped monitoring definitions, checked by the real monitoring cores from Debian:
//! `icinga2 daemon -C` validates the `postgrey_whitelist` CheckCommand, `nagios4 -v` the Nagios
//! commands, and both cores actually run them, so the arguments a service sets are the ones the
//! plugin receives. Each core runs from a throwaway configuration in a temporary directory, as
//! the current user, and is stopped by killing its process group.
//!
//! `nagios_check_once` is the harness for running the real plugin under Nagios: it starts
//! nagios4 with a 1 s check interval, waits until every service has been checked once, and
//! returns what status.dat recorded. Here it runs small shell plugins; the plugin's own tests
//! point it at the built binary through `shipped_nagios_commands`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tempfile::TempDir;

/// Where the Debian package installs the plugin (a symlink to the binary).
const INSTALLED_PLUGIN: &str = "/usr/lib/nagios/plugins/check_postgrey_whitelist";
/// How long a core may take to run its first checks before the test gives up.
const CORE_DEADLINE: Duration = Duration::from_secs(120);

fn project_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    let path = project_file(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"))
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// The current user and group names: the cores drop privileges to these.
fn current_user() -> (String, String) {
    let name = |flag: &str| {
        let output = run(Command::new("id").arg(flag));
        assert!(output.status.success(), "id {flag}: {}", describe(&output));
        text(&output.stdout).trim().to_owned()
    };
    (name("-un"), name("-gn"))
}

/// A shell-script plugin in `dir`, executable.
fn write_plugin(dir: &Path, name: &str, script: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{script}")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A started core; its whole process group is killed when dropped, also when a test fails.
struct Core {
    child: Child,
    stop_signal: Signal,
}

impl Core {
    /// Starts `command` in its own process group, stdout and stderr into `log`.
    fn start(command: &mut Command, stop_signal: Signal, log: &Path) -> Core {
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

    fn has_exited(&mut self) -> bool {
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

/// Polls `probe` until it returns a value, or fails after `CORE_DEADLINE` with `context()`.
fn wait_for<T>(mut probe: impl FnMut() -> Option<T>, context: impl Fn() -> String) -> T {
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

// ---------------------------------------------------------------------------------------------
// Icinga 2

/// A minimal Icinga 2 tree: the constants Debian's constants.conf sets, the ITL with the
/// plugin command collections (so a name clash would show), and then `body`.
fn icinga2_config(plugin_dir: &Path, body: &str) -> String {
    format!(
        "const PluginDir = \"/usr/lib/nagios/plugins\"\n\
         const ManubulonPluginDir = \"/usr/lib/nagios/plugins\"\n\
         const PluginContribDir = \"{}\"\n\
         const NodeName = \"localhost\"\n\
         const ZoneName = NodeName\n\
         include <itl>\n\
         include <plugins>\n\
         include <plugins-contrib>\n\
         {body}\n",
        plugin_dir.display()
    )
}

/// `icinga2 daemon` with every directory it writes to inside `dir`, as the current user.
fn icinga2_command(dir: &Path, config: &str) -> Command {
    let config_file = dir.join("icinga2.conf");
    fs::write(&config_file, config).unwrap();
    for sub in ["data", "log", "spool", "run"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let (user, group) = current_user();
    let mut command = Command::new("icinga2");
    command
        .arg("daemon")
        .arg("-c")
        .arg(&config_file)
        .arg(format!("-DCacheDir={}", dir.display()))
        .arg(format!("-DDataDir={}", dir.join("data").display()))
        .arg(format!("-DLogDir={}", dir.join("log").display()))
        .arg(format!("-DSpoolDir={}", dir.join("spool").display()))
        .arg(format!("-DInitRunDir={}", dir.join("run").display()))
        .env("ICINGA2_USER", user)
        .env("ICINGA2_GROUP", group)
        .current_dir(dir);
    command
}

fn icinga2_validate(dir: &Path, config: &str) -> Output {
    run(icinga2_command(dir, config).arg("-C"))
}

fn include(path: &Path) -> String {
    format!("include \"{}\"\n", path.display())
}

/// A host the example apply rule matches, and a service that sets every variable.
const ICINGA2_OBJECTS: &str = r#"
object Host "mx" {
  check_command = "dummy"
  enable_active_checks = false
  vars.postgrey_advisor = true
}
object Service "every-option" {
  host_name = "mx"
  check_command = "postgrey_whitelist"
  check_interval = 1s
  vars.postgrey_whitelist_warning = "~:3"
  vars.postgrey_whitelist_critical = "@10:20"
  vars.postgrey_whitelist_timeout = 20
  vars.postgrey_whitelist_min_count = 30
  vars.postgrey_whitelist_window = "14d"
  vars.postgrey_whitelist_summary = "/srv/postgrey advisor/summary.json"
  vars.postgrey_whitelist_max_age = "15d"
  vars.postgrey_whitelist_verbose = true
}
object Service "defaults" {
  host_name = "mx"
  check_command = "postgrey_whitelist"
  check_interval = 1s
}
"#;

#[test]
fn icinga2_validates_the_shipped_check_command_and_example_service() {
    let dir = TempDir::new().unwrap();
    let config = icinga2_config(
        Path::new(INSTALLED_PLUGIN).parent().unwrap(),
        &[
            include(&project_file("monitoring/icinga2/postgrey-advisor.conf")),
            include(&project_file("monitoring/icinga2/icinga2-service.conf")),
            ICINGA2_OBJECTS.to_owned(),
        ]
        .concat(),
    );
    let output = icinga2_validate(dir.path(), &config);
    assert!(output.status.success(), "{}", describe(&output));
    let log = text(&output.stdout);
    // The example's apply rule matched the host: 2 explicit services + 1 applied.
    assert!(
        log.contains("information/ConfigItem: Instantiated 3 Services.\n"),
        "{log}"
    );
    assert!(
        log.contains("information/cli: Finished validating the configuration file(s).\n"),
        "{log}"
    );
}

/// A shipped file with `edit` applied, validated with a service that uses it.
fn icinga2_validate_edited(edit: impl Fn(&str) -> String) -> Output {
    let dir = TempDir::new().unwrap();
    let broken = dir.path().join("postgrey-advisor.conf");
    fs::write(
        &broken,
        edit(&read("monitoring/icinga2/postgrey-advisor.conf")),
    )
    .unwrap();
    let config = icinga2_config(
        Path::new(INSTALLED_PLUGIN).parent().unwrap(),
        &[include(&broken), ICINGA2_OBJECTS.to_owned()].concat(),
    );
    icinga2_validate(dir.path(), &config)
}

#[test]
fn icinga2_rejects_a_truncated_copy() {
    let output = icinga2_validate_edited(|shipped| {
        let end = shipped.trim_end().strip_suffix('}').expect("ends with }");
        end.to_owned()
    });
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains("Error: syntax error, unexpected end of file, expecting '}'"),
        "{}",
        describe(&output)
    );
}

#[test]
fn icinga2_rejects_a_copy_using_an_undefined_constant() {
    let output = icinga2_validate_edited(|shipped| {
        shipped.replace("PluginContribDir +", "PluginContribDirectory +")
    });
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stdout)
            .contains("Tried to access undefined script variable 'PluginContribDirectory'"),
        "{}",
        describe(&output)
    );
}

/// Icinga runs the CheckCommand: the plugin gets exactly the arguments the vars ask for.
#[test]
fn icinga2_passes_each_variable_as_its_option() {
    let dir = TempDir::new().unwrap();
    let calls = dir.path().join("calls");
    // One line per call: the arguments, each in brackets. Appends of one short line are atomic.
    write_plugin(
        dir.path(),
        "check_postgrey_whitelist",
        &format!(
            "line=''\nfor arg in \"$@\"; do line=\"$line[$arg]\"; done\n\
             printf '%s\\n' \"$line\" >> '{}'\n\
             echo 'POSTGREY WHITELIST OK - 0 unreviewed | unreviewed=0;0;;0'\n",
            calls.display()
        ),
    );
    let config = icinga2_config(
        dir.path(),
        &[
            include(&project_file("monitoring/icinga2/postgrey-advisor.conf")),
            "object CheckerComponent \"checker\" { }\n".to_owned(),
            ICINGA2_OBJECTS.to_owned(),
        ]
        .concat(),
    );
    let log = dir.path().join("icinga2.out");
    let mut core = Core::start(
        &mut icinga2_command(dir.path(), &config),
        Signal::SIGKILL,
        &log,
    );
    let seen = wait_for(
        || {
            assert!(
                !core.has_exited(),
                "icinga2 exited: {}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            let seen: BTreeSet<String> = fs::read_to_string(&calls)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            (seen.len() >= 2).then_some(seen)
        },
        || {
            format!(
                "calls: {:?}\nicinga2:\n{}",
                fs::read_to_string(&calls),
                fs::read_to_string(&log).unwrap_or_default()
            )
        },
    );
    drop(core);
    assert_eq!(
        seen,
        BTreeSet::from([
            String::new(),
            "[--max-age][15d][--min-count][30][--summary][/srv/postgrey advisor/summary.json]\
             [--window][14d][-c][@10:20][-t][20][-v][-w][~:3]"
                .to_owned(),
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Nagios 4

/// What nagios4 recorded in status.dat for a service after checking it once. `long_output`
/// is as Nagios stores it: lines after the first, joined by a literal `\n`.
#[derive(Debug, PartialEq, Eq)]
pub struct ServiceStatus {
    pub state: u8,
    pub output: String,
    pub long_output: String,
    pub perfdata: String,
}

/// The shipped Nagios command definitions with the plugin at `plugin` instead of its installed
/// path (`plugin` is best a symlink named check_postgrey_whitelist to the built binary).
pub fn shipped_nagios_commands(plugin: &Path) -> String {
    let shipped = read("monitoring/nagios/postgrey-advisor.cfg");
    assert!(shipped.contains(INSTALLED_PLUGIN));
    shipped.replace(INSTALLED_PLUGIN, &plugin.display().to_string())
}

/// Debian's sample objects: templates (generic-service, linux-server), contacts, timeperiods.
const NAGIOS_SAMPLE_OBJECTS: [&str; 4] = [
    "/etc/nagios4/objects/commands.cfg",
    "/etc/nagios4/objects/contacts.cfg",
    "/etc/nagios4/objects/timeperiods.cfg",
    "/etc/nagios4/objects/templates.cfg",
];

/// A throwaway nagios.cfg in `dir`: every path inside it, checks as often as possible (the
/// interval unit is one second), nothing but service checks enabled.
fn nagios_main_config(dir: &Path, object_files: &[PathBuf]) -> PathBuf {
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

/// Objects for checking `check_commands` once each, on host `localhost`, services "check N".
fn nagios_services(check_commands: &[&str]) -> String {
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

fn nagios_verify(main_config: &Path) -> Output {
    run(Command::new("nagios4").arg("-v").arg(main_config))
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
/// checked once, stops Nagios and returns the services' status in the order given.
pub fn nagios_check_once(command_definitions: &str, check_commands: &[&str]) -> Vec<ServiceStatus> {
    let dir = TempDir::new().unwrap();
    let commands = dir.path().join("commands.cfg");
    fs::write(&commands, command_definitions).unwrap();
    let services = dir.path().join("services.cfg");
    fs::write(&services, nagios_services(check_commands)).unwrap();
    let mut object_files: Vec<PathBuf> = NAGIOS_SAMPLE_OBJECTS.iter().map(PathBuf::from).collect();
    object_files.extend([commands, services]);
    let main = nagios_main_config(dir.path(), &object_files);

    let verified = nagios_verify(&main);
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
    let checked = wait_for(
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

/// The shipped commands, their example services and one service per command, for `nagios4 -v`.
fn nagios_verify_commands(commands: &str) -> Output {
    let dir = TempDir::new().unwrap();
    let commands_file = dir.path().join("postgrey-advisor.cfg");
    fs::write(&commands_file, commands).unwrap();
    let services = dir.path().join("services.cfg");
    fs::write(
        &services,
        nagios_services(&[
            "check_postgrey_whitelist",
            "check_postgrey_whitelist_thresholds!3!10",
            "check_postgrey_whitelist_args!--min-count 30 --max-age 15d",
        ]),
    )
    .unwrap();
    let mut object_files: Vec<PathBuf> = NAGIOS_SAMPLE_OBJECTS.iter().map(PathBuf::from).collect();
    object_files.extend([
        commands_file,
        services,
        project_file("monitoring/nagios/nagios-service.cfg"),
    ]);
    nagios_verify(&nagios_main_config(dir.path(), &object_files))
}

#[test]
fn nagios4_validates_the_shipped_commands_and_example_service() {
    let output = nagios_verify_commands(&read("monitoring/nagios/postgrey-advisor.cfg"));
    assert!(output.status.success(), "{}", describe(&output));
    let report = text(&output.stdout);
    for expected in [
        "\tChecked 4 services.\n",
        "Total Warnings: 0\n",
        "Total Errors:   0\n",
        "Things look okay - No serious problems were detected during the pre-flight check\n",
    ] {
        assert!(report.contains(expected), "{expected:?} missing:\n{report}");
    }
}

#[test]
fn nagios4_rejects_a_truncated_copy() {
    let shipped = read("monitoring/nagios/postgrey-advisor.cfg");
    let truncated = shipped.trim_end().strip_suffix('}').expect("ends with }");
    let output = nagios_verify_commands(truncated);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains("Error: Unexpected EOF in file"),
        "{}",
        describe(&output)
    );
}

#[test]
fn nagios4_rejects_a_copy_missing_a_command() {
    let renamed = read("monitoring/nagios/postgrey-advisor.cfg").replace(
        "command_name\tcheck_postgrey_whitelist_thresholds\n",
        "command_name\tcheck_postgrey_whitelist_limits\n",
    );
    let output = nagios_verify_commands(&renamed);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains(
            "Error: Service check command 'check_postgrey_whitelist_thresholds!3!10' specified in \
             service 'check 1' for host 'localhost' not defined anywhere!"
        ),
        "{}",
        describe(&output)
    );
}

/// The harness itself: state, first line, perfdata and long output of a plugin, as recorded.
#[test]
fn nagios_harness_records_state_output_and_perfdata() {
    let dir = TempDir::new().unwrap();
    let warning = write_plugin(
        dir.path(),
        "warning",
        "echo 'POSTGREY WHITELIST WARNING - 2 unreviewed | unreviewed=2;0;;0 groups=5;;;0'\n\
         echo 'example.com 40'\necho 'example.net 17'\nexit 1\n",
    );
    let ok = write_plugin(dir.path(), "ok", "echo 'OK - x | a=1'\nexit 0\n");
    let commands = format!(
        "define command{{\n\tcommand_name\twarning\n\tcommand_line\t{}\n\t}}\n\
         define command{{\n\tcommand_name\tok\n\tcommand_line\t{}\n\t}}\n",
        warning.display(),
        ok.display()
    );
    assert_eq!(
        nagios_check_once(&commands, &["warning", "ok"]),
        [
            ServiceStatus {
                state: 1,
                output: "POSTGREY WHITELIST WARNING - 2 unreviewed".to_owned(),
                long_output: r"example.com 40\nexample.net 17".to_owned(),
                perfdata: "unreviewed=2;0;;0 groups=5;;;0".to_owned(),
            },
            ServiceStatus {
                state: 0,
                output: "OK - x".to_owned(),
                long_output: String::new(),
                perfdata: "a=1".to_owned(),
            },
        ]
    );
}

/// Nagios runs the shipped commands: the plugin gets the arguments the service passes.
#[test]
fn nagios_passes_the_shipped_command_arguments() {
    let dir = TempDir::new().unwrap();
    let plugin = write_plugin(
        dir.path(),
        "check_postgrey_whitelist",
        "printf 'OK - argv:'\nfor arg in \"$@\"; do printf ' [%s]' \"$arg\"; done\necho\n",
    );
    let statuses = nagios_check_once(
        &shipped_nagios_commands(&plugin),
        &[
            "check_postgrey_whitelist",
            "check_postgrey_whitelist_thresholds!~:3!@10:20",
            "check_postgrey_whitelist_args!--min-count 30 --max-age 15d",
        ],
    );
    let outputs: Vec<(u8, &str)> = statuses
        .iter()
        .map(|status| (status.state, status.output.as_str()))
        .collect();
    assert_eq!(
        outputs,
        [
            (0, "OK - argv:"),
            (0, "OK - argv: [-w] [~:3] [-c] [@10:20]"),
            (0, "OK - argv: [--min-count] [30] [--max-age] [15d]"),
        ]
    );
}
