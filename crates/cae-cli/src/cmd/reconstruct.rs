//! `cae reconstruct`: originals above their reconstructions, as one PNG.

use super::print_json;
use crate::args::ReconstructArgs;
use cae::features::npy_write::f32_npy;
use cae::infer::{raw_outputs, reconstruct_first};
use cae::output::{OutputFile, Overwrite};
use cae::plot::{encode_png, labelled_reconstruction_grid};
use cae::quality::QualityAccumulator;

pub fn run(a: ReconstructArgs) -> anyhow::Result<()> {
    let overwrite = Overwrite::from_force(a.force);
    let output = OutputFile::check(&a.output, overwrite)?;
    let npy = a
        .npy
        .as_ref()
        .map(|p| OutputFile::check(p, overwrite))
        .transpose()?;
    let run = a.run.load()?;
    let set = run.data(&a.data.required()?)?;
    let device = &run.device;
    let (originals, recons) = reconstruct_first(&run.model, &set, a.count.max(1), device)?;
    let s = set.shape;
    let scale = a
        .scale
        .unwrap_or((112 / s.height.max(s.width)).clamp(1, 4) as u32)
        .max(1);
    let o: Vec<&[f32]> = originals.iter().map(Vec::as_slice).collect();
    let r: Vec<&[f32]> = recons.iter().map(Vec::as_slice).collect();
    let labels = if run.spec.is_segmentation() {
        ["input", "predicted map"]
    } else {
        ["original", "reconstruction"]
    };
    let image = labelled_reconstruction_grid(
        &o,
        &r,
        (s.channels, s.height, s.width),
        a.per_row.max(1),
        scale,
        labels,
    )?;
    let png = encode_png(&image)?;
    output.write(&png)?;
    if let Some(npy) = &npy {
        let head = set.select(&(0..originals.len()).collect::<Vec<_>>());
        let raw = raw_outputs(&run.model, &head, 64, device)?;
        let bytes = f32_npy(&raw, &[head.len(), s.channels, s.height, s.width])?;
        npy.write(&bytes)?;
    }
    let mut q = QualityAccumulator::new((s.channels, s.height, s.width));
    for (x, y) in o.iter().zip(&r) {
        q.add(x, y);
    }
    let q = q.summary();
    if a.json {
        print_json(
            &serde_json::json!({ "output": a.output, "images": q.images, "mse": q.mse, "psnr": q.psnr, "ssim": q.ssim }),
        )?;
    } else {
        println!(
            "wrote {} ({} images; MSE {:.6}, PSNR {:.2} dB)",
            a.output.display(),
            q.images,
            q.mse,
            q.psnr
        );
    }
    Ok(())
}
