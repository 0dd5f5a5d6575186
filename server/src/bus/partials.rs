//! The responses streaming right now, as far as they have streamed: what a page that opens
//! mid-stream shows before its own stream catches up. Chunks are not persisted, so without this a
//! late viewer would see only the chunks after it connected.

use std::{collections::HashMap, sync::Mutex};

use app::models::{Event, EventBody};
use uuid::Uuid;

/// The text so far of each streaming step, with the `seq` of the last chunk in it.
#[derive(Default)]
pub(super) struct Partials {
    streams: Mutex<HashMap<(Uuid, String), (String, i64)>>,
}

impl Partials {
    /// Follows `event`: a step starts empty, chunks append, the complete response (or the end of
    /// the step or the run) drops it.
    pub(super) fn record(&self, event: &Event) {
        let Ok(mut streams) = self.streams.lock() else {
            return;
        };
        match &event.body {
            EventBody::StepStarted(e) => {
                streams.insert((e.execution_id, e.step.clone()), (String::new(), event.seq));
            }
            EventBody::ResponseStreaming(e) => {
                if let Some((text, seq)) = streams.get_mut(&(e.execution_id, e.step.clone())) {
                    text.push_str(&e.chunk);
                    *seq = event.seq;
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

    pub(super) fn get(&self, execution: Uuid, step: &str) -> Option<(String, i64)> {
        self.streams
            .lock()
            .ok()?
            .get(&(execution, step.to_owned()))
            .cloned()
    }
}
