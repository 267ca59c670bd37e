//! Facts about the machine and the workspace that the tasks share: where the workspace and its
//! target directory are, which cargo to run, whether we are root, where a program is on `PATH`,
//! and which OCI runtime the tests and ocirun are to use.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::Shell;

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the xtask crate lives in a subdirectory of the workspace")
        .to_path_buf()
}

/// A shell whose commands run in the workspace root.
///
/// A relative `CARGO_TARGET_DIR` is relative to the directory the user ran `cargo xtask` in
/// (`cwd`); the shell carries it as an absolute path so that the cargo commands it runs from the
/// workspace root, and [`target_dir`], agree on where the build output goes.
pub(crate) fn workspace_shell(cwd: &Path) -> Result<Shell> {
    let sh = Shell::new().context("cannot create a shell for running commands")?;
    sh.change_dir(workspace_root());
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        sh.set_var("CARGO_TARGET_DIR", cwd.join(dir));
    }
    Ok(sh)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` as [`workspace_shell`] set it, else
/// `<workspace>/target`.
pub(crate) fn target_dir(sh: &Shell) -> PathBuf {
    match sh.var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

/// The cargo that runs this xtask (`$CARGO`, set by `cargo run`), else `cargo` from `PATH`.
pub(crate) fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The effective user id of this process, from the `Uid:` line of `/proc/self/status`
/// (real, effective, saved, filesystem).
fn effective_uid() -> Result<u32> {
    const STATUS: &str = "/proc/self/status";
    let status =
        std::fs::read_to_string(STATUS).with_context(|| format!("cannot read {STATUS}"))?;
    parse_effective_uid(&status).with_context(|| format!("no valid `Uid:` line in {STATUS}"))
}

fn parse_effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether this process runs with effective uid 0.
pub(crate) fn is_root() -> Result<bool> {
    Ok(effective_uid()? == 0)
}

/// Fails with `why` unless this process runs as root.
pub(crate) fn require_root(why: &str) -> Result<()> {
    let uid = effective_uid()?;
    if uid != 0 {
        bail!("{why}; this process runs as uid {uid}: run it as root");
    }
    Ok(())
}

/// The system administration directories that a root `PATH` has, and a `su` without `-` may
/// lack; Debian installs debootstrap, runc and chroot there.
const SBIN_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// The first executable regular file called `name` in the directories of `PATH`.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).find_map(|dir| executable_in(&dir, name))
}

/// Like [`find_in_path`], then in the sbin directories that `PATH` lacks.
pub(crate) fn find_admin_tool(name: &str) -> Option<PathBuf> {
    find_in_path(name).or_else(|| {
        SBIN_DIRS
            .iter()
            .find_map(|dir| executable_in(Path::new(dir), name))
    })
}

/// `PATH` with the sbin directories it lacks appended, for tools (debootstrap, apt-get) that
/// run `chroot`, `mount` and `dpkg` helpers from there.
pub(crate) fn admin_path() -> Result<OsString> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for dir in SBIN_DIRS {
        if !dirs.iter().any(|known| known == Path::new(dir)) {
            dirs.push(PathBuf::from(dir));
        }
    }
    std::env::join_paths(dirs).context("PATH holds a directory with a `:` in its name")
}

/// The variable that names the OCI runtime for ocirun, and so for the e2e tests.
pub(crate) const RUNTIME_VAR: &str = "OCIRUN_RUNTIME";

/// The OCI runtime that `--runtime` of e2e, vm and bench asks for, else `$OCIRUN_RUNTIME`;
/// `None` when neither is given, for ocirun's default (runc). A path with a `/` is made
/// absolute against the directory `cargo xtask` runs in, since the tests run elsewhere.
pub(crate) fn runtime(option: Option<&OsStr>) -> Result<Option<OsString>> {
    let from_env = std::env::var_os(RUNTIME_VAR).filter(|value| !value.is_empty());
    let Some(runtime) = option.map(OsStr::to_owned).or(from_env) else {
        return Ok(None);
    };
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(Some(absolute_runtime(&cwd, runtime)))
}

/// `runtime` as given when it is a name (no `/`), else `cwd` joined with it.
fn absolute_runtime(cwd: &Path, runtime: OsString) -> OsString {
    if runtime.as_bytes().contains(&b'/') {
        cwd.join(runtime).into_os_string()
    } else {
        runtime
    }
}

/// Where the runtime `runtime` (a name, or an absolute path from [`runtime`]) is: a name in
/// `PATH` or the sbin directories, as ocirun looks for it; a path when it is an executable
/// file.
pub(crate) fn find_runtime(runtime: &OsStr) -> Option<PathBuf> {
    let path = Path::new(runtime);
    if path.is_absolute() {
        let meta = std::fs::metadata(path).ok()?;
        return (meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .then(|| path.to_path_buf());
    }
    find_admin_tool(runtime.to_str()?)
}

fn executable_in(dir: &Path, name: &str) -> Option<PathBuf> {
    if !dir.is_absolute() {
        return None;
    }
    let candidate = dir.join(name);
    let meta = std::fs::metadata(&candidate).ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_field() {
        let status =
            "Name:\tcat\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid("Name:\tcat\n"), None);
        assert_eq!(parse_effective_uid("Uid:\t1000\n"), None);
    }

    #[test]
    fn runtime_paths_are_made_absolute_and_names_kept() {
        let cwd = Path::new("/home/dev/ocirun");
        assert_eq!(absolute_runtime(cwd, "crun".into()), "crun");
        assert_eq!(
            absolute_runtime(cwd, "./bin/myrunc".into()),
            "/home/dev/ocirun/./bin/myrunc"
        );
        assert_eq!(
            absolute_runtime(cwd, "/usr/sbin/runc".into()),
            "/usr/sbin/runc"
        );
    }

    #[test]
    fn runtimes_are_found_by_name_and_by_path() {
        assert_eq!(find_runtime("sh".as_ref()), find_in_path("sh"));
        assert!(find_runtime("sh".as_ref()).is_some());
        assert_eq!(
            find_runtime("/bin/sh".as_ref()),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(find_runtime("/no/such/runtime".as_ref()), None);
        assert_eq!(find_runtime("/etc/passwd".as_ref()), None);
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }
}
