//! Loading and saving weights: GGUF files and Hugging Face folders (one or several safetensors
//! files), llama.cpp tensor names mapped to Hugging Face ones, the model built from them in
//! either [`Mode`], and [`Model::save_hf`] writing the trainable weights back.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, gguf_file};
use candle_core::{DType, Device, Tensor, Var};

use crate::config::{ModelConfig, RopeLayout};
use crate::error::{ModelError, Result};
use crate::linear::{Linear, Raw, Weight, fuse_weights, keeps_stored_blocks};
use crate::llama_cpp::{gguf_to_hf_name, relayout_rows};
use crate::model::{DecoderLayer, Embedding, GateUp, Mlp, Model, Qkv, SelfAttn};
use crate::options::{InferQuant, LoadOptions, Mode};
use crate::rope::rope_tables;

impl Model {
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
        mut opts: LoadOptions,
    ) -> Result<Self> {
        let device = opts.device.device()?;
        if !device.is_cpu() {
            // A GPU runs dense weights (the packed and block kernels are CPU code): each one is
            // dequantized and moved on its own, so the host never holds the f32 model at once.
            opts.quant = InferQuant::F32;
            for r in raw.values_mut() {
                *r = Raw::Dense(r.to_f32()?.to_device(&device)?);
            }
        }
        let cfg = &config;
        let mut vars: Vec<(String, Var)> = Vec::new();
        let mut take = |name: &str| -> Result<Raw> {
            raw.remove(name)
                .ok_or_else(|| ModelError::MissingWeight(name.to_string()))
        };
        let lora = opts.lora_config()?;
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
                if lora.is_some() {
                    // Adapters are per matrix (PEFT's modules), so q/k/v and gate/up stay apart;
                    // each keeps the inference format of a single part.
                    let mut out = Vec::new();
                    for (j, (_, w)) in ws.iter().enumerate() {
                        let bias = match bs.get(j) {
                            Some((_, b)) => Some(b.to_f32()?),
                            None => None,
                        };
                        out.push(fuse_weights(std::slice::from_ref(w), opts, bias)?);
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
        let (cos, sin) = (cos.to_device(&device)?, sin.to_device(&device)?);
        let mut model = Model {
            config,
            mode: opts.mode,
            embed_tokens,
            layers,
            norm,
            lm_head,
            cos,
            sin,
            vars,
            lora,
            grad_side: None,
        };
        if let Some(cfg) = lora {
            model.init_adapters(&cfg)?;
        }
        Ok(model)
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
            let t = var.as_tensor().detach();
            let t = relayout_rows(cfg, name, &t, cfg.rope_layout, RopeLayout::HalfSplit)?;
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
    use crate::options::InferQuant;
    use candle_core::quantized::QTensor;

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
        let opts = LoadOptions::infer_with(quant);
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
