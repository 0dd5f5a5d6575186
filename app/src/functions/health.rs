use leptos::prelude::*;

use crate::{error::AppError, models::Health};

#[server]
pub async fn get_health() -> Result<Health, AppError> {
    Ok(crate::backend::backend()?.health().await)
}
