//! Stdio without a terminal: three pipes, stdin relayed in until EOF, stdout and stderr kept
//! apart, every byte delivered in order.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use ocirun_e2e::pty::wait_with_timeout;
use ocirun_e2e::{lighter_in_vm, slack, Sandbox, TIMEOUT};

#[test]
fn script_on_stdin_runs_and_returns_promptly() {
    let sb = Sandbox::busybox();
    let out = sb.run(["--", "sh"]).stdin("echo foo\n").run();
    out.assert_success("foo\n");
    assert!(
        out.elapsed < slack(Duration::from_secs(10)),
        "EOF on stdin should end `sh` at once; took {:?}",
        out.elapsed
    );
    sb.assert_nothing_left();
}

#[test]
fn stdin_from_dev_null_gives_eof() {
    let sb = Sandbox::busybox();
    // Ocirun's default stdin is /dev/null.
    sb.run(["--", "cat"]).run().assert_success("");
    sb.assert_nothing_left();
}

#[test]
fn stdin_bytes_arrive_in_order() {
    let sb = Sandbox::busybox();
    let count = lighter_in_vm(100_000, 5_000);
    let mut lines = String::new();
    for i in 1..=count {
        let _ = writeln!(lines, "{i}");
    }
    let out = sb
        .run(["--", "sh", "-c", "while read i; do echo $i; done"])
        .stdin(lines.clone())
        .run();
    out.assert_code(0);
    assert!(
        out.stdout_text() == lines,
        "stdout differs from the {count} lines sent: {} bytes instead of {}, first difference \
         at byte {:?}",
        out.stdout.len(),
        lines.len(),
        out.stdout
            .iter()
            .zip(lines.as_bytes())
            .position(|(a, b)| a != b)
    );
    assert_eq!(out.stderr, "");
    sb.assert_nothing_left();
}

#[test]
fn binary_stdin_round_trips() {
    let sb = Sandbox::busybox();
    let bytes: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let out = sb.run(["--", "cat"]).stdin(bytes.clone()).run();
    out.assert_code(0);
    assert!(out.stdout == bytes, "{} bytes came back", out.stdout.len());
    assert_eq!(out.stderr, "");
    sb.assert_nothing_left();
}

#[test]
fn stdout_and_stderr_stay_separate() {
    let sb = Sandbox::busybox();
    let out = sb.run(["--", "sh", "-c", "echo out; echo err >&2"]).run();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "out\n");
    assert!(out.stderr.contains("err\n"), "stderr: {:?}", out.stderr);
    assert!(!out.stderr.contains("out"), "stderr: {:?}", out.stderr);
    assert!(!out.stdout_text().contains("err"));
    sb.assert_nothing_left();
}

#[test]
fn large_output_arrives_complete() {
    let sb = Sandbox::busybox();
    // 64 MiB on the host, 8 MiB in the emulated guest.
    let len = lighter_in_vm(64usize << 20, 8 << 20);
    let out = sb
        .run(["--", "head", "-c", &len.to_string(), "/dev/zero"])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout.len(), len);
    assert!(
        out.stdout.iter().all(|&b| b == 0),
        "non-zero bytes in stdout"
    );
    assert_eq!(out.stderr, "");
    sb.assert_nothing_left();
}

#[test]
fn large_stderr_arrives_complete_beside_stdout() {
    let sb = Sandbox::busybox();
    let out = sb
        .run(["--", "sh", "-c", "head -c 8388608 /dev/zero >&2; echo done"])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "done\n");
    assert_eq!(out.stderr.len(), 8_388_608);
    sb.assert_nothing_left();
}

#[test]
fn quiet_discards_stdout_only() {
    let sb = Sandbox::busybox();
    let out = sb
        .run(["--quiet", "--", "sh", "-c", "echo out; echo err >&2"])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "");
    assert_eq!(out.stderr, "err\n");
    sb.assert_nothing_left();
}

#[test]
fn stdin_left_open_does_not_hold_ocirun() {
    let sb = Sandbox::busybox();
    // As in `sleep 100 | ocirun run ... echo hi`: the command ends without reading stdin.
    let out = sb.run(["--", "echo", "hi"]).stdin_held_open().run();
    out.assert_success("hi\n");
    assert!(
        out.elapsed < slack(Duration::from_secs(10)),
        "ocirun waited for stdin: took {:?}",
        out.elapsed
    );
    sb.assert_nothing_left();
}

#[test]
fn tty_without_a_terminal_says_not_a_tty() {
    // ocirun's stdio here: /dev/null and two pipes, so no terminal by default.
    let sb = Sandbox::busybox();
    let out = sb.run(["--", "tty"]).run();
    out.assert_code(1);
    assert_eq!(out.stdout_text(), "not a tty\n");
    assert_eq!(out.stderr, "");
    sb.assert_nothing_left();
}

#[test]
fn a_background_process_holding_the_pipes_does_not_hang_ocirun() {
    let sb = Sandbox::busybox();
    let out = sb.run(["--", "sh", "-c", "sleep 300 & echo started"]).run();
    out.assert_success("started\n");
    assert!(
        out.elapsed < slack(Duration::from_secs(5)),
        "ocirun waited for the background process: {:?}",
        out.elapsed
    );
    sb.assert_nothing_left();
}

#[test]
fn large_interleaved_stdout_and_stderr_keep_each_stream_in_order() {
    let sb = Sandbox::busybox();
    // Two writers at once, one per stream, 2 million lines (about 15 MB) each; 100 000 in the
    // emulated guest.
    let count = lighter_in_vm(2_000_000, 100_000);
    let out = sb
        .run([
            "--",
            "sh",
            "-c",
            &format!("seq 1 {count} & seq 1 {count} >&2; wait"),
        ])
        .run();
    out.assert_code(0);
    let mut expected = String::with_capacity(15_000_000);
    for i in 1..=count {
        let _ = writeln!(expected, "{i}");
    }
    for (name, got) in [
        ("stdout", out.stdout_text()),
        ("stderr", out.stderr.as_str()),
    ] {
        assert!(
            got == expected,
            "{name} differs: {} bytes instead of {}, first difference at byte {:?}",
            got.len(),
            expected.len(),
            got.bytes().zip(expected.bytes()).position(|(a, b)| a != b)
        );
    }
    sb.assert_nothing_left();
}

/// One GiB, in bytes: what the two checksum tests move on the host.
const GIB: usize = 1 << 30;

/// What the checksum tests move, in bytes: 1 GiB on the host, 8 MiB in the emulated guest.
fn big_transfer() -> usize {
    lighter_in_vm(GIB, 8 << 20)
}

/// How long a 1 GiB run may take (two sha256 passes and /dev/urandom on a small machine).
const GIB_TIMEOUT: Duration = Duration::from_secs(300);

/// `sha256sum` on the host, reading its stdin; returns the child.
fn host_sha256sum() -> Child {
    Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot start sha256sum")
}

/// Reads `from` to its end on a thread.
fn read_all(mut from: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        from.read_to_end(&mut bytes).expect("read");
        bytes
    })
}

/// A sha256sum line: 64 hex digits, two spaces, `-`.
fn assert_sum_line(line: &str) {
    assert_eq!(line.len(), 68, "{line:?}");
    assert!(line.ends_with("  -\n"), "{line:?}");
    assert!(
        line[..64].bytes().all(|b| b.is_ascii_hexdigit()),
        "{line:?}"
    );
}

#[test]
fn one_gib_through_stdout_arrives_with_the_container_checksum() {
    let sb = Sandbox::busybox();
    let mut host = host_sha256sum();
    let to_host = host.stdin.take().expect("piped");
    // The container sends 1 GiB (in the guest 8 MiB) of random bytes to its stdout (tee
    // through fd 3) and their
    // checksum to its stderr.
    let mut ocirun = sb
        .run([
            "--",
            "sh",
            "-c",
            &format!(
                "exec 3>&1; head -c {} /dev/urandom | tee /proc/self/fd/3 | sha256sum >&2",
                big_transfer()
            ),
        ])
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::from(to_host))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ocirun");
    let stderr = read_all(ocirun.stderr.take().expect("piped"));
    let status = wait_with_timeout(&mut ocirun, GIB_TIMEOUT, "ocirun sending 1 GiB");
    let container_sum = String::from_utf8(stderr.join().expect("stderr")).expect("utf-8");
    let host_sum = host.wait_with_output().expect("sha256sum");
    assert_eq!(status.code(), Some(0), "stderr: {container_sum:?}");
    assert_sum_line(&container_sum);
    assert_eq!(String::from_utf8_lossy(&host_sum.stdout), container_sum);
    sb.assert_nothing_left();
}

#[test]
fn one_gib_through_stdin_arrives_with_the_host_checksum() {
    let sb = Sandbox::busybox();
    let mut host = host_sha256sum();
    let mut to_host = host.stdin.take().expect("piped");
    let mut ocirun = sb
        .run(["--", "sha256sum"])
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ocirun");
    let mut to_ocirun = ocirun.stdin.take().expect("piped");
    let stdout = read_all(ocirun.stdout.take().expect("piped"));
    let stderr = read_all(ocirun.stderr.take().expect("piped"));
    // `head -c 1G /dev/urandom`, fed to both.
    let feeder = thread::spawn(move || {
        let mut urandom = std::fs::File::open("/dev/urandom").expect("open /dev/urandom");
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..big_transfer() / chunk.len() {
            urandom.read_exact(&mut chunk).expect("read /dev/urandom");
            to_host.write_all(&chunk).expect("write to sha256sum");
            to_ocirun.write_all(&chunk).expect("write to ocirun");
        }
    });
    let status = wait_with_timeout(&mut ocirun, GIB_TIMEOUT, "ocirun receiving 1 GiB");
    feeder.join().expect("feeder");
    let container_sum = String::from_utf8(stdout.join().expect("stdout")).expect("utf-8");
    let errors = String::from_utf8_lossy(&stderr.join().expect("stderr")).into_owned();
    let host_sum = host.wait_with_output().expect("sha256sum");
    assert_eq!(status.code(), Some(0), "stderr: {errors:?}");
    assert_eq!(errors, "");
    assert_sum_line(&container_sum);
    assert_eq!(String::from_utf8_lossy(&host_sum.stdout), container_sum);
    sb.assert_nothing_left();
}

/// What the container's stdout is, as the container sees it, with ocirun's stdout a regular
/// file: `regular file` with `--stdio inherit` (it is ocirun's), `pipe` with the relay.
fn container_stdout_kind(sb: &Sandbox, extra: &[&str]) -> String {
    let path = sb.scratch().join("out");
    let file = std::fs::File::create(&path).expect("create the output file");
    let mut args: Vec<&str> = extra.to_vec();
    args.extend([
        "--",
        "sh",
        "-c",
        "if [ -p /proc/self/fd/1 ]; then echo pipe; elif [ -f /proc/self/fd/1 ]; then \
         echo regular file; else echo other; fi",
    ]);
    let mut ocirun = sb
        .run(args)
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ocirun");
    let stderr = read_all(ocirun.stderr.take().expect("piped"));
    let status = wait_with_timeout(&mut ocirun, slack(TIMEOUT), "ocirun");
    let errors = String::from_utf8_lossy(&stderr.join().expect("stderr")).into_owned();
    assert_eq!(status.code(), Some(0), "stderr: {errors:?}");
    assert_eq!(errors, "");
    std::fs::read_to_string(&path).expect("read the output file")
}

#[test]
fn stdio_inherit_gives_the_container_ocirun_own_fds() {
    let sb = Sandbox::busybox();
    assert_eq!(
        container_stdout_kind(&sb, &["--stdio", "inherit"]),
        "regular file\n"
    );
    assert_eq!(container_stdout_kind(&sb, &[]), "pipe\n");
    assert_eq!(container_stdout_kind(&sb, &["--stdio", "relay"]), "pipe\n");
    sb.assert_nothing_left();
}

#[test]
fn stdio_inherit_passes_input_output_and_status() {
    let sb = Sandbox::busybox();
    let out = sb
        .run([
            "--stdio",
            "inherit",
            "--",
            "sh",
            "-c",
            "cat; echo err >&2; exit 4",
        ])
        .stdin("in\n")
        .run();
    out.assert_code(4);
    assert_eq!(out.stdout_text(), "in\n");
    assert_eq!(out.stderr, "err\n");
    sb.assert_nothing_left();
}

#[test]
fn quiet_with_stdio_inherit_discards_stdout_only() {
    let sb = Sandbox::busybox();
    let out = sb
        .run([
            "-q",
            "--stdio",
            "inherit",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "");
    assert_eq!(out.stderr, "err\n");
    sb.assert_nothing_left();
}

#[test]
fn an_unknown_stdio_mode_is_refused() {
    let sb = Sandbox::busybox();
    let out = sb.run(["--stdio", "socket", "--", "true"]).run();
    out.assert_failure(125, "invalid value 'socket' for '--stdio <MODE>'");
    sb.assert_nothing_left();
}
