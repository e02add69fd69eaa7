//! The `keygate` binary: parse the command line, run the command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    keygate::cli::run(keygate::cli::Cli::parse())
}
