//! Counting a prompt's tokens before it is sent, with a real BPE tokenizer.

/// Tokens in `text` (o200k_base, the encoding of current OpenAI models; a close estimate for
/// the others).
pub fn count(text: &str) -> u32 {
    // Prompts are far below 4 billion tokens; saturate rather than wrap if one ever is not.
    u32::try_from(bpe_openai::o200k_base().count(text)).unwrap_or(u32::MAX)
}

/// Loads the tokenizer now (about 40 ms, once per process) so the first prompt of the first run
/// does not pay for it; call it at start-up, off the request path.
pub fn warm_up() {
    let _ = bpe_openai::o200k_base();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_o200k_tokens() {
        // Reference counts from OpenAI's tiktoken with o200k_base.
        assert_eq!(count("hello world"), 2);
        assert_eq!(count("The quick brown fox jumps over the lazy dog."), 10);
        assert_eq!(count(""), 0);
    }
}
