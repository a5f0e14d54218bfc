//! The model runtime of medu1: Llama and Qwen2 decoders on candle, loaded from GGUF or from a
//! Hugging Face folder, with their tokenizer, batched generation (shared prefill, KV cache,
//! sampling, log-probs) and a differentiable training path whose weights are `Var`s that can be
//! saved back as Hugging Face safetensors.
//!
//! The GRPO trainer uses [`Model`] in [`Mode::Train`] ([`Model::token_logprobs`],
//! [`Model::trainable_vars`], [`Model::save_hf`]); the evaluation runner and the CLI use
//! [`generate`] on a model in [`Mode::Infer`]. [`Mode::Lora`] trains PEFT-compatible adapters
//! over the frozen quantized base ([`lora`]).

mod attention;
pub mod config;
mod cpu_op;
mod decode_attention;
mod entropy;
pub mod error;
pub mod export;
pub mod generate;
mod grad_side;
mod kv_cache;
mod linear;
mod llama_cpp;
pub mod logprobs;
pub mod lora;
pub mod lora_config;
pub mod model;
mod norm;
mod options;
mod qlinear;
mod qmatmul;
pub mod random;
mod recompute;
mod rope;
pub mod sampling;
mod swiglu;
pub mod tokenizer;
mod weights;

use std::path::Path;

pub use config::{Arch, ModelConfig, RopeLayout};
pub use entropy::softmax_entropy;
pub use error::{ModelError, Result};
pub use export::{GgufQuant, export_gguf, export_hf_folder, save_hf_folder};
pub use generate::{Generation, GenerationStats, generate};
pub use logprobs::gather_log_softmax;
pub use lora::MemoryUse;
pub use lora_config::{LoraConfig, Projection, Targets};
pub use model::{InferQuant, KvCache, LoadOptions, Mode, Model};
pub use options::DeviceSpec;
pub use sampling::SamplingParams;
pub use tokenizer::Tokenizer;

/// Loads a model and its tokenizer from a `.gguf` file or a Hugging Face folder.
pub fn load(path: &Path, opts: LoadOptions) -> Result<(Model, Tokenizer)> {
    if path.is_dir() {
        Ok((
            Model::from_hf_dir(path, opts)?,
            Tokenizer::from_hf_dir(path)?,
        ))
    } else {
        Ok((
            Model::from_gguf(path, opts)?,
            Tokenizer::from_gguf_file(path)?,
        ))
    }
}
