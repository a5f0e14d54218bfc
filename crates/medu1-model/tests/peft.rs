//! PEFT reads medu1's adapters: a tiny Hugging Face model folder and an adapter written by
//! [`Model::save_adapter`] load in transformers + PEFT (`PeftModel.from_pretrained`) and give
//! medu1's logits. Needs a Python with torch, transformers and peft (`scripts/peft_venv.sh`
//! builds one) in `MEDU1_PEFT_PYTHON`; skips with a message otherwise.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

use candle_core::{Device, Tensor};
use medu1_model::{Arch, InferQuant, LoadOptions, LoraConfig, Model, ModelConfig, RopeLayout};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SCRIPT: &str = r#"
import json, sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
base, adapter, case = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32)
model = PeftModel.from_pretrained(model, adapter).eval()
with torch.no_grad():
    logits = model(torch.tensor(case["ids"])).logits
want = torch.tensor(case["logits"])
print(json.dumps({"max_diff": (logits - want).abs().max().item(),
                  "scale": want.abs().max().item()}))
"#;

fn config(arch: Arch) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size: 64,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-5,
        max_position_embeddings: 128,
        tie_word_embeddings: arch == Arch::Qwen2,
        attention_bias: arch == Arch::Qwen2,
        rope_layout: RopeLayout::HalfSplit,
        bos_token_id: Some(1),
        eos_token_id: Some(2),
    }
}

/// Random weights for every tensor of a model of `cfg`, with Hugging Face names.
fn weights(cfg: &ModelConfig, rng: &mut ChaCha8Rng) -> HashMap<String, Tensor> {
    let shapes = {
        // Sorted, so the random values go to the same tensors on every run.
        let mut shapes_of = BTreeMap::new();
        let d = cfg.hidden_size;
        let kv = cfg.num_key_value_heads * cfg.head_dim;
        let q = cfg.num_attention_heads * cfg.head_dim;
        let i = cfg.intermediate_size;
        shapes_of.insert(
            "model.embed_tokens.weight".to_string(),
            vec![cfg.vocab_size, d],
        );
        shapes_of.insert("model.norm.weight".to_string(), vec![d]);
        if !cfg.tie_word_embeddings {
            shapes_of.insert("lm_head.weight".to_string(), vec![cfg.vocab_size, d]);
        }
        for l in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{l}");
            for (n, s) in [
                ("input_layernorm.weight", vec![d]),
                ("post_attention_layernorm.weight", vec![d]),
                ("self_attn.q_proj.weight", vec![q, d]),
                ("self_attn.k_proj.weight", vec![kv, d]),
                ("self_attn.v_proj.weight", vec![kv, d]),
                ("self_attn.o_proj.weight", vec![d, q]),
                ("mlp.gate_proj.weight", vec![i, d]),
                ("mlp.up_proj.weight", vec![i, d]),
                ("mlp.down_proj.weight", vec![d, i]),
            ] {
                shapes_of.insert(format!("{p}.{n}"), s);
            }
            if cfg.attention_bias {
                for (n, s) in [("q", q), ("k", kv), ("v", kv)] {
                    shapes_of.insert(format!("{p}.self_attn.{n}_proj.bias"), vec![s]);
                }
            }
        }
        shapes_of
    };
    shapes
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let offset = if name.contains("norm") { 1.0 } else { 0.0 };
            let v: Vec<f32> = (0..n)
                .map(|_| offset + 0.3 * (rng.random::<f32>() * 2.0 - 1.0))
                .collect();
            (name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap())
        })
        .collect()
}

#[test]
fn peft_applies_medu1_adapters_with_the_same_logits() {
    let Some(python) = std::env::var_os("MEDU1_PEFT_PYTHON") else {
        medu1_core::testing::skip(
            "peft",
            "MEDU1_PEFT_PYTHON is not set (a Python with torch, transformers and peft: \
             scripts/peft_venv.sh)",
        );
        return;
    };
    for arch in [Arch::Llama, Arch::Qwen2] {
        let cfg = config(arch);
        let mut rng = ChaCha8Rng::seed_from_u64(41);
        let w = weights(&cfg, &mut rng);
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        // The base as transformers reads it, through medu1's own writer.
        Model::from_tensors(cfg.clone(), w.clone(), LoadOptions::train())
            .unwrap()
            .save_hf(&base)
            .unwrap();
        // rsLoRA and a subset of targets, so the config's fields matter.
        let lora = LoraConfig {
            rank: 4,
            alpha: 6.0,
            use_rslora: true,
            targets: medu1_model::Targets::from_names(&["q_proj", "k_proj", "o_proj", "up_proj"])
                .unwrap(),
            ..LoraConfig::default()
        };
        let opts = LoadOptions {
            quant: InferQuant::F32,
            ..LoadOptions::lora(lora)
        };
        let model = Model::from_tensors(cfg.clone(), w, opts).unwrap();
        for (_, v) in model.trainable_vars() {
            let n = v.elem_count();
            let vals: Vec<f32> = (0..n)
                .map(|_| 0.3 * (rng.random::<f32>() * 2.0 - 1.0))
                .collect();
            v.set(&Tensor::from_vec(vals, v.dims(), &Device::Cpu).unwrap())
                .unwrap();
        }
        let adapter = dir.path().join("adapter");
        model
            .save_adapter(&adapter, &base.display().to_string())
            .unwrap();
        let ids: Vec<Vec<u32>> = vec![(0..10).map(|i| (i * 7 + 3) % 64).collect()];
        let input = Tensor::from_vec(ids[0].clone(), (1, ids[0].len()), &Device::Cpu).unwrap();
        let logits = model
            .forward(&input, None)
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        let case = dir.path().join("case.json");
        std::fs::write(
            &case,
            serde_json::json!({"ids": ids, "logits": logits}).to_string(),
        )
        .unwrap();
        let out = Command::new(&python)
            .args(["-c", SCRIPT])
            .arg(&base)
            .arg(&adapter)
            .arg(&case)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let res: serde_json::Value = serde_json::from_str(text.trim().lines().last().unwrap())
            .unwrap_or_else(|e| panic!("{e}: {text}"));
        let (diff, scale) = (
            res["max_diff"].as_f64().unwrap(),
            res["scale"].as_f64().unwrap(),
        );
        eprintln!("{arch:?}: PEFT vs medu1 logits differ by {diff:e} (scale {scale})");
        assert!(diff < 1e-4 * scale.max(1.0), "{arch:?}: {diff} vs {scale}");
    }
}
