//! The command line: every clap struct of the `ocirun` binary, and nothing but clap and std
//! (so that man pages and completions can be generated from this file alone).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run a command inside a container root filesystem through an OCI runtime (runc).
#[derive(Debug, Parser)]
#[command(name = "ocirun", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Log level of ocirun's own diagnostics on stderr: error, warn, info, debug or trace.
    #[arg(
        long,
        global = true,
        default_value = "warn",
        value_name = "LEVEL",
        value_parser = ["error", "warn", "info", "debug", "trace"]
    )]
    pub(crate) log_level: String,

    /// Directory for ocirun's run state: bundles under DIR/bundles, the runtime's state under
    /// DIR/runtime (default: /run/ocirun as root; $XDG_RUNTIME_DIR/ocirun, else
    /// /tmp/ocirun-UID, for another user).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) runroot: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) storage: StorageArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a command in a root filesystem and exit with its status.
    #[command(args_override_self = true)]
    Run(RunArgs),
    /// Print the config.json that `run` would hand the runtime; writes nothing.
    #[command(args_override_self = true)]
    Spec(RunArgs),
    /// Remove what runs whose ocirun process died left behind: containers, bundles, records,
    /// mount targets.
    Gc,
    /// Manage the named volumes under ROOT/volumes: ls, inspect, rm, prune.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Run a command of the host in the user namespace ocirun runs containers in without root
    /// (0 is the user, 1.. its subordinate ids), to unpack or edit a root filesystem with its
    /// real owners: `ocirun unshare -- tar -xpf rootfs.tar -C DIR` (podman's and buildah's
    /// unshare).
    Unshare(UnshareArgs),
    /// Print a shell completion script for ocirun, e.g. `source <(ocirun completion bash)`.
    Completion {
        /// The shell: bash, zsh or fish.
        #[arg(value_enum, value_name = "SHELL")]
        shell: CompletionShell,
    },
}

/// `ocirun volume SUBCOMMAND`.
#[derive(Debug, Subcommand)]
pub(crate) enum VolumeCommand {
    /// List the named volumes.
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Show the named volumes as JSON (or through a --format template).
    Inspect(VolumeInspectArgs),
    /// Remove named volumes; one that a live run uses is refused.
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove every named volume that no live run uses.
    Prune(VolumePruneArgs),
}

/// `ocirun volume ls`.
#[derive(Debug, Args)]
pub(crate) struct VolumeLsArgs {
    /// `json`, `table`, or a template of {{.Name}}, {{.Driver}}, {{.Mountpoint}},
    /// {{.CreatedAt}}, {{.Scope}} (default: a table).
    #[arg(long, value_name = "FORMAT")]
    pub(crate) format: Option<String>,

    /// Print the volume names only.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

/// `ocirun volume inspect`.
#[derive(Debug, Args)]
pub(crate) struct VolumeInspectArgs {
    /// `json` (the default), or a template of {{.Name}}, {{.Driver}}, {{.Mountpoint}},
    /// {{.CreatedAt}}, {{.Scope}}.
    #[arg(short, long, value_name = "FORMAT")]
    pub(crate) format: Option<String>,

    /// Inspect every volume.
    #[arg(short, long)]
    pub(crate) all: bool,

    /// The volumes.
    #[arg(value_name = "NAME")]
    pub(crate) names: Vec<String>,
}

/// `ocirun volume rm`.
#[derive(Debug, Args)]
pub(crate) struct VolumeRmArgs {
    /// Remove every volume (those in use are refused).
    #[arg(short, long)]
    pub(crate) all: bool,

    /// The volumes.
    #[arg(value_name = "NAME")]
    pub(crate) names: Vec<String>,
}

/// `ocirun volume prune`.
#[derive(Debug, Args)]
pub(crate) struct VolumePruneArgs {
    /// Accepted for podman's command lines: ocirun never asks for a confirmation.
    #[arg(short, long)]
    pub(crate) force: bool,
}

/// `ocirun unshare [--] COMMAND [ARG...]`.
#[derive(Debug, Args)]
pub(crate) struct UnshareArgs {
    /// The command and its arguments (default: $SHELL, else /bin/sh).
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

/// The shells `ocirun completion` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompletionShell {
    /// bash (`source <(ocirun completion bash)`, or a file in
    /// /usr/share/bash-completion/completions/ocirun).
    Bash,
    /// zsh (a file `_ocirun` in a directory of `$fpath`).
    Zsh,
    /// fish (a file in ~/.config/fish/completions/ocirun.fish).
    Fish,
}

/// The flags shared by `run` and `spec`, named as buildah and podman name them.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The root filesystem directory to run in.
    #[arg(long, value_name = "DIR")]
    pub(crate) rootfs: PathBuf,

    /// An OCI image configuration (image-spec config.json, or its `config` object): Env, User,
    /// WorkingDir and Hostname are defaults that the flags override.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Set an environment variable (KEY=VALUE; a bare KEY copies ocirun's own value; a bare
    /// PREFIX* copies every variable of ocirun's whose name starts with PREFIX).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,

    /// Copy ocirun's whole environment into the container's (over the image's Env).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        default_value_t = false,
        value_name = "BOOL"
    )]
    pub(crate) env_host: bool,

    /// Leave a variable out of the default environment (the default PATH, the image's Env,
    /// TERM). Repeatable.
    #[arg(long = "unsetenv", value_name = "NAME")]
    pub(crate) unsetenv: Vec<String>,

    /// Leave out the whole default environment (the default PATH, the image's Env, TERM).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        default_value_t = false,
        value_name = "BOOL"
    )]
    pub(crate) unsetenv_all: bool,

    /// Working directory inside the container; created if missing.
    #[arg(
        short,
        long = "workingdir",
        visible_alias = "workdir",
        value_name = "DIR"
    )]
    pub(crate) workingdir: Option<String>,

    /// User to run as: name, uid, name:group, uid:gid, uid:group or name:gid.
    #[arg(short, long, value_name = "USER")]
    pub(crate) user: Option<String>,

    /// Hostname of the container (default: the first 12 characters of the container id).
    #[arg(long, value_name = "NAME")]
    pub(crate) hostname: Option<String>,

    /// Copy the proxy variables (http_proxy, ...) of ocirun's environment into the container.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub(crate) http_proxy: bool,

    /// The OCI runtime: a name looked up in PATH, or a path (default: $OCIRUN_RUNTIME, else
    /// runc).
    #[arg(long, value_name = "NAME|PATH")]
    pub(crate) runtime: Option<String>,

    /// Discard the container's stdout.
    #[arg(short, long)]
    pub(crate) quiet: bool,

    #[command(flatten)]
    pub(crate) stdio: StdioArgs,

    #[command(flatten)]
    pub(crate) lifecycle: LifecycleArgs,

    #[command(flatten)]
    pub(crate) spec_flags: SpecFlags,

    #[command(flatten)]
    pub(crate) mount_flags: MountFlags,

    /// The command and its arguments. Flags end at the first word that is not a flag; one `--`
    /// before the command is dropped, later ones are passed on.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

/// The flags of the container's lifecycle: runtime, signals, init, name (podman's names).
#[derive(Debug, Args)]
pub(crate) struct LifecycleArgs {
    /// A global flag for the runtime, without its dashes: `debug` is passed as `--debug`
    /// (repeatable; `root=DIR` replaces ocirun's runtime state root).
    #[arg(long = "runtime-flag", value_name = "FLAG")]
    pub(crate) runtime_flags: Vec<String>,

    /// Seconds a container may keep running after a forwarded SIGINT or SIGTERM before it is
    /// killed with SIGKILL (0 to 4294967295).
    #[arg(
        long,
        default_value_t = 10,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(..=u64::from(u32::MAX))
    )]
    pub(crate) stop_timeout: u64,

    /// Forward the signals ocirun receives to the container.
    #[arg(
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub(crate) sig_proxy: bool,

    /// Run the command under a minimal init (tini or catatonit) as PID 1, which forwards
    /// signals and reaps zombies.
    #[arg(long)]
    pub(crate) init: bool,

    /// The init binary for --init (default: the first of /usr/bin/tini-static,
    /// /usr/libexec/podman/catatonit, /usr/bin/catatonit that exists).
    #[arg(long, value_name = "PATH")]
    pub(crate) init_path: Option<PathBuf>,

    /// A name for the container; two runs cannot use one name at the same time.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// Seconds the command may run; then it gets the image's StopSignal (default SIGTERM),
    /// and SIGKILL --stop-timeout seconds later (0: no limit).
    #[arg(
        long,
        default_value_t = 0,
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub(crate) timeout: u64,

    /// Write the container's process id (on the host) to FILE once the command runs; removed
    /// when the run ends.
    #[arg(long, value_name = "FILE")]
    pub(crate) pidfile: Option<PathBuf>,

    /// Write the container id to FILE, which must not exist; removed when the run ends.
    #[arg(long, value_name = "FILE")]
    pub(crate) cidfile: Option<PathBuf>,

    /// Accepted for podman's command lines: every run is removed when it ends.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        default_value_t = false,
        value_name = "BOOL"
    )]
    pub(crate) rm: bool,
}

/// How the container's stdio is connected (see the `stdio` module).
#[derive(Debug, Args)]
pub(crate) struct StdioArgs {
    /// Keep stdin open (podman's `-i`). ocirun always relays its stdin to the container, so
    /// this is accepted for `-it` and changes nothing.
    #[arg(short = 'i', long = "interactive")]
    pub(crate) interactive: bool,

    /// Give the command a terminal (pseudo-terminal); ocirun's own terminal is in raw mode
    /// while it runs. Default: true when ocirun's stdin, stdout and stderr are all terminals.
    #[arg(
        short = 't',
        long = "tty",
        visible_alias = "terminal",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub(crate) tty: Option<bool>,

    /// `relay`: ocirun relays the container's stdio through pipes (or its terminal);
    /// `inherit`: the container gets ocirun's own stdin, stdout and stderr and nothing is
    /// relayed (fastest; a process the container leaves behind keeps them open).
    #[arg(long = "stdio", value_enum, default_value_t = StdioMode::Relay, value_name = "MODE")]
    pub(crate) mode: StdioMode,
}

/// `--stdio MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StdioMode {
    /// Pipes or a terminal, relayed by ocirun.
    Relay,
    /// ocirun's own fds, no relay.
    Inherit,
}

/// The spec flags of `run` and `spec` (podman-run(1) names and value forms).
#[derive(Debug, Default, Args)]
pub(crate) struct SpecFlags {
    /// Run the image's Entrypoint, followed by COMMAND or else the image's Cmd.
    #[arg(long)]
    pub(crate) use_entrypoint: bool,

    /// Read environment variables from FILE (KEY=VALUE lines; # comments); merged after the
    /// image's Env and before --env. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub(crate) env_file: Vec<PathBuf>,

    /// Add a supplementary group (a name from the rootfs's /etc/group, or a gid). Repeatable,
    /// or comma-separated.
    #[arg(long, value_name = "GROUP", value_delimiter = ',')]
    pub(crate) group_add: Vec<String>,

    /// Add a capability (CAP_NET_ADMIN, net_admin, or ALL). Repeatable, or comma-separated.
    #[arg(long, value_name = "CAP", value_delimiter = ',')]
    pub(crate) cap_add: Vec<String>,

    /// Drop a capability (or ALL); applied after --cap-add. Repeatable, or comma-separated.
    #[arg(long, value_name = "CAP", value_delimiter = ',')]
    pub(crate) cap_drop: Vec<String>,

    /// A resource limit: name=soft[:hard], e.g. nofile=1024:2048, core=0:-1 (-1 or unlimited
    /// for no limit), or host (ocirun's own limits). Repeatable.
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub(crate) ulimit: Vec<String>,

    /// seccomp=unconfined|PATH, apparmor=unconfined|NAME, label=disable|user:|role:|type:|
    /// level:|filetype:, no-new-privileges[=BOOL], mask=P1:P2, unmask=ALL|P1:P2. Repeatable.
    #[arg(long, value_name = "OPT")]
    pub(crate) security_opt: Vec<String>,

    /// The network namespace: host (default), none (loopback only) or ns:PATH.
    #[arg(long, visible_alias = "net", value_name = "MODE")]
    pub(crate) network: Option<String>,

    /// The PID namespace: private (default), host or ns:PATH.
    #[arg(long, value_name = "MODE")]
    pub(crate) pid: Option<String>,

    /// The IPC namespace: private (default), host or ns:PATH.
    #[arg(long, value_name = "MODE")]
    pub(crate) ipc: Option<String>,

    /// The UTS namespace: private (default), host or ns:PATH.
    #[arg(long, value_name = "MODE")]
    pub(crate) uts: Option<String>,

    /// The cgroup namespace: private (default), host or ns:PATH.
    #[arg(long, value_name = "MODE")]
    pub(crate) cgroupns: Option<String>,

    /// The CFS period in microseconds (1000 to 1000000).
    #[arg(
        long,
        value_name = "MICROSECONDS",
        value_parser = clap::value_parser!(u64).range(1000..=1_000_000)
    )]
    pub(crate) cpu_period: Option<u64>,

    /// The CFS quota in microseconds per period (at least 1000; -1 for none).
    #[arg(
        long,
        value_name = "MICROSECONDS",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i64).range(-1..)
    )]
    pub(crate) cpu_quota: Option<i64>,

    /// The relative CPU weight (2 to 262144; the kernel's default is 1024).
    #[arg(
        long,
        value_name = "SHARES",
        value_parser = clap::value_parser!(u64).range(2..=262_144)
    )]
    pub(crate) cpu_shares: Option<u64>,

    /// How many CPUs the container may use, e.g. 1.5 (a CFS quota per 100 ms period).
    #[arg(long, value_name = "NUMBER", allow_negative_numbers = true)]
    pub(crate) cpus: Option<String>,

    /// The CPUs the container may run on, e.g. 0-2,4.
    #[arg(long, value_name = "LIST")]
    pub(crate) cpuset_cpus: Option<String>,

    /// The memory nodes the container may allocate on, e.g. 0,1.
    #[arg(long, value_name = "LIST")]
    pub(crate) cpuset_mems: Option<String>,

    /// The memory limit, e.g. 512m or 1g (binary units b, k, m, g; at least 6m).
    #[arg(short, long, value_name = "SIZE", allow_negative_numbers = true)]
    pub(crate) memory: Option<String>,

    /// The soft memory limit (not above --memory).
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true)]
    pub(crate) memory_reservation: Option<String>,

    /// The memory plus swap limit (not below --memory; -1 for unlimited swap; default twice
    /// --memory).
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true)]
    pub(crate) memory_swap: Option<String>,

    /// The most processes the container may have (up to 4194304, the kernel's most; -1 or 0
    /// for no limit).
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i64).range(-1..=4_194_304)
    )]
    pub(crate) pids_limit: Option<i64>,

    /// The cgroup under which the container's cgroup is made (as PARENT/CONTAINER_ID).
    #[arg(long, value_name = "PATH")]
    pub(crate) cgroup_parent: Option<String>,

    /// Add a host device: HOST[:CONTAINER][:rwm] (the container path must be below /dev).
    /// Repeatable.
    #[arg(long, value_name = "HOST[:CONTAINER][:ACCESS]")]
    pub(crate) device: Vec<String>,

    /// The size of /dev/shm, e.g. 64m (default 64m).
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true)]
    pub(crate) shm_size: Option<String>,

    /// Mount the rootfs read-only.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        default_value_t = false,
        value_name = "BOOL"
    )]
    pub(crate) read_only: bool,

    /// With --read-only: a read-write tmpfs on /tmp, /var/tmp and /run (false: /dev and
    /// /dev/shm are read-only too).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        default_value_t = true,
        value_name = "BOOL"
    )]
    pub(crate) read_only_tmpfs: bool,

    /// Every capability of ocirun's bounding set, no seccomp, no masked or read-only paths,
    /// the host's devices.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        default_value_t = false,
        value_name = "BOOL"
    )]
    pub(crate) privileged: bool,

    /// A namespaced kernel parameter: KEY=VALUE (kernel.shm*, kernel.msg*, kernel.sem,
    /// fs.mqueue.*, net.*). Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) sysctl: Vec<String>,

    /// The umask of the command, e.g. 0077 (default 0022).
    #[arg(long, value_name = "UMASK")]
    pub(crate) umask: Option<String>,

    /// The OOM score adjustment of the command, -1000 to 1000.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) oom_score_adj: Option<String>,

    /// An annotation of the container: KEY=VALUE. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) annotation: Vec<String>,

    /// The user namespace: host (none: root only), keep-id[:uid=U,gid=G] (the user's own ids
    /// inside) or nomap (the user's own ids unmapped); without root, the default is the user
    /// namespace ocirun runs in (0 is the user, 1.. its subordinate ids).
    #[arg(long, value_name = "MODE")]
    pub(crate) userns: Option<String>,

    /// A uid mapping of the container's own user namespace, CONTAINER:HOST:SIZE (without root,
    /// HOST is an id of ocirun's user namespace: 0 the user, 1.. its subordinate ids).
    /// Repeatable.
    #[arg(long, value_name = "CONTAINER:HOST:SIZE")]
    pub(crate) uidmap: Vec<String>,

    /// A gid mapping, as --uidmap (the uid mappings when not given). Repeatable.
    #[arg(long, value_name = "CONTAINER:HOST:SIZE")]
    pub(crate) gidmap: Vec<String>,
}

/// The global flag for ocirun's persistent state (podman's `--root`).
#[derive(Debug, Args)]
pub(crate) struct StorageArgs {
    /// Directory for ocirun's persistent state: container directories (image-volume and
    /// secrets copies) under DIR/containers, named volumes under DIR/volumes, cache mounts
    /// under DIR/cache (default: /var/lib/ocirun as root; $XDG_DATA_HOME/ocirun, else
    /// ~/.local/share/ocirun, for another user).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
}

/// The mount flags of `run` and `spec`.
#[derive(Debug, Default, Args)]
pub(crate) struct MountFlags {
    /// Bind-mount a host path or a named volume: SRC:DST[:OPTS] (SRC absolute, relative
    /// starting with `.`, or a volume NAME; OPTS: ro, rw, z, Z, U, O, [r]shared, [r]slave,
    /// [r]private, [r]unbindable, nosuid, suid, nodev, dev, noexec, exec, bind, rbind, and
    /// for a volume copy, nocopy, nocreate; `\:` is a colon). Repeatable.
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:OPTS]")]
    pub(crate) volume: Vec<String>,

    /// Add a mount: type=bind,source=SRC,destination=DST[,ro][,bind-propagation=P]...,
    /// type=tmpfs,destination=DST[,tmpfs-size=SIZE][,tmpfs-mode=MODE]...,
    /// type=volume,source=NAME,destination=DST[,ro]..., type=cache,target=DST[,id=ID]
    /// [,sharing=shared|locked|private]... or type=secret,id=ID[,target=PATH]... Repeatable.
    #[arg(long = "mount", value_name = "type=TYPE,...")]
    pub(crate) mount: Vec<String>,

    /// Mount a tmpfs: DST[:OPTS] (default options rw, noexec, nosuid, nodev; e.g.
    /// /t:exec,size=64m). Repeatable.
    #[arg(long = "tmpfs", value_name = "DST[:OPTS]")]
    pub(crate) tmpfs: Vec<String>,

    /// A mounts.conf file of secrets (SRC[:DST] lines), read instead of
    /// /usr/share/containers/mounts.conf and /etc/containers/mounts.conf.
    #[arg(long = "mounts-file", value_name = "FILE")]
    pub(crate) mounts_file: Option<PathBuf>,

    /// Add a line to the container's /etc/hosts: NAME[;NAME...]:IP. Repeatable, or
    /// comma-separated.
    #[arg(long = "add-host", value_name = "NAME:IP", value_delimiter = ',')]
    pub(crate) add_host: Vec<String>,

    /// Keep the rootfs's own /etc/hosts instead of generating one.
    #[arg(long = "no-hosts")]
    pub(crate) no_hosts: bool,

    /// A nameserver for the container's /etc/resolv.conf (replaces the host's), or `none`
    /// to keep the rootfs's own file. Repeatable, or comma-separated.
    #[arg(long = "dns", value_name = "IP", value_delimiter = ',')]
    pub(crate) dns: Vec<String>,

    /// A search domain for /etc/resolv.conf (replaces the host's; `.` for none).
    /// Repeatable, or comma-separated.
    #[arg(long = "dns-search", value_name = "DOMAIN", value_delimiter = ',')]
    pub(crate) dns_search: Vec<String>,

    /// An option for /etc/resolv.conf, e.g. ndots:2 (replaces the host's). Repeatable, or
    /// comma-separated.
    #[arg(
        long = "dns-option",
        visible_alias = "dns-opt",
        value_name = "OPTION",
        value_delimiter = ','
    )]
    pub(crate) dns_option: Vec<String>,

    /// A secret for the command: id=ID[,src=FILE|env=VAR][,type=file|env][,target=PATH]
    /// [,mode=OCTAL][,uid=UID][,gid=GID]; its bytes are mounted read-only at
    /// /run/secrets/ID (or target) and never written to the rootfs. Repeatable.
    #[arg(long = "secret", value_name = "id=ID,src=FILE,...")]
    pub(crate) secret: Vec<String>,
}
