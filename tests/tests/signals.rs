//! Signals sent to ocirun reach the container (docs/ocirun-run.md "Signals"): a terminating signal
//! that the container's init does not catch ends it, and ocirun exits 128 + that signal; a
//! caught one is forwarded and the container's own status stands.

use std::time::Duration;

use nix::sys::signal::Signal;
use ocirun_e2e::{send_signal, slack, wait_for_child, Sandbox};

fn uncaught_signal_ends_the_container(sig: Signal, code: i32) {
    let sb = Sandbox::busybox();
    let running = sb.run(["--", "sleep", "60"]).spawn();
    wait_for_child(running.pid(), "sleep");
    send_signal(running.pid(), sig);
    let out = running.wait();
    out.assert_code(code);
    assert_eq!(out.stdout_text(), "");
    assert!(
        out.elapsed < slack(Duration::from_secs(30)),
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
    send_signal(running.pid(), Signal::SIGTERM);
    let out = running.wait();
    out.assert_code(3);
    assert_eq!(out.stdout_text(), "got TERM\n");
    assert_eq!(out.stderr, "");
    sb.assert_nothing_left();
}
