//! Live totals: folds the event stream into `metrics:updated` (at most every 500 ms, only when
//! something changed) and a `metrics_snapshots` row at a fixed interval.

use std::{
    collections::{HashSet, VecDeque},
    time::{Duration, Instant},
};

use app::models::{
    events::{Metrics, StepStatus},
    EventBody,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::bus::{EventBus, Filter, Next};

const UPDATE_EVERY: Duration = Duration::from_millis(500);
/// Latency, error rate and throughput look at the steps finished in this window.
const RECENT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Totals {
    tokens: u64,
    cost_usd: f64,
    running: HashSet<Uuid>,
    /// (finished at, duration in ms, failed)
    recent_steps: VecDeque<(Instant, u64, bool)>,
}

impl Totals {
    /// Returns whether the event changed anything shown.
    fn apply(&mut self, body: &EventBody) -> bool {
        match body {
            EventBody::PipelineStarted(e) => self.running.insert(e.execution_id),
            EventBody::PipelineCompleted(e) => self.running.remove(&e.execution_id),
            EventBody::PipelineError(e) => self.running.remove(&e.execution_id),
            EventBody::PipelineCancelled(e) => self.running.remove(&e.execution_id),
            EventBody::StepCompleted(e) => {
                self.tokens += u64::from(e.tokens);
                self.cost_usd += e.cost_usd;
                self.recent_steps.push_back((
                    Instant::now(),
                    e.duration_ms,
                    e.status == StepStatus::Failed,
                ));
                true
            }
            _ => false,
        }
    }

    fn snapshot(&mut self) -> Metrics {
        let now = Instant::now();
        while self
            .recent_steps
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > RECENT)
        {
            self.recent_steps.pop_front();
        }
        let mut durations: Vec<u64> = self.recent_steps.iter().map(|(_, d, _)| *d).collect();
        durations.sort_unstable();
        let failed = self.recent_steps.iter().filter(|(_, _, f)| *f).count();
        let finished = self.recent_steps.len();
        Metrics {
            tokens_total: self.tokens,
            cost_total_usd: self.cost_usd,
            running: self.running.len() as u32,
            error_rate: if finished == 0 {
                0.0
            } else {
                failed as f64 / finished as f64
            },
            latency_p50_ms: percentile(&durations, 0.50),
            latency_p95_ms: percentile(&durations, 0.95),
            latency_p99_ms: percentile(&durations, 0.99),
            throughput_per_min: finished as f64 * 60.0 / RECENT.as_secs_f64(),
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64)
}

/// Totals of what the store already holds.
async fn load_totals(pool: &PgPool) -> Totals {
    let mut totals = Totals::default();
    if let Ok((tokens, cost)) =
        sqlx::query_as::<_, (i64, f64)>("SELECT tokens, cost_usd::float8 FROM store_totals")
            .fetch_one(pool)
            .await
    {
        totals.tokens = tokens.max(0) as u64;
        totals.cost_usd = cost;
    }
    if let Ok(running) = sqlx::query_scalar::<_, uuid::Uuid>(
        "SELECT id FROM pipeline_executions WHERE status IN ('running', 'paused')",
    )
    .fetch_all(pool)
    .await
    {
        totals.running.extend(running);
    }
    totals
}

/// Starts the aggregator; totals start from what the store already holds.
pub async fn start(bus: EventBus, pool: PgPool, snapshot_every: Duration) {
    let mut totals = load_totals(&pool).await;
    let (mut subscription, _) = bus.subscribe(Filter::default(), None);
    tokio::spawn(async move {
        let mut changed = false;
        let mut update = tokio::time::interval(UPDATE_EVERY);
        let mut snapshot = tokio::time::interval(snapshot_every);
        snapshot.tick().await;
        loop {
            tokio::select! {
                next = subscription.next() => match next {
                    Next::Event(event) => changed |= totals.apply(&event.body),
                    // Missed events would make the totals drift: start again from the store
                    // (which may trail by one unflushed batch, never by more).
                    Next::Lagged(_) => {
                        totals = load_totals(&pool).await;
                        changed = true;
                    }
                    Next::Closed => return,
                },
                _ = update.tick() => {
                    if changed {
                        changed = false;
                        bus.publish(EventBody::MetricsUpdated(totals.snapshot()));
                    }
                }
                _ = snapshot.tick() => {
                    let metrics = totals.snapshot();
                    if let Err(error) = store_snapshot(&pool, &metrics).await {
                        tracing::warn!("cannot store a metrics snapshot: {error}");
                    }
                }
            }
        }
    });
}

async fn store_snapshot(pool: &PgPool, m: &Metrics) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO metrics_snapshots (running, tokens_total, cost_total_usd, error_rate,
            latency_p50_ms, latency_p95_ms, latency_p99_ms, throughput_per_min)
         VALUES ($1, $2, $3::numeric, $4, $5, $6, $7, $8)",
    )
    .bind(m.running as i32)
    .bind(m.tokens_total as i64)
    .bind(m.cost_total_usd)
    .bind(m.error_rate)
    .bind(m.latency_p50_ms)
    .bind(m.latency_p95_ms)
    .bind(m.latency_p99_ms)
    .bind(m.throughput_per_min)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.50), Some(50.0));
        assert_eq!(percentile(&values, 0.95), Some(95.0));
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&[7], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
