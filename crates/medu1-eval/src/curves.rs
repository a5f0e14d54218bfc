//! Training curves: reward, accuracy/format, response length and KL/entropy over steps, drawn from
//! a run's per-step metrics (`metrics.jsonl`) as one 2×2 PNG (`medu1 plot RUN_DIR`).
//!
//! It lives beside the evaluation charts so both share the bundled font and the atomic PNG write.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::error::EvalError;
use crate::plot::register_font;

/// One metrics record: name → value, with `step`.
pub type Record = BTreeMap<String, f64>;

/// Panels of a supervised warm-up run.
const SFT_PANELS: [(&str, &[&str]); 4] = [
    (
        "cross-entropy (response tokens)",
        &["sft/loss", "sft/val_loss"],
    ),
    ("learning rate", &["sft/lr"]),
    ("gradient norm (before clipping)", &["sft/grad_norm"]),
    ("training tokens per second", &["tokens_per_s/train"]),
];

/// Panels of a GRPO run and the metric names each one draws.
const PANELS: [(&str, &[&str]); 4] = [
    ("reward (mean)", &["train/reward/mean", "val/reward/mean"]),
    (
        "accuracy and format rate",
        &[
            "train/accuracy",
            "val/accuracy",
            "train/format_rate",
            "val/format_rate",
        ],
    ),
    (
        "response length (tokens)",
        &[
            "train/response_len/mean",
            "train/response_len/max",
            "val/response_len/mean",
        ],
    ),
    (
        "KL to reference and entropy",
        &["actor/kl", "actor/entropy"],
    ),
];

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Draws the curves of `records` to `path` (PNG, atomically). Series with no points are skipped;
/// panels with none show "no data".
pub fn training_curves(path: &Path, records: &[Record]) -> Result<(), EvalError> {
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
    {
        let root = BitMapBackend::new(&tmp, (1280, 900)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let areas = root.split_evenly((2, 2));
        let sft = records.iter().any(|r| r.contains_key("sft/loss"));
        let panels = if sft { SFT_PANELS } else { PANELS };
        for (area, (title, names)) in areas.iter().zip(panels) {
            let series: Vec<(&str, Vec<(f64, f64)>)> = names
                .iter()
                .map(|n| {
                    let pts = records
                        .iter()
                        .filter_map(|r| Some((*r.get("step")?, *r.get(*n)?)))
                        .filter(|(_, y)| y.is_finite())
                        .collect();
                    (*n, pts)
                })
                .filter(|(_, p): &(&str, Vec<(f64, f64)>)| !p.is_empty())
                .collect();
            panel(area, title, &series).map_err(err)?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    if series.is_empty() {
        area.titled(&format!("{title}: no data"), ("sans-serif", 20))
            .map_err(e)?;
        return Ok(());
    }
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0).abs() * 0.08).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    for (i, (name, p)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(p.iter().copied(), color.stroke_width(2)))
            .map_err(e)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        if p.len() <= 40 {
            chart
                .draw_series(
                    p.iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
                )
                .map_err(e)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_from_records() {
        let recs: Vec<Record> = (1..=5)
            .map(|s| {
                Record::from([
                    ("step".into(), s as f64),
                    ("train/reward/mean".into(), -1.0 + 0.3 * s as f64),
                    ("actor/kl".into(), 0.001 * s as f64),
                ])
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("medu1-curves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("curves.png");
        training_curves(&p, &recs).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 10_000, "a 1280×900 chart with lines");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
