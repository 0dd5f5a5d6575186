//! A mapping's entries, checked against the keys allowed there, and its values read as the type
//! each key needs: text, whole numbers and numbers in their range, provider names, identifiers.

use super::keys::{names, Key, Number, Whole};
use super::suggest::closest;
use super::Checker;
use crate::yaml::{self, Node, Style, Value};

/// The entries of one YAML mapping, by key.
pub(super) struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }
}

/// A name that templates can use as `{{ name }}` / `x.name`: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Checker<'_, '_> {
    /// The entries of mapping `node`, reporting keys that are not in `allowed` (with the closest
    /// allowed key as suggestion). `place` completes "unknown key `x` …" ("in step `draft`"),
    /// `what` names the mapping for type errors ("`defaults`").
    pub(super) fn fields<'n>(
        &mut self,
        node: &'n Node,
        allowed: &'static [Key],
        place: &str,
        what: &str,
    ) -> Option<Fields<'n>> {
        let Value::Map(pairs) = &node.value else {
            self.error(
                node.start,
                format!(
                    "{what} must be a mapping of `key: value` entries, found {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut entries = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let Some(name) = key.scalar().filter(|_| !key.is_null()) else {
                self.error(
                    key.start,
                    format!("keys must be plain names, found {}", key.describe()),
                );
                continue;
            };
            if names(allowed).any(|k| k == name) {
                entries.push((name, &**key, &**value));
            } else {
                self.error_suggest(
                    key.start,
                    format!(
                        "unknown key `{}` {place}; allowed keys are {}",
                        yaml::shorten(name, 40),
                        names(allowed).collect::<Vec<_>>().join(", ")
                    ),
                    closest(name, names(allowed)),
                );
            }
        }
        Some(Fields { entries })
    }

    /// A text value. Numbers and booleans are taken as written (`model: 4` is the text "4").
    pub(super) fn text(&mut self, node: &Node, key: &str) -> Option<String> {
        match node.scalar() {
            Some(_) if node.is_null() => {
                self.error(
                    node.start,
                    format!("`{key}` is empty; give it a value or remove it"),
                );
                None
            }
            Some(text) => Some(text.to_owned()),
            None => {
                self.error(
                    node.start,
                    format!("`{key}` must be text, found {}", node.describe()),
                );
                None
            }
        }
    }

    /// Like [`Self::text`], but an empty value simply means "not set".
    pub(super) fn optional_text(&mut self, node: &Node, key: &str) -> Option<String> {
        if node.is_null() {
            None
        } else {
            self.text(node, key)
        }
    }

    /// A whole number in `range`.
    pub(super) fn whole(&mut self, node: &Node, key: &str, range: Whole) -> Option<u64> {
        let value = node.as_int();
        if let Some(v) = value.and_then(|v| u64::try_from(v).ok()) {
            if (range.min..=range.max).contains(&v) {
                return Some(v);
            }
        }
        let quoted = matches!(node.style(), Some(Style::Quoted))
            && node
                .scalar()
                .is_some_and(|t| t.trim().parse::<u64>().is_ok());
        let hint = if quoted { " (remove the quotes)" } else { "" };
        self.error(
            node.start,
            format!(
                "`{key}` must be a whole number {}, found {}{hint}",
                range.describe_range(),
                node.describe()
            ),
        );
        None
    }

    /// A number in `range`.
    pub(super) fn number(&mut self, node: &Node, key: &str, range: Number) -> Option<f64> {
        if let Some(v) = node.as_float() {
            if (range.min..=range.max).contains(&v) {
                return Some(v);
            }
        }
        self.error(
            node.start,
            format!(
                "`{key}` must be a number {}, found {}",
                range.describe_range(),
                node.describe()
            ),
        );
        None
    }

    /// A provider name, checked against the catalog when it lists any.
    pub(super) fn provider(&mut self, node: &Node) -> Option<String> {
        let provider = self.text(node, "provider")?;
        let known = &self.catalog.providers;
        if known.is_empty() || known.contains(&provider) {
            return Some(provider);
        }
        let suggestion = closest(&provider, known.iter().map(String::as_str));
        let message = format!(
            "unknown provider `{}`; configured providers are {}",
            yaml::shorten(&provider, 40),
            known.join(", ")
        );
        self.error_suggest(node.start, message, suggestion);
        None
    }

    /// The name of an input or env value (see [`is_identifier`]); `what` says which.
    pub(super) fn identifier(&mut self, key: &Node, what: &str) -> Option<String> {
        let Some(name) = key.scalar().filter(|_| !key.is_null()) else {
            self.error(
                key.start,
                format!("{what} names must be plain names, found {}", key.describe()),
            );
            return None;
        };
        if is_identifier(name) {
            return Some(name.to_owned());
        }
        self.error_renaming(
            key.start,
            format!(
                "{what} name `{}` must start with a letter or `_` and contain only letters, digits and `_`, because templates refer to it by name",
                yaml::shorten(name, 40)
            ),
            name,
            false,
        );
        None
    }
}
