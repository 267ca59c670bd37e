//! Cgroups: the container sees the cgroup version of the machine it runs on, and its resource
//! limits are in its cgroup files. `cargo xtask vm` runs these on cgroup v1 and on v2, and
//! sets `OCIRUN_E2E_CGROUP` to the version it set up, so that these tests also check the guest.

use ocirun_e2e::{cgroup_version, CgroupVersion, Sandbox};

/// Prints `v2` when the container's /sys/fs/cgroup is a cgroup2 tree (it has
/// `cgroup.controllers`), else `v1` (runc's tmpfs with one directory per controller).
const PRINT_VERSION: &str =
    "if [ -e /sys/fs/cgroup/cgroup.controllers ]; then echo v2; else echo v1; fi";

/// Whether `OCIRUN_E2E_FLIP=1` asks for the deliberate failure.
fn flipped() -> bool {
    std::env::var_os("OCIRUN_E2E_FLIP").is_some_and(|v| v == "1")
}

#[test]
fn cgroup_version_is_the_expected_one() {
    let expected = cgroup_version();
    // OCIRUN_E2E_FLIP=1 turns this assertion around, so that this test fails on purpose: it
    // shows how `cargo xtask vm` (and `cargo xtask e2e`) report a failed test.
    let expected = if flipped() {
        expected.other()
    } else {
        expected
    };
    let sb = Sandbox::busybox();
    let out = sb.run(["sh", "-c", PRINT_VERSION]).run();
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        format!("{}\n", expected.name()),
        "the container's /sys/fs/cgroup is not cgroup {}{}; stderr: {:?}",
        expected.name(),
        if flipped() {
            " (OCIRUN_E2E_FLIP=1: this failure is deliberate)"
        } else {
            ""
        },
        out.stderr
    );
    sb.assert_nothing_left();
}

#[test]
fn memory_limit_is_in_the_cgroup_file() {
    // cgroup v1: the memory controller's own hierarchy; v2: memory.max in the unified tree.
    let file = match cgroup_version() {
        CgroupVersion::V1 => "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        CgroupVersion::V2 => "/sys/fs/cgroup/memory.max",
    };
    let sb = Sandbox::busybox();
    let out = sb.run(["--memory", "64m", "--", "cat", file]).run();
    assert!(
        !(out.code == 125 && out.stderr.contains("'--memory'")),
        "ocirun run does not accept --memory: {:?}",
        out.stderr
    );
    // 64m is 64 MiB: 67108864 bytes.
    out.assert_success("67108864\n");
    sb.assert_nothing_left();
}

/// Without root, a memory limit needs a cgroup the user may write. cgroup v1 delegates none: the
/// flag is refused, naming it. On cgroup v2, the test delegates a subtree to the test user as
/// systemd's `Delegate=yes` does (the directory and its `cgroup.procs`,
/// `cgroup.subtree_control` and `cgroup.threads` are the user's, `memory` and `pids` enabled for
/// its children) and starts ocirun in a child of it: the container's cgroup is made in the
/// subtree, and the limit is in its `memory.max`.
#[test]
fn a_memory_limit_without_root_needs_a_delegated_cgroup() {
    use std::os::unix::fs::chown;
    let sb = Sandbox::busybox_as_user();
    let user = ocirun_e2e::test_user();
    match cgroup_version() {
        CgroupVersion::V1 => {
            let out = sb.run(["-m", "64m", "--", "true"]).run();
            out.assert_failure(
                125,
                "--memory cannot be used here: ocirun runs without root, and cgroup v1 \
                 delegates no cgroup to a user",
            );
        }
        CgroupVersion::V2 => {
            let root = std::path::Path::new("/sys/fs/cgroup");
            let delegated = root.join(format!("ocirun-e2e-{}", std::process::id()));
            let session = delegated.join("session");
            std::fs::write(root.join("cgroup.subtree_control"), "+memory +pids")
                .expect("enable memory and pids below the root cgroup");
            std::fs::create_dir(&delegated).unwrap();
            std::fs::write(delegated.join("cgroup.subtree_control"), "+memory +pids")
                .expect("enable memory and pids for the delegated subtree's children");
            std::fs::create_dir(&session).unwrap();
            for p in [
                delegated.clone(),
                delegated.join("cgroup.procs"),
                delegated.join("cgroup.subtree_control"),
                delegated.join("cgroup.threads"),
                session.clone(),
                session.join("cgroup.procs"),
            ] {
                chown(&p, Some(user.uid), Some(user.gid)).unwrap();
            }
            // Root moves the shell into the session, then it becomes the user and ocirun.
            let script = format!(
                "echo $$ > {}/cgroup.procs && exec setpriv --reuid={} --regid={} \
                 --clear-groups \"$@\"",
                session.display(),
                user.uid,
                user.gid
            );
            let out = std::process::Command::new("sh")
                .args(["-c", &script, "sh"])
                .arg(ocirun_e2e::ocirun_bin())
                .arg("--runroot")
                .arg(sb.runroot())
                .arg("--root")
                .arg(sb.root())
                .args(["run", "--rootfs"])
                .arg(sb.rootfs())
                .args(["--network", "none", "-m", "64m", "--"])
                .args(["cat", "/sys/fs/cgroup/memory.max"])
                .env("HOME", &user.home)
                .env_remove("XDG_RUNTIME_DIR")
                .output()
                .unwrap();
            let _ = std::fs::remove_dir(&session);
            let left: Vec<_> = std::fs::read_dir(&delegated)
                .unwrap()
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name())
                .collect();
            let _ = std::fs::remove_dir(&delegated);
            assert_eq!(
                (
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                    out.status.code()
                ),
                ("67108864\n".to_owned(), String::new(), Some(0))
            );
            assert!(left.is_empty(), "cgroups left in the subtree: {left:?}");
        }
    }
    sb.assert_nothing_left();
}
