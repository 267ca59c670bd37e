//! Running without root: who the user is, where its state goes, and the user namespace ocirun
//! joins before it touches a root filesystem (podman's and buildah's way: the runtime then runs
//! as root there, and every file ocirun makes gets the owner the container sees as right).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use nix::unistd::{Gid, Uid, User};
use ocirun_runtime_driver::{StateLayout, UserDirs, UserNamespace};
use ocirun_spec_gen::{IdMapping, OwnUserNamespace};

use crate::flags::Cli;

/// The state directories and, without root, the user namespace of this invocation.
#[derive(Debug)]
pub(crate) struct Invocation {
    /// Where the state goes.
    pub(crate) state: StateLayout,
    /// `Some` when ocirun runs without root.
    pub(crate) rootless: Option<Rootless>,
}

/// A user other than root, and the user namespace it runs containers in.
#[derive(Debug)]
pub(crate) struct Rootless {
    uid: u32,
    gid: u32,
    name: String,
    namespace: UserNamespace,
    warning: Option<String>,
    entered: bool,
}

impl Invocation {
    /// The context of this process: its effective uid decides; `--runroot` and `--root`
    /// override the default state directories.
    pub(crate) fn new(cli: &Cli) -> Result<Self> {
        let uid = Uid::effective().as_raw();
        let gid = Gid::effective().as_raw();
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let env_path = |key: &str| std::env::var_os(key).map(PathBuf::from);
        let dirs = UserDirs::new(
            env_path("XDG_RUNTIME_DIR"),
            env_path("XDG_DATA_HOME"),
            env_path("HOME").or_else(|| user.as_ref().map(|u| u.dir.clone())),
        );
        let runroot = match &cli.runroot {
            Some(dir) => dir.clone(),
            None => StateLayout::default_runroot(uid, &dirs)?,
        };
        let root = match &cli.storage.root {
            Some(dir) => dir.clone(),
            None => StateLayout::default_root(uid, &dirs)?,
        };
        let rootless = if uid == 0 {
            None
        } else {
            let name = user
                .as_ref()
                .map_or_else(|| uid.to_string(), |u| u.name.clone());
            let read = |path: &str| -> Result<String> {
                match ocirun_mounts::read_input_file(path) {
                    Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
                    Err(e) => Err(e).with_context(|| format!("cannot read {path}")),
                }
            };
            let (namespace, warning) = UserNamespace::for_user(
                &name,
                uid,
                gid,
                &read("/etc/subuid")?,
                &read("/etc/subgid")?,
            );
            Some(Rootless {
                uid,
                gid,
                name,
                namespace,
                warning,
                entered: false,
            })
        };
        Ok(Self {
            state: StateLayout::new(runroot, root),
            rootless,
        })
    }

    /// Joins the user namespace (without root; once): from here on this process is root there.
    /// Call it with one thread. Says on stderr when the user has no subordinate ids.
    pub(crate) fn enter_user_namespace(&mut self) -> Result<()> {
        let Some(rootless) = &mut self.rootless else {
            return Ok(());
        };
        if rootless.entered {
            return Ok(());
        }
        if let Some(warning) = &rootless.warning {
            tracing::warn!("{warning}");
        }
        // One thread: the warm-up thread must have ended.
        crate::warm::settle();
        rootless
            .namespace
            .enter()
            .context("ocirun runs without root in a user namespace of the user's")?;
        rootless.entered = true;
        Ok(())
    }

    /// The user namespace for the spec generator (`HostFacts::user_namespace`).
    pub(crate) fn own_namespace(&self) -> Option<OwnUserNamespace> {
        let r = self.rootless.as_ref()?;
        let maps = |m: &[ocirun_runtime_driver::IdMap]| {
            m.iter()
                .map(|m| IdMapping {
                    container: m.container,
                    host: m.host,
                    size: m.size,
                })
                .collect()
        };
        Some(OwnUserNamespace::new(
            maps(&r.namespace.uid_map),
            maps(&r.namespace.gid_map),
            r.uid,
            r.gid,
            r.name.clone(),
        ))
    }

    /// Whether ocirun runs without root.
    pub(crate) fn is_rootless(&self) -> bool {
        self.rootless.is_some()
    }
}
