//! User namespaces: podman's `--userns`, `--uidmap` and `--gidmap`, and the maps of the
//! namespace ocirun itself runs in when it runs without root.
//!
//! Without root, ocirun joins a user namespace of its own before anything else (id 0 there is
//! the user, ids 1 to N the user's subordinate ids: [`HostFacts::user_namespace`]), and the
//! runtime runs as root there. A container then shares that namespace unless `--userns` or
//! `--uidmap` asks for one of its own, whose host ids are ids of ocirun's namespace (podman's
//! "intermediate" ids). As root, `--uidmap` maps host ids.

use std::fmt;
use std::str::FromStr;

use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};

use crate::{HostFacts, SpecError};

/// `--userns` (podman-run(1)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserNsMode {
    /// No flag: root runs without a user namespace; a user other than root in ocirun's own.
    #[default]
    Default,
    /// `host`: no user namespace of the container's own (only root can run so).
    Host,
    /// `keep-id[:uid=U,gid=G]`: the user's own uid and gid (or U and G) inside are the user
    /// outside; the process runs as them. Without root only.
    KeepId {
        /// `uid=`: the uid inside that is the user (default: the user's own uid).
        uid: Option<u32>,
        /// `gid=`: the gid inside that is the user's group (default: the user's own gid).
        gid: Option<u32>,
    },
    /// `nomap`: the user's own ids are not mapped; 0.. inside are the subordinate ids. Without
    /// root only.
    NoMap,
}

impl FromStr for UserNsMode {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: String| SpecError::InvalidUserNs {
            value: s.to_owned(),
            reason,
        };
        match s {
            "host" => return Ok(Self::Host),
            "keep-id" => {
                return Ok(Self::KeepId {
                    uid: None,
                    gid: None,
                })
            }
            "nomap" => return Ok(Self::NoMap),
            _ => {}
        }
        let Some(options) = s.strip_prefix("keep-id:") else {
            return Err(bad(
                "expected host, keep-id[:uid=U,gid=G] or nomap".to_owned()
            ));
        };
        let (mut uid, mut gid) = (None, None);
        for option in options.split(',') {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| bad(format!("{option:?}: expected uid=U or gid=G")))?;
            let id: u32 = value
                .parse()
                .ok()
                .filter(|id| *id <= crate::user::MAX_ID)
                .ok_or_else(|| bad(format!("{value:?} is not an id from 0 to 2147483647")))?;
            match key {
                "uid" if uid.is_none() => uid = Some(id),
                "gid" if gid.is_none() => gid = Some(id),
                "uid" | "gid" => return Err(bad(format!("{key} given twice"))),
                _ => return Err(bad(format!("unknown option {key:?}: expected uid or gid"))),
            }
        }
        Ok(Self::KeepId { uid, gid })
    }
}

impl fmt::Display for UserNsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => Ok(()),
            Self::Host => f.write_str("host"),
            Self::NoMap => f.write_str("nomap"),
            Self::KeepId {
                uid: None,
                gid: None,
            } => f.write_str("keep-id"),
            Self::KeepId { uid, gid } => {
                let parts: Vec<String> = [("uid", uid), ("gid", gid)]
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
                    .collect();
                write!(f, "keep-id:{}", parts.join(","))
            }
        }
    }
}

/// One `--uidmap`/`--gidmap` value, `CONTAINER:HOST:SIZE` (podman's form): ids `CONTAINER ..
/// CONTAINER+SIZE` inside are `HOST .. HOST+SIZE` outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    /// The first id inside the container.
    pub container: u32,
    /// The first id outside: a host id as root, an id of ocirun's own namespace without root.
    pub host: u32,
    /// How many ids (at least 1).
    pub size: u32,
}

impl IdMapping {
    fn end(self, start: u32) -> u64 {
        u64::from(start) + u64::from(self.size)
    }

    /// Whether `id` inside is in this range.
    fn maps(self, id: u32) -> bool {
        id >= self.container && u64::from(id) < self.end(self.container)
    }

    pub(crate) fn to_oci(self) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(self.container)
            .host_id(self.host)
            .size(self.size)
            .build()
            .unwrap_or_else(|e| panic!("id mapping is malformed: {e}"))
    }
}

impl FromStr for IdMapping {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError::InvalidIdMapping {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let fields: Vec<&str> = s.split(':').collect();
        let [container, host, size] = fields[..] else {
            return Err(bad("expected CONTAINER:HOST:SIZE"));
        };
        let number = |f: &str| {
            f.parse::<u32>()
                .map_err(|_| bad(&format!("{f:?} is not a number from 0 to 4294967295")))
        };
        let m = Self {
            container: number(container)?,
            host: number(host)?,
            size: number(size)?,
        };
        if m.size == 0 {
            return Err(bad("the size must be at least 1"));
        }
        if m.end(m.container) > 1 << 32 || m.end(m.host) > 1 << 32 {
            return Err(bad("the range ends past 4294967295"));
        }
        Ok(m)
    }
}

impl fmt::Display for IdMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.container, self.host, self.size)
    }
}

/// The uid and gid maps of the user namespace ocirun runs in without root (its ids 0 to N:
/// 0 is the user, 1 to N the user's subordinate ids), and the user's own ids on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnUserNamespace {
    /// The uid map, as /proc/self/uid_map shows it there.
    pub uid_map: Vec<IdMapping>,
    /// The gid map.
    pub gid_map: Vec<IdMapping>,
    /// The user's uid on the host (0 in the namespace).
    pub host_uid: u32,
    /// The user's gid on the host.
    pub host_gid: u32,
    /// The user's name (`--userns keep-id` adds it to /etc/passwd when the rootfs lacks it).
    pub user_name: String,
}

impl OwnUserNamespace {
    /// The namespace with these maps, of the user `user_name` (`host_uid`, `host_gid`).
    pub fn new(
        uid_map: Vec<IdMapping>,
        gid_map: Vec<IdMapping>,
        host_uid: u32,
        host_gid: u32,
        user_name: impl Into<String>,
    ) -> Self {
        Self {
            uid_map,
            gid_map,
            host_uid,
            host_gid,
            user_name: user_name.into(),
        }
    }

    /// How many uids it holds (ids 0 to the count - 1).
    pub fn uids(&self) -> u64 {
        self.uid_map.iter().map(|m| u64::from(m.size)).sum()
    }

    /// How many gids it holds.
    pub fn gids(&self) -> u64 {
        self.gid_map.iter().map(|m| u64::from(m.size)).sum()
    }
}

/// The container's own user namespace maps `(uids, gids)`, if it gets one.
pub(crate) type ContainerMaps = (Vec<IdMapping>, Vec<IdMapping>);

/// The maps of the container's own user namespace that `--userns`, `--uidmap` and `--gidmap`
/// ask for (`None`: it gets none), checked as podman checks them.
pub(crate) fn container_maps(
    mode: UserNsMode,
    uid_maps: &[IdMapping],
    gid_maps: &[IdMapping],
    host: &HostFacts,
) -> Result<Option<ContainerMaps>, SpecError> {
    let own = host.user_namespace.as_ref();
    let refused = |value: String, reason: &str| SpecError::InvalidUserNs {
        value,
        reason: reason.to_owned(),
    };
    if !uid_maps.is_empty() || !gid_maps.is_empty() {
        if mode != UserNsMode::Default {
            return Err(refused(
                mode.to_string(),
                "cannot be used with --uidmap or --gidmap",
            ));
        }
        // podman's rule: one of the two maps both.
        let uids = if uid_maps.is_empty() {
            gid_maps
        } else {
            uid_maps
        };
        let gids = if gid_maps.is_empty() {
            uid_maps
        } else {
            gid_maps
        };
        for (flag, maps, limit) in [
            ("--uidmap", uids, own.map(OwnUserNamespace::uids)),
            ("--gidmap", gids, own.map(OwnUserNamespace::gids)),
        ] {
            check_maps(flag, maps, limit)?;
        }
        return Ok(Some((uids.to_vec(), gids.to_vec())));
    }
    match (mode, own) {
        (UserNsMode::Default, _) | (UserNsMode::Host, None) => Ok(None),
        (UserNsMode::Host, Some(_)) => Err(refused(
            "host".to_owned(),
            "without root, ocirun runs in a user namespace of its own; only root can run a \
             container without one",
        )),
        (UserNsMode::KeepId { .. } | UserNsMode::NoMap, None) => Err(refused(
            mode.to_string(),
            "only without root: as root, give the maps with --uidmap and --gidmap",
        )),
        (UserNsMode::NoMap, Some(own)) => {
            let (uids, gids) = (own.uids() - 1, own.gids() - 1);
            if uids == 0 || gids == 0 {
                return Err(refused(
                    "nomap".to_owned(),
                    "needs subordinate ids: add a range for the user to /etc/subuid and \
                     /etc/subgid",
                ));
            }
            let map = |size: u64| IdMapping {
                container: 0,
                host: 1,
                size: u32::try_from(size).unwrap_or(u32::MAX),
            };
            Ok(Some((vec![map(uids)], vec![map(gids)])))
        }
        (UserNsMode::KeepId { uid, gid }, Some(own)) => {
            let keep = |target: u32, count: u64| -> Result<Vec<IdMapping>, SpecError> {
                let subordinate = count - 1;
                if subordinate == 0 {
                    return Err(refused(
                        mode.to_string(),
                        "needs subordinate ids: add a range for the user to /etc/subuid and \
                         /etc/subgid",
                    ));
                }
                // podman's GetKeepIDMapping: the ids below the target, the target (the user),
                // then the rest, in the namespace's ids 1.. and 0.
                let mut maps = Vec::new();
                let below = u64::from(target).min(subordinate);
                if below > 0 {
                    maps.push(IdMapping {
                        container: 0,
                        host: 1,
                        size: u32::try_from(below).unwrap_or(u32::MAX),
                    });
                }
                maps.push(IdMapping {
                    container: target,
                    host: 0,
                    size: 1,
                });
                if subordinate > u64::from(target) {
                    let start = target + 1;
                    let size = subordinate - u64::from(target);
                    let size = size.min((1u64 << 32) - u64::from(start));
                    if size > 0 {
                        maps.push(IdMapping {
                            container: start,
                            host: start,
                            size: u32::try_from(size).unwrap_or(u32::MAX),
                        });
                    }
                }
                Ok(maps)
            };
            let uid = uid.unwrap_or(own.host_uid);
            let gid = gid.unwrap_or(own.host_gid);
            Ok(Some((keep(uid, own.uids())?, keep(gid, own.gids())?)))
        }
    }
}

/// Checks a list of maps: no two ranges overlap inside or outside, and without root every host
/// id is one of ocirun's namespace (`limit` ids).
fn check_maps(flag: &'static str, maps: &[IdMapping], limit: Option<u64>) -> Result<(), SpecError> {
    for (i, m) in maps.iter().enumerate() {
        let bad = |reason: String| SpecError::InvalidIdMapping {
            value: format!("{flag} {m}"),
            reason,
        };
        for other in &maps[..i] {
            let overlap = |a: u32, b: u32| u64::from(a) < other.end(b) && u64::from(b) < m.end(a);
            if overlap(m.container, other.container) {
                return Err(bad(format!("its container ids overlap those of {other}")));
            }
            if overlap(m.host, other.host) {
                return Err(bad(format!("its host ids overlap those of {other}")));
            }
        }
        if let Some(limit) = limit {
            if m.end(m.host) > limit {
                return Err(bad(format!(
                    "without root its host ids are ids of ocirun's user namespace, which has \
                     ids 0 to {}",
                    limit - 1
                )));
            }
        }
    }
    Ok(())
}

/// Whether `id` is mapped: by `maps` when the container has its own namespace, else by
/// ocirun's own namespace of `count` ids when there is one, else always.
pub(crate) fn is_mapped(id: u32, maps: Option<&[IdMapping]>, count: Option<u64>) -> bool {
    match (maps, count) {
        (Some(maps), _) => maps.iter().any(|m| m.maps(id)),
        (None, Some(count)) => u64::from(id) < count,
        (None, None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn own() -> HostFacts {
        let mut host = HostFacts::default();
        host.user_namespace = Some(OwnUserNamespace::new(
            vec![
                IdMapping {
                    container: 0,
                    host: 1001,
                    size: 1,
                },
                IdMapping {
                    container: 1,
                    host: 100_000,
                    size: 65536,
                },
            ],
            vec![
                IdMapping {
                    container: 0,
                    host: 1001,
                    size: 1,
                },
                IdMapping {
                    container: 1,
                    host: 100_000,
                    size: 65536,
                },
            ],
            1001,
            1001,
            "rl",
        ));
        host
    }

    fn m(s: &str) -> IdMapping {
        s.parse().unwrap()
    }

    #[test]
    fn userns_forms() {
        assert_eq!("host".parse::<UserNsMode>().unwrap(), UserNsMode::Host);
        assert_eq!("nomap".parse::<UserNsMode>().unwrap(), UserNsMode::NoMap);
        assert_eq!(
            "keep-id:uid=1000,gid=100".parse::<UserNsMode>().unwrap(),
            UserNsMode::KeepId {
                uid: Some(1000),
                gid: Some(100)
            }
        );
        for bad in [
            "bogus",
            "",
            "keep-id:",
            "keep-id:uid=x",
            "keep-id:foo=1",
            "keep-id:uid=1,uid=2",
        ] {
            assert!(bad.parse::<UserNsMode>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "bogus".parse::<UserNsMode>().unwrap_err().to_string(),
            r#"invalid --userns "bogus": expected host, keep-id[:uid=U,gid=G] or nomap"#
        );
    }

    #[test]
    fn keep_id_is_podmans_mapping() {
        let (uids, gids) = container_maps(
            UserNsMode::KeepId {
                uid: None,
                gid: None,
            },
            &[],
            &[],
            &own(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(uids, [m("0:1:1001"), m("1001:0:1"), m("1002:1002:64535")]);
        assert_eq!(uids, gids);
        let (uids, _) = container_maps(
            UserNsMode::KeepId {
                uid: Some(1000),
                gid: Some(1000),
            },
            &[],
            &[],
            &own(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(uids, [m("0:1:1000"), m("1000:0:1"), m("1001:1001:64536")]);
    }

    #[test]
    fn nomap_leaves_the_user_out() {
        let (uids, gids) = container_maps(UserNsMode::NoMap, &[], &[], &own())
            .unwrap()
            .unwrap();
        assert_eq!(uids, [m("0:1:65536")]);
        assert_eq!(gids, [m("0:1:65536")]);
    }

    #[test]
    fn modes_that_need_or_refuse_root() {
        let root = HostFacts::default();
        assert_eq!(
            container_maps(UserNsMode::Host, &[], &[], &own())
                .unwrap_err()
                .to_string(),
            "invalid --userns \"host\": without root, ocirun runs in a user namespace of its \
             own; only root can run a container without one"
        );
        assert!(container_maps(UserNsMode::Host, &[], &[], &root)
            .unwrap()
            .is_none());
        assert!(container_maps(UserNsMode::NoMap, &[], &[], &root).is_err());
    }

    #[test]
    fn explicit_maps_are_checked() {
        let root = HostFacts::default();
        let maps = [m("0:100000:65536")];
        let (uids, gids) = container_maps(UserNsMode::Default, &maps, &[], &root)
            .unwrap()
            .unwrap();
        assert_eq!((uids.as_slice(), gids.as_slice()), (&maps[..], &maps[..]));
        let err = container_maps(
            UserNsMode::Default,
            &[m("0:100000:10"), m("5:200000:10")],
            &[],
            &root,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid id mapping "--uidmap 5:200000:10": its container ids overlap those of 0:100000:10"#
        );
        let err = container_maps(UserNsMode::Default, &[m("0:0:70000")], &[], &own()).unwrap_err();
        assert!(err.to_string().contains("ids 0 to 65536"), "{err}");
        assert_eq!(
            "1:2".parse::<IdMapping>().unwrap_err().to_string(),
            r#"invalid id mapping "1:2": expected CONTAINER:HOST:SIZE"#
        );
        assert!("0:0:0".parse::<IdMapping>().is_err());
        assert!("4294967295:0:2".parse::<IdMapping>().is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = s.parse::<IdMapping>();
            if let Ok(mode) = s.parse::<UserNsMode>() {
                prop_assert_eq!(mode.to_string().parse::<UserNsMode>().unwrap(), mode);
            }
        }

        #[test]
        fn mappings_round_trip(c in 0u32..1 << 31, h in 0u32..1 << 31, n in 1u32..1 << 20) {
            let m = IdMapping { container: c, host: h, size: n };
            prop_assert_eq!(m.to_string().parse::<IdMapping>().unwrap(), m);
        }
    }
}
