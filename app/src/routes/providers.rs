//! `/providers`: each configured provider, its kind, base URL, models, whether its key is set and
//! where it is read from (never the key), and *Test connection*: a real one-token request, timed.

use leptos::{either::Either, prelude::*, task::spawn_local};

use crate::{
    functions::{list_providers, test_provider},
    models::{ProviderInfo, ProviderTest},
};

#[component]
pub fn ProvidersPage() -> impl IntoView {
    let providers = LocalResource::new(list_providers);
    view! {
        <main class="content pipelines-page">
            <div class="page-head">
                <h1>"Providers"</h1>
            </div>
            <p class="muted">
                "API keys are read from the environment (for example OPENAI_API_KEY) or from the "
                "config file given with --config; pipescope never shows them. Testing a provider "
                "sends one real request of one token, which the provider may bill."
            </p>
            <Suspense fallback=|| view! { <div class="panel skeleton table-skeleton" aria-busy="true"></div> }>
                {move || Suspend::new(async move {
                    match providers.await {
                        Ok(all) => Either::Left(view! {
                            <div class="panel table-wrap">
                                <table class="pipelines" data-testid="providers">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Provider"</th>
                                            <th scope="col">"Base URL"</th>
                                            <th scope="col">"Key"</th>
                                            <th scope="col">"Models"</th>
                                            <th scope="col"><span class="visually-hidden">"Test"</span></th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {all.into_iter().map(|p| view! { <ProviderRow provider=p /> }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }),
                        Err(e) => Either::Right(view! {
                            <section class="panel error" role="alert">
                                <h2>"The providers could not be listed"</h2>
                                <p>{e.to_string()}</p>
                            </section>
                        }),
                    }
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn ProviderRow(provider: ProviderInfo) -> impl IntoView {
    let result = RwSignal::new(None::<Result<ProviderTest, String>>);
    let testing = RwSignal::new(false);
    let name = provider.name.clone();
    let test = move |_| {
        let name = name.clone();
        testing.set(true);
        result.set(None);
        spawn_local(async move {
            result.set(Some(test_provider(name).await.map_err(|e| e.to_string())));
            testing.set(false);
        });
    };
    let models = if provider.models.is_empty() {
        "none known (any model name may work)".to_owned()
    } else {
        provider.models.join(", ")
    };
    view! {
        <tr data-testid="provider-row" data-provider=provider.name.clone()>
            <td>
                <span class="run-name">{provider.name.clone()}</span>
                <div class="muted small">{provider.kind.clone()}</div>
            </td>
            <td class="mono small">{provider.base_url.clone().unwrap_or_else(|| "— (in process)".into())}</td>
            <td class="small">
                {match (provider.key_set, provider.base_url.is_some()) {
                    (true, _) => view! { <span class="ok-text">"set"</span> }.into_any(),
                    // The simulated provider reaches nothing over the network.
                    (false, false) => view! { <span class="muted">"none needed"</span> }.into_any(),
                    (false, true) => view! { <span class="error-text">"not set"</span> }.into_any(),
                }}
                <div class="muted small">{provider.key_source.clone()}</div>
            </td>
            <td class="small models">{models}</td>
            <td class="actions">
                <button class="btn small" data-testid="test-provider" disabled=move || testing.get() on:click=test>
                    {move || if testing.get() { "Testing…" } else { "Test connection" }}
                </button>
                {move || result.get().map(|r| match r {
                    Ok(t) => view! {
                        <div class=if t.ok { "ok-text small" } else { "error-text small" } data-testid="provider-result">
                            {format!("{} in {} ms", if t.ok { "answered" } else { "failed" }, t.millis)}
                            <div class="muted small">{t.detail}</div>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <div class="error-text small" data-testid="provider-result">{e}</div> }.into_any(),
                })}
            </td>
        </tr>
    }
}
