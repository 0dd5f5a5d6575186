//! `/compare?a=…&b=…`: two runs side by side — what each was given, each step's model, tokens,
//! cost and latency, and the differences between their prompts and responses (the studio's
//! line diff, `a` as the old text and `b` as the new). Reached by selecting two rows of `/runs`.

use leptos::{either::Either, prelude::*};
use leptos_router::hooks::use_location;
use uuid::Uuid;

use crate::routes::{api::get_json, studio::DiffView};
use crate::{
    components::runs::StatusBadge,
    format,
    models::{logs::query_pairs, ExecutionDetail, StepDetail},
};

/// The two runs the address names, or what to fix.
fn runs_of(query: &str) -> Result<(Uuid, Uuid), String> {
    let mut ids = [None, None];
    for (key, value) in query_pairs(query) {
        let slot = match key {
            "a" => 0,
            "b" => 1,
            _ => continue,
        };
        let value = value.unwrap_or_default();
        ids[slot] = Some(
            value
                .trim()
                .parse()
                .map_err(|_| format!("`{key}` must be a run id (a UUID), not {value:?}"))?,
        );
    }
    match ids {
        [Some(a), Some(b)] => Ok((a, b)),
        _ => Err(
            "name two runs: /compare?a=<run id>&b=<run id> (select two rows in the \
                  history and press Compare)"
                .to_owned(),
        ),
    }
}

#[component]
pub fn ComparePage() -> impl IntoView {
    let location = use_location();
    let runs = Memo::new(move |_| location.search.with(|s| runs_of(s)));
    let loaded = LocalResource::new(move || {
        let runs = runs.get();
        async move {
            let (a, b) = runs?;
            let a = get_json::<ExecutionDetail>(&format!("/api/executions/{a}")).await;
            let b = get_json::<ExecutionDetail>(&format!("/api/executions/{b}")).await;
            Ok::<_, String>((
                a.map_err(|e| format!("run A: {e}"))?,
                b.map_err(|e| format!("run B: {e}"))?,
            ))
        }
    });
    view! {
        <main class="content history-page compare-page" data-testid="compare-page">
            <div class="page-head logs-head">
                <h1>"Compare runs"</h1>
                <a class="btn small" href="/runs">"← History"</a>
            </div>
            <Suspense fallback=|| view! { <div class="panel skeleton table-skeleton" aria-busy="true"></div> }>
                {move || Suspend::new(async move {
                    match loaded.await {
                        Ok((a, b)) => Either::Left(view! { <Comparison a b /> }),
                        Err(message) => Either::Right(view! {
                            <section class="panel error" role="alert" data-testid="compare-error">
                                <h2>"These runs cannot be compared"</h2>
                                <p data-testid="compare-error-message">{message}</p>
                            </section>
                        }),
                    }
                })}
            </Suspense>
        </main>
    }
}

/// B − A as `show` writes numbers, when both runs have one; "same" when they read the same
/// (a difference smaller than what is shown, such as $0.000006, is not worth a "+$0.0000").
fn delta(a: Option<f64>, b: Option<f64>, show: impl Fn(f64) -> String) -> String {
    match (a, b) {
        (Some(a), Some(b)) if show(a) != show(b) => {
            let sign = if b > a { "+" } else { "−" };
            format!("{sign}{}", show((b - a).abs()))
        }
        (Some(_), Some(_)) => "same".to_owned(),
        _ => String::new(),
    }
}

#[component]
fn Comparison(a: ExecutionDetail, b: ExecutionDetail) -> impl IntoView {
    let usd = |v: f64| format::usd(v);
    let ms = |v: f64| format::duration_ms(v as i64);
    let count = |v: f64| format::count(v as i64);
    let rows = vec![
        (
            "Tokens",
            format::count(a.total_tokens),
            format::count(b.total_tokens),
            delta(
                Some(a.total_tokens as f64),
                Some(b.total_tokens as f64),
                count,
            ),
        ),
        (
            "Cost",
            format::usd(a.cost_usd),
            format::usd(b.cost_usd),
            delta(Some(a.cost_usd), Some(b.cost_usd), usd),
        ),
        (
            "Duration",
            a.duration_ms.map(format::duration_ms).unwrap_or_default(),
            b.duration_ms.map(format::duration_ms).unwrap_or_default(),
            delta(
                a.duration_ms.map(|d| d as f64),
                b.duration_ms.map(|d| d as f64),
                ms,
            ),
        ),
        (
            "Started",
            format::date_time(&a.started_at),
            format::date_time(&b.started_at),
            String::new(),
        ),
    ];
    let inputs =
        |run: &ExecutionDetail| serde_json::to_string_pretty(&run.inputs).unwrap_or_default();
    // Each step once, in A's order then B's own: its last attempt on each side.
    let mut names: Vec<String> = Vec::new();
    for step in a.steps.iter().chain(&b.steps) {
        if !names.contains(&step.step) {
            names.push(step.step.clone());
        }
    }
    let last = |run: &ExecutionDetail, name: &str| {
        run.steps
            .iter()
            .filter(|s| s.step == name)
            .max_by_key(|s| s.attempt)
            .cloned()
    };
    let steps = names
        .into_iter()
        .map(|name| {
            let (sa, sb) = (last(&a, &name), last(&b, &name));
            view! { <StepComparison name a=sa b=sb /> }
        })
        .collect_view();
    view! {
        <section class="panel table-wrap" data-testid="compare-summary">
            <table class="pipelines compare-table">
                <thead>
                    <tr>
                        <th scope="col"></th>
                        <th scope="col">"A"</th>
                        <th scope="col">"B"</th>
                        <th scope="col" class="num">"B − A"</th>
                    </tr>
                </thead>
                <tbody>
                    <tr>
                        <th scope="row">"Run"</th>
                        <td><a class="run-name" href=format!("/runs/{}", a.id)>{a.pipeline.clone()}</a> <StatusBadge status=Signal::stored(a.status) /></td>
                        <td><a class="run-name" href=format!("/runs/{}", b.id)>{b.pipeline.clone()}</a> <StatusBadge status=Signal::stored(b.status) /></td>
                        <td></td>
                    </tr>
                    {rows.into_iter().map(|(label, va, vb, d)| view! {
                        <tr data-testid="compare-row" data-label=label>
                            <th scope="row">{label}</th>
                            <td class="mono">{va}</td>
                            <td class="mono">{vb}</td>
                            <td class="num mono">{d}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section class="panel compare-section" data-testid="compare-inputs">
            <h2>"Inputs"</h2>
            <DiffView old=inputs(&a) new=inputs(&b) />
        </section>
        {steps}
    }
}

#[component]
fn StepComparison(name: String, a: Option<StepDetail>, b: Option<StepDetail>) -> impl IntoView {
    let side = |s: &Option<StepDetail>| match s {
        None => "not run".to_owned(),
        Some(s) => {
            let model = match (&s.provider, &s.model) {
                (Some(p), Some(m)) => format!("{p}/{m}"),
                _ => "—".to_owned(),
            };
            format!(
                "{model} · {} tok · {} · {}{}",
                format::count(i64::from(s.total_tokens.unwrap_or(0))),
                format::usd(s.cost_usd.unwrap_or(0.0)),
                s.duration_ms
                    .map(format::duration_ms)
                    .unwrap_or_else(|| "—".into()),
                s.ttft_ms
                    .map(|t| format!(" (first token {})", format::duration_ms(i64::from(t))))
                    .unwrap_or_default(),
            )
        }
    };
    let text = |s: &Option<StepDetail>, pick: fn(&StepDetail) -> &Option<String>| {
        s.as_ref().and_then(|s| pick(s).clone()).unwrap_or_default()
    };
    view! {
        <section class="panel compare-section" data-testid="compare-step" data-step=name.clone()>
            <h2>"Step " <span class="mono">{name.clone()}</span></h2>
            <dl class="compare-sides">
                <dt>"A"</dt><dd class="mono small" data-testid="compare-step-a">{side(&a)}</dd>
                <dt>"B"</dt><dd class="mono small" data-testid="compare-step-b">{side(&b)}</dd>
            </dl>
            <h3>"Prompt"</h3>
            <div data-testid="compare-prompt">
                <DiffView old=text(&a, |s| &s.prompt) new=text(&b, |s| &s.prompt) />
            </div>
            <h3>"Response"</h3>
            <div data-testid="compare-response">
                <DiffView old=text(&a, |s| &s.response) new=text(&b, |s| &s.response) />
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_names_two_runs_or_says_what_to_give() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(runs_of(&format!("?a={a}&b={b}")), Ok((a, b)));
        assert_eq!(runs_of(&format!("b={b}&x=1&a={a}")), Ok((a, b)));
        let bad = runs_of(&format!("a={a}&b=nope")).expect_err("not a UUID");
        assert!(
            bad.contains("`b` must be a run id (a UUID), not \"nope\""),
            "{bad}"
        );
        let missing = runs_of(&format!("a={a}")).expect_err("one run");
        assert!(
            missing.contains("/compare?a=<run id>&b=<run id>"),
            "{missing}"
        );
    }

    #[test]
    fn a_difference_is_signed_and_only_shown_when_it_shows() {
        let count = |v: f64| format::count(v as i64);
        assert_eq!(delta(Some(32.0), Some(35.0), count), "+3");
        assert_eq!(delta(Some(35.0), Some(32.0), count), "−3");
        assert_eq!(delta(Some(7.0), Some(7.0), count), "same");
        assert_eq!(delta(Some(0.000063), Some(0.000069), format::usd), "same");
        assert_eq!(delta(None, Some(1.0), count), "");
    }
}
