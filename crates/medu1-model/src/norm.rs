//! RMS norm on the CPU as one op: an autograd node for training, and for inference a single pass
//! that stays on the calling thread when small (see `cpu_op::min_rows`).
//!
//! Every decoder layer normalises twice, and the composite form (square, mean, add, sqrt,
//! divide, scale) keeps three hidden-size tensors per call alive for the backward pass. This op
//! keeps its input and weight only; the backward pass recomputes the per-row scale:
//! with `r = 1 / sqrt(mean(x^2) + eps)` and `y = x r w`,
//! `dx = r (g w) - x r^3 mean((g w) x)` and `dw = sum over rows of g x r`.

use candle_core::{CpuStorage, CustomOp2, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_op::{f32_slice, f32_vec, min_rows};

/// Rows per unit of parallel work in the backward pass (and per partial weight-gradient sum).
const ROWS_PER_BLOCK: usize = 32;

#[derive(Debug, Clone, Copy)]
struct RmsNorm {
    eps: f32,
}

impl RmsNorm {
    fn scale(&self, x: &[f32]) -> f32 {
        let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
        1.0 / (ms + self.eps).sqrt()
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "medu1-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (
            f32_slice(s1, l1, "rms norm")?,
            f32_slice(s2, l2, "rms norm")?,
        );
        let d = w.len();
        if d == 0 || x.len() % d != 0 {
            candle_core::bail!(
                "rms norm: input {:?} vs weight {:?}",
                l1.shape(),
                l2.shape()
            );
        }
        let mut y = vec![0f32; x.len()];
        let rows = y.par_chunks_mut(d).zip(x.par_chunks(d));
        rows.with_min_len(min_rows(d)).for_each(|(y, x)| {
            let r = self.scale(x);
            for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
                *y = x * r * w;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (xs, ws, gs) = (f32_vec(x)?, f32_vec(w)?, f32_vec(g)?);
        let d = ws.len();
        let mut dx = vec![0f32; xs.len()];
        // The weight gradient sums over rows. Partial sums over fixed blocks of rows, added in
        // block order, keep that sum bit-identical whatever the thread count and scheduling
        // (a rayon fold/reduce splits work differently from run to run, which broke exact
        // resume).
        let block = ROWS_PER_BLOCK * d;
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(block)
            .zip(xs.par_chunks(block).zip(gs.par_chunks(block)))
            .map(|(dx, (x, g))| {
                let mut dw = vec![0f32; d];
                for (dx, (x, g)) in dx.chunks_mut(d).zip(x.chunks(d).zip(g.chunks(d))) {
                    let r = self.scale(x);
                    let dot: f32 = x.iter().zip(g).zip(&ws).map(|((x, g), w)| g * w * x).sum();
                    let c = r * r * r * dot / d as f32;
                    for i in 0..d {
                        dx[i] = r * g[i] * ws[i] - x[i] * c;
                        dw[i] += g[i] * x[i] * r;
                    }
                }
                dw
            })
            .collect();
        let mut dw = vec![0f32; d];
        for p in partials {
            dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), &Device::Cpu)?),
            Some(Tensor::from_vec(dw, w.shape(), &Device::Cpu)?),
        ))
    }
}

/// `x / sqrt(mean(x^2) + eps) * w` over the last dimension, differentiable in `x` and `w`.
pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps })
    } else {
        candle_nn::ops::rms_norm_slow(x, w, eps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_op::testing::assert_same_values_and_gradients;
    use candle_core::Var;

    #[test]
    fn values_and_gradients_equal_the_composite_ops() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 2.0, (3, 5, 16), &dev)?;
        let w = Var::randn(1f32, 0.3, 16, &dev)?;
        let fused = rms_norm(&x, &w, 1e-5)?;
        let plain = candle_nn::ops::rms_norm_slow(&x, &w, 1e-5)?;
        assert_same_values_and_gradients(&fused, &plain, &[&x, &w])
    }

    /// Regression: the weight gradient was a rayon fold/reduce over rows, whose summation order
    /// changed between runs, so "4 steps = 2 + resume + 2" failed now and then.
    #[test]
    fn weight_gradient_is_bit_identical_across_runs() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 2.0, (4, 500, 64), &dev)?;
        let w = Var::randn(1f32, 0.3, 64, &dev)?;
        let c = Tensor::randn(0f32, 1.0, (4, 500, 64), &dev)?;
        let grad_w = || -> candle_core::Result<Vec<f32>> {
            let y = rms_norm(&x, &w, 1e-5)?;
            let g = (&y * &c)?.sum_all()?.backward()?;
            g.get(&w).expect("w has a gradient").to_vec1::<f32>()
        };
        let first = grad_w()?;
        for _ in 0..30 {
            assert_eq!(grad_w()?, first);
        }
        Ok(())
    }
}
