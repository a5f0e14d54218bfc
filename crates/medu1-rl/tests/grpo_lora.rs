//! GRPO with `[lora]` on a tiny random Llama whose matrices are Q8_0: a step changes the
//! adapters and nothing else, the reference stays the base, checkpoints carry a PEFT adapter,
//! and a resumed run ends with the same adapters bit for bit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use medu1_model::{Arch, LoadOptions, LoraConfig, Mode, Model, ModelConfig, RopeLayout, Tokenizer};
use medu1_rl::config::DataFile;
use medu1_rl::{Grpo, RewardInput, RewardOutput, Rewarder, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: usize = 16;

/// Input widths of 32 and 64, so every matrix (the LM head too) is requantized to Q8_0.
fn config() -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        vocab_size: VOCAB,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 8,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-5,
        max_position_embeddings: 2048,
        tie_word_embeddings: false,
        attention_bias: false,
        rope_layout: RopeLayout::HalfSplit,
        bos_token_id: None,
        eos_token_id: None,
    }
}

fn weights(cfg: &ModelConfig) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (d, i) = (cfg.hidden_size, cfg.intermediate_size);
    let kv = cfg.num_key_value_heads * cfg.head_dim;
    let mut shapes = vec![
        (
            "model.embed_tokens.weight".to_string(),
            vec![VOCAB, d],
            1.0,
            0.0,
        ),
        ("model.norm.weight".to_string(), vec![d], 0.1, 1.0),
        ("lm_head.weight".to_string(), vec![VOCAB, d], 0.05, 0.0),
    ];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        for (n, s, scale, offset) in [
            ("input_layernorm", vec![d], 0.1, 1.0),
            ("post_attention_layernorm", vec![d], 0.1, 1.0),
            ("self_attn.q_proj", vec![d, d], 0.3, 0.0),
            ("self_attn.k_proj", vec![kv, d], 0.3, 0.0),
            ("self_attn.v_proj", vec![kv, d], 0.3, 0.0),
            ("self_attn.o_proj", vec![d, d], 0.3, 0.0),
            ("mlp.gate_proj", vec![i, d], 0.3, 0.0),
            ("mlp.up_proj", vec![i, d], 0.3, 0.0),
            ("mlp.down_proj", vec![d, i], 0.3, 0.0),
        ] {
            shapes.push((format!("{p}.{n}.weight"), s, scale, offset));
        }
    }
    shapes
        .into_iter()
        .map(|(name, shape, scale, offset)| {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| offset + scale * (rng.random::<f32>() * 2.0 - 1.0))
                .collect();
            (name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap())
        })
        .collect()
}

fn lora() -> LoraConfig {
    LoraConfig {
        rank: 4,
        alpha: 8.0,
        // Dropout on, so resume must redraw the same masks.
        dropout: 0.1,
        ..LoraConfig::default()
    }
}

fn policy() -> Model {
    Model::from_tensors(config(), weights(&config()), LoadOptions::lora(lora())).unwrap()
}

fn tokenizer() -> Tokenizer {
    use tokenizers::models::wordlevel::WordLevel;
    let vocab: HashMap<String, u32> = (0..VOCAB as u32).map(|i| (format!("t{i}"), i)).collect();
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("t0".into())
        .build()
        .unwrap();
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
    Tokenizer::from_inner(tok)
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("medu1-grpo-lora-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_data(dir: &Path) -> PathBuf {
    let items: Vec<serde_json::Value> = (0..6)
        .map(|i| {
            serde_json::json!({
                "Source": "MedIQ", "id": format!("{i}"),
                "problem": format!("q{i}"), "problem_type": "multiple choice",
                "options": "{'A': 'x', 'B': 'y'}", "answer": "A", "solution": "x"
            })
        })
        .collect();
    let p = dir.join("toy.json");
    std::fs::write(&p, serde_json::to_string(&items).unwrap()).unwrap();
    p
}

/// Reward: the share of response tokens that are `t5`.
#[derive(Debug)]
struct CountT5;
impl Rewarder for CountT5 {
    fn reward(&self, x: &RewardInput<'_>) -> RewardOutput {
        let words: Vec<&str> = x.response.split_whitespace().collect();
        let hits = words.iter().filter(|w| **w == "t5").count();
        RewardOutput {
            reward: hits as f64 / words.len().max(1) as f64,
            correct: hits > 0,
            format_ok: true,
            error: false,
        }
    }
}

fn toy_config(dir: &Path, data: &Path, steps: usize, out: &str) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.data.train = vec![DataFile {
        path: data.to_path_buf(),
        weight: 1.0,
        limit: None,
        skip: 0,
    }];
    c.data.budget = "none".into();
    c.data.max_prompt_tokens = 2048;
    c.rollout.prompts_per_step = 2;
    c.rollout.n = 4;
    c.rollout.temperature = 1.0;
    c.rollout.max_response_tokens = 6;
    c.optim.lr = 0.02;
    c.optim.micro_batch_size = 4;
    c.optim.schedule = medu1_rl::LrSchedule::ConstantWithWarmup {
        warmup_steps: 0,
        skip_zero_first_step: true,
    };
    c.algorithm.entropy_coef = 0.0;
    c.algorithm.use_kl_loss = true;
    c.trainer.steps = steps;
    c.trainer.out_dir = dir.join(out);
    c.lora = Some(lora());
    c
}

fn adapters(m: &Model) -> Vec<(String, Vec<u32>)> {
    m.trainable_vars()
        .iter()
        .map(|(n, v)| {
            let vals = v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (n.clone(), vals.into_iter().map(f32::to_bits).collect())
        })
        .collect()
}

/// The base's weights, adapters left out, as bits.
fn base_bits(m: &Model) -> Vec<(String, Vec<u32>)> {
    let (_, t) = m.without_adapters().merged_hf_tensors().unwrap();
    let mut v: Vec<_> = t
        .into_iter()
        .map(|(n, t)| {
            let vals = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (n, vals.into_iter().map(f32::to_bits).collect())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_lora_step_changes_only_the_adapters() {
    let dir = tempdir("step");
    let data = write_data(&dir);
    let cfg = toy_config(&dir, &data, 1, "run");
    assert_eq!(cfg.load_options().mode, Mode::Lora);
    let p = policy();
    let (before_a, before_base) = (adapters(&p), base_bits(&p));
    let mut g = Grpo::new(cfg, p, tokenizer(), Box::new(CountT5), false).unwrap();
    assert_eq!(g.reference().unwrap().mode(), Mode::Lora);
    assert!(g.reference().unwrap().trainable_vars().is_empty());
    g.step(&mut |_| {}).unwrap();
    // Only adapter Vars exist, and every B (zero at the start) has moved. (A's first gradient
    // is s B^T dW = 0: it moves from the second step on.)
    let after = adapters(&g.policy);
    assert_eq!(after.len(), before_a.len());
    for ((n, a), (_, b)) in before_a.iter().zip(&after) {
        if n.contains("lora_B") {
            assert_ne!(a, b, "{n} did not change");
        }
    }
    assert_eq!(base_bits(&g.policy), before_base, "the base changed");
    // The reference is still the base: B = 0 is no longer the policy, but the reference's
    // merged weights are the initial base.
    assert_eq!(base_bits(g.reference().unwrap()), before_base);
    // The checkpoint holds a PEFT adapter that loads back onto the base.
    let ck = dir.join("run/checkpoints/step-000001");
    assert!(ck.join("adapter/adapter_config.json").is_file());
    assert!(!ck.join("hf").exists());
    let mut loaded = policy();
    loaded.load_adapter(&ck.join("adapter")).unwrap();
    assert_eq!(adapters(&loaded), after);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_resumed_lora_run_ends_with_the_same_adapters() {
    let dir = tempdir("resume");
    let data = write_data(&dir);
    let mut a = Grpo::new(
        toy_config(&dir, &data, 4, "straight"),
        policy(),
        tokenizer(),
        Box::new(CountT5),
        false,
    )
    .unwrap();
    for _ in 0..4 {
        a.step(&mut |_| {}).unwrap();
    }
    let mut cfg = toy_config(&dir, &data, 4, "resumed");
    cfg.trainer.save_every = 2;
    let mut b = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), false).unwrap();
    b.step(&mut |_| {}).unwrap();
    b.step(&mut |_| {}).unwrap();
    drop(b);
    let mut c = Grpo::new(cfg, policy(), tokenizer(), Box::new(CountT5), true).unwrap();
    assert_eq!(c.step, 2);
    c.step(&mut |_| {}).unwrap();
    c.step(&mut |_| {}).unwrap();
    assert_eq!(
        adapters(&a.policy),
        adapters(&c.policy),
        "adapters differ after resume"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
