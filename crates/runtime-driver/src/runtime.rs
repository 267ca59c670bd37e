//! An OCI runtime with runc's command line, and the container it created.
//!
//! Lifecycle (runc(8); runtime-spec "Lifecycle"), and what is undone when a step fails:
//! 1. `create --bundle B --pid-file B/pid ID` with the container's stdio as the runtime's
//!    stdio: on failure the runtime has nothing left to delete (a leftover is deleted with
//!    `--force` all the same);
//! 2. read the pid; `start ID`: on failure, `delete --force ID`;
//! 3. wait for the pid (see [`crate::ContainerProcess`]);
//! 4. `delete ID`; [`Container::remove`] (and, as a last resort, dropping a [`Container`] that
//!    was not deleted) runs `delete --force ID`.
//!
//! Every subcommand gets the global flags `--root <state dir>` (ocirun's own, so that its
//! containers never mix with other tools') and `--log <bundle>/runtime.log --log-format json`
//! for create, whose last error line becomes the message the user sees.
//!
//! No call can hang the caller (see the `call` module): each runs in a process group of its
//! own while its output is read as it comes; `create`, `start` and `delete` given a
//! [`SignalForwarder`] end at once on a stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT), the
//! runtime's processes killed; `delete --force`, `state` and `kill` are killed when their time
//! is up ([`CLEANUP_TIMEOUT`], or what the caller gives).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::call::{call, Cut, Finished, Limits};
use crate::{Bundle, ContainerId, DriverError, SignalForwarder};

/// How long `delete --force`, `state` and `kill` may take before the runtime is killed: 10 s.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the clean-up after a stop signal may take (the `delete --force` of a container
/// that was being created or started): 1 s, so that the run ends within about a second of the
/// signal; a container left then is for `ocirun gc`.
pub const INTERRUPTED_CLEANUP_TIMEOUT: Duration = Duration::from_secs(1);

/// The runtime program and its global flags.
#[derive(Debug, Clone)]
pub struct Runtime {
    program: PathBuf,
    root: PathBuf,
    global_flags: Vec<OsString>,
}

/// How the container's process gets its stdio from `runtime create` (runc(8), "create":
/// `--console-socket`; without it, the runtime passes its own fds 0-2 on to the container).
#[derive(Debug)]
#[non_exhaustive]
pub enum ContainerIo {
    /// These fds become the runtime's, and so the container's, stdin, stdout and stderr
    /// (pipes for a relay, or the caller's own fds to inherit). Closed in this process once
    /// the runtime has them.
    Fds(CreateStdio),
    /// The process gets a terminal: the runtime connects to the Unix socket at this path and
    /// sends the PTY master over it with `SCM_RIGHTS`; its own stdio is `/dev/null`.
    ConsoleSocket(PathBuf),
}

/// Three fds for the container's stdio: a read end (or any readable fd) for stdin, writable
/// fds for stdout and stderr.
#[derive(Debug)]
pub struct CreateStdio {
    /// The container's stdin.
    pub stdin: OwnedFd,
    /// The container's stdout.
    pub stdout: OwnedFd,
    /// The container's stderr.
    pub stderr: OwnedFd,
    /// A non-blocking reader of the pipe behind `stderr`, if it is one. The runtime's stderr
    /// is the container's, so a runtime that fails without a JSON log line has written its
    /// message there: `create` reads it from here for the error. Closed once `create` returns.
    pub error_reader: Option<OwnedFd>,
}

impl Runtime {
    /// Finds the runtime: `name_or_path` with a `/` is used as it is; a bare name is searched in
    /// `search_path` (a `PATH`-style list). `root` is the runtime's state directory (`--root`).
    ///
    /// # Errors
    /// [`DriverError::RuntimeNotFound`] naming what was looked for.
    pub fn discover(
        name_or_path: &str,
        search_path: &str,
        root: impl Into<PathBuf>,
    ) -> Result<Self, DriverError> {
        let not_found = || DriverError::RuntimeNotFound(name_or_path.to_owned());
        let program = if name_or_path.contains('/') {
            let p = PathBuf::from(name_or_path);
            if !is_executable(&p) {
                return Err(not_found());
            }
            p
        } else {
            search_path
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| Path::new(d).join(name_or_path))
                .find(|p| is_executable(p))
                .ok_or_else(not_found)?
        };
        Ok(Self {
            program,
            root: root.into(),
            global_flags: Vec::new(),
        })
    }

    /// A runtime from its parts, as a [`crate::RunRecord`] stores them: no lookup.
    pub fn from_parts(program: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            root: root.into(),
            global_flags: Vec::new(),
        }
    }

    /// The global flags added with [`Self::global_flag`] and [`Self::runtime_flag`].
    pub fn global_flags(&self) -> impl Iterator<Item = &std::ffi::OsStr> {
        self.global_flags.iter().map(OsString::as_os_str)
    }

    /// Adds a global flag, passed as it is before every subcommand.
    pub fn global_flag(mut self, flag: impl Into<OsString>) -> Self {
        self.global_flags.push(flag.into());
        self
    }

    /// Adds a runtime flag as podman's `--runtime-flag` takes it: `debug` is passed as
    /// `--debug`, `log-level=warn` as `--log-level=warn`. `root=DIR` replaces the state root
    /// given to [`Self::discover`] instead of adding a second `--root`.
    pub fn runtime_flag(mut self, flag: &str) -> Self {
        let flag = flag.trim_start_matches('-');
        match flag.strip_prefix("root=") {
            Some(root) => self.root = PathBuf::from(root),
            None => self.global_flags.push(format!("--{flag}").into()),
        }
        self
    }

    /// The runtime program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The runtime's state directory (`--root`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn name(&self) -> String {
        self.program
            .file_name()
            .unwrap_or(self.program.as_os_str())
            .to_string_lossy()
            .into_owned()
    }

    fn command(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--root").arg(&self.root).args(&self.global_flags);
        cmd.arg(subcommand);
        cmd
    }

    /// Runs `runtime create` for container `id` on `bundle`, the container's stdio set up as
    /// `io` says, and returns the container, whose pid the runtime wrote to
    /// [`Bundle::pid_file`]. The runtime runs in the bundle directory (so relative paths in the
    /// spec's mounts and a relative `--console-socket` resolve there) with an empty signal mask.
    /// With `signals`, a stop signal ends the call at once (the runtime's processes are
    /// killed, what it created is deleted); other signals are kept there for the container.
    ///
    /// # Errors
    /// [`DriverError::Spawn`], [`DriverError::Runtime`] with the runtime's own message,
    /// [`DriverError::Bundle`] / [`DriverError::BadPidFile`] for the pid file,
    /// [`DriverError::Interrupted`]; [`DriverError::Left`] when, after one of these, what the
    /// runtime created could not be deleted.
    pub fn create<'r>(
        &'r self,
        id: &ContainerId,
        bundle: &Bundle,
        io: ContainerIo,
        signals: Option<&mut SignalForwarder>,
    ) -> Result<Container<'r>, DriverError> {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(bundle.log_file())
            .arg("--log-format")
            .arg("json")
            .args(&self.global_flags)
            .arg("create")
            .arg("--bundle")
            .arg(bundle.path())
            .arg("--pid-file")
            .arg(bundle.pid_file());
        let mut error_reader = None;
        match io {
            ContainerIo::Fds(stdio) => {
                cmd.stdin(Stdio::from(stdio.stdin))
                    .stdout(Stdio::from(stdio.stdout))
                    .stderr(Stdio::from(stdio.stderr));
                error_reader = stdio.error_reader;
            }
            ContainerIo::ConsoleSocket(socket) => {
                cmd.arg("--console-socket")
                    .arg(socket)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
            }
        }
        cmd.arg(id.as_str()).current_dir(bundle.path());
        tracing::debug!(container_id = %id, bundle = %bundle.path().display(), "runtime create");
        let ended = call(
            &self.program,
            cmd,
            error_reader,
            Limits {
                signals,
                timeout: None,
            },
        );
        // From here on the runtime may hold state for `id`: every error path deletes it.
        let mut container = Container {
            runtime: self,
            id: id.clone(),
            pid: 0,
            deleted: false,
        };
        let done = match ended {
            Err(e) => return Err(container.remove_after(e)),
            Ok(Err(cut)) => return Err(container.remove_after(self.cut_error("create", cut))),
            Ok(Ok(done)) => done,
        };
        if !done.status.success() {
            let message = last_log_error(&bundle.log_file())
                .unwrap_or_else(|| last_line(&String::from_utf8_lossy(&done.stderr), done.status));
            return Err(container.remove_after(self.error("create", message)));
        }
        if !done.stderr.is_empty() {
            tracing::debug!(
                output = %String::from_utf8_lossy(&done.stderr),
                "the runtime wrote while creating the container"
            );
        }
        let pid_file = bundle.pid_file();
        let content = match std::fs::read_to_string(&pid_file) {
            Ok(content) => content,
            Err(source) => {
                return Err(container.remove_after(DriverError::Bundle {
                    action: "read pid file",
                    path: pid_file,
                    source,
                }))
            }
        };
        match content.trim().parse().ok().filter(|pid: &i32| *pid > 0) {
            Some(pid) => container.pid = pid,
            None => {
                return Err(container.remove_after(DriverError::BadPidFile {
                    path: pid_file,
                    content,
                }))
            }
        }
        Ok(container)
    }

    /// Runs a subcommand with no stdin, reading its stdout and stderr: `Ok` with its stdout
    /// when it succeeds, the runtime's last stderr line in the error otherwise.
    fn run(
        &self,
        subcommand: &'static str,
        args: &[&str],
        limits: Limits<'_>,
    ) -> Result<Vec<u8>, DriverError> {
        let mut cmd = self.command(subcommand);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let done: Finished = match call(&self.program, cmd, None, limits)? {
            Ok(done) => done,
            Err(cut) => return Err(self.cut_error(subcommand, cut)),
        };
        if done.status.success() {
            return Ok(done.stdout);
        }
        let stderr = String::from_utf8_lossy(&done.stderr);
        Err(self.error(subcommand, last_line(&stderr, done.status)))
    }

    /// The error of a call that was cut short.
    fn cut_error(&self, subcommand: &'static str, cut: Cut) -> DriverError {
        match cut {
            Cut::Interrupted(signal) => DriverError::Interrupted {
                signal: signal as i32,
                during: format!("during {} {subcommand}", self.name()),
            },
            Cut::TimedOut(timeout) => DriverError::RuntimeTimeout {
                runtime: self.name(),
                subcommand,
                timeout,
            },
        }
    }

    /// `runtime state ID`: the container's state as the runtime reports it (runtime-spec
    /// "State": `status` is creating, created, running or stopped). Not used to wait: the
    /// supervisor waits on a pidfd. The runtime is killed after [`CLEANUP_TIMEOUT`].
    ///
    /// # Errors
    /// [`DriverError::Runtime`] with the runtime's message (e.g. the container does not exist),
    /// or when its output is not a state object; [`DriverError::RuntimeTimeout`].
    pub fn state(&self, id: &ContainerId) -> Result<oci_spec::runtime::State, DriverError> {
        let stdout = self.run(
            "state",
            &[id.as_str()],
            Limits {
                signals: None,
                timeout: Some(CLEANUP_TIMEOUT),
            },
        )?;
        serde_json::from_slice(&stdout)
            .map_err(|e| self.error("state", format!("unreadable state: {e}")))
    }

    /// `runtime delete --force ID`, killed after `timeout`. A container the runtime does not
    /// know is not an error.
    ///
    /// # Errors
    /// [`DriverError::Runtime`] with the runtime's message; [`DriverError::RuntimeTimeout`].
    pub fn force_delete(&self, id: &ContainerId, timeout: Duration) -> Result<(), DriverError> {
        let limits = Limits {
            signals: None,
            timeout: Some(timeout),
        };
        match self.run("delete", &["--force", id.as_str()], limits) {
            Err(DriverError::Runtime { message, .. })
                if message.contains("does not exist") || message.contains("not found") =>
            {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    fn error(&self, subcommand: &'static str, message: String) -> DriverError {
        DriverError::Runtime {
            runtime: self.name(),
            subcommand,
            message,
        }
    }
}

/// A container that the runtime has created. [`Container::delete`] or [`Container::remove`]
/// end it; dropping it without them runs `runtime delete --force` (with
/// [`CLEANUP_TIMEOUT`]), so no error path leaves it in the runtime's state unless the runtime
/// fails to delete it.
#[derive(Debug)]
#[must_use = "dropping a container deletes it"]
pub struct Container<'r> {
    runtime: &'r Runtime,
    id: ContainerId,
    pid: i32,
    deleted: bool,
}

impl Container<'_> {
    /// The container id.
    pub fn id(&self) -> &ContainerId {
        &self.id
    }

    /// The container process's pid on the host, from the runtime's pid file.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `runtime start`: the container process runs the command. With `signals`, a stop
    /// signal ends the call at once (the runtime is killed; the container is then for
    /// [`Self::remove_after`]).
    ///
    /// # Errors
    /// [`DriverError::Runtime`] with the runtime's message; [`DriverError::Interrupted`].
    pub fn start(&self, signals: Option<&mut SignalForwarder>) -> Result<(), DriverError> {
        let limits = Limits {
            signals,
            timeout: None,
        };
        self.runtime
            .run("start", &[self.id.as_str()], limits)
            .map(drop)
    }

    /// `runtime kill ID SIGNAL`, `signal` being a name or number as runc takes it (`KILL`, `9`),
    /// killed after [`CLEANUP_TIMEOUT`].
    ///
    /// # Errors
    /// [`DriverError::Runtime`] with the runtime's message; [`DriverError::RuntimeTimeout`].
    pub fn kill(&self, signal: &str) -> Result<(), DriverError> {
        let limits = Limits {
            signals: None,
            timeout: Some(CLEANUP_TIMEOUT),
        };
        self.runtime
            .run("kill", &[self.id.as_str(), signal], limits)
            .map(drop)
    }

    /// `runtime delete ID` (after the container stopped); if that fails, `delete --force`.
    /// With `signals`, a stop signal ends the call at once: the container stays in the
    /// runtime's state.
    ///
    /// # Errors
    /// [`DriverError::Runtime`] when even the forced delete fails;
    /// [`DriverError::Interrupted`]; [`DriverError::RuntimeTimeout`].
    pub fn delete(mut self, signals: Option<&mut SignalForwarder>) -> Result<(), DriverError> {
        self.deleted = true;
        let limits = Limits {
            signals,
            timeout: Some(CLEANUP_TIMEOUT),
        };
        match self.runtime.run("delete", &[self.id.as_str()], limits) {
            Ok(_) => Ok(()),
            Err(e @ (DriverError::Interrupted { .. } | DriverError::RuntimeTimeout { .. })) => {
                Err(e)
            }
            Err(_) => self.runtime.force_delete(&self.id, CLEANUP_TIMEOUT),
        }
    }

    /// `runtime delete --force ID` after `error` ended the run: returns `error`, or
    /// [`DriverError::Left`] with it when the container could not be deleted. After a stop
    /// signal the delete may take [`INTERRUPTED_CLEANUP_TIMEOUT`], else [`CLEANUP_TIMEOUT`].
    pub fn remove_after(mut self, error: DriverError) -> DriverError {
        self.deleted = true;
        let timeout = if matches!(error, DriverError::Interrupted { .. }) {
            INTERRUPTED_CLEANUP_TIMEOUT
        } else {
            CLEANUP_TIMEOUT
        };
        match self.runtime.force_delete(&self.id, timeout) {
            Ok(()) => error,
            Err(cleanup) => DriverError::Left {
                id: self.id.clone(),
                error: Box::new(error),
                cleanup: Some(Box::new(cleanup)),
            },
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if !self.deleted {
            if let Err(e) = self.runtime.force_delete(&self.id, CLEANUP_TIMEOUT) {
                tracing::warn!(container_id = %self.id, error = %e, "cannot delete container");
            }
        }
    }
}

/// The longest message taken from a runtime's stderr, in bytes: the end of a longer line.
const MESSAGE_MAX: usize = 2048;

/// The last non-empty line of a runtime's stderr (its last [`MESSAGE_MAX`] bytes), or its exit
/// status when it printed nothing.
fn last_line(stderr: &str, status: std::process::ExitStatus) -> String {
    let Some(line) = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()) else {
        return format!("exited with {status}");
    };
    if line.len() <= MESSAGE_MAX {
        return line.to_owned();
    }
    let mut start = line.len() - MESSAGE_MAX;
    while !line.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &line[start..])
}

/// The `msg` of the last `"level":"error"` line of a runtime's JSON log (runc's `--log-format
/// json`: one object per line with `level`, `msg`, `time`).
pub(crate) fn last_log_error(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let level = value.get("level")?.as_str()?;
        matches!(level, "error" | "fatal")
            .then(|| value.get("msg")?.as_str().map(str::to_owned))
            .flatten()
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_by_name_and_path() {
        let rt = Runtime::discover("sh", "/nonexistent:/bin:/usr/bin", "/run/x").unwrap();
        assert!(rt.program().ends_with("sh"));
        assert_eq!(rt.root(), Path::new("/run/x"));
        let err = Runtime::discover("no-such-runtime", "/bin", "/run/x").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"OCI runtime "no-such-runtime" not found: install runc or pass --runtime PATH"#
        );
        assert!(Runtime::discover("/bin/sh", "", "/r").is_ok());
        assert!(Runtime::discover("/etc", "", "/r").is_err());
    }

    #[test]
    fn runtime_flags_become_global_flags() {
        let rt = Runtime::discover("sh", "/bin:/usr/bin", "/run/x")
            .unwrap()
            .runtime_flag("debug")
            .runtime_flag("--log-level=warn")
            .runtime_flag("root=/tmp/r");
        assert_eq!(rt.root(), Path::new("/tmp/r"));
        let cmd = rt.command("list");
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["--root", "/tmp/r", "--debug", "--log-level=warn", "list"]
        );
    }

    #[test]
    fn last_error_of_a_json_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(
            &log,
            "{\"level\":\"warning\",\"msg\":\"w\"}\nnot json\n\
             {\"level\":\"error\",\"msg\":\"first\"}\n{\"level\":\"error\",\"msg\":\"last\"}\n\
             {\"level\":\"info\",\"msg\":\"i\"}\n",
        )
        .unwrap();
        assert_eq!(last_log_error(&log).as_deref(), Some("last"));
        assert_eq!(last_log_error(&dir.path().join("missing")), None);
    }
}
