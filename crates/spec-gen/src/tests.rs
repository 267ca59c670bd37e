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
