//! Crash safety: every run records itself, so that what a dead supervisor left behind can be
//! found and removed (`ocirun gc`).
//!
//! Protocol:
//! 1. before `runtime create`, the supervisor writes `<dir>/<container id>.json`
//!    ([`RunRecord`]): the container id, its own pid and start time, the bundle, the runtime
//!    and its state root;
//! 2. after the container is deleted and the bundle removed, it removes the record (the
//!    [`RecordGuard`] does it on drop, on every path);
//! 3. a record whose supervisor is gone (no process with that pid, or one started at another
//!    time: the pid was reused) is stale: [`RecordStore::stale`] lists them, and
//!    [`RunRecord::clean_up`] deletes the container with `--force`, removes the bundle and
//!    then the record.
//!
//! Names: [`NameLocks::claim`] takes an exclusive lock on `<dir>/<name>.lock` for the life of
//! the run, so two runs with the same `--name` never share state; the second fails at once,
//! naming the first one's pid. The `ocirun` binary keeps these locks beside the state they
//! protect, under the persistent root ([`StateLayout::names`](crate::StateLayout::names)), so
//! that runs with different run roots exclude each other too.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::{ContainerId, ContainerName, DriverError, Runtime};

/// What one run records about itself (JSON, one file per run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// The container id given to the runtime.
    pub container_id: ContainerId,
    /// The supervisor's pid.
    pub supervisor_pid: i32,
    /// The supervisor's start time, in clock ticks after boot (field 22 of /proc/PID/stat),
    /// to tell a live supervisor from a reused pid.
    pub supervisor_start_time: u64,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The runtime program.
    pub runtime: PathBuf,
    /// The runtime's state root (`--root`).
    pub runtime_root: PathBuf,
    /// The runtime's other global flags.
    pub runtime_flags: Vec<String>,
    /// The rootfs of the run, for cleaning up what was created in it.
    pub rootfs: Option<PathBuf>,
    /// Why the last attempt to clean the run up failed, if one did: the start-up sweep of a
    /// run leaves such a record to `ocirun gc`, so that a hung runtime never holds up a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_failed: Option<String>,
}

impl RunRecord {
    /// A record of the run of `container_id` in `bundle` with `runtime`, supervised by this
    /// process.
    ///
    /// # Errors
    /// [`DriverError::Bundle`] if this process's start time cannot be read.
    pub fn new(
        container_id: &ContainerId,
        bundle: &Path,
        runtime: &Runtime,
        rootfs: Option<&Path>,
    ) -> Result<Self, DriverError> {
        let pid = std::process::id() as i32;
        let supervisor_start_time = start_time(pid).ok_or(DriverError::StartTime { pid })?;
        Ok(Self {
            container_id: container_id.clone(),
            supervisor_pid: pid,
            supervisor_start_time,
            bundle: bundle.to_path_buf(),
            runtime: runtime.program().to_path_buf(),
            runtime_root: runtime.root().to_path_buf(),
            runtime_flags: runtime
                .global_flags()
                .map(|f| f.to_string_lossy().into_owned())
                .collect(),
            rootfs: rootfs.map(Path::to_path_buf),
            cleanup_failed: None,
        })
    }

    /// Whether the supervisor that wrote the record still runs: a process with its pid and
    /// start time exists and is not a zombie (a supervisor killed but not yet reaped is dead).
    pub fn supervisor_alive(&self) -> bool {
        live_start_time(self.supervisor_pid) == Some(self.supervisor_start_time)
    }

    /// Deletes the record's container (`delete --force` with the recorded runtime, root and
    /// flags, after `kill ID KILL` and a wait of at most 2 s when it still runs; each call is
    /// killed after `timeout`) and removes its bundle directory. The
    /// record file itself is removed by [`RecordStore::remove`].
    ///
    /// # Errors
    /// [`DriverError::Runtime`] if the runtime cannot delete the container,
    /// [`DriverError::RuntimeTimeout`] if it takes too long; [`DriverError::Bundle`] if the
    /// bundle cannot be removed.
    pub fn clean_up(&self, timeout: std::time::Duration) -> Result<(), DriverError> {
        let mut runtime = Runtime::from_parts(&self.runtime, &self.runtime_root);
        for flag in &self.runtime_flags {
            runtime = runtime.global_flag(flag);
        }
        stop_first(&runtime, &self.container_id, timeout);
        runtime.force_delete(&self.container_id, timeout)?;
        match std::fs::remove_dir_all(&self.bundle) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(DriverError::Bundle {
                action: "remove bundle directory",
                path: self.bundle.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Before the forced delete of a recorded container that still runs: `runtime state ID` and
/// `runtime kill ID KILL` (each killed after `timeout`), then a wait of at most `timeout` (and
/// 2 s) until its process has exited. `delete --force`
/// would kill it too, but youki 0.7 does that through the container's cgroup, which a run
/// without root on cgroup v1 has not (`failed to read /sys/fs/cgroup/devices/:youki:ID`); a
/// stopped container it deletes without one. Best effort: what fails here is left to the
/// forced delete, whose error is the one reported.
fn stop_first(runtime: &Runtime, id: &ContainerId, timeout: std::time::Duration) {
    use oci_spec::runtime::ContainerState;
    let Ok(state) = runtime.state_within(id, timeout) else {
        return;
    };
    if !matches!(
        state.status(),
        ContainerState::Running | ContainerState::Created
    ) {
        return;
    }
    let Some(pid) = state.pid().filter(|pid| *pid > 0) else {
        return;
    };
    // Opened before the signal, so that the pid cannot name another process meanwhile.
    let Ok(pidfd) = crate::process::pidfd_open(pid) else {
        return;
    };
    if runtime.kill_within(id, "KILL", timeout).is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + timeout.min(std::time::Duration::from_secs(2));
    let left = || deadline.saturating_duration_since(std::time::Instant::now());
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&pidfd),
        nix::poll::PollFlags::POLLIN,
    )];
    let wait =
        nix::poll::PollTimeout::try_from(left().as_millis()).unwrap_or(nix::poll::PollTimeout::MAX);
    let _ = nix::poll::poll(&mut fds, wait);
    // Exited; a runtime tells a stopped container by kill(pid, 0), which a zombie passes: wait
    // for its parent to reap it too.
    while !left().is_zero() && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The directory of run records (`/run/ocirun/records` for the `ocirun` binary).
#[derive(Debug, Clone)]
pub struct RecordStore {
    dir: PathBuf,
}

/// A written record; dropping it removes the record file.
#[derive(Debug)]
#[must_use = "dropping the guard removes the record at once"]
pub struct RecordGuard {
    path: PathBuf,
}

impl RecordGuard {
    /// Leaves the record in place: its run left something that `ocirun gc` must clean up.
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!(record = %self.path.display(), error = %e, "cannot remove record");
            }
        }
    }
}

/// The exclusive claim on a container name, held for the life of a run. Dropping it removes
/// the lock file, so that names used once do not pile up.
#[derive(Debug)]
pub struct NameLock {
    path: PathBuf,
    lock: Option<Flock<File>>,
}

impl Drop for NameLock {
    fn drop(&mut self) {
        // Unlinked while still locked: a run that opened the old file before the unlink finds
        // it unlinked after locking it, and opens the path again.
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(lock = %self.path.display(), error = %e, "cannot remove name lock");
        }
        drop(self.lock.take());
    }
}

/// Whether `file` is still the file at `path` (not unlinked or replaced since it was opened).
fn still_linked(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl RecordStore {
    /// The store in `dir` (created, mode 0700, when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn io_error(&self, action: &'static str, path: &Path, source: std::io::Error) -> DriverError {
        DriverError::Bundle {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    fn ensure_dir(&self, dir: &Path) -> Result<(), DriverError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| self.io_error("create directory", dir, e))
    }

    /// Writes `record` atomically (temporary file, then rename) and returns the guard that
    /// removes it.
    ///
    /// # Errors
    /// [`DriverError::Bundle`] naming the file.
    pub fn write(&self, record: &RunRecord) -> Result<RecordGuard, DriverError> {
        self.ensure_dir(&self.dir)?;
        let path = self.dir.join(format!("{}.json", record.container_id));
        // The writer's pid in the name: gc removes the temporary file of a writer that died.
        let tmp = self.dir.join(format!(
            ".{}.json.{}.tmp",
            record.container_id,
            std::process::id()
        ));
        let json = serde_json::to_vec_pretty(record)
            .map_err(|e| self.io_error("serialize record", &path, std::io::Error::other(e)))?;
        let written = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            // A full disk, say: no partial file stays.
            let _ = std::fs::remove_file(&tmp);
            return Err(self.io_error("write record", &path, e));
        }
        Ok(RecordGuard { path })
    }

    /// Every record in the store whose supervisor is gone. Unreadable record files are
    /// skipped with a warning.
    ///
    /// # Errors
    /// [`DriverError::Bundle`] if the directory exists but cannot be read.
    pub fn stale(&self) -> Result<Vec<RunRecord>, DriverError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_error("read directory", &self.dir, e)),
        };
        let mut stale = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let record: RunRecord = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(record) => record,
                Err(e) if e.contains("No such file") => continue,
                Err(e) => {
                    tracing::warn!(record = %path.display(), error = %e, "unreadable record");
                    continue;
                }
            };
            if !record.supervisor_alive() {
                stale.push(record);
            }
        }
        stale.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(stale)
    }

    /// Writes `reason` into `record`'s file as [`RunRecord::cleanup_failed`], so that the
    /// start-up sweep of later runs leaves it to `ocirun gc`.
    ///
    /// # Errors
    /// [`DriverError::Bundle`] naming the file.
    pub fn mark_cleanup_failed(&self, record: &RunRecord, reason: &str) -> Result<(), DriverError> {
        let mut failed = record.clone();
        failed.cleanup_failed = Some(reason.to_owned());
        self.write(&failed)?.keep();
        Ok(())
    }

    /// Removes the temporary files of record writers that died (`.ID.json.PID.tmp` whose
    /// process is gone). Returns how many it removed.
    pub fn sweep_temporaries(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_suffix(".tmp")
                .and_then(|n| n.rsplit_once(".json."))
                .and_then(|(_, pid)| pid.parse::<i32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists()
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }

    /// Removes the record of `container_id`; a missing one is not an error.
    ///
    /// # Errors
    /// [`DriverError::Bundle`] if it exists and cannot be removed.
    pub fn remove(&self, container_id: &ContainerId) -> Result<(), DriverError> {
        let path = self.dir.join(format!("{container_id}.json"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(self.io_error("remove record", &path, e))
            }
            _ => Ok(()),
        }
    }
}

/// The name locks in one directory (`ROOT/names` for the `ocirun` binary): one file per
/// name held, `<dir>/<name>.lock`, made when a run claims the name and removed when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameLocks {
    dir: PathBuf,
}

impl NameLocks {
    /// The locks in `dir` (created, mode 0700, when a name is first claimed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Claims the container name `name` for this run: an exclusive, non-blocking lock on
    /// `<dir>/<name>.lock`, which holds the pid of the run that has it. The kernel drops
    /// the lock when the process dies, so a crashed run never keeps a name.
    ///
    /// # Errors
    /// [`DriverError::NameInUse`] when another live run holds the name;
    /// [`DriverError::Bundle`] if the lock file cannot be opened.
    pub fn claim(&self, name: &ContainerName) -> Result<NameLock, DriverError> {
        let io_error = |action, path: &Path, source| DriverError::Bundle {
            action,
            path: path.to_path_buf(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| io_error("create directory", &self.dir, e))?;
        let path = self.dir.join(format!("{name}.lock"));
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|e| io_error("open", &path, e))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    if !still_linked(&path, &lock) {
                        // The run that had the name ended and removed this file meanwhile.
                        continue;
                    }
                    let pid = std::process::id().to_string();
                    lock.set_len(0)
                        .and_then(|()| lock.rewind())
                        .and_then(|()| lock.write_all(pid.as_bytes()))
                        .map_err(|e| io_error("write", &path, e))?;
                    return Ok(NameLock {
                        path,
                        lock: Some(lock),
                    });
                }
                Err((mut file, _)) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    return Err(DriverError::NameInUse {
                        name: name.to_string(),
                        pid: holder.trim().to_owned(),
                    });
                }
            }
        }
    }
}

/// Field 22 (starttime) of /proc/PID/stat; `None` when there is no such process.
fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.nth(19)?.parse().ok()
}

/// [`start_time`] of a process that is not a zombie (field 3, the state, is not `Z` or `X`).
fn live_start_time(pid: i32) -> Option<u64> {
    let mut fields = stat_fields(pid)?;
    let state = fields.next()?;
    if matches!(state.as_str(), "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// The fields of /proc/PID/stat after the command name (the state first).
fn stat_fields(pid: i32) -> Option<std::vec::IntoIter<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    Some(
        after_comm
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .into_iter(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> Runtime {
        Runtime::discover("true", "/bin:/usr/bin", "/run/none").unwrap()
    }

    #[test]
    fn a_live_run_is_not_stale_and_a_dead_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::new(dir.path().join("records"));
        let id = |s: &str| s.parse::<ContainerId>().unwrap();
        let live =
            RunRecord::new(&id("live"), Path::new("/nonexistent/b1"), &runtime(), None).unwrap();
        let guard = store.write(&live).unwrap();
        assert!(store.stale().unwrap().is_empty());

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id() as i32;
        child.wait().unwrap();
        let mut dead = live.clone();
        dead.container_id = id("dead");
        dead.supervisor_pid = dead_pid;
        let _dead_guard = store.write(&dead).unwrap();
        assert_eq!(store.stale().unwrap(), [dead.clone()]);

        drop(guard);
        assert!(!dir.path().join("records/live.json").exists());
        store.remove(&id("dead")).unwrap();
        store.remove(&id("dead")).unwrap();
        assert!(store.stale().unwrap().is_empty());
    }

    #[test]
    fn a_name_is_held_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = NameLocks::new(dir.path().join("names"));
        let n1: ContainerName = "n1".parse().unwrap();
        let first = store.claim(&n1).unwrap();
        // flock locks belong to the open file description: a second open conflicts even in
        // the same process.
        let err = store.claim(&n1).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "container name \"n1\" is in use by the ocirun process {}",
                std::process::id()
            )
        );
        drop(first);
        let again = store.claim(&n1).unwrap();
        drop(again);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("names"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "no lock file is left: {left:?}");
    }

    #[test]
    fn temporaries_of_dead_writers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::new(dir.path());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        for name in [
            format!(".a.json.{dead}.tmp"),
            format!(".b.json.{me}.tmp"),
            "c.json".to_owned(),
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        assert_eq!(store.sweep_temporaries(), 1);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [format!(".b.json.{me}.tmp"), "c.json".to_owned()]);
    }

    #[test]
    fn start_time_of_this_process() {
        assert!(start_time(std::process::id() as i32).is_some());
        assert_eq!(start_time(-5), None);
    }
}
