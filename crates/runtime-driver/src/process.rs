//! Waiting for the container process, event driven, and passing signals on to it.
//!
//! - The supervisor is the container process's parent: `runtime create` exits after it forks
//!   the container's init, which the kernel then reparents to the nearest child subreaper. A
//!   process that wants exit statuses calls [`set_child_subreaper`] before `create`.
//! - [`ContainerProcess::wait`] polls a pidfd (pidfd_open(2), Linux 5.3) and, when given, a
//!   [`SignalForwarder`]'s signalfd: no timer, no `runtime state` loop. When the pidfd turns
//!   readable, one `waitpid` collects the status.
//! - Signals: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 received by the supervisor
//!   are sent to the container process. The container's init is PID 1 of its namespace, and the
//!   kernel drops a signal that PID 1 has no handler for; so a terminating signal (INT, TERM,
//!   HUP, QUIT) that init does not catch (its `SigCgt` in /proc/PID/status) becomes SIGKILL, and
//!   the run ends as if killed by the original signal (BEHAVIOR.md "Stdio", Signals).

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::sys;
use crate::DriverError;

/// How the container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this status (0-255).
    Exited(i32),
    /// It was killed by this signal number.
    Signaled(i32),
}

impl ExitStatus {
    /// The exit code a shell would report: the status, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            Self::Exited(code) => code,
            Self::Signaled(signal) => 128 + signal,
        }
    }
}

/// Makes the calling process the child subreaper of its descendants (prctl(2)
/// `PR_SET_CHILD_SUBREAPER`), so that the container process, orphaned when `runtime create`
/// exits, becomes its child and its exit status can be collected. A process-wide setting: the
/// `ocirun` binary calls it for its own process; a library caller decides for itself.
///
/// # Errors
/// [`DriverError::Sys`] if prctl fails.
pub fn set_child_subreaper() -> Result<(), DriverError> {
    nix::sys::prctl::set_child_subreaper(true).map_err(sys("prctl(PR_SET_CHILD_SUBREAPER)"))
}

/// Reaps every child that has already exited (processes that the container left behind and
/// that were reparented to this subreaper). Returns how many were reaped. Call it only when no
/// other child's status is wanted any more: it reaps any child.
pub fn reap_strays() -> usize {
    let mut reaped = 0;
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
        reaped += 1;
    }
    reaped
}

/// The container's process, held by a pidfd.
#[derive(Debug)]
pub struct ContainerProcess {
    pid: Pid,
    pidfd: OwnedFd,
}

impl ContainerProcess {
    /// Opens a pidfd for `pid` (the pid the runtime wrote to its pid file).
    ///
    /// # Errors
    /// [`DriverError::Sys`] if pidfd_open fails (the process is gone and reaped, or the kernel
    /// is older than 5.3).
    pub fn open(pid: i32) -> Result<Self, DriverError> {
        Ok(Self {
            pid: Pid::from_raw(pid),
            pidfd: pidfd_open(pid)?,
        })
    }

    /// The pid.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// The pidfd: readable once the process has exited. The stdio relay polls it to know when
    /// to stop waiting for output.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Sends SIGKILL to the process now, ignoring errors (it may be gone already). For error
    /// paths that must make sure the container ends.
    pub fn kill_now(&self) {
        let _ = kill(self.pid, Signal::SIGKILL);
    }

    /// Blocks until the process exits, forwarding signals through `signals` meanwhile, and
    /// collects its status.
    ///
    /// # Errors
    /// [`DriverError::Sys`] if poll or waitpid fails, e.g. `ECHILD` when the process is not a
    /// child of this one (see [`set_child_subreaper`]).
    pub fn wait(
        &self,
        mut signals: Option<&mut SignalForwarder>,
    ) -> Result<ExitStatus, DriverError> {
        let mut killed_for = None;
        loop {
            let (pid_ready, signal_ready) = {
                let mut fds = vec![PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
                if let Some(s) = signals.as_deref() {
                    fds.push(PollFd::new(s.fd.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(sys("poll")(e)),
                    Ok(_) => {}
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), fds.get(1).is_some_and(ready))
            };
            if signal_ready {
                if let Some(s) = signals.as_deref_mut() {
                    if let Some(sig) = s.forward_pending(self.pid)? {
                        killed_for = Some(sig);
                    }
                }
            }
            if pid_ready {
                break;
            }
        }
        let status = loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys(format!("waitpid({})", self.pid))(e)),
                Ok(status) => break status,
            }
        };
        Ok(match (status, killed_for) {
            (WaitStatus::Signaled(_, Signal::SIGKILL, _), Some(original)) => {
                ExitStatus::Signaled(original)
            }
            (WaitStatus::Signaled(_, signal, _), _) => ExitStatus::Signaled(signal as i32),
            (WaitStatus::Exited(_, code), _) => ExitStatus::Exited(code),
            (other, _) => unreachable!("waitpid without WUNTRACED/WCONTINUED gave {other:?}"),
        })
    }
}

/// Receives the forwarded signals through a signalfd instead of handlers.
///
/// [`SignalForwarder::install`] blocks the forwarded signals in the calling thread: call it
/// before starting any other thread, so that every thread inherits the mask and the signals
/// reach the signalfd. Dropping it restores the previous mask. Child processes spawned with
/// `std::process::Command` start with an empty mask.
#[derive(Debug)]
pub struct SignalForwarder {
    fd: SignalFd,
    old_mask: SigSet,
}

impl SignalForwarder {
    /// The signals that are forwarded (podman's `--sig-proxy` set).
    pub const SIGNALS: [Signal; 6] = [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ];

    /// Blocks [`Self::SIGNALS`] in the calling thread and opens a signalfd for them.
    ///
    /// # Errors
    /// [`DriverError::Sys`] if the mask cannot be changed or signalfd fails.
    pub fn install() -> Result<Self, DriverError> {
        let mut set = SigSet::empty();
        for s in Self::SIGNALS {
            set.add(s);
        }
        let mut old_mask = SigSet::empty();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old_mask))
            .map_err(sys("pthread_sigmask"))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(sys("signalfd"))?;
        Ok(Self { fd, old_mask })
    }

    /// Forwards every pending signal to `pid`. Returns the terminating signal that had to be
    /// turned into SIGKILL because the process does not catch it, if any.
    fn forward_pending(&mut self, pid: Pid) -> Result<Option<i32>, DriverError> {
        let mut killed_for = None;
        while let Some(info) = self.fd.read_signal().map_err(sys("read(signalfd)"))? {
            let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            let terminating = matches!(
                signal,
                Signal::SIGINT | Signal::SIGTERM | Signal::SIGHUP | Signal::SIGQUIT
            );
            let sent = if terminating && !catches(pid, signal) {
                killed_for = Some(signal as i32);
                Signal::SIGKILL
            } else {
                signal
            };
            tracing::debug!(pid = pid.as_raw(), ?signal, ?sent, "forwarding signal");
            match kill(pid, sent) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => return Err(sys(format!("kill({pid}, {sent})"))(e)),
            }
        }
        Ok(killed_for)
    }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        let _ =
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}

/// Whether `pid` has a handler for `signal`: bit `signal - 1` of the `SigCgt` mask in
/// /proc/PID/status (proc(5)). A process that cannot be read counts as catching it, so that the
/// signal is forwarded as it is.
fn catches(pid: Pid, signal: Signal) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_none_or(|mask| mask & (1 << (signal as i32 - 1)) != 0)
}

#[allow(unsafe_code)]
fn pidfd_open(pid: i32) -> Result<OwnedFd, DriverError> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is shared.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(sys(format!("pidfd_open({pid})"))(Errno::last()));
    }
    let fd = i32::try_from(ret).map_err(|_| sys(format!("pidfd_open({pid})"))(Errno::EBADF))?;
    // SAFETY: the kernel just returned this fd to us (close-on-exec by pidfd_open's definition);
    // nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
// The children are reaped by ContainerProcess::wait, which clippy cannot see.
#[allow(clippy::zombie_processes)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn exit_codes() {
        assert_eq!(ExitStatus::Exited(42).code(), 42);
        assert_eq!(ExitStatus::Signaled(9).code(), 137);
    }

    #[test]
    fn waits_for_a_child_through_its_pidfd() {
        let child = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        let process = ContainerProcess::open(child.id() as i32).unwrap();
        assert_eq!(process.wait(None).unwrap(), ExitStatus::Exited(7));

        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let process = ContainerProcess::open(child.id() as i32).unwrap();
        kill(Pid::from_raw(process.pid()), Signal::SIGKILL).unwrap();
        assert_eq!(process.wait(None).unwrap(), ExitStatus::Signaled(9));
    }

    #[test]
    fn sig_cgt_is_read() {
        let child = Command::new("sh")
            .args(["-c", "trap 'exit 3' TERM; sleep 30 & wait"])
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        // Wait until the trap is installed.
        for _ in 0..200 {
            if catches(pid, Signal::SIGTERM) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(catches(pid, Signal::SIGTERM));
        assert!(!catches(pid, Signal::SIGUSR2));
        kill(pid, Signal::SIGKILL).unwrap();
        let process = ContainerProcess::open(pid.as_raw()).unwrap();
        assert_eq!(process.wait(None).unwrap(), ExitStatus::Signaled(9));
    }
}
