//! The flags of a run's mounts and network files (podman-run(1) names), and their
//! composition into a [`MountPlan`].
//!
//! Every value is parsed and checked here, before anything is created, so a bad one exits 125
//! naming it and leaves nothing behind. The grammars are ocirun-mounts' ([`VolumeSpec`],
//! [`MountFlag`], [`TmpfsSpec`], [`SecretFlag`], [`HostEntry`], [`DnsOptions`], mounts.conf);
//! the names of volumes and cache ids are ocirun-runtime-driver's ([`VolumeName`],
//! [`CacheId`]), which also places them ([`StateLayout`]); this module only adds what a
//! library must not do: read ocirun's working directory, environment and effective uid.

use anyhow::{bail, Context, Result};
use ocirun_mounts::{
    compose_secrets, image_volume_path, load_secrets, read_secret_file, ContainerDir, ContainerEnv,
    DnsOptions, HostEntry, MountFlag, MountPlan, MountSpecError, SecretBytes, SecretFlag,
    SecretSource, TmpfsSpec, UserMount, UserMountKind, VolumeSpec, DEFAULT_MOUNTS_FILES,
};
use ocirun_runtime_driver::{CacheId, ContainerId, ContainerName, StateLayout, VolumeName};
use ocirun_spec_gen::{ImageConfig, NamespaceMode, NetworkMode, RunOptions};

use crate::flags::MountFlags;

/// Builds the run's [`MountPlan`] from the flags, the image's `Volumes`, the mounts files,
/// the container's name and id (`rootless`: ocirun runs without root, for
/// `/run/.containerenv`), and the `options` of the spec (namespaces, `--read-only`). Reads the
/// host (sources, mounts files, secrets) but writes nothing.
///
/// # Errors
/// A message naming the bad value (exit 125).
pub(crate) fn plan(
    state: &StateLayout,
    flags: &MountFlags,
    image: &ImageConfig,
    name: Option<&ContainerName>,
    container_id: &ContainerId,
    rootless: bool,
    options: &RunOptions,
) -> Result<MountPlan> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let mut user_mounts: Vec<UserMount> = Vec::new();
    for raw in &flags.volume {
        user_mounts.push(raw.parse::<VolumeSpec>()?.to_user_mount(raw));
    }
    for raw in &flags.mount {
        user_mounts.push(raw.parse::<MountFlag>()?.to_user_mount(raw));
    }
    for raw in &flags.tmpfs {
        user_mounts.push(raw.parse::<TmpfsSpec>()?.to_user_mount(raw));
    }
    let mut declared = Vec::new();
    for raw in &flags.secret {
        let flag: SecretFlag = raw.parse()?;
        let bytes = read_secret(raw, &flag, &cwd)?;
        declared.push((raw.clone(), flag, bytes));
    }
    compose_secrets(&mut user_mounts, &declared)?;
    ocirun_mounts::check_unique_destinations(&user_mounts)?;
    for m in &mut user_mounts {
        m.resolve(&cwd)?;
        place(state, m)?;
    }

    let mut plan = MountPlan {
        user_mounts,
        image_volumes: image
            .volumes
            .iter()
            .map(|v| image_volume_path(v))
            .collect::<Result<_, _>>()?,
        ..MountPlan::default()
    };
    plan.secrets = match &flags.mounts_file {
        Some(file) => {
            if !file.exists() {
                bail!("--mounts-file {file:?}: no such file");
            }
            load_secrets(std::slice::from_ref(file))?
        }
        None => load_secrets(&DEFAULT_MOUNTS_FILES)?,
    };

    let generated = &mut plan.generated;
    if flags.no_hosts && !flags.add_host.is_empty() {
        return Err(MountSpecError::NoHostsWithAddHost.into());
    }
    dns_needs_the_host_network(flags, &options.network)?;
    generated.read_only = options.read_only;
    generated.no_hostname = matches!(options.uts, NamespaceMode::Path(_));
    generated.no_hosts = flags.no_hosts;
    generated.add_hosts = flags
        .add_host
        .iter()
        .map(|h| h.parse::<HostEntry>())
        .collect::<Result<_, _>>()?;
    let mut dns = DnsOptions::default();
    for v in &flags.dns {
        dns.add_server(v)?;
    }
    for v in &flags.dns_search {
        dns.add_search(v)?;
    }
    for v in &flags.dns_option {
        dns.add_option(v)?;
    }
    dns.check()?;
    generated.dns = dns;
    generated.container_env = Some(ContainerEnv::new(
        name.map(ContainerName::as_str).unwrap_or_default(),
        container_id.as_str(),
        rootless,
    ));
    plan.container_dir = Some(match name {
        Some(name) => ContainerDir::persistent(state.container_dir(name)),
        None => ContainerDir::ephemeral(state.ephemeral_dir(container_id)),
    });
    Ok(plan)
}

/// Gives a named volume and a cache mount their directory under `state`, their name or id
/// checked first.
fn place(state: &StateLayout, m: &mut UserMount) -> Result<()> {
    let dir = match &m.kind {
        UserMountKind::Volume(v) => {
            let name: VolumeName = v.name.parse().map_err(|e| {
                m.origin
                    .error(format!("{e}; a relative host path starts with ./ or ../"))
            })?;
            state.volume_dir(&name)
        }
        UserMountKind::Cache(c) => {
            let id: CacheId = c.id.parse().map_err(|e| m.origin.error(format!("{e}")))?;
            state.cache_dir(&id)
        }
        _ => return Ok(()),
    };
    m.set_dir(dir);
    Ok(())
}

/// The bytes of a `--secret`: its file (relative to `cwd`) or ocirun's environment variable.
fn read_secret(raw: &str, flag: &SecretFlag, cwd: &std::path::Path) -> Result<SecretBytes> {
    let fail = |reason: String| MountSpecError::Secret {
        spec: raw.to_owned(),
        reason,
    };
    match flag.source(|name| std::env::var_os(name).is_some()) {
        SecretSource::File(path) => {
            let full = cwd.join(&path);
            read_secret_file(&full).map_err(|reason| {
                fail(format!("source {:?}: {reason}", path.display().to_string())).into()
            })
        }
        SecretSource::Env(var) => {
            let value = std::env::var_os(&var)
                .ok_or_else(|| fail(format!("ocirun's environment has no variable {var:?}")))?;
            use std::os::unix::ffi::OsStrExt;
            SecretBytes::new(value.as_bytes().to_vec())
                .map_err(|reason| fail(format!("variable {var:?}: {reason}")).into())
        }
    }
}

/// `--dns`, `--dns-search` and `--dns-option` write the resolv.conf of the host's network:
/// with `--network none` or a joined namespace they are refused, as podman refuses them.
fn dns_needs_the_host_network(flags: &MountFlags, network: &NetworkMode) -> Result<()> {
    if *network == NetworkMode::Host {
        return Ok(());
    }
    let mode = network.to_string();
    let given = [
        ("--dns", &flags.dns),
        ("--dns-search", &flags.dns_search),
        ("--dns-option", &flags.dns_option),
    ]
    .into_iter()
    .find_map(|(flag, values)| values.first().map(|v| (flag, v)));
    if let Some((flag, value)) = given {
        bail!("conflicting options: dns and the network mode: {mode} ({flag} {value:?})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn state() -> StateLayout {
        StateLayout::new("/run/ocirun", "/var/lib/ocirun")
    }

    fn id() -> ContainerId {
        "abc".parse().unwrap()
    }

    fn opts() -> RunOptions {
        RunOptions::new(vec!["true".into()])
    }

    #[test]
    fn flags_become_mounts_and_files() {
        let dir = std::env::temp_dir();
        let flags = MountFlags {
            volume: vec![format!("{}:/data:ro", dir.display())],
            tmpfs: vec!["/t:exec,size=1m".into()],
            add_host: vec!["db:2001:db8::1".into()],
            dns: vec!["192.0.2.53".into()],
            mounts_file: Some("/dev/null".into()),
            ..MountFlags::default()
        };
        let image = ImageConfig::from_json(br#"{"Volumes":{"/var/lib/data":{}}}"#).unwrap();
        let name: ContainerName = "n1".parse().unwrap();
        let plan = plan(&state(), &flags, &image, Some(&name), &id(), false, &opts());
        // /dev/null is not a regular file.
        assert_eq!(
            crate::run::describe(&plan.unwrap_err()),
            r#"read mounts file "/dev/null": not a regular file (a character device)"#
        );
        let flags = MountFlags {
            mounts_file: None,
            ..flags
        };
        let plan =
            super::plan(&state(), &flags, &image, Some(&name), &id(), false, &opts()).unwrap();
        assert_eq!(plan.user_mounts.len(), 2);
        assert_eq!(plan.image_volumes, [PathBuf::from("/var/lib/data")]);
        assert_eq!(plan.generated.add_hosts[0].to_string(), "db:2001:db8::1");
        assert_eq!(
            plan.container_dir.as_ref().unwrap().path(),
            Path::new("/var/lib/ocirun/containers/n1")
        );
        let resolved = plan.resolve((0, 0)).unwrap();
        let find = |d: &str| {
            resolved
                .mounts
                .iter()
                .find(|m| m.destination() == Path::new(d))
                .unwrap()
        };
        assert_eq!(
            find("/data").options().as_ref().unwrap(),
            &["rbind", "rprivate", "ro"]
        );
        assert_eq!(
            find("/var/lib/data").source().as_deref(),
            Some(Path::new(
                "/var/lib/ocirun/containers/n1/volumes/var-lib-data"
            ))
        );
        assert_eq!(
            find("/run/.containerenv").source().as_deref(),
            Some(Path::new("containerenv"))
        );
        let unnamed = super::plan(&state(), &flags, &image, None, &id(), false, &opts()).unwrap();
        assert_eq!(
            unnamed.container_dir.as_ref().unwrap().path(),
            Path::new("/var/lib/ocirun/containers/abc")
        );
    }

    #[test]
    fn dns_flags_need_the_hosts_network() {
        let image = ImageConfig::default();
        let flags = MountFlags {
            dns_search: vec!["example.com".into()],
            ..MountFlags::default()
        };
        let mut options = opts();
        options.network = "none".parse().unwrap();
        let err = plan(&state(), &flags, &image, None, &id(), false, &options).unwrap_err();
        assert_eq!(
            err.to_string(),
            "conflicting options: dns and the network mode: none (--dns-search \"example.com\")"
        );
        options.network = "ns:/run/netns/n".parse().unwrap();
        let err = plan(&state(), &flags, &image, None, &id(), false, &options).unwrap_err();
        assert_eq!(
            err.to_string(),
            "conflicting options: dns and the network mode: ns:/run/netns/n (--dns-search \
             \"example.com\")"
        );
        options.network = NetworkMode::Host;
        assert!(plan(&state(), &flags, &image, None, &id(), false, &options).is_ok());
    }

    #[test]
    fn volumes_and_caches_are_placed_under_root() {
        let image = ImageConfig::default();
        let flags = MountFlags {
            volume: vec!["data:/d".into()],
            mount: vec!["type=cache,target=/c".into()],
            ..MountFlags::default()
        };
        let plan = plan(&state(), &flags, &image, None, &id(), false, &opts()).unwrap();
        let sources: Vec<String> = plan
            .resolve((0, 0))
            .unwrap()
            .mounts
            .iter()
            .filter(|m| ["/d", "/c"].iter().any(|d| m.destination() == Path::new(d)))
            .map(|m| m.source().as_ref().unwrap().display().to_string())
            .collect();
        assert_eq!(
            sources,
            [
                "/var/lib/ocirun/volumes/data/_data",
                "/var/lib/ocirun/cache/%2Fc"
            ]
        );
    }

    #[test]
    fn bad_values_are_named() {
        let image = ImageConfig::default();
        let err = |flags: MountFlags| {
            plan(&state(), &flags, &image, None, &id(), false, &opts())
                .and_then(|p| Ok(p.resolve((0, 0))?))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(MountFlags {
                volume: vec!["/h".into()],
                ..MountFlags::default()
            }),
            r#"invalid volume "/h": no destination: expected SRC:DST[:OPTS]"#
        );
        assert_eq!(
            err(MountFlags {
                volume: vec!["/:/d".into(), "/:/d".into()],
                ..MountFlags::default()
            }),
            r#"duplicate mount destination "/d": -v "/:/d" and -v "/:/d""#
        );
        assert_eq!(
            err(MountFlags {
                no_hosts: true,
                add_host: vec!["a:1.2.3.4".into()],
                ..MountFlags::default()
            }),
            "--no-hosts and --add-host cannot be used together"
        );
        assert_eq!(
            err(MountFlags {
                dns: vec!["x".into()],
                ..MountFlags::default()
            }),
            r#"invalid --dns "x": not an IP address"#
        );
        assert_eq!(
            err(MountFlags {
                volume: vec!["my/vol:/d".into()],
                ..MountFlags::default()
            }),
            "invalid volume \"my/vol:/d\": invalid volume name \"my/vol\": use a letter or \
             digit, then letters, digits, '_', '.' or '-'; a relative host path starts with ./ \
             or ../"
        );
        assert_eq!(
            err(MountFlags {
                secret: vec!["id=s,src=/nonexistent/secret".into()],
                ..MountFlags::default()
            }),
            "invalid --secret \"id=s,src=/nonexistent/secret\": source \
             \"/nonexistent/secret\": no such file"
        );
        assert_eq!(
            err(MountFlags {
                secret: vec!["id=s,src=/dev/null".into()],
                ..MountFlags::default()
            }),
            "invalid --secret \"id=s,src=/dev/null\": source \"/dev/null\": a device, not a \
             regular file"
        );
    }
}
