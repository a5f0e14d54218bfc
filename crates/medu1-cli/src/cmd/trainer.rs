//! What `medu1 train` and `medu1 sft` share: the start mode from `--resume` / `--overwrite`, and
//! the export of a checkpoint's weights and tokenizer as a Hugging Face folder.

use std::path::Path;

use medu1_model::{Model, Tokenizer};
use medu1_rl::run::Start;

/// `--resume` / `--overwrite` / neither, as the trainer's start mode.
pub fn start_mode(resume: bool, overwrite: bool) -> Start {
    match (resume, overwrite) {
        (true, _) => Start::Resume,
        (false, true) => Start::Overwrite,
        (false, false) => Start::New,
    }
}

/// Writes a Hugging Face folder: weights + config.json (save_hf), tokenizer.json and a
/// tokenizer_config.json carrying the chat template and special tokens.
pub fn export_hf(model: &Model, tokenizer: &Tokenizer, dir: &Path) -> Result<(), String> {
    model
        .save_hf(dir)
        .map_err(|e| medu1_core::error::chain(&e))?;
    tokenizer
        .inner()
        .save(dir.join("tokenizer.json"), false)
        .map_err(|e| e.to_string())?;
    let tok = |id: Option<u32>| id.and_then(|i| tokenizer.decode(&[i], false).ok());
    let cfg = serde_json::json!({
        "bos_token": tok(tokenizer.bos_id),
        "eos_token": tok(tokenizer.eos_id),
        "chat_template": tokenizer.chat_template,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    let text = serde_json::to_string_pretty(&cfg).map_err(|e| e.to_string())?;
    medu1_core::atomic::write_atomic(dir.join("tokenizer_config.json"), text.as_bytes())
        .map_err(|e| e.to_string())
}
