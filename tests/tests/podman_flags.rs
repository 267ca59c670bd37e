//! The flags that people bring from `podman run` and `buildah run`, seen from inside the
//! container (docs/ocirun-run.md "OPTIONS"): image configs as Docker writes them, `--env`
//! globs, `--env-host`, `--unsetenv`, `--read-only`, `--privileged`, `--sysctl`, `--umask`,
//! `--oom-score-adj`, `--annotation`, `--pidfile`, `--cidfile`, `--timeout`, `--ulimit host`,
//! repeated single-value flags, comma-separated lists, the runtime's debug log, colour; and
//! every bad value of these flags: exit 125 naming it, nothing left behind.

use std::io::Read;
use std::time::{Duration, Instant};

use ocirun_e2e::pty::Pty;
use ocirun_e2e::{runtime_containers, slack, status_mask, Sandbox};

/// A file of this test's scratch space holding `text`; its path.
fn scratch_file(sb: &Sandbox, name: &str, text: &str) -> String {
    let path = sb.scratch().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// This process's hard limit of `resource` in /proc/self/limits (ocirun inherits it).
fn own_limit(resource: &str, soft: bool) -> String {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with(resource))
        .unwrap_or_else(|| panic!("no {resource:?} in /proc/self/limits"));
    let mut fields = line[resource.len()..].split_whitespace();
    let value = if soft { fields.next() } else { fields.nth(1) };
    value.unwrap().to_owned()
}

#[test]
fn a_docker_image_config_with_unset_fields_runs_as_uid_0_in_slash() {
    let sb = Sandbox::busybox();
    // `docker inspect`'s Config of an image that set nothing: empty strings and nulls.
    let config = scratch_file(
        &sb,
        "docker.json",
        r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,
        "AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,
        "Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,
        "Labels":null,"StopSignal":"","ExposedPorts":null}"#,
    );
    sb.run(["--config", &config, "--", "sh", "-c", "id -u; pwd"])
        .run()
        .assert_success("0\n/\n");
    // skopeo inspect --config: the whole document, with the same empty fields.
    let config = scratch_file(
        &sb,
        "skopeo.json",
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
        "config":{"User":"","WorkingDir":"","Env":["PATH=/bin:/usr/bin",""],"Volumes":{"":{}}}}"#,
    );
    sb.run([
        "--config",
        &config,
        "--",
        "sh",
        "-c",
        "id -u; pwd; echo $PATH",
    ])
    .run()
    .assert_success("0\n/\n/bin:/usr/bin\n");
    sb.assert_nothing_left();
}

#[test]
fn env_globs_copy_the_matching_variables_of_ocirun() {
    let sb = Sandbox::busybox();
    let mut run = sb.run(["--env", "CI_*", "--", "sh", "-c", "env | grep ^CI_ | sort"]);
    // Whatever CI_ variables the test itself runs with are not the test's business.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CI_")) {
        run = run.env_remove(key);
    }
    run.env("CI_A", "a")
        .env("CI_B", "b")
        .env("NOT_CI", "x")
        .run()
        .assert_success("CI_A=a\nCI_B=b\n");
    // `PREFIX*=VALUE` is a variable with that name, as podman has it (a shell would not pass
    // such a name on: env prints the process's own environment).
    let out = sb.run(["--env", "CI_*=v", "--", "env"]).run();
    out.assert_code(0);
    assert!(
        out.stdout_text().lines().any(|l| l == "CI_*=v"),
        "{}",
        out.stdout_text()
    );
    sb.assert_nothing_left();
}

#[test]
fn env_host_unsetenv_and_unsetenv_all() {
    let sb = Sandbox::busybox();
    let config = scratch_file(&sb, "img.json", r#"{"Env":["FROM_IMAGE=1","DROP_ME=2"]}"#);
    sb.run([
        "--config",
        &config,
        "--env-host",
        "--unsetenv",
        "DROP_ME",
        "--",
        "sh",
        "-c",
        "echo $FROM_IMAGE ${DROP_ME-unset} $ONLY_ON_HOST",
    ])
    .env("ONLY_ON_HOST", "host")
    .run()
    .assert_success("1 unset host\n");
    let out = sb
        .run([
            "--config",
            &config,
            "--unsetenv-all",
            "--hostname",
            "h",
            "--env",
            "X=1",
            "--env",
            "PATH=/bin",
            "--",
            "/usr/bin/env",
        ])
        .run();
    out.assert_code(0);
    // Sorted: the runtimes order the environment each their own way (youki puts HOME first).
    let mut lines: Vec<&str> = out.stdout_text().lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["HOME=/root", "HOSTNAME=h", "PATH=/bin", "X=1"]);
    sb.assert_nothing_left();
}

#[test]
fn workdir_terminal_and_rm_are_podmans_and_buildahs_names() {
    let sb = Sandbox::busybox();
    sb.run(["--rm", "--workdir", "/tmp", "--", "pwd"])
        .run()
        .assert_success("/tmp\n");
    sb.run(["--terminal", "--", "sh", "-c", "test -t 1 && echo terminal"])
        .run()
        .assert_success("terminal\r\n");
    sb.assert_nothing_left();
}

#[test]
fn read_only_refuses_writes_but_tmp_var_tmp_and_run_are_writable() {
    let sb = Sandbox::busybox();
    sb.run([
        "--read-only",
        "--",
        "sh",
        "-c",
        "touch /x 2>&1; echo $?; for d in /tmp /var/tmp /run; do touch $d/y && echo $d; done",
    ])
    .run()
    .assert_success("touch: /x: Read-only file system\n1\n/tmp\n/var/tmp\n/run\n");
    // Without the tmpfs nothing is writable, /dev/shm included.
    sb.run([
        "--read-only",
        "--read-only-tmpfs=false",
        "--",
        "sh",
        "-c",
        "touch /tmp/y /dev/shm/y 2>&1; echo $?",
    ])
    .run()
    .assert_success(
        "touch: /tmp/y: Read-only file system\ntouch: /dev/shm/y: Read-only file system\n1\n",
    );
    // The generated files are read-only too, as podman mounts them.
    sb.run([
        "--read-only",
        "--",
        "sh",
        "-c",
        "(echo x >> /etc/hosts) 2>/dev/null || echo refused",
    ])
    .run()
    .assert_success("refused\n");
    sb.assert_nothing_left();
}

#[test]
fn privileged_gives_ocirun_s_bounding_set_and_no_seccomp() {
    let sb = Sandbox::busybox();
    // The capabilities the caps crate knows (bits 0 to 40) of ocirun's own bounding set.
    let bounding = status_mask(std::process::id(), "CapBnd").unwrap() & 0x1ff_ffff_ffff;
    sb.run([
        "--privileged",
        "--",
        "sh",
        "-c",
        "grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status; test -c /dev/null && \
         grep -c ' /sys sysfs rw' /proc/mounts",
    ])
    .run()
    .assert_success(&format!(
        "CapEff:\t{bounding:016x}\nCapBnd:\t{bounding:016x}\nSeccomp:\t0\n1\n"
    ));
    sb.assert_nothing_left();
}

#[test]
fn sysctl_with_a_network_of_its_own() {
    let sb = Sandbox::busybox();
    sb.run([
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--network",
        "none",
        "--",
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
    ])
    .run()
    .assert_success("1\n");
    sb.run([
        "--sysctl",
        "kernel.shmmni=100",
        "--",
        "cat",
        "/proc/sys/kernel/shmmni",
    ])
    .run()
    .assert_success("100\n");
    sb.assert_nothing_left();
}

#[test]
fn umask_oom_score_adj_and_annotations() {
    let sb = Sandbox::busybox();
    sb.run([
        "--umask",
        "0077",
        "--oom-score-adj",
        "100",
        "--",
        "sh",
        "-c",
        "umask; cat /proc/self/oom_score_adj; touch /tmp/f; stat -c %a /tmp/f; rm /tmp/f",
    ])
    .run()
    .assert_success("0077\n100\n600\n");
    let out = sb
        .ocirun(
            "spec",
            [
                "--annotation",
                "org.example.team=build",
                "--annotation",
                "empty=",
                "--",
                "true",
            ],
        )
        .run();
    out.assert_code(0);
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        spec["annotations"],
        serde_json::json!({"org.example.team": "build", "empty": ""})
    );
    sb.assert_nothing_left();
}

#[test]
fn pidfile_and_cidfile_hold_the_container_while_it_runs_and_go_with_it() {
    let sb = Sandbox::busybox();
    let pidfile = sb.scratch().join("ctr.pid");
    let cidfile = sb.scratch().join("ctr.cid");
    let running = sb
        .run([
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--cidfile",
            cidfile.to_str().unwrap(),
            "--",
            "sleep",
            "3",
        ])
        .spawn();
    let deadline = Instant::now() + slack(Duration::from_secs(5));
    while !pidfile.exists() {
        assert!(Instant::now() < deadline, "no pidfile within 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(pid.ends_with('\n'), "{pid:?}");
    let pid: u32 = pid.trim().parse().unwrap();
    // The container's PID 1 on the host: the command, in the rootfs.
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap(),
        "sleep\n"
    );
    assert!(ocirun_e2e::processes_rooted_at(sb.rootfs())
        .iter()
        .any(|(p, _)| *p == pid));
    let cid = std::fs::read_to_string(&cidfile).unwrap();
    assert_eq!(cid.len(), 64, "{cid:?}");
    assert_eq!(runtime_containers(sb.runroot()), std::slice::from_ref(&cid));
    running.wait().assert_success("");
    assert!(!pidfile.exists(), "the pidfile went with the container");
    assert!(!cidfile.exists(), "the cidfile went with the container");
    sb.assert_nothing_left();
}

#[test]
fn timeout_sends_the_stop_signal_and_ends_with_128_plus_it() {
    let sb = Sandbox::busybox();
    let out = sb.run(["--timeout", "1", "--", "sleep", "30"]).run();
    assert_eq!(out.code, 128 + 15, "stderr: {}", out.stderr);
    assert!(
        out.elapsed < slack(Duration::from_secs(3)),
        "took {:?}",
        out.elapsed
    );
    // The image's StopSignal is the first signal; a command that traps it exits as it likes.
    let config = scratch_file(&sb, "img.json", r#"{"StopSignal":"SIGINT"}"#);
    let out = sb
        .run(["--config", &config, "--timeout", "1", "--", "sleep", "30"])
        .run();
    assert_eq!(out.code, 128 + 2, "stderr: {}", out.stderr);
    sb.run([
        "--timeout",
        "1",
        "--",
        "sh",
        "-c",
        "trap 'echo caught; exit 7' TERM; sleep 30 & wait",
    ])
    .run()
    .assert_code(7);
    sb.assert_nothing_left();
}

#[test]
fn ulimit_host_and_ulimit_names_in_any_case() {
    let sb = Sandbox::busybox();
    let hard = own_limit("Max open files", false);
    let soft = own_limit("Max open files", true);
    sb.run([
        "--ulimit",
        "host",
        "--",
        "sh",
        "-c",
        "ulimit -Hn; ulimit -Sn",
    ])
    .run()
    .assert_success(&format!("{hard}\n{soft}\n"));
    sb.run([
        "--ulimit",
        "NOFILE=512:1024",
        "--ulimit",
        "RLIMIT_CORE=0",
        "--",
        "sh",
        "-c",
        "ulimit -Sn; ulimit -Hn; ulimit -c",
    ])
    .run()
    .assert_success("512\n1024\n0\n");
    sb.assert_nothing_left();
}

#[test]
fn a_repeated_single_value_flag_takes_its_last_value() {
    let sb = Sandbox::busybox();
    sb.run(["--hostname", "a", "--hostname", "b", "--", "hostname"])
        .run()
        .assert_success("b\n");
    sb.run([
        "--shm-size",
        "1m",
        "--shm-size",
        "2m",
        "--user",
        "1000",
        "--user",
        "0",
        "--",
        "sh",
        "-c",
        "df -k /dev/shm | tail -1 | awk '{print $2}'; id -u",
    ])
    .run()
    .assert_success("2048\n0\n");
    let out = sb
        .ocirun(
            "spec",
            ["--memory", "64m", "--memory", "128m", "--", "true"],
        )
        .run();
    out.assert_code(0);
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        spec["linux"]["resources"]["memory"]["limit"],
        serde_json::json!(134_217_728)
    );
    sb.assert_nothing_left();
}

#[test]
fn comma_separated_dns_and_add_host() {
    let sb = Sandbox::busybox();
    sb.run([
        "--dns",
        "192.0.2.1,192.0.2.2",
        "--dns-search",
        "a.example,b.example",
        "--dns-option",
        "ndots:2,edns0",
        "--add-host",
        "one:192.0.2.10,two:192.0.2.11",
        "--",
        "sh",
        "-c",
        "grep -v '^#' /etc/resolv.conf | grep -E '^(nameserver|search|options)'; \
         grep -E '^192.0.2.1[01]' /etc/hosts",
    ])
    .run()
    .assert_success(
        "search a.example b.example\nnameserver 192.0.2.1\nnameserver 192.0.2.2\n\
         options ndots:2 edns0\n192.0.2.10\tone\n192.0.2.11\ttwo\n",
    );
    sb.assert_nothing_left();
}

#[test]
fn etc_hostname_with_uts_host_holds_the_hosts_name() {
    let sb = Sandbox::busybox();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    sb.run(["--uts", "host", "--", "cat", "/etc/hostname"])
        .run()
        .assert_success(&host);
    sb.assert_nothing_left();
}

#[test]
fn runtime_flag_debug_and_log_level_debug_show_the_runtimes_log() {
    // A runtime that, given --debug, adds a debug entry of its own to the JSON log once the
    // runtime under test is done (runc, youki and crun log different things at that level,
    // crun nothing on success), and writes a line to stderr on delete.
    let sb = Sandbox::busybox();
    let runtime = ocirun_e2e::script(
        sb.scratch(),
        "debug-runtime",
        &format!(
            "debug=; log=; prev=\n\
             for a in \"$@\"; do [ \"$a\" = --debug ] && debug=1; [ \"$prev\" = --log ] && log=$a; prev=$a; done\n\
             {} \"$@\"; rc=$?\n\
             if [ -n \"$debug\" ] && [ -n \"$log\" ]; then echo '{{\"level\":\"debug\",\"msg\":\"the stand-in ran\",\"time\":\"t\"}}' >> \"$log\"; fi\n\
             case \" $* \" in *\" delete \"*) [ -n \"$debug\" ] && echo 'deleted it' >&2;; esac\n\
             exit $rc\n",
            ocirun_e2e::runtime().display()
        ),
    );
    let runtime = runtime.to_str().unwrap();
    for flags in [&["--runtime-flag", "debug"][..], &[][..]] {
        let mut args: Vec<&str> = vec!["--runtime", runtime];
        args.extend_from_slice(flags);
        args.extend(["--", "echo", "hi"]);
        let mut run = sb.run(&args);
        if flags.is_empty() {
            run = ocirun_e2e::Ocirun::new([
                "--log-level",
                "debug",
                "--runroot",
                sb.runroot().to_str().unwrap(),
                "--root",
                sb.root().to_str().unwrap(),
                "run",
                "--rootfs",
                sb.rootfs().to_str().unwrap(),
                "--runtime",
                runtime,
                "--",
                "echo",
                "hi",
            ]);
        }
        let out = run.run();
        out.assert_code(0);
        assert_eq!(out.stdout_text(), "hi\n");
        for line in [
            "debug-runtime run: debug: the stand-in ran",
            "debug-runtime delete: deleted it",
        ] {
            assert!(
                out.stderr.lines().any(|l| l == line),
                "{flags:?}: no {line:?} on stderr: {}",
                out.stderr
            );
        }
    }
    sb.assert_nothing_left();
}

#[test]
fn colour_only_on_a_terminal_and_not_with_no_color() {
    let sb = Sandbox::busybox();
    // A warning of ocirun's own: a secret mount that no --secret declares, not required.
    let args = [
        "--mount",
        "type=secret,id=absent,required=false",
        "--",
        "true",
    ];
    let out = sb.run(args).run();
    out.assert_code(0);
    assert!(out.stderr.contains("WARN"), "{}", out.stderr);
    assert!(
        !out.stderr.contains('\x1b'),
        "colour on a pipe: {:?}",
        out.stderr
    );
    for (no_color, coloured) in [(None, true), (Some("1"), false), (Some(""), true)] {
        let pty = Pty::open(24, 80);
        let mut cmd = sb.run(args).command();
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(pty.slave_stdio());
        match no_color {
            Some(v) => cmd.env("NO_COLOR", v),
            None => cmd.env_remove("NO_COLOR"),
        };
        let status = cmd.status().unwrap();
        assert!(status.success());
        let shown = pty.wait_for("absent", slack(Duration::from_secs(5)));
        assert_eq!(
            shown.contains('\x1b'),
            coloured,
            "NO_COLOR={no_color:?}: {shown:?}"
        );
    }
    sb.assert_nothing_left();
}

/// Every bad value of the flags above: 125, the flag and the value named, nothing left.
#[test]
fn bad_values_of_the_new_flags_exit_125_naming_them() {
    let sb = Sandbox::busybox();
    let secret = scratch_file(&sb, "secret", "s3cret");
    let fifo = sb.scratch().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo = fifo.to_str().unwrap().to_owned();
    let existing = scratch_file(&sb, "existing.cid", "");
    let stop_signal = scratch_file(&sb, "img.json", r#"{"StopSignal":"SIGFOO"}"#);
    let missing_dir = sb.scratch().join("no/such/dir/pid");
    let missing_dir = missing_dir.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, String)> =
        vec![
        (
            vec!["--sysctl".into(), "kernel.hostname=x".into()],
            "invalid --sysctl \"kernel.hostname=x\": \"kernel.hostname\" is not namespaced".into(),
        ),
        (
            vec!["--sysctl".into(), "net.ipv4.ip_forward".into()],
            "invalid --sysctl \"net.ipv4.ip_forward\": expected KEY=VALUE".into(),
        ),
        (
            vec!["--sysctl".into(), "net.ipv4.ip_forward=1".into()],
            "invalid --sysctl \"net.ipv4.ip_forward=1\": it needs the container's own network \
             namespace, and the run has --network host"
                .into(),
        ),
        (
            vec![
                "--sysctl".into(),
                "kernel.shmmax=1".into(),
                "--ipc".into(),
                "host".into(),
            ],
            "invalid --sysctl \"kernel.shmmax=1\": it needs the container's own ipc namespace, \
             and the run has --ipc host"
                .into(),
        ),
        (
            vec!["--umask".into(), "0999".into()],
            "invalid --umask \"0999\": expected one to four octal digits, e.g. 0022".into(),
        ),
        (
            vec!["--oom-score-adj".into(), "1001".into()],
            "invalid --oom-score-adj \"1001\": must be from -1000 to 1000".into(),
        ),
        (
            vec!["--annotation".into(), "novalue".into()],
            "invalid --annotation \"novalue\": expected KEY=VALUE".into(),
        ),
        (
            vec!["--unsetenv".into(), "A=1".into()],
            "invalid --unsetenv \"A=1\": not a variable name".into(),
        ),
        (
            vec!["--ulimit".into(), "FILES=1".into()],
            "invalid --ulimit \"FILES=1\": unknown resource \"FILES\"".into(),
        ),
        (
            vec!["--timeout".into(), "-1".into()],
            "invalid value '-1' for '--timeout <SECONDS>'".into(),
        ),
        (
            vec!["--read-only=maybe".into()],
            "invalid value 'maybe' for '--read-only[=<BOOL>]'".into(),
        ),
        (
            vec!["--privileged=yes".into()],
            "invalid value 'yes' for '--privileged[=<BOOL>]'".into(),
        ),
        (
            vec!["--pidfile".into(), missing_dir.clone()],
            format!("--pidfile {missing_dir:?}: "),
        ),
        (
            vec!["--cidfile".into(), existing.clone()],
            format!(
                "--cidfile {existing:?}: the file exists; make sure no other container uses it, \
                 or remove it"
            ),
        ),
        (
            vec!["--config".into(), stop_signal.clone()],
            "image configuration: StopSignal \"SIGFOO\": invalid signal \"SIGFOO\": use a name \
             such as SIGTERM or a number"
                .into(),
        ),
        (
            vec!["--dns".into(), "192.0.2.1".into(), "--network".into(), "none".into()],
            "conflicting options: dns and the network mode: none (--dns \"192.0.2.1\")".into(),
        ),
        (
            vec![
                "--dns-search".into(),
                "example.com".into(),
                "--network".into(),
                "ns:/proc/self/ns/net".into(),
            ],
            "conflicting options: dns and the network mode: ns:/proc/self/ns/net \
             (--dns-search \"example.com\")"
                .into(),
        ),
        (
            vec!["--secret".into(), "id=tok,src=/nonexistent/secret".into()],
            "invalid --secret \"id=tok,src=/nonexistent/secret\": source \
             \"/nonexistent/secret\": no such file"
                .into(),
        ),
        (
            vec!["--secret".into(), format!("id=tok,src={fifo}")],
            format!(
                "invalid --secret \"id=tok,src={fifo}\": source {fifo:?}: a FIFO, not a regular \
                 file"
            ),
        ),
        (
            vec!["--secret".into(), "id=tok,src=/dev/null".into()],
            "invalid --secret \"id=tok,src=/dev/null\": source \"/dev/null\": a device, not a \
             regular file"
                .into(),
        ),
        (
            vec!["--secret".into(), format!("id=a/b,src={secret}")],
            format!(
                "invalid --secret \"id=a/b,src={secret}\": id \"a/b\" must be a file name (no \
                 '/', not '.' or '..')"
            ),
        ),
        (
            vec!["--secret".into(), format!("id=tok,src={secret},mode=999")],
            format!(
                "invalid --secret \"id=tok,src={secret},mode=999\": mode \"999\" is not an octal \
                 mode up to 0777"
            ),
        ),
        (
            vec!["--secret".into(), format!("src={secret}")],
            format!("invalid --secret \"src={secret}\": no id: expected id=ID"),
        ),
        (
            vec!["--mount".into(), "type=secret,id=undeclared".into()],
            "invalid --mount \"type=secret,id=undeclared\": no --secret declares the id \
             \"undeclared\""
                .into(),
        ),
        (
            vec![
                "--mount".into(),
                "type=cache,target=/c,sharing=sometimes".into(),
            ],
            "invalid --mount \"type=cache,target=/c,sharing=sometimes\": sharing \"sometimes\": \
             expected shared, locked or private"
                .into(),
        ),
        (
            vec!["--mount".into(), "type=cache,target=/c,from=builder".into()],
            "invalid --mount \"type=cache,target=/c,from=builder\": from= is not supported"
                .into(),
        ),
        (
            vec!["-v".into(), "my vol:/data".into()],
            "invalid volume \"my vol:/data\": invalid volume name \"my vol\": use a letter or \
             digit, then letters, digits, '_', '.' or '-'; a relative host path starts with ./ \
             or ../"
                .into(),
        ),
        (
            vec!["-v".into(), "data/sub:/data".into()],
            "invalid volume \"data/sub:/data\": invalid volume name \"data/sub\"".into(),
        ),
        (
            vec!["--mount".into(), "type=volume,source=vol$,destination=/d".into()],
            "invalid --mount \"type=volume,source=vol$,destination=/d\": invalid volume name \
             \"vol$\""
                .into(),
        ),
        (
            vec!["-v".into(), "data:/data:O".into()],
            "invalid volume \"data:/data:O\": O takes a host path, not the volume \"data\"".into(),
        ),
        (
            vec!["-v".into(), "nothere:/data:nocreate".into()],
            "no volume with name \"nothere\" found (nocreate)".into(),
        ),
    ];
    for (mut flags, message) in cases {
        flags.extend(["--".into(), "true".into()]);
        sb.run(&flags).run().assert_failure(125, &message);
    }
    // The volume commands name a bad name or format too.
    for (args, message) in [
        (
            &["volume", "rm", "a/b"][..],
            "invalid volume name \"a/b\": use a letter or digit",
        ),
        (
            &["volume", "inspect", "missing"][..],
            "no volume with name \"missing\" found",
        ),
        (
            &["volume", "ls", "--format", "{{.Labels}}"][..],
            "invalid --format \"{{.Labels}}\": unknown field \".Labels\"",
        ),
    ] {
        sb.global(args).run().assert_failure(125, message);
    }
    assert!(
        !sb.root().join("cache").exists() && !sb.root().join("volumes").exists(),
        "bad values made state directories"
    );
    assert!(
        std::path::Path::new(&existing).exists(),
        "the cidfile was touched"
    );
    let mut bytes = String::new();
    std::fs::File::open(&secret)
        .unwrap()
        .read_to_string(&mut bytes)
        .unwrap();
    assert_eq!(bytes, "s3cret", "the secret's source was changed");
    sb.assert_nothing_left();
}
