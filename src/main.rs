use std::ffi::OsString;
use std::process::ExitCode;

use clap::FromArgMatches as _;

use postgrey_advisor::app;
use postgrey_advisor::cli::{self, Cli, Command, PLUGIN_NAME, PluginCli};
use postgrey_advisor::error::{self, Failure};

fn invoked_as_plugin(argv0: Option<&OsString>) -> bool {
    argv0
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|n| n == PLUGIN_NAME)
        })
        .unwrap_or(false)
}

/// The command line under either name: `check_postgrey_whitelist` takes `check`'s options.
fn parse(args: &[OsString], plugin: bool) -> Result<Command, clap::Error> {
    if plugin {
        let matches = cli::plugin_command().try_get_matches_from(args)?;
        return PluginCli::from_arg_matches(&matches).map(|p| Command::Check(p.check));
    }
    let matches = cli::command().try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches).map(|c| c.command)
}

/// Lets glibc's allocator take memory for a thread's heap 64 MiB at a time. A thread's heap
/// otherwise grows by what each allocation needs, with an `mprotect` call each time: the
/// threads that read a state and make a report allocate tens of thousands of small pieces, and
/// those calls were a twentieth of a run. Memory taken this way and never touched is no part of
/// the process's resident set.
fn tune_allocator() {
    const TOP_PAD: libc::c_int = 64 << 20;
    // SAFETY: called first thing in `main`, before any other thread exists; mallopt only sets
    // a parameter of the allocator (a failure, 0, leaves the default).
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, TOP_PAD);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let args: Vec<OsString> = std::env::args_os().collect();
    let plugin = invoked_as_plugin(args.first());
    let is_check = plugin || args.get(1).is_some_and(|a| a == "check");
    let command = match parse(&args, plugin) {
        Ok(command) => command,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                // Monitoring plugins report usage errors as UNKNOWN.
                _ if is_check => app::check::refused_arguments(&e),
                _ => error::EXIT_USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let result = match command {
        Command::Report(a) => app::report::report(&a).map(|()| 0),
        Command::Whitelist(a) => app::report::whitelist(&a).map(|()| 0),
        Command::Accept(a) => app::edit::accept(&a).map(|()| 0),
        Command::Ignore(a) => app::edit::ignore(&a).map(|()| 0),
        Command::Audit(a) => app::audit::audit(&a),
        Command::Run(a) => app::run::run(&a).map(|()| 0),
        Command::Check(a) => Ok(app::check::check(&a)),
        Command::Generate(a) => app::report::generate(&a).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = error::exit_code_of(&e);
            if let Some(Failure::Usage(_)) = e.downcast_ref::<Failure>() {
                eprintln!("postgrey-advisor: {e}");
            } else {
                eprintln!("postgrey-advisor: {e:#}");
            }
            ExitCode::from(code as u8)
        }
    }
}
