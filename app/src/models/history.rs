//! The history's wire types: which runs to list ([`HistoryFilter`], kept in the `/runs` page's
//! URL and sent as the query string of `GET /api/history`), a run as the list shows it
//! ([`HistoryRun`]) and a page of them with the cursor to the next ([`HistoryPage`]).
//!
//! Pages are keyset pages on `(sort key, id)`: a [`HistoryCursor`] names the last run of a page
//! in the page's order, and `after` asks for the runs just past it, so the thousandth page costs
//! what the first costs (no OFFSET). The query string is read and written with the log
//! viewer's helpers (no URL-encoding crate in the browser's bundle).

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    logs::{
        check_limit, check_no_nul, check_range, cursor_as_text, encode, known_pairs, parse_time,
        refuse, show_time, LogFilterError,
    },
    RunStatus, RunSummary,
};

/// Runs a page holds when the filter names no `limit`.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Most runs one page may ask for; more come by paging.
pub const MAX_PAGE_SIZE: u32 = 500;
/// Longest search.
pub const MAX_SEARCH_CHARS: usize = 200;

/// Why a history filter cannot be used: the query parameter at fault and what to change (the
/// log viewer's error, same shape).
pub type HistoryFilterError = LogFilterError;

/// The list's order. Each is one index walked from the cursor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum HistorySort {
    /// Latest start first.
    #[default]
    Newest,
    /// Earliest start first.
    Oldest,
    /// Longest first; runs still going (no duration yet) last.
    Duration,
    /// Most expensive first.
    Cost,
}

impl HistorySort {
    pub const ALL: [HistorySort; 4] = [
        HistorySort::Newest,
        HistorySort::Oldest,
        HistorySort::Duration,
        HistorySort::Cost,
    ];

    /// The word in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            HistorySort::Newest => "newest",
            HistorySort::Oldest => "oldest",
            HistorySort::Duration => "duration",
            HistorySort::Cost => "cost",
        }
    }

    /// What the sort menu says.
    pub fn label(self) -> &'static str {
        match self {
            HistorySort::Newest => "Newest first",
            HistorySort::Oldest => "Oldest first",
            HistorySort::Duration => "Longest first",
            HistorySort::Cost => "Most expensive first",
        }
    }

    /// Whether `key` is a sort key of this order as the server writes it: microseconds since
    /// 1970 (start time), milliseconds (duration, -1 for none) or a decimal amount (cost).
    fn reads_key(self, key: &str) -> bool {
        match self {
            HistorySort::Newest | HistorySort::Oldest => key
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .is_some(),
            HistorySort::Duration => key.parse::<i64>().is_ok_and(|ms| ms >= -1),
            HistorySort::Cost => {
                let (whole, fraction) = key.split_once('.').unwrap_or((key, "0"));
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                digits(whole) && digits(fraction) && key.len() <= 24
            }
        }
    }
}

/// A position in the list: the run `id` whose sort key is `key` (written by the server, see
/// [`HistorySort`]). Written in a URL as `<key>_<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct HistoryCursor {
    pub key: String,
    pub id: Uuid,
}

impl fmt::Display for HistoryCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.key, self.id)
    }
}

impl FromStr for HistoryCursor {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (key, id) = text.split_once('_').ok_or(())?;
        Ok(Self {
            key: key.to_owned(),
            id: id.parse().map_err(|_| ())?,
        })
    }
}

cursor_as_text!(HistoryCursor, "history cursor");

/// Which runs to list. Every part is optional and they combine (AND); `statuses` is a
/// multi-select (any of them). Read one from a URL with [`HistoryFilter::from_query`], which
/// validates it, or build one and check it with [`HistoryFilter::validate`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// Runs of the pipeline with this name.
    pub pipeline: Option<String>,
    /// Runs in any of these states; empty: every state.
    pub statuses: Vec<RunStatus>,
    /// Runs with a step attempt sent to this provider (e.g. `openai`).
    pub provider: Option<String>,
    /// Runs with a step attempt sent to this model.
    pub model: Option<String>,
    /// Runs of this batch.
    pub batch: Option<Uuid>,
    /// Runs started at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Runs started before this time.
    pub to: Option<DateTime<Utc>>,
    /// Runs with a step whose prompt or response holds these words (Postgres full-text search,
    /// web-search syntax: `"a phrase"`, `or`, `-word`).
    pub q: Option<String>,
    pub sort: HistorySort,
    /// Runs a page holds; [`DEFAULT_PAGE_SIZE`] when `None`.
    pub limit: Option<u32>,
    /// The page just past this run, in `sort`'s order.
    pub after: Option<HistoryCursor>,
}

impl HistoryFilter {
    /// The runs a page holds.
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_PAGE_SIZE)
    }

    /// Checks what parsing cannot: the time range, the page size, the cursor against the
    /// order, the search.
    pub fn validate(&self) -> Result<(), HistoryFilterError> {
        check_range(self.from, self.to)?;
        check_limit(
            self.limit,
            MAX_PAGE_SIZE,
            "runs; page with `after` for more, or export the history",
        )?;
        if let Some(after) = &self.after {
            if !self.sort.reads_key(&after.key) {
                return Err(refuse(
                    "after",
                    format!(
                        "`after` is not a cursor of the order `{}`: {after}; take it from a \
                         page's `next` read with the same `sort`",
                        self.sort.as_str()
                    ),
                ));
            }
        }
        if let Some(q) = &self.q {
            let chars = q.chars().count();
            if chars > MAX_SEARCH_CHARS {
                return Err(refuse(
                    "q",
                    format!(
                        "the search is {chars} characters; at most {MAX_SEARCH_CHARS} are searched"
                    ),
                ));
            }
            if !q.chars().any(char::is_alphanumeric) {
                return Err(refuse(
                    "q",
                    format!("search for words: {q:?} has no letter or digit to look for"),
                ));
            }
        }
        check_no_nul(
            [
                ("q", &self.q),
                ("pipeline", &self.pipeline),
                ("provider", &self.provider),
                ("model", &self.model),
            ],
            "run",
        )
    }

    /// Reads a filter from a URL's query string (with or without the leading `?`), then
    /// validates it. `status` is a comma-separated list and may be repeated; empty values count
    /// as absent; parameters it does not know (the page's own, `format`) are left alone.
    pub fn from_query(query: &str) -> Result<Self, HistoryFilterError> {
        let mut filter = HistoryFilter::default();
        for pair in known_pairs(query, &FIELDS) {
            let (field, value) = pair?;
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let text = Some(value.to_owned());
            match field {
                "pipeline" => filter.pipeline = text,
                "provider" => filter.provider = text,
                "model" => filter.model = text,
                "q" => filter.q = text,
                "status" => {
                    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        let status: RunStatus =
                            name.to_ascii_lowercase().parse().map_err(|_| {
                                refuse(
                                    "status",
                                    format!(
                                        "unknown status {name:?}; the statuses are {}",
                                        RunStatus::ALL.map(RunStatus::as_str).join(", ")
                                    ),
                                )
                            })?;
                        if !filter.statuses.contains(&status) {
                            filter.statuses.push(status);
                        }
                    }
                }
                "batch" => {
                    filter.batch = Some(value.parse().map_err(|_| {
                        refuse(
                            "batch",
                            format!("`batch` must be a batch id (a UUID), not {value:?}"),
                        )
                    })?)
                }
                "from" => filter.from = Some(parse_time("from", value)?),
                "to" => filter.to = Some(parse_time("to", value)?),
                "sort" => {
                    filter.sort = HistorySort::ALL
                        .into_iter()
                        .find(|s| s.as_str() == value)
                        .ok_or_else(|| {
                            refuse(
                                "sort",
                                format!(
                                    "unknown order {value:?}; sort by {}",
                                    HistorySort::ALL.map(HistorySort::as_str).join(", ")
                                ),
                            )
                        })?
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
                    filter.after = Some(value.parse().map_err(|()| {
                        refuse(
                            "after",
                            format!(
                                "`after` is not a cursor this server gave: {value:?}; take it \
                                 from a page's `next`"
                            ),
                        )
                    })?)
                }
            }
        }
        filter.validate()?;
        Ok(filter)
    }

    /// The filter as a query string without the `?` (empty for the default filter), in a fixed
    /// order, so a link lists the same runs; [`HistoryFilter::from_query`] reads it back.
    pub fn to_query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(pipeline) = &self.pipeline {
            pairs.push(("pipeline", encode(pipeline)));
        }
        if !self.statuses.is_empty() {
            let statuses: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
            pairs.push(("status", statuses.join(",")));
        }
        for (key, value) in [
            ("provider", &self.provider),
            ("model", &self.model),
            ("q", &self.q),
        ] {
            if let Some(value) = value {
                pairs.push((key, encode(value)));
            }
        }
        if let Some(batch) = self.batch {
            pairs.push(("batch", batch.to_string()));
        }
        if let Some(from) = self.from {
            pairs.push(("from", encode(&show_time(from))));
        }
        if let Some(to) = self.to {
            pairs.push(("to", encode(&show_time(to))));
        }
        if self.sort != HistorySort::Newest {
            pairs.push(("sort", self.sort.as_str().to_owned()));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(after) = &self.after {
            pairs.push(("after", encode(&after.to_string())));
        }
        pairs
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The same runs from the first page (no cursor).
    pub fn first_page(&self) -> Self {
        Self {
            after: None,
            ..self.clone()
        }
    }
}

/// The query parameters a filter reads.
const FIELDS: [&str; 11] = [
    "pipeline", "status", "provider", "model", "batch", "from", "to", "q", "sort", "limit", "after",
];

/// A run as the history lists it: the dashboard's summary of it, with its batch, duration and
/// the models its steps were sent to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow, utoipa::ToSchema))]
pub struct HistoryRun {
    #[serde(flatten)]
    #[cfg_attr(feature = "ssr", sqlx(flatten))]
    pub run: RunSummary,
    pub batch_id: Option<Uuid>,
    /// Set when the run has finished.
    pub duration_ms: Option<i64>,
    /// `provider/model` of each model its step attempts were sent to, sorted.
    #[serde(default)]
    pub models: Vec<String>,
}

/// One page of runs in the filter's order, and where the next starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HistoryPage {
    pub runs: Vec<HistoryRun>,
    /// Pass as `after` (with the same filter) for the next page; `None`: this is the last.
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>))]
    pub next: Option<HistoryCursor>,
    /// With a search: steps stored but not yet in the search index (counted up to 10,000),
    /// which the search cannot find yet. The indexer keeps this near 0 but for a burst of
    /// ingest or the history before an upgrade.
    #[serde(default)]
    pub unindexed: u64,
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
        let filter = HistoryFilter {
            pipeline: Some("draft & review = 100% +ok_é/?#".into()),
            statuses: vec![RunStatus::Failed, RunStatus::Cancelled],
            provider: Some("openai".into()),
            model: Some("gpt-4o mini".into()),
            batch: Some(Uuid::from_u128(0xbeef)),
            from: Some(time("2026-12-06T09:00:00Z")),
            to: Some(time("2026-12-06T11:30:00.5+01:00")),
            q: Some("\"rate limit\" -retry".into()),
            sort: HistorySort::Cost,
            limit: Some(100),
            after: Some(HistoryCursor {
                key: "0.006300".into(),
                id: Uuid::from_u128(7),
            }),
        };
        let query = filter.to_query();
        assert!(query.starts_with("pipeline=draft%20%26"), "{query}");
        assert!(query.contains("status=failed,cancelled"), "{query}");
        assert_eq!(HistoryFilter::from_query(&query), Ok(filter.clone()));
        assert_eq!(HistoryFilter::from_query(&format!("?{query}")), Ok(filter));
        assert_eq!(HistoryFilter::default().to_query(), "");
        assert_eq!(
            HistoryFilter::from_query("format=csv&status=&sort=newest"),
            Ok(HistoryFilter::default())
        );
        let statuses = HistoryFilter::from_query("status=FAILED&status=failed,running")
            .expect("valid")
            .statuses;
        assert_eq!(statuses, vec![RunStatus::Failed, RunStatus::Running]);
    }

    #[test]
    fn bad_filters_say_what_to_fix() {
        let error = |query: &str| HistoryFilter::from_query(query).expect_err(query);
        let reversed = error("from=2026-12-06T11:00:00Z&to=2026-12-06T10:00:00Z");
        assert_eq!(reversed.field, "to");
        assert!(reversed.message.contains("reversed"), "{reversed}");
        let status = error("status=failed,done");
        assert_eq!(status.field, "status");
        assert!(
            status.message.contains("\"done\"") && status.message.contains("pending, running"),
            "{status}"
        );
        let huge = error("limit=100000");
        assert_eq!(huge.field, "limit");
        assert!(huge.message.contains("500"), "{huge}");
        assert_eq!(error("limit=0").field, "limit");
        assert_eq!(error("sort=price").field, "sort");
        assert_eq!(error("batch=7").field, "batch");
        assert_eq!(error("from=yesterday").field, "from");
        assert_eq!(error("after=nonsense").field, "after");
        // A start-time cursor read with the cost order, and the other way round.
        let id = Uuid::from_u128(1);
        assert_eq!(error(&format!("sort=cost&after=-5_{id}")).field, "after");
        assert_eq!(error(&format!("after=0.5_{id}")).field, "after");
        assert_eq!(error("q=%27%3B--").field, "q");
        assert_eq!(error(&format!("q={}", "x".repeat(201))).field, "q");
        assert_eq!(error("model=a%00b").field, "model");
        // SQL-looking text is just text to search for.
        assert!(HistoryFilter::from_query("q=1%27%20OR%201%3D1").is_ok());
    }
}
