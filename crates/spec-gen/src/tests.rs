//! Tests of the whole generator: what a user of `ocirun spec` would see.

use oci_spec::runtime::{Capability, PosixRlimitType};

use crate::*;

fn gen(options: &RunOptions, image: &ImageConfig, host: &HostFacts) -> oci_spec::runtime::Spec {
    let users = UserDb::parse(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
    );
    SpecGenerator::new("/rootfs", "abcdef0123456789abcdef", options)
        .image(image)
        .users(&users)
        .host(host)
        .generate()
        .unwrap()
}

fn env_of(spec: &oci_spec::runtime::Spec) -> Vec<String> {
    spec.process().as_ref().unwrap().env().clone().unwrap()
}

#[test]
fn defaults_as_root() {
    let host = HostFacts {
        nofile_hard: 20000,
        ..HostFacts::default()
    };
    let spec = gen(
        &RunOptions::new(vec!["true".into()]),
        &ImageConfig::default(),
        &host,
    );
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.args().as_deref(), Some(&["true".to_string()][..]));
    assert_eq!(process.cwd().to_str(), Some("/"));
    assert_eq!(
        env_of(&spec),
        [
            format!("PATH={DEFAULT_PATH}"),
            "HOSTNAME=abcdef012345".to_string(),
            "HOME=/root".to_string()
        ]
    );
    let caps = process.capabilities().as_ref().unwrap();
    assert_eq!(caps.effective().as_ref().unwrap().len(), 11);
    assert!(caps
        .bounding()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysChroot));
    assert!(caps.ambient().as_ref().unwrap().is_empty());
    let rlimits = process.rlimits().as_ref().unwrap();
    let nofile = rlimits
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitNofile)
        .unwrap();
    assert_eq!((nofile.soft(), nofile.hard()), (20000, 20000));
    let nproc = rlimits
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitNproc)
        .unwrap();
    assert_eq!((nproc.soft(), nproc.hard()), (1_048_576, 1_048_576));
    let linux = spec.linux().as_ref().unwrap();
    let ns: Vec<String> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ().to_string())
        .collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mnt", "cgroup"]);
    assert_eq!(
        linux.masked_paths().as_ref().unwrap().len(),
        MASKED_PATHS.len()
    );
    let dsts: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().clone())
        .collect();
    let dsts: Vec<_> = dsts.iter().map(|d| d.to_str().unwrap()).collect();
    assert_eq!(
        dsts,
        [
            "/dev",
            "/proc",
            "/sys",
            "/dev/mqueue",
            "/dev/pts",
            "/dev/shm",
            "/sys/fs/cgroup"
        ]
    );
}

#[test]
fn non_root_keeps_only_bounding() {
    let mut options = RunOptions::new(vec!["id".into()]);
    options.user = Some("app".into());
    let spec = gen(&options, &ImageConfig::default(), &HostFacts::default());
    let process = spec.process().as_ref().unwrap();
    assert_eq!((process.user().uid(), process.user().gid()), (1000, 1000));
    let caps = process.capabilities().as_ref().unwrap();
    assert!(caps.effective().as_ref().unwrap().is_empty());
    assert!(caps.permitted().as_ref().unwrap().is_empty());
    assert_eq!(caps.bounding().as_ref().unwrap().len(), 11);
    assert!(env_of(&spec).contains(&"HOME=/home/app".to_string()));
}

#[test]
fn image_config_then_flags() {
    let image = ImageConfig::from_json(
        br#"{"Env":["A=image","B=image"],"User":"app","WorkingDir":"/srv","Hostname":"img"}"#,
    )
    .unwrap();
    let spec = gen(
        &RunOptions::new(vec!["true".into()]),
        &image,
        &HostFacts::default(),
    );
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.user().uid(), 1000);
    assert_eq!(process.cwd().to_str(), Some("/srv"));
    assert_eq!(spec.hostname().as_deref(), Some("img"));
    assert!(env_of(&spec).contains(&"A=image".to_string()));

    let mut options = RunOptions::new(vec!["true".into()]);
    options.env = vec!["A=flag".into(), "HOSTNAME=mine".into()];
    options.user = Some("0".into());
    options.working_dir = Some("/w".into());
    options.hostname = Some("h1".into());
    let spec = gen(&options, &image, &HostFacts::default());
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.user().uid(), 0);
    assert_eq!(process.cwd().to_str(), Some("/w"));
    assert_eq!(spec.hostname().as_deref(), Some("h1"));
    assert_eq!(
        env_of(&spec),
        [
            format!("PATH={DEFAULT_PATH}"),
            "A=flag".to_string(),
            "B=image".to_string(),
            "HOSTNAME=mine".to_string(),
            "HOME=/root".to_string()
        ]
    );
}

#[test]
fn proxy_variables_and_bare_keys_come_from_the_host() {
    let host = HostFacts {
        env: vec![
            ("https_proxy".into(), "http://proxy:3128".into()),
            ("SECRET".into(), "s".into()),
        ],
        ..HostFacts::default()
    };
    let mut options = RunOptions::new(vec!["true".into()]);
    options.env = vec!["SECRET".into(), "ABSENT".into()];
    options.terminal = true;
    let env = env_of(&gen(&options, &ImageConfig::default(), &host));
    assert!(env.contains(&"https_proxy=http://proxy:3128".to_string()));
    assert!(env.contains(&"SECRET=s".to_string()));
    assert!(env.contains(&"TERM=xterm".to_string()));
    assert!(!env.iter().any(|e| e.starts_with("ABSENT")));

    options.http_proxy = false;
    let env = env_of(&gen(&options, &ImageConfig::default(), &host));
    assert!(!env.iter().any(|e| e.starts_with("https_proxy")));
}

#[test]
fn the_environment_is_merged_in_podmans_order() {
    let host = HostFacts {
        env: vec![
            ("PATH".into(), "/host/bin".into()),
            ("http_proxy".into(), "http://host-proxy".into()),
            ("CI_B".into(), "b".into()),
            ("CI_A".into(), "a".into()),
            ("A".into(), "host".into()),
        ],
        ..HostFacts::default()
    };
    let image =
        ImageConfig::from_json(br#"{"Env":["A=image","http_proxy=http://image-proxy","GONE=1"]}"#)
            .unwrap();
    let mut o = RunOptions::new(vec!["true".into()]);
    o.env = vec!["CI_*".into()];
    o.unset_env = vec!["GONE".into(), "TERM".into()];
    o.terminal = true;
    // The host's proxy variables override the image's.
    assert_eq!(
        env_of(&gen(&o, &image, &host)),
        [
            format!("PATH={DEFAULT_PATH}"),
            "A=image".to_owned(),
            "http_proxy=http://host-proxy".to_owned(),
            "CI_A=a".to_owned(),
            "CI_B=b".to_owned(),
            "HOSTNAME=abcdef012345".to_owned(),
            "HOME=/root".to_owned(),
        ]
    );
    // --env-host: ocirun's whole environment, over the image's.
    o.env_host = true;
    o.env = vec!["A=flag".into()];
    assert_eq!(
        env_of(&gen(&o, &image, &host)),
        [
            "PATH=/host/bin",
            "A=flag",
            "http_proxy=http://host-proxy",
            "CI_B=b",
            "CI_A=a",
            "HOSTNAME=abcdef012345",
            "HOME=/root",
        ]
    );
    let mut bad = RunOptions::new(vec!["true".into()]);
    bad.unset_env = vec!["A=1".into()];
    assert_eq!(
        SpecGenerator::new("/rootfs", "id", &bad)
            .generate()
            .unwrap_err()
            .to_string(),
        "invalid --unsetenv \"A=1\": not a variable name (empty, or holds '=' or a NUL byte)"
    );
    // --unsetenv-all: nothing but what the flags set, HOSTNAME and HOME.
    let mut o = RunOptions::new(vec!["true".into()]);
    o.unset_env_all = true;
    o.http_proxy = false;
    o.env = vec!["X=1".into()];
    assert_eq!(
        env_of(&gen(&o, &image, &host)),
        ["X=1", "HOSTNAME=abcdef012345", "HOME=/root"]
    );
}

#[test]
fn read_only_mounts_tmpfs_or_makes_dev_read_only() {
    let mut o = RunOptions::new(vec!["true".into()]);
    o.read_only = true;
    let spec = gen(&o, &ImageConfig::default(), &HostFacts::default());
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    let options_of = |spec: &oci_spec::runtime::Spec, dst: &str| {
        spec.mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == std::path::Path::new(dst))
            .map(|m| m.options().clone().unwrap().join(","))
    };
    for dst in READ_ONLY_TMPFS {
        assert_eq!(
            options_of(&spec, dst).as_deref(),
            Some("rw,rprivate,nosuid,nodev,tmpcopyup"),
            "{dst}"
        );
    }
    assert!(!options_of(&spec, "/dev").unwrap().contains("ro"));
    // Where the caller found nothing in the rootfs, nothing is copied up.
    o.nothing_to_copy_up = vec!["/tmp".into(), "/run".into()];
    let spec = gen(&o, &ImageConfig::default(), &HostFacts::default());
    assert_eq!(
        options_of(&spec, "/tmp").as_deref(),
        Some("rw,rprivate,nosuid,nodev")
    );
    assert_eq!(
        options_of(&spec, "/run").as_deref(),
        Some("rw,rprivate,nosuid,nodev")
    );
    assert_eq!(
        options_of(&spec, "/var/tmp").as_deref(),
        Some("rw,rprivate,nosuid,nodev,tmpcopyup")
    );
    o.nothing_to_copy_up.clear();
    o.read_only_tmpfs = false;
    let spec = gen(&o, &ImageConfig::default(), &HostFacts::default());
    assert_eq!(options_of(&spec, "/tmp"), None);
    assert!(options_of(&spec, "/dev").unwrap().ends_with(",ro"));
    assert!(options_of(&spec, "/dev/shm").unwrap().ends_with(",ro"));
    // A mount of the caller's on /tmp wins over the read-only tmpfs.
    o.read_only_tmpfs = true;
    let mine = oci_spec::runtime::MountBuilder::default()
        .destination("/tmp")
        .typ("bind")
        .source("/srv/tmp")
        .build()
        .unwrap();
    let users = UserDb::default();
    let mounts = [mine];
    let spec = SpecGenerator::new("/rootfs", "id", &o)
        .users(&users)
        .mounts(&mounts)
        .generate()
        .unwrap();
    let tmp: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|m| m.destination() == std::path::Path::new("/tmp"))
        .collect();
    assert_eq!(tmp.len(), 1);
    assert_eq!(tmp[0].typ().as_deref(), Some("bind"));
}

#[test]
fn privileged_lifts_the_confinement() {
    let host = HostFacts {
        cap_bounding: 0x1ff_ffff_ffff,
        ..HostFacts::default()
    };
    let mut o = RunOptions::new(vec!["true".into()]);
    o.privileged = true;
    o.cap_drop = vec!["ALL".parse().unwrap()];
    o.security
        .apply("mask=/secret".parse().unwrap(), |_| unreachable!())
        .unwrap();
    let spec = gen(&o, &ImageConfig::default(), &host);
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    assert_eq!(caps.effective().as_ref().unwrap().len(), 41);
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert_eq!(
        linux.masked_paths().as_deref(),
        Some(&["/secret".to_owned()][..])
    );
    assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow());
    for dst in ["/sys", "/sys/fs/cgroup"] {
        let m = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == std::path::Path::new(dst))
            .unwrap();
        let opts = m.options().clone().unwrap();
        assert!(
            opts.contains(&"rw".to_owned()) && !opts.contains(&"ro".to_owned()),
            "{dst}"
        );
    }
    // A profile given explicitly stays.
    let mut o = RunOptions::new(vec!["true".into()]);
    o.privileged = true;
    o.security
        .apply("seccomp=/p.json".parse().unwrap(), |_| {
            Ok(br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#.to_vec())
        })
        .unwrap();
    let spec = gen(&o, &ImageConfig::default(), &host);
    assert!(spec.linux().as_ref().unwrap().seccomp().is_some());
}

#[test]
fn sysctls_need_the_namespace_of_their_group() {
    let err = |o: &RunOptions| {
        SpecGenerator::new("/rootfs", "id", o)
            .generate()
            .unwrap_err()
            .to_string()
    };
    let mut o = RunOptions::new(vec!["true".into()]);
    o.sysctls = vec!["net.ipv4.ip_forward=1".parse().unwrap()];
    assert_eq!(
        err(&o),
        "invalid --sysctl \"net.ipv4.ip_forward=1\": it needs the container's own network \
         namespace, and the run has --network host"
    );
    o.network = "ns:/run/netns/x".parse().unwrap();
    let spec = gen(&o, &ImageConfig::default(), &HostFacts::default());
    let sysctl = spec.linux().as_ref().unwrap().sysctl().clone().unwrap();
    assert_eq!(
        sysctl.get("net.ipv4.ip_forward").map(String::as_str),
        Some("1")
    );
    let mut o = RunOptions::new(vec!["true".into()]);
    o.sysctls = vec!["fs.mqueue.msg_max=100".parse().unwrap()];
    o.ipc = NamespaceMode::Host;
    assert_eq!(
        err(&o),
        "invalid --sysctl \"fs.mqueue.msg_max=100\": it needs the container's own ipc \
         namespace, and the run has --ipc host"
    );
    o.ipc = NamespaceMode::Private;
    o.sysctls.push("fs.mqueue.msg_max=200".parse().unwrap());
    let spec = gen(&o, &ImageConfig::default(), &HostFacts::default());
    let sysctl = spec.linux().as_ref().unwrap().sysctl().clone().unwrap();
    assert_eq!(
        sysctl.get("fs.mqueue.msg_max").map(String::as_str),
        Some("200")
    );
}

#[test]
fn ulimit_host_copies_every_limit_of_ocirun() {
    let host = HostFacts {
        nofile_hard: 4096,
        soft_limits: [(RlimitKind::Nofile, 1024), (RlimitKind::Stack, 8 << 20)]
            .into_iter()
            .collect(),
        ..HostFacts::default()
    };
    let mut o = RunOptions::new(vec!["true".into()]);
    o.ulimit_host = true;
    o.ulimits = vec!["rlimit_core=0:0".parse().unwrap()];
    let spec = gen(&o, &ImageConfig::default(), &host);
    let rlimits = spec.process().as_ref().unwrap().rlimits().clone().unwrap();
    assert_eq!(rlimits.len(), RlimitKind::ALL.len());
    let get = |t: PosixRlimitType| {
        let r = rlimits.iter().find(|r| r.typ() == t).unwrap();
        (r.soft(), r.hard())
    };
    assert_eq!(get(PosixRlimitType::RlimitNofile), (1024, 4096));
    assert_eq!(get(PosixRlimitType::RlimitStack), (8 << 20, RLIM_INFINITY));
    assert_eq!(get(PosixRlimitType::RlimitCore), (0, 0));
    assert_eq!(
        get(PosixRlimitType::RlimitNproc),
        (RLIM_INFINITY, RLIM_INFINITY)
    );
}

#[test]
fn umask_oom_score_and_annotations() {
    let mut o = RunOptions::new(vec!["true".into()]);
    o.umask = Some("0077".parse().unwrap());
    o.oom_score_adj = Some("-100".parse().unwrap());
    o.annotations = vec!["a=1".parse().unwrap(), "a=2".parse().unwrap()];
    let spec = gen(&o, &ImageConfig::default(), &HostFacts::default());
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.user().umask(), Some(0o077));
    assert_eq!(process.oom_score_adj(), Some(-100));
    let annotations = spec.annotations().clone().unwrap();
    assert_eq!(annotations.get("a").map(String::as_str), Some("2"));
    let plain = gen(
        &RunOptions::new(vec!["true".into()]),
        &ImageConfig::default(),
        &HostFacts::default(),
    );
    assert_eq!(plain.annotations(), &None);
    assert_eq!(plain.process().as_ref().unwrap().user().umask(), None);
}

#[test]
fn bad_inputs_name_the_value() {
    let err = |options: RunOptions| {
        SpecGenerator::new("/rootfs", "id", &options)
            .generate()
            .unwrap_err()
            .to_string()
    };
    assert_eq!(err(RunOptions::new(vec![])), "command must be specified");
    let mut o = RunOptions::new(vec!["true".into()]);
    o.working_dir = Some("rel".into());
    assert_eq!(
        err(o),
        r#"invalid working directory "rel": must be an absolute path"#
    );
    let mut o = RunOptions::new(vec!["true".into()]);
    o.user = Some("nobody-here".into());
    assert_eq!(err(o), r#"unknown user "nobody-here""#);
    let mut o = RunOptions::new(vec!["true".into()]);
    o.hostname = Some("a/b".into());
    assert!(err(o).starts_with(r#"invalid hostname "a/b""#));
    let mut o = RunOptions::new(vec!["true".into()]);
    o.hostname = Some("x\n6.6.6.6 example.com".into());
    assert_eq!(
        err(o),
        r#"invalid hostname "x\n6.6.6.6 example.com": contains whitespace or a control character"#
    );
    let o = RunOptions::new(vec!["true".into()]);
    let e = SpecGenerator::new("rel/rootfs", "id", &o)
        .generate()
        .unwrap_err()
        .to_string();
    assert_eq!(e, r#"invalid rootfs path "rel/rootfs": must be absolute"#);
}

#[test]
fn json_is_deterministic() {
    let options = RunOptions::new(vec!["true".into()]);
    let first = to_json(&gen(
        &options,
        &ImageConfig::default(),
        &HostFacts::default(),
    ))
    .unwrap();
    for _ in 0..20 {
        let again = to_json(&gen(
            &options,
            &ImageConfig::default(),
            &HostFacts::default(),
        ));
        assert_eq!(again.unwrap(), first);
    }
    let caps_start = first.find("\"bounding\"").unwrap();
    let chown = first[caps_start..].find("CAP_CHOWN").unwrap();
    let sys_chroot = first[caps_start..].find("CAP_SYS_CHROOT").unwrap();
    assert!(chown < sys_chroot, "capabilities are sorted");
}

#[test]
fn use_entrypoint_takes_the_image_entrypoint_and_cmd() {
    let image =
        ImageConfig::from_json(br#"{"Entrypoint":["/bin/tini","--"],"Cmd":["sh","-l"]}"#).unwrap();
    let args = |o: &RunOptions| {
        SpecGenerator::new("/rootfs", "id", o)
            .image(&image)
            .generate()
            .map(|s| s.process().as_ref().unwrap().args().clone().unwrap())
    };
    let mut o = RunOptions::new(vec![]);
    o.use_entrypoint = true;
    assert_eq!(args(&o).unwrap(), ["/bin/tini", "--", "sh", "-l"]);
    o.args = vec!["id".into()];
    assert_eq!(args(&o).unwrap(), ["/bin/tini", "--", "id"]);
    o.use_entrypoint = false;
    assert_eq!(args(&o).unwrap(), ["id"]);
    o.args.clear();
    assert_eq!(
        args(&o).unwrap_err().to_string(),
        "command must be specified"
    );
}

#[test]
fn group_add_and_uts_host() {
    let mut o = RunOptions::new(vec!["id".into()]);
    o.user = Some("app".into());
    o.group_add = vec!["wheel".into(), "77".into()];
    let spec = gen(&o, &ImageConfig::default(), &HostFacts::default());
    let user = spec.process().as_ref().unwrap().user().clone();
    assert_eq!(user.additional_gids().as_deref(), Some(&[10, 77, 1000][..]));

    o.group_add = vec!["nogroup".into()];
    let users = UserDb::parse("app:x:1000:1000::/home/app:/bin/sh\n", "wheel:x:10:app\n");
    let err = SpecGenerator::new("/rootfs", "id", &o)
        .users(&users)
        .generate()
        .unwrap_err();
    assert_eq!(err.to_string(), r#"unknown group "nogroup""#);

    let mut o = RunOptions::new(vec!["true".into()]);
    o.uts = NamespaceMode::Host;
    let host = HostFacts {
        hostname: "buildhost".into(),
        ..HostFacts::default()
    };
    let spec = gen(&o, &ImageConfig::default(), &host);
    assert_eq!(spec.hostname(), &None);
    assert!(env_of(&spec).contains(&"HOSTNAME=buildhost".to_string()));
    o.hostname = Some("mine".into());
    let err = SpecGenerator::new("/rootfs", "id", &o)
        .generate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"cannot set the hostname "mine" with --uts host: the container shares the host's hostname"#
    );
}

#[test]
fn ulimits_above_own_hard_limit_need_cap_sys_resource() {
    let mut o = RunOptions::new(vec!["true".into()]);
    o.ulimits = vec!["nofile=512:30000".parse().unwrap()];
    let mut host = HostFacts {
        nofile_hard: 20_000,
        ..HostFacts::default()
    };
    let err = SpecGenerator::new("/rootfs", "id", &o)
        .host(&host)
        .generate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--ulimit nofile=512:30000: hard limit 30000 is above ocirun's own hard limit 20000 for \
         nofile, and ocirun lacks CAP_SYS_RESOURCE to raise it"
    );
    host.cap_sys_resource = true;
    let spec = gen(&o, &ImageConfig::default(), &host);
    let nofile = spec.process().as_ref().unwrap().rlimits().as_ref().unwrap()[0];
    assert_eq!((nofile.soft(), nofile.hard()), (512, 30000));
}

#[test]
fn apparmor_and_labels_follow_the_host() {
    let mut o = RunOptions::new(vec!["true".into()]);
    o.security.apparmor = Some("my-profile".into());
    let err = SpecGenerator::new("/rootfs", "id", &o)
        .generate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"apparmor profile "my-profile" given, but AppArmor is not enabled on this host"#
    );
    o.security.apparmor = Some("unconfined".into());
    let spec = gen(&o, &ImageConfig::default(), &HostFacts::default());
    assert_eq!(spec.process().as_ref().unwrap().apparmor_profile(), &None);

    // SELinux: labels only when enabled, none with label=disable.
    let mut o = RunOptions::new(vec!["true".into()]);
    o.security.label.typ = Some("spc_t".into());
    let spec = gen(&o, &ImageConfig::default(), &HostFacts::default());
    assert_eq!(spec.process().as_ref().unwrap().selinux_label(), &None);
    assert_eq!(spec.linux().as_ref().unwrap().mount_label(), &None);
    let selinux = HostFacts {
        selinux_enabled: true,
        ..HostFacts::default()
    };
    let spec = gen(&o, &ImageConfig::default(), &selinux);
    let label = spec
        .process()
        .as_ref()
        .unwrap()
        .selinux_label()
        .clone()
        .unwrap();
    assert!(label.starts_with("system_u:system_r:spc_t:s0:c"), "{label}");
    o.security.label.disable = true;
    let spec = gen(&o, &ImageConfig::default(), &selinux);
    assert_eq!(spec.process().as_ref().unwrap().selinux_label(), &None);
}

#[test]
fn ipc_host_uses_the_host_dev_shm() {
    let mut o = RunOptions::new(vec!["true".into()]);
    o.ipc = NamespaceMode::Host;
    let spec = gen(&o, &ImageConfig::default(), &HostFacts::default());
    let shm = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == std::path::Path::new("/dev/shm"))
        .unwrap()
        .clone();
    assert_eq!(shm.typ().as_deref(), Some("bind"));
    assert_eq!(
        shm.source().as_deref(),
        Some(std::path::Path::new("/dev/shm"))
    );
    o.shm_size = Some("1g".parse().unwrap());
    let err = SpecGenerator::new("/rootfs", "id", &o)
        .generate()
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("invalid --shm-size 1g: has no effect"));
}

mod properties {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn namespace() -> impl Strategy<Value = NamespaceMode> {
        prop_oneof![
            Just(NamespaceMode::Private),
            Just(NamespaceMode::Host),
            "/proc/[0-9]{1,4}/ns/[a-z]{2,6}".prop_map(|p| NamespaceMode::Path(p.into())),
        ]
    }

    fn network() -> impl Strategy<Value = NetworkMode> {
        prop_oneof![
            Just(NetworkMode::Host),
            Just(NetworkMode::None),
            "/run/netns/[a-z]{1,6}".prop_map(|p| NetworkMode::Path(p.into())),
        ]
    }

    prop_compose! {
        fn options()(
            args in proptest::collection::vec("[a-z/]{1,8}", 1..4),
            env in proptest::collection::vec("[A-Z_]{1,4}(=[a-z ]{0,4})?", 0..8),
            env_file in proptest::collection::vec("[A-Z_]{1,4}=[a-z]{0,4}", 0..4),
            mask in proptest::collection::vec("/(proc|sys|etc)/[a-z]{1,6}", 0..3),
            unmask in proptest::collection::vec("/proc/[a-z*]{1,6}", 0..2),
            pid in namespace(), ipc in namespace(), uts in namespace(), cgroupns in namespace(),
            net in network(),
            caps in proptest::collection::vec("(ALL|SYS_ADMIN|NET_RAW|CHOWN|MKNOD)", 0..3),
            drops in proptest::collection::vec("(ALL|SYS_ADMIN|NET_RAW|CHOWN|KILL)", 0..2),
            user in proptest::option::of("(root|app|0|1000|4242)(:(wheel|10))?"),
            terminal in any::<bool>(),
        ) -> RunOptions {
            let mut o = RunOptions::new(args);
            o.env = env;
            o.env_file = env_file;
            o.security.mask = mask;
            o.security.unmask = unmask;
            o.pid = pid;
            o.ipc = ipc;
            o.uts = uts;
            o.cgroupns = cgroupns;
            o.network = net;
            o.cap_add = caps.iter().map(|c| c.parse().unwrap()).collect();
            o.cap_drop = drops.iter().map(|c| c.parse().unwrap()).collect();
            o.user = user;
            o.terminal = terminal;
            o
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn generated_specs_are_well_formed(o in options()) {
            let host = HostFacts::default();
            let users = UserDb::parse(
                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
                "root:x:0:\nwheel:x:10:app\n",
            );
            let spec = SpecGenerator::new("/rootfs", "abcdef0123456789", &o)
                .users(&users)
                .host(&host)
                .generate()
                .unwrap();

            for m in spec.mounts().as_ref().unwrap() {
                prop_assert!(m.destination().is_absolute(), "{:?}", m.destination());
            }
            let linux = spec.linux().as_ref().unwrap();
            let types: Vec<String> = linux
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .map(|n| n.typ().to_string())
                .collect();
            let unique: HashSet<&String> = types.iter().collect();
            prop_assert_eq!(unique.len(), types.len(), "{:?}", types);
            prop_assert!(types.contains(&"mnt".to_string()));

            let env = spec.process().as_ref().unwrap().env().clone().unwrap();
            let keys: Vec<&str> = env.iter().map(|e| e.split('=').next().unwrap()).collect();
            let unique: HashSet<&&str> = keys.iter().collect();
            prop_assert_eq!(unique.len(), keys.len(), "{:?}", env);
            prop_assert!(keys.iter().all(|k| !k.is_empty()));

            let masked = linux.masked_paths().as_ref().unwrap();
            let unique: HashSet<&String> = masked.iter().collect();
            prop_assert_eq!(unique.len(), masked.len());

            let caps = spec.process().as_ref().unwrap().capabilities().as_ref().unwrap();
            prop_assert!(caps.inheritable().as_ref().unwrap().is_empty());
            prop_assert!(caps.ambient().as_ref().unwrap().is_empty());

            prop_assert_eq!(
                spec.hostname().is_some(),
                o.uts == NamespaceMode::Private
            );

            // Deterministic: the same inputs give the same bytes.
            let again = SpecGenerator::new("/rootfs", "abcdef0123456789", &o)
                .users(&users)
                .host(&host)
                .generate()
                .unwrap();
            prop_assert_eq!(to_json(&spec).unwrap(), to_json(&again).unwrap());
        }
    }
}

#[test]
fn thermal_throttle_counters_of_the_hosts_cpus_are_masked() {
    let host = HostFacts {
        thermal_throttle_cpus: vec![0, 3],
        ..HostFacts::default()
    };
    let mut o = RunOptions::new(vec!["true".into()]);
    let masked = |o: &RunOptions| {
        gen(o, &ImageConfig::default(), &host)
            .linux()
            .clone()
            .unwrap()
            .masked_paths()
            .clone()
            .unwrap()
    };
    let mut want: Vec<String> = MASKED_PATHS.iter().map(|p| (*p).to_owned()).collect();
    want.extend([
        "/sys/devices/system/cpu/cpu0/thermal_throttle".to_owned(),
        "/sys/devices/system/cpu/cpu3/thermal_throttle".to_owned(),
    ]);
    assert_eq!(masked(&o), want);
    o.security
        .apply(
            "unmask=/sys/devices/system/cpu/cpu0/*".parse().unwrap(),
            |_| Ok(Vec::new()),
        )
        .unwrap();
    assert_eq!(
        masked(&o).last().map(String::as_str),
        Some("/sys/devices/system/cpu/cpu3/thermal_throttle")
    );
    assert_eq!(masked(&o).len(), MASKED_PATHS.len() + 1);
}
