//! Where each row of the list sits. Unwrapped, every row is [`ROW_HEIGHT`] tall and sits at its
//! index times that. Wrapped, a row is as tall as its text needs at the list's width: the font is
//! monospace and a wrapped message breaks at any character with its spaces kept
//! (`white-space: break-spaces; word-break: break-all`), so a text of n columns takes
//! ⌈n / columns⌉ lines. Heights are computed from the text, never measured from the DOM, so they
//! are known before a row is rendered and rows never move as lines stream in.

use leptos::prelude::*;

use crate::models::logs::LogRecord;

/// An unwrapped row (pixels); a wrapped row's first line is this tall too.
pub const ROW_HEIGHT: f64 = 24.0;
/// Each further line of a wrapped row (the message's `line-height` in the CSS).
pub const LINE_HEIGHT: f64 = 18.0;

#[derive(Clone, Copy)]
pub struct Layout {
    /// Messages wrap instead of being cut at the row's end.
    pub wrap: RwSignal<bool>,
    /// Characters one wrapped line holds (from the message column's width; 0: not measured).
    pub columns: RwSignal<usize>,
    /// While wrapping: the top of every row, and the height of all of them last. Empty when not
    /// wrapping.
    tops: RwSignal<Vec<f64>>,
    /// The row on top of the view when wrapping was switched, which stays there as the rows
    /// are placed again (until the view is scrolled).
    pub anchor: StoredValue<Option<usize>>,
    /// The lines each held row takes, kept between changes so that a page added above or below
    /// costs only its own lines: (the first row's id, the count of each row).
    counts: StoredValue<(Option<i64>, Vec<u32>)>,
}

impl Layout {
    pub fn new() -> Self {
        Self {
            wrap: RwSignal::new(false),
            columns: RwSignal::new(0),
            tops: RwSignal::new(Vec::new()),
            anchor: StoredValue::new(None),
            counts: StoredValue::new((None, Vec::new())),
        }
    }

    /// The top of row `index` (pixels).
    pub fn top(&self, index: usize) -> f64 {
        self.tops.with(|tops| match tops.get(index) {
            Some(top) => *top,
            None => index as f64 * ROW_HEIGHT,
        })
    }

    /// The height of row `index`.
    pub fn height(&self, index: usize) -> f64 {
        self.tops
            .with(|tops| match (tops.get(index), tops.get(index + 1)) {
                (Some(top), Some(next)) => next - top,
                _ => ROW_HEIGHT,
            })
    }

    /// The height of `count` rows.
    pub fn total(&self, count: usize) -> f64 {
        self.top(count)
    }

    /// The row at `y` pixels from the top of the list.
    pub fn index_at(&self, y: f64) -> usize {
        self.tops.with(|tops| {
            if tops.is_empty() {
                (y.max(0.0) / ROW_HEIGHT) as usize
            } else {
                tops.partition_point(|top| *top <= y).saturating_sub(1)
            }
        })
    }

    /// Places `lines` again: call whenever they, the wrapping or the columns change. Only rows
    /// not placed before are measured (a page added above or below the ones held).
    pub fn place(&self, lines: &[LogRecord]) {
        let columns = self.columns.get_untracked();
        if !self.wrap.get_untracked() || columns == 0 {
            self.counts.set_value((None, Vec::new()));
            if self.tops.with_untracked(|t| !t.is_empty()) {
                self.tops.set(Vec::new());
            }
            return;
        }
        let first = lines.first().map(|l| l.id);
        self.counts.update_value(|(held_first, counts)| {
            let rows = |lines: &[LogRecord]| -> Vec<u32> {
                lines.iter().map(|l| wrapped_lines(l, columns)).collect()
            };
            // Where the rows placed before start among `lines` now.
            let old_start = held_first.and_then(|id| {
                lines
                    .iter()
                    .take(lines.len().saturating_sub(counts.len()) + 1)
                    .position(|l| l.id == id)
            });
            match old_start {
                Some(start) if start + counts.len() <= lines.len() => {
                    let above = rows(&lines[..start]);
                    let below = rows(&lines[start + counts.len()..]);
                    counts.splice(0..0, above);
                    counts.extend(below);
                }
                _ => *counts = rows(lines),
            }
            *held_first = first;
        });
        let tops = self.counts.with_value(|(_, counts)| {
            let mut tops = Vec::with_capacity(counts.len() + 1);
            let mut y = 0.0;
            for count in counts {
                tops.push(y);
                y += ROW_HEIGHT + f64::from(count.saturating_sub(1)) * LINE_HEIGHT;
            }
            tops.push(y);
            tops
        });
        self.tops.set(tops);
    }

    /// Switches wrapping, keeping the row at `top` pixels where it is.
    pub fn toggle_wrap(&self, top: f64) {
        self.anchor.set_value(Some(self.index_at(top)));
        self.wrap.update(|w| *w = !*w);
    }

    /// Forgets the measured rows (the column count changed).
    pub fn forget(&self) {
        self.counts.set_value((None, Vec::new()));
    }
}

/// The text a wrapped row shows: the message, then its context fields.
pub fn wrapped_text(line: &LogRecord, fields: &str) -> String {
    if fields.is_empty() {
        line.message.clone()
    } else {
        format!("{}  {fields}", line.message)
    }
}

/// The lines `line` takes wrapped at `columns` characters.
pub fn wrapped_lines(line: &LogRecord, columns: usize) -> u32 {
    let fields = fields_text(line);
    text_lines(&wrapped_text(line, &fields), columns)
}

/// A line's context fields as `key=value` pairs.
pub fn fields_text(line: &LogRecord) -> String {
    line.context
        .iter()
        .map(|(key, value)| format!("{key}={}", crate::format::plain(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lines `text` takes at `columns` characters a line: each of its own lines (`\n`) takes
/// ⌈width / columns⌉, at least one. A text with wide characters (CJK, emoji: two columns in
/// most fonts, not exactly two in all) gets one line to spare rather than a cut last line.
pub fn text_lines(text: &str, columns: usize) -> u32 {
    let columns = columns.max(1);
    let mut lines = 0usize;
    let mut wide = false;
    for part in text.split('\n') {
        let mut width = 0usize;
        for c in part.chars() {
            if is_wide(c) {
                wide = true;
                width += 2;
            } else {
                width += 1;
            }
        }
        lines += width.div_ceil(columns).max(1);
    }
    (lines + usize::from(wide)).min(u32::MAX as usize) as u32
}

fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F
        | 0x2E80..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1FAFF
        | 0x20000..=0x3FFFD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_text_takes_a_line_per_columns_and_per_newline() {
        assert_eq!(text_lines("", 10), 1);
        assert_eq!(text_lines("0123456789", 10), 1);
        assert_eq!(text_lines("0123456789a", 10), 2);
        assert_eq!(text_lines("ab\ncd\n", 10), 3);
        assert_eq!(text_lines(&"x".repeat(95), 10), 10);
        // Wide characters count two columns, and the row keeps a line to spare.
        assert_eq!(text_lines("日本語日本", 10), 2);
        assert_eq!(text_lines("日本語日本語", 10), 3);
        assert_eq!(text_lines("anything", 0), 8);
    }
}
