#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod env;
mod error;
mod generate;
mod image;
mod json;
mod user;

pub use oci_spec;

pub use env::{DEFAULT_PATH, PROXY_VARIABLES};
pub use error::SpecError;
pub use generate::{
    default_mounts, sort_mounts, HostFacts, RunOptions, SpecGenerator, DEFAULT_CAPABILITIES,
    DEFAULT_RLIMIT_CEILING, DEFAULT_SHM_SIZE_KIB, MASKED_PATHS, OCI_VERSION, READONLY_PATHS,
};
pub use image::ImageConfig;
pub use json::to_json;
pub use user::{ResolvedUser, UserDb};

#[cfg(test)]
mod tests;
