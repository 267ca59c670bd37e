//! Unit tests that need a process of their own (a subreaper, or calls that kill every new
//! child of the process): the test binary runs itself again with one test selected.

/// Runs the test `name` (its full path, `module::tests::test`) in a child process of this test
/// binary with the environment `env` added, and fails if it fails. The child's own report is
/// captured, not counted with this binary's tests; the test in the child does nothing unless
/// it finds its variable in `env`.
pub(crate) fn run_in_child(name: &str, env: &[(&str, &std::ffi::OsStr)]) {
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.args(["--exact", name, "--nocapture"]);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let status = cmd.output().unwrap();
    assert!(
        status.status.success(),
        "{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
}
