//! Command line and environment. Every flag has an environment variable, so the same binary is
//! configured the same way in a shell, a service unit or a container.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;

use crate::http::access::{Policy, Token};

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
    /// Without a command, pipescope serves.
    #[command(subcommand)]
    pub command: Option<Command>,

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

    /// Seconds after which an OpenTelemetry trace with no new span and no root span is closed
    /// (completed with the spans it has).
    #[arg(long, env = "PIPESCOPE_OTLP_IDLE_CLOSE", default_value_t = 300, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(1..=604_800))]
    pub otlp_idle_close: u32,

    /// Config file (TOML) with named provider instances (`[providers.<name>]`: kind, base_url,
    /// api_key_env, …) and price overrides (`[[prices]]`). See the README.
    #[arg(long, env = "PIPESCOPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Folder of pipeline files (*.yaml) loaded at start-up; a changed file becomes a new
    /// version.
    #[arg(
        long,
        env = "PIPESCOPE_PIPELINES",
        default_value = "pipelines",
        value_name = "DIR"
    )]
    pub pipelines_dir: PathBuf,

    /// Run the loaded pipelines on a simulated provider at a steady pace, so the dashboard
    /// shows live activity with no API key.
    #[arg(long, env = "PIPESCOPE_DEMO", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub demo: bool,

    /// Token that every API call, server function, event stream and page then needs: as
    /// `Authorization: Bearer <token>`, or the session cookie /login sets. Required when
    /// --listen is not a loopback address. At least 16 characters, e.g. `openssl rand -hex 32`;
    /// prefer the environment variable (a flag's value is visible to other users in `ps`).
    #[arg(long, env = "PIPESCOPE_TOKEN", value_name = "TOKEN", hide_env_values = true,
          value_parser = Token::parse)]
    pub token: Option<Token>,

    /// A second token that may watch (pages, the event stream, everything that reads) but not
    /// start, control, replay, edit, ingest or test providers. Needs --token.
    #[arg(long, env = "PIPESCOPE_READ_TOKEN", value_name = "TOKEN", hide_env_values = true,
          value_parser = Token::parse)]
    pub read_token: Option<Token>,

    /// Host names pipescope is reached by besides localhost and IP addresses, e.g. the name a
    /// reverse proxy forwards (comma-separated). Requests naming any other host are refused
    /// when listening on loopback (DNS rebinding), or always once names are given.
    #[arg(long, env = "PIPESCOPE_PUBLIC_HOST", value_name = "NAME", value_delimiter = ',',
          value_parser = parse_host_name)]
    pub public_host: Vec<String>,

    /// Most live event streams (`/api/events`) open at once, from all clients together; one
    /// more is answered 429. Each idle stream holds about 13 KB.
    #[arg(long, env = "PIPESCOPE_MAX_STREAMS", default_value_t = 10_000, value_name = "STREAMS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams: u32,

    /// Most live event streams one client (an IP address) may hold open at once. A browser
    /// tab holds one.
    #[arg(long, env = "PIPESCOPE_MAX_STREAMS_PER_CLIENT", default_value_t = 1_000,
          value_name = "STREAMS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_client: u32,

    /// Ingest requests (`POST /api/ingest/events`, each up to 10,000 events) one client may
    /// send per second, sustained; twice as many may come in a burst.
    #[arg(long, env = "PIPESCOPE_INGEST_RATE", default_value_t = 1_000, value_name = "REQUESTS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub ingest_rate: u32,

    /// Requests that start runs (a run, a batch, a rerun or a step's replay) one client may
    /// send per second, sustained; twice as many may come in a burst.
    #[arg(long, env = "PIPESCOPE_RUN_RATE", default_value_t = 20, value_name = "REQUESTS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub run_rate: u32,

    /// Most runs executing at once on this server. A run started beyond it is answered 429;
    /// a batch's queued runs wait for a free place instead.
    #[arg(long, env = "PIPESCOPE_MAX_RUNNING", default_value_t = crate::engine::MAX_RUNNING as u32, value_name = "RUNS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_running: u32,

    /// Addresses of reverse proxies in front of pipescope (comma-separated). A request from one
    /// of them counts against the client named last in its `X-Forwarded-For` that is not
    /// itself one of them; without this, every client behind a proxy shares its limits.
    #[arg(
        long,
        env = "PIPESCOPE_TRUSTED_PROXY",
        value_name = "IP",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<std::net::IpAddr>,

    /// Keep the event log, log lines, metrics snapshots and runs' prompts and responses this
    /// many days; older ones are pruned in the background (runs stay, with their status,
    /// tokens, cost and timings, so history and totals keep counting them). Unset: keep
    /// everything.
    #[arg(long, env = "PIPESCOPE_RETAIN_DAYS", value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retain_days: Option<u32>,

    /// Folder with the built browser bundle (written by cargo-leptos).
    #[arg(
        long,
        env = "LEPTOS_SITE_ROOT",
        default_value = "target/site",
        value_name = "DIR"
    )]
    pub site_root: PathBuf,
}

/// What pipescope does besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Checks pipeline files with the server's own validator, without a server or a database:
    /// each problem as `file:line:column: message`, exit status 1 if there is any. Providers
    /// are checked against the built-in ones and those of --config. `-` reads standard input.
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Starts a run on a pipescope server and follows it live: each step as it starts, its
    /// response as it streams, tokens, cost and time. Ctrl-C asks whether to cancel the run.
    /// Exit status 0 when the run completes, 1 when it fails or is cancelled.
    Run {
        /// A saved pipeline's name, or a pipeline file (its YAML is sent).
        #[arg(value_name = "NAME|FILE")]
        pipeline: String,
        /// An input, as name=value (repeat for each input).
        #[arg(long = "input", short, value_name = "NAME=VALUE", value_parser = parse_input)]
        inputs: Vec<(String, String)>,
        /// Run every step on this provider instead of the pipeline's.
        #[arg(long)]
        provider: Option<String>,
        /// Run every step with this model instead of the pipeline's.
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Prints the live log stream (`log:entry` events) of a pipescope server until Ctrl-C.
    Tail {
        /// Only the lines of this run.
        #[arg(long, value_name = "ID")]
        run: Option<uuid::Uuid>,
        /// Only these levels (comma-separated: trace, debug, info, warn, error).
        #[arg(long, value_delimiter = ',', value_parser = parse_level)]
        level: Vec<app::models::LogLevel>,
        #[command(flatten)]
        server: ServerArg,
    },
}

/// Which server `run` and `tail` talk to. The token is --token / PIPESCOPE_TOKEN (or, for
/// `tail`, --read-token / PIPESCOPE_READ_TOKEN), as for serving.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArg {
    /// The pipescope server's address.
    #[arg(
        long = "server",
        env = "PIPESCOPE_SERVER",
        default_value = "http://127.0.0.1:3000",
        value_name = "URL"
    )]
    pub url: String,
}

fn parse_input(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "give an input as name=value, e.g. topic=CRDTs (got {value:?})"
        )),
    }
}

fn parse_level(value: &str) -> Result<app::models::LogLevel, String> {
    app::models::LogLevel::ALL
        .into_iter()
        .find(|level| level.as_str().eq_ignore_ascii_case(value.trim()))
        .ok_or_else(|| {
            format!("not a level: {value:?}; levels are trace, debug, info, warn, error")
        })
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

    /// Who may do what (tokens, accepted host names), checked for consistency: listening beyond
    /// loopback without a token is refused here, before anything starts.
    pub fn access(&self) -> Result<Policy, String> {
        let loopback = self.listen.ip().to_canonical().is_loopback();
        if self.token.is_none() && !loopback {
            return Err(format!(
                "--listen {} accepts connections from other machines, so it needs a token: set \
                 --token or PIPESCOPE_TOKEN (e.g. PIPESCOPE_TOKEN=$(openssl rand -hex 32)), or \
                 listen on 127.0.0.1",
                self.listen
            ));
        }
        Policy::new(
            self.token.clone(),
            self.read_token.clone(),
            self.public_host.clone(),
            loopback,
        )
    }

    /// The limits per client (streams, request rates); the run limit is the engine's.
    pub fn limits(&self) -> crate::http::limits::Limits {
        crate::http::limits::Limits {
            max_streams: self.max_streams,
            max_streams_per_client: self.max_streams_per_client,
            ingest_per_sec: self.ingest_rate,
            runs_per_sec: self.run_rate,
            trusted_proxies: self.trusted_proxy.clone(),
        }
    }

    /// The live backbone's settings.
    pub fn backbone(&self) -> crate::state::BackboneSettings {
        let mut settings = crate::state::BackboneSettings::default();
        settings.bus.subscriber_buffer = self.subscriber_buffer as usize;
        settings.bus.replay_window = self.replay_window as usize;
        settings.metrics_snapshot_every =
            std::time::Duration::from_secs(u64::from(self.metrics_snapshot_secs));
        settings.otlp_idle_close = std::time::Duration::from_secs(u64::from(self.otlp_idle_close));
        settings
    }

    /// Providers and prices: built-ins, the environment's keys, then the config file.
    pub fn engine(&self) -> Result<crate::engine::EngineConfig, String> {
        let file = match &self.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        let mut providers = file.providers;
        if self.demo {
            providers
                .entry(crate::engine::demo::PROVIDER.to_owned())
                .or_insert_with(crate::engine::demo::provider_config);
        }
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let registry = providers::Registry::new(&providers, &env).map_err(|e| {
            format!(
                "{}: {e}",
                self.config
                    .as_deref()
                    .map_or("providers".into(), |p| p.display().to_string())
            )
        })?;
        Ok(crate::engine::EngineConfig {
            providers: registry,
            prices: providers::PriceTable::new(file.prices),
            max_running: self.max_running as usize,
        })
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

/// The config file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub providers: std::collections::BTreeMap<String, providers::ProviderConfig>,
    #[serde(default)]
    pub prices: Vec<providers::Price>,
}

impl FileConfig {
    /// Reads and parses `path`; the error names the file, line and what is wrong.
    pub fn read(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| {
            // toml's message spans several lines (a source excerpt); keep the location and
            // the reason on one.
            let message = e.message().to_owned();
            match e.span() {
                Some(span) => {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {line}, column {column}: {message}")
                }
                None => message,
            }
        })
    }
}

fn first_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ");
    // "the following required arguments were not provided:" names them on the next line.
    match (line.ends_with(':'), lines.next()) {
        (true, Some(what)) => format!("{line} {what}"),
        _ => line.to_string(),
    }
}

/// A host name as a Host header carries it, without port: `pipescope.example.com`.
fn parse_host_name(value: &str) -> Result<String, String> {
    let name = value.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if valid {
        Ok(name)
    } else {
        Err(format!(
            "not a host name: give the name alone, e.g. pipescope.example.com (no scheme, port \
             or path): {value:?}"
        ))
    }
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
    fn config_file_errors_are_located() {
        // A provider's keys are checked per kind, so the error points at its table.
        let error = FileConfig::parse(
            "[providers.ok]\nkind = \"simulated\"\n\n[providers.local]\nkind = \"openai\"\nbase_ulr = \"x\"\n",
        )
        .expect_err("unknown key");
        assert!(error.starts_with("line 4, column 1:"), "{error}");
        assert!(error.contains("unknown field `base_ulr`"), "{error}");
        let error = FileConfig::parse("[[prices]]\nprovider = \"openai\"\nmodel = 3\n")
            .expect_err("wrong type");
        assert!(error.starts_with("line 3, column 9:"), "{error}");
    }

    #[test]
    fn config_file_names_provider_instances() -> Result<(), String> {
        let file = FileConfig::parse(
            "[providers.local-llama]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:11434/v1\"\n\n\
             [[prices]]\nprovider = \"local-llama\"\nmodel = \"*\"\ninput_per_mtok = 0.0\noutput_per_mtok = 0.0\n",
        )?;
        assert!(matches!(
            file.providers.get("local-llama"),
            Some(providers::ProviderConfig::Openai(_))
        ));
        assert_eq!(file.prices.len(), 1);
        Ok(())
    }

    #[test]
    fn demo_is_a_flag() -> Result<(), clap::Error> {
        assert!(parse(&["--demo"])?.demo);
        assert!(!parse(&[])?.demo);
        Ok(())
    }

    #[test]
    fn loopback_without_a_token_stays_open() -> Result<(), String> {
        let policy = parse(&[]).map_err(|e| e.to_string())?.access()?;
        assert!(!policy.requires_token());
        Ok(())
    }

    #[test]
    fn other_addresses_need_a_token() -> Result<(), String> {
        for listen in ["0.0.0.0:3000", "192.168.1.4:3000", "[::]:3000"] {
            let error = parse(&["--listen", listen])
                .map_err(|e| e.to_string())?
                .access()
                .expect_err("must refuse");
            assert!(!error.contains('\n'), "one line: {error}");
            assert!(
                error.contains("--token") && error.contains("PIPESCOPE_TOKEN"),
                "{error}"
            );
        }
        let token = "0123456789abcdef0123";
        assert!(parse(&["--listen", "0.0.0.0:3000", "--token", token])
            .map_err(|e| e.to_string())?
            .access()?
            .requires_token());
        Ok(())
    }

    #[test]
    fn tokens_are_checked() -> Result<(), String> {
        let error = parse(&["--token", "short"]).expect_err("too short");
        assert!(first_line(&error).contains("at least 16"), "{error}");
        let (write, read) = ("0123456789abcdef0123", "fedcba98765432100123");
        let error = parse(&["--read-token", read])
            .map_err(|e| e.to_string())?
            .access()
            .expect_err("needs --token");
        assert!(error.contains("--token"), "{error}");
        let error = parse(&["--token", write, "--read-token", write])
            .map_err(|e| e.to_string())?
            .access()
            .expect_err("must differ");
        assert!(error.contains("differ"), "{error}");
        parse(&["--token", write, "--read-token", read])
            .map_err(|e| e.to_string())?
            .access()?;
        Ok(())
    }

    #[test]
    fn tokens_never_show_in_debug_output() -> Result<(), clap::Error> {
        let config = parse(&["--token", "0123456789abcdef-secret"])?;
        assert!(!format!("{config:?}").contains("secret"));
        Ok(())
    }

    #[test]
    fn public_hosts_are_names() -> Result<(), clap::Error> {
        let config = parse(&["--public-host", "Pipescope.Example.com,ops.example.com."])?;
        assert_eq!(
            config.public_host,
            ["pipescope.example.com", "ops.example.com"]
        );
        let error = parse(&["--public-host", "https://x.example.com/"]).expect_err("a URL");
        assert!(first_line(&error).contains("no scheme"), "{error}");
        Ok(())
    }

    #[test]
    fn limits_default_as_documented_and_take_proxies() -> Result<(), clap::Error> {
        let limits = parse(&[])?.limits();
        let defaults = crate::http::limits::Limits::default();
        assert_eq!(
            (limits.max_streams, limits.max_streams_per_client),
            (defaults.max_streams, defaults.max_streams_per_client)
        );
        assert_eq!(
            (limits.ingest_per_sec, limits.runs_per_sec),
            (defaults.ingest_per_sec, defaults.runs_per_sec)
        );
        let limits = parse(&["--trusted-proxy", "10.0.0.1,::1", "--run-rate", "5"])?.limits();
        assert_eq!(limits.trusted_proxies.len(), 2);
        assert_eq!(limits.runs_per_sec, 5);
        let error = parse(&["--max-running", "0"]).expect_err("zero");
        assert!(first_line(&error).contains("--max-running"), "{error}");
        Ok(())
    }

    #[test]
    fn explicit_data_dir_wins() -> Result<(), clap::Error> {
        let config = parse(&["--data-dir", "/srv/pipescope"])?;
        assert_eq!(config.data_dir(), PathBuf::from("/srv/pipescope"));
        Ok(())
    }
}
