//! The one error type of spec generation.

/// Why a spec could not be generated from the given inputs.
///
/// Every variant names the offending value, so that the message can be shown to a user as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// No command: the OCI runtime spec requires `process.args` to hold at least one entry
    /// (runtime-spec "Process", `args`).
    #[error("command must be specified")]
    NoCommand,
    /// An environment entry that has no key (`=value`) or holds a NUL byte.
    #[error("invalid environment variable {0:?}: {1}")]
    InvalidEnv(String, &'static str),
    /// The user name is not in the rootfs's `/etc/passwd`.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The group name is not in the rootfs's `/etc/group`.
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    /// A `--user` value that is none of the accepted forms.
    #[error("invalid user {0:?}: {1}")]
    InvalidUser(String, &'static str),
    /// A working directory that is not absolute.
    #[error("invalid working directory {0:?}: must be an absolute path")]
    InvalidWorkingDir(String),
    /// A hostname that the kernel would refuse (empty, longer than 64 bytes, or with a NUL or `/`).
    #[error("invalid hostname {0:?}: {1}")]
    InvalidHostname(String, &'static str),
    /// The image configuration JSON could not be parsed.
    #[error("invalid image configuration: {0}")]
    InvalidImageConfig(#[source] serde_json::Error),
    /// The rootfs path is not absolute (runtime-spec "Root": runc resolves a relative path
    /// against the bundle, which is not what a caller of `ocirun run --rootfs` means).
    #[error("invalid rootfs path {0:?}: must be absolute")]
    RelativeRootfs(std::path::PathBuf),
    /// The spec could not be serialized (a bug in ocirun if it ever happens).
    #[error("cannot serialize the spec: {0}")]
    Serialize(#[source] serde_json::Error),
}
