//! `cae encode`: the latent codes of a data set, flattened to an N×D float32 `.npy`, with the
//! labels (int64) in `<stem>_labels.npy` beside it when the data has labels — the pair numpy,
//! scikit-learn and this tool's own `.npy` loader read.

use super::print_json;
use crate::args::EncodeArgs;
use cae::features::encode;
use cae::features::npy_write::{f32_npy, i64_npy};
use cae::output::{OutputFile, Overwrite};

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
    let set = run.data(&a.data.required()?)?;
    let (codes, dim) = encode(&run.model, &set, a.batch_size, &run.device)?;
    let bytes = f32_npy(&codes, &[set.len(), dim])?;
    output.write(&bytes)?;
    let labels = match &set.labels {
        Some(labels) => {
            let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
            labels_out.write(&i64_npy(&values))?;
            Some(labels_out.path().to_path_buf())
        }
        None => None,
    };
    if a.json {
        return print_json(&serde_json::json!({
            "output": a.output, "labels": labels, "images": set.len(), "dim": dim,
        }));
    }
    println!(
        "wrote {} ({} codes of {dim} values){}",
        a.output.display(),
        set.len(),
        labels
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_else(|| " (the data has no labels)".into())
    );
    Ok(())
}
