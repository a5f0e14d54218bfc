//! Training curves: reward, accuracy/format, response length and KL/entropy over steps, drawn from
//! a run's per-step metrics (`metrics.jsonl`) as one PNG (`medu1 plot RUN_DIR`, and `curves.png`
//! at the end of training).
//!
//! Drawn the way TensorBoard and wandb draw them, since that is what readers compare against:
//! training series faint with a debiased exponential moving average over them (per-step values
//! of a small batch are noisy enough to hide the trend), validation points (logged only on some
//! steps) as markers with their interval when one was logged, integer step ticks, and legends
//! under each panel instead of over the data. Which panels are drawn is decided by
//! [`select_panels`], a pure function of the metric names present; per-budget-bucket panels are
//! added only when the trainer logged `train/budget/{exact|max}/{lo}-{hi}/{metric}` keys.
//!
//! It lives beside the evaluation charts so both share the bundled font and the atomic PNG write.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::EvalError;
use crate::plot::{
    FixedTicks, LegendEntry, PALETTE, Swatch, legend_height, legend_strip, register_font,
};

/// One metrics record: name → value, with `step`.
pub type Record = BTreeMap<String, f64>;

/// TensorBoard's default smoothing weight.
pub const SMOOTHING: f64 = 0.6;

/// A candidate series: metric name and the title fragment it contributes to its panel.
type Candidate = (&'static str, &'static str);

/// Panels of a supervised warm-up run.
const SFT_PANELS: [&[Candidate]; 4] = [
    &[
        ("sft/loss", "cross-entropy (response tokens)"),
        ("sft/val_loss", "cross-entropy (response tokens)"),
    ],
    &[("sft/lr", "learning rate")],
    &[("sft/grad_norm", "gradient norm (before clipping)")],
    &[("tokens_per_s/train", "training tokens per second")],
];

/// Panels of a GRPO run and the metric names each one draws.
const PANELS: [&[Candidate]; 4] = [
    &[
        ("train/reward/mean", "reward (mean)"),
        ("val/reward/mean", "reward (mean)"),
    ],
    &[
        ("train/accuracy", "accuracy"),
        ("val/accuracy", "accuracy"),
        ("train/format_rate", "format rate"),
        ("val/format_rate", "format rate"),
    ],
    &[
        ("train/response_len/mean", "response length (tokens)"),
        ("train/response_len/max", "response length (tokens)"),
        ("val/response_len/mean", "response length (tokens)"),
    ],
    &[
        ("actor/kl", "KL to reference"),
        ("actor/entropy", "entropy"),
    ],
];

/// Training series are smoothed; validation ones are sparse points drawn as markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesKind {
    Train,
    Val,
}

/// One series of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSpec {
    /// Metric name in the records.
    pub key: String,
    /// Legend label.
    pub label: String,
    pub kind: SeriesKind,
    /// Metric names of the lower and upper bound of an interval around `key`, when both exist.
    pub interval: Option<(String, String)>,
}

/// One panel: its title and the series present in the records.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelSpec {
    pub title: String,
    pub series: Vec<SeriesSpec>,
}

/// A per-budget-bucket training metric name, `train/budget/{mode}/{lo}-{hi}/{metric}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BudgetKey {
    /// `exact` or `max`.
    pub mode: String,
    pub lo: u64,
    pub hi: u64,
    /// `response_len`, `adherence`, `reward` or `rel_error`.
    pub metric: String,
}

/// Parses a per-budget-bucket metric name; `None` for any other name.
pub fn parse_budget_key(key: &str) -> Option<BudgetKey> {
    let mut parts = key.strip_prefix("train/")?.split('/');
    if parts.next()? != "budget" {
        return None;
    }
    let mode = parts.next()?;
    let (lo, hi) = parts.next()?.split_once('-')?;
    let metric = parts.next()?;
    let known = matches!(
        metric,
        "response_len" | "adherence" | "reward" | "rel_error"
    );
    if parts.next().is_some() || !matches!(mode, "exact" | "max") || !known {
        return None;
    }
    Some(BudgetKey {
        mode: mode.to_string(),
        lo: lo.parse().ok()?,
        hi: hi.parse().ok()?,
        metric: metric.to_string(),
    })
}

fn is_val(key: &str) -> bool {
    key.starts_with("val/") || key.contains("/val_")
}

/// "a", "a and b", "a, b and c".
fn join_title(parts: &[&str]) -> String {
    match parts {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn series(key: &str, label: String, names: &BTreeSet<&str>) -> SeriesSpec {
    let (lo, hi) = (format!("{key}/lo"), format!("{key}/hi"));
    let interval = (names.contains(lo.as_str()) && names.contains(hi.as_str())).then_some((lo, hi));
    SeriesSpec {
        key: key.to_string(),
        label,
        kind: if is_val(key) {
            SeriesKind::Val
        } else {
            SeriesKind::Train
        },
        interval,
    }
}

/// The panels to draw for `records`, in grid order (two per row): the four standard panels of a
/// GRPO (or warm-up) run, each titled after the series it actually has (a panel with none keeps
/// the title of all its candidates and is drawn as "no data"), then, only when per-budget-bucket
/// keys exist, "response length by budget bucket" and "adherence by budget bucket" with one series
/// per bucket (ordered by mode, then lower bound).
pub fn select_panels(records: &[Record]) -> Vec<PanelSpec> {
    // Names with at least one finite value: a series of NaNs draws nothing.
    let names: BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r.iter())
        .filter(|(_, v)| v.is_finite())
        .map(|(k, _)| k.as_str())
        .collect();
    let sft = names.contains("sft/loss");
    let base: &[&[Candidate]] = if sft { &SFT_PANELS } else { &PANELS };
    let mut panels = Vec::new();
    for candidates in base {
        let present: Vec<&Candidate> = candidates
            .iter()
            .filter(|(k, _)| names.contains(k))
            .collect();
        let mut fragments: Vec<&str> = Vec::new();
        let from = if present.is_empty() {
            candidates.iter().collect()
        } else {
            present.clone()
        };
        for (_, f) in from {
            if !fragments.contains(f) {
                fragments.push(f);
            }
        }
        panels.push(PanelSpec {
            title: join_title(&fragments),
            series: present
                .iter()
                .map(|(k, _)| series(k, (*k).to_string(), &names))
                .collect(),
        });
    }
    let mut buckets: Vec<(BudgetKey, &str)> = names
        .iter()
        .filter_map(|k| parse_budget_key(k).map(|b| (b, *k)))
        .collect();
    if !buckets.is_empty() {
        // Exact before max, then by bucket bounds.
        buckets.sort_by(|a, b| {
            (a.0.mode != "exact", a.0.lo, a.0.hi).cmp(&(b.0.mode != "exact", b.0.lo, b.0.hi))
        });
        for (metric, title) in [
            ("response_len", "response length by budget bucket (tokens)"),
            ("adherence", "adherence by budget bucket"),
        ] {
            panels.push(PanelSpec {
                title: title.to_string(),
                series: buckets
                    .iter()
                    .filter(|(b, _)| b.metric == metric)
                    .map(|(b, k)| series(k, format!("{} {}-{}", b.mode, b.lo, b.hi), &names))
                    .collect(),
            });
        }
    }
    panels
}

/// TensorBoard's smoothing: an exponential moving average started at 0 and divided by
/// `1 − weight^k` after k values, so the start is not pulled towards 0 (Adam's bias correction).
/// Non-finite values are passed through and do not enter the average.
pub fn ema_debiased(ys: &[f64], weight: f64) -> Vec<f64> {
    let mut last = 0.0;
    let mut k = 0i32;
    ys.iter()
        .map(|&y| {
            if !y.is_finite() {
                return y;
            }
            last = last * weight + (1.0 - weight) * y;
            k += 1;
            let debias = if weight >= 1.0 {
                1.0
            } else {
                1.0 - weight.powi(k)
            };
            last / debias
        })
        .collect()
}

/// Step ticks: integers (steps are counted), 1, 2 or 5 × 10^k apart, about eight of them.
pub fn step_ticks(x0: f64, x1: f64) -> Vec<f64> {
    let span = (x1 - x0).max(1.0);
    let raw = span / 8.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
        .max(1.0)
        .round();
    let mut t = (x0 / step).ceil() * step;
    let mut out = Vec::new();
    while t <= x1 + 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

/// Draws the curves of `records` to `path` (PNG, atomically). Series with no points are skipped;
/// panels with none show "no data".
pub fn training_curves(path: &Path, records: &[Record]) -> Result<(), EvalError> {
    register_font();
    let err = |m: String| EvalError::Plot {
        path: path.to_path_buf(),
        message: m,
    };
    let tmp = crate::plot::temp_png(path);
    let panels = select_panels(records);
    let rows = panels.len().div_ceil(2).max(1);
    {
        let root = BitMapBackend::new(&tmp, (1400, 470 * rows as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let areas = root.split_evenly((rows, 2));
        for (area, spec) in areas.iter().zip(&panels) {
            panel(area, spec, records).map_err(err)?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

/// The finite `(step, value)` points of `key`, in record order.
fn points(records: &[Record], key: &str) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter_map(|r| Some((*r.get("step")?, *r.get(key)?)))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// `(step, lo, hi)` where both bounds were logged.
fn intervals(records: &[Record], lo: &str, hi: &str) -> Vec<(f64, f64, f64)> {
    records
        .iter()
        .filter_map(|r| Some((*r.get("step")?, *r.get(lo)?, *r.get(hi)?)))
        .filter(|(x, l, h)| x.is_finite() && l.is_finite() && h.is_finite())
        .collect()
}

/// A series with its points and its interval bounds (empty without an interval).
type SeriesData<'a> = (&'a SeriesSpec, Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    spec: &PanelSpec,
    records: &[Record],
) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let data: Vec<SeriesData<'_>> = spec
        .series
        .iter()
        .map(|s| {
            let iv = s
                .interval
                .as_ref()
                .map(|(lo, hi)| intervals(records, lo, hi))
                .unwrap_or_default();
            (s, points(records, &s.key), iv)
        })
        .filter(|(_, p, _)| !p.is_empty())
        .collect();
    if data.is_empty() {
        area.titled(&format!("{}: no data", spec.title), ("sans-serif", 20))
            .map_err(e)?;
        return Ok(());
    }
    let mut legend: Vec<LegendEntry> = data
        .iter()
        .enumerate()
        .map(|(i, (s, _, iv))| {
            let color = PALETTE[i % PALETTE.len()];
            match s.kind {
                SeriesKind::Train => (s.label.clone(), color, Swatch::Line),
                SeriesKind::Val if !iv.is_empty() => {
                    (format!("{} (95% CI)", s.label), color, Swatch::Marker)
                }
                SeriesKind::Val => (s.label.clone(), color, Swatch::Marker),
            }
        })
        .collect();
    if data.iter().any(|(s, _, _)| s.kind == SeriesKind::Train) {
        legend.push((
            format!("faint: raw; solid: EMA {SMOOTHING}"),
            BLACK,
            Swatch::Note,
        ));
    }
    let (w, h) = area.dim_in_pixel();
    let strip = legend_height(w, &legend).min(h / 2);
    let (chart_area, legend_area) = area.split_vertically(h - strip);

    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (_, p, iv) in &data {
        for &(x, y) in p {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        for &(_, lo, hi) in iv {
            (y0, y1) = (y0.min(lo), y1.max(hi));
        }
    }
    if x1 <= x0 {
        (x0, x1) = (x0 - 1.0, x1 + 1.0);
    }
    let pad = ((y1 - y0).abs() * 0.08).max(1e-3);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(&spec.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(
            FixedTicks::new(x0..x1, step_ticks(x0, x1)),
            (y0 - pad)..(y1 + pad),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    for (i, (s, p, iv)) in data.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        match s.kind {
            SeriesKind::Train => {
                chart
                    .draw_series(LineSeries::new(p.iter().copied(), color.mix(0.35)))
                    .map_err(e)?;
                if p.len() == 1 {
                    // A line needs two points: a bucket seen at one step would not show at all.
                    chart
                        .draw_series(
                            p.iter()
                                .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
                        )
                        .map_err(e)?;
                }
                let ys: Vec<f64> = p.iter().map(|&(_, y)| y).collect();
                let smooth = ema_debiased(&ys, SMOOTHING);
                chart
                    .draw_series(LineSeries::new(
                        p.iter().zip(smooth).map(|(&(x, _), y)| (x, y)),
                        color.stroke_width(2),
                    ))
                    .map_err(e)?;
            }
            SeriesKind::Val => {
                chart
                    .draw_series(LineSeries::new(p.iter().copied(), color.mix(0.6)))
                    .map_err(e)?;
                for &(x, lo, hi) in iv {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(x, lo), (x, hi)],
                            color.stroke_width(2),
                        )))
                        .map_err(e)?;
                    for y in [lo, hi] {
                        chart
                            .draw_series(std::iter::once(
                                EmptyElement::at((x, y))
                                    + PathElement::new(
                                        vec![(-5, 0), (5, 0)],
                                        color.stroke_width(2),
                                    ),
                            ))
                            .map_err(e)?;
                    }
                }
                chart
                    .draw_series(
                        p.iter()
                            .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
                    )
                    .map_err(e)?;
            }
        }
    }
    legend_strip(&legend_area, &legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

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
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("curves.png");
        training_curves(&p, &recs).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 10_000, "a 1400×940 chart with lines");
        // No temporary sibling is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn titles_name_only_the_series_present() {
        let recs = vec![Record::from([
            ("step".into(), 1.0),
            ("actor/kl".into(), 0.01),
            ("train/accuracy".into(), 0.5),
        ])];
        let panels = select_panels(&recs);
        let titles: Vec<&str> = panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "reward (mean)",
                "accuracy",
                "response length (tokens)",
                "KL to reference"
            ]
        );
        assert!(panels[0].series.is_empty(), "drawn as no data");
        let with_all = vec![Record::from([
            ("step".into(), 1.0),
            ("actor/kl".into(), 0.01),
            ("actor/entropy".into(), 1.2),
            ("train/accuracy".into(), 0.5),
            ("val/format_rate".into(), 0.5),
        ])];
        let panels = select_panels(&with_all);
        assert_eq!(panels[1].title, "accuracy and format rate");
        assert_eq!(panels[3].title, "KL to reference and entropy");
        assert_eq!(panels[1].series[1].kind, SeriesKind::Val);
        // A series of NaNs only (a failed validation) is not "present".
        let nan = vec![Record::from([
            ("step".into(), 1.0),
            ("actor/kl".into(), 0.01),
            ("actor/entropy".into(), f64::NAN),
        ])];
        assert_eq!(select_panels(&nan)[3].title, "KL to reference");
    }

    #[test]
    fn budget_bucket_panels_appear_only_with_their_keys() {
        let mut recs: Vec<Record> = Vec::new();
        for s in 1..=12 {
            let x = s as f64;
            let mut r = Record::from([
                ("step".into(), x),
                ("train/reward/mean".into(), (x * 0.7).sin()),
                ("train/accuracy".into(), 0.3 + 0.02 * x),
                ("train/response_len/mean".into(), 300.0 - 5.0 * x),
                ("actor/kl".into(), 0.001 * x),
                (
                    "train/budget/exact/64-127/response_len".into(),
                    200.0 - 8.0 * x,
                ),
                ("train/budget/exact/64-127/adherence".into(), 0.1 + 0.05 * x),
                (
                    "train/budget/exact/256-511/response_len".into(),
                    350.0 - 2.0 * x,
                ),
                (
                    "train/budget/exact/256-511/adherence".into(),
                    0.2 + 0.03 * x,
                ),
                ("train/budget/max/128-255/response_len".into(), 180.0),
                ("train/budget/max/128-255/adherence".into(), 0.6),
                ("train/budget/exact/64-127/rel_error".into(), 0.5),
            ]);
            // Validation every fourth step, with an interval.
            if s % 4 == 0 {
                r.insert("val/accuracy".into(), 0.4 + 0.01 * x);
                r.insert("val/accuracy/lo".into(), 0.3 + 0.01 * x);
                r.insert("val/accuracy/hi".into(), 0.5 + 0.01 * x);
            }
            recs.push(r);
        }
        let panels = select_panels(&recs);
        assert_eq!(panels.len(), 6, "3×2 with the budget panels");
        assert_eq!(panels[4].title, "response length by budget bucket (tokens)");
        assert_eq!(panels[5].title, "adherence by budget bucket");
        let labels: Vec<&str> = panels[4].series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["exact 64-127", "exact 256-511", "max 128-255"]);
        assert_eq!(
            panels[5].series[0].key,
            "train/budget/exact/64-127/adherence"
        );
        let val = panels[1]
            .series
            .iter()
            .find(|s| s.key == "val/accuracy")
            .unwrap();
        assert_eq!(
            val.interval,
            Some(("val/accuracy/lo".into(), "val/accuracy/hi".into()))
        );
        // Without the bucket keys the layout stays 2×2.
        let plain: Vec<Record> = recs
            .iter()
            .map(|r| {
                r.iter()
                    .filter(|(k, _)| !k.starts_with("train/budget/"))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect()
            })
            .collect();
        assert_eq!(select_panels(&plain).len(), 4);

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("curves.png");
        training_curves(&p, &recs).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // The PNG header's height: three rows of panels.
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!(height, 3 * 470);
    }

    #[test]
    fn budget_keys_parse_strictly() {
        let k = parse_budget_key("train/budget/max/1024-2047/rel_error").unwrap();
        assert_eq!((k.mode.as_str(), k.lo, k.hi), ("max", 1024, 2047));
        assert_eq!(k.metric, "rel_error");
        for bad in [
            "train/budget/exact_abs_err",
            "train/budget/both/64-127/reward",
            "train/budget/exact/64/reward",
            "train/budget/exact/64-127/reward/extra",
            "train/budget/exact/64-127/other",
        ] {
            assert_eq!(parse_budget_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn ema_matches_tensorboard() {
        // By hand with w = 0.6: 0.4/0.4 = 1; (0.24 + 0.8)/0.64 = 1.625; (0.624 + 1.2)/0.784.
        let s = ema_debiased(&[1.0, 2.0, 3.0], 0.6);
        assert!(close(s[0], 1.0) && close(s[1], 1.625), "{s:?}");
        assert!(close(s[2], 1.824 / 0.784), "{s:?}");
        // A constant series stays constant (the debiasing removes the pull towards 0).
        assert!(ema_debiased(&[5.0; 4], 0.6).iter().all(|v| close(*v, 5.0)));
        // NaN passes through without poisoning what follows.
        let s = ema_debiased(&[1.0, f64::NAN, 1.0], 0.6);
        assert!(s[1].is_nan() && close(s[2], 1.0));
        assert_eq!(ema_debiased(&[2.0, 4.0], 0.0), [2.0, 4.0]);
    }

    #[test]
    fn step_ticks_are_integers() {
        assert_eq!(step_ticks(1.0, 5.0), [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(step_ticks(0.0, 90.0), [0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(step_ticks(0.0, 2.0), [0.0, 1.0, 2.0]);
        for t in step_ticks(3.0, 1234.0) {
            assert_eq!(t, t.round());
        }
    }
}
