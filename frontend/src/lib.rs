//! The WASM entry point: take over the server-rendered page.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Nothing lazily loaded is hydrated (lazy parts render after hydration), so the plain form.
    leptos::mount::hydrate_body(app::App);
}
