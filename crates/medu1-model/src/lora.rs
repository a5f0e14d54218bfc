//! LoRA over a frozen quantized base (issue 18): the adapters of [`Mode::Lora`], the views a
//! trainer needs of such a model, adapters saved and loaded in PEFT's layout, and merging them
//! into dense weights.
//!
//! Full fine-tuning keeps every weight as an f32 `Var` plus two AdamW moments, 12 bytes a
//! weight: a 2-core, 24 GiB machine stops at 135M parameters. In LoRA mode the base stays in the
//! block form inference uses (about 1.1 bytes a weight for Q8_0, 0.6 for Q4_1) and only the
//! adapters `A [rank, in]`, `B [out, rank]` train. The base matmuls are `qlinear` ops: the
//! inference kernels forward, `dX = dY W` from `W` dequantized a chunk at a time backward.
//!
//! One copy of the base serves three roles: the policy (this model), the KL reference
//! ([`Model::without_adapters`]: same kernels, so at `B = 0` it gives the policy's log-probs bit
//! for bit) and the rollout model ([`Model::inference_view`]: the adapters' current values, no
//! requantization).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Tensor, Var};
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use crate::config::{ModelConfig, RopeLayout};
use crate::error::{ModelError, Result};
use crate::linear::{Adapter, Linear};
use crate::llama_cpp::{permute_rows, unpermute_rows};
use crate::lora_config::{LoraConfig, Projection, Targets};
use crate::model::{DecoderLayer, Embedding, GateUp, Model, Qkv};
use crate::options::{LoadOptions, Mode};
use crate::qlinear::QBase;

/// The file names PEFT reads and writes.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
pub const ADAPTER_CONFIG: &str = "adapter_config.json";

/// Bytes of weights a model holds, by kind (rope tables excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// Quantized matrices: packed tiles or GGUF blocks.
    pub quantized: usize,
    /// Dense matrices of the projections and the LM head (f32 unless a checkpoint says else).
    pub dense_matrices: usize,
    /// The token-embedding table where it is held apart from the LM head.
    pub embedding: usize,
    /// Norm weights and biases.
    pub vectors: usize,
    /// LoRA adapters.
    pub adapters: usize,
}

impl MemoryUse {
    pub fn total(&self) -> usize {
        self.quantized + self.dense_matrices + self.embedding + self.vectors + self.adapters
    }
}

/// PEFT's name of an adapter matrix (`ab` is `A` or `B`), as `save_pretrained` writes it: the
/// adapter name (`default`) removed.
pub fn adapter_name(layer: usize, p: Projection, ab: char) -> String {
    format!(
        "base_model.model.model.layers.{layer}.{}.lora_{ab}.weight",
        p.module()
    )
}

/// Output rows of projection `p` in the model's order from Hugging Face's (or back, `to_hf`):
/// llama.cpp permutes the q/k rows of llama checkpoints for its interleaved rope, so the rows of
/// B (and of merged weights and biases) follow.
fn b_rows(cfg: &ModelConfig, p: Projection, b: &Tensor, to_hf: bool) -> Result<Tensor> {
    let heads = match p {
        Projection::Q => cfg.num_attention_heads,
        Projection::K => cfg.num_key_value_heads,
        _ => return Ok(b.clone()),
    };
    if cfg.rope_layout != RopeLayout::Interleaved {
        return Ok(b.clone());
    }
    Ok(if to_hf {
        unpermute_rows(b, heads)?
    } else {
        permute_rows(b, heads)?
    })
}

/// Adds a projection's weight, bias and adapter bytes to `m`.
fn count_linear(lin: &Linear, m: &mut MemoryUse) {
    let (q, d) = lin.weight_bytes();
    m.quantized += q;
    m.dense_matrices += d;
    m.vectors += lin.bias.as_ref().map_or(0, tensor_bytes);
    if let Some(ad) = &lin.lora {
        m.adapters += tensor_bytes(&ad.a) + tensor_bytes(&ad.b);
    }
}

fn tensor_bytes(t: &Tensor) -> usize {
    t.elem_count() * t.dtype().size_in_bytes()
}

/// A splitmix64 step: independent dropout seeds for each adapter from one seed.
fn mix(seed: u64, i: u64) -> u64 {
    medu1_core::seed::mix64(seed ^ i.wrapping_mul(medu1_core::seed::GOLDEN))
}

fn projection_of(layer: &DecoderLayer, p: Projection) -> Option<&Linear> {
    Some(match (p, &layer.self_attn.qkv, &layer.mlp.gate_up) {
        (Projection::Q, Qkv::Separate { q_proj, .. }, _) => q_proj,
        (Projection::K, Qkv::Separate { k_proj, .. }, _) => k_proj,
        (Projection::V, Qkv::Separate { v_proj, .. }, _) => v_proj,
        (Projection::O, _, _) => &layer.self_attn.o_proj,
        (Projection::Gate, _, GateUp::Separate { gate_proj, .. }) => gate_proj,
        (Projection::Up, _, GateUp::Separate { up_proj, .. }) => up_proj,
        (Projection::Down, _, _) => &layer.mlp.down_proj,
        _ => return None,
    })
}

fn projection_of_mut(layer: &mut DecoderLayer, p: Projection) -> Option<&mut Linear> {
    Some(
        match (p, &mut layer.self_attn.qkv, &mut layer.mlp.gate_up) {
            (Projection::Q, Qkv::Separate { q_proj, .. }, _) => q_proj,
            (Projection::K, Qkv::Separate { k_proj, .. }, _) => k_proj,
            (Projection::V, Qkv::Separate { v_proj, .. }, _) => v_proj,
            (Projection::O, _, _) => &mut layer.self_attn.o_proj,
            (Projection::Gate, _, GateUp::Separate { gate_proj, .. }) => gate_proj,
            (Projection::Up, _, GateUp::Separate { up_proj, .. }) => up_proj,
            (Projection::Down, _, _) => &mut layer.mlp.down_proj,
            _ => return None,
        },
    )
}

/// Every projection of a layer, fused ones included (memory accounting).
fn layer_linears(layer: &DecoderLayer) -> Vec<&Linear> {
    let mut v = match &layer.self_attn.qkv {
        Qkv::Separate {
            q_proj,
            k_proj,
            v_proj,
        } => vec![q_proj, k_proj, v_proj],
        Qkv::Fused { qkv_proj } => vec![qkv_proj],
    };
    v.push(&layer.self_attn.o_proj);
    match &layer.mlp.gate_up {
        GateUp::Separate { gate_proj, up_proj } => v.extend([gate_proj, up_proj]),
        GateUp::Fused { gate_up_proj } => v.push(gate_up_proj),
    }
    v.push(&layer.mlp.down_proj);
    v
}

/// The fields of PEFT's `adapter_config.json` that decide how an adapter is applied.
#[derive(Deserialize)]
struct PeftConfig {
    peft_type: String,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    lora_dropout: f64,
    target_modules: Targets,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default = "bias_none")]
    bias: String,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    rank_pattern: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    alpha_pattern: Option<serde_json::Map<String, serde_json::Value>>,
}

fn bias_none() -> String {
    "none".into()
}

impl PeftConfig {
    /// The adapter as a [`LoraConfig`], refusing what medu1 does not apply.
    fn to_lora(&self, seed: u64) -> Result<LoraConfig> {
        let refuse = |what: &str| Err(ModelError::Unsupported(format!("PEFT adapter: {what}")));
        if self.peft_type != "LORA" {
            return refuse(&format!("peft_type {} (only LORA)", self.peft_type));
        }
        if self.bias != "none" {
            return refuse(&format!("bias {} (only none)", self.bias));
        }
        if self.fan_in_fan_out || self.use_dora {
            return refuse("fan_in_fan_out or DoRA");
        }
        if self.modules_to_save.as_ref().is_some_and(|m| !m.is_empty())
            || self.rank_pattern.as_ref().is_some_and(|m| !m.is_empty())
            || self.alpha_pattern.as_ref().is_some_and(|m| !m.is_empty())
        {
            return refuse("modules_to_save, rank_pattern or alpha_pattern");
        }
        let cfg = LoraConfig {
            rank: self.r,
            alpha: self.lora_alpha,
            dropout: self.lora_dropout,
            targets: self.target_modules,
            use_rslora: self.use_rslora,
            seed,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl Model {
    /// The adapters' settings, for a LoRA model or a view of one.
    pub fn lora_config(&self) -> Option<&LoraConfig> {
        self.lora.as_ref()
    }

    fn projection(&self, layer: usize, p: Projection) -> Result<&Linear> {
        projection_of(&self.layers[layer], p).ok_or_else(|| {
            ModelError::Unsupported(format!(
                "{} is fused in inference mode; load with LoadOptions::lora or ::train",
                p.name()
            ))
        })
    }

    /// Every adapted projection: `(layer, projection, linear)`.
    fn adapted(&self) -> impl Iterator<Item = (usize, Projection, &Linear)> {
        self.layers.iter().enumerate().flat_map(|(i, l)| {
            Projection::ALL
                .into_iter()
                .filter_map(move |p| projection_of(l, p).map(|lin| (i, p, lin)))
                .filter(|(_, _, lin)| lin.lora.is_some())
        })
    }

    fn for_each_adapter(&mut self, mut f: impl FnMut(usize, &mut Adapter)) {
        let mut n = 0;
        for layer in &mut self.layers {
            for p in Projection::ALL {
                if let Some(Linear { lora: Some(ad), .. }) = projection_of_mut(layer, p) {
                    f(n, ad);
                    n += 1;
                }
            }
        }
    }

    /// Gives each target projection an adapter made by `make(layer, projection, (out, in))`
    /// (`A`, `B` in the model's row order) and the others none; the adapters become the
    /// trainable `Var`s.
    fn install_adapters(
        &mut self,
        cfg: &LoraConfig,
        mut make: impl FnMut(usize, Projection, (usize, usize)) -> Result<(Tensor, Tensor)>,
    ) -> Result<()> {
        let mut vars = Vec::new();
        for i in 0..self.layers.len() {
            for p in Projection::ALL {
                let lin = projection_of_mut(&mut self.layers[i], p).ok_or_else(|| {
                    ModelError::Unsupported("adapters need separate projections".into())
                })?;
                if !cfg.targets.contains(p) {
                    lin.lora = None;
                    continue;
                }
                let (out, inp) = lin.dims()?;
                let (a, b) = make(i, p, (out, inp))?;
                if a.dims() != [cfg.rank, inp] || b.dims() != [out, cfg.rank] {
                    return Err(ModelError::Config(format!(
                        "layer {i} {}: adapter A {:?} / B {:?}, want [{}, {inp}] / [{out}, {}]",
                        p.name(),
                        a.dims(),
                        b.dims(),
                        cfg.rank,
                        cfg.rank
                    )));
                }
                let a = Var::from_tensor(&a.to_dtype(DType::F32)?)?;
                let b = Var::from_tensor(&b.to_dtype(DType::F32)?)?;
                lin.lora = Some(Adapter {
                    a: a.as_tensor().clone(),
                    b: b.as_tensor().clone(),
                    scale: cfg.scale(),
                    dropout: cfg.dropout as f32,
                    dropout_seed: None,
                });
                vars.push((adapter_name(i, p, 'A'), a));
                vars.push((adapter_name(i, p, 'B'), b));
            }
        }
        self.vars = vars;
        self.lora = Some(*cfg);
        Ok(())
    }

    /// Fresh adapters: `A` kaiming-uniform as PEFT draws it (`a = sqrt(5)`, so
    /// `U(-1/sqrt(in), 1/sqrt(in))`) from `cfg.seed`, `B = 0`.
    pub(crate) fn init_adapters(&mut self, cfg: &LoraConfig) -> Result<()> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
        let dev = self.device().clone();
        self.install_adapters(cfg, |_, _, (out, inp)| {
            let bound = 1.0 / (inp as f64).sqrt();
            let a: Vec<f32> = (0..cfg.rank * inp)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            Ok((
                Tensor::from_vec(a, (cfg.rank, inp), &dev)?,
                Tensor::zeros((out, cfg.rank), DType::F32, &dev)?,
            ))
        })
    }

    /// The same base without adapters, sharing its storage (the KL term's reference). It keeps
    /// this model's mode, so its ops are the policy's: with `B = 0` both give the same bits.
    pub fn without_adapters(&self) -> Model {
        let mut m = self.clone();
        for layer in &mut m.layers {
            for p in Projection::ALL {
                if let Some(lin) = projection_of_mut(layer, p) {
                    lin.lora = None;
                }
            }
        }
        m.vars.clear();
        m.grad_side = None;
        m.lora = None;
        m
    }

    /// A frozen copy of this model for the KL term's reference: the same base (shared, not
    /// copied) and a copy of the adapters' current values that later optimizer steps do not
    /// reach. It keeps this model's mode, so its ops are the policy's and the two give the same
    /// bits until the first update. Where every `B` is still zero (a run that starts from the
    /// base) it is [`Model::without_adapters`], which skips the adapters' matmuls; after a LoRA
    /// warm-up it carries the warm-up's adapters, since the reference is the policy GRPO starts
    /// from, not the base under it.
    pub fn frozen_adapters(&self) -> Result<Model> {
        let mut any_trained = false;
        for (_, _, lin) in self.adapted() {
            let b = &lin.lora.as_ref().expect("adapted").b;
            any_trained |= b.abs()?.max_all()?.to_scalar::<f32>()? != 0.0;
        }
        if !any_trained {
            return Ok(self.without_adapters());
        }
        let mut m = self.clone();
        let mut err = None;
        m.for_each_adapter(|_, ad| {
            let copy = |t: &Tensor| t.detach().copy();
            match (copy(&ad.a), copy(&ad.b)) {
                (Ok(a), Ok(b)) => (ad.a, ad.b) = (a, b),
                (Err(e), _) | (_, Err(e)) => err = Some(e),
            }
            ad.dropout_seed = None;
        });
        if let Some(e) = err {
            return Err(e.into());
        }
        m.vars.clear();
        m.grad_side = None;
        Ok(m)
    }

    /// An inference-mode view for generation: the same quantized base (nothing requantized) and
    /// the adapters' current values, read from the `Var`s' storage, so optimizer updates reach
    /// it without rebuilding it. q/k/v and gate/up stay separate projections.
    pub fn inference_view(&self) -> Result<Model> {
        if self.mode != Mode::Lora {
            return Err(ModelError::Unsupported(
                "inference views are of LoRA models; reload others in inference mode".into(),
            ));
        }
        let mut m = self.clone();
        m.mode = Mode::Infer;
        m.for_each_adapter(|_, ad| {
            ad.a = ad.a.detach();
            ad.b = ad.b.detach();
            ad.dropout_seed = None;
        });
        m.vars.clear();
        m.grad_side = None;
        Ok(m)
    }

    /// A view whose adapters apply dropout (`cfg.dropout`) with masks drawn from `seed`, each
    /// adapter its own stream; `None` turns it off. A trainer derives the seed from its run seed
    /// and step, so a resumed run draws the same masks.
    pub fn with_dropout_seed(&self, seed: Option<u64>) -> Model {
        let mut m = self.clone();
        m.for_each_adapter(|i, ad| ad.dropout_seed = seed.map(|s| mix(s, i as u64)));
        m
    }

    /// Writes the adapters as PEFT does: `adapter_model.safetensors` (f32, PEFT's names, B's
    /// q/k rows in Hugging Face's order) and `adapter_config.json`, each atomically.
    pub fn save_adapter(&self, dir: &Path, base_model_name_or_path: &str) -> Result<()> {
        let cfg = self.lora.ok_or_else(|| {
            ModelError::Unsupported("no adapters: load the base with LoadOptions::lora".into())
        })?;
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let mut tensors = BTreeMap::new();
        for (i, p, lin) in self.adapted() {
            let ad = lin.lora.as_ref().expect("adapted");
            let b = b_rows(&self.config, p, &ad.b.detach(), true)?;
            tensors.insert(adapter_name(i, p, 'A'), ad.a.detach().contiguous()?);
            tensors.insert(adapter_name(i, p, 'B'), b.contiguous()?);
        }
        let path = dir.join(ADAPTER_WEIGHTS);
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        let bytes = safetensors::tensor::serialize(tensors.iter(), Some(meta)).map_err(|e| {
            ModelError::Write {
                path: path.clone(),
                source: std::io::Error::other(e),
            }
        })?;
        medu1_core::atomic::write_atomic(&path, &bytes)
            .map_err(|source| ModelError::Write { path, source })?;
        let targets: Vec<String> = cfg.targets.into();
        // An integral alpha is written as PEFT's int.
        let alpha = if cfg.alpha.fract() == 0.0 && cfg.alpha.abs() < 1e15 {
            serde_json::json!(cfg.alpha as i64)
        } else {
            serde_json::json!(cfg.alpha)
        };
        let json = serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model_name_or_path,
            "r": cfg.rank,
            "lora_alpha": alpha,
            "lora_dropout": cfg.dropout,
            "target_modules": targets,
            "use_rslora": cfg.use_rslora,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "init_lora_weights": true,
            "use_dora": false,
            "modules_to_save": null,
            "layers_to_transform": null,
            "layers_pattern": null,
            "rank_pattern": {},
            "alpha_pattern": {},
        });
        let path = dir.join(ADAPTER_CONFIG);
        let text = serde_json::to_string_pretty(&json).map_err(|source| ModelError::Json {
            path: path.clone(),
            source,
        })?;
        medu1_core::atomic::write_atomic(&path, text.as_bytes())
            .map_err(|source| ModelError::Write { path, source })
    }

    /// Replaces the adapters with those of a PEFT folder (`adapter_config.json`,
    /// `adapter_model.safetensors`); the model must be in LoRA mode. Every tensor of the file
    /// must be applied: an adapter on a module medu1 does not adapt (the LM head, embeddings) is
    /// refused rather than dropped.
    pub fn load_adapter(&mut self, dir: &Path) -> Result<()> {
        if self.mode != Mode::Lora {
            return Err(ModelError::Unsupported(
                "adapters are applied to a base loaded with LoadOptions::lora".into(),
            ));
        }
        let path = dir.join(ADAPTER_CONFIG);
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        let peft: PeftConfig =
            serde_json::from_str(&text).map_err(|source| ModelError::Json { path, source })?;
        let cfg = peft.to_lora(self.lora.map_or(0, |c| c.seed))?;
        let path = dir.join(ADAPTER_WEIGHTS);
        let mut tensors = candle_core::safetensors::load(&path, self.device())?;
        let mut take = |name: String| tensors.remove(&name).ok_or(ModelError::MissingWeight(name));
        let config = self.config.clone();
        self.install_adapters(&cfg, |i, p, _| {
            let a = take(adapter_name(i, p, 'A'))?;
            let b = take(adapter_name(i, p, 'B'))?;
            Ok((a, b_rows(&config, p, &b.to_dtype(DType::F32)?, false)?))
        })?;
        if !tensors.is_empty() {
            let mut left: Vec<_> = tensors.into_keys().collect();
            left.sort();
            return Err(ModelError::Unsupported(format!(
                "{} has tensors medu1 does not apply: {}",
                path.display(),
                left.join(", ")
            )));
        }
        Ok(())
    }

    /// The dense weights with Hugging Face names and layout, each adapted projection merged:
    /// `W + scale * B A`, with `W` dequantized (q/k rows of interleaved checkpoints in
    /// half-split order, as [`Model::save_hf`] writes them), and the config to load them with.
    pub fn merged_hf_tensors(&self) -> Result<(ModelConfig, HashMap<String, Tensor>)> {
        let cfg = &self.config;
        let mut out = HashMap::new();
        let embed = match &self.embed_tokens {
            Embedding::Dense(e) => e.detach(),
            Embedding::Packed(p) => QBase::Packed(p.clone()).dequantize()?,
        };
        out.insert("model.embed_tokens.weight".to_string(), embed);
        if !cfg.tie_word_embeddings {
            out.insert("lm_head.weight".to_string(), self.lm_head.dense_weight()?);
        }
        out.insert("model.norm.weight".to_string(), self.norm.detach());
        for (i, layer) in self.layers.iter().enumerate() {
            let pre = format!("model.layers.{i}");
            out.insert(
                format!("{pre}.input_layernorm.weight"),
                layer.input_layernorm.detach(),
            );
            out.insert(
                format!("{pre}.post_attention_layernorm.weight"),
                layer.post_attention_layernorm.detach(),
            );
            for p in Projection::ALL {
                let lin = self.projection(i, p)?;
                let mut w = lin.dense_weight()?;
                if let Some(ad) = &lin.lora {
                    let ba = ad.b.detach().matmul(&ad.a.detach())?;
                    w = (w + (ba * ad.scale)?)?;
                }
                let w = b_rows(cfg, p, &w, true)?;
                out.insert(format!("{pre}.{}.weight", p.module()), w);
                if let Some(b) = &lin.bias {
                    let b = b_rows(cfg, p, &b.detach(), true)?;
                    out.insert(format!("{pre}.{}.bias", p.module()), b);
                }
            }
        }
        let mut hf = cfg.clone();
        hf.rope_layout = RopeLayout::HalfSplit;
        Ok((hf, out))
    }

    /// A model over the merged weights ([`Model::merged_hf_tensors`]) built with `opts`.
    pub fn merge(&self, opts: LoadOptions) -> Result<Model> {
        let (cfg, tensors) = self.merged_hf_tensors()?;
        Model::from_tensors(cfg, tensors, opts)
    }

    /// The bytes of weights this model holds, by kind. Tensors shared between two places (a
    /// tied embedding and LM head) are counted once.
    pub fn memory(&self) -> MemoryUse {
        let mut m = MemoryUse::default();
        for layer in &self.layers {
            for lin in layer_linears(layer) {
                count_linear(lin, &mut m);
            }
            m.vectors += tensor_bytes(&layer.input_layernorm)
                + tensor_bytes(&layer.post_attention_layernorm);
        }
        m.vectors += tensor_bytes(&self.norm);
        let shared = match (&self.embed_tokens, &self.lm_head.weight) {
            (Embedding::Dense(e), crate::linear::Weight::Dense(w)) => e.id() == w.id(),
            _ => false,
        };
        if !shared {
            count_linear(&self.lm_head, &mut m);
        }
        if let Embedding::Dense(e) = &self.embed_tokens {
            m.embedding += tensor_bytes(e);
        }
        m
    }
}
