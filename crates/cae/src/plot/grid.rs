//! Image grids: CHW `f32` images laid out in rows with gaps (e.g. originals above their
//! reconstructions), nearest-neighbour upscaling for small images, and PNG encoding.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};

use super::PlotError;

/// Colour of the gaps between cells and of empty cells.
pub const GAP_COLOUR: Rgb<u8> = Rgb([128, 128, 128]);
/// Fill of a cell whose slice does not hold `channels * height * width` values, so the
/// problem is visible instead of silently drawn as something plausible.
pub const BAD_CELL_COLOUR: Rgb<u8> = Rgb([255, 0, 255]);
/// Gap in pixels used by [`reconstruction_grid`].
pub const RECONSTRUCTION_GAP: u32 = 2;

/// Converts a value in `[0, 1]` to a byte; out-of-range values are clamped, `NaN` becomes 0.
fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Largest grid side in pixels; [`image_grid`] shrinks `scale` (and, if that is not enough,
/// drops trailing rows or columns) to stay within it.
pub const MAX_GRID_SIDE: u32 = 32768;
/// Largest gap in pixels; larger requests are clamped.
pub const MAX_GAP: u32 = 256;

/// Pixels needed for `n` cells of `cell` pixels with `gap` pixels around each.
fn extent(n: u64, cell: u64, gap: u64) -> u64 {
    n.saturating_mul(cell)
        .saturating_add(n.saturating_add(1).saturating_mul(gap))
}

/// Largest scale at which `n` cells of `dim` source pixels fit in [`MAX_GRID_SIDE`].
fn fitting_scale(n: u64, dim: u64, gap: u64) -> u64 {
    if n == 0 || dim == 0 {
        return u64::MAX;
    }
    let avail = u64::from(MAX_GRID_SIDE).saturating_sub(extent(n, 0, gap));
    avail / n.saturating_mul(dim)
}

/// How many cells of `cell` pixels fit in [`MAX_GRID_SIDE`] (at most `n`).
fn fitting_cells(n: u64, cell: u64, gap: u64) -> u64 {
    let avail = u64::from(MAX_GRID_SIDE).saturating_sub(gap);
    n.min(avail / cell.saturating_add(gap).max(1))
}

/// Arranges images into rows: `rows[r][c]` is one image, a CHW `f32` slice of
/// `shape = (channels, height, width)` with values in `[0, 1]` (clamped; `NaN` draws as 0).
///
/// * Each image is scaled up by the integer `scale` (nearest neighbour; 0 is treated as 1).
/// * Cells are separated, and the whole grid framed, by `gap` pixels of mid-grey
///   ([`GAP_COLOUR`]; at most [`MAX_GAP`]).
/// * One channel is drawn as grey; three or more channels use the first three as RGB; two
///   channels draw the first as grey.
/// * Rows may have different lengths: the grid is as wide as the longest row and missing cells
///   stay grey. A slice of the wrong length is drawn as a magenta cell ([`BAD_CELL_COLOUR`]).
///
/// The result is `cols * width * scale + (cols + 1) * gap` wide and
/// `rows * height * scale + (rows + 1) * gap` high, where `cols` is the longest row's length;
/// a grid that would be empty in either direction is 1 pixel there instead. A grid that would
/// be larger than [`MAX_GRID_SIDE`] on a side gets a smaller `scale`, and if even `scale` 1 is
/// too large, the rows or columns that do not fit are left out.
pub fn image_grid(
    rows: &[Vec<&[f32]>],
    shape: (usize, usize, usize),
    scale: u32,
    gap: u32,
) -> RgbImage {
    let (c, h, w) = shape;
    let gap64 = u64::from(gap.min(MAX_GAP));
    let (h64, w64) = (h as u64, w as u64);
    let n_cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u64;
    let n_rows = rows.len() as u64;
    let scale64 = u64::from(scale.max(1))
        .min(fitting_scale(n_cols, w64, gap64))
        .min(fitting_scale(n_rows, h64, gap64))
        .max(1);
    let cell_w = w64.saturating_mul(scale64);
    let cell_h = h64.saturating_mul(scale64);
    let n_cols = fitting_cells(n_cols, cell_w, gap64);
    let n_rows = fitting_cells(n_rows, cell_h, gap64);
    // Everything below is at most MAX_GRID_SIDE, so u32 arithmetic cannot overflow.
    let side = |n: u64, cell: u64| extent(n, cell, gap64).clamp(1, u64::from(MAX_GRID_SIDE)) as u32;
    let mut img = RgbImage::from_pixel(side(n_cols, cell_w), side(n_rows, cell_h), GAP_COLOUR);
    if cell_w == 0 || cell_h == 0 || n_cols == 0 || n_rows == 0 {
        return img;
    }
    let (gap, scale, cell_w, cell_h) = (gap64 as u32, scale64 as u32, cell_w as u32, cell_h as u32);
    // At least one cell fits, so h and w are at most MAX_GRID_SIDE and h * w cannot overflow.
    let plane = h * w;
    let expected = c.checked_mul(plane);
    for (r, row) in rows.iter().take(n_rows as usize).enumerate() {
        let y0 = gap + r as u32 * (cell_h + gap);
        for (col, data) in row.iter().take(n_cols as usize).enumerate() {
            let x0 = gap + col as u32 * (cell_w + gap);
            let valid = c > 0 && expected == Some(data.len());
            for y in 0..cell_h {
                let sy = (y / scale) as usize;
                for x in 0..cell_w {
                    let sx = (x / scale) as usize;
                    let pixel = if !valid {
                        BAD_CELL_COLOUR
                    } else if c >= 3 {
                        let i = sy * w + sx;
                        Rgb([
                            to_byte(data[i]),
                            to_byte(data[plane + i]),
                            to_byte(data[2 * plane + i]),
                        ])
                    } else {
                        let g = to_byte(data[sy * w + sx]);
                        Rgb([g, g, g])
                    };
                    img.put_pixel(x0 + x, y0 + y, pixel);
                }
            }
        }
    }
    img
}

/// The "originals above reconstructions" picture: images are taken `per_row` at a time
/// (0 is treated as 1), and each chunk gives two rows — originals, then the matching
/// reconstructions — so rows alternate original / reconstruction. Cells are separated by
/// [`RECONSTRUCTION_GAP`] pixels of grey. If the two lists differ in length, the missing
/// partners leave grey cells.
pub fn reconstruction_grid(
    originals: &[&[f32]],
    reconstructions: &[&[f32]],
    shape: (usize, usize, usize),
    per_row: usize,
    scale: u32,
) -> RgbImage {
    let per_row = per_row.max(1);
    let n = originals.len().max(reconstructions.len());
    fn chunk<'a>(list: &[&'a [f32]], start: usize, end: usize) -> Vec<&'a [f32]> {
        list.get(start..end.min(list.len()))
            .unwrap_or_default()
            .to_vec()
    }
    let mut rows: Vec<Vec<&[f32]>> = Vec::new();
    for start in (0..n).step_by(per_row) {
        let end = (start + per_row).min(n);
        rows.push(chunk(originals, start, end));
        rows.push(chunk(reconstructions, start, end));
    }
    image_grid(&rows, shape, scale, RECONSTRUCTION_GAP)
}

/// [`reconstruction_grid`] with its rows named on the left: `labels[0]` for the originals,
/// `labels[1]` for the model's outputs (e.g. `["original", "reconstruction"]`, or
/// `["input", "predicted map"]` for a segmentation model).
pub fn labelled_reconstruction_grid(
    originals: &[&[f32]],
    outputs: &[&[f32]],
    shape: (usize, usize, usize),
    per_row: usize,
    scale: u32,
    labels: [&str; 2],
) -> Result<RgbImage, PlotError> {
    let grid = reconstruction_grid(originals, outputs, shape, per_row, scale);
    let n = originals.len().max(outputs.len());
    let rows = 2 * n.div_ceil(per_row.max(1));
    label_rows(&grid, &labels, rows, RECONSTRUCTION_GAP)
}

/// Width of the margin [`label_rows`] adds on the left.
pub const LABEL_MARGIN: u32 = 104;

/// `grid` (made by [`image_grid`] with `gap`, `rows` rows) with a margin on the left naming
/// each row: `labels` in turn, repeating (`["original", "reconstruction"]` names the rows of a
/// [`reconstruction_grid`]). A label is drawn at its row's middle in the embedded font.
pub fn label_rows(
    grid: &RgbImage,
    labels: &[&str],
    rows: usize,
    gap: u32,
) -> Result<RgbImage, PlotError> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let (w, h) = grid.dimensions();
    let mut img = RgbImage::from_pixel(w + LABEL_MARGIN, h, Rgb([255, 255, 255]));
    image::imageops::replace(&mut img, grid, i64::from(LABEL_MARGIN), 0);
    if rows == 0 || labels.is_empty() {
        return Ok(img);
    }
    let gap = gap.min(MAX_GAP);
    let cell = h.saturating_sub(gap * (rows as u32 + 1)) / rows as u32;
    super::font::ensure_registered()?;
    let (width, height) = img.dimensions();
    let buf: &mut [u8] = img.as_mut();
    let root = BitMapBackend::with_buffer(buf, (width, height)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| PlotError::Draw(e.to_string());
    let size = cell.clamp(9, 14);
    let style = (super::font::FAMILY, size)
        .into_font()
        .color(&RGBColor(60, 60, 60))
        .pos(Pos::new(HPos::Right, VPos::Center));
    for r in 0..rows {
        let y = gap + r as u32 * (cell + gap) + cell / 2;
        let label = labels[r % labels.len()];
        root.draw(&Text::new(
            label.to_string(),
            (LABEL_MARGIN as i32 - 6, y as i32),
            style.clone(),
        ))
        .map_err(err)?;
    }
    root.present().map_err(err)?;
    drop(root);
    Ok(img)
}

/// Encodes an image as PNG bytes.
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, PlotError> {
    if img.width() == 0 || img.height() == 0 {
        return Err(PlotError::Size {
            width: img.width(),
            height: img.height(),
            reason: "an image needs at least one pixel",
        });
    }
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| PlotError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×h×w image whose pixel (y, x) is `(y * w + x) / (h * w)`.
    fn ramp(h: usize, w: usize) -> Vec<f32> {
        (0..h * w).map(|i| i as f32 / (h * w) as f32).collect()
    }

    #[test]
    fn dimensions_are_exact() {
        let a = ramp(7, 5);
        let rows = vec![vec![&a[..], &a[..], &a[..]], vec![&a[..]]];
        let img = image_grid(&rows, (1, 7, 5), 3, 2);
        // 3 cols: 3 * 5 * 3 + 4 * 2 = 53; 2 rows: 2 * 7 * 3 + 3 * 2 = 48
        assert_eq!(img.dimensions(), (53, 48));
        // The missing cells in row 2 stay grey.
        assert_eq!(*img.get_pixel(2 + 15 + 2 + 1, 2 + 21 + 2 + 1), GAP_COLOUR);

        let none = image_grid(&[], (1, 7, 5), 3, 2);
        assert_eq!(none.dimensions(), (2, 2));
        let zero = image_grid(&[], (1, 7, 5), 3, 0);
        assert_eq!(zero.dimensions(), (1, 1));
        assert!(encode_png(&zero).is_ok());
    }

    #[test]
    fn pixel_lands_at_expected_place() {
        let (h, w) = (4, 6);
        let mut a = vec![0.0f32; h * w];
        a[2 * w + 5] = 0.5; // pixel (y=2, x=5)
        a[0] = 2.0; // clamped to 1
        a[1] = -1.0; // clamped to 0
        let b = vec![0.25f32; h * w];
        let (scale, gap) = (3u32, 4u32);
        let img = image_grid(&[vec![&b[..], &a[..]]], (1, h, w), scale, gap);
        assert_eq!(img.dimensions(), (2 * 18 + 3 * 4, 12 + 2 * 4));
        // Gap pixels are grey.
        assert_eq!(*img.get_pixel(0, 0), GAP_COLOUR);
        assert_eq!(*img.get_pixel(4 + 18, 10), GAP_COLOUR);
        // First cell is uniform 0.25 -> 64.
        assert_eq!(*img.get_pixel(4, 4), Rgb([64, 64, 64]));
        // Second cell starts at x = gap + cell + gap = 26; pixel (2,5) covers x 26+15..26+18,
        // y 4+6..4+9; 0.5 -> 128.
        let x0 = 4 + 18 + 4;
        for dy in 0..3 {
            for dx in 0..3 {
                assert_eq!(
                    *img.get_pixel(x0 + 15 + dx, 4 + 6 + dy),
                    Rgb([128, 128, 128])
                );
            }
        }
        assert_eq!(*img.get_pixel(x0 + 14, 4 + 6), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(x0, 4), Rgb([255, 255, 255]));
        assert_eq!(*img.get_pixel(x0 + 3, 4), Rgb([0, 0, 0]));
    }

    #[test]
    fn rgb_keeps_colour() {
        let (h, w) = (2, 2);
        // Pixel (0,0) pure red, (0,1) pure green, (1,0) pure blue, (1,1) white.
        let mut a = vec![0.0f32; 3 * h * w];
        a[0] = 1.0; // R plane, (0,0)
        a[4 + 1] = 1.0; // G plane, (0,1)
        a[8 + 2] = 1.0; // B plane, (1,0)
        for p in 0..3 {
            a[p * 4 + 3] = 1.0;
        }
        let img = image_grid(&[vec![&a[..]]], (3, h, w), 2, 1);
        assert_eq!(img.dimensions(), (6, 6));
        assert_eq!(*img.get_pixel(1, 1), Rgb([255, 0, 0]));
        assert_eq!(*img.get_pixel(3, 2), Rgb([0, 255, 0]));
        assert_eq!(*img.get_pixel(2, 3), Rgb([0, 0, 255]));
        assert_eq!(*img.get_pixel(4, 4), Rgb([255, 255, 255]));
    }

    #[test]
    fn huge_requests_are_limited() {
        let a = ramp(28, 28);
        // A scale that would give a 2.8-million-pixel-wide grid is reduced to fit (flat 1x28
        // images keep the test's memory small).
        let flat = ramp(1, 28);
        let img = image_grid(&[vec![&flat[..]; 10]], (1, 1, 28), 10_000, 2);
        let s = (MAX_GRID_SIDE - 11 * 2) / (10 * 28);
        assert_eq!(img.dimensions(), (10 * 28 * s + 22, s + 4));
        // Too many cells even at scale 1: trailing columns are dropped.
        let many = vec![&a[..]; 5000];
        let img = image_grid(&[many], (1, 28, 28), 1, 1);
        assert_eq!(img.dimensions(), (1 + 1129 * 29, 30));
        // Absurd shapes and gaps do not panic.
        let img = image_grid(&[vec![&a[..]]], (1, usize::MAX, usize::MAX), 3, u32::MAX);
        assert!(img.width() <= MAX_GRID_SIDE && img.height() <= MAX_GRID_SIDE);
        let img = image_grid(&[vec![&a[..]]], (1, 0, 28), 3, 1);
        assert_eq!(img.dimensions(), (28 * 3 + 2, 2));
    }

    #[test]
    fn wrong_length_cell_is_magenta() {
        let a = [0.5f32; 5];
        let img = image_grid(&[vec![&a[..]]], (1, 2, 3), 1, 1);
        assert_eq!(*img.get_pixel(1, 1), BAD_CELL_COLOUR);
    }

    #[test]
    fn reconstruction_rows_alternate() {
        let orig: Vec<Vec<f32>> = (0..5).map(|_| vec![1.0f32; 4]).collect();
        let recon: Vec<Vec<f32>> = (0..5).map(|_| vec![0.0f32; 4]).collect();
        let o: Vec<&[f32]> = orig.iter().map(Vec::as_slice).collect();
        let r: Vec<&[f32]> = recon.iter().map(Vec::as_slice).collect();
        let img = reconstruction_grid(&o, &r, (1, 2, 2), 3, 2);
        let g = RECONSTRUCTION_GAP;
        // 3 per row -> 2 chunks -> 4 rows of 4 px cells.
        assert_eq!(img.dimensions(), (3 * 4 + 4 * g, 4 * 4 + 5 * g));
        let cell_y = |row: u32| g + row * (4 + g) + 1;
        assert_eq!(*img.get_pixel(g + 1, cell_y(0)), Rgb([255, 255, 255]));
        assert_eq!(*img.get_pixel(g + 1, cell_y(1)), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(g + 1, cell_y(2)), Rgb([255, 255, 255]));
        assert_eq!(*img.get_pixel(g + 1, cell_y(3)), Rgb([0, 0, 0]));
        // The second chunk has 2 images; its third cell is grey.
        let x3 = g + 2 * (4 + g) + 1;
        assert_eq!(*img.get_pixel(x3, cell_y(2)), GAP_COLOUR);

        // Fewer reconstructions than originals: no panic, grey where missing.
        let img = reconstruction_grid(&o, &r[..1], (1, 2, 2), 0, 1);
        assert_eq!(img.dimensions(), (2 + 2 * g, 10 * 2 + 11 * g));
        assert_eq!(*img.get_pixel(g, g + 3 * (2 + g)), GAP_COLOUR);
    }

    #[test]
    fn png_round_trip() {
        let a = ramp(28, 28);
        let img = image_grid(&[vec![&a[..]; 4], vec![&a[..]; 4]], (1, 28, 28), 2, 2);
        let bytes = encode_png(&img).unwrap();
        let back = image::load_from_memory_with_format(&bytes, ImageFormat::Png)
            .unwrap()
            .to_rgb8();
        assert_eq!(back, img);
    }

    /// Draws example grids and a colormap strip and checks them; with `CAE_PLOT_CHECK_DIR`
    /// set they are kept there for a person to look at.
    #[test]
    fn labelled_grids_keep_the_grid_and_write_in_the_margin() {
        let a = vec![1.0f32; 28 * 28];
        let grid = reconstruction_grid(&[&a[..]; 3], &[&a[..]; 3], (1, 28, 28), 3, 2);
        let img = labelled_reconstruction_grid(
            &[&a[..]; 3],
            &[&a[..]; 3],
            (1, 28, 28),
            3,
            2,
            ["original", "reconstruction"],
        )
        .unwrap();
        assert_eq!(
            img.dimensions(),
            (grid.width() + LABEL_MARGIN, grid.height())
        );
        // The grid is copied unchanged to the right of the margin.
        for (x, y, p) in grid.enumerate_pixels() {
            assert_eq!(img.get_pixel(x + LABEL_MARGIN, y), p);
        }
        // Text in the margin: some dark pixels in each row's band, none outside the margin.
        let dark = |y0: u32, y1: u32| {
            (y0..y1).any(|y| (0..LABEL_MARGIN).any(|x| img.get_pixel(x, y).0[0] < 128))
        };
        let half = grid.height() / 2;
        assert!(dark(0, half) && dark(half, grid.height()));
    }

    #[test]
    fn example_grids_have_their_cells_and_colours() {
        let keep = std::env::var_os("CAE_PLOT_CHECK_DIR");
        let dir = keep
            .clone()
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!("cae-grids-{}", std::process::id()))
            });
        std::fs::create_dir_all(&dir).unwrap();
        // Rings of varying radius on 28x28 ("digits") and blurred versions ("reconstructions").
        let ring = |r: f32, blur: f32| -> Vec<f32> {
            (0..28 * 28)
                .map(|i| {
                    let (y, x) = ((i / 28) as f32 - 13.5, (i % 28) as f32 - 13.5);
                    let d = ((x * x + y * y).sqrt() - r).abs();
                    (1.0 - d / (1.5 + blur)).clamp(0.0, 1.0)
                })
                .collect()
        };
        let orig: Vec<Vec<f32>> = (0..10).map(|k| ring(4.0 + k as f32, 0.0)).collect();
        let recon: Vec<Vec<f32>> = (0..10).map(|k| ring(4.0 + k as f32, 2.0)).collect();
        let o: Vec<&[f32]> = orig.iter().map(Vec::as_slice).collect();
        let r: Vec<&[f32]> = recon.iter().map(Vec::as_slice).collect();
        let img =
            labelled_reconstruction_grid(&o, &r, (1, 28, 28), 5, 3, ["original", "reconstruction"])
                .unwrap();
        // Originals and reconstructions differ, so the grid is not one colour.
        let first = *img.get_pixel(0, 0);
        assert!(img.pixels().any(|p| *p != first), "a flat grid");
        std::fs::write(dir.join("grid-mnist.png"), encode_png(&img).unwrap()).unwrap();
        // Colour gradients: R left-to-right, G top-to-bottom, B per image.
        let colour: Vec<Vec<f32>> = (0..4)
            .map(|k| {
                let mut v = vec![0.0f32; 3 * 25 * 25];
                for i in 0..25 * 25 {
                    v[i] = (i % 25) as f32 / 24.0;
                    v[625 + i] = (i / 25) as f32 / 24.0;
                    v[1250 + i] = k as f32 / 3.0;
                }
                v
            })
            .collect();
        let c: Vec<&[f32]> = colour.iter().map(Vec::as_slice).collect();
        let img = image_grid(&[c.clone(), c[..2].to_vec()], (3, 25, 25), 4, 4);
        std::fs::write(dir.join("grid-rgb.png"), encode_png(&img).unwrap()).unwrap();
        // Colormap strip.
        let strip = RgbImage::from_fn(512, 40, |x, _| {
            Rgb(super::super::colormap(x as f32 / 511.0))
        });
        // The colormap runs from dark to bright.
        let luma = |p: &Rgb<u8>| p.0.iter().map(|&v| u32::from(v)).sum::<u32>();
        assert!(luma(strip.get_pixel(0, 0)) < luma(strip.get_pixel(511, 0)));
        std::fs::write(dir.join("colormap.png"), encode_png(&strip).unwrap()).unwrap();
        if keep.is_none() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
