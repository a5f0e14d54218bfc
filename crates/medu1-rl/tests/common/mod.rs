//! The tiny random Llama, tokenizer, toy data and toy reward that the GRPO tests share.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use medu1_model::{Arch, ModelConfig, RopeLayout, Tokenizer};
use medu1_rl::batch::{Packed, Sequence, response_logprobs};
use medu1_rl::{
    ClipRange, KlEstimator, LossAgg, RewardInput, RewardOutput, Rewarder, kl_penalty, policy_loss,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(crate) const VOCAB: usize = 16;

pub(crate) fn config() -> ModelConfig {
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

pub(crate) fn weights(cfg: &ModelConfig, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (d, i, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
    let mut w = HashMap::new();
    let mut put = |name: String, shape: &[usize], scale: f32, offset: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| offset + scale * (rng.random::<f32>() * 2.0 - 1.0))
            .collect();
        w.insert(name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap());
    };
    put("model.embed_tokens.weight".into(), &[VOCAB, d], 1.0, 0.0);
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        put(format!("{p}.input_layernorm.weight"), &[d], 0.1, 1.0);
        put(
            format!("{p}.post_attention_layernorm.weight"),
            &[d],
            0.1,
            1.0,
        );
        put(
            format!("{p}.self_attn.q_proj.weight"),
            &[nh * hd, d],
            0.3,
            0.0,
        );
        put(
            format!("{p}.self_attn.k_proj.weight"),
            &[nkv * hd, d],
            0.3,
            0.0,
        );
        put(
            format!("{p}.self_attn.v_proj.weight"),
            &[nkv * hd, d],
            0.3,
            0.0,
        );
        put(
            format!("{p}.self_attn.o_proj.weight"),
            &[d, nh * hd],
            0.3,
            0.0,
        );
        put(format!("{p}.mlp.gate_proj.weight"), &[i, d], 0.3, 0.0);
        put(format!("{p}.mlp.up_proj.weight"), &[i, d], 0.3, 0.0);
        put(format!("{p}.mlp.down_proj.weight"), &[d, i], 0.3, 0.0);
    }
    put("model.norm.weight".into(), &[d], 0.1, 1.0);
    // A small head keeps the initial distribution close to uniform, so the toy task starts low.
    put("lm_head.weight".into(), &[VOCAB, d], 0.05, 0.0);
    w
}

pub(crate) fn tokenizer() -> Tokenizer {
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

pub(crate) fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("medu1-rl-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A few short multiple-choice items in Med-U1's processed JSON format.
pub(crate) fn write_data(dir: &Path) -> PathBuf {
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
pub(crate) struct CountT5;
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

/// Two sequences of different prompt and response lengths, advantages of both signs.
pub(crate) fn two_sequences() -> Vec<Sequence> {
    vec![
        Sequence {
            prompt: vec![1, 2, 3, 4],
            response: vec![5, 6, 7],
            advantage: 1.3,
        },
        Sequence {
            prompt: vec![9, 3],
            response: vec![2, 11, 5, 8],
            advantage: -0.7,
        },
    ]
}

/// [`two_sequences`] packed on `policy`'s device, with `policy`'s (the old) and `reference`'s
/// log-probs at temperature 0.8, detached: what [`grpo_loss`] takes besides the model.
pub(crate) fn grpo_inputs(
    policy: &medu1_model::Model,
    reference: &medu1_model::Model,
) -> (Packed, Tensor, Tensor) {
    let seqs = two_sequences();
    let packed = medu1_rl::batch::pack(&seqs.iter().collect::<Vec<_>>(), policy.device()).unwrap();
    let lp = |m: &medu1_model::Model| {
        response_logprobs(m, &packed, 0.8, false)
            .unwrap()
            .0
            .detach()
    };
    let (old, ref_lp) = (lp(policy), lp(reference));
    (packed, old, ref_lp)
}

/// The GRPO loss of `m` on `packed` at temperature 0.8: the clipped policy term against `old`
/// plus 0.5 x the k3 KL to `ref_lp`, both token-means.
pub(crate) fn grpo_loss(
    m: &medu1_model::Model,
    packed: &Packed,
    old: &Tensor,
    ref_lp: &Tensor,
) -> Tensor {
    let (lp, _) = response_logprobs(m, packed, 0.8, false).unwrap();
    let pl = policy_loss(
        old,
        &lp,
        &packed.advantages,
        &packed.mask,
        ClipRange::default(),
        LossAgg::TokenMean,
        8,
    )
    .unwrap();
    let kl = medu1_rl::loss::aggregate(
        &kl_penalty(&lp, ref_lp, KlEstimator::K3).unwrap(),
        &packed.mask,
        LossAgg::TokenMean,
        8,
    )
    .unwrap();
    (pl.loss + (kl * 0.5).unwrap()).unwrap()
}

/// GRPO on the toy task: 2 prompts x 8 samples of up to 6 tokens, lr 0.02 from the first step,
/// no entropy bonus, f32 rollouts, `steps` steps into `dir/run`.
pub(crate) fn toy_config(dir: &Path, data: &Path, steps: usize) -> medu1_rl::TrainConfig {
    let mut c = medu1_rl::TrainConfig::default();
    c.data.train = vec![medu1_rl::config::DataFile {
        path: data.to_path_buf(),
        weight: 1.0,
        limit: None,
        skip: 0,
    }];
    c.data.budget = "none".into();
    c.data.max_prompt_tokens = 2048;
    c.model.rollout_quant = "f32".into();
    c.rollout.prompts_per_step = 2;
    c.rollout.n = 8;
    c.rollout.temperature = 1.0;
    c.rollout.max_response_tokens = 6;
    c.optim.lr = 0.02;
    c.optim.micro_batch_size = 8;
    c.optim.schedule = medu1_rl::LrSchedule::ConstantWithWarmup {
        warmup_steps: 0,
        skip_zero_first_step: true,
    };
    c.algorithm.entropy_coef = 0.0;
    c.trainer.steps = steps;
    c.trainer.out_dir = dir.join("run");
    c.trainer.export_hf = false;
    c
}
