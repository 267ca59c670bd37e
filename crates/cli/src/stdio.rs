//! How the container's stdio is connected for one run: the runtime side handed to
//! `runtime create`, and the relay that runs while the container does.

use std::os::fd::BorrowedFd;

use anyhow::Result;
use ocirun_runtime_driver::{Bundle, ContainerIo, CreateStdio};
use ocirun_stdio_relay::{relay, stdio_pipes, CallerStdio, RelayEnds, RelayOptions};

use crate::flags::RunArgs;

/// The caller's side of the container's stdio, kept until the container runs.
#[derive(Debug)]
pub(crate) enum Stdio {
    /// Three pipes relayed to and from ocirun's own stdio (no terminal).
    Pipes {
        ends: RelayEnds,
        options: RelayOptions,
    },
}

/// Sets up the container's stdio as `args` ask; returns what `runtime create` gets and what
/// stays here for [`Stdio::relay`].
pub(crate) fn setup(args: &RunArgs, _bundle: &Bundle) -> Result<(ContainerIo, Stdio)> {
    let (container, ends) = stdio_pipes()?;
    let io = ContainerIo::Fds(CreateStdio {
        stdin: container.stdin,
        stdout: container.stdout,
        stderr: container.stderr,
    });
    let options = RelayOptions {
        discard_stdout: args.quiet,
        ..RelayOptions::default()
    };
    Ok((io, Stdio::Pipes { ends, options }))
}

impl Stdio {
    /// Relays until the container's output is complete; `exited` turns readable when the
    /// container's process has exited (its pidfd). Runs on its own thread while the main
    /// thread waits for the container.
    pub(crate) fn relay(self, exited: BorrowedFd<'_>) -> Result<()> {
        match self {
            Stdio::Pipes { ends, options } => {
                let report = relay(ends, CallerStdio::process(), exited, &options)?;
                tracing::debug!(?report, "stdio relayed");
            }
        }
        Ok(())
    }
}
