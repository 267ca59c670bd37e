//! The mount list of a run and the filesystem work it needs before the runtime is called.
//!
//! Steps of [`prepare`], each undone by dropping (or [`Prepared::cleanup`]) what it returns:
//! 1. write the generated files into the bundle directory (removed with the bundle);
//! 2. create the working directory inside the rootfs if missing (kept: the command may have
//!    written into it, and BEHAVIOR.md makes it part of the run's result);
//! 3. create each missing mount target inside the rootfs (an empty file for a file bind, a
//!    directory otherwise), with its missing parents; these are removed after the run when
//!    they are still empty.

use std::path::{Path, PathBuf};

use ocirun_spec_gen::oci_spec::runtime::{Mount, Spec};
use ocirun_spec_gen::sort_mounts;

use crate::generated::{generated_mounts, write_generated_files, HostNetworkFiles};
use crate::ledger::{LedgerHold, TargetLedger};
use crate::{MountsError, Rootfs};

/// Merges layers of mounts: for one destination the mount of the earliest layer wins
/// (BEHAVIOR.md "Mounts", Order), then all are sorted by destination depth, then path.
pub fn merge_mounts(layers: impl IntoIterator<Item = Vec<Mount>>) -> Vec<Mount> {
    let mut merged: Vec<Mount> = Vec::new();
    for mount in layers.into_iter().flatten() {
        if !merged
            .iter()
            .any(|m| m.destination() == mount.destination())
        {
            merged.push(mount);
        }
    }
    sort_mounts(&mut merged);
    merged
}

/// Puts the generated files' mounts into `spec` ahead of its own mounts (the defaults that
/// spec-gen wrote), merged and sorted. Pure: `ocirun spec` and `ocirun run` both call it.
pub fn plan_mounts(spec: &mut Spec) {
    let defaults = spec.mounts().clone().unwrap_or_default();
    spec.set_mounts(Some(merge_mounts([generated_mounts(), defaults])));
}

/// What [`prepare`] created in the rootfs. Dropping it removes the mount targets that are still
/// empty, innermost first; with a [`TargetLedger`], only once no other run on the rootfs is
/// active.
#[derive(Debug)]
#[must_use = "dropping it removes the mount targets at once"]
pub struct Prepared<'r> {
    rootfs: &'r Rootfs,
    created_targets: Vec<PathBuf>,
    working_dir_created: Vec<PathBuf>,
    ledger: Option<LedgerHold>,
}

impl Prepared<'_> {
    /// Paths inside the rootfs that were created as mount targets (and their parents),
    /// outermost first.
    pub fn created_targets(&self) -> &[PathBuf] {
        &self.created_targets
    }

    /// Components of the working directory that were created, outermost first.
    pub fn created_working_dir(&self) -> &[PathBuf] {
        &self.working_dir_created
    }

    /// Removes the created mount targets that are still empty (with a ledger: all the
    /// rootfs's ledger targets, if this is the last active run). Also done on drop.
    pub fn cleanup(&mut self) {
        if let Some(hold) = self.ledger.take() {
            let ledger = hold.ledger().clone();
            let created = std::mem::take(&mut self.created_targets);
            if let Err(e) = ledger.leave(hold, self.rootfs, &created) {
                tracing::warn!(error = %e, "cannot clean up the mount targets");
            }
            return;
        }
        while let Some(path) = self.created_targets.pop() {
            if !self.rootfs.remove_if_empty(&path) {
                tracing::debug!(path = %path.display(), "mount target kept: not empty");
            }
        }
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Does the filesystem work that `spec` needs before the runtime creates the container: the
/// generated files in `bundle_dir` (made from `host` and the spec's hostname), the working
/// directory (`process.cwd`, owned by `process.user`), and the missing mount targets of the
/// mounts that are not below another mount (runc would otherwise create them, and leave them).
///
/// With `ledger`, the targets go into the rootfs's [`TargetLedger`], so that concurrent runs on
/// one rootfs share them and the last one to end removes them.
///
/// # Errors
/// [`MountsError`] naming the path that failed; what was created before the failure is
/// removed again.
pub fn prepare<'r>(
    rootfs: &'r Rootfs,
    bundle_dir: &Path,
    spec: &Spec,
    host: &HostNetworkFiles,
    ledger: Option<&TargetLedger>,
) -> Result<Prepared<'r>, MountsError> {
    let mut prepared = Prepared {
        rootfs,
        created_targets: Vec::new(),
        working_dir_created: Vec::new(),
        ledger: None,
    };
    let hostname = spec.hostname().clone().unwrap_or_default();
    write_generated_files(bundle_dir, host, &hostname)?;

    if let Some(process) = spec.process() {
        prepared.working_dir_created =
            rootfs.create_working_dir(process.cwd(), process.user().uid(), process.user().gid())?;
    }

    // Declared after `prepared`, so dropped first on an early return: its cleanup takes the
    // mutex again.
    let mutex = match ledger {
        Some(ledger) => {
            let (mutex, hold) = ledger.enter(rootfs)?;
            prepared.ledger = Some(hold);
            Some(mutex)
        }
        None => None,
    };
    let mounts = spec.mounts().clone().unwrap_or_default();
    for mount in &mounts {
        let dst = mount.destination();
        let nested = mounts
            .iter()
            .any(|other| other.destination() != dst && dst.starts_with(other.destination()));
        if nested || rootfs.kind(dst)?.is_some() {
            continue;
        }
        let file_source = is_bind(mount)
            && mount.source().as_ref().is_some_and(|src| {
                std::fs::metadata(bundle_dir.join(src)).is_ok_and(|m| !m.is_dir())
            });
        if file_source {
            if let Some(parent) = dst.parent() {
                let created = rootfs.create_dirs(parent, "create mount target")?;
                prepared.created_targets.extend(created);
            }
            if rootfs.create_empty_file(dst)? {
                prepared.created_targets.push(dst.clone());
            }
        } else {
            let created = rootfs.create_dirs(dst, "create mount target")?;
            prepared.created_targets.extend(created);
        }
    }
    if let Some(hold) = &prepared.ledger {
        hold.ledger()
            .record(hold, rootfs, &prepared.created_targets)?;
    }
    drop(mutex);
    Ok(prepared)
}

fn is_bind(mount: &Mount) -> bool {
    mount.typ().as_deref() == Some("bind")
        || mount
            .options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocirun_spec_gen::{RunOptions, SpecGenerator};

    fn spec_for(rootfs: &Rootfs, cwd: &str) -> Spec {
        let mut options = RunOptions::new(vec!["true".into()]);
        options.working_dir = Some(cwd.into());
        let mut spec = SpecGenerator::new(rootfs.path(), "0123456789abcdef", &options)
            .generate()
            .unwrap();
        plan_mounts(&mut spec);
        spec
    }

    #[test]
    fn merge_is_first_wins_then_sorted() {
        let spec = {
            let dir = tempfile::tempdir().unwrap();
            spec_for(&Rootfs::open(dir.path()).unwrap(), "/")
        };
        let dsts: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            dsts,
            [
                "/dev",
                "/proc",
                "/sys",
                "/dev/mqueue",
                "/dev/pts",
                "/dev/shm",
                "/etc/hostname",
                "/etc/hosts",
                "/etc/resolv.conf",
                "/sys/fs/cgroup"
            ]
        );
        let again = merge_mounts([generated_mounts(), spec.mounts().clone().unwrap()]);
        assert_eq!(again.len(), dsts.len());
    }

    #[test]
    fn prepare_creates_and_cleanup_removes_only_what_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proc")).unwrap();
        let rootfs = Rootfs::open(dir.path()).unwrap();
        let spec = spec_for(&rootfs, "/work/here");
        let mut prepared = prepare(
            &rootfs,
            bundle.path(),
            &spec,
            &HostNetworkFiles::default(),
            None,
        )
        .unwrap();
        let made: Vec<_> = prepared
            .created_targets()
            .iter()
            .map(|p| p.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            made,
            [
                "/dev",
                "/sys",
                "/etc",
                "/etc/hostname",
                "/etc/hosts",
                "/etc/resolv.conf"
            ]
        );
        assert!(dir.path().join("etc/hosts").is_file());
        assert_eq!(
            std::fs::read_to_string(bundle.path().join("hostname")).unwrap(),
            "0123456789ab\n"
        );
        // Something the command wrote is kept.
        std::fs::write(dir.path().join("etc/resolv.conf"), "written\n").unwrap();
        prepared.cleanup();
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["etc", "proc", "work"]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("etc")).unwrap().count(),
            1
        );
        assert!(
            dir.path().join("work/here").is_dir(),
            "the working directory stays"
        );
    }

    #[test]
    fn with_a_ledger_the_last_run_removes_the_targets() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let (b1, b2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for d in ["proc", "dev", "sys"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let rootfs = Rootfs::open(dir.path()).unwrap();
        let ledger = TargetLedger::new(state.path());
        let spec = spec_for(&rootfs, "/");
        let host = HostNetworkFiles::default();
        let first = prepare(&rootfs, b1.path(), &spec, &host, Some(&ledger)).unwrap();
        assert!(dir.path().join("etc/hosts").is_file());
        let second = prepare(&rootfs, b2.path(), &spec, &host, Some(&ledger)).unwrap();
        assert!(
            second.created_targets().is_empty(),
            "the first run made them"
        );
        drop(first);
        assert!(
            dir.path().join("etc/hosts").is_file(),
            "kept while the second run is active"
        );
        drop(second);
        assert!(!dir.path().join("etc").exists(), "removed by the last run");
        assert_eq!(ledger.sweep().unwrap(), 0);
    }

    #[test]
    fn sweep_removes_what_a_dead_run_left() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        for d in ["proc", "dev", "sys"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let rootfs = Rootfs::open(dir.path()).unwrap();
        let ledger = TargetLedger::new(state.path());
        let spec = spec_for(&rootfs, "/");
        let prepared = prepare(
            &rootfs,
            bundle.path(),
            &spec,
            &HostNetworkFiles::default(),
            Some(&ledger),
        )
        .unwrap();
        // A run that dies without cleaning up: its locks go with its file descriptors.
        let mut prepared = std::mem::ManuallyDrop::new(prepared);
        drop(prepared.ledger.take());
        assert!(dir.path().join("etc/hosts").is_file());
        assert_eq!(ledger.sweep().unwrap(), 4);
        assert!(!dir.path().join("etc").exists());
    }
}
