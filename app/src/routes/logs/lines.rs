//! The lines the page holds, oldest first, and the list's state around them: where the older
//! pages continue, whether the view follows the tail and how many lines arrived while it did
//! not. Lines only enter through [`LogView::prepend`] and [`LogView::append`], which keep the
//! order and drop what is already held, and keep the list's place on the screen.

use leptos::{html::Div, prelude::*};

use crate::models::logs::{LogCursor, LogRecord};

/// Every row is this tall (pixels): the list is virtualised on it, so a row's place is its
/// index times this, and lines added above or below never move what is on the screen.
pub const ROW_HEIGHT: f64 = 24.0;

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
    /// The scrolling list.
    pub viewport: NodeRef<Div>,
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
            viewport: NodeRef::new(),
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
        self.loading_older.set(false);
    }

    /// The newest line held, where the tail continues.
    pub fn newest(&self) -> Option<LogCursor> {
        self.lines
            .with_untracked(|l| l.last().map(LogRecord::cursor))
    }

    /// Adds an older page above the lines held; what was on the screen stays where it was.
    pub fn prepend(&self, page: Vec<LogRecord>) {
        let mut added = 0;
        self.lines
            .update(|lines| added = prepend_older(lines, page));
        if added > 0 {
            self.after_render(move |el| {
                let top = el.scroll_top() as f64 + added as f64 * ROW_HEIGHT;
                el.set_scroll_top(top as i32);
                top
            });
        }
    }

    /// Adds newer lines below; the view follows them, or counts them as unseen.
    pub fn append(&self, page: Vec<LogRecord>) {
        let mut added = 0;
        self.lines.update(|lines| added = append_newer(lines, page));
        if added == 0 {
            return;
        }
        if self.following.get_untracked() {
            self.scroll_to_end();
        } else {
            self.unseen.update(|n| *n += added);
        }
    }

    /// Follows the tail again, from the newest line (the button, `End`).
    pub fn jump_to_latest(&self) {
        self.following.set(true);
        self.unseen.set(0);
        self.scroll_to_end();
    }

    pub fn scroll_to_end(&self) {
        self.after_render(|el| {
            let top = el.scroll_height() - el.client_height();
            el.set_scroll_top(top);
            top.max(0) as f64
        });
    }

    /// Runs `place` on the list once the lines just changed are rendered, before the browser
    /// paints them: the reader never sees the list at its old place.
    fn after_render(&self, place: impl FnOnce(&leptos::web_sys::HtmlDivElement) -> f64 + 'static) {
        let viewport = self.viewport;
        let last_top = self.last_top;
        request_animation_frame(move || {
            if let Some(el) = viewport.get_untracked() {
                let top = place(&el);
                last_top.set_value(top);
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

/// Puts the lines of `page` (oldest first) that are newer than every line held after them;
/// returns how many.
pub fn append_newer(lines: &mut Vec<LogRecord>, page: Vec<LogRecord>) -> usize {
    let before = lines.len();
    for line in page {
        if lines
            .last()
            .is_none_or(|last| line.cursor() > last.cursor())
        {
            lines.push(line);
        }
    }
    lines.len() - before
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
        // The tail read again from the last line: only what is newer is added.
        assert_eq!(
            append_newer(&mut lines, vec![line(6, 60), line(7, 60), line(8, 70)]),
            2
        );
        assert_eq!(ids(&lines), [3, 4, 5, 6, 7, 8]);
        assert_eq!(append_newer(&mut lines, vec![line(2, 20)]), 0);
        let mut empty = Vec::new();
        assert_eq!(append_newer(&mut empty, vec![line(1, 10), line(2, 10)]), 2);
        assert_eq!(prepend_older(&mut Vec::new(), vec![line(1, 10)]), 1);
    }
}
