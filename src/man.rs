//! Man pages, generated from the clap definitions so that they cannot drift from `--help`:
//! postgrey-advisor(1), one page per command (postgrey-advisor-report(1), …) and
//! check_postgrey_whitelist(1). clap_mangen renders NAME, SYNOPSIS, DESCRIPTION and OPTIONS;
//! this module adds DEFAULTS, FILES, ENVIRONMENT, EXIT STATUS, EXAMPLES and SEE ALSO.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use crate::cli::{self, DEFAULT_IGNORE, DEFAULT_STATE, DEFAULT_SUMMARY, Guide, PLUGIN_NAME};

const MAIN: &str = "postgrey-advisor";

/// The files the commands read and write, with what each is for.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/postgrey/whitelist_clients",
        "postgrey's whitelist as Debian ships it (a conffile: keep changes out of it).",
    ),
    (
        "/etc/postgrey/whitelist_clients.local",
        "The postmaster's additions, read by postgrey after whitelist_clients; `accept` appends here.",
    ),
    (
        DEFAULT_IGNORE,
        "Groups never to propose again, one per line, # comments; `ignore` appends here.",
    ),
    (
        DEFAULT_STATE,
        "The timer job's journal cursor and day buckets (`run --state`).",
    ),
    (
        DEFAULT_SUMMARY,
        "Written by each `run` beside its state file: the report over --window with the run's \
         --min-count, read by `check` and check_postgrey_whitelist.",
    ),
    (
        "/etc/default/postgrey-advisor",
        "Options of the systemd timer job, as POSTGREY_ADVISOR_* variables.",
    ),
];

/// Variables read besides the options' own (listed under each option).
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "NO_COLOR",
        "Set and not empty: no colour in tables, even on a terminal.",
    ),
    (
        "COLUMNS",
        "Width of tables when stdout is not a terminal (at least 80).",
    ),
    (
        "TZ",
        "Time zone of --since/--until, of traditional syslog stamps and of times in tables.",
    ),
    (
        "JOURNAL_STREAM",
        "Set by systemd when stdout is the journal: `run` then writes its report as journal entries.",
    ),
];

/// Exit statuses, per command.
fn exit_statuses(command: &str) -> &'static [(&'static str, &'static str)] {
    match command {
        "check" | PLUGIN_NAME => &[
            ("0", "OK: no more unreviewed senders than -w allows."),
            ("1", "WARNING: the count is outside the -w range."),
            ("2", "CRITICAL: the count is outside the -c range."),
            (
                "3",
                "UNKNOWN: the summary is missing, corrupt or older than --max-age, or the options are wrong.",
            ),
        ],
        "audit" => &[
            ("0", "No findings."),
            ("1", "Findings (printed as file:line: message)."),
            ("2", "Wrong options."),
            ("66", "A whitelist file cannot be read."),
        ],
        "run" => &[
            ("0", "Success."),
            (
                "1",
                "Failure (source, state or report cannot be read or written; mail not delivered).",
            ),
            ("2", "Wrong options or option values."),
            ("75", "Another run holds the state lock (try again later)."),
        ],
        "accept" | "ignore" => &[
            ("0", "Added, or already there (said on stderr)."),
            ("1", "Failure: the file cannot be read or written."),
            (
                "2",
                "Wrong options, or a name or network that cannot be written.",
            ),
        ],
        _ => &[
            ("0", "Success."),
            ("1", "Failure: a file or the journal cannot be read."),
            (
                "2",
                "Wrong options or option values (also --until not after --since).",
            ),
            ("75", "run: another run holds the state lock."),
        ],
    }
}

fn tagged(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

/// The sections clap_mangen does not render.
fn extra_sections(
    roff: &mut Roff,
    command: &clap::Command,
    name: &str,
    guide: Option<&Guide>,
    examples: &[(&str, &str)],
) {
    if let Some(guide) = guide {
        roff.control("SH", ["DEFAULTS"]);
        roff.text([roman(guide.defaults)]);
    }
    roff.control("SH", ["FILES"]);
    for (path, what) in FILES {
        tagged(roff, path, what);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    let mut variables: Vec<(String, String)> = Vec::new();
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        if let Some(env) = arg.get_env() {
            let option = arg
                .get_long()
                .map_or_else(|| arg.get_id().to_string(), |l| format!("--{l}"));
            let entry = (
                env.to_string_lossy().into_owned(),
                format!("Sets {option}."),
            );
            if !variables.contains(&entry) {
                variables.push(entry);
            }
        }
    }
    for (variable, what) in ENVIRONMENT {
        variables.push(((*variable).to_owned(), (*what).to_owned()));
    }
    for (variable, what) in &variables {
        tagged(roff, variable, what);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in exit_statuses(name) {
        tagged(roff, code, what);
    }
    if !examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        for (line, what) in examples {
            roff.control("TP", []);
            roff.text([bold(*line)]);
            roff.text([roman(*what)]);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut see_also = vec![MAIN.to_owned()];
    see_also.extend(
        cli::GUIDES
            .iter()
            .filter(|g| g.command != PLUGIN_NAME)
            .map(|g| format!("{MAIN}-{}", g.command)),
    );
    see_also.push(PLUGIN_NAME.to_owned());
    let mut refs = Vec::new();
    for page in see_also.iter().filter(|p| *p != name) {
        if !refs.is_empty() {
            refs.push(roman(", "));
        }
        refs.push(bold(page.as_str()));
        refs.push(roman("(1)"));
    }
    refs.push(roman(", "));
    refs.push(italic("postgrey"));
    refs.push(roman("(8), "));
    refs.push(italic("systemd.time"));
    refs.push(roman("(7)"));
    roff.text(refs);
}

/// One page: clap_mangen's sections, then [`extra_sections`].
fn render(
    command: clap::Command,
    page: &str,
    guide: Option<&Guide>,
    examples: &[(&str, &str)],
    out: &mut dyn Write,
) -> io::Result<()> {
    let man = Man::new(command.clone()).title(page.to_uppercase());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }
    let mut roff = Roff::default();
    let name = guide.map_or(MAIN, |g| g.command);
    extra_sections(&mut roff, &command, name, guide, examples);
    roff.to_writer(out)
}

/// Every example of every command: the main page's EXAMPLES.
fn all_examples() -> Vec<(&'static str, &'static str)> {
    cli::GUIDES
        .iter()
        .filter(|g| g.command != PLUGIN_NAME)
        .flat_map(|g| g.examples.iter().copied())
        .collect()
}

/// postgrey-advisor(1).
pub fn render_main(out: &mut dyn Write) -> io::Result<()> {
    // `help` is no page of its own.
    let mut command = cli::command().disable_help_subcommand(true);
    command.build();
    render(command, MAIN, None, &all_examples(), out)
}

/// Writes every page into `dir` and returns their paths.
pub fn write_all(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut pages: Vec<(String, Vec<u8>)> = Vec::new();
    let mut main = Vec::new();
    render_main(&mut main)?;
    pages.push((MAIN.to_owned(), main));
    let mut command = cli::command();
    command.build();
    for guide in cli::GUIDES {
        let sub = if guide.command == PLUGIN_NAME {
            let mut plugin = cli::plugin_command();
            plugin.build();
            plugin
        } else {
            match command.find_subcommand(guide.command) {
                Some(sub) => sub.clone(),
                None => continue,
            }
        };
        let page = if guide.command == PLUGIN_NAME {
            PLUGIN_NAME.to_owned()
        } else {
            format!("{MAIN}-{}", guide.command)
        };
        let mut text = Vec::new();
        render(sub, &page, Some(guide), guide.examples, &mut text)?;
        pages.push((page, text));
    }
    let mut written = Vec::new();
    for (page, text) in pages {
        let path = dir.join(format!("{page}.1"));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
