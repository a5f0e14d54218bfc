//! Aggregation of per-item results into the numbers of the report.
//!
//! With n samples per item, accuracy is mean@n (each item's fraction of correct samples, averaged
//! over items) and its 95 % Wilson interval is taken over items, not over the n·items responses:
//! samples of one item are correlated, and counting them as independent trials would make the
//! interval look n times more certain than it is.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::record::ItemRecord;

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of a proportion `p` observed over `n` trials (`p` may be a mean of
/// per-item fractions, i.e. a non-integer success count). `(0, 1)` when `n` is 0.
pub fn wilson_interval(p: f64, n: f64, z: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The unbiased pass@k estimator `1 − C(n−c, k) / C(n, k)` (Chen et al. 2021), computed as a
/// product to stay exact for large n.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    assert!(
        k >= 1 && k <= n && c <= n,
        "pass@k needs 1 <= k <= n and c <= n"
    );
    if n - c < k {
        return 1.0;
    }
    let mut prod = 1.0;
    for i in (n - c + 1)..=n {
        prod *= 1.0 - k as f64 / i as f64;
    }
    1.0 - prod
}

/// The k values reported for n samples: 1, powers of two below n, and n.
pub fn pass_ks(n: usize) -> Vec<usize> {
    let mut ks = vec![1];
    let mut k = 2;
    while k < n {
        ks.push(k);
        k *= 2;
    }
    if n > 1 {
        ks.push(n);
    }
    ks
}

/// Majority vote over the extracted answers of one item: the most frequent non-empty answer
/// (ties go to the one seen first) and whether the samples giving it were graded correct.
/// `false` when no sample produced an answer.
pub fn majority_correct(answers: &[(Option<&str>, bool)]) -> bool {
    let mut counts: Vec<(&str, usize, bool)> = Vec::new();
    for (a, ok) in answers {
        let Some(a) = a.map(str::trim).filter(|a| !a.is_empty()) else {
            continue;
        };
        match counts.iter_mut().find(|(x, _, _)| *x == a) {
            Some(e) => e.1 += 1,
            None => counts.push((a, 1, *ok)),
        }
    }
    let mut best: Option<(usize, bool)> = None;
    for (_, c, ok) in &counts {
        if best.is_none_or(|(bc, _)| *c > bc) {
            best = Some((*c, *ok));
        }
    }
    best.is_some_and(|(_, ok)| ok)
}

/// How closely responses followed their length budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetStats {
    /// Responses with an exact budget ("Think for N tokens.").
    pub exact_responses: usize,
    /// Mean of |L − N| / N over them.
    pub exact_mean_rel_error: f64,
    /// Fraction with |L − N| ≤ 0.2 N.
    pub exact_within_20pct: f64,
    /// Responses with a maximum budget ("Think for maximum N tokens.").
    pub max_responses: usize,
    /// Fraction with L ≤ N.
    pub max_adherence: f64,
}

/// One benchmark's row of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkStats {
    pub benchmark: String,
    /// The concrete rule(s), e.g. `medu1-eval letter`.
    pub rule: String,
    pub items: usize,
    pub n: usize,
    /// mean@n.
    pub accuracy: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// pass@k for [`pass_ks`]`(n)`.
    pub pass_at_k: BTreeMap<usize, f64>,
    /// maj@n (equals accuracy-of-first-sample semantics only when n = 1).
    pub maj_at_n: f64,
    /// Fraction of responses in Med-U1's think/answer format.
    pub format_compliance: f64,
    /// Fraction of responses with an extracted answer.
    pub answered: f64,
    /// Fraction of responses cut by the token limit.
    pub truncated: f64,
    pub tokens_mean: f64,
    pub tokens_median: f64,
    /// Mean Med-U1 training reward over responses where it is defined.
    pub train_reward_mean: Option<f64>,
    /// Responses that failed: a request the server rejected, or a grading error (counted wrong).
    pub grading_errors: usize,
    pub budget: Option<BudgetStats>,
}

/// The median (mean of the two middle values for an even count); 0 for no values.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Aggregates the records of one benchmark (all of them must have the same number of responses).
pub fn benchmark_stats(name: &str, records: &[&ItemRecord]) -> BenchmarkStats {
    let n = records.first().map_or(0, |r| r.responses.len());
    let items = records.len();
    let mut rules: Vec<&str> = Vec::new();
    let (mut mean_sum, mut maj_sum) = (0.0, 0.0);
    let ks = pass_ks(n.max(1));
    let mut pass: BTreeMap<usize, f64> = ks.iter().map(|&k| (k, 0.0)).collect();
    let (mut fmt, mut answered, mut trunc, mut errors, mut responses) = (0, 0, 0, 0, 0usize);
    let mut tokens: Vec<f64> = Vec::new();
    let (mut rew_sum, mut rew_n) = (0.0, 0usize);
    let (mut ex_n, mut ex_err, mut ex_within, mut mx_n, mut mx_ok) = (0, 0.0, 0, 0, 0);
    for r in records {
        if !rules.contains(&r.rule.as_str()) {
            rules.push(&r.rule);
        }
        let c = r.responses.iter().filter(|x| x.correct).count();
        let m = r.responses.len();
        if m > 0 {
            mean_sum += c as f64 / m as f64;
            for &k in &ks {
                if k <= m {
                    *pass.get_mut(&k).expect("k listed") += pass_at_k(m, c, k);
                }
            }
        }
        let votes: Vec<(Option<&str>, bool)> = r
            .responses
            .iter()
            .map(|x| (x.extracted.as_deref(), x.correct))
            .collect();
        if majority_correct(&votes) {
            maj_sum += 1.0;
        }
        for x in &r.responses {
            responses += 1;
            fmt += usize::from(x.format_ok);
            answered += usize::from(x.extracted.as_deref().is_some_and(|a| !a.is_empty()));
            trunc += usize::from(x.finish == medu1_core::FinishReason::Length);
            errors += usize::from(x.error.is_some());
            tokens.push(x.tokens as f64);
            if let Some(v) = x.train_reward {
                rew_sum += v;
                rew_n += 1;
            }
            let l = x.tokens as f64;
            match medu1_core::Budget::from_num_tokens(r.num_tokens) {
                medu1_core::Budget::Exact(b) if b > 0 => {
                    let b = b as f64;
                    ex_n += 1;
                    ex_err += (l - b).abs() / b;
                    ex_within += usize::from((l - b).abs() <= 0.2 * b);
                }
                medu1_core::Budget::Maximum(b) => {
                    mx_n += 1;
                    mx_ok += usize::from(l <= b as f64);
                }
                _ => {}
            }
        }
    }
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let accuracy = if items == 0 {
        0.0
    } else {
        mean_sum / items as f64
    };
    let (ci_low, ci_high) = wilson_interval(accuracy, items as f64, Z95);
    let tokens_mean = if tokens.is_empty() {
        0.0
    } else {
        tokens.iter().sum::<f64>() / tokens.len() as f64
    };
    BenchmarkStats {
        benchmark: name.to_string(),
        rule: rules.join(", "),
        items,
        n,
        accuracy,
        ci_low,
        ci_high,
        pass_at_k: pass
            .into_iter()
            .map(|(k, v)| (k, if items == 0 { 0.0 } else { v / items as f64 }))
            .collect(),
        maj_at_n: if items == 0 {
            0.0
        } else {
            maj_sum / items as f64
        },
        format_compliance: frac(fmt, responses),
        answered: frac(answered, responses),
        truncated: frac(trunc, responses),
        tokens_median: median(&mut tokens),
        tokens_mean,
        train_reward_mean: (rew_n > 0).then(|| rew_sum / rew_n as f64),
        grading_errors: errors,
        budget: (ex_n + mx_n > 0).then(|| BudgetStats {
            exact_responses: ex_n,
            exact_mean_rel_error: if ex_n == 0 { 0.0 } else { ex_err / ex_n as f64 },
            exact_within_20pct: frac(ex_within, ex_n),
            max_responses: mx_n,
            max_adherence: frac(mx_ok, mx_n),
        }),
    }
}

/// Groups records by benchmark, in the given benchmark order.
pub fn all_stats(order: &[String], records: &[ItemRecord]) -> Vec<BenchmarkStats> {
    let mut by: HashMap<&str, Vec<&ItemRecord>> = HashMap::new();
    for r in records {
        by.entry(r.benchmark.as_str()).or_default().push(r);
    }
    order
        .iter()
        .map(|b| benchmark_stats(b, by.get(b.as_str()).map_or(&[][..], Vec::as_slice)))
        .collect()
}
