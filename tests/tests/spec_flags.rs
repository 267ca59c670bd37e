//! The flags that shape the spec, seen from inside the container: capabilities, rlimits,
//! seccomp, cgroup resources, namespaces, masked paths, devices, groups, env files, proxies
//! (docs/ocirun-run.md "Process" and "Linux").
//!
//! Some values depend on the host, and each test states what it expects of it rather than
//! assuming: ocirun's bounding set and CAP_SYS_RESOURCE (read from this test process's
//! /proc/self/status: ocirun inherits them), its hard rlimits, and cgroup v1 or v2.

use std::path::Path;

use ocirun_e2e::{status_mask, Sandbox};

/// A capability mask from this process's /proc/self/status (`CapBnd`, `CapEff`, ...).
fn own_caps(field: &str) -> u64 {
    status_mask(std::process::id(), field)
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// This process's hard limit of `resource` (ocirun, its child, inherits it).
fn own_hard_limit(resource: &str) -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with(resource))
        .unwrap_or_else(|| panic!("no {resource:?} in /proc/self/limits"));
    let hard = line[resource.len()..].split_whitespace().nth(1).unwrap();
    hard.parse().ok()
}

const CAP_SYS_RESOURCE: u64 = 1 << 24;

#[test]
fn default_capabilities() {
    let sb = Sandbox::busybox();
    sb.run(["--", "grep", "CapEff", "/proc/self/status"])
        .run()
        .assert_success("CapEff:\t00000000800405fb\n");
    sb.assert_nothing_left();
}

#[test]
fn non_root_user_keeps_only_the_bounding_set() {
    let sb = Sandbox::busybox();
    sb.run(["--user", "1000", "--", "grep", "^Cap", "/proc/self/status"])
        .run()
        .assert_success(
            "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n\
             CapEff:\t0000000000000000\nCapBnd:\t00000000800405fb\n\
             CapAmb:\t0000000000000000\n",
        );
    sb.assert_nothing_left();
}

#[test]
fn cap_add_all_gives_what_ocirun_has_and_no_inheritable() {
    let sb = Sandbox::busybox();
    // ALL is every capability in ocirun's own bounding set (runc can give no other).
    let expected = own_caps("CapBnd") & 0x1ff_ffff_ffff;
    sb.run([
        "--cap-add",
        "ALL",
        "--",
        "grep",
        "^Cap",
        "/proc/self/status",
    ])
    .run()
    .assert_success(&format!(
        "CapInh:\t0000000000000000\nCapPrm:\t{expected:016x}\nCapEff:\t{expected:016x}\n\
             CapBnd:\t{expected:016x}\nCapAmb:\t0000000000000000\n"
    ));
    sb.assert_nothing_left();
}

#[test]
fn cap_add_and_drop() {
    let sb = Sandbox::busybox();
    // + NET_RAW (13), - CHOWN (0) and KILL (5).
    sb.run([
        "--cap-add",
        "net_raw",
        "--cap-drop",
        "CAP_CHOWN,kill",
        "--",
        "grep",
        "CapEff",
        "/proc/self/status",
    ])
    .run()
    .assert_success(&format!(
        "CapEff:\t{:016x}\n",
        (0x8004_05fb_u64 | 1 << 13) & !0x21
    ));
    sb.run([
        "--cap-drop",
        "ALL",
        "--",
        "grep",
        "CapBnd",
        "/proc/self/status",
    ])
    .run()
    .assert_success("CapBnd:\t0000000000000000\n");
    sb.assert_nothing_left();
}

#[test]
fn unknown_or_unavailable_capability_exits_125() {
    let sb = Sandbox::busybox();
    sb.run(["--cap-add", "CAP_FLY", "--", "true"])
        .run()
        .assert_failure(125, "unknown capability \"CAP_FLY\"");
    let out = sb.run(["--cap-add", "SYS_RESOURCE", "--", "true"]).run();
    if own_caps("CapBnd") & CAP_SYS_RESOURCE == 0 {
        out.assert_failure(
            125,
            "cannot add CAP_SYS_RESOURCE: ocirun's own bounding set lacks it",
        );
    } else {
        out.assert_success("");
    }
    sb.assert_nothing_left();
}

#[test]
fn ulimits_are_set() {
    let sb = Sandbox::busybox();
    let out = sb
        .run([
            "--ulimit",
            "core=0:-1",
            "--ulimit",
            "nofile=512:1024",
            "--",
            "sh",
            "-c",
            "ulimit -Hc; ulimit -Sn; ulimit -Hn",
        ])
        .run();
    let own_core = own_hard_limit("Max core file size");
    if own_core.is_none() || own_caps("CapEff") & CAP_SYS_RESOURCE != 0 {
        out.assert_success("unlimited\n512\n1024\n");
    } else {
        // A hard core limit on this host, and no CAP_SYS_RESOURCE to raise it.
        out.assert_failure(
            125,
            "--ulimit core=0:unlimited: hard limit unlimited is above",
        );
    }
    sb.assert_nothing_left();
}

#[test]
fn default_nofile_is_ocirun_hard_limit_capped() {
    let sb = Sandbox::busybox();
    let own = own_hard_limit("Max open files").map_or(1_048_576, |n| n.min(1_048_576));
    sb.run(["--", "sh", "-c", "ulimit -Sn; ulimit -Hn"])
        .run()
        .assert_success(&format!("{own}\n{own}\n"));
    sb.assert_nothing_left();
}

#[test]
fn soft_above_hard_exits_125_naming_the_option() {
    let sb = Sandbox::busybox();
    sb.run(["--ulimit", "nofile=10:5", "--", "true"])
        .run()
        .assert_failure(
            125,
            "invalid --ulimit \"nofile=10:5\": soft limit 10 is greater than hard limit 5",
        );
    sb.run(["--ulimit", "files=10", "--", "true"])
        .run()
        .assert_failure(
            125,
            "invalid --ulimit \"files=10\": unknown resource \"files\"",
        );
    sb.assert_nothing_left();
}

#[test]
fn hard_limit_above_ocirun_own_needs_cap_sys_resource() {
    let sb = Sandbox::busybox();
    let Some(own) = own_hard_limit("Max open files") else {
        panic!("this test needs a finite hard RLIMIT_NOFILE (ulimit -Hn) to go above");
    };
    // A soft limit that leaves runc's init the descriptors it needs where the raise succeeds.
    let ulimit = format!("nofile={}:{}", own.min(1024), own + 1);
    let out = sb
        .run(["--ulimit", &ulimit, "--", "sh", "-c", "ulimit -Hn"])
        .run();
    if own_caps("CapEff") & CAP_SYS_RESOURCE == 0 {
        out.assert_failure(
            125,
            &format!(
                "--ulimit {ulimit}: hard limit {} is above ocirun's own hard limit {own} for \
                 nofile, and ocirun lacks CAP_SYS_RESOURCE to raise it",
                own + 1
            ),
        );
    } else {
        out.assert_success(&format!("{}\n", own + 1));
    }
    sb.assert_nothing_left();
}

#[test]
fn default_seccomp_filter_is_on_and_unconfined_removes_it() {
    let sb = Sandbox::busybox();
    sb.run(["--", "grep", "Seccomp:", "/proc/self/status"])
        .run()
        .assert_success("Seccomp:\t2\n");
    sb.run([
        "--security-opt",
        "seccomp=unconfined",
        "--",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ])
    .run()
    .assert_success("Seccomp:\t0\n");
    let spec = sb
        .ocirun(
            "spec",
            ["--security-opt", "seccomp=unconfined", "--", "true"],
        )
        .run();
    spec.assert_code(0);
    let json: serde_json::Value = serde_json::from_slice(&spec.stdout).unwrap();
    assert_eq!(
        json["linux"].get("seccomp"),
        None,
        "unconfined leaves no filter"
    );
    sb.assert_nothing_left();
}

#[test]
fn seccomp_profile_denying_mkdir() {
    let sb = Sandbox::busybox();
    let profile = sb.scratch().join("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errno": "EPERM"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    sb.run(["--security-opt", &opt, "--", "mkdir", "/x"])
        .run()
        .assert_failure(
            1,
            "mkdir: can't create directory '/x': Operation not permitted",
        );
    assert!(!sb.rootfs().join("x").exists());
    sb.assert_nothing_left();
}

#[test]
fn seccomp_profile_with_an_unknown_syscall_exits_125_naming_it() {
    let sb = Sandbox::busybox();
    let profile = sb.scratch().join("bad.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "frobnicate"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    sb.run(["--security-opt", &opt, "--", "true"])
        .run()
        .assert_failure(
            125,
            &format!(
                "seccomp profile \"{}\": unknown syscall \"frobnicate\"",
                profile.display()
            ),
        );
    let missing = format!("seccomp={}", sb.scratch().join("missing.json").display());
    sb.run(["--security-opt", &missing, "--", "true"])
        .run()
        .assert_failure(125, "cannot read seccomp profile");
    sb.assert_nothing_left();
}

/// `cat` of the first of `files` that exists in the container: cgroup v1 paths, then v2.
fn cat_first(files: &[&str]) -> String {
    files
        .iter()
        .map(|f| format!("cat {f} 2>/dev/null"))
        .collect::<Vec<_>>()
        .join(" || ")
}

#[test]
fn memory_limit_shows_in_the_memory_controller() {
    let sb = Sandbox::busybox();
    let script = cat_first(&[
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/memory.max",
    ]);
    sb.run(["--memory", "64m", "--", "sh", "-c", &script])
        .run()
        .assert_success("67108864\n");
    sb.assert_nothing_left();
}

#[test]
fn pids_limit_shows_in_the_pids_controller() {
    let sb = Sandbox::busybox();
    let script = cat_first(&["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"]);
    sb.run(["--pids-limit", "32", "--", "sh", "-c", &script])
        .run()
        .assert_success("32\n");
    sb.assert_nothing_left();
}

#[test]
fn cpus_become_a_cfs_quota() {
    let sb = Sandbox::busybox();
    let v1 = "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us \
              2>/dev/null";
    let v2 = "cat /sys/fs/cgroup/cpu.max | tr ' ' '\\n'";
    let script = format!("{v1} || {v2}");
    sb.run(["--cpus", "1.5", "--", "sh", "-c", &script])
        .run()
        .assert_success("150000\n100000\n");
    sb.assert_nothing_left();
}

#[test]
fn bad_resource_values_exit_125_naming_them() {
    let sb = Sandbox::busybox();
    sb.run(["--memory", "64x", "--", "true"])
        .run()
        .assert_failure(125, "invalid --memory \"64x\": unknown unit \"x\"");
    sb.run(["--memory", "1m", "--", "true"])
        .run()
        .assert_failure(125, "invalid --memory 1m: below the minimum of 6m");
    sb.run(["--cpus", "-1", "--", "true"])
        .run()
        .assert_failure(125, "invalid --cpus \"-1\"");
    sb.run(["--cpuset-cpus", "3-1", "--", "true"])
        .run()
        .assert_failure(
            125,
            "invalid --cpuset-cpus \"3-1\": range 3-1 is descending",
        );
    sb.run(["--memory-swap", "1g", "--", "true"])
        .run()
        .assert_failure(125, "invalid --memory-swap 1g: needs --memory");
    sb.assert_nothing_left();
}

#[test]
fn shm_size_sets_the_dev_shm_tmpfs() {
    let sb = Sandbox::busybox();
    sb.run([
        "--shm-size",
        "1m",
        "--",
        "sh",
        "-c",
        "df -k /dev/shm | tail -n 1 | awk '{print $2}'",
    ])
    .run()
    .assert_success("1024\n");
    sb.assert_nothing_left();
}

#[test]
fn network_none_has_only_loopback() {
    let sb = Sandbox::busybox();
    sb.run(["--network", "none", "--", "ls", "/sys/class/net"])
        .run()
        .assert_success("lo\n");
    sb.run(["--network", "bridge", "--", "true"])
        .run()
        .assert_failure(
            125,
            "invalid --network \"bridge\": expected host, none or ns:PATH",
        );
    sb.assert_nothing_left();
}

#[test]
fn host_pid_and_uts_namespaces() {
    let sb = Sandbox::busybox();
    sb.run([
        "--pid",
        "host",
        "--",
        "sh",
        "-c",
        "test $$ -ne 1 && echo not-init",
    ])
    .run()
    .assert_success("not-init\n");
    let host = nix_hostname();
    sb.run([
        "--uts",
        "host",
        "--",
        "sh",
        "-c",
        "hostname; echo $HOSTNAME",
    ])
    .run()
    .assert_success(&format!("{host}\n{host}\n"));
    sb.run(["--uts", "host", "--hostname", "x", "--", "true"])
        .run()
        .assert_failure(125, "cannot set the hostname \"x\" with --uts host");
    sb.assert_nothing_left();
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn masked_paths_read_empty() {
    let sb = Sandbox::busybox();
    let on_host = std::fs::read_to_string("/proc/interrupts").unwrap();
    assert!(!on_host.is_empty(), "/proc/interrupts is empty on the host");
    sb.run([
        "--",
        "sh",
        "-c",
        "wc -c < /proc/interrupts; ls -A /sys/firmware | wc -l",
    ])
    .run()
    .assert_success("0\n0\n");
    // mask= adds a path; unmask= lifts a default one.
    sb.run([
        "--security-opt",
        "mask=/proc/cpuinfo",
        "--security-opt",
        "unmask=/proc/interrupts",
        "--",
        "sh",
        "-c",
        "wc -c < /proc/cpuinfo; grep -c CPU0 /proc/interrupts",
    ])
    .run()
    .assert_success("0\n1\n");
    sb.assert_nothing_left();
}

#[test]
fn read_only_paths_cannot_be_written() {
    let sb = Sandbox::busybox();
    sb.run(["--", "sh", "-c", "echo 1 > /proc/sys/kernel/ns_last_pid"])
        .run()
        .assert_failure(1, "Read-only file system");
    sb.assert_nothing_left();
}

#[test]
fn no_new_privileges() {
    let sb = Sandbox::busybox();
    sb.run(["--", "grep", "NoNewPrivs", "/proc/self/status"])
        .run()
        .assert_success("NoNewPrivs:\t0\n");
    sb.run([
        "--security-opt",
        "no-new-privileges",
        "--",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ])
    .run()
    .assert_success("NoNewPrivs:\t1\n");
    sb.assert_nothing_left();
}

#[test]
fn labels_and_apparmor_on_a_host_without_them() {
    let sb = Sandbox::busybox();
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    assert!(
        !selinux && !apparmor,
        "this test is about a host without SELinux and AppArmor"
    );
    // Nothing is set and nothing fails.
    sb.run(["--security-opt", "label=type:spc_t", "--", "echo", "ok"])
        .run()
        .assert_success("ok\n");
    let spec = sb
        .ocirun(
            "spec",
            ["--security-opt", "label=level:s0:c1,c2", "--", "true"],
        )
        .run();
    spec.assert_code(0);
    let json: serde_json::Value = serde_json::from_slice(&spec.stdout).unwrap();
    assert_eq!(json["process"].get("selinuxLabel"), None);
    assert_eq!(json["linux"].get("mountLabel"), None);
    sb.run(["--security-opt", "apparmor=unconfined", "--", "echo", "ok"])
        .run()
        .assert_success("ok\n");
    sb.run(["--security-opt", "apparmor=my-profile", "--", "true"])
        .run()
        .assert_failure(
            125,
            "apparmor profile \"my-profile\" given, but AppArmor is not enabled on this host",
        );
    sb.run(["--security-opt", "selinux=x", "--", "true"])
        .run()
        .assert_failure(125, "invalid --security-opt \"selinux=x\": unknown option");
    sb.assert_nothing_left();
}

#[test]
fn devices_are_created_with_their_cgroup_access() {
    let sb = Sandbox::busybox();
    // /dev/kmsg is 1:11; with access r only, opening it for writing is refused by the device
    // cgroup.
    sb.run([
        "--device",
        "/dev/kmsg:/dev/mykmsg:r",
        "--",
        "sh",
        "-c",
        "stat -c '%F %t:%T' /dev/mykmsg; echo x > /dev/mykmsg",
    ])
    .run()
    .assert_code(1);
    let out = sb
        .run([
            "--device",
            "/dev/kmsg:/dev/mykmsg:r",
            "--",
            "stat",
            "-c",
            "%F %t:%T",
            "/dev/mykmsg",
        ])
        .run();
    out.assert_success("character special file 1:b\n");
    sb.run(["--device", "/etc/passwd:/dev/passwd", "--", "true"])
        .run()
        .assert_failure(
            125,
            "invalid --device \"/etc/passwd:/dev/passwd\": \"/etc/passwd\" is not a device node",
        );
    sb.run(["--device", "/dev/kmsg:/etc/kmsg", "--", "true"])
        .run()
        .assert_failure(125, "the container path must be below /dev");
    sb.assert_nothing_left();
}

#[test]
fn user_app_gets_its_groups_and_group_add() {
    let sb = Sandbox::busybox();
    sb.run(["--user", "app", "--", "grep", "Groups", "/proc/self/status"])
        .run()
        .assert_success("Groups:\t10 1000 \n");
    sb.run([
        "--user",
        "app",
        "--group-add",
        "root,4242",
        "--",
        "grep",
        "Groups",
        "/proc/self/status",
    ])
    .run()
    .assert_success("Groups:\t0 10 1000 4242 \n");
    sb.run(["--group-add", "nogroup", "--", "true"])
        .run()
        .assert_failure(125, "unknown group \"nogroup\"");
    sb.assert_nothing_left();
}

#[test]
fn numeric_uid_without_entry() {
    let sb = Sandbox::busybox();
    sb.run([
        "--user",
        "4242",
        "--",
        "sh",
        "-c",
        "echo $HOME; id -u; id -g",
    ])
    .run()
    .assert_success("/\n4242\n0\n");
    sb.assert_nothing_left();
}

#[test]
fn env_file_between_image_env_and_env_flags() {
    let sb = Sandbox::busybox();
    let file = sb.scratch().join("vars.env");
    std::fs::write(
        &file,
        "# a comment\n\nA=file\n  B=two words \nFROM_HOST\nNOT_ON_HOST\nC=file\n",
    )
    .unwrap();
    let config = sb.scratch().join("config.json");
    std::fs::write(&config, r#"{"Env":["A=image","D=image"]}"#).unwrap();
    let (config, file) = (config.to_str().unwrap(), file.to_str().unwrap());
    sb.run([
        "--config",
        config,
        "--env-file",
        file,
        "--env",
        "C=flag",
        "--",
        "sh",
        "-c",
        "echo \"$A|$B|$C|$D|$FROM_HOST|${NOT_ON_HOST-unset}\"",
    ])
    .env("FROM_HOST", "host value")
    .env_remove("NOT_ON_HOST")
    .run()
    .assert_success("file|two words |flag|image|host value|unset\n");
    std::fs::write(file, "=nokey\n").unwrap();
    sb.run(["--env-file", file, "true"])
        .run()
        .assert_failure(125, "invalid line 1 of env file");
    sb.assert_nothing_left();
}

#[test]
fn proxy_variables_come_from_ocirun_environment() {
    let sb = Sandbox::busybox();
    let script = "echo \"${http_proxy-unset} ${NO_PROXY-unset} ${OTHER-unset}\"";
    sb.run(["--", "sh", "-c", script])
        .env("http_proxy", "http://proxy:3128")
        .env("NO_PROXY", "localhost")
        .env("OTHER", "x")
        .run()
        .assert_success("http://proxy:3128 localhost unset\n");
    sb.run(["--http-proxy=false", "--", "sh", "-c", script])
        .env("http_proxy", "http://proxy:3128")
        .env("NO_PROXY", "localhost")
        .run()
        .assert_success("unset unset unset\n");
    sb.assert_nothing_left();
}

#[test]
fn command_is_found_in_the_rootfs_path_not_the_host_path() {
    let sb = Sandbox::busybox_with(|rootfs| {
        let bin = rootfs.join("usr/local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(
            bin.join("only-in-rootfs"),
            "#!/bin/sh\necho from the rootfs\n",
        )
        .unwrap();
        let mut perms = std::fs::metadata(bin.join("only-in-rootfs"))
            .unwrap()
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(bin.join("only-in-rootfs"), perms).unwrap();
    });
    sb.run(["only-in-rootfs"])
        .run()
        .assert_success("from the rootfs\n");
    // A command that only the host has, in a directory on ocirun's own PATH.
    let host_bin = sb.scratch().join("host-bin");
    std::fs::create_dir(&host_bin).unwrap();
    std::fs::write(host_bin.join("only-on-host"), "#!/bin/sh\necho host\n").unwrap();
    let mut perms = std::fs::metadata(host_bin.join("only-on-host"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(host_bin.join("only-on-host"), perms).unwrap();
    let path = format!(
        "{}:{}",
        host_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    sb.run(["only-on-host"])
        .env("PATH", path)
        .run()
        .assert_failure(127, "executable file not found in $PATH");
    sb.assert_nothing_left();
}

#[test]
fn use_entrypoint_runs_the_image_entrypoint() {
    let sb = Sandbox::busybox();
    let config = sb.scratch().join("config.json");
    std::fs::write(&config, r#"{"Entrypoint":["echo","from"],"Cmd":["image"]}"#).unwrap();
    let config = config.to_str().unwrap();
    sb.run(["--config", config, "--use-entrypoint"])
        .run()
        .assert_success("from image\n");
    sb.run(["--config", config, "--use-entrypoint", "--", "args"])
        .run()
        .assert_success("from args\n");
    sb.run(["--config", config])
        .run()
        .assert_failure(125, "command must be specified");
    sb.assert_nothing_left();
}
