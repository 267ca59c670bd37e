//! Terminal mode (docs/ocirun-run.md "Stdio"): under a real pseudo-terminal, as a user at a
//! terminal runs it, and with `-t` from pipes.
//!
//! The terminal tests start ocirun through [`Pty::command`]: `setsid --ctty`, so ocirun leads a
//! session whose controlling terminal is the test's pseudo-terminal, and the kernel sends it
//! SIGWINCH when the test resizes that terminal.

use std::ffi::OsString;
use std::process::Child;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ocirun_e2e::pty::{wait_with_timeout, Pty};
use ocirun_e2e::{ocirun_bin, ppid_and_comm, slack, Sandbox, TIMEOUT};

/// How long the terminal may take to show what a test waits for: 20 s on the host (see
/// [`slack`]).
fn show() -> Duration {
    slack(Duration::from_secs(20))
}

/// `ocirun --runroot RUNROOT run --rootfs ROOTFS ARGS...` on the terminal.
fn spawn_on(pty: &Pty, sb: &Sandbox, args: &[&str]) -> Child {
    let mut all: Vec<OsString> = vec![
        "--runroot".into(),
        sb.runroot().into(),
        "run".into(),
        "--rootfs".into(),
        sb.rootfs().into(),
    ];
    all.extend(args.iter().map(OsString::from));
    pty.command(ocirun_bin(), &all)
        .spawn()
        .expect("cannot start setsid ocirun")
}

/// Waits for ocirun on the terminal; returns its exit code.
fn wait_code(child: &mut Child) -> i32 {
    let status = wait_with_timeout(child, slack(TIMEOUT), "ocirun on a terminal");
    status
        .code()
        .unwrap_or_else(|| panic!("ocirun was killed: {status}"))
}

/// Asserts that the terminal shows exactly `expected`, once the reader caught up with what
/// was written before the process on it exited.
#[track_caller]
fn assert_shows(pty: &Pty, expected: &str) {
    pty.wait_for(expected, show());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(pty.output_text(), expected);
}

/// Waits (up to 10 s) until the terminal is in raw mode: settings other than `cooked`.
fn wait_until_raw(pty: &Pty, cooked: &str) {
    let deadline = std::time::Instant::now() + slack(Duration::from_secs(10));
    while pty.settings() == cooked {
        assert!(
            std::time::Instant::now() < deadline,
            "ocirun did not put the terminal in raw mode"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stty_size_in_the_container_is_the_terminal_size_and_settings_come_back() {
    let sb = Sandbox::busybox();
    let pty = Pty::open(40, 120);
    let before = pty.settings();
    let mut ocirun = spawn_on(&pty, &sb, &["-t", "--", "stty", "size"]);
    assert_eq!(
        wait_code(&mut ocirun),
        0,
        "terminal: {:?}",
        pty.output_text()
    );
    assert_shows(&pty, "40 120\r\n");
    assert_eq!(pty.settings(), before, "the terminal settings changed");
    assert!(!pty.is_nonblocking());
    sb.assert_nothing_left();
}

#[test]
fn a_terminal_is_the_default_when_stdin_stdout_and_stderr_are_terminals() {
    let sb = Sandbox::busybox();
    let pty = Pty::open(24, 80);
    let before = pty.settings();
    let mut ocirun = spawn_on(&pty, &sb, &["--", "sh", "-c", "tty; stty size; echo $TERM"]);
    assert_eq!(
        wait_code(&mut ocirun),
        0,
        "terminal: {:?}",
        pty.output_text()
    );
    assert_shows(&pty, "/dev/pts/0\r\n24 80\r\nxterm\r\n");
    assert_eq!(pty.settings(), before);
    sb.assert_nothing_left();
}

#[test]
fn tty_with_t_prints_dev_pts_0() {
    let sb = Sandbox::busybox();
    let pty = Pty::open(24, 80);
    let mut ocirun = spawn_on(&pty, &sb, &["-t", "--", "tty"]);
    assert_eq!(
        wait_code(&mut ocirun),
        0,
        "terminal: {:?}",
        pty.output_text()
    );
    assert_shows(&pty, "/dev/pts/0\r\n");
    sb.assert_nothing_left();
}

#[test]
fn tty_false_on_a_terminal_gives_pipes() {
    let sb = Sandbox::busybox();
    let pty = Pty::open(24, 80);
    let before = pty.settings();
    let mut ocirun = spawn_on(&pty, &sb, &["--tty=false", "--", "tty"]);
    assert_eq!(
        wait_code(&mut ocirun),
        1,
        "terminal: {:?}",
        pty.output_text()
    );
    // The test's terminal turns \n into \r\n (its settings, not the container's).
    assert_shows(&pty, "not a tty\r\n");
    assert_eq!(pty.settings(), before);
    sb.assert_nothing_left();
}

#[test]
fn every_resize_reaches_the_container() {
    let sb = Sandbox::busybox();
    let pty = Pty::open(40, 120);
    let before = pty.settings();
    // Prints its size at start and on every SIGWINCH; Ctrl-C (a byte, through the raw
    // terminal, turned into SIGINT by the container's terminal) ends it with 7.
    let script = "trap 'stty size' WINCH; trap 'exit 7' INT; stty size; echo ready; \
                  while :; do sleep 0.1; done";
    let mut ocirun = spawn_on(&pty, &sb, &["-t", "--", "sh", "-c", script]);
    pty.wait_for("40 120\r\nready\r\n", show());
    wait_until_raw(&pty, &before);

    pty.resize(50, 100);
    pty.wait_for("ready\r\n50 100\r\n", show());
    pty.resize(30, 90);
    pty.wait_for("50 100\r\n30 90\r\n", show());

    pty.type_bytes(b"\x03");
    assert_eq!(
        wait_code(&mut ocirun),
        7,
        "terminal: {:?}",
        pty.output_text()
    );
    // The container's terminal echoes Ctrl-C as ^C.
    assert_shows(&pty, "40 120\r\nready\r\n50 100\r\n30 90\r\n^C");
    assert_eq!(pty.settings(), before, "the terminal settings changed");
    sb.assert_nothing_left();
}

#[test]
fn settings_come_back_when_ocirun_is_killed_with_sigterm_mid_run() {
    let sb = Sandbox::busybox();
    let pty = Pty::open(24, 80);
    let before = pty.settings();
    let mut ocirun = spawn_on(
        &pty,
        &sb,
        &[
            "-t",
            "--",
            "sh",
            "-c",
            "echo ready; while :; do sleep 0.1; done",
        ],
    );
    pty.wait_for("ready\r\n", show());
    wait_until_raw(&pty, &before);
    assert_ne!(
        pty.settings(),
        before,
        "the terminal is not in raw mode mid-run"
    );
    let pid = ocirun.id();
    assert_eq!(
        ppid_and_comm(pid).map(|(_, comm)| comm).as_deref(),
        Some("ocirun"),
        "setsid forked instead of executing ocirun"
    );

    kill(
        Pid::from_raw(i32::try_from(pid).expect("pid")),
        Signal::SIGTERM,
    )
    .expect("kill");

    assert_eq!(
        wait_code(&mut ocirun),
        143,
        "terminal: {:?}",
        pty.output_text()
    );
    assert_eq!(
        pty.settings(),
        before,
        "the terminal stayed raw after SIGTERM"
    );
    assert!(!pty.is_nonblocking());
    sb.assert_nothing_left();
}

#[test]
fn typed_input_reaches_the_container_and_its_echo_comes_back() {
    let sb = Sandbox::busybox();
    let pty = Pty::open(24, 80);
    let before = pty.settings();
    let mut ocirun = spawn_on(
        &pty,
        &sb,
        &[
            "-t",
            "--",
            "sh",
            "-c",
            "echo ready; read line; echo \"got <$line>\"",
        ],
    );
    pty.wait_for("ready\r\n", show());
    wait_until_raw(&pty, &before);
    // Raw: the Enter key sends \r; the container's terminal makes it \n for `read` and echoes.
    pty.type_bytes(b"hello\r");
    assert_eq!(
        wait_code(&mut ocirun),
        0,
        "terminal: {:?}",
        pty.output_text()
    );
    assert_shows(&pty, "ready\r\nhello\r\ngot <hello>\r\n");
    assert_eq!(pty.settings(), before);
    sb.assert_nothing_left();
}

#[test]
fn the_shell_stdin_is_blocking_after_ocirun_ran_on_its_terminal() {
    let sb = Sandbox::busybox();
    let pty = Pty::open(24, 80);
    // A shell on the terminal runs ocirun (a terminal by default, then pipes), then asks
    // Python whether its stdin is blocking, as a user's next command would find it.
    let script = format!(
        "{bin} --runroot {runroot} run --rootfs {rootfs} -- true && \
         {bin} --runroot {runroot} run --tty=false --rootfs {rootfs} -- true && \
         python3 -c 'import os;print(os.get_blocking(0))'",
        bin = ocirun_bin().display(),
        runroot = sb.runroot().display(),
        rootfs = sb.rootfs().display(),
    );
    let mut shell = pty
        .command("sh", ["-c", script.as_str()])
        .spawn()
        .expect("start sh");
    let status = wait_with_timeout(&mut shell, slack(TIMEOUT), "sh running ocirun");
    assert_eq!(status.code(), Some(0), "terminal: {:?}", pty.output_text());
    assert_shows(&pty, "True\r\n");
    assert!(!pty.is_nonblocking());
    sb.assert_nothing_left();
}

#[test]
fn the_terminal_description_is_never_non_blocking_mid_run() {
    let sb = Sandbox::busybox();
    let pty = Pty::open(24, 80);
    let mut ocirun = spawn_on(
        &pty,
        &sb,
        &["-t", "--", "sh", "-c", "echo ready; sleep 1; echo done"],
    );
    pty.wait_for("ready\r\n", show());
    // ocirun's stdin, stdout and stderr share the test's open file description of the
    // terminal: O_NONBLOCK on it would show here.
    while ocirun.try_wait().expect("wait").is_none() {
        assert!(!pty.is_nonblocking(), "the terminal became non-blocking");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(wait_code(&mut ocirun), 0);
    assert_shows(&pty, "ready\r\ndone\r\n");
    sb.assert_nothing_left();
}

#[test]
fn echo_into_a_terminal_cat_ends_by_itself() {
    // `echo Hello | ocirun run -t --rootfs R -- cat`: EOF on the piped stdin reaches `cat` as
    // the terminal's EOF character.
    let sb = Sandbox::busybox();
    let out = sb.run(["-t", "--", "cat"]).stdin("Hello\n").run();
    out.assert_code(0);
    // The container's terminal echoes the input, then `cat` prints it.
    assert_eq!(out.stdout_text(), "Hello\r\nHello\r\n");
    assert_eq!(out.stderr, "");
    assert!(
        out.elapsed < slack(Duration::from_secs(10)),
        "took {:?}",
        out.elapsed
    );
    sb.assert_nothing_left();
}

#[test]
fn a_partial_line_into_a_terminal_cat_ends_too() {
    let sb = Sandbox::busybox();
    let out = sb.run(["-t", "--", "cat"]).stdin("no newline").run();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "no newlineno newline");
    sb.assert_nothing_left();
}

#[test]
fn with_t_and_pipes_the_container_still_has_a_terminal() {
    let sb = Sandbox::busybox();
    let out = sb
        .run(["-t", "--", "sh", "-c", "tty; echo $TERM; echo err >&2"])
        .run();
    out.assert_code(0);
    // stdout and stderr are one stream: the terminal.
    assert_eq!(out.stdout_text(), "/dev/pts/0\r\nxterm\r\nerr\r\n");
    assert_eq!(out.stderr, "");
    sb.assert_nothing_left();
}

#[test]
fn quiet_with_a_terminal_discards_its_output() {
    let sb = Sandbox::busybox();
    let out = sb
        .run(["-t", "-q", "--", "sh", "-c", "echo out; exit 3"])
        .run();
    out.assert_code(3);
    assert_eq!(out.stdout_text(), "");
    assert_eq!(out.stderr, "");
    sb.assert_nothing_left();
}

#[test]
fn tty_with_stdio_inherit_is_refused() {
    let sb = Sandbox::busybox();
    let out = sb.run(["-t", "--stdio", "inherit", "--", "true"]).run();
    out.assert_failure(
        125,
        "--tty cannot be used with --stdio inherit: a terminal needs the relay",
    );
    sb.assert_nothing_left();
}

#[test]
fn spec_with_t_sets_terminal_and_term() {
    let sb = Sandbox::busybox();
    let out = sb.ocirun("spec", ["-t", "--", "true"]).run();
    out.assert_code(0);
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("spec JSON");
    assert_eq!(spec["process"]["terminal"], serde_json::json!(true));
    let env = spec["process"]["env"].as_array().expect("env");
    assert!(env.contains(&serde_json::json!("TERM=xterm")), "{env:?}");
    // No terminal on ocirun's side here: no console size.
    assert!(spec["process"].get("consoleSize").is_none());

    let out = sb.ocirun("spec", ["--", "true"]).run();
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("spec JSON");
    assert!(spec["process"].get("terminal").is_none_or(|t| t == false));
}

#[test]
fn spec_on_a_terminal_carries_its_size_as_console_size() {
    let sb = Sandbox::busybox();
    let pty = Pty::open(33, 77);
    let args: Vec<OsString> = vec![
        "spec".into(),
        "--rootfs".into(),
        sb.rootfs().into(),
        "--".into(),
        "true".into(),
    ];
    let mut ocirun = pty
        .command(ocirun_bin(), &args)
        .spawn()
        .expect("start ocirun spec");
    assert_eq!(
        wait_code(&mut ocirun),
        0,
        "terminal: {:?}",
        pty.output_text()
    );
    // The JSON ends with a closing brace; wait for all of it.
    let shown = pty.wait_for("\r\n}", show());
    let spec: serde_json::Value =
        serde_json::from_str(&shown.replace("\r\n", "\n")).expect("spec JSON");
    assert_eq!(spec["process"]["terminal"], serde_json::json!(true));
    assert_eq!(
        spec["process"]["consoleSize"],
        serde_json::json!({"height": 33, "width": 77})
    );
}
