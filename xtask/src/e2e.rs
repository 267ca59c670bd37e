//! `cargo xtask e2e`: the end-to-end suite (package `ocirun-e2e`) against real runc.
//!
//! Steps, stopping at the first failure (the Debian packages that the build and the tests need
//! were installed before, [`crate::packages`]):
//!
//! 1. check that this process is root and that `runc` is on `PATH` (the suite is never skipped:
//!    without them it fails, saying what is missing);
//! 2. build (or find cached) the busybox and Debian fixtures in `target/fixtures/`;
//! 3. `cargo build -p ocirun`;
//! 4. `cargo test -p ocirun-e2e -- --test-threads=N ARGS...`, where N is the number of CPUs
//!    unless ARGS has its own `--test-threads`, with the environment of [`test_env`].

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::host;
use crate::rootfs::{self, Fixture};
use crate::tally::Tally;

/// Fails unless the e2e suite can run here: root, and runc on `PATH`.
pub(crate) fn preflight() -> Result<()> {
    host::require_root(
        "the e2e suite needs root and real runc: it creates real containers, and it is never \
         skipped",
    )?;
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
    /// where ocirun's processes took a sixth of the guest's CPU time with the debug build, half
    /// of it in ocirun's own code.
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

/// Runs the suite, passing `test_args` (filters, `--nocapture`, ...) to the test harness.
pub(crate) fn run(sh: &Shell, test_args: &[OsString], tally: &mut Tally) -> Result<()> {
    preflight()?;
    let env = prepare(sh, Build::Debug)?;

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

    let mut test = cmd!(sh, "{cargo} test -p ocirun-e2e -- {harness_args...}");
    eprintln!("e2e environment:");
    for (key, value) in env {
        eprintln!("  {key}={}", value.display());
        test = test.env(key, value);
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
