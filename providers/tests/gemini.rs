//! The Gemini client against a fake speaking `streamGenerateContent?alt=sse`.

mod common;

use std::time::Duration;

use common::{call, no_env, refused_url, request};
use providers::{
    config::HttpConfig,
    fakes::{FakeServer, Reply},
    ErrorKind, Gemini, ProviderKind, Usage,
};
use serde_json::json;

const KEY: &str = "AIza-test-0123456789";

async fn fake(replies: Vec<Reply>) -> (FakeServer, Gemini) {
    let server = FakeServer::start(ProviderKind::Gemini, replies).await;
    let client = Gemini::new("gemini", &server.http_config(KEY), &no_env).expect("valid config");
    (server, client)
}

#[tokio::test]
async fn streams_text_then_usage() {
    let usage = Usage {
        prompt_tokens: 9,
        completion_tokens: 5,
    };
    let (_server, client) = fake(vec![Reply::stream(&["Bonjour", " le", " monde"], usage)]).await;

    let outcome = call(&client, request("gemini-2.5-flash")).await;

    assert_eq!(outcome.error, None);
    assert_eq!(outcome.chunks, ["Bonjour", " le", " monde"]);
    assert_eq!(outcome.usage, Some(usage));
}

#[tokio::test]
async fn sends_model_path_key_header_and_generation_config() {
    let (server, client) = fake(vec![Reply::stream(&["ok"], Usage::default())]).await;

    call(&client, request("models/gemini-2.0-flash")).await;

    let sent = &server.requests()[0];
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    );
    assert_eq!(sent.query.as_deref(), Some("alt=sse"));
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert_eq!(
        sent.body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Say hello."}]}],
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "generationConfig": {"maxOutputTokens": 256, "temperature": 0.2},
        })
    );
}

#[tokio::test]
async fn google_api_key_is_the_fallback() {
    let server = FakeServer::start(
        ProviderKind::Gemini,
        vec![Reply::stream(&["ok"], Usage::default())],
    )
    .await;
    let config = HttpConfig {
        base_url: Some(server.url().to_owned()),
        ..HttpConfig::default()
    };
    let env = |name: &str| (name == "GOOGLE_API_KEY").then(|| "from-google-env".to_owned());
    let client = Gemini::new("gemini", &config, &env).expect("valid config");

    assert_eq!(call(&client, request("gemini-2.5-pro")).await.text(), "ok");
    assert_eq!(
        server.requests()[0].header("x-goog-api-key"),
        Some("from-google-env")
    );
}

#[tokio::test]
async fn missing_key_is_auth_naming_the_variable() {
    let client = Gemini::new("gemini", &HttpConfig::default(), &no_env).expect("valid");

    let error = call(&client, request("gemini-2.5-pro"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Auth);
    assert!(
        error.message.starts_with("GEMINI_API_KEY is not set"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn error_body_gives_kind_and_message() {
    let (_server, client) = fake(vec![Reply::error(
        400,
        "* GenerateContentRequest.generation_config.max_output_tokens: must be positive",
    )])
    .await;

    let error = call(&client, request("gemini-2.5-pro"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert!(error.message.contains("400"), "{}", error.message);
    assert!(
        error.message.contains("must be positive"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("INVALID_ARGUMENT"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn resource_exhausted_with_retry_info() {
    let (_server, client) = fake(vec![
        Reply::error(429, "You exceeded your current quota").with_retry_after("2")
    ])
    .await;

    let error = call(&client, request("gemini-2.5-flash"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::RateLimited);
    // From RetryInfo.retryDelay "2s" in the body; the fake sends no header.
    assert_eq!(error.retry_after, Some(Duration::from_secs(2)));
    assert!(
        error.message.contains("RESOURCE_EXHAUSTED"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn resource_exhausted_in_the_stream_is_rate_limited() {
    let (_server, client) = fake(vec![Reply::StreamError {
        after_chunks: 1,
        status: 429,
        message: "Resource has been exhausted".to_owned(),
    }])
    .await;

    let outcome = call(&client, request("gemini-2.5-flash")).await;

    assert_eq!(outcome.chunks.len(), 1);
    assert_eq!(outcome.error_kind(), Some(ErrorKind::RateLimited));
}

#[tokio::test]
async fn forbidden_is_auth() {
    let (_server, client) = fake(vec![Reply::error(
        403,
        "Method doesn't allow unregistered callers",
    )])
    .await;

    let error = call(&client, request("gemini-2.5-flash"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Auth);
    assert!(
        error.message.contains("unregistered callers"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn unauthorised_is_auth() {
    let (_server, client) = fake(vec![Reply::error(401, "API key not valid")]).await;

    let error = call(&client, request("gemini-2.5-flash"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Auth);
}

#[tokio::test]
async fn disconnect_mid_stream_is_network() {
    let (_server, client) = fake(vec![Reply::Disconnect { after_chunks: 2 }]).await;

    let outcome = call(&client, request("gemini-2.5-flash")).await;

    assert_eq!(outcome.chunks.len(), 2);
    assert_eq!(outcome.error_kind(), Some(ErrorKind::Network));
}

#[tokio::test]
async fn body_ending_without_finish_reason_is_network() {
    let chunk = json!({"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": 0}]});
    let (_server, client) = fake(vec![Reply::Raw {
        status: 200,
        content_type: "text/event-stream".to_owned(),
        body: format!("data: {chunk}\r\n\r\n"),
    }])
    .await;

    let outcome = call(&client, request("gemini-2.5-flash")).await;

    assert_eq!(outcome.text(), "Hi");
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Network);
    assert!(error
        .message
        .contains("ended before the response was complete"));
}

#[tokio::test]
async fn thinking_tokens_count_as_completion_and_thoughts_are_not_text() {
    let chunk = json!({
        "candidates": [{
            "content": {"parts": [{"text": "pondering", "thought": true}, {"text": "Answer"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "thoughtsTokenCount": 20, "totalTokenCount": 25},
    });
    let (_server, client) = fake(vec![Reply::Raw {
        status: 200,
        content_type: "text/event-stream".to_owned(),
        body: format!("data: {chunk}\r\n\r\n"),
    }])
    .await;

    let outcome = call(&client, request("gemini-2.5-pro")).await;

    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "Answer");
    assert_eq!(
        outcome.usage,
        Some(Usage {
            prompt_tokens: 4,
            completion_tokens: 21
        })
    );
}

#[tokio::test]
async fn garbage_is_malformed() {
    let (_server, client) = fake(vec![Reply::Raw {
        status: 200,
        content_type: "text/event-stream".to_owned(),
        body: "data: not json at all\r\n\r\n".to_owned(),
    }])
    .await;

    let error = call(&client, request("gemini-2.5-flash"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Malformed);
    assert!(
        error.message.contains("not json at all"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn connection_refused_is_network() {
    let url = refused_url().await;
    let config = HttpConfig {
        base_url: Some(url.clone()),
        api_key: Some(KEY.to_owned()),
        api_key_env: None,
    };
    let client = Gemini::new("gemini", &config, &no_env).expect("valid config");

    let error = call(&client, request("gemini-2.5-flash"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Network);
    assert!(error.message.contains(&url), "{}", error.message);
    assert!(!error.message.contains(KEY), "{}", error.message);
}
