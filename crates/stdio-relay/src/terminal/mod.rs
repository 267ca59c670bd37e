//! Terminal mode: the container's process gets a pseudo-terminal whose master side the runtime
//! hands over through a console socket, and the relay moves bytes between it and the caller's
//! stdio (`buildah run -t`, `podman run -t`).
//!
//! # The console-socket handshake (runc(8) `--console-socket`, runc's docs/terminals.md)
//!
//! 1. [`ConsoleSocket::bind`] creates a Unix stream socket (`SOCK_CLOEXEC`) listening at a
//!    path, usually in the bundle directory, and sets the socket file's mode to 0700.
//! 2. The caller runs `runc create --console-socket PATH` (with `process.terminal: true` in
//!    `config.json`). runc connects, creates the PTY inside the container, makes its slave
//!    side the stdin, stdout, stderr and controlling terminal of the container's process, and
//!    sends the master side in one `SCM_RIGHTS` message whose data is the PTY's name
//!    (`/dev/ptmx`). The connection waits in the listen backlog, so `create` finishes without
//!    the caller having accepted it.
//! 3. [`ConsoleSocket::receive`] accepts one connection (`SOCK_CLOEXEC`), receives the message
//!    (`MSG_CMSG_CLOEXEC`: the fds arrive close-on-exec), turns every received fd into an
//!    `OwnedFd` at once, keeps the first (closing any others), checks that it is a terminal,
//!    and closes the connection and the listening socket. Dropping the [`ConsoleSocket`]
//!    removes the socket file.
//! 4. Before `runc start`, the caller copies its terminal's window size to the [`PtyMaster`]
//!    ([`copy_window_size`]), so the container's first `stty size` is right.
//! 5. [`relay_terminal`] relays while the container runs: caller's stdin to the master, master
//!    to the caller's stdout; on every SIGWINCH ([`ResizeSignal`]) the caller's window size is
//!    copied to the master again, which makes the kernel send SIGWINCH to the container's
//!    foreground process group.
//!
//! # Raw mode
//!
//! The container's own terminal does the line editing, echo and signal characters, so the
//! caller's terminal must pass every key through untouched: [`RawMode::enable`] saves its
//! settings and applies `cfmakeraw(3)`; the guard restores the saved settings when dropped:
//! on return, on error and on panic (unwinding). A process that ends by a signal it does not
//! handle skips destructors: the `ocirun` binary receives SIGINT, SIGTERM, SIGHUP and SIGQUIT
//! through a signalfd, so they end its run through the normal return path.
//!
//! # Rules of the terminal relay
//!
//! The rules of [`pipe`](crate::pipe) apply (epoll, bounded buffers, the caller's fds never
//! made non-blocking, `exited` and the drain timeout), with these differences:
//!
//! - Two streams: the caller's stdin to the master, the master to the caller's stdout. The
//!   container's stdout and stderr are both the terminal; the caller's stderr is not written.
//!   [`RelayOptions::discard_stdout`] discards the terminal's output.
//! - Bytes go through a 64 KiB buffer per direction with read(2) and write(2) (splice(2) does
//!   not apply to terminals). The master is the relay's own fd and is made non-blocking.
//! - End of file on the caller's stdin (read(2) returning 0, or `EIO` from a terminal that hung
//!   up) is written to the master as the container terminal's EOF character (`VEOF` of its
//!   settings, normally Ctrl-D): twice when the terminal is in canonical mode and the last byte
//!   sent did not end a line (the first one only hands over the partial line), so
//!   `echo hi | ocirun run -t ... cat` and `printf hi | ocirun run -t ... cat` end.
//! - End of file on the master is read(2) returning 0 or `EIO`: Linux gives `EIO` once every
//!   slave fd is closed (the container and whatever it left behind have exited).
//!
//! [`RelayOptions::discard_stdout`]: crate::RelayOptions::discard_stdout

#![allow(unsafe_code)]

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, SetArg, SpecialCharacterIndices, Termios};
use tracing::debug;

use crate::caller::{CallerStdio, Sink, Source};
use crate::engine::{AtEof, Engine, Flow, Resize, Role};
use crate::error::{RelayError, Stream};
use crate::fdio;
use crate::options::{RelayOptions, RelayReport};

#[cfg(test)]
mod tests;

/// Longest socket path that fits `sockaddr_un.sun_path` (108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

/// Bytes of message data accepted with the master: runc sends the PTY's name, at most 4096.
const MAX_NAME_LEN: usize = 4096;

/// fds accepted in one `SCM_RIGHTS` message; all but the first are closed.
const MAX_FDS: usize = 8;

/// A listening console socket (runc's `--console-socket`), ready for one connection.
///
/// Dropping it closes the socket and removes its file.
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on a new Unix stream socket at `path` (which must not exist) and sets the
    /// socket file's mode to 0700, so that only root can connect. A path longer than
    /// `sun_path` (107 bytes) is bound through `/proc/self/fd/DIR/NAME`, an open of its
    /// parent directory.
    ///
    /// # Errors
    /// [`RelayError::ConsoleSocket`] naming the path: the parent directory cannot be opened,
    /// the path exists (`EADDRINUSE`), or changing the mode fails.
    pub fn bind(path: impl Into<PathBuf>) -> Result<Self, RelayError> {
        let path = path.into();
        let fail = |action, source| RelayError::ConsoleSocket {
            action,
            path: path.clone(),
            source,
        };
        let listener = if path.as_os_str().len() <= SUN_PATH_MAX {
            UnixListener::bind(&path).map_err(|e| fail("listen on", e))?
        } else {
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                return Err(fail(
                    "listen on",
                    std::io::Error::from(std::io::ErrorKind::InvalidInput),
                ));
            };
            let dir = nix::fcntl::open(
                parent,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| fail("open the directory of", e.into()))?;
            let short = Path::new("/proc/self/fd")
                .join(dir.as_raw_fd().to_string())
                .join(name);
            UnixListener::bind(&short).map_err(|e| fail("listen on", e))?
        };
        // From here on, dropping `socket` removes the file.
        let socket = Self {
            listener,
            path: path.clone(),
        };
        std::fs::set_permissions(&socket.path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fail("set the mode of", e))?;
        socket
            .listener
            .set_nonblocking(true)
            .map_err(|e| fail("listen on", e))?;
        debug!(path = %socket.path.display(), "console socket listening");
        Ok(socket)
    }

    /// The socket's path, for `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one connection and receives the PTY master sent over it (steps 3 of the
    /// handshake), waiting at most `timeout` in all. Closes the socket and removes its file.
    ///
    /// # Errors
    /// [`RelayError::ConsoleTimeout`] when nothing arrived in time,
    /// [`RelayError::NoTerminalReceived`] when the message had no fd,
    /// [`RelayError::NotATerminal`] when the fd is not a terminal,
    /// [`RelayError::ConsoleSocket`] when accept(2) or recvmsg(2) fails.
    pub fn receive(self, timeout: Duration) -> Result<PtyMaster, RelayError> {
        let deadline = Instant::now() + timeout;
        let timed_out = || RelayError::ConsoleTimeout {
            path: self.path.clone(),
            timeout,
        };
        let fail = |action, source: std::io::Error| RelayError::ConsoleSocket {
            action,
            path: self.path.clone(),
            source,
        };
        if !wait_readable(self.listener.as_fd(), deadline).map_err(|e| fail("wait on", e.into()))? {
            return Err(timed_out());
        }
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| fail("accept a connection on", e))?;
        if !wait_readable(stream.as_fd(), deadline).map_err(|e| fail("wait on", e.into()))? {
            return Err(timed_out());
        }
        let (name, fds) =
            receive_fds(&stream).map_err(|e| fail("receive the terminal from", e.into()))?;
        debug!(path = %self.path.display(), name = %String::from_utf8_lossy(&name), fds = fds.len(), "received over the console socket");
        let Some(master) = fds.into_iter().next() else {
            return Err(RelayError::NoTerminalReceived {
                path: self.path.clone(),
            });
        };
        PtyMaster::from_fd(master).map_err(|_| RelayError::NotATerminal {
            path: self.path.clone(),
        })
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            debug!(path = %self.path.display(), error = %e, "cannot remove the console socket");
        }
    }
}

/// Waits until `fd` is readable or `deadline` passes; `false` on timeout.
fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant) -> Result<bool, Errno> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = left.as_nanos().div_ceil(1_000_000);
        let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

/// One recvmsg(2) on `stream`: the message data and the fds it carried, each an `OwnedFd`
/// (close-on-exec) from the moment it exists in this process.
fn receive_fds(stream: &UnixStream) -> Result<(Vec<u8>, Vec<OwnedFd>), Errno> {
    let mut data = vec![0u8; MAX_NAME_LEN];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(&mut data)];
    let msg = loop {
        match nix::sys::socket::recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for message in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = message {
            for fd in raw {
                // SAFETY: recvmsg(2) just installed `fd` in this process's fd table for this
                // message; nothing else knows it, so this `OwnedFd` is its only owner.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        debug!("control data truncated: the runtime sent more than {MAX_FDS} fds");
    }
    let len = msg.bytes;
    data.truncate(len);
    Ok((data, fds))
}

/// The master side of the container's pseudo-terminal, as received over the console socket.
#[derive(Debug)]
pub struct PtyMaster {
    fd: OwnedFd,
}

impl PtyMaster {
    /// Wraps the master side of a pseudo-terminal (for a supervisor that has it by other
    /// means, e.g. `openpty(3)`).
    ///
    /// # Errors
    /// Gives `fd` back when it is not a terminal.
    pub fn from_fd(fd: OwnedFd) -> Result<Self, OwnedFd> {
        if nix::unistd::isatty(&fd).unwrap_or(false) {
            Ok(Self { fd })
        } else {
            Err(fd)
        }
    }

    /// The container terminal's window size.
    ///
    /// # Errors
    /// [`RelayError::Terminal`] when `TIOCGWINSZ` fails.
    pub fn window_size(&self) -> Result<WindowSize, RelayError> {
        window_size(self.fd.as_fd(), Stream::ContainerTerminal)
    }

    /// Sets the container terminal's window size; the kernel sends SIGWINCH to its foreground
    /// process group when the size changed.
    ///
    /// # Errors
    /// [`RelayError::Terminal`] when `TIOCSWINSZ` fails.
    pub fn set_window_size(&self, size: WindowSize) -> Result<(), RelayError> {
        set_window_size(self.fd.as_fd(), size)
    }
}

impl AsFd for PtyMaster {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<PtyMaster> for OwnedFd {
    fn from(master: PtyMaster) -> Self {
        master.fd
    }
}

/// A terminal's window size (`struct winsize`, tty_ioctl(4)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowSize {
    /// Rows, in character cells.
    pub rows: u16,
    /// Columns, in character cells.
    pub cols: u16,
    /// Width in pixels (0 when the terminal does not say).
    pub x_pixels: u16,
    /// Height in pixels (0 when the terminal does not say).
    pub y_pixels: u16,
}

impl From<libc::winsize> for WindowSize {
    fn from(w: libc::winsize) -> Self {
        Self {
            rows: w.ws_row,
            cols: w.ws_col,
            x_pixels: w.ws_xpixel,
            y_pixels: w.ws_ypixel,
        }
    }
}

impl From<WindowSize> for libc::winsize {
    fn from(s: WindowSize) -> Self {
        Self {
            ws_row: s.rows,
            ws_col: s.cols,
            ws_xpixel: s.x_pixels,
            ws_ypixel: s.y_pixels,
        }
    }
}

/// The window size of the terminal `fd` (`TIOCGWINSZ`); `stream` names it in the error.
///
/// # Errors
/// [`RelayError::Terminal`] (`ENOTTY` when `fd` is not a terminal).
pub fn window_size(fd: BorrowedFd<'_>, stream: Stream) -> Result<WindowSize, RelayError> {
    fdio::window_size(fd)
        .map(WindowSize::from)
        .map_err(|source| RelayError::Terminal {
            action: "read the window size of",
            stream,
            source,
        })
}

fn set_window_size(fd: BorrowedFd<'_>, size: WindowSize) -> Result<(), RelayError> {
    fdio::set_window_size(fd, &size.into()).map_err(|source| RelayError::Terminal {
        action: "set the window size of",
        stream: Stream::ContainerTerminal,
        source,
    })
}

/// Copies the window size of the caller's terminal `from` (named `stream` in errors) to the
/// container's terminal `to` (a PTY master).
///
/// # Errors
/// [`RelayError::Terminal`] when either ioctl fails.
pub fn copy_window_size(
    from: BorrowedFd<'_>,
    stream: Stream,
    to: BorrowedFd<'_>,
) -> Result<WindowSize, RelayError> {
    let size = window_size(from, stream)?;
    set_window_size(to, size)?;
    debug!(rows = size.rows, cols = size.cols, "window size passed on");
    Ok(size)
}

/// The caller's terminal that window sizes come from: the first of its stdin, stdout and
/// stderr that is a terminal, if any.
pub fn caller_terminal<'a>(caller: &CallerStdio<'a>) -> Option<(BorrowedFd<'a>, Stream)> {
    [
        (caller.stdin, Stream::CallerStdin),
        (caller.stdout, Stream::CallerStdout),
        (caller.stderr, Stream::CallerStderr),
    ]
    .into_iter()
    .find(|(fd, _)| nix::unistd::isatty(fd).unwrap_or(false))
}

/// The bytes that end the input of the terminal `master`: its `VEOF` character (Ctrl-D when
/// it cannot be read or is disabled); twice when the terminal is in canonical mode and
/// `last_byte` did not end a line, as there the first one only hands over the partial line.
pub(crate) fn eof_chars(master: BorrowedFd<'_>, last_byte: Option<u8>) -> Vec<u8> {
    const CTRL_D: u8 = 0x04;
    let settings = termios::tcgetattr(master).ok();
    let eof = settings
        .as_ref()
        .map(|t| t.control_chars[SpecialCharacterIndices::VEOF as usize])
        .filter(|&c| c != 0)
        .unwrap_or(CTRL_D);
    let canonical = settings
        .as_ref()
        .is_none_or(|t| t.local_flags.contains(termios::LocalFlags::ICANON));
    match last_byte {
        Some(b) if canonical && b != b'\n' && b != eof => vec![eof, eof],
        _ => vec![eof],
    }
}

/// The caller's terminal in raw mode; dropping the guard restores the settings it had.
///
/// Raw mode is `cfmakeraw(3)`: no echo, no line editing, no signal characters (Ctrl-C reaches
/// the container's terminal as a byte, where its line discipline turns it into SIGINT for the
/// container's foreground process group), no output processing, 8-bit characters.
#[derive(Debug)]
pub struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
    restored: bool,
}

impl<'fd> RawMode<'fd> {
    /// Saves the settings of the terminal `fd` and puts it in raw mode (`TCSANOW`).
    ///
    /// # Errors
    /// [`RelayError::Terminal`] naming [`Stream::CallerStdin`]: `ENOTTY` when `fd` is not a
    /// terminal, or the settings cannot be read or set.
    pub fn enable(fd: BorrowedFd<'fd>) -> Result<Self, RelayError> {
        let saved = termios::tcgetattr(fd).map_err(|source| RelayError::Terminal {
            action: "read the terminal settings of",
            stream: Stream::CallerStdin,
            source,
        })?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        set_attr(fd, &raw).map_err(|source| RelayError::Terminal {
            action: "set raw mode on",
            stream: Stream::CallerStdin,
            source,
        })?;
        debug!("caller's terminal in raw mode");
        Ok(Self {
            fd,
            saved,
            restored: false,
        })
    }

    /// Restores the saved settings now, reporting failure (dropping the guard does the same,
    /// logging failure).
    ///
    /// # Errors
    /// [`RelayError::Terminal`] when tcsetattr(3) fails (e.g. `EIO`, the terminal hung up).
    pub fn restore(mut self) -> Result<(), RelayError> {
        self.restored = true;
        set_attr(self.fd, &self.saved).map_err(|source| RelayError::Terminal {
            action: "restore the terminal settings of",
            stream: Stream::CallerStdin,
            source,
        })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        if self.restored {
            return;
        }
        match set_attr(self.fd, &self.saved) {
            Ok(()) => debug!("caller's terminal settings restored"),
            Err(errno) => tracing::warn!(%errno, "cannot restore the terminal settings"),
        }
    }
}

/// tcsetattr(3) with `TCSANOW` (no wait for output to drain: a stopped terminal must not hang
/// the restore), retried on `EINTR`.
fn set_attr(fd: BorrowedFd<'_>, settings: &Termios) -> Result<(), Errno> {
    loop {
        match termios::tcsetattr(fd, SetArg::TCSANOW, settings) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// SIGWINCH, received through a signalfd: the relay's notice that the caller's terminal
/// changed size.
///
/// A signalfd only receives signals that are blocked in every thread, so [`ResizeSignal::block`]
/// changes process-wide state: it blocks SIGWINCH in the calling thread, and threads started
/// afterwards inherit that mask. Call it early in `main`, **before any other thread starts**
/// (a thread started earlier that does not block SIGWINCH would take the signal, and it would
/// be lost: its default action is to be ignored). The mask stays when the value is dropped:
/// SIGWINCH stays blocked (harmless: it is ignored by default; a pending one is discarded when
/// it is unblocked). Child processes inherit the mask (`std::process::Command` passes it on
/// since Rust 1.66): spawn the runtime with an empty mask (`CommandExt::pre_exec` with
/// sigprocmask(2), as `ocirun-runtime-driver` does), or the container's process starts with
/// SIGWINCH blocked and never learns of a resize.
#[derive(Debug)]
pub struct ResizeSignal {
    fd: SignalFd,
}

impl ResizeSignal {
    /// Blocks SIGWINCH in the calling thread (see above) and opens a non-blocking,
    /// close-on-exec signalfd for it.
    ///
    /// # Errors
    /// [`RelayError::ResizeSignal`] when pthread_sigmask(3) or signalfd(2) fails.
    pub fn block() -> Result<Self, RelayError> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGWINCH);
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(
            |source| RelayError::ResizeSignal {
                call: "pthread_sigmask",
                source,
            },
        )?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|source| RelayError::ResizeSignal {
                call: "signalfd",
                source,
            })?;
        Ok(Self { fd })
    }

    /// Reads every pending SIGWINCH; returns how many there were.
    pub(crate) fn drain(&self) -> Result<usize, RelayError> {
        let mut count = 0;
        loop {
            match self.fd.read_signal() {
                Ok(Some(_)) => count += 1,
                Ok(None) => return Ok(count),
                Err(Errno::EINTR) => continue,
                Err(source) => {
                    return Err(RelayError::ResizeSignal {
                        call: "read(signalfd)",
                        source,
                    })
                }
            }
        }
    }
}

impl AsFd for ResizeSignal {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Relays between the caller's stdio and the container's terminal until the container's
/// output is complete.
///
/// Takes the master (closed when this returns), the caller's fds (borrowed and left in the
/// mode they had; the caller puts its terminal in raw mode with [`RawMode`] if it wants to),
/// `exited` (as for [`relay`](crate::relay): readable once the container's process exited),
/// `resize` (SIGWINCH notices: the window size of [`caller_terminal`] is copied to the master
/// on each; `None`: no resizing) and the options. Blocks the calling thread.
///
/// Returns once the master reached end of file (every slave fd closed) and everything read was
/// written, or once `exited` was readable and then `options.drain_timeout` passed with nothing
/// read. The report counts input bytes as `stdin_bytes` and output as `stdout_bytes`
/// (`stderr_bytes` is 0). The rules are in the [module documentation](self).
///
/// # Errors
/// [`RelayError::SetNonBlocking`] or [`RelayError::Duplicate`] while setting up, and the
/// errors of [`relay`](crate::relay).
pub fn relay_terminal(
    master: PtyMaster,
    caller: CallerStdio<'_>,
    exited: BorrowedFd<'_>,
    resize: Option<&ResizeSignal>,
    options: &RelayOptions,
) -> Result<RelayReport, RelayError> {
    let _span = tracing::debug_span!("stdio_relay", mode = "terminal").entered();
    fdio::set_nonblocking(master.as_fd()).map_err(|source| RelayError::SetNonBlocking {
        stream: Stream::ContainerTerminal,
        source,
    })?;
    let dup = |fd: &PtyMaster| {
        fd.as_fd()
            .try_clone_to_owned()
            .map_err(|source| RelayError::Duplicate {
                stream: Stream::ContainerTerminal,
                source,
            })
    };
    let input = Flow::new(
        Role::Input,
        Source::caller(caller.stdin, Stream::CallerStdin)?,
        Stream::CallerStdin,
        Some(Sink::own(dup(&master)?)),
        Stream::ContainerTerminal,
        AtEof::SendEofChar,
        false,
    );
    let stdout_sink = if options.discard_stdout {
        None
    } else {
        Some(Sink::caller(caller.stdout, Stream::CallerStdout)?)
    };
    let output = Flow::new(
        Role::Output,
        Some(Source::own(dup(&master)?, true)),
        Stream::ContainerTerminal,
        stdout_sink,
        Stream::CallerStdout,
        AtEof::CloseSink,
        false,
    );
    let resize = resize.map(|signal| Resize {
        signal,
        from: caller_terminal(&caller),
        to: master.as_fd(),
    });
    let outcome = Engine::new(vec![input, output], exited, resize, options.drain_timeout)?.run()?;
    Ok(RelayReport {
        stdin_bytes: outcome.moved[0],
        stdout_bytes: outcome.moved[1],
        stderr_bytes: 0,
        drain_timed_out: outcome.drain_timed_out,
    })
}
