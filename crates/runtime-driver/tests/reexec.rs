//! The re-exec helper end to end: this test binary is the program that re-executes itself.
//! It runs `sh -c 'exit 7'` with real runc in a static-busybox rootfs, so it needs root, runc
//! and /bin/busybox (Debian's busybox-static), as the project's CI has; without them it fails
//! saying so.

use std::os::unix::fs::symlink;

use nix::sys::resource::{getrlimit, Resource};
use ocirun_runtime_driver::reexec::{self, Job};
use ocirun_runtime_driver::{new_container_id, Bundle};
use ocirun_spec_gen::{to_json, HostFacts, RunOptions, SpecGenerator};

fn main() {
    reexec::init();
    assert!(
        nix::unistd::geteuid().is_root(),
        "reexec test: runs containers, needs root"
    );
    let runc = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("reexec test: runc is not installed (apt-get install runc)");
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::create_dir(rootfs.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.path().join("bin/busybox"))
        .expect("reexec test: /bin/busybox (busybox-static) is needed");
    symlink("busybox", rootfs.path().join("bin/sh")).unwrap();

    let state = tempfile::tempdir().unwrap();
    let id = new_container_id().unwrap();
    let bundle = Bundle::create(&state.path().join("bundles"), &id).unwrap();
    let options = RunOptions::new(vec!["sh".into(), "-c".into(), "exit 7".into()]);
    let mut host = HostFacts::default();
    host.nofile_hard = getrlimit(Resource::RLIMIT_NOFILE).unwrap().1;
    host.nproc_hard = getrlimit(Resource::RLIMIT_NPROC).unwrap().1;
    let spec = SpecGenerator::new(rootfs.path(), &id, &options)
        .host(&host)
        .generate()
        .unwrap();
    bundle
        .write_config(to_json(&spec).unwrap().as_bytes())
        .unwrap();

    let job = Job {
        runtime: runc.into(),
        runtime_root: state.path().join("runc"),
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
    let listed = std::process::Command::new(runc)
        .arg("--root")
        .arg(state.path().join("runc"))
        .args(["list", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "",
        "the child deleted the container"
    );
    println!("reexec: 1 passed, 0 failed");
}
