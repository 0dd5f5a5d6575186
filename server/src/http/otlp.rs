//! `POST /v1/traces`: OpenTelemetry's OTLP/HTTP trace export. Point any OpenTelemetry SDK or
//! collector at pipescope (`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:3000`) and each trace
//! shows as a run, each span as a step (`crate::otlp` has the mapping).
//!
//! Both encodings of the specification: binary protobuf (`application/x-protobuf`) and JSON
//! (`application/json`), either one plain or gzip-compressed (`Content-Encoding: gzip`). The
//! answer uses the request's encoding: an empty `ExportTraceServiceResponse` on success, a
//! `google.rpc.Status` with the reason on failure (in JSON with pipescope's `error` too).
//!
//! The spans become ingest events and go through the ingest API's own publishing
//! ([`super::ingest::publish`]): the same checks, the same idempotency by client id, the same
//! all-or-nothing batch and the same answer-once-stored. A request with one bad span is refused
//! whole (400 naming it) and stores nothing.

use std::io::Read;

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::{
    error::ApiError,
    ingest::{self, IngestEvent},
};
use crate::{db::storable, otlp, state::AppState};

/// The OTLP/HTTP path for traces.
pub const TRACES_PATH: &str = "/v1/traces";
/// The protobuf media type OTLP/HTTP uses.
pub const PROTOBUF: &str = "application/x-protobuf";
/// Largest body as sent (compressed or not), as for the ingest API.
pub const MAX_BODY_BYTES: usize = ingest::MAX_BODY_BYTES;
/// Largest body once decompressed: gzip shrinks spans about tenfold, and a "zip bomb" must
/// not fill the memory.
pub const MAX_DECODED_BYTES: usize = 64 << 20;
/// Most spans in one request (an SDK's batch is 512 by default).
pub const MAX_SPANS: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new().route(TRACES_PATH, post(export))
}

/// `google.rpc.Status`, the body of an OTLP error answer (no crate we use defines it; it is
/// three fields, of which OTLP readers look at two).
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        let declared = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        // Parameters (`; charset=utf-8`) and case do not matter.
        let media = declared.split(';').next().unwrap_or_default().trim();
        match media.to_ascii_lowercase().as_str() {
            PROTOBUF | "application/protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            _ => {
                Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                    "send OTLP traces as Content-Type: {PROTOBUF} or application/json (given: {})",
                    if declared.is_empty() { "none" } else { declared }
                ),
                ))
            }
        }
    }

    fn decode(self, bytes: &[u8]) -> Result<ExportTraceServiceRequest, ApiError> {
        match self {
            Encoding::Protobuf => ExportTraceServiceRequest::decode(bytes).map_err(|e| {
                ApiError::bad_request(format!(
                    "malformed protobuf: {e}; the body must be an OTLP ExportTraceServiceRequest"
                ))
            }),
            Encoding::Json => serde_json::from_slice(bytes).map_err(|e| {
                ApiError::bad_request(format!(
                    "malformed OTLP/JSON: {e}; the body must be an ExportTraceServiceRequest \
                     ({{\"resourceSpans\": [...]}}, ids as hex strings)"
                ))
            }),
        }
    }

    fn success(self) -> Response {
        match self {
            Encoding::Protobuf => (
                [(header::CONTENT_TYPE, PROTOBUF)],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
                .into_response(),
            Encoding::Json => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
        }
    }

    /// The refusal in the request's encoding, keeping its status and `Retry-After`.
    fn failure(self, error: ApiError) -> Response {
        let code = grpc_code(error.status);
        let mut response = match self {
            Encoding::Protobuf => (
                error.status,
                [(header::CONTENT_TYPE, PROTOBUF)],
                RpcStatus {
                    code,
                    message: error.error.clone(),
                }
                .encode_to_vec(),
            )
                .into_response(),
            Encoding::Json => {
                let mut body = serde_json::json!({
                    "code": code,
                    "message": error.error,
                    "error": error.error,
                });
                if let Some(path) = &error.path {
                    body["path"] = serde_json::json!(path);
                }
                (error.status, axum::Json(body)).into_response()
            }
        };
        if let Some(seconds) = error.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The gRPC code OTLP pairs with an HTTP status.
fn grpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        403 => 7,        // PERMISSION_DENIED
        413 | 429 => 8,  // RESOURCE_EXHAUSTED
        500..=599 => 14, // UNAVAILABLE
        _ => 3,          // INVALID_ARGUMENT
    }
}

async fn export(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let encoding = match Encoding::of(&headers) {
        Ok(encoding) => encoding,
        Err(error) => return error.into_response(),
    };
    match receive(&state, &headers, body, encoding).await {
        Ok(()) => encoding.success(),
        Err(error) => encoding.failure(error),
    }
}

async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
) -> Result<(), ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is larger than {} MiB; export smaller batches",
                    MAX_BODY_BYTES >> 20
                ),
            )
        })?;
    let bytes = decompress(headers, bytes)?;
    let request = encoding.decode(&bytes)?;
    let mut translation = otlp::translate(&request, state.engine.prices()).map_err(|invalid| {
        let mut error = ApiError::bad_request(invalid.to_string());
        error.path = Some(invalid.path);
        error
    })?;
    if translation.spans == 0 {
        return Ok(());
    }
    if translation.spans > MAX_SPANS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} spans in one request; at most {MAX_SPANS} are accepted",
                translation.spans
            ),
        ));
    }
    otlp::add_stored_totals(&state.pool, &mut translation)
        .await
        .map_err(|e| ApiError::internal("the store could not be read", e))?;
    let events = std::mem::take(&mut translation.events)
        .into_iter()
        .map(|event| {
            // Span text may hold a NUL (protobuf strings may); the store cannot.
            storable::check(&event.body, true).map_err(|refused| {
                ingest::unstorable(
                    StatusCode::BAD_REQUEST,
                    &span_of(&event.id),
                    &event.body,
                    refused,
                )
            })?;
            Ok(IngestEvent {
                id: Some(event.id),
                at: Some(event.at),
                body: event.body,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    ingest::publish(state, events).await?;
    state.open_traces.forget(&translation.closed);
    state.open_traces.touch(translation.open.iter().copied());
    Ok(())
}

/// "span <id> of trace <id>" from an event's client id (`otlp/<trace>/<span>/<what>`).
fn span_of(client_id: &str) -> String {
    let mut parts = client_id.split('/').skip(1);
    match (parts.next(), parts.next()) {
        (Some(trace), Some(span)) if span.len() == 16 => format!("span {span} of trace {trace}"),
        (Some(trace), _) => format!("trace {trace}"),
        _ => client_id.to_owned(),
    }
}

/// The body as sent, gunzipped when `Content-Encoding: gzip` says so.
fn decompress(headers: &HeaderMap, bytes: bytes::Bytes) -> Result<bytes::Bytes, ApiError> {
    let coding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "" | "identity" => Ok(bytes),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(bytes.len() * 4);
            flate2::read::GzDecoder::new(bytes.as_ref())
                .take(MAX_DECODED_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::bad_request(format!("malformed gzip body: {e}")))?;
            if out.len() > MAX_DECODED_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the body is larger than {} MiB once decompressed; export smaller batches",
                        MAX_DECODED_BYTES >> 20
                    ),
                ));
            }
            Ok(out.into())
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {other:?} is not supported; send gzip or no compression"),
        )),
    }
}
