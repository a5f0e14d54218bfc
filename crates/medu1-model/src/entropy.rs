//! The entropy of `softmax(logits / T)` per row, as one autograd node.
//!
//! GRPO's entropy bonus needs one number per response token. Built from candle ops it keeps four
//! vocabulary-wide tensors (shifted logits, their exponentials, the probabilities, `p * z`) for
//! the backward pass, and their gradients come on top: on a 151,936-token vocabulary a
//! micro-batch of 4 x 128 responses held about 2.5 GB for this term alone, the largest share of
//! a Qwen2.5-1.5B LoRA step's peak. This op keeps only the logits (which the log-prob node keeps
//! anyway) and recomputes the softmax in its backward pass:
//! `d z_k = g / T * -p_k (z_k / T - Σ_j p_j z_j / T)`.

use candle_core::{CpuStorage, CustomOp1, D, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_op::{f32_slice, f32_vec, with_f32_in_place};

#[derive(Debug, Clone, Copy)]
struct SoftmaxEntropy {
    inv_t: f32,
}

impl SoftmaxEntropy {
    /// `(max, Σ exp(z / T - max), Σ exp(z / T - max) * z / T)` of one row.
    fn sums(self, z: &[f32]) -> (f32, f32, f32) {
        let m = z
            .iter()
            .fold(f32::NEG_INFINITY, |a, &x| a.max(x * self.inv_t));
        let (mut s, mut sz) = (0f32, 0f32);
        for &x in z {
            let y = x * self.inv_t;
            let e = (y - m).exp();
            s += e;
            sz += e * y;
        }
        (m, s, sz)
    }
}

impl CustomOp1 for SoftmaxEntropy {
    fn name(&self) -> &'static str {
        "medu1-softmax-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = f32_slice(s, l, "softmax-entropy")?;
        let dims = l.shape().dims();
        let vocab = (*dims.last().unwrap_or(&1)).max(1);
        let out: Vec<f32> = data
            .par_chunks(vocab)
            .map(|z| {
                let (m, s, sz) = self.sums(z);
                // H = logsumexp(z / T) - E_p[z / T].
                m + s.ln() - sz / s
            })
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(&dims[..dims.len() - 1])))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let shape = arg.shape().clone();
        let vocab = shape.dims().last().copied().unwrap_or(1).max(1);
        let g = f32_vec(grad)?;
        let d = with_f32_in_place(arg, "softmax-entropy backward", |z| {
            let mut d = vec![0f32; z.len()];
            d.par_chunks_mut(vocab)
                .zip(z.par_chunks(vocab))
                .zip(g.par_iter())
                .for_each(|((d, z), &g)| {
                    let (m, s, sz) = self.sums(z);
                    let mean = sz / s;
                    let gs = g * self.inv_t;
                    for (d, &x) in d.iter_mut().zip(z) {
                        let y = x * self.inv_t;
                        *d = -gs * ((y - m).exp() / s) * (y - mean);
                    }
                });
            Ok(d)
        })?;
        Ok(Some(Tensor::from_vec(d, shape, &Device::Cpu)?))
    }
}

/// The entropy of `softmax(logits / temperature)` over the last dimension: logits `[.., V]`,
/// result `[..]`. Differentiable; on the CPU one node that keeps only the logits, elsewhere
/// (CUDA) the composite ops.
pub fn softmax_entropy(logits: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    if logits.device().is_cpu() && logits.dtype() == candle_core::DType::F32 {
        let op = SoftmaxEntropy {
            inv_t: (1.0 / t) as f32,
        };
        return logits.contiguous()?.apply_op1(op);
    }
    let z = if t != 1.0 {
        (logits / t)?
    } else {
        logits.clone()
    };
    composite(&z)
}

/// `logsumexp(z) - Σ p·z` from candle ops.
fn composite(z: &Tensor) -> candle_core::Result<Tensor> {
    let max = z.max_keepdim(D::Minus1)?.detach();
    let shifted = z.broadcast_sub(&max)?;
    let exp = shifted.exp()?;
    let sum = exp.sum_keepdim(D::Minus1)?;
    let p = exp.broadcast_div(&sum)?;
    let lse = (sum.log()? + &max)?.squeeze(D::Minus1)?;
    let pz = (p * z)?.sum(D::Minus1)?;
    lse - pz
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_op::testing::assert_same_values_and_gradients;
    use candle_core::Var;

    #[test]
    fn values_and_gradients_equal_the_composite_entropy() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for temperature in [1.0, 0.7] {
            let z = Var::randn(0f32, 3.0, (3, 5, 40), &dev)?;
            let fused = softmax_entropy(&z, temperature)?;
            let plain = composite(&(z.as_tensor() / temperature)?)?;
            assert_same_values_and_gradients(&fused, &plain, &[&z])?;
        }
        Ok(())
    }

    #[test]
    fn a_uniform_row_has_the_entropy_of_its_width_and_a_peaked_one_almost_none() {
        let z = Tensor::from_vec(
            vec![0f32, 0., 0., 0., 50., 0., 0., 0.],
            (2, 4),
            &Device::Cpu,
        )
        .unwrap();
        let h = softmax_entropy(&z, 1.0).unwrap().to_vec1::<f32>().unwrap();
        assert!((h[0] - 4f32.ln()).abs() < 1e-6, "{h:?}");
        assert!(h[1] < 1e-6, "{h:?}");
    }
}
