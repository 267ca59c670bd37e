//! The lifecycle side of `ocirun run` and `ocirun gc`: where ocirun keeps its run state, the
//! runtime, names, `--init`, and the clean-up of runs whose ocirun died.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ocirun_mounts::{find_init, ContainerStore, TargetLedger};
use ocirun_runtime_driver::{NameLock, RecordStore, Runtime, SignalPolicy};

use crate::flags::{LifecycleArgs, RunArgs};

/// Where runtimes are looked for besides `PATH`: runc lives in /usr/sbin on Debian, which a
/// non-login root shell's `PATH` may lack.
const RUNTIME_EXTRA_PATH: &str = "/usr/local/sbin:/usr/sbin:/sbin";

/// ocirun's run state under `--runroot` (default `/run/ocirun`).
#[derive(Debug)]
pub(crate) struct StateDirs {
    /// Bundles, one directory per run.
    pub(crate) bundles: PathBuf,
    /// The runtime's state root (`runc --root`).
    pub(crate) runtime: PathBuf,
    /// Run records and name locks.
    pub(crate) records: RecordStore,
    /// The mount-target ledger.
    pub(crate) targets: TargetLedger,
    /// The container directories under `--root` (image-volume and secrets copies).
    pub(crate) containers: ContainerStore,
}

impl StateDirs {
    pub(crate) fn new(runroot: &Path, root: &Path) -> Self {
        Self {
            bundles: runroot.join("bundles"),
            runtime: runroot.join("runtime"),
            records: RecordStore::new(runroot.join("records")),
            targets: TargetLedger::new(runroot.join("targets")),
            containers: ContainerStore::new(root.join("containers")),
        }
    }
}

/// Deletes what runs whose ocirun died left: their containers (with the runtime they used),
/// bundles and records, then the mount targets no live run needs. Returns a line per thing
/// removed, for `ocirun gc` to print.
pub(crate) fn collect_garbage(state: &StateDirs) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for record in state.records.stale()? {
        record
            .clean_up()
            .with_context(|| format!("cannot clean up container {}", record.container_id))?;
        state.records.remove(&record.container_id)?;
        done.push(format!("removed container {}", record.container_id));
    }
    let targets = state.targets.sweep()?;
    if targets > 0 {
        done.push(format!("removed {targets} mount targets"));
    }
    let dirs = state.containers.sweep()?;
    if dirs > 0 {
        done.push(format!("removed {dirs} container directories"));
    }
    Ok(done)
}

/// The sweep at the start of every run: like `ocirun gc`, but a failure is only a warning.
pub(crate) fn sweep(state: &StateDirs) {
    match collect_garbage(state) {
        Ok(done) => {
            for line in done {
                tracing::info!("gc: {line}");
            }
        }
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "cleaning up after dead runs failed"),
    }
}

/// `--runtime`, else `$OCIRUN_RUNTIME`, else `runc`, found in `PATH` and the sbin directories,
/// with ocirun's own state root and the `--runtime-flag`s.
pub(crate) fn discover_runtime(args: &RunArgs, state: &StateDirs) -> Result<Runtime> {
    let from_env = std::env::var("OCIRUN_RUNTIME")
        .ok()
        .filter(|v| !v.is_empty());
    let name = args
        .runtime
        .clone()
        .or(from_env)
        .unwrap_or_else(|| "runc".to_owned());
    let path = std::env::var("PATH").unwrap_or_default();
    let search = format!("{path}:{RUNTIME_EXTRA_PATH}");
    let mut runtime = Runtime::discover(&name, &search, &state.runtime)?;
    for flag in &args.lifecycle.runtime_flags {
        runtime = runtime.runtime_flag(flag);
    }
    Ok(runtime)
}

/// The signal policy of `--sig-proxy` and `--stop-timeout`.
pub(crate) fn signal_policy(args: &LifecycleArgs) -> SignalPolicy {
    SignalPolicy {
        proxy: args.sig_proxy,
        stop_timeout: Duration::from_secs(args.stop_timeout),
    }
}

/// Claims `--name`, if given. Names follow podman's rule: a letter or digit, then letters,
/// digits, `_`, `.` or `-`.
pub(crate) fn claim_name(args: &LifecycleArgs, state: &StateDirs) -> Result<Option<NameLock>> {
    let Some(name) = &args.name else {
        return Ok(None);
    };
    let valid = name.len() <= 253
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        bail!(
            "invalid container name {name:?}: use a letter or digit, then letters, digits, \
             '_', '.' or '-'"
        );
    }
    Ok(Some(state.records.claim_name(name)?))
}

/// The signals that end a run when they arrive before the container exists.
pub(crate) fn is_terminating(signal: nix::sys::signal::Signal) -> bool {
    use nix::sys::signal::Signal;
    matches!(
        signal,
        Signal::SIGINT | Signal::SIGTERM | Signal::SIGHUP | Signal::SIGQUIT
    )
}

/// The init binary for `--init`: `--init-path`, else the first known one on the host.
pub(crate) fn init_binary(args: &LifecycleArgs) -> Result<PathBuf> {
    match &args.init_path {
        Some(path) if path.is_file() => Ok(path.clone()),
        Some(path) => bail!("--init-path {path:?}: no such file"),
        None => find_init().map(Path::to_path_buf).context(
            "--init: no init binary found (install catatonit or tini, or give --init-path)",
        ),
    }
}
