//! The architecture hyper-parameters of a decoder, read from a Hugging Face `config.json` or from
//! GGUF metadata, and written back as `config.json` when a trained model is saved.
//!
//! Llama and Qwen2 differ only in a few switches (q/k/v biases, default tying, rope layout of the
//! checkpoint), so one config drives one shared decoder.

use candle_core::quantized::gguf_file;
use serde_json::{Value, json};

use crate::error::{ModelError, Result};

/// The model family; decides the default of a few switches and the `model_type` written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }

    /// The q/k row layout of this architecture's GGUF files: llama.cpp's converter permutes
    /// `llama` rows (`LLAMA_ROPE_TYPE_NORM`); `qwen2` keeps Hugging Face's order (NEOX).
    pub fn gguf_rope_layout(self) -> RopeLayout {
        match self {
            Arch::Llama => RopeLayout::Interleaved,
            Arch::Qwen2 => RopeLayout::HalfSplit,
        }
    }
}

/// How rotary embeddings pair the dimensions of a head.
///
/// llama.cpp's converter permutes the q/k rows of llama checkpoints so that rotated pairs are
/// adjacent (`Interleaved`, candle's `rope_i`); Hugging Face checkpoints (and llama.cpp's qwen2)
/// pair dimension `i` with `i + head_dim/2` (`HalfSplit`, candle's `rope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeLayout {
    Interleaved,
    HalfSplit,
}

/// Hyper-parameters of a llama-style decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// q/k/v projections carry a bias (Qwen2).
    pub attention_bias: bool,
    pub rope_layout: RopeLayout,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

impl ModelConfig {
    /// Checks the invariants the decoder relies on.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.num_attention_heads == 0 || self.num_key_value_heads == 0 {
            return bad("head counts must be positive".into());
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(format!("head_dim {} must be even", self.head_dim));
        }
        if self.vocab_size == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return bad("vocab_size, hidden_size and num_hidden_layers must be positive".into());
        }
        Ok(())
    }

    /// Every weight of the decoder with its Hugging Face name and shape, in checkpoint order
    /// (embedding, layers, final norm, untied head).
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, i) = (self.hidden_size, self.intermediate_size);
        let (q, kv) = (
            self.num_attention_heads * self.head_dim,
            self.num_key_value_heads * self.head_dim,
        );
        let mut out = vec![(
            "model.embed_tokens.weight".to_string(),
            vec![self.vocab_size, d],
        )];
        for l in 0..self.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let mut layer = vec![
                ("input_layernorm.weight", vec![d]),
                ("self_attn.q_proj.weight", vec![q, d]),
                ("self_attn.k_proj.weight", vec![kv, d]),
                ("self_attn.v_proj.weight", vec![kv, d]),
            ];
            if self.attention_bias {
                layer.extend([
                    ("self_attn.q_proj.bias", vec![q]),
                    ("self_attn.k_proj.bias", vec![kv]),
                    ("self_attn.v_proj.bias", vec![kv]),
                ]);
            }
            layer.extend([
                ("self_attn.o_proj.weight", vec![d, q]),
                ("post_attention_layernorm.weight", vec![d]),
                ("mlp.gate_proj.weight", vec![i, d]),
                ("mlp.up_proj.weight", vec![i, d]),
                ("mlp.down_proj.weight", vec![d, i]),
            ]);
            out.extend(layer.into_iter().map(|(n, s)| (format!("{p}.{n}"), s)));
        }
        out.push(("model.norm.weight".into(), vec![d]));
        if !self.tie_word_embeddings {
            out.push(("lm_head.weight".into(), vec![self.vocab_size, d]));
        }
        out
    }

    /// The number of parameters (a tied head counted once), from the shapes alone.
    pub fn parameter_count(&self) -> usize {
        self.tensor_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Reads a Hugging Face `config.json` (llama or qwen2 `model_type`).
    pub fn from_hf_json(v: &Value) -> Result<Self> {
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("llama");
        let arch = match model_type {
            "llama" | "mistral" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            other => {
                return Err(ModelError::Unsupported(format!(
                    "model_type `{other}` (supported: llama, qwen2)"
                )));
            }
        };
        let usize_of = |k: &str| -> Result<usize> {
            v.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(|| ModelError::Config(format!("config.json lacks integer `{k}`")))
        };
        let hidden_size = usize_of("hidden_size")?;
        let num_attention_heads = usize_of("num_attention_heads")?;
        let num_key_value_heads = usize_of("num_key_value_heads").unwrap_or(num_attention_heads);
        let head_dim = v
            .get("head_dim")
            .and_then(Value::as_u64)
            .map(|x| x as usize)
            .unwrap_or(hidden_size / num_attention_heads.max(1));
        let id_of = |k: &str| -> Option<u32> {
            match v.get(k) {
                Some(Value::Number(n)) => n.as_u64().map(|x| x as u32),
                Some(Value::Array(a)) => a.first().and_then(Value::as_u64).map(|x| x as u32),
                _ => None,
            }
        };
        let cfg = ModelConfig {
            arch,
            vocab_size: usize_of("vocab_size")?,
            hidden_size,
            intermediate_size: usize_of("intermediate_size")?,
            num_hidden_layers: usize_of("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rope_theta: v
                .get("rope_theta")
                .and_then(Value::as_f64)
                .unwrap_or(10_000.0),
            rms_norm_eps: v
                .get("rms_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-6),
            max_position_embeddings: usize_of("max_position_embeddings").unwrap_or(4096),
            tie_word_embeddings: v
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            attention_bias: v
                .get("attention_bias")
                .and_then(Value::as_bool)
                .unwrap_or(arch == Arch::Qwen2),
            rope_layout: RopeLayout::HalfSplit,
            bos_token_id: id_of("bos_token_id"),
            eos_token_id: id_of("eos_token_id"),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The `config.json` transformers needs to load the saved weights (half-split rope layout:
    /// saving un-permutes interleaved checkpoints).
    pub fn to_hf_json(&self) -> Value {
        let (model_class, extra) = match self.arch {
            Arch::Llama => (
                "LlamaForCausalLM",
                json!({"attention_bias": self.attention_bias, "mlp_bias": false}),
            ),
            Arch::Qwen2 => ("Qwen2ForCausalLM", json!({"use_sliding_window": false})),
        };
        let mut v = json!({
            "architectures": [model_class],
            "model_type": self.arch.as_str(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": "float32",
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
            if let Some(b) = self.bos_token_id {
                m.insert("bos_token_id".into(), json!(b));
            }
            if let Some(e) = self.eos_token_id {
                m.insert("eos_token_id".into(), json!(e));
            }
        }
        v
    }

    /// Reads the architecture from GGUF metadata (`general.architecture` = llama or qwen2).
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let md = &ct.metadata;
        let get = |k: &str| {
            md.get(k)
                .ok_or_else(|| ModelError::MissingMetadata(k.into()))
        };
        let arch_name = get("general.architecture")?
            .to_string()
            .map_err(ModelError::Candle)?
            .clone();
        let arch = match arch_name.as_str() {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            other => {
                return Err(ModelError::Unsupported(format!(
                    "gguf architecture `{other}` (supported: llama, qwen2)"
                )));
            }
        };
        let a = arch_name.as_str();
        let u = |k: &str| -> Result<usize> {
            let key = format!("{a}.{k}");
            Ok(get(&key)?.to_u32().map_err(ModelError::Candle)? as usize)
        };
        let f = |k: &str| -> Result<f64> {
            let key = format!("{a}.{k}");
            Ok(get(&key)?.to_f32().map_err(ModelError::Candle)? as f64)
        };
        let hidden_size = u("embedding_length")?;
        let num_attention_heads = u("attention.head_count")?;
        let num_key_value_heads = u("attention.head_count_kv").unwrap_or(num_attention_heads);
        let vocab_size = match u("vocab_size") {
            Ok(v) => v,
            Err(_) => ct
                .tensor_infos
                .get("token_embd.weight")
                .map(|t| t.shape.dims()[0])
                .ok_or_else(|| ModelError::MissingWeight("token_embd.weight".into()))?,
        };
        let head_dim = u("attention.key_length").unwrap_or(hidden_size / num_attention_heads);
        let id = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
        let cfg = ModelConfig {
            arch,
            vocab_size,
            hidden_size,
            intermediate_size: u("feed_forward_length")?,
            num_hidden_layers: u("block_count")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rope_theta: f("rope.freq_base").unwrap_or(10_000.0),
            rms_norm_eps: f("attention.layer_norm_rms_epsilon")?,
            max_position_embeddings: u("context_length").unwrap_or(4096),
            tie_word_embeddings: !ct.tensor_infos.contains_key("output.weight"),
            attention_bias: ct.tensor_infos.contains_key("blk.0.attn_q.bias"),
            rope_layout: arch.gguf_rope_layout(),
            bos_token_id: id("tokenizer.ggml.bos_token_id"),
            eos_token_id: id("tokenizer.ggml.eos_token_id"),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
