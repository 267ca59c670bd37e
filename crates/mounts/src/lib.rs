#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod container_dir;
mod copy;
mod error;
mod exec_check;
mod generated;
mod input;
mod label;
mod ledger;
mod mount_flag;
mod network;
#[cfg(test)]
mod parser_props;
mod plan;
mod prepare;
mod rootfs;
mod run_secret;
mod secrets;
mod store;
#[cfg(test)]
mod test_spec;
mod tmpfs;
mod user_mount;
mod volume;

pub use container_dir::{ContainerDir, ContainerStore};
pub use error::{CommandError, MountSpecError, MountsError};
pub use generated::{ContainerEnv, GeneratedOptions, HostNetworkFiles};
pub use input::{read_input_file, MAX_INPUT_BYTES};
pub use ledger::TargetLedger;
pub use mount_flag::{MountField, MountFlag, MountType};
pub use network::{DnsOptions, HostEntry};
pub use plan::{image_volume_path, MountPlan, ResolvedMounts};
pub use prepare::{prepare, prepare_interruptible, Prepared};
pub use rootfs::{Rootfs, Unreadable, UserFiles, DEFAULT_PATH};
pub use run_secret::{
    compose_secrets, read_secret_file, SecretBytes, SecretFlag, SecretMount, SecretSource,
    MAX_SECRET_SIZE, SECRETS_DIR,
};
pub use secrets::{load_secrets, SecretSpec, DEFAULT_MOUNTS_FILES};
pub use store::{CacheHold, VolumeInfo, VolumeRemoveError, VolumeStore};
pub use tmpfs::TmpfsSpec;
pub use user_mount::{
    check_unique_destinations, BindOptions, CacheMount, CacheSharing, MountOrigin, Overlay,
    Propagation, Relabel, TmpfsOptions, UserMount, UserMountKind, VolumeMount,
};
pub use volume::{VolumeOption, VolumeSpec};
