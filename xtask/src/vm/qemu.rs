//! QEMU: installing it, its command line, and one boot under a timeout.
//!
//! One boot ([`boot`]):
//!
//! 1. `qemu-system-x86_64` starts with stdin at `/dev/null`, the serial console (`-nographic`)
//!    on a pipe to stdout, and its own messages on a pipe to stderr;
//! 2. every console line is handed to the caller as it arrives (a reader thread feeds a
//!    channel), so progress shows while the guest runs;
//! 3. when `timeout` passes first, QEMU is killed (SIGKILL) and the boot ends as
//!    [`Exit::TimedOut`]; when the caller breaks on a line, as [`Exit::Stopped`]; otherwise
//!    its exit status is decoded ([`decode_exit`]).
//!
//! The guest reports its status `rc` by writing `rc + 1` to the isa-debug-exit port (0xf4),
//! which makes QEMU exit with `2 * (rc + 1) + 1`: 3 for rc 0. QEMU's own errors are 1, and a
//! guest that stops without writing (a panic, with `panic=-1` and `-no-reboot`) gives 0.

use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::host;

/// The Debian package that ships `qemu-system-x86_64`.
const PACKAGE: &str = "qemu-system-x86";
/// The emulator.
const BINARY: &str = "qemu-system-x86_64";

/// How the guest's CPU is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Accel {
    /// QEMU's emulator (`-accel tcg,thread=multi -cpu max,erms=off,fsrm=off`): works
    /// everywhere. Without ERMS and FSRM the guest's kernel and libc clear and copy memory
    /// with `rep stosq`/`movsq` or vector loops instead of `rep stosb`/`movsb`, which TCG runs
    /// one byte per iteration.
    #[value(help = "QEMU's emulator: works everywhere (the default)")]
    Tcg,
    /// Hardware virtualization (`-accel kvm -cpu host`): only when asked for.
    #[value(help = "hardware virtualization, where /dev/kvm works")]
    Kvm,
}

/// How a boot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The guest wrote its status to the exit device.
    Reported(i32),
    /// QEMU exited 0: the guest stopped without reporting (a kernel panic, or a power-off
    /// without a status).
    NoReport,
    /// QEMU failed on its own (status 1, or another even status).
    QemuError(i32),
    /// QEMU was killed by this signal (not by us).
    Signal(i32),
    /// The timeout passed; QEMU was killed.
    TimedOut,
    /// The caller broke on a console line; QEMU was killed.
    Stopped,
}

/// Decodes QEMU's exit status (see the module docs).
pub(crate) fn decode_exit(code: Option<i32>, signal: Option<i32>) -> Exit {
    match (code, signal) {
        (Some(0), _) => Exit::NoReport,
        (Some(code), _) if code >= 3 && code % 2 == 1 => Exit::Reported((code - 3) / 2),
        (Some(code), _) => Exit::QemuError(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::QemuError(-1),
    }
}

fn decode_status(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    decode_exit(status.code(), status.signal())
}

/// The path of `qemu-system-x86_64`, installing Debian's `qemu-system-x86` with
/// `--no-install-recommends` when it is missing.
///
/// bookworm's QEMU 7.2 conflicts with a newer `qemu-utils` (10.x from backports `Breaks:
/// qemu-system-common (<< 1:8.0)`), which apt then removes; the packages that the installation
/// removes are named before it runs. Nothing in ocirun needs `qemu-img`.
pub(crate) fn ensure_installed(sh: &Shell) -> Result<PathBuf> {
    if let Some(path) = host::find_in_path(BINARY) {
        return Ok(path);
    }
    host::require_root(&format!(
        "{BINARY} is missing and installing {PACKAGE} needs root"
    ))?;
    eprintln!("qemu: {BINARY} not found; installing {PACKAGE} from Debian");
    let path = host::admin_path()?;
    let simulate = || {
        cmd!(sh, "apt-get -s install --no-install-recommends {PACKAGE}")
            .env("PATH", &path)
            .quiet()
            .ignore_stderr()
            .read()
    };
    let plan = match simulate() {
        Ok(plan) => plan,
        Err(_) => {
            cmd!(sh, "apt-get update")
                .env("PATH", &path)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .run()
                .context("apt-get update failed")?;
            simulate().with_context(|| format!("apt-get cannot install {PACKAGE}"))?
        }
    };
    let removed = removed_packages(&plan);
    if !removed.is_empty() {
        eprintln!(
            "qemu: note: installing {PACKAGE} removes {} (it conflicts with bookworm's QEMU \
             7.2; ocirun does not need it)",
            removed.join(", ")
        );
    }
    cmd!(sh, "apt-get install -y --no-install-recommends {PACKAGE}")
        .env("PATH", &path)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .with_context(|| format!("cannot install {PACKAGE}"))?;
    host::find_in_path(BINARY)
        .or_else(|| host::find_admin_tool(BINARY))
        .with_context(|| format!("{PACKAGE} is installed but {BINARY} is not in PATH"))
}

/// The `Remv NAME [VERSION]` lines of `apt-get -s install`.
fn removed_packages(simulation: &str) -> Vec<String> {
    simulation
        .lines()
        .filter_map(|line| line.strip_prefix("Remv "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Fails with the reason when KVM cannot be used here.
///
/// `/dev/kvm` must be readable and writable. A host whose KVM is `kvm_pvm` (nested PVM, as on
/// the machines this project runs on) is refused: QEMU aborts on it with
/// `failed to set MSR 0x10a` for `-cpu host`, and other CPU models are slower than TCG.
pub(crate) fn check_kvm() -> Result<()> {
    if Path::new("/sys/module/kvm_pvm").exists() {
        bail!(
            "--accel kvm does not work here: /dev/kvm is served by kvm_pvm (nested PVM), on \
             which QEMU aborts with `failed to set MSR 0x10a`; use --accel tcg (the default)"
        );
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(drop)
        .context("--accel kvm needs /dev/kvm, which cannot be opened for reading and writing")
}

/// The loops-per-jiffy value for the kernel command line, from the host's `cpu MHz` in
/// `/proc/cpuinfo` (Debian's kernel has HZ=250). It lets the second vCPU skip its delay-loop
/// calibration, which is slow under TCG; it only affects the accuracy of `udelay`.
pub(crate) fn lpj(cpuinfo: &str) -> Option<u64> {
    let mhz: f64 = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("cpu MHz")?.split(':').nth(1))?
        .trim()
        .parse()
        .ok()?;
    (mhz > 0.0 && mhz < 100_000.0).then(|| (mhz * 1_000_000.0 / 250.0).round() as u64)
}

/// One guest to boot.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) qemu: PathBuf,
    pub(crate) kernel: PathBuf,
    pub(crate) initramfs: PathBuf,
    /// The kernel command line.
    pub(crate) append: String,
    pub(crate) accel: Accel,
    /// vCPUs.
    pub(crate) cpus: usize,
    /// Guest memory in MiB.
    pub(crate) memory_mib: u32,
}

impl Machine {
    /// The QEMU command line: `-M pc`, no network, the serial console on stdio, the exit
    /// device, and the host's `/` as the read-only 9p share `hostroot` (with
    /// `multidevs=remap`, so that files of different host filesystems never share an inode).
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.qemu);
        cmd.args(["-nographic", "-no-reboot", "-M", "pc", "-nic", "none"])
            .args(["-m", &format!("{}M", self.memory_mib)])
            .args(["-smp", &self.cpus.to_string()]);
        match self.accel {
            Accel::Tcg => cmd.args([
                "-accel",
                "tcg,thread=multi",
                "-cpu",
                "max,erms=off,fsrm=off",
            ]),
            Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
        };
        cmd.arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initramfs)
            .args(["-append", &self.append])
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
            .args([
                "-fsdev",
                "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
                "-device",
                "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            ]);
        cmd
    }
}

/// How one boot went.
#[derive(Debug)]
pub(crate) struct Boot {
    pub(crate) exit: Exit,
    /// What QEMU wrote on stderr.
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

/// Boots `machine`, calling `on_line` with each console line, and kills it when `timeout`
/// passes or `on_line` breaks (see the module docs).
pub(crate) fn boot(
    machine: &Machine,
    timeout: Duration,
    mut on_line: impl FnMut(&str) -> ControlFlow<()>,
) -> Result<Boot> {
    let mut cmd = machine.command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", machine.qemu.display()))?;
    let stdout = child.stdout.take().context("QEMU's stdout was not piped")?;
    let mut stderr = child.stderr.take().context("QEMU's stderr was not piped")?;
    let (lines_tx, lines) = mpsc::channel::<Vec<u8>>();
    let console = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if lines_tx.send(line.clone()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = Vec::new();
        // Whatever could be read is kept; QEMU's stderr only adds detail to a report.
        let _ = stderr.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });

    let deadline = started + timeout;
    let mut killed = None;
    while killed.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                if on_line(text.trim_end_matches(['\n', '\r'])).is_break() {
                    killed = Some(Exit::Stopped);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => killed = Some(Exit::TimedOut),
        }
    }
    if killed.is_some() {
        if let Err(err) = child.kill() {
            eprintln!("warning: cannot kill QEMU (pid {}): {err}", child.id());
        }
    }
    let status = child.wait().context("cannot wait for QEMU")?;
    // Lines that arrived just before the end still count.
    for bytes in lines.try_iter() {
        let text = String::from_utf8_lossy(&bytes);
        // The boot has ended either way.
        let _ = on_line(text.trim_end_matches(['\n', '\r']));
    }
    if console.join().is_err() {
        bail!("the console reader thread panicked");
    }
    let stderr = errors.join().unwrap_or_default();
    Ok(Boot {
        exit: killed.unwrap_or_else(|| decode_status(status)),
        stderr,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_exit_device_and_qemus_own_statuses() {
        // Verified on this machine: rc 0 -> 3, rc 1 -> 5, rc 5 -> 13.
        assert_eq!(decode_exit(Some(3), None), Exit::Reported(0));
        assert_eq!(decode_exit(Some(5), None), Exit::Reported(1));
        assert_eq!(decode_exit(Some(13), None), Exit::Reported(5));
        assert_eq!(decode_exit(Some(2 * 121 + 1), None), Exit::Reported(120));
        assert_eq!(decode_exit(Some(255), None), Exit::Reported(126));
        assert_eq!(decode_exit(Some(0), None), Exit::NoReport);
        assert_eq!(decode_exit(Some(1), None), Exit::QemuError(1));
        assert_eq!(decode_exit(Some(2), None), Exit::QemuError(2));
        assert_eq!(decode_exit(Some(4), None), Exit::QemuError(4));
        assert_eq!(decode_exit(None, Some(6)), Exit::Signal(6));
        assert_eq!(decode_exit(None, None), Exit::QemuError(-1));
    }

    #[test]
    fn finds_removed_packages_in_a_simulation() {
        let simulation = "NOTE: This is only a simulation!\n\
                          Remv qemu-utils [1:10.0.2+ds-2+deb13u1~bpo12+1]\n\
                          Inst seabios (1.16.2-1 Debian:12.15/oldstable [all])\n\
                          Conf seabios (1.16.2-1 Debian:12.15/oldstable [all])\n";
        assert_eq!(removed_packages(simulation), vec!["qemu-utils"]);
        assert!(removed_packages("Inst a (1)\n").is_empty());
    }

    #[test]
    fn computes_lpj_from_the_cpu_clock() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.152\n";
        assert_eq!(lpj(cpuinfo), Some(10_384_608));
        assert_eq!(lpj("processor\t: 0\n"), None);
        assert_eq!(lpj("cpu MHz\t\t: fast\n"), None);
    }

    #[test]
    fn the_command_line_shares_the_host_root_read_only() {
        let machine = Machine {
            qemu: "qemu-system-x86_64".into(),
            kernel: "/k/vmlinux".into(),
            initramfs: "/k/initramfs.cpio".into(),
            append: "console=ttyS0 e2e.cg=v2".into(),
            accel: Accel::Tcg,
            cpus: 2,
            memory_mib: 2048,
        };
        let args: Vec<String> = machine
            .command()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(
            joined.contains("-accel tcg,thread=multi -cpu max,erms=off,fsrm=off"),
            "{joined}"
        );
        assert!(joined.contains("path=/,security_model=none,readonly=on,multidevs=remap"));
        assert!(joined.contains("-kernel /k/vmlinux -initrd /k/initramfs.cpio"));
        assert!(joined.contains("-append console=ttyS0 e2e.cg=v2"));
        assert!(!joined.contains("kvm"));
    }
}
