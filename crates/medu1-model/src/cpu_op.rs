//! What the training ops that run as single autograd nodes on the CPU (`attention`, `logprobs`,
//! `norm`, `rope`, `swiglu`) share: reading their inputs as f32 slices, and in tests, checking
//! them against the composite candle ops they replace.

use candle_core::{CpuStorage, Layout, Tensor};

/// The f32 elements of a contiguous CPU storage; `op` names the caller in the error.
pub(crate) fn f32_slice<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<f32>()?[a..b]),
        None => candle_core::bail!("{op} needs contiguous inputs"),
    }
}

/// Runs `f` on the f32 elements of a contiguous CPU tensor, read in place: in a backward pass a
/// copy of the logits would be one more vocabulary-wide tensor at the peak.
pub(crate) fn with_f32_in_place<R>(
    t: &Tensor,
    op: &str,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("{op} expects a CPU tensor");
    };
    f(f32_slice(cpu, layout, op)?)
}

/// Work of at most this many values runs on the calling thread. candle's CPU ops and these
/// split their rows over rayon, and called from outside rayon's pool (the generation loop) each
/// split hands the work to a pool thread and sleeps on a lock until it is done: a futex wake-up
/// per op. A decoded token runs ~150 such ops on a few hundred values each, and those wake-ups
/// were 20 % of a single-stream decode profile.
const INLINE_VALUES: usize = 1 << 15;

/// The least number of rows of `row_len` values worth a parallel split (for `with_min_len`).
pub(crate) fn min_rows(row_len: usize) -> usize {
    (INLINE_VALUES / row_len.max(1)).max(1)
}

/// The elements of a tensor, outside the autograd graph.
pub(crate) fn f32_vec(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.detach().flatten_all()?.to_vec1::<f32>()
}

/// The softmax of one row of scores, in place (attention and the decode kernel).
pub(crate) fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let mut sum = 0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

#[cfg(test)]
pub(crate) mod testing {
    use candle_core::{Tensor, Var};

    pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .unwrap()
    }

    /// `fused` equals `plain` within 1e-5, and so does the gradient of a random weighted sum of
    /// each with respect to every var (non-zero, within 1e-4 relative to its largest entry).
    pub(crate) fn assert_same_values_and_gradients(
        fused: &Tensor,
        plain: &Tensor,
        vars: &[&Var],
    ) -> candle_core::Result<()> {
        assert!(
            max_diff(fused, plain) < 1e-5,
            "values differ by {}",
            max_diff(fused, plain)
        );
        // Every output weighted differently, so each gradient entry matters.
        let w = Tensor::randn(0f32, 1.0, fused.shape(), fused.device())?;
        let gf = (fused * &w)?.sum_all()?.backward()?;
        let gp = (plain * &w)?.sum_all()?.backward()?;
        for v in vars {
            let (f, p) = (gf.get(v).unwrap(), gp.get(v).unwrap());
            let scale = p.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(scale > 0.0, "zero gradient");
            let d = max_diff(f, p);
            assert!(
                d < 1e-4 * scale.max(1.0),
                "gradients differ by {d} (scale {scale})"
            );
        }
        Ok(())
    }
}
