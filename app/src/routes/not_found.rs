use leptos::prelude::*;

use crate::components::header::Header;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <div class="page">
            <Header />
            <main class="content">
                <section class="panel empty">
                    <h1>"Nothing here"</h1>
                    <p>"This address does not match any pipescope page."</p>
                    <a class="btn" href="/">"Back to the dashboard"</a>
                </section>
            </main>
        </div>
    }
}
