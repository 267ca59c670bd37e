//! `-v/--volume SRC:DST[:OPTS]` (podman-run(1) and buildah-run(1) `--volume`).
//!
//! Grammar: fields are separated by `:`; `\:` is a colon inside a field and `\\` a
//! backslash (any other backslash is kept as it is). SRC is a host path, absolute or relative
//! to ocirun's working directory (a relative path starts with `.`: `./data`, `../data`), or,
//! when it starts with neither `/` nor `.`, the name of a named volume (podman's rule); DST
//! is an absolute path in the container, cleaned lexically (a `..` that would leave `/` is an
//! error). OPTS is a comma-separated list of:
//!
//! | option | meaning |
//! |---|---|
//! | `ro`, `rw` | read-only / read-write (default `rw`) |
//! | `z`, `Z` | SELinux relabel of SRC: shared / private to this container |
//! | `U` | chown SRC (recursively) to the run's uid:gid |
//! | `O` | overlay: SRC is the lower layer, writes go to a throw-away upper directory, or to `upperdir=DIR,workdir=DIR` |
//! | `[r]shared`, `[r]slave`, `[r]private`, `[r]unbindable` | propagation (default `rprivate`) |
//! | `suid`, `nosuid`, `dev`, `nodev`, `exec`, `noexec` | mount flags |
//! | `bind`, `rbind` | without or with submounts (default `rbind`) |
//! | `copy`, `nocopy` | named volume: fill a new volume with the rootfs's content at DST (default `copy`) |
//! | `nocreate` | named volume: refuse one that does not exist rather than create it |
//!
//! At most one option of each row may be given, each at most once.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::user_mount::clean_destination;
use crate::{
    BindOptions, MountOrigin, MountSpecError, Overlay, Propagation, Relabel, UserMount,
    UserMountKind, VolumeMount,
};

/// One option of a `-v` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VolumeOption {
    /// `ro` (true) or `rw` (false).
    ReadOnly(bool),
    /// `z` or `Z`.
    Relabel(Relabel),
    /// `U`.
    Chown,
    /// `O`.
    Overlay,
    /// `upperdir=DIR` (with `O`).
    UpperDir(String),
    /// `workdir=DIR` (with `O`).
    WorkDir(String),
    /// A propagation.
    Propagation(Propagation),
    /// `suid` (true) or `nosuid`.
    Suid(bool),
    /// `dev` (true) or `nodev`.
    Dev(bool),
    /// `exec` (true) or `noexec`.
    Exec(bool),
    /// `rbind` (true) or `bind`.
    Bind {
        /// `rbind`.
        recursive: bool,
    },
    /// `copy` (true) or `nocopy` (a named volume).
    Copy(bool),
    /// `nocreate` (a named volume).
    NoCreate,
}

impl VolumeOption {
    /// The options of which at most one may be given.
    fn group(&self) -> &'static str {
        match self {
            Self::ReadOnly(_) => "ro/rw",
            Self::Relabel(_) => "z/Z",
            Self::Chown => "U",
            Self::Overlay => "O",
            Self::UpperDir(_) => "upperdir",
            Self::WorkDir(_) => "workdir",
            Self::Propagation(_) => "propagation",
            Self::Suid(_) => "suid/nosuid",
            Self::Dev(_) => "dev/nodev",
            Self::Exec(_) => "exec/noexec",
            Self::Bind { .. } => "bind/rbind",
            Self::Copy(_) => "copy/nocopy",
            Self::NoCreate => "nocreate",
        }
    }
}

impl FromStr for VolumeOption {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "ro" => Self::ReadOnly(true),
            "rw" => Self::ReadOnly(false),
            "z" => Self::Relabel(Relabel::Shared),
            "Z" => Self::Relabel(Relabel::Private),
            "U" => Self::Chown,
            "O" => Self::Overlay,
            "suid" => Self::Suid(true),
            "nosuid" => Self::Suid(false),
            "dev" => Self::Dev(true),
            "nodev" => Self::Dev(false),
            "exec" => Self::Exec(true),
            "noexec" => Self::Exec(false),
            "bind" => Self::Bind { recursive: false },
            "rbind" => Self::Bind { recursive: true },
            "copy" => Self::Copy(true),
            "nocopy" => Self::Copy(false),
            "nocreate" => Self::NoCreate,
            "" => return Err("empty option".to_owned()),
            other => {
                if let Some(p) = Propagation::from_name(other) {
                    Self::Propagation(p)
                } else if let Some(dir) = other.strip_prefix("upperdir=") {
                    Self::UpperDir(non_empty_path("upperdir", dir)?)
                } else if let Some(dir) = other.strip_prefix("workdir=") {
                    Self::WorkDir(non_empty_path("workdir", dir)?)
                } else {
                    return Err(format!("unknown option {other:?}"));
                }
            }
        })
    }
}

fn non_empty_path(key: &str, dir: &str) -> Result<String, String> {
    if dir.is_empty() {
        Err(format!("{key} is empty"))
    } else if !dir.starts_with('/') {
        Err(format!("{key} {dir:?} is not an absolute path"))
    } else {
        Ok(dir.to_owned())
    }
}

impl fmt::Display for VolumeOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReadOnly(true) => f.write_str("ro"),
            Self::ReadOnly(false) => f.write_str("rw"),
            Self::Relabel(Relabel::Shared) => f.write_str("z"),
            Self::Relabel(Relabel::Private) => f.write_str("Z"),
            Self::Chown => f.write_str("U"),
            Self::Overlay => f.write_str("O"),
            Self::UpperDir(d) => write!(f, "upperdir={}", escape(d)),
            Self::WorkDir(d) => write!(f, "workdir={}", escape(d)),
            Self::Propagation(p) => f.write_str(p.as_str()),
            Self::Suid(b) => f.write_str(if *b { "suid" } else { "nosuid" }),
            Self::Dev(b) => f.write_str(if *b { "dev" } else { "nodev" }),
            Self::Exec(b) => f.write_str(if *b { "exec" } else { "noexec" }),
            Self::Bind { recursive } => f.write_str(if *recursive { "rbind" } else { "bind" }),
            Self::Copy(b) => f.write_str(if *b { "copy" } else { "nocopy" }),
            Self::NoCreate => f.write_str("nocreate"),
        }
    }
}

/// A parsed `-v` value. [`fmt::Display`] writes it back in a form that parses to the same
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The host path as given (unescaped; not yet resolved).
    pub source: String,
    /// The container path, absolute and lexically clean.
    pub destination: PathBuf,
    /// The options, in the order given.
    pub options: Vec<VolumeOption>,
}

/// Splits `s` at unescaped colons, unescaping `\:` and `\\`.
fn split_fields(s: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some(':' | '\\')) => {
                let next = chars.next().unwrap_or('\\');
                fields.last_mut().expect("never empty").push(next);
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("never empty").push(c),
        }
    }
    fields
}

/// Escapes `\` and `:` for one field.
fn escape(field: &str) -> String {
    field.replace('\\', r"\\").replace(':', r"\:")
}

impl FromStr for VolumeSpec {
    type Err = MountSpecError;

    fn from_str(spec: &str) -> Result<Self, MountSpecError> {
        let fail = |reason: String| MountSpecError::Volume {
            spec: spec.to_owned(),
            reason,
        };
        let fields = split_fields(spec);
        let (source, destination, options) = match fields.as_slice() {
            [_] => return Err(fail("no destination: expected SRC:DST[:OPTS]".to_owned())),
            [src, dst] => (src, dst, None),
            [src, dst, opts] => (src, dst, Some(opts)),
            _ => return Err(fail("too many fields: expected SRC:DST[:OPTS]".to_owned())),
        };
        if source.is_empty() {
            return Err(fail("empty source".to_owned()));
        }
        if source.contains('\0') {
            return Err(fail("source contains a NUL byte".to_owned()));
        }
        let destination = clean_destination(destination).map_err(fail)?;
        let mut parsed: Vec<VolumeOption> = Vec::new();
        for raw in options
            .map(|o| o.split(',').collect())
            .unwrap_or_else(Vec::new)
        {
            let opt: VolumeOption = raw.parse().map_err(fail)?;
            if let Some(earlier) = parsed.iter().find(|o| o.group() == opt.group()) {
                return Err(fail(if *earlier == opt {
                    format!("option \"{opt}\" given twice")
                } else {
                    format!("conflicting options \"{earlier}\" and \"{opt}\"")
                }));
            }
            parsed.push(opt);
        }
        let has = |f: fn(&VolumeOption) -> bool| parsed.iter().any(f);
        let overlay = has(|o| *o == VolumeOption::Overlay);
        let upper = has(|o| matches!(o, VolumeOption::UpperDir(_)));
        let work = has(|o| matches!(o, VolumeOption::WorkDir(_)));
        if (upper || work) && !overlay {
            return Err(fail("upperdir and workdir need the O option".to_owned()));
        }
        if upper != work {
            return Err(fail("upperdir and workdir go together".to_owned()));
        }
        if overlay && has(|o| matches!(o, VolumeOption::Bind { .. })) {
            return Err(fail(
                "O is an overlay, not a bind: drop bind/rbind".to_owned(),
            ));
        }
        let named = is_volume_name(source);
        if named && (overlay || upper) {
            return Err(fail(format!(
                "O takes a host path, not the volume {source:?}"
            )));
        }
        if !named {
            if let Some(o) = parsed
                .iter()
                .find(|o| matches!(o, VolumeOption::Copy(_) | VolumeOption::NoCreate))
            {
                return Err(fail(format!(
                    "\"{o}\" is an option of a named volume, not of the host path {source:?}"
                )));
            }
        }
        Ok(Self {
            source: source.clone(),
            destination,
            options: parsed,
        })
    }
}

impl fmt::Display for VolumeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            escape(&self.source),
            escape(&self.destination.to_string_lossy())
        )?;
        for (i, opt) in self.options.iter().enumerate() {
            f.write_str(if i == 0 { ":" } else { "," })?;
            write!(f, "{opt}")?;
        }
        Ok(())
    }
}

/// Whether a `-v` source names a volume rather than a host path: it starts with neither `/`
/// nor `.` (podman's rule). The caller checks the name itself.
pub(crate) fn is_volume_name(source: &str) -> bool {
    !source.starts_with('/') && !source.starts_with('.')
}

impl VolumeSpec {
    /// Whether the source names a volume rather than a host path (it starts with neither `/`
    /// nor `.`, podman's rule).
    pub fn is_named(&self) -> bool {
        is_volume_name(&self.source)
    }

    /// The mount it asks for; `raw` is the value as the user wrote it (for messages).
    pub fn to_user_mount(&self, raw: &str) -> UserMount {
        let mut bind = BindOptions::new(&self.source);
        let mut upper = None;
        let mut work = None;
        for opt in &self.options {
            match opt {
                VolumeOption::ReadOnly(ro) => bind.read_only = *ro,
                VolumeOption::Relabel(r) => bind.relabel = Some(*r),
                VolumeOption::Chown => bind.chown = true,
                VolumeOption::Overlay => bind.overlay = Some(Overlay::ThrowAway),
                VolumeOption::UpperDir(d) => upper = Some(PathBuf::from(d)),
                VolumeOption::WorkDir(d) => work = Some(PathBuf::from(d)),
                VolumeOption::Propagation(p) => bind.propagation = *p,
                VolumeOption::Suid(b) => bind.suid = Some(*b),
                VolumeOption::Dev(b) => bind.dev = Some(*b),
                VolumeOption::Exec(b) => bind.exec = Some(*b),
                VolumeOption::Bind { recursive } => bind.recursive = *recursive,
                VolumeOption::Copy(_) | VolumeOption::NoCreate => {}
            }
        }
        if let (Some(upper), Some(work)) = (upper, work) {
            bind.overlay = Some(Overlay::Dirs { upper, work });
        }
        let kind = if self.is_named() {
            bind.source = PathBuf::new();
            UserMountKind::Volume(VolumeMount {
                name: self.source.clone(),
                dir: PathBuf::new(),
                copy: !self.options.contains(&VolumeOption::Copy(false)),
                create: !self.options.contains(&VolumeOption::NoCreate),
                bind,
            })
        } else {
            UserMountKind::Bind(bind)
        };
        UserMount {
            origin: MountOrigin::Volume(raw.to_owned()),
            destination: self.destination.clone(),
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    fn err(spec: &str) -> String {
        spec.parse::<VolumeSpec>().unwrap_err().to_string()
    }

    #[test]
    fn plain_and_with_options() {
        let v: VolumeSpec = "/h:/data".parse().unwrap();
        assert_eq!(v.source, "/h");
        assert_eq!(v.destination, Path::new("/data"));
        assert!(v.options.is_empty());
        let v: VolumeSpec = "./rel:/a/../d/:ro,z,nosuid,rshared,bind".parse().unwrap();
        assert_eq!(v.source, "./rel");
        assert_eq!(v.destination, Path::new("/d"));
        assert_eq!(
            v.options,
            [
                VolumeOption::ReadOnly(true),
                VolumeOption::Relabel(Relabel::Shared),
                VolumeOption::Suid(false),
                VolumeOption::Propagation(Propagation::RShared),
                VolumeOption::Bind { recursive: false },
            ]
        );
        assert_eq!(v.to_string(), "./rel:/d:ro,z,nosuid,rshared,bind");
    }

    #[test]
    fn a_source_that_is_no_path_names_a_volume() {
        let v: VolumeSpec = "data:/d:ro,nocopy".parse().unwrap();
        assert!(v.is_named());
        let UserMountKind::Volume(m) = v.to_user_mount("data:/d:ro,nocopy").kind else {
            panic!("a named volume")
        };
        assert_eq!(m.name, "data");
        assert!(m.bind.read_only && !m.copy && m.create);
        for path in ["/h:/d", "./h:/d", "../h:/d", ".:/d", ".h:/d"] {
            assert!(!path.parse::<VolumeSpec>().unwrap().is_named(), "{path}");
        }
        let v: VolumeSpec = "data:/d:nocreate".parse().unwrap();
        let UserMountKind::Volume(m) = v.to_user_mount("x").kind else {
            panic!("a named volume")
        };
        assert!(!m.create);
        assert_eq!(
            err("data:/d:O"),
            r#"invalid volume "data:/d:O": O takes a host path, not the volume "data""#
        );
        assert_eq!(
            err("/h:/d:nocopy"),
            r#"invalid volume "/h:/d:nocopy": "nocopy" is an option of a named volume, not of the host path "/h""#
        );
    }

    #[test]
    fn escaped_colons() {
        let v: VolumeSpec = r"/a\:b:/c\:d:ro".parse().unwrap();
        assert_eq!(v.source, "/a:b");
        assert_eq!(v.destination, Path::new("/c:d"));
        assert_eq!(v.to_string(), r"/a\:b:/c\:d:ro");
        let v: VolumeSpec = r"/a\\:/b".parse().unwrap();
        assert_eq!(v.source, r"/a\");
        let v: VolumeSpec = r"/a\x:/b".parse().unwrap();
        assert_eq!(v.source, r"/a\x");
    }

    #[test]
    fn the_bad_ones_name_the_spec() {
        assert_eq!(
            err("/h"),
            r#"invalid volume "/h": no destination: expected SRC:DST[:OPTS]"#
        );
        assert_eq!(
            err("/h:rel/dst"),
            r#"invalid volume "/h:rel/dst": destination "rel/dst" is not an absolute path"#
        );
        assert_eq!(
            err("/h:/d:bogus"),
            r#"invalid volume "/h:/d:bogus": unknown option "bogus""#
        );
        assert_eq!(
            err("/h:/d:ro:x"),
            r#"invalid volume "/h:/d:ro:x": too many fields: expected SRC:DST[:OPTS]"#
        );
        assert_eq!(
            err("/h:/../../etc"),
            r#"invalid volume "/h:/../../etc": destination "/../../etc" leaves / through "..""#
        );
        assert_eq!(err(":/d"), r#"invalid volume ":/d": empty source"#);
        assert_eq!(
            err("/h:/d:ro,rw"),
            r#"invalid volume "/h:/d:ro,rw": conflicting options "ro" and "rw""#
        );
        assert_eq!(
            err("/h:/d:z,z"),
            r#"invalid volume "/h:/d:z,z": option "z" given twice"#
        );
        assert_eq!(
            err("/h:/d:ro,"),
            r#"invalid volume "/h:/d:ro,": empty option"#
        );
        assert_eq!(
            err("/h:/d:upperdir=/u"),
            r#"invalid volume "/h:/d:upperdir=/u": upperdir and workdir need the O option"#
        );
        assert_eq!(
            err("/h:/d:O,upperdir=/u"),
            r#"invalid volume "/h:/d:O,upperdir=/u": upperdir and workdir go together"#
        );
        assert_eq!(
            err("/h:/d:O,rbind"),
            r#"invalid volume "/h:/d:O,rbind": O is an overlay, not a bind: drop bind/rbind"#
        );
    }

    #[test]
    fn to_user_mount_applies_every_option() {
        let v: VolumeSpec = "/h:/d:ro,Z,U,O,upperdir=/u,workdir=/w,nodev,exec,rslave"
            .parse()
            .unwrap();
        let m = v.to_user_mount("raw");
        assert_eq!(m.origin, MountOrigin::Volume("raw".into()));
        let UserMountKind::Bind(b) = m.kind else {
            panic!("a volume is a bind")
        };
        assert!(b.read_only && b.chown && b.recursive);
        assert_eq!(b.relabel, Some(Relabel::Private));
        assert_eq!(
            b.overlay,
            Some(Overlay::Dirs {
                upper: "/u".into(),
                work: "/w".into()
            })
        );
        assert_eq!((b.suid, b.dev, b.exec), (None, Some(false), Some(true)));
        assert_eq!(b.propagation, Propagation::RSlave);
    }

    fn option() -> impl Strategy<Value = VolumeOption> {
        prop_oneof![
            any::<bool>().prop_map(VolumeOption::ReadOnly),
            prop_oneof![Just(Relabel::Shared), Just(Relabel::Private)]
                .prop_map(VolumeOption::Relabel),
            Just(VolumeOption::Chown),
            proptest::sample::select(Propagation::ALL.to_vec()).prop_map(VolumeOption::Propagation),
            any::<bool>().prop_map(VolumeOption::Suid),
            any::<bool>().prop_map(VolumeOption::Dev),
            any::<bool>().prop_map(VolumeOption::Exec),
            any::<bool>().prop_map(|recursive| VolumeOption::Bind { recursive }),
        ]
    }

    fn spec() -> impl Strategy<Value = VolumeSpec> {
        (
            "[^\0]{1,20}",
            proptest::collection::vec("[a-z:\\\\ ,.]{1,6}", 1..4),
            proptest::collection::vec(option(), 0..6),
            proptest::option::of("/[a-z:\\\\]{1,8}"),
        )
            .prop_map(|(source, dst, opts, overlay)| {
                let mut options: Vec<VolumeOption> = Vec::new();
                for o in opts {
                    if !options.iter().any(|e| e.group() == o.group()) {
                        options.push(o);
                    }
                }
                let source = if overlay.is_some() || !source.starts_with(['/', '.']) {
                    format!("/{source}")
                } else {
                    source
                };
                if let Some(dir) = overlay {
                    options.retain(|o| !matches!(o, VolumeOption::Bind { .. }));
                    options.push(VolumeOption::Overlay);
                    options.push(VolumeOption::UpperDir(format!("{dir}/u")));
                    options.push(VolumeOption::WorkDir(format!("{dir}/w")));
                }
                let destination = PathBuf::from(format!("/{}", dst.join("/")));
                VolumeSpec {
                    source,
                    destination: clean_destination(&destination.to_string_lossy())
                        .unwrap_or_else(|_| PathBuf::from("/x")),
                    options,
                }
            })
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<VolumeSpec>();
        }

        #[test]
        fn accepted_specs_round_trip(v in spec()) {
            let text = v.to_string();
            let again: VolumeSpec = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(again, v);
        }

        #[test]
        fn a_parsed_spec_prints_back_to_itself(s in "[/a-z:,\\\\.]{1,30}") {
            if let Ok(v) = s.parse::<VolumeSpec>() {
                let again: VolumeSpec = v.to_string().parse().unwrap();
                prop_assert_eq!(again, v);
            }
        }

        #[test]
        fn relative_destinations_are_rejected(src in "/[a-z]{1,5}", dst in "[a-z][a-z/]{0,10}") {
            let spec = format!("{src}:{dst}");
            let err = spec.parse::<VolumeSpec>().unwrap_err().to_string();
            prop_assert!(err.contains("is not an absolute path"), "{}", err);
        }

        #[test]
        fn unknown_options_are_rejected(opt in "[a-zA-Y]{2,8}") {
            prop_assume!(opt.parse::<VolumeOption>().is_err());
            let spec = format!("/h:/d:{opt}");
            prop_assert_eq!(
                spec.parse::<VolumeSpec>().unwrap_err().to_string(),
                format!("invalid volume {spec:?}: unknown option {opt:?}")
            );
        }
    }
}
