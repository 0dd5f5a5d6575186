//! The studio's second wave through the `Backend` the pages call: a step's prompt previewed as a
//! run would send it (inputs, defaults, env, earlier outputs, tokens, budget, cost) without
//! calling a provider; a stored run's outputs to preview with; the providers page's list, which
//! never carries a key; and its connection test, a real request to a local server speaking the
//! OpenAI wire format.

use crate::common::{self, object, refused};

use std::{collections::BTreeMap, time::Duration};

use app::{backend::Backend, error::AppError, models::Preview};
use providers::{
    fakes::{FakeServer, Reply},
    HttpConfig, Price, ProviderConfig, ProviderKind, Usage,
};
use serde_json::{json, Map, Value};
use server::state::AppState;
use sqlx::PgPool;
use uuid::Uuid;

const SECRET: &str = "sk-studio-test-secret-0123456789";

/// The built-in providers (keys from `env`), `instant` (a simulator that answers at once) and
/// whatever `configured` adds, priced by the built-ins plus `prices`.
async fn studio(
    pool: PgPool,
    configured: BTreeMap<String, ProviderConfig>,
    env: &dyn Fn(&str) -> Option<String>,
    prices: Vec<Price>,
) -> AppState {
    common::state_with_providers(pool, configured, env, prices).await
}

async fn plain(pool: PgPool) -> AppState {
    studio(pool, BTreeMap::new(), &|_| None, Vec::new()).await
}

const REVIEW: &str = r#"name: review
inputs:
  topic:
    description: What about
  tone: calm
env:
  AUDIENCE: engineers
defaults:
  provider: openai
  model: gpt-4o-mini
steps:
  - name: outline
    prompt: Outline {{ topic }} for {{ env.AUDIENCE }}.
  - name: draft
    system: Write for {{ env.AUDIENCE }} in a {{ inputs.tone }} tone.
    prompt: "Expand this outline about {{ topic }}:\n{{ steps.outline.output }}"
    max_tokens: 300
  - name: tight
    provider: instant
    model: not-priced-anywhere
    prompt: "Shorten: {{ steps.draft.output }}"
    max_tokens: 300
    token_budget: 40
  - name: counted
    depends_on: [outline]
    prompt: "{{ topic | int }} points"
"#;

async fn preview(state: &AppState, step: &str, inputs: Value, outputs: Value) -> Preview {
    state
        .preview(REVIEW, step, object(inputs), object(outputs))
        .await
        .expect("preview")
}

#[sqlx::test(migrations = "../migrations")]
async fn preview_renders_inputs_defaults_env_and_earlier_outputs(pool: PgPool) {
    let state = plain(pool).await;
    let draft = preview(
        &state,
        "draft",
        json!({ "topic": "caching" }),
        json!({ "outline": "1. why\n2. how" }),
    )
    .await;
    let system = "Write for engineers in a calm tone.";
    let prompt = "Expand this outline about caching:\n1. why\n2. how";
    assert_eq!(draft.step, "draft");
    assert_eq!(
        (draft.provider.as_str(), draft.model.as_str()),
        ("openai", "gpt-4o-mini")
    );
    assert_eq!(draft.system.as_deref(), Some(system));
    assert_eq!(draft.prompt, prompt);
    let tokens = providers::tokens::count(system) + providers::tokens::count(prompt);
    assert_eq!(draft.input_tokens, tokens);
    assert_eq!(draft.max_tokens, 300);
    // gpt-4o-mini: $0.15 per million prompt tokens, $0.60 per million completion tokens.
    let expected = (f64::from(tokens) * 0.15 + 300.0 * 0.60) / 1_000_000.0;
    let cost = draft.cost_usd.expect("gpt-4o-mini has a price");
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");

    // A given input wins over its default; an output given as JSON reads as its JSON text.
    let blunt = preview(
        &state,
        "draft",
        json!({ "topic": "caching", "tone": "blunt" }),
        json!({ "outline": ["why", "how"] }),
    )
    .await;
    assert_eq!(
        blunt.system.as_deref(),
        Some("Write for engineers in a blunt tone.")
    );
    assert_eq!(
        blunt.prompt,
        "Expand this outline about caching:\n[\"why\",\"how\"]"
    );

    // An earlier output not given renders as empty text.
    let no_outline = preview(&state, "draft", json!({ "topic": "caching" }), json!({})).await;
    assert_eq!(no_outline.prompt, "Expand this outline about caching:\n");

    // The budget lowers the completion's limit to what the prompt leaves, as a run does; no
    // price for the model: no cost.
    let tight = preview(
        &state,
        "tight",
        json!({ "topic": "caching" }),
        json!({ "draft": "Short text." }),
    )
    .await;
    assert_eq!(tight.prompt, "Shorten: Short text.");
    assert_eq!(tight.system, None);
    assert_eq!(tight.input_tokens, providers::tokens::count(&tight.prompt));
    assert_eq!(tight.max_tokens, 40 - tight.input_tokens);
    assert_eq!(tight.cost_usd, None);
}

#[sqlx::test(migrations = "../migrations")]
async fn preview_says_what_to_fix(pool: PgPool) {
    let state = plain(pool).await;
    let none = || Map::new();

    let message = refused(state.preview(REVIEW, "draft", none(), none()).await);
    assert!(
        message.contains("cannot preview step `draft`")
            && message.contains("input `topic` is required"),
        "{message}"
    );

    let message = refused(
        state
            .preview(REVIEW, "drfat", object(json!({ "topic": "x" })), none())
            .await,
    );
    assert!(
        message.contains("no step `drfat`") && message.contains("outline, draft"),
        "{message}"
    );

    let message = refused(
        state
            .preview(
                REVIEW,
                "draft",
                object(json!({ "topic": "x", "tpoic": 1 })),
                none(),
            )
            .await,
    );
    assert!(message.contains("unknown input `tpoic`"), "{message}");

    let broken = REVIEW.replace("max_tokens: 300", "max_tokns: 300");
    let message = refused(
        state
            .preview(&broken, "draft", object(json!({ "topic": "x" })), none())
            .await,
    );
    assert!(
        message.contains("problem") && message.contains("max_tokns"),
        "{message}"
    );

    // A template that cannot render with these values: where, and which output was missing.
    let message = refused(
        state
            .preview(
                REVIEW,
                "counted",
                object(json!({ "topic": "many" })),
                none(),
            )
            .await,
    );
    assert!(
        message.contains("prompt template") && message.contains("`outline`"),
        "{message}"
    );

    // A prompt that uses up the token budget fails its step in a run: the preview says so.
    let long = "word ".repeat(100);
    let message = refused(
        state
            .preview(
                REVIEW,
                "tight",
                object(json!({ "topic": "x" })),
                object(json!({ "draft": long })),
            )
            .await,
    );
    assert!(message.contains("token_budget of 40"), "{message}");
}

#[sqlx::test(migrations = "../migrations")]
async fn run_outputs_are_each_steps_latest_completed_response(pool: PgPool) {
    let state = plain(pool).await;
    let yaml = "name: two
inputs:
  topic: caching
defaults:
  provider: instant
  model: sim-small
steps:
  - name: outline
    prompt: Outline {{ topic }}
  - name: draft
    prompt: Expand {{ steps.outline.output }}
";
    state.save(yaml, None, "", false).await.expect("save");
    let id = state
        .run("two", 1, Map::new(), Vec::new())
        .await
        .expect("run");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let detail = loop {
        let detail = state.execution(id).await.expect("stored");
        if !detail.status.is_active() {
            break detail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let outputs = state.run_outputs(id).await.expect("outputs");
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    for step in &detail.steps {
        let response = step.response.as_deref().expect("a response");
        assert!(!response.is_empty());
        assert_eq!(
            outputs.get(&step.step),
            Some(&json!(response)),
            "{}",
            step.step
        );
    }

    let unknown = Uuid::new_v4();
    assert!(matches!(
        state.run_outputs(unknown).await,
        Err(AppError::NotFound(message)) if message.contains(&unknown.to_string())
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn providers_say_where_keys_come_from_and_never_show_one(pool: PgPool) {
    let mut configured = BTreeMap::new();
    configured.insert(
        "local".to_owned(),
        ProviderConfig::Openai(HttpConfig {
            base_url: Some("http://127.0.0.1:9/v1".to_owned()),
            api_key: Some(SECRET.to_owned()),
            api_key_env: None,
        }),
    );
    configured.insert(
        "team".to_owned(),
        ProviderConfig::Anthropic(HttpConfig {
            api_key_env: Some("TEAM_ANTHROPIC_KEY".to_owned()),
            ..HttpConfig::default()
        }),
    );
    let env = |name: &str| match name {
        "OPENAI_API_KEY" | "TEAM_ANTHROPIC_KEY" => Some(SECRET.to_owned()),
        _ => None,
    };
    let state = studio(pool, configured, &env, Vec::new()).await;
    let listed = state.providers().await;
    let serialized = serde_json::to_string(&listed).expect("json");
    assert!(
        !serialized.contains(SECRET) && !serialized.contains("0123456789"),
        "{serialized}"
    );

    let find = |name: &str| {
        listed
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} listed: {serialized}"))
    };
    let local = find("local");
    assert_eq!(local.kind, "openai");
    assert_eq!(local.base_url.as_deref(), Some("http://127.0.0.1:9/v1"));
    assert!(local.key_set);
    assert_eq!(local.key_source, "config file");
    assert!(
        local.models.iter().any(|m| m == "gpt-4o"),
        "{:?}",
        local.models
    );

    let openai = find("openai");
    assert!(openai.key_set);
    assert_eq!(openai.key_source, "environment OPENAI_API_KEY");
    let team = find("team");
    assert_eq!(team.kind, "anthropic");
    assert!(team.key_set);
    assert_eq!(team.key_source, "environment TEAM_ANTHROPIC_KEY");
    // Not set: where it would be read from.
    let gemini = find("gemini");
    assert!(!gemini.key_set);
    assert_eq!(gemini.key_source, "environment GEMINI_API_KEY");

    let instant = find("instant");
    assert_eq!(instant.kind, "simulated");
    assert_eq!(instant.base_url, None);
    assert!(!instant.key_set);
    assert_eq!(instant.key_source, "no key needed");
    assert_eq!(instant.models, ["sim-large", "sim-small"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn test_provider_makes_a_real_request_and_reports_refusals(pool: PgPool) {
    let answering = FakeServer::start(
        ProviderKind::Openai,
        vec![Reply::stream(
            &["OK"],
            Usage {
                prompt_tokens: 9,
                completion_tokens: 1,
            },
        )],
    )
    .await;
    // Providers echo the key they were given in a 401; it must not reach the page.
    let refusing = FakeServer::start(
        ProviderKind::Openai,
        vec![Reply::error(
            401,
            &format!("Incorrect API key provided: {SECRET}"),
        )],
    )
    .await;
    let mut configured = BTreeMap::new();
    configured.insert(
        "answering".to_owned(),
        ProviderConfig::Openai(answering.http_config(SECRET)),
    );
    configured.insert(
        "refusing".to_owned(),
        ProviderConfig::Openai(refusing.http_config(SECRET)),
    );
    // A free model for the answering instance: the cheapest known one is what the test asks.
    let prices = vec![Price {
        provider: "answering".to_owned(),
        model: "tiny-free".to_owned(),
        input_per_mtok: 0.0,
        output_per_mtok: 0.0,
    }];
    let state = studio(pool, configured, &|_| None, prices).await;

    let ok = state.test_provider("answering").await.expect("known");
    assert!(ok.ok, "{ok:?}");
    assert!(ok.millis <= 10_000, "{ok:?}");
    assert!(ok.detail.contains("tiny-free"), "{ok:?}");
    let requests = answering.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].body["model"], "tiny-free");
    assert_eq!(requests[0].body["max_tokens"], 1);

    let refused = state.test_provider("refusing").await.expect("known");
    assert!(!refused.ok, "{refused:?}");
    assert!(
        refused.detail.contains("401") && refused.detail.contains("Incorrect API key"),
        "{refused:?}"
    );
    assert!(!refused.detail.contains(SECRET), "{refused:?}");
    assert_eq!(refusing.requests().len(), 1);

    // The simulated provider is called for real too.
    let simulated = state.test_provider("instant").await.expect("known");
    assert!(simulated.ok, "{simulated:?}");

    assert!(matches!(
        state.test_provider("nope").await,
        Err(AppError::NotFound(message)) if message.contains("instant")
    ));
}
