//! Every command-line flag in one place, with its environment variable and help.
//!
//! Flags that mean the same thing are shared between commands (source, window, whitelist,
//! ignore, format). Each has an environment variable `POSTGREY_ADVISOR_*`, so the systemd unit's
//! options file (`/etc/default/postgrey-advisor`) can set it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_STATE: &str = "/var/lib/postgrey-advisor/state.json";
pub const DEFAULT_SUMMARY: &str = "/var/lib/postgrey-advisor/summary.json";
pub const DEFAULT_IGNORE: &str = "/etc/postgrey-advisor/ignore";
/// The ignore file of the classic `check_postgrey_whitelist` plugin, read too when it exists.
pub const DEFAULT_LEGACY_IGNORE: &str = "/etc/nagios-plugins/postgrey_no_whitelist";
pub const DEFAULT_WHITELIST_LOCAL: &str = "/etc/postgrey/whitelist_clients.local";
/// Name under which the binary acts as the Nagios plugin (a symlink in the plugin directory).
pub const PLUGIN_NAME: &str = "check_postgrey_whitelist";
/// `--min-count` when nothing else sets it.
pub const DEFAULT_MIN_COUNT: u64 = 15;

#[derive(Debug, Parser)]
#[command(
    name = "postgrey-advisor",
    version,
    about = "Find the senders postgrey delays for hours, and whitelist them safely",
    long_about = "Reads postgrey's log (systemd journal or mail.log files), groups greylisted \
                  clients by sender organisation, and tells which are multi-server senders worth \
                  adding to postgrey's whitelist_clients and which look like spam sources."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report greylisting per sender organisation over a time window (never touches state).
    Report(ReportArgs),
    /// Print suggested whitelist_clients lines, with a `# why` comment each.
    Whitelist(WhitelistArgs),
    /// Append domains to whitelist_clients.local (atomically; prints how to reload postgrey).
    Accept(AcceptArgs),
    /// Append groups (domains, networks) to the ignore file, so they are no longer proposed.
    Ignore(IgnoreArgs),
    /// Check whitelist_clients files for entries that do not do what they seem to.
    Audit(AuditArgs),
    /// The timer job: read what is new since the last run, update state, report, mail.
    Run(Box<RunArgs>),
    /// Monitoring plugin (Nagios/Icinga): unreviewed senders from the summary file.
    Check(CheckArgs),
    /// Write the man page or shell completions to stdout (for packaging).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Counts,
}

/// Where postgrey's log lines are read from.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Read classic syslog files (repeatable; `-` = stdin; .gz detected) instead of the journal.
    #[arg(
        long = "file",
        value_name = "PATH",
        env = "POSTGREY_ADVISOR_FILE",
        value_delimiter = ','
    )]
    pub files: Vec<PathBuf>,
    /// Read journal files from this directory (like journalctl -D).
    #[arg(
        long,
        value_name = "DIR",
        env = "POSTGREY_ADVISOR_JOURNAL_DIR",
        conflicts_with = "files"
    )]
    pub journal_dir: Option<PathBuf>,
    /// Read these journal files (like journalctl --file; repeatable).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["files", "journal_dir"])]
    pub journal_file: Vec<PathBuf>,
    /// SYSLOG_IDENTIFIER (journal) or program name (text) of postgrey's lines.
    #[arg(long, default_value = "postgrey", env = "POSTGREY_ADVISOR_IDENTIFIER")]
    pub identifier: String,
    /// Trust entries that journald attributes to this systemd unit.
    #[arg(
        long,
        default_value = "postgrey.service",
        env = "POSTGREY_ADVISOR_UNIT"
    )]
    pub unit: String,
    /// Trust entries with this _UID (repeatable). Default: 0 and the local `postgrey` user.
    #[arg(
        long = "trust-uid",
        value_name = "UID",
        env = "POSTGREY_ADVISOR_TRUST_UID",
        value_delimiter = ','
    )]
    pub trust_uids: Vec<u32>,
    /// Count every entry with the identifier, even ones journald does not vouch for.
    #[arg(long, env = "POSTGREY_ADVISOR_TRUST_ANY")]
    pub trust_any: bool,
    /// Year of traditional syslog stamps (default: inferred from each file's mtime).
    #[arg(long, value_name = "YEAR")]
    pub year: Option<i16>,
    /// Public Suffix List file to use instead of the built-in list.
    #[arg(long, value_name = "FILE", env = "POSTGREY_ADVISOR_PSL")]
    pub psl: Option<PathBuf>,
}

/// Which part of the log to look at (systemd.time(7) syntax, local time zone).
#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    /// Start of the window: "1 week ago", yesterday, 2026-11-01, "2026-11-01 10:00:00", @EPOCH, -2d.
    /// Default: everything the source holds.
    #[arg(long, short = 'S', value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// End of the window (exclusive), same syntax. Default: now.
    #[arg(long, short = 'U', value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
}

/// postgrey's whitelist files, read the way postgrey reads them.
#[derive(Debug, Clone, Args)]
pub struct WhitelistFiles {
    /// postgrey whitelist_clients file (repeatable; replaces the two Debian defaults, as in postgrey).
    #[arg(
        long = "whitelist-clients",
        value_name = "FILE",
        env = "POSTGREY_ADVISOR_WHITELIST_CLIENTS",
        value_delimiter = ','
    )]
    pub paths: Vec<PathBuf>,
    /// postgrey's options file (Debian's `POSTGREY_OPTS="…"`): its --ipv4cidr, --ipv6cidr,
    /// --lookup-by-host, --delay and --whitelist-clients are counted with. Default:
    /// /etc/default/postgrey when it exists, else postgrey's defaults.
    #[arg(long, value_name = "FILE", env = "POSTGREY_ADVISOR_POSTGREY_CONFIG")]
    pub postgrey_config: Option<PathBuf>,
}

/// The classic check_postgrey_whitelist plugin's ignore file, read beside ours.
#[derive(Debug, Clone, Args)]
pub struct LegacyIgnoreFile {
    /// The classic check_postgrey_whitelist plugin's ignore file (one domain per line), read as
    /// well when it exists; an empty value reads none.
    #[arg(
        long,
        value_name = "FILE",
        default_value = DEFAULT_LEGACY_IGNORE,
        env = "POSTGREY_ADVISOR_LEGACY_IGNORE_FILE",
        // Unlike the other file flags, an empty value is allowed: it reads none.
        value_parser = clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from)
    )]
    pub legacy_ignore_file: PathBuf,
}

/// What the advice is measured against.
#[derive(Debug, Clone, Args)]
pub struct AdviceArgs {
    #[command(flatten)]
    pub whitelist: WhitelistFiles,
    /// Domains never to propose (one per line, `#` comments).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_IGNORE, env = "POSTGREY_ADVISOR_IGNORE_FILE")]
    pub ignore_file: PathBuf,
    #[command(flatten)]
    pub legacy_ignore: LegacyIgnoreFile,
    /// Groups greylisted fewer times than this in the window get no verdict (and `check` does
    /// not count them).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MIN_COUNT,
        env = "POSTGREY_ADVISOR_MIN_COUNT"
    )]
    pub min_count: u64,
}

/// How findings are shown.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// Show groups below --min-count too.
    #[arg(long)]
    pub all: bool,
    /// Write suggestions as anchored regexes instead of plain names.
    #[arg(long, env = "POSTGREY_ADVISOR_REGEX")]
    pub regex: bool,
}

/// What `report` and `whitelist` read, over which window, measured against what.
#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub advice: AdviceArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub scan: ScanArgs,
    #[command(flatten)]
    pub show: ShowArgs,
    /// With the table: a table per MX host (`_HOSTNAME`, or the syslog host field) of the
    /// groups it greylisted.
    #[arg(long)]
    pub by_mx: bool,
    /// Output format.
    #[arg(
        long,
        value_enum,
        default_value = "table",
        env = "POSTGREY_ADVISOR_FORMAT"
    )]
    pub format: Format,
}

/// `whitelist`'s output: the lines to paste, or the same as JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhitelistFormat {
    /// `# group: why` then the line, ready to paste into whitelist_clients.local.
    Text,
    /// A JSON list of `{group, line, verdict, status, greylisted, reason}`.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct WhitelistArgs {
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Write suggestions as anchored regexes instead of plain names.
    #[arg(long, env = "POSTGREY_ADVISOR_REGEX")]
    pub regex: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: WhitelistFormat,
}

#[derive(Debug, Clone, Args)]
pub struct AcceptArgs {
    /// Domains (or host suffixes) to whitelist; a `/(^|\.)name$/` line from `--regex` is
    /// taken as its name.
    #[arg(required = true, value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// The file to append to.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_WHITELIST_LOCAL, env = "POSTGREY_ADVISOR_WHITELIST_LOCAL")]
    pub whitelist_local: PathBuf,
    /// Write anchored regex lines instead of plain names.
    #[arg(long)]
    pub regex: bool,
    /// Show what would change, change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Then make postgrey read its whitelists again (SIGHUP): through systemd when it runs as
    /// postgrey.service, else to the pid in its --pidfile.
    #[arg(long)]
    pub reload: bool,
    /// postgrey's options file (Debian's POSTGREY_OPTS="…"), for its --pidfile.
    #[arg(long, value_name = "FILE", env = "POSTGREY_ADVISOR_POSTGREY_CONFIG")]
    pub postgrey_config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct IgnoreArgs {
    /// Groups never to propose again: a host name counts for its group (the registrable
    /// domain the report shows), a network (`203.0.113.0/24`) or address for its block.
    #[arg(required = true, value_name = "DOMAIN|NETWORK")]
    pub domains: Vec<String>,
    /// The ignore file to append to.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_IGNORE, env = "POSTGREY_ADVISOR_IGNORE_FILE")]
    pub ignore_file: PathBuf,
    /// Show what would change, change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// postgrey's options file (Debian's POSTGREY_OPTS="…"), for the networks unresolved
    /// clients are grouped by (--ipv4cidr, --ipv6cidr, --lookup-by-host).
    #[arg(long, value_name = "FILE", env = "POSTGREY_ADVISOR_POSTGREY_CONFIG")]
    pub postgrey_config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub whitelist: WhitelistFiles,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MailWhen {
    /// Only when there are candidates to review.
    Candidates,
    Always,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub advice: AdviceArgs,
    #[command(flatten)]
    pub show: ShowArgs,
    /// State file (cursor and day buckets). The summary for `check` is written beside it, as
    /// summary.json in the same directory.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_STATE, env = "POSTGREY_ADVISOR_STATE")]
    pub state: PathBuf,
    /// How long day buckets are kept (systemd time span).
    #[arg(
        long,
        value_name = "SPAN",
        default_value = "8w",
        env = "POSTGREY_ADVISOR_KEEP"
    )]
    pub keep: String,
    /// The rolling window the summary and report cover.
    #[arg(
        long,
        value_name = "SPAN",
        default_value = "7d",
        env = "POSTGREY_ADVISOR_WINDOW"
    )]
    pub window: String,
    /// Where the first run starts reading.
    #[arg(
        long,
        value_name = "TIME",
        default_value = "7 days ago",
        env = "POSTGREY_ADVISOR_INITIAL_SINCE"
    )]
    pub initial_since: String,
    /// Seconds to wait for another run's lock before exiting with 75.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        env = "POSTGREY_ADVISOR_LOCK_TIMEOUT"
    )]
    pub lock_timeout: u64,
    /// Most the state file may take (`10MB`, `512KiB`). Beyond it, older days keep fewer
    /// details and the least greylisted groups are folded into the totals (see README).
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "10MB",
        env = "POSTGREY_ADVISOR_MAX_STATE_SIZE"
    )]
    pub max_state_size: bytesize::ByteSize,
    /// Discard the state file and start over.
    #[arg(long)]
    pub reset_state: bool,
    /// Write the report to the journal (default when stdout is the journal); an error when no
    /// journald listens.
    #[arg(long, env = "POSTGREY_ADVISOR_TO_JOURNAL")]
    pub to_journal: bool,
    /// Mail a digest to this address.
    #[arg(long, value_name = "ADDR", env = "POSTGREY_ADVISOR_MAIL")]
    pub mail: Option<String>,
    /// Sender address of the digest (default postgrey-advisor@FQDN).
    #[arg(long, value_name = "ADDR", env = "POSTGREY_ADVISOR_MAIL_FROM")]
    pub mail_from: Option<String>,
    #[arg(
        long,
        value_enum,
        default_value = "candidates",
        env = "POSTGREY_ADVISOR_MAIL_WHEN"
    )]
    pub mail_when: MailWhen,
    /// SMTP server for the digest.
    #[arg(
        long,
        value_name = "HOST[:PORT]",
        default_value = "localhost:25",
        env = "POSTGREY_ADVISOR_SMTP"
    )]
    pub smtp: String,
    /// Pipe the digest to this sendmail program instead of SMTP.
    #[arg(long, value_name = "PATH", env = "POSTGREY_ADVISOR_SENDMAIL")]
    pub sendmail: Option<PathBuf>,
    /// Write node_exporter textfile metrics to this file.
    #[arg(long, value_name = "FILE", env = "POSTGREY_ADVISOR_PROMETHEUS")]
    pub prometheus: Option<PathBuf>,
    /// Write node_exporter textfile metrics as postgrey_advisor.prom in this directory.
    #[arg(
        long,
        value_name = "DIR",
        env = "POSTGREY_ADVISOR_TEXTFILE_DIR",
        conflicts_with = "prometheus"
    )]
    pub textfile_dir: Option<PathBuf>,
    /// How many top groups get a labelled metric.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20,
        env = "POSTGREY_ADVISOR_PROMETHEUS_TOP"
    )]
    pub prometheus_top: usize,
    /// Output format when not writing to the journal.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `check_postgrey_whitelist`: the binary under the plugin's name takes `check`'s options
/// directly.
#[derive(Debug, Parser)]
#[command(
    name = PLUGIN_NAME,
    disable_version_flag = true,
    about = "Monitoring plugin (Nagios/Icinga): unreviewed senders from postgrey-advisor's summary file"
)]
pub struct PluginCli {
    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(Debug, Clone, Args)]
#[command(disable_version_flag = true)]
pub struct CheckArgs {
    /// Summary file written by `run`.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_SUMMARY, env = "POSTGREY_ADVISOR_SUMMARY")]
    pub summary: PathBuf,
    /// Scan the source (journal, or --file/--journal-dir/--journal-file) from this time instead
    /// of reading the summary.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Warning range on the number of unreviewed groups (Nagios range syntax).
    #[arg(short = 'w', long, value_name = "RANGE", default_value = "0")]
    pub warning: String,
    /// Critical range on the number of unreviewed groups.
    #[arg(short = 'c', long, value_name = "RANGE")]
    pub critical: Option<String>,
    /// Seconds before giving up with UNKNOWN.
    #[arg(short = 't', long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// Window the counts cover. Default: the run's --window, from the summary (7d with --since).
    #[arg(long, value_name = "SPAN")]
    pub window: Option<String>,
    /// A summary older than this is UNKNOWN (the timer stopped).
    #[arg(long, value_name = "SPAN", default_value = "8d")]
    pub max_age: String,
    /// Whitelist files are read now, so an alert clears as soon as an entry is added.
    #[command(flatten)]
    pub whitelist: WhitelistFiles,
    /// Domains never to propose (read now, like the whitelist).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_IGNORE, env = "POSTGREY_ADVISOR_IGNORE_FILE")]
    pub ignore_file: PathBuf,
    #[command(flatten)]
    pub legacy_ignore: LegacyIgnoreFile,
    /// Groups greylisted fewer times than this are not counted. Default: the run's
    /// --min-count, from the summary (15 with --since).
    #[arg(long, value_name = "N", env = "POSTGREY_ADVISOR_MIN_COUNT")]
    pub min_count: Option<u64>,
    /// More output (repeatable).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print the plugin version.
    #[arg(short = 'V', long)]
    pub version: bool,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    #[arg(value_enum)]
    pub what: Generate,
    /// Directory for `man-pages`.
    #[arg(value_name = "DIR", required_if_eq("what", "man-pages"))]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The main man page, postgrey-advisor(1), on stdout.
    Man,
    /// Every man page (postgrey-advisor(1), one per command, check_postgrey_whitelist(1))
    /// into the directory given as the next argument.
    ManPages,
    Bash,
    Zsh,
    Fish,
}

/// What a command reads when told nothing, and how it is used: the end of its `--help` and
/// the DEFAULTS and EXAMPLES of its man page, from one text so they cannot drift apart.
pub struct Guide {
    /// The subcommand's name; [`PLUGIN_NAME`] for the plugin.
    pub command: &'static str,
    pub defaults: &'static str,
    /// `(command line, what it does)`.
    pub examples: &'static [(&'static str, &'static str)],
}

const JOURNAL_AND_ALL_DATA: &str = "Source: the system journal (entries of postgrey.service) \
    unless --file, --journal-dir or --journal-file name another. Window: everything the source \
    holds unless --since or --until narrow it.";

const CHECK_DEFAULTS: &str = "Source: summary.json, written by the last `run` beside its \
    state file (no journal access needed); the window and --min-count are the run's unless \
    --window or --min-count are given. With --since it scans the journal (or --file, \
    --journal-dir, --journal-file) itself, over --window 7d and --min-count 15.";

pub const GUIDES: &[Guide] = &[
    Guide {
        command: "report",
        defaults: JOURNAL_AND_ALL_DATA,
        examples: &[
            (
                "postgrey-advisor report --since -7d",
                "The last 7 days of the system journal.",
            ),
            (
                "postgrey-advisor report --file /var/log/mail.log,/var/log/mail.log.1",
                "Classic syslog files (.gz ones too).",
            ),
            (
                "postgrey-advisor report --since 2026-11-01 --until 2026-11-08 --format json",
                "One week, as JSON for scripts.",
            ),
            (
                "postgrey-advisor report --since -7d --all --format counts",
                "Greylistings per group, like grep | sort | uniq -c.",
            ),
        ],
    },
    Guide {
        command: "whitelist",
        defaults: JOURNAL_AND_ALL_DATA,
        examples: &[
            (
                "postgrey-advisor whitelist --since -7d",
                "The lines to paste into whitelist_clients.local, each after its reason.",
            ),
            (
                "postgrey-advisor whitelist --since -7d --format json | jq -r '.[].line'",
                "Just the lines, for a script.",
            ),
        ],
    },
    Guide {
        command: "accept",
        defaults: "File: /etc/postgrey/whitelist_clients.local unless --whitelist-local. A name \
            already covered is no error: the command says so and exits 0.",
        examples: &[
            (
                "postgrey-advisor accept --reload amazonses.com",
                "Whitelist a sender group, then make postgrey reread its lists.",
            ),
            (
                "postgrey-advisor accept --dry-run outlook.com",
                "Show the change as a diff, change nothing.",
            ),
        ],
    },
    Guide {
        command: "ignore",
        defaults: "File: /etc/postgrey-advisor/ignore unless --ignore-file. A host name is \
            replaced by its group (registrable domain); an address by its /24 (/64 for IPv6). \
            One already there is no error: the command says so and exits 0.",
        examples: &[
            (
                "postgrey-advisor ignore example-isp.net",
                "Never propose this group again.",
            ),
            (
                "postgrey-advisor ignore adsl.example-isp.net",
                "The same: a host name counts for its group, example-isp.net.",
            ),
            (
                "postgrey-advisor ignore 192.0.2.0/24",
                "An unresolved block the report lists.",
            ),
        ],
    },
    Guide {
        command: "audit",
        defaults: "Files: /etc/postgrey/whitelist_clients and whitelist_clients.local unless \
            --whitelist-clients. Exit 0 without findings, 1 with findings, 66 when a file cannot \
            be read.",
        examples: &[
            (
                "postgrey-advisor audit",
                "Check Debian's two whitelist files.",
            ),
            (
                "postgrey-advisor audit --whitelist-clients etc/postgrey/whitelist_clients.local",
                "Check a file of a configuration repository (in CI).",
            ),
        ],
    },
    Guide {
        command: "run",
        defaults: "Source: the system journal, after the cursor saved in --state (the first run \
            from --initial-since, 7 days ago). Window of the report and summary: --window, 7d. \
            Writes summary.json beside --state for `check`.",
        examples: &[
            (
                "systemctl start postgrey-advisor.service",
                "What the weekly timer does, with the options of /etc/default/postgrey-advisor.",
            ),
            (
                "postgrey-advisor run --min-count 30 --window 3w --mail postmaster@example.org",
                "Judge groups over three weeks, from 30 greylistings, and mail the digest.",
            ),
        ],
    },
    Guide {
        command: "check",
        defaults: CHECK_DEFAULTS,
        examples: &[
            (
                "postgrey-advisor check",
                "Warn while a sender waits for review (the same as check_postgrey_whitelist).",
            ),
            (
                "postgrey-advisor check -w 3 -c 10",
                "Warning above 3 unreviewed senders, critical above 10.",
            ),
        ],
    },
    Guide {
        command: PLUGIN_NAME,
        defaults: CHECK_DEFAULTS,
        examples: &[
            (
                "check_postgrey_whitelist",
                "Warn while a sender waits for review.",
            ),
            (
                "check_postgrey_whitelist -w 3 -c 10",
                "Warning above 3 unreviewed senders, critical above 10.",
            ),
            (
                "check_postgrey_whitelist --since -1d --journal-dir /var/log/journal",
                "Without the timer: scan the last day of the journal.",
            ),
        ],
    },
];

/// The guide of a command, by name.
pub fn guide(command: &str) -> Option<&'static Guide> {
    GUIDES.iter().find(|g| g.command == command)
}

/// The text at the end of a command's `--help`.
fn after_help(guide: &Guide) -> String {
    let mut text = format!("{}\n\nExamples:", guide.defaults);
    for (line, what) in guide.examples {
        text.push_str(&format!("\n  {line}\n      {what}"));
    }
    text
}

/// The command line parser, each subcommand's `--help` ending with its defaults and examples.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    for guide in GUIDES.iter().filter(|g| g.command != PLUGIN_NAME) {
        command = command.mut_subcommand(guide.command, |sub| sub.after_help(after_help(guide)));
    }
    command
}

/// The parser of `check_postgrey_whitelist`: `check`'s options under the plugin's name.
pub fn plugin_command() -> clap::Command {
    use clap::CommandFactory;
    let mut command = PluginCli::command();
    if let Some(guide) = guide(PLUGIN_NAME) {
        command = command.after_help(after_help(guide));
    }
    command
}
