use leptos::prelude::*;

use crate::{
    error::AppError,
    models::{Health, StoreSummary},
};

#[server]
pub async fn get_health() -> Result<Health, AppError> {
    Ok(crate::backend::backend()?.health().await)
}

#[server]
pub async fn get_store_summary() -> Result<StoreSummary, AppError> {
    crate::backend::backend()?.store_summary().await
}
