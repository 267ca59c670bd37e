//! From (image config, run options, user database, host facts) to an OCI runtime spec.

use std::path::Path;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder,
    Spec, SpecBuilder, UserBuilder,
};

use crate::env::{Env, DEFAULT_PATH, PROXY_VARIABLES};
use crate::{ImageConfig, SpecError, UserDb};

/// The `ociVersion` written into every spec: the runtime-spec release that runc 1.1 implements.
pub const OCI_VERSION: &str = "1.0.2";

/// The default capability set: bounding = effective = permitted for root (BEHAVIOR.md
/// "Process"; the set podman and buildah use by default).
pub const DEFAULT_CAPABILITIES: [Capability; 11] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::NetBindService,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
];

/// Paths the runtime masks (bind-mounts /dev/null or an empty read-only tmpfs over), as
/// runtime-spec `linux.maskedPaths`.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/interrupts",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
    "/sys/fs/selinux",
];

/// Paths the runtime remounts read-only, as runtime-spec `linux.readonlyPaths`.
pub const READONLY_PATHS: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The ceiling of the default `RLIMIT_NOFILE` and `RLIMIT_NPROC`: 1048576 (the kernel's
/// default `fs.nr_open`), lowered to ocirun's own hard limit so that setting it always succeeds.
pub const DEFAULT_RLIMIT_CEILING: u64 = 1_048_576;

/// The default size of the `/dev/shm` tmpfs, in KiB (64 MiB; podman's `--shm-size` default).
pub const DEFAULT_SHM_SIZE_KIB: u64 = 65_536;

/// How the run was asked for: the command and the flags of `ocirun run` that shape the spec.
///
/// Each field mirrors the podman/buildah flag of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// The command and its arguments (runtime-spec `process.args`); must not be empty.
    pub args: Vec<String>,
    /// `--env` entries in order: `KEY=VALUE`, or a bare `KEY` that copies ocirun's own value.
    pub env: Vec<String>,
    /// `--workingdir`: an absolute path inside the container.
    pub working_dir: Option<String>,
    /// `--user`: `name`, `uid`, `name:group`, `uid:gid`, `uid:group` or `name:gid`.
    pub user: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--tty`: the process gets a terminal (runtime-spec `process.terminal`).
    pub terminal: bool,
    /// `--http-proxy`: copy the proxy variables of [`HostFacts::env`] (default true).
    pub http_proxy: bool,
}

impl RunOptions {
    /// Options that run `args` with every flag at its default.
    pub fn new(args: Vec<String>) -> Self {
        Self {
            args,
            env: Vec::new(),
            working_dir: None,
            user: None,
            hostname: None,
            terminal: false,
            http_proxy: true,
        }
    }
}

/// What the spec needs to know about the host, gathered by the caller (spec-gen reads nothing
/// itself).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostFacts {
    /// ocirun's own environment, `(KEY, VALUE)` pairs: the source of proxy variables and of
    /// bare `--env KEY` values.
    pub env: Vec<(String, String)>,
    /// ocirun's own hard `RLIMIT_NOFILE` (getrlimit(2)); `u64::MAX` for unlimited.
    pub nofile_hard: u64,
    /// ocirun's own hard `RLIMIT_NPROC`; `u64::MAX` for unlimited.
    pub nproc_hard: u64,
}

impl Default for HostFacts {
    /// No environment, unlimited hard limits.
    fn default() -> Self {
        Self {
            env: Vec::new(),
            nofile_hard: u64::MAX,
            nproc_hard: u64::MAX,
        }
    }
}

impl HostFacts {
    fn lookup(&self, key: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

/// Builds the runtime spec for one run. Pure: the same inputs give the same [`Spec`].
///
/// ```
/// use ocirun_spec_gen::{RunOptions, SpecGenerator};
///
/// let options = RunOptions::new(vec!["echo".into(), "hello".into()]);
/// let spec = SpecGenerator::new("/var/lib/rootfs", "0123456789abcdef", &options)
///     .generate()
///     .unwrap();
/// assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
/// ```
#[derive(Debug, Clone)]
pub struct SpecGenerator<'a> {
    rootfs: &'a Path,
    container_id: &'a str,
    options: &'a RunOptions,
    image: Option<&'a ImageConfig>,
    users: Option<&'a UserDb>,
    host: Option<&'a HostFacts>,
}

impl<'a> SpecGenerator<'a> {
    /// A generator for the container `container_id` (its first 12 characters are the default
    /// hostname) whose root filesystem is the absolute path `rootfs`.
    pub fn new(
        rootfs: &'a (impl AsRef<Path> + ?Sized),
        container_id: &'a str,
        options: &'a RunOptions,
    ) -> Self {
        Self {
            rootfs: rootfs.as_ref(),
            container_id,
            options,
            image: None,
            users: None,
            host: None,
        }
    }

    /// The image configuration whose Env, User, WorkingDir and Hostname are the defaults that
    /// the options override. Without one, nothing comes from an image.
    pub fn image(mut self, image: &'a ImageConfig) -> Self {
        self.image = Some(image);
        self
    }

    /// The rootfs's user database, for names in `--user` and for `HOME`. Without one, only
    /// numeric users resolve.
    pub fn users(mut self, users: &'a UserDb) -> Self {
        self.users = Some(users);
        self
    }

    /// Facts about the host. Without them: no environment, unlimited hard limits.
    pub fn host(mut self, host: &'a HostFacts) -> Self {
        self.host = Some(host);
        self
    }

    /// Generates the spec.
    ///
    /// `process`: args, env (merged as BEHAVIOR.md "Process" says), cwd, user with
    /// supplementary groups, capabilities, NOFILE/NPROC rlimits. `linux`: new pid, ipc, uts,
    /// mount and cgroup namespaces (the network is the host's), masked and read-only paths, a
    /// deny-all device cgroup baseline. `mounts`: the default mounts, sorted by depth then path.
    ///
    /// # Errors
    /// [`SpecError::NoCommand`], [`SpecError::InvalidEnv`], [`SpecError::UnknownUser`],
    /// [`SpecError::UnknownGroup`], [`SpecError::InvalidUser`],
    /// [`SpecError::InvalidWorkingDir`], [`SpecError::InvalidHostname`],
    /// [`SpecError::RelativeRootfs`].
    pub fn generate(&self) -> Result<Spec, SpecError> {
        let options = self.options;
        let default_image = ImageConfig::default();
        let image = self.image.unwrap_or(&default_image);
        let default_users = UserDb::default();
        let users = self.users.unwrap_or(&default_users);
        let default_host = HostFacts::default();
        let host = self.host.unwrap_or(&default_host);

        if options.args.is_empty() {
            return Err(SpecError::NoCommand);
        }
        if !self.rootfs.is_absolute() {
            return Err(SpecError::RelativeRootfs(self.rootfs.to_path_buf()));
        }

        let user = users.resolve(options.user.as_deref().or(image.user.as_deref()))?;

        let cwd = options
            .working_dir
            .as_deref()
            .or(image.working_dir.as_deref())
            .unwrap_or("/");
        if !cwd.starts_with('/') {
            return Err(SpecError::InvalidWorkingDir(cwd.to_owned()));
        }

        let hostname = match options.hostname.as_deref().or(image.hostname.as_deref()) {
            Some(h) => h.to_owned(),
            None => self.container_id.chars().take(12).collect(),
        };
        validate_hostname(&hostname)?;

        let mut env = Env::default();
        env.set("PATH", DEFAULT_PATH);
        if options.http_proxy {
            for key in PROXY_VARIABLES {
                if let Some(value) = host.lookup(key) {
                    env.set(key, &value);
                }
            }
        }
        for entry in &image.env {
            env.merge_entry(entry, |_| None)?;
        }
        for entry in &options.env {
            env.merge_entry(entry, |key| host.lookup(key))?;
        }
        env.set_default("HOSTNAME", &hostname);
        env.set_default("HOME", &user.home);
        if options.terminal {
            env.set_default("TERM", "xterm");
        }

        let all: Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
        let granted = if user.uid == 0 {
            all.clone()
        } else {
            Capabilities::new()
        };
        let capabilities = LinuxCapabilitiesBuilder::default()
            .bounding(all)
            .effective(granted.clone())
            .permitted(granted)
            .inheritable(Capabilities::new())
            .ambient(Capabilities::new())
            .build()
            .map_err(internal)?;

        let process = ProcessBuilder::default()
            .terminal(options.terminal)
            .user(
                UserBuilder::default()
                    .uid(user.uid)
                    .gid(user.gid)
                    .additional_gids(user.additional_gids.clone())
                    .build()
                    .map_err(internal)?,
            )
            .args(options.args.clone())
            .env(env.into_strings())
            .cwd(cwd)
            .capabilities(capabilities)
            .rlimits(vec![
                rlimit(PosixRlimitType::RlimitNofile, host.nofile_hard)?,
                rlimit(PosixRlimitType::RlimitNproc, host.nproc_hard)?,
            ])
            .build()
            .map_err(internal)?;

        let namespaces: Vec<LinuxNamespace> = [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Cgroup,
        ]
        .into_iter()
        .map(|typ| {
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(internal)
        })
        .collect::<Result<_, _>>()?;

        let linux = LinuxBuilder::default()
            .namespaces(namespaces)
            .masked_paths(MASKED_PATHS.map(String::from).to_vec())
            .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
            .resources(
                LinuxResourcesBuilder::default()
                    .devices(vec![LinuxDeviceCgroupBuilder::default()
                        .allow(false)
                        .access("rwm")
                        .build()
                        .map_err(internal)?])
                    .build()
                    .map_err(internal)?,
            )
            .build()
            .map_err(internal)?;

        let mut mounts = default_mounts(DEFAULT_SHM_SIZE_KIB);
        sort_mounts(&mut mounts);

        SpecBuilder::default()
            .version(OCI_VERSION)
            .root(
                RootBuilder::default()
                    .path(self.rootfs)
                    .readonly(false)
                    .build()
                    .map_err(internal)?,
            )
            .hostname(hostname)
            .process(process)
            .linux(linux)
            .mounts(mounts)
            .build()
            .map_err(internal)
    }
}

/// The default mounts of BEHAVIOR.md "Linux" (the set runc's `runc spec`, buildah and podman
/// give every container), with a `/dev/shm` of `shm_size_kib` KiB.
pub fn default_mounts(shm_size_kib: u64) -> Vec<Mount> {
    let mount = |dst: &str, typ: &str, src: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dst)
            .typ(typ)
            .source(src)
            .options(opts.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
            .build()
            .unwrap_or_else(|e| panic!("default mount {dst} is malformed: {e}"))
    };
    let shm_size = format!("size={shm_size_kib}k");
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// Sorts mounts by the depth of their destination, then by destination, so that a parent is
/// always mounted before what is mounted below it (BEHAVIOR.md "Mounts", Order). Stable: two
/// mounts on one destination keep their relative order.
pub fn sort_mounts(mounts: &mut [Mount]) {
    mounts.sort_by(|a, b| {
        let depth = |m: &Mount| m.destination().components().count();
        depth(a)
            .cmp(&depth(b))
            .then_with(|| a.destination().cmp(b.destination()))
    });
}

fn rlimit(typ: PosixRlimitType, own_hard: u64) -> Result<PosixRlimit, SpecError> {
    let value = own_hard.min(DEFAULT_RLIMIT_CEILING);
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(value)
        .hard(value)
        .build()
        .map_err(internal)
}

fn validate_hostname(hostname: &str) -> Result<(), SpecError> {
    let bad = |why| Err(SpecError::InvalidHostname(hostname.to_owned(), why));
    if hostname.is_empty() {
        return bad("empty");
    }
    if hostname.len() > 64 {
        return bad("longer than 64 bytes");
    }
    if hostname.contains(['\0', '/']) {
        return bad("contains a NUL byte or a slash");
    }
    Ok(())
}

/// oci-spec's builders fail only on a missing required field, which this module always sets.
fn internal(err: oci_spec::OciSpecError) -> SpecError {
    panic!("spec builder rejected a value spec-gen built: {err}")
}
