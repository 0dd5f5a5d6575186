//! What the HTTP providers share: where to connect and with which key, sending a request and
//! classifying a refusal, and reading a server-sent-event body through a provider's wire format.

use std::{
    error::Error as StdError,
    fmt,
    time::{Duration, SystemTime},
};

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::StreamExt;
use reqwest::{header::HeaderMap, RequestBuilder, Response, StatusCode, Url};

use crate::{config::HttpConfig, Delta, DeltaStream, ErrorKind, ProviderError};

/// A provider's fixed facts: its name in messages, public API and environment variables.
pub(crate) struct Defaults {
    pub label: &'static str,
    pub base_url: &'static str,
    pub base_url_env: &'static str,
    /// Tried in order; the first names the variable in the missing-key message.
    pub key_envs: &'static [&'static str],
}

/// One configured instance's connection: base URL, key, and the client that reaches them.
pub(crate) struct Endpoint {
    pub label: &'static str,
    client: reqwest::Client,
    base_url: Url,
    key: Option<String>,
    /// Where the key is read from (see [`crate::Connection::key_source`]).
    key_source: String,
    /// What to tell the user when a call needs a key and there is none.
    missing_key: String,
}

impl fmt::Debug for Endpoint {
    // Keys never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Endpoint {
    pub fn new(
        instance: &str,
        config: &HttpConfig,
        env: &dyn Fn(&str) -> Option<String>,
        defaults: &Defaults,
    ) -> Result<Self, String> {
        // An empty variable counts as unset: `export OPENAI_API_KEY=` is how people unset one.
        let env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let (base_url, source) = match (&config.base_url, env(defaults.base_url_env)) {
            (Some(url), _) => (url.clone(), "base_url".to_owned()),
            (None, Some(url)) => (url, defaults.base_url_env.to_owned()),
            (None, None) => (defaults.base_url.to_owned(), "base_url".to_owned()),
        };
        let base_url = parse_base_url(&base_url).map_err(|why| {
            format!("provider {instance}: {source} {base_url:?} is not usable: {why}")
        })?;

        let key_env = config
            .api_key_env
            .as_deref()
            .unwrap_or(defaults.key_envs[0]);
        let from_file = config.api_key.clone().filter(|key| !key.trim().is_empty());
        // Where the key came from, or (when there is none) the variable the missing-key
        // message names.
        let (key, key_source) = match (from_file, &config.api_key_env) {
            (Some(key), _) => (Some(key), "config file".to_owned()),
            (None, Some(name)) => (env(name), format!("environment {name}")),
            (None, None) => defaults
                .key_envs
                .iter()
                .find_map(|name| Some((env(name)?, *name)))
                .map_or((None, format!("environment {key_env}")), |(key, name)| {
                    (Some(key), format!("environment {name}"))
                }),
        };
        let key = key.map(|key| key.trim().to_owned());

        let client = reqwest::Client::builder()
            .user_agent(concat!("pipescope/", env!("CARGO_PKG_VERSION")))
            // Only the connect phase: a response may legitimately stream for minutes, and the
            // engine owns the overall timeout.
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("provider {instance}: cannot set up HTTP: {}", describe(&e)))?;

        Ok(Self {
            label: defaults.label,
            client,
            base_url,
            key,
            key_source,
            missing_key: format!(
                "{key_env} is not set: export it or set api_key in [providers.{instance}] of the config file"
            ),
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Base URL and key state, without the key.
    pub fn connection(&self) -> crate::Connection {
        crate::Connection {
            base_url: self.base_url.as_str().to_owned(),
            key_set: self.key.is_some(),
            key_source: self.key_source.clone(),
        }
    }

    /// The key, or the `Auth` error that says how to provide one.
    pub fn require_key(&self) -> Result<&str, ProviderError> {
        self.key.as_deref().ok_or_else(|| ProviderError {
            kind: ErrorKind::Auth,
            message: self.missing_key.clone(),
            retry_after: None,
        })
    }

    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// `path` appended to the base URL (which may itself have a path, like `/v1`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.as_str().trim_end_matches('/'))
    }

    pub fn post(&self, url: &str) -> RequestBuilder {
        self.client.post(url)
    }

    /// Sends the request; a response that is not a success becomes a classified error, with
    /// the provider's own message pulled out of its error body by `parse_error`.
    pub async fn send(
        &self,
        url: &str,
        request: RequestBuilder,
        parse_error: fn(&str) -> Option<ErrorDetail>,
    ) -> Result<Response, ProviderError> {
        let response = request.send().await.map_err(|e| {
            let why = if e.is_connect() {
                "could not connect to"
            } else if e.is_timeout() {
                "timed out connecting to"
            } else {
                "request failed to"
            };
            self.error(
                ErrorKind::Network,
                format!("{} {why} {url}: {}", self.label, describe(&e)),
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return self.expect_stream(response).await;
        }

        let header_delay = retry_after(response.headers());
        // A body that fails to arrive still leaves the status to report.
        let body = response.text().await.unwrap_or_default();
        let detail = parse_error(&body);
        let said = match &detail {
            Some(detail) => detail.message.clone(),
            None if body.trim().is_empty() => "(no error message)".to_owned(),
            None => snippet(&body),
        };
        let kind = detail
            .as_ref()
            .and_then(|d| d.kind)
            .unwrap_or_else(|| kind_for_status(status));
        Err(ProviderError {
            retry_after: header_delay.or(detail.and_then(|d| d.retry_after)),
            ..self.error(kind, format!("{} returned {status}: {said}", self.label))
        })
    }

    /// A success that is plainly not an event stream (a server that ignored `stream: true`, a
    /// proxy's HTML page) is reported with what came instead. Other content types are read as
    /// events: some compatible servers label their streams loosely.
    async fn expect_stream(&self, response: Response) -> Result<Response, ProviderError> {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !(content_type.starts_with("application/json") || content_type.starts_with("text/html"))
        {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(self.error(
            ErrorKind::Malformed,
            format!(
                "{} answered with {content_type} instead of an event stream: {}",
                self.label,
                snippet(&body)
            ),
        ))
    }

    /// An error whose message is scrubbed of this instance's key, whoever wrote it.
    pub fn error(&self, kind: ErrorKind, message: String) -> ProviderError {
        let message = match &self.key {
            // Providers echo (partly masked) keys in 401 messages; never pass ours on.
            Some(key) if key.len() >= 8 => message.replace(key.as_str(), "<redacted>"),
            _ => message,
        };
        ProviderError {
            kind,
            message,
            retry_after: None,
        }
    }
}

fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https, not {}",
            url.scheme()
        ));
    }
    if url.host_str().is_none() {
        return Err("it has no host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("it must not have a query or fragment".to_owned());
    }
    Ok(url)
}

/// What a provider's error body said.
pub(crate) struct ErrorDetail {
    pub message: String,
    /// From the body (Gemini's `RetryInfo`); a header wins over it.
    pub retry_after: Option<Duration>,
    /// The body's own classification, when it knows better than the status.
    pub kind: Option<ErrorKind>,
}

pub(crate) fn kind_for_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        429 => ErrorKind::RateLimited,
        401 | 403 => ErrorKind::Auth,
        // A request timeout is the server's side giving up: as retryable as a 5xx.
        408 => ErrorKind::Server,
        400..=499 => ErrorKind::InvalidRequest,
        // 5xx and Anthropic's 529 "overloaded"; also anything unexpected (a 3xx the client did
        // not follow), which a retry may get past.
        _ => ErrorKind::Server,
    }
}

/// `retry-after-ms` (OpenAI, Anthropic) or `retry-after` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if let Ok(delay) = Duration::try_from_secs_f64(ms / 1000.0) {
            return Some(delay);
        }
    }
    let value = header("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    // A date already past means "now".
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// A protobuf JSON duration such as `"2s"` or `"0.500s"` (Gemini's `RetryInfo.retryDelay`).
pub(crate) fn parse_proto_duration(text: &str) -> Option<Duration> {
    let seconds: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// An error with its causes, which is where reqwest keeps "Connection refused".
pub(crate) fn describe(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The start of a body that is not the provider's error format, to show what came back.
pub(crate) fn snippet(text: &str) -> String {
    const MAX: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A provider's streaming format: turns its events into deltas and knows its terminal marker.
pub(crate) trait WireFormat: Send + 'static {
    /// Handles one event, pushing what it carries onto `out`; `Ok(true)` once the response is
    /// complete and nothing more needs reading.
    fn on_event(&mut self, event: &Event, out: &mut Vec<Delta>) -> Result<bool, ProviderError>;

    /// The body ended before `on_event` returned `Ok(true)`; Gemini, which has no terminal
    /// event, finishes here, the others report the response as cut short.
    fn on_end(&mut self, out: &mut Vec<Delta>) -> Result<(), ProviderError>;
}

pub(crate) fn cut_short(label: &str) -> ProviderError {
    ProviderError {
        kind: ErrorKind::Network,
        message: format!("{label}: the stream ended before the response was complete"),
        retry_after: None,
    }
}

pub(crate) fn malformed(label: &str, what: &str, data: &str) -> ProviderError {
    ProviderError {
        kind: ErrorKind::Malformed,
        message: format!("{label} sent {what}: {}", snippet(data)),
        retry_after: None,
    }
}

/// The response body as deltas. The stream owns the response, so dropping it closes the
/// connection and the provider stops generating.
pub(crate) fn read_events<W: WireFormat>(
    response: Response,
    mut wire: W,
    label: &'static str,
) -> DeltaStream {
    let mut events = response.bytes_stream().eventsource();
    Box::pin(async_stream::stream! {
        let mut out = Vec::new();
        loop {
            let step = match events.next().await {
                Some(Ok(event)) => wire.on_event(&event, &mut out),
                None => wire.on_end(&mut out).map(|()| true),
                Some(Err(EventStreamError::Transport(e))) => Err(ProviderError {
                    message: format!("{} ({})", cut_short(label).message, describe(&e)),
                    ..cut_short(label)
                }),
                Some(Err(EventStreamError::Utf8(e))) => {
                    Err(malformed(label, "a stream that is not UTF-8", &e.to_string()))
                }
                Some(Err(EventStreamError::Parser(e))) => {
                    Err(malformed(label, "a stream that is not server-sent events", &e.to_string()))
                }
            };
            for delta in out.drain(..) {
                yield Ok(delta);
            }
            match step {
                Ok(false) => {}
                Ok(true) => break,
                Err(error) => {
                    yield Err(error);
                    break;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("valid header"));
        }
        map
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1"), ("retry-after-ms", "250")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn proto_durations() {
        assert_eq!(parse_proto_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_proto_duration("0.500s"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_proto_duration("2"), None);
    }

    #[test]
    fn statuses() {
        let kind = |code| kind_for_status(StatusCode::from_u16(code).expect("valid status"));
        assert_eq!(kind(429), ErrorKind::RateLimited);
        for code in [500, 502, 503, 504, 529] {
            assert_eq!(kind(code), ErrorKind::Server, "{code}");
        }
        assert_eq!(kind(401), ErrorKind::Auth);
        assert_eq!(kind(403), ErrorKind::Auth);
        for code in [400, 404, 422] {
            assert_eq!(kind(code), ErrorKind::InvalidRequest, "{code}");
        }
    }
}
