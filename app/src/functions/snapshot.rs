use leptos::prelude::*;

use super::codec::Json;

use crate::{error::AppError, models::Snapshot};

/// The dashboard's state; subscribe to `/api/events` with `Last-Event-ID: <seq>` to continue
/// from it without a gap or a duplicate.
#[server(output = Json)]
pub async fn get_snapshot() -> Result<Snapshot, AppError> {
    crate::backend::backend()?.snapshot().await
}
