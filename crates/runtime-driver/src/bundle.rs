//! The bundle directory: `config.json` and the files of one run (runtime-spec "Filesystem
//! Bundle").

use std::fs::{DirBuilder, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{ContainerId, DriverError};

/// A bundle directory that exists for one run. Dropping it removes the directory and all it
/// holds.
#[derive(Debug)]
pub struct Bundle {
    dir: PathBuf,
    /// Removed already, or not ours to remove ([`Bundle::existing`]).
    removed: bool,
}

impl Bundle {
    /// Creates the bundle directory `parent/id` (mode 0700), creating `parent` (mode 0700) if
    /// missing. The directory must not exist yet.
    ///
    /// # Errors
    /// [`DriverError::Bundle`] naming the directory.
    pub fn create(parent: &Path, id: &ContainerId) -> Result<Self, DriverError> {
        let dir = parent.join(id.as_str());
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .and_then(|()| DirBuilder::new().mode(0o700).create(&dir))
            .map_err(|source| DriverError::Bundle {
                action: "create bundle directory",
                path: dir.clone(),
                source,
            })?;
        Ok(Self {
            dir,
            removed: false,
        })
    }

    /// A bundle directory that someone else created and will remove: dropping this value
    /// leaves it in place.
    pub fn existing(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            removed: true,
        }
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Where the runtime writes the container's pid (`--pid-file`).
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }

    /// Where the runtime writes its JSON log (`--log`).
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("runtime.log")
    }

    /// Writes `config.json` (mode 0600) atomically: to a temporary name, fsynced, then renamed,
    /// so the runtime never reads half a file.
    ///
    /// # Errors
    /// [`DriverError::Bundle`] naming the file.
    pub fn write_config(&self, json: &[u8]) -> Result<(), DriverError> {
        let path = self.dir.join("config.json");
        let tmp = self.dir.join(".config.json.tmp");
        let fail = |source| DriverError::Bundle {
            action: "write",
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::create(&tmp).map_err(fail)?;
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(fail)?;
        file.write_all(json)
            .and_then(|()| file.sync_all())
            .map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(fail)
    }

    /// Leaves the bundle directory in place (for the clean-up of a container that could not
    /// be deleted: `ocirun gc` removes it with the container).
    pub fn keep(mut self) {
        self.removed = true;
    }

    /// Removes the bundle directory now, reporting failure (drop does the same, silently).
    ///
    /// # Errors
    /// [`DriverError::Bundle`] naming the directory.
    pub fn remove(mut self) -> Result<(), DriverError> {
        self.removed = true;
        std::fs::remove_dir_all(&self.dir).map_err(|source| DriverError::Bundle {
            action: "remove bundle directory",
            path: self.dir.clone(),
            source,
        })
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                tracing::warn!(bundle = %self.dir.display(), error = %e, "cannot remove bundle");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_write_and_drop() {
        let parent = tempfile::tempdir().unwrap();
        let path;
        {
            let id: ContainerId = "c1".parse().unwrap();
            let bundle = Bundle::create(&parent.path().join("bundles"), &id).unwrap();
            bundle.write_config(b"{}").unwrap();
            path = bundle.path().to_path_buf();
            assert_eq!(std::fs::read(path.join("config.json")).unwrap(), b"{}");
            use std::os::unix::fs::MetadataExt;
            assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o700);
            assert!(Bundle::create(&parent.path().join("bundles"), &id).is_err());
        }
        assert!(!path.exists());
    }
}
