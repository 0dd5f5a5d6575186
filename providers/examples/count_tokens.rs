//! How long `tokens::count` takes: the one-off load, then a ~500-token prompt and a
//! ~5,000-token one. Run with `cargo run --release -p providers --example count_tokens`.

use std::{hint::black_box, time::Instant};

fn main() {
    let paragraph = "Write a five-point outline about event sourcing, covering the append-only \
        log, projections, snapshots, and how to evolve event schemas without breaking the \
        consumers that read them. Mention the costs: storage growth, replay time, and the \
        discipline needed to keep events meaningful years later. ";
    let started = Instant::now();
    providers::tokens::warm_up();
    println!("load: {:.1} ms", started.elapsed().as_secs_f64() * 1e3);

    for repeats in [9u32, 90] {
        let prompt = paragraph.repeat(repeats as usize);
        let tokens = providers::tokens::count(&prompt);
        let iterations = 20_000 / repeats;
        let started = Instant::now();
        for _ in 0..iterations {
            black_box(providers::tokens::count(black_box(&prompt)));
        }
        let each = started.elapsed().as_secs_f64() / f64::from(iterations);
        println!(
            "{tokens} tokens ({} bytes): {:.1} µs per count, {:.1} M tokens/s",
            prompt.len(),
            each * 1e6,
            f64::from(tokens) / each / 1e6
        );
    }
}
