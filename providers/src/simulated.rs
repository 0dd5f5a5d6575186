//! The offline provider: plausible English loosely about the prompt, streamed word piece by
//! word piece at a set pace, the same text for the same inputs, and failures on request — so a
//! fresh install shows live runs with no key and no network, and tests are repeatable.

use std::time::Duration;

use tokio::time::{sleep_until, Instant};

use crate::{
    tokens, ChatRequest, Delta, DeltaStream, ErrorKind, Provider, ProviderError, ProviderKind,
    SimulatedConfig, Usage,
};

#[derive(Debug, Clone)]
pub struct Simulated {
    config: SimulatedConfig,
}

impl Simulated {
    /// Fails on a rate outside 0–1 or a negative or non-finite pace.
    pub fn new(config: SimulatedConfig) -> Result<Self, String> {
        if !(config.tokens_per_second.is_finite() && config.tokens_per_second >= 0.0) {
            return Err(format!(
                "tokens_per_second must be 0 or more, not {}",
                config.tokens_per_second
            ));
        }
        for (name, rate) in [
            ("error_rate", config.error_rate),
            ("rate_limit_rate", config.rate_limit_rate),
            ("stall_rate", config.stall_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, not {rate}"));
            }
        }
        Ok(Self { config })
    }

    pub fn config(&self) -> &SimulatedConfig {
        &self.config
    }

    /// The whole response this request gets, decided before anything is sent.
    fn plan(&self, request: &ChatRequest) -> Plan {
        let seed = Fnv::new()
            .u64(self.config.seed)
            .u64(request.seed)
            .str(&request.model)
            .str(&request.prompt)
            .finish();
        // Separate streams so that changing a failure rate does not change the text.
        let mut text_rng = Rng::new(seed);
        let mut fate_rng = Rng::new(seed ^ 0x5EED_FA7E);

        let length = 40 + text_rng.below(211) as usize;
        let mut pieces = word_pieces(&compose(&request.prompt, length, &mut text_rng));
        pieces.truncate(request.max_tokens as usize);

        let roll = fate_rng.unit();
        let c = &self.config;
        let fate = if roll < c.rate_limit_rate {
            Fate::RateLimited
        } else if roll < c.rate_limit_rate + c.error_rate {
            Fate::FailAfter(part_way(pieces.len(), &mut fate_rng))
        } else if roll < c.rate_limit_rate + c.error_rate + c.stall_rate {
            Fate::StallAfter(part_way(pieces.len(), &mut fate_rng))
        } else {
            Fate::Complete
        };
        let prompt_tokens =
            request.system.as_deref().map_or(0, tokens::count) + tokens::count(&request.prompt);
        Plan {
            pieces,
            fate,
            prompt_tokens,
        }
    }
}

/// Where a failing response breaks off: after at least one piece when there are any, so the
/// dashboard shows a partial response, and before the end.
fn part_way(pieces: usize, rng: &mut Rng) -> usize {
    if pieces <= 1 {
        pieces
    } else {
        1 + rng.below(pieces as u64 - 1) as usize
    }
}

struct Plan {
    pieces: Vec<String>,
    fate: Fate,
    prompt_tokens: u32,
}

enum Fate {
    Complete,
    RateLimited,
    /// A server error after this many pieces.
    FailAfter(usize),
    /// Silence after this many pieces, until the caller gives up.
    StallAfter(usize),
}

#[async_trait::async_trait]
impl Provider for Simulated {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Simulated
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError> {
        let Plan {
            pieces,
            fate,
            prompt_tokens,
        } = self.plan(&request);
        if let Fate::RateLimited = fate {
            return Err(ProviderError {
                kind: ErrorKind::RateLimited,
                message: format!(
                    "simulated rate limit (rate_limit_rate = {}): retry after {} ms",
                    self.config.rate_limit_rate, self.config.retry_after_ms
                ),
                retry_after: Some(Duration::from_millis(self.config.retry_after_ms)),
            });
        }
        let first_token = Duration::from_millis(self.config.first_token_ms);
        let gap = if self.config.tokens_per_second > 0.0 {
            Duration::from_secs_f64(1.0 / self.config.tokens_per_second)
        } else {
            Duration::ZERO
        };
        let error_rate = self.config.error_rate;
        let start = Instant::now();

        Ok(Box::pin(async_stream::stream! {
            let total = pieces.len();
            let mut pieces = pieces.into_iter();
            // One step past the last piece, so a failure planned there still happens.
            for sent in 0..=total {
                match fate {
                    Fate::FailAfter(at) if at == sent => {
                        yield Err(ProviderError {
                            kind: ErrorKind::Server,
                            message: format!(
                                "simulated server error after {sent} of {total} tokens (error_rate = {error_rate})"
                            ),
                            retry_after: None,
                        });
                        return;
                    }
                    Fate::StallAfter(at) if at == sent => {
                        std::future::pending::<()>().await;
                    }
                    _ => {}
                }
                let Some(piece) = pieces.next() else { break };
                // Deadlines from the start, so per-token overhead does not slow the pace.
                let due = start + first_token + gap * (sent as u32);
                if due > Instant::now() {
                    sleep_until(due).await;
                }
                yield Ok(Delta::Text(piece));
            }
            yield Ok(Delta::Usage(Usage {
                prompt_tokens,
                completion_tokens: total as u32,
            }));
        }))
    }
}

/// FNV-1a: a hash that, unlike std's, is the same in every build, so seeds stay meaningful.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    fn u64(self, value: u64) -> Self {
        self.bytes(&value.to_le_bytes())
    }

    /// Length first, so ("ab", "c") and ("a", "bc") differ.
    fn str(self, text: &str) -> Self {
        self.u64(text.len() as u64).bytes(text.as_bytes())
    }

    fn finish(self) -> u64 {
        self.0
    }
}

/// SplitMix64: small, fast, and good enough to pick words.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0..n (0 when n is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// [0, 1)
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len() as u64) as usize]
    }
}

#[rustfmt::skip]
const STOPWORDS: &[&str] = &[
    "about", "above", "after", "again", "also", "and", "answer", "because", "been", "before",
    "being", "below", "between", "both", "could", "does", "each", "explain", "expand",
    "following", "from", "give", "have", "here", "into", "just", "like", "make", "more", "most",
    "only", "other", "over", "please", "should", "some", "such", "than", "that", "their", "them",
    "then", "there", "these", "they", "this", "those", "through", "very", "what", "when", "where",
    "which", "while", "with", "would", "write", "your", "concise", "mention", "include",
    "cover", "focus", "discuss",
    // Words that say what shape the answer takes, not what it is about.
    "outline", "list", "points", "point", "steps", "critique", "draft", "review", "describe",
    "summarise", "summarize", "summary", "bullet", "bullets", "paragraph", "paragraphs",
    "sentences", "words", "short", "detailed", "three", "five", "seven", "brief", "briefs",
];

#[rustfmt::skip]
const ADJECTIVES: &[&str] = &[
    "reliable", "explicit", "incremental", "consistent", "observable", "simple", "costly",
    "robust", "predictable", "shared", "careful", "practical", "durable", "narrow",
];
#[rustfmt::skip]
const NOUNS: &[&str] = &[
    "latency", "throughput", "state", "the data model", "error handling", "schema changes",
    "ownership", "failure modes", "the write path", "consistency", "operating cost",
    "the feedback loop", "interfaces", "retries", "test coverage", "the rollout plan",
];
#[rustfmt::skip]
const VERBS: &[&str] = &[
    "improves", "simplifies", "exposes", "reduces", "shapes", "depends on", "complicates",
    "clarifies", "protects", "constrains",
];
#[rustfmt::skip]
const GERUNDS: &[&str] = &[
    "mapping", "measuring", "documenting", "isolating", "testing", "versioning", "reviewing",
];
#[rustfmt::skip]
const OPENERS: &[&str] = &[
    "In practice,", "For example,", "Over time,", "In most teams,", "At first,", "Crucially,",
];
/// Words that end the subject phrase ("caching strategies for web APIs" → "caching strategies").
const PHRASE_ENDS: &[&str] = &["for", "in", "with", "to", "and", "that", "using", "from"];

/// What the answer is about: the phrase after "about" (or "on", "regarding", "covering") when
/// the prompt has one, then the prompt's longer words that are not filler, without repeats.
fn topics(prompt: &str) -> Vec<String> {
    let mut topics: Vec<String> = Vec::new();
    let words: Vec<&str> = prompt.split_whitespace().collect();
    if let Some(at) = words
        .iter()
        .position(|w| ["about", "on", "regarding", "covering"].contains(&w.to_lowercase().as_str()))
    {
        let mut phrase = Vec::new();
        for word in words.iter().skip(at + 1).take(4) {
            if PHRASE_ENDS.contains(&word.to_lowercase().as_str()) {
                break;
            }
            let bare = word.trim_end_matches(|c: char| !c.is_alphanumeric());
            if !bare.is_empty() {
                phrase.push(bare);
            }
            if bare.len() != word.len() {
                break;
            }
        }
        if !phrase.is_empty() {
            topics.push(phrase.join(" "));
        }
    }
    for word in prompt
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .map(|w| w.trim_matches('-'))
    {
        let lower = word.to_lowercase();
        let filler = word.len() < 4
            || !word.chars().all(|c| c.is_alphabetic() || c == '-')
            || STOPWORDS.contains(&lower.as_str())
            || lower.ends_with("-point")
            || lower.ends_with("-step");
        let known = topics.iter().any(|t| t.to_lowercase().contains(&lower));
        if !filler && !known {
            topics.push(word.to_owned());
        }
        if topics.len() == 6 {
            break;
        }
    }
    if topics.is_empty() {
        topics.push("the system".to_owned());
    }
    topics
}

/// "a" before a vowel sound becomes "an" (by spelling; close enough for generated text).
fn fix_articles(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(at) = rest.find(['a', 'A']) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let starts_word = out.chars().last().is_none_or(|c| !c.is_alphanumeric());
        let next_is_vowel_word =
            from[1..].starts_with(' ') && from[2..].starts_with(|c: char| "aeiouAEIOU".contains(c));
        out.push_str(&from[..1]);
        if starts_word && next_is_vowel_word {
            out.push('n');
        }
        rest = &from[1..];
    }
    out.push_str(rest);
    out
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn noun_phrase(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!(
            "{} {}",
            rng.pick(ADJECTIVES),
            rng.pick(NOUNS).trim_start_matches("the ")
        ),
        1 => rng.pick(NOUNS).to_owned(),
        _ => format!("a {} approach to {}", rng.pick(ADJECTIVES), rng.pick(NOUNS)),
    }
}

fn sentence(topic: &str, rng: &mut Rng) -> String {
    let np = noun_phrase(rng);
    let np2 = noun_phrase(rng);
    let verb = rng.pick(VERBS);
    match rng.below(9) {
        0 => format!(
            "{} is easiest to reason about when {np} {verb} {np2}.",
            capitalise(topic)
        ),
        1 => format!("{} {topic} {verb} {np}.", rng.pick(OPENERS)),
        2 => format!("A common mistake is to treat {topic} as {np}."),
        3 => format!("The key trade-off is between {np} and {np2}."),
        4 => format!(
            "Teams that adopt {topic} usually start by {} {np}.",
            rng.pick(GERUNDS)
        ),
        5 => format!("This matters because {np} {verb} {np2}."),
        6 => format!(
            "It helps to measure {np} before {} {np2}.",
            rng.pick(GERUNDS)
        ),
        7 => format!(
            "{} {verb} {np}, which is why {topic} deserves attention.",
            capitalise(&np2)
        ),
        _ => format!("The result is {np} that {verb} {np2}."),
    }
}

/// Text of about `length` word pieces, shaped by what the prompt asks for.
fn compose(prompt: &str, length: usize, rng: &mut Rng) -> String {
    let topics = topics(prompt);
    let lower = prompt.to_lowercase();
    let listing = ["outline", "list", "points", "steps"]
        .iter()
        .any(|w| lower.contains(w));
    let critique = ["critique", "review", "feedback"]
        .iter()
        .any(|w| lower.contains(w));

    let mut text = String::new();
    let mut item = 0;
    while word_pieces(&text).len() < length {
        // The main subject half the time, the prompt's other words the rest.
        let topic = if rng.below(2) == 0 {
            topics[0].as_str()
        } else {
            topics[rng.below(topics.len() as u64) as usize].as_str()
        };
        if listing {
            // Points are headed by the subjects in turn.
            let heading = topics[item % topics.len()].as_str();
            item += 1;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!(
                "{item}. {}: {}",
                capitalise(heading),
                sentence(heading, rng)
            ));
        } else if critique && text.is_empty() {
            text.push_str(&format!(
                "The draft covers {topic} clearly, but {} {} {}.",
                noun_phrase(rng),
                rng.pick(VERBS),
                noun_phrase(rng)
            ));
        } else {
            if !text.is_empty() {
                // A paragraph break now and then, as real answers have.
                text.push_str(if rng.below(4) == 0 { "\n\n" } else { " " });
            }
            text.push_str(&sentence(topic, rng));
        }
    }
    fix_articles(&text)
}

/// Splits text the way a tokenizer roughly does: a word with its leading space, long words
/// in two, punctuation on its own.
fn word_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, pieces: &mut Vec<String>| {
        if current.is_empty() {
            return;
        }
        let letters = current.trim_start().chars().count();
        if letters > 7 {
            let split_at = current
                .char_indices()
                .nth(current.chars().count() - letters + 5);
            if let Some((at, _)) = split_at {
                pieces.push(current[..at].to_owned());
                pieces.push(current[at..].to_owned());
                current.clear();
                return;
            }
        }
        pieces.push(std::mem::take(current));
    };
    for c in text.chars() {
        if c.is_whitespace() {
            // Whitespace opens the next piece, except that runs of newlines stand alone.
            if !current.trim().is_empty() {
                flush(&mut current, &mut pieces);
            }
            current.push(c);
        } else if c.is_alphanumeric() || c == '-' || c == '\'' {
            current.push(c);
        } else {
            flush(&mut current, &mut pieces);
            pieces.push(c.to_string());
        }
    }
    flush(&mut current, &mut pieces);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_pieces_rebuild_the_text() {
        let text = "Event sourcing, in practice:\n\n1. Incrementally rebuild.";
        let pieces = word_pieces(text);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.contains(&" Incre".to_owned()), "{pieces:?}");
        assert!(pieces.contains(&",".to_owned()), "{pieces:?}");
    }

    #[test]
    fn topics_start_with_the_subject() {
        assert_eq!(
            topics("Write a five-point outline about event sourcing."),
            ["event sourcing"]
        );
        assert_eq!(
            topics("Critique this draft on caching APIs: mention Redis and its eviction."),
            ["caching APIs", "Redis", "eviction"]
        );
    }

    #[test]
    fn articles_agree() {
        assert_eq!(
            fix_articles("A incremental plan, a shared log and a observable cat"),
            "An incremental plan, a shared log and an observable cat"
        );
    }
}
