//! Options and results of a relay.

use std::time::Duration;

/// How long the relay keeps draining after the container exited: 200 milliseconds.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_millis(200);

/// How a relay runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayOptions {
    /// Read the container's stdout and throw it away instead of writing it to the caller's
    /// stdout (`--quiet`). The container is never blocked on a full stdout pipe.
    /// Default: `false`.
    pub discard_stdout: bool,
    /// After the `exited` fd becomes readable, the relay stops once this long passed without a
    /// byte read from the container's stdout or stderr (and everything read was written out),
    /// even if a process the container left behind still holds those pipes open. Milliseconds
    /// are the useful resolution (epoll_wait(2)'s timeout unit). Default: [`DEFAULT_DRAIN_TIMEOUT`],
    /// 200 ms.
    pub drain_timeout: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            discard_stdout: false,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// What a finished relay moved, in bytes per stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayReport {
    /// Bytes written to the container's stdin (read from the caller's stdin and delivered); in
    /// terminal mode, to the container's terminal, counting the EOF characters sent at the end
    /// of the caller's stdin.
    pub stdin_bytes: u64,
    /// Bytes written to the caller's stdout (in terminal mode: the terminal's output). 0 with
    /// [`discard_stdout`](RelayOptions::discard_stdout); what was written before the caller's
    /// reader went away if it did.
    pub stdout_bytes: u64,
    /// Bytes written to the caller's stderr.
    pub stderr_bytes: u64,
    /// `true` when the relay stopped because [`drain_timeout`](RelayOptions::drain_timeout)
    /// passed after the container exited while its stdout or stderr pipe was still open
    /// (a process it left behind holds it); `false` when both pipes reached end of file.
    pub drain_timed_out: bool,
}
