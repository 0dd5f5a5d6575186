//! How the server functions' answers travel: JSON, read in the browser with
//! `serde_json::from_str` like everything else it reads (the resources embedded in the page,
//! the event stream, `GET /api/logs`). server_fn's own `Json` reads with `from_slice`, which
//! compiles a second copy of every answer type's decoder into the bundle (a run's detail, a
//! step's, the snapshot: each decoded both ways).

use leptos::server_fn::{codec::Post, Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::{de::DeserializeOwned, Serialize};

/// JSON with the one decoder the bundle already has.
pub struct JsonText;

/// Answers (and for `input =`, arguments) as [`JsonText`] in a `POST`.
pub type Json = Post<JsonText>;

impl ContentType for JsonText {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonText {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonText {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonText {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(serde::de::Error::custom)?;
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes_and_names_bad_text() {
        let value = vec![("a".to_owned(), 1u32)];
        let bytes = <JsonText as Encodes<_>>::encode(&value).expect("encodes");
        let back: Vec<(String, u32)> = JsonText::decode(bytes).expect("decodes");
        assert_eq!(back, value);
        let bad = <JsonText as Decodes<Vec<u32>>>::decode(Bytes::from_static(b"\xff"));
        assert!(bad.is_err());
    }
}
