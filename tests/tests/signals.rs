//! Signals sent to ocirun reach the container (BEHAVIOR.md "Signals"): a terminating signal
//! that the container's init does not catch ends it, and ocirun exits 128 + that signal; a
//! caught one is forwarded and the container's own status stands.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ocirun_e2e::{children_named, Sandbox};

/// Waits up to 10 s for a child of `parent` named `comm` and returns its pid.
fn wait_for_child(parent: u32, comm: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(&pid) = children_named(parent, comm).first() {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no `{comm}` child of pid {parent} appeared within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), signal)
        .unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
}

fn uncaught_signal_ends_the_container(sig: Signal, code: i32) {
    let sb = Sandbox::busybox();
    let running = sb.run(["--", "sleep", "60"]).spawn();
    wait_for_child(running.pid(), "sleep");
    signal(running.pid(), sig);
    let out = running.wait();
    out.assert_code(code);
    assert_eq!(out.stdout_text(), "");
    assert!(
        out.elapsed < Duration::from_secs(30),
        "ocirun took {:?} after {sig}",
        out.elapsed
    );
    sb.assert_nothing_left();
}

#[test]
fn sigterm_to_ocirun_ends_sleep_with_143() {
    uncaught_signal_ends_the_container(Signal::SIGTERM, 143);
}

#[test]
fn sigint_to_ocirun_ends_sleep_with_130() {
    uncaught_signal_ends_the_container(Signal::SIGINT, 130);
}

#[test]
fn caught_signal_is_forwarded_and_the_command_status_stands() {
    let sb = Sandbox::busybox();
    let running = sb
        .run([
            "--",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 3' TERM; sleep 60 & wait",
        ])
        .spawn();
    let sh = wait_for_child(running.pid(), "sh");
    // The trap is set before `sleep` starts.
    wait_for_child(sh, "sleep");
    signal(running.pid(), Signal::SIGTERM);
    let out = running.wait();
    out.assert_code(3);
    assert_eq!(out.stdout_text(), "got TERM\n");
    assert_eq!(out.stderr, "");
    sb.assert_nothing_left();
}
