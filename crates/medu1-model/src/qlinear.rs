//! `y = x W^T` over a quantized `W` as an autograd node that is differentiable in `x` (LoRA
//! training over a frozen quantized base).
//!
//! candle's `QMatMul` and the packed kernels of [`crate::qmatmul`] have no backward pass, and the
//! obvious fix, a dense f32 copy of every matrix for the backward matmul, is what LoRA is meant
//! to avoid (4 bytes per weight against ~1.1 for Q8_0, ~0.6 for Q4_1). This op runs the same
//! quantized kernel forward, so its values are the inference path's bit for bit, and in the
//! backward pass computes `dX = dY W` from `W` dequantized a chunk of rows at a time
//! ([`CHUNK_VALUES`] at most): `dX = sum over chunks c of dY[:, c] W[c, :]`. `W` gets no
//! gradient. The activation rounding of the forward kernels (int8 per 32 values) is treated as
//! the identity in the backward pass (a straight-through estimate), as QLoRA does.

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{QStorage, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_op::{f32_slice, min_rows};
use crate::qmatmul::PackedMatrix;

/// The dequantized rows of `W` held at once in the backward pass: 4 MiB of f32 (a few hundred
/// rows of a 0.5B model's matrices, against 3.6 MB for the whole of a 896 x 4864 Q8_0 matrix
/// and 17 MB dequantized).
const CHUNK_VALUES: usize = 1 << 20;

/// A frozen quantized `[n, k]` matrix in one of the two inference formats.
#[derive(Debug, Clone)]
pub(crate) enum QBase {
    /// The packed int8 tiles (x86-64 with AVX2 or AVX512-VNNI).
    Packed(Arc<PackedMatrix>),
    /// candle's block format (any GGUF block type), elsewhere.
    Quant(Arc<QTensor>),
}

impl QBase {
    /// `(n, k)`: output and input widths.
    pub(crate) fn dims(&self) -> (usize, usize) {
        match self {
            QBase::Packed(p) => (p.rows(), p.cols()),
            QBase::Quant(q) => {
                let d = q.shape().dims();
                (d[0], d[1])
            }
        }
    }

    /// Bytes of weight storage.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            QBase::Packed(p) => p.bytes(),
            QBase::Quant(q) => q.storage_size_in_bytes(),
        }
    }

    /// Rows `r0 .. r0 + out.len() / k` dequantized into `out`, with candle's formulas (the
    /// values `QTensor::dequantize` gives).
    pub(crate) fn rows_into(&self, r0: usize, out: &mut [f32]) -> candle_core::Result<()> {
        let (n, k) = self.dims();
        let count = out.len() / k;
        if out.len() != count * k || r0 + count > n {
            candle_core::bail!("qlinear: rows {r0}..{} of a {n} x {k} matrix", r0 + count);
        }
        match self {
            QBase::Packed(p) => out
                .par_chunks_mut(k)
                .enumerate()
                .with_min_len(min_rows(k))
                .for_each(|(i, row)| p.row_into(r0 + i, row)),
            QBase::Quant(q) => {
                // Rows are whole blocks, so a row range is a byte range of the storage.
                let dtype = q.dtype();
                let row_bytes = k / dtype.block_size() * dtype.type_size();
                let data = q.data()?;
                let bytes = &data[r0 * row_bytes..(r0 + count) * row_bytes];
                let storage = QStorage::from_data(Cow::Borrowed(bytes), &Device::Cpu, dtype)?;
                let part = QTensor::new(storage, (count, k))?.dequantize(&Device::Cpu)?;
                out.copy_from_slice(&part.flatten_all()?.to_vec1::<f32>()?);
            }
        }
        Ok(())
    }

    /// The whole matrix dequantized, `[n, k]` f32 (merging adapters, tests): built a chunk of
    /// rows at a time, so the only f32 copy is the result.
    pub(crate) fn dequantize(&self) -> candle_core::Result<Tensor> {
        let (n, k) = self.dims();
        let mut out = vec![0f32; n * k];
        let rows = chunk_rows(k);
        for (c, part) in out.chunks_mut(rows * k).enumerate() {
            self.rows_into(c * rows, part)?;
        }
        Tensor::from_vec(out, (n, k), &Device::Cpu)
    }

    /// `dX = dY W` for `dY [.., n]`, `W` dequantized [`CHUNK_VALUES`] at a time.
    fn input_grad(&self, dy: &Tensor, x_shape: &Shape) -> candle_core::Result<Tensor> {
        let (n, k) = self.dims();
        let m = dy.elem_count() / n;
        let dy = dy.detach().contiguous()?.reshape((m, n))?;
        let rows = chunk_rows(k);
        let mut acc: Option<Tensor> = None;
        for j0 in (0..n).step_by(rows) {
            let c = rows.min(n - j0);
            let mut w = vec![0f32; c * k];
            self.rows_into(j0, &mut w)?;
            let w = Tensor::from_vec(w, (c, k), &Device::Cpu)?;
            let g = if c == n {
                dy.clone()
            } else {
                dy.narrow(1, j0, c)?.contiguous()?
            };
            let part = g.matmul(&w)?;
            // Chunks are added in row order, so the sum does not depend on threads.
            acc = Some(match acc {
                Some(a) => (a + part)?,
                None => part,
            });
        }
        match acc {
            Some(a) => a.reshape(x_shape),
            None => Tensor::zeros(x_shape, DType::F32, &Device::Cpu),
        }
    }
}

/// Rows per dequantized chunk for rows of `k` values (a multiple of 16, the packed tile height).
fn chunk_rows(k: usize) -> usize {
    ((CHUNK_VALUES / k.max(1)) / 16 * 16).max(16)
}

struct QLinearOp(QBase);

impl CustomOp1 for QLinearOp {
    fn name(&self) -> &'static str {
        "medu1-qlinear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        match &self.0 {
            QBase::Packed(p) => {
                let x = f32_slice(s, l, "qlinear")?;
                let mut dims = l.dims().to_vec();
                if dims.last() != Some(&p.cols()) {
                    candle_core::bail!(
                        "qlinear: input {dims:?} vs a {} x {} matrix",
                        p.rows(),
                        p.cols()
                    );
                }
                *dims.last_mut().expect("non-empty dims") = p.rows();
                Ok((CpuStorage::F32(p.matmul(x)), Shape::from(dims)))
            }
            // candle's own kernel: the values `QMatMul::forward` gives.
            QBase::Quant(q) => q.cpu_fwd(s, l),
        }
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(self.0.input_grad(dy, x.shape())?))
    }
}

/// `x W^T` for `x [.., k]` on the CPU, differentiable in `x`.
pub(crate) fn qlinear(x: &Tensor, base: &QBase) -> candle_core::Result<Tensor> {
    x.to_dtype(DType::F32)?
        .contiguous()?
        .apply_op1(QLinearOp(base.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_op::testing::max_diff;
    use candle_core::quantized::GgmlDType;
    use candle_core::{Module, Var};

    /// The bases a CPU builds: packed tiles where it runs them, candle's blocks always.
    fn bases(w: &Tensor, dtype: GgmlDType) -> Vec<QBase> {
        let q = QTensor::quantize(w, dtype).unwrap();
        let mut out = Vec::new();
        if let Some(p) = PackedMatrix::pack(&q).unwrap() {
            out.push(QBase::Packed(Arc::new(p)));
        }
        out.push(QBase::Quant(Arc::new(q)));
        out
    }

    /// The input gradient equals that of `x W_deq^T` with candle's dense matmul, for chunked
    /// (n above one chunk's rows) and single-chunk matrices and a 3-D input.
    #[test]
    fn input_gradient_equals_the_dense_matmul_of_the_dequantized_weights() {
        let dev = Device::Cpu;
        for (n, k) in [(40, 64), (2 * chunk_rows(4096) + 24, 4096)] {
            let w = Tensor::randn(0f32, 0.5, (n, k), &dev).unwrap();
            for dtype in [GgmlDType::Q8_0, GgmlDType::Q4_1] {
                for base in bases(&w, dtype) {
                    let wd = base.dequantize().unwrap();
                    let want_w = QTensor::quantize(&w, dtype)
                        .unwrap()
                        .dequantize(&dev)
                        .unwrap();
                    assert_eq!(max_diff(&wd, &want_w), 0.0, "dequantize");
                    let x = Var::randn(0f32, 1.0, (2, 3, k), &dev).unwrap();
                    let r = Tensor::randn(0f32, 1.0, (2, 3, n), &dev).unwrap();
                    let y = qlinear(x.as_tensor(), &base).unwrap();
                    let dense = x.broadcast_matmul(&wd.t().unwrap()).unwrap();
                    // Forward: the kernels round activations to int8 per 32 values.
                    let scale = dense
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap();
                    assert!(max_diff(&y, &dense) < 2e-2 * scale, "forward {dtype:?}");
                    let g = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                    let gd = (dense * &r).unwrap().sum_all().unwrap().backward().unwrap();
                    let (g, gd) = (g.get(&x).unwrap(), gd.get(&x).unwrap());
                    let gs = gd
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap();
                    let err = max_diff(g, gd);
                    eprintln!("n={n} k={k} {dtype:?}: input-gradient error {err:e} (scale {gs})");
                    assert!(err <= 1e-5 * gs, "{dtype:?} n={n}: {err} vs scale {gs}");
                }
            }
        }
    }

    /// Forward values are the inference kernels' (the same bits as `Linear` in `Infer` mode).
    #[test]
    fn forward_values_are_the_kernels_bits() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.5, (48, 96), &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (5, 96), &dev).unwrap();
        for base in bases(&w, GgmlDType::Q8_0) {
            let got = qlinear(&x, &base).unwrap().to_vec2::<f32>().unwrap();
            let want = match &base {
                QBase::Packed(p) => Tensor::from_vec(
                    p.matmul(&x.flatten_all().unwrap().to_vec1::<f32>().unwrap()),
                    (5, 48),
                    &dev,
                )
                .unwrap(),
                QBase::Quant(q) => candle_core::quantized::QMatMul::from_arc(q.clone())
                    .unwrap()
                    .forward(&x)
                    .unwrap(),
            };
            assert_eq!(got, want.to_vec2::<f32>().unwrap());
        }
    }
}
