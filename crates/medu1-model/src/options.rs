//! How a model is loaded: its execution path ([`Mode`]), the inference weight format
//! ([`InferQuant`]), the adapters of LoRA training ([`LoraConfig`]) and all together
//! ([`LoadOptions`]).

use crate::error::{ModelError, Result};
use crate::lora_config::LoraConfig;

/// Which of the two execution paths a model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// f32 [`Var`]s and differentiable ops: for training and exact reference log-probs.
    Train,
    /// Quantized or f32 constants, fused kernels, KV cache: for generation.
    Infer,
    /// LoRA training: the base frozen in the inference weight format (separate q/k/v and
    /// gate/up projections, each with its adapter), differentiable ops as in `Train`; the only
    /// `Var`s are the adapters.
    Lora,
}

/// The matmul weight format of the inference path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InferQuant {
    /// GGUF Q4_1 and Q8_0 matrices as stored where this CPU runs the packed kernels of
    /// `qmatmul` (x86-64 with AVX2; VNNI ones with AVX512-VNNI): they then cost no
    /// requantization error and a 4-bit matrix streams half the bytes; every other matrix
    /// requantized to Q8_0.
    Auto,
    /// Keep the checkpoint's format (GGUF block types as stored; safetensors as dense f32).
    Original,
    /// Requantize every matrix to Q8_0: candle's Q4_1 dot product is a scalar loop while Q8_0
    /// has SIMD kernels (and the packed kernels run Q8_0 on any matrix whose width is a
    /// multiple of 32).
    Q8_0,
    /// Dense f32 matrices.
    F32,
}

impl std::str::FromStr for InferQuant {
    type Err = ModelError;

    /// The names the CLI and configs use: `auto`, `original`, `q8_0` (or `q8`), `f32`.
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "auto" => InferQuant::Auto,
            "original" => InferQuant::Original,
            "q8_0" | "q8" => InferQuant::Q8_0,
            "f32" => InferQuant::F32,
            other => {
                return Err(ModelError::Config(format!(
                    "unknown weight format `{other}`: use auto, original, q8_0 or f32"
                )));
            }
        })
    }
}

/// How to build a model from a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub mode: Mode,
    /// The weight format of the inference path and of a LoRA base.
    pub quant: InferQuant,
    /// The adapters of [`Mode::Lora`] (required there, refused in the other modes).
    pub lora: Option<LoraConfig>,
}

impl LoadOptions {
    /// Training: f32 `Var`s everywhere.
    pub fn train() -> Self {
        LoadOptions {
            mode: Mode::Train,
            quant: InferQuant::F32,
            lora: None,
        }
    }
    /// Generation with the fastest measured weight format ([`InferQuant::Auto`]).
    pub fn infer() -> Self {
        LoadOptions {
            mode: Mode::Infer,
            quant: InferQuant::Auto,
            lora: None,
        }
    }

    /// LoRA training over the base in the inference format ([`InferQuant::Auto`]: GGUF Q4_1 /
    /// Q8_0 blocks as stored where the packed kernels run, everything else requantized once to
    /// Q8_0).
    pub fn lora(cfg: LoraConfig) -> Self {
        LoadOptions {
            mode: Mode::Lora,
            quant: InferQuant::Auto,
            lora: Some(cfg),
        }
    }

    /// Plain inference in `quant`'s weight format.
    pub fn infer_with(quant: InferQuant) -> Self {
        LoadOptions {
            mode: Mode::Infer,
            quant,
            lora: None,
        }
    }

    /// The adapter settings, checked against the mode.
    pub(crate) fn lora_config(&self) -> Result<Option<LoraConfig>> {
        match (self.mode, self.lora) {
            (Mode::Lora, Some(c)) => {
                c.validate()?;
                Ok(Some(c))
            }
            (Mode::Lora, None) => Err(ModelError::Config(
                "LoRA mode needs a LoraConfig (LoadOptions::lora)".into(),
            )),
            (_, Some(_)) => Err(ModelError::Config(
                "a LoraConfig is only used in LoRA mode (LoadOptions::lora)".into(),
            )),
            (_, None) => Ok(None),
        }
    }
}
