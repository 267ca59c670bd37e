//! Named volumes and cache directories: state that outlives a run.
//!
//! A named volume lives in a directory the caller chooses (`ROOT/volumes/NAME` for the
//! `ocirun` binary, ocirun-runtime-driver's `StateLayout::volume_dir`):
//! - `_data/`: the data, bind-mounted into the containers;
//! - `created`: when it was created (RFC 3339, UTC);
//! - `lock`: every run that uses the volume holds a shared flock(2) on it for its whole life;
//!   [`VolumeStore::remove`] takes it exclusively, without waiting, so a volume in use is never
//!   removed.
//!
//! A volume is created on first use ([`open_volume`], from [`prepare`](crate::prepare)): in a
//! temporary directory beside it, filled with the rootfs's content at the mount's destination
//! (podman's copy-up, the image-volume copy), then renamed into place, so that a half-made
//! volume is never seen. Two runs that create one volume at once both copy; the first rename
//! wins and the other copy is thrown away.
//!
//! A cache mount's directory (`ROOT/cache/KEY`) is created on first use with its `uid=`,
//! `gid=` and `mode=`; its lock file `.KEY.lock` beside it is held shared by the runs of
//! `sharing=shared`, exclusively by those of `sharing=locked` (which wait for it) and of
//! `sharing=private` (which, when it is taken, use a throw-away directory instead).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use crate::copy::{copy_image_volume, Interrupt};
use crate::{CacheSharing, MountsError, Rootfs};

/// The data directory of the volume whose directory is `dir`: `dir/_data`.
pub(crate) fn volume_data(dir: &Path) -> PathBuf {
    dir.join("_data")
}

fn host<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> MountsError + 'a {
    move |source| MountsError::Host {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `file` is still the file at `path` (not unlinked or replaced).
fn still_linked(path: &Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn create_dir_0700(path: &Path) -> Result<(), MountsError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(host("create directory", path))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `time` (UTC).
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A run's shared hold on a named volume: while it lives, the volume is not removed.
#[derive(Debug)]
pub(crate) struct VolumeHold {
    _lock: Flock<File>,
}

/// The owner and the copy-up of a volume that is created for a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewVolume<'a> {
    /// The rootfs whose content at `destination` fills it (with `copy`).
    pub(crate) rootfs: &'a Rootfs,
    /// The mount's destination.
    pub(crate) destination: &'a Path,
    /// Whether to copy the rootfs's content in.
    pub(crate) copy: bool,
    /// The run's uid and gid, which a volume gets when the rootfs has nothing at the
    /// destination (podman's rule).
    pub(crate) owner: (u32, u32),
}

/// Opens the volume at `dir` for a run, creating it first when it does not exist and
/// `create` allows (as `new` says; the copy-up asks `interrupt` whether to give up), and
/// takes the run's shared hold on it.
///
/// # Errors
/// [`MountsError::NoSuchVolume`] when it does not exist and `create` is false; the
/// [`MountsError`] of the copy (`Cancelled` when given up; nothing of the new volume is
/// left then) or of the host paths.
pub(crate) fn open_volume(
    dir: &Path,
    name: &str,
    create: bool,
    new: NewVolume<'_>,
    interrupt: &mut Interrupt<'_>,
) -> Result<VolumeHold, MountsError> {
    loop {
        if !dir.exists() {
            if !create {
                return Err(MountsError::NoSuchVolume(name.to_owned()));
            }
            create_dir_0700(dir.parent().unwrap_or(Path::new("/")))?;
            create_volume(dir, name, new, interrupt)?;
        }
        let lock_path = dir.join("lock");
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc_cloexec())
            .open(&lock_path)
        {
            Ok(file) => file,
            // Removed meanwhile: make it again.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(host("open", &lock_path)(e)),
        };
        let lock = Flock::lock(file, FlockArg::LockShared)
            .map_err(|(_, errno)| host("flock", &lock_path)(std::io::Error::from(errno)))?;
        if still_linked(&lock_path, &lock) {
            return Ok(VolumeHold { _lock: lock });
        }
    }
}

fn libc_cloexec() -> i32 {
    nix::fcntl::OFlag::O_CLOEXEC.bits()
}

/// Makes the volume `dir` through a temporary directory beside it.
fn create_volume(
    dir: &Path,
    name: &str,
    new: NewVolume<'_>,
    interrupt: &mut Interrupt<'_>,
) -> Result<(), MountsError> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    remove_tree(&tmp)?;
    create_dir_0700(&tmp)?;
    let result = (|| {
        let data = volume_data(&tmp);
        let rootfs_has = new.rootfs.kind(new.destination)?.is_some();
        if new.copy && rootfs_has {
            copy_image_volume(new.rootfs, new.destination, &data, interrupt)?;
        } else {
            DirBuilder::new()
                .mode(0o755)
                .create(&data)
                .map_err(host("create directory", &data))?;
            std::fs::set_permissions(&data, PermissionsExt::from_mode(0o755))
                .map_err(host("chmod", &data))?;
            if !rootfs_has {
                std::os::unix::fs::chown(&data, Some(new.owner.0), Some(new.owner.1))
                    .map_err(host("chown", &data))?;
            }
        }
        let created = tmp.join("created");
        std::fs::write(&created, format!("{}\n", rfc3339(SystemTime::now())))
            .map_err(host("write", &created))?;
        let lock = tmp.join("lock");
        std::fs::write(&lock, "").map_err(host("write", &lock))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match std::fs::rename(&tmp, dir) {
        Ok(()) => Ok(()),
        // Another run made it first: use that one.
        Err(e) if dir.exists() => {
            tracing::debug!(error = %e, volume = name, "created by another run meanwhile");
            remove_tree(&tmp)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(host("rename", &tmp)(e))
        }
    }
}

fn remove_tree(path: &Path) -> Result<(), MountsError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(host("remove", path)(e)),
        _ => Ok(()),
    }
}

/// One named volume, as [`VolumeStore::list`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VolumeInfo {
    /// The name.
    pub name: String,
    /// The data directory, bind-mounted into containers (`DIR/_data`).
    pub mountpoint: PathBuf,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// Whether a live run uses it.
    pub in_use: bool,
}

/// Why [`VolumeStore::remove`] removed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeRemoveError {
    /// There is no such volume.
    #[error("no volume with name {0:?} found")]
    NotFound(String),
    /// A live run uses it.
    #[error("volume {0:?} is being used by a running container")]
    InUse(String),
    /// The host refused.
    #[error(transparent)]
    Host(#[from] MountsError),
}

/// The directory of named volumes (`ROOT/volumes` for the `ocirun` binary), for `ocirun
/// volume`: each subdirectory whose name does not start with `.` is a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeStore {
    dir: PathBuf,
}

impl VolumeStore {
    /// The store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The volume `name`'s directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The volumes, sorted by name.
    ///
    /// # Errors
    /// [`MountsError::Host`] when the store cannot be read.
    pub fn list(&self) -> Result<Vec<VolumeInfo>, MountsError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(host("read directory", &self.dir)(e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names.iter().filter_map(|n| self.get(n)).collect())
    }

    /// The volume `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<VolumeInfo> {
        let dir = self.path(name);
        if !dir.join("lock").is_file() {
            return None;
        }
        let created_at = std::fs::read_to_string(dir.join("created"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let in_use = File::open(dir.join("lock"))
            .ok()
            .is_some_and(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err());
        Some(VolumeInfo {
            name: name.to_owned(),
            mountpoint: volume_data(&dir),
            created_at,
            in_use,
        })
    }

    /// Removes the volume `name` and its data, unless a live run uses it.
    ///
    /// # Errors
    /// [`VolumeRemoveError::NotFound`], [`VolumeRemoveError::InUse`], or the host's error.
    pub fn remove(&self, name: &str) -> Result<(), VolumeRemoveError> {
        let dir = self.path(name);
        let lock_path = dir.join("lock");
        let file = match File::open(&lock_path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(VolumeRemoveError::NotFound(name.to_owned()))
            }
            Err(e) => return Err(host("open", &lock_path)(e).into()),
        };
        let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            return Err(VolumeRemoveError::InUse(name.to_owned()));
        };
        // Out of the way first, so that no run finds it half removed; a run that opened the
        // lock meanwhile sees it unlinked and makes a new volume.
        let gone = self
            .dir
            .join(format!(".{name}.{}.removed", std::process::id()));
        std::fs::rename(&dir, &gone).map_err(host("rename", &dir))?;
        drop(lock);
        remove_tree(&gone)?;
        Ok(())
    }

    /// Removes every volume that no live run uses, and what runs that died while they made or
    /// removed a volume left (`.NAME.PID.tmp`, `.NAME.PID.removed` whose process is gone);
    /// returns the names of the volumes.
    ///
    /// # Errors
    /// [`MountsError::Host`] when the store cannot be read or a volume cannot be removed.
    pub fn prune(&self) -> Result<Vec<String>, MountsError> {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(pid) = leftover_pid(&name) {
                    if !Path::new("/proc").join(pid.to_string()).exists() {
                        remove_tree(&entry.path())?;
                    }
                }
            }
        }
        let mut removed = Vec::new();
        for volume in self.list()? {
            match self.remove(&volume.name) {
                Ok(()) => removed.push(volume.name),
                Err(VolumeRemoveError::InUse(_) | VolumeRemoveError::NotFound(_)) => {}
                Err(VolumeRemoveError::Host(e)) => return Err(e),
            }
        }
        Ok(removed)
    }
}

/// The pid in the name of what a run leaves while it makes or removes a volume:
/// `.NAME.PID.tmp` or `.NAME.PID.removed`.
fn leftover_pid(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let rest = rest
        .strip_suffix(".tmp")
        .or_else(|| rest.strip_suffix(".removed"))?;
    let (_, pid) = rest.rsplit_once('.')?;
    pid.parse().ok()
}

/// A run's hold on a cache directory: a lock on its lock file (none for a throw-away
/// directory).
#[derive(Debug)]
pub struct CacheHold {
    _lock: Option<Flock<File>>,
}

/// The lock file of the cache directory `dir`: `.KEY.lock` beside it.
fn cache_lock_path(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.lock"))
}

/// How long a run waits between two tries of a cache lock that another run holds.
const CACHE_LOCK_POLL: Duration = Duration::from_millis(50);

/// Takes the lock a run of `sharing` needs on the cache directory `dir`: shared, or
/// exclusive (`locked`, `private`), waiting while another run holds it and `cancelled` says
/// no. Returns `None` for `private` when another run holds it: the run then takes a
/// throw-away directory.
///
/// # Errors
/// [`MountsError::Host`] for the lock file; [`MountsError::Cancelled`] when `cancelled`
/// returned true while waiting.
pub(crate) fn claim_cache(
    dir: &Path,
    sharing: CacheSharing,
    cancelled: &mut dyn FnMut() -> bool,
) -> Result<Option<CacheHold>, MountsError> {
    let lock_path = cache_lock_path(dir);
    create_dir_0700(dir.parent().unwrap_or(Path::new("/")))?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(host("open", &lock_path))?;
    let arg = match sharing {
        CacheSharing::Shared => FlockArg::LockSharedNonblock,
        CacheSharing::Locked | CacheSharing::Private => FlockArg::LockExclusiveNonblock,
    };
    let mut file = file;
    loop {
        match Flock::lock(file, arg) {
            Ok(lock) => {
                return Ok(Some(CacheHold { _lock: Some(lock) }));
            }
            Err((back, nix::errno::Errno::EWOULDBLOCK)) => {
                if sharing == CacheSharing::Private {
                    return Ok(None);
                }
                if cancelled() {
                    return Err(MountsError::Cancelled(format!(
                        "waiting for the cache {}",
                        dir.display()
                    )));
                }
                tracing::debug!(cache = %dir.display(), "in use by another run: waiting");
                std::thread::sleep(CACHE_LOCK_POLL);
                file = back;
            }
            Err((_, errno)) => return Err(host("flock", &lock_path)(std::io::Error::from(errno))),
        }
    }
}

/// Creates the cache directory `dir` when it does not exist, owned by `owner` with `mode`,
/// through a temporary directory beside it.
pub(crate) fn ensure_cache_dir(
    dir: &Path,
    owner: (u32, u32),
    mode: u32,
) -> Result<(), MountsError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    create_dir_0700(parent)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    remove_tree(&tmp)?;
    std::fs::create_dir(&tmp).map_err(host("create directory", &tmp))?;
    let made = (|| {
        std::os::unix::fs::chown(&tmp, Some(owner.0), Some(owner.1))
            .map_err(host("chown", &tmp))?;
        std::fs::set_permissions(&tmp, PermissionsExt::from_mode(mode)).map_err(host("chmod", &tmp))
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_dir(&tmp);
        return Err(e);
    }
    match std::fs::rename(&tmp, dir) {
        Ok(()) => Ok(()),
        Err(_) if dir.is_dir() => remove_tree(&tmp),
        Err(e) => {
            let _ = std::fs::remove_dir(&tmp);
            Err(host("rename", &tmp)(e))
        }
    }
}

impl CacheHold {
    /// A hold without a lock, for a throw-away directory.
    pub(crate) fn none() -> Self {
        Self { _lock: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661)),
            "2000-02-29T01:01:01Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_735_689_599)),
            "2024-12-31T23:59:59Z"
        );
    }

    fn new_volume<'a>(rootfs: &'a Rootfs, dst: &'a Path, copy: bool) -> NewVolume<'a> {
        let me = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        NewVolume {
            rootfs,
            destination: dst,
            copy,
            owner: me,
        }
    }

    #[test]
    fn volumes_are_made_once_filled_from_the_rootfs_and_kept() {
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("srv/data")).unwrap();
        std::fs::write(root.path().join("srv/data/seed"), "image").unwrap();
        let rootfs = Rootfs::open(root.path()).unwrap();
        let store = VolumeStore::new(state.path().join("volumes"));
        let dir = store.path("v1");
        let hold = open_volume(
            &dir,
            "v1",
            true,
            new_volume(&rootfs, Path::new("/srv/data"), true),
            &mut Interrupt::never(),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("_data/seed")).unwrap(),
            "image"
        );
        std::fs::write(dir.join("_data/seed"), "written").unwrap();
        // A second run finds it and copies nothing.
        let second = open_volume(
            &dir,
            "v1",
            true,
            new_volume(&rootfs, Path::new("/srv/data"), true),
            &mut Interrupt::never(),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("_data/seed")).unwrap(),
            "written"
        );
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "v1");
        assert!(listed[0].in_use);
        assert_eq!(listed[0].mountpoint, dir.join("_data"));
        assert!(listed[0].created_at.ends_with('Z'));
        assert!(matches!(
            store.remove("v1"),
            Err(VolumeRemoveError::InUse(_))
        ));
        assert_eq!(store.prune().unwrap(), Vec::<String>::new());
        drop((hold, second));
        assert!(!store.list().unwrap()[0].in_use);
        store.remove("v1").unwrap();
        assert!(store.list().unwrap().is_empty());
        assert_eq!(
            store.remove("v1").unwrap_err().to_string(),
            "no volume with name \"v1\" found"
        );
        assert_eq!(
            std::fs::read_dir(state.path().join("volumes"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn prune_removes_what_dead_runs_left() {
        assert_eq!(leftover_pid(".data.123.tmp"), Some(123));
        assert_eq!(leftover_pid(".a.b.7.removed"), Some(7));
        assert_eq!(leftover_pid(".data.tmp"), None);
        assert_eq!(leftover_pid("data"), None);
        let state = tempfile::tempdir().unwrap();
        // No process has pid 2^31 - 2: it is above pid_max.
        let dead = state.path().join(".v.2147483646.tmp");
        std::fs::create_dir_all(dead.join("_data")).unwrap();
        let alive = state.path().join(format!(".v.{}.tmp", std::process::id()));
        std::fs::create_dir(&alive).unwrap();
        let store = VolumeStore::new(state.path());
        assert!(store.prune().unwrap().is_empty());
        assert!(!dead.exists());
        assert!(alive.exists());
    }

    #[test]
    fn nocopy_nocreate_and_a_missing_destination() {
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("d")).unwrap();
        std::fs::write(root.path().join("d/f"), "x").unwrap();
        let rootfs = Rootfs::open(root.path()).unwrap();
        let store = VolumeStore::new(state.path());
        let err = open_volume(
            &store.path("v"),
            "v",
            false,
            new_volume(&rootfs, Path::new("/d"), true),
            &mut Interrupt::never(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no volume with name \"v\" found (nocreate)"
        );
        let hold = open_volume(
            &store.path("v"),
            "v",
            true,
            new_volume(&rootfs, Path::new("/d"), false),
            &mut Interrupt::never(),
        )
        .unwrap();
        assert_eq!(std::fs::read_dir(store.path("v/_data")).unwrap().count(), 0);
        drop(hold);
        let hold = open_volume(
            &store.path("w"),
            "w",
            true,
            new_volume(&rootfs, Path::new("/none"), true),
            &mut Interrupt::never(),
        )
        .unwrap();
        let meta = std::fs::metadata(store.path("w/_data")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o755);
        drop(hold);
        assert_eq!(store.prune().unwrap(), ["v", "w"]);
    }

    #[test]
    fn cache_locks_follow_the_sharing() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("cache/k");
        let mut never = || false;
        let shared = claim_cache(&dir, CacheSharing::Shared, &mut never).unwrap();
        assert!(shared.is_some());
        let also = claim_cache(&dir, CacheSharing::Shared, &mut never).unwrap();
        assert!(also.is_some());
        // private: taken, so a throw-away directory.
        assert!(claim_cache(&dir, CacheSharing::Private, &mut never)
            .unwrap()
            .is_none());
        // locked: waits until cancelled.
        let mut tries = 0;
        let mut give_up = || {
            tries += 1;
            tries > 2
        };
        let err = claim_cache(&dir, CacheSharing::Locked, &mut give_up).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("interrupted while waiting for the cache"),
            "{err}"
        );
        drop((shared, also));
        assert!(claim_cache(&dir, CacheSharing::Locked, &mut never)
            .unwrap()
            .is_some());
        ensure_cache_dir(
            &dir,
            (
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            ),
            0o750,
        )
        .unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o750);
        ensure_cache_dir(&dir, (0, 0), 0o700).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o750);
    }
}
