//! The crate's error type and the names of the streams it reports on.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;

/// One end of the relay, named in errors and logs.
///
/// The caller's streams are the [`CallerStdio`](crate::CallerStdio) fds; the container's streams
/// are the ends of the pipes made by [`stdio_pipes`](crate::stdio_pipes) that the relay keeps,
/// or the container's terminal (the PTY master, in terminal mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stream {
    /// The caller's stdin, where the container's input comes from.
    CallerStdin,
    /// The caller's stdout, where the container's stdout goes.
    CallerStdout,
    /// The caller's stderr, where the container's stderr goes.
    CallerStderr,
    /// The write end of the pipe that is the container's stdin.
    ContainerStdin,
    /// The read end of the pipe that is the container's stdout.
    ContainerStdout,
    /// The read end of the pipe that is the container's stderr.
    ContainerStderr,
    /// The master side of the container's pseudo-terminal (terminal mode): input is written to
    /// it, the container's output (stdout and stderr together) is read from it.
    ContainerTerminal,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CallerStdin => "the caller's stdin",
            Self::CallerStdout => "the caller's stdout",
            Self::CallerStderr => "the caller's stderr",
            Self::ContainerStdin => "the container's stdin",
            Self::ContainerStdout => "the container's stdout",
            Self::ContainerStderr => "the container's stderr",
            Self::ContainerTerminal => "the container's terminal",
        })
    }
}

/// What went wrong while setting up or running a relay.
///
/// Every variant names the [`Stream`] (or the console socket's path) it concerns and carries
/// the `errno` of the failed system call as its [`source`](std::error::Error::source).
/// Conditions the relay handles itself are not errors: `EINTR` and `EAGAIN` are retried,
/// `EPIPE` on the container's stdin or on the caller's stdout/stderr means that reader went
/// away, `EIO` reading a terminal means it hung up (see the rules in [`pipe`](crate::pipe)
/// and [`terminal`](crate::terminal)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// `pipe2(2)` failed while creating the pipe for one of the container's streams
    /// (typically `EMFILE`/`ENFILE`: too many open files).
    #[error("cannot create the pipe for {stream}")]
    CreatePipe {
        /// The container stream the pipe was for.
        stream: Stream,
        /// The errno of `pipe2(2)`.
        #[source]
        source: Errno,
    },
    /// `fcntl(F_GETFL/F_SETFL)` failed while making one of the relay's own ends non-blocking.
    #[error("cannot make {stream} non-blocking")]
    SetNonBlocking {
        /// The stream whose end could not be changed.
        stream: Stream,
        /// The errno of `fcntl(2)`.
        #[source]
        source: Errno,
    },
    /// `fcntl(F_DUPFD_CLOEXEC)` failed: the relay works on its own copy of every caller fd
    /// (typically `EMFILE`).
    #[error("cannot duplicate {stream}")]
    Duplicate {
        /// The stream whose fd could not be duplicated.
        stream: Stream,
        /// The error of `fcntl(2)`.
        #[source]
        source: io::Error,
    },
    /// Opening a file for one of the container's streams failed (`/dev/null` for a discarded
    /// stdout with [`inherit_stdio`](crate::inherit_stdio)).
    #[error("cannot open {path:?} for {stream}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The stream it was for.
        stream: Stream,
        /// The error of `open(2)`.
        #[source]
        source: io::Error,
    },
    /// `epoll_create1(2)` or `epoll_wait(2)` failed (other than `EINTR`, which is retried), or
    /// `epoll_ctl(2)` failed for the `exited` fd or the SIGWINCH signalfd.
    #[error("cannot wait for the container's stdio")]
    Poll {
        /// The errno of the epoll call.
        #[source]
        source: Errno,
    },
    /// `epoll_ctl(2)` failed to watch one of the streams (other than `EPERM`, which means the
    /// fd is always ready, a regular file).
    #[error("cannot watch {stream} for readiness")]
    Register {
        /// The stream whose fd could not be watched.
        stream: Stream,
        /// The errno of `epoll_ctl(2)`.
        #[source]
        source: Errno,
    },
    /// `read(2)` failed (other than `EINTR`/`EAGAIN`, and `EIO` on a terminal, which is its
    /// end of file).
    #[error("cannot read {stream}")]
    Read {
        /// The stream that was read.
        stream: Stream,
        /// The errno of `read(2)`.
        #[source]
        source: Errno,
    },
    /// `write(2)` failed (other than `EINTR`/`EAGAIN`/`EPIPE`), e.g. `ENOSPC` on a file.
    #[error("cannot write to {stream}")]
    Write {
        /// The stream that was written.
        stream: Stream,
        /// The errno of `write(2)`.
        #[source]
        source: Errno,
    },
    /// `splice(2)` between two streams failed with anything but `EINTR`, `EAGAIN`, `EPIPE`
    /// (the reader went away) or `EINVAL` (splice does not apply; read/write is used).
    #[error("cannot move bytes from {from} to {to}")]
    Transfer {
        /// The stream spliced from.
        from: Stream,
        /// The stream spliced to.
        to: Stream,
        /// The errno of `splice(2)`.
        #[source]
        source: Errno,
    },
    /// A step of the console-socket handshake failed: creating, binding or listening on the
    /// socket, changing its mode, accepting the runtime's connection, or `recvmsg(2)`.
    #[error("cannot {action} the console socket {path:?}")]
    ConsoleSocket {
        /// What was being done, e.g. `"listen on"`, `"accept a connection on"`.
        action: &'static str,
        /// The socket's path.
        path: PathBuf,
        /// The error of the system call.
        #[source]
        source: io::Error,
    },
    /// Nothing connected to the console socket, or nothing was sent over the connection,
    /// within the time given to [`ConsoleSocket::receive`](crate::ConsoleSocket::receive).
    #[error("the runtime sent no terminal over the console socket {path:?} within {timeout:?}")]
    ConsoleTimeout {
        /// The socket's path.
        path: PathBuf,
        /// How long the relay waited.
        timeout: Duration,
    },
    /// The runtime's message on the console socket carried no file descriptor (or the
    /// connection closed without a message).
    #[error("the runtime sent no file descriptor over the console socket {path:?}")]
    NoTerminalReceived {
        /// The socket's path.
        path: PathBuf,
    },
    /// The file descriptor received over the console socket is not a terminal.
    #[error("the file descriptor received over the console socket {path:?} is not a terminal")]
    NotATerminal {
        /// The socket's path.
        path: PathBuf,
    },
    /// A terminal ioctl failed: `tcgetattr(3)`/`tcsetattr(3)` for raw mode, `TIOCGWINSZ` or
    /// `TIOCSWINSZ` for the window size.
    #[error("cannot {action} {stream}")]
    Terminal {
        /// What was being done, e.g. `"set raw mode on"`, `"set the window size of"`.
        action: &'static str,
        /// The terminal: one of the caller's fds, or the container's terminal.
        stream: Stream,
        /// The errno of the ioctl.
        #[source]
        source: Errno,
    },
    /// Blocking SIGWINCH (`pthread_sigmask(3)`), creating its signalfd, or reading it failed.
    #[error("cannot receive SIGWINCH: {call} failed")]
    ResizeSignal {
        /// The failed call.
        call: &'static str,
        /// Its errno.
        #[source]
        source: Errno,
    },
}
