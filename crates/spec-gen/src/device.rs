//! `--device host[:container][:rwm]` (podman-run(1) `--device`; docs/ocirun-run.md "Linux",
//! Devices).
//!
//! The device cgroup starts from deny-all; each `--device` adds the node to runtime-spec
//! `linux.devices` (the runtime mknods it in the container's `/dev`) and an allow rule to
//! `linux.resources.devices`. What the node is (char or block, major, minor, mode, owner) is a
//! host fact: the caller stats the host path and hands in a [`HostDevice`].

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use crate::SpecError;

/// One `--device` value: which host device, where in the container, with which cgroup access.
///
/// Forms, as podman parses them: `HOST`, `HOST:CONTAINER`, `HOST:ACCESS`,
/// `HOST:CONTAINER:ACCESS`, where ACCESS is a non-empty subset of `rwm` (read, write, mknod;
/// default `rwm`). Both paths are absolute; the container path must lie below `/dev`, which is
/// a tmpfs of the container's own: anywhere else the runtime would create the node in the
/// rootfs and leave it there.
///
/// ```
/// use ocirun_spec_gen::DeviceRequest;
/// let d: DeviceRequest = "/dev/fuse:/dev/myfuse:rw".parse()?;
/// assert_eq!(d.host_path, std::path::Path::new("/dev/fuse"));
/// assert_eq!(d.container_path, std::path::Path::new("/dev/myfuse"));
/// assert_eq!(d.access, "rw");
/// assert_eq!("/dev/fuse".parse::<DeviceRequest>()?.to_string(), "/dev/fuse:/dev/fuse:rwm");
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceRequest {
    /// The device node on the host (absolute).
    pub host_path: PathBuf,
    /// Where the node appears in the container (absolute, below `/dev`).
    pub container_path: PathBuf,
    /// The cgroup access: a non-empty subset of `rwm`, in the order given.
    pub access: String,
}

fn valid_access(access: &str) -> bool {
    !access.is_empty()
        && access.len() <= 3
        && access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && access.char_indices().all(|(i, c)| !access[..i].contains(c))
}

impl FromStr for DeviceRequest {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError::InvalidDevice {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (host, container, access) = match parts[..] {
            [host] => (host, host, "rwm"),
            [host, second] if valid_access(second) => (host, host, second),
            [host, second] => (host, second, "rwm"),
            [host, container, access] => {
                if !valid_access(access) {
                    return Err(bad("the access must be a non-empty subset of rwm"));
                }
                (host, container, access)
            }
            _ => return Err(bad("expected HOST[:CONTAINER][:ACCESS]")),
        };
        let clean = |p: &str, what: &str| -> Result<PathBuf, SpecError> {
            let path = Path::new(p);
            if !path.is_absolute() {
                return Err(bad(&format!("the {what} path must be absolute")));
            }
            if path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
                || p.contains('\0')
            {
                return Err(bad(&format!("the {what} path must not hold . or ..")));
            }
            Ok(path.components().collect())
        };
        let host_path = clean(host, "host")?;
        let container_path = clean(container, "container")?;
        if !container_path.starts_with("/dev") || container_path == Path::new("/dev") {
            return Err(bad("the container path must be below /dev"));
        }
        Ok(Self {
            host_path,
            container_path,
            access: access.to_owned(),
        })
    }
}

impl fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.host_path.display(),
            self.container_path.display(),
            self.access
        )
    }
}

/// Whether a device node is a character or a block device (stat(2) `S_IFCHR`/`S_IFBLK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// A character device (`c`).
    Char,
    /// A block device (`b`).
    Block,
}

/// What the host's device node is, from stat(2) of [`DeviceRequest::host_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostDevice {
    /// Character or block.
    pub kind: DeviceKind,
    /// The major number (major(3) of `st_rdev`).
    pub major: u64,
    /// The minor number (minor(3) of `st_rdev`).
    pub minor: u64,
    /// The permission bits of the node (`st_mode & 0o7777`), given to the container's node.
    pub mode: u32,
    /// The owner of the node.
    pub uid: u32,
    /// The group of the node.
    pub gid: u32,
}

/// A `--device` with the host facts about its node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Device {
    /// What the user asked for.
    pub request: DeviceRequest,
    /// What the host's node is.
    pub host: HostDevice,
}

impl Device {
    /// The runtime-spec `linux.devices` entry and the `linux.resources.devices` allow rule.
    /// The bind mount of the host's node that stands in for it in a user namespace, which
    /// cannot make device nodes (podman's rootless `--device`): read-only unless the access
    /// has `w`.
    pub(crate) fn to_bind_mount(&self) -> Result<oci_spec::runtime::Mount, SpecError> {
        let rw = if self.request.access.contains('w') {
            "rw"
        } else {
            "ro"
        };
        oci_spec::runtime::MountBuilder::default()
            .destination(self.request.container_path.clone())
            .typ("bind")
            .source(self.request.host_path.clone())
            .options(["bind", "nosuid", "noexec", rw].map(String::from).to_vec())
            .build()
            .map_err(crate::generate::internal)
    }

    pub(crate) fn to_spec(&self) -> Result<(LinuxDevice, LinuxDeviceCgroup), SpecError> {
        let typ = match self.host.kind {
            DeviceKind::Char => LinuxDeviceType::C,
            DeviceKind::Block => LinuxDeviceType::B,
        };
        let number = |n: u64| {
            i64::try_from(n).map_err(|_| SpecError::InvalidDevice {
                value: self.request.to_string(),
                reason: format!("device number {n} is out of range"),
            })
        };
        let (major, minor) = (number(self.host.major)?, number(self.host.minor)?);
        let node = LinuxDeviceBuilder::default()
            .path(self.request.container_path.clone())
            .typ(typ)
            .major(major)
            .minor(minor)
            .file_mode(self.host.mode & 0o7777)
            .uid(self.host.uid)
            .gid(self.host.gid)
            .build()
            .map_err(crate::generate::internal)?;
        let rule = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .major(major)
            .minor(minor)
            .access(self.request.access.clone())
            .build()
            .map_err(crate::generate::internal)?;
        Ok((node, rule))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<DeviceRequest, String> {
        s.parse::<DeviceRequest>().map_err(|e| e.to_string())
    }

    #[test]
    fn forms() {
        let d = parse("/dev/null").unwrap();
        assert_eq!(
            (d.container_path.to_str(), d.access.as_str()),
            (Some("/dev/null"), "rwm")
        );
        let d = parse("/dev/null:r").unwrap();
        assert_eq!(
            (d.container_path.to_str(), d.access.as_str()),
            (Some("/dev/null"), "r")
        );
        let d = parse("/dev/null:/dev/nothing").unwrap();
        assert_eq!(
            (d.container_path.to_str(), d.access.as_str()),
            (Some("/dev/nothing"), "rwm")
        );
        let d = parse("/dev//null/:/dev/x/y:mw").unwrap();
        assert_eq!(d.to_string(), "/dev/null:/dev/x/y:mw");
    }

    #[test]
    fn errors_name_the_value() {
        assert_eq!(
            parse("/dev/null:/dev/x:rwx").unwrap_err(),
            r#"invalid --device "/dev/null:/dev/x:rwx": the access must be a non-empty subset of rwm"#
        );
        assert!(parse("dev/null")
            .unwrap_err()
            .contains("host path must be absolute"));
        assert!(parse("/dev/null:x")
            .unwrap_err()
            .contains("container path must be absolute"));
        assert!(parse("/dev/null:/etc/null")
            .unwrap_err()
            .contains("below /dev"));
        assert!(parse("/dev/null:/dev").unwrap_err().contains("below /dev"));
        assert!(parse("/dev/null:/dev/../etc/x")
            .unwrap_err()
            .contains("must not hold"));
        assert!(parse("/a:/dev/b:r:w")
            .unwrap_err()
            .contains("expected HOST"));
        assert!(parse("/dev/null:/dev/x:rr")
            .unwrap_err()
            .contains("subset of rwm"));
        assert!(parse("").is_err());
    }

    #[test]
    fn spec_entries() {
        let device = Device {
            request: parse("/dev/fuse:/dev/f:rw").unwrap(),
            host: HostDevice {
                kind: DeviceKind::Char,
                major: 10,
                minor: 229,
                mode: 0o20666,
                uid: 0,
                gid: 0,
            },
        };
        let (node, rule) = device.to_spec().unwrap();
        assert_eq!(node.path(), Path::new("/dev/f"));
        assert_eq!(
            (node.major(), node.minor(), node.file_mode()),
            (10, 229, Some(0o666))
        );
        assert_eq!(rule.to_string(), "c 10:229 rw");
        assert!(rule.allow());
    }

    proptest! {
        #[test]
        fn container_paths_outside_dev_are_refused(dir in "/(etc|usr|tmp|devices)(/[a-z]{1,5})?") {
            let text = format!("/dev/null:{dir}");
            prop_assert!(text.parse::<DeviceRequest>().is_err());
        }

        #[test]
        fn access_outside_rwm_is_refused(access in "[a-z]{1,3}") {
            prop_assume!(!valid_access(&access));
            let text = format!("/dev/null:/dev/x:{access}");
            prop_assert!(text.parse::<DeviceRequest>().is_err());
        }

        #[test]
        fn parser_never_panics_and_round_trips(s in "[/a-z:.rwm]{0,24}") {
            if let Ok(d) = s.parse::<DeviceRequest>() {
                prop_assert!(d.container_path.starts_with("/dev"));
                prop_assert!(valid_access(&d.access));
                prop_assert_eq!(d.to_string().parse::<DeviceRequest>().unwrap(), d);
            }
        }
    }
}
