//! Command-line arguments, the first of two stages: clap structs that only parse and check
//! flags, one file per group of commands. The second stage is the library object a command
//! builds once from them (a [`RunArgs`] becomes a `cae::run::LoadedRun`); the commands in
//! `cmd/` are glue between the two. Nothing here imports `cmd/`.

mod anomaly;
mod arch;
mod data;
mod denoise;
mod device;
mod eval;
mod features;
mod interop;
mod run;
mod serve;
mod train;

pub use anomaly::{
    AnomalyArgs, AnomalyCommand, AnomalyEvalArgs, PartitionArg, PredictArgs, ScoreArgs, Source,
    ThresholdArgs,
};
pub use arch::{ArchArgs, BenchArgs, parse_params};
pub use data::{
    DataArgs, DataCmdArgs, DataCommand, ExportPngArgs, MakeDefectsArgs, MakeLabelsArgs, PatchesArgs,
};
pub use denoise::DenoiseArgs;
pub use device::DeviceArg;
pub use eval::{EvalArgs, ReconstructArgs};
pub use features::{EncodeArgs, FiltersArgs, ProbeArgs};
pub use interop::{ExportArgs, ImportArgs, Which};
pub use run::{InfoArgs, RunArgs};
pub use serve::ServeArgs;
pub use train::{DemoArgs, TrainArgs};

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "cae", version, about = "Convolutional autoencoders: train, reconstruct, evaluate.", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train an autoencoder (or continue one with --resume RUN).
    Train(Box<TrainArgs>),
    /// Reconstruction quality of a trained run on a data set: MSE, PSNR, SSIM.
    Eval(EvalArgs),
    /// Picture of originals above their reconstructions.
    Reconstruct(ReconstructArgs),
    /// Layer table, parameters, bottleneck and compression ratio of an architecture.
    Arch(ArchArgs),
    /// Train the `upsample` preset on the built-in shapes (no download), in seconds.
    Demo(DemoArgs),
    /// Time training steps and inference of an architecture on this machine.
    Bench(BenchArgs),
    /// Denoise image files with a trained run, or score it against classic filters (--data).
    Denoise(DenoiseArgs),
    /// Write the latent codes of a data set as .npy (N×D float32) with the labels beside.
    Encode(EncodeArgs),
    /// Linear probe: softmax regression on codes vs raw pixels for several label budgets.
    Probe(ProbeArgs),
    /// The learned first-layer filters as a mosaic, and encoder activation maps of one image.
    Filters(FiltersArgs),
    /// Cut images into square patches, written as one .npy (training data from large photos).
    Patches(PatchesArgs),
    /// One-class classification and anomaly detection: fit a threshold, score, evaluate.
    Anomaly(AnomalyArgs),
    /// Make data sets: texture patches with synthetic defects, labels files.
    Data(DataCmdArgs),
    /// Write a run's weights as a PyTorch state dict (.safetensors) or the model as ONNX (.onnx).
    Export(ExportArgs),
    /// Make a run directory from PyTorch weights (.safetensors or .pt) for a given spec.
    Import(ImportArgs),
    /// Serve a run over HTTP: anomaly scores, heatmaps, reconstructions, latent codes.
    Serve(ServeArgs),
    /// What a run is: architecture, data rule, epochs and losses, threshold.
    Info(InfoArgs),
    /// One line per image: anomalous or normal, score and normalised score (needs a threshold).
    Predict(PredictArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell; e.g. `cae completions bash > ~/.local/share/bash-completion/completions/cae`.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Clap errors are several lines with usage; users get the first line and a pointer to --help.
pub fn report_parse_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = e.render().to_string();
            let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or("invalid arguments");
            let first = first.trim_start_matches("error: ");
            // Keep what says how to fix it: the allowed values, or clap's "did you mean".
            let hint: Vec<&str> = lines
                .filter(|l| l.starts_with("[possible values") || l.starts_with("tip: a similar"))
                .collect();
            let hint = match hint.as_slice() {
                [] => String::new(),
                h => format!(" {}", h.join(" ")),
            };
            eprintln!("error: {first}{hint} (see cae --help)");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    /// The training flags' defaults live in the library (`TrainConfig::default`, so that a
    /// `--config` file can fill them); their help must say the same values.
    #[test]
    fn train_help_states_the_library_defaults() {
        let mut cli = Cli::command();
        let help = cli
            .find_subcommand_mut("train")
            .expect("a train command")
            .render_long_help()
            .to_string();
        let t = cae::run::TrainConfig::default();
        let d = cae::run::DataConfig::default();
        for (flag, value) in [
            ("epochs", t.epochs.to_string()),
            ("batch-size", t.batch_size.to_string()),
            ("lr", t.lr.to_string()),
            ("seed", t.seed.to_string()),
            ("val-fraction", d.val_fraction.to_string()),
        ] {
            let at = help.find(&format!("--{flag} <")).expect(flag);
            let next = help[at + 2..]
                .find("\n      -")
                .map_or(help.len(), |n| at + 2 + n);
            assert!(
                help[at..next].contains(&format!("[default: {value}]")),
                "--{flag}: {}",
                &help[at..next]
            );
        }
    }
}
