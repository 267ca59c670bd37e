//! A user namespace for a user other than root: the ids it maps, and entering it as
//! `podman unshare` and `buildah unshare` do.
//!
//! The mapping ([`UserNamespace::for_user`]): id 0 of the namespace is the user's own uid (and
//! gid), ids 1 to N are the user's first range of subordinate ids in `/etc/subuid` (and
//! `/etc/subgid`), podman's default rootless mapping. A user without a range gets a single-id
//! mapping (0 to the user), with a warning that names the file, as podman does.
//!
//! Entering it ([`UserNamespace::enter`]), from a process with one thread:
//! 1. a child is forked; it calls unshare(2) with `CLONE_NEWUSER`, says so on a pipe and waits
//!    for the parent to close another;
//! 2. the parent writes the child's maps: with more than the user's own id, through the setuid
//!    helpers `newgidmap PID 0 GID 1 1 SUBGID N` and `newuidmap PID 0 UID 1 1 SUBUID N` (shadow's
//!    uidmap package; they check the ranges against /etc/subuid and /etc/subgid), else itself,
//!    `deny` to `/proc/PID/setgroups` first (the kernel's rule for an unprivileged gid map);
//! 3. the parent opens `/proc/PID/ns/user`, lets the child exit, reaps it, and joins the
//!    namespace with setns(2): its uid and gid are 0 there, with every capability over what the
//!    namespace owns. The namespace lives as long as the process (and what it starts) is in it;
//! 4. the parent unshares its mount namespace, so that it has one the user namespace owns (the
//!    host's mounts, as slaves: nothing mounted in it reaches the host), as podman and buildah
//!    do: the runtime needs it for a nested user namespace.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Pid};

use crate::DriverError;

/// One line of a user namespace's uid or gid map (user_namespaces(7), runtime-spec
/// `linux.uidMappings`): ids `container .. container+size` inside are `host .. host+size`
/// outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    /// The first id inside the namespace.
    pub container: u32,
    /// The first id outside (in the parent namespace).
    pub host: u32,
    /// How many ids.
    pub size: u32,
}

/// The uid and gid maps of a user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNamespace {
    /// The uid map, in order.
    pub uid_map: Vec<IdMap>,
    /// The gid map, in order.
    pub gid_map: Vec<IdMap>,
}

/// The ranges `(first id, count)` that an `/etc/subuid` or `/etc/subgid` text gives the user
/// `name` (or its numeric id `id`), in the file's order: lines `NAME:FIRST:COUNT` or
/// `ID:FIRST:COUNT`; comments, malformed lines and empty ranges are skipped.
pub fn parse_subid_ranges(text: &str, name: &str, id: u32) -> Vec<(u32, u32)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut f = line.trim().split(':');
            let (owner, first, count) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || (owner != name && owner != id.to_string()) {
                return None;
            }
            let (first, count): (u32, u32) = (first.parse().ok()?, count.parse().ok()?);
            (count > 0 && first.checked_add(count - 1).is_some()).then_some((first, count))
        })
        .collect()
}

impl UserNamespace {
    /// The namespace of the user `name` (`uid`, `gid`): 0 to the user's ids, then 1.. to the
    /// first range of `subuid` and `subgid` (the texts of `/etc/subuid` and `/etc/subgid`).
    /// Returns a warning when the user has no range in a file: the map is then the single id.
    pub fn for_user(
        name: &str,
        uid: u32,
        gid: u32,
        subuid: &str,
        subgid: &str,
    ) -> (Self, Option<String>) {
        let mut warning = None;
        let mut map = |id: u32, text: &str, file: &str| {
            let mut map = vec![IdMap {
                container: 0,
                host: id,
                size: 1,
            }];
            match parse_subid_ranges(text, name, id).first() {
                Some(&(first, count)) => map.push(IdMap {
                    container: 1,
                    host: first,
                    size: count,
                }),
                None => {
                    warning.get_or_insert_with(|| {
                        format!(
                            "no range of subordinate ids for user {name:?} in {file}: the \
                             container gets a single id (0, the user's own); add a line \
                             `{name}:100000:65536` to /etc/subuid and /etc/subgid for more"
                        )
                    });
                }
            }
            map
        };
        let uid_map = map(uid, subuid, "/etc/subuid");
        let gid_map = map(gid, subgid, "/etc/subgid");
        (Self { uid_map, gid_map }, warning)
    }

    /// How many ids the uid map holds.
    pub fn uids(&self) -> u64 {
        self.uid_map.iter().map(|m| u64::from(m.size)).sum()
    }

    /// How many ids the gid map holds.
    pub fn gids(&self) -> u64 {
        self.gid_map.iter().map(|m| u64::from(m.size)).sum()
    }

    /// Joins a new user namespace with these maps, as the module documentation says. The
    /// calling process must have one thread, and must not be root (root needs no helper).
    ///
    /// # Errors
    /// [`DriverError::UserNamespace`] naming the step that failed: more than one thread, the
    /// fork, unshare(2) in the child (user namespaces disabled), a missing or failing
    /// `newuidmap`/`newgidmap` (with its message), writing a map, setns(2).
    pub fn enter(&self) -> Result<(), DriverError> {
        let fail = |step: &str, reason: String| DriverError::UserNamespace {
            step: step.to_owned(),
            reason,
        };
        let threads = std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count());
        if threads != 1 {
            return Err(fail(
                "join a user namespace",
                format!("the process has {threads} threads: it must have one"),
            ));
        }
        let (ready_r, ready_w) = pipe().map_err(|e| fail("pipe", e.to_string()))?;
        let (go_r, go_w) = pipe().map_err(|e| fail("pipe", e.to_string()))?;
        let child =
            fork_unsharing(&ready_w, &go_r, &go_w).map_err(|e| fail("fork", e.to_string()))?;
        // The child's ends: closed here, so that a child that dies shows as EOF.
        drop((ready_w, go_r));
        let result = (|| {
            let mut ready = std::fs::File::from(ready_r);
            let mut byte = [0u8; 1];
            match ready.read(&mut byte) {
                Ok(1) if byte[0] == b'1' => {}
                _ => {
                    return Err(fail(
                        "unshare(CLONE_NEWUSER)",
                        "the kernel refused a new user namespace (are unprivileged user \
                         namespaces disabled?)"
                            .to_owned(),
                    ))
                }
            }
            self.write_maps(child)?;
            let ns = std::fs::File::open(format!("/proc/{child}/ns/user"))
                .map_err(|e| fail("open /proc/PID/ns/user", e.to_string()))?;
            Ok(OwnedFd::from(ns))
        })();
        // The child exits once the pipe it waits on is closed.
        drop(go_w);
        let _ = nix::sys::wait::waitpid(child, None);
        let ns = result?;
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWUSER)
            .map_err(|e| fail("setns(CLONE_NEWUSER)", e.to_string()))?;
        // A mount namespace of the user namespace's own: the runtime joins "the host's" mount
        // namespace to open the sources of bind mounts, which it may only do in one that its
        // user namespace owns.
        nix::sched::unshare(CloneFlags::CLONE_NEWNS)
            .map_err(|e| fail("unshare(CLONE_NEWNS)", e.to_string()))?;
        Ok(())
    }

    /// Writes the maps of the namespace of `pid`.
    fn write_maps(&self, pid: Pid) -> Result<(), DriverError> {
        let single = |map: &[IdMap]| map.len() == 1 && map[0].size == 1;
        if single(&self.uid_map) && single(&self.gid_map) {
            let write = |file: &str, text: String| {
                std::fs::write(format!("/proc/{pid}/{file}"), text).map_err(|e| {
                    DriverError::UserNamespace {
                        step: format!("write /proc/PID/{file}"),
                        reason: e.to_string(),
                    }
                })
            };
            write("setgroups", "deny".to_owned())?;
            write("gid_map", line(&self.gid_map))?;
            return write("uid_map", line(&self.uid_map));
        }
        helper("newgidmap", pid, &self.gid_map)?;
        helper("newuidmap", pid, &self.uid_map)
    }
}

fn pipe() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// Forks the child of step 1, which unshares its user namespace, writes `1` (or `0` when
/// unshare(2) failed) to `ready`, and waits until `go` is closed by the parent.
#[allow(unsafe_code)]
fn fork_unsharing(ready: &OwnedFd, go_r: &OwnedFd, go_w: &OwnedFd) -> nix::Result<Pid> {
    use std::os::fd::AsRawFd;
    let (ready, go_r, go_w) = (ready.as_raw_fd(), go_r.as_raw_fd(), go_w.as_raw_fd());
    // SAFETY: the caller checked that this process has one thread, so nothing can hold a lock
    // in the child; the child calls only async-signal-safe functions (close, unshare, write,
    // read, _exit) on plain integers and a stack buffer, and never returns.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(child),
        // SAFETY: as above: only async-signal-safe calls on integers and a stack buffer.
        ForkResult::Child => unsafe {
            libc::close(go_w);
            let ok = libc::unshare(libc::CLONE_NEWUSER) == 0;
            let byte: [u8; 1] = if ok { *b"1" } else { *b"0" };
            libc::write(ready, byte.as_ptr().cast(), 1);
            let mut buf = [0u8; 1];
            libc::read(go_r, buf.as_mut_ptr().cast(), 1);
            libc::_exit(0)
        },
    }
}

/// `C H S` lines of a map, as /proc/PID/uid_map takes them.
fn line(map: &[IdMap]) -> String {
    map.iter()
        .map(|m| format!("{} {} {}\n", m.container, m.host, m.size))
        .collect()
}

/// Where newuidmap and newgidmap are looked for besides `PATH`.
const HELPER_DIRS: [&str; 2] = ["/usr/bin", "/bin"];

/// Runs `newuidmap` or `newgidmap` for `pid` with `map`.
fn helper(name: &str, pid: Pid, map: &[IdMap]) -> Result<(), DriverError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let program = std::env::split_paths(&path)
        .chain(HELPER_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| DriverError::UserNamespace {
            step: name.to_owned(),
            reason: format!(
                "{name} not found: install the uidmap package (it maps subordinate ids)"
            ),
        })?;
    let mut cmd = Command::new(&program);
    cmd.arg(pid.as_raw().to_string());
    for m in map {
        cmd.args([m.container, m.host, m.size].map(|n| n.to_string()));
    }
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| DriverError::UserNamespace {
            step: program_name(&program),
            reason: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(DriverError::UserNamespace {
        step: program_name(&program),
        reason: stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map_or_else(
                || format!("exited with {}", out.status),
                |l| l.trim().to_owned(),
            ),
    })
}

fn program_name(path: &Path) -> String {
    path.display().to_string()
}

/// How a host mounts its cgroup hierarchies, told apart as runc, youki and crun do it, by the
/// file system types (statfs(2)) of `/sys/fs/cgroup` and `/sys/fs/cgroup/unified`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLayout {
    /// cgroup v2 alone: `/sys/fs/cgroup` is a cgroup2 file system.
    Unified,
    /// cgroup v1, with a cgroup2 hierarchy without controllers at `/sys/fs/cgroup/unified`
    /// (systemd's "hybrid" layout): `/sys/fs/cgroup` is a tmpfs.
    Hybrid,
    /// cgroup v1 alone: `/sys/fs/cgroup` is a tmpfs, and nothing of cgroup v2 is mounted.
    Legacy,
    /// Anything else: no `/sys/fs/cgroup`, or another file system there.
    Unknown,
}

impl CgroupLayout {
    /// The layout that the types of `/sys/fs/cgroup` (`root`) and of `/sys/fs/cgroup/unified`
    /// (`unified`, `None` when it cannot be read) give.
    pub fn from_types(
        root: Option<nix::sys::statfs::FsType>,
        unified: Option<nix::sys::statfs::FsType>,
    ) -> Self {
        use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
        match (root, unified) {
            (Some(r), _) if r == CGROUP2_SUPER_MAGIC => Self::Unified,
            (Some(r), Some(u)) if r == TMPFS_MAGIC && u == CGROUP2_SUPER_MAGIC => Self::Hybrid,
            (Some(r), _) if r == TMPFS_MAGIC => Self::Legacy,
            _ => Self::Unknown,
        }
    }

    /// The layout this process sees, from `/sys/fs/cgroup` in its mount namespace.
    pub fn current() -> Self {
        let kind = |path: &str| {
            nix::sys::statfs::statfs(path)
                .ok()
                .map(|s| s.filesystem_type())
        };
        Self::from_types(kind(CGROUP_ROOT), kind(&format!("{CGROUP_ROOT}/unified")))
    }
}

/// Where runtimes look for the cgroup hierarchies.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// For a run without root on a [`CgroupLayout::Hybrid`] host, where the user has no cgroup
/// (cgroup v1 delegates none, and the spec names none): shows the runtime the host's cgroup v2
/// hierarchy alone, so that it puts the container into no cgroup of its own rather than fail
/// to make one. Call it after [`UserNamespace::enter`], in the mount namespace that gave this
/// process: `/sys/fs/cgroup/unified` (the cgroup2 hierarchy without controllers) is bound over
/// `/sys/fs/cgroup`.
///
/// Why: youki 0.7's cgroup v1 manager adds the container to a new cgroup in every v1
/// hierarchy it finds in `/proc/self/mountinfo`, even when the spec sets no resources, and
/// fails without root (`failed to create dir /sys/fs/cgroup/cpuset/:youki:ID: Permission
/// denied`); a tmpfs over `/sys/fs/cgroup` does not hide them (the covered mounts stay in
/// mountinfo). Its cgroup v2 manager, without root, leaves the container in its parent's
/// cgroup when it cannot make one (`libcgroups`, `v2::manager::Manager::with_rootless`), as
/// runc's rootless cgroup managers do on either version.
///
/// What the container sees changes with it: the runtime binds it this `/sys` (or, with a
/// network namespace of its own, mounts its cgroup file system from what it finds here), so
/// `/sys/fs/cgroup` is the host's cgroup2 hierarchy, read-only to the container (its files
/// belong to the host's root), while `/proc/self/cgroup` still lists the v1 hierarchies.
/// Nothing reaches the host: the mount namespace is this process's own.
///
/// Returns whether it bound anything: nothing on another layout (on [`CgroupLayout::Legacy`]
/// there is no cgroup2 hierarchy to show, and youki 0.7 cannot run without root).
///
/// # Errors
/// [`DriverError::UserNamespace`] naming the mount(2) that failed.
pub fn hide_cgroup_v1() -> Result<bool, DriverError> {
    use nix::mount::{mount, MsFlags};
    if CgroupLayout::current() != CgroupLayout::Hybrid {
        return Ok(false);
    }
    let unified = format!("{CGROUP_ROOT}/unified");
    mount(
        Some(unified.as_str()),
        CGROUP_ROOT,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| DriverError::UserNamespace {
        step: format!("bind {unified} over {CGROUP_ROOT}"),
        reason: e.to_string(),
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use nix::sys::statfs::{FsType, CGROUP2_SUPER_MAGIC, PROC_SUPER_MAGIC, TMPFS_MAGIC};

    use super::CgroupLayout;

    #[test]
    fn cgroup_layouts_are_told_apart_by_their_file_system_types() {
        let cases: [(Option<FsType>, Option<FsType>, CgroupLayout); 6] = [
            (Some(CGROUP2_SUPER_MAGIC), None, CgroupLayout::Unified),
            (
                Some(CGROUP2_SUPER_MAGIC),
                Some(TMPFS_MAGIC),
                CgroupLayout::Unified,
            ),
            (
                Some(TMPFS_MAGIC),
                Some(CGROUP2_SUPER_MAGIC),
                CgroupLayout::Hybrid,
            ),
            (Some(TMPFS_MAGIC), None, CgroupLayout::Legacy),
            (Some(TMPFS_MAGIC), Some(TMPFS_MAGIC), CgroupLayout::Legacy),
            (
                Some(PROC_SUPER_MAGIC),
                Some(CGROUP2_SUPER_MAGIC),
                CgroupLayout::Unknown,
            ),
        ];
        for (root, unified, want) in cases {
            assert_eq!(
                CgroupLayout::from_types(root, unified),
                want,
                "{root:?} {unified:?}"
            );
        }
        assert_eq!(CgroupLayout::from_types(None, None), CgroupLayout::Unknown);
    }
}

/// The file names of the id-map helpers that a runtime may run to write the maps of a user
/// namespace it makes (shadow's `newuidmap` and `newgidmap`).
pub const ID_MAP_HELPERS: [&str; 2] = ["newuidmap", "newgidmap"];

/// What `newuidmap` or `newgidmap` does (`which`: the helper's file name), for a caller that is
/// root in a user namespace, where the setuid helpers cannot work (the host's root, their
/// owner, is not mapped there, so setuid has no effect): writes the mappings of `args`, `PID
/// CONTAINER HOST SIZE...` as newuidmap(1) takes them, to `/proc/PID/uid_map` (or `gid_map`)
/// in one write(2), which the kernel allows to a writer with `CAP_SETUID` (`CAP_SETGID`) over
/// the namespace's parent, for ids mapped there (user_namespaces(7)).
///
/// Why: youki 0.7 writes a map of more than one range for a container's own user namespace
/// through the helpers found in its `PATH`, and ignores their failure; ocirun's run without
/// root puts these in its `PATH` ([`id_map_helpers`]). runc writes such maps itself.
///
/// # Errors
/// [`DriverError::UserNamespace`] naming the bad argument or the failed write.
pub fn write_id_map(which: &str, args: &[String]) -> Result<(), DriverError> {
    let fail = |reason: String| DriverError::UserNamespace {
        step: format!("{which} {}", args.join(" ")),
        reason,
    };
    let file = match which {
        "newuidmap" => "uid_map",
        "newgidmap" => "gid_map",
        other => return Err(fail(format!("{other:?} is not newuidmap or newgidmap"))),
    };
    let (pid, ranges) = args
        .split_first()
        .ok_or_else(|| fail("no pid".to_owned()))?;
    let pid: u32 = pid
        .parse()
        .map_err(|_| fail(format!("{pid:?} is not a pid")))?;
    if ranges.is_empty() || ranges.len() % 3 != 0 {
        return Err(fail(
            "the mappings are not triples CONTAINER HOST SIZE".to_owned(),
        ));
    }
    let mut text = String::new();
    for triple in ranges.chunks(3) {
        for id in triple {
            id.parse::<u32>()
                .map_err(|_| fail(format!("{id:?} is not an id")))?;
        }
        text.push_str(&format!("{} {} {}\n", triple[0], triple[1], triple[2]));
    }
    std::fs::write(format!("/proc/{pid}/{file}"), text).map_err(|e| fail(e.to_string()))
}

/// Makes `dir` (created mode 0700 when missing) hold `newuidmap` and `newgidmap` as symbolic
/// links to `exe`, the ocirun binary, which does [`write_id_map`] when called by those names;
/// a runtime given `dir` first in its `PATH` ([`crate::Runtime::path_prefix`]) runs them.
/// Returns `dir`.
///
/// # Errors
/// [`DriverError::UserNamespace`] naming the link that cannot be made.
pub fn id_map_helpers(dir: &Path, exe: &Path) -> Result<PathBuf, DriverError> {
    use std::os::unix::fs::DirBuilderExt;
    let fail = |step: String, e: std::io::Error| DriverError::UserNamespace {
        step,
        reason: e.to_string(),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| fail(format!("create {}", dir.display()), e))?;
    for name in ID_MAP_HELPERS {
        let link = dir.join(name);
        if std::fs::read_link(&link).is_ok_and(|target| target == exe) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(exe, &tmp)
            .and_then(|()| std::fs::rename(&tmp, &link))
            .map_err(|e| fail(format!("link {} to {}", link.display(), exe.display()), e))?;
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod id_map_tests {
    use super::write_id_map;

    #[test]
    fn bad_id_map_arguments_are_refused_by_name() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (which, given, reason) in [
            ("newuidmap", args(&[]), "no pid"),
            (
                "newuidmap",
                args(&["x", "0", "1", "1"]),
                "\"x\" is not a pid",
            ),
            (
                "newgidmap",
                args(&["1", "0", "1"]),
                "the mappings are not triples CONTAINER HOST SIZE",
            ),
            (
                "newgidmap",
                args(&["1", "0", "-1", "1"]),
                "\"-1\" is not an id",
            ),
            (
                "newfoomap",
                args(&["1", "0", "1", "1"]),
                "\"newfoomap\" is not newuidmap or newgidmap",
            ),
        ] {
            let err = write_id_map(which, &given).unwrap_err().to_string();
            assert!(err.ends_with(reason), "{which} {given:?}: {err}");
        }
    }
}
