//! RMS norm for training on the CPU as one autograd node.
//!
//! Every decoder layer normalises twice, and the composite form (square, mean, add, sqrt,
//! divide, scale) keeps three hidden-size tensors per call alive for the backward pass. This op
//! keeps its input and weight only; the backward pass recomputes the per-row scale:
//! with `r = 1 / sqrt(mean(x^2) + eps)` and `y = x r w`,
//! `dx = r (g w) - x r^3 mean((g w) x)` and `dw = sum over rows of g x r`.

use candle_core::{CpuStorage, CustomOp2, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

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

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<f32>()?[a..b]),
        None => candle_core::bail!("rms norm needs contiguous inputs"),
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
        let (x, w) = (contiguous(s1, l1)?, contiguous(s2, l2)?);
        let d = w.len();
        if d == 0 || x.len() % d != 0 {
            candle_core::bail!(
                "rms norm: input {:?} vs weight {:?}",
                l1.shape(),
                l2.shape()
            );
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(d).zip(x.par_chunks(d)).for_each(|(y, x)| {
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
        let xs = x.detach().flatten_all()?.to_vec1::<f32>()?;
        let ws = w.detach().to_vec1::<f32>()?;
        let gs = g.detach().flatten_all()?.to_vec1::<f32>()?;
        let d = ws.len();
        let mut dx = vec![0f32; xs.len()];
        let dw = dx
            .par_chunks_mut(d)
            .zip(xs.par_chunks(d).zip(gs.par_chunks(d)))
            .fold(
                || vec![0f32; d],
                |mut dw, (dx, (x, g))| {
                    let r = self.scale(x);
                    let dot: f32 = x.iter().zip(g).zip(&ws).map(|((x, g), w)| g * w * x).sum();
                    let c = r * r * r * dot / d as f32;
                    for i in 0..d {
                        dx[i] = r * g[i] * ws[i] - x[i] * c;
                        dw[i] += g[i] * x[i] * r;
                    }
                    dw
                },
            )
            .reduce(
                || vec![0f32; d],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), &Device::Cpu)?),
            Some(Tensor::from_vec(dw, w.shape(), &Device::Cpu)?),
        ))
    }
}

/// `x / sqrt(mean(x^2) + eps) * w` over the last dimension, differentiable in `x` and `w`.
pub(crate) fn rms_norm_train(x: &Tensor, w: &Tensor, eps: f32) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps })
    } else {
        candle_nn::ops::rms_norm_slow(x, w, eps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .unwrap()
    }

    #[test]
    fn values_and_gradients_equal_the_composite_ops() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 2.0, (3, 5, 16), &dev)?;
        let w = Var::randn(1f32, 0.3, 16, &dev)?;
        let c = Tensor::randn(0f32, 1.0, (3, 5, 16), &dev)?;
        let fused = rms_norm_train(&x, &w, 1e-5)?;
        let plain = candle_nn::ops::rms_norm_slow(&x, &w, 1e-5)?;
        assert!(max_diff(&fused, &plain) < 1e-5);
        let gf = (&fused * &c)?.sum_all()?.backward()?;
        let gp = (&plain * &c)?.sum_all()?.backward()?;
        for v in [&x, &w] {
            let (f, p) = (gf.get(v).unwrap(), gp.get(v).unwrap());
            assert!(p.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
            assert!(max_diff(f, p) < 1e-4, "{}", max_diff(f, p));
        }
        Ok(())
    }
}
