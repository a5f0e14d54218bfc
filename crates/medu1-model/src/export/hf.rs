//! A policy as a Hugging Face folder (`model.safetensors`, `config.json`, `tokenizer.json`,
//! `tokenizer_config.json` with the chat template), which vLLM, transformers and `medu1 eval
//! --model` load. The trainer writes one into each checkpoint's `hf/` (inside its own atomic
//! checkpoint folder); [`export_hf_folder`] writes a standalone one atomically.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};
use crate::{Model, Tokenizer};

/// Writes `model`'s weights and config and `tokenizer`'s files into `dir`.
pub fn save_hf_folder(model: &Model, tokenizer: &Tokenizer, dir: &Path) -> Result<()> {
    model.save_hf(dir)?;
    save_tokenizer_files(tokenizer, dir)
}

/// Writes `tokenizer.json` and `tokenizer_config.json` (bos/eos tokens, chat template) into
/// `dir`.
pub fn save_tokenizer_files(tokenizer: &Tokenizer, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
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

/// Fills a temporary sibling folder of `dir` with `fill`, then puts it in `dir`'s place (an
/// existing `dir` is replaced only once the new folder is complete).
pub fn write_folder_atomic(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let sibling = |tag: &str| -> PathBuf {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        dir.with_file_name(format!(".{name}.{}.{tag}", std::process::id()))
    };
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Write { path, source }
    };
    let tmp = sibling("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(write_err(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(write_err(&tmp))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        let old = sibling("old");
        std::fs::rename(dir, &old).map_err(write_err(dir))?;
        std::fs::rename(&tmp, dir).map_err(write_err(dir))?;
        std::fs::remove_dir_all(&old).map_err(write_err(&old))?;
    } else {
        std::fs::rename(&tmp, dir).map_err(write_err(dir))?;
    }
    Ok(())
}

/// Writes `model` and `tokenizer` as a Hugging Face folder at `dir`, atomically.
pub fn export_hf_folder(model: &Model, tokenizer: &Tokenizer, dir: &Path) -> Result<()> {
    write_folder_atomic(dir, |tmp| save_hf_folder(model, tokenizer, tmp))
}
