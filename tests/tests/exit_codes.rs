//! Exit codes, podman's convention: the command's own status, 128 + signal, 125 when ocirun
//! fails, 126 when the command cannot be run, 127 when it is not found. Every failure leaves
//! nothing behind.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ocirun_e2e::{children_named, slack, Ocirun, Sandbox};

#[test]
fn status_of_the_command_is_the_exit_code() {
    let sb = Sandbox::busybox();
    let out = sb.run(["--", "sh", "-c", "exit 42"]).run();
    out.assert_code(42);
    assert_eq!(out.stdout_text(), "");
    assert_eq!(out.stderr, "");
    sb.assert_nothing_left();
}

#[test]
fn false_exits_1() {
    let sb = Sandbox::busybox();
    let out = sb.run(["--", "false"]).run();
    out.assert_code(1);
    assert_eq!(out.stdout_text(), "");
    assert_eq!(out.stderr, "");
    sb.assert_nothing_left();
}

#[test]
fn command_killed_by_sigkill_exits_137() {
    let sb = Sandbox::busybox();
    let running = sb.run(["--", "sleep", "60"]).spawn();
    let ocirun = running.pid();
    // ocirun is a child subreaper: the container's init becomes its direct child.
    let deadline = Instant::now() + slack(Duration::from_secs(10));
    let sleep = loop {
        if let Some(&pid) = children_named(ocirun, "sleep").first() {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "no `sleep` child of ocirun (pid {ocirun}) appeared within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    kill(
        Pid::from_raw(i32::try_from(sleep).unwrap()),
        Signal::SIGKILL,
    )
    .expect("kill -9 the container's init");
    let out = running.wait();
    out.assert_code(137);
    assert_eq!(out.stdout_text(), "");
    assert!(
        out.elapsed < slack(Duration::from_secs(30)),
        "took {:?}",
        out.elapsed
    );
    sb.assert_nothing_left();
}

#[test]
fn directory_as_command_exits_126() {
    let sb = Sandbox::busybox();
    sb.run(["--", "/etc"]).run().assert_failure(126, "/etc");
    sb.assert_nothing_left();
}

#[test]
fn file_without_exec_permission_exits_126() {
    let sb = Sandbox::busybox();
    sb.run(["--", "/etc/passwd"])
        .run()
        .assert_failure(126, "/etc/passwd");
    sb.assert_nothing_left();
}

#[test]
fn a_command_the_kernel_cannot_execute_exits_126_with_the_reason() {
    // Found and executable, but execve(2) fails inside the container: a script whose
    // interpreter is missing, a file without `#!` that is no binary, a truncated ELF file.
    let sb = Sandbox::busybox_with(|rootfs| {
        for (name, content) in [
            ("bad-interpreter", &b"#!/no/such/interpreter\necho hi\n"[..]),
            ("no-shebang", &b"echo hi\n"[..]),
            ("truncated-elf", &b"\x7fELF\x02\x01\x01"[..]),
        ] {
            let path = rootfs.join(name);
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    });
    sb.run(["--", "/bad-interpreter"])
        .run()
        .assert_failure(126, "exec /bad-interpreter: no such file or directory");
    sb.run(["--", "/no-shebang"])
        .run()
        .assert_failure(126, "exec /no-shebang: exec format error");
    sb.run(["--", "/truncated-elf"])
        .run()
        .assert_failure(126, "exec /truncated-elf: exec format error");
    // A command that ran and failed keeps its own status.
    sb.run(["--", "sh", "-c", "echo no >&2; exit 1"])
        .run()
        .assert_failure(1, "no\n");
    sb.assert_nothing_left();
}

#[test]
fn missing_command_exits_127() {
    let sb = Sandbox::busybox();
    sb.run(["--", "no-such-command"])
        .run()
        .assert_failure(127, "executable file not found in $PATH");
    sb.assert_nothing_left();
}

#[test]
fn missing_absolute_command_exits_127() {
    let sb = Sandbox::busybox();
    sb.run(["--", "/no/such/command"])
        .run()
        .assert_failure(127, "/no/such/command");
    sb.assert_nothing_left();
}

#[test]
fn no_command_exits_125() {
    let sb = Sandbox::busybox();
    sb.run(Vec::<&str>::new())
        .run()
        .assert_failure(125, "command must be specified");
    sb.assert_nothing_left();
}

#[test]
fn missing_rootfs_exits_125() {
    let sb = Sandbox::busybox();
    Ocirun::new([
        "--runroot".as_ref(),
        sb.runroot().as_os_str(),
        "run".as_ref(),
        "--rootfs".as_ref(),
        "/does/not/exist".as_ref(),
        "--".as_ref(),
        "true".as_ref(),
    ])
    .run()
    .assert_failure(125, "/does/not/exist");
    sb.assert_nothing_left();
}

#[test]
fn unknown_flag_exits_125() {
    let sb = Sandbox::busybox();
    sb.run(["--no-such-flag", "--", "true"])
        .run()
        .assert_failure(125, "--no-such-flag");
    sb.assert_nothing_left();
}
