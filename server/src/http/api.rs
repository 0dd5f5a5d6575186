//! The public REST API, versioned: every documented route at `/api/v1/…`, described by the
//! OpenAPI document served at `/api/v1/openapi.json`, which is generated from the handlers
//! themselves (`#[utoipa::path]` on each, `ToSchema` on the types they read and answer with),
//! so it cannot drift from what the routes do.
//!
//! The same routes answer at `/api/…` too, the paths programs used before the API was
//! versioned: one set of handlers mounted twice, so the aliases can never behave differently.

use std::sync::Arc;

use axum::{routing::get, Json, Router};
use utoipa::{
    openapi::{
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        OpenApi as Document,
    },
    Modify, OpenApi,
};
use utoipa_axum::router::OpenApiRouter;

use super::paths::{ALIAS_PREFIX, DOCUMENT_PATH, PREFIX};
use crate::state::AppState;

/// The document's parts that no handler states: what the API is, its token, its groups.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pipescope",
        description = "Run multi-step LLM pipelines and watch every run live: the current state, \
                       runs and their steps, control (pause, resume, cancel, rerun, replay), \
                       batches, pipelines, logs, history, the live event stream and ingest. \
                       Errors are JSON `{\"error\": …}` saying what to change. When pipescope \
                       was started with a token, send `Authorization: Bearer <token>`; the \
                       read-only token may call every GET (and validate), not the rest."
    ),
    modifiers(&BearerToken),
    security((), ("bearer" = [])),
    tags(
        (name = "state", description = "What is happening now"),
        (name = "executions", description = "Runs: start, read, control, replay"),
        (name = "batches", description = "One pipeline over many input sets"),
        (name = "pipelines", description = "Saved pipelines and the validator"),
        (name = "logs", description = "Stored log lines"),
        (name = "history", description = "Past runs, filtered"),
        (name = "events", description = "The live event stream"),
        (name = "ingest", description = "Events of pipelines that run elsewhere"),
    )
)]
struct Description;

/// Declares the bearer token (`--token`, `--read-token`) as the API's security scheme.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The token pipescope was started with (--token), or its read-only \
                         token (--read-token); not needed when it was started without one",
                    ))
                    .build(),
            ),
        );
    }
}

/// Each area's documented routes, at their paths below a prefix.
fn areas() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(super::overview::router())
        .merge(super::runs::router())
        .merge(super::logs::router())
        .merge(super::history::router())
        .merge(super::events::router())
        .merge(super::ingest::router())
}

/// The API at `/api/v1` and at its `/api` aliases, and the document.
pub fn router() -> Router<AppState> {
    let (versioned, document) = OpenApiRouter::with_openapi(Description::openapi())
        .nest(PREFIX, areas())
        .split_for_parts();
    let (aliases, _) = areas().split_for_parts();
    let document = Arc::new(document);
    versioned.nest(ALIAS_PREFIX, aliases).route(
        DOCUMENT_PATH,
        get(move || {
            let document = document.clone();
            async move { Json(Document::clone(&document)) }
        }),
    )
}
