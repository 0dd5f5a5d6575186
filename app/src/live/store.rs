//! The dashboard's live state: built from a [`Snapshot`] (on the server for the first paint, and
//! identically in the browser when it hydrates), then kept current by applying each event.
//! Every field that changes is its own signal, so an event re-renders only the nodes showing
//! what it changed — focus, scroll position, selection and open panels are left alone.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use uuid::Uuid;

use crate::models::{
    AttemptStatus, Event, EventBody, ExecutionDetail, MetricsSample, RunLogLine, RunStatus,
    RunSummary, Snapshot, StepDetail, StepStatus,
};

/// Recent finished runs kept on the dashboard.
const RECENT_KEPT: usize = 20;
/// Points kept per chart (at most 2 per second live, one per 10 s from the store).
const METRICS_KEPT: usize = 240;

/// The state of the browser's event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// First paint; the browser has not connected yet.
    Connecting,
    Live,
    /// The stream dropped; the browser is retrying (with Last-Event-ID).
    Reconnecting,
    /// No heartbeat for a while, or the server refused the stream.
    Offline,
}

impl Connection {
    pub fn label(self) -> &'static str {
        match self {
            Connection::Connecting => "connecting",
            Connection::Live => "live",
            Connection::Reconnecting => "reconnecting",
            Connection::Offline => "offline",
        }
    }
}

/// One run as the grid shows it.
#[derive(Clone)]
pub struct RunView {
    pub id: Uuid,
    pub pipeline: String,
    pub source: String,
    pub started_at: DateTime<Utc>,
    pub status: ArcRwSignal<RunStatus>,
    pub current_step: ArcRwSignal<Option<String>>,
    pub steps_done: ArcRwSignal<i64>,
    pub steps_total: ArcRwSignal<i64>,
    pub tokens: ArcRwSignal<i64>,
    pub cost_usd: ArcRwSignal<f64>,
    pub completed_at: ArcRwSignal<Option<DateTime<Utc>>>,
    pub error: ArcRwSignal<Option<String>>,
}

impl RunView {
    fn new(run: &RunSummary) -> Self {
        Self {
            id: run.id,
            pipeline: run.pipeline.clone(),
            source: run.source.clone(),
            started_at: run.started_at,
            status: ArcRwSignal::new(run.status),
            current_step: ArcRwSignal::new(run.current_step.clone()),
            steps_done: ArcRwSignal::new(run.steps_completed),
            steps_total: ArcRwSignal::new(run.steps_total),
            tokens: ArcRwSignal::new(run.total_tokens),
            cost_usd: ArcRwSignal::new(run.cost_usd),
            completed_at: ArcRwSignal::new(run.completed_at),
            error: ArcRwSignal::new(run.error.clone()),
        }
    }

    pub fn is_active(&self) -> bool {
        self.status.get_untracked().is_active()
    }
}

/// One step attempt of the selected run, as the timeline and the inspector show it.
#[derive(Clone)]
pub struct StepView {
    pub step: String,
    pub attempt: i32,
    pub replay_of: Option<i32>,
    pub provider: String,
    pub model: String,
    pub started_at: DateTime<Utc>,
    pub token_budget: Option<i32>,
    pub config: serde_json::Value,
    /// The `seq` of the last chunk already in `response` when it was loaded mid-stream.
    pub streamed_through: i64,
    pub status: ArcRwSignal<AttemptStatus>,
    pub system_prompt: ArcRwSignal<Option<String>>,
    pub template: ArcRwSignal<Option<String>>,
    pub variables: ArcRwSignal<Option<serde_json::Value>>,
    pub prompt: ArcRwSignal<Option<String>>,
    pub response: ArcRwSignal<String>,
    pub prompt_tokens: ArcRwSignal<Option<i32>>,
    pub completion_tokens: ArcRwSignal<Option<i32>>,
    pub cost_usd: ArcRwSignal<Option<f64>>,
    pub ttft_ms: ArcRwSignal<Option<i32>>,
    pub duration_ms: ArcRwSignal<Option<i64>>,
    pub error: ArcRwSignal<Option<String>>,
}

impl StepView {
    fn from_detail(d: &StepDetail) -> Self {
        Self {
            step: d.step.clone(),
            attempt: d.attempt,
            replay_of: d.replay_of,
            provider: d.provider.clone().unwrap_or_default(),
            model: d.model.clone().unwrap_or_default(),
            started_at: d.started_at,
            token_budget: d.token_budget,
            config: d.config.clone(),
            streamed_through: d.streamed_through.unwrap_or(0),
            status: ArcRwSignal::new(d.status),
            system_prompt: ArcRwSignal::new(d.system_prompt.clone()),
            template: ArcRwSignal::new(d.template.clone()),
            variables: ArcRwSignal::new(d.variables.clone()),
            prompt: ArcRwSignal::new(d.prompt.clone()),
            response: ArcRwSignal::new(d.response.clone().unwrap_or_default()),
            prompt_tokens: ArcRwSignal::new(d.prompt_tokens),
            completion_tokens: ArcRwSignal::new(d.completion_tokens),
            cost_usd: ArcRwSignal::new(d.cost_usd),
            ttft_ms: ArcRwSignal::new(d.ttft_ms),
            duration_ms: ArcRwSignal::new(d.duration_ms),
            error: ArcRwSignal::new(d.error.clone()),
        }
    }

    /// `draft#2`: unique within a run, and the URL segment of the inspector.
    pub fn key(&self) -> String {
        step_key(&self.step, self.attempt)
    }
}

pub fn step_key(step: &str, attempt: i32) -> String {
    if attempt <= 1 {
        step.to_owned()
    } else {
        format!("{step}#{attempt}")
    }
}

/// The selected run's steps, loaded through a server function and then kept live.
#[derive(Clone)]
pub struct RunDetail {
    pub id: Uuid,
    pub pipeline: String,
    pub inputs: serde_json::Value,
    pub started_at: DateTime<Utc>,
    pub steps: ArcRwSignal<Vec<StepView>>,
    /// Its log, once the log area has asked for it; live lines are appended from then on.
    pub log: ArcRwSignal<Option<Vec<RunLogLine>>>,
}

impl RunDetail {
    pub fn new(detail: &ExecutionDetail) -> Self {
        Self {
            id: detail.id,
            pipeline: detail.pipeline.clone(),
            inputs: detail.inputs.clone(),
            started_at: detail.started_at,
            steps: ArcRwSignal::new(detail.steps.iter().map(StepView::from_detail).collect()),
            log: ArcRwSignal::new(None),
        }
    }

    /// Appends `event`'s line to a loaded log, unless the log already has it.
    fn log_line(&self, event: &Event) {
        let fresh = self.log.with_untracked(|log| {
            log.as_ref()
                .is_some_and(|log| log.last().is_none_or(|last| event.seq > last.seq))
        });
        if let Some(line) = RunLogLine::of(event).filter(|_| fresh) {
            self.log.update(|log| {
                let log = log.get_or_insert_with(Vec::new);
                log.push(line);
                if log.len() > RUN_LOG_KEPT {
                    log.drain(..log.len() - RUN_LOG_KEPT);
                }
            });
        }
    }

    /// The key of the step attempt a view of this run focuses on: `selected` when the run has it,
    /// else the one that started last (following the run as it goes). Tracks the steps: read it
    /// in a `Memo`, so views rebuild when the focus moves, not whenever a step starts.
    pub fn focused_key(&self, selected: Option<&str>) -> Option<String> {
        self.steps.with(|steps| match selected {
            Some(key) => steps.iter().find(|s| s.key() == key).map(StepView::key),
            None => steps.iter().max_by_key(|s| s.started_at).map(StepView::key),
        })
    }

    /// The step attempt with `key`, untracked.
    pub fn step(&self, key: &str) -> Option<StepView> {
        self.steps
            .read_untracked()
            .iter()
            .find(|s| s.key() == key)
            .cloned()
    }

    /// The latest attempt of `step`.
    fn latest(&self, step: &str) -> Option<StepView> {
        self.steps
            .read_untracked()
            .iter()
            .filter(|s| s.step == step)
            .max_by_key(|s| s.attempt)
            .cloned()
    }

    fn apply(&self, event: &Event) {
        self.log_line(event);
        match &event.body {
            EventBody::StepStarted(e) => {
                let attempt = i32::try_from(e.attempt).unwrap_or(1);
                let exists = self
                    .steps
                    .read_untracked()
                    .iter()
                    .any(|s| s.step == e.step && s.attempt == attempt);
                if !exists {
                    let detail = StepDetail {
                        id: 0,
                        step: e.step.clone(),
                        attempt,
                        replay_of: e.replay_of.and_then(|a| i32::try_from(a).ok()),
                        status: AttemptStatus::Running,
                        provider: Some(e.provider.clone()),
                        model: Some(e.model.clone()),
                        config: e.config.clone(),
                        system_prompt: None,
                        template: None,
                        variables: None,
                        prompt: None,
                        response: None,
                        streamed_through: None,
                        token_budget: e.token_budget.and_then(|b| i32::try_from(b).ok()),
                        prompt_tokens: None,
                        completion_tokens: None,
                        total_tokens: None,
                        cost_usd: None,
                        ttft_ms: None,
                        duration_ms: None,
                        error: None,
                        started_at: event.at,
                        completed_at: None,
                    };
                    self.steps
                        .update(|steps| steps.push(StepView::from_detail(&detail)));
                }
            }
            EventBody::PromptSent(e) => {
                if let Some(s) = self.latest(&e.step) {
                    s.prompt.set(Some(e.prompt.clone()));
                    s.system_prompt.set(e.system.clone());
                    s.template.set(Some(e.template.clone()));
                    s.variables.set(Some(e.variables.clone()));
                    s.prompt_tokens.set(i32::try_from(e.token_count).ok());
                }
            }
            EventBody::ResponseStreaming(e) => {
                // A step loaded mid-stream already has the chunks up to its `streamed_through`.
                if let Some(s) = self
                    .latest(&e.step)
                    .filter(|s| event.seq > s.streamed_through)
                {
                    s.response.update(|r| r.push_str(&e.chunk));
                }
            }
            EventBody::ResponseReceived(e) => {
                if let Some(s) = self.latest(&e.step) {
                    // The complete text replaces what streamed (which may have joined mid-way).
                    if *s.response.read_untracked() != e.response {
                        s.response.set(e.response.clone());
                    }
                    s.prompt_tokens
                        .set(i32::try_from(e.usage.prompt_tokens).ok());
                    s.completion_tokens
                        .set(i32::try_from(e.usage.completion_tokens).ok());
                    s.ttft_ms.set(e.ttft_ms.and_then(|t| i32::try_from(t).ok()));
                }
            }
            EventBody::StepCompleted(e) => {
                if let Some(s) = self.latest(&e.step) {
                    s.status.set(e.status.into());
                    s.duration_ms.set(i64::try_from(e.duration_ms).ok());
                    s.cost_usd.set(Some(e.cost_usd));
                    s.error.set(e.error.clone());
                }
            }
            _ => {}
        }
    }
}

/// Everything the dashboard shows live.
#[derive(Clone)]
pub struct LiveStore {
    pub connection: ArcRwSignal<Connection>,
    /// When the last heartbeat (or any event) arrived, by the browser's clock.
    pub last_heartbeat: ArcRwSignal<Option<DateTime<Utc>>>,
    /// The last event applied; the stream resumes after it.
    pub seq: ArcRwSignal<Option<i64>>,
    /// Active runs first (newest first), then recent finished ones.
    pub runs: ArcRwSignal<Vec<RunView>>,
    pub metrics: ArcRwSignal<VecDeque<MetricsSample>>,
    pub tokens_total: ArcRwSignal<i64>,
    pub cost_total_usd: ArcRwSignal<f64>,
    pub error_rate: ArcRwSignal<f64>,
    /// The run whose steps are shown, and its loaded detail.
    pub detail: ArcRwSignal<Option<RunDetail>>,
    /// The latest events about executions, so a run's detail loaded from the store can be
    /// brought up to the moment: an event may have arrived before the store had it.
    recent: std::sync::Arc<std::sync::Mutex<VecDeque<Event>>>,
}

/// Lines kept in a run's log, as many as the server sends for its history.
const RUN_LOG_KEPT: usize = 2000;

/// Events kept for catching up a newly selected run.
const RECENT_EVENTS_KEPT: usize = 4096;

impl LiveStore {
    pub fn new(snapshot: &Snapshot) -> Self {
        let store = Self {
            connection: ArcRwSignal::new(Connection::Connecting),
            last_heartbeat: ArcRwSignal::new(None),
            seq: ArcRwSignal::new(snapshot.seq),
            runs: ArcRwSignal::new(Vec::new()),
            metrics: ArcRwSignal::new(VecDeque::new()),
            tokens_total: ArcRwSignal::new(0),
            cost_total_usd: ArcRwSignal::new(0.0),
            error_rate: ArcRwSignal::new(0.0),
            detail: ArcRwSignal::new(None),
            recent: Default::default(),
        };
        store.reset(snapshot);
        store
    }

    /// Replaces everything with `snapshot` (first paint, and after `bus:resync`).
    pub fn reset(&self, snapshot: &Snapshot) {
        let runs = snapshot
            .active
            .iter()
            .chain(snapshot.recent.iter())
            .map(RunView::new)
            .collect();
        self.runs.set(runs);
        self.metrics.set(snapshot.metrics.iter().cloned().collect());
        self.tokens_total.set(snapshot.totals.tokens);
        self.cost_total_usd.set(snapshot.totals.cost_usd);
        if let Some(last) = snapshot.metrics.last() {
            self.error_rate.set(last.error_rate);
        }
        self.seq.set(snapshot.seq);
    }

    pub fn run(&self, id: Uuid) -> Option<RunView> {
        self.runs
            .read_untracked()
            .iter()
            .find(|r| r.id == id)
            .cloned()
    }

    /// Shows `detail`'s steps, brought up to date with the events this page has seen about it
    /// (applying an event twice is harmless: steps are keyed, a streamed response is replaced
    /// by the complete one).
    pub fn show_detail(&self, detail: RunDetail) {
        self.seen_about(detail.id, |event| detail.apply(event));
        self.detail.set(Some(detail));
    }

    /// Shows the stored log `lines` of the selected run `id`, followed by the events this page
    /// has seen that are newer than the store's last line.
    pub fn show_log(&self, id: Uuid, lines: Vec<RunLogLine>) {
        let Some(detail) = self.detail.get_untracked().filter(|d| d.id == id) else {
            return;
        };
        detail.log.set(Some(lines));
        self.seen_about(id, |event| detail.log_line(event));
    }

    /// Runs `f` on each recent event about execution `id`, oldest first.
    fn seen_about(&self, id: Uuid, mut f: impl FnMut(&Event)) {
        if let Ok(recent) = self.recent.lock() {
            recent
                .iter()
                .filter(|event| event.body.scope().execution_id == Some(id))
                .for_each(&mut f);
        }
    }

    /// Applies one event from the stream. Returns false for `bus:resync`: the caller reloads
    /// the snapshot.
    pub fn apply(&self, event: Event) -> bool {
        if event.seq > 0 {
            if self.seq.get_untracked().is_some_and(|seq| event.seq <= seq) {
                // Already reflected (a resume overlapping the snapshot).
                return true;
            }
            self.seq.set(Some(event.seq));
        }
        if let Some(id) = event.body.scope().execution_id {
            if let Some(detail) = self.detail.get_untracked().filter(|d| d.id == id) {
                detail.apply(&event);
            }
            if let Ok(mut recent) = self.recent.lock() {
                recent.push_back(event.clone());
                while recent.len() > RECENT_EVENTS_KEPT {
                    recent.pop_front();
                }
            }
        }
        match &event.body {
            EventBody::PipelineStarted(e) if self.run(e.execution_id).is_none() => {
                let steps_total = e
                    .config
                    .get("steps")
                    .and_then(|s| s.as_array())
                    .map_or(0, |s| s.len() as i64);
                let run = RunView::new(&RunSummary {
                    id: e.execution_id,
                    pipeline: e.pipeline.clone(),
                    status: RunStatus::Running,
                    source: if e.version.is_some() {
                        "engine"
                    } else {
                        "ingest"
                    }
                    .into(),
                    started_at: e.started_at,
                    completed_at: None,
                    current_step: None,
                    steps_started: 0,
                    steps_completed: 0,
                    steps_total,
                    total_tokens: 0,
                    cost_usd: 0.0,
                    error: None,
                });
                self.runs.update(|runs| {
                    runs.insert(0, run);
                    trim_recent(runs);
                });
            }
            EventBody::PipelinePaused(e) => self.set_status(e.execution_id, RunStatus::Paused),
            EventBody::PipelineResumed(e) => self.set_status(e.execution_id, RunStatus::Running),
            EventBody::PipelineCancelled(e) => self.finish(
                e.execution_id,
                RunStatus::Cancelled,
                event.at,
                e.reason.clone(),
            ),
            EventBody::PipelineError(e) => self.finish(
                e.execution_id,
                RunStatus::Failed,
                event.at,
                Some(e.error.clone()),
            ),
            EventBody::PipelineCompleted(e) => {
                if let Some(run) = self.run(e.execution_id) {
                    run.tokens.set(e.totals.tokens as i64);
                    run.cost_usd.set(e.totals.cost_usd);
                }
                self.finish(e.execution_id, RunStatus::Completed, event.at, None)
            }
            EventBody::StepStarted(e) => {
                if let Some(run) = self.run(e.execution_id) {
                    run.current_step.set(Some(e.step.clone()));
                }
            }
            EventBody::StepCompleted(e) => {
                if let Some(run) = self.run(e.execution_id) {
                    if e.status == StepStatus::Completed {
                        run.steps_done.update(|n| *n += 1);
                    }
                    run.tokens.update(|t| *t += i64::from(e.tokens));
                    run.cost_usd.update(|c| *c += e.cost_usd);
                    if run.current_step.get_untracked().as_deref() == Some(e.step.as_str()) {
                        run.current_step.set(None);
                    }
                }
            }
            EventBody::MetricsUpdated(m) => {
                self.tokens_total.set(m.tokens_total as i64);
                self.cost_total_usd.set(m.cost_total_usd);
                self.error_rate.set(m.error_rate);
                let sample = MetricsSample {
                    at: event.at,
                    tokens_total: m.tokens_total as i64,
                    cost_total_usd: m.cost_total_usd,
                    running: i64::from(m.running),
                    error_rate: m.error_rate,
                    latency_p50_ms: m.latency_p50_ms,
                    latency_p95_ms: m.latency_p95_ms,
                    latency_p99_ms: m.latency_p99_ms,
                    throughput_per_min: m.throughput_per_min,
                };
                self.metrics.update(|points| {
                    points.push_back(sample);
                    while points.len() > METRICS_KEPT {
                        points.pop_front();
                    }
                });
            }
            EventBody::BusHeartbeat(_) => self.last_heartbeat.set(Some(Utc::now())),
            EventBody::BusResync(_) => return false,
            _ => {}
        }
        true
    }

    fn set_status(&self, id: Uuid, status: RunStatus) {
        if let Some(run) = self.run(id) {
            run.status.set(status);
        }
    }

    fn finish(&self, id: Uuid, status: RunStatus, at: DateTime<Utc>, error: Option<String>) {
        if let Some(run) = self.run(id) {
            run.status.set(status);
            run.completed_at.set(Some(at));
            run.current_step.set(None);
            if error.is_some() {
                run.error.set(error);
            }
            // Finished runs move below the active ones, newest first.
            self.runs.update(|runs| {
                if let Some(index) = runs.iter().position(|r| r.id == id) {
                    let run = runs.remove(index);
                    let first_finished = runs
                        .iter()
                        .position(|r| !r.is_active())
                        .unwrap_or(runs.len());
                    runs.insert(first_finished, run);
                }
                trim_recent(runs);
            });
        }
    }
}

/// Keeps every active run and the newest finished ones.
fn trim_recent(runs: &mut Vec<RunView>) {
    let mut finished = 0;
    runs.retain(|r| {
        if r.is_active() {
            true
        } else {
            finished += 1;
            finished <= RECENT_KEPT
        }
    });
}
