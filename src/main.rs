//! The `keygate` binary: parse the command line, run the command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    match keygate::logging::LogFormat::from_env() {
        Ok(format) => keygate::logging::init(format),
        Err(problem) => {
            eprintln!("keygate: {problem}");
            return std::process::ExitCode::from(2);
        }
    }
    keygate::panics::log_panics();
    keygate::cli::run(keygate::cli::Cli::parse())
}
