//! The relay loop shared by pipe mode and terminal mode: flows of bytes between fds, driven by
//! one level-triggered epoll(7) instance.
//!
//! A [`Flow`] moves one stream from a [`Source`] to a [`Sink`] (or, for output that is thrown
//! away, to nowhere). It moves bytes in one of two ways:
//!
//! - **splice**: when one end is a pipe and the other a pipe or a regular file, splice(2) with
//!   `SPLICE_F_NONBLOCK` moves the bytes inside the kernel; the pipes themselves are the
//!   bounded buffer. The flow waits either for its source to become readable or for its sink
//!   to become writable, never both: after `EAGAIN` it asks the source pipe (`FIONREAD`, and
//!   `POLLHUP` for a source whose writers are gone) which end was the one that blocked.
//!   `EINVAL` (the kernel cannot splice these two, e.g. a file opened with `O_APPEND`) switches
//!   the flow to read/write for good; it happens before any byte moved by that call.
//! - **read/write** through a [`RingBuffer`] of [`BUFFER_SIZE`] bytes: the source is watched
//!   only while the buffer has room, the sink only while it holds bytes.
//!
//! An fd that epoll cannot watch (`EPERM`: a regular file, `/dev/null`) is always ready: the
//! loop does not sleep while such an fd has work.
//!
//! Every fd is removed from the epoll set before it is closed: the caller's fds are duplicates
//! whose open file descriptions outlive them, and epoll would keep reporting them.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use tracing::debug;

use crate::buffer::{RingBuffer, BUFFER_SIZE};
use crate::caller::{Sink, Source, WriteMode, PIPE_BUF};
use crate::error::{RelayError, Stream};
use crate::fdio::{self, FdKind, Io};
use crate::terminal::{self, ResizeSignal};

/// Reads per readiness report on one of the relay's own sources, so that a writer as fast as
/// the relay cannot keep it from serving the other streams.
const MAX_READS_PER_WAKEUP: usize = 4;

/// splice(2) calls per readiness report on one flow, for the same reason.
const MAX_SPLICES_PER_WAKEUP: usize = 4;

/// Bytes asked of one splice(2): 1 MiB, at least a whole pipe (64 KiB by default, 1 MiB at
/// most for an unprivileged `F_SETPIPE_SZ`).
const SPLICE_LEN: usize = 1024 * 1024;

/// epoll data of the `exited` fd.
const EXITED_KEY: u64 = u64::MAX;
/// epoll data of the SIGWINCH signalfd.
const RESIZE_KEY: u64 = u64::MAX - 1;

/// Which way a flow goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The caller's stdin to the container: its end does not end the relay.
    Input,
    /// The container's output to the caller: the relay ends when every output flow is done.
    Output,
}

/// What an input flow does at the end of its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtEof {
    /// Close the sink once everything read was written (the container's stdin pipe).
    CloseSink,
    /// Write the sink terminal's EOF character (`VEOF`), then close the relay's copy of it.
    SendEofChar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source = 0,
    Sink = 1,
}

#[derive(Debug)]
enum Transfer {
    Splice { wait: Side },
    Buffered(RingBuffer),
}

/// Whether splice(2) can move bytes from an fd of kind `from` to one of kind `to`.
fn splice_applies(from: FdKind, to: FdKind) -> bool {
    matches!(
        (from, to),
        (FdKind::Fifo, FdKind::Fifo) | (FdKind::Fifo, FdKind::File) | (FdKind::File, FdKind::Fifo)
    )
}

/// `EPIPE` (no reader), or `EIO` from a terminal that hung up: the sink is gone.
fn sink_gone_errno(errno: Errno, kind: FdKind) -> bool {
    errno == Errno::EPIPE || (errno == Errno::EIO && kind == FdKind::CharDevice)
}

/// One stream: bytes from a source to a sink.
#[derive(Debug)]
pub(crate) struct Flow {
    role: Role,
    from: Stream,
    to: Stream,
    /// `None` after end of file.
    source: Option<Source>,
    /// `None` while output is thrown away, and for input once closed.
    sink: Option<Sink>,
    transfer: Transfer,
    at_eof: AtEof,
    /// EOF characters still to be queued for the sink (terminal input).
    pending_eof: Option<Vec<u8>>,
    /// The last byte read from the source and queued for the sink.
    last_byte: Option<u8>,
    /// Bytes written to the sink.
    moved: u64,
    /// The events each side is registered for in the epoll set.
    registered: [Option<EpollFlags>; 2],
    /// `false` for a side epoll cannot watch (always ready).
    pollable: [bool; 2],
}

impl Flow {
    /// A flow from `source` (`None`: already at end of file) to `sink` (`None`: thrown away),
    /// spliced when `allow_splice` and the kinds of both ends allow it.
    pub(crate) fn new(
        role: Role,
        source: Option<Source>,
        from: Stream,
        sink: Option<Sink>,
        to: Stream,
        at_eof: AtEof,
        allow_splice: bool,
    ) -> Self {
        let splice = match (&source, &sink) {
            (Some(source), Some(sink)) => allow_splice && splice_applies(source.kind, sink.kind),
            _ => false,
        };
        let transfer = if splice {
            Transfer::Splice { wait: Side::Source }
        } else {
            Transfer::Buffered(RingBuffer::new(BUFFER_SIZE))
        };
        debug!(%from, %to, splice, "flow");
        let pollable = [
            source.as_ref().is_none_or(|s| s.kind != FdKind::File),
            sink.as_ref().is_none_or(|s| s.kind != FdKind::File),
        ];
        // No source at all (the caller's stdin is not open): end of file from the start.
        let pending_eof = match (&source, &sink, at_eof) {
            (None, Some(sink), AtEof::SendEofChar) => {
                Some(terminal::eof_chars(sink.fd.as_fd(), None))
            }
            _ => None,
        };
        Self {
            role,
            from,
            to,
            source,
            sink,
            transfer,
            at_eof,
            pending_eof,
            last_byte: None,
            moved: 0,
            registered: [None, None],
            pollable,
        }
    }

    /// Bytes written to the sink so far.
    pub(crate) fn moved(&self) -> u64 {
        self.moved
    }

    /// Whether this flow moves bytes with splice(2) (for tests).
    #[cfg(test)]
    pub(crate) fn is_spliced(&self) -> bool {
        matches!(self.transfer, Transfer::Splice { .. })
    }

    fn buffer_is_empty(&self) -> bool {
        match &self.transfer {
            Transfer::Splice { .. } => true,
            Transfer::Buffered(buf) => buf.is_empty(),
        }
    }

    /// An output flow is done when its source reached end of file and nothing read from it
    /// waits to be written.
    fn is_done(&self) -> bool {
        self.source.is_none() && (self.sink.is_none() || self.buffer_is_empty())
    }

    /// Whether output waits for the caller's reader: buffered bytes, or a spliced source
    /// whose sink was full.
    fn holds_output(&self) -> bool {
        if self.sink.is_none() {
            return false;
        }
        match &self.transfer {
            Transfer::Splice { wait } => *wait == Side::Sink && self.source.is_some(),
            Transfer::Buffered(buf) => !buf.is_empty(),
        }
    }

    fn fd(&self, side: Side) -> Option<BorrowedFd<'_>> {
        match side {
            Side::Source => self.source.as_ref().map(|s| s.fd.as_fd()),
            Side::Sink => self.sink.as_ref().map(|s| s.fd.as_fd()),
        }
    }

    fn stream(&self, side: Side) -> Stream {
        match side {
            Side::Source => self.from,
            Side::Sink => self.to,
        }
    }

    /// The events a side waits for now, if any.
    fn desired(&self, side: Side) -> Option<EpollFlags> {
        match side {
            Side::Source => {
                self.source.as_ref()?;
                let wants = match &self.transfer {
                    Transfer::Splice { wait } => *wait == Side::Source,
                    Transfer::Buffered(buf) => !buf.is_full(),
                };
                wants.then_some(EpollFlags::EPOLLIN)
            }
            Side::Sink => {
                self.sink.as_ref()?;
                let wants = match &self.transfer {
                    Transfer::Splice { wait } => *wait == Side::Sink,
                    Transfer::Buffered(buf) => !buf.is_empty(),
                };
                wants.then_some(EpollFlags::EPOLLOUT)
            }
        }
    }

    /// Whether a side that epoll cannot watch has work now.
    fn has_unwatched_work(&self) -> bool {
        (!self.pollable[0] && self.desired(Side::Source).is_some())
            || (!self.pollable[1] && self.desired(Side::Sink).is_some())
    }

    /// Brings the epoll registration of both sides in line with [`Self::desired`]. A side whose
    /// fd epoll refuses with `EPERM` becomes always ready.
    fn sync(&mut self, epoll: &Epoll, index: usize) -> Result<(), RelayError> {
        for side in [Side::Source, Side::Sink] {
            let i = side as usize;
            if !self.pollable[i] {
                continue;
            }
            let desired = self.desired(side);
            if desired == self.registered[i] {
                continue;
            }
            let stream = self.stream(side);
            let Some(fd) = self.fd(side) else {
                self.registered[i] = None;
                continue;
            };
            let data = (index * 2 + i) as u64;
            let result = match (self.registered[i], desired) {
                (None, Some(events)) => match epoll.add(fd, EpollEvent::new(events, data)) {
                    Err(Errno::EPERM) => {
                        debug!(%stream, "epoll cannot watch it (a regular file or device): always ready");
                        self.pollable[i] = false;
                        continue;
                    }
                    other => other,
                },
                (Some(_), None) => epoll.delete(fd),
                (Some(_), Some(events)) => epoll.modify(fd, &mut EpollEvent::new(events, data)),
                (None, None) => Ok(()),
            };
            result.map_err(|source| RelayError::Register { stream, source })?;
            self.registered[i] = desired;
        }
        Ok(())
    }

    /// Closes one side, removing it from the epoll set first.
    fn close(&mut self, epoll: &Epoll, side: Side) {
        let i = side as usize;
        let fd: Option<OwnedFd> = match side {
            Side::Source => self.source.take().map(|s| s.fd),
            Side::Sink => self.sink.take().map(|s| s.fd),
        };
        if let (Some(fd), Some(_)) = (fd, self.registered[i].take()) {
            if let Err(errno) = epoll.delete(&fd) {
                debug!(stream = %self.stream(side), %errno, "epoll_ctl(EPOLL_CTL_DEL) failed");
            }
        }
    }

    /// Queues pending EOF characters and closes an input's sink once all is written.
    fn settle(&mut self, epoll: &Epoll) {
        if self.source.is_some() {
            return;
        }
        if let Some(bytes) = self.pending_eof.take() {
            match &mut self.transfer {
                Transfer::Buffered(buf) => {
                    let mut rest: &[u8] = &bytes;
                    while !rest.is_empty() {
                        let spare = buf.spare_mut();
                        let n = spare.len().min(rest.len());
                        if n == 0 {
                            break;
                        }
                        spare[..n].copy_from_slice(&rest[..n]);
                        buf.commit(n);
                        rest = &rest[n..];
                    }
                    if !rest.is_empty() {
                        self.pending_eof = Some(rest.to_vec());
                    }
                }
                Transfer::Splice { .. } => {}
            }
        }
        if self.role == Role::Input
            && self.sink.is_some()
            && self.pending_eof.is_none()
            && self.buffer_is_empty()
        {
            debug!(stream = %self.to, "input ended; closing");
            self.close(epoll, Side::Sink);
        }
    }

    /// The source reached end of file.
    fn source_eof(&mut self, epoll: &Epoll) {
        debug!(stream = %self.from, "end of file");
        self.close(epoll, Side::Source);
        if self.at_eof == AtEof::SendEofChar {
            if let Some(sink) = &self.sink {
                let bytes = terminal::eof_chars(sink.fd.as_fd(), self.last_byte);
                debug!(stream = %self.to, ?bytes, "sending the terminal's EOF character");
                self.pending_eof = Some(bytes);
            }
        }
    }

    /// The sink's reader went away (`EPIPE`, or a terminal hung up).
    fn sink_gone(&mut self, epoll: &Epoll) {
        match self.role {
            Role::Output => {
                // As in a shell pipeline (`yes | head -1`): the container's end of the stream
                // is closed too, so its next write gets EPIPE (SIGPIPE) instead of writing
                // into a void for ever.
                debug!(stream = %self.to, "reader went away; closing the container's end");
                self.close(epoll, Side::Sink);
                self.close(epoll, Side::Source);
                match &mut self.transfer {
                    Transfer::Buffered(buf) => buf.clear(),
                    Transfer::Splice { .. } => {
                        self.transfer = Transfer::Buffered(RingBuffer::new(BUFFER_SIZE));
                    }
                }
            }
            Role::Input => {
                let dropped = match &mut self.transfer {
                    Transfer::Buffered(buf) => {
                        let n = buf.len();
                        buf.clear();
                        n
                    }
                    Transfer::Splice { .. } => 0,
                };
                debug!(stream = %self.to, dropped, "closed by the container; no more input");
                self.pending_eof = None;
                self.close(epoll, Side::Source);
                self.close(epoll, Side::Sink);
            }
        }
    }

    /// Moves what can move now; `events` are what epoll reported for the source and the sink
    /// (empty: nothing). Returns the bytes read from the source plus those written to the
    /// sink.
    fn step(&mut self, epoll: &Epoll, events: [EpollFlags; 2]) -> Result<u64, RelayError> {
        let source_ready =
            (!self.pollable[0] || !events[0].is_empty()) && self.desired(Side::Source).is_some();
        let sink_ready =
            (!self.pollable[1] || !events[1].is_empty()) && self.desired(Side::Sink).is_some();
        if !source_ready && !sink_ready {
            return Ok(0);
        }
        if source_ready
            && self.pollable[0]
            && self.source.as_ref().is_some_and(|s| s.shared)
            && !events[0].intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP)
        {
            // EPOLLERR alone: e.g. the caller's stdin is the write end of a pipe.
            debug!(stream = %self.from, revents = ?events[0], "unreadable; treating as end of file");
            self.source_eof(epoll);
            return Ok(0);
        }
        match self.transfer {
            Transfer::Splice { .. } => self.splice(epoll),
            Transfer::Buffered(_) => {
                let mut progress = 0;
                if sink_ready {
                    progress += self.flush(epoll)?;
                }
                if source_ready {
                    progress += self.fill(epoll)?;
                    // A non-blocking or file sink takes what it can at once: no wait for the
                    // next readiness report. A chunked (blocking) sink waits for one.
                    if self
                        .sink
                        .as_ref()
                        .is_some_and(|s| s.mode != WriteMode::Chunked)
                    {
                        progress += self.flush(epoll)?;
                    }
                }
                Ok(progress)
            }
        }
    }

    /// Reads what the source holds into the buffer, as far as it has room: once for a shared
    /// (caller's, maybe blocking) fd, until `EAGAIN` (at most [`MAX_READS_PER_WAKEUP`] times)
    /// for the relay's own. Returns the bytes read.
    fn fill(&mut self, epoll: &Epoll) -> Result<u64, RelayError> {
        let mut total = 0;
        let mut eof = false;
        {
            let Flow {
                source,
                sink,
                transfer,
                last_byte,
                from,
                ..
            } = self;
            let Transfer::Buffered(buf) = transfer else {
                return Ok(0);
            };
            let Some(src) = source.as_ref() else {
                return Ok(0);
            };
            let reads = if src.shared { 1 } else { MAX_READS_PER_WAKEUP };
            for _ in 0..reads {
                let spare = buf.spare_mut();
                if spare.is_empty() {
                    break;
                }
                match fdio::read(src.fd.as_fd(), spare) {
                    Ok(Io::Done(0)) => {
                        eof = true;
                        break;
                    }
                    Ok(Io::Done(n)) => {
                        total += n as u64;
                        if sink.is_some() {
                            *last_byte = Some(spare[n - 1]);
                            buf.commit(n);
                        }
                    }
                    // The caller left its stdin non-blocking, or another reader took the bytes.
                    Ok(Io::WouldBlock) => break,
                    Err(Errno::EIO) if src.eio_is_eof => {
                        debug!(stream = %from, "hung up (EIO)");
                        eof = true;
                        break;
                    }
                    Err(source) => {
                        return Err(RelayError::Read {
                            stream: *from,
                            source,
                        })
                    }
                }
            }
        }
        if eof {
            self.source_eof(epoll);
        }
        Ok(total)
    }

    /// Writes buffered bytes to the sink as far as it takes them; returns the bytes written.
    fn flush(&mut self, epoll: &Epoll) -> Result<u64, RelayError> {
        let mut total = 0;
        let mut gone = false;
        {
            let Flow {
                sink,
                transfer,
                moved,
                to,
                ..
            } = self;
            let (Some(sink), Transfer::Buffered(buf)) = (sink.as_ref(), transfer) else {
                return Ok(0);
            };
            loop {
                let filled = buf.filled();
                if filled.is_empty() {
                    break;
                }
                let chunked = sink.mode == WriteMode::Chunked;
                let chunk = if chunked {
                    &filled[..filled.len().min(PIPE_BUF)]
                } else {
                    filled
                };
                match fdio::write(sink.fd.as_fd(), chunk) {
                    Ok(Io::Done(0)) | Ok(Io::WouldBlock) => break,
                    Ok(Io::Done(n)) => {
                        buf.consume(n);
                        *moved += n as u64;
                        total += n as u64;
                        if chunked {
                            break;
                        }
                    }
                    Err(errno) if sink_gone_errno(errno, sink.kind) => {
                        gone = true;
                        break;
                    }
                    Err(source) => {
                        return Err(RelayError::Write {
                            stream: *to,
                            source,
                        })
                    }
                }
            }
        }
        if gone {
            self.sink_gone(epoll);
        }
        Ok(total)
    }

    /// Splices from the source to the sink until one blocks (at most
    /// [`MAX_SPLICES_PER_WAKEUP`] times); returns the bytes moved.
    fn splice(&mut self, epoll: &Epoll) -> Result<u64, RelayError> {
        enum Next {
            Again,
            Wait(Side),
            Eof,
            Gone,
            Fallback,
        }
        let mut total = 0;
        for _ in 0..MAX_SPLICES_PER_WAKEUP {
            let (Some(source), Some(sink)) = (&self.source, &self.sink) else {
                break;
            };
            let next = match fdio::splice(source.fd.as_fd(), sink.fd.as_fd(), SPLICE_LEN) {
                Ok(Io::Done(0)) => Next::Eof,
                Ok(Io::Done(n)) => {
                    self.moved += n as u64;
                    total += n as u64;
                    Next::Again
                }
                Ok(Io::WouldBlock) => Next::Wait(blocked_side(source)),
                Err(Errno::EINVAL) => Next::Fallback,
                Err(errno) if sink_gone_errno(errno, sink.kind) => Next::Gone,
                Err(source) => {
                    return Err(RelayError::Transfer {
                        from: self.from,
                        to: self.to,
                        source,
                    })
                }
            };
            match next {
                Next::Again => self.transfer = Transfer::Splice { wait: Side::Source },
                Next::Wait(wait) => {
                    self.transfer = Transfer::Splice { wait };
                    break;
                }
                Next::Eof => {
                    self.source_eof(epoll);
                    break;
                }
                Next::Gone => {
                    self.sink_gone(epoll);
                    break;
                }
                Next::Fallback => {
                    debug!(from = %self.from, to = %self.to, "splice(2) does not apply; using read(2) and write(2)");
                    self.transfer = Transfer::Buffered(RingBuffer::new(BUFFER_SIZE));
                    break;
                }
            }
        }
        Ok(total)
    }
}

/// After splice(2) gave `EAGAIN`: which end blocked. A pipe source that holds bytes, or whose
/// writers are all gone (splice would have returned 0 if the sink had room), means the sink is
/// full; an empty pipe source with writers means wait for it. A regular file source always has
/// bytes or end of file, so the sink blocked.
fn blocked_side(source: &Source) -> Side {
    if source.kind != FdKind::Fifo {
        return Side::Sink;
    }
    match fdio::readable_bytes(source.fd.as_fd()) {
        Ok(n) if n > 0 => Side::Sink,
        _ if fdio::hung_up(source.fd.as_fd()) => Side::Sink,
        _ => Side::Source,
    }
}

/// Window-size forwarding in terminal mode: on SIGWINCH, the size of the caller's terminal
/// `from` is copied to the container's terminal `to`.
#[derive(Debug)]
pub(crate) struct Resize<'a> {
    pub(crate) signal: &'a ResizeSignal,
    pub(crate) from: Option<(BorrowedFd<'a>, Stream)>,
    pub(crate) to: BorrowedFd<'a>,
}

/// How a relay ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Bytes written to each flow's sink, in the order the flows were given.
    pub(crate) moved: Vec<u64>,
    /// The drain timeout ended it (see [`crate::RelayReport::drain_timed_out`]).
    pub(crate) drain_timed_out: bool,
}

/// The relay loop.
#[derive(Debug)]
pub(crate) struct Engine<'a> {
    epoll: Epoll,
    flows: Vec<Flow>,
    exited: BorrowedFd<'a>,
    exited_at: Option<Instant>,
    resize: Option<Resize<'a>>,
    /// Last byte read from the container's outputs or written to the caller's, or the moment
    /// `exited` fired if later.
    last_progress: Instant,
    drain_timeout: Duration,
}

impl<'a> Engine<'a> {
    /// A relay of `flows` until the output flows are done or, once `exited` is readable,
    /// `drain_timeout` passed without output.
    ///
    /// # Errors
    /// [`RelayError::Poll`] when epoll_create1(2) or watching `exited` or the signalfd fails.
    pub(crate) fn new(
        flows: Vec<Flow>,
        exited: BorrowedFd<'a>,
        resize: Option<Resize<'a>>,
        drain_timeout: Duration,
    ) -> Result<Self, RelayError> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|source| RelayError::Poll { source })?;
        epoll
            .add(exited, EpollEvent::new(EpollFlags::EPOLLIN, EXITED_KEY))
            .map_err(|source| RelayError::Poll { source })?;
        if let Some(resize) = &resize {
            epoll
                .add(
                    resize.signal.as_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN, RESIZE_KEY),
                )
                .map_err(|source| RelayError::Poll { source })?;
        }
        Ok(Self {
            epoll,
            flows,
            exited,
            exited_at: None,
            resize,
            last_progress: Instant::now(),
            drain_timeout,
        })
    }

    /// Runs the loop to its end.
    ///
    /// # Errors
    /// Any [`RelayError`] of a system call that is not one of the handled conditions.
    pub(crate) fn run(mut self) -> Result<Outcome, RelayError> {
        let mut events = vec![EpollEvent::empty(); 16];
        loop {
            for flow in &mut self.flows {
                flow.settle(&self.epoll);
            }
            if self
                .flows
                .iter()
                .filter(|f| f.role == Role::Output)
                .all(Flow::is_done)
            {
                debug!("container output complete");
                return Ok(self.outcome(false));
            }
            let mut timeout = match self.drain_deadline() {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        debug!(
                            timeout_ms = self.drain_timeout.as_millis() as u64,
                            "container exited and its output stayed quiet; stopping"
                        );
                        return Ok(self.outcome(true));
                    }
                    Some(deadline - now)
                }
                None => None,
            };
            for (i, flow) in self.flows.iter_mut().enumerate() {
                flow.sync(&self.epoll, i)?;
            }
            if self.flows.iter().any(Flow::has_unwatched_work) {
                timeout = Some(Duration::ZERO);
            }
            let n = match self.epoll.wait(&mut events, epoll_timeout(timeout)) {
                Ok(n) => n,
                // A signal: loop again with a fresh timeout.
                Err(Errno::EINTR) => 0,
                Err(source) => return Err(RelayError::Poll { source }),
            };
            let mut ready = vec![[EpollFlags::empty(); 2]; self.flows.len()];
            let mut exited = false;
            let mut resized = false;
            for event in &events[..n] {
                match event.data() {
                    EXITED_KEY => exited = true,
                    RESIZE_KEY => resized = true,
                    key => {
                        let flow = (key / 2) as usize;
                        let side = (key % 2) as usize;
                        if let Some(slot) = ready.get_mut(flow) {
                            slot[side] = event.events();
                        }
                    }
                }
            }
            if exited && self.exited_at.is_none() {
                let now = Instant::now();
                debug!("container exited; draining its output");
                self.exited_at = Some(now);
                self.last_progress = self.last_progress.max(now);
                // Level-triggered: a pidfd stays readable. It has told what it had to tell.
                if let Err(errno) = self.epoll.delete(self.exited) {
                    debug!(%errno, "epoll_ctl(EPOLL_CTL_DEL) of the exit notification failed");
                }
            }
            if resized {
                if let Some(resize) = &self.resize {
                    resize.signal.drain()?;
                    if let Some((from, stream)) = resize.from {
                        // A failed resize is logged, not fatal: the relay goes on.
                        if let Err(e) = terminal::copy_window_size(from, stream, resize.to) {
                            tracing::warn!(error = %e, "cannot pass the window size on");
                        }
                    }
                }
            }
            let mut progress = false;
            for (flow, events) in self.flows.iter_mut().zip(ready) {
                let moved = flow.step(&self.epoll, events)?;
                if flow.role == Role::Output && moved > 0 {
                    progress = true;
                }
            }
            if progress {
                self.last_progress = Instant::now();
            }
        }
    }

    /// When the drain ends if nothing happens: only once `exited` fired and only while no
    /// output waits for the caller's reader (a slow reader delays the end, it does not lose
    /// output).
    fn drain_deadline(&self) -> Option<Instant> {
        self.exited_at?;
        if self
            .flows
            .iter()
            .any(|f| f.role == Role::Output && f.holds_output())
        {
            return None;
        }
        Some(self.last_progress + self.drain_timeout)
    }

    fn outcome(&self, drain_timed_out: bool) -> Outcome {
        Outcome {
            moved: self.flows.iter().map(Flow::moved).collect(),
            drain_timed_out,
        }
    }
}

/// `None` (wait without end) or the time left, rounded up to whole milliseconds: a timeout
/// rounded down to 0 ms would spin until the deadline.
fn epoll_timeout(left: Option<Duration>) -> EpollTimeout {
    match left {
        None => EpollTimeout::NONE,
        Some(left) => {
            let millis = left.as_nanos().div_ceil(1_000_000);
            EpollTimeout::try_from(millis).unwrap_or(EpollTimeout::MAX)
        }
    }
}
