//! Composition of `ocirun run` and `ocirun spec` from the library crates, and the mapping of
//! their errors to exit codes.
//!
//! The data flow of `ocirun run`:
//! 1. read the flags and the image config, open the rootfs and read its user database;
//! 2. resolve the mounts (ocirun-mounts) and generate the spec from everything (ocirun-spec-gen,
//!    the spec's only writer); check that the command can be run;
//! 3. write the generated files into the bundle, create what must exist in the rootfs
//!    (ocirun-mounts), write `config.json`;
//! 4. create, start, wait and delete the container (ocirun-runtime-driver) while the stdio is
//!    relayed (ocirun-stdio-relay); undo step 3.
//!
//! `ocirun spec` is steps 1 and 2: what it prints is what `run` hands the runtime.

use anyhow::{bail, Context, Result};
use ocirun_mounts::{
    prepare, read_input_file, CommandError, HostNetworkFiles, ResolvedMounts, Rootfs, Unreadable,
};
use ocirun_runtime_driver::{
    reap_strays, set_child_subreaper, Bundle, ContainerId, ContainerName, DriverError, ExitStatus,
    RunRecord, SignalForwarder, StateLayout, Supervisor, CLEANUP_TIMEOUT,
};
use ocirun_spec_gen::oci_spec::runtime::Spec;
use ocirun_spec_gen::{
    to_json, HostFacts, ImageConfig, LibSeccomp, RunOptions, SpecGenerator, UserDb,
};

use crate::flags::{Cli, RunArgs};
use crate::lifecycle;
use crate::stdio;
use crate::EXIT_OCIRUN_FAILED;

/// A spec ready to run, with what it was made from.
struct Planned {
    rootfs: Rootfs,
    container_id: ContainerId,
    name: Option<ContainerName>,
    spec: Spec,
    mounts: ResolvedMounts,
}

/// The state directories of `--runroot` and `--root`.
fn state_layout(cli: &Cli) -> StateLayout {
    StateLayout::new(&cli.runroot, &cli.storage.root)
}

/// Steps 1 and 2 of the data flow, shared by `run` and `spec`: read the inputs, resolve the
/// mounts, generate the spec, and check that the command can be run.
fn plan(cli: &Cli, args: &RunArgs) -> Result<Planned> {
    let command = drop_leading_separator(&args.command);
    let name = lifecycle::container_name(&args.lifecycle)?;
    let rootfs = Rootfs::open(&args.rootfs)?;
    let image = match &args.config {
        Some(path) => {
            let bytes = read_input_file(path).with_context(|| format!("--config {path:?}"))?;
            ImageConfig::from_json(&bytes)
                .with_context(|| format!("image configuration {path:?}"))?
        }
        None => ImageConfig::default(),
    };
    let (users, cover) = user_db(&rootfs)?;
    let host = HostFacts::gather();
    let container_id = ContainerId::random()?;

    let mut options = RunOptions::new(command);
    options.env.clone_from(&args.env);
    options.working_dir.clone_from(&args.workingdir);
    options.user.clone_from(&args.user);
    options.hostname.clone_from(&args.hostname);
    options.http_proxy = args.http_proxy;
    options.terminal = stdio::terminal_requested(args)?;
    if options.terminal {
        options.console_size = stdio::console_size();
    }
    options.init = lifecycle::init_binary(&args.lifecycle)?;
    args.spec_flags.apply(&mut options)?;

    let generator = SpecGenerator::new(rootfs.path(), container_id.as_str(), &options)
        .image(&image)
        .users(&users)
        .host(&host)
        .syscall_checker(&LibSeccomp);
    let user = generator.user()?;
    let mut mount_plan = crate::mount_flags::plan(
        &state_layout(cli),
        &args.mount_flags,
        &image,
        name.as_ref(),
        &container_id,
    )?;
    (
        mount_plan.generated.cover_passwd,
        mount_plan.generated.cover_group,
    ) = cover;
    let mounts = mount_plan.resolve_in(&rootfs, (user.uid, user.gid))?;
    let mut generator = generator.clone().mounts(&mounts.mounts);
    if let Some(propagation) = mounts.rootfs_propagation {
        generator = generator.rootfs_propagation(propagation);
    }
    let spec = generator.generate()?;

    // The command itself, not the init that runs it (a bind mount, not in the rootfs).
    let command = generator.command()?;
    let process = spec
        .process()
        .as_ref()
        .context("generated spec has no process")?;
    let cwd = process.cwd().to_string_lossy();
    rootfs.find_command(
        &command[0],
        process.env().as_deref().unwrap_or_default(),
        &cwd,
    )?;
    Ok(Planned {
        rootfs,
        container_id,
        name,
        spec,
        mounts,
    })
}

/// The rootfs's user database. A file that exists but cannot be read is warned about and
/// left out: a numeric `--user` (root by default) still runs, a name in that file fails. The
/// runtime reads the files too: one it would hang on or read without end is covered with an
/// empty file (`cover`: passwd, group); a directory, which it cannot read, is refused.
fn user_db(rootfs: &Rootfs) -> Result<(UserDb, (bool, bool))> {
    let files = rootfs.user_files();
    let mut users = UserDb::parse(&files.passwd, &files.group);
    let mut cover = (false, false);
    for (file, unreadable, effect, covered) in [
        (
            "/etc/passwd",
            &files.passwd_unreadable,
            "a numeric user gets gid 0 (or the given gid), no other supplementary group and \
             HOME=/",
            &mut cover.0,
        ),
        (
            "/etc/group",
            &files.group_unreadable,
            "no supplementary group beyond the user's gid",
            &mut cover.1,
        ),
    ] {
        let Some(unreadable) = unreadable else {
            continue;
        };
        let reason = unreadable.reason();
        if *unreadable == Unreadable::Directory {
            bail!(
                "rootfs {:?}: {file} is a directory, which the runtime cannot read to set up \
                 the user",
                rootfs.path()
            );
        }
        *covered = matches!(unreadable, Unreadable::NeedsCover(_));
        let hidden = if *covered {
            "; the container sees it empty"
        } else {
            ""
        };
        tracing::warn!(
            "cannot read {file} of rootfs {:?}: {reason}: {effect}{hidden}",
            rootfs.path()
        );
        users = if file == "/etc/passwd" {
            users.passwd_unreadable(reason)
        } else {
            users.group_unreadable(reason)
        };
    }
    Ok((users, cover))
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
/// the run record, the mount targets; the supervisor deletes the container on every path. A
/// stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) is looked for between the steps and ends the
/// run with 128 + the signal; while the runtime runs, the driver kills it at once. When the
/// container cannot be deleted, the record, the bundle and the mount targets are kept for
/// `ocirun gc`.
pub(crate) fn run(cli: &Cli, args: &RunArgs) -> Result<i32> {
    // Process-wide settings first, before any thread exists: the container's init is
    // reparented to us, and forwarded signals reach the signalfd.
    set_child_subreaper()?;
    let mut signals = SignalForwarder::install()?;
    // SIGWINCH for the terminal relay: blocked while this is the only thread (`-t` only).
    let resize = stdio::block_resize_signal(args)?;
    let state = state_layout(cli);
    lifecycle::sweep(&state);
    let stopped = |signals: &mut SignalForwarder| -> Result<Option<i32>> {
        Ok(signals.take_stop()?.map(|signal| {
            tracing::debug!(?signal, "stop signal before the container was created");
            128 + signal as i32
        }))
    };
    if let Some(code) = stopped(&mut signals)? {
        return Ok(code);
    }

    let Planned {
        rootfs,
        container_id,
        name,
        spec,
        mounts,
    } = plan(cli, args)?;
    let _name = lifecycle::claim_name(name.as_ref(), &state)?;
    let runtime = lifecycle::discover_runtime(args, &state)?;
    if let Some(code) = stopped(&mut signals)? {
        return Ok(code);
    }

    let _span = tracing::info_span!("container", id = %container_id).entered();
    // The record comes first: whatever this process is killed after, gc finds it.
    let bundle_dir = state.bundle(&container_id);
    let record = RunRecord::new(&container_id, &bundle_dir, &runtime, Some(rootfs.path()))?;
    let records = state.records();
    let record = records.write(&record)?;
    let bundle = Bundle::create(&state.bundles(), &container_id)?;
    let ledger = ocirun_mounts::TargetLedger::new(state.targets());
    let prepared = prepare(
        &rootfs,
        bundle.path(),
        &spec,
        &mounts,
        &HostNetworkFiles::read()?,
        Some(&ledger),
    )?;
    bundle.write_config(to_json(&spec)?.as_bytes())?;
    if let Some(code) = stopped(&mut signals)? {
        return Ok(code);
    }

    let (io, stdio) = stdio::setup(args, &bundle, resize)?;
    let supervisor = Supervisor::new(&runtime).policy(lifecycle::signal_policy(&args.lifecycle));
    let finished = supervisor.run(&container_id, &bundle, io, Some(&mut signals), |exit| {
        stdio.relay(exit)
    });
    reap_strays();
    let finished = match finished {
        Ok(finished) => finished,
        Err(e @ DriverError::Left { .. }) => {
            // The container is still in the runtime's state: what it uses stays for gc.
            keep_for_gc(prepared, bundle, record);
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    if let Err(e) = finished.alongside {
        tracing::error!(error = %format!("{e:#}"), "stdio relay failed");
    }
    if let ExitStatus::Signaled(signal) = finished.status {
        tracing::debug!("container exited on {}", signal_name(signal));
    }
    if let Some(left) = finished.left {
        eprintln!(
            "ocirun: container {container_id} could not be deleted ({}): `ocirun gc` removes it",
            describe(&left.into())
        );
        keep_for_gc(prepared, bundle, record);
        return Ok(finished.status.code());
    }
    drop(prepared);
    bundle.remove()?;
    drop(record);
    Ok(finished.status.code())
}

/// Leaves what a container that is still in the runtime's state uses (its mount targets and
/// container directory, its bundle, its run record) for `ocirun gc`, which deletes the
/// container first and then removes them.
fn keep_for_gc(
    prepared: ocirun_mounts::Prepared<'_>,
    bundle: Bundle,
    record: ocirun_runtime_driver::RecordGuard,
) {
    // The locks that the targets and an ephemeral container directory hold go with this
    // process: gc takes over once the record's container is deleted.
    std::mem::forget(prepared);
    bundle.keep();
    record.keep();
}

/// `ocirun gc`: removes what runs whose ocirun died left behind, saying what it removed on
/// stdout and what it could not remove on stderr; the exit code is 125 when something could
/// not be removed.
pub(crate) fn gc(cli: &Cli) -> Result<i32> {
    let done = lifecycle::collect_garbage(&state_layout(cli), CLEANUP_TIMEOUT, false)?;
    for line in &done.removed {
        println!("{line}");
    }
    for line in &done.failed {
        eprintln!("ocirun: gc: {line}");
    }
    Ok(if done.failed.is_empty() {
        0
    } else {
        i32::from(EXIT_OCIRUN_FAILED)
    })
}

/// One `--` right before the command is dropped; later ones belong to the command. clap already drops a `--` that ends the flags; this handles
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

/// The error and its causes on one line, joined by `: ` (each error's message says what went
/// wrong with its own value; its source says why).
pub(crate) fn describe(err: &anyhow::Error) -> String {
    err.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
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
    fn describe_joins_the_chain() {
        let inner = std::io::Error::other("disk on fire");
        let err = anyhow::Error::new(inner).context("write \"x\"");
        assert_eq!(describe(&err), "write \"x\": disk on fire");
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(describe(&err), "outer: inner");
    }
}
