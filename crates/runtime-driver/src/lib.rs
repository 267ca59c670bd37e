#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod bundle;
mod call;
mod error;
mod id;
mod process;
mod records;
pub mod reexec;
mod runtime;
mod spawn;
mod supervisor;
#[cfg(test)]
mod test_child;
mod userns;

pub use bundle::{remove_dangling_links, Bundle, BundleLink};
pub use error::DriverError;
pub use id::{
    CacheId, ContainerId, ContainerName, StateLayout, UserDirs, VolumeName, MAX_CACHE_ID_LEN,
    MAX_ID_LEN, MAX_NAME_LEN, MAX_VOLUME_NAME_LEN, ROOT_ROOT, ROOT_RUNROOT,
};
pub use process::{
    kill_strays, parse_signal, reap_strays, set_child_subreaper, ContainerProcess, ExitStatus,
    SignalForwarder, SignalPolicy,
};
pub use records::{NameLock, NameLocks, RecordGuard, RecordStore, RunRecord};
pub use runtime::{
    Container, ContainerIo, CreateStdio, LogSink, Runtime, RuntimeKind, CLEANUP_TIMEOUT,
    INTERRUPTED_CLEANUP_TIMEOUT, LAUNCH_TIMEOUT, STOP_GRACE,
};
pub use supervisor::{Finished, Started, Supervisor};
pub use userns::{
    hide_cgroup_v1, id_map_helpers, parse_subid_ranges, write_id_map, CgroupLayout, IdMap,
    UserNamespace, ID_MAP_HELPERS,
};
