//! Namespace modes: `--pid`, `--ipc`, `--uts`, `--cgroupns` and `--network` (docs/ocirun-run.md
//! "Linux"; podman-run(1)).
//!
//! Each becomes an entry of runtime-spec `linux.namespaces` (a new namespace, or `path` to
//! join one), or no entry (the host's namespace).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::SpecError;

/// `--pid`, `--ipc`, `--uts` or `--cgroupns`: `private` (a new namespace, the default),
/// `host` (the namespace ocirun runs in) or `ns:PATH` (join the namespace at PATH, e.g.
/// `/proc/1234/ns/ipc`).
///
/// ```
/// use ocirun_spec_gen::NamespaceMode;
/// assert_eq!("host".parse::<NamespaceMode>()?, NamespaceMode::Host);
/// assert_eq!("ns:/proc/1/ns/ipc".parse::<NamespaceMode>()?.to_string(), "ns:/proc/1/ns/ipc");
/// assert!("ns:relative".parse::<NamespaceMode>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum NamespaceMode {
    /// A new namespace.
    #[default]
    Private,
    /// The host's namespace: no `linux.namespaces` entry.
    Host,
    /// Join the namespace file at this absolute path.
    Path(PathBuf),
}

/// `--network`: `host` (the default: ocirun configures no network, as the seed did), `none`
/// (a new network namespace whose only interface is the loopback, which runc brings up) or
/// `ns:PATH` (join the network namespace at PATH, e.g. `/run/netns/test`).
///
/// ```
/// use ocirun_spec_gen::NetworkMode;
/// assert_eq!("none".parse::<NetworkMode>()?, NetworkMode::None);
/// assert!("bridge".parse::<NetworkMode>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NetworkMode {
    /// The host's network namespace.
    #[default]
    Host,
    /// A new network namespace with the loopback interface only.
    None,
    /// Join the network namespace file at this absolute path.
    Path(PathBuf),
}

fn ns_path(value: &str, path: &str) -> Result<PathBuf, SpecError> {
    if !path.starts_with('/') {
        return Err(SpecError::InvalidNamespace {
            value: value.to_owned(),
            reason: "the path after ns: must be absolute".to_owned(),
        });
    }
    Ok(PathBuf::from(path))
}

impl FromStr for NamespaceMode {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s {
            "private" => Ok(Self::Private),
            "host" => Ok(Self::Host),
            _ => match s.strip_prefix("ns:") {
                Some(path) => Ok(Self::Path(ns_path(s, path)?)),
                None => Err(SpecError::InvalidNamespace {
                    value: s.to_owned(),
                    reason: "expected private, host or ns:PATH".to_owned(),
                }),
            },
        }
    }
}

impl fmt::Display for NamespaceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Private => f.write_str("private"),
            Self::Host => f.write_str("host"),
            Self::Path(p) => write!(f, "ns:{}", p.display()),
        }
    }
}

impl FromStr for NetworkMode {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s {
            "host" => Ok(Self::Host),
            "none" => Ok(Self::None),
            _ => match s.strip_prefix("ns:") {
                Some(path) => Ok(Self::Path(ns_path(s, path)?)),
                None => Err(SpecError::InvalidNamespace {
                    value: s.to_owned(),
                    reason: "expected host, none or ns:PATH (ocirun configures no network)"
                        .to_owned(),
                }),
            },
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host => f.write_str("host"),
            Self::None => f.write_str("none"),
            Self::Path(p) => write!(f, "ns:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms_and_errors() {
        assert_eq!(
            "private".parse::<NamespaceMode>().unwrap(),
            NamespaceMode::Private
        );
        assert_eq!(
            "ns:/run/netns/x".parse::<NetworkMode>().unwrap(),
            NetworkMode::Path("/run/netns/x".into())
        );
        assert_eq!(
            "container:x"
                .parse::<NamespaceMode>()
                .unwrap_err()
                .to_string(),
            r#"invalid namespace "container:x": expected private, host or ns:PATH"#
        );
        assert_eq!(
            "ns:".parse::<NetworkMode>().unwrap_err().to_string(),
            r#"invalid namespace "ns:": the path after ns: must be absolute"#
        );
        assert!("private".parse::<NetworkMode>().is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_round_trip(s in "(ns:)?[a-z/]{0,12}") {
            if let Ok(m) = s.parse::<NamespaceMode>() {
                prop_assert_eq!(m.to_string().parse::<NamespaceMode>().unwrap(), m);
            }
            if let Ok(m) = s.parse::<NetworkMode>() {
                prop_assert_eq!(m.to_string().parse::<NetworkMode>().unwrap(), m);
            }
        }
    }
}
