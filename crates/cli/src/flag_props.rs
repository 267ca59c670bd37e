//! Every flag of `ocirun run`, given any value: reading the command line, then the spec and
//! mount flags, never panics (a bad value is an error naming it).

use clap::{CommandFactory, Parser};
use ocirun_runtime_driver::StateLayout;
use ocirun_spec_gen::{ImageConfig, RunOptions};
use proptest::prelude::*;

use crate::flags::{Cli, Command};

/// Any string, or one built of what the flags' grammars are made of.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "-?[0-9]{0,25}(\\.[0-9]{0,12})?[bkmgtpBKMGTP]?",
        "[a-zA-Z0-9:=,./_*+ -]{0,30}",
        "(18446744073709551615|9223372036854775808|-9223372036854775809|4294967296|-1|0)",
    ]
}

/// The long names of the flags of `ocirun run` that take a value, and of those that do not.
fn run_flags() -> Vec<(String, bool)> {
    let cli = Cli::command();
    let run = cli
        .find_subcommand("run")
        .expect("ocirun has a run subcommand");
    run.get_arguments()
        .filter_map(|a| {
            let takes_value = a.get_action().takes_values();
            a.get_long().map(|l| (format!("--{l}"), takes_value))
        })
        .collect()
}

/// Parses `ocirun run --rootfs /r FLAGS -- true` and, when that succeeds, applies the spec
/// and mount flags as a run does.
fn parse_and_apply(flags: &[String]) {
    let mut argv: Vec<String> = ["ocirun", "run", "--rootfs", "/r"]
        .map(String::from)
        .to_vec();
    argv.extend(flags.iter().cloned());
    argv.extend(["--".to_owned(), "true".to_owned()]);
    let Ok(cli) = Cli::try_parse_from(&argv) else {
        return;
    };
    let Command::Run(args) = &cli.command else {
        panic!("parsed {argv:?} as another subcommand");
    };
    let mut options = RunOptions::new(vec!["true".to_owned()]);
    let _ = args.spec_flags.apply(&mut options);
    let _ = crate::lifecycle::container_name(&args.lifecycle);
    let state = StateLayout::new("/nonexistent/run", "/nonexistent/lib");
    let id = "abc".parse().expect("a valid container id");
    let _ = crate::mount_flags::plan(
        &state,
        &args.mount_flags,
        &ImageConfig::default(),
        None,
        &id,
        false,
        &options,
    )
    .map(|plan| plan.resolve((0, 0)));
}

#[test]
fn the_flags_are_found() {
    let flags = run_flags();
    for flag in [
        "--stop-timeout",
        "--cpu-shares",
        "--memory",
        "--volume",
        "--tmpfs",
    ] {
        assert!(flags.iter().any(|(f, _)| f == flag), "{flag}: {flags:?}");
    }
}

proptest! {
    #[test]
    fn every_run_flag_takes_any_value_without_panicking(
        picks in proptest::collection::vec((any::<prop::sample::Index>(), value(), any::<bool>()), 1..4),
    ) {
        let flags = run_flags();
        let mut argv = Vec::new();
        for (index, value, joined) in picks {
            let (flag, takes_value) = index.get(&flags).clone();
            if !takes_value {
                argv.push(flag);
            } else if joined {
                argv.push(format!("{flag}={value}"));
            } else {
                argv.push(flag);
                argv.push(value);
            }
        }
        parse_and_apply(&argv);
    }
}
