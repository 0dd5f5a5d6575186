//! The bus's side of persistence: numbered events are queued and written every 100 ms in one
//! transaction (`db::projection`), at once (with everything queued by then) when an execution
//! completes, fails or is cancelled, and on shutdown; each publisher is answered once its event
//! is stored.
//!
//! One event the database refuses must never cost anyone else their data: a batch refused for a
//! reason that will not go away is split in halves, down to the single refused event, and
//! everything else is stored. The refused event is answered with the reason, logged, and stored
//! in its place as a `bus:resync`, because it was already streamed live.

use std::{
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::faults::{Fault, Waiter, Waits};
use super::{Delivered, PublishError};
use crate::db::projection::{self, Attempts, Origin, StoredEvent};

const NONE: i64 = i64::MIN;
/// Most records taken from the queue at once: a flush holds at most this many plus what the
/// timer let accumulate.
const MAX_TAKEN: usize = 16_384;

/// A numbered event waiting to be written.
pub struct Record {
    pub event: Arc<Delivered>,
    pub origin: Origin,
    pub client_id: Option<String>,
    pub ack: Option<oneshot::Sender<Result<i64, PublishError>>>,
}

impl Record {
    fn stored(&self) -> StoredEvent<'_> {
        StoredEvent {
            seq: self.event.seq,
            at: self.event.at,
            body: &self.event.body,
            origin: self.origin,
            client_id: self.client_id.as_deref(),
            wire: Some(self.event.json()),
        }
    }
}

enum Message {
    Write(Record),
    Close(oneshot::Sender<()>),
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct EventWriter {
    tx: mpsc::UnboundedSender<Message>,
    instance: Uuid,
    progress: Arc<Progress>,
    waits: Waits,
}

struct Progress {
    /// Highest seq written (NONE before the first flush).
    flushed_through: AtomicI64,
    /// Lowest seq in the writer's buffer, not yet written (NONE when the buffer is empty).
    oldest_unflushed: AtomicI64,
    /// How long each flush took and how many events it held, for `/metrics`.
    flush_seconds: Histogram,
    flush_events: Histogram,
    /// Events the database refused (left out of the store, acknowledged with an error).
    refused: AtomicU64,
}

/// A flush's measurements (shared handles: clones see the same counts).
#[derive(Clone)]
pub struct FlushMetrics {
    pub seconds: Histogram,
    pub events: Histogram,
    pub refused: u64,
}

impl EventWriter {
    /// Starts the writer task for this instance.
    pub fn start(pool: PgPool, instance: Uuid, interval: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let progress = Arc::new(Progress {
            flushed_through: AtomicI64::new(NONE),
            oldest_unflushed: AtomicI64::new(NONE),
            // 1 ms to about 16 s.
            flush_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            // 1 to about 16,000 events.
            flush_events: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            refused: AtomicU64::new(0),
        });
        let waits = Waits::default();
        let task = Task {
            pool,
            instance,
            attempts: Attempts::default(),
            progress: progress.clone(),
            waits: waits.clone(),
        };
        tokio::spawn(task.run(interval, rx));
        Self {
            tx,
            instance,
            progress,
            waits,
        }
    }

    /// The store's waits now: this writer's, and the sequencer's (which numbers through the
    /// same database).
    pub fn waits(&self) -> &Waits {
        &self.waits
    }

    pub fn instance(&self) -> Uuid {
        self.instance
    }

    pub fn write(&self, record: Record) {
        if let Err(mpsc::error::SendError(Message::Write(record))) =
            self.tx.send(Message::Write(record))
        {
            if let Some(ack) = record.ack {
                let _ = ack.send(Err(PublishError::Closed));
            }
        }
    }

    /// Writes what is buffered and stops the task.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.tx.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }

    pub fn flush_metrics(&self) -> FlushMetrics {
        FlushMetrics {
            seconds: self.progress.flush_seconds.clone(),
            events: self.progress.flush_events.clone(),
            refused: self.progress.refused.load(Ordering::Relaxed),
        }
    }

    pub fn flushed_through(&self) -> Option<i64> {
        Some(self.progress.flushed_through.load(Ordering::Acquire)).filter(|&s| s != NONE)
    }

    pub fn oldest_unflushed(&self) -> Option<i64> {
        Some(self.progress.oldest_unflushed.load(Ordering::Acquire)).filter(|&s| s != NONE)
    }
}

struct Task {
    pool: PgPool,
    instance: Uuid,
    attempts: Attempts,
    progress: Arc<Progress>,
    waits: Waits,
}

impl Task {
    async fn run(mut self, interval: Duration, mut rx: mpsc::UnboundedReceiver<Message>) {
        let mut buffer: Vec<Record> = Vec::new();
        let mut incoming = Vec::with_capacity(256);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Everything queued so far is taken at once: under load, the records that
                // arrived during the last flush are one transaction, not one per finished run.
                received = rx.recv_many(&mut incoming, MAX_TAKEN) => {
                    if received == 0 {
                        self.flush(&mut buffer).await;
                        return;
                    }
                    let mut any_final = false;
                    for message in incoming.drain(..) {
                        match message {
                            Message::Write(record) => {
                                any_final |= record.event.body.is_final();
                                // Set by the task that flushes, so it is never cleared for a
                                // record the flush did not contain. Records still in the channel
                                // are the newest events, always inside the replay window, so they
                                // need no tracking.
                                if buffer.is_empty() {
                                    self.progress.oldest_unflushed.store(record.event.seq, Ordering::Release);
                                }
                                buffer.push(record);
                            }
                            Message::Close(done) => {
                                self.flush(&mut buffer).await;
                                let _ = done.send(());
                                return;
                            }
                        }
                    }
                    if any_final {
                        self.flush(&mut buffer).await;
                    }
                }
                _ = ticker.tick() => {
                    if !buffer.is_empty() {
                        self.flush(&mut buffer).await;
                    }
                }
            }
        }
    }

    /// Writes the buffer and answers every publisher.
    async fn flush(&mut self, buffer: &mut Vec<Record>) {
        if buffer.is_empty() {
            return;
        }
        let mut outcomes = vec![Ok(()); buffer.len()];
        let started = std::time::Instant::now();
        self.write_isolating(buffer, &mut outcomes).await;
        self.progress
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        self.progress.flush_events.observe(buffer.len() as f64);
        let refused = outcomes.iter().filter(|o| o.is_err()).count();
        self.progress
            .refused
            .fetch_add(refused as u64, Ordering::Relaxed);
        let last = buffer.last().map(|r| r.event.seq).unwrap_or(NONE);
        self.progress
            .flushed_through
            .fetch_max(last, Ordering::AcqRel);
        self.progress
            .oldest_unflushed
            .store(NONE, Ordering::Release);
        for (record, outcome) in buffer.drain(..).zip(outcomes) {
            if let Some(ack) = record.ack {
                let _ = ack.send(outcome.map(|()| record.event.seq));
            }
        }
    }

    /// Writes `records` in one transaction; if the database refuses it for good, writes each
    /// half the same way, so only the events it refuses on their own are left out (in order:
    /// the first half is written before the second, as the events were published).
    async fn write_isolating(
        &mut self,
        records: &[Record],
        outcomes: &mut [Result<(), PublishError>],
    ) {
        // Halving iteratively with an explicit stack: a batch of n events with one bad event
        // costs about 2·log2(n) transactions.
        let mut pending = Vec::with_capacity(64);
        pending.push(0..records.len());
        while let Some(range) = pending.pop() {
            let slice = &records[range.clone()];
            match self.write_retrying(slice).await {
                Ok(()) => {}
                Err(_) if slice.len() > 1 => {
                    let middle = range.start + slice.len() / 2;
                    // Pushed second half first: the first half is written first.
                    pending.push(middle..range.end);
                    pending.push(range.start..middle);
                }
                Err(error) => {
                    let refused = slice[0].stored();
                    let reason = error.to_string();
                    tracing::error!(
                        "event {} ({}) was refused by the database and is not stored: {reason}",
                        refused.seq,
                        refused.body.name()
                    );
                    if let Err(e) =
                        projection::write_refusal(&self.pool, self.instance, &refused, &reason)
                            .await
                    {
                        tracing::error!(
                            "could not record the refusal of event {}: {e}",
                            refused.seq
                        );
                    }
                    outcomes[range.start] = Err(PublishError::NotPersisted(reason));
                }
            }
        }
    }

    /// One transaction, retried while the database has a fault that passes (away, restarting,
    /// read-only, disk full: [`Fault`]); the events stay buffered, in order, and the wait is
    /// visible while it lasts. A refusal that will not go away is returned.
    async fn write_retrying(&mut self, records: &[Record]) -> Result<(), sqlx::Error> {
        let events: Vec<StoredEvent<'_>> = records.iter().map(Record::stored).collect();
        let mut delay = Duration::from_millis(50);
        loop {
            match projection::write_batch(&self.pool, self.instance, &events, &mut self.attempts)
                .await
            {
                Ok(()) => {
                    self.waits.succeeded(Waiter::Writing);
                    return Ok(());
                }
                Err(error) if Fault::of(&error).is_some() => {
                    tracing::debug!("cannot write events ({error}); retrying in {delay:?}");
                    self.waits.failed(Waiter::Writing, &error);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(error) => return Err(error),
            }
        }
    }
}
