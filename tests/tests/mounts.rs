//! Mounts (docs/ocirun-run.md "Mounts"): `-v`, `--mount`, `--tmpfs`, image volumes, secrets, the
//! generated files; paths in hostile root filesystems that try to point out of them; and that
//! none of it leaves anything behind.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ocirun_e2e::{children_named, slack, Sandbox};

/// A new host directory `name` in the sandbox's scratch space, holding `existing` ("hi\n").
fn host_dir(sb: &Sandbox, name: &str) -> PathBuf {
    let dir = sb.scratch().join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("existing"), "hi\n").unwrap();
    dir
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

/// The second field of the second line of `df -k` output: the size in KiB.
fn df_kib(stdout: &str) -> &str {
    stdout
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("unexpected df output {stdout:?}"))
}

/// Writes an image configuration with these `Volumes` into the scratch space.
fn image_config(sb: &Sandbox, volumes: &[&str]) -> PathBuf {
    let map: serde_json::Map<String, serde_json::Value> = volumes
        .iter()
        .map(|v| ((*v).to_owned(), serde_json::json!({})))
        .collect();
    let path = sb.scratch().join("image-config.json");
    let doc = serde_json::json!({ "config": { "Volumes": map } });
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

#[test]
fn a_volume_write_reaches_the_host_directory() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    sb.run([
        "-v",
        &format!("{}:/data", text(&h)),
        "--",
        "touch",
        "/data/f",
    ])
    .run()
    .assert_success("");
    assert!(h.join("f").is_file(), "the write went through to the host");
    sb.assert_nothing_left();
}

#[test]
fn a_read_only_volume_refuses_writes() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    sb.run([
        "-v",
        &format!("{}:/data:ro", text(&h)),
        "--",
        "touch",
        "/data/f",
    ])
    .run()
    .assert_failure(1, "Read-only file system");
    assert!(!h.join("f").exists());
    sb.assert_nothing_left();
}

#[test]
fn missing_parents_of_the_destination_are_made_in_the_rootfs_and_removed() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    sb.run([
        "-v",
        &format!("{}:/a/b/c", text(&h)),
        "--",
        "sh",
        "-c",
        "ls -d /a/b/c; cat /a/b/c/existing",
    ])
    .run()
    .assert_success("/a/b/c\nhi\n");
    assert!(!sb.rootfs().join("a").exists(), "the made parents are gone");
    sb.assert_nothing_left();
}

#[test]
fn a_file_source_binds_one_file() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    let file = h.join("existing");
    sb.run([
        "-v",
        &format!("{}:/etc/myfile", text(&file)),
        "--",
        "sh",
        "-c",
        "cat /etc/myfile; echo more >> /etc/myfile; ls /etc",
    ])
    .run()
    .assert_success("hi\ngroup\nhostname\nhosts\nmyfile\npasswd\nresolv.conf\n");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hi\nmore\n");
    sb.assert_nothing_left();
}

#[test]
fn a_relative_source_starts_with_a_dot_and_is_taken_from_the_callers_directory() {
    let sb = Sandbox::busybox();
    let rel = host_dir(&sb, "rel");
    sb.run(["-v", "./rel:/data", "--", "cat", "/data/existing"])
        .current_dir(sb.scratch())
        .run()
        .assert_success("hi\n");
    sb.run(["-v", "../rel:/data", "--", "cat", "/data/existing"])
        .current_dir(&rel)
        .run()
        .assert_success("hi\n");
    // Without the dot it is podman's named volume "rel", empty when it is new.
    sb.run(["-v", "rel:/data", "--", "ls", "-A", "/data"])
        .current_dir(sb.scratch())
        .run()
        .assert_success("");
    sb.global(["volume", "rm", "rel"])
        .run()
        .assert_success("rel\n");
    sb.assert_nothing_left();
}

#[test]
fn relabel_options_are_accepted_without_selinux() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    for opts in ["ro,z", "Z"] {
        sb.run([
            "-v",
            &format!("{}:/d:{opts}", text(&h)),
            "--",
            "cat",
            "/d/existing",
        ])
        .run()
        .assert_success("hi\n");
    }
    sb.assert_nothing_left();
}

#[test]
fn bad_volumes_exit_125_naming_the_spec_and_leave_nothing() {
    let sb = Sandbox::busybox();
    let h = text(&host_dir(&sb, "h"));
    let cases = [
        (
            vec![h.clone()],
            format!(r#"invalid volume "{h}": no destination"#),
        ),
        (
            vec![format!("{h}:rel/dst")],
            format!(
                r#"invalid volume "{h}:rel/dst": destination "rel/dst" is not an absolute path"#
            ),
        ),
        (
            vec![format!("{h}:/d:bogus")],
            format!(r#"invalid volume "{h}:/d:bogus": unknown option "bogus""#),
        ),
        (
            vec![format!("{h}:/d"), format!("{h}:/d:ro")],
            format!(r#"duplicate mount destination "/d": -v "{h}:/d" and -v "{h}:/d:ro""#),
        ),
        (
            vec![format!("{h}/missing:/d")],
            format!(r#"invalid volume "{h}/missing:/d": source "{h}/missing": no such file"#),
        ),
    ];
    for (volumes, message) in cases {
        let mut args: Vec<String> = volumes
            .iter()
            .flat_map(|v| ["-v".to_owned(), v.clone()])
            .collect();
        args.extend(["--".to_owned(), "true".to_owned()]);
        sb.run(&args).run().assert_failure(125, &message);
        sb.assert_nothing_left();
    }
    let h_path = Path::new(&h);
    assert_eq!(
        std::fs::read_dir(h_path).unwrap().count(),
        1,
        "the source is untouched"
    );
}

#[test]
fn paths_longer_than_path_max_exit_125_and_create_nothing() {
    let sb = Sandbox::busybox();
    let h = text(&host_dir(&sb, "h"));
    // 17 components of 250 bytes: 4267 bytes, each component a valid name.
    let long: String = (0..17).map(|_| format!("/{}", "d".repeat(250))).collect();
    let config = image_config(&sb, &[&long]);
    let rootfs = text(&std::fs::canonicalize(sb.rootfs()).unwrap());
    let too_long = "File name too long (os error 36)";
    sb.run(["-w", &long, "--", "true"]).run().assert_failure(
        125,
        &format!("ocirun: create working directory {long:?} in rootfs {rootfs:?}: {too_long}\n"),
    );
    sb.assert_nothing_left();
    for args in [
        vec!["--tmpfs".to_owned(), long.clone()],
        vec!["-v".to_owned(), format!("{h}:{long}")],
        vec!["--config".to_owned(), text(&config)],
    ] {
        let mut all = args.clone();
        all.extend(["--".to_owned(), "true".to_owned()]);
        let out = sb.run(&all).run();
        out.assert_failure(125, too_long);
        assert!(
            out.stderr.contains(&format!("{long:?}")),
            "{args:?}: {}",
            out.stderr
        );
        sb.assert_nothing_left();
    }
}

#[test]
fn mount_flag_binds_and_tmpfs() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    sb.run([
        "--mount",
        &format!("type=bind,source={},destination=/m,ro", text(&h)),
        "--",
        "sh",
        "-c",
        "cat /m/existing; touch /m/x 2>/dev/null || echo refused",
    ])
    .run()
    .assert_success("hi\nrefused\n");
    sb.run([
        "--mount",
        &format!("type=bind,src={},dst=/w", text(&h)),
        "--",
        "touch",
        "/w/through",
    ])
    .run()
    .assert_success("");
    assert!(h.join("through").is_file(), "bind writes go through");
    let out = sb
        .run([
            "--mount",
            "type=tmpfs,destination=/m,tmpfs-size=2m,tmpfs-mode=700",
            "--",
            "sh",
            "-c",
            "df -k /m; stat -c %a /m",
        ])
        .run();
    out.assert_code(0);
    assert_eq!(df_kib(out.stdout_text()), "2048");
    assert!(
        out.stdout_text().ends_with("\n700\n"),
        "{:?}",
        out.stdout_text()
    );
    sb.run(["--mount", "type=volume,dst=/m", "--", "true"])
        .run()
        .assert_failure(
            125,
            "invalid --mount \"type=volume,dst=/m\": a volume mount needs a source, the volume's \
             name (anonymous volumes are not supported)",
        );
    sb.run(["--mount", "type=image,src=fedora,dst=/m", "--", "true"])
        .run()
        .assert_failure(
            125,
            "invalid --mount \"type=image,src=fedora,dst=/m\": unsupported type \"image\" (use \
             bind, tmpfs, volume, cache or secret)",
        );
    sb.assert_nothing_left();
}

#[test]
fn tmpfs_size_exec_and_noexec() {
    let sb = Sandbox::busybox();
    // The size is the tmpfs's: 1m is 1024 KiB, too small for the 2 MB static busybox.
    let out = sb
        .run(["--tmpfs", "/t:exec,size=1m", "--", "df", "-k", "/t"])
        .run();
    out.assert_code(0);
    assert_eq!(df_kib(out.stdout_text()), "1024");
    sb.run([
        "--tmpfs",
        "/t:exec,size=1m",
        "--",
        "sh",
        "-c",
        "cp /bin/busybox /t/b",
    ])
    .run()
    .assert_failure(1, "No space left on device");
    // exec: a program copied into the tmpfs runs (named after an applet, as busybox needs).
    sb.run([
        "--tmpfs",
        "/t:exec,size=1m",
        "--",
        "sh",
        "-c",
        "printf '#!/bin/sh\\necho ran\\n' > /t/b && chmod +x /t/b && /t/b",
    ])
    .run()
    .assert_success("ran\n");
    sb.run([
        "--tmpfs",
        "/t:exec,size=4m",
        "--",
        "sh",
        "-c",
        "cp /bin/busybox /t/true && /t/true",
    ])
    .run()
    .assert_success("");
    // Without exec, podman's default noexec applies: 126 from the shell.
    sb.run([
        "--tmpfs",
        "/t:size=4m",
        "--",
        "sh",
        "-c",
        "cp /bin/busybox /t/true && /t/true",
    ])
    .run()
    .assert_failure(126, "Permission denied");
    sb.assert_nothing_left();
}

#[test]
fn a_tmpfs_mount_is_exec_unless_noexec_is_given() {
    let sb = Sandbox::busybox();
    let script = "printf '#!/bin/sh\\necho ran\\n' > /t/b && chmod +x /t/b && /t/b";
    sb.run(["--mount", "type=tmpfs,dst=/t", "--", "sh", "-c", script])
        .run()
        .assert_success("ran\n");
    sb.run([
        "--mount",
        "type=tmpfs,dst=/t,noexec",
        "--",
        "sh",
        "-c",
        script,
    ])
    .run()
    .assert_failure(126, "Permission denied");
    let spec = sb
        .ocirun("spec", ["--mount", "type=tmpfs,dst=/t", "--", "true"])
        .run();
    spec.assert_code(0);
    let spec: serde_json::Value = serde_json::from_slice(&spec.stdout).unwrap();
    let t = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/t")
        .unwrap();
    // No tmpcopyup: the rootfs has nothing at /t to copy.
    assert_eq!(
        t["options"],
        serde_json::json!(["rw", "rprivate", "nosuid", "nodev"])
    );
    sb.assert_nothing_left();
}

#[test]
fn shm_size_sets_the_dev_shm_tmpfs() {
    let sb = Sandbox::busybox();
    let out = sb
        .run(["--shm-size", "1g", "--", "df", "-k", "/dev/shm"])
        .run();
    out.assert_code(0);
    assert_eq!(df_kib(out.stdout_text()), "1048576");
    sb.assert_nothing_left();
}

fn image_volume_rootfs(root: &Path) {
    let data = root.join("var/lib/data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("seed"), "from the image\n").unwrap();
    std::os::unix::fs::chown(data.join("seed"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(data.join("seed"), PermissionsExt::from_mode(0o640)).unwrap();
    symlink("seed", data.join("link")).unwrap();
    std::fs::hard_link(data.join("seed"), data.join("hard")).unwrap();
}

#[test]
fn image_volumes_are_copies_and_the_rootfs_is_unchanged() {
    let sb = Sandbox::busybox_with(image_volume_rootfs);
    let config = image_config(&sb, &["/var/lib/data", "/srv/empty"]);
    sb.run([
        "--config",
        &text(&config),
        "--",
        "sh",
        "-c",
        "cd /var/lib/data; cat seed; stat -c '%n %u:%g %a %h' seed hard; readlink link; \
         echo changed > seed; ls -A /srv/empty | wc -l",
    ])
    .run()
    .assert_success("from the image\nseed 1000:1000 640 2\nhard 1000:1000 640 2\nseed\n0\n");
    assert_eq!(
        std::fs::read_to_string(sb.rootfs().join("var/lib/data/seed")).unwrap(),
        "from the image\n"
    );
    sb.assert_nothing_left();
}

#[test]
fn a_named_container_keeps_its_image_volume_copies() {
    let sb = Sandbox::busybox_with(image_volume_rootfs);
    let config = image_config(&sb, &["/var/lib/data"]);
    let run = |script: &str| {
        sb.run([
            "--name",
            "n1",
            "--config",
            &text(&config),
            "--",
            "sh",
            "-c",
            script,
        ])
        .run()
    };
    run("echo first > /var/lib/data/new").assert_success("");
    run("cat /var/lib/data/new /var/lib/data/seed").assert_success("first\nfrom the image\n");
    // Another name, or none, starts from the image again.
    sb.run(["--config", &text(&config), "--", "ls", "/var/lib/data"])
        .run()
        .assert_success("hard\nlink\nseed\n");
    let kept = sb.root().join("containers/n1/volumes/var-lib-data/new");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "first\n");
    assert!(!sb.rootfs().join("var/lib/data/new").exists());
    std::fs::remove_dir_all(sb.root().join("containers/n1")).unwrap();
    sb.assert_nothing_left();
}

#[test]
fn secrets_from_a_mounts_file_are_copies_with_their_modes() {
    let sb = Sandbox::busybox();
    let s = sb.scratch().join("S");
    let other = sb.scratch().join("other");
    std::fs::create_dir_all(&s).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(s.join("key"), "k\n").unwrap();
    std::fs::set_permissions(s.join("key"), PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(s.join("script"), "s\n").unwrap();
    std::fs::set_permissions(s.join("script"), PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(other.join("inner"), "followed\n").unwrap();
    std::fs::set_permissions(&other, PermissionsExt::from_mode(0o750)).unwrap();
    symlink(&other, s.join("linked")).unwrap();
    let conf = sb.scratch().join("mounts.conf");
    std::fs::write(
        &conf,
        format!(
            "# secrets\n{}:/run/secrets\n/does/not/exist:/run/x\n",
            text(&s)
        ),
    )
    .unwrap();

    let out = sb
        .run([
            "--mounts-file",
            &text(&conf),
            "--",
            "sh",
            "-c",
            "ls -l /run/secrets; cat /run/secrets/linked/inner; echo new > /run/secrets/key",
        ])
        .run();
    out.assert_code(0);
    let listing: Vec<(&str, &str)> = out
        .stdout_text()
        .lines()
        .filter(|l| !l.starts_with("total"))
        .filter_map(|l| Some((l.split_whitespace().next()?, l.split_whitespace().last()?)))
        .collect();
    assert_eq!(
        listing,
        [
            ("-rw-------", "key"),
            ("drwxr-x---", "linked"),
            ("-rwxr-xr-x", "script"),
            ("followed", "followed"),
        ]
    );
    assert!(
        out.stderr.contains("secret source does not exist"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(s.join("key")).unwrap(),
        "k\n",
        "a copy was written"
    );
    sb.assert_nothing_left();
}

#[test]
fn add_host_hostname_and_dns_shape_the_generated_files() {
    let sb = Sandbox::busybox();
    sb.run([
        "--add-host",
        "db:2001:db8::1",
        "--",
        "grep",
        // A word: the default hostname is 12 random hex digits, which may hold "db".
        "-w",
        "db",
        "/etc/hosts",
    ])
    .run()
    .assert_success("2001:db8::1\tdb\n");
    sb.run([
        "--add-host",
        "a;b:192.0.2.9",
        "--",
        "head",
        "-n",
        "1",
        "/etc/hosts",
    ])
    .run()
    .assert_success("192.0.2.9\ta b\n");
    let out = sb
        .run(["--hostname", "h1", "--", "cat", "/etc/hosts"])
        .run();
    out.assert_code(0);
    assert!(
        out.stdout_text().lines().any(|l| l == "127.0.1.1\th1"),
        "{:?}",
        out.stdout_text()
    );

    let host_hosts = std::fs::read("/etc/hosts").unwrap();
    sb.run([
        "--",
        "sh",
        "-c",
        "echo 10.9.9.9 written >> /etc/hosts; grep -c written /etc/hosts",
    ])
    .run()
    .assert_success("1\n");
    assert_eq!(
        std::fs::read("/etc/hosts").unwrap(),
        host_hosts,
        "the host's file is untouched"
    );

    let out = sb
        .run([
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "--",
            "cat",
            "/etc/resolv.conf",
        ])
        .run();
    out.assert_code(0);
    let lines: Vec<&str> = out
        .stdout_text()
        .lines()
        .filter(|l| {
            ["nameserver", "search", "domain", "options"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .collect();
    assert_eq!(
        lines,
        [
            "search example.com",
            "nameserver 192.0.2.53",
            "options ndots:2"
        ]
    );
    sb.run(["--dns", "192.0.2", "--", "true"])
        .run()
        .assert_failure(125, r#"invalid --dns "192.0.2": not an IP address"#);
    sb.run(["--add-host", "db", "--", "true"])
        .run()
        .assert_failure(125, r#"invalid --add-host "db": expected NAME:IP"#);
    sb.assert_nothing_left();
}

#[test]
fn no_hosts_keeps_the_rootfs_file() {
    let sb = Sandbox::busybox_with(|r| {
        std::fs::write(r.join("etc/hosts"), "10.1.2.3\trootfs-own\n").unwrap();
    });
    sb.run(["--no-hosts", "--", "cat", "/etc/hosts"])
        .run()
        .assert_success("10.1.2.3\trootfs-own\n");
    sb.run(["--no-hosts", "--add-host", "a:1.2.3.4", "--", "true"])
        .run()
        .assert_failure(125, "--no-hosts and --add-host cannot be used together");
    sb.assert_nothing_left();
}

#[test]
fn containerenv_names_engine_name_and_id() {
    let sb = Sandbox::busybox();
    let out = sb
        .run(["--name", "envtest", "--", "cat", "/run/.containerenv"])
        .run();
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout_text().lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        lines[0],
        format!("engine=\"ocirun-{}\"", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(lines[1], "name=\"envtest\"");
    let id = lines[2]
        .strip_prefix("id=\"")
        .and_then(|l| l.strip_suffix('"'))
        .unwrap();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id:?}"
    );
    assert_eq!(lines[3], "rootless=0");
    assert!(!sb.rootfs().join("run").exists(), "the made /run is gone");
    sb.assert_nothing_left();
}

#[test]
fn overlay_volumes_throw_their_writes_away() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    sb.run([
        "-v",
        &format!("{}:/data:O", text(&h)),
        "--",
        "sh",
        "-c",
        "echo x > /data/new; echo y >> /data/existing; cat /data/new /data/existing",
    ])
    .run()
    .assert_success("x\nhi\ny\n");
    assert_eq!(std::fs::read_to_string(h.join("existing")).unwrap(), "hi\n");
    assert!(!h.join("new").exists());
    // With upperdir and workdir, the writes stay there.
    let upper = host_dir(&sb, "upper");
    let work = sb.scratch().join("work");
    std::fs::create_dir(&work).unwrap();
    sb.run([
        "-v",
        &format!(
            "{}:/data:O,upperdir={},workdir={}",
            text(&h),
            text(&upper),
            text(&work)
        ),
        "--",
        "sh",
        "-c",
        "echo kept > /data/new",
    ])
    .run()
    .assert_success("");
    assert_eq!(
        std::fs::read_to_string(upper.join("new")).unwrap(),
        "kept\n"
    );
    assert!(!h.join("new").exists());
    sb.assert_nothing_left();
}

#[test]
fn chown_option_gives_the_source_to_the_runs_user() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    sb.run([
        "--user",
        "1234:5678",
        "-v",
        &format!("{}:/data:U", text(&h)),
        "--",
        "sh",
        "-c",
        "stat -c %u:%g /data /data/existing; touch /data/mine",
    ])
    .run()
    .assert_success("1234:5678\n1234:5678\n");
    let m = std::fs::metadata(h.join("mine")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    sb.assert_nothing_left();
}

#[test]
fn chown_leaves_entries_that_have_the_owner_and_never_follows_a_symlink() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    let outside = host_dir(&sb, "outside");
    let tool = h.join("tool");
    std::fs::write(&tool, "#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(&tool, Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&tool, PermissionsExt::from_mode(0o4755)).unwrap();
    symlink(&outside, h.join("away")).unwrap();
    sb.run([
        "--user",
        "1000:1000",
        "-v",
        &format!("{}:/u:U", text(&h)),
        "--",
        "stat",
        "-c",
        "%a %u:%g",
        "/u/tool",
    ])
    .run()
    .assert_success("4755 1000:1000\n");
    let m = std::fs::metadata(&tool).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o4755, 1000, 1000));
    let away = std::fs::symlink_metadata(h.join("away")).unwrap();
    assert_eq!((away.uid(), away.gid()), (1000, 1000), "the link itself");
    let target = std::fs::metadata(&outside).unwrap();
    assert_eq!((target.uid(), target.gid()), (0, 0), "not its target");
    sb.assert_nothing_left();
}

#[test]
fn chown_of_a_system_directory_is_refused_before_anything_is_touched() {
    let sb = Sandbox::busybox();
    for subcommand in ["spec", "run"] {
        for (flag, value) in [
            ("-v", "/:/h:U"),
            ("-v", "/etc:/h:U"),
            ("-v", "/usr/:/h:U"),
            ("--mount", "type=bind,source=/var,destination=/h,U"),
        ] {
            sb.ocirun(subcommand, [flag, value, "--", "true"])
                .run()
                .assert_failure(125, "U would change the owner of the system directory");
        }
    }
    let etc = std::fs::metadata("/etc/passwd").unwrap();
    assert_eq!((etc.uid(), etc.gid()), (0, 0));
    sb.assert_nothing_left();
}

#[test]
fn an_image_volume_copies_device_nodes() {
    let sb = Sandbox::busybox_with(|root| {
        let dev = root.join("srv/dev");
        std::fs::create_dir_all(&dev).unwrap();
        nix::sys::stat::mknod(
            &dev.join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        std::fs::set_permissions(dev.join("null"), PermissionsExt::from_mode(0o640)).unwrap();
    });
    let config = image_config(&sb, &["/srv/dev"]);
    sb.run([
        "--config",
        &text(&config),
        "--",
        "stat",
        "-c",
        "%F %t,%T %a",
        "/srv/dev/null",
    ])
    .run()
    .assert_success("character special file 1,3 640\n");
    sb.assert_nothing_left();
}

#[test]
fn a_run_with_volumes_secrets_and_tmpfs_leaves_no_mount_point_and_no_mount() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    let s = host_dir(&sb, "s");
    let conf = sb.scratch().join("mounts.conf");
    std::fs::write(&conf, format!("{}:/run/secrets\n", text(&s))).unwrap();
    let config = image_config(&sb, &["/srv/vol"]);
    sb.run([
        "-v",
        &format!("{}:/mnt/a/b", text(&h)),
        "--mount",
        &format!("type=bind,src={},dst=/opt/file", text(&h.join("existing"))),
        "--tmpfs",
        "/scratch/t",
        "--mounts-file",
        &text(&conf),
        "--config",
        &text(&config),
        "--",
        "sh",
        "-c",
        "cat /mnt/a/b/existing /opt/file /run/secrets/existing; ls -A /srv/vol /scratch/t",
    ])
    .run()
    .assert_success("hi\nhi\nhi\n/scratch/t:\n\n/srv/vol:\n");
    for made in ["mnt", "opt", "run", "scratch", "srv"] {
        assert!(
            !sb.rootfs().join(made).exists(),
            "/{made} was left in the rootfs"
        );
    }
    sb.assert_nothing_left();
}

#[test]
fn spec_shows_the_mounts_and_writes_nothing() {
    let sb = Sandbox::busybox();
    let h = host_dir(&sb, "h");
    let out = sb
        .ocirun(
            "spec",
            [
                "--name",
                "specname",
                "-v",
                &format!("{}:/data:ro,nodev", text(&h)),
                "--tmpfs",
                "/t:size=1m",
                "--tmpfs",
                "/etc/x:size=1m",
                "--tmpfs",
                "/bin",
                "--config",
                &text(&image_config(&sb, &["/vol"])),
                "--",
                "true",
            ],
        )
        .run();
    out.assert_code(0);
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mounts = spec["mounts"].as_array().unwrap();
    let find = |dst: &str| {
        mounts
            .iter()
            .find(|m| m["destination"] == dst)
            .unwrap_or_else(|| panic!("no mount on {dst}: {mounts:?}"))
    };
    assert_eq!(
        find("/data"),
        &serde_json::json!({"destination": "/data", "type": "bind", "source": text(&h),
            "options": ["rbind", "rprivate", "ro", "nodev"]})
    );
    // A copy of what the rootfs holds at the destination: only where it holds something.
    assert_eq!(
        find("/t")["options"],
        serde_json::json!(["size=1m", "rw", "rprivate", "noexec", "nosuid", "nodev"])
    );
    assert_eq!(find("/etc/x")["options"], find("/t")["options"]);
    assert_eq!(
        find("/bin")["options"],
        serde_json::json!(["rw", "rprivate", "noexec", "nosuid", "nodev", "tmpcopyup"])
    );
    assert_eq!(
        find("/vol")["source"],
        serde_json::json!(text(&sb.root().join("containers/specname/volumes/vol")))
    );
    assert!(!sb.root().exists(), "spec created the container directory");
    sb.assert_nothing_left();
}

#[test]
fn a_sparse_file_in_an_image_volume_stays_sparse() {
    use std::os::unix::fs::FileExt;
    // 2 GiB with 4 bytes of data in the middle: holes on both sides.
    const SIZE: u64 = 2 << 30;
    let sb = Sandbox::busybox_with(|root| {
        std::fs::create_dir_all(root.join("var/big")).unwrap();
        let file = std::fs::File::create(root.join("var/big/sparse")).unwrap();
        file.set_len(SIZE).unwrap();
        file.write_all_at(b"mid\n", SIZE / 2).unwrap();
    });
    let config = image_config(&sb, &["/var/big"]);
    let started = Instant::now();
    sb.run([
        "--name",
        "big",
        "--config",
        &text(&config),
        "--",
        "stat",
        "-c",
        "%s",
        "/var/big/sparse",
    ])
    .run()
    .assert_success("2147483648\n");
    assert!(
        started.elapsed() < slack(Duration::from_secs(5)),
        "took {:?}",
        started.elapsed()
    );
    let copy = sb.root().join("containers/big/volumes/var-big/sparse");
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.len(), SIZE);
    assert!(
        meta.blocks() * 512 <= 1 << 20,
        "the copy takes {} bytes",
        meta.blocks() * 512
    );
    let mut around = [9u8; 6];
    std::fs::File::open(&copy)
        .unwrap()
        .read_exact_at(&mut around, SIZE / 2 - 1)
        .unwrap();
    assert_eq!(&around, b"\0mid\n\0");
    std::fs::remove_dir_all(sb.root().join("containers/big")).unwrap();
    sb.assert_nothing_left();
}

/// Waits until a file of at least 4 KiB appears below `dir`: a copy into it has begun.
fn wait_for_copy_below(dir: &Path, running: &ocirun_e2e::Running) {
    let deadline = Instant::now() + slack(Duration::from_secs(10));
    loop {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                match entry.metadata() {
                    Ok(m) if m.is_dir() => stack.push(entry.path()),
                    Ok(m) if m.len() >= 4096 => return,
                    _ => {}
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no copy began below {} (ocirun {})",
            dir.display(),
            running.pid()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_stop_signal_ends_a_long_volume_copy_at_once() {
    // 768 MiB of data in 96 files: a copy of about two seconds on an ext4 disk.
    let sb = Sandbox::busybox_with(|root| {
        let dir = root.join("var/big");
        std::fs::create_dir_all(&dir).unwrap();
        let chunk = vec![7u8; 8 << 20];
        for i in 0..96 {
            std::fs::write(dir.join(format!("f{i:02}")), &chunk).unwrap();
        }
    });
    let config = image_config(&sb, &["/var/big"]);
    // An image volume, then a named volume's copy-up.
    for (args, copied_into) in [
        (
            vec!["--config".to_owned(), text(&config)],
            sb.root().join("containers"),
        ),
        (
            vec!["-v".to_owned(), "big:/var/big".to_owned()],
            sb.root().join("volumes"),
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--", "echo", "never"].map(str::to_owned));
        let running = sb.run(all).spawn();
        wait_for_copy_below(&copied_into, &running);
        let signalled = Instant::now();
        ocirun_e2e::send_signal(running.pid(), nix::sys::signal::Signal::SIGTERM);
        let out = running.wait();
        let after = signalled.elapsed();
        assert_eq!(
            (out.code, out.stdout_text(), out.stderr.as_str()),
            (143, "", ""),
            "{args:?}"
        );
        assert!(
            after < slack(Duration::from_secs(1)),
            "{args:?}: ocirun ended {after:?} after SIGTERM"
        );
        assert_eq!(
            std::fs::read_dir(&copied_into).unwrap().count(),
            0,
            "{args:?}: the partial copy is removed"
        );
    }
    sb.assert_nothing_left();
}

#[test]
fn gc_removes_the_ephemeral_directory_of_a_killed_run() {
    let sb = Sandbox::busybox_with(image_volume_rootfs);
    let config = image_config(&sb, &["/var/lib/data"]);
    let mut ocirun = sb
        .run(["--config", &text(&config), "--", "sleep", "60"])
        .command();
    let mut child = ocirun
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + slack(Duration::from_secs(30));
    while children_named(child.id(), "sleep").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the container did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let containers = sb.root().join("containers");
    assert_eq!(
        std::fs::read_dir(&containers).unwrap().count(),
        2,
        "the run's directory and its lock"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let out = sb.gc();
    assert_eq!(
        out.status.code(),
        Some(0),
        "gc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.lines().any(|l| l == "removed 1 container directories"),
        "gc said {said:?}"
    );
    assert_eq!(std::fs::read_dir(&containers).unwrap().count(), 0);
    sb.assert_nothing_left();
}

// Hostile root filesystems: paths that point out of the rootfs must resolve inside it.

#[test]
fn a_destination_through_a_symlink_into_proc_sys_or_dev_is_refused_by_run_and_spec() {
    let sb = Sandbox::busybox_with(|r| {
        let _ = std::fs::remove_file(r.join("etc/resolv.conf"));
        symlink("/proc/self/root/tmp/x", r.join("etc/resolv.conf")).unwrap();
        symlink("/proc/1/cwd/elsewhere", r.join("data")).unwrap();
        symlink("/x", r.join("chain")).unwrap();
        symlink("../sys/kernel", r.join("x")).unwrap();
        std::fs::create_dir(r.join("srv")).unwrap();
        symlink("/dev/shm", r.join("srv/vol")).unwrap();
    });
    let h = text(&host_dir(&sb, "h"));
    let config = image_config(&sb, &["/srv/vol/cache"]);
    let refused = |destination: &str, link: &str, target: &str, dir: &str| {
        format!(
            "ocirun: mount destination {destination:?} leads through the rootfs's symlink \
             {link:?} -> {target:?} into /{dir}, where the runtime mounts a filesystem of its \
             own\n"
        )
    };
    let cases = [
        (
            vec![],
            refused(
                "/etc/resolv.conf",
                "/etc/resolv.conf",
                "/proc/self/root/tmp/x",
                "proc",
            ),
        ),
        (
            vec!["-v".to_owned(), format!("{h}:/data")],
            refused("/data", "/data", "/proc/1/cwd/elsewhere", "proc"),
        ),
        (
            vec!["--tmpfs".to_owned(), "/chain/sub".to_owned()],
            refused("/chain/sub", "/x", "../sys/kernel", "sys"),
        ),
        (
            vec!["--config".to_owned(), text(&config)],
            refused("/srv/vol/cache", "/srv/vol", "/dev/shm", "dev"),
        ),
    ];
    // The user's mounts and the image volumes are looked at before the generated files.
    for (args, message) in cases {
        let mut all = args.clone();
        all.extend(["--".to_owned(), "true".to_owned()]);
        for subcommand in ["run", "spec"] {
            let out = sb.ocirun(subcommand, &all).run();
            assert_eq!(
                (out.code, out.stdout_text(), out.stderr.as_str()),
                (125, "", message.as_str()),
                "{subcommand} {args:?}"
            );
            sb.assert_nothing_left();
        }
    }
}

#[test]
fn a_working_dir_symlinked_out_of_the_rootfs_is_made_inside() {
    let marker = Path::new("/tmp/outside-marker");
    assert!(
        !marker.exists(),
        "{} exists on the host before the test; remove it",
        marker.display()
    );
    let sb = Sandbox::busybox_with(|r| symlink("/tmp/outside-marker", r.join("w")).unwrap());
    sb.run(["--workingdir", "/w", "--", "sh", "-c", "pwd -P"])
        .run()
        .assert_success("/tmp/outside-marker\n");
    assert!(
        !marker.exists(),
        "the working directory was made on the host"
    );
    assert!(sb.rootfs().join("tmp/outside-marker").is_dir());
    sb.assert_nothing_left_except(&["tmp/outside-marker"]);
}

#[test]
fn an_image_volume_symlinked_to_etc_copies_the_rootfs_etc() {
    let sb = Sandbox::busybox_with(|r| {
        symlink("/etc", r.join("vol")).unwrap();
        std::fs::write(r.join("etc/rootfs-marker"), "inside\n").unwrap();
    });
    let config = image_config(&sb, &["/vol"]);
    let rootfs_passwd = std::fs::read_to_string(sb.rootfs().join("etc/passwd")).unwrap();
    assert_ne!(
        rootfs_passwd,
        std::fs::read_to_string("/etc/passwd").unwrap()
    );
    sb.run([
        "--config",
        &text(&config),
        "--",
        "sh",
        "-c",
        "cat /vol/rootfs-marker /vol/passwd",
    ])
    .run()
    .assert_success(&format!("inside\n{rootfs_passwd}"));
    sb.assert_nothing_left();
}

#[test]
fn a_passwd_symlinked_to_shadow_reads_the_rootfs_file() {
    let sb = Sandbox::busybox_with(|r| {
        std::fs::remove_file(r.join("etc/passwd")).unwrap();
        symlink("/etc/shadow", r.join("etc/passwd")).unwrap();
        std::fs::write(r.join("etc/shadow"), "inside:x:4321:4321::/:/bin/sh\n").unwrap();
    });
    sb.run(["--user", "inside", "--", "id", "-u"])
        .run()
        .assert_success("4321\n");
    sb.assert_nothing_left();
}

#[test]
fn a_passwd_symlinked_to_a_missing_shadow_never_reads_the_hosts() {
    let sb = Sandbox::busybox_with(|r| {
        std::fs::remove_file(r.join("etc/passwd")).unwrap();
        symlink("/etc/shadow", r.join("etc/passwd")).unwrap();
    });
    // The host's /etc/shadow names root; the rootfs has no such file, so no user "root".
    sb.run(["--user", "root", "--", "true"])
        .run()
        .assert_failure(125, r#"unknown user "root""#);
    sb.assert_nothing_left();
}

/// The names and owners of the entries in `dir` with their contents: what a run must not
/// change in a host directory.
fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let content = if meta.is_file() {
                std::fs::read_to_string(e.path()).unwrap()
            } else {
                format!("{:?}", meta.file_type())
            };
            (e.file_name().into_string().unwrap(), content)
        })
        .collect();
    entries.sort();
    entries
}

/// Makes something at the path it is given.
type MakeAt<'a> = &'a dyn Fn(&Path);

#[test]
fn a_rootfs_whose_runtime_directories_are_not_directories_is_refused() {
    let sb = Sandbox::busybox();
    let host = host_dir(&sb, "host-dir");
    let before = listing(&host);
    let r = sb.rootfs().to_path_buf();
    for dir in ["dev", "proc", "sys", "run"] {
        let path = r.join(dir);
        let existed = path.is_dir();
        let cases: [(&str, MakeAt<'_>); 4] = [
            ("a symlink", &|p| symlink(&host, p).unwrap()),
            ("a symlink", &|p| symlink("../../..", p).unwrap()),
            ("a regular file", &|p| std::fs::write(p, "").unwrap()),
            ("a FIFO", &|p| {
                nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap()
            }),
        ];
        for (kind, make) in cases {
            if path.is_dir() {
                std::fs::remove_dir(&path).unwrap();
            }
            make(&path);
            for sub in ["run", "spec"] {
                let out = sb.ocirun(sub, ["--", "true"]).run();
                out.assert_code(125);
                assert_eq!(
                    out.stderr,
                    format!("ocirun: rootfs {r:?}: /{dir} is {kind}, not a directory\n"),
                    "{sub}"
                );
            }
            std::fs::remove_file(&path).unwrap();
        }
        if existed {
            std::fs::create_dir(&path).unwrap();
            std::fs::set_permissions(&path, PermissionsExt::from_mode(0o755)).unwrap();
        }
    }
    assert_eq!(listing(&host), before, "the host directory is unchanged");
    sb.assert_nothing_left();
}

#[test]
fn the_ledger_keeps_no_file_once_the_runs_end() {
    let sb = Sandbox::busybox();
    let mut copies = Vec::new();
    for i in 0..20 {
        let copy = sb.scratch().join(format!("rootfs-{i}"));
        ocirun_e2e::copy_tree(&ocirun_e2e::busybox_fixture(), &copy);
        copies.push(copy);
    }
    for copy in &copies {
        ocirun_e2e::Ocirun::new([
            "--runroot".as_ref(),
            sb.runroot().as_os_str(),
            "--root".as_ref(),
            sb.root().as_os_str(),
            "run".as_ref(),
            "--rootfs".as_ref(),
            copy.as_os_str(),
            "--".as_ref(),
            "true".as_ref(),
        ])
        .run()
        .assert_success("");
    }
    for copy in &copies {
        std::fs::remove_dir_all(copy).unwrap();
    }
    let gc = sb.gc();
    assert!(gc.status.success(), "{gc:?}");
    // The run root keeps its directories (runtime, bundles, records, targets) and no file.
    let mut files = Vec::new();
    let mut dirs = vec![sb.runroot().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    assert_eq!(files, Vec::<PathBuf>::new(), "files left in the run root");
    assert!(sb.runroot().join("targets").is_dir());
    sb.assert_nothing_left();
}

/// Every entry below `dir` with its kind and content: what a run must not change.
fn checksums(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if meta.is_file() {
                format!("file {:?}", std::fs::read(&path).unwrap())
            } else {
                format!("{:?}", meta.file_type())
            };
            out.push((path.strip_prefix(dir).unwrap().to_path_buf(), what));
        }
    }
    out.sort();
    out
}

#[test]
fn the_users_directory_gets_no_mount_target_of_ocirun_s() {
    let sb = Sandbox::busybox_with(|r| symlink("/etc", r.join("data")).unwrap());
    let src = host_dir(&sb, "src");
    std::fs::create_dir(src.join("sub")).unwrap();
    let before = checksums(&src);
    let config = image_config(&sb, &["/etc/cache", "/run/cache", "/srv/cache"]);
    for dst in ["/etc", "/run", "/data"] {
        let out = sb
            .run([
                "--config",
                &text(&config),
                "-v",
                &format!("{}:{dst}", text(&src)),
                "--",
                "sh",
                "-c",
                &format!("ls -a {dst}; ls -d /srv/cache"),
            ])
            .run();
        out.assert_success(".\n..\nexisting\nsub\n/srv/cache\n");
        assert_eq!(checksums(&src), before, "-v SRC:{dst} changed SRC");
    }
    sb.assert_nothing_left();
}
