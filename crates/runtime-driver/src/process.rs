//! Waiting for the container process, event driven, and passing signals on to it.
//!
//! - The supervisor is the container process's parent: `runtime create` exits after it forks
//!   the container's init, which the kernel then reparents to the nearest child subreaper. A
//!   process that wants exit statuses calls [`set_child_subreaper`] before `create`.
//! - [`ContainerProcess::wait`] polls a pidfd (pidfd_open(2), Linux 5.3) and, when given, a
//!   [`SignalForwarder`]'s signalfd: no timer, no `runtime state` loop. When the pidfd turns
//!   readable, one `waitpid` collects the status. On a kernel without pidfd_open the process is
//!   waited for through SIGCHLD on the same signalfd and a `waitpid(WNOHANG)` per SIGCHLD, and
//!   an eventfd stands in for the pidfd in [`ContainerProcess::exit_fd`].
//! - Signals ([`SignalPolicy`], docs/ocirun-run.md "Signals"): every signal the supervisor
//!   receives through its [`SignalForwarder`] is sent to the container process. The
//!   container's init is PID 1 of its namespace, and the kernel drops a signal that PID 1 has no
//!   handler for; so a stop signal (INT, TERM, HUP, QUIT) that init does not catch (its
//!   `SigCgt` in /proc/PID/status) becomes SIGKILL, and the run ends as if killed by the
//!   original signal, while another signal that init does not catch yet is held until it does
//!   (at most 1 s: the command may still be setting up its traps), and one that came before
//!   the command ran is delivered once it runs. SIGINT and SIGQUIT, the signals of a
//!   terminal's keys, go to init's whole process group when init leads one (runc makes the
//!   container's init a session and group leader): as on a terminal, Ctrl-C reaches the
//!   command that `sh -c 'sleep 30; echo late'` waits for, not only the shell. After a
//!   forwarded INT or TERM, a container still running when the stop timeout passes gets
//!   SIGKILL (podman's `--stop-timeout`). Without proxying (`--sig-proxy=false`) no signal
//!   reaches the container, but a stop signal still ends the run: the container is killed, so
//!   that the supervisor never exits with the container still running.
//! - A container whose init exits while still the runtime's init (before it executed the
//!   command: execve failed, e.g. `exec format error` or a missing script interpreter) ends as
//!   [`ExitStatus::NotExecuted`], exit code 126 (docs/ocirun-run.md, "Exit codes": the command
//!   exists but cannot be run). The runtime's init is told by its name (`/proc/PID/comm`),
//!   which the runtimes give it until it executes the command: runc `runc:[2:INIT]` (and
//!   `runc:[1:CHILD]`, `runc:[0:PARENT]` before), youki `youki:[2:INIT]`, crun its own name
//!   `crun` (its init is a fork of itself); besides these, one name the caller gives
//!   ([`ContainerProcess::with_init_name`]: the supervisor gives the runtime program's file
//!   name, for a runtime that, like crun, forks itself).
//!   runc's and crun's inits say why on the container's stderr, youki's in its log.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
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
    /// The runtime's init exited with this non-zero status before it executed the command (see
    /// the module documentation): the command cannot be run.
    NotExecuted(i32),
}

impl ExitStatus {
    /// The exit code a shell would report: the status, 128 + the signal number, or 126 for
    /// [`ExitStatus::NotExecuted`] (as a shell reports a command it found but cannot execute).
    pub fn code(self) -> i32 {
        match self {
            Self::Exited(code) => code,
            Self::Signaled(signal) => 128 + signal,
            Self::NotExecuted(_) => 126,
        }
    }

    fn from_wait(status: WaitStatus, killed_for: Option<i32>, before_exec: bool) -> Option<Self> {
        match (status, killed_for) {
            (WaitStatus::Signaled(_, Signal::SIGKILL, _), Some(original)) => {
                Some(Self::Signaled(original))
            }
            (WaitStatus::Signaled(_, signal, _), _) => Some(Self::Signaled(signal as i32)),
            (WaitStatus::Exited(_, code), _) if before_exec && code != 0 => {
                Some(Self::NotExecuted(code))
            }
            (WaitStatus::Exited(_, code), _) => Some(Self::Exited(code)),
            _ => None,
        }
    }
}

/// What the supervisor does with the signals it receives while the container runs, and how
/// long the container may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalPolicy {
    /// Pass signals on to the container (podman's `--sig-proxy`, default true).
    pub proxy: bool,
    /// How long a container may run after a forwarded SIGINT or SIGTERM, or after the
    /// `timeout` signal, before it gets SIGKILL (podman's `--stop-timeout`, default 10 s).
    pub stop_timeout: Duration,
    /// How long the container may run at all (podman's `--timeout`); `None`: no limit. When
    /// it is up, the container gets `timeout_signal` (under the PID-1 rule: a signal its init
    /// does not catch becomes SIGKILL, and the run ends as killed by `timeout_signal`), then
    /// SIGKILL after `stop_timeout`.
    pub timeout: Option<Duration>,
    /// The signal number sent when `timeout` is up: the image's `StopSignal`, by default
    /// SIGTERM.
    pub timeout_signal: i32,
}

impl Default for SignalPolicy {
    fn default() -> Self {
        Self {
            proxy: true,
            stop_timeout: Duration::from_secs(10),
            timeout: None,
            timeout_signal: libc::SIGTERM,
        }
    }
}

/// The signal number of `name` as a stop signal is written (an image's `StopSignal`, runc's
/// `kill`): a name with or without `SIG` in any case (`SIGTERM`, `term`), `SIGRTMIN+N` and
/// `SIGRTMAX-N`, or a number from 1 to 64.
///
/// ```
/// use ocirun_runtime_driver::parse_signal;
/// assert_eq!(parse_signal("SIGTERM")?, 15);
/// assert_eq!(parse_signal("kill")?, 9);
/// assert_eq!(parse_signal("2")?, 2);
/// assert!(parse_signal("SIGFOO").is_err());
/// # Ok::<(), ocirun_runtime_driver::DriverError>(())
/// ```
///
/// # Errors
/// [`DriverError::InvalidSignal`] naming the value.
pub fn parse_signal(name: &str) -> Result<i32, DriverError> {
    let bad = || DriverError::InvalidSignal(name.to_owned());
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(bad);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let offset = |rest: &str| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        rest.parse::<i32>().ok().filter(|n| *n >= 0)
    };
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        let n = rest
            .strip_prefix('+')
            .map_or(Some(rest), Some)
            .and_then(offset);
        return n.map(|n| min + n).filter(|n| *n <= max).ok_or_else(bad);
    }
    if let Some(rest) = bare.strip_prefix("RTMAX") {
        let n = rest
            .strip_prefix('-')
            .map_or(Some(rest), Some)
            .and_then(offset);
        return n.map(|n| max - n).filter(|n| *n >= min).ok_or_else(bad);
    }
    format!("SIG{bare}")
        .parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

/// Makes the calling process the child subreaper of its descendants (prctl(2)
/// `PR_SET_CHILD_SUBREAPER`), so that the container process, orphaned when `runtime create`
/// exits, becomes its child and its exit status can be collected. A process-wide setting: the
/// `ocirun` binary calls it for its own process; a library caller decides for itself, or uses
/// [`crate::reexec`] to supervise from a child process.
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

/// Kills (SIGKILL) and reaps every child of this process, until none is left: at the end of a
/// run, ocirun's children are only what outlived the container and was reparented to it, its
/// subreaper: processes a runtime started and left running, and with `--pid host` the
/// command's own background processes, which no PID namespace ends with it (runc's `delete`
/// kills those through the container's cgroup, which a run without root has not). Returns how
/// many were killed. Call it only when no other child is wanted any more.
pub fn kill_strays() -> usize {
    let killed = crate::call::kill_adopted(&[]);
    reap_strays();
    killed
}

/// How the end of the process is noticed.
#[derive(Debug)]
enum ExitWatch {
    /// A pidfd: readable once the process exited.
    Pidfd(OwnedFd),
    /// No pidfd_open (Linux before 5.3): SIGCHLD, and an eventfd written once the status is
    /// collected.
    Sigchld(EventFd),
}

/// The container's process, held by a pidfd.
#[derive(Debug)]
pub struct ContainerProcess {
    pid: Pid,
    watch: ExitWatch,
    /// One more name of the runtime's init (see the module documentation).
    init_name: Option<String>,
}

impl ContainerProcess {
    /// Opens a pidfd for `pid` (the pid the runtime wrote to its pid file); on a kernel without
    /// pidfd_open, falls back to waiting through SIGCHLD ([`Self::open_with_sigchld`]).
    ///
    /// # Errors
    /// [`DriverError::Sys`] if pidfd_open fails for another reason (the process is gone and
    /// reaped).
    pub fn open(pid: i32) -> Result<Self, DriverError> {
        match pidfd_open(pid) {
            Ok(fd) => Ok(Self {
                pid: Pid::from_raw(pid),
                watch: ExitWatch::Pidfd(fd),
                init_name: None,
            }),
            Err(Errno::ENOSYS) => Self::open_with_sigchld(pid),
            Err(e) => Err(sys(format!("pidfd_open({pid})"))(e)),
        }
    }

    /// Watches `pid` without a pidfd: [`Self::wait`] then needs a [`SignalForwarder`] (whose
    /// signalfd also receives SIGCHLD) and calls `waitpid(pid, WNOHANG)` on each SIGCHLD. The
    /// fallback for kernels before 5.3; [`Self::open`] chooses it by itself.
    ///
    /// # Errors
    /// [`DriverError::Sys`] if the eventfd cannot be created.
    pub fn open_with_sigchld(pid: i32) -> Result<Self, DriverError> {
        let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(sys("eventfd"))?;
        Ok(Self {
            pid: Pid::from_raw(pid),
            watch: ExitWatch::Sigchld(efd),
            init_name: None,
        })
    }

    /// Adds `name` to the names (`/proc/PID/comm`, at most 15 bytes) by which the runtime's
    /// init is told from the command (see the module documentation), for a runtime whose init
    /// is not named as runc's, youki's or crun's.
    pub fn with_init_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.init_name = (!name.is_empty()).then_some(name);
        self
    }

    /// The pid.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// An fd that turns readable once the process has exited (the pidfd, or the fallback's
    /// eventfd once [`Self::wait`] collected the status). The stdio relay polls it to know when
    /// to stop waiting for output.
    pub fn exit_fd(&self) -> BorrowedFd<'_> {
        match &self.watch {
            ExitWatch::Pidfd(fd) => fd.as_fd(),
            ExitWatch::Sigchld(efd) => efd.as_fd(),
        }
    }

    /// Waits until the process is a child of this one, at most `timeout`: a runtime's `create`
    /// or `run --detach` may return while a helper process of its own, still exiting, is the
    /// container process's parent (crun's detached helper is), and the kernel reparents the
    /// process to this subreaper only when that helper has exited. Until then waitpid(2) fails
    /// with `ECHILD`, and an exit status collected by then would be lost. Polls the parent's
    /// pidfd for its exit and, with `signals`, the forwarder's signalfd, not a timer: a stop
    /// signal ends the wait at once, other signals are kept for the command.
    ///
    /// # Errors
    /// [`DriverError::NotOurChild`] when the process is gone (reaped by another) or still the
    /// child of another process after `timeout` (a runtime that wrote another process's pid to
    /// its pid file); [`DriverError::Interrupted`] for a stop signal; [`DriverError::Sys`] if
    /// poll(2) or the signalfd fails.
    pub fn await_adoption(
        &self,
        timeout: Duration,
        mut signals: Option<&mut SignalForwarder>,
    ) -> Result<(), DriverError> {
        let me = nix::unistd::getpid();
        let deadline = Instant::now() + timeout;
        let lost = |parent: Option<Pid>| DriverError::NotOurChild {
            pid: self.pid.as_raw(),
            parent: parent.map(Pid::as_raw),
        };
        loop {
            let parent = match parent_of(self.pid) {
                None => return Err(lost(None)),
                Some(parent) if parent == me => return Ok(()),
                Some(parent) => parent,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(lost(Some(parent)));
            }
            tracing::debug!(
                pid = self.pid.as_raw(),
                parent = parent.as_raw(),
                "waiting for the runtime's process to exit"
            );
            let parent_fd = pidfd_open(parent.as_raw()).ok();
            let wait = match &parent_fd {
                Some(_) => {
                    PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX)
                }
                // Gone meanwhile, or no pidfd_open: look again shortly.
                None => PollTimeout::from(1u8),
            };
            let mut fds = Vec::with_capacity(2);
            if let Some(s) = signals.as_deref() {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            if let Some(fd) = &parent_fd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, wait) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(sys("poll")(e)),
            }
            drop(fds);
            if let Some(s) = signals.as_deref_mut() {
                if let Some(signal) = s.take_stop()? {
                    return Err(DriverError::Interrupted {
                        signal: signal as i32,
                        during: "while waiting for the runtime's helper process to exit".into(),
                    });
                }
            }
        }
    }

    /// Waits, at most 2 s, until the process is no longer the runtime's init (it executed the
    /// command, or ended): right after `run --detach` or `start` returned, it may still be.
    pub fn wait_for_command(&self) {
        wait_for_exec(self.pid, self.init_name());
    }

    /// Sends SIGKILL to the process now, ignoring errors (it may be gone already). For error
    /// paths that must make sure the container ends.
    pub fn kill_now(&self) {
        let _ = kill(self.pid, Signal::SIGKILL);
    }

    /// Blocks until the process exits, handling the signals of `signals` meanwhile as `policy`
    /// says, and collects its status.
    ///
    /// # Errors
    /// [`DriverError::Sys`] if poll or waitpid fails, e.g. `ECHILD` when the process is not a
    /// child of this one (see [`set_child_subreaper`]).
    pub fn wait(
        &self,
        mut signals: Option<&mut SignalForwarder>,
        policy: &SignalPolicy,
    ) -> Result<ExitStatus, DriverError> {
        let mut killed_for = None;
        let mut kill_at: Option<Instant> = None;
        let pidfd = match &self.watch {
            ExitWatch::Pidfd(fd) => Some(fd.as_fd()),
            ExitWatch::Sigchld(_) => None,
        };
        if pidfd.is_none() && signals.is_none() {
            // Nothing to poll: a blocking wait is the wait.
            let before_exec = self.exited_before_exec(true);
            return self.collect(self.blocking_waitpid()?, killed_for, before_exec);
        }
        // Signals that came before the command ran, and those that its init does not catch
        // yet: each is sent once it does, or when its time to wait is up.
        let mut held: Vec<(i32, Instant)> = Vec::new();
        let mut time_up_at = policy.timeout.map(deadline_after);
        if let Some(s) = signals.as_deref_mut() {
            let deferred = std::mem::take(&mut s.deferred);
            let outcome = s.forward(self.pid, self.init_name(), policy, deferred)?;
            killed_for = outcome.killed_for;
            held = outcome.held;
            if outcome.stop_requested && killed_for.is_none() {
                kill_at = Some(deadline_after(policy.stop_timeout));
            }
        }
        loop {
            let mut wake = kill_at;
            if let Some(at) = time_up_at {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
            if !held.is_empty() {
                let soon = Instant::now() + HELD_POLL;
                wake = Some(wake.map_or(soon, |w| w.min(soon)));
            }
            let timeout = match wake {
                None => PollTimeout::NONE,
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now()).as_millis();
                    PollTimeout::try_from(left.max(1)).unwrap_or(PollTimeout::MAX)
                }
            };
            let (pid_ready, signal_ready) = {
                let mut fds = Vec::with_capacity(2);
                if let Some(fd) = pidfd {
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                }
                if let Some(s) = signals.as_deref() {
                    fds.push(PollFd::new(s.fd.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, timeout) {
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(sys("poll")(e)),
                    Ok(_) => {}
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                let pid_ready = pidfd.is_some() && ready(&fds[0]);
                (
                    pid_ready,
                    fds.last().is_some_and(ready) && signals.is_some(),
                )
            };
            if time_up_at.is_some_and(|at| Instant::now() >= at) {
                time_up_at = None;
                let signo = policy.timeout_signal;
                wait_for_exec(self.pid, self.init_name());
                if signo == libc::SIGKILL
                    || !catches_raw(self.pid, signo) && is_namespace_init(self.pid)
                {
                    tracing::debug!(pid = self.pid.as_raw(), signo, "time is up: SIGKILL");
                    killed_for = Some(signo);
                    self.kill_now();
                } else {
                    tracing::debug!(pid = self.pid.as_raw(), signo, "time is up");
                    send(self.pid, signo);
                    if kill_at.is_none() {
                        kill_at = Some(deadline_after(policy.stop_timeout));
                    }
                }
            }
            if kill_at.is_some_and(|at| Instant::now() >= at) {
                tracing::debug!(pid = self.pid.as_raw(), "stop timeout passed; SIGKILL");
                self.kill_now();
                kill_at = None;
            }
            held.retain(|&(signal, until)| {
                if catches_raw(self.pid, signal) || Instant::now() >= until {
                    send(self.pid, signal);
                    false
                } else {
                    true
                }
            });
            if signal_ready {
                if let Some(s) = signals.as_deref_mut() {
                    let received = s.read_all()?;
                    let child_exited = received.contains(&libc::SIGCHLD);
                    let outcome = s.forward(self.pid, self.init_name(), policy, received)?;
                    killed_for = outcome.killed_for.or(killed_for);
                    held.extend(outcome.held);
                    if outcome.stop_requested && kill_at.is_none() && killed_for.is_none() {
                        kill_at = Some(deadline_after(policy.stop_timeout));
                    }
                    if pidfd.is_none() && child_exited {
                        let before_exec = self.exited_before_exec(false);
                        if let Some(status) = self.try_waitpid()? {
                            return self.collect(status, killed_for, before_exec);
                        }
                    }
                }
            }
            if pid_ready {
                let before_exec = self.exited_before_exec(false);
                return self.collect(self.blocking_waitpid()?, killed_for, before_exec);
            }
        }
    }

    /// Whether the process has exited (waiting for it when `block`) while it was still the
    /// runtime's init, before it executed the command. The zombie is left for the waitpid that
    /// collects it (WNOWAIT), so its name in /proc is still there to read.
    fn exited_before_exec(&self, block: bool) -> bool {
        let mut flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        if !block {
            flags |= WaitPidFlag::WNOHANG;
        }
        let exited = loop {
            match waitid(Id::Pid(self.pid), flags) {
                Err(Errno::EINTR) => continue,
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => break true,
                _ => break false,
            }
        };
        exited && is_runtime_init(self.pid, self.init_name())
    }

    fn init_name(&self) -> Option<&str> {
        self.init_name.as_deref()
    }

    fn collect(
        &self,
        status: WaitStatus,
        killed_for: Option<i32>,
        before_exec: bool,
    ) -> Result<ExitStatus, DriverError> {
        if let ExitWatch::Sigchld(efd) = &self.watch {
            efd.write(1).map_err(sys("write(eventfd)"))?;
        }
        ExitStatus::from_wait(status, killed_for, before_exec).ok_or_else(|| {
            DriverError::UnexpectedWaitStatus {
                pid: self.pid.as_raw(),
                status: format!("{status:?}"),
            }
        })
    }

    fn blocking_waitpid(&self) -> Result<WaitStatus, DriverError> {
        loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys(format!("waitpid({})", self.pid))(e)),
                Ok(status) => return Ok(status),
            }
        }
    }

    fn try_waitpid(&self) -> Result<Option<WaitStatus>, DriverError> {
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => Ok(None),
            Ok(status) => Ok(Some(status)),
            Err(e) => Err(sys(format!("waitpid({})", self.pid))(e)),
        }
    }
}

/// How long a forwarded signal that the container's init does not catch yet is held for it
/// (the kernel drops a signal that PID 1 has no handler for, so a signal that arrives while the
/// command is still setting up its traps would otherwise be lost): 1 s.
const HOLD: Duration = Duration::from_secs(1);

/// How often held signals are looked at.
const HELD_POLL: Duration = Duration::from_millis(5);

/// `now + after`, or far in the future when that does not fit in an `Instant`.
fn deadline_after(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// What forwarding one batch of signals did.
#[derive(Debug, Default)]
struct Forwarded {
    /// A terminating signal that was turned into SIGKILL (the run then reports this signal).
    killed_for: Option<i32>,
    /// A SIGINT or SIGTERM was forwarded: the stop timeout starts.
    stop_requested: bool,
    /// Signals to send once the container's init catches them, or at the given time.
    held: Vec<(i32, Instant)>,
}

/// Receives the signals a supervisor handles through a signalfd instead of handlers: every
/// signal whose default action ends a process and that can be blocked (so that no signal can
/// end the supervisor while its container runs), and SIGCHLD.
///
/// - The stop signals ([`Self::STOP_SIGNALS`]: SIGINT, SIGTERM, SIGHUP, SIGQUIT) end a run that
///   has no running container yet, and are forwarded to a running one under the PID-1 rule
///   (see the module documentation).
/// - The others (SIGUSR1, SIGUSR2, SIGALRM, SIGABRT, SIGSTKFLT, SIGXCPU, SIGXFSZ, SIGVTALRM,
///   SIGPROF, SIGIO, SIGPWR and the real-time signals) are forwarded; one that arrives before the
///   command runs is kept and delivered once it does. SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV
///   and SIGSYS, which report faults of the supervisor itself, keep their default action;
///   SIGPIPE is ignored (Rust's runtime sets that).
///
/// [`SignalForwarder::install`] blocks these signals in the calling thread: call it before
/// starting any other thread, so that every thread inherits the mask and the signals reach the
/// signalfd. Dropping it restores the previous mask. Child processes spawned with
/// `std::process::Command` inherit the mask (Rust keeps it across exec): the runtime calls clear
/// it for the runtime, so that the container's processes can receive these signals.
#[derive(Debug)]
pub struct SignalForwarder {
    fd: SignalFd,
    old_mask: SigSet,
    /// Forwarded signals received before the container's command ran.
    pub(crate) deferred: Vec<i32>,
    /// A stop signal that came while a runtime call was let run to its end
    /// ([`crate::STOP_GRACE`]), for the caller to act on.
    held_stop: Option<Signal>,
}

impl SignalForwarder {
    /// The signals a user sends to stop a run.
    pub const STOP_SIGNALS: [Signal; 4] = [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ];

    /// The named signals forwarded besides the stop signals.
    pub const OTHER_SIGNALS: [Signal; 11] = [
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGABRT,
        Signal::SIGSTKFLT,
        Signal::SIGXCPU,
        Signal::SIGXFSZ,
        Signal::SIGVTALRM,
        Signal::SIGPROF,
        Signal::SIGIO,
        Signal::SIGPWR,
    ];

    /// The set this forwarder blocks and reads: the stop signals, the other forwarded ones,
    /// the real-time signals (`SIGRTMIN` to `SIGRTMAX`) and SIGCHLD.
    #[allow(unsafe_code)]
    fn set() -> SigSet {
        let mut set = SigSet::empty();
        for s in Self::STOP_SIGNALS.iter().chain(&Self::OTHER_SIGNALS) {
            set.add(*s);
        }
        set.add(Signal::SIGCHLD);
        let mut raw: libc::sigset_t = *set.as_ref();
        for signo in libc::SIGRTMIN()..=libc::SIGRTMAX() {
            // SAFETY: sigaddset writes into the sigset_t we own; the number is a valid signal.
            unsafe { libc::sigaddset(&mut raw, signo) };
        }
        // SAFETY: `raw` was initialized by nix's SigSet and only extended by sigaddset.
        unsafe { SigSet::from_sigset_t_unchecked(raw) }
    }

    /// Blocks the forwarded signals and SIGCHLD in the calling thread and opens a signalfd for
    /// them.
    ///
    /// # Errors
    /// [`DriverError::Sys`] if the mask cannot be changed or signalfd fails.
    pub fn install() -> Result<Self, DriverError> {
        let set = Self::set();
        let mut old_mask = SigSet::empty();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old_mask))
            .map_err(sys("pthread_sigmask"))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(sys("signalfd"))?;
        Ok(Self {
            fd,
            old_mask,
            deferred: Vec::new(),
            held_stop: None,
        })
    }

    /// The signalfd, readable while a signal is pending.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Every pending signal number, in the order received.
    pub(crate) fn read_all(&mut self) -> Result<Vec<i32>, DriverError> {
        let mut out = Vec::new();
        while let Some(info) = self.fd.read_signal().map_err(sys("read(signalfd)"))? {
            out.push(info.ssi_signo as i32);
        }
        Ok(out)
    }

    /// The stop signal held (see [`Self::defer_held_stop`]) or else the first one pending, if
    /// any, for a caller that has no running container to pass it to (the run ends then). The
    /// other pending signals are kept and delivered once the container's command runs
    /// ([`crate::ContainerProcess::wait`]); SIGCHLD is dropped.
    ///
    /// # Errors
    /// [`DriverError::Sys`] if the signalfd cannot be read.
    pub fn take_stop(&mut self) -> Result<Option<Signal>, DriverError> {
        let mut stop = self.held_stop.take();
        for signo in self.read_all()? {
            self.keep(signo, &mut stop);
        }
        Ok(stop)
    }

    /// Holds `signal`, a stop signal that came while a runtime call ran to its end, for
    /// [`Self::take_stop`] (the first one held counts).
    pub(crate) fn hold_stop(&mut self, signal: Signal) {
        self.held_stop.get_or_insert(signal);
    }

    /// The held stop signal, taken.
    pub(crate) fn take_held_stop(&mut self) -> Option<Signal> {
        self.held_stop.take()
    }

    /// Once the container's command runs: the held stop signal, if any, is forwarded to it as
    /// the other signals that came before it ran are ([`crate::ContainerProcess::wait`]), under
    /// the same rules as one that comes later (the PID-1 rule, `--sig-proxy=false`,
    /// `--stop-timeout`).
    pub fn defer_held_stop(&mut self) {
        if let Some(signal) = self.held_stop.take() {
            self.deferred.push(signal as i32);
        }
    }

    /// Sorts one received signal: a stop signal into `stop` (the first one counts), another
    /// forwarded one into the deferred list.
    pub(crate) fn keep(&mut self, signo: i32, stop: &mut Option<Signal>) {
        match Signal::try_from(signo) {
            Ok(Signal::SIGCHLD) => {}
            Ok(signal) if is_terminating(signal) => {
                stop.get_or_insert(signal);
            }
            _ => self.deferred.push(signo),
        }
    }

    /// Forwards `received` to the container process `pid` (whose init may also be named
    /// `init_name`) as `policy` says.
    fn forward(
        &mut self,
        pid: Pid,
        init_name: Option<&str>,
        policy: &SignalPolicy,
        received: Vec<i32>,
    ) -> Result<Forwarded, DriverError> {
        let mut done = Forwarded::default();
        for signo in received {
            if signo == libc::SIGCHLD {
                continue;
            }
            let stop = Signal::try_from(signo).ok().filter(|s| is_terminating(*s));
            if !policy.proxy {
                // Nothing reaches the container, but a stop signal still ends the run.
                if let Some(signal) = stop {
                    tracing::debug!(pid = pid.as_raw(), ?signal, "no proxy: SIGKILL");
                    done.killed_for = Some(signal as i32);
                    send(pid, libc::SIGKILL);
                }
                continue;
            }
            wait_for_exec(pid, init_name);
            match stop {
                Some(signal) if !catches_raw(pid, signo) => {
                    tracing::debug!(pid = pid.as_raw(), ?signal, "not caught by init: SIGKILL");
                    done.killed_for = Some(signo);
                    send(pid, libc::SIGKILL);
                }
                Some(signal) => {
                    tracing::debug!(pid = pid.as_raw(), ?signal, "forwarded");
                    if matches!(signal, Signal::SIGINT | Signal::SIGTERM) {
                        done.stop_requested = true;
                    }
                    // The signals of a terminal's keys reach init's whole process group, as
                    // Ctrl-C reaches the foreground job.
                    let keyboard = matches!(signal, Signal::SIGINT | Signal::SIGQUIT);
                    if keyboard && leads_own_group(pid) {
                        send(Pid::from_raw(-pid.as_raw()), signo);
                    } else {
                        send(pid, signo);
                    }
                }
                None if catches_raw(pid, signo) || !is_namespace_init(pid) => {
                    tracing::debug!(pid = pid.as_raw(), signo, "forwarded");
                    send(pid, signo);
                }
                None => {
                    tracing::debug!(pid = pid.as_raw(), signo, "held until init catches it");
                    done.held.push((signo, Instant::now() + HOLD));
                }
            }
        }
        Ok(done)
    }
}

/// Sends signal number `signo` to `pid` (a negative pid: its process group); a process that is
/// gone is no error.
fn send(pid: Pid, signo: i32) {
    // nix's Signal cannot name the real-time signals: the number goes to kill(2) as it is.
    match Errno::result(unsafe_kill(pid.as_raw(), signo)) {
        Ok(_) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pid = pid.as_raw(), signo, error = %e, "cannot send the signal"),
    }
}

#[allow(unsafe_code)]
fn unsafe_kill(pid: i32, signo: i32) -> i32 {
    // SAFETY: kill(2) takes two integers and shares no memory.
    unsafe { libc::kill(pid, signo) }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        let _ =
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}

/// The signals whose default action ends a process and that a user sends to stop a run.
pub(crate) fn is_terminating(signal: Signal) -> bool {
    SignalForwarder::STOP_SIGNALS.contains(&signal)
}

/// Waits, at most 2 s, until `pid` is no longer the runtime's init (see
/// [`is_runtime_init`]): its signal handlers are the runtime's, not the command's, so neither
/// the PID-1 rule nor a forwarded signal would mean anything yet.
fn wait_for_exec(pid: Pid, init_name: Option<&str>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while is_runtime_init(pid, init_name) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The parent of `pid` (field 4 of /proc/PID/stat); `None` when the process is gone.
pub(crate) fn parent_of(pid: Pid) -> Option<Pid> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
        .map(Pid::from_raw)
}

/// `/proc/PID/comm` without its newline; `None` when the process is gone (a zombie still has
/// one).
fn comm(pid: Pid) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end_matches('\n').to_owned())
}

/// Whether the process name `comm` is one a runtime gives its init until it executes the
/// command: runc's `runc:[N:NAME]`, youki's `youki:[N:NAME]`, crun's `crun`, or `init_name`.
pub(crate) fn is_init_name(comm: &str, init_name: Option<&str>) -> bool {
    comm.starts_with("runc:[")
        || comm.starts_with("youki:[")
        || comm == "crun"
        || init_name.is_some_and(|name| comm == name)
}

/// Whether `pid` (running or a zombie) is still the runtime's init ([`is_init_name`]).
fn is_runtime_init(pid: Pid, init_name: Option<&str>) -> bool {
    comm(pid).is_some_and(|comm| is_init_name(&comm, init_name))
}

/// Whether `pid` is the leader of its own process group, so that the group can be signalled
/// without reaching anyone outside the container.
fn leads_own_group(pid: Pid) -> bool {
    nix::unistd::getpgid(Some(pid)) == Ok(pid)
}

/// Whether `pid` is PID 1 of its own pid namespace (the last `NSpid` of /proc/PID/status):
/// the kernel then drops the signals it has no handler for.
fn is_namespace_init(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|ids| ids.split_whitespace().last())
            == Some("1")
    })
}

/// Whether `pid` has a handler for signal number `signo`: bit `signo - 1` of the `SigCgt` mask
/// in /proc/PID/status (proc(5)). A process that cannot be read counts as catching it, so that
/// the signal is forwarded as it is.
fn catches_raw(pid: Pid, signo: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_none_or(|mask| mask & (1 << (signo - 1)) != 0)
}

#[allow(unsafe_code)]
pub(crate) fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is shared.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    let fd = i32::try_from(ret).map_err(|_| Errno::EBADF)?;
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
        let pid = Pid::from_raw(1);
        let killed = WaitStatus::Signaled(pid, Signal::SIGKILL, false);
        assert_eq!(
            ExitStatus::from_wait(killed, Some(2), false),
            Some(ExitStatus::Signaled(2))
        );
        assert_eq!(
            ExitStatus::from_wait(killed, None, false),
            Some(ExitStatus::Signaled(9))
        );
        let termed = WaitStatus::Signaled(pid, Signal::SIGTERM, false);
        assert_eq!(
            ExitStatus::from_wait(termed, Some(2), false),
            Some(ExitStatus::Signaled(15))
        );
        assert_eq!(
            ExitStatus::from_wait(WaitStatus::Exited(pid, 3), Some(2), false),
            Some(ExitStatus::Exited(3))
        );
        assert_eq!(
            ExitStatus::from_wait(WaitStatus::Exited(pid, 1), None, true),
            Some(ExitStatus::NotExecuted(1))
        );
        assert_eq!(ExitStatus::NotExecuted(1).code(), 126);
        // A clean exit is the command's, whatever the process was called.
        assert_eq!(
            ExitStatus::from_wait(WaitStatus::Exited(pid, 0), None, true),
            Some(ExitStatus::Exited(0))
        );
        assert_eq!(
            ExitStatus::from_wait(WaitStatus::StillAlive, None, false),
            None
        );
    }

    #[test]
    fn an_exit_before_the_command_ran_is_told_apart() {
        // A process still named as runc names its init when it exits, as when execve fails.
        let policy = SignalPolicy::default();
        let script = "printf 'runc:[2:INIT]' >/proc/self/comm; exit 1";
        let child = Command::new("sh").args(["-c", script]).spawn().unwrap();
        let process = ContainerProcess::open(child.id() as i32).unwrap();
        let status = process.wait(None, &policy).unwrap();
        assert_eq!(status, ExitStatus::NotExecuted(1));
        assert_eq!(status.code(), 126);
        // The same exit from a process with its own name is the command's status.
        let child = Command::new("sh").args(["-c", "exit 1"]).spawn().unwrap();
        let process = ContainerProcess::open(child.id() as i32).unwrap();
        assert_eq!(process.wait(None, &policy).unwrap(), ExitStatus::Exited(1));
        // youki's and crun's inits, and one whose name was learned.
        for (name, learned) in [
            ("youki:[2:INIT]", None),
            ("crun", None),
            ("my-runtime", Some("my-runtime")),
        ] {
            let script = format!("printf '{name}' >/proc/self/comm; exit 255");
            let child = Command::new("sh").args(["-c", &script]).spawn().unwrap();
            let mut process = ContainerProcess::open(child.id() as i32).unwrap();
            if let Some(learned) = learned {
                process = process.with_init_name(learned);
            }
            assert_eq!(
                process.wait(None, &policy).unwrap(),
                ExitStatus::NotExecuted(255),
                "{name}"
            );
        }
    }

    #[test]
    fn a_process_is_awaited_until_it_is_our_child() {
        // As crun's detached helper does: the "runtime" (an intermediate sh) stays the
        // container's parent for a while after it reported the pid, and the container ends
        // first. Here this process is the parent's parent: no subreaper is needed.
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!(
            "sh -c 'sleep 0.1; exit 9' & echo $! > {}; exec sleep 0.3",
            pid_file.display()
        );
        // A subreaper of its own: a thread cannot be one, so the test runs in a child.
        crate::test_child::run_in_child(
            "process::tests::adoption_child",
            &[
                ("OCIRUN_ADOPTION_SCRIPT", script.as_ref()),
                ("OCIRUN_ADOPTION_PID_FILE", pid_file.as_os_str()),
            ],
        );
    }

    #[test]
    fn adoption_child() {
        // Runs only as the child of the test above.
        let (Some(script), Some(pid_file)) = (
            std::env::var_os("OCIRUN_ADOPTION_SCRIPT"),
            std::env::var_os("OCIRUN_ADOPTION_PID_FILE"),
        ) else {
            return;
        };
        set_child_subreaper().unwrap();
        // The intermediate runs in a grandchild so that its child is not ours until it exits.
        let mut outer = Command::new("sh")
            .arg("-c")
            .arg("sh -c \"$0\" &")
            .arg(&script)
            .spawn()
            .unwrap();
        outer.wait().unwrap();
        let pid_file = std::path::PathBuf::from(pid_file);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                break pid;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let process = ContainerProcess::open(pid).unwrap();
        assert_ne!(parent_of(Pid::from_raw(pid)), Some(nix::unistd::getpid()));
        process
            .await_adoption(Duration::from_secs(10), None)
            .unwrap();
        assert_eq!(parent_of(Pid::from_raw(pid)), Some(nix::unistd::getpid()));
        assert_eq!(
            process.wait(None, &SignalPolicy::default()).unwrap(),
            ExitStatus::Exited(9)
        );
        reap_strays();
    }

    #[test]
    fn init_names_of_the_runtimes() {
        for comm in ["runc:[2:INIT]", "runc:[1:CHILD]", "youki:[2:INIT]", "crun"] {
            assert!(is_init_name(comm, None), "{comm}");
        }
        for comm in ["sh", "crunch", "runc", "youki", "sleep"] {
            assert!(!is_init_name(comm, None), "{comm}");
        }
        assert!(is_init_name("rt", Some("rt")));
        assert!(!is_init_name("sh", Some("rt")));
    }

    #[test]
    fn waits_for_a_child_through_its_pidfd() {
        let policy = SignalPolicy::default();
        let child = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        let process = ContainerProcess::open(child.id() as i32).unwrap();
        assert_eq!(process.wait(None, &policy).unwrap(), ExitStatus::Exited(7));

        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let process = ContainerProcess::open(child.id() as i32).unwrap();
        kill(Pid::from_raw(process.pid()), Signal::SIGKILL).unwrap();
        assert_eq!(
            process.wait(None, &policy).unwrap(),
            ExitStatus::Signaled(9)
        );
    }

    #[test]
    fn waits_without_a_pidfd_by_blocking_waitpid() {
        let child = Command::new("sh").args(["-c", "exit 5"]).spawn().unwrap();
        let process = ContainerProcess::open_with_sigchld(child.id() as i32).unwrap();
        let status = process.wait(None, &SignalPolicy::default()).unwrap();
        assert_eq!(status, ExitStatus::Exited(5));
        let mut fds = [PollFd::new(process.exit_fd(), PollFlags::POLLIN)];
        assert_eq!(
            poll(&mut fds, PollTimeout::ZERO).unwrap(),
            1,
            "exit fd is readable"
        );
    }

    #[test]
    fn signal_names() {
        for (name, n) in [
            ("SIGTERM", 15),
            ("TERM", 15),
            ("sigint", 2),
            ("Kill", 9),
            ("9", 9),
            ("SIGRTMIN", libc::SIGRTMIN()),
            ("SIGRTMIN+3", libc::SIGRTMIN() + 3),
            ("RTMAX-1", libc::SIGRTMAX() - 1),
            ("SIGRTMAX", libc::SIGRTMAX()),
        ] {
            assert_eq!(parse_signal(name).unwrap(), n, "{name}");
        }
        for bad in [
            "", "0", "65", "SIGFOO", "SIG", "RTMIN+99", "RTMAX-99", "-9", "TERM ",
        ] {
            assert_eq!(
                parse_signal(bad).unwrap_err().to_string(),
                format!("invalid signal {bad:?}: use a name such as SIGTERM or a number"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_timeout_ends_the_process_with_its_signal() {
        // A process that catches SIGTERM gets it, and exits as it likes.
        let child = Command::new("sh")
            .args(["-c", "trap 'exit 3' TERM; sleep 30 & wait"])
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        for _ in 0..200 {
            if catches_raw(pid, libc::SIGTERM) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let process = ContainerProcess::open(pid.as_raw()).unwrap();
        let policy = SignalPolicy {
            timeout: Some(Duration::from_millis(200)),
            ..SignalPolicy::default()
        };
        let started = Instant::now();
        assert_eq!(process.wait(None, &policy).unwrap(), ExitStatus::Exited(3));
        assert!(started.elapsed() < Duration::from_secs(5));
        // One that does not catch SIGUSR1 dies of it (it is no namespace init here).
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let process = ContainerProcess::open(child.id() as i32).unwrap();
        let policy = SignalPolicy {
            timeout: Some(Duration::from_millis(100)),
            timeout_signal: libc::SIGUSR1,
            ..SignalPolicy::default()
        };
        assert_eq!(
            process.wait(None, &policy).unwrap(),
            ExitStatus::Signaled(libc::SIGUSR1)
        );
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
            if catches_raw(pid, libc::SIGTERM) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(catches_raw(pid, libc::SIGTERM));
        assert!(!catches_raw(pid, libc::SIGUSR2));
        kill(pid, Signal::SIGKILL).unwrap();
        let process = ContainerProcess::open(pid.as_raw()).unwrap();
        assert_eq!(
            process.wait(None, &SignalPolicy::default()).unwrap(),
            ExitStatus::Signaled(9)
        );
    }
}
