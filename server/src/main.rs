//! `pipescope`: parse the command line; run a command (`validate`), or set up logging and serve
//! until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use server::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_args() {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    use server::config::Command;
    match &config.command {
        Some(Command::Validate { files }) => return server::cli::validate(&config, files),
        Some(Command::Run {
            pipeline,
            inputs,
            provider,
            model,
            server,
        }) => {
            return server::cli::run(
                &config,
                pipeline,
                inputs,
                provider.as_deref(),
                model.as_deref(),
                server,
            )
            .await
        }
        Some(Command::Tail { run, level, server }) => {
            return server::cli::tail(&config, *run, level, server).await
        }
        None => {}
    }
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
