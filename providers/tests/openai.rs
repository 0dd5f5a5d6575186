//! What only the OpenAI-compatible client does: its request's shape, keys being optional for
//! local servers, and OpenAI's 429 that means "out of credit". What it shares with the other
//! formats is checked in `wire/`.

mod common;

use common::{assert_mentions, call, call_error, formats::OPENAI, no_env, request};
use providers::{
    config::HttpConfig,
    fakes::{FakeServer, Reply},
    ErrorKind, OpenAi, ProviderKind, Usage,
};
use serde_json::json;

#[tokio::test]
async fn sends_model_messages_and_limits() {
    let (server, client) = OPENAI
        .fake(vec![Reply::stream(&["ok"], Usage::default())])
        .await;

    call(&*client, request("llama3.2")).await;

    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(&*format!("Bearer {}", OPENAI.key))
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.body,
        json!({
            "model": "llama3.2",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Say hello."},
            ],
            "temperature": 0.2,
            // A compatible server, not api.openai.com: the widely understood name.
            "max_tokens": 256,
            "stream": true,
            "stream_options": {"include_usage": true},
        })
    );
}

#[tokio::test]
async fn no_system_message_without_a_system_prompt() {
    let (server, client) = OPENAI
        .fake(vec![Reply::stream(&["ok"], Usage::default())])
        .await;
    let mut req = request("m");
    req.system = None;

    call(&*client, req).await;

    assert_eq!(
        server.requests()[0].body["messages"],
        json!([{"role": "user", "content": "Say hello."}])
    );
}

#[tokio::test]
async fn local_server_needs_no_key() {
    let server = FakeServer::start(
        ProviderKind::Openai,
        vec![Reply::stream(&["hi"], Usage::default())],
    )
    .await;
    let config = HttpConfig {
        base_url: Some(server.url().to_owned()),
        ..HttpConfig::default()
    };
    let client = OpenAi::new("ollama", &config, &no_env).expect("valid config");

    let outcome = call(&client, request("llama3.2")).await;

    assert_eq!(outcome.text(), "hi");
    assert_eq!(server.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn a_429_for_an_exhausted_quota_is_not_retried() {
    // OpenAI answers 429 both for "slow down" and for "out of credit"; only the first passes.
    let body = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let (_server, client) = OPENAI
        .fake(vec![Reply::Raw {
            status: 429,
            content_type: "application/json".into(),
            body: body.into(),
        }])
        .await;

    let error = call_error(&*client, request("gpt-4o")).await;
    assert_eq!(error.kind, ErrorKind::Quota);
    assert!(!error.is_retryable());
    assert_mentions(&error.message, &["exceeded your current quota"], "OpenAI");
}
