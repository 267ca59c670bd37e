//! `ocirun spec`: prints the config.json that `run` would hand the runtime, which the runtime
//! accepts as it is, and touches nothing.

use std::path::Path;
use std::process::{Command, Stdio};

use ocirun_e2e::{runtime, runtime_containers, slack, Sandbox, TreeSnapshot};
use serde_json::Value;

#[test]
fn spec_is_accepted_by_the_runtime_and_writes_nothing() {
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

    // A bundle: the JSON as config.json, plus the files its relative bind mounts name.
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

    // The runtime under test creates, starts and deletes a container from it (in the bundle,
    // where youki looks for relative sources too). This process is no subreaper: the
    // container's state says when it has stopped. The runtime's output goes to a file, which
    // the container inherits as its stdio and holds open.
    let state = sb.scratch().join("runtime-state");
    let id = format!("ocirun-e2e-spec-{}", std::process::id());
    let output = sb.scratch().join("runtime-output");
    let call = |args: &[&str]| {
        let file = std::fs::File::create(&output).unwrap();
        let status = Command::new(runtime())
            .arg("--root")
            .arg(&state)
            .args(args)
            .current_dir(&bundle)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .status()
            .expect("cannot run the runtime");
        std::process::Output {
            status,
            stdout: std::fs::read(&output).unwrap_or_default(),
            stderr: Vec::new(),
        }
    };
    let bundle_arg = bundle.to_str().unwrap();
    let steps = [
        call(&["create", "--bundle", bundle_arg, &id]),
        call(&["start", &id]),
    ];
    let deadline = std::time::Instant::now() + slack(std::time::Duration::from_secs(10));
    let mut status = String::new();
    while std::time::Instant::now() < deadline {
        let out = call(&["state", &id]);
        status = serde_json::from_slice::<Value>(&out.stdout)
            .map(|state| state["status"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        if status == "stopped" || !out.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let deleted = call(&["delete", "--force", &id]);
    for (step, out) in ["create", "start"].iter().zip(&steps) {
        assert!(
            out.status.success(),
            "{step} of ocirun's spec failed: {}; output: {:?}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
        );
    }
    assert_eq!(status, "stopped", "the container's `true` ended");
    assert!(deleted.status.success(), "delete: {deleted:?}");
    // The runtime itself created the missing mount targets in the rootfs; that is its business.
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
    for subcommand in ["spec", "run"] {
        sb.ocirun(subcommand, ["--name", "a b", "--", "true"])
            .run()
            .assert_failure(125, "invalid container name \"a b\"");
    }
    assert!(!sb.runroot().exists());
    sb.assert_nothing_left();
}

/// A runtime that copies the bundle's `config.json` (on `create` or `run`, which name it) to
/// `copy`, then runs the runtime under test.
fn copying_runtime(dir: &Path, copy: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("copying-runtime");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprev=\nfor a in \"$@\"; do\n  [ \"$prev\" = --bundle ] && cp \"$a/config.json\" '{}'\n  prev=$a\ndone\nexec '{}' \"$@\"\n",
            copy.display(),
            runtime().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// The JSON with the random container id (64 hex digits) and its first 12, the default
/// hostname, replaced by `<ID>` and `<ID12>`: the one part of a spec that differs between two
/// invocations.
fn without_id(json: &str) -> String {
    let bytes = json.as_bytes();
    let id = (0..bytes.len().saturating_sub(63)).find_map(|i| {
        let run = &bytes[i..i + 64];
        let bounded = |j: usize| bytes.get(j).is_none_or(|b| !b.is_ascii_hexdigit());
        (run.iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            && (i == 0 || bounded(i - 1))
            && bounded(i + 64))
        .then(|| String::from_utf8_lossy(run).into_owned())
    });
    let hostname = serde_json::from_str::<Value>(json).unwrap()["hostname"]
        .as_str()
        .map(str::to_owned);
    let mut out = json.to_owned();
    if let Some(id) = &id {
        out = out.replace(id.as_str(), "<ID>");
    }
    if let Some(h) = hostname.filter(|h| id.as_ref().is_none_or(|id| id.starts_with(h.as_str()))) {
        out = out.replace(&format!("\"{h}\""), "\"<ID12>\"");
        out = out.replace(&format!("HOSTNAME={h}\""), "HOSTNAME=<ID12>\"");
    }
    out
}

/// For flag sets like the spec generator's golden files, and the mounts, `--init` and image
/// config on top: the `config.json` that `run` hands the runtime is byte for byte what `spec`
/// prints (but for the random container id).
#[test]
fn run_hands_the_runtime_what_spec_prints() {
    let sb = Sandbox::busybox();
    let scratch = sb.scratch();
    let data = scratch.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(scratch.join("vars.env"), "A=from-file\nB=two words\n").unwrap();
    std::fs::write(
        scratch.join("deny-mkdir.json"),
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    std::fs::write(
        scratch.join("image.json"),
        r#"{"config":{"Env":["LANG=C.UTF-8"],"WorkingDir":"/srv/app","Volumes":{"/var/cache/app":{}}}}"#,
    )
    .unwrap();
    let copy = scratch.join("handed.json");
    let runtime = copying_runtime(scratch, &copy);
    let p = |path: &Path| path.display().to_string();
    let cases: Vec<Vec<String>> = vec![
        vec![],
        vec!["--user", "app", "--group-add", "wheel", "--env", "C=3"]
            .into_iter()
            .map(String::from)
            .chain(["--env-file".into(), p(&scratch.join("vars.env"))])
            .collect(),
        [
            "--cap-add",
            "SYS_ADMIN,net_admin",
            "--cap-drop",
            "CHOWN,NET_BIND_SERVICE",
        ]
        .map(String::from)
        .to_vec(),
        [
            "--ulimit",
            "core=0:-1",
            "--ulimit",
            "nofile=512:1024",
            "--ulimit",
            "nofile=256:1024",
        ]
        .map(String::from)
        .to_vec(),
        [
            "-m",
            "64m",
            "--memory-reservation",
            "32m",
            "--cpus",
            "1.5",
            "--cpu-shares",
            "512",
            "--pids-limit",
            "32",
            "--shm-size",
            "128m",
            "--device",
            "/dev/null:/dev/nothing:rw",
        ]
        .map(String::from)
        .to_vec(),
        vec![
            "--security-opt".into(),
            format!("seccomp={}", p(&scratch.join("deny-mkdir.json"))),
        ],
        [
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            "mask=/proc/cpuinfo",
            "--security-opt",
            "unmask=/proc/k*:/sys/firmware",
        ]
        .map(String::from)
        .to_vec(),
        [
            "--network",
            "none",
            "--pid",
            "host",
            "--ipc",
            "host",
            "--uts",
            "host",
        ]
        .map(String::from)
        .to_vec(),
        vec![
            "-v".into(),
            format!("{}:/data:ro,rslave", p(&data)),
            "--tmpfs".into(),
            "/scratch:size=1m".into(),
            "--mount".into(),
            "type=tmpfs,destination=/dev/shm,tmpfs-size=2m".into(),
            "--init".into(),
            "--add-host".into(),
            "db:192.0.2.7".into(),
            "--name".into(),
            format!("golden-{}", std::process::id()),
            "--config".into(),
            p(&scratch.join("image.json")),
            "--hostname".into(),
            "golden".into(),
        ],
        // The user's directory on /etc: no generated file is mounted below it.
        vec!["-v".into(), format!("{}:/etc", p(&data))],
    ];
    for flags in cases {
        let mut spec_flags = flags.clone();
        spec_flags.extend(["--".to_owned(), "true".to_owned()]);
        let printed = sb.ocirun("spec", &spec_flags).run();
        printed.assert_code(0);
        let mut run_flags = vec!["--runtime".to_owned(), p(&runtime)];
        run_flags.extend(flags.iter().cloned());
        run_flags.extend(["--".to_owned(), "true".to_owned()]);
        sb.run(&run_flags).run().assert_success("");
        let handed = std::fs::read_to_string(&copy).expect("the runtime got a config.json");
        assert_eq!(
            without_id(&handed),
            without_id(printed.stdout_text()),
            "flags {flags:?}"
        );
        std::fs::remove_file(&copy).unwrap();
    }
    // The named container's directory (its image-volume copy) is kept, as is the image's
    // working directory that the run created.
    let named = sb
        .root()
        .join(format!("containers/golden-{}", std::process::id()));
    assert!(named.join("volumes/var-cache-app").is_dir());
    std::fs::remove_dir_all(sb.root().join("containers")).unwrap();
    sb.assert_nothing_left_except(&["srv", "srv/app"]);
}
