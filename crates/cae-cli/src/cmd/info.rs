//! `cae info RUN`: what a run is — architecture, data rule, training progress and figures,
//! threshold — from its own files (`cae::info`), as text or `--json`.

use super::print_json;
use crate::args::InfoArgs;
use cae::info::RunInfo;

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    let info = RunInfo::read(&a.run)?;
    if a.json {
        return print_json(&info);
    }
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{info}")?;
    Ok(())
}
