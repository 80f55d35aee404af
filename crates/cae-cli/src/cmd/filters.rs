//! `cae filters`: the learned first-layer conv filters of a run as a mosaic, and with
//! `--activations IMAGE` the activation maps of every encoder layer for that image.

use super::data::load_for_run;
use super::print_json;
use crate::args::DataArgs;
use crate::args::DeviceArg;
use anyhow::bail;
use cae::infer::batch_tensor;
use cae::model::{Flow, Layer};
use cae::output::{OutputFile, Overwrite};
use cae::plot::encode_png;
use cae::plot::filters::{LayerMaps, activation_picture, filter_mosaic};
use cae::run::RunDir;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct FiltersArgs {
    /// A run directory made by `cae train`.
    pub run: PathBuf,
    /// The filter mosaic to write (a new file unless --force; never a run's own file).
    #[arg(
        long = "out",
        short = 'o',
        visible_alias = "output",
        value_name = "PNG"
    )]
    pub output: PathBuf,
    /// Replace existing output files (a run's own files are refused even so).
    #[arg(long)]
    pub force: bool,
    /// Also draw the activation maps of every encoder layer for this image.
    #[arg(long, value_name = "IMAGE")]
    pub activations: Option<String>,
    /// Where the activation maps go (default: <output stem>-activations.png).
    #[arg(long, value_name = "PNG")]
    pub activations_out: Option<PathBuf>,
    /// Force 1 (grey) or 3 (RGB) channels for the --activations image.
    #[arg(long, value_name = "1|3")]
    pub channels: Option<usize>,
    /// Resize the --activations image to HxW.
    #[arg(long, value_name = "HxW")]
    pub resize: Option<String>,
    /// Pixels per filter (and per activation map) side, roughly.
    #[arg(long, default_value_t = 48)]
    pub cell: u32,
    /// Activation maps shown per layer.
    #[arg(long, default_value_t = 32)]
    pub maps: usize,
    /// Compute device.

    #[arg(long, value_enum, default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: FiltersArgs) -> anyhow::Result<()> {
    let overwrite = Overwrite::from_force(a.force);
    let output = OutputFile::check(&a.output, overwrite)?;
    let activations_out = match &a.activations {
        Some(_) => Some(OutputFile::check(
            a.activations_out.clone().unwrap_or_else(|| {
                let stem = a
                    .output
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "filters".into());
                a.output.with_file_name(format!("{stem}-activations.png"))
            }),
            overwrite,
        )?),
        None => None,
    };
    let device = a.device.device()?;
    let run = RunDir::new(&a.run).load_model(&device)?;
    let Some(Layer::Conv(first)) = run.model.encoder.first() else {
        let kind = run
            .spec
            .encoder
            .first()
            .map(|l| l.plan.kind())
            .unwrap_or("nothing");
        bail!(
            "{}: the first encoder layer is {kind}, not a conv; `cae filters` draws first-layer conv filters",
            a.run.display()
        );
    };
    let weight = first.conv.weight.val();
    let dims = weight.dims();
    let values = weight
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading filters: {e:?}"))?;
    let mosaic = filter_mosaic(&values, dims, a.cell);
    output.write(&encode_png(&mosaic)?)?;

    let mut activations_path = None;
    if let (Some(image), Some(out)) = (&a.activations, &activations_out) {
        let args = DataArgs {
            data: Some(image.clone()),
            channels: a.channels,
            resize: a.resize.clone(),
            ..Default::default()
        };
        let set = load_for_run(&args, &run)?;
        let flows = run
            .model
            .encoder_activations(batch_tensor(&set, &[0], &device));
        let mut layers = Vec::new();
        for (planned, flow) in run.spec.encoder.iter().zip(flows) {
            let title = format!(
                "{} {} -> {}",
                planned
                    .index
                    .map(|i| format!("layer {i}"))
                    .unwrap_or_else(|| "implicit".into()),
                planned.plan.kind(),
                planned.output
            );
            let maps = match flow {
                Flow::Volume(t) => {
                    let [_, c, h, w] = t.dims();
                    LayerMaps::volume(title, &values_of(t.into_data().try_into_vec())?, (c, h, w))
                }
                Flow::Vector(t) => {
                    LayerMaps::vector(title, &values_of(t.into_data().try_into_vec())?)
                }
            };
            layers.push(maps);
        }
        let s = set.shape;
        let picture = activation_picture(
            set.image(0),
            (s.channels, s.height, s.width),
            &layers,
            a.maps,
            16,
            a.cell,
        )?;
        out.write(&encode_png(&picture)?)?;
        activations_path = Some(out.path().to_path_buf());
    }
    if a.json {
        return print_json(&serde_json::json!({
            "filters": a.output, "shape": dims, "activations": activations_path,
        }));
    }
    println!(
        "wrote {} ({} filters of {}x{}x{})",
        a.output.display(),
        dims[0],
        dims[1],
        dims[2],
        dims[3]
    );
    if let Some(p) = activations_path {
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn values_of<E: std::fmt::Debug>(values: Result<Vec<f32>, E>) -> anyhow::Result<Vec<f32>> {
    values.map_err(|e| anyhow::anyhow!("reading activations: {e:?}"))
}
