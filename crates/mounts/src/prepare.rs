//! The mount list of a run and the filesystem work it needs before the runtime is called.
//!
//! Steps of [`prepare`], each undone by dropping (or [`Prepared::cleanup`]) what it returns:
//! 1. write the generated files and the `--secret` files (each with its mode and owner) into
//!    the bundle directory (removed with the bundle);
//! 2. when image volumes, secrets, throw-away overlays or throw-away caches won their
//!    destinations: create the container's directory (an ephemeral one is locked, and removed
//!    at the end), copy each image volume out of the rootfs on first use, copy each secret
//!    afresh, create the empty overlay `upper` and `work` directories and the throw-away
//!    cache directories;
//! 3. open each named volume (created and filled from the rootfs on first use; the run holds
//!    it until the end, so that it is not removed meanwhile) and create each cache directory
//!    that does not exist yet;
//! 4. `U`: chown each bind source and volume to the run's uid:gid; `z`/`Z`: relabel it for
//!    SELinux;
//! 5. create the working directory inside the rootfs if missing (kept: the command may have
//!    written into it, so it is part of the run's result);
//! 6. create each missing mount target inside the rootfs (an empty file for a file bind, a
//!    directory otherwise), with its missing parents; these are removed after the run when
//!    they are still empty.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};

use crate::container_dir::ContainerDirGuard;
use crate::copy::{copy_host_tree, copy_image_volume, Interrupt};
use crate::generated::{write_generated_files, HostNetworkFiles};
use crate::label::{chown_tree, relabel};
use crate::ledger::{LedgerHold, TargetLedger};
use crate::plan::has_network_namespace;
use crate::store::{ensure_cache_dir, open_volume, NewVolume, VolumeHold};
use crate::{MountsError, ResolvedMounts, Rootfs, UserMountKind};

/// What [`prepare`] created. Dropping it removes the mount targets that are still empty,
/// innermost first (with a [`TargetLedger`], only once no other run on the rootfs is active),
/// then an ephemeral container directory, or a persistent one's throw-away overlay
/// directories.
#[derive(Debug)]
#[must_use = "dropping it removes the mount targets at once"]
pub struct Prepared<'r> {
    rootfs: &'r Rootfs,
    created_targets: Vec<PathBuf>,
    working_dir_created: Vec<PathBuf>,
    ledger: Option<LedgerHold>,
    container_dir: Option<ContainerDirGuard>,
    volumes: Vec<VolumeHold>,
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
    /// rootfs's ledger targets, if this is the last active run), then an ephemeral container
    /// directory (a persistent one's overlay directories). Also done on drop.
    pub fn cleanup(&mut self) {
        if let Some(hold) = self.ledger.take() {
            let ledger = hold.ledger().clone();
            let created = std::mem::take(&mut self.created_targets);
            if let Err(e) = ledger.leave(hold, self.rootfs, &created) {
                tracing::warn!(error = %e, "cannot clean up the mount targets");
            }
        }
        while let Some(path) = self.created_targets.pop() {
            if !self.rootfs.remove_if_empty(&path, None) {
                tracing::debug!(path = %path.display(), "mount target kept: not empty");
            }
        }
        drop(self.container_dir.take());
        self.volumes.clear();
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Does the filesystem work that `spec` needs before the runtime creates the container: the
/// generated files in `bundle_dir` (made from `host`, the spec's hostname and the plan's
/// generated options), the container directory's copies of the image volumes and secrets that
/// won their destinations in `mounts`, `U` and `z`/`Z` on the user's bind sources, the working
/// directory (`process.cwd`, owned by `process.user`), and the missing mount targets of the
/// spec's mounts that are not below another mount (runc would otherwise create them, and leave
/// them). `spec` is the final spec, made with `mounts` (whose mounts it holds, merged with its
/// defaults): what the runtime will be handed.
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
    mounts: &ResolvedMounts,
    host: &HostNetworkFiles,
    ledger: Option<&TargetLedger>,
) -> Result<Prepared<'r>, MountsError> {
    prepare_interruptible(rootfs, bundle_dir, spec, mounts, host, ledger, &mut || {
        false
    })
}

/// [`prepare`] that gives up when `cancelled` returns true: it is asked while image volumes
/// and named volumes are copied out of the rootfs (between entries, and between chunks of
/// 8 MiB of a file, at most every 50 ms), so that a stop signal ends a copy of gigabytes
/// within a fraction of a second.
///
/// # Errors
/// As [`prepare`]; [`MountsError::Cancelled`] when `cancelled` said so. Either way the
/// partial copy and everything else created before are removed.
pub fn prepare_interruptible<'r>(
    rootfs: &'r Rootfs,
    bundle_dir: &Path,
    spec: &Spec,
    mounts: &ResolvedMounts,
    host: &HostNetworkFiles,
    ledger: Option<&TargetLedger>,
    cancelled: &mut dyn FnMut() -> bool,
) -> Result<Prepared<'r>, MountsError> {
    let mut interrupt = Interrupt::new(cancelled);
    let plan = &mounts.plan;
    let mut prepared = Prepared {
        rootfs,
        created_targets: Vec::new(),
        working_dir_created: Vec::new(),
        ledger: None,
        container_dir: None,
        volumes: Vec::new(),
    };
    // No hostname in the spec: the host's UTS namespace, whose name is the host's (a joined
    // one generates no /etc/hostname).
    let hostname = spec
        .hostname()
        .clone()
        .unwrap_or_else(|| host.hostname.clone());
    write_generated_files(
        bundle_dir,
        host,
        &hostname,
        &plan.generated,
        has_network_namespace(spec),
    )?;
    write_run_secrets(bundle_dir, plan, &mounts.run_secrets)?;

    let owner = spec
        .process()
        .as_ref()
        .map_or((0, 0), |p| (p.user().uid(), p.user().gid()));
    let mount_label = spec.linux().as_ref().and_then(|l| l.mount_label().clone());

    let volumes = &mounts.image_volumes;
    let secrets = &mounts.secrets;
    let overlays: Vec<usize> = (0..plan.user_mounts.len())
        .filter(|i| plan.throw_away_overlay(*i))
        .collect();
    let caches = &plan.throw_away_caches;
    if !(volumes.is_empty() && secrets.is_empty() && overlays.is_empty() && caches.is_empty()) {
        let guard = prepared
            .container_dir
            .insert(plan.dir("a volume copy")?.open()?);
        let dir = guard.dir().clone();
        for (volume, path) in volumes {
            if !path.exists() {
                // First use: copy beside it, then rename, so that a failed copy is never
                // taken for a finished one.
                create_parent(path)?;
                copy_then_rename(path, |tmp| {
                    copy_image_volume(rootfs, volume, tmp, &mut interrupt)
                })?;
            }
        }
        for (secret, path) in secrets {
            create_parent(path)?;
            copy_then_rename(path, |tmp| {
                copy_host_tree(&secret.source, tmp).map_err(|source| MountsError::CopySecret {
                    source_path: secret.source.clone(),
                    destination: secret.destination.clone(),
                    source,
                })?;
                remove_if_present(path)
            })?;
        }
        for index in overlays {
            for sub in ["upper", "work"] {
                let path = dir.overlay_dir(index).join(sub);
                std::fs::create_dir_all(&path).map_err(|source| MountsError::Host {
                    action: "create directory",
                    path,
                    source,
                })?;
            }
        }
        for &index in caches {
            let UserMountKind::Cache(cache) = &plan.user_mounts[index].kind else {
                continue;
            };
            let path = dir.cache_dir(index);
            ensure_cache_dir(&path, (cache.uid, cache.gid), cache.mode)?;
        }
    }
    for (i, m) in plan.user_mounts.iter().enumerate() {
        let bind = match &m.kind {
            UserMountKind::Bind(bind) => bind,
            UserMountKind::Volume(volume) => {
                let new = NewVolume {
                    rootfs,
                    destination: &m.destination,
                    copy: volume.copy,
                    owner,
                };
                prepared.volumes.push(open_volume(
                    &volume.dir,
                    &volume.name,
                    volume.create,
                    new,
                    &mut interrupt,
                )?);
                &volume.bind
            }
            UserMountKind::Cache(cache) if !caches.contains(&i) => {
                ensure_cache_dir(&cache.dir, (cache.uid, cache.gid), cache.mode)?;
                continue;
            }
            _ => continue,
        };
        if bind.chown {
            chown_tree(&bind.source, owner.0, owner.1)?;
        }
        if let Some(how) = bind.relabel {
            relabel(&bind.source, mount_label.as_deref(), how)?;
        }
    }

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
    let spec_mounts = spec.mounts().clone().unwrap_or_default();
    for mount in &spec_mounts {
        let dst = mount.destination();
        let nested = spec_mounts
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
            // Through a dangling symlink too, as runc resolves the destination.
            let dst = &rootfs
                .path_for_create(dst)
                .map_err(|source| MountsError::InRootfs {
                    action: "create mount target",
                    path: dst.clone(),
                    rootfs: rootfs.path().to_path_buf(),
                    source,
                })?;
            // Into the ledger before they exist: a run killed half-way leaves no target that
            // `gc` does not know of.
            let mut planned = match dst.parent() {
                Some(parent) => rootfs.missing_dirs(parent, "create mount target")?.1,
                None => Vec::new(),
            };
            planned.push(dst.clone());
            if let Some(hold) = &mut prepared.ledger {
                hold.ledger().record_planned(hold, rootfs, &planned)?;
            }
            if let Some(parent) = dst.parent() {
                let created = rootfs.create_dirs(parent, "create mount target")?;
                prepared.created_targets.extend(created);
            }
            if rootfs.create_empty_file(dst)? {
                prepared.created_targets.push(dst.clone());
            }
        } else {
            if let Some(hold) = &mut prepared.ledger {
                let planned = rootfs.missing_dirs(dst, "create mount target")?.1;
                hold.ledger().record_planned(hold, rootfs, &planned)?;
            }
            let created = rootfs.create_dirs(dst, "create mount target")?;
            // runc gives a tmpfs the mode of the directory it covers: a target made here takes
            // the mode the user asked for.
            if let (Some(mode), Some(made)) = (tmpfs_mode(mount), created.last()) {
                rootfs.set_mode(made, mode)?;
            }
            prepared.created_targets.extend(created);
        }
    }
    if let Some(hold) = &mut prepared.ledger {
        hold.ledger()
            .record_created(hold, rootfs, &prepared.created_targets)?;
    }
    drop(mutex);
    Ok(prepared)
}

/// Writes the bytes of each `--secret` mount (`files`: the user mount's index and its file
/// relative to the bundle) into the bundle, with its mode and owner.
fn write_run_secrets(
    bundle_dir: &Path,
    plan: &crate::MountPlan,
    files: &[(usize, PathBuf)],
) -> Result<(), MountsError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if files.is_empty() {
        return Ok(());
    }
    let dir = bundle_dir.join(crate::plan::RUN_SECRETS_DIR);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|source| MountsError::Host {
            action: "create directory",
            path: dir.clone(),
            source,
        })?;
    for (index, file) in files {
        let UserMountKind::Secret(secret) = &plan.user_mounts[*index].kind else {
            continue;
        };
        let path = bundle_dir.join(file);
        let fail = |action: &'static str| {
            let path = path.clone();
            move |source| MountsError::Host {
                action,
                path,
                source,
            }
        };
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(fail("create"))?;
        out.write_all(secret.bytes.as_bytes())
            .map_err(fail("write"))?;
        std::os::unix::fs::fchown(&out, secret.uid, secret.gid).map_err(fail("chown"))?;
        out.set_permissions(std::fs::Permissions::from_mode(
            secret.mode.unwrap_or(0o400),
        ))
        .map_err(fail("chmod"))?;
    }
    Ok(())
}

/// The `mode=` of a tmpfs mount, if any.
fn tmpfs_mode(mount: &Mount) -> Option<u32> {
    if mount.typ().as_deref() != Some("tmpfs") {
        return None;
    }
    mount
        .options()
        .as_ref()?
        .iter()
        .find_map(|o| o.strip_prefix("mode="))
        .and_then(|m| u32::from_str_radix(m, 8).ok())
}

/// Makes `path` with `copy` (into a temporary sibling, renamed over `path` once complete), so
/// that a copy that fails half-way (a full disk, an entry that cannot be read) is never taken
/// for a finished one and leaves nothing: the partial copy is removed at once.
fn copy_then_rename(
    path: &Path,
    copy: impl FnOnce(&Path) -> Result<(), MountsError>,
) -> Result<(), MountsError> {
    let tmp = tmp_sibling(path);
    remove_if_present(&tmp)?;
    if let Err(e) = copy(&tmp) {
        if let Err(left) = remove_if_present(&tmp) {
            tracing::warn!(error = %left, "cannot remove a partial copy");
        }
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|source| MountsError::Host {
        action: "rename",
        path: tmp.clone(),
        source,
    })
}

/// `DIR/.NAME.tmp` for `DIR/NAME`.
fn tmp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

fn remove_if_present(path: &Path) -> Result<(), MountsError> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
    result.map_err(|source| MountsError::Host {
        action: "remove",
        path: path.to_path_buf(),
        source,
    })
}

fn create_parent(path: &Path) -> Result<(), MountsError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|source| MountsError::Host {
        action: "create directory",
        path: parent.to_path_buf(),
        source,
    })
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
    use crate::test_spec::final_spec;
    use crate::{ContainerDir, MountPlan};

    /// The final spec of a run of `plan` with the working directory `cwd`, and the resolved
    /// mounts it was made with.
    fn spec_for(plan: &MountPlan, cwd: &str) -> (Spec, ResolvedMounts) {
        let resolved = plan.clone().resolve((0, 0)).unwrap();
        (final_spec(cwd, &resolved.mounts), resolved)
    }

    #[test]
    fn prepare_creates_and_cleanup_removes_only_what_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proc")).unwrap();
        let rootfs = Rootfs::open(dir.path()).unwrap();
        let plan = MountPlan::default();
        let (spec, resolved) = spec_for(&plan, "/work/here");
        let mut prepared = prepare(
            &rootfs,
            bundle.path(),
            &spec,
            &resolved,
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
    fn image_volumes_secrets_and_overlays_go_into_the_container_dir() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        let r = dir.path();
        for d in ["proc", "dev", "sys", "etc", "run", "data"] {
            std::fs::create_dir(r.join(d)).unwrap();
        }
        std::fs::create_dir_all(r.join("srv/vol")).unwrap();
        std::fs::write(r.join("srv/vol/f"), "image").unwrap();
        std::fs::write(host.path().join("secret"), "s").unwrap();
        let rootfs = Rootfs::open(r).unwrap();
        let containers = state.path().join("containers");
        let lower = host.path().display().to_string();
        let volume = format!("{lower}:/data:O");
        let mut plan = MountPlan {
            user_mounts: vec![volume
                .parse::<crate::VolumeSpec>()
                .unwrap()
                .to_user_mount(&volume)],
            image_volumes: vec!["/srv/vol".into(), "/srv/none".into()],
            secrets: vec![crate::SecretSpec {
                source: host.path().join("secret"),
                destination: "/run/secret".into(),
            }],
            container_dir: Some(ContainerDir::persistent(containers.join("n1"))),
            ..MountPlan::default()
        };
        let run = |plan: &MountPlan| {
            let bundle = tempfile::tempdir().unwrap();
            let (spec, resolved) = spec_for(plan, "/");
            let prepared = prepare(
                &rootfs,
                bundle.path(),
                &spec,
                &resolved,
                &HostNetworkFiles::default(),
                None,
            )
            .unwrap();
            (bundle, prepared)
        };
        let named = state.path().join("containers/n1");
        let (_bundle, prepared) = run(&plan);
        assert_eq!(
            std::fs::read_to_string(named.join("volumes/srv-vol/f")).unwrap(),
            "image"
        );
        assert!(named.join("volumes/srv-none").is_dir());
        assert_eq!(
            std::fs::read_to_string(named.join("secrets/run-secret")).unwrap(),
            "s"
        );
        assert!(named.join("overlay/0/upper").is_dir() && named.join("overlay/0/work").is_dir());
        let made: Vec<_> = prepared
            .created_targets()
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(
            made,
            [
                "/etc/hostname",
                "/etc/hosts",
                "/etc/resolv.conf",
                "/run/secret",
                "/srv/none"
            ]
        );
        // What the container wrote into its copy stays for the next run with the name.
        std::fs::write(named.join("volumes/srv-vol/f"), "written").unwrap();
        drop(prepared);
        assert!(!named.join("overlay").exists());
        let (_bundle, prepared) = run(&plan);
        assert_eq!(
            std::fs::read_to_string(named.join("volumes/srv-vol/f")).unwrap(),
            "written"
        );
        drop(prepared);
        assert_eq!(
            std::fs::read_to_string(r.join("srv/vol/f")).unwrap(),
            "image"
        );

        // Without a name, the directory goes with the run.
        plan.container_dir = Some(ContainerDir::ephemeral(containers.join("c1")));
        let (_bundle, prepared) = run(&plan);
        assert!(state
            .path()
            .join("containers/c1/volumes/srv-vol/f")
            .is_file());
        drop(prepared);
        let left: Vec<_> = std::fs::read_dir(state.path().join("containers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["n1"]);
    }

    #[test]
    fn a_copy_that_fails_half_way_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("volume");
        let err = copy_then_rename(&path, |tmp| {
            std::fs::create_dir(tmp).unwrap();
            std::fs::write(tmp.join("half"), "x").unwrap();
            Err(MountsError::NoContainerDir("a test"))
        })
        .unwrap_err();
        assert!(matches!(err, MountsError::NoContainerDir(_)));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        copy_then_rename(&path, |tmp| {
            std::fs::create_dir(tmp).map_err(|source| MountsError::Host {
                action: "create",
                path: tmp.to_path_buf(),
                source,
            })
        })
        .unwrap();
        assert!(path.is_dir());
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
        let plan = MountPlan::default();
        let (spec, resolved) = spec_for(&plan, "/");
        let host = HostNetworkFiles::default();
        let first = prepare(&rootfs, b1.path(), &spec, &resolved, &host, Some(&ledger)).unwrap();
        assert!(dir.path().join("etc/hosts").is_file());
        let second = prepare(&rootfs, b2.path(), &spec, &resolved, &host, Some(&ledger)).unwrap();
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
        let plan = MountPlan::default();
        let (spec, resolved) = spec_for(&plan, "/");
        let prepared = prepare(
            &rootfs,
            bundle.path(),
            &spec,
            &resolved,
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

    /// The entries below `dir`, relative, sorted.
    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                out.push(format!("{:?}", path.strip_prefix(dir).unwrap()));
                if path.is_dir() && !path.is_symlink() {
                    stack.push(path);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_newline_in_a_destination_removes_only_what_the_run_made() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        for d in ["proc", "dev", "sys", "etc", "foo"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let before = tree(dir.path());
        let rootfs = Rootfs::open(dir.path()).unwrap();
        let ledger = TargetLedger::new(state.path());
        let raw = "/foo\n/etc:size=1m";
        let plan = MountPlan {
            user_mounts: vec![raw.parse::<crate::TmpfsSpec>().unwrap().to_user_mount(raw)],
            ..MountPlan::default()
        };
        let (spec, resolved) = spec_for(&plan, "/");
        let prepared = prepare(
            &rootfs,
            bundle.path(),
            &spec,
            &resolved,
            &HostNetworkFiles::default(),
            Some(&ledger),
        )
        .unwrap();
        assert!(dir.path().join("foo\n/etc").is_dir());
        drop(prepared);
        assert_eq!(
            tree(dir.path()),
            before,
            "the rootfs's own empty /foo and /etc stay"
        );
        assert_eq!(
            tree(state.path()),
            Vec::<String>::new(),
            "no ledger file stays"
        );

        // A run that dies: gc removes what it made, and only that.
        let prepared = prepare(
            &rootfs,
            bundle.path(),
            &spec,
            &resolved,
            &HostNetworkFiles::default(),
            Some(&ledger),
        )
        .unwrap();
        let mut prepared = std::mem::ManuallyDrop::new(prepared);
        drop(prepared.ledger.take());
        assert_eq!(ledger.sweep().unwrap(), 5);
        assert_eq!(tree(dir.path()), before);
        assert_eq!(tree(state.path()), Vec::<String>::new());
    }

    #[test]
    fn a_newline_in_the_rootfs_path_does_not_lead_gc_to_another_directory() {
        let base = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        // `a` is another directory, whose path is the rootfs's up to the newline.
        let other = base.path().join("a");
        let root = base.path().join("a\n");
        for r in [&other, &root] {
            for d in ["proc", "dev", "sys"] {
                std::fs::create_dir_all(r.join(d)).unwrap();
            }
        }
        std::fs::create_dir(other.join("etc")).unwrap();
        let other_before = tree(&other);
        let rootfs = Rootfs::open(&root).unwrap();
        let ledger = TargetLedger::new(state.path());
        let (spec, resolved) = spec_for(&MountPlan::default(), "/");
        let prepared = prepare(
            &rootfs,
            bundle.path(),
            &spec,
            &resolved,
            &HostNetworkFiles::default(),
            Some(&ledger),
        )
        .unwrap();
        let mut prepared = std::mem::ManuallyDrop::new(prepared);
        drop(prepared.ledger.take());
        assert_eq!(ledger.sweep().unwrap(), 4);
        assert_eq!(tree(&other), other_before);
        assert_eq!(tree(&root), ["\"dev\"", "\"proc\"", "\"sys\""]);
        assert_eq!(tree(state.path()), Vec::<String>::new());
    }

    #[test]
    fn runs_starting_while_the_last_one_ends_keep_their_targets() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        for d in ["proc", "dev", "sys"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let before = tree(dir.path());
        let rootfs = Rootfs::open(dir.path()).unwrap();
        let ledger = TargetLedger::new(state.path());
        let (spec, resolved) = spec_for(&MountPlan::default(), "/");
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..25 {
                        let bundle = tempfile::tempdir().unwrap();
                        let prepared = prepare(
                            &rootfs,
                            bundle.path(),
                            &spec,
                            &resolved,
                            &HostNetworkFiles::default(),
                            Some(&ledger),
                        )
                        .unwrap();
                        assert!(
                            dir.path().join("etc/hosts").is_file(),
                            "a target of an active run was removed"
                        );
                        drop(prepared);
                    }
                });
            }
        });
        assert_eq!(tree(dir.path()), before);
        assert_eq!(tree(state.path()), Vec::<String>::new());
    }
}
