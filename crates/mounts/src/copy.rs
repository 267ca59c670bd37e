//! Copying trees: image volumes out of a rootfs, secrets from the host.
//!
//! Image volumes come from untrusted image content, so the copy never resolves a path: the
//! volume's own path is resolved once through the rootfs's root handle (a symlink in it ends
//! inside the rootfs), and below it every entry is opened relative to its parent directory's
//! file descriptor with `O_NOFOLLOW`, its type taken from `fstatat(AT_SYMLINK_NOFOLLOW)` and
//! checked again on the opened descriptor. Symlinks are copied as symlinks (their targets are
//! text, never followed), hard links become hard links again (by device and inode), device
//! nodes, FIFOs and sockets are made with mknod(2), and owners, modes (set-id bits included),
//! extended attributes and times are kept. The copy is written the same way, relative to
//! directory descriptors of the new tree, so nothing can redirect it either. A regular file's
//! holes stay holes: only its data segments (`SEEK_DATA`/`SEEK_HOLE`) are copied, with
//! copy_file_range(2) where the kernel can, so a sparse file of gigabytes takes the space its
//! data takes. A copy asks its caller's [`Interrupt`] whether to give up, between entries and
//! between chunks of a file, at most every [`INTERRUPT_POLL`].
//!
//! Secrets come from the host paths the administrator listed: they are copied with symlinks
//! followed (a symlink loop is skipped), modes and owners kept; each file must be a regular
//! file of at most 16 MiB, read without blocking ([`read_input_file`](crate::read_input_file)).

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags,
    FileStat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use pathrs::flags::OpenFlags;

use crate::error::io_from_pathrs;
use crate::{MountsError, Rootfs};

/// How deep a copied tree may be: each level holds two directory descriptors open.
const MAX_DEPTH: usize = 256;

/// How often a copy asks whether to give up: a stop signal ends it within this (and one
/// chunk) of arriving.
pub(crate) const INTERRUPT_POLL: Duration = Duration::from_millis(50);

/// The most bytes of a file copied between two questions to the [`Interrupt`].
const CHUNK: usize = 8 << 20;

/// A caller's `cancelled` (true: give the work up), asked at most every [`INTERRUPT_POLL`].
pub(crate) struct Interrupt<'a> {
    cancelled: Option<&'a mut dyn FnMut() -> bool>,
    next: Instant,
    /// Whether `cancelled` said so.
    pub(crate) hit: bool,
}

impl<'a> Interrupt<'a> {
    /// Asks `cancelled`.
    pub(crate) fn new(cancelled: &'a mut dyn FnMut() -> bool) -> Self {
        Self {
            cancelled: Some(cancelled),
            next: Instant::now(),
            hit: false,
        }
    }

    /// Never gives up.
    #[cfg(test)]
    pub(crate) fn never() -> Self {
        Self {
            cancelled: None,
            next: Instant::now(),
            hit: false,
        }
    }

    /// Whether to give up: once `cancelled` returned true, always.
    pub(crate) fn check(&mut self) -> bool {
        if self.hit {
            return true;
        }
        let Some(cancelled) = self.cancelled.as_mut() else {
            return false;
        };
        let now = Instant::now();
        if now >= self.next {
            self.next = now + INTERRUPT_POLL;
            self.hit = cancelled();
        }
        self.hit
    }

    /// The error of an entry whose copy was given up.
    fn stop(rel: &Path) -> CopyError {
        CopyError {
            path: rel.to_path_buf(),
            source: io::Error::other(GaveUp),
        }
    }
}

/// The source of the [`CopyError`] of a copy that its [`Interrupt`] ended.
#[derive(Debug, thiserror::Error)]
#[error("copy given up")]
struct GaveUp;

impl CopyError {
    /// Whether its [`Interrupt`] ended the copy.
    fn gave_up(&self) -> bool {
        self.source.get_ref().is_some_and(|e| e.is::<GaveUp>())
    }
}

/// A failure while copying, with the entry it happened at (relative to the copied tree).
#[derive(Debug)]
pub(crate) struct CopyError {
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

fn at(path: &Path) -> impl Fn(Errno) -> CopyError + '_ {
    move |e| CopyError {
        path: path.to_path_buf(),
        source: io::Error::from(e),
    }
}

fn at_io(path: &Path) -> impl Fn(io::Error) -> CopyError + '_ {
    move |source| CopyError {
        path: path.to_path_buf(),
        source,
    }
}

fn kind_of(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn times(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

/// Copies the image volume `volume` (a path inside `rootfs`) to the new directory `dest`
/// (which must not exist; its parent must). A volume path that does not exist in the rootfs
/// gives an empty directory (mode 0755). `interrupt` is asked between entries and chunks.
///
/// # Errors
/// [`MountsError::ImageVolumeNotDirectory`] when the path is not a directory;
/// [`MountsError::Cancelled`] when `interrupt` said to give up (what was copied stays in
/// `dest`, for the caller to remove); [`MountsError::CopyImageVolume`] naming the entry that
/// failed.
pub(crate) fn copy_image_volume(
    rootfs: &Rootfs,
    volume: &Path,
    dest: &Path,
    interrupt: &mut Interrupt<'_>,
) -> Result<(), MountsError> {
    let fail = |e: CopyError| {
        if e.gave_up() {
            return MountsError::Cancelled(format!("copying image volume {volume:?}"));
        }
        MountsError::CopyImageVolume {
            volume: volume.to_path_buf(),
            path: volume.join(&e.path),
            source: e.source,
        }
    };
    let handle = match rootfs.root().resolve(volume) {
        Ok(handle) => handle,
        Err(e) => {
            let err = io_from_pathrs(e);
            if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) {
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(dest)
                    .and_then(|()| std::fs::set_permissions(dest, PermissionsExt::from_mode(0o755)))
                    .map_err(at_io(Path::new("")))
                    .map_err(fail)?;
                return Ok(());
            }
            return Err(fail(CopyError {
                path: PathBuf::new(),
                source: err,
            }));
        }
    };
    let src: OwnedFd = match handle.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY) {
        Ok(file) => file.into(),
        Err(e) => {
            let err = io_from_pathrs(e);
            if err.kind() == ErrorKind::NotADirectory {
                return Err(MountsError::ImageVolumeNotDirectory(volume.to_path_buf()));
            }
            return Err(fail(CopyError {
                path: PathBuf::new(),
                source: err,
            }));
        }
    };
    let top = Path::new("");
    let st = fstat(&src).map_err(at(top)).map_err(fail)?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dest)
        .map_err(at_io(top))
        .map_err(fail)?;
    let dst = openat(
        AT_FDCWD,
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(at(top))
    .map_err(fail)?;
    let mut copier = TreeCopy {
        links: HashMap::new(),
        dest_root: dest.to_path_buf(),
        interrupt,
    };
    copier
        .copy_dir(src.as_fd(), dst.as_fd(), top, 0)
        .map_err(fail)?;
    set_fd_meta(src.as_fd(), dst.as_fd(), &st)
        .map_err(at(top))
        .map_err(fail)
}

struct TreeCopy<'i, 'c> {
    /// (device, inode) of a source inode with several links -> the copy's path.
    links: HashMap<(u64, u64), PathBuf>,
    dest_root: PathBuf,
    interrupt: &'i mut Interrupt<'c>,
}

impl TreeCopy<'_, '_> {
    /// Copies the entries of the directory `src` into the directory `dst`; `rel` is their
    /// path relative to the tree's top.
    fn copy_dir(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        rel: &Path,
        depth: usize,
    ) -> Result<(), CopyError> {
        if depth >= MAX_DEPTH {
            return Err(CopyError {
                path: rel.to_path_buf(),
                source: io::Error::other(format!("deeper than {MAX_DEPTH} directories")),
            });
        }
        let mut names: Vec<CString> = Vec::new();
        {
            let mut dir = Dir::openat(
                src,
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(at(rel))?;
            for entry in dir.iter() {
                let entry = entry.map_err(at(rel))?;
                let name = entry.file_name();
                if name.to_bytes() != b"." && name.to_bytes() != b".." {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        for name in names {
            let path = rel.join(OsStr::from_bytes(name.to_bytes()));
            self.copy_entry(src, dst, &name, &path, depth)?;
        }
        Ok(())
    }

    fn copy_entry(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &CStr,
        rel: &Path,
        depth: usize,
    ) -> Result<(), CopyError> {
        if self.interrupt.check() {
            return Err(Interrupt::stop(rel));
        }
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(at(rel))?;
        let kind = kind_of(&st);
        let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
        if kind != SFlag::S_IFDIR && st.st_nlink > 1 {
            if let Some(first) = self.links.get(&(st.st_dev, st.st_ino)) {
                return linkat(AT_FDCWD, first.as_path(), dst, name, AtFlags::empty())
                    .map_err(at(rel));
            }
            self.links
                .insert((st.st_dev, st.st_ino), self.dest_root.join(rel));
        }
        let same = |fd: BorrowedFd<'_>| -> Result<(), CopyError> {
            let now = fstat(fd).map_err(at(rel))?;
            if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino) && kind_of(&now) == kind {
                Ok(())
            } else {
                Err(CopyError {
                    path: rel.to_path_buf(),
                    source: io::Error::other("changed while it was being copied"),
                })
            }
        };
        let (atime, mtime) = times(&st);
        match kind {
            SFlag::S_IFDIR => {
                let child = openat(
                    src,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(at(rel))?;
                same(child.as_fd())?;
                mkdirat(dst, name, Mode::from_bits_truncate(0o700)).map_err(at(rel))?;
                let copy = openat(
                    dst,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(at(rel))?;
                self.copy_dir(child.as_fd(), copy.as_fd(), rel, depth + 1)?;
                set_fd_meta(child.as_fd(), copy.as_fd(), &st).map_err(at(rel))
            }
            SFlag::S_IFREG => {
                let file = openat(
                    src,
                    name,
                    OFlag::O_RDONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_NONBLOCK
                        | OFlag::O_NOCTTY
                        | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(at(rel))?;
                same(file.as_fd())?;
                let copy = openat(
                    dst,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(at(rel))?;
                let (from, to) = (File::from(file), File::from(copy));
                let len = u64::try_from(st.st_size).unwrap_or(0);
                if !copy_file_data(&from, &to, len, self.interrupt).map_err(at_io(rel))? {
                    return Err(Interrupt::stop(rel));
                }
                set_fd_meta(from.as_fd(), to.as_fd(), &st).map_err(at(rel))
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(src, name).map_err(at(rel))?;
                symlinkat(target.as_os_str(), dst, name).map_err(at(rel))?;
                chown_at(dst, name, &st).map_err(at(rel))?;
                utimensat(dst, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(at(rel))
            }
            _ => {
                // Device nodes, FIFOs, sockets: never opened for I/O.
                mknodat(dst, name, kind, perm, st.st_rdev).map_err(at(rel))?;
                chown_at(dst, name, &st).map_err(at(rel))?;
                fchmodat(dst, name, perm, FchmodatFlags::FollowSymlink).map_err(at(rel))?;
                let src_node = openat(
                    src,
                    name,
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(at(rel))?;
                same(src_node.as_fd())?;
                let dst_node = openat(
                    dst,
                    name,
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(at(rel))?;
                copy_xattrs(
                    &XattrTarget::Path(src_node.as_fd()),
                    &XattrTarget::Path(dst_node.as_fd()),
                )
                .map_err(at(rel))?;
                utimensat(dst, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(at(rel))
            }
        }
    }
}

/// Gives the entry `name` of the directory `dst` (not following a symlink) the owner of `st`,
/// when it has another one.
fn chown_at(dst: BorrowedFd<'_>, name: &CStr, st: &FileStat) -> Result<(), Errno> {
    let now = fstatat(dst, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if (now.st_uid, now.st_gid) == (st.st_uid, st.st_gid) {
        return Ok(());
    }
    fchownat(
        dst,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// Copies the `len` bytes of the regular file `from` into the empty file `to`, keeping holes:
/// each data segment that `lseek(SEEK_DATA)` and `lseek(SEEK_HOLE)` find is copied with
/// copy_file_range(2) (with pread/pwrite where the kernel cannot, e.g. across filesystems),
/// at most [`CHUNK`] bytes between two questions to `interrupt`; `ftruncate` then gives the
/// copy its length, so a hole at the end stays one too. A filesystem without `SEEK_DATA`
/// has its file copied whole. Returns false when `interrupt` said to give up.
fn copy_file_data(
    from: &File,
    to: &File,
    len: u64,
    interrupt: &mut Interrupt<'_>,
) -> io::Result<bool> {
    use rustix::fs::SeekFrom;
    let mut ranges_supported = true;
    let mut kernel_copy = true;
    let mut offset = 0u64;
    while offset < len {
        let start = if ranges_supported {
            match rustix::fs::seek(from, SeekFrom::Data(offset)) {
                Ok(start) => start,
                // No data after `offset`: the rest is a hole.
                Err(rustix::io::Errno::NXIO) => break,
                Err(rustix::io::Errno::INVAL) => {
                    ranges_supported = false;
                    offset
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            offset
        };
        let end = if ranges_supported {
            rustix::fs::seek(from, SeekFrom::Hole(start))?.min(len)
        } else {
            len
        };
        let mut at = start;
        while at < end {
            if interrupt.check() {
                return Ok(false);
            }
            let want = usize::try_from(end - at).unwrap_or(CHUNK).min(CHUNK);
            let copied = if kernel_copy {
                let (mut off_in, mut off_out) = (at, at);
                match rustix::fs::copy_file_range(
                    from,
                    Some(&mut off_in),
                    to,
                    Some(&mut off_out),
                    want,
                ) {
                    Ok(n) => n,
                    Err(
                        rustix::io::Errno::XDEV
                        | rustix::io::Errno::INVAL
                        | rustix::io::Errno::NOSYS
                        | rustix::io::Errno::OPNOTSUPP
                        | rustix::io::Errno::PERM,
                    ) => {
                        kernel_copy = false;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                copy_range_by_hand(from, to, at, want)?
            };
            if copied == 0 {
                // The file shrank meanwhile: the rest stays a hole.
                break;
            }
            at += copied as u64;
        }
        if at < end {
            break;
        }
        offset = end;
    }
    to.set_len(len)?;
    Ok(true)
}

/// Copies up to `want` bytes at `offset` of `from` to the same offset of `to` with pread and
/// pwrite; returns how many (0 at the end of `from`).
fn copy_range_by_hand(from: &File, to: &File, offset: u64, want: usize) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; want.min(1 << 20)];
    let n = loop {
        match from.read_at(&mut buf, offset) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            result => break result?,
        }
    };
    to.write_all_at(&buf[..n], offset)?;
    Ok(n)
}

/// Extended attributes, timestamps, owner and mode of `src` (stat `st`) onto `dst`, in the
/// order that keeps them all (chown clears set-id bits, so the mode comes after it).
fn set_fd_meta(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, st: &FileStat) -> Result<(), Errno> {
    copy_xattrs(&XattrTarget::Fd(src), &XattrTarget::Fd(dst))?;
    let now = fstat(dst)?;
    if (now.st_uid, now.st_gid) != (st.st_uid, st.st_gid) {
        fchown(
            dst,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        )?;
    }
    fchmod(dst, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    let (atime, mtime) = times(st);
    futimens(dst, &atime, &mtime)
}

/// Where extended attributes are read or written: an open file, or an `O_PATH` descriptor
/// reached through `/proc/self/fd` (device nodes, which are never opened for I/O).
enum XattrTarget<'a> {
    Fd(BorrowedFd<'a>),
    Path(BorrowedFd<'a>),
}

impl XattrTarget<'_> {
    fn proc_path(fd: BorrowedFd<'_>) -> String {
        format!("/proc/self/fd/{}", fd.as_raw_fd())
    }

    fn list(&self) -> rustix::io::Result<Vec<u8>> {
        read_growing(|buf| match self {
            Self::Fd(fd) => rustix::fs::flistxattr(fd, buf),
            Self::Path(fd) => rustix::fs::listxattr(Self::proc_path(*fd), buf),
        })
    }

    fn get(&self, name: &CStr) -> rustix::io::Result<Vec<u8>> {
        read_growing(|buf| match self {
            Self::Fd(fd) => rustix::fs::fgetxattr(fd, name, buf),
            Self::Path(fd) => rustix::fs::getxattr(Self::proc_path(*fd), name, buf),
        })
    }

    fn set(&self, name: &CStr, value: &[u8]) -> rustix::io::Result<()> {
        let flags = rustix::fs::XattrFlags::empty();
        match self {
            Self::Fd(fd) => rustix::fs::fsetxattr(fd, name, value, flags),
            Self::Path(fd) => rustix::fs::setxattr(Self::proc_path(*fd), name, value, flags),
        }
    }
}

/// Calls `read` (a `listxattr`/`getxattr` that fills the buffer and returns the length in
/// bytes) with a buffer of 256 bytes, four times larger after each ERANGE up to 1 MiB, and
/// returns the bytes read. Errors: the last call's.
fn read_growing(
    mut read: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
) -> rustix::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        match read(&mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}

/// Copies every extended attribute. A filesystem that does not support one (ENOTSUP) is not
/// an error: that attribute is left out, with a debug message.
fn copy_xattrs(src: &XattrTarget<'_>, dst: &XattrTarget<'_>) -> Result<(), Errno> {
    let errno = |e: rustix::io::Errno| Errno::from_raw(e.raw_os_error());
    let names = match src.list() {
        Ok(names) => names,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(errno(e)),
    };
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = CString::new(name).expect("split at NUL bytes");
        let value = match src.get(&name) {
            Ok(v) => v,
            // Removed meanwhile.
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(errno(e)),
        };
        match dst.set(&name, &value) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOTSUP) => {
                tracing::debug!(xattr = ?name, "extended attribute not supported here: left out");
            }
            Err(e) => return Err(errno(e)),
        }
    }
    Ok(())
}

/// Copies the host path `src` (file or directory, symlinks followed) to `dest`, which must
/// not exist, keeping modes and owners. Entries below `src` that are neither regular files nor
/// directories, and symlinks that lead back into a directory being copied, are skipped with a
/// warning, never opened. `src` itself, and every file copied, must be a regular file of at
/// most 16 MiB ([`read_input_file`](crate::read_input_file)): anything else is an error.
pub(crate) fn copy_host_tree(src: &Path, dest: &Path) -> io::Result<()> {
    let mut ancestors = HashSet::new();
    copy_host_entry(src, dest, &mut ancestors)
}

fn copy_host_entry(src: &Path, dest: &Path, ancestors: &mut HashSet<(u64, u64)>) -> io::Result<()> {
    let meta = std::fs::metadata(src)?;
    if meta.is_dir() {
        let key = (meta.dev(), meta.ino());
        if !ancestors.insert(key) {
            tracing::warn!(path = %src.display(), "symlink loop in a secret: skipped");
            return Ok(());
        }
        std::fs::DirBuilder::new().mode(0o700).create(dest)?;
        let mut entries: Vec<_> = std::fs::read_dir(src)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let from = entry.path();
            match std::fs::metadata(&from) {
                Ok(m) if m.is_dir() || m.is_file() => {
                    copy_host_entry(&from, &dest.join(entry.file_name()), ancestors)?;
                }
                Ok(_) => {
                    tracing::warn!(path = %from.display(), "not a file or directory: left out of the secret");
                }
                Err(e) => {
                    tracing::warn!(path = %from.display(), error = %e, "cannot follow: left out of the secret");
                }
            }
        }
        ancestors.remove(&key);
    } else {
        // A regular file of at most 16 MiB, never opened for reading otherwise.
        let bytes = crate::read_input_file(src)?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))?;
    }
    let made = std::fs::symlink_metadata(dest)?;
    if (made.uid(), made.gid()) != (meta.uid(), meta.gid()) {
        std::os::unix::fs::chown(dest, Some(meta.uid()), Some(meta.gid()))?;
    }
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// The owner the test's files get: this process's effective ids.
    fn me() -> String {
        format!("{}:{}", Uid::effective(), Gid::effective())
    }

    fn desc(path: &Path) -> String {
        let m = std::fs::symlink_metadata(path).unwrap();
        let kind = if m.file_type().is_symlink() {
            format!("link->{}", std::fs::read_link(path).unwrap().display())
        } else if m.is_dir() {
            "dir".to_owned()
        } else if m.is_file() {
            format!("file:{}", std::fs::read_to_string(path).unwrap_or_default())
        } else {
            "special".to_owned()
        };
        format!("{kind} {:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid())
    }

    #[test]
    fn image_volume_copy_keeps_everything_and_stays_inside() {
        let root = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let r = root.path();
        let vol = r.join("srv/data");
        std::fs::create_dir_all(vol.join("sub")).unwrap();
        std::fs::write(vol.join("a"), "A").unwrap();
        std::fs::set_permissions(vol.join("a"), PermissionsExt::from_mode(0o4750)).unwrap();
        std::fs::hard_link(vol.join("a"), vol.join("sub/a-link")).unwrap();
        symlink("/etc/passwd", vol.join("abs")).unwrap();
        symlink("../a", vol.join("sub/rel")).unwrap();
        nix::unistd::mkfifo(&vol.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        // Another owner where the test may give one (as root), its own otherwise.
        let sub_owner = if Uid::effective().is_root() {
            std::os::unix::fs::chown(vol.join("sub"), Some(1000), Some(1001)).unwrap();
            "1000:1001".to_owned()
        } else {
            me()
        };
        std::fs::set_permissions(vol.join("sub"), PermissionsExt::from_mode(0o751)).unwrap();
        rustix::fs::setxattr(
            vol.join("a"),
            "user.k",
            b"v",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        // The volume path itself is an absolute symlink: it resolves inside the rootfs.
        std::fs::create_dir(r.join("v")).unwrap();
        symlink("/srv/data", r.join("v/link")).unwrap();

        let rootfs = Rootfs::open(r).unwrap();
        let dest = out.path().join("copy");
        copy_image_volume(
            &rootfs,
            Path::new("/v/link"),
            &dest,
            &mut Interrupt::never(),
        )
        .unwrap();

        let me = me();
        assert_eq!(desc(&dest.join("a")), format!("file:A 4750 {me}"));
        assert_eq!(desc(&dest.join("sub")), format!("dir 751 {sub_owner}"));
        assert_eq!(
            desc(&dest.join("abs")),
            format!("link->/etc/passwd 777 {me}")
        );
        assert_eq!(desc(&dest.join("sub/rel")), format!("link->../a 777 {me}"));
        assert_eq!(desc(&dest.join("fifo")), format!("special 640 {me}"));
        let (a, l) = (
            std::fs::metadata(dest.join("a")).unwrap(),
            std::fs::metadata(dest.join("sub/a-link")).unwrap(),
        );
        assert_eq!((a.ino(), a.nlink()), (l.ino(), 2), "hard link kept");
        let mut value = [0u8; 8];
        let n = rustix::fs::getxattr(dest.join("a"), "user.k", &mut value[..]).unwrap();
        assert_eq!(&value[..n], b"v");
        assert_eq!(
            std::fs::metadata(dest.join("a")).unwrap().mtime(),
            std::fs::metadata(vol.join("a")).unwrap().mtime()
        );
    }

    #[test]
    fn xattrs_larger_than_the_first_buffer_are_copied_whole() {
        let root = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let vol = root.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        std::fs::write(vol.join("f"), "").unwrap();
        let set = |name: &str, value: &[u8]| {
            rustix::fs::setxattr(vol.join("f"), name, value, rustix::fs::XattrFlags::empty())
                .unwrap();
        };
        // 30 names of 18 bytes with their NULs: a 540-byte list; a 2000-byte value.
        let names: Vec<String> = (0..30).map(|i| format!("user.attribute-{i:02}")).collect();
        for name in &names {
            set(name, name.as_bytes());
        }
        let big: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        set("user.big", &big);

        let rootfs = Rootfs::open(root.path()).unwrap();
        let dest = out.path().join("copy");
        copy_image_volume(&rootfs, Path::new("/vol"), &dest, &mut Interrupt::never()).unwrap();

        let mut list = vec![0u8; 4096];
        let n = rustix::fs::listxattr(dest.join("f"), &mut list[..]).unwrap();
        let mut copied: Vec<&[u8]> = list[..n]
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .collect();
        copied.sort_unstable();
        let mut expected: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        expected.push(b"user.big");
        expected.sort_unstable();
        assert_eq!(copied, expected);
        let mut value = vec![0u8; 4096];
        let n = rustix::fs::getxattr(dest.join("f"), "user.big", &mut value[..]).unwrap();
        assert_eq!(&value[..n], &big[..]);
        let n = rustix::fs::getxattr(dest.join("f"), "user.attribute-29", &mut value[..]).unwrap();
        assert_eq!(&value[..n], b"user.attribute-29");
    }

    #[test]
    fn holes_stay_holes_and_data_is_copied() {
        use std::os::unix::fs::FileExt;
        let root = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let vol = root.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        // 4 GiB with 3 bytes of data in the middle and a hole at each end; another file all
        // data, larger than a chunk.
        let sparse = std::fs::File::create(vol.join("sparse")).unwrap();
        sparse.set_len(4 << 30).unwrap();
        sparse.write_all_at(b"mid", 2 << 30).unwrap();
        let dense: Vec<u8> = (0..(CHUNK + 4096)).map(|i| (i % 253) as u8).collect();
        std::fs::write(vol.join("dense"), &dense).unwrap();
        let rootfs = Rootfs::open(root.path()).unwrap();
        let dest = out.path().join("copy");
        copy_image_volume(&rootfs, Path::new("/vol"), &dest, &mut Interrupt::never()).unwrap();

        let copy = std::fs::File::open(dest.join("sparse")).unwrap();
        let meta = copy.metadata().unwrap();
        assert_eq!(meta.len(), 4 << 30);
        assert!(meta.blocks() * 512 <= 1 << 20, "{} blocks", meta.blocks());
        let mut buf = [9u8; 5];
        copy.read_exact_at(&mut buf, (2 << 30) - 1).unwrap();
        assert_eq!(&buf, b"\0mid\0");
        assert_eq!(std::fs::read(dest.join("dense")).unwrap(), dense);
    }

    #[test]
    fn a_copy_that_is_given_up_says_so() {
        let root = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let vol = root.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        std::fs::write(vol.join("f"), "x").unwrap();
        let rootfs = Rootfs::open(root.path()).unwrap();
        let mut asked = 0;
        let mut cancelled = || {
            asked += 1;
            true
        };
        let err = copy_image_volume(
            &rootfs,
            Path::new("/vol"),
            &out.path().join("copy"),
            &mut Interrupt::new(&mut cancelled),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"interrupted while copying image volume "/vol""#
        );
        assert!(!out.path().join("copy/f").exists());
        assert_eq!(asked, 1);
    }

    #[test]
    fn a_missing_volume_is_an_empty_directory_and_a_file_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("file"), "x").unwrap();
        let rootfs = Rootfs::open(root.path()).unwrap();
        let dest = out.path().join("empty");
        copy_image_volume(
            &rootfs,
            Path::new("/not/there"),
            &dest,
            &mut Interrupt::never(),
        )
        .unwrap();
        assert_eq!(desc(&dest), format!("dir 755 {}", me()));
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
        let err = copy_image_volume(
            &rootfs,
            Path::new("/file"),
            &out.path().join("f"),
            &mut Interrupt::never(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            r#"image volume "/file" is not a directory in the rootfs"#
        );
    }

    #[test]
    fn host_copy_follows_symlinks_and_skips_loops() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("inner"), "I").unwrap();
        std::fs::set_permissions(other.path(), PermissionsExt::from_mode(0o750)).unwrap();
        std::fs::write(src.path().join("key"), "K").unwrap();
        std::fs::set_permissions(src.path().join("key"), PermissionsExt::from_mode(0o600)).unwrap();
        symlink(other.path(), src.path().join("linked")).unwrap();
        symlink(src.path(), src.path().join("loop")).unwrap();
        let dest = out.path().join("copy");
        copy_host_tree(src.path(), &dest).unwrap();
        let me = me();
        assert_eq!(desc(&dest.join("key")), format!("file:K 600 {me}"));
        assert_eq!(desc(&dest.join("linked")), format!("dir 750 {me}"));
        assert_eq!(desc(&dest.join("linked/inner")), format!("file:I 644 {me}"));
        assert!(!dest.join("loop").exists());
    }

    #[test]
    fn host_copy_leaves_out_special_entries_and_refuses_special_or_huge_files() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("key"), "K").unwrap();
        nix::unistd::mkfifo(&src.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        symlink("/dev/zero", src.path().join("zero")).unwrap();
        let dest = out.path().join("copy");
        let started = std::time::Instant::now();
        copy_host_tree(src.path(), &dest).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["key"]);

        let err = copy_host_tree(&src.path().join("fifo"), &out.path().join("f")).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file (a FIFO)");
        assert!(!out.path().join("f").exists());
        let err = copy_host_tree(Path::new("/dev/zero"), &out.path().join("z")).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file (a character device)");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));

        std::fs::File::create(src.path().join("big"))
            .unwrap()
            .set_len(crate::MAX_INPUT_BYTES + 1)
            .unwrap();
        let err = copy_host_tree(src.path(), &out.path().join("again")).unwrap_err();
        assert_eq!(err.to_string(), "larger than 16 MiB");
    }
}
