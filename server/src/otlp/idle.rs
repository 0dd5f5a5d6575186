//! Closing traces whose root span never comes (a crashed process, a sampler that dropped it, a
//! collector that lost it): a trace with no new span for `--otlp-idle-close` is completed with
//! the totals of the spans it has, and a warning in its log says why.
//!
//! The clock is this server's (when a request last named the trace), not the spans' own times,
//! which come from the client's clock and may be hours off or replayed from the past. At start-up
//! the traces still open in the store are counted from then.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use app::models::{EventBody, LogContext, LogEntry, LogLevel, PipelineCompleted, Totals};
use chrono::Utc;
use serde_json::json;
use sqlx::PgPool;
use tokio::{sync::oneshot, sync::watch, time::Instant};
use uuid::Uuid;

use crate::{
    bus::{EventBus, Submission},
    db::{self, projection::Origin},
};

/// Traces a request named and none closed yet, with when each was last named.
#[derive(Debug, Clone, Default)]
pub struct OpenTraces(Arc<Mutex<HashMap<Uuid, Instant>>>);

impl OpenTraces {
    /// `ids` were named just now.
    pub fn touch(&self, ids: impl IntoIterator<Item = Uuid>) {
        let now = Instant::now();
        let mut open = self.lock();
        for id in ids {
            open.insert(id, now);
        }
    }

    /// `ids` were closed (their root span came).
    pub fn forget(&self, ids: &[Uuid]) {
        let mut open = self.lock();
        for id in ids {
            open.remove(id);
        }
    }

    /// Traces last named before `cutoff`.
    fn idle_since(&self, cutoff: Instant) -> Vec<Uuid> {
        self.lock()
            .iter()
            .filter(|(_, seen)| **seen <= cutoff)
            .map(|(id, _)| *id)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Instant>> {
        // A panic while holding it leaves a plain map, still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs until `shutdown`: every so often, closes the traces idle for `idle`.
pub async fn run(
    bus: EventBus,
    pool: PgPool,
    traces: OpenTraces,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    match db::traces::open(&pool, super::SOURCE).await {
        Ok(open) => traces.touch(open),
        Err(error) => tracing::warn!("cannot read the open traces: {error}"),
    }
    // A close comes at most a quarter of `idle` late.
    let tick = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
        let Some(cutoff) = Instant::now().checked_sub(idle) else {
            continue;
        };
        let due = traces.idle_since(cutoff);
        if due.is_empty() {
            continue;
        }
        match close(&bus, &pool, &due, idle).await {
            Ok(()) => traces.forget(&due),
            // Kept: tried again at the next tick.
            Err(error) => tracing::warn!("cannot close {} idle traces: {error}", due.len()),
        }
    }
}

/// Completes those of `ids` still open in the store; a trace closed meanwhile (its root span
/// came, here or on another instance) is left as it is.
async fn close(
    bus: &EventBus,
    pool: &PgPool,
    ids: &[Uuid],
    idle: Duration,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let open = db::traces::still_open(pool, ids, super::SOURCE).await?;
    let mut acks = Vec::new();
    for trace in open {
        let id = trace.execution_id;
        let ended = trace.last_active.unwrap_or(trace.started_at);
        let message = format!(
            "trace {} closed: no span of it came for {} s and its root span never came; its \
             totals are those of the spans received",
            id.simple(),
            idle.as_secs_f64()
        );
        let events = [
            EventBody::LogEntry(LogEntry {
                level: LogLevel::Warn,
                message,
                timestamp: Utc::now(),
                context: LogContext {
                    execution_id: Some(id),
                    ..Default::default()
                },
            }),
            EventBody::PipelineCompleted(PipelineCompleted {
                execution_id: id,
                results: json!({ "closed": "idle" }),
                totals: Totals {
                    tokens: u64::try_from(trace.tokens).unwrap_or(0),
                    cost_usd: trace.cost_usd,
                    duration_ms: u64::try_from((ended - trace.started_at).num_milliseconds())
                        .unwrap_or(0),
                },
            }),
        ];
        for body in events {
            let (ack, done) = oneshot::channel();
            let at = match &body {
                EventBody::PipelineCompleted(_) => ended,
                _ => Utc::now(),
            };
            bus.submit(Submission {
                body,
                at,
                origin: Origin::Ingest,
                client_id: None,
                ack: Some(ack),
            });
            acks.push(done);
        }
    }
    for done in acks {
        done.await.map_err(|_| "the event bus has shut down")??;
    }
    Ok(())
}
