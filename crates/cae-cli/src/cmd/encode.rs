//! `cae encode`: the latent codes of a data set, flattened to an N×D float32 `.npy`, with the
//! labels (int64) in `<stem>_labels.npy` beside it when the data has labels — the pair numpy,
//! scikit-learn and this tool's own `.npy` loader read.

use super::BLOCK;
use super::print_json;
use crate::args::EncodeArgs;
use cae::features::encode;
use cae::features::npy_write::{f32_npy, i64_npy};
use cae::output::{OutputFile, Overwrite};
use cae::run::{DataRequest, LoadedRun};

/// The codes of every image, in order.
struct Codes {
    values: Vec<f32>,
    images: usize,
    dim: usize,
    labels: Option<Vec<u32>>,
}

/// Encodes `request`'s images, an image folder [`BLOCK`] images at a time (the same codes as
/// read whole: each image is encoded on its own; the codes, the output, are all kept).
fn encode_blocks(
    run: &LoadedRun,
    request: &DataRequest,
    batch_size: usize,
) -> anyhow::Result<Codes> {
    let mut codes = Codes {
        values: Vec::new(),
        images: 0,
        dim: 0,
        labels: None,
    };
    run.data_blocks(request, BLOCK, |set| -> anyhow::Result<()> {
        let (values, dim) = encode(&run.model, &set, batch_size, &run.device)?;
        codes.values.extend(values);
        codes.images += set.len();
        codes.dim = dim;
        if let Some(labels) = set.labels {
            codes.labels.get_or_insert_with(Vec::new).extend(labels);
        }
        Ok(())
    })?;
    Ok(codes)
}

pub fn run(a: EncodeArgs) -> anyhow::Result<()> {
    let overwrite = Overwrite::from_force(a.force);
    let output = OutputFile::check(&a.output, overwrite)?;
    let stem = a
        .output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "features".into());
    // Checked now, though only written when the data has labels: no work is lost to it later.
    let labels_out = OutputFile::check(
        a.output.with_file_name(format!("{stem}_labels.npy")),
        overwrite,
    )?;
    let run = a.run.load()?;
    let codes = encode_blocks(&run, &a.data.required()?, a.batch_size)?;
    let (n, dim) = (codes.images, codes.dim);
    let bytes = f32_npy(&codes.values, &[n, dim])?;
    output.write(&bytes)?;
    let labels = match &codes.labels {
        Some(labels) => {
            let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
            labels_out.write(&i64_npy(&values))?;
            Some(labels_out.path().to_path_buf())
        }
        None => None,
    };
    if a.json {
        return print_json(&serde_json::json!({
            "output": a.output, "labels": labels, "images": n, "dim": dim,
        }));
    }
    println!(
        "wrote {} ({} codes of {dim} values){}",
        a.output.display(),
        n,
        labels
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_else(|| " (the data has no labels)".into())
    );
    Ok(())
}
