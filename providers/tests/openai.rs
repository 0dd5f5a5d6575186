//! The OpenAI-compatible client against a fake speaking the chat-completions stream format.

mod common;

use std::time::{Duration, SystemTime};

use common::{call, no_env, refused_url, request};
use providers::{
    config::HttpConfig,
    fakes::{FakeServer, Reply},
    ErrorKind, OpenAi, Provider, ProviderKind, Usage,
};
use serde_json::json;

const KEY: &str = "sk-test-0123456789";

async fn fake(replies: Vec<Reply>) -> (FakeServer, OpenAi) {
    let server = FakeServer::start(ProviderKind::Openai, replies).await;
    let client = OpenAi::new("local", &server.http_config(KEY), &no_env).expect("valid config");
    (server, client)
}

#[tokio::test]
async fn streams_text_then_usage() {
    let usage = Usage {
        prompt_tokens: 21,
        completion_tokens: 3,
    };
    let (server, client) = fake(vec![Reply::stream(&["Hel", "lo", " there"], usage)]).await;

    let outcome = call(&client, request("gpt-4o-mini")).await;

    assert_eq!(outcome.error, None);
    assert_eq!(outcome.chunks, ["Hel", "lo", " there"]);
    assert_eq!(outcome.usage, Some(usage));
    assert_eq!(server.replies_left(), 0);
}

#[tokio::test]
async fn sends_model_messages_and_limits() {
    let (server, client) = fake(vec![Reply::stream(&["ok"], Usage::default())]).await;

    call(&client, request("llama3.2")).await;

    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(&*format!("Bearer {KEY}"))
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
    let (server, client) = fake(vec![Reply::stream(&["ok"], Usage::default())]).await;
    let mut req = request("m");
    req.system = None;

    call(&client, req).await;

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
async fn openai_itself_without_a_key_is_an_auth_error() {
    let client = OpenAi::new("openai", &HttpConfig::default(), &no_env).expect("valid config");

    let outcome = call(&client, request("gpt-4o")).await;

    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Auth);
    assert_eq!(
        error.message,
        "OPENAI_API_KEY is not set: export it or set api_key in [providers.openai] of the config file"
    );
}

#[tokio::test]
async fn error_body_gives_kind_and_message() {
    let (_server, client) = fake(vec![Reply::error(
        404,
        "The model `gpt-9` does not exist or you do not have access to it.",
    )])
    .await;

    let error = call(&client, request("gpt-9"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert!(error.message.contains("404"), "{}", error.message);
    assert!(
        error.message.contains("The model `gpt-9` does not exist"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("model_not_found"),
        "{}",
        error.message
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn rate_limit_with_retry_after_seconds() {
    let (server, client) = fake(vec![
        Reply::error(429, "Rate limit reached for requests").with_retry_after("1"),
        Reply::stream(&["after"], Usage::default()),
    ])
    .await;

    let error = call(&client, request("gpt-4o"))
        .await
        .error
        .expect("an error");
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(1)));
    assert!(
        error.message.contains("Rate limit reached"),
        "{}",
        error.message
    );
    assert!(error.is_retryable());

    // The retry the engine would make gets the next scripted reply.
    assert_eq!(call(&client, request("gpt-4o")).await.text(), "after");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_429_for_an_exhausted_quota_is_not_retried() {
    // OpenAI answers 429 both for "slow down" and for "out of credit"; only the first passes.
    let body = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let (_server, client) = fake(vec![Reply::Raw {
        status: 429,
        content_type: "application/json".into(),
        body: body.into(),
    }])
    .await;

    let error = call(&client, request("gpt-4o"))
        .await
        .error
        .expect("an error");
    assert_eq!(error.kind, ErrorKind::Quota);
    assert!(!error.is_retryable());
    assert!(
        error.message.contains("exceeded your current quota"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_http_date() {
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    let (_server, client) = fake(vec![Reply::error(429, "slow down").with_retry_after(&at)]).await;

    let error = call(&client, request("gpt-4o"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::RateLimited);
    let delay = error.retry_after.expect("a delay from the date");
    // The date has one-second resolution and a little time passes.
    assert!(
        (Duration::from_secs(110)..=Duration::from_secs(121)).contains(&delay),
        "{delay:?}"
    );
}

#[tokio::test]
async fn server_errors_are_retryable() {
    let (_server, client) = fake(vec![Reply::error(503, "The server is overloaded")]).await;

    let error = call(&client, request("gpt-4o"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Server);
    assert!(error.message.contains("503"), "{}", error.message);
}

#[tokio::test]
async fn unauthorised_is_auth_and_never_echoes_the_key() {
    let (_server, client) = fake(vec![Reply::error(
        401,
        &format!("Incorrect API key provided: {KEY}. You can find your API key at the dashboard."),
    )])
    .await;

    let error = call(&client, request("gpt-4o"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Auth);
    assert!(
        error.message.contains("Incorrect API key provided"),
        "{}",
        error.message
    );
    assert!(!error.message.contains(KEY), "{}", error.message);
    assert!(!format!("{client:?}").contains(KEY));
}

#[tokio::test]
async fn disconnect_mid_stream_is_network() {
    let (_server, client) = fake(vec![Reply::Disconnect { after_chunks: 2 }]).await;

    let outcome = call(&client, request("gpt-4o")).await;

    assert_eq!(outcome.chunks, ["part 0 ", "part 1 "]);
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Network);
    assert!(
        error
            .message
            .contains("the stream ended before the response was complete"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn body_ending_without_done_is_network() {
    let chunk =
        json!({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]});
    let (_server, client) = fake(vec![Reply::Raw {
        status: 200,
        content_type: "text/event-stream".to_owned(),
        body: format!("data: {chunk}\n\n"),
    }])
    .await;

    let outcome = call(&client, request("gpt-4o")).await;

    assert_eq!(outcome.text(), "Hi");
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Network);
    assert_eq!(
        error.message,
        "OpenAI: the stream ended before the response was complete"
    );
}

#[tokio::test]
async fn garbage_is_malformed() {
    let (_server, client) = fake(vec![Reply::Raw {
        status: 200,
        content_type: "text/event-stream".to_owned(),
        body: "data: {\"choices\": [oops\n\n".to_owned(),
    }])
    .await;

    let error = call(&client, request("gpt-4o"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Malformed);
    assert!(error.message.contains("[oops"), "{}", error.message);
}

#[tokio::test]
async fn whole_json_response_instead_of_a_stream_is_malformed() {
    let (_server, client) = fake(vec![Reply::Raw {
        status: 200,
        content_type: "application/json".to_owned(),
        body: json!({"choices": [{"message": {"content": "Hi"}}]}).to_string(),
    }])
    .await;

    let error = call(&client, request("gpt-4o"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Malformed);
    assert!(
        error.message.contains("instead of an event stream"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn error_inside_the_stream() {
    let (_server, client) = fake(vec![Reply::StreamError {
        after_chunks: 1,
        status: 500,
        message: "The server had an error while processing your request.".to_owned(),
    }])
    .await;

    let outcome = call(&client, request("gpt-4o")).await;

    assert_eq!(outcome.chunks, ["part 0 "]);
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Server);
    assert!(
        error.message.contains("The server had an error"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn stalled_stream_pends_and_dropping_it_aborts_the_request() {
    let (server, client) = fake(vec![Reply::Stall { after_chunks: 1 }]).await;
    let mut stream = client
        .stream(request("gpt-4o"))
        .await
        .expect("response starts");

    use futures::StreamExt;
    assert!(matches!(
        stream.next().await,
        Some(Ok(providers::Delta::Text(_)))
    ));
    let next = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(next.is_err(), "a stalled stream yields nothing: {next:?}");
    assert_eq!(server.open_streams(), 1);

    // Dropping the stream closes the connection, which is what stops a real provider.
    drop(stream);
    let closed = async {
        while server.open_streams() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the server sees the request go away");
}

#[tokio::test]
async fn connection_refused_is_network_naming_the_url() {
    let url = format!("{}/v1", refused_url().await);
    let config = HttpConfig {
        base_url: Some(url.clone()),
        api_key: Some(KEY.to_owned()),
        api_key_env: None,
    };
    let client = OpenAi::new("local", &config, &no_env).expect("valid config");

    let error = call(&client, request("gpt-4o"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Network);
    assert!(
        error.message.contains(&format!("{url}/chat/completions")),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("could not connect"),
        "{}",
        error.message
    );
}
