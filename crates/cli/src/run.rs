//! Composition of `ocirun run` and `ocirun spec` from the library crates (DESIGN.md, "Data
//! flow"), and the mapping of their errors to exit codes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::sys::resource::{getrlimit, Resource};
use ocirun_mounts::{plan_mounts, prepare, CommandError, HostNetworkFiles, Rootfs};
use ocirun_runtime_driver::{
    new_container_id, reap_strays, set_child_subreaper, Bundle, ContainerProcess, Runtime,
    SignalForwarder,
};
use ocirun_spec_gen::oci_spec::runtime::Spec;
use ocirun_spec_gen::{to_json, HostFacts, ImageConfig, RunOptions, SpecGenerator};

use crate::flags::{Cli, RunArgs};
use crate::stdio;
use crate::EXIT_OCIRUN_FAILED;

/// Where runtimes are looked for besides `PATH`: runc lives in /usr/sbin on Debian, which a
/// non-login root shell's `PATH` may lack.
const RUNTIME_EXTRA_PATH: &str = "/usr/local/sbin:/usr/sbin:/sbin";

/// A spec ready to run, with what it was made from.
struct Planned {
    rootfs: Rootfs,
    container_id: String,
    spec: Spec,
}

/// Steps 1-3 of the data flow, shared by `run` and `spec`: read the inputs, generate the
/// spec, add the generated files' mounts, and check that the command can be run.
fn plan(args: &RunArgs) -> Result<Planned> {
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
    let host = host_facts();
    let container_id = new_container_id()?;

    let mut options = RunOptions::new(command);
    options.env.clone_from(&args.env);
    options.working_dir.clone_from(&args.workingdir);
    options.user.clone_from(&args.user);
    options.hostname.clone_from(&args.hostname);
    options.http_proxy = args.http_proxy;

    let mut spec = SpecGenerator::new(rootfs.path(), &container_id, &options)
        .image(&image)
        .users(&users)
        .host(&host)
        .generate()?;
    plan_mounts(&mut spec);

    let process = spec
        .process()
        .as_ref()
        .context("generated spec has no process")?;
    let argv0 = &options.args[0];
    let cwd = process.cwd().to_string_lossy();
    rootfs.find_command(argv0, process.env().as_deref().unwrap_or_default(), &cwd)?;
    Ok(Planned {
        rootfs,
        container_id,
        spec,
    })
}

/// `ocirun spec`: prints the config.json that `run` would use. Reads the rootfs, writes
/// nothing.
pub(crate) fn spec(_cli: &Cli, args: &RunArgs) -> Result<()> {
    let planned = plan(args)?;
    print!("{}", to_json(&planned.spec)?);
    Ok(())
}

/// `ocirun run`: runs the command and returns the exit code to leave with.
pub(crate) fn run(cli: &Cli, args: &RunArgs) -> Result<i32> {
    // Process-wide settings first, before any thread exists: the container's init is
    // reparented to us, and forwarded signals reach the signalfd.
    set_child_subreaper()?;
    let mut signals = SignalForwarder::install()?;

    let Planned {
        rootfs,
        container_id,
        spec,
    } = plan(args)?;
    let runtime = discover_runtime(args.runtime.as_deref(), &cli.runroot.join("runtime"))?;

    let _span = tracing::info_span!("container", id = %container_id).entered();
    let bundle = Bundle::create(&cli.runroot.join("bundles"), &container_id)?;
    let prepared = prepare(&rootfs, bundle.path(), &spec, &HostNetworkFiles::read()?)?;
    bundle.write_config(to_json(&spec)?.as_bytes())?;

    let (io, stdio) = stdio::setup(args, &bundle)?;
    let container = runtime.create(&container_id, &bundle, io)?;
    let process = ContainerProcess::open(container.pid())?;
    tracing::debug!(pid = process.pid(), "created");
    container.start()?;

    let (status, relayed) = std::thread::scope(|scope| {
        let relay = scope.spawn(|| stdio.relay(process.pidfd()));
        let status = process.wait(Some(&mut signals));
        if status.is_err() {
            // Whatever went wrong, the relay must see the container end to return.
            process.kill_now();
        }
        (status, relay.join())
    });
    let status = status?;
    match relayed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "stdio relay failed"),
        Err(_) => tracing::error!("stdio relay panicked"),
    }
    reap_strays();
    if let ocirun_runtime_driver::ExitStatus::Signaled(signal) = status {
        tracing::debug!("container exited on {}", signal_name(signal));
    }
    container.delete()?;
    drop(prepared);
    bundle.remove()?;
    Ok(status.code())
}

/// `--runtime`, else `$OCIRUN_RUNTIME`, else `runc`, found in `PATH` and the sbin directories.
fn discover_runtime(flag: Option<&str>, state_root: &Path) -> Result<Runtime> {
    let from_env = std::env::var("OCIRUN_RUNTIME")
        .ok()
        .filter(|v| !v.is_empty());
    let name = flag
        .map(str::to_owned)
        .or(from_env)
        .unwrap_or_else(|| "runc".to_owned());
    let path = std::env::var("PATH").unwrap_or_default();
    let search = format!("{path}:{RUNTIME_EXTRA_PATH}");
    Ok(Runtime::discover(
        &name,
        &search,
        PathBuf::from(state_root),
    )?)
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

fn host_facts() -> HostFacts {
    let mut facts = HostFacts::default();
    facts.env = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let hard = |r| getrlimit(r).map(|(_, hard)| hard).unwrap_or(u64::MAX);
    facts.nofile_hard = hard(Resource::RLIMIT_NOFILE);
    facts.nproc_hard = hard(Resource::RLIMIT_NPROC);
    facts
}

fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// The exit code for an error: 126/127 for a command that cannot be run, else 125.
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<CommandError>())
        .and_then(|e| u8::try_from(e.exit_code()).ok())
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
