//! The lifecycle side of `ocirun run` and `ocirun gc`: where ocirun keeps its run state, the
//! runtime, names, `--init`, and the clean-up of runs whose ocirun died.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ocirun_mounts::{ContainerStore, TargetLedger};
use ocirun_runtime_driver::{
    remove_dangling_links, ContainerId, ContainerName, NameLock, Runtime, SignalPolicy, StateLayout,
};
use ocirun_spec_gen::find_init;
use ocirun_spec_gen::oci_spec::runtime::Spec;

use crate::flags::{LifecycleArgs, RunArgs};

/// Where runtimes are looked for besides `PATH`: runc lives in /usr/sbin on Debian, which a
/// non-login root shell's `PATH` may lack.
const RUNTIME_EXTRA_PATH: &str = "/usr/local/sbin:/usr/sbin:/sbin";

/// What a clean-up of dead runs did.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// A line per thing removed.
    pub(crate) removed: Vec<String>,
    /// A line per thing that could not be removed, with why.
    pub(crate) failed: Vec<String>,
}

/// How long the start-up sweep of a run gives the runtime to delete one dead run's container:
/// a hung runtime must not hold up the run.
const SWEEP_TIMEOUT: Duration = Duration::from_secs(1);

/// Deletes what runs whose ocirun died left in the runtime's state: their containers (with
/// the runtime they used, killed after `timeout`), bundles and records. A record whose clean-up
/// fails is kept and marked; with `skip_failed`, records marked so are left alone (the
/// start-up sweep). Without root this runs outside the user namespace: the user owns the
/// namespaces those containers run in, and may signal every process in them.
pub(crate) fn collect_records(
    state: &StateLayout,
    timeout: Duration,
    skip_failed: bool,
) -> Result<Collected> {
    let mut done = Collected::default();
    let records = state.records();
    let temporaries = records.sweep_temporaries();
    if temporaries > 0 {
        done.removed
            .push(format!("removed {temporaries} temporary files"));
    }
    for record in records.stale()? {
        if skip_failed && record.cleanup_failed.is_some() {
            done.failed.push(format!(
                "left container {}: an earlier clean-up failed",
                record.container_id
            ));
            continue;
        }
        match record.clean_up(timeout) {
            Ok(()) => {
                records.remove(&record.container_id)?;
                done.removed
                    .push(format!("removed container {}", record.container_id));
            }
            Err(e) => {
                let reason = crate::run::describe(&e.into());
                records.mark_cleanup_failed(&record, &reason)?;
                done.failed.push(format!(
                    "cannot remove container {}: {reason}",
                    record.container_id
                ));
            }
        }
    }
    Ok(done)
}

/// Removes what dead runs left in the rootfs and the state directories: the mount targets no
/// live run needs (not when a container could not be deleted by [`collect_records`]: they
/// may be its), the ephemeral container directories whose run is gone, and the links to
/// bundles that are gone. Without root this
/// runs inside the user namespace, where the files have the owners they were made with.
pub(crate) fn collect_files(state: &StateLayout, done: &mut Collected) -> Result<()> {
    if done.failed.is_empty() {
        let targets = TargetLedger::new(state.targets()).sweep()?;
        if targets > 0 {
            done.removed
                .push(format!("removed {targets} mount targets"));
        }
    } else {
        done.failed
            .push("left the mount targets: a container that may use them is left".to_owned());
    }
    let dirs = ContainerStore::new(state.containers()).sweep()?;
    if dirs > 0 {
        done.removed
            .push(format!("removed {dirs} container directories"));
    }
    let links = remove_dangling_links(&state.bundle_links());
    if links > 0 {
        done.removed.push(format!("removed {links} bundle links"));
    }
    Ok(())
}

fn log_sweep(result: Result<Collected>) -> Collected {
    match result {
        Ok(done) => {
            for line in done.removed.iter().chain(&done.failed) {
                tracing::info!("gc: {line}");
            }
            done
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "cleaning up after dead runs failed");
            Collected::default()
        }
    }
}

/// The first half of the sweep at the start of every run ([`collect_records`]): like
/// `ocirun gc`, but it gives a runtime [`SWEEP_TIMEOUT`], leaves records whose clean-up failed
/// before, and a failure is only logged.
pub(crate) fn sweep_records(state: &StateLayout) {
    let done = log_sweep(collect_records(state, SWEEP_TIMEOUT, true));
    SWEPT_FAILED.with(|failed| failed.set(!done.failed.is_empty()));
}

/// The second half of the sweep ([`collect_files`]).
pub(crate) fn sweep_files(state: &StateLayout) {
    let mut done = Collected::default();
    if SWEPT_FAILED.with(std::cell::Cell::get) {
        done.failed.push(String::new());
    }
    let result = collect_files(state, &mut done).map(|()| {
        done.failed.retain(|l| !l.is_empty());
        done
    });
    log_sweep(result);
}

thread_local! {
    /// Whether the first half of this process's sweep left a container.
    static SWEPT_FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a `--runtime-flag` turns on the runtime's debug log: `debug` (`--debug`,
/// `debug=true`) or `log-level=debug` (or `trace`).
fn is_debug_flag(flag: &str) -> bool {
    matches!(
        flag.trim_start_matches('-'),
        "debug" | "debug=true" | "log-level=debug" | "log-level=trace"
    )
}

/// `--runtime`, else `$OCIRUN_RUNTIME`, else `runc`, found in `PATH` and the sbin directories,
/// with ocirun's own state root and the `--runtime-flag`s. With `--log-level debug` (or
/// `trace`) the runtime gets `--debug` too; with its debug log on, every line it logs is shown
/// on ocirun's stderr, as `runc SUBCOMMAND: LINE`.
pub(crate) fn discover_runtime(args: &RunArgs, state: &StateLayout) -> Result<Runtime> {
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
    let mut runtime = Runtime::discover(&name, &search, state.runtime_root())?;
    let mut flags = args.lifecycle.runtime_flags.clone();
    let debug_level = tracing::level_filters::LevelFilter::current()
        >= tracing::level_filters::LevelFilter::DEBUG;
    if debug_level && !flags.iter().any(|f| is_debug_flag(f)) {
        flags.push("debug".to_owned());
    }
    for flag in &flags {
        runtime = runtime.runtime_flag(flag);
    }
    if flags.iter().any(|f| is_debug_flag(f)) {
        runtime = runtime.show_log(|line| eprintln!("{line}"));
    }
    Ok(runtime)
}

/// Refuses a tmpfs that is to copy what the rootfs holds at its destination (`tmpcopyup`,
/// podman's default, left where there is something to copy) when the runtime cannot (youki
/// 0.7), naming the destination; asks the runtime only when such a tmpfs is in the spec.
///
/// # Errors
/// When the runtime lacks the option, or cannot say.
pub(crate) fn check_copy_ups(runtime: &Runtime, spec: &Spec) -> Result<()> {
    let first = spec.mounts().iter().flatten().find(|m| {
        m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "tmpcopyup"))
    });
    let Some(first) = first else {
        return Ok(());
    };
    if !runtime.supports_mount_option("tmpcopyup")? {
        let name = runtime
            .program()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let destination = first.destination();
        bail!(
            "the tmpfs on {destination:?} is to hold a copy of what the rootfs has there \
             (tmpcopyup), which the runtime {name} cannot make: add the option notmpcopyup \
             (--tmpfs {}:notmpcopyup) or use another runtime",
            destination.display()
        );
    }
    Ok(())
}

/// The signal policy of `--sig-proxy`, `--stop-timeout` and `--timeout` (which sends
/// `timeout_signal` first).
pub(crate) fn signal_policy(args: &LifecycleArgs, timeout_signal: i32) -> SignalPolicy {
    SignalPolicy {
        proxy: args.sig_proxy,
        stop_timeout: Duration::from_secs(args.stop_timeout),
        timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
        timeout_signal,
    }
}

/// Checks `--pidfile` and `--cidfile` before anything is created: the pidfile's directory
/// exists, the cidfile does not (podman up to 4.3 and Docker refuse an existing one).
pub(crate) fn check_id_files(args: &LifecycleArgs) -> Result<()> {
    if let Some(path) = &args.pidfile {
        let abs = std::path::absolute(path).with_context(|| format!("--pidfile {path:?}"))?;
        let dir = abs.parent().unwrap_or(Path::new("/"));
        if abs.is_dir() {
            bail!("--pidfile {path:?}: is a directory");
        }
        if !dir.is_dir() {
            bail!("--pidfile {path:?}: {dir:?} is not a directory");
        }
    }
    if let Some(path) = &args.cidfile {
        if std::fs::symlink_metadata(path).is_ok() {
            bail!(
                "--cidfile {path:?}: the file exists; make sure no other container uses it, or \
                 remove it"
            );
        }
        let abs = std::path::absolute(path).with_context(|| format!("--cidfile {path:?}"))?;
        let dir = abs.parent().unwrap_or(Path::new("/"));
        if !dir.is_dir() {
            bail!("--cidfile {path:?}: {dir:?} is not a directory");
        }
    }
    Ok(())
}

/// The `--pidfile`, made absolute (the runtime's working directory is the bundle).
pub(crate) fn pidfile(args: &LifecycleArgs) -> Result<Option<PathBuf>> {
    args.pidfile
        .as_ref()
        .map(|p| std::path::absolute(p).with_context(|| format!("--pidfile {p:?}")))
        .transpose()
}

/// The `--cidfile` that a run wrote; dropping it removes the file (podman removes it with the
/// container).
#[derive(Debug)]
pub(crate) struct CidFile(PathBuf);

impl Drop for CidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %e, "cannot remove the cidfile");
        }
    }
}

/// Writes the container id to `--cidfile`, which must not exist.
pub(crate) fn write_cidfile(args: &LifecycleArgs, id: &ContainerId) -> Result<Option<CidFile>> {
    let Some(path) = &args.cidfile else {
        return Ok(None);
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("--cidfile {path:?}"))?;
    let written = CidFile(path.clone());
    std::io::Write::write_all(&mut file, id.as_str().as_bytes())
        .with_context(|| format!("--cidfile {path:?}"))?;
    Ok(Some(written))
}

/// The `--name` of a run, validated (podman's rule; see [`ContainerName`]).
pub(crate) fn container_name(args: &LifecycleArgs) -> Result<Option<ContainerName>> {
    Ok(args.name.as_deref().map(str::parse).transpose()?)
}

/// Claims the run's name, if it has one: a second run with the name fails while this one runs.
pub(crate) fn claim_name(
    name: Option<&ContainerName>,
    state: &StateLayout,
) -> Result<Option<NameLock>> {
    Ok(name.map(|n| state.names().claim(n)).transpose()?)
}

/// The init binary for `--init`, if given: `--init-path`, else the first known one on the
/// host.
pub(crate) fn init_binary(args: &LifecycleArgs) -> Result<Option<PathBuf>> {
    if !args.init {
        return Ok(None);
    }
    let path = match &args.init_path {
        Some(path) if path.is_file() => path.clone(),
        Some(path) => bail!("--init-path {path:?}: no such file"),
        None => find_init().map(Path::to_path_buf).context(
            "--init: no init binary found (install tini or catatonit, or give --init-path)",
        )?,
    };
    // The spec's bind mount needs an absolute source (relative ones are the bundle's).
    Ok(Some(
        std::path::absolute(&path).with_context(|| format!("--init-path {path:?}"))?,
    ))
}
