//! The pipescope server: configuration, the Postgres store, HTTP routes and the Leptos app.
//! [`app`] builds the router (tests drive it directly); [`run`] is the whole process.

pub mod bus;
pub mod cli;
pub mod config;
pub mod db;
pub mod engine;
pub mod error;
pub mod http;
pub mod metrics;
pub mod otlp;
pub mod state;
pub mod telemetry;

use std::sync::Arc;

use axum::Router;
use leptos::{config::LeptosOptions, prelude::provide_context};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;

use crate::{
    config::Config,
    db::Database,
    error::StartupError,
    http::{access::Policy, limits::Limits},
    state::AppState,
};

/// Every route pipescope serves: the API, the server functions, the pages and the static bundle,
/// each request first checked against `access`, then charged to its client (`limits`), each
/// response with the security headers.
pub fn app(state: AppState, access: Policy, limits: Limits) -> Router {
    let routes = generate_route_list(app::App);
    let backend = state::shared_backend(&state);
    // Each page's and server function's context.
    let context = move || {
        provide_context(backend.clone());
        http::headers::provide_nonce();
    };
    let access = Arc::new(access);
    let limiter = Arc::new(http::limits::Limiter::new(limits));
    Router::new()
        .merge(http::access::router(access.clone()))
        .merge(http::health::router())
        .merge(http::api::router())
        .merge(http::otlp::router())
        .merge(http::prometheus::router())
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = state.leptos_options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, app::shell))
        .layer(axum::middleware::from_fn(
            http::static_files::revalidate_bundle,
        ))
        // After access: a client without the token is refused before it uses anyone's share.
        .layer(axum::middleware::from_fn_with_state(
            limiter.clone(),
            http::limits::guard,
        ))
        // For /healthz, which reports the refusals.
        .layer(axum::Extension(limiter))
        // Outside the routes, so that refusals get the headers too.
        .layer(axum::middleware::from_fn_with_state(
            access,
            http::access::guard,
        ))
        .layer(axum::middleware::from_fn(http::headers::secure))
        .with_state(state)
}

/// Leptos settings for a server that is not started by cargo-leptos.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("pipescope")
        .site_root(config.site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .build()
}

/// Binds, opens the database, serves until Ctrl-C or SIGTERM, then shuts down in order:
/// in-flight requests finish, the pool closes, pipescope's own PostgreSQL stops.
pub async fn run(config: Config) -> Result<(), StartupError> {
    // Before anything starts: listening beyond loopback without a token is refused.
    let access = config.access().map_err(StartupError::Config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartupError::listen(config.listen, &e))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| StartupError::listen(config.listen, &e))?;
    // Taken from here on: one that comes while the database opens stops the server once it is up.
    let signalled = shutdown_signal();

    let data_dir = config.data_dir();
    let mut database = Database::open(
        config.database_url.as_deref(),
        &data_dir,
        config.postgres_bin.as_deref(),
    )
    .await?;

    let engine = config.engine().map_err(StartupError::Config)?;
    let mut options = leptos_options(&config);
    options.site_addr = local_addr;
    let state = AppState::start(
        options,
        database.pool.clone(),
        database.mode,
        config.backbone(),
        engine,
    )
    .await;
    // Always: search finds only what it has indexed, and what was stored before an upgrade waits.
    tokio::spawn(db::search::run(
        state.pool.clone(),
        state.shutdown.subscribe(),
    ));
    if let Some(days) = config.retain_days {
        tokio::spawn(db::retention::run(
            state.pool.clone(),
            days,
            state.shutdown.subscribe(),
        ));
    }
    let pipelines = load_pipelines(&state, &config).await;
    if config.demo {
        engine::demo::start(state.engine.clone(), pipelines, Default::default());
    }

    tracing::info!(
        "pipescope {} listening on http://{local_addr} (database: {}; {})",
        env!("CARGO_PKG_VERSION"),
        match database.mode {
            app::models::DatabaseMode::Embedded => format!("built-in, {}", data_dir.display()),
            app::models::DatabaseMode::External => "DATABASE_URL".to_string(),
        },
        if access.requires_token() {
            "a token is required"
        } else {
            "no token: anyone who can reach this address can use it"
        }
    );
    let stopping = state.shutdown.clone();
    let served = http::serve::serve(
        listener,
        app(state.clone(), access, config.limits()),
        async move {
            signalled.await;
            // Ends the open event streams, which would otherwise hold the shutdown forever.
            stopping.send_replace(true);
        },
    )
    .await;
    // Everything published is delivered and written before the database goes away.
    state.shut_down().await;
    database.close().await;
    tracing::info!("pipescope stopped");
    served.map_err(StartupError::Serve)
}

/// Loads the pipelines folder; returns the names of the pipelines it holds. Invalid files are
/// reported (file:line:column) and skipped.
async fn load_pipelines(state: &AppState, config: &Config) -> Vec<String> {
    let dir = &config.pipelines_dir;
    if !dir.exists() {
        tracing::info!("no pipelines folder at {}; none loaded", dir.display());
        return Vec::new();
    }
    match engine::library::load_dir(&state.pool, dir, state.engine.catalog()).await {
        Ok(report) => {
            for (file, problems) in &report.rejected {
                tracing::warn!("skipped {file}:\n{problems}");
            }
            let names: Vec<String> = report.loaded.iter().map(|d| d.name.clone()).collect();
            tracing::info!("loaded {} pipelines from {}", names.len(), dir.display());
            names
        }
        Err(error) => {
            tracing::warn!("cannot store the pipelines of {}: {error}", dir.display());
            Vec::new()
        }
    }
}

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal that came between the server answering
/// its first request and that poll would otherwise have killed the process with the default
/// action (seen as a failed exit when SIGTERM followed the first `/healthz` on a busy machine).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            _ = received(interrupt.as_mut()) => {},
            _ = received(term.as_mut()) => {},
        }
        tracing::info!("shutting down");
    }
}

/// The next signal on `stream`; never, if its handler could not be installed.
async fn received(stream: Option<&mut tokio::signal::unix::Signal>) {
    match stream {
        Some(stream) => {
            stream.recv().await;
        }
        None => std::future::pending().await,
    }
}
