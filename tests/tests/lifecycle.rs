//! The container's lifecycle as the runtime driver runs it: exactly run and delete (create,
//! start and delete with a terminal);
//! signals, the stop timeout and --init; crash safety with `ocirun gc`; concurrent runs on one
//! rootfs and container names; runtime discovery, flags and errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use ocirun_e2e::{
    children_named, lighter_in_vm, ocirun_bin, ppid_and_comm, processes_rooted_at, runtime, script,
    send_signal, slack, status_mask, wait_for_child, wait_until_caught, Sandbox,
};

/// A runtime that appends its arguments to `log`, then runs the runtime under test.
fn logging_runtime(sb: &Sandbox) -> (PathBuf, PathBuf) {
    let log = sb.scratch().join("runtime.log");
    let wrapper = script(
        sb.scratch(),
        "logging-runtime",
        &format!(
            "echo \"$*\" >> {}\nexec {} \"$@\"\n",
            log.display(),
            runtime().display()
        ),
    );
    (wrapper, log)
}

/// The runtime subcommands in a [`logging_runtime`] log, in order.
fn subcommands(log: &Path) -> Vec<String> {
    const KNOWN: [&str; 7] = ["create", "start", "run", "state", "kill", "delete", "list"];
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| KNOWN.contains(w))
                .map(str::to_owned)
        })
        .collect()
}

/// The run records left in a runroot.
fn records(runroot: &Path) -> Vec<String> {
    std::fs::read_dir(runroot.join("records"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_clean_run_calls_exactly_run_and_delete() {
    let sb = Sandbox::busybox();
    let (wrapper, log) = logging_runtime(&sb);
    let runtime = wrapper.to_str().unwrap();
    sb.run(["--runtime", runtime, "--", "echo", "hi"])
        .run()
        .assert_success("hi\n");
    assert_eq!(subcommands(&log), ["run", "delete"]);
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains(" run --detach "));
    assert!(records(sb.runroot()).is_empty());
    sb.assert_nothing_left();
}

#[test]
fn a_run_with_a_terminal_calls_create_start_delete() {
    // The terminal's size is set between create and start.
    let sb = Sandbox::busybox();
    let (wrapper, log) = logging_runtime(&sb);
    let runtime = wrapper.to_str().unwrap();
    let out = sb
        .run(["--runtime", runtime, "-t", "--", "echo", "hi"])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "hi\r\n");
    assert_eq!(subcommands(&log), ["create", "start", "delete"]);
    sb.assert_nothing_left();
}

#[test]
fn runtime_flags_reach_the_runtime_before_the_subcommand() {
    let sb = Sandbox::busybox();
    let (wrapper, log) = logging_runtime(&sb);
    let runtime = wrapper.to_str().unwrap();
    sb.run([
        "--runtime",
        runtime,
        "--runtime-flag",
        "debug",
        "--",
        "true",
    ])
    .run()
    .assert_code(0);
    let lines = std::fs::read_to_string(&log).unwrap();
    for line in lines.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let debug = words.iter().position(|w| *w == "--debug");
        let sub = words
            .iter()
            .position(|w| ["create", "start", "run", "delete"].contains(w));
        assert!(
            matches!((debug, sub), (Some(d), Some(s)) if d < s),
            "--debug before the subcommand in {line:?}"
        );
    }
    sb.assert_nothing_left();
}

#[test]
fn the_runtime_comes_from_the_flag_then_the_environment() {
    let sb = Sandbox::busybox();
    sb.run(["--runtime", "/no/such/runtime", "--", "true"])
        .run()
        .assert_failure(125, "\"/no/such/runtime\" not found");
    sb.run(["--", "true"])
        .env("OCIRUN_RUNTIME", "/no/such/env-runtime")
        .run()
        .assert_failure(125, "\"/no/such/env-runtime\" not found");
    let (wrapper, log) = logging_runtime(&sb);
    sb.run(["--", "true"])
        .env("OCIRUN_RUNTIME", &wrapper)
        .run()
        .assert_code(0);
    assert_eq!(subcommands(&log), ["run", "delete"]);
    sb.assert_nothing_left();
}

#[test]
fn a_runtime_that_fails_to_start_the_container_is_reported_in_one_line() {
    let sb = Sandbox::busybox();
    let wrapper = script(
        sb.scratch(),
        "failing-runtime",
        &format!(
            "case \" $* \" in *\" run \"*) echo 'cannot run: quota of widgets exceeded' >&2; exit 1;; esac\n\
             exec {} \"$@\"\n",
            runtime().display()
        ),
    );
    let out = sb
        .run(["--runtime", wrapper.to_str().unwrap(), "--", "true"])
        .run();
    out.assert_failure(
        125,
        "failing-runtime run failed: cannot run: quota of widgets exceeded",
    );
    assert_eq!(out.stderr.lines().count(), 1, "one line: {:?}", out.stderr);
    sb.assert_nothing_left();
}

#[test]
fn sigkill_of_the_container_ends_ocirun_within_a_second() {
    let sb = Sandbox::busybox();
    let running = sb.run(["--", "sleep", "60"]).spawn();
    let sleep = wait_for_child(running.pid(), "sleep");
    let killed = Instant::now();
    send_signal(sleep, Signal::SIGKILL);
    let out = running.wait();
    out.assert_code(137);
    assert!(
        killed.elapsed() < slack(Duration::from_secs(1)),
        "took {:?}",
        killed.elapsed()
    );
    sb.assert_nothing_left();
}

#[test]
fn timeout_with_sigint_ends_the_run_and_its_processes() {
    let sb = Sandbox::busybox();
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["-s", "INT", "2"])
        .arg(ocirun_bin())
        .arg("--runroot")
        .arg(sb.runroot())
        .args(["run", "--rootfs"])
        .arg(sb.rootfs())
        .args(["--", "sh", "-c", "sleep 30; echo late"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(124),
        "timeout reports that it had to stop ocirun"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "`late` is never printed"
    );
    assert!(
        elapsed >= Duration::from_secs(2)
            && elapsed < Duration::from_secs(2) + slack(Duration::from_secs(2)),
        "returned after {elapsed:?}"
    );
    assert!(processes_rooted_at(sb.rootfs()).is_empty());
    sb.assert_nothing_left();
}

#[test]
fn a_caught_sigterm_lets_the_container_choose_its_status() {
    let sb = Sandbox::busybox();
    let running = sb
        .run([
            "--",
            "sh",
            "-c",
            "trap 'exit 7' TERM; while true; do sleep 0.1; done",
        ])
        .spawn();
    // The trap must be set before the signal.
    let sh = wait_for_child(running.pid(), "sh");
    wait_until_caught(sh, &[Signal::SIGTERM]);
    send_signal(running.pid(), Signal::SIGTERM);
    running.wait().assert_code(7);
    sb.assert_nothing_left();
}

#[test]
fn stop_timeout_kills_a_container_that_ignores_sigterm() {
    let sb = Sandbox::busybox();
    let running = sb
        .run([
            "--stop-timeout",
            "1",
            "--",
            "sh",
            "-c",
            "trap 'echo ignored' TERM; while true; do sleep 0.1; done",
        ])
        .spawn();
    let sh = wait_for_child(running.pid(), "sh");
    wait_until_caught(sh, &[Signal::SIGTERM]);
    let sent = Instant::now();
    send_signal(running.pid(), Signal::SIGTERM);
    let out = running.wait();
    out.assert_code(137);
    let after = sent.elapsed();
    assert!(
        after >= Duration::from_millis(900) && after < slack(Duration::from_secs(3)),
        "killed {after:?} after SIGTERM"
    );
    assert_eq!(out.stdout_text(), "ignored\n");
    sb.assert_nothing_left();
}

#[test]
fn without_sig_proxy_a_terminating_signal_still_ends_the_run() {
    let sb = Sandbox::busybox();
    let running = sb
        .run([
            "--sig-proxy=false",
            "--",
            "sh",
            "-c",
            "trap 'echo forwarded' TERM USR1; sleep 30",
        ])
        .spawn();
    let sh = wait_for_child(running.pid(), "sh");
    wait_until_caught(sh, &[Signal::SIGTERM, Signal::SIGUSR1]);
    send_signal(running.pid(), Signal::SIGUSR1);
    std::thread::sleep(Duration::from_millis(200));
    send_signal(running.pid(), Signal::SIGTERM);
    let out = running.wait();
    out.assert_code(143);
    assert_eq!(out.stdout_text(), "", "no signal reached the container");
    sb.assert_nothing_left();
}

#[test]
fn init_forwards_sigterm_and_ends_at_once() {
    let sb = Sandbox::busybox();
    let running = sb.run(["--init", "--", "sleep", "30"]).spawn();
    let init = wait_for_child(running.pid(), "ocirun-init");
    wait_for_child(init, "sleep");
    let sent = Instant::now();
    send_signal(running.pid(), Signal::SIGTERM);
    running.wait().assert_code(143);
    assert!(
        sent.elapsed() < slack(Duration::from_secs(2)),
        "took {:?}",
        sent.elapsed()
    );
    sb.assert_nothing_left();
}

#[test]
fn under_init_the_command_has_the_signal_mask_it_has_without() {
    let sb = Sandbox::busybox();
    let script = "grep SigBlk /proc/self/status; trap 'echo caught TSTP' TSTP; kill -TSTP $$; \
                  echo after";
    for init in [&["--init"][..], &[]] {
        let mut args = init.to_vec();
        args.extend(["--", "sh", "-c", script]);
        sb.run(&args)
            .run()
            .assert_success("SigBlk:\t0000000000000000\ncaught TSTP\nafter\n");
    }
    sb.assert_nothing_left();
}

#[test]
fn init_is_pid_1_and_the_command_its_child() {
    let sb = Sandbox::busybox();
    let out = sb.run(["--init", "--", "ps", "-o", "pid,ppid,args"]).run();
    out.assert_code(0);
    let rows: Vec<Vec<&str>> = out
        .stdout_text()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0][..3],
        ["1", "0", "/run/ocirun-init"],
        "ps: {:?}",
        out.stdout_text()
    );
    assert!(
        rows.iter().any(|r| r[1] == "1" && r[2] == "ps"),
        "ps: {:?}",
        out.stdout_text()
    );
    sb.assert_nothing_left();
}

#[test]
fn init_leaves_no_zombie_after_the_children_are_killed() {
    let sb = Sandbox::busybox();
    let running = sb
        .run(["--init", "--", "sh", "-c", "sleep 100 & sleep 100 & wait"])
        .spawn();
    let init = wait_for_child(running.pid(), "ocirun-init");
    let sh = wait_for_child(init, "sh");
    let deadline = Instant::now() + slack(Duration::from_secs(10));
    let sleeps = loop {
        let sleeps = children_named(sh, "sleep");
        if sleeps.len() == 2 {
            break sleeps;
        }
        assert!(Instant::now() < deadline, "the two sleeps did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    for pid in &sleeps {
        send_signal(*pid, Signal::SIGKILL);
    }
    let out = running.wait();
    out.assert_code(0);
    let zombies: Vec<u32> = sleeps
        .iter()
        .copied()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
        })
        .collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
    sb.assert_nothing_left();
}

#[test]
fn gc_cleans_up_after_a_killed_ocirun() {
    let sb = Sandbox::busybox();
    let mut ocirun = sb
        .run(["--", "sleep", "30"])
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sleep = wait_for_child(ocirun.id(), "sleep");
    ocirun.kill().unwrap();
    ocirun.wait().unwrap();
    assert_eq!(
        records(sb.runroot()).len(),
        1,
        "the dead run's record is there"
    );
    assert!(
        ppid_and_comm(sleep).is_some(),
        "the container outlives its ocirun"
    );

    let out = sb.gc();
    assert_eq!(
        out.status.code(),
        Some(0),
        "gc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("removed container "), "gc said {said:?}");
    assert!(records(sb.runroot()).is_empty(), "no record left");
    let deadline = Instant::now() + slack(Duration::from_secs(5));
    while ppid_and_comm(sleep).is_some_and(|(_, c)| c == "sleep") {
        assert!(
            Instant::now() < deadline,
            "the container's process survived gc"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    sb.assert_nothing_left();
}

#[test]
fn twenty_runs_at_once_on_one_rootfs() {
    let sb = Sandbox::busybox();
    // Four in the emulated guest, where twenty would queue for two emulated CPUs.
    let runs: Vec<_> = (0..lighter_in_vm(20, 4))
        .map(|i| {
            sb.run(["--", "sh", "-c", &format!("sleep 0.5; echo run {i}")])
                .spawn()
        })
        .collect();
    for (i, running) in runs.into_iter().enumerate() {
        running.wait().assert_success(&format!("run {i}\n"));
    }
    sb.assert_nothing_left();
}

/// Open file descriptors, in any process, that point into `dir`.
fn fds_into(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for proc_entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if target.starts_with(dir) {
                    found.push(format!("{} -> {}", fd.path().display(), target.display()));
                }
            }
        }
    }
    found
}

/// The zombie processes on the machine, by pid, but for the children of the other test
/// binaries that `cargo xtask vm`'s guest runs beside this one (a test there may reap the
/// process it started a while after it exited): zombies whose parent runs another executable
/// of this binary's directory.
fn zombies() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let state = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .next()?
                .to_owned();
            (state == "Z" && !child_of_another_suite(pid)).then_some(pid)
        })
        .collect()
}

/// Whether the parent of `pid` runs another test binary of this one's directory.
fn child_of_another_suite(pid: u32) -> bool {
    let Some((ppid, _)) = ppid_and_comm(pid) else {
        return false;
    };
    let (Ok(me), Ok(parent)) = (
        std::env::current_exe(),
        std::fs::read_link(format!("/proc/{ppid}/exe")),
    ) else {
        return false;
    };
    parent != me && parent.parent() == me.parent()
}

/// `pid (comm), child of ppid (comm)` for each of `pids`, as far as /proc still tells.
fn describe(pids: &[u32]) -> Vec<String> {
    pids.iter()
        .map(|&pid| match ppid_and_comm(pid) {
            Some((ppid, comm)) => {
                let parent = ppid_and_comm(ppid).map_or_else(|| "?".to_owned(), |(_, c)| c);
                format!("{pid} ({comm}), child of {ppid} ({parent})")
            }
            None => format!("{pid} (gone)"),
        })
        .collect()
}

/// Zombies that are still there after `settle`: other tests' children are reaped within it,
/// a leaked zombie is not.
fn lasting_zombies(settle: Duration) -> Vec<u32> {
    let first = zombies();
    std::thread::sleep(settle);
    let again = zombies();
    first
        .into_iter()
        .filter(|pid| again.contains(pid))
        .collect()
}

#[test]
fn five_hundred_runs_in_a_row_leave_nothing() {
    let sb = Sandbox::busybox();
    let fds_before = fds_into(sb.scratch());
    let zombies_before = lasting_zombies(Duration::from_secs(1));
    // Twenty in the emulated guest, where a run costs about a second.
    for i in 0..lighter_in_vm(500, 20) {
        let out = sb.run(["--", "true"]).run();
        assert_eq!(out.code, 0, "run {i}: {}", out.stderr);
    }
    assert_eq!(
        fds_into(sb.scratch()),
        fds_before,
        "file descriptors into the sandbox"
    );
    let new_zombies: Vec<u32> = lasting_zombies(Duration::from_secs(1))
        .into_iter()
        .filter(|pid| !zombies_before.contains(pid))
        .collect();
    assert!(
        new_zombies.is_empty(),
        "zombies left: {:?}",
        describe(&new_zombies)
    );
    let runtime_state: Vec<_> = std::fs::read_dir(sb.runroot().join("runtime"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(runtime_state.is_empty(), "runtime state: {runtime_state:?}");
    assert!(records(sb.runroot()).is_empty());
    sb.assert_nothing_left();
}

#[test]
fn two_runs_cannot_share_a_name() {
    let sb = Sandbox::busybox();
    let first = sb.run(["--name", "n1", "--", "sleep", "2"]).spawn();
    wait_for_child(first.pid(), "sleep");
    let second = sb.run(["--name", "n1", "--", "echo", "second"]).run();
    second.assert_failure(
        125,
        &format!(
            "container name \"n1\" is in use by the ocirun process {}",
            first.pid()
        ),
    );
    first.wait().assert_code(0);
    sb.run(["--name", "n1", "--", "echo", "again"])
        .run()
        .assert_success("again\n");
    sb.run(["--name", "../bad", "--", "true"])
        .run()
        .assert_failure(125, "invalid container name \"../bad\"");
    sb.assert_nothing_left();
}

#[test]
fn a_name_is_held_for_every_run_root_of_one_root() {
    let sb = Sandbox::busybox();
    let other = sb.scratch().join("other-runroot");
    let in_other = |words: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--runroot".into(),
            other.clone().into(),
            "--root".into(),
            sb.root().into(),
            "run".into(),
            "--rootfs".into(),
            sb.rootfs().into(),
        ];
        args.extend(words.iter().map(Into::into));
        ocirun_e2e::Ocirun::new(args).run()
    };
    let first = sb.run(["--name", "n1", "--", "sleep", "2"]).spawn();
    wait_for_child(first.pid(), "sleep");
    in_other(&["--name", "n1", "--", "echo", "second"]).assert_failure(
        125,
        &format!(
            "container name \"n1\" is in use by the ocirun process {}",
            first.pid()
        ),
    );
    first.wait().assert_code(0);
    in_other(&["--name", "n1", "--", "echo", "again"]).assert_success("again\n");
    let names: Vec<_> = std::fs::read_dir(sb.root().join("names"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "lock files left: {names:?}");
    assert!(ocirun_e2e::runtime_containers(&other).is_empty());
    assert_eq!(std::fs::read_dir(other.join("bundles")).unwrap().count(), 0);
    sb.assert_nothing_left();
}

#[test]
fn a_signal_at_any_moment_of_the_start_ends_the_run() {
    let sb = Sandbox::busybox();
    for delay_ms in [0, 5, 10, 20, 40, 80, 160] {
        let running = sb.run(["--", "sleep", "30"]).spawn();
        // From the moment ocirun blocks SIGTERM for its signalfd (before that, the signal's
        // default action ends ocirun before it has created anything).
        let deadline = Instant::now() + slack(Duration::from_secs(10));
        while status_mask(running.pid(), "SigBlk").is_none_or(|mask| mask & (1 << (15 - 1)) == 0) {
            assert!(Instant::now() < deadline, "ocirun never blocked SIGTERM");
            std::thread::sleep(Duration::from_micros(200));
        }
        // The start takes about eight times as long in the emulated guest: so do the delays.
        std::thread::sleep(Duration::from_millis(delay_ms) * lighter_in_vm(1, 8));
        let sent = Instant::now();
        send_signal(running.pid(), Signal::SIGTERM);
        let out = running.wait();
        assert_eq!(out.code, 143, "SIGTERM after {delay_ms} ms: {}", out.stderr);
        assert!(
            sent.elapsed() < slack(Duration::from_secs(5)),
            "SIGTERM after {delay_ms} ms took {:?}",
            sent.elapsed()
        );
    }
    sb.assert_nothing_left();
}

#[test]
fn a_hostname_that_would_inject_lines_is_refused() {
    let sb = Sandbox::busybox();
    sb.run(["--hostname", "x\n6.6.6.6 example.com", "--", "true"]).run().assert_failure(
        125,
        "invalid hostname \"x\\n6.6.6.6 example.com\": contains whitespace or a control character",
    );
    sb.assert_nothing_left();
}

/// The container's stdout is the pipe: when its reader exits, the command's next write gets
/// SIGPIPE, and the container ends. The command restores SIGPIPE's default action itself
/// (GNU `env --default-signal=PIPE`, in the Debian rootfs), as a runtime may start it with
/// SIGPIPE ignored (youki 0.7 does; see "Runtimes" in docs/ocirun-run.md).
#[test]
fn a_reader_that_goes_away_ends_the_container_as_in_a_pipeline() {
    let sb = Sandbox::debian();
    let pipeline = format!(
        "{} --runroot {} --root {} run --rootfs {} -- sh -c 'env --default-signal=PIPE yes; echo \"yes exited $?\" >&2' | head -n 1",
        ocirun_bin().display(),
        sb.runroot().display(),
        sb.root().display(),
        sb.rootfs().display()
    );
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["30", "sh", "-c", &pipeline])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "y\n");
    assert_eq!(out.status.code(), Some(0), "the pipeline ended by itself");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("yes exited 141"),
        "yes got SIGPIPE: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < slack(Duration::from_secs(20)));
    sb.assert_nothing_left();
}
