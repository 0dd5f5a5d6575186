use leptos::prelude::*;

use super::codec::Json;

use crate::{error::AppError, models::Health};

#[server(output = Json)]
pub async fn get_health() -> Result<Health, AppError> {
    Ok(crate::backend::backend()?.health().await)
}
