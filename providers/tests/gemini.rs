//! What only the Gemini client does: the model in the path, its key header and fallback
//! variable, and thinking tokens. What it shares with the other formats is checked in `wire/`.

mod common;

use common::{call, formats::GEMINI, raw_events, request};
use providers::{
    config::HttpConfig,
    fakes::{FakeServer, Reply},
    ProviderKind, Usage,
};
use serde_json::json;

#[tokio::test]
async fn sends_model_path_key_header_and_generation_config() {
    let (server, client) = GEMINI
        .fake(vec![Reply::stream(&["ok"], Usage::default())])
        .await;

    call(&*client, request("models/gemini-2.0-flash")).await;

    let sent = &server.requests()[0];
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    );
    assert_eq!(sent.query.as_deref(), Some("alt=sse"));
    assert_eq!(sent.header("x-goog-api-key"), Some(GEMINI.key));
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
    let client = GEMINI.client(&config, &env);

    assert_eq!(call(&*client, request("gemini-2.5-pro")).await.text(), "ok");
    assert_eq!(
        server.requests()[0].header("x-goog-api-key"),
        Some("from-google-env")
    );
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
    let (_server, client) = GEMINI
        .fake(vec![raw_events(format!("data: {chunk}\r\n\r\n"))])
        .await;

    let outcome = call(&*client, request("gemini-2.5-pro")).await;

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
