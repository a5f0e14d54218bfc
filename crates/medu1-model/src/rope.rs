//! Rotary position embedding on the CPU as one op: an autograd node for training, and for
//! inference a single pass that stays on the calling thread when small.
//!
//! Built from candle ops, rope keeps six half-width products and their concatenation alive per
//! call (for q and k of every layer). Rope is a rotation of each pair of features, so its
//! backward pass is the same rotation by the opposite angle: this op keeps nothing beyond its
//! inputs and computes the gradient with the same kernel and `-sin`.

use candle_core::{CpuStorage, CustomOp3, D, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::config::{ModelConfig, RopeLayout};
use crate::cpu_op::{f32_slice, f32_vec, min_rows};

#[derive(Debug, Clone, Copy)]
struct Rope {
    layout: RopeLayout,
}

/// Rotates `x [b, h, t, d]` by the per-row tables `cos`, `sin` `[b, t, d/2]`; `sign = -1`
/// rotates by the opposite angle (the transpose, i.e. the backward pass).
fn rotate(
    layout: RopeLayout,
    x: &[f32],
    cos: &[f32],
    sin: &[f32],
    (b, h, t, d): (usize, usize, usize, usize),
    sign: f32,
) -> Vec<f32> {
    let half = d / 2;
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(t * d)
        .zip(x.par_chunks(t * d))
        .with_min_len(min_rows(t * d))
        .enumerate()
        .for_each(|(bh, (y, x))| {
            let bi = bh / h;
            for ti in 0..t {
                let tab = (bi * t + ti) * half;
                let (c, s) = (&cos[tab..tab + half], &sin[tab..tab + half]);
                let (x, y) = (&x[ti * d..(ti + 1) * d], &mut y[ti * d..(ti + 1) * d]);
                for i in 0..half {
                    let (ci, si) = (c[i], sign * s[i]);
                    let (a, b) = match layout {
                        RopeLayout::Interleaved => (2 * i, 2 * i + 1),
                        RopeLayout::HalfSplit => (i, i + half),
                    };
                    y[a] = x[a] * ci - x[b] * si;
                    y[b] = x[a] * si + x[b] * ci;
                }
            }
        });
    debug_assert_eq!(y.len(), b * h * t * d);
    y
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "medu1-rope"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = l1.shape().dims4()?;
        let (b, _, t, d) = dims;
        if d % 2 != 0 || l2.shape().elem_count() != b * t * d / 2 || l3.shape() != l2.shape() {
            candle_core::bail!("rope: x {:?} vs tables {:?}", l1.shape(), l2.shape());
        }
        let y = rotate(
            self.layout,
            f32_slice(s1, l1, "rope")?,
            f32_slice(s2, l2, "rope")?,
            f32_slice(s3, l3, "rope")?,
            dims,
            1.0,
        );
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = x.dims4()?;
        let (dy, c, s) = (f32_vec(dy)?, f32_vec(cos)?, f32_vec(sin)?);
        let dx = rotate(self.layout, &dy, &c, &s, dims, -1.0);
        // The tables are constants (positions), never trained.
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), &Device::Cpu)?),
            None,
            None,
        ))
    }
}

/// Rope of `x [b, h, t, d]` with per-row tables `[b, t, d/2]`, differentiable in `x`.
pub(crate) fn rope_cpu(
    layout: RopeLayout,
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
) -> candle_core::Result<Option<Tensor>> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return Ok(None);
    }
    let op = Rope { layout };
    x.contiguous()?
        .apply_op3(&cos.contiguous()?, &sin.contiguous()?, op)
        .map(Some)
}

/// Interleaved rope (pairs `2i`, `2i+1`) from composite ops, with per-row `[b, t, d/2]` tables.
pub(crate) fn rope_i_composite(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
) -> crate::error::Result<Tensor> {
    let (b, h, t, d) = x.dims4()?;
    let cos = cos.reshape((b, 1, t, d / 2, 1))?;
    let sin = sin.reshape((b, 1, t, d / 2, 1))?;
    let x = x.reshape((b, h, t, d / 2, 2))?;
    let x0 = x.narrow(D::Minus1, 0, 1)?;
    let x1 = x.narrow(D::Minus1, 1, 1)?;
    let y0 = (x0.broadcast_mul(&cos)? - x1.broadcast_mul(&sin)?)?;
    let y1 = (x0.broadcast_mul(&sin)? + x1.broadcast_mul(&cos)?)?;
    Ok(Tensor::cat(&[y0, y1], D::Minus1)?.reshape((b, h, t, d))?)
}

/// Half-split rope (pairs `i`, `i + d/2`) from composite ops, with per-row `[b, t, d/2]` tables.
pub(crate) fn rope_composite(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
) -> crate::error::Result<Tensor> {
    let (b, _h, t, d) = x.dims4()?;
    let cos = Tensor::cat(&[cos, cos], D::Minus1)?.reshape((b, 1, t, d))?;
    let sin = Tensor::cat(&[sin, sin], D::Minus1)?.reshape((b, 1, t, d))?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rot = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    Ok((x.broadcast_mul(&cos)? + rot.broadcast_mul(&sin)?)?)
}

/// The cos and sin tables `[positions, head_dim/2]` of the model's rope frequencies.
pub(crate) fn rope_tables(cfg: &ModelConfig) -> crate::error::Result<(Tensor, Tensor)> {
    let half = cfg.head_dim / 2;
    let n = cfg.max_position_embeddings.clamp(1, 1 << 16);
    let inv: Vec<f32> = (0..half)
        .map(|i| 1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim as f64) as f32)
        .collect();
    let mut cos = Vec::with_capacity(n * half);
    let mut sin = Vec::with_capacity(n * half);
    for p in 0..n {
        for &f in &inv {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    Ok((
        Tensor::from_vec(cos, (n, half), &Device::Cpu)?,
        Tensor::from_vec(sin, (n, half), &Device::Cpu)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_op::testing::assert_same_values_and_gradients;
    use candle_core::{D, Var};

    /// The composite forms the model used before (and uses off the CPU).
    fn composite(layout: RopeLayout, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
        let (b, h, t, d) = x.dims4().unwrap();
        match layout {
            RopeLayout::Interleaved => {
                let cos = cos.reshape((b, 1, t, d / 2, 1)).unwrap();
                let sin = sin.reshape((b, 1, t, d / 2, 1)).unwrap();
                let x = x.reshape((b, h, t, d / 2, 2)).unwrap();
                let x0 = x.narrow(D::Minus1, 0, 1).unwrap();
                let x1 = x.narrow(D::Minus1, 1, 1).unwrap();
                let y0 =
                    (x0.broadcast_mul(&cos).unwrap() - x1.broadcast_mul(&sin).unwrap()).unwrap();
                let y1 =
                    (x0.broadcast_mul(&sin).unwrap() + x1.broadcast_mul(&cos).unwrap()).unwrap();
                Tensor::cat(&[y0, y1], D::Minus1)
                    .unwrap()
                    .reshape((b, h, t, d))
                    .unwrap()
            }
            RopeLayout::HalfSplit => {
                let cos = Tensor::cat(&[cos, cos], D::Minus1)
                    .unwrap()
                    .reshape((b, 1, t, d))
                    .unwrap();
                let sin = Tensor::cat(&[sin, sin], D::Minus1)
                    .unwrap()
                    .reshape((b, 1, t, d))
                    .unwrap();
                let x1 = x.narrow(D::Minus1, 0, d / 2).unwrap();
                let x2 = x.narrow(D::Minus1, d / 2, d / 2).unwrap();
                let rot = Tensor::cat(&[&x2.neg().unwrap(), &x1], D::Minus1).unwrap();
                (x.broadcast_mul(&cos).unwrap() + rot.broadcast_mul(&sin).unwrap()).unwrap()
            }
        }
    }

    #[test]
    fn values_and_gradients_equal_the_composite_ops() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (b, h, t, d) = (2, 3, 5, 8);
        let angles = Tensor::randn(0f32, 2.0, (b, t, d / 2), &dev)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        for layout in [RopeLayout::Interleaved, RopeLayout::HalfSplit] {
            let x = Var::randn(0f32, 1.0, (b, h, t, d), &dev)?;
            let fused = rope_cpu(layout, &x, &cos, &sin)?.unwrap();
            let plain = composite(layout, &x, &cos, &sin);
            assert_same_values_and_gradients(&fused, &plain, &[&x])?;
        }
        Ok(())
    }
}
