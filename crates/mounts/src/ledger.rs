//! Mount targets shared by the runs on one rootfs, removed by the last run to end.
//!
//! Two runs on the same rootfs may both need `/etc/hosts` as a mount target. If the first to
//! end removed the empty file it had created, the kernel would detach the other container's
//! bind mount on it (an unlinked mount point loses its mounts in every namespace). So the
//! targets go into a ledger per rootfs, and only a run that ends while no other run on that
//! rootfs is active removes them.
//!
//! Files in the ledger directory, per rootfs (keyed by its device and inode numbers):
//! - `KEY.lock`: every active run holds a shared flock(2) on it for its whole life;
//! - `KEY.mutex`: held exclusively while the ledger is read or changed, and while a run takes
//!   or drops its shared lock;
//! - `KEY.json`: the rootfs path and the targets created so far, outermost first.
//!
//! A run takes the mutex, then its shared lock, creates the targets it needs and adds them to
//! the ledger, and drops the mutex. At the end it takes the mutex, drops its shared lock and
//! tries an exclusive, non-blocking lock: if it gets it, no other run is active (none can start
//! while the mutex is held), and it removes every listed target that is still empty. A run that
//! dies drops its shared lock with its file descriptors; its targets are removed by the next
//! last run, or by [`TargetLedger::sweep`] (`ocirun gc`).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::{MountsError, Rootfs};

/// The ledger directory (`/run/ocirun/targets` for the `ocirun` binary).
#[derive(Debug, Clone)]
pub struct TargetLedger {
    dir: PathBuf,
}

/// A run's shared hold on its rootfs's ledger.
#[derive(Debug)]
pub(crate) struct LedgerHold {
    ledger: TargetLedger,
    key: String,
    run_lock: Option<Flock<File>>,
}

/// The exclusive mutex of one rootfs's ledger; released on drop.
#[derive(Debug)]
pub(crate) struct LedgerMutex {
    _lock: Flock<File>,
}

impl TargetLedger {
    /// The ledger kept in `dir` (created, mode 0700, when first used).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn host_error(&self, action: &'static str, path: &Path, source: std::io::Error) -> MountsError {
        MountsError::Host {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    fn key(rootfs: &Rootfs) -> Result<String, MountsError> {
        let meta = std::fs::metadata(rootfs.path()).map_err(|source| MountsError::Host {
            action: "stat",
            path: rootfs.path().to_path_buf(),
            source,
        })?;
        Ok(format!("{:x}-{:x}", meta.dev(), meta.ino()))
    }

    fn open_lock_file(&self, name: &str) -> Result<File, MountsError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.host_error("create directory", &self.dir, e))?;
        let path = self.dir.join(name);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| self.host_error("open", &path, e))
    }

    fn flock(&self, name: &str, arg: FlockArg) -> Result<Option<Flock<File>>, MountsError> {
        let file = self.open_lock_file(name)?;
        match Flock::lock(file, arg) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => {
                Err(self.host_error("flock", &self.dir.join(name), std::io::Error::from(errno)))
            }
        }
    }

    /// Takes the mutex of `rootfs`'s ledger, then a shared hold for the run. Returns both:
    /// drop the mutex once the run's targets are [`Self::record`]ed.
    pub(crate) fn enter(&self, rootfs: &Rootfs) -> Result<(LedgerMutex, LedgerHold), MountsError> {
        let key = Self::key(rootfs)?;
        let mutex = self.mutex(&key)?;
        let run_lock = self.flock(&format!("{key}.lock"), FlockArg::LockShared)?;
        Ok((
            mutex,
            LedgerHold {
                ledger: self.clone(),
                key,
                run_lock,
            },
        ))
    }

    fn mutex(&self, key: &str) -> Result<LedgerMutex, MountsError> {
        let lock = self
            .flock(&format!("{key}.mutex"), FlockArg::LockExclusive)?
            .expect("a blocking flock either locks or fails");
        Ok(LedgerMutex { _lock: lock })
    }

    fn list_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// Reads the ledger of `key`: the rootfs path and its targets.
    fn read(&self, key: &str) -> Result<(Option<PathBuf>, Vec<PathBuf>), MountsError> {
        let path = self.list_path(key);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok((None, Vec::new())),
            Err(e) => return Err(self.host_error("read", &path, e)),
        };
        let mut lines = text.lines();
        let rootfs = lines.next().filter(|l| !l.is_empty()).map(PathBuf::from);
        Ok((
            rootfs,
            lines.filter(|l| !l.is_empty()).map(PathBuf::from).collect(),
        ))
    }

    fn write(&self, key: &str, rootfs: &Path, targets: &[PathBuf]) -> Result<(), MountsError> {
        let path = self.list_path(key);
        if targets.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    Err(self.host_error("remove", &path, e))
                }
                _ => Ok(()),
            };
        }
        let mut text = format!("{}\n", rootfs.display());
        for t in targets {
            text.push_str(&format!("{}\n", t.display()));
        }
        let tmp = self.dir.join(format!(".{key}.tmp"));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| self.host_error("write", &path, e))
    }

    /// Adds `created` to the ledger of the held rootfs (the caller holds the mutex).
    pub(crate) fn record(
        &self,
        hold: &LedgerHold,
        rootfs: &Rootfs,
        created: &[PathBuf],
    ) -> Result<(), MountsError> {
        if created.is_empty() {
            return Ok(());
        }
        let (_, mut targets) = self.read(&hold.key)?;
        for path in created {
            if !targets.contains(path) {
                targets.push(path.clone());
            }
        }
        self.write(&hold.key, rootfs.path(), &targets)
    }

    /// If no run is active on the rootfs of `key` (the caller holds the mutex and no shared
    /// lock of its own), removes its listed targets that are still empty. Returns how many it
    /// removed.
    fn remove_if_last(&self, key: &str, rootfs: Option<&Rootfs>) -> Result<usize, MountsError> {
        let Some(_exclusive) =
            self.flock(&format!("{key}.lock"), FlockArg::LockExclusiveNonblock)?
        else {
            return Ok(0);
        };
        let (recorded, targets) = self.read(key)?;
        let opened;
        let rootfs = match (rootfs, recorded) {
            (Some(rootfs), _) => rootfs,
            (None, Some(path)) => match Rootfs::open_unchecked(&path) {
                Ok(r) => {
                    opened = r;
                    &opened
                }
                // The rootfs is gone: so are its targets.
                Err(_) => return self.write(key, &path, &[]).map(|()| 0),
            },
            (None, None) => return Ok(0),
        };
        let mut removed = 0;
        for path in targets.iter().rev() {
            if rootfs.remove_if_empty(path) {
                removed += 1;
            } else {
                tracing::debug!(path = %path.display(), "mount target kept: not empty");
            }
        }
        self.write(key, rootfs.path(), &[])?;
        Ok(removed)
    }

    /// Ends a run's hold: adds `created` to the ledger (targets of a run whose preparation
    /// failed before they were recorded), drops its shared lock and, if it was the last run on
    /// the rootfs, removes the still-empty targets.
    pub(crate) fn leave(
        &self,
        mut hold: LedgerHold,
        rootfs: &Rootfs,
        created: &[PathBuf],
    ) -> Result<usize, MountsError> {
        let _mutex = self.mutex(&hold.key)?;
        self.record(&hold, rootfs, created)?;
        drop(hold.run_lock.take());
        self.remove_if_last(&hold.key, Some(rootfs))
    }

    /// For every rootfs in the ledger on which no run is active, removes the targets that are
    /// still empty (what runs that died left). Returns how many it removed.
    ///
    /// # Errors
    /// [`MountsError::Host`] if the ledger cannot be read or changed.
    pub fn sweep(&self) -> Result<usize, MountsError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(self.host_error("read directory", &self.dir, e)),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(key) = name.strip_suffix(".json") else {
                continue;
            };
            let _mutex = self.mutex(key)?;
            removed += self.remove_if_last(key, None)?;
        }
        Ok(removed)
    }
}

impl LedgerHold {
    pub(crate) fn ledger(&self) -> &TargetLedger {
        &self.ledger
    }
}
