//! Errors whose exit code differs from a plain runtime failure. Everything else travels as
//! `anyhow::Error` with context and exits 1; `main` prints each error once.

/// A failure with its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The command line or an option value is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Another run holds the state lock (exit 75, EX_TEMPFAIL: the timer may try again).
    #[error("{0}")]
    Busy(String),
}

pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_BUSY: i32 = 75;

/// True when the error is a closed output pipe (`| head`): not a failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub fn exit_code_of(error: &anyhow::Error) -> i32 {
    match error.chain().find_map(|c| c.downcast_ref::<Failure>()) {
        Some(Failure::Usage(_)) => EXIT_USAGE,
        Some(Failure::Busy(_)) => EXIT_BUSY,
        None => EXIT_FAILURE,
    }
}
