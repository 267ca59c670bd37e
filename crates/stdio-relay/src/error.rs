//! The crate's error type and the names of the streams it reports on.

use std::fmt;

use nix::errno::Errno;

/// One end of the relay, named in errors and logs.
///
/// The caller's streams are the [`CallerStdio`](crate::CallerStdio) fds; the container's streams
/// are the ends of the pipes made by [`stdio_pipes`](crate::stdio_pipes) that the relay keeps.
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
        })
    }
}

/// What went wrong while setting up or running a relay.
///
/// Every variant names the [`Stream`] it concerns (where there is one) and carries the `errno`
/// of the failed system call as its [`source`](std::error::Error::source). Conditions the relay
/// handles itself are not errors: `EINTR` and `EAGAIN` are retried, `EPIPE` on the container's
/// stdin or on the caller's stdout/stderr means that reader went away (see the rules in
/// [`pipe`](crate::pipe)).
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
    /// `poll(2)` failed (other than `EINTR`, which is retried).
    #[error("cannot wait for the container's stdio")]
    Poll {
        /// The errno of `poll(2)`.
        #[source]
        source: Errno,
    },
    /// `read(2)` failed (other than `EINTR`/`EAGAIN`), e.g. `EIO` on a terminal that hung up.
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
}
