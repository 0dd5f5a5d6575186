//! Positions inside a template's text mapped back to the YAML source, so that a problem in a
//! prompt is underlined where it is written rather than at the start of the prompt.

use super::Checker;
use crate::yaml::{Mark, Node, SourceIndex, Style};

impl Checker<'_, '_> {
    fn index(&mut self) -> &SourceIndex<'_> {
        self.index
            .get_or_insert_with(|| SourceIndex::new(self.source))
    }

    /// Where `reference` (a variable path) first appears inside a `{{ }}`/`{% %}` block of the
    /// template, located in the YAML; the scalar's start if it cannot be found.
    pub(super) fn locate_reference(
        &mut self,
        node: &Node,
        template: &str,
        reference: &str,
    ) -> Mark {
        match find_reference(template, reference) {
            Some(offset) => self.locate(node, template, offset),
            None => node.start,
        }
    }

    /// Maps byte `offset` of a template (the scalar's value) to a position in the YAML source.
    /// Literal blocks (`|`) map line for line; otherwise the text at `offset` is looked for in the
    /// scalar's source span (escapes and folding make the value differ from the source text).
    pub(super) fn locate(&mut self, node: &Node, template: &str, offset: usize) -> Mark {
        let mut offset = offset.min(template.len());
        while !template.is_char_boundary(offset) {
            offset -= 1;
        }
        let rest_of_line: String = template[offset..]
            .split('\n')
            .next()
            .unwrap_or_default()
            .chars()
            .take(24)
            .collect();
        let index = self.index();
        let source = index.source();
        let found = |byte: usize| {
            let (line, column) = index.position_of_byte(byte);
            Mark {
                line,
                column,
                index: 0,
            }
        };

        if node.style() == Some(Style::Literal) {
            let before = &template[..offset];
            let lines_before = before.bytes().filter(|&b| b == b'\n').count();
            let column = before
                .rsplit('\n')
                .next()
                .unwrap_or_default()
                .chars()
                .count();
            let line = u32::try_from(lines_before)
                .ok()
                .and_then(|l| node.start.line.checked_add(l));
            if let Some(start) = line.and_then(|l| index.line_start(l)) {
                let indent = usize::try_from(node.start.column.saturating_sub(1)).unwrap_or(0);
                let line_text = source[start..].split('\n').next().unwrap_or_default();
                let byte = line_text
                    .char_indices()
                    .nth(indent + column)
                    .map(|(b, _)| start + b);
                if let Some(byte) = byte {
                    if source[byte..].starts_with(rest_of_line.as_str()) {
                        return found(byte);
                    }
                }
            }
        }

        let start = index.byte_of_char(node.start.index);
        let end = index.byte_of_char(node.end.index).max(start);
        let span = &source[start..end];
        let chars: Vec<(usize, char)> = rest_of_line.char_indices().collect();
        for len in (1..=chars.len()).rev() {
            let cut = chars.get(len).map_or(rest_of_line.len(), |(b, _)| *b);
            let needle = &rest_of_line[..cut];
            if needle.trim().is_empty() {
                break;
            }
            if let Some(p) = span.find(needle) {
                return found(start + p);
            }
        }
        node.start
    }
}

/// Byte offset of the first occurrence of variable path `reference` in `template` that is inside
/// a `{{ }}` or `{% %}` block and not part of a longer name.
fn find_reference(template: &str, reference: &str) -> Option<usize> {
    let bytes = template.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut fallback = None;
    for (at, _) in template.match_indices(reference) {
        let before_ok = at == 0 || {
            let b = bytes[at - 1];
            !is_name(b) && b != b'.'
        };
        let after_ok = bytes.get(at + reference.len()).is_none_or(|&b| !is_name(b));
        if !(before_ok && after_ok) {
            continue;
        }
        let prefix = &template[..at];
        let opened = prefix.rfind("{{").max(prefix.rfind("{%"));
        let closed = prefix.rfind("}}").max(prefix.rfind("%}"));
        if opened.is_some() && opened > closed {
            return Some(at);
        }
        fallback = fallback.or(Some(at));
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_inside_blocks() {
        assert_eq!(find_reference("topic: {{ topic }}", "topic"), Some(10));
        assert_eq!(
            find_reference("{{ topics }} {{ topic }}", "topic"),
            Some(16)
        );
    }
}
