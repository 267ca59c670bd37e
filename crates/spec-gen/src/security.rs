//! `--security-opt` (podman-run(1); docs/ocirun-run.md "Process"): seccomp, AppArmor, SELinux
//! labels, no-new-privileges, and the masked paths.
//!
//! Each value is parsed into a [`SecurityOpt`] (pure), then applied in order to
//! [`SecurityOptions`]; a later value for the same key replaces an earlier one, except `mask`
//! and `unmask`, which add up. `seccomp=PATH` needs the profile's bytes: the caller reads the
//! file (spec-gen does no I/O) through the closure it hands to [`SecurityOptions::apply`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::seccomp::SeccompProfile;
use crate::SpecError;

/// One `--security-opt` value.
///
/// New options may be added, so matches need a wildcard arm.
///
/// ```
/// use ocirun_spec_gen::{LabelOpt, SeccompOpt, SecurityOpt};
/// assert_eq!("seccomp=unconfined".parse::<SecurityOpt>()?, SecurityOpt::Seccomp(SeccompOpt::Unconfined));
/// assert_eq!("label=type:spc_t".parse::<SecurityOpt>()?, SecurityOpt::Label(LabelOpt::Type("spc_t".into())));
/// assert_eq!("no-new-privileges".parse::<SecurityOpt>()?, SecurityOpt::NoNewPrivileges(true));
/// assert_eq!("mask=/a:/b".parse::<SecurityOpt>()?.to_string(), "mask=/a:/b");
/// assert!("seccomp".parse::<SecurityOpt>().is_err());
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecurityOpt {
    /// `seccomp=unconfined|PATH`.
    Seccomp(SeccompOpt),
    /// `apparmor=unconfined|NAME`: the AppArmor profile (runtime-spec
    /// `process.apparmorProfile`); it must already be loaded on the host.
    AppArmor(String),
    /// `label=...`: SELinux labelling.
    Label(LabelOpt),
    /// `no-new-privileges[=true|false]`: runtime-spec `process.noNewPrivileges`.
    NoNewPrivileges(bool),
    /// `mask=P1:P2`: more paths to mask (absolute).
    Mask(Vec<String>),
    /// `unmask=ALL|P1:P2`: default masked or read-only paths not to mask; `ALL` for all of
    /// them, and a path may be a glob (`/proc/*`, shell-style `*`, `?` and `[...]`).
    Unmask(Vec<String>),
}

/// The value of `seccomp=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SeccompOpt {
    /// `unconfined`: no seccomp filter at all.
    Unconfined,
    /// A profile file in the containers/Docker JSON format, or an OCI `linux.seccomp` object.
    Profile(PathBuf),
}

/// The value of `label=` (podman-run(1) `--security-opt label=...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LabelOpt {
    /// `disable`: no SELinux labels at all.
    Disable,
    /// `user:USER`: the SELinux user of the process label.
    User(String),
    /// `role:ROLE`: the SELinux role of the process label.
    Role(String),
    /// `type:TYPE`: the SELinux type of the process label.
    Type(String),
    /// `level:LEVEL`: the MLS/MCS level of the process and mount labels.
    Level(String),
    /// `filetype:TYPE`: the SELinux type of the mount label.
    Filetype(String),
}

impl FromStr for SecurityOpt {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError::InvalidSecurityOpt {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        if s == "no-new-privileges" {
            return Ok(Self::NoNewPrivileges(true));
        }
        let (key, value) = s.split_once('=').ok_or_else(|| bad("expected KEY=VALUE"))?;
        let paths = |value: &str, glob: bool| -> Result<Vec<String>, SpecError> {
            let list: Vec<String> = value.split(':').map(str::to_owned).collect();
            for p in &list {
                if !p.starts_with('/') || p.contains('\0') {
                    return Err(bad(&format!("path {p:?} is not absolute")));
                }
                if glob {
                    glob_match(p, "/").map_err(|e| bad(&e))?;
                }
            }
            Ok(list)
        };
        match key {
            "seccomp" => match value {
                "unconfined" => Ok(Self::Seccomp(SeccompOpt::Unconfined)),
                "" => Err(bad("expected unconfined or the path of a profile")),
                path => Ok(Self::Seccomp(SeccompOpt::Profile(PathBuf::from(path)))),
            },
            "apparmor" if value.is_empty() => Err(bad("expected unconfined or a profile name")),
            "apparmor" => Ok(Self::AppArmor(value.to_owned())),
            "label" => {
                if value == "disable" {
                    return Ok(Self::Label(LabelOpt::Disable));
                }
                let (part, v) = value.split_once(':').ok_or_else(|| {
                    bad("expected disable, user:, role:, type:, level: or filetype:")
                })?;
                if v.is_empty() {
                    return Err(bad("empty label value"));
                }
                let v = v.to_owned();
                Ok(Self::Label(match part {
                    "user" => LabelOpt::User(v),
                    "role" => LabelOpt::Role(v),
                    "type" => LabelOpt::Type(v),
                    "level" => LabelOpt::Level(v),
                    "filetype" => LabelOpt::Filetype(v),
                    _ => {
                        return Err(bad(
                            "expected disable, user:, role:, type:, level: or filetype:",
                        ))
                    }
                }))
            }
            "no-new-privileges" => match value {
                "true" => Ok(Self::NoNewPrivileges(true)),
                "false" => Ok(Self::NoNewPrivileges(false)),
                _ => Err(bad("expected true or false")),
            },
            "mask" => Ok(Self::Mask(paths(value, false)?)),
            "unmask" if value.eq_ignore_ascii_case("all") => Ok(Self::Unmask(vec!["ALL".into()])),
            "unmask" => Ok(Self::Unmask(paths(value, true)?)),
            _ => Err(bad(
                "unknown option (seccomp, apparmor, label, no-new-privileges, mask, unmask)",
            )),
        }
    }
}

impl fmt::Display for SecurityOpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Seccomp(SeccompOpt::Unconfined) => f.write_str("seccomp=unconfined"),
            Self::Seccomp(SeccompOpt::Profile(p)) => write!(f, "seccomp={}", p.display()),
            Self::AppArmor(name) => write!(f, "apparmor={name}"),
            Self::Label(LabelOpt::Disable) => f.write_str("label=disable"),
            Self::Label(LabelOpt::User(v)) => write!(f, "label=user:{v}"),
            Self::Label(LabelOpt::Role(v)) => write!(f, "label=role:{v}"),
            Self::Label(LabelOpt::Type(v)) => write!(f, "label=type:{v}"),
            Self::Label(LabelOpt::Level(v)) => write!(f, "label=level:{v}"),
            Self::Label(LabelOpt::Filetype(v)) => write!(f, "label=filetype:{v}"),
            Self::NoNewPrivileges(b) => write!(f, "no-new-privileges={b}"),
            Self::Mask(paths) => write!(f, "mask={}", paths.join(":")),
            Self::Unmask(paths) => write!(f, "unmask={}", paths.join(":")),
        }
    }
}

/// Which seccomp filter the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompPolicy {
    /// The built-in default profile ([`SeccompProfile::builtin`]).
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`): runtime-spec `linux.seccomp` is absent.
    Unconfined,
    /// A loaded profile; `origin` (its path) names it in errors.
    Profile {
        /// Where the profile came from, for messages.
        origin: String,
        /// The parsed profile.
        profile: Box<SeccompProfile>,
    },
}

/// The SELinux label options of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LabelOptions {
    /// `label=disable`.
    pub disable: bool,
    /// `label=user:`.
    pub user: Option<String>,
    /// `label=role:`.
    pub role: Option<String>,
    /// `label=type:`.
    pub typ: Option<String>,
    /// `label=level:`.
    pub level: Option<String>,
    /// `label=filetype:`.
    pub filetype: Option<String>,
}

/// Every `--security-opt` of a run, applied in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecurityOptions {
    /// The seccomp filter (default: the built-in profile).
    pub seccomp: SeccompPolicy,
    /// The AppArmor profile; `None`: none is set (ocirun loads no profile of its own).
    pub apparmor: Option<String>,
    /// SELinux labelling; used only when the host has SELinux enabled.
    pub label: LabelOptions,
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
    /// Paths masked besides the defaults.
    pub mask: Vec<String>,
    /// Default masked and read-only paths (or globs, or `ALL`) left unmasked.
    pub unmask: Vec<String>,
}

impl SecurityOptions {
    /// Applies one `--security-opt`. For `seccomp=PATH`, `read_profile` is called with PATH and
    /// returns the file's bytes (this crate reads nothing itself).
    ///
    /// # Errors
    /// [`SpecError::SeccompProfileRead`] when `read_profile` fails;
    /// [`SpecError::InvalidSeccompProfile`] when the bytes are not a profile.
    pub fn apply(
        &mut self,
        opt: SecurityOpt,
        read_profile: impl FnOnce(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<(), SpecError> {
        match opt {
            SecurityOpt::Seccomp(SeccompOpt::Unconfined) => {
                self.seccomp = SeccompPolicy::Unconfined;
            }
            SecurityOpt::Seccomp(SeccompOpt::Profile(path)) => {
                let origin = path.display().to_string();
                let bytes =
                    read_profile(&path).map_err(|source| SpecError::SeccompProfileRead {
                        path: path.clone(),
                        source,
                    })?;
                let profile = SeccompProfile::from_json(&bytes).map_err(|e| {
                    SpecError::InvalidSeccompProfile {
                        origin: origin.clone(),
                        reason: e,
                    }
                })?;
                self.seccomp = SeccompPolicy::Profile {
                    origin,
                    profile: Box::new(profile),
                };
            }
            SecurityOpt::AppArmor(name) => self.apparmor = Some(name),
            SecurityOpt::Label(label) => match label {
                LabelOpt::Disable => self.label.disable = true,
                LabelOpt::User(v) => self.label.user = Some(v),
                LabelOpt::Role(v) => self.label.role = Some(v),
                LabelOpt::Type(v) => self.label.typ = Some(v),
                LabelOpt::Level(v) => self.label.level = Some(v),
                LabelOpt::Filetype(v) => self.label.filetype = Some(v),
            },
            SecurityOpt::NoNewPrivileges(b) => self.no_new_privileges = b,
            SecurityOpt::Mask(paths) => self.mask.extend(paths),
            SecurityOpt::Unmask(paths) => self.unmask.extend(paths),
        }
        Ok(())
    }

    /// Whether the default masked or read-only `path` stays masked: not when `unmask` holds
    /// `ALL`, the path itself, or a glob that matches it (podman's rule).
    pub(crate) fn keeps_masked(&self, path: &str) -> bool {
        !self.unmask.iter().any(|u| {
            u.eq_ignore_ascii_case("all") || u == path || glob_match(u, path).unwrap_or(false)
        })
    }
}

/// Shell-style glob matching of a whole path, as Go's `filepath.Match`: `*` matches any run of
/// characters but `/`, `?` one character but `/`, `[...]` a class (`[a-z]`, `[!0-9]`, `[^x]`),
/// `\` escapes.
///
/// # Errors
/// A description of a malformed pattern (an unclosed `[`, a trailing `\`).
pub(crate) fn glob_match(pattern: &str, name: &str) -> Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Validate the whole pattern first, so that a malformed one is refused whatever it is
    // matched against.
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(format!("pattern {pattern:?} ends in a backslash"));
                }
                i += 2;
            }
            '[' => i = class_end(&p, i).ok_or(format!("pattern {pattern:?} has an unclosed ["))?,
            _ => i += 1,
        }
    }
    Ok(match_from(&p, &n))
}

/// The index after the `]` that closes the class opened at `p[start]`.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if i < p.len() && (p[i] == '!' || p[i] == '^') {
        i += 1;
    }
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some(i + 1);
        }
        if p[i] == '\\' {
            i += 1;
        }
        first = false;
        i += 1;
    }
    None
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negated, body) = match class.first() {
        Some('!' | '^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut i = 0;
    let mut hit = false;
    while i < body.len() {
        let mut lo = body[i];
        if lo == '\\' && i + 1 < body.len() {
            i += 1;
            lo = body[i];
        }
        if i + 2 < body.len() && body[i + 1] == '-' {
            let mut hi = body[i + 2];
            i += 2;
            if hi == '\\' && i + 1 < body.len() {
                i += 1;
                hi = body[i];
            }
            hit |= lo <= c && c <= hi;
        } else {
            hit |= lo == c;
        }
        i += 1;
    }
    hit != negated
}

fn match_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len())
            .take_while(|&k| k == 0 || n[k - 1] != '/')
            .any(|k| match_from(&p[1..], &n[k..])),
        Some('?') => !n.is_empty() && n[0] != '/' && match_from(&p[1..], &n[1..]),
        Some('[') => {
            let end = class_end(p, 0).expect("validated");
            !n.is_empty()
                && n[0] != '/'
                && class_matches(&p[1..end - 1], n[0])
                && match_from(&p[end..], &n[1..])
        }
        Some('\\') => !n.is_empty() && n[0] == p[1] && match_from(&p[2..], &n[1..]),
        Some(c) => !n.is_empty() && n[0] == *c && match_from(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_form() {
        let p = |s: &str| s.parse::<SecurityOpt>().unwrap();
        assert_eq!(
            p("seccomp=/etc/profile.json"),
            SecurityOpt::Seccomp(SeccompOpt::Profile("/etc/profile.json".into()))
        );
        assert_eq!(
            p("apparmor=unconfined"),
            SecurityOpt::AppArmor("unconfined".into())
        );
        assert_eq!(p("label=disable"), SecurityOpt::Label(LabelOpt::Disable));
        assert_eq!(
            p("label=user:u"),
            SecurityOpt::Label(LabelOpt::User("u".into()))
        );
        assert_eq!(
            p("label=role:r"),
            SecurityOpt::Label(LabelOpt::Role("r".into()))
        );
        assert_eq!(
            p("label=level:s0:c1,c2"),
            SecurityOpt::Label(LabelOpt::Level("s0:c1,c2".into()))
        );
        assert_eq!(
            p("label=filetype:f_t"),
            SecurityOpt::Label(LabelOpt::Filetype("f_t".into()))
        );
        assert_eq!(
            p("no-new-privileges=false"),
            SecurityOpt::NoNewPrivileges(false)
        );
        assert_eq!(p("unmask=ALL"), SecurityOpt::Unmask(vec!["ALL".into()]));
        assert_eq!(
            p("unmask=/proc/*:/sys/firmware"),
            SecurityOpt::Unmask(vec!["/proc/*".into(), "/sys/firmware".into()])
        );
    }

    #[test]
    fn errors_name_the_value() {
        let err = |s: &str| s.parse::<SecurityOpt>().unwrap_err().to_string();
        assert_eq!(
            err("seccomp"),
            r#"invalid --security-opt "seccomp": expected KEY=VALUE"#
        );
        assert!(err("selinux=x").contains("unknown option"));
        assert!(err("seccomp=").contains("expected unconfined"));
        assert!(err("apparmor=").contains("expected unconfined"));
        assert!(err("label=nonsense").contains("expected disable"));
        assert!(err("label=kind:x").contains("expected disable"));
        assert!(err("label=type:").contains("empty label value"));
        assert!(err("no-new-privileges=yes").contains("expected true or false"));
        assert!(err("mask=proc/kcore").contains(r#"path "proc/kcore" is not absolute"#));
        assert!(err("mask=/a::/b").contains(r#"path "" is not absolute"#));
        assert!(err("unmask=/proc/[").contains("unclosed ["));
    }

    #[test]
    fn apply_reads_profiles_through_the_callback() {
        let mut opts = SecurityOptions::default();
        let opt: SecurityOpt = "seccomp=/p.json".parse().unwrap();
        opts.apply(opt.clone(), |path| {
            assert_eq!(path, Path::new("/p.json"));
            Ok(br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#.to_vec())
        })
        .unwrap();
        assert!(
            matches!(&opts.seccomp, SeccompPolicy::Profile { origin, .. } if origin == "/p.json")
        );
        let err = opts
            .apply(opt.clone(), |_| Err(std::io::Error::other("gone")))
            .unwrap_err();
        assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "gone");
        assert_eq!(err.to_string(), r#"cannot read seccomp profile "/p.json""#);
        let err = opts.apply(opt, |_| Ok(b"{".to_vec())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"invalid seccomp profile "/p.json": "#),
            "{err}"
        );
    }

    #[test]
    fn unmask_rules() {
        let mut opts = SecurityOptions::default();
        assert!(opts.keeps_masked("/proc/kcore"));
        opts.unmask = vec!["/proc/k*".into(), "/sys/firmware".into()];
        assert!(!opts.keeps_masked("/proc/kcore"));
        assert!(!opts.keeps_masked("/proc/keys"));
        assert!(!opts.keeps_masked("/sys/firmware"));
        assert!(opts.keeps_masked("/proc/acpi"));
        opts.unmask = vec!["ALL".into()];
        assert!(!opts.keeps_masked("/proc/acpi"));
    }

    #[test]
    fn globs() {
        let m = |p: &str, n: &str| glob_match(p, n).unwrap();
        assert!(m("/proc/*", "/proc/kcore"));
        assert!(!m("/proc/*", "/proc/sys/kernel"));
        assert!(m("/proc/*/*", "/proc/sys/kernel"));
        assert!(m("/proc/k?ys", "/proc/keys"));
        assert!(m("/proc/[jk]eys", "/proc/keys"));
        assert!(!m("/proc/[!k]eys", "/proc/keys"));
        assert!(m("/proc/[a-z]eys", "/proc/keys"));
        assert!(m("/a\\*", "/a*"));
        assert!(!m("/a\\*", "/ab"));
        assert!(glob_match("/a\\", "/a").is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics_and_round_trips(s in "[a-z=:/\\-*\\[\\]]{0,30}") {
            if let Ok(opt) = s.parse::<SecurityOpt>() {
                prop_assert_eq!(opt.to_string().parse::<SecurityOpt>().unwrap(), opt);
            }
        }

        #[test]
        fn unknown_keys_and_relative_masks_are_refused(key in "[a-z]{1,10}", path in "[a-z]{1,6}") {
            let known = ["seccomp", "apparmor", "label", "no-new-privileges", "mask", "unmask"];
            prop_assume!(!known.contains(&key.as_str()));
            let opt = format!("{key}=x");
            prop_assert!(opt.parse::<SecurityOpt>().is_err());
            let mask = format!("mask={path}");
            prop_assert!(mask.parse::<SecurityOpt>().is_err());
        }

        #[test]
        fn glob_never_panics(p in "[a/*?\\[\\]!\\\\-]{0,12}", n in "[a/b-]{0,8}") {
            let _ = glob_match(&p, &n);
        }
    }
}
