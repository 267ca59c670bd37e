#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod generated;
mod prepare;
mod rootfs;

pub use error::{CommandError, MountsError};
pub use generated::{
    generated_mounts, hosts_file, write_generated_files, GeneratedFile, HostNetworkFiles,
    GENERATED_FILES,
};
pub use prepare::{merge_mounts, plan_mounts, prepare, Prepared};
pub use rootfs::Rootfs;
