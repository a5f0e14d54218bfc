//! Budget sweeps: every item evaluated at every length budget N ("Think for N tokens." or "Think
//! for maximum N tokens."), to measure how well a model's response length L follows the budget
//! and what the budget does to accuracy.
//!
//! A sweep is one ordinary [`run`](crate::runner::run) per budget, each in its own folder
//! (`budget-64/`, `budget-max-64/`) with its own per-item log and `run.json`: resuming, the
//! configuration check and the per-budget report come from the runner unchanged, and rerunning the
//! same command continues wherever it stopped. The sweep report (`sweep.json`, `sweep.md`, two
//! PNGs) is then computed by [`sweep_stats`], a pure function of the per-item records.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use medu1_core::atomic::write_atomic;
use medu1_data::BudgetMode;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::error::EvalError;
use crate::record::ItemRecord;
use crate::runner::{BudgetSpec, Progress, RunConfig, count_items, run};
pub use crate::sweep_stats::{
    BudgetRow, SweepMode, SweepStats, SweepTable, average_ranks, length_points, pearson, spearman,
    sweep_stats, sweep_table,
};

pub const JSON_FILE: &str = "sweep.json";
pub const MARKDOWN_FILE: &str = "sweep.md";
pub const LENGTH_PLOT: &str = "length_vs_budget.png";
pub const ACCURACY_PLOT: &str = "accuracy_vs_budget.png";

/// The budgets of a sweep, ascending and distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    budgets: Vec<u64>,
    mode: SweepMode,
}

impl Sweep {
    /// Checks the budgets (sorted, duplicates dropped): at least one; at least 1 token, and at
    /// least 2 in max mode, where num_tokens = −1 would mean "no budget sentence".
    pub fn new(mut budgets: Vec<u64>, mode: SweepMode) -> Result<Sweep, EvalError> {
        budgets.sort_unstable();
        budgets.dedup();
        let min = if mode == SweepMode::Max { 2 } else { 1 };
        match budgets.first() {
            None => Err(EvalError::InvalidSweep("no budgets given".into())),
            Some(&b) if b < min => Err(EvalError::InvalidSweep(format!(
                "budget {b} is too small for {mode} mode (at least {min} tokens)"
            ))),
            Some(_) => Ok(Sweep { budgets, mode }),
        }
    }

    pub fn budgets(&self) -> &[u64] {
        &self.budgets
    }

    pub fn mode(&self) -> SweepMode {
        self.mode
    }
}

/// Progress across a whole sweep, for one progress bar.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepProgress<'a> {
    pub budget: u64,
    pub benchmark: &'a str,
    /// Item evaluations finished across the sweep (including resumed ones).
    pub done: usize,
    /// Item evaluations in the whole sweep: items × budgets.
    pub total: usize,
}

/// The files a sweep wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPaths {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub length_plot: Option<PathBuf>,
    pub accuracy_plot: Option<PathBuf>,
    /// One folder per budget, in budget order.
    pub runs: Vec<PathBuf>,
}

/// What [`run_sweep`] produced.
#[derive(Debug, Clone)]
pub struct SweepSummary {
    pub stats: SweepStats,
    pub paths: SweepPaths,
    /// Item evaluations taken from earlier runs.
    pub resumed: usize,
    /// Item evaluations generated now.
    pub generated: usize,
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn corr(x: Option<f64>) -> String {
    x.map_or_else(|| "undefined".to_string(), |v| format!("{v:.3}"))
}

fn table_markdown(s: &mut String, t: &SweepTable) {
    let _ = writeln!(
        s,
        "| budget N | items | responses | tokens mean | tokens median | mean rel. error | \
         median rel. error | within ±20 % | ≤ N % | format % | accuracy % (95% CI) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in &t.rows {
        let mode = if r.mode == SweepMode::Max { "max " } else { "" };
        let _ = writeln!(
            s,
            "| {mode}{} | {} | {} | {:.1} | {:.1} | {:.3} | {:.3} | {} | {} | {} | {} ({}–{}) |",
            r.budget,
            r.items,
            r.responses,
            r.tokens_mean,
            r.tokens_median,
            r.rel_error_mean,
            r.rel_error_median,
            pct(r.within_20pct),
            pct(r.at_or_under),
            pct(r.format_rate),
            pct(r.accuracy),
            pct(r.ci_low),
            pct(r.ci_high)
        );
    }
    let _ = writeln!(
        s,
        "\nBudget N vs response length L over {} responses: Spearman ρ = {}, Pearson r = {}.",
        t.responses,
        corr(t.spearman),
        corr(t.pearson)
    );
}

/// What the sweep report says about how it was produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepMeta {
    pub backend: String,
    pub mode: SweepMode,
    pub budgets: Vec<u64>,
    /// Samples per item.
    pub n: usize,
    pub limit: Option<usize>,
    /// The per-budget run folders, relative to the sweep folder.
    pub runs: Vec<String>,
}

/// The markdown report (also what the CLI prints).
pub fn markdown(meta: &SweepMeta, stats: &SweepStats) -> String {
    let mut s = String::from("# medu1 budget sweep\n\n");
    let sentence = match meta.mode {
        SweepMode::Exact => "Think for N tokens.",
        SweepMode::Max => "Think for maximum N tokens.",
    };
    let budgets: Vec<String> = meta.budgets.iter().map(u64::to_string).collect();
    let _ = writeln!(s, "- backend: `{}`", meta.backend);
    let _ = writeln!(
        s,
        "- budgets N = {} (\"{sentence}\"), {} sample(s) per item{}",
        budgets.join(", "),
        meta.n,
        meta.limit
            .map_or_else(String::new, |l| format!(", first {l} items per benchmark"))
    );
    let _ = writeln!(
        s,
        "- per-budget runs (items.jsonl, report.md): {}\n",
        meta.runs
            .iter()
            .map(|r| format!("`{r}/`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if stats.benchmarks.len() > 1 {
        s.push_str("## All benchmarks\n\n");
    }
    table_markdown(&mut s, &stats.all);
    if stats.benchmarks.len() > 1 {
        for t in &stats.benchmarks {
            let _ = writeln!(s, "\n## {}\n", t.benchmark.as_deref().unwrap_or("?"));
            table_markdown(&mut s, t);
        }
    }
    if stats.skipped_items > 0 {
        let _ = writeln!(
            s,
            "\n{} records without a length budget were left out.",
            stats.skipped_items
        );
    }
    let _ = writeln!(
        s,
        "\nRelative error is |L − N| / N with L the response's token count; accuracy is mean@n \
         with Wilson's interval over items; correlations are over all responses (ranks averaged \
         over ties)."
    );
    s
}

#[derive(Serialize)]
struct JsonReport<'a> {
    meta: &'a SweepMeta,
    #[serde(flatten)]
    stats: &'a SweepStats,
}

/// Runs (or resumes) every budget of `sweep` over the benchmarks of `cfg` (whose `out_dir` is the
/// sweep's folder; its `budget` is replaced by each fixed budget in turn) and writes the sweep
/// report. `on_progress` is called after every batch of every sub-run.
pub fn run_sweep(
    backend: &dyn Backend,
    mut cfg: RunConfig,
    sweep: &Sweep,
    on_progress: &mut dyn FnMut(&SweepProgress<'_>),
) -> Result<SweepSummary, EvalError> {
    let root = cfg.out_dir.clone();
    let plot = cfg.plot;
    // The sweep's own charts replace each sub-run's accuracy bar chart.
    cfg.plot = false;
    let per_budget = count_items(&cfg)?;
    let total = per_budget * sweep.budgets.len();
    let (mut records, mut runs) = (Vec::new(), Vec::new());
    let (mut resumed, mut generated) = (0, 0);
    for (i, &n) in sweep.budgets.iter().enumerate() {
        let dir = sweep.mode.dir_name(n);
        cfg.out_dir = root.join(&dir);
        cfg.budget = BudgetSpec::Mode(BudgetMode::Fixed(sweep.mode.num_tokens(n)));
        let before = i * per_budget;
        let mut done: HashMap<String, usize> = HashMap::new();
        let s = run(backend, &cfg, &mut |p: &Progress<'_>| {
            done.insert(p.benchmark.to_string(), p.done);
            on_progress(&SweepProgress {
                budget: n,
                benchmark: p.benchmark,
                done: before + done.values().sum::<usize>(),
                total,
            });
        })?;
        resumed += s.resumed;
        generated += s.generated;
        records.extend(s.records);
        runs.push(dir);
    }
    let stats = sweep_stats(&records);
    let meta = SweepMeta {
        backend: backend.describe(),
        mode: sweep.mode,
        budgets: sweep.budgets.clone(),
        n: cfg.n,
        limit: cfg.limit,
        runs: runs.clone(),
    };
    let paths = SweepPaths {
        json: root.join(JSON_FILE),
        markdown: root.join(MARKDOWN_FILE),
        length_plot: plot.then(|| root.join(LENGTH_PLOT)),
        accuracy_plot: plot.then(|| root.join(ACCURACY_PLOT)),
        runs: runs.iter().map(|r| root.join(r)).collect(),
    };
    let json = serde_json::to_vec_pretty(&JsonReport {
        meta: &meta,
        stats: &stats,
    })
    .expect("sweep report serializes");
    write_atomic(&paths.json, &json).map_err(EvalError::io(&paths.json))?;
    write_atomic(&paths.markdown, markdown(&meta, &stats).as_bytes())
        .map_err(EvalError::io(&paths.markdown))?;
    if let (Some(lp), Some(ap)) = (&paths.length_plot, &paths.accuracy_plot) {
        let all: Vec<&ItemRecord> = records.iter().collect();
        crate::sweep_plot::length_vs_budget(lp, &stats.all, &length_points(&all))?;
        crate::sweep_plot::accuracy_vs_budget(ap, &stats.all)?;
    }
    Ok(SweepSummary {
        stats,
        paths,
        resumed,
        generated,
    })
}
