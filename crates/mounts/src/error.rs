//! The error type of the mounts crate.

use std::path::PathBuf;

/// Why preparing the filesystem side of a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountsError {
    /// The rootfs directory could not be opened as a root handle.
    #[error("rootfs {path:?}: {source}")]
    OpenRootfs {
        /// The path given as the rootfs.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A path inside the rootfs could not be resolved, read or created.
    #[error("{action} {path:?} in rootfs {rootfs:?}: {source}")]
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
    #[error("{action} {path:?}: {source}")]
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
            Self::NotExecutable(..) => 126,
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
