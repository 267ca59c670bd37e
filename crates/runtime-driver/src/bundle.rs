//! The bundle directory: `config.json` and the files of one run (runtime-spec "Filesystem
//! Bundle").

use std::fs::DirBuilder;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
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

    /// Writes `config.json` (mode 0600, a new file: the bundle has none yet). The runtime only
    /// reads it once this returns. Not fsynced: the bundle lives as long as its run, which a
    /// crash of the machine ends anyway, and an fsync costs a journal commit on a disk file
    /// system (about half a millisecond on ext4) before every run.
    ///
    /// # Errors
    /// [`DriverError::Bundle`] naming the file (also when it exists already).
    pub fn write_config(&self, json: &[u8]) -> Result<(), DriverError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join("config.json");
        let fail = |source| DriverError::Bundle {
            action: "write",
            path: path.clone(),
            source,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(json))
            .map_err(fail)
    }

    /// Gives the bundle directory to `uid:gid`, the host ids of the root of a user namespace of
    /// the container's own: crun and youki look up the spec's bind-mount sources (the generated
    /// files in the bundle) from inside that namespace, where root's 0700 directory cannot be
    /// searched (runc opens them before it enters the namespace). podman gives its container
    /// directories to that root too. youki also resolves the bundle's whole path there, so the
    /// two directories above it, the bundles directory and the run root (ocirun's own), are
    /// made searchable by others (mode 0711: searchable, not listable; every directory in them
    /// but such bundles stays 0700).
    ///
    /// # Errors
    /// [`DriverError::Bundle`] naming the directory.
    pub fn give_to(&self, uid: u32, gid: u32) -> Result<(), DriverError> {
        use std::os::unix::fs::PermissionsExt;
        let fail = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| DriverError::Bundle {
                action,
                path,
                source,
            }
        };
        std::os::unix::fs::chown(&self.dir, Some(uid), Some(gid)).map_err(fail(
            "give the bundle directory to the container's root",
            &self.dir,
        ))?;
        for dir in self.dir.ancestors().skip(1).take(2) {
            let meta = std::fs::metadata(dir).map_err(fail("read the mode of", dir))?;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o011 != 0o011 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o011))
                    .map_err(fail("make searchable", dir))?;
            }
        }
        Ok(())
    }

    /// Leaves the bundle directory in place (for the clean-up of a container that could not
    /// be deleted: `ocirun gc` removes it with the container).
    pub fn keep(mut self) {
        self.removed = true;
    }

    /// Removes what the bundle directory holds, keeping the directory (for a caller that removes
    /// the files while the runtime deletes the container, which reads none of them then).
    ///
    /// # Errors
    /// [`DriverError::Bundle`] naming the entry that could not be removed.
    pub fn clear(&self) -> Result<(), DriverError> {
        let fail = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DriverError::Bundle {
                action: "remove from the bundle directory",
                path,
                source,
            }
        };
        for entry in std::fs::read_dir(&self.dir).map_err(fail(&self.dir))? {
            let entry = entry.map_err(fail(&self.dir))?;
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let removed = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(fail(&path))?;
        }
        Ok(())
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

/// A short path to a bundle directory: a symlink `DIR/<the id's first 16 characters>` to it
/// ([`Bundle::link_from`]), removed when dropped. A runtime dials `--console-socket` itself,
/// and a Unix socket's path must fit `sun_path` (107 bytes); a relative path would do for runc,
/// which resolves it in its working directory, but youki resolves it in its own state
/// directory.
#[derive(Debug)]
#[must_use = "dropping the link removes it"]
pub struct BundleLink {
    link: PathBuf,
}

impl BundleLink {
    /// The link: use it as the bundle directory in a path.
    pub fn path(&self) -> &Path {
        &self.link
    }
}

impl Drop for BundleLink {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.link) {
            tracing::debug!(link = %self.link.display(), error = %e, "cannot remove the bundle link");
        }
    }
}

/// How many characters of the container id name a [`BundleLink`].
const LINK_NAME_LEN: usize = 16;

impl Bundle {
    /// A [`BundleLink`] in `dir` (created, mode 0700, when missing). A link left there by a
    /// dead run whose bundle is gone is replaced.
    ///
    /// # Errors
    /// [`DriverError::Bundle`] naming the link, when it cannot be made, or a live run's link
    /// has the name.
    pub fn link_from(&self, dir: &Path) -> Result<BundleLink, DriverError> {
        let name = self
            .dir
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .chars()
                    .take(LINK_NAME_LEN)
                    .collect::<String>()
            })
            .unwrap_or_default();
        let link = dir.join(name);
        let fail = |source| DriverError::Bundle {
            action: "link to the bundle directory",
            path: link.clone(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
        match std::os::unix::fs::symlink(&self.dir, &link) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !link.exists() => {
                std::fs::remove_file(&link).map_err(fail)?;
                std::os::unix::fs::symlink(&self.dir, &link).map_err(fail)?;
            }
            other => other.map_err(fail)?,
        }
        Ok(BundleLink { link })
    }
}

/// Removes the links in `dir` ([`Bundle::link_from`]) whose bundle is gone, as a run killed
/// with SIGKILL leaves them; returns how many. A missing `dir` has none.
pub fn remove_dangling_links(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_symlink() && !p.exists())
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count()
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

    #[test]
    fn clearing_keeps_the_directory() {
        let parent = tempfile::tempdir().unwrap();
        let id: ContainerId = "c1".parse().unwrap();
        let bundle = Bundle::create(parent.path(), &id).unwrap();
        bundle.write_config(b"{}").unwrap();
        std::fs::create_dir(bundle.path().join("secrets")).unwrap();
        std::fs::write(bundle.path().join("secrets/s"), "x").unwrap();
        bundle.clear().unwrap();
        assert_eq!(std::fs::read_dir(bundle.path()).unwrap().count(), 0);
        bundle.remove().unwrap();
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_short_link_to_the_bundle() {
        let parent = tempfile::tempdir().unwrap();
        let id: ContainerId = "0123456789abcdef0123456789abcdef".parse().unwrap();
        let bundle = Bundle::create(&parent.path().join("bundles"), &id).unwrap();
        std::fs::write(bundle.path().join("f"), "x").unwrap();
        let links = parent.path().join("l");
        let link = bundle.link_from(&links).unwrap();
        assert_eq!(link.path(), links.join("0123456789abcdef"));
        assert_eq!(std::fs::read(link.path().join("f")).unwrap(), b"x");
        // A second live link of that name is refused.
        assert!(bundle.link_from(&links).is_err());
        drop(link);
        assert!(!links.join("0123456789abcdef").exists());
        // A link of a dead run is replaced by a new one, and swept.
        std::os::unix::fs::symlink("/nonexistent/bundle", links.join("0123456789abcdef")).unwrap();
        let link = bundle.link_from(&links).unwrap();
        assert!(link.path().join("f").exists());
        std::os::unix::fs::symlink("/nonexistent/other", links.join("dead")).unwrap();
        assert_eq!(remove_dangling_links(&links), 1);
        assert!(link.path().exists());
        assert_eq!(remove_dangling_links(&parent.path().join("missing")), 0);
    }
}
