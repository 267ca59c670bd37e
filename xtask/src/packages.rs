//! The Debian packages that the tasks need, in one list ([`PACKAGES`]), and their installation.
//!
//! [`ensure`] runs before a task builds anything:
//!
//! 1. `dpkg-query -W --showformat='${Package}\t${Status}\n' PKG...` tells which of the
//!    packages are installed: a package is installed when its status is
//!    `install ok installed`; one that dpkg-query does not list, or lists with another status
//!    (removed, config files only, half installed), is missing ([`missing`]);
//! 2. nothing missing: nothing more is done;
//! 3. as root: `apt-get update`, then
//!    `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends PKG...` of the
//!    missing ones, and the check of step 1 once more;
//! 4. as another user: the task fails with the packages, what each is for, and the
//!    `apt-get install` line to run as root ([`not_root_message`]).
//!
//! QEMU, which only `cargo xtask vm` needs, is installed by that task itself
//! ([`crate::vm`]).

use std::process::Command;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::host;

/// A Debian package that the tasks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Package {
    /// The package's name.
    pub(crate) name: &'static str,
    /// What it is needed for, in a few words.
    pub(crate) purpose: &'static str,
}

/// Every Debian package that building ocirun, the demo and the tests need (QEMU aside).
pub(crate) const PACKAGES: &[Package] = &[
    // Building ocirun: the system libraries of its dependencies.
    Package {
        name: "libseccomp-dev",
        purpose: "the build: libseccomp, which the libseccomp crate links",
    },
    Package {
        name: "pkg-config",
        purpose: "the build: where the system libraries are, for the -sys crates' build scripts",
    },
    Package {
        name: "libselinux1-dev",
        purpose: "the build: libselinux and its headers, which selinux-sys binds and links",
    },
    Package {
        name: "libclang-dev",
        purpose: "the build: libclang, which bindgen loads in selinux-sys's build script",
    },
    // Running ocirun: the demo and the end-to-end tests.
    Package {
        name: "runc",
        purpose: "the OCI runtime that ocirun drives by default",
    },
    Package {
        name: "busybox-static",
        purpose: "the static /bin/busybox of the busybox fixture and the vm guest",
    },
    Package {
        name: "debootstrap",
        purpose: "builds the Debian fixture",
    },
    Package {
        name: "tini",
        purpose: "tini-static, the init of `ocirun run --init`",
    },
    Package {
        name: "catatonit",
        purpose: "the other init `ocirun run --init` can use",
    },
    Package {
        name: "uidmap",
        purpose: "newuidmap and newgidmap, which map a user namespace's ids for a user other \
                  than root",
    },
];

/// The status of an installed package, as `${Status}` of dpkg-query prints it.
const INSTALLED: &str = "install ok installed";

/// Installs the packages of `wanted` that are missing (see the module docs); `task` names the
/// task in the error of a user other than root.
///
/// Errors: packages missing and this process not root, no dpkg-query or apt-get, apt-get
/// failing, and packages still missing after apt-get.
pub(crate) fn ensure(sh: &Shell, task: &str, wanted: &[Package]) -> Result<()> {
    // Without names, dpkg-query would list every package.
    if wanted.is_empty() {
        return Ok(());
    }
    let absent = missing(wanted, &query(wanted)?);
    if absent.is_empty() {
        return Ok(());
    }
    if !host::is_root()? {
        bail!("{}", not_root_message(task, &absent));
    }
    let Some(apt_get) = host::find_admin_tool("apt-get") else {
        bail!(
            "Debian packages are missing and there is no apt-get to install them:{}",
            describe(&absent)
        );
    };
    let names: Vec<&str> = absent.iter().map(|package| package.name).collect();
    let list = names.join(" ");
    eprintln!("installing missing Debian packages:{}", describe(&absent));
    let path = host::admin_path()?;
    cmd!(sh, "{apt_get} update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("PATH", &path)
        .run()
        .context("apt-get update failed")?;
    cmd!(
        sh,
        "{apt_get} install -y --no-install-recommends {names...}"
    )
    .env("DEBIAN_FRONTEND", "noninteractive")
    .env("PATH", &path)
    .run()
    .with_context(|| format!("cannot install {list}"))?;
    let still = missing(&absent, &query(&absent)?);
    if !still.is_empty() {
        bail!(
            "still not installed after apt-get install:{}",
            describe(&still)
        );
    }
    Ok(())
}

/// The output of `dpkg-query -W --showformat='${Package}\t${Status}\n'` for `packages`.
///
/// dpkg-query exits 1 when it knows some of the packages not at all, and lists the others; its
/// output counts either way. Other failures (no dpkg-query, a broken dpkg database) are errors.
fn query(packages: &[Package]) -> Result<String> {
    let dpkg_query = host::find_admin_tool("dpkg-query").context(
        "dpkg-query not found: the tasks install their system packages with Debian's dpkg and \
         apt",
    )?;
    let output = Command::new(&dpkg_query)
        .arg("-W")
        .arg("--showformat=${Package}\t${Status}\n")
        .args(packages.iter().map(|package| package.name))
        .output()
        .with_context(|| format!("cannot run {}", dpkg_query.display()))?;
    if !matches!(output.status.code(), Some(0 | 1)) {
        bail!(
            "dpkg-query -W failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The packages of `wanted` that `listing` (lines of `PACKAGE<TAB>STATUS`, see [`query`]) does
/// not show as installed. A package listed more than once (one line per architecture) is
/// installed when one of its lines says so.
fn missing(wanted: &[Package], listing: &str) -> Vec<Package> {
    let installed: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, status)| status.trim() == INSTALLED)
        .map(|(name, _)| name.split(':').next().unwrap_or(name))
        .collect();
    wanted
        .iter()
        .filter(|package| !installed.contains(&package.name))
        .copied()
        .collect()
}

/// One line per package, `  NAME  PURPOSE`, names padded to one width.
fn describe(packages: &[Package]) -> String {
    let width = packages.iter().map(|p| p.name.len()).max().unwrap_or(0);
    packages
        .iter()
        .map(|package| format!("\n  {:width$}  {}", package.name, package.purpose))
        .collect()
}

/// The `apt-get install` command line that installs `packages`.
fn install_line(packages: &[Package]) -> String {
    let names: Vec<&str> = packages.iter().map(|package| package.name).collect();
    format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
         --no-install-recommends {}",
        names.join(" ")
    )
}

/// What a user other than root is told when `packages` are missing.
fn not_root_message(task: &str, packages: &[Package]) -> String {
    format!(
        "cargo xtask {task} needs Debian packages that are not installed:{}\n\
         Installing them needs root. As root, run\n\n    {}\n\n\
         or run `cargo xtask {task}` as root, which installs them itself.",
        describe(packages),
        install_line(packages)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &'static str) -> Package {
        Package {
            name,
            purpose: "a test",
        }
    }

    fn names(packages: &[Package]) -> Vec<&str> {
        packages.iter().map(|package| package.name).collect()
    }

    #[test]
    fn only_install_ok_installed_counts_as_installed() {
        let wanted = [
            package("runc"),
            package("uidmap"),
            package("catatonit"),
            package("debootstrap"),
            package("libseccomp-dev"),
            package("busybox-static"),
        ];
        let listing = "runc\tinstall ok installed\n\
                       uidmap\tdeinstall ok config-files\n\
                       catatonit\tinstall ok half-installed\n\
                       libseccomp-dev\tinstall ok installed\n\
                       libseccomp-dev\tunknown ok not-installed\n\
                       busybox-static\tinstall ok unpacked\n";
        assert_eq!(
            names(&missing(&wanted, listing)),
            ["uidmap", "catatonit", "debootstrap", "busybox-static"]
        );
        assert!(missing(&wanted[..1], "runc\tinstall ok installed").is_empty());
        assert_eq!(names(&missing(&wanted[..2], "")), ["runc", "uidmap"]);
        // `${binary:Package}`-style names with an architecture, and stray lines.
        assert_eq!(
            names(&missing(
                &wanted[..2],
                "uidmap:amd64\tinstall ok installed\ngarbage\n"
            )),
            ["runc"]
        );
    }

    #[test]
    fn the_list_names_each_package_once_with_its_purpose() {
        let mut all = names(PACKAGES);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), PACKAGES.len());
        assert!(PACKAGES.iter().all(|package| !package.purpose.is_empty()));
        for name in [
            "libseccomp-dev",
            "pkg-config",
            "libselinux1-dev",
            "libclang-dev",
            "runc",
            "busybox-static",
            "debootstrap",
            "tini",
            "catatonit",
            "uidmap",
        ] {
            assert!(all.contains(&name), "{name}");
        }
    }

    #[test]
    fn a_user_other_than_root_is_told_the_command_to_run() {
        let message = not_root_message("demo", &[package("runc"), package("uidmap")]);
        assert!(
            message.contains(
                "\n    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
                 --no-install-recommends runc uidmap\n"
            ),
            "{message}"
        );
        assert!(
            message.starts_with(
                "cargo xtask demo needs Debian packages that are not installed:\n  \
                 runc    a test\n  uidmap  a test\n"
            ),
            "{message}"
        );
    }

    #[test]
    fn dpkg_query_answers_for_known_and_unknown_packages() {
        // dpkg-query exits 1 for a name it does not know; the listing still counts.
        let unknown = package("ocirun-no-such-package");
        let listing = query(&[unknown]).unwrap();
        assert_eq!(names(&missing(&[unknown], &listing)), [unknown.name]);
    }
}
