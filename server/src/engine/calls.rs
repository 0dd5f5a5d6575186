//! The requests the engine sends to each provider and how many of them failed, for `/metrics`.
//! Counted where a request is sent (a step's attempt, the studio's connection test), so every
//! way to a provider is counted, and once.

use std::{collections::BTreeMap, sync::Mutex};

/// One provider's requests so far, and those that ended in an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Requests sent (each attempt of a step is one).
    pub requests: u64,
    /// Requests the provider refused or broke off (an error status, a cut stream, garbage) or
    /// that did not complete within their timeout. A cancelled run's request is not one.
    pub errors: u64,
}

/// Counts per provider instance name. The names are the configured instances (a few), so the
/// metric's labels stay few.
#[derive(Debug, Default)]
pub struct ProviderCalls {
    counts: Mutex<BTreeMap<String, CallCounts>>,
}

impl ProviderCalls {
    /// Starts every configured provider at zero, so a scrape shows each before its first call.
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Self {
            counts: Mutex::new(
                names
                    .into_iter()
                    .map(|name| (name, CallCounts::default()))
                    .collect(),
            ),
        }
    }

    pub fn sent(&self, provider: &str) {
        self.with(provider, |counts| counts.requests += 1);
    }

    pub fn failed(&self, provider: &str) {
        self.with(provider, |counts| counts.errors += 1);
    }

    /// Every provider's counts, by name.
    pub fn counts(&self) -> Vec<(String, CallCounts)> {
        self.lock()
            .iter()
            .map(|(name, counts)| (name.clone(), *counts))
            .collect()
    }

    fn with(&self, provider: &str, change: impl FnOnce(&mut CallCounts)) {
        let mut counts = self.lock();
        match counts.get_mut(provider) {
            Some(entry) => change(entry),
            None => change(counts.entry(provider.to_owned()).or_default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, CallCounts>> {
        // The counts stay consistent whatever panicked while holding the lock.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_errors_are_counted_per_provider() {
        let calls = ProviderCalls::new(["openai".to_owned(), "simulated".to_owned()]);
        calls.sent("simulated");
        calls.sent("simulated");
        calls.failed("simulated");
        // An instance added after start (the registry allows it) is counted from its first call.
        calls.sent("local");
        let counts: BTreeMap<_, _> = calls.counts().into_iter().collect();
        assert_eq!(counts["openai"], CallCounts::default());
        assert_eq!(
            counts["simulated"],
            CallCounts {
                requests: 2,
                errors: 1
            }
        );
        assert_eq!(counts["local"].requests, 1);
    }
}
