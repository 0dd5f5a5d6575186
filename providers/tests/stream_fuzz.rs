//! Whatever a provider (or something pretending to be one) streams back, each client answers
//! text, usage or a `ProviderError` and ends: it never panics or hangs. Bodies are built from the
//! pieces the three wire formats are made of, valid and broken, and from arbitrary text, served
//! by the fakes as they are (`Reply::Raw`).

mod common;

use std::sync::LazyLock;

use common::{
    call,
    formats::{Format, ANTHROPIC, GEMINI, OPENAI},
    request,
};
use proptest::prelude::*;
use providers::fakes::{FakeServer, Reply};
use tokio::runtime::Runtime;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
});

/// Pieces of SSE streams in the three formats: field names, events, JSON fragments with the
/// fields the readers look for, terminal markers, and noise.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "data: ", "event: ", "id: 1", ": comment", "retry: 10", "\n", "\r\n", "\n\n", "data:",
            "[DONE]", "{", "}", "[", "]", ",", "\"", "null", "0", "-1", "1e309", "18446744073709551616",
            r#"{"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4294967296}}"#,
            r#"{"choices":[]}"#,
            r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5}}}",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":-7}}",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}",
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}",
            r#"{"candidates":[{"content":{"parts":[{"text":"hi"}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":3}}"#,
            r#"{"candidates":[{"finishReason":"SAFETY"}]}"#,
        ])
        .prop_map(str::to_owned),
        "[a-z:{}\\[\\]\",\\n ]{0,16}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

/// One fake per format for all cases: each case queues its body and makes one call.
fn check(
    format: &'static Format,
    servers: &'static LazyLock<FakeServer>,
    body: String,
    status: u16,
) {
    // Started (on first use) outside `block_on`: it blocks on the runtime itself.
    let server: &FakeServer = servers;
    RUNTIME.block_on(async {
        server.push(Reply::Raw {
            status,
            content_type: "text/event-stream".to_owned(),
            body,
        });
        let client = format.client(&server.http_config(format.key), &common::no_env);
        // Bounded inside `call`: a hang fails the case.
        let outcome = call(&*client, request(format.model)).await;
        if let Some(error) = outcome.error {
            assert!(!error.to_string().is_empty());
        }
    });
}

macro_rules! fake_for {
    ($name:ident, $format:expr) => {
        static $name: LazyLock<FakeServer> =
            LazyLock::new(|| RUNTIME.block_on(FakeServer::start($format.kind, Vec::new())));
    };
}
fake_for!(OPENAI_FAKE, OPENAI);
fake_for!(ANTHROPIC_FAKE, ANTHROPIC);
fake_for!(GEMINI_FAKE, GEMINI);

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![8 => Just(200u16), 1 => Just(429u16), 1 => Just(529u16), 1 => Just(500u16)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn openai_reads_any_stream_or_says_why(pieces in prop::collection::vec(piece(), 0..24), status in status()) {
        check(&OPENAI, &OPENAI_FAKE, pieces.concat(), status);
    }

    #[test]
    fn anthropic_reads_any_stream_or_says_why(pieces in prop::collection::vec(piece(), 0..24), status in status()) {
        check(&ANTHROPIC, &ANTHROPIC_FAKE, pieces.concat(), status);
    }

    #[test]
    fn gemini_reads_any_stream_or_says_why(pieces in prop::collection::vec(piece(), 0..24), status in status()) {
        check(&GEMINI, &GEMINI_FAKE, pieces.concat(), status);
    }
}
