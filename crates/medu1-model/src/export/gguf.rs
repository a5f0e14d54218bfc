//! Writing a decoder as a GGUF file that both medu1 and llama.cpp load: llama.cpp's tensor
//! names and q/k row layout, matrices quantized to the requested block type (norm weights and
//! biases stay f32, as llama.cpp keeps them), the architecture's metadata and the tokenizer's.
//!
//! Tensors arrive one at a time ([`GgufBuilder::add`]) and are quantized on arrival, so a model
//! generated tensor by tensor (random weights) never exists in f32 as a whole. The file is
//! written to a temporary sibling and renamed: a failed export leaves no partial output.

use std::path::Path;

use candle_core::Tensor;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};

use super::gguf_tokenizer::GgufTokenizer;
use crate::config::{ModelConfig, RopeLayout};
use crate::error::{ModelError, Result};
use crate::llama_cpp::{hf_to_gguf_name, relayout_rows};
use crate::model::Model;
use crate::options::Mode;

/// The block type of a GGUF export's matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufQuant {
    F32,
    F16,
    /// 8-bit blocks of 32 with an f16 scale (8.5 bits a weight).
    Q8_0,
    /// 4-bit blocks of 32 with an f16 scale and minimum (6 bits a weight). The output head
    /// (the embedding when tied) stays Q8_0, as llama.cpp's quantizer keeps it at 6 to 8 bits.
    Q4_1,
}

impl GgufQuant {
    pub fn as_str(self) -> &'static str {
        match self {
            GgufQuant::F32 => "f32",
            GgufQuant::F16 => "f16",
            GgufQuant::Q8_0 => "q8_0",
            GgufQuant::Q4_1 => "q4_1",
        }
    }

    fn dtype(self) -> GgmlDType {
        match self {
            GgufQuant::F32 => GgmlDType::F32,
            GgufQuant::F16 => GgmlDType::F16,
            GgufQuant::Q8_0 => GgmlDType::Q8_0,
            GgufQuant::Q4_1 => GgmlDType::Q4_1,
        }
    }

    /// llama.cpp's `general.file_type` (`llama_ftype`: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0,
    /// MOSTLY_Q4_1).
    fn file_type(self) -> u32 {
        match self {
            GgufQuant::F32 => 0,
            GgufQuant::F16 => 1,
            GgufQuant::Q8_0 => 7,
            GgufQuant::Q4_1 => 3,
        }
    }
}

impl std::str::FromStr for GgufQuant {
    type Err = ModelError;

    fn from_str(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "f32" => GgufQuant::F32,
            "f16" => GgufQuant::F16,
            "q8_0" | "q8" => GgufQuant::Q8_0,
            "q4_1" => GgufQuant::Q4_1,
            other => {
                return Err(ModelError::Config(format!(
                    "unknown gguf weight format `{other}`: use q8_0, f16, q4_1 or f32"
                )));
            }
        })
    }
}

/// What a GGUF export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufReport {
    pub tensors: usize,
    pub bytes: u64,
    /// Matrices written as F16 instead of the requested block type because their rows are not
    /// a whole number of blocks.
    pub f16_fallbacks: Vec<String>,
}

/// A GGUF file in the making: the config and the tensors quantized so far.
#[derive(Debug)]
pub struct GgufBuilder {
    config: ModelConfig,
    quant: GgufQuant,
    tensors: Vec<(String, QTensor)>,
    f16_fallbacks: Vec<String>,
}

impl GgufBuilder {
    pub fn new(config: &ModelConfig, quant: GgufQuant) -> Result<Self> {
        config.validate()?;
        Ok(GgufBuilder {
            config: config.clone(),
            quant,
            tensors: Vec::new(),
            f16_fallbacks: Vec::new(),
        })
    }

    /// Adds the tensor Hugging Face calls `hf_name`, whose q/k rows (if it has any) are in
    /// `layout`: renamed, put in the GGUF layout of the architecture and quantized.
    pub fn add(&mut self, hf_name: &str, t: &Tensor, layout: RopeLayout) -> Result<()> {
        let name = hf_to_gguf_name(hf_name).ok_or_else(|| {
            ModelError::Unsupported(format!("tensor `{hf_name}` has no llama.cpp name"))
        })?;
        let t = relayout_rows(
            &self.config,
            hf_name,
            t,
            layout,
            self.config.arch.gguf_rope_layout(),
        )?;
        let dtype = self.dtype_of(&name, t.dims())?;
        let q = QTensor::quantize(&t.contiguous()?, dtype)?;
        self.tensors.push((name, q));
        Ok(())
    }

    /// The block type of tensor `name`: f32 for vectors, else the requested type (Q8_0 for the
    /// output head of a Q4_1 file), F16 when a row is not a whole number of blocks.
    fn dtype_of(&mut self, name: &str, dims: &[usize]) -> Result<GgmlDType> {
        let &[_, cols] = dims else {
            if dims.len() == 1 {
                return Ok(GgmlDType::F32);
            }
            return Err(ModelError::Unsupported(format!(
                "tensor `{name}` of shape {dims:?} in gguf"
            )));
        };
        let head = name == "output.weight"
            || (self.config.tie_word_embeddings && name == "token_embd.weight");
        let want = match self.quant {
            GgufQuant::Q4_1 if head => GgmlDType::Q8_0,
            q => q.dtype(),
        };
        if cols.is_multiple_of(want.block_size()) {
            Ok(want)
        } else {
            self.f16_fallbacks.push(name.to_string());
            Ok(GgmlDType::F16)
        }
    }

    /// Writes the file with `general.name = name` and `tokenizer`'s metadata, through a
    /// temporary sibling of `path` renamed into place.
    pub fn write(self, path: &Path, name: &str, tokenizer: &GgufTokenizer) -> Result<GgufReport> {
        let expected = expected_tensors(&self.config);
        let mut have: Vec<&str> = self.tensors.iter().map(|(n, _)| n.as_str()).collect();
        have.sort_unstable();
        if let Some(missing) = expected
            .iter()
            .find(|n| have.binary_search(&n.as_str()).is_err())
        {
            return Err(ModelError::MissingWeight(missing.clone()));
        }
        let metadata = self.metadata(name, tokenizer);
        let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let ts: Vec<(&str, &QTensor)> = self.tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
        let write_err = |source| ModelError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut out = medu1_core::atomic::AtomicFile::create(path).map_err(write_err)?;
        gguf_file::write(&mut out, &md, &ts).map_err(|source| ModelError::WriteGguf {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        out.commit().map_err(write_err)?;
        let bytes = std::fs::metadata(path).map_err(write_err)?.len();
        Ok(GgufReport {
            tensors: self.tensors.len(),
            bytes,
            f16_fallbacks: self.f16_fallbacks,
        })
    }

    fn metadata(&self, name: &str, tokenizer: &GgufTokenizer) -> Vec<(String, Value)> {
        let c = &self.config;
        let a = c.arch.as_str();
        let u = |v: usize| Value::U32(v as u32);
        let mut md = vec![
            ("general.architecture".to_string(), Value::String(a.into())),
            ("general.name".to_string(), Value::String(name.into())),
            (
                "general.file_type".into(),
                Value::U32(self.quant.file_type()),
            ),
            ("general.quantization_version".into(), Value::U32(2)),
        ];
        let arch_keys = [
            ("context_length", u(c.max_position_embeddings)),
            ("embedding_length", u(c.hidden_size)),
            ("block_count", u(c.num_hidden_layers)),
            ("feed_forward_length", u(c.intermediate_size)),
            ("attention.head_count", u(c.num_attention_heads)),
            ("attention.head_count_kv", u(c.num_key_value_heads)),
            ("attention.key_length", u(c.head_dim)),
            ("attention.value_length", u(c.head_dim)),
            ("rope.dimension_count", u(c.head_dim)),
            ("rope.freq_base", Value::F32(c.rope_theta as f32)),
            (
                "attention.layer_norm_rms_epsilon",
                Value::F32(c.rms_norm_eps as f32),
            ),
            ("vocab_size", u(c.vocab_size)),
        ];
        md.extend(arch_keys.into_iter().map(|(k, v)| (format!("{a}.{k}"), v)));
        md.extend(tokenizer.entries().iter().cloned());
        md
    }
}

/// The llama.cpp names of every tensor `cfg`'s decoder needs.
fn expected_tensors(cfg: &ModelConfig) -> Vec<String> {
    cfg.tensor_shapes()
        .iter()
        .filter_map(|(n, _)| hf_to_gguf_name(n))
        .collect()
}

/// Writes `model` (loaded in train mode: its dense f32 weights) as a GGUF file at `path`.
pub fn export_gguf(
    model: &Model,
    tokenizer: &GgufTokenizer,
    quant: GgufQuant,
    name: &str,
    path: &Path,
) -> Result<GgufReport> {
    if model.mode() != Mode::Train {
        return Err(ModelError::Unsupported(
            "exporting needs a model loaded in train mode (dense f32 weights)".into(),
        ));
    }
    let cfg = model.config();
    let mut b = GgufBuilder::new(cfg, quant)?;
    for (hf_name, var) in model.trainable_vars() {
        b.add(hf_name, var.as_tensor(), cfg.rope_layout)?;
    }
    b.write(path, name, tokenizer)
}

/// `general.name` of a GGUF file, if it has one.
pub fn gguf_general_name(path: &Path) -> Result<Option<String>> {
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let ct = gguf_file::Content::read(&mut f)?;
    Ok(ct
        .metadata
        .get("general.name")
        .and_then(|v| v.to_string().ok().cloned()))
}
