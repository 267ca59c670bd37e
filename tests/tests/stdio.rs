//! Stdio without a terminal: three pipes, stdin relayed in until EOF, stdout and stderr kept
//! apart, every byte delivered in order.

use std::fmt::Write as _;
use std::time::Duration;

use ocirun_e2e::Sandbox;

#[test]
fn script_on_stdin_runs_and_returns_promptly() {
    let sb = Sandbox::busybox();
    let out = sb.run(["--", "sh"]).stdin("echo foo\n").run();
    out.assert_success("foo\n");
    assert!(
        out.elapsed < Duration::from_secs(10),
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
    let mut lines = String::new();
    for i in 1..=100_000 {
        let _ = writeln!(lines, "{i}");
    }
    let out = sb
        .run(["--", "sh", "-c", "while read i; do echo $i; done"])
        .stdin(lines.clone())
        .run();
    out.assert_code(0);
    assert!(
        out.stdout_text() == lines,
        "stdout differs from the 100000 lines sent: {} bytes instead of {}, first difference \
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
    let out = sb.run(["--", "head", "-c", "67108864", "/dev/zero"]).run();
    out.assert_code(0);
    assert_eq!(out.stdout.len(), 67_108_864);
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
        out.elapsed < Duration::from_secs(10),
        "ocirun waited for stdin: took {:?}",
        out.elapsed
    );
    sb.assert_nothing_left();
}
