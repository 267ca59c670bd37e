//! One container's whole life, for a consumer's own binary: create → start → wait → delete.

use std::os::fd::BorrowedFd;

use crate::{
    Bundle, ContainerId, ContainerIo, ContainerProcess, DriverError, ExitStatus, Runtime,
    SignalForwarder, SignalPolicy,
};

/// Runs containers to completion with a [`Runtime`].
///
/// Steps of [`Supervisor::run`], and what is undone when one fails:
/// 1. `runtime create` on the bundle, with the container's stdio as `io` says;
/// 2. a pidfd for the container process (see [`ContainerProcess`]);
/// 3. `runtime start`, unless a stop signal is pending ([`DriverError::Interrupted`]);
///    on failure the container is deleted with `--force`;
/// 4. `alongside` runs on a scoped thread with the exit fd (e.g. a stdio relay), while this
///    thread waits, handling signals as the policy says; if waiting fails the container is
///    killed so that `alongside` sees it end;
/// 5. `runtime delete`, whatever happened in 4 (with `--force` if the plain delete fails).
///
/// The calling process must be the container's subreaper ([`crate::set_child_subreaper`], or
/// [`crate::reexec`] for a process that cannot be), and no other thread may be running when
/// `run` is called: the runtime is spawned from this thread, and a [`SignalForwarder`] must be
/// installed before any thread starts.
#[derive(Debug, Clone)]
pub struct Supervisor<'r> {
    runtime: &'r Runtime,
    policy: SignalPolicy,
}

impl<'r> Supervisor<'r> {
    /// A supervisor using `runtime`, with the default [`SignalPolicy`].
    pub fn new(runtime: &'r Runtime) -> Self {
        Self {
            runtime,
            policy: SignalPolicy::default(),
        }
    }

    /// Sets the signal policy (`--sig-proxy`, `--stop-timeout`).
    pub fn policy(mut self, policy: SignalPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Runs container `id` from `bundle` (whose `config.json` is written) to its end and
    /// returns how it ended, together with what `alongside` returned.
    ///
    /// With `signals`, a stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) that arrives while the
    /// runtime creates, starts or deletes the container ends that call at once
    /// ([`DriverError::Interrupted`], exit code 128 + the signal); other signals that arrive
    /// before the command runs are delivered to it once it does.
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
        alongside: impl FnOnce(BorrowedFd<'_>) -> T + Send,
    ) -> Result<Finished<T>, DriverError> {
        let container = self
            .runtime
            .create(id, bundle, io, signals.as_deref_mut())?;
        let process = match ContainerProcess::open(container.pid()) {
            Ok(process) => process,
            Err(e) => return Err(container.remove_after(e)),
        };
        tracing::debug!(container_id = %id, pid = process.pid(), "created");
        // The created process is still the runtime's init, which catches every signal: a stop
        // signal that came before the command runs ends the run here.
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
        if let Err(e) = container.start(signals.as_deref_mut()) {
            return Err(container.remove_after(e));
        }
        let (status, result) = std::thread::scope(|scope| {
            let helper = scope.spawn(|| alongside(process.exit_fd()));
            let status = process.wait(signals.as_deref_mut(), &self.policy);
            if status.is_err() {
                process.kill_now();
            }
            (status, helper.join())
        });
        let result = match result {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let status = match status {
            Ok(status) => status,
            Err(e) => return Err(container.remove_after(e)),
        };
        let left = match container.delete(signals) {
            Ok(()) => None,
            Err(e @ DriverError::Interrupted { .. }) => {
                return Err(DriverError::Left {
                    id: id.clone(),
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
}
