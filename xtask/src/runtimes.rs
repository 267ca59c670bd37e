//! The OCI runtimes the tasks run ocirun with: runc and crun from Debian's packages
//! ([`crate::packages`]), youki built from crates.io into `target/runtimes/` ([`youki`]).
//!
//! A `--runtime` (or `$OCIRUN_RUNTIME`) named `youki` that is not in `PATH` or the sbin
//! directories is that build ([`locate`]): built on first use with
//! `cargo install youki --version 0.7.0 --locked --no-default-features --features
//! v1,v2,seccomp --root target/runtimes` (about 4 minutes on 2 cores; youki's own
//! `Cargo.lock` pins its dependencies; the features leave out systemd's cgroup driver, which
//! needs libsystemd and D-Bus), and kept there for the next runs. It is run from the
//! workspace, so the project's pinned toolchain builds it.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::host;

/// The youki release the tasks build.
pub(crate) const YOUKI_VERSION: &str = "0.7.0";

/// youki's cargo features: cgroup v1 and v2 and seccomp (libseccomp-dev), no systemd.
const YOUKI_FEATURES: &str = "v1,v2,seccomp";

/// Where [`youki`] installs (`cargo install --root`): the binary is `bin/youki` below.
pub(crate) fn install_root(sh: &Shell) -> PathBuf {
    host::target_dir(sh).join("runtimes")
}

/// youki [`YOUKI_VERSION`], built into [`install_root`] when it is not there yet (or another
/// version is); returns its path.
///
/// # Errors
/// When cargo install fails, or the binary it installed does not say it is that version.
pub(crate) fn youki(sh: &Shell) -> Result<PathBuf> {
    let root = install_root(sh);
    let bin = root.join("bin").join("youki");
    if installed_version(&bin).as_deref() == Some(YOUKI_VERSION) {
        return Ok(bin);
    }
    eprintln!(
        "building youki {YOUKI_VERSION} into {} (kept for later runs)",
        root.display()
    );
    let cargo = host::cargo();
    cmd!(
        sh,
        "{cargo} install youki --version {YOUKI_VERSION} --locked --no-default-features --features {YOUKI_FEATURES} --root {root}"
    )
    .run()
    .context("cannot build youki")?;
    match installed_version(&bin) {
        Some(version) if version == YOUKI_VERSION => Ok(bin),
        other => bail!(
            "cargo install youki {YOUKI_VERSION} left {} saying version {other:?}",
            bin.display()
        ),
    }
}

/// The version that `BIN --version` prints on its first line (`youki version: 0.7.0`).
fn installed_version(bin: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_version(text: &str) -> Option<String> {
    let first = text.lines().next()?;
    let (_, version) = first.split_once("version")?;
    let version = version.trim_start_matches(':').trim();
    (!version.is_empty()).then(|| version.to_owned())
}

/// The runtime that `runtime` (from [`host::runtime`]) names, for the tasks: as it is when it
/// is found where ocirun looks, else, for `youki`, the build of [`youki`]; `None` stays `None`
/// (runc).
///
/// # Errors
/// When youki cannot be built.
pub(crate) fn locate(sh: &Shell, runtime: Option<OsString>) -> Result<Option<OsString>> {
    match runtime {
        Some(name) if name == OsStr::new("youki") && host::find_runtime(&name).is_none() => {
            Ok(Some(youki(sh)?.into_os_string()))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_the_runtimes() {
        let youki = "youki version: 0.7.0\ncommit: 0.7.0-VERGEN_IDEMPOTENT_OUTPUT\nspec: 1.1.0\n";
        assert_eq!(parse_version(youki).as_deref(), Some("0.7.0"));
        let runc = "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\n";
        assert_eq!(parse_version(runc).as_deref(), Some("1.1.5+ds1"));
        assert_eq!(
            parse_version("crun version 1.8.1\n").as_deref(),
            Some("1.8.1")
        );
        assert_eq!(parse_version(""), None);
        assert_eq!(parse_version("no such thing\n"), None);
    }
}
