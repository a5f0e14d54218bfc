//! Random-weight models in the real shapes of released models, for speed and memory
//! benchmarks where the weights cannot be downloaded: Qwen2.5 0.5B / 1.5B / 3B configs exactly
//! (`preset`), weights drawn from a seed (`weights`), a synthetic tokenizer with the real
//! vocabulary size (`tokenizer`), written as a GGUF file or a Hugging Face folder. The text such
//! a model generates is noise; its cost per token is the real model's.

mod preset;
mod tokenizer;
mod weights;

use std::borrow::Cow;
use std::path::Path;

use safetensors::tensor::{Dtype, View};

use crate::config::{ModelConfig, RopeLayout};
use crate::error::{ModelError, Result};
use crate::export::{
    GgufBuilder, GgufQuant, GgufReport, GgufTokenizer, save_tokenizer_files, write_folder_atomic,
};
use crate::tokenizer::Tokenizer;

pub use preset::RandomPreset;
pub use tokenizer::{CHATML_TEMPLATE, SPECIALS, synthetic_tokenizer};
pub use weights::{STD, random_tensor, random_values};

/// Writes a random model of `config` (its tokenizer: `tokenizer`) as a GGUF file, each tensor
/// generated and quantized in turn.
pub fn write_random_gguf(
    config: &ModelConfig,
    tokenizer: &Tokenizer,
    seed: u64,
    quant: GgufQuant,
    name: &str,
    path: &Path,
) -> Result<GgufReport> {
    let pad = tokenizer.token_id("<|endoftext|>");
    let meta = GgufTokenizer::from_tokenizer(tokenizer, config.vocab_size, pad, None)?;
    let mut b = GgufBuilder::new(config, quant)?;
    for (n, shape) in config.tensor_shapes() {
        b.add(&n, &random_tensor(&n, &shape, seed)?, RopeLayout::HalfSplit)?;
    }
    b.write(path, name, &meta)
}

/// One tensor of a random model, generated when the safetensors writer asks for its bytes
/// (as bf16, the dtype Qwen2.5 is released in), so memory holds one tensor at a time.
struct LazyBf16 {
    name: String,
    shape: Vec<usize>,
    seed: u64,
}

impl View for LazyBf16 {
    fn dtype(&self) -> Dtype {
        Dtype::BF16
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let n = self.shape.iter().product();
        let v = random_values(&self.name, n, self.seed);
        Cow::Owned(
            v.into_iter()
                .flat_map(|x| half::bf16::from_f32(x).to_le_bytes())
                .collect(),
        )
    }
    fn data_len(&self) -> usize {
        self.shape.iter().product::<usize>() * 2
    }
}

/// Writes a random model of `config` as a Hugging Face folder (bf16 `model.safetensors`,
/// `config.json`, tokenizer files), atomically.
pub fn write_random_hf(
    config: &ModelConfig,
    tokenizer: &Tokenizer,
    seed: u64,
    dir: &Path,
) -> Result<()> {
    config.validate()?;
    write_folder_atomic(dir, |tmp| {
        let tensors = config.tensor_shapes().into_iter().map(|(name, shape)| {
            let view = LazyBf16 {
                name: name.clone(),
                shape,
                seed,
            };
            (name, view)
        });
        let st = tmp.join("model.safetensors");
        safetensors::serialize_to_file(tensors, None, &st).map_err(|e| ModelError::Write {
            path: st.clone(),
            source: std::io::Error::other(e),
        })?;
        let mut json = config.to_hf_json();
        json["torch_dtype"] = "bfloat16".into();
        let cj = tmp.join("config.json");
        let text = serde_json::to_string_pretty(&json).map_err(|source| ModelError::Json {
            path: cj.clone(),
            source,
        })?;
        std::fs::write(&cj, text).map_err(|e| ModelError::Write {
            path: cj.clone(),
            source: e,
        })?;
        save_tokenizer_files(tokenizer, tmp)
    })
}
