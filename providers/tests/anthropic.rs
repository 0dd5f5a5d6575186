//! What only the Anthropic client sends: its key and version headers and the Messages body.
//! What it shares with the other formats is checked in `wire/`.

mod common;

use common::{call, formats::ANTHROPIC, request};
use providers::{fakes::Reply, Usage};
use serde_json::json;

#[tokio::test]
async fn sends_key_version_system_and_max_tokens() {
    let (server, client) = ANTHROPIC
        .fake(vec![Reply::stream(&["ok"], Usage::default())])
        .await;

    call(&*client, request("claude-haiku-4-5")).await;

    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(ANTHROPIC.key));
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
