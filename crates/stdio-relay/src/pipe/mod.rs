//! Pipe mode: the container gets three pipes and the relay moves bytes between them and the
//! caller's stdio (no terminal; `buildah run` without `-t`).
//!
//! # Protocol
//!
//! 1. [`stdio_pipes`] makes three pipes, every fd `O_CLOEXEC`. The [`ContainerStdio`] ends go to
//!    the runtime (`runc create` with them as its fds 0, 1 and 2; runc hands them to the
//!    container's process). The [`RelayEnds`] stay here and are already `O_NONBLOCK`.
//! 2. The caller spawns the runtime and then **drops its copies of the [`ContainerStdio`] ends
//!    at once** (with `std::process::Command`, drop the `Command` too, it holds them): as long as
//!    this process holds a write end of the container's stdout, that pipe never reaches end of
//!    file.
//! 3. [`relay`] runs until the container's output is complete (see below) while the caller waits
//!    for the container on another thread or process; `exited` tells the relay when the
//!    container's process is gone (a pidfd, or any fd that becomes readable then).
//!
//! # Rules
//!
//! - One poll(2) loop over: the caller's stdin (`POLLIN`, while its buffer has room), the
//!   container's stdin write end (`POLLOUT`, only while input is buffered), the container's
//!   stdout/stderr read ends (`POLLIN`, only while that stream's buffer has room), the caller's
//!   stdout/stderr (`POLLOUT`, only while that stream's buffer holds data), and `exited`
//!   (`POLLIN`, until it fires once).
//! - One bounded buffer of 64 KiB per direction (stdin, stdout, stderr); a read never asks for
//!   more bytes than fit. Bytes of a stream leave in the order they came; none is dropped except
//!   as listed below (a reader that went away, `discard_stdout`, the drain timeout).
//! - The relay's own ends are non-blocking. The caller's fds keep the mode they had: the relay
//!   never sets `O_NONBLOCK` (or any flag) on them, as they are shared with the parent shell.
//! - The caller's stdout/stderr: a FIFO or character device (by fstat(2)) is opened again
//!   through `/proc/self/fd/N` with `O_WRONLY|O_NONBLOCK|O_CLOEXEC|O_NOCTTY`, a separate open file
//!   description of the same pipe or terminal, and written through that until `EAGAIN`. A
//!   regular file (or block device) is written through the caller's fd until done; it does not
//!   wait for a reader. Anything else (a socket, or a FIFO/terminal that cannot be opened again)
//!   is written through the caller's fd at most 4096 bytes (`PIPE_BUF`) per write(2), once per
//!   poll(2) that reported it writable, which a pipe or local socket takes without blocking.
//! - The caller's stdin is read once per poll(2) that reported `POLLIN` or `POLLHUP`; for a
//!   pipe or terminal that one read(2) does not block, a regular file is always readable.
//!   `POLLNVAL` (fd closed) or `POLLERR` without `POLLIN` counts as end of file.
//! - End of file is read(2) returning 0, never `POLLHUP` alone: after `POLLHUP` a pipe can still
//!   hold data, which is read out until read(2) returns 0.
//! - When the caller's stdin reached end of file and its buffer is written out, the container's
//!   stdin write end is closed, so `printf 'echo foo\n' | ocirun run ... sh` ends.
//! - `EPIPE` writing the container's stdin (it closed its stdin or exited): the buffered input
//!   is dropped, the caller's stdin is no longer read and the container's stdin is closed. Not
//!   an error.
//! - `EPIPE` writing the caller's stdout or stderr (its reader went away): the rest of that
//!   stream is read from the container and thrown away, so the container never blocks on it.
//!   Not an error.
//! - [`discard_stdout`](crate::RelayOptions::discard_stdout): the container's stdout is read and
//!   thrown away.
//! - `EINTR` is retried and `EAGAIN` waits for the next poll(2); any other failure of poll(2),
//!   read(2) or write(2) ends the relay with a [`RelayError`] naming the stream and the errno.
//! - The relay returns once the container's stdout and stderr both reached end of file and
//!   everything read from them was written out (the container's stdin is then just closed), or
//!   once `exited` was readable and then [`drain_timeout`](crate::RelayOptions::drain_timeout)
//!   passed with no byte read from the container and nothing left to write: a daemonized
//!   grandchild holding the pipes cannot hang the caller, and a container that still writes
//!   after its init exited is relayed as long as it writes.
//! - `SIGPIPE` must be ignored in the calling process (Rust binaries ignore it by default), or
//!   a reader that goes away kills the process instead of giving `EPIPE`.
//!
//! # Limitations
//!
//! - A socket (or a FIFO/terminal that cannot be opened again) as the caller's stdout or stderr
//!   is written in the mode the caller left it; a 4096-byte write(2) into a blocking socket
//!   whose peer stopped reading can still block the relay.
//! - If another process reads the caller's stdin at the same time, it can take the bytes that
//!   poll(2) reported, and the read(2) that follows then blocks until more input comes.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use tracing::debug;

use crate::buffer::{RingBuffer, BUFFER_SIZE};
use crate::caller::{CallerStdio, OutputSink, WriteMode, PIPE_BUF};
use crate::error::{RelayError, Stream};
use crate::fdio::{self, Io};
use crate::options::{RelayOptions, RelayReport};

#[cfg(test)]
mod tests;

/// The container's ends of its three stdio pipes, for the runtime.
///
/// Hand them to the runtime (`runc create`) as its stdin, stdout and stderr; it passes them on
/// to the container's process. All three are `O_CLOEXEC` and blocking, as a program expects its
/// stdio to be. The caller must drop them in its own process right after spawning the runtime,
/// or the container's stdout never reaches end of file and [`relay`] only ends by the drain
/// timeout.
#[derive(Debug)]
pub struct ContainerStdio {
    /// Read end of the container's stdin pipe.
    pub stdin: OwnedFd,
    /// Write end of the container's stdout pipe.
    pub stdout: OwnedFd,
    /// Write end of the container's stderr pipe.
    pub stderr: OwnedFd,
}

/// The relay's ends of the container's stdio pipes: the write end of its stdin pipe and the
/// read ends of its stdout and stderr pipes, all `O_CLOEXEC|O_NONBLOCK`. Only [`relay`] uses
/// them; dropping them closes them.
#[derive(Debug)]
pub struct RelayEnds {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Creates the three pipes for a container's stdio.
///
/// Returns the container's ends (for the runtime) and the relay's ends (for [`relay`]). Every fd
/// is `O_CLOEXEC`, so no other child process inherits one by accident; the relay's ends are
/// also `O_NONBLOCK` (their own open file descriptions: the container's ends stay blocking).
///
/// # Errors
///
/// [`RelayError::CreatePipe`] when pipe2(2) fails (too many open files),
/// [`RelayError::SetNonBlocking`] when fcntl(2) does.
pub fn stdio_pipes() -> Result<(ContainerStdio, RelayEnds), RelayError> {
    let pipe = |stream| {
        nix::unistd::pipe2(OFlag::O_CLOEXEC)
            .map_err(|source| RelayError::CreatePipe { stream, source })
    };
    let (stdin_read, stdin_write) = pipe(Stream::ContainerStdin)?;
    let (stdout_read, stdout_write) = pipe(Stream::ContainerStdout)?;
    let (stderr_read, stderr_write) = pipe(Stream::ContainerStderr)?;
    for (fd, stream) in [
        (&stdin_write, Stream::ContainerStdin),
        (&stdout_read, Stream::ContainerStdout),
        (&stderr_read, Stream::ContainerStderr),
    ] {
        fdio::set_nonblocking(fd.as_fd())
            .map_err(|source| RelayError::SetNonBlocking { stream, source })?;
    }
    Ok((
        ContainerStdio {
            stdin: stdin_read,
            stdout: stdout_write,
            stderr: stderr_write,
        },
        RelayEnds {
            stdin: stdin_write,
            stdout: stdout_read,
            stderr: stderr_read,
        },
    ))
}

/// Relays between the caller's stdio and the container's pipes until the container's output is
/// complete.
///
/// Takes the relay's pipe ends from [`stdio_pipes`] (closed when this returns), the caller's
/// fds (borrowed and left in the mode they had), `exited`, an fd that becomes readable once the
/// container's process has exited (a pidfd of the container's init; a pipe whose write end is
/// closed then; an eventfd), and the options. Blocks the calling thread.
///
/// Returns once the container's stdout and stderr both reached end of file and everything read
/// was written, or once `exited` was readable and then `options.drain_timeout` passed with no
/// byte read from the container (see [`RelayReport::drain_timed_out`]). The container's stdin is
/// closed when the caller's stdin reaches end of file, or when this returns. The full list of
/// rules is in the [module documentation](self).
///
/// # Errors
///
/// [`RelayError::Poll`], [`RelayError::Read`] or [`RelayError::Write`] when a system call fails
/// with anything but `EINTR`, `EAGAIN` or (for writes) `EPIPE`; the error names the stream and
/// the errno. Output not yet written is lost then.
pub fn relay(
    ends: RelayEnds,
    caller: CallerStdio<'_>,
    exited: BorrowedFd<'_>,
    options: &RelayOptions,
) -> Result<RelayReport, RelayError> {
    let _span = tracing::debug_span!("stdio_relay", mode = "pipes").entered();
    PipeRelay::new(ends, caller, exited, options).run()
}

/// Reads per readiness report on one container output, so that a writer as fast as the relay
/// cannot keep it from serving the other streams.
const MAX_READS_PER_WAKEUP: usize = 4;

/// One output direction: a container pipe's read end to one of the caller's fds.
#[derive(Debug)]
struct Output<'a> {
    /// `None` once read(2) returned 0.
    source: Option<OwnedFd>,
    from: Stream,
    to: Stream,
    buf: RingBuffer,
    /// `None` while output is thrown away (`discard_stdout`, or the reader went away).
    sink: Option<OutputSink<'a>>,
    /// Bytes written to `sink`.
    written: u64,
}

impl<'a> Output<'a> {
    fn new(source: OwnedFd, from: Stream, sink: Option<OutputSink<'a>>, to: Stream) -> Self {
        Self {
            source: Some(source),
            from,
            to,
            buf: RingBuffer::new(BUFFER_SIZE),
            sink,
            written: 0,
        }
    }

    fn wants_read(&self) -> bool {
        self.source.is_some() && !self.buf.is_full()
    }

    fn wants_write(&self) -> bool {
        self.sink.is_some() && !self.buf.is_empty()
    }

    fn is_done(&self) -> bool {
        self.source.is_none() && self.buf.is_empty()
    }

    /// Reads what the pipe holds, as far as the buffer has room; returns the bytes read.
    fn fill(&mut self) -> Result<usize, RelayError> {
        let mut total = 0;
        for _ in 0..MAX_READS_PER_WAKEUP {
            let Some(source) = &self.source else { break };
            let spare = self.buf.spare_mut();
            if spare.is_empty() {
                break;
            }
            match fdio::read(source.as_fd(), spare) {
                Ok(Io::Done(0)) => {
                    debug!(stream = %self.from, "end of file");
                    self.source = None;
                }
                Ok(Io::Done(n)) => {
                    total += n;
                    if self.sink.is_some() {
                        self.buf.commit(n);
                    }
                }
                Ok(Io::WouldBlock) => break,
                Err(source) => {
                    return Err(RelayError::Read {
                        stream: self.from,
                        source,
                    })
                }
            }
        }
        Ok(total)
    }

    /// Writes buffered bytes to the sink as far as it takes them; returns the bytes written.
    fn flush(&mut self) -> Result<usize, RelayError> {
        let mut total = 0;
        while let Some(sink) = &self.sink {
            let filled = self.buf.filled();
            if filled.is_empty() {
                break;
            }
            let chunked = sink.mode() == WriteMode::Chunked;
            let chunk = if chunked {
                &filled[..filled.len().min(PIPE_BUF)]
            } else {
                filled
            };
            match fdio::write(sink.as_fd(), chunk) {
                Ok(Io::Done(0)) | Ok(Io::WouldBlock) => break,
                Ok(Io::Done(n)) => {
                    self.buf.consume(n);
                    self.written += n as u64;
                    total += n;
                    if chunked {
                        break;
                    }
                }
                Err(Errno::EPIPE) => {
                    debug!(stream = %self.to, "reader went away; discarding the rest of the stream");
                    self.sink = None;
                    self.buf.clear();
                }
                Err(source) => {
                    return Err(RelayError::Write {
                        stream: self.to,
                        source,
                    })
                }
            }
        }
        Ok(total)
    }
}

/// Which fd an entry of the poll(2) set is.
#[derive(Debug, Clone, Copy)]
enum Slot {
    CallerStdin,
    ContainerStdin,
    Source(usize),
    Sink(usize),
    Exited,
}

/// The `revents` of one poll(2), by fd; empty for an fd that was not polled.
#[derive(Debug)]
struct Ready {
    caller_stdin: PollFlags,
    container_stdin: PollFlags,
    sources: [PollFlags; 2],
    sinks: [PollFlags; 2],
    exited: PollFlags,
}

impl Ready {
    const NONE: Self = Self {
        caller_stdin: PollFlags::empty(),
        container_stdin: PollFlags::empty(),
        sources: [PollFlags::empty(); 2],
        sinks: [PollFlags::empty(); 2],
        exited: PollFlags::empty(),
    };
}

#[derive(Debug)]
struct PipeRelay<'a> {
    caller_stdin: BorrowedFd<'a>,
    /// `false` once the caller's stdin reached end of file or the container's stdin broke.
    stdin_open: bool,
    stdin_buf: RingBuffer,
    /// `None` once closed.
    container_stdin: Option<OwnedFd>,
    stdin_written: u64,
    /// Container stdout, then stderr.
    outputs: [Output<'a>; 2],
    exited: BorrowedFd<'a>,
    exited_at: Option<Instant>,
    /// Last byte read from the container's outputs or written to the caller's, or the moment
    /// `exited` fired if later.
    last_progress: Instant,
    drain_timeout: Duration,
}

impl<'a> PipeRelay<'a> {
    fn new(
        ends: RelayEnds,
        caller: CallerStdio<'a>,
        exited: BorrowedFd<'a>,
        options: &RelayOptions,
    ) -> Self {
        let stdout_sink = if options.discard_stdout {
            None
        } else {
            Some(OutputSink::new(caller.stdout, Stream::CallerStdout))
        };
        let stderr_sink = OutputSink::new(caller.stderr, Stream::CallerStderr);
        Self {
            caller_stdin: caller.stdin,
            stdin_open: true,
            stdin_buf: RingBuffer::new(BUFFER_SIZE),
            container_stdin: Some(ends.stdin),
            stdin_written: 0,
            outputs: [
                Output::new(
                    ends.stdout,
                    Stream::ContainerStdout,
                    stdout_sink,
                    Stream::CallerStdout,
                ),
                Output::new(
                    ends.stderr,
                    Stream::ContainerStderr,
                    Some(stderr_sink),
                    Stream::CallerStderr,
                ),
            ],
            exited,
            exited_at: None,
            last_progress: Instant::now(),
            drain_timeout: options.drain_timeout,
        }
    }

    fn run(mut self) -> Result<RelayReport, RelayError> {
        loop {
            if self.container_stdin.is_some() && !self.stdin_open && self.stdin_buf.is_empty() {
                debug!(stream = %Stream::ContainerStdin, "closing");
                self.container_stdin = None;
            }
            if self.outputs.iter().all(Output::is_done) {
                debug!("container output complete");
                return Ok(self.report(false));
            }
            let timeout = match self.drain_deadline() {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        debug!(
                            timeout_ms = self.drain_timeout.as_millis() as u64,
                            "container exited and its output pipes stayed quiet; stopping"
                        );
                        return Ok(self.report(true));
                    }
                    Some(deadline - now)
                }
                None => None,
            };
            let ready = self.poll(timeout)?;
            self.handle(&ready)?;
        }
    }

    /// When the drain ends if nothing happens: only once `exited` fired and only while no
    /// output waits to be written (a slow reader delays the end, it does not lose output).
    fn drain_deadline(&self) -> Option<Instant> {
        self.exited_at?;
        if self.outputs.iter().any(|output| !output.buf.is_empty()) {
            return None;
        }
        Some(self.last_progress + self.drain_timeout)
    }

    fn poll(&self, timeout: Option<Duration>) -> Result<Ready, RelayError> {
        let mut entries: Vec<(BorrowedFd<'_>, PollFlags, Slot)> = Vec::with_capacity(7);
        if let Some(container_stdin) = &self.container_stdin {
            if self.stdin_open && !self.stdin_buf.is_full() {
                entries.push((self.caller_stdin, PollFlags::POLLIN, Slot::CallerStdin));
            }
            if !self.stdin_buf.is_empty() {
                entries.push((
                    container_stdin.as_fd(),
                    PollFlags::POLLOUT,
                    Slot::ContainerStdin,
                ));
            }
        }
        for (i, output) in self.outputs.iter().enumerate() {
            if let (true, Some(source)) = (output.wants_read(), &output.source) {
                entries.push((source.as_fd(), PollFlags::POLLIN, Slot::Source(i)));
            }
            if let (true, Some(sink)) = (output.wants_write(), &output.sink) {
                entries.push((sink.as_fd(), PollFlags::POLLOUT, Slot::Sink(i)));
            }
        }
        if self.exited_at.is_none() {
            entries.push((self.exited, PollFlags::POLLIN, Slot::Exited));
        }
        let mut fds: Vec<PollFd<'_>> = entries
            .iter()
            .map(|&(fd, events, _)| PollFd::new(fd, events))
            .collect();

        let timeout = match timeout {
            None => PollTimeout::NONE,
            // Round up: a timeout rounded down to 0 ms would spin until the deadline.
            Some(left) => {
                let millis = left.as_nanos().div_ceil(1_000_000);
                PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut ready = Ready::NONE;
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) => {}
            // A signal: the caller's loop polls again with a fresh timeout.
            Err(Errno::EINTR) => return Ok(ready),
            Err(source) => return Err(RelayError::Poll { source }),
        }
        for (fd, &(_, _, slot)) in fds.iter().zip(&entries) {
            let revents = fd.revents().unwrap_or(PollFlags::empty());
            match slot {
                Slot::CallerStdin => ready.caller_stdin = revents,
                Slot::ContainerStdin => ready.container_stdin = revents,
                Slot::Source(i) => ready.sources[i] = revents,
                Slot::Sink(i) => ready.sinks[i] = revents,
                Slot::Exited => ready.exited = revents,
            }
        }
        Ok(ready)
    }

    fn handle(&mut self, ready: &Ready) -> Result<(), RelayError> {
        let now = Instant::now();
        if !ready.exited.is_empty() && self.exited_at.is_none() {
            debug!(revents = ?ready.exited, "container exited; draining its output");
            self.exited_at = Some(now);
            self.last_progress = self.last_progress.max(now);
        }
        // Writes first: they make room for the reads that follow.
        if !ready.container_stdin.is_empty() {
            self.write_container_stdin()?;
        }
        let mut progress = false;
        for (output, revents) in self.outputs.iter_mut().zip(ready.sinks) {
            if !revents.is_empty() {
                progress |= output.flush()? > 0;
            }
        }
        if !ready.caller_stdin.is_empty() {
            self.read_caller_stdin(ready.caller_stdin)?;
        }
        for (output, revents) in self.outputs.iter_mut().zip(ready.sources) {
            // POLLIN, POLLHUP or POLLERR alike: read(2) tells data, end of file or the error.
            if !revents.is_empty() {
                progress |= output.fill()? > 0;
            }
        }
        if progress {
            self.last_progress = Instant::now();
        }
        Ok(())
    }

    fn read_caller_stdin(&mut self, revents: PollFlags) -> Result<(), RelayError> {
        if !revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            // POLLNVAL (fd 0 closed) or POLLERR (e.g. the write end of a pipe): no input.
            debug!(stream = %Stream::CallerStdin, ?revents, "unreadable; treating as end of file");
            self.stdin_open = false;
            return Ok(());
        }
        match fdio::read(self.caller_stdin, self.stdin_buf.spare_mut()) {
            Ok(Io::Done(0)) => {
                debug!(stream = %Stream::CallerStdin, "end of file");
                self.stdin_open = false;
            }
            Ok(Io::Done(n)) => self.stdin_buf.commit(n),
            // The caller left its stdin non-blocking, or another reader took the bytes.
            Ok(Io::WouldBlock) => {}
            Err(source) => {
                return Err(RelayError::Read {
                    stream: Stream::CallerStdin,
                    source,
                })
            }
        }
        Ok(())
    }

    fn write_container_stdin(&mut self) -> Result<(), RelayError> {
        while let Some(container_stdin) = &self.container_stdin {
            let filled = self.stdin_buf.filled();
            if filled.is_empty() {
                break;
            }
            match fdio::write(container_stdin.as_fd(), filled) {
                Ok(Io::Done(0)) | Ok(Io::WouldBlock) => break,
                Ok(Io::Done(n)) => {
                    self.stdin_buf.consume(n);
                    self.stdin_written += n as u64;
                }
                Err(Errno::EPIPE) => {
                    debug!(
                        stream = %Stream::ContainerStdin,
                        dropped = self.stdin_buf.len(),
                        "closed by the container; no more input"
                    );
                    self.stdin_buf.clear();
                    self.stdin_open = false;
                    self.container_stdin = None;
                }
                Err(source) => {
                    return Err(RelayError::Write {
                        stream: Stream::ContainerStdin,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    fn report(&self, drain_timed_out: bool) -> RelayReport {
        RelayReport {
            stdin_bytes: self.stdin_written,
            stdout_bytes: self.outputs[0].written,
            stderr_bytes: self.outputs[1].written,
            drain_timed_out,
        }
    }
}
