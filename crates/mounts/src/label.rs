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
pub const RELABEL_REFUSED: [&str; 24] = [
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
pub fn selinux_enabled() -> bool {
    selinux::kernel_support() != selinux::KernelSupport::Unsupported
}

/// The label for a volume relabelled with `relabel`, from the container's mount label
/// (`user:role:type:level`): `z` keeps user, role and type and sets the level to `s0`; `Z`
/// is the mount label itself.
pub fn relabel_context(mount_label: &str, relabel: Relabel) -> String {
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

/// Gives `path` and everything below it (symlinks not followed) the owner `uid:gid`.
///
/// # Errors
/// [`MountsError::Host`] naming the path that failed.
pub(crate) fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), MountsError> {
    walk(path, &mut |p| {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))
    })
    .map_err(|source| MountsError::Host {
        action: "chown (U)",
        path: path.to_path_buf(),
        source,
    })
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
        chown_tree(dir.path(), 1234, 5678).unwrap();
        for p in ["", "sub", "sub/f"] {
            let m = std::fs::metadata(dir.path().join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), (1234, 5678), "{p}");
        }
        let m = std::fs::symlink_metadata(dir.path().join("link")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1234, 5678));
        let m = std::fs::metadata(outside.path()).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "not followed");
    }
}
