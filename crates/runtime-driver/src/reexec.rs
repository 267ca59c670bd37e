//! Supervising from a re-executed child, for programs that cannot make themselves a child
//! subreaper (a long-lived service whose other children must not be reparented to it, say).
//!
//! Protocol:
//! 1. the program calls [`init`] first thing in `main`;
//! 2. [`supervise_in_child`] starts the program's own executable (`/proc/self/exe`) again with
//!    the [`Job`] as JSON in the environment variable [`REEXEC_ENV`], its stdio being the
//!    caller's (which the container inherits);
//! 3. in the child, [`init`] sees the variable, makes the child a subreaper, installs a
//!    [`SignalForwarder`], runs the job with a [`Supervisor`] and exits with the container's
//!    exit code (125 if supervision failed, with the error on stderr);
//! 4. the parent returns that exit code. Signals meant for the container are sent to the
//!    child, which forwards them.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    set_child_subreaper, Bundle, ContainerId, ContainerIo, CreateStdio, DriverError, Runtime,
    SignalForwarder, SignalPolicy, Supervisor,
};

/// The environment variable that carries a [`Job`] to the re-executed child.
pub const REEXEC_ENV: &str = "OCIRUN_DRIVER_REEXEC_JOB";

/// One container to supervise in a child process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The runtime program.
    pub runtime: PathBuf,
    /// The runtime's state root (`--root`).
    pub runtime_root: PathBuf,
    /// Global runtime flags, passed as they are (e.g. `--debug`).
    pub runtime_flags: Vec<String>,
    /// The container id.
    pub container_id: ContainerId,
    /// The bundle directory, with `config.json` written; the caller keeps and removes it.
    pub bundle: PathBuf,
    /// Forward signals to the container (`--sig-proxy`).
    pub sig_proxy: bool,
    /// Seconds after a forwarded SIGINT/SIGTERM before SIGKILL (`--stop-timeout`).
    pub stop_timeout_secs: u64,
}

/// If this process is a child started by [`supervise_in_child`], supervises its job and exits
/// with the container's exit code; otherwise returns at once. Call it first in `main`, before
/// any thread starts.
pub fn init() {
    let Some(job) = std::env::var_os(REEXEC_ENV) else {
        return;
    };
    let code = match serde_json::from_str::<Job>(&job.to_string_lossy()) {
        Ok(job) => run_job(&job).unwrap_or_else(|e| {
            eprintln!("supervisor: {e}");
            125
        }),
        Err(e) => {
            eprintln!("supervisor: {REEXEC_ENV} holds no job: {e}");
            125
        }
    };
    std::process::exit(code);
}

fn run_job(job: &Job) -> Result<i32, DriverError> {
    set_child_subreaper()?;
    let mut signals = SignalForwarder::install()?;
    let mut runtime = Runtime::from_parts(&job.runtime, &job.runtime_root);
    for flag in &job.runtime_flags {
        runtime = runtime.global_flag(flag);
    }
    let bundle = Bundle::existing(&job.bundle);
    let dup = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned().map_err(|source| DriverError::Io {
            call: "dup(stdio)".into(),
            source,
        })
    };
    let io = ContainerIo::Fds(CreateStdio {
        stdin: dup(std::io::stdin().as_fd())?,
        stdout: dup(std::io::stdout().as_fd())?,
        stderr: dup(std::io::stderr().as_fd())?,
        error_reader: None,
    });
    let policy = SignalPolicy {
        proxy: job.sig_proxy,
        stop_timeout: Duration::from_secs(job.stop_timeout_secs),
        ..SignalPolicy::default()
    };
    let finished = Supervisor::new(&runtime).policy(policy).run(
        &job.container_id,
        &bundle,
        io,
        Some(&mut signals),
        |_| (),
    )?;
    crate::reap_strays();
    if let Some(reason) = &finished.exec_error {
        eprintln!("supervisor: {reason}");
    }
    if let Some(left) = finished.left {
        eprintln!("supervisor: {left}");
    }
    Ok(finished.status.code())
}

/// Supervises `job` in a child process (this program re-executed; see the module docs) and
/// returns the container's exit code: its status, 128 + a signal, or 125 when the supervision
/// failed. The calling process needs no subreaper bit and keeps its signal dispositions.
///
/// # Errors
/// [`DriverError::Spawn`] if the child cannot be started. A child killed by a signal itself
/// gives 128 + that signal, as a shell reports it.
pub fn supervise_in_child(job: &Job) -> Result<i32, DriverError> {
    let json = serde_json::to_string(job).map_err(|e| DriverError::Spawn {
        program: PathBuf::from("/proc/self/exe"),
        source: std::io::Error::other(e),
    })?;
    let status = Command::new("/proc/self/exe")
        .env(REEXEC_ENV, json)
        .status()
        .map_err(|source| DriverError::Spawn {
            program: PathBuf::from("/proc/self/exe"),
            source,
        })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(125))
}
