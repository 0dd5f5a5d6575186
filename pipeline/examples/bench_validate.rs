//! Validation time of a large pipeline: `cargo run --release -p pipeline --example bench_validate`.
//!
//! Generates 200 steps, each referencing inputs and up to three earlier steps (some through
//! `depends_on`), validates it repeatedly and prints the median and 99th percentile. The editor
//! validates on every keystroke, so this must stay well under a frame budget (target ≤ 5 ms).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

const STEPS: usize = 200;
const RUNS: usize = 1000;

fn generate() -> String {
    let mut text = String::from(
        "name: bench\ndescription: generated\ndefaults: { provider: simulated, model: sim-small, max_tokens: 256 }\n\
         inputs:\n  topic: { default: \"event sourcing\", description: The subject }\n  audience: engineers\n  \
         tone: { default: neutral }\nenv:\n  STYLE: terse\nmax_parallel: 8\nsteps:\n",
    );
    for i in 0..STEPS {
        let _ = writeln!(text, "  - name: step_{i}");
        let _ = writeln!(text, "    description: Step number {i}");
        if i % 3 == 0 {
            let _ = writeln!(
                text,
                "    system: \"You are {{{{ env.STYLE }}}} and {{{{ tone }}}}.\""
            );
        }
        let mut prompt =
            format!("Write part {i} about {{{{ topic }}}} for {{{{ inputs.audience }}}}.");
        for back in [1, 7, 31] {
            if i >= back {
                let _ = write!(prompt, " Use {{{{ steps.step_{}.output }}}}.", i - back);
            }
        }
        if i % 2 == 0 {
            let _ = writeln!(
                text,
                "    prompt: |\n      {prompt}\n      {{% if topic %}}Focus.{{% endif %}}"
            );
        } else {
            let _ = writeln!(text, "    prompt: \"{prompt}\"");
        }
        if i >= 50 && i % 10 == 0 {
            let _ = writeln!(text, "    depends_on: [step_{}, step_{}]", i - 50, i - 3);
        }
        if i % 5 == 0 {
            let _ = writeln!(text, "    retry: {{ attempts: 2, backoff_ms: 100 }}\n    temperature: 0.3\n    token_budget: 2000");
        }
    }
    text
}

fn main() {
    let text = generate();
    let catalog = pipeline::Catalog {
        providers: vec!["simulated".into(), "openai".into()],
    };
    let pipeline = match pipeline::validate(text.as_bytes(), &catalog) {
        Ok(p) => p,
        Err(diagnostics) => {
            for d in diagnostics.iter().take(10) {
                eprintln!("{d}");
            }
            std::process::exit(1);
        }
    };
    assert_eq!(pipeline.steps.len(), STEPS, "every step validated");

    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let result = pipeline::validate(text.as_bytes(), &catalog);
            let elapsed = started.elapsed();
            assert!(result.is_ok());
            elapsed
        })
        .collect();
    times.sort_unstable();
    let at = |q: f64| {
        // Index of quantile q in the sorted run times.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((times.len() - 1) as f64 * q).round() as usize;
        times[i]
    };
    println!(
        "{STEPS}-step pipeline ({} bytes), {RUNS} validations: median {:.3} ms, p99 {:.3} ms",
        text.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
}
