//! Thin wrappers over read(2), write(2), splice(2), fcntl(2), fstat(2) and the FIONREAD ioctl,
//! with the relay's retry rules.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag, SpliceFFlags};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{fstat, SFlag};

/// What a read(2), write(2) or splice(2) that did not fail did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Io {
    /// This many bytes moved; 0 from a read or splice is end of file.
    Done(usize),
    /// `EAGAIN`: nothing can move now; wait for readiness.
    WouldBlock,
}

/// One read(2), retried on `EINTR`; `EAGAIN` becomes [`Io::WouldBlock`].
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Io, Errno> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(Io::Done(n)),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(Io::WouldBlock),
            Err(errno) => return Err(errno),
        }
    }
}

/// One write(2), retried on `EINTR`; `EAGAIN` becomes [`Io::WouldBlock`].
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> Result<Io, Errno> {
    loop {
        match nix::unistd::write(fd, buf) {
            Ok(n) => return Ok(Io::Done(n)),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(Io::WouldBlock),
            Err(errno) => return Err(errno),
        }
    }
}

/// One splice(2) of at most `len` bytes from `from` to `to` at their file offsets, with
/// `SPLICE_F_NONBLOCK` (the pipe side never blocks, whatever the mode of its open file
/// description) and `SPLICE_F_MOVE`; retried on `EINTR`, `EAGAIN` becomes [`Io::WouldBlock`]
/// (the source pipe is empty or the destination pipe is full).
pub(crate) fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> Result<Io, Errno> {
    loop {
        match nix::fcntl::splice(
            from,
            None,
            to,
            None,
            len,
            SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
        ) {
            Ok(n) => return Ok(Io::Done(n)),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(Io::WouldBlock),
            Err(errno) => return Err(errno),
        }
    }
}

/// The file status flags (`F_GETFL`) of `fd`'s open file description.
pub(crate) fn status_flags(fd: BorrowedFd<'_>) -> Result<OFlag, Errno> {
    fcntl(fd, FcntlArg::F_GETFL).map(OFlag::from_bits_retain)
}

/// Sets `O_NONBLOCK` on `fd`'s open file description. Only for descriptions the relay owns
/// alone: the flag is shared by every fd that refers to the same description.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = status_flags(fd)?;
    if !flags.contains(OFlag::O_NONBLOCK) {
        fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    }
    Ok(())
}

/// What an fd refers to, by fstat(2); it decides how the relay moves bytes to or from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A pipe or FIFO: spliced where the other end allows it.
    Fifo,
    /// A regular file or block device: always ready, never waits for a peer.
    File,
    /// A character device: a terminal, `/dev/null`.
    CharDevice,
    /// A socket, or anything else (or an fd fstat(2) fails on).
    Other,
}

/// The [`FdKind`] of `fd`.
pub(crate) fn kind(fd: BorrowedFd<'_>) -> FdKind {
    let Ok(stat) = fstat(fd) else {
        return FdKind::Other;
    };
    let format = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    if format == SFlag::S_IFIFO {
        FdKind::Fifo
    } else if format == SFlag::S_IFREG || format == SFlag::S_IFBLK {
        FdKind::File
    } else if format == SFlag::S_IFCHR {
        FdKind::CharDevice
    } else {
        FdKind::Other
    }
}

nix::ioctl_read_bad!(
    /// `ioctl(fd, FIONREAD, &mut int)`.
    fionread,
    libc::FIONREAD,
    libc::c_int
);
nix::ioctl_read_bad!(
    /// `ioctl(fd, TIOCGWINSZ, &mut winsize)`.
    tiocgwinsz,
    libc::TIOCGWINSZ,
    libc::winsize
);
nix::ioctl_write_ptr_bad!(
    /// `ioctl(fd, TIOCSWINSZ, &winsize)`.
    tiocswinsz,
    libc::TIOCSWINSZ,
    libc::winsize
);

/// The window size of the terminal `fd` (`TIOCGWINSZ`, tty_ioctl(4)).
pub(crate) fn window_size(fd: BorrowedFd<'_>) -> Result<libc::winsize, Errno> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which points to
    // `size`, alive and writable for the call; `fd` is open for the borrow's lifetime.
    unsafe { tiocgwinsz(fd.as_raw_fd(), &mut size) }?;
    Ok(size)
}

/// Sets the window size of the terminal `fd` (`TIOCSWINSZ`, tty_ioctl(4)).
pub(crate) fn set_window_size(fd: BorrowedFd<'_>, size: &libc::winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads one `struct winsize` through the pointer, which points to
    // `size`, alive for the call; `fd` is open for the borrow's lifetime.
    unsafe { tiocswinsz(fd.as_raw_fd(), size) }?;
    Ok(())
}

/// Bytes waiting to be read from the pipe `fd` (`FIONREAD`, pipe(7)).
pub(crate) fn readable_bytes(fd: BorrowedFd<'_>) -> Result<usize, Errno> {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points to `count`, alive
    // and writable for the duration of the call; `fd` is open for the borrow's lifetime.
    unsafe { fionread(fd.as_raw_fd(), &mut count) }?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// Whether `fd` reports `POLLHUP` right now (a pipe whose write ends are all closed), by a
/// poll(2) that does not wait. A poll failure counts as not hung up.
pub(crate) fn hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
        Err(_) => false,
    }
}
