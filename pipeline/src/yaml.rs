//! YAML text to a tree whose every node knows its line and column, with limits on size, depth and alias expansion.
//!
//! The tree is built from the parser's event stream (not through a generic YAML value type) so the
//! limits are enforced while parsing: a deep or alias-heavy document is rejected at the event that
//! crosses the limit, before any of it is materialised.

use std::collections::HashMap;
use std::rc::Rc;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span};

use crate::Diagnostic;

/// Largest accepted file. Pipelines are a few kilobytes; the limit keeps a pasted log or binary
/// from tying up the server (or the browser editor).
pub const MAX_BYTES: usize = 1024 * 1024;
/// Deepest accepted nesting of lists and mappings. The schema needs 4; 64 leaves room for data in
/// input defaults while bounding the builder's stack.
pub(crate) const MAX_DEPTH: usize = 64;
/// Most nodes a document may have once aliases are counted as the copies they stand for. Aliases
/// are shared, never copied, but consumers walk them as copies, so this is what bounds their work.
pub(crate) const MAX_NODES: usize = 100_000;

/// A position in the text: 1-based line, 1-based column in characters, and the 0-based character
/// index (what the parser counts in), used to find text inside a scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Mark {
    pub line: u32,
    pub column: u32,
    pub index: usize,
}

impl Mark {
    fn from_marker(m: &Marker) -> Mark {
        Mark {
            line: saturate(m.line()).max(1),
            column: saturate(m.col()).saturating_add(1),
            index: m.index(),
        }
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// How a scalar was written. Only plain scalars are resolved to numbers, booleans and null
/// (YAML 1.2 core schema); quoted ones, block ones and `!!str` ones are always text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Quoted,
    /// `|`: lines of the value are lines of the source, which lets template errors map exactly.
    Literal,
    Folded,
}

#[derive(Debug)]
pub(crate) enum Value {
    Scalar { text: String, style: Style },
    Seq(Vec<Rc<Node>>),
    Map(Vec<(Rc<Node>, Rc<Node>)>),
}

#[derive(Debug)]
pub(crate) struct Node {
    pub start: Mark,
    pub end: Mark,
    pub value: Value,
    /// This node plus everything under it, with aliases counted as copies.
    weight: usize,
}

impl Node {
    /// The scalar's text if this is a scalar (of any style).
    pub fn scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The text of a plain (unquoted) scalar, the only kind that can be a number, bool or null.
    fn plain(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar {
                text,
                style: Style::Plain,
            } => Some(text),
            _ => None,
        }
    }

    pub fn style(&self) -> Option<Style> {
        match &self.value {
            Value::Scalar { style, .. } => Some(*style),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.plain(), Some("" | "~" | "null" | "Null" | "NULL"))
    }

    /// A whole number written as YAML 1.2 core schema integer (decimal, `0o` octal, `0x` hex).
    pub fn as_int(&self) -> Option<i128> {
        let text = self.plain()?;
        if let Some(oct) = text.strip_prefix("0o") {
            return i128::from_str_radix(oct, 8).ok();
        }
        if let Some(hex) = text.strip_prefix("0x") {
            return i128::from_str_radix(hex, 16).ok();
        }
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    }

    /// A number (integer or float) written as YAML 1.2 core schema; `.inf`/`.nan` count too so
    /// that range checks can reject them with a clear message.
    pub fn as_float(&self) -> Option<f64> {
        if let Some(int) = self.as_int() {
            // Precision loss on huge integers is irrelevant: they fail every range check anyway.
            #[allow(clippy::cast_precision_loss)]
            return Some(int as f64);
        }
        let text = self.plain()?;
        match text {
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
            "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
            _ => {}
        }
        // Rust's float syntax is a superset of YAML's for these characters (it also takes `inf`,
        // `nan` and `infinity`, which the character check rules out).
        let numeric = text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
        if numeric && text.bytes().any(|b| b.is_ascii_digit()) {
            text.parse().ok()
        } else {
            None
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.plain()? {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }

    /// How the value reads in a message: "`abc`", "a list", "a mapping", "nothing".
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
            Value::Scalar { .. } if self.is_null() => "nothing".to_owned(),
            Value::Scalar { text, style } => {
                let shown = shorten(text, 40);
                match style {
                    Style::Plain => format!("`{shown}`"),
                    _ => format!("the text `{shown}`"),
                }
            }
        }
    }

    /// The value as JSON, scalars resolved by the YAML 1.2 core schema (for input defaults).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Seq(items) => J::Array(items.iter().map(|n| n.to_json()).collect()),
            Value::Map(pairs) => J::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.scalar().unwrap_or_default().to_owned(), v.to_json()))
                    .collect(),
            ),
            Value::Scalar { text, .. } => {
                if self.is_null() {
                    J::Null
                } else if let Some(b) = self.as_bool() {
                    J::Bool(b)
                } else if let Some(i) = self.as_int().and_then(|i| i64::try_from(i).ok()) {
                    J::from(i)
                } else if let Some(f) = self.as_float().and_then(serde_json::Number::from_f64) {
                    J::Number(f)
                } else {
                    J::String(text.clone())
                }
            }
        }
    }
}

/// First `max` characters of `text` on one line, with an ellipsis when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut out: String = line.chars().take(max).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// A loaded document: its root (None for an empty file) and the problems that did not stop
/// loading (duplicate keys: the first occurrence is kept so validation can go on).
pub(crate) struct Document<'a> {
    pub source: &'a str,
    pub root: Option<Rc<Node>>,
    pub diagnostics: Vec<Diagnostic>,
}

pub(crate) fn diag(line: u32, column: u32, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        line,
        column,
        message: message.into(),
        suggestion: None,
    }
}

fn diag_at(mark: Mark, message: impl Into<String>) -> Diagnostic {
    diag(mark.line, mark.column, message)
}

/// Parses `bytes` into a located tree. A text that stops parsing part-way still gives the tree
/// read up to that point (open lists and mappings closed there, a key still waiting for its value dropped), for
/// an editor that shows what it can while the user is in the middle of typing; the problem that
/// stopped it is the second half. Too large or not UTF-8: no tree at all.
pub(crate) fn load_partial(bytes: &[u8]) -> (Option<Document<'_>>, Option<Diagnostic>) {
    let source = match source(bytes) {
        Ok(source) => source,
        Err(error) => return (None, Some(error)),
    };
    let mut builder = Builder::new(source);
    let stopped = builder.parse().err();
    if let Some(error) = &stopped {
        builder.close_all(error);
    }
    (Some(builder.finish()), stopped)
}

/// The text of `bytes`, if it is within [`MAX_BYTES`] and valid UTF-8.
fn source(bytes: &[u8]) -> Result<&str, Diagnostic> {
    if bytes.len() > MAX_BYTES {
        return Err(diag(
            1,
            1,
            format!(
                "the file is {} bytes ({:.1} MiB); pipeline files may be at most {MAX_BYTES} bytes (1 MiB)",
                bytes.len(),
                mib(bytes.len())
            ),
        ));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        // The prefix is valid UTF-8 by definition; the fallback is never taken.
        let prefix = std::str::from_utf8(valid).unwrap_or_default();
        let (line, column) = line_column_at_end(prefix);
        diag(
            line,
            column,
            format!(
                "the file is not valid UTF-8 (byte 0x{:02X} at offset {}); save it as UTF-8 text",
                bytes.get(e.valid_up_to()).copied().unwrap_or_default(),
                e.valid_up_to()
            ),
        )
    })
}

fn mib(n: usize) -> f64 {
    // Only for display.
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    n / (1024.0 * 1024.0)
}

/// 1-based line and column of the position just after `prefix`.
fn line_column_at_end(prefix: &str) -> (u32, u32) {
    let line = prefix.bytes().filter(|&b| b == b'\n').count() + 1;
    let last_line = prefix.rsplit('\n').next().unwrap_or_default();
    (saturate(line), saturate(last_line.chars().count() + 1))
}

enum Frame {
    Seq {
        start: Mark,
        anchor: usize,
        items: Vec<Rc<Node>>,
        weight: usize,
    },
    Map {
        start: Mark,
        anchor: usize,
        pairs: Vec<(Rc<Node>, Rc<Node>)>,
        pending_key: Option<Rc<Node>>,
        /// Scalar keys seen so far, to report duplicates; small maps make a linear scan cheaper
        /// than hashing, but a hostile file may have thousands of keys, hence the map.
        seen: HashMap<String, Mark>,
        /// Set when the pending key duplicates an earlier one: its value is then dropped.
        skip_value: bool,
        weight: usize,
    },
}

struct Builder<'a> {
    source: &'a str,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Rc<Node>>,
    nodes: usize,
    documents: u32,
    root: Option<Rc<Node>>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    fn new(source: &'a str) -> Self {
        Builder {
            source,
            parser: Parser::new_from_str(source),
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            documents: 0,
            root: None,
            diagnostics: Vec::new(),
        }
    }

    fn parse(&mut self) -> Result<(), Diagnostic> {
        while let Some(event) = self.parser.next_event() {
            let (event, span) = event.map_err(|e| scan_error(&e))?;
            self.event(event, span)?;
        }
        Ok(())
    }

    fn finish(self) -> Document<'a> {
        Document {
            source: self.source,
            root: self.root,
            diagnostics: self.diagnostics,
        }
    }

    /// After parsing stopped at `error`: closes every open list and mapping there, so what was
    /// read so far becomes the tree.
    fn close_all(&mut self, error: &Diagnostic) {
        let at = Mark {
            line: error.line,
            column: error.column,
            index: 0,
        };
        while let Some(frame) = self.stack.pop() {
            let (start, value, weight) = match frame {
                Frame::Seq {
                    start,
                    items,
                    weight,
                    ..
                } => (start, Value::Seq(items), weight),
                Frame::Map {
                    start,
                    pairs,
                    weight,
                    ..
                } => (start, Value::Map(pairs), weight),
            };
            let node = Rc::new(Node {
                start,
                end: at.max(start),
                value,
                weight,
            });
            // Closing only shrinks what is open; the limits were checked as it was read.
            if self.push_value(node).is_err() {
                return;
            }
        }
    }

    fn event(&mut self, event: Event<'a>, span: Span) -> Result<(), Diagnostic> {
        let start = Mark::from_marker(&span.start);
        let end = Mark::from_marker(&span.end);
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(diag_at(
                        start,
                        "a second YAML document starts here; a pipeline file holds exactly one \
                         document (remove this `---` and what follows, or put it in its own file)",
                    ));
                }
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id).cloned() else {
                    return Err(diag_at(start, "this alias refers to an unknown anchor"));
                };
                self.count(target.weight, start)?;
                self.push_value(target)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let forced_text = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                let style = match style {
                    _ if forced_text => Style::Quoted,
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                self.count(1, start)?;
                let node = Rc::new(Node {
                    start,
                    end,
                    value: Value::Scalar {
                        text: text.into_owned(),
                        style,
                    },
                    weight: 1,
                });
                self.anchor(anchor, &node);
                self.push_value(node)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(start)?;
                self.stack.push(Frame::Seq {
                    start,
                    anchor,
                    items: Vec::new(),
                    weight: 1,
                });
            }
            Event::MappingStart(anchor, _) => {
                self.open(start)?;
                self.stack.push(Frame::Map {
                    start,
                    anchor,
                    pairs: Vec::new(),
                    pending_key: None,
                    seen: HashMap::new(),
                    skip_value: false,
                    weight: 1,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq {
                        start,
                        anchor,
                        items,
                        weight,
                    }) => (
                        anchor,
                        Node {
                            start,
                            end,
                            value: Value::Seq(items),
                            weight,
                        },
                    ),
                    Some(Frame::Map {
                        start,
                        anchor,
                        pairs,
                        weight,
                        ..
                    }) => (
                        anchor,
                        Node {
                            start,
                            end,
                            value: Value::Map(pairs),
                            weight,
                        },
                    ),
                    // The parser balances start and end events; nothing to close is a parser bug,
                    // reported rather than panicked on.
                    None => return Err(diag_at(start, "unbalanced YAML structure")),
                };
                let (anchor, node) = node;
                let node = Rc::new(node);
                self.anchor(anchor, &node);
                self.push_value(node)?;
            }
        }
        Ok(())
    }

    fn open(&mut self, start: Mark) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(diag_at(
                start,
                format!(
                    "nesting is too deep: lists and mappings may be nested at most {MAX_DEPTH} levels"
                ),
            ));
        }
        self.count(1, start)
    }

    /// Counts `n` more nodes (an alias counts as the size of what it stands for).
    fn count(&mut self, n: usize, at: Mark) -> Result<(), Diagnostic> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(diag_at(
                at,
                format!(
                    "the document is too large: it has more than {MAX_NODES} values (an alias \
                     `*name` counts as a copy of what it refers to); use fewer or smaller aliases, \
                     or split the pipeline"
                ),
            ));
        }
        Ok(())
    }

    fn anchor(&mut self, anchor: usize, node: &Rc<Node>) {
        // Anchor ids start at 1; 0 means "no anchor".
        if anchor != 0 {
            self.anchors.insert(anchor, Rc::clone(node));
        }
    }

    fn push_value(&mut self, node: Rc<Node>) -> Result<(), Diagnostic> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
            }
            Some(Frame::Seq { items, weight, .. }) => {
                *weight += node.weight;
                items.push(node);
            }
            Some(Frame::Map {
                pairs,
                pending_key,
                seen,
                skip_value,
                weight,
                ..
            }) => {
                *weight += node.weight;
                match pending_key.take() {
                    Some(key) => {
                        if *skip_value {
                            *skip_value = false;
                        } else {
                            pairs.push((key, node));
                        }
                    }
                    None => {
                        if let Some(text) = node.scalar() {
                            if let Some(first) = seen.get(text) {
                                self.diagnostics.push(diag_at(
                                    node.start,
                                    format!(
                                        "duplicate key `{}` (first set on line {}); remove one of them",
                                        shorten(text, 40),
                                        first.line
                                    ),
                                ));
                                *skip_value = true;
                            } else {
                                seen.insert(text.to_owned(), node.start);
                            }
                        }
                        *pending_key = Some(node);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The parser's message, located, with a hint for the mistakes people actually make.
fn scan_error(e: &ScanError) -> Diagnostic {
    let info = e.info();
    if info.contains("recursion limit") {
        // The scanner looks ahead of the events, so on `[[[[…` its own limit can fire before ours.
        return diag_at(
            Mark::from_marker(e.marker()),
            format!(
                "nesting is too deep: lists and mappings may be nested at most {MAX_DEPTH} levels"
            ),
        );
    }
    let hint = if info.contains("tab") {
        "a tab character is used for indentation here; YAML indents with spaces only, replace the tab with spaces"
    } else if info.contains("mapping values are not allowed") {
        "unexpected `:`; a value that itself contains `: ` must be quoted, e.g. prompt: \"Note: be brief\""
    } else if info.contains("did not find expected key") || info.contains("expected '-' indicator")
    {
        "the indentation does not line up with the entries above; entries of one mapping or list need the same indentation"
    } else if info.contains("did not find expected node content") {
        "a value is missing here, or a `[`/`{` was not closed"
    } else if info.contains("did not find expected ',' or ']'") {
        "a `[` list is not closed with `]`, or an item is missing a `,`"
    } else if info.contains("did not find expected ',' or '}'") {
        "a `{` mapping is not closed with `}`, or an entry is missing a `,`"
    } else if info.contains("quoted scalar") {
        "a quoted text is not closed; add the closing quote"
    } else if info.contains("unknown anchor") {
        "this alias (`*name`) refers to an anchor (`&name`) that is not defined above it"
    } else if info.contains("block scalar") {
        "a `|` or `>` block is malformed; its lines must be indented more than its key"
    } else {
        ""
    };
    let message = if hint.is_empty() {
        format!("invalid YAML: {info}")
    } else {
        format!("invalid YAML: {hint} (parser: {info})")
    };
    diag_at(Mark::from_marker(e.marker()), message)
}

/// Positions of byte offsets and character indexes in the source, for the few diagnostics that
/// point inside a scalar. Built once per validation that needs it, so many such diagnostics in a
/// large file stay cheap.
pub(crate) struct SourceIndex<'a> {
    source: &'a str,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    /// Byte offset of each character, only for non-ASCII text (otherwise they are equal).
    char_bytes: Option<Vec<usize>>,
}

impl<'a> SourceIndex<'a> {
    pub fn new(source: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let char_bytes =
            (!source.is_ascii()).then(|| source.char_indices().map(|(b, _)| b).collect());
        SourceIndex {
            source,
            line_starts,
            char_bytes,
        }
    }

    pub fn source(&self) -> &'a str {
        self.source
    }

    /// Byte offset of character index `index` (clamped to the end).
    pub fn byte_of_char(&self, index: usize) -> usize {
        match &self.char_bytes {
            None => index.min(self.source.len()),
            Some(bytes) => bytes.get(index).copied().unwrap_or(self.source.len()),
        }
    }

    /// Byte offset where 1-based `line` starts, if the text has that line.
    pub fn line_start(&self, line: u32) -> Option<usize> {
        self.line_starts
            .get(usize::try_from(line).ok()?.checked_sub(1)?)
            .copied()
    }

    /// Line and column of byte offset `byte` (clamped, and moved back to a character boundary).
    pub fn position_of_byte(&self, byte: usize) -> (u32, u32) {
        let mut byte = byte.min(self.source.len());
        while !self.source.is_char_boundary(byte) {
            byte -= 1;
        }
        let line = self.line_starts.partition_point(|&start| start <= byte);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self.source[start..byte].chars().count() + 1;
        (saturate(line.max(1)), saturate(column))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(bytes: &[u8]) -> Result<Document<'_>, Diagnostic> {
        match load_partial(bytes) {
            (Some(document), None) => Ok(document),
            (_, Some(stopped)) => Err(stopped),
            (None, None) => unreachable!("no tree comes with a reason"),
        }
    }

    fn root(src: &str) -> Rc<Node> {
        load(src.as_bytes())
            .expect("loads")
            .root
            .expect("has a root")
    }

    #[test]
    fn scalars_are_located_and_resolved() {
        let node = root("a: 12\nb: \"12\"\nc: 0x1f\nd: 1.5\ne: ~\n");
        let Value::Map(pairs) = &node.value else {
            panic!("not a map")
        };
        assert_eq!(pairs[0].1.as_int(), Some(12));
        assert_eq!(pairs[1].1.as_int(), None);
        assert_eq!(pairs[2].1.as_int(), Some(31));
        assert_eq!(pairs[3].1.as_float(), Some(1.5));
        assert!(pairs[4].1.is_null());
        assert_eq!((pairs[1].1.start.line, pairs[1].1.start.column), (2, 4));
    }

    #[test]
    fn aliases_are_shared_and_counted() {
        let node = root("a: &x [1, 2, 3]\nb: *x\n");
        assert_eq!(node.weight, 1 + 2 * 4 + 2);
    }

    #[test]
    fn non_utf8_is_located() {
        let err = load(b"name: ok\nab\xffc").err().expect("rejected");
        assert_eq!((err.line, err.column), (2, 3));
    }
}
