//! How the static bundles under `/pkg/` (the WASM and its chunks) and `/editor/` (the studio's
//! editor) are cached.

use axum::http::{header, HeaderValue};
use axum::{extract::Request, middleware::Next, response::Response};

/// The bundles' files keep their names from build to build, and the chunks of a split WASM
/// module fit only the module they were split from: browsers revalidate them on every load (a
/// 304 when unchanged), so a restart on a new build never mixes two builds' files.
pub async fn revalidate_bundle(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let bundle = path.starts_with("/pkg/") || path.starts_with("/editor/");
    let mut response = next.run(request).await;
    if bundle {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}
