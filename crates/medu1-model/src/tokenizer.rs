//! The tokenizer of a model, built from a Hugging Face `tokenizer.json` or from the vocabulary,
//! merges and token types stored in GGUF metadata.
//!
//! candle's GGUF tokenizer helper does not know SmolLM2's `pre=smollm` pre-tokenizer and falls
//! back to a ByteLevel with a prefix space ("Hello world" → `[38699, 905]` instead of
//! `[19556, 905]`); this module builds the pre-tokenizer transformers uses, and also keeps the
//! chat template and the special-token ids generation needs.

use std::path::Path;

use candle_core::quantized::gguf_file;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use crate::error::{ModelError, Result};

/// A text tokenizer plus the metadata chat formatting and stopping need.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Beginning-of-sequence id (`<|im_start|>` for SmolLM2).
    pub bos_id: Option<u32>,
    /// End-of-sequence id (`<|im_end|>` for SmolLM2).
    pub eos_id: Option<u32>,
    /// The Jinja chat template shipped with the model, if any.
    pub chat_template: Option<String>,
}

fn tk_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

const REGEX_QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const REGEX_LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn split_then_bytes(regex: &str) -> Result<PreTokenizerWrapper> {
    let split = Split::new(
        SplitPattern::Regex(regex.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(tk_err)?;
    Ok(Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, false, false).into(),
    ])
    .into())
}

/// The pre-tokenizer transformers uses for a llama.cpp `tokenizer.ggml.pre` name.
pub(crate) fn pre_tokenizer_for(pre: &str) -> Result<PreTokenizerWrapper> {
    Ok(match pre {
        // SmolLM / StarCoder family: digits split one by one, then GPT-2 byte level without a
        // prefix space.
        "smollm" | "starcoder" | "refact" => Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])
        .into(),
        "qwen2" => split_then_bytes(REGEX_QWEN2)?,
        "llama3" | "llama-bpe" | "smaug-bpe" => split_then_bytes(REGEX_LLAMA3)?,
        // GPT-2's own (and llama.cpp's fallback for unknown names).
        _ => ByteLevel::new(false, true, true).into(),
    })
}

/// The llama.cpp `tokenizer.ggml.pre` names [`pre_tokenizer_for`] builds, most specific first.
const PRE_NAMES: [&str; 4] = ["smollm", "qwen2", "llama-bpe", "gpt2"];

/// The llama.cpp `tokenizer.ggml.pre` name whose pre-tokenizer (as [`pre_tokenizer_for`] builds
/// it, which is also how transformers' `tokenizer.json` files of those families spell it) equals
/// `tok`'s; `None` when no known name matches.
pub(crate) fn gguf_pre_name(tok: &tokenizers::Tokenizer) -> Option<&'static str> {
    let have = serde_json::to_value(tok.get_pre_tokenizer()?).ok()?;
    PRE_NAMES.into_iter().find(|name| {
        pre_tokenizer_for(name)
            .ok()
            .and_then(|p| serde_json::to_value(p).ok())
            .is_some_and(|want| want == have)
    })
}

impl Tokenizer {
    /// Builds the tokenizer from GGUF metadata (`tokenizer.ggml.model = gpt2` only).
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let md = &ct.metadata;
        let get = |k: &str| {
            md.get(k)
                .ok_or_else(|| ModelError::MissingMetadata(k.into()))
        };
        let kind = get("tokenizer.ggml.model")?.to_string()?.to_lowercase();
        if kind != "gpt2" {
            return Err(ModelError::Unsupported(format!(
                "gguf tokenizer model `{kind}` (supported: gpt2 byte-level bpe)"
            )));
        }
        let strings = |k: &str| -> Result<Vec<String>> {
            get(k)?
                .to_vec()?
                .iter()
                .map(|v| v.to_string().cloned().map_err(ModelError::Candle))
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| ModelError::Tokenizer(format!("invalid merge `{m}`")))
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(tk_err)?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        let pre = md
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok().cloned())
            .unwrap_or_else(|| "gpt2".into());
        inner.with_pre_tokenizer(Some(pre_tokenizer_for(&pre)?));
        inner.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));
        // Control (3) and user-defined (4) tokens must match as whole strings, never be split.
        if let Some(types) = md
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.to_vec().ok())
        {
            let specials: Vec<AddedToken> = types
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    matches!(
                        t.to_i32().or_else(|_| t.to_u32().map(|x| x as i32)),
                        Ok(3) | Ok(4)
                    )
                })
                .filter_map(|(i, _)| tokens.get(i).map(|t| AddedToken::from(t.clone(), true)))
                .collect();
            inner.add_special_tokens(specials).map_err(tk_err)?;
        }
        let id = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
        Ok(Tokenizer {
            inner,
            bos_id: id("tokenizer.ggml.bos_token_id"),
            eos_id: id("tokenizer.ggml.eos_token_id"),
            chat_template: md
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok().cloned()),
        })
    }

    /// Reads the tokenizer of a GGUF file.
    pub fn from_gguf_file(path: &Path) -> Result<Self> {
        let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
        let ct = gguf_file::Content::read(&mut f)?;
        Self::from_gguf(&ct)
    }

    /// Reads `tokenizer.json` from a Hugging Face folder, and `tokenizer_config.json` next to it
    /// (chat template, bos/eos tokens) when present.
    pub fn from_hf_dir(dir: &Path) -> Result<Self> {
        let tj = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&tj)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", tj.display())))?;
        let mut tok = Tokenizer {
            inner,
            bos_id: None,
            eos_id: None,
            chat_template: None,
        };
        let cfg_path = dir.join("tokenizer_config.json");
        if cfg_path.exists() {
            let text =
                std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ModelError::Json {
                    path: cfg_path.clone(),
                    source: e,
                })?;
            let tok_str = |k: &str| -> Option<String> {
                match v.get(k)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    o => o.get("content")?.as_str().map(str::to_string),
                }
            };
            tok.bos_id = tok_str("bos_token").and_then(|s| tok.token_id(&s));
            tok.eos_id = tok_str("eos_token").and_then(|s| tok.token_id(&s));
            tok.chat_template = v
                .get("chat_template")
                .and_then(|t| t.as_str())
                .map(str::to_string);
        }
        Ok(tok)
    }

    /// Wraps an already built `tokenizers::Tokenizer`.
    pub fn from_inner(inner: tokenizers::Tokenizer) -> Self {
        Tokenizer {
            inner,
            bos_id: None,
            eos_id: None,
            chat_template: None,
        }
    }

    /// The underlying `tokenizers` object.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Token ids of `text`. Special-token strings in the text (`<|im_start|>`) map to their ids;
    /// no bos/eos is added (chat templates write them explicitly).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(tk_err)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, keeping or dropping special tokens.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(tk_err)
    }

    /// The id of one token string (`<|im_end|>`), if it is in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Ids that end a chat turn: eos and `<|im_end|>` / `<|endoftext|>` where they exist.
    pub fn default_stop_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.eos_id.into_iter().collect();
        for t in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>"] {
            if let Some(id) = self.token_id(t)
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        ids
    }
}
