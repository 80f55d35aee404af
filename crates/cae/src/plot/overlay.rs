//! The per-image anomaly picture: input, reconstruction, error heatmap, and the input under a
//! translucent heatmap with the predicted-mask contour (red) and, when known, the ground-truth
//! contour (green; yellow where both agree), under a one-line caption; below the panels, the
//! heatmap's colour scale (0 to the value drawn brightest) and a legend of the contour colours.

use image::{Rgb, RgbImage};
use plotters::prelude::*;

use super::{PlotError, colormap, encode_png, font};

/// Gap between panels and around the picture, in pixels.
const GAP: u32 = 4;
/// Height of the caption line and of the panel-title line.
const LINE: u32 = 20;
/// Height of the row under the panels: the colour bar with its end values, the contour legend.
const FOOTER: u32 = 30;
/// Height of the colour bar and side of a legend swatch.
const BAR: u32 = 8;
const PREDICTED: Rgb<u8> = Rgb([230, 30, 30]);
const TRUTH: Rgb<u8> = Rgb([40, 220, 60]);
const BOTH: Rgb<u8> = Rgb([250, 230, 30]);

/// Everything one overlay shows.
#[derive(Debug, Clone, Copy)]
pub struct Overlay<'a> {
    /// The input, CHW in [0, 1].
    pub original: &'a [f32],
    /// Its reconstruction, CHW in [0, 1].
    pub reconstruction: &'a [f32],
    /// (channels, height, width).
    pub shape: (usize, usize, usize),
    /// The anomaly map, `height * width`.
    pub map: &'a [f32],
    /// The map value drawn as the top of the colormap (e.g. twice the pixel threshold, so the
    /// threshold sits mid-scale).
    pub map_top: f32,
    /// Predicted mask (non-zero = anomalous pixel).
    pub predicted: Option<&'a [u8]>,
    /// Ground-truth mask.
    pub truth: Option<&'a [u8]>,
    /// One line of text above the panels.
    pub caption: &'a str,
    /// True when `reconstruction` is a segmentation model's one-channel predicted map rather
    /// than a reconstruction (panel titles and channels follow).
    pub segmentation: bool,
}

/// The map value drawn brightest, one rule for `cae anomaly score` and `cae serve`: twice the
/// run's pixel threshold, so the threshold sits mid-scale and every image of a run is drawn on
/// the same scale; without a threshold, the image's own maximum (its colour bar says which).
pub fn map_top(pixel_threshold: Option<f64>, map: &[f32]) -> f32 {
    match pixel_threshold {
        Some(p) if p > 0.0 && p.is_finite() => 2.0 * p as f32,
        _ => map.iter().copied().fold(f32::MIN_POSITIVE, f32::max),
    }
}

/// RGB of pixel (y, x) of a CHW image (grey for one channel).
fn rgb_at(img: &[f32], (c, h, w): (usize, usize, usize), y: usize, x: usize) -> [f32; 3] {
    let plane = h * w;
    let v = |ch: usize| img.get(ch * plane + y * w + x).copied().unwrap_or(0.0);
    if c >= 3 {
        [v(0), v(1), v(2)]
    } else {
        [v(0); 3]
    }
}

fn byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// True when upscaled pixel (Y, X) lies on the border of `mask`.
fn on_contour(mask: &[u8], (h, w): (usize, usize), scale: usize, yy: usize, xx: usize) -> bool {
    let at = |y: isize, x: isize| {
        if y < 0 || x < 0 {
            return false;
        }
        let (sy, sx) = (y as usize / scale, x as usize / scale);
        sy < h && sx < w && mask.get(sy * w + sx).is_some_and(|&m| m != 0)
    };
    let (y, x) = (yy as isize, xx as isize);
    at(y, x) && !(at(y - 1, x) && at(y + 1, x) && at(y, x - 1) && at(y, x + 1))
}

/// Renders the overlay as PNG bytes; each image pixel becomes `scale × scale` pixels.
pub fn anomaly_overlay(o: &Overlay<'_>, scale: u32) -> Result<Vec<u8>, PlotError> {
    encode_png(&render(o, scale)?)
}

/// Several overlays in one picture, `columns` side by side, rows top to bottom (a contact sheet
/// for a report: e.g. defective parts above good ones).
pub fn overlay_sheet(
    overlays: &[Overlay<'_>],
    scale: u32,
    columns: usize,
) -> Result<Vec<u8>, PlotError> {
    let images: Vec<RgbImage> = overlays
        .iter()
        .map(|o| render(o, scale))
        .collect::<Result<_, _>>()?;
    let Some(first) = images.first() else {
        return Err(PlotError::Size {
            width: 0,
            height: 0,
            reason: "a sheet needs at least one overlay",
        });
    };
    let (w, h) = first.dimensions();
    let columns = columns.clamp(1, images.len());
    let rows = images.len().div_ceil(columns);
    let mut sheet = RgbImage::from_pixel(w * columns as u32, h * rows as u32, Rgb([255, 255, 255]));
    for (k, img) in images.iter().enumerate() {
        let (x0, y0) = ((k % columns) as u32 * w, (k / columns) as u32 * h);
        for (x, y, p) in img.enumerate_pixels() {
            if x < w && y < h {
                sheet.put_pixel(x0 + x, y0 + y, *p);
            }
        }
    }
    encode_png(&sheet)
}

/// Draws one overlay.
fn render(o: &Overlay<'_>, scale: u32) -> Result<RgbImage, PlotError> {
    let (c, h, w) = o.shape;
    let scale = scale.clamp(1, 64);
    let (ph, pw) = (h as u32 * scale, w as u32 * scale);
    if ph == 0 || pw == 0 || ph > 4096 || pw > 4096 {
        return Err(PlotError::Size {
            width: pw,
            height: ph,
            reason: "an overlay panel must be between 1 and 4096 pixels a side",
        });
    }
    let width = (4 * pw + 5 * GAP).max(420);
    let height = 2 * LINE + ph + 3 * GAP + FOOTER;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let top = 2 * LINE + 2 * GAP;
    let s = scale as usize;
    let top_colour = o.map_top.max(f32::MIN_POSITIVE);
    for yy in 0..ph as usize {
        for xx in 0..pw as usize {
            let (y, x) = (yy / s, xx / s);
            let input = rgb_at(o.original, (c, h, w), y, x);
            let recon_channels = if o.segmentation { 1 } else { c };
            let recon = rgb_at(o.reconstruction, (recon_channels, h, w), y, x);
            let heat = colormap(o.map.get(y * w + x).copied().unwrap_or(0.0) / top_colour);
            let grey = (input[0] + input[1] + input[2]) / 3.0;
            let blend: [u8; 3] =
                std::array::from_fn(|i| byte(0.45 * grey + 0.55 * f32::from(heat[i]) / 255.0));
            let pred = o
                .predicted
                .is_some_and(|m| on_contour(m, (h, w), s, yy, xx));
            let truth = o.truth.is_some_and(|m| on_contour(m, (h, w), s, yy, xx));
            let marked = match (pred, truth) {
                (true, true) => BOTH,
                (true, false) => PREDICTED,
                (false, true) => TRUTH,
                (false, false) => Rgb(blend),
            };
            let panels = [
                Rgb(input.map(byte)),
                Rgb(recon.map(byte)),
                Rgb(heat),
                marked,
            ];
            for (k, colour) in panels.into_iter().enumerate() {
                let px = GAP + k as u32 * (pw + GAP) + xx as u32;
                img.put_pixel(px, top + yy as u32, colour);
            }
        }
    }
    let bar_top = top + ph + GAP + 2;
    let bar_left = GAP + 2 * (pw + GAP);
    for x in 0..pw {
        let colour = Rgb(colormap(x as f32 / (pw - 1).max(1) as f32));
        for y in 0..BAR {
            img.put_pixel(bar_left + x, bar_top + y, colour);
        }
    }
    let legend = legend_entries(o);
    let legend_left = GAP + 3 * (pw + GAP);
    for (k, (_, colour)) in legend.iter().enumerate() {
        let (x0, y0) = swatch_at(legend_left, bar_top, k);
        for y in 0..BAR {
            for x in 0..BAR {
                img.put_pixel(x0 + x, y0 + y, *colour);
            }
        }
    }
    draw_text(&mut img, o.caption, &panel_titles(o), pw)?;
    let scale_labels = ["0".to_string(), scale_label(o.map_top)];
    draw_footer(
        &mut img,
        (bar_left, pw),
        &scale_labels,
        (legend_left, &legend),
        bar_top,
    )?;
    Ok(img)
}

/// The contour colours this overlay uses, with their names.
fn legend_entries(o: &Overlay<'_>) -> Vec<(&'static str, Rgb<u8>)> {
    match (o.predicted.is_some(), o.truth.is_some()) {
        (true, true) => vec![("predicted", PREDICTED), ("true", TRUTH), ("both", BOTH)],
        (true, false) => vec![("predicted", PREDICTED)],
        (false, true) => vec![("true", TRUTH)],
        (false, false) => vec![],
    }
}

/// Top-left corner of legend swatch `k`: two per line under the last panel.
fn swatch_at(left: u32, top: u32, k: usize) -> (u32, u32) {
    let column = (k % 2) as u32;
    let line = (k / 2) as u32;
    (left + column * 70, top + line * (BAR + 6))
}

/// The colour bar's top value: three significant digits, scientific below 0.01.
fn scale_label(v: f32) -> String {
    if v != 0.0 && v.abs() < 0.01 {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

/// Draws the colour bar's end values under it and the legend names beside their swatches.
fn draw_footer(
    img: &mut RgbImage,
    (bar_left, bar_width): (u32, u32),
    [low, high]: &[String; 2],
    (legend_left, legend): (u32, &[(&str, Rgb<u8>)]),
    bar_top: u32,
) -> Result<(), PlotError> {
    let (width, height) = img.dimensions();
    let buf: &mut [u8] = img.as_mut();
    let root = BitMapBackend::with_buffer(buf, (width, height)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| PlotError::Draw(e.to_string());
    let small = (font::FAMILY, 11).into_font().color(&RGBColor(90, 90, 90));
    let below = (bar_top + BAR + 2) as i32;
    root.draw(&Text::new(
        low.clone(),
        (bar_left as i32, below),
        small.clone(),
    ))
    .map_err(err)?;
    let (w, _) = root.estimate_text_size(high, &small).map_err(err)?;
    let right = (bar_left + bar_width) as i32 - w as i32;
    root.draw(&Text::new(
        high.clone(),
        (right.max(bar_left as i32 + 12), below),
        small.clone(),
    ))
    .map_err(err)?;
    for (k, (name, _)) in legend.iter().enumerate() {
        let (x0, y0) = swatch_at(legend_left, bar_top, k);
        root.draw(&Text::new(
            name.to_string(),
            ((x0 + BAR + 3) as i32, y0 as i32 - 2),
            small.clone(),
        ))
        .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

fn panel_titles(o: &Overlay<'_>) -> [&'static str; 4] {
    let last = match (o.predicted.is_some(), o.truth.is_some()) {
        (true, true) => "predicted / true",
        (true, false) => "predicted mask",
        (false, true) => "true mask",
        (false, false) => "overlay",
    };
    if o.segmentation {
        ["input", "predicted map", "anomaly map", last]
    } else {
        ["input", "reconstruction", "error map", last]
    }
}

/// Draws the caption and the panel titles with the embedded font.
fn draw_text(
    img: &mut RgbImage,
    caption: &str,
    titles: &[&str; 4],
    pw: u32,
) -> Result<(), PlotError> {
    font::ensure_registered()?;
    let (width, height) = img.dimensions();
    let buf: &mut [u8] = img.as_mut();
    let root = BitMapBackend::with_buffer(buf, (width, height)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| PlotError::Draw(e.to_string());
    let style = (font::FAMILY, 14).into_font().color(&BLACK);
    root.draw(&Text::new(
        caption.to_string(),
        (GAP as i32, 4),
        style.clone(),
    ))
    .map_err(err)?;
    let small = (font::FAMILY, 12).into_font().color(&RGBColor(90, 90, 90));
    for (k, t) in titles.iter().enumerate() {
        let x = (GAP + k as u32 * (pw + GAP)) as i32;
        root.draw(&Text::new(
            t.to_string(),
            (x, (LINE + GAP) as i32),
            small.clone(),
        ))
        .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16: the CLI scaled a heatmap to the set's maximum and the server to each image's;
    /// both now call `map_top`, so one image is drawn alike by either.
    #[test]
    fn one_heatmap_scale_for_the_cli_and_the_server() {
        let map = [0.1f32, 0.4, 0.2];
        assert_eq!(map_top(Some(0.15), &map), 0.3);
        assert_eq!(map_top(None, &map), 0.4);
        for bad in [Some(0.0), Some(f64::NAN), Some(-1.0)] {
            assert_eq!(map_top(bad, &map), 0.4, "{bad:?}");
        }
        assert!(
            map_top(None, &[0.0; 4]) > 0.0,
            "an all-zero map still has a scale"
        );
    }

    #[test]
    fn draws_four_panels_and_contours() {
        let shape = (1, 8, 8);
        let original = vec![0.5f32; 64];
        let mut map = vec![0.0f32; 64];
        map[27] = 1.0;
        let mut predicted = vec![0u8; 64];
        predicted[27] = 1;
        let mut truth = vec![0u8; 64];
        truth[0] = 1;
        let o = Overlay {
            original: &original,
            reconstruction: &original,
            shape,
            map: &map,
            map_top: 1.0,
            predicted: Some(&predicted),
            truth: Some(&truth),
            caption: "anomalous",
            segmentation: false,
        };
        let png = anomaly_overlay(&o, 4).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.height(), 2 * LINE + 32 + 3 * GAP + FOOTER);
        let top = 2 * LINE + 2 * GAP;
        let panel = |k: u32, y: u32, x: u32| *img.get_pixel(GAP + k * (32 + GAP) + x, top + y);
        // Input panel: mid grey. Heatmap: brightest colour at the hot pixel (3, 3).
        assert_eq!(panel(0, 1, 1), Rgb([128, 128, 128]));
        assert_eq!(panel(2, 13, 13).0, colormap(1.0));
        // Contours: predicted (red) around pixel (3, 3), truth (green) at pixel (0, 0).
        assert_eq!(panel(3, 12, 13), PREDICTED);
        assert_eq!(panel(3, 0, 0), TRUTH);
        assert_ne!(panel(3, 20, 20), PREDICTED);
        // Under the heatmap, its colour scale from the coldest to the hottest colour; under
        // the overlay, a swatch of each contour colour.
        let bar = |x: u32| *img.get_pixel(GAP + 2 * (32 + GAP) + x, top + 32 + GAP + 2 + BAR / 2);
        assert_eq!(bar(0).0, colormap(0.0));
        assert_eq!(bar(31).0, colormap(1.0));
        let swatch = |k: usize| {
            let (x, y) = swatch_at(GAP + 3 * (32 + GAP), top + 32 + GAP + 2, k);
            *img.get_pixel(x + BAR / 2, y + BAR / 2)
        };
        assert_eq!([swatch(0), swatch(1), swatch(2)], [PREDICTED, TRUTH, BOTH]);
    }

    #[test]
    fn the_colour_scale_label_keeps_small_values_readable() {
        assert_eq!(scale_label(0.5), "0.500");
        assert_eq!(scale_label(0.003), "3.00e-3");
        assert_eq!(scale_label(0.0), "0.000");
    }
}
