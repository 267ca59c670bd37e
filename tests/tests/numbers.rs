//! Numeric flags are range-checked when the command line is read: a value out of range exits
//! 125 naming the flag, the value and the range, before anything is created.

use std::time::Duration;

use nix::sys::signal::Signal;
use ocirun_e2e::{send_signal, slack, wait_for_child, Sandbox};

#[test]
fn numbers_out_of_range_are_refused_naming_flag_value_and_range() {
    let sb = Sandbox::busybox();
    for (flag, value, placeholder, range) in [
        (
            "--stop-timeout",
            "18446744073709551615",
            "SECONDS",
            "0..=4294967295",
        ),
        ("--stop-timeout", "4294967296", "SECONDS", "0..=4294967295"),
        ("--cpu-shares", "1", "SHARES", "2..=262144"),
        ("--cpu-shares", "262145", "SHARES", "2..=262144"),
        ("--cpu-period", "999", "MICROSECONDS", "1000..=1000000"),
        (
            "--cpu-quota",
            "-2",
            "MICROSECONDS",
            "-1..9223372036854775807",
        ),
        ("--pids-limit", "4194305", "N", "-1..=4194304"),
        ("--pids-limit", "-2", "N", "-1..=4194304"),
    ] {
        for sub in ["run", "spec"] {
            let out = sb.ocirun(sub, [flag, value, "--", "true"]).run();
            out.assert_code(125);
            assert_eq!(out.stdout_text(), "");
            assert_eq!(
                out.stderr,
                format!(
                    "error: invalid value '{value}' for '{flag} <{placeholder}>': {value} is not \
                     in {range}\n\nFor more information, try '--help'.\n"
                )
            );
        }
    }
    sb.assert_nothing_left();
}

#[test]
fn values_out_of_range_in_the_value_grammars_are_refused_naming_them() {
    let sb = Sandbox::busybox();
    for (flag, value, message) in [
        (
            "--cpuset-cpus",
            "0-4294967295",
            r#"invalid --cpuset-cpus "0-4294967295": 4294967295 is too large (at most 8191)"#,
        ),
        (
            "--cpuset-mems",
            "9000",
            r#"invalid --cpuset-mems "9000": 9000 is too large (at most 8191)"#,
        ),
        (
            "--tmpfs",
            "/t:size=99999999999999999999",
            r#"invalid --tmpfs "/t:size=99999999999999999999": invalid value in option "size=99999999999999999999""#,
        ),
        (
            "--user",
            "4294967296",
            r#"invalid user "4294967296": uids and gids must be in range 0-2147483647"#,
        ),
        (
            "--group-add",
            "4294967296",
            r#"invalid group "4294967296": uids and gids must be in range 0-2147483647"#,
        ),
        (
            "--memory",
            "99999999999999999999",
            r#"invalid --memory "99999999999999999999": too large (at most 8191p)"#,
        ),
        (
            "--shm-size",
            "9000p",
            r#"invalid --shm-size "9000p": too large (at most 8191p)"#,
        ),
        (
            "--ulimit",
            "nofile=99999999999999999999",
            r#"invalid --ulimit "nofile=99999999999999999999": 99999999999999999999 is too large"#,
        ),
    ] {
        for sub in ["run", "spec"] {
            let out = sb.ocirun(sub, [flag, value, "--", "true"]).run();
            out.assert_code(125);
            assert_eq!(out.stdout_text(), "");
            assert_eq!(out.stderr, format!("ocirun: {message}\n"));
        }
    }
    sb.assert_nothing_left();
}

#[test]
fn the_longest_stop_timeout_still_forwards_a_signal() {
    let sb = Sandbox::busybox();
    let running = sb
        .run(["--stop-timeout", "4294967295", "--", "sleep", "60"])
        .spawn();
    wait_for_child(running.pid(), "sleep");
    send_signal(running.pid(), Signal::SIGTERM);
    let out = running.wait();
    out.assert_code(143);
    assert_eq!(out.stderr, "");
    assert!(out.elapsed < slack(Duration::from_secs(30)));
    sb.assert_nothing_left();
}
