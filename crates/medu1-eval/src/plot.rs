//! The accuracy bar chart: one bar per benchmark with its 95 % Wilson interval as an error bar.
//!
//! plotters draws text with `ab_glyph`, which needs a font in memory; the DejaVu Sans font is
//! bundled (assets/, Bitstream Vera license) so charts render the same on machines without any
//! system fonts.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::EvalError;
use crate::metrics::BenchmarkStats;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

pub(crate) fn register_font() {
    REGISTER.call_once(|| {
        // The bundled font is valid; a failure would only mean unreadable labels.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// The hidden sibling a PNG is drawn to before it is renamed over `path`, so a chart on disk is
/// always a complete one (plotters writes the file in place).
pub(crate) fn temp_png(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        ".{}.{}.tmp.png",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ))
}

/// A linear f64 axis whose ticks are exactly `ticks` (integer steps, the budgets of a sweep)
/// instead of the "nice" fractional values plotters picks (2.0, 2.5, ...). plotters'
/// `with_key_points` does the same but leaves the axis without a label formatter for f64.
#[derive(Debug, Clone)]
pub(crate) struct FixedTicks {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl FixedTicks {
    pub(crate) fn new(range: std::ops::Range<f64>, ticks: Vec<f64>) -> FixedTicks {
        FixedTicks { range, ticks }
    }
}

impl plotters::coord::ranged1d::Ranged for FixedTicks {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let t = if span > 0.0 {
            (v - self.range.start) / span
        } else {
            0.5
        };
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: plotters::coord::ranged1d::KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Light grid lines only where there are ticks, so the grid marks the ticks.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

/// Tab10, the matplotlib / TensorBoard palette, so colours look familiar.
pub(crate) const PALETTE: [RGBColor; 10] = [
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

/// How a legend entry's swatch is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Swatch {
    /// A solid line.
    Line,
    /// A dashed line.
    Dashed,
    /// A line with a marker on it.
    Marker,
    /// A faint dot (scatter points).
    Dot,
    /// No swatch: a note in the legend's text colour.
    Note,
}

/// One legend entry.
pub(crate) type LegendEntry = (String, RGBColor, Swatch);

const LEGEND_FONT: u32 = 13;
const LEGEND_ROW: u32 = 18;
const SWATCH_W: i32 = 24;

/// Width of a legend label in pixels, estimated rather than measured so that the layout (how
/// many rows the strip needs) is known before anything is drawn.
fn label_width(label: &str) -> i32 {
    (label.chars().count() as f64 * 0.6 * f64::from(LEGEND_FONT)).ceil() as i32
}

/// Entries laid out left to right, wrapping at `width`: each entry's row and x offset.
fn legend_layout(width: u32, entries: &[LegendEntry]) -> Vec<(u32, i32)> {
    let mut out = Vec::with_capacity(entries.len());
    let (mut row, mut x) = (0u32, 8i32);
    for (label, _, swatch) in entries {
        let w = label_width(label)
            + if *swatch == Swatch::Note {
                0
            } else {
                SWATCH_W + 6
            };
        if x > 8 && x + w > width as i32 - 8 {
            row += 1;
            x = 8;
        }
        out.push((row, x));
        x += w + 18;
    }
    out
}

/// Height of the legend strip `entries` need in an area `width` pixels wide.
pub(crate) fn legend_height(width: u32, entries: &[LegendEntry]) -> u32 {
    let rows = legend_layout(width, entries)
        .last()
        .map_or(0, |(r, _)| r + 1);
    rows * LEGEND_ROW + 8
}

/// Draws a legend in `area`, a strip beside the chart: legends inside the plotting area hide the
/// data they explain, most at the start and end of a run where the curves matter most.
pub(crate) fn legend_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let width = area.dim_in_pixel().0;
    let font = ("sans-serif", LEGEND_FONT).into_font();
    for ((label, color, swatch), (row, x)) in entries.iter().zip(legend_layout(width, entries)) {
        let y = (row * LEGEND_ROW + LEGEND_ROW / 2 + 2) as i32;
        let text_x = match swatch {
            Swatch::Line => {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + SWATCH_W, y)],
                    color.stroke_width(2),
                ))
                .map_err(e)?;
                x + SWATCH_W + 6
            }
            Swatch::Dashed => {
                for k in 0..3 {
                    let a = x + 9 * k;
                    area.draw(&PathElement::new(
                        vec![(a, y), (a + 5, y)],
                        color.stroke_width(2),
                    ))
                    .map_err(e)?;
                }
                x + SWATCH_W + 6
            }
            Swatch::Marker => {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + SWATCH_W, y)],
                    color.mix(0.6).stroke_width(1),
                ))
                .map_err(e)?;
                area.draw(&Circle::new((x + SWATCH_W / 2, y), 4, color.filled()))
                    .map_err(e)?;
                x + SWATCH_W + 6
            }
            Swatch::Dot => {
                area.draw(&Circle::new(
                    (x + SWATCH_W / 2, y),
                    3,
                    color.mix(0.4).filled(),
                ))
                .map_err(e)?;
                x + SWATCH_W + 6
            }
            Swatch::Note => x,
        };
        let style = font.clone().color(if *swatch == Swatch::Note {
            &RGBColor(90, 90, 90)
        } else {
            &BLACK
        });
        area.draw(&Text::new(label.clone(), (text_x, y - 7), style))
            .map_err(e)?;
    }
    Ok(())
}

/// Draws the chart to `path` (PNG), atomically: to a sibling first, then renamed.
pub fn accuracy_chart(path: &Path, stats: &[BenchmarkStats]) -> Result<(), EvalError> {
    register_font();
    let err = |m: String| EvalError::Plot {
        path: path.to_path_buf(),
        message: m,
    };
    let tmp = temp_png(path);
    let width = (160 * stats.len().max(1) as u32 + 160).max(640);
    {
        let root = BitMapBackend::new(&tmp, (width, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let names: Vec<String> = stats.iter().map(|b| b.benchmark.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Accuracy (mean@n) with 95% Wilson interval",
                ("sans-serif", 22),
            )
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(56)
            // Integer ranges are inclusive: `0..len-1` gives one segment per benchmark (a single
            // benchmark keeps 0..1, since an empty range cannot be mapped).
            .build_cartesian_2d(
                (0..stats.len().saturating_sub(1).max(1)).into_segmented(),
                0f64..100f64,
            )
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc("accuracy %")
            .x_labels(stats.len().max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let bar = RGBColor(52, 101, 164);
        chart
            .draw_series(stats.iter().enumerate().map(|(i, b)| {
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), 100.0 * b.accuracy),
                    ],
                    bar.filled(),
                );
                r.set_margin(0, 0, 20, 20);
                r
            }))
            .map_err(|e| err(e.to_string()))?;
        // Error bars by hand (a vertical line with pixel-wide caps): plotters' `ErrorBar` needs
        // a feature the workspace does not enable.
        let whisker = BLACK.stroke_width(2);
        for (i, b) in stats.iter().enumerate() {
            let (lo, hi) = (100.0 * b.ci_low, 100.0 * b.ci_high);
            let x = SegmentValue::CenterOf(i);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x.clone(), lo), (x.clone(), hi)],
                    whisker,
                )))
                .map_err(|e| err(e.to_string()))?;
            for y in [lo, hi] {
                chart
                    .draw_series(std::iter::once(
                        EmptyElement::at((x.clone(), y))
                            + PathElement::new(vec![(-8, 0), (8, 0)], whisker),
                    ))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        chart
            .draw_series(stats.iter().enumerate().map(|(i, b)| {
                Text::new(
                    format!("{:.1}", 100.0 * b.accuracy),
                    (
                        SegmentValue::CenterOf(i),
                        (100.0 * b.ci_high + 3.0).min(97.0),
                    ),
                    ("sans-serif", 14).into_font(),
                )
            }))
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(EvalError::io(path))
}
