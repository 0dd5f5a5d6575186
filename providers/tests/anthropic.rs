//! The Anthropic client against a fake speaking the Messages stream format.

mod common;

use std::time::Duration;

use common::{call, no_env, refused_url, request};
use providers::{
    config::HttpConfig,
    fakes::{FakeServer, Reply},
    Anthropic, ErrorKind, ProviderKind, Usage,
};
use serde_json::json;

const KEY: &str = "sk-ant-test-0123456789";

async fn fake(replies: Vec<Reply>) -> (FakeServer, Anthropic) {
    let server = FakeServer::start(ProviderKind::Anthropic, replies).await;
    let client =
        Anthropic::new("anthropic", &server.http_config(KEY), &no_env).expect("valid config");
    (server, client)
}

#[tokio::test]
async fn streams_text_then_usage() {
    let usage = Usage {
        prompt_tokens: 30,
        completion_tokens: 4,
    };
    let (_server, client) = fake(vec![Reply::stream(&["Hello", ",", " world", "!"], usage)]).await;

    let outcome = call(&client, request("claude-sonnet-4-5")).await;

    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "Hello, world!");
    // input_tokens from message_start, output_tokens from message_delta.
    assert_eq!(outcome.usage, Some(usage));
}

#[tokio::test]
async fn sends_key_version_system_and_max_tokens() {
    let (server, client) = fake(vec![Reply::stream(&["ok"], Usage::default())]).await;

    call(&client, request("claude-haiku-4-5")).await;

    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.body,
        json!({
            "model": "claude-haiku-4-5",
            "max_tokens": 256,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": "Say hello."}],
            "temperature": 0.2,
            "stream": true,
        })
    );
}

#[tokio::test]
async fn missing_key_is_auth_naming_the_variable() {
    let client = Anthropic::new("anthropic", &HttpConfig::default(), &no_env).expect("valid");

    let error = call(&client, request("claude-sonnet-4-5"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Auth);
    assert_eq!(
        error.message,
        "ANTHROPIC_API_KEY is not set: export it or set api_key in [providers.anthropic] of the config file"
    );
}

#[tokio::test]
async fn error_body_gives_kind_and_message() {
    let (_server, client) = fake(vec![Reply::error(
        400,
        "max_tokens: 100000 > 64000, which is the maximum allowed",
    )])
    .await;

    let error = call(&client, request("claude-sonnet-4-5"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert!(error.message.contains("400"), "{}", error.message);
    assert!(
        error.message.contains("max_tokens: 100000 > 64000"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("invalid_request_error"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after() {
    let (_server, client) = fake(vec![Reply::error(
        429,
        "Number of request tokens has exceeded your rate limit",
    )
    .with_retry_after("7")])
    .await;

    let error = call(&client, request("claude-sonnet-4-5"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
    assert!(
        error.message.contains("rate_limit_error"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn overloaded_529_is_server() {
    let (_server, client) = fake(vec![Reply::error(529, "Overloaded")]).await;

    let error = call(&client, request("claude-sonnet-4-5"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Server);
    assert!(
        error.message.contains("overloaded_error"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn overloaded_error_event_is_server() {
    let (_server, client) = fake(vec![Reply::StreamError {
        after_chunks: 2,
        status: 529,
        message: "Overloaded".to_owned(),
    }])
    .await;

    let outcome = call(&client, request("claude-sonnet-4-5")).await;

    assert_eq!(outcome.chunks.len(), 2);
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Server);
    assert!(error.message.contains("Overloaded"), "{}", error.message);
}

#[tokio::test]
async fn rate_limit_error_event_is_rate_limited() {
    let (_server, client) = fake(vec![Reply::StreamError {
        after_chunks: 0,
        status: 429,
        message: "Rate limited".to_owned(),
    }])
    .await;

    let error = call(&client, request("claude-sonnet-4-5"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::RateLimited);
}

#[tokio::test]
async fn unauthorised_is_auth() {
    let (_server, client) = fake(vec![Reply::error(401, "invalid x-api-key")]).await;

    let error = call(&client, request("claude-sonnet-4-5"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Auth);
    assert!(
        error.message.contains("invalid x-api-key"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("authentication_error"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn disconnect_mid_stream_is_network() {
    let (_server, client) = fake(vec![Reply::Disconnect { after_chunks: 3 }]).await;

    let outcome = call(&client, request("claude-sonnet-4-5")).await;

    assert_eq!(outcome.chunks.len(), 3);
    assert_eq!(outcome.usage, None);
    assert_eq!(outcome.error_kind(), Some(ErrorKind::Network));
}

#[tokio::test]
async fn body_ending_without_message_stop_is_network() {
    let body = [
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
    ]
    .concat();
    let (_server, client) = fake(vec![Reply::Raw {
        status: 200,
        content_type: "text/event-stream".to_owned(),
        body,
    }])
    .await;

    let outcome = call(&client, request("claude-sonnet-4-5")).await;

    assert_eq!(outcome.text(), "Hi");
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Network);
    assert!(error
        .message
        .contains("ended before the response was complete"));
}

#[tokio::test]
async fn garbage_is_malformed() {
    let (_server, client) = fake(vec![Reply::Raw {
        status: 200,
        content_type: "text/event-stream".to_owned(),
        body: "event: content_block_delta\ndata: <html>oops</html>\n\n".to_owned(),
    }])
    .await;

    let error = call(&client, request("claude-sonnet-4-5"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Malformed);
}

#[tokio::test]
async fn connection_refused_is_network() {
    let url = refused_url().await;
    let config = HttpConfig {
        base_url: Some(url.clone()),
        api_key: Some(KEY.to_owned()),
        api_key_env: None,
    };
    let client = Anthropic::new("anthropic", &config, &no_env).expect("valid config");

    let error = call(&client, request("claude-sonnet-4-5"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Network);
    assert!(
        error.message.contains(&format!("{url}/v1/messages")),
        "{}",
        error.message
    );
}
