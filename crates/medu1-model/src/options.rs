//! How a model is loaded: its execution path ([`Mode`]), the inference weight format
//! ([`InferQuant`]), the adapters of LoRA training ([`LoraConfig`]), the device it runs on
//! ([`DeviceSpec`]) and all together ([`LoadOptions`]).

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
    /// The weight format of the inference path and of a LoRA base (CPU only: on a GPU every
    /// weight is dense, see [`DeviceSpec`]).
    pub quant: InferQuant,
    /// The adapters of [`Mode::Lora`] (required there, refused in the other modes).
    pub lora: Option<LoraConfig>,
    /// Where the weights live and the passes run.
    pub device: DeviceSpec,
}

impl LoadOptions {
    /// Training: f32 `Var`s everywhere.
    pub fn train() -> Self {
        LoadOptions {
            mode: Mode::Train,
            quant: InferQuant::F32,
            lora: None,
            device: DeviceSpec::Cpu,
        }
    }
    /// Generation with the fastest measured weight format ([`InferQuant::Auto`]).
    pub fn infer() -> Self {
        LoadOptions {
            mode: Mode::Infer,
            quant: InferQuant::Auto,
            lora: None,
            device: DeviceSpec::Cpu,
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
            device: DeviceSpec::Cpu,
        }
    }

    /// Plain inference in `quant`'s weight format.
    pub fn infer_with(quant: InferQuant) -> Self {
        LoadOptions {
            mode: Mode::Infer,
            quant,
            lora: None,
            device: DeviceSpec::Cpu,
        }
    }

    /// The same options on `device`.
    pub fn on(self, device: DeviceSpec) -> Self {
        LoadOptions { device, ..self }
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

/// The device a model runs on: the CPU (the default) or a CUDA GPU by ordinal.
///
/// On CUDA every weight is a dense f32 tensor on the GPU (quantized checkpoints are
/// dequantized once at load): the packed int8 kernels and the single-node training ops are
/// CPU code, and candle's composite ops, cuBLAS matmuls and fused softmax / RMS norm / rope
/// kernels take their place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    pub fn is_cpu(self) -> bool {
        self == DeviceSpec::Cpu
    }

    /// The candle device. Every model on one GPU shares one CUDA context and stream, so their
    /// tensors can meet in one op (candle refuses tensors of two `Device::new_cuda` calls).
    pub fn device(self) -> Result<candle_core::Device> {
        match self {
            DeviceSpec::Cpu => Ok(candle_core::Device::Cpu),
            DeviceSpec::Cuda(ordinal) => cuda_device(ordinal),
        }
    }

    /// The spec of a candle device.
    pub fn of(device: &candle_core::Device) -> DeviceSpec {
        match device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => DeviceSpec::Cuda(gpu_id),
            _ => DeviceSpec::Cpu,
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> Result<candle_core::Device> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static DEVICES: OnceLock<Mutex<HashMap<usize, candle_core::Device>>> = OnceLock::new();
    let mut map = DEVICES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(d) = map.get(&ordinal) {
        return Ok(d.clone());
    }
    let d = candle_core::Device::new_cuda(ordinal)
        .map_err(|e| ModelError::Config(format!("cannot open CUDA device {ordinal}: {e}")))?;
    map.insert(ordinal, d.clone());
    Ok(d)
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(ordinal: usize) -> Result<candle_core::Device> {
    Err(ModelError::Config(format!(
        "device cuda:{ordinal} needs a medu1 built with the `cuda` feature \
         (cargo build --release --features cuda)"
    )))
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for DeviceSpec {
    type Err = ModelError;

    /// `cpu`, `cuda` (GPU 0) or `cuda:N`.
    fn from_str(name: &str) -> Result<Self> {
        let bad =
            || ModelError::Config(format!("unknown device `{name}`: use cpu, cuda or cuda:N"));
        match name {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => {
                let n = name.strip_prefix("cuda:").ok_or_else(bad)?;
                n.parse().map(DeviceSpec::Cuda).map_err(|_| bad())
            }
        }
    }
}

impl serde::Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print_back() {
        for (name, spec) in [
            ("cpu", DeviceSpec::Cpu),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
        ] {
            let parsed: DeviceSpec = name.parse().unwrap();
            assert_eq!(parsed, spec);
            assert_eq!(parsed.to_string().parse::<DeviceSpec>().unwrap(), spec);
        }
        for bad in ["gpu0", "cuda:", "cuda:x", "metal", ""] {
            let e = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(e.contains("unknown device"), "{bad}: {e}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_cuda_device_without_the_feature_says_how_to_build_one() {
        let e = DeviceSpec::Cuda(0).device().unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }
}
