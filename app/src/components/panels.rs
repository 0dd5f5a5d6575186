//! The quadrants as panels: which are collapsed on a tablet and which one a phone shows, the
//! collapse button in each quadrant's header and the phone's tabs.

use leptos::prelude::*;

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

/// A phone's tabs, one per quadrant: the board shows the chosen one.
#[component]
pub fn MobileTabs(panels: Panels) -> impl IntoView {
    view! {
        <nav class="mobile-tabs" role="tablist" aria-label="Panels">
            {PANELS.iter().map(|&(panel, label)| view! {
                <button
                    role="tab"
                    aria-selected=move || (panels.mobile.get() == panel).to_string()
                    data-testid=format!("mobile-tab-{panel}")
                    on:click=move |_| panels.mobile.set(panel)
                >
                    {label}
                </button>
            }).collect_view()}
        </nav>
    }
}

/// Focuses the page's element `id`, if it has one (a shortcut's target).
pub fn focus(id: &str) {
    use leptos::wasm_bindgen::JsCast;
    if let Some(element) = document()
        .get_element_by_id(id)
        .and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok())
    {
        let _ = element.focus();
    }
}
