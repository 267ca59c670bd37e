//! cgroup resources: the `--cpu-*`, `--cpus`, `--cpuset-*`, `--memory*`, `--pids-limit` and
//! `--cgroup-parent` flags (docs/ocirun-run.md "Linux", Resources; podman-run(1)).
//!
//! They become runtime-spec `linux.resources` (`memory`, `cpu`, `pids`) and
//! `linux.cgroupsPath`. The runtime writes them to the cgroup v1 controllers or translates them
//! to cgroup v2 files (runc: `memory.limit_in_bytes` or `memory.max`, ...).

use std::fmt;
use std::str::FromStr;

use oci_spec::runtime::{
    LinuxCpu, LinuxCpuBuilder, LinuxMemory, LinuxMemoryBuilder, LinuxPids, LinuxPidsBuilder,
};

use crate::units::{CpuList, Cpus, Size};
use crate::{HostFacts, SpecError};

/// The smallest `--memory` that podman accepts: 6 MiB (less cannot hold a process).
pub(crate) const MIN_MEMORY: Size = Size::from_bytes(6 << 20);

/// The CFS period that `--cpus` uses: 100000 µs (100 ms, the kernel's default
/// `cpu.cfs_period_us`).
pub(crate) const DEFAULT_CPU_PERIOD_US: u64 = 100_000;

/// The range of `cpu.cfs_period_us` (and of `--cpu-period`) the kernel accepts: 1 ms to 1 s,
/// in microseconds.
pub(crate) const CPU_PERIOD_RANGE_US: std::ops::RangeInclusive<u64> = 1_000..=1_000_000;

/// The smallest CFS quota the kernel accepts: 1000 µs.
pub(crate) const MIN_CPU_QUOTA_US: i64 = 1_000;

/// The range of `cpu.shares` (and of `--cpu-shares`): 2 to 262144.
pub(crate) const CPU_SHARES_RANGE: std::ops::RangeInclusive<u64> = 2..=262_144;

/// `--memory-swap`: the limit on memory plus swap, or `-1` for unlimited swap.
///
/// ```
/// use ocirun_spec_gen::MemorySwap;
/// assert_eq!("-1".parse::<MemorySwap>()?, MemorySwap::Unlimited);
/// assert_eq!("1g".parse::<MemorySwap>()?.to_string(), "1g");
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemorySwap {
    /// `-1`: no limit on swap.
    Unlimited,
    /// Memory plus swap may use this much.
    Limit(Size),
}

impl FromStr for MemorySwap {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        if s == "-1" {
            Ok(Self::Unlimited)
        } else {
            s.parse().map(Self::Limit)
        }
    }
}

impl fmt::Display for MemorySwap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unlimited => f.write_str("-1"),
            Self::Limit(size) => size.fmt(f),
        }
    }
}

/// The cgroup flags of a run. Every field is unset by default: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resources {
    /// `--cpu-period`: the CFS period in microseconds (1000 to 1000000).
    pub cpu_period: Option<u64>,
    /// `--cpu-quota`: the CFS quota in microseconds per period (at least 1000), or -1 for none.
    pub cpu_quota: Option<i64>,
    /// `--cpu-shares`: the relative CPU weight (2 to 262144; the kernel's default is 1024).
    pub cpu_shares: Option<u64>,
    /// `--cpus`: a CFS quota of this many CPUs per 100 ms period (100000 µs); excludes
    /// `cpu_period` and `cpu_quota`.
    pub cpus: Option<Cpus>,
    /// `--cpuset-cpus`: the CPUs the container may run on.
    pub cpuset_cpus: Option<CpuList>,
    /// `--cpuset-mems`: the memory nodes the container may allocate on.
    pub cpuset_mems: Option<CpuList>,
    /// `--memory`: the memory limit (at least 6 MiB, as podman requires).
    pub memory: Option<Size>,
    /// `--memory-reservation`: the soft memory limit, not above `memory`.
    pub memory_reservation: Option<Size>,
    /// `--memory-swap`: the memory-plus-swap limit, not below `memory`; needs `memory`.
    /// Unset with `memory` set: twice `memory`, as podman and Docker do, when the host can
    /// limit swap ([`HostFacts::swap_limit`]).
    pub memory_swap: Option<MemorySwap>,
    /// `--pids-limit`: the most processes, or `-1`/`0` for no limit.
    pub pids_limit: Option<i64>,
    /// `--cgroup-parent`: the cgroup under which the container's cgroup is made, as
    /// `PARENT/CONTAINER_ID` (an absolute path from the cgroup root, or relative to the
    /// runtime's own cgroup).
    pub cgroup_parent: Option<String>,
}

/// What [`Resources`] turn into: the parts of runtime-spec `linux.resources` and
/// `linux.cgroupsPath`.
#[derive(Debug, Default)]
pub(crate) struct CgroupConfig {
    pub(crate) memory: Option<LinuxMemory>,
    pub(crate) cpu: Option<LinuxCpu>,
    pub(crate) pids: Option<LinuxPids>,
    pub(crate) cgroups_path: Option<String>,
}

fn bad(flag: &'static str, value: impl fmt::Display, reason: impl Into<String>) -> SpecError {
    SpecError::InvalidResource {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Resources {
    /// Checks the flags against each other and against the host, and builds their part of
    /// the spec.
    pub(crate) fn build(
        &self,
        container_id: &str,
        host: &HostFacts,
    ) -> Result<CgroupConfig, SpecError> {
        let mut memory = self.memory()?;
        if let Some(memory) = &mut memory {
            self.swap(memory, host)?;
        }
        let delegated = self.check_delegation(host)?;
        let cgroups_path = match (self.cgroups_path(container_id)?, delegated) {
            (Some(path), _) => Some(path),
            (None, Some(parent)) => {
                Some(format!("{}/{container_id}", parent.trim_end_matches('/')))
            }
            (None, None) => None,
        };
        Ok(CgroupConfig {
            memory,
            cpu: self.cpu()?,
            pids: self.pids()?,
            cgroups_path,
        })
    }

    /// The flags that are set, with the cgroup controller each needs.
    fn set_flags(&self) -> Vec<(&'static str, &'static str)> {
        [
            ("--memory", "memory", self.memory.is_some()),
            (
                "--memory-reservation",
                "memory",
                self.memory_reservation.is_some(),
            ),
            ("--memory-swap", "memory", self.memory_swap.is_some()),
            ("--cpus", "cpu", self.cpus.is_some()),
            ("--cpu-period", "cpu", self.cpu_period.is_some()),
            ("--cpu-quota", "cpu", self.cpu_quota.is_some()),
            ("--cpu-shares", "cpu", self.cpu_shares.is_some()),
            ("--cpuset-cpus", "cpuset", self.cpuset_cpus.is_some()),
            ("--cpuset-mems", "cpuset", self.cpuset_mems.is_some()),
            ("--pids-limit", "pids", self.pids_limit.is_some()),
        ]
        .into_iter()
        .filter(|(_, _, set)| *set)
        .map(|(flag, controller, _)| (flag, controller))
        .collect()
    }

    /// Without root (ocirun in a user namespace of its own), a limit needs a cgroup the user
    /// owns: `--cgroup-parent`, or the delegated subtree, whose path is returned when a limit
    /// is set (the container's cgroup is made in it).
    fn check_delegation<'h>(&self, host: &'h HostFacts) -> Result<Option<&'h str>, SpecError> {
        let flags = self.set_flags();
        if host.user_namespace.is_none() || flags.is_empty() || self.cgroup_parent.is_some() {
            return Ok(None);
        }
        let (flag, controller) = flags[0];
        let refuse = |reason: String| Err(SpecError::ResourceNeedsCgroup { flag, reason });
        if !host.cgroup_v2 {
            return refuse(
                "ocirun runs without root, and cgroup v1 delegates no cgroup to a user: run as \
                 root, or on cgroup v2 with a cgroup subtree delegated to the user"
                    .to_owned(),
            );
        }
        let Some(delegated) = &host.delegated_cgroup else {
            return refuse(
                "ocirun runs without root, and no cgroup subtree is delegated to the user (the \
                 parent of ocirun's own cgroup is not the user's, with controllers enabled in \
                 its cgroup.subtree_control, as systemd's Delegate=yes makes it)"
                    .to_owned(),
            );
        };
        if let Some((flag, controller)) = flags
            .iter()
            .find(|(_, c)| !delegated.controllers.iter().any(|d| d == c))
        {
            return Err(SpecError::ResourceNeedsCgroup {
                flag,
                reason: format!(
                    "the cgroup subtree delegated to the user ({}) does not enable the \
                     {controller} controller",
                    delegated.path
                ),
            });
        }
        let _ = controller;
        Ok(Some(&delegated.path))
    }

    fn memory(&self) -> Result<Option<LinuxMemory>, SpecError> {
        if let Some(memory) = self.memory {
            if memory < MIN_MEMORY {
                return Err(bad(
                    "--memory",
                    memory,
                    format!("below the minimum of {MIN_MEMORY}"),
                ));
            }
        }
        if let (Some(memory), Some(reservation)) = (self.memory, self.memory_reservation) {
            if reservation > memory {
                return Err(bad(
                    "--memory-reservation",
                    reservation,
                    format!("above --memory {memory}"),
                ));
            }
        }
        if let (Some(swap), None) = (self.memory_swap, self.memory) {
            return Err(bad("--memory-swap", swap, "needs --memory"));
        }
        if self.memory.is_none() && self.memory_reservation.is_none() {
            return Ok(None);
        }
        let mut builder = LinuxMemoryBuilder::default();
        if let Some(memory) = self.memory {
            builder = builder.limit(memory.as_i64());
        }
        if let Some(reservation) = self.memory_reservation {
            builder = builder.reservation(reservation.as_i64());
        }
        Ok(Some(builder.build().map_err(crate::generate::internal)?))
    }

    fn swap(&self, memory: &mut LinuxMemory, host: &HostFacts) -> Result<(), SpecError> {
        let Some(limit) = self.memory else {
            return Ok(());
        };
        let swap = match self.memory_swap {
            None if host.swap_limit => Some(limit.as_i64().saturating_mul(2)),
            None => None,
            Some(swap) if !host.swap_limit => {
                return Err(bad(
                    "--memory-swap",
                    swap,
                    "the host cannot limit swap (no swap accounting in its memory cgroup)",
                ))
            }
            Some(MemorySwap::Unlimited) => Some(-1),
            Some(MemorySwap::Limit(swap)) if swap < limit => {
                return Err(bad(
                    "--memory-swap",
                    swap,
                    format!("below --memory {limit} (it limits memory plus swap)"),
                ))
            }
            Some(MemorySwap::Limit(swap)) => Some(swap.as_i64()),
        };
        memory.set_swap(swap);
        Ok(())
    }

    fn cpu(&self) -> Result<Option<LinuxCpu>, SpecError> {
        if let Some(cpus) = self.cpus {
            if self.cpu_period.is_some() || self.cpu_quota.is_some() {
                return Err(bad(
                    "--cpus",
                    cpus,
                    "conflicts with --cpu-period and --cpu-quota",
                ));
            }
            let quota = cpus.quota_for_period(DEFAULT_CPU_PERIOD_US);
            if quota < MIN_CPU_QUOTA_US.unsigned_abs() {
                return Err(bad(
                    "--cpus",
                    cpus,
                    format!(
                        "a quota of {quota}µs per {DEFAULT_CPU_PERIOD_US}µs is below the \
                         kernel's minimum of {MIN_CPU_QUOTA_US}µs (use at least 0.01)"
                    ),
                ));
            }
        }
        if let Some(period) = self.cpu_period {
            if !CPU_PERIOD_RANGE_US.contains(&period) {
                return Err(bad(
                    "--cpu-period",
                    period,
                    "must be between 1000 and 1000000 (microseconds)",
                ));
            }
        }
        if let Some(quota) = self.cpu_quota {
            if quota != -1 && quota < MIN_CPU_QUOTA_US {
                return Err(bad(
                    "--cpu-quota",
                    quota,
                    "must be at least 1000 (microseconds), or -1 for no quota",
                ));
            }
        }
        if let Some(shares) = self.cpu_shares {
            if !CPU_SHARES_RANGE.contains(&shares) {
                return Err(bad("--cpu-shares", shares, "must be between 2 and 262144"));
            }
        }
        let mut builder = LinuxCpuBuilder::default();
        let mut any = false;
        if let Some(cpus) = self.cpus {
            let quota = cpus.quota_for_period(DEFAULT_CPU_PERIOD_US);
            builder = builder
                .period(DEFAULT_CPU_PERIOD_US)
                .quota(i64::try_from(quota).unwrap_or(i64::MAX));
            any = true;
        }
        if let Some(period) = self.cpu_period {
            builder = builder.period(period);
            any = true;
        }
        if let Some(quota) = self.cpu_quota {
            builder = builder.quota(quota);
            any = true;
        }
        if let Some(shares) = self.cpu_shares {
            builder = builder.shares(shares);
            any = true;
        }
        if let Some(cpus) = &self.cpuset_cpus {
            builder = builder.cpus(cpus.to_string());
            any = true;
        }
        if let Some(mems) = &self.cpuset_mems {
            builder = builder.mems(mems.to_string());
            any = true;
        }
        if !any {
            return Ok(None);
        }
        Ok(Some(builder.build().map_err(crate::generate::internal)?))
    }

    fn pids(&self) -> Result<Option<LinuxPids>, SpecError> {
        let Some(limit) = self.pids_limit else {
            return Ok(None);
        };
        let limit = match limit {
            -1 | 0 => -1,
            n if n > 0 => n,
            n => {
                return Err(bad(
                    "--pids-limit",
                    n,
                    "must be positive, or -1 or 0 for no limit",
                ))
            }
        };
        Ok(Some(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .map_err(crate::generate::internal)?,
        ))
    }

    fn cgroups_path(&self, container_id: &str) -> Result<Option<String>, SpecError> {
        let Some(parent) = &self.cgroup_parent else {
            return Ok(None);
        };
        if parent.is_empty()
            || parent.contains('\0')
            || parent.split('/').any(|c| c == ".." || c == ".")
        {
            return Err(bad(
                "--cgroup-parent",
                format!("{parent:?}"),
                "must be a non-empty cgroup path without . or .. components",
            ));
        }
        Ok(Some(format!(
            "{}/{container_id}",
            parent.trim_end_matches('/')
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostFacts {
        HostFacts::default()
    }

    fn size(s: &str) -> Size {
        s.parse().unwrap()
    }

    #[test]
    fn memory_with_default_swap() {
        let r = Resources {
            memory: Some(size("64m")),
            memory_reservation: Some(size("32m")),
            ..Resources::default()
        };
        let m = r.build("id", &host()).unwrap().memory.unwrap();
        assert_eq!(m.limit(), Some(67_108_864));
        assert_eq!(m.reservation(), Some(33_554_432));
        assert_eq!(m.swap(), Some(134_217_728));

        let no_swap = HostFacts {
            swap_limit: false,
            ..host()
        };
        let m = r.build("id", &no_swap).unwrap().memory.unwrap();
        assert_eq!(m.swap(), None);
    }

    #[test]
    fn explicit_swap() {
        let r = |swap: &str| Resources {
            memory: Some(size("64m")),
            memory_swap: Some(swap.parse().unwrap()),
            ..Resources::default()
        };
        let swap = |s: &str| r(s).build("id", &host()).map(|c| c.memory.unwrap().swap());
        assert_eq!(swap("-1").unwrap(), Some(-1));
        assert_eq!(swap("1g").unwrap(), Some(1 << 30));
        assert_eq!(
            swap("32m").unwrap_err().to_string(),
            "invalid --memory-swap 32m: below --memory 64m (it limits memory plus swap)"
        );
        let no_swap = HostFacts {
            swap_limit: false,
            ..host()
        };
        assert!(r("1g")
            .build("id", &no_swap)
            .unwrap_err()
            .to_string()
            .contains("the host cannot limit swap"));
    }

    #[test]
    fn memory_errors() {
        let err = |r: Resources| r.build("id", &host()).unwrap_err().to_string();
        assert_eq!(
            err(Resources {
                memory: Some(size("1m")),
                ..Resources::default()
            }),
            "invalid --memory 1m: below the minimum of 6m"
        );
        assert_eq!(
            err(Resources {
                memory: Some(size("64m")),
                memory_reservation: Some(size("1g")),
                ..Resources::default()
            }),
            "invalid --memory-reservation 1g: above --memory 64m"
        );
        assert_eq!(
            err(Resources {
                memory_swap: Some(MemorySwap::Unlimited),
                ..Resources::default()
            }),
            "invalid --memory-swap -1: needs --memory"
        );
    }

    #[test]
    fn cpus_become_a_quota() {
        let r = Resources {
            cpus: Some("1.5".parse().unwrap()),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0-1".parse().unwrap()),
            cpuset_mems: Some("0".parse().unwrap()),
            ..Resources::default()
        };
        let cpu = r.build("id", &host()).unwrap().cpu.unwrap();
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.quota(), Some(150_000));
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
        assert_eq!(cpu.mems().as_deref(), Some("0"));
    }

    #[test]
    fn cpu_errors() {
        let err = |r: Resources| r.build("id", &host()).unwrap_err().to_string();
        assert_eq!(
            err(Resources {
                cpus: Some("1".parse().unwrap()),
                cpu_quota: Some(5000),
                ..Resources::default()
            }),
            "invalid --cpus 1: conflicts with --cpu-period and --cpu-quota"
        );
        assert!(err(Resources {
            cpus: Some("0.001".parse().unwrap()),
            ..Resources::default()
        })
        .contains("below the kernel's minimum of 1000µs"));
        assert!(err(Resources {
            cpu_period: Some(999),
            ..Resources::default()
        })
        .starts_with("invalid --cpu-period 999: "));
        assert!(err(Resources {
            cpu_quota: Some(999),
            ..Resources::default()
        })
        .starts_with("invalid --cpu-quota 999: "));
        assert!(err(Resources {
            cpu_shares: Some(1),
            ..Resources::default()
        })
        .starts_with("invalid --cpu-shares 1: "));
        let ok = Resources {
            cpu_period: Some(50_000),
            cpu_quota: Some(-1),
            ..Resources::default()
        };
        let cpu = ok.build("id", &host()).unwrap().cpu.unwrap();
        assert_eq!((cpu.period(), cpu.quota()), (Some(50_000), Some(-1)));
    }

    #[test]
    fn pids_and_cgroup_parent() {
        let pids = |n: i64| {
            Resources {
                pids_limit: Some(n),
                ..Resources::default()
            }
            .build("id", &host())
            .map(|c| c.pids.unwrap().limit())
        };
        assert_eq!(pids(32).unwrap(), 32);
        assert_eq!(pids(0).unwrap(), -1);
        assert_eq!(pids(-1).unwrap(), -1);
        assert_eq!(
            pids(-2).unwrap_err().to_string(),
            "invalid --pids-limit -2: must be positive, or -1 or 0 for no limit"
        );
        let parent = |p: &str| {
            Resources {
                cgroup_parent: Some(p.into()),
                ..Resources::default()
            }
            .build("abc", &host())
            .map(|c| c.cgroups_path.unwrap())
        };
        assert_eq!(parent("/machine.slice/").unwrap(), "/machine.slice/abc");
        assert_eq!(parent("ocirun").unwrap(), "ocirun/abc");
        assert!(parent("/a/../b").is_err());
        assert!(parent("").is_err());
        let none = Resources::default().build("abc", &host()).unwrap();
        assert!(none.memory.is_none() && none.cpu.is_none() && none.pids.is_none());
        assert!(none.cgroups_path.is_none());
    }
}
