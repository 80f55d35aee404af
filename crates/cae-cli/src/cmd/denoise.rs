//! `cae denoise`: two modes over one trained run.
//!
//! - `cae denoise RUN IMAGE... -o DIR` writes each image denoised (PNG in, PNG out, any size:
//!   fully convolutional models run on the whole image, dense-latent ones in blended tiles);
//!   `--add-noise SPEC` corrupts the images first (seeded), writes `<name>-noisy.png` beside
//!   and reports PSNR/SSIM of both against the clean input.
//! - `cae denoise RUN --data SRC --noise SPEC [--noise SPEC…]` is the benchmark: PSNR and SSIM
//!   of the noisy input, the 3×3 median, the tuned Gaussian blur and the CAE, per noise model,
//!   and with `--grid PNG` rows clean / noisy / median / Gaussian / CAE.

use super::print_json;
use crate::args::DenoiseArgs;
use anyhow::bail;
use cae::data::{LoadOptions, load};
use cae::denoise::compare::{compare, corrupt_images, samples_picture};
use cae::denoise::{Denoiser, encode_image_png};
use cae::noise::NoiseSpec;
use cae::output::{OutputDir, OutputFile, Overwrite};
use cae::plot::encode_png;
use cae::quality::{psnr, ssim};
use cae::run::LoadedRun;
use std::path::Path;

pub fn run(a: DenoiseArgs) -> anyhow::Result<()> {
    let overwrite = Overwrite::from_force(a.force);
    if a.data.data.is_some() {
        if !a.inputs.is_empty() {
            bail!("give image files or --data, not both");
        }
        let grid = a
            .grid
            .as_ref()
            .map(|p| OutputFile::check(p, overwrite))
            .transpose()?;
        return bench(&a, a.run.load()?, grid);
    }
    if !a.noise.is_empty() {
        bail!("--noise scores a data set: add --data SRC (to corrupt image files use --add-noise)");
    }
    if a.inputs.is_empty() {
        bail!(
            "nothing to denoise: give image files (and -o DIR), or --data SRC --noise SPEC for the benchmark"
        );
    }
    let Some(out_dir) = &a.output else {
        bail!("-o DIR is required: the folder for the denoised images");
    };
    let mut out = OutputDir::prepare(out_dir, overwrite)?;
    let run = a.run.load()?;
    let device = run.device.clone();
    let mut denoiser = Denoiser::new(run, &device)?;
    files(&a, &mut denoiser, &mut out)
}

fn parse_noise(s: &str) -> anyhow::Result<NoiseSpec> {
    Ok(s.parse::<NoiseSpec>()?)
}

/// Benchmark mode.
fn bench(a: &DenoiseArgs, run: LoadedRun, grid: Option<OutputFile>) -> anyhow::Result<()> {
    if a.noise.is_empty() {
        bail!("the benchmark needs at least one --noise SPEC, e.g. --noise gaussian:0.5");
    }
    let noises: Vec<NoiseSpec> = a
        .noise
        .iter()
        .map(|s| parse_noise(s))
        .collect::<anyhow::Result<_>>()?;
    let mut set = run.data(&a.data.required()?)?;
    let device = run.device.clone();
    let denoiser = &mut Denoiser::new(run, &device)?;
    if let Some(n) = a.last {
        let n = n.min(set.len());
        set = set.select(&(set.len() - n..set.len()).collect::<Vec<_>>());
    }
    let mut rows = Vec::new();
    let mut blocks = Vec::new();
    for noise in &noises {
        let (c, s) = compare(denoiser, &set, noise, a.seed, a.batch_size, a.samples)?;
        rows.push(c);
        blocks.push(s);
    }
    if let Some(grid) = &grid {
        let s = set.shape;
        let scale = (84 / s.height.max(s.width)).clamp(1, 4) as u32;
        let png = encode_png(&samples_picture(
            &blocks,
            (s.channels, s.height, s.width),
            scale,
        ))?;
        grid.write(&png)?;
    }
    if a.json {
        return print_json(&serde_json::json!({ "images": set.len(), "results": rows }));
    }
    println!(
        "{:<28} {:>7} {:>15} {:>15} {:>22} {:>15}",
        "noise (PSNR dB / SSIM)", "images", "noisy", "median 3x3", "gaussian (σ tuned)", "CAE"
    );
    for r in &rows {
        let f = |s: &cae::denoise::compare::Score| format!("{:.2} / {:.3}", s.psnr, s.ssim);
        println!(
            "{:<28} {:>7} {:>15} {:>15} {:>22} {:>15}",
            r.noise,
            r.images,
            f(&r.noisy),
            f(&r.median3),
            format!("{} σ={}", f(&r.gaussian), r.gaussian_sigma),
            f(&r.cae)
        );
    }
    Ok(())
}

/// File mode.
fn files(a: &DenoiseArgs, denoiser: &mut Denoiser, out_dir: &mut OutputDir) -> anyhow::Result<()> {
    let noise = a.add_noise.as_deref().map(parse_noise).transpose()?;
    let mut report = Vec::new();
    for input in &a.inputs {
        let source = input.display().to_string();
        let options = LoadOptions {
            channels: a.data.channels,
            resize: None,
            ..Default::default()
        };
        let clean = load(&source, &options)?;
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let noisy = noise.as_ref().map(|n| corrupt_images(&clean, n, a.seed));
        let given = noisy.as_ref().unwrap_or(&clean);
        let s = clean.shape;
        for i in 0..clean.len() {
            let name = if clean.len() == 1 {
                stem.clone()
            } else {
                format!("{stem}-{i}")
            };
            let out = denoiser.denoise(given.image(i), s, &source)?;
            let file = format!("{name}.png");
            refuse_input(&out_dir.path().join(&file), input)?;
            let path = out_dir.write(&file, &encode_image_png(&out, s)?)?;
            let mut entry = serde_json::json!({ "input": source, "output": path });
            if let Some(noisy) = &noisy {
                let file = format!("{name}-noisy.png");
                refuse_input(&out_dir.path().join(&file), input)?;
                out_dir.write(&file, &encode_image_png(noisy.image(i), s)?)?;
                let dims = (s.channels, s.height, s.width);
                entry["noisy_psnr"] = psnr(clean.image(i), noisy.image(i)).into();
                entry["noisy_ssim"] = ssim(clean.image(i), noisy.image(i), dims).into();
                entry["psnr"] = psnr(clean.image(i), &out).into();
                entry["ssim"] = ssim(clean.image(i), &out, dims).into();
            }
            report.push(entry);
        }
    }
    if a.json {
        return print_json(&serde_json::json!({ "mode": denoiser.mode, "images": report }));
    }
    for e in &report {
        match (e["noisy_psnr"].as_f64(), e["psnr"].as_f64()) {
            (Some(np), Some(p)) => println!(
                "{} -> {}  noisy PSNR {np:.2} dB SSIM {:.3}  denoised PSNR {p:.2} dB SSIM {:.3}",
                e["input"].as_str().unwrap_or_default(),
                e["output"].as_str().unwrap_or_default(),
                e["noisy_ssim"].as_f64().unwrap_or(f64::NAN),
                e["ssim"].as_f64().unwrap_or(f64::NAN),
            ),
            _ => println!(
                "{} -> {}",
                e["input"].as_str().unwrap_or_default(),
                e["output"].as_str().unwrap_or_default()
            ),
        }
    }
    Ok(())
}

fn refuse_input(path: &Path, input: &Path) -> anyhow::Result<()> {
    let same = match (path.canonicalize(), input.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        bail!(
            "{}: the output would overwrite the input; pick another -o folder",
            path.display()
        );
    }
    Ok(())
}
