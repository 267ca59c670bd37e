//! Gathering [`HostFacts`] and [`HostDevice`]s from the running system (cargo feature `host`).
//!
//! Everything else in this crate is pure; this module is the I/O that a caller of
//! [`SpecGenerator`](crate::SpecGenerator) would otherwise write itself: the process's own
//! environment, hard rlimits, capabilities, the kernel release, whether SELinux and AppArmor are
//! enabled, whether swap can be limited, the hostname, device nodes, and where an init for
//! `--init` is.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::sys::resource::{getrlimit, Resource};

use crate::seccomp::parse_kernel_release;
use crate::{Device, DeviceKind, DeviceRequest, HostDevice, HostFacts, RlimitKind};

/// Host paths searched for an init binary for `--init`, in order: Debian's tini-static, podman's
/// catatonit, Debian's catatonit. The binary must be statically linked: it runs inside any
/// rootfs. tini comes first because it starts the command with the signal mask it had itself
/// (empty); catatonit up to 0.1.7 (Debian bookworm's) leaves SIGTSTP, SIGTTIN and SIGTTOU
/// blocked in the command, so that the command's traps for them never fire.
pub const INIT_CANDIDATES: [&str; 3] = [
    "/usr/bin/tini-static",
    "/usr/libexec/podman/catatonit",
    "/usr/bin/catatonit",
];

/// The directories below `/dev` whose nodes [`host_devices`] leaves out, as podman and runc
/// do: the container gets its own `pts`, `shm` and `mqueue`, and `fd` is a symlink farm.
const HOST_DEVICE_SKIPPED_DIRS: [&str; 6] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts"];

/// Every device node below `dir` (the host's `/dev` for `--privileged`), found as podman
/// finds them for a privileged container: recursively, leaving out the directories `pts`,
/// `shm`, `fd` and `mqueue`, the `console` node and symlinks; each as a [`Device`] at the same
/// path in the container with access `rwm`, sorted by path. An entry that vanishes while it is
/// read is left out.
///
/// # Errors
/// When `dir`, or a directory below it, cannot be read.
pub fn host_devices(dir: &Path) -> std::io::Result<Vec<Device>> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = meta.file_type();
            if ft.is_dir() {
                if !HOST_DEVICE_SKIPPED_DIRS.iter().any(|d| name == *d) {
                    dirs.push(path);
                }
                continue;
            }
            if name == "console" || !(ft.is_char_device() || ft.is_block_device()) {
                continue;
            }
            let rdev = meta.rdev();
            out.push(Device {
                request: DeviceRequest {
                    host_path: path.clone(),
                    container_path: path,
                    access: "rwm".to_owned(),
                },
                host: HostDevice {
                    kind: if ft.is_char_device() {
                        DeviceKind::Char
                    } else {
                        DeviceKind::Block
                    },
                    major: nix::sys::stat::major(rdev),
                    minor: nix::sys::stat::minor(rdev),
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                },
            });
        }
    }
    out.sort_by(|a, b| a.request.container_path.cmp(&b.request.container_path));
    Ok(out)
}

/// The first of [`INIT_CANDIDATES`] that is a file on this host.
pub fn find_init() -> Option<&'static Path> {
    INIT_CANDIDATES.iter().map(Path::new).find(|p| p.is_file())
}

impl HostFacts {
    /// The facts of this process and host: its environment (`std::env::vars_os`, lossily
    /// decoded), its hard rlimits (getrlimit(2)), whether `CAP_SYS_RESOURCE` is in its effective
    /// set and its bounding set (capget(2), prctl(2)), the kernel release (uname(2)), whether
    /// SELinux is enabled (selinuxfs mounted on `/sys/fs/selinux`, what libselinux's
    /// `is_selinux_enabled` looks for first) and AppArmor
    /// (`/sys/module/apparmor/parameters/enabled`), whether the memory cgroup can limit swap,
    /// the hostname, and the CPUs that have thermal throttle counters
    /// (`/sys/devices/system/cpu/cpuN/thermal_throttle`, the expansion of containers/common's
    /// masked glob `cpu*/thermal_throttle`). What cannot be read keeps its
    /// [`HostFacts::default`] value.
    pub fn gather() -> Self {
        let hard = |r| getrlimit(r).map(|(_, hard)| hard).unwrap_or(u64::MAX);
        let defaults = Self::default();
        Self {
            env: std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect(),
            nofile_hard: hard(Resource::RLIMIT_NOFILE),
            nproc_hard: hard(Resource::RLIMIT_NPROC),
            hard_limits: RlimitKind::ALL
                .into_iter()
                .map(|kind| (kind, hard(resource(kind))))
                .collect::<BTreeMap<_, _>>(),
            soft_limits: RlimitKind::ALL
                .into_iter()
                .filter_map(|kind| Some((kind, getrlimit(resource(kind)).ok()?.0)))
                .collect::<BTreeMap<_, _>>(),
            cap_sys_resource: caps::has_cap(
                None,
                caps::CapSet::Effective,
                caps::Capability::CAP_SYS_RESOURCE,
            )
            .unwrap_or(false),
            cap_bounding: caps::read(None, caps::CapSet::Bounding)
                .map(|set| set.into_iter().fold(0, |mask, cap| mask | cap.bitmask()))
                .unwrap_or(defaults.cap_bounding),
            kernel: nix::sys::utsname::uname()
                .ok()
                .and_then(|u| parse_kernel_release(&u.release().to_string_lossy())),
            selinux_enabled: selinux_enabled(),
            apparmor_enabled: std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .is_ok_and(|s| s.trim() == "Y"),
            swap_limit: swap_limit(),
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            thermal_throttle_cpus: thermal_throttle_cpus(Path::new(CPU_SYSFS)),
            cgroup_v2: Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
            delegated_cgroup: delegated_cgroup(),
            ..defaults
        }
    }
}

/// The sysfs directory of the host's CPUs.
const CPU_SYSFS: &str = "/sys/devices/system/cpu";

/// The numbers of the `cpuN` directories in `dir` that have a `thermal_throttle` directory,
/// ascending.
fn thermal_throttle_cpus(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut cpus: Vec<u32> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let digits = name.to_str()?.strip_prefix("cpu")?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let cpu = digits.parse().ok()?;
            e.path().join("thermal_throttle").is_dir().then_some(cpu)
        })
        .collect();
    cpus.sort_unstable();
    cpus
}

impl HostDevice {
    /// What the device node at `path` is (stat(2), following symlinks as podman's `--device`
    /// does).
    ///
    /// # Errors
    /// The stat error (`cannot stat "PATH": ...`), or [`ErrorKind::InvalidInput`] (`"PATH" is
    /// not a device node`) when `path` is neither a character nor a block device.
    pub fn stat(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot stat {path:?}: {e}")))?;
        let kind = if meta.file_type().is_char_device() {
            DeviceKind::Char
        } else if meta.file_type().is_block_device() {
            DeviceKind::Block
        } else {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("{path:?} is not a device node"),
            ));
        };
        let rdev = meta.rdev();
        Ok(Self {
            kind,
            major: nix::sys::stat::major(rdev),
            minor: nix::sys::stat::minor(rdev),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }
}

/// The cgroup v2 subtree delegated to this process's user: the parent of the process's own
/// cgroup (from /proc/self/cgroup), when it is not the root, is owned by the effective uid,
/// and this process may create cgroups in it; the controllers are those its
/// `cgroup.subtree_control` enables for its children.
fn delegated_cgroup() -> Option<crate::DelegatedCgroup> {
    use nix::unistd::{access, AccessFlags};
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let parent = Path::new(path).parent()?;
    if parent == Path::new("/") {
        return None;
    }
    let dir = Path::new("/sys/fs/cgroup").join(parent.strip_prefix("/").ok()?);
    let meta = std::fs::metadata(&dir).ok()?;
    let writable = access(&dir, AccessFlags::W_OK).is_ok()
        && access(&dir.join("cgroup.procs"), AccessFlags::W_OK).is_ok();
    if meta.uid() != nix::unistd::geteuid().as_raw() || !writable {
        return None;
    }
    let controllers = std::fs::read_to_string(dir.join("cgroup.subtree_control")).ok()?;
    Some(crate::DelegatedCgroup::new(
        parent.display().to_string(),
        controllers.split_whitespace().map(str::to_owned).collect(),
    ))
}

/// Whether SELinux is enabled: selinuxfs is mounted on `/sys/fs/selinux`.
fn selinux_enabled() -> bool {
    const SELINUX_MAGIC: u32 = 0xf97c_ff8c;
    // f_type is a signed word whose width differs between architectures: compare its low
    // 32 bits, which hold the magic everywhere.
    nix::sys::statfs::statfs("/sys/fs/selinux")
        .is_ok_and(|s| s.filesystem_type().0 as u32 == SELINUX_MAGIC)
}

/// Whether the memory cgroup can limit swap: cgroup v1 `memory.memsw.limit_in_bytes`, or on
/// the unified hierarchy `memory.swap.max` in this process's own cgroup.
fn swap_limit() -> bool {
    if Path::new("/sys/fs/cgroup/memory").is_dir() {
        return Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    match own.lines().find_map(|l| l.strip_prefix("0::")) {
        Some(path) if path != "/" => Path::new("/sys/fs/cgroup")
            .join(path.trim_start_matches('/'))
            .join("memory.swap.max")
            .exists(),
        _ => true,
    }
}

/// nix's resource for `kind` (every one Linux has).
fn resource(kind: RlimitKind) -> Resource {
    match kind {
        RlimitKind::As => Resource::RLIMIT_AS,
        RlimitKind::Core => Resource::RLIMIT_CORE,
        RlimitKind::Cpu => Resource::RLIMIT_CPU,
        RlimitKind::Data => Resource::RLIMIT_DATA,
        RlimitKind::Fsize => Resource::RLIMIT_FSIZE,
        RlimitKind::Locks => Resource::RLIMIT_LOCKS,
        RlimitKind::Memlock => Resource::RLIMIT_MEMLOCK,
        RlimitKind::Msgqueue => Resource::RLIMIT_MSGQUEUE,
        RlimitKind::Nice => Resource::RLIMIT_NICE,
        RlimitKind::Nofile => Resource::RLIMIT_NOFILE,
        RlimitKind::Nproc => Resource::RLIMIT_NPROC,
        RlimitKind::Rss => Resource::RLIMIT_RSS,
        RlimitKind::Rtprio => Resource::RLIMIT_RTPRIO,
        RlimitKind::Rttime => Resource::RLIMIT_RTTIME,
        RlimitKind::Sigpending => Resource::RLIMIT_SIGPENDING,
        RlimitKind::Stack => Resource::RLIMIT_STACK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_this_process() {
        let facts = HostFacts::gather();
        assert_eq!(
            facts.nofile_hard,
            getrlimit(Resource::RLIMIT_NOFILE).unwrap().1
        );
        assert_eq!(
            facts.hard_limit(RlimitKind::Core),
            getrlimit(Resource::RLIMIT_CORE).unwrap().1
        );
        assert!(facts.kernel.is_some());
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let cap_bnd = status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap();
        assert_eq!(facts.cap_bounding, cap_bnd);
        let path = std::env::var("PATH").unwrap_or_default();
        assert!(facts.env.contains(&("PATH".to_owned(), path)) || facts.env.is_empty());
    }

    #[test]
    fn host_devices_are_the_nodes_below_dev() {
        let devices = host_devices(Path::new("/dev")).unwrap();
        let null = devices
            .iter()
            .find(|d| d.request.container_path == Path::new("/dev/null"))
            .expect("/dev/null is a host device");
        assert_eq!((null.host.major, null.host.minor), (1, 3));
        assert_eq!(null.request.access, "rwm");
        assert!(devices.iter().all(|d| {
            let p = &d.request.container_path;
            !p.starts_with("/dev/pts")
                && !p.starts_with("/dev/shm")
                && p != Path::new("/dev/console")
        }));
        let mut sorted = devices.clone();
        sorted.sort_by(|a, b| a.request.container_path.cmp(&b.request.container_path));
        assert_eq!(sorted, devices);
        assert!(host_devices(Path::new("/nonexistent/dev")).is_err());
    }

    #[test]
    fn soft_limits_are_gathered() {
        let facts = HostFacts::gather();
        assert_eq!(
            facts.soft_limit(RlimitKind::Nofile),
            getrlimit(Resource::RLIMIT_NOFILE).unwrap().0
        );
    }

    #[test]
    fn cpus_with_thermal_throttle_counters() {
        let dir = std::env::temp_dir().join(format!("ocirun-cpus-{}", std::process::id()));
        for d in [
            "cpu0/thermal_throttle",
            "cpu10/thermal_throttle",
            "cpu2/thermal_throttle",
            "cpu3",
            "cpufreq/thermal_throttle",
            "cpux1/thermal_throttle",
        ] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::create_dir_all(dir.join("cpu4")).unwrap();
        std::fs::write(dir.join("cpu4/thermal_throttle"), "").unwrap();
        let found = thermal_throttle_cpus(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, [0, 2, 10]);
        assert!(thermal_throttle_cpus(Path::new("/nonexistent/cpu")).is_empty());
        // This host's own: what sysfs lists.
        let mut expected: Vec<u32> = std::fs::read_dir(CPU_SYSFS)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().join("thermal_throttle").is_dir())
                    .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        expected.sort_unstable();
        assert_eq!(HostFacts::gather().thermal_throttle_cpus, expected);
    }

    #[test]
    fn device_nodes_and_other_files() {
        let null = HostDevice::stat(Path::new("/dev/null")).unwrap();
        assert_eq!(
            (null.kind, null.major, null.minor),
            (DeviceKind::Char, 1, 3)
        );
        let err = HostDevice::stat(Path::new("/etc/passwd")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), r#""/etc/passwd" is not a device node"#);
        let err = HostDevice::stat(Path::new("/nonexistent/dev")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
