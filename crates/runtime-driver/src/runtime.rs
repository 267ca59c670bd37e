//! An OCI runtime with runc's command line, and the container it created.
//!
//! Lifecycle (runc(8); runtime-spec "Lifecycle"), and what is undone when a step fails:
//! 1. `run --detach --bundle B --pid-file B/pid ID`, or `create` with the same arguments, with
//!    the container's stdio as the runtime's stdio: on failure the runtime has nothing left to
//!    delete (a leftover is deleted with `--force` all the same);
//! 2. read the pid; after `create`, `start ID`: on failure, `delete --force ID`;
//! 3. wait for the pid (see [`crate::ContainerProcess`]);
//! 4. `delete ID`; [`Container::remove_after`] (and, as a last resort, dropping a [`Container`]
//!    that was not deleted) runs `delete --force ID`.
//!
//! Every subcommand gets the global flags `--root <state dir>` (ocirun's own, so that its
//! containers never mix with other tools') and, for `run` and `create`, `--log
//! <bundle>/runtime.log --log-format json`, whose last error line becomes the message the user
//! sees. runc, youki and crun are driven alike; where they differ, see the items of this module
//! and [`crate::ContainerProcess`].
//!
//! No call can hang the caller (see the `call` module): each runs in a process group of its
//! own while its output is read as it comes; `run`, `create`, `start` and `delete` given a
//! [`SignalForwarder`] end on a stop signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT), the runtime's
//! processes killed: `delete` at once, the others when they have not ended on their own
//! within [`STOP_GRACE`]; `run`, `create` and `start` are killed after
//! [`LAUNCH_TIMEOUT`], `delete --force`, `state`, `kill` and `features` when their time is up
//! ([`CLEANUP_TIMEOUT`], or what the caller gives).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::call::{call, Cut, Finished, Keep, Limits};
use crate::spawn::LaunchStdio;
use crate::{Bundle, ContainerId, DriverError, SignalForwarder};

/// How long `delete --force`, `state` and `kill` may take before the runtime is killed: 10 s.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `create`, `run --detach` and `start` may take before the runtime is killed and the
/// run fails ([`DriverError::RuntimeTimeout`]): 120 s, far above a healthy runtime's tens of
/// milliseconds (seconds in an emulated machine), so that a hung runtime never hangs the
/// caller. [`Runtime::with_launch_timeout`] changes it.
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the clean-up after a stop signal may take (the `delete --force` of a container
/// that was being created or started): 1 s, so that the run ends within about a second of the
/// signal ([`STOP_GRACE`] more when the runtime hangs); a container left then is for
/// `ocirun gc`.
pub const INTERRUPTED_CLEANUP_TIMEOUT: Duration = Duration::from_secs(1);

/// How long `create`, `run --detach` and `start` may go on after a stop signal to end on their
/// own before they are killed with their process group: 500 ms, many times what a healthy
/// runtime needs for the whole call on a host (tens of milliseconds), so that a runtime is
/// killed while it writes its state only when it hangs or the machine is starved (youki 0.7
/// rewrites its `state.json` in place: killed in between, it leaves an empty one, and then
/// neither `youki delete --force` nor `ocirun gc` can remove the container). A second stop
/// signal kills the call at once.
pub const STOP_GRACE: Duration = Duration::from_millis(500);

/// Where a runtime's own log lines go when the caller wants to see them
/// ([`Runtime::show_log`]).
pub type LogSink = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// What a runtime is, as far as ocirun works around differences in the spec it takes (the
/// others are handled whatever the runtime: see the module documentation), told by the first
/// word of what `runtime --version` prints ([`Runtime::kind`], [`RuntimeKind::from_version`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeKind {
    /// youki (`youki version: 0.7.0`).
    Youki,
    /// runc, crun, or any other: runc's rules.
    Other,
}

impl RuntimeKind {
    /// The kind that the output of `runtime --version` names.
    pub fn from_version(version: &str) -> Self {
        match version.split_whitespace().next() {
            Some("youki") => Self::Youki,
            _ => Self::Other,
        }
    }

    /// The `linux.rootfsPropagation` value this runtime takes for `propagation`, a value of
    /// runc's set (`rslave`, `shared`, ...) such as podman writes: youki 0.7 knows only the
    /// runtime-spec's `shared`, `slave`, `private` and `unbindable`, each of which it applies
    /// recursively, and refuses the others (`rslave`), so it gets the name without the `r`;
    /// runc, crun and others get `propagation` as it is (runc applies `slave` to the root
    /// mount alone).
    pub fn rootfs_propagation(self, propagation: &'static str) -> &'static str {
        if self != Self::Youki {
            return propagation;
        }
        match propagation {
            "rshared" => "shared",
            "rslave" => "slave",
            "rprivate" => "private",
            "runbindable" => "unbindable",
            other => other,
        }
    }

    /// Whether the runtime takes `process.user.additionalGids` for a container with a user
    /// namespace of its own when it runs without root (in ocirun's user namespace): youki 0.7
    /// refuses any then (`unprivileged user can't set supplementary groups`, its check for
    /// CVE-2014-8989) and leaves the process the runtime's own groups; runc and crun set them.
    pub fn takes_additional_gids_without_root(self) -> bool {
        self != Self::Youki
    }

    /// Whether the runtime needs an absolute `linux.cgroupsPath` for a container with a user
    /// namespace of its own on cgroup v2: youki 0.7 takes a relative or missing path there for
    /// a systemd unit, and fails when it was built without its systemd feature (`systemd
    /// cgroup feature is required, but was not enabled during compile time`).
    pub fn wants_absolute_cgroups_path_with_own_userns(self) -> bool {
        self == Self::Youki
    }

    /// Whether the runtime writes a uid or gid map of more than one range through the
    /// `newuidmap` and `newgidmap` found in its `PATH`, even where it could write it itself:
    /// youki 0.7 does (and ignores their failure), so without root it needs
    /// [`crate::id_map_helpers`]; runc and crun write such maps themselves.
    pub fn writes_multi_range_maps_with_helpers(self) -> bool {
        self == Self::Youki
    }
}

/// How a container is launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Launch {
    /// `create`: the process waits for `start`.
    Create,
    /// `run --detach`: created and started by one runtime process.
    Run,
}

impl Launch {
    fn subcommand(self) -> &'static str {
        match self {
            Launch::Create => "create",
            Launch::Run => "run",
        }
    }
}

/// The variables removed from the runtime's environment: a runtime written in Rust (youki)
/// appends a backtrace to its errors when they are set, and a backtrace's last line would
/// become the message.
const RUNTIME_ENV_REMOVED: [&str; 2] = ["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"];

fn clean_environment(cmd: &mut Command) {
    for var in RUNTIME_ENV_REMOVED {
        cmd.env_remove(var);
    }
}

/// Whether a global flag sets the runtime's log file or format (`--log=FILE`,
/// `--log-format=FORMAT`): `run` and `create` get ocirun's own, a JSON log in the bundle, whose
/// error lines ocirun reads, and a runtime may refuse the flag twice (youki does).
fn is_log_flag(flag: &OsString) -> bool {
    let flag = flag.to_string_lossy();
    ["--log", "--log-format"].iter().any(|name| {
        flag == *name
            || flag
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('='))
    })
}

/// After a failed `create` or `run`: a runtime may have written the pid file of an init that
/// it started and that then failed (youki does), which is now a zombie child of this
/// subreaper; it is reaped if it is one. Best effort: [`crate::reap_strays`] collects what is
/// left.
fn reap_failed_init(bundle: &Bundle) {
    let Some(pid) = std::fs::read_to_string(bundle.pid_file())
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .filter(|pid| *pid > 0)
    else {
        return;
    };
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}

/// The runtime program and its global flags.
#[derive(Clone)]
pub struct Runtime {
    program: PathBuf,
    root: PathBuf,
    global_flags: Vec<OsString>,
    log_sink: Option<LogSink>,
    launch_timeout: Duration,
    path_prefix: Option<PathBuf>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("program", &self.program)
            .field("root", &self.root)
            .field("global_flags", &self.global_flags)
            .field("log_sink", &self.log_sink.as_ref().map(|_| "LogSink"))
            .field("launch_timeout", &self.launch_timeout)
            .field("path_prefix", &self.path_prefix)
            .finish()
    }
}

/// How the container's process gets its stdio from `runtime create` (runc(8), "create":
/// `--console-socket`; without it, the runtime passes its own fds 0-2 on to the container).
#[derive(Debug)]
#[non_exhaustive]
pub enum ContainerIo {
    /// These fds become the runtime's, and so the container's, stdin, stdout and stderr
    /// (pipes for a relay, or the caller's own fds to inherit). Closed in this process once
    /// the runtime has them.
    Fds(CreateStdio),
    /// The process gets a terminal: the runtime connects to the Unix socket at this path and
    /// sends the PTY master over it with `SCM_RIGHTS`; its own stdio is `/dev/null`.
    ConsoleSocket(PathBuf),
}

/// Three fds for the container's stdio: a read end (or any readable fd) for stdin, writable
/// fds for stdout and stderr.
#[derive(Debug)]
pub struct CreateStdio {
    /// The container's stdin.
    pub stdin: OwnedFd,
    /// The container's stdout.
    pub stdout: OwnedFd,
    /// The container's stderr.
    pub stderr: OwnedFd,
    /// A non-blocking reader of the pipe behind `stderr`, if it is one. The runtime's stderr
    /// is the container's, so a runtime that fails without a JSON log line has written its
    /// message there: `create` reads it from here for the error. Closed once `create` returns.
    pub error_reader: Option<OwnedFd>,
}

impl Runtime {
    /// Finds the runtime: `name_or_path` with a `/` is used as it is; a bare name is searched in
    /// `search_path` (a `PATH`-style list). `root` is the runtime's state directory (`--root`).
    ///
    /// # Errors
    /// [`DriverError::RuntimeNotFound`] naming what was looked for.
    pub fn discover(
        name_or_path: &str,
        search_path: &str,
        root: impl Into<PathBuf>,
    ) -> Result<Self, DriverError> {
        let not_found = || DriverError::RuntimeNotFound(name_or_path.to_owned());
        let program = if name_or_path.contains('/') {
            let p = PathBuf::from(name_or_path);
            if !is_executable(&p) {
                return Err(not_found());
            }
            p
        } else {
            find_in_path(name_or_path.as_ref(), search_path.as_ref()).ok_or_else(not_found)?
        };
        Ok(Self {
            program,
            root: root.into(),
            global_flags: Vec::new(),
            log_sink: None,
            launch_timeout: LAUNCH_TIMEOUT,
            path_prefix: None,
        })
    }

    /// How long `create`, `run --detach` and `start` may take before the runtime's processes are
    /// killed and the call fails with [`DriverError::RuntimeTimeout`] (default
    /// [`LAUNCH_TIMEOUT`], 120 s).
    #[must_use]
    pub fn with_launch_timeout(mut self, timeout: Duration) -> Self {
        self.launch_timeout = timeout;
        self
    }

    /// Puts `dir` first in the `PATH` of the runtime's `create` and `run` (for the id-map
    /// helpers of [`crate::id_map_helpers`]).
    #[must_use]
    pub fn path_prefix(mut self, dir: impl Into<PathBuf>) -> Self {
        self.path_prefix = Some(dir.into());
        self
    }

    /// A runtime from its parts, as a [`crate::RunRecord`] stores them: no lookup.
    pub fn from_parts(program: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            root: root.into(),
            global_flags: Vec::new(),
            log_sink: None,
            launch_timeout: LAUNCH_TIMEOUT,
            path_prefix: None,
        }
    }

    /// Hands every line the runtime logs to `sink`, each as `RUNTIME SUBCOMMAND: LINE`: the
    /// JSON log of `create` and `run` (written to the bundle's `runtime.log`, shown as
    /// `LEVEL: MESSAGE`) and what the other subcommands write to stderr, whether they succeed
    /// or not (`run` only when it fails: its stderr is the container's, which is relayed). For a
    /// caller that shows the runtime's `--debug` output (podman's `--runtime-flag debug`).
    pub fn show_log(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.log_sink = Some(std::sync::Arc::new(sink));
        self
    }

    /// Whether [`Self::show_log`] was given a sink.
    pub fn shows_log(&self) -> bool {
        self.log_sink.is_some()
    }

    /// Hands `lines` to the log sink, if there is one.
    fn emit(&self, subcommand: &str, lines: &str) {
        if let Some(sink) = &self.log_sink {
            for line in lines.lines().filter(|l| !l.trim().is_empty()) {
                sink(&format!("{} {subcommand}: {line}", self.name()));
            }
        }
    }

    /// Hands the JSON log at `path` to the log sink, one `LEVEL: MESSAGE` per line (a line
    /// that is not such JSON as it is).
    fn emit_json_log(&self, subcommand: &str, path: &Path) {
        if self.log_sink.is_none() {
            return;
        }
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let shown: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let value: Option<serde_json::Value> = serde_json::from_str(line).ok();
                let field = |k: &str| {
                    value
                        .as_ref()
                        .and_then(|v| v.get(k))
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                };
                match (field("level"), field("msg").or_else(|| field("message"))) {
                    (Some(level), Some(msg)) => format!("{level}: {msg}"),
                    _ => line.to_owned(),
                }
            })
            .collect();
        self.emit(subcommand, &shown.join("\n"));
    }

    /// The global flags added with [`Self::global_flag`] and [`Self::runtime_flag`].
    pub fn global_flags(&self) -> impl Iterator<Item = &std::ffi::OsStr> {
        self.global_flags.iter().map(OsString::as_os_str)
    }

    /// Adds a global flag, passed as it is before every subcommand.
    pub fn global_flag(mut self, flag: impl Into<OsString>) -> Self {
        self.global_flags.push(flag.into());
        self
    }

    /// Adds a runtime flag as podman's `--runtime-flag` takes it: `debug` is passed as
    /// `--debug`, `log-level=warn` as `--log-level=warn`. `root=DIR` replaces the state root
    /// given to [`Self::discover`] instead of adding a second `--root`.
    pub fn runtime_flag(mut self, flag: &str) -> Self {
        let flag = flag.trim_start_matches('-');
        match flag.strip_prefix("root=") {
            Some(root) => self.root = PathBuf::from(root),
            None => self.global_flags.push(format!("--{flag}").into()),
        }
        self
    }

    /// The runtime program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The runtime's state directory (`--root`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn name(&self) -> String {
        self.program
            .file_name()
            .unwrap_or(self.program.as_os_str())
            .to_string_lossy()
            .into_owned()
    }

    fn command(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--root").arg(&self.root).args(&self.global_flags);
        cmd.arg(subcommand);
        clean_environment(&mut cmd);
        cmd
    }

    /// Runs `runtime create` for container `id` on `bundle`, the container's stdio set up as
    /// `io` says, and returns the container, whose pid the runtime wrote to
    /// [`Bundle::pid_file`]: its process is the runtime's init, waiting for [`Container::start`].
    /// The runtime runs in the bundle directory (so relative paths in the spec's mounts and a
    /// relative `--console-socket` resolve there) with an empty signal mask. With `signals`,
    /// a stop signal lets the runtime end on its own for [`STOP_GRACE`], and is then held in
    /// `signals` ([`SignalForwarder::take_stop`] returns it; after `run --detach` it is
    /// forwarded to the command instead, [`SignalForwarder::defer_held_stop`]); a runtime
    /// still running then, or at a second stop signal, is killed with its processes and what
    /// it created is deleted ([`DriverError::Interrupted`]). Other signals are kept there for
    /// the container.
    ///
    /// # Errors
    /// [`DriverError::Spawn`], [`DriverError::Runtime`] with the runtime's own message,
    /// [`DriverError::Bundle`] / [`DriverError::BadPidFile`] for the pid file,
    /// [`DriverError::Interrupted`]; [`DriverError::Left`] when, after one of these, what the
    /// runtime created could not be deleted.
    pub fn create<'r>(
        &'r self,
        id: &ContainerId,
        bundle: &Bundle,
        io: ContainerIo,
        signals: Option<&mut SignalForwarder>,
    ) -> Result<Container<'r>, DriverError> {
        self.launch(Launch::Create, id, bundle, io, signals)
            .map(|(container, _)| container)
    }

    /// Runs `runtime run --detach` for container `id` on `bundle`, as [`Self::create`] does
    /// `create`, and returns the container, whose process already runs the command (or has
    /// ended), with what the container wrote to its stderr pipe while the runtime ran (see
    /// [`ContainerIo::Fds`]): the caller passes those bytes on before what the pipe holds.
    /// One runtime process fewer than `create` and [`Container::start`], for a caller that
    /// needs nothing done between the two.
    ///
    /// # Errors
    /// As [`Self::create`].
    pub fn run_detached<'r>(
        &'r self,
        id: &ContainerId,
        bundle: &Bundle,
        io: ContainerIo,
        signals: Option<&mut SignalForwarder>,
    ) -> Result<(Container<'r>, Vec<u8>), DriverError> {
        self.launch(Launch::Run, id, bundle, io, signals)
    }

    /// The command line of `create` or `run --detach` (stdio aside).
    fn launch_command(
        &self,
        how: Launch,
        id: &ContainerId,
        bundle: &Bundle,
        console_socket: Option<&Path>,
    ) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(bundle.log_file())
            .arg("--log-format")
            .arg("json")
            .args(self.global_flags.iter().filter(|f| !is_log_flag(f)));
        match how {
            Launch::Create => cmd.arg("create"),
            Launch::Run => cmd.args(["run", "--detach"]),
        };
        cmd.arg("--bundle")
            .arg(bundle.path())
            .arg("--pid-file")
            .arg(bundle.pid_file());
        if let Some(socket) = console_socket {
            cmd.arg("--console-socket").arg(socket);
        }
        cmd.arg(id.as_str()).current_dir(bundle.path());
        clean_environment(&mut cmd);
        if let Some(dir) = &self.path_prefix {
            let mut path = dir.clone().into_os_string();
            if let Some(rest) = std::env::var_os("PATH") {
                path.push(":");
                path.push(rest);
            }
            cmd.env("PATH", path);
        }
        cmd
    }

    fn launch<'r>(
        &'r self,
        how: Launch,
        id: &ContainerId,
        bundle: &Bundle,
        io: ContainerIo,
        mut signals: Option<&mut SignalForwarder>,
    ) -> Result<(Container<'r>, Vec<u8>), DriverError> {
        let subcommand = how.subcommand();
        let mut drain = None;
        let (cmd, launch_stdio) = match io {
            ContainerIo::Fds(stdio) => {
                let cmd = self.launch_command(how, id, bundle, None);
                let keep = match how {
                    Launch::Create => Keep::Tail,
                    Launch::Run => Keep::Early,
                };
                drain = stdio.error_reader.map(|fd| (fd, keep));
                let launch_stdio = LaunchStdio {
                    stdin: stdio.stdin,
                    stdout: stdio.stdout,
                    stderr: Some(stdio.stderr),
                };
                (cmd, launch_stdio)
            }
            ContainerIo::ConsoleSocket(socket) => {
                let cmd = self.launch_command(how, id, bundle, Some(&socket));
                let null = || {
                    std::fs::File::open("/dev/null")
                        .map(OwnedFd::from)
                        .map_err(|source| DriverError::Spawn {
                            program: self.program.clone(),
                            source,
                        })
                };
                let launch_stdio = LaunchStdio {
                    stdin: null()?,
                    stdout: null()?,
                    stderr: None,
                };
                (cmd, launch_stdio)
            }
        };
        tracing::debug!(container_id = %id, bundle = %bundle.path().display(), "runtime {subcommand}");
        let ended = call(
            &self.program,
            cmd,
            drain,
            Limits {
                signals: signals.as_deref_mut(),
                timeout: Some(self.launch_timeout),
                launch: Some(launch_stdio),
                stop_grace: Some(STOP_GRACE),
            },
        );
        self.emit_json_log(subcommand, &bundle.log_file());
        if let Ok(Ok(done)) = &ended {
            // run's stderr is the container's too, relayed when it succeeds.
            if how == Launch::Create || !done.status.success() {
                self.emit(subcommand, &String::from_utf8_lossy(&done.stderr));
            }
        }
        // From here on the runtime may hold state for `id`: every error path deletes it.
        let mut container = Container {
            runtime: self,
            id: id.clone(),
            pid: 0,
            deleted: false,
        };
        let failed = |container: Container<'r>, error| {
            let error = container.remove_after(error);
            reap_failed_init(bundle);
            error
        };
        let done = match ended {
            Err(e) => return Err(failed(container, e)),
            Ok(Err(cut)) => return Err(failed(container, self.cut_error(subcommand, cut))),
            Ok(Ok(done)) => done,
        };
        if !done.status.success() {
            let message = last_log_error(&bundle.log_file())
                .unwrap_or_else(|| last_line(&String::from_utf8_lossy(&done.stderr), done.status));
            return Err(failed(container, self.error(subcommand, message)));
        }
        let early = match done.early {
            Some(early) => {
                if !early.complete {
                    tracing::warn!(
                        "the runtime went on writing to the container's stderr: part of what \
                         was written there while it ran is lost"
                    );
                }
                early.bytes
            }
            None => {
                if !done.stderr.is_empty() && !self.shows_log() {
                    tracing::debug!(
                        output = %String::from_utf8_lossy(&done.stderr),
                        "the runtime wrote while it created the container"
                    );
                }
                Vec::new()
            }
        };
        let pid_file = bundle.pid_file();
        let content = match std::fs::read_to_string(&pid_file) {
            Ok(content) => content,
            Err(source) => {
                return Err(container.remove_after(DriverError::Bundle {
                    action: "read pid file",
                    path: pid_file,
                    source,
                }))
            }
        };
        match content.trim().parse().ok().filter(|pid: &i32| *pid > 0) {
            Some(pid) => container.pid = pid,
            None => {
                return Err(container.remove_after(DriverError::BadPidFile {
                    path: pid_file,
                    content,
                }))
            }
        }
        // After `run --detach` the command runs: a stop signal that came while the runtime
        // made the container is the command's, forwarded as one that comes now. After
        // `create` it stays held, and ends the run before `start`.
        if let (Launch::Run, Some(s)) = (how, signals) {
            s.defer_held_stop();
        }
        Ok((container, early))
    }

    /// Runs a subcommand with no stdin, reading its stdout and stderr: `Ok` with its stdout
    /// when it succeeds, the runtime's last stderr line in the error otherwise.
    fn run(
        &self,
        subcommand: &'static str,
        args: &[&str],
        limits: Limits<'_>,
    ) -> Result<Vec<u8>, DriverError> {
        let mut cmd = self.command(subcommand);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let done: Finished = match call(&self.program, cmd, None, limits)? {
            Ok(done) => done,
            Err(cut) => return Err(self.cut_error(subcommand, cut)),
        };
        self.emit(subcommand, &String::from_utf8_lossy(&done.stderr));
        if done.status.success() {
            return Ok(done.stdout);
        }
        let stderr = String::from_utf8_lossy(&done.stderr);
        Err(self.error(subcommand, last_line(&stderr, done.status)))
    }

    /// The error of a call that was cut short.
    fn cut_error(&self, subcommand: &'static str, cut: Cut) -> DriverError {
        match cut {
            Cut::Interrupted(signal) => DriverError::Interrupted {
                signal: signal as i32,
                during: format!("during {} {subcommand}", self.name()),
            },
            Cut::TimedOut(timeout) => DriverError::RuntimeTimeout {
                runtime: self.name(),
                subcommand,
                timeout,
            },
        }
    }

    /// `runtime state ID`: the container's state as the runtime reports it (runtime-spec
    /// "State": `status` is creating, created, running or stopped). Not used to wait: the
    /// supervisor waits on a pidfd. The runtime is killed after [`CLEANUP_TIMEOUT`].
    ///
    /// # Errors
    /// [`DriverError::Runtime`] with the runtime's message (e.g. the container does not exist),
    /// or when its output is not a state object; [`DriverError::RuntimeTimeout`].
    pub fn state(&self, id: &ContainerId) -> Result<oci_spec::runtime::State, DriverError> {
        self.state_within(id, CLEANUP_TIMEOUT)
    }

    /// [`Self::state`], the runtime killed after `timeout`.
    pub(crate) fn state_within(
        &self,
        id: &ContainerId,
        timeout: Duration,
    ) -> Result<oci_spec::runtime::State, DriverError> {
        let stdout = self.run(
            "state",
            &[id.as_str()],
            Limits {
                signals: None,
                timeout: Some(timeout),
                launch: None,
                stop_grace: None,
            },
        )?;
        serde_json::from_slice(&stdout)
            .map_err(|e| self.error("state", format!("unreadable state: {e}")))
    }

    /// Whether the runtime supports the mount option `option` (such as `tmpcopyup`, which
    /// runc and crun have and youki 0.7 has not), by the `mountOptions` of `runtime features`
    /// (the runtime-spec's features document). A runtime without that subcommand (crun 1.8),
    /// or whose document lists no mount options, is taken to have runc's. The runtime is
    /// killed after [`CLEANUP_TIMEOUT`].
    ///
    /// # Errors
    /// [`DriverError::Spawn`], [`DriverError::RuntimeTimeout`]; [`DriverError::Runtime`] when
    /// what it prints is not JSON.
    pub fn supports_mount_option(&self, option: &str) -> Result<bool, DriverError> {
        let limits = Limits {
            signals: None,
            timeout: Some(CLEANUP_TIMEOUT),
            launch: None,
            stop_grace: None,
        };
        let stdout = match self.run("features", &[], limits) {
            Ok(stdout) => stdout,
            Err(DriverError::Runtime { .. }) => return Ok(true),
            Err(e) => return Err(e),
        };
        let features: serde_json::Value = serde_json::from_slice(&stdout)
            .map_err(|e| self.error("features", format!("unreadable features: {e}")))?;
        Ok(
            match features.get("mountOptions").and_then(|o| o.as_array()) {
                Some(options) => options.iter().any(|o| o.as_str() == Some(option)),
                None => true,
            },
        )
    }

    /// `runtime kill ID SIGNAL` for a container this process did not create (see
    /// [`Container::kill`]), killed after [`CLEANUP_TIMEOUT`].
    ///
    /// # Errors
    /// [`DriverError::Runtime`] with the runtime's message; [`DriverError::RuntimeTimeout`].
    pub fn kill(&self, id: &ContainerId, signal: &str) -> Result<(), DriverError> {
        self.kill_within(id, signal, CLEANUP_TIMEOUT)
    }

    /// [`Self::kill`], the runtime killed after `timeout`.
    pub(crate) fn kill_within(
        &self,
        id: &ContainerId,
        signal: &str,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let limits = Limits {
            signals: None,
            timeout: Some(timeout),
            launch: None,
            stop_grace: None,
        };
        self.run("kill", &[id.as_str(), signal], limits).map(drop)
    }

    /// What the runtime is, by its `--version` ([`RuntimeKind::from_version`]; the runtime is
    /// killed after [`CLEANUP_TIMEOUT`]). A runtime that cannot say is [`RuntimeKind::Other`].
    pub fn kind(&self) -> RuntimeKind {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        clean_environment(&mut cmd);
        let limits = Limits {
            signals: None,
            timeout: Some(CLEANUP_TIMEOUT),
            launch: None,
            stop_grace: None,
        };
        match call(&self.program, cmd, None, limits) {
            Ok(Ok(done)) if done.status.success() => {
                RuntimeKind::from_version(&String::from_utf8_lossy(&done.stdout))
            }
            _ => RuntimeKind::Other,
        }
    }

    /// `runtime delete --force ID`, killed after `timeout`. A container the runtime does not
    /// know is not an error.
    ///
    /// # Errors
    /// [`DriverError::Runtime`] with the runtime's message; [`DriverError::RuntimeTimeout`].
    pub fn force_delete(&self, id: &ContainerId, timeout: Duration) -> Result<(), DriverError> {
        let limits = Limits {
            signals: None,
            timeout: Some(timeout),
            launch: None,
            stop_grace: None,
        };
        match self.run("delete", &["--force", id.as_str()], limits) {
            Err(DriverError::Runtime { message, .. })
                if message.contains("does not exist") || message.contains("not found") =>
            {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    fn error(&self, subcommand: &'static str, message: String) -> DriverError {
        DriverError::Runtime {
            runtime: self.name(),
            subcommand,
            message,
        }
    }
}

/// A container that the runtime has created. [`Container::delete`] or [`Container::remove_after`]
/// end it; dropping it without them runs `runtime delete --force` (with
/// [`CLEANUP_TIMEOUT`]), so no error path leaves it in the runtime's state unless the runtime
/// fails to delete it.
#[derive(Debug)]
#[must_use = "dropping a container deletes it"]
pub struct Container<'r> {
    runtime: &'r Runtime,
    id: ContainerId,
    pid: i32,
    deleted: bool,
}

impl Container<'_> {
    /// The container id.
    pub fn id(&self) -> &ContainerId {
        &self.id
    }

    /// The container process's pid on the host, from the runtime's pid file.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `runtime start`: the container process runs the command. With `signals`, a stop
    /// signal lets the runtime end on its own for [`STOP_GRACE`] and is then forwarded to the
    /// command ([`SignalForwarder::defer_held_stop`]); a runtime still running then, or at a
    /// second stop signal, is killed (the container is then for [`Self::remove_after`]).
    ///
    /// # Errors
    /// [`DriverError::Runtime`] with the runtime's message; [`DriverError::Interrupted`].
    pub fn start(&self, mut signals: Option<&mut SignalForwarder>) -> Result<(), DriverError> {
        let limits = Limits {
            signals: signals.as_deref_mut(),
            timeout: Some(self.runtime.launch_timeout),
            launch: None,
            stop_grace: Some(STOP_GRACE),
        };
        self.runtime.run("start", &[self.id.as_str()], limits)?;
        // The command runs: a stop signal that came while the runtime started it is the
        // command's.
        if let Some(s) = signals {
            s.defer_held_stop();
        }
        Ok(())
    }

    /// `runtime kill ID SIGNAL`, `signal` being a name or number as runc takes it (`KILL`, `9`),
    /// killed after [`CLEANUP_TIMEOUT`].
    ///
    /// # Errors
    /// [`DriverError::Runtime`] with the runtime's message; [`DriverError::RuntimeTimeout`].
    pub fn kill(&self, signal: &str) -> Result<(), DriverError> {
        self.runtime.kill(&self.id, signal)
    }

    /// `runtime delete ID` (after the container stopped); if that fails, `delete --force`.
    /// With `signals`, a stop signal ends the call at once: the container stays in the
    /// runtime's state.
    ///
    /// # Errors
    /// [`DriverError::Runtime`] when even the forced delete fails;
    /// [`DriverError::Interrupted`]; [`DriverError::RuntimeTimeout`].
    pub fn delete(mut self, signals: Option<&mut SignalForwarder>) -> Result<(), DriverError> {
        self.deleted = true;
        let limits = Limits {
            signals,
            timeout: Some(CLEANUP_TIMEOUT),
            launch: None,
            stop_grace: None,
        };
        match self.runtime.run("delete", &[self.id.as_str()], limits) {
            Ok(_) => Ok(()),
            Err(e @ (DriverError::Interrupted { .. } | DriverError::RuntimeTimeout { .. })) => {
                Err(e)
            }
            Err(_) => self.runtime.force_delete(&self.id, CLEANUP_TIMEOUT),
        }
    }

    /// `runtime delete --force ID` after `error` ended the run: returns `error`, or
    /// [`DriverError::Left`] with it when the container could not be deleted. After a stop
    /// signal the delete may take [`INTERRUPTED_CLEANUP_TIMEOUT`], else [`CLEANUP_TIMEOUT`].
    pub fn remove_after(mut self, error: DriverError) -> DriverError {
        self.deleted = true;
        let timeout = if matches!(error, DriverError::Interrupted { .. }) {
            INTERRUPTED_CLEANUP_TIMEOUT
        } else {
            CLEANUP_TIMEOUT
        };
        match self.runtime.force_delete(&self.id, timeout) {
            Ok(()) => error,
            Err(cleanup) => DriverError::Left {
                id: self.id.clone(),
                error: Box::new(error),
                cleanup: Some(Box::new(cleanup)),
            },
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if !self.deleted {
            if let Err(e) = self.runtime.force_delete(&self.id, CLEANUP_TIMEOUT) {
                tracing::warn!(container_id = %self.id, error = %e, "cannot delete container");
            }
        }
    }
}

/// The longest message taken from a runtime's stderr, in bytes: the end of a longer line.
const MESSAGE_MAX: usize = 2048;

/// The last non-empty line of a runtime's stderr (its last [`MESSAGE_MAX`] bytes), or its exit
/// status when it printed nothing.
fn last_line(stderr: &str, status: std::process::ExitStatus) -> String {
    let Some(line) = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()) else {
        return format!("exited with {status}");
    };
    if line.len() <= MESSAGE_MAX {
        return line.to_owned();
    }
    let mut start = line.len() - MESSAGE_MAX;
    while !line.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &line[start..])
}

/// The message of the last error line of a runtime's JSON log (`--log-format json`: one object
/// per line): runc and crun write `{"level":"error","msg":...}`, youki
/// `{"level":"ERROR","message":...}`. Only the message's first line is kept: youki's goes on
/// with the chain of causes (`Caused by:`) and, with `RUST_BACKTRACE`, a backtrace. youki logs
/// one error line per layer, the innermost first, and its last one may not hold the system
/// error underneath (`... failed to prepare rootfs`): the first line's system error, when
/// the last has none, is added (`...: failed to canonicalize "hostname": Permission denied
/// (os error 13)`).
pub(crate) fn last_log_error(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let errors: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|value| {
            value
                .get("level")
                .and_then(|l| l.as_str())
                .is_some_and(|l| matches!(l.to_ascii_lowercase().as_str(), "error" | "fatal"))
        })
        .collect();
    let first_line = |value: &serde_json::Value| {
        let message = value
            .get("msg")
            .or_else(|| value.get("message"))?
            .as_str()?;
        let first = message.lines().next()?.trim();
        (!first.is_empty()).then(|| first.to_owned())
    };
    let last = errors.iter().rev().find_map(first_line)?;
    let has_system_error = |text: &str| text.contains("(os error ");
    if has_system_error(&last) || errors.iter().any(|e| e.get("msg").is_some()) {
        return Some(last);
    }
    // youki's innermost error with a system error: in its message, or as an errno name in
    // its `err` field.
    let cause = errors.iter().find_map(|value| {
        let message = first_line(value)?;
        if has_system_error(&message) {
            return Some(message);
        }
        let errno = value.get("err")?.as_str()?;
        let is_errno_name = errno.len() > 1
            && errno.starts_with('E')
            && errno
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        is_errno_name.then(|| format!("{message}: {}", errno_text(errno)))
    });
    Some(match cause {
        Some(cause) if !last.contains(&cause) => format!("{last}: {cause}"),
        _ => last,
    })
}

/// Why the container's process could not execute the command, when the runtime's JSON log
/// says so in a form of its own: youki's init logs `{"level":"ERROR","message":"failed to
/// execvp","err":"ENOENT","filename":"\"/x\"",...}` there (runc and crun write the reason to
/// the container's stderr instead). Worded as runc words it: `exec /x: no such file or
/// directory`.
pub(crate) fn exec_error_in_log(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        if value.get("message")?.as_str()? != "failed to execvp" {
            return None;
        }
        let errno = value.get("err")?.as_str()?;
        let filename = value.get("filename")?.as_str()?;
        // The file name as Rust's Debug shows a CString: in quotes, with escapes.
        let filename = filename
            .strip_prefix('"')
            .and_then(|f| f.strip_suffix('"'))
            .unwrap_or(filename)
            .replace("\\\"", "\"")
            .replace("\\\\", "\\");
        Some(format!("exec {filename}: {}", errno_text(errno)))
    })
}

/// The text of an errno name as Go's runtimes (runc) print it: `ENOENT` is
/// `no such file or directory`; an unknown name stays as it is.
fn errno_text(name: &str) -> String {
    let text = match name {
        "ENOENT" => "no such file or directory",
        "ENOEXEC" => "exec format error",
        "EACCES" => "permission denied",
        "EPERM" => "operation not permitted",
        "ENOTDIR" => "not a directory",
        "EISDIR" => "is a directory",
        "ELOOP" => "too many levels of symbolic links",
        "ETXTBSY" => "text file busy",
        "E2BIG" => "argument list too long",
        "ENOMEM" => "cannot allocate memory",
        "ENAMETOOLONG" => "file name too long",
        "ELIBBAD" => "accessing a corrupted shared library",
        "EINVAL" => "invalid argument",
        "EBUSY" => "device or resource busy",
        "EEXIST" => "file exists",
        "EROFS" => "read-only file system",
        "ENODEV" => "no such device",
        "ENOSPC" => "no space left on device",
        "EXDEV" => "invalid cross-device link",
        other => other,
    };
    text.to_owned()
}

/// The first `DIR/name` that is an executable file, for the directories `DIR` of the
/// `:`-separated `search_path` (empty entries skipped).
pub(crate) fn find_in_path(
    name: &std::ffi::OsStr,
    search_path: &std::ffi::OsStr,
) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn youki_gets_the_runtime_specs_propagation_names_and_no_additional_gids() {
        // The first lines of each runtime's `--version`.
        let youki = "youki version: 0.7.0\ncommit: 0.7.0-VERGEN_IDEMPOTENT_OUTPUT\n";
        let runc = "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n";
        let crun = "crun version 1.8.1\ncommit: f8a096be060b22ccd3d5f3ebe44108517fbf6c30\n";
        assert_eq!(RuntimeKind::from_version(youki), RuntimeKind::Youki);
        for version in [runc, crun, ""] {
            assert_eq!(RuntimeKind::from_version(version), RuntimeKind::Other);
        }
        for (kind, given, want) in [
            (RuntimeKind::Youki, "rslave", "slave"),
            (RuntimeKind::Youki, "rshared", "shared"),
            (RuntimeKind::Youki, "shared", "shared"),
            (RuntimeKind::Youki, "rprivate", "private"),
            (RuntimeKind::Other, "rslave", "rslave"),
            (RuntimeKind::Other, "shared", "shared"),
        ] {
            assert_eq!(kind.rootfs_propagation(given), want, "{kind:?} {given}");
        }
        assert!(!RuntimeKind::Youki.takes_additional_gids_without_root());
        assert!(RuntimeKind::Other.takes_additional_gids_without_root());
        assert!(RuntimeKind::Youki.wants_absolute_cgroups_path_with_own_userns());
        assert!(!RuntimeKind::Other.wants_absolute_cgroups_path_with_own_userns());
        assert!(RuntimeKind::Youki.writes_multi_range_maps_with_helpers());
        assert!(!RuntimeKind::Other.writes_multi_range_maps_with_helpers());
    }

    #[test]
    fn discover_by_name_and_path() {
        let rt = Runtime::discover("sh", "/nonexistent:/bin:/usr/bin", "/run/x").unwrap();
        assert!(rt.program().ends_with("sh"));
        assert_eq!(rt.root(), Path::new("/run/x"));
        let err = Runtime::discover("no-such-runtime", "/bin", "/run/x").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"OCI runtime "no-such-runtime" not found: install runc or pass --runtime PATH"#
        );
        assert!(Runtime::discover("/bin/sh", "", "/r").is_ok());
        assert!(Runtime::discover("/etc", "", "/r").is_err());
    }

    #[test]
    fn runtime_flags_become_global_flags() {
        let rt = Runtime::discover("sh", "/bin:/usr/bin", "/run/x")
            .unwrap()
            .runtime_flag("debug")
            .runtime_flag("--log-level=warn")
            .runtime_flag("root=/tmp/r");
        assert_eq!(rt.root(), Path::new("/tmp/r"));
        let cmd = rt.command("list");
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["--root", "/tmp/r", "--debug", "--log-level=warn", "list"]
        );
    }

    #[test]
    fn last_error_of_a_json_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(
            &log,
            "{\"level\":\"warning\",\"msg\":\"w\"}\nnot json\n\
             {\"level\":\"error\",\"msg\":\"first\"}\n{\"level\":\"error\",\"msg\":\"last\"}\n\
             {\"level\":\"info\",\"msg\":\"i\"}\n",
        )
        .unwrap();
        assert_eq!(last_log_error(&log).as_deref(), Some("last"));
        assert_eq!(last_log_error(&dir.path().join("missing")), None);
    }

    #[test]
    fn last_error_of_youkis_log() {
        // youki: upper-case levels, `message`, extra fields; its last error holds the chain of
        // causes and, with RUST_BACKTRACE, a backtrace.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(
            &log,
            concat!(
                r#"{"timestamp":"2026-12-07T11:15:30.888991Z","level":"ERROR","message":"failed to mount","err":"EINVAL","target":"libcontainer::rootfs"}"#,
                "\n",
                r#"{"timestamp":"2026-12-07T11:15:30.889Z","level":"ERROR","message":"error in executing command: failed to create container: mount error\n\nCaused by:\n    EINVAL\n\nStack backtrace:\n   0: <unknown>","target":"youki"}"#,
                "\n",
                r#"{"timestamp":"2026-12-07T11:15:30.9Z","level":"WARN","message":"w","target":"youki"}"#,
                "\n",
            ),
        )
        .unwrap();
        assert_eq!(
            last_log_error(&log).as_deref(),
            Some(
                "error in executing command: failed to create container: mount error: failed \
                 to mount: invalid argument"
            )
        );
        // The innermost error's system error, when the last line has none.
        std::fs::write(
            &log,
            concat!(
                r#"{"timestamp":"t","level":"ERROR","message":"failed to canonicalize \"hostname\": Permission denied (os error 13)","target":"libcontainer::rootfs::mount"}"#,
                "\n",
                r#"{"timestamp":"t","level":"ERROR","message":"failed to prepare rootfs","err":"Mount(Io(Os { code: 13, kind: PermissionDenied, message: \"Permission denied\" }))","target":"libcontainer::process::init::process"}"#,
                "\n",
                r#"{"timestamp":"t","level":"ERROR","message":"error in executing command: failed to create container: exec process failed with error error in executing process : failed to prepare rootfs","target":"youki"}"#,
                "\n",
            ),
        )
        .unwrap();
        assert_eq!(
            last_log_error(&log).as_deref(),
            Some(
                "error in executing command: failed to create container: exec process failed \
                 with error error in executing process : failed to prepare rootfs: failed to \
                 canonicalize \"hostname\": Permission denied (os error 13)"
            )
        );
        // A last line with its system error stays as it is.
        std::fs::write(
            &log,
            concat!(
                r#"{"timestamp":"t","level":"ERROR","message":"failed to create dir: Permission denied (os error 13)","target":"libcgroups"}"#,
                "\n",
                r#"{"timestamp":"t","level":"ERROR","message":"error in executing command: failed to create container: cgroup error: io error: failed to create dir /sys/fs/cgroup/cpu/x: Permission denied (os error 13)","target":"youki"}"#,
                "\n",
            ),
        )
        .unwrap();
        assert_eq!(
            last_log_error(&log).as_deref(),
            Some(
                "error in executing command: failed to create container: cgroup error: io \
                 error: failed to create dir /sys/fs/cgroup/cpu/x: Permission denied (os error \
                 13)"
            )
        );
    }

    #[test]
    fn youkis_exec_failure_is_worded_as_runcs() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(
            &log,
            concat!(
                r#"{"timestamp":"t","level":"ERROR","message":"failed to execvp","err":"ENOENT","filename":"\"/bad-interpreter\"","args":"[]","target":"libcontainer::workload::default"}"#,
                "\n",
                r#"{"timestamp":"t","level":"ERROR","message":"failed to execute payload","err":"Execution(\"error\")","target":"libcontainer::process::init"}"#,
                "\n",
            ),
        )
        .unwrap();
        assert_eq!(
            exec_error_in_log(&log).as_deref(),
            Some("exec /bad-interpreter: no such file or directory")
        );
        std::fs::write(
            &log,
            r#"{"timestamp":"t","level":"ERROR","message":"failed to execvp","err":"ENOEXEC","filename":"\"/a \\\"b\"","target":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            exec_error_in_log(&log).as_deref(),
            Some("exec /a \"b: exec format error")
        );
        // runc's and crun's logs hold no such line.
        std::fs::write(&log, r#"{"level":"error","msg":"x","time":"t"}"#).unwrap();
        assert_eq!(exec_error_in_log(&log), None);
    }

    #[test]
    fn mount_options_from_the_features_document() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let stand_in = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            Runtime::from_parts(path, "/nonexistent")
        };
        // runc 1.1 and youki 0.7, in short.
        let runc = stand_in(
            "runc",
            r#"echo '{"ociVersionMin":"1.0.0","mountOptions":["ro","rw","tmpcopyup"]}'"#,
        );
        let youki = stand_in("youki", r#"echo '{"mountOptions":["ro","rw","bind"]}'"#);
        // crun 1.8: no such subcommand.
        let crun = stand_in("crun", "echo 'unknown command features' >&2; exit 1");
        let bare = stand_in("bare", r#"echo '{"ociVersionMin":"1.0.0"}'"#);
        let garbled = stand_in("garbled", "echo 'not json'");
        assert!(runc.supports_mount_option("tmpcopyup").unwrap());
        assert!(!youki.supports_mount_option("tmpcopyup").unwrap());
        assert!(crun.supports_mount_option("tmpcopyup").unwrap());
        assert!(bare.supports_mount_option("tmpcopyup").unwrap());
        assert!(garbled
            .supports_mount_option("tmpcopyup")
            .unwrap_err()
            .to_string()
            .starts_with("garbled features failed: unreadable features"));
    }

    #[test]
    fn the_state_of_each_runtime_is_read() {
        use oci_spec::runtime::ContainerState;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let stand_in = |name: &str, state: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\necho '{state}'\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            Runtime::from_parts(path, "/nonexistent")
        };
        let id: ContainerId = "c1".parse().unwrap();
        // What runc 1.1, youki 0.7 and crun 1.8 print for a stopped container: youki keeps the
        // old pid, has no rootfs and a number for owner; crun adds systemd-scope.
        let runc = stand_in(
            "runc",
            r#"{"ociVersion":"1.0.2-dev","id":"c1","pid":0,"status":"stopped","bundle":"/b","rootfs":"/b/rootfs","created":"2026-12-07T11:15:05Z","owner":""}"#,
        );
        let youki = stand_in(
            "youki",
            r#"{"ociVersion":"1.1.0","id":"c1","status":"stopped","pid":4242,"bundle":"/b","created":"2026-12-07T11:15:30Z","owner":0}"#,
        );
        let crun = stand_in(
            "crun",
            r#"{"ociVersion":"1.0.0","id":"c1","pid":0,"status":"stopped","bundle":"/b","rootfs":"/b/rootfs","created":"2026-12-07T11:19:14Z","systemd-scope":"","owner":"root"}"#,
        );
        for (runtime, pid) in [(runc, 0), (youki, 4242), (crun, 0)] {
            let state = runtime.state(&id).unwrap();
            assert_eq!(state.id(), "c1");
            assert_eq!(*state.status(), ContainerState::Stopped);
            assert_eq!(state.pid().unwrap_or(0), pid);
            assert_eq!(state.bundle(), Path::new("/b"));
        }
        let garbled = stand_in("garbled", "not json");
        assert!(garbled
            .state(&id)
            .unwrap_err()
            .to_string()
            .starts_with("garbled state failed: unreadable state"));
    }

    #[test]
    fn run_and_create_get_ocirun_s_log_and_not_a_second_one() {
        let rt = Runtime::discover("sh", "/bin:/usr/bin", "/r")
            .unwrap()
            .runtime_flag("log-format=text")
            .runtime_flag("log=/tmp/other.log")
            .runtime_flag("log-level=debug")
            .runtime_flag("debug");
        let id: ContainerId = "c1".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle::create(dir.path(), &id).unwrap();
        let args: Vec<String> = rt
            .launch_command(Launch::Run, &id, &bundle, None)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args[..8],
            [
                "--root".to_owned(),
                "/r".into(),
                "--log".into(),
                format!("{}/runtime.log", bundle.path().display()),
                "--log-format".into(),
                "json".into(),
                "--log-level=debug".into(),
                "--debug".into(),
            ]
        );
        // The other subcommands get them as given.
        let delete: Vec<String> = rt
            .command("delete")
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(delete.contains(&"--log-format=text".to_owned()));
    }

    #[test]
    fn the_runtime_gets_no_backtrace_variables() {
        let rt = Runtime::discover("sh", "/bin:/usr/bin", "/run/x").unwrap();
        let id: ContainerId = "c1".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle::create(dir.path(), &id).unwrap();
        for cmd in [
            rt.command("delete"),
            rt.launch_command(Launch::Run, &id, &bundle, None),
        ] {
            let removed: Vec<_> = cmd
                .get_envs()
                .filter(|(_, value)| value.is_none())
                .map(|(key, _)| key.to_string_lossy().into_owned())
                .collect();
            assert_eq!(removed, ["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"]);
        }
    }

    #[test]
    fn run_detached_and_create_command_lines() {
        let rt = Runtime::discover("sh", "/bin:/usr/bin", "/r")
            .unwrap()
            .runtime_flag("debug");
        let id: ContainerId = "c1".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle::create(dir.path(), &id).unwrap();
        let b = bundle.path().display().to_string();
        let args = |cmd: Command| -> Vec<String> {
            cmd.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let socket = Path::new("/r/c/s.sock");
        assert_eq!(
            args(rt.launch_command(Launch::Run, &id, &bundle, Some(socket))),
            [
                "--root".to_owned(),
                "/r".into(),
                "--log".into(),
                format!("{b}/runtime.log"),
                "--log-format".into(),
                "json".into(),
                "--debug".into(),
                "run".into(),
                "--detach".into(),
                "--bundle".into(),
                b.clone(),
                "--pid-file".into(),
                format!("{b}/pid"),
                "--console-socket".into(),
                "/r/c/s.sock".into(),
                "c1".into(),
            ]
        );
        let create = args(rt.launch_command(Launch::Create, &id, &bundle, None));
        assert_eq!(create[7..9], ["create".to_owned(), "--bundle".into()]);
        assert_eq!(create.last().map(String::as_str), Some("c1"));
    }

    #[test]
    fn the_log_sink_gets_json_and_stderr_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(
            &log,
            "{\"level\":\"debug\",\"msg\":\"nsexec: started\",\"time\":\"t\"}\n\nplain\n",
        )
        .unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let into = seen.clone();
        let rt = Runtime::from_parts("/usr/sbin/runc", "/run/x")
            .show_log(move |line| into.lock().unwrap().push(line.to_owned()));
        assert!(rt.shows_log());
        rt.emit_json_log("create", &log);
        rt.emit("start", "time=\"t\" level=debug msg=\"x\"\n");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "runc create: debug: nsexec: started",
                "runc create: plain",
                "runc start: time=\"t\" level=debug msg=\"x\""
            ]
        );
    }
}
