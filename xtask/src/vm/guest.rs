//! What the guest runs: the initramfs and the plan of one run.
//!
//! The guest boots in two stages:
//!
//! 1. `/init` of the initramfs ([`INIT`], busybox ash as PID 1) mounts proc, sys and devtmpfs,
//!    reads `e2e.cg=` and `e2e.fault=` from the kernel command line, `insmod`s the modules in
//!    the order of `/lib/modules/order`, mounts the host's `/` read-only over 9p (tag
//!    `hostroot`), puts an overlay with a tmpfs upper layer on it, mounts a tmpfs on its `/run`,
//!    copies busybox, `stage2.sh` and `plan.sh` to `/run/e2e/`, moves proc, sys and dev there
//!    and `switch_root`s, running `/run/e2e/busybox sh /run/e2e/stage2.sh CG`;
//! 2. `stage2.sh` ([`STAGE2`]), PID 1 on the host's tree, sources `plan.sh` ([`Plan`]), mounts
//!    tmpfs on `/tmp` (keeping the plan's directories below it visible, [`Plan::keep`]) and
//!    `/dev/shm`, devpts, and the cgroup v1 hierarchies or the cgroup2 tree with every
//!    controller enabled, sets the host's NOFILE and NPROC
//!    limits ([`parse_limits`]; the kernel gives PID 1 lower ones), and runs its test binaries in
//!    `E2E_LANES` parallel lanes (each lane takes the next binary, in the plan's order, when
//!    its last one ends), each binary in the e2e package's directory with its harness
//!    arguments and `OCIRUN_E2E_CGROUP` and `OCIRUN_E2E_VM=1` set, reporting on the console
//!    ([`super::console`]) and at the end through the isa-debug-exit port.
//!
//! Exit statuses of the guest: 0 every suite passed, 1 a suite failed, 110-116 `/init` could
//! not set up the root, 120-124 stage 2 could not set up mounts, cgroups or the plan.
//!
//! Because the guest's `/` is the host's, the host's runc and the binaries that cargo just
//! built are used at the same paths; nothing is copied but busybox and the scripts. Only
//! `/tmp`, `/run` and what lies below `/proc`, `/sys` and `/dev` are the guest's own, so the
//! workspace must not lie there ([`check_visible`]).
//!
//! The initramfs is cached in `target/vm/initramfs/base.cpio`, keyed by the kernel, busybox
//! and the scripts; each run appends a small second archive with `e2e/plan.sh`.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::cpio::Archive;
use super::kernel::Kernel;

/// `/init` of the initramfs.
pub(crate) const INIT: &str = include_str!("guest/init.sh");
/// Stage 2, run from the host's tree.
pub(crate) const STAGE2: &str = include_str!("guest/stage2.sh");

/// The host's busybox, which must be static (Debian's busybox-static).
const BUSYBOX: &str = "/bin/busybox";

/// Directories that the guest mounts its own filesystems on: the workspace and the target
/// directory must lie elsewhere to be seen by the guest. (The guest's own `/tmp` is no such
/// place: stage 2 keeps the [`Plan::keep`] directories below it visible.)
const GUEST_OWN: &[&str] = &["/run", "/proc", "/sys", "/dev"];

/// Where the guest mounts a tmpfs of its own, over the host's directory.
const GUEST_TMP: &str = "/tmp";

/// Of `paths` (absolute), those below the guest's own `/tmp` that the guest must keep visible,
/// leaving out any below another one kept (a bind mount of a directory carries its
/// subdirectories).
pub(crate) fn kept_below_tmp(paths: &[&Path]) -> Vec<PathBuf> {
    let mut kept: Vec<PathBuf> = Vec::new();
    let mut below: Vec<&Path> = paths
        .iter()
        .copied()
        .filter(|p| p.starts_with(GUEST_TMP) && *p != Path::new(GUEST_TMP))
        .collect();
    below.sort_by_key(|p| p.components().count());
    for path in below {
        if !kept.iter().any(|k| path.starts_with(k)) {
            kept.push(path.to_owned());
        }
    }
    kept
}

/// Fails when `path` lies below a directory that the guest covers with its own mounts.
pub(crate) fn check_visible(what: &str, path: &Path) -> Result<()> {
    for own in GUEST_OWN {
        if path.starts_with(own) {
            bail!(
                "{what} {} lies below {own}, which the guest covers with its own mount; the \
                 guest sees the host's / but not {}: move it elsewhere (e.g. \
                 CARGO_TARGET_DIR=/var/tmp/...)",
                path.display(),
                GUEST_OWN.join(", ")
            );
        }
    }
    Ok(())
}

/// One test binary of the e2e package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Suite {
    /// The cargo target's name (`run_basics`; `ocirun_e2e` for the library's unit tests).
    pub(crate) name: String,
    /// The absolute path of the built test executable.
    pub(crate) executable: PathBuf,
}

/// What stage 2 runs: the environment, the working directory, the test binaries with their
/// harness arguments, and how many binaries run at once.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Exported before the suites run (the fixtures, the binary, forwarded variables).
    pub(crate) env: Vec<(String, OsString)>,
    /// Where the suites run: the e2e package's directory, as under `cargo test`.
    pub(crate) cwd: PathBuf,
    /// The test binaries, started in this order.
    pub(crate) suites: Vec<Suite>,
    /// Arguments for every test binary (`--test-threads=N`, filters).
    pub(crate) args: Vec<OsString>,
    /// How many test binaries run at the same time.
    pub(crate) lanes: usize,
    /// Resource limits to set before the suites run, as the host's tests would have them.
    pub(crate) limits: Vec<Limit>,
    /// Host directories below `/tmp` (the workspace, the target directory) that stay visible
    /// at their paths over the guest's own `/tmp`.
    pub(crate) keep: Vec<PathBuf>,
    /// Variables of `env` that name a directory which stage 2 copies (`cp -a`) into the
    /// guest's memory, below `/run/e2e/local`, and points the variable at: the busybox
    /// fixture, which every test copies. Read through 9p, each of its entries costs round
    /// trips to the host for its extended attributes, which makes a copy several times slower
    /// than one from memory.
    pub(crate) local: Vec<String>,
}

/// A resource limit: the letter of ash's `ulimit` and the soft and hard values (numbers or
/// `unlimited`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limit {
    pub(crate) flag: char,
    pub(crate) soft: String,
    pub(crate) hard: String,
}

/// The `ulimit` letters of the limits that the guest copies from the host, with their names
/// in `/proc/PID/limits`: the e2e tests compare ocirun's rlimits with their own.
const COPIED_LIMITS: &[(char, &str)] = &[('n', "Max open files"), ('u', "Max processes")];

/// The limits of [`COPIED_LIMITS`] in a `/proc/PID/limits` text.
pub(crate) fn parse_limits(text: &str) -> Vec<Limit> {
    COPIED_LIMITS
        .iter()
        .filter_map(|(flag, name)| {
            let rest = text.lines().find_map(|line| line.strip_prefix(name))?;
            let mut values = rest.split_whitespace();
            let valid = |v: &str| v == "unlimited" || v.parse::<u64>().is_ok();
            let soft = values.next().filter(|v| valid(v))?;
            let hard = values.next().filter(|v| valid(v))?;
            Some(Limit {
                flag: *flag,
                soft: soft.to_owned(),
                hard: hard.to_owned(),
            })
        })
        .collect()
}

impl Plan {
    /// The plan as the shell script that stage 2 sources: `export` lines, `E2E_CWD`,
    /// `E2E_LIMITS` (`FLAG SOFT HARD` triples), `E2E_LANES`, `E2E_SUITES` (their count), the
    /// function `keep_paths` (`keep PATH` for each of [`Plan::keep`]), the function
    /// `local_copies` (`local_copy NAME` for each of [`Plan::local`]) and one function
    /// `suite_I` per suite (`run_suite NAME EXECUTABLE ARGS...`), numbered from 0.
    pub(crate) fn script(&self) -> Result<Vec<u8>> {
        let mut out = b"# The plan of one `cargo xtask vm` run (generated).\n".to_vec();
        for (key, value) in &self.env {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                bail!("invalid environment variable name {key:?}");
            }
            out.extend_from_slice(format!("export {key}=").as_bytes());
            quote(&mut out, value.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(b"E2E_CWD=");
        quote(&mut out, self.cwd.as_os_str().as_bytes());
        let limits: Vec<String> = self
            .limits
            .iter()
            .map(|l| format!("{} {} {}", l.flag, l.soft, l.hard))
            .collect();
        out.extend_from_slice(
            format!(
                "\nE2E_LIMITS='{}'\nE2E_LANES={}\nE2E_SUITES={}\n",
                limits.join(" "),
                self.lanes.max(1),
                self.suites.len()
            )
            .as_bytes(),
        );
        if let Some(name) = self
            .local
            .iter()
            .find(|name| !self.env.iter().any(|(key, _)| key == *name))
        {
            bail!("{name} is to be copied into the guest but is not in the plan's environment");
        }
        function(
            &mut out,
            "keep_paths",
            "keep",
            self.keep.iter().map(|path| path.as_os_str().as_bytes()),
        );
        function(
            &mut out,
            "local_copies",
            "local_copy",
            self.local.iter().map(|name| name.as_bytes()),
        );
        for (index, suite) in self.suites.iter().enumerate() {
            out.extend_from_slice(format!("suite_{index}() {{\n    run_suite ").as_bytes());
            quote(&mut out, suite.name.as_bytes());
            out.push(b' ');
            quote(&mut out, suite.executable.as_os_str().as_bytes());
            for arg in &self.args {
                out.push(b' ');
                quote(&mut out, arg.as_bytes());
            }
            out.extend_from_slice(b"\n}\n");
        }
        if out.contains(&0) {
            bail!("the plan holds a NUL byte");
        }
        Ok(out)
    }
}

/// Appends the sh function `name` that runs `command ARG` for each of `args` (quoted), and
/// nothing (`:`) when there are none.
fn function<'a>(
    out: &mut Vec<u8>,
    name: &str,
    command: &str,
    args: impl Iterator<Item = &'a [u8]>,
) {
    out.extend_from_slice(format!("{name}() {{\n    :\n").as_bytes());
    for arg in args {
        out.extend_from_slice(format!("    {command} ").as_bytes());
        quote(out, arg);
        out.push(b'\n');
    }
    out.extend_from_slice(b"}\n");
}

/// Appends `value` in single quotes for sh: `'` becomes `'\''`.
fn quote(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'\'');
    for &b in value {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
}

/// The base initramfs for `kernel`, built unless cached in `cache/initramfs/`.
pub(crate) fn base_initramfs(sh: &Shell, kernel: &Kernel, cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("initramfs");
    let archive = dir.join("base.cpio");
    let key_file = dir.join("base.key");
    let busybox = fs::metadata(BUSYBOX).with_context(|| format!("cannot stat {BUSYBOX}"))?;
    let key = format!(
        "kernel {}\nbusybox {} {} {}\n--- init\n{INIT}\n--- stage2\n{STAGE2}",
        kernel.dir.display(),
        busybox.len(),
        busybox.mtime(),
        busybox.ino()
    );
    if archive.is_file() && fs::read_to_string(&key_file).is_ok_and(|k| k == key) {
        return Ok(archive);
    }
    if !crate::rootfs::has_static_busybox() {
        bail!("{BUSYBOX} is missing or not statically linked: apt-get install busybox-static");
    }
    let bytes = build_base(sh, kernel)?;
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!("base.cpio.tmp-{}", std::process::id()));
    fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, &archive)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), archive.display()))?;
    fs::write(&key_file, key).with_context(|| format!("cannot write {}", key_file.display()))?;
    eprintln!(
        "initramfs: built {} ({} KB)",
        archive.display(),
        bytes.len() >> 10
    );
    Ok(archive)
}

fn build_base(sh: &Shell, kernel: &Kernel) -> Result<Vec<u8>> {
    let mut archive = Archive::default();
    for dir in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "e2e",
    ] {
        archive.dir(dir, 0o755);
    }
    archive.dir("lib", 0o755);
    archive.dir("lib/modules", 0o755);
    archive.char_device("dev/console", 0o600, 5, 1);
    let busybox = fs::read(BUSYBOX).with_context(|| format!("cannot read {BUSYBOX}"))?;
    archive.file("bin/busybox", 0o755, &busybox);
    let list = cmd!(sh, "{BUSYBOX} --list-full")
        .quiet()
        .read()
        .with_context(|| format!("cannot list the applets of {BUSYBOX}"))?;
    for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = Path::new(applet);
        let parent_known = path.parent().is_some_and(|parent| {
            ["", "bin", "sbin", "usr/bin", "usr/sbin"]
                .iter()
                .any(|known| parent == Path::new(known))
        });
        let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
        if !parent_known || !plain {
            bail!("unexpected applet path {applet:?} from {BUSYBOX} --list-full");
        }
        // busybox lists itself as an applet too.
        if applet != "bin/busybox" {
            archive.symlink(applet, "/bin/busybox");
        }
    }
    archive.file("init", 0o755, INIT.as_bytes());
    archive.file("e2e/stage2.sh", 0o644, STAGE2.as_bytes());
    let mut order = String::new();
    for module in &kernel.modules {
        let name = module
            .file_stem()
            .and_then(|n| n.to_str())
            .with_context(|| format!("bad module file name {}", module.display()))?;
        let data = fs::read(module).with_context(|| format!("cannot read {}", module.display()))?;
        archive.file(&format!("lib/modules/{name}.ko"), 0o644, &data);
        order.push_str(name);
        order.push('\n');
    }
    archive.file("lib/modules/order", 0o644, order.as_bytes());
    Ok(archive.finish())
}

/// Writes `out`: the base initramfs followed by an archive holding `e2e/plan.sh`.
pub(crate) fn write_initramfs(base: &Path, plan: &Plan, out: &Path) -> Result<()> {
    let mut bytes = fs::read(base).with_context(|| format!("cannot read {}", base.display()))?;
    let mut archive = Archive::default();
    archive.file("e2e/plan.sh", 0o644, &plan.script()?);
    bytes.extend_from_slice(&archive.finish());
    fs::write(out, bytes).with_context(|| format!("cannot write {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_quotes_everything() {
        let plan = Plan {
            env: vec![
                ("OCIRUN_BIN".into(), "/w/target/debug/ocirun".into()),
                ("X".into(), "it's".into()),
            ],
            cwd: "/w/tests".into(),
            suites: vec![Suite {
                name: "run_basics".into(),
                executable: "/w/target/debug/deps/run_basics-0123".into(),
            }],
            args: vec!["--test-threads=2".into(), "echo $HOME".into()],
            lanes: 2,
            limits: vec![Limit {
                flag: 'n',
                soft: "1024".into(),
                hard: "20000".into(),
            }],
            keep: vec!["/tmp/w".into()],
            local: vec!["X".into()],
        };
        assert_eq!(
            String::from_utf8(plan.script().unwrap()).unwrap(),
            "# The plan of one `cargo xtask vm` run (generated).\n\
             export OCIRUN_BIN='/w/target/debug/ocirun'\n\
             export X='it'\\''s'\n\
             E2E_CWD='/w/tests'\n\
             E2E_LIMITS='n 1024 20000'\n\
             E2E_LANES=2\n\
             E2E_SUITES=1\n\
             keep_paths() {\n    :\n    keep '/tmp/w'\n}\n\
             local_copies() {\n    :\n    local_copy 'X'\n}\n\
             suite_0() {\n    \
             run_suite 'run_basics' '/w/target/debug/deps/run_basics-0123' \
             '--test-threads=2' 'echo $HOME'\n}\n"
        );
    }

    #[test]
    fn only_the_outermost_directories_below_tmp_are_kept() {
        let kept = |paths: &[&str]| {
            let paths: Vec<&Path> = paths.iter().map(Path::new).collect();
            kept_below_tmp(&paths)
        };
        assert_eq!(
            kept(&["/tmp/ci/clone/target", "/tmp/ci/clone"]),
            [PathBuf::from("/tmp/ci/clone")]
        );
        assert_eq!(
            kept(&["/tmp/a", "/tmp/b/target"]),
            [PathBuf::from("/tmp/a"), PathBuf::from("/tmp/b/target")]
        );
        assert!(kept(&["/work/main", "/work/main/target", "/tmp", "/tmpx/w"]).is_empty());
    }

    #[test]
    fn the_plan_rejects_bad_names() {
        let plan = Plan {
            env: vec![("A B".into(), "x".into())],
            cwd: "/".into(),
            suites: vec![],
            args: vec![],
            lanes: 1,
            limits: vec![],
            keep: vec![],
            local: vec![],
        };
        assert!(plan.script().is_err());
        let plan = Plan {
            env: vec![("A".into(), "x".into())],
            local: vec!["B".into()],
            ..plan
        };
        let err = plan.script().unwrap_err().to_string();
        assert_eq!(
            err,
            "B is to be copied into the guest but is not in the plan's environment"
        );
    }

    #[test]
    fn reads_the_copied_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             96365                96365                processes\n\
                    Max open files            1024                 20000                files\n\
                    Max locked memory         8388608              8388608              bytes\n";
        assert_eq!(
            parse_limits(text),
            vec![
                Limit {
                    flag: 'n',
                    soft: "1024".into(),
                    hard: "20000".into()
                },
                Limit {
                    flag: 'u',
                    soft: "96365".into(),
                    hard: "96365".into()
                },
            ]
        );
        assert_eq!(
            parse_limits("Max processes  unlimited  unlimited  processes\n")[0].hard,
            "unlimited"
        );
        assert!(parse_limits("Max open files  lots  20000  files\n").is_empty());
    }

    #[test]
    fn paths_under_the_guests_own_mounts_are_refused() {
        assert!(check_visible("the workspace", Path::new("/run/user/0/w")).is_err());
        assert!(check_visible("the target directory", Path::new("/dev/shm/t")).is_err());
        // Below /tmp the guest keeps them visible (kept_below_tmp).
        assert!(check_visible("the workspace", Path::new("/tmp/w")).is_ok());
        assert!(check_visible("the workspace", Path::new("/work/main")).is_ok());
        assert!(check_visible("the workspace", Path::new("/tmpfoo")).is_ok());
    }

    #[test]
    fn the_scripts_report_through_the_console_protocol() {
        for script in [INIT, STAGE2] {
            assert!(script.contains("E2E-RESULT rc=$1"));
            assert!(script.contains("seek=244"), "isa-debug-exit port 0xf4");
        }
        assert!(STAGE2.contains("E2E-TEST"));
        assert!(STAGE2.contains("E2E-SUITE $name rc=$rc secs="));
    }
}
