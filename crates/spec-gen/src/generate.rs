//! From (image config, run options, user database, host facts) to an OCI runtime spec.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    BoxBuilder, Capabilities, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimit, PosixRlimitBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

use crate::caps::{all_known_caps_mask, cap_name, final_capabilities, CapabilityName};
use crate::device::Device;
use crate::env::{Env, DEFAULT_PATH, PROXY_VARIABLES};
use crate::namespaces::{NamespaceMode, NetworkMode};
use crate::resources::Resources;
use crate::rlimit::{show, RlimitKind, Ulimit, RLIM_INFINITY};
use crate::seccomp::{NativeArch, ResolveContext, SeccompProfile, SyscallChecker};
use crate::security::{SeccompPolicy, SecurityOptions};
use crate::sysctl::SysctlNamespace;
use crate::units::Size;
use crate::userns::{container_maps, is_mapped, IdMapping, OwnUserNamespace, UserNsMode};
use crate::{Annotation, ImageConfig, OomScoreAdj, ResolvedUser, SpecError, Sysctl, Umask, UserDb};

/// The `ociVersion` written into every spec: the runtime-spec release that runc 1.1 implements.
pub const OCI_VERSION: &str = "1.0.2";

/// Paths the runtime masks (bind-mounts /dev/null or an empty read-only tmpfs over), as
/// runtime-spec `linux.maskedPaths` (docs/ocirun-run.md "Linux"). Followed in the spec by
/// [`thermal_throttle_path`] of each of [`HostFacts::thermal_throttle_cpus`], as containers/common
/// expands `/sys/devices/system/cpu/cpu*/thermal_throttle` on the host.
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

/// Where `--read-only` (with `--read-only-tmpfs`, the default) mounts a read-write tmpfs, as
/// podman does: `/tmp`, `/var/tmp`, `/run`, each `rw,rprivate,nosuid,nodev,tmpcopyup` (but
/// where [`RunOptions::nothing_to_copy_up`] names it: without `tmpcopyup`).
pub const READ_ONLY_TMPFS: [&str; 3] = ["/tmp", "/var/tmp", "/run"];

/// The masked sysfs directory of CPU `cpu`'s thermal throttle counters:
/// `/sys/devices/system/cpu/cpuN/thermal_throttle`.
pub fn thermal_throttle_path(cpu: u32) -> String {
    format!("/sys/devices/system/cpu/cpu{cpu}/thermal_throttle")
}

/// The ceiling of the default `RLIMIT_NOFILE` and `RLIMIT_NPROC`: 1048576 (the kernel's
/// default `fs.nr_open`), lowered to ocirun's own hard limit so that setting it always succeeds.
pub(crate) const DEFAULT_RLIMIT_CEILING: u64 = 1_048_576;

/// The default size of the `/dev/shm` tmpfs: 64 MiB (podman's `--shm-size` default).
pub const DEFAULT_SHM_SIZE: Size = Size::from_bytes(64 << 20);

/// Where the init binary of `--init` appears inside the container (podman uses
/// `/run/podman-init`); it is bind-mounted there read-only from the host.
pub const INIT_PATH: &str = "/run/ocirun-init";

/// The SELinux context parts of a container process and its files when the options set none
/// (the `container_t`/`container_file_t` types of container-selinux, as podman uses them).
pub(crate) const SELINUX_PROCESS_DEFAULT: (&str, &str, &str) =
    ("system_u", "system_r", "container_t");

/// The SELinux user, role and type of the mount label by default.
pub(crate) const SELINUX_FILE_DEFAULT: (&str, &str, &str) =
    ("system_u", "object_r", "container_file_t");

/// How the run was asked for: the command and the flags of `ocirun run` that shape the spec.
///
/// Each field mirrors the podman/buildah flag of the same name; every field but `args` has
/// the flag's default from [`RunOptions::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// The command and its arguments (runtime-spec `process.args`). Without
    /// `use_entrypoint` it must not be empty.
    pub args: Vec<String>,
    /// `--use-entrypoint`: run the image's Entrypoint followed by `args`, or by the image's
    /// Cmd when `args` is empty (podman's rule).
    pub use_entrypoint: bool,
    /// `--env` entries in order: `KEY=VALUE`; a bare `KEY` copies ocirun's own value of KEY;
    /// a bare `PREFIX*` copies every variable of ocirun's environment whose name starts with
    /// PREFIX (`*` alone: all of them), podman's rule.
    pub env: Vec<String>,
    /// `--env-host`: ocirun's whole environment ([`HostFacts::env`]) goes into the
    /// container's, over the image's `Env`.
    pub env_host: bool,
    /// `--unsetenv`: names left out of the default environment (the default `PATH`, the
    /// image's `Env`, `TERM`); `--env` and `--env-file` may still set them.
    pub unset_env: Vec<String>,
    /// `--unsetenv-all`: no default environment at all.
    pub unset_env_all: bool,
    /// `--env-file` entries (see [`parse_env_file`](crate::parse_env_file)), merged after the
    /// image's Env and before `env`.
    pub env_file: Vec<String>,
    /// `--workingdir`: an absolute path inside the container.
    pub working_dir: Option<String>,
    /// `--user`: `name`, `uid`, `name:group`, `uid:gid`, `uid:group` or `name:gid`.
    pub user: Option<String>,
    /// `--group-add`: more supplementary groups, by name (from the rootfs's `/etc/group`) or
    /// gid.
    pub group_add: Vec<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--tty`: the process gets a terminal (runtime-spec `process.terminal`).
    pub terminal: bool,
    /// `--http-proxy`: copy the proxy variables of [`HostFacts::env`] (default true).
    pub http_proxy: bool,
    /// `--cap-add`, in order.
    pub cap_add: Vec<CapabilityName>,
    /// `--cap-drop`, in order.
    pub cap_drop: Vec<CapabilityName>,
    /// `--ulimit`, in order; a later one for the same resource wins.
    pub ulimits: Vec<Ulimit>,
    /// `--ulimit host`: every resource limit of the container is ocirun's own, soft and hard
    /// ([`HostFacts::soft_limit`], [`HostFacts::hard_limit`]); `ulimits` still apply over
    /// them.
    pub ulimit_host: bool,
    /// `--security-opt`, applied.
    pub security: SecurityOptions,
    /// `--network` (default `host`).
    pub network: NetworkMode,
    /// `--pid` (default a new namespace).
    pub pid: NamespaceMode,
    /// `--ipc` (default a new namespace).
    pub ipc: NamespaceMode,
    /// `--uts` (default a new namespace).
    pub uts: NamespaceMode,
    /// `--cgroupns` (default a new namespace).
    pub cgroupns: NamespaceMode,
    /// The cgroup resource flags.
    pub resources: Resources,
    /// `--device`, with what the host's nodes are.
    pub devices: Vec<Device>,
    /// `--shm-size`: the size of the `/dev/shm` tmpfs (default [`DEFAULT_SHM_SIZE`]).
    pub shm_size: Option<Size>,
    /// `--read-only`: the rootfs is mounted read-only (runtime-spec `root.readonly`).
    pub read_only: bool,
    /// `--read-only-tmpfs` (default true): with `read_only`, a read-write tmpfs on each of
    /// [`READ_ONLY_TMPFS`]; without it, `/dev` and `/dev/shm` are read-only too, as podman
    /// has them.
    pub read_only_tmpfs: bool,
    /// The destinations of [`READ_ONLY_TMPFS`] where the rootfs holds nothing (the caller
    /// looked: nothing there, or an empty directory): their tmpfs gets no `tmpcopyup`, which
    /// would copy nothing and which not every runtime has (youki 0.7 has not).
    pub nothing_to_copy_up: Vec<PathBuf>,
    /// `--privileged`: every capability of ocirun's bounding set, no seccomp filter (unless a
    /// `seccomp=PATH` profile is given), no masked or read-only paths (but `mask=`), no
    /// AppArmor profile or SELinux label (unless given), `/sys` and `/sys/fs/cgroup`
    /// read-write, and a device cgroup that allows every device; the host's device nodes
    /// are the caller's to put into `devices` (`host_devices` of the `host` feature), as
    /// podman does. `--cap-add` and `--cap-drop` are ignored, as podman ignores them.
    pub privileged: bool,
    /// `--sysctl`, in order; a later one for the same key wins.
    pub sysctls: Vec<Sysctl>,
    /// `--umask` (runtime-spec `process.user.umask`); without it, the runtime's (0022).
    pub umask: Option<Umask>,
    /// `--oom-score-adj` (runtime-spec `process.oomScoreAdj`).
    pub oom_score_adj: Option<OomScoreAdj>,
    /// `--annotation`, in order; a later one for the same key wins.
    pub annotations: Vec<Annotation>,
    /// `--init`: the host path of a minimal init (tini or catatonit, statically linked) that
    /// runs as the container's PID 1, forwards signals to the command and reaps zombies
    /// (podman's `--init`). It is bind-mounted read-only at [`INIT_PATH`] and `process.args`
    /// becomes `[INIT_PATH, "--", args...]`, the command line catatonit and tini take.
    pub init: Option<PathBuf>,
    /// The size of the container's terminal, when `terminal` is set (runtime-spec
    /// `process.consoleSize`): the caller's own terminal size, so that the command sees it
    /// from its first instruction on.
    pub console_size: Option<ConsoleSize>,
    /// `--userns`.
    pub userns: UserNsMode,
    /// `--uidmap`, in order: a user namespace of the container's own with these uid maps.
    pub uid_maps: Vec<IdMapping>,
    /// `--gidmap`, in order (the uid maps when empty, and the other way round).
    pub gid_maps: Vec<IdMapping>,
}

/// A terminal's size in character cells (runtime-spec `process.consoleSize`; the `ws_row` and
/// `ws_col` of TIOCGWINSZ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSize {
    /// Rows (runtime-spec `height`).
    pub rows: u16,
    /// Columns (runtime-spec `width`).
    pub cols: u16,
}

impl RunOptions {
    /// Options that run `args` with every flag at its default.
    pub fn new(args: Vec<String>) -> Self {
        Self {
            args,
            use_entrypoint: false,
            env: Vec::new(),
            env_host: false,
            unset_env: Vec::new(),
            unset_env_all: false,
            env_file: Vec::new(),
            working_dir: None,
            user: None,
            group_add: Vec::new(),
            hostname: None,
            terminal: false,
            http_proxy: true,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            ulimits: Vec::new(),
            ulimit_host: false,
            security: SecurityOptions::default(),
            network: NetworkMode::default(),
            pid: NamespaceMode::default(),
            ipc: NamespaceMode::default(),
            uts: NamespaceMode::default(),
            cgroupns: NamespaceMode::default(),
            resources: Resources::default(),
            devices: Vec::new(),
            shm_size: None,
            read_only: false,
            read_only_tmpfs: true,
            nothing_to_copy_up: Vec::new(),
            privileged: false,
            sysctls: Vec::new(),
            umask: None,
            oom_score_adj: None,
            annotations: Vec::new(),
            init: None,
            console_size: None,
            userns: UserNsMode::Default,
            uid_maps: Vec::new(),
            gid_maps: Vec::new(),
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
    /// ocirun's own hard `RLIMIT_NOFILE` (getrlimit(2)); [`RLIM_INFINITY`] for unlimited.
    pub nofile_hard: u64,
    /// ocirun's own hard `RLIMIT_NPROC`; [`RLIM_INFINITY`] for unlimited.
    pub nproc_hard: u64,
    /// ocirun's own hard limits of the other resources (getrlimit(2)); a resource that is
    /// missing counts as unlimited. NOFILE and NPROC are the fields above.
    pub hard_limits: BTreeMap<RlimitKind, u64>,
    /// ocirun's own soft limits (getrlimit(2)), for `--ulimit host`; a resource that is
    /// missing has its hard limit as soft limit.
    pub soft_limits: BTreeMap<RlimitKind, u64>,
    /// Whether ocirun has `CAP_SYS_RESOURCE` in its effective set: without it, a `--ulimit`
    /// hard limit above ocirun's own is refused (setrlimit(2) would fail in the container).
    pub cap_sys_resource: bool,
    /// ocirun's own bounding capability set as a bit mask, bit N for capability N
    /// (`CapBnd` of /proc/self/status): the container can have no capability outside it, so
    /// `--cap-add ALL` means these, and `--cap-add` of another is refused.
    pub cap_bounding: u64,
    /// The native architecture as libseccomp names it, for the seccomp profile's `archMap`
    /// and arch-gated rules; `None` for one libseccomp does not know.
    pub arch: Option<NativeArch>,
    /// The kernel's `(major, minor)` (uname(2)), for the seccomp profile's `minKernel`;
    /// `None`: every `minKernel` counts as met.
    pub kernel: Option<(u32, u32)>,
    /// Whether SELinux is enabled: labels are set only then.
    pub selinux_enabled: bool,
    /// Whether AppArmor is enabled: an `apparmor=` profile is set only then.
    pub apparmor_enabled: bool,
    /// Whether the memory cgroup can limit swap (cgroup v1 `memory.memsw.limit_in_bytes`, or
    /// cgroup v2 `memory.swap.max`): `--memory-swap` needs it.
    pub swap_limit: bool,
    /// The host's hostname (gethostname(2)): `HOSTNAME` with `--uts host`.
    pub hostname: String,
    /// The host's CPUs that have a `/sys/devices/system/cpu/cpuN/thermal_throttle` directory,
    /// in ascending order: each is masked ([`thermal_throttle_path`]).
    pub thermal_throttle_cpus: Vec<u32>,
    /// The user namespace ocirun runs in without root (`None` for root, which runs in the
    /// host's): the container shares it unless it gets one of its own, resource limits need a
    /// [`Self::delegated_cgroup`], devices are bind-mounted (a user namespace cannot make device
    /// nodes), `/sys` is the host's, bound read-only, while the network namespace is the
    /// host's (a sysfs cannot be mounted for a network namespace the user namespace does not
    /// own), and no `--ulimit` may exceed ocirun's own hard limits.
    pub user_namespace: Option<OwnUserNamespace>,
    /// A cgroup v2 subtree that the user owns (delegated to it, as systemd's `Delegate=yes`
    /// does), in which a container's cgroup may be made without root.
    pub delegated_cgroup: Option<DelegatedCgroup>,
    /// Whether the host's cgroup hierarchy is the unified one (cgroup v2).
    pub cgroup_v2: bool,
}

/// A cgroup v2 subtree that a user other than root may make the container's cgroup in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DelegatedCgroup {
    /// Its path in the cgroup hierarchy, e.g. `/user.slice/user-1000.slice/user@1000.service`.
    pub path: String,
    /// The controllers enabled for its children (its `cgroup.subtree_control`).
    pub controllers: Vec<String>,
}

impl DelegatedCgroup {
    /// The subtree at `path` whose children get `controllers`.
    pub fn new(path: impl Into<String>, controllers: Vec<String>) -> Self {
        Self {
            path: path.into(),
            controllers,
        }
    }
}

impl Default for HostFacts {
    /// No environment, unlimited hard limits without `CAP_SYS_RESOURCE`, a bounding set of
    /// every capability the caps crate knows, the architecture this crate was compiled for, an unknown kernel,
    /// neither SELinux nor AppArmor, swap limits available, no hostname, no CPU with thermal
    /// throttle counters.
    fn default() -> Self {
        Self {
            env: Vec::new(),
            nofile_hard: RLIM_INFINITY,
            nproc_hard: RLIM_INFINITY,
            hard_limits: BTreeMap::new(),
            soft_limits: BTreeMap::new(),
            cap_sys_resource: false,
            cap_bounding: all_known_caps_mask(),
            arch: NativeArch::compiled(),
            kernel: None,
            selinux_enabled: false,
            apparmor_enabled: false,
            swap_limit: true,
            hostname: String::new(),
            thermal_throttle_cpus: Vec::new(),
            user_namespace: None,
            delegated_cgroup: None,
            cgroup_v2: false,
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

    /// ocirun's own soft limit of `kind` (its hard limit when [`Self::soft_limits`] lacks it).
    pub fn soft_limit(&self, kind: RlimitKind) -> u64 {
        self.soft_limits
            .get(&kind)
            .copied()
            .unwrap_or_else(|| self.hard_limit(kind))
            .min(self.hard_limit(kind))
    }

    /// ocirun's own hard limit of `kind`.
    pub fn hard_limit(&self, kind: RlimitKind) -> u64 {
        match kind {
            RlimitKind::Nofile => self.nofile_hard,
            RlimitKind::Nproc => self.nproc_hard,
            _ => self
                .hard_limits
                .get(&kind)
                .copied()
                .unwrap_or(RLIM_INFINITY),
        }
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
#[derive(Clone)]
pub struct SpecGenerator<'a> {
    rootfs: &'a Path,
    container_id: &'a str,
    options: &'a RunOptions,
    image: Option<&'a ImageConfig>,
    users: Option<&'a UserDb>,
    host: Option<&'a HostFacts>,
    syscalls: Option<&'a dyn SyscallChecker>,
    mounts: &'a [Mount],
    rootfs_propagation: Option<&'a str>,
    additional_gids: bool,
    fallback_cgroups_path: Option<&'a str>,
}

impl std::fmt::Debug for SpecGenerator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecGenerator")
            .field("rootfs", &self.rootfs)
            .field("container_id", &self.container_id)
            .field("options", &self.options)
            .field("image", &self.image)
            .field("users", &self.users)
            .field("host", &self.host)
            .field("syscalls", &self.syscalls.map(|_| "SyscallChecker"))
            .field("mounts", &self.mounts)
            .field("rootfs_propagation", &self.rootfs_propagation)
            .field("additional_gids", &self.additional_gids)
            .field("fallback_cgroups_path", &self.fallback_cgroups_path)
            .finish()
    }
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
            syscalls: None,
            mounts: &[],
            rootfs_propagation: None,
            additional_gids: true,
            fallback_cgroups_path: None,
        }
    }

    /// The image configuration whose Env, User, WorkingDir and Hostname are the defaults that
    /// the options override. Without one, nothing comes from an image.
    pub fn image(mut self, image: &'a ImageConfig) -> Self {
        self.image = Some(image);
        self
    }

    /// The rootfs's user database, for names in `--user` and `--group-add` and for `HOME`.
    /// Without one, only numeric users and groups resolve.
    pub fn users(mut self, users: &'a UserDb) -> Self {
        self.users = Some(users);
        self
    }

    /// Facts about the host. Without them: [`HostFacts::default`].
    pub fn host(mut self, host: &'a HostFacts) -> Self {
        self.host = Some(host);
        self
    }

    /// What checks the syscall names of seccomp profiles (see [`SyscallChecker`]). Without
    /// one, only their syntax is checked.
    pub fn syscall_checker(mut self, checker: &'a dyn SyscallChecker) -> Self {
        self.syscalls = Some(checker);
        self
    }

    /// The run's mounts beyond the defaults (volumes, image volumes, secrets, generated files:
    /// what `ocirun-mounts` resolves), in order of precedence: for one destination the first
    /// given wins, and every given mount wins over a default mount (see [`merge_mounts`]).
    /// Without them: the default mounts alone.
    pub fn mounts(mut self, mounts: &'a [Mount]) -> Self {
        self.mounts = mounts;
        self
    }

    /// The rootfs mount's propagation (runtime-spec `linux.rootfsPropagation`: `shared`,
    /// `slave`, `rslave`, `private`, ...), which a `shared` or `slave` volume needs so that
    /// mount events can cross the rootfs (podman sets it the same way). Without it: the
    /// runtime's default.
    pub fn rootfs_propagation(mut self, propagation: &'a str) -> Self {
        self.rootfs_propagation = Some(propagation);
        self
    }

    /// Whether `process.user.additionalGids` is written (default: yes, the user's primary group
    /// and the groups whose member list names the user, as buildah writes them). Without them
    /// the runtime sets no supplementary groups: for a runtime that refuses any where it runs
    /// without root in a user namespace of the container's own (youki 0.7), the container's
    /// process keeps the runtime's groups.
    pub fn additional_gids(mut self, write: bool) -> Self {
        self.additional_gids = write;
        self
    }

    /// The `linux.cgroupsPath` written when the run gets no cgroup of its own (no
    /// `--cgroup-parent`, no delegated cgroup): for a runtime that wants an absolute path
    /// where it would otherwise use systemd (youki 0.7 built without its systemd feature, for a
    /// container with a user namespace of its own). Without root the runtime cannot make that
    /// cgroup, and leaves the container in its own.
    pub fn fallback_cgroups_path(mut self, path: &'a str) -> Self {
        self.fallback_cgroups_path = Some(path);
        self
    }

    /// The command the process runs: `args`, or with `--use-entrypoint` the image's
    /// Entrypoint followed by `args` (or by the image's Cmd when `args` is empty), podman's
    /// rule. With `--init`, `process.args` is this command behind the init.
    ///
    /// # Errors
    /// [`SpecError::NoCommand`] when that is empty.
    pub fn command(&self) -> Result<Vec<String>, SpecError> {
        let default_image = ImageConfig::default();
        command(self.options, self.image.unwrap_or(&default_image))
    }

    /// The user the process runs as (`process.user` and the `HOME` default): `--user`, else
    /// the image's User, else root, resolved against the user database, with `--group-add`'s
    /// groups among the supplementary ones. What [`Self::generate`] puts into the spec; a
    /// caller that prepares files for the process (the owner of a `U` volume) asks here.
    ///
    /// # Errors
    /// [`SpecError::UnknownUser`], [`SpecError::UnknownGroup`], [`SpecError::InvalidUser`],
    /// [`SpecError::InvalidGroup`].
    pub fn user(&self) -> Result<ResolvedUser, SpecError> {
        let options = self.options;
        let default_users = UserDb::default();
        let users = self.users.unwrap_or(&default_users);
        let image_user = self.image.and_then(|i| i.user.as_deref());
        // `--userns keep-id`: the user's own ids (or the given ones) unless --user says.
        let keep_id = match (
            options.userns,
            &self.host.and_then(|h| h.user_namespace.as_ref()),
        ) {
            (UserNsMode::KeepId { uid, gid }, Some(own)) => Some(format!(
                "{}:{}",
                uid.unwrap_or(own.host_uid),
                gid.unwrap_or(own.host_gid)
            )),
            _ => None,
        };
        let mut user = users.resolve(
            options
                .user
                .as_deref()
                .or(keep_id.as_deref())
                .or(image_user),
        )?;
        for group in &options.group_add {
            user.additional_gids.push(users.group_id(group)?);
        }
        user.additional_gids.sort_unstable();
        user.additional_gids.dedup();
        Ok(user)
    }

    /// Generates the spec.
    ///
    /// `process`: args, env (merged as docs/ocirun-run.md "Process" says), cwd, user with
    /// supplementary groups, capabilities, rlimits, AppArmor profile, SELinux label,
    /// no-new-privileges, umask, OOM score adjustment. `linux`: namespaces, sysctls, masked
    /// and read-only paths, cgroup resources
    /// over a deny-all device baseline, device nodes, seccomp, mount label, cgroups path.
    /// `mounts`: the default mounts, sorted by depth then path. `hostname` unless the UTS
    /// namespace is not a new one.
    ///
    /// # Errors
    /// [`SpecError::NoCommand`], [`SpecError::InvalidEnv`], [`SpecError::UnknownUser`],
    /// [`SpecError::UnknownGroup`], [`SpecError::InvalidUser`],
    /// [`SpecError::InvalidWorkingDir`], [`SpecError::InvalidHostname`],
    /// [`SpecError::HostnameWithHostUts`], [`SpecError::RelativeRootfs`],
    /// [`SpecError::CapabilityUnavailable`],
    /// [`SpecError::UlimitAboveHardLimit`], [`SpecError::InvalidResource`],
    /// [`SpecError::InvalidDevice`], [`SpecError::AppArmorDisabled`],
    /// [`SpecError::InvalidSeccompProfile`], [`SpecError::UnknownSyscall`].
    pub fn generate(&self) -> Result<Spec, SpecError> {
        let options = self.options;
        let default_image = ImageConfig::default();
        let image = self.image.unwrap_or(&default_image);
        let default_host = HostFacts::default();
        let host = self.host.unwrap_or(&default_host);

        let args = self.command()?;
        if !self.rootfs.is_absolute() {
            return Err(SpecError::RelativeRootfs(self.rootfs.to_path_buf()));
        }

        let user = self.user()?;
        let maps = container_maps(options.userns, &options.uid_maps, &options.gid_maps, host)?;
        let own = host.user_namespace.as_ref();
        let uid_mapped = |id| {
            is_mapped(
                id,
                maps.as_ref().map(|m| m.0.as_slice()),
                own.map(OwnUserNamespace::uids),
            )
        };
        let gid_mapped = |id| {
            is_mapped(
                id,
                maps.as_ref().map(|m| m.1.as_slice()),
                own.map(OwnUserNamespace::gids),
            )
        };
        let user_value = || {
            options
                .user
                .clone()
                .unwrap_or_else(|| format!("{}:{}", user.uid, user.gid))
        };
        if !uid_mapped(user.uid) {
            return Err(SpecError::UnmappedId {
                user: user_value(),
                kind: "uid",
                id: user.uid,
            });
        }
        if let Some(gid) = std::iter::once(user.gid)
            .chain(user.additional_gids.iter().copied())
            .find(|gid| !gid_mapped(*gid))
        {
            return Err(SpecError::UnmappedId {
                user: user_value(),
                kind: "gid",
                id: gid,
            });
        }

        let cwd = options
            .working_dir
            .as_deref()
            .or(image.working_dir.as_deref())
            .unwrap_or("/");
        if !cwd.starts_with('/') {
            return Err(SpecError::InvalidWorkingDir(cwd.to_owned()));
        }

        let hostname = self.hostname(image)?;

        let mut env = Env::default();
        env.set("PATH", DEFAULT_PATH);
        for entry in &image.env {
            env.merge_entry(entry, |_| None)?;
        }
        if options.terminal {
            env.set_default("TERM", "xterm");
        }
        if options.unset_env_all {
            env = Env::default();
        }
        for key in &options.unset_env {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Err(SpecError::InvalidValue {
                    flag: "--unsetenv",
                    value: key.clone(),
                    reason: "not a variable name (empty, or holds '=' or a NUL byte)".to_owned(),
                });
            }
            env.remove(key);
        }
        if options.env_host {
            for (key, value) in &host.env {
                env.set(key, value);
            }
        } else if options.http_proxy {
            for key in PROXY_VARIABLES {
                if let Some(value) = host.lookup(key) {
                    env.set(key, &value);
                }
            }
        }
        for entry in options.env_file.iter().chain(&options.env) {
            env.merge_caller_entry(entry, &host.env)?;
        }
        match (&hostname, &options.uts) {
            (Some(h), _) => env.set_default("HOSTNAME", h),
            (None, NamespaceMode::Host) if !host.hostname.is_empty() => {
                env.set_default("HOSTNAME", &host.hostname);
            }
            (None, _) => {}
        }
        env.set_default("HOME", &user.home);

        let final_caps = if options.privileged {
            final_capabilities(&[CapabilityName::All], &[], host.cap_bounding)?
        } else {
            final_capabilities(&options.cap_add, &options.cap_drop, host.cap_bounding)?
        };
        let bounding: Capabilities = final_caps.iter().copied().collect();
        let granted = if user.uid == 0 {
            bounding.clone()
        } else {
            Capabilities::new()
        };
        let capabilities = LinuxCapabilitiesBuilder::default()
            .bounding(bounding)
            .effective(granted.clone())
            .permitted(granted)
            .inheritable(Capabilities::new())
            .ambient(Capabilities::new())
            .build()
            .map_err(internal)?;

        let mut process = ProcessBuilder::default()
            .terminal(options.terminal)
            .user({
                let mut builder = UserBuilder::default()
                    .uid(user.uid)
                    .gid(user.gid)
                    .additional_gids(if self.additional_gids {
                        user.additional_gids.clone()
                    } else {
                        Vec::new()
                    });
                if let Some(umask) = options.umask {
                    builder = builder.umask(umask.bits());
                }
                builder.build().map_err(internal)?
            })
            .args(match &options.init {
                Some(_) => [INIT_PATH.to_owned(), "--".to_owned()]
                    .into_iter()
                    .chain(args)
                    .collect(),
                None => args,
            })
            .env(env.into_strings())
            .cwd(cwd)
            .capabilities(capabilities)
            .rlimits(rlimits(&options.ulimits, options.ulimit_host, host)?);
        if let Some(adj) = options.oom_score_adj {
            process = process.oom_score_adj(adj.get());
        }
        if let Some(profile) = apparmor_profile(&options.security, host)? {
            process = process.apparmor_profile(profile);
        }
        let labels = if options.privileged {
            None
        } else {
            selinux_labels(&options.security, host, self.container_id)
        };
        if let Some((process_label, _)) = &labels {
            process = process.selinux_label(process_label.clone());
        }
        if let (true, Some(size)) = (options.terminal, options.console_size) {
            process = process.console_size(
                BoxBuilder::default()
                    .height(u64::from(size.rows))
                    .width(u64::from(size.cols))
                    .build()
                    .map_err(internal)?,
            );
        }
        let mut process = process.build().map_err(internal)?;
        // oci-spec's builder starts from its own defaults (noNewPrivileges on): state it.
        process.set_no_new_privileges(options.security.no_new_privileges.then_some(true));

        let cgroup = options.resources.build(self.container_id, host)?;
        // Deny all, then each device's rule; or, privileged, allow all (podman's rule).
        // Without root no device node can be made: the host's node is bind-mounted instead
        // (podman's way), and there is no device cgroup to allow it in.
        let device_binds = own.is_some();
        let mut device_rules = vec![LinuxDeviceCgroupBuilder::default()
            .allow(options.privileged)
            .access("rwm")
            .build()
            .map_err(internal)?];
        let mut device_nodes = Vec::new();
        let mut device_mounts = Vec::new();
        for device in &options.devices {
            if device_binds {
                device_mounts.push(device.to_bind_mount()?);
                continue;
            }
            let (node, rule) = device.to_spec()?;
            if !device_nodes
                .iter()
                .any(|n: &oci_spec::runtime::LinuxDevice| n.path() == node.path())
            {
                device_nodes.push(node);
            }
            if !options.privileged {
                device_rules.push(rule);
            }
        }
        let mut resources = LinuxResourcesBuilder::default().devices(device_rules);
        if let Some(memory) = cgroup.memory {
            resources = resources.memory(memory);
        }
        if let Some(cpu) = cgroup.cpu {
            resources = resources.cpu(cpu);
        }
        if let Some(pids) = cgroup.pids {
            resources = resources.pids(pids);
        }

        let security = &options.security;
        // Privileged: none of the default masked and read-only paths, but `mask=`.
        let defaults = |paths: &'static [&'static str]| {
            if options.privileged {
                &paths[..0]
            } else {
                paths
            }
        };
        let thermal: Vec<String> = host
            .thermal_throttle_cpus
            .iter()
            .filter(|_| !options.privileged)
            .map(|cpu| thermal_throttle_path(*cpu))
            .collect();
        let masked: Vec<String> = defaults(&MASKED_PATHS)
            .iter()
            .map(|p| (*p).to_owned())
            .chain(thermal)
            .filter(|p| security.keeps_masked(p))
            .chain(security.mask.iter().cloned())
            .fold(Vec::new(), |mut acc, p| {
                if !acc.contains(&p) {
                    acc.push(p);
                }
                acc
            });
        let readonly: Vec<String> = defaults(&READONLY_PATHS)
            .iter()
            .filter(|p| security.keeps_masked(p))
            .map(|p| (*p).to_owned())
            .collect();

        let mut linux = LinuxBuilder::default()
            .namespaces(self.namespaces(maps.is_some())?)
            .masked_paths(masked)
            .readonly_paths(readonly)
            .resources(resources.build().map_err(internal)?);
        if !device_nodes.is_empty() {
            linux = linux.devices(device_nodes);
        }
        let sysctls = self.sysctls()?;
        if !sysctls.is_empty() {
            linux = linux.sysctl(sysctls);
        }
        if let Some(path) = cgroup
            .cgroups_path
            .or_else(|| self.fallback_cgroups_path.map(str::to_owned))
        {
            linux = linux.cgroups_path(path);
        }
        if let Some(propagation) = self.rootfs_propagation {
            linux = linux.rootfs_propagation(propagation);
        }
        if let Some((uids, gids)) = &maps {
            linux = linux
                .uid_mappings(uids.iter().map(|m| m.to_oci()).collect::<Vec<_>>())
                .gid_mappings(gids.iter().map(|m| m.to_oci()).collect::<Vec<_>>());
        }
        if let Some((_, mount_label)) = labels {
            linux = linux.mount_label(mount_label);
        }
        let bounding_names: Vec<String> = final_caps.iter().map(|c| cap_name(*c)).collect();
        let ctx = ResolveContext {
            bounding: &bounding_names,
            arch: host.arch,
            kernel: host.kernel,
        };
        match &security.seccomp {
            SeccompPolicy::Unconfined => {}
            SeccompPolicy::Default if options.privileged => {}
            SeccompPolicy::Default => {
                linux = linux.seccomp(SeccompProfile::builtin_shared().resolve(
                    &ctx,
                    self.syscalls,
                    true,
                    "built-in",
                )?);
            }
            SeccompPolicy::Profile { origin, profile } => {
                linux = linux.seccomp(profile.resolve(&ctx, self.syscalls, false, origin)?);
            }
        }

        let mut mounts = default_mounts(self.shm_size()?);
        for mount in &mut mounts {
            let dst = mount.destination().clone();
            let mut opts = mount.options().clone().unwrap_or_default();
            if options.privileged
                && (dst == Path::new("/sys") || dst == Path::new("/sys/fs/cgroup"))
            {
                for o in &mut opts {
                    if o == "ro" {
                        *o = "rw".to_owned();
                    }
                }
            }
            // Read-only without the tmpfs: /dev and /dev/shm are read-only too (podman).
            if options.read_only
                && !options.read_only_tmpfs
                && (dst == Path::new("/dev") || dst == Path::new("/dev/shm"))
            {
                opts.push("ro".to_owned());
            }
            mount.set_options(Some(opts));
        }
        if options.read_only && options.read_only_tmpfs {
            for dst in READ_ONLY_TMPFS {
                let mut opts: Vec<String> = ["rw", "rprivate", "nosuid", "nodev"]
                    .map(String::from)
                    .to_vec();
                if !options
                    .nothing_to_copy_up
                    .iter()
                    .any(|p| p == Path::new(dst))
                {
                    opts.push("tmpcopyup".to_owned());
                }
                mounts.push(
                    MountBuilder::default()
                        .destination(dst)
                        .typ("tmpfs")
                        .source("tmpfs")
                        .options(opts)
                        .build()
                        .map_err(internal)?,
                );
            }
        }
        if options.ipc == NamespaceMode::Host {
            // The host's IPC namespace: its /dev/shm is the one that goes with it.
            for mount in &mut mounts {
                if mount.destination() == Path::new("/dev/shm") {
                    *mount = MountBuilder::default()
                        .destination("/dev/shm")
                        .typ("bind")
                        .source("/dev/shm")
                        .options(
                            ["rbind", "nosuid", "noexec", "nodev"]
                                .map(String::from)
                                .to_vec(),
                        )
                        .build()
                        .map_err(internal)?;
                }
            }
        }
        if own.is_some() || maps.is_some() {
            userns_mounts(&mut mounts, options)?;
        }
        if !gid_mapped(5) {
            // devpts refuses a gid the namespace does not map (tty, 5, in the defaults).
            for mount in &mut mounts {
                if mount.destination() == Path::new("/dev/pts") {
                    let kept: Vec<String> = mount
                        .options()
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|o| o != "gid=5")
                        .collect();
                    mount.set_options(Some(kept));
                }
            }
        }
        let init = match &options.init {
            Some(binary) => {
                if let Some(taken) = self
                    .mounts
                    .iter()
                    .find(|m| m.destination() == Path::new(INIT_PATH))
                {
                    return Err(SpecError::InitPathTaken(
                        taken
                            .source()
                            .clone()
                            .unwrap_or_default()
                            .display()
                            .to_string(),
                    ));
                }
                vec![MountBuilder::default()
                    .destination(INIT_PATH)
                    .typ("bind")
                    .source(binary)
                    .options(["bind", "ro", "nosuid", "nodev"].map(String::from).to_vec())
                    .build()
                    .map_err(internal)?]
            }
            None => Vec::new(),
        };
        let mounts = merge_mounts([init, self.mounts.to_vec(), device_mounts, mounts]);

        let mut spec = SpecBuilder::default()
            .version(OCI_VERSION)
            .root(
                RootBuilder::default()
                    .path(self.rootfs)
                    .readonly(options.read_only)
                    .build()
                    .map_err(internal)?,
            )
            .process(process)
            .linux(linux.build().map_err(internal)?)
            .mounts(mounts);
        if let Some(hostname) = &hostname {
            spec = spec.hostname(hostname.clone());
        }
        let mut spec = spec.build().map_err(internal)?;
        // oci-spec's builder starts from its own defaults (a hostname, empty annotations):
        // only what this crate decided goes into the spec.
        spec.set_hostname(hostname);
        let annotations: std::collections::HashMap<String, String> = options
            .annotations
            .iter()
            .map(|a| (a.key().to_owned(), a.value().to_owned()))
            .collect();
        spec.set_annotations((!annotations.is_empty()).then_some(annotations));
        Ok(spec)
    }

    /// The hostname: `--hostname`, else the image's, else the id's first 12 characters; none
    /// when the UTS namespace is not a new one.
    fn hostname(&self, image: &ImageConfig) -> Result<Option<String>, SpecError> {
        let given = self
            .options
            .hostname
            .as_deref()
            .or(image.hostname.as_deref());
        if self.options.uts != NamespaceMode::Private {
            return match self.options.hostname.as_deref() {
                Some(h) => Err(SpecError::HostnameWithHostUts(h.to_owned())),
                None => Ok(None),
            };
        }
        let hostname = match given {
            Some(h) => h.to_owned(),
            None => self.container_id.chars().take(12).collect(),
        };
        validate_hostname(&hostname)?;
        Ok(Some(hostname))
    }

    fn shm_size(&self) -> Result<Size, SpecError> {
        match self.options.shm_size {
            None => Ok(DEFAULT_SHM_SIZE),
            Some(size) if self.options.ipc == NamespaceMode::Host => {
                Err(SpecError::InvalidResource {
                    flag: "--shm-size",
                    value: size.to_string(),
                    reason: "has no effect with --ipc host, which uses the host's /dev/shm"
                        .to_owned(),
                })
            }
            Some(size) if size.bytes() == 0 => Err(SpecError::InvalidResource {
                flag: "--shm-size",
                value: size.to_string(),
                reason: "must be greater than 0".to_owned(),
            }),
            Some(size) => Ok(size),
        }
    }

    /// runtime-spec `linux.sysctl` from `--sysctl` (a later value for a key wins), each
    /// checked against the run's namespaces: an IPC key needs the container's own IPC
    /// namespace, a `net.*` key its own network namespace (new or joined).
    fn sysctls(&self) -> Result<std::collections::HashMap<String, String>, SpecError> {
        let o = self.options;
        let mut out = std::collections::HashMap::new();
        for sysctl in &o.sysctls {
            let shared = match sysctl.namespace() {
                SysctlNamespace::Ipc => {
                    (o.ipc == NamespaceMode::Host).then(|| ("--ipc", "host".to_owned()))
                }
                SysctlNamespace::Network => {
                    (o.network == NetworkMode::Host).then(|| ("--network", "host".to_owned()))
                }
            };
            if let Some((flag, mode)) = shared {
                return Err(SpecError::SysctlNamespace {
                    sysctl: sysctl.to_string(),
                    namespace: sysctl.namespace().name(),
                    flag,
                    mode,
                });
            }
            out.insert(sysctl.key().to_owned(), sysctl.value().to_owned());
        }
        Ok(out)
    }

    /// runtime-spec `linux.namespaces`, in the order runc's `runc spec` writes them.
    fn namespaces(&self, user: bool) -> Result<Vec<LinuxNamespace>, SpecError> {
        let o = self.options;
        let network = match &o.network {
            NetworkMode::Host => NamespaceMode::Host,
            NetworkMode::None => NamespaceMode::Private,
            NetworkMode::Path(p) => NamespaceMode::Path(p.clone()),
        };
        let wanted = [
            (LinuxNamespaceType::Pid, &o.pid),
            (LinuxNamespaceType::Network, &network),
            (LinuxNamespaceType::Ipc, &o.ipc),
            (LinuxNamespaceType::Uts, &o.uts),
            (LinuxNamespaceType::Mount, &NamespaceMode::Private),
            (LinuxNamespaceType::Cgroup, &o.cgroupns),
        ];
        let mut namespaces = Vec::new();
        for (typ, mode) in wanted {
            let builder = LinuxNamespaceBuilder::default().typ(typ);
            let ns = match mode {
                NamespaceMode::Host => continue,
                NamespaceMode::Private => builder,
                NamespaceMode::Path(path) => builder.path(path.clone()),
            };
            namespaces.push(ns.build().map_err(internal)?);
        }
        if user {
            namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::User)
                    .build()
                    .map_err(internal)?,
            );
        }
        Ok(namespaces)
    }
}

/// The command: `args`, or with `--use-entrypoint` the image's Entrypoint followed by `args`
/// (or by the image's Cmd when `args` is empty).
fn command(options: &RunOptions, image: &ImageConfig) -> Result<Vec<String>, SpecError> {
    let args = if options.use_entrypoint {
        let rest = if options.args.is_empty() {
            &image.cmd
        } else {
            &options.args
        };
        image.entrypoint.iter().chain(rest).cloned().collect()
    } else {
        options.args.clone()
    };
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// `process.rlimits`: NOFILE and NPROC at min(1048576, ocirun's own hard limit), then
/// `--ulimit` (the last one of a resource wins), sorted by resource name. A hard limit above
/// ocirun's own is refused without `CAP_SYS_RESOURCE`.
fn rlimits(
    ulimits: &[Ulimit],
    ulimit_host: bool,
    host: &HostFacts,
) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut limits: BTreeMap<RlimitKind, (u64, u64)> = BTreeMap::new();
    if ulimit_host {
        for kind in RlimitKind::ALL {
            limits.insert(kind, (host.soft_limit(kind), host.hard_limit(kind)));
        }
    } else {
        for kind in [RlimitKind::Nofile, RlimitKind::Nproc] {
            let value = host.hard_limit(kind).min(DEFAULT_RLIMIT_CEILING);
            limits.insert(kind, (value, value));
        }
    }
    for u in ulimits {
        let own = host.hard_limit(u.kind);
        if u.hard > own && !host.cap_sys_resource {
            return Err(SpecError::UlimitAboveHardLimit {
                ulimit: u.to_string(),
                resource: u.kind.name(),
                hard: show(u.hard),
                own_hard: show(own),
            });
        }
        limits.insert(u.kind, (u.soft, u.hard));
    }
    limits
        .into_iter()
        .map(|(kind, (soft, hard))| {
            PosixRlimitBuilder::default()
                .typ(kind.posix())
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(internal)
        })
        .collect()
}

/// `process.apparmorProfile`: set only when asked for and AppArmor is enabled; `unconfined`
/// on a host without AppArmor is what the process is anyway.
fn apparmor_profile(
    security: &SecurityOptions,
    host: &HostFacts,
) -> Result<Option<String>, SpecError> {
    match &security.apparmor {
        None => Ok(None),
        Some(name) if host.apparmor_enabled => Ok(Some(name.clone())),
        Some(name) if name == "unconfined" => Ok(None),
        Some(name) => Err(SpecError::AppArmorDisabled(name.clone())),
    }
}

/// `(process.selinuxLabel, linux.mountLabel)` when SELinux is enabled and not disabled by
/// `label=disable`. The level is `label=level:` or an MCS pair derived from the container id
/// (`s0:cA,cB`, A < B < 1024), so that the same id always gives the same labels.
fn selinux_labels(
    security: &SecurityOptions,
    host: &HostFacts,
    container_id: &str,
) -> Option<(String, String)> {
    let label = &security.label;
    if !host.selinux_enabled || label.disable {
        return None;
    }
    let level = label
        .level
        .clone()
        .unwrap_or_else(|| mcs_level(container_id));
    let (user, role, typ) = SELINUX_PROCESS_DEFAULT;
    let process = format!(
        "{}:{}:{}:{level}",
        label.user.as_deref().unwrap_or(user),
        label.role.as_deref().unwrap_or(role),
        label.typ.as_deref().unwrap_or(typ)
    );
    let (fuser, frole, ftyp) = SELINUX_FILE_DEFAULT;
    let mount = format!(
        "{fuser}:{frole}:{}:{level}",
        label.filetype.as_deref().unwrap_or(ftyp)
    );
    Some((process, mount))
}

/// `s0:cA,cB` with two distinct categories below 1024 from an FNV-1a hash of `id`.
fn mcs_level(id: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let a = hash % 1024;
    let mut b = (hash >> 10) % 1023;
    if b >= a {
        b += 1;
    }
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    format!("s0:c{lo},c{hi}")
}

/// The default mounts of docs/ocirun-run.md "Linux" (the set runc's `runc spec`, buildah and podman
/// give every container), with a `/dev/shm` tmpfs of `shm_size` (written in KiB when it is a
/// whole number of KiB, else in bytes).
pub(crate) fn default_mounts(shm_size: Size) -> Vec<Mount> {
    let mount = |dst: &str, typ: &str, src: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dst)
            .typ(typ)
            .source(src)
            .options(opts.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
            .build()
            .unwrap_or_else(|e| panic!("default mount {dst} is malformed: {e}"))
    };
    let bytes = shm_size.bytes();
    let shm_size = if bytes.is_multiple_of(1024) {
        format!("size={}k", bytes / 1024)
    } else {
        format!("size={bytes}")
    };
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

/// The default mounts a container in a user namespace gets instead of those it could not
/// mount (podman's rules): the host's `/sys`, bound read-only, and no cgroup mount (the bind
/// holds the host's) unless the container has a network namespace of its own (a sysfs belongs
/// to the network namespace, which the user namespace must own); the host's `/dev/mqueue` with
/// `--ipc host`, the host's `/proc` with `--pid host`.
fn userns_mounts(mounts: &mut Vec<Mount>, options: &RunOptions) -> Result<(), SpecError> {
    let bind = |dst: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dst)
            .typ("bind")
            .source(dst)
            .options(opts.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
            .build()
            .map_err(internal)
    };
    if options.network != NetworkMode::None {
        mounts.retain(|m| m.destination() != Path::new("/sys/fs/cgroup"));
        replace(
            mounts,
            bind("/sys", &["rbind", "nosuid", "noexec", "nodev", "ro"])?,
        );
    }
    if options.ipc == NamespaceMode::Host {
        replace(
            mounts,
            bind("/dev/mqueue", &["rbind", "nosuid", "noexec", "nodev"])?,
        );
    }
    if options.pid == NamespaceMode::Host {
        replace(
            mounts,
            bind("/proc", &["rbind", "nosuid", "noexec", "nodev"])?,
        );
    }
    Ok(())
}

/// Replaces the mount on `mount`'s destination.
fn replace(mounts: &mut [Mount], mount: Mount) {
    for m in mounts.iter_mut() {
        if m.destination() == mount.destination() {
            *m = mount.clone();
        }
    }
}

/// Merges layers of mounts, given in order of precedence: for one destination the mount of the
/// earliest layer (and the first within a layer) wins; then all are sorted with
/// [`sort_mounts`]. This is the one rule by which every mount of a spec is ordered: `--init`'s
/// bind mount, then the caller's mounts ([`SpecGenerator::mounts`]), then the defaults.
pub fn merge_mounts(layers: impl IntoIterator<Item = Vec<Mount>>) -> Vec<Mount> {
    let mut seen = std::collections::HashSet::new();
    let mut merged: Vec<Mount> = layers
        .into_iter()
        .flatten()
        .filter(|m| seen.insert(m.destination().clone()))
        .collect();
    sort_mounts(&mut merged);
    merged
}

/// Sorts mounts by the depth of their destination, then by destination, so that a parent is
/// always mounted before what is mounted below it (docs/ocirun-run.md "Mounts", Order). Stable: two
/// mounts on one destination keep their relative order.
pub fn sort_mounts(mounts: &mut [Mount]) {
    mounts.sort_by(|a, b| {
        let depth = |m: &Mount| m.destination().components().count();
        depth(a)
            .cmp(&depth(b))
            .then_with(|| a.destination().cmp(b.destination()))
    });
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
    // It becomes a line of /etc/hosts and /etc/hostname: no whitespace, no control character.
    if hostname
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return bad("contains whitespace or a control character");
    }
    Ok(())
}

/// oci-spec's builders fail only on a missing required field, which this crate always sets.
pub(crate) fn internal(err: oci_spec::OciSpecError) -> SpecError {
    panic!("spec builder rejected a value spec-gen built: {err}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcs_levels_are_stable_and_ordered() {
        assert_eq!(mcs_level("abc"), mcs_level("abc"));
        for id in ["", "a", "0123456789abcdef", "ffffffffffff"] {
            let level = mcs_level(id);
            let cats: Vec<u64> = level
                .trim_start_matches("s0:")
                .split(',')
                .map(|c| c.trim_start_matches('c').parse().unwrap())
                .collect();
            assert!(cats[0] < cats[1] && cats[1] < 1024, "{level}");
        }
    }

    #[test]
    fn shm_size_is_written_in_kib_or_bytes() {
        let opts = |size: u64| {
            default_mounts(Size::from_bytes(size))
                .into_iter()
                .find(|m| m.destination() == Path::new("/dev/shm"))
                .unwrap()
                .options()
                .clone()
                .unwrap()
        };
        assert!(opts(64 << 20).contains(&"size=65536k".to_owned()));
        assert!(opts(1000).contains(&"size=1000".to_owned()));
    }
}
