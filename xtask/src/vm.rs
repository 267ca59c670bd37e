//! `cargo xtask vm`: the end-to-end suite inside a throwaway QEMU guest, on cgroup v1 and v2.
//!
//! The privileged suite creates real containers; here it runs in a guest that sees the host's
//! `/` read-only, so it cannot change the machine, and on the cgroup version asked for,
//! whatever the host has. Steps, stopping at the first failure (the Debian packages that the
//! build and the tests need were installed before, [`crate::packages`]):
//!
//! 1. check root and the runtime (runc, or the one `--runtime` names; youki is built when
//!    missing, [`crate::runtimes`]), and that the workspace and target
//!    directory are visible in the guest ([`guest::check_visible`]); with `--accel kvm`, that
//!    KVM works ([`qemu::check_kvm`]);
//! 2. build (or find cached) the fixtures, as `cargo xtask e2e` does, and ocirun's release
//!    build ([`crate::e2e::prepare`], [`crate::e2e::Build::Release`]), and the e2e test
//!    binaries (`cargo test -p ocirun-e2e --no-run`);
//! 3. install QEMU when it is missing ([`qemu::ensure_installed`]);
//! 4. fetch and prepare the kernel ([`kernel::ensure`]) and the initramfs
//!    ([`guest::base_initramfs`]), both cached under `target/vm/`; write this run's plan
//!    ([`guest::Plan`]) into `target/vm/run-PID/initramfs.cpio`;
//! 5. for each cgroup version asked for, one after the other: boot a guest ([`qemu::boot`])
//!    that runs every test binary once, [`LANES`] binaries at a time, the slowest of the last
//!    run first (`target/vm/suite-seconds`), each with `--test-threads` = [`THREADS`] unless
//!    the harness arguments say otherwise; show each test's result as it arrives; write the
//!    whole console to `target/vm/console-CG.log`;
//! 6. a guest that passes `--timeout`, or whose kernel reports a CPU stuck for
//!    [`STUCK_SECS`] (a soft lockup), is killed, and one that stops without reporting (a
//!    kernel panic) counted as failed; each is retried once, saying so, and reported with its
//!    last console lines when the retry fails too;
//! 7. print the failed tests with their output, one `cgroup vN: N passed, M failed` line per
//!    guest, and fail unless every test passed in every guest.
//!
//! The guest is made to look like the host where the tests care: the host's NOFILE and NPROC
//! limits, and AppArmor off unless the host has it on (Debian's kernel turns it on). Where the
//! tests do not care, it is made cheap to emulate: no ASLR, no ERMS or FSRM, no zeroing of
//! every allocated page, no transparent huge pages (see the kernel command line in [`run`]
//! and [`qemu::Accel::Tcg`]), and the busybox fixture, which every test copies, read from the
//! guest's memory instead of through 9p ([`guest::Plan::local`]).
//!
//! The options ([`Options`]) are parsed by clap with the rest of xtask's command line.
//! `--fault hang|panic|lockup` boots a guest whose `/init` sleeps forever, exits at once, or
//! prints the kernel's soft-lockup report and sleeps, to check steps 6 and 7 themselves. `OCIRUN_E2E_*` variables (such as `OCIRUN_E2E_FLIP=1`, which
//! makes one test fail on purpose) and `RUST_BACKTRACE` are passed on to the tests, and so is
//! `OCIRUN_RUNTIME` when `--runtime` (or the caller's `OCIRUN_RUNTIME`) names a runtime
//! ([`host::runtime`]).

mod console;
mod cpio;
mod guest;
mod kernel;
mod modinfo;
mod qemu;

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use self::console::{Event, Outcome, Report};
use self::guest::{Plan, Suite};
use self::qemu::{Accel, Exit, Machine};
use crate::host;
use crate::tally::Tally;

/// The default of `--timeout`: how long one guest may take, boot to power-off. Several times
/// what the whole suite takes in a guest under TCG, so that only a guest that is stuck
/// reaches it.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(900);
/// vCPUs of each guest: the cores of the machines this runs on.
const CPUS: usize = 2;
/// Test binaries that run at the same time in a guest. More lanes keep the vCPUs busier but
/// do not finish sooner: the guest spends more CPU time on the same tests, and the extra load
/// pushes the tests that allow a container 1 to 10 s to start over their limits.
const LANES: usize = 1;
/// `--test-threads` of each test binary in the guest: one more than the vCPUs, so that a test
/// waiting for a container to start or a signal to arrive leaves no vCPU idle; more threads
/// only add load.
const THREADS: usize = 3;
/// A guest whose kernel reports a CPU stuck for this long (a soft lockup, in seconds) is
/// killed as hung and retried, without waiting for `--timeout`: under TCG such a guest does
/// not recover. 20 s is the kernel's first report (twice its `watchdog_thresh` of 10 s),
/// which carries every CPU's stack (see the command line in [`run`]); waiting for later
/// reports only delays the retry.
const STUCK_SECS: u64 = 20;
/// Memory of each guest, in MiB.
const MEMORY_MIB: u32 = 2048;
/// How many console lines a hang or a broken guest is reported with.
const LAST_LINES: usize = 25;

/// A cgroup version the guest sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cgroup {
    V1,
    V2,
}

impl Cgroup {
    fn name(self) -> &'static str {
        match self {
            Cgroup::V1 => "v1",
            Cgroup::V2 => "v2",
        }
    }
}

/// The cgroup versions that `--cgroup` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Cgroups {
    /// A guest with cgroup v1.
    V1,
    /// A guest with cgroup v2.
    V2,
    /// A guest with cgroup v1, then one with cgroup v2.
    Both,
}

impl Cgroups {
    /// The versions, in the order the guests boot.
    pub(crate) fn versions(self) -> Vec<Cgroup> {
        match self {
            Cgroups::V1 => vec![Cgroup::V1],
            Cgroups::V2 => vec![Cgroup::V2],
            Cgroups::Both => vec![Cgroup::V1, Cgroup::V2],
        }
    }
}

/// A broken guest, for checking how the runner handles one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Fault {
    /// `/init` sleeps forever: the guest never reports.
    Hang,
    /// `/init` exits: the kernel panics and the guest stops without reporting.
    Panic,
    /// `/init` prints the kernel's soft-lockup report and sleeps.
    Lockup,
}

/// The options of `cargo xtask vm`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct Options {
    /// The cgroup versions to boot a guest for, one after the other.
    #[arg(long = "cgroup", value_name = "VERSION", value_enum, default_value_t = Cgroups::Both)]
    pub(crate) cgroups: Cgroups,

    /// How QEMU runs the guest's CPUs: its emulator, or KVM where KVM works.
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    pub(crate) accel: Accel,

    /// How long one guest may take, boot to power-off.
    ///
    /// A guest that takes longer is killed and booted once more.
    #[arg(
        long = "timeout",
        value_name = "SECS",
        default_value_t = DEFAULT_TIMEOUT.as_secs(),
        value_parser = parse_timeout
    )]
    pub(crate) timeout_secs: u64,

    /// Boot a broken guest instead of the suite, to check how the runner reports it.
    #[arg(long, value_enum)]
    pub(crate) fault: Option<Fault>,

    /// The OCI runtime for ocirun in the tests: a name in PATH, or a path.
    ///
    /// Passed into the guest as OCIRUN_RUNTIME. Default: $OCIRUN_RUNTIME, else runc.
    #[arg(long, value_name = "NAME|PATH")]
    pub(crate) runtime: Option<OsString>,

    /// Arguments for every test binary (filters, `--exact`, `--skip NAME`), after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub(crate) test_args: Vec<OsString>,
}

/// A `--timeout` value: whole seconds, more than 0.
fn parse_timeout(text: &str) -> Result<u64, String> {
    match text.parse() {
        Ok(0) | Err(_) => Err("expected a number of seconds above 0".to_owned()),
        Ok(secs) => Ok(secs),
    }
}

impl Options {
    /// `--timeout` as a duration.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

impl Default for Options {
    /// The options of a bare `cargo xtask vm`.
    fn default() -> Self {
        Options {
            cgroups: Cgroups::Both,
            accel: Accel::Tcg,
            timeout_secs: DEFAULT_TIMEOUT.as_secs(),
            fault: None,
            runtime: None,
            test_args: Vec::new(),
        }
    }
}

/// What one guest (after its retry, if any) gave.
#[derive(Debug)]
struct GuestResult {
    passed: u64,
    failed: u64,
    /// How long each suite ran, in seconds.
    suite_seconds: Vec<(String, f64)>,
    /// Why the guest failed, when it did (failed tests, a hang, a broken guest).
    problem: Option<String>,
}

/// Runs the task; `tally` gets every guest's test counts.
pub(crate) fn run(sh: &Shell, options: &Options, tally: &mut Tally) -> Result<()> {
    let started = std::time::Instant::now();
    let runtime = crate::runtimes::locate(sh, host::runtime(options.runtime.as_deref())?)?;
    crate::e2e::preflight(runtime.as_deref()).context("cargo xtask vm runs the e2e suite")?;
    guest::check_visible("the workspace", &host::workspace_root())?;
    let target = host::target_dir(sh);
    guest::check_visible("the target directory", &target)?;
    if options.accel == Accel::Kvm {
        qemu::check_kvm()?;
    }

    let env = crate::e2e::prepare(sh, crate::e2e::Build::Release)?;
    let suites = build_test_binaries(sh)?;
    let qemu = qemu::ensure_installed(sh)?;
    let cache = target.join("vm");
    let kernel = kernel::ensure(sh, &cache)?;
    let base = guest::base_initramfs(sh, &kernel, &cache)?;

    let mut plan_env: Vec<(String, OsString)> = env
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone().into_os_string()))
        .collect();
    for (key, value) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if (key.starts_with("OCIRUN_E2E_") && key != "OCIRUN_E2E_CGROUP") || key == "RUST_BACKTRACE"
        {
            eprintln!("vm: passing {key}={} to the tests", value.to_string_lossy());
            plan_env.push((key.to_owned(), value));
        }
    }
    if let Some(runtime) = runtime {
        let key = host::RUNTIME_VAR;
        eprintln!(
            "vm: passing {key}={} to the tests",
            runtime.to_string_lossy()
        );
        plan_env.push((key.to_owned(), runtime));
    }
    let mut args = Vec::new();
    if !options
        .test_args
        .iter()
        .any(|arg| arg.to_string_lossy().starts_with("--test-threads"))
    {
        args.push(OsString::from(format!("--test-threads={THREADS}")));
    }
    args.extend(options.test_args.iter().cloned());
    let times_file = cache.join("suite-seconds");
    let mut times = read_suite_times(&times_file);
    let suites = order_by_time(suites, &times);
    let limits = std::fs::read_to_string("/proc/self/limits")
        .map(|text| guest::parse_limits(&text))
        .context("cannot read /proc/self/limits")?;
    let plan = Plan {
        env: plan_env,
        cwd: host::workspace_root().join("tests"),
        suites,
        args,
        lanes: LANES,
        limits,
        keep: guest::kept_below_tmp(&[&host::workspace_root(), &target]),
        local: vec![crate::e2e::BUSYBOX_ROOTFS_VAR.to_owned()],
    };

    let run_dir = cache.join(format!("run-{}", std::process::id()));
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let initramfs = run_dir.join("initramfs.cpio");
    guest::write_initramfs(&base, &plan, &initramfs)?;

    let lpj = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| qemu::lpj(&info));
    let mut outcomes = Vec::new();
    let mut result = Ok(());
    for cgroup in options.cgroups.versions() {
        // panic=-1 with -no-reboot: a kernel panic ends QEMU (status 0). loglevel=5 (`quiet`
        // shows one level less) and softlockup_all_cpu_backtrace=1: a soft lockup report
        // comes with the stuck CPU's registers and stack and every other CPU's stack, kept in
        // the console log. tsc=reliable: QEMU's TSC follows the host clock on every vCPU, but
        // the kernel would mark it unstable and read the emulated HPET instead, a device
        // access for every clock read.
        // mitigations=off: this throwaway guest runs only the suite. norandmaps: TCG reuses
        // the code it translated only at the same virtual address, and with ASLR every exec
        // of runc, ocirun or a test binary (each a PIE or linked to shared libraries) lands
        // elsewhere and is translated again. init_on_alloc=0 and transparent_hugepage=never undo
        // two defaults of Debian's kernel that make the guest zero memory nobody reads: every
        // allocated page, and a whole 2 MiB page for a touch of a large anonymous mapping.
        let mut append = format!(
            "console=ttyS0 panic=-1 loglevel=5 softlockup_all_cpu_backtrace=1 tsc=reliable \
             mitigations=off norandmaps init_on_alloc=0 transparent_hugepage=never e2e.cg={}",
            cgroup.name()
        );
        // Debian's kernel enables AppArmor; the guest has it only when the host does.
        if !host_has_apparmor() {
            append.push_str(" apparmor=0");
        }
        if let Some(lpj) = lpj {
            append.push_str(&format!(" lpj={lpj}"));
        }
        match options.fault {
            Some(Fault::Hang) => append.push_str(" e2e.fault=hang"),
            Some(Fault::Panic) => append.push_str(" e2e.fault=panic"),
            Some(Fault::Lockup) => append.push_str(&format!(" e2e.fault=lockup:{STUCK_SECS}")),
            None => {}
        }
        let machine = Machine {
            qemu: qemu.clone(),
            kernel: kernel.image.clone(),
            initramfs: initramfs.clone(),
            append,
            accel: options.accel,
            cpus: CPUS,
            memory_mib: MEMORY_MIB,
        };
        let log = cache.join(format!("console-{}.log", cgroup.name()));
        match run_guest(cgroup, &machine, options.timeout(), &log) {
            Ok(outcome) => {
                // A filtered run says nothing about how long a whole suite takes.
                if options.test_args.is_empty() {
                    for (suite, secs) in &outcome.suite_seconds {
                        times.insert(suite.clone(), *secs);
                    }
                }
                tally.passed += outcome.passed;
                tally.failed += outcome.failed;
                outcomes.push((cgroup, outcome));
            }
            Err(err) => {
                result = Err(err);
                break;
            }
        }
    }
    if let Err(err) = std::fs::remove_dir_all(&run_dir) {
        eprintln!("warning: cannot remove {}: {err}", run_dir.display());
    }
    write_suite_times(&times_file, &times);
    eprintln!(
        "vm: {:.1} s in all (builds, kernel, initramfs and guests)",
        started.elapsed().as_secs_f64()
    );
    result?;

    let mut problems = Vec::new();
    for (cgroup, outcome) in &outcomes {
        println!(
            "cgroup {}: {} passed, {} failed",
            cgroup.name(),
            outcome.passed,
            outcome.failed
        );
        if let Some(problem) = &outcome.problem {
            problems.push(format!("cgroup {}: {problem}", cgroup.name()));
        } else if outcome.passed == 0 {
            eprintln!(
                "warning: no test ran in the cgroup {} guest: does the filter match a test?",
                cgroup.name()
            );
        }
    }
    if !problems.is_empty() {
        bail!(
            "the e2e suite failed in the guest:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// Whether the host runs with AppArmor enabled.
fn host_has_apparmor() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// Seconds each suite took in the last guest that ran it, from `file` (`NAME SECONDS` lines);
/// empty when there is no such file.
fn read_suite_times(file: &Path) -> BTreeMap<String, f64> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (name, secs) = line.split_once(' ')?;
            Some((name.to_owned(), secs.trim().parse().ok()?))
        })
        .collect()
}

/// Writes the suite times back; a failure only costs the ordering of the next run.
fn write_suite_times(file: &Path, times: &BTreeMap<String, f64>) {
    let text: String = times
        .iter()
        .map(|(name, secs)| format!("{name} {secs:.1}\n"))
        .collect();
    if let Err(err) = std::fs::write(file, text) {
        eprintln!("warning: cannot write {}: {err}", file.display());
    }
}

/// The suites, slowest first (by `times`; suites without a time first of all, by name), so
/// that the lanes end at about the same time.
fn order_by_time(mut suites: Vec<Suite>, times: &BTreeMap<String, f64>) -> Vec<Suite> {
    suites.sort_by(|a, b| {
        let time = |s: &Suite| times.get(&s.name).copied().unwrap_or(f64::INFINITY);
        time(b)
            .total_cmp(&time(a))
            .then_with(|| a.name.cmp(&b.name))
    });
    suites
}

/// `cargo test -p ocirun-e2e --no-run`: builds the test binaries and returns them.
fn build_test_binaries(sh: &Shell) -> Result<Vec<Suite>> {
    let cargo = host::cargo();
    let json = cmd!(
        sh,
        "{cargo} test -p ocirun-e2e --no-run --message-format=json-render-diagnostics"
    )
    .read()
    .context("cannot build the e2e test binaries")?;
    let suites = parse_test_artifacts(&json)?;
    if suites.is_empty() {
        bail!("cargo test -p ocirun-e2e --no-run reported no test executable");
    }
    Ok(suites)
}

/// The test executables in cargo's JSON messages (`compiler-artifact` with a test profile and
/// an `executable`), sorted by name.
fn parse_test_artifacts(json: &str) -> Result<Vec<Suite>> {
    let mut suites = Vec::new();
    for line in json.lines().filter(|l| l.starts_with('{')) {
        let message: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("cannot parse cargo's message {line}"))?;
        if message["reason"] != "compiler-artifact" || message["profile"]["test"] != true {
            continue;
        }
        let (Some(name), Some(executable)) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) else {
            continue;
        };
        suites.push(Suite {
            name: name.to_owned(),
            executable: PathBuf::from(executable),
        });
    }
    suites.sort_by(|a, b| a.name.cmp(&b.name));
    suites.dedup();
    Ok(suites)
}

/// How one boot ended, as far as the runner is concerned.
enum Attempt {
    /// The guest reported its status.
    Finished(i32),
    /// No report before the timeout.
    Hang,
    /// The kernel reported a soft lockup of this many seconds.
    Stuck(u64),
    /// Stopped without a report.
    NoReport,
}

/// Boots one guest, and once more if it hangs or stops without reporting.
fn run_guest(
    cgroup: Cgroup,
    machine: &Machine,
    timeout: Duration,
    log: &Path,
) -> Result<GuestResult> {
    let tag = format!("[{}]", cgroup.name());
    let mut log_file =
        File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    for attempt in 1..=2 {
        eprintln!(
            "==> vm: cgroup {}, attempt {attempt} of 2 (timeout {} s, console in {})",
            cgroup.name(),
            timeout.as_secs(),
            log.display()
        );
        writeln!(log_file, "=== attempt {attempt}").context("cannot write the console log")?;
        let mut report = Report::default();
        let mut last = VecDeque::with_capacity(LAST_LINES);
        let mut log_error = None;
        let mut stuck = None;
        let boot = qemu::boot(machine, timeout, |line| {
            if let Err(err) = writeln!(log_file, "{line}") {
                log_error.get_or_insert(err);
            }
            if last.len() == LAST_LINES {
                last.pop_front();
            }
            last.push_back(console::printable(line));
            match report.feed(line) {
                Some(Event::Mark(text)) => eprintln!("{tag} {text}"),
                Some(Event::Error(text)) => eprintln!("{tag} guest error: {text}"),
                Some(Event::Test { name, outcome }) => {
                    let word = match outcome {
                        Outcome::Passed => "ok",
                        Outcome::Failed => "FAILED",
                        Outcome::Ignored => "ignored",
                    };
                    println!("{tag} test {name} ... {word}");
                }
                _ => {}
            }
            match console::soft_lockup_secs(line) {
                Some(secs) if secs >= STUCK_SECS => {
                    stuck = Some(secs);
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        })?;
        if let Some(err) = log_error {
            eprintln!("warning: cannot write {}: {err}", log.display());
        }
        let last_lines = || {
            last.iter()
                .map(|l| format!("    | {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let attempt_result = match boot.exit {
            Exit::Reported(rc) => {
                if report.result.is_some_and(|console| console != rc) {
                    eprintln!(
                        "{tag} warning: the console said rc={:?} but the exit device {rc}",
                        report.result
                    );
                }
                Attempt::Finished(rc)
            }
            Exit::NoReport => match report.result {
                Some(rc) => {
                    eprintln!("{tag} warning: the exit device was not written; using the console's rc={rc}");
                    Attempt::Finished(rc)
                }
                // QEMU also exits 0 when something else sends it SIGTERM or SIGINT.
                None if boot.stderr.contains("terminating on signal") => bail!(
                    "QEMU was stopped from outside after {:.1} s: {}",
                    boot.elapsed.as_secs_f64(),
                    boot.stderr.trim_end()
                ),
                None => Attempt::NoReport,
            },
            Exit::TimedOut => Attempt::Hang,
            Exit::Stopped => Attempt::Stuck(stuck.unwrap_or(STUCK_SECS)),
            Exit::QemuError(code) => {
                let hint = if machine.accel == Accel::Kvm {
                    "; KVM does not work here: use --accel tcg (the default)"
                } else {
                    ""
                };
                bail!(
                    "QEMU failed (exit status {code}) after {:.1} s{hint}\nQEMU said:\n{}\nlast console lines:\n{}",
                    boot.elapsed.as_secs_f64(),
                    boot.stderr.trim_end(),
                    last_lines()
                );
            }
            Exit::Signal(signal) => bail!(
                "QEMU was killed by signal {signal} after {:.1} s{}\nQEMU said:\n{}",
                boot.elapsed.as_secs_f64(),
                if machine.accel == Accel::Kvm {
                    "; KVM does not work here: use --accel tcg (the default)"
                } else {
                    ""
                },
                boot.stderr.trim_end()
            ),
        };
        let why = match attempt_result {
            Attempt::Finished(rc) => {
                eprintln!(
                    "{tag} guest finished with rc={rc} in {:.1} s",
                    boot.elapsed.as_secs_f64()
                );
                return Ok(finished(&tag, rc, &report, &last_lines()));
            }
            Attempt::Hang => format!(
                "the guest hung: no report within the timeout of {} s, killed",
                timeout.as_secs()
            ),
            Attempt::Stuck(secs) => format!(
                "the guest hung: its kernel reported a CPU stuck for {secs} s (a soft lockup), killed"
            ),
            Attempt::NoReport => format!(
                "the guest stopped without reporting after {:.1} s (a kernel panic?)",
                boot.elapsed.as_secs_f64()
            ),
        };
        if attempt == 1 {
            eprintln!("{tag} {why}; retrying once");
            continue;
        }
        eprintln!("{tag} {why}, again on the retry");
        return Ok(GuestResult {
            passed: report.count(Outcome::Passed),
            failed: report.count(Outcome::Failed),
            suite_seconds: Vec::new(),
            problem: Some(format!(
                "{why} (twice); last console lines:\n{}",
                last_lines()
            )),
        });
    }
    unreachable!("the loop returns on its second attempt")
}

/// The outcome of a guest that reported `rc`, printing failed tests with their output.
fn finished(tag: &str, rc: i32, report: &Report, last_lines: &str) -> GuestResult {
    let passed = report.count(Outcome::Passed);
    let failed = report.count(Outcome::Failed);
    let failures = report.failures();
    for failure in &failures {
        println!("\n{tag} FAILED {}:", failure.name);
        for line in &failure.output {
            println!("    {line}");
        }
    }
    let broken = report.broken_suites();
    for (suite, status, lines) in &broken {
        println!("\n{tag} test binary {suite} exited with status {status}; its last lines:");
        for line in lines {
            println!("    {line}");
        }
    }
    let problem =
        match rc {
            0 if failed == 0 && broken.is_empty() => None,
            0 => Some("the guest reported success, but some tests failed".to_owned()),
            1 => {
                let mut names: Vec<String> = failures.into_iter().map(|f| f.name).collect();
                names.extend(broken.into_iter().map(|(suite, status, _)| {
                    format!("{suite} (test binary exited with {status})")
                }));
                Some(format!("failed: {}", names.join(", ")))
            }
            rc => Some(format!(
                "the guest could not run the tests (rc={rc}{}); last console lines:\n{last_lines}",
                if report.errors.is_empty() {
                    String::new()
                } else {
                    format!(": {}", report.errors.join("; "))
                }
            )),
        };
    GuestResult {
        passed,
        failed,
        suite_seconds: report
            .suites
            .iter()
            .filter_map(|(suite, _, secs)| Some((suite.clone(), (*secs)?)))
            .collect(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo xtask vm`'s options alone.
    #[derive(Debug, clap::Parser)]
    struct Vm {
        #[command(flatten)]
        options: Options,
    }

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        use clap::Parser;
        Vm::try_parse_from(std::iter::once("vm").chain(args.iter().copied())).map(|vm| vm.options)
    }

    #[test]
    fn parses_the_options() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let options = parse(&[
            "--cgroup",
            "v1",
            "--accel=kvm",
            "--timeout",
            "30",
            "--fault",
            "hang",
            "--runtime",
            "/opt/crun",
            "--",
            "mem",
            "--exact",
        ])
        .unwrap();
        assert_eq!(
            options,
            Options {
                cgroups: Cgroups::V1,
                accel: Accel::Kvm,
                timeout_secs: 30,
                fault: Some(Fault::Hang),
                runtime: Some("/opt/crun".into()),
                test_args: vec!["mem".into(), "--exact".into()],
            }
        );
        assert_eq!(options.timeout(), Duration::from_secs(30));
        assert_eq!(options.cgroups.versions(), vec![Cgroup::V1]);
        assert_eq!(
            parse(&["--cgroup=both"]).unwrap().cgroups.versions(),
            vec![Cgroup::V1, Cgroup::V2]
        );
        assert_eq!(
            parse(&["--cgroup", "v2"]).unwrap().cgroups.versions(),
            vec![Cgroup::V2]
        );
        assert_eq!(parse(&[]).unwrap().timeout(), DEFAULT_TIMEOUT);
        assert_eq!(parse(&["--fault=panic"]).unwrap().fault, Some(Fault::Panic));
        assert_eq!(
            parse(&["--fault=lockup"]).unwrap().fault,
            Some(Fault::Lockup)
        );
    }

    #[test]
    fn rejects_bad_options() {
        for args in [
            &["--cgroup"][..],
            &["--cgroup", "v3"],
            &["--accel", "hvf"],
            &["--timeout", "0"],
            &["--timeout", "soon"],
            &["--fault", "oops"],
            &["filter"],
            &["--nocapture"],
            &["--runtime"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn finds_the_test_executables_in_cargos_messages() {
        let json = r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["lib"],"name":"ocirun_e2e"},"profile":{"test":false},"executable":null}
{"reason":"compiler-artifact","package_id":"x","target":{"kind":["test"],"name":"signals"},"profile":{"test":true},"executable":"/w/target/debug/deps/signals-1"}
{"reason":"compiler-artifact","package_id":"x","target":{"kind":["lib"],"name":"ocirun_e2e"},"profile":{"test":true},"executable":"/w/target/debug/deps/ocirun_e2e-2"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            parse_test_artifacts(json).unwrap(),
            vec![
                Suite {
                    name: "ocirun_e2e".into(),
                    executable: "/w/target/debug/deps/ocirun_e2e-2".into()
                },
                Suite {
                    name: "signals".into(),
                    executable: "/w/target/debug/deps/signals-1".into()
                },
            ]
        );
        assert!(parse_test_artifacts("{not json").is_err());
    }

    #[test]
    fn slow_and_new_suites_go_first() {
        let suite = |name: &str| Suite {
            name: name.into(),
            executable: format!("/x/{name}").into(),
        };
        let times: BTreeMap<String, f64> =
            [("fast".to_owned(), 1.0), ("slow".to_owned(), 90.0)].into();
        let ordered = order_by_time(vec![suite("fast"), suite("slow"), suite("new")], &times);
        let names: Vec<&str> = ordered.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["new", "slow", "fast"]);
    }

    #[test]
    fn suite_times_round_trip() {
        let dir = std::env::temp_dir().join(format!("xtask-vm-times-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("suite-seconds");
        assert!(read_suite_times(&file).is_empty());
        let times: BTreeMap<String, f64> = [("a".to_owned(), 1.25), ("b".to_owned(), 30.0)].into();
        write_suite_times(&file, &times);
        assert_eq!(
            read_suite_times(&file),
            [("a".to_owned(), 1.2), ("b".to_owned(), 30.0)].into()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_finished_guest_passes_only_without_failures() {
        let mut report = Report::default();
        report.feed("E2E-TEST a::x ok");
        report.feed("E2E-SUITE a rc=0 secs=2.5");
        let outcome = finished("[v2]", 0, &report, "");
        assert_eq!((outcome.passed, outcome.failed), (1, 0));
        assert_eq!(outcome.suite_seconds, vec![("a".to_owned(), 2.5)]);
        assert!(outcome.problem.is_none());

        report.feed("E2E-TEST b::y FAILED");
        report.feed("E2E-SUITE b rc=101");
        let outcome = finished("[v2]", 1, &report, "");
        assert_eq!((outcome.passed, outcome.failed), (1, 1));
        assert_eq!(outcome.problem.as_deref(), Some("failed: b::y"));

        let outcome = finished("[v2]", 121, &Report::default(), "    | x");
        assert!(outcome.problem.unwrap().contains("rc=121"));
    }
}
