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
    /// A user or group name (`user`, `group`) that cannot be looked up because the rootfs's
    /// `/etc/passwd` or `/etc/group` cannot be read (a symlink loop, a directory, a FIFO, too
    /// large): `unknown user "app": the rootfs's /etc/passwd cannot be read: not a regular
    /// file (a FIFO)`.
    #[error("unknown {what} {name:?}: the rootfs's {file} cannot be read: {reason}")]
    UserDbUnreadable {
        /// `user` or `group`.
        what: &'static str,
        /// The name looked up.
        name: String,
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
        /// Why it cannot be read.
        reason: String,
    },
    /// A `--user` value that is none of the accepted forms, or whose uid is out of range.
    #[error("invalid user {0:?}: {1}")]
    InvalidUser(String, &'static str),
    /// A numeric group (the group part of `--user`, or `--group-add`) out of range.
    #[error("invalid group {0:?}: {1}")]
    InvalidGroup(String, &'static str),
    /// A working directory that is not absolute.
    #[error("invalid working directory {0:?}: must be an absolute path")]
    InvalidWorkingDir(String),
    /// A hostname that the kernel would refuse (empty, longer than 64 bytes, or with a NUL or `/`).
    #[error("invalid hostname {0:?}: {1}")]
    InvalidHostname(String, &'static str),
    /// `--init` together with a mount on the init's own path, [`INIT_PATH`](crate::INIT_PATH).
    #[error("--init needs {path}, where a mount of {0:?} is asked for", path = crate::INIT_PATH)]
    InitPathTaken(String),
    /// A `--userns` value that is none of podman's forms, or that this run cannot have.
    #[error("invalid --userns {value:?}: {reason}")]
    InvalidUserNs {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--uidmap`/`--gidmap` value that is malformed, overlaps another, or maps ids the run
    /// does not have.
    #[error("invalid id mapping {value:?}: {reason}")]
    InvalidIdMapping {
        /// The value as given (with its flag once the maps are checked together).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The process's uid or a gid is not mapped in the user namespace it runs in.
    #[error("invalid user {user:?}: {kind} {id} is not mapped in the container's user namespace")]
    UnmappedId {
        /// The `--user` value, or the resolved `UID:GID`.
        user: String,
        /// `uid` or `gid`.
        kind: &'static str,
        /// The id.
        id: u32,
    },
    /// A cgroup resource flag that this run cannot have: without root, only in a cgroup
    /// delegated to the user.
    #[error("{flag} cannot be used here: {reason}")]
    ResourceNeedsCgroup {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// The image configuration JSON could not be parsed.
    #[error("invalid image configuration")]
    InvalidImageConfig(#[source] serde_json::Error),
    /// The rootfs path is not absolute (runtime-spec "Root": runc resolves a relative path
    /// against the bundle, which is not what a caller of `ocirun run --rootfs` means).
    #[error("invalid rootfs path {0:?}: must be absolute")]
    RelativeRootfs(std::path::PathBuf),
    /// A size (`--memory`, `--shm-size`, ...) that is not a number with a known unit.
    #[error("invalid size {value:?}: {reason}")]
    InvalidSize {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--cpus` value that is not a positive decimal.
    #[error("invalid --cpus {value:?}: {reason}")]
    InvalidCpus {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A CPU or memory-node list (`--cpuset-cpus`, `--cpuset-mems`) that is not in the kernel's
    /// list format.
    #[error("invalid cpu list {value:?}: {reason}")]
    InvalidCpuList {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A resource flag whose value is out of range or conflicts with another one.
    #[error("invalid {flag} {value}: {reason}")]
    InvalidResource {
        /// The flag, e.g. `--memory`.
        flag: &'static str,
        /// The value, as the flag's grammar writes it.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--ulimit` value that is malformed, names an unknown resource, or has soft above hard.
    #[error("invalid --ulimit {value:?}: {reason}")]
    InvalidUlimit {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--ulimit` whose hard limit is above the caller's own hard limit, which only a
    /// process with `CAP_SYS_RESOURCE` may raise (setrlimit(2)); refused before the runtime
    /// would fail on it.
    #[error(
        "--ulimit {ulimit}: hard limit {hard} is above ocirun's own hard limit {own_hard} for \
         {resource}, and ocirun lacks CAP_SYS_RESOURCE to raise it"
    )]
    UlimitAboveHardLimit {
        /// The `--ulimit` value, as `name=soft:hard`.
        ulimit: String,
        /// The resource's name (`nofile`, ...).
        resource: &'static str,
        /// The hard limit asked for (a number or `unlimited`).
        hard: String,
        /// The caller's own hard limit (a number or `unlimited`).
        own_hard: String,
    },
    /// A capability name that the caps crate does not know.
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    /// `--cap-add` of a capability outside ocirun's own bounding set, which the runtime could
    /// not give the container.
    #[error("cannot add {0}: ocirun's own bounding set lacks it, so the container cannot have it")]
    CapabilityUnavailable(String),
    /// A namespace mode (`--pid`, `--network`, ...) that is none of the accepted forms.
    #[error("invalid namespace {value:?}: {reason}")]
    InvalidNamespace {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--hostname` (or the image's Hostname) together with `--uts host`: the runtime cannot
    /// set a hostname in the host's UTS namespace.
    #[error(
        "cannot set the hostname {0:?} with --uts host: the container shares the host's hostname"
    )]
    HostnameWithHostUts(String),
    /// A `--device` value that is malformed.
    #[error("invalid --device {value:?}: {reason}")]
    InvalidDevice {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--security-opt` value that is malformed or unknown.
    #[error("invalid --security-opt {value:?}: {reason}")]
    InvalidSecurityOpt {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An AppArmor profile was asked for, but the host has AppArmor disabled.
    #[error("apparmor profile {0:?} given, but AppArmor is not enabled on this host")]
    AppArmorDisabled(String),
    /// The caller could not read a seccomp profile file.
    #[error("cannot read seccomp profile {path:?}")]
    SeccompProfileRead {
        /// The profile's path.
        path: std::path::PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A seccomp profile that is not valid JSON of the containers/Docker or OCI format, or whose
    /// rules contradict themselves.
    #[error("invalid seccomp profile {origin:?}: {reason}")]
    InvalidSeccompProfile {
        /// Where the profile came from (its path, or `built-in`).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A seccomp profile names a syscall that libseccomp does not know.
    #[error("seccomp profile {origin:?}: unknown syscall {name:?}")]
    UnknownSyscall {
        /// The syscall name.
        name: String,
        /// Where the profile came from.
        origin: String,
    },
    /// An architecture name that libseccomp does not know.
    #[error("unknown architecture {0:?}")]
    UnknownArch(String),
    /// A line of an `--env-file` that is not a valid environment entry.
    #[error("invalid line {line} of env file {file:?}: {reason}")]
    InvalidEnvFile {
        /// The file, as the caller named it.
        file: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A flag value with a small grammar (`--umask`, `--oom-score-adj`, `--annotation`) that
    /// does not parse.
    #[error("invalid {flag} {value:?}: {reason}")]
    InvalidValue {
        /// The flag, e.g. `--umask`.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--sysctl` value that is malformed or names a key outside the container's namespaces.
    #[error("invalid --sysctl {value:?}: {reason}")]
    InvalidSysctl {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--sysctl` of a namespace that the run shares with the host (or does not create):
    /// the runtime would change the host's kernel, or refuse.
    #[error(
        "invalid --sysctl {sysctl:?}: it needs the container's own {namespace} namespace, and \
         the run has {flag} {mode}"
    )]
    SysctlNamespace {
        /// The `--sysctl` value.
        sysctl: String,
        /// `ipc` or `network`.
        namespace: &'static str,
        /// The flag that decides that namespace (`--ipc`, `--network`).
        flag: &'static str,
        /// Its value (`host`).
        mode: String,
    },
    /// The spec could not be serialized (a bug in ocirun if it ever happens).
    #[error("cannot serialize the spec")]
    Serialize(#[source] serde_json::Error),
}
