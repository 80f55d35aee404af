//! `cae completions SHELL`: the shell completion script for every command and flag, generated
//! from the same clap definitions that parse them (clap_complete), so it never goes stale.

use crate::args::Cli;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell; e.g. `cae completions bash > ~/.local/share/bash-completion/completions/cae`.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(a: CompletionsArgs) -> anyhow::Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(a.shell, &mut command, "cae", &mut std::io::stdout());
    Ok(())
}
