//! Terminal-mode tests with real pseudo-terminals: one pair stands in for the container's
//! terminal (its slave held by a thread playing the container), another, where a test needs
//! it, for the caller's terminal.

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::thread::JoinHandleExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;
use nix::sys::termios::{tcgetattr, LocalFlags, OutputFlags};

use super::*;

/// Longest any relay in these tests may take before the test fails instead of hanging.
const RELAY_LIMIT: Duration = Duration::from_secs(30);

/// A new pseudo-terminal: (master, slave), both close-on-exec, neither our controlling
/// terminal.
fn open_pty() -> (OwnedFd, OwnedFd) {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .expect("posix_openpt");
    nix::pty::grantpt(&master).expect("grantpt");
    nix::pty::unlockpt(&master).expect("unlockpt");
    let name = nix::pty::ptsname_r(&master).expect("ptsname_r");
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .expect("open the pty slave");
    (master.into(), slave)
}

fn is_cloexec(fd: &impl AsFd) -> bool {
    FdFlag::from_bits_retain(fcntl(fd.as_fd(), FcntlArg::F_GETFD).expect("F_GETFD"))
        .contains(FdFlag::FD_CLOEXEC)
}

fn size(rows: u16, cols: u16) -> WindowSize {
    WindowSize {
        rows,
        cols,
        ..WindowSize::default()
    }
}

/// Sends `data` and `fds` in one message over `stream`, as runc does.
fn send_fds(stream: &UnixStream, data: &[u8], fds: &[i32]) {
    let iov = [IoSlice::new(data)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(stream.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None).expect("sendmsg");
}

#[test]
fn the_console_socket_hands_over_the_master_as_an_owned_cloexec_terminal() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("console.sock");
    let socket = ConsoleSocket::bind(&path).expect("bind");
    assert_eq!(socket.path(), path);
    let meta = std::fs::metadata(&path).expect("stat the socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);

    let (master, slave) = open_pty();
    let client_path = path.clone();
    let runtime = thread::spawn(move || {
        let stream = UnixStream::connect(&client_path).expect("connect");
        send_fds(&stream, b"/dev/ptmx", &[master.as_raw_fd()]);
        // The runtime closes its copy, as runc does once it sent it.
    });
    let received = socket.receive(Duration::from_secs(10)).expect("receive");
    runtime.join().expect("runtime thread");

    assert!(nix::unistd::isatty(received.as_fd()).expect("isatty"));
    assert!(
        is_cloexec(&received),
        "the received master is not close-on-exec"
    );
    assert!(!path.exists(), "the socket file is left after receive");
    // It is the master of `slave`: what the container writes comes out of it.
    File::from(slave.try_clone().expect("dup"))
        .write_all(b"x")
        .expect("write the slave");
    let mut byte = [0u8; 1];
    File::from(OwnedFd::from(received))
        .read_exact(&mut byte)
        .expect("read the master");
    assert_eq!(&byte, b"x");
}

#[test]
fn a_socket_path_longer_than_sun_path_is_bound_through_proc() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let deep = dir.path().join("d".repeat(100));
    std::fs::create_dir(&deep).expect("mkdir");
    let path = deep.join("console.sock");
    assert!(path.as_os_str().len() > 108);
    let socket = ConsoleSocket::bind(&path).expect("bind a long path");
    assert!(std::fs::metadata(&path)
        .expect("stat")
        .file_type()
        .is_socket());

    let (master, _slave) = open_pty();
    let parent = File::open(&deep).expect("open the directory");
    let short = format!("/proc/self/fd/{}/console.sock", parent.as_raw_fd());
    let runtime = thread::spawn(move || {
        let stream = UnixStream::connect(&short).expect("connect");
        send_fds(&stream, b"/dev/ptmx", &[master.as_raw_fd()]);
        drop(parent);
    });
    let received = socket.receive(Duration::from_secs(10)).expect("receive");
    runtime.join().expect("runtime thread");
    assert!(nix::unistd::isatty(received.as_fd()).expect("isatty"));
    assert!(!path.exists());
}

#[test]
fn receive_gives_up_when_nobody_connects() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("console.sock");
    let socket = ConsoleSocket::bind(&path).expect("bind");
    let started = Instant::now();
    let error = socket
        .receive(Duration::from_millis(200))
        .expect_err("received a terminal from nobody");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(matches!(error, RelayError::ConsoleTimeout { .. }));
    assert_eq!(
        error.to_string(),
        format!("the runtime sent no terminal over the console socket {path:?} within 200ms")
    );
    assert!(!path.exists());
}

#[test]
fn a_message_without_a_file_descriptor_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("console.sock");
    let socket = ConsoleSocket::bind(&path).expect("bind");
    let stream = UnixStream::connect(&path).expect("connect");
    send_fds(&stream, b"/dev/ptmx", &[]);
    let error = socket
        .receive(Duration::from_secs(10))
        .expect_err("no fd was sent");
    assert!(matches!(error, RelayError::NoTerminalReceived { .. }));
    assert_eq!(
        error.to_string(),
        format!("the runtime sent no file descriptor over the console socket {path:?}")
    );
}

#[test]
fn a_file_descriptor_that_is_not_a_terminal_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("console.sock");
    let socket = ConsoleSocket::bind(&path).expect("bind");
    let stream = UnixStream::connect(&path).expect("connect");
    let (pipe_r, _pipe_w) = io::pipe().expect("pipe");
    send_fds(&stream, b"/dev/ptmx", &[pipe_r.as_raw_fd()]);
    let error = socket
        .receive(Duration::from_secs(10))
        .expect_err("a pipe is not a terminal");
    assert!(matches!(error, RelayError::NotATerminal { .. }));
    assert_eq!(
        error.to_string(),
        format!("the file descriptor received over the console socket {path:?} is not a terminal")
    );
}

#[test]
fn binding_over_an_existing_path_fails_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("console.sock");
    std::fs::write(&path, "").expect("create a file");
    let error = ConsoleSocket::bind(&path).expect_err("bound over a file");
    assert_eq!(
        error.to_string(),
        format!("cannot listen on the console socket {path:?}")
    );
    assert!(path.exists(), "the existing file was removed");
}

#[test]
fn raw_mode_is_set_and_the_settings_come_back_on_drop_restore_and_panic() {
    let (_master, slave) = open_pty();
    let before = tcgetattr(&slave).expect("tcgetattr");
    assert!(before
        .local_flags
        .contains(LocalFlags::ICANON | LocalFlags::ECHO));

    let guard = RawMode::enable(slave.as_fd()).expect("raw mode");
    let raw = tcgetattr(&slave).expect("tcgetattr");
    assert!(!raw
        .local_flags
        .intersects(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG));
    assert!(!raw.output_flags.contains(OutputFlags::OPOST));
    drop(guard);
    assert_eq!(tcgetattr(&slave).expect("tcgetattr"), before);

    RawMode::enable(slave.as_fd())
        .expect("raw mode")
        .restore()
        .expect("restore");
    assert_eq!(tcgetattr(&slave).expect("tcgetattr"), before);

    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let _raw = RawMode::enable(slave.as_fd()).expect("raw mode");
        panic!("the relay panicked");
    }));
    assert!(panicked.is_err());
    assert_eq!(tcgetattr(&slave).expect("tcgetattr"), before);
}

#[test]
fn raw_mode_on_a_pipe_fails_with_enotty() {
    let (pipe_r, _pipe_w) = io::pipe().expect("pipe");
    let error = RawMode::enable(pipe_r.as_fd()).expect_err("a pipe has no terminal settings");
    assert!(matches!(
        error,
        RelayError::Terminal {
            stream: Stream::CallerStdin,
            source: Errno::ENOTTY,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "cannot read the terminal settings of the caller's stdin"
    );
}

#[test]
fn the_window_size_is_copied_to_the_container_terminal() {
    let (caller_master, caller_slave) = open_pty();
    let (container_master, container_slave) = open_pty();
    let master = PtyMaster::from_fd(container_master).expect("a terminal");
    let caller_master = PtyMaster::from_fd(caller_master).expect("a terminal");
    caller_master
        .set_window_size(size(40, 120))
        .expect("set the caller's size");
    let copied =
        copy_window_size(caller_slave.as_fd(), Stream::CallerStdin, master.as_fd()).expect("copy");
    assert_eq!(copied, size(40, 120));
    assert_eq!(master.window_size().expect("size"), size(40, 120));
    // The container sees it on its side.
    assert_eq!(
        window_size(container_slave.as_fd(), Stream::ContainerTerminal).expect("size"),
        size(40, 120)
    );
}

#[test]
fn the_caller_terminal_is_the_first_stdio_fd_that_is_one() {
    let (_m, tty) = open_pty();
    let (pipe_r, pipe_w) = io::pipe().expect("pipe");
    let caller = CallerStdio {
        stdin: pipe_r.as_fd(),
        stdout: tty.as_fd(),
        stderr: tty.as_fd(),
    };
    let (fd, stream) = caller_terminal(&caller).expect("stdout is a terminal");
    assert_eq!(stream, Stream::CallerStdout);
    assert_eq!(fd.as_raw_fd(), tty.as_raw_fd());
    let none = CallerStdio {
        stdin: pipe_r.as_fd(),
        stdout: pipe_w.as_fd(),
        stderr: pipe_w.as_fd(),
    };
    assert!(caller_terminal(&none).is_none());
}

#[test]
fn a_pty_master_is_required() {
    let (pipe_r, _pipe_w) = io::pipe().expect("pipe");
    let fd: OwnedFd = pipe_r.into();
    let raw = fd.as_raw_fd();
    let back = PtyMaster::from_fd(fd).expect_err("a pipe is not a terminal");
    assert_eq!(back.as_raw_fd(), raw);
}

/// The caller's side of a test relay, owned so that it can move into the relay's thread.
struct CallerFds {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Reads `from` to end of file (or `EIO`, a hung-up terminal) on a thread.
fn collect(mut from: File) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match from.read(&mut chunk) {
                Ok(0) => return bytes,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EIO) => return bytes,
                Err(e) => panic!("read: {e}"),
            }
        }
    })
}

/// A pipe already holding `input` with its write end closed; returns the read end.
fn input_pipe(input: &[u8]) -> OwnedFd {
    let (reader, mut writer) = io::pipe().expect("pipe");
    writer.write_all(input).expect("fill the input pipe");
    reader.into()
}

/// A pipe whose read end a thread collects; returns the write end.
fn collected_pipe() -> (OwnedFd, JoinHandle<Vec<u8>>) {
    let (reader, writer) = io::pipe().expect("pipe");
    (writer.into(), collect(File::from(OwnedFd::from(reader))))
}

/// The thread running a test relay; it returns the result and the caller's fds.
type RelayThread = JoinHandle<(Result<RelayReport, RelayError>, CallerFds)>;

/// Runs [`relay_terminal`] on its own thread, which blocks SIGWINCH for itself and, when
/// `resize` is set, watches it. `ready` gets the thread once it blocked the signal.
fn run_terminal_relay(
    master: PtyMaster,
    caller: CallerFds,
    exited: impl Into<OwnedFd>,
    options: RelayOptions,
    resize: bool,
) -> (RelayThread, mpsc::Receiver<()>) {
    let exited: OwnedFd = exited.into();
    let (ready_tx, ready) = mpsc::channel();
    let handle = thread::spawn(move || {
        let signal = resize.then(|| ResizeSignal::block().expect("block SIGWINCH"));
        let _ = ready_tx.send(());
        let stdio = CallerStdio {
            stdin: caller.stdin.as_fd(),
            stdout: caller.stdout.as_fd(),
            stderr: caller.stderr.as_fd(),
        };
        let report = relay_terminal(master, stdio, exited.as_fd(), signal.as_ref(), &options);
        (report, caller)
    });
    (handle, ready)
}

/// Joins the relay thread, failing the test if it takes longer than [`RELAY_LIMIT`].
fn join_relay(handle: RelayThread) -> (Result<RelayReport, RelayError>, CallerFds) {
    let deadline = Instant::now() + RELAY_LIMIT;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "relay did not return within {RELAY_LIMIT:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
    handle.join().expect("relay thread")
}

/// A "container" on the slave side: reads its terminal to end of file (canonical mode: the
/// EOF character), then says how many bytes it got and closes the slave. The returned pipe
/// becomes readable once it is done.
fn counting_container(slave: OwnedFd) -> (io::PipeReader, JoinHandle<Vec<u8>>) {
    let (exited, exit_writer) = io::pipe().expect("pipe");
    let container = thread::spawn(move || {
        let mut tty = File::from(slave);
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match tty.read(&mut chunk).expect("read the slave") {
                0 => break,
                n => got.extend_from_slice(&chunk[..n]),
            }
        }
        writeln!(tty, "got {} bytes", got.len()).expect("write the slave");
        drop(tty);
        drop(exit_writer);
        got
    });
    (exited, container)
}

fn terminal_relay_of(input: &[u8]) -> (RelayReport, Vec<u8>, Vec<u8>) {
    let (master, slave) = open_pty();
    let (exited, container) = counting_container(slave);
    let (out_w, out) = collected_pipe();
    let (err_w, err) = collected_pipe();
    let caller = CallerFds {
        stdin: input_pipe(input),
        stdout: out_w,
        stderr: err_w,
    };
    let master = PtyMaster::from_fd(master).expect("a terminal");
    let (relay, _ready) =
        run_terminal_relay(master, caller, exited, RelayOptions::default(), false);
    let (report, caller) = join_relay(relay);
    drop(caller);
    let report = report.expect("relay");
    assert!(err.join().expect("stderr").is_empty(), "stderr was written");
    (
        report,
        out.join().expect("stdout"),
        container.join().expect("container"),
    )
}

#[test]
fn input_and_output_pass_and_eof_on_stdin_ends_the_container_input() {
    let (report, out, got) = terminal_relay_of(b"hello\nworld\n");
    assert_eq!(got, b"hello\nworld\n");
    // The container terminal echoes the input (ONLCR turns \n into \r\n); the EOF character
    // is not echoed.
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        "hello\r\nworld\r\ngot 12 bytes\r\n"
    );
    assert_eq!(report.stdin_bytes, 13, "12 bytes and one EOF character");
    assert_eq!(report.stdout_bytes, 28);
    assert_eq!(report.stderr_bytes, 0);
    assert!(!report.drain_timed_out);
}

#[test]
fn a_partial_last_line_gets_two_eof_characters() {
    let (report, out, got) = terminal_relay_of(b"hi");
    assert_eq!(got, b"hi");
    assert_eq!(String::from_utf8(out).expect("utf-8"), "higot 2 bytes\r\n");
    assert_eq!(report.stdin_bytes, 4);
}

#[test]
fn empty_input_gets_one_eof_character() {
    let (report, out, got) = terminal_relay_of(b"");
    assert!(got.is_empty());
    assert_eq!(String::from_utf8(out).expect("utf-8"), "got 0 bytes\r\n");
    assert_eq!(report.stdin_bytes, 1);
}

#[test]
fn eof_chars_follow_the_container_terminal_settings() {
    let (master, slave) = open_pty();
    assert_eq!(eof_chars(master.as_fd(), None), vec![0x04]);
    assert_eq!(eof_chars(master.as_fd(), Some(b'\n')), vec![0x04]);
    assert_eq!(eof_chars(master.as_fd(), Some(b'x')), vec![0x04, 0x04]);
    let mut settings = tcgetattr(&slave).expect("tcgetattr");
    settings.control_chars[SpecialCharacterIndices::VEOF as usize] = b'z' & 0x1f;
    termios::tcsetattr(&slave, SetArg::TCSANOW, &settings).expect("tcsetattr");
    assert_eq!(eof_chars(master.as_fd(), Some(b'x')), vec![0x1a, 0x1a]);
    // Non-canonical (the program in the container reads keys itself): one.
    termios::cfmakeraw(&mut settings);
    termios::tcsetattr(&slave, SetArg::TCSANOW, &settings).expect("tcsetattr");
    assert_eq!(eof_chars(master.as_fd(), Some(b'x')).len(), 1);
}

#[test]
fn sigwinch_copies_the_caller_window_size_to_the_container_terminal() {
    let (caller_master, caller_slave) = open_pty();
    let caller_master = PtyMaster::from_fd(caller_master).expect("a terminal");
    caller_master
        .set_window_size(size(24, 80))
        .expect("set the caller's size");
    let (container_master, container_slave) = open_pty();
    let master = PtyMaster::from_fd(container_master).expect("a terminal");
    let (exited, exit_writer) = io::pipe().expect("pipe");
    let (out_w, _out) = collected_pipe();
    let caller = CallerFds {
        // The caller's terminal: stdin, the one sizes are read from.
        stdin: caller_slave.try_clone().expect("dup"),
        stdout: out_w,
        stderr: caller_slave.try_clone().expect("dup"),
    };
    let (relay, ready) = run_terminal_relay(master, caller, exited, RelayOptions::default(), true);
    ready
        .recv_timeout(RELAY_LIMIT)
        .expect("relay thread blocked SIGWINCH");
    let container_size = || window_size(container_slave.as_fd(), Stream::ContainerTerminal);

    for (rows, cols) in [(40, 120), (50, 100), (12, 34)] {
        caller_master
            .set_window_size(size(rows, cols))
            .expect("resize the caller's terminal");
        // As the kernel would for the caller's foreground process group.
        nix::sys::pthread::pthread_kill(relay.as_pthread_t(), Signal::SIGWINCH)
            .expect("pthread_kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        while container_size().expect("size") != size(rows, cols) {
            assert!(
                Instant::now() < deadline,
                "the container terminal stayed {:?}, not {rows}x{cols}",
                container_size()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    drop(container_slave);
    drop(exit_writer);
    let (report, caller) = join_relay(relay);
    drop(caller);
    assert!(!report.expect("relay").drain_timed_out);
}

#[test]
fn discard_stdout_drops_the_terminal_output() {
    let (master, slave) = open_pty();
    let (exited, container) = counting_container(slave);
    let (out_w, out) = collected_pipe();
    let (err_w, _err) = collected_pipe();
    let caller = CallerFds {
        stdin: input_pipe(b"abc\n"),
        stdout: out_w,
        stderr: err_w,
    };
    let options = RelayOptions {
        discard_stdout: true,
        ..RelayOptions::default()
    };
    let master = PtyMaster::from_fd(master).expect("a terminal");
    let (relay, _ready) = run_terminal_relay(master, caller, exited, options, false);
    let (report, caller) = join_relay(relay);
    drop(caller);
    let report = report.expect("relay");
    assert_eq!(container.join().expect("container"), b"abc\n");
    assert!(out.join().expect("stdout").is_empty());
    assert_eq!(report.stdout_bytes, 0);
}

#[test]
fn a_slave_held_after_the_exit_ends_the_relay_by_the_drain_timeout() {
    let (master, slave) = open_pty();
    let (out_w, out) = collected_pipe();
    let (err_w, _err) = collected_pipe();
    let (stdin_r, _stdin_w) = io::pipe().expect("pipe");
    let caller = CallerFds {
        stdin: stdin_r.into(),
        stdout: out_w,
        stderr: err_w,
    };
    File::from(slave.try_clone().expect("dup"))
        .write_all(b"bye\n")
        .expect("write the slave");
    // The container exited at once; something it left behind holds the slave.
    let (exited, exit_writer) = io::pipe().expect("pipe");
    drop(exit_writer);
    let options = RelayOptions::default();
    let started = Instant::now();
    let master = PtyMaster::from_fd(master).expect("a terminal");
    let (relay, _ready) = run_terminal_relay(master, caller, exited, options.clone(), false);
    let (report, caller) = join_relay(relay);
    let took = started.elapsed();
    drop(caller);
    let report = report.expect("relay");
    assert!(report.drain_timed_out);
    assert!(took >= options.drain_timeout, "{took:?}");
    assert!(
        took < options.drain_timeout + Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(out.join().expect("stdout"), b"bye\r\n");
    drop(slave);
}

#[test]
fn the_master_is_made_non_blocking_but_the_caller_fds_are_not() {
    let (master, slave) = open_pty();
    let (exited, container) = counting_container(slave);
    let (caller_master, caller_slave) = open_pty();
    let (out_w, _out) = collected_pipe();
    let (in_r, in_w) = io::pipe().expect("pipe");
    let master = PtyMaster::from_fd(master).expect("a terminal");
    let master_copy = master.as_fd().try_clone_to_owned().expect("dup");
    let caller = CallerFds {
        stdin: in_r.into(),
        stdout: out_w,
        stderr: caller_slave.try_clone().expect("dup"),
    };
    let (relay, _ready) =
        run_terminal_relay(master, caller, exited, RelayOptions::default(), false);
    drop(in_w);
    let (report, caller) = join_relay(relay);
    report.expect("relay");
    container.join().expect("container");
    let nonblocking = |fd: &OwnedFd| {
        crate::fdio::status_flags(fd.as_fd())
            .expect("F_GETFL")
            .contains(OFlag::O_NONBLOCK)
    };
    assert!(nonblocking(&master_copy));
    assert!(!nonblocking(&caller.stdin));
    assert!(!nonblocking(&caller.stdout));
    assert!(!nonblocking(&caller_slave));
    drop(caller_master);
}
