//! Command line and environment. Every flag has an environment variable, so the same binary is
//! configured the same way in a shell, a service unit or a container.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "pipescope",
    version,
    about = "Runs multi-step LLM pipelines and shows every run live in the browser.",
    long_about = "Runs multi-step LLM pipelines and shows every run live in the browser.\n\n\
        Without DATABASE_URL pipescope starts its own PostgreSQL in the data directory and stops \
        it again on exit; with DATABASE_URL it uses that server. Migrations run at start-up."
)]
pub struct Config {
    /// Address and port to serve the dashboard and API on.
    #[arg(
        long,
        env = "PIPESCOPE_LISTEN",
        default_value = "127.0.0.1:3000",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,

    /// PostgreSQL to use, e.g. postgres://user:pass@host:5432/pipescope. When unset, pipescope
    /// runs its own PostgreSQL in the data directory.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where pipescope keeps its own PostgreSQL cluster (used when DATABASE_URL is unset).
    /// Defaults to /var/lib/pipescope for root, else $XDG_DATA_HOME/pipescope.
    #[arg(long, env = "PIPESCOPE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Folder holding PostgreSQL's server programs (initdb, postgres). Found automatically
    /// under /usr/lib/postgresql or on PATH when unset.
    #[arg(long, env = "PIPESCOPE_POSTGRES_BIN", value_name = "DIR")]
    pub postgres_bin: Option<PathBuf>,

    /// Log filter: a level (error, warn, info, debug, trace) or per-module directives such as
    /// `info,server=debug`.
    #[arg(long, env = "PIPESCOPE_LOG", default_value = "info", value_name = "FILTER",
          value_parser = parse_log_filter)]
    pub log_level: String,

    /// Events a live-stream client may fall behind before it loses the oldest and is told to
    /// resync.
    #[arg(long, env = "PIPESCOPE_SUBSCRIBER_BUFFER", default_value_t = 16_384, value_name = "EVENTS",
          value_parser = clap::value_parser!(u32).range(16..=1_048_576))]
    pub subscriber_buffer: u32,

    /// Recent events kept in memory so reconnecting clients resume without touching Postgres.
    #[arg(long, env = "PIPESCOPE_REPLAY_WINDOW", default_value_t = 65_536, value_name = "EVENTS",
          value_parser = clap::value_parser!(u32).range(16..=16_777_216))]
    pub replay_window: u32,

    /// Seconds between rows written to metrics_snapshots.
    #[arg(long, env = "PIPESCOPE_METRICS_SNAPSHOT_SECS", default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub metrics_snapshot_secs: u32,

    /// Folder with the built browser bundle (written by cargo-leptos).
    #[arg(
        long,
        env = "LEPTOS_SITE_ROOT",
        default_value = "target/site",
        value_name = "DIR"
    )]
    pub site_root: PathBuf,
}

impl Config {
    /// Parses the process arguments. `--help` and `--version` print and exit 0; a bad flag or
    /// value prints one line naming it and exits 2.
    pub fn from_args() -> Result<Self, ExitCode> {
        Self::try_parse().map(Self::normalised).map_err(|error| {
            use clap::error::ErrorKind;
            match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = error.print();
                    ExitCode::SUCCESS
                }
                _ => {
                    eprintln!("pipescope: {} (see pipescope --help)", first_line(&error));
                    ExitCode::from(2)
                }
            }
        })
    }

    /// An empty `DATABASE_URL=` means "none", as it does for most tools.
    pub fn normalised(mut self) -> Self {
        if self
            .database_url
            .as_deref()
            .is_some_and(|url| url.trim().is_empty())
        {
            self.database_url = None;
        }
        self
    }

    /// The live backbone's settings.
    pub fn backbone(&self) -> crate::state::BackboneSettings {
        let mut settings = crate::state::BackboneSettings::default();
        settings.bus.subscriber_buffer = self.subscriber_buffer as usize;
        settings.bus.replay_window = self.replay_window as usize;
        settings.metrics_snapshot_every =
            std::time::Duration::from_secs(u64::from(self.metrics_snapshot_secs));
        settings
    }

    /// The data directory to use when pipescope runs its own database.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if nix::unistd::geteuid().is_root() {
            PathBuf::from("/var/lib/pipescope")
        } else {
            dirs::data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("pipescope")
        }
    }
}

fn first_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let line = rendered.lines().next().unwrap_or_default();
    line.trim_start_matches("error: ").to_string()
}

fn parse_log_filter(value: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_string())
        .map_err(|e| format!("not a log filter ({e}); try info, debug or info,server=debug"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("pipescope").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_listen_on_loopback() -> Result<(), clap::Error> {
        let config = parse(&[])?;
        assert_eq!(
            config.listen,
            "127.0.0.1:3000".parse::<SocketAddr>().expect("valid addr")
        );
        Ok(())
    }

    #[test]
    fn bad_listen_address_names_the_flag_and_the_value() {
        let error = parse(&["--listen", "localhost"]).expect_err("must reject");
        let line = first_line(&error);
        assert!(line.contains("--listen"), "{line}");
        assert!(line.contains("'localhost'"), "{line}");
    }

    #[test]
    fn unknown_flag_is_named() {
        let error = parse(&["--frobnicate"]).expect_err("must reject");
        assert!(first_line(&error).contains("--frobnicate"));
    }

    #[test]
    fn bad_log_filter_is_rejected_with_a_hint() {
        let error = parse(&["--log-level", "server=loud"]).expect_err("must reject");
        let line = first_line(&error);
        assert!(line.contains("--log-level"), "{line}");
        assert!(line.contains("not a log filter"), "{line}");
    }

    #[test]
    fn an_empty_database_url_means_none() -> Result<(), clap::Error> {
        let config = parse(&["--database-url", ""])?.normalised();
        assert_eq!(config.database_url, None);
        Ok(())
    }

    #[test]
    fn explicit_data_dir_wins() -> Result<(), clap::Error> {
        let config = parse(&["--data-dir", "/srv/pipescope"])?;
        assert_eq!(config.data_dir(), PathBuf::from("/srv/pipescope"));
        Ok(())
    }
}
