//! A [`SyscallChecker`] backed by libseccomp (cargo feature `libseccomp`, which links the C
//! library): syscall names are checked against the libseccomp of the host where the runtime
//! compiles the filter.

use crate::SyscallChecker;

/// libseccomp's syscall table: a name is known when `seccomp_syscall_resolve_name` resolves it
/// (for the native architecture, or as a pseudo-syscall of another one).
#[derive(Debug, Clone, Copy, Default)]
pub struct LibSeccomp;

impl SyscallChecker for LibSeccomp {
    fn is_known(&self, name: &str) -> bool {
        libseccomp::ScmpSyscall::from_name(name).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libseccomp_knows_every_name_of_the_builtin_profile() {
        let profile = crate::SeccompProfile::builtin();
        let unknown: Vec<&str> = profile
            .syscall_names()
            .filter(|n| !LibSeccomp.is_known(n))
            .collect();
        assert!(LibSeccomp.is_known("mkdir"));
        assert!(
            LibSeccomp.is_known("socketcall"),
            "a pseudo-syscall on x86_64"
        );
        assert!(!LibSeccomp.is_known("frobnicate"));
        // Debian bookworm's libseccomp 2.5.4 knows all of containers/common 0.50.1's names.
        assert_eq!(unknown, Vec::<&str>::new());
    }
}
