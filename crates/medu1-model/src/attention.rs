//! Scaled dot-product attention for training on the CPU as a single autograd node.
//!
//! Written with composite ops, attention is the largest memory cost of a GRPO update: the graph
//! keeps the scores, the masked scores and the softmax (with its own intermediates) alive for
//! every layer until the backward pass, each `heads x queries x keys` floats. This op keeps only
//! its inputs (q, k, v, which the projections hold anyway) and its output; the backward pass
//! recomputes the probabilities from q and k, as FlashAttention does, and frees them layer by
//! layer. The arithmetic is candle's (matmul, fused softmax), so values match the composite path
//! to rounding.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, D, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_op::{f32_slice, f32_vec, min_rows, softmax_in_place};

/// Grouped-query attention over `q [b, kv_heads, rep * t, head_dim]` (the `rep` query heads of a
/// kv head stacked along the query axis), `k` and `v` `[b, kv_heads, l, head_dim]`.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    pub scale: f64,
    /// Query heads per kv head.
    pub rep: usize,
    /// Additive mask `[b, 1, 1, t, l]` (0 or -inf), or none when every key is visible.
    pub mask: Option<Tensor>,
}

impl Attention {
    /// `q k^T * scale + mask`, `[b, kv_heads, rep * t, l]`.
    fn scores(&self, q: &Tensor, k: &Tensor) -> candle_core::Result<Tensor> {
        let (b, nkv, rt, _) = q.dims4()?;
        let l = k.dim(2)?;
        let s = (q.matmul(&k.t()?)? * self.scale)?;
        match &self.mask {
            Some(m) => s
                .reshape((b, nkv, self.rep, rt / self.rep, l))?
                .broadcast_add(m)?
                .reshape((b, nkv, rt, l)),
            None => Ok(s),
        }
    }

    /// `softmax(scores)` with candle's fused kernel (no backward pass).
    fn probs(&self, q: &Tensor, k: &Tensor) -> candle_core::Result<Tensor> {
        let s = self.scores(q, k)?;
        if s.device().is_cpu() && s.dtype() == candle_core::DType::F32 {
            s.contiguous()?.apply_op1_no_bwd(&SoftmaxLastDim)
        } else {
            candle_nn::ops::softmax_last_dim(&s)
        }
    }

    /// The attention output from candle ops: the fused softmax for inference and inside this
    /// op, the differentiable one for training off the CPU.
    pub(crate) fn composite(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        differentiable: bool,
    ) -> candle_core::Result<Tensor> {
        let p = if differentiable {
            candle_nn::ops::softmax(&self.scores(q, k)?, D::Minus1)?
        } else {
            self.probs(q, k)?
        };
        p.matmul(v)
    }

    /// The attention output: for training on the CPU one autograd node that recomputes its
    /// probabilities in the backward pass instead of keeping them for every layer; for a few
    /// query rows on the CPU (decoding) `decode_attention`; otherwise [`Attention::composite`].
    pub(crate) fn forward(
        self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        train: bool,
    ) -> candle_core::Result<Tensor> {
        if train && q.device().is_cpu() {
            q.contiguous()?
                .apply_op3(&k.contiguous()?, &v.contiguous()?, self)
        } else if !train
            && let Some(y) = crate::decode_attention::attend(
                q,
                k,
                v,
                self.scale,
                q.dim(2)? / self.rep,
                self.mask.as_ref(),
            )?
        {
            Ok(y)
        } else {
            self.composite(q, k, v, train)
        }
    }
}

/// candle's fused softmax over the last dimension, except that small inputs stay on the calling
/// thread (see `cpu_op::min_rows`): decoding runs one per layer on a few hundred scores.
#[derive(Debug, Clone, Copy)]
struct SoftmaxLastDim;

impl CustomOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "medu1-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "softmax")?;
        let d = l.dims().last().copied().unwrap_or(1).max(1);
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .with_min_len(min_rows(d))
            .for_each(|(y, x)| {
                y.copy_from_slice(x);
                softmax_in_place(y);
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }
}

/// A tensor over a copy of an f32 CPU storage (the op's inputs are contiguous).
fn cpu_tensor(s: &CpuStorage, l: &Layout) -> candle_core::Result<Tensor> {
    Tensor::from_slice(f32_slice(s, l, "attention")?, l.shape(), &Device::Cpu)
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "medu1-attention"
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
        let (q, k, v) = (
            cpu_tensor(s1, l1)?,
            cpu_tensor(s2, l2)?,
            cpu_tensor(s3, l3)?,
        );
        let o = self.composite(&q, &k, &v, false)?;
        let shape = o.shape().clone();
        Ok((CpuStorage::F32(f32_vec(&o)?), shape))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        o: &Tensor,
        d_o: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Detached: the gradient computation itself must not grow the graph.
        let (q, k, v, o, d_o) = (q.detach(), k.detach(), v.detach(), o.detach(), d_o.detach());
        let p = self.probs(&q, &k)?;
        let dv = p.t()?.matmul(&d_o)?;
        let dp = d_o.matmul(&v.t()?)?;
        // Softmax backward: dS = P (dP - rowsum(P dP)), and rowsum(P dP) = rowsum(O dO).
        let row = (&d_o * &o)?.sum_keepdim(D::Minus1)?;
        let ds = (p * dp.broadcast_sub(&row)?)?;
        let dq = (ds.matmul(&k)? * self.scale)?;
        let dk = (ds.t()?.matmul(&q)? * self.scale)?;
        Ok((Some(dq), Some(dk), Some(dv)))
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
        let (b, nkv, rep, t, l, hd) = (2, 2, 3, 4, 6, 8);
        // A causal mask over 2 past keys, with the second row's first key padded out.
        let mut m = vec![0f32; b * t * l];
        for r in 0..b {
            for i in 0..t {
                for j in 0..l {
                    if j > 2 + i || (r == 1 && j == 0) {
                        m[(r * t + i) * l + j] = f32::NEG_INFINITY;
                    }
                }
            }
        }
        let mask = Tensor::from_vec(m, (b, 1, 1, t, l), &dev)?;
        for mask in [None, Some(mask)] {
            let a = Attention {
                scale: 1.0 / (hd as f64).sqrt(),
                rep,
                mask,
            };
            let q = Var::randn(0f32, 1.0, (b, nkv, rep * t, hd), &dev)?;
            let k = Var::randn(0f32, 1.0, (b, nkv, l, hd), &dev)?;
            let v = Var::randn(0f32, 1.0, (b, nkv, l, hd), &dev)?;
            let fused = q.apply_op3(&k, &v, a.clone())?;
            let plain = a.composite(&q, &k, &v, true)?;
            assert_same_values_and_gradients(&fused, &plain, &[&q, &k, &v])?;
        }
        Ok(())
    }

    /// The decode kernel that `forward` dispatches to agrees with the composite path.
    #[test]
    fn decode_kernel_equals_the_composite_attention_on_a_narrowed_cache() -> candle_core::Result<()>
    {
        let dev = Device::Cpu;
        // Enough pairs and keys for the parallel branch (b * h = 6), and a lone pair inline.
        for (b, nkv, rep, t, l, cap) in [(2, 3, 3, 1, 40, 64), (1, 1, 2, 2, 5, 8)] {
            let d = 16;
            let q = Tensor::randn(0f32, 1.0, (b, nkv, rep * t, d), &dev)?;
            let kc = Tensor::randn(0f32, 1.0, (b, nkv, cap, d), &dev)?;
            let vc = Tensor::randn(0f32, 1.0, (b, nkv, cap, d), &dev)?;
            let (k, v) = (kc.narrow(2, 0, l)?, vc.narrow(2, 0, l)?);
            let mut m = vec![0f32; b * t * l];
            for (i, x) in m.iter_mut().enumerate() {
                if i % 7 == 3 {
                    *x = -1e30;
                }
            }
            let mask = Tensor::from_vec(m, (b, 1, 1, t, l), &dev)?;
            for mask in [None, Some(mask)] {
                let scale = 1.0 / (d as f64).sqrt();
                let got = crate::decode_attention::attend(&q, &k, &v, scale, t, mask.as_ref())?
                    .expect("applies");
                let a = Attention { scale, rep, mask };
                let want = a.composite(&q, &k.contiguous()?, &v.contiguous()?, false)?;
                let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff < 1e-5, "b={b} l={l}: {diff}");
            }
        }
        Ok(())
    }
}
