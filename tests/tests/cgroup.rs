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
