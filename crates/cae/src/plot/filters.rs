//! What a trained encoder has learned, as pictures: the first conv layer's filters as a mosaic
//! (each filter min–max normalised on its own; RGB filters in colour), and the activation maps
//! of every encoder layer for one input (each map normalised, inferno colormap), one captioned
//! block per layer.

use image::{Rgb, RgbImage, imageops};
use plotters::prelude::*;

use super::{PlotError, colormap, font, image_grid};

const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const GAP: u32 = 3;
const LINE: u32 = 18;

/// Min–max normalises `v` to [0, 1]; a constant slice becomes `flat`.
fn normalise(v: &[f32], flat: f32) -> Vec<f32> {
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if hi <= lo {
        return vec![flat; v.len()];
    }
    v.iter().map(|&x| (x - lo) / (hi - lo)).collect()
}

/// The filters of a conv weight tensor `[out, in, kh, kw]` as a near-square mosaic. Filters
/// over 3 input channels are drawn in colour; other channel counts as the grey mean over
/// channels. Each filter is scaled up to about `cell` pixels.
pub fn filter_mosaic(weights: &[f32], shape: [usize; 4], cell: u32) -> RgbImage {
    let [out, inp, kh, kw] = shape;
    let per = inp * kh * kw;
    let plane = kh * kw;
    let filters: Vec<Vec<f32>> = (0..out)
        .map(|f| {
            let w = weights.get(f * per..(f + 1) * per).unwrap_or(&[]);
            if inp == 3 || inp == 1 {
                normalise(w, 0.5)
            } else {
                let mean: Vec<f32> = (0..plane)
                    .map(|i| {
                        (0..inp)
                            .map(|c| w.get(c * plane + i).copied().unwrap_or(0.0))
                            .sum::<f32>()
                            / inp.max(1) as f32
                    })
                    .collect();
                normalise(&mean, 0.5)
            }
        })
        .collect();
    let channels = if inp == 3 { 3 } else { 1 };
    let cols = (out as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (out as u32).div_ceil(cols).max(1);
    let scale = (cell / kh.max(kw).max(1) as u32).max(1);
    let (cw, ch) = (kw as u32 * scale, kh as u32 * scale);
    // White gaps: mid-grey is a common filter value and would blur the cell borders.
    let mut img =
        RgbImage::from_pixel(cols * (cw + GAP) + GAP, rows * (ch + GAP) + GAP, BACKGROUND);
    for (k, f) in filters.iter().enumerate() {
        let (r, c) = (k as u32 / cols, k as u32 % cols);
        let tile = image_grid(&[vec![f.as_slice()]], (channels, kh, kw), scale, 0);
        imageops::replace(
            &mut img,
            &tile,
            (GAP + c * (cw + GAP)) as i64,
            (GAP + r * (ch + GAP)) as i64,
        );
    }
    img
}

/// The output of one encoder layer for one image.
#[derive(Debug, Clone)]
pub struct LayerMaps {
    /// Caption, e.g. `2 max_pool 32x14x14`.
    pub title: String,
    /// Channel maps of `height × width` values (a vector output is one near-square map).
    pub maps: Vec<Vec<f32>>,
    pub height: usize,
    pub width: usize,
}

impl LayerMaps {
    /// Maps of a `[c, h, w]` volume.
    pub fn volume(title: String, values: &[f32], (c, h, w): (usize, usize, usize)) -> LayerMaps {
        LayerMaps {
            title,
            maps: values
                .chunks((h * w).max(1))
                .take(c)
                .map(<[f32]>::to_vec)
                .collect(),
            height: h,
            width: w,
        }
    }

    /// A vector drawn as one near-square map (unused cells are 0).
    pub fn vector(title: String, values: &[f32]) -> LayerMaps {
        let side = (values.len() as f64).sqrt().ceil().max(1.0) as usize;
        let mut map = values.to_vec();
        map.resize(side * side, 0.0);
        LayerMaps {
            title,
            maps: vec![map],
            height: side,
            width: side,
        }
    }
}

/// One map in the inferno colormap, nearest-neighbour scaled by `scale`.
fn heat(map: &[f32], h: usize, w: usize, scale: u32) -> RgbImage {
    // a dead (constant) map is drawn as the bottom of the colormap
    let n = normalise(map, 0.0);
    let small = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        Rgb(colormap(
            n.get(y as usize * w + x as usize).copied().unwrap_or(0.0),
        ))
    });
    imageops::resize(
        &small,
        w as u32 * scale,
        h as u32 * scale,
        imageops::FilterType::Nearest,
    )
}

/// The input image (grey or RGB CHW) and, below it, one captioned block of activation maps per
/// layer (at most `per_layer` maps each, `per_row` to a row, each scaled to about `cell` px).
pub fn activation_picture(
    input: &[f32],
    input_shape: (usize, usize, usize),
    layers: &[LayerMaps],
    per_layer: usize,
    per_row: usize,
    cell: u32,
) -> Result<RgbImage, PlotError> {
    let (_, ih, iw) = input_shape;
    let input_scale = (2 * cell / ih.max(iw).max(1) as u32).max(1);
    let mut blocks: Vec<(String, RgbImage)> = vec![(
        format!("input {}x{}x{}", input_shape.0, ih, iw),
        image_grid(&[vec![input]], input_shape, input_scale, 0),
    )];
    let per_row = per_row.max(1);
    for layer in layers {
        let side = layer.height.max(layer.width).max(1) as u32;
        let scale = ((cell + side / 2) / side).max(1); // nearest whole factor
        let (mw, mh) = (layer.width as u32 * scale, layer.height as u32 * scale);
        let shown = layer.maps.len().min(per_layer.max(1));
        let cols = shown.min(per_row) as u32;
        let rows = shown.div_ceil(per_row) as u32;
        let mut block =
            RgbImage::from_pixel(cols * (mw + GAP) + GAP, rows * (mh + GAP) + GAP, BACKGROUND);
        for (k, map) in layer.maps.iter().take(shown).enumerate() {
            let (r, c) = ((k / per_row) as u32, (k % per_row) as u32);
            let tile = heat(map, layer.height, layer.width, scale);
            imageops::replace(
                &mut block,
                &tile,
                (GAP + c * (mw + GAP)) as i64,
                (GAP + r * (mh + GAP)) as i64,
            );
        }
        let title = if shown < layer.maps.len() {
            format!(
                "{} (first {shown} of {} maps)",
                layer.title,
                layer.maps.len()
            )
        } else {
            layer.title.clone()
        };
        blocks.push((title, block));
    }
    let width = blocks
        .iter()
        .map(|(_, b)| b.width())
        .max()
        .unwrap_or(1)
        .max(360)
        + 2 * GAP;
    let height: u32 = blocks
        .iter()
        .map(|(_, b)| b.height() + LINE + GAP)
        .sum::<u32>()
        + GAP;
    let mut img = RgbImage::from_pixel(width, height, BACKGROUND);
    let mut y = GAP;
    let mut captions = Vec::new();
    for (title, block) in &blocks {
        captions.push((title.clone(), y));
        imageops::replace(&mut img, block, GAP as i64, (y + LINE) as i64);
        y += block.height() + LINE + GAP;
    }
    draw_captions(&mut img, &captions)?;
    Ok(img)
}

fn draw_captions(img: &mut RgbImage, captions: &[(String, u32)]) -> Result<(), PlotError> {
    font::ensure_registered()?;
    let (width, height) = img.dimensions();
    let buf: &mut [u8] = img.as_mut();
    let root = BitMapBackend::with_buffer(buf, (width, height)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| PlotError::Draw(e.to_string());
    let style = (font::FAMILY, 13).into_font().color(&BLACK);
    for (text, y) in captions {
        root.draw(&Text::new(
            text.clone(),
            (GAP as i32 + 2, *y as i32 + 2),
            style.clone(),
        ))
        .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mosaic_normalises_each_filter() {
        // two 1x2x2 filters of very different scales: both must span black to white
        let w = [0.0, 1.0, 2.0, 3.0, -100.0, 0.0, 0.0, 100.0];
        let img = filter_mosaic(&w, [2, 1, 2, 2], 8);
        // 2 columns of 2 px scaled x4, gaps of 3: 3 + 8 + 3 + 8 + 3
        assert_eq!((img.width(), img.height()), (25, 14));
        assert_eq!(img.get_pixel(0, 0).0, BACKGROUND.0, "gaps are white");
        assert_eq!(img.get_pixel(3, 3).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(3 + 4, 3 + 4).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(14, 3).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(14 + 4, 3 + 4).0, [255, 255, 255]);
        // colour filters stay in colour: a filter that is only red
        let mut rgb = vec![0.0f32; 3 * 4];
        rgb[..4].copy_from_slice(&[1.0; 4]);
        let img = filter_mosaic(&rgb, [1, 3, 2, 2], 2);
        assert_eq!(img.get_pixel(3, 3).0, [255, 0, 0]);
    }

    #[test]
    fn activation_picture_has_a_block_per_layer() {
        let input = vec![0.5f32; 28 * 28];
        let layers = vec![
            LayerMaps::volume("1 conv 4x28x28".into(), &vec![1.0; 4 * 784], (4, 28, 28)),
            LayerMaps::vector("2 dense 10".into(), &[0.0, 1.0, 2.0]),
        ];
        assert_eq!((layers[1].height, layers[1].maps[0].len()), (2, 4));
        let img = activation_picture(&input, (1, 28, 28), &layers, 16, 8, 56).unwrap();
        // input block (56 px) + 4 maps of 56 px + a 2x2 map scaled to 56 px, plus captions
        assert!(img.height() >= 3 * (56 + LINE), "{}", img.height());
        assert!(img.width() >= 4 * 56, "{}", img.width());
    }
}
