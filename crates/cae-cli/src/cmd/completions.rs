//! `cae completions SHELL`: the shell completion script for every command and flag, generated
//! from the same clap definitions that parse them (clap_complete), so it never goes stale.

use crate::args::{Cli, CompletionsArgs};
use clap::CommandFactory;

pub fn run(a: CompletionsArgs) -> anyhow::Result<()> {
    let mut command = Cli::command();
    // Into memory first: clap_complete panics on a closed stdout (`| head`); a failed write
    // here is an error `main` treats as no error.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut command, "cae", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
    Ok(())
}
