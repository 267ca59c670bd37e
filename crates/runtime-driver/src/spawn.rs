//! Starting the runtime for the calls that make a container (`create`, `run --detach`)
//! without a fork of the supervisor.
//!
//! Those calls need what posix_spawn(3) cannot give: SIGKILL as the parent-death signal
//! (prctl(2) `PR_SET_PDEATHSIG`), set by the child itself. `std::process::Command` with a
//! `pre_exec` hook can, but it forks: the supervisor's page tables are copied, and every page
//! it writes afterwards faults once more. [`spawn_launch`] does what glibc's posix_spawn does
//! instead, clone(2) with `CLONE_VM | CLONE_VFORK` (the child borrows the supervisor's memory
//! until it executes the runtime, the calling thread waits meanwhile), and runs the few
//! async-signal-safe steps the runtime needs in the child: signal handlers back to their
//! defaults, an empty signal mask, the parent-death signal, a process group of its own, the
//! three stdio descriptors, the working directory, then execve(2).
//!
//! The mask: a child inherits its parent's, the supervisor blocks the signals it reads from
//! signalfds, and the runtime hands its mask on to the container's process: with the
//! supervisor's, a container would never see the SIGUSR1 forwarded to it, nor the SIGWINCH of
//! its terminal. The parent-death signal comes when the thread that started the runtime ends
//! (the supervisor's main thread, or its process); if that happened before the signal was
//! set, the child does not run the runtime at all.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};

/// The stdio of a launched runtime: what becomes its descriptors 0, 1 and 2. A `stderr` of
/// `None` is a pipe whose read end [`Launched::stderr`] holds.
#[derive(Debug)]
pub(crate) struct LaunchStdio {
    pub(crate) stdin: OwnedFd,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: Option<OwnedFd>,
}

impl LaunchStdio {
    /// The same descriptors, duplicated (dup(2), close-on-exec).
    pub(crate) fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            stdin: self.stdin.try_clone()?,
            stdout: self.stdout.try_clone()?,
            stderr: self.stderr.as_ref().map(OwnedFd::try_clone).transpose()?,
        })
    }
}

/// A runtime started by [`spawn_launch`]; reaped by [`Self::try_wait`] or [`Self::wait`].
#[derive(Debug)]
pub(crate) struct Launched {
    pid: libc::pid_t,
    status: Option<ExitStatus>,
    /// The read end of the runtime's stderr, when [`LaunchStdio::stderr`] was `None`.
    pub(crate) stderr: Option<OwnedFd>,
}

impl Launched {
    /// The runtime's pid.
    pub(crate) fn id(&self) -> u32 {
        self.pid as u32
    }

    /// The exit status, once the runtime has exited (waitpid(2) with `WNOHANG`).
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.reap(libc::WNOHANG)
    }

    /// Waits for the runtime to exit.
    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.reap(0)? {
                return Ok(status);
            }
        }
    }

    fn reap(&mut self, options: libc::c_int) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let mut raw = 0;
        // SAFETY: waitpid(2) on our own child, writing to a local.
        #[allow(unsafe_code)]
        let got = unsafe { libc::waitpid(self.pid, &mut raw, options) };
        match got {
            0 => Ok(None),
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            _ => {
                let status = ExitStatus::from_raw(raw);
                self.status = Some(status);
                Ok(Some(status))
            }
        }
    }
}

/// Everything the child needs, made before the clone: the child allocates nothing.
struct Prepared {
    program: CString,
    /// The strings `argv_ptrs` points into.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// The strings `envp_ptrs` points into.
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    /// Descriptors 0, 1 and 2 of the child.
    stdio: [RawFd; 3],
    parent: libc::pid_t,
    /// The errno of the step that failed in the child, 0 while none did.
    failed: AtomicI32,
}

/// Starts `cmd`'s program with `cmd`'s arguments, environment (this process's, changed as
/// `cmd` says) and working directory, and `stdio`, as module documentation says: in a process
/// group of its own, with an empty signal mask, default signal handlers and SIGKILL as its
/// parent-death signal (sent when the calling thread ends). A program name without a `/` is
/// looked up in the `PATH` the program gets.
///
/// # Errors
/// The error of the step that failed in the child (an execve(2) `ENOENT` for a missing
/// program, say; `ESRCH` when the parent was gone before the parent-death signal was set),
/// or of clone(2) or pipe(2) here. The child is reaped before the error is returned.
#[allow(unsafe_code)]
pub(crate) fn spawn_launch(cmd: &Command, stdio: LaunchStdio) -> io::Result<Launched> {
    let env = child_environment(cmd);
    let program = resolve_program(cmd.get_program(), &env)?;
    let (stderr_write, stderr_read) = match stdio.stderr {
        Some(fd) => (fd, None),
        None => {
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            (write, Some(read))
        }
    };
    let argv: Vec<CString> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(c_string)
        .collect::<io::Result<_>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|(k, v)| {
            let mut pair = k.clone();
            pair.push("=");
            pair.push(v);
            c_string(&pair)
        })
        .collect::<io::Result<_>>()?;
    let prepared = Prepared {
        program: c_string(program.as_os_str())?,
        argv_ptrs: pointers(&argv),
        _argv: argv,
        envp_ptrs: pointers(&envp),
        _envp: envp,
        cwd: cmd
            .get_current_dir()
            .map(|d| c_string(d.as_os_str()))
            .transpose()?,
        stdio: [
            stdio.stdin.as_raw_fd(),
            stdio.stdout.as_raw_fd(),
            stderr_write.as_raw_fd(),
        ],
        // SAFETY: getpid(2) cannot fail.
        parent: unsafe { libc::getpid() },
        failed: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; 64 * 1024];
    // No handler of this process may run in the child, which shares its memory: every signal
    // is blocked across the clone, the child sets its handlers back to the defaults before it
    // unblocks them.
    // SAFETY: sigfillset(3) and pthread_sigmask(3) on locals.
    let old_mask = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    };
    let child = {
        let prepared = &prepared;
        let run: nix::sched::CloneCb<'_> = Box::new(move || child_main(prepared));
        // SAFETY: the child runs `child_main` on `stack`, in this process's memory, while
        // this thread waits (CLONE_VFORK) until it has executed the runtime or exited;
        // `child_main` only makes async-signal-safe calls on data made above and allocates
        // nothing. `prepared` and `stack` outlive the child's use of them.
        unsafe {
            nix::sched::clone(
                run,
                &mut stack,
                nix::sched::CloneFlags::CLONE_VM | nix::sched::CloneFlags::CLONE_VFORK,
                Some(libc::SIGCHLD),
            )
        }
    };
    // SAFETY: restores the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut());
    }
    let pid = child.map_err(io::Error::from)?.as_raw();
    drop(stderr_write);
    drop(stdio.stdin);
    drop(stdio.stdout);
    let mut launched = Launched {
        pid,
        status: None,
        stderr: stderr_read,
    };
    let failed = prepared.failed.load(Ordering::SeqCst);
    if failed != 0 {
        let _ = launched.wait();
        return Err(io::Error::from_raw_os_error(failed));
    }
    Ok(launched)
}

/// The child's end when a step failed: the step's errno into `prepared.failed`, exit code
/// 127.
#[allow(unsafe_code)]
fn fail(prepared: &Prepared) -> ! {
    // SAFETY: reads this thread's errno; _exit(2) is async-signal-safe.
    unsafe {
        prepared
            .failed
            .store(*libc::__errno_location(), Ordering::SeqCst);
        libc::_exit(127)
    }
}

/// The child between clone(2) and execve(2); returns only through [`fail`].
#[allow(unsafe_code)]
fn child_main(prepared: &Prepared) -> isize {
    let fail = || fail(prepared);
    // SAFETY: async-signal-safe calls only, on stack locals and on `prepared`, which the
    // parent keeps alive and does not touch until this child has executed or exited.
    unsafe {
        for signal in 1..=libc::SIGRTMAX() {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut action) == 0
                && action.sa_sigaction != libc::SIG_DFL
                && action.sa_sigaction != libc::SIG_IGN
            {
                action.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            fail();
        }
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail();
        }
        if libc::getppid() != prepared.parent {
            *libc::__errno_location() = libc::ESRCH;
            fail();
        }
        if libc::setpgid(0, 0) != 0 {
            fail();
        }
        // Each descriptor first to a number above 2, so that none is overwritten before it
        // was moved into place.
        let mut high = [-1; 3];
        for (slot, fd) in high.iter_mut().zip(prepared.stdio) {
            *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
            if *slot < 0 {
                fail();
            }
        }
        for (target, fd) in high.into_iter().enumerate() {
            if libc::dup2(fd, target as libc::c_int) < 0 {
                fail();
            }
        }
        if let Some(cwd) = &prepared.cwd {
            if libc::chdir(cwd.as_ptr()) != 0 {
                fail();
            }
        }
        libc::execve(
            prepared.program.as_ptr(),
            prepared.argv_ptrs.as_ptr(),
            prepared.envp_ptrs.as_ptr(),
        );
    }
    fail()
}

/// The environment `cmd` gives its program: this process's, with `cmd`'s changes.
fn child_environment(cmd: &Command) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (key, value) in cmd.get_envs() {
        env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            env.push((key.to_owned(), value.to_owned()));
        }
    }
    env
}

/// `program` as execve(2) takes it: as given when it holds a `/`, else the first executable
/// file of that name in the directories of `env`'s `PATH` ([`crate::runtime::find_in_path`],
/// as [`crate::Runtime::discover`] looks runtimes up).
fn resolve_program(program: &OsStr, env: &[(OsString, OsString)]) -> io::Result<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    crate::runtime::find_in_path(program, &path)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes().to_vec()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} holds a NUL byte"),
        )
    })
}

/// The pointers of `strings`, then a null pointer: an argv or envp for execve(2).
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn the_runtime_gets_its_stdio_mask_group_directory_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let (read, write) = nix::unistd::pipe().unwrap();
        let mut cmd = sh("grep -E '^(SigBlk|SigIgn)' /proc/self/status; pwd; \
             echo \"$OCIRUN_SPAWN_TEST-${OCIRUN_SPAWN_GONE:-unset}\"; \
             ps -o pgid= -p $$ | tr -d ' '; echo $$; echo err >&2");
        cmd.current_dir(dir.path())
            .env("OCIRUN_SPAWN_TEST", "given")
            .env_remove("OCIRUN_SPAWN_GONE");
        // Blocked here: the child starts with an empty mask all the same.
        let mut blocked = nix::sys::signal::SigSet::empty();
        blocked.add(nix::sys::signal::Signal::SIGUSR1);
        let old = blocked
            .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
            .unwrap();
        let mut launched = spawn_launch(
            &cmd,
            LaunchStdio {
                stdin: null(),
                stdout: write,
                stderr: None,
            },
        )
        .unwrap();
        old.thread_set_mask().unwrap();
        let mut out = String::new();
        std::fs::File::from(read).read_to_string(&mut out).unwrap();
        let mut err = String::new();
        std::fs::File::from(launched.stderr.take().unwrap())
            .read_to_string(&mut err)
            .unwrap();
        assert!(launched.wait().unwrap().success());
        let pid = launched.id().to_string();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "SigBlk:\t0000000000000000");
        assert_eq!(
            lines[2],
            dir.path().canonicalize().unwrap().to_str().unwrap()
        );
        assert_eq!(lines[3], "given-unset");
        assert_eq!(lines[4], pid, "a process group of its own");
        assert_eq!(lines[5], pid);
        assert_eq!(err, "err\n");
        // Reaped once; asking again gives the same status.
        assert!(launched.try_wait().unwrap().unwrap().success());
    }

    #[test]
    fn a_program_that_cannot_be_run_is_an_error_of_the_spawn() {
        let stdio = || LaunchStdio {
            stdin: null(),
            stdout: null(),
            stderr: Some(null()),
        };
        let err = spawn_launch(&Command::new("/nonexistent/runtime"), stdio()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        let err = spawn_launch(&Command::new("ocirun-no-such-runtime"), stdio()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        let err = spawn_launch(&Command::new("/etc"), stdio()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES));
        let mut cmd = sh("true");
        cmd.current_dir("/nonexistent/dir");
        let err = spawn_launch(&cmd, stdio()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
}
