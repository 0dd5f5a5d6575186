//! Headers on every response: a Content-Security-Policy that lets a page run only pipescope's
//! own scripts (and its few inline ones, by this response's nonce), no MIME sniffing, no
//! framing by other sites, no referrer sent to them.
//!
//! The nonce is made here, per request, and put among the request's extensions; the Leptos
//! render takes it from there ([`provide_nonce`]), so `HydrationScripts`, the theme script and
//! the streamed resource scripts carry the nonce this response's policy names.

use std::sync::LazyLock;

use axum::{
    extract::Request,
    http::{header, HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use leptos::nonce::Nonce;

/// Adds the headers; the policy is the same for every response (an API answer or a file is
/// never rendered as a page, and if it were, it could run nothing).
pub async fn secure(mut request: Request, next: Next) -> Response {
    let nonce = Nonce::new();
    request.extensions_mut().insert(nonce.clone());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce.to_string())) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it, browsers send `Origin: null` on the pages' own POSTs, which
    // the cross-site check (http::access) would then refuse.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// - scripts: pipescope's own files (the WASM loader, its chunks, the studio's editor) and the
///   inline scripts with this nonce; `'wasm-unsafe-eval'` lets the WASM compile, and allows
///   no `eval` of JavaScript;
/// - styles: the stylesheet and `<style>` elements with the nonce (the editor's, which it is
///   given); `style` attributes are allowed, because the server renders a few (a progress
///   bar's width, a timeline bar's place) and they cannot run anything;
/// - connections only to this server (the event stream, server functions), frames nowhere,
///   forms only here, no plugins, no `<base>`.
fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'nonce-{nonce}'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self'{}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
        *DEV_RELOAD
    )
}

/// `cargo leptos watch` runs the server with LEPTOS_WATCH set and the page opens a WebSocket
/// to its reload port; that connection is allowed then, and never in a normal run.
static DEV_RELOAD: LazyLock<&'static str> = LazyLock::new(|| {
    if std::env::var_os("LEPTOS_WATCH").is_some() {
        " ws: wss:"
    } else {
        ""
    }
});

/// For the Leptos render (each page's context): the nonce [`secure`] made for this request.
/// leptos_axum provides a nonce of its own first; this one replaces it, so the page and the
/// header agree.
pub fn provide_nonce() {
    use leptos::prelude::{provide_context, use_context};
    let nonce = use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Nonce>().cloned());
    if let Some(nonce) = nonce {
        provide_context(nonce);
    }
}
