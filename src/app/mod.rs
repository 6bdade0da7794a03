//! One module per command: each wires sources, the pure core and renderers together.
//! `inputs` holds what several commands share.

pub mod audit;
pub mod check;
pub mod edit;
pub mod inputs;
pub mod report;
pub mod run;

// Kept here too: callers name `app::Failure` and the exit codes alongside the commands.
pub use crate::error::{
    EXIT_BUSY, EXIT_FAILURE, EXIT_USAGE, Failure, exit_code_of, is_broken_pipe,
};
