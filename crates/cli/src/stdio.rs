//! How the container's stdio is connected for one run: the runtime side handed to
//! `runtime create`, and the relay that runs while the container does.
//!
//! Three ways, chosen by `-t/--tty` and `--stdio`:
//!
//! - **terminal** (`-t`, or by default when ocirun's stdin, stdout and stderr are all
//!   terminals): `process.terminal` in the spec, with `process.consoleSize` from ocirun's
//!   terminal; a console socket `console.sock` in the bundle for `runtime create
//!   --console-socket` (by an absolute path that fits `sun_path`, through a short link to the
//!   bundle when its own path is too long); the run is made in steps ([`Terminal::receive`]
//!   between `create` and `start`): the PTY master, which the runtime sends during `create`,
//!   is received and given ocirun's window size before the command starts (youki does not
//!   apply `consoleSize`); then the relay thread puts ocirun's terminal in raw mode (restored
//!   when the relay ends, on every path) and relays, passing every SIGWINCH on.
//! - **pipes** (the default otherwise): three pipes relayed to and from ocirun's stdio; what
//!   the container wrote to its stderr while `runtime run --detach` ran comes first.
//! - **inherit** (`--stdio inherit`): the container gets ocirun's own fds; nothing is relayed.
//!
//! SIGWINCH reaches the relay through a signalfd, which needs the signal blocked in every
//! thread: [`block_resize_signal`] is the process-wide step, called by `run` before any thread
//! starts.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ocirun_runtime_driver::{Bundle, BundleLink, ContainerIo, CreateStdio, Started};
use ocirun_spec_gen::ConsoleSize;
use ocirun_stdio_relay::{
    caller_terminal, copy_window_size, inherit_stdio, relay, relay_terminal, stdio_pipes,
    terminal::window_size, CallerStdio, ConsoleSocket, PtyMaster, RawMode, RelayEnds, RelayOptions,
    ResizeSignal,
};

use crate::flags::{RunArgs, StdioMode};

/// The console socket's file name in the bundle.
const CONSOLE_SOCKET: &str = "console.sock";

/// Longest path runc (and `sockaddr_un`) accepts for `--console-socket`.
const SUN_PATH_MAX: usize = 107;

/// How long ocirun waits for the PTY master after `runtime create`. The runtimes send it during
/// `create`, so it is already queued on the socket; the bound only guards against a runtime
/// that never sends it.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(2);

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
    /// No terminal: the run needs nothing between `create` and `start`.
    Streams(Streams),
    /// A terminal, whose master is received between `create` and `start`.
    Terminal(Terminal),
}

/// The container's stdio without a terminal.
#[derive(Debug)]
pub(crate) enum Streams {
    /// Three pipes relayed to and from ocirun's own stdio.
    Pipes {
        ends: RelayEnds,
        options: RelayOptions,
    },
    /// `--stdio inherit`: the container has ocirun's own fds; nothing to relay.
    Inherit,
}

/// The caller's side of a container's terminal.
#[derive(Debug)]
pub(crate) struct Terminal {
    /// The console socket that the runtime sends the PTY master to.
    socket: ConsoleSocket,
    /// The short link to the bundle that the runtime's socket path goes through, if any.
    link: Option<BundleLink>,
    relay: TerminalRelay,
}

/// What relays a terminal once its master is here.
#[derive(Debug)]
pub(crate) struct TerminalRelay {
    resize: Option<ResizeSignal>,
    options: RelayOptions,
}

/// Sets up the container's stdio as `args` ask; returns what the runtime gets and what stays
/// here for [`Streams::relay`] (or [`Terminal::receive`] and [`TerminalRelay::relay`]).
/// `resize` is what [`block_resize_signal`] returned; `links` the directory for a
/// [`BundleLink`].
///
/// # Errors
/// When the pipes or the console socket cannot be made, or ocirun's fds duplicated.
pub(crate) fn setup(
    args: &RunArgs,
    bundle: &Bundle,
    links: PathBuf,
    resize: Option<ResizeSignal>,
) -> Result<(ContainerIo, Stdio)> {
    let options = RelayOptions {
        discard_stdout: args.quiet,
        ..RelayOptions::default()
    };
    if terminal_requested(args)? {
        let path = bundle.path().join(CONSOLE_SOCKET);
        let socket = ConsoleSocket::bind(&path)?;
        // The runtime dials the path itself, and a Unix socket path must fit sun_path; youki
        // resolves a relative one in its own state directory: so an absolute path, through a
        // short link to the bundle when the bundle's path is too long.
        let (for_runtime, link) = if path.as_os_str().len() <= SUN_PATH_MAX {
            (path, None)
        } else {
            let link = bundle.link_from(&links)?;
            let short = link.path().join(CONSOLE_SOCKET);
            if short.as_os_str().len() <= SUN_PATH_MAX {
                (short, Some(link))
            } else {
                // Only runc finds this one (in the bundle, its working directory).
                (PathBuf::from(CONSOLE_SOCKET), None)
            }
        };
        let io = ContainerIo::ConsoleSocket(for_runtime);
        return Ok((
            io,
            Stdio::Terminal(Terminal {
                socket,
                link,
                relay: TerminalRelay { resize, options },
            }),
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
        return Ok((io, Stdio::Streams(Streams::Inherit)));
    }
    let (container, ends) = stdio_pipes()?;
    let io = ContainerIo::Fds(CreateStdio {
        stdin: container.stdin,
        stdout: container.stdout,
        stderr: container.stderr,
        error_reader: Some(ends.try_clone_stderr()?),
    });
    Ok((io, Stdio::Streams(Streams::Pipes { ends, options })))
}

impl Streams {
    /// Relays until the container's output is complete, first writing out what the container
    /// wrote to its stderr while the runtime started it; `started.exit_fd` turns readable when
    /// the container's process has exited (its pidfd). Runs on its own thread while the main
    /// thread waits for the container.
    ///
    /// # Errors
    /// When the relay fails (the error names the stream).
    pub(crate) fn relay(self, started: Started<'_>) -> Result<()> {
        let caller = CallerStdio::process();
        match self {
            Streams::Pipes { ends, options } => {
                if !started.early_stderr.is_empty() {
                    // Unbuffered, blocking: ocirun's own stderr, in order before the rest.
                    if let Err(e) = std::io::stderr().write_all(&started.early_stderr) {
                        tracing::debug!(error = %e, "cannot write the container's first output");
                    }
                }
                let report = relay(ends, caller, started.exit_fd, &options)?;
                tracing::debug!(?report, "stdio relayed");
            }
            Streams::Inherit => {}
        }
        Ok(())
    }
}

impl Terminal {
    /// Receives the PTY master, which the runtime sent during `create`, and gives it the size
    /// of ocirun's terminal (it may have changed since the spec was written, and youki does
    /// not apply `process.consoleSize`). Between `create` and `start`, so that the command
    /// finds its terminal with that size from its first instruction on.
    pub(crate) fn receive(self) -> (Result<PtyMaster>, TerminalRelay) {
        let Terminal {
            socket,
            link,
            relay,
        } = self;
        let master = socket
            .receive(CONSOLE_TIMEOUT)
            .context("the container's terminal did not arrive");
        drop(link);
        if let Ok(master) = &master {
            let caller = CallerStdio::process();
            // An unchanged size sends no SIGWINCH.
            if let Some((fd, stream)) = caller_terminal(&caller) {
                if let Err(e) = copy_window_size(fd, stream, master.as_fd()) {
                    tracing::warn!(error = %e, "cannot pass the window size on");
                }
            }
        }
        (master, relay)
    }
}

impl TerminalRelay {
    /// Relays between ocirun's terminal (in raw mode until the relay ends) and the container's
    /// until the container's output is complete. Runs on its own thread while the main thread
    /// waits for the container.
    ///
    /// # Errors
    /// When the terminal did not arrive, or the relay fails.
    pub(crate) fn relay(self, master: Result<PtyMaster>, started: Started<'_>) -> Result<()> {
        let master = master?;
        let caller = CallerStdio::process();
        // Restored when `raw` is dropped: at the end of this block, on an error return, and
        // when a panic unwinds this thread.
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
        let report = relay_terminal(
            master,
            caller,
            started.exit_fd,
            self.resize.as_ref(),
            &self.options,
        );
        drop(raw);
        tracing::debug!(?report, "terminal relayed");
        report?;
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
