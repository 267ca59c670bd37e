//! Pipe mode: the container gets three pipes and the relay moves bytes between them and the
//! caller's stdio (no terminal; `buildah run` without `-t`).
//!
//! # Protocol
//!
//! 1. [`stdio_pipes`] makes three pipes, every fd `O_CLOEXEC`. The [`ContainerStdio`] ends go to
//!    the runtime (`runc create` with them as its fds 0, 1 and 2; runc hands them to the
//!    container's process). The [`RelayEnds`] stay here and are already `O_NONBLOCK`.
//! 2. The caller spawns the runtime and then **drops its copies of the [`ContainerStdio`] ends
//!    at once** (with `std::process::Command`, drop the `Command` too, it holds them): as long as
//!    this process holds a write end of the container's stdout, that pipe never reaches end of
//!    file.
//! 3. [`relay`] runs until the container's output is complete (see below) while the caller waits
//!    for the container on another thread or process; `exited` tells the relay when the
//!    container's process is gone (a pidfd, or any fd that becomes readable then).
//!
//! # Rules
//!
//! - One level-triggered epoll(7) set over: the caller's stdin (readable, while its stream has
//!   room), the container's stdin write end (writable, only while input waits), the container's
//!   stdout/stderr read ends (readable, only while that stream has room), the caller's
//!   stdout/stderr (writable, only while that stream has bytes waiting), and `exited`
//!   (readable, until it fires once). An fd leaves the set when it has nothing to wait for,
//!   and before it is closed.
//! - splice(2) where the kernel allows it: between two pipes (the caller's stdin pipe to the
//!   container's stdin; the container's stdout or stderr to the caller's pipe), from a pipe to
//!   a regular file (output redirected to a file; not with `O_APPEND`, which splice refuses
//!   with `EINVAL`) and from a regular file to a pipe (`< file`). Always with
//!   `SPLICE_F_NONBLOCK`, so even the caller's blocking pipe never blocks the relay. There the
//!   pipes are the bounded buffer: the relay holds no byte itself.
//! - read(2)/write(2) elsewhere (terminals, sockets, `/dev/null`, an `O_APPEND` file), through
//!   one bounded buffer of 64 KiB per direction; a read never asks for more bytes than fit.
//! - Bytes of a stream leave in the order they came; none is dropped except as listed below
//!   (a reader that went away, `discard_stdout`, the drain timeout).
//! - The relay's own ends are non-blocking. The caller's fds keep the mode they had: the relay
//!   never sets `O_NONBLOCK` (or any flag) on them, as they are shared with the parent shell.
//! - Pipe capacity: the three pipes of [`stdio_pipes`] ask for 1 MiB (`F_SETPIPE_SZ`), and a
//!   pipe on the caller's side smaller than that is grown to it, never shrunk. With 64 KiB
//!   pipes every 64 KiB cost a wake-up of the relay and of the reader: a 4 GiB transfer ran
//!   at about half the speed of the same pipe handed straight to the container; with 1 MiB
//!   pipes, at the same speed (`cargo xtask bench`). Only capacity changes, never the bytes.
//!   It works on private duplicates (`F_DUPFD_CLOEXEC`) of them.
//! - The caller's stdout/stderr: a FIFO or character device (by fstat(2)) is opened again
//!   through `/proc/self/fd/N` with `O_WRONLY|O_NONBLOCK|O_CLOEXEC|O_NOCTTY`, a separate open file
//!   description of the same pipe or terminal, and written (or spliced) through that until
//!   `EAGAIN`. A regular file (or block device) is written through the caller's description
//!   until done; it does not wait for a reader. Anything else (a socket, or a FIFO/terminal
//!   that cannot be opened again) is written through the caller's description at most 4096
//!   bytes (`PIPE_BUF`) per write(2), once per readiness report, which a pipe or local socket
//!   takes without blocking.
//! - The caller's stdin, when not spliced, is read once per readiness report; for a terminal or
//!   socket that one read(2) does not block, a regular file is always readable. A report of
//!   `EPOLLERR` without `EPOLLIN`/`EPOLLHUP` (e.g. the write end of a pipe), or fd 0 not being
//!   open, counts as end of file.
//! - End of file is read(2) (or splice(2)) returning 0, never `EPOLLHUP` alone: after
//!   `EPOLLHUP` a pipe can still hold data, which is moved until the call returns 0.
//! - When the caller's stdin reached end of file and its buffer is written out, the container's
//!   stdin write end is closed, so `printf 'echo foo\n' | ocirun run ... sh` ends.
//! - `EPIPE` writing the container's stdin (it closed its stdin or exited): the buffered input
//!   is dropped, the caller's stdin is no longer read and the container's stdin is closed. Not
//!   an error.
//! - `EPIPE` writing the caller's stdout or stderr (its reader went away): the container's end
//!   of that stream is closed too, so its next write fails with `EPIPE` (SIGPIPE), as in a shell
//!   pipeline: `ocirun run ... yes | head -1` ends. The other streams go on.
//!   Not an error.
//! - [`discard_stdout`](crate::RelayOptions::discard_stdout): the container's stdout is read and
//!   thrown away.
//! - `EINTR` is retried and `EAGAIN` waits for the next readiness report; any other failure of
//!   epoll, read(2), write(2) or splice(2) ends the relay with a [`RelayError`] naming the
//!   stream and the errno.
//! - The relay returns once the container's stdout and stderr both reached end of file and
//!   everything read from them was written out (the container's stdin is then just closed), or
//!   once `exited` was readable and then [`drain_timeout`](crate::RelayOptions::drain_timeout)
//!   passed with no byte read from the container and nothing waiting for the caller's reader: a
//!   daemonized grandchild holding the pipes cannot hang the caller, and a container that
//!   still writes after its init exited is relayed as long as it writes.
//! - `SIGPIPE` must be ignored in the calling process (Rust binaries ignore it by default), or
//!   a reader that goes away kills the process instead of giving `EPIPE`.
//!
//! # Limitations
//!
//! - A socket (or a FIFO/terminal that cannot be opened again) as the caller's stdout or stderr
//!   is written in the mode the caller left it; a 4096-byte write(2) into a blocking socket
//!   whose peer stopped reading can still block the relay.
//! - If another process reads the caller's stdin terminal or socket at the same time, it can
//!   take the bytes that epoll reported, and the read(2) that follows then blocks until more
//!   input comes. (A pipe is spliced without blocking.)

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;

use crate::caller::{CallerStdio, Sink, Source};
use crate::engine::{AtEof, Engine, Flow, Role};
use crate::error::{RelayError, Stream};
use crate::fdio;
use crate::options::{RelayOptions, RelayReport};

#[cfg(test)]
mod tests;

/// The container's ends of its three stdio pipes, for the runtime.
///
/// Hand them to the runtime (`runc create`) as its stdin, stdout and stderr; it passes them on
/// to the container's process. All three are `O_CLOEXEC` and blocking, as a program expects its
/// stdio to be. The caller must drop them in its own process right after spawning the runtime,
/// or the container's stdout never reaches end of file and [`relay`] only ends by the drain
/// timeout.
#[derive(Debug)]
pub struct ContainerStdio {
    /// Read end of the container's stdin pipe.
    pub stdin: OwnedFd,
    /// Write end of the container's stdout pipe.
    pub stdout: OwnedFd,
    /// Write end of the container's stderr pipe.
    pub stderr: OwnedFd,
}

/// The relay's ends of the container's stdio pipes: the write end of its stdin pipe and the
/// read ends of its stdout and stderr pipes, all `O_CLOEXEC|O_NONBLOCK`. Only [`relay`] uses
/// them; dropping them closes them.
#[derive(Debug)]
pub struct RelayEnds {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl RelayEnds {
    /// A second fd for the read end of the container's stderr pipe (non-blocking, like this
    /// one), so that the runtime's own error message, written to the stderr it hands the
    /// container, can be read when `runtime create` fails before any relay runs.
    ///
    /// # Errors
    /// The errno of dup(2).
    pub fn try_clone_stderr(&self) -> std::io::Result<OwnedFd> {
        self.stderr.try_clone()
    }
}

/// Creates the three pipes for a container's stdio.
///
/// Returns the container's ends (for the runtime) and the relay's ends (for [`relay`]). Every fd
/// is `O_CLOEXEC`, so no other child process inherits one by accident; the relay's ends are
/// also `O_NONBLOCK` (their own open file descriptions: the container's ends stay blocking).
///
/// # Errors
///
/// [`RelayError::CreatePipe`] when pipe2(2) fails (too many open files),
/// [`RelayError::SetNonBlocking`] when fcntl(2) does.
pub fn stdio_pipes() -> Result<(ContainerStdio, RelayEnds), RelayError> {
    /// The capacity asked for each of the three pipes, in bytes: 1 MiB, the default
    /// `/proc/sys/fs/pipe-max-size` (a pipe holds 64 KiB otherwise).
    const PIPE_SIZE: i32 = 1 << 20;
    let pipe = |stream| {
        nix::unistd::pipe2(OFlag::O_CLOEXEC)
            .map_err(|source| RelayError::CreatePipe { stream, source })
    };
    let (stdin_read, stdin_write) = pipe(Stream::ContainerStdin)?;
    let (stdout_read, stdout_write) = pipe(Stream::ContainerStdout)?;
    let (stderr_read, stderr_write) = pipe(Stream::ContainerStderr)?;
    for (fd, stream) in [
        (&stdin_write, Stream::ContainerStdin),
        (&stdout_read, Stream::ContainerStdout),
        (&stderr_read, Stream::ContainerStderr),
    ] {
        fdio::set_nonblocking(fd.as_fd())
            .map_err(|source| RelayError::SetNonBlocking { stream, source })?;
        // A larger pipe means fewer wake-ups per byte for the container and the relay alike;
        // the kernel caps it at /proc/sys/fs/pipe-max-size, and a refusal keeps the default.
        let _ = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    }
    Ok((
        ContainerStdio {
            stdin: stdin_read,
            stdout: stdout_write,
            stderr: stderr_write,
        },
        RelayEnds {
            stdin: stdin_write,
            stdout: stdout_read,
            stderr: stderr_read,
        },
    ))
}

/// Relays between the caller's stdio and the container's pipes until the container's output is
/// complete.
///
/// Takes the relay's pipe ends from [`stdio_pipes`] (closed when this returns), the caller's
/// fds (borrowed and left in the mode they had), `exited`, an fd that becomes readable once the
/// container's process has exited (a pidfd of the container's init; a pipe whose write end is
/// closed then; an eventfd), and the options. Blocks the calling thread.
///
/// Returns once the container's stdout and stderr both reached end of file and everything read
/// was written, or once `exited` was readable and then `options.drain_timeout` passed with no
/// byte read from the container (see [`RelayReport::drain_timed_out`]). The container's stdin is
/// closed when the caller's stdin reaches end of file, or when this returns. The full list of
/// rules is in the [module documentation](self).
///
/// # Errors
///
/// [`RelayError::Duplicate`] when a caller fd cannot be duplicated; [`RelayError::Poll`],
/// [`RelayError::Register`], [`RelayError::Read`], [`RelayError::Write`] or
/// [`RelayError::Transfer`] when a system call fails with anything but `EINTR`, `EAGAIN` or
/// (for writes) `EPIPE`; the error names the stream and the errno. Output not yet written is
/// lost then.
pub fn relay(
    ends: RelayEnds,
    caller: CallerStdio<'_>,
    exited: BorrowedFd<'_>,
    options: &RelayOptions,
) -> Result<RelayReport, RelayError> {
    relay_with(ends, caller, exited, options, true)
}

/// [`relay`], with splice(2) allowed or not (tests run both ways).
pub(crate) fn relay_with(
    ends: RelayEnds,
    caller: CallerStdio<'_>,
    exited: BorrowedFd<'_>,
    options: &RelayOptions,
    allow_splice: bool,
) -> Result<RelayReport, RelayError> {
    let _span = tracing::debug_span!("stdio_relay", mode = "pipes").entered();
    let flows = pipe_flows(ends, caller, options, allow_splice)?;
    let outcome = Engine::new(flows, exited, None, options.drain_timeout)?.run()?;
    Ok(RelayReport {
        stdin_bytes: outcome.moved[0],
        stdout_bytes: outcome.moved[1],
        stderr_bytes: outcome.moved[2],
        drain_timed_out: outcome.drain_timed_out,
    })
}

/// The three flows of pipe mode: stdin, stdout, stderr, in that order.
pub(crate) fn pipe_flows(
    ends: RelayEnds,
    caller: CallerStdio<'_>,
    options: &RelayOptions,
    allow_splice: bool,
) -> Result<Vec<Flow>, RelayError> {
    let stdin = Flow::new(
        Role::Input,
        Source::caller(caller.stdin, Stream::CallerStdin)?,
        Stream::CallerStdin,
        Some(Sink::own(ends.stdin)),
        Stream::ContainerStdin,
        AtEof::CloseSink,
        allow_splice,
    );
    let stdout_sink = if options.discard_stdout {
        None
    } else {
        Some(Sink::caller(caller.stdout, Stream::CallerStdout)?)
    };
    let stdout = Flow::new(
        Role::Output,
        Some(Source::own(ends.stdout, false)),
        Stream::ContainerStdout,
        stdout_sink,
        Stream::CallerStdout,
        AtEof::CloseSink,
        allow_splice,
    );
    let stderr = Flow::new(
        Role::Output,
        Some(Source::own(ends.stderr, false)),
        Stream::ContainerStderr,
        Some(Sink::caller(caller.stderr, Stream::CallerStderr)?),
        Stream::CallerStderr,
        AtEof::CloseSink,
        allow_splice,
    );
    Ok(vec![stdin, stdout, stderr])
}

/// The container's stdio for `--stdio inherit`: duplicates (`F_DUPFD_CLOEXEC`) of the
/// caller's own fds, so the container reads and writes them directly and no relay runs;
/// with `discard_stdout`, a sink of its own as its stdout.
///
/// A sink is `/dev/zero` opened `O_WRONLY|O_CLOEXEC`, whose writes the kernel discards as it
/// does `/dev/null`'s, and so is a caller's stdout or stderr that is `/dev/null`: youki (0.7)
/// opens the container's own `/dev/null` read-only over every stdio fd that is `/dev/null`
/// before it runs the command, whose writes to it would then fail with `EBADF`. A stdin that
/// is `/dev/null` is kept.
///
/// The container shares the caller's open file descriptions: a process it leaves behind keeps
/// them open (a reader of the caller's stdout then waits for that process, not for the
/// container), and a program in it that sets `O_NONBLOCK` on its stdin sets it for the caller
/// too. That is the price of having no relay.
///
/// # Errors
/// [`RelayError::Duplicate`] when an fd cannot be duplicated, [`RelayError::Open`] when
/// `/dev/zero` cannot be opened.
pub fn inherit_stdio(
    caller: CallerStdio<'_>,
    discard_stdout: bool,
) -> Result<ContainerStdio, RelayError> {
    let dup = |fd: BorrowedFd<'_>, stream| {
        fd.try_clone_to_owned()
            .map_err(|source| RelayError::Duplicate { stream, source })
    };
    let sink = |stream| {
        let zero = Path::new(SINK);
        File::options()
            .write(true)
            .open(zero)
            .map(OwnedFd::from)
            .map_err(|source| RelayError::Open {
                path: zero.to_owned(),
                stream,
                source,
            })
    };
    let stdout = if discard_stdout || is_dev_null(caller.stdout) {
        sink(Stream::ContainerStdout)?
    } else {
        dup(caller.stdout, Stream::CallerStdout)?
    };
    let stderr = if is_dev_null(caller.stderr) {
        sink(Stream::ContainerStderr)?
    } else {
        dup(caller.stderr, Stream::CallerStderr)?
    };
    Ok(ContainerStdio {
        stdin: dup(caller.stdin, Stream::CallerStdin)?,
        stdout,
        stderr,
    })
}

/// The container's sink for output that is thrown away (see [`inherit_stdio`]).
const SINK: &str = "/dev/zero";

/// Whether `fd` is `/dev/null` (the character device 1:3).
fn is_dev_null(fd: BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| {
        st.st_mode & libc::S_IFMT == libc::S_IFCHR
            && libc::major(st.st_rdev) == 1
            && libc::minor(st.st_rdev) == 3
    })
}
