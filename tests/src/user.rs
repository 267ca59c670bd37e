//! The non-root user the end-to-end tests run ocirun as: made once per machine with useradd,
//! with subordinate id ranges of its own in /etc/subuid and /etc/subgid.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The test user's name.
pub const NAME: &str = "ocirun-e2e";

/// How many subordinate ids the test user gets.
pub const SUBID_COUNT: u32 = 65536;

/// A user other than root, with one range of subordinate uids and gids.
#[derive(Debug)]
pub struct TestUser {
    /// The login name.
    pub name: String,
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// The home directory.
    pub home: PathBuf,
    /// The first subordinate uid (id 1 of its user namespace).
    pub subuid: u32,
    /// The first subordinate gid.
    pub subgid: u32,
}

impl TestUser {
    /// The host uid that id `id` of the user's namespace is: 0 the user, 1.. the subordinate
    /// ids (the mapping of `ocirun run` without root).
    pub fn host_uid(&self, id: u32) -> u32 {
        if id == 0 {
            self.uid
        } else {
            self.subuid + id - 1
        }
    }

    /// [`Self::host_uid`] for gids.
    pub fn host_gid(&self, id: u32) -> u32 {
        if id == 0 {
            self.gid
        } else {
            self.subgid + id - 1
        }
    }
}

/// The first range `(start, count)` of `name` in a subordinate id file's text.
fn range_of(text: &str, name: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name)
            .then(|| Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?)))
            .flatten()
    })
}

/// The first id after every range of the file's text, rounded up to a multiple of 65536, at
/// least 1000000 (clear of the ranges useradd hands out from 100000).
fn free_start(text: &str) -> u32 {
    let end = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':').skip(1);
            let start: u64 = f.next()?.parse().ok()?;
            let count: u64 = f.next()?.parse().ok()?;
            Some(start + count)
        })
        .max()
        .unwrap_or(0)
        .max(1_000_000);
    u32::try_from(end.div_ceil(65536) * 65536).expect("subordinate ids below 2^32")
}

/// Adds a range for `name` to `file` unless it has one; returns the range's start.
fn ensure_range(file: &Path, name: &str) -> u32 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    if let Some((start, count)) = range_of(&text, name) {
        assert!(
            count >= SUBID_COUNT,
            "{}: {name} has {count} ids, the tests need {SUBID_COUNT}",
            file.display()
        );
        return start;
    }
    let start = free_start(&text);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", file.display()));
    if !text.is_empty() && !text.ends_with('\n') {
        writeln!(f).unwrap();
    }
    writeln!(f, "{name}:{start}:{SUBID_COUNT}")
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    start
}

/// The test user, made when this machine has none: `useradd --create-home NAME` (without the
/// ranges useradd may add), then a range of 65536 ids of its own in /etc/subuid and
/// /etc/subgid, clear of the others. Serialized across test processes by a lock file.
///
/// # Panics
/// With the reason when the user cannot be made (useradd missing, not root) or newuidmap is
/// missing (Debian's uidmap package).
pub fn test_user() -> &'static TestUser {
    static USER: OnceLock<TestUser> = OnceLock::new();
    USER.get_or_init(|| {
        for tool in ["/usr/bin/newuidmap", "/usr/bin/newgidmap"] {
            assert!(
                Path::new(tool).is_file(),
                "{tool} is missing: the tests without root need Debian's uidmap package"
            );
        }
        let lock = std::fs::File::create("/run/ocirun-e2e-user.lock")
            .expect("cannot create /run/ocirun-e2e-user.lock");
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("cannot lock /run/ocirun-e2e-user.lock");
        if nix::unistd::User::from_name(NAME).ok().flatten().is_none() {
            let status = Command::new("useradd")
                .args(["--create-home", "--shell", "/bin/sh"])
                .args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", NAME])
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .status()
                .expect("cannot run useradd");
            assert!(status.success(), "useradd {NAME} failed: {status}");
        }
        let user = nix::unistd::User::from_name(NAME)
            .ok()
            .flatten()
            .expect("the test user exists");
        let subuid = ensure_range(Path::new("/etc/subuid"), NAME);
        let subgid = ensure_range(Path::new("/etc/subgid"), NAME);
        TestUser {
            name: NAME.to_owned(),
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
            subuid,
            subgid,
        }
    })
}

/// Gives `path` (not following a symlink) the owner that the test user's namespace sees as the
/// one it has now: id 0 becomes the user, id N its subordinate id N.
pub fn map_owner(user: &TestUser, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path).expect("lstat");
    std::os::unix::fs::lchown(
        path,
        Some(user.host_uid(meta.uid())),
        Some(user.host_gid(meta.gid())),
    )
    .unwrap_or_else(|e| panic!("cannot chown {}: {e}", path.display()));
    if !meta.file_type().is_symlink() {
        // chown clears the set-id bits: the mode goes back as it was.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ranges_clear_the_others() {
        assert_eq!(free_start(""), 1_048_576);
        assert_eq!(free_start("a:100000:65536\nb:2000000:65536\n"), 2_097_152);
        assert_eq!(range_of("a:1:2\nb:3:4\n", "b"), Some((3, 4)));
        assert_eq!(range_of("a:1:2\n", "b"), None);
    }
}
