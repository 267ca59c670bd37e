//! The flags that shape the spec beyond the basics (podman's names) and their mapping into
//! [`RunOptions`].
//!
//! Every value is parsed here, before anything is created, so a bad one exits 125 naming the
//! flag and the value, and leaves nothing behind. The grammar of each value is spec-gen's
//! (`Size`, `Ulimit`, `SecurityOpt`, ...); this module only reads the files and device nodes
//! the flags name.

use std::str::FromStr;

use anyhow::{anyhow, Context, Result};
use ocirun_mounts::read_input_file;
use ocirun_spec_gen::{
    host_devices, parse_env_file, Annotation, CapabilityName, Device, DeviceRequest, HostDevice,
    MemorySwap, NamespaceMode, NetworkMode, OomScoreAdj, RunOptions, SecurityOpt, SpecError,
    Sysctl, Ulimit, Umask,
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
            let bytes = read_input_file(path).with_context(|| format!("--env-file {path:?}"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow!("--env-file {path:?}: not UTF-8 text"))?;
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
        options.ulimit_host = self.ulimit.iter().any(|u| u == "host");
        options.ulimits = self
            .ulimit
            .iter()
            .filter(|u| *u != "host")
            .map(|u| u.parse::<Ulimit>())
            .collect::<Result<_, _>>()?;
        for raw in &self.security_opt {
            let opt: SecurityOpt = raw.parse()?;
            options.security.apply(opt, |path| read_input_file(path))?;
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
                let host = HostDevice::stat(&request.host_path)
                    .with_context(|| format!("invalid --device {raw:?}"))?;
                Ok(Device { request, host })
            })
            .collect::<Result<_>>()?;
        options.shm_size = optional("--shm-size", self.shm_size.as_ref())?;
        options.read_only = self.read_only;
        options.read_only_tmpfs = self.read_only_tmpfs;
        options.privileged = self.privileged;
        if self.privileged {
            // The user's --device first: for one path, the first device wins.
            options.devices.extend(
                host_devices(std::path::Path::new("/dev"))
                    .context("--privileged: cannot read the host's device nodes in /dev")?,
            );
        }
        options.sysctls = self
            .sysctl
            .iter()
            .map(|s| s.parse::<Sysctl>())
            .collect::<Result<_, _>>()?;
        options.umask = self.umask.as_deref().map(str::parse::<Umask>).transpose()?;
        options.oom_score_adj = self
            .oom_score_adj
            .as_deref()
            .map(str::parse::<OomScoreAdj>)
            .transpose()?;
        options.annotations = self
            .annotation
            .iter()
            .map(|a| a.parse::<Annotation>())
            .collect::<Result<_, _>>()?;
        if let Some(mode) = &self.userns {
            options.userns = mode.parse()?;
        }
        options.uid_maps = self
            .uidmap
            .iter()
            .map(|m| m.parse())
            .collect::<Result<_, _>>()?;
        options.gid_maps = self
            .gidmap
            .iter()
            .map(|m| m.parse())
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocirun_spec_gen::DeviceKind;

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
    fn new_flags_name_their_values() {
        let err = |flags: SpecFlags| {
            let mut options = RunOptions::new(vec!["true".into()]);
            crate::run::describe(&flags.apply(&mut options).unwrap_err())
        };
        assert_eq!(
            err(SpecFlags {
                sysctl: vec!["kernel.hostname=x".into()],
                ..SpecFlags::default()
            }),
            "invalid --sysctl \"kernel.hostname=x\": \"kernel.hostname\" is not namespaced: only \
             kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.shmall, \
             kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced, fs.mqueue.* and net.* can \
             be set"
        );
        assert_eq!(
            err(SpecFlags {
                umask: Some("999".into()),
                ..SpecFlags::default()
            }),
            "invalid --umask \"999\": expected one to four octal digits, e.g. 0022"
        );
        assert_eq!(
            err(SpecFlags {
                oom_score_adj: Some("-1001".into()),
                ..SpecFlags::default()
            }),
            "invalid --oom-score-adj \"-1001\": must be from -1000 to 1000"
        );
        assert_eq!(
            err(SpecFlags {
                annotation: vec!["nokey".into()],
                ..SpecFlags::default()
            }),
            "invalid --annotation \"nokey\": expected KEY=VALUE"
        );
        assert_eq!(
            err(SpecFlags {
                ulimit: vec!["host".into(), "HOST=1".into()],
                ..SpecFlags::default()
            }),
            "invalid --ulimit \"HOST=1\": unknown resource \"HOST\" (one of as, core, cpu, data, \
             fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, \
             sigpending, stack, in any case, with or without RLIMIT_)"
        );
    }

    #[test]
    fn privileged_adds_the_hosts_devices_after_the_users() {
        let mut options = RunOptions::new(vec!["true".into()]);
        let flags = SpecFlags {
            privileged: true,
            device: vec!["/dev/null:/dev/zero".into()],
            ulimit: vec!["host".into()],
            ..SpecFlags::default()
        };
        flags.apply(&mut options).unwrap();
        assert!(options.privileged && options.ulimit_host);
        assert_eq!(
            options.devices[0].request.container_path,
            std::path::Path::new("/dev/zero")
        );
        assert!(options.devices.len() > 1);
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
}
