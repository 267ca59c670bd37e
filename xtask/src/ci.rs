//! `cargo xtask ci`: everything CI checks, in order, stopping at the first failure.
//!
//! 0. the e2e preconditions (root, runc on `PATH`), checked first so a machine that cannot run
//!    the last step fails in a second, not after the build;
//! 1. `cargo fmt --all -- --check`;
//! 2. `cargo clippy --workspace --all-targets -- -D warnings`;
//! 3. `cargo test --workspace --exclude ocirun-e2e` (unit and doc tests);
//! 4. the end-to-end suite ([`crate::e2e`]);
//!
//! and last, on stdout, `N passed, M failed` over the tests of steps 3 and 4
//! ([`crate::tally`]). The same suite inside QEMU guests (`cargo xtask vm`) is not a step yet:
//! under TCG the whole suite takes far longer per guest than CI allows.
//!
//! Each step is announced on stderr as `==> [N/4] ...`.

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::tally::Tally;
use crate::{e2e, host};

/// Runs the CI steps.
pub(crate) fn run(sh: &Shell) -> Result<()> {
    e2e::preflight().context("ci ends with the e2e suite, which cannot run here")?;
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
    let total = steps.len() + 2;
    for (index, (name, step)) in steps.into_iter().enumerate() {
        announce(index + 1, total, name);
        step.run()
            .with_context(|| format!("ci step `{name}` failed"))?;
    }
    let mut tally = Tally::default();
    announce(
        total - 1,
        total,
        "cargo test --workspace --exclude ocirun-e2e",
    );
    let unit = tally.run(cmd!(sh, "{cargo} test --workspace --exclude ocirun-e2e"));
    let e2e = unit.and_then(|()| {
        announce(total, total, "e2e");
        e2e::run(sh, &[], &mut tally)
    });
    // The closing line counts every test of the run, passed or failed.
    println!("{}", tally.summary());
    e2e.context("ci failed")?;
    eprintln!("==> ci passed");
    Ok(())
}

fn announce(index: usize, total: usize, name: &str) {
    eprintln!("==> [{index}/{total}] {name}");
}
