#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod caps;
mod device;
mod env;
mod error;
mod generate;
#[cfg(feature = "host")]
mod host;
mod image;
mod json;
#[cfg(feature = "libseccomp")]
mod libseccomp;
mod namespaces;
#[cfg(test)]
mod parser_props;
mod resources;
mod rlimit;
mod seccomp;
mod security;
mod sysctl;
mod units;
mod user;
mod userns;
mod values;

pub use oci_spec;

pub use caps::{CapabilityName, DEFAULT_CAPABILITIES};
pub use device::{Device, DeviceKind, DeviceRequest, HostDevice};
pub use env::{parse_env_file, DEFAULT_PATH, PROXY_VARIABLES};
pub use error::SpecError;
pub use generate::{
    merge_mounts, sort_mounts, thermal_throttle_path, ConsoleSize, DelegatedCgroup, HostFacts,
    RunOptions, SpecGenerator, DEFAULT_SHM_SIZE, INIT_PATH, MASKED_PATHS, OCI_VERSION,
    READONLY_PATHS, READ_ONLY_TMPFS,
};
#[cfg(feature = "host")]
pub use host::{find_init, host_devices, INIT_CANDIDATES};
pub use image::ImageConfig;
pub use json::to_json;
#[cfg(feature = "libseccomp")]
pub use libseccomp::LibSeccomp;
pub use namespaces::{NamespaceMode, NetworkMode};
pub use resources::{MemorySwap, Resources};
pub use rlimit::{RlimitKind, Ulimit, RLIM_INFINITY};
pub use seccomp::{NativeArch, SeccompProfile, SyscallChecker, DEFAULT_PROFILE_JSON};
pub use security::{
    LabelOpt, LabelOptions, SeccompOpt, SeccompPolicy, SecurityOpt, SecurityOptions,
};
pub use sysctl::{Sysctl, SysctlNamespace};
pub use units::{CpuList, Cpus, Size, MAX_CPU};
pub use user::{ResolvedUser, UserDb, MAX_ID};
pub use userns::{IdMapping, OwnUserNamespace, UserNsMode};
pub use values::{Annotation, OomScoreAdj, Umask};

#[cfg(test)]
mod tests;
