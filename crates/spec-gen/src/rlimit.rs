//! Resource limits: `--ulimit name=soft[:hard]` and the defaults every process gets.
//!
//! The names are podman's `--ulimit` names (podman-run(1); Docker's `go-units`), which are
//! getrlimit(2)'s resources without the `RLIMIT_` prefix, plus `as`, which runc also knows.
//! They become runtime-spec `process.rlimits` entries (`RLIMIT_NOFILE`, ...), which the runtime
//! applies with setrlimit(2) in the container's init.

use std::fmt;
use std::str::FromStr;

use oci_spec::runtime::PosixRlimitType;

use crate::SpecError;

/// The value of an unlimited resource limit (`RLIM_INFINITY`, written `-1` or `unlimited`).
pub const RLIM_INFINITY: u64 = u64::MAX;

/// One resource of getrlimit(2), named as `--ulimit` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RlimitKind {
    /// `as`: `RLIMIT_AS`, the address space in bytes.
    As,
    /// `core`: `RLIMIT_CORE`, the largest core dump in bytes.
    Core,
    /// `cpu`: `RLIMIT_CPU`, CPU time in seconds.
    Cpu,
    /// `data`: `RLIMIT_DATA`, the data segment in bytes.
    Data,
    /// `fsize`: `RLIMIT_FSIZE`, the largest file in bytes.
    Fsize,
    /// `locks`: `RLIMIT_LOCKS`, file locks and leases.
    Locks,
    /// `memlock`: `RLIMIT_MEMLOCK`, locked memory in bytes.
    Memlock,
    /// `msgqueue`: `RLIMIT_MSGQUEUE`, bytes in POSIX message queues.
    Msgqueue,
    /// `nice`: `RLIMIT_NICE`, the ceiling of the nice value (as `20 - nice`).
    Nice,
    /// `nofile`: `RLIMIT_NOFILE`, one more than the highest file descriptor.
    Nofile,
    /// `nproc`: `RLIMIT_NPROC`, processes (threads) of the real user id.
    Nproc,
    /// `rss`: `RLIMIT_RSS`, resident pages (ignored by Linux since 2.6).
    Rss,
    /// `rtprio`: `RLIMIT_RTPRIO`, the ceiling of the real-time priority.
    Rtprio,
    /// `rttime`: `RLIMIT_RTTIME`, real-time CPU time in microseconds.
    Rttime,
    /// `sigpending`: `RLIMIT_SIGPENDING`, queued signals.
    Sigpending,
    /// `stack`: `RLIMIT_STACK`, the stack in bytes.
    Stack,
}

impl RlimitKind {
    /// Every resource, in the order of their names.
    pub const ALL: [RlimitKind; 16] = [
        Self::As,
        Self::Core,
        Self::Cpu,
        Self::Data,
        Self::Fsize,
        Self::Locks,
        Self::Memlock,
        Self::Msgqueue,
        Self::Nice,
        Self::Nofile,
        Self::Nproc,
        Self::Rss,
        Self::Rtprio,
        Self::Rttime,
        Self::Sigpending,
        Self::Stack,
    ];

    /// The `--ulimit` name: `nofile`, `core`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::As => "as",
            Self::Core => "core",
            Self::Cpu => "cpu",
            Self::Data => "data",
            Self::Fsize => "fsize",
            Self::Locks => "locks",
            Self::Memlock => "memlock",
            Self::Msgqueue => "msgqueue",
            Self::Nice => "nice",
            Self::Nofile => "nofile",
            Self::Nproc => "nproc",
            Self::Rss => "rss",
            Self::Rtprio => "rtprio",
            Self::Rttime => "rttime",
            Self::Sigpending => "sigpending",
            Self::Stack => "stack",
        }
    }

    /// The resource named `name` as `--ulimit` takes it: `nofile`, in any case, with or
    /// without the `RLIMIT_` prefix (`NOFILE`, `RLIMIT_NOFILE`, `rlimit_nofile`).
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        let bare = lower.strip_prefix("rlimit_").unwrap_or(&lower);
        Self::ALL.into_iter().find(|k| k.name() == bare)
    }

    /// The runtime-spec `process.rlimits[].type` (`RLIMIT_NOFILE`, ...).
    pub fn posix(self) -> PosixRlimitType {
        match self {
            Self::As => PosixRlimitType::RlimitAs,
            Self::Core => PosixRlimitType::RlimitCore,
            Self::Cpu => PosixRlimitType::RlimitCpu,
            Self::Data => PosixRlimitType::RlimitData,
            Self::Fsize => PosixRlimitType::RlimitFsize,
            Self::Locks => PosixRlimitType::RlimitLocks,
            Self::Memlock => PosixRlimitType::RlimitMemlock,
            Self::Msgqueue => PosixRlimitType::RlimitMsgqueue,
            Self::Nice => PosixRlimitType::RlimitNice,
            Self::Nofile => PosixRlimitType::RlimitNofile,
            Self::Nproc => PosixRlimitType::RlimitNproc,
            Self::Rss => PosixRlimitType::RlimitRss,
            Self::Rtprio => PosixRlimitType::RlimitRtprio,
            Self::Rttime => PosixRlimitType::RlimitRttime,
            Self::Sigpending => PosixRlimitType::RlimitSigpending,
            Self::Stack => PosixRlimitType::RlimitStack,
        }
    }
}

impl fmt::Display for RlimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `--ulimit name=soft[:hard]` (podman-run(1) `--ulimit`). The name is any case, with or
/// without `RLIMIT_` ([`RlimitKind::from_name`]); `--ulimit host` is not a `Ulimit` but
/// [`RunOptions::ulimit_host`](crate::RunOptions::ulimit_host).
///
/// `soft` and `hard` are numbers in the resource's unit, or `-1`/`unlimited` for
/// [`RLIM_INFINITY`]. `hard` defaults to `soft`; `soft` above `hard` is refused, as setrlimit(2)
/// would refuse it.
///
/// ```
/// use ocirun_spec_gen::{RlimitKind, Ulimit, RLIM_INFINITY};
/// let u: Ulimit = "core=0:-1".parse()?;
/// assert_eq!((u.kind, u.soft, u.hard), (RlimitKind::Core, 0, RLIM_INFINITY));
/// assert_eq!(u.to_string(), "core=0:unlimited");
/// assert!("nofile=10:5".parse::<Ulimit>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ulimit {
    /// The resource.
    pub kind: RlimitKind,
    /// The soft limit ([`RLIM_INFINITY`] for unlimited).
    pub soft: u64,
    /// The hard limit ([`RLIM_INFINITY`] for unlimited); never below `soft`.
    pub hard: u64,
}

impl FromStr for Ulimit {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: String| SpecError::InvalidUlimit {
            value: s.to_owned(),
            reason,
        };
        let (name, values) = s
            .split_once('=')
            .ok_or_else(|| bad("expected name=soft[:hard]".to_owned()))?;
        let kind = RlimitKind::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = RlimitKind::ALL.iter().map(|k| k.name()).collect();
            bad(format!(
                "unknown resource {name:?} (one of {}, in any case, with or without RLIMIT_)",
                names.join(", ")
            ))
        })?;
        let value = |v: &str| -> Result<u64, SpecError> {
            match v {
                "-1" | "unlimited" => Ok(RLIM_INFINITY),
                _ if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n != RLIM_INFINITY)
                    .ok_or_else(|| bad(format!("{v} is too large"))),
                _ => Err(bad(format!("{v:?} is not a number, -1 or unlimited"))),
            }
        };
        let (soft, hard) = match values.split_once(':') {
            Some((soft, hard)) => (value(soft)?, value(hard)?),
            None => {
                let v = value(values)?;
                (v, v)
            }
        };
        if soft > hard {
            return Err(bad(format!(
                "soft limit {} is greater than hard limit {}",
                show(soft),
                show(hard)
            )));
        }
        Ok(Self { kind, soft, hard })
    }
}

impl fmt::Display for Ulimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}:{}", self.kind, show(self.soft), show(self.hard))
    }
}

/// A limit as users write it: a number or `unlimited`.
pub(crate) fn show(limit: u64) -> String {
    if limit == RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        limit.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        let u = |s: &str| s.parse::<Ulimit>().unwrap();
        assert_eq!(
            u("nofile=1024:2048"),
            Ulimit {
                kind: RlimitKind::Nofile,
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(u("nproc=10").hard, 10);
        assert_eq!(u("core=unlimited").soft, RLIM_INFINITY);
        assert_eq!(u("core=-1:-1").hard, RLIM_INFINITY);
        assert_eq!(u("stack=0:unlimited").to_string(), "stack=0:unlimited");
        for name in ["NOFILE", "RLIMIT_NOFILE", "rlimit_nofile", "NoFile"] {
            assert_eq!(
                u(&format!("{name}=1:2")).to_string(),
                "nofile=1:2",
                "{name}"
            );
        }
        for kind in RlimitKind::ALL {
            assert_eq!(u(&format!("{kind}=1")).kind, kind);
            assert_eq!(
                kind.posix().to_string().to_ascii_lowercase(),
                format!("rlimit_{kind}")
            );
        }
    }

    #[test]
    fn errors_name_the_value() {
        let err = |s: &str| s.parse::<Ulimit>().unwrap_err().to_string();
        assert_eq!(
            err("nofile=10:5"),
            r#"invalid --ulimit "nofile=10:5": soft limit 10 is greater than hard limit 5"#
        );
        assert_eq!(
            err("nofile=-1:5"),
            r#"invalid --ulimit "nofile=-1:5": soft limit unlimited is greater than hard limit 5"#
        );
        assert!(err("nofile").contains("expected name=soft[:hard]"));
        assert!(err("files=1").contains(r#"unknown resource "files""#));
        assert_eq!(
            err("files=1"),
            "invalid --ulimit \"files=1\": unknown resource \"files\" (one of as, core, cpu, \
             data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, \
             sigpending, stack, in any case, with or without RLIMIT_)"
        );
        assert!(err("RLIMIT_=1").contains("unknown resource \"RLIMIT_\""));
        assert!(err("nofile=").contains(r#""" is not a number"#));
        assert!(err("nofile=-2").contains(r#""-2" is not a number"#));
        assert!(err("nofile=+2").contains("is not a number"));
        assert!(err("nofile=1:2:3").contains(r#""2:3" is not a number"#));
        assert!(err("nofile=18446744073709551615").contains("too large"));
        assert!(err("nofile=99999999999999999999").contains("too large"));
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in ".{0,40}") {
            let _ = s.parse::<Ulimit>();
        }

        #[test]
        fn accepted_values_round_trip(
            kind in proptest::sample::select(RlimitKind::ALL.to_vec()),
            soft in prop_oneof![Just(RLIM_INFINITY), 0u64..u64::MAX],
            hard in prop_oneof![Just(RLIM_INFINITY), 0u64..u64::MAX],
        ) {
            let text = format!("{}={}:{}", kind, show(soft), show(hard));
            match text.parse::<Ulimit>() {
                Ok(u) => {
                    prop_assert!(soft <= hard);
                    prop_assert_eq!((u.kind, u.soft, u.hard), (kind, soft, hard));
                    prop_assert_eq!(u.to_string().parse::<Ulimit>().unwrap(), u);
                }
                Err(e) => {
                    prop_assert!(soft > hard);
                    prop_assert!(e.to_string().contains("is greater than hard limit"));
                }
            }
        }
    }
}
