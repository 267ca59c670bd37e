//! The re-exec helper end to end: this test binary is the program that re-executes itself.
//! The runtime is a stand-in for runc (a shell script that takes runc's command line and, on
//! `run --detach`, starts `sh -c 'sleep 0.1; exit 7'`), so the test runs as any user; the
//! end-to-end suite runs real runtimes.

use std::os::unix::fs::PermissionsExt;

use ocirun_runtime_driver::reexec::{self, Job};
use ocirun_runtime_driver::{Bundle, ContainerId, StateLayout};

const STAND_IN: &str = r#"#!/bin/sh
while [ "${1#--}" != "$1" ]; do [ "$1" = --root ] && root=$2; shift 2; done
cmd=$1; shift
case $cmd in
run)    while [ $# -gt 1 ]; do [ "$1" = --pid-file ] && pid=$2; shift; done
        mkdir -p "$root" && : >"$root/$1"
        sh -c 'sleep 0.1; exit 7' & echo $! >"$pid" ;;
delete) [ "$1" = --force ] && shift; rm -f "$root/$1" ;;
esac
"#;

fn main() {
    reexec::init();
    let dir = tempfile::tempdir().unwrap();
    let stand_in = dir.path().join("stand-in-runc");
    std::fs::write(&stand_in, STAND_IN).unwrap();
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();

    let layout = StateLayout::new(dir.path().join("run"), dir.path().join("lib"));
    let id = ContainerId::random().unwrap();
    let bundle = Bundle::create(&layout.bundles(), &id).unwrap();
    bundle.write_config(b"{}").unwrap();

    let job = Job {
        runtime: stand_in,
        runtime_root: layout.runtime_root(),
        runtime_flags: Vec::new(),
        container_id: id.clone(),
        bundle: bundle.path().to_path_buf(),
        sig_proxy: true,
        stop_timeout_secs: 10,
    };
    // This process is no subreaper: the child is.
    assert!(!nix::sys::prctl::get_child_subreaper().unwrap());
    let code = reexec::supervise_in_child(&job).unwrap();
    assert_eq!(
        code, 7,
        "the container's exit code comes back from the child"
    );
    let left: Vec<_> = std::fs::read_dir(layout.runtime_root())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "the child deleted the container: {left:?}");
    println!("reexec: 1 passed, 0 failed");
}
