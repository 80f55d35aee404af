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
    #[cfg(all(unix, feature = "wgpu"))]
    quiet_wayland_probe();
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

/// Mesa's Vulkan drivers (lavapipe among them) ask libwayland for a display when a Vulkan
/// instance is made; without a usable `XDG_RUNTIME_DIR` libwayland prints `error:
/// XDG_RUNTIME_DIR is invalid or not set in the environment.` several times, on a device that
/// then works — four stray error lines on every `--device wgpu` command of a headless machine.
/// cae draws no window, so where no Wayland display could be reached anyway (no usable
/// `XDG_RUNTIME_DIR` and no absolute `WAYLAND_DISPLAY`), `WAYLAND_DISPLAY` is pointed at a path
/// that does not exist, and libwayland fails quietly (checked with `vulkaninfo` on lavapipe:
/// seven such lines before, none after).
#[cfg(all(unix, feature = "wgpu"))]
fn quiet_wayland_probe() {
    use std::path::Path;
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
        .is_some_and(|d| Path::new(&d).is_absolute() && Path::new(&d).is_dir());
    let absolute_display =
        std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| Path::new(&d).is_absolute());
    if !runtime_dir && !absolute_display {
        // SAFETY: the first statement of `main`, before any thread exists.
        unsafe {
            std::env::set_var("WAYLAND_DISPLAY", "/nonexistent/cae-has-no-wayland-display");
        }
    }
}
