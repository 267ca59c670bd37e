//! `--sysctl KEY=VALUE`: the namespaced kernel parameters a container may set (podman-run(1)
//! `--sysctl`), which become runtime-spec `linux.sysctl`.
//!
//! Only the keys that belong to a namespace of the container are accepted, podman's list: the
//! IPC group (`kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`, `kernel.sem`,
//! `kernel.shmall`, `kernel.shmmax`, `kernel.shmmni`, `kernel.shm_rmid_forced` and
//! `fs.mqueue.*`), which needs an IPC namespace of the run's own, and the network group
//! (`net.*`), which needs a network namespace of the run's own (`--network none` or
//! `ns:PATH`). Anything else would change the host's kernel, and runc refuses it.

use std::fmt;
use std::str::FromStr;

use crate::SpecError;

/// The IPC keys that are not below `fs.mqueue.` (podman's `ValidateSysctls`).
const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace a sysctl belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SysctlNamespace {
    /// `kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`.
    Ipc,
    /// `net.*`.
    Network,
}

impl SysctlNamespace {
    /// `ipc` or `network`, as the flags name the namespaces.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ipc => "ipc",
            Self::Network => "network",
        }
    }
}

/// One `--sysctl KEY=VALUE`.
///
/// ```
/// use ocirun_spec_gen::{Sysctl, SysctlNamespace};
/// let s: Sysctl = "net.ipv4.ip_forward=1".parse()?;
/// assert_eq!((s.key(), s.value(), s.namespace()), ("net.ipv4.ip_forward", "1", SysctlNamespace::Network));
/// assert!("kernel.hostname=x".parse::<Sysctl>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sysctl {
    key: String,
    value: String,
    namespace: SysctlNamespace,
}

impl Sysctl {
    /// The key, e.g. `net.ipv4.ip_forward`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value, as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The namespace the key belongs to.
    pub fn namespace(&self) -> SysctlNamespace {
        self.namespace
    }
}

impl FromStr for Sysctl {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: String| SpecError::InvalidSysctl {
            value: s.to_owned(),
            reason,
        };
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE".to_owned()))?;
        if key.trim() != key || value.trim() != value {
            return Err(bad("white space around the key or the value".to_owned()));
        }
        if key.is_empty() {
            return Err(bad("empty key".to_owned()));
        }
        if value.is_empty() {
            return Err(bad("empty value".to_owned()));
        }
        if value.chars().any(char::is_control) {
            return Err(bad("the value holds a control character".to_owned()));
        }
        let well_formed = key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        if !well_formed {
            return Err(bad(format!(
                "{key:?} is not a sysctl name (dot-separated words of letters, digits, '_' and '-')"
            )));
        }
        let namespace = if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
            SysctlNamespace::Ipc
        } else if key.starts_with("net.") {
            SysctlNamespace::Network
        } else {
            return Err(bad(format!(
                "{key:?} is not namespaced: only kernel.msgmax, kernel.msgmnb, kernel.msgmni, \
                 kernel.sem, kernel.shmall, kernel.shmmax, kernel.shmmni, \
                 kernel.shm_rmid_forced, fs.mqueue.* and net.* can be set"
            )));
        };
        Ok(Self {
            key: key.to_owned(),
            value: value.to_owned(),
            namespace,
        })
    }
}

impl fmt::Display for Sysctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(s: &str) -> String {
        s.parse::<Sysctl>().unwrap_err().to_string()
    }

    #[test]
    fn namespaced_keys_are_accepted() {
        for (text, ns) in [
            ("net.ipv4.ip_forward=1", SysctlNamespace::Network),
            ("net.ipv6.conf.all.disable_ipv6=1", SysctlNamespace::Network),
            (
                "net.ipv4.conf.veth-1.forwarding=0",
                SysctlNamespace::Network,
            ),
            ("kernel.shmmax=68719476736", SysctlNamespace::Ipc),
            ("kernel.sem=250 32000 100 128", SysctlNamespace::Ipc),
            ("fs.mqueue.msg_max=100", SysctlNamespace::Ipc),
        ] {
            let s: Sysctl = text.parse().unwrap();
            assert_eq!(s.namespace(), ns, "{text}");
            assert_eq!(s.to_string(), text);
        }
        // The value keeps its own '=' signs.
        assert_eq!("net.x=a=b".parse::<Sysctl>().unwrap().value(), "a=b");
    }

    #[test]
    fn the_bad_ones_name_the_value() {
        assert_eq!(
            err("kernel.hostname=x"),
            "invalid --sysctl \"kernel.hostname=x\": \"kernel.hostname\" is not namespaced: only \
             kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.shmall, \
             kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced, fs.mqueue.* and net.* can \
             be set"
        );
        assert_eq!(
            err("net.ipv4.ip_forward"),
            "invalid --sysctl \"net.ipv4.ip_forward\": expected KEY=VALUE"
        );
        assert_eq!(
            err("net.ipv4.ip_forward="),
            "invalid --sysctl \"net.ipv4.ip_forward=\": empty value"
        );
        assert_eq!(
            err("net.ipv4.ip_forward= 1"),
            "invalid --sysctl \"net.ipv4.ip_forward= 1\": white space around the key or the value"
        );
        assert_eq!(
            err("net..x=1"),
            "invalid --sysctl \"net..x=1\": \"net..x\" is not a sysctl name (dot-separated \
             words of letters, digits, '_' and '-')"
        );
        assert!(err("net.a/b=1").contains("is not a sysctl name"));
        assert!(err("=1").contains("empty key"));
        assert!(err("net.x=1\n2").contains("control character"));
        assert!(err("kernel.shm=1").contains("is not namespaced"));
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            if let Ok(sysctl) = s.parse::<Sysctl>() {
                prop_assert_eq!(sysctl.to_string(), s);
            }
        }
    }
}
