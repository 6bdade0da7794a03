//! The shipped monitoring definitions, checked by the real monitoring cores from Debian:
//! `icinga2 daemon -C` validates the `postgrey_whitelist` CheckCommand, `nagios4 -v` the Nagios
//! commands, and both cores actually run them, so the arguments a service sets are the ones the
//! plugin receives. Each core runs from a throwaway configuration in a temporary directory, as
//! the current user, and is stopped by killing its process group.
//!
//! The Nagios harness is tests/common/nagios.rs; here it runs small shell plugins, and
//! tests/check.rs points it at the built binary.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::nagios::{
    self, Core, INSTALLED_PLUGIN, ServiceStatus, current_user, describe, wait_for_core,
};
use common::{project_file, read_project_file as read};
use nix::sys::signal::Signal;
use tempfile::TempDir;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"))
}

/// A shell-script plugin in `dir`, executable.
fn write_plugin(dir: &Path, name: &str, script: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{script}")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
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
    let seen = wait_for_core(
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

/// The shipped commands, their example services and one service per command, for `nagios4 -v`.
fn nagios_verify_commands(commands: &str) -> Output {
    nagios::verify(
        commands,
        &[
            "check_postgrey_advisor",
            "check_postgrey_advisor_thresholds!3!10",
            "check_postgrey_advisor_args!--min-count 30 --max-age 15d",
        ],
        &[project_file("monitoring/nagios/nagios-service.cfg")],
    )
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
        "command_name\tcheck_postgrey_advisor_thresholds\n",
        "command_name\tcheck_postgrey_advisor_limits\n",
    );
    let output = nagios_verify_commands(&renamed);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains(
            "Error: Service check command 'check_postgrey_advisor_thresholds!3!10' specified in \
             service 'check 1' for host 'localhost' not defined anywhere!"
        ),
        "{}",
        describe(&output)
    );
}

/// A postmaster coming from the classic script keeps a command of their own named
/// `check_postgrey_whitelist` (the plugin's name); the shipped commands have other names, so
/// both load side by side and the old service keeps working with the new plugin.
#[test]
fn nagios4_accepts_the_shipped_commands_beside_the_classic_command() {
    let classic = "define command{\n\tcommand_name\tcheck_postgrey_whitelist\n\t\
                   command_line\t/usr/lib/nagios/plugins/check_postgrey_whitelist\n\t}\n";
    let output = nagios::verify(
        &format!(
            "{}\n{classic}",
            read("monitoring/nagios/postgrey-advisor.cfg")
        ),
        &["check_postgrey_whitelist", "check_postgrey_advisor"],
        &[],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let report = text(&output.stdout);
    for expected in ["\tChecked 2 services.\n", "Total Errors:   0\n"] {
        assert!(report.contains(expected), "{expected:?} missing:\n{report}");
    }
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
        nagios::check_once(&commands, &["warning", "ok"]),
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
    let statuses = nagios::check_once(
        &nagios::shipped_commands(&plugin),
        &[
            "check_postgrey_advisor",
            "check_postgrey_advisor_thresholds!~:3!@10:20",
            "check_postgrey_advisor_args!--min-count 30 --max-age 15d",
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
