//! The keys a pipeline file may use, and where: each with its type, its default and what it does.
//!
//! This is the one list. The validator accepts exactly these keys (suggesting the closest one for
//! any other) and checks numbers against the ranges given here; an editor offers the same lists for
//! completion and shows [`Key::doc`] and [`Kind::describe`] on hover.

use super::MAX_PARALLEL_LIMIT;

/// One key of a mapping in a pipeline file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Key {
    pub name: &'static str,
    /// What its value must be.
    pub kind: Kind,
    /// What applies when the key is left out.
    pub default: KeyDefault,
    /// What it does, in a sentence or two.
    pub doc: &'static str,
}

/// What a key's value must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Any scalar, taken as written (`model: 4` is the text "4").
    Text,
    /// Letters, digits, `-` and `_`, at most 100 characters.
    PipelineName,
    /// `[A-Za-z_][A-Za-z0-9_]*`: a name templates refer to (`steps.NAME.output`), unique.
    StepName,
    /// The name of a provider configured on the server.
    Provider,
    /// A Jinja template (see the `template` module for what it may use).
    Template,
    Whole(Whole),
    Number(Number),
    /// A mapping with these keys.
    Mapping(&'static [Key]),
    /// `inputs:`: input name → a mapping with the keys of [`INPUT`], nothing (required), or the
    /// default itself.
    Inputs,
    /// `env:`: name → default text.
    Env,
    /// `steps:`: a non-empty list of mappings with the keys of [`STEP`].
    Steps,
    /// A step name, or a list of them.
    StepNames,
    /// Any YAML value.
    Any,
}

/// A whole number in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole {
    pub min: u64,
    pub max: u64,
}

/// A number in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number {
    pub min: f64,
    pub max: f64,
}

/// What applies when a key is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDefault {
    /// Nothing: the file must set it.
    Required,
    /// It is simply not set (no description, no budget, no extra dependencies).
    Unset,
    /// This value, as it would be written in YAML.
    Value(&'static str),
    /// The value of this other key, e.g. `defaults.model`.
    Inherit(&'static str),
    /// A mapping left out is an empty one: each of its keys takes its own default.
    EachKey,
}

/// Token counts: at least one, and stored as 32-bit numbers.
pub const TOKENS: Whole = Whole {
    min: 1,
    max: u32::MAX as u64,
};
/// A time limit in milliseconds: at least one.
pub const TIMEOUT_MS: Whole = Whole {
    min: 1,
    max: u64::MAX,
};
/// A wait in milliseconds: zero means none.
pub const WAIT_MS: Whole = Whole {
    min: 0,
    max: u64::MAX,
};
/// Total tries of a step, including the first.
pub const ATTEMPTS: Whole = Whole { min: 1, max: 10 };
/// Steps of one run at the same time.
pub const MAX_PARALLEL: Whole = Whole {
    min: 1,
    max: MAX_PARALLEL_LIMIT as u64,
};
/// Sampling temperature.
pub const TEMPERATURE: Number = Number { min: 0.0, max: 2.0 };

/// Names a template uses for its own context sections, so inputs cannot take them.
pub const RESERVED_INPUTS: &[&str] = &["inputs", "env", "steps"];

/// The keys of the file itself.
pub const TOP_LEVEL: &[Key] = &[
    Key {
        name: "name",
        kind: Kind::PipelineName,
        default: KeyDefault::Required,
        doc: "The pipeline's name, shown in the UI and used to start runs.",
    },
    Key {
        name: "description",
        kind: Kind::Text,
        default: KeyDefault::Unset,
        doc: "What the pipeline is for.",
    },
    Key {
        name: "defaults",
        kind: Kind::Mapping(DEFAULTS),
        default: KeyDefault::EachKey,
        doc: "Values every step uses unless it sets its own.",
    },
    Key {
        name: "inputs",
        kind: Kind::Inputs,
        default: KeyDefault::Unset,
        doc: "Values given when a run starts, used in templates as `{{ NAME }}` or \
              `{{ inputs.NAME }}`. An input without a default is required.",
    },
    Key {
        name: "env",
        kind: Kind::Env,
        default: KeyDefault::Unset,
        doc: "Deployment values (`{{ env.NAME }}`), each with a default; a run may set others.",
    },
    Key {
        name: "max_parallel",
        kind: Kind::Whole(MAX_PARALLEL),
        default: KeyDefault::Value("4"),
        doc: "How many steps of one run may run at the same time.",
    },
    Key {
        name: "steps",
        kind: Kind::Steps,
        default: KeyDefault::Required,
        doc: "The steps; each sends a prompt to a model.",
    },
];

/// The keys of `defaults:`.
pub const DEFAULTS: &[Key] = &[
    Key {
        name: "provider",
        kind: Kind::Provider,
        default: KeyDefault::Value("simulated"),
        doc: "Where steps that name no provider send their prompt.",
    },
    Key {
        name: "model",
        kind: Kind::Text,
        default: KeyDefault::Value("sim-small"),
        doc: "The model of steps that name none.",
    },
    Key {
        name: "max_tokens",
        kind: Kind::Whole(TOKENS),
        default: KeyDefault::Value("512"),
        doc: "Completion length limit of steps that set none.",
    },
    Key {
        name: "temperature",
        kind: Kind::Number(TEMPERATURE),
        default: KeyDefault::Value("0.7"),
        doc: "Sampling temperature of steps that set none.",
    },
    Key {
        name: "timeout_ms",
        kind: Kind::Whole(TIMEOUT_MS),
        default: KeyDefault::Value("120000"),
        doc: "Limit for one attempt of steps that set none.",
    },
    Key {
        name: "retry",
        kind: Kind::Mapping(RETRY),
        default: KeyDefault::EachKey,
        doc: "Retries of steps that set none; keys left out keep their built-in value.",
    },
];

/// The keys of each entry of `steps:`.
pub const STEP: &[Key] = &[
    Key {
        name: "name",
        kind: Kind::StepName,
        default: KeyDefault::Required,
        doc: "How other steps refer to it: `steps.NAME.output`. `my-step` is rejected (`-` is \
              minus in templates).",
    },
    Key {
        name: "description",
        kind: Kind::Text,
        default: KeyDefault::Unset,
        doc: "Shown in the UI.",
    },
    Key {
        name: "provider",
        kind: Kind::Provider,
        default: KeyDefault::Inherit("defaults.provider"),
        doc: "Where the prompt is sent.",
    },
    Key {
        name: "model",
        kind: Kind::Text,
        default: KeyDefault::Inherit("defaults.model"),
        doc: "The provider's model name.",
    },
    Key {
        name: "system",
        kind: Kind::Template,
        default: KeyDefault::Unset,
        doc: "System prompt.",
    },
    Key {
        name: "prompt",
        kind: Kind::Template,
        default: KeyDefault::Required,
        doc: "The prompt. `{{ steps.NAME.output }}` uses an earlier step's output.",
    },
    Key {
        name: "max_tokens",
        kind: Kind::Whole(TOKENS),
        default: KeyDefault::Inherit("defaults.max_tokens"),
        doc: "Completion length limit.",
    },
    Key {
        name: "temperature",
        kind: Kind::Number(TEMPERATURE),
        default: KeyDefault::Inherit("defaults.temperature"),
        doc: "Sampling temperature.",
    },
    Key {
        name: "token_budget",
        kind: Kind::Whole(TOKENS),
        default: KeyDefault::Unset,
        doc: "Prompt plus completion tokens the step may use.",
    },
    Key {
        name: "retry",
        kind: Kind::Mapping(RETRY),
        default: KeyDefault::Inherit("defaults.retry"),
        doc: "Retries; keys left out come from `defaults.retry`.",
    },
    Key {
        name: "timeout_ms",
        kind: Kind::Whole(TIMEOUT_MS),
        default: KeyDefault::Inherit("defaults.timeout_ms"),
        doc: "Limit for one attempt.",
    },
    Key {
        name: "depends_on",
        kind: Kind::StepNames,
        default: KeyDefault::Unset,
        doc: "Steps that must finish first (in addition to those the templates use).",
    },
];

/// The keys of a `retry:` mapping, in `defaults:` or in a step.
pub const RETRY: &[Key] = &[
    Key {
        name: "attempts",
        kind: Kind::Whole(ATTEMPTS),
        default: KeyDefault::Value("3"),
        doc: "Total tries including the first (`1` = no retry).",
    },
    Key {
        name: "backoff_ms",
        kind: Kind::Whole(WAIT_MS),
        default: KeyDefault::Value("500"),
        doc: "Wait before the first retry; doubles for each further one.",
    },
    Key {
        name: "max_backoff_ms",
        kind: Kind::Whole(WAIT_MS),
        default: KeyDefault::Value("30000"),
        doc: "Upper bound for one wait; at least `backoff_ms`.",
    },
];

/// The keys of an input written as a mapping (`topic: { default: x }`).
pub const INPUT: &[Key] = &[
    Key {
        name: "description",
        kind: Kind::Text,
        default: KeyDefault::Unset,
        doc: "What the input is for.",
    },
    Key {
        name: "default",
        kind: Kind::Any,
        default: KeyDefault::Unset,
        doc: "The value used when a run does not give one; without it the input is required.",
    },
];

/// The names of `keys`, in order.
pub fn names(keys: &'static [Key]) -> impl Iterator<Item = &'static str> + Clone {
    keys.iter().map(|k| k.name)
}

impl Whole {
    /// `≥ 1` or `from 1 to 10`: a bound at the end of its number type is no real limit.
    pub fn describe_range(self) -> String {
        if self.max == u64::MAX || self.max == u64::from(u32::MAX) {
            format!("≥ {}", self.min)
        } else {
            format!("from {} to {}", self.min, self.max)
        }
    }
}

impl Number {
    /// `from 0 to 2`.
    pub fn describe_range(self) -> String {
        format!("from {} to {}", self.min, self.max)
    }
}

impl Kind {
    /// The type as a reader would say it, e.g. "whole number ≥ 1".
    pub fn describe(&self) -> String {
        match self {
            Kind::Text => "text".to_owned(),
            Kind::PipelineName => "text: letters, digits, `-`, `_` (≤ 100 characters)".to_owned(),
            Kind::StepName => "`[A-Za-z_][A-Za-z0-9_]*`, unique".to_owned(),
            Kind::Provider => "provider name configured on the server".to_owned(),
            Kind::Template => "template".to_owned(),
            Kind::Whole(range) => format!("whole number {}", range.describe_range()),
            Kind::Number(range) => format!("number {}", range.describe_range()),
            Kind::Mapping(keys) => {
                format!("mapping of {}", names(keys).collect::<Vec<_>>().join(", "))
            }
            Kind::Inputs => "mapping: input name → spec".to_owned(),
            Kind::Env => "mapping: name → text".to_owned(),
            Kind::Steps => "non-empty list of steps".to_owned(),
            Kind::StepNames => "a step name, or a list of them".to_owned(),
            Kind::Any => "any value".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{builtin_defaults, DEFAULT_MAX_PARALLEL};

    fn value(keys: &[Key], name: &str) -> Option<&'static str> {
        match keys.iter().find(|k| k.name == name).map(|k| k.default) {
            Some(KeyDefault::Value(v)) => Some(v),
            _ => None,
        }
    }

    /// The defaults shown to the user are the ones the validator applies.
    #[test]
    fn documented_defaults_are_the_built_in_ones() {
        let d = builtin_defaults();
        let expected = [
            ("provider", d.provider.clone()),
            ("model", d.model.clone()),
            ("max_tokens", d.max_tokens.to_string()),
            ("temperature", d.temperature.to_string()),
            ("timeout_ms", d.timeout_ms.to_string()),
        ];
        for (name, built_in) in expected {
            assert_eq!(value(DEFAULTS, name), Some(built_in.as_str()), "{name}");
        }
        let retry = [
            ("attempts", d.retry.attempts.to_string()),
            ("backoff_ms", d.retry.backoff_ms.to_string()),
            ("max_backoff_ms", d.retry.max_backoff_ms.to_string()),
        ];
        for (name, built_in) in retry {
            assert_eq!(value(RETRY, name), Some(built_in.as_str()), "{name}");
        }
        assert_eq!(
            value(TOP_LEVEL, "max_parallel"),
            Some(DEFAULT_MAX_PARALLEL.to_string().as_str())
        );
    }

    #[test]
    fn keys_are_unique_within_each_mapping() {
        for keys in [TOP_LEVEL, DEFAULTS, STEP, RETRY, INPUT] {
            let mut seen: Vec<&str> = names(keys).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), keys.len());
        }
    }

    #[test]
    fn types_read_as_in_the_reference() {
        assert_eq!(Kind::Whole(TOKENS).describe(), "whole number ≥ 1");
        assert_eq!(
            Kind::Whole(MAX_PARALLEL).describe(),
            "whole number from 1 to 64"
        );
        assert_eq!(Kind::Number(TEMPERATURE).describe(), "number from 0 to 2");
        assert_eq!(
            Kind::Mapping(RETRY).describe(),
            "mapping of attempts, backoff_ms, max_backoff_ms"
        );
    }
}
