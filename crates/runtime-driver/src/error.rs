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
    #[error("cannot run {program:?}")]
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
    #[error("{action} {path:?}")]
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
    /// The pid in the runtime's pid file is not a child of this process (the container's
    /// subreaper) once the runtime's own helpers have exited: another process's pid, or a
    /// process already gone. Nothing is waited for or signalled through it.
    #[error(
        "the runtime's pid file names process {pid}, {}",
        match parent { Some(p) => format!("a child of process {p}, not of ocirun: not the container's process"), None => "which does not exist".to_string() }
    )]
    NotOurChild {
        /// The pid from the pid file.
        pid: i32,
        /// Its parent after the wait, when it still exists.
        parent: Option<i32>,
    },
    /// A stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) ended the run while there was no
    /// running container to pass it to: before the command started, or while the runtime
    /// created, started or deleted the container (that call was killed).
    #[error("interrupted by {} {during}", signal_name(*signal))]
    Interrupted {
        /// The signal number.
        signal: i32,
        /// When: `before the command started`, `during runc create`, ...
        during: String,
    },
    /// A runtime call did not end within its time and was killed.
    #[error("{runtime} {subcommand} did not end within {} s: killed", timeout.as_secs_f64())]
    RuntimeTimeout {
        /// The runtime's file name.
        runtime: String,
        /// The subcommand.
        subcommand: &'static str,
        /// How long it was given.
        timeout: std::time::Duration,
    },
    /// After `error` ended the run, the container could not be deleted (`cleanup` says why):
    /// it is left in the runtime's state, and its run record with it, for `ocirun gc`. The
    /// exit code is `error`'s.
    #[error("{}", left_message(id, error, cleanup.as_deref()))]
    Left {
        /// The container.
        id: crate::ContainerId,
        /// What ended the run.
        error: Box<DriverError>,
        /// Why the container could not be deleted, when that was another error.
        cleanup: Option<Box<DriverError>>,
    },
    /// Another live run holds the container name (`--name`).
    #[error("container name {name:?} is in use by the ocirun process {pid}")]
    NameInUse {
        /// The name.
        name: String,
        /// The pid of the run that holds it, as written in its lock file.
        pid: String,
    },
    /// A container id that the runtime and the state directories cannot take (see
    /// [`ContainerId`](crate::ContainerId)).
    #[error("invalid container id {id:?}: {reason}")]
    InvalidContainerId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `--name` that is not a valid container name (see
    /// [`ContainerName`](crate::ContainerName)).
    #[error(
        "invalid container name {0:?}: use a letter or digit, then letters, digits, '_', '.' or '-'"
    )]
    InvalidContainerName(String),
    /// A volume name that is not valid (see [`VolumeName`](crate::VolumeName)).
    #[error(
        "invalid volume name {0:?}: use a letter or digit, then letters, digits, '_', '.' or '-'"
    )]
    InvalidVolumeName(String),
    /// A cache id that is not valid (see [`CacheId`](crate::CacheId)).
    #[error("invalid cache id {id:?}: {reason}")]
    InvalidCacheId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signal name or number that is not one (an image's `StopSignal`).
    #[error("invalid signal {0:?}: use a name such as SIGTERM or a number")]
    InvalidSignal(String),
    /// The kernel's random source failed (getrandom(2)); the text is its error.
    #[error("cannot make a container id: {0}")]
    Random(String),
    /// This process's start time could not be read from `/proc/PID/stat`.
    #[error("cannot read the start time of process {pid} from /proc/{pid}/stat")]
    StartTime {
        /// The pid.
        pid: i32,
    },
    /// waitpid(2) reported a status that is neither an exit nor a death by signal.
    #[error("waitpid({pid}) reported {status}, not an exit")]
    UnexpectedWaitStatus {
        /// The pid waited for.
        pid: i32,
        /// The status, as nix shows it.
        status: String,
    },
    /// An I/O operation of the supervisor failed.
    #[error("{call}")]
    Io {
        /// What was done, e.g. `dup(stdio)`.
        call: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A default state directory cannot be used.
    #[error("state directory {path:?}: {reason}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Joining a user namespace failed (see [`crate::UserNamespace::enter`]).
    #[error("cannot join a user namespace: {step}: {reason}")]
    UserNamespace {
        /// The step, e.g. `newuidmap` or `setns(CLONE_NEWUSER)`.
        step: String,
        /// What went wrong, in the words of the tool or the kernel.
        reason: String,
    },
    /// A system call of the supervisor failed.
    #[error("{call}")]
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

impl DriverError {
    /// The exit code podman gives for this error. An interrupted run gives 128 + the signal,
    /// as if the command had been killed by it. A runtime that reports, from `create`, `start`
    /// or `run`, that the command cannot be run gives 127 or 126, the codes for a command not
    /// found or not executable (runc's `exec: "x": executable file not found in $PATH`,
    /// `exec ...: no such file or directory`, `... permission denied`; youki's and crun's words
    /// for the same); every other failure of the runtime or the supervisor is 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Runtime {
                subcommand: "create" | "start" | "run",
                message,
                ..
            } => classify_exec_failure(message).unwrap_or(125),
            Self::Interrupted { signal, .. } => 128 + signal,
            Self::Left { error, .. } => error.exit_code(),
            _ => 125,
        }
    }
}

fn left_message(
    id: &crate::ContainerId,
    error: &DriverError,
    cleanup: Option<&DriverError>,
) -> String {
    let why = cleanup.map(|c| format!(" ({c})")).unwrap_or_default();
    format!("{error}; container {id} is left in the runtime's state{why}: `ocirun gc` removes it")
}

/// `SIGINT` for 2, or `signal N` for a number nix does not name.
fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// 127 or 126 when a runtime's message says the container's command could not be executed,
/// in runc's words (`exec: "x": executable file not found in $PATH`, `exec /x: no such file or
/// directory`, `exec: "/etc": permission denied`), youki's (`executable 'x' not found in
/// $PATH`, `executable '/etc' at path '"/etc"' does not have correct permissions`) or crun's
/// (``executable file `x` not found in $PATH: No such file or directory``, `open executable:
/// Permission denied`, `open executable: Operation not permitted` for a directory). Case is
/// ignored: crun capitalises its system errors. The message must name the exec step itself
/// (`exec: `, `exec /`, `executable`, crun's `exec container process`): youki begins every message with `error in executing
/// command`, and its `Permission denied` of a cgroup directory is no exec failure.
fn classify_exec_failure(message: &str) -> Option<i32> {
    let message = message.to_lowercase();
    if !["exec: ", "exec /", "executable", "exec container process"]
        .iter()
        .any(|step| message.contains(step))
    {
        return None;
    }
    let any = |phrases: &[&str]| phrases.iter().any(|p| message.contains(p));
    if any(&[
        "executable file not found",
        "not found in $path",
        "no such file or directory",
    ]) {
        Some(127)
    } else if any(&[
        "permission denied",
        "is a directory",
        "does not have correct permissions",
        "operation not permitted",
    ]) {
        Some(126)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(subcommand: &'static str, message: &str) -> DriverError {
        DriverError::Runtime {
            runtime: "runc".into(),
            subcommand,
            message: message.into(),
        }
    }

    #[test]
    fn runtime_errors_are_classified() {
        let not_found = "runc create failed: unable to start container process: exec: \
                         \"nope\": executable file not found in $PATH";
        assert_eq!(runtime("create", not_found).exit_code(), 127);
        let no_interp = "unable to start container process: exec /bin/badscript: no such file \
                         or directory";
        assert_eq!(runtime("start", no_interp).exit_code(), 127);
        let denied = "unable to start container process: exec: \"/etc\": permission denied";
        assert_eq!(runtime("create", denied).exit_code(), 126);
        assert_eq!(
            runtime("create", "cgroup: no such file or directory").exit_code(),
            125
        );
        assert_eq!(runtime("delete", not_found).exit_code(), 125);
        assert_eq!(runtime("run", not_found).exit_code(), 127);
        assert_eq!(DriverError::RuntimeNotFound("x".into()).exit_code(), 125);
        // youki 0.7's words.
        let youki_missing = "error in executing command: failed to create container: exec \
                             process failed with error error in executing process : \
                             executable '/missing' not found in $PATH";
        assert_eq!(runtime("create", youki_missing).exit_code(), 127);
        let youki_dir = "error in executing command: failed to create container: exec process \
                         failed with error error in executing process : executable '/etc' at \
                         path '\"/etc\"' does not have correct permissions";
        assert_eq!(runtime("run", youki_dir).exit_code(), 126);
        // crun 1.8's.
        let crun_missing = "executable file `/missing` not found in $PATH: No such file or \
                            directory";
        assert_eq!(runtime("create", crun_missing).exit_code(), 127);
        assert_eq!(
            runtime("run", "open executable: Permission denied").exit_code(),
            126
        );
        assert_eq!(
            runtime("create", "open executable: Operation not permitted").exit_code(),
            126
        );
        assert_eq!(
            runtime("create", "mount `/proc`: Operation not permitted").exit_code(),
            125
        );
        // youki's words for anything that fails in a create begin with "error in executing
        // command"; without root on cgroup v1:
        let youki_cgroup = "error in executing command: failed to create container: \
                            intermediate process error cgroup error: io error: failed to create \
                            dir /sys/fs/cgroup/cpu/:youki:59b6: Permission denied (os error 13)";
        assert_eq!(runtime("run", youki_cgroup).exit_code(), 125);
        let youki_no_path = "error in executing command: failed to create container: exec \
                             process failed with error error in executing process : PATH \
                             environment variable is not set";
        assert_eq!(runtime("run", youki_no_path).exit_code(), 125);
        let interrupted = DriverError::Interrupted {
            signal: 2,
            during: "before the command started".into(),
        };
        assert_eq!(interrupted.exit_code(), 130);
        assert_eq!(
            interrupted.to_string(),
            "interrupted by SIGINT before the command started"
        );
    }
}
