//! The log-probability of chosen tokens, `log_softmax(logits / T)[id]`, as one autograd node.
//!
//! A policy update needs one number per response token, but a log-softmax built from candle ops
//! keeps four vocabulary-wide tensors (the logits, the shifted logits, their exponentials, the
//! log-softmax) alive until the backward pass: for 8 responses of 128 tokens over SmolLM2's
//! 49,152-token vocabulary that is 4 x 201 MB. This op keeps only the logits and recomputes the
//! softmax in its backward pass: `d logits = g / T * (onehot(id) - softmax(logits / T))`.

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_op::{f32_slice, f32_vec, with_f32_in_place};

#[derive(Debug, Clone)]
struct GatherLogSoftmax {
    /// One token id per row of the logits (rows = every dimension but the last).
    ids: Vec<u32>,
    inv_t: f32,
}

impl GatherLogSoftmax {
    /// `(max, log Σ exp(z / T - max))` of one row, so that `lse = max + that`.
    fn lse(&self, z: &[f32]) -> f32 {
        let m = z
            .iter()
            .fold(f32::NEG_INFINITY, |a, &x| a.max(x * self.inv_t));
        let s: f32 = z.iter().map(|&x| (x * self.inv_t - m).exp()).sum();
        m + s.ln()
    }

    fn check(&self, rows: usize, vocab: usize) -> candle_core::Result<()> {
        if rows != self.ids.len() {
            candle_core::bail!("{} logit rows for {} token ids", rows, self.ids.len());
        }
        if let Some(&bad) = self.ids.iter().find(|&&id| id as usize >= vocab) {
            candle_core::bail!("token id {bad} outside the vocabulary ({vocab})");
        }
        Ok(())
    }
}

impl CustomOp1 for GatherLogSoftmax {
    fn name(&self) -> &'static str {
        "medu1-gather-log-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = f32_slice(s, l, "gather-log-softmax")?;
        let dims = l.shape().dims();
        let vocab = *dims.last().unwrap_or(&1);
        let rows = data.len() / vocab.max(1);
        self.check(rows, vocab)?;
        let out: Vec<f32> = data
            .par_chunks(vocab)
            .zip(self.ids.par_iter())
            .map(|(z, &id)| z[id as usize] * self.inv_t - self.lse(z))
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(&dims[..dims.len() - 1])))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let shape = arg.shape().clone();
        let vocab = shape.dims().last().copied().unwrap_or(1);
        let (lp, g) = (f32_vec(res)?, f32_vec(grad)?);
        let d = with_f32_in_place(arg, "gather-log-softmax backward", |z| {
            let mut d = vec![0f32; z.len()];
            d.par_chunks_mut(vocab)
                .zip(z.par_chunks(vocab))
                .enumerate()
                .for_each(|(row, (d, z))| {
                    let id = self.ids[row] as usize;
                    // lp = z[id] / T - lse, so lse comes back without another pass.
                    let lse = z[id] * self.inv_t - lp[row];
                    let gs = g[row] * self.inv_t;
                    for (d, &x) in d.iter_mut().zip(z) {
                        *d = -gs * (x * self.inv_t - lse).exp();
                    }
                    d[id] += gs;
                });
            Ok(d)
        })?;
        Ok(Some(Tensor::from_vec(d, shape, &Device::Cpu)?))
    }
}

/// `log_softmax(logits / temperature)` at `ids` over the last dimension: logits `[.., V]`, ids
/// `[..]` (u32), result `[..]`. Differentiable; on the CPU one node that keeps only the logits,
/// elsewhere (CUDA) the composite ops.
pub fn gather_log_softmax(
    logits: &Tensor,
    ids: &Tensor,
    temperature: f64,
) -> candle_core::Result<Tensor> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    if logits.device().is_cpu() && logits.dtype() == candle_core::DType::F32 {
        let op = GatherLogSoftmax {
            ids: ids.flatten_all()?.to_vec1::<u32>()?,
            inv_t: (1.0 / t) as f32,
        };
        return logits.contiguous()?.apply_op1(op);
    }
    let z = if t != 1.0 {
        (logits / t)?
    } else {
        logits.clone()
    };
    let lsm = candle_nn::ops::log_softmax(&z, candle_core::D::Minus1)?;
    let idx = ids.unsqueeze(ids.rank())?.contiguous()?;
    lsm.contiguous()?
        .gather(&idx, ids.rank())?
        .squeeze(ids.rank())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_op::testing::assert_same_values_and_gradients;
    use candle_core::{D, Var};

    #[test]
    fn values_and_gradients_equal_composite_log_softmax() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (b, r, v) = (3, 5, 40);
        let ids: Vec<u32> = (0..(b * r) as u32).map(|i| (i * 7) % v as u32).collect();
        let ids = Tensor::from_vec(ids, (b, r), &dev)?;
        for temperature in [1.0, 0.7] {
            let z = Var::randn(0f32, 3.0, (b, r, v), &dev)?;
            let fused = gather_log_softmax(&z, &ids, temperature)?;
            let lsm = candle_nn::ops::log_softmax(&(z.as_tensor() / temperature)?, D::Minus1)?;
            let plain = lsm.gather(&ids.unsqueeze(2)?, 2)?.squeeze(2)?;
            assert_same_values_and_gradients(&fused, &plain, &[&z])?;
        }
        Ok(())
    }

    #[test]
    fn a_token_outside_the_vocabulary_is_an_error() {
        let z = Tensor::zeros((1, 2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let ids = Tensor::from_vec(vec![1u32, 4], (1, 2), &Device::Cpu).unwrap();
        let err = gather_log_softmax(&z, &ids, 1.0).unwrap_err().to_string();
        assert!(
            err.contains("token id 4 outside the vocabulary (4)"),
            "{err}"
        );
    }
}
