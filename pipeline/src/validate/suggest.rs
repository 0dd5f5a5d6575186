//! "Did you mean": the known name closest to a misspelt one, and a valid spelling of an invalid
//! name.

use super::{Checker, MAX_DIAGNOSTICS};
use crate::yaml::Mark;

impl Checker<'_, '_> {
    /// [`closest`], unless the file already has more problems than are shown: a file with
    /// thousands of unknown names would otherwise compare each with thousands of candidates.
    pub(super) fn suggest<'c>(
        &self,
        word: &str,
        candidates: impl Iterator<Item = &'c str>,
    ) -> Option<String> {
        if self.diagnostics.len() >= MAX_DIAGNOSTICS {
            return None;
        }
        closest(word, candidates)
    }

    /// Reports the invalid name `name` with `message`, suggesting it spelt validly (see [`slug`])
    /// when anything of it is left.
    pub(super) fn error_renaming(
        &mut self,
        at: Mark,
        message: String,
        name: &str,
        allow_dash: bool,
    ) {
        let fixed = slug(name, allow_dash);
        self.error_suggest(at, message, (!fixed.is_empty()).then_some(fixed));
    }
}

/// `name` turned into a valid name: other characters become `_`; for identifiers, a leading digit
/// gets a `_` in front.
fn slug(name: &str, allow_dash: bool) -> String {
    let mut out: String = name
        .trim()
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (allow_dash && c == '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !allow_dash && out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out.chars().all(|c| c == '_') {
        out.clear();
    }
    out
}

/// The candidate `word` was most likely meant to be, if any is close enough to suggest.
pub(crate) fn closest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<String> {
    let lower = word.to_lowercase();
    let length = lower.chars().count();
    let mut best: Option<(usize, f64, &str)> = None;
    // Suggestions are for typos among a handful of names; past a few thousand candidates the
    // comparisons would cost more than they help.
    for candidate in candidates.take(2_000) {
        if candidate == word {
            continue;
        }
        let folded = candidate.to_lowercase();
        let budget = (folded.chars().count().max(length) / 3).max(1);
        let prefix = length >= 3 && folded.starts_with(&lower);
        // The edit distance is at least the difference in length: skip hopeless candidates cheaply.
        if !prefix && folded.chars().count().abs_diff(length) > budget.max(3) {
            continue;
        }
        let distance = strsim::osa_distance(&lower, &folded);
        let similarity = strsim::jaro_winkler(&lower, &folded);
        if !(distance <= budget || similarity >= 0.88 || prefix) {
            continue;
        }
        let better = match best {
            None => true,
            Some((d, s, _)) => distance < d || (distance == d && similarity > s),
        };
        if better {
            best = Some((distance, similarity, candidate));
        }
    }
    best.map(|(_, _, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::keys::{names, STEP};

    #[test]
    fn suggestions() {
        assert_eq!(closest("promt", names(STEP)).as_deref(), Some("prompt"));
        assert_eq!(
            closest("dependson", names(STEP)).as_deref(),
            Some("depends_on")
        );
        assert_eq!(closest("zzz", names(STEP)), None);
        assert_eq!(slug("my-step", false), "my_step");
        assert_eq!(slug("1st", false), "_1st");
    }
}
