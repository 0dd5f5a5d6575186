//! A response once it has started: text and usage as they arrive, and the ways a stream goes
//! wrong part way.

use std::time::Duration;

use futures::StreamExt;
use providers::{fakes::Reply, Delta, ErrorKind, Usage};

use crate::common::{assert_mentions, call, call_error, formats::Format, raw_events, request};

const CUT_SHORT: &str = "the stream ended before the response was complete";

pub async fn streams_text_then_usage(format: &Format) {
    let responses: [(&[&str], Usage); 4] = [
        (&["Hel", "lo", " there"], usage(21, 3)),
        (&["Hello", ",", " world", "!"], usage(30, 4)),
        (&["Bonjour", " le", " monde"], usage(9, 5)),
        // A model may stop before writing anything; the call still completes and is billed.
        (&[], usage(5, 0)),
    ];
    for (chunks, usage) in responses {
        let (server, client) = format.fake(vec![Reply::stream(chunks, usage)]).await;

        let outcome = call(&*client, request(format.model)).await;

        let context = format!("{format} {chunks:?}");
        assert_eq!(outcome.error, None, "{context}");
        assert_eq!(outcome.chunks, chunks, "{context}");
        assert_eq!(outcome.text(), chunks.concat(), "{context}");
        // Anthropic splits it: input_tokens in message_start, output_tokens in message_delta.
        assert_eq!(outcome.usage, Some(usage), "{context}");
        assert_eq!(server.replies_left(), 0, "{context}");
    }
}

pub async fn text_arrives_verbatim(format: &Format) {
    // Each is escaped in the JSON the provider sends; none may end or split an event.
    let chunks = [
        "NUL \0 inside",
        "é, 🙂 and 中文",
        "two\nlines\r\n\r\nand a blank one",
        "\"quoted\" and back\\slash",
        "data: [DONE]",
    ];
    let (_server, client) = format.fake(vec![Reply::stream(&chunks, usage(4, 5))]).await;

    let outcome = call(&*client, request(format.model)).await;

    assert_eq!(outcome.error, None, "{format}");
    assert_eq!(outcome.chunks, chunks, "{format}");
    assert_eq!(outcome.usage, Some(usage(4, 5)), "{format}");
}

pub async fn errors_in_the_stream_keep_the_text_before_them(format: &Format) {
    // (chunks before the error, the status its error type stands for, message, kind)
    let errors = [
        (
            1,
            500,
            "The server had an error while processing your request.",
            ErrorKind::Server,
        ),
        (2, 529, "Overloaded", ErrorKind::Server),
        (0, 429, "Rate limited", ErrorKind::RateLimited),
        (
            1,
            429,
            "Resource has been exhausted",
            ErrorKind::RateLimited,
        ),
    ];
    for (after_chunks, status, message, kind) in errors {
        let (_server, client) = format
            .fake(vec![Reply::StreamError {
                after_chunks,
                status,
                message: message.to_owned(),
            }])
            .await;

        let outcome = call(&*client, request(format.model)).await;

        let context = format!("{format} {status} after {after_chunks}");
        assert_eq!(outcome.chunks, parts(after_chunks), "{context}");
        let error = outcome.error.expect("an error");
        assert_eq!(error.kind, kind, "{context}");
        assert_mentions(&error.message, &[message], context);
    }
}

pub async fn disconnect_mid_stream_is_network(format: &Format) {
    for after_chunks in [2, 3] {
        let (_server, client) = format.fake(vec![Reply::Disconnect { after_chunks }]).await;

        let outcome = call(&*client, request(format.model)).await;

        let context = format!("{format} after {after_chunks}");
        assert_eq!(outcome.chunks, parts(after_chunks), "{context}");
        assert_eq!(outcome.usage, None, "{context}");
        let error = outcome.error.expect("an error");
        assert_eq!(error.kind, ErrorKind::Network, "{context}");
        assert_mentions(&error.message, &[CUT_SHORT], context);
    }
}

pub async fn body_ending_without_its_end_marker_is_network(format: &Format) {
    let (_server, client) = format
        .fake(vec![raw_events((format.unfinished_body)())])
        .await;

    let outcome = call(&*client, request(format.model)).await;

    assert_eq!(outcome.text(), "Hi", "{format}");
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Network, "{format}");
    assert_eq!(error.message, format!("{}: {CUT_SHORT}", format.label));
}

pub async fn garbage_is_malformed(format: &Format) {
    // (body, what of it the message shows)
    let bodies = [
        ("data: {\"choices\": [oops\n\n", "[oops"),
        (
            "event: content_block_delta\ndata: <html>oops</html>\n\n",
            "<html>oops</html>",
        ),
        ("data: not json at all\r\n\r\n", "not json at all"),
    ];
    for (body, shown) in bodies {
        let (_server, client) = format.fake(vec![raw_events(body)]).await;

        let error = call_error(&*client, request(format.model)).await;

        let context = format!("{format} {body:?}");
        assert_eq!(error.kind, ErrorKind::Malformed, "{context}");
        assert_mentions(&error.message, &[shown], context);
    }
}

pub async fn whole_json_response_instead_of_a_stream_is_malformed(format: &Format) {
    let (_server, client) = format
        .fake(vec![Reply::Raw {
            status: 200,
            content_type: "application/json".to_owned(),
            body: serde_json::json!({"choices": [{"message": {"content": "Hi"}}]}).to_string(),
        }])
        .await;

    let error = call_error(&*client, request(format.model)).await;

    assert_eq!(error.kind, ErrorKind::Malformed, "{format}");
    assert_mentions(&error.message, &["instead of an event stream"], format);
}

pub async fn stalled_stream_pends_and_dropping_it_aborts_the_request(format: &Format) {
    let (server, client) = format.fake(vec![Reply::Stall { after_chunks: 1 }]).await;
    let mut stream = client
        .stream(request(format.model))
        .await
        .expect("response starts");

    assert!(
        matches!(stream.next().await, Some(Ok(Delta::Text(_)))),
        "{format}"
    );
    let next = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(
        next.is_err(),
        "{format}: a stalled stream yields nothing: {next:?}"
    );
    assert_eq!(server.open_streams(), 1, "{format}");

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

/// What the fakes send as the text before a scripted failure.
fn parts(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("part {i} ")).collect()
}

fn usage(prompt_tokens: u32, completion_tokens: u32) -> Usage {
    Usage {
        prompt_tokens,
        completion_tokens,
    }
}
