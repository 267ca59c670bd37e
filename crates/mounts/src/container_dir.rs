//! The container's own directory: where image-volume copies, secrets copies and throw-away
//! overlay directories live (for the `ocirun` binary, `ROOT/containers/NAME` for a named
//! container and `ROOT/containers/ID` for a run without a name).
//!
//! Layout of one container directory:
//! - `volumes/KEY`: the copy of the image volume at a path (KEY is the path, escaped), made on
//!   first use and kept for the directory's life;
//! - `secrets/KEY`: the copy of a mounts.conf source, made afresh for each run;
//! - `overlay/N/{upper,work}`: the throw-away overlay directories of the Nth user mount,
//!   removed at the start and at the end of each run;
//! - `cache/N`: the throw-away directory of the Nth user mount, a `sharing=private` cache
//!   that another run was using, removed at the start and at the end of each run.
//!
//! A persistent directory ([`ContainerDir::persistent`], a named container's) outlives the
//! run, so its image-volume copies (and what the command wrote into them) are there for the
//! next run with that name; removing the directory resets it. An ephemeral directory
//! ([`ContainerDir::ephemeral`], a run without a name) is removed when the run ends. Each
//! ephemeral directory `DIR/KEY` has a lock file beside it, `DIR/.KEY.lock`, on which its run
//! holds an exclusive flock(2) for its whole life; [`ContainerStore::sweep`] removes the
//! directories of `DIR` whose lock is free (their run died), as `ocirun gc` does.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::MountsError;

/// A directory that holds ephemeral container directories (`ROOT/containers` for the `ocirun`
/// binary), for [`ContainerStore::sweep`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStore {
    dir: PathBuf,
}

/// One container's directory (not created until a run needs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDir {
    path: PathBuf,
    persistent: bool,
}

/// A container directory in use by a run: created, locked if ephemeral; dropping it removes
/// an ephemeral directory, or a persistent one's throw-away overlay directories.
#[derive(Debug)]
pub(crate) struct ContainerDirGuard {
    dir: ContainerDir,
    lock: Option<(PathBuf, Flock<File>)>,
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

fn remove_tree(path: &Path) -> Result<(), MountsError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(host("remove", path)(e)),
        _ => Ok(()),
    }
}

/// The escaped form of a container path, used as a file name: `/var/lib/data` ->
/// `var-lib-data`. ASCII letters, digits, `_` and `.` (not first) stay; `/` becomes `-`;
/// every other byte is `%XX`. Different paths give different names.
pub(crate) fn escape_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let trimmed = bytes.strip_prefix(b"/").unwrap_or(bytes);
    let mut out = String::new();
    for (i, &b) in trimmed.iter().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i > 0 => out.push('.'),
            b if b.is_ascii_alphanumeric() || b == b'_' => out.push(char::from(b)),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl ContainerStore {
    /// The store in `dir` (created, mode 0700, when first used).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Removes the ephemeral directories whose run is gone (their lock is free). Returns how
    /// many it removed.
    ///
    /// # Errors
    /// [`MountsError::Host`] when the store cannot be read or a directory cannot be removed.
    pub fn sweep(&self) -> Result<usize, MountsError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(host("read directory", &self.dir)(e)),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".lock")) else {
                continue;
            };
            let lock_path = entry.path();
            let Ok(file) = File::open(&lock_path) else {
                continue;
            };
            let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
                continue; // its run is alive
            };
            if !still_linked(&lock_path, &lock) {
                continue;
            }
            remove_tree(&self.dir.join(id))?;
            std::fs::remove_file(&lock_path).map_err(host("remove", &lock_path))?;
            removed += 1;
        }
        Ok(removed)
    }
}

/// Whether `file` is still the file at `path` (not unlinked or replaced by a sweep).
fn still_linked(path: &Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl ContainerDir {
    /// A container directory at `path` that outlives the run (a named container's). The caller
    /// chooses the path (ocirun-runtime-driver's `StateLayout::container_dir` for the `ocirun`
    /// binary) and makes sure that only one run uses it at a time.
    pub fn persistent(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            persistent: true,
        }
    }

    /// A container directory at `path` for one run, removed when the run ends; its lock file
    /// is `.NAME.lock` beside it, for [`ContainerStore::sweep`] of its parent.
    pub fn ephemeral(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            persistent: false,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it outlives the run (a named container's).
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Where the copy of the image volume at `destination` lives.
    pub fn volume_path(&self, destination: &Path) -> PathBuf {
        self.path.join("volumes").join(escape_path(destination))
    }

    /// Where the copy of the secret mounted at `destination` lives.
    pub fn secret_path(&self, destination: &Path) -> PathBuf {
        self.path.join("secrets").join(escape_path(destination))
    }

    /// The throw-away overlay directory (holding `upper` and `work`) of the user mount at
    /// `index`.
    pub fn overlay_dir(&self, index: usize) -> PathBuf {
        self.path.join("overlay").join(index.to_string())
    }

    /// The throw-away directory of the user mount at `index`, a `private` cache in use
    /// elsewhere.
    pub fn cache_dir(&self, index: usize) -> PathBuf {
        self.path.join("cache").join(index.to_string())
    }

    /// Creates the directory (mode 0700, parents too) for a run: an ephemeral one is locked
    /// first, and any throw-away overlay and cache directories of an earlier run are removed.
    pub(crate) fn open(&self) -> Result<ContainerDirGuard, MountsError> {
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(host("create directory", parent))?;
        let lock = if self.persistent {
            None
        } else {
            let name = self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let lock_path = parent.join(format!(".{name}.lock"));
            Some((lock_path.clone(), lock_file(&lock_path)?))
        };
        let guard = ContainerDirGuard {
            dir: self.clone(),
            lock,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(host("create directory", &self.path))?;
        remove_tree(&self.path.join("overlay"))?;
        remove_tree(&self.path.join("cache"))?;
        Ok(guard)
    }
}

/// Creates and locks `path` exclusively, retrying when a sweep removed it between the two.
fn lock_file(path: &Path) -> Result<Flock<File>, MountsError> {
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(host("open", path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| host("flock", path)(std::io::Error::from(errno)))?;
        if still_linked(path, &lock) {
            return Ok(lock);
        }
    }
}

impl ContainerDirGuard {
    /// The directory.
    pub(crate) fn dir(&self) -> &ContainerDir {
        &self.dir
    }
}

impl Drop for ContainerDirGuard {
    fn drop(&mut self) {
        let result = if self.dir.persistent {
            remove_tree(&self.dir.path.join("overlay"))
                .and_then(|()| remove_tree(&self.dir.path.join("cache")))
        } else {
            remove_tree(&self.dir.path)
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot clean up the container directory");
        }
        if let Some((path, lock)) = self.lock.take() {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(lock = %path.display(), error = %e, "cannot remove lock file");
            }
            drop(lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_paths_are_distinct_file_names() {
        assert_eq!(escape_path(Path::new("/var/lib/data")), "var-lib-data");
        assert_eq!(escape_path(Path::new("/a-b")), "a%2Db");
        assert_eq!(escape_path(Path::new("/.hidden/x y")), "%2Ehidden-x%20y");
        assert_ne!(
            escape_path(Path::new("/a/b")),
            escape_path(Path::new("/a-b"))
        );
    }

    #[test]
    fn ephemeral_directories_go_with_their_run_or_the_sweep() {
        let root = tempfile::tempdir().unwrap();
        let store = ContainerStore::new(root.path().join("containers"));
        let dir = ContainerDir::ephemeral(store.path().join("c1"));
        let guard = dir.open().unwrap();
        std::fs::write(dir.path().join("x"), "").unwrap();
        assert_eq!(store.sweep().unwrap(), 0, "its run holds the lock");
        drop(guard);
        assert!(!dir.path().exists());
        assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 0);

        // A run that died: its lock is free, the sweep removes what it left.
        let mut guard = dir.open().unwrap();
        drop(guard.lock.take());
        std::mem::forget(guard);
        assert!(dir.path().exists());
        assert_eq!(store.sweep().unwrap(), 1);
        assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 0);
    }

    #[test]
    fn named_directories_persist_but_not_their_overlays() {
        let root = tempfile::tempdir().unwrap();
        let store = ContainerStore::new(root.path());
        let dir = ContainerDir::persistent(root.path().join("n1"));
        let guard = dir.open().unwrap();
        std::fs::create_dir_all(dir.volume_path(Path::new("/data"))).unwrap();
        std::fs::create_dir_all(dir.overlay_dir(0).join("upper")).unwrap();
        drop(guard);
        assert!(dir.path().join("volumes/data").is_dir());
        assert!(!dir.path().join("overlay").exists());
        assert_eq!(store.sweep().unwrap(), 0);
        assert!(dir.path().exists());
    }
}
