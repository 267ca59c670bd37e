//! The error type of the runtime driver.

use std::path::PathBuf;

/// Why driving the runtime failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The runtime program is not on `PATH`, or the path given does not exist.
    #[error("OCI runtime {0:?} not found: install runc or pass --runtime PATH")]
    RuntimeNotFound(String),
    /// A runtime subcommand could not be spawned.
    #[error("cannot run {program:?}: {source}")]
    Spawn {
        /// The runtime program.
        program: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// A runtime subcommand exited with an error; `message` is the runtime's own last error
    /// line (from its JSON `--log`, else its stderr).
    #[error("{runtime} {subcommand} failed: {message}")]
    Runtime {
        /// The runtime's file name, e.g. `runc`.
        runtime: String,
        /// The subcommand: `create`, `start`, `kill`, `delete`.
        subcommand: &'static str,
        /// The runtime's message.
        message: String,
    },
    /// The bundle directory or one of its files could not be created, written or read.
    #[error("{action} {path:?}: {source}")]
    Bundle {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// The pid file that the runtime wrote does not hold a pid.
    #[error("pid file {path:?} holds {content:?}, not a pid")]
    BadPidFile {
        /// The pid file.
        path: PathBuf,
        /// What it holds.
        content: String,
    },
    /// A system call of the supervisor failed.
    #[error("{call}: {source}")]
    Sys {
        /// The call, e.g. `pidfd_open(1234)`.
        call: String,
        /// The error.
        #[source]
        source: nix::Error,
    },
}

pub(crate) fn sys(call: impl Into<String>) -> impl FnOnce(nix::Error) -> DriverError {
    let call = call.into();
    move |source| DriverError::Sys { call, source }
}
