//! Test root filesystems ("fixtures"), built once and cached.
//!
//! [`ensure`] makes `DIR` hold a fixture of the wanted kind:
//!
//! 1. if `DIR/.ocirun-fixture` holds the fixture's version ([`Fixture::version`]), `DIR` is a
//!    cached build and nothing is done;
//! 2. otherwise root is required (debootstrap, chown, device nodes);
//! 3. leftovers of interrupted builds (`DIR.tmp-PID` of a process that no longer exists) are
//!    removed;
//! 4. an existing `DIR` without a valid marker is removed, if it is clearly disposable: it has a
//!    marker of another version, is empty, or lies inside the workspace's `target/` directory;
//!    any other directory is left alone with an error, so a mistyped `DIR` never deletes data;
//! 5. the fixture is built in the sibling `DIR.tmp-PID` (removed again if the build fails);
//! 6. the marker is written last, and `DIR.tmp-PID` is renamed to `DIR`, so `DIR` is either a
//!    complete fixture or absent.
//!
//! No directory is ever removed while something is mounted below it (debootstrap mounts
//! `/proc`, `/sys` and sometimes bind-mounts host devices into its target): removing it would
//! descend into those mounts.

mod busybox;
mod debian;
mod elf;

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::host;

/// Name of the marker file at the top of a finished fixture; it holds [`Fixture::version`].
pub(crate) const MARKER: &str = ".ocirun-fixture";

/// The kinds of test root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Fixture {
    /// A static busybox with one symlink per applet, `/etc/passwd` and `/etc/group` with
    /// `root` and `app` (1000:1000), no `/etc/hosts`, `/etc/hostname` or `/etc/resolv.conf`.
    #[value(help = "a static busybox with its applets and two users")]
    Busybox,
    /// A Debian bookworm `--variant=minbase` tree made by debootstrap.
    #[value(help = "Debian bookworm minbase, made by debootstrap")]
    Debian,
}

impl Fixture {
    /// The fixture's name, also the name of its default directory.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fixture::Busybox => "busybox",
            Fixture::Debian => "debian",
        }
    }

    /// The version written to the marker; bump it when the fixture's contents change, so cached
    /// copies are rebuilt.
    pub(crate) fn version(self) -> &'static str {
        match self {
            Fixture::Busybox => "busybox-1",
            Fixture::Debian => "debian-bookworm-minbase-1",
        }
    }

    fn build(self, sh: &Shell, root: &Path) -> Result<()> {
        match self {
            Fixture::Busybox => busybox::build(sh, root),
            Fixture::Debian => debian::build(sh, root),
        }
    }
}

/// The default directory of a fixture: `<workspace>/target/fixtures/<name>`.
pub(crate) fn default_dir(fixture: Fixture) -> PathBuf {
    host::workspace_root()
        .join("target")
        .join("fixtures")
        .join(fixture.name())
}

/// Makes `dir` (an absolute path) hold a complete `fixture`, building it unless a build of the
/// same version is cached there. Progress goes to stderr.
///
/// Errors: not root when a build is needed, `dir` not disposable (see the module docs), anything
/// mounted below a directory that must be removed, and any failure of the build itself.
pub(crate) fn ensure(sh: &Shell, fixture: Fixture, dir: &Path) -> Result<()> {
    let name = fixture.name();
    let version = fixture.version();
    let (parent, file_name) = split_dir(dir)?;

    let found = read_marker(dir)?;
    if found.as_deref() == Some(version) {
        eprintln!("rootfs {name}: {} is cached ({version})", dir.display());
        return Ok(());
    }
    host::require_root(&format!(
        "building the {name} rootfs needs root (it creates files owned by other users{})",
        if fixture == Fixture::Debian {
            " and runs debootstrap"
        } else {
            ""
        }
    ))?;

    remove_stale_builds(&parent, &file_name)?;
    if fs::symlink_metadata(dir).is_ok() {
        check_disposable(dir, found.as_deref())?;
        match &found {
            Some(old) => eprintln!(
                "rootfs {name}: removing {} (its marker says `{old}`, want `{version}`)",
                dir.display()
            ),
            None => eprintln!(
                "rootfs {name}: removing {} (no {MARKER} marker)",
                dir.display()
            ),
        }
        remove_tree(dir)?;
    }

    fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create directory {}", parent.display()))?;
    let tmp = parent.join(tmp_name(&file_name, std::process::id()));
    if fs::symlink_metadata(&tmp).is_ok() {
        remove_tree(&tmp)?;
    }
    eprintln!("rootfs {name}: building {version} in {}", tmp.display());
    if let Err(err) = build_in(sh, fixture, &tmp) {
        eprintln!("rootfs {name}: build failed, removing {}", tmp.display());
        if let Err(cleanup) = remove_tree(&tmp) {
            eprintln!("rootfs {name}: warning: {cleanup:#}");
        }
        return Err(err);
    }

    if let Err(err) = fs::rename(&tmp, dir) {
        // Another build may have finished first; its result is as good as ours.
        if read_marker(dir).ok().flatten().as_deref() == Some(version) {
            eprintln!(
                "rootfs {name}: {} was built meanwhile by another process, dropping {}",
                dir.display(),
                tmp.display()
            );
            return remove_tree(&tmp);
        }
        return Err(err)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), dir.display()));
    }
    eprintln!("rootfs {name}: ready in {}", dir.display());
    Ok(())
}

/// Whether the machine has the static busybox that the busybox fixture copies.
pub(crate) fn has_static_busybox() -> bool {
    busybox::host_busybox_is_static()
}

/// Creates `tmp`, builds the fixture in it and writes the marker last.
fn build_in(sh: &Shell, fixture: Fixture, tmp: &Path) -> Result<()> {
    mkdir(tmp, 0o755)?;
    fixture.build(sh, tmp)?;
    let mounted = mounts_below(tmp)?;
    if !mounted.is_empty() {
        bail!(
            "the {} build left mounts below {}: {}",
            fixture.name(),
            tmp.display(),
            display_paths(&mounted)
        );
    }
    write_file(
        &tmp.join(MARKER),
        format!("{}\n", fixture.version()).as_bytes(),
        0o644,
    )
}

/// Splits an absolute fixture directory into its parent and its final name.
fn split_dir(dir: &Path) -> Result<(PathBuf, OsString)> {
    if !dir.is_absolute() {
        bail!(
            "fixture directory {} is not an absolute path",
            dir.display()
        );
    }
    let (Some(parent), Some(file_name)) = (dir.parent(), dir.file_name()) else {
        bail!(
            "{} cannot be a fixture directory: it has no parent or no name",
            dir.display()
        );
    };
    if dir.components().any(|c| c == Component::ParentDir) {
        bail!("fixture directory {} must not contain `..`", dir.display());
    }
    Ok((parent.to_path_buf(), file_name.to_os_string()))
}

/// `NAME.tmp-PID`.
fn tmp_name(file_name: &std::ffi::OsStr, pid: u32) -> OsString {
    let mut tmp = file_name.to_os_string();
    tmp.push(format!(".tmp-{pid}"));
    tmp
}

/// The trimmed contents of `dir/.ocirun-fixture`, `None` if there is no such file.
fn read_marker(dir: &Path) -> Result<Option<String>> {
    let path = dir.join(MARKER);
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) if err.kind() == io::ErrorKind::NotADirectory => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Fails unless `dir`, which has no valid marker, may be deleted (see the module docs).
fn check_disposable(dir: &Path, marker: Option<&str>) -> Result<()> {
    if marker.is_some() {
        return Ok(());
    }
    let meta =
        fs::symlink_metadata(dir).with_context(|| format!("cannot inspect {}", dir.display()))?;
    if meta.is_dir() {
        let mut entries =
            fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        if entries.next().is_none() {
            return Ok(());
        }
    }
    let target = host::workspace_root().join("target");
    if let (Ok(target), Ok(dir)) = (fs::canonicalize(target), fs::canonicalize(dir)) {
        if dir.starts_with(&target) && dir != target {
            return Ok(());
        }
    }
    bail!(
        "{} exists and is not an ocirun fixture (no {MARKER} marker); not deleting it: \
         remove it yourself or choose another directory",
        dir.display()
    )
}

/// Removes `NAME.tmp-PID` siblings in `parent` whose process no longer exists.
fn remove_stale_builds(parent: &Path, file_name: &std::ffi::OsStr) -> Result<()> {
    let entries = match fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("cannot list {}", parent.display())),
    };
    let mut prefix = file_name.to_os_string();
    prefix.push(".tmp-");
    let prefix = prefix.into_vec();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", parent.display()))?;
        let entry_name = entry.file_name().into_vec();
        let Some(pid) = entry_name.strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let Some(pid) = std::str::from_utf8(pid)
            .ok()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let path = entry.path();
        eprintln!("removing {} (left by an interrupted build)", path.display());
        remove_tree(&path)?;
    }
    Ok(())
}

/// Removes a file, symlink or directory tree, refusing if anything is mounted at or below it.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    let meta =
        fs::symlink_metadata(path).with_context(|| format!("cannot inspect {}", path.display()))?;
    if !meta.is_dir() {
        return fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()));
    }
    let mounted = mounts_below(path)?;
    if !mounted.is_empty() {
        bail!(
            "refusing to remove {}: something is mounted below it ({}); unmount it first \
             (umount -R {})",
            path.display(),
            display_paths(&mounted),
            mounted[0].display()
        );
    }
    fs::remove_dir_all(path).with_context(|| format!("cannot remove {}", path.display()))
}

/// Mount points (from `/proc/self/mountinfo`) at or below the directory `path`.
fn mounts_below(path: &Path) -> Result<Vec<PathBuf>> {
    const MOUNTINFO: &str = "/proc/self/mountinfo";
    let path =
        fs::canonicalize(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let mountinfo = fs::read(MOUNTINFO).with_context(|| format!("cannot read {MOUNTINFO}"))?;
    Ok(mount_points(&mountinfo)
        .into_iter()
        .filter(|mount| mount.starts_with(&path))
        .collect())
}

/// The mount points (fifth field) of a mountinfo table, with `\NNN` octal escapes decoded.
fn mount_points(mountinfo: &[u8]) -> Vec<PathBuf> {
    mountinfo
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape_octal(field))))
        .collect()
}

fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let escaped = field
            .get(i + 1..i + 4)
            .filter(|_| field[i] == b'\\')
            .filter(|digits| digits.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|digits| {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                u8::try_from(value).ok()
            });
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Creates the directory `path` (its parent must exist) with exactly `mode`, whatever the umask.
pub(crate) fn mkdir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir(path).with_context(|| format!("cannot create directory {}", path.display()))?;
    chmod(path, mode)
}

/// Creates `root/rel` and any missing directories on the way, each new one with `mode`.
pub(crate) fn mkdir_p(root: &Path, rel: &Path, mode: u32) -> Result<()> {
    let mut path = root.to_path_buf();
    for component in rel.components() {
        path.push(component);
        match fs::create_dir(&path) {
            Ok(()) => chmod(&path, mode)?,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot create directory {}", path.display()))
            }
        }
    }
    Ok(())
}

/// Sets the permission bits of `path` to exactly `mode` (setuid, setgid and sticky included).
pub(crate) fn chmod(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set mode {mode:o} on {}", path.display()))
}

/// Creates the new file `path` with `contents` and exactly `mode`.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    chmod(path, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_mountinfo_mount_points() {
        let table = b"22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw\n\
            36 22 0:5 / /tmp/my\\040dir/proc rw - proc proc rw\n\n";
        assert_eq!(
            mount_points(table),
            vec![PathBuf::from("/"), PathBuf::from("/tmp/my dir/proc")]
        );
        assert_eq!(unescape_octal(b"a\\134b\\011"), b"a\\b\t");
        assert_eq!(unescape_octal(b"trailing\\04"), b"trailing\\04");
        assert_eq!(unescape_octal(b"big\\777"), b"big\\777");
    }

    #[test]
    fn splits_fixture_dirs() {
        let (parent, name) = split_dir(Path::new("/tmp/xt-bb/")).unwrap();
        assert_eq!(
            (parent.as_path(), name.as_os_str()),
            (Path::new("/tmp"), "xt-bb".as_ref())
        );
        assert!(split_dir(Path::new("/")).is_err());
        assert!(split_dir(Path::new("relative")).is_err());
        assert!(split_dir(Path::new("/tmp/a/..")).is_err());
        assert_eq!(tmp_name("debian".as_ref(), 42), "debian.tmp-42");
    }

    #[test]
    fn markers_are_trimmed_and_optional() {
        let dir =
            std::env::temp_dir().join(tmp_name("xtask-marker-test".as_ref(), std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_marker(&dir).unwrap(), None);
        fs::write(dir.join(MARKER), "busybox-1\n").unwrap();
        assert_eq!(read_marker(&dir).unwrap().as_deref(), Some("busybox-1"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
