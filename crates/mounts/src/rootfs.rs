//! A root filesystem opened as a root handle: every path inside it resolves inside it.
//!
//! Paths are resolved by pathrs (`openat2(RESOLVE_IN_ROOT)` on kernels that have it, a checked
//! userspace walk elsewhere), so an absolute or `..` symlink in an image ends inside the rootfs,
//! never on the host.

use std::fs::Permissions;
use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, fstatat, SFlag};
use pathrs::flags::OpenFlags;
use pathrs::Root;

use crate::error::{io_from_pathrs, CommandError, MountsError};
use crate::exec_check::{self, Format};
use crate::input::{check_input, kind_name, read_checked, reopen};

/// The `PATH` a command is searched in when the container's environment has none: the value
/// runc's `runc spec`, buildah and podman give every container.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The text of a rootfs's user database, `/etc/passwd` and `/etc/group` (passwd(5) and
/// group(5) formats), for a resolver of `--user` names such as ocirun-spec-gen's `UserDb`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserFiles {
    /// `/etc/passwd`, lossily decoded; empty when the rootfs has none or it cannot be read.
    pub passwd: String,
    /// `/etc/group`, lossily decoded; empty when the rootfs has none or it cannot be read.
    pub group: String,
    /// Why `/etc/passwd` exists but cannot be read.
    pub passwd_unreadable: Option<Unreadable>,
    /// Why `/etc/group` exists but cannot be read.
    pub group_unreadable: Option<Unreadable>,
}

/// A file of the rootfs's user database that exists but cannot be read, and what that means
/// for the runtime, which reads `/etc/passwd` and `/etc/group` itself to set up the user
/// (runc does, even for a numeric uid and gid).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unreadable {
    /// It cannot be resolved (a symlink loop): the runtime cannot open it either, and does
    /// without it.
    Unresolvable(String),
    /// A directory: the runtime fails reading it.
    Directory,
    /// Not a regular file of at most 16 MiB (a FIFO, a device, a socket, a larger file): the
    /// runtime would wait for a FIFO or read without end, so an empty file must be
    /// bind-mounted over it ([`GeneratedOptions::passwd`](crate::GeneratedOptions::passwd),
    /// [`GeneratedOptions::group`](crate::GeneratedOptions::group)).
    NeedsCover(String),
}

impl Unreadable {
    /// Why it cannot be read: `Too many levels of symbolic links (os error 40)`, `not a
    /// regular file (a directory)`, `not a regular file (a FIFO)`, `larger than 16 MiB`.
    pub fn reason(&self) -> &str {
        match self {
            Self::Unresolvable(reason) | Self::NeedsCover(reason) => reason,
            Self::Directory => "not a regular file (a directory)",
        }
    }
}

/// The rootfs directories on which the runtime mounts filesystems: each must be a directory
/// or missing ([`Rootfs::open`]).
const RUNTIME_DIRS: [&str; 4] = ["dev", "proc", "sys", "run"];

/// The rootfs directories on which the runtime mounts filesystems of its own (procfs, sysfs,
/// a tmpfs) before the mounts below them: it resolves paths through those, not through the
/// rootfs's directories.
const RUNTIME_MOUNT_DIRS: [&str; 3] = ["proc", "sys", "dev"];

/// The length from which a path cannot be used (the kernel's `PATH_MAX`, its NUL included).
const PATH_MAX: usize = 4096;

/// A container root filesystem on the host, held open by a root handle.
#[derive(Debug)]
pub struct Rootfs {
    root: Root,
    path: PathBuf,
}

/// What kind of inode a path inside the rootfs names, as far as running and mounting need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Directory,
    Regular { executable: bool },
    Other,
}

impl Rootfs {
    /// Opens the directory `path` as a rootfs to run in. A relative `path` is taken from the
    /// current directory; the stored path is absolute and free of symlinks (it goes into the
    /// spec's `root.path`).
    ///
    /// Its `/dev`, `/proc`, `/sys` and `/run`, on which the runtime mounts filesystems and
    /// creates device nodes and symlinks, must each be a directory or missing (a missing one
    /// is created as a mount target): a symlink there, absolute or relative, would lead the
    /// runtime out of the rootfs, and a file or FIFO cannot be mounted on. Its absolute path
    /// must be valid UTF-8: `config.json` is JSON, whose strings cannot hold other bytes.
    ///
    /// # Errors
    /// [`MountsError::OpenRootfs`] naming `path` when it does not exist, is not a directory or
    /// its absolute path is not UTF-8, or naming the first of those directories that is
    /// something else (`rootfs "/r": /dev is a symlink, not a directory`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MountsError> {
        let rootfs = Self::open_unchecked(path.as_ref())?;
        if rootfs.path.to_str().is_none() {
            return Err(MountsError::OpenRootfs {
                path: path.as_ref().to_path_buf(),
                source: std::io::Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "its path {:?} is not valid UTF-8, which the runtime's config.json \
                         cannot hold",
                        rootfs.path
                    ),
                ),
            });
        }
        for dir in RUNTIME_DIRS {
            match fstatat(
                rootfs.root.as_fd(),
                dir,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st)
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {}
                Ok(st) => {
                    return Err(MountsError::OpenRootfs {
                        path: path.as_ref().to_path_buf(),
                        source: std::io::Error::new(
                            ErrorKind::InvalidInput,
                            format!("/{dir} is {}, not a directory", kind_name(st.st_mode)),
                        ),
                    })
                }
                Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => {
                    return Err(MountsError::OpenRootfs {
                        path: path.as_ref().to_path_buf(),
                        source: std::io::Error::from(e),
                    })
                }
            }
        }
        Ok(rootfs)
    }

    /// [`Self::open`] without the checks of the runtime's directories: for removing what a
    /// run left in a rootfs.
    pub(crate) fn open_unchecked(path: impl AsRef<Path>) -> Result<Self, MountsError> {
        let given = path.as_ref();
        let fail = |source| MountsError::OpenRootfs {
            path: given.to_path_buf(),
            source,
        };
        let path = std::fs::canonicalize(given).map_err(fail)?;
        if !std::fs::metadata(&path).map_err(fail)?.is_dir() {
            return Err(fail(std::io::Error::from(ErrorKind::NotADirectory)));
        }
        let root = Root::open(&path).map_err(|e| fail(io_from_pathrs(e)))?;
        Ok(Self { root, path })
    }

    /// The rootfs's absolute host path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root handle.
    pub(crate) fn root(&self) -> &Root {
        &self.root
    }

    fn in_rootfs(&self, action: &'static str, path: &Path, source: std::io::Error) -> MountsError {
        MountsError::InRootfs {
            action,
            path: path.to_path_buf(),
            rootfs: self.path.clone(),
            source,
        }
    }

    /// Reads the file at `path` inside the rootfs; `Ok(None)` when it does not exist. Only a
    /// regular file of at most 16 MiB is read ([`MAX_INPUT_BYTES`](crate::MAX_INPUT_BYTES)),
    /// opened with `O_NONBLOCK`; anything else is never opened for reading.
    ///
    /// # Errors
    /// [`MountsError::InRootfs`] when it exists but cannot be read, or is not a regular file of
    /// at most 16 MiB (`read "/etc/passwd" in rootfs "/r": not a regular file (a FIFO)`).
    pub fn read_file(&self, path: impl AsRef<Path>) -> Result<Option<Vec<u8>>, MountsError> {
        let path = path.as_ref();
        let handle = match self.open_path(path, false) {
            Ok(handle) => handle,
            Err(err) => {
                if err.kind() == ErrorKind::NotFound {
                    return Ok(None);
                }
                return Err(self.in_rootfs("resolve", path, err));
            }
        };
        // Not opened for reading unless it is a regular file (no device opened, no FIFO
        // waited for), then with O_NONBLOCK, and read to at most 16 MiB.
        let st = fstat(handle.as_fd())
            .map_err(|e| self.in_rootfs("read", path, std::io::Error::from(e)))?;
        check_input(&st).map_err(|e| self.in_rootfs("read", path, e))?;
        let file = reopen(
            handle.as_fd(),
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        )
        .map_err(|e| self.in_rootfs("open", path, e))?;
        read_checked(file)
            .map(Some)
            .map_err(|e| self.in_rootfs("read", path, e))
    }

    /// The rootfs's user database files, `/etc/passwd` and `/etc/group`, each empty when
    /// absent. A symlinked `/etc/passwd` resolves inside the rootfs. A file that exists but
    /// cannot be read ([`Self::read_file`]) is empty too, with the reason in
    /// [`UserFiles::passwd_unreadable`] or [`UserFiles::group_unreadable`]: the caller decides
    /// whether the run can do without it.
    pub fn user_files(&self) -> UserFiles {
        let text = |p: &str| match self.read_file(p) {
            Ok(bytes) => (
                String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned(),
                None,
            ),
            Err(e) => {
                let reason = std::error::Error::source(&e)
                    .map_or_else(|| e.to_string(), ToString::to_string);
                let unreadable = match self.kind(Path::new(p)) {
                    Ok(Some(Kind::Directory)) => Unreadable::Directory,
                    Ok(Some(_)) => Unreadable::NeedsCover(reason),
                    Ok(None) | Err(_) => Unreadable::Unresolvable(reason),
                };
                (String::new(), Some(unreadable))
            }
        };
        let (passwd, passwd_unreadable) = text("/etc/passwd");
        let (group, group_unreadable) = text("/etc/group");
        UserFiles {
            passwd,
            group,
            passwd_unreadable,
            group_unreadable,
        }
    }

    /// The kind of inode at `path`, following symlinks inside the rootfs; `None` when absent.
    pub(crate) fn kind(&self, path: &Path) -> Result<Option<Kind>, MountsError> {
        let handle = match self.open_path(path, false) {
            Ok(handle) => handle,
            Err(err) => {
                return match err.kind() {
                    ErrorKind::NotFound | ErrorKind::NotADirectory => Ok(None),
                    _ => Err(self.in_rootfs("resolve", path, err)),
                };
            }
        };
        let st = fstat(handle.as_fd())
            .map_err(|e| self.in_rootfs("stat", path, std::io::Error::from(e)))?;
        let fmt = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        Ok(Some(match fmt {
            SFlag::S_IFDIR => Kind::Directory,
            SFlag::S_IFREG => Kind::Regular {
                executable: st.st_mode & 0o111 != 0,
            },
            _ => Kind::Other,
        }))
    }

    /// Finds the command `command` as the runtime would run it: a name with a `/` is taken as
    /// a path (relative ones from `cwd`); a bare name is searched in the `PATH` of `env`
    /// (`KEY=VALUE` entries; [`DEFAULT_PATH`] when absent), first executable match wins.
    /// Returns the path inside the rootfs.
    ///
    /// # Errors
    /// [`CommandError::NotInPath`] / [`CommandError::NoSuchFile`] (exit 127),
    /// [`CommandError::NotExecutable`] for a directory or a file without execute permission
    /// (exit 126), [`CommandError::Rootfs`] when the rootfs cannot be searched.
    pub fn find_command(
        &self,
        command: &str,
        env: &[String],
        cwd: &str,
    ) -> Result<PathBuf, CommandError> {
        let check = |path: &Path| -> Result<Option<Result<PathBuf, CommandError>>, CommandError> {
            Ok(match self.kind(path)? {
                None => None,
                Some(Kind::Regular { executable: true }) => Some(Ok(path.to_path_buf())),
                Some(Kind::Directory) => Some(Err(CommandError::NotExecutable(
                    command.to_owned(),
                    "is a directory",
                ))),
                Some(_) => Some(Err(CommandError::NotExecutable(
                    command.to_owned(),
                    "permission denied",
                ))),
            })
        };
        if command.contains('/') {
            let path = Path::new(cwd).join(command);
            return check(&path)?
                .unwrap_or_else(|| Err(CommandError::NoSuchFile(command.to_owned())));
        }
        let search = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let mut first_unusable = None;
        for dir in search.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let path = Path::new(cwd).join(dir).join(command);
            match check(&path)? {
                Some(Ok(found)) => return Ok(found),
                Some(Err(unusable)) => {
                    first_unusable.get_or_insert(unusable);
                }
                None => {}
            }
        }
        Err(first_unusable.unwrap_or_else(|| CommandError::NotInPath(command.to_owned())))
    }

    /// Checks that execve(2) can run the command found by [`Self::find_command`] at `found`,
    /// as far as its first bytes tell (see the `exec_check` module: an ELF header that the
    /// kernel refuses, neither ELF nor `#!`, a script whose interpreter is missing or cannot be
    /// executed). `command` is the command as given, which the error names when it has a `/`
    /// (else `found` is named, as runc names the path it executes); `cwd` is the working
    /// directory, for a relative interpreter; `mounted` the container's mount destinations,
    /// below which an interpreter is not looked for.
    ///
    /// # Errors
    /// [`CommandError::CannotExecute`] (exit 126).
    pub fn check_executable(
        &self,
        found: &Path,
        command: &str,
        cwd: &str,
        mounted: &[&Path],
    ) -> Result<(), CommandError> {
        self.check_executable_with(
            found,
            command,
            cwd,
            mounted,
            exec_check::binfmt_misc_handlers,
        )
    }

    fn check_executable_with(
        &self,
        found: &Path,
        command: &str,
        cwd: &str,
        mounted: &[&Path],
        binfmt_handlers: impl FnOnce() -> bool,
    ) -> Result<(), CommandError> {
        let Some(head) = self.read_head(found) else {
            return Ok(());
        };
        let shown = if command.contains('/') {
            command.to_owned()
        } else {
            found.display().to_string()
        };
        let refuse = |reason| Err(CommandError::CannotExecute(shown.clone(), reason));
        let interpreter = match exec_check::format(&head) {
            Format::Elf => return Ok(()),
            Format::Script(interpreter) if !interpreter.is_empty() => interpreter,
            // Only a binfmt_misc handler could run it.
            Format::BadElf | Format::Other | Format::Script(_) => {
                return if binfmt_handlers() {
                    Ok(())
                } else {
                    refuse("exec format error")
                };
            }
        };
        let path = Path::new(cwd).join(&interpreter);
        let below_mount = mounted
            .iter()
            .any(|m| normalized(&path).starts_with(normalized(m)));
        if below_mount {
            return Ok(());
        }
        match self.kind(&path) {
            Ok(None) => refuse("no such file or directory"),
            Ok(Some(Kind::Regular { executable: true })) => Ok(()),
            Ok(Some(_)) => refuse("permission denied"),
            Err(_) => Ok(()),
        }
    }

    /// Whether the rootfs holds something at `path` that a mount there would hide: `false`
    /// when nothing is there (or cannot be: a path too long) or it is an empty directory,
    /// `true` for anything else (and when that cannot be told).
    pub fn holds_something_at(&self, path: &Path) -> bool {
        match self.kind(path) {
            Ok(None) => false,
            Err(MountsError::InRootfs { ref source, .. })
                if source.raw_os_error() == Some(nix::errno::Errno::ENAMETOOLONG as i32) =>
            {
                false
            }
            Ok(Some(Kind::Directory)) => {
                let Ok(dir) = self
                    .root
                    .resolve(path)
                    .and_then(|h| h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY))
                else {
                    return true;
                };
                let Ok(mut dir) = nix::dir::Dir::from_fd(dir.into()) else {
                    return true;
                };
                let holds = dir.iter().any(|entry| {
                    entry.map_or(true, |e| !matches!(e.file_name().to_bytes(), b"." | b".."))
                });
                holds
            }
            Ok(Some(_)) | Err(_) => true,
        }
    }

    /// The first [`exec_check::HEAD_LEN`] bytes of the regular file at `path` (fewer for a
    /// shorter one); `None` when it is no regular file or cannot be opened or read.
    fn read_head(&self, path: &Path) -> Option<Vec<u8>> {
        use std::io::Read;
        let handle = self.open_path(path, false).ok()?;
        let st = fstat(handle.as_fd()).ok()?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
            return None;
        }
        let mut file = reopen(
            handle.as_fd(),
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        )
        .ok()?;
        let mut head = vec![0; exec_check::HEAD_LEN];
        let mut len = 0;
        while len < head.len() {
            match file.read(&mut head[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        head.truncate(len);
        Some(head)
    }

    /// Makes sure the absolute directory `dir` exists inside the rootfs. Missing components are
    /// created with mode 0755 and owned by `uid:gid` (docs/ocirun-run.md "Process"); an
    /// existing path is left as it is; symlinks, dangling ones too, resolve inside the rootfs.
    /// Returns the components created (their resolved paths), outermost first.
    ///
    /// # Errors
    /// [`MountsError::WorkingDirNotDirectory`] when the path exists as something else;
    /// [`MountsError::InRootfs`] when creating fails.
    pub fn create_working_dir(
        &self,
        dir: impl AsRef<Path>,
        uid: u32,
        gid: u32,
    ) -> Result<Vec<PathBuf>, MountsError> {
        let dir = dir.as_ref();
        let created = self.create_dirs(dir, "create working directory")?;
        self.own_working_dir(dir, &created, uid, gid)
            .inspect_err(|_| self.remove_created(&created))?;
        Ok(created)
    }

    /// Gives the components `created` of the working directory `dir` their owner and mode,
    /// and checks that `dir` is a directory.
    fn own_working_dir(
        &self,
        dir: &Path,
        created: &[PathBuf],
        uid: u32,
        gid: u32,
    ) -> Result<(), MountsError> {
        for path in created {
            let file = self
                .root
                .resolve_nofollow(path)
                .and_then(|h| h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY))
                .map_err(|e| self.in_rootfs("open working directory", path, io_from_pathrs(e)))?;
            use std::os::unix::fs::MetadataExt;
            let meta = file
                .metadata()
                .map_err(|e| self.in_rootfs("stat working directory", path, e))?;
            if (meta.uid(), meta.gid()) != (uid, gid) {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                    .map_err(|e| self.in_rootfs("chown working directory", path, e))?;
            }
            file.set_permissions(Permissions::from_mode(0o755))
                .map_err(|e| self.in_rootfs("chmod working directory", path, e))?;
        }
        if self.kind(dir)? != Some(Kind::Directory) {
            return Err(MountsError::WorkingDirNotDirectory(dir.to_path_buf()));
        }
        Ok(())
    }

    /// Removes the directories `created` (outermost first) that are still empty, innermost
    /// first: the undo of a [`Self::create_dirs`] whose caller failed after it.
    fn remove_created(&self, created: &[PathBuf]) {
        for path in created.iter().rev() {
            if !self.remove_if_empty(path, None) {
                tracing::debug!(path = %path.display(), "created directory kept: not empty");
            }
        }
    }

    /// The in-rootfs path at which `path` would be created, following symlinks inside the
    /// rootfs, dangling ones included (`/w -> /tmp/x` with `/tmp/x` missing gives `/tmp/x`),
    /// as runc resolves a mount destination. Existing components are resolved through the
    /// root handle and replaced by their physical path; what is missing is appended, cleaned.
    ///
    /// # Errors
    /// `ELOOP` after 40 symlinks; the resolver's error otherwise.
    pub(crate) fn path_for_create(&self, path: &Path) -> std::io::Result<PathBuf> {
        let mut current = path.to_path_buf();
        for _ in 0..40 {
            match self.walk_for_create(&current)? {
                Ok(done) => return Ok(done),
                Err(rewritten) => current = rewritten,
            }
        }
        Err(std::io::Error::from(nix::errno::Errno::ELOOP))
    }

    /// One pass of [`Self::path_for_create`]: `Ok(Ok(path))` when done, `Ok(Err(path))` with
    /// the path rewritten through a dangling symlink.
    fn walk_for_create(&self, path: &Path) -> std::io::Result<Result<PathBuf, PathBuf>> {
        let components: Vec<Component<'_>> = path.components().collect();
        let mut prefix = PathBuf::from("/");
        for (i, component) in components.iter().enumerate() {
            match component {
                Component::ParentDir => {
                    prefix.pop();
                }
                Component::Normal(name) => {
                    let candidate = prefix.join(name);
                    if let Ok(handle) = self.open_path(&candidate, false) {
                        prefix = self.physical(handle.as_fd())?;
                        continue;
                    }
                    if let Some(target) = self.readlink_in_root(&candidate) {
                        let mut new = prefix.join(target);
                        for rest in &components[i + 1..] {
                            new.push(rest.as_os_str());
                        }
                        return Ok(Err(new));
                    }
                    // Missing from here on: the rest is created as it is.
                    for rest in &components[i..] {
                        match rest {
                            Component::Normal(n) => prefix.push(n),
                            Component::ParentDir => {
                                prefix.pop();
                            }
                            _ => {}
                        }
                    }
                    return Ok(Ok(prefix));
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        Ok(Ok(prefix))
    }

    /// The symlink (its path and target) through which `destination`, resolved in the rootfs
    /// one component at a time as the runtime resolves a mount destination, enters one of
    /// [`RUNTIME_MOUNT_DIRS`], and that directory's name; `None` when it enters none through
    /// a symlink (a destination written below `/proc` is the runtime's to judge) or cannot be
    /// resolved (40 symlinks).
    pub(crate) fn symlink_into_runtime_dir(
        &self,
        destination: &Path,
    ) -> Option<(PathBuf, PathBuf, String)> {
        use std::collections::VecDeque;
        use std::ffi::OsString;
        let mut pending: VecDeque<OsString> = VecDeque::new();
        let push_front = |pending: &mut VecDeque<OsString>, path: &Path| {
            for c in path.components().rev() {
                match c {
                    Component::Normal(n) => pending.push_front(n.to_os_string()),
                    Component::ParentDir => pending.push_front(OsString::from("..")),
                    _ => {}
                }
            }
        };
        push_front(&mut pending, destination);
        let mut prefix = PathBuf::from("/");
        let mut last_link: Option<(PathBuf, PathBuf)> = None;
        let mut hops = 0;
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                prefix.pop();
                continue;
            }
            if prefix == Path::new("/") && RUNTIME_MOUNT_DIRS.iter().any(|d| name == *d) {
                if let Some((link, target)) = last_link {
                    return Some((link, target, name.to_string_lossy().into_owned()));
                }
            }
            let candidate = prefix.join(&name);
            match self.readlink_in_root(&candidate) {
                Some(target) => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    if target.is_absolute() {
                        prefix = PathBuf::from("/");
                    }
                    push_front(&mut pending, &target);
                    last_link = Some((candidate, target));
                }
                None => prefix = candidate,
            }
        }
        None
    }

    /// Opens `path` inside the rootfs with `O_PATH`, following symlinks inside the rootfs
    /// (a final one too, unless `nofollow`): openat2(2) with `RESOLVE_IN_ROOT |
    /// RESOLVE_NO_MAGICLINKS`, the kernel's in-root resolution that pathrs uses as well,
    /// retried while the kernel reports a race (`EAGAIN`). The lookups that ocirun expects to
    /// fail (a missing mount target, a component that is no symlink) cost one system call
    /// this way, where pathrs describes every error with the path of its descriptor. On a
    /// kernel without openat2 (before 5.6), pathrs's own resolver.
    ///
    /// # Errors
    /// The resolution's error (`NotFound` for a missing path, `ELOOP` for too many symlinks).
    fn open_path(&self, path: &Path, nofollow: bool) -> std::io::Result<OwnedFd> {
        use nix::fcntl::{openat2, OpenHow, ResolveFlag};
        let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        if nofollow {
            flags |= OFlag::O_NOFOLLOW;
        }
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        for _ in 0..16 {
            match openat2(self.root.as_fd(), path, how) {
                Err(nix::errno::Errno::EAGAIN) => continue,
                Err(nix::errno::Errno::ENOSYS) => break,
                other => return other.map_err(std::io::Error::from),
            }
        }
        let handle = if nofollow {
            self.root.resolve_nofollow(path)
        } else {
            self.root.resolve(path)
        };
        handle.map(OwnedFd::from).map_err(io_from_pathrs)
    }

    /// The target of the symlink at `path` inside the rootfs (its parent components resolved
    /// inside the rootfs); `None` when `path` is missing or no symlink.
    fn readlink_in_root(&self, path: &Path) -> Option<PathBuf> {
        let link = self.open_path(path, true).ok()?;
        let st = fstat(link.as_fd()).ok()?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFLNK {
            return None;
        }
        nix::fcntl::readlinkat(link.as_fd(), "")
            .ok()
            .map(PathBuf::from)
    }

    /// The in-rootfs path of an open handle: its `/proc/self/fd` link, less the rootfs path.
    fn physical(&self, fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<PathBuf> {
        use std::os::fd::AsRawFd;
        let host = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        let inside = host.strip_prefix(&self.path).map_err(|_| {
            std::io::Error::other(format!("{} resolved outside the rootfs", host.display()))
        })?;
        Ok(Path::new("/").join(inside))
    }

    /// What [`Self::create_dirs`] would create for `dir`: the resolved directory path and its
    /// missing components, outermost first. Creates nothing.
    ///
    /// # Errors
    /// [`MountsError::InRootfs`] when `dir` cannot be resolved, or when the resolved path has
    /// `PATH_MAX` (4096) bytes or more (`ENAMETOOLONG`): neither the runtime nor the command
    /// could use it, so nothing is created for it.
    pub(crate) fn missing_dirs(
        &self,
        dir: &Path,
        action: &'static str,
    ) -> Result<(PathBuf, Vec<PathBuf>), MountsError> {
        let given = dir;
        let dir = self
            .path_for_create(dir)
            .map_err(|e| self.in_rootfs(action, dir, e))?;
        if dir.as_os_str().len() >= PATH_MAX {
            return Err(self.in_rootfs(
                action,
                given,
                std::io::Error::from(nix::errno::Errno::ENAMETOOLONG),
            ));
        }
        let mut missing = Vec::new();
        let mut prefix = PathBuf::from("/");
        for component in dir.components() {
            if let Component::Normal(name) = component {
                prefix.push(name);
                if !missing.is_empty() || self.kind(&prefix)?.is_none() {
                    missing.push(prefix.clone());
                }
            }
        }
        Ok((dir, missing))
    }

    /// `mkdir -p` inside the rootfs (mode 0755), through dangling symlinks too
    /// ([`Self::path_for_create`]); returns the components it created (their resolved
    /// paths), outermost first. When it fails half-way, what it created is removed again.
    pub(crate) fn create_dirs(
        &self,
        dir: &Path,
        action: &'static str,
    ) -> Result<Vec<PathBuf>, MountsError> {
        let (dir, missing) = self.missing_dirs(dir, action)?;
        let dir = &dir;
        if missing.is_empty() {
            return Ok(missing);
        }
        if let Err(e) = self.root.mkdir_all(dir, &Permissions::from_mode(0o755)) {
            self.remove_created(&missing);
            return Err(self.in_rootfs(action, dir, io_from_pathrs(e)));
        }
        Ok(missing)
    }

    /// Sets the permission bits of the directory `path` inside the rootfs (not following a
    /// final symlink).
    pub(crate) fn set_mode(&self, path: &Path, mode: u32) -> Result<(), MountsError> {
        let dir = self
            .root
            .resolve_nofollow(path)
            .and_then(|h| h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY))
            .map_err(|e| self.in_rootfs("open mount target", path, io_from_pathrs(e)))?;
        dir.set_permissions(Permissions::from_mode(mode & 0o7777))
            .map_err(|e| self.in_rootfs("chmod mount target", path, e))
    }

    /// Creates the empty regular file `path` (mode 0644) inside the rootfs; its parent must
    /// exist. `Ok(false)` when something was already there.
    pub(crate) fn create_empty_file(&self, path: &Path) -> Result<bool, MountsError> {
        match self.root.create_file(
            path,
            OpenFlags::O_WRONLY | OpenFlags::O_EXCL | OpenFlags::O_CLOEXEC,
            &Permissions::from_mode(0o644),
        ) {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = io_from_pathrs(e);
                if err.kind() == ErrorKind::AlreadyExists {
                    Ok(false)
                } else {
                    Err(self.in_rootfs("create mount target", path, err))
                }
            }
        }
    }

    /// The device and inode numbers of `path` inside the rootfs (a final symlink not
    /// followed); `None` when it cannot be resolved.
    pub(crate) fn identity(&self, path: &Path) -> Option<(u64, u64)> {
        let handle = self.root.resolve_nofollow(path).ok()?;
        let st = fstat(handle.as_fd()).ok()?;
        #[allow(clippy::useless_conversion)]
        Some((u64::from(st.st_dev), u64::from(st.st_ino)))
    }

    /// Removes `path` inside the rootfs if it is an empty directory or an empty regular file
    /// (a final symlink not followed) and, with `made`, still the inode of those device and
    /// inode numbers; anything else (including a path that is gone) is left alone. Returns
    /// whether it removed.
    pub(crate) fn remove_if_empty(&self, path: &Path, made: Option<(u64, u64)>) -> bool {
        let Ok(handle) = self.root.resolve_nofollow(path) else {
            return false;
        };
        let Ok(st) = fstat(handle.as_fd()) else {
            return false;
        };
        #[allow(clippy::useless_conversion)]
        let identity = (u64::from(st.st_dev), u64::from(st.st_ino));
        if made.is_some_and(|made| made != identity) {
            return false;
        }
        match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => self.root.remove_dir(path).is_ok(),
            SFlag::S_IFREG => st.st_size == 0 && self.root.remove_file(path).is_ok(),
            _ => false,
        }
    }
}

/// `path` with `.` dropped and `..` applied, lexically (mount destinations are compared so).
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_spec::describe;
    use std::os::unix::fs::symlink;

    /// This process's effective uid and gid: an owner any test may give.
    fn me() -> (u32, u32) {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    }

    fn rootfs() -> (tempfile::TempDir, Rootfs) {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(r.join("bin/tool"), Permissions::from_mode(0o755)).unwrap();
        std::fs::write(r.join("bin/data"), "x").unwrap();
        symlink("tool", r.join("bin/link")).unwrap();
        std::fs::write(
            r.join("etc/passwd.real"),
            "app:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        // An absolute symlink must resolve inside the rootfs, not on the host.
        symlink("/etc/passwd.real", r.join("etc/passwd")).unwrap();
        let root = Rootfs::open(r).unwrap();
        (dir, root)
    }

    #[test]
    fn open_names_a_missing_path() {
        let err = Rootfs::open("/does/not/exist").unwrap_err();
        assert_eq!(err.to_string(), r#"rootfs "/does/not/exist""#);
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "No such file or directory (os error 2)");
    }

    #[test]
    fn runtime_dirs_must_be_directories_or_missing() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        std::fs::create_dir_all(r.join("proc")).unwrap();
        let host = dir.path().join("host");
        std::fs::create_dir(&host).unwrap();
        Rootfs::open(&r).unwrap();
        let err = |r: &Path| describe(&Rootfs::open(r).unwrap_err());
        let name = format!("rootfs {r:?}");
        symlink(&host, r.join("dev")).unwrap();
        assert_eq!(
            err(&r),
            format!("{name}: /dev is a symlink, not a directory")
        );
        std::fs::remove_file(r.join("dev")).unwrap();
        symlink("../../..", r.join("sys")).unwrap();
        assert_eq!(
            err(&r),
            format!("{name}: /sys is a symlink, not a directory")
        );
        std::fs::remove_file(r.join("sys")).unwrap();
        std::fs::write(r.join("run"), "").unwrap();
        assert_eq!(
            err(&r),
            format!("{name}: /run is a regular file, not a directory")
        );
        std::fs::remove_file(r.join("run")).unwrap();
        std::fs::remove_dir(r.join("proc")).unwrap();
        nix::unistd::mkfifo(
            &r.join("proc"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert_eq!(err(&r), format!("{name}: /proc is a FIFO, not a directory"));
        assert_eq!(std::fs::read_dir(&host).unwrap().count(), 0);
        // Removing what runs left does not need them.
        Rootfs::open_unchecked(&r).unwrap();
    }

    #[test]
    fn symlinked_passwd_resolves_inside() {
        let (_dir, root) = rootfs();
        let files = root.user_files();
        assert_eq!(files.passwd, "app:x:1000:1000::/home/app:/bin/sh\n");
        assert_eq!(files.group, "");
    }

    #[test]
    fn unreadable_user_files_say_why_without_blocking() {
        let (dir, root) = rootfs();
        let etc = dir.path().join("etc");
        let reasons = |root: &Rootfs| {
            let files = root.user_files();
            (
                files.passwd,
                files.passwd_unreadable,
                files.group,
                files.group_unreadable,
            )
        };
        std::fs::remove_file(etc.join("passwd")).unwrap();
        nix::unistd::mkfifo(
            &etc.join("passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        std::fs::create_dir(etc.join("group")).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(
            reasons(&root),
            (
                String::new(),
                Some(Unreadable::NeedsCover("not a regular file (a FIFO)".into())),
                String::new(),
                Some(Unreadable::Directory)
            )
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        std::fs::remove_file(etc.join("passwd")).unwrap();
        symlink("passwd", etc.join("passwd")).unwrap();
        std::fs::remove_dir(etc.join("group")).unwrap();
        std::fs::File::create(etc.join("group"))
            .unwrap()
            .set_len(crate::MAX_INPUT_BYTES + 1)
            .unwrap();
        let (_, passwd, _, group) = reasons(&root);
        assert_eq!(
            (passwd, group),
            (
                Some(Unreadable::Unresolvable(
                    "Too many levels of symbolic links (os error 40)".into()
                )),
                Some(Unreadable::NeedsCover("larger than 16 MiB".into()))
            )
        );
        let err = root.read_file("/etc/group").unwrap_err();
        assert_eq!(
            describe(&err),
            format!(
                "read \"/etc/group\" in rootfs {:?}: larger than 16 MiB",
                root.path()
            )
        );
    }

    #[test]
    fn find_command_cases() {
        let (_dir, root) = rootfs();
        let env = vec!["PATH=/nowhere:/bin".to_string()];
        assert_eq!(
            root.find_command("tool", &env, "/").unwrap(),
            Path::new("/bin/tool")
        );
        assert_eq!(
            root.find_command("link", &env, "/").unwrap(),
            Path::new("/bin/link")
        );
        assert_eq!(
            root.find_command("/bin/tool", &env, "/").unwrap(),
            Path::new("/bin/tool")
        );
        assert_eq!(
            root.find_command("./tool", &env, "/bin").unwrap(),
            Path::new("/bin/./tool")
        );
        let e = root.find_command("nope", &env, "/").unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string()),
            (127, "\"nope\": executable file not found in $PATH".into())
        );
        let e = root.find_command("/etc", &env, "/").unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string()),
            (126, "\"/etc\": is a directory".into())
        );
        let e = root.find_command("data", &env, "/").unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string()),
            (126, "\"data\": permission denied".into())
        );
        assert_eq!(
            root.find_command("/bin/none", &env, "/")
                .unwrap_err()
                .exit_code(),
            127
        );
    }

    #[test]
    fn files_that_execve_would_refuse() {
        let (dir, root) = rootfs();
        let r = dir.path();
        let exe = |name: &str, content: &[u8]| {
            std::fs::write(r.join(name), content).unwrap();
            std::fs::set_permissions(r.join(name), Permissions::from_mode(0o755)).unwrap();
        };
        let mut elf = vec![0u8; 64];
        elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        elf[16] = 3;
        exe("bin/sh", &elf);
        exe("bad-interpreter", b"#!/no/such/interpreter\necho hi\n");
        exe("no-shebang", b"echo hi\n");
        exe("truncated-elf", b"\x7fELF\x02\x01\x01");
        exe("empty-shebang", b"#!\n");
        exe("interpreter-dir", b"#!/etc\n");
        exe("interpreter-data", b"#! /bin/data -x\n");
        exe("relative", b"#!bin/tool\n");
        exe("on-volume", b"#!/opt/py/bin/python\n");
        let no_handlers = || false;
        let check = |found: &str, command: &str, cwd: &str| {
            root.check_executable_with(
                Path::new(found),
                command,
                cwd,
                &[Path::new("/opt/py")],
                no_handlers,
            )
            .map_err(|e| (e.exit_code(), e.to_string()))
        };
        let refused = |code, text: &str| Err((code, text.to_owned()));
        assert_eq!(check("/bin/tool", "tool", "/"), Ok(()));
        assert_eq!(check("/relative", "/relative", "/"), Ok(()));
        assert_eq!(check("/on-volume", "/on-volume", "/"), Ok(()));
        assert_eq!(
            check("/bad-interpreter", "/bad-interpreter", "/"),
            refused(126, "exec /bad-interpreter: no such file or directory")
        );
        assert_eq!(
            check("/relative", "/relative", "/etc"),
            refused(126, "exec /relative: no such file or directory")
        );
        assert_eq!(
            check("/no-shebang", "/no-shebang", "/"),
            refused(126, "exec /no-shebang: exec format error")
        );
        // A command found in PATH is named by the path found, as runc names it.
        assert_eq!(
            check("/no-shebang", "no-shebang", "/"),
            refused(126, "exec /no-shebang: exec format error")
        );
        assert_eq!(
            check("/truncated-elf", "./truncated-elf", "/"),
            refused(126, "exec ./truncated-elf: exec format error")
        );
        assert_eq!(
            check("/empty-shebang", "/empty-shebang", "/"),
            refused(126, "exec /empty-shebang: exec format error")
        );
        assert_eq!(
            check("/interpreter-dir", "/interpreter-dir", "/"),
            refused(126, "exec /interpreter-dir: permission denied")
        );
        assert_eq!(
            check("/interpreter-data", "/interpreter-data", "/"),
            refused(126, "exec /interpreter-data: permission denied")
        );
        // With binfmt_misc handlers, any format may be taken: the runtime decides.
        for name in ["/no-shebang", "/truncated-elf", "/empty-shebang"] {
            assert!(root
                .check_executable_with(Path::new(name), name, "/", &[], || true)
                .is_ok());
        }
        // A file that cannot be read is left to the runtime.
        assert!(root
            .check_executable(Path::new("/missing"), "/missing", "/", &[])
            .is_ok());
    }

    #[test]
    fn working_dir_is_created_once_and_reported() {
        let (dir, root) = rootfs();
        // Another owner where the test may give one (as root), its own otherwise.
        let owner = if nix::unistd::geteuid().is_root() {
            (1000, 1000)
        } else {
            me()
        };
        let created = root
            .create_working_dir("/new/dir", owner.0, owner.1)
            .unwrap();
        assert_eq!(created, [PathBuf::from("/new"), PathBuf::from("/new/dir")]);
        let meta = std::fs::metadata(dir.path().join("new/dir")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.mode() & 0o7777, 0o755);
        assert_eq!((meta.uid(), meta.gid()), owner);
        let (uid, gid) = me();
        assert!(root
            .create_working_dir("/new/dir", uid, gid)
            .unwrap()
            .is_empty());
        let err = root
            .create_working_dir("/bin/tool", uid, gid)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"working directory "/bin/tool" is not a directory in the rootfs"#
        );
    }

    #[test]
    fn dangling_symlinks_are_followed_inside() {
        let (dir, root) = rootfs();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        symlink("/tmp/outside-marker", dir.path().join("w")).unwrap();
        symlink("../tmp/rel/x", dir.path().join("bin/rel")).unwrap();
        let (uid, gid) = me();
        let created = root.create_working_dir("/w", uid, gid).unwrap();
        assert_eq!(created, [PathBuf::from("/tmp/outside-marker")]);
        assert!(dir.path().join("tmp/outside-marker").is_dir());
        let created = root.create_dirs(Path::new("/bin/rel/y"), "test").unwrap();
        assert_eq!(
            created,
            [
                PathBuf::from("/tmp/rel"),
                PathBuf::from("/tmp/rel/x"),
                PathBuf::from("/tmp/rel/x/y")
            ]
        );
        symlink("loop2", dir.path().join("loop1")).unwrap();
        symlink("loop1", dir.path().join("loop2")).unwrap();
        let err = root.create_dirs(Path::new("/loop1/a"), "test").unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.ends_with("(os error 40)"), "{source}");
    }

    #[test]
    fn escaping_symlink_stays_inside() {
        let (dir, root) = rootfs();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        symlink("../../../../../tmp", dir.path().join("escape")).unwrap();
        let (uid, gid) = me();
        let created = root.create_working_dir("/escape/inside", uid, gid).unwrap();
        // The created component is reported where it really is.
        assert_eq!(created, [PathBuf::from("/tmp/inside")]);
        assert!(
            dir.path().join("tmp/inside").is_dir(),
            "created under the rootfs's /tmp"
        );
    }
}
