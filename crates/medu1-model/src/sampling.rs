//! Turning one row of logits into a token: greedy, temperature, top-k and top-p, with the
//! log-probability of the chosen token under the temperature-scaled (untruncated) distribution,
//! which is what GRPO's importance ratio compares against the training forward pass.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How to pick tokens and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Nucleus mass in (0, 1]; 1 disables it.
    pub top_p: f32,
    /// Keep only the k most likely tokens; 0 disables it.
    pub top_k: usize,
    /// Seeds one ChaCha8 stream per (prompt, sample), so results do not depend on batching.
    pub seed: u64,
    pub max_new_tokens: usize,
    /// Token ids that end a sequence (kept as its last token).
    pub stop_token_ids: Vec<u32>,
    /// Strings that end a sequence; the text is cut before the string.
    pub stop_strings: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            max_new_tokens: 256,
            stop_token_ids: Vec::new(),
            stop_strings: Vec::new(),
        }
    }
}

impl SamplingParams {
    pub fn greedy(max_new_tokens: usize) -> Self {
        SamplingParams {
            temperature: 0.0,
            max_new_tokens,
            ..Default::default()
        }
    }
}

/// The seed of one (prompt, sample) stream: splitmix64 over the three numbers.
pub fn stream_seed(seed: u64, prompt: usize, sample: usize) -> u64 {
    medu1_core::seed::mix64(
        seed ^ (prompt as u64).wrapping_mul(medu1_core::seed::GOLDEN)
            ^ (sample as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
    )
}

/// Picks a token from `logits`; returns it with its log-probability.
pub fn sample_token(logits: &[f32], p: &SamplingParams, rng: &mut ChaCha8Rng) -> (u32, f32) {
    if p.temperature <= 0.0 {
        let (mut best, mut bv) = (0usize, f32::NEG_INFINITY);
        for (i, &v) in logits.iter().enumerate() {
            if v > bv {
                bv = v;
                best = i;
            }
        }
        let lse = log_sum_exp(logits, 1.0);
        return (best as u32, bv - lse);
    }
    let inv_t = 1.0 / p.temperature;
    let lse = log_sum_exp(logits, inv_t);
    let n = logits.len();
    let top_k = if p.top_k == 0 || p.top_k >= n {
        n
    } else {
        p.top_k
    };
    let use_top_p = p.top_p > 0.0 && p.top_p < 1.0;
    let chosen = if top_k == n && !use_top_p {
        // Plain temperature sampling: inverse CDF over the whole vocabulary.
        let m = lse; // probabilities are exp(z - lse)
        let u: f32 = rng.random::<f32>();
        let mut acc = 0f32;
        let mut pick = n - 1;
        for (i, &v) in logits.iter().enumerate() {
            acc += (v * inv_t - m).exp();
            if acc > u {
                pick = i;
                break;
            }
        }
        pick
    } else {
        let mut idx: Vec<u32> = (0..n as u32).collect();
        let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
        // Sorting 49k entries per token is expensive: most of the nucleus mass sits in a few
        // hundred tokens, so sort a prefix first and widen only when it does not hold top_p.
        let mut keep = top_k.min(if use_top_p { 512.min(n) } else { n });
        loop {
            if keep < n {
                idx.select_nth_unstable_by(keep - 1, by_logit);
            }
            idx[..keep].sort_unstable_by(by_logit);
            if !use_top_p {
                break;
            }
            let mass: f32 = idx[..keep]
                .iter()
                .map(|&i| (logits[i as usize] * inv_t - lse).exp())
                .sum();
            if mass >= p.top_p || keep >= top_k {
                break;
            }
            keep = (keep * 8).min(top_k);
        }
        let mut cut = keep;
        if use_top_p {
            let mut acc = 0f32;
            for (j, &i) in idx[..keep].iter().enumerate() {
                acc += (logits[i as usize] * inv_t - lse).exp();
                if acc >= p.top_p {
                    cut = j + 1;
                    break;
                }
            }
        }
        let kept = &idx[..cut];
        let total: f32 = kept
            .iter()
            .map(|&i| (logits[i as usize] * inv_t - lse).exp())
            .sum();
        let u = rng.random::<f32>() * total;
        let mut acc = 0f32;
        let mut pick = kept[cut - 1] as usize;
        for &i in kept {
            acc += (logits[i as usize] * inv_t - lse).exp();
            if acc > u {
                pick = i as usize;
                break;
            }
        }
        pick
    };
    (chosen as u32, logits[chosen] * inv_t - lse)
}

/// `log Σ exp(scale · x)`.
pub fn log_sum_exp(xs: &[f32], scale: f32) -> f32 {
    let m = xs.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x * scale));
    let s: f32 = xs.iter().map(|&x| (x * scale - m).exp()).sum();
    m + s.ln()
}
