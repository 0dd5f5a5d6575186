//! `pipescope`: parse the command line, set up logging, run until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use server::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_args() {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    server::telemetry::init(&config.log_level);

    match server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One readable line; the chain of causes is already in the message.
            eprintln!("pipescope: {error}");
            ExitCode::FAILURE
        }
    }
}
