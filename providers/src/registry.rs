//! The named provider instances a server can use.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    config::HttpConfig, Anthropic, Gemini, OpenAi, Provider, ProviderConfig, ProviderKind,
    Simulated, SimulatedConfig,
};

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
        let built_in = [
            (
                "simulated",
                ProviderConfig::Simulated(SimulatedConfig::default()),
            ),
            ("openai", ProviderConfig::Openai(HttpConfig::default())),
            (
                "anthropic",
                ProviderConfig::Anthropic(HttpConfig::default()),
            ),
            ("gemini", ProviderConfig::Gemini(HttpConfig::default())),
        ];
        let mut registry = Self::default();
        for (name, config) in built_in
            .iter()
            .map(|(name, config)| (*name, config))
            .filter(|(name, _)| !configured.contains_key(*name))
            .chain(
                configured
                    .iter()
                    .map(|(name, config)| (name.as_str(), config)),
            )
        {
            registry.insert(name, build(name, config, env)?);
        }
        Ok(registry)
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

/// One instance from its config; errors name the instance so the config file can be fixed.
pub fn build(
    name: &str,
    config: &ProviderConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Provider>, String> {
    Ok(match config {
        ProviderConfig::Openai(http) => Arc::new(OpenAi::new(name, http, env)?),
        ProviderConfig::Anthropic(http) => Arc::new(Anthropic::new(name, http, env)?),
        ProviderConfig::Gemini(http) => Arc::new(Gemini::new(name, http, env)?),
        ProviderConfig::Simulated(sim) => {
            Arc::new(Simulated::new(sim.clone()).map_err(|why| format!("provider {name}: {why}"))?)
        }
    })
}
