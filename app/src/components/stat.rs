use leptos::prelude::*;

/// One labelled figure of the overview.
#[component]
pub fn Stat(
    label: &'static str,
    #[prop(into)] value: String,
    #[prop(optional)] hint: Option<&'static str>,
) -> impl IntoView {
    view! {
        <div class="stat" data-testid=format!("stat-{}", label.to_lowercase().replace(' ', "-"))>
            <span class="stat-label">{label}</span>
            <span class="stat-value">{value}</span>
            {hint.map(|h| view! { <span class="stat-hint">{h}</span> })}
        </div>
    }
}
