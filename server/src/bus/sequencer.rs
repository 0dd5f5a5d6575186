//! Numbers submitted events from the shared Postgres sequence, in submission order, then
//! delivers them and hands the persisted kinds to the writer.

use std::{sync::Arc, time::Duration};

use app::models::Event;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::faults::{Waiter, Waits};
use super::writer::Record;
use super::{Command, Delivered, EventBus};

/// Most events numbered with one query.
const MAX_BATCH: usize = 4096;

pub(super) async fn run(
    bus: EventBus,
    pool: PgPool,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut batch = Vec::with_capacity(64);
    while commands.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut close = None;
        let mut submissions = Vec::with_capacity(batch.len());
        for command in batch.drain(..) {
            match command {
                Command::Publish(submission) if close.is_none() => submissions.push(submission),
                Command::Publish(submission) => {
                    if let Some(ack) = submission.ack {
                        let _ = ack.send(Err(super::PublishError::Closed));
                    }
                }
                Command::Close(done) => close = Some(done),
            }
        }
        let seqs = if submissions.is_empty() {
            Vec::new()
        } else {
            next_seqs(&pool, submissions.len(), bus.writer().waits()).await
        };
        for (submission, seq) in submissions.into_iter().zip(seqs) {
            let event = Arc::new(Delivered::new(Event {
                seq,
                at: submission.at,
                body: submission.body,
            }));
            bus.deliver(event.clone());
            if event.body.is_persisted() {
                bus.writer().write(Record {
                    event,
                    origin: submission.origin,
                    client_id: submission.client_id,
                    ack: submission.ack,
                });
            } else if let Some(ack) = submission.ack {
                let _ = ack.send(Ok(seq));
            }
        }
        if let Some(done) = close {
            bus.writer().close().await;
            let _ = done.send(());
            tracing::debug!("event sequencer stopped");
            return;
        }
    }
}

/// One round trip for the whole batch. Keeps trying while the database is away or refuses
/// (read-only after a failover, say): events wait in memory rather than being numbered
/// inconsistently, and the wait is visible while it lasts.
async fn next_seqs(pool: &PgPool, count: usize, waits: &Waits) -> Vec<i64> {
    let mut delay = Duration::from_millis(50);
    loop {
        match sqlx::query_scalar::<_, i64>(
            "SELECT nextval('event_seq') FROM generate_series(1, $1)",
        )
        .bind(count as i32)
        .fetch_all(pool)
        .await
        {
            Ok(mut seqs) => {
                waits.succeeded(Waiter::Numbering);
                // nextval is increasing per session call, but sort to be sure of order.
                seqs.sort_unstable();
                return seqs;
            }
            Err(error) => {
                tracing::debug!("cannot number events ({error}); retrying in {delay:?}");
                waits.failed(Waiter::Numbering, &error);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}
