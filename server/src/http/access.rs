//! Who may do what, checked before any route runs ([`guard`]): the token (`--token`) and the
//! read-only token (`--read-token`), sent as `Authorization: Bearer <token>` or as the session
//! cookie `/login` sets; writes from other sites; host names only DNS rebinding would send. The
//! login page is plain server-rendered HTML, so none of this is in the browser's WASM.
//!
//! What each route needs is decided here, in one place: the static bundle, `/healthz` and the
//! login page need nothing; a server function needs what its [`Effect`] says; any other
//! `/api/` route reads when its method is safe (GET) or is listed in [`READ_ONLY_POSTS`], and
//! writes otherwise; every other path is a page.

use std::{
    collections::HashMap,
    fmt,
    net::IpAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use app::functions::Effect;
use axum::{
    extract::{FromRequest, Query, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
    Extension, Form, Json, Router,
};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "pipescope_session";
/// How long a login lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Paths anyone may fetch: the static bundle (it holds no data), the health check (which says
/// only up or down to a caller without a token) and the login page itself.
const PUBLIC_PREFIXES: [&str; 2] = ["/pkg/", "/editor/"];
const PUBLIC_PATHS: [&str; 6] = [
    "/healthz",
    // What the API's routes are and take; it holds no data, and tools read it first.
    super::paths::DOCUMENT_PATH,
    "/login",
    "/logout",
    "/favicon.svg",
    "/favicon.ico",
];
/// API routes (below `/api/v1/` or `/api/`) that take a POST body but change nothing.
pub const READ_ONLY_POSTS: [&str; 1] = ["pipelines/validate"];
/// Where pipescope's own HTML forms post (form-encoded, from this site only).
const FORM_PATHS: [&str; 2] = ["/login", "/logout"];

/// A secret requests are compared against. Never printed: `Debug` shows `Token(***)`.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl Token {
    pub const MIN_LEN: usize = 16;

    /// For clap: long enough not to be guessed, and only characters a header carries as they are.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.chars().count() < Self::MIN_LEN {
            return Err(format!(
                "a token must be at least {} characters; generate one with `openssl rand -hex 32`",
                Self::MIN_LEN
            ));
        }
        if !value.chars().all(|c| c.is_ascii_graphic()) {
            return Err(
                "a token may hold only visible ASCII characters (no spaces); generate one with \
                 `openssl rand -hex 32`"
                    .into(),
            );
        }
        Ok(Self(value.into()))
    }

    /// The secret itself, for a client to send (`pipescope run` and `tail`); never logged.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares digests, so the time taken says nothing about how much of `given` matched, nor
    /// about the token's length.
    fn matches(&self, given: &[u8]) -> bool {
        Sha256::digest(given)
            .ct_eq(&Sha256::digest(self.0.as_bytes()))
            .into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watch: pages, the event stream, everything that reads.
    Read,
    /// Everything, including starting, controlling and editing.
    Write,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            _ => None,
        }
    }
}

/// Who is asking, for the routes that answer differently (a request extension set by
/// [`guard`]): `None` when a token is required and the request carries no valid one.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Option<Role>);

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    /// A page: without a session, the browser is sent to the login page.
    Page,
    Read,
    Write,
}

/// The tokens and host names this server accepts.
#[derive(Debug)]
pub struct Policy {
    write: Option<Token>,
    read: Option<Token>,
    /// Names accepted in `Host` besides `localhost` and IP addresses.
    hosts: Vec<String>,
    /// Whether other names are refused: always when listening on loopback (where a page on
    /// another site could reach pipescope through DNS rebinding), else once names are given.
    check_hosts: bool,
    server_fns: HashMap<&'static str, Effect>,
}

impl Policy {
    pub fn new(
        write: Option<Token>,
        read: Option<Token>,
        hosts: Vec<String>,
        loopback: bool,
    ) -> Result<Self, String> {
        match (&write, &read) {
            (None, Some(_)) => {
                return Err(
                    "--read-token needs --token as well (the token that may also change things)"
                        .into(),
                )
            }
            (Some(write), Some(read)) if write.matches(read.0.as_bytes()) => {
                return Err("--read-token must differ from --token".into())
            }
            _ => {}
        }
        Ok(Self {
            write,
            read,
            check_hosts: loopback || !hosts.is_empty(),
            hosts,
            server_fns: app::functions::effects().into_iter().collect(),
        })
    }

    /// No token, on loopback: pipescope as it runs on a laptop.
    pub fn local() -> Self {
        Self {
            write: None,
            read: None,
            hosts: Vec::new(),
            check_hosts: true,
            server_fns: app::functions::effects().into_iter().collect(),
        }
    }

    pub fn requires_token(&self) -> bool {
        self.write.is_some()
    }

    fn token(&self, role: Role) -> Option<&Token> {
        match role {
            Role::Read => self.read.as_ref(),
            Role::Write => self.write.as_ref(),
        }
    }

    /// Both tokens are always compared, so the time taken does not say which one matched.
    fn role_of(&self, given: &[u8]) -> Option<Role> {
        let write = self.write.as_ref().is_some_and(|t| t.matches(given));
        let read = self.read.as_ref().is_some_and(|t| t.matches(given));
        match (write, read) {
            (true, _) => Some(Role::Write),
            (false, true) => Some(Role::Read),
            _ => None,
        }
    }

    /// The caller's role: everyone may do everything when no token is set; a bearer token that
    /// is not valid is refused outright (a script with a wrong token should hear so, not be
    /// treated as anonymous); else the session cookie's role, if it is valid.
    fn caller(&self, headers: &HeaderMap) -> Result<Option<Role>, Refusal> {
        if self.write.is_none() {
            return Ok(Some(Role::Write));
        }
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let bearer = value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim());
            return match bearer.and_then(|token| self.role_of(token.as_bytes())) {
                Some(role) => Ok(Some(role)),
                None => Err(Refusal::unauthorized(
                    "the token in the Authorization header is not valid; send `Authorization: \
                     Bearer <token>` with the token pipescope was started with",
                )),
            };
        }
        Ok(cookie(headers, COOKIE).and_then(|value| self.session_role(value, now())))
    }

    /// The cookie value of a session of `role` that ends at `expires` (Unix seconds): signed
    /// with that role's token, so changing a token ends its sessions.
    fn session_value(&self, role: Role, expires: u64) -> Option<String> {
        let token = self.token(role)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(token.0.as_bytes()).ok()?;
        mac.update(format!("pipescope session v1 {} {expires}", role.as_str()).as_bytes());
        let signature: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(format!("v1.{}.{expires}.{signature}", role.as_str()))
    }

    fn session_role(&self, value: &str, now: u64) -> Option<Role> {
        let mut parts = value.split('.');
        let (Some("v1"), Some(role), Some(expires)) = (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let role = Role::parse(role)?;
        let expires: u64 = expires.parse().ok()?;
        let expected = self.session_value(role, expires)?;
        let valid: bool = expected.as_bytes().ct_eq(value.as_bytes()).into();
        (valid && expires > now).then_some(role)
    }

    fn need(&self, method: &Method, path: &str) -> Need {
        if PUBLIC_PATHS.contains(&path) || PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p)) {
            return Need::Nothing;
        }
        if let Some(effect) = self.server_fns.get(path) {
            return match effect {
                Effect::Reads => Need::Read,
                Effect::Changes => Need::Write,
            };
        }
        let safe = method.is_safe();
        // Read by programs, like the API: a 401 rather than the login page.
        if path.starts_with("/api/") || path == "/metrics" {
            let read_only =
                super::paths::route_of(path).is_some_and(|route| READ_ONLY_POSTS.contains(&route));
            return if safe || read_only {
                Need::Read
            } else {
                Need::Write
            };
        }
        if safe {
            Need::Page
        } else {
            Need::Write
        }
    }

    /// DNS rebinding: a page on `evil.example` whose name is made to resolve to 127.0.0.1 talks
    /// to pipescope as "its own" site, with `Host: evil.example`. An IP address cannot be
    /// rebound, nor can `localhost`; other names must be ones pipescope was told about. A
    /// request without `Host` is not from a browser.
    fn host_allowed(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if !self.check_hosts {
            return Ok(());
        }
        let Some(host) = headers.get(header::HOST) else {
            return Ok(());
        };
        let name = host.to_str().map(host_name).unwrap_or_default();
        if name == "localhost" || name.parse::<IpAddr>().is_ok() || self.hosts.contains(&name) {
            return Ok(());
        }
        Err(Refusal::Error(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "pipescope does not answer to the host name {name:?}: it serves localhost, IP \
                 addresses and the names given with --public-host (PIPESCOPE_PUBLIC_HOST); add \
                 this name there if pipescope is reached by it"
            ),
        )))
    }

    /// A POST (or any unsafe method) must come from pipescope's own pages or from a program,
    /// never from another site's page: a browser names that page's site in `Origin` and
    /// `Sec-Fetch-Site`.
    fn same_site(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let cross = |why: String| {
            Refusal::Error(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("cross-site request refused: {why}"),
            ))
        };
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            if site == "cross-site" || site == "same-site" {
                return Err(cross(format!(
                    "the browser says it came from another site (Sec-Fetch-Site: {site})"
                )));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            if !self.origin_allowed(origin, headers.get(header::HOST)) {
                return Err(cross(format!(
                    "Origin {origin:?} is not this server; a page may change things only on its \
                     own site (behind a proxy that rewrites Host, list the public name with \
                     --public-host)"
                )));
            }
        }
        Ok(())
    }

    /// A request that changes something declares a JSON body: a page on another site can send
    /// text/plain, form and multipart bodies without asking (a form, a `no-cors` fetch), JSON
    /// only with CORS, which pipescope never allows. The form encoding of server functions and
    /// the login form is accepted because [`Self::same_site`] checks where those come from.
    fn body_type(&self, path: &str, headers: &HeaderMap) -> Result<(), Refusal> {
        let declared = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default());
        let has_body = headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .is_some_and(|length| length > 0);
        let allowed = match declared {
            None => !has_body,
            Some(declared) => {
                let media = declared
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                let own_form = self.server_fns.contains_key(path) || FORM_PATHS.contains(&path);
                // OTLP's binary encoding: like JSON, a type no page can send without CORS.
                let otlp = path == super::otlp::TRACES_PATH
                    && (media == super::otlp::PROTOBUF || media == "application/protobuf");
                media == "application/json"
                    || media.ends_with("+json")
                    || otlp
                    || (own_form && media == "application/x-www-form-urlencoded")
            }
        };
        if allowed {
            return Ok(());
        }
        Err(Refusal::Error(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "send the body as Content-Type: application/json (given: {}); text, form and \
                 multipart bodies are refused because any web page can send those",
                declared.unwrap_or("none")
            ),
        )))
    }

    fn origin_allowed(&self, origin: &str, host: Option<&HeaderValue>) -> bool {
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            // `null` (a sandboxed frame, a file, a redirect from elsewhere) or another scheme.
            return false;
        };
        let host = host.and_then(|h| h.to_str().ok()).unwrap_or_default();
        authority.eq_ignore_ascii_case(host) || self.hosts.contains(&host_name(authority))
    }

    /// Everything a request must pass, and the caller it is then served for.
    fn admit(&self, request: &Request) -> Result<Option<Role>, Refusal> {
        let (method, path, headers) = (request.method(), request.uri().path(), request.headers());
        self.host_allowed(headers)?;
        let need = self.need(method, path);
        if !method.is_safe() {
            self.same_site(headers)?;
            // A read-only POST (the validator) may take the text as it is: nothing changes.
            if need == Need::Write || FORM_PATHS.contains(&path) {
                self.body_type(path, headers)?;
            }
        }
        if need == Need::Nothing {
            // Public either way; a wrong bearer token only loses the details (healthz).
            return Ok(self.caller(headers).unwrap_or(None));
        }
        let caller = self.caller(headers)?;
        match (need, caller) {
            (_, Some(Role::Write)) | (Need::Read | Need::Page, Some(Role::Read)) => Ok(caller),
            (_, Some(Role::Read)) => Err(Refusal::Error(ApiError::new(
                StatusCode::FORBIDDEN,
                "the read-only token can watch but not start, control, replay, edit, ingest or \
                 test providers; this needs the token given with --token (PIPESCOPE_TOKEN)",
            ))),
            (Need::Page, None) => Err(Refusal::sign_in(request)),
            (_, None) => Err(Refusal::unauthorized(
                "this pipescope needs a token: send `Authorization: Bearer <token>`, or sign in \
                 at /login",
            )),
        }
    }

    /// The `Set-Cookie` value of a new session of `role`.
    fn session_cookie(&self, role: Role, headers: &HeaderMap) -> Option<HeaderValue> {
        let expires = now() + SESSION_LIFETIME.as_secs();
        let value = self.session_value(role, expires)?;
        let secure = if is_https(headers) { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            SESSION_LIFETIME.as_secs()
        ))
        .ok()
    }
}

/// Why a request was not served.
enum Refusal {
    Error(ApiError),
    Unauthorized(ApiError),
    /// A page asked for without a session: the login page, then back to `next`.
    SignIn {
        next: String,
    },
    /// A page opened from a link on another site: a `SameSite=Strict` cookie is not sent with
    /// that navigation, so the page reloads itself once (pipescope's own navigation, which
    /// carries it) rather than sending a signed-in user to the login page.
    Reload,
}

impl Refusal {
    fn unauthorized(message: &str) -> Self {
        Refusal::Unauthorized(ApiError::new(StatusCode::UNAUTHORIZED, message))
    }

    fn sign_in(request: &Request) -> Self {
        let headers = request.headers();
        let from_elsewhere = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v == "cross-site")
            && headers
                .get("sec-fetch-mode")
                .is_some_and(|v| v == "navigate");
        if from_elsewhere {
            return Refusal::Reload;
        }
        let next = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        Refusal::SignIn { next }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Error(error) => error.into_response(),
            Refusal::Unauthorized(error) => {
                let mut response = error.into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"pipescope\""),
                );
                response
            }
            Refusal::SignIn { next } => {
                see_other(&format!("/login?next={}", percent_encode(&next)))
            }
            Refusal::Reload => (
                [(header::CACHE_CONTROL, "no-store")],
                Html("<!DOCTYPE html><meta http-equiv=\"refresh\" content=\"0\"><title>pipescope</title>"),
            )
                .into_response(),
        }
    }
}

/// Checks every request against `policy` before any route sees it; the route then finds the
/// [`Caller`] among the request's extensions.
pub async fn guard(
    State(policy): State<Arc<Policy>>,
    mut request: Request,
    next: Next,
) -> Response {
    match policy.admit(&request) {
        Ok(role) => {
            request.extensions_mut().insert(Caller(role));
            next.run(request).await
        }
        Err(refusal) => {
            tracing::debug!("refused {} {}", request.method(), request.uri().path());
            refusal.into_response()
        }
    }
}

/// `GET /login` (the form), `POST /login` (a form or `{"token": …}` JSON; sets the session
/// cookie), `POST /logout` (ends it).
pub fn router(policy: Arc<Policy>) -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .layer(Extension(policy))
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login_page(
    Extension(policy): Extension<Arc<Policy>>,
    Extension(Caller(caller)): Extension<Caller>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if !policy.requires_token() {
        return see_other(&next);
    }
    page(StatusCode::OK, &next, caller, None)
}

async fn login(Extension(policy): Extension<Arc<Policy>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let form = if json {
        Json::<LoginForm>::from_request(request, &())
            .await
            .map(|Json(form)| form)
            .map_err(IntoResponse::into_response)
    } else {
        Form::<LoginForm>::from_request(request, &())
            .await
            .map(|Form(form)| form)
            .map_err(IntoResponse::into_response)
    };
    let form = match form {
        Ok(form) => form,
        Err(response) => return response,
    };
    let next = safe_next(form.next.as_deref());
    let role = if policy.requires_token() {
        policy.role_of(form.token.trim().as_bytes())
    } else {
        Some(Role::Write)
    };
    let Some(role) = role else {
        tracing::info!("a login with a token that is not valid was refused");
        return if json {
            Refusal::unauthorized("that token is not valid").into_response()
        } else {
            page(
                StatusCode::UNAUTHORIZED,
                &next,
                None,
                Some("That token is not valid."),
            )
        };
    };
    let mut response = if json {
        Json(serde_json::json!({ "role": role })).into_response()
    } else {
        see_other(&next)
    };
    if policy.requires_token() {
        if let Some(cookie) = policy.session_cookie(role, &headers) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
    }
    response
}

async fn logout() -> Response {
    let mut response = see_other("/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "pipescope_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
        ),
    );
    response
}

/// The login page: a form with no script (nothing on it needs the WASM bundle); signed in, what
/// the session allows and a way out.
fn page(status: StatusCode, next: &str, caller: Option<Role>, error: Option<&str>) -> Response {
    let next = escape(next);
    let body = match caller {
        Some(role) => format!(
            "<p>Signed in: {}.</p>\
             <p><a href=\"{next}\">Continue</a></p>\
             <form method=\"post\" action=\"/logout\"><button class=\"btn\" type=\"submit\">Sign out</button></form>",
            match role {
                Role::Read => "watch only (the read-only token)",
                Role::Write => "full access",
            }
        ),
        None => format!(
            "<form method=\"post\" action=\"/login\">\
             <label for=\"token\">Token</label>\
             <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" \
             required autofocus>\
             <input type=\"hidden\" name=\"next\" value=\"{next}\">\
             {}\
             <button class=\"btn primary\" type=\"submit\">Sign in</button>\
             </form>\
             <p class=\"login-hint\">The token pipescope was started with (--token or \
             PIPESCOPE_TOKEN), or its read-only token.</p>",
            error.map_or(String::new(), |e| format!(
                "<p class=\"login-error\" role=\"alert\">{}</p>",
                escape(e)
            ))
        ),
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Html(format!(
            "<!DOCTYPE html><html lang=\"en\" data-theme=\"dark\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"color-scheme\" content=\"dark light\">\
             <link rel=\"icon\" type=\"image/svg+xml\" href=\"/favicon.svg\">\
             <link rel=\"stylesheet\" href=\"/pkg/pipescope.css\">\
             <title>Sign in · pipescope</title></head>\
             <body><main class=\"login\" data-testid=\"login\"><h1>pipescope</h1>{body}</main></body></html>"
        )),
    )
        .into_response()
}

/// Where to go after signing in: a path on this server only (never `//other.site` or
/// `/\other.site`, which browsers read as another site), and never back to the login page.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.chars().any(char::is_control)
                && !next.starts_with("/login") =>
        {
            next.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response(),
    }
}

/// The value of cookie `name`, from any of the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the browser reached us over TLS: pipescope itself speaks plain HTTP, so only a
/// reverse proxy in front of it can say (`X-Forwarded-Proto`, or `Forwarded: proto=`).
fn is_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split([';', ',']).any(|part| {
                part.trim().split_once('=').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("proto")
                        && v.trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    forwarded_proto || forwarded
}

/// `Host`'s name without its port, lower case: `[::1]:3000` → `::1`, `Example.com.:80` →
/// `example.com`.
fn host_name(authority: &str) -> String {
    let name = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(authority, |(name, _)| name),
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> Token {
        Token::parse(text).expect("valid token")
    }

    fn policy() -> Policy {
        Policy::new(
            Some(token("write-token-0123456789")),
            Some(token("read-token-0123456789")),
            vec!["pipescope.example.com".into()],
            true,
        )
        .expect("valid policy")
    }

    fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(axum::body::Body::empty()).expect("request")
    }

    #[test]
    fn sessions_are_signed_and_expire() {
        let policy = policy();
        let value = policy.session_value(Role::Read, 2_000).expect("signed");
        assert_eq!(policy.session_role(&value, 1_999), Some(Role::Read));
        assert_eq!(policy.session_role(&value, 2_000), None, "expired");
        // Claiming the other role or a later end breaks the signature.
        let forged = value.replacen("read", "write", 1);
        assert_eq!(policy.session_role(&forged, 1_000), None);
        let extended = value.replacen("2000", "9000", 1);
        assert_eq!(policy.session_role(&extended, 1_000), None);
        // Another token, another key: a new token ends the old sessions.
        let other =
            Policy::new(Some(token("another-write-token-0")), None, vec![], true).expect("policy");
        let theirs = other.session_value(Role::Write, 2_000).expect("signed");
        assert_eq!(policy.session_role(&theirs, 1_000), None);
    }

    #[test]
    fn only_paths_on_this_server_are_followed_after_login() {
        assert_eq!(safe_next(Some("/runs/1?x=2")), "/runs/1?x=2");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/login?next=/",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn host_names_are_read_without_ports() {
        assert_eq!(host_name("[::1]:3000"), "::1");
        assert_eq!(host_name("Example.COM.:80"), "example.com");
        assert_eq!(host_name("localhost"), "localhost");
        assert_eq!(host_name("127.0.0.1:3000"), "127.0.0.1");
    }

    #[test]
    fn rebound_names_are_refused_ip_addresses_and_known_names_are_not() {
        let policy = policy();
        for host in [
            "127.0.0.1:3000",
            "localhost:3000",
            "[::1]:3000",
            "10.0.0.2",
            "pipescope.example.com",
        ] {
            let admitted = policy.admit(&request(Method::GET, "/healthz", &[("host", host)]));
            assert!(admitted.is_ok(), "{host}");
        }
        let refused = policy.admit(&request(
            Method::GET,
            "/healthz",
            &[("host", "evil.example:3000")],
        ));
        assert!(
            matches!(refused, Err(Refusal::Error(e)) if e.status == StatusCode::MISDIRECTED_REQUEST)
        );
        // Beyond loopback and with no names given, any name is served (the token guards it).
        let open = Policy::new(Some(token("write-token-0123456789")), None, vec![], false)
            .expect("policy");
        assert!(open
            .admit(&request(
                Method::GET,
                "/healthz",
                &[("host", "evil.example")]
            ))
            .is_ok());
    }

    #[test]
    fn every_route_kind_needs_what_it_should() {
        let policy = policy();
        let need = |method: Method, path: &str| policy.need(&method, path);
        assert_eq!(need(Method::GET, "/pkg/pipescope.wasm"), Need::Nothing);
        assert_eq!(need(Method::GET, "/healthz"), Need::Nothing);
        assert_eq!(need(Method::GET, "/api/events"), Need::Read);
        assert_eq!(need(Method::POST, "/api/pipelines/validate"), Need::Read);
        assert_eq!(need(Method::POST, "/api/v1/pipelines/validate"), Need::Read);
        assert_eq!(need(Method::POST, "/api/v1/executions"), Need::Write);
        assert_eq!(need(Method::GET, "/api/v1/state"), Need::Read);
        assert_eq!(need(Method::GET, "/api/v1/openapi.json"), Need::Nothing);
        assert_eq!(need(Method::POST, "/api/executions"), Need::Write);
        assert_eq!(need(Method::GET, "/runs/x"), Need::Page);
        assert_eq!(need(Method::POST, "/runs/x"), Need::Write);
        let (reads, changes): (Vec<_>, Vec<_>) = app::functions::effects()
            .into_iter()
            .partition(|(_, effect)| *effect == Effect::Reads);
        for (path, _) in reads {
            assert_eq!(need(Method::POST, path), Need::Read, "{path}");
        }
        for (path, _) in changes {
            assert_eq!(need(Method::POST, path), Need::Write, "{path}");
        }
    }

    #[test]
    fn https_is_what_the_proxy_says() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, HeaderValue::from_static(v));
            }
            map
        };
        assert!(is_https(&headers(&[("x-forwarded-proto", "https")])));
        assert!(is_https(&headers(&[(
            "forwarded",
            "for=1.2.3.4;proto=https"
        )])));
        assert!(!is_https(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!is_https(&headers(&[])));
    }
}
