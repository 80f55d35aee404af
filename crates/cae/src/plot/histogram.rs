//! Score histograms: the scores of normal and of anomalous images as two translucent
//! histograms on one axis (each as a share of its own class, so a small class stays visible),
//! with the decision threshold as a vertical line.

use image::RgbImage;
use plotters::prelude::*;

use super::{PlotError, encode_png, font};

const NORMAL: RGBColor = RGBColor(31, 119, 180);
const ANOMALOUS: RGBColor = RGBColor(255, 127, 14);
const THRESHOLD: RGBColor = RGBColor(214, 39, 40);

/// Bin counts of `values` over `[lo, hi)` in `bins` equal bins (the last bin includes `hi`),
/// as a share of all finite values.
pub fn bin_shares(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0usize; bins.max(1)];
    let width = (hi - lo) / bins.max(1) as f64;
    let mut total = 0;
    for &v in values.iter().filter(|v| v.is_finite()) {
        let k = if width > 0.0 {
            (((v - lo) / width).floor().max(0.0) as usize).min(counts.len() - 1)
        } else {
            0
        };
        counts[k] += 1;
        total += 1;
    }
    counts
        .into_iter()
        .map(|c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

/// Renders the histogram of `normal` and `anomalous` scores with an optional threshold line,
/// `size = (width, height)`, as PNG bytes.
pub fn score_histogram(
    title: &str,
    normal: &[f64],
    anomalous: &[f64],
    threshold: Option<f64>,
    size: (u32, u32),
) -> Result<Vec<u8>, PlotError> {
    let (width, height) = size;
    if !(320..=4096).contains(&width) || !(240..=4096).contains(&height) {
        return Err(PlotError::Size {
            width,
            height,
            reason: "a histogram must be between 320x240 and 4096x4096",
        });
    }
    font::ensure_registered()?;
    let finite = || {
        normal
            .iter()
            .chain(anomalous)
            .chain(threshold.iter())
            .filter(|v| v.is_finite())
    };
    let lo = finite().copied().fold(f64::INFINITY, f64::min);
    let hi = finite().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (0.0, 1.0)
    };
    let bins = 40;
    let shares = [
        (
            "normal",
            NORMAL,
            bin_shares(normal, lo, hi, bins),
            normal.len(),
        ),
        (
            "anomalous",
            ANOMALOUS,
            bin_shares(anomalous, lo, hi, bins),
            anomalous.len(),
        ),
    ];
    let top = shares
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.08;
    let step = (hi - lo) / bins as f64;
    let err = |e: DrawingAreaErrorKind<_>| PlotError::Draw(e.to_string());
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let fam = font::FAMILY;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (fam, 22))
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("anomaly score")
            .y_desc("share of the class's images")
            .label_style((fam, 14))
            .axis_desc_style((fam, 16))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(err)?;
        for (name, colour, values, n) in &shares {
            if *n == 0 {
                continue;
            }
            let colour = *colour;
            let bars = values
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, v)| {
                    let x0 = lo + k as f64 * step;
                    Rectangle::new([(x0, 0.0), (x0 + step, *v)], colour.mix(0.5).filled())
                });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(format!("{name} ({n})"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 16, y + 6)], colour.mix(0.5).filled())
                });
        }
        if let Some(t) = threshold.filter(|t| t.is_finite()) {
            chart
                .draw_series(DashedLineSeries::new(
                    [(t, 0.0), (t, top)],
                    8,
                    5,
                    THRESHOLD.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("threshold {t:.4}"))
                .legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], THRESHOLD.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((fam, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    let img = RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| PlotError::Draw("histogram buffer has the wrong size".into()))?;
    encode_png(&img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_bin_by_hand() {
        let s = bin_shares(&[0.0, 0.1, 0.5, 1.0, f64::NAN], 0.0, 1.0, 2);
        assert_eq!(s, vec![0.5, 0.5]);
        assert_eq!(bin_shares(&[], 0.0, 1.0, 3), vec![0.0; 3]);
    }

    #[test]
    fn renders_with_and_without_data() {
        let png =
            score_histogram("t", &[0.1, 0.2, 0.2], &[0.8, 0.9], Some(0.5), (640, 400)).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (640, 400));
        // The threshold line's red appears somewhere.
        let rgb = img.to_rgb8();
        assert!(rgb.pixels().any(|p| p.0 == [214, 39, 40]));
        assert!(score_histogram("t", &[], &[], None, (640, 400)).is_ok());
        assert!(score_histogram("t", &[1.0], &[], None, (10, 10)).is_err());
    }
}
