//! Capabilities: the default set, `--cap-add` and `--cap-drop` (docs/ocirun-run.md "Process").
//!
//! Names are capabilities(7) names, with or without the `CAP_` prefix, in any case
//! (`net_admin`, `CAP_NET_ADMIN`), as podman accepts them; `ALL` stands for every capability the
//! [caps](https://crates.io/crates/caps) crate knows that ocirun itself can hand on.
//!
//! What ocirun can hand on is its own bounding set
//! ([`HostFacts::cap_bounding`](crate::HostFacts::cap_bounding)): the runtime's init cannot
//! gain a capability that its parent's bounding set lacks (capset(2) fails, and runc reports
//! "unable to apply caps"). So `ALL` is limited to it, as podman limits `ALL` to its own
//! bounding set; a default capability outside it is left out; and an explicit `--cap-add` of a
//! capability outside it is refused before the runtime is called.

use std::fmt;
use std::str::FromStr;

use oci_spec::runtime::Capability;

use crate::SpecError;

/// The default capability set: bounding = effective = permitted for root (docs/ocirun-run.md
/// "Process"; the set podman and buildah use by default).
pub const DEFAULT_CAPABILITIES: [Capability; 11] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::NetBindService,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
];

/// One `--cap-add`/`--cap-drop` value: a capability, or `ALL`.
///
/// ```
/// use ocirun_spec_gen::oci_spec::runtime::Capability;
/// use ocirun_spec_gen::CapabilityName;
/// assert_eq!("net_admin".parse::<CapabilityName>()?, CapabilityName::One(Capability::NetAdmin));
/// assert_eq!("CAP_NET_ADMIN".parse::<CapabilityName>()?.to_string(), "CAP_NET_ADMIN");
/// assert_eq!("all".parse::<CapabilityName>()?, CapabilityName::All);
/// assert!("CAP_FLY".parse::<CapabilityName>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapabilityName {
    /// `ALL`: every capability known to both the caps crate and the host kernel.
    All,
    /// One capability.
    One(Capability),
}

impl FromStr for CapabilityName {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        let canonical = caps::to_canonical(s);
        known()
            .into_iter()
            .find(|(_, cap)| cap_name(*cap) == canonical)
            .map(|(_, cap)| Self::One(cap))
            .ok_or_else(|| SpecError::UnknownCapability(s.to_owned()))
    }
}

impl fmt::Display for CapabilityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("ALL"),
            Self::One(cap) => f.write_str(&cap_name(*cap)),
        }
    }
}

/// The capabilities(7) name of `cap`: `CAP_NET_ADMIN`.
pub fn cap_name(cap: Capability) -> String {
    format!("CAP_{cap}")
}

/// Every capability the caps crate knows, with its number (capabilities(7)), by number.
fn known() -> Vec<(u8, Capability)> {
    let mut all: Vec<(u8, Capability)> = caps::all()
        .into_iter()
        .map(|c| {
            let name = c.to_string();
            let short = name.strip_prefix("CAP_").unwrap_or(&name);
            let cap = Capability::from_str(short).unwrap_or_else(|_| {
                panic!("oci-spec lacks the capability {name} that the caps crate knows")
            });
            (c.index(), cap)
        })
        .collect();
    all.sort_by_key(|(index, _)| *index);
    all
}

/// The capability set after `--cap-add` and `--cap-drop`, by capability number.
///
/// Starts from [`DEFAULT_CAPABILITIES`]; adds `add` (`ALL`: every capability in `bounding`);
/// then removes `drop` (a capability both added and dropped is dropped; `ALL` empties the
/// set), as docs/ocirun-run.md "Process" says. `bounding` is ocirun's own bounding set as a
/// bit mask (bit N is capability N).
///
/// # Errors
/// [`SpecError::CapabilityUnavailable`] for an added capability outside `bounding`.
pub(crate) fn final_capabilities(
    add: &[CapabilityName],
    drop: &[CapabilityName],
    bounding: u64,
) -> Result<Vec<Capability>, SpecError> {
    let known = known();
    let available = |index: u8| bounding & (1u64 << index) != 0;
    let mut set: Vec<(u8, Capability)> = known
        .iter()
        .copied()
        .filter(|(index, cap)| DEFAULT_CAPABILITIES.contains(cap) && available(*index))
        .collect();
    let mut insert = |entry: (u8, Capability)| {
        if !set.contains(&entry) {
            set.push(entry);
        }
    };
    for name in add {
        match name {
            CapabilityName::All => known
                .iter()
                .copied()
                .filter(|(index, _)| available(*index))
                .for_each(&mut insert),
            CapabilityName::One(cap) => {
                let entry = known
                    .iter()
                    .copied()
                    .find(|(_, c)| c == cap)
                    .expect("a parsed CapabilityName is one the caps crate knows");
                if !available(entry.0) {
                    return Err(SpecError::CapabilityUnavailable(cap_name(*cap)));
                }
                insert(entry);
            }
        }
    }
    for name in drop {
        match name {
            CapabilityName::All => set.clear(),
            CapabilityName::One(cap) => set.retain(|(_, c)| c != cap),
        }
    }
    set.sort_by_key(|(index, _)| *index);
    Ok(set.into_iter().map(|(_, cap)| cap).collect())
}

/// The bit mask of every capability the caps crate knows (bit N is capability N): the
/// bounding set of a root process on a kernel that knows them all.
pub fn all_known_caps_mask() -> u64 {
    known()
        .iter()
        .fold(0, |mask, (index, _)| mask | (1u64 << index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(caps: &[Capability]) -> Vec<String> {
        caps.iter().map(|c| cap_name(*c)).collect()
    }

    #[test]
    fn every_caps_crate_capability_maps_to_oci_spec() {
        let known = known();
        assert_eq!(known.len(), 41);
        assert_eq!(known[0], (0, Capability::Chown));
        assert_eq!(known[40], (40, Capability::CheckpointRestore));
        assert_eq!(all_known_caps_mask(), 0x1ff_ffff_ffff);
    }

    #[test]
    fn names_in_every_form() {
        for s in [
            "sys_admin",
            "SYS_ADMIN",
            "cap_sys_admin",
            "CAP_SYS_ADMIN",
            "Cap_Sys_Admin",
        ] {
            assert_eq!(
                s.parse::<CapabilityName>().unwrap(),
                CapabilityName::One(Capability::SysAdmin),
                "{s}"
            );
        }
        assert_eq!(
            "CAP_FLY".parse::<CapabilityName>().unwrap_err().to_string(),
            r#"unknown capability "CAP_FLY""#
        );
        assert!("".parse::<CapabilityName>().is_err());
        assert!("CAP_".parse::<CapabilityName>().is_err());
    }

    #[test]
    fn add_then_drop() {
        let p = |s: &str| s.parse::<CapabilityName>().unwrap();
        let all = all_known_caps_mask();
        assert_eq!(final_capabilities(&[], &[], all).unwrap().len(), 11);
        let caps = final_capabilities(
            &[p("net_admin"), p("sys_time")],
            &[p("chown"), p("net_admin")],
            all,
        )
        .unwrap();
        assert_eq!(
            names(&caps),
            [
                "CAP_DAC_OVERRIDE",
                "CAP_FOWNER",
                "CAP_FSETID",
                "CAP_KILL",
                "CAP_SETGID",
                "CAP_SETUID",
                "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT",
                "CAP_SYS_TIME",
                "CAP_SETFCAP"
            ]
        );
        assert_eq!(final_capabilities(&[p("all")], &[], all).unwrap().len(), 41);
        assert!(final_capabilities(&[p("all")], &[p("ALL")], all)
            .unwrap()
            .is_empty());
        assert!(final_capabilities(&[p("net_raw")], &[p("all")], all)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn ocirun_cannot_hand_on_what_it_lacks() {
        let p = |s: &str| s.parse::<CapabilityName>().unwrap();
        // This host's bounding set: everything but CAP_SYS_RESOURCE (24).
        let host = 0x1ff_feff_ffff;
        let caps = final_capabilities(&[p("all")], &[], host).unwrap();
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&Capability::SysResource));
        assert_eq!(
            final_capabilities(&[p("sys_resource")], &[], host)
                .unwrap_err()
                .to_string(),
            "cannot add CAP_SYS_RESOURCE: ocirun's own bounding set lacks it, so the \
             container cannot have it"
        );
        // A default capability that ocirun lacks is left out (bit 0: CAP_CHOWN).
        let caps = final_capabilities(&[], &[], host & !1).unwrap();
        assert_eq!(caps.len(), 10);
        assert!(!caps.contains(&Capability::Chown));
    }

    proptest! {
        #[test]
        fn parser_never_panics_and_round_trips(s in "[A-Za-z_]{0,24}") {
            if let Ok(name) = s.parse::<CapabilityName>() {
                prop_assert_eq!(name.to_string().parse::<CapabilityName>().unwrap(), name);
            }
        }
    }
}
