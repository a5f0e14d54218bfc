//! The `tokenizer.*` metadata of a GGUF file: copied from a source GGUF, or built from a
//! Hugging Face tokenizer (byte-level BPE only, llama.cpp's `gpt2` model) the way llama.cpp's
//! `convert_hf_to_gguf.py` builds it: tokens by id (ids the tokenizer lacks up to the
//! embedding's row count become `[PAD{id}]`), token types, merges, the pre-tokenizer's name,
//! special ids and the chat template.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use serde_json::Value as Json;

use crate::error::{ModelError, Result};
use crate::tokenizer::{Tokenizer, gguf_pre_name};

/// llama.cpp's token types (`llama_token_type`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

/// The `tokenizer.*` key/value pairs of a GGUF file, in writing order.
#[derive(Debug, Clone)]
pub struct GgufTokenizer {
    entries: Vec<(String, Value)>,
}

impl GgufTokenizer {
    /// The metadata entries (`tokenizer.ggml.tokens`, ...).
    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// Copies every `tokenizer.*` key of the GGUF file at `path` (vocabulary, merges, token
    /// types, special ids, pre-tokenizer name, chat template) unchanged.
    pub fn from_gguf_file(path: &Path) -> Result<Self> {
        let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
        let ct = gguf_file::Content::read(&mut f)?;
        let mut entries: Vec<(String, Value)> = ct
            .metadata
            .into_iter()
            .filter(|(k, _)| k.starts_with("tokenizer."))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if !entries.iter().any(|(k, _)| k == "tokenizer.ggml.model") {
            return Err(ModelError::MissingMetadata(format!(
                "tokenizer.ggml.model in {}",
                path.display()
            )));
        }
        Ok(GgufTokenizer { entries })
    }

    /// Reads a Hugging Face folder's tokenizer (`tokenizer.json`, `tokenizer_config.json`,
    /// whose `pad_token` gives the padding id) and builds the metadata for a model with
    /// `vocab_size` embedding rows.
    pub fn from_hf_dir(dir: &Path, vocab_size: usize, pre: Option<&str>) -> Result<Self> {
        let tok = Tokenizer::from_hf_dir(dir)?;
        let pad = pad_token(dir)?.and_then(|t| tok.token_id(&t));
        Self::from_tokenizer(&tok, vocab_size, pad, pre)
    }

    /// Builds the metadata from a byte-level BPE tokenizer for a model with `vocab_size`
    /// embedding rows. `pre` names llama.cpp's pre-tokenizer; by default it is recognised from
    /// the tokenizer's own (smollm, qwen2, llama-bpe, gpt2), and an unrecognised one is an error
    /// (llama.cpp would split text differently).
    pub fn from_tokenizer(
        tok: &Tokenizer,
        vocab_size: usize,
        pad_id: Option<u32>,
        pre: Option<&str>,
    ) -> Result<Self> {
        let unsupported = |m: String| ModelError::Unsupported(m);
        let json: Json = serde_json::from_str(
            &tok.inner()
                .to_string(false)
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?,
        )
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let model = &json["model"];
        if model["type"] != "BPE" {
            return Err(unsupported(format!(
                "a `{}` tokenizer model in gguf (only byte-level bpe, llama.cpp's gpt2)",
                model["type"].as_str().unwrap_or("?")
            )));
        }
        if json["decoder"]["type"] != "ByteLevel" {
            return Err(unsupported(
                "a bpe tokenizer without a byte-level decoder in gguf".into(),
            ));
        }
        let pre = match pre {
            Some(p) => p.to_string(),
            None => gguf_pre_name(tok.inner())
                .map(str::to_string)
                .ok_or_else(|| {
                    unsupported(
                        "a pre-tokenizer llama.cpp has no name for (give the name explicitly)"
                            .into(),
                    )
                })?,
        };
        let (tokens, types) = tokens_and_types(&json, vocab_size)?;
        let merges = merges(&model["merges"])?;
        let mut entries = vec![
            (
                "tokenizer.ggml.model".to_string(),
                Value::String("gpt2".into()),
            ),
            ("tokenizer.ggml.pre".to_string(), Value::String(pre)),
            ("tokenizer.ggml.tokens".to_string(), strings(tokens)),
            (
                "tokenizer.ggml.token_type".to_string(),
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            ("tokenizer.ggml.merges".to_string(), strings(merges)),
        ];
        let mut id = |key: &str, v: Option<u32>| {
            if let Some(v) = v {
                entries.push((format!("tokenizer.ggml.{key}"), Value::U32(v)));
            }
        };
        id("bos_token_id", tok.bos_id);
        id("eos_token_id", tok.eos_id);
        id("padding_token_id", pad_id);
        // Chat templates write their own special tokens.
        entries.push(("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)));
        if let Some(t) = &tok.chat_template {
            entries.push(("tokenizer.chat_template".into(), Value::String(t.clone())));
        }
        Ok(GgufTokenizer { entries })
    }
}

fn strings(v: Vec<String>) -> Value {
    Value::Array(v.into_iter().map(Value::String).collect())
}

/// Tokens by id and their llama.cpp types: the BPE vocabulary (normal), added tokens (control
/// when special, else user-defined), `[PAD{id}]` (unused) for ids up to `vocab_size` that the
/// tokenizer lacks.
fn tokens_and_types(json: &Json, vocab_size: usize) -> Result<(Vec<String>, Vec<i32>)> {
    let mut by_id: HashMap<u32, (String, i32)> = HashMap::new();
    let vocab = json["model"]["vocab"]
        .as_object()
        .ok_or_else(|| ModelError::Tokenizer("bpe model without a vocab".into()))?;
    for (token, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| ModelError::Tokenizer(format!("token `{token}` has no integer id")))?;
        by_id.insert(id as u32, (token.clone(), NORMAL));
    }
    for added in json["added_tokens"].as_array().into_iter().flatten() {
        let (Some(id), Some(content)) = (added["id"].as_u64(), added["content"].as_str()) else {
            continue;
        };
        let kind = if added["special"].as_bool().unwrap_or(false) {
            CONTROL
        } else {
            USER_DEFINED
        };
        by_id.insert(id as u32, (content.to_string(), kind));
    }
    let max_id = by_id.keys().max().map_or(0, |&m| m as usize + 1);
    if max_id > vocab_size {
        return Err(ModelError::Tokenizer(format!(
            "the tokenizer has ids up to {} but the model only {vocab_size} embedding rows",
            max_id - 1
        )));
    }
    Ok((0..vocab_size as u32)
        .map(|i| {
            by_id
                .remove(&i)
                .unwrap_or_else(|| (format!("[PAD{i}]"), UNUSED))
        })
        .unzip())
}

/// BPE merges as llama.cpp stores them, `"left right"`, from either `tokenizer.json` spelling
/// (`"left right"` strings, or `["left", "right"]` pairs since tokenizers 0.20).
fn merges(v: &Json) -> Result<Vec<String>> {
    let Some(list) = v.as_array() else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|m| match m {
            Json::String(s) => Ok(s.clone()),
            Json::Array(p) if p.len() == 2 => match (p[0].as_str(), p[1].as_str()) {
                (Some(a), Some(b)) => Ok(format!("{a} {b}")),
                _ => Err(ModelError::Tokenizer(format!("invalid merge {m}"))),
            },
            _ => Err(ModelError::Tokenizer(format!("invalid merge {m}"))),
        })
        .collect()
}

/// `pad_token` of a folder's `tokenizer_config.json` (a string or `{"content": ...}`).
fn pad_token(dir: &Path) -> Result<Option<String>> {
    let path = dir.join("tokenizer_config.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    let v: Json = serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.clone(),
        source,
    })?;
    Ok(match &v["pad_token"] {
        Json::String(s) => Some(s.clone()),
        o => o["content"].as_str().map(str::to_string),
    })
}
