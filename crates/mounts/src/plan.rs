//! The mounts of a run beyond the runtime spec's defaults, resolved into OCI mounts.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Mount, MountBuilder, Spec};

use crate::generated::generated_mounts;
use crate::store::claim_cache;
use crate::user_mount::clean_destination;
use crate::{
    check_unique_destinations, CacheHold, ContainerDir, GeneratedOptions, MountSpecError,
    MountsError, Overlay, Propagation, Rootfs, SecretSpec, UserMount, UserMountKind,
};

/// Everything a run mounts besides the spec's default mounts, in order of precedence: the
/// user's mounts (`-v`, `--mount`, `--tmpfs`), the image's volumes, the secrets, the generated
/// files. [`MountPlan::resolve`] turns it into OCI mounts (pure); [`prepare`](crate::prepare)
/// makes on disk what they need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountPlan {
    /// The user's mounts, in the order given, sources resolved ([`UserMount::resolve`]).
    pub user_mounts: Vec<UserMount>,
    /// The image's `Volumes` paths ([`image_volume_path`]).
    pub image_volumes: Vec<PathBuf>,
    /// The secrets of the mounts files ([`load_secrets`](crate::load_secrets)).
    pub secrets: Vec<SecretSpec>,
    /// What shapes the generated files.
    pub generated: GeneratedOptions,
    /// The container's directory: needed for image volumes, secrets and throw-away overlays.
    pub container_dir: Option<ContainerDir>,
    /// The user mounts (by index) that are `sharing=private` caches found in use by another
    /// run ([`MountPlan::claim_caches`]): each gets a throw-away directory in the container
    /// directory for this run.
    pub throw_away_caches: Vec<usize>,
}

/// A [`MountPlan`] resolved into the OCI mounts a spec needs ([`MountPlan::resolve`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResolvedMounts {
    /// The plan it was resolved from.
    pub plan: MountPlan,
    /// The mounts, one per destination, in order of precedence (the user's mounts, then the
    /// image volumes, the secrets and the generated files that no earlier one shadows);
    /// unsorted. Hand them to the spec generator, ahead of its defaults (ocirun-spec-gen's
    /// `SpecGenerator::mounts`, whose `merge_mounts` sorts them).
    pub mounts: Vec<Mount>,
    /// The `linux.rootfsPropagation` the user's binds need: `shared` for a `shared` or
    /// `rshared` bind, else `rslave` for a `slave` or `rslave` one (podman's rule), so that
    /// mount events can cross the rootfs; `None` otherwise.
    pub rootfs_propagation: Option<&'static str>,
    /// The image volumes that won their destination, with their copy's path.
    pub(crate) image_volumes: Vec<(PathBuf, PathBuf)>,
    /// The secrets that won their destination, with their copy's path.
    pub(crate) secrets: Vec<(SecretSpec, PathBuf)>,
    /// The user mounts (by index) that are `--secret`s, with their file's path relative to
    /// the bundle.
    pub(crate) run_secrets: Vec<(usize, PathBuf)>,
}

/// Checks and cleans a key of the image configuration's `Volumes` (an absolute path).
///
/// # Errors
/// [`MountSpecError::ImageVolume`] for a relative path, or one whose `..` leaves `/`.
pub fn image_volume_path(raw: &str) -> Result<PathBuf, MountSpecError> {
    clean_destination(raw).map_err(|reason| MountSpecError::ImageVolume {
        path: raw.to_owned(),
        reason,
    })
}

/// The directory of the bundle that holds the files of the `--secret`s: `secrets/N`.
pub(crate) const RUN_SECRETS_DIR: &str = "secrets";

/// Whether `destination`, resolved in `rootfs` one component at a time, reaches one of the
/// resolved directories `dirs` (or lies below one) at any step.
fn under_any(rootfs: &Rootfs, destination: &Path, dirs: &[PathBuf]) -> bool {
    let mut prefix = PathBuf::from("/");
    for component in destination.components() {
        if let std::path::Component::Normal(name) = component {
            prefix.push(name);
            match rootfs.path_for_create(&prefix) {
                Ok(resolved) if dirs.iter().any(|d| resolved.starts_with(d)) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }
    false
}

fn bind(source: PathBuf, destination: &Path) -> Mount {
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(vec![
            "rbind".to_owned(),
            "rprivate".to_owned(),
            "rw".to_owned(),
        ])
        .build()
        .unwrap_or_else(|e| panic!("mount {} is malformed: {e}", destination.display()))
}

/// Whether the spec gives the container its own network namespace (a `network` entry in
/// `linux.namespaces`, new or joined by path): then the host's loopback is not the
/// container's.
pub(crate) fn has_network_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network))
}

/// The mount option of runc and crun that copies what the rootfs holds at a tmpfs's
/// destination into the new tmpfs.
const TMPCOPYUP: &str = "tmpcopyup";

impl ResolvedMounts {
    /// Drops `tmpcopyup` from the tmpfs mounts where it would copy nothing, so that only the
    /// copies that matter need a runtime that has the option (youki 0.7 has not, and refuses
    /// the mount): where the rootfs holds nothing at the destination (nothing there, or an
    /// empty directory) and no other of these mounts lies above it (whose source then holds
    /// what is there).
    pub fn drop_empty_copy_ups(&mut self, rootfs: &Rootfs) {
        let destinations: Vec<PathBuf> = self
            .mounts
            .iter()
            .map(|m| m.destination().clone())
            .collect();
        for mount in &mut self.mounts {
            let copies = mount
                .options()
                .as_ref()
                .is_some_and(|o| o.iter().any(|o| o == TMPCOPYUP));
            if !copies {
                continue;
            }
            let destination = mount.destination();
            let below_another = destinations
                .iter()
                .any(|d| d != destination && destination.starts_with(d));
            if below_another || rootfs.holds_something_at(destination) {
                continue;
            }
            let options: Vec<String> = mount
                .options()
                .iter()
                .flatten()
                .filter(|o| *o != TMPCOPYUP)
                .cloned()
                .collect();
            mount.set_options(Some(options));
        }
    }

    /// The destinations of the tmpfs mounts that copy what the rootfs holds there into the
    /// tmpfs (`tmpcopyup`): after [`Self::drop_empty_copy_ups`], those that need the option
    /// from the runtime.
    pub fn copy_ups(&self) -> Vec<&Path> {
        self.mounts
            .iter()
            .filter(|m| {
                m.options()
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|o| o == TMPCOPYUP))
            })
            .map(|m| m.destination().as_path())
            .collect()
    }
}

impl MountPlan {
    /// The container directory, or an error naming what needs it.
    pub(crate) fn dir(&self, what: &'static str) -> Result<&ContainerDir, MountsError> {
        self.container_dir
            .as_ref()
            .ok_or(MountsError::NoContainerDir(what))
    }

    /// Takes the locks the cache mounts need (see [`CacheSharing`](crate::CacheSharing)): a `locked` cache waits
    /// while another run uses it, asking `cancelled` between tries; a `private` one that is in
    /// use gets a throw-away directory for this run ([`MountPlan::throw_away_caches`]). Call
    /// it after [`UserMount::set_dir`] and before [`MountPlan::resolve`]; keep what it returns
    /// until the run ends.
    ///
    /// # Errors
    /// [`MountsError::Cancelled`] when `cancelled` said so; [`MountsError::Host`] for a lock
    /// file.
    pub fn claim_caches(
        &mut self,
        cancelled: &mut dyn FnMut() -> bool,
    ) -> Result<Vec<CacheHold>, MountsError> {
        let mut holds = Vec::new();
        for (i, m) in self.user_mounts.iter().enumerate() {
            if let UserMountKind::Cache(cache) = &m.kind {
                match claim_cache(&cache.dir, cache.sharing, cancelled)? {
                    Some(hold) => holds.push(hold),
                    None => {
                        tracing::debug!(cache = %cache.dir.display(), "private cache in use: a throw-away one");
                        self.throw_away_caches.push(i);
                        holds.push(CacheHold::none());
                    }
                }
            }
        }
        Ok(holds)
    }

    /// Whether the user mount at `index` is an overlay with throw-away directories.
    pub(crate) fn throw_away_overlay(&self, index: usize) -> bool {
        matches!(
            &self.user_mounts[index].kind,
            UserMountKind::Bind(b) if b.overlay == Some(Overlay::ThrowAway)
        )
    }

    /// Resolves the plan (kept in the result) into OCI mounts: for one destination the first of the user's
    /// mounts, the image volumes, the secrets and the generated files wins. `owner` is the
    /// run's `(uid, gid)`, which a `U` tmpfs is given. Pure: no file is read or written; a run
    /// resolves with [`Self::resolve_in`], which also knows the rootfs.
    ///
    /// # Errors
    /// [`MountSpecError::DuplicateDestination`] for two user mounts on one destination;
    /// [`MountsError::NoContainerDir`] when image volumes, secrets or throw-away overlays
    /// come without a container directory.
    pub fn resolve(self, owner: (u32, u32)) -> Result<ResolvedMounts, MountsError> {
        self.resolve_with(owner, |_| false)
    }

    /// [`Self::resolve`] for a run on `rootfs`, where the user's bind mounts win over
    /// ocirun's own mounts below them.
    ///
    /// The rule: an image volume, a secret or a generated file whose destination lies at or
    /// below the destination of one of the user's bind mounts of a host directory (`-v`, or
    /// `--mount type=bind`; an overlay `O` too), of a named volume or of a cache is left out,
    /// so that nothing is created in that directory; the destinations are compared as the runtime resolves them in the
    /// rootfs, through its symlinks (dangling ones too), at every step of the path. So with
    /// `-v SRC:/etc`, or `-v SRC:/data` where the rootfs has `/data -> /etc`, the container
    /// gets SRC's own `hosts`, `hostname` and `resolv.conf`, and ocirun's are not mounted. The
    /// rootfs is only read.
    ///
    /// A destination that leads through a symlink of the rootfs into `/proc`, `/sys` or `/dev`
    /// is refused: the runtime mounts its own filesystems there (procfs, sysfs, a tmpfs) and
    /// resolves the destination through them (`/proc/self/root/...`, `/proc/1/cwd/...` lead
    /// anywhere), not through the rootfs's directories that ocirun sees, so it would create
    /// and mount elsewhere than ocirun prepared. runc refuses a mount inside `/proc` itself.
    ///
    /// # Errors
    /// As [`Self::resolve`]; [`MountsError::DestinationThroughRuntimeMount`] naming the
    /// destination and the symlink.
    pub fn resolve_in(
        self,
        rootfs: &Rootfs,
        owner: (u32, u32),
    ) -> Result<ResolvedMounts, MountsError> {
        let resolved = self.resolve_shadowed(rootfs, owner)?;
        for mount in &resolved.mounts {
            let destination = mount.destination();
            if let Some((link, target, dir)) = rootfs.symlink_into_runtime_dir(destination) {
                return Err(MountsError::DestinationThroughRuntimeMount {
                    destination: destination.clone(),
                    link,
                    target,
                    dir,
                });
            }
        }
        Ok(resolved)
    }

    /// [`Self::resolve`], leaving out what the user's bind mounts shadow in `rootfs`.
    fn resolve_shadowed(
        self,
        rootfs: &Rootfs,
        owner: (u32, u32),
    ) -> Result<ResolvedMounts, MountsError> {
        let binds: Vec<PathBuf> = self
            .user_mounts
            .iter()
            .filter(|m| match &m.kind {
                UserMountKind::Bind(b) => b.source.is_dir(),
                // Named volumes and caches are directories too, made on first use.
                UserMountKind::Volume(_) | UserMountKind::Cache(_) => true,
                UserMountKind::Tmpfs(_) | UserMountKind::Secret(_) => false,
            })
            .filter_map(|m| rootfs.path_for_create(&m.destination).ok())
            .collect();
        if binds.is_empty() {
            return self.resolve(owner);
        }
        self.resolve_with(owner, |destination| {
            let shadowed = under_any(rootfs, destination, &binds);
            if shadowed {
                tracing::debug!(
                    destination = %destination.display(),
                    "left out: below a bind mount of the user's"
                );
            }
            shadowed
        })
    }

    fn resolve_with(
        self,
        owner: (u32, u32),
        shadowed: impl Fn(&Path) -> bool,
    ) -> Result<ResolvedMounts, MountsError> {
        check_unique_destinations(&self.user_mounts)?;
        let mut mounts: Vec<Mount> = Vec::new();
        let taken = |mounts: &[Mount], destination: &Path| {
            mounts.iter().any(|m| m.destination() == destination)
        };
        let mut run_secrets = Vec::new();
        for (i, m) in self.user_mounts.iter().enumerate() {
            let aux = if self.throw_away_overlay(i) {
                Some(self.dir("an overlay volume (O)")?.overlay_dir(i))
            } else if self.throw_away_caches.contains(&i) {
                Some(self.dir("a private cache in use")?.cache_dir(i))
            } else if matches!(m.kind, UserMountKind::Secret(_)) {
                let file = PathBuf::from(RUN_SECRETS_DIR).join(run_secrets.len().to_string());
                run_secrets.push((i, file.clone()));
                Some(file)
            } else {
                None
            };
            mounts.push(m.to_oci(owner, aux.as_deref()));
        }
        let mut image_volumes = Vec::new();
        for volume in &self.image_volumes {
            let copy = self.dir("an image volume")?.volume_path(volume);
            if !taken(&mounts, volume) && !shadowed(volume) {
                mounts.push(bind(copy.clone(), volume));
                image_volumes.push((volume.clone(), copy));
            }
        }
        let mut secrets = Vec::new();
        for secret in &self.secrets {
            let copy = self.dir("a secret")?.secret_path(&secret.destination);
            if !taken(&mounts, &secret.destination) && !shadowed(&secret.destination) {
                mounts.push(bind(copy.clone(), &secret.destination));
                secrets.push((secret.clone(), copy));
            }
        }
        for generated in generated_mounts(&self.generated) {
            if !taken(&mounts, generated.destination()) && !shadowed(generated.destination()) {
                mounts.push(generated);
            }
        }

        let propagations: Vec<Propagation> = self
            .user_mounts
            .iter()
            .filter_map(|m| match &m.kind {
                UserMountKind::Bind(b) => Some(b.propagation),
                UserMountKind::Volume(v) => Some(v.bind.propagation),
                _ => None,
            })
            .collect();
        let rootfs_propagation = if propagations
            .iter()
            .any(|p| matches!(p, Propagation::Shared | Propagation::RShared))
        {
            Some("shared")
        } else if propagations
            .iter()
            .any(|p| matches!(p, Propagation::Slave | Propagation::RSlave))
        {
            Some("rslave")
        } else {
            None
        };
        Ok(ResolvedMounts {
            plan: self,
            mounts,
            rootfs_propagation,
            image_volumes,
            secrets,
            run_secrets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContainerDir, MountFlag, TmpfsSpec, VolumeSpec};

    fn destinations(mounts: &[Mount]) -> Vec<(String, String)> {
        mounts
            .iter()
            .map(|m| {
                (
                    m.destination().display().to_string(),
                    m.source()
                        .as_ref()
                        .map(|s| s.display().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    fn volume(s: &str) -> UserMount {
        s.parse::<VolumeSpec>().unwrap().to_user_mount(s)
    }

    #[test]
    fn only_copy_ups_that_copy_something_stay() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("full")).unwrap();
        std::fs::write(r.join("full/f"), "x").unwrap();
        std::fs::create_dir_all(r.join("empty")).unwrap();
        std::fs::write(r.join("file"), "x").unwrap();
        std::os::unix::fs::symlink("/full", r.join("link")).unwrap();
        let rootfs = Rootfs::open(r).unwrap();
        let tmpfs = |s: &str| s.parse::<TmpfsSpec>().unwrap().to_user_mount(s);
        let plan = MountPlan {
            user_mounts: vec![
                tmpfs("/missing"),
                tmpfs("/empty"),
                tmpfs("/full"),
                tmpfs("/file"),
                tmpfs("/link"),
                tmpfs("/full/sub"),
                tmpfs("/empty2:notmpcopyup"),
                volume("/h:/vol"),
                tmpfs("/vol/t"),
            ],
            image_volumes: Vec::new(),
            secrets: Vec::new(),
            generated: GeneratedOptions::default(),
            container_dir: None,
            throw_away_caches: Vec::new(),
        };
        let mut resolved = plan.resolve((0, 0)).unwrap();
        assert_eq!(resolved.copy_ups().len(), 7);
        resolved.drop_empty_copy_ups(&rootfs);
        assert_eq!(
            resolved.copy_ups(),
            ["/full", "/file", "/link", "/full/sub", "/vol/t"].map(Path::new)
        );
        let missing = &resolved.mounts[0];
        assert_eq!(
            missing.options().as_deref().unwrap(),
            ["rw", "rprivate", "noexec", "nosuid", "nodev"].map(String::from)
        );
    }

    #[test]
    fn first_wins_in_order_of_precedence() {
        let plan = MountPlan {
            user_mounts: vec![
                volume("/h/hosts:/etc/hosts"),
                volume("/h/data:/data"),
                "type=tmpfs,dst=/dev/shm"
                    .parse::<MountFlag>()
                    .unwrap()
                    .to_user_mount("type=tmpfs,dst=/dev/shm"),
                "/t".parse::<TmpfsSpec>().unwrap().to_user_mount("/t"),
            ],
            image_volumes: vec!["/data".into(), "/var/lib/x".into()],
            secrets: vec![
                SecretSpec {
                    source: "/usr/share/secrets".into(),
                    destination: "/run/secrets".into(),
                },
                SecretSpec {
                    source: "/other".into(),
                    destination: "/var/lib/x".into(),
                },
            ],
            generated: GeneratedOptions::default(),
            container_dir: Some(ContainerDir::persistent("/var/lib/ocirun/containers/n1")),
            throw_away_caches: Vec::new(),
        };
        let resolved = plan.resolve((0, 0)).unwrap();
        assert_eq!(
            destinations(&resolved.mounts),
            [
                ("/etc/hosts", "/h/hosts"),
                ("/data", "/h/data"),
                ("/dev/shm", "tmpfs"),
                ("/t", "tmpfs"),
                (
                    "/var/lib/x",
                    "/var/lib/ocirun/containers/n1/volumes/var-lib-x"
                ),
                (
                    "/run/secrets",
                    "/var/lib/ocirun/containers/n1/secrets/run-secrets"
                ),
                ("/etc/hostname", "hostname"),
                ("/etc/resolv.conf", "resolv.conf"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        // Only the winners are copied: /data is the user's, the secret on /var/lib/x lost.
        assert_eq!(
            resolved.image_volumes,
            [(
                PathBuf::from("/var/lib/x"),
                PathBuf::from("/var/lib/ocirun/containers/n1/volumes/var-lib-x")
            )]
        );
        assert_eq!(resolved.secrets.len(), 1);
        assert_eq!(resolved.secrets[0].0.destination, Path::new("/run/secrets"));
        assert_eq!(resolved.rootfs_propagation, None);
    }

    #[test]
    fn duplicates_among_user_mounts_are_refused() {
        let plan = MountPlan {
            user_mounts: vec![
                volume("/a:/d"),
                "/d:exec"
                    .parse::<TmpfsSpec>()
                    .unwrap()
                    .to_user_mount("/d:exec"),
            ],
            ..MountPlan::default()
        };
        assert_eq!(
            plan.resolve((0, 0)).unwrap_err().to_string(),
            r#"duplicate mount destination "/d": -v "/a:/d" and --tmpfs "/d:exec""#
        );
    }

    #[test]
    fn image_volumes_need_a_container_dir() {
        let plan = MountPlan {
            image_volumes: vec!["/v".into()],
            ..MountPlan::default()
        };
        assert_eq!(
            plan.resolve((0, 0)).unwrap_err().to_string(),
            "an image volume needs a container directory, and the mount plan has none"
        );
    }

    #[test]
    fn shared_and_slave_binds_set_the_rootfs_propagation() {
        for (spec, want) in [
            ("/a:/d:rshared", Some("shared")),
            ("/a:/d:slave", Some("rslave")),
            ("/a:/d", None),
        ] {
            let plan = MountPlan {
                user_mounts: vec![volume(spec)],
                ..MountPlan::default()
            };
            assert_eq!(
                plan.resolve((0, 0)).unwrap().rootfs_propagation,
                want,
                "{spec}"
            );
        }
    }

    #[test]
    fn a_chowned_tmpfs_gets_the_owner() {
        let plan = MountPlan {
            user_mounts: vec!["type=tmpfs,dst=/t,U"
                .parse::<MountFlag>()
                .unwrap()
                .to_user_mount("type=tmpfs,dst=/t,U")],
            ..MountPlan::default()
        };
        let resolved = plan.resolve((1000, 100)).unwrap();
        let options = resolved.mounts[0].options().clone().unwrap();
        assert!(options.contains(&"uid=1000".to_owned()), "{options:?}");
        assert!(options.contains(&"gid=100".to_owned()), "{options:?}");
    }

    #[test]
    fn image_volume_paths_are_checked() {
        assert_eq!(
            image_volume_path("/var/lib/../data/").unwrap(),
            Path::new("/var/data")
        );
        assert_eq!(
            image_volume_path("data").unwrap_err().to_string(),
            r#"invalid image volume "data": destination "data" is not an absolute path"#
        );
    }

    #[test]
    fn network_namespace_is_read_from_the_spec() {
        use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder, SpecBuilder};
        let with = |types: &[LinuxNamespaceType]| {
            let namespaces = types
                .iter()
                .map(|t| LinuxNamespaceBuilder::default().typ(*t).build().unwrap())
                .collect::<Vec<_>>();
            SpecBuilder::default()
                .linux(
                    LinuxBuilder::default()
                        .namespaces(namespaces)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        assert!(!has_network_namespace(&with(&[LinuxNamespaceType::Pid])));
        assert!(has_network_namespace(&with(&[
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network
        ])));
    }

    #[test]
    fn the_users_binds_win_over_ocirun_s_mounts_below_them() {
        let root = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in ["etc", "var/run", "a/real"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::os::unix::fs::symlink("/etc", r.join("data")).unwrap();
        std::os::unix::fs::symlink("../var/run", r.join("run")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", r.join("a/b")).unwrap();
        let rootfs = Rootfs::open_unchecked(r).unwrap();
        let src = host.path().display().to_string();
        let file = host.path().join("f");
        std::fs::write(&file, "").unwrap();
        let resolve = |user: &[String], tmpfs: &[&str]| {
            let mut user_mounts: Vec<UserMount> = user.iter().map(|v| volume(v)).collect();
            user_mounts.extend(
                tmpfs
                    .iter()
                    .map(|t| t.parse::<TmpfsSpec>().unwrap().to_user_mount(t)),
            );
            let plan = MountPlan {
                user_mounts,
                image_volumes: vec!["/var/run/cache".into(), "/a/b/c".into(), "/srv".into()],
                secrets: vec![SecretSpec {
                    source: "/usr/share/secrets".into(),
                    destination: "/run/secrets".into(),
                }],
                generated: GeneratedOptions {
                    container_env: Some(crate::ContainerEnv::new("", "abc", false)),
                    ..GeneratedOptions::default()
                },
                container_dir: Some(ContainerDir::persistent("/c")),
                throw_away_caches: Vec::new(),
            };
            let resolved = plan.clone().resolve_in(&rootfs, (0, 0)).unwrap();
            destinations(&resolved.mounts)
                .into_iter()
                .map(|(d, _)| d)
                .collect::<Vec<_>>()
        };
        let all = [
            "/var/run/cache",
            "/a/b/c",
            "/srv",
            "/run/secrets",
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
            "/run/.containerenv",
        ];
        assert_eq!(resolve(&[], &[]), all);
        // Through the rootfs's symlink /data -> /etc.
        assert_eq!(
            resolve(&[format!("{src}:/data")], &[]),
            [
                "/data",
                "/var/run/cache",
                "/a/b/c",
                "/srv",
                "/run/secrets",
                "/run/.containerenv"
            ]
        );
        // /run -> ../var/run: the volume below /var/run and the secret and .containerenv below
        // /run are the same directory.
        assert_eq!(
            resolve(&[format!("{src}:/var/run")], &[]),
            [
                "/var/run",
                "/a/b/c",
                "/srv",
                "/etc/hosts",
                "/etc/hostname",
                "/etc/resolv.conf"
            ]
        );
        // /a/b is a dangling symlink in the rootfs, but /a is the user's directory.
        assert_eq!(
            resolve(&[format!("{src}:/a")], &[])[..3],
            ["/a", "/var/run/cache", "/srv"]
        );
        // A tmpfs, or a bind of a file, leaves them.
        let mut with_tmpfs = vec!["/etc".to_owned()];
        with_tmpfs.extend(all.iter().map(|d| (*d).to_owned()));
        assert_eq!(resolve(&[], &["/etc"]), with_tmpfs);
        let with_file = resolve(&[format!("{}:/etc/hosts", file.display())], &[]);
        assert_eq!(with_file.len(), all.len());
        // Without the rootfs, nothing is left out.
        let plan = MountPlan {
            user_mounts: vec![volume(&format!("{src}:/etc"))],
            ..MountPlan::default()
        };
        assert_eq!(plan.resolve((0, 0)).unwrap().mounts.len(), 4);
    }
}
