#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod buffer;
mod caller;
mod engine;
mod error;
#[allow(unsafe_code)]
mod fdio;
mod options;
pub mod pipe;
pub mod terminal;

pub use caller::CallerStdio;
pub use error::{RelayError, Stream};
pub use options::{RelayOptions, RelayReport, DEFAULT_DRAIN_TIMEOUT};
pub use pipe::{inherit_stdio, relay, stdio_pipes, ContainerStdio, RelayEnds};
pub use terminal::{
    caller_terminal, copy_window_size, relay_terminal, ConsoleSocket, PtyMaster, RawMode,
    ResizeSignal, WindowSize,
};
