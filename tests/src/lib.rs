//! Support for the end-to-end tests of ocirun (the test files are in `tests/tests/`).
//!
//! The tests drive the real `ocirun` binary against a real OCI runtime and real root
//! filesystems. What they need is found here, and a test that cannot run fails saying why;
//! nothing is skipped:
//!
//! - the binary: `$OCIRUN_BIN`, else `<target dir>/debug/ocirun`;
//! - the fixtures: `$OCIRUN_TEST_BUSYBOX_ROOTFS` and `$OCIRUN_TEST_DEBIAN_ROOTFS`, else
//!   `<workspace>/target/fixtures/{busybox,debian}`;
//! - root, and the runtime under test ([`runtime`]: `$OCIRUN_RUNTIME`, which ocirun reads too,
//!   else runc) where ocirun looks for it. The harness checks and cleans up the runtime's state
//!   with that runtime, and the tests' stand-in runtimes run it.
//!
//! `cargo xtask e2e [--runtime NAME|PATH]` builds all of them and sets the variables. Two more variables steer the
//! cgroup tests (`tests/cgroup.rs`): `OCIRUN_E2E_CGROUP=v1|v2`, the cgroup version the machine
//! is known to have (`cargo xtask vm` sets it in each guest; else it is read from
//! /proc/self/mountinfo, see [`cgroup_version`]), and `OCIRUN_E2E_FLIP=1`, which makes one
//! assertion fail on purpose so that the failure report of `cargo xtask e2e` and `cargo xtask
//! vm` can be checked. In the guest, `OCIRUN_E2E_VM=1` is set too ([`in_vm`]): there the
//! heavy tests do less ([`lighter_in_vm`]) and the time limits are ten times longer ([`slack`]).
//!
//! Each test makes a [`Sandbox`]: a private copy of the busybox rootfs (or the shared Debian
//! one, which is too big to copy) and a private `--runroot`, so tests run in parallel. A test
//! runs ocirun with [`Sandbox::run`], asserts on the [`Output`] a user would see, and ends with
//! [`Sandbox::assert_nothing_left`]: no container in the runtime's state, no bundle, no new
//! mount, and the rootfs tree as it was.

#![deny(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod pty;
pub mod user;

pub use user::{test_user, TestUser};

/// How long one ocirun invocation may take on the host before the test kills it and fails: a
/// hang must fail the suite, not block CI. The limit that applies is [`slack`]`(TIMEOUT)`.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// How many times longer a step may take in `cargo xtask vm`'s emulated guest than on the host
/// (see [`in_vm`]).
pub const VM_SLOWDOWN: u32 = 10;

/// Where ocirun looks for runtimes besides `PATH` (crates/cli: runc is in /usr/sbin on Debian).
const RUNTIME_EXTRA_PATH: &str = "/usr/local/sbin:/usr/sbin:/sbin";

const HOW_TO_RUN: &str = "run the suite with `cargo xtask e2e`, which builds the binary and the \
                          fixtures and sets OCIRUN_BIN, OCIRUN_TEST_BUSYBOX_ROOTFS and \
                          OCIRUN_TEST_DEBIAN_ROOTFS";

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives inside the workspace")
        .to_path_buf()
}

/// A path from the environment variable `var` (made absolute against the workspace), else
/// `default`.
fn path_from_env(var: &str, default: PathBuf) -> PathBuf {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(v) => workspace_root().join(v),
        None => default,
    }
}

/// The ocirun binary under test: `$OCIRUN_BIN`, else `<target dir>/debug/ocirun`.
///
/// # Panics
/// If it does not exist, saying to run `cargo xtask e2e`.
pub fn ocirun_bin() -> PathBuf {
    let target = path_from_env("CARGO_TARGET_DIR", workspace_root().join("target"));
    let bin = path_from_env("OCIRUN_BIN", target.join("debug").join("ocirun"));
    assert!(
        bin.is_file(),
        "the ocirun binary {} does not exist: {HOW_TO_RUN}",
        bin.display()
    );
    bin
}

fn fixture(var: &str, name: &str) -> PathBuf {
    let default = workspace_root().join("target").join("fixtures").join(name);
    let dir = path_from_env(var, default);
    assert!(
        dir.join("bin").exists() && dir.join("etc").is_dir(),
        "the {name} fixture {} does not exist or is not a root filesystem (no bin, etc): \
         {HOW_TO_RUN}",
        dir.display()
    );
    dir
}

/// The busybox fixture (shared, never written to: tests use a copy, see [`Sandbox::busybox`]).
///
/// # Panics
/// If it does not exist, saying to run `cargo xtask e2e`.
pub fn busybox_fixture() -> PathBuf {
    fixture("OCIRUN_TEST_BUSYBOX_ROOTFS", "busybox")
}

/// The Debian fixture (shared by the tests that use it; about 200 MB, so never copied).
///
/// # Panics
/// If it does not exist, saying to run `cargo xtask e2e`.
pub fn debian_fixture() -> PathBuf {
    fixture("OCIRUN_TEST_DEBIAN_ROOTFS", "debian")
}

/// The runtime under test: `$OCIRUN_RUNTIME` (a path, or a name), else `runc`, found where
/// ocirun finds it (a value with a `/` as it is; a name in `PATH`, then the sbin directories).
/// ocirun uses it too, through the same variable.
///
/// # Panics
/// If it cannot be found, saying so.
pub fn runtime() -> PathBuf {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let name = std::env::var("OCIRUN_RUNTIME")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "runc".to_owned());
            let executable = |p: &Path| {
                p.metadata()
                    .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
            };
            if name.contains('/') {
                let path = PathBuf::from(&name);
                assert!(
                    executable(&path),
                    "the runtime under test {name} (OCIRUN_RUNTIME) is no executable file"
                );
                return path;
            }
            let path = std::env::var("PATH").unwrap_or_default();
            format!("{path}:{RUNTIME_EXTRA_PATH}")
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| Path::new(d).join(&name))
                .find(|p| executable(p))
                .unwrap_or_else(|| {
                    panic!(
                        "the runtime under test, {name}, is not in PATH or {RUNTIME_EXTRA_PATH}: \
                         the e2e tests need a real runtime (apt-get install runc, or set \
                         OCIRUN_RUNTIME)"
                    )
                })
        })
        .clone()
}

/// The file name of [`runtime`]: what ocirun calls it in its messages (`runc run failed`).
pub fn runtime_name() -> String {
    runtime()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Checks, once per test binary, that the tests can run here: root, the runtime, the binary.
///
/// # Panics
/// With the reason when they cannot.
pub fn preflight() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status")
            .expect("cannot read /proc/self/status to check that the tests run as root");
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .expect("no Uid line in /proc/self/status");
        assert_eq!(
            euid, "0",
            "the e2e tests must run as root: they create real containers \
             (effective uid is {euid}); {HOW_TO_RUN} as root"
        );
        runtime();
        ocirun_bin();
    });
}

/// What one ocirun invocation left for its user to see.
#[derive(Debug, Clone)]
pub struct Output {
    /// Everything ocirun wrote to its stdout.
    pub stdout: Vec<u8>,
    /// Everything ocirun wrote to its stderr (lossily decoded).
    pub stderr: String,
    /// ocirun's exit code.
    pub code: i32,
    /// How long ocirun ran.
    pub elapsed: Duration,
}

impl Output {
    /// stdout as text.
    ///
    /// # Panics
    /// If it is not UTF-8.
    pub fn stdout_text(&self) -> &str {
        std::str::from_utf8(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not UTF-8 ({e}); stderr: {}", self.stderr))
    }

    /// Asserts the exit code, showing stdout and stderr when it differs.
    ///
    /// # Panics
    /// If the code differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            code,
            "unexpected exit code; stdout: {:?}; stderr: {:?}",
            truncated(&self.stdout),
            self.stderr
        );
        self
    }

    /// Asserts exit code 0, stdout exactly `stdout`, and an empty stderr: a successful run.
    ///
    /// # Panics
    /// If any differs.
    #[track_caller]
    pub fn assert_success(&self, stdout: &str) -> &Self {
        self.assert_code(0);
        assert_eq!(
            self.stdout_text(),
            stdout,
            "stdout; stderr: {:?}",
            self.stderr
        );
        assert_eq!(self.stderr, "", "stderr of a successful run");
        self
    }

    /// Asserts that ocirun failed with `code`, printed nothing on stdout, and said
    /// `stderr_part` on stderr.
    ///
    /// # Panics
    /// If any differs.
    #[track_caller]
    pub fn assert_failure(&self, code: i32, stderr_part: &str) -> &Self {
        self.assert_code(code);
        assert!(
            self.stderr.contains(stderr_part),
            "stderr {:?} does not contain {stderr_part:?}",
            self.stderr
        );
        assert_eq!(self.stdout_text(), "", "stdout of a failed run");
        self
    }
}

fn truncated(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(400)]).into_owned();
    if bytes.len() > 400 {
        format!("{text}... ({} bytes)", bytes.len())
    } else {
        text
    }
}

/// What ocirun gets as its stdin.
#[derive(Debug, Clone)]
enum Input {
    /// /dev/null.
    Null,
    /// A pipe that delivers these bytes, then EOF.
    Bytes(Vec<u8>),
    /// A pipe that stays open, without data, until ocirun has exited.
    HeldOpen,
}

/// One ocirun command line to run, with its stdin and environment.
#[derive(Debug, Clone)]
pub struct Ocirun {
    args: Vec<OsString>,
    stdin: Input,
    env: Vec<(OsString, Option<OsString>)>,
    timeout: Duration,
    runroot: Option<PathBuf>,
    cwd: Option<PathBuf>,
    user: Option<(u32, u32, PathBuf)>,
}

impl Ocirun {
    /// `ocirun ARGS...`, with stdin from /dev/null.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self {
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            stdin: Input::Null,
            env: Vec::new(),
            timeout: slack(TIMEOUT),
            runroot: None,
            cwd: None,
            user: None,
        }
    }

    /// Runs ocirun as `user` (its uid and gid, no supplementary groups, its `HOME`, `USER` and
    /// `LOGNAME`, no `XDG_RUNTIME_DIR` or `XDG_DATA_HOME`), as a login of that user would.
    pub fn as_user(mut self, user: &TestUser) -> Self {
        self.user = Some((user.uid, user.gid, user.home.clone()));
        self
    }

    /// Sets up `cmd` for [`Self::as_user`].
    fn apply_user(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        if let Some((uid, gid, home)) = &self.user {
            // std drops the supplementary groups when it sets the uid of a root process.
            cmd.uid(*uid).gid(*gid);
            cmd.env("HOME", home)
                .env("USER", user::NAME)
                .env("LOGNAME", user::NAME)
                .env_remove("XDG_RUNTIME_DIR")
                .env_remove("XDG_DATA_HOME");
        }
    }

    /// Feeds `bytes` to ocirun's stdin (a pipe, closed after the last byte).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Input::Bytes(bytes.into());
        self
    }

    /// Gives ocirun a stdin pipe that never delivers data nor EOF while ocirun runs (like
    /// `sleep 100 | ocirun run ...`): a command that does not read stdin must not wait for it.
    pub fn stdin_held_open(mut self) -> Self {
        self.stdin = Input::HeldOpen;
        self
    }

    /// Sets an environment variable of the ocirun process.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable from the ocirun process.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Runs ocirun in the directory `dir` (for relative paths on its command line).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Overrides [`slack`]`(`[`TIMEOUT`]`)` with exactly `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The runroot whose containers are force-deleted if ocirun has to be killed on timeout.
    fn cleanup_runroot(mut self, runroot: &Path) -> Self {
        self.runroot = Some(runroot.to_owned());
        self
    }

    /// The command line as a `std::process::Command` (arguments and environment; stdio left
    /// to the caller), for a test that wires ocirun's stdio itself and enforces its own
    /// timeout.
    ///
    /// # Panics
    /// If the tests cannot run here (see [`preflight`]).
    pub fn command(&self) -> Command {
        preflight();
        let mut cmd = Command::new(ocirun_bin());
        cmd.args(&self.args);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        self.apply_user(&mut cmd);
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// Starts ocirun; see [`Running::wait`].
    ///
    /// # Panics
    /// If it cannot be started.
    pub fn spawn(self) -> Running {
        preflight();
        let bin = ocirun_bin();
        let mut cmd = Command::new(&bin);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        self.apply_user(&mut cmd);
        cmd.args(&self.args)
            .stdin(match self.stdin {
                Input::Null => Stdio::null(),
                Input::Bytes(_) | Input::HeldOpen => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut held_stdin = None;
        let stdin_writer = match (self.stdin, child.stdin.take()) {
            (Input::Bytes(bytes), Some(mut pipe)) => Some(std::thread::spawn(move || {
                // ocirun may exit before reading everything (EPIPE); the test's assertions on
                // the output say whether that was wrong.
                let _ = pipe.write_all(&bytes);
            })),
            (Input::HeldOpen, pipe) => {
                held_stdin = pipe;
                None
            }
            _ => None,
        };
        let stdout = Some(read_all(child.stdout.take().expect("stdout is piped")));
        let stderr = Some(read_all(child.stderr.take().expect("stderr is piped")));
        Running {
            child,
            label: format!("ocirun {:?}", self.args),
            started,
            timeout: self.timeout,
            runroot: self.runroot,
            stdin_writer,
            held_stdin,
            stdout,
            stderr,
        }
    }

    /// Runs ocirun to its end.
    ///
    /// # Panics
    /// If it cannot be started, does not end within the timeout (it is then killed), or is
    /// killed by a signal.
    pub fn run(self) -> Output {
        self.spawn().wait()
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes)
            .expect("cannot read ocirun's output");
        bytes
    })
}

/// An ocirun process that was started by [`Ocirun::spawn`].
#[derive(Debug)]
pub struct Running {
    child: Child,
    label: String,
    started: Instant,
    timeout: Duration,
    runroot: Option<PathBuf>,
    stdin_writer: Option<JoinHandle<()>>,
    held_stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    /// The ocirun process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for ocirun to exit and for its output to end.
    ///
    /// # Panics
    /// If ocirun does not exit within the timeout (it is killed, and so are the containers in
    /// its runroot), or if it was killed by a signal.
    pub fn wait(mut self) -> Output {
        let deadline = self.started + self.timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("cannot wait for ocirun") {
                break status;
            }
            if Instant::now() >= deadline {
                self.kill_on_timeout();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // ocirun has exited; its output pipes must end too (a container process still holding
        // them would be a leak, which the timeout also catches).
        let finished = |h: &Option<JoinHandle<Vec<u8>>>| h.as_ref().is_none_or(|h| h.is_finished());
        while !(finished(&self.stdout) && finished(&self.stderr)) {
            if Instant::now() >= deadline {
                self.kill_on_timeout();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let elapsed = self.started.elapsed();
        drop(self.held_stdin.take());
        let output = |h: Option<JoinHandle<Vec<u8>>>| {
            h.expect("output is read once")
                .join()
                .expect("output reader panicked")
        };
        let stdout = output(self.stdout.take());
        let stderr = String::from_utf8_lossy(&output(self.stderr.take())).into_owned();
        if let Some(writer) = self.stdin_writer.take() {
            if writer.is_finished() {
                writer.join().expect("stdin writer panicked");
            }
        }
        let code = status.code().unwrap_or_else(|| {
            panic!(
                "{} was killed by {status}; stdout: {:?}; stderr: {stderr:?}",
                self.label,
                truncated(&stdout)
            )
        });
        Output {
            stdout,
            stderr,
            code,
            elapsed,
        }
    }

    fn kill_on_timeout(&mut self) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(runroot) = &self.runroot {
            force_delete_containers(runroot);
        }
        panic!(
            "{} did not finish within {:?}: killed it (and its containers)",
            self.label, self.timeout
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that panicked before `wait` must not leave ocirun running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The container ids in the runtime state of `runroot`: the directories in `RUNROOT/runtime`,
/// where runc, youki and crun each keep one per container (no runtime is asked: `youki list
/// -q` prints its table all the same, and runc lists nothing of another runtime's); none when
/// that directory does not exist.
///
/// # Panics
/// If the directory exists but cannot be read.
pub fn runtime_containers(runroot: &Path) -> Vec<String> {
    let root = runroot.join("runtime");
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", root.display()),
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    ids.sort();
    ids
}

/// Best effort: `RUNTIME delete --force` every container in `runroot`'s runtime state (with
/// the runtime under test), so that a failed test does not leave containers running.
pub fn force_delete_containers(runroot: &Path) {
    let root = runroot.join("runtime");
    for id in runtime_containers(runroot) {
        let _ = Command::new(runtime())
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The mount points of this process's mount namespace (field 5 of /proc/self/mountinfo) with
/// how often each is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSnapshot(BTreeMap<String, usize>);

impl MountSnapshot {
    /// Reads /proc/self/mountinfo.
    ///
    /// # Panics
    /// If it cannot be read.
    pub fn take() -> Self {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .expect("cannot read /proc/self/mountinfo");
        let mut points = BTreeMap::new();
        for line in text.lines() {
            if let Some(point) = line.split(' ').nth(4) {
                *points.entry(point.to_owned()).or_insert(0) += 1;
            }
        }
        Self(points)
    }

    /// The mount points (with their counts) that `self` has more of than `before`.
    pub fn added_since(&self, before: &Self) -> Vec<(String, usize)> {
        self.0
            .iter()
            .filter_map(|(point, &n)| {
                let was = before.0.get(point).copied().unwrap_or(0);
                (n > was).then(|| (point.clone(), n - was))
            })
            .collect()
    }
}

/// A directory tree: every path below the root (relative, not following symlinks) with its
/// type, mode and owner, and the size of regular files. Times are left out: creating and
/// removing a mount target changes a directory's mtime, and that is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSnapshot {
    root: PathBuf,
    entries: BTreeMap<PathBuf, String>,
}

impl TreeSnapshot {
    /// Walks `root`.
    ///
    /// # Panics
    /// If a directory cannot be read.
    pub fn take(root: &Path) -> Self {
        let mut entries = BTreeMap::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let dir = root.join(&rel);
            let read = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot read directory {}: {e}", dir.display()));
            for entry in read {
                let entry = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
                let path = rel.join(entry.file_name());
                let meta = entry
                    .metadata()
                    .unwrap_or_else(|e| panic!("cannot stat {}: {e}", root.join(&path).display()));
                let ft = meta.file_type();
                let kind = if ft.is_dir() {
                    stack.push(path.clone());
                    "dir".to_owned()
                } else if ft.is_symlink() {
                    let target = std::fs::read_link(root.join(&path)).unwrap_or_default();
                    format!("symlink -> {}", target.display())
                } else if ft.is_file() {
                    format!("file {} bytes", meta.len())
                } else if ft.is_char_device() || ft.is_block_device() {
                    format!("device {:x}", meta.rdev())
                } else {
                    "special".to_owned()
                };
                let desc = format!(
                    "{kind}, mode {:o}, owner {}:{}",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid()
                );
                entries.insert(path, desc);
            }
        }
        Self {
            root: root.to_owned(),
            entries,
        }
    }

    /// The directory this is a snapshot of.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The description of `rel` (type, mode, owner), if it exists in the snapshot.
    pub fn get(&self, rel: impl AsRef<Path>) -> Option<&str> {
        self.entries.get(rel.as_ref()).map(String::as_str)
    }

    /// What differs from `before`, except the paths in `expected_new`, which must be new: one
    /// line per difference, empty when the trees are equal.
    pub fn differences(&self, before: &Self, expected_new: &[&str]) -> Vec<String> {
        let expected: BTreeSet<&Path> = expected_new.iter().map(Path::new).collect();
        let mut out = Vec::new();
        for (path, was) in &before.entries {
            match self.entries.get(path) {
                None => out.push(format!("removed: {} ({was})", path.display())),
                Some(now) if now != was => {
                    out.push(format!("changed: {}: {was} -> {now}", path.display()));
                }
                Some(_) => {}
            }
        }
        for (path, now) in &self.entries {
            if !before.entries.contains_key(path) && !expected.contains(path.as_path()) {
                out.push(format!("left behind: {} ({now})", path.display()));
            }
        }
        for path in expected {
            if before.entries.contains_key(path) {
                out.push(format!(
                    "expected to be new but was there before: {}",
                    path.display()
                ));
            } else if !self.entries.contains_key(path) {
                out.push(format!("expected but missing: {}", path.display()));
            }
        }
        out
    }
}

/// The processes (pid, comm) whose root directory is `dir` (the same inode, seen through
/// /proc/PID/root): what is still running inside a container on that rootfs.
pub fn processes_rooted_at(dir: &Path) -> Vec<(u32, String)> {
    let Ok(target) = std::fs::metadata(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in proc_dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(root) = std::fs::metadata(entry.path().join("root")) else {
            continue;
        };
        if root.dev() == target.dev() && root.ino() == target.ino() {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push((pid, comm.trim_end().to_owned()));
        }
    }
    found
}

/// The parent pid and command name of process `pid`, from /proc/PID/stat; `None` when it is
/// gone.
pub fn ppid_and_comm(pid: u32) -> Option<(u32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; it ends at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let ppid = stat[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
    Some((ppid, comm))
}

/// The children of `parent` named `comm`, from a scan of /proc.
pub fn children_named(parent: u32, comm: &str) -> Vec<u32> {
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc_dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| ppid_and_comm(pid).is_some_and(|(ppid, c)| ppid == parent && c == comm))
        .collect()
}

/// Waits up to [`slack`]`(10 s)` for a child of `parent` named `comm` (from /proc) and returns
/// its pid.
///
/// # Panics
/// If none appears in time.
#[track_caller]
pub fn wait_for_child(parent: u32, comm: &str) -> u32 {
    let limit = slack(Duration::from_secs(10));
    let deadline = Instant::now() + limit;
    loop {
        if let Some(&pid) = children_named(parent, comm).first() {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no `{comm}` child of pid {parent} appeared within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The hexadecimal mask `field` (`SigBlk`, `SigCgt`, `CapEff`, ...) of /proc/PID/status;
/// `None` when the process is gone or has no such line.
pub fn status_mask(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    u64::from_str_radix(value.trim(), 16).ok()
}

/// Waits up to [`slack`]`(10 s)` until the process `pid` catches every one of `signals` (the
/// SigCgt mask of /proc/PID/status): a shell's `trap` is set, so a signal sent now reaches it.
///
/// # Panics
/// If the process does not catch them in time, or is gone.
#[track_caller]
pub fn wait_until_caught(pid: u32, signals: &[nix::sys::signal::Signal]) {
    let wanted = signals
        .iter()
        .fold(0u64, |mask, &s| mask | 1 << (s as i32 - 1));
    let limit = slack(Duration::from_secs(10));
    let deadline = Instant::now() + limit;
    loop {
        let caught = status_mask(pid, "SigCgt")
            .unwrap_or_else(|| panic!("cannot read SigCgt of pid {pid}: the process is gone"));
        if caught & wanted == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pid {pid} did not catch {signals:?} within {limit:?} (SigCgt {caught:016x})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` to `pid`.
///
/// # Panics
/// If kill(2) fails.
#[track_caller]
pub fn send_signal(pid: u32, signal: nix::sys::signal::Signal) {
    let target = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid fits in i32"));
    nix::sys::signal::kill(target, signal).unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
}

/// Asserts that a run left nothing behind:
///
/// - no container in the runtime state under `runroot` ([`runtime_containers`]);
/// - `RUNROOT/bundles` is empty or absent;
/// - no mount point appeared in this process's mount namespace since `mounts_before` below any
///   of the `owned` directories (the run's scratch directory and rootfs): tests that run at
///   the same time mount and unmount below their own (runc bind-mounts its binary on a
///   `runc.XXXXXX` file in the runtime state for a moment of every `create`);
/// - when `rootfs_before` is given: the rootfs tree equals it, except for the `expected_new`
///   paths (relative to the rootfs), which must be new; and no process runs in that rootfs.
///
/// # Panics
/// Listing everything that was left.
#[track_caller]
pub fn assert_nothing_left(
    runroot: &Path,
    owned: &[&Path],
    rootfs_before: Option<&TreeSnapshot>,
    mounts_before: &MountSnapshot,
    expected_new: &[&str],
) {
    let mut left = String::new();
    let containers = runtime_containers(runroot);
    if !containers.is_empty() {
        let _ = writeln!(left, "containers in the runtime state: {containers:?}");
    }
    let bundles = runroot.join("bundles");
    if bundles.exists() {
        let names: Vec<_> = std::fs::read_dir(&bundles)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", bundles.display()))
            .flatten()
            .map(|e| e.file_name())
            .collect();
        if !names.is_empty() {
            let _ = writeln!(left, "bundles in {}: {names:?}", bundles.display());
        }
    }
    let mounts: Vec<_> = MountSnapshot::take()
        .added_since(mounts_before)
        .into_iter()
        .filter(|(point, _)| owned.iter().any(|dir| Path::new(point).starts_with(dir)))
        .collect();
    if !mounts.is_empty() {
        let _ = writeln!(left, "new mounts: {mounts:?}");
    }
    if let Some(before) = rootfs_before {
        let processes = processes_rooted_at(before.root());
        if !processes.is_empty() {
            let _ = writeln!(left, "processes still running in the rootfs: {processes:?}");
        }
        for d in TreeSnapshot::take(before.root()).differences(before, expected_new) {
            let _ = writeln!(left, "rootfs {}: {d}", before.root().display());
        }
    }
    assert!(left.is_empty(), "the run left something behind:\n{left}");
}

/// One test's private world: a rootfs, a `--runroot`, and the snapshots taken before any run.
#[derive(Debug)]
pub struct Sandbox {
    dir: TempDir,
    rootfs: PathBuf,
    runroot: PathBuf,
    tree_before: Option<TreeSnapshot>,
    mounts_before: MountSnapshot,
    user: Option<&'static TestUser>,
}

impl Sandbox {
    /// A private copy of the busybox fixture ([`copy_tree`]), whose tree is checked afterwards.
    ///
    /// # Panics
    /// If the tests cannot run here (see [`preflight`]) or the copy fails.
    pub fn busybox() -> Self {
        Self::busybox_with(|_| {})
    }

    /// Like [`Sandbox::busybox`], with `prepare` called on the copy (the rootfs path) before
    /// the snapshot is taken: the test's own changes to the fixture are part of "before".
    ///
    /// # Panics
    /// As [`Sandbox::busybox`], or when `prepare` panics.
    pub fn busybox_with(prepare: impl FnOnce(&Path)) -> Self {
        preflight();
        let fixture = busybox_fixture();
        let dir = new_tempdir();
        let rootfs = dir.path().join("rootfs");
        copy_tree(&fixture, &rootfs);
        prepare(&rootfs);
        let tree_before = Some(TreeSnapshot::take(&rootfs));
        Self::with(dir, rootfs, tree_before)
    }

    /// A private copy of the busybox fixture for runs as the test user ([`test_user`]): its
    /// owners are the ones the user's namespace sees as the fixture's (0 becomes the user, N
    /// the user's subordinate id N), the sandbox directory is the user's, and
    /// [`Sandbox::ocirun`] and [`Sandbox::gc`] run ocirun as the user.
    ///
    /// # Panics
    /// As [`Sandbox::busybox`], or when the test user cannot be made.
    pub fn busybox_as_user() -> Self {
        Self::busybox_as_user_with(|_| {})
    }

    /// [`Sandbox::busybox_as_user`] with `prepare` called on the copy before the snapshot (the
    /// owners it gives are mapped too).
    ///
    /// # Panics
    /// As [`Sandbox::busybox_as_user`], or when `prepare` panics.
    pub fn busybox_as_user_with(prepare: impl FnOnce(&Path)) -> Self {
        preflight();
        let user = test_user();
        let fixture = busybox_fixture();
        let dir = new_tempdir();
        let rootfs = dir.path().join("rootfs");
        copy_tree(&fixture, &rootfs);
        prepare(&rootfs);
        walk(&rootfs, &mut |p| user::map_owner(user, p));
        std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid))
            .expect("chown the sandbox to the test user");
        let tree_before = Some(TreeSnapshot::take(&rootfs));
        let mut sb = Self::with(dir, rootfs, tree_before);
        sb.user = Some(user);
        sb
    }

    /// The test user the runs are made as, if any.
    pub fn user(&self) -> Option<&'static TestUser> {
        self.user
    }

    /// The shared Debian fixture (not copied, so its tree is not checked afterwards; the
    /// tests using it must not write to it).
    ///
    /// # Panics
    /// If the tests cannot run here (see [`preflight`]).
    pub fn debian() -> Self {
        preflight();
        let rootfs = debian_fixture();
        Self::with(new_tempdir(), rootfs, None)
    }

    fn with(dir: TempDir, rootfs: PathBuf, tree_before: Option<TreeSnapshot>) -> Self {
        let runroot = dir.path().join("runroot");
        Self {
            dir,
            rootfs,
            runroot,
            tree_before,
            mounts_before: MountSnapshot::take(),
            user: None,
        }
    }

    /// The rootfs the runs use (absolute).
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// The `--runroot` the runs use; it does not exist until ocirun creates it.
    pub fn runroot(&self) -> &Path {
        &self.runroot
    }

    /// The `--root` the runs use (ocirun's persistent state: container directories under
    /// `ROOT/containers`); it does not exist until ocirun creates it.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A scratch directory of this test, removed with the sandbox.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs tree as it was before any run (`None` for the shared Debian rootfs).
    pub fn tree_before(&self) -> Option<&TreeSnapshot> {
        self.tree_before.as_ref()
    }

    /// `ocirun --runroot RUNROOT SUBCOMMAND --rootfs ROOTFS ARGS...`.
    pub fn ocirun<I, S>(&self, subcommand: &str, args: I) -> Ocirun
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<OsString> = vec![
            "--runroot".into(),
            self.runroot.clone().into(),
            "--root".into(),
            self.root().into(),
            subcommand.into(),
            "--rootfs".into(),
            self.rootfs.clone().into(),
        ];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        let ocirun = Ocirun::new(all).cleanup_runroot(&self.runroot);
        match self.user {
            Some(user) => ocirun.as_user(user),
            None => ocirun,
        }
    }

    /// Runs `ocirun --runroot RUNROOT --root ROOT gc` to its end and returns what it printed.
    ///
    /// # Panics
    /// If it cannot be run.
    pub fn gc(&self) -> std::process::Output {
        preflight();
        let mut ocirun = Ocirun::new(Vec::<OsString>::new());
        if let Some(user) = self.user {
            ocirun = ocirun.as_user(user);
        }
        let mut cmd = Command::new(ocirun_bin());
        ocirun.apply_user(&mut cmd);
        cmd.arg("--runroot")
            .arg(&self.runroot)
            .arg("--root")
            .arg(self.root())
            .arg("gc")
            .stdin(Stdio::null())
            .output()
            .expect("cannot run ocirun gc")
    }

    /// `ocirun --runroot RUNROOT --root ROOT ARGS...`: a command that takes no rootfs, such
    /// as `volume ls`.
    pub fn global<I, S>(&self, args: I) -> Ocirun
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<OsString> = vec![
            "--runroot".into(),
            self.runroot.clone().into(),
            "--root".into(),
            self.root().into(),
        ];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        let ocirun = Ocirun::new(all).cleanup_runroot(&self.runroot);
        match self.user {
            Some(user) => ocirun.as_user(user),
            None => ocirun,
        }
    }

    /// `ocirun --runroot RUNROOT run --rootfs ROOTFS ARGS...`.
    pub fn run<I, S>(&self, args: I) -> Ocirun
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.ocirun("run", args)
    }

    /// [`assert_nothing_left`] for this sandbox: the rootfs must be as it was.
    ///
    /// # Panics
    /// Listing everything that was left.
    #[track_caller]
    pub fn assert_nothing_left(&self) {
        self.assert_nothing_left_except(&[]);
    }

    /// [`assert_nothing_left`] for this sandbox, where the rootfs paths `expected_new`
    /// (relative, e.g. `"new/dir"`; list each parent that is new too) must have appeared.
    ///
    /// # Panics
    /// Listing everything that was left.
    #[track_caller]
    pub fn assert_nothing_left_except(&self, expected_new: &[&str]) {
        // Ephemeral container directories go with their run; a test that used --name with
        // image volumes or secrets removes that container's directory before this check.
        let containers = self.root().join("containers");
        let left: Vec<_> = std::fs::read_dir(&containers)
            .map(|dir| dir.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "the run left container directories in {}: {left:?}",
            containers.display()
        );
        // Named volumes outlive runs by design: a test that made one removes it before this.
        let volumes = self.root().join("volumes");
        let left: Vec<_> = std::fs::read_dir(&volumes)
            .map(|dir| dir.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "the test left volumes in {}: {left:?}",
            volumes.display()
        );
        assert_nothing_left(
            &self.runroot,
            &[self.dir.path(), &self.rootfs],
            self.tree_before.as_ref(),
            &self.mounts_before,
            expected_new,
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // After a failed test: do not leave its containers running.
        force_delete_containers(&self.runroot);
    }
}

/// Copies the tree `src` to `dst`, which must not exist, as `cp -a` does for the fixtures:
/// directories, regular files and symlinks, with their modes, owners and (but for symlinks)
/// modification and access times. It runs in the test's own process, with no `cp` to start:
/// in `cargo xtask vm`'s emulated guest, `cp -a` of the busybox fixture (286 entries) took
/// 0.08 s, and starting a process there takes 0.01 to 0.03 s.
///
/// # Panics
/// On an entry that is none of these types, or one that cannot be read or written, naming it.
pub fn copy_tree(src: &Path, dst: &Path) {
    use std::os::unix::fs::{lchown, symlink, PermissionsExt};
    let fail = |what: &str, e: std::io::Error| -> ! {
        panic!(
            "cannot copy {} to {}: {what}: {e}",
            src.display(),
            dst.display()
        )
    };
    let meta = std::fs::symlink_metadata(src).unwrap_or_else(|e| fail("lstat", e));
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(src).unwrap_or_else(|e| fail("readlink", e));
        symlink(target, dst).unwrap_or_else(|e| fail("symlink", e));
        lchown(dst, Some(meta.uid()), Some(meta.gid())).unwrap_or_else(|e| fail("lchown", e));
        return;
    }
    if ft.is_dir() {
        std::fs::create_dir(dst).unwrap_or_else(|e| fail("mkdir", e));
        for entry in std::fs::read_dir(src).unwrap_or_else(|e| fail("readdir", e)) {
            let name = entry.unwrap_or_else(|e| fail("readdir", e)).file_name();
            copy_tree(&src.join(&name), &dst.join(&name));
        }
    } else if ft.is_file() {
        std::fs::copy(src, dst).unwrap_or_else(|e| fail("copy", e));
    } else {
        panic!(
            "cannot copy {}: neither a directory, a regular file nor a symlink",
            src.display()
        );
    }
    // The owner first: chown clears the set-id bits that the mode then restores.
    lchown(dst, Some(meta.uid()), Some(meta.gid())).unwrap_or_else(|e| fail("chown", e));
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .unwrap_or_else(|e| fail("chmod", e));
    let times = std::fs::FileTimes::new()
        .set_accessed(meta.accessed().unwrap_or_else(|e| fail("atime", e)))
        .set_modified(meta.modified().unwrap_or_else(|e| fail("mtime", e)));
    std::fs::File::open(dst)
        .and_then(|f| f.set_times(times))
        .unwrap_or_else(|e| fail("set times", e));
}

/// Calls `f` on `path` and, below a directory (not a symlink to one), on every entry.
fn walk(path: &Path, f: &mut dyn FnMut(&Path)) {
    f(path);
    let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if is_dir {
        for entry in std::fs::read_dir(path).expect("readdir") {
            walk(&entry.expect("readdir").path(), f);
        }
    }
}

fn new_tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("ocirun-e2e-")
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// Writes the shell script `dir/name` (`#!/bin/sh` and `body`), executable, and returns its
/// path: a stand-in runtime or command for a test.
///
/// # Panics
/// If it cannot be written.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Whether the tests run inside `cargo xtask vm`'s guest, which sets `OCIRUN_E2E_VM=1`.
///
/// The guest's CPU is emulated (TCG): starting a process there costs 10 to 50 times what it
/// costs on the host (one `ocirun run` about 1 s), so a test that repeats runs hundreds of
/// times or moves gigabytes should do less there, with [`lighter_in_vm`].
pub fn in_vm() -> bool {
    std::env::var_os("OCIRUN_E2E_VM").is_some_and(|v| v == "1")
}

/// `on_host` on the host, `in_vm` inside `cargo xtask vm`'s guest (see [`in_vm`]); e.g. the
/// number of runs of a repetition test.
pub fn lighter_in_vm<T>(on_host: T, in_vm: T) -> T {
    if self::in_vm() {
        in_vm
    } else {
        on_host
    }
}

/// The time a step that takes `on_host` on the host may take here: `on_host` on the host,
/// [`VM_SLOWDOWN`] times it inside `cargo xtask vm`'s guest. For the upper bounds of timing
/// assertions, deadlines and waits for a process to get ready, never for the lower bounds.
pub fn slack(on_host: Duration) -> Duration {
    lighter_in_vm(on_host, on_host * VM_SLOWDOWN)
}

/// A cgroup hierarchy layout, as runc tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One hierarchy per controller below a tmpfs at /sys/fs/cgroup (also "hybrid" hosts with
    /// a cgroup2 tree at /sys/fs/cgroup/unified: runc uses v1 there).
    V1,
    /// The unified cgroup2 tree at /sys/fs/cgroup.
    V2,
}

impl CgroupVersion {
    /// `v1` or `v2`.
    pub fn name(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        }
    }

    /// The other version.
    pub fn other(self) -> Self {
        match self {
            CgroupVersion::V1 => CgroupVersion::V2,
            CgroupVersion::V2 => CgroupVersion::V1,
        }
    }
}

/// The cgroup version of this machine: `$OCIRUN_E2E_CGROUP` (`v1` or `v2`) when set, else
/// v2 when the last mount on /sys/fs/cgroup in /proc/self/mountinfo is `cgroup2` (what runc
/// checks, with statfs), else v1.
///
/// # Panics
/// If `$OCIRUN_E2E_CGROUP` holds anything else, or mountinfo cannot be read.
pub fn cgroup_version() -> CgroupVersion {
    match std::env::var("OCIRUN_E2E_CGROUP").as_deref() {
        Ok("v1") => return CgroupVersion::V1,
        Ok("v2") => return CgroupVersion::V2,
        Ok(other) => panic!("OCIRUN_E2E_CGROUP={other:?}: expected v1 or v2"),
        Err(_) => {}
    }
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").expect("cannot read /proc/self/mountinfo");
    // "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS"
    let fstype = text
        .lines()
        .filter(|line| line.split(' ').nth(4) == Some("/sys/fs/cgroup"))
        .filter_map(|line| line.split_once(" - ")?.1.split(' ').next())
        .next_back();
    if fstype == Some("cgroup2") {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    }
}
