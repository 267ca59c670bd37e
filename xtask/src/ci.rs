//! `cargo xtask ci`: everything CI checks, in order, stopping at the first failure.
//!
//! 0. the e2e preconditions (root, runc on `PATH`), checked first so a machine that cannot run
//!    the last step fails in a second, not after the build (the Debian packages that the build
//!    and the tests need were installed before, [`crate::packages`]);
//! 1. `cargo fmt --all -- --check`;
//! 2. `cargo clippy --workspace --all-targets -- -D warnings`;
//! 3. `cargo test --workspace --exclude ocirun-e2e` (unit and doc tests);
//! 4. the end-to-end suite ([`crate::e2e`]);
//! 5. the same suite in QEMU guests on cgroup v1 and v2 (`cargo xtask vm --cgroup both`,
//!    [`crate::vm`]);
//!
//! and last, on stdout, `N passed, M failed` over the tests of steps 3 to 5
//! ([`crate::tally`]).
//!
//! Each step is announced on stderr as `==> [N/5] ...`.

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::tally::Tally;
use crate::{e2e, host, vm};

/// Runs the CI steps.
pub(crate) fn run(sh: &Shell) -> Result<()> {
    let runtime = host::runtime(None)?;
    e2e::preflight(runtime.as_deref())
        .context("ci ends with the e2e suite, which cannot run here")?;
    let cargo = host::cargo();
    let steps = [
        (
            "cargo fmt --all -- --check",
            cmd!(sh, "{cargo} fmt --all -- --check"),
        ),
        (
            "cargo clippy --workspace --all-targets -- -D warnings",
            cmd!(
                sh,
                "{cargo} clippy --workspace --all-targets -- -D warnings"
            ),
        ),
    ];
    let total = steps.len() + 3;
    for (index, (name, step)) in steps.into_iter().enumerate() {
        announce(index + 1, total, name);
        step.run()
            .with_context(|| format!("ci step `{name}` failed"))?;
    }
    let mut tally = Tally::default();
    announce(
        total - 2,
        total,
        "cargo test --workspace --exclude ocirun-e2e",
    );
    let unit = tally.run(cmd!(sh, "{cargo} test --workspace --exclude ocirun-e2e"));
    let e2e = unit.and_then(|()| {
        announce(total - 1, total, "e2e");
        e2e::run(sh, &e2e::Options::default(), &mut tally)
    });
    let guests = e2e.and_then(|()| {
        announce(total, total, "vm --cgroup both");
        vm::run(sh, &vm::Options::default(), &mut tally)
    });
    // The closing line counts every test of the run, passed or failed.
    println!("{}", tally.summary());
    guests.context("ci failed")?;
    eprintln!("==> ci passed");
    Ok(())
}

fn announce(index: usize, total: usize, name: &str) {
    eprintln!("==> [{index}/{total}] {name}");
}
