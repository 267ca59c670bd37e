//! The mounts of a run beyond spec-gen's defaults, and how they go into the spec.

use std::path::{Path, PathBuf};

use ocirun_spec_gen::oci_spec::runtime::{LinuxNamespaceType, Mount, MountBuilder, Spec};

use crate::user_mount::clean_destination;
use crate::{
    check_unique_destinations, generated_mounts, merge_mounts, ContainerDir, GeneratedOptions,
    MountSpecError, MountsError, Overlay, Propagation, SecretSpec, UserMount, UserMountKind,
};

/// Everything a run mounts besides spec-gen's defaults, in BEHAVIOR.md's order of
/// precedence: the user's mounts (`-v`, `--mount`, `--tmpfs`), the image's volumes, the
/// secrets, the generated files. [`MountPlan::apply`] puts them into a spec (pure);
/// [`prepare`](crate::prepare) makes on disk what they need.
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
pub fn has_network_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network))
}

impl MountPlan {
    /// The container directory, or an error naming what needs it.
    pub(crate) fn dir(&self, what: &'static str) -> Result<&ContainerDir, MountsError> {
        self.container_dir
            .as_ref()
            .ok_or(MountsError::NoContainerDir(what))
    }

    /// Whether the user mount at `index` is an overlay with throw-away directories.
    pub(crate) fn throw_away_overlay(&self, index: usize) -> bool {
        matches!(
            &self.user_mounts[index].kind,
            UserMountKind::Bind(b) if b.overlay == Some(Overlay::ThrowAway)
        )
    }

    /// The mounts of the plan, as layers in order of precedence.
    fn layers(&self, owner: (u32, u32)) -> Result<[Vec<Mount>; 4], MountsError> {
        let mut user = Vec::new();
        for (i, m) in self.user_mounts.iter().enumerate() {
            let overlay_dir = if self.throw_away_overlay(i) {
                Some(self.dir("an overlay volume (O)")?.overlay_dir(i))
            } else {
                None
            };
            user.push(m.to_oci(owner, overlay_dir.as_deref()));
        }
        let mut image = Vec::new();
        for volume in &self.image_volumes {
            image.push(bind(
                self.dir("an image volume")?.volume_path(volume),
                volume,
            ));
        }
        let mut secrets = Vec::new();
        for secret in &self.secrets {
            let dir = self.dir("a secret")?;
            secrets.push(bind(
                dir.secret_path(&secret.destination),
                &secret.destination,
            ));
        }
        Ok([user, image, secrets, generated_mounts(&self.generated)])
    }

    /// Puts the plan's mounts into `spec` ahead of its own (spec-gen's defaults): for one
    /// destination the first of user mounts, image volumes, secrets, generated files,
    /// defaults wins; all are sorted by depth, then path (BEHAVIOR.md "Mounts", Order). A
    /// `shared` or `slave` user bind makes the rootfs propagation `shared` or `rslave`, as
    /// podman does, so that mount events can cross it. Pure: no file is read or written.
    ///
    /// # Errors
    /// [`MountSpecError::DuplicateDestination`] for two user mounts on one destination;
    /// [`MountsError::NoContainerDir`] when image volumes, secrets or throw-away overlays
    /// come without a container directory.
    pub fn apply(&self, spec: &mut Spec) -> Result<(), MountsError> {
        check_unique_destinations(&self.user_mounts)?;
        let owner = spec
            .process()
            .as_ref()
            .map_or((0, 0), |p| (p.user().uid(), p.user().gid()));
        let [user, image, secrets, generated] = self.layers(owner)?;
        let defaults = spec.mounts().clone().unwrap_or_default();
        spec.set_mounts(Some(merge_mounts([
            user, image, secrets, generated, defaults,
        ])));

        let propagations: Vec<Propagation> = self
            .user_mounts
            .iter()
            .filter_map(|m| match &m.kind {
                UserMountKind::Bind(b) => Some(b.propagation),
                UserMountKind::Tmpfs(_) => None,
            })
            .collect();
        let root = if propagations
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
        if let (Some(root), Some(linux)) = (root, spec.linux_mut()) {
            if linux.rootfs_propagation().is_none() {
                linux.set_rootfs_propagation(Some(root.to_owned()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContainerStore, MountFlag, TmpfsSpec, VolumeSpec};
    use ocirun_spec_gen::{RunOptions, SpecGenerator};

    fn spec() -> Spec {
        let options = RunOptions::new(vec!["true".into()]);
        SpecGenerator::new("/r", "0123456789abcdef", &options)
            .generate()
            .unwrap()
    }

    fn destinations(spec: &Spec) -> Vec<(String, String)> {
        spec.mounts()
            .as_ref()
            .unwrap()
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

    #[test]
    fn first_wins_in_behaviour_order_then_sorted() {
        let store = ContainerStore::new("/var/lib/ocirun/containers");
        let volume = |s: &str| s.parse::<VolumeSpec>().unwrap().to_user_mount(s);
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
            container_dir: Some(store.named("n1")),
        };
        let mut spec = spec();
        plan.apply(&mut spec).unwrap();
        assert_eq!(
            destinations(&spec),
            [
                ("/data", "/h/data"),
                ("/dev", "tmpfs"),
                ("/proc", "proc"),
                ("/sys", "sysfs"),
                ("/t", "tmpfs"),
                ("/dev/mqueue", "mqueue"),
                ("/dev/pts", "devpts"),
                ("/dev/shm", "tmpfs"),
                ("/etc/hostname", "hostname"),
                ("/etc/hosts", "/h/hosts"),
                ("/etc/resolv.conf", "resolv.conf"),
                (
                    "/run/secrets",
                    "/var/lib/ocirun/containers/n1/secrets/run-secrets"
                ),
                ("/sys/fs/cgroup", "cgroup"),
                (
                    "/var/lib/x",
                    "/var/lib/ocirun/containers/n1/volumes/var-lib-x"
                ),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(spec.linux().as_ref().unwrap().rootfs_propagation(), &None);
    }

    #[test]
    fn duplicates_among_user_mounts_are_refused() {
        let plan = MountPlan {
            user_mounts: vec![
                "/a:/d"
                    .parse::<VolumeSpec>()
                    .unwrap()
                    .to_user_mount("/a:/d"),
                "/d:exec"
                    .parse::<TmpfsSpec>()
                    .unwrap()
                    .to_user_mount("/d:exec"),
            ],
            ..MountPlan::default()
        };
        assert_eq!(
            plan.apply(&mut spec()).unwrap_err().to_string(),
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
            plan.apply(&mut spec()).unwrap_err().to_string(),
            "an image volume needs a container directory, and the mount plan has none"
        );
    }

    #[test]
    fn shared_binds_make_the_rootfs_shared() {
        let plan = MountPlan {
            user_mounts: vec!["/a:/d:rshared"
                .parse::<VolumeSpec>()
                .unwrap()
                .to_user_mount("/a:/d:rshared")],
            ..MountPlan::default()
        };
        let mut spec = spec();
        plan.apply(&mut spec).unwrap();
        assert_eq!(
            spec.linux()
                .as_ref()
                .unwrap()
                .rootfs_propagation()
                .as_deref(),
            Some("shared")
        );
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
        let mut options = RunOptions::new(vec!["true".into()]);
        let s = SpecGenerator::new("/r", "0123456789abcdef", &options)
            .generate()
            .unwrap();
        assert!(!has_network_namespace(&s), "host network by default");
        options.network = ocirun_spec_gen::NetworkMode::None;
        let s = SpecGenerator::new("/r", "0123456789abcdef", &options)
            .generate()
            .unwrap();
        assert!(has_network_namespace(&s));
    }
}
