//! Client event ids being published by in-flight ingest requests, so that two concurrent
//! retries of one batch do not both publish it (the store's unique `client_id` catches the rest).

use std::collections::HashSet;

/// Client ids being stored by in-flight requests, so two concurrent retries of one batch do not
/// both publish it.
#[derive(Clone, Default)]
pub struct IngestClaims(std::sync::Arc<std::sync::Mutex<HashSet<String>>>);

/// The ids one request claimed; released when dropped (by then they are in Postgres).
pub struct Claim {
    owned: HashSet<String>,
    claims: IngestClaims,
}

impl IngestClaims {
    pub fn claim<'a>(&self, ids: impl Iterator<Item = &'a String>) -> Claim {
        let mut taken = self.lock();
        let owned = ids
            .filter(|id| taken.insert((*id).clone()))
            .cloned()
            .collect();
        Claim {
            owned,
            claims: self.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Claim {
    pub fn owns(&self, id: &str) -> bool {
        self.owned.contains(id)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut taken = self.claims.lock();
        for id in &self.owned {
            taken.remove(id);
        }
    }
}
