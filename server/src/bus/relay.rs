//! Several instances on one database: each flushed batch is announced with one NOTIFY carrying
//! its origin and sequence range (a few dozen bytes, far below NOTIFY's 8000-byte limit); the
//! other instances read that range's events of that origin and deliver them to their own
//! subscribers. Streamed chunks and progress are not persisted and so stay on their instance.

use std::{sync::Arc, time::Duration};

use serde::Deserialize;
use sqlx::{postgres::PgListener, PgPool};
use uuid::Uuid;

use super::{Delivered, EventBus};
use crate::db::{events::read_range, projection::NOTIFY_CHANNEL};

#[derive(Debug, Deserialize)]
struct Announcement {
    origin: Uuid,
    from: i64,
    to: i64,
}

/// Runs until the process ends; reconnects when the listening connection drops.
pub async fn run(bus: EventBus, pool: PgPool) {
    loop {
        if let Err(error) = listen(&bus, &pool).await {
            if pool.is_closed() {
                return; // shutting down
            }
            tracing::warn!("event relay interrupted ({error}); reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(bus: &EventBus, pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    loop {
        let notification = listener.recv().await?;
        let Ok(batch) = serde_json::from_str::<Announcement>(notification.payload()) else {
            tracing::warn!(
                "ignoring a malformed announcement: {}",
                notification.payload()
            );
            continue;
        };
        if batch.origin == bus.instance() {
            continue;
        }
        for event in read_range(pool, batch.origin, batch.from, batch.to).await? {
            bus.deliver_relayed(Arc::new(Delivered::new(event)));
        }
    }
}
