//! The commands besides serving, for terminals and CI: `pipescope validate FILE…` here,
//! `run` and `tail` (a client of a running server) in `follow`.

mod follow;
pub use follow::{run, tail};

use std::{
    io::{Read, Write},
    path::Path,
    process::ExitCode,
};

use crate::config::Config;

/// Checks each file as the server would load it; prints every problem as
/// `file:line:column: message` (what compilers print, so editors and CI annotate it), then a
/// summary on standard error. Exit status 1 if any file has a problem or cannot be read, 2 if
/// the configuration itself is wrong.
pub fn validate(config: &Config, files: &[impl AsRef<Path>]) -> ExitCode {
    let catalog = match config.engine() {
        Ok(engine) => pipeline::Catalog {
            providers: engine.providers.names(),
        },
        Err(error) => {
            eprintln!("pipescope: {error}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let (mut problems, mut failed) = (0usize, 0usize);
    for file in files {
        let path = file.as_ref();
        let shown = if path == Path::new("-") {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        let text = match read(path) {
            Ok(text) => text,
            Err(error) => {
                let _ = writeln!(out, "{shown}: cannot read it: {error}");
                problems += 1;
                failed += 1;
                continue;
            }
        };
        if let Err(diagnostics) = pipeline::validate(&text, &catalog) {
            failed += 1;
            problems += diagnostics.len();
            for diagnostic in diagnostics {
                let _ = writeln!(out, "{shown}:{diagnostic}");
            }
        }
    }
    let _ = out.flush();
    let files = files.len();
    let noun = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if failed == 0 {
        eprintln!("{} valid", noun(files, "pipeline", "pipelines"));
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} in {} of {}",
            noun(problems, "problem", "problems"),
            noun(failed, "file", "files"),
            files
        );
        ExitCode::FAILURE
    }
}

fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut text = Vec::new();
        std::io::stdin().read_to_end(&mut text)?;
        Ok(text)
    } else {
        std::fs::read(path)
    }
}
