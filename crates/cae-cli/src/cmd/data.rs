//! `cae data make-defects` (texture patches with synthetic defects, in the MVTec AD layout),
//! `cae data make-labels` (a labels `.npy` for an unlabelled array whose order encodes the class,
//! such as scikit-image's `lfw_subset`: 100 faces, then 100 non-faces) and `cae data export-png`
//! (images of any source as PNG files, e.g. MNIST digits to send to `cae serve`).

use crate::args::{DataCmdArgs, DataCommand, ExportPngArgs, MakeDefectsArgs, MakeLabelsArgs};
use crate::cmd::print_json;
use anyhow::bail;
use cae::anomaly::defects::{ALL_KINDS, DefectConfig, DefectKind, Texture, write_layout};
use cae::data::{LoadOptions, load};
use cae::denoise::encode_image_png;
use cae::output::{OutputDir, OutputFile, Overwrite};
use cae::quote::quote;

pub fn run(a: DataCmdArgs) -> anyhow::Result<()> {
    match a.command {
        DataCommand::MakeDefects(m) => make_defects(m),
        DataCommand::MakeLabels(m) => make_labels(m),
        DataCommand::ExportPng(e) => export_png(e),
    }
}

fn export_png(a: ExportPngArgs) -> anyhow::Result<()> {
    if a.limit == 0 {
        bail!("--limit 0 writes nothing: give at least 1");
    }
    let mut out = OutputDir::prepare(&a.out, Overwrite::from_force(a.force))?;
    let options = LoadOptions {
        channels: a.channels,
        limit: Some(a.limit),
        ..Default::default()
    };
    let set = load(&a.source, &options)?;
    for i in 0..set.len() {
        let label = match (&set.labels, &set.class_names) {
            (Some(l), Some(names)) => format!(
                "-{}",
                names
                    .get(l[i] as usize)
                    .map_or_else(|| l[i].to_string(), |n| crate::cmd::file_name_part(n))
            ),
            (Some(l), None) => format!("-{}", l[i]),
            _ => String::new(),
        };
        let png = encode_image_png(set.image(i), set.shape)?;
        out.write(format!("{i:05}{label}.png"), &png)?;
    }
    eprintln!(
        "wrote {} PNG images ({}) into {}",
        set.len(),
        set.shape,
        a.out.display()
    );
    Ok(())
}

fn parse_kinds(names: &Option<Vec<String>>) -> anyhow::Result<Vec<DefectKind>> {
    let Some(names) = names else {
        return Ok(ALL_KINDS.to_vec());
    };
    names
        .iter()
        .map(|n| {
            ALL_KINDS
                .iter()
                .copied()
                .find(|k| k.name() == n.trim())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown defect kind {n}: expected scratch, spot, hole, stain, cut or fold",
                        n = quote(n)
                    )
                })
        })
        .collect()
}

fn make_defects(a: MakeDefectsArgs) -> anyhow::Result<()> {
    let kinds = parse_kinds(&a.kinds)?;
    let options = LoadOptions {
        channels: Some(1),
        ..LoadOptions::default()
    };
    let texture = load(&a.texture, &options)?;
    if texture.len() != 1 {
        bail!(
            "{}: holds {} images; give one texture photograph",
            a.texture,
            texture.len()
        );
    }
    let config = DefectConfig {
        patch: a.patch,
        train: a.train,
        test_good: a.test_good,
        per_kind: a.per_kind,
        kinds,
        seed: a.seed,
    };
    let tex = Texture {
        pixels: &texture.pixels,
        height: texture.shape.height,
        width: texture.shape.width,
    };
    let written = write_layout(tex, &config, &a.out, Overwrite::from_force(a.force))?;
    if a.json {
        return print_json(
            &serde_json::json!({ "out": a.out, "patches": written, "config": config }),
        );
    }
    println!(
        "wrote {written} patches of {p}x{p} to {}: train/good {}, test/good {}, {} per defect kind ({}), masks in ground_truth/",
        a.out.display(),
        a.train,
        a.test_good,
        a.per_kind,
        config
            .kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        p = a.patch,
    );
    Ok(())
}

/// A version-1.0 `.npy` header for a 1-D uint8 array of `n` values, padded to 64 bytes.
fn npy_u8_header(n: usize) -> Vec<u8> {
    let mut dict = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({n},), }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

fn make_labels(a: MakeLabelsArgs) -> anyhow::Result<()> {
    let out = OutputFile::check(&a.out, Overwrite::from_force(a.force))?;
    if a.counts.len() > 256 {
        bail!(
            "--counts names {} labels; at most 256 fit in uint8 labels",
            a.counts.len()
        );
    }
    let n: usize = a.counts.iter().sum();
    if n == 0 {
        bail!("--counts adds up to 0 images; give at least one positive count");
    }
    let mut bytes = npy_u8_header(n);
    for (label, &count) in a.counts.iter().enumerate() {
        bytes.extend(std::iter::repeat_n(label as u8, count));
    }
    out.write(&bytes)?;
    println!(
        "wrote {} labels ({:?} per label) to {}",
        n,
        a.counts,
        a.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn npy_header_is_aligned_and_well_formed() {
        let h = super::npy_u8_header(200);
        assert_eq!(h.len() % 64, 0);
        assert!(h.starts_with(b"\x93NUMPY\x01\x00"));
        let text = String::from_utf8_lossy(&h[10..]);
        assert!(text.contains("'shape': (200,)") && text.ends_with('\n'));
    }
}
