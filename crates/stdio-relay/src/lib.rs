#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod buffer;
mod caller;
mod error;
mod fdio;
mod options;
pub mod pipe;

pub use caller::CallerStdio;
pub use error::{RelayError, Stream};
pub use options::{RelayOptions, RelayReport, DEFAULT_DRAIN_TIMEOUT};
pub use pipe::{relay, stdio_pipes, ContainerStdio, RelayEnds};
