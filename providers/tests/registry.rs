//! The registry: built-ins, configured instances, keys and base URLs from the environment.

mod common;

use std::collections::BTreeMap;

use common::{call, no_env, request};
use providers::{
    config::HttpConfig,
    fakes::{FakeServer, Reply},
    ErrorKind, ProviderConfig, ProviderKind, Registry, SimulatedConfig, Usage,
};

#[test]
fn built_ins_are_present_with_nothing_configured() {
    let registry = Registry::new(&BTreeMap::new(), &no_env).expect("valid");

    assert_eq!(
        registry.names(),
        ["anthropic", "gemini", "openai", "simulated"]
    );
    assert_eq!(registry.kind("simulated"), Some(ProviderKind::Simulated));
    assert_eq!(registry.kind("openai"), Some(ProviderKind::Openai));
    assert_eq!(registry.kind("anthropic"), Some(ProviderKind::Anthropic));
    assert_eq!(registry.kind("gemini"), Some(ProviderKind::Gemini));
    assert!(registry.get("nope").is_none());
}

#[test]
fn config_parses_from_toml_and_replaces_built_ins() {
    #[derive(serde::Deserialize)]
    struct File {
        providers: BTreeMap<String, ProviderConfig>,
    }
    let file: File = toml::from_str(
        r#"
        [providers.local-llama]
        kind = "openai"
        base_url = "http://localhost:11434/v1"

        [providers.openai]
        kind = "simulated"
        tokens_per_second = 0
        "#,
    )
    .expect("valid TOML");

    let registry = Registry::new(&file.providers, &no_env).expect("valid");

    assert_eq!(registry.kind("local-llama"), Some(ProviderKind::Openai));
    assert_eq!(registry.kind("openai"), Some(ProviderKind::Simulated));
    assert_eq!(registry.names().len(), 5);
}

#[tokio::test]
async fn missing_key_is_auth_on_call_not_at_start() {
    let registry =
        Registry::new(&BTreeMap::new(), &no_env).expect("a missing key is no start-up error");
    let anthropic = registry.get("anthropic").expect("built in");

    let error = call(anthropic.as_ref(), request("claude-haiku-4-5"))
        .await
        .error
        .expect("an error");

    assert_eq!(error.kind, ErrorKind::Auth);
    assert_eq!(
        error.message,
        "ANTHROPIC_API_KEY is not set: export it or set api_key in [providers.anthropic] of the config file"
    );
}

#[tokio::test]
async fn named_instance_names_its_own_section_and_variable() {
    let mut configured = BTreeMap::new();
    configured.insert(
        "work-gemini".to_owned(),
        ProviderConfig::Gemini(HttpConfig {
            api_key_env: Some("WORK_GEMINI_KEY".to_owned()),
            ..HttpConfig::default()
        }),
    );
    let registry = Registry::new(&configured, &no_env).expect("valid");
    let provider = registry.get("work-gemini").expect("configured");

    let error = call(provider.as_ref(), request("gemini-2.5-flash"))
        .await
        .error
        .expect("an error");

    assert_eq!(
        error.message,
        "WORK_GEMINI_KEY is not set: export it or set api_key in [providers.work-gemini] of the config file"
    );
}

#[tokio::test]
async fn env_supplies_key_and_base_url() {
    let server = FakeServer::start(
        ProviderKind::Openai,
        vec![Reply::stream(&["from env"], Usage::default())],
    )
    .await;
    let url = server.url().to_owned();
    let env = move |name: &str| match name {
        "OPENAI_BASE_URL" => Some(url.clone()),
        "OPENAI_API_KEY" => Some("sk-env-key".to_owned()),
        _ => None,
    };
    let registry = Registry::new(&BTreeMap::new(), &env).expect("valid");

    let outcome = call(
        registry.get("openai").expect("built in").as_ref(),
        request("gpt-4o"),
    )
    .await;

    assert_eq!(outcome.text(), "from env");
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer sk-env-key")
    );
}

#[test]
fn bad_base_url_names_the_instance() {
    let mut configured = BTreeMap::new();
    configured.insert(
        "local-llama".to_owned(),
        ProviderConfig::Openai(HttpConfig {
            base_url: Some("localhost:11434".to_owned()),
            ..HttpConfig::default()
        }),
    );

    let error = Registry::new(&configured, &no_env).expect_err("invalid");

    assert!(error.contains("local-llama"), "{error}");
    assert!(error.contains("localhost:11434"), "{error}");
}

#[test]
fn bad_env_base_url_names_the_variable() {
    let env = |name: &str| (name == "ANTHROPIC_BASE_URL").then(|| "ftp://example".to_owned());

    let error = Registry::new(&BTreeMap::new(), &env).expect_err("invalid");

    assert!(error.contains("anthropic"), "{error}");
    assert!(error.contains("ANTHROPIC_BASE_URL"), "{error}");
}

#[test]
fn bad_simulated_config_names_the_instance() {
    let mut configured = BTreeMap::new();
    configured.insert(
        "flaky".to_owned(),
        ProviderConfig::Simulated(SimulatedConfig {
            stall_rate: -0.1,
            ..SimulatedConfig::default()
        }),
    );

    let error = Registry::new(&configured, &no_env).expect_err("invalid");

    assert!(
        error.contains("flaky") && error.contains("stall_rate"),
        "{error}"
    );
}

#[test]
fn debug_output_never_shows_keys() {
    let env = |name: &str| (name == "OPENAI_API_KEY").then(|| "sk-very-secret-key".to_owned());
    let registry = Registry::new(&BTreeMap::new(), &env).expect("valid");

    let shown = format!("{registry:?}");

    assert!(!shown.contains("sk-very-secret-key"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}
