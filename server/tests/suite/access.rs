//! Access: tokens and the read-only token, the login cookie, cross-site writes, DNS rebinding,
//! what ingest and a YAML run may touch, the refusal to listen beyond loopback without a token,
//! and the security headers. Each test talks to a real server over a socket.

use std::{collections::BTreeSet, net::SocketAddr};

use app::functions::{effects, Effect};
use leptos::server_fn::ServerFn;
use reqwest::{header, redirect, Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use server::http::access::{Policy, Token, READ_ONLY_POSTS};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common;

const WRITE: &str = "write-token-0123456789abcdef";
const READ: &str = "read-token-0123456789abcdef";
const ONE_STEP: &str = "name: one\nsteps:\n  - name: a\n    provider: instant\n    prompt: hi\n";

fn tokens() -> Policy {
    let token = |text| Token::parse(text).expect("token");
    Policy::new(Some(token(WRITE)), Some(token(READ)), Vec::new(), true).expect("policy")
}

async fn serve(pool: PgPool, policy: Policy) -> SocketAddr {
    let state = common::state_with_providers(pool, Default::default(), &|_| None, Vec::new()).await;
    common::serve_with(state, policy).await
}

/// Who a request is sent as.
#[derive(Debug, Clone, Copy)]
enum Who<'a> {
    Nobody,
    Bearer(&'a str),
    /// A `name=value` session cookie.
    Cookie(&'a str),
}

/// A request to `path` as `who`, with a client that shows redirects instead of following them.
fn request(addr: SocketAddr, method: Method, path: &str, who: Who) -> RequestBuilder {
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client");
    let request = client.request(method, format!("http://{addr}{path}"));
    match who {
        Who::Nobody => request,
        Who::Bearer(token) => request.bearer_auth(token),
        Who::Cookie(cookie) => request.header(header::COOKIE, cookie),
    }
}

async fn get(addr: SocketAddr, path: &str, who: Who<'_>) -> Response {
    let sent = request(addr, Method::GET, path, who).send().await;
    sent.expect("GET")
}

async fn post(addr: SocketAddr, path: &str, body: &Value, who: Who<'_>) -> Response {
    let sent = request(addr, Method::POST, path, who)
        .json(body)
        .send()
        .await;
    sent.expect("POST")
}

async fn error_of(response: Response) -> String {
    let body: Value = response.json().await.expect("a JSON error");
    body["error"].as_str().expect("an error message").to_owned()
}

async fn count(pool: &PgPool, query: &str) -> i64 {
    sqlx::query_scalar(query)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// Every API route, at its versioned path and at its alias, with a request of a form it
/// accepts (ids need not exist: what is checked comes first), every server function, and
/// whether each changes something.
fn api_routes() -> Vec<(Method, String, bool)> {
    let id = Uuid::new_v4();
    let mut routes = Vec::new();
    for prefix in ["/api/v1", "/api"] {
        let reads = [
            "state",
            "events",
            "bus/stats",
            "logs",
            "logs/export",
            "history",
            "history/export",
            "pipelines",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([
            format!("executions/{id}"),
            format!("batches/{id}"),
            format!("executions/{id}/transcript"),
        ])
        .map(|route| (Method::GET, format!("{prefix}/{route}"), false));
        let writes = ["pause", "resume", "cancel", "rerun", "steps/a/replay"]
            .into_iter()
            .map(|action| format!("executions/{id}/{action}"))
            .chain(["ingest/events".into(), "executions".into()])
            .chain(["batches".into(), format!("batches/{id}/cancel")])
            .map(|route| (Method::POST, format!("{prefix}/{route}"), true));
        let validate = (
            Method::POST,
            format!("{prefix}/{}", READ_ONLY_POSTS[0]),
            false,
        );
        routes.extend(reads.chain(writes).chain([validate]));
    }
    // OpenTelemetry's trace export, outside /api/ by its specification.
    routes.push((Method::POST, "/v1/traces".into(), true));
    let functions = effects()
        .into_iter()
        .map(|(path, effect)| (Method::POST, path.to_owned(), effect == Effect::Changes));
    routes.extend(functions);
    routes
}

async fn call(addr: SocketAddr, method: &Method, path: &str, who: Who<'_>) -> Response {
    let request = request(addr, method.clone(), path, who);
    let request = if method == Method::POST {
        request.json(&json!({}))
    } else {
        request
    };
    request.send().await.expect("request")
}

#[sqlx::test(migrations = "../migrations")]
async fn every_api_route_and_server_function_needs_the_token(pool: PgPool) {
    let addr = serve(pool, tokens()).await;
    for (method, path, _) in api_routes() {
        for who in [Who::Nobody, Who::Bearer("not-the-token-0123456789")] {
            let response = call(addr, &method, &path, who).await;
            let status = response.status();
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} as {who:?}"
            );
            assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
            assert!(
                error_of(response).await.contains("token"),
                "{method} {path}"
            );
        }
    }
    // Pages send the browser to the login page, and back afterwards.
    for (page, next) in [
        ("/", "/"),
        ("/logs?level=error", "/logs%3Flevel%3Derror"),
        ("/pipelines/new", "/pipelines/new"),
    ] {
        let response = get(addr, page, Who::Nobody).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        let location = &response.headers()[header::LOCATION];
        assert_eq!(location, &format!("/login?next={next}"));
    }
    // Public: the health check says up or down and nothing else; the login page.
    let health = get(addr, "/healthz", Who::Nobody).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        health.json::<Value>().await.expect("json"),
        json!({"status": "ok"})
    );
    assert_eq!(
        get(addr, "/login", Who::Nobody).await.status(),
        StatusCode::OK
    );
    // With the token, the details.
    let health: Value = get(addr, "/healthz", Who::Bearer(WRITE))
        .await
        .json()
        .await
        .expect("json");
    assert!(health["running_executions"].is_number(), "{health}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_read_token_watches_and_cannot_change_anything(pool: PgPool) {
    let addr = serve(pool.clone(), tokens()).await;
    for (method, path, changes) in api_routes() {
        let response = call(addr, &method, &path, Who::Bearer(READ)).await;
        let status = response.status();
        if changes {
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
            assert!(
                error_of(response).await.contains("read-only token"),
                "{path}"
            );
        } else {
            let refused = [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN];
            assert!(!refused.contains(&status), "{method} {path}: {status}");
        }
    }
    // Reads succeed: the list, the live stream, a server function that reads.
    let list = get(addr, "/api/pipelines", Who::Bearer(READ)).await;
    assert_eq!(list.status(), StatusCode::OK);
    let stream = get(addr, "/api/events", Who::Bearer(READ)).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()[header::CONTENT_TYPE], "text/event-stream");
    drop(stream);
    let health = request(
        addr,
        Method::POST,
        app::functions::GetHealth::PATH,
        Who::Bearer(READ),
    )
    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
    .send()
    .await
    .expect("server function");
    assert_eq!(health.status(), StatusCode::OK);
    // None of the refused writes started anything; the full token starts a run.
    let runs = count(&pool, "SELECT count(*) FROM pipeline_executions").await;
    assert_eq!(runs, 0);
    let run = json!({"yaml": ONE_STEP});
    let started = post(addr, "/api/executions", &run, Who::Bearer(WRITE)).await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
}

/// A new server function must be given its effect in `app::functions::effects`, or the access
/// check could not tell whether a read-only token may call it.
#[test]
fn every_server_function_is_classified() {
    let registered: BTreeSet<&str> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path)
        .collect();
    let classified: BTreeSet<&str> = effects().iter().map(|(path, _)| *path).collect();
    assert!(!registered.is_empty());
    let missing: Vec<_> = registered.difference(&classified).collect();
    assert!(
        missing.is_empty(),
        "not in app::functions::effects: {missing:?}"
    );
    let stale: Vec<_> = classified.difference(&registered).collect();
    assert!(stale.is_empty(), "classified but not registered: {stale:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_login_page_sets_a_session_cookie(pool: PgPool) {
    let addr = serve(pool, tokens()).await;
    let login = |token: &str, proto: &str| {
        request(addr, Method::POST, "/login", Who::Nobody)
            .header("x-forwarded-proto", proto)
            .form(&[("token", token), ("next", "/logs?level=warn")])
            .send()
    };
    let wrong = login("not-the-token-0123456789", "http")
        .await
        .expect("login");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    assert!(wrong.text().await.expect("page").contains("not valid"));

    let signed_in = login(READ, "http").await.expect("login");
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()[header::LOCATION], "/logs?level=warn");
    let cookie = signed_in.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(
        !cookie.contains(READ),
        "the cookie holds no token: {cookie}"
    );
    let session = cookie.split(';').next().expect("name=value").to_owned();

    // The session opens pages and reads; the read-only one still cannot write.
    let page = get(addr, "/", Who::Cookie(&session)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("html").contains("<!DOCTYPE html>"));
    let list = get(addr, "/api/pipelines", Who::Cookie(&session)).await;
    assert_eq!(list.status(), StatusCode::OK);
    let run = json!({"yaml": ONE_STEP});
    let start = post(addr, "/api/executions", &run, Who::Cookie(&session)).await;
    assert_eq!(start.status(), StatusCode::FORBIDDEN);
    // A forged or altered cookie is no session.
    let forged = session.replacen("read", "write", 1);
    let start = post(addr, "/api/executions", &run, Who::Cookie(&forged)).await;
    assert_eq!(start.status(), StatusCode::UNAUTHORIZED);

    // Behind a TLS proxy the cookie is Secure; JSON logins work too.
    let secure = login(WRITE, "https").await.expect("login");
    let cookie = secure.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii");
    assert!(cookie.contains("; Secure"), "{cookie}");
    let json_login = post(addr, "/login", &json!({"token": WRITE}), Who::Nobody).await;
    assert_eq!(json_login.status(), StatusCode::OK);
    let cookie = json_login.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii");
    let session = cookie.split(';').next().expect("name=value").to_owned();
    assert_eq!(
        json_login.json::<Value>().await.expect("json"),
        json!({"role": "write"})
    );
    let start = post(addr, "/api/executions", &run, Who::Cookie(&session)).await;
    assert_eq!(start.status(), StatusCode::ACCEPTED);

    // Signing out ends it in the browser.
    let out = request(addr, Method::POST, "/logout", Who::Cookie(&session))
        .send()
        .await;
    let out = out.expect("logout");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = out.headers()[header::SET_COOKIE].to_str().expect("ascii");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[sqlx::test(migrations = "../migrations")]
async fn cross_site_writes_are_refused(pool: PgPool) {
    // No token: this is what a page on another site could otherwise do to a laptop's pipescope.
    let addr = serve(pool.clone(), Policy::local()).await;
    let own = format!("http://{addr}");
    let start = |content_type: &str, (name, value): (&str, &str)| {
        request(addr, Method::POST, "/api/executions", Who::Nobody)
            .header(header::CONTENT_TYPE, content_type)
            .header(name, value)
            .body(json!({"yaml": ONE_STEP}).to_string())
            .send()
    };
    // A `no-cors` fetch or a form from another site: text/plain, with that site's Origin.
    let response = start("text/plain", ("origin", "http://evil.example"))
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(error_of(response).await.contains("cross-site"));
    // A browser that says so, even with a JSON type.
    let response = start("application/json", ("sec-fetch-site", "cross-site")).await;
    assert_eq!(response.expect("post").status(), StatusCode::FORBIDDEN);
    // Types any page can send are refused even without an Origin.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let response = start(content_type, ("x-test", "no origin"))
            .await
            .expect("post");
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
    }
    // A server function's own form encoding is accepted only from its own site.
    let id = Uuid::new_v4();
    let control = |origin: &str| {
        request(
            addr,
            Method::POST,
            app::functions::ControlRun::PATH,
            Who::Nobody,
        )
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("origin", origin)
        .body(format!("id={id}&action=Cancel"))
        .send()
    };
    for origin in ["http://evil.example", "null"] {
        let response = control(origin).await.expect("post");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
    }
    let status = control(&own).await.expect("post").status();
    let refused = [StatusCode::FORBIDDEN, StatusCode::UNSUPPORTED_MEDIA_TYPE];
    assert!(!refused.contains(&status), "{status}");
    let runs = count(&pool, "SELECT count(*) FROM pipeline_executions").await;
    assert_eq!(runs, 0, "no refused request started a run");
    // The pages' own requests and programs' JSON pass.
    let response = start("application/json", ("origin", &own))
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rebinding_host_name_is_refused_on_loopback(pool: PgPool) {
    let addr = serve(pool.clone(), Policy::local()).await;
    let port = addr.port();
    let as_host = |path: &str, host: String| {
        request(addr, Method::GET, path, Who::Nobody)
            .header(header::HOST, host)
            .send()
    };
    let refused = as_host("/api/pipelines", format!("evil.example:{port}"))
        .await
        .expect("get");
    assert_eq!(refused.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(error_of(refused).await.contains("--public-host"));
    let page = as_host("/", "evil.example".into()).await.expect("get");
    assert_eq!(page.status(), StatusCode::MISDIRECTED_REQUEST);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let response = as_host("/api/pipelines", host.clone()).await.expect("get");
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }
    // A name given with --public-host is served.
    let named = Policy::new(None, None, vec!["pipescope.test".into()], true).expect("policy");
    let addr = serve(pool, named).await;
    let response = request(addr, Method::GET, "/api/pipelines", Who::Nobody)
        .header(header::HOST, "pipescope.test")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn ingest_cannot_touch_the_engines_runs(pool: PgPool) {
    let addr = serve(pool.clone(), Policy::local()).await;
    let mut client = common::connect(addr, "", None).await;
    let started = post(
        addr,
        "/api/executions",
        &json!({"yaml": ONE_STEP}),
        Who::Nobody,
    )
    .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let answer: Value = started.json().await.expect("json");
    let id: Uuid = answer["execution_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    loop {
        let frame = client.next().await;
        let of_run = frame.decode().body.scope().execution_id == Some(id);
        if frame.event == "pipeline:completed" && of_run {
            break;
        }
    }
    let now = chrono::Utc::now();
    let log = json!({"level": "error", "message": "not yours", "timestamp": now,
        "context": {"execution_id": id}});
    let attempts = [
        json!({"event": "pipeline:started",
            "data": {"execution_id": id, "pipeline": "one", "started_at": now}}),
        json!({"event": "pipeline:error", "data": {"execution_id": id, "error": "taken over"}}),
        json!({"event": "log:entry", "data": log}),
    ];
    for event in attempts {
        let (status, answer) = common::ingest(addr, json!([event]).to_string()).await;
        assert_eq!(status, 403, "{answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains("pipescope's own engine"), "{answer}");
    }
    // Ingest's own runs are still reported as before. Its answer comes once its events are
    // stored, and the writer stores in order: all the engine sent is stored by then too.
    let own = json!({"event": "pipeline:started",
        "data": {"execution_id": Uuid::new_v4(), "pipeline": "elsewhere", "started_at": now}});
    let (status, answer) = common::ingest(addr, json!([own]).to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let (status, source, error): (String, String, Option<String>) =
        sqlx::query_as("SELECT status, source, error FROM pipeline_executions WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("the run");
    assert_eq!(
        (status.as_str(), source.as_str(), error),
        ("completed", "engine", None)
    );
    let logs = count(
        &pool,
        "SELECT count(*) FROM log_entries WHERE message = 'not yours'",
    )
    .await;
    assert_eq!(logs, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_yaml_run_does_not_become_the_saved_pipelines_latest_version(pool: PgPool) {
    let addr = serve(pool, Policy::local()).await;
    let start =
        |body: Value| async move { post(addr, "/api/executions", &body, Who::Nobody).await };
    let version = |answer: Value| answer["version"].clone();
    let latest = || async move {
        let list: Value = get(addr, "/api/pipelines", Who::Nobody)
            .await
            .json()
            .await
            .expect("json");
        list[0]["version"].clone()
    };
    // A new name is saved as its first version.
    let first = start(json!({"yaml": ONE_STEP})).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(version(first.json().await.expect("json")), 1);
    // A changed text under that name does not replace it…
    let changed = ONE_STEP.replace("prompt: hi", "prompt: hello");
    let refused = start(json!({"yaml": changed})).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let message = error_of(refused).await;
    assert!(
        message.contains("\"save\": true") && message.contains("version 2"),
        "{message}"
    );
    assert_eq!(latest().await, 1);
    // …unless asked to; the old text then runs the old version, not a third.
    let saved = start(json!({"yaml": changed, "save": true})).await;
    assert_eq!(version(saved.json().await.expect("json")), 2);
    let old = start(json!({"yaml": ONE_STEP})).await;
    assert_eq!(version(old.json().await.expect("json")), 1);
    assert_eq!(latest().await, 2);
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused() {
    let data = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(data.path())
        .env_remove("PIPESCOPE_TOKEN")
        .env_remove("PIPESCOPE_READ_TOKEN")
        .env("DATABASE_URL", "")
        .output()
        .expect("pipescope runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains("--token") && lines[0].contains("PIPESCOPE_TOKEN"),
        "{stderr}"
    );
    let created = std::fs::read_dir(data.path()).expect("dir").count();
    assert_eq!(created, 0, "refused before anything started");
}

#[sqlx::test(migrations = "../migrations")]
async fn every_response_carries_the_security_headers(pool: PgPool) {
    let addr = serve(pool, tokens()).await;
    let pages = [("/", Who::Bearer(WRITE)), ("/api/pipelines", Who::Nobody)];
    for (path, who) in pages.into_iter().chain([("/healthz", Who::Nobody)]) {
        let response = get(addr, path, who).await;
        let headers = response.headers().clone();
        let policy = headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii");
        for directive in [
            "default-src 'self'",
            "'wasm-unsafe-eval'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        let scripts = policy
            .split(';')
            .find(|d| d.trim().starts_with("script-src"));
        let scripts = scripts.expect("script-src");
        assert!(!scripts.contains("unsafe-inline") && !scripts.contains("'unsafe-eval'"));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin", "{path}");
        if path != "/" {
            continue;
        }
        // Every inline and module script of the page carries this response's nonce.
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next());
        let nonce = format!("nonce=\"{}\"", nonce.expect("a nonce"));
        let html = response.text().await.expect("html");
        let tags: Vec<&str> = html
            .split("<script")
            .skip(1)
            .filter_map(|s| s.split('>').next())
            .collect();
        assert!(tags.len() >= 2, "{html}");
        for tag in tags {
            assert!(tag.contains(&nonce), "<script{tag}> without {nonce}");
        }
    }
    // Refusals too.
    let refused = get(addr, "/api/pipelines", Who::Nobody).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused
        .headers()
        .contains_key(header::CONTENT_SECURITY_POLICY));
}
