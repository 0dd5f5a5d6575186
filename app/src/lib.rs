//! The pipescope UI and everything the server and the browser share: wire types (`models`),
//! `#[server]` functions (`functions`), the browser's live state (`live`), components, rich text
//! (`rich`) and routes. Built twice: with `ssr` into the server binary, with `hydrate` into the
//! WASM bundle.

#![recursion_limit = "256"]

#[cfg(feature = "ssr")]
pub mod backend;
pub mod clipboard;
pub mod components;
pub mod error;
pub mod format;
pub mod functions;
pub mod live;
pub mod models;
pub mod rich;
pub mod routes;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    OptionalParamSegment, ParamSegment, SsrMode, StaticSegment,
};

/// The HTML document around [`App`]; rendered only on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" data-theme="dark">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="dark light" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                // The nonce the response's Content-Security-Policy names (only the server has one).
                <script nonce=leptos::nonce::use_nonce() inner_html=components::header::theme_script()></script>
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Stylesheet id="leptos" href="/pkg/pipescope.css" />
        <Title text="pipescope" />
        <Router>
            <Routes fallback=routes::NotFound>
                // Async: the server waits for the page's data, so the first paint is complete (no
                // loading placeholders that shift the layout when they resolve).
                <Route path=StaticSegment("") view=routes::DashboardPage ssr=SsrMode::Async />
                // The history: its own chunk (see HistorySection).
                <Route path=StaticSegment("runs") view=routes::HistorySection />
                <Route path=StaticSegment("compare") view=routes::HistorySection />
                <Route path=(StaticSegment("runs"), ParamSegment("id")) view=routes::RunPage ssr=SsrMode::Async />
                <Route
                    path=(StaticSegment("runs"), ParamSegment("id"), StaticSegment("steps"), ParamSegment("step"))
                    view=routes::StepPage
                    ssr=SsrMode::Async
                />
                // The pipelines section: its code is in its own WASM chunk (see PipelinesSection).
                <Route path=StaticSegment("pipelines") view=routes::PipelinesSection />
                <Route
                    path=(StaticSegment("pipelines"), ParamSegment("name"), OptionalParamSegment("action"))
                    view=routes::PipelinesSection
                />
                <Route path=StaticSegment("providers") view=routes::ProvidersSection />
                // The log viewer: its own chunk (see LogsSection).
                <Route path=StaticSegment("logs") view=routes::LogsSection />
            </Routes>
        </Router>
    }
}
