//! Counting test results while cargo test runs.
//!
//! CI reads the closing lines of a run; a workspace's last test binary can be one with no tests
//! (`0 passed`), which says nothing about the run. The tasks that run tests therefore pass
//! cargo's output through as it comes, add up every `test result:` line, and end with one
//! plain line `N passed, M failed` over all of them.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use xshell::Cmd;

/// Tests passed and failed so far, over every `test result:` line seen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
}

impl Tally {
    /// Adds the counts of one libtest summary line
    /// (`test result: ok. 3 passed; 0 failed; 0 ignored; ...`); other lines count nothing.
    pub(crate) fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim_start().strip_prefix("test result: ") else {
            return;
        };
        for field in rest.split(';') {
            let mut words = field.split_whitespace().rev();
            let (Some(what), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                _ => {}
            }
        }
    }

    /// Runs `cmd`, copying its stdout through line by line and counting the summary lines;
    /// fails when it exits unsuccessfully.
    pub(crate) fn run(&mut self, cmd: Cmd<'_>) -> Result<()> {
        let shown = cmd.to_string();
        eprintln!("$ {shown}");
        let mut command = Command::from(cmd);
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run `{shown}`"))?;
        let stdout = child
            .stdout
            .take()
            .context("child stdout was not captured")?;
        let mut out = std::io::stdout().lock();
        for line in BufReader::new(stdout).lines() {
            let line = line.context("cannot read the output of cargo test")?;
            self.add_line(&line);
            writeln!(out, "{line}").context("cannot write to stdout")?;
        }
        drop(out);
        let status = child
            .wait()
            .with_context(|| format!("cannot wait for `{shown}`"))?;
        if !status.success() {
            bail!("`{shown}` failed: {status}");
        }
        Ok(())
    }

    /// The closing line: `N passed, M failed`.
    pub(crate) fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_summary_lines_only() {
        let mut tally = Tally::default();
        tally.add_line("test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        tally.add_line(
            "test result: FAILED. 5 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        tally.add_line("test foo ... ok");
        tally.add_line("running 7 tests");
        assert_eq!(
            tally,
            Tally {
                passed: 8,
                failed: 2
            }
        );
        assert_eq!(tally.summary(), "8 passed, 2 failed");
    }
}
