//! `cargo xtask e2e`: the end-to-end suite (package `ocirun-e2e`) against a real runtime: runc,
//! or the one `--runtime` (or `$OCIRUN_RUNTIME`) names.
//!
//! Steps, stopping at the first failure (the Debian packages that the build and the tests need
//! were installed before, [`crate::packages`]):
//!
//! 1. check that this process is root and that the runtime exists: runc on `PATH`, or the
//!    runtime named, youki being built into `target/runtimes/` when it is named and not
//!    installed ([`crate::runtimes`]); the suite is never skipped: without them it fails,
//!    saying what is missing;
//! 2. build (or find cached) the busybox and Debian fixtures in `target/fixtures/`;
//! 3. `cargo build -p ocirun`;
//! 4. `cargo test --no-fail-fast -p ocirun-e2e -- --test-threads=N ARGS...`, where N is the number of CPUs
//!    unless ARGS has its own `--test-threads`, with the environment of [`test_env`] and
//!    `OCIRUN_RUNTIME` when `--runtime` (or the caller's `OCIRUN_RUNTIME`) names a runtime
//!    ([`host::runtime`]).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::rootfs::{self, Fixture};
use crate::tally::Tally;
use crate::{host, runtimes};

/// The options of `cargo xtask e2e`.
#[derive(Debug, Default, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct Options {
    /// The OCI runtime for ocirun in the tests: a name in PATH, or a path.
    ///
    /// Passed to the tests as OCIRUN_RUNTIME. Default: $OCIRUN_RUNTIME, else runc.
    #[arg(long, value_name = "NAME|PATH")]
    pub(crate) runtime: Option<OsString>,

    /// Test filters; after `--`, any argument of the test harness.
    ///
    /// Such as `--nocapture`, `--exact`, `--test-threads=N`.
    #[arg(value_name = "ARGS")]
    pub(crate) test_args: Vec<OsString>,
}

/// Fails unless the e2e suite can run here: root, and `runtime` (from [`host::runtime`])
/// where ocirun will look for it, or runc on `PATH` when none is named.
pub(crate) fn preflight(runtime: Option<&OsStr>) -> Result<()> {
    host::require_root(
        "the e2e suite needs root and a real runtime: it creates real containers, and it is \
         never skipped",
    )?;
    if let Some(runtime) = runtime {
        if host::find_runtime(runtime).is_none() {
            bail!(
                "the runtime {} is neither an executable file nor a program in PATH or the \
                 sbin directories",
                runtime.to_string_lossy()
            );
        }
        return Ok(());
    }
    if host::find_in_path("runc").is_none() {
        if let Some(runc) = host::find_admin_tool("runc") {
            bail!(
                "runc is not in PATH but {} exists: the e2e suite needs the real runc where \
                 ocirun looks for it; add its directory to PATH",
                runc.display()
            );
        }
        bail!(
            "runc not found in PATH: the e2e suite needs the real runc; install it \
             (apt-get install runc)"
        );
    }
    Ok(())
}

/// The build of ocirun that the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// `cargo build -p ocirun` (`target/debug/ocirun`), with debug assertions: the host suite.
    Debug,
    /// `cargo build --release -p ocirun` (`target/release/ocirun`), the build users run, which
    /// `cargo xtask demo` and `bench` build too: the suite in `cargo xtask vm`'s emulated guest,
    /// where the debug build's own code costs a noticeable share of the guest's CPU time.
    Release,
}

/// Steps 2 and 3: builds (or finds cached) both fixtures and builds ocirun as `build` says;
/// returns the environment that the tests read ([`test_env`]). `cargo xtask vm` shares this
/// step.
pub(crate) fn prepare(sh: &Shell, build: Build) -> Result<[(&'static str, PathBuf); 3]> {
    let busybox = rootfs::default_dir(Fixture::Busybox);
    let debian = rootfs::default_dir(Fixture::Debian);
    rootfs::ensure(sh, Fixture::Busybox, &busybox)?;
    rootfs::ensure(sh, Fixture::Debian, &debian)?;

    let cargo = host::cargo();
    let (flag, dir) = match build {
        Build::Debug => (None, "debug"),
        Build::Release => (Some("--release"), "release"),
    };
    let build_cmd = cmd!(sh, "{cargo} build {flag...} -p ocirun");
    let shown = build_cmd.to_string();
    build_cmd.run().context("cannot build ocirun")?;
    let bin = host::target_dir(sh).join(dir).join("ocirun");
    if !bin.is_file() {
        bail!("{shown} succeeded but {} does not exist", bin.display());
    }
    Ok(test_env(bin, busybox, debian))
}

/// Runs the suite, passing the options' test arguments (filters, `--nocapture`, ...) to the
/// test harness.
pub(crate) fn run(sh: &Shell, options: &Options, tally: &mut Tally) -> Result<()> {
    let runtime = runtimes::locate(sh, host::runtime(options.runtime.as_deref())?)?;
    preflight(runtime.as_deref())?;
    let env = prepare(sh, Build::Debug)?;
    let test_args = &options.test_args;

    let cargo = host::cargo();
    let mut harness_args = Vec::new();
    if !test_args
        .iter()
        .any(|arg| arg.to_string_lossy().starts_with("--test-threads"))
    {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        harness_args.push(OsString::from(format!("--test-threads={threads}")));
    }
    harness_args.extend(test_args.iter().cloned());

    let mut test = cmd!(
        sh,
        "{cargo} test --no-fail-fast -p ocirun-e2e -- {harness_args...}"
    );
    eprintln!("e2e environment:");
    for (key, value) in env {
        eprintln!("  {key}={}", value.display());
        test = test.env(key, value);
    }
    if let Some(runtime) = runtime {
        eprintln!("  {}={}", host::RUNTIME_VAR, runtime.to_string_lossy());
        test = test.env(host::RUNTIME_VAR, runtime);
    }
    tally.run(test).context("the end-to-end tests failed")
}

/// The variable that names the busybox fixture for the tests.
pub(crate) const BUSYBOX_ROOTFS_VAR: &str = "OCIRUN_TEST_BUSYBOX_ROOTFS";

/// The environment the e2e tests read: the ocirun binary and the two fixtures, absolute paths.
fn test_env(bin: PathBuf, busybox: PathBuf, debian: PathBuf) -> [(&'static str, PathBuf); 3] {
    [
        ("OCIRUN_BIN", bin),
        (BUSYBOX_ROOTFS_VAR, busybox),
        ("OCIRUN_TEST_DEBIAN_ROOTFS", debian),
    ]
}
