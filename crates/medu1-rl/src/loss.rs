//! The GRPO actor loss (spec §4.3–4.4): clipped policy gradient, KL to the reference, entropy.
//!
//! Everything here is built from differentiable candle ops on `(batch, response_len)` tensors with
//! a float mask of valid response tokens, so one `backward()` reaches every policy weight.

use candle_core::{D, DType, Result, Tensor};
use serde::{Deserialize, Serialize};

/// The KL estimator between policy and reference log-probs per token (verl's `kl_penalty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KlEstimator {
    /// k1: `logp - ref` (verl's "kl").
    #[serde(alias = "kl")]
    K1,
    /// `|logp - ref|`.
    Abs,
    /// k2: `0.5 (logp - ref)^2` (verl's "mse").
    #[serde(alias = "mse")]
    K2,
    /// k3 (Schulman's low-variance estimator): `exp(ref - logp) - (ref - logp) - 1`, clamped to
    /// [-10, 10] as the reference does (verl's "low_var_kl").
    #[default]
    #[serde(alias = "low_var_kl")]
    K3,
}

/// How per-token losses become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LossAgg {
    /// Σ(x·m)/Σm over all tokens of the micro-batch (the reference; longer responses weigh more).
    #[default]
    TokenMean,
    /// Mean over sequences of each sequence's token mean.
    SeqMeanTokenMean,
    /// Mean over sequences of each sequence's token sum divided by a fixed length (Dr.GRPO), so
    /// neither length nor batch composition rescales the gradient.
    SeqMeanTokenSumNorm,
}

pub fn kl_penalty(logp: &Tensor, ref_logp: &Tensor, kind: KlEstimator) -> Result<Tensor> {
    let diff = (logp - ref_logp)?;
    match kind {
        KlEstimator::K1 => Ok(diff),
        KlEstimator::Abs => diff.abs(),
        KlEstimator::K2 => diff.sqr()? * 0.5,
        KlEstimator::K3 => {
            let k = diff.neg()?;
            let kld = ((k.exp()? - &k)? - 1.0)?;
            kld.clamp(-10f32, 10f32)
        }
    }
}

/// Which tokens a loss is averaged over when a mini-batch is split into micro-batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LossScope {
    /// The whole mini-batch: each micro-batch's sum is divided by the mini-batch's token (or
    /// sequence) count, so how the mini-batch is cut into micro-batches changes neither the loss
    /// nor its gradient. This is what the reference run computes: its trainer balances every
    /// batch into equal, sequence-length-balanced partitions before the per-rank token-means,
    /// which makes them close to one token-mean over the batch.
    #[default]
    MiniBatch,
    /// Each micro-batch aggregated on its own and the results averaged (verl's per-micro-batch
    /// `loss / gradient_accumulation`, without the fork's balanced partitions): a short group's
    /// tokens weigh more than a long group's.
    MicroBatch,
}

/// What an aggregated loss is divided by: the valid tokens ([`LossAgg::TokenMean`]) or the
/// sequences (the seq-mean modes) of the batch it is averaged over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Divisor {
    pub tokens: f64,
    pub seqs: f64,
}

impl Divisor {
    /// The valid tokens and sequences of one `(B, T)` mask.
    pub fn of(mask: &Tensor) -> Result<Divisor> {
        Ok(Divisor {
            tokens: mask.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?,
            seqs: mask.dim(0)? as f64,
        })
    }

    /// The divisor of several micro-batches taken together.
    pub fn total(parts: impl IntoIterator<Item = Divisor>) -> Divisor {
        parts.into_iter().fold(
            Divisor {
                tokens: 0.0,
                seqs: 0.0,
            },
            |a, b| Divisor {
                tokens: a.tokens + b.tokens,
                seqs: a.seqs + b.seqs,
            },
        )
    }

    /// This divisor times `k` (a micro-batch averaged with `k - 1` others).
    pub fn times(self, k: f64) -> Divisor {
        Divisor {
            tokens: self.tokens * k,
            seqs: self.seqs * k,
        }
    }
}

/// `mask` `(B, T)` with the rows of sequences not kept set to 0, so they carry no gradient and
/// no weight in a token mean (DAPO's overlong filtering).
pub fn keep_rows(mask: &Tensor, keep: &[bool]) -> Result<Tensor> {
    let rows: Vec<f32> = keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
    let rows = Tensor::from_vec(rows, (keep.len(), 1), mask.device())?.to_dtype(mask.dtype())?;
    mask.broadcast_mul(&rows)
}

/// Aggregates `(B, T)` per-token values under `mask` (1 for valid response tokens), over this
/// batch alone. `norm_len` is the fixed divisor of [`LossAgg::SeqMeanTokenSumNorm`] (the maximum
/// response length).
pub fn aggregate(x: &Tensor, mask: &Tensor, agg: LossAgg, norm_len: usize) -> Result<Tensor> {
    aggregate_over(x, mask, agg, norm_len, Divisor::of(mask)?)
}

/// This micro-batch's share of an aggregate over a larger batch whose counts are `div`: summed
/// over the micro-batches of that batch, the shares give [`aggregate`] of the whole.
pub fn aggregate_over(
    x: &Tensor,
    mask: &Tensor,
    agg: LossAgg,
    norm_len: usize,
    div: Divisor,
) -> Result<Tensor> {
    let xm = (x * mask)?;
    // Clamp the denominators so an all-padding batch gives 0, not NaN.
    let over = |sum: Tensor, n: f64| -> Result<Tensor> {
        let d = Tensor::new(n.max(1e-8) as f32, sum.device())?;
        sum.div(&d)
    };
    match agg {
        LossAgg::TokenMean => over(xm.sum_all()?, div.tokens),
        LossAgg::SeqMeanTokenMean => {
            let per_seq = xm
                .sum(D::Minus1)?
                .div(&mask.sum(D::Minus1)?.maximum(1e-8f32)?)?;
            over(per_seq.sum_all()?, div.seqs)
        }
        LossAgg::SeqMeanTokenSumNorm => {
            let per_seq = (xm.sum(D::Minus1)? / norm_len.max(1) as f64)?;
            over(per_seq.sum_all()?, div.seqs)
        }
    }
}

/// Per-token entropy of `softmax(logits)` over the last dimension: `logsumexp(z) - Σ p·z`.
/// Differentiable; on the CPU one autograd node that keeps only the logits
/// ([`medu1_model::softmax_entropy`]).
pub fn entropy_from_logits(logits: &Tensor) -> Result<Tensor> {
    medu1_model::softmax_entropy(logits, 1.0)
}

/// Clipping bounds of the PPO ratio: `[1 - low, 1 + high]` (DAPO's "clip-higher" when high > low).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClipRange {
    pub low: f64,
    pub high: f64,
}

impl Default for ClipRange {
    fn default() -> Self {
        ClipRange {
            low: 0.2,
            high: 0.2,
        }
    }
}

/// The policy-gradient part of the loss and its diagnostics.
#[derive(Debug)]
pub struct PolicyLoss {
    pub loss: Tensor,
    /// Share of valid tokens where the clipped branch was taken.
    pub clip_frac: f32,
    /// `masked_mean(old_logp - logp)`.
    pub approx_kl: f32,
}

/// `max(-A·r, -A·clip(r, 1-low, 1+high))` per token with `r = exp(logp - old_logp)`, aggregated
/// over this batch alone.
pub fn policy_loss(
    old_logp: &Tensor,
    logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    clip: ClipRange,
    agg: LossAgg,
    norm_len: usize,
) -> Result<PolicyLoss> {
    policy_loss_over(
        old_logp,
        logp,
        advantages,
        mask,
        clip,
        agg,
        norm_len,
        Divisor::of(mask)?,
    )
}

/// [`policy_loss`] as this micro-batch's share of a batch whose counts are `div`
/// (see [`aggregate_over`]); the diagnostics stay this micro-batch's own.
#[allow(clippy::too_many_arguments)]
pub fn policy_loss_over(
    old_logp: &Tensor,
    logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    clip: ClipRange,
    agg: LossAgg,
    norm_len: usize,
    div: Divisor,
) -> Result<PolicyLoss> {
    let ratio = (logp - old_logp)?.exp()?;
    let neg_adv = advantages.neg()?;
    let unclipped = (&neg_adv * &ratio)?;
    let clipped_ratio = ratio.clamp(1.0 - clip.low, 1.0 + clip.high)?;
    let clipped = (&neg_adv * &clipped_ratio)?;
    let per_token = unclipped.maximum(&clipped)?;
    let loss = aggregate_over(&per_token, mask, agg, norm_len, div)?;

    let took_clip = clipped.gt(&unclipped)?.to_dtype(DType::F32)?;
    let n = mask.sum_all()?.to_scalar::<f32>()?.max(1e-8);
    let clip_frac = (took_clip * mask)?.sum_all()?.to_scalar::<f32>()? / n;
    let approx_kl = ((old_logp - logp)? * mask)?.sum_all()?.to_scalar::<f32>()? / n;
    Ok(PolicyLoss {
        loss,
        clip_frac,
        approx_kl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn t(v: &[f32], shape: (usize, usize)) -> Tensor {
        Tensor::from_slice(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn k3_matches_formula_and_clamps() {
        let logp = t(&[-1.0, -2.0, -30.0], (1, 3));
        let refp = t(&[-1.5, -2.0, -1.0], (1, 3));
        let k = kl_penalty(&logp, &refp, KlEstimator::K3)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let x: f32 = -0.5; // ref - logp
        assert!((k[0][0] - (x.exp() - x - 1.0)).abs() < 1e-6);
        assert_eq!(k[0][1], 0.0);
        assert_eq!(k[0][2], 10.0, "exp(29) - 30 is clamped to 10");
        let k1 = kl_penalty(&logp, &refp, KlEstimator::K1)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(k1[0][0], 0.5);
        let k2 = kl_penalty(&logp, &refp, KlEstimator::K2)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(k2[0][0], 0.125);
    }

    #[test]
    fn clipping_by_hand() {
        // A = +1: ratio 1.5 is clipped at 1.2 → loss term -1.2 (clipped taken: -1.2 > -1.5).
        // A = -1: ratio 0.5 → unclipped 0.5, clipped 0.8 → max = 0.8, clipped taken.
        // A = +1, ratio 1.0 → -1, not clipped.
        let old = t(&[0.0, 0.0, 0.0], (1, 3));
        let new = t(&[1.5f32.ln(), 0.5f32.ln(), 0.0], (1, 3));
        let adv = t(&[1.0, -1.0, 1.0], (1, 3));
        let mask = t(&[1.0, 1.0, 1.0], (1, 3));
        let pl = policy_loss(
            &old,
            &new,
            &adv,
            &mask,
            ClipRange::default(),
            LossAgg::TokenMean,
            3,
        )
        .unwrap();
        let loss = pl.loss.to_scalar::<f32>().unwrap();
        assert!((loss - (-1.2 + 0.8 - 1.0) / 3.0).abs() < 1e-6, "{loss}");
        assert!((pl.clip_frac - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn asymmetric_clip_higher() {
        let old = t(&[0.0], (1, 1));
        let new = t(&[1.5f32.ln()], (1, 1));
        let adv = t(&[1.0], (1, 1));
        let mask = t(&[1.0], (1, 1));
        let clip = ClipRange {
            low: 0.2,
            high: 0.28,
        };
        let pl = policy_loss(&old, &new, &adv, &mask, clip, LossAgg::TokenMean, 1).unwrap();
        assert!((pl.loss.to_scalar::<f32>().unwrap() + 1.28).abs() < 1e-6);
    }

    #[test]
    fn aggregation_modes() {
        let x = t(&[1.0, 2.0, 3.0, 4.0, 0.0, 0.0], (2, 3));
        let m = t(&[1.0, 1.0, 1.0, 1.0, 0.0, 0.0], (2, 3));
        let tm = aggregate(&x, &m, LossAgg::TokenMean, 3)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((tm - 10.0 / 4.0).abs() < 1e-6);
        let smtm = aggregate(&x, &m, LossAgg::SeqMeanTokenMean, 3)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((smtm - (2.0 + 4.0) / 2.0).abs() < 1e-6);
        let sn = aggregate(&x, &m, LossAgg::SeqMeanTokenSumNorm, 4)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((sn - (6.0 / 4.0 + 4.0 / 4.0) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn shares_over_a_batch_sum_to_the_aggregate_of_the_whole() {
        // Two micro-batches of different lengths; their shares add up to the whole's aggregate.
        let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 7.0, 0.0, 0.0], (3, 3));
        let m = t(&[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0], (3, 3));
        let (xa, ma) = (x.narrow(0, 0, 1).unwrap(), m.narrow(0, 0, 1).unwrap());
        let (xb, mb) = (x.narrow(0, 1, 2).unwrap(), m.narrow(0, 1, 2).unwrap());
        for agg in [
            LossAgg::TokenMean,
            LossAgg::SeqMeanTokenMean,
            LossAgg::SeqMeanTokenSumNorm,
        ] {
            let whole = aggregate(&x, &m, agg, 3)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let div = Divisor::total([Divisor::of(&ma).unwrap(), Divisor::of(&mb).unwrap()]);
            let a = aggregate_over(&xa, &ma, agg, 3, div).unwrap();
            let b = aggregate_over(&xb, &mb, agg, 3, div).unwrap();
            let parts = (a + b).unwrap().to_scalar::<f32>().unwrap();
            assert!((whole - parts).abs() < 1e-6, "{agg:?}: {whole} vs {parts}");
            // Averaging the two micro-batches' own aggregates is not the same thing here.
            let mean_of_means = (aggregate(&xa, &ma, agg, 3)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                + aggregate(&xb, &mb, agg, 3)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap())
                / 2.0;
            if agg == LossAgg::TokenMean {
                assert!(
                    (whole - mean_of_means).abs() > 0.1,
                    "{whole} vs {mean_of_means}"
                );
            }
        }
    }

    #[test]
    fn entropy_of_uniform_and_gradient_flows() {
        let z = Var::from_tensor(&t(&[0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0], (2, 4))).unwrap();
        let h = entropy_from_logits(z.as_tensor()).unwrap();
        let hv = h.to_vec1::<f32>().unwrap();
        assert!((hv[0] - 4f32.ln()).abs() < 1e-6);
        assert!(hv[1] < hv[0]);
        let grads = h.sum_all().unwrap().backward().unwrap();
        let g = grads
            .get(&z)
            .expect("entropy is differentiable")
            .to_vec2::<f32>()
            .unwrap();
        assert!(g[1][0] < 0.0, "raising the dominant logit lowers entropy");
    }

    #[test]
    fn policy_loss_gradient_matches_finite_differences() {
        let old = t(&[-1.0, -2.0, -0.5, -1.2], (2, 2));
        let adv = t(&[0.7, 0.7, -1.3, -1.3], (2, 2));
        let mask = t(&[1.0, 1.0, 1.0, 0.0], (2, 2));
        let base = [-0.9f32, -2.1, -0.45, -1.0];
        let lp = Var::from_tensor(&t(&base, (2, 2))).unwrap();
        let f = |v: &Tensor| -> f32 {
            let pl = policy_loss(
                &old,
                v,
                &adv,
                &mask,
                ClipRange::default(),
                LossAgg::TokenMean,
                2,
            )
            .unwrap();
            let kl = aggregate(
                &kl_penalty(v, &old, KlEstimator::K3).unwrap(),
                &mask,
                LossAgg::TokenMean,
                2,
            )
            .unwrap();
            (pl.loss + (kl * 0.1).unwrap())
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let pl = policy_loss(
            &old,
            lp.as_tensor(),
            &adv,
            &mask,
            ClipRange::default(),
            LossAgg::TokenMean,
            2,
        )
        .unwrap();
        let kl = aggregate(
            &kl_penalty(lp.as_tensor(), &old, KlEstimator::K3).unwrap(),
            &mask,
            LossAgg::TokenMean,
            2,
        )
        .unwrap();
        let total = (pl.loss + (kl * 0.1).unwrap()).unwrap();
        let g = total
            .backward()
            .unwrap()
            .get(&lp)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let h = 1e-3f32;
        for i in 0..4 {
            let mut p = base;
            let mut m = base;
            p[i] += h;
            m[i] -= h;
            let fd = (f(&t(&p, (2, 2))) - f(&t(&m, (2, 2)))) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 2e-3,
                "token {i}: fd {fd} vs grad {}",
                g[i]
            );
        }
        assert_eq!(g[3], 0.0, "masked token gets no gradient");
    }
}
