//! Validates a pipeline file and prints the result: `cargo run -p pipeline --example check -- FILE`
//! (or the file on standard input). Providers are not checked (empty catalog).

use std::io::Read;

fn main() -> std::io::Result<()> {
    let mut text = Vec::new();
    match std::env::args_os().nth(1) {
        Some(path) => text = std::fs::read(path)?,
        None => {
            std::io::stdin().read_to_end(&mut text)?;
        }
    }
    match pipeline::validate(&text, &pipeline::Catalog::default()) {
        Ok(p) => println!("{p:#?}"),
        Err(diagnostics) => {
            for d in diagnostics {
                println!("{d}");
            }
        }
    }
    Ok(())
}
