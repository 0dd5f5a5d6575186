//! Rich text: a prompt or a response with its search matches marked and its JSON and code
//! coloured, or, while it streams in plain, one text node that grows in place. Every piece is a
//! text node inside a `<span>` or `<mark>`: markup in LLM or user text never becomes HTML.
//! [`highlight`] finds the ranges; this module turns them into views.

pub mod highlight;

use std::ops::Range;

use leptos::{either::Either, prelude::*};

/// Where `query` matches `text`, kept current as either changes.
pub fn marks(text: Signal<String>, query: Signal<String>) -> Memo<Vec<Range<usize>>> {
    Memo::new(move |_| query.with(|q| text.with(|t| highlight::matches(t, q))))
}

/// Whether JSON and code can be coloured yet. The colouring is in its own WASM chunk, so the
/// first load does not carry it: the server and the hydrating page both show plain text (they
/// must agree), and the colours appear once the chunk is in, fetched as soon as the page has
/// hydrated.
#[derive(Clone, Copy)]
pub struct Colouring(RwSignal<bool>);

impl Colouring {
    /// The page's colouring, not loaded yet; its texts find it in the context.
    pub fn provide() -> Self {
        let colouring = Self(RwSignal::new(false));
        provide_context(colouring);
        colouring
    }

    /// Starts fetching the colouring's chunk (call once the page is hydrated: before, the texts
    /// must stay as the server rendered them).
    pub fn fetch(self) {
        let loaded = leptos::prelude::lazy_preload!(syntax_chunk);
        Effect::new(move |_| {
            if loaded.get() {
                self.0.set(true);
            }
        });
    }

    fn loaded() -> bool {
        use_context::<Colouring>().is_some_and(|c| c.0.get())
    }
}

#[lazy]
fn syntax_chunk(text: String) -> Vec<(Range<usize>, highlight::Token)> {
    highlight::syntax(&text)
}

/// [`highlight::syntax`], from its chunk; called only once [`Colouring`] says the chunk is in,
/// when the call completes at its first poll.
fn syntax(text: &str) -> Vec<(Range<usize>, highlight::Token)> {
    use std::{
        future::Future,
        task::{Context, Poll, Waker},
    };
    let mut call = std::pin::pin!(syntax_chunk(text.to_owned()));
    match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(tokens) => tokens,
        Poll::Pending => Vec::new(),
    }
}

/// `text` with its search `marks` in `<mark>` and, when `colour` (and the colouring is loaded),
/// JSON and code coloured. Plain text (a response streaming in) is a [`GrowingText`]: chunks are
/// appended, never re-rendered.
pub fn text(
    text: Signal<String>,
    marks: Memo<Vec<Range<usize>>>,
    colour: Signal<bool>,
) -> impl IntoView {
    let marked = Memo::new(move |_| marks.with(|m| !m.is_empty()));
    move || {
        let colour = colour.get() && Colouring::loaded();
        if !colour && !marked.get() {
            return Either::Left(view! { <GrowingText text /> });
        }
        Either::Right(move || {
            text.with(|t| {
                let tokens = if colour { syntax(t) } else { Vec::new() };
                marks.with(|marks| {
                    if tokens.is_empty() && marks.is_empty() {
                        Either::Left(t.clone())
                    } else {
                        Either::Right(pieces_view(t, &tokens, marks))
                    }
                })
            })
        })
    }
}

/// `t` cut into coloured `<span>`s and `<mark>`ed matches, each around a text node.
pub fn pieces_view(
    t: &str,
    tokens: &[(Range<usize>, highlight::Token)],
    marks: &[Range<usize>],
) -> impl IntoView {
    highlight::pieces(t.len(), tokens, marks)
        .into_iter()
        .map(|piece| {
            let s = t[piece.range].to_owned();
            let class = piece.token.map(highlight::Token::class);
            match piece.mark {
                Some(_) => Either::Left(view! { <mark class=class>{s}</mark> }),
                None => Either::Right(view! { <span class=class>{s}</span> }),
            }
        })
        .collect_view()
}

/// `text` in one text node that grows in place: each chunk is appended to the node, so the DOM's
/// work for a chunk does not grow with the response and a selection in it stays put (what is
/// left is a memcmp with the text shown). A text that does not continue the one shown (the
/// complete response replacing a partial one) replaces it.
#[component]
pub fn GrowingText(text: Signal<String>) -> impl IntoView {
    let span = NodeRef::<leptos::html::Span>::new();
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        let shown = StoredValue::new(text.get_untracked());
        Effect::new(move |_| {
            text.with(|t| {
                let Some(span) = span.get() else {
                    return;
                };
                shown.update_value(|shown| {
                    if *t == *shown {
                        return;
                    }
                    let node = span
                        .first_child()
                        .and_then(|n| n.dyn_into::<web_sys::Text>().ok());
                    match node {
                        Some(node) if t.starts_with(shown.as_str()) => {
                            let chunk = &t[shown.len()..];
                            let _ = node.append_data(chunk);
                            shown.push_str(chunk);
                        }
                        _ => {
                            span.set_text_content(Some(t));
                            t.clone_into(shown);
                        }
                    }
                });
            })
        });
    }
    view! { <span node_ref=span>{text.get_untracked()}</span> }
}
