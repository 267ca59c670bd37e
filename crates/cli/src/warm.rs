//! Work that `run` and `spec` need whatever their arguments, done on a thread of its own while
//! the main thread reads the rootfs and plans the mounts: the built-in seccomp profile, parsed,
//! and which of its syscall names the host's libseccomp knows. Done on the main thread, in a
//! process just started, these take a few tenths of a millisecond, most of it libseccomp's
//! first lookups.
//!
//! The thread starts once the signals ocirun forwards are blocked and the user namespace (if
//! any) is joined, and blocks every signal before [`start`] returns, so that the signals ocirun
//! reads from a signalfd are never taken by it. A process with more than one thread cannot join
//! a user namespace: `Invocation::enter_user_namespace` calls [`settle`] first all the same.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use nix::sys::signal::SigSet;
use ocirun_spec_gen::{LibSeccomp, SeccompProfile, SyscallChecker};

/// The syscall names of the built-in seccomp profile that libseccomp knows; any other name is
/// asked of libseccomp when it comes up (a profile given with `--security-opt seccomp=`).
#[derive(Debug)]
pub(crate) struct KnownSyscalls {
    known: HashSet<&'static str>,
}

impl KnownSyscalls {
    fn of_builtin() -> Self {
        Self {
            known: SeccompProfile::builtin_shared()
                .syscall_names()
                .filter(|name| LibSeccomp.is_known(name))
                .collect(),
        }
    }
}

impl SyscallChecker for KnownSyscalls {
    fn is_known(&self, name: &str) -> bool {
        self.known.contains(name) || LibSeccomp.is_known(name)
    }
}

/// The thread, while it has not been waited for.
static PENDING: Mutex<Option<JoinHandle<KnownSyscalls>>> = Mutex::new(None);

/// What it made.
static DONE: OnceLock<KnownSyscalls> = OnceLock::new();

/// Starts the work on its thread, and returns once the thread has blocked every signal (the
/// calling thread's mask is left alone: it blocks the signals it forwards itself, later).
/// When the thread cannot be started, the work is done when it is first asked for.
pub(crate) fn start() {
    let blocked = std::sync::Arc::new(std::sync::Barrier::new(2));
    let signal_blocked = std::sync::Arc::clone(&blocked);
    let thread = std::thread::Builder::new()
        .name("warm-up".into())
        .spawn(move || {
            // Until this returns the thread may take a signal as the main thread may, with
            // the default action either way.
            let _ = SigSet::all().thread_block();
            signal_blocked.wait();
            KnownSyscalls::of_builtin()
        });
    if let Ok(thread) = thread {
        blocked.wait();
        *PENDING.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
    }
}

/// Waits until the thread has ended (at once when it was never started or has been waited
/// for).
pub(crate) fn settle() {
    let _ = known_syscalls();
}

/// The syscall checker for the spec generator: what the thread made, waited for; made here
/// when there was no thread (or it failed).
pub(crate) fn known_syscalls() -> &'static KnownSyscalls {
    if let Some(done) = DONE.get() {
        return done;
    }
    let pending = PENDING.lock().unwrap_or_else(|e| e.into_inner()).take();
    let made = pending
        .and_then(|thread| thread.join().ok())
        .unwrap_or_else(KnownSyscalls::of_builtin);
    DONE.get_or_init(|| made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_libseccomp_knows_and_others_asked_for() {
        start();
        let known = known_syscalls();
        assert!(known.is_known("read"));
        assert!(known.is_known("mkdir"));
        // Not in the built-in profile, known to libseccomp.
        assert!(known.is_known("create_module"));
        assert!(!known.is_known("frobnicate"));
        // Waited for: no thread is left.
        assert!(PENDING.lock().unwrap().is_none());
        settle();
    }
}
