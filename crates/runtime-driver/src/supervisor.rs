//! One container's whole life, for a consumer's own binary: `run --detach` (or create → start)
//! → wait → delete.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::runtime::exec_error_in_log;
use crate::{
    Bundle, Container, ContainerId, ContainerIo, ContainerProcess, DriverError, ExitStatus,
    Runtime, SignalForwarder, SignalPolicy,
};

/// Runs containers to completion with a [`Runtime`].
///
/// [`Supervisor::run`] starts the container with one runtime process, `runtime run --detach`;
/// [`Supervisor::run_in_steps`] with two, `create` and `start`, for a caller that has work to
/// do between them (before the command runs, with the container's process and its terminal
/// already there). Then, and what is undone when a step fails:
/// 1. `run --detach` (or `create`, the caller's step, `start`) on the bundle, with the
///    container's stdio as `io` says; on failure the container is deleted with `--force`;
/// 2. a pidfd for the container process (see [`ContainerProcess`]);
/// 3. with [`Supervisor::pid_file`], the container process's pid is written to that file
///    (removed again once the process has exited); `alongside` runs on a scoped thread with
///    the exit fd and what the container wrote to its stderr pipe while the runtime ran
///    ([`Started`]; e.g. a stdio relay), while this thread waits, handling signals as the
///    policy says; if waiting fails the container is killed so that `alongside` sees it end;
/// 4. `runtime delete`, whatever happened in 3 (with `--force` if the plain delete fails).
///
/// The calling process must be the container's subreaper ([`crate::set_child_subreaper`], or
/// [`crate::reexec`] for a process that cannot be), and no other thread may be running when
/// a run starts: the runtime is spawned from this thread, and a [`SignalForwarder`] must be
/// installed before any thread starts.
#[derive(Debug, Clone)]
pub struct Supervisor<'r> {
    runtime: &'r Runtime,
    policy: SignalPolicy,
    pid_file: Option<PathBuf>,
    clear_bundle: bool,
}

/// How long a runtime's own process may stay the container process's parent after `create` or
/// `run --detach` returned (see [`ContainerProcess::await_adoption`]).
const ADOPTION_TIMEOUT: Duration = Duration::from_secs(10);

/// What the closure run beside the wait gets once the container's command is started.
#[derive(Debug)]
#[non_exhaustive]
pub struct Started<'a> {
    /// Turns readable once the container's process has exited
    /// ([`ContainerProcess::exit_fd`]).
    pub exit_fd: BorrowedFd<'a>,
    /// What the container wrote to its stderr pipe (the `error_reader` of
    /// [`crate::CreateStdio`]) while `run --detach` ran, which had to be read then: it comes
    /// before what the pipe holds now. Empty after `create` and `start`.
    pub early_stderr: Vec<u8>,
}

impl<'r> Supervisor<'r> {
    /// A supervisor using `runtime`, with the default [`SignalPolicy`].
    pub fn new(runtime: &'r Runtime) -> Self {
        Self {
            runtime,
            policy: SignalPolicy::default(),
            pid_file: None,
            clear_bundle: false,
        }
    }

    /// Once the container's process has ended, removes the bundle's files
    /// ([`Bundle::clear`]) while the runtime deletes the container, which reads none of them
    /// then: the caller's removal of the bundle afterwards is quick. Should the delete fail, the
    /// bundle is empty; the container is in the runtime's state all the same.
    pub fn clear_bundle(mut self, clear: bool) -> Self {
        self.clear_bundle = clear;
        self
    }

    /// Writes the container process's pid on the host (decimal, a newline) to `path` once the
    /// command runs (podman's `--pidfile`), replacing what is there, and removes the file once
    /// the process has exited: a pid that names no process any more is not left behind.
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }

    /// Sets the signal policy (`--sig-proxy`, `--stop-timeout`).
    pub fn policy(mut self, policy: SignalPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Runs container `id` from `bundle` (whose `config.json` is written) to its end with
    /// `runtime run --detach`, and returns how it ended, together with what `alongside`
    /// returned.
    ///
    /// With `signals`, a stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) that arrives while the
    /// runtime deletes the container ends that call at once ([`DriverError::Interrupted`],
    /// exit code 128 + the signal); one that arrives during `run --detach` lets the runtime
    /// end on its own for [`crate::STOP_GRACE`] and is then forwarded to the command (a
    /// runtime still running then is killed, and the run ends: [`DriverError::Interrupted`]);
    /// other signals that arrive before the command runs are delivered to it once it does.
    ///
    /// # Errors
    /// Any [`DriverError`] of the lifecycle steps; the container is deleted in every case, or
    /// the error is [`DriverError::Left`] (the container is left in the runtime's state).
    pub fn run<T: Send>(
        &self,
        id: &ContainerId,
        bundle: &Bundle,
        io: ContainerIo,
        mut signals: Option<&mut SignalForwarder>,
        alongside: impl FnOnce(Started<'_>) -> T + Send,
    ) -> Result<Finished<T>, DriverError> {
        let (container, early_stderr) =
            self.runtime
                .run_detached(id, bundle, io, signals.as_deref_mut())?;
        let process = match self.open(&container, signals.as_deref_mut()) {
            Ok(process) => process,
            Err(e) => return Err(container.remove_after(e)),
        };
        tracing::debug!(container_id = %id, pid = process.pid(), "running");
        self.supervise(bundle, container, process, signals, |exit_fd| {
            alongside(Started {
                exit_fd,
                early_stderr,
            })
        })
    }

    /// Runs container `id` from `bundle` to its end as [`Self::run`] does, but with `runtime
    /// create`, then `before_start` (whose result `alongside` gets), then `runtime start`: for
    /// a caller that has to act before the command runs, such as setting the size of the
    /// container's terminal, whose master arrives during `create`.
    ///
    /// With `signals`, a stop signal that arrives before the command is started ends the run
    /// before it runs: one that came during `create` (which is given [`crate::STOP_GRACE`] to
    /// end on its own, else killed) or after it is taken before `start`
    /// ([`DriverError::Interrupted`], `before the command started`); one during `start` is
    /// forwarded to the command once `start` has ended, within the same grace.
    ///
    /// # Errors
    /// As [`Self::run`].
    pub fn run_in_steps<P: Send, T: Send>(
        &self,
        id: &ContainerId,
        bundle: &Bundle,
        io: ContainerIo,
        mut signals: Option<&mut SignalForwarder>,
        before_start: impl FnOnce() -> P,
        alongside: impl FnOnce(P, Started<'_>) -> T + Send,
    ) -> Result<Finished<T>, DriverError> {
        let container = self
            .runtime
            .create(id, bundle, io, signals.as_deref_mut())?;
        let process = match self.open(&container, signals.as_deref_mut()) {
            Ok(process) => process,
            Err(e) => return Err(container.remove_after(e)),
        };
        tracing::debug!(container_id = %id, pid = process.pid(), "created");
        // The created process is still the runtime's init: a stop signal that came before the
        // command runs ends the run here.
        if let Some(s) = signals.as_deref_mut() {
            match s.take_stop() {
                Ok(None) => {}
                Ok(Some(signal)) => {
                    return Err(container.remove_after(DriverError::Interrupted {
                        signal: signal as i32,
                        during: "before the command started".into(),
                    }))
                }
                Err(e) => return Err(container.remove_after(e)),
            }
        }
        let prepared = before_start();
        if let Err(e) = container.start(signals.as_deref_mut()) {
            return Err(container.remove_after(e));
        }
        self.supervise(bundle, container, process, signals, |exit_fd| {
            alongside(
                prepared,
                Started {
                    exit_fd,
                    early_stderr: Vec::new(),
                },
            )
        })
    }

    /// The container's process, told from the runtime's init by the names the runtimes give
    /// theirs and by the runtime program's file name (a runtime that forks itself as crun does),
    /// once it is a child of this process ([`ContainerProcess::await_adoption`]).
    fn open(
        &self,
        container: &Container<'_>,
        signals: Option<&mut SignalForwarder>,
    ) -> Result<ContainerProcess, DriverError> {
        let process = ContainerProcess::open(container.pid())?;
        process.await_adoption(ADOPTION_TIMEOUT, signals)?;
        let program = self
            .runtime
            .program()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The kernel keeps 15 bytes of a process name.
        let mut name = program.into_bytes();
        name.truncate(15);
        Ok(process.with_init_name(String::from_utf8_lossy(&name).into_owned()))
    }

    /// Steps 3 and 4: waits for the started container while `alongside` runs, then deletes it.
    fn supervise<T: Send>(
        &self,
        bundle: &Bundle,
        container: Container<'_>,
        process: ContainerProcess,
        mut signals: Option<&mut SignalForwarder>,
        alongside: impl FnOnce(BorrowedFd<'_>) -> T + Send,
    ) -> Result<Finished<T>, DriverError> {
        if let Some(path) = &self.pid_file {
            // Once the command runs: not the runtime's init, which it may still be.
            process.wait_for_command();
            if let Err(e) = write_pid_file(path, process.pid()) {
                process.kill_now();
                return Err(container.remove_after(e));
            }
        }
        let (status, result) = std::thread::scope(|scope| {
            let helper = scope.spawn(|| alongside(process.exit_fd()));
            let status = process.wait(signals.as_deref_mut(), &self.policy);
            if status.is_err() {
                process.kill_now();
            }
            (status, helper.join())
        });
        if let Some(path) = &self.pid_file {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove the pid file");
            }
        }
        let result = match result {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let status = match status {
            Ok(status) => status,
            Err(e) => return Err(container.remove_after(e)),
        };
        let exec_error = match status {
            ExitStatus::NotExecuted(_) => exec_error_in_log(&bundle.log_file()),
            _ => None,
        };
        let id = container.id().clone();
        let deleted = std::thread::scope(|scope| {
            let clearing = self.clear_bundle.then(|| scope.spawn(|| bundle.clear()));
            let deleted = container.delete(signals);
            if let Some(Ok(Err(e))) = clearing.map(|c| c.join()) {
                tracing::warn!(error = %e, "cannot empty the bundle");
            }
            deleted
        });
        let left = match deleted {
            Ok(()) => None,
            Err(e @ DriverError::Interrupted { .. }) => {
                return Err(DriverError::Left {
                    id,
                    error: Box::new(e),
                    cleanup: None,
                })
            }
            Err(e) => Some(e),
        };
        Ok(Finished {
            status,
            alongside: result,
            left,
            exec_error,
        })
    }
}

/// How a container's run ended ([`Supervisor::run`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Finished<T> {
    /// How the container's process ended.
    pub status: ExitStatus,
    /// What the closure run beside the wait returned.
    pub alongside: T,
    /// Why the container could not be deleted after it ended, if it could not: it is left in
    /// the runtime's state for `ocirun gc`.
    pub left: Option<DriverError>,
    /// Why the command could not be executed ([`ExitStatus::NotExecuted`]), when the runtime
    /// says so in its log rather than on the container's stderr (youki does), in runc's words:
    /// `exec /x: no such file or directory`.
    pub exec_error: Option<String>,
}

/// Writes `pid` and a newline to `path` through a temporary file beside it and a rename, so
/// that a reader never sees a partial file.
fn write_pid_file(path: &Path, pid: i32) -> Result<(), DriverError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let fail = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| DriverError::Bundle {
            action,
            path: p,
            source,
        }
    };
    std::fs::write(&tmp, format!("{pid}\n")).map_err(fail("write pid file", &tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail("write pid file", path)(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pid");
        std::fs::write(&path, "old content, longer than a pid").unwrap();
        write_pid_file(&path, 4242).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = write_pid_file(&dir.path().join("no/such/dir/pid"), 1).unwrap_err();
        assert!(err.to_string().starts_with("write pid file"), "{err}");
    }
}
