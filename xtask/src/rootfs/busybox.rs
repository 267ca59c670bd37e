//! The busybox fixture: the smallest rootfs that still has a shell, coreutils and a user database.
//!
//! Layout (all owned by root unless said otherwise):
//!
//! - `bin/busybox`: a copy of the machine's `/bin/busybox`, which must be statically linked
//!   (Debian's `busybox-static`), mode 0755;
//! - one relative symlink per applet of `busybox --list-full` (`bin/sh -> busybox`,
//!   `usr/bin/id -> ../../bin/busybox`, `linuxrc -> bin/busybox`);
//! - directories `proc`, `sys`, `dev`, `etc` (0755), `tmp` (1777), `root` (0700) and `home/app`
//!   (0755, owned 1000:1000);
//! - `etc/passwd` with `root` (0) and `app` (1000), `etc/group` with `root` (0), `app` (1000)
//!   and `wheel` (10, member `app`), both 0644.
//!
//! There is deliberately no `etc/hosts`, `etc/hostname` or `etc/resolv.conf`: ocirun provides
//! them at run time, and the end-to-end tests check that it leaves nothing behind.

use std::fs;
use std::os::unix::fs::{chown, symlink};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::elf::{self, Linkage};
use super::{chmod, mkdir_p, write_file};

/// The machine's busybox that the fixture copies.
const HOST_BUSYBOX: &str = "/bin/busybox";

/// Where the copy lives in the fixture, relative to its root.
const BUSYBOX: &str = "bin/busybox";

/// uid and gid of the unprivileged user `app`.
const APP_ID: u32 = 1000;

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
";

const GROUP: &str = "\
root:x:0:
app:x:1000:
wheel:x:10:app
";

/// Directories besides the applets' ones, with their modes, in creation order.
const DIRS: &[(&str, u32)] = &[
    ("proc", 0o755),
    ("sys", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("tmp", 0o1777),
    ("root", 0o700),
    ("home", 0o755),
    ("home/app", 0o755),
];

/// Builds the fixture in the existing, empty directory `root`.
pub(super) fn build(sh: &Shell, root: &Path) -> Result<()> {
    let image = read_static_busybox(Path::new(HOST_BUSYBOX))?;

    mkdir_p(root, Path::new("bin"), 0o755)?;
    eprintln!("copying {HOST_BUSYBOX} to {}", root.join(BUSYBOX).display());
    write_file(&root.join(BUSYBOX), &image, 0o755)?;

    let list = cmd!(sh, "{HOST_BUSYBOX} --list-full")
        .quiet()
        .read()
        .with_context(|| format!("cannot list the applets of {HOST_BUSYBOX}"))?;
    let links = applet_links(&list)?;
    eprintln!("linking {} applets to {BUSYBOX}", links.len());
    for (link, target) in &links {
        if let Some(parent) = link.parent() {
            mkdir_p(root, parent, 0o755)?;
        }
        let path = root.join(link);
        symlink(target, &path).with_context(|| {
            format!(
                "cannot create symlink {} -> {}",
                path.display(),
                target.display()
            )
        })?;
    }

    for &(dir, mode) in DIRS {
        mkdir_p(root, Path::new(dir), mode)?;
        // The directory may exist already (an applet directory); the mode is ours either way.
        chmod(&root.join(dir), mode)?;
    }
    let home = root.join("home/app");
    chown(&home, Some(APP_ID), Some(APP_ID))
        .with_context(|| format!("cannot chown {} to {APP_ID}:{APP_ID}", home.display()))?;

    eprintln!("writing etc/passwd and etc/group");
    write_file(&root.join("etc/passwd"), PASSWD.as_bytes(), 0o644)?;
    write_file(&root.join("etc/group"), GROUP.as_bytes(), 0o644)?;
    Ok(())
}

/// Whether the machine's `/bin/busybox` exists and is statically linked.
pub(super) fn host_busybox_is_static() -> bool {
    read_static_busybox(Path::new(HOST_BUSYBOX)).is_ok()
}

/// Reads `path` and checks that it is a statically linked ELF executable.
fn read_static_busybox(path: &Path) -> Result<Vec<u8>> {
    let image = fs::read(path).with_context(|| {
        format!(
            "cannot read {}: install a static busybox (apt-get install busybox-static)",
            path.display()
        )
    })?;
    match elf::linkage(&image).with_context(|| format!("cannot inspect {}", path.display()))? {
        Linkage::Static => Ok(image),
        Linkage::Dynamic { interpreter } => bail!(
            "{} is dynamically linked (program interpreter {interpreter}), but the busybox \
             rootfs has no libraries: install a static busybox (apt-get install busybox-static)",
            path.display()
        ),
    }
}

/// Turns the output of `busybox --list-full` (one `dir/applet` path per line, relative to `/`)
/// into `(link, target)` pairs: the link's path relative to the rootfs and a relative target that
/// reaches `bin/busybox` from the link's directory. Sorted, without duplicates, without
/// `bin/busybox` itself.
///
/// Errors: a line that is not a plain relative path (absolute, `.` or `..` components).
fn applet_links(list: &str) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut links = Vec::new();
    for line in list.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let link = Path::new(line);
        if !link.components().all(|c| matches!(c, Component::Normal(_))) {
            bail!("unexpected applet path `{line}` in the output of busybox --list-full");
        }
        if link == Path::new(BUSYBOX) {
            continue;
        }
        let depth = link.components().count() - 1;
        let target = if link.parent() == Some(Path::new("bin")) {
            PathBuf::from("busybox")
        } else {
            let mut target = PathBuf::new();
            target.extend(std::iter::repeat_n("..", depth));
            target.push(BUSYBOX);
            target
        };
        links.push((link.to_path_buf(), target));
    }
    links.sort();
    links.dedup();
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applet_targets_are_relative() {
        let list = "usr/bin/[\nbin/sh\nsbin/ip\nlinuxrc\nusr/sbin/chroot\nbin/busybox\nbin/sh\n";
        let links = applet_links(list).unwrap();
        let pairs: Vec<(&str, &str)> = links
            .iter()
            .map(|(link, target)| (link.to_str().unwrap(), target.to_str().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("bin/sh", "busybox"),
                ("linuxrc", "bin/busybox"),
                ("sbin/ip", "../bin/busybox"),
                ("usr/bin/[", "../../bin/busybox"),
                ("usr/sbin/chroot", "../../bin/busybox"),
            ]
        );
    }

    #[test]
    fn rejects_escaping_applet_paths() {
        assert!(applet_links("/bin/sh\n").is_err());
        assert!(applet_links("bin/../../sh\n").is_err());
        assert!(applet_links("./sh\n").is_err());
    }

    #[test]
    fn user_database_has_root_and_app() {
        assert!(PASSWD.lines().any(|l| l == "root:x:0:0:root:/root:/bin/sh"));
        assert!(PASSWD
            .lines()
            .any(|l| l == "app:x:1000:1000:app:/home/app:/bin/sh"));
        assert_eq!(
            GROUP.lines().collect::<Vec<_>>(),
            ["root:x:0:", "app:x:1000:", "wheel:x:10:app"]
        );
    }
}
