//! The two charts of a budget sweep: response length against budget (every response, the median
//! per budget, and the y = x line a perfectly obedient model would sit on) and accuracy against
//! budget (with Wilson intervals, and the format rate beside it).
//!
//! Budgets are usually powers of two, so the x axis is log2 when they span a factor of 8 or more
//! (the budgets then sit evenly spaced) and linear otherwise; either way the ticks are exactly the
//! budgets.

use std::path::Path;

use plotters::prelude::*;

use crate::error::EvalError;
use crate::plot::{
    FixedTicks, LegendEntry, PALETTE, Swatch, legend_height, legend_strip, register_font, temp_png,
};
use crate::sweep_stats::{SweepMode, SweepTable};

/// Where budgets go on the x axis.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    log2: bool,
}

impl Axis {
    fn for_budgets(budgets: &[u64]) -> Axis {
        let lo = budgets.iter().copied().min().unwrap_or(1).max(1);
        let hi = budgets.iter().copied().max().unwrap_or(1);
        Axis { log2: hi >= 8 * lo }
    }
    fn x(self, n: f64) -> f64 {
        if self.log2 { n.max(1.0).log2() } else { n }
    }
    fn budget(self, x: f64) -> f64 {
        if self.log2 { x.exp2() } else { x }
    }
    /// The x range around the budgets' positions, with a margin of half the smallest gap (so the
    /// jittered points of the first and last budget stay inside).
    fn range(self, budgets: &[u64]) -> (f64, f64, f64) {
        let xs: Vec<f64> = budgets.iter().map(|&b| self.x(b as f64)).collect();
        let (lo, hi) = (xs[0], xs[xs.len() - 1]);
        let gap = xs
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min);
        let gap = if gap.is_finite() && gap > 0.0 {
            gap
        } else {
            (lo.abs() * 0.2).max(1.0)
        };
        (lo - gap / 2.0, hi + gap / 2.0, gap)
    }
}

/// A jitter in [−0.5, 0.5) from the point's index, deterministic so a chart redraws identically.
fn jitter(i: usize) -> f64 {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

fn plot_err(path: &Path) -> impl Fn(String) -> EvalError + '_ {
    move |message| EvalError::Plot {
        path: path.to_path_buf(),
        message,
    }
}

/// The y axis of a sweep chart.
struct YAxis {
    range: std::ops::Range<f64>,
    /// Width of the label area, in pixels.
    label_area: u32,
    desc: &'static str,
}

/// A chart over the budgets (ticks exactly at them, labelled with the budget on either scale)
/// with its mesh drawn: the frame both sweep charts share.
fn budget_chart<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    axis: Axis,
    budgets: &[u64],
    (x0, x1): (f64, f64),
    y: YAxis,
) -> Result<
    ChartContext<
        'a,
        BitMapBackend<'b>,
        Cartesian2d<FixedTicks, plotters::coord::types::RangedCoordf64>,
    >,
    String,
> {
    let ticks: Vec<f64> = budgets.iter().map(|&b| axis.x(b as f64)).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(y.label_area)
        .build_cartesian_2d(FixedTicks::new(x0..x1, ticks), y.range)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(if axis.log2 {
            "budget N (tokens, log2 scale)"
        } else {
            "budget N (tokens)"
        })
        .y_desc(y.desc)
        .x_label_formatter(&|x| format!("{:.0}", axis.budget(*x)))
        // Tokens and percentages: whole numbers read better than "250.0".
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// `length_vs_budget.png`: every response as a faint point at (N, L), jittered sideways, the
/// median length per budget as a line with markers, and the dashed y = x line (labelled "budget"
/// in max mode, where it is the ceiling rather than the target).
pub fn length_vs_budget(
    path: &Path,
    table: &SweepTable,
    points: &[(u64, f64)],
) -> Result<(), EvalError> {
    register_font();
    let err = plot_err(path);
    let budgets: Vec<u64> = table.rows.iter().map(|r| r.budget).collect();
    if budgets.is_empty() {
        return Err(err("no budgets to plot".into()));
    }
    let axis = Axis::for_budgets(&budgets);
    let (x0, x1, gap) = axis.range(&budgets);
    let y_max = points
        .iter()
        .map(|&(_, l)| l)
        .chain(budgets.iter().map(|&b| b as f64))
        .fold(1.0, f64::max)
        * 1.05;
    let max_mode = table.rows.iter().all(|r| r.mode == SweepMode::Max);
    let diag = if max_mode {
        "budget (L = N)"
    } else {
        "y = x (L = N)"
    };
    let legend: Vec<LegendEntry> = vec![
        ("response (jittered)".into(), PALETTE[0], Swatch::Dot),
        ("median length".into(), PALETTE[1], Swatch::Marker),
        (diag.into(), BLACK, Swatch::Dashed),
    ];
    let tmp = temp_png(path);
    {
        let root = BitMapBackend::new(&tmp, (900, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let strip = legend_height(900, &legend);
        let (chart_area, legend_area) = root.split_vertically(640 - strip);
        let caption = format!(
            "Response length vs {} budget",
            if max_mode { "maximum" } else { "exact" }
        );
        let y = YAxis {
            range: 0f64..y_max,
            label_area: 64,
            desc: "response length L (tokens)",
        };
        let mut chart =
            budget_chart(&chart_area, &caption, axis, &budgets, (x0, x1), y).map_err(&err)?;
        let faint = PALETTE[0].mix(0.3).filled();
        chart
            .draw_series(points.iter().enumerate().map(|(i, &(n, l))| {
                Circle::new((axis.x(n as f64) + 0.3 * gap * jitter(i), l), 2, faint)
            }))
            .map_err(|e| err(e.to_string()))?;
        // The diagonal, sampled: on a log2 x axis L = N is a curve.
        let diag_pts: Vec<(f64, f64)> = (0..=120)
            .map(|k| x0 + (x1 - x0) * f64::from(k) / 120.0)
            .map(|x| (x, axis.budget(x)))
            .filter(|&(_, y)| y <= y_max)
            .collect();
        chart
            .draw_series(DashedLineSeries::new(diag_pts, 8, 6, BLACK.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?;
        let med: Vec<(f64, f64)> = table
            .rows
            .iter()
            .map(|r| (axis.x(r.budget as f64), r.tokens_median))
            .collect();
        chart
            .draw_series(LineSeries::new(med.clone(), PALETTE[1].stroke_width(3)))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(med.iter().map(|&p| Circle::new(p, 6, PALETTE[1].filled())))
            .map_err(|e| err(e.to_string()))?;
        legend_strip(&legend_area, &legend).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(EvalError::io(path))
}

/// `accuracy_vs_budget.png`: accuracy per budget with its 95 % Wilson interval as error bars, and
/// the format rate as a second series.
pub fn accuracy_vs_budget(path: &Path, table: &SweepTable) -> Result<(), EvalError> {
    register_font();
    let err = plot_err(path);
    let budgets: Vec<u64> = table.rows.iter().map(|r| r.budget).collect();
    if budgets.is_empty() {
        return Err(err("no budgets to plot".into()));
    }
    let axis = Axis::for_budgets(&budgets);
    let (x0, x1, _) = axis.range(&budgets);
    let (acc_c, fmt_c) = (PALETTE[0], PALETTE[2]);
    let legend: Vec<LegendEntry> = vec![
        ("accuracy (95% Wilson CI)".into(), acc_c, Swatch::Marker),
        ("format rate".into(), fmt_c, Swatch::Marker),
    ];
    let tmp = temp_png(path);
    {
        let root = BitMapBackend::new(&tmp, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let strip = legend_height(900, &legend);
        let (chart_area, legend_area) = root.split_vertically(600 - strip);
        let y = YAxis {
            range: 0f64..100f64,
            label_area: 56,
            desc: "%",
        };
        let caption = "Accuracy and format rate vs budget";
        let mut chart =
            budget_chart(&chart_area, caption, axis, &budgets, (x0, x1), y).map_err(&err)?;
        let pts = |f: &dyn Fn(&crate::sweep_stats::BudgetRow) -> f64| -> Vec<(f64, f64)> {
            table
                .rows
                .iter()
                .map(|r| (axis.x(r.budget as f64), 100.0 * f(r)))
                .collect()
        };
        let fmt = pts(&|r| r.format_rate);
        chart
            .draw_series(LineSeries::new(fmt.clone(), fmt_c.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(fmt.iter().map(|&p| Circle::new(p, 5, fmt_c.filled())))
            .map_err(|e| err(e.to_string()))?;
        // Error bars by hand, as in the accuracy bar chart (plotters' `ErrorBar` needs a feature
        // the workspace does not enable).
        let whisker = acc_c.stroke_width(2);
        for r in &table.rows {
            let x = axis.x(r.budget as f64);
            let (lo, hi) = (100.0 * r.ci_low, 100.0 * r.ci_high);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, lo), (x, hi)],
                    whisker,
                )))
                .map_err(|e| err(e.to_string()))?;
            for y in [lo, hi] {
                chart
                    .draw_series(std::iter::once(
                        EmptyElement::at((x, y)) + PathElement::new(vec![(-7, 0), (7, 0)], whisker),
                    ))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        let acc = pts(&|r| r.accuracy);
        chart
            .draw_series(LineSeries::new(acc.clone(), acc_c.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(acc.iter().map(|&p| Circle::new(p, 6, acc_c.filled())))
            .map_err(|e| err(e.to_string()))?;
        legend_strip(&legend_area, &legend).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(EvalError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_is_log2_for_geometric_budgets_and_ticks_map_back() {
        let a = Axis::for_budgets(&[32, 64, 128, 256]);
        assert!(a.log2);
        assert_eq!(a.x(64.0), 6.0);
        assert_eq!(format!("{:.0}", a.budget(a.x(256.0))), "256");
        let (lo, hi, gap) = a.range(&[32, 64, 128, 256]);
        assert_eq!((lo, hi, gap), (4.5, 8.5, 1.0));
        let l = Axis::for_budgets(&[100, 200, 300]);
        assert!(!l.log2);
        assert_eq!(l.range(&[100, 200, 300]), (50.0, 350.0, 100.0));
        // One budget still gets a non-empty range.
        let (lo, hi, _) = l.range(&[64]);
        assert!(lo < 64.0 && hi > 64.0);
    }

    #[test]
    fn jitter_stays_in_its_band() {
        for i in 0..1000 {
            let j = jitter(i);
            assert!((-0.5..0.5).contains(&j), "{j}");
        }
        assert_ne!(jitter(1), jitter(2));
    }
}
