//! `cae filters`: the learned first-layer conv filters of a run as a mosaic, and with
//! `--activations IMAGE` the activation maps of every encoder layer for that image.

use super::print_json;
use crate::args::DataArgs;
use crate::args::FiltersArgs;
use anyhow::bail;
use cae::infer::batch_tensor;
use cae::model::{Flow, Layer};
use cae::output::{OutputFile, Overwrite};
use cae::plot::encode_png;
use cae::plot::filters::{LayerMaps, activation_picture, filter_mosaic};

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
    let run = a.run.load()?;
    let Some(Layer::Conv(first)) = run.model.encoder.first() else {
        let kind = run
            .spec
            .encoder
            .first()
            .map(|l| l.plan.kind())
            .unwrap_or("nothing");
        bail!(
            "{}: the first encoder layer is {kind}, not a conv; `cae filters` draws first-layer conv filters",
            a.run.path.display()
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
            resize: a.resize,
            ..Default::default()
        };
        let set = run.data(&args.required()?)?;
        let flows = run
            .model
            .encoder_activations(batch_tensor(&set, &[0], &run.device));
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
