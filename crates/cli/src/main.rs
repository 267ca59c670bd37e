//! `ocirun`: run a command inside a container root filesystem through an OCI runtime.
//!
//! This binary is the thin composition of the library crates (see ARCHITECTURE.md): it parses
//! flags, reads the environment and configuration files, sets up logging, and maps errors to
//! exit codes (podman's convention: 125 ocirun failed, 126 command not executable, 127 command
//! not found, else the command's own status or 128 + its signal).

// The doc comments of the flags are their --help text, whose brackets are usage syntax
// (`HOST[:CONTAINER]`), not links.
#![allow(rustdoc::broken_intra_doc_links)]

#[cfg(test)]
mod flag_props;
mod flags;
mod lifecycle;
mod mount_flags;
mod rootless;
mod run;
mod spec_flags;
mod stdio;
mod volume;
mod warm;

use std::process::ExitCode;

use clap::Parser;

/// ocirun itself failed: a bad flag or input, or the runtime failed (podman's code).
pub(crate) const EXIT_OCIRUN_FAILED: u8 = 125;

fn main() -> ExitCode {
    // Run as `newuidmap` or `newgidmap` by a runtime without root (see
    // `ocirun_runtime_driver::write_id_map`).
    let mut argv = std::env::args_os();
    let called = argv.next().map(std::path::PathBuf::from);
    let called = called
        .as_deref()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if ocirun_runtime_driver::ID_MAP_HELPERS.contains(&called) {
        let args: Vec<String> = argv.map(|a| a.to_string_lossy().into_owned()).collect();
        return match ocirun_runtime_driver::write_id_map(called, &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{called}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = match flags::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_OCIRUN_FAILED
            } else {
                0
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli.log_level);
    let context = || rootless::Invocation::new(&cli);
    let result = match &cli.command {
        flags::Command::Run(args) => context().and_then(|ctx| run::run(ctx, args)),
        flags::Command::Spec(args) => context().and_then(|ctx| run::spec(ctx, args).map(|()| 0)),
        flags::Command::Gc => context().and_then(run::gc),
        flags::Command::Unshare(args) => context().and_then(|ctx| run::unshare(ctx, args)),
        flags::Command::Volume(command) => context().and_then(|ctx| volume::run(ctx, command)),
        flags::Command::Completion { shell } => {
            completion(*shell);
            Ok(0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(EXIT_OCIRUN_FAILED)),
        Err(err) => {
            eprintln!("ocirun: {}", run::describe(&err));
            ExitCode::from(run::exit_code(&err))
        }
    }
}

/// Writes the completion script for `shell` to stdout (clap_complete, from the clap
/// definitions in `flags.rs`).
fn completion(shell: flags::CompletionShell) {
    use clap::CommandFactory;
    let shell = match shell {
        flags::CompletionShell::Bash => clap_complete::Shell::Bash,
        flags::CompletionShell::Zsh => clap_complete::Shell::Zsh,
        flags::CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(
        shell,
        &mut flags::Cli::command(),
        "ocirun",
        &mut std::io::stdout(),
    );
}

/// ocirun's own diagnostics on stderr, at `level`; in colour only when stderr is a terminal
/// and `NO_COLOR` is unset or empty (no-color.org).
fn init_logging(level: &str) {
    use std::io::IsTerminal;
    let level = level.parse().unwrap_or(tracing::Level::WARN);
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_target(false)
        .init();
}
