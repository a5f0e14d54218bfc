//! A projection `y = x W^T + b` and the dispatch over how its weight is stored: the packed int8
//! kernels of [`crate::qmatmul`] (x86-64), candle's `QMatMul`, or a dense (possibly trainable)
//! tensor; its optional LoRA adapter; and how a checkpoint's weights become one, per
//! [`InferQuant`].

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use crate::error::{ModelError, Result};
use crate::options::{InferQuant, LoadOptions};
use crate::qlinear::{QBase, qlinear};
use crate::qmatmul::PackedMatrix;

/// A weight as the checkpoint holds it, before the mode decides its final form.
#[derive(Debug, Clone)]
pub(crate) enum Raw {
    Quant(Arc<QTensor>),
    Dense(Tensor),
}

impl Raw {
    /// The GGUF block type, for quantized weights.
    pub(crate) fn block_dtype(&self) -> Option<GgmlDType> {
        match self {
            Raw::Quant(q) => Some(q.dtype()),
            Raw::Dense(_) => None,
        }
    }

    /// The input width of a `[out, in]` matrix.
    pub(crate) fn cols(&self) -> Result<usize> {
        Ok(match self {
            Raw::Quant(q) => q.shape().dims()[1],
            Raw::Dense(t) => t.dim(1)?,
        })
    }

    pub(crate) fn to_f32(&self) -> Result<Tensor> {
        Ok(match self {
            Raw::Quant(q) => q.dequantize(&Device::Cpu)?,
            Raw::Dense(t) => t.to_dtype(DType::F32)?,
        })
    }
}

/// The weight of a projection: quantized for inference, dense (possibly a `Var`'s tensor) else.
#[derive(Debug, Clone)]
pub(crate) enum Weight {
    /// In the tile layout of [`crate::qmatmul`], where this CPU runs its kernels.
    Packed(Arc<PackedMatrix>),
    Quant(QMatMul),
    Dense(Tensor),
}

/// `y = x W^T + b`, with `W` stored `[out, in]` as in both checkpoint formats, plus a LoRA
/// adapter's `scale * B A x` when it has one.
#[derive(Debug, Clone)]
pub struct Linear {
    pub(crate) weight: Weight,
    pub(crate) bias: Option<Tensor>,
    pub(crate) lora: Option<Adapter>,
}

/// A LoRA adapter of one projection: `A [rank, in]`, `B [out, rank]` (the `Var`s' tensors while
/// training, detached views of them in an inference view).
#[derive(Debug, Clone)]
pub(crate) struct Adapter {
    pub(crate) a: Tensor,
    pub(crate) b: Tensor,
    pub(crate) scale: f64,
    pub(crate) dropout: f32,
    /// Seed of this adapter's dropout masks; `None` disables dropout (evaluation, rollouts, the
    /// reference pass), so a forward pass is deterministic unless a trainer asks otherwise.
    pub(crate) dropout_seed: Option<u64>,
}

impl Adapter {
    /// `scale * dropout(x) A^T B^T` for `x [.., in]`: two thin matmuls through the rank.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let k = *dims.last().unwrap_or(&0);
        let rows = x.elem_count() / k.max(1);
        let mut x = x.reshape((rows, k))?;
        if let (Some(seed), true) = (self.dropout_seed, self.dropout > 0.0) {
            x = x.broadcast_mul(&dropout_mask(seed, rows, k, self.dropout, x.device())?)?;
        }
        let y = (x.matmul(&self.a.t()?)?.matmul(&self.b.t()?)? * self.scale)?;
        let mut out = dims;
        *out.last_mut().expect("non-empty dims") = self.b.dim(0)?;
        Ok(y.reshape(out)?)
    }
}

/// Inverted dropout: each value kept with probability `1 - p` and scaled by `1 / (1 - p)`,
/// drawn from `seed` (candle's own dropout draws from an unseeded generator, which would break
/// exact resume).
fn dropout_mask(seed: u64, rows: usize, k: usize, p: f32, dev: &Device) -> Result<Tensor> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let keep = 1.0 / (1.0 - p);
    let m: Vec<f32> = (0..rows * k)
        .map(|_| if rng.random::<f32>() < p { 0.0 } else { keep })
        .collect();
    Ok(Tensor::from_vec(m, (rows, k), dev)?)
}

impl Linear {
    pub(crate) fn new(weight: Weight, bias: Option<Tensor>) -> Linear {
        Linear {
            weight,
            bias,
            lora: None,
        }
    }

    /// The quantized form of the weight, if it has one.
    pub(crate) fn qbase(&self) -> Option<QBase> {
        match &self.weight {
            Weight::Packed(p) => Some(QBase::Packed(p.clone())),
            Weight::Quant(QMatMul::QTensor(q)) => Some(QBase::Quant(q.clone())),
            _ => None,
        }
    }

    /// The weight as a dense tensor, where it is held as one.
    fn dense(&self) -> Option<&Tensor> {
        match &self.weight {
            Weight::Dense(w) | Weight::Quant(QMatMul::Tensor(w) | QMatMul::TensorF16(w)) => Some(w),
            Weight::Packed(_) | Weight::Quant(QMatMul::QTensor(_)) => None,
        }
    }

    /// `(out, in)`.
    pub(crate) fn dims(&self) -> Result<(usize, usize)> {
        match (self.qbase(), self.dense()) {
            (Some(q), _) => Ok(q.dims()),
            (None, Some(w)) => Ok(w.dims2()?),
            (None, None) => unreachable!("a weight is quantized or dense"),
        }
    }

    /// The weight as a dense f32 `[out, in]` tensor outside the autograd graph (merging).
    pub(crate) fn dense_weight(&self) -> Result<Tensor> {
        match (self.qbase(), self.dense()) {
            (Some(q), _) => Ok(q.dequantize()?),
            (None, Some(w)) => Ok(w.detach().to_dtype(DType::F32)?),
            (None, None) => unreachable!("a weight is quantized or dense"),
        }
    }

    /// Bytes of the weight: `(quantized, dense)`.
    pub(crate) fn weight_bytes(&self) -> (usize, usize) {
        match (self.qbase(), self.dense()) {
            (Some(q), _) => (q.bytes(), 0),
            (None, Some(w)) => (0, w.elem_count() * w.dtype().size_in_bytes()),
            (None, None) => (0, 0),
        }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match (&self.weight, self.qbase()) {
            // One op with a backward pass for the input, whose forward is the inference kernel;
            // LoRA training differentiates through it.
            (_, Some(q)) if x.device().is_cpu() => qlinear(x, &q)?,
            (Weight::Packed(_), _) => {
                return Err(ModelError::Unsupported(
                    "packed quantized weights run on the CPU only".into(),
                ));
            }
            // QMatMul reads its input as one slice: a narrowed/transposed view must be copied
            // (candle's quantized_llama fails at batch > 1 for lack of this).
            (Weight::Quant(q), _) => q.forward(&x.contiguous()?)?,
            (Weight::Dense(w), _) => {
                let dims = x.dims().to_vec();
                let k = *dims.last().unwrap_or(&0);
                let rows: usize = dims[..dims.len() - 1].iter().product();
                let y = x.reshape((rows, k))?.matmul(&w.t()?)?;
                let mut out = dims;
                *out.last_mut().expect("non-empty dims") = w.dim(0)?;
                y.reshape(out)?
            }
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        // PEFT's order: the base layer's output (bias included), then the adapter's term. With
        // `B = 0` that term is exactly zero and the output keeps the base's bits.
        Ok(match &self.lora {
            Some(ad) => (y + ad.forward(x)?)?,
            None => y,
        })
    }
}

/// Builds one inference projection from one or more `[out_i, in]` weight parts stacked along
/// `out`, with its bias.
pub(crate) fn fuse_weights(
    parts: &[Raw],
    opts: LoadOptions,
    bias: Option<Tensor>,
) -> Result<Linear> {
    let k = parts[0].cols()?;
    let first = parts[0].block_dtype();
    // The block format as stored: rows are independent blocks, so the parts' bytes stack.
    if keeps_stored_blocks(parts, opts.quant)? {
        let dtype = first.expect("checked");
        let mut bytes = Vec::new();
        let mut rows = 0;
        for p in parts {
            if let Raw::Quant(q) = p {
                bytes.extend_from_slice(&q.data()?);
                rows += q.shape().dims()[0];
            }
        }
        let storage = QStorage::from_data(std::borrow::Cow::Owned(bytes), &Device::Cpu, dtype)?;
        let qt = QTensor::new(storage, (rows, k))?;
        return Ok(Linear::new(quant_weight(qt)?, bias));
    }
    let dense = if parts.len() == 1 {
        parts[0].to_f32()?
    } else {
        let ts = parts.iter().map(Raw::to_f32).collect::<Result<Vec<_>>>()?;
        Tensor::cat(&ts, 0)?
    };
    let to_q8 = match opts.quant {
        InferQuant::Q8_0 | InferQuant::Auto => true,
        InferQuant::Original => first.is_some(),
        InferQuant::F32 => false,
    };
    if to_q8 && k.is_multiple_of(GgmlDType::Q8_0.block_size()) {
        let qt = QTensor::quantize(&dense, GgmlDType::Q8_0)?;
        Ok(Linear::new(quant_weight(qt)?, bias))
    } else {
        Ok(Linear::new(Weight::Dense(dense), bias))
    }
}

/// Whether the inference projection built from `parts` (`[out_i, in]`, stacked along `out`)
/// keeps their stored block format instead of requantizing to Q8_0 or going dense.
pub(crate) fn keeps_stored_blocks(parts: &[Raw], quant: InferQuant) -> Result<bool> {
    let first = parts[0].block_dtype();
    let same = first.is_some() && parts.iter().all(|p| p.block_dtype() == first);
    Ok(match quant {
        InferQuant::Original => same,
        InferQuant::Auto => {
            same && crate::qmatmul::available()
                && matches!(first, Some(GgmlDType::Q4_1 | GgmlDType::Q8_0))
                && parts[0]
                    .cols()?
                    .is_multiple_of(GgmlDType::Q8_0.block_size())
        }
        InferQuant::Q8_0 | InferQuant::F32 => false,
    })
}

/// A quantized weight in the packed layout where this CPU runs those kernels, else candle's.
pub(crate) fn quant_weight(qt: QTensor) -> Result<Weight> {
    Ok(match PackedMatrix::pack(&qt)? {
        Some(p) => Weight::Packed(Arc::new(p)),
        None => Weight::Quant(QMatMul::from_qtensor(qt)?),
    })
}
