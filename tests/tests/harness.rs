//! The support library checks itself: the leave-nothing check and the timeout guard must
//! catch what they are meant to catch, the fixture copy must be exact and the wait for a
//! trap must not return early, or every other test proves nothing.
//!
//! They run in parallel like the rest: the tmpfs that one of them mounts in the test process's
//! mount namespace is below its own sandbox, and the others look for new mounts only below
//! theirs.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use ocirun_e2e::{lighter_in_vm, runtime, runtime_containers, send_signal, Sandbox, TreeSnapshot};

/// Runs `f`, which must panic with a message containing `part`.
fn assert_panics_with(part: &str, f: impl FnOnce()) {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    let message = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    assert!(
        message.contains(part),
        "panic message {message:?} does not contain {part:?}"
    );
}

#[test]
fn a_file_left_in_the_rootfs_is_caught() {
    let sb = Sandbox::busybox();
    std::fs::write(sb.rootfs().join("etc/hosts"), "x").unwrap();
    assert_panics_with("left behind: etc/hosts", || sb.assert_nothing_left());
    // ... unless the test expects it.
    sb.assert_nothing_left_except(&["etc/hosts"]);
}

#[test]
fn a_changed_or_removed_file_is_caught() {
    let sb = Sandbox::busybox();
    std::fs::write(sb.rootfs().join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
    std::fs::remove_file(sb.rootfs().join("etc/group")).unwrap();
    assert_panics_with("changed: etc/passwd", || sb.assert_nothing_left());
    assert_panics_with("removed: etc/group", || sb.assert_nothing_left());
}

#[test]
fn an_expected_path_that_is_missing_is_caught() {
    let sb = Sandbox::busybox();
    assert_panics_with("expected but missing: new", || {
        sb.assert_nothing_left_except(&["new"]);
    });
}

#[test]
fn a_bundle_left_in_the_runroot_is_caught() {
    let sb = Sandbox::busybox();
    std::fs::create_dir_all(sb.runroot().join("bundles/abc")).unwrap();
    assert_panics_with("bundles in", || sb.assert_nothing_left());
}

#[test]
fn a_new_mount_is_caught() {
    let sb = Sandbox::busybox();
    let point = sb.scratch().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "e2e-selftest"])
        .arg(&point)
        .status()
        .expect("run mount");
    assert!(status.success(), "mount -t tmpfs failed");
    let result = catch_unwind(AssertUnwindSafe(|| sb.assert_nothing_left()));
    let _ = Command::new("umount").arg(&point).status();
    let err = result.expect_err("a new mount was not caught");
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("new mounts"), "{message}");
    sb.assert_nothing_left();
}

#[test]
fn a_container_left_in_the_runtime_state_is_caught_and_removed_on_drop() {
    let sb = Sandbox::busybox();
    // A container that ocirun did not make: `create` of the runtime under test on ocirun's
    // spec, in the runroot (run in the bundle, where the spec's relative sources are).
    let out = sb.ocirun("spec", ["--", "sleep", "60"]).run();
    out.assert_code(0);
    let bundle = sb.scratch().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("config.json"), &out.stdout).unwrap();
    for name in ["hosts", "hostname", "resolv.conf", "containerenv"] {
        std::fs::write(bundle.join(name), "").unwrap();
    }
    let runtime_root = sb.runroot().join("runtime");
    let status = Command::new(runtime())
        .arg("--root")
        .arg(&runtime_root)
        .args(["create", "--bundle"])
        .arg(&bundle)
        .arg("e2e-selftest")
        .current_dir(&bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the runtime's create");
    assert!(status.success(), "the runtime's create failed");
    assert_eq!(runtime_containers(sb.runroot()), ["e2e-selftest"]);
    assert!(
        !ocirun_e2e::processes_rooted_at(sb.rootfs()).is_empty(),
        "the created container's init is not seen as running in the rootfs"
    );
    assert_panics_with("containers in the runtime state", || {
        sb.assert_nothing_left_except(&["etc/hosts", "etc/hostname", "etc/resolv.conf"]);
    });
    let runroot = sb.runroot().to_owned();
    drop(sb);
    assert!(runtime_containers(&runroot).is_empty());
}

#[test]
fn a_hang_is_killed_and_fails_the_test() {
    let sb = Sandbox::busybox();
    assert_panics_with("did not finish within", || {
        sb.run(["--", "sleep", "60"])
            .timeout(lighter_in_vm(
                Duration::from_secs(2),
                Duration::from_secs(3),
            ))
            .run();
    });
    // The container of the killed ocirun was deleted; ocirun's own bundle may remain.
    assert!(runtime_containers(sb.runroot()).is_empty());
}

#[test]
fn a_copied_tree_keeps_types_modes_owners_and_times() {
    use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let file = src.join("sub/setuid");
    std::fs::write(&file, "#!/bin/sh\n").unwrap();
    lchown(&file, Some(1000), Some(1001)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4750)).unwrap();
    symlink("sub/setuid", src.join("link")).unwrap();
    lchown(src.join("link"), Some(5), Some(6)).unwrap();
    lchown(src.join("sub"), Some(12), Some(34)).unwrap();
    std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o710)).unwrap();
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let times = std::fs::FileTimes::new()
        .set_accessed(old)
        .set_modified(old);
    std::fs::File::open(&file)
        .unwrap()
        .set_times(times)
        .unwrap();

    let dst = dir.path().join("dst");
    ocirun_e2e::copy_tree(&src, &dst);
    let (before, after) = (TreeSnapshot::take(&src), TreeSnapshot::take(&dst));
    assert_eq!(after.differences(&before, &[]), Vec::<String>::new());
    assert_eq!(
        after.get("sub/setuid"),
        Some("file 10 bytes, mode 4750, owner 1000:1001")
    );
    assert_eq!(
        after.get("link"),
        Some("symlink -> sub/setuid, mode 777, owner 5:6")
    );
    assert_eq!(after.get("sub"), Some("dir, mode 710, owner 12:34"));
    let mtime = std::fs::metadata(dst.join("sub/setuid")).unwrap().mtime();
    assert_eq!(mtime, 1_000_000_000);
}

#[test]
fn wait_until_caught_returns_once_the_trap_is_set() {
    // The trap comes half a second after the start: a SIGTERM before it would kill sh (no
    // exit status); after it, sh exits 3.
    let mut sh = Command::new("sh")
        .args([
            "-c",
            "sleep 0.5; trap 'exit 3' TERM; while :; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    ocirun_e2e::wait_until_caught(sh.id(), &[Signal::SIGTERM]);
    send_signal(sh.id(), Signal::SIGTERM);
    assert_eq!(sh.wait().unwrap().code(), Some(3));
}
