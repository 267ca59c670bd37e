//! The guest's serial console, as the host reads it.
//!
//! The guest's scripts ([`super::guest`]) write plain lines to the console (`ttyS0`, which QEMU's
//! `-nographic` connects to its stdout). A line means something to the host when it holds one of
//! these markers; the marker is looked for anywhere in the line, not only at its start, because
//! the firmware does not end its last line (`Booting from ROM..<ESC>c<ESC>[2JE2E-MARK init`):
//!
//! | line | meaning |
//! |---|---|
//! | `E2E-MARK TEXT` | progress (`init uptime=1.9`, `cgroup v2`, `suite exit_codes ...`) |
//! | `E2E-OUT SUITE LINE` | one line of the output of test binary SUITE (stdout and stderr) |
//! | `E2E-TEST SUITE::TEST ok\|FAILED\|ignored` | one test's result |
//! | `E2E-SUITE SUITE rc=N secs=S` | test binary SUITE exited with status N after S seconds |
//! | `E2E-ERROR TEXT` | the guest could not set itself up (followed by `E2E-RESULT`) |
//! | `E2E-RESULT rc=N ...` | the overall result, 0 when every suite passed; the last line |
//!
//! Everything else (kernel messages, firmware noise) is kept only for the log and for the
//! "last console lines" of a report, but for one kernel message: a soft lockup
//! ([`soft_lockup_secs`]), which under TCG has meant a guest that never recovers. A [`Report`]
//! collects the events of one boot.

use std::collections::BTreeMap;

/// The result of one test, as libtest printed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `ok`.
    Passed,
    /// `FAILED`.
    Failed,
    /// `ignored`.
    Ignored,
}

/// One meaningful console line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event<'a> {
    /// `E2E-MARK TEXT`.
    Mark(&'a str),
    /// `E2E-OUT SUITE LINE`; `line` is empty for an empty output line.
    Output { suite: &'a str, line: &'a str },
    /// `E2E-TEST SUITE::TEST OUTCOME`; `name` is `SUITE::TEST`.
    Test { name: &'a str, outcome: Outcome },
    /// `E2E-SUITE SUITE rc=N [secs=S]`.
    SuiteEnd {
        suite: &'a str,
        rc: i32,
        secs: Option<f64>,
    },
    /// `E2E-ERROR TEXT`.
    Error(&'a str),
    /// `E2E-RESULT rc=N ...`.
    Result { rc: i32 },
}

/// The markers, each with the space that follows it.
const MARKERS: [&str; 6] = [
    "E2E-MARK ",
    "E2E-OUT ",
    "E2E-TEST ",
    "E2E-SUITE ",
    "E2E-ERROR ",
    "E2E-RESULT ",
];

/// Parses one console line (without its line end; a trailing `\r` is ignored).
///
/// The first marker in the line decides; a line whose marker is malformed (`E2E-RESULT rc=x`)
/// is no event, so that garbled output can never pass for a result.
pub(crate) fn parse_line(line: &str) -> Option<Event<'_>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (at, marker) = MARKERS
        .iter()
        .filter_map(|marker| line.find(marker).map(|at| (at, *marker)))
        .min_by_key(|(at, _)| *at)?;
    let rest = &line[at + marker.len()..];
    match marker {
        "E2E-MARK " => Some(Event::Mark(rest.trim_end())),
        "E2E-ERROR " => Some(Event::Error(rest.trim_end())),
        "E2E-OUT " => {
            let (suite, line) = rest.split_once(' ').unwrap_or((rest, ""));
            (!suite.is_empty()).then_some(Event::Output { suite, line })
        }
        "E2E-TEST " => {
            let (name, outcome) = rest.trim_end().rsplit_once(' ')?;
            let outcome = match outcome {
                "ok" => Outcome::Passed,
                "FAILED" => Outcome::Failed,
                "ignored" => Outcome::Ignored,
                _ => return None,
            };
            (name.contains("::") && !name.contains(' ')).then_some(Event::Test { name, outcome })
        }
        "E2E-SUITE " => {
            let mut words = rest.split_whitespace();
            let suite = words.next()?;
            let rc = parse_rc(words.next()?)?;
            let secs = words
                .next()
                .and_then(|w| w.strip_prefix("secs="))
                .and_then(|s| s.parse().ok());
            Some(Event::SuiteEnd { suite, rc, secs })
        }
        "E2E-RESULT " => {
            let rc = rest.split_whitespace().next()?;
            Some(Event::Result { rc: parse_rc(rc)? })
        }
        _ => None,
    }
}

/// How long a CPU has been stuck, in seconds, when `line` is the kernel's soft-lockup report
/// (`watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [cp:2201]`, from the kernel's
/// `kernel/watchdog.c`); `None` for any other line.
pub(crate) fn soft_lockup_secs(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once("watchdog: BUG: soft lockup - CPU#")?;
    let (_, rest) = rest.split_once(" stuck for ")?;
    let (secs, _) = rest.split_once("s!")?;
    secs.parse().ok()
}

/// `line` without terminal escape sequences (`ESC [ ... letter`, `ESC c`) and other control
/// characters, for showing console lines in a report.
pub(crate) fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next_if_eq(&'[').is_some() {
                // Parameters and intermediates, then one final byte in @..~.
                while chars.next_if(|c| !('@'..='~').contains(c)).is_some() {}
            }
            chars.next();
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// `rc=N` -> N.
fn parse_rc(word: &str) -> Option<i32> {
    word.strip_prefix("rc=")?.parse().ok()
}

/// A failed test with the output that libtest printed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// `SUITE::TEST`.
    pub(crate) name: String,
    /// libtest's `---- TEST stdout ----` section (the panic message and the captured output),
    /// or the suite's last lines when there is no such section.
    pub(crate) output: Vec<String>,
}

/// Everything one boot said on the console.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Each test's result, in the order reported.
    pub(crate) tests: Vec<(String, Outcome)>,
    /// Each suite's output lines.
    outputs: BTreeMap<String, Vec<String>>,
    /// Each suite's exit status and duration in seconds, in the order reported.
    pub(crate) suites: Vec<(String, i32, Option<f64>)>,
    /// The guest's `E2E-ERROR` lines.
    pub(crate) errors: Vec<String>,
    /// The `E2E-RESULT` status, once seen.
    pub(crate) result: Option<i32>,
}

/// How many of a suite's last output lines stand in for a missing failure section.
const TAIL_LINES: usize = 30;

impl Report {
    /// Records one console line and returns its event, if it is one.
    pub(crate) fn feed<'a>(&mut self, line: &'a str) -> Option<Event<'a>> {
        let event = parse_line(line)?;
        match &event {
            Event::Mark(_) => {}
            Event::Output { suite, line } => self
                .outputs
                .entry((*suite).to_owned())
                .or_default()
                .push((*line).to_owned()),
            Event::Test { name, outcome } => self.tests.push(((*name).to_owned(), *outcome)),
            Event::SuiteEnd { suite, rc, secs } => {
                self.suites.push(((*suite).to_owned(), *rc, *secs));
            }
            Event::Error(text) => self.errors.push((*text).to_owned()),
            Event::Result { rc } => self.result = Some(*rc),
        }
        Some(event)
    }

    /// Tests with the given outcome.
    pub(crate) fn count(&self, outcome: Outcome) -> u64 {
        let n = self.tests.iter().filter(|(_, o)| *o == outcome).count();
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// The failed tests, each with its output.
    pub(crate) fn failures(&self) -> Vec<Failure> {
        self.tests
            .iter()
            .filter(|(_, outcome)| *outcome == Outcome::Failed)
            .map(|(name, _)| {
                let (suite, test) = name.split_once("::").unwrap_or(("", name));
                let lines = self.outputs.get(suite).map(Vec::as_slice).unwrap_or(&[]);
                let output = failure_section(lines, test).unwrap_or_else(|| tail(lines));
                Failure {
                    name: name.clone(),
                    output,
                }
            })
            .collect()
    }

    /// The suites that exited non-zero without a failed test of their own (they crashed, or
    /// could not start): name, status and last output lines.
    pub(crate) fn broken_suites(&self) -> Vec<(String, i32, Vec<String>)> {
        self.suites
            .iter()
            .filter(|(suite, rc, _)| {
                let prefix = format!("{suite}::");
                *rc != 0
                    && !self
                        .tests
                        .iter()
                        .any(|(name, o)| *o == Outcome::Failed && name.starts_with(&prefix))
            })
            .map(|(suite, rc, _)| {
                let lines = self.outputs.get(suite).map(Vec::as_slice).unwrap_or(&[]);
                (suite.clone(), *rc, tail(lines))
            })
            .collect()
    }
}

/// libtest's section for `test` in a suite's output: from `---- TEST stdout ----` up to the
/// next section header or the closing `failures:` list, without trailing blank lines.
fn failure_section(lines: &[String], test: &str) -> Option<Vec<String>> {
    let header = format!("---- {test} stdout ----");
    let start = lines.iter().position(|line| *line == header)?;
    let mut section: Vec<String> = lines[start..]
        .iter()
        .enumerate()
        .take_while(|(i, line)| {
            *i == 0
                || !(line.as_str() == "failures:"
                    || (line.starts_with("---- ") && line.ends_with(" stdout ----")))
        })
        .map(|(_, line)| line.clone())
        .collect();
    while section.last().is_some_and(|line| line.trim().is_empty()) {
        section.pop();
    }
    Some(section)
}

fn tail(lines: &[String]) -> Vec<String> {
    lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_markers_anywhere_in_a_line() {
        assert_eq!(
            parse_line("Booting from ROM..\u{1b}c\u{1b}[?7l\u{1b}[2JE2E-MARK init uptime=1.93"),
            Some(Event::Mark("init uptime=1.93"))
        );
        assert_eq!(
            parse_line("E2E-RESULT rc=0 uptime=80.12\r"),
            Some(Event::Result { rc: 0 })
        );
        assert_eq!(parse_line("[    1.234] random: crng init done"), None);
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn parses_every_kind_of_line() {
        assert_eq!(
            parse_line("E2E-OUT run_basics test echo_prints_hello ... ok"),
            Some(Event::Output {
                suite: "run_basics",
                line: "test echo_prints_hello ... ok"
            })
        );
        assert_eq!(
            parse_line("E2E-OUT run_basics "),
            Some(Event::Output {
                suite: "run_basics",
                line: ""
            })
        );
        assert_eq!(
            parse_line("E2E-TEST run_basics::echo_prints_hello ok"),
            Some(Event::Test {
                name: "run_basics::echo_prints_hello",
                outcome: Outcome::Passed
            })
        );
        assert_eq!(
            parse_line("E2E-TEST cgroup::memory_limit FAILED\r"),
            Some(Event::Test {
                name: "cgroup::memory_limit",
                outcome: Outcome::Failed
            })
        );
        assert_eq!(
            parse_line("E2E-TEST a::b ignored"),
            Some(Event::Test {
                name: "a::b",
                outcome: Outcome::Ignored
            })
        );
        assert_eq!(
            parse_line("E2E-SUITE exit_codes rc=101 secs=12.25"),
            Some(Event::SuiteEnd {
                suite: "exit_codes",
                rc: 101,
                secs: Some(12.25)
            })
        );
        assert_eq!(
            parse_line("E2E-SUITE exit_codes rc=0"),
            Some(Event::SuiteEnd {
                suite: "exit_codes",
                rc: 0,
                secs: None
            })
        );
        assert_eq!(
            parse_line("E2E-ERROR cannot mount the host's / over 9p"),
            Some(Event::Error("cannot mount the host's / over 9p"))
        );
    }

    #[test]
    fn malformed_markers_are_no_events() {
        for line in [
            "E2E-RESULT rc=",
            "E2E-RESULT rc=x",
            "E2E-RESULT 0",
            "E2E-RESULT ",
            "E2E-SUITE exit_codes",
            "E2E-SUITE exit_codes rc=?",
            "E2E-TEST a::b maybe",
            "E2E-TEST nosuite ok",
            "E2E-TEST a::b c::d ok",
            "E2E-OUT ",
            "E2E-RESULTrc=0",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn printable_drops_escape_sequences() {
        assert_eq!(
            printable("\u{1b}c\u{1b}[?7l\u{1b}[2J\u{1b}[0mSeaBIOS (version 1.16.2)\r"),
            "SeaBIOS (version 1.16.2)"
        );
        assert_eq!(printable("a\tb\u{7}c"), "a\tbc");
        assert_eq!(printable("end\u{1b}"), "end");
    }

    #[test]
    fn the_first_marker_decides() {
        // A test that prints a marker of its own cannot fake a result.
        assert_eq!(
            parse_line("E2E-OUT evil E2E-RESULT rc=0"),
            Some(Event::Output {
                suite: "evil",
                line: "E2E-RESULT rc=0"
            })
        );
    }

    fn feed_all(lines: &[&str]) -> Report {
        let mut report = Report::default();
        for line in lines {
            report.feed(line);
        }
        report
    }

    #[test]
    fn collects_results_and_failure_output() {
        let report = feed_all(&[
            "E2E-MARK suite cgroup",
            "E2E-OUT cgroup running 3 tests",
            "E2E-OUT cgroup test memory_limit ... ok",
            "E2E-TEST cgroup::memory_limit ok",
            "E2E-OUT cgroup test version ... FAILED",
            "E2E-TEST cgroup::version FAILED",
            "E2E-OUT cgroup test other ... FAILED",
            "E2E-TEST cgroup::other FAILED",
            "E2E-OUT cgroup ",
            "E2E-OUT cgroup failures:",
            "E2E-OUT cgroup ",
            "E2E-OUT cgroup ---- version stdout ----",
            "E2E-OUT cgroup thread 'version' panicked at tests/tests/cgroup.rs:9:5:",
            "E2E-OUT cgroup assertion `left == right` failed",
            "E2E-OUT cgroup ",
            "E2E-OUT cgroup ---- other stdout ----",
            "E2E-OUT cgroup boom",
            "E2E-OUT cgroup ",
            "E2E-OUT cgroup failures:",
            "E2E-OUT cgroup     version",
            "E2E-SUITE cgroup rc=101",
            "E2E-SUITE exit_codes rc=0",
            "E2E-RESULT rc=1",
        ]);
        assert_eq!(report.count(Outcome::Passed), 1);
        assert_eq!(report.count(Outcome::Failed), 2);
        assert_eq!(report.result, Some(1));
        assert_eq!(
            report.failures(),
            vec![
                Failure {
                    name: "cgroup::version".into(),
                    output: vec![
                        "---- version stdout ----".into(),
                        "thread 'version' panicked at tests/tests/cgroup.rs:9:5:".into(),
                        "assertion `left == right` failed".into(),
                    ],
                },
                Failure {
                    name: "cgroup::other".into(),
                    output: vec!["---- other stdout ----".into(), "boom".into()],
                },
            ]
        );
        assert!(report.broken_suites().is_empty());
    }

    #[test]
    fn a_suite_that_failed_without_a_failed_test_is_broken() {
        let report = feed_all(&[
            "E2E-OUT signals running 1 test",
            "E2E-OUT signals Segmentation fault",
            "E2E-SUITE signals rc=139",
            "E2E-RESULT rc=1",
        ]);
        assert_eq!(
            report.broken_suites(),
            vec![(
                "signals".to_owned(),
                139,
                vec!["running 1 test".to_owned(), "Segmentation fault".to_owned()]
            )]
        );
        assert!(report.failures().is_empty());
    }

    #[test]
    fn a_failure_without_its_section_shows_the_suite_tail() {
        let report = feed_all(&["E2E-OUT s line 1", "E2E-TEST s::t FAILED"]);
        assert_eq!(
            report.failures(),
            vec![Failure {
                name: "s::t".into(),
                output: vec!["line 1".into()],
            }]
        );
    }

    #[test]
    fn reads_how_long_a_soft_lockup_has_lasted() {
        assert_eq!(
            soft_lockup_secs(
                "[   72.737513] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [gc_removes_the_:2196]"
            ),
            Some(22)
        );
        assert_eq!(
            soft_lockup_secs("watchdog: BUG: soft lockup - CPU#1 stuck for 749s! [exe:186]"),
            Some(749)
        );
        assert_eq!(
            soft_lockup_secs("E2E-OUT mounts watchdog: BUG: soft lockup"),
            None
        );
        assert_eq!(
            soft_lockup_secs("rcu: INFO: rcu_preempt self-detected stall on CPU"),
            None
        );
        assert_eq!(
            soft_lockup_secs("watchdog: BUG: soft lockup - CPU#0 stuck for many s! [x:1]"),
            None
        );
    }
}
