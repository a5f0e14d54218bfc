//! BLEU as the reference computes it (§2.5): the mean of nltk `sentence_bleu` BLEU-1, -2 and -3
//! (one-hot weights, `SmoothingFunction().method1`), each rounded to 4 decimals, on a 0–1 scale.
//!
//! Tokens are Python `str.split()` words, case-sensitive, not normalised. N-gram counts are done on
//! interned word ids packed into integers and sorted, so clipping is a merge of two sorted lists.

use crate::hash::Interner;
use crate::py_split;

/// nltk's `method1` epsilon.
const EPSILON: f64 = 0.1;

/// The per-order values and their mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bleu {
    /// `[BLEU-1, BLEU-2, BLEU-3]`, each rounded to 4 decimals.
    pub ngram: [f64; 3],
    /// `(b1 + b2 + b3) / 3`.
    pub mean: f64,
}

/// Python `round(x, 4)`: half-to-even on the exact binary value, via correctly rounded decimal
/// formatting (Rust's `{:.4}` formats the exact value and rounds ties to even).
pub fn py_round4(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.4}").parse().unwrap_or(x)
}

/// Sorted n-gram keys (word ids packed 32 bits each) of order `n`.
fn ngrams(ids: &[u32], n: usize, out: &mut Vec<u128>) {
    out.clear();
    if ids.len() >= n {
        out.extend(
            ids.windows(n)
                .map(|w| w.iter().fold(0u128, |k, &id| (k << 32) | id as u128)),
        );
    }
    out.sort_unstable();
}

/// `Σ_g min(count_H(g), count_R(g))` over two sorted key lists.
fn clipped_matches(h: &[u128], r: &[u128]) -> usize {
    let (mut i, mut j, mut m) = (0, 0, 0);
    while i < h.len() && j < r.len() {
        match h[i].cmp(&r[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                let k = h[i];
                let (i0, j0) = (i, j);
                while i < h.len() && h[i] == k {
                    i += 1;
                }
                while j < r.len() && r[j] == k {
                    j += 1;
                }
                m += (i - i0).min(j - j0);
            }
        }
    }
    m
}

/// `compute_bleu(reference, prediction)`.
pub fn compute_bleu(reference: &str, prediction: &str) -> Bleu {
    let r_words: Vec<&str> = py_split(reference).collect();
    let h_words: Vec<&str> = py_split(prediction).collect();
    let mut table = Interner::with_capacity(r_words.len() + h_words.len());
    let r: Vec<u32> = r_words.iter().map(|w| table.intern(w).0).collect();
    let h: Vec<u32> = h_words.iter().map(|w| table.intern(w).0).collect();
    let (rl, hl) = (r.len(), h.len());

    let mut m = [0usize; 3];
    let mut c = [0usize; 3];
    let (mut hg, mut rg) = (Vec::with_capacity(hl), Vec::with_capacity(rl));
    for n in 1..=3 {
        ngrams(&h, n, &mut hg);
        ngrams(&r, n, &mut rg);
        m[n - 1] = clipped_matches(&hg, &rg);
        c[n - 1] = hg.len().max(1);
        if n == 1 && m[0] == 0 {
            // nltk returns 0 for every order when no unigram matches (incl. an empty hypothesis).
            return Bleu {
                ngram: [0.0; 3],
                mean: 0.0,
            };
        }
    }
    let bp = if hl > rl {
        1.0
    } else {
        // hl > 0 here: m_1 > 0 needs at least one hypothesis word.
        (1.0 - rl as f64 / hl as f64).exp()
    };
    let mut ngram = [0.0; 3];
    for k in 0..3 {
        let p = if m[k] == 0 {
            (0.0 + EPSILON) / c[k] as f64
        } else {
            m[k] as f64 / c[k] as f64
        };
        // nltk: bp * exp(fsum(w_i * ln p_i)); with one-hot weights the sum is exactly ln p_k, but
        // exp(ln p) can differ from p by an ulp, which matters at rounding ties.
        ngram[k] = py_round4(bp * p.ln().exp());
    }
    Bleu {
        ngram,
        mean: (ngram[0] + ngram[1] + ngram[2]) / 3.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_even_on_exact_binary_value() {
        assert_eq!(py_round4(0.03125), 0.0312);
        assert_eq!(py_round4(0.09375), 0.0938);
        assert_eq!(py_round4(0.00015), 0.0001);
        assert_eq!(py_round4(0.12345678), 0.1235);
    }

    #[test]
    fn no_shared_unigram_is_zero() {
        assert_eq!(compute_bleu("a b c", "x y z").mean, 0.0);
        assert_eq!(compute_bleu("a b c", "").mean, 0.0);
    }

    #[test]
    fn identical_long_sentence_is_one() {
        let s = "the patient has acute heart failure today";
        let b = compute_bleu(s, s);
        assert_eq!(b.ngram, [1.0, 1.0, 1.0]);
        assert_eq!(b.mean, 1.0);
    }

    #[test]
    fn brevity_penalty_and_clipping() {
        // H = "a a" vs R = "a b c": m1 = 1 (clipped), c1 = 2; bp = exp(1 - 3/2).
        let b = compute_bleu("a b c", "a a");
        let bp = (1.0f64 - 1.5).exp();
        assert_eq!(b.ngram[0], py_round4(bp * 0.5f64.ln().exp()));
        assert_eq!(b.ngram[1], py_round4(bp * 0.1f64.ln().exp()));
    }
}
