//! The mounts a user asks for with `-v`, `--mount` and `--tmpfs`, in one form.
//!
//! Each flag has its own parser ([`VolumeSpec`](crate::VolumeSpec),
//! [`MountFlag`](crate::MountFlag), [`TmpfsSpec`](crate::TmpfsSpec)); each turns into a
//! [`UserMount`], whose source is then resolved against the caller's working directory
//! ([`UserMount::resolve`]) and which becomes one runtime-spec mount (runtime-spec "Mounts";
//! the option names are runc's).

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{Mount, MountBuilder};

use crate::{MountSpecError, SecretMount};

/// Host directories whose owner `U` never changes (podman's list): the source of a volume
/// with `U` is refused, before anything is touched, when it is one of these.
pub(crate) const CHOWN_REFUSED: [&str; 20] = [
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
];
/// Mount propagation of a bind mount (mount_namespaces(7); podman-run(1) `-v` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Propagation {
    /// `shared`
    Shared,
    /// `rshared`
    RShared,
    /// `slave`
    Slave,
    /// `rslave`
    RSlave,
    /// `private`
    Private,
    /// `rprivate` (the default)
    RPrivate,
    /// `unbindable`
    Unbindable,
    /// `runbindable`
    RUnbindable,
}

impl Propagation {
    /// Every value, for parsers and tests.
    pub const ALL: [Propagation; 8] = [
        Self::Shared,
        Self::RShared,
        Self::Slave,
        Self::RSlave,
        Self::Private,
        Self::RPrivate,
        Self::Unbindable,
        Self::RUnbindable,
    ];

    /// The option name runc and mount(8) use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::RShared => "rshared",
            Self::Slave => "slave",
            Self::RSlave => "rslave",
            Self::Private => "private",
            Self::RPrivate => "rprivate",
            Self::Unbindable => "unbindable",
            Self::RUnbindable => "runbindable",
        }
    }

    /// The value named `s`, if any.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SELinux relabelling of a volume's source (`z` / `Z` of podman-run(1) `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relabel {
    /// `z`: a label that every container may use (the container file type at level `s0`).
    Shared,
    /// `Z`: the container's own mount label, with its categories: private to it.
    Private,
}

/// An overlay mount of a volume's source (`O` of podman-run(1) `-v`): the source is the lower
/// layer, and writes go to an upper directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Overlay {
    /// A fresh, empty upper directory per run, thrown away after it.
    ThrowAway,
    /// The user's own `upperdir` and `workdir` (kept: writes persist there).
    Dirs {
        /// The upper directory (absolute).
        upper: PathBuf,
        /// The overlay work directory (absolute, on the upper directory's filesystem).
        work: PathBuf,
    },
}

/// A bind mount's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindOptions {
    /// The host path: as given until [`UserMount::resolve`], then absolute and canonical.
    pub source: PathBuf,
    /// Read-only (`ro`) rather than read-write.
    pub read_only: bool,
    /// `rbind` (submounts too, the default) rather than `bind`.
    pub recursive: bool,
    /// Mount propagation (default `rprivate`).
    pub propagation: Propagation,
    /// `suid`/`nosuid`, `dev`/`nodev`, `exec`/`noexec` as given, in that order; `None` keeps
    /// what the source's mount has.
    pub suid: Option<bool>,
    /// `dev` (true) / `nodev` (false).
    pub dev: Option<bool>,
    /// `exec` (true) / `noexec` (false).
    pub exec: Option<bool>,
    /// SELinux relabelling of the source.
    pub relabel: Option<Relabel>,
    /// `U`: change the owner of the source (recursively) to the run's uid and gid.
    pub chown: bool,
    /// `O`: an overlay with the source as its lower layer.
    pub overlay: Option<Overlay>,
}

impl BindOptions {
    /// A read-write, recursive, `rprivate` bind of `source`.
    pub fn new(source: impl Into<PathBuf>) -> Self {
        Self {
            source: source.into(),
            read_only: false,
            recursive: true,
            propagation: Propagation::RPrivate,
            suid: None,
            dev: None,
            exec: None,
            relabel: None,
            chown: false,
            overlay: None,
        }
    }
}

/// A tmpfs mount's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsOptions {
    /// The options for the runtime: the user's, then podman's defaults for what they left out
    /// (`rw`, `rprivate`, `noexec` for `--tmpfs` only, `nosuid`, `nodev`, `tmpcopyup`).
    pub options: Vec<String>,
    /// `U`: the tmpfs is owned by the run's uid and gid (`uid=`/`gid=` options).
    pub chown: bool,
}

/// A named volume's mount (`-v NAME:/dst`, `--mount type=volume,source=NAME`): a bind of the
/// volume's data directory, which [`prepare`](crate::prepare) creates on first use, filled
/// with the rootfs's content at the destination (podman's copy-up), and keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The volume's name, as given (the caller validates it before it names a directory).
    pub name: String,
    /// The volume's directory ([`crate::VolumeStore`]'s layout: the data in `_data`); empty
    /// until [`UserMount::set_dir`].
    pub dir: PathBuf,
    /// Copy the rootfs's content at the destination into a new volume (`copy`, the default;
    /// `nocopy` leaves it empty).
    pub copy: bool,
    /// Create the volume when it does not exist (the default; `nocreate` refuses).
    pub create: bool,
    /// How the data directory is mounted: `ro`, propagation, flags, `U`, `z`/`Z` (its source
    /// is the data directory once [`UserMount::set_dir`] gave it).
    pub bind: BindOptions,
}

/// How a cache mount is shared between runs (buildah's and BuildKit's `sharing=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheSharing {
    /// `shared` (the default): any number of runs use it at once.
    Shared,
    /// `locked`: a run waits until no other run uses it, and keeps others out while it runs.
    Locked,
    /// `private`: a run that finds it in use by another gets a fresh, empty directory of its
    /// own for this run instead (BuildKit's rule).
    Private,
}

impl CacheSharing {
    /// `shared`, `locked` or `private`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Locked => "locked",
            Self::Private => "private",
        }
    }
}

impl FromStr for CacheSharing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shared" => Ok(Self::Shared),
            "locked" => Ok(Self::Locked),
            "private" => Ok(Self::Private),
            other => Err(format!(
                "sharing {other:?}: expected shared, locked or private"
            )),
        }
    }
}

/// A cache mount (`--mount type=cache,target=DST[,id=ID]...`, buildah's build-time cache): a
/// directory kept across runs, bind-mounted read-write (or `ro`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMount {
    /// `id=`, else the target as written (buildah's default).
    pub id: String,
    /// The cache's directory (the caller's layout: `ROOT/cache/KEY` for the `ocirun` binary);
    /// empty until [`UserMount::set_dir`]. Its lock file is `.KEY.lock` beside it.
    pub dir: PathBuf,
    /// `sharing=`.
    pub sharing: CacheSharing,
    /// `ro`.
    pub read_only: bool,
    /// The owner and mode the directory is created with (`uid=`, `gid=`, `mode=`; default
    /// 0, 0, 0755); an existing cache keeps its own.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// See `uid`.
    pub mode: u32,
}

/// What kind of mount a [`UserMount`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserMountKind {
    /// A bind mount of a host path (or an overlay over it, with `O`).
    Bind(BindOptions),
    /// A tmpfs.
    Tmpfs(TmpfsOptions),
    /// A named volume.
    Volume(VolumeMount),
    /// A cache mount.
    Cache(CacheMount),
    /// A secret: its bytes in a file of the bundle, bind-mounted read-only.
    Secret(SecretMount),
}

/// The flag and value a [`UserMount`] came from; shown as `-v "/h:/d"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOrigin {
    /// `-v/--volume VALUE`.
    Volume(String),
    /// `--mount VALUE`.
    Mount(String),
    /// `--tmpfs VALUE`.
    Tmpfs(String),
    /// `--secret VALUE`.
    Secret(String),
}

impl MountOrigin {
    /// The error for this value with `reason`.
    pub fn error(&self, reason: impl Into<String>) -> MountSpecError {
        let reason = reason.into();
        match self {
            Self::Volume(spec) => MountSpecError::Volume {
                spec: spec.clone(),
                reason,
            },
            Self::Mount(spec) => MountSpecError::Mount {
                spec: spec.clone(),
                reason,
            },
            Self::Tmpfs(spec) => MountSpecError::Tmpfs {
                spec: spec.clone(),
                reason,
            },
            Self::Secret(spec) => MountSpecError::Secret {
                spec: spec.clone(),
                reason,
            },
        }
    }
}

impl fmt::Display for MountOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Volume(spec) => write!(f, "-v {spec:?}"),
            Self::Mount(spec) => write!(f, "--mount {spec:?}"),
            Self::Tmpfs(spec) => write!(f, "--tmpfs {spec:?}"),
            Self::Secret(spec) => write!(f, "--secret {spec:?}"),
        }
    }
}

/// One mount a user asked for, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMount {
    /// The flag and value it came from, for messages.
    pub origin: MountOrigin,
    /// The absolute, lexically clean destination in the container.
    pub destination: PathBuf,
    /// Bind or tmpfs, with its settings.
    pub kind: UserMountKind,
}

impl UserMount {
    /// Makes the bind source (and `upperdir`/`workdir`) absolute: a relative path is taken
    /// from `cwd` (ocirun's working directory), and symlinks on the host are resolved. A tmpfs
    /// has nothing to resolve.
    ///
    /// # Errors
    /// [`MountSpecError`] naming the mount when a path does not exist.
    pub fn resolve(&mut self, cwd: &Path) -> Result<(), MountSpecError> {
        let origin = self.origin.clone();
        let fail = |what: &str, path: &Path, e: std::io::Error| {
            origin.error(format!("{what} {path:?}: {}", io_reason(&e)))
        };
        let UserMountKind::Bind(bind) = &mut self.kind else {
            return Ok(());
        };

        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                cwd.join(p)
            }
        };
        bind.source = std::fs::canonicalize(abs(&bind.source))
            .map_err(|e| fail("source", &bind.source, e))?;
        if bind.chown && CHOWN_REFUSED.iter().any(|p| bind.source == Path::new(p)) {
            return Err(origin.error(format!(
                "U would change the owner of the system directory {:?} and all below it",
                bind.source
            )));
        }
        if let Some(Overlay::Dirs { upper, work }) = &mut bind.overlay {
            *upper = std::fs::canonicalize(abs(upper)).map_err(|e| fail("upperdir", upper, e))?;
            *work = std::fs::canonicalize(abs(work)).map_err(|e| fail("workdir", work, e))?;
        }
        Ok(())
    }

    /// Gives a named volume or a cache mount its directory (the caller's layout); other kinds
    /// have none. For a volume, the bind's source becomes the data directory, `DIR/_data`.
    pub fn set_dir(&mut self, dir: PathBuf) {
        match &mut self.kind {
            UserMountKind::Volume(v) => {
                v.bind.source = crate::store::volume_data(&dir);
                v.dir = dir;
            }
            UserMountKind::Cache(c) => c.dir = dir,
            _ => {}
        }
    }

    /// The runtime-spec mount. `owner` is the run's uid and gid (for a tmpfs with `U`);
    /// `aux` is where a throw-away overlay's `upper` and `work` directories go, the bundle
    /// file (relative to the bundle) of a secret, or the throw-away directory of a `private`
    /// cache that was in use.
    ///
    /// A bind: type `bind`, options `rbind`|`bind`, the propagation, `ro`|`rw`, then the
    /// given `suid`/`dev`/`exec` flags. An overlay: type `overlay`, source `overlay`,
    /// options `lowerdir=SRC,upperdir=U,workdir=W` (`\`, `,` and `:` escaped with `\` as
    /// overlayfs reads them), then the propagation, `ro` if asked, and the flags. A tmpfs:
    /// type `tmpfs`, source `tmpfs`, its options.
    pub fn to_oci(&self, owner: (u32, u32), aux: Option<&Path>) -> Mount {
        let overlay_dirs = aux;
        let (typ, source, options) = match &self.kind {
            UserMountKind::Volume(v) => return self.bind_mount(&v.bind),
            UserMountKind::Cache(c) => {
                let source = aux.map_or_else(|| c.dir.clone(), Path::to_path_buf);
                let options = vec![
                    "rbind".to_owned(),
                    "rprivate".to_owned(),
                    if c.read_only { "ro" } else { "rw" }.to_owned(),
                ];
                ("bind", source, options)
            }
            UserMountKind::Secret(_) => {
                let source = aux.map_or_else(PathBuf::new, Path::to_path_buf);
                let options = ["bind", "rprivate", "ro", "nosuid", "nodev", "noexec"]
                    .map(str::to_owned)
                    .to_vec();
                ("bind", source, options)
            }
            UserMountKind::Tmpfs(t) => {
                let mut options = t.options.clone();
                if t.chown {
                    options.push(format!("uid={}", owner.0));
                    options.push(format!("gid={}", owner.1));
                }
                ("tmpfs", PathBuf::from("tmpfs"), options)
            }
            UserMountKind::Bind(b) => {
                let mut options = Vec::new();
                let flags = [
                    (b.suid, "suid", "nosuid"),
                    (b.dev, "dev", "nodev"),
                    (b.exec, "exec", "noexec"),
                ];
                let flags = flags
                    .iter()
                    .filter_map(|(v, yes, no)| v.map(|v| if v { *yes } else { *no }));
                match &b.overlay {
                    Some(overlay) => {
                        let (upper, work) = match overlay {
                            Overlay::Dirs { upper, work } => (upper.clone(), work.clone()),
                            Overlay::ThrowAway => {
                                let dir = overlay_dirs.unwrap_or(Path::new("/"));
                                (dir.join("upper"), dir.join("work"))
                            }
                        };
                        options.push(format!("lowerdir={}", overlay_escape(&b.source)));
                        options.push(format!("upperdir={}", overlay_escape(&upper)));
                        options.push(format!("workdir={}", overlay_escape(&work)));
                        options.push(b.propagation.to_string());
                        if b.read_only {
                            options.push("ro".to_owned());
                        }
                        options.extend(flags.map(str::to_owned));
                        ("overlay", PathBuf::from("overlay"), options)
                    }
                    None => {
                        options.push(if b.recursive { "rbind" } else { "bind" }.to_owned());
                        options.push(b.propagation.to_string());
                        options.push(if b.read_only { "ro" } else { "rw" }.to_owned());
                        options.extend(flags.map(str::to_owned));
                        ("bind", b.source.clone(), options)
                    }
                }
            }
        };
        MountBuilder::default()
            .destination(&self.destination)
            .typ(typ)
            .source(source)
            .options(options)
            .build()
            .unwrap_or_else(|e| panic!("mount {} is malformed: {e}", self.origin))
    }

    /// The bind mount of `bind`'s source at the destination (no overlay).
    fn bind_mount(&self, bind: &BindOptions) -> Mount {
        UserMount {
            origin: self.origin.clone(),
            destination: self.destination.clone(),
            kind: UserMountKind::Bind(BindOptions {
                overlay: None,
                ..bind.clone()
            }),
        }
        .to_oci((0, 0), None)
    }
}

/// Escapes `\`, `,` and `:` with a backslash, as overlayfs reads its `lowerdir`, `upperdir`
/// and `workdir` options.
fn overlay_escape(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        _ => e.to_string(),
    }
}

/// Rejects two user mounts on one destination (podman: "duplicate mount destination").
///
/// # Errors
/// [`MountSpecError::DuplicateDestination`] naming both.
pub fn check_unique_destinations(mounts: &[UserMount]) -> Result<(), MountSpecError> {
    for (i, m) in mounts.iter().enumerate() {
        if let Some(first) = mounts[..i].iter().find(|o| o.destination == m.destination) {
            return Err(MountSpecError::DuplicateDestination {
                destination: m.destination.clone(),
                first: first.origin.to_string(),
                second: m.origin.to_string(),
            });
        }
    }
    Ok(())
}

/// Cleans an absolute container path lexically: `.` and empty components dropped, `..`
/// removes the previous one. Errors (as text, for the caller's message) when it is empty,
/// relative, leaves `/` through `..`, or is `/` itself.
pub(crate) fn clean_destination(raw: &str) -> Result<PathBuf, String> {
    if raw.is_empty() {
        return Err("empty destination".to_owned());
    }
    if !raw.starts_with('/') {
        return Err(format!("destination {raw:?} is not an absolute path"));
    }
    if raw.contains('\0') {
        return Err(format!("destination {raw:?} contains a NUL byte"));
    }
    let mut clean = PathBuf::from("/");
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(name) => clean.push(name),
            Component::ParentDir => {
                if !clean.pop() {
                    return Err(format!("destination {raw:?} leaves / through \"..\""));
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if clean == Path::new("/") {
        return Err(format!("destination {raw:?} is the container's root"));
    }
    Ok(clean)
}

/// A flag value that is `true` or `false` (`ro=true`), or absent (`ro`, meaning true).
pub(crate) fn parse_bool(value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("{other:?} is not true or false")),
    }
}

/// The options of a `--tmpfs` value or `--mount type=tmpfs` that runc and the tmpfs
/// filesystem understand: mount(8) flags, propagation, runc's `tmpcopyup`, and the tmpfs data
/// options (`size`, `nr_blocks`, `nr_inodes`, `mode`, `uid`, `gid`, `huge`, `mpol`,
/// `inode32`, `inode64`, `noswap`; tmpfs(5)).
pub(crate) fn check_tmpfs_option(opt: &str) -> Result<(), String> {
    const FLAGS: [&str; 28] = [
        "rw",
        "ro",
        "exec",
        "noexec",
        "suid",
        "nosuid",
        "dev",
        "nodev",
        "sync",
        "async",
        "dirsync",
        "atime",
        "noatime",
        "diratime",
        "nodiratime",
        "relatime",
        "norelatime",
        "strictatime",
        "nostrictatime",
        "lazytime",
        "nolazytime",
        "mand",
        "nomand",
        "tmpcopyup",
        "notmpcopyup",
        "inode32",
        "inode64",
        "noswap",
    ];
    if FLAGS.contains(&opt) || Propagation::from_name(opt).is_some() {
        return Ok(());
    }
    let Some((key, value)) = opt.split_once('=') else {
        return Err(format!("unknown option {opt:?}"));
    };
    let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    let ok = match key {
        "size" | "nr_blocks" | "nr_inodes" => {
            let number = value.trim_end_matches(|c: char| "kKmMgGtTpPeE%".contains(c));
            let shift = match &value[number.len()..] {
                "" | "%" => 0,
                "k" | "K" => 10,
                "m" | "M" => 20,
                "g" | "G" => 30,
                "t" | "T" => 40,
                "p" | "P" => 50,
                "e" | "E" => 60,
                _ => return Err(format!("invalid value in option {opt:?}")),
            };
            // The kernel's own parser (memparse) takes 64 bits.
            digits(number)
                && number
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| n.checked_mul(1 << shift))
                    .is_some()
        }
        "mode" => {
            !value.is_empty()
                && value.len() <= 4
                && value.bytes().all(|b| (b'0'..=b'7').contains(&b))
        }
        "uid" | "gid" => digits(value) && value.parse::<u32>().is_ok(),
        "huge" => ["never", "always", "within_size", "advise", "deny", "force"].contains(&value),
        "mpol" => !value.is_empty() && !value.contains(char::is_whitespace),
        _ => return Err(format!("unknown option {opt:?}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid value in option {opt:?}"))
    }
}

/// Which flag a tmpfs came from: their defaults differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TmpfsFlag {
    /// `--tmpfs`: `noexec` unless `exec` is given.
    Tmpfs,
    /// `--mount type=tmpfs`: no `noexec` default, as podman.
    Mount,
}

/// The final options of a tmpfs: `given`, then podman's defaults for each kind of option that
/// `given` leaves out: `rw`, `rprivate`, `noexec` (for `--tmpfs` only: podman gives a
/// `--mount type=tmpfs` none), `nosuid`, `nodev`, `tmpcopyup` (podman's `ProcessOptions`;
/// `tmpcopyup` is runc's: the rootfs's content at the destination is copied into the new
/// tmpfs).
pub(crate) fn tmpfs_options_with_defaults(given: &[String], flag: TmpfsFlag) -> Vec<String> {
    let has = |names: &[&str]| given.iter().any(|o| names.contains(&o.as_str()));
    let mut options = given.to_vec();
    let defaults: [(&[&str], &str); 6] = [
        (&["rw", "ro"], "rw"),
        (
            &[
                "shared",
                "rshared",
                "slave",
                "rslave",
                "private",
                "rprivate",
                "unbindable",
                "runbindable",
            ],
            "rprivate",
        ),
        (&["exec", "noexec"], "noexec"),
        (&["suid", "nosuid"], "nosuid"),
        (&["dev", "nodev"], "nodev"),
        (&["tmpcopyup", "notmpcopyup"], "tmpcopyup"),
    ];
    for (names, default) in defaults {
        if default == "noexec" && flag == TmpfsFlag::Mount {
            continue;
        }
        if !has(names) {
            options.push(default.to_owned());
        }
    }
    options.retain(|o| o != "notmpcopyup");
    options
}

/// Pairs of options of which at most one may be given (and none twice).
pub(crate) fn conflict_group(opt: &str) -> Option<&'static str> {
    Some(match opt {
        "ro" | "rw" | "readonly" => "ro",
        "exec" | "noexec" => "exec",
        "suid" | "nosuid" => "suid",
        "dev" | "nodev" => "dev",
        "tmpcopyup" | "notmpcopyup" => "tmpcopyup",
        o if Propagation::from_name(o).is_some() => "propagation",
        _ => return None,
    })
}

impl FromStr for Propagation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::from_name(s).ok_or_else(|| format!("unknown propagation {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_cleaned_and_checked() {
        assert_eq!(
            clean_destination("/a/./b//c/").unwrap(),
            Path::new("/a/b/c")
        );
        assert_eq!(clean_destination("/a/../b").unwrap(), Path::new("/b"));
        assert_eq!(
            clean_destination("/../etc").unwrap_err(),
            r#"destination "/../etc" leaves / through "..""#
        );
        assert_eq!(
            clean_destination("rel/dst").unwrap_err(),
            r#"destination "rel/dst" is not an absolute path"#
        );
        assert_eq!(
            clean_destination("/a/..").unwrap_err(),
            r#"destination "/a/.." is the container's root"#
        );
    }

    #[test]
    fn tmpfs_defaults_fill_what_is_missing() {
        let given = vec!["exec".to_owned(), "size=1m".to_owned()];
        assert_eq!(
            tmpfs_options_with_defaults(&given, TmpfsFlag::Tmpfs),
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
        let given = vec!["notmpcopyup".to_owned(), "ro".to_owned()];
        assert_eq!(
            tmpfs_options_with_defaults(&given, TmpfsFlag::Tmpfs),
            ["ro", "rprivate", "noexec", "nosuid", "nodev"]
        );
        let given = vec!["mode=700".to_owned()];
        assert_eq!(
            tmpfs_options_with_defaults(&given, TmpfsFlag::Tmpfs),
            [
                "mode=700",
                "rw",
                "rprivate",
                "noexec",
                "nosuid",
                "nodev",
                "tmpcopyup"
            ]
        );
    }

    #[test]
    fn tmpfs_options_are_checked() {
        for ok in [
            "size=1m",
            "size=50%",
            "mode=1777",
            "uid=1000",
            "huge=never",
            "noexec",
            "rshared",
        ] {
            assert_eq!(check_tmpfs_option(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_tmpfs_option("bogus").unwrap_err(),
            r#"unknown option "bogus""#
        );
        assert_eq!(
            check_tmpfs_option("size=1x").unwrap_err(),
            r#"invalid value in option "size=1x""#
        );
        assert_eq!(
            check_tmpfs_option("size=99999999999999999999").unwrap_err(),
            r#"invalid value in option "size=99999999999999999999""#
        );
        assert_eq!(
            check_tmpfs_option("nr_inodes=16e").unwrap_err(),
            r#"invalid value in option "nr_inodes=16e""#
        );
        assert_eq!(check_tmpfs_option("nr_inodes=15e"), Ok(()));
        assert_eq!(
            check_tmpfs_option("mode=999").unwrap_err(),
            r#"invalid value in option "mode=999""#
        );
    }

    #[test]
    fn bind_and_overlay_mounts() {
        let mut bind = BindOptions::new("/h");
        bind.read_only = true;
        bind.exec = Some(false);
        let m = UserMount {
            origin: MountOrigin::Volume("/h:/d:ro,noexec".into()),
            destination: "/d".into(),
            kind: UserMountKind::Bind(bind.clone()),
        };
        let oci = m.to_oci((0, 0), None);
        assert_eq!(oci.typ().as_deref(), Some("bind"));
        assert_eq!(oci.source().as_deref(), Some(Path::new("/h")));
        assert_eq!(
            oci.options().as_ref().unwrap(),
            &["rbind", "rprivate", "ro", "noexec"]
        );

        bind.source = "/h,a:b".into();
        bind.overlay = Some(Overlay::ThrowAway);
        let m = UserMount {
            kind: UserMountKind::Bind(bind),
            ..m
        };
        let oci = m.to_oci((0, 0), Some(Path::new("/state/overlay/0")));
        assert_eq!(oci.typ().as_deref(), Some("overlay"));
        assert_eq!(
            oci.options().as_ref().unwrap(),
            &[
                r"lowerdir=/h\,a\:b",
                "upperdir=/state/overlay/0/upper",
                "workdir=/state/overlay/0/work",
                "rprivate",
                "ro",
                "noexec"
            ]
        );
    }

    #[test]
    fn tmpfs_with_chown_gets_the_owner() {
        let m = UserMount {
            origin: MountOrigin::Mount("type=tmpfs,dst=/t,U".into()),
            destination: "/t".into(),
            kind: UserMountKind::Tmpfs(TmpfsOptions {
                options: vec!["rw".into()],
                chown: true,
            }),
        };
        let oci = m.to_oci((1000, 100), None);
        assert_eq!(
            oci.options().as_ref().unwrap(),
            &["rw", "uid=1000", "gid=100"]
        );
    }

    #[test]
    fn resolve_names_a_missing_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rel")).unwrap();
        let mut m = UserMount {
            origin: MountOrigin::Volume("./rel:/data".into()),
            destination: "/data".into(),
            kind: UserMountKind::Bind(BindOptions::new("./rel")),
        };
        m.resolve(dir.path()).unwrap();
        let UserMountKind::Bind(b) = &m.kind else {
            unreachable!()
        };
        assert_eq!(b.source, dir.path().canonicalize().unwrap().join("rel"));
        let mut m = UserMount {
            origin: MountOrigin::Volume("nope:/data".into()),
            destination: "/data".into(),
            kind: UserMountKind::Bind(BindOptions::new("nope")),
        };
        assert_eq!(
            m.resolve(dir.path()).unwrap_err().to_string(),
            r#"invalid volume "nope:/data": source "nope": no such file or directory"#
        );
    }

    proptest::proptest! {
        #[test]
        fn two_mounts_on_one_destination_are_refused(
            dst in "/[a-z]{1,6}(/[a-z]{1,6}){0,2}",
            a in "/[a-z]{1,8}",
            b in "/[a-z]{1,8}",
            tmpfs_second in proptest::bool::ANY,
        ) {
            let first: crate::VolumeSpec = format!("{a}:{dst}").parse().unwrap();
            let second = if tmpfs_second {
                format!("{dst}/.").parse::<crate::TmpfsSpec>().unwrap().to_user_mount(&dst)
            } else {
                format!("{b}:{dst}/x/..").parse::<crate::VolumeSpec>().unwrap().to_user_mount(&b)
            };
            let mounts = [first.to_user_mount(&a), second];
            let err = check_unique_destinations(&mounts).unwrap_err();
            let is_duplicate = matches!(
                err,
                MountSpecError::DuplicateDestination { ref destination, .. }
                    if destination == Path::new(&dst)
            );
            proptest::prop_assert!(is_duplicate, "{}", err);
        }
    }

    #[test]
    fn duplicates_are_named() {
        let m = |origin: MountOrigin| UserMount {
            origin,
            destination: "/d".into(),
            kind: UserMountKind::Bind(BindOptions::new("/h")),
        };
        let err = check_unique_destinations(&[
            m(MountOrigin::Volume("/a:/d".into())),
            m(MountOrigin::Tmpfs("/d".into())),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"duplicate mount destination "/d": -v "/a:/d" and --tmpfs "/d""#
        );
    }
}
