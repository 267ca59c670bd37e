//! `Supervisor::run` (one `run --detach`) and `Supervisor::run_in_steps` (`create`, the
//! caller's step, `start`) against a stand-in runtime: a shell script that takes runc's
//! command line, logs each subcommand, and starts `sh` as the container's process (on `create`
//! one that waits for `start`). This test binary is the container's subreaper, so it holds a
//! single test; the end-to-end suite runs real runtimes.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use ocirun_runtime_driver::{
    set_child_subreaper, Bundle, ContainerId, ContainerIo, CreateStdio, ExitStatus, Runtime,
    Supervisor,
};

const STAND_IN: &str = r#"#!/bin/sh
while [ "${1#--}" != "$1" ]; do [ "$1" = --root ] && root=$2; shift 2; done
cmd=$1; shift
echo "$cmd" >>"$root/calls"
case $cmd in
run)    while [ $# -gt 1 ]; do [ "$1" = --pid-file ] && pid=$2; shift; done
        echo "a warning of the runtime's own" >&2
        sh -c 'sleep 0.1; exit 3' & echo $! >"$pid" ;;
create) while [ $# -gt 1 ]; do [ "$1" = --pid-file ] && pid=$2; shift; done
        mkfifo "$root/$1.start"
        sh -c "read go <'$root/$1.start'; exit 4" & echo $! >"$pid" ;;
start)  echo go >"$root/$1.start" ;;
delete) [ "$1" = --force ] && shift; rm -f "$root/$1.start" ;;
esac
"#;

fn stdio() -> (ContainerIo, std::io::PipeReader) {
    let (stdout_reader, stdout) = std::io::pipe().unwrap();
    drop(stdout_reader);
    let (stderr_reader, stderr) = std::io::pipe().unwrap();
    let stdin = std::fs::File::open("/dev/null").unwrap();
    // The non-blocking reader that the driver reads the runtime's own messages from.
    let error_reader = OwnedFd::from(stderr_reader.try_clone().unwrap());
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    fcntl(&error_reader, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    let io = ContainerIo::Fds(CreateStdio {
        stdin: OwnedFd::from(stdin),
        stdout: OwnedFd::from(stdout),
        stderr: OwnedFd::from(stderr),
        error_reader: Some(error_reader),
    });
    (io, stderr_reader)
}

fn calls(root: &Path) -> String {
    std::fs::read_to_string(root.join("calls")).unwrap_or_default()
}

#[test]
fn run_detached_and_in_steps() {
    set_child_subreaper().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stand_in = dir.path().join("stand-in-runc");
    std::fs::write(&stand_in, STAND_IN).unwrap();
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("state");
    std::fs::create_dir(&root).unwrap();
    let runtime = Runtime::from_parts(&stand_in, &root);
    let supervisor = Supervisor::new(&runtime);

    // One runtime process to start: run --detach; what the runtime itself wrote to the
    // container's stderr before it returned is handed to the caller.
    let id = ContainerId::random().unwrap();
    let bundle = Bundle::create(&dir.path().join("bundles"), &id).unwrap();
    bundle.write_config(b"{}").unwrap();
    let (io, mut stderr) = stdio();
    let finished = supervisor
        .run(&id, &bundle, io, None, |started| started.early_stderr)
        .unwrap();
    assert!(matches!(finished.status, ExitStatus::Exited(3)));
    assert_eq!(
        String::from_utf8_lossy(&finished.alongside),
        "a warning of the runtime's own\n"
    );
    assert!(finished.left.is_none());
    assert_eq!(calls(&root), "run\ndelete\n");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "the early output is not in the pipe twice");
    drop(bundle);

    // create, the caller's step between create and start, start.
    std::fs::remove_file(root.join("calls")).unwrap();
    let id = ContainerId::random().unwrap();
    let bundle = Bundle::create(&dir.path().join("bundles"), &id).unwrap();
    bundle.write_config(b"{}").unwrap();
    let (io, _stderr) = stdio();
    let finished = supervisor
        .run_in_steps(
            &id,
            &bundle,
            io,
            None,
            || calls(&root),
            |before_start, started| (before_start, started.early_stderr),
        )
        .unwrap();
    assert!(matches!(finished.status, ExitStatus::Exited(4)));
    assert_eq!(finished.alongside, ("create\n".to_owned(), Vec::new()));
    assert!(finished.left.is_none());
    assert_eq!(calls(&root), "create\nstart\ndelete\n");

    // A runtime whose run hangs is killed, with what it started, once the launch timeout has
    // passed, and the container is deleted.
    let hanging = dir.path().join("hanging-runc");
    std::fs::write(
        &hanging,
        STAND_IN.replace(
            "run)    while",
            "run)    sleep 1000 & echo $! >\"$root/sleeper\"; wait; while",
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hanging, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_file(root.join("calls")).unwrap();
    let runtime = Runtime::from_parts(&hanging, &root).with_launch_timeout(Duration::from_secs(1));
    let id = ContainerId::random().unwrap();
    let bundle = Bundle::create(&dir.path().join("bundles"), &id).unwrap();
    bundle.write_config(b"{}").unwrap();
    let (io, _stderr) = stdio();
    let started = Instant::now();
    let error = Supervisor::new(&runtime)
        .run(&id, &bundle, io, None, |_| ())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "hanging-runc run did not end within 1 s: killed"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls(&root), "run\ndelete\n");
    let sleeper = std::fs::read_to_string(root.join("sleeper")).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", sleeper.trim())).exists(),
        "the runtime's child {} still runs",
        sleeper.trim()
    );
}
