//! Composition of `ocirun run` and `ocirun spec` from the library crates, and the mapping of
//! their errors to exit codes.
//!
//! The data flow of `ocirun run`:
//! 1. read the flags and the image config, open the rootfs and read its user database;
//! 2. resolve the mounts (ocirun-mounts) and generate the spec from everything (ocirun-spec-gen,
//!    the spec's only writer); check that the command can be run;
//! 3. write the generated files into the bundle, create what must exist in the rootfs
//!    (ocirun-mounts), write `config.json`;
//! 4. run (or create and start), wait for and delete the container (ocirun-runtime-driver)
//!    while the stdio is relayed (ocirun-stdio-relay); undo step 3.
//!
//! `ocirun spec` is steps 1 and 2: what it prints is what `run` hands the runtime.

use anyhow::{bail, Context, Result};
use ocirun_mounts::{
    prepare_interruptible, read_input_file, CacheHold, CommandError, HostNetworkFiles, MountsError,
    ResolvedMounts, Rootfs, Unreadable, UserFiles,
};
use ocirun_runtime_driver::{
    hide_cgroup_v1, id_map_helpers, kill_strays, parse_signal, set_child_subreaper, Bundle,
    ContainerId, ContainerName, DriverError, ExitStatus, RunRecord, RuntimeKind, SignalForwarder,
    Supervisor, CLEANUP_TIMEOUT,
};
use ocirun_spec_gen::oci_spec::runtime::Spec;
use ocirun_spec_gen::{
    to_json, HostFacts, ImageConfig, RunOptions, SpecGenerator, UserDb, UserNsMode,
};

use crate::flags::{RunArgs, UnshareArgs};
use crate::lifecycle;
use crate::rootless::Invocation;
use crate::stdio::{self, Stdio};
use crate::EXIT_OCIRUN_FAILED;

/// A spec ready to run, with what it was made from.
struct Planned {
    rootfs: Rootfs,
    container_id: ContainerId,
    name: Option<ContainerName>,
    spec: Spec,
    /// Whether the spec names a cgroup for the run itself (`--cgroup-parent`, or without root a
    /// delegated cgroup), not only a [`SpecGenerator::fallback_cgroups_path`].
    own_cgroup: bool,
    /// What the runtime is, where that was asked (else [`RuntimeKind::Other`]).
    kind: RuntimeKind,
    mounts: ResolvedMounts,
    /// The locks of the cache mounts, held until the run ends.
    caches: Vec<CacheHold>,
    /// The signal `--timeout` sends first: the image's `StopSignal`, else SIGTERM.
    timeout_signal: i32,
}

/// Steps 1 and 2 of the data flow, shared by `run` and `spec`: read the inputs, resolve the
/// mounts, generate the spec, and check that the command can be run. With `claim` (`run`),
/// the cache mounts' locks are taken, asking `claim` whether to give up while one waits.
fn plan(
    ctx: &Invocation,
    args: &RunArgs,
    claim: Option<&mut dyn FnMut() -> bool>,
) -> Result<Planned> {
    let command = drop_leading_separator(&args.command);
    let name = lifecycle::container_name(&args.lifecycle)?;
    lifecycle::check_id_files(&args.lifecycle)?;
    let rootfs = Rootfs::open(&args.rootfs)?;
    let image = match &args.config {
        Some(path) => {
            let bytes = read_input_file(path).with_context(|| format!("--config {path:?}"))?;
            ImageConfig::from_json(&bytes)
                .with_context(|| format!("image configuration {path:?}"))?
        }
        None => ImageConfig::default(),
    };
    let (mut files, cover) = user_files(&rootfs)?;
    let mut users = user_db(&files);
    let mut host = HostFacts::gather();
    if let Some(own) = ctx.own_namespace() {
        host.user_namespace = Some(own);
        // Root of the user namespace, but a hard rlimit can only be raised with
        // CAP_SYS_RESOURCE of the host's.
        host.cap_sys_resource = false;
    }
    let container_id = ContainerId::random()?;

    let timeout_signal = match &image.stop_signal {
        Some(name) => parse_signal(name)
            .with_context(|| format!("image configuration: StopSignal {name:?}"))?,
        None => libc_sigterm(),
    };
    let mut options = RunOptions::new(command);
    options.env.clone_from(&args.env);
    options.env_host = args.env_host;
    options.unset_env.clone_from(&args.unsetenv);
    options.unset_env_all = args.unsetenv_all;
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
    // `tmpcopyup` only where there is something to copy: not every runtime has it.
    if options.read_only && options.read_only_tmpfs {
        options.nothing_to_copy_up = ocirun_spec_gen::READ_ONLY_TMPFS
            .iter()
            .map(std::path::PathBuf::from)
            .filter(|dst| !rootfs.holds_something_at(dst))
            .collect();
    }
    // `--userns keep-id`: the user's entries, when the rootfs has none (podman's), in an
    // /etc/passwd and /etc/group of the run's own.
    let mut keep_id_files = None;
    if let (UserNsMode::KeepId { uid, gid }, Some(own)) = (options.userns, &host.user_namespace) {
        let (uid, gid) = (uid.unwrap_or(own.host_uid), gid.unwrap_or(own.host_gid));
        let name = &own.user_name;
        if !users.has_uid(uid) || !users.has_gid(gid) {
            if !users.has_uid(uid) {
                files.passwd = format!(
                    "{}{}{name}:*:{uid}:{gid}::/:/bin/sh\n",
                    files.passwd,
                    if files.passwd.is_empty() || files.passwd.ends_with('\n') {
                        ""
                    } else {
                        "\n"
                    }
                );
            }
            if !users.has_gid(gid) {
                files.group = format!(
                    "{}{}{name}:x:{gid}:{name}\n",
                    files.group,
                    if files.group.is_empty() || files.group.ends_with('\n') {
                        ""
                    } else {
                        "\n"
                    }
                );
            }
            users = user_db(&files);
            keep_id_files = Some((files.passwd.clone(), files.group.clone()));
        }
    }

    let generator = SpecGenerator::new(rootfs.path(), container_id.as_str(), &options)
        .image(&image)
        .users(&users)
        .host(&host)
        .syscall_checker(crate::warm::known_syscalls());
    let user = generator.user()?;
    let mut mount_plan = crate::mount_flags::plan(
        &ctx.state,
        &args.mount_flags,
        &image,
        name.as_ref(),
        &container_id,
        ctx.is_rootless(),
        &options,
    )?;
    // An empty file over one the runtime cannot read; `--userns keep-id`'s own files.
    if cover.0 {
        mount_plan.generated.passwd = Some(String::new());
    }
    if cover.1 {
        mount_plan.generated.group = Some(String::new());
    }
    if let Some((passwd, group)) = keep_id_files {
        mount_plan.generated.passwd = Some(passwd);
        mount_plan.generated.group = Some(group);
    }
    let caches = match claim {
        Some(cancelled) => mount_plan.claim_caches(cancelled)?,
        None => Vec::new(),
    };
    let mut mounts = mount_plan.resolve_in(&rootfs, (user.uid, user.gid))?;
    // `tmpcopyup` only where there is something to copy: not every runtime has it.
    mounts.drop_empty_copy_ups(&rootfs);
    let mut generator = generator.clone().mounts(&mounts.mounts);
    // Where runtimes take different specs, the runtime is asked what it is (`--version`); a
    // runtime that is not there gets runc's.
    let own_userns_without_root = ctx.is_rootless()
        && (options.userns != UserNsMode::Default || !options.uid_maps.is_empty());
    let kind = (mounts
        .rootfs_propagation
        .is_some_and(|p| p.starts_with('r'))
        || own_userns_without_root)
        .then(|| lifecycle::discover_runtime(args, &ctx.state).ok())
        .flatten()
        .map_or(RuntimeKind::Other, |runtime| runtime.kind());
    if let Some(propagation) = mounts.rootfs_propagation {
        generator = generator.rootfs_propagation(kind.rootfs_propagation(propagation));
    }
    if own_userns_without_root && !kind.takes_additional_gids_without_root() {
        generator = generator.additional_gids(false);
    }
    let mut spec = generator.generate()?;
    let own_cgroup = cgroups_path(&spec).is_some();
    let fallback = format!("/ocirun/{container_id}");
    if own_userns_without_root && !own_cgroup && kind.wants_absolute_cgroups_path_with_own_userns()
    {
        generator = generator.fallback_cgroups_path(&fallback);
        spec = generator.generate()?;
    }

    // The command itself, not the init that runs it (a bind mount, not in the rootfs).
    let command = generator.command()?;
    let process = spec
        .process()
        .as_ref()
        .context("generated spec has no process")?;
    let cwd = process.cwd().to_string_lossy();
    let found = rootfs.find_command(
        &command[0],
        process.env().as_deref().unwrap_or_default(),
        &cwd,
    )?;
    let mounted: Vec<&std::path::Path> = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().as_path())
        .collect();
    rootfs.check_executable(&found, &command[0], &cwd, &mounted)?;
    Ok(Planned {
        rootfs,
        container_id,
        name,
        spec,
        own_cgroup,
        kind,
        mounts,
        caches,
        timeout_signal,
    })
}

/// SIGTERM's number.
fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}

/// The rootfs's user database files. A file that exists but cannot be read is warned about
/// and left out: a numeric `--user` (root by default) still runs, a name in that file fails
/// ([`user_db`]). The runtime reads the files too: one it would hang on or read without end is
/// to be covered with an empty file (the flags returned: passwd, group); a directory, which it
/// cannot read, is refused.
fn user_files(rootfs: &Rootfs) -> Result<(UserFiles, (bool, bool))> {
    let files = rootfs.user_files();
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
            "cannot read {file} of rootfs {:?}: {}: {effect}{hidden}",
            rootfs.path(),
            unreadable.reason()
        );
    }
    Ok((files, cover))
}

/// The user database of `files`, in which the names of a file that could not be read fail
/// naming it.
fn user_db(files: &UserFiles) -> UserDb {
    let mut users = UserDb::parse(&files.passwd, &files.group);
    if let Some(unreadable) = &files.passwd_unreadable {
        users = users.passwd_unreadable(unreadable.reason());
    }
    if let Some(unreadable) = &files.group_unreadable {
        users = users.group_unreadable(unreadable.reason());
    }
    users
}

/// `ocirun spec`: prints the config.json that `run` would use. Reads the rootfs, writes
/// nothing.
pub(crate) fn spec(mut ctx: Invocation, args: &RunArgs) -> Result<()> {
    // Without root the rootfs is read as `run` reads it: from the user namespace.
    ctx.enter_user_namespace()?;
    crate::warm::start();
    let planned = plan(&ctx, args, None)?;
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
pub(crate) fn run(mut ctx: Invocation, args: &RunArgs) -> Result<i32> {
    // Process-wide settings first, before any thread exists: the container's init is
    // reparented to us, and forwarded signals reach the signalfd.
    set_child_subreaper()?;
    let mut signals = SignalForwarder::install()?;
    // SIGWINCH for the terminal relay: blocked while this is the only thread (`-t` only).
    let resize = stdio::block_resize_signal(args)?;
    // Runs whose ocirun died: their containers are deleted from outside the user namespace
    // (the user owns the namespaces they run in), their files from inside.
    lifecycle::sweep_records(&ctx.state);
    ctx.enter_user_namespace()?;
    crate::warm::start();
    lifecycle::sweep_files(&ctx.state);
    let state = ctx.state.clone();
    let stopped = |signals: &mut SignalForwarder| -> Result<Option<i32>> {
        Ok(signals.take_stop()?.map(|signal| {
            tracing::debug!(?signal, "stop signal before the container was created");
            128 + signal as i32
        }))
    };
    if let Some(code) = stopped(&mut signals)? {
        return Ok(code);
    }

    // A stop signal while a cache lock is waited for ends the run.
    let mut stop_while_waiting = None;
    let planned = {
        let mut cancelled = || match signals.take_stop() {
            Ok(Some(signal)) => {
                stop_while_waiting = Some(signal);
                true
            }
            Ok(None) => false,
            Err(_) => true,
        };
        plan(&ctx, args, Some(&mut cancelled))
    };
    let Planned {
        rootfs,
        container_id,
        name,
        spec,
        own_cgroup,
        kind,
        mounts,
        caches: _caches,
        timeout_signal,
    } = match planned {
        Ok(planned) => planned,
        Err(e) => {
            let waited = e
                .chain()
                .any(|c| matches!(c.downcast_ref(), Some(MountsError::Cancelled(_))));
            return match (waited, stop_while_waiting) {
                (true, Some(signal)) => {
                    tracing::debug!(?signal, "stop signal while waiting for a cache");
                    Ok(128 + signal as i32)
                }
                _ => Err(e),
            };
        }
    };
    if ctx.is_rootless() && !own_cgroup {
        // No cgroup of the user's: the runtime is shown none of cgroup v1 (youki 0.7 would
        // fail to make one), the container still sees the host's.
        if hide_cgroup_v1()? {
            tracing::debug!("cgroup v1 hidden from the runtime: the container gets no cgroup");
        }
    }
    let _name = lifecycle::claim_name(name.as_ref(), &state)?;
    let mut runtime = lifecycle::discover_runtime(args, &state)?;
    if ctx.is_rootless() && kind.writes_multi_range_maps_with_helpers() && multi_range_maps(&spec) {
        // youki's newuidmap and newgidmap: the setuid ones cannot work in ocirun's namespace.
        let exe = std::env::current_exe().context("cannot find the ocirun binary")?;
        runtime = runtime.path_prefix(id_map_helpers(&state.runroot().join("bin"), &exe)?);
    }
    lifecycle::check_copy_ups(&runtime, &spec)?;
    let _cidfile = lifecycle::write_cidfile(&args.lifecycle, &container_id)?;
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
    if let Some((uid, gid)) = user_namespace_root(&spec) {
        bundle.give_to(uid, gid)?;
    }
    let ledger = ocirun_mounts::TargetLedger::new(state.targets());
    // A stop signal during a long copy (image or named volumes) ends the run.
    let mut stop_while_preparing = None;
    let prepared = prepare_interruptible(
        &rootfs,
        bundle.path(),
        &spec,
        &mounts,
        &HostNetworkFiles::read()?,
        Some(&ledger),
        &mut || match signals.take_stop() {
            Ok(Some(signal)) => {
                stop_while_preparing = Some(signal);
                true
            }
            Ok(None) => false,
            Err(_) => true,
        },
    );
    let prepared = match (prepared, stop_while_preparing) {
        (Err(MountsError::Cancelled(what)), Some(signal)) => {
            tracing::debug!(?signal, "stop signal while {what}");
            return Ok(128 + signal as i32);
        }
        (prepared, _) => prepared?,
    };
    bundle.write_config(to_json(&spec)?.as_bytes())?;
    if let Some(code) = stopped(&mut signals)? {
        return Ok(code);
    }

    let (io, stdio) = stdio::setup(args, &bundle, state.bundle_links(), resize)?;
    let mut supervisor = Supervisor::new(&runtime)
        .policy(lifecycle::signal_policy(&args.lifecycle, timeout_signal))
        .clear_bundle(true);
    if let Some(path) = lifecycle::pidfile(&args.lifecycle)? {
        supervisor = supervisor.pid_file(path);
    }
    // One runtime process (`run --detach`) unless something must happen between `create` and
    // `start`: a terminal's size is set then.
    let finished = match stdio {
        Stdio::Streams(streams) => {
            supervisor.run(&container_id, &bundle, io, Some(&mut signals), |started| {
                streams.relay(started)
            })
        }
        Stdio::Terminal(terminal) => supervisor.run_in_steps(
            &container_id,
            &bundle,
            io,
            Some(&mut signals),
            || terminal.receive(),
            |(master, relay), started| relay.relay(master, started),
        ),
    };
    let strays = kill_strays();
    if strays > 0 {
        tracing::debug!(strays, "killed processes left as ocirun's children");
    }
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
    if let Some(reason) = &finished.exec_error {
        eprintln!("ocirun: {reason}");
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

/// Whether the spec gives the container a user namespace of its own whose uid or gid map has
/// more than one range.
fn multi_range_maps(spec: &Spec) -> bool {
    spec.linux().as_ref().is_some_and(|linux| {
        [linux.uid_mappings(), linux.gid_mappings()]
            .iter()
            .any(|maps| maps.as_ref().is_some_and(|m| m.len() > 1))
    })
}

/// The spec's `linux.cgroupsPath`: without root, set only when the container gets a cgroup of
/// the user's (`--cgroup-parent`, or a delegated cgroup v2 subtree).
fn cgroups_path(spec: &Spec) -> Option<&std::path::Path> {
    spec.linux().as_ref()?.cgroups_path().as_deref()
}

/// The host uid and gid of root in the container's own user namespace, when the spec maps one
/// (`linux.uidMappings` and `linux.gidMappings` with an entry for id 0).
fn user_namespace_root(spec: &Spec) -> Option<(u32, u32)> {
    let linux = spec.linux().as_ref()?;
    let host_of = |maps: &Option<Vec<ocirun_spec_gen::oci_spec::runtime::LinuxIdMapping>>| {
        maps.as_ref()?
            .iter()
            .find(|m| m.container_id() == 0 && m.size() > 0)
            .map(|m| m.host_id())
    };
    Some((
        host_of(linux.uid_mappings())?,
        host_of(linux.gid_mappings())?,
    ))
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
pub(crate) fn gc(mut ctx: Invocation) -> Result<i32> {
    let mut done = lifecycle::collect_records(&ctx.state, CLEANUP_TIMEOUT, false)?;
    ctx.enter_user_namespace()?;
    lifecycle::collect_files(&ctx.state, &mut done)?;
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

/// `ocirun unshare`: runs `args.command` (default `$SHELL`, else `/bin/sh`) in the user
/// namespace ocirun runs containers in without root, in place of this process (its exit code
/// is the command's; 127 when it cannot be found, 126 when it cannot be run).
///
/// # Errors
/// As root (there is no user namespace to join: podman refuses the same), or when the
/// namespace cannot be joined.
pub(crate) fn unshare(mut ctx: Invocation, args: &UnshareArgs) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    if !ctx.is_rootless() {
        anyhow::bail!(
            "ocirun unshare runs a command in the user namespace of a user other than root; \
             as root there is none to join"
        );
    }
    ctx.enter_user_namespace()?;
    let mut command = drop_leading_separator(&args.command);
    if command.is_empty() {
        command.push(std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_owned()));
    }
    let err = std::process::Command::new(&command[0])
        .args(&command[1..])
        .exec();
    eprintln!("ocirun: cannot run {:?}: {err}", command[0]);
    Ok(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
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
    fn the_root_of_the_containers_user_namespace() {
        let spec = |maps: serde_json::Value| -> Spec {
            serde_json::from_value(serde_json::json!({
                "ociVersion": "1.0.2",
                "root": {"path": "/r"},
                "linux": maps,
            }))
            .unwrap()
        };
        let map =
            |c: u32, h: u32, n: u32| serde_json::json!({"containerID": c, "hostID": h, "size": n});
        assert_eq!(
            user_namespace_root(&spec(serde_json::json!({
                "uidMappings": [map(0, 100000, 65536)],
                "gidMappings": [map(1, 2000, 10), map(0, 100001, 1)],
            }))),
            Some((100000, 100001))
        );
        // keep-id: 0 is a subordinate id, the user's id maps to itself.
        assert_eq!(
            user_namespace_root(&spec(serde_json::json!({
                "uidMappings": [map(0, 1, 1000), map(1000, 0, 1)],
                "gidMappings": [map(0, 1, 1000), map(1000, 0, 1)],
            }))),
            Some((1, 1))
        );
        assert_eq!(user_namespace_root(&spec(serde_json::json!({}))), None);
        assert_eq!(
            user_namespace_root(&spec(serde_json::json!({
                "uidMappings": [map(1, 100000, 10)],
                "gidMappings": [map(0, 100000, 10)],
            }))),
            None
        );
    }

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
