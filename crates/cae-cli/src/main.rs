//! The `cae` command-line tool: a thin layer over the `cae` library. Each subcommand lives in
//! `cmd/`; this file parses arguments, runs one command and turns any error into one line on
//! stderr with a non-zero exit code.

mod args;
mod cmd;
mod progress;
mod report;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    cae::kernels::keep_freed_memory();
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return args::report_parse_error(e),
    };
    // Rust ignores SIGPIPE, so a `println!` into a closed pipe (`cae arch | head`) panics.
    // Commands that print end quietly instead, as Unix filters do; the server keeps ignoring
    // it (a client that hangs up is an error on that connection only).
    #[cfg(unix)]
    if !matches!(cli.command, args::Command::Serve(_)) {
        // SAFETY: called once at startup, before any thread exists; SIG_DFL is a valid handler.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stdout (`cae arch | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            // A training stopped by Ctrl-C / SIGTERM says how to continue and exits as
            // interrupted programs do.
            if let Some(stop @ cae::train::TrainError::Interrupted { .. }) =
                e.downcast_ref::<cae::train::TrainError>()
            {
                eprintln!("{stop}");
                return ExitCode::from(130);
            }
            eprintln!("error: {}", report::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
