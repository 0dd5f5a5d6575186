//! The lines the page holds, oldest first, and the list's state around them: where the older
//! pages continue, whether the view follows the tail and how many lines arrived while it did
//! not. Lines only enter through [`LogView::prepend`] and [`LogView::append`], which keep the
//! order by time (a line stored late goes to its time) and drop what is already held, and keep
//! the list's place on the screen.

use leptos::{html::Div, prelude::*};

use super::layout::Layout;
use crate::{
    models::logs::{LogCursor, LogRecord},
    rich::highlight,
};

#[derive(Clone, Copy)]
pub struct LogView {
    pub lines: RwSignal<Vec<LogRecord>>,
    /// The cursor of the next older page; `None` once the first matching line is held.
    pub older: RwSignal<Option<LogCursor>>,
    /// The newest page is being read (a new filter).
    pub loading: RwSignal<bool>,
    pub loading_older: RwSignal<bool>,
    /// Why lines could not be read (the server's message).
    pub failed: RwSignal<Option<String>>,
    /// The view stays at the newest line as lines arrive.
    pub following: RwSignal<bool>,
    /// Lines that arrived while the view was not following.
    pub unseen: RwSignal<usize>,
    /// The line whose JSON is shown.
    pub selected: RwSignal<Option<i64>>,
    /// The search match gone to last with next/previous (a line's id).
    pub current_match: RwSignal<Option<i64>>,
    /// Where each row sits (wrapped or not).
    pub layout: Layout,
    /// The scrolling list.
    pub viewport: NodeRef<Div>,
    /// The list's `scrollTop` and height as last seen: which rows are rendered.
    pub top: RwSignal<f64>,
    pub height: RwSignal<f64>,
    /// The list's `scrollTop` as last seen or set: a scroll to a smaller one is the reader
    /// going up, which pauses following.
    pub last_top: StoredValue<f64>,
}

impl LogView {
    pub fn new() -> Self {
        Self {
            lines: RwSignal::new(Vec::new()),
            older: RwSignal::new(None),
            loading: RwSignal::new(false),
            loading_older: RwSignal::new(false),
            failed: RwSignal::new(None),
            following: RwSignal::new(true),
            unseen: RwSignal::new(0),
            selected: RwSignal::new(None),
            current_match: RwSignal::new(None),
            layout: Layout::new(),
            viewport: NodeRef::new(),
            top: RwSignal::new(0.0),
            height: RwSignal::new(800.0),
            last_top: StoredValue::new(0.0),
        }
    }

    /// Empties the view for another filter.
    pub fn reset(&self) {
        self.lines.set(Vec::new());
        self.older.set(None);
        self.failed.set(None);
        self.following.set(true);
        self.unseen.set(0);
        self.selected.set(None);
        self.current_match.set(None);
        self.loading_older.set(false);
    }

    /// Adds an older page above the lines held; what was on the screen stays where it was.
    pub fn prepend(&self, page: Vec<LogRecord>) {
        let mut added = 0;
        self.lines
            .update(|lines| added = prepend_older(lines, page));
        if added > 0 {
            let layout = self.layout;
            self.after_render(move |el| {
                let top = el.scroll_top() as f64 + layout.total(added);
                el.set_scroll_top(top as i32);
                top
            });
        }
    }

    /// Adds lines stored since the last read: newer ones below, where the view follows them or
    /// counts them as unseen; one stored late with an earlier time in its place, the rows on
    /// the screen staying where they are.
    pub fn append(&self, page: Vec<LogRecord>) {
        let first_held = self.older.get_untracked().is_none();
        let mut merged = Merged::default();
        self.lines
            .update(|lines| merged = merge_stored(lines, page, first_held));
        if merged.added == 0 {
            return;
        }
        if self.following.get_untracked() {
            self.scroll_to_end();
            return;
        }
        self.unseen.update(|n| *n += merged.added);
        if merged.placed.is_empty() {
            return;
        }
        let (layout, lines) = (self.layout, self.lines);
        self.after_render(move |el| {
            // Rows put above the first one shown push it down by their heights: scroll by as
            // much, so what the reader looks at does not move.
            let top = f64::from(el.scroll_top());
            let shift: f64 = lines
                .try_with_untracked(|lines| {
                    merged
                        .placed
                        .iter()
                        .filter_map(|cursor| {
                            lines.binary_search_by_key(cursor, LogRecord::cursor).ok()
                        })
                        .filter(|&index| layout.top(index) < top)
                        .map(|index| layout.height(index))
                        .sum()
                })
                .unwrap_or(0.0);
            el.set_scroll_top((top + shift) as i32);
            f64::from(el.scroll_top())
        });
    }

    /// Follows the tail again, from the newest line (the button, `End`).
    pub fn jump_to_latest(&self) {
        self.following.set(true);
        self.unseen.set(0);
        self.scroll_to_end();
    }

    /// Stops following the tail (the toggle); lines that arrive are counted, not shown.
    pub fn pause(&self) {
        self.following.set(false);
    }

    /// Goes to the next (or previous) line after the current match whose message holds
    /// `query`, from the newest line held; returns false when the lines held have no further
    /// one.
    pub fn go_to_match(&self, query: &str, forward: bool) -> bool {
        let current = self.current_match.get_untracked();
        let found = self.lines.with_untracked(|lines| {
            let from = current.and_then(|id| lines.iter().position(|l| l.id == id));
            find_match(lines, from, query, forward).map(|at| (at, lines[at].id))
        });
        let Some((index, id)) = found else {
            return false;
        };
        self.current_match.set(Some(id));
        self.following.set(false);
        let layout = self.layout;
        self.after_render(move |el| {
            // The match in the middle of the view.
            let top = layout.top(index) - (el.client_height() as f64 - layout.height(index)) / 2.0;
            el.set_scroll_top(top.max(0.0) as i32);
            el.scroll_top() as f64
        });
        true
    }

    /// Puts row `index` at the top of the view (the rows were placed again: wrapping changed).
    pub fn show_row(&self, index: usize) {
        let layout = self.layout;
        self.after_render(move |el| {
            el.set_scroll_top(layout.top(index) as i32);
            el.scroll_top() as f64
        });
    }

    pub fn scroll_to_end(&self) {
        let (layout, lines, height) = (self.layout, self.lines, self.height);
        self.after_render(move |el| {
            // The end from the rows' places and the view's known height: reading the list's
            // `scrollHeight` here, just after the rows changed, made the browser lay the page
            // out once more in the middle of the frame (the largest part of a tail read).
            let total = lines
                .try_with_untracked(|l| layout.total(l.len()))
                .unwrap_or_default();
            let view = match height.try_get_untracked() {
                Some(h) if h > 0.0 => h,
                _ => f64::from(el.client_height()),
            };
            let top = (total - view).max(0.0);
            el.set_scroll_top(top as i32);
            top
        });
    }

    /// Runs `place` on the list once the lines just changed are rendered, before the browser
    /// paints them: the reader never sees the list at its old place.
    fn after_render(&self, place: impl FnOnce(&leptos::web_sys::HtmlDivElement) -> f64 + 'static) {
        let viewport = self.viewport;
        let last_top = self.last_top;
        let (shown_top, shown_height) = (self.top, self.height);
        // The frame may come after the page is gone.
        request_animation_frame(move || {
            if let Some(el) = viewport.try_get_untracked().flatten() {
                let top = place(&el);
                let _ = last_top.try_set_value(top);
                // The rows rendered follow the place even when the browser sends no scroll
                // event (a place it was already at, after the list shrank under it).
                shown_top.try_set(f64::from(el.scroll_top()));
                shown_height.try_set(f64::from(el.client_height()));
            }
        });
    }
}

/// Puts the lines of `page` (oldest first) that are older than every line held in front of
/// them; returns how many.
pub fn prepend_older(lines: &mut Vec<LogRecord>, page: Vec<LogRecord>) -> usize {
    let first = lines.first().map(LogRecord::cursor);
    let older: Vec<LogRecord> = page
        .into_iter()
        .filter(|line| first.is_none_or(|first| line.cursor() < first))
        .collect();
    let added = older.len();
    lines.splice(0..0, older);
    added
}

/// What [`merge_stored`] added.
#[derive(Default)]
pub struct Merged {
    /// Lines added.
    pub added: usize,
    /// The lines that went between lines held (stored late with an earlier time), not below.
    pub placed: Vec<LogCursor>,
}

/// Puts the lines of `page` (in the order they were stored) in their places by time among the
/// lines held. A line older than every line held is left to the older page that will bring it,
/// unless the first line stored is held (`first_held`); a line held already is not added again.
pub fn merge_stored(lines: &mut Vec<LogRecord>, page: Vec<LogRecord>, first_held: bool) -> Merged {
    let mut merged = Merged::default();
    for line in page {
        let cursor = line.cursor();
        if lines.last().is_none_or(|last| cursor > last.cursor()) {
            lines.push(line);
            merged.added += 1;
            continue;
        }
        match lines.binary_search_by_key(&cursor, LogRecord::cursor) {
            Ok(_) => {}
            Err(0) if !first_held => {}
            Err(index) => {
                lines.insert(index, line);
                merged.added += 1;
                merged.placed.push(cursor);
            }
        }
    }
    merged
}

/// The index of the next line after `from` (or, going back, before it) whose message holds
/// `query`; with no `from`, the search starts past the newest line (so both ways begin at the
/// tail: next wraps to the oldest held, previous is the newest match).
pub fn find_match(
    lines: &[LogRecord],
    from: Option<usize>,
    query: &str,
    forward: bool,
) -> Option<usize> {
    let holds = |line: &LogRecord| !highlight::matches(&line.message, query).is_empty();
    if forward {
        let start = from.map_or(0, |i| i + 1);
        (start..lines.len()).find(|&i| holds(&lines[i]))
    } else {
        let end = from.unwrap_or(lines.len()).min(lines.len());
        (0..end).rev().find(|&i| holds(&lines[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::events::LogLevel;
    use chrono::{DateTime, Utc};

    fn line(id: i64, second: i64) -> LogRecord {
        LogRecord {
            id,
            at: DateTime::<Utc>::from_timestamp(second, 0).expect("a time"),
            level: LogLevel::Info,
            run: None,
            pipeline: None,
            step: None,
            message: format!("line {id}"),
            context: Default::default(),
        }
    }

    fn ids(lines: &[LogRecord]) -> Vec<i64> {
        lines.iter().map(|l| l.id).collect()
    }

    #[test]
    fn pages_join_in_order_and_nothing_is_held_twice() {
        let mut lines = vec![line(5, 50), line(6, 60)];
        assert_eq!(
            prepend_older(&mut lines, vec![line(3, 30), line(4, 50), line(5, 50)]),
            2
        );
        assert_eq!(ids(&lines), [3, 4, 5, 6]);
        // The tail read again: only what is not held is added.
        let merged = merge_stored(
            &mut lines,
            vec![line(6, 60), line(7, 60), line(8, 70)],
            false,
        );
        assert_eq!((merged.added, merged.placed.len()), (2, 0));
        assert_eq!(ids(&lines), [3, 4, 5, 6, 7, 8]);
        let mut empty = Vec::new();
        assert_eq!(
            merge_stored(&mut empty, vec![line(1, 10), line(2, 10)], true).added,
            2
        );
        assert_eq!(prepend_older(&mut Vec::new(), vec![line(1, 10)]), 1);
    }

    #[test]
    fn a_line_stored_late_goes_to_its_time() {
        let mut lines = vec![line(3, 30), line(5, 50), line(6, 60)];
        // Stored after 6 with an earlier time: between 3 and 5; then a newer one below.
        let merged = merge_stored(&mut lines, vec![line(9, 40), line(10, 70)], false);
        assert_eq!(merged.added, 2);
        assert_eq!(merged.placed, [line(9, 40).cursor()]);
        assert_eq!(ids(&lines), [3, 9, 5, 6, 10]);
        // Older than every line held: the older page brings it, unless the first line is held.
        assert_eq!(merge_stored(&mut lines, vec![line(11, 20)], false).added, 0);
        assert_eq!(merge_stored(&mut lines, vec![line(11, 20)], true).added, 1);
        assert_eq!(ids(&lines), [11, 3, 9, 5, 6, 10]);
        // Read twice (a page and a tail read overlapping): held once.
        assert_eq!(merge_stored(&mut lines, vec![line(9, 40)], true).added, 0);
    }

    #[test]
    fn next_and_previous_walk_the_matching_lines() {
        let mut lines: Vec<LogRecord> = (1..=6).map(|i| line(i, i * 10)).collect();
        lines[1].message = "Timeout talking to the provider".into();
        lines[4].message = "another timeout".into();
        // From the tail: previous is the newest match, next starts at the oldest.
        assert_eq!(find_match(&lines, None, "timeout", false), Some(4));
        assert_eq!(find_match(&lines, None, "timeout", true), Some(1));
        assert_eq!(find_match(&lines, Some(4), "timeout", false), Some(1));
        assert_eq!(find_match(&lines, Some(1), "timeout", true), Some(4));
        assert_eq!(find_match(&lines, Some(1), "timeout", false), None);
        assert_eq!(find_match(&lines, Some(4), "timeout", true), None);
        assert_eq!(find_match(&lines, None, "nowhere", true), None);
    }
}
