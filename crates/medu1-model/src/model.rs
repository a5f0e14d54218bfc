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
//!   single-pass CPU ops, and a preallocated KV cache for generation.
//!
//! Batches may be left- or right-padded: an attention mask of 1 (token) / 0 (pad) per position
//! gives each row its own rope positions (pads do not shift them) and hides pad keys.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor, gguf_file};
use candle_core::{D, DType, Device, Module, Tensor, Var};

use crate::attention::Attention;
use crate::config::{ModelConfig, RopeLayout};
use crate::error::{ModelError, Result};
use crate::qmatmul::PackedMatrix;

/// Which of the two execution paths a model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// f32 [`Var`]s and differentiable ops: for training and exact reference log-probs.
    Train,
    /// Quantized or f32 constants, fused kernels, KV cache: for generation.
    Infer,
}

/// The matmul weight format of the inference path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InferQuant {
    /// GGUF Q4_1 and Q8_0 matrices as stored where this CPU runs the packed kernels of
    /// `qmatmul` (x86-64 with AVX2; VNNI ones with AVX512-VNNI): they then cost no
    /// requantization error and a 4-bit matrix streams half the bytes; every other matrix
    /// requantized to Q8_0.
    Auto,
    /// Keep the checkpoint's format (GGUF block types as stored; safetensors as dense f32).
    Original,
    /// Requantize every matrix to Q8_0: candle's Q4_1 dot product is a scalar loop while Q8_0
    /// has SIMD kernels (and the packed kernels run Q8_0 on any matrix whose width is a
    /// multiple of 32).
    Q8_0,
    /// Dense f32 matrices.
    F32,
}

impl std::str::FromStr for InferQuant {
    type Err = ModelError;

    /// The names the CLI and configs use: `auto`, `original`, `q8_0` (or `q8`), `f32`.
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "auto" => InferQuant::Auto,
            "original" => InferQuant::Original,
            "q8_0" | "q8" => InferQuant::Q8_0,
            "f32" => InferQuant::F32,
            other => {
                return Err(ModelError::Config(format!(
                    "unknown weight format `{other}`: use auto, original, q8_0 or f32"
                )));
            }
        })
    }
}

/// How to build a model from a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub mode: Mode,
    pub quant: InferQuant,
}

impl LoadOptions {
    /// Training: f32 `Var`s everywhere.
    pub fn train() -> Self {
        LoadOptions {
            mode: Mode::Train,
            quant: InferQuant::F32,
        }
    }
    /// Generation with the fastest measured weight format ([`InferQuant::Auto`]).
    pub fn infer() -> Self {
        LoadOptions {
            mode: Mode::Infer,
            quant: InferQuant::Auto,
        }
    }
}

/// A weight as the checkpoint holds it, before the mode decides its final form.
#[derive(Debug, Clone)]
enum Raw {
    Quant(Arc<QTensor>),
    Dense(Tensor),
}

impl Raw {
    /// The GGUF block type, for quantized weights.
    fn block_dtype(&self) -> Option<GgmlDType> {
        match self {
            Raw::Quant(q) => Some(q.dtype()),
            Raw::Dense(_) => None,
        }
    }

    /// The input width of a `[out, in]` matrix.
    fn cols(&self) -> Result<usize> {
        Ok(match self {
            Raw::Quant(q) => q.shape().dims()[1],
            Raw::Dense(t) => t.dim(1)?,
        })
    }

    fn to_f32(&self) -> Result<Tensor> {
        Ok(match self {
            Raw::Quant(q) => q.dequantize(&Device::Cpu)?,
            Raw::Dense(t) => t.to_dtype(DType::F32)?,
        })
    }
}

/// The weight of a projection: quantized for inference, dense (possibly a `Var`'s tensor) else.
#[derive(Debug, Clone)]
enum Weight {
    /// In the tile layout of [`crate::qmatmul`], where this CPU runs its kernels.
    Packed(Arc<PackedMatrix>),
    Quant(QMatMul),
    Dense(Tensor),
}

/// `y = x W^T + b`, with `W` stored `[out, in]` as in both checkpoint formats.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

impl Linear {
    fn new(weight: Weight, bias: Option<Tensor>) -> Linear {
        Linear { weight, bias }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.weight {
            Weight::Packed(p) => {
                let x = x.to_dtype(DType::F32)?.contiguous()?;
                let mut dims = x.dims().to_vec();
                let y = {
                    let (storage, layout) = x.storage_and_layout();
                    let candle_core::Storage::Cpu(cpu) = &*storage else {
                        return Err(ModelError::Unsupported(
                            "packed quantized weights run on the CPU only".into(),
                        ));
                    };
                    p.matmul(crate::cpu_op::f32_slice(cpu, layout, "packed matmul")?)
                };
                *dims.last_mut().expect("non-empty dims") = p.rows();
                Tensor::from_vec(y, dims, &Device::Cpu)?
            }
            // QMatMul reads its input as one slice: a narrowed/transposed view must be copied
            // (candle's quantized_llama fails at batch > 1 for lack of this).
            Weight::Quant(q) => q.forward(&x.contiguous()?)?,
            Weight::Dense(w) => {
                let dims = x.dims().to_vec();
                let k = *dims.last().unwrap_or(&0);
                let rows: usize = dims[..dims.len() - 1].iter().product();
                let y = x.reshape((rows, k))?.matmul(&w.t()?)?;
                let mut out = dims;
                *out.last_mut().expect("non-empty dims") = w.dim(0)?;
                y.reshape(out)?
            }
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// q/k/v projections, separate (training, HF names) or fused into one matmul (inference).
#[derive(Debug, Clone)]
enum Qkv {
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
enum GateUp {
    Separate { gate_proj: Linear, up_proj: Linear },
    Fused { gate_up_proj: Linear },
}

#[derive(Debug, Clone)]
struct SelfAttn {
    qkv: Qkv,
    o_proj: Linear,
}

#[derive(Debug, Clone)]
struct Mlp {
    gate_up: GateUp,
    down_proj: Linear,
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    input_layernorm: Tensor,
    self_attn: SelfAttn,
    post_attention_layernorm: Tensor,
    mlp: Mlp,
}

/// The token-embedding table.
#[derive(Debug, Clone)]
enum Embedding {
    /// A dense table (training: the `Var`'s tensor, which a tied LM head shares).
    Dense(Tensor),
    /// Rows read from the packed tied LM head when it holds the checkpoint's own Q4_1 / Q8_0
    /// blocks: the same values, without a dense f32 copy beside them (113 MB on SmolLM2, a
    /// third of its generation footprint).
    Packed(Arc<PackedMatrix>),
}

/// Preallocated keys and values for every layer, `[batch, kv_heads, capacity, head_dim]`, written
/// in place so that decoding never concatenates.
#[derive(Debug)]
pub struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    len: usize,
    cap: usize,
    /// Per row and position: a real token (true) or padding.
    valid: Vec<Vec<bool>>,
    /// Per row: the rope position of the next real token.
    next_pos: Vec<u32>,
}

impl KvCache {
    /// An empty cache for `batch` rows of up to `capacity` positions.
    pub fn new(cfg: &ModelConfig, batch: usize, capacity: usize) -> Result<Self> {
        let shape = (batch, cfg.num_key_value_heads, capacity, cfg.head_dim);
        let mut k = Vec::with_capacity(cfg.num_hidden_layers);
        let mut v = Vec::with_capacity(cfg.num_hidden_layers);
        for _ in 0..cfg.num_hidden_layers {
            k.push(Tensor::zeros(shape, DType::F32, &Device::Cpu)?);
            v.push(Tensor::zeros(shape, DType::F32, &Device::Cpu)?);
        }
        Ok(KvCache {
            k,
            v,
            len: 0,
            cap: capacity,
            valid: vec![Vec::with_capacity(capacity); batch],
            next_pos: vec![0; batch],
        })
    }

    /// Positions filled so far (including left padding).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn batch(&self) -> usize {
        self.next_pos.len()
    }

    /// A new cache whose row `i` is a copy of row `rows[i]` of this one: shares one prompt's
    /// prefill among its samples, and drops finished rows.
    pub fn select_rows(&self, rows: &[u32]) -> Result<KvCache> {
        let idx = Tensor::from_slice(rows, rows.len(), &Device::Cpu)?;
        let sel = |ts: &[Tensor]| -> Result<Vec<Tensor>> {
            ts.iter()
                .map(|t| Ok(t.index_select(&idx, 0)?))
                .collect::<Result<Vec<_>>>()
        };
        Ok(KvCache {
            k: sel(&self.k)?,
            v: sel(&self.v)?,
            len: self.len,
            cap: self.cap,
            valid: rows
                .iter()
                .map(|&r| self.valid[r as usize].clone())
                .collect(),
            next_pos: rows.iter().map(|&r| self.next_pos[r as usize]).collect(),
        })
    }
}

/// Llama / Qwen2 decoder. See the module docs for the two modes.
#[derive(Debug, Clone)]
pub struct Model {
    config: ModelConfig,
    mode: Mode,
    embed_tokens: Embedding,
    layers: Vec<DecoderLayer>,
    norm: Tensor,
    lm_head: Linear,
    cos: Tensor,
    sin: Tensor,
    vars: Vec<(String, Var)>,
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
enum Past<'a> {
    None,
    /// A preallocated cache `(k, v, len)`: the new keys are written after `len`.
    Cache(&'a Tensor, &'a Tensor, usize),
    /// The keys and values `[1, kv_heads, P, head_dim]` of a prompt shared by every row
    /// (already rotated), part of the autograd graph.
    Shared(&'a Tensor, &'a Tensor),
}

/// The per-call position and mask inputs shared by all layers.
struct Step {
    cos: Tensor,
    sin: Tensor,
    mask: Option<Tensor>,
}

impl Model {
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The trainable parameters with their Hugging Face names (empty in inference mode). With
    /// tied embeddings `model.embed_tokens.weight` also serves as the output projection.
    pub fn trainable_vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Loads a GGUF file (llama or qwen2 architecture).
    pub fn from_gguf(path: &Path, opts: LoadOptions) -> Result<Self> {
        let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
        let ct = gguf_file::Content::read(&mut f)?;
        let config = ModelConfig::from_gguf(&ct)?;
        let mut raw = HashMap::new();
        for name in ct.tensor_infos.keys() {
            let Some(hf) = gguf_to_hf_name(name) else {
                continue;
            };
            let q = ct.tensor(&mut f, name, &Device::Cpu)?;
            let r = match q.dtype() {
                GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => {
                    Raw::Dense(q.dequantize(&Device::Cpu)?)
                }
                _ => Raw::Quant(Arc::new(q)),
            };
            raw.insert(hf, r);
        }
        Self::build(config, raw, opts)
    }

    /// Loads a Hugging Face folder: `config.json` and one or several `*.safetensors` files
    /// (listed by `model.safetensors.index.json` when present); f32/bf16/f16 become f32.
    pub fn from_hf_dir(dir: &Path, opts: LoadOptions) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Json {
            path: cfg_path.clone(),
            source: e,
        })?;
        let config = ModelConfig::from_hf_json(&v)?;
        let mut raw = HashMap::new();
        for file in safetensors_files(dir)? {
            let tensors = candle_core::safetensors::load(&file, &Device::Cpu)?;
            for (name, t) in tensors {
                raw.insert(name, Raw::Dense(t.to_dtype(DType::F32)?));
            }
        }
        Self::build(config, raw, opts)
    }

    /// Builds a model from named f32 tensors with Hugging Face names (used by tests and by
    /// callers that hold weights in memory).
    pub fn from_tensors(
        config: ModelConfig,
        tensors: HashMap<String, Tensor>,
        opts: LoadOptions,
    ) -> Result<Self> {
        config.validate()?;
        let raw = tensors
            .into_iter()
            .map(|(k, t)| Ok((k, Raw::Dense(t.to_dtype(DType::F32)?))))
            .collect::<Result<HashMap<_, _>>>()?;
        Self::build(config, raw, opts)
    }

    fn build(
        config: ModelConfig,
        mut raw: HashMap<String, Raw>,
        opts: LoadOptions,
    ) -> Result<Self> {
        let cfg = &config;
        let mut vars: Vec<(String, Var)> = Vec::new();
        let mut take = |name: &str| -> Result<Raw> {
            raw.remove(name)
                .ok_or_else(|| ModelError::MissingWeight(name.to_string()))
        };
        let train = opts.mode == Mode::Train;
        // A dense tensor: in train mode a registered Var (its tensor shares the Var's id, so
        // gradients computed through it are found by the Var).
        let dense = |name: &str, r: &Raw, vars: &mut Vec<(String, Var)>| -> Result<Tensor> {
            let t = r.to_f32()?;
            if train {
                let var = Var::from_tensor(&t)?;
                let t = var.as_tensor().clone();
                vars.push((name.to_string(), var));
                Ok(t)
            } else {
                Ok(t)
            }
        };
        let embed_raw = take("model.embed_tokens.weight")?;
        // Inference with tied embeddings reads the table from the packed LM head (below) when
        // that head keeps the checkpoint's own blocks, so the rows are its exact values; a
        // requantized head (dense checkpoints, training snapshots) would round them.
        let head_keeps_blocks = keeps_stored_blocks(std::slice::from_ref(&embed_raw), opts.quant)?;
        let embed_dense = if train || !cfg.tie_word_embeddings || !head_keeps_blocks {
            Some(dense("model.embed_tokens.weight", &embed_raw, &mut vars)?)
        } else {
            None
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let mut lin = |names: &[&str],
                           bias: bool,
                           vars: &mut Vec<(String, Var)>|
             -> Result<Vec<Linear>> {
                let mut ws = Vec::new();
                let mut bs = Vec::new();
                for n in names {
                    let wn = format!("{p}.{n}.weight");
                    ws.push((wn.clone(), take(&wn)?));
                    if bias {
                        let bn = format!("{p}.{n}.bias");
                        bs.push((bn.clone(), take(&bn)?));
                    }
                }
                if train {
                    let mut out = Vec::new();
                    for (j, (wn, w)) in ws.iter().enumerate() {
                        let weight = Weight::Dense(dense(wn, w, vars)?);
                        let bias = match bs.get(j) {
                            Some((bn, b)) => Some(dense(bn, b, vars)?),
                            None => None,
                        };
                        out.push(Linear::new(weight, bias));
                    }
                    return Ok(out);
                }
                let weights: Vec<Raw> = ws.into_iter().map(|(_, w)| w).collect();
                let bias = if bs.is_empty() {
                    None
                } else {
                    let parts = bs
                        .iter()
                        .map(|(_, b)| b.to_f32())
                        .collect::<Result<Vec<_>>>()?;
                    Some(Tensor::cat(&parts, 0)?)
                };
                Ok(vec![fuse_weights(&weights, opts, bias)?])
            };
            let qkv_l = lin(
                &["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
                cfg.attention_bias,
                &mut vars,
            )?;
            let qkv = match <[Linear; 3]>::try_from(qkv_l) {
                Ok([q_proj, k_proj, v_proj]) => Qkv::Separate {
                    q_proj,
                    k_proj,
                    v_proj,
                },
                Err(mut v) => Qkv::Fused {
                    qkv_proj: v.remove(0),
                },
            };
            let o_proj = lin(&["self_attn.o_proj"], false, &mut vars)?.remove(0);
            let gu = lin(&["mlp.gate_proj", "mlp.up_proj"], false, &mut vars)?;
            let gate_up = match <[Linear; 2]>::try_from(gu) {
                Ok([gate_proj, up_proj]) => GateUp::Separate { gate_proj, up_proj },
                Err(mut v) => GateUp::Fused {
                    gate_up_proj: v.remove(0),
                },
            };
            let down_proj = lin(&["mlp.down_proj"], false, &mut vars)?.remove(0);
            let n1 = format!("{p}.input_layernorm.weight");
            let input_layernorm = dense(&n1, &take(&n1)?, &mut vars)?;
            let n2 = format!("{p}.post_attention_layernorm.weight");
            let post_attention_layernorm = dense(&n2, &take(&n2)?, &mut vars)?;
            layers.push(DecoderLayer {
                input_layernorm,
                self_attn: SelfAttn { qkv, o_proj },
                post_attention_layernorm,
                mlp: Mlp { gate_up, down_proj },
            });
        }
        let norm = dense("model.norm.weight", &take("model.norm.weight")?, &mut vars)?;
        let lm_head = if cfg.tie_word_embeddings {
            match (&embed_dense, train) {
                // Training shares the embedding `Var` with the head.
                (Some(e), true) => Linear::new(Weight::Dense(e.clone()), None),
                _ => fuse_weights(std::slice::from_ref(&embed_raw), opts, None)?,
            }
        } else {
            let w = take("lm_head.weight")?;
            if train {
                Linear::new(Weight::Dense(dense("lm_head.weight", &w, &mut vars)?), None)
            } else {
                fuse_weights(&[w], opts, None)?
            }
        };
        let embed_tokens = match (embed_dense, &lm_head.weight) {
            (Some(e), _) => Embedding::Dense(e),
            (None, Weight::Packed(p)) if p.cols() == cfg.hidden_size => {
                Embedding::Packed(p.clone())
            }
            (None, _) => Embedding::Dense(embed_raw.to_f32()?),
        };
        let (cos, sin) = rope_tables(cfg)?;
        Ok(Model {
            config,
            mode: opts.mode,
            embed_tokens,
            layers,
            norm,
            lm_head,
            cos,
            sin,
            vars,
        })
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
    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
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
        for layer in &self.layers {
            let (yp, pk, pv) = self.layer_forward(layer, &xp, &step_p, Past::None)?;
            xr = self
                .layer_forward(layer, &xr, &step_r, Past::Shared(&pk, &pv))?
                .0;
            xp = yp;
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
            Some(Tensor::from_vec(m, (b, 1, 1, t, l), &Device::Cpu)?)
        } else {
            None
        };
        let idx = Tensor::from_vec(pos, b * t, &Device::Cpu)?;
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
        for (li, layer) in self.layers.iter().enumerate() {
            let past = match cache.as_deref_mut() {
                Some(c) => Past::Cache(&c.k[li], &c.v[li], c.len),
                None => Past::None,
            };
            x = self.layer_forward(layer, &x, step, past)?.0;
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
        let train = self.mode == Mode::Train;
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

    fn layer_forward(
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
                (ck.narrow(2, 0, len + t)?, cv.narrow(2, 0, len + t)?)
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
        let y = attention.forward(&q, &k, &v, self.mode == Mode::Train)?;
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

    /// Writes the trainable weights as `model.safetensors` with Hugging Face names, plus
    /// `config.json`, so transformers (and [`Model::from_hf_dir`]) can load the result. q/k rows
    /// of interleaved (GGUF llama) checkpoints are permuted back to the half-split layout.
    pub fn save_hf(&self, dir: &Path) -> Result<()> {
        if self.mode != Mode::Train {
            return Err(ModelError::Unsupported(
                "saving needs a model loaded in train mode (dense f32 weights)".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let cfg = &self.config;
        let mut out: HashMap<String, Tensor> = HashMap::new();
        for (name, var) in &self.vars {
            let mut t = var.as_tensor().detach();
            if cfg.rope_layout == RopeLayout::Interleaved {
                if name.contains("self_attn.q_proj.") {
                    t = unpermute_rows(&t, cfg.num_attention_heads)?;
                } else if name.contains("self_attn.k_proj.") {
                    t = unpermute_rows(&t, cfg.num_key_value_heads)?;
                }
            }
            out.insert(name.clone(), t.contiguous()?);
        }
        let st = dir.join("model.safetensors");
        candle_core::safetensors::save(&out, &st)?;
        let mut hf = cfg.clone();
        hf.rope_layout = RopeLayout::HalfSplit;
        let json =
            serde_json::to_string_pretty(&hf.to_hf_json()).map_err(|e| ModelError::Json {
                path: dir.join("config.json"),
                source: e,
            })?;
        let cj = dir.join("config.json");
        std::fs::write(&cj, json).map_err(|e| ModelError::io(&cj, e))?;
        Ok(())
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

/// Interleaved rope (pairs `2i`, `2i+1`) from composite ops, with per-row `[b, t, d/2]` tables.
fn rope_i_composite(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (b, h, t, d) = x.dims4()?;
    let cos = cos.reshape((b, 1, t, d / 2, 1))?;
    let sin = sin.reshape((b, 1, t, d / 2, 1))?;
    let x = x.reshape((b, h, t, d / 2, 2))?;
    let x0 = x.narrow(D::Minus1, 0, 1)?;
    let x1 = x.narrow(D::Minus1, 1, 1)?;
    let y0 = (x0.broadcast_mul(&cos)? - x1.broadcast_mul(&sin)?)?;
    let y1 = (x0.broadcast_mul(&sin)? + x1.broadcast_mul(&cos)?)?;
    Ok(Tensor::cat(&[y0, y1], D::Minus1)?.reshape((b, h, t, d))?)
}

/// Half-split rope (pairs `i`, `i + d/2`) from composite ops, with per-row `[b, t, d/2]` tables.
fn rope_composite(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (b, _h, t, d) = x.dims4()?;
    let cos = Tensor::cat(&[cos, cos], D::Minus1)?.reshape((b, 1, t, d))?;
    let sin = Tensor::cat(&[sin, sin], D::Minus1)?.reshape((b, 1, t, d))?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rot = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    Ok((x.broadcast_mul(&cos)? + rot.broadcast_mul(&sin)?)?)
}

fn rope_tables(cfg: &ModelConfig) -> Result<(Tensor, Tensor)> {
    let half = cfg.head_dim / 2;
    let n = cfg.max_position_embeddings.clamp(1, 1 << 16);
    let inv: Vec<f32> = (0..half)
        .map(|i| 1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim as f64) as f32)
        .collect();
    let mut cos = Vec::with_capacity(n * half);
    let mut sin = Vec::with_capacity(n * half);
    for p in 0..n {
        for &f in &inv {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    Ok((
        Tensor::from_vec(cos, (n, half), &Device::Cpu)?,
        Tensor::from_vec(sin, (n, half), &Device::Cpu)?,
    ))
}

/// Builds one inference projection from one or more `[out_i, in]` weight parts stacked along
/// `out`, with its bias.
fn fuse_weights(parts: &[Raw], opts: LoadOptions, bias: Option<Tensor>) -> Result<Linear> {
    let k = parts[0].cols()?;
    let first = parts[0].block_dtype();
    // The block format as stored: rows are independent blocks, so the parts' bytes stack.
    if keeps_stored_blocks(parts, opts.quant)? {
        let dtype = first.expect("checked");
        let mut bytes = Vec::new();
        let mut rows = 0;
        for p in parts {
            if let Raw::Quant(q) = p {
                bytes.extend_from_slice(&q.data()?);
                rows += q.shape().dims()[0];
            }
        }
        let storage = QStorage::from_data(std::borrow::Cow::Owned(bytes), &Device::Cpu, dtype)?;
        let qt = QTensor::new(storage, (rows, k))?;
        return Ok(Linear::new(quant_weight(qt)?, bias));
    }
    let dense = if parts.len() == 1 {
        parts[0].to_f32()?
    } else {
        let ts = parts.iter().map(Raw::to_f32).collect::<Result<Vec<_>>>()?;
        Tensor::cat(&ts, 0)?
    };
    let to_q8 = match opts.quant {
        InferQuant::Q8_0 | InferQuant::Auto => true,
        InferQuant::Original => first.is_some(),
        InferQuant::F32 => false,
    };
    if to_q8 && k.is_multiple_of(GgmlDType::Q8_0.block_size()) {
        let qt = QTensor::quantize(&dense, GgmlDType::Q8_0)?;
        Ok(Linear::new(quant_weight(qt)?, bias))
    } else {
        Ok(Linear::new(Weight::Dense(dense), bias))
    }
}

/// Whether the inference projection built from `parts` (`[out_i, in]`, stacked along `out`)
/// keeps their stored block format instead of requantizing to Q8_0 or going dense.
fn keeps_stored_blocks(parts: &[Raw], quant: InferQuant) -> Result<bool> {
    let first = parts[0].block_dtype();
    let same = first.is_some() && parts.iter().all(|p| p.block_dtype() == first);
    Ok(match quant {
        InferQuant::Original => same,
        InferQuant::Auto => {
            same && crate::qmatmul::available()
                && matches!(first, Some(GgmlDType::Q4_1 | GgmlDType::Q8_0))
                && parts[0]
                    .cols()?
                    .is_multiple_of(GgmlDType::Q8_0.block_size())
        }
        InferQuant::Q8_0 | InferQuant::F32 => false,
    })
}

/// A quantized weight in the packed layout where this CPU runs those kernels, else candle's.
fn quant_weight(qt: QTensor) -> Result<Weight> {
    Ok(match PackedMatrix::pack(&qt)? {
        Some(p) => Weight::Packed(Arc::new(p)),
        None => Weight::Quant(QMatMul::from_qtensor(qt)?),
    })
}

/// Inverse of llama.cpp's `permute` of q/k rows: `[heads, d/2, 2, ...]` → `[heads, 2, d/2, ...]`.
fn unpermute_rows(t: &Tensor, heads: usize) -> Result<Tensor> {
    let dims = t.dims().to_vec();
    let rows = dims[0];
    let hd = rows / heads;
    let rest: usize = dims[1..].iter().product();
    Ok(t.reshape((heads, hd / 2, 2, rest))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?)
}

/// Maps llama.cpp tensor names to Hugging Face names.
fn gguf_to_hf_name(name: &str) -> Option<String> {
    let direct = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(d) = direct {
        return Some(d.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (idx, tail) = rest.split_once('.')?;
    let (part, kind) = tail.rsplit_once('.')?;
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{idx}.{hf}.{kind}"))
}

/// The safetensors files of a Hugging Face folder, via the index when sharded.
fn safetensors_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Json {
            path: index.clone(),
            source: e,
        })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::Config(format!("{} lacks weight_map", index.display())))?;
        let mut files: Vec<_> = map
            .values()
            .filter_map(|f| f.as_str())
            .map(|f| dir.join(f))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))? {
        let p = e.map_err(|e| ModelError::io(dir, e))?.path();
        if p.extension().is_some_and(|x| x == "safetensors") {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(ModelError::MissingWeight(format!(
            "no *.safetensors in {}",
            dir.display()
        )));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Arch;

    /// A one-layer tied model whose embedding is a Q8_0 block tensor, as in SmolLM2's GGUF.
    fn tied_q8_embedding_model(quant: InferQuant) -> (Model, Tensor) {
        let (vocab, d, i) = (40, 32, 64);
        let config = ModelConfig {
            arch: Arch::Llama,
            vocab_size: vocab,
            hidden_size: d,
            intermediate_size: i,
            num_hidden_layers: 1,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 8,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 64,
            tie_word_embeddings: true,
            attention_bias: false,
            rope_layout: RopeLayout::HalfSplit,
            bos_token_id: None,
            eos_token_id: None,
        };
        let dev = Device::Cpu;
        let rand = |shape: (usize, usize)| Tensor::randn(0f32, 0.5, shape, &dev).unwrap();
        let mut raw = HashMap::new();
        let embed = QTensor::quantize(&rand((vocab, d)), GgmlDType::Q8_0).unwrap();
        let dequantized = embed.dequantize(&dev).unwrap();
        raw.insert(
            "model.embed_tokens.weight".to_string(),
            Raw::Quant(Arc::new(embed)),
        );
        let p = "model.layers.0";
        for (n, shape) in [
            ("self_attn.q_proj", (d, d)),
            ("self_attn.k_proj", (16, d)),
            ("self_attn.v_proj", (16, d)),
            ("self_attn.o_proj", (d, d)),
            ("mlp.gate_proj", (i, d)),
            ("mlp.up_proj", (i, d)),
            ("mlp.down_proj", (d, i)),
        ] {
            raw.insert(format!("{p}.{n}.weight"), Raw::Dense(rand(shape)));
        }
        for n in [
            format!("{p}.input_layernorm.weight"),
            format!("{p}.post_attention_layernorm.weight"),
            "model.norm.weight".to_string(),
        ] {
            raw.insert(n, Raw::Dense(Tensor::ones(d, DType::F32, &dev).unwrap()));
        }
        let opts = LoadOptions {
            mode: Mode::Infer,
            quant,
        };
        (Model::build(config, raw, opts).unwrap(), dequantized)
    }

    #[test]
    fn a_tied_embedding_is_read_from_the_packed_head_with_the_same_values() {
        let ids = Tensor::new(&[[3u32, 0, 39, 3]], &Device::Cpu).unwrap();
        for quant in [InferQuant::Auto, InferQuant::Q8_0] {
            let (model, table) = tied_q8_embedding_model(quant);
            let packed = matches!(model.embed_tokens, Embedding::Packed(_));
            // Only a head that keeps the checkpoint's blocks may serve as the table.
            let want_packed = quant == InferQuant::Auto && crate::qmatmul::available();
            assert_eq!(packed, want_packed, "{quant:?}");
            let got = model.embed(&ids).unwrap().squeeze(0).unwrap();
            let want = table.index_select(&ids.flatten_all().unwrap(), 0).unwrap();
            assert_eq!(
                got.to_vec2::<f32>().unwrap(),
                want.to_vec2::<f32>().unwrap(),
                "{quant:?}"
            );
            let out_of_vocab = Tensor::new(&[[40u32]], &Device::Cpu).unwrap();
            assert!(model.embed(&out_of_vocab).is_err(), "{quant:?}");
        }
    }

    /// Regression: when the tied embedding table stayed dense (a requantized head), the LM head
    /// was built from that dense table, a 49,152 x 576 f32 matmul per decoded token in
    /// `--quant q8_0` and in every training rollout.
    #[test]
    fn a_dense_tied_embedding_table_does_not_make_the_head_dense() {
        for quant in [InferQuant::Auto, InferQuant::Q8_0] {
            let (model, _) = tied_q8_embedding_model(quant);
            assert!(
                !matches!(model.lm_head.weight, Weight::Dense(_)),
                "{quant:?}: the tied LM head is dense"
            );
        }
    }
}
