//! Helpers shared by the provider tests.
#![allow(dead_code)] // Each test file uses a different subset.

pub mod formats;

use std::{fmt::Display, time::Duration};

use futures::StreamExt;
use providers::{
    fakes::Reply, ChatRequest, Delta, DeltaStream, ErrorKind, Provider, ProviderError, Usage,
};

/// Everything a stream produced, up to its end or first error.
#[derive(Debug, Default)]
pub struct Outcome {
    pub chunks: Vec<String>,
    pub usage: Option<Usage>,
    pub error: Option<ProviderError>,
}

impl Outcome {
    pub fn text(&self) -> String {
        self.chunks.concat()
    }

    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.error.as_ref().map(|e| e.kind)
    }
}

pub fn request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        system: Some("You are terse.".to_owned()),
        prompt: "Say hello.".to_owned(),
        max_tokens: 256,
        temperature: 0.2,
        seed: 7,
    }
}

pub async fn drain(mut stream: DeltaStream) -> Outcome {
    let mut outcome = Outcome::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(Delta::Text(text)) => outcome.chunks.push(text),
            Ok(Delta::Usage(usage)) => outcome.usage = Some(usage),
            Err(error) => {
                outcome.error = Some(error);
                // A stream ends after its error.
                assert!(stream.next().await.is_none(), "items after an error");
                break;
            }
        }
    }
    outcome
}

/// Calls the provider and reads the whole response; an error from `stream()` itself lands in
/// `error` too. Bounded, so a hang fails the test instead of stalling the suite.
pub async fn call(provider: &dyn Provider, request: ChatRequest) -> Outcome {
    tokio::time::timeout(Duration::from_secs(10), async {
        match provider.stream(request).await {
            Ok(stream) => drain(stream).await,
            Err(error) => Outcome {
                error: Some(error),
                ..Outcome::default()
            },
        }
    })
    .await
    .expect("the call finishes within 10 s")
}

/// The error a call ends with, for a call that must fail.
pub async fn call_error(provider: &dyn Provider, request: ChatRequest) -> ProviderError {
    call(provider, request).await.error.expect("an error")
}

/// Fails naming the first of `parts` missing from `message`, after `context` (the case and
/// format that failed, where a test checks several).
#[track_caller]
pub fn assert_mentions(message: &str, parts: &[&str], context: impl Display) {
    for part in parts {
        assert!(
            message.contains(part),
            "{context}: {part:?} missing from {message:?}"
        );
    }
}

/// A 200 event stream with exactly this body, for what a provider would never send.
pub fn raw_events(body: impl Into<String>) -> Reply {
    Reply::Raw {
        status: 200,
        content_type: "text/event-stream".to_owned(),
        body: body.into(),
    }
}

/// A loopback URL nothing listens on.
pub async fn refused_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    drop(listener);
    format!("http://{addr}")
}

pub fn no_env(_: &str) -> Option<String> {
    None
}
