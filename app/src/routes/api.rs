//! Reading one of pipescope's JSON APIs (`GET /api/…`) from a section's page: the answer, or in
//! words why there is none (the server's own message when it refused, saying what to fix).

use serde::de::DeserializeOwned;

/// `GET url` read as `T`. Only in the browser: sections are rendered after hydration, so the
/// server never reads its own API this way.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    #[cfg(feature = "hydrate")]
    {
        use gloo_net::http::Request;

        #[derive(serde::Deserialize)]
        struct Refusal {
            error: String,
        }

        let response = Request::get(url)
            .send()
            .await
            .map_err(|e| format!("the server could not be reached: {e}"))?;
        if response.ok() {
            return response
                .json::<T>()
                .await
                .map_err(|e| format!("the server's answer could not be read: {e}"));
        }
        let status = response.status();
        match response.json::<Refusal>().await {
            Ok(refusal) => Err(refusal.error),
            Err(_) => Err(format!("the server answered {status}")),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = url;
        Err("this page is read in the browser".to_owned())
    }
}
