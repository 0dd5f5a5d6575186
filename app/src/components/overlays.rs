//! What opens over the dashboard: the context menus of runs and steps, the raw-data dialog and
//! the Ctrl+P quick switcher; and the panel state behind tablet collapsing and mobile tabs.

use leptos::{either::Either, prelude::*, task::spawn_local};
use uuid::Uuid;

use super::{copy_to_clipboard, highlight, inspector::pieces_view, StatusBadge, StepsTab};
use crate::{
    functions::get_execution,
    live::{LiveStore, RunView, StepView},
};

/// The quadrants, by the name their `data-panel` carries.
pub const PANELS: [(&str, &str); 4] = [
    ("runs", "Pipelines"),
    ("steps", "Steps"),
    ("inspector", "Inspector"),
    ("metrics", "Metrics"),
];

/// Which quadrants are collapsed (tablet) and which one a phone shows (its tabs). Both live on
/// the board as attributes, so the quadrants themselves never re-render for them.
#[derive(Clone, Copy)]
pub struct Panels {
    pub collapsed: RwSignal<Vec<&'static str>>,
    pub mobile: RwSignal<&'static str>,
}

impl Panels {
    pub fn new() -> Self {
        Self {
            collapsed: RwSignal::new(Vec::new()),
            mobile: RwSignal::new("runs"),
        }
    }

    /// `runs metrics`: for the board's `data-collapsed`, matched with `~=` in CSS.
    pub fn collapsed_attr(&self) -> String {
        self.collapsed.get().join(" ")
    }
}

impl Default for Panels {
    fn default() -> Self {
        Self::new()
    }
}

/// The collapse button in a quadrant's header (shown at tablet widths).
#[component]
pub fn CollapseToggle(panel: &'static str) -> impl IntoView {
    let panels = use_context::<Panels>()?;
    let collapsed = move || panels.collapsed.with(|c| c.contains(&panel));
    Some(view! {
        <button
            class="collapse"
            aria-expanded=move || (!collapsed()).to_string()
            title=move || if collapsed() { "Expand" } else { "Collapse" }
            data-testid=format!("collapse-{panel}")
            on:click=move |_| panels.collapsed.update(|c| {
                if let Some(at) = c.iter().position(|p| *p == panel) {
                    c.remove(at);
                } else {
                    c.push(panel);
                }
            })
        >
            <span aria-hidden="true">{move || if collapsed() { "▸" } else { "▾" }}</span>
        </button>
    })
}

/// The menu's size at most (three items), for keeping it inside the window.
const MENU_WIDTH: i32 = 200;
const MENU_HEIGHT: i32 = 130;

/// What a right-click was on.
#[derive(Debug, Clone, PartialEq)]
pub enum MenuTarget {
    Run(Uuid),
    /// A step attempt of a run, by its key (`draft#2`).
    Step(Uuid, String),
}

/// An open context menu: where, and for what.
#[derive(Debug, Clone, PartialEq)]
pub struct Menu {
    pub x: i32,
    pub y: i32,
    pub target: MenuTarget,
}

/// The page's overlays, shared with the rows that open them.
#[derive(Clone, Copy)]
pub struct Overlays {
    pub menu: RwSignal<Option<Menu>>,
    /// The raw data dialog: a title and the JSON it shows.
    pub raw: RwSignal<Option<(String, String)>>,
    pub switcher: RwSignal<bool>,
}

impl Overlays {
    pub fn new() -> Self {
        Self {
            menu: RwSignal::new(None),
            raw: RwSignal::new(None),
            switcher: RwSignal::new(false),
        }
    }

    /// Opens the menu for `target` where `event` happened, instead of the browser's; near the
    /// window's right or bottom edge it opens to the left or upwards, so it is whole.
    pub fn open_menu(&self, event: &leptos::ev::MouseEvent, target: MenuTarget) {
        event.prevent_default();
        event.stop_propagation();
        let size = |v: Result<leptos::wasm_bindgen::JsValue, _>| {
            v.ok().and_then(|v| v.as_f64()).unwrap_or(f64::MAX) as i32
        };
        let (width, height) = (size(window().inner_width()), size(window().inner_height()));
        let (x, y) = (event.client_x(), event.client_y());
        self.menu.set(Some(Menu {
            x: if x + MENU_WIDTH > width {
                (x - MENU_WIDTH).max(0)
            } else {
                x
            },
            y: if y + MENU_HEIGHT > height {
                (y - MENU_HEIGHT).max(0)
            } else {
                y
            },
            target,
        }));
    }

    /// Closes whatever is open; false when nothing was.
    pub fn close(&self) -> bool {
        let open = self.menu.get_untracked().is_some()
            || self.raw.get_untracked().is_some()
            || self.switcher.get_untracked();
        self.menu.set(None);
        self.raw.set(None);
        self.switcher.set(false);
        open
    }
}

impl Default for Overlays {
    fn default() -> Self {
        Self::new()
    }
}

/// The context menu, at the pointer. Every action closes it.
#[component]
pub fn ContextMenu(
    overlays: Overlays,
    store: LiveStore,
    selected: RwSignal<Option<Uuid>>,
    tab: RwSignal<StepsTab>,
) -> impl IntoView {
    let panels = use_context::<Panels>();
    move || {
        let menu = overlays.menu.get()?;
        let close = move || overlays.menu.set(None);
        let style = format!("left: {}px; top: {}px", menu.x, menu.y);
        let items = match menu.target {
            MenuTarget::Run(id) => Either::Left(view! {
                <button role="menuitem" data-testid="menu-copy-config" on:click=move |_| {
                    close();
                    spawn_local(async move {
                        // Browsers allow a write shortly after the click, which this fetch fits in.
                        if let Ok(run) = get_execution(id).await {
                            copy_to_clipboard(&pretty(&run.config));
                        }
                    });
                }>"Copy config"</button>
                <a role="menuitem" data-testid="menu-export" href=format!("/api/executions/{id}") download=format!("run-{id}.json") on:click=move |_| close()>
                    "Export results"
                </a>
                <button role="menuitem" data-testid="menu-logs" on:click=move |_| {
                    close();
                    selected.set(Some(id));
                    tab.set(StepsTab::Log);
                    if let Some(panels) = panels {
                        panels.mobile.set("steps");
                    }
                }>"View logs"</button>
            }),
            MenuTarget::Step(run, key) => {
                let step = store
                    .detail
                    .get_untracked()
                    .filter(|d| d.id == run)
                    .and_then(|d| {
                        d.steps
                            .read_untracked()
                            .iter()
                            .find(|s| s.key() == key)
                            .cloned()
                    });
                // Read when an item is chosen: a response may still be streaming in.
                let text =
                    move |of: fn(&StepView) -> String| step.as_ref().map(of).unwrap_or_default();
                let prompt = text.clone();
                let response = text;
                Either::Right(view! {
                    <button role="menuitem" data-testid="menu-copy-prompt" on:click=move |_| {
                        close();
                        copy_to_clipboard(&prompt(|s| s.prompt.get_untracked().unwrap_or_default()));
                    }>"Copy prompt"</button>
                    <button role="menuitem" data-testid="menu-copy-response" on:click=move |_| {
                        close();
                        copy_to_clipboard(&response(|s| s.response.get_untracked()));
                    }>"Copy response"</button>
                    <button role="menuitem" data-testid="menu-raw" on:click=move |_| {
                        close();
                        let key = key.clone();
                        spawn_local(async move {
                            let shown = match get_execution(run).await {
                                Ok(detail) => detail
                                    .steps
                                    .iter()
                                    .find(|s| crate::live::step_key(&s.step, s.attempt) == key)
                                    .map(|s| serde_json::to_string_pretty(s).unwrap_or_default())
                                    .unwrap_or_else(|| format!("step {key} is not stored yet")),
                                Err(e) => format!("the step could not be loaded: {e}"),
                            };
                            overlays.raw.set(Some((format!("{key} · raw data"), shown)));
                        });
                    }>"View raw data"</button>
                })
            }
        };
        Some(view! {
            <div class="menu" role="menu" style=style data-testid="context-menu" on:click=|e| e.stop_propagation()>
                {items}
            </div>
        })
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The raw data of a step, as stored, coloured.
#[component]
pub fn RawDialog(overlays: Overlays) -> impl IntoView {
    move || {
        let (title, json) = overlays.raw.get()?;
        let label = title.clone();
        let body = pieces_view(&json, &highlight::syntax(&json), &[]);
        Some(view! {
            <div class="scrim" on:click=move |_| overlays.raw.set(None)>
                <div class="dialog" role="dialog" aria-label=label data-testid="raw-dialog" on:click=|e| e.stop_propagation()>
                    <header class="quad-head">
                        <h2>{title}</h2>
                        <button class="btn small" on:click=move |_| overlays.raw.set(None)>"Close"</button>
                    </header>
                    <pre class="text mono">{body}</pre>
                </div>
            </div>
        })
    }
}

/// One thing the quick switcher can jump to.
#[derive(Clone)]
enum Entry {
    Pipeline {
        name: String,
        runs: usize,
        /// Its run that started last, and when.
        newest: (Uuid, chrono::DateTime<chrono::Utc>),
    },
    Run(Box<RunView>),
}

impl Entry {
    fn target(&self) -> Uuid {
        match self {
            Entry::Pipeline { newest, .. } => newest.0,
            Entry::Run(run) => run.id,
        }
    }
}

/// Ctrl+P: type part of a pipeline name or a run id, pick with the arrows and Enter. A pipeline
/// opens its newest run.
#[component]
pub fn QuickSwitcher(overlays: Overlays, store: LiveStore, pick: Callback<Uuid>) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let cursor = RwSignal::new(0usize);
    let entries = Signal::derive(move || {
        if !overlays.switcher.get() {
            return Vec::new();
        }
        let q = query.get().to_lowercase();
        let runs = store.runs.get();
        let mut pipelines: Vec<Entry> = Vec::new();
        for run in &runs {
            match pipelines
                .iter_mut()
                .find(|e| matches!(e, Entry::Pipeline { name, .. } if *name == run.pipeline))
            {
                Some(Entry::Pipeline { runs, newest, .. }) => {
                    *runs += 1;
                    if run.started_at > newest.1 {
                        *newest = (run.id, run.started_at);
                    }
                }
                _ => pipelines.push(Entry::Pipeline {
                    name: run.pipeline.clone(),
                    runs: 1,
                    newest: (run.id, run.started_at),
                }),
            }
        }
        pipelines
            .into_iter()
            .filter(
                |e| matches!(e, Entry::Pipeline { name, .. } if name.to_lowercase().contains(&q)),
            )
            .chain(
                runs.into_iter()
                    .filter(|r| {
                        r.pipeline.to_lowercase().contains(&q) || r.id.to_string().starts_with(&q)
                    })
                    .map(|r| Entry::Run(Box::new(r))),
            )
            .take(30)
            .collect::<Vec<_>>()
    });
    let choose = move |index: usize| {
        if let Some(entry) = entries.with_untracked(|e| e.get(index).cloned()) {
            overlays.switcher.set(false);
            pick.run(entry.target());
        }
    };
    let keys = move |ev: leptos::ev::KeyboardEvent| {
        let len = entries.with_untracked(Vec::len).max(1);
        match ev.key().as_str() {
            "ArrowDown" => {
                ev.prevent_default();
                cursor.update(|c| *c = (*c + 1) % len);
            }
            "ArrowUp" => {
                ev.prevent_default();
                cursor.update(|c| *c = (*c + len - 1) % len);
            }
            "Enter" => {
                ev.prevent_default();
                choose(cursor.get_untracked());
            }
            "Escape" => overlays.switcher.set(false),
            _ => {}
        }
    };
    // Opening starts afresh, with the field focused at once, so no keystroke is lost (effects
    // run after the field is in the page).
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if overlays.switcher.get() {
            query.set(String::new());
            cursor.set(0);
            if let Some(input) = input.get() {
                let _ = input.focus();
            }
        }
    });
    view! {
        <Show when=move || overlays.switcher.get()>
            <div class="scrim" on:click=move |_| overlays.switcher.set(false)>
                <div class="dialog switcher" role="dialog" aria-label="Go to a pipeline or run" data-testid="switcher" on:click=|e| e.stop_propagation()>
                    <input
                        node_ref=input
                        type="text"
                        placeholder="Go to a pipeline or run…"
                        aria-label="Pipeline name or run id"
                        data-testid="switcher-input"
                        autocomplete="off"
                        spellcheck="false"
                        prop:value=move || query.get()
                        on:input=move |ev| {
                            query.set(event_target_value(&ev));
                            cursor.set(0);
                        }
                        on:keydown=keys
                    />
                    <ul class="switcher-list" role="listbox">
                        {move || entries.get().into_iter().enumerate().map(|(i, entry)| {
                            let current = move || cursor.get() == i;
                            let body = match entry {
                                Entry::Pipeline { name, runs, .. } => Either::Left(view! {
                                    <span class="kind">"pipeline"</span>
                                    <span class="run-name">{name}</span>
                                    <span class="muted small">{format!("{runs} run{}", if runs == 1 { "" } else { "s" })}</span>
                                }),
                                Entry::Run(run) => Either::Right(view! {
                                    <span class="kind">"run"</span>
                                    <span class="run-name">{run.pipeline.clone()}</span>
                                    <span class="mono muted small">{run.id.to_string()[..8].to_owned()}</span>
                                    <StatusBadge status=Signal::derive({ let s = run.status.clone(); move || s.get() }) />
                                }),
                            };
                            view! {
                                <li
                                    role="option"
                                    aria-selected=move || current().to_string()
                                    class:current=current
                                    data-testid="switcher-entry"
                                    on:mousemove=move |_| cursor.set(i)
                                    on:click=move |_| choose(i)
                                >
                                    {body}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    <p class="muted small">"↑↓ to choose · Enter to open · Esc to close"</p>
                </div>
            </div>
        </Show>
    }
}
