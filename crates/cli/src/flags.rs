//! The command line: clap structs only, no logic.

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
    /// DIR/runtime.
    #[arg(long, global = true, default_value = "/run/ocirun", value_name = "DIR")]
    pub(crate) runroot: PathBuf,

    #[command(flatten)]
    pub(crate) storage: crate::mount_flags::StorageArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a command in a root filesystem and exit with its status.
    Run(RunArgs),
    /// Print the config.json that `run` would hand the runtime; writes nothing.
    Spec(RunArgs),
    /// Remove what runs whose ocirun process died left behind: containers, bundles, records,
    /// mount targets.
    Gc,
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

    /// Set an environment variable (KEY=VALUE; a bare KEY copies ocirun's own value).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,

    /// Working directory inside the container; created if missing.
    #[arg(short, long = "workingdir", value_name = "DIR")]
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
    pub(crate) spec_flags: crate::spec_flags::SpecFlags,

    #[command(flatten)]
    pub(crate) mount_flags: crate::mount_flags::MountFlags,

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
    /// killed with SIGKILL.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
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

    /// Run the command under a minimal init (catatonit or tini) as PID 1, which forwards
    /// signals and reaps zombies.
    #[arg(long)]
    pub(crate) init: bool,

    /// The init binary for --init (default: the first of /usr/libexec/podman/catatonit,
    /// /usr/bin/catatonit, /usr/bin/tini-static that exists).
    #[arg(long, value_name = "PATH")]
    pub(crate) init_path: Option<PathBuf>,

    /// A name for the container; two runs cannot use one name at the same time.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
}

/// How the container's stdio is connected (BEHAVIOR.md "Stdio").
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
