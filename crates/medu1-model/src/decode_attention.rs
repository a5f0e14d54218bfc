//! Attention for a few query rows per head on the CPU: the decoding step of generation.
//!
//! A decoding step asks each kv head for `rep` query rows (the query heads that share it) against
//! the cached keys. Through candle's `matmul` every (row, kv head) pair is a separate gemm call of
//! 3 x 64 by 64 x L whose operand packing costs more than the products: 19 % of a batched-decode
//! profile (8 rows, 2 threads) went to gemm's packing and microkernel. Here the scores, softmax
//! and weighted sum of one (row, kv head) pair are one pass over its keys and values, read in
//! place from the cache (a narrowed view, so no copy either), and the pairs are spread over
//! candle's thread pool when there are enough of them.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::cpu_op::f32_slice;

/// At most this many query rows per kv head take this path (decoding has `rep` of them; prefill
/// goes through gemm, which wins on large products).
pub(crate) const MAX_QUERY_ROWS: usize = 16;

/// Multiply-adds below which the pairs run on the calling thread.
const PARALLEL_WORK: usize = 1 << 16;

struct FewQueries {
    scale: f32,
    /// Query rows per token: `q` rows are `rep` groups of `t` tokens.
    t: usize,
    /// Additive `[b, t, l]` mask values, if any.
    mask: Option<Vec<f32>>,
}

/// `softmax(q k^T * scale + mask) v` for `q [b, kv_heads, rows, d]` (contiguous, `rows` at
/// most [`MAX_QUERY_ROWS`]) and `k`, `v` `[b, kv_heads, l, d]` whose last two dimensions are
/// contiguous; `mask` is `[b, 1, 1, t, l]`. `None` when these conditions do not hold.
pub(crate) fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    t: usize,
    mask: Option<&Tensor>,
) -> candle_core::Result<Option<Tensor>> {
    let f32_cpu = |x: &Tensor| x.device().is_cpu() && x.dtype() == candle_core::DType::F32;
    if !(f32_cpu(q) && f32_cpu(k) && f32_cpu(v)) || q.rank() != 4 || q.dim(2)? > MAX_QUERY_ROWS {
        return Ok(None);
    }
    let mask = match mask {
        Some(m) => Some(m.flatten_all()?.to_vec1::<f32>()?),
        None => None,
    };
    let op = FewQueries {
        scale: scale as f32,
        t,
        mask,
    };
    q.contiguous()?.apply_op3_no_bwd(k, v, &op).map(Some)
}

/// Offset and strides of a 4-D view whose last dimension is contiguous.
fn view(l: &Layout) -> Option<(usize, [usize; 3])> {
    let s = l.stride();
    (s.len() == 4 && (s[3] == 1 || l.dims()[3] == 1))
        .then(|| (l.start_offset(), [s[0], s[1], s[2]]))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent lanes, so that the loop vectorizes into fused multiply-adds.
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

impl FewQueries {
    /// One (row, kv head) pair: `rows` query rows of `d` values into `out`.
    #[allow(clippy::too_many_arguments)]
    fn pair(
        &self,
        bi: usize,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        (l, d, ks, vs): (usize, usize, usize, usize),
        out: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        let rows = q.len() / d;
        scores.clear();
        scores.resize(rows * l, 0.0);
        for j in 0..l {
            let kj = &k[j * ks..j * ks + d];
            for i in 0..rows {
                scores[i * l + j] = dot(&q[i * d..(i + 1) * d], kj) * self.scale;
            }
        }
        for i in 0..rows {
            let s = &mut scores[i * l..(i + 1) * l];
            if let Some(m) = &self.mask {
                let ti = i % self.t;
                let m = &m[(bi * self.t + ti) * l..][..l];
                s.iter_mut().zip(m).for_each(|(s, m)| *s += m);
            }
            crate::cpu_op::softmax_in_place(s);
        }
        out.fill(0.0);
        for j in 0..l {
            let vj = &v[j * vs..j * vs + d];
            for i in 0..rows {
                let p = scores[i * l + j];
                for (o, &x) in out[i * d..(i + 1) * d].iter_mut().zip(vj) {
                    *o = p.mul_add(x, *o);
                }
            }
        }
    }
}

impl CustomOp3 for FewQueries {
    fn name(&self) -> &'static str {
        "medu1-few-query-attention"
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
        let q = f32_slice(s1, l1, "attention")?;
        let (k, v) = (s2.as_slice::<f32>()?, s3.as_slice::<f32>()?);
        let (Some((ko, kst)), Some((vo, vst))) = (view(l2), view(l3)) else {
            candle_core::bail!("attention: keys and values need a contiguous last dimension");
        };
        let &[b, h, rows, d] = l1.dims() else {
            candle_core::bail!("attention: q must be 4-D");
        };
        let l = l2.dims()[2];
        if l2.dims() != [b, h, l, d] || l3.dims() != [b, h, l, d] {
            candle_core::bail!(
                "attention: q {:?}, k {:?}, v {:?}",
                l1.dims(),
                l2.dims(),
                l3.dims()
            );
        }
        let mut out = vec![0f32; b * h * rows * d];
        let pair = |bh: usize, out: &mut [f32], scores: &mut Vec<f32>| {
            let (bi, hi) = (bh / h, bh % h);
            let kb = ko + bi * kst[0] + hi * kst[1];
            let vb = vo + bi * vst[0] + hi * vst[1];
            let span = |st: usize| if l == 0 { 0 } else { (l - 1) * st + d };
            self.pair(
                bi,
                &q[bh * rows * d..(bh + 1) * rows * d],
                &k[kb..kb + span(kst[2])],
                &v[vb..vb + span(vst[2])],
                (l, d, kst[2], vst[2]),
                out,
                scores,
            );
        };
        if b * h > 1 && b * h * rows * l * d >= PARALLEL_WORK {
            let chunk = rows * d;
            let out_addr = out.as_mut_ptr() as usize;
            candle_core::utils::barrier_pool().execute_chunked(b * h, |range| {
                let mut scores = Vec::new();
                for bh in range {
                    #[allow(unsafe_code)]
                    // SAFETY: `out` outlives the pool call, and each work item writes only the
                    // rows of its own (row, kv head) pair.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(
                            (out_addr as *mut f32).add(bh * chunk),
                            chunk,
                        )
                    };
                    pair(bh, dst, &mut scores);
                }
            });
        } else {
            let mut scores = Vec::new();
            for (bh, dst) in out.chunks_mut(rows * d).enumerate() {
                pair(bh, dst, &mut scores);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, h, rows, d))))
    }
}
