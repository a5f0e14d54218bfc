//! The numbers of a budget sweep, a pure function of the per-item records: per budget N the
//! response length L against N, format rate and accuracy ([`BudgetRow`]), pooled and per benchmark
//! ([`SweepTable`]), with Spearman and Pearson correlations of N and L. [`crate::sweep`] runs the
//! sweep and writes these; [`crate::sweep_plot`] draws them.

use std::collections::{BTreeMap, HashMap};

use medu1_core::Budget;
use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::metrics::{Z95, median, wilson_interval};
use crate::record::ItemRecord;

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
