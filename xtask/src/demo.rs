//! `cargo xtask demo`: show ocirun running a command in a Debian rootfs.
//!
//! 1. install the Debian packages that are missing ([`crate::packages`], done by `main` before
//!    the task runs);
//! 2. `cargo build --release -p ocirun`;
//! 3. build (or find cached) the Debian fixture in `target/fixtures/debian`;
//! 4. `target/release/ocirun run --rootfs <fixture> -- sh -c SCRIPT`, where SCRIPT prints
//!    `/etc/os-release`, `id`, the `Cap*` lines of `/proc/self/status` and the first line of
//!    `apt-get --version`.
//!
//! The demo exits with ocirun's exit status (128+N if ocirun was killed by signal N).

use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::host;
use crate::rootfs::{self, Fixture};

/// What the demo runs inside the container, with `sh -c`.
const SCRIPT: &str = "set -e
echo '== /etc/os-release'; cat /etc/os-release
echo '== id'; id
echo '== capabilities'; grep ^Cap /proc/self/status
echo '== apt'; apt-get --version | head -n1
";

/// Runs the demo; the exit code is ocirun's.
pub(crate) fn run(sh: &Shell) -> Result<ExitCode> {
    let cargo = host::cargo();
    cmd!(sh, "{cargo} build --release -p ocirun")
        .run()
        .context("cannot build ocirun")?;
    let ocirun = host::target_dir(sh).join("release").join("ocirun");
    if !ocirun.is_file() {
        bail!(
            "cargo build --release -p ocirun succeeded but {} does not exist",
            ocirun.display()
        );
    }

    let debian = rootfs::default_dir(Fixture::Debian);
    rootfs::ensure(sh, Fixture::Debian, &debian)?;

    eprintln!(
        "$ {} run --rootfs {} -- sh -c '{}'",
        ocirun.display(),
        debian.display(),
        SCRIPT.trim_end().replace('\n', "; ").replace('\'', "'\\''")
    );
    let status = Command::new(&ocirun)
        .arg("run")
        .arg("--rootfs")
        .arg(&debian)
        .args(["--", "sh", "-c", SCRIPT])
        .status()
        .with_context(|| format!("cannot run {}", ocirun.display()))?;
    let code = exit_code(status);
    if code != 0 {
        eprintln!("ocirun exited with status {code}");
    }
    Ok(ExitCode::from(code))
}

/// The shell-style exit code of a finished process: its status, or 128+N for signal N.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    u8::try_from(code).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
