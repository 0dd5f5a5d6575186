//! The code editor: CodeMirror 6, bundled from `editor/` and served at
//! `/editor/studio-editor.js`. The bundle is fetched by this view only (never by the dashboard),
//! sets `window.pipescopeEditor` and reports back by DOM events on the editor's element:
//! `pipescope-change`, `pipescope-save` and `pipescope-too-large`. Calls go the other way by name
//! through `js_sys::Reflect`, so no JavaScript closure is created in this (lazily loaded) code.

use leptos::prelude::*;

use crate::models::{Check, EditorSchema};

/// What the page tells the editor, and hears from it.
#[derive(Clone, Copy)]
pub struct EditorLink {
    /// Set to move the cursor to a line and column (a problem or a graph node was clicked).
    pub goto: RwSignal<Option<(u32, u32)>>,
    /// Set to replace the whole text (a version restored, the other side of a conflict taken).
    pub replace: RwSignal<Option<String>>,
}

impl EditorLink {
    pub fn new() -> Self {
        Self {
            goto: RwSignal::new(None),
            replace: RwSignal::new(None),
        }
    }
}

impl Default for EditorLink {
    fn default() -> Self {
        Self::new()
    }
}

/// The editor, opened on `initial`; `on_change` gets every new text, `on_save` Ctrl+S (with
/// `false`: not a draft), `too_large` the byte count of a refused paste. `check` is the
/// validator's latest verdict: its problems are underlined and its outline feeds completion and
/// hover.
#[component]
pub fn CodeEditor(
    initial: String,
    schema: EditorSchema,
    check: ReadSignal<Option<Check>>,
    link: EditorLink,
    on_change: Callback<String>,
    on_save: Callback<bool>,
    too_large: Callback<u64>,
) -> impl IntoView {
    let host = NodeRef::<leptos::html::Div>::new();
    let ready = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    {
        let handle = StoredValue::new_local(None::<bridge::Handle>);
        let initial = StoredValue::new(initial.clone());
        let schema = StoredValue::new(schema);
        // Opens the editor once its element is in the page and the bundle has run.
        let open = move || {
            if handle.with_value(Option::is_some) {
                return;
            }
            let Some(el) = host.get_untracked() else {
                return;
            };
            let opened = initial.with_value(|doc| {
                schema.with_value(|schema| bridge::Handle::open(&el, doc, schema))
            });
            if let Some(opened) = opened {
                handle.set_value(Some(opened));
                ready.set(true);
            }
        };
        Effect::new(move |_| {
            if host.get().is_none() {
                return;
            }
            if bridge::loaded() {
                open();
            } else {
                bridge::load();
            }
        });
        let listener = window_event_listener_untyped("pipescope-editor-ready", move |_| open());
        on_cleanup(move || {
            listener.remove();
            if let Some(h) = handle.try_update_value(Option::take).flatten() {
                h.destroy();
            }
        });
        Effect::new(move |_| {
            let _ = ready.get();
            check.with(|check| {
                if let Some(check) = check {
                    handle.with_value(|h| {
                        if let Some(h) = h {
                            h.show(&check.problems, check);
                        }
                    });
                }
            });
        });
        Effect::new(move |_| {
            if let Some((line, column)) = link.goto.get() {
                handle.with_value(|h| {
                    if let Some(h) = h {
                        h.goto(line, column);
                    }
                });
            }
        });
        Effect::new(move |_| {
            if let Some(text) = link.replace.get() {
                handle.with_value(|h| {
                    if let Some(h) = h {
                        h.set_text(&text);
                    }
                });
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (schema, check, link);
    let detail = |ev: &leptos::ev::Event, key: &str| -> Option<leptos::wasm_bindgen::JsValue> {
        let detail = leptos::web_sys::js_sys::Reflect::get(ev, &"detail".into()).ok()?;
        leptos::web_sys::js_sys::Reflect::get(&detail, &key.into()).ok()
    };
    view! {
        <div
            class="editor-host"
            node_ref=host
            data-testid="editor"
            data-ready=move || ready.get().to_string()
            on:pipescope-change=move |ev| {
                if let Some(text) = detail(&ev, "text").and_then(|t| t.as_string()) {
                    on_change.run(text);
                }
            }
            on:pipescope-save=move |ev| {
                let draft = detail(&ev, "draft").and_then(|d| d.as_bool()).unwrap_or(false);
                on_save.run(draft);
            }
            on:pipescope-too-large=move |ev| {
                let bytes = detail(&ev, "bytes").and_then(|b| b.as_f64()).unwrap_or(0.0);
                too_large.run(bytes as u64);
            }
        >
            // The text as plain lines until the editor takes over (and for a page not hydrated
            // yet): readable, same height, nothing jumps much when CodeMirror mounts.
            <Show when=move || !ready.get()>
                <pre class="editor-fallback mono" aria-busy="true">{initial.clone()}</pre>
            </Show>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod bridge {
    use leptos::{
        prelude::document,
        wasm_bindgen::{JsCast, JsValue},
        web_sys::{
            js_sys::{Array, Function, Object, Reflect, JSON},
            Element,
        },
    };

    use crate::models::{Check, EditorSchema, Problem};

    const GLOBAL: &str = "pipescopeEditor";
    const SCRIPT_ID: &str = "pipescope-editor-script";

    fn api() -> Option<JsValue> {
        let api = Reflect::get(&leptos::prelude::window(), &GLOBAL.into()).ok()?;
        (!api.is_undefined()).then_some(api)
    }

    /// Whether the bundle has run in this tab.
    pub fn loaded() -> bool {
        api().is_some()
    }

    /// Adds the bundle's `<script type="module">` once; it announces itself with
    /// `pipescope-editor-ready` on the window.
    pub fn load() {
        let document = document();
        if document.get_element_by_id(SCRIPT_ID).is_some() {
            return;
        }
        if let Ok(script) = document.create_element("script") {
            let _ = script.set_attribute("id", SCRIPT_ID);
            let _ = script.set_attribute("type", "module");
            let _ = script.set_attribute("src", "/editor/studio-editor.js");
            if let Some(head) = document.head() {
                let _ = head.append_child(&script);
            }
        }
    }

    fn json<T: serde::Serialize>(value: &T) -> JsValue {
        serde_json::to_string(value)
            .ok()
            .and_then(|s| JSON::parse(&s).ok())
            .unwrap_or(JsValue::NULL)
    }

    /// An open editor.
    pub struct Handle(JsValue);

    impl Handle {
        pub fn open(parent: &Element, doc: &str, schema: &EditorSchema) -> Option<Handle> {
            let api = api()?;
            let open: Function = Reflect::get(&api, &"open".into()).ok()?.dyn_into().ok()?;
            let options = Object::new();
            let dark = document()
                .document_element()
                .and_then(|e| e.get_attribute("data-theme"))
                .is_none_or(|t| t != "light");
            let _ = Reflect::set(&options, &"doc".into(), &doc.into());
            let _ = Reflect::set(&options, &"dark".into(), &dark.into());
            let _ = Reflect::set(&options, &"maxBytes".into(), &schema.max_bytes.into());
            let _ = Reflect::set(&options, &"schema".into(), &json(schema));
            open.call2(&api, parent, &options).ok().map(Handle)
        }

        fn call(&self, method: &str, args: &[JsValue]) {
            let Some(f) = Reflect::get(&self.0, &method.into())
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok())
            else {
                return;
            };
            let args: Array = args.iter().collect();
            let _ = f.apply(&self.0, &args);
        }

        pub fn show(&self, problems: &[Problem], check: &Check) {
            self.call("setDiagnostics", &[json(&problems)]);
            let outline = serde_json::json!({
                "name": check.name,
                "steps": check.steps,
                "cycle": check.cycle,
                "inputs": check.inputs,
                "env": check.env,
            });
            self.call("setOutline", &[json(&outline)]);
        }

        pub fn goto(&self, line: u32, column: u32) {
            self.call("goto", &[line.into(), column.into()]);
            self.call("focus", &[]);
        }

        pub fn set_text(&self, text: &str) {
            self.call("setText", &[text.into()]);
        }

        pub fn destroy(&self) {
            self.call("destroy", &[]);
        }
    }
}
