//! A policy as a Hugging Face folder (`model.safetensors`, `config.json`, `tokenizer.json`,
//! `tokenizer_config.json` with the chat template), which vLLM, transformers and `medu1 eval
//! --model` load. The trainer writes one into each checkpoint's `hf/`.

use std::path::Path;

use crate::error::{ModelError, Result};
use crate::{Model, Tokenizer};

/// Writes `model`'s weights and config and `tokenizer`'s files into `dir`.
pub fn save_hf_folder(model: &Model, tokenizer: &Tokenizer, dir: &Path) -> Result<()> {
    model.save_hf(dir)?;
    let tok_path = dir.join("tokenizer.json");
    tokenizer
        .inner()
        .save(&tok_path, false)
        .map_err(|e| ModelError::Tokenizer(format!("cannot write {}: {e}", tok_path.display())))?;
    let tok = |id: Option<u32>| id.and_then(|i| tokenizer.decode(&[i], false).ok());
    let cfg = serde_json::json!({
        "bos_token": tok(tokenizer.bos_id),
        "eos_token": tok(tokenizer.eos_id),
        "chat_template": tokenizer.chat_template,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    let path = dir.join("tokenizer_config.json");
    let text = serde_json::to_string_pretty(&cfg).map_err(|source| ModelError::Json {
        path: path.clone(),
        source,
    })?;
    medu1_core::atomic::write_atomic(&path, text.as_bytes())
        .map_err(|source| ModelError::Write { path, source })
}
