//! The command line: clap structs only, no logic.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run a command inside a container root filesystem through an OCI runtime (runc).
#[derive(Debug, Parser)]
#[command(name = "ocirun", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Log level of ocirun's own diagnostics on stderr: error, warn, info, debug or trace.
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    pub(crate) log_level: String,

    /// Directory for ocirun's run state: bundles under DIR/bundles, the runtime's state under
    /// DIR/runtime.
    #[arg(long, global = true, default_value = "/run/ocirun", value_name = "DIR")]
    pub(crate) runroot: PathBuf,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a command in a root filesystem and exit with its status.
    Run(RunArgs),
    /// Print the config.json that `run` would hand the runtime; writes nothing.
    Spec(RunArgs),
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

    /// The command and its arguments. Flags end at the first word that is not a flag; one `--`
    /// before the command is dropped, later ones are passed on.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}
