#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod bundle;
mod error;
mod id;
mod process;
mod runtime;

pub use bundle::Bundle;
pub use error::DriverError;
pub use id::new_container_id;
pub use process::{
    reap_strays, set_child_subreaper, ContainerProcess, ExitStatus, SignalForwarder,
};
pub use runtime::{Container, ContainerIo, CreateStdio, Runtime};
