//! What the prompt inspector colours: JSON and fenced code in prompts and responses, search
//! matches, and the variables inside a template. Pure functions over byte ranges; the views turn
//! the ranges into `<span>`s and `<mark>`s around text nodes, so nothing here ever becomes HTML.
//!
//! Hand-written rather than a highlighting crate: the inspector needs only a handful of token
//! kinds, and the syntax crates (syntect, tree-sitter) would multiply the browser bundle.

use std::ops::Range;

/// Texts longer than this are shown plain: colouring them would cost more than it helps.
pub const SYNTAX_LIMIT: usize = 128 * 1024;
/// Matches marked at most; the count says when there are more.
pub const MARKS_LIMIT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Key,
    Str,
    Num,
    Lit,
    Comment,
}

impl Token {
    pub fn class(self) -> &'static str {
        match self {
            Token::Key => "tk-key",
            Token::Str => "tk-str",
            Token::Num => "tk-num",
            Token::Lit => "tk-lit",
            Token::Comment => "tk-com",
        }
    }
}

/// The coloured ranges of `text`: all of it when it is a JSON document, otherwise the insides of
/// its ``` fenced blocks (JSON when the block is, code otherwise).
pub fn syntax(text: &str) -> Vec<(Range<usize>, Token)> {
    if text.len() > SYNTAX_LIMIT {
        return Vec::new();
    }
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    {
        return lex(text, 0, true);
    }
    let mut tokens = Vec::new();
    for block in fences(text) {
        tokens.push((block.open, Token::Comment));
        let body = &text[block.body.clone()];
        let json =
            block.lang == "json" || serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok();
        tokens.extend(lex(body, block.body.start, json));
        if let Some(close) = block.close {
            tokens.push((close, Token::Comment));
        }
    }
    tokens
}

struct Fence<'a> {
    lang: &'a str,
    open: Range<usize>,
    body: Range<usize>,
    close: Option<Range<usize>>,
}

/// ``` blocks, by line; a block still open at the end (a response mid-stream) runs to the end.
fn fences(text: &str) -> Vec<Fence<'_>> {
    let mut blocks = Vec::new();
    let mut open: Option<(Range<usize>, &str)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let range = pos..pos + line.trim_end().len();
        let fence = line.trim_start().starts_with("```");
        pos += line.len();
        if !fence {
            continue;
        }
        match open.take() {
            None => {
                let lang = line.trim().trim_start_matches('`').trim();
                open = Some((range, lang));
            }
            Some((start, lang)) => blocks.push(Fence {
                lang,
                body: start.end..range.start,
                open: start,
                close: Some(range),
            }),
        }
    }
    if let Some((start, lang)) = open {
        blocks.push(Fence {
            lang,
            body: start.end..text.len(),
            open: start,
            close: None,
        });
    }
    blocks
}

const KEYWORDS: &[&str] = &[
    "true", "false", "null", "None", "True", "False", "nil", "fn", "let", "const", "mut", "pub",
    "use", "struct", "enum", "impl", "match", "if", "else", "for", "while", "loop", "return",
    "def", "class", "import", "from", "function", "var", "async", "await", "in", "not", "and",
    "or", "SELECT", "FROM", "WHERE", "select", "from", "where",
];

/// Strings, numbers, keywords and comments of `code`, offset by `base`. In JSON a string
/// followed by `:` is a key, and there are no comments.
fn lex(code: &str, base: usize, json: bool) -> Vec<(Range<usize>, Token)> {
    let bytes = code.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        if b == b'"' || (!json && (b == b'\'' || b == b'`')) {
            i += 1;
            while i < bytes.len() && bytes[i] != b {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                if bytes[i.min(bytes.len() - 1)] == b'\n' && b != b'`' {
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(bytes.len());
            let after = code[i..].trim_start();
            let kind = if json && after.starts_with(':') {
                Token::Key
            } else {
                Token::Str
            };
            tokens.push((base + start..base + i, kind));
        } else if !json && (code[i..].starts_with("//") || b == b'#') {
            i = code[i..].find('\n').map_or(bytes.len(), |n| i + n);
            tokens.push((base + start..base + i, Token::Comment));
        } else if b.is_ascii_digit()
            || (b == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i += 1;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'_'))
            {
                i += 1;
            }
            tokens.push((base + start..base + i, Token::Num));
        } else if b.is_ascii_alphabetic() || b == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            if KEYWORDS.contains(&&code[start..i]) {
                tokens.push((base + start..base + i, Token::Lit));
            }
        } else {
            // Step over a whole character: a byte inside a multi-byte one is no boundary.
            i += code[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    tokens
}

/// Where `query` occurs in `text`, ignoring ASCII case, at most [`MARKS_LIMIT`] of them.
pub fn matches(text: &str, query: &str) -> Vec<Range<usize>> {
    if query.is_empty() {
        return Vec::new();
    }
    // ASCII lowering keeps byte offsets, so ranges found in the copy are ranges of `text`.
    let haystack = text.to_ascii_lowercase();
    let needle = query.to_ascii_lowercase();
    haystack
        .match_indices(&needle)
        .take(MARKS_LIMIT)
        .map(|(at, m)| at..at + m.len())
        .collect()
}

/// A piece of text with its colour and whether it is a search match (`Some(n)`: the n-th).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub range: Range<usize>,
    pub token: Option<Token>,
    pub mark: Option<usize>,
}

/// Cuts `len` bytes into pieces at every token and match boundary. Tokens do not overlap each
/// other, nor matches each other; a match may cross tokens.
pub fn pieces(len: usize, tokens: &[(Range<usize>, Token)], marks: &[Range<usize>]) -> Vec<Piece> {
    let mut cuts: Vec<usize> = Vec::with_capacity(2 * (tokens.len() + marks.len()) + 2);
    cuts.push(0);
    cuts.push(len);
    for r in tokens.iter().map(|(r, _)| r).chain(marks) {
        cuts.push(r.start.min(len));
        cuts.push(r.end.min(len));
    }
    cuts.sort_unstable();
    cuts.dedup();
    let (mut t, mut m) = (0, 0);
    let mut out: Vec<Piece> = Vec::with_capacity(cuts.len());
    for w in cuts.windows(2) {
        let range = w[0]..w[1];
        while t < tokens.len() && tokens[t].0.end <= range.start {
            t += 1;
        }
        while m < marks.len() && marks[m].end <= range.start {
            m += 1;
        }
        let token = tokens
            .get(t)
            .filter(|(r, _)| r.start <= range.start)
            .map(|(_, k)| *k);
        let mark = marks.get(m).filter(|r| r.start <= range.start).map(|_| m);
        match out.last_mut() {
            // Plain text next to plain text is one text node.
            Some(last)
                if last.token == token && last.mark == mark && last.range.end == range.start =>
            {
                last.range.end = range.end;
            }
            _ => out.push(Piece { range, token, mark }),
        }
    }
    out
}

/// A template cut into literal text and `{{ … }}` expressions; an expression carries the index
/// of the first variable (of `names`) it reads.
pub fn template_parts(template: &str, names: &[String]) -> Vec<(Range<usize>, Option<usize>)> {
    let mut parts = Vec::new();
    let mut pos = 0;
    while let Some(open) = template[pos..].find("{{").map(|n| pos + n) {
        let Some(close) = template[open..].find("}}").map(|n| open + n + 2) else {
            break;
        };
        if open > pos {
            parts.push((pos..open, None));
        }
        let expr = &template[open..close];
        let var = names.iter().position(|name| reads(expr, name));
        parts.push((open..close, var));
        pos = close;
    }
    if pos < template.len() {
        parts.push((pos..template.len(), None));
    }
    parts
}

/// Whether `expr` names the variable `name` (`steps.a.output`) as a whole path: not as a part
/// of a longer identifier.
fn reads(expr: &str, name: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    expr.match_indices(name).any(|(at, _)| {
        let before = expr[..at].chars().next_back();
        let after = expr[at + name.len()..].chars().next();
        !before.is_some_and(|c| ident(c) || c == '.') && !after.is_some_and(ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, tokens: &[(Range<usize>, Token)]) -> Vec<(&'a str, Token)> {
        tokens.iter().map(|(r, k)| (&text[r.clone()], *k)).collect()
    }

    #[test]
    fn a_json_document_is_coloured_whole() {
        let text = r#"{"name": "a \"b\"", "n": -1.5e3, "ok": true, "none": null}"#;
        assert_eq!(
            texts(text, &syntax(text)),
            vec![
                (r#""name""#, Token::Key),
                (r#""a \"b\"""#, Token::Str),
                (r#""n""#, Token::Key),
                ("-1.5e3", Token::Num),
                (r#""ok""#, Token::Key),
                ("true", Token::Lit),
                (r#""none""#, Token::Key),
                ("null", Token::Lit),
            ]
        );
    }

    #[test]
    fn prose_is_not_coloured_but_its_fences_are() {
        assert!(syntax("Let me think about {this} for 3 days.").is_empty());
        let text = "Here:\n```python\nx = 'hi' # greet\n```\nDone, true story.";
        assert_eq!(
            texts(text, &syntax(text)),
            vec![
                ("```python", Token::Comment),
                ("'hi'", Token::Str),
                ("# greet", Token::Comment),
                ("```", Token::Comment),
            ]
        );
    }

    #[test]
    fn a_fence_still_streaming_runs_to_the_end() {
        let text = "```json\n{\"a\": 1";
        assert_eq!(
            texts(text, &syntax(text)),
            vec![
                ("```json", Token::Comment),
                ("\"a\"", Token::Key),
                ("1", Token::Num)
            ]
        );
    }

    #[test]
    fn unterminated_strings_and_multibyte_text_do_not_panic() {
        for text in ["```\n\"abc", "```\n'é\\", "```\nä ö \"ü", "```\n\\"] {
            for (r, _) in syntax(text) {
                assert!(
                    text.is_char_boundary(r.start) && text.is_char_boundary(r.end),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn matches_ignore_case_and_are_capped() {
        assert_eq!(
            matches("Alpha alpha ALPHA", "alpha"),
            vec![0..5, 6..11, 12..17]
        );
        assert_eq!(matches("äbc ÄBC", "bc"), vec![2..4, 7..9]);
        assert!(matches("abc", "").is_empty());
        assert_eq!(matches(&"x".repeat(5000), "x").len(), MARKS_LIMIT);
    }

    #[test]
    fn pieces_cover_the_text_once_with_tokens_and_marks() {
        // "say": a token over 4..9, a match over 6..12 crossing its end.
        let tokens = [(4..9, Token::Str)];
        let marks = [Range { start: 6, end: 12 }];
        assert_eq!(
            pieces(14, &tokens, &marks),
            vec![
                Piece {
                    range: 0..4,
                    token: None,
                    mark: None
                },
                Piece {
                    range: 4..6,
                    token: Some(Token::Str),
                    mark: None
                },
                Piece {
                    range: 6..9,
                    token: Some(Token::Str),
                    mark: Some(0)
                },
                Piece {
                    range: 9..12,
                    token: None,
                    mark: Some(0)
                },
                Piece {
                    range: 12..14,
                    token: None,
                    mark: None
                },
            ]
        );
        assert_eq!(
            pieces(3, &[], &[]),
            vec![Piece {
                range: 0..3,
                token: None,
                mark: None
            }]
        );
    }

    #[test]
    fn template_expressions_name_their_variables() {
        let names = vec!["topic".to_owned(), "steps.outline.output".to_owned()];
        let template =
            "Write about {{ topic }} using {{ steps.outline.output[:400] }} and {{ topics }}.";
        let parts: Vec<_> = template_parts(template, &names)
            .into_iter()
            .map(|(r, v)| (&template[r], v))
            .collect();
        assert_eq!(
            parts,
            vec![
                ("Write about ", None),
                ("{{ topic }}", Some(0)),
                (" using ", None),
                ("{{ steps.outline.output[:400] }}", Some(1)),
                (" and ", None),
                ("{{ topics }}", None),
                (".", None),
            ]
        );
        assert_eq!(template_parts("a {{ b", &names), vec![(0..6, None)]);
    }
}
