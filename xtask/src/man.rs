//! `cargo xtask man DIR`: the man pages of the `ocirun` binary, generated from its clap
//! definitions with `clap_mangen`.
//!
//! The binary's clap structs live in one file, `crates/cli/src/flags.rs`, which uses nothing
//! but clap and std; it is compiled here as the module [`flags`], so that xtask needs none of
//! ocirun's dependencies (some of which need system libraries). Pages:
//!
//! - `ocirun.1`: the global flags and the list of subcommands;
//! - `ocirun-SUB.1` for every subcommand (`ocirun-run.1`, `ocirun-spec.1`, `ocirun-gc.1`, ...),
//!   with every flag of the subcommand and the global ones, and `ocirun-SUB-SUBSUB.1` for the
//!   subcommands of a subcommand (`ocirun-volume-ls.1`, ...).
//!
//! The version in the pages is the ocirun package's, from `cargo metadata` (the derive would
//! otherwise put xtask's own version there).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use xshell::{cmd, Shell};

use crate::host;

/// The `ocirun` binary's command line, compiled from its own source. Its values are read by
/// ocirun, not here; its docs are help texts, whose notation (`SRC:DST[:OPTS]`) rustdoc
/// would take for links.
#[allow(dead_code, rustdoc::broken_intra_doc_links)]
#[path = "../../crates/cli/src/flags.rs"]
mod flags;

/// Writes the man pages into `dir` (created if missing); returns their paths.
pub(crate) fn run(sh: &Shell, dir: &Path) -> Result<Vec<PathBuf>> {
    let version = ocirun_version(sh)?;
    let pages = generate(dir, &version)?;
    for page in &pages {
        eprintln!("man: wrote {}", page.display());
    }
    Ok(pages)
}

/// Writes `ocirun.1` and one `ocirun-SUB.1` per subcommand into `dir`, naming `version`.
pub(crate) fn generate(dir: &Path, version: &str) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // `ocirun help` is clap's own; building the command gives every subcommand the global
    // flags and its `ocirun-SUB` display name.
    // clap keeps a version it does not own only with its `string` feature, which would make
    // xtask's clap another build than ocirun's; this task runs once and exits.
    let version: &'static str = Box::leak(version.to_owned().into_boxed_str());
    let mut command = flags::Cli::command()
        .version(version)
        .disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    write_pages(command, dir, &mut pages)?;
    Ok(pages)
}

/// Writes the page of `command` and, first, those of its visible subcommands, recursively.
fn write_pages(command: clap::Command, dir: &Path, pages: &mut Vec<PathBuf>) -> Result<()> {
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub.clone(), dir, pages)?;
    }
    let man = clap_mangen::Man::new(command);
    let path = dir.join(man.get_filename());
    man.generate_to(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    pages.push(path);
    Ok(())
}

/// The version of the `ocirun` package, from `cargo metadata --no-deps`.
fn ocirun_version(sh: &Shell) -> Result<String> {
    let cargo = host::cargo();
    let json = cmd!(sh, "{cargo} metadata --no-deps --format-version 1")
        .quiet()
        .read()
        .context("cannot run cargo metadata")?;
    package_version(&json, "ocirun")
}

/// The version of the package `name` in `cargo metadata`'s JSON.
fn package_version(json: &str, name: &str) -> Result<String> {
    let metadata: serde_json::Value =
        serde_json::from_str(json).context("cargo metadata printed no JSON")?;
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|package| package["name"] == name)
        .and_then(|package| package["version"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("cargo metadata names no package {name} with a version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as roff writes it: every `-` escaped.
    fn roff(text: &str) -> String {
        text.replace('-', "\\-")
    }

    /// `ocirun-SUB.1` for every subcommand of `command` whose page name starts with `prefix`,
    /// and the pages of their own subcommands.
    fn page_names(command: &clap::Command, prefix: &str, names: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            let name = format!("{prefix}-{}", sub.get_name());
            names.push(format!("{name}.1"));
            page_names(sub, &name, names);
        }
    }

    #[test]
    fn writes_a_page_per_subcommand_with_every_flag() {
        let dir = std::env::temp_dir().join(format!("xtask-man-{}", std::process::id()));
        let pages = generate(&dir, "9.8.7").unwrap();
        let command = flags::Cli::command();
        let mut names: Vec<String> = vec!["ocirun.1".to_owned()];
        page_names(&command, "ocirun", &mut names);
        for name in [
            "ocirun.1",
            "ocirun-run.1",
            "ocirun-spec.1",
            "ocirun-gc.1",
            "ocirun-volume.1",
            "ocirun-volume-ls.1",
            "ocirun-volume-inspect.1",
            "ocirun-volume-rm.1",
            "ocirun-volume-prune.1",
        ] {
            assert!(names.iter().any(|n| n == name), "{name}");
        }
        let mut written: Vec<String> = pages
            .iter()
            .map(|page| page.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        written.sort();
        names.sort();
        assert_eq!(written, names);

        let top = fs::read_to_string(dir.join("ocirun.1")).unwrap();
        for sub in command.get_subcommands() {
            assert!(
                top.contains(&roff(sub.get_name())),
                "ocirun.1 lacks {}",
                sub.get_name()
            );
        }
        assert!(top.contains("9.8.7"));

        let run = fs::read_to_string(dir.join("ocirun-run.1")).unwrap();
        assert!(run.contains("\\-\\-rootfs"));
        let ls = fs::read_to_string(dir.join("ocirun-volume-ls.1")).unwrap();
        assert!(
            ls.contains("\\-\\-format"),
            "ocirun-volume-ls.1 lacks --format"
        );
        let run_command = command.find_subcommand("run").unwrap();
        let longs: Vec<&str> = run_command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .collect();
        assert!(longs.contains(&"rootfs"), "{longs:?}");
        for long in longs {
            assert!(
                run.contains(&roff(&format!("--{long}"))),
                "ocirun-run.1 lacks --{long}"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_a_packages_version_in_cargo_metadata() {
        let json = r#"{"packages":[{"name":"xtask","version":"0.0.0"},{"name":"ocirun","version":"0.1.0"}]}"#;
        assert_eq!(package_version(json, "ocirun").unwrap(), "0.1.0");
        assert!(package_version(json, "other").is_err());
        assert!(package_version("not json", "ocirun").is_err());
    }
}
