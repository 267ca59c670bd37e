//! ocirun as a user other than root (docs/ocirun-run.md "Running without root"): the real
//! binary run as the test user that the harness makes (useradd, with ranges of its own in
//! /etc/subuid and /etc/subgid), against real runc, on rootfs copies whose owners are the ones
//! the user's namespace sees. Each test ends with nothing left: no container in the user's
//! runtime state, no bundle, no record, no process in the rootfs, the rootfs as it was.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use ocirun_e2e::pty::{wait_with_timeout, Pty};
use ocirun_e2e::{
    lighter_in_vm, ocirun_bin, runtime_containers, send_signal, slack, test_user, wait_for_child,
    Sandbox, TIMEOUT,
};

/// The files of the user's run state that are left: the runtime's containers, bundles and
/// records.
fn run_state(sb: &Sandbox) -> Vec<String> {
    let mut left = runtime_containers(sb.runroot());
    for dir in ["bundles", "records"] {
        if let Ok(entries) = std::fs::read_dir(sb.runroot().join(dir)) {
            for e in entries.flatten() {
                if e.file_name() != "names" {
                    left.push(format!("{dir}/{}", e.file_name().to_string_lossy()));
                }
            }
        }
    }
    left
}

/// Asserts that nothing is left: the sandbox's checks and the user's run state.
#[track_caller]
fn assert_clean(sb: &Sandbox) {
    assert_eq!(run_state(sb), Vec::<String>::new(), "the user's run state");
    sb.assert_nothing_left();
}

#[test]
fn root_in_the_container_is_the_user_and_1_up_its_subordinate_ids() {
    let sb = Sandbox::busybox_as_user();
    let u = test_user();
    let out = sb
        .run([
            "--",
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map /proc/self/gid_map",
        ])
        .run();
    let map = |id: u32, sub: u32| {
        format!(
            "{:>10} {:>10} {:>10}\n{:>10} {:>10} {:>10}\n",
            0, id, 1, 1, sub, 65536
        )
    };
    out.assert_success(&format!(
        "0\n{}{}",
        map(u.uid, u.subuid),
        map(u.gid, u.subgid)
    ));
    assert_clean(&sb);
}

#[test]
fn exit_codes_are_the_same_as_for_root() {
    let sb = Sandbox::busybox_as_user();
    sb.run(["--", "sh", "-c", "exit 42"]).run().assert_code(42);
    sb.run(["--", "/etc"])
        .run()
        .assert_failure(126, "\"/etc\": is a directory");
    sb.run(["--", "no-such-command"])
        .run()
        .assert_failure(127, "executable file not found in $PATH");
    sb.run(["--memory", "5x", "--", "true"])
        .run()
        .assert_failure(125, "invalid --memory \"5x\"");
    sb.run(["--no-such-flag", "--", "true"])
        .run()
        .assert_failure(125, "unexpected argument '--no-such-flag'");
    assert_clean(&sb);
}

#[test]
fn sigkill_of_the_init_gives_137_and_sigterm_to_ocirun_143() {
    let sb = Sandbox::busybox_as_user();
    let running = sb.run(["--", "sleep", "60"]).spawn();
    let sleep = wait_for_child(running.pid(), "sleep");
    send_signal(sleep, Signal::SIGKILL);
    running.wait().assert_code(137);

    let running = sb.run(["--", "sleep", "60"]).spawn();
    wait_for_child(running.pid(), "sleep");
    let sent = Instant::now();
    send_signal(running.pid(), Signal::SIGTERM);
    let out = running.wait();
    out.assert_code(143);
    assert!(
        sent.elapsed() < slack(Duration::from_secs(2)),
        "took {:?}",
        sent.elapsed()
    );
    assert_clean(&sb);
}

#[test]
fn stdio_is_relayed_complete_and_apart() {
    let sb = Sandbox::busybox_as_user();
    sb.run(["--", "sh"])
        .stdin("echo foo\n")
        .run()
        .assert_success("foo\n");
    let out = sb
        .run(["--", "sh", "-c", "echo out; echo err >&2; echo out2"])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "out\nout2\n");
    assert_eq!(out.stderr, "err\n");
    let mib: usize = lighter_in_vm(64, 8);
    let out = sb
        .run([
            "--",
            "sh",
            "-c",
            &format!("head -c {} /dev/zero", mib << 20),
        ])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout.len(), mib << 20);
    assert!(out.stdout.iter().all(|b| *b == 0));
    assert_clean(&sb);
}

#[test]
fn a_terminal_has_the_callers_size_and_follows_a_resize() {
    let sb = Sandbox::busybox_as_user();
    let u = test_user();
    let pty = Pty::open(40, 120);
    let script = "trap 'stty size' WINCH; trap 'exit 7' INT; stty size; echo ready; \
                  while :; do sleep 0.1; done";
    let mut args: Vec<OsString> = vec![
        "--runroot".into(),
        sb.runroot().into(),
        "--root".into(),
        sb.root().into(),
        "run".into(),
        "--rootfs".into(),
        sb.rootfs().into(),
    ];
    args.extend(["-t", "--", "sh", "-c", script].map(OsString::from));
    let mut ocirun = pty
        .command(ocirun_bin(), &args)
        .uid(u.uid)
        .gid(u.gid)
        .env("HOME", &u.home)
        .env_remove("XDG_RUNTIME_DIR")
        .spawn()
        .expect("cannot start ocirun on the terminal");
    let show = slack(Duration::from_secs(20));
    pty.wait_for("40 120\r\nready\r\n", show);
    // Until ocirun has put its terminal in raw mode, a resize may come before the trap.
    std::thread::sleep(slack(Duration::from_millis(300)));
    pty.resize(50, 100);
    pty.wait_for("ready\r\n50 100\r\n", show);
    pty.type_bytes(b"\x03");
    let status = wait_with_timeout(&mut ocirun, slack(TIMEOUT), "ocirun on a terminal");
    assert_eq!(status.code(), Some(7), "terminal: {:?}", pty.output_text());
    assert_clean(&sb);
}

#[test]
fn users_of_the_rootfs_are_subordinate_ids_on_the_host() {
    let sb = Sandbox::busybox_as_user();
    let u = test_user();
    sb.run(["--user", "app", "--", "id", "-u"])
        .run()
        .assert_success("1000\n");
    sb.run(["--", "touch", "/tmp/by-root"])
        .run()
        .assert_success("");
    sb.run(["--user", "app", "--", "touch", "/tmp/by-app"])
        .run()
        .assert_success("");
    let owner = |name: &str| {
        let m = std::fs::metadata(sb.rootfs().join("tmp").join(name)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("by-root"), (u.uid, u.gid));
    assert_eq!(owner("by-app"), (u.subuid + 999, u.subgid + 999));
    sb.assert_nothing_left_except(&["tmp/by-root", "tmp/by-app"]);
}

#[test]
fn init_image_volumes_and_secrets_work_without_root() {
    let sb = Sandbox::busybox_as_user_with(|root| {
        std::fs::create_dir_all(root.join("srv/data")).unwrap();
        std::fs::write(root.join("srv/data/seed"), "from the image\n").unwrap();
        std::os::unix::fs::chown(root.join("srv/data/seed"), Some(1000), Some(1000)).unwrap();
    });
    let u = test_user();
    let config = sb.scratch().join("image.json");
    std::fs::write(&config, r#"{"config":{"Volumes":{"/srv/data":{}}}}"#).unwrap();
    let secret = sb.scratch().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let conf = sb.scratch().join("mounts.conf");
    std::fs::write(&conf, format!("{}:/run/secrets/key\n", secret.display())).unwrap();
    for p in [&config, &secret, &conf] {
        std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid)).unwrap();
    }
    sb.run(["--init", "--", "sh", "-c", "ps -o pid,args | sed -n 2p"])
        .run()
        .assert_success("    1 /run/ocirun-init -- sh -c ps -o pid,args | sed -n 2p\n");
    sb.run([
        "--config",
        config.to_str().unwrap(),
        "--mounts-file",
        conf.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "stat -c '%u:%g' /srv/data/seed; cat /srv/data/seed /run/secrets/key",
    ])
    .run()
    .assert_success("1000:1000\nfrom the image\ns3cret\n");
    assert_clean(&sb);
}

#[test]
fn keep_id_runs_as_the_user_whose_files_stay_the_users() {
    let sb = Sandbox::busybox_as_user();
    let u = test_user();
    let vol = sb.scratch().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::os::unix::fs::chown(&vol, Some(u.uid), Some(u.gid)).unwrap();
    sb.run([
        "--userns",
        "keep-id",
        "-v",
        &format!("{}:/v", vol.display()),
        "--",
        "sh",
        "-c",
        "id -u; id -un; echo $HOME; touch /v/mine",
    ])
    .run()
    .assert_success(&format!("{}\n{}\n/\n", u.uid, u.name));
    let m = std::fs::metadata(vol.join("mine")).unwrap();
    assert_eq!((m.uid(), m.gid()), (u.uid, u.gid));
    assert_clean(&sb);
}

#[test]
fn limits_without_a_delegated_cgroup_are_refused_naming_the_flag() {
    let sb = Sandbox::busybox_as_user();
    let out = sb.run(["-m", "64m", "--", "true"]).run();
    out.assert_code(125);
    assert!(
        out.stderr
            .starts_with("ocirun: --memory cannot be used here: ocirun runs without root"),
        "{}",
        out.stderr
    );
    assert_clean(&sb);
}

#[test]
fn unshare_runs_a_host_command_in_the_runs_namespace() {
    let sb = Sandbox::busybox_as_user();
    let u = test_user();
    let unshare = |args: &[&str]| {
        let mut all = vec!["unshare", "--"];
        all.extend_from_slice(args);
        ocirun_e2e::Ocirun::new(all).as_user(u).run()
    };
    unshare(&["id", "-u"]).assert_success("0\n");
    let run_map = sb.run(["--", "cat", "/proc/self/uid_map"]).run();
    run_map.assert_code(0);
    unshare(&["cat", "/proc/self/uid_map"]).assert_success(run_map.stdout_text());

    // A tar unpacked through it keeps owners 0 and 1000 as the container sees them.
    let tarball = sb.scratch().join("t.tar");
    let src = sb.scratch().join("src");
    std::fs::create_dir_all(src.join("home/app")).unwrap();
    std::fs::write(src.join("home/app/f"), "x").unwrap();
    std::os::unix::fs::chown(src.join("home/app"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::chown(src.join("home/app/f"), Some(1000), Some(1000)).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-cpf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .args(["--numeric-owner", "home"])
        .status()
        .unwrap();
    assert!(status.success());
    std::os::unix::fs::chown(&tarball, Some(u.uid), Some(u.gid)).unwrap();
    let dest = sb.scratch().join("unpacked");
    std::fs::create_dir(&dest).unwrap();
    std::os::unix::fs::chown(&dest, Some(u.uid), Some(u.gid)).unwrap();
    unshare(&[
        "tar",
        "--numeric-owner",
        "-xpf",
        tarball.to_str().unwrap(),
        "-C",
        dest.to_str().unwrap(),
    ])
    .assert_success("");
    let owner = |p: &str| {
        let m = std::fs::metadata(dest.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("home"), (u.uid, u.gid));
    assert_eq!(owner("home/app/f"), (u.subuid + 999, u.subgid + 999));
    assert_clean(&sb);
}

#[test]
fn bad_user_namespace_values_are_refused_naming_them() {
    let sb = Sandbox::busybox_as_user();
    for (args, message) in [
        (&["--userns", "bogus"][..], "invalid --userns \"bogus\""),
        (&["--userns", "host"], "invalid --userns \"host\""),
        (&["--uidmap", "0:1:x"], "invalid id mapping \"0:1:x\""),
        (
            &["--uidmap", "0:1:100", "--uidmap", "50:200:10"],
            "its container ids overlap those of 0:1:100",
        ),
        (
            &["--uidmap", "0:0:70000"],
            "ocirun's user namespace, which has ids 0 to 65536",
        ),
        (
            &["--user", "70000"],
            "invalid user \"70000\": uid 70000 is not mapped",
        ),
    ] {
        let mut all = args.to_vec();
        all.extend(["--", "true"]);
        sb.run(&all).run().assert_failure(125, message);
    }
    assert_clean(&sb);
}

#[test]
fn gc_as_the_user_cleans_up_a_run_killed_with_sigkill() {
    let sb = Sandbox::busybox_as_user();
    let running = sb.run(["--user", "app", "--", "sleep", "60"]).spawn();
    let sleep = wait_for_child(running.pid(), "sleep");
    send_signal(running.pid(), Signal::SIGKILL);
    drop(running);
    assert!(
        Path::new(&format!("/proc/{sleep}")).exists(),
        "the container runs on"
    );
    let gc = sb.gc();
    assert_eq!(gc.status.code(), Some(0), "{gc:?}");
    let stdout = String::from_utf8_lossy(&gc.stdout);
    assert!(stdout.starts_with("removed container "), "{stdout}");
    let deadline = Instant::now() + slack(Duration::from_secs(5));
    while Path::new(&format!("/proc/{sleep}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the container's process is still there"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_clean(&sb);
}

#[test]
fn uidmap_as_root_maps_host_ids() {
    let sb = Sandbox::busybox();
    let running = sb
        .run([
            "--uidmap",
            "0:100000:65536",
            "--gidmap",
            "0:100000:65536",
            "--",
            "sh",
            "-c",
            "id -u; sleep 30",
        ])
        .spawn();
    let sleep = wait_for_child(running.pid(), "sleep");
    let status = std::fs::read_to_string(format!("/proc/{sleep}/status")).unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert_eq!(uid, "100000");
    send_signal(sleep, Signal::SIGKILL);
    let out = running.wait();
    out.assert_code(137);
    assert_eq!(out.stdout_text(), "0\n");
    sb.assert_nothing_left();
}

#[test]
fn the_state_goes_to_the_users_own_directories_by_default() {
    let sb = Sandbox::busybox_as_user();
    let u = test_user();
    let run_dir = std::path::PathBuf::from(format!("/tmp/ocirun-{}", u.uid));
    let out = ocirun_e2e::Ocirun::new([
        "run",
        "--rootfs",
        sb.rootfs().to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo ran",
    ])
    .as_user(u)
    .run();
    out.assert_success("ran\n");
    let meta = std::fs::metadata(&run_dir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (u.uid, 0o700));
    for dir in ["bundles", "records"] {
        let left: Vec<_> = std::fs::read_dir(run_dir.join(dir))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    assert!(runtime_containers(&run_dir).is_empty());
    let data = u.home.join(".local/share/ocirun");
    assert!(
        !data.exists() || std::fs::metadata(&data).unwrap().uid() == u.uid,
        "the persistent state is the user's"
    );
    sb.assert_nothing_left();
}

#[test]
fn named_volumes_caches_and_secrets_work_without_root() {
    let sb = Sandbox::busybox_as_user();
    let u = test_user();
    let secret = sb.scratch().join("token");
    std::fs::write(&secret, "s3cret").unwrap();
    std::os::unix::fs::chown(&secret, Some(u.uid), Some(u.gid)).unwrap();
    let src = format!("id=t,src={}", secret.display());
    sb.run([
        "-v",
        "data:/data",
        "--mount",
        "type=cache,target=/c",
        "--secret",
        &src,
        "--",
        "sh",
        "-c",
        "echo kept > /data/f; echo c > /c/f; stat -c %u /data /run/secrets/t; cat /run/secrets/t",
    ])
    .run()
    .assert_success("0\n0\ns3cret");
    sb.run([
        "-v",
        "data:/data",
        "--mount",
        "type=cache,target=/c",
        "--",
        "cat",
        "/data/f",
        "/c/f",
    ])
    .run()
    .assert_success("kept\nc\n");
    // On the host the volume's files are the user's: root in its namespace.
    let data = sb.root().join("volumes/data/_data/f");
    assert_eq!(std::fs::metadata(&data).unwrap().uid(), u.uid);
    sb.global(["volume", "ls", "--quiet"])
        .run()
        .assert_success("data\n");
    sb.global(["volume", "rm", "data"])
        .run()
        .assert_success("data\n");
    assert_clean(&sb);
}
