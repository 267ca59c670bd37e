//! A broken runtime, signals at every moment, and what a run that could not finish leaves for
//! `ocirun gc`: nothing hangs ocirun, no signal ends it with its container running, and
//! whatever is left is found again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use ocirun_e2e::{
    runtime, runtime_containers, script, send_signal, slack, status_mask, wait_for_child, Sandbox,
};

/// A runtime that runs the runtime under test, but on the subcommand `phase` (with `--force`
/// too for delete) writes its pid to `DIR/hung` and sleeps while `DIR/hang` exists.
fn hanging_runtime(dir: &Path, phase: &str) -> PathBuf {
    std::fs::write(dir.join("hang"), "").unwrap();
    script(
        dir,
        "hanging-runtime",
        &format!(
            "for a in \"$@\"; do\n  if [ \"$a\" = {phase} ] && [ -e {dir}/hang ]; then\n    \
             echo $$ > {dir}/hung.tmp && mv {dir}/hung.tmp {dir}/hung\n    exec sleep 1000\n  \
             fi\ndone\nexec {runtime} \"$@\"\n",
            dir = dir.display(),
            runtime = runtime().display()
        ),
    )
}

/// Waits for `path` to hold a pid and returns it.
fn wait_for_pid_file(path: &Path) -> i32 {
    let deadline = Instant::now() + slack(Duration::from_secs(20));
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

#[test]
fn sigterm_ends_a_run_whose_runtime_hangs_within_a_second() {
    // A run without a terminal calls run and delete; one with a terminal create, start and
    // delete.
    for (phase, flags) in [
        ("run", &[][..]),
        ("create", &["-t"][..]),
        ("start", &["-t"][..]),
        ("delete", &[][..]),
    ] {
        let sb = Sandbox::busybox();
        let dir = sb.scratch().join(phase);
        std::fs::create_dir(&dir).unwrap();
        let runtime = hanging_runtime(&dir, phase);
        let mut args = vec!["--runtime", runtime.to_str().unwrap()];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "true"]);
        let running = sb.run(args).spawn();
        let hung = wait_for_pid_file(&dir.join("hung"));
        let sent = Instant::now();
        send_signal(running.pid(), Signal::SIGTERM);
        let out = running.wait();
        let took = sent.elapsed();
        assert_eq!(out.code, 143, "{phase}: {}", out.stderr);
        assert!(
            took < slack(Duration::from_secs(1)),
            "{phase}: took {took:?}"
        );
        assert!(!alive(hung), "{phase}: the hung runtime {hung} still runs");
        assert_eq!(out.stdout_text(), "");
        if phase == "delete" {
            // The container could not be deleted: the run says so and leaves it for gc.
            assert!(
                out.stderr
                    .contains("interrupted by SIGTERM during hanging-runtime delete")
                    && out.stderr.contains("`ocirun gc` removes it"),
                "{}",
                out.stderr
            );
            std::fs::remove_file(dir.join("hang")).unwrap();
            let gc = sb.gc();
            assert_eq!(gc.status.code(), Some(0), "{gc:?}");
            assert!(String::from_utf8_lossy(&gc.stdout).contains("removed container"));
        } else {
            assert_eq!(
                out.stderr,
                format!("ocirun: interrupted by SIGTERM during hanging-runtime {phase}\n")
            );
        }
        sb.assert_nothing_left();
    }
}

#[test]
fn a_runtime_that_floods_stderr_and_fails_to_start_the_container_is_reported() {
    let sb = Sandbox::busybox();
    let runtime = script(
        sb.scratch(),
        "flooding-runtime",
        &format!(
            "case \" $* \" in *\" run \"*) head -c 3000000 /dev/zero | tr '\\0' x >&2; echo >&2; \
             echo 'the last line' >&2; exit 1;; esac\nexec {} \"$@\"\n",
            runtime().display()
        ),
    );
    let started = Instant::now();
    let out = sb
        .run(["--runtime", runtime.to_str().unwrap(), "--", "true"])
        .run();
    out.assert_failure(125, "flooding-runtime run failed: the last line");
    assert!(
        started.elapsed() < slack(Duration::from_secs(10)),
        "took {:?}",
        started.elapsed()
    );
    sb.assert_nothing_left();
}

#[test]
fn other_signals_never_end_ocirun_while_its_container_runs() {
    let sb = Sandbox::busybox();
    let running = sb.run(["--", "sleep", "2"]).spawn();
    wait_for_child(running.pid(), "sleep");
    for signal in [
        Signal::SIGALRM,
        Signal::SIGVTALRM,
        Signal::SIGPROF,
        Signal::SIGXCPU,
        Signal::SIGPWR,
    ] {
        send_signal(running.pid(), signal);
    }
    // A real-time signal, which nix cannot name: kill(1) sends it.
    let rt = std::process::Command::new("kill")
        .args(["-s", "RTMIN+3", &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(rt.success());
    // The kernel drops each for the container's init, which has no handler: the sleep ends
    // on its own and the run with it.
    running.wait().assert_success("");
    sb.assert_nothing_left();
}

#[test]
fn a_signal_sent_in_the_first_milliseconds_reaches_the_commands_trap() {
    let sb = Sandbox::busybox();
    let running = sb
        .run([
            "--",
            "sh",
            "-c",
            "trap 'echo got USR1; exit 0' USR1; sleep 5 & wait; echo no signal",
        ])
        .spawn();
    // As soon as ocirun blocks the signal for its signalfd: before the container exists.
    let deadline = Instant::now() + slack(Duration::from_secs(10));
    while status_mask(running.pid(), "SigBlk").is_none_or(|mask| mask & (1 << (10 - 1)) == 0) {
        assert!(Instant::now() < deadline, "ocirun never blocked SIGUSR1");
        std::thread::sleep(Duration::from_micros(200));
    }
    send_signal(running.pid(), Signal::SIGUSR1);
    running.wait().assert_success("got USR1\n");
    sb.assert_nothing_left();
}

#[test]
fn a_failed_delete_keeps_the_record_and_gc_reports_what_it_cannot_remove() {
    let sb = Sandbox::busybox();
    let refuse = sb.scratch().join("refuse");
    std::fs::write(&refuse, "").unwrap();
    let runtime = script(
        sb.scratch(),
        "refusing-runtime",
        &format!(
            "case \"$*\" in *delete*) if [ -e {} ]; then echo 'delete refused' >&2; exit 1; fi;; \
             esac\nexec {} \"$@\"\n",
            refuse.display(),
            runtime().display()
        ),
    );
    let out = sb
        .run(["--runtime", runtime.to_str().unwrap(), "--", "echo", "ran"])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "ran\n");
    assert!(
        out.stderr
            .contains("could not be deleted (refusing-runtime delete failed: delete refused)"),
        "{}",
        out.stderr
    );
    let records = || -> Vec<String> {
        std::fs::read_dir(sb.runroot().join("records"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(records().len(), 1, "the record stays for gc");
    assert_eq!(runtime_containers(sb.runroot()).len(), 1);

    let gc = sb.gc();
    assert_eq!(gc.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&gc.stderr);
    assert!(
        stderr.contains("cannot remove container") && stderr.contains("delete refused"),
        "{stderr}"
    );
    assert_eq!(records().len(), 1, "still there after a failed gc");

    std::fs::remove_file(&refuse).unwrap();
    let gc = sb.gc();
    assert_eq!(gc.status.code(), Some(0), "{gc:?}");
    assert!(String::from_utf8_lossy(&gc.stdout).contains("removed container"));
    assert!(records().is_empty());
    sb.assert_nothing_left();
}

#[test]
fn gc_counts_a_killed_but_unreaped_ocirun_as_dead() {
    let sb = Sandbox::busybox();
    let running = sb.run(["--", "sleep", "60"]).spawn();
    let sleep = wait_for_child(running.pid(), "sleep");
    send_signal(running.pid(), Signal::SIGKILL);
    // The test process, ocirun's parent, has not reaped it: a zombie.
    let deadline = Instant::now() + slack(Duration::from_secs(5));
    while std::fs::read_to_string(format!("/proc/{}/stat", running.pid()))
        .is_ok_and(|stat| !stat.contains(") Z "))
    {
        assert!(Instant::now() < deadline, "ocirun did not die");
        std::thread::sleep(Duration::from_millis(5));
    }
    let gc = sb.gc();
    assert_eq!(gc.status.code(), Some(0), "{gc:?}");
    assert!(String::from_utf8_lossy(&gc.stdout).contains("removed container"));
    assert!(!alive(sleep as i32), "the container's process is gone");
    // Reaped when dropped.
    drop(running);
    sb.assert_nothing_left();
}

#[test]
fn names_leave_no_lock_files() {
    let sb = Sandbox::busybox();
    for i in 0..3 {
        sb.run(["--name", &format!("n{i}"), "--", "true"])
            .run()
            .assert_success("");
    }
    let names = sb.root().join("names");
    let left: Vec<_> = std::fs::read_dir(&names)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    sb.assert_nothing_left();
}

#[test]
fn what_a_runtime_leaves_running_ends_with_the_run() {
    // A runtime whose run leaves two processes behind: one in its process group, one in a
    // session of its own; both are reparented to ocirun, the subreaper.
    let sb = Sandbox::busybox();
    let dir = sb.scratch().to_path_buf();
    let runtime = script(
        &dir,
        "leaving-runtime",
        &format!(
            "case \" $* \" in *\" run \"*)\n  (sleep 300 </dev/null >/dev/null 2>&1 & echo $! > \
             {dir}/group.pid)\n  (setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > \
             {dir}/session.pid);;\nesac\nexec {runtime} \"$@\"\n",
            dir = dir.display(),
            runtime = runtime().display()
        ),
    );
    let out = sb
        .run(["--runtime", runtime.to_str().unwrap(), "--", "echo", "hi"])
        .run();
    out.assert_success("hi\n");
    for name in ["group.pid", "session.pid"] {
        let pid = wait_for_pid_file(&dir.join(name));
        assert!(
            !alive(pid),
            "{name}: process {pid} still runs after the run"
        );
    }
    sb.assert_nothing_left();
}

#[test]
fn a_pid_file_naming_another_process_is_refused_and_that_process_left_alone() {
    // The runtime runs the container, then writes the pid of an unrelated process (a child of
    // the test) into its pid file.
    let sb = Sandbox::busybox();
    let mut decoy = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let runtime = script(
        sb.scratch(),
        "lying-runtime",
        &format!(
            "case \" $* \" in *\" run \"*)\n  pf=; prev=; for a in \"$@\"; do [ \"$prev\" = \
             --pid-file ] && pf=$a; prev=$a; done\n  {runtime} \"$@\"; rc=$?; echo {decoy} > \
             \"$pf\"; exit $rc;;\nesac\nexec {runtime} \"$@\"\n",
            runtime = runtime().display(),
            decoy = decoy.id()
        ),
    );
    let out = sb
        .run(["--runtime", runtime.to_str().unwrap(), "--", "sleep", "300"])
        .run();
    out.assert_failure(
        125,
        &format!(
            "the runtime's pid file names process {}, a child of process {}, not of ocirun: \
             not the container's process",
            decoy.id(),
            std::process::id()
        ),
    );
    assert!(alive(decoy.id() as i32), "the decoy was signalled");
    decoy.kill().unwrap();
    decoy.wait().unwrap();
    sb.assert_nothing_left();
}
