//! Mount targets shared by the runs on one rootfs, removed by the last run to end.
//!
//! Two runs on the same rootfs may both need `/etc/hosts` as a mount target. If the first to
//! end removed the empty file it had created, the kernel would detach the other container's
//! bind mount on it (an unlinked mount point loses its mounts in every namespace). So the
//! targets go into a ledger per rootfs, and only a run that ends while no other run on that
//! rootfs is active removes them.
//!
//! Files in the ledger directory, per rootfs (keyed by its device and inode numbers):
//! - `KEY.lock`: every active run holds a shared flock(2) on it for its whole life;
//! - `KEY.mutex`: held exclusively while the ledger is read or changed, and while a run takes
//!   or drops its shared lock;
//! - `KEY.list`: the rootfs path and the targets, outermost first (format below);
//! - `.KEY.tmp`: a new `KEY.list` while it is written, renamed over it.
//!
//! A run takes the mutex, then its shared lock, and adds each target to the ledger as
//! *planned* before it creates it (so that a run killed half-way leaves nothing that `gc` does
//! not know of), then as *created* with the device and inode numbers of what it made, and drops
//! the mutex; a planned target that it did not make is taken out again. At the end it takes the
//! mutex, drops its shared lock and tries an exclusive, non-blocking lock: if it gets it, no
//! other run is active (none can start while the mutex is held), and it removes every listed
//! target that is still empty and, for a created one, still the inode that was made; then it
//! removes the ledger's files, the lock files last, still holding the mutex. A run that dies
//! drops its shared lock with its file descriptors; its targets are removed by the next last
//! run, or by [`TargetLedger::sweep`] (`ocirun gc`).
//!
//! The lock files are removed without racing a run that is starting: a run opens `KEY.lock`
//! only while it holds the mutex, and after it has locked `KEY.mutex` it checks that the file
//! at that path is still the one it locked; if the last run unlinked it meanwhile, it opens the
//! new one and locks again.
//!
//! `KEY.list` is a line `ocirun-targets 2`, then records that no byte of a path can break
//! (paths are bytes, and may hold newlines): `R LEN:PATH\n` for the rootfs, then per target
//! `P LEN:PATH\n` (planned) or `C DEV:INO LEN:PATH\n` (created), where `LEN` is the decimal
//! length of `PATH` in bytes. A list that does not parse is left alone: nothing is removed on
//! its word.

use std::ffi::OsStr;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::{MountsError, Rootfs};

/// The first line of a ledger list.
const VERSION_LINE: &[u8] = b"ocirun-targets 2\n";

/// The ledger directory (`/run/ocirun/targets` for the `ocirun` binary).
#[derive(Debug, Clone)]
pub struct TargetLedger {
    dir: PathBuf,
}

/// A run's shared hold on its rootfs's ledger.
#[derive(Debug)]
pub(crate) struct LedgerHold {
    ledger: TargetLedger,
    key: String,
    run_lock: Option<Flock<File>>,
    /// The targets this run listed as planned and has not yet listed as created.
    planned: Vec<PathBuf>,
}

/// The exclusive mutex of one rootfs's ledger; released on drop.
#[derive(Debug)]
pub(crate) struct LedgerMutex {
    _lock: Flock<File>,
}

/// One target in a ledger list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    path: PathBuf,
    /// The device and inode numbers of what was created; `None` while only planned.
    made: Option<(u64, u64)>,
}

/// What a ledger list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct List {
    rootfs: Option<PathBuf>,
    targets: Vec<Target>,
}

fn push_path(out: &mut Vec<u8>, path: &Path) {
    let bytes = path.as_os_str().as_bytes();
    out.extend_from_slice(format!("{}:", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.push(b'\n');
}

impl List {
    fn encode(&self) -> Vec<u8> {
        let mut out = VERSION_LINE.to_vec();
        if let Some(rootfs) = &self.rootfs {
            out.extend_from_slice(b"R ");
            push_path(&mut out, rootfs);
        }
        for t in &self.targets {
            match t.made {
                None => out.extend_from_slice(b"P "),
                Some((dev, ino)) => out.extend_from_slice(format!("C {dev}:{ino} ").as_bytes()),
            }
            push_path(&mut out, &t.path);
        }
        out
    }

    /// Parses a list; `None` for anything but what [`Self::encode`] writes.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut rest = bytes.strip_prefix(VERSION_LINE)?;
        let mut list = Self::default();
        // A decimal number ended by `end`.
        fn number(rest: &mut &[u8], end: u8) -> Option<u64> {
            let at = rest.iter().position(|b| *b == end)?;
            let digits = &rest[..at];
            if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
            *rest = &rest[at + 1..];
            Some(n)
        }
        fn path(rest: &mut &[u8]) -> Option<PathBuf> {
            let len = usize::try_from(number(rest, b':')?).ok()?;
            let bytes = rest.get(..len)?;
            if rest.get(len) != Some(&b'\n') || bytes.is_empty() || bytes.contains(&0) {
                return None;
            }
            let path = PathBuf::from(OsStr::from_bytes(bytes));
            *rest = &rest[len + 1..];
            path.is_absolute().then_some(path)
        }
        while !rest.is_empty() {
            let (kind, tail) = (rest.first()?, rest.get(1..)?);
            rest = tail.strip_prefix(b" ")?;
            match kind {
                b'R' if list.rootfs.is_none() && list.targets.is_empty() => {
                    list.rootfs = Some(path(&mut rest)?);
                }
                b'P' => list.targets.push(Target {
                    path: path(&mut rest)?,
                    made: None,
                }),
                b'C' => {
                    let dev = number(&mut rest, b':')?;
                    let ino = number(&mut rest, b' ')?;
                    list.targets.push(Target {
                        path: path(&mut rest)?,
                        made: Some((dev, ino)),
                    });
                }
                _ => return None,
            }
        }
        Some(list)
    }
}

/// Whether `file` is still the file at `path` (not unlinked or replaced by the last run).
fn still_linked(path: &Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl TargetLedger {
    /// The ledger kept in `dir` (created, mode 0700, when first used).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn host_error(&self, action: &'static str, path: &Path, source: std::io::Error) -> MountsError {
        MountsError::Host {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    fn key(rootfs: &Rootfs) -> Result<String, MountsError> {
        let meta = std::fs::metadata(rootfs.path()).map_err(|source| MountsError::Host {
            action: "stat",
            path: rootfs.path().to_path_buf(),
            source,
        })?;
        Ok(format!("{:x}-{:x}", meta.dev(), meta.ino()))
    }

    fn open_lock_file(&self, name: &str) -> Result<File, MountsError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.host_error("create directory", &self.dir, e))?;
        let path = self.dir.join(name);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| self.host_error("open", &path, e))
    }

    fn flock(&self, name: &str, arg: FlockArg) -> Result<Option<Flock<File>>, MountsError> {
        let file = self.open_lock_file(name)?;
        match Flock::lock(file, arg) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => {
                Err(self.host_error("flock", &self.dir.join(name), std::io::Error::from(errno)))
            }
        }
    }

    /// Takes the mutex of `rootfs`'s ledger, then a shared hold for the run. Returns both:
    /// drop the mutex once the run's targets are recorded.
    pub(crate) fn enter(&self, rootfs: &Rootfs) -> Result<(LedgerMutex, LedgerHold), MountsError> {
        let key = Self::key(rootfs)?;
        let mutex = self.mutex(&key)?;
        let run_lock = self.flock(&format!("{key}.lock"), FlockArg::LockShared)?;
        Ok((
            mutex,
            LedgerHold {
                ledger: self.clone(),
                key,
                run_lock,
                planned: Vec::new(),
            },
        ))
    }

    /// Locks `KEY.mutex`, again if the last run unlinked the file while this one waited.
    fn mutex(&self, key: &str) -> Result<LedgerMutex, MountsError> {
        let name = format!("{key}.mutex");
        loop {
            let lock = self
                .flock(&name, FlockArg::LockExclusive)?
                .expect("a blocking flock either locks or fails");
            if still_linked(&self.dir.join(&name), &lock) {
                return Ok(LedgerMutex { _lock: lock });
            }
        }
    }

    fn list_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.list"))
    }

    fn tmp_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!(".{key}.tmp"))
    }

    /// Reads the list of `key` (the caller holds the mutex); `Ok(None)` for one that does not
    /// parse.
    fn read(&self, key: &str) -> Result<Option<List>, MountsError> {
        let path = self.list_path(key);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let list = List::decode(&bytes);
                if list.is_none() {
                    tracing::warn!(path = %path.display(), "mount target ledger does not parse: left alone");
                }
                Ok(list)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Some(List::default())),
            Err(e) => Err(self.host_error("read", &path, e)),
        }
    }

    fn write(&self, key: &str, list: &List) -> Result<(), MountsError> {
        let path = self.list_path(key);
        if list.targets.is_empty() {
            return self.remove(&path);
        }
        let tmp = self.tmp_path(key);
        let written =
            std::fs::write(&tmp, list.encode()).and_then(|()| std::fs::rename(&tmp, &path));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.host_error("write", &path, e)
        })
    }

    fn remove(&self, path: &Path) -> Result<(), MountsError> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(self.host_error("remove", path, e)),
            _ => Ok(()),
        }
    }

    /// Changes the list of the held rootfs (the caller holds the mutex); a list that does not
    /// parse is left as it is.
    fn update(
        &self,
        hold: &LedgerHold,
        rootfs: &Rootfs,
        change: impl FnOnce(&mut Vec<Target>),
    ) -> Result<(), MountsError> {
        let Some(mut list) = self.read(&hold.key)? else {
            return Ok(());
        };
        let before = list.clone();
        change(&mut list.targets);
        list.rootfs = Some(rootfs.path().to_path_buf());
        if list != before {
            self.write(&hold.key, &list)?;
        }
        Ok(())
    }

    /// Lists `planned` as targets the run is about to create (the caller holds the mutex).
    pub(crate) fn record_planned(
        &self,
        hold: &mut LedgerHold,
        rootfs: &Rootfs,
        planned: &[PathBuf],
    ) -> Result<(), MountsError> {
        let mut new = Vec::new();
        self.update(hold, rootfs, |targets| {
            for path in planned {
                if !targets.iter().any(|t| &t.path == path) {
                    targets.push(Target {
                        path: path.clone(),
                        made: None,
                    });
                    new.push(path.clone());
                }
            }
        })?;
        hold.planned.extend(new);
        Ok(())
    }

    /// Lists `created` as made by the run, with their device and inode numbers, and takes out
    /// the targets it planned but did not make (the caller holds the mutex).
    pub(crate) fn record_created(
        &self,
        hold: &mut LedgerHold,
        rootfs: &Rootfs,
        created: &[PathBuf],
    ) -> Result<(), MountsError> {
        let made: Vec<(PathBuf, Option<(u64, u64)>)> = created
            .iter()
            .map(|p| (p.clone(), rootfs.identity(p)))
            .collect();
        let planned = std::mem::take(&mut hold.planned);
        self.update(hold, rootfs, |targets| {
            for (path, identity) in made {
                match targets.iter_mut().find(|t| t.path == path) {
                    Some(t) => t.made = identity.or(t.made),
                    None => targets.push(Target {
                        path,
                        made: identity,
                    }),
                }
            }
            targets.retain(|t| t.made.is_some() || !planned.contains(&t.path));
        })
    }

    /// If no run is active on the rootfs of `key` (the caller holds the mutex and no shared
    /// lock of its own), removes its listed targets that are still empty (and, for a created
    /// one, still the inode that was made), then the ledger's files. Returns how many targets
    /// it removed.
    fn remove_if_last(&self, key: &str, rootfs: Option<&Rootfs>) -> Result<usize, MountsError> {
        let lock_name = format!("{key}.lock");
        let Some(_exclusive) = self.flock(&lock_name, FlockArg::LockExclusiveNonblock)? else {
            return Ok(0);
        };
        let Some(list) = self.read(key)? else {
            return Ok(0);
        };
        let opened;
        let rootfs = match (rootfs, &list.rootfs) {
            (Some(rootfs), _) => Some(rootfs),
            (None, Some(path)) => match Rootfs::open_unchecked(path) {
                // The same rootfs, not another directory now at its path.
                Ok(r) if Self::key(&r).is_ok_and(|k| k == key) => {
                    opened = r;
                    Some(&opened)
                }
                // The rootfs is gone: so are its targets.
                _ => None,
            },
            (None, None) => None,
        };
        let mut removed = 0;
        if let Some(rootfs) = rootfs {
            for target in list.targets.iter().rev() {
                if rootfs.remove_if_empty(&target.path, target.made) {
                    removed += 1;
                } else {
                    tracing::debug!(path = %target.path.display(), "mount target kept");
                }
            }
        }
        // `KEY.json` is the list of an older ocirun, whose format a newline could break: removed
        // unread.
        let older = self.dir.join(format!("{key}.json"));
        for path in [
            self.list_path(key),
            older,
            self.tmp_path(key),
            self.dir.join(&lock_name),
        ] {
            self.remove(&path)?;
        }
        // Still held: a run waiting for it finds it unlinked and opens a new one.
        self.remove(&self.dir.join(format!("{key}.mutex")))?;
        Ok(removed)
    }

    /// Ends a run's hold: lists `created` (targets of a run whose preparation failed before
    /// they were recorded), drops its shared lock and, if it was the last run on the rootfs,
    /// removes the still-empty targets and the ledger's files.
    pub(crate) fn leave(
        &self,
        mut hold: LedgerHold,
        rootfs: &Rootfs,
        created: &[PathBuf],
    ) -> Result<usize, MountsError> {
        let _mutex = self.mutex(&hold.key)?;
        let recorded = self.record_created(&mut hold, rootfs, created);
        drop(hold.run_lock.take());
        let removed = self.remove_if_last(&hold.key, Some(rootfs));
        recorded.and(removed)
    }

    /// For every rootfs in the ledger on which no run is active, removes the targets that are
    /// still empty (what runs that died left) and the ledger's files. Returns how many targets
    /// it removed.
    ///
    /// # Errors
    /// [`MountsError::Host`] if the ledger cannot be read or changed.
    pub fn sweep(&self) -> Result<usize, MountsError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(self.host_error("read directory", &self.dir, e)),
        };
        let mut keys: Vec<String> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let key = [".list", ".lock", ".mutex", ".json"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .or_else(|| name.strip_prefix('.')?.strip_suffix(".tmp"))?;
                let is_key =
                    !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
                is_key.then(|| key.to_owned())
            })
            .collect();
        keys.sort();
        keys.dedup();
        let mut removed = 0;
        for key in keys {
            let _mutex = self.mutex(&key)?;
            removed += self.remove_if_last(&key, None)?;
        }
        Ok(removed)
    }
}

impl LedgerHold {
    pub(crate) fn ledger(&self) -> TargetLedger {
        self.ledger.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn target(path: &[u8], made: Option<(u64, u64)>) -> Target {
        Target {
            path: PathBuf::from(OsStr::from_bytes(path)),
            made,
        }
    }

    #[test]
    fn lists_round_trip_whatever_bytes_the_paths_hold() {
        let list = List {
            rootfs: Some(PathBuf::from("/r\n/etc")),
            targets: vec![
                target(b"/foo\n/etc", None),
                target(b"/a b/\xff\n", Some((2049, 77))),
                target(b"/1:2 C 3:4 5:/x", Some((0, u64::MAX))),
            ],
        };
        let bytes = list.encode();
        assert_eq!(
            bytes,
            b"ocirun-targets 2\nR 7:/r\n/etc\nP 9:/foo\n/etc\nC 2049:77 7:/a b/\xff\n\n\
              C 0:18446744073709551615 15:/1:2 C 3:4 5:/x\n"
        );
        assert_eq!(List::decode(&bytes), Some(list));
    }

    #[test]
    fn lists_that_do_not_parse_are_refused() {
        for bad in [
            &b""[..],
            b"/etc\n/usr\n",
            b"ocirun-targets 2\nP 4:/etc",
            b"ocirun-targets 2\nP 3:/etc\n",
            b"ocirun-targets 2\nP 5:/etc\n",
            b"ocirun-targets 2\nP 3:etc\n",
            b"ocirun-targets 2\nP 0:\n",
            b"ocirun-targets 2\nC 1 4:/etc\n",
            b"ocirun-targets 2\nX 4:/etc\n",
            b"ocirun-targets 2\nP 4:/etc\nR 2:/r\n",
            b"ocirun-targets 2\nP 99999999999999999999999:/etc\n",
        ] {
            assert_eq!(
                List::decode(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(List::decode(b"ocirun-targets 2\n"), Some(List::default()));
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let state = tempfile::tempdir().unwrap();
        let ledger = TargetLedger::new(state.path());
        // The list's path is taken by a directory: the rename of the new list fails.
        std::fs::create_dir_all(state.path().join("k.list/x")).unwrap();
        let list = List {
            rootfs: Some("/r".into()),
            targets: vec![target(b"/t", None)],
        };
        let err = ledger.write("k", &list).unwrap_err();
        assert_eq!(
            crate::test_spec::describe(&err),
            format!(
                "write {:?}: Is a directory (os error 21)",
                state.path().join("k.list")
            )
        );
        assert!(!state.path().join(".k.tmp").exists());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut with_header = VERSION_LINE.to_vec();
            with_header.extend_from_slice(&bytes);
            let _ = List::decode(&bytes);
            let _ = List::decode(&with_header);
        }

        #[test]
        fn any_list_round_trips(
            rootfs in proptest::collection::vec(1u8..=255, 0..20),
            paths in proptest::collection::vec(
                (proptest::collection::vec(1u8..=255, 0..20), proptest::option::of(any::<(u64, u64)>())),
                0..5,
            ),
        ) {
            let abs = |b: &[u8]| {
                let mut p = b"/".to_vec();
                p.extend_from_slice(b);
                PathBuf::from(OsStr::from_bytes(&p))
            };
            let list = List {
                rootfs: Some(abs(&rootfs)),
                targets: paths.iter().map(|(p, made)| Target { path: abs(p), made: *made }).collect(),
            };
            prop_assert_eq!(List::decode(&list.encode()), Some(list));
        }
    }
}
