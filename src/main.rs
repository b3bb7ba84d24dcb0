//! `switchyard`: see `switchyard --help`, or `cargo run -- serve` for the offline demo.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    switchyard::logging::init();
    switchyard::cli::run(switchyard::cli::Cli::parse())
}
