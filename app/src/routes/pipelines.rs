//! `/pipelines`: every saved pipeline, searchable, with its newest version, steps, last run and
//! today's runs and cost; *New*, *Edit*, *Duplicate* and *Delete*.

use leptos::{either::Either, prelude::*, task::spawn_local};

use crate::{
    components::runs::StatusBadge,
    format,
    functions::{delete_pipeline, list_pipelines},
    models::PipelineListing,
};

/// The link that opens a pipeline in the studio.
pub fn edit_href(name: &str) -> String {
    format!("/pipelines/{}/edit", url_escape(name))
}

/// `name` as one path segment (names are free text in YAML).
fn url_escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
pub fn PipelinesPage() -> impl IntoView {
    let listing = Resource::new(|| (), |_| list_pipelines());
    let query = RwSignal::new(String::new());
    // The pipeline whose deletion waits for confirmation.
    let confirm = RwSignal::new(None::<PipelineListing>);
    let failed = RwSignal::new(None::<String>);

    view! {
        <>
            <main class="content pipelines-page">
                <div class="page-head">
                    <h1>"Pipelines"</h1>
                    <input
                        type="search"
                        class="search"
                        placeholder="Search by name or description"
                        aria-label="Search pipelines"
                        data-testid="pipeline-search"
                        prop:value=move || query.get()
                        on:input=move |ev| query.set(event_target_value(&ev))
                    />
                    <a class="btn primary" href="/pipelines/new" data-testid="new-pipeline">"New pipeline"</a>
                </div>
                {move || failed.get().map(|e| view! { <div class="run-error" role="alert">{e}</div> })}
                <Suspense fallback=|| view! { <div class="panel skeleton table-skeleton" aria-busy="true"></div> }>
                    {move || Suspend::new(async move {
                        match listing.await {
                            Ok(all) => Either::Left(view! {
                                <PipelineTable all query confirm />
                            }),
                            Err(e) => Either::Right(view! {
                                <section class="panel error" role="alert">
                                    <h2>"The pipelines could not be loaded"</h2>
                                    <p>{e.to_string()}</p>
                                </section>
                            }),
                        }
                    })}
                </Suspense>
                {move || confirm.get().map(|p| view! {
                    <ConfirmDelete pipeline=p confirm failed done=Callback::new(move |_| listing.refetch()) />
                })}
            </main>
        </>
    }
}

#[component]
fn PipelineTable(
    all: Vec<PipelineListing>,
    query: RwSignal<String>,
    confirm: RwSignal<Option<PipelineListing>>,
) -> impl IntoView {
    if all.is_empty() {
        return Either::Left(view! {
            <section class="panel empty">
                <h2>"No pipelines yet"</h2>
                <p>"Write one in the studio, or put YAML files in the pipelines folder and restart."</p>
                <a class="btn primary" href="/pipelines/new">"New pipeline"</a>
            </section>
        });
    }
    let all = StoredValue::new(all);
    let shown = move || {
        let q = query.get().to_lowercase();
        all.with_value(|all| {
            all.iter()
                .filter(|p| {
                    q.is_empty()
                        || p.name.to_lowercase().contains(&q)
                        || p.description
                            .as_deref()
                            .is_some_and(|d| d.to_lowercase().contains(&q))
                })
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    Either::Right(view! {
        <div class="panel table-wrap">
            <table class="pipelines" data-testid="pipelines">
                <thead>
                    <tr>
                        <th scope="col">"Pipeline"</th>
                        <th scope="col" class="num">"Version"</th>
                        <th scope="col" class="num">"Steps"</th>
                        <th scope="col">"Last run"</th>
                        <th scope="col" class="num">"Runs today"</th>
                        <th scope="col" class="num">"Cost today"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    <For each=shown key=|p| (p.name.clone(), p.version) let:p>
                        <PipelineRow pipeline=p confirm />
                    </For>
                </tbody>
            </table>
            <Show when=move || shown().is_empty()>
                <p class="muted empty-row">"No pipeline matches “" {move || query.get()} "”."</p>
            </Show>
        </div>
    })
}

#[component]
fn PipelineRow(
    pipeline: PipelineListing,
    confirm: RwSignal<Option<PipelineListing>>,
) -> impl IntoView {
    let edit = edit_href(&pipeline.name);
    let duplicate = format!("/pipelines/new?from={}", url_escape(&pipeline.name));
    let last_run = pipeline.last_run.clone().map(|run| {
        view! {
            <a class="last-run" href=format!("/runs/{}", run.id)>
                <StatusBadge status=Signal::stored(run.status) />
                <span class="muted small">{format::date_time(&run.started_at)}</span>
            </a>
        }
    });
    let listed = pipeline.clone();
    view! {
        <tr data-testid="pipeline-row" data-pipeline=pipeline.name.clone()>
            <td>
                <a class="run-name" href=edit.clone()>{pipeline.name.clone()}</a>
                <div class="muted small">{pipeline.description.clone().unwrap_or_default()}</div>
            </td>
            <td class="num mono">
                "v" {pipeline.version}
                {pipeline.draft.then(|| view! { <span class="badge draft" title="Saved with problems; not runnable">"draft"</span> })}
            </td>
            <td class="num mono">{pipeline.steps}</td>
            <td>
                {match last_run {
                    Some(run) => Either::Left(run),
                    None => Either::Right(view! { <span class="muted">"never run"</span> }),
                }}
            </td>
            <td class="num mono">{pipeline.runs_today}</td>
            <td class="num mono">{format::usd(pipeline.cost_today_usd)}</td>
            <td class="actions">
                <a class="btn small" href=edit>"Edit"</a>
                <a class="btn small" href=duplicate>"Duplicate"</a>
                <button class="btn small danger" data-testid="delete-pipeline" on:click=move |_| confirm.set(Some(listed.clone()))>
                    "Delete"
                </button>
            </td>
        </tr>
    }
}

/// Asks before deleting, naming what is lost (every version) and what is not (its runs).
#[component]
fn ConfirmDelete(
    pipeline: PipelineListing,
    confirm: RwSignal<Option<PipelineListing>>,
    failed: RwSignal<Option<String>>,
    done: Callback<()>,
) -> impl IntoView {
    let name = pipeline.name.clone();
    let deleting = RwSignal::new(false);
    let delete = move |_| {
        let name = name.clone();
        deleting.set(true);
        spawn_local(async move {
            match delete_pipeline(name.clone()).await {
                Ok(()) => failed.set(None),
                Err(e) => failed.set(Some(format!("{name} was not deleted: {e}"))),
            }
            confirm.set(None);
            done.run(());
        });
    };
    let versions = if pipeline.version == 1 {
        "its only version".to_owned()
    } else {
        format!("all {} versions", pipeline.version)
    };
    view! {
        <div class="scrim" on:click=move |_| confirm.set(None)>
            <div class="dialog confirm" role="alertdialog" aria-label="Delete pipeline" data-testid="confirm-delete" on:click=|e| e.stop_propagation()>
                <h2>"Delete " {pipeline.name.clone()} "?"</h2>
                <p>"This deletes " {versions} " of its text. Its runs stay readable on the dashboard and their own pages."</p>
                <div class="dialog-actions">
                    <button class="btn" on:click=move |_| confirm.set(None)>"Keep it"</button>
                    <button class="btn danger" data-testid="confirm-delete-button" disabled=move || deleting.get() on:click=delete>
                        "Delete"
                    </button>
                </div>
            </div>
        </div>
    }
}
