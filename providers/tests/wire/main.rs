//! What the three HTTP clients (OpenAI-compatible, Anthropic, Gemini) must do alike, checked
//! once per wire format against the fakes that speak it. Each case is a function of the
//! [`Format`](common::formats::Format) it runs against, and becomes one test per format, so a
//! failure names both (`gemini::disconnect_mid_stream_is_network`). What only one format does
//! (its request's shape, its own fields) is tested in `tests/<format>.rs`.

// The helpers the other test files share; this test's own modules sit in this folder.
#[path = "../common/mod.rs"]
mod common;
mod refusals;
mod streams;

/// One test per case and format: `formats` pairs a module name with a `Format`, `cases` names
/// each case by its module and function.
macro_rules! each_format {
    ([$($format:ident => $table:ident),+ $(,)?], $cases:tt) => {
        $(each_format!(@one $format, $table, $cases);)+
    };
    (@one $format:ident, $table:ident, [$($module:ident::$case:ident),* $(,)?]) => {
        mod $format {
            $(
                #[tokio::test]
                async fn $case() {
                    crate::$module::$case(&crate::common::formats::$table).await;
                }
            )*
        }
    };
}

each_format!(
    [openai => OPENAI, anthropic => ANTHROPIC, gemini => GEMINI],
    [
        streams::streams_text_then_usage,
        streams::text_arrives_verbatim,
        streams::errors_in_the_stream_keep_the_text_before_them,
        streams::disconnect_mid_stream_is_network,
        streams::body_ending_without_its_end_marker_is_network,
        streams::garbage_is_malformed,
        streams::whole_json_response_instead_of_a_stream_is_malformed,
        streams::stalled_stream_pends_and_dropping_it_aborts_the_request,
        refusals::missing_key_is_auth_naming_the_variable,
        refusals::refused_statuses_give_kind_and_message,
        refusals::rate_limited_with_retry_after_then_the_retry_gets_through,
        refusals::retry_after_as_an_http_date,
        refusals::unauthorised_never_echoes_the_key,
        refusals::connection_refused_is_network_naming_the_url,
    ]
);
