//! `--init`: a minimal init as the container's PID 1 (podman's `--init`).

use std::path::Path;

use ocirun_spec_gen::oci_spec::runtime::{MountBuilder, Spec};

use crate::merge_mounts;

/// Where the init binary appears inside the container (podman uses `/run/podman-init`).
pub const INIT_PATH: &str = "/run/ocirun-init";

/// Host paths searched for an init binary, in order: podman's catatonit, Debian's catatonit,
/// Debian's statically linked tini. The binary must be static: it runs inside any rootfs.
pub const INIT_CANDIDATES: [&str; 3] = [
    "/usr/libexec/podman/catatonit",
    "/usr/bin/catatonit",
    "/usr/bin/tini-static",
];

/// Makes the process run under `init_binary` (a host path): the binary is bind-mounted
/// read-only at [`INIT_PATH`], and `process.args` becomes `[INIT_PATH, "--", args...]`, the
/// command line that catatonit and tini take. The init forwards signals to the command and
/// reaps zombies.
pub fn add_init(spec: &mut Spec, init_binary: &Path) {
    let init_mount = MountBuilder::default()
        .destination(INIT_PATH)
        .typ("bind")
        .source(init_binary)
        .options(vec![
            "bind".to_owned(),
            "ro".to_owned(),
            "nosuid".to_owned(),
            "nodev".to_owned(),
        ])
        .build()
        .unwrap_or_else(|e| panic!("init mount is malformed: {e}"));
    let mounts = spec.mounts().clone().unwrap_or_default();
    spec.set_mounts(Some(merge_mounts([vec![init_mount], mounts])));
    if let Some(process) = spec.process_mut() {
        let mut args = vec![INIT_PATH.to_owned(), "--".to_owned()];
        args.extend(process.args().clone().unwrap_or_default());
        process.set_args(Some(args));
    }
}

/// The first of [`INIT_CANDIDATES`] that exists on the host.
pub fn find_init() -> Option<&'static Path> {
    INIT_CANDIDATES.iter().map(Path::new).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocirun_spec_gen::{RunOptions, SpecGenerator};

    #[test]
    fn init_wraps_the_command_and_is_mounted_read_only() {
        let options = RunOptions::new(vec!["sleep".into(), "1".into()]);
        let mut spec = SpecGenerator::new("/r", "0123456789ab", &options)
            .generate()
            .unwrap();
        add_init(&mut spec, Path::new("/usr/bin/catatonit"));
        let args = spec.process().as_ref().unwrap().args().clone().unwrap();
        assert_eq!(args, ["/run/ocirun-init", "--", "sleep", "1"]);
        let mount = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new(INIT_PATH))
            .unwrap()
            .clone();
        assert_eq!(
            mount.source().as_deref(),
            Some(Path::new("/usr/bin/catatonit"))
        );
        assert!(mount.options().as_ref().unwrap().contains(&"ro".to_owned()));
    }
}
