//! Line charts (e.g. train/validation loss per epoch) rendered with plotters' bitmap backend into
//! PNG bytes: axes, numbered ticks, axis labels, title, legend, optional log-scale y.

use std::ops::Range;

use image::RgbImage;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{PlotError, encode_png, font};

/// One named line of a chart: `(x, y)` points in drawing order.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// Legend text; an empty name leaves the series out of the legend.
    pub name: &'a str,
    /// Points; any with a non-finite coordinate, a coordinate beyond `±`[`COORD_LIMIT`] or, on
    /// a log axis, `y <= 0` (below `1 / COORD_LIMIT`) are skipped and break the line there.
    pub points: &'a [(f64, f64)],
}

/// Smallest chart size accepted, in pixels.
pub const MIN_SIZE: (u32, u32) = (160, 120);
/// Largest chart size accepted, in pixels.
pub const MAX_SIZE: (u32, u32) = (8192, 8192);
/// Coordinates beyond `±COORD_LIMIT` (and, on a log axis, `y` below `1 / COORD_LIMIT`) are
/// skipped like `NaN`, which keeps every axis range finite.
pub const COORD_LIMIT: f64 = 1e100;
/// Series with at most this many drawable points also get a dot at every point.
const MARKER_LIMIT: usize = 60;

/// Line colours, cycled (matplotlib's "tab10").
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Renders a line chart and returns it as PNG bytes.
///
/// `size` is `(width, height)` in pixels, between [`MIN_SIZE`] and [`MAX_SIZE`]. Each series is
/// drawn in its own colour with a legend entry; small series also get a dot per point, so a
/// single point is visible. Points with a non-finite or absurdly large coordinate (beyond
/// `±`[`COORD_LIMIT`]) are skipped (the line breaks there); with `log_y`, points with `y <= 0`
/// are skipped too. When nothing is drawable (no
/// series, only empty series, only NaN) the axes are drawn with a "no data" note.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
    size: (u32, u32),
) -> Result<Vec<u8>, PlotError> {
    let (width, height) = size;
    if width < MIN_SIZE.0 || height < MIN_SIZE.1 {
        return Err(PlotError::Size {
            width,
            height,
            reason: "a chart must be at least 160x120",
        });
    }
    if width > MAX_SIZE.0 || height > MAX_SIZE.1 {
        return Err(PlotError::Size {
            width,
            height,
            reason: "a chart must be at most 8192x8192",
        });
    }
    font::ensure_registered()?;

    let segments: Vec<Vec<Vec<(f64, f64)>>> = series
        .iter()
        .map(|s| drawable_segments(s.points, log_y))
        .collect();
    let all = || segments.iter().flatten().flatten();
    let has_data = all().next().is_some();
    let x_range = padded_x_range(all().map(|p| p.0));
    let integral_x = has_data && all().all(|p| p.0.fract() == 0.0);
    let ys = all().map(|p| p.1);

    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let spec = ChartSpec {
            title,
            x_label,
            y_label,
            series,
            segments: &segments,
            has_data,
            integral_x,
            scale: (f64::from(height) / 500.0).clamp(0.6, 3.0),
        };
        if log_y {
            render(&root, &spec, x_range, LogY::new(log_y_range(ys)))?;
        } else {
            render(
                &root,
                &spec,
                x_range,
                RangedCoordf64::from(linear_y_range(ys)),
            )?;
        }
        root.present().map_err(draw_err)?;
    }
    let img = RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| PlotError::Draw("chart buffer has the wrong size".to_string()))?;
    encode_png(&img)
}

fn draw_err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Everything [`render`] needs besides the coordinate ranges.
struct ChartSpec<'a, 'b> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: &'a [Series<'b>],
    segments: &'a [Vec<Vec<(f64, f64)>>],
    has_data: bool,
    integral_x: bool,
    /// Text and margin scale relative to a 500 px high chart.
    scale: f64,
}

/// Splits a series into runs of drawable points.
fn drawable_segments(points: &[(f64, f64)], log_y: bool) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for &(x, y) in points {
        let ok = |v: f64| v.is_finite() && v.abs() <= COORD_LIMIT;
        if ok(x) && ok(y) && (!log_y || y >= 1.0 / COORD_LIMIT) {
            cur.push((x, y));
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Widens a degenerate range `[v, v]` to something drawable around `v`.
fn widen(v: f64, rel: f64, abs: f64) -> Range<f64> {
    let half = (v.abs() * rel).max(abs);
    v - half..v + half
}

fn padded_x_range(xs: impl Iterator<Item = f64>) -> Range<f64> {
    match min_max(xs) {
        None => 0.0..1.0,
        Some((lo, hi)) if hi - lo <= f64::EPSILON * hi.abs().max(1.0) => widen(lo, 0.05, 1.0),
        Some((lo, hi)) => {
            let pad = (hi - lo) * 0.03;
            lo - pad..hi + pad
        }
    }
}

fn linear_y_range(ys: impl Iterator<Item = f64>) -> Range<f64> {
    match min_max(ys) {
        None => 0.0..1.0,
        Some((lo, hi)) if hi - lo <= f64::EPSILON * hi.abs().max(1e-300) => widen(lo, 0.1, 1e-3),
        Some((lo, hi)) => {
            let pad = (hi - lo) * 0.06;
            lo - pad..hi + pad
        }
    }
}

fn log_y_range(ys: impl Iterator<Item = f64>) -> Range<f64> {
    match min_max(ys) {
        None => 0.1..1.0,
        Some((lo, hi)) if hi / lo < 1.0 + 1e-9 => lo / 2.0..hi * 2.0,
        Some((lo, hi)) => {
            // Pad by 5% of the span in log space.
            let f = (hi / lo).powf(0.05);
            lo / f..hi * f
        }
    }
}

/// Short tick label: trailing zeros trimmed, scientific notation for very small/large values.
fn tick_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() {
            "0".into()
        } else {
            format!("{v}")
        };
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.2e}");
        match s.split_once('e') {
            Some((mant, exp)) => {
                let mant = trim_zeros(mant);
                format!("{mant}e{exp}")
            }
            None => s,
        }
    } else {
        trim_zeros(&format!("{v:.4}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Draws the chart on `root` with the given x range and y coordinate.
fn render<Y>(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    spec: &ChartSpec<'_, '_>,
    x_range: Range<f64>,
    y_coord: Y,
) -> Result<(), PlotError>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64> + Clone,
{
    let s = spec.scale;
    let px = |v: f64| (v * s).round() as i32;
    // Font sizes are kept even: plotters' ab_glyph text backend places each glyph at
    // `size / 2 + top` truncated to an integer, so an odd size misaligns glyphs (e.g. the
    // decimal point floats) by a pixel.
    let text = |v: f64| f64::from(((v * s / 2.0).round() as i32).max(4) * 2);
    let fam = font::FAMILY;
    let mut chart = ChartBuilder::on(root)
        .caption(spec.title, (fam, text(24.0)))
        .margin(px(14.0))
        .x_label_area_size(px(50.0))
        .y_label_area_size(px(72.0))
        .build_cartesian_2d(RangedCoordf64::from(x_range.clone()), y_coord)
        .map_err(draw_err)?;

    let x_fmt = |v: &f64| tick_label(*v);
    let y_fmt = |v: &f64| tick_label(*v);
    let span = (x_range.end - x_range.start).round() as usize;
    let x_labels = if spec.integral_x && span <= 10 {
        span.max(1) + 1
    } else {
        10
    };
    chart
        .configure_mesh()
        .x_desc(spec.x_label)
        .y_desc(spec.y_label)
        .x_labels(x_labels)
        .y_labels(8)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((fam, text(14.0)))
        .axis_desc_style((fam, text(16.0)))
        .bold_line_style(RGBColor(210, 210, 210))
        .light_line_style(RGBColor(238, 238, 238))
        .x_max_light_lines(1)
        .y_max_light_lines(2)
        .axis_style(BLACK.stroke_width(1))
        .draw()
        .map_err(draw_err)?;

    let stroke = px(2.0).max(1) as u32;
    let radius = px(3.5).max(2);
    let legend_len = px(22.0);
    let mut any_named = false;
    for (i, (series, segments)) in spec.series.iter().zip(spec.segments).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let total: usize = segments.iter().map(Vec::len).sum();
        let markers = total <= MARKER_LIMIT;
        let mut labelled = series.name.is_empty();
        any_named |= !series.name.is_empty();
        // An empty series still gets its legend entry through one empty line.
        let empty = [Vec::new()];
        let lines: &[Vec<(f64, f64)>] = if segments.is_empty() {
            &empty
        } else {
            segments
        };
        for seg in lines {
            let drawn = chart
                .draw_series(LineSeries::new(
                    seg.iter().copied(),
                    colour.stroke_width(stroke),
                ))
                .map_err(draw_err)?;
            if !labelled {
                labelled = true;
                drawn.label(series.name).legend(move |(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + legend_len, y)],
                        colour.stroke_width(stroke),
                    )
                });
            }
            if markers || seg.len() == 1 {
                chart
                    .draw_series(seg.iter().map(|&p| Circle::new(p, radius, colour.filled())))
                    .map_err(draw_err)?;
            }
        }
    }

    if !spec.has_data {
        let area = chart.plotting_area().strip_coord_spec();
        let (w, h) = area.dim_in_pixel();
        let style = TextStyle::from((fam, text(20.0)).into_font())
            .color(&RGBColor(120, 120, 120))
            .pos(Pos::new(HPos::Center, VPos::Center));
        let centre = ((w / 2) as i32, (h / 2) as i32);
        area.draw(&Text::new("no data", centre, style))
            .map_err(draw_err)?;
    }

    if any_named {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .margin(px(10.0))
            .label_font((fam, text(16.0)))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .map_err(draw_err)?;
    }
    Ok(())
}

/// A logarithmic y coordinate with readable ticks: powers of ten, or 1-2-5 / 1..9 multiples of
/// them, or — for a range narrower than a decade — ordinary linear "nice" ticks.
#[derive(Clone)]
struct LogY {
    lo: f64,
    hi: f64,
}

impl LogY {
    fn new(range: Range<f64>) -> Self {
        let lo = range.start.max(f64::MIN_POSITIVE);
        let hi = range.end.max(lo * (1.0 + 1e-9));
        Self { lo, hi }
    }

    /// Ticks `m * 10^k` inside the range for each mantissa `m`.
    fn decade_ticks(&self, mantissas: &[f64]) -> Vec<f64> {
        let k0 = self.lo.log10().floor() as i32;
        let k1 = self.hi.log10().ceil() as i32;
        let mut out = Vec::new();
        for k in k0..=k1 {
            let base = 10f64.powi(k);
            for &m in mantissas {
                let v = m * base;
                if v >= self.lo * (1.0 - 1e-12) && v <= self.hi * (1.0 + 1e-12) {
                    out.push(v);
                }
            }
        }
        out
    }
}

/// Linear "nice" ticks (steps of 1, 2 or 5 × 10^k) over `[lo, hi]`, at most `max` of them.
fn nice_linear_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let max = max.max(2);
    let span = hi - lo;
    if span.is_nan() || span <= 0.0 {
        return vec![lo];
    }
    let raw = span / (max - 1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&st| span / st <= (max - 1) as f64)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

impl Ranged for LogY {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let v = value.max(f64::MIN_POSITIVE);
        let t = (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln());
        let px = f64::from(limit.0) + t * f64::from(limit.1 - limit.0);
        px.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let max = hint.max_num_points().max(2);
        if hint.weight().allow_light_points() {
            // Light grid lines: every integer multiple of each decade when it fits.
            let dense = self.decade_ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
            if dense.len() <= max && dense.len() >= 2 {
                return dense;
            }
        }
        let decades = self.decade_ticks(&[1.0]);
        if decades.len() > max {
            let every = decades.len().div_ceil(max);
            return decades.into_iter().step_by(every).collect();
        }
        // The sparsest mantissa set giving at least 4 ticks; else the densest that fits.
        let mut best = decades;
        for mantissas in [
            &[1.0, 2.0, 5.0][..],
            &[1.0, 2.0, 3.0, 5.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        ] {
            if best.len() >= 4 {
                break;
            }
            let ticks = self.decade_ticks(mantissas);
            if ticks.len() <= max && ticks.len() > best.len() {
                best = ticks;
            }
        }
        if best.len() >= 2 {
            return best;
        }
        nice_linear_ticks(self.lo, self.hi, max.min(6))
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
            .expect("valid PNG")
            .to_rgb8()
    }

    type Points = Vec<(f64, f64)>;

    fn losses() -> (Points, Points) {
        let train = (1..=20)
            .map(|e| (e as f64, 0.02 + 0.5 * (-(e as f64) / 4.0).exp()))
            .collect();
        let val = (1..=20)
            .map(|e| (e as f64, 0.03 + 0.45 * (-(e as f64) / 4.5).exp()))
            .collect();
        (train, val)
    }

    #[test]
    fn normal_chart_is_valid_png() {
        let (train, val) = losses();
        let series = [
            Series {
                name: "train loss",
                points: &train,
            },
            Series {
                name: "val loss",
                points: &val,
            },
        ];
        for log_y in [false, true] {
            let png = line_chart("Loss", "epoch", "MSE", &series, log_y, (800, 500)).unwrap();
            let img = decode(&png);
            assert_eq!(img.dimensions(), (800, 500));
            // Something other than white was drawn, including the series colours.
            assert!(img.pixels().any(|p| p.0 == [31, 119, 180]));
            assert!(img.pixels().any(|p| p.0 == [255, 127, 14]));
        }
    }

    #[test]
    fn single_point_nan_and_empty_inputs() {
        let one = [(3.0, 0.25)];
        let nan = [
            (1.0, f64::NAN),
            (2.0, 0.5),
            (f64::NAN, 1.0),
            (4.0, 0.4),
            (5.0, f64::INFINITY),
        ];
        let all_nan = [(1.0, f64::NAN), (2.0, f64::NAN)];
        let negative = [(1.0, -1.0), (2.0, 0.0)];
        let cases: Vec<Vec<Series>> = vec![
            vec![Series {
                name: "one",
                points: &one,
            }],
            vec![Series {
                name: "nan",
                points: &nan,
            }],
            vec![Series {
                name: "all nan",
                points: &all_nan,
            }],
            vec![Series {
                name: "empty",
                points: &[],
            }],
            vec![],
            vec![Series {
                name: "",
                points: &negative,
            }],
        ];
        for series in &cases {
            for log_y in [false, true] {
                for size in [(640, 400), MIN_SIZE] {
                    let png = line_chart("t", "x", "y", series, log_y, size).unwrap();
                    assert_eq!(decode(&png).dimensions(), size);
                }
            }
        }
    }

    #[test]
    fn extreme_values_and_odd_text() {
        let huge = [(0.0, -1e300), (1.0, 1e300), (f64::MAX, 0.5)];
        let tiny_span = [(1.0, 1.0), (2.0, 1.0 + 1e-15), (3.0, 1.0)];
        let wide_log = [(1.0, 1e-300), (2.0, 1e300), (3.0, f64::MIN_POSITIVE)];
        let close_x = [(1.0, 0.5), (1.0 + 1e-12, 0.6)];
        for points in [&huge[..], &tiny_span, &wide_log, &close_x] {
            for log_y in [false, true] {
                let series = [Series {
                    name: "σ² → ✓ 日本",
                    points,
                }];
                let png = line_chart("", "", "", &series, log_y, (400, 300)).unwrap();
                assert_eq!(decode(&png).dimensions(), (400, 300));
                let png = line_chart(
                    &"long title ".repeat(40),
                    "x",
                    "y",
                    &series,
                    log_y,
                    (400, 300),
                )
                .unwrap();
                assert_eq!(decode(&png).dimensions(), (400, 300));
            }
        }
    }

    #[test]
    fn bad_sizes_are_errors() {
        for size in [(0, 0), (100, 400), (400, 50), (9000, 400)] {
            let err = line_chart("t", "x", "y", &[], false, size).unwrap_err();
            assert!(err.to_string().contains("invalid picture size"), "{err}");
        }
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(0.0125), "0.0125");
        assert_eq!(tick_label(1e-4), "1e-4");
        assert_eq!(tick_label(2.5e-5), "2.5e-5");
        assert_eq!(tick_label(123456.0), "1.23e5");
        assert_eq!(tick_label(-1.5), "-1.5");
    }

    #[test]
    fn log_ticks_are_sensible() {
        let wide = LogY::new(1e-4..1.0).key_points(8usize);
        assert_eq!(wide.len(), 5, "{wide:?}");
        let mid = LogY::new(0.01..0.5).key_points(8usize);
        assert!(mid.len() >= 3 && mid.len() <= 8, "{mid:?}");
        assert!(mid.contains(&0.1), "{mid:?}");
        let narrow = LogY::new(0.021..0.029).key_points(8usize);
        assert!(narrow.len() >= 2, "{narrow:?}");
        assert!(narrow.iter().all(|v| (0.021..=0.029).contains(v)));
        let huge = LogY::new(1e-30..1e30).key_points(8usize);
        assert!(huge.len() <= 8 && huge.len() >= 2, "{huge:?}");
    }

    /// Draws every kind of chart and checks each is a PNG of its size; with `CAE_PLOT_CHECK_DIR`
    /// set they are kept there for a person to look at, e.g.
    /// `CAE_PLOT_CHECK_DIR=/tmp/plot-check cargo test -p cae --lib plot::`.
    #[test]
    fn example_charts_are_pngs_of_their_size() {
        let dir = std::env::var_os("CAE_PLOT_CHECK_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!("cae-charts-{}", std::process::id()))
            });
        std::fs::create_dir_all(&dir).unwrap();
        let (train, val) = losses();
        let mut gappy = val.clone();
        gappy[7].1 = f64::NAN;
        let both = [
            Series {
                name: "train loss",
                points: &train,
            },
            Series {
                name: "val loss",
                points: &gappy,
            },
        ];
        let one = [(1.0, 0.0421)];
        type Example<'a> = (&'a str, &'a str, &'a [Series<'a>], bool, (u32, u32));
        let charts: [Example; 5] = [
            (
                "chart-linear.png",
                "Training curves",
                &both,
                false,
                (800, 500),
            ),
            (
                "chart-log.png",
                "Training curves (log y)",
                &both,
                true,
                (800, 500),
            ),
            (
                "chart-single.png",
                "After one epoch",
                &[Series {
                    name: "train loss",
                    points: &one,
                }],
                false,
                (640, 400),
            ),
            (
                "chart-empty.png",
                "Nothing yet",
                &[Series {
                    name: "train loss",
                    points: &[],
                }],
                false,
                (640, 400),
            ),
            ("chart-small.png", "Small", &both, true, MIN_SIZE),
        ];
        for (file, title, series, log_y, size) in charts {
            let png = line_chart(title, "epoch", "MSE loss", series, log_y, size).unwrap();
            let drawn = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!((drawn.width(), drawn.height()), size, "{file}");
            std::fs::write(dir.join(file), png).unwrap();
        }
        if std::env::var_os("CAE_PLOT_CHECK_DIR").is_none() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
