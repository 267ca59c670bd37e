//! `ocirun spec`: prints the config.json that `run` would hand the runtime, which runc
//! accepts as it is, and touches nothing.

use std::path::Path;
use std::process::{Command, Stdio};

use ocirun_e2e::{runc, runtime_containers, Sandbox, TreeSnapshot};
use serde_json::Value;

#[test]
fn spec_is_accepted_by_runc_and_writes_nothing() {
    let sb = Sandbox::busybox();
    let out = sb.ocirun("spec", ["--", "true"]).run();
    out.assert_code(0);
    assert_eq!(out.stderr, "");

    // `spec` wrote nothing: no runroot, the rootfs as it was.
    assert!(
        !sb.runroot().exists(),
        "ocirun spec created its runroot {}",
        sb.runroot().display()
    );
    sb.assert_nothing_left();

    let spec: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ocirun spec printed no JSON ({e}): {}", out.stdout_text()));
    assert_eq!(spec["process"]["args"], serde_json::json!(["true"]));
    let root = spec["root"]["path"]
        .as_str()
        .expect("root.path is a string");
    assert!(Path::new(root).is_absolute(), "root.path {root:?}");
    assert_eq!(Path::new(root), sb.rootfs());

    // A bundle for runc: the JSON as config.json, plus the files its relative bind mounts name.
    let bundle = sb.scratch().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("config.json"), &out.stdout).unwrap();
    let relative_sources: Vec<&str> = spec["mounts"]
        .as_array()
        .expect("mounts is an array")
        .iter()
        .filter(|m| m["type"] == "bind")
        .filter_map(|m| m["source"].as_str())
        .filter(|s| !s.starts_with('/'))
        .collect();
    let mut names = relative_sources.clone();
    names.sort_unstable();
    assert_eq!(names, ["containerenv", "hostname", "hosts", "resolv.conf"]);
    for name in relative_sources {
        std::fs::write(bundle.join(name), format!("# {name} for the test\n")).unwrap();
    }

    let state = sb.scratch().join("runc-state");
    let id = format!("ocirun-e2e-spec-{}", std::process::id());
    let run = Command::new(runc())
        .arg("--root")
        .arg(&state)
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run runc");
    let list = Command::new(runc())
        .arg("--root")
        .arg(&state)
        .args(["list", "-q"])
        .output()
        .expect("cannot run runc list");
    if !String::from_utf8_lossy(&list.stdout).trim().is_empty() {
        let _ = Command::new(runc())
            .arg("--root")
            .arg(&state)
            .args(["delete", "--force", &id])
            .status();
    }
    assert!(
        run.status.success(),
        "runc run of ocirun's spec failed: {}; stdout: {:?}; stderr: {:?}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&list.stdout),
        "",
        "runc list after run"
    );
    // runc itself created the missing mount targets in the rootfs; that is runc's business.
    assert!(runtime_containers(sb.runroot()).is_empty());
}

#[test]
fn spec_is_deterministic_but_for_the_id() {
    let sb = Sandbox::busybox();
    let args = ["--hostname", "fixed", "--", "sh", "-c", "true"];
    let a = sb.ocirun("spec", args).run();
    let b = sb.ocirun("spec", args).run();
    a.assert_code(0);
    b.assert_code(0);
    assert_eq!(a.stdout_text(), b.stdout_text());
    let tree = TreeSnapshot::take(sb.rootfs());
    assert_eq!(Some(&tree), sb.tree_before());
    assert!(!sb.runroot().exists());
    sb.assert_nothing_left();
}

#[test]
fn spec_fails_like_run() {
    let sb = Sandbox::busybox();
    sb.ocirun("spec", ["--", "no-such-command"])
        .run()
        .assert_failure(127, "executable file not found in $PATH");
    sb.ocirun("spec", ["--user", "nobody-here", "--", "true"])
        .run()
        .assert_failure(125, "unknown user \"nobody-here\"");
    assert!(!sb.runroot().exists());
    sb.assert_nothing_left();
}
