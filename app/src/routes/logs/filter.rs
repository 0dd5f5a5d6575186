//! The filter bar: levels (each a toggle, applied at once), pipeline, run, step, time range and
//! search (applied with *Apply* or Enter), and the export links of the filter shown. The filter
//! is the page's address: applying one navigates, so a link shows the same lines and the
//! browser's back and forward move between filters.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::components::filter_field::FilterField;
use crate::models::{
    events::LogLevel,
    logs::{LogFilter, LogFilterError},
};

/// What a level looks like in a row and a toggle: a mark that is not only a colour.
pub fn level_icon(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "·",
        LogLevel::Debug => "○",
        LogLevel::Info => "●",
        LogLevel::Warn => "▲",
        LogLevel::Error => "✖",
    }
}

/// The page's address for `filter`.
pub fn logs_href(filter: &LogFilter) -> String {
    match filter.to_query() {
        query if query.is_empty() => "/logs".to_owned(),
        query => format!("/logs?{query}"),
    }
}

#[component]
pub fn FilterBar(
    /// The filter in the address (an error: it cannot be used).
    filter: Memo<Result<LogFilter, LogFilterError>>,
) -> impl IntoView {
    let navigate = use_navigate();
    let go = move |next: &LogFilter| navigate(&logs_href(next), Default::default());
    let shown = move || filter.get().unwrap_or_default();

    let pipeline = RwSignal::new(String::new());
    let run = RwSignal::new(String::new());
    let step = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let q = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    // The fields show the address's filter, again after back or forward.
    Effect::new(move |_| {
        let f = shown();
        pipeline.set(f.pipeline.clone().unwrap_or_default());
        run.set(f.run.map(|r| r.to_string()).unwrap_or_default());
        step.set(f.step.clone().unwrap_or_default());
        from.set(f.from.map(|t| t.to_rfc3339()).unwrap_or_default());
        to.set(f.to.map(|t| t.to_rfc3339()).unwrap_or_default());
        q.set(f.q.clone().unwrap_or_default());
        problem.set(None);
    });

    let go_levels = go.clone();
    let toggle = move |level: LogLevel| {
        let mut next = shown();
        if let Some(at) = next.levels.iter().position(|l| *l == level) {
            next.levels.remove(at);
        } else {
            next.levels.push(level);
            next.levels
                .sort_by_key(|l| LogLevel::ALL.iter().position(|a| a == l));
        }
        go_levels(&next);
    };
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let typed = Typed {
            pipeline: pipeline.get_untracked(),
            run: run.get_untracked(),
            step: step.get_untracked(),
            from: from.get_untracked(),
            to: to.get_untracked(),
            q: q.get_untracked(),
        };
        match typed.filter(shown()) {
            Ok(next) => {
                problem.set(None);
                go(&next);
            }
            Err(message) => problem.set(Some(message)),
        }
    };

    view! {
        <form class="panel logs-filter" on:submit=apply data-testid="logs-filter" role="search">
            <fieldset class="logs-levels">
                <legend class="visually-hidden">"Levels"</legend>
                {LogLevel::ALL
                    .into_iter()
                    .map(|level| {
                        let toggle = toggle.clone();
                        view! {
                            <button
                                type="button"
                                class=format!("logs-level-toggle level-{}", level.as_str())
                                aria-pressed=move || shown().levels.contains(&level).to_string()
                                data-testid=format!("logs-level-{}", level.as_str())
                                title="Show lines of this level (none pressed: every level)"
                                on:click=move |_| toggle(level)
                            >
                                <span aria-hidden="true">{level_icon(level)}</span>
                                {level.as_str()}
                            </button>
                        }
                    })
                    .collect_view()}
            </fieldset>
            <FilterField label="Search" name="q" value=q hint="text in the message" prefix="logs" />
            <FilterField label="Pipeline" name="pipeline" value=pipeline hint="name" prefix="logs" />
            <FilterField label="Run" name="run" value=run hint="run id" prefix="logs" />
            <FilterField label="Step" name="step" value=step hint="name" prefix="logs" />
            <FilterField label="From" name="from" value=from hint="2026-12-06T10:00:00Z" prefix="logs" />
            <FilterField label="To" name="to" value=to hint="2026-12-06T11:00:00Z" prefix="logs" />
            <div class="logs-filter-actions">
                <button type="submit" class="btn primary small" data-testid="logs-apply">"Apply"</button>
                <a class="btn small" href="/logs" data-testid="logs-clear">"Clear"</a>
            </div>
            {move || problem.get().map(|message| view! {
                <p class="error-text logs-filter-problem" role="alert" data-testid="logs-filter-problem">{message}</p>
            })}
        </form>
    }
}

/// The text fields as typed.
struct Typed {
    pipeline: String,
    run: String,
    step: String,
    from: String,
    to: String,
    q: String,
}

impl Typed {
    /// The filter they describe, with `current`'s levels; or what to fix.
    fn filter(self, current: LogFilter) -> Result<LogFilter, String> {
        let text = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let time = |s: String, field: &str| -> Result<Option<DateTime<Utc>>, String> {
            text(s)
                .map(|t| {
                    DateTime::parse_from_rfc3339(&t)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            format!(
                                "{field}: {t:?} is not a time; write it as 2026-12-06T10:00:00Z"
                            )
                        })
                })
                .transpose()
        };
        let filter = LogFilter {
            levels: current.levels,
            pipeline: text(self.pipeline),
            run: text(self.run)
                .map(|r| {
                    r.parse()
                        .map_err(|_| format!("run: {r:?} is not a run id (a UUID)"))
                })
                .transpose()?,
            step: text(self.step),
            from: time(self.from, "from")?,
            to: time(self.to, "to")?,
            q: text(self.q),
            limit: current.limit,
            before: None,
            after: None,
            since: None,
        };
        filter
            .validate()
            .map_err(|e| format!("{}: {}", e.field, e.message))?;
        Ok(filter)
    }
}

/// Links to the whole of the filter's lines as a file, streamed by the server.
#[component]
pub fn ExportLinks(filter: Memo<Result<LogFilter, LogFilterError>>) -> impl IntoView {
    let href = move |format: &str| {
        let query = filter
            .get()
            .map(|f| {
                LogFilter {
                    limit: None,
                    before: None,
                    after: None,
                    since: None,
                    ..f
                }
                .to_query()
            })
            .unwrap_or_default();
        match query.is_empty() {
            true => format!("/api/logs/export?format={format}"),
            false => format!("/api/logs/export?{query}&format={format}"),
        }
    };
    // A filter that cannot be used exports nothing (its links would otherwise fall back to
    // every line).
    view! {
        <Show when=move || filter.with(Result::is_ok)>
        <div class="logs-export" role="group" aria-label="Export">
            <span class="muted small">"Export"</span>
            <a class="btn small" href=move || href("text") download="" data-testid="logs-export-text">"Text"</a>
            <a class="btn small" href=move || href("jsonl") download="" data-testid="logs-export-jsonl">"JSON lines"</a>
        </div>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(run: &str, from: &str, to: &str, q: &str) -> Typed {
        Typed {
            pipeline: " nightly ".into(),
            run: run.into(),
            step: String::new(),
            from: from.into(),
            to: to.into(),
            q: q.into(),
        }
    }

    #[test]
    fn typed_fields_become_a_filter_or_say_what_to_fix() {
        let current = LogFilter {
            levels: vec![LogLevel::Error],
            ..Default::default()
        };
        let filter = typed("", "2026-12-06T10:00:00Z", "", "timeout")
            .filter(current.clone())
            .expect("valid");
        assert_eq!(
            logs_href(&filter),
            "/logs?level=error&pipeline=nightly&from=2026-12-06T10:00:00Z&q=timeout"
        );
        assert!(typed("42", "", "", "")
            .filter(current.clone())
            .expect_err("a bad run")
            .starts_with("run:"));
        assert!(typed("", "monday", "", "")
            .filter(current.clone())
            .expect_err("a bad time")
            .starts_with("from:"));
        let reversed = typed("", "2026-12-06T11:00:00Z", "2026-12-06T10:00:00Z", "")
            .filter(current)
            .expect_err("reversed");
        assert!(reversed.contains("reversed"), "{reversed}");
        assert_eq!(logs_href(&LogFilter::default()), "/logs");
    }
}
