//! Named volumes, buildah's cache mounts and secrets (docs/ocirun-run.md "Mounts";
//! docs/ocirun-volume.md): what one run writes into a volume or a cache the next one sees,
//! `ocirun volume` lists and removes volumes and refuses one in use, and a secret's bytes are
//! readable in the container but in neither `ocirun spec`'s output nor the rootfs.

use std::path::Path;
use std::time::{Duration, Instant};

use ocirun_e2e::{slack, Sandbox};

/// Every regular file below `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let ft = entry.file_type().unwrap();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

/// Waits until `path` exists.
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + slack(Duration::from_secs(10));
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_named_volume_keeps_what_one_run_wrote_for_the_next() {
    let sb = Sandbox::busybox();
    sb.run(["-v", "data:/data", "--", "sh", "-c", "echo one > /data/f"])
        .run()
        .assert_success("");
    // Another destination, the --mount form: the same volume.
    sb.run([
        "--mount",
        "type=volume,source=data,destination=/other",
        "--",
        "cat",
        "/other/f",
    ])
    .run()
    .assert_success("one\n");
    sb.global(["volume", "ls"])
        .run()
        .assert_success("DRIVER      VOLUME NAME\nlocal       data\n");
    sb.global(["volume", "ls", "--quiet"])
        .run()
        .assert_success("data\n");
    let out = sb.global(["volume", "inspect", "data"]).run();
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mountpoint = sb.root().join("volumes/data/_data");
    assert_eq!(json[0]["Name"], "data");
    assert_eq!(json[0]["Driver"], "local");
    assert_eq!(json[0]["Mountpoint"], mountpoint.to_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("f")).unwrap(),
        "one\n"
    );
    sb.global(["volume", "ls", "--format", "{{.Name}} {{.Mountpoint}}"])
        .run()
        .assert_success(&format!("data {}\n", mountpoint.display()));
    sb.global(["volume", "rm", "data"])
        .run()
        .assert_success("data\n");
    sb.global(["volume", "ls", "--quiet"])
        .run()
        .assert_success("");
    let out = sb.global(["volume", "rm", "data"]).run();
    out.assert_failure(1, "ocirun: no volume with name \"data\" found");
    // The next run starts a new, empty volume.
    sb.run(["-v", "data:/data", "--", "ls", "-A", "/data"])
        .run()
        .assert_success("");
    sb.global(["volume", "prune"])
        .run()
        .assert_success("data\n");
    sb.assert_nothing_left();
}

#[test]
fn a_new_volume_is_filled_from_the_rootfs_which_stays_as_it_was() {
    let sb = Sandbox::busybox_with(|root| {
        std::fs::create_dir_all(root.join("srv/seed")).unwrap();
        std::fs::write(root.join("srv/seed/file"), "from the rootfs\n").unwrap();
    });
    sb.run([
        "-v",
        "seeded:/srv/seed",
        "--",
        "sh",
        "-c",
        "cat /srv/seed/file; echo changed > /srv/seed/file",
    ])
    .run()
    .assert_success("from the rootfs\n");
    sb.run(["-v", "seeded:/srv/seed", "--", "cat", "/srv/seed/file"])
        .run()
        .assert_success("changed\n");
    // nocopy: a new volume starts empty; ro: it cannot be written.
    sb.run([
        "-v",
        "empty:/srv/seed:nocopy,ro",
        "--",
        "sh",
        "-c",
        "ls -A /srv/seed; touch /srv/seed/x 2>&1",
    ])
    .run()
    .assert_code(1);
    sb.global(["volume", "rm", "seeded", "empty"])
        .run()
        .assert_success("seeded\nempty\n");
    // The rootfs's own file was never written (assert_nothing_left compares the tree).
    assert_eq!(
        std::fs::read_to_string(sb.rootfs().join("srv/seed/file")).unwrap(),
        "from the rootfs\n"
    );
    sb.assert_nothing_left();
}

#[test]
fn a_volume_in_use_is_not_removed_and_prune_leaves_it() {
    let sb = Sandbox::busybox();
    let started = sb.scratch().join("started");
    let running = sb
        .run([
            "-v",
            "busy:/data",
            "-v",
            &format!("{}:/signal", sb.scratch().display()),
            "--",
            "sh",
            "-c",
            "echo > /signal/started; sleep 2; cat /data/kept",
        ])
        .spawn();
    wait_for_file(&started);
    sb.run(["-v", "idle:/data", "--", "sh", "-c", "echo x > /data/kept"])
        .run()
        .assert_success("");
    std::fs::write(sb.root().join("volumes/busy/_data/kept"), "still here\n").unwrap();
    let out = sb.global(["volume", "rm", "busy"]).run();
    out.assert_failure(
        2,
        "ocirun: volume \"busy\" is being used by a running container",
    );
    sb.global(["volume", "prune", "--force"])
        .run()
        .assert_success("idle\n");
    running.wait().assert_success("still here\n");
    sb.global(["volume", "rm", "--all"])
        .run()
        .assert_success("busy\n");
    sb.assert_nothing_left();
}

#[test]
fn a_cache_mount_keeps_a_file_across_runs() {
    let sb = Sandbox::busybox();
    let append = "echo run >> /cache/log; cat /cache/log";
    sb.run([
        "--mount",
        "type=cache,target=/cache",
        "--",
        "sh",
        "-c",
        append,
    ])
    .run()
    .assert_success("run\n");
    sb.run([
        "--mount",
        "type=cache,target=/cache",
        "--",
        "sh",
        "-c",
        append,
    ])
    .run()
    .assert_success("run\nrun\n");
    // The id names the cache, whatever the target.
    sb.run([
        "--mount",
        "type=cache,id=shared,target=/a",
        "--",
        "sh",
        "-c",
        "echo via-a > /a/f",
    ])
    .run()
    .assert_success("");
    sb.run([
        "--mount",
        "type=cache,id=shared,target=/b,ro",
        "--",
        "sh",
        "-c",
        "cat /b/f; touch /b/g 2>/dev/null || echo read-only",
    ])
    .run()
    .assert_success("via-a\nread-only\n");
    // uid, gid and mode of a new cache directory.
    sb.run([
        "--mount",
        "type=cache,target=/owned,uid=1000,gid=1000,mode=0750",
        "--",
        "stat",
        "-c",
        "%u %g %a",
        "/owned",
    ])
    .run()
    .assert_success("1000 1000 750\n");
    let mut caches: Vec<String> = std::fs::read_dir(sb.root().join("cache"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    caches.sort();
    assert_eq!(
        caches,
        [
            "%2Fcache",
            "%2Fowned",
            ".%2Fcache.lock",
            ".%2Fowned.lock",
            ".shared.lock",
            "shared"
        ]
    );
    sb.assert_nothing_left();
}

#[test]
fn a_locked_cache_waits_for_the_run_that_holds_it_and_a_private_one_does_not() {
    let sb = Sandbox::busybox();
    let log = sb.root().join("cache/builds/log");
    let first = sb
        .run([
            "--mount",
            "type=cache,id=builds,target=/c,sharing=locked",
            "--",
            "sh",
            "-c",
            "echo first-start >> /c/log; sleep 1; echo first-end >> /c/log",
        ])
        .spawn();
    wait_for_file(&log);
    sb.run([
        "--mount",
        "type=cache,id=builds,target=/c,sharing=private",
        "--",
        "ls",
        "-A",
        "/c",
    ])
    .run()
    .assert_success("");
    sb.run([
        "--mount",
        "type=cache,id=builds,target=/c,sharing=locked",
        "--",
        "sh",
        "-c",
        "echo second >> /c/log; cat /c/log",
    ])
    .run()
    .assert_success("first-start\nfirst-end\nsecond\n");
    first.wait().assert_success("");
    sb.assert_nothing_left();
}

#[test]
fn a_secret_is_readable_in_the_container_and_nowhere_else() {
    let sb = Sandbox::busybox();
    let secret = sb.scratch().join("token.txt");
    std::fs::write(&secret, "s3cret-bytes\n").unwrap();
    let src = format!("id=token,src={}", secret.display());
    sb.run([
        "--secret",
        &src,
        "--",
        "sh",
        "-c",
        "cat /run/secrets/token; stat -c '%a %u' /run/secrets/token; \
         grep -c ' /run/secrets/token .*ro,' /proc/mounts",
    ])
    .run()
    .assert_success("s3cret-bytes\n400 0\n1\n");
    // A --mount type=secret puts it elsewhere, with its own mode and owner.
    sb.run([
        "--secret",
        &src,
        "--mount",
        "type=secret,id=token,target=/etc/token,mode=0440,uid=1000",
        "--user",
        "1000",
        "--",
        "sh",
        "-c",
        "cat /etc/token; stat -c '%a %u' /etc/token; test -e /run/secrets/token || echo one-place",
    ])
    .run()
    .assert_success("s3cret-bytes\n440 1000\none-place\n");
    // A relative source, and a secret from ocirun's environment.
    sb.run([
        "--secret",
        "id=token,src=./token.txt",
        "--secret",
        "id=api,env=OCIRUN_TEST_API_KEY",
        "--",
        "sh",
        "-c",
        "cat /run/secrets/token /run/secrets/api",
    ])
    .current_dir(sb.scratch())
    .env("OCIRUN_TEST_API_KEY", "key-from-env")
    .run()
    .assert_success("s3cret-bytes\nkey-from-env");
    // Never in the spec.
    let out = sb
        .ocirun(
            "spec",
            ["--secret", &src, "--", "cat", "/run/secrets/token"],
        )
        .run();
    out.assert_code(0);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("s3cret"),
        "the secret is in the spec"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"/run/secrets/token\""));
    // Never in the rootfs, nor left in the run state.
    assert_eq!(
        files_containing(sb.rootfs(), b"s3cret"),
        Vec::<String>::new()
    );
    assert_eq!(
        files_containing(sb.runroot(), b"s3cret"),
        Vec::<String>::new()
    );
    sb.assert_nothing_left();
}

#[test]
fn a_stop_signal_ends_the_wait_for_a_locked_cache() {
    let sb = Sandbox::busybox();
    let log = sb.root().join("cache/held/log");
    let holder = sb
        .run([
            "--mount",
            "type=cache,id=held,target=/c,sharing=locked",
            "--",
            "sh",
            "-c",
            "echo holding > /c/log; sleep 3",
        ])
        .spawn();
    wait_for_file(&log);
    let waiter = sb
        .run([
            "--mount",
            "type=cache,id=held,target=/c,sharing=locked",
            "--",
            "echo",
            "never",
        ])
        .spawn();
    std::thread::sleep(Duration::from_millis(300));
    ocirun_e2e::send_signal(waiter.pid(), nix::sys::signal::Signal::SIGTERM);
    let out = waiter.wait();
    assert_eq!(out.code, 143, "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "");
    assert!(
        out.elapsed < slack(Duration::from_secs(2)),
        "took {:?}",
        out.elapsed
    );
    holder.wait().assert_success("");
    sb.assert_nothing_left();
}
