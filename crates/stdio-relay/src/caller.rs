//! The caller's side of the relay: where input comes from and output goes.
//!
//! The caller's fds are usually shared with a parent shell, so the relay never changes their
//! open file description (no `O_NONBLOCK`, no `F_SETFL` at all). To write without blocking the
//! whole relay on one slow reader, an output fd that is a FIFO or a character device (a pipe, a
//! terminal) is opened again through `/proc/self/fd/N`: that gives the relay a separate open
//! file description for the same pipe or terminal, which it may make non-blocking.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, Mode, SFlag};
use tracing::debug;

use crate::error::Stream;

/// The caller's stdio: where the container's input comes from and its output goes.
///
/// The relay borrows these fds and leaves them exactly as it found them: it never sets
/// `O_NONBLOCK` or any other file status flag on them and never closes them.
///
/// - `stdin` is read only after poll(2) reports it readable, one read(2) at a time, so a
///   blocking pipe or terminal never blocks the relay. A regular file or `/dev/null` works too.
/// - `stdout` and `stderr`: a FIFO or character device (pipe, terminal, `/dev/null`) is written
///   through a non-blocking open of `/proc/self/fd/N`; anything else (a regular file, a socket)
///   and a FIFO or terminal that cannot be opened again is written through the fd itself in the
///   mode it has (see [`pipe`](crate::pipe) for how a blocking socket is written).
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
    /// The relay's own non-blocking open of a FIFO or character device: write until `EAGAIN`.
    NonBlocking,
    /// The caller's regular file or block device: write until done (it does not wait on a
    /// reader), or until `EAGAIN` if the caller left it non-blocking.
    File,
    /// The caller's fd of another kind (a socket, a FIFO or terminal that could not be opened
    /// again): at most [`PIPE_BUF`] bytes per write(2), one write(2) per poll(2) that reported
    /// it writable, so that a blocking fd never waits for its reader.
    Chunked,
}

/// Bytes a writable pipe or socket takes in one write(2) without blocking: `PIPE_BUF` on Linux.
pub(crate) const PIPE_BUF: usize = 4096;

/// An fd the relay writes one output stream to.
#[derive(Debug)]
pub(crate) struct OutputSink<'a> {
    fd: SinkFd<'a>,
    mode: WriteMode,
}

#[derive(Debug)]
enum SinkFd<'a> {
    Reopened(OwnedFd),
    Caller(BorrowedFd<'a>),
}

impl<'a> OutputSink<'a> {
    /// Chooses how to write to the caller's `fd`; never fails: every failure falls back to
    /// writing through `fd` itself.
    pub(crate) fn new(fd: BorrowedFd<'a>, stream: Stream) -> Self {
        let kind = match fstat(fd) {
            Ok(stat) => SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT,
            Err(errno) => {
                debug!(%stream, %errno, "cannot fstat; writing through the caller's fd");
                return Self::caller(fd, WriteMode::Chunked);
            }
        };
        if kind == SFlag::S_IFIFO || kind == SFlag::S_IFCHR {
            match reopen_nonblocking(fd) {
                Ok(own) => {
                    return Self {
                        fd: SinkFd::Reopened(own),
                        mode: WriteMode::NonBlocking,
                    }
                }
                Err(errno) => {
                    debug!(%stream, %errno, "cannot reopen through /proc/self/fd; writing through the caller's fd");
                    return Self::caller(fd, WriteMode::Chunked);
                }
            }
        }
        if kind == SFlag::S_IFREG || kind == SFlag::S_IFBLK {
            Self::caller(fd, WriteMode::File)
        } else {
            Self::caller(fd, WriteMode::Chunked)
        }
    }

    fn caller(fd: BorrowedFd<'a>, mode: WriteMode) -> Self {
        Self {
            fd: SinkFd::Caller(fd),
            mode,
        }
    }

    pub(crate) fn mode(&self) -> WriteMode {
        self.mode
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.fd {
            SinkFd::Reopened(own) => own.as_fd(),
            SinkFd::Caller(fd) => *fd,
        }
    }
}

/// A new non-blocking, write-only open file description of the FIFO or character device `fd`
/// refers to. `O_NOCTTY`: opening a terminal must not make it our controlling terminal.
/// Fails with `ENXIO` for a FIFO that has no reader left, `EACCES` where the inode's mode does
/// not allow us to open it, `ENOENT` without /proc.
fn reopen_nonblocking(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::fcntl::open(
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
}
