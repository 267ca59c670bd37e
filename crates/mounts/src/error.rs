//! The error type of the mounts crate.

use std::path::PathBuf;

/// Why preparing the filesystem side of a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountsError {
    /// The rootfs directory could not be opened as a root handle.
    #[error("rootfs {path:?}")]
    OpenRootfs {
        /// The path given as the rootfs.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A path inside the rootfs could not be resolved, read or created.
    #[error("{action} {path:?} in rootfs {rootfs:?}")]
    InRootfs {
        /// What was being done ("read", "create working directory", ...).
        action: &'static str,
        /// The path inside the rootfs.
        path: PathBuf,
        /// The rootfs.
        rootfs: PathBuf,
        /// The error from path resolution (pathrs) or the system call.
        #[source]
        source: std::io::Error,
    },
    /// A file on the host (the bundle's generated files, the host's `/etc/hosts`) could not be
    /// read or written.
    #[error("{action} {path:?}")]
    Host {
        /// What was being done.
        action: &'static str,
        /// The host path.
        path: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// The working directory exists in the rootfs but is not a directory.
    #[error("working directory {0:?} is not a directory in the rootfs")]
    WorkingDirNotDirectory(PathBuf),
    /// A mount the user asked for is malformed or names something that does not exist.
    #[error(transparent)]
    Spec(#[from] MountSpecError),
    /// An image volume's path exists in the rootfs but is not a directory.
    #[error("image volume {0:?} is not a directory in the rootfs")]
    ImageVolumeNotDirectory(PathBuf),
    /// Copying an image volume out of the rootfs failed.
    #[error("copy image volume {volume:?} ({path:?} in the rootfs)")]
    CopyImageVolume {
        /// The volume's path in the container.
        volume: PathBuf,
        /// The entry being copied, inside the rootfs.
        path: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// Copying a secret (a mounts.conf source) failed.
    #[error("copy secret {source_path:?} to {destination:?}")]
    CopySecret {
        /// The host path being copied.
        source_path: PathBuf,
        /// Where it was being copied to.
        destination: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// The mount plan needs a container directory (for image volumes, secrets or overlay
    /// directories) but none was given.
    #[error("{0} needs a container directory, and the mount plan has none")]
    NoContainerDir(&'static str),
    /// A named volume with `nocreate` that does not exist.
    #[error("no volume with name {0:?} found (nocreate)")]
    NoSuchVolume(String),
    /// A wait (for a cache lock) was given up because the caller asked to.
    #[error("interrupted while {0}")]
    Cancelled(String),
    /// A mount destination that leads through a symlink of the rootfs into `/proc`, `/sys` or
    /// `/dev`, where the runtime mounts filesystems of its own and would resolve it otherwise.
    #[error(
        "mount destination {destination:?} leads through the rootfs's symlink {link:?} -> \
         {target:?} into /{dir}, where the runtime mounts a filesystem of its own"
    )]
    DestinationThroughRuntimeMount {
        /// The destination, as given.
        destination: PathBuf,
        /// The symlink in the rootfs that leads there.
        link: PathBuf,
        /// Its target.
        target: PathBuf,
        /// `proc`, `sys` or `dev`.
        dir: String,
    },
    /// Relabelling a volume for SELinux (`z`, `Z`) failed or was refused.
    #[error("relabel {path:?} for SELinux: {reason}")]
    Relabel {
        /// The host path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A malformed `-v`, `--mount`, `--tmpfs`, `--add-host`, `--dns*` value, mounts.conf line or
/// image volume path. Each message names the value as the user wrote it (exit 125).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MountSpecError {
    /// A `-v/--volume` value.
    #[error("invalid volume {spec:?}: {reason}")]
    Volume {
        /// The value as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--mount` value.
    #[error("invalid --mount {spec:?}: {reason}")]
    Mount {
        /// The value as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--tmpfs` value.
    #[error("invalid --tmpfs {spec:?}: {reason}")]
    Tmpfs {
        /// The value as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--secret` value.
    #[error("invalid --secret {spec:?}: {reason}")]
    Secret {
        /// The value as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A line of a mounts.conf file.
    #[error("invalid line {line} of mounts file {file:?}: {text:?}: {reason}")]
    MountsConf {
        /// The file.
        file: String,
        /// The line number, from 1.
        line: usize,
        /// The line.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An image configuration's `Volumes` key.
    #[error("invalid image volume {path:?}: {reason}")]
    ImageVolume {
        /// The key as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `--add-host` value.
    #[error("invalid --add-host {spec:?}: {reason}")]
    AddHost {
        /// The value as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--dns`, `--dns-search` or `--dns-option` value.
    #[error("invalid {flag} {value:?}: {reason}")]
    Dns {
        /// The flag.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two of the user's mounts (`-v`, `--mount`, `--tmpfs`) have one destination.
    #[error("duplicate mount destination {destination:?}: {first} and {second}")]
    DuplicateDestination {
        /// The destination.
        destination: PathBuf,
        /// The first mount on it, as given (`-v "a:/d"`).
        first: String,
        /// The second one.
        second: String,
    },
    /// `--no-hosts` together with `--add-host`.
    #[error("--no-hosts and --add-host cannot be used together")]
    NoHostsWithAddHost,
}

/// Why the command of a run cannot be executed, found before the runtime is called.
///
/// Exit codes follow podman: [`CommandError::NotInPath`] and [`CommandError::NoSuchFile`] are 127,
/// [`CommandError::NotExecutable`] is 126.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A command without `/` is in none of the `PATH` directories.
    #[error("{0:?}: executable file not found in $PATH")]
    NotInPath(String),
    /// A command path that does not exist in the rootfs.
    #[error("{0:?}: no such file or directory")]
    NoSuchFile(String),
    /// The command exists but is a directory or has no execute permission.
    #[error("{0:?}: {1}")]
    NotExecutable(String, &'static str),
    /// The command is an executable file that execve(2) would refuse: the reason as runc
    /// words it (`exec format error`, `no such file or directory` for a script's missing
    /// interpreter, `permission denied`).
    #[error("exec {0}: {1}")]
    CannotExecute(String, &'static str),
    /// The rootfs could not be searched.
    #[error(transparent)]
    Rootfs(#[from] MountsError),
}

impl CommandError {
    /// The exit code podman gives for this error: 127 not found, 126 not executable, 125 for
    /// a failure of ocirun itself.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotInPath(_) | Self::NoSuchFile(_) => 127,
            Self::NotExecutable(..) | Self::CannotExecute(..) => 126,
            Self::Rootfs(_) => 125,
        }
    }
}

/// Turns a pathrs error into an `io::Error`, keeping the errno where there is one.
pub(crate) fn io_from_pathrs(err: pathrs::error::Error) -> std::io::Error {
    match err.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => std::io::Error::from_raw_os_error(errno),
        _ => std::io::Error::other(err.to_string()),
    }
}
