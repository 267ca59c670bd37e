//! The ends of a flow: the caller's fds (where input comes from and output goes) and the
//! relay's own fds (pipe ends, the PTY master).
//!
//! The caller's fds are usually shared with a parent shell, so the relay never changes their
//! open file description (no `O_NONBLOCK`, no `F_SETFL` at all). It works on private
//! duplicates (`F_DUPFD_CLOEXEC`) of them, so that each has its own entry in the relay's epoll
//! set even when two are the same fd. To write without blocking the whole relay on one slow
//! reader, an output fd that is a FIFO or a character device (a pipe, a terminal) is opened
//! again through `/proc/self/fd/N`: that gives the relay a separate open file description for
//! the same pipe or terminal, which it may make non-blocking.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use tracing::debug;

use crate::error::{RelayError, Stream};
use crate::fdio::{self, FdKind};

/// The caller's stdio: where the container's input comes from and its output goes.
///
/// The relay borrows these fds and leaves them exactly as it found them: it never sets
/// `O_NONBLOCK` or any other file status flag on them and never closes them (it reads and
/// writes through private duplicates, or through its own open of the same pipe or terminal).
///
/// - `stdin` is read only after epoll reports it readable, one read(2) or splice(2) at a
///   time, so a blocking terminal never blocks the relay; a pipe is spliced with
///   `SPLICE_F_NONBLOCK`, which never blocks whatever the pipe's mode. A regular file or
///   `/dev/null` works too (always ready).
/// - `stdout` and `stderr`: a FIFO or character device (pipe, terminal, `/dev/null`) is written
///   through a non-blocking open of `/proc/self/fd/N`; a regular file through a duplicate of
///   the fd; anything else (a socket), and a FIFO or terminal that cannot be opened again, also
///   through a duplicate, in the mode it has (see [`pipe`](crate::pipe) for how a blocking
///   socket is written).
#[derive(Debug, Clone, Copy)]
pub struct CallerStdio<'a> {
    /// Read side: the container's stdin comes from here.
    pub stdin: BorrowedFd<'a>,
    /// Write side: the container's stdout goes here.
    pub stdout: BorrowedFd<'a>,
    /// Write side: the container's stderr goes here.
    pub stderr: BorrowedFd<'a>,
}

impl CallerStdio<'static> {
    /// This process's own fds 0, 1 and 2.
    ///
    /// Rust's runtime opens `/dev/null` on any of them that was closed when the process started;
    /// a caller that closes one of them later must not use this.
    #[allow(unsafe_code)]
    pub fn process() -> Self {
        // SAFETY: fds 0, 1 and 2 are open for the life of a Rust process: std's runtime opens
        // /dev/null on any of them that is closed at startup, and nothing in this crate closes
        // them. `BorrowedFd` requires only that the fd stays open while borrowed.
        let (stdin, stdout, stderr) = unsafe {
            (
                BorrowedFd::borrow_raw(libc::STDIN_FILENO),
                BorrowedFd::borrow_raw(libc::STDOUT_FILENO),
                BorrowedFd::borrow_raw(libc::STDERR_FILENO),
            )
        };
        Self {
            stdin,
            stdout,
            stderr,
        }
    }
}

/// How an output fd is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// The relay's own non-blocking fd (a pipe end, the PTY master, a reopened FIFO or
    /// character device): write until `EAGAIN`.
    NonBlocking,
    /// The caller's regular file or block device: write until done (it does not wait on a
    /// reader), or until `EAGAIN` if the caller left it non-blocking.
    File,
    /// The caller's fd of another kind (a socket, a FIFO or terminal that could not be opened
    /// again): at most [`PIPE_BUF`] bytes per write(2), one write(2) per readiness report, so
    /// that a blocking fd never waits for its reader.
    Chunked,
}

/// Bytes a writable pipe or socket takes in one write(2) without blocking: `PIPE_BUF` on Linux.
pub(crate) const PIPE_BUF: usize = 4096;

/// An fd the relay writes one stream to, owned by the relay.
#[derive(Debug)]
pub(crate) struct Sink {
    pub(crate) fd: OwnedFd,
    pub(crate) mode: WriteMode,
    pub(crate) kind: FdKind,
}

impl Sink {
    /// Chooses how to write to the caller's `fd` (see [`CallerStdio`]).
    ///
    /// # Errors
    /// [`RelayError::Duplicate`] when the fd cannot be duplicated (`EMFILE`).
    pub(crate) fn caller(fd: BorrowedFd<'_>, stream: Stream) -> Result<Self, RelayError> {
        let kind = fdio::kind(fd);
        if matches!(kind, FdKind::Fifo | FdKind::CharDevice) {
            match reopen_nonblocking(fd) {
                Ok(own) => {
                    if kind == FdKind::Fifo {
                        grow_pipe(own.as_fd());
                    }
                    return Ok(Self {
                        fd: own,
                        mode: WriteMode::NonBlocking,
                        kind,
                    });
                }
                Err(errno) => {
                    debug!(%stream, %errno, "cannot reopen through /proc/self/fd; writing through the caller's fd");
                }
            }
        }
        let mode = if kind == FdKind::File {
            WriteMode::File
        } else {
            WriteMode::Chunked
        };
        Ok(Self {
            fd: duplicate(fd, stream)?,
            mode,
            kind,
        })
    }

    /// One of the relay's own non-blocking fds (a pipe's write end, the PTY master).
    pub(crate) fn own(fd: OwnedFd) -> Self {
        let kind = fdio::kind(fd.as_fd());
        Self {
            fd,
            mode: WriteMode::NonBlocking,
            kind,
        }
    }
}

/// An fd the relay reads one stream from, owned by the relay.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) fd: OwnedFd,
    pub(crate) kind: FdKind,
    /// A duplicate of the caller's fd, possibly blocking: read(2) once per readiness report.
    /// `false` for the relay's own non-blocking fds: read until `EAGAIN`.
    pub(crate) shared: bool,
    /// `EIO` from read(2) is end of file: a terminal whose other side hung up.
    pub(crate) eio_is_eof: bool,
}

impl Source {
    /// The caller's stdin `fd`, through a private duplicate. `None` when `fd` is not open
    /// (`EBADF`): that is an empty input.
    ///
    /// # Errors
    /// [`RelayError::Duplicate`] when the fd cannot be duplicated for another reason.
    pub(crate) fn caller(fd: BorrowedFd<'_>, stream: Stream) -> Result<Option<Self>, RelayError> {
        let dup = match fd.try_clone_to_owned() {
            Ok(dup) => dup,
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                debug!(%stream, "not open; no input");
                return Ok(None);
            }
            Err(source) => return Err(RelayError::Duplicate { stream, source }),
        };
        let kind = fdio::kind(dup.as_fd());
        if kind == FdKind::Fifo {
            grow_pipe(dup.as_fd());
        }
        Ok(Some(Self {
            fd: dup,
            kind,
            shared: true,
            eio_is_eof: true,
        }))
    }

    /// One of the relay's own non-blocking fds; `eio_is_eof` for a PTY master.
    pub(crate) fn own(fd: OwnedFd, eio_is_eof: bool) -> Self {
        let kind = fdio::kind(fd.as_fd());
        Self {
            fd,
            kind,
            shared: false,
            eio_is_eof,
        }
    }
}

/// A private duplicate (`F_DUPFD_CLOEXEC`) of the caller's `fd`: the same open file
/// description, so the same mode.
fn duplicate(fd: BorrowedFd<'_>, stream: Stream) -> Result<OwnedFd, RelayError> {
    fd.try_clone_to_owned()
        .map_err(|source| RelayError::Duplicate { stream, source })
}

/// A new non-blocking, write-only open file description of the FIFO or character device `fd`
/// refers to. `O_NOCTTY`: opening a terminal must not make it our controlling terminal.
/// Fails with `ENXIO` for a FIFO that has no reader left, `EACCES` where the inode's mode does
/// not allow us to open it, `ENOENT` without /proc.
/// The capacity, in bytes, that a pipe of the caller (stdin, stdout, stderr) is grown to: 1 MiB, the default
/// `/proc/sys/fs/pipe-max-size`. With the 64 KiB default, every 64 KiB of output costs the
/// relay and the caller's reader a wake-up each.
const CALLER_PIPE_SIZE: i32 = 1 << 20;

/// Grows the pipe behind `fd` to [`CALLER_PIPE_SIZE`] if it is smaller. Only the capacity
/// changes, never the data, its order or the mode of the caller's fd; a pipe is never shrunk,
/// and a refusal (pipe-max-size lower, per-user pipe quota reached) keeps the size it had.
fn grow_pipe(fd: BorrowedFd<'_>) {
    use nix::fcntl::{fcntl, FcntlArg};
    if fcntl(fd, FcntlArg::F_GETPIPE_SZ).is_ok_and(|size| size < CALLER_PIPE_SIZE) {
        let _ = fcntl(fd, FcntlArg::F_SETPIPE_SZ(CALLER_PIPE_SIZE));
    }
}

fn reopen_nonblocking(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::fcntl::open(
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
}
