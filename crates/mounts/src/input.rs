//! Bounded, non-blocking reads of the files a run takes as input.
//!
//! A file that ocirun reads (an image config, an env file, a seccomp profile, a mounts file, a
//! secret, the rootfs's user database) must be a regular file of at most [`MAX_INPUT_BYTES`].
//! It is first opened with `O_PATH` (which opens no device and waits for no FIFO writer) and
//! checked with fstat(2); only a regular file is then opened for reading, with `O_NONBLOCK`,
//! checked again on that descriptor, and read to at most one byte past the limit. So a FIFO, a
//! device node (`/dev/zero`, `/dev/urandom`) or a huge sparse file can neither hang ocirun nor
//! be read without limit.

use std::fs::File;
use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};

/// The largest input file ocirun reads: 16 MiB.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// What kind of inode `mode` is, as a message names it ("a FIFO").
pub(crate) fn kind_name(mode: u32) -> &'static str {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFSOCK => "a socket",
        _ => "of an unknown type",
    }
}

/// `Ok` for a regular file of at most [`MAX_INPUT_BYTES`]; else the error that says why not:
/// `not a regular file (a FIFO)` ([`ErrorKind::InvalidInput`]) or `larger than 16 MiB`
/// ([`ErrorKind::FileTooLarge`]).
pub(crate) fn check_input(st: &FileStat) -> io::Result<()> {
    let mode = st.st_mode;
    if SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("not a regular file ({})", kind_name(mode)),
        ));
    }
    if u64::try_from(st.st_size).unwrap_or(u64::MAX) > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    Ok(())
}

fn too_large() -> io::Error {
    io::Error::new(
        ErrorKind::FileTooLarge,
        format!("larger than {} MiB", MAX_INPUT_BYTES >> 20),
    )
}

/// Reads the regular file `file` (opened for reading) after checking it with fstat(2): at most
/// [`MAX_INPUT_BYTES`], whatever its size says.
pub(crate) fn read_checked(file: File) -> io::Result<Vec<u8>> {
    check_input(&fstat(file.as_fd())?)?;
    let mut buf = Vec::new();
    file.take(MAX_INPUT_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    Ok(buf)
}

/// Opens the inode that the `O_PATH` descriptor `path_fd` names for reading, with
/// `O_NONBLOCK`, if it is a regular file of at most [`MAX_INPUT_BYTES`]; the reopened
/// descriptor must name the same inode.
fn reopen_for_reading(path_fd: &OwnedFd) -> io::Result<File> {
    check_input(&fstat(path_fd.as_fd())?)?;
    reopen(
        path_fd.as_fd(),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
    )
}

/// Opens the inode that the `O_PATH` descriptor `path_fd` names, with `flags` and
/// `O_CLOEXEC`, through its `/proc/self/fd` entry: no path is resolved again, in the rootfs or
/// elsewhere, so what is opened is what `path_fd` was checked to be. The new descriptor must
/// name the same inode (device and inode numbers).
///
/// # Errors
/// The open(2) or fstat(2) error; [`ErrorKind::Other`] `replaced while it was opened` when
/// the inodes differ.
pub(crate) fn reopen(path_fd: BorrowedFd<'_>, flags: OFlag) -> io::Result<File> {
    let before = fstat(path_fd)?;
    let file: File = open(
        format!("/proc/self/fd/{}", path_fd.as_raw_fd()).as_str(),
        flags | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?
    .into();
    let after = fstat(file.as_fd())?;
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) {
        return Err(io::Error::other("replaced while it was opened"));
    }
    Ok(file)
}

/// Reads the host file `path` (symlinks followed): a regular file of at most
/// [`MAX_INPUT_BYTES`], never opened for reading unless it is one, and then with `O_NONBLOCK`.
/// The caller names the file in its message (`--env-file "/tmp/f": not a regular file (a
/// FIFO)`).
///
/// # Errors
/// The open or read error (`NotFound` for a missing file); [`ErrorKind::InvalidInput`] `not a
/// regular file (a FIFO)`; [`ErrorKind::FileTooLarge`] `larger than 16 MiB`.
pub fn read_input_file(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path_fd = open(
        path.as_ref(),
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    read_checked(reopen_for_reading(&path_fd)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn err(path: &Path) -> (ErrorKind, String) {
        let e = read_input_file(path).unwrap_err();
        (e.kind(), e.to_string())
    }

    #[test]
    fn regular_files_are_read_and_others_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "text\n").unwrap();
        assert_eq!(read_input_file(&file).unwrap(), b"text\n");

        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let started = Instant::now();
        assert_eq!(
            err(&fifo),
            (
                ErrorKind::InvalidInput,
                "not a regular file (a FIFO)".into()
            )
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            err(Path::new("/dev/zero")),
            (
                ErrorKind::InvalidInput,
                "not a regular file (a character device)".into()
            )
        );
        assert_eq!(
            err(dir.path()),
            (
                ErrorKind::InvalidInput,
                "not a regular file (a directory)".into()
            )
        );
        assert_eq!(err(&dir.path().join("none")).0, ErrorKind::NotFound);

        // A sparse file one byte over the limit; one of exactly the limit is read.
        let big = dir.path().join("big");
        let f = File::create(&big).unwrap();
        f.set_len(MAX_INPUT_BYTES + 1).unwrap();
        assert_eq!(
            err(&big),
            (ErrorKind::FileTooLarge, "larger than 16 MiB".into())
        );
        f.set_len(MAX_INPUT_BYTES).unwrap();
        assert_eq!(read_input_file(&big).unwrap().len() as u64, MAX_INPUT_BYTES);
    }

    #[test]
    fn a_symlink_to_a_fifo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert_eq!(
            err(&link),
            (
                ErrorKind::InvalidInput,
                "not a regular file (a FIFO)".into()
            )
        );
    }
}
