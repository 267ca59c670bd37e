//! `cargo xtask ci`: everything CI checks, in order.
//!
//! 0. the e2e preconditions (root, runc and crun on `PATH`), checked first so a machine that
//!    cannot run the suites fails in a second, not after the build (the Debian packages that
//!    the build and the tests need were installed before, [`crate::packages`]);
//! 1. `cargo fmt --all -- --check`;
//! 2. `cargo clippy --workspace --all-targets -- -D warnings`;
//! 3. `cargo test --workspace --exclude ocirun-e2e` (unit and doc tests);
//! 4. youki, built into `target/runtimes/` when it is not there ([`crate::runtimes::youki`]);
//! 5. the end-to-end suite per runtime ([`SUITES`]): with runc on the host ([`crate::e2e`]) and
//!    in QEMU guests on cgroup v1 and v2 ([`crate::vm`]), with youki on the host, and with
//!    crun in the cgroup v2 guest (crun 1.8 refuses a host whose cgroup v2 hierarchy has
//!    controllers while v1 is mounted too, a "hybrid" layout);
//!
//! stopping at the first failure of steps 1 to 4; every suite of step 5 runs, each ending
//! with a line `SUITE: N passed, M failed`. Last, on stdout, those lines again and
//! `N passed, M failed` over the tests of steps 3 and 5 ([`crate::tally`]); the task fails if
//! any step did.
//!
//! Each step is announced on stderr as `==> [N/TOTAL] ...`.

use std::ffi::OsString;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::tally::Tally;
use crate::vm::Cgroups;
use crate::{e2e, host, runtimes, vm};

/// Where a suite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `cargo xtask e2e`.
    Host,
    /// `cargo xtask vm --cgroup ...`.
    Guests(Cgroups),
}

/// A runtime the suite runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runtime {
    Runc,
    Youki,
    Crun,
}

/// The suites of step 5, in order.
const SUITES: [(Runtime, Place); 4] = [
    (Runtime::Runc, Place::Host),
    (Runtime::Runc, Place::Guests(Cgroups::Both)),
    (Runtime::Youki, Place::Host),
    (Runtime::Crun, Place::Guests(Cgroups::V2)),
];

/// What a suite's line calls it.
fn label(runtime: Runtime, place: Place) -> String {
    let name = match runtime {
        Runtime::Runc => "runc",
        Runtime::Youki => "youki",
        Runtime::Crun => "crun",
    };
    let place = match place {
        Place::Host => "the host",
        Place::Guests(Cgroups::Both) => "the cgroup v1 and v2 guests",
        Place::Guests(Cgroups::V1) => "the cgroup v1 guest",
        Place::Guests(Cgroups::V2) => "the cgroup v2 guest",
    };
    format!("e2e with {name} on {place}")
}

/// Runs the CI steps.
pub(crate) fn run(sh: &Shell) -> Result<()> {
    e2e::preflight(Some("runc".as_ref()))
        .and_then(|()| e2e::preflight(Some("crun".as_ref())))
        .context("ci ends with the e2e suites, which cannot run here")?;
    let cargo = host::cargo();
    let total = 4 + SUITES.len();
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
    for (index, (name, step)) in steps.into_iter().enumerate() {
        announce(index + 1, total, name);
        step.run()
            .with_context(|| format!("ci step `{name}` failed"))?;
    }
    let mut all = Tally::default();
    announce(3, total, "cargo test --workspace --exclude ocirun-e2e");
    let unit = all.run(cmd!(sh, "{cargo} test --workspace --exclude ocirun-e2e"));
    if let Err(e) = unit {
        println!("{}", all.summary());
        return Err(e.context("ci failed"));
    }
    announce(4, total, &format!("youki {}", runtimes::YOUKI_VERSION));
    let youki = runtimes::youki(sh)?;

    let mut lines = Vec::new();
    let mut failed = Vec::new();
    for (index, (runtime, place)) in SUITES.into_iter().enumerate() {
        let label = label(runtime, place);
        announce(5 + index, total, &label);
        let runtime: OsString = match runtime {
            Runtime::Runc => "runc".into(),
            Runtime::Youki => youki.clone().into_os_string(),
            Runtime::Crun => "crun".into(),
        };
        let mut tally = Tally::default();
        let result = match place {
            Place::Host => e2e::run(
                sh,
                &e2e::Options {
                    runtime: Some(runtime),
                    test_args: Vec::new(),
                },
                &mut tally,
            ),
            Place::Guests(cgroups) => vm::run(
                sh,
                &vm::Options {
                    cgroups,
                    runtime: Some(runtime),
                    ..vm::Options::default()
                },
                &mut tally,
            ),
        };
        let line = format!("{label}: {}", tally.summary());
        println!("{line}");
        lines.push(line);
        all.passed += tally.passed;
        all.failed += tally.failed;
        if let Err(e) = result {
            eprintln!("==> {label} failed: {e:#}");
            failed.push(label);
        }
    }
    // The closing lines count every test of the run, passed or failed.
    println!();
    for line in &lines {
        println!("{line}");
    }
    println!("{}", all.summary());
    if !failed.is_empty() {
        bail!("ci failed: {}", failed.join(", "));
    }
    eprintln!("==> ci passed");
    Ok(())
}

fn announce(index: usize, total: usize, name: &str) {
    eprintln!("==> [{index}/{total}] {name}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runtime_has_a_suite_and_runc_both_cgroup_versions() {
        let labels: Vec<String> = SUITES.iter().map(|(r, p)| label(*r, *p)).collect();
        assert_eq!(
            labels,
            [
                "e2e with runc on the host",
                "e2e with runc on the cgroup v1 and v2 guests",
                "e2e with youki on the host",
                "e2e with crun on the cgroup v2 guest",
            ]
        );
    }
}
