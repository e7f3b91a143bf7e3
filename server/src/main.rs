//! The `ember` binary: `serve`, `transcribe`, `models install|list`.

use clap::Parser;
use ember_server::config::{Cli, Command};

fn main() -> std::process::ExitCode {
    ember_server::telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => ember_server::serve::run(args),
        Command::Transcribe(args) => ember_server::cli::transcribe_files(args),
        Command::Models { command } => ember_server::cli::models(command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
