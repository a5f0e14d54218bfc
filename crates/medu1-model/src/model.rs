//! The decoder shared by Llama and Qwen2, written in the project rather than taken from
//! candle-transformers: those return logits for the last position only, use fused ops that have
//! no backward pass, and carry a Qwen2 padding-mask bug. GRPO needs log-probs at every response
//! position and gradients through every weight, so this module offers two paths over the same
//! weights:
//!
//! - [`Mode::Train`]: dense f32 weights held as [`Var`]s and differentiable ops; on the CPU,
//!   RMS norm, rope, attention and the gated MLP activation are single ops with their own
//!   backward pass, which keep far fewer activations alive than composite forms (modules
//!   `norm`, `rope`, `attention`, `swiglu`; the composite forms remain for other devices);
//! - [`Mode::Infer`]: quantized matmuls (the packed int8 kernels of `qmatmul` on x86-64,
//!   candle's `QMatMul` elsewhere), fused q/k/v and gate/up projections, the same
//!   single-pass CPU ops, and a preallocated KV cache for generation;
//! - [`Mode::Lora`]: the inference weights, frozen, with q/k/v and gate/up kept apart, a LoRA
//!   adapter on each target projection, and the differentiable ops of `Train` (`lora.rs`,
//!   `qlinear.rs`).
//!
//! Batches may be left- or right-padded: an attention mask of 1 (token) / 0 (pad) per position
//! gives each row its own rope positions (pads do not shift them) and hides pad keys.
//!
//! The model is split by concern: `options.rs` (mode and weight format), `weights.rs` (loading
//! GGUF and Hugging Face checkpoints, tensor names, saving), `linear.rs` (projections and their
//! quantized dispatch), `kv_cache.rs`, `rope.rs` (also the rope tables and composite forms), and
//! this module: the model's structure and its forward passes.

use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor, Var};

use crate::attention::Attention;
use crate::config::{ModelConfig, RopeLayout};
use crate::error::{ModelError, Result};
use crate::grad_side::GradSide;
pub use crate::kv_cache::KvCache;
pub use crate::linear::Linear;
use crate::lora_config::LoraConfig;
pub use crate::options::{InferQuant, LoadOptions, Mode};
use crate::qmatmul::PackedMatrix;
use crate::rope::{rope_composite, rope_i_composite};

/// q/k/v projections, separate (training, HF names) or fused into one matmul (inference).
#[derive(Debug, Clone)]
pub(crate) enum Qkv {
    Separate {
        q_proj: Linear,
        k_proj: Linear,
        v_proj: Linear,
    },
    Fused {
        qkv_proj: Linear,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum GateUp {
    Separate { gate_proj: Linear, up_proj: Linear },
    Fused { gate_up_proj: Linear },
}

#[derive(Debug, Clone)]
pub(crate) struct SelfAttn {
    pub(crate) qkv: Qkv,
    pub(crate) o_proj: Linear,
}

#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    pub(crate) gate_up: GateUp,
    pub(crate) down_proj: Linear,
}

#[derive(Debug, Clone)]
pub(crate) struct DecoderLayer {
    pub(crate) input_layernorm: Tensor,
    pub(crate) self_attn: SelfAttn,
    pub(crate) post_attention_layernorm: Tensor,
    pub(crate) mlp: Mlp,
}

/// The token-embedding table.
#[derive(Debug, Clone)]
pub(crate) enum Embedding {
    /// A dense table (training: the `Var`'s tensor, which a tied LM head shares).
    Dense(Tensor),
    /// Rows read from the packed tied LM head when it holds the checkpoint's own Q4_1 / Q8_0
    /// blocks: the same values, without a dense f32 copy beside them (113 MB on SmolLM2, a
    /// third of its generation footprint).
    Packed(Arc<PackedMatrix>),
}

/// Llama / Qwen2 decoder. See the module docs for the two modes.
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) config: ModelConfig,
    pub(crate) mode: Mode,
    pub(crate) embed_tokens: Embedding,
    pub(crate) layers: Vec<DecoderLayer>,
    pub(crate) norm: Tensor,
    pub(crate) lm_head: Linear,
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
    pub(crate) vars: Vec<(String, Var)>,
    /// The adapters' settings ([`Mode::Lora`], and inference views of such a model).
    pub(crate) lora: Option<LoraConfig>,
    /// Set while activation checkpointing is on: the weights' gradients that checkpointed layers
    /// compute in their backward passes (`recompute.rs`).
    pub(crate) grad_side: Option<Arc<GradSide>>,
}

const NEG_INF: f32 = -1e30;

/// Which positions' logits a forward pass returns.
#[derive(Debug, Clone, Copy)]
enum Positions {
    All,
    Last,
    Span(usize, usize),
}

/// Keys and values a layer attends to besides those of its own input.
#[derive(Clone, Copy)]
pub(crate) enum Past<'a> {
    None,
    /// A preallocated cache `(k, v, len)`: the new keys are written after `len`.
    Cache(&'a Tensor, &'a Tensor, usize),
    /// The keys and values `[1, kv_heads, P, head_dim]` of a prompt shared by every row
    /// (already rotated), part of the autograd graph.
    Shared(&'a Tensor, &'a Tensor),
}

/// The per-call position and mask inputs shared by all layers.
#[derive(Clone)]
pub(crate) struct Step {
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
    pub(crate) mask: Option<Tensor>,
}
impl Model {
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device the weights live on (every tensor of a model shares it).
    pub fn device(&self) -> &Device {
        self.cos.device()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The trainable parameters with their Hugging Face names (empty in inference mode). With
    /// tied embeddings `model.embed_tokens.weight` also serves as the output projection. In
    /// LoRA mode only the adapters, under PEFT's names
    /// (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`).
    pub fn trainable_vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Logits `[batch, seq, vocab]` at every position. `attention_mask` is `[batch, seq]` with 1
    /// for tokens and 0 for padding (any dtype); `None` means no padding.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        self.forward_uncached(input_ids, attention_mask, Positions::All)
    }

    /// Logits `[batch, len, vocab]` of positions `start..start + len` only. The final norm and
    /// the LM head (the vocabulary-wide matmul and its `[batch, seq, vocab]` output, most of a
    /// training step's activation memory) then run on those positions alone; a trainer that
    /// scores only the response needs no more.
    pub fn forward_span(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        start: usize,
        len: usize,
    ) -> Result<Tensor> {
        let (_, t) = input_ids.dims2()?;
        if len == 0 || start + len > t {
            return Err(ModelError::Input(format!(
                "span {start}..{} outside a sequence of {t} tokens",
                start + len
            )));
        }
        self.forward_uncached(input_ids, attention_mask, Positions::Span(start, len))
    }

    /// A whole-sequence pass without a KV cache (training, scoring).
    fn forward_uncached(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        positions: Positions,
    ) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        let valid = mask_rows(attention_mask, b, t)?;
        let mut next_pos = vec![0u32; b];
        let mut rows: Vec<Vec<bool>> = vec![Vec::new(); b];
        let step = self.step(&valid, &mut rows, &mut next_pos, 0)?;
        self.run(input_ids, &step, None, positions)
    }

    /// Token embeddings `[b, t, hidden]` of `ids` `[b, t]`.
    pub(crate) fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let flat = ids.to_dtype(DType::U32)?.flatten_all()?;
        let hidden = self.config.hidden_size;
        match &self.embed_tokens {
            Embedding::Dense(e) => Ok(e.index_select(&flat, 0)?.reshape((b, t, hidden))?),
            Embedding::Packed(p) => {
                let ids = flat.to_vec1::<u32>()?;
                let mut out = vec![0f32; ids.len() * hidden];
                for (&id, row) in ids.iter().zip(out.chunks_exact_mut(hidden)) {
                    if id as usize >= p.rows() {
                        return Err(ModelError::Input(format!(
                            "token id {id} outside the vocabulary ({})",
                            p.rows()
                        )));
                    }
                    p.row_into(id as usize, row);
                }
                Ok(Tensor::from_vec(out, (b, t, hidden), &Device::Cpu)?)
            }
        }
    }

    /// Logits `[k, R, vocab]` that predict each row of `responses` (`[k, R]`, right-padded)
    /// after one shared `prompt` (`[1, P]`): column 0 comes from the prompt's last position,
    /// column j from response token j-1. The prompt runs through the layers once and every
    /// response attends to its keys and values, so a group of n samples of one prompt costs one
    /// prompt pass instead of n, with the same values and gradients as n padded sequences.
    pub fn forward_shared_prefix(&self, prompt: &Tensor, responses: &Tensor) -> Result<Tensor> {
        let (pb, p) = prompt.dims2()?;
        let (k, r) = responses.dims2()?;
        if pb != 1 || p == 0 || r == 0 || k == 0 {
            return Err(ModelError::Input(format!(
                "shared-prefix forward needs a [1, P] prompt and [k, R] responses, got [{pb}, {p}] and [{k}, {r}]"
            )));
        }
        let mut rows = vec![Vec::new()];
        let mut next = vec![0u32];
        let step_p = self.step(&[vec![true; p]], &mut rows, &mut next, 0)?;
        // Responses continue at position P and see the whole prompt; right padding needs no
        // mask of its own since real tokens never look ahead.
        let mut rows = vec![vec![true; p]; k];
        let mut next = vec![p as u32; k];
        let step_r = self.step(&vec![vec![true; r]; k], &mut rows, &mut next, p)?;
        let hidden = self.config.hidden_size;
        let mut xp = self.embed(prompt)?;
        let mut xr = self.embed(responses)?;
        if self.grad_side.is_some() {
            (xp, xr) = self.checkpointed_shared_prefix(&xp, &xr, step_p, step_r)?;
        } else {
            for layer in &self.layers {
                let (yp, pk, pv) = self.layer_forward(layer, &xp, &step_p, Past::None)?;
                xr = self
                    .layer_forward(layer, &xr, &step_r, Past::Shared(&pk, &pv))?
                    .0;
                xp = yp;
            }
        }
        let last = xp.narrow(1, p - 1, 1)?.broadcast_as((k, 1, hidden))?;
        let x = if r == 1 {
            last.contiguous()?
        } else {
            Tensor::cat(&[&last.contiguous()?, &xr.narrow(1, 0, r - 1)?], 1)?
        };
        let x = self.rms_norm(&x, &self.norm)?;
        self.lm_head.forward(&x)
    }

    /// Log-softmax of `logits / temperature` at every position, `[batch, seq, vocab]`.
    pub fn log_probs(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        temperature: f64,
    ) -> Result<Tensor> {
        let logits = self.forward(input_ids, attention_mask)?;
        let logits = if temperature != 1.0 {
            (logits / temperature)?
        } else {
            logits
        };
        Ok(candle_nn::ops::log_softmax(&logits, D::Minus1)?)
    }

    /// The log-probability of each next token: `out[b, i] = log p(ids[b, i+1] | ids[b, ..=i])`
    /// at `temperature`, shape `[batch, seq-1]`. Differentiable in train mode; values at pad
    /// positions are meaningless and must be masked by the caller.
    pub fn token_logprobs(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        temperature: f64,
    ) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        if t < 2 {
            return Err(ModelError::Input(
                "token_logprobs needs sequences of at least 2 tokens".into(),
            ));
        }
        let lp = self.log_probs(input_ids, attention_mask, temperature)?;
        let lp = lp.narrow(1, 0, t - 1)?;
        let next = input_ids
            .narrow(1, 1, t - 1)?
            .to_dtype(DType::U32)?
            .reshape((b, t - 1, 1))?
            .contiguous()?;
        Ok(lp.contiguous()?.gather(&next, 2)?.squeeze(2)?)
    }

    /// Runs `input_ids` (`[batch, t]`) through the model, appending keys and values to `cache`.
    /// `valid[b][i]` marks real tokens (false for left padding). Returns the logits of the last
    /// position `[batch, vocab]` when `last_only`, else `[batch, t, vocab]`.
    pub fn forward_cached(
        &self,
        input_ids: &Tensor,
        valid: &[Vec<bool>],
        cache: &mut KvCache,
        last_only: bool,
    ) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        if b != cache.batch() || valid.len() != b || valid.iter().any(|r| r.len() != t) {
            return Err(ModelError::Input(format!(
                "batch mismatch: ids {b}x{t}, cache batch {}, valid rows {}",
                cache.batch(),
                valid.len()
            )));
        }
        if cache.len + t > cache.cap {
            return Err(ModelError::Input(format!(
                "kv cache overflow: {} + {t} positions > capacity {}",
                cache.len, cache.cap
            )));
        }
        let mut rows = std::mem::take(&mut cache.valid);
        let mut next_pos = std::mem::take(&mut cache.next_pos);
        let step = self.step(valid, &mut rows, &mut next_pos, cache.len);
        cache.valid = rows;
        cache.next_pos = next_pos;
        let step = step?;
        let positions = if last_only {
            Positions::Last
        } else {
            Positions::All
        };
        let out = self.run(input_ids, &step, Some(cache), positions)?;
        cache.len += t;
        Ok(out)
    }

    /// Positions, rope tables and the additive mask for `t` new tokens after `offset` cached
    /// positions. Pad tokens take the position of the next real token and only see themselves,
    /// so no softmax row is empty.
    fn step(
        &self,
        valid: &[Vec<bool>],
        rows: &mut [Vec<bool>],
        next_pos: &mut [u32],
        offset: usize,
    ) -> Result<Step> {
        let b = valid.len();
        let t = valid.first().map_or(0, Vec::len);
        let max_pos = self.cos.dim(0)?;
        let mut pos = Vec::with_capacity(b * t);
        for r in 0..b {
            for &ok in &valid[r] {
                let p = next_pos[r] as usize;
                if p >= max_pos {
                    return Err(ModelError::Input(format!(
                        "position {p} beyond the rope table ({max_pos})"
                    )));
                }
                pos.push(p as u32);
                if ok {
                    next_pos[r] += 1;
                }
                rows[r].push(ok);
            }
        }
        let l = offset + t;
        let need_mask = t > 1 || rows.iter().any(|r| r.iter().any(|&ok| !ok));
        let mask = if need_mask {
            let mut m = vec![0f32; b * t * l];
            for r in 0..b {
                for i in 0..t {
                    let q = offset + i;
                    for j in 0..l {
                        let visible = j == q || (j < q && rows[r][j]);
                        if !visible {
                            m[(r * t + i) * l + j] = NEG_INF;
                        }
                    }
                }
            }
            Some(Tensor::from_vec(m, (b, 1, 1, t, l), self.device())?)
        } else {
            None
        };
        let idx = Tensor::from_vec(pos, b * t, self.device())?;
        let half = self.config.head_dim / 2;
        let cos = self.cos.index_select(&idx, 0)?.reshape((b, t, half))?;
        let sin = self.sin.index_select(&idx, 0)?.reshape((b, t, half))?;
        Ok(Step { cos, sin, mask })
    }

    fn run(
        &self,
        input_ids: &Tensor,
        step: &Step,
        mut cache: Option<&mut KvCache>,
        positions: Positions,
    ) -> Result<Tensor> {
        let (_, t) = input_ids.dims2()?;
        let mut x = self.embed(input_ids)?;
        if cache.is_none() && self.grad_side.is_some() {
            x = self.checkpointed_layers(&x, step)?;
        } else {
            for (li, layer) in self.layers.iter().enumerate() {
                let past = match cache.as_deref_mut() {
                    Some(c) => Past::Cache(&c.k[li], &c.v[li], c.len),
                    None => Past::None,
                };
                x = self.layer_forward(layer, &x, step, past)?.0;
            }
        }
        let x = match positions {
            Positions::All => x,
            Positions::Last => x.narrow(1, t - 1, 1)?,
            Positions::Span(start, len) => x.narrow(1, start, len)?,
        };
        let x = self.rms_norm(&x, &self.norm)?;
        let logits = self.lm_head.forward(&x)?;
        Ok(match positions {
            Positions::Last => logits.squeeze(1)?,
            _ => logits,
        })
    }

    fn rms_norm(&self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        let eps = self.config.rms_norm_eps as f32;
        Ok(match self.mode {
            Mode::Infer if !x.device().is_cpu() => {
                candle_nn::ops::rms_norm(&x.contiguous()?, w, eps)?
            }
            _ => crate::norm::rms_norm(x, w, eps)?,
        })
    }

    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let train = self.mode != Mode::Infer;
        if let Some(y) = crate::rope::rope_cpu(self.config.rope_layout, x, cos, sin)? {
            return Ok(y);
        }
        Ok(match (self.config.rope_layout, train) {
            (RopeLayout::Interleaved, false) => candle_nn::rotary_emb::rope_i(x, cos, sin)?,
            (RopeLayout::HalfSplit, false) => candle_nn::rotary_emb::rope(x, cos, sin)?,
            (RopeLayout::Interleaved, true) => rope_i_composite(x, cos, sin)?,
            (RopeLayout::HalfSplit, true) => rope_composite(x, cos, sin)?,
        })
    }

    pub(crate) fn layer_forward(
        &self,
        layer: &DecoderLayer,
        x: &Tensor,
        step: &Step,
        past: Past<'_>,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let cfg = &self.config;
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        );
        let h = self.rms_norm(x, &layer.input_layernorm)?;
        let attn = &layer.self_attn;
        let (q, k, v) = match &attn.qkv {
            Qkv::Separate {
                q_proj,
                k_proj,
                v_proj,
            } => (
                q_proj.forward(&h)?,
                k_proj.forward(&h)?,
                v_proj.forward(&h)?,
            ),
            Qkv::Fused { qkv_proj } => {
                let y = qkv_proj.forward(&h)?;
                (
                    y.narrow(2, 0, nh * hd)?,
                    y.narrow(2, nh * hd, nkv * hd)?,
                    y.narrow(2, (nh + nkv) * hd, nkv * hd)?,
                )
            }
        };
        let q = q.reshape((b, t, nh, hd))?.transpose(1, 2)?.contiguous()?;
        let k = k.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
        let v = v.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
        let q = self.rope(&q, &step.cos, &step.sin)?;
        let k = self.rope(&k, &step.cos, &step.sin)?;
        let (new_k, new_v) = (k.clone(), v.clone());
        let (k, v) = match past {
            Past::Cache(ck, cv, len) => {
                ck.slice_set(&k, 2, len)?;
                cv.slice_set(&v, 2, len)?;
                let (k, v) = (ck.narrow(2, 0, len + t)?, cv.narrow(2, 0, len + t)?);
                if k.device().is_cpu() {
                    (k, v)
                } else {
                    // cuBLAS takes the narrowed view only where candle proves its batch
                    // strides collapsible; a copy of the live positions is cheap on a GPU.
                    (k.contiguous()?, v.contiguous()?)
                }
            }
            Past::Shared(pk, pv) => {
                let (_, _, p, _) = pk.dims4()?;
                let pk = pk.broadcast_as((b, nkv, p, hd))?.contiguous()?;
                let pv = pv.broadcast_as((b, nkv, p, hd))?.contiguous()?;
                (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?)
            }
            Past::None => (k, v),
        };
        let rep = nh / nkv;
        // Grouped-query attention without repeating k/v: the `rep` query heads that share a kv
        // head are stacked along the query axis (heads are ordered kv-major, as in HF).
        let q = q.reshape((b, nkv, rep * t, hd))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let attention = Attention {
            scale,
            rep,
            mask: step.mask.clone(),
        };
        let y = attention.forward(&q, &k, &v, self.mode != Mode::Infer)?;
        let y = y
            .reshape((b, nh, t, hd))?
            .transpose(1, 2)?
            .reshape((b, t, nh * hd))?;
        let x = (x + attn.o_proj.forward(&y)?)?;
        let h = self.rms_norm(&x, &layer.post_attention_layernorm)?;
        let (g, u) = match &layer.mlp.gate_up {
            GateUp::Separate { gate_proj, up_proj } => {
                (gate_proj.forward(&h)?, up_proj.forward(&h)?)
            }
            GateUp::Fused { gate_up_proj } => {
                let y = gate_up_proj.forward(&h)?;
                let i = cfg.intermediate_size;
                (y.narrow(2, 0, i)?, y.narrow(2, i, i)?)
            }
        };
        let m = crate::swiglu::swiglu(&g, &u)?;
        Ok(((x + layer.mlp.down_proj.forward(&m)?)?, new_k, new_v))
    }
}

/// Per-row validity flags from an optional `[b, t]` 0/1 mask.
fn mask_rows(mask: Option<&Tensor>, b: usize, t: usize) -> Result<Vec<Vec<bool>>> {
    match mask {
        None => Ok(vec![vec![true; t]; b]),
        Some(m) => {
            if m.dims() != [b, t] {
                return Err(ModelError::Input(format!(
                    "attention mask shape {:?} != ids shape [{b}, {t}]",
                    m.dims()
                )));
            }
            let v = m.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            Ok(v.into_iter()
                .map(|r| r.into_iter().map(|x| x != 0.0).collect())
                .collect())
        }
    }
}
