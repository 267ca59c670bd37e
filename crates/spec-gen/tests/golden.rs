//! Golden tests: the whole `config.json` for representative option sets, pinned byte for byte
//! in `tests/golden/*.json`, so that any change to the generated spec is a visible diff in
//! review.
//!
//! After an intended change, rewrite the files with
//! `OCIRUN_BLESS=1 cargo test -p ocirun-spec-gen --test golden` and review the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ocirun_spec_gen::oci_spec::runtime::{Mount, MountBuilder};
use ocirun_spec_gen::{
    to_json, ConsoleSize, DelegatedCgroup, Device, DeviceKind, HostDevice, HostFacts, IdMapping,
    ImageConfig, NativeArch, OwnUserNamespace, RlimitKind, RunOptions, SecurityOptions,
    SpecGenerator, SyscallChecker, UserDb,
};

const ROOTFS: &str = "/var/lib/ocirun/rootfs";
const ID: &str = "4f2a9c0e1b7d8e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\naudio:x:29:\napp:x:1000:\nwheel:x:10:app\n";

/// A host like the CI machine: no CAP_SYS_RESOURCE (not even in the bounding set), NOFILE
/// hard limit 20000, x86_64; and two CPUs with thermal throttle counters.
fn host() -> HostFacts {
    let mut host = HostFacts::default();
    host.env = vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("https_proxy".into(), "http://proxy.example:3128".into()),
        ("FROM_HOST".into(), "host value".into()),
    ];
    host.nofile_hard = 20_000;
    host.nproc_hard = 96_365;
    host.hard_limits = BTreeMap::from([(RlimitKind::Core, u64::MAX)]);
    host.cap_sys_resource = false;
    host.cap_bounding = 0x1ff_feff_ffff;
    host.arch = Some(NativeArch::Amd64);
    host.kernel = Some((6, 1));
    host.hostname = "buildhost".into();
    host.thermal_throttle_cpus = vec![0, 1];
    host
}

/// Knows every name: the golden files do not depend on the host's libseccomp.
struct AllSyscalls;
impl SyscallChecker for AllSyscalls {
    fn is_known(&self, _name: &str) -> bool {
        true
    }
}

fn generate(options: &RunOptions, image: &ImageConfig, host: &HostFacts) -> String {
    generate_with_mounts(options, image, host, &[], None)
}

fn generate_with_mounts(
    options: &RunOptions,
    image: &ImageConfig,
    host: &HostFacts,
    mounts: &[Mount],
    propagation: Option<&str>,
) -> String {
    let users = UserDb::parse(PASSWD, GROUP);
    let mut generator = SpecGenerator::new(ROOTFS, ID, options)
        .image(image)
        .users(&users)
        .host(host)
        .syscall_checker(&AllSyscalls)
        .mounts(mounts);
    if let Some(propagation) = propagation {
        generator = generator.rootfs_propagation(propagation);
    }
    let spec = generator
        .generate()
        .unwrap_or_else(|e| panic!("generate failed: {e}"));
    to_json(&spec).unwrap()
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"))
}

#[track_caller]
fn check(name: &str, json: &str) {
    let path = golden_path(name);
    if std::env::var_os("OCIRUN_BLESS").is_some() {
        std::fs::write(&path, json).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; create it with OCIRUN_BLESS=1 cargo test -p ocirun-spec-gen \
             --test golden",
            path.display()
        )
    });
    if want != json {
        let line = want
            .lines()
            .zip(json.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(json.lines().count()));
        panic!(
            "{} differs from the generated spec at line {}:\n  golden:    {:?}\n  generated: {:?}\n\
             If the change is intended: OCIRUN_BLESS=1 cargo test -p ocirun-spec-gen --test \
             golden, and review the diff.",
            path.display(),
            line + 1,
            want.lines().nth(line),
            json.lines().nth(line)
        );
    }
}

fn options(args: &[&str]) -> RunOptions {
    RunOptions::new(args.iter().map(|a| (*a).to_owned()).collect())
}

fn security(opts: &[&str]) -> SecurityOptions {
    let mut security = SecurityOptions::default();
    for opt in opts {
        security
            .apply(opt.parse().unwrap(), |path| {
                assert_eq!(path, Path::new("/etc/ocirun/deny-mkdir.json"));
                Ok(DENY_MKDIR.as_bytes().to_vec())
            })
            .unwrap();
    }
    security
}

const DENY_MKDIR: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}
  ]
}"#;

#[test]
fn defaults_as_root() {
    check(
        "defaults_as_root",
        &generate(&options(&["sh"]), &ImageConfig::default(), &host()),
    );
}

#[test]
fn non_root_user() {
    let image = ImageConfig::from_json(
        br#"{"Env":["LANG=C.UTF-8","A=image"],"User":"app","WorkingDir":"/srv/app"}"#,
    )
    .unwrap();
    let mut o = options(&["id"]);
    o.group_add = vec!["audio".into(), "4242".into()];
    o.env_file = vec![
        "A=env-file".into(),
        "B=two words".into(),
        "FROM_HOST".into(),
    ];
    o.env = vec!["C=3".into()];
    o.terminal = true;
    check("non_root_user", &generate(&o, &image, &host()));
}

#[test]
fn caps_added_and_dropped() {
    let mut o = options(&["sh"]);
    o.cap_add = vec![
        "SYS_ADMIN".parse().unwrap(),
        "cap_net_admin".parse().unwrap(),
    ];
    o.cap_drop = vec![
        "CHOWN".parse().unwrap(),
        "NET_BIND_SERVICE".parse().unwrap(),
    ];
    check(
        "caps_added_and_dropped",
        &generate(&o, &ImageConfig::default(), &host()),
    );
}

#[test]
fn ulimits() {
    let mut o = options(&["sh"]);
    o.ulimits = [
        "core=0:-1",
        "nofile=512:1024",
        "rtprio=10",
        "nofile=256:1024",
    ]
    .iter()
    .map(|u| u.parse().unwrap())
    .collect();
    check("ulimits", &generate(&o, &ImageConfig::default(), &host()));
}

#[test]
fn resources_and_devices() {
    let mut o = options(&["sh"]);
    let r = &mut o.resources;
    r.memory = Some("64m".parse().unwrap());
    r.memory_reservation = Some("32m".parse().unwrap());
    r.memory_swap = Some("256m".parse().unwrap());
    r.cpus = Some("1.5".parse().unwrap());
    r.cpu_shares = Some(512);
    r.cpuset_cpus = Some("0-1".parse().unwrap());
    r.cpuset_mems = Some("0".parse().unwrap());
    r.pids_limit = Some(32);
    r.cgroup_parent = Some("/ocirun.slice".into());
    o.devices = vec![Device {
        request: "/dev/fuse:/dev/fuse:rw".parse().unwrap(),
        host: HostDevice {
            kind: DeviceKind::Char,
            major: 10,
            minor: 229,
            mode: 0o666,
            uid: 0,
            gid: 0,
        },
    }];
    o.shm_size = Some("128m".parse().unwrap());
    check(
        "resources_and_devices",
        &generate(&o, &ImageConfig::default(), &host()),
    );
}

#[test]
fn seccomp_default_on_arm64() {
    let mut host = host();
    host.arch = Some(NativeArch::Arm64);
    check(
        "seccomp_default_on_arm64",
        &generate(&options(&["sh"]), &ImageConfig::default(), &host),
    );
}

#[test]
fn seccomp_profile_from_file() {
    let mut o = options(&["mkdir", "/x"]);
    o.security = security(&["seccomp=/etc/ocirun/deny-mkdir.json"]);
    check(
        "seccomp_profile_from_file",
        &generate(&o, &ImageConfig::default(), &host()),
    );
}

#[test]
fn seccomp_unconfined_and_security_opts() {
    let mut host = host();
    host.apparmor_enabled = true;
    let mut o = options(&["sh"]);
    o.security = security(&[
        "seccomp=unconfined",
        "apparmor=unconfined",
        "no-new-privileges",
        "mask=/proc/cpuinfo:/etc/secret",
        "unmask=/proc/k*:/sys/firmware",
        "label=type:spc_t",
    ]);
    check(
        "seccomp_unconfined_and_security_opts",
        &generate(&o, &ImageConfig::default(), &host),
    );
}

#[test]
fn selinux_labels() {
    let mut host = host();
    host.selinux_enabled = true;
    let mut o = options(&["sh"]);
    o.security = security(&["label=type:spc_t", "label=level:s0:c100,c200"]);
    o.security.seccomp = ocirun_spec_gen::SeccompPolicy::Unconfined;
    check(
        "selinux_labels",
        &generate(&o, &ImageConfig::default(), &host),
    );
}

#[test]
fn network_none_and_host_namespaces() {
    // `--dns` and friends shape /etc/resolv.conf, a file in the bundle (ocirun-mounts), not
    // config.json: with `--network none` the spec gets a new network namespace.
    let mut o = options(&["ls", "/sys/class/net"]);
    o.network = "none".parse().unwrap();
    o.pid = "host".parse().unwrap();
    o.ipc = "host".parse().unwrap();
    o.uts = "host".parse().unwrap();
    o.cgroupns = "ns:/proc/1/ns/cgroup".parse().unwrap();
    o.security = security(&["seccomp=unconfined"]);
    check(
        "network_none_and_host_namespaces",
        &generate(&o, &ImageConfig::default(), &host()),
    );
}

/// The caller's mounts (a volume, a tmpfs over a default mount, a generated file), `--init`,
/// a terminal with its size, and the rootfs propagation a `slave` volume asks for: every input
/// that other crates hand the generator, which is the spec's only writer.
#[test]
fn mounts_init_and_console() {
    let mount = |dst: &str, typ: &str, src: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dst)
            .typ(typ)
            .source(src)
            .options(opts.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
            .build()
            .unwrap()
    };
    let mounts = [
        mount("/data", "bind", "/srv/data", &["rbind", "rslave", "ro"]),
        mount(
            "/dev/shm",
            "tmpfs",
            "tmpfs",
            &["rw", "nosuid", "nodev", "size=1024k"],
        ),
        mount("/etc/hosts", "bind", "hosts", &["rbind", "rprivate", "rw"]),
        mount("/data", "bind", "/shadowed", &["rbind"]),
    ];
    let mut o = options(&["sleep", "1"]);
    o.init = Some("/usr/bin/catatonit".into());
    o.terminal = true;
    o.console_size = Some(ConsoleSize {
        rows: 40,
        cols: 120,
    });
    check(
        "mounts_init_and_console",
        &generate_with_mounts(
            &o,
            &ImageConfig::default(),
            &host(),
            &mounts,
            Some("rslave"),
        ),
    );
}

#[test]
fn privileged_read_only_and_process_settings() {
    let image = ImageConfig::from_json(br#"{"Env":["FROM_IMAGE=1","DROPPED=x"]}"#).unwrap();
    let mut o = options(&["sh"]);
    o.privileged = true;
    o.read_only = true;
    o.env_host = true;
    o.unset_env = vec!["DROPPED".into()];
    o.env = vec!["CI_*".into()];
    o.ulimit_host = true;
    o.ulimits = vec!["NOFILE=512:1024".parse().unwrap()];
    o.network = "none".parse().unwrap();
    o.sysctls = vec![
        "net.ipv4.ip_forward=1".parse().unwrap(),
        "kernel.shmmax=68719476736".parse().unwrap(),
    ];
    o.umask = Some("0077".parse().unwrap());
    o.oom_score_adj = Some("100".parse().unwrap());
    o.annotations = vec!["org.example.k=v".parse().unwrap()];
    o.devices = vec![Device {
        request: "/dev/null".parse().unwrap(),
        host: HostDevice {
            kind: DeviceKind::Char,
            major: 1,
            minor: 3,
            mode: 0o666,
            uid: 0,
            gid: 0,
        },
    }];
    let mut host = host();
    host.env.push(("CI_JOB".into(), "7".into()));
    host.soft_limits = BTreeMap::from([(RlimitKind::Nofile, 1024), (RlimitKind::Core, 0)]);
    check(
        "privileged_read_only_and_process_settings",
        &generate(&o, &image, &host),
    );
}

#[test]
fn a_mount_on_the_init_path_is_refused() {
    let mut o = options(&["true"]);
    o.init = Some("/usr/bin/catatonit".into());
    let taken = MountBuilder::default()
        .destination(ocirun_spec_gen::INIT_PATH)
        .typ("bind")
        .source("/tmp/x")
        .build()
        .unwrap();
    let err = SpecGenerator::new(ROOTFS, ID, &o)
        .mounts(&[taken])
        .generate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"--init needs /run/ocirun-init, where a mount of "/tmp/x" is asked for"#
    );
}

/// A host where ocirun runs without root, in a user namespace of its own: 0 the user (1001), 1..
/// its subordinate ids.
fn rootless_host() -> HostFacts {
    let mut host = host();
    let map = |s: &str| s.parse::<IdMapping>().unwrap();
    host.user_namespace = Some(OwnUserNamespace::new(
        vec![map("0:1001:1"), map("1:100000:65536")],
        vec![map("0:1001:1"), map("1:100000:65536")],
        1001,
        1001,
        "rl",
    ));
    host
}

/// Without root and with the host's network, IPC and PID namespaces: /sys is the host's,
/// bound read-only, with no cgroup mount; /dev/mqueue and /proc are the host's; a device is
/// bind-mounted.
#[test]
fn rootless_with_host_namespaces() {
    let mut o = options(&["sh"]);
    o.ipc = "host".parse().unwrap();
    o.pid = "host".parse().unwrap();
    o.devices = vec![Device {
        request: "/dev/fuse:/dev/fuse:rw".parse().unwrap(),
        host: HostDevice {
            kind: DeviceKind::Char,
            major: 10,
            minor: 229,
            mode: 0o666,
            uid: 0,
            gid: 0,
        },
    }];
    check(
        "rootless_with_host_namespaces",
        &generate(&o, &ImageConfig::default(), &rootless_host()),
    );
}

/// Without root, `--userns keep-id` and a network namespace of the container's own: a nested
/// user namespace with podman's keep-id maps, the process as the user's own ids, sysfs.
#[test]
fn rootless_keep_id() {
    let mut o = options(&["id"]);
    o.userns = "keep-id".parse().unwrap();
    o.network = "none".parse().unwrap();
    check(
        "rootless_keep_id",
        &generate(&o, &ImageConfig::default(), &rootless_host()),
    );
}

/// As root, `--uidmap` and `--gidmap`: a user namespace of host ids.
#[test]
fn uidmap_as_root() {
    let mut o = options(&["id"]);
    o.uid_maps = vec!["0:100000:65536".parse().unwrap()];
    o.gid_maps = vec!["0:200000:65536".parse().unwrap()];
    check(
        "uidmap_as_root",
        &generate(&o, &ImageConfig::default(), &host()),
    );
}

#[test]
fn rootless_limits_need_a_delegated_cgroup() {
    let mut o = options(&["true"]);
    o.resources.memory = Some("64m".parse().unwrap());
    let users = UserDb::parse(PASSWD, GROUP);
    let generate = |host: &HostFacts| {
        SpecGenerator::new(ROOTFS, ID, &o)
            .users(&users)
            .host(host)
            .syscall_checker(&AllSyscalls)
            .generate()
    };
    let mut host = rootless_host();
    assert_eq!(
        generate(&host).unwrap_err().to_string(),
        "--memory cannot be used here: ocirun runs without root, and cgroup v1 delegates no \
         cgroup to a user: run as root, or on cgroup v2 with a cgroup subtree delegated to the \
         user"
    );
    host.cgroup_v2 = true;
    assert!(generate(&host)
        .unwrap_err()
        .to_string()
        .contains("no cgroup subtree is delegated to the user"));
    host.delegated_cgroup = Some(DelegatedCgroup::new(
        "/user.slice/u",
        vec!["pids".to_owned()],
    ));
    assert_eq!(
        generate(&host).unwrap_err().to_string(),
        "--memory cannot be used here: the cgroup subtree delegated to the user (/user.slice/u) \
         does not enable the memory controller"
    );
    host.delegated_cgroup = Some(DelegatedCgroup::new(
        "/user.slice/u",
        vec!["memory".to_owned(), "pids".to_owned()],
    ));
    let spec = generate(&host).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(std::path::Path::new(&format!("/user.slice/u/{ID}")))
    );
    assert_eq!(
        linux
            .resources()
            .as_ref()
            .unwrap()
            .memory()
            .unwrap()
            .limit(),
        Some(67_108_864)
    );
}

#[test]
fn an_unmapped_user_is_refused() {
    let mut o = options(&["true"]);
    o.user = Some("70000".into());
    let err = SpecGenerator::new(ROOTFS, ID, &o)
        .host(&rootless_host())
        .generate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid user "70000": uid 70000 is not mapped in the container's user namespace"#
    );
}

#[test]
fn every_golden_file_has_a_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "caps_added_and_dropped.json",
            "defaults_as_root.json",
            "mounts_init_and_console.json",
            "network_none_and_host_namespaces.json",
            "non_root_user.json",
            "privileged_read_only_and_process_settings.json",
            "resources_and_devices.json",
            "rootless_keep_id.json",
            "rootless_with_host_namespaces.json",
            "seccomp_default_on_arm64.json",
            "seccomp_profile_from_file.json",
            "seccomp_unconfined_and_security_opts.json",
            "selinux_labels.json",
            "uidmap_as_root.json",
            "ulimits.json",
        ]
    );
}
