//! The named provider instances a server can use.

use std::{collections::BTreeMap, sync::Arc};

use crate::{Provider, ProviderConfig, ProviderKind};

/// Built-in instances (`simulated`, `openai`, `anthropic`, `gemini`, keys and base URLs from the
/// environment) plus the config file's named ones, which may replace built-ins.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    providers: BTreeMap<String, Arc<dyn Provider>>,
}

impl Registry {
    /// `env` reads an environment variable (a closure so tests need not touch the process env).
    pub fn new(
        configured: &BTreeMap<String, ProviderConfig>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        unimplemented!("{configured:?} {:?}", env("X"))
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }

    pub fn kind(&self, name: &str) -> Option<ProviderKind> {
        self.providers.get(name).map(|p| p.kind())
    }

    /// Adds or replaces one instance (tests use it for fakes).
    pub fn insert(&mut self, name: impl Into<String>, provider: Arc<dyn Provider>) {
        self.providers.insert(name.into(), provider);
    }
}
