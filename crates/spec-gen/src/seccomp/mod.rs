//! Seccomp profiles: the built-in default, loading profiles in the containers/Docker JSON
//! format (or an OCI `linux.seccomp` object), and resolving them into runtime-spec
//! `linux.seccomp` for one run (docs/ocirun-run.md "Linux", Seccomp).
//!
//! Resolution, as containers/common's `setupSeccomp` does it:
//! 1. `architectures` are taken as they are; or the `archMap` entry of the native architecture
//!    gives it and its compat sub-architectures (x86_64: x86 and x32);
//! 2. `defaultErrno` (a name or a number) wins over `defaultErrnoRet`, `errno` over `errnoRet`;
//! 3. a rule is dropped when its `excludes.arches` holds the native architecture, its
//!    `excludes.caps` holds any capability of the final bounding set, its `includes.arches`
//!    lacks the native architecture, its `includes.caps` holds one that the bounding set lacks,
//!    or its `includes.minKernel` is above the host's kernel;
//! 4. every syscall name that is left is checked with a [`SyscallChecker`] (the cli's asks
//!    libseccomp): in a loaded profile an unknown name is an error that names it; in the
//!    built-in profile, which is written for the newest kernels, a name the host's libseccomp
//!    does not know is left out, as runc itself would skip it.
//!
//! The built-in profile is containers/common's `seccomp.json` of release 0.50.1, as Debian
//! bookworm ships it (`golang-github-containers-common`, `/usr/share/containers/seccomp.json`),
//! kept verbatim in `src/seccomp/default.json`: ERRNO(ENOSYS) for syscalls it does not know,
//! EPERM for the dangerous ones, and capability- and architecture-gated groups. It is
//! Apache-2.0 licensed (SPDX `Apache-2.0`, copyright 2013-2018 Docker, Inc. and the
//! containers/common authors), as this crate is. To update it, replace the file with a newer
//! release's `seccomp.json` and review the golden files' diff.

mod errno;

use std::fmt;
use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
    LinuxSyscallBuilder,
};
use serde::Deserialize;

use crate::SpecError;

/// The built-in profile's JSON, as shipped (see the module docs for its source).
pub const DEFAULT_PROFILE_JSON: &str = include_str!("default.json");

/// Whether the seccomp library that will compile the filter knows a syscall name.
///
/// spec-gen cannot ask libseccomp itself: it is a C library, and this crate does no I/O and
/// links nothing but Rust. The caller implements this, e.g. with the `libseccomp` crate's
/// `ScmpSyscall::from_name`, which is what the `ocirun` binary does. Without a checker only the
/// syntax of names is checked (lower-case letters, digits and `_`).
pub trait SyscallChecker {
    /// `true` when `name` is a syscall the library can resolve (on any architecture it knows).
    fn is_known(&self, name: &str) -> bool;
}

/// A CPU architecture, as libseccomp names it (`seccomp_arch_native()`, and the names of a
/// profile's `includes.arches`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NativeArch {
    /// `x86` (i386).
    X86,
    /// `amd64` (x86_64).
    Amd64,
    /// `x32`.
    X32,
    /// `arm` (32-bit).
    Arm,
    /// `arm64` (aarch64).
    Arm64,
    /// `mips`.
    Mips,
    /// `mips64`.
    Mips64,
    /// `mips64n32`.
    Mips64n32,
    /// `mipsel`.
    Mipsel,
    /// `mipsel64`.
    Mipsel64,
    /// `mipsel64n32`.
    Mipsel64n32,
    /// `ppc`.
    Ppc,
    /// `ppc64` (big-endian).
    Ppc64,
    /// `ppc64le`.
    Ppc64le,
    /// `s390`.
    S390,
    /// `s390x`.
    S390x,
    /// `riscv64`.
    Riscv64,
}

impl NativeArch {
    const ALL: [NativeArch; 17] = [
        Self::X86,
        Self::Amd64,
        Self::X32,
        Self::Arm,
        Self::Arm64,
        Self::Mips,
        Self::Mips64,
        Self::Mips64n32,
        Self::Mipsel,
        Self::Mipsel64,
        Self::Mipsel64n32,
        Self::Ppc,
        Self::Ppc64,
        Self::Ppc64le,
        Self::S390,
        Self::S390x,
        Self::Riscv64,
    ];

    /// libseccomp's name: `amd64`, `arm64`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::X86 => "x86",
            Self::Amd64 => "amd64",
            Self::X32 => "x32",
            Self::Arm => "arm",
            Self::Arm64 => "arm64",
            Self::Mips => "mips",
            Self::Mips64 => "mips64",
            Self::Mips64n32 => "mips64n32",
            Self::Mipsel => "mipsel",
            Self::Mipsel64 => "mipsel64",
            Self::Mipsel64n32 => "mipsel64n32",
            Self::Ppc => "ppc",
            Self::Ppc64 => "ppc64",
            Self::Ppc64le => "ppc64le",
            Self::S390 => "s390",
            Self::S390x => "s390x",
            Self::Riscv64 => "riscv64",
        }
    }

    /// The runtime-spec name: `SCMP_ARCH_X86_64`, ...
    pub fn scmp(self) -> Arch {
        match self {
            Self::X86 => Arch::ScmpArchX86,
            Self::Amd64 => Arch::ScmpArchX86_64,
            Self::X32 => Arch::ScmpArchX32,
            Self::Arm => Arch::ScmpArchArm,
            Self::Arm64 => Arch::ScmpArchAarch64,
            Self::Mips => Arch::ScmpArchMips,
            Self::Mips64 => Arch::ScmpArchMips64,
            Self::Mips64n32 => Arch::ScmpArchMips64n32,
            Self::Mipsel => Arch::ScmpArchMipsel,
            Self::Mipsel64 => Arch::ScmpArchMipsel64,
            Self::Mipsel64n32 => Arch::ScmpArchMipsel64n32,
            Self::Ppc => Arch::ScmpArchPpc,
            Self::Ppc64 => Arch::ScmpArchPpc64,
            Self::Ppc64le => Arch::ScmpArchPpc64le,
            Self::S390 => Arch::ScmpArchS390,
            Self::S390x => Arch::ScmpArchS390x,
            Self::Riscv64 => Arch::ScmpArchRiscv64,
        }
    }

    /// The architecture this crate was compiled for (what libseccomp's
    /// `seccomp_arch_native()` answers for a program built the same way); `None` for one
    /// libseccomp does not know.
    pub const fn compiled() -> Option<Self> {
        if cfg!(target_arch = "x86_64") {
            if cfg!(target_pointer_width = "32") {
                Some(Self::X32)
            } else {
                Some(Self::Amd64)
            }
        } else if cfg!(target_arch = "x86") {
            Some(Self::X86)
        } else if cfg!(target_arch = "aarch64") {
            Some(Self::Arm64)
        } else if cfg!(target_arch = "arm") {
            Some(Self::Arm)
        } else if cfg!(target_arch = "powerpc64") {
            if cfg!(target_endian = "little") {
                Some(Self::Ppc64le)
            } else {
                Some(Self::Ppc64)
            }
        } else if cfg!(target_arch = "powerpc") {
            Some(Self::Ppc)
        } else if cfg!(target_arch = "s390x") {
            Some(Self::S390x)
        } else if cfg!(target_arch = "riscv64") {
            Some(Self::Riscv64)
        } else if cfg!(target_arch = "mips64") {
            if cfg!(target_endian = "little") {
                Some(Self::Mipsel64)
            } else {
                Some(Self::Mips64)
            }
        } else if cfg!(target_arch = "mips") {
            if cfg!(target_endian = "little") {
                Some(Self::Mipsel)
            } else {
                Some(Self::Mips)
            }
        } else {
            None
        }
    }
}

impl fmt::Display for NativeArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NativeArch {
    type Err = SpecError;

    /// Parses libseccomp's name (`amd64`, ...).
    fn from_str(s: &str) -> Result<Self, SpecError> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| SpecError::UnknownArch(s.to_owned()))
    }
}

/// A seccomp profile in the containers/Docker JSON format, or an OCI `linux.seccomp` object,
/// parsed but not yet resolved for a run.
///
/// ```
/// use ocirun_spec_gen::SeccompProfile;
/// let profile = SeccompProfile::from_json(br#"{
///     "defaultAction": "SCMP_ACT_ALLOW",
///     "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
/// }"#).unwrap();
/// assert_eq!(profile.syscall_names().count(), 2);
/// assert!(SeccompProfile::builtin().syscall_names().any(|n| n == "read"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    default_errno: Option<String>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMapEntry>>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    args: Option<Vec<RuleArg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    errno: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleArg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// What a profile is resolved against: the final bounding capability set, the native
/// architecture and the host's kernel.
#[derive(Debug, Clone)]
pub(crate) struct ResolveContext<'a> {
    /// `CAP_...` names of the final bounding set.
    pub(crate) bounding: &'a [String],
    /// The native architecture (`None`: unknown, so no `archMap` entry and no arch-gated rule
    /// applies).
    pub(crate) arch: Option<NativeArch>,
    /// The host kernel's `(major, minor)`; `None`: assume every `minKernel` is met.
    pub(crate) kernel: Option<(u32, u32)>,
}

/// seccomp filters take at most six syscall arguments (indexes 0 to 5).
const MAX_ARG_INDEX: usize = 5;

impl SeccompProfile {
    /// Parses a profile from JSON bytes. Unknown members are ignored, as containers/common
    /// does; actions, operators, architectures and flags must be runtime-spec names
    /// (`SCMP_ACT_ERRNO`, `SCMP_CMP_EQ`, `SCMP_ARCH_X86_64`, `SECCOMP_FILTER_FLAG_LOG`).
    ///
    /// # Errors
    /// serde's description of what is wrong, with its line and column.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// The built-in default profile (see the module docs).
    ///
    /// # Panics
    /// Never: a test parses the shipped JSON.
    pub fn builtin() -> Self {
        Self::from_json(DEFAULT_PROFILE_JSON.as_bytes())
            .unwrap_or_else(|e| panic!("the built-in seccomp profile does not parse: {e}"))
    }

    /// [`Self::builtin`], parsed once per process and shared by every caller (the generator
    /// uses this one; a caller may parse it ahead of time on another thread).
    pub fn builtin_shared() -> &'static Self {
        static BUILTIN: std::sync::OnceLock<SeccompProfile> = std::sync::OnceLock::new();
        BUILTIN.get_or_init(Self::builtin)
    }

    /// Every syscall name of every rule, in order (with repeats), before resolution.
    pub fn syscall_names(&self) -> impl Iterator<Item = &str> {
        self.syscalls.iter().flatten().flat_map(|rule| {
            rule.name
                .iter()
                .map(String::as_str)
                .chain(rule.names.iter().flatten().map(String::as_str))
        })
    }

    /// Resolves the profile for one run (steps in the module docs). `builtin` chooses what an
    /// unknown syscall name does: left out (the built-in profile) or an error naming it and
    /// `origin`.
    pub(crate) fn resolve(
        &self,
        ctx: &ResolveContext<'_>,
        checker: Option<&dyn SyscallChecker>,
        builtin: bool,
        origin: &str,
    ) -> Result<LinuxSeccomp, SpecError> {
        let bad = |reason: String| SpecError::InvalidSeccompProfile {
            origin: origin.to_owned(),
            reason,
        };
        let architectures = match (&self.architectures, &self.arch_map) {
            (Some(a), Some(m)) if !a.is_empty() && !m.is_empty() => {
                return Err(bad(
                    "both architectures and archMap are given; use one".to_owned()
                ))
            }
            (Some(a), _) if !a.is_empty() => a.clone(),
            (_, Some(map)) => ctx
                .arch
                .and_then(|native| map.iter().find(|e| e.architecture == native.scmp()))
                .map(|e| {
                    std::iter::once(e.architecture)
                        .chain(e.sub_architectures.iter().flatten().copied())
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let default_errno =
            errno(self.default_errno.as_deref(), self.default_errno_ret).map_err(&bad)?;

        let mut syscalls: Vec<LinuxSyscall> = Vec::new();
        for (i, rule) in self.syscalls.iter().flatten().enumerate() {
            let which = |what: String| bad(format!("syscalls[{i}]: {what}"));
            if !applies(rule, ctx).map_err(which)? {
                continue;
            }
            let names: Vec<String> = match (&rule.name, &rule.names) {
                (Some(_), Some(names)) if !names.is_empty() => {
                    return Err(which("both name and names are given; use one".to_owned()))
                }
                (Some(name), _) => vec![name.clone()],
                (None, Some(names)) if !names.is_empty() => names.clone(),
                _ => return Err(which("no syscall names".to_owned())),
            };
            let mut kept = Vec::with_capacity(names.len());
            for name in names {
                let well_formed = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                let known = well_formed && checker.is_none_or(|c| c.is_known(&name));
                if known {
                    kept.push(name);
                } else if !builtin {
                    return Err(SpecError::UnknownSyscall {
                        name,
                        origin: origin.to_owned(),
                    });
                }
            }
            if kept.is_empty() {
                continue;
            }
            let mut args = Vec::new();
            for arg in rule.args.iter().flatten() {
                if arg.index > MAX_ARG_INDEX {
                    return Err(which(format!(
                        "argument index {} is above {MAX_ARG_INDEX}",
                        arg.index
                    )));
                }
                args.push(seccomp_arg(arg)?);
            }
            let mut builder = LinuxSyscallBuilder::default()
                .names(kept)
                .action(rule.action);
            if let Some(errno) = errno(rule.errno.as_deref(), rule.errno_ret).map_err(which)? {
                builder = builder.errno_ret(errno);
            }
            if !args.is_empty() {
                builder = builder.args(args);
            }
            syscalls.push(builder.build().map_err(crate::generate::internal)?);
        }

        let mut builder = LinuxSeccompBuilder::default()
            .default_action(self.default_action)
            .syscalls(syscalls);
        if let Some(errno) = default_errno {
            builder = builder.default_errno_ret(errno);
        }
        if !architectures.is_empty() {
            builder = builder.architectures(architectures);
        }
        if let Some(flags) = self.flags.as_ref().filter(|f| !f.is_empty()) {
            builder = builder.flags(flags.clone());
        }
        if let Some(path) = self.listener_path.as_ref().filter(|p| !p.is_empty()) {
            builder = builder.listener_path(path);
        }
        if let Some(meta) = self.listener_metadata.as_ref().filter(|m| !m.is_empty()) {
            builder = builder.listener_metadata(meta);
        }
        builder.build().map_err(crate::generate::internal)
    }
}

fn seccomp_arg(arg: &RuleArg) -> Result<LinuxSeccompArg, SpecError> {
    let mut builder = LinuxSeccompArgBuilder::default()
        .index(arg.index)
        .value(arg.value)
        .op(arg.op);
    if let Some(two) = arg.value_two.filter(|v| *v != 0) {
        builder = builder.value_two(two);
    }
    builder.build().map_err(crate::generate::internal)
}

/// Whether a rule's includes and excludes let it apply (step 3 of the module docs).
fn applies(rule: &Rule, ctx: &ResolveContext<'_>) -> Result<bool, String> {
    let arch = ctx.arch.map(NativeArch::name);
    let has_cap = |c: &String| ctx.bounding.iter().any(|b| b == c);
    if let Some(ex) = &rule.excludes {
        if ex.arches.iter().flatten().any(|a| Some(a.as_str()) == arch) {
            return Ok(false);
        }
        if ex.caps.iter().flatten().any(has_cap) {
            return Ok(false);
        }
    }
    if let Some(inc) = &rule.includes {
        if let Some(arches) = inc.arches.as_ref().filter(|a| !a.is_empty()) {
            if !arches.iter().any(|a| Some(a.as_str()) == arch) {
                return Ok(false);
            }
        }
        if !inc.caps.iter().flatten().all(has_cap) {
            return Ok(false);
        }
        if let Some(min) = inc.min_kernel.as_deref().filter(|m| !m.is_empty()) {
            let wanted = parse_kernel_release(min)
                .ok_or_else(|| format!("minKernel {min:?} is not MAJOR.MINOR"))?;
            if ctx.kernel.is_some_and(|k| k < wanted) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Parses the `MAJOR.MINOR` of a kernel release as uname(2) gives it (`6.1.0-18-amd64` is
/// `(6, 1)`; anything after the minor number is ignored), for [`HostFacts::kernel`].
///
/// [`HostFacts::kernel`]: crate::HostFacts::kernel
pub(crate) fn parse_kernel_release(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// `errno` (a name like `EPERM`, or a number) wins over `errno_ret`.
fn errno(name: Option<&str>, errno_ret: Option<u32>) -> Result<Option<u32>, String> {
    match name.filter(|n| !n.is_empty()) {
        None => Ok(errno_ret),
        Some(n) => {
            if let Ok(number) = n.parse::<u32>() {
                return Ok(Some(number));
            }
            errno::ERRNOS
                .iter()
                .find(|(name, _)| *name == n)
                .map(|(_, number)| Some(*number))
                .ok_or_else(|| format!("unknown errno {n:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_CAPS: [&str; 11] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETFCAP",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_SETUID",
        "CAP_SYS_CHROOT",
    ];

    fn caps(extra: &[&str]) -> Vec<String> {
        ROOT_CAPS
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect()
    }

    fn resolve(profile: &SeccompProfile, bounding: &[String], arch: NativeArch) -> LinuxSeccomp {
        let ctx = ResolveContext {
            bounding,
            arch: Some(arch),
            kernel: Some((6, 1)),
        };
        profile.resolve(&ctx, None, true, "built-in").unwrap()
    }

    fn allowed(seccomp: &LinuxSeccomp, name: &str) -> bool {
        seccomp.syscalls().iter().flatten().any(|s| {
            s.action() == LinuxSeccompAction::ScmpActAllow
                && s.args().is_none()
                && s.names().iter().any(|n| n == name)
        })
    }

    #[test]
    fn builtin_profile_resolves_for_amd64() {
        let s = resolve(&SeccompProfile::builtin(), &caps(&[]), NativeArch::Amd64);
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(38));
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        let first = &s.syscalls().as_ref().unwrap()[0];
        assert_eq!(first.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(first.errno_ret(), Some(1));
        assert!(first.names().contains(&"kexec_load".to_owned()));
        assert!(allowed(&s, "read"));
        assert!(allowed(&s, "arch_prctl"));
        assert!(!allowed(&s, "arm_fadvise64_64"));
        assert!(allowed(&s, "chroot"));
        assert!(
            allowed(&s, "mount"),
            "containers/common leaves mount to CAP_SYS_ADMIN"
        );
        assert!(!allowed(&s, "bpf"));
        assert!(!allowed(&s, "kcmp"));
    }

    #[test]
    fn capability_gates_follow_the_bounding_set() {
        let s = resolve(
            &SeccompProfile::builtin(),
            &caps(&["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]),
            NativeArch::Amd64,
        );
        assert!(allowed(&s, "bpf"));
        assert!(allowed(&s, "kcmp"));
        // The EPERM rule for bpf is left out when CAP_SYS_ADMIN is there.
        assert!(!s.syscalls().iter().flatten().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActErrno && r.names().contains(&"bpf".into())
        }));
        let none = resolve(&SeccompProfile::builtin(), &[], NativeArch::Amd64);
        assert!(!allowed(&none, "chroot"));
    }

    #[test]
    fn architecture_gates() {
        let s = resolve(&SeccompProfile::builtin(), &caps(&[]), NativeArch::Arm64);
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
        assert!(allowed(&s, "arm_fadvise64_64"));
        assert!(!allowed(&s, "arch_prctl"));
        let s = resolve(&SeccompProfile::builtin(), &caps(&[]), NativeArch::Ppc64le);
        assert_eq!(s.architectures(), &None);
    }

    struct Knows(&'static [&'static str]);
    impl SyscallChecker for Knows {
        fn is_known(&self, name: &str) -> bool {
            self.0.contains(&name)
        }
    }

    #[test]
    fn unknown_names_are_errors_in_loaded_profiles_and_left_out_of_the_builtin() {
        let profile = SeccompProfile::from_json(
            br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["mkdir","frobnicate"],"action":"SCMP_ACT_ERRNO","errno":"EPERM"}]}"#,
        )
        .unwrap();
        let bounding = caps(&[]);
        let ctx = ResolveContext {
            bounding: &bounding,
            arch: Some(NativeArch::Amd64),
            kernel: None,
        };
        let checker = Knows(&["mkdir"]);
        let err = profile
            .resolve(&ctx, Some(&checker), false, "/p.json")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"seccomp profile "/p.json": unknown syscall "frobnicate""#
        );
        let s = profile
            .resolve(&ctx, Some(&checker), true, "built-in")
            .unwrap();
        let rules = s.syscalls().as_ref().unwrap();
        assert_eq!(rules[0].names(), &["mkdir".to_owned()]);
        assert_eq!(rules[0].errno_ret(), Some(1));
        let err = profile.resolve(&ctx, None, false, "/p.json");
        assert!(err.is_ok(), "without a checker only the syntax is checked");
        let bad_syntax = SeccompProfile::from_json(
            br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["Mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        assert!(bad_syntax.resolve(&ctx, None, false, "/p.json").is_err());
    }

    #[test]
    fn oci_object_and_format_errors() {
        let oci = SeccompProfile::from_json(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
                 "architectures":["SCMP_ARCH_X86_64"],"flags":["SECCOMP_FILTER_FLAG_LOG"],
                 "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW",
                   "args":[{"index":0,"value":3,"valueTwo":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        let bounding = Vec::new();
        let ctx = ResolveContext {
            bounding: &bounding,
            arch: Some(NativeArch::Arm64),
            kernel: None,
        };
        let s = oci.resolve(&ctx, None, false, "p").unwrap();
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64][..])
        );
        assert_eq!(s.flags().as_ref().unwrap().len(), 1);
        let arg = s.syscalls().as_ref().unwrap()[0].args().as_ref().unwrap()[0];
        assert_eq!((arg.index(), arg.value(), arg.value_two()), (0, 3, None));

        let err = |json: &str| {
            SeccompProfile::from_json(json.as_bytes())
                .and_then(|p| p.resolve(&ctx, None, false, "p").map_err(|e| e.to_string()))
                .unwrap_err()
        };
        assert!(err(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).contains("unknown variant"));
        assert!(err(r#"{"syscalls":[]}"#).contains("missing field `defaultAction`"));
        assert!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrno":"EWHAT"}"#)
                .contains(r#"unknown errno "EWHAT""#)
        );
        assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#)
            .contains("syscalls[0]: both name and names"));
        assert!(err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}"#
        )
        .contains("syscalls[0]: no syscall names"));
        assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#)
            .contains("argument index 6 is above 5"));
        assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86","subArchitectures":[]}]}"#)
            .contains("both architectures and archMap"));
    }

    #[test]
    fn min_kernel_and_errno_names() {
        let p = SeccompProfile::from_json(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"ENOSYS","syscalls":[
                {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}},
                {"name":"personality","action":"SCMP_ACT_ERRNO","errno":"22"}]}"#,
        )
        .unwrap();
        let bounding = Vec::new();
        let at = |kernel| {
            let ctx = ResolveContext {
                bounding: &bounding,
                arch: Some(NativeArch::Amd64),
                kernel,
            };
            p.resolve(&ctx, None, false, "p").unwrap()
        };
        assert_eq!(at(Some((4, 7))).syscalls().as_ref().unwrap().len(), 1);
        assert_eq!(at(Some((4, 8))).syscalls().as_ref().unwrap().len(), 2);
        assert_eq!(at(None).syscalls().as_ref().unwrap().len(), 2);
        assert_eq!(at(None).default_errno_ret(), Some(38));
        assert_eq!(
            at(None).syscalls().as_ref().unwrap()[1].errno_ret(),
            Some(22)
        );
        assert_eq!(parse_kernel_release("6.18.44-fc"), Some((6, 18)));
        assert_eq!(parse_kernel_release("5"), Some((5, 0)));
        assert_eq!(parse_kernel_release("x"), None);
    }

    #[test]
    fn arch_names() {
        for a in NativeArch::ALL {
            assert_eq!(a.name().parse::<NativeArch>().unwrap(), a);
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(NativeArch::compiled(), Some(NativeArch::Amd64));
        #[cfg(target_arch = "aarch64")]
        assert_eq!(NativeArch::compiled(), Some(NativeArch::Arm64));
        assert!("vax".parse::<NativeArch>().is_err());
    }

    #[test]
    fn errno_table_is_consistent() {
        assert_eq!(errno(Some("EPERM"), None), Ok(Some(1)));
        assert_eq!(errno(Some("ENOSYS"), Some(1)), Ok(Some(38)));
        assert_eq!(errno(None, Some(5)), Ok(Some(5)));
        assert_eq!(errno(Some("EWOULDBLOCK"), None), Ok(Some(11)));
        assert_eq!(errno(Some("EHWPOISON"), None), Ok(Some(133)));
    }
}
