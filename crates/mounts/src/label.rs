//! What `U`, `z` and `Z` do to a volume's source on the host before the run.
//!
//! - `U` (podman-run(1)): the source and everything below it (symlinks not followed) get the
//!   run's uid and gid as owner.
//! - `z` / `Z`: the source and everything below it get an SELinux label that the container
//!   may use: `z` the container file type at level `s0` (every container may share it), `Z`
//!   the container's own mount label (`linux.mountLabel`) with its categories. Where SELinux
//!   is off (libselinux's `is_selinux_enabled()` is 0) this is a no-op, as it is for
//!   podman; with `label=disable` (no mount label) too. As in go-selinux's `Relabel`, system
//!   directories such as `/`, `/etc` or `/usr` are refused.

use std::path::Path;

use crate::{MountsError, Relabel};

/// Host directories that `z`/`Z` refuse to relabel (go-selinux's exclusion list).
pub(crate) const RELABEL_REFUSED: [&str; 24] = [
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/etc/passwd",
    "/etc/pki",
    "/etc/shadow",
    "/home",
    "/lib",
    "/lib64",
    "/media",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/var/lib",
    "/var/log",
];

/// Whether SELinux is enabled on this host (libselinux's `is_selinux_enabled()`).
pub(crate) fn selinux_enabled() -> bool {
    selinux::kernel_support() != selinux::KernelSupport::Unsupported
}

/// The label for a volume relabelled with `relabel`, from the container's mount label
/// (`user:role:type:level`): `z` keeps user, role and type and sets the level to `s0`; `Z`
/// is the mount label itself.
pub(crate) fn relabel_context(mount_label: &str, relabel: Relabel) -> String {
    match relabel {
        Relabel::Private => mount_label.to_owned(),
        Relabel::Shared => {
            let fields: Vec<&str> = mount_label.splitn(4, ':').collect();
            match fields.as_slice() {
                [user, role, typ, _] | [user, role, typ] => format!("{user}:{role}:{typ}:s0"),
                _ => mount_label.to_owned(),
            }
        }
    }
}

/// Relabels `path` (recursively, symlinks not followed) for `relabel`, given the spec's
/// mount label. A no-op where SELinux is off or there is no mount label.
///
/// # Errors
/// [`MountsError::Relabel`] for a refused system directory or a failing `lsetfilecon`.
pub(crate) fn relabel(
    path: &Path,
    mount_label: Option<&str>,
    relabel: Relabel,
) -> Result<(), MountsError> {
    let Some(mount_label) = mount_label.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    if !selinux_enabled() {
        return Ok(());
    }
    if RELABEL_REFUSED.iter().any(|p| Path::new(p) == path) {
        return Err(MountsError::Relabel {
            path: path.to_path_buf(),
            reason: "relabelling a system directory is not allowed".to_owned(),
        });
    }
    let context = relabel_context(mount_label, relabel);
    let c_context = std::ffi::CString::new(context.clone()).map_err(|_| MountsError::Relabel {
        path: path.to_path_buf(),
        reason: format!("label {context:?} contains a NUL byte"),
    })?;
    let label = selinux::SecurityContext::from_c_str(&c_context, false);
    walk(path, &mut |p| {
        label
            .set_for_path(p, false, false)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
    .map_err(|e| MountsError::Relabel {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Gives `path` and everything below it the owner `uid:gid` (`U`). Symlinks are never
/// followed (a symlink itself gets the owner): each directory is opened relative to its
/// parent's descriptor with `O_NOFOLLOW`, each entry changed with `fchownat(AT_SYMLINK_NOFOLLOW)`;
/// an entry that already has the owner is left untouched, so its set-id bits and file
/// capabilities (which a chown clears) stay. The caller refuses system directories
/// ([`CHOWN_REFUSED`](crate::user_mount::CHOWN_REFUSED)) before anything is touched.
///
/// # Errors
/// [`MountsError::Host`] naming the entry that failed.
pub(crate) fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), MountsError> {
    use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
    use nix::sys::stat::{fstatat, Mode, SFlag};
    use nix::unistd::{fchownat, Gid, Uid};
    use std::os::fd::{AsFd, BorrowedFd};

    fn chown_entry(
        dir: BorrowedFd<'_>,
        name: &std::ffi::CStr,
        at: &Path,
        owner: (u32, u32),
        depth: usize,
    ) -> Result<(), MountsError> {
        let fail = |source: nix::Error| MountsError::Host {
            action: "chown (U)",
            path: at.to_path_buf(),
            source: source.into(),
        };
        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(fail)?;
        if (st.st_uid, st.st_gid) != owner {
            fchownat(
                dir,
                name,
                Some(Uid::from_raw(owner.0)),
                Some(Gid::from_raw(owner.1)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(fail)?;
        }
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFDIR {
            return Ok(());
        }
        if depth > 4096 {
            return Err(fail(nix::Error::ELOOP));
        }
        let child = openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(fail)?;
        let mut names = Vec::new();
        {
            let mut listing =
                nix::dir::Dir::from_fd(child.try_clone().map_err(|e| MountsError::Host {
                    action: "chown (U)",
                    path: at.to_path_buf(),
                    source: e,
                })?)
                .map_err(fail)?;
            for entry in listing.iter() {
                let entry = entry.map_err(fail)?;
                let n = entry.file_name();
                if n.to_bytes() != b"." && n.to_bytes() != b".." {
                    names.push(n.to_owned());
                }
            }
        }
        for n in names {
            use std::os::unix::ffi::OsStrExt;
            let below = at.join(std::ffi::OsStr::from_bytes(n.to_bytes()));
            chown_entry(child.as_fd(), &n, &below, owner, depth + 1)?;
        }
        Ok(())
    }

    use std::os::unix::ffi::OsStrExt;
    let c_path =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| MountsError::Host {
            action: "chown (U)",
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
    chown_entry(AT_FDCWD, &c_path, path, (uid, gid), 0)
}

/// Calls `f` on `path` and, when it is a directory (not a symlink to one), on everything below.
fn walk(path: &Path, f: &mut dyn FnMut(&Path) -> std::io::Result<()>) -> std::io::Result<()> {
    f(path)?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            walk(&entry?.path(), f)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn contexts_for_z_and_capital_z() {
        let label = "system_u:object_r:container_file_t:s0:c12,c34";
        assert_eq!(
            relabel_context(label, Relabel::Shared),
            "system_u:object_r:container_file_t:s0"
        );
        assert_eq!(relabel_context(label, Relabel::Private), label);
    }

    #[test]
    fn relabel_is_a_no_op_without_selinux_or_label() {
        assert!(!selinux_enabled(), "this test host runs without SELinux");
        let dir = tempfile::tempdir().unwrap();
        relabel(
            dir.path(),
            Some("system_u:object_r:container_file_t:s0:c1,c2"),
            Relabel::Private,
        )
        .unwrap();
        relabel(Path::new("/etc"), None, Relabel::Shared).unwrap();
    }

    #[test]
    fn chown_reaches_everything_but_symlink_targets() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), "").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let before = std::fs::metadata(outside.path()).unwrap();
        // Another owner where the test may give one (as root), its own otherwise.
        let owner = if nix::unistd::geteuid().is_root() {
            (1234, 5678)
        } else {
            (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            )
        };
        chown_tree(dir.path(), owner.0, owner.1).unwrap();
        for p in ["", "sub", "sub/f"] {
            let m = std::fs::metadata(dir.path().join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), owner, "{p}");
        }
        let m = std::fs::symlink_metadata(dir.path().join("link")).unwrap();
        assert_eq!((m.uid(), m.gid()), owner);
        let m = std::fs::metadata(outside.path()).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (before.uid(), before.gid()),
            "not followed"
        );
    }

    #[test]
    fn an_owner_that_is_right_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tool");
        std::fs::write(&f, "").unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
        let m = std::fs::metadata(&f).unwrap();
        chown_tree(dir.path(), m.uid(), m.gid()).unwrap();
        let after = std::fs::metadata(&f).unwrap();
        assert_eq!(after.mode() & 0o7777, 0o4755, "the set-uid bit stays");
        assert_eq!(after.ctime_nsec(), m.ctime_nsec(), "not changed at all");
    }
}
