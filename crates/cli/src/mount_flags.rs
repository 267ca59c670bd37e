//! The flags of a run's mounts and network files (podman-run(1) names), and their
//! composition into a [`MountPlan`].
//!
//! Every value is parsed and checked here, before anything is created, so a bad one exits 125
//! naming it and leaves nothing behind. The grammars are ocirun-mounts' ([`VolumeSpec`],
//! [`MountFlag`], [`TmpfsSpec`], [`HostEntry`], [`DnsOptions`], mounts.conf); this module
//! only adds what a library must not do: read ocirun's working directory and effective uid.

use anyhow::{bail, Context, Result};
use ocirun_mounts::{
    image_volume_path, load_secrets, ContainerDir, ContainerEnv, DnsOptions, HostEntry, MountFlag,
    MountPlan, MountSpecError, TmpfsSpec, UserMount, VolumeSpec, DEFAULT_MOUNTS_FILES,
};
use ocirun_runtime_driver::{ContainerId, ContainerName, StateLayout};
use ocirun_spec_gen::ImageConfig;

use crate::flags::MountFlags;

/// Builds the run's [`MountPlan`] from the flags, the image's `Volumes`, the mounts files,
/// the container's name and id (`rootless`: ocirun runs without root, for
/// `/run/.containerenv`). Reads the host (sources, mounts files) but writes nothing.
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
    ocirun_mounts::check_unique_destinations(&user_mounts)?;
    for m in &mut user_mounts {
        m.resolve(&cwd)?;
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
        let plan = plan(&state(), &flags, &image, Some(&name), &id(), false);
        // /dev/null is not a regular file.
        assert_eq!(
            crate::run::describe(&plan.unwrap_err()),
            r#"read mounts file "/dev/null": not a regular file (a character device)"#
        );
        let flags = MountFlags {
            mounts_file: None,
            ..flags
        };
        let plan = super::plan(&state(), &flags, &image, Some(&name), &id(), false).unwrap();
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
        let unnamed = super::plan(&state(), &flags, &image, None, &id(), false).unwrap();
        assert_eq!(
            unnamed.container_dir.as_ref().unwrap().path(),
            Path::new("/var/lib/ocirun/containers/abc")
        );
    }

    #[test]
    fn bad_values_are_named() {
        let image = ImageConfig::default();
        let err = |flags: MountFlags| {
            plan(&state(), &flags, &image, None, &id(), false)
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
    }
}
