//! Calls that never get a response stream: no key, a refusal with the provider's error body,
//! nothing listening. Each gives the kind the engine decides retries by, and a message that
//! says what the provider said.

use std::time::{Duration, SystemTime};

use providers::{config::HttpConfig, fakes::Reply, ErrorKind, Usage};

use crate::common::{
    assert_mentions, call, call_error,
    formats::{Format, PerFormat},
    no_env, refused_url, request,
};

pub async fn missing_key_is_auth_naming_the_variable(format: &Format) {
    // With no base URL, OpenAI means api.openai.com itself, which needs a key.
    let client = format.client(&HttpConfig::default(), &no_env);

    let error = call_error(&*client, request(format.model)).await;

    assert_eq!(error.kind, ErrorKind::Auth, "{format}");
    assert_eq!(
        error.message,
        format!(
            "{} is not set: export it or set api_key in [providers.{}] of the config file",
            format.key_env, format.instance
        )
    );
}

/// A refused request and what the client makes of it.
struct Refusal {
    status: u16,
    message: &'static str,
    kind: ErrorKind,
    /// What each provider's error body calls it; the client's message passes the name on.
    named: PerFormat<&'static str>,
}

const INVALID: PerFormat<&str> = PerFormat {
    openai: "invalid_request_error",
    anthropic: "invalid_request_error",
    gemini: "INVALID_ARGUMENT",
};

const UNAUTHENTICATED: PerFormat<&str> = PerFormat {
    openai: "invalid_api_key",
    anthropic: "authentication_error",
    gemini: "UNAUTHENTICATED",
};

const REFUSALS: &[Refusal] = &[
    Refusal {
        status: 400,
        message: "max_tokens: 100000 > 64000, which is the maximum allowed",
        kind: ErrorKind::InvalidRequest,
        named: INVALID,
    },
    Refusal {
        status: 400,
        message: "* GenerateContentRequest.generation_config.max_output_tokens: must be positive",
        kind: ErrorKind::InvalidRequest,
        named: INVALID,
    },
    Refusal {
        status: 404,
        message: "The model `gpt-9` does not exist or you do not have access to it.",
        kind: ErrorKind::InvalidRequest,
        named: PerFormat {
            openai: "model_not_found",
            anthropic: "not_found_error",
            gemini: "NOT_FOUND",
        },
    },
    Refusal {
        status: 401,
        message: "invalid x-api-key",
        kind: ErrorKind::Auth,
        named: UNAUTHENTICATED,
    },
    Refusal {
        status: 401,
        message: "API key not valid",
        kind: ErrorKind::Auth,
        named: UNAUTHENTICATED,
    },
    Refusal {
        status: 403,
        message: "Method doesn't allow unregistered callers",
        kind: ErrorKind::Auth,
        named: PerFormat {
            openai: "invalid_request_error",
            anthropic: "permission_error",
            gemini: "PERMISSION_DENIED",
        },
    },
    Refusal {
        status: 503,
        message: "The server is overloaded",
        kind: ErrorKind::Server,
        named: PerFormat {
            openai: "server_error",
            anthropic: "api_error",
            gemini: "UNAVAILABLE",
        },
    },
    // Anthropic's "overloaded".
    Refusal {
        status: 529,
        message: "Overloaded",
        kind: ErrorKind::Server,
        named: PerFormat {
            openai: "server_error",
            anthropic: "overloaded_error",
            gemini: "INTERNAL",
        },
    },
];

pub async fn refused_statuses_give_kind_and_message(format: &Format) {
    for refusal in REFUSALS {
        let (_server, client) = format
            .fake(vec![Reply::error(refusal.status, refusal.message)])
            .await;

        let error = call_error(&*client, request(format.model)).await;

        let context = format!("{format} {} {:?}", refusal.status, refusal.message);
        assert_eq!(error.kind, refusal.kind, "{context}");
        let status = refusal.status.to_string();
        let parts = [&*status, refusal.message, format.pick(refusal.named)];
        assert_mentions(&error.message, &parts, &context);
        // Of these, only the server's own trouble may pass by itself.
        assert_eq!(
            error.is_retryable(),
            refusal.kind == ErrorKind::Server,
            "{context}"
        );
        assert_eq!(error.retry_after, None, "{context}");
    }
}

pub async fn rate_limited_with_retry_after_then_the_retry_gets_through(format: &Format) {
    // Gemini says when in its body (`RetryInfo.retryDelay`), the others in a header; the fake
    // sends each its own way.
    let limits = [
        ("Rate limit reached for requests", 1),
        ("Number of request tokens has exceeded your rate limit", 7),
        ("You exceeded your current quota", 2),
    ];
    let named = PerFormat {
        openai: "rate_limit_exceeded",
        anthropic: "rate_limit_error",
        gemini: "RESOURCE_EXHAUSTED",
    };
    for (message, seconds) in limits {
        let (server, client) = format
            .fake(vec![
                Reply::error(429, message).with_retry_after(&seconds.to_string()),
                Reply::stream(&["after"], Usage::default()),
            ])
            .await;

        let error = call_error(&*client, request(format.model)).await;

        let context = format!("{format} {message:?}");
        assert_eq!(error.kind, ErrorKind::RateLimited, "{context}");
        assert_eq!(
            error.retry_after,
            Some(Duration::from_secs(seconds)),
            "{context}"
        );
        assert_mentions(
            &error.message,
            &["429", message, format.pick(named)],
            &context,
        );
        assert!(error.is_retryable(), "{context}");

        // The retry the engine would make gets the next scripted reply.
        assert_eq!(
            call(&*client, request(format.model)).await.text(),
            "after",
            "{context}"
        );
        assert_eq!(server.requests().len(), 2, "{context}");
    }
}

pub async fn retry_after_as_an_http_date(format: &Format) {
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    let (_server, client) = format
        .fake(vec![Reply::error(429, "slow down").with_retry_after(&at)])
        .await;

    let error = call_error(&*client, request(format.model)).await;

    assert_eq!(error.kind, ErrorKind::RateLimited, "{format}");
    let delay = error.retry_after.expect("a delay from the date");
    // The date has one-second resolution and a little time passes.
    assert!(
        (Duration::from_secs(110)..=Duration::from_secs(121)).contains(&delay),
        "{format}: {delay:?}"
    );
}

pub async fn unauthorised_never_echoes_the_key(format: &Format) {
    let key = format.key;
    let (_server, client) = format
        .fake(vec![Reply::error(
            401,
            &format!(
                "Incorrect API key provided: {key}. You can find your API key at the dashboard."
            ),
        )])
        .await;

    let error = call_error(&*client, request(format.model)).await;

    assert_eq!(error.kind, ErrorKind::Auth, "{format}");
    assert_mentions(&error.message, &["Incorrect API key provided"], format);
    assert!(!error.message.contains(key), "{format}: {}", error.message);
    assert!(!format!("{client:?}").contains(key), "{format}");
}

pub async fn connection_refused_is_network_naming_the_url(format: &Format) {
    let root = refused_url().await;
    let config = HttpConfig {
        base_url: Some(format!("{root}{}", format.base_path)),
        api_key: Some(format.key.to_owned()),
        api_key_env: None,
    };
    let client = format.client(&config, &no_env);

    let error = call_error(&*client, request(format.model)).await;

    assert_eq!(error.kind, ErrorKind::Network, "{format}");
    let url = format!("{root}{}", format.endpoint);
    assert_mentions(&error.message, &[&url, "could not connect"], format);
    assert!(
        !error.message.contains(format.key),
        "{format}: {}",
        error.message
    );
}
