#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod generated;
mod init;
mod ledger;
mod prepare;
mod rootfs;

pub use error::{CommandError, MountsError};
pub use generated::{
    generated_mounts, hosts_file, write_generated_files, GeneratedFile, HostNetworkFiles,
    GENERATED_FILES,
};
pub use init::{add_init, find_init, INIT_CANDIDATES, INIT_PATH};
pub use ledger::TargetLedger;
pub use prepare::{merge_mounts, plan_mounts, prepare, Prepared};
pub use rootfs::Rootfs;
