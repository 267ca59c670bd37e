//! Container ids and names, validated once, here, where they become file names in the state
//! directories ([`StateLayout`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DriverError, NameLocks, RecordStore};

/// The longest container id accepted, in bytes (a file name must fit in 255 bytes, and the
/// state directories add a suffix such as `.json`).
pub const MAX_ID_LEN: usize = 200;

/// The longest container name accepted, in bytes (podman's limit for a name is the hostname
/// limit of 253; a file name must also fit).
pub const MAX_NAME_LEN: usize = 200;

/// A container id as the runtime knows it: 1 to [`MAX_ID_LEN`] bytes of ASCII letters, digits,
/// `_`, `+`, `-` and `.`, not starting with `.` (runc's rule, `^[\w+-\.]+$` without `.` and
/// `..`; a leading `.` is kept for the state directories' own files). [`ContainerId::random`]
/// makes the ids ocirun uses: 64 lower-case hex digits, the form podman and Docker use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    /// A new random id: 64 lower-case hex digits (32 bytes from getrandom(2)). Its first 12
    /// digits are the default hostname.
    ///
    /// # Errors
    /// [`DriverError::Random`] if the kernel's random source fails.
    pub fn random() -> Result<Self, DriverError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| DriverError::Random(e.to_string()))?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerId {
    type Err = DriverError;

    /// # Errors
    /// [`DriverError::InvalidContainerId`] naming the value and what is wrong with it.
    fn from_str(id: &str) -> Result<Self, DriverError> {
        let bad = |reason: &'static str| DriverError::InvalidContainerId {
            id: id.to_owned(),
            reason,
        };
        if id.is_empty() {
            return Err(bad("empty"));
        }
        if id.len() > MAX_ID_LEN {
            return Err(bad("longer than 200 bytes"));
        }
        if id.starts_with('.') {
            return Err(bad("starts with '.'"));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
        {
            return Err(bad("use letters, digits, '_', '+', '-' or '.'"));
        }
        Ok(Self(id.to_owned()))
    }
}

/// podman's rule for container and volume names: a letter or digit, then letters, digits,
/// `_`, `.` or `-`, at most `max` bytes.
fn is_podman_name(name: &str, max: usize) -> bool {
    name.len() <= max
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A container name (`--name`): podman's rule, a letter or digit, then letters, digits, `_`,
/// `.` or `-`, at most [`MAX_NAME_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerName(String);

impl ContainerName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerName {
    type Err = DriverError;

    /// # Errors
    /// [`DriverError::InvalidContainerName`] naming the value.
    fn from_str(name: &str) -> Result<Self, DriverError> {
        if is_podman_name(name, MAX_NAME_LEN) {
            Ok(Self(name.to_owned()))
        } else {
            Err(DriverError::InvalidContainerName(name.to_owned()))
        }
    }
}

/// The longest volume name accepted, in bytes (a file name must fit).
pub const MAX_VOLUME_NAME_LEN: usize = 200;

/// A named volume's name (`-v NAME:/dst`, `--mount type=volume,source=NAME`): podman's rule, a
/// letter or digit, then letters, digits, `_`, `.` or `-`, at most [`MAX_VOLUME_NAME_LEN`]
/// bytes; so never a path (no `/`, no leading `.`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VolumeName(String);

impl VolumeName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for VolumeName {
    type Err = DriverError;

    /// # Errors
    /// [`DriverError::InvalidVolumeName`] naming the value.
    fn from_str(name: &str) -> Result<Self, DriverError> {
        if is_podman_name(name, MAX_VOLUME_NAME_LEN) {
            Ok(Self(name.to_owned()))
        } else {
            Err(DriverError::InvalidVolumeName(name.to_owned()))
        }
    }
}

/// The id of a cache mount (`--mount type=cache,id=ID`, else its target), as buildah takes it:
/// any non-empty text without a NUL byte, at most 1024 bytes. [`CacheId::file_name`] is its
/// directory's name under `ROOT/cache`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheId(String);

/// The longest cache id accepted, in bytes.
pub const MAX_CACHE_ID_LEN: usize = 1024;

impl CacheId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a file name: ASCII letters, digits, `_`, `-` and `.` (not first) stay, every
    /// other byte is `%XX`; different ids give different names. Longer than 200 bytes, it is
    /// cut at 180 and followed by `~` and 16 hex digits of an FNV-1a hash of the whole id.
    pub fn file_name(&self) -> String {
        let mut out = String::new();
        for (i, &b) in self.0.as_bytes().iter().enumerate() {
            match b {
                b'.' if i > 0 => out.push('.'),
                b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                    out.push(char::from(b));
                }
                b => out.push_str(&format!("%{b:02X}")),
            }
        }
        if out.len() > 200 {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for b in self.0.bytes() {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
            out.truncate(180);
            out.push_str(&format!("~{hash:016x}"));
        }
        out
    }
}

impl FromStr for CacheId {
    type Err = DriverError;

    /// # Errors
    /// [`DriverError::InvalidCacheId`] naming the value.
    fn from_str(id: &str) -> Result<Self, DriverError> {
        let bad = |reason: &'static str| DriverError::InvalidCacheId {
            id: id.to_owned(),
            reason,
        };
        if id.is_empty() {
            return Err(bad("empty"));
        }
        if id.len() > MAX_CACHE_ID_LEN {
            return Err(bad("longer than 1024 bytes"));
        }
        if id.contains('\0') {
            return Err(bad("holds a NUL byte"));
        }
        Ok(Self(id.to_owned()))
    }
}

impl fmt::Display for CacheId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_type {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $t {
            type Error = DriverError;

            fn try_from(value: String) -> Result<Self, DriverError> {
                value.parse()
            }
        }

        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }
    };
}
string_type!(ContainerId);
string_type!(ContainerName);
string_type!(VolumeName);

/// Where a supervisor keeps its state, from two roots: the run state under `runroot` (gone at
/// reboot, `/run/ocirun` for the `ocirun` binary run as root) and the persistent state under
/// `root` (`/var/lib/ocirun`), as podman's `--runroot` and `--root`. Only paths: nothing is
/// created until a run needs it.
///
/// | path | what |
/// |---|---|
/// | `RUNROOT/bundles/ID` | the bundle of the run of container ID |
/// | `RUNROOT/runtime` | the runtime's state root (`runc --root`) |
/// | `RUNROOT/records` | run records ([`RecordStore`]) |
/// | `RUNROOT/targets` | the mount-target ledger of each rootfs |
/// | `ROOT/names/NAME.lock` | the lock of the container name NAME while a run holds it ([`NameLocks`]) |
/// | `ROOT/containers/NAME` | a named container's directory (image-volume and secrets copies) |
/// | `ROOT/containers/ID` | the directory of a run without a name, removed with it |
/// | `ROOT/volumes/NAME` | the named volume NAME (ocirun-mounts' `VolumeStore` keeps its data in `_data`) |
/// | `ROOT/cache/ID` | the cache mount with the id ID ([`CacheId::file_name`]) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLayout {
    runroot: PathBuf,
    root: PathBuf,
}

/// What the default state directories of a user other than root are made from (read by the
/// caller from its environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserDirs {
    /// `$XDG_RUNTIME_DIR`.
    pub runtime_dir: Option<PathBuf>,
    /// `$XDG_DATA_HOME`.
    pub data_home: Option<PathBuf>,
    /// `$HOME`, else the home directory of the user's passwd entry.
    pub home: Option<PathBuf>,
}

impl UserDirs {
    /// The directories from these values (an empty one counts as unset).
    pub fn new(
        runtime_dir: Option<PathBuf>,
        data_home: Option<PathBuf>,
        home: Option<PathBuf>,
    ) -> Self {
        let set = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        Self {
            runtime_dir: set(runtime_dir),
            data_home: set(data_home),
            home: set(home),
        }
    }
}

/// The run-state root of root, `/run/ocirun`.
pub const ROOT_RUNROOT: &str = "/run/ocirun";

/// The persistent-state root of root, `/var/lib/ocirun` (podman's `--root` is
/// `/var/lib/containers/storage`).
pub const ROOT_ROOT: &str = "/var/lib/ocirun";

impl StateLayout {
    /// The default run-state root of the user `uid` (podman's rule for its run directory):
    /// `/run/ocirun` for root; otherwise `$XDG_RUNTIME_DIR/ocirun` when `$XDG_RUNTIME_DIR` is a
    /// directory the user owns, else `/tmp/ocirun-UID`, made with mode 0700 when missing.
    ///
    /// # Errors
    /// [`DriverError::StateDir`] when `/tmp/ocirun-UID` exists and is not a directory of the
    /// user's that others can neither read nor write (mode 0700 or 0711: someone else could
    /// read or replace the user's state), or cannot
    /// be made.
    pub fn default_runroot(uid: u32, dirs: &UserDirs) -> Result<PathBuf, DriverError> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        if uid == 0 {
            return Ok(PathBuf::from(ROOT_RUNROOT));
        }
        if let Some(dir) = &dirs.runtime_dir {
            if std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
                return Ok(dir.join("ocirun"));
            }
        }
        let dir = PathBuf::from(format!("/tmp/ocirun-{uid}"));
        let bad = |reason: String| DriverError::StateDir {
            path: dir.clone(),
            reason,
        };
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(bad(format!("cannot create it: {e}"))),
        }
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| bad(e.to_string()))?;
        if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o066 != 0 {
            return Err(bad(format!(
                "it must be a directory of uid {uid} with mode 0700 or 0711 (it is {}, uid {}, \
                 mode {:o}): remove it, or give --runroot",
                if meta.is_dir() {
                    "a directory"
                } else {
                    "not a directory"
                },
                meta.uid(),
                meta.mode() & 0o7777
            )));
        }
        Ok(dir)
    }

    /// The default persistent-state root of the user `uid`: `/var/lib/ocirun` for root;
    /// otherwise `$XDG_DATA_HOME/ocirun`, else `$HOME/.local/share/ocirun`.
    ///
    /// # Errors
    /// [`DriverError::StateDir`] when neither `$XDG_DATA_HOME` nor a home directory is known.
    pub fn default_root(uid: u32, dirs: &UserDirs) -> Result<PathBuf, DriverError> {
        if uid == 0 {
            return Ok(PathBuf::from(ROOT_ROOT));
        }
        match (&dirs.data_home, &dirs.home) {
            (Some(data), _) => Ok(data.join("ocirun")),
            (None, Some(home)) => Ok(home.join(".local/share/ocirun")),
            (None, None) => Err(DriverError::StateDir {
                path: PathBuf::from("~/.local/share/ocirun"),
                reason: "neither XDG_DATA_HOME nor a home directory is known: set one, or \
                         give --root"
                    .to_owned(),
            }),
        }
    }

    /// The layout under `runroot` and `root`.
    pub fn new(runroot: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Self {
            runroot: runroot.into(),
            root: root.into(),
        }
    }

    /// The run state's root.
    pub fn runroot(&self) -> &Path {
        &self.runroot
    }

    /// The persistent state's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding the bundles.
    pub fn bundles(&self) -> PathBuf {
        self.runroot.join("bundles")
    }

    /// The bundle directory of container `id`.
    pub fn bundle(&self, id: &ContainerId) -> PathBuf {
        self.bundles().join(id.as_str())
    }

    /// The short links to bundle directories ([`crate::Bundle::link_from`]), for console
    /// socket paths that must fit `sun_path`.
    pub fn bundle_links(&self) -> PathBuf {
        self.runroot.join("l")
    }

    /// The runtime's state root (`runc --root`): ocirun's own, so that its containers never
    /// mix with other tools'.
    pub fn runtime_root(&self) -> PathBuf {
        self.runroot.join("runtime")
    }

    /// The run records.
    pub fn records(&self) -> RecordStore {
        RecordStore::new(self.runroot.join("records"))
    }

    /// The container name locks, beside the named containers' directories they protect: runs
    /// with one root and different run roots exclude each other too.
    pub fn names(&self) -> NameLocks {
        NameLocks::new(self.root.join("names"))
    }

    /// The directory of the mount-target ledger (ocirun-mounts' `TargetLedger`).
    pub fn targets(&self) -> PathBuf {
        self.runroot.join("targets")
    }

    /// The directory holding the container directories.
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// The persistent directory of the container named `name`.
    pub fn container_dir(&self, name: &ContainerName) -> PathBuf {
        self.containers().join(name.as_str())
    }

    /// The directory of the run of container `id` that has no name (removed with the run).
    pub fn ephemeral_dir(&self, id: &ContainerId) -> PathBuf {
        self.containers().join(id.as_str())
    }

    /// The directory holding the named volumes.
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// The directory of the named volume `name`.
    pub fn volume_dir(&self, name: &VolumeName) -> PathBuf {
        self.volumes().join(name.as_str())
    }

    /// The directory holding the cache mounts' directories.
    pub fn caches(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// The directory of the cache mount `id`.
    pub fn cache_dir(&self, id: &CacheId) -> PathBuf {
        self.caches().join(id.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_64_hex_and_differ() {
        let a = ContainerId::random().unwrap();
        let b = ContainerId::random().unwrap();
        assert_eq!(a.as_str().len(), 64);
        assert!(a
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<ContainerId>().unwrap(), a);
    }

    #[test]
    fn ids_follow_runcs_rule() {
        for ok in ["a", "web-1", "x.y_z+1", "0123"] {
            assert!(ok.parse::<ContainerId>().is_ok(), "{ok}");
        }
        for (bad, reason) in [
            ("", "empty"),
            (".", "starts with '.'"),
            ("..", "starts with '.'"),
            (".hidden", "starts with '.'"),
            ("a/b", "use letters, digits, '_', '+', '-' or '.'"),
            ("a b", "use letters, digits, '_', '+', '-' or '.'"),
            ("a\nb", "use letters, digits, '_', '+', '-' or '.'"),
        ] {
            let err = bad.parse::<ContainerId>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid container id {bad:?}: {reason}")
            );
        }
        assert!("x".repeat(201).parse::<ContainerId>().is_err());
        assert!(serde_json::from_str::<ContainerId>("\"../x\"").is_err());
    }

    #[test]
    fn names_follow_podmans_rule() {
        for ok in ["a", "web-1", "A.b_c", "9"] {
            assert!(ok.parse::<ContainerName>().is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "_a", "a b", "a/b", "..", "a:b", "é"] {
            assert_eq!(
                bad.parse::<ContainerName>().unwrap_err().to_string(),
                format!(
                    "invalid container name {bad:?}: use a letter or digit, then letters, \
                     digits, '_', '.' or '-'"
                ),
            );
        }
        assert!("n".repeat(201).parse::<ContainerName>().is_err());
    }

    #[test]
    fn volume_names_follow_podmans_rule() {
        for ok in ["data", "web-1", "A.b_c", "9"] {
            assert!(ok.parse::<VolumeName>().is_ok(), "{ok}");
        }
        for bad in [
            "", "-a", ".a", "_a", "a b", "a/b", "..", "./x", "a:b", "é", "/abs",
        ] {
            assert_eq!(
                bad.parse::<VolumeName>().unwrap_err().to_string(),
                format!(
                    "invalid volume name {bad:?}: use a letter or digit, then letters, digits, \
                     '_', '.' or '-'"
                ),
            );
        }
        assert!("v".repeat(201).parse::<VolumeName>().is_err());
        assert!(serde_json::from_str::<VolumeName>("\"../x\"").is_err());
    }

    #[test]
    fn cache_ids_become_distinct_file_names() {
        let name = |id: &str| id.parse::<CacheId>().unwrap().file_name();
        assert_eq!(name("go-build"), "go-build");
        assert_eq!(name("/var/cache/apt"), "%2Fvar%2Fcache%2Fapt");
        assert_ne!(name("a/b"), name("/a/b"));
        assert_eq!(name(".x"), "%2Ex");
        assert_eq!(name(".."), "%2E.");
        let long = name(&"x".repeat(300));
        assert_eq!(long.len(), 197);
        assert_ne!(long, name(&format!("{}y", "x".repeat(299))));
        assert_eq!(
            "".parse::<CacheId>().unwrap_err().to_string(),
            "invalid cache id \"\": empty"
        );
        assert!("a\0b".parse::<CacheId>().is_err());
    }

    #[test]
    fn default_roots_follow_podmans_rules() {
        let none = UserDirs::default();
        assert_eq!(
            StateLayout::default_runroot(0, &none).unwrap(),
            Path::new("/run/ocirun")
        );
        assert_eq!(
            StateLayout::default_root(0, &none).unwrap(),
            Path::new("/var/lib/ocirun")
        );
        let me = nix::unistd::Uid::effective().as_raw();
        let runtime = tempfile::tempdir().unwrap();
        let dirs = UserDirs::new(
            Some(runtime.path().to_path_buf()),
            Some(PathBuf::from("/data")),
            Some(PathBuf::from("/home/u")),
        );
        if me != 0 {
            assert_eq!(
                StateLayout::default_runroot(me, &dirs).unwrap(),
                runtime.path().join("ocirun")
            );
        }
        assert_eq!(
            StateLayout::default_root(1000, &dirs).unwrap(),
            Path::new("/data/ocirun")
        );
        let home_only = UserDirs::new(None, Some(PathBuf::new()), Some(PathBuf::from("/home/u")));
        assert_eq!(
            StateLayout::default_root(1000, &home_only).unwrap(),
            Path::new("/home/u/.local/share/ocirun")
        );
        assert_eq!(
            StateLayout::default_root(1000, &none)
                .unwrap_err()
                .to_string(),
            "state directory \"~/.local/share/ocirun\": neither XDG_DATA_HOME nor a home \
             directory is known: set one, or give --root"
        );
    }

    #[test]
    fn layout_paths() {
        let layout = StateLayout::new("/run/ocirun", "/var/lib/ocirun");
        let id: ContainerId = "c1".parse().unwrap();
        let name: ContainerName = "web".parse().unwrap();
        assert_eq!(layout.bundle(&id), Path::new("/run/ocirun/bundles/c1"));
        assert_eq!(layout.runtime_root(), Path::new("/run/ocirun/runtime"));
        assert_eq!(layout.targets(), Path::new("/run/ocirun/targets"));
        assert_eq!(
            layout.container_dir(&name),
            Path::new("/var/lib/ocirun/containers/web")
        );
        assert_eq!(
            layout.ephemeral_dir(&id),
            Path::new("/var/lib/ocirun/containers/c1")
        );
        let volume: VolumeName = "data".parse().unwrap();
        assert_eq!(
            layout.volume_dir(&volume),
            Path::new("/var/lib/ocirun/volumes/data")
        );
        let cache: CacheId = "/root/.cache".parse().unwrap();
        assert_eq!(
            layout.cache_dir(&cache),
            Path::new("/var/lib/ocirun/cache/%2Froot%2F.cache")
        );
    }
}
