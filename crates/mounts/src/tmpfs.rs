//! `--tmpfs DST[:OPTS]` (podman-run(1) `--tmpfs`).
//!
//! DST is an absolute container path; OPTS a comma-separated list of mount(8) flags, a
//! propagation, runc's `tmpcopyup`/`notmpcopyup`, and tmpfs(5) options (`size=`, `mode=`,
//! `uid=`, `gid=`, `nr_inodes=`, `nr_blocks=`, `huge=`, `mpol=`, `inode32`, `inode64`,
//! `noswap`). What is not given takes podman's defaults: `rw`, `rprivate`, `noexec`,
//! `nosuid`, `nodev`, `tmpcopyup`; the size is the kernel's (half of RAM) unless `size=` says.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::user_mount::{
    check_tmpfs_option, clean_destination, conflict_group, tmpfs_options_with_defaults, TmpfsFlag,
};
use crate::{MountOrigin, MountSpecError, TmpfsOptions, UserMount, UserMountKind};

/// A parsed `--tmpfs` value. [`fmt::Display`] writes it back in a form that parses to the
/// same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsSpec {
    /// The container path, absolute and lexically clean.
    pub destination: PathBuf,
    /// The options as given, checked.
    pub options: Vec<String>,
}

impl FromStr for TmpfsSpec {
    type Err = MountSpecError;

    fn from_str(spec: &str) -> Result<Self, MountSpecError> {
        let fail = |reason: String| MountSpecError::Tmpfs {
            spec: spec.to_owned(),
            reason,
        };
        let (dst, opts) = match spec.split_once(':') {
            Some((d, o)) => (d, Some(o)),
            None => (spec, None),
        };
        let destination = clean_destination(dst).map_err(fail)?;
        let mut options: Vec<String> = Vec::new();
        for opt in opts
            .map(|o| o.split(',').collect())
            .unwrap_or_else(Vec::new)
        {
            if opt.is_empty() {
                return Err(fail("empty option".to_owned()));
            }
            check_tmpfs_option(opt).map_err(fail)?;
            let key = |o: &str| o.split('=').next().unwrap_or_default().to_owned();
            let same = |o: &String| match (conflict_group(o), conflict_group(opt)) {
                (Some(a), Some(b)) => a == b,
                _ => key(o) == key(opt),
            };
            if let Some(earlier) = options.iter().find(|o| same(o)) {
                return Err(fail(if earlier == opt {
                    format!("option {opt:?} given twice")
                } else {
                    format!("conflicting options {earlier:?} and {opt:?}")
                }));
            }
            options.push(opt.to_owned());
        }
        Ok(Self {
            destination,
            options,
        })
    }
}

impl fmt::Display for TmpfsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.destination.to_string_lossy())?;
        if !self.options.is_empty() {
            write!(f, ":{}", self.options.join(","))?;
        }
        Ok(())
    }
}

impl TmpfsSpec {
    /// The mount it asks for; `raw` is the value as the user wrote it (for messages).
    pub fn to_user_mount(&self, raw: &str) -> UserMount {
        UserMount {
            origin: MountOrigin::Tmpfs(raw.to_owned()),
            destination: self.destination.clone(),
            kind: UserMountKind::Tmpfs(TmpfsOptions {
                options: tmpfs_options_with_defaults(&self.options, TmpfsFlag::Tmpfs),
                chown: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    #[test]
    fn destination_and_options() {
        let t: TmpfsSpec = "/t:exec,size=1m".parse().unwrap();
        assert_eq!(t.destination, Path::new("/t"));
        assert_eq!(t.options, ["exec", "size=1m"]);
        let UserMountKind::Tmpfs(o) = t.to_user_mount("/t:exec,size=1m").kind else {
            panic!("tmpfs")
        };
        assert_eq!(
            o.options,
            [
                "exec",
                "size=1m",
                "rw",
                "rprivate",
                "nosuid",
                "nodev",
                "tmpcopyup"
            ]
        );
        let t: TmpfsSpec = "/run/x".parse().unwrap();
        assert_eq!(t.to_string(), "/run/x");
    }

    #[test]
    fn the_bad_ones_name_the_value() {
        let err = |s: &str| s.parse::<TmpfsSpec>().unwrap_err().to_string();
        assert_eq!(
            err("t"),
            r#"invalid --tmpfs "t": destination "t" is not an absolute path"#
        );
        assert_eq!(
            err("/t:exec,noexec"),
            r#"invalid --tmpfs "/t:exec,noexec": conflicting options "exec" and "noexec""#
        );
        assert_eq!(
            err("/t:size=1m,size=2m"),
            r#"invalid --tmpfs "/t:size=1m,size=2m": conflicting options "size=1m" and "size=2m""#
        );
        assert_eq!(
            err("/t:bogus"),
            r#"invalid --tmpfs "/t:bogus": unknown option "bogus""#
        );
    }

    fn option() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec![
                "rw",
                "ro",
                "exec",
                "noexec",
                "suid",
                "nosuid",
                "dev",
                "nodev",
                "noatime",
                "rshared",
                "tmpcopyup",
                "notmpcopyup",
                "inode64"
            ])
            .prop_map(str::to_owned),
            (
                1u32..100000,
                proptest::sample::select(vec!["", "k", "m", "g", "%"])
            )
                .prop_map(|(n, u)| format!("size={n}{u}")),
            (0u32..0o7777).prop_map(|m| format!("mode={m:o}")),
            (0u32..70000).prop_map(|n| format!("uid={n}")),
        ]
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<TmpfsSpec>();
        }

        #[test]
        fn accepted_values_round_trip(dst in "/[a-z/]{1,12}", opts in proptest::collection::vec(option(), 0..5)) {
            let spec = if opts.is_empty() { dst } else { format!("{dst}:{}", opts.join(",")) };
            if let Ok(t) = spec.parse::<TmpfsSpec>() {
                let again: TmpfsSpec = t.to_string().parse().unwrap();
                prop_assert_eq!(again, t);
            }
        }
    }
}
