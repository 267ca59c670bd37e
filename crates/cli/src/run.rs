//! Composition of `ocirun run` and `ocirun spec` from the library crates (DESIGN.md, "Data
//! flow"), and the mapping of their errors to exit codes.

use anyhow::{Context, Result};
use ocirun_mounts::{add_init, prepare, CommandError, HostNetworkFiles, MountPlan, Rootfs};
use ocirun_runtime_driver::{
    new_container_id, reap_strays, set_child_subreaper, Bundle, DriverError, ExitStatus, RunRecord,
    SignalForwarder, Supervisor,
};
use ocirun_spec_gen::oci_spec::runtime::Spec;
use ocirun_spec_gen::{to_json, ImageConfig, RunOptions, SpecGenerator};

use crate::flags::{Cli, RunArgs};
use crate::lifecycle::{self, StateDirs};
use crate::stdio;
use crate::EXIT_OCIRUN_FAILED;

/// A spec ready to run, with what it was made from.
struct Planned {
    rootfs: Rootfs,
    container_id: String,
    spec: Spec,
    mounts: MountPlan,
}

/// Steps 1-3 of the data flow, shared by `run` and `spec`: read the inputs, generate the
/// spec, add the generated files' mounts, and check that the command can be run.
fn plan(cli: &Cli, args: &RunArgs) -> Result<Planned> {
    let command = drop_leading_separator(&args.command);
    let rootfs = Rootfs::open(&args.rootfs)?;
    let image = match &args.config {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read image configuration {path:?}"))?;
            ImageConfig::from_json(&bytes)
                .with_context(|| format!("image configuration {path:?}"))?
        }
        None => ImageConfig::default(),
    };
    let users = rootfs.user_db()?;
    let host = crate::spec_flags::host_facts();
    let container_id = new_container_id()?;

    let mut options = RunOptions::new(command);
    options.env.clone_from(&args.env);
    options.working_dir.clone_from(&args.workingdir);
    options.user.clone_from(&args.user);
    options.hostname.clone_from(&args.hostname);
    options.http_proxy = args.http_proxy;
    options.terminal = stdio::terminal_requested(args)?;
    args.spec_flags.apply(&mut options)?;

    let mut spec = SpecGenerator::new(rootfs.path(), &container_id, &options)
        .image(&image)
        .users(&users)
        .host(&host)
        .syscall_checker(&crate::spec_flags::LibSeccomp)
        .generate()?;
    let mounts = crate::mount_flags::plan(
        &cli.storage,
        &args.mount_flags,
        &image,
        args.lifecycle.name.as_deref(),
        &container_id,
        &mut spec,
    )?;
    if options.terminal {
        stdio::set_console_size(&mut spec);
    }

    let process = spec
        .process()
        .as_ref()
        .context("generated spec has no process")?;
    let argv0 = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .context("generated spec has no command")?;
    let cwd = process.cwd().to_string_lossy();
    rootfs.find_command(argv0, process.env().as_deref().unwrap_or_default(), &cwd)?;
    Ok(Planned {
        rootfs,
        container_id,
        spec,
        mounts,
    })
}

/// `ocirun spec`: prints the config.json that `run` would use. Reads the rootfs, writes
/// nothing.
pub(crate) fn spec(cli: &Cli, args: &RunArgs) -> Result<()> {
    let planned = plan(cli, args)?;
    print!("{}", to_json(&planned.spec)?);
    Ok(())
}

/// `ocirun run`: runs the command and returns the exit code to leave with.
///
/// Every step registers its undo (guards dropped in reverse order): the name lock, the bundle,
/// the run record, the mount targets; the supervisor deletes the container on every path.
pub(crate) fn run(cli: &Cli, args: &RunArgs) -> Result<i32> {
    // Process-wide settings first, before any thread exists: the container's init is
    // reparented to us, and forwarded signals reach the signalfd.
    set_child_subreaper()?;
    let mut signals = SignalForwarder::install()?;
    // SIGWINCH for the terminal relay: blocked while this is the only thread (`-t` only).
    let resize = stdio::block_resize_signal(args)?;
    let state = StateDirs::new(&cli.runroot, &cli.storage.root);
    lifecycle::sweep(&state);

    let _name = lifecycle::claim_name(&args.lifecycle, &state)?;
    let Planned {
        rootfs,
        container_id,
        mut spec,
        mounts,
    } = plan(cli, args)?;
    if args.lifecycle.init {
        add_init(&mut spec, &lifecycle::init_binary(&args.lifecycle)?);
    }
    let runtime = lifecycle::discover_runtime(args, &state)?;

    let _span = tracing::info_span!("container", id = %container_id).entered();
    // The record comes first: whatever this process is killed after, gc finds it.
    let bundle_dir = state.bundles.join(&container_id);
    let record = RunRecord::new(&container_id, &bundle_dir, &runtime, Some(rootfs.path()))?;
    let record = state.records.write(&record)?;
    let bundle = Bundle::create(&state.bundles, &container_id)?;
    let prepared = prepare(
        &rootfs,
        bundle.path(),
        &spec,
        &mounts,
        &HostNetworkFiles::read()?,
        Some(&state.targets),
    )?;
    bundle.write_config(to_json(&spec)?.as_bytes())?;

    // A terminating signal that came before there is a container to pass it to ends the run.
    if let Some(signal) = signals.take_pending()? {
        if lifecycle::is_terminating(signal) {
            tracing::debug!(?signal, "signal before the container was created");
            return Ok(128 + signal as i32);
        }
    }

    let (io, stdio) = stdio::setup(args, &bundle, resize)?;
    let supervisor = Supervisor::new(&runtime).policy(lifecycle::signal_policy(&args.lifecycle));
    let (status, relayed) =
        supervisor.run(&container_id, &bundle, io, Some(&mut signals), |exit| {
            stdio.relay(exit)
        })?;
    if let Err(e) = relayed {
        tracing::error!(error = %format!("{e:#}"), "stdio relay failed");
    }
    reap_strays();
    if let ExitStatus::Signaled(signal) = status {
        tracing::debug!("container exited on {}", signal_name(signal));
    }
    drop(prepared);
    bundle.remove()?;
    drop(record);
    Ok(status.code())
}

/// `ocirun gc`: removes what runs whose ocirun died left behind, saying what it removed.
pub(crate) fn gc(cli: &Cli) -> Result<()> {
    for line in lifecycle::collect_garbage(&StateDirs::new(&cli.runroot, &cli.storage.root))? {
        println!("{line}");
    }
    Ok(())
}

/// One `--` right before the command is dropped; later ones belong to the command
/// (BEHAVIOR.md "Command line"). clap already drops a `--` that ends the flags; this handles
/// `-- --` and a `--` that clap passed through as the first word.
fn drop_leading_separator(command: &[String]) -> Vec<String> {
    match command.first().map(String::as_str) {
        Some("--") => command[1..].to_vec(),
        _ => command.to_vec(),
    }
}

fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// The exit code for an error: 126/127 for a command that cannot be run (found by the lookup
/// in the rootfs, or reported by the runtime), else 125.
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| {
            e.downcast_ref::<CommandError>()
                .map(CommandError::exit_code)
                .or_else(|| e.downcast_ref::<DriverError>().map(DriverError::exit_code))
        })
        .and_then(|code| u8::try_from(code).ok())
        .unwrap_or(EXIT_OCIRUN_FAILED)
}

/// The error and its causes on one line, each cause once (library errors already include
/// their source's text in their own message).
pub(crate) fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_leading_separator_is_dropped() {
        let v = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            drop_leading_separator(&v(&["--", "echo", "--"])),
            v(&["echo", "--"])
        );
        assert_eq!(
            drop_leading_separator(&v(&["echo", "--", "-n"])),
            v(&["echo", "--", "-n"])
        );
        assert!(drop_leading_separator(&[]).is_empty());
    }

    #[test]
    fn exit_codes_of_errors() {
        let not_found = anyhow::Error::new(CommandError::NotInPath("x".into()));
        assert_eq!(exit_code(&not_found), 127);
        let other = anyhow::anyhow!("boom");
        assert_eq!(exit_code(&other), 125);
    }

    #[test]
    fn describe_skips_repeated_causes() {
        let inner = std::io::Error::other("disk on fire");
        let err = anyhow::Error::new(inner).context("write \"x\": disk on fire");
        assert_eq!(describe(&err), "write \"x\": disk on fire");
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(describe(&err), "outer: inner");
    }
}
