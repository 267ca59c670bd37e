//! `cargo xtask`: the ocirun project's development tasks, one binary with one subcommand per task.
//!
//! Run through the `.cargo/config.toml` alias (`cargo xtask <task>`), from anywhere inside the
//! workspace. The command line is clap's ([`Cli`]); `cargo xtask help [TASK]` prints it. Tasks:
//!
//! - `rootfs busybox|debian [DIR]`: build a test root filesystem, cached by a marker file
//!   ([`rootfs`]);
//! - `e2e [--runtime NAME|PATH] [FILTER...] [-- ARGS...]`: the end-to-end suite against real
//!   runc, as root ([`e2e`]);
//! - `vm [OPTIONS] [-- ARGS...]`: the end-to-end suite inside a QEMU guest, on cgroup v1
//!   and v2 ([`vm`]);
//! - `ci`: formatting, clippy, unit and doc tests, then `e2e` and `vm` ([`ci`]);
//! - `demo`: build ocirun and run a command in a Debian rootfs ([`demo`]);
//! - `bench [--quick] [--with-buildah] [--with-podman] [--runtime NAME|PATH]`: ocirun measured
//!   against the runtime alone ([`mod@bench`]);
//! - `man DIR`: ocirun's man pages, generated from its clap definitions ([`man`]);
//! - `help [TASK]`: the usage text, of every task or of one.
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
mod man;
mod packages;
mod rootfs;
mod tally;
mod vm;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::rootfs::Fixture;

/// The ocirun project's development tasks.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true,
    subcommand_value_name = "TASK",
    subcommand_help_heading = "Tasks",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

/// What `cargo xtask help` prints after the tasks.
const AFTER_HELP: &str = "\
demo, e2e, vm, ci and bench first install the Debian packages that the build and the tests need
when any is missing (libseccomp-dev pkg-config libselinux1-dev libclang-dev runc busybox-static
debootstrap tini catatonit uidmap): as root with apt-get; as another user they stop and print the
apt-get command to run as root.

`cargo xtask help TASK` describes a task and its options; xtask/README.md has the details.";

/// A task and its options.
#[derive(Debug, PartialEq, Eq, Subcommand)]
enum Task {
    /// Build a test root filesystem in DIR, cached by DIR/.ocirun-fixture
    ///
    /// As root (to build; a cached one needs nothing). DIR defaults to
    /// target/fixtures/busybox or target/fixtures/debian.
    #[command(verbatim_doc_comment)]
    Rootfs {
        /// The kind of root filesystem.
        kind: Fixture,
        /// Where to build it (default: target/fixtures/KIND).
        dir: Option<PathBuf>,
    },
    /// The end-to-end tests against real runc
    ///
    /// As root: build both fixtures and ocirun, then run `cargo test -p ocirun-e2e` with one
    /// test thread per CPU. Test filters may follow; other harness options go after `--`.
    /// OCIRUN_E2E_FLIP=1 makes cgroup::cgroup_version_is_the_expected_one fail on purpose, to
    /// check how a failure is reported.
    #[command(verbatim_doc_comment)]
    E2e(e2e::Options),
    /// The end-to-end tests inside throwaway QEMU guests, on cgroup v1 and v2
    ///
    /// As root: the e2e suite inside a QEMU guest that sees the host's / read-only, once per
    /// cgroup version, against ocirun's release build. Installs QEMU (Debian's
    /// qemu-system-x86) if missing and fetches Debian's kernel into target/vm/. A guest that
    /// passes --timeout, stops without reporting, or whose kernel reports a CPU stuck for 20 s
    /// is killed and retried once. OCIRUN_E2E_* variables and RUST_BACKTRACE are passed on to
    /// the tests.
    #[command(verbatim_doc_comment)]
    Vm(vm::Options),
    /// What CI checks: fmt, clippy, unit and doc tests, e2e, then vm
    ///
    /// cargo fmt --check, clippy -D warnings, unit and doc tests, e2e, then vm --cgroup both,
    /// stopping at the first failure; ends with `N passed, M failed` over every test run.
    #[command(verbatim_doc_comment)]
    Ci,
    /// Build ocirun and run a command in a Debian root filesystem
    ///
    /// Builds ocirun --release and the Debian fixture, then runs a script in it that prints
    /// /etc/os-release, id, the capabilities and apt's version; exits with ocirun's status.
    #[command(verbatim_doc_comment)]
    Demo,
    /// ocirun measured side by side with the runtime alone
    ///
    /// As root: ocirun --release against the runtime's own `run` (runc unless --runtime names
    /// another): latency, throughput, peak memory, scale. A Markdown table on stdout, the raw
    /// figures in target/bench/results.json.
    #[command(verbatim_doc_comment)]
    Bench(bench::BenchOptions),
    /// Write ocirun's man pages into DIR
    ///
    /// ocirun.1 and one ocirun-SUB.1 per subcommand (run, spec, gc, ...), with every flag,
    /// generated from the clap definitions of the ocirun binary (crates/cli/src/flags.rs).
    #[command(verbatim_doc_comment)]
    Man {
        /// The directory to write the pages into; created if missing.
        dir: PathBuf,
    },
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
            Task::Rootfs { .. } | Task::Man { .. } => None,
        }
    }
}

fn main() -> ExitCode {
    // Help goes to stdout with status 0; a bad command line to stderr with status 2.
    let cli = Cli::parse();
    match run(cli.task) {
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

/// Runs one task; the exit code is the task's (the demo's is ocirun's).
fn run(task: Task) -> Result<ExitCode> {
    // Relative paths on the command line are relative to where the user ran `cargo xtask`, which
    // `cargo run` keeps as the current directory; commands below run in the workspace root.
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let sh = host::workspace_shell(&cwd)?;
    if let Some(name) = task.needs_packages() {
        packages::ensure(&sh, name, packages::PACKAGES)?;
    }
    match task {
        Task::Rootfs { kind, dir } => {
            let dir = match dir {
                Some(dir) => cwd.join(dir),
                None => rootfs::default_dir(kind),
            };
            rootfs::ensure(&sh, kind, &dir)?;
        }
        Task::E2e(options) => {
            let mut tally = tally::Tally::default();
            let result = e2e::run(&sh, &options, &mut tally);
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
        Task::Man { dir } => {
            man::run(&sh, &cwd.join(dir))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use std::ffi::OsString;

    fn parse(args: &[&str]) -> Result<Task, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
            .map(|cli| cli.task)
    }

    fn rootfs(kind: Fixture, dir: Option<&str>) -> Task {
        Task::Rootfs {
            kind,
            dir: dir.map(PathBuf::from),
        }
    }

    fn e2e(test_args: &[&str]) -> Task {
        Task::E2e(e2e::Options {
            runtime: None,
            test_args: test_args.iter().map(OsString::from).collect(),
        })
    }

    #[test]
    fn parses_rootfs() {
        assert_eq!(
            parse(&["rootfs", "busybox"]).unwrap(),
            rootfs(Fixture::Busybox, None)
        );
        assert_eq!(
            parse(&["rootfs", "debian", "x/y"]).unwrap(),
            rootfs(Fixture::Debian, Some("x/y"))
        );
        assert!(parse(&["rootfs"]).is_err());
        assert!(parse(&["rootfs", "alpine"]).is_err());
        assert!(parse(&["rootfs", "busybox", "a", "b"]).is_err());
    }

    #[test]
    fn parses_e2e_pass_through() {
        assert_eq!(parse(&["e2e"]).unwrap(), e2e(&[]));
        assert_eq!(
            parse(&["e2e", "--", "--nocapture", "env"]).unwrap(),
            e2e(&["--nocapture", "env"])
        );
        assert_eq!(parse(&["e2e", "hostname"]).unwrap(), e2e(&["hostname"]));
        assert_eq!(
            parse(&["e2e", "hostname", "--", "--exact"]).unwrap(),
            e2e(&["hostname", "--exact"])
        );
        // A harness option before `--` is refused, not handed on.
        assert!(parse(&["e2e", "--nocapture"]).is_err());
        assert!(parse(&["e2e", "env", "--exact"]).is_err());
        assert!(parse(&["e2e", "-x"]).is_err());
    }

    #[test]
    fn parses_the_runtime_of_e2e_vm_and_bench() {
        assert_eq!(
            parse(&["e2e", "--runtime", "crun", "env", "--", "--nocapture"]).unwrap(),
            Task::E2e(e2e::Options {
                runtime: Some("crun".into()),
                test_args: vec!["env".into(), "--nocapture".into()],
            })
        );
        let Task::Vm(options) = parse(&["vm", "--runtime=/opt/runc"]).unwrap() else {
            panic!("not vm");
        };
        assert_eq!(options.runtime, Some("/opt/runc".into()));
        let Task::Bench(options) = parse(&["bench", "--quick", "--runtime", "crun"]).unwrap()
        else {
            panic!("not bench");
        };
        assert_eq!(options.runtime, Some("crun".into()));
        assert!(options.quick);
        assert!(parse(&["e2e", "--runtime"]).is_err());
    }

    #[test]
    fn rejects_unknown_and_extra_arguments() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["lint"]).is_err());
        assert!(parse(&["bench", "--fast"]).is_err());
        assert_eq!(
            parse(&["bench", "--quick", "--with-podman"]).unwrap(),
            Task::Bench(bench::BenchOptions {
                quick: true,
                with_buildah: false,
                with_podman: true,
                runtime: None,
            })
        );
        assert!(parse(&["ci", "x"]).is_err());
        assert!(parse(&["demo", "--", "x"]).is_err());
        for help in [
            &["help"][..],
            &["--help"],
            &["-h"],
            &["help", "vm"],
            &["vm", "--help"],
        ] {
            assert_eq!(
                parse(help).unwrap_err().kind(),
                ErrorKind::DisplayHelp,
                "{help:?}"
            );
        }
        assert_eq!(parse(&["ci"]).unwrap(), Task::Ci);
        assert_eq!(parse(&["demo"]).unwrap(), Task::Demo);
        assert_eq!(parse(&["vm"]).unwrap(), Task::Vm(vm::Options::default()));
        assert!(parse(&["vm", "filter"]).is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn the_help_names_every_package() {
        let words: Vec<&str> = AFTER_HELP
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ':')
            .collect();
        for package in packages::PACKAGES {
            assert!(words.contains(&package.name), "{}", package.name);
        }
    }
}
