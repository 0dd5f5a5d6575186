//! The WASM entry point: take over the server-rendered page.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // The async form: a route's view may be in a WASM chunk that has to be fetched before the
    // page it rendered on the server can be hydrated (`hydrate_body` refuses lazy routes).
    leptos::mount::hydrate_lazy(app::App);
}
