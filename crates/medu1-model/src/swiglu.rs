//! The gated MLP activation `silu(gate) * up` for training on the CPU as one autograd node.
//!
//! Composed from candle ops it keeps `silu(gate)` alive next to `gate` and `up` for every layer
//! (an intermediate-size tensor per token); this op keeps only its two inputs:
//! with `s = sigmoid(g)`, `d gate = d m * up * s (1 + g (1 - s))` and `d up = d m * g s`.

use candle_core::{CpuStorage, CustomOp2, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

#[derive(Debug, Clone, Copy)]
struct SwiGlu;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Rows of this many elements are the unit of parallel work.
const CHUNK: usize = 4096;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "medu1-swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (Some((a1, b1)), Some((a2, b2))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("swiglu needs contiguous inputs");
        };
        if l1.shape() != l2.shape() {
            candle_core::bail!("swiglu: gate {:?} vs up {:?}", l1.shape(), l2.shape());
        }
        let (g, u) = (
            &s1.as_slice::<f32>()?[a1..b1],
            &s2.as_slice::<f32>()?[a2..b2],
        );
        let mut m = vec![0f32; g.len()];
        m.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
            .for_each(|(m, (g, u))| {
                for ((m, &g), &u) in m.iter_mut().zip(g).zip(u) {
                    *m = g * sigmoid(g) * u;
                }
            });
        Ok((CpuStorage::F32(m), l1.shape().clone()))
    }

    fn bwd(
        &self,
        g: &Tensor,
        u: &Tensor,
        _m: &Tensor,
        dm: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let gs = g.detach().flatten_all()?.to_vec1::<f32>()?;
        let us = u.detach().flatten_all()?.to_vec1::<f32>()?;
        let ds = dm.detach().flatten_all()?.to_vec1::<f32>()?;
        let mut dg = vec![0f32; gs.len()];
        let mut du = vec![0f32; gs.len()];
        dg.par_chunks_mut(CHUNK)
            .zip(du.par_chunks_mut(CHUNK))
            .zip(
                gs.par_chunks(CHUNK)
                    .zip(us.par_chunks(CHUNK))
                    .zip(ds.par_chunks(CHUNK)),
            )
            .for_each(|((dg, du), ((g, u), d))| {
                for i in 0..g.len() {
                    let s = sigmoid(g[i]);
                    dg[i] = d[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
                    du[i] = d[i] * g[i] * s;
                }
            });
        Ok((
            Some(Tensor::from_vec(dg, g.shape(), &Device::Cpu)?),
            Some(Tensor::from_vec(du, u.shape(), &Device::Cpu)?),
        ))
    }
}

/// `silu(gate) * up`, differentiable in both.
pub(crate) fn swiglu_train(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if gate.device().is_cpu() && gate.dtype() == candle_core::DType::F32 {
        gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
    } else {
        candle_nn::ops::silu(gate)? * up
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
        // More elements than one parallel chunk, so the chunking is exercised.
        let g = Var::randn(0f32, 3.0, (3, 7, 400), &dev)?;
        let u = Var::randn(0f32, 1.0, (3, 7, 400), &dev)?;
        let c = Tensor::randn(0f32, 1.0, (3, 7, 400), &dev)?;
        let fused = swiglu_train(&g, &u)?;
        let plain = (candle_nn::ops::silu(&g)? * u.as_tensor())?;
        assert!(max_diff(&fused, &plain) < 1e-5);
        let gf = (&fused * &c)?.sum_all()?.backward()?;
        let gp = (&plain * &c)?.sum_all()?.backward()?;
        for v in [&g, &u] {
            let (f, p) = (gf.get(v).unwrap(), gp.get(v).unwrap());
            assert!(p.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
            assert!(max_diff(f, p) < 1e-4, "{}", max_diff(f, p));
        }
        Ok(())
    }
}
