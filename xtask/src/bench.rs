//! `cargo xtask bench`: ocirun measured side by side with `runc run` alone on the same input.
//!
//! Every comparison alternates its commands within one run (A B A B ...) so that drift of the
//! machine falls on both alike, and reports the median, minimum and maximum. Rows:
//!
//! 1. latency of `/bin/true`: `ocirun run` against `runc run` on a bundle made from
//!    `ocirun spec` for the same command (the floor), against `runc create`, `runc start` and
//!    `runc delete` on that bundle (the three commands ocirun issues, timed alone), and
//!    `buildah run` / `podman run --rootfs` when asked;
//! 2. output throughput: the container writes N MiB of zeros to stdout, read by
//!    `dd of=/dev/null` on the host, through ocirun's relay, through `ocirun --stdio inherit`
//!    (when ocirun has it), and with `runc run --detach` handing the pipe straight to the
//!    container (the foreground `runc run` copies stdio through pipes of its own);
//! 3. input throughput: N MiB piped into the container's `dd of=/dev/null`;
//! 4. terminal throughput: 256 MiB through `ocirun run -t` under `script`'s pseudo-terminal
//!    (when ocirun has `-t`);
//! 5. ocirun's own peak memory (`VmHWM` of its process, sampled until it exits), for a latency
//!    run and a throughput run;
//! 6. scale: the median latency of the first and last 50 runs of a sequence, and the wall time
//!    of 20 runs started at once.
//!
//! `--runtime NAME|PATH` (default: `$OCIRUN_RUNTIME`, else runc) puts another runtime in
//! runc's place: ocirun runs it (`OCIRUN_RUNTIME`, set for every ocirun row to the runtime's
//! path), and it makes the floor rows, which are named after it.
//!
//! The table goes to stdout in Markdown; the raw figures to `target/bench/results.json`. The
//! Debian packages that the build and the runs need were installed before
//! ([`crate::packages`]); buildah and podman are installed the same way when asked for.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use xshell::{cmd, Shell};

use crate::packages::{self, Package};
use crate::rootfs::{self, Fixture};
use crate::{host, runtimes};

/// What `cargo xtask bench` was asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct BenchOptions {
    /// Fewer repetitions and smaller transfers: under 3 minutes.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Also measure `buildah run` (Debian's buildah, installed if missing).
    #[arg(long)]
    pub(crate) with_buildah: bool,
    /// Also measure `podman run --rootfs` (Debian's podman, installed if missing).
    #[arg(long)]
    pub(crate) with_podman: bool,
    /// An OCI runtime to measure: a name in PATH, or a path; repeat it for several.
    ///
    /// Each gets latency rows of its own: its `run` (the floor) and ocirun running it
    /// (OCIRUN_RUNTIME). The first also makes the floors of the other sections. Default:
    /// $OCIRUN_RUNTIME, else runc. youki, when not installed, is built into
    /// target/runtimes/.
    #[arg(long = "runtime", value_name = "NAME|PATH")]
    pub(crate) runtimes: Vec<OsString>,
}

/// Sizes and counts of one bench run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    latency_pairs: usize,
    transfer_mib: u64,
    transfer_reps: usize,
    terminal_mib: u64,
    sequence: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                latency_pairs: 20,
                transfer_mib: 1024,
                transfer_reps: 2,
                terminal_mib: 64,
                sequence: 200,
            }
        } else {
            Self {
                latency_pairs: 100,
                transfer_mib: 4096,
                transfer_reps: 3,
                terminal_mib: 256,
                sequence: 1000,
            }
        }
    }
}

/// How long a runtime's foreground `run` of `/bin/true` may take before it counts as hung.
const RUN_LIMIT: Duration = Duration::from_secs(10);

/// Set when the bench runs in a mount namespace of its own without the cgroup v2 hierarchy
/// ([`run_without_unified_hierarchy`]).
const OWN_MOUNTS_VAR: &str = "OCIRUN_BENCH_OWN_MOUNTS";

/// How many variables the `--env-file` of the spec row holds.
const ENV_FILE_VARIABLES: usize = 100_000;

/// `RUNTIME --root STATE`.
fn runtime_command(runtime: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(runtime);
    cmd.arg("--root").arg(state);
    cmd
}

/// Whether the host has cgroup v1 controllers and a cgroup v2 hierarchy with controllers at
/// `/sys/fs/cgroup/unified` (a "hybrid" layout, which crun 1.8 refuses).
fn hybrid_cgroups() -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .is_ok_and(|controllers| !controllers.trim().is_empty())
}

/// Runs this task again in a mount namespace of its own (private propagation) in which
/// `/sys/fs/cgroup/unified` is unmounted, and exits with its status: crun then sees cgroup v1
/// alone. Nothing outside the namespace changes.
fn run_without_unified_hierarchy() -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    eprintln!(
        "bench: crun refuses this host's hybrid cgroup layout; running the bench in a mount \
         namespace of its own without /sys/fs/cgroup/unified"
    );
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("umount -l /sys/fs/cgroup/unified && exec \"$@\"")
        .arg("sh")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(OWN_MOUNTS_VAR, "1")
        .status()
        .context("cannot run unshare")?;
    std::process::exit(status.code().unwrap_or(1));
}

/// The distinct values of `items`, in the order they first came.
fn dedup(items: &[String]) -> Vec<String> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(item) {
            seen.push(item.clone());
        }
    }
    seen
}

/// Median, minimum and maximum of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &[f64]) -> Self {
        assert!(!samples.is_empty(), "statistics of no samples");
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Self {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        }
    }
}

/// One line of the table: what was measured, its figures, the unit, and the ratio of its
/// median to the baseline's.
#[derive(Debug, Clone)]
struct Row {
    section: &'static str,
    name: String,
    unit: &'static str,
    stats: Stats,
    ratio: Option<f64>,
}

/// The programs and files a bench run works with.
struct Bench {
    ocirun: PathBuf,
    /// The OCI runtime: runc unless `--runtime` names another.
    runc: PathBuf,
    /// What the rows call the runtime: its file name.
    runtime_name: String,
    /// The other runtimes of `--runtime`, with their names: latency rows of their own.
    others: Vec<(PathBuf, String)>,
    rootfs: PathBuf,
    /// The busybox fixture the rootfs copies come from.
    fixture: PathBuf,
    work: PathBuf,
    has_tty: bool,
    has_stdio_inherit: bool,
    runc_runs: usize,
    /// A foreground `run` that hung and was killed: the runtime's name, each time.
    hangs: Vec<String>,
}

/// Runs the benchmarks and prints the table.
pub(crate) fn run(sh: &Shell, options: BenchOptions) -> Result<()> {
    host::require_root("the benchmarks run real containers")?;
    let mut optional = Vec::new();
    if options.with_buildah {
        optional.push(Package {
            name: "buildah",
            purpose: "`buildah run`, measured with --with-buildah",
        });
    }
    if options.with_podman {
        optional.push(Package {
            name: "podman",
            purpose: "`podman run --rootfs`, measured with --with-podman",
        });
    }
    packages::ensure(sh, "bench", &optional)?;
    let mut wanted = options.runtimes.clone();
    if wanted.is_empty() {
        wanted.extend(host::runtime(None)?);
    }
    let mut found = Vec::new();
    for runtime in wanted {
        let runtime = runtimes::locate(sh, host::runtime(Some(&runtime))?)?
            .context("a runtime named on the command line")?;
        let path = host::find_runtime(&runtime).with_context(|| {
            format!(
                "the runtime {} is neither an executable file nor a program in PATH or the \
                 sbin directories",
                runtime.to_string_lossy()
            )
        })?;
        found.push(path);
    }
    if found.is_empty() {
        found.push(host::find_admin_tool("runc").context("runc not found: apt-get install runc")?);
    }
    let mut notes = Vec::new();
    if found.iter().any(|r| r.file_name() == Some("crun".as_ref())) && hybrid_cgroups() {
        if std::env::var_os(OWN_MOUNTS_VAR).is_none() {
            return run_without_unified_hierarchy();
        }
        notes.push(
            "crun 1.8 refuses this host's cgroup layout (v1 controllers, and a cgroup v2 \
             hierarchy with a controller at /sys/fs/cgroup/unified): the bench ran in a mount \
             namespace of its own without /sys/fs/cgroup/unified, every runtime alike."
                .to_owned(),
        );
    }
    let name_of = |p: &Path| {
        p.file_name().map_or_else(
            || "runtime".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let runc = found.remove(0);
    let runtime_name = name_of(&runc);
    let others: Vec<(PathBuf, String)> = found
        .into_iter()
        .map(|p| {
            let name = name_of(&p);
            (p, name)
        })
        .collect();
    eprintln!("bench: the runtime is {}", runc.display());
    for (other, _) in &others {
        eprintln!("bench: latency also with {}", other.display());
    }
    let cargo = host::cargo();
    cmd!(sh, "{cargo} build --release -p ocirun")
        .run()
        .context("cannot build ocirun")?;
    let ocirun = host::target_dir(sh).join("release").join("ocirun");
    let fixture = rootfs::default_dir(Fixture::Busybox);
    rootfs::ensure(sh, Fixture::Busybox, &fixture)?;

    let work = host::target_dir(sh).join("bench");
    let rootfs = work.join("rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs)
            .with_context(|| format!("cannot remove {}", rootfs.display()))?;
    }
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let status = Command::new("cp")
        .arg("-a")
        .arg(&fixture)
        .arg(&rootfs)
        .status()
        .context("cannot run cp")?;
    ensure!(status.success(), "cp -a {} failed", fixture.display());

    let help = Command::new(&ocirun)
        .args(["run", "--help"])
        .output()
        .context("cannot run ocirun run --help")?;
    let help = String::from_utf8_lossy(&help.stdout);
    let mut bench = Bench {
        ocirun,
        runc,
        runtime_name,
        others,
        rootfs,
        fixture,
        work,
        has_tty: help.contains("--tty"),
        has_stdio_inherit: help.contains("--stdio"),
        runc_runs: 0,
        hangs: Vec::new(),
    };
    let plan = Plan::new(options.quick);
    let mut rows = Vec::new();
    let started = Instant::now();

    eprintln!("==> latency");
    rows.extend(bench.latency(&plan, &options)?);
    eprintln!("==> output throughput");
    rows.extend(bench.output_throughput(&plan)?);
    eprintln!("==> input throughput");
    rows.extend(bench.input_throughput(&plan)?);
    if bench.has_tty {
        eprintln!("==> terminal throughput");
        rows.extend(bench.terminal_throughput(&plan)?);
    } else {
        eprintln!("==> terminal throughput: ocirun has no -t yet; row left out");
    }
    eprintln!("==> peak memory");
    rows.extend(bench.peak_memory(&plan)?);
    eprintln!("==> scale");
    rows.extend(bench.scale(&plan)?);
    eprintln!("==> without root");
    rows.extend(bench.rootless(&plan, &options)?);
    eprintln!("==> spec with a large --env-file");
    rows.extend(bench.env_file()?);

    for name in dedup(&bench.hangs) {
        let times = bench.hangs.iter().filter(|h| **h == name).count();
        notes.push(format!(
            "`{name} run` hung {times} times (a container that exits before it waits for it): \
             killed after {} s and run again.",
            RUN_LIMIT.as_secs()
        ));
    }
    let table = table(&rows, &notes, options.quick, started.elapsed());
    print!("{table}");
    let json = bench.work.join("results.json");
    std::fs::write(&json, results_json(&rows))
        .with_context(|| format!("cannot write {}", json.display()))?;
    eprintln!("raw figures: {}", json.display());
    Ok(())
}

impl Bench {
    fn runroot(&self) -> PathBuf {
        self.work.join("runroot")
    }

    /// `ocirun --runroot RUNROOT run --rootfs ROOTFS EXTRA... -- COMMAND...`, with
    /// `OCIRUN_RUNTIME` naming the bench's runtime.
    fn ocirun_run(&self, extra: &[&str], command: &[&str]) -> Command {
        self.ocirun_run_with(&self.runc, extra, command)
    }

    /// [`Self::ocirun_run`] with `runtime`.
    fn ocirun_run_with(&self, runtime: &Path, extra: &[&str], command: &[&str]) -> Command {
        let mut cmd = Command::new(&self.ocirun);
        cmd.env(host::RUNTIME_VAR, runtime)
            .arg("--runroot")
            .arg(self.runroot())
            .arg("run")
            .arg("--rootfs")
            .arg(&self.rootfs)
            .args(extra)
            .arg("--")
            .args(command);
        cmd
    }

    /// A bundle for `runc run` made from `ocirun spec` for `command`, with the generated files
    /// its mounts name (bundle-relative sources).
    fn runc_bundle(&self, name: &str, command: &[&str]) -> Result<PathBuf> {
        let bundle = self.work.join(format!("bundle-{name}"));
        std::fs::create_dir_all(&bundle)
            .with_context(|| format!("cannot create {}", bundle.display()))?;
        let spec = Command::new(&self.ocirun)
            .arg("spec")
            .arg("--rootfs")
            .arg(&self.rootfs)
            .arg("--")
            .args(command)
            .output()
            .context("cannot run ocirun spec")?;
        ensure!(
            spec.status.success(),
            "ocirun spec failed: {}",
            String::from_utf8_lossy(&spec.stderr)
        );
        std::fs::write(bundle.join("config.json"), &spec.stdout)?;
        // The generated files that the spec's bind mounts name relative to the bundle.
        let config: serde_json::Value =
            serde_json::from_slice(&spec.stdout).context("ocirun spec printed no JSON")?;
        write_generated_files(&bundle, &config)?;
        Ok(bundle)
    }

    /// `runc --root STATE`: runc under the bench's own state directory.
    fn runc(&self) -> Command {
        runtime_command(&self.runc, &self.work.join("runc-state"))
    }

    /// A container id that no earlier runc run of this bench used.
    fn next_id(&mut self) -> String {
        self.runc_runs += 1;
        format!("bench-{}-{}", std::process::id(), self.runc_runs)
    }

    /// The wall time of `RUNTIME --root STATE run --bundle BUNDLE <fresh id>` (in the bundle,
    /// where youki resolves its relative mount sources): the runtime in the foreground, which
    /// copies the container's stdio through pipes of its own. A run that hangs (youki 0.7's
    /// `run` misses the exit of a container that ends before it starts waiting) is killed after
    /// [`RUN_LIMIT`], its container deleted, and it is run again.
    fn time_runtime_run(&mut self, runtime: &Path, bundle: &Path) -> Result<f64> {
        let state = self.work.join("runc-state");
        for _ in 0..5 {
            let id = self.next_id();
            let mut cmd = runtime_command(runtime, &state);
            cmd.arg("run")
                .arg("--bundle")
                .arg(bundle)
                .arg(&id)
                .current_dir(bundle);
            if let Some(ms) = time_limited(cmd, RUN_LIMIT)? {
                return Ok(ms);
            }
            let name = runtime.file_name().unwrap_or_default().to_string_lossy();
            eprintln!("bench: {name} run hung; killed");
            self.hangs.push(name.into_owned());
            let _ = runtime_command(runtime, &state)
                .args(["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        bail!("{} run hung five times in a row", runtime.display())
    }

    /// `runc run --detach --pid-file F`: runc hands its own stdio straight to the container
    /// and returns, the container goes on (the no-relay floor of the throughput rows). Returns
    /// the command, the container id and the pid file.
    fn runc_run_detached(&mut self, bundle: &Path) -> (Command, String, PathBuf) {
        let id = self.next_id();
        let pid_file = self.work.join(format!("{id}.pid"));
        let mut cmd = self.runc();
        cmd.args(["run", "--detach", "--pid-file"])
            .arg(&pid_file)
            .arg("--bundle")
            .arg(bundle)
            .arg(&id)
            .current_dir(bundle);
        (cmd, id, pid_file)
    }

    /// `runc delete --force ID` after a detached run, once its process has exited (polled
    /// here, in the benchmark only: the container is not our child).
    fn runc_finish(&self, id: &str, pid_file: &Path) -> Result<()> {
        wait_gone(pid_file)?;
        let _ = std::fs::remove_file(pid_file);
        let status = self
            .runc()
            .args(["delete", "--force", id])
            .status()
            .context("cannot run runc delete")?;
        ensure!(status.success(), "runc delete {id} failed");
        Ok(())
    }

    /// The wall time, in milliseconds, of `runc create --pid-file F` (stdio on /dev/null),
    /// `runc start`, a wait for the container's process to exit, and `runc delete`: the
    /// commands `ocirun run` issues, without ocirun.
    fn runc_create_start_delete(&mut self, bundle: &Path) -> Result<f64> {
        let id = self.next_id();
        let pid_file = self.work.join(format!("{id}.pid"));
        let mut create = self.runc();
        create
            .arg("create")
            .arg("--pid-file")
            .arg(&pid_file)
            .arg("--bundle")
            .arg(bundle)
            .arg(&id)
            .current_dir(bundle);
        let mut start = self.runc();
        start.args(["start", &id]);
        let mut delete = self.runc();
        delete.args(["delete", &id]);
        let started = Instant::now();
        time_quiet(create)?;
        time_quiet(start)?;
        wait_gone(&pid_file)?;
        time_quiet(delete)?;
        let elapsed = ms(started.elapsed());
        let _ = std::fs::remove_file(&pid_file);
        Ok(elapsed)
    }

    fn latency(&mut self, plan: &Plan, options: &BenchOptions) -> Result<Vec<Row>> {
        let bundle = self.runc_bundle("true", &["/bin/true"])?;
        let mut ocirun = Vec::new();
        let mut runc = Vec::new();
        let mut three = Vec::new();
        let others = self.others.clone();
        let mut other_samples = vec![(Vec::new(), Vec::new()); others.len()];
        for _ in 0..plan.latency_pairs {
            ocirun.push(time_quiet(self.ocirun_run(&[], &["/bin/true"]))?);
            let primary = self.runc.clone();
            runc.push(self.time_runtime_run(&primary, &bundle)?);
            three.push(self.runc_create_start_delete(&bundle)?);
            for ((runtime, _), (floor, with)) in others.iter().zip(&mut other_samples) {
                with.push(time_quiet(self.ocirun_run_with(
                    runtime,
                    &[],
                    &["/bin/true"],
                ))?);
                floor.push(self.time_runtime_run(runtime, &bundle)?);
            }
        }
        let floor = Stats::of(&runc);
        let mut rows = vec![
            row(
                "latency",
                &format!("{} run (floor)", self.runtime_name),
                "ms",
                &runc,
                None,
            ),
            row(
                "latency",
                &format!("ocirun run with {}", self.runtime_name),
                "ms",
                &ocirun,
                Some(floor),
            ),
            row(
                "latency",
                &format!("{} create, start, delete", self.runtime_name),
                "ms",
                &three,
                Some(floor),
            ),
        ];
        for ((_, name), (floor_samples, with)) in others.iter().zip(&other_samples) {
            let other_floor = Stats::of(floor_samples);
            rows.push(row(
                "latency",
                &format!("{name} run (floor)"),
                "ms",
                floor_samples,
                None,
            ));
            rows.push(row(
                "latency",
                &format!("ocirun run with {name}"),
                "ms",
                with,
                Some(other_floor),
            ));
        }
        if options.with_buildah {
            rows.push(self.buildah_latency(plan, floor)?);
        }
        if options.with_podman {
            rows.push(self.podman_latency(plan, floor)?);
        }
        Ok(rows)
    }

    fn buildah_latency(&self, plan: &Plan, floor: Stats) -> Result<Row> {
        let from = Command::new("buildah")
            .args(["from", "scratch"])
            .output()
            .context("cannot run buildah from scratch")?;
        ensure!(from.status.success(), "buildah from scratch failed");
        let container = String::from_utf8_lossy(&from.stdout).trim().to_owned();
        let copy = Command::new("buildah")
            .args(["copy", &container])
            .arg(format!("{}/", self.rootfs.display()))
            .arg("/")
            .output()
            .context("cannot run buildah copy")?;
        ensure!(copy.status.success(), "buildah copy failed");
        let mut samples = Vec::new();
        for _ in 0..plan.latency_pairs.min(20) {
            let mut cmd = Command::new("buildah");
            cmd.args(["run", "--runtime"])
                .arg(&self.runc)
                .args([&container, "--", "/bin/true"]);
            samples.push(time_quiet(cmd)?);
        }
        let _ = Command::new("buildah").args(["rm", &container]).output();
        Ok(row("latency", "buildah run", "ms", &samples, Some(floor)))
    }

    fn podman_latency(&self, plan: &Plan, floor: Stats) -> Result<Row> {
        let mut samples = Vec::new();
        for _ in 0..plan.latency_pairs.min(20) {
            let mut cmd = Command::new("podman");
            cmd.args([
                "run",
                "--rm",
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
                "--rootfs",
            ])
            .arg(&self.rootfs)
            .arg("/bin/true");
            samples.push(time_quiet(cmd)?);
        }
        Ok(row(
            "latency",
            "podman run --rootfs",
            "ms",
            &samples,
            Some(floor),
        ))
    }

    fn output_throughput(&mut self, plan: &Plan) -> Result<Vec<Row>> {
        let count = format!("count={}", plan.transfer_mib);
        let writer = ["dd", "if=/dev/zero", "bs=1M", count.as_str()];
        let bundle = self.runc_bundle("write", &writer)?;
        let bytes = plan.transfer_mib << 20;
        let mut runc = Vec::new();
        let mut relay = Vec::new();
        let mut inherit = Vec::new();
        for _ in 0..plan.transfer_reps {
            let (cmd, id, pid_file) = self.runc_run_detached(&bundle);
            runc.push(throughput_out(cmd, bytes)?);
            self.runc_finish(&id, &pid_file)?;
            relay.push(throughput_out(self.ocirun_run(&[], &writer), bytes)?);
            if self.has_stdio_inherit {
                let cmd = self.ocirun_run(&["--stdio", "inherit"], &writer);
                inherit.push(throughput_out(cmd, bytes)?);
            }
        }
        let floor = Stats::of(&runc);
        let mut rows = vec![
            row(
                "output",
                &format!("{} run, no relay (floor)", self.runtime_name),
                "GB/s",
                &runc,
                None,
            ),
            row("output", "ocirun relay", "GB/s", &relay, Some(floor)),
        ];
        if !inherit.is_empty() {
            rows.push(row(
                "output",
                "ocirun --stdio inherit",
                "GB/s",
                &inherit,
                Some(floor),
            ));
        }
        Ok(rows)
    }

    fn input_throughput(&mut self, plan: &Plan) -> Result<Vec<Row>> {
        let reader = ["dd", "of=/dev/null", "bs=1M"];
        let bundle = self.runc_bundle("read", &reader)?;
        let mut runc = Vec::new();
        let mut relay = Vec::new();
        for _ in 0..plan.transfer_reps {
            let (cmd, id, pid_file) = self.runc_run_detached(&bundle);
            let pid_file_for_wait = pid_file.clone();
            runc.push(throughput_in(cmd, plan.transfer_mib, move || {
                wait_gone(&pid_file_for_wait)
            })?);
            self.runc_finish(&id, &pid_file)?;
            relay.push(throughput_in(
                self.ocirun_run(&[], &reader),
                plan.transfer_mib,
                || Ok(()),
            )?);
        }
        let floor = Stats::of(&runc);
        Ok(vec![
            row(
                "input",
                &format!("{} run, no relay (floor)", self.runtime_name),
                "GB/s",
                &runc,
                None,
            ),
            row("input", "ocirun relay", "GB/s", &relay, Some(floor)),
        ])
    }

    fn terminal_throughput(&self, plan: &Plan) -> Result<Vec<Row>> {
        let count = format!("count={}", plan.terminal_mib);
        let inner = format!(
            "{} --runroot {} run -t --rootfs {} -- dd if=/dev/zero bs=1M {count}",
            self.ocirun.display(),
            self.runroot().display(),
            self.rootfs.display()
        );
        let mut samples = Vec::new();
        for _ in 0..plan.transfer_reps {
            let mut cmd = Command::new("script");
            cmd.args(["-qefc", &inner, "/dev/null"])
                .env(host::RUNTIME_VAR, &self.runc);
            let secs = time_quiet(cmd)? / 1000.0;
            samples.push((plan.terminal_mib << 20) as f64 / secs / 1e9);
        }
        Ok(vec![row(
            "terminal",
            "ocirun -t under a pseudo-terminal",
            "GB/s",
            &samples,
            None,
        )])
    }

    fn peak_memory(&self, plan: &Plan) -> Result<Vec<Row>> {
        let mut latency = Vec::new();
        for _ in 0..5 {
            latency.push(peak_kib(self.ocirun_run(&[], &["/bin/true"]))? as f64 / 1024.0);
        }
        let count = format!("count={}", plan.transfer_mib.min(1024));
        let mut throughput = Vec::new();
        for _ in 0..plan.transfer_reps {
            let cmd = self.ocirun_run(&[], &["dd", "if=/dev/zero", "bs=1M", &count]);
            throughput.push(peak_kib(cmd)? as f64 / 1024.0);
        }
        Ok(vec![
            row(
                "memory",
                "ocirun peak RSS, /bin/true",
                "MiB",
                &latency,
                None,
            ),
            row(
                "memory",
                "ocirun peak RSS, 1 GiB through stdout",
                "MiB",
                &throughput,
                None,
            ),
        ])
    }

    fn scale(&self, plan: &Plan) -> Result<Vec<Row>> {
        let mut sequence = Vec::with_capacity(plan.sequence);
        for _ in 0..plan.sequence {
            sequence.push(time_quiet(self.ocirun_run(&[], &["/bin/true"]))?);
        }
        let first = &sequence[..50];
        let last = &sequence[plan.sequence - 50..];
        let first_stats = Stats::of(first);
        let mut concurrent = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let children: Vec<Child> = (0..20)
                .map(|_| {
                    let mut cmd = self.ocirun_run(&[], &["/bin/true"]);
                    quiet(&mut cmd).spawn().context("cannot start ocirun")
                })
                .collect::<Result<_>>()?;
            for mut child in children {
                let status = child.wait()?;
                ensure!(status.success(), "a concurrent run failed: {status}");
            }
            concurrent.push(ms(started.elapsed()));
        }
        Ok(vec![
            row("scale", "runs 1-50 of a sequence", "ms", first, None),
            row(
                "scale",
                &format!(
                    "runs {}-{} of the sequence",
                    plan.sequence - 49,
                    plan.sequence
                ),
                "ms",
                last,
                Some(first_stats),
            ),
            row(
                "scale",
                "20 runs at once, wall time",
                "ms",
                &concurrent,
                None,
            ),
        ])
    }
}

impl Bench {
    /// Rootless latency: `ocirun run` as the test user of the e2e suite (`ocirun-e2e`, made
    /// with useradd and subordinate ranges of its own when missing), against a rootless
    /// `RUNTIME run` of the same bundle as that user (ocirun's spec as the user prints it, with
    /// a user namespace mapping 0 to the user and 1.. to its subordinate ids, no cgroup
    /// resources and no supplementary groups, which a rootless runc cannot set), and with
    /// `--with-buildah`, a rootless `buildah run`; all on a busybox rootfs whose owners are the
    /// ones that mapping gives.
    fn rootless(&mut self, plan: &Plan, options: &BenchOptions) -> Result<Vec<Row>> {
        let user = ocirun_e2e::test_user();
        let dir = self.work.join("rootless");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let rootfs = dir.join("rootfs");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&self.fixture)
            .arg(&rootfs)
            .status()
            .context("cannot run cp")?;
        ensure!(status.success(), "cp -a {} failed", self.fixture.display());
        walk(&rootfs, &mut |path| ocirun_e2e::user::map_owner(user, path))?;
        chown_tree(&dir, user.uid, user.gid, &rootfs)?;
        let as_user = |cmd: &mut Command| {
            use std::os::unix::process::CommandExt;
            cmd.uid(user.uid)
                .gid(user.gid)
                .env("HOME", &user.home)
                .env("USER", ocirun_e2e::user::NAME)
                .env("LOGNAME", ocirun_e2e::user::NAME)
                .env_remove("XDG_RUNTIME_DIR")
                .env_remove("XDG_DATA_HOME");
        };

        // The bundle: ocirun's spec as the user, in a user namespace of the runtime's own.
        let mut spec = Command::new(&self.ocirun);
        spec.arg("spec")
            .arg("--rootfs")
            .arg(&rootfs)
            .args(["--", "/bin/true"]);
        as_user(&mut spec);
        let spec = spec.output().context("cannot run ocirun spec")?;
        ensure!(
            spec.status.success(),
            "ocirun spec as {} failed: {}",
            ocirun_e2e::user::NAME,
            String::from_utf8_lossy(&spec.stderr)
        );
        let mut config: serde_json::Value =
            serde_json::from_slice(&spec.stdout).context("ocirun spec printed no JSON")?;
        let maps = |id: u32, sub: u32| {
            serde_json::json!([
                {"containerID": 0, "hostID": id, "size": 1},
                {"containerID": 1, "hostID": sub, "size": ocirun_e2e::user::SUBID_COUNT},
            ])
        };
        let linux = &mut config["linux"];
        linux["namespaces"]
            .as_array_mut()
            .context("the spec has no namespaces")?
            .push(serde_json::json!({"type": "user"}));
        linux["uidMappings"] = maps(user.uid, user.subuid);
        linux["gidMappings"] = maps(user.gid, user.subgid);
        if let Some(linux) = linux.as_object_mut() {
            linux.remove("resources");
        }
        if let Some(process_user) = config["process"]["user"].as_object_mut() {
            process_user.remove("additionalGids");
        }
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle)?;
        std::fs::write(bundle.join("config.json"), serde_json::to_vec(&config)?)?;
        write_generated_files(&bundle, &config)?;
        chown_tree(&bundle, user.uid, user.gid, &bundle)?;

        let runroot = dir.join("run");
        let root = dir.join("lib");
        let state = dir.join("runtime-state");
        let mut ocirun = Vec::new();
        let mut floor = Vec::new();
        for i in 0..plan.latency_pairs {
            let mut cmd = Command::new(&self.ocirun);
            cmd.env(host::RUNTIME_VAR, &self.runc)
                .arg("--runroot")
                .arg(&runroot)
                .arg("--root")
                .arg(&root)
                .arg("run")
                .arg("--rootfs")
                .arg(&rootfs)
                .args(["--", "/bin/true"]);
            as_user(&mut cmd);
            ocirun.push(time_quiet(cmd)?);
            let mut cmd = runtime_command(&self.runc, &state);
            cmd.args(["run", "--bundle"])
                .arg(&bundle)
                .arg(format!("bench-rootless-{}-{i}", std::process::id()))
                .current_dir(&bundle);
            as_user(&mut cmd);
            floor.push(
                time_limited(cmd, RUN_LIMIT)?
                    .with_context(|| format!("rootless {} run hung", self.runtime_name))?,
            );
        }
        let floor_stats = Stats::of(&floor);
        let mut rows = vec![
            row(
                "rootless",
                &format!("{} run, rootless (floor)", self.runtime_name),
                "ms",
                &floor,
                None,
            ),
            row(
                "rootless",
                &format!("ocirun run with {}, rootless", self.runtime_name),
                "ms",
                &ocirun,
                Some(floor_stats),
            ),
        ];
        if options.with_buildah {
            rows.push(self.rootless_buildah(plan, &rootfs, &as_user, floor_stats)?);
        }
        Ok(rows)
    }

    /// `buildah run` as the user, of a container made `from scratch` with the rootfs copied in.
    fn rootless_buildah(
        &self,
        plan: &Plan,
        rootfs: &Path,
        as_user: &dyn Fn(&mut Command),
        floor: Stats,
    ) -> Result<Row> {
        let buildah = |args: &[&str]| {
            let mut cmd = Command::new("buildah");
            cmd.args(args).stdin(Stdio::null());
            as_user(&mut cmd);
            cmd
        };
        let from = buildah(&["from", "scratch"])
            .output()
            .context("cannot run buildah from scratch")?;
        ensure!(
            from.status.success(),
            "rootless buildah from scratch failed: {}",
            String::from_utf8_lossy(&from.stderr)
        );
        let container = String::from_utf8_lossy(&from.stdout).trim().to_owned();
        let result = self.rootless_buildah_samples(plan, rootfs, &buildah, &container);
        let _ = buildah(&["rm", &container]).output();
        Ok(row(
            "rootless",
            "buildah run, rootless",
            "ms",
            &result?,
            Some(floor),
        ))
    }

    /// The samples of [`Self::rootless_buildah`] in `container`.
    fn rootless_buildah_samples(
        &self,
        plan: &Plan,
        rootfs: &Path,
        buildah: &dyn Fn(&[&str]) -> Command,
        container: &str,
    ) -> Result<Vec<f64>> {
        let container = container.to_owned();
        let source = format!("{}/", rootfs.display());
        let copy = buildah(&["copy", &container, &source, "/"])
            .output()
            .context("cannot run buildah copy")?;
        ensure!(
            copy.status.success(),
            "rootless buildah copy failed: {}",
            String::from_utf8_lossy(&copy.stderr)
        );
        let runtime = self.runc.to_string_lossy().into_owned();
        let mut samples = Vec::new();
        for _ in 0..plan.latency_pairs.min(20) {
            // The host's network, as ocirun's runs have it (without root, buildah would
            // start slirp4netns for a network namespace of its own).
            let cmd = buildah(&[
                "run",
                "--network",
                "host",
                "--runtime",
                &runtime,
                &container,
                "--",
                "/bin/true",
            ]);
            samples.push(time_quiet(cmd)?);
        }
        Ok(samples)
    }

    /// `ocirun spec --env-file F` of [`ENV_FILE_VARIABLES`] variables (`VAR_N=value N`), its
    /// output thrown away: the spec's environment is merged in time linear in its size.
    fn env_file(&self) -> Result<Vec<Row>> {
        let file = self.work.join("env-file");
        let mut text = String::with_capacity(ENV_FILE_VARIABLES * 24);
        for i in 0..ENV_FILE_VARIABLES {
            let _ = writeln!(text, "VAR_{i}=value {i}");
        }
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
        let mut samples = Vec::new();
        for _ in 0..5 {
            let mut cmd = Command::new(&self.ocirun);
            cmd.arg("spec")
                .arg("--rootfs")
                .arg(&self.rootfs)
                .arg("--env-file")
                .arg(&file)
                .args(["--", "/bin/true"]);
            samples.push(time_quiet(cmd)?);
        }
        Ok(vec![row(
            "spec",
            &format!("ocirun spec --env-file, {ENV_FILE_VARIABLES} variables"),
            "ms",
            &samples,
            None,
        )])
    }
}

/// Calls `f` on `path` and, below a directory (not a symlink to one), on every entry.
fn walk(path: &Path, f: &mut dyn FnMut(&Path)) -> Result<()> {
    f(path);
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if meta.is_dir() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?
        {
            walk(&entry?.path(), f)?;
        }
    }
    Ok(())
}

/// Gives `dir` and everything below it but `except` (and what is below that) to `uid:gid`.
fn chown_tree(dir: &Path, uid: u32, gid: u32, except: &Path) -> Result<()> {
    if dir != except {
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
            .with_context(|| format!("cannot chown {}", dir.display()))?;
    }
    if std::fs::symlink_metadata(dir)?.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path != except {
                chown_tree(&path, uid, gid, except)?;
            }
        }
    }
    Ok(())
}

/// Writes the files that a spec's relative bind-mount sources name into `bundle`.
fn write_generated_files(bundle: &Path, config: &serde_json::Value) -> Result<()> {
    let mounts = config["mounts"].as_array().cloned().unwrap_or_default();
    for mount in mounts {
        let source = mount["source"].as_str().unwrap_or("/");
        if mount["type"] == "bind" && !source.starts_with('/') {
            let content = if source == "hosts" {
                "127.0.0.1\tlocalhost\n"
            } else {
                ""
            };
            std::fs::write(bundle.join(source), content)?;
        }
    }
    Ok(())
}

fn row(
    section: &'static str,
    name: &str,
    unit: &'static str,
    samples: &[f64],
    baseline: Option<Stats>,
) -> Row {
    let stats = Stats::of(samples);
    Row {
        section,
        name: name.to_owned(),
        unit,
        stats,
        ratio: baseline.map(|b| stats.median / b.median),
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn quiet(cmd: &mut Command) -> &mut Command {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

/// Runs `cmd` with its stdio on /dev/null and returns its wall time in milliseconds; fails if
/// it fails.
fn time_quiet(mut cmd: Command) -> Result<f64> {
    let started = Instant::now();
    let status = quiet(&mut cmd)
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let elapsed = ms(started.elapsed());
    ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(elapsed)
}

/// Runs `cmd` with its stdio on /dev/null and returns its wall time in milliseconds, or `None`
/// when it had to be killed after `limit`; fails if it fails.
fn time_limited(mut cmd: Command, limit: Duration) -> Result<Option<f64>> {
    let started = Instant::now();
    let mut child = quiet(&mut cmd)
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let pid = child.id().to_string();
    let (done, wait_done) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let timed_out = matches!(
            wait_done.recv_timeout(limit),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        );
        if timed_out {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        timed_out
    });
    let status = child.wait();
    let elapsed = ms(started.elapsed());
    let _ = done.send(());
    let killed = watchdog.join().unwrap_or(false);
    let status = status.with_context(|| format!("cannot wait for {cmd:?}"))?;
    if killed {
        return Ok(None);
    }
    ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(Some(elapsed))
}

/// Runs `cmd` with its stdout piped into `dd of=/dev/null bs=1M`; returns GB/s for `bytes`.
fn throughput_out(mut cmd: Command, bytes: u64) -> Result<f64> {
    let started = Instant::now();
    let mut writer = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let pipe = writer.stdout.take().context("no stdout pipe")?;
    let reader = Command::new("dd")
        .args(["of=/dev/null", "bs=1M"])
        .stdin(pipe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run dd")?;
    let status = writer.wait()?;
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        status.success() && reader.success(),
        "{cmd:?} | dd failed: {status}"
    );
    Ok(bytes as f64 / secs / 1e9)
}

/// Waits until the process whose pid is in `pid_file` (a detached container's, not our child)
/// has exited: gone from /proc, or a zombie waiting for its reaper. Polls every 100 µs; fails
/// after 120 s.
fn wait_gone(pid_file: &Path) -> Result<()> {
    let pid = std::fs::read_to_string(pid_file)
        .with_context(|| format!("cannot read {}", pid_file.display()))?;
    let stat = PathBuf::from(format!("/proc/{}/stat", pid.trim()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Ok(text) = std::fs::read_to_string(&stat) {
        if has_exited(&text) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "process {} still runs after 120 s",
            pid.trim()
        );
        std::thread::sleep(Duration::from_micros(100));
    }
    Ok(())
}

/// Whether a `/proc/PID/stat` line shows an exited process: state `Z` (zombie) or `X` (dead),
/// the field after the command name in parentheses (proc(5)).
fn has_exited(stat: &str) -> bool {
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some("Z" | "X"))
}

/// Runs `dd if=/dev/zero bs=1M count=MIB | cmd`, then `finished` (which waits for a detached
/// container to be done reading); returns GB/s.
fn throughput_in(mut cmd: Command, mib: u64, finished: impl FnOnce() -> Result<()>) -> Result<f64> {
    let started = Instant::now();
    let mut source = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", &format!("count={mib}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run dd")?;
    let pipe = source.stdout.take().context("no stdout pipe")?;
    let status = cmd
        .stdin(pipe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let fed = source.wait()?;
    finished()?;
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        status.success() && fed.success(),
        "dd | {cmd:?} failed: {status}"
    );
    Ok((mib << 20) as f64 / secs / 1e9)
}

/// Runs `cmd` and samples its `VmHWM` (peak resident set, KiB) every millisecond until it
/// exits; returns the last value read.
fn peak_kib(mut cmd: Command) -> Result<u64> {
    let mut child = quiet(&mut cmd)
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(status) = child.try_wait()? {
            ensure!(status.success(), "{cmd:?} failed: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if peak == 0 {
        bail!("{cmd:?} exited before its memory could be read");
    }
    Ok(peak)
}

fn table(rows: &[Row], notes: &[String], quick: bool, took: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| section | measured | median | min | max | unit | ratio to baseline |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for r in rows {
        let ratio = r
            .ratio
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"));
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {} | {} |",
            r.section, r.name, r.stats.median, r.stats.min, r.stats.max, r.unit, ratio
        );
    }
    let _ = writeln!(
        out,
        "\n{} run, {:.0} s.",
        if quick { "Quick" } else { "Full" },
        took.as_secs_f64()
    );
    for note in notes {
        let _ = writeln!(out, "\n{note}");
    }
    out
}

fn results_json(rows: &[Row]) -> String {
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let ratio = r
            .ratio
            .map_or_else(|| "null".to_owned(), |x| format!("{x:.4}"));
        let _ = write!(
            out,
            "  {{\"section\": \"{}\", \"name\": \"{}\", \"unit\": \"{}\", \"median\": {:.4}, \
             \"min\": {:.4}, \"max\": {:.4}, \"ratio\": {ratio}}}",
            r.section, r.name, r.unit, r.stats.median, r.stats.min, r.stats.max
        );
        out.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exited_processes_are_told_from_running_ones() {
        assert!(has_exited("42 (sh) Z 1 42 42 0 -1"));
        assert!(has_exited("42 (a) b) X 1 42 42 0 -1"));
        assert!(!has_exited("42 (sleep) S 1 42 42 0 -1"));
        assert!(!has_exited("42 (Z) R 1 42 42 0 -1"));
        assert!(!has_exited(""));
    }

    #[test]
    fn a_hung_command_is_killed_and_a_quick_one_timed() {
        let mut sleep = Command::new("sleep");
        sleep.arg("30");
        let started = Instant::now();
        assert_eq!(
            time_limited(sleep, Duration::from_millis(200)).unwrap(),
            None
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        let quick = time_limited(Command::new("true"), Duration::from_secs(10)).unwrap();
        assert!(quick.is_some_and(|ms| ms < 10_000.0));
        assert!(time_limited(Command::new("false"), Duration::from_secs(10)).is_err());
        assert_eq!(
            dedup(&["a".into(), "b".into(), "a".into()]),
            ["a".to_owned(), "b".to_owned()]
        );
    }

    #[test]
    fn stats_of_odd_and_even_samples() {
        assert_eq!(
            Stats::of(&[3.0, 1.0, 2.0]),
            Stats {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }

    #[test]
    fn rows_carry_their_ratio() {
        let base = Stats::of(&[10.0]);
        let r = row("latency", "x", "ms", &[12.0, 13.0, 11.0], Some(base));
        assert_eq!(r.ratio, Some(1.2));
        let t = table(
            std::slice::from_ref(&r),
            &["a note".to_owned()],
            true,
            Duration::from_secs(5),
        );
        assert!(t.contains("| latency | x | 12.00 | 11.00 | 13.00 | ms | 1.20 |"));
        assert!(t.ends_with("Quick run, 5 s.\n\na note\n"));
        assert!(results_json(&[r]).contains("\"ratio\": 1.2000"));
    }
}
