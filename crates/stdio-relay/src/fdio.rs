//! Thin wrappers over read(2), write(2) and fcntl(2) with the relay's retry rules.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

/// What a read(2) or write(2) that did not fail did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Io {
    /// This many bytes moved; 0 from a read is end of file.
    Done(usize),
    /// `EAGAIN`: nothing can move now; wait for poll(2).
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
