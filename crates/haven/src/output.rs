//! Writing a command's result to standard output without panicking: `println!` panics on a
//! full disk or a closed pipe; a command says so and exits non-zero instead.

use std::io::Write;

use anyhow::Context;

/// Writes `text` and a newline to standard output and flushes it.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).context("writing the report to standard output")
}
