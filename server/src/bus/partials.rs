//! The responses streaming right now, as far as they have streamed: what a page that opens
//! mid-stream shows before its own stream catches up. Chunks are not persisted, so without this a
//! late viewer would see only the chunks after it connected.
//!
//! Bounded: anyone may stream through the ingest API, and a client that starts steps and never
//! finishes them must not grow the server without limit.

use std::{collections::HashMap, sync::Mutex};

use app::models::{Event, EventBody};
use uuid::Uuid;

/// Past this a stream is dropped: late viewers of it see the chunks from when they connect.
const MAX_BYTES: usize = 8 << 20;
/// Streams kept at once; beyond, the one that has been quiet longest is dropped.
const MAX_STREAMS: usize = 4096;

/// What a step attempt has streamed so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    pub attempt: u32,
    pub text: String,
    /// The `seq` of the last chunk in `text` (of `step:started` before the first).
    pub seq: i64,
}

/// The text so far of each streaming step (its latest attempt).
#[derive(Default)]
pub(super) struct Partials {
    streams: Mutex<HashMap<(Uuid, String), Partial>>,
}

impl Partials {
    /// Follows `event`: a step attempt starts empty, chunks append, the complete response (or
    /// the end of the step or the run) drops it.
    pub(super) fn record(&self, event: &Event) {
        let Ok(mut streams) = self.streams.lock() else {
            return;
        };
        match &event.body {
            EventBody::StepStarted(e) => {
                if streams.len() >= MAX_STREAMS {
                    let quietest = streams
                        .iter()
                        .min_by_key(|(_, p)| p.seq)
                        .map(|(key, _)| key.clone());
                    if let Some(key) = quietest {
                        streams.remove(&key);
                    }
                }
                let partial = Partial {
                    attempt: e.attempt,
                    text: String::new(),
                    seq: event.seq,
                };
                streams.insert((e.execution_id, e.step.clone()), partial);
            }
            EventBody::ResponseStreaming(e) => {
                let key = (e.execution_id, e.step.clone());
                if let Some(partial) = streams.get_mut(&key) {
                    if partial.text.len() + e.chunk.len() > MAX_BYTES {
                        streams.remove(&key);
                    } else {
                        partial.text.push_str(&e.chunk);
                        partial.seq = event.seq;
                    }
                }
            }
            EventBody::ResponseReceived(e) => {
                streams.remove(&(e.execution_id, e.step.clone()));
            }
            EventBody::StepCompleted(e) => {
                streams.remove(&(e.execution_id, e.step.clone()));
            }
            body if body.is_final() => {
                let id = body.scope().execution_id;
                streams.retain(|(execution, _), _| Some(*execution) != id);
            }
            _ => {}
        }
    }

    pub(super) fn get(&self, execution: Uuid, step: &str) -> Option<Partial> {
        self.streams
            .lock()
            .ok()?
            .get(&(execution, step.to_owned()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::models::{ResponseStreaming, StepStarted};

    fn event(seq: i64, body: EventBody) -> Event {
        Event {
            seq,
            at: chrono::Utc::now(),
            body,
        }
    }

    fn started(id: Uuid, step: &str, attempt: u32) -> EventBody {
        EventBody::StepStarted(StepStarted {
            execution_id: id,
            step: step.into(),
            provider: "p".into(),
            model: "m".into(),
            attempt,
            token_budget: None,
            replay_of: None,
            config: serde_json::Value::Null,
        })
    }

    fn chunk(id: Uuid, step: &str, text: String) -> EventBody {
        EventBody::ResponseStreaming(ResponseStreaming {
            execution_id: id,
            step: step.into(),
            chunk: text,
        })
    }

    #[test]
    fn a_stream_keeps_its_attempt_and_the_seq_of_its_last_chunk() {
        let partials = Partials::default();
        let id = Uuid::new_v4();
        partials.record(&event(1, started(id, "a", 2)));
        partials.record(&event(2, chunk(id, "a", "Hel".into())));
        partials.record(&event(5, chunk(id, "a", "lo".into())));
        assert_eq!(
            partials.get(id, "a"),
            Some(Partial {
                attempt: 2,
                text: "Hello".into(),
                seq: 5
            })
        );
    }

    #[test]
    fn an_endless_stream_is_dropped_and_so_is_the_quietest_of_too_many() {
        let partials = Partials::default();
        let id = Uuid::new_v4();
        partials.record(&event(1, started(id, "big", 1)));
        let mb = "x".repeat(1 << 20);
        for seq in 2..=9 {
            partials.record(&event(seq, chunk(id, "big", mb.clone())));
        }
        assert_eq!(partials.get(id, "big").map(|p| p.text.len()), Some(8 << 20));
        partials.record(&event(10, chunk(id, "big", "y".into())));
        assert_eq!(partials.get(id, "big"), None, "over the cap: dropped");

        for n in 0..MAX_STREAMS as i64 + 1 {
            partials.record(&event(100 + n, started(id, &format!("s{n}"), 1)));
        }
        assert_eq!(partials.get(id, "s0"), None, "the quietest went");
        assert!(partials.get(id, "s1").is_some());
        assert!(partials.get(id, &format!("s{MAX_STREAMS}")).is_some());
    }
}
