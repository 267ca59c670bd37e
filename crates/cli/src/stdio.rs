//! How the container's stdio is connected for one run: the runtime side handed to
//! `runtime create`, and the relay that runs while the container does.
//!
//! Three ways, chosen by `-t/--tty` and `--stdio`:
//!
//! - **terminal** (`-t`, or by default when ocirun's stdin, stdout and stderr are all
//!   terminals): `process.terminal` in the spec, with `process.consoleSize` from ocirun's
//!   terminal; a console socket `console.sock` in the bundle for `runtime create
//!   --console-socket`; once the container runs, the relay thread receives the PTY master,
//!   copies the window size again, puts ocirun's terminal in raw mode (restored when the relay
//!   ends, on every path) and relays, passing every SIGWINCH on.
//! - **pipes** (the default otherwise): three pipes relayed to and from ocirun's stdio.
//! - **inherit** (`--stdio inherit`): the container gets ocirun's own fds; nothing is relayed.
//!
//! SIGWINCH reaches the relay through a signalfd, which needs the signal blocked in every
//! thread: [`block_resize_signal`] is the process-wide step, called by `run` before any thread
//! starts.

use std::io::IsTerminal;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ocirun_runtime_driver::{Bundle, ContainerIo, CreateStdio};
use ocirun_spec_gen::ConsoleSize;
use ocirun_stdio_relay::{
    caller_terminal, copy_window_size, inherit_stdio, relay, relay_terminal, stdio_pipes,
    terminal::window_size, CallerStdio, ConsoleSocket, RawMode, RelayEnds, RelayOptions,
    ResizeSignal,
};

use crate::flags::{RunArgs, StdioMode};

/// The console socket's file name in the bundle.
const CONSOLE_SOCKET: &str = "console.sock";

/// Longest path runc (and `sockaddr_un`) accepts for `--console-socket`.
const SUN_PATH_MAX: usize = 107;

/// How long the relay waits for the PTY master after `runtime start`. runc sends it during
/// `create`, so it is already queued on the socket; the bound only guards against a runtime
/// that never sends it.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the container gets a terminal: `-t/--tty[=BOOL]` when given, else true iff ocirun's
/// stdin, stdout and stderr are all terminals (and `--stdio` is not `inherit`).
///
/// # Errors
/// `--tty` (true) together with `--stdio inherit`: a terminal needs the relay.
pub(crate) fn terminal_requested(args: &RunArgs) -> Result<bool> {
    match (args.stdio.tty, args.stdio.mode) {
        (Some(true), StdioMode::Inherit) => {
            bail!("--tty cannot be used with --stdio inherit: a terminal needs the relay")
        }
        (Some(tty), _) => Ok(tty),
        (None, StdioMode::Inherit) => Ok(false),
        (None, StdioMode::Relay) => Ok(std::io::stdin().is_terminal()
            && std::io::stdout().is_terminal()
            && std::io::stderr().is_terminal()),
    }
}

/// The size of ocirun's terminal (the first of stdin, stdout, stderr that is one), for the
/// spec's `process.consoleSize`, so that the container's terminal has it from its first
/// instruction on; `None` when none is a terminal.
pub(crate) fn console_size() -> Option<ConsoleSize> {
    let caller = CallerStdio::process();
    let (fd, stream) = caller_terminal(&caller)?;
    match window_size(fd, stream) {
        Ok(size) => Some(ConsoleSize {
            rows: size.rows,
            cols: size.cols,
        }),
        Err(e) => {
            tracing::debug!(error = %e, "no console size");
            None
        }
    }
}

/// Blocks SIGWINCH for the whole process and opens the signalfd the terminal relay reads it
/// from, when this run gets a terminal; `None` otherwise (nothing is changed).
///
/// Process-wide: call it before any thread starts, so every thread inherits the blocked
/// signal (see [`ResizeSignal::block`]).
///
/// # Errors
/// The flag error of [`terminal_requested`], or pthread_sigmask/signalfd failing.
pub(crate) fn block_resize_signal(args: &RunArgs) -> Result<Option<ResizeSignal>> {
    if terminal_requested(args)? {
        Ok(Some(ResizeSignal::block()?))
    } else {
        Ok(None)
    }
}

/// The caller's side of the container's stdio, kept until the container runs.
#[derive(Debug)]
pub(crate) enum Stdio {
    /// Three pipes relayed to and from ocirun's own stdio (no terminal).
    Pipes {
        ends: RelayEnds,
        options: RelayOptions,
    },
    /// A terminal: the console socket that the runtime sends the PTY master to.
    Terminal {
        socket: ConsoleSocket,
        resize: Option<ResizeSignal>,
        options: RelayOptions,
    },
    /// `--stdio inherit`: the container has ocirun's own fds; nothing to relay.
    Inherit,
}

/// Sets up the container's stdio as `args` ask; returns what `runtime create` gets and what
/// stays here for [`Stdio::relay`]. `resize` is what [`block_resize_signal`] returned.
///
/// # Errors
/// When the pipes or the console socket cannot be made, or ocirun's fds duplicated.
pub(crate) fn setup(
    args: &RunArgs,
    bundle: &Bundle,
    resize: Option<ResizeSignal>,
) -> Result<(ContainerIo, Stdio)> {
    let options = RelayOptions {
        discard_stdout: args.quiet,
        ..RelayOptions::default()
    };
    if terminal_requested(args)? {
        let path = bundle.path().join(CONSOLE_SOCKET);
        let socket = ConsoleSocket::bind(&path)?;
        // runc dials the path itself, and a Unix socket path must fit sun_path; the runtime
        // runs in the bundle directory, where a relative path finds the socket too.
        let for_runtime = if path.as_os_str().len() <= SUN_PATH_MAX {
            path
        } else {
            PathBuf::from(CONSOLE_SOCKET)
        };
        let io = ContainerIo::ConsoleSocket(for_runtime);
        return Ok((
            io,
            Stdio::Terminal {
                socket,
                resize,
                options,
            },
        ));
    }
    if args.stdio.mode == StdioMode::Inherit {
        let own = inherit_stdio(CallerStdio::process(), args.quiet)?;
        let io = ContainerIo::Fds(CreateStdio {
            stdin: own.stdin,
            stdout: own.stdout,
            stderr: own.stderr,
            error_reader: None,
        });
        return Ok((io, Stdio::Inherit));
    }
    let (container, ends) = stdio_pipes()?;
    let io = ContainerIo::Fds(CreateStdio {
        stdin: container.stdin,
        stdout: container.stdout,
        stderr: container.stderr,
        error_reader: Some(ends.try_clone_stderr()?),
    });
    Ok((io, Stdio::Pipes { ends, options }))
}

impl Stdio {
    /// Relays until the container's output is complete; `exited` turns readable when the
    /// container's process has exited (its pidfd). Runs on its own thread while the main
    /// thread waits for the container.
    ///
    /// # Errors
    /// When the relay fails (the error names the stream), or the terminal never arrives.
    pub(crate) fn relay(self, exited: BorrowedFd<'_>) -> Result<()> {
        let caller = CallerStdio::process();
        match self {
            Stdio::Pipes { ends, options } => {
                let report = relay(ends, caller, exited, &options)?;
                tracing::debug!(?report, "stdio relayed");
            }
            Stdio::Terminal {
                socket,
                resize,
                options,
            } => {
                let master = socket
                    .receive(CONSOLE_TIMEOUT)
                    .context("the container's terminal did not arrive")?;
                // Again: the size may have changed since the spec was written. An unchanged
                // size sends no SIGWINCH.
                if let Some((fd, stream)) = caller_terminal(&caller) {
                    if let Err(e) = copy_window_size(fd, stream, master.as_fd()) {
                        tracing::warn!(error = %e, "cannot pass the window size on");
                    }
                }
                // Restored when `raw` is dropped: at the end of this block, on an error
                // return, and when a panic unwinds this thread.
                let raw = if std::io::stdin().is_terminal() {
                    match RawMode::enable(caller.stdin) {
                        Ok(raw) => Some(raw),
                        Err(e) => {
                            tracing::warn!(error = %e, "the terminal stays in its mode");
                            None
                        }
                    }
                } else {
                    None
                };
                let report = relay_terminal(master, caller, exited, resize.as_ref(), &options);
                drop(raw);
                tracing::debug!(?report, "terminal relayed");
                report?;
            }
            Stdio::Inherit => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::flags::{Cli, Command};

    fn run_args(flags: &[&str]) -> RunArgs {
        let mut argv = vec!["ocirun", "run", "--rootfs", "/"];
        argv.extend_from_slice(flags);
        argv.extend_from_slice(&["--", "true"]);
        match Cli::try_parse_from(argv).expect("flags parse").command {
            Command::Run(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn tty_flag_forms() {
        for (flags, tty) in [
            (&["-t"][..], Some(true)),
            (&["--tty"], Some(true)),
            (&["--tty=true"], Some(true)),
            (&["--tty=false"], Some(false)),
            (&["-t=false"], Some(false)),
            (&["-tq"], Some(true)),
            (&[], None),
        ] {
            assert_eq!(run_args(flags).stdio.tty, tty, "{flags:?}");
        }
        assert!(run_args(&["-tq"]).quiet);
    }

    #[test]
    fn an_explicit_tty_decides() {
        assert!(terminal_requested(&run_args(&["-t"])).expect("allowed"));
        assert!(!terminal_requested(&run_args(&["--tty=false"])).expect("allowed"));
        assert!(
            !terminal_requested(&run_args(&["--tty=false", "--stdio", "inherit"]))
                .expect("allowed")
        );
    }

    #[test]
    fn inherit_means_no_terminal_and_refuses_tty() {
        let args = run_args(&["--stdio", "inherit"]);
        assert_eq!(args.stdio.mode, StdioMode::Inherit);
        assert!(!terminal_requested(&args).expect("allowed"));
        let err = terminal_requested(&run_args(&["-t", "--stdio", "inherit"]))
            .expect_err("a terminal needs the relay");
        assert_eq!(
            err.to_string(),
            "--tty cannot be used with --stdio inherit: a terminal needs the relay"
        );
        assert_eq!(run_args(&[]).stdio.mode, StdioMode::Relay);
    }
}
