//! The gated MLP activation `silu(gate) * up` on the CPU as one op (an autograd node for
//! training, one pass for inference).
//!
//! Composed from candle ops it keeps `silu(gate)` alive next to `gate` and `up` for every layer
//! (an intermediate-size tensor per token); this op keeps only its two inputs:
//! with `s = sigmoid(g)`, `d gate = d m * up * s (1 + g (1 - s))` and `d up = d m * g s`.

use candle_core::{CpuStorage, CustomOp2, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_op::{f32_slice, f32_vec, min_rows};

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
        if l1.shape() != l2.shape() {
            candle_core::bail!("swiglu: gate {:?} vs up {:?}", l1.shape(), l2.shape());
        }
        let (g, u) = (f32_slice(s1, l1, "swiglu")?, f32_slice(s2, l2, "swiglu")?);
        let mut m = vec![0f32; g.len()];
        m.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
            .with_min_len(min_rows(CHUNK))
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
        let (gs, us, ds) = (f32_vec(g)?, f32_vec(u)?, f32_vec(dm)?);
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
pub(crate) fn swiglu(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if gate.device().is_cpu() && gate.dtype() == candle_core::DType::F32 {
        gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
    } else {
        candle_nn::ops::silu(gate)? * up
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
        // More elements than one parallel chunk, so the chunking is exercised.
        let g = Var::randn(0f32, 3.0, (3, 7, 400), &dev)?;
        let u = Var::randn(0f32, 1.0, (3, 7, 400), &dev)?;
        let fused = swiglu(&g, &u)?;
        let plain = (candle_nn::ops::silu(&g)? * u.as_tensor())?;
        assert_same_values_and_gradients(&fused, &plain, &[&g, &u])
    }
}
