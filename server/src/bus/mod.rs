//! The event bus: every live event passes through here exactly once.
//!
//! ```text
//! publish ──> sequencer ──> deliver ──> window (recent events, for Last-Event-ID resumes)
//!   (never      (numbers       │     └─> broadcast ring ──> each Subscription (SSE, metrics)
//!    waits)      from the      └─> writer (batched Postgres persistence, persisted kinds only)
//!                Postgres
//!                sequence)     relay (events other instances flushed) ──> deliver
//! ```
//! Publishing only enqueues. Subscribers read from one shared bounded ring: a subscriber that
//! falls a full ring behind loses its oldest events, learns how many (`Next::Lagged`), and the
//! loss is counted for it and in total; nobody else notices.

pub mod claims;
pub mod faults;
pub mod partials;
pub mod relay;
mod sequencer;
pub mod wire;
pub mod writer;

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use app::models::{Event, EventBody};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::db::projection::Origin;
use writer::EventWriter;

/// An event as the bus hands it out: numbered, and encoded once for every subscriber (with a
/// thousand SSE clients, encoding per client would dominate the bus's CPU time).
#[derive(Debug)]
pub struct Delivered {
    event: Event,
    /// The event's Server-Sent Events frame, its JSON the `data:` line from `json_at`.
    frame: Bytes,
    json_at: usize,
}

impl Delivered {
    pub fn new(event: Event) -> Self {
        let json = serde_json::to_string(&event).unwrap_or_default();
        // serde_json escapes line breaks inside strings and writes none between tokens, so the
        // JSON is one `data:` line, followed by the frame's two line breaks.
        debug_assert!(!json.contains(['\n', '\r']));
        let frame = wire::frame(Some(event.seq), event.name(), &json);
        let json_at = frame.len() - json.len() - 2;
        Self {
            event,
            frame,
            json_at,
        }
    }

    /// The event as JSON, exactly as sent on the wire.
    pub fn json(&self) -> &str {
        std::str::from_utf8(&self.frame[self.json_at..self.frame.len() - 2]).unwrap_or_default()
    }

    /// The event as `GET /api/events` sends it (`id:`, `event:`, `data:`), shared, not copied.
    pub fn frame(&self) -> Bytes {
        self.frame.clone()
    }
}

impl std::ops::Deref for Delivered {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}

/// Sizes of the bus's buffers.
#[derive(Debug, Clone, Copy)]
pub struct BusLimits {
    /// Events a subscriber may fall behind before it loses the oldest.
    pub subscriber_buffer: usize,
    /// Recent events kept in memory for resumes.
    pub replay_window: usize,
}

impl Default for BusLimits {
    fn default() -> Self {
        Self {
            // Larger than the biggest burst the sequencer delivers at once (an ingest batch of
            // up to 10,000 events): only a subscriber that stays behind loses events. The ring is
            // shared, so this costs the same for 1 subscriber or 10,000.
            subscriber_buffer: 16_384,
            replay_window: 65_536,
        }
    }
}

/// Timings of a subscriber's stream and how far back it may replay (the SSE endpoint uses
/// them; they are the bus's settings because the replay plan is the bus's).
#[derive(Debug, Clone, Copy)]
pub struct LiveSettings {
    pub heartbeat: Duration,
    pub keep_alive: Duration,
    /// Most events replayed from Postgres before a client is told to resync instead.
    pub replay_limit: i64,
    /// Events read from Postgres per query of a replay: what one replaying client holds.
    pub replay_page: i64,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(10),
            keep_alive: Duration::from_secs(15),
            replay_limit: 100_000,
            replay_page: 2_000,
        }
    }
}

/// Which events a subscriber wants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub execution: Option<Uuid>,
    pub step: Option<String>,
}

impl Filter {
    pub fn matches(&self, event: &Event) -> bool {
        if self.execution.is_none() {
            return true;
        }
        let scope = event.body.scope();
        match scope.execution_id {
            Some(id) => {
                Some(id) == self.execution
                    && self
                        .step
                        .as_deref()
                        .is_none_or(|step| scope.step == Some(step))
            }
            // Bus signals concern every subscriber; global metrics and logs only unfiltered ones.
            None => matches!(
                event.body,
                EventBody::BusHeartbeat(_) | EventBody::BusResync(_)
            ),
        }
    }
}

/// What a resuming subscriber must be sent before live events.
#[derive(Debug)]
pub enum Replay {
    /// Nothing: a new subscriber, or one that has seen everything.
    Nothing,
    /// Everything it missed is still in memory.
    Window(Vec<Arc<Delivered>>),
    /// It is older than the window: persisted events with `after < seq < before` come from
    /// Postgres, then `then` from memory.
    Store {
        after: i64,
        before: Option<i64>,
        then: Vec<Arc<Delivered>>,
    },
    /// Part of what it missed is gone for good.
    Gap,
}

/// Counters exposed at `/api/v1/bus/stats`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BusStats {
    pub instance: Uuid,
    pub published: u64,
    pub relayed: u64,
    pub subscribers: usize,
    pub dropped_total: u64,
    pub window_len: usize,
    pub oldest_in_window: Option<i64>,
    pub newest_in_window: Option<i64>,
    pub flushed_through: Option<i64>,
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    instance: Uuid,
    limits: BusLimits,
    live: broadcast::Sender<Arc<Delivered>>,
    window: Mutex<VecDeque<Arc<Delivered>>>,
    partials: partials::Partials,
    submit: mpsc::UnboundedSender<Command>,
    writer: EventWriter,
    published: AtomicU64,
    relayed: AtomicU64,
    dropped: AtomicU64,
    subscribers: AtomicUsize,
}

pub(crate) enum Command {
    Publish(Submission),
    /// Number and deliver everything submitted before, flush the writer, then stop.
    Close(oneshot::Sender<()>),
}

/// An event on its way to the sequencer.
pub(crate) struct Submission {
    pub body: EventBody,
    pub at: DateTime<Utc>,
    pub origin: Origin,
    pub client_id: Option<String>,
    /// Answered with the event's sequence number once it is delivered and, for persisted
    /// kinds, written to Postgres.
    pub ack: Option<oneshot::Sender<Result<i64, PublishError>>>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum PublishError {
    #[error("the event bus has shut down")]
    Closed,
    #[error("the event could not be written to the database: {0}")]
    NotPersisted(String),
}

impl EventBus {
    /// Starts the sequencer; events are numbered from Postgres and persisted through `writer`.
    pub fn start(pool: PgPool, writer: EventWriter, limits: BusLimits) -> Self {
        let (submit, submissions) = mpsc::unbounded_channel();
        let (live, _) = broadcast::channel(limits.subscriber_buffer.max(1));
        let bus = Self {
            inner: Arc::new(Inner {
                instance: writer.instance(),
                limits,
                live,
                window: Mutex::new(VecDeque::with_capacity(limits.replay_window.min(4096))),
                partials: Default::default(),
                submit,
                writer,
                published: AtomicU64::new(0),
                relayed: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                subscribers: AtomicUsize::new(0),
            }),
        };
        tokio::spawn(sequencer::run(bus.clone(), pool, submissions));
        tokio::spawn(tell_waits(Arc::downgrade(&bus.inner)));
        bus
    }

    pub fn instance(&self) -> Uuid {
        self.inner.instance
    }

    pub fn writer(&self) -> &EventWriter {
        &self.inner.writer
    }

    /// Enqueues an event and returns at once; it never waits on a subscriber or the database.
    pub fn publish(&self, body: EventBody) {
        self.submit(Submission {
            body,
            at: Utc::now(),
            origin: Origin::Engine,
            client_id: None,
            ack: None,
        });
    }

    /// Publishes and waits until the event is delivered and, for persisted kinds, in Postgres:
    /// for final events, whose state must be readable the moment the caller goes on.
    pub async fn publish_durable(&self, body: EventBody) -> Result<i64, PublishError> {
        let (ack, done) = oneshot::channel();
        self.submit(Submission {
            body,
            at: Utc::now(),
            origin: Origin::Engine,
            client_id: None,
            ack: Some(ack),
        });
        done.await.unwrap_or(Err(PublishError::Closed))
    }

    pub(crate) fn submit(&self, submission: Submission) {
        if let Err(mpsc::error::SendError(Command::Publish(submission))) =
            self.inner.submit.send(Command::Publish(submission))
        {
            if let Some(ack) = submission.ack {
                let _ = ack.send(Err(PublishError::Closed));
            }
        }
    }

    /// Shutdown: everything published so far is delivered and written to Postgres before this
    /// returns; later publishes fail with [`PublishError::Closed`].
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.inner.submit.send(Command::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }

    /// Hands a numbered event to the window and to every subscriber. The window lock is held
    /// while sending so that [`EventBus::subscribe`] sees each event either in its replay or
    /// live, never both and never neither.
    pub(crate) fn deliver(&self, event: Arc<Delivered>) {
        self.inner.partials.record(&event);
        let mut window = self.window();
        if window.len() >= self.inner.limits.replay_window {
            window.pop_front();
        }
        window.push_back(event.clone());
        let _ = self.inner.live.send(event);
        self.inner.published.fetch_add(1, Ordering::Relaxed);
    }

    /// The response of `step` of `execution` (its latest attempt) as far as it has streamed on
    /// this instance; none once the complete response is out.
    pub fn partial_response(&self, execution: Uuid, step: &str) -> Option<partials::Partial> {
        self.inner.partials.get(execution, step)
    }

    /// Delivers an event another instance published (already numbered and persisted there).
    pub(crate) fn deliver_relayed(&self, event: Arc<Delivered>) {
        self.deliver(event);
        self.inner.relayed.fetch_add(1, Ordering::Relaxed);
    }

    /// Subscribes; with `after` (a Last-Event-ID), also says what must be replayed first.
    pub fn subscribe(&self, filter: Filter, after: Option<i64>) -> (Subscription, Replay) {
        let window = self.window();
        let receiver = self.inner.live.subscribe();
        let replay = match after {
            None => Replay::Nothing,
            Some(after) => self.plan_replay(&window, &filter, after),
        };
        drop(window);
        self.inner.subscribers.fetch_add(1, Ordering::Relaxed);
        let subscription = Subscription {
            receiver,
            filter,
            dropped: 0,
            bus: self.inner.clone(),
        };
        (subscription, replay)
    }

    fn plan_replay(
        &self,
        window: &VecDeque<Arc<Delivered>>,
        filter: &Filter,
        after: i64,
    ) -> Replay {
        let matching = |from: usize| -> Vec<Arc<Delivered>> {
            window
                .range(from..)
                .filter(|e| filter.matches(e))
                .cloned()
                .collect()
        };
        // In delivery order, which is what this subscriber saw: exact for relayed events too.
        if let Some(position) = window.iter().rposition(|e| e.seq == after) {
            return Replay::Window(matching(position + 1));
        }
        let oldest = window.front().map(|e| e.seq);
        if window.back().is_some_and(|newest| after >= newest.seq) {
            return Replay::Nothing;
        }
        // Older than the window (or from before a restart): Postgres has every persisted event
        // up to the oldest one not yet flushed; the gap is fillable only if that one is still
        // in the window.
        let unflushed = self.inner.writer.oldest_unflushed();
        if let (Some(unflushed), Some(oldest)) = (unflushed, oldest) {
            if unflushed < oldest {
                return Replay::Gap;
            }
        }
        Replay::Store {
            after,
            before: oldest,
            then: matching(0),
        }
    }

    pub fn stats(&self) -> BusStats {
        let window = self.window();
        BusStats {
            instance: self.inner.instance,
            published: self.inner.published.load(Ordering::Relaxed),
            relayed: self.inner.relayed.load(Ordering::Relaxed),
            subscribers: self.inner.subscribers.load(Ordering::Relaxed),
            dropped_total: self.inner.dropped.load(Ordering::Relaxed),
            window_len: window.len(),
            oldest_in_window: window.front().map(|e| e.seq),
            newest_in_window: window.back().map(|e| e.seq),
            flushed_through: self.inner.writer.flushed_through(),
        }
    }

    fn window(&self) -> MutexGuard<'_, VecDeque<Arc<Delivered>>> {
        // A panic while holding this lock cannot leave the deque inconsistent.
        self.inner
            .window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What [`Subscription::next`] yields.
#[derive(Debug)]
pub enum Next {
    Event(Arc<Delivered>),
    /// This many events were lost because the subscriber fell behind.
    Lagged(u64),
    Closed,
}

pub struct Subscription {
    receiver: broadcast::Receiver<Arc<Delivered>>,
    filter: Filter,
    dropped: u64,
    bus: Arc<Inner>,
}

impl Subscription {
    pub async fn next(&mut self) -> Next {
        loop {
            match self.receiver.recv().await {
                Ok(event) if self.filter.matches(&event) => return Next::Event(event),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    self.dropped += lost;
                    self.bus.dropped.fetch_add(lost, Ordering::Relaxed);
                    return Next::Lagged(lost);
                }
                Err(broadcast::error::RecvError::Closed) => return Next::Closed,
            }
        }
    }

    /// Events this subscriber has lost so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Tells each wait of the store in the log as it starts, changes and ends: a warning with what
/// waits and what to do, then how long it lasted. Published like any log line, so a wait for
/// numbering is told once numbering is back (its line keeps the time the wait began).
async fn tell_waits(bus: std::sync::Weak<Inner>) {
    use app::models::{LogContext, LogEntry, LogLevel};
    let Some(mut changes) = bus.upgrade().map(|inner| inner.writer.waits().watch()) else {
        return;
    };
    let mut before = changes.borrow_and_update().clone();
    while changes.changed().await.is_ok() {
        let now = changes.borrow_and_update().clone();
        let Some(inner) = bus.upgrade() else { return };
        let bus = EventBus { inner };
        for (was, is) in before.iter().zip(&now) {
            let (level, message) = match (was, is) {
                (_, Some(wait)) if was.as_ref().map(|w| w.fault) != Some(wait.fault) => (
                    LogLevel::Warn,
                    format!(
                        "{}; events are kept in memory, in order, until it passes",
                        wait.describe()
                    ),
                ),
                (Some(wait), None) => (
                    LogLevel::Info,
                    format!(
                        "{} resumed after {:.1} s of waiting ({})",
                        wait.waiter.label(),
                        (Utc::now() - wait.since).as_seconds_f64(),
                        wait.fault
                            .map(faults::Fault::explain)
                            .unwrap_or("PostgreSQL refused it")
                    ),
                ),
                _ => continue,
            };
            match level {
                LogLevel::Warn => tracing::warn!("{message}"),
                _ => tracing::info!("{message}"),
            }
            bus.publish(EventBody::LogEntry(LogEntry {
                level,
                message,
                // When the change was seen: a wait's start, or its end.
                timestamp: Utc::now(),
                context: LogContext::default(),
            }));
        }
        before = now;
    }
}
