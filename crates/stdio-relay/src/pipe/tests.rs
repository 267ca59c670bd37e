//! Pipe-mode relay tests with real pipes, threads and host processes standing in for the
//! container (`sh -c`, `cat`, `head` wired to the [`ContainerStdio`] ends).

use std::fs::File;
use std::io::{self, PipeReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

use super::*;
use crate::caller::WriteMode;

/// Longest any relay in these tests may take before the test fails instead of hanging.
const RELAY_LIMIT: Duration = Duration::from_secs(60);

/// The caller's side of a test relay, owned so that it can move into the relay's thread.
struct CallerFds {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Runs [`relay`] on its own thread and fails the test if it does not return within `limit`.
/// Returns the result and the caller's fds (still open: drop them to give their readers EOF).
fn run_relay(
    ends: RelayEnds,
    caller: CallerFds,
    exited: impl Into<OwnedFd>,
    options: RelayOptions,
    limit: Duration,
) -> (Result<RelayReport, RelayError>, CallerFds) {
    run_relay_with(ends, caller, exited, options, limit, true)
}

/// [`run_relay`] with splice(2) allowed or not.
fn run_relay_with(
    ends: RelayEnds,
    caller: CallerFds,
    exited: impl Into<OwnedFd>,
    options: RelayOptions,
    limit: Duration,
    allow_splice: bool,
) -> (Result<RelayReport, RelayError>, CallerFds) {
    let exited: OwnedFd = exited.into();
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let stdio = CallerStdio {
            stdin: caller.stdin.as_fd(),
            stdout: caller.stdout.as_fd(),
            stderr: caller.stderr.as_fd(),
        };
        let report = relay_with(ends, stdio, exited.as_fd(), &options, allow_splice);
        let _ = done.send((report, caller));
    });
    result
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("relay did not return within {limit:?}"))
}

/// `sh -c SCRIPT` as the container, on the container's ends (which this process then no longer
/// holds: the `Command` owning them is dropped at the end of the statement).
fn spawn_sh(script: &str, container: ContainerStdio) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::from(container.stdin))
        .stdout(Stdio::from(container.stdout))
        .stderr(Stdio::from(container.stderr))
        .spawn()
        .expect("spawn sh")
}

/// Waits for `child` on a thread; the returned pipe becomes readable (`POLLHUP`) once it
/// exited. The thread returns the exit status and when it was seen.
fn exit_notifier(mut child: Child) -> (PipeReader, JoinHandle<(ExitStatus, Instant)>) {
    let (readable, writer) = io::pipe().expect("pipe");
    let waiter = thread::spawn(move || {
        let status = child.wait().expect("wait for the container");
        let at = Instant::now();
        drop(writer);
        (status, at)
    });
    (readable, waiter)
}

/// An `exited` fd that never becomes readable while the returned writer lives.
fn never_exits() -> (PipeReader, io::PipeWriter) {
    io::pipe().expect("pipe")
}

/// A pipe whose read end a thread reads to end of file; returns the write end.
fn collected_pipe() -> (OwnedFd, JoinHandle<Vec<u8>>) {
    let (mut reader, writer) = io::pipe().expect("pipe");
    let collector = thread::spawn(move || {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .expect("read the caller's side");
        bytes
    });
    (writer.into(), collector)
}

/// A pipe already holding `input` with its write end closed; returns the read end.
fn input_pipe(input: &[u8]) -> OwnedFd {
    let (reader, mut writer) = io::pipe().expect("pipe");
    writer.write_all(input).expect("fill the input pipe");
    reader.into()
}

fn dev_null() -> OwnedFd {
    File::open("/dev/null").expect("open /dev/null").into()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("utf-8 output")
}

/// FNV-1a over a stream of bytes: a checksum that notices lost, extra and reordered bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checksum {
    bytes: u64,
    hash: u64,
}

impl Checksum {
    fn new() -> Self {
        Self {
            bytes: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }

    fn update(&mut self, data: &[u8]) {
        for &byte in data {
            self.hash ^= u64::from(byte);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.bytes += data.len() as u64;
    }
}

/// Writes `len` pseudo-random bytes to `to` on a thread; returns their checksum.
fn generate(len: usize, mut to: impl Write + Send + 'static) -> JoinHandle<Checksum> {
    thread::spawn(move || {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut sum = Checksum::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            for word in chunk[..n].chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
            }
            sum.update(&chunk[..n]);
            to.write_all(&chunk[..n]).expect("write generated data");
            left -= n;
        }
        sum
    })
}

/// Reads `from` to end of file on a thread; returns the checksum of what came.
fn checksum_reader(mut from: impl Read + Send + 'static) -> JoinHandle<Checksum> {
    thread::spawn(move || {
        let mut sum = Checksum::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut chunk) {
                Ok(0) => return sum,
                Ok(n) => sum.update(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read relayed data: {e}"),
            }
        }
    })
}

/// `cat` as the container with its stdin fed `len` generated bytes by a thread (not through the
/// relay); returns the child and the generator's checksum.
fn spawn_generating_cat(len: usize, container: ContainerStdio) -> (Child, JoinHandle<Checksum>) {
    let (feed, generator_end) = io::pipe().expect("pipe");
    drop(container.stdin);
    let child = Command::new("cat")
        .stdin(Stdio::from(feed))
        .stdout(Stdio::from(container.stdout))
        .stderr(Stdio::from(container.stderr))
        .spawn()
        .expect("spawn cat");
    (child, generate(len, generator_end))
}

fn is_nonblocking(fd: &impl AsFd) -> bool {
    crate::fdio::status_flags(fd.as_fd())
        .expect("F_GETFL")
        .contains(OFlag::O_NONBLOCK)
}

fn is_cloexec(fd: &impl AsFd) -> bool {
    FdFlag::from_bits_retain(fcntl(fd.as_fd(), FcntlArg::F_GETFD).expect("F_GETFD"))
        .contains(FdFlag::FD_CLOEXEC)
}

#[test]
fn pipes_are_cloexec_and_only_the_relay_ends_non_blocking() {
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    for fd in [&container.stdin, &container.stdout, &container.stderr] {
        assert!(is_cloexec(fd));
        assert!(!is_nonblocking(fd), "a container end is non-blocking");
    }
    for fd in [&ends.stdin, &ends.stdout, &ends.stderr] {
        assert!(is_cloexec(fd));
        assert!(is_nonblocking(fd), "a relay end is blocking");
    }
}

#[test]
fn sixty_four_mib_through_stdout_arrive_complete() {
    const LEN: usize = 64 * 1024 * 1024;
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let (child, generated) = spawn_generating_cat(LEN, container);
    let (exited, waiter) = exit_notifier(child);
    let (out_r, out_w) = io::pipe().expect("pipe");
    let received = checksum_reader(out_r);
    let (err_w, err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: out_w.into(),
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    let generated = generated.join().expect("generator");
    let received = received.join().expect("reader");
    assert_eq!(generated.bytes, LEN as u64);
    assert_eq!(received, generated, "stdout differs from what was written");
    assert_eq!(report.stdout_bytes, LEN as u64);
    assert_eq!(report.stderr_bytes, 0);
    assert!(!report.drain_timed_out);
    assert!(err.join().expect("stderr").is_empty());
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn stdout_and_stderr_are_kept_apart() {
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = spawn_sh(
        "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3",
        container,
    );
    let (exited, waiter) = exit_notifier(child);
    let (out_w, out) = collected_pipe();
    let (err_w, err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: out_w,
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    assert_eq!(text(out.join().expect("stdout")), "out1\nout2\n");
    assert_eq!(text(err.join().expect("stderr")), "err1\nerr2\n");
    assert_eq!((report.stdout_bytes, report.stderr_bytes), (10, 10));
    assert_eq!(waiter.join().expect("waiter").0.code(), Some(3));
}

#[test]
fn stdin_eof_closes_the_container_stdin() {
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = spawn_sh("cat; echo cat ended >&2", container);
    let (exited, waiter) = exit_notifier(child);
    let (out_w, out) = collected_pipe();
    let (err_w, err) = collected_pipe();
    let caller = CallerFds {
        stdin: input_pipe(b"hello\nworld\n"),
        stdout: out_w,
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    assert_eq!(report.stdin_bytes, 12);
    assert!(!report.drain_timed_out);
    assert_eq!(text(out.join().expect("stdout")), "hello\nworld\n");
    assert_eq!(text(err.join().expect("stderr")), "cat ended\n");
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn piped_commands_reach_a_shell_and_it_ends() {
    // `printf 'echo foo\n' | ocirun run ... sh`
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = Command::new("sh")
        .stdin(Stdio::from(container.stdin))
        .stdout(Stdio::from(container.stdout))
        .stderr(Stdio::from(container.stderr))
        .spawn()
        .expect("spawn sh");
    let (exited, waiter) = exit_notifier(child);
    let (out_w, out) = collected_pipe();
    let (err_w, err) = collected_pipe();
    let caller = CallerFds {
        stdin: input_pipe(b"echo foo\n"),
        stdout: out_w,
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    report.expect("relay");
    assert_eq!(text(out.join().expect("stdout")), "foo\n");
    assert!(err.join().expect("stderr").is_empty());
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn hundred_thousand_lines_go_in_and_come_back_in_order() {
    const LINES: usize = 100_000;
    let expected: String = (0..LINES).map(|i| format!("line {i}\n")).collect();
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = Command::new("cat")
        .stdin(Stdio::from(container.stdin))
        .stdout(Stdio::from(container.stdout))
        .stderr(Stdio::from(container.stderr))
        .spawn()
        .expect("spawn cat");
    let (exited, waiter) = exit_notifier(child);
    let (in_r, mut in_w) = io::pipe().expect("pipe");
    let feeder = thread::spawn(move || {
        for i in 0..LINES {
            writeln!(in_w, "line {i}").expect("write a line to the caller's stdin");
        }
    });
    let (out_w, out) = collected_pipe();
    let (err_w, err) = collected_pipe();
    let caller = CallerFds {
        stdin: in_r.into(),
        stdout: out_w,
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    feeder.join().expect("feeder");
    let out = text(out.join().expect("stdout"));
    assert_eq!(out.len(), expected.len());
    assert!(out == expected, "lines lost or reordered");
    assert_eq!(report.stdin_bytes, expected.len() as u64);
    assert_eq!(report.stdout_bytes, expected.len() as u64);
    assert!(err.join().expect("stderr").is_empty());
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn a_slow_stdout_reader_does_not_hold_up_stderr() {
    // More than the container's pipe, the relay's buffer and the caller's pipe hold together
    // (1 MiB pipes: see stdio_pipes and the caller's pipe growth).
    const STDOUT_LEN: usize = 8 * 1024 * 1024;
    const LATE: &[u8] = b"late stderr\n";
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    drop(container.stdin);
    let mut container_stdout = File::from(container.stdout);
    let stdout_writer = thread::spawn(move || {
        container_stdout
            .write_all(&vec![b'o'; STDOUT_LEN])
            .expect("write the container's stdout");
    });
    let mut container_stderr = File::from(container.stderr);
    // Nobody reads the caller's stdout until stderr came through.
    let (out_r, out_w) = io::pipe().expect("pipe");
    let (err_r, err_w) = io::pipe().expect("pipe");
    let (got_stderr, stderr_arrived) = mpsc::channel();
    thread::spawn(move || {
        let mut err_r = err_r;
        let mut late = vec![0; LATE.len()];
        err_r
            .read_exact(&mut late)
            .expect("read the caller's stderr");
        let _ = got_stderr.send(late);
    });
    let (exited, _alive) = never_exits();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: out_w.into(),
        stderr: err_w.into(),
    };
    let relay_thread = thread::spawn(move || {
        run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT)
    });

    // The container's stdout is stuck: its pipe, the relay's buffer and the caller's pipe full.
    thread::sleep(Duration::from_millis(300));
    assert!(!stdout_writer.is_finished(), "8 MiB did not fill the pipes");
    // The slow reader takes one page: the caller's pipe becomes writable again, but only for
    // 4 KiB. A relay that wrote its whole buffer in blocking mode would now be stuck.
    let mut out_r = out_r;
    let mut first_page = vec![0; 4096];
    out_r
        .read_exact(&mut first_page)
        .expect("read the caller's stdout");
    thread::sleep(Duration::from_millis(200));
    container_stderr
        .write_all(LATE)
        .expect("write the container's stderr");
    drop(container_stderr);
    let late = stderr_arrived
        .recv_timeout(Duration::from_secs(20))
        .expect("stderr was held up behind the unread stdout");
    assert_eq!(late, LATE);

    let stdout = checksum_reader(out_r);
    let (report, caller) = relay_thread.join().expect("relay thread");
    drop(caller);
    let report = report.expect("relay");
    stdout_writer.join().expect("stdout writer");
    let rest = stdout.join().expect("stdout").bytes;
    assert_eq!(first_page.len() as u64 + rest, STDOUT_LEN as u64);
    assert_eq!(report.stdout_bytes, STDOUT_LEN as u64);
    assert_eq!(report.stderr_bytes, LATE.len() as u64);
}

/// Kills the process whose pid the test's container printed (its left-behind grandchild).
fn kill(pid: &str) {
    let status = Command::new("kill").arg(pid).status().expect("run kill");
    assert!(status.success(), "kill {pid} failed");
}

#[test]
fn a_grandchild_holding_stdout_does_not_hang_the_relay() {
    let options = RelayOptions::default();
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = spawn_sh("sleep 30 & echo $!", container);
    let (exited, waiter) = exit_notifier(child);
    let (out_w, out) = collected_pipe();
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: out_w,
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, options.clone(), RELAY_LIMIT);
    let returned_at = Instant::now();
    drop(caller);

    let report = report.expect("relay");
    let (status, exited_at) = waiter.join().expect("waiter");
    let grandchild = text(out.join().expect("stdout"));
    kill(grandchild.trim());
    assert!(status.success());
    assert!(report.drain_timed_out);
    let drained = returned_at - exited_at;
    assert!(
        drained >= options.drain_timeout,
        "returned {drained:?} after the exit"
    );
    assert!(
        drained < options.drain_timeout + Duration::from_secs(5),
        "returned {drained:?} after the exit"
    );
    assert_eq!(report.stdout_bytes, grandchild.len() as u64);
}

#[test]
fn the_drain_goes_on_while_data_still_arrives() {
    let options = RelayOptions {
        drain_timeout: Duration::from_secs(1),
        ..RelayOptions::default()
    };
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    // The container's init exits at once; what it left behind writes for about half a second
    // more, in steps shorter than the drain timeout, then holds the pipe.
    let child = spawn_sh(
        "(for i in 1 2 3 4 5; do sleep 0.1; echo $i; done; exec sleep 30) & echo $!",
        container,
    );
    let (exited, waiter) = exit_notifier(child);
    let (out_w, out) = collected_pipe();
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: out_w,
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, options, RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    assert!(waiter.join().expect("waiter").0.success());
    let out = text(out.join().expect("stdout"));
    let (pid, rest) = out.split_once('\n').expect("a pid line");
    kill(pid);
    assert_eq!(rest, "1\n2\n3\n4\n5\n");
    assert!(report.drain_timed_out);
}

/// Relays `cat` with the caller's stdin in the given mode; checks that the mode stays.
fn caller_stdin_mode_is_kept(nonblocking: bool) {
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = Command::new("cat")
        .stdin(Stdio::from(container.stdin))
        .stdout(Stdio::from(container.stdout))
        .stderr(Stdio::from(container.stderr))
        .spawn()
        .expect("spawn cat");
    let (exited, waiter) = exit_notifier(child);
    let (in_r, mut in_w) = io::pipe().expect("pipe");
    if nonblocking {
        crate::fdio::set_nonblocking(in_r.as_fd()).expect("make the test's stdin non-blocking");
    }
    let feeder = thread::spawn(move || {
        for i in 0..20 {
            writeln!(in_w, "chunk {i}").expect("write the caller's stdin");
            thread::sleep(Duration::from_millis(5));
        }
    });
    let (out_w, out) = collected_pipe();
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: in_r.into(),
        stdout: out_w,
        stderr: err_w,
    };
    let stdout_was_nonblocking = is_nonblocking(&caller.stdout);

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);

    report.expect("relay");
    assert_eq!(is_nonblocking(&caller.stdin), nonblocking);
    assert_eq!(is_nonblocking(&caller.stdout), stdout_was_nonblocking);
    drop(caller);
    feeder.join().expect("feeder");
    let expected: String = (0..20).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(text(out.join().expect("stdout")), expected);
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn a_blocking_caller_stdin_stays_blocking() {
    caller_stdin_mode_is_kept(false);
}

#[test]
fn a_non_blocking_caller_stdin_stays_non_blocking() {
    caller_stdin_mode_is_kept(true);
}

#[test]
fn discard_stdout_reads_and_drops_the_container_stdout() {
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = spawn_sh("head -c 1048576 /dev/zero; echo err >&2", container);
    let (exited, waiter) = exit_notifier(child);
    let (out_w, out) = collected_pipe();
    let (err_w, err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: out_w,
        stderr: err_w,
    };
    let options = RelayOptions {
        discard_stdout: true,
        ..RelayOptions::default()
    };

    let (report, caller) = run_relay(ends, caller, exited, options, RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    assert_eq!(report.stdout_bytes, 0);
    assert!(!report.drain_timed_out);
    assert!(out.join().expect("stdout").is_empty());
    assert_eq!(text(err.join().expect("stderr")), "err\n");
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn a_caller_stdout_without_reader_is_not_an_error() {
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = spawn_sh("head -c 1048576 /dev/zero; echo err >&2", container);
    let (exited, waiter) = exit_notifier(child);
    let (out_r, out_w) = io::pipe().expect("pipe");
    drop(out_r);
    let (err_w, err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: out_w.into(),
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    assert_eq!(report.stdout_bytes, 0);
    assert_eq!(text(err.join().expect("stderr")), "err\n");
    // `head` wrote all of it: the relay kept draining the pipe.
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn a_caller_stdout_reader_leaving_midway_is_not_an_error() {
    const PART: usize = 100 * 1024;
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = spawn_sh("head -c 8388608 /dev/zero; echo err >&2", container);
    let (exited, waiter) = exit_notifier(child);
    let (mut out_r, out_w) = io::pipe().expect("pipe");
    let partial_reader = thread::spawn(move || {
        let mut part = vec![0; PART];
        out_r.read_exact(&mut part).expect("read part of stdout");
        // Dropping the read end: the relay's next write gets EPIPE.
    });
    let (err_w, err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: out_w.into(),
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    partial_reader.join().expect("reader");
    assert!(report.stdout_bytes >= PART as u64);
    assert!(report.stdout_bytes < 8 * 1024 * 1024);
    assert_eq!(text(err.join().expect("stderr")), "err\n");
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn a_container_closing_its_stdin_is_not_an_error() {
    // More than the caller's and the container's 1 MiB pipes hold.
    const INPUT_LEN: usize = 8 * 1024 * 1024;
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = spawn_sh("exec 0<&-; sleep 0.2; echo done", container);
    let (exited, waiter) = exit_notifier(child);
    let (in_r, mut in_w) = io::pipe().expect("pipe");
    // Ends with EPIPE once the relay stopped reading and the test closed the read end.
    let feeder = thread::spawn(move || in_w.write_all(&vec![b'i'; INPUT_LEN]));
    let (out_w, out) = collected_pipe();
    let (err_w, err) = collected_pipe();
    let caller = CallerFds {
        stdin: in_r.into(),
        stdout: out_w,
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    assert!(report.stdin_bytes < INPUT_LEN as u64);
    assert_eq!(text(out.join().expect("stdout")), "done\n");
    assert!(err.join().expect("stderr").is_empty());
    assert!(feeder.join().expect("feeder").is_err());
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn an_unreadable_caller_stdin_counts_as_end_of_file() {
    // The write end of a pipe without reader: poll(2) reports POLLERR, not POLLIN.
    let (in_r, in_w) = io::pipe().expect("pipe");
    drop(in_r);
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = spawn_sh("cat; echo end", container);
    let (exited, waiter) = exit_notifier(child);
    let (out_w, out) = collected_pipe();
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: in_w.into(),
        stdout: out_w,
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    assert_eq!(report.expect("relay").stdin_bytes, 0);
    assert_eq!(text(out.join().expect("stdout")), "end\n");
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn output_to_a_regular_file_arrives_complete() {
    const LEN: usize = 4 * 1024 * 1024;
    let file = tempfile::tempfile().expect("temporary file");
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let (child, generated) = spawn_generating_cat(LEN, container);
    let (exited, waiter) = exit_notifier(child);
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: file.try_clone().expect("dup the file").into(),
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    assert_eq!(report.expect("relay").stdout_bytes, LEN as u64);
    let generated = generated.join().expect("generator");
    let mut file = file;
    std::io::Seek::rewind(&mut file).expect("rewind");
    let received = checksum_reader(file).join().expect("reader");
    assert_eq!(received, generated);
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn output_to_a_socket_arrives_complete() {
    const LEN: usize = 4 * 1024 * 1024;
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    let received = checksum_reader(theirs);
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let (child, generated) = spawn_generating_cat(LEN, container);
    let (exited, waiter) = exit_notifier(child);
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: ours.into(),
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    assert_eq!(report.expect("relay").stdout_bytes, LEN as u64);
    assert_eq!(
        received.join().expect("reader"),
        generated.join().expect("generator")
    );
    assert!(waiter.join().expect("waiter").0.success());
}

/// Relays `echo out` into a file opened read-only as the caller's stdout: writing it fails
/// with EBADF. Returns the error.
fn relay_into_a_read_only_file(allow_splice: bool) -> RelayError {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    let read_only = File::open(file.path()).expect("open read-only");
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = spawn_sh("echo out", container);
    let (exited, waiter) = exit_notifier(child);
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: read_only.into(),
        stderr: err_w,
    };

    let (report, _caller) = run_relay_with(
        ends,
        caller,
        exited,
        RelayOptions::default(),
        RELAY_LIMIT,
        allow_splice,
    );

    assert!(waiter.join().expect("waiter").0.success());
    report.expect_err("writing a read-only file succeeded")
}

#[test]
fn a_write_error_names_the_stream_and_errno() {
    let error = relay_into_a_read_only_file(false);
    assert!(matches!(
        error,
        RelayError::Write {
            stream: Stream::CallerStdout,
            source: Errno::EBADF
        }
    ));
    assert_eq!(error.to_string(), "cannot write to the caller's stdout");
    let source = std::error::Error::source(&error).expect("errno as source");
    assert_eq!(source.to_string(), Errno::EBADF.to_string());
}

#[test]
fn a_splice_error_names_both_streams_and_errno() {
    let error = relay_into_a_read_only_file(true);
    assert!(matches!(
        error,
        RelayError::Transfer {
            from: Stream::ContainerStdout,
            to: Stream::CallerStdout,
            source: Errno::EBADF
        }
    ));
    assert_eq!(
        error.to_string(),
        "cannot move bytes from the container's stdout to the caller's stdout"
    );
    let source = std::error::Error::source(&error).expect("errno as source");
    assert_eq!(source.to_string(), Errno::EBADF.to_string());
}

#[test]
fn the_caller_stdout_of_a_pipe_is_written_through_its_own_description() {
    let (_out_r, out_w) = io::pipe().expect("pipe");
    let sink = Sink::caller(out_w.as_fd(), Stream::CallerStdout).expect("sink");
    assert_eq!(sink.mode, WriteMode::NonBlocking);
    assert_ne!(sink.fd.as_raw_fd(), out_w.as_raw_fd());
    assert!(is_nonblocking(&sink.fd));
    assert!(
        !is_nonblocking(&out_w),
        "the caller's pipe became non-blocking"
    );
}

#[test]
fn data_still_in_a_hung_up_pipe_is_read_out() {
    const LEN: usize = 1024 * 1024;
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    drop(container.stdin);
    // A 1 MiB pipe holds the whole output, so the container's side is closed (POLLHUP) long
    // before the relay has read it all in 64 KiB steps.
    let pipe_size = fcntl(
        container.stdout.as_fd(),
        FcntlArg::F_SETPIPE_SZ(LEN as libc::c_int),
    )
    .expect("F_SETPIPE_SZ: /proc/sys/fs/pipe-max-size below 1 MiB?");
    assert!(pipe_size as usize >= LEN);
    let mut container_stdout = File::from(container.stdout);
    let (generated_r, generated_w) = io::pipe().expect("pipe");
    let generated = generate(LEN, generated_w);
    let mut generated_r = generated_r;
    let mut data = Vec::with_capacity(LEN);
    generated_r
        .read_to_end(&mut data)
        .expect("read generated data");
    container_stdout
        .write_all(&data)
        .expect("fill the container's stdout");
    drop(container_stdout);
    drop(container.stderr);
    // The container is gone before the relay starts.
    let (exited, exit_writer) = io::pipe().expect("pipe");
    drop(exit_writer);
    let (out_r, out_w) = io::pipe().expect("pipe");
    let received = checksum_reader(out_r);
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: out_w.into(),
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    assert!(!report.drain_timed_out);
    assert_eq!(report.stdout_bytes, LEN as u64);
    assert_eq!(
        received.join().expect("reader"),
        generated.join().expect("generator")
    );
}

#[test]
fn splice_is_chosen_between_pipes_and_files_and_read_write_elsewhere() {
    let spliced = |stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd| -> Vec<bool> {
        let (_container, ends) = stdio_pipes().expect("stdio pipes");
        let caller = CallerStdio {
            stdin: stdin.as_fd(),
            stdout: stdout.as_fd(),
            stderr: stderr.as_fd(),
        };
        pipe_flows(ends, caller, &RelayOptions::default(), true)
            .expect("flows")
            .iter()
            .map(|f| f.is_spliced())
            .collect()
    };
    let pipe_r = || -> OwnedFd { io::pipe().expect("pipe").0.into() };
    let pipe_w = || -> OwnedFd {
        let (r, w) = io::pipe().expect("pipe");
        std::mem::forget(r); // keep a reader, or the reopen through /proc fails with ENXIO
        w.into()
    };
    let file = || -> OwnedFd { tempfile::tempfile().expect("temporary file").into() };
    let socket = || -> OwnedFd { UnixStream::pair().expect("socket pair").0.into() };

    assert_eq!(spliced(pipe_r(), pipe_w(), pipe_w()), [true, true, true]);
    assert_eq!(spliced(file(), file(), file()), [true, true, true]);
    assert_eq!(
        spliced(dev_null(), socket(), pipe_w()),
        [false, false, true]
    );
    assert_eq!(spliced(socket(), pipe_w(), socket()), [false, true, false]);
    let null_out: OwnedFd = File::options()
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null")
        .into();
    assert_eq!(spliced(pipe_r(), null_out, pipe_w()), [true, false, true]);
}

#[test]
fn output_to_an_append_mode_file_falls_back_to_write_and_arrives_complete() {
    // splice(2) refuses O_APPEND files with EINVAL: the relay must switch to write(2).
    const LEN: usize = 4 * 1024 * 1024;
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("log");
    std::fs::write(&path, b"before\n").expect("write the log");
    let appending = File::options()
        .append(true)
        .open(&path)
        .expect("open for appending");
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let (child, generated) = spawn_generating_cat(LEN, container);
    let (exited, waiter) = exit_notifier(child);
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: dev_null(),
        stdout: appending.into(),
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    assert_eq!(report.expect("relay").stdout_bytes, LEN as u64);
    let written = std::fs::read(&path).expect("read the log");
    assert_eq!(&written[..7], b"before\n");
    let mut received = Checksum::new();
    received.update(&written[7..]);
    assert_eq!(received, generated.join().expect("generator"));
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn stdin_from_a_regular_file_is_spliced_in_complete_and_its_offset_moves_to_the_end() {
    const LEN: usize = 4 * 1024 * 1024;
    let mut file = tempfile::tempfile().expect("temporary file");
    let (gen_r, gen_w) = io::pipe().expect("pipe");
    let generated = generate(LEN, gen_w);
    io::copy(&mut { gen_r }, &mut file).expect("fill the file");
    let generated = generated.join().expect("generator");
    std::io::Seek::rewind(&mut file).expect("rewind");
    let offset_probe = file.try_clone().expect("dup the file");
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = Command::new("cat")
        .stdin(Stdio::from(container.stdin))
        .stdout(Stdio::from(container.stdout))
        .stderr(Stdio::from(container.stderr))
        .spawn()
        .expect("spawn cat");
    let (exited, waiter) = exit_notifier(child);
    let (out_r, out_w) = io::pipe().expect("pipe");
    let received = checksum_reader(out_r);
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: file.into(),
        stdout: out_w.into(),
        stderr: err_w,
    };

    let (report, caller) = run_relay(ends, caller, exited, RelayOptions::default(), RELAY_LIMIT);
    drop(caller);

    let report = report.expect("relay");
    assert_eq!(report.stdin_bytes, LEN as u64);
    assert_eq!(report.stdout_bytes, LEN as u64);
    assert_eq!(received.join().expect("reader"), generated);
    // The shared file offset moved as read(2) would have moved it.
    let mut probe = offset_probe;
    assert_eq!(
        std::io::Seek::stream_position(&mut probe).expect("offset"),
        LEN as u64
    );
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn one_fd_as_both_stdout_and_stderr_gets_both_streams() {
    let (container, ends) = stdio_pipes().expect("stdio pipes");
    let child = spawn_sh("echo out; sleep 0.05; echo err >&2", container);
    let (exited, waiter) = exit_notifier(child);
    let (both_w, both) = collected_pipe();
    let stdin = dev_null();
    let exited: OwnedFd = exited.into();
    let report = relay(
        ends,
        CallerStdio {
            stdin: stdin.as_fd(),
            stdout: both_w.as_fd(),
            stderr: both_w.as_fd(),
        },
        exited.as_fd(),
        &RelayOptions::default(),
    )
    .expect("relay");
    drop(both_w);
    assert_eq!(text(both.join().expect("output")), "out\nerr\n");
    assert_eq!((report.stdout_bytes, report.stderr_bytes), (4, 4));
    assert!(waiter.join().expect("waiter").0.success());
}

#[test]
fn inherited_stdio_is_the_caller_descriptions_or_a_sink() {
    let (in_r, _in_w) = io::pipe().expect("pipe");
    let (_out_r, out_w) = io::pipe().expect("pipe");
    let (_err_r, err_w) = io::pipe().expect("pipe");
    let caller = CallerStdio {
        stdin: in_r.as_fd(),
        stdout: out_w.as_fd(),
        stderr: err_w.as_fd(),
    };
    let ino = |fd: &OwnedFd| nix::sys::stat::fstat(fd).expect("fstat").st_ino;
    let same = inherit_stdio(caller, false).expect("inherit");
    for (theirs, ours) in [
        (
            &same.stdin,
            &in_r.as_fd().try_clone_to_owned().expect("dup"),
        ),
        (
            &same.stdout,
            &out_w.as_fd().try_clone_to_owned().expect("dup"),
        ),
        (
            &same.stderr,
            &err_w.as_fd().try_clone_to_owned().expect("dup"),
        ),
    ] {
        assert_eq!(ino(theirs), ino(ours));
        assert!(is_cloexec(theirs));
    }
    let quiet = inherit_stdio(caller, true).expect("inherit");
    let zero = nix::sys::stat::stat("/dev/zero").expect("stat /dev/zero");
    let out = nix::sys::stat::fstat(&quiet.stdout).expect("fstat");
    assert_eq!(out.st_rdev, zero.st_rdev);
    assert!(is_cloexec(&quiet.stdout));
    assert_eq!(ino(&quiet.stderr), ino(&same.stderr));
    // The sink takes writes and keeps nothing.
    let written = nix::unistd::write(&quiet.stdout, b"thrown away").expect("write");
    assert_eq!(written, 11);
}

#[test]
fn a_caller_dev_null_becomes_a_sink_but_for_stdin() {
    // youki reopens a stdio fd that is /dev/null read-only: the container never gets one to
    // write to.
    let null = |write: bool| {
        OwnedFd::from(
            std::fs::File::options()
                .read(!write)
                .write(write)
                .open("/dev/null")
                .expect("open /dev/null"),
        )
    };
    let (stdin, stdout, stderr) = (null(false), null(true), null(true));
    let caller = CallerStdio {
        stdin: stdin.as_fd(),
        stdout: stdout.as_fd(),
        stderr: stderr.as_fd(),
    };
    let got = inherit_stdio(caller, false).expect("inherit");
    let rdev = |fd: &OwnedFd| nix::sys::stat::fstat(fd).expect("fstat").st_rdev;
    let null_rdev = nix::sys::stat::stat("/dev/null").expect("stat").st_rdev;
    let zero_rdev = nix::sys::stat::stat("/dev/zero").expect("stat").st_rdev;
    assert_eq!(rdev(&got.stdin), null_rdev);
    assert_eq!(rdev(&got.stdout), zero_rdev);
    assert_eq!(rdev(&got.stderr), zero_rdev);
}

/// Properties: whatever the sizes of the chunks written and read, and however long each
/// writer and reader stalls between them, every byte arrives once and in order, in both
/// directions, for pipes (spliced, or through the buffer) and sockets on the caller's side.
mod properties {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// How the caller's stdio is made.
    #[derive(Debug, Clone, Copy)]
    enum CallerKind {
        /// Pipes, spliced.
        Pipes,
        /// Pipes, through the relay's buffers (splice not allowed).
        PipesBuffered,
        /// Unix stream sockets: read(2) and chunked write(2).
        Sockets,
    }

    /// One side's pace: the sizes of its writes or reads, and stalls (microseconds) taken
    /// in turn after each.
    #[derive(Debug, Clone)]
    struct Pace {
        chunks: Vec<usize>,
        stalls_us: Vec<u64>,
    }

    fn pace(max_chunk: usize) -> impl Strategy<Value = Pace> {
        (
            vec(1..=max_chunk, 1..16),
            vec(prop_oneof![3 => Just(0u64), 2 => 1u64..2_000], 1..6),
        )
            .prop_map(|(chunks, stalls_us)| Pace { chunks, stalls_us })
    }

    impl Pace {
        fn stall(&self, i: usize) {
            let us = self.stalls_us[i % self.stalls_us.len()];
            if us > 0 {
                thread::sleep(Duration::from_micros(us));
            }
        }
    }

    /// Deterministic bytes for one stream.
    fn data(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    /// Writes `bytes` to `to` in the pace's chunk sizes (cycled), stalling between; returns
    /// `to` unclosed.
    fn paced_writer<W: Write + Send + 'static>(
        mut to: W,
        bytes: Vec<u8>,
        pace: Pace,
    ) -> JoinHandle<W> {
        thread::spawn(move || {
            let mut rest = &bytes[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = pace.chunks[i % pace.chunks.len()].min(rest.len());
                to.write_all(&rest[..n]).expect("paced write");
                rest = &rest[n..];
                pace.stall(i);
                i += 1;
            }
            to
        })
    }

    /// Reads `from` to end of file in the pace's chunk sizes, stalling between.
    fn paced_reader<R: Read + Send + 'static>(mut from: R, pace: Pace) -> JoinHandle<Vec<u8>> {
        thread::spawn(move || {
            let mut got = Vec::new();
            let mut chunk = vec![0u8; pace.chunks.iter().copied().max().unwrap_or(1)];
            let mut i = 0;
            loop {
                let want = pace.chunks[i % pace.chunks.len()];
                match from.read(&mut chunk[..want]) {
                    Ok(0) => return got,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => panic!("paced read: {e}"),
                }
                pace.stall(i);
                i += 1;
            }
        })
    }

    /// The caller's end of one stream (given to the relay) and the test's end.
    fn caller_pair(kind: CallerKind, input: bool) -> (OwnedFd, OwnedFd) {
        match kind {
            CallerKind::Pipes | CallerKind::PipesBuffered => {
                let (r, w) = io::pipe().expect("pipe");
                if input {
                    (r.into(), w.into())
                } else {
                    (w.into(), r.into())
                }
            }
            CallerKind::Sockets => {
                let (a, b) = UnixStream::pair().expect("socket pair");
                (a.into(), b.into())
            }
        }
    }

    #[derive(Debug, Clone)]
    struct Case {
        kind: CallerKind,
        lens: [usize; 3],
        writers: [Pace; 3],
        readers: [Pace; 3],
    }

    fn case() -> impl Strategy<Value = Case> {
        let kind = prop_oneof![
            Just(CallerKind::Pipes),
            Just(CallerKind::PipesBuffered),
            Just(CallerKind::Sockets)
        ];
        let len = prop_oneof![1 => Just(0usize), 6 => 1usize..400_000];
        (
            kind,
            [len.clone(), len.clone(), len],
            [pace(70_000), pace(70_000), pace(70_000)],
            [pace(70_000), pace(70_000), pace(70_000)],
        )
            .prop_map(|(kind, lens, writers, readers)| Case {
                kind,
                lens,
                writers,
                readers,
            })
    }

    /// Runs one relay of the case; returns what arrived on stdin, stdout and stderr and the
    /// report.
    fn run_case(case: &Case) -> ([Vec<u8>; 3], [Vec<u8>; 3], RelayReport) {
        let sent = [
            data(case.lens[0], 1),
            data(case.lens[1], 2),
            data(case.lens[2], 3),
        ];
        let (container, ends) = stdio_pipes().expect("stdio pipes");

        // The container: reads its stdin to the end, writes its stdout and stderr, and only
        // then closes them and "exits", so the relay has delivered all input before it ends.
        let stdin_reader = paced_reader(File::from(container.stdin), case.readers[0].clone());
        let stdout_writer = paced_writer(
            File::from(container.stdout),
            sent[1].clone(),
            case.writers[1].clone(),
        );
        let stderr_writer = paced_writer(
            File::from(container.stderr),
            sent[2].clone(),
            case.writers[2].clone(),
        );
        let (exited, exit_writer) = io::pipe().expect("pipe");
        let container_done = thread::spawn(move || {
            let got = stdin_reader.join().expect("container stdin reader");
            let out = stdout_writer.join().expect("container stdout writer");
            let err = stderr_writer.join().expect("container stderr writer");
            drop((out, err));
            drop(exit_writer);
            got
        });

        // The caller.
        let (stdin, stdin_test) = caller_pair(case.kind, true);
        let (stdout, stdout_test) = caller_pair(case.kind, false);
        let (stderr, stderr_test) = caller_pair(case.kind, false);
        let stdin_writer = paced_writer(
            File::from(stdin_test),
            sent[0].clone(),
            case.writers[0].clone(),
        );
        let stdin_closer = thread::spawn(move || drop(stdin_writer.join().expect("stdin writer")));
        let stdout_reader = paced_reader(File::from(stdout_test), case.readers[1].clone());
        let stderr_reader = paced_reader(File::from(stderr_test), case.readers[2].clone());
        let caller = CallerFds {
            stdin,
            stdout,
            stderr,
        };
        let allow_splice = !matches!(case.kind, CallerKind::PipesBuffered);
        let (report, caller) = run_relay_with(
            ends,
            caller,
            exited,
            RelayOptions::default(),
            RELAY_LIMIT,
            allow_splice,
        );
        drop(caller);
        stdin_closer.join().expect("stdin closer");
        let received = [
            container_done.join().expect("container"),
            stdout_reader.join().expect("stdout reader"),
            stderr_reader.join().expect("stderr reader"),
        ];
        (sent, received, report.expect("relay"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn every_byte_arrives_once_and_in_order(case in case()) {
            let (sent, received, report) = run_case(&case);
            for (i, name) in ["stdin", "stdout", "stderr"].into_iter().enumerate() {
                prop_assert_eq!(received[i].len(), sent[i].len(), "{} length", name);
                prop_assert!(received[i] == sent[i], "{} bytes differ", name);
            }
            prop_assert_eq!(report.stdin_bytes, sent[0].len() as u64);
            prop_assert_eq!(report.stdout_bytes, sent[1].len() as u64);
            prop_assert_eq!(report.stderr_bytes, sent[2].len() as u64);
            prop_assert!(!report.drain_timed_out);
        }
    }
}
