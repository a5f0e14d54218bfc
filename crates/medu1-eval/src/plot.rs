//! The accuracy bar chart: one bar per benchmark with its 95 % Wilson interval as an error bar.
//!
//! plotters draws text with `ab_glyph`, which needs a font in memory; the DejaVu Sans font is
//! bundled (assets/, Bitstream Vera license) so charts render the same on machines without any
//! system fonts.

use std::path::Path;
use std::sync::Once;

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

/// Draws the chart to `path` (PNG), atomically: to a sibling first, then renamed.
pub fn accuracy_chart(path: &Path, stats: &[BenchmarkStats]) -> Result<(), EvalError> {
    register_font();
    let err = |m: String| EvalError::Plot {
        path: path.to_path_buf(),
        message: m,
    };
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp.png",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
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
