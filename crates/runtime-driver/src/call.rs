//! One runtime subcommand, run so that nothing can hang the supervisor.
//!
//! A call ([`call`]):
//! 1. spawns the runtime in a process group of its own, with an empty signal mask (the
//!    supervisor blocks the signals it reads from a signalfd, and the runtime passes its mask
//!    on to the container);
//! 2. polls, until the runtime exits: its pidfd, the supervisor's signalfd, and the pipes it
//!    writes to (its stdout and stderr when the caller captures them, and for `create` the
//!    container's stderr pipe, which is the runtime's stderr then), reading them as they fill
//!    so that a runtime that writes a lot never blocks on a full pipe;
//! 3. on a stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT), or when its time is up, kills the
//!    runtime's whole process group (the runtime, and a `runc init` it started) with SIGKILL,
//!    reaps the runtime and says so ([`Cut`]); other signals are kept for the container;
//! 4. otherwise returns the exit status, all of stdout, and the end of stderr.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use crate::error::sys;
use crate::{DriverError, SignalForwarder};

/// How much of a runtime's stderr is kept: the end of it, where the error is.
const STDERR_TAIL: usize = 64 * 1024;

/// How much of a runtime's stdout is kept (`state` prints a small JSON object).
const STDOUT_MAX: usize = 4 << 20;

/// What may cut a call short.
#[derive(Debug, Default)]
pub(crate) struct Limits<'s> {
    /// A stop signal read from here ends the call ([`Cut::Interrupted`]); other signals are
    /// kept in it for the container.
    pub(crate) signals: Option<&'s mut SignalForwarder>,
    /// The call is killed after this long ([`Cut::TimedOut`]).
    pub(crate) timeout: Option<Duration>,
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
}

/// A pipe read as it fills.
struct Drain {
    fd: OwnedFd,
    buf: Vec<u8>,
    /// Keep all (up to a bound) or only the tail.
    tail: bool,
    open: bool,
}

impl Drain {
    fn new(fd: OwnedFd, tail: bool) -> Result<Self, DriverError> {
        let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(sys("fcntl(F_GETFL)"))?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&fd, FcntlArg::F_SETFL(flags)).map_err(sys("fcntl(F_SETFL)"))?;
        Ok(Self {
            fd,
            buf: Vec::new(),
            tail,
            open: true,
        })
    }

    /// Reads what the pipe holds now.
    fn read_now(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match nix::unistd::read(&self.fd, &mut chunk) {
                Ok(0) => {
                    self.open = false;
                    break;
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if self.tail && self.buf.len() > 2 * STDERR_TAIL {
                        self.buf.drain(..self.buf.len() - STDERR_TAIL);
                    } else if !self.tail && self.buf.len() > STDOUT_MAX {
                        self.buf.truncate(STDOUT_MAX);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }

    fn into_bytes(mut self) -> Vec<u8> {
        if self.tail && self.buf.len() > STDERR_TAIL {
            self.buf.drain(..self.buf.len() - STDERR_TAIL);
        }
        self.buf
    }
}

/// Runs `cmd` (whose stdio the caller set; a stdout or stderr of `Stdio::piped()` is read and
/// returned) as the module documentation says. `drain` is one more pipe to read while the
/// runtime runs (its end is kept with stderr).
///
/// # Errors
/// [`DriverError::Spawn`] naming `program` if the runtime cannot be started;
/// [`DriverError::Sys`] if polling or waiting fails.
pub(crate) fn call(
    program: &std::path::Path,
    mut cmd: Command,
    drain: Option<OwnedFd>,
    mut limits: Limits<'_>,
) -> Result<Result<Finished, Cut>, DriverError> {
    cmd.process_group(0);
    clear_signal_mask(&mut cmd);
    let mut child = cmd.spawn().map_err(|source| DriverError::Spawn {
        program: program.to_path_buf(),
        source,
    })?;
    // From here on the child must be reaped on every path.
    let pid = child.id() as i32;
    let pipes = (|| -> Result<_, DriverError> {
        Ok((
            child
                .stdout
                .take()
                .map(|p| Drain::new(p.into(), false))
                .transpose()?,
            child
                .stderr
                .take()
                .map(|p| Drain::new(p.into(), true))
                .transpose()?,
            drain.map(|fd| Drain::new(fd, true)).transpose()?,
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
    let deadline = limits.timeout.map(|t| Instant::now() + t);
    let cut = loop {
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
            .filter(|d| d.open)
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
                if d.open {
                    d.read_now();
                }
            }
        }
        if signal_ready {
            if let Some(s) = limits.signals.as_deref_mut() {
                let mut stop = None;
                for signo in s.read_all()? {
                    s.keep(signo, &mut stop);
                }
                if let Some(signal) = stop {
                    break Some(Cut::Interrupted(signal));
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
        if deadline.is_some_and(|at| Instant::now() >= at) {
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
        return Ok(Err(cut));
    }
    let status = child.wait().map_err(|source| DriverError::Spawn {
        program: program.to_path_buf(),
        source,
    })?;
    // What the runtime wrote just before it exited.
    for d in [&mut out, &mut err, &mut extra].into_iter().flatten() {
        if d.open {
            d.read_now();
        }
    }
    let mut stderr = err.map(Drain::into_bytes).unwrap_or_default();
    if let Some(extra) = extra {
        stderr.extend(extra.into_bytes());
    }
    Ok(Ok(Finished {
        status,
        stdout: out.map(Drain::into_bytes).unwrap_or_default(),
        stderr,
    }))
}

/// SIGKILL to the runtime's process group (the runtime is its leader).
fn kill_group(pid: i32) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
}

/// Gives the spawned runtime an empty signal mask. `std::process::Command` passes the parent's
/// mask on (Rust 1.66, rust-lang/rust#101077), the supervisor blocks the signals it reads from
/// signalfds, and `runc init` hands the mask to the container's process: without this, a
/// container would never see the SIGUSR1 forwarded to it, nor the SIGWINCH of its terminal.
#[allow(unsafe_code)]
fn clear_signal_mask(cmd: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: sigprocmask(2) is one, on a mask built on the stack;
    // nothing is allocated and no lock is taken.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            )
            .map_err(std::io::Error::from)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

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
}
