//! `cargo xtask`: the ocirun project's development tasks, one binary with one subcommand per task.
//!
//! Run through the `.cargo/config.toml` alias (`cargo xtask <task>`), from anywhere inside the
//! workspace. Tasks:
//!
//! - `rootfs busybox|debian [DIR]`: build a test root filesystem, cached by a marker file
//!   ([`rootfs`]);
//! - `e2e [-- ARGS...]`: the end-to-end suite against real runc, as root ([`e2e`]);
//! - `vm [OPTIONS] [-- ARGS...]`: the end-to-end suite inside a QEMU guest, on cgroup v1
//!   and v2 ([`vm`]);
//! - `ci`: formatting, clippy, unit and doc tests, then `e2e` and `vm` ([`ci`]);
//! - `demo`: install what is missing, build ocirun and run a command in a Debian rootfs
//!   ([`demo`]);
//! - `help`: the usage text.
//!
//! Before `demo`, `e2e`, `vm`, `ci` and `bench` build anything, the Debian packages that the
//! build and the tests need are installed when missing ([`packages`]; as root, else the task
//! fails with the `apt-get install` line to run).
//!
//! Every command the tasks run is echoed on stderr before it runs; so is every step that changes
//! the filesystem. Cargo commands run in the workspace root.

mod bench;
mod ci;
mod demo;
mod e2e;
mod host;
mod packages;
mod rootfs;
mod tally;
mod vm;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::rootfs::Fixture;

/// The usage text printed by `cargo xtask help` and after an unknown task.
const USAGE: &str = "\
Usage: cargo xtask <TASK> [ARGS...]

Tasks:
  rootfs busybox [DIR]  build the static-busybox test rootfs in DIR
                        (default: target/fixtures/busybox); cached by DIR/.ocirun-fixture
  rootfs debian [DIR]   build a Debian bookworm minbase rootfs in DIR with debootstrap
                        (default: target/fixtures/debian); cached the same way
  e2e [-- ARGS...]      as root: build both fixtures and ocirun, then run the end-to-end tests
                        against real runc; ARGS go to the test harness (filters, --nocapture,
                        --test-threads=N)
  vm [--cgroup v1|v2|both] [--accel tcg|kvm] [--timeout SECS] [--fault hang|panic|lockup]
     [-- ARGS...]       as root: the e2e suite inside a throwaway QEMU guest that sees the
                        host's / read-only, once per cgroup version (default both), with
                        ocirun's release build. Installs QEMU (Debian's qemu-system-x86) if
                        missing; fetches Debian's kernel into target/vm/. --accel: tcg
                        (default) or kvm where KVM works; --timeout: per guest, default 900,
                        then the guest is killed and retried once, as is one whose kernel
                        reports a CPU stuck for 20 s; --fault: a guest that hangs, panics or
                        reports such a lockup, to check that; ARGS go to every test binary
                        (filters, --exact). OCIRUN_E2E_FLIP=1 (for vm and e2e) makes
                        cgroup::cgroup_version_is_the_expected_one fail on purpose, to check
                        how a failure is reported
  ci                    cargo fmt --check, clippy -D warnings, unit and doc tests, e2e, then
                        vm --cgroup both
  demo                  build ocirun --release and run a command in the Debian rootfs
  bench [--quick] [--with-buildah] [--with-podman]
                        as root: ocirun --release measured side by side with runc run alone
                        (latency, throughput, peak memory, scale); table on stdout, raw
                        figures in target/bench/results.json
  help                  print this text

demo, e2e, vm, ci and bench first install the Debian packages that the build and the tests
need when any is missing (libseccomp-dev pkg-config libselinux1-dev libclang-dev runc
busybox-static debootstrap catatonit uidmap): as root with apt-get; as another user they stop
and print the apt-get command to run as root.
";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    /// `rootfs KIND [DIR]`; `None` means the default fixture directory.
    Rootfs(Fixture, Option<PathBuf>),
    /// `e2e [-- ARGS...]`, with the arguments for the test harness.
    E2e(Vec<OsString>),
    /// `vm [OPTIONS] [-- ARGS...]`.
    Vm(vm::Options),
    /// `ci`.
    Ci,
    /// `demo`.
    Demo,
    /// `bench [--quick] [--with-buildah] [--with-podman]`.
    Bench(bench::BenchOptions),
    /// `help`, `-h`, `--help`.
    Help,
}

impl Task {
    /// The task's name when it builds ocirun or runs it, and so needs the packages of
    /// [`packages::PACKAGES`].
    fn needs_packages(&self) -> Option<&'static str> {
        match self {
            Task::E2e(_) => Some("e2e"),
            Task::Vm(_) => Some("vm"),
            Task::Ci => Some("ci"),
            Task::Demo => Some("demo"),
            Task::Bench(_) => Some("bench"),
            Task::Rootfs(..) | Task::Help => None,
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let task = match parse_args(&args) {
        Ok(task) => task,
        Err(err) => {
            eprintln!("error: {err:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(task) {
        Ok(code) => code,
        Err(err) => {
            // The cause chain, without anyhow's backtrace (RUST_BACKTRACE is often set for the
            // tests that the tasks run).
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Parses the arguments that follow `cargo xtask`.
fn parse_args(args: &[OsString]) -> Result<Task> {
    let Some((task, rest)) = args.split_first() else {
        bail!("no task given");
    };
    let task = task.to_str().unwrap_or("");
    match task {
        "rootfs" => {
            let (kind, dir) = match rest {
                [kind] => (kind, None),
                [kind, dir] => (kind, Some(PathBuf::from(dir))),
                [] => bail!("`rootfs` needs a kind: busybox or debian"),
                _ => bail!("`rootfs` takes a kind and at most one directory"),
            };
            let fixture = match kind.to_str() {
                Some("busybox") => Fixture::Busybox,
                Some("debian") => Fixture::Debian,
                _ => bail!(
                    "unknown rootfs kind `{}`: expected busybox or debian",
                    kind.to_string_lossy()
                ),
            };
            Ok(Task::Rootfs(fixture, dir))
        }
        "e2e" => {
            // Everything after `--` goes to the test harness; without `--`, only test filters
            // may follow, so that a mistyped xtask option is not silently handed on.
            let rest = match rest.split_first() {
                Some((first, after)) if first == "--" => after,
                _ => {
                    if let Some(flag) = rest
                        .iter()
                        .find(|arg| arg.to_string_lossy().starts_with('-'))
                    {
                        bail!(
                            "unknown e2e option `{}`: put options for the test harness after `--`",
                            flag.to_string_lossy()
                        );
                    }
                    rest
                }
            };
            Ok(Task::E2e(rest.to_vec()))
        }
        "vm" => Ok(Task::Vm(vm::parse_options(rest)?)),
        "ci" | "demo" | "help" | "-h" | "--help" if !rest.is_empty() => {
            bail!("`{task}` takes no arguments")
        }
        "ci" => Ok(Task::Ci),
        "demo" => Ok(Task::Demo),
        "bench" => {
            let mut options = bench::BenchOptions::default();
            for arg in rest {
                match arg.to_str() {
                    Some("--quick") => options.quick = true,
                    Some("--with-buildah") => options.with_buildah = true,
                    Some("--with-podman") => options.with_podman = true,
                    _ => bail!("unknown bench option `{}`", arg.to_string_lossy()),
                }
            }
            Ok(Task::Bench(options))
        }
        "help" | "-h" | "--help" => Ok(Task::Help),
        _ => bail!("unknown task `{}`", args[0].to_string_lossy()),
    }
}

/// Runs one task; the exit code is the task's (the demo's is ocirun's).
fn run(task: Task) -> Result<ExitCode> {
    if task == Task::Help {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    // Relative paths on the command line are relative to where the user ran `cargo xtask`, which
    // `cargo run` keeps as the current directory; commands below run in the workspace root.
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let sh = host::workspace_shell(&cwd)?;
    if let Some(name) = task.needs_packages() {
        packages::ensure(&sh, name, packages::PACKAGES)?;
    }
    match task {
        Task::Rootfs(fixture, dir) => {
            let dir = match dir {
                Some(dir) => cwd.join(dir),
                None => rootfs::default_dir(fixture),
            };
            rootfs::ensure(&sh, fixture, &dir)?;
        }
        Task::E2e(test_args) => {
            let mut tally = tally::Tally::default();
            let result = e2e::run(&sh, &test_args, &mut tally);
            println!("{}", tally.summary());
            result?;
        }
        Task::Vm(options) => {
            let mut tally = tally::Tally::default();
            let result = vm::run(&sh, &options, &mut tally);
            println!("{}", tally.summary());
            result?;
        }
        Task::Ci => ci::run(&sh)?,
        Task::Demo => return demo::run(&sh),
        Task::Bench(options) => bench::run(&sh, options)?,
        Task::Help => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Task> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse_args(&args)
    }

    #[test]
    fn parses_rootfs() {
        assert_eq!(
            parse(&["rootfs", "busybox"]).unwrap(),
            Task::Rootfs(Fixture::Busybox, None)
        );
        assert_eq!(
            parse(&["rootfs", "debian", "x/y"]).unwrap(),
            Task::Rootfs(Fixture::Debian, Some(PathBuf::from("x/y")))
        );
        assert!(parse(&["rootfs"]).is_err());
        assert!(parse(&["rootfs", "alpine"]).is_err());
        assert!(parse(&["rootfs", "busybox", "a", "b"]).is_err());
    }

    #[test]
    fn parses_e2e_pass_through() {
        assert_eq!(parse(&["e2e"]).unwrap(), Task::E2e(vec![]));
        assert_eq!(
            parse(&["e2e", "--", "--nocapture", "env"]).unwrap(),
            Task::E2e(vec!["--nocapture".into(), "env".into()])
        );
        assert_eq!(
            parse(&["e2e", "hostname"]).unwrap(),
            Task::E2e(vec!["hostname".into()])
        );
        assert!(parse(&["e2e", "--nocapture"]).is_err());
        assert!(parse(&["e2e", "env", "--exact"]).is_err());
    }

    #[test]
    fn rejects_unknown_and_extra_arguments() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["bench", "--fast"]).is_err());
        assert_eq!(
            parse(&["bench", "--quick", "--with-podman"]).unwrap(),
            Task::Bench(bench::BenchOptions {
                quick: true,
                with_buildah: false,
                with_podman: true
            })
        );
        assert!(parse(&["ci", "x"]).is_err());
        assert!(parse(&["demo", "--", "x"]).is_err());
        assert_eq!(parse(&["help"]).unwrap(), Task::Help);
        assert_eq!(parse(&["--help"]).unwrap(), Task::Help);
        assert_eq!(parse(&["ci"]).unwrap(), Task::Ci);
        assert_eq!(parse(&["demo"]).unwrap(), Task::Demo);
        assert_eq!(parse(&["vm"]).unwrap(), Task::Vm(vm::Options::default()));
        assert!(parse(&["vm", "filter"]).is_err());
    }
}
