//! Reading an [`Event`] or an [`EventBody`] from JSON, by hand rather than by serde's derive.
//!
//! The derive reads an adjacently tagged enum (`{"event": …, "data": …}`), and a struct that
//! flattens one, through serde's buffer of any value: that compiled a second decoder for every
//! event type into the browser's bundle, beside the one that reads JSON directly. Here `data` is
//! decoded straight into the type its `event` names whenever `event` comes first, which is
//! always so in what pipescope writes. A client of the ingest API may send `data` first: the
//! server then holds it as a JSON value until the name arrives. The browser only reads what
//! pipescope wrote, so it refuses that order with a message rather than carry the buffering.

use chrono::{DateTime, Utc};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

use super::events::{Event, EventBody, EVENT_NAMES};

/// The body `name` says `data` holds, decoded from `data`.
fn body<'de, D: Deserializer<'de>>(name: &str, data: D) -> Result<EventBody, D::Error> {
    use EventBody::*;
    Ok(match name {
        "pipeline:started" => PipelineStarted(Deserialize::deserialize(data)?),
        "pipeline:paused" => PipelinePaused(Deserialize::deserialize(data)?),
        "pipeline:resumed" => PipelineResumed(Deserialize::deserialize(data)?),
        "pipeline:cancelled" => PipelineCancelled(Deserialize::deserialize(data)?),
        "pipeline:completed" => PipelineCompleted(Deserialize::deserialize(data)?),
        "pipeline:error" => PipelineError(Deserialize::deserialize(data)?),
        "step:started" => StepStarted(Deserialize::deserialize(data)?),
        "step:progress" => StepProgress(Deserialize::deserialize(data)?),
        "prompt:sent" => PromptSent(Deserialize::deserialize(data)?),
        "response:streaming" => ResponseStreaming(Deserialize::deserialize(data)?),
        "response:received" => ResponseReceived(Deserialize::deserialize(data)?),
        "step:completed" => StepCompleted(Deserialize::deserialize(data)?),
        "metrics:updated" => MetricsUpdated(Deserialize::deserialize(data)?),
        "log:entry" => LogEntry(Deserialize::deserialize(data)?),
        "bus:heartbeat" => BusHeartbeat(Deserialize::deserialize(data)?),
        "bus:resync" => BusResync(Deserialize::deserialize(data)?),
        other => return Err(de::Error::unknown_variant(other, &EVENT_NAMES)),
    })
}

/// A key of an event's object; keys it does not know are skipped, as the derive did.
enum Key {
    Seq,
    At,
    Event,
    Data,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "seq" => Key::Seq,
                    "at" => Key::At,
                    "event" => Key::Event,
                    "data" => Key::Data,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// What an event's object held; `seq` and `at` are read only for an [`Event`].
#[derive(Default)]
struct Fields {
    seq: Option<i64>,
    at: Option<DateTime<Utc>>,
    body: Option<EventBody>,
}

/// Reads an event's object; `whole`: an [`Event`] (its `seq` and `at` kept), else a body only.
struct EventVisitor {
    whole: bool,
}

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an event: {"event": "<name>", "data": {…}}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        let mut name: Option<String> = None;
        #[cfg(feature = "ssr")]
        let mut early_data: Option<serde_json::Value> = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Seq if self.whole => fields.seq = Some(map.next_value()?),
                Key::At if self.whole => fields.at = Some(map.next_value()?),
                Key::Event => {
                    let read: String = map.next_value()?;
                    if !EVENT_NAMES.contains(&read.as_str()) {
                        return Err(de::Error::unknown_variant(&read, &EVENT_NAMES));
                    }
                    #[cfg(feature = "ssr")]
                    if let Some(data) = early_data.take() {
                        fields.body = Some(body(&read, data).map_err(de::Error::custom)?);
                    }
                    name = Some(read);
                }
                Key::Data => match &name {
                    Some(name) => fields.body = Some(map.next_value_seed(Data(name))?),
                    #[cfg(feature = "ssr")]
                    None => early_data = Some(map.next_value()?),
                    #[cfg(not(feature = "ssr"))]
                    None => {
                        return Err(de::Error::custom(
                            "`data` came before `event`; pipescope writes the name first",
                        ))
                    }
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if name.is_none() {
            return Err(de::Error::missing_field("event"));
        }
        if fields.body.is_none() {
            return Err(de::Error::missing_field("data"));
        }
        Ok(fields)
    }
}

/// Decodes `data` as the body its name says.
struct Data<'a>(&'a str);

impl<'de> de::DeserializeSeed<'de> for Data<'_> {
    type Value = EventBody;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<EventBody, D::Error> {
        body(self.0, deserializer)
    }
}

impl<'de> Deserialize<'de> for EventBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = deserializer.deserialize_map(EventVisitor { whole: false })?;
        fields.body.ok_or_else(|| de::Error::missing_field("data"))
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = deserializer.deserialize_map(EventVisitor { whole: true })?;
        Ok(Event {
            seq: fields.seq.ok_or_else(|| de::Error::missing_field("seq"))?,
            at: fields.at.ok_or_else(|| de::Error::missing_field("at"))?,
            body: fields
                .body
                .ok_or_else(|| de::Error::missing_field("data"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::events::{Heartbeat, RunTransition};
    use uuid::Uuid;

    fn transition() -> RunTransition {
        RunTransition {
            execution_id: Uuid::from_u128(7),
            at: DateTime::from_timestamp(1_800_000_000, 0).expect("a time"),
            reason: Some("operator".into()),
        }
    }

    #[test]
    fn each_name_reads_back_as_the_body_it_names() {
        // The three that share a payload type are where a wrong arm would go unnoticed.
        for body in [
            EventBody::PipelinePaused(transition()),
            EventBody::PipelineResumed(transition()),
            EventBody::PipelineCancelled(transition()),
            EventBody::BusHeartbeat(Heartbeat { interval_ms: 5 }),
        ] {
            let event = Event {
                seq: 3,
                at: DateTime::from_timestamp(1_800_000_001, 0).expect("a time"),
                body,
            };
            let json = serde_json::to_string(&event).expect("serialise");
            assert_eq!(
                serde_json::from_str::<Event>(&json).ok(),
                Some(event.clone())
            );
            let value = serde_json::to_value(&event.body).expect("serialise");
            assert_eq!(
                serde_json::from_value::<EventBody>(value).ok(),
                Some(event.body)
            );
        }
        // Every name has an arm: an empty payload fails on a field, never on the name.
        for name in EVENT_NAMES {
            let error = serde_json::from_str::<EventBody>(&format!(
                r#"{{"event":"{name}","data":{{"unknown":1}}}}"#
            ));
            if let Err(error) = error {
                assert!(
                    !error.to_string().contains("unknown variant"),
                    "{name}: {error}"
                );
            }
        }
    }

    #[test]
    fn any_order_and_unknown_keys_on_the_server_and_clear_errors() {
        let json = r#"{"note":[1,{"a":2}],"data":{"interval_ms":9},"at":"2026-12-07T00:00:00Z","event":"bus:heartbeat","seq":4}"#;
        let event: Event = serde_json::from_str(json).expect("data before event");
        assert_eq!(event.seq, 4);
        assert_eq!(
            event.body,
            EventBody::BusHeartbeat(Heartbeat { interval_ms: 9 })
        );

        let error = |json: &str| {
            serde_json::from_str::<EventBody>(json)
                .expect_err("refused")
                .to_string()
        };
        assert!(error(r#"{"event":"pipeline:exploded","data":{}}"#)
            .contains("unknown variant `pipeline:exploded`, expected one of `pipeline:started`"));
        assert!(error(r#"{"data":{"interval_ms":1}}"#).contains("missing field `event`"));
        assert!(error(r#"{"event":"bus:heartbeat"}"#).contains("missing field `data`"));
        assert!(
            error(r#"{"event":"bus:heartbeat","data":{"interval_ms":"x"}}"#)
                .contains("invalid type: string \"x\", expected u64")
        );
        assert!(
            error(r#"{"event":"bus:heartbeat","data":{"interval_ms":1},"seq":"#).contains("EOF")
        );
        assert!(serde_json::from_str::<Event>(
            r#"{"event":"bus:heartbeat","data":{"interval_ms":1}}"#
        )
        .is_err_and(|e| e.to_string().contains("missing field `seq`")));
    }
}
