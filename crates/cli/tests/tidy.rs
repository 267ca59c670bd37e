//! Keeps the documentation in step with the binary and with itself:
//!
//! - every flag that `ocirun COMMAND --help` prints is documented in the OPTIONS section of
//!   `docs/ocirun-COMMAND.md`, and every flag documented there is in that help (each page lists
//!   every option its command accepts, the global ones included, so the flags of `ocirun --help`
//!   are on every page); a command with subcommands of its own (`ocirun volume ls`) has the
//!   flags of all of them on its page, and each of them is named there;
//! - every section of `docs/ocirun-*.md` that the source code points at (`docs/ocirun-run.md
//!   "Mounts"`) is a heading of that page;
//! - every relative link of every Markdown file of the workspace leads to an existing file.
//!
//! A documented option is a level-4 heading of the OPTIONS section whose bold parts are its
//! flags: `#### **--env**, **-e**=*KEY=VALUE*`. Needs neither root nor the network.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this package is `crates/cli`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// The output of `ocirun ARGS... --help`.
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ocirun"))
        .args(args)
        .arg("--help")
        .env_remove("COLUMNS")
        .output()
        .expect("cannot run the ocirun binary");
    assert!(
        out.status.success(),
        "ocirun {} --help exited with {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the help is UTF-8")
}

/// Whether `token` is a flag: `-x`, or `--name` of lower-case letters, digits and dashes.
fn is_flag(token: &str) -> bool {
    if let Some(long) = token.strip_prefix("--") {
        long.starts_with(|c: char| c.is_ascii_lowercase())
            && long
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    } else if let Some(short) = token.strip_prefix('-') {
        short.len() == 1 && short.chars().all(|c| c.is_ascii_alphanumeric())
    } else {
        false
    }
}

/// The flags a clap help text defines: those at the start of an option line (indented by at
/// most six spaces, before its value and description), and the `[alias: --x]` ones.
fn help_flags(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent <= 6 && trimmed.starts_with('-') {
            let head = trimmed.split("  ").next().unwrap_or_default();
            flags.extend(
                head.split([',', ' ', '[', ']', '<', '='])
                    .filter(|t| is_flag(t))
                    .map(str::to_owned),
            );
        }
        for marker in ["[alias: ", "[aliases: "] {
            if let Some(start) = line.find(marker) {
                let rest = &line[start + marker.len()..];
                let list = rest.split(']').next().unwrap_or_default();
                flags.extend(
                    list.split([',', ' '])
                        .filter(|t| is_flag(t))
                        .map(str::to_owned),
                );
            }
        }
    }
    flags
}

/// The subcommands `ocirun --help` lists, but `help`.
fn subcommands(root_help: &str) -> Vec<String> {
    root_help
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The flags documented in the OPTIONS section of a page (the bold parts of its `####`
/// headings), and the headings that name no flag.
fn documented_flags(page: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut flags = BTreeSet::new();
    let mut flagless = Vec::new();
    let section = page
        .lines()
        .skip_while(|l| l.trim_end() != "## OPTIONS")
        .skip(1)
        .take_while(|l| !l.starts_with("## "));
    for line in section {
        let Some(heading) = line.strip_prefix("#### ") else {
            continue;
        };
        let found: Vec<&str> = heading
            .split("**")
            .skip(1)
            .step_by(2)
            .filter(|t| is_flag(t))
            .collect();
        if found.is_empty() {
            flagless.push(line.to_owned());
        }
        flags.extend(found.into_iter().map(str::to_owned));
    }
    (flags, flagless)
}

#[test]
fn every_flag_of_the_help_is_documented_and_every_documented_flag_exists() {
    let root = root();
    let root_help = help(&[]);
    let global = help_flags(&root_help);
    assert!(
        global.contains("--runroot") && global.contains("--help"),
        "no flags read from `ocirun --help`:\n{root_help}"
    );
    let commands = subcommands(&root_help);
    assert!(
        commands.iter().any(|c| c == "run"),
        "no subcommands read from `ocirun --help`:\n{root_help}"
    );

    let mut problems = Vec::new();
    for command in &commands {
        let rel = format!("docs/ocirun-{command}.md");
        let page = match std::fs::read_to_string(root.join(&rel)) {
            Ok(page) => page,
            Err(e) => {
                problems.push(format!(
                    "{rel}: cannot read the page of `ocirun {command}`: {e}"
                ));
                continue;
            }
        };
        let command_help = help(&[command]);
        let mut in_help = help_flags(&command_help);
        for sub in subcommands(&command_help) {
            in_help.extend(help_flags(&help(&[command, &sub])));
            if !page.contains(&format!("ocirun {command} {sub}")) {
                problems.push(format!(
                    "{rel}: `ocirun {command} {sub}` is not named on the page"
                ));
            }
        }
        let (documented, flagless) = documented_flags(&page);
        if documented.is_empty() {
            problems.push(format!(
                "{rel}: no `## OPTIONS` section with `#### **--flag**` headings"
            ));
        }
        for line in flagless {
            problems.push(format!(
                "{rel}: an OPTIONS heading without a **--flag**: {line:?}"
            ));
        }
        for flag in in_help.union(&global) {
            if !documented.contains(flag) {
                problems.push(format!(
                    "{rel}: {flag} is not documented (`ocirun {command} --help` prints it)"
                ));
            }
        }
        for flag in &documented {
            if !in_help.contains(flag) {
                problems.push(format!(
                    "{rel}: {flag} is documented but `ocirun {command} --help` does not know it"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The Markdown files of the workspace: every `*.md` below the root but in `target` and in
/// hidden directories (`.git`, ...).
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read directory {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("a directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let kind = entry.file_type().expect("a file type");
            if kind.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if name.ends_with(".md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The text of a line without its inline code spans (`` `...` ``).
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// The link targets of a Markdown text, with their line numbers: inline links and images
/// (`[text](target)`) and reference definitions (`[label]: target`), outside code.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut targets = Vec::new();
    let mut fence: Option<&str> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
            continue;
        }
        if let Some(marker) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
            fence = Some(marker);
            continue;
        }
        let line = without_code_spans(raw);
        let mut rest = line.as_str();
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let end = after.find(')').unwrap_or(after.len());
            targets.push((i + 1, after[..end].to_owned()));
            rest = &after[end..];
        }
        let def = line.trim_start();
        if def.starts_with('[') && !def.starts_with("[^") {
            if let Some((_, target)) = def.split_once("]: ") {
                targets.push((i + 1, target.to_owned()));
            }
        }
    }
    targets
}

/// The file a link target names, relative to `dir` (the linking file's directory) or, with a
/// leading `/`, to the workspace root; `None` for what is not a file link (a URL, a mail
/// address, a rustdoc path, a bare `#anchor`).
fn linked_file(root: &Path, dir: &Path, target: &str) -> Option<PathBuf> {
    let target = target.trim();
    let target = target
        .strip_prefix('<')
        .and_then(|t| t.split_once('>').map(|(t, _)| t))
        .unwrap_or_else(|| target.split_whitespace().next().unwrap_or_default());
    let lower = target.to_ascii_lowercase();
    if ["http://", "https://", "mailto:"]
        .iter()
        .any(|p| lower.starts_with(p))
        || target.contains("::")
    {
        return None;
    }
    let path = target
        .split('#')
        .next()
        .unwrap_or_default()
        .replace("%20", " ");
    if path.is_empty() {
        return None;
    }
    Some(match path.strip_prefix('/') {
        Some(from_root) => root.join(from_root),
        None => dir.join(path),
    })
}

#[test]
fn every_relative_link_of_the_markdown_files_resolves() {
    let root = root();
    let files = markdown_files(&root);
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "no Markdown files found below {}",
        root.display()
    );
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let dir = file.parent().expect("a file has a directory");
        let shown = file.strip_prefix(&root).unwrap_or(file).display();
        for (line, target) in link_targets(&text) {
            if let Some(path) = linked_file(&root, dir, &target) {
                if !path.exists() {
                    problems.push(format!("{shown}:{line}: link to {target:?}: no such file"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The source files of the workspace that may point at a docs page.
fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable directory") {
            let entry = entry.expect("a directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if entry.file_type().expect("a file type").is_dir() {
                if name != "target" && !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files
}

/// A source text with comment markers removed and its lines joined by spaces, so that a
/// reference split over two comment lines reads as one.
fn joined_comments(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.trim_start();
            l.strip_prefix("//!")
                .or_else(|| l.strip_prefix("///"))
                .or_else(|| l.strip_prefix("//"))
                .unwrap_or(l)
                .trim()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_docs_section_the_code_points_at_exists() {
    let root = root();
    let mut problems = Vec::new();
    let mut seen = 0;
    for file in rust_files(&root) {
        if file.ends_with("tests/tidy.rs") {
            continue;
        }
        let text = joined_comments(&std::fs::read_to_string(&file).expect("a readable file"));
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("docs/ocirun-") {
            let after = &rest[start..];
            let Some(end) = after.find(".md") else {
                break;
            };
            let page = &after[..end + 3];
            rest = &after[end + 3..];
            seen += 1;
            let Ok(content) = std::fs::read_to_string(root.join(page)) else {
                problems.push(format!("{shown}: points at {page}, which does not exist"));
                continue;
            };
            let tail = rest.trim_start_matches([',', ' ']);
            if let Some(quoted) = tail.strip_prefix('"') {
                let section = quoted.split('"').next().unwrap_or_default();
                let heading = format!("## {section}");
                if !content.lines().any(|l| l.trim_end() == heading) {
                    problems.push(format!(
                        "{shown}: points at {page} \"{section}\", which has no heading {heading:?}"
                    ));
                }
            }
        }
    }
    assert!(seen > 0, "no source file points at docs/ocirun-*.md");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_parsers_of_this_test_read_what_they_should() {
    let help = "Options:\n      --log-level <LEVEL>  Level [default: warn]\n  -e, --env <KEY=VALUE>\n          \
                Set a variable; see --other\n  -t, --tty[=<BOOL>]\n      --sig-proxy [<BOOL>]\n          \
                - relay: pipes\n      --network <MODE>\n          [alias: --net]\n";
    let flags: Vec<String> = help_flags(help).into_iter().collect();
    assert_eq!(
        flags,
        [
            "--env",
            "--log-level",
            "--net",
            "--network",
            "--sig-proxy",
            "--tty",
            "-e",
            "-t"
        ]
    );
    let page = "# x\n## OPTIONS\n#### **--env**, **-e**=*KEY=VALUE*\ntext **--not-a-heading**\n\
                ### Global options\n#### **--help**, **-h**\n#### oops\n## Command line\n\
                #### **--later**\n";
    let (documented, flagless) = documented_flags(page);
    let documented: Vec<String> = documented.into_iter().collect();
    assert_eq!(documented, ["--env", "--help", "-e", "-h"]);
    assert_eq!(flagless, ["#### oops"]);
    let links = link_targets(
        "[a](b.md#x) `[c](d.md)` [e](<f g.md>)\n```\n[h](i.md)\n```\n[j]: k.md\n[l](https://x)\n",
    );
    let targets: Vec<&str> = links.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(targets, ["b.md#x", "<f g.md>", "k.md", "https://x"]);
    let root = Path::new("/r");
    let dir = Path::new("/r/docs");
    assert_eq!(
        linked_file(root, dir, "../README.md#setup"),
        Some(PathBuf::from("/r/docs/../README.md"))
    );
    assert_eq!(
        linked_file(root, dir, "/ARCHITECTURE.md"),
        Some(PathBuf::from("/r/ARCHITECTURE.md"))
    );
    assert_eq!(linked_file(root, dir, "#anchor"), None);
    assert_eq!(linked_file(root, dir, "crate::pipe"), None);
    assert_eq!(linked_file(root, dir, "mailto:a@b"), None);
    assert_eq!(
        linked_file(root, dir, "<f g.md>"),
        Some(PathBuf::from("/r/docs/f g.md"))
    );
}

/// README.md is the user's short introduction: at most 200 lines. What is longer belongs in
/// docs/ or xtask/README.md.
#[test]
fn the_readme_is_at_most_200_lines() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = text.lines().count();
    assert!(lines <= 200, "README.md has {lines} lines, more than 200");
}
