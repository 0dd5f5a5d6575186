//! The price table: built-ins, prefixes, overrides, instances, unknown models.

use providers::{Price, PriceTable, ProviderKind, Usage};

const MILLION_EACH: Usage = Usage {
    prompt_tokens: 1_000_000,
    completion_tokens: 1_000_000,
};

fn price(provider: &str, model: &str, input: f64, output: f64) -> Price {
    Price {
        provider: provider.to_owned(),
        model: model.to_owned(),
        input_per_mtok: input,
        output_per_mtok: output,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn exact_built_in() {
    let table = PriceTable::new(Vec::new());
    let usage = Usage {
        prompt_tokens: 1000,
        completion_tokens: 500,
    };
    // sim-small: 0.5 in, 1.5 out per million.
    let cost = table.cost("simulated", ProviderKind::Simulated, "sim-small", usage);
    assert!(close(cost, 0.0005 + 0.00075), "{cost}");
    let cost = table.cost(
        "simulated",
        ProviderKind::Simulated,
        "sim-large",
        MILLION_EACH,
    );
    assert!(close(cost, 18.0), "{cost}");
}

#[test]
fn prefix_catches_dated_snapshots_and_the_longest_wins() {
    let table = PriceTable::new(Vec::new());
    let cost = |model| table.cost("openai", ProviderKind::Openai, model, MILLION_EACH);

    assert!(close(cost("gpt-4o-2024-08-06"), 12.5));
    assert!(close(cost("gpt-4o-mini-2024-07-18"), 0.75));
    assert!(close(cost("gpt-4.1-nano"), 0.5));
    let sonnet = table.cost(
        "anthropic",
        ProviderKind::Anthropic,
        "claude-sonnet-4-5-20250929",
        MILLION_EACH,
    );
    assert!(close(sonnet, 18.0), "{sonnet}");
    let flash = table.cost(
        "gemini",
        ProviderKind::Gemini,
        "gemini-2.5-flash",
        MILLION_EACH,
    );
    assert!(close(flash, 2.8), "{flash}");
}

#[test]
fn exact_beats_prefix() {
    let table = PriceTable::new(vec![
        price("openai", "ft:*", 3.0, 12.0),
        price("openai", "ft:gpt-4o-mini:acme", 0.3, 1.2),
    ]);

    let exact = table.cost(
        "openai",
        ProviderKind::Openai,
        "ft:gpt-4o-mini:acme",
        MILLION_EACH,
    );
    let prefix = table.cost(
        "openai",
        ProviderKind::Openai,
        "ft:gpt-4o:other",
        MILLION_EACH,
    );

    assert!(close(exact, 1.5), "{exact}");
    assert!(close(prefix, 15.0), "{prefix}");
}

#[test]
fn overrides_win() {
    let table = PriceTable::new(vec![price("openai", "gpt-4o", 1.0, 2.0)]);

    let cost = table.cost("openai", ProviderKind::Openai, "gpt-4o", MILLION_EACH);

    assert!(close(cost, 3.0), "{cost}");
}

#[test]
fn instance_rows_beat_kind_rows() {
    // A local server speaking the OpenAI API costs nothing, whatever the model is called.
    let table = PriceTable::new(vec![price("local-llama", "*", 0.0, 0.0)]);

    let local = table.cost("local-llama", ProviderKind::Openai, "gpt-4o", MILLION_EACH);
    let remote = table.cost("openai", ProviderKind::Openai, "gpt-4o", MILLION_EACH);

    assert!(close(local, 0.0), "{local}");
    assert!(close(remote, 12.5), "{remote}");
}

#[test]
fn unknown_models_cost_nothing() {
    let table = PriceTable::new(Vec::new());

    assert_eq!(
        table.cost("openai", ProviderKind::Openai, "mystery-9000", MILLION_EACH),
        0.0
    );
    assert!(table
        .find("openai", ProviderKind::Openai, "mystery-9000")
        .is_none());
    // A row for one kind does not price another kind's model.
    assert_eq!(
        table.cost("gemini", ProviderKind::Gemini, "gpt-4o", MILLION_EACH),
        0.0
    );
}

#[test]
fn every_named_model_has_a_price() {
    let table = PriceTable::new(Vec::new());
    let models = [
        (ProviderKind::Openai, "gpt-4o"),
        (ProviderKind::Openai, "gpt-4o-mini"),
        (ProviderKind::Openai, "gpt-4.1"),
        (ProviderKind::Openai, "gpt-4.1-mini"),
        (ProviderKind::Openai, "gpt-4.1-nano"),
        (ProviderKind::Openai, "o3"),
        (ProviderKind::Openai, "o4-mini"),
        (ProviderKind::Openai, "gpt-5"),
        (ProviderKind::Openai, "gpt-5-mini"),
        (ProviderKind::Anthropic, "claude-opus-4-1"),
        (ProviderKind::Anthropic, "claude-sonnet-4-5"),
        (ProviderKind::Anthropic, "claude-haiku-4-5"),
        (ProviderKind::Anthropic, "claude-3-5-haiku-latest"),
        (ProviderKind::Gemini, "gemini-2.5-pro"),
        (ProviderKind::Gemini, "gemini-2.5-flash"),
        (ProviderKind::Gemini, "gemini-2.0-flash"),
    ];
    for (kind, model) in models {
        assert!(
            table.cost(kind.as_str(), kind, model, MILLION_EACH) > 0.0,
            "{kind} {model}"
        );
    }
}
