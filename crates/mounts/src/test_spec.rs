//! A final spec for the unit tests: what a spec generator would make of a run's mounts (the
//! runtime spec's default mounts below the given ones, sorted by depth, then path).

use oci_spec::runtime::{Mount, MountBuilder, ProcessBuilder, Spec, SpecBuilder, UserBuilder};

/// The default mounts of a container (runc's `runc spec`).
fn defaults() -> Vec<Mount> {
    [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup", "cgroup"),
    ]
    .into_iter()
    .map(|(dst, typ)| {
        MountBuilder::default()
            .destination(dst)
            .typ(typ)
            .source(typ)
            .build()
            .unwrap()
    })
    .collect()
}

/// A spec running in `cwd` as this process's own uid and gid (owners any test may give),
/// hostname `0123456789ab`, with `mounts` over the defaults.
pub(crate) fn final_spec(cwd: &str, mounts: &[Mount]) -> Spec {
    let mut all: Vec<Mount> = Vec::new();
    for m in mounts.iter().cloned().chain(defaults()) {
        if !all.iter().any(|a| a.destination() == m.destination()) {
            all.push(m);
        }
    }
    all.sort_by(|a, b| {
        let depth = |m: &Mount| m.destination().components().count();
        depth(a)
            .cmp(&depth(b))
            .then_with(|| a.destination().cmp(b.destination()))
    });
    SpecBuilder::default()
        .hostname("0123456789ab")
        .process(
            ProcessBuilder::default()
                .cwd(cwd)
                .args(vec!["true".to_owned()])
                .user(
                    UserBuilder::default()
                        .uid(nix::unistd::geteuid().as_raw())
                        .gid(nix::unistd::getegid().as_raw())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .mounts(all)
        .build()
        .unwrap()
}

/// An error and its causes on one line, joined by `: `, as the ocirun binary prints them.
pub(crate) fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
