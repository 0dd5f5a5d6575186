//! The three HTTP wire formats side by side, so one test case can run against each and a test of
//! one format's own behaviour finds its client and fake in the same place.

use std::fmt;

use providers::{
    config::HttpConfig,
    fakes::{FakeServer, Reply},
    Anthropic, Gemini, OpenAi, Provider, ProviderKind,
};
use serde_json::json;

use super::no_env;

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A client's constructor, boxed so the three formats fit one table.
type NewClient = fn(&str, &HttpConfig, Env) -> Result<Box<dyn Provider>, String>;

/// One wire format: its client, the fake speaking it, and what the client is expected to say.
pub struct Format {
    pub kind: ProviderKind,
    /// How the client names the provider in its messages.
    pub label: &'static str,
    /// The built-in instance's name, which the missing-key message points at.
    pub instance: &'static str,
    /// Only these tests use it, so a message or a `Debug` can be searched for it.
    pub key: &'static str,
    /// The variable the missing-key message names.
    pub key_env: &'static str,
    pub model: &'static str,
    /// What the base URL adds to the server's root (the fake adds the same).
    pub base_path: &'static str,
    /// Where a request for `model` goes, from the server's root.
    pub endpoint: &'static str,
    /// A body that sends the text "Hi", then ends without what marks the response complete.
    pub unfinished_body: fn() -> String,
    new: NewClient,
}

/// A value that differs by format, as a column each in a case table.
#[derive(Debug, Clone, Copy)]
pub struct PerFormat<T> {
    pub openai: T,
    pub anthropic: T,
    pub gemini: T,
}

impl Format {
    pub fn client(&self, config: &HttpConfig, env: Env) -> Box<dyn Provider> {
        (self.new)(self.instance, config, env).expect("valid config")
    }

    /// A fake answering with `replies`, and a client with this format's key pointing at it.
    pub async fn fake(&self, replies: Vec<Reply>) -> (FakeServer, Box<dyn Provider>) {
        let server = FakeServer::start(self.kind, replies).await;
        let client = self.client(&server.http_config(self.key), &no_env);
        (server, client)
    }

    /// This format's column of a row.
    pub fn pick<T: Copy>(&self, values: PerFormat<T>) -> T {
        match self.kind {
            ProviderKind::Openai => values.openai,
            ProviderKind::Anthropic => values.anthropic,
            ProviderKind::Gemini => values.gemini,
            ProviderKind::Simulated => unreachable!("the simulated provider has no wire format"),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label)
    }
}

/// Chat completions, as OpenAI and the servers compatible with it (Ollama, vLLM…) stream them.
pub const OPENAI: Format = Format {
    kind: ProviderKind::Openai,
    label: "OpenAI",
    instance: "openai",
    key: "sk-test-0123456789",
    key_env: "OPENAI_API_KEY",
    model: "gpt-4o",
    base_path: "/v1",
    endpoint: "/v1/chat/completions",
    // Ends without `data: [DONE]`.
    unfinished_body: || {
        let chunk =
            json!({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]});
        format!("data: {chunk}\n\n")
    },
    new: |instance, config, env| Ok(Box::new(OpenAi::new(instance, config, env)?)),
};

/// Anthropic Messages.
pub const ANTHROPIC: Format = Format {
    kind: ProviderKind::Anthropic,
    label: "Anthropic",
    instance: "anthropic",
    key: "sk-ant-test-0123456789",
    key_env: "ANTHROPIC_API_KEY",
    model: "claude-sonnet-4-5",
    base_path: "",
    endpoint: "/v1/messages",
    // Ends without `message_stop`.
    unfinished_body: || {
        [
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        ]
        .concat()
    },
    new: |instance, config, env| Ok(Box::new(Anthropic::new(instance, config, env)?)),
};

/// Gemini's `streamGenerateContent?alt=sse`.
pub const GEMINI: Format = Format {
    kind: ProviderKind::Gemini,
    label: "Gemini",
    instance: "gemini",
    key: "AIza-test-0123456789",
    key_env: "GEMINI_API_KEY",
    model: "gemini-2.5-flash",
    base_path: "",
    endpoint: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    // Gemini has no end event: the chunk with a `finishReason` is the last, and this has none.
    unfinished_body: || {
        let chunk = json!({"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": 0}]});
        format!("data: {chunk}\r\n\r\n")
    },
    new: |instance, config, env| Ok(Box::new(Gemini::new(instance, config, env)?)),
};
