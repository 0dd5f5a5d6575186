//! The log viewer's wire types: which lines to show ([`LogFilter`], kept in the page's URL and
//! sent as the query string of `GET /api/logs`), a stored line as read back ([`LogRecord`]) and
//! a page of them with the cursors to the next pages ([`LogPage`]).
//!
//! Pages are keyset pages on `(at, id)`: a [`LogCursor`] names a line, `before` asks for the
//! lines just older than it and `after` for those just newer, so a page costs the same at the
//! first line ever stored as at the tail. The query string is parsed and written here, by hand
//! (no URL-encoding crate in the browser's bundle).

use std::{fmt, str::FromStr};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::events::LogLevel;

/// Lines a page holds when the filter names no `limit`.
pub const DEFAULT_PAGE_SIZE: u32 = 200;
/// Most lines one page may ask for; more come by paging.
pub const MAX_PAGE_SIZE: u32 = 1_000;
/// Shortest search: the server's trigram index cannot serve fewer characters, and a shorter
/// text would scan every line.
pub const MIN_SEARCH_CHARS: usize = 3;
/// Longest search.
pub const MAX_SEARCH_CHARS: usize = 500;

/// A position in the log: the line at `at` with `id` (ids break ties between lines of the same
/// time). Written in a URL as `<microseconds since 1970>_<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct LogCursor {
    pub at: DateTime<Utc>,
    pub id: i64,
}

impl fmt::Display for LogCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.at.timestamp_micros(), self.id)
    }
}

impl FromStr for LogCursor {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (micros, id) = text.split_once('_').ok_or(())?;
        let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| ())?).ok_or(())?;
        Ok(Self {
            at,
            id: id.parse().map_err(|_| ())?,
        })
    }
}

/// A cursor's serde form is its text (`#[serde(into = "String", try_from = "String")]`):
/// `Display` and `FromStr` (with `Err = ()`) written once, for JSON and URLs alike.
macro_rules! cursor_as_text {
    ($cursor:ty, $what:literal) => {
        impl From<$cursor> for String {
            fn from(cursor: $cursor) -> String {
                cursor.to_string()
            }
        }

        impl TryFrom<String> for $cursor {
            type Error = String;

            fn try_from(text: String) -> Result<Self, String> {
                text.parse()
                    .map_err(|()| format!("{text:?} is not a {}", $what))
            }
        }
    };
}
pub(crate) use cursor_as_text;

cursor_as_text!(LogCursor, "log cursor");

/// Which lines to show. Every part is optional and they combine (AND); `levels` is a
/// multi-select (any of them). Build one in code and check it with [`LogFilter::validate`], or
/// read it from a URL with [`LogFilter::from_query`], which checks it too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    /// Lines of any of these levels; empty: every level.
    pub levels: Vec<LogLevel>,
    /// Lines of runs of the pipeline with this name.
    pub pipeline: Option<String>,
    /// Lines of this run (execution id).
    pub run: Option<Uuid>,
    /// Lines of steps with this name.
    pub step: Option<String>,
    /// Lines at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Lines before this time.
    pub to: Option<DateTime<Utc>>,
    /// Lines whose message contains this text, ignoring case (`%` and `_` are plain characters).
    pub q: Option<String>,
    /// Lines a page holds; [`DEFAULT_PAGE_SIZE`] when `None`.
    pub limit: Option<u32>,
    /// The page of lines just older than this one.
    pub before: Option<LogCursor>,
    /// The page of lines just newer than this one.
    pub after: Option<LogCursor>,
    /// The lines stored after the line with this id, in the order they were stored, whatever
    /// their times: how a live view reads its tail, so a line stored late with an earlier time
    /// (a client's clock, a delayed report) is not passed over. Start from a page's
    /// [`LogPage::tail`].
    pub since: Option<i64>,
}

/// Why a filter cannot be used: the query parameter at fault and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilterError {
    /// The query parameter: `level`, `run`, `from`, `to`, `q`, `limit`, `before`, `after`, …
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for LogFilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LogFilterError {}

pub(crate) fn refuse(field: &'static str, message: String) -> LogFilterError {
    LogFilterError { field, message }
}

impl LogFilter {
    /// The lines a page holds.
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_PAGE_SIZE)
    }

    /// Checks what parsing cannot: the time range, the page size, the cursors, the search.
    pub fn validate(&self) -> Result<(), LogFilterError> {
        check_range(self.from, self.to)?;
        check_limit(
            self.limit,
            MAX_PAGE_SIZE,
            "lines; page with `before` and `after` for more",
        )?;
        if self.before.is_some() && self.after.is_some() {
            return Err(refuse(
                "after",
                "give `before` (older lines) or `after` (newer lines), not both".into(),
            ));
        }
        if self.since.is_some() && (self.before.is_some() || self.after.is_some()) {
            return Err(refuse(
                "since",
                "`since` (lines stored after a line) goes without `before` or `after`".into(),
            ));
        }
        if let Some(q) = &self.q {
            let chars = q.chars().count();
            if chars < MIN_SEARCH_CHARS {
                return Err(refuse(
                    "q",
                    format!("search for at least {MIN_SEARCH_CHARS} characters ({q:?} is {chars})"),
                ));
            }
            if chars > MAX_SEARCH_CHARS {
                return Err(refuse(
                    "q",
                    format!(
                        "the search is {chars} characters; at most {MAX_SEARCH_CHARS} are searched"
                    ),
                ));
            }
        }
        check_no_nul(
            [
                ("q", &self.q),
                ("pipeline", &self.pipeline),
                ("step", &self.step),
            ],
            "line",
        )
    }

    /// Reads a filter from a URL's query string (with or without the leading `?`), then
    /// validates it. `level` is a comma-separated list and may be repeated; empty values count
    /// as absent; parameters it does not know (the page's own) are left alone.
    pub fn from_query(query: &str) -> Result<Self, LogFilterError> {
        let mut filter = LogFilter::default();
        for pair in known_pairs(query, &FIELDS) {
            let (field, value) = pair?;
            match field {
                "level" => {
                    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        let level =
                            LogLevel::parse(&name.to_ascii_lowercase()).ok_or_else(|| {
                                refuse(
                                    "level",
                                    format!(
                                        "unknown level {name:?}; the levels are {}",
                                        LogLevel::ALL.map(LogLevel::as_str).join(", ")
                                    ),
                                )
                            })?;
                        if !filter.levels.contains(&level) {
                            filter.levels.push(level);
                        }
                    }
                }
                "pipeline" => filter.pipeline = Some(value),
                "step" => filter.step = Some(value),
                "run" => {
                    filter.run = Some(value.parse().map_err(|_| {
                        refuse(
                            "run",
                            format!("`run` must be a run id (a UUID), not {value:?}"),
                        )
                    })?)
                }
                "from" | "to" => {
                    let time = parse_time(field, &value)?;
                    if field == "from" {
                        filter.from = Some(time);
                    } else {
                        filter.to = Some(time);
                    }
                }
                "q" => {
                    let trimmed = value.trim();
                    if !trimmed.is_empty() {
                        filter.q = Some(trimmed.to_owned());
                    }
                }
                "since" => {
                    filter.since =
                        Some(value.parse().ok().filter(|id| *id >= 0).ok_or_else(|| {
                            refuse(
                                "since",
                                format!(
                                    "`since` is a line's id (a whole number from 0), not \
                                     {value:?}; take it from a page's `tail`"
                                ),
                            )
                        })?)
                }
                "limit" => {
                    filter.limit = Some(value.parse().map_err(|_| {
                        refuse(
                            "limit",
                            format!(
                                "the page size {value:?} is not a whole number from 1 to \
                                 {MAX_PAGE_SIZE}"
                            ),
                        )
                    })?)
                }
                _ => {
                    let cursor = value.parse().map_err(|()| {
                        refuse(
                            field,
                            format!(
                                "`{field}` is not a cursor this server gave: {value:?}; take it \
                                 from a page's `older` or `newer`"
                            ),
                        )
                    })?;
                    if field == "before" {
                        filter.before = Some(cursor);
                    } else {
                        filter.after = Some(cursor);
                    }
                }
            }
        }
        filter.validate()?;
        Ok(filter)
    }

    /// The filter as a query string without the `?` (empty for the default filter), in a fixed
    /// order, so a link shows the same lines; [`LogFilter::from_query`] reads it back.
    pub fn to_query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.levels.is_empty() {
            let levels: Vec<&str> = self.levels.iter().map(|l| l.as_str()).collect();
            pairs.push(("level", levels.join(",")));
        }
        if let Some(pipeline) = &self.pipeline {
            pairs.push(("pipeline", encode(pipeline)));
        }
        if let Some(run) = self.run {
            pairs.push(("run", run.to_string()));
        }
        if let Some(step) = &self.step {
            pairs.push(("step", encode(step)));
        }
        if let Some(from) = self.from {
            pairs.push(("from", encode(&show_time(from))));
        }
        if let Some(to) = self.to {
            pairs.push(("to", encode(&show_time(to))));
        }
        if let Some(q) = &self.q {
            pairs.push(("q", encode(q)));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(before) = self.before {
            pairs.push(("before", before.to_string()));
        }
        if let Some(after) = self.after {
            pairs.push(("after", after.to_string()));
        }
        if let Some(since) = self.since {
            pairs.push(("since", since.to_string()));
        }
        pairs
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The query parameters a filter reads.
const FIELDS: [&str; 11] = [
    "level", "pipeline", "run", "step", "from", "to", "q", "limit", "before", "after", "since",
];

/// The page size's check: from 1 to `max`; `more` says what the page holds and how to read
/// beyond it.
pub(crate) fn check_limit(limit: Option<u32>, max: u32, more: &str) -> Result<(), LogFilterError> {
    match limit {
        Some(0) => Err(refuse("limit", "the page size must be at least 1".into())),
        Some(n) if n > max => Err(refuse(
            "limit",
            format!("the page size {n} is over the limit of {max} {more}"),
        )),
        _ => Ok(()),
    }
}

/// No text of a filter holds a NUL: Postgres' text cannot, so nothing `what` holds would match.
pub(crate) fn check_no_nul<'a>(
    texts: impl IntoIterator<Item = (&'static str, &'a Option<String>)>,
    what: &str,
) -> Result<(), LogFilterError> {
    for (field, text) in texts {
        if text.as_deref().is_some_and(|t| t.contains('\0')) {
            return Err(refuse(
                field,
                format!("`{field}` contains a NUL character, which no stored {what} holds"),
            ));
        }
    }
    Ok(())
}

/// The pairs of a query string whose key is one of `fields`, decoded, empty values left out
/// (they count as absent); a value that does not decode is an error naming its field.
pub(crate) fn known_pairs<'a>(
    query: &'a str,
    fields: &'a [&'static str],
) -> impl Iterator<Item = Result<(&'static str, String), LogFilterError>> + 'a {
    query_pairs(query).filter_map(|(key, value)| {
        let field = fields.iter().copied().find(|f| *f == key)?;
        match value {
            Err(()) => Some(Err(refuse(
                field,
                format!("`{field}` is not valid percent-encoded UTF-8"),
            ))),
            Ok(value) if value.is_empty() => None,
            Ok(value) => Some(Ok((field, value))),
        }
    })
}

/// A time range's check: `from` before `to` when both are given.
pub(crate) fn check_range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(), LogFilterError> {
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(refuse(
                "to",
                format!(
                    "the time range is reversed: from {} is after to {}; swap them",
                    show_time(from),
                    show_time(to)
                ),
            ));
        }
        if from == to {
            return Err(refuse(
                "to",
                format!(
                    "the time range is empty: from and to are both {}; `to` is the first \
             time not shown",
                    show_time(to)
                ),
            ));
        }
    }
    Ok(())
}

/// A time read from a query parameter: RFC 3339, any offset.
pub(crate) fn parse_time(
    field: &'static str,
    value: &str,
) -> Result<DateTime<Utc>, LogFilterError> {
    // A `+01:00` offset typed into a URL unencoded arrives as a space.
    DateTime::parse_from_rfc3339(value)
        .or_else(|_| DateTime::parse_from_rfc3339(&value.replace(' ', "+")))
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| {
            refuse(
                field,
                format!(
                    "`{field}` is not a time: {value:?}; give an RFC 3339 time such as \
                     2026-12-06T10:00:00Z"
                ),
            )
        })
}

/// A time as the filter writes it: RFC 3339 in UTC, with as many fractional digits as it has.
pub(crate) fn show_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `key=value` pairs of a query string, keys as written, values percent-decoded (`+` is a
/// space); `Err` for a value that does not decode to UTF-8.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (&str, Result<String, ()>)> {
    query
        .strip_prefix('?')
        .unwrap_or(query)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key, decode(value))
        })
}

fn decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(())?;
                let hex = std::str::from_utf8(hex).map_err(|_| ())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ())
}

/// Percent-encodes everything but the unreserved characters and `:`, which reads better in
/// times.
/// `/logs` filtered to a run, or to one step of it: where *View logs* and Ctrl+L go from a run.
pub fn run_logs_href(run: uuid::Uuid, step: Option<&str>) -> String {
    match step {
        Some(step) => format!("/logs?run={run}&step={}", encode(step)),
        None => format!("/logs?run={run}"),
    }
}

pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A stored log line as the log viewer reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow, utoipa::ToSchema))]
pub struct LogRecord {
    /// The line's number in the store; with `at`, its place in the order.
    pub id: i64,
    pub at: DateTime<Utc>,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub level: LogLevel,
    /// The run (execution id) it belongs to; none for pipescope's own lines.
    pub run: Option<Uuid>,
    /// The run's pipeline.
    pub pipeline: Option<String>,
    pub step: Option<String>,
    pub message: String,
    /// Structured context (key/value), as the line's `log:entry` carried it.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "ssr", sqlx(json), schema(value_type = Object))]
    pub context: Map<String, Value>,
}

impl LogRecord {
    /// This line's place, for `before` / `after`.
    pub fn cursor(&self) -> LogCursor {
        LogCursor {
            at: self.at,
            id: self.id,
        }
    }
}

/// One page of lines, oldest first, and where the pages next to it start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LogPage {
    pub lines: Vec<LogRecord>,
    /// Pass as `before` for the page just older; `None`: the first matching line stored is in
    /// this page (or nothing matches).
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>))]
    pub older: Option<LogCursor>,
    /// Pass as `after` for the page just newer; `None`: nothing newer matched when the page was
    /// read (the tail: follow live events from here, or ask again with `after` set to the last
    /// line's cursor).
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>))]
    pub newer: Option<LogCursor>,
    /// The last event in the store when the page was read (`None`: none yet). Lines stored
    /// after the page come live as `log:entry` events from `GET /api/events` with
    /// `Last-Event-ID` set to this: with the pages, every line once, none missed in between.
    #[serde(default)]
    pub seq: Option<i64>,
    /// The id of the last line stored (of any filter) when the page was read, 0 for none:
    /// pass as `since` for the lines stored after the page, whatever their times.
    #[serde(default)]
    pub tail: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_filter_round_trips_through_its_query_string() {
        let cursor = LogCursor {
            at: time("2026-12-06T10:00:00.123456Z"),
            id: 42,
        };
        let filter = LogFilter {
            levels: vec![LogLevel::Warn, LogLevel::Error],
            pipeline: Some("draft & review = 100% +ok_é/?#".into()),
            run: Some(Uuid::from_u128(0xabc)),
            step: Some("step one".into()),
            from: Some(time("2026-12-06T09:00:00Z")),
            to: Some(time("2026-12-06T11:30:00.5+01:00")),
            q: Some("50% of a_b, \"quoted\"".into()),
            limit: Some(500),
            before: Some(cursor),
            after: None,
            since: None,
        };
        let query = filter.to_query();
        assert!(query.starts_with("level=warn,error&pipeline=draft%20%26"));
        assert_eq!(LogFilter::from_query(&query), Ok(filter.clone()));
        assert_eq!(LogFilter::from_query(&format!("?{query}")), Ok(filter));

        let after = LogFilter {
            after: Some(cursor),
            ..Default::default()
        };
        assert_eq!(after.to_query(), format!("after={cursor}"));
        let since = LogFilter {
            since: Some(42),
            ..Default::default()
        };
        assert_eq!(since.to_query(), "since=42");
        assert_eq!(LogFilter::from_query("since=42"), Ok(since));
        assert_eq!(LogFilter::from_query(&after.to_query()), Ok(after));
        assert_eq!(LogFilter::default().to_query(), "");
        assert_eq!(LogFilter::from_query(""), Ok(LogFilter::default()));
    }

    #[test]
    fn the_query_string_is_read_leniently_where_it_is_harmless() {
        let filter = LogFilter::from_query(
            "level=WARN&level=error,warn&q=+timeout+&step=&wrap=1&follow=0&pipeline=a+b",
        )
        .expect("valid");
        assert_eq!(filter.levels, vec![LogLevel::Warn, LogLevel::Error]);
        assert_eq!(filter.q.as_deref(), Some("timeout"));
        assert_eq!(filter.step, None);
        assert_eq!(filter.pipeline.as_deref(), Some("a b"));
        assert_eq!(filter.page_size(), DEFAULT_PAGE_SIZE);
        let typed = LogFilter::from_query("from=2026-12-06T10:00:00+01:00").expect("valid");
        assert_eq!(typed.from, Some(time("2026-12-06T09:00:00Z")));
    }

    #[test]
    fn bad_filters_say_what_to_fix() {
        let error = |query: &str| LogFilter::from_query(query).expect_err(query);
        let reversed = error("from=2026-12-06T11:00:00Z&to=2026-12-06T10:00:00Z");
        assert_eq!(reversed.field, "to");
        assert!(reversed.message.contains("reversed"), "{reversed}");
        assert!(error("from=2026-12-06T10:00:00Z&to=2026-12-06T10:00:00Z")
            .message
            .contains("empty"));
        let level = error("level=info,fatal");
        assert_eq!(level.field, "level");
        assert!(
            level.message.contains("\"fatal\"") && level.message.contains("trace, debug"),
            "{level}"
        );
        let huge = error("limit=5000");
        assert_eq!(huge.field, "limit");
        assert!(huge.message.contains("1000"), "{huge}");
        assert_eq!(error("limit=0").field, "limit");
        assert_eq!(error("limit=ten").field, "limit");
        assert_eq!(error("before=yesterday").field, "before");
        assert_eq!(error("after=12").field, "after");
        assert_eq!(error("before=1_1&after=2_2").field, "after");
        assert_eq!(error("since=-1").field, "since");
        assert_eq!(error("since=1_1").field, "since");
        assert_eq!(error("since=5&after=2_2").field, "since");
        assert_eq!(error("run=42").field, "run");
        assert_eq!(error("from=monday").field, "from");
        assert_eq!(error("q=ab").field, "q");
        assert_eq!(error(&format!("q={}", "x".repeat(501))).field, "q");
        assert_eq!(error("q=a%00bc").field, "q");
        assert_eq!(error("q=%FF%FEabc").field, "q");
        assert_eq!(error("q=abc%2").field, "q");
    }

    #[test]
    fn a_cursor_is_written_as_microseconds_and_id() {
        let cursor = LogCursor {
            at: time("1969-12-31T23:59:59.999999Z"),
            id: 7,
        };
        assert_eq!(cursor.to_string(), "-1_7");
        assert_eq!("-1_7".parse(), Ok(cursor));
        let json = serde_json::to_string(&cursor).expect("serialise");
        assert_eq!(json, "\"-1_7\"");
        assert_eq!(serde_json::from_str::<LogCursor>(&json).ok(), Some(cursor));
        assert!(serde_json::from_str::<LogCursor>("\"x_7\"").is_err());
    }
}
