//! Budget sweeps: every item evaluated at every length budget N ("Think for N tokens." or "Think
//! for maximum N tokens."), to measure how well a model's response length L follows the budget
//! and what the budget does to accuracy.
//!
//! A sweep is one ordinary [`run`](crate::runner::run) per budget, each in its own folder
//! (`budget-64/`, `budget-max-64/`) with its own per-item log and `run.json`: resuming, the
//! configuration check and the per-budget report come from the runner unchanged, and rerunning the
//! same command continues wherever it stopped. The sweep report (`sweep.json`, `sweep.md`, two
//! PNGs) is then computed by [`sweep_stats`], a pure function of the per-item records.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

use medu1_core::Budget;
use medu1_core::atomic::write_atomic;
use medu1_data::BudgetMode;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::error::EvalError;
use crate::metrics::{Z95, median, wilson_interval};
use crate::runner::{BudgetSpec, ItemRecord, Progress, RunConfig, count_items, run};

pub const JSON_FILE: &str = "sweep.json";
pub const MARKDOWN_FILE: &str = "sweep.md";
pub const LENGTH_PLOT: &str = "length_vs_budget.png";
pub const ACCURACY_PLOT: &str = "accuracy_vs_budget.png";

/// Which budget sentence a sweep uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepMode {
    /// "Think for N tokens." (num_tokens = N).
    Exact,
    /// "Think for maximum N tokens." (num_tokens = −N).
    Max,
}

impl SweepMode {
    /// The reference's integer encoding of budget `n` in this mode.
    pub fn num_tokens(self, n: u64) -> i64 {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        match self {
            SweepMode::Exact => n,
            SweepMode::Max => -n,
        }
    }

    /// The sub-run folder of budget `n`.
    pub fn dir_name(self, n: u64) -> String {
        match self {
            SweepMode::Exact => format!("budget-{n}"),
            SweepMode::Max => format!("budget-max-{n}"),
        }
    }
}

impl std::fmt::Display for SweepMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SweepMode::Exact => "exact",
            SweepMode::Max => "max",
        })
    }
}

impl std::str::FromStr for SweepMode {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<SweepMode, EvalError> {
        match s {
            "exact" => Ok(SweepMode::Exact),
            "max" | "maximum" => Ok(SweepMode::Max),
            _ => Err(EvalError::InvalidSweep(format!(
                "unknown budget mode `{s}` (expected exact or max)"
            ))),
        }
    }
}

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

/// One budget's row of the sweep report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetRow {
    pub mode: SweepMode,
    /// N, in tokens.
    pub budget: u64,
    pub items: usize,
    pub responses: usize,
    /// Response length L in tokens.
    pub tokens_mean: f64,
    pub tokens_median: f64,
    /// |L − N| / N.
    pub rel_error_mean: f64,
    pub rel_error_median: f64,
    /// Share with |L − N| ≤ 0.2 N.
    pub within_20pct: f64,
    /// Share with L ≤ N (the adherence of max mode; reported in both modes).
    pub at_or_under: f64,
    pub format_rate: f64,
    /// mean@n over items, with its 95 % Wilson interval over items (as in the main report).
    pub accuracy: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// The sweep's rows over some set of records, with the rank and linear correlation between N and L
/// over all their responses (`None` when undefined: fewer than two responses, or no spread in N
/// or in L).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepTable {
    /// `None` for all benchmarks together.
    pub benchmark: Option<String>,
    pub rows: Vec<BudgetRow>,
    pub responses: usize,
    pub spearman: Option<f64>,
    pub pearson: Option<f64>,
}

/// The sweep report's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepStats {
    pub all: SweepTable,
    /// One table per benchmark, in the order they first appear in the records.
    pub benchmarks: Vec<SweepTable>,
    /// Records without a length budget (none, or an exact budget of 0), left out.
    pub skipped_items: usize,
}

/// The budget of a record as (mode, N), or `None` where it has no usable one.
fn record_budget(r: &ItemRecord) -> Option<(SweepMode, u64)> {
    match Budget::from_num_tokens(r.num_tokens) {
        Budget::Exact(n) if n > 0 => Some((SweepMode::Exact, n)),
        Budget::Maximum(n) => Some((SweepMode::Max, n)),
        _ => None,
    }
}

/// Ranks 1..=n with ties given the mean of the ranks they span (as `scipy.stats.rankdata`).
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        // Positions i..=j hold ranks i+1..=j+1; their mean is (i + j) / 2 + 1.
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson's r; `None` for fewer than two pairs, a length mismatch, non-finite values or a
/// variable without variance.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 2 || y.len() != n || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Spearman's ρ: Pearson's r of the average ranks (the tie-correct form; the 1 − 6Σd²/… shortcut
/// is only exact without ties, and budgets repeat by construction).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Every response as (N, L), in record order; records without a budget are left out.
pub fn length_points(records: &[&ItemRecord]) -> Vec<(u64, f64)> {
    records
        .iter()
        .filter_map(|r| record_budget(r).map(|(_, n)| (n, r)))
        .flat_map(|(n, r)| r.responses.iter().map(move |x| (n, x.tokens as f64)))
        .collect()
}

fn budget_row(mode: SweepMode, n: u64, records: &[&ItemRecord]) -> BudgetRow {
    let nf = n as f64;
    let (mut tokens, mut rel) = (Vec::new(), Vec::new());
    let (mut within, mut under, mut fmt, mut acc_sum) = (0usize, 0usize, 0usize, 0.0);
    for r in records {
        let m = r.responses.len();
        if m > 0 {
            acc_sum += r.responses.iter().filter(|x| x.correct).count() as f64 / m as f64;
        }
        for x in &r.responses {
            let l = x.tokens as f64;
            tokens.push(l);
            rel.push((l - nf).abs() / nf);
            within += usize::from((l - nf).abs() <= 0.2 * nf);
            under += usize::from(l <= nf);
            fmt += usize::from(x.format_ok);
        }
    }
    let responses = tokens.len();
    let share = |k: usize| {
        if responses == 0 {
            0.0
        } else {
            k as f64 / responses as f64
        }
    };
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let items = records.len();
    let accuracy = if items == 0 {
        0.0
    } else {
        acc_sum / items as f64
    };
    let (ci_low, ci_high) = wilson_interval(accuracy, items as f64, Z95);
    BudgetRow {
        mode,
        budget: n,
        items,
        responses,
        tokens_mean: mean(&tokens),
        rel_error_mean: mean(&rel),
        tokens_median: median(&mut tokens),
        rel_error_median: median(&mut rel),
        within_20pct: share(within),
        at_or_under: share(under),
        format_rate: share(fmt),
        accuracy,
        ci_low,
        ci_high,
    }
}

/// The rows (one per mode and budget, exact first, ascending N) and correlations of `records`.
pub fn sweep_table(benchmark: Option<&str>, records: &[&ItemRecord]) -> SweepTable {
    let mut groups: BTreeMap<(SweepMode, u64), Vec<&ItemRecord>> = BTreeMap::new();
    for r in records {
        if let Some(key) = record_budget(r) {
            groups.entry(key).or_default().push(r);
        }
    }
    let rows: Vec<BudgetRow> = groups
        .iter()
        .map(|(&(mode, n), rs)| budget_row(mode, n, rs))
        .collect();
    let pts = length_points(records);
    let ns: Vec<f64> = pts.iter().map(|&(n, _)| n as f64).collect();
    let ls: Vec<f64> = pts.iter().map(|&(_, l)| l).collect();
    SweepTable {
        benchmark: benchmark.map(str::to_string),
        rows,
        responses: pts.len(),
        spearman: spearman(&ns, &ls),
        pearson: pearson(&ns, &ls),
    }
}

/// The sweep report of `records` (all budgets' records together): all benchmarks pooled, and
/// each benchmark on its own.
pub fn sweep_stats(records: &[ItemRecord]) -> SweepStats {
    let mut order: Vec<&str> = Vec::new();
    let mut by: HashMap<&str, Vec<&ItemRecord>> = HashMap::new();
    let mut all = Vec::with_capacity(records.len());
    let mut skipped_items = 0;
    for r in records {
        if record_budget(r).is_none() {
            skipped_items += 1;
            continue;
        }
        if !by.contains_key(r.benchmark.as_str()) {
            order.push(&r.benchmark);
        }
        by.entry(&r.benchmark).or_default().push(r);
        all.push(r);
    }
    SweepStats {
        all: sweep_table(None, &all),
        benchmarks: order.iter().map(|b| sweep_table(Some(b), &by[b])).collect(),
        skipped_items,
    }
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
