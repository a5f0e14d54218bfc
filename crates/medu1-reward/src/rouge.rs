//! Rouge-L F1 (`MUT.compute_rouge_l`, §2.12) on normalised words, 0–100 scale: an offline
//! evaluation metric only, never part of the training reward.

use crate::hash::Interner;

/// The word cap on Rouge-L inputs used by `medu1 score` and `medu1 serve` unless set otherwise:
/// the longest-common-subsequence table grows with the product of the two lengths, so 10,000
/// words a side bounds one sample to 10^8 cells (tens of milliseconds), while a hostile
/// 120,000-word answer against as long a ground truth would take seconds. The longest golden
/// case is far below it, so the reference profile's results are unchanged.
pub const DEFAULT_MAX_ROUGE_WORDS: usize = 10_000;
use crate::normalize::Normalized;

/// Length of the longest common subsequence of two id sequences (one-row DP).
fn lcs(a: &[u32], b: &[u32]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for &x in a {
        let mut diag = 0;
        for (j, &y) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if x == y { diag + 1 } else { up.max(row[j]) };
            diag = up;
        }
    }
    row[b.len()]
}

/// Rouge-L of two normalised inputs (candidate, reference), β = 1.
pub fn rouge_l_normalized(candidate: &Normalized, reference: &Normalized) -> f64 {
    if candidate.is_empty() || reference.is_empty() {
        return 0.0;
    }
    let mut t = Interner::with_capacity(candidate.len() + reference.len());
    let c: Vec<u32> = candidate.words().map(|w| t.intern(w).0).collect();
    let r: Vec<u32> = reference.words().map(|w| t.intern(w).0).collect();
    let l = lcs(&c, &r) as f64;
    let p = l / c.len() as f64;
    let rc = l / r.len() as f64;
    if p + rc == 0.0 {
        return 0.0;
    }
    let beta2 = 1.0f64;
    let f = ((1.0 + beta2) * p * rc) / (rc + beta2 * p);
    100.0 * f
}

/// `compute_rouge_l(candidate, reference)`.
pub fn compute_rouge_l(candidate: &str, reference: &str) -> f64 {
    let mut c = Normalized::new();
    let mut r = Normalized::new();
    c.normalize(candidate);
    r.normalize(reference);
    rouge_l_normalized(&c, &r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_based_f1() {
        assert_eq!(compute_rouge_l("heart failure", "heart failure"), 100.0);
        assert_eq!(compute_rouge_l("x y", "z"), 0.0);
        assert_eq!(compute_rouge_l("", "z"), 0.0);
        // LCS("a b c d", "a c d e") = 3 words ("b"/"e" survive normalisation, "a" is an article).
        let v = compute_rouge_l("x b c d", "x c d e");
        assert!((v - 75.0).abs() < 1e-12, "{v}");
    }
}
