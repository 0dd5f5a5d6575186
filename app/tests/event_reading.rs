//! The event reader (`models/event_reading.rs`, written by hand) takes what any ingest client
//! sends: whatever the JSON, it answers an event or an error and never panics, in either order
//! of `event` and `data`; and an event it reads is written back to the same event.

use app::models::{events::EVENT_NAMES, Event};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Any JSON value, a few levels deep, with the field names events use.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z0-9:_ -]{0,12}".prop_map(Value::from),
        Just(json!("00000000-0000-4000-8000-000000000001")),
        Just(json!("2026-12-07T10:00:00Z")),
        Just(json!(u64::MAX)),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "execution_id",
            "pipeline",
            "step",
            "step_name",
            "status",
            "tokens",
            "cost_usd",
            "duration_ms",
            "started_at",
            "completed_at",
            "level",
            "message",
            "timestamp",
            "context",
            "config",
            "inputs",
            "chunk",
            "response",
            "prompt",
            "attempt",
            "error",
            "seq",
            "at",
            "event",
            "data",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,10}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(EVENT_NAMES.to_vec()).prop_map(str::to_owned),
        "[a-z:]{0,20}",
    ]
}

fn read(text: &str) -> Option<Event> {
    serde_json::from_str::<Event>(text).ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn any_event_shaped_json_is_read_or_refused(name in name(), data in value(), seq in any::<i64>(), data_first in any::<bool>()) {
        let data_text = data.to_string();
        let text = if data_first {
            format!(r#"{{"data":{data_text},"seq":{seq},"at":"2026-12-07T10:00:00Z","event":{}}}"#, json!(name))
        } else {
            format!(r#"{{"seq":{seq},"at":"2026-12-07T10:00:00Z","event":{},"data":{data_text}}}"#, json!(name))
        };
        if let Some(event) = read(&text) {
            // What was read is written back as the same event.
            let written = serde_json::to_string(&event).expect("an event read is written");
            prop_assert_eq!(read(&written), Some(event));
        }
    }

    #[test]
    fn any_text_is_read_or_refused(text in "\\PC{0,200}") {
        let _ = read(&text);
    }
}
