//! One module per subcommand; `run` dispatches.

mod anomaly;
mod arch;
mod bench;
mod completions;
mod data;
mod demo;
mod denoise;
mod encode;
mod eval;
mod export;
mod filters;
mod import;
mod info;
mod patches;
mod predict;
mod probe;
mod reconstruct;
mod serve;
mod train;

use crate::args::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(a) => train::run(*a),
        Command::Eval(a) => eval::run(a),
        Command::Reconstruct(a) => reconstruct::run(a),
        Command::Arch(a) => arch::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Denoise(a) => denoise::run(a),
        Command::Encode(a) => encode::run(a),
        Command::Probe(a) => probe::run(a),
        Command::Filters(a) => filters::run(a),
        Command::Patches(a) => patches::run(a),
        Command::Anomaly(a) => anomaly::run(a),
        Command::Data(a) => data::run(a),
        Command::Export(a) => export::run(a),
        Command::Import(a) => import::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Info(a) => info::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Completions(a) => completions::run(a),
    }
}

/// `text` as part of a file name: letters, digits, `-` and `_` kept, anything else `_`.
pub(crate) fn file_name_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Prints a value as one JSON object on stdout.
/// Images read at a time from an image folder by the commands that go through a data set
/// (`anomaly score`, `encode`, `eval`): their memory is this many images' whatever the folder's
/// size, and a block is many model batches, so the blocks cost no speed.
pub const BLOCK: usize = 256;

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
