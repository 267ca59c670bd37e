//! One runtime subcommand, run so that nothing can hang the supervisor.
//!
//! A call ([`call`]):
//! 1. spawns the runtime in a process group of its own, without a fork of the supervisor;
//!    `create` and `run` with an empty signal mask (the supervisor blocks the signals it reads
//!    from a signalfd, and the runtime passes its mask on to the container) and SIGKILL as
//!    their parent-death signal ([`spawn_launch`]): they never outlive the supervisor (killed
//!    with SIGKILL, say), so that no container is made after the supervisor is gone and its
//!    run's clean-up has been done. The other calls make no container and need neither
//!    (posix_spawn(3); a `delete` that goes on after the supervisor died completes);
//! 2. polls, until the runtime exits: its pidfd, the supervisor's signalfd, and the pipes it
//!    writes to (its stdout and stderr when the caller captures them, and for `create` and
//!    `run` the container's stderr pipe, which is the runtime's stderr then), reading them as
//!    they fill so that a runtime that writes a lot never blocks on a full pipe ([`Keep`] says
//!    what is kept of each);
//! 3. on a stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT), or when its time is up, kills the
//!    runtime's whole process group (the runtime, and a `runc init` it started) with SIGKILL,
//!    reaps the runtime, then kills what of the runtime's still runs as this subreaper's
//!    child, and says so ([`Cut`]): crun's `create` and `run --detach` leave the work to a
//!    helper in a session of its own, which the kernel reparents here and which would go on to
//!    make the container after it was deleted; other signals are kept for the container.
//!    A call with a stop grace ([`Limits::stop_grace`]: `create`, `run --detach`, `start`)
//!    is given that long after the stop signal to end on its own, and is killed only if it has
//!    not (or at a second stop signal): a runtime killed while it writes its state can leave
//!    a container that it cannot delete afterwards (youki 0.7 rewrites its `state.json` in
//!    place, and an empty one makes every later `youki delete` fail). A call that ends within
//!    the grace returns as in 4, the stop signal held in the [`SignalForwarder`] for the
//!    caller ([`SignalForwarder::take_stop`], or [`SignalForwarder::defer_held_stop`] to hand
//!    it to the container's command);
//! 4. otherwise returns the exit status, all of stdout, and the end of stderr; a runtime that
//!    failed before it did anything, in a way that is known to pass ([`failed_to_start`]), is
//!    run again, at most [`START_ATTEMPTS`] times in all.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use crate::error::sys;
use crate::spawn::{spawn_launch, LaunchStdio, Launched};
use crate::{DriverError, SignalForwarder};

/// How much of a runtime's stderr is kept: the end of it, where the error is.
const STDERR_TAIL: usize = 64 * 1024;

/// How much of a runtime's stdout is kept (`state` prints a small JSON object).
const STDOUT_MAX: usize = 4 << 20;

/// How much of the container's stderr [`Keep::Early`] reads, in order, before it leaves the
/// pipe alone.
pub(crate) const EARLY_MAX: usize = 1 << 20;

/// How long a runtime may go on running after [`Keep::Early`] has left a full pipe alone
/// before the pipe is read again, keeping only its end: the runtime itself is then the writer
/// that waits for room.
pub(crate) const EARLY_STALL: Duration = Duration::from_secs(2);

/// What is kept of a pipe read while the runtime runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// All of it, up to [`STDOUT_MAX`] (a subcommand's stdout).
    All,
    /// Its last [`STDERR_TAIL`] bytes (a runtime's stderr, where its error is).
    Tail,
    /// All of it, in order, up to [`EARLY_MAX`]: the container's stderr while `run --detach`
    /// runs, which holds what the container's command writes once it runs, and the runtime's
    /// error if it fails. Past the bound the pipe is left alone, so that the command waits for
    /// the relay; if the runtime still runs [`EARLY_STALL`] later (a runtime that writes more
    /// than that itself), the pipe is read again and only its end kept
    /// ([`Early::complete`] is then false).
    Early,
}

/// What [`Keep::Early`] read.
#[derive(Debug, Default)]
pub(crate) struct Early {
    /// The bytes, in order (with a gap when not complete).
    pub(crate) bytes: Vec<u8>,
    /// Whether nothing was dropped.
    pub(crate) complete: bool,
}

/// What may cut a call short.
#[derive(Debug, Default)]
pub(crate) struct Limits<'s> {
    /// A stop signal read from here ends the call ([`Cut::Interrupted`]); other signals are
    /// kept in it for the container.
    pub(crate) signals: Option<&'s mut SignalForwarder>,
    /// The call is killed after this long ([`Cut::TimedOut`]).
    pub(crate) timeout: Option<Duration>,
    /// `create` or `run`, the calls that make a container, from a supervisor that starts no
    /// other process meanwhile, with the runtime's stdio: the runtime gets an empty signal
    /// mask and the parent-death signal ([`spawn_launch`]; the other calls are spawned
    /// through posix_spawn(3), with the stdio set on their `Command`), and when the call is
    /// cut short, what became this process's child during it (what of the runtime outlived
    /// it and was reparented here) is killed too.
    pub(crate) launch: Option<LaunchStdio>,
    /// After a stop signal, how long the runtime may go on to end on its own before it is
    /// killed ([`crate::STOP_GRACE`] for the calls that make or start a container); `None`:
    /// killed at once.
    pub(crate) stop_grace: Option<Duration>,
}

/// A call that did not run to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// A stop signal arrived; the runtime was killed.
    Interrupted(Signal),
    /// The time was up; the runtime was killed.
    TimedOut(Duration),
}

/// How a call that ran to its end ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    /// The last [`STDERR_TAIL`] bytes of stderr (and of the drained pipe).
    pub(crate) stderr: Vec<u8>,
    /// What a [`Keep::Early`] drain read.
    pub(crate) early: Option<Early>,
}

/// A pipe read as it fills.
struct Drain {
    fd: OwnedFd,
    buf: Vec<u8>,
    keep: Keep,
    open: bool,
    /// [`Keep::Early`]: when the pipe was left alone, its bound reached.
    full_since: Option<Instant>,
    /// [`Keep::Early`] after its stall: the bytes before this are kept, of the rest the tail.
    kept_head: Option<usize>,
}

impl Drain {
    fn new(fd: OwnedFd, keep: Keep) -> Result<Self, DriverError> {
        let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(sys("fcntl(F_GETFL)"))?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&fd, FcntlArg::F_SETFL(flags)).map_err(sys("fcntl(F_SETFL)"))?;
        Ok(Self {
            fd,
            buf: Vec::new(),
            keep,
            open: true,
            full_since: None,
            kept_head: None,
        })
    }

    /// Whether the pipe is to be polled and read now.
    fn wanted(&self) -> bool {
        self.open && self.full_since.is_none()
    }

    /// After [`EARLY_STALL`] with a full pipe left alone, reads it again keeping only the end.
    fn after_stall(&mut self, now: Instant) {
        if self.full_since.is_some_and(|at| now >= at + EARLY_STALL) {
            tracing::debug!(
                kept = self.buf.len(),
                "the runtime still runs with the container's stderr full: keeping its end only"
            );
            self.full_since = None;
            self.kept_head = Some(self.buf.len());
        }
    }

    /// Reads what the pipe holds now (for [`Keep::Early`], up to its bound).
    fn read_now(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        while self.wanted() {
            let room = match (self.keep, self.kept_head) {
                (Keep::Early, None) => EARLY_MAX - self.buf.len(),
                _ => chunk.len(),
            };
            if room == 0 {
                self.full_since = Some(Instant::now());
                break;
            }
            let want = room.min(chunk.len());
            match nix::unistd::read(&self.fd, &mut chunk[..want]) {
                Ok(0) => {
                    self.open = false;
                    break;
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    self.trim();
                }
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }

    /// Keeps the buffer within its bound.
    fn trim(&mut self) {
        let head = match (self.keep, self.kept_head) {
            (Keep::All, _) => {
                self.buf.truncate(STDOUT_MAX);
                return;
            }
            (Keep::Early, None) => return,
            (Keep::Tail, _) => 0,
            (Keep::Early, Some(head)) => head,
        };
        if self.buf.len() - head > 2 * STDERR_TAIL {
            self.buf.drain(head..self.buf.len() - STDERR_TAIL);
        }
    }

    fn into_bytes(mut self) -> Vec<u8> {
        if self.keep == Keep::Tail && self.buf.len() > STDERR_TAIL {
            self.buf.drain(..self.buf.len() - STDERR_TAIL);
        }
        self.buf
    }
}

/// How many times a runtime that [`failed_to_start`] is run in all.
pub(crate) const START_ATTEMPTS: usize = 3;

/// Whether a runtime that exited with a failure did so before it did anything, in a way that
/// passes: youki 0.7 first copies its own binary into a sealed memfd and executes that (the
/// `pentacle` crate, against CVE-2019-5736), and the kernel refuses the seal now and then
/// with EBUSY while pages of the copy are still pinned; youki then exits 1 with `Error:
/// failed to seal /proc/self/exe` and `Caused by: Device or resource busy (os error 16)` on
/// its stderr, before it has read its arguments. `stderr` is what it wrote there (the end).
pub(crate) fn failed_to_start(status: ExitStatus, stderr: &[u8]) -> bool {
    let text = String::from_utf8_lossy(stderr);
    !status.success()
        && text.contains("failed to seal /proc/self/exe")
        && text.contains("Device or resource busy")
}

/// Runs `cmd` (whose stdio the caller set; a stdout or stderr of `Stdio::piped()` is read and
/// returned) as the module documentation says. `drain` is one more pipe to read while the
/// runtime runs, kept as its [`Keep`] says (with [`Keep::Tail`], its end is kept with
/// stderr; with [`Keep::Early`], in [`Finished::early`], its end with stderr too).
///
/// # Errors
/// [`DriverError::Spawn`] naming `program` if the runtime cannot be started;
/// [`DriverError::Sys`] if polling or waiting fails.
pub(crate) fn call(
    program: &std::path::Path,
    mut cmd: Command,
    mut drain: Option<(OwnedFd, Keep)>,
    mut limits: Limits<'_>,
) -> Result<Result<Finished, Cut>, DriverError> {
    let copy_error = |source| DriverError::Spawn {
        program: program.to_path_buf(),
        source,
    };
    for attempt in 1.. {
        let last = attempt >= START_ATTEMPTS;
        // The same descriptors again for the next attempt.
        let (this_drain, this_launch) = if last {
            (drain.take(), limits.launch.take())
        } else {
            let drain = drain
                .as_ref()
                .map(|(fd, keep)| Ok((fd.try_clone()?, *keep)));
            let launch = limits.launch.as_ref().map(LaunchStdio::try_clone);
            (
                drain.transpose().map_err(copy_error)?,
                launch.transpose().map_err(copy_error)?,
            )
        };
        let attempt_limits = Limits {
            signals: limits.signals.as_deref_mut(),
            timeout: limits.timeout,
            launch: this_launch,
            stop_grace: limits.stop_grace,
        };
        let ended = call_once(program, &mut cmd, this_drain, attempt_limits)?;
        match ended {
            Ok(done) if !last && failed_to_start(done.status, &done.stderr) => {
                if let Some(signal) = limits
                    .signals
                    .as_deref_mut()
                    .and_then(|s| s.take_held_stop())
                {
                    return Ok(Err(Cut::Interrupted(signal)));
                }
                tracing::debug!(
                    attempt,
                    stderr = %String::from_utf8_lossy(&done.stderr),
                    "the runtime failed before it started: running it again"
                );
            }
            ended => return Ok(ended),
        }
    }
    unreachable!("the last attempt returns")
}

/// One attempt of [`call`].
fn call_once(
    program: &std::path::Path,
    cmd: &mut Command,
    drain: Option<(OwnedFd, Keep)>,
    mut limits: Limits<'_>,
) -> Result<Result<Finished, Cut>, DriverError> {
    let launch = limits.launch.is_some();
    let children_before = if launch { children() } else { Vec::new() };
    let spawned = match limits.launch.take() {
        Some(stdio) => spawn_launch(cmd, stdio).map(Child::Launched),
        None => {
            cmd.process_group(0);
            cmd.spawn().map(Child::Std)
        }
    };
    let mut child = spawned.map_err(|source| DriverError::Spawn {
        program: program.to_path_buf(),
        source,
    })?;
    // From here on the child must be reaped on every path.
    let pid = child.id() as i32;
    let (stdout, stderr) = child.take_pipes();
    let pipes = (|| -> Result<_, DriverError> {
        Ok((
            stdout.map(|p| Drain::new(p, Keep::All)).transpose()?,
            stderr.map(|p| Drain::new(p, Keep::Tail)).transpose()?,
            drain.map(|(fd, keep)| Drain::new(fd, keep)).transpose()?,
        ))
    })();
    let (mut out, mut err, mut extra) = match pipes {
        Ok(pipes) => pipes,
        Err(e) => {
            kill_group(pid);
            let _ = child.wait();
            return Err(e);
        }
    };
    let pidfd = crate::process::pidfd_open(pid).ok();
    let timed_out_at = limits.timeout.map(|t| Instant::now() + t);
    // A stop signal given its grace: the signal, and when the grace is over.
    let mut stopping: Option<(Signal, Instant)> = None;
    let cut = loop {
        let now = Instant::now();
        if let Some(d) = extra.as_mut() {
            d.after_stall(now);
        }
        // A full early pipe left alone is looked at again when its stall is over.
        let stall_at = extra
            .as_ref()
            .and_then(|d| d.full_since)
            .map(|at| at + EARLY_STALL);
        let deadline = [timed_out_at, stall_at, stopping.map(|(_, at)| at)]
            .into_iter()
            .flatten()
            .min();
        let timeout = match (deadline, &pidfd) {
            (Some(at), _) => {
                let left = at.saturating_duration_since(Instant::now());
                Some(if pidfd.is_some() {
                    left
                } else {
                    left.min(Duration::from_millis(10))
                })
            }
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_millis(10)),
        };
        let timeout = match timeout {
            None => PollTimeout::NONE,
            Some(t) => PollTimeout::try_from(t.as_millis().max(1)).unwrap_or(PollTimeout::MAX),
        };
        let mut watched: Vec<BorrowedFd<'_>> = Vec::new();
        if let Some(fd) = &pidfd {
            watched.push(fd.as_fd());
        }
        let signal_at = limits.signals.as_deref().map(|s| {
            watched.push(s.as_fd());
            watched.len() - 1
        });
        let pipes: Vec<&Drain> = [&out, &err, &extra]
            .into_iter()
            .flatten()
            .filter(|d| d.wanted())
            .collect();
        let first_pipe = watched.len();
        watched.extend(pipes.iter().map(|d| d.fd.as_fd()));
        let mut fds: Vec<PollFd<'_>> = watched
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                kill_group(pid);
                let _ = child.wait();
                return Err(sys("poll")(e));
            }
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        let pipes_ready = (first_pipe..fds.len()).any(ready);
        let signal_ready = signal_at.is_some_and(ready);
        drop(fds);
        if pipes_ready {
            for d in [&mut out, &mut err, &mut extra].into_iter().flatten() {
                d.read_now();
            }
        }
        if signal_ready {
            if let Some(s) = limits.signals.as_deref_mut() {
                let mut stop = None;
                for signo in s.read_all()? {
                    s.keep(signo, &mut stop);
                }
                match (stop, stopping, limits.stop_grace) {
                    (None, ..) => {}
                    (Some(signal), None, Some(grace)) => {
                        tracing::debug!(
                            pid,
                            ?signal,
                            ?grace,
                            "stop signal: the runtime may end first"
                        );
                        stopping = Some((signal, Instant::now() + grace));
                    }
                    (Some(_), Some((first, _)), _) => break Some(Cut::Interrupted(first)),
                    (Some(signal), None, None) => break Some(Cut::Interrupted(signal)),
                }
            }
        }
        if child
            .try_wait()
            .map_err(|e| DriverError::Spawn {
                program: program.to_path_buf(),
                source: e,
            })?
            .is_some()
        {
            break None;
        }
        if let Some((signal, at)) = stopping {
            if Instant::now() >= at {
                break Some(Cut::Interrupted(signal));
            }
        }
        if timed_out_at.is_some_and(|at| Instant::now() >= at) {
            break Some(Cut::TimedOut(limits.timeout.unwrap_or_default()));
        }
    };
    if let Some(cut) = cut {
        tracing::debug!(
            pid,
            ?cut,
            "runtime call cut short: killing its process group"
        );
        kill_group(pid);
        let _ = child.wait();
        if launch {
            kill_adopted(&children_before);
        }
        return Ok(Err(cut));
    }
    let status = child.wait().map_err(|source| DriverError::Spawn {
        program: program.to_path_buf(),
        source,
    })?;
    if let (Some((signal, _)), Some(s)) = (stopping, limits.signals.as_deref_mut()) {
        s.hold_stop(signal);
    }
    // What the runtime wrote just before it exited (not from a full early pipe, which the
    // relay reads next).
    for d in [&mut out, &mut err, &mut extra].into_iter().flatten() {
        d.read_now();
    }
    let mut stderr = err.map(Drain::into_bytes).unwrap_or_default();
    let mut early = None;
    if let Some(extra) = extra {
        let complete = extra.kept_head.is_none();
        let keep = extra.keep;
        let bytes = extra.into_bytes();
        let end = bytes.len().saturating_sub(STDERR_TAIL);
        stderr.extend_from_slice(&bytes[end..]);
        if keep == Keep::Early {
            early = Some(Early { bytes, complete });
        }
    }
    Ok(Ok(Finished {
        status,
        stdout: out.map(Drain::into_bytes).unwrap_or_default(),
        stderr,
        early,
    }))
}

/// The pids of this process's children (`/proc/self/task/TID/children` of every thread, else a
/// scan of `/proc` for processes whose parent this is).
fn children() -> Vec<i32> {
    let me = nix::unistd::getpid();
    let mut found = Vec::new();
    let tasks = std::fs::read_dir("/proc/self/task").map(|d| {
        d.flatten()
            .map(|t| t.path().join("children"))
            .collect::<Vec<_>>()
    });
    let mut listed = false;
    for file in tasks.unwrap_or_default() {
        if let Ok(text) = std::fs::read_to_string(file) {
            listed = true;
            found.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    if listed {
        return found;
    }
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    found.extend(
        proc_dir
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| crate::process::parent_of(nix::unistd::Pid::from_raw(*pid)) == Some(me)),
    );
    found
}

/// After a runtime was killed: SIGKILL to every child of this process that was not one
/// before the call (`before`), and reaps it, until none is left; what the runtime started
/// that outlived it has been reparented to this subreaper. A process that is gone already
/// (or a zombie) is only reaped. Bounded: at most 50 rounds. Returns how many were killed.
pub(crate) fn kill_adopted(before: &[i32]) -> usize {
    let mut killed = 0;
    for _ in 0..50 {
        let adopted: Vec<i32> = children()
            .into_iter()
            .filter(|pid| !before.contains(pid))
            .collect();
        if adopted.is_empty() {
            break;
        }
        for pid in adopted {
            let pid = nix::unistd::Pid::from_raw(pid);
            tracing::debug!(pid = pid.as_raw(), "killing what the runtime left running");
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            killed += 1;
        }
    }
    killed
}

/// SIGKILL to the runtime's process group (the runtime is its leader).
fn kill_group(pid: i32) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
}

/// A runtime started by [`call`].
enum Child {
    /// Through `std::process::Command` (posix_spawn(3)).
    Std(std::process::Child),
    /// Through [`spawn_launch`].
    Launched(Launched),
}

impl Child {
    fn id(&self) -> u32 {
        match self {
            Self::Std(c) => c.id(),
            Self::Launched(c) => c.id(),
        }
    }

    /// The read ends of the runtime's stdout and stderr, where they are pipes.
    fn take_pipes(&mut self) -> (Option<OwnedFd>, Option<OwnedFd>) {
        match self {
            Self::Std(c) => (
                c.stdout.take().map(OwnedFd::from),
                c.stderr.take().map(OwnedFd::from),
            ),
            Self::Launched(c) => (None, c.stderr.take()),
        }
    }

    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match self {
            Self::Std(c) => c.try_wait(),
            Self::Launched(c) => c.try_wait(),
        }
    }

    fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Self::Std(c) => c.wait(),
            Self::Launched(c) => c.wait(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    /// /dev/null in, /dev/null out, stderr a pipe.
    fn null_stdio() -> LaunchStdio {
        let null = || std::fs::File::open("/dev/null").unwrap().into();
        LaunchStdio {
            stdin: null(),
            stdout: null(),
            stderr: None,
        }
    }

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    #[test]
    fn output_and_status_come_back() {
        let done = call(
            "sh".as_ref(),
            sh("echo out; echo err >&2; exit 3"),
            None,
            Limits::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.stdout, b"out\n");
        assert_eq!(done.stderr, b"err\n");
    }

    #[test]
    fn a_runtime_that_writes_megabytes_to_stderr_does_not_block() {
        let script = "head -c 3000000 /dev/zero | tr '\\0' x >&2; echo last line >&2; exit 1";
        let done = call("sh".as_ref(), sh(script), None, Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(done.status.code(), Some(1));
        assert!(done.stderr.len() <= STDERR_TAIL);
        assert!(done.stderr.ends_with(b"xxxlast line\n"));
    }

    /// A pipe: (read end, write end).
    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe().unwrap()
    }

    fn seq(n: u32) -> Vec<u8> {
        (1..=n)
            .map(|i| format!("{i}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn early_output_is_kept_whole_and_in_order() {
        let (read, write) = pipe();
        let mut cmd = sh("seq 1 20000 >&2; exit 0");
        cmd.stderr(Stdio::from(write));
        let done = call(
            "sh".as_ref(),
            cmd,
            Some((read, Keep::Early)),
            Limits::default(),
        )
        .unwrap()
        .unwrap();
        let early = done.early.expect("early output");
        assert!(early.complete);
        assert_eq!(early.bytes, seq(20000));
    }

    #[test]
    fn a_full_early_pipe_is_left_to_its_reader() {
        // The "runtime" exits at once; what it started goes on writing, more than the bound.
        let (read, write) = pipe();
        let rest = read.try_clone().unwrap();
        let mut cmd = sh("(seq 1 400000 >&2 &); exit 0");
        cmd.stderr(Stdio::from(write));
        let done = call(
            "sh".as_ref(),
            cmd,
            Some((read, Keep::Early)),
            Limits::default(),
        )
        .unwrap()
        .unwrap();
        let early = done.early.expect("early output");
        assert!(early.complete);
        assert!(early.bytes.len() <= EARLY_MAX);
        let mut all = early.bytes;
        // The drain made the shared description non-blocking; this reader blocks.
        fcntl(&rest, FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        std::io::Read::read_to_end(&mut std::fs::File::from(rest), &mut all).unwrap();
        assert_eq!(all, seq(400000), "nothing lost, nothing reordered");
    }

    #[test]
    fn a_runtime_that_floods_the_early_pipe_itself_does_not_block() {
        let (read, write) = pipe();
        let mut cmd =
            sh("head -c 3000000 /dev/zero | tr '\\0' x >&2; echo >&2; echo last line >&2; exit 1");
        cmd.stderr(Stdio::from(write));
        let started = Instant::now();
        let done = call(
            "sh".as_ref(),
            cmd,
            Some((read, Keep::Early)),
            Limits::default(),
        )
        .unwrap()
        .unwrap();
        assert!(started.elapsed() < EARLY_STALL + Duration::from_secs(5));
        assert_eq!(done.status.code(), Some(1));
        let early = done.early.expect("early output");
        assert!(!early.complete);
        assert!(early.bytes.len() <= EARLY_MAX + 2 * STDERR_TAIL);
        assert!(done.stderr.ends_with(b"xxx\nlast line\n"));
    }

    #[test]
    fn the_runtime_dies_with_its_caller() {
        // The "supervisor" is a thread that spawns the runtime and ends: its death is the
        // parent's death for the runtime.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 30", marker.display());
        let mut runtime =
            std::thread::spawn(move || spawn_launch(&sh(&script), null_stdio()).unwrap())
                .join()
                .unwrap();
        let pid = runtime.id();
        let started = Instant::now();
        let status = loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                break stat;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the runtime outlived its caller"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.is_empty() || status.contains(") Z "));
        assert!(
            runtime.wait().unwrap().code().is_none(),
            "killed by a signal"
        );
    }

    #[test]
    fn what_a_killed_runtime_left_in_a_session_of_its_own_is_killed_too() {
        // As crun's create does: the work goes on in a grandchild in a session of its own,
        // out of the runtime's process group. This process is no subreaper, so the test runs
        // in a child that is one.
        crate::test_child::run_in_child(
            "call::tests::detached_helper_child",
            &[("OCIRUN_DETACHED_HELPER_TEST", "1".as_ref())],
        );
    }

    #[test]
    fn detached_helper_child() {
        if std::env::var_os("OCIRUN_DETACHED_HELPER_TEST").is_none() {
            return;
        }
        nix::sys::prctl::set_child_subreaper(true).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("helper");
        let script = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 30' & sleep 30",
            marker.display()
        );
        let cmd = sh(&script);
        let runner = std::thread::spawn(move || {
            call(
                "sh".as_ref(),
                cmd,
                None,
                Limits {
                    signals: None,
                    timeout: Some(Duration::from_millis(500)),
                    launch: Some(null_stdio()),
                    stop_grace: None,
                },
            )
            .unwrap()
            .unwrap_err()
        });
        let cut = runner.join().unwrap();
        assert_eq!(cut, Cut::TimedOut(Duration::from_millis(500)));
        let helper: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let state = std::fs::read_to_string(format!("/proc/{helper}/stat")).unwrap_or_default();
        assert!(state.is_empty(), "the helper still runs: {state}");
    }

    #[test]
    fn a_hung_runtime_and_its_children_are_killed_when_the_time_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child");
        let script = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let started = Instant::now();
        let cut = call(
            "sh".as_ref(),
            sh(&script),
            None,
            Limits {
                signals: None,
                timeout: Some(Duration::from_millis(300)),
                launch: None,
                stop_grace: None,
            },
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(cut, Cut::TimedOut(Duration::from_millis(300)));
        assert!(started.elapsed() < Duration::from_secs(5));
        let child: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The sleep was in the runtime's process group: SIGKILL reached it, and it is gone (or
        // a zombie of init) as soon as the kernel has delivered the signal.
        let gone = |state: &str| state.is_empty() || state.contains(") Z ");
        let mut state = String::new();
        for _ in 0..200 {
            state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            if gone(&state) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            gone(&state),
            "the child of the hung runtime still runs 2 s after the kill: {state}"
        );
    }

    /// Runs `script` in `dir` as a launch call with a [`SignalForwarder`] and `grace`, and
    /// sends the signals `send` to this thread, 100 ms apart, once the script has created its
    /// file `ready`: how the call ended, the forwarder, and how long the call took.
    fn launch_with_signals(
        dir: &std::path::Path,
        script: &str,
        grace: Duration,
        send: &'static [Signal],
    ) -> (Result<Finished, Cut>, SignalForwarder, Duration) {
        let mut signals = SignalForwarder::install().unwrap();
        let me = nix::sys::pthread::pthread_self();
        let ready = dir.join("ready");
        let signaller = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !ready.exists() {
                assert!(Instant::now() < deadline, "the script never got ready");
                std::thread::sleep(Duration::from_millis(5));
            }
            for (i, signal) in send.iter().enumerate() {
                if i > 0 {
                    std::thread::sleep(Duration::from_millis(100));
                }
                nix::sys::pthread::pthread_kill(me, *signal).unwrap();
            }
        });
        let started = Instant::now();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]).current_dir(dir);
        let ended = call(
            "sh".as_ref(),
            cmd,
            None,
            Limits {
                signals: Some(&mut signals),
                timeout: Some(Duration::from_secs(60)),
                launch: Some(null_stdio()),
                stop_grace: Some(grace),
            },
        )
        .unwrap();
        let took = started.elapsed();
        signaller.join().unwrap();
        (ended, signals, took)
    }

    #[test]
    fn a_stop_signal_during_a_launch() {
        // A call cut short kills every new child of this process (what the runtime left):
        // the calls run in a child process of their own, away from the other tests' children.
        crate::test_child::run_in_child(
            "call::tests::stop_grace_child",
            &[("OCIRUN_STOP_GRACE_TEST", "1".as_ref())],
        );
    }

    #[test]
    fn stop_grace_child() {
        if std::env::var_os("OCIRUN_STOP_GRACE_TEST").is_none() {
            return;
        }
        // A launch that ends within its grace runs to its end, and the signal is held.
        let dir = tempfile::tempdir().unwrap();
        let (ended, mut signals, _) = launch_with_signals(
            dir.path(),
            "touch ready; sleep 0.3; touch done; exit 3",
            Duration::from_secs(20),
            &[Signal::SIGTERM],
        );
        let done = ended.unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert!(dir.path().join("done").exists());
        assert_eq!(signals.take_stop().unwrap(), Some(Signal::SIGTERM));
        assert_eq!(signals.take_stop().unwrap(), None);
        // Handed on to the container's command instead: among the signals it gets once it
        // runs.
        signals.hold_stop(Signal::SIGINT);
        signals.defer_held_stop();
        assert_eq!(signals.deferred, vec![libc::SIGINT]);
        assert_eq!(signals.take_stop().unwrap(), None);
        drop(signals);

        // One still running when its grace is over is killed.
        let dir = tempfile::tempdir().unwrap();
        let (ended, mut signals, took) = launch_with_signals(
            dir.path(),
            "touch ready; sleep 30; touch done",
            Duration::from_millis(300),
            &[Signal::SIGTERM],
        );
        assert_eq!(ended.unwrap_err(), Cut::Interrupted(Signal::SIGTERM));
        assert!(took >= Duration::from_millis(300), "killed after {took:?}");
        assert!(took < Duration::from_secs(20), "killed after {took:?}");
        assert!(!dir.path().join("done").exists());
        assert_eq!(
            signals.take_stop().unwrap(),
            None,
            "the signal is the cut's"
        );
        drop(signals);

        // A second stop signal kills it at once; the first one counts.
        let dir = tempfile::tempdir().unwrap();
        let (ended, _, took) = launch_with_signals(
            dir.path(),
            "touch ready; sleep 30; touch done",
            Duration::from_secs(60),
            &[Signal::SIGTERM, Signal::SIGINT],
        );
        assert_eq!(ended.unwrap_err(), Cut::Interrupted(Signal::SIGTERM));
        assert!(took < Duration::from_secs(20), "killed after {took:?}");
        assert!(!dir.path().join("done").exists());
    }

    /// What youki 0.7 writes to its stderr when the kernel refuses to seal its copy of itself.
    const SEAL_FAILURE: &str =
        "Error: failed to seal /proc/self/exe\n\nCaused by:\n    Device or resource busy (os error 16)";

    /// A script that fails as youki does when it cannot seal itself in its first `failures`
    /// attempts (counted in `DIR/attempts`), then writes `out` to stdout and `err` to stderr.
    fn failing_to_start(dir: &std::path::Path, failures: usize, out: &str, err: &str) -> String {
        let count = dir.join("attempts");
        format!(
            "echo x >> {count}; if [ $(wc -l < {count}) -le {failures} ]; then \
             printf '{SEAL_FAILURE}\\n' >&2; exit 1; fi; echo {out}; echo {err} >&2",
            count = count.display()
        )
    }

    fn attempts(dir: &std::path::Path) -> usize {
        std::fs::read_to_string(dir.join("attempts"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    #[test]
    fn a_runtime_that_failed_to_seal_itself_is_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let script = failing_to_start(dir.path(), START_ATTEMPTS - 1, "ran", "warning");
        let done = call("sh".as_ref(), sh(&script), None, Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(done.status.code(), Some(0));
        assert_eq!(done.stdout, b"ran\n");
        assert_eq!(done.stderr, b"warning\n");
        assert_eq!(attempts(dir.path()), START_ATTEMPTS);
    }

    #[test]
    fn a_runtime_that_never_seals_itself_fails_after_the_last_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let script = failing_to_start(dir.path(), usize::MAX >> 1, "ran", "warning");
        let done = call("sh".as_ref(), sh(&script), None, Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(done.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&done.stderr),
            format!("{SEAL_FAILURE}\n")
        );
        assert_eq!(attempts(dir.path()), START_ATTEMPTS);

        // Another failure is the runtime's answer: not run again.
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("attempts");
        let script = format!(
            "echo x >> {}; echo 'Error: failed to seal /proc/self/exe' >&2; \
             echo 'Caused by: Operation not permitted (os error 1)' >&2; exit 1",
            count.display()
        );
        let done = call("sh".as_ref(), sh(&script), None, Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(done.status.code(), Some(1));
        assert_eq!(attempts(dir.path()), 1);
    }

    #[test]
    fn a_launch_run_again_keeps_only_what_its_last_attempt_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let (read, write) = pipe();
        let script = failing_to_start(dir.path(), 1, "ran", "from-the-container");
        let null = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .unwrap()
                .into()
        };
        let done = call(
            "sh".as_ref(),
            sh(&script),
            Some((read, Keep::Early)),
            Limits {
                launch: Some(LaunchStdio {
                    stdin: null(),
                    stdout: null(),
                    stderr: Some(write),
                }),
                ..Limits::default()
            },
        )
        .unwrap()
        .unwrap();
        let early = done.early.expect("early output");
        assert_eq!(
            done.status.code(),
            Some(0),
            "{:?}",
            String::from_utf8_lossy(&early.bytes)
        );
        assert!(early.complete);
        assert_eq!(
            String::from_utf8_lossy(&early.bytes),
            "from-the-container\n"
        );
        assert_eq!(attempts(dir.path()), 2);
    }
}
