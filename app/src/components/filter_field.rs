//! A text field of a filter bar (the log viewer's, the history's): its label above, the text as
//! typed in a signal, applied by the bar's form. Styled by `.logs-field`.

use leptos::prelude::*;

#[component]
pub fn FilterField(
    label: &'static str,
    /// The query parameter it fills (also the input's name, which the CSS sizes it by).
    name: &'static str,
    value: RwSignal<String>,
    hint: &'static str,
    /// The page's test id prefix: the input is `{prefix}-{name}`.
    prefix: &'static str,
) -> impl IntoView {
    view! {
        <label class="logs-field">
            <span>{label}</span>
            <input
                type="text"
                name=name
                data-testid=format!("{prefix}-{name}")
                placeholder=hint
                spellcheck="false"
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
        </label>
    }
}
