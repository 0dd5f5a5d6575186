//! Limits per client, so that one client (a runaway script, a reconnect loop, a flood) cannot
//! take what every other client needs: open event streams (in all and per client), ingest
//! requests per second and requests that start runs per second. A request over a limit is
//! answered 429 with `Retry-After` and a message naming the limit and its flag; refusals are
//! counted in `/healthz`. The number of runs executing at once is the engine's limit
//! (`--max-running`); its refusals are counted here too.
//!
//! A client is the address the connection comes from, or, from a trusted reverse proxy, the
//! address its `X-Forwarded-For` names (see [`Limits::trusted_proxies`]).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use governor::{
    clock::{Clock, DefaultClock},
    DefaultKeyedRateLimiter, Quota, RateLimiter,
};
use serde::Serialize;

use super::{error::ApiError, paths};

/// The limits, from the command line ([`crate::config::Config::limits`]).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_streams: u32,
    pub max_streams_per_client: u32,
    pub ingest_per_sec: u32,
    pub runs_per_sec: u32,
    /// Reverse proxies whose `X-Forwarded-For` is believed. Anyone else could write any address
    /// there and so escape their own limits, or use up another client's.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Limits {
    /// The flags' defaults: far above what a browser or a batching client needs, low enough
    /// that a loop cannot exhaust memory or the database.
    fn default() -> Self {
        Self {
            max_streams: 10_000,
            max_streams_per_client: 1_000,
            ingest_per_sec: 1_000,
            runs_per_sec: 20,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Refusals so far and the streams open now, as `/healthz` reports them.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct LimitStats {
    pub streams_open: usize,
    pub refused_streams: u64,
    pub refused_ingest: u64,
    pub refused_run_starts: u64,
}

/// The limits' state: streams open per client and each client's request rates.
pub struct Limiter {
    limits: Limits,
    open: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, u32>>,
    ingest: DefaultKeyedRateLimiter<IpAddr>,
    runs: DefaultKeyedRateLimiter<IpAddr>,
    /// Rate checks since clients that went quiet were last forgotten.
    checks: AtomicU64,
    refused_streams: AtomicU64,
    refused_ingest: AtomicU64,
    refused_runs: AtomicU64,
    /// The server functions that start runs (their paths come from the app).
    run_functions: Vec<&'static str>,
}

/// What a request costs, by its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cost {
    Stream,
    Ingest,
    RunStart,
    Free,
}

/// How often the rate limiters forget clients that have not been seen for a second or more.
const FORGET_EVERY: u64 = 4_096;

impl Limiter {
    pub fn new(limits: Limits) -> Self {
        use leptos::server_fn::ServerFn;
        Self {
            open: AtomicUsize::new(0),
            per_client: Mutex::default(),
            ingest: RateLimiter::keyed(quota(limits.ingest_per_sec)),
            runs: RateLimiter::keyed(quota(limits.runs_per_sec)),
            checks: AtomicU64::new(0),
            refused_streams: AtomicU64::new(0),
            refused_ingest: AtomicU64::new(0),
            refused_runs: AtomicU64::new(0),
            run_functions: vec![
                app::functions::RunPipeline::PATH,
                app::functions::StartBatch::PATH,
            ],
            limits,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn stats(&self) -> LimitStats {
        LimitStats {
            streams_open: self.open.load(Ordering::Relaxed),
            refused_streams: self.refused_streams.load(Ordering::Relaxed),
            refused_ingest: self.refused_ingest.load(Ordering::Relaxed),
            refused_run_starts: self.refused_runs.load(Ordering::Relaxed),
        }
    }

    fn cost(&self, method: &Method, path: &str) -> Cost {
        let route = paths::route_of(path);
        if *method == Method::GET && route == Some("events") {
            return Cost::Stream;
        }
        if *method != Method::POST {
            return Cost::Free;
        }
        // OpenTelemetry's trace export is ingest too, outside /api/ by its specification.
        if route == Some("ingest/events") || path == super::otlp::TRACES_PATH {
            return Cost::Ingest;
        }
        let starts_run = route.is_some_and(|route| {
            route == "executions"
                || route == "batches"
                || (route.starts_with("executions/")
                    && (route.ends_with("/rerun") || route.ends_with("/replay")))
        }) || self.run_functions.contains(&path);
        if starts_run {
            Cost::RunStart
        } else {
            Cost::Free
        }
    }

    /// Who is asking: the connection's address, or the client a trusted proxy names.
    fn client(&self, request: &Request) -> IpAddr {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| {
                info.0.ip().to_canonical()
            });
        if !self.limits.trusted_proxies.contains(&peer) {
            return peer;
        }
        // The proxy appends the address it saw; earlier entries were written by the client or
        // by proxies further out, so only the last one not of ours is believed.
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect::<Vec<_>>();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !self.limits.trusted_proxies.contains(ip))
            .unwrap_or(peer)
    }

    /// A place for one more event stream of `client`, held until the stream ends.
    fn open_stream(self: &Arc<Self>, client: IpAddr) -> Result<StreamPlace, ApiError> {
        let mut per_client = self
            .per_client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = self.open.load(Ordering::Relaxed);
        let held = per_client.get(&client).copied().unwrap_or(0);
        let refusal = if open >= self.limits.max_streams as usize {
            Some(format!(
                "{open} live event streams are open, the most this server allows \
                 (--max-streams / PIPESCOPE_MAX_STREAMS); try again later"
            ))
        } else if held >= self.limits.max_streams_per_client {
            Some(format!(
                "{client} already holds {held} live event streams, the most one client may \
                 (--max-streams-per-client / PIPESCOPE_MAX_STREAMS_PER_CLIENT); close some first"
            ))
        } else {
            None
        };
        if let Some(message) = refusal {
            self.refused_streams.fetch_add(1, Ordering::Relaxed);
            return Err(too_many(message, STREAM_RETRY));
        }
        *per_client.entry(client).or_insert(0) += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(StreamPlace {
            limiter: self.clone(),
            client,
        })
    }

    /// Takes one request from `client`'s allowance of `cost`, or says when to come back.
    fn take(&self, cost: Cost, client: IpAddr) -> Result<(), ApiError> {
        let (limiter, rate, flag, refused) = match cost {
            Cost::Ingest => (
                &self.ingest,
                self.limits.ingest_per_sec,
                "--ingest-rate / PIPESCOPE_INGEST_RATE",
                &self.refused_ingest,
            ),
            Cost::RunStart => (
                &self.runs,
                self.limits.runs_per_sec,
                "--run-rate / PIPESCOPE_RUN_RATE",
                &self.refused_runs,
            ),
            Cost::Stream | Cost::Free => return Ok(()),
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.ingest.retain_recent();
            self.runs.retain_recent();
        }
        limiter.check_key(&client).map_err(|not_until| {
            refused.fetch_add(1, Ordering::Relaxed);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let what = if cost == Cost::Ingest {
                "ingest requests"
            } else {
                "requests that start runs"
            };
            too_many(
                format!(
                    "{client} sends more than {rate} {what} a second, the most one client may \
                     ({flag}); send fewer, larger batches or slow down"
                ),
                wait,
            )
        })
    }
}

/// An event stream's place, given back when the stream ends (its body is dropped).
struct StreamPlace {
    limiter: Arc<Limiter>,
    client: IpAddr,
}

impl Drop for StreamPlace {
    fn drop(&mut self) {
        let mut per_client = self
            .limiter
            .per_client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(held) = per_client.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                per_client.remove(&self.client);
            }
        }
        self.limiter.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// When a refused stream may try again: places free up as other streams end, which no one
/// can predict; a browser's reconnect waits about this long anyway.
const STREAM_RETRY: Duration = Duration::from_secs(5);

/// A sustained `per_sec` with bursts of twice that: a client that was quiet may catch up.
fn quota(per_sec: u32) -> Quota {
    let rate = NonZeroU32::new(per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(per_sec.saturating_mul(2).max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

fn too_many(message: String, wait: Duration) -> ApiError {
    let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message);
    // Whole seconds, rounded up: a client that waits what it is told is then let in.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    error.retry_after = Some(seconds.max(1));
    error
}

/// The middleware: charges each request to its client before it is served.
pub async fn guard(State(limiter): State<Arc<Limiter>>, request: Request, next: Next) -> Response {
    let cost = limiter.cost(request.method(), request.uri().path());
    if cost == Cost::Free {
        return next.run(request).await;
    }
    let client = limiter.client(&request);
    match cost {
        Cost::Stream => {
            let place = match limiter.open_stream(client) {
                Ok(place) => place,
                Err(refusal) => return refusal.into_response(),
            };
            let response = next.run(request).await;
            if !response.status().is_success() {
                return response;
            }
            // The place goes with the body: it is given back when the stream ends or the
            // client goes away.
            response.map(|body| {
                Body::from_stream(body.into_data_stream().map(move |chunk| {
                    let _held = &place;
                    chunk
                }))
            })
        }
        _ => {
            if let Err(refusal) = limiter.take(cost, client) {
                return refusal.into_response();
            }
            let response = next.run(request).await;
            // The engine's own limit (runs executing at once) is counted with the rest.
            if cost == Cost::RunStart && response.status() == StatusCode::TOO_MANY_REQUESTS {
                limiter.refused_runs.fetch_add(1, Ordering::Relaxed);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, path: &str, peer: &str, forwarded: Option<&str>) -> Request {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(forwarded) = forwarded {
            builder = builder.header("x-forwarded-for", forwarded);
        }
        let mut request = builder.body(Body::empty()).expect("request");
        let peer: SocketAddr = peer.parse().expect("address");
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }

    #[test]
    fn costs_follow_method_and_path() {
        let limiter = Limiter::new(Limits::default());
        let cost = |method: Method, path: &str| limiter.cost(&method, path);
        assert_eq!(cost(Method::GET, "/api/events"), Cost::Stream);
        assert_eq!(cost(Method::POST, "/api/ingest/events"), Cost::Ingest);
        assert_eq!(cost(Method::POST, "/v1/traces"), Cost::Ingest);
        assert_eq!(cost(Method::POST, "/api/executions"), Cost::RunStart);
        assert_eq!(cost(Method::POST, "/api/batches"), Cost::RunStart);
        assert_eq!(
            cost(Method::POST, "/api/executions/x/rerun"),
            Cost::RunStart
        );
        assert_eq!(
            cost(Method::POST, "/api/executions/x/steps/draft/replay"),
            Cost::RunStart
        );
        assert_eq!(cost(Method::POST, "/api/executions/x/cancel"), Cost::Free);
        // The versioned paths cost what their aliases do.
        assert_eq!(cost(Method::GET, "/api/v1/events"), Cost::Stream);
        assert_eq!(cost(Method::POST, "/api/v1/ingest/events"), Cost::Ingest);
        assert_eq!(cost(Method::POST, "/api/v1/executions"), Cost::RunStart);
        assert_eq!(cost(Method::POST, "/api/v1/batches"), Cost::RunStart);
        assert_eq!(
            cost(Method::POST, "/api/v1/executions/x/steps/draft/replay"),
            Cost::RunStart
        );
        assert_eq!(cost(Method::POST, "/api/v1/executions/x/pause"), Cost::Free);
        assert_eq!(cost(Method::GET, "/api/executions"), Cost::Free);
        use leptos::server_fn::ServerFn;
        assert_eq!(
            cost(Method::POST, app::functions::RunPipeline::PATH),
            Cost::RunStart
        );
    }

    #[test]
    fn a_forwarded_address_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        let limiter = Limiter::new(Limits {
            trusted_proxies: vec![proxy],
            ..Limits::default()
        });
        let client = |peer, forwarded| limiter.client(&request(Method::GET, "/", peer, forwarded));
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        // Not a proxy: what it writes is ignored.
        assert_eq!(
            client("192.0.2.7:5000", Some("198.51.100.1")),
            ip("192.0.2.7")
        );
        // The proxy: the last address that is not one of ours; what the client put first is not
        // believed.
        assert_eq!(
            client("10.0.0.1:5000", Some("203.0.113.9, 198.51.100.4, 10.0.0.1")),
            ip("198.51.100.4")
        );
        assert_eq!(client("10.0.0.1:5000", None), proxy);
        assert_eq!(client("[::ffff:192.0.2.8]:1", None), ip("192.0.2.8"));
    }

    #[test]
    fn a_rate_refusal_says_which_limit_and_when_to_come_back() {
        let limiter = Limiter::new(Limits {
            runs_per_sec: 1,
            ..Limits::default()
        });
        let client: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        // A burst of two, then refused; another client is not affected.
        assert!(limiter.take(Cost::RunStart, client).is_ok());
        assert!(limiter.take(Cost::RunStart, client).is_ok());
        let refusal = limiter
            .take(Cost::RunStart, client)
            .expect_err("over the rate");
        assert_eq!(refusal.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refusal.retry_after, Some(1));
        assert!(refusal.error.contains("--run-rate"), "{}", refusal.error);
        assert!(limiter.take(Cost::RunStart, other).is_ok());
        assert_eq!(limiter.stats().refused_run_starts, 1);
    }

    #[test]
    fn stream_places_are_given_back() {
        let limiter = Arc::new(Limiter::new(Limits {
            max_streams: 3,
            max_streams_per_client: 2,
            ..Limits::default()
        }));
        let (a, b): (IpAddr, IpAddr) = (
            "192.0.2.1".parse().expect("ip"),
            "192.0.2.2".parse().expect("ip"),
        );
        let first = limiter.open_stream(a).expect("first");
        let _second = limiter.open_stream(a).expect("second");
        let refusal = limiter.open_stream(a).err().expect("third of one client");
        assert!(
            refusal.error.contains("--max-streams-per-client"),
            "{}",
            refusal.error
        );
        let _third = limiter.open_stream(b).expect("another client");
        let refusal = limiter.open_stream(b).err().expect("over the total");
        assert!(
            refusal.error.contains("--max-streams "),
            "{}",
            refusal.error
        );
        drop(first);
        assert_eq!(limiter.stats().streams_open, 2);
        assert!(limiter.open_stream(a).is_ok());
        assert_eq!(limiter.stats().refused_streams, 2);
    }
}
