//! The flags that shape the spec beyond the basics (podman's names), their mapping into
//! [`RunOptions`], and the [`HostFacts`] that spec-gen needs: ocirun's own limits and
//! capabilities, the kernel, SELinux/AppArmor, swap accounting, and libseccomp's syscall table.
//!
//! Every value is parsed here, before anything is created, so a bad one exits 125 naming the
//! flag and the value, and leaves nothing behind. The grammar of each value is spec-gen's
//! (`Size`, `Ulimit`, `SecurityOpt`, ...); this module only reads what spec-gen cannot (files,
//! device nodes, the process's own state).

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{anyhow, Context, Result};
use nix::sys::resource::{getrlimit, Resource};
use ocirun_spec_gen::{
    parse_env_file, CapabilityName, Device, DeviceKind, DeviceRequest, HostDevice, HostFacts,
    MemorySwap, NamespaceMode, NetworkMode, RlimitKind, RunOptions, SecurityOpt, SpecError,
    SyscallChecker, Ulimit,
};

use crate::flags::SpecFlags;

/// Parses `raw` as the value of `flag`; a grammar error names both.
fn flag_value<T: FromStr<Err = SpecError>>(flag: &str, raw: &str) -> Result<T> {
    raw.parse::<T>().map_err(|e| match e {
        SpecError::InvalidSize { reason, .. }
        | SpecError::InvalidCpuList { reason, .. }
        | SpecError::InvalidNamespace { reason, .. } => anyhow!("invalid {flag} {raw:?}: {reason}"),
        other => other.into(),
    })
}

fn optional<T: FromStr<Err = SpecError>>(flag: &str, raw: Option<&String>) -> Result<Option<T>> {
    raw.map(|r| flag_value(flag, r)).transpose()
}

impl SpecFlags {
    /// Puts the flags into `options`: parses every value, reads the env files, seccomp
    /// profiles and device nodes they name.
    ///
    /// # Errors
    /// A message naming the flag and the value (exit 125).
    pub(crate) fn apply(&self, options: &mut RunOptions) -> Result<()> {
        options.use_entrypoint = self.use_entrypoint;
        for path in &self.env_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --env-file {path:?}"))?;
            options
                .env_file
                .extend(parse_env_file(&path.display().to_string(), &text)?);
        }
        options.group_add.clone_from(&self.group_add);
        options.cap_add = self
            .cap_add
            .iter()
            .map(|c| c.parse::<CapabilityName>())
            .collect::<Result<_, _>>()?;
        options.cap_drop = self
            .cap_drop
            .iter()
            .map(|c| c.parse::<CapabilityName>())
            .collect::<Result<_, _>>()?;
        options.ulimits = self
            .ulimit
            .iter()
            .map(|u| u.parse::<Ulimit>())
            .collect::<Result<_, _>>()?;
        for raw in &self.security_opt {
            let opt: SecurityOpt = raw.parse()?;
            options.security.apply(opt, |path| std::fs::read(path))?;
        }
        if let Some(network) = optional::<NetworkMode>("--network", self.network.as_ref())? {
            options.network = network;
        }
        for (flag, raw, slot) in [
            ("--pid", &self.pid, &mut options.pid),
            ("--ipc", &self.ipc, &mut options.ipc),
            ("--uts", &self.uts, &mut options.uts),
            ("--cgroupns", &self.cgroupns, &mut options.cgroupns),
        ] {
            if let Some(mode) = optional::<NamespaceMode>(flag, raw.as_ref())? {
                *slot = mode;
            }
        }

        let r = &mut options.resources;
        r.cpu_period = self.cpu_period;
        r.cpu_quota = self.cpu_quota;
        r.cpu_shares = self.cpu_shares;
        r.cpus = optional("--cpus", self.cpus.as_ref())?;
        r.cpuset_cpus = optional("--cpuset-cpus", self.cpuset_cpus.as_ref())?;
        r.cpuset_mems = optional("--cpuset-mems", self.cpuset_mems.as_ref())?;
        r.memory = optional("--memory", self.memory.as_ref())?;
        r.memory_reservation = optional("--memory-reservation", self.memory_reservation.as_ref())?;
        r.memory_swap = optional::<MemorySwap>("--memory-swap", self.memory_swap.as_ref())?;
        r.pids_limit = self.pids_limit;
        r.cgroup_parent.clone_from(&self.cgroup_parent);

        options.devices = self
            .device
            .iter()
            .map(|raw| {
                let request: DeviceRequest = raw.parse()?;
                let host = host_device(&request.host_path)
                    .with_context(|| format!("invalid --device {raw:?}"))?;
                Ok(Device { request, host })
            })
            .collect::<Result<_>>()?;
        options.shm_size = optional("--shm-size", self.shm_size.as_ref())?;
        Ok(())
    }
}

/// What the host's device node at `path` is (stat(2), following symlinks as podman does).
fn host_device(path: &Path) -> Result<HostDevice> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).with_context(|| format!("cannot stat {path:?}"))?;
    let kind = if meta.file_type().is_char_device() {
        DeviceKind::Char
    } else if meta.file_type().is_block_device() {
        DeviceKind::Block
    } else {
        return Err(anyhow!("{path:?} is not a device node"));
    };
    let rdev = meta.rdev();
    Ok(HostDevice {
        kind,
        major: nix::sys::stat::major(rdev),
        minor: nix::sys::stat::minor(rdev),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

/// The facts about this host and this process that spec-gen needs.
pub(crate) fn host_facts() -> HostFacts {
    let mut facts = HostFacts::default();
    facts.env = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let hard = |r| getrlimit(r).map(|(_, hard)| hard).unwrap_or(u64::MAX);
    facts.nofile_hard = hard(Resource::RLIMIT_NOFILE);
    facts.nproc_hard = hard(Resource::RLIMIT_NPROC);
    facts.hard_limits = RlimitKind::ALL
        .into_iter()
        .filter_map(|kind| Some((kind, hard(resource(kind)?))))
        .collect::<BTreeMap<_, _>>();
    facts.cap_sys_resource = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    if let Ok(bounding) = caps::read(None, caps::CapSet::Bounding) {
        facts.cap_bounding = bounding
            .into_iter()
            .fold(0, |mask, cap| mask | cap.bitmask());
    }
    facts.kernel = nix::sys::utsname::uname()
        .ok()
        .and_then(|u| ocirun_spec_gen::parse_kernel_release(&u.release().to_string_lossy()));
    facts.selinux_enabled = selinux_enabled();
    facts.apparmor_enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    facts.swap_limit = swap_limit();
    facts.hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    facts
}

/// nix's resource for `kind` (every one Linux has).
fn resource(kind: RlimitKind) -> Option<Resource> {
    Some(match kind {
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
        _ => return None,
    })
}

/// SELinux is enabled when selinuxfs is mounted at /sys/fs/selinux (what libselinux's
/// `is_selinux_enabled` looks for first).
fn selinux_enabled() -> bool {
    const SELINUX_MAGIC: u32 = 0xf97c_ff8c;
    // f_type is a signed word whose width differs between architectures: compare its low
    // 32 bits, which hold the magic everywhere.
    nix::sys::statfs::statfs("/sys/fs/selinux")
        .is_ok_and(|s| s.filesystem_type().0 as u32 == SELINUX_MAGIC)
}

/// Whether the memory cgroup can limit swap: cgroup v1 `memory.memsw.limit_in_bytes`, or on
/// the unified hierarchy `memory.swap.max` in ocirun's own cgroup.
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

/// libseccomp's syscall table: a name is known when `seccomp_syscall_resolve_name` resolves
/// it (for the native architecture, or as a pseudo-syscall of another one).
///
/// It lives here, not in spec-gen, because libseccomp is a C library: spec-gen stays pure Rust
/// without I/O, usable where libseccomp is not installed, and the names are checked against
/// the libseccomp of the host where the runtime compiles the filter.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LibSeccomp;

impl SyscallChecker for LibSeccomp {
    fn is_known(&self, name: &str) -> bool {
        libseccomp::ScmpSyscall::from_name(name).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libseccomp_knows_every_name_of_the_builtin_profile_but_the_newest() {
        let profile = ocirun_spec_gen::SeccompProfile::builtin();
        let unknown: Vec<&str> = profile
            .syscall_names()
            .filter(|n| !LibSeccomp.is_known(n))
            .collect();
        assert!(LibSeccomp.is_known("mkdir"));
        assert!(
            LibSeccomp.is_known("socketcall"),
            "a pseudo-syscall on x86_64"
        );
        assert!(!LibSeccomp.is_known("frobnicate"));
        // Debian bookworm's libseccomp 2.5.4 knows all of containers/common 0.50.1's names.
        assert_eq!(unknown, Vec::<&str>::new());
    }

    #[test]
    fn flag_errors_name_flag_and_value() {
        let mut options = RunOptions::new(vec!["true".into()]);
        let flags = SpecFlags {
            memory: Some("5x".into()),
            ..SpecFlags::default()
        };
        assert_eq!(
            flags.apply(&mut options).unwrap_err().to_string(),
            r#"invalid --memory "5x": unknown unit "x" (use b, k, m, g, t or p)"#
        );
        let flags = SpecFlags {
            pid: Some("container:x".into()),
            ..SpecFlags::default()
        };
        assert_eq!(
            flags.apply(&mut options).unwrap_err().to_string(),
            r#"invalid --pid "container:x": expected private, host or ns:PATH"#
        );
        let flags = SpecFlags {
            ulimit: vec!["nofile=10:5".into()],
            ..SpecFlags::default()
        };
        assert_eq!(
            flags.apply(&mut options).unwrap_err().to_string(),
            r#"invalid --ulimit "nofile=10:5": soft limit 10 is greater than hard limit 5"#
        );
        let flags = SpecFlags {
            device: vec!["/etc/passwd:/dev/passwd".into()],
            ..SpecFlags::default()
        };
        let err = flags.apply(&mut options).unwrap_err();
        assert_eq!(
            crate::run::describe(&err),
            r#"invalid --device "/etc/passwd:/dev/passwd": "/etc/passwd" is not a device node"#
        );
    }

    #[test]
    fn flags_fill_the_options() {
        let mut options = RunOptions::new(vec!["true".into()]);
        let flags = SpecFlags {
            memory: Some("64m".into()),
            pids_limit: Some(32),
            network: Some("none".into()),
            cap_add: vec!["net_admin".into()],
            device: vec!["/dev/null:/dev/nothing:r".into()],
            ..SpecFlags::default()
        };
        flags.apply(&mut options).unwrap();
        assert_eq!(
            options.resources.memory.map(|m| m.bytes()),
            Some(67_108_864)
        );
        assert_eq!(options.resources.pids_limit, Some(32));
        assert_eq!(options.network, NetworkMode::None);
        assert_eq!(options.cap_add.len(), 1);
        assert_eq!(options.devices[0].host.kind, DeviceKind::Char);
        assert_eq!(
            (options.devices[0].host.major, options.devices[0].host.minor),
            (1, 3)
        );
    }

    #[test]
    fn host_facts_of_this_process() {
        let facts = host_facts();
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
    }
}
