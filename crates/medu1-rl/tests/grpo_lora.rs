//! GRPO with `[lora]` on a tiny random Llama whose matrices are Q8_0: a step changes the
//! adapters and nothing else, the reference stays the base, checkpoints carry a PEFT adapter,
//! and a resumed run ends with the same adapters bit for bit.

#![allow(clippy::print_stdout)] // the tests report what they measured

use std::path::Path;

use medu1_model::{LoadOptions, LoraConfig, Mode, Model};
use medu1_rl::config::DataFile;
use medu1_rl::{Grpo, TrainConfig};

mod common;
use common::{CountT5, config, tempdir, tokenizer, weights, write_data};

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
    Model::from_tensors(config(), weights(&config(), 7), LoadOptions::lora(lora())).unwrap()
}

/// The shared toy task (`common::toy_config`) with `[lora]`, groups of 4 and the KL loss on.
fn toy_config(dir: &Path, data: &Path, steps: usize, out: &str) -> TrainConfig {
    let mut c = common::toy_config(dir, data, steps);
    c.rollout.n = 4;
    c.optim.micro_batch_size = 4;
    c.algorithm.use_kl_loss = true;
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

/// Regression: the reference of a LoRA run was the base without adapters, so after a LoRA
/// warm-up (whose adapters the policy carries into GRPO) the KL term pulled towards the model
/// before the warm-up: the demo's first GRPO step reported a KL of 0.67 where full fine-tuning
/// starts at 0. The reference is the policy GRPO starts from, adapters included.
#[test]
fn a_lora_reference_is_the_policy_grpo_starts_from_not_the_base() {
    let dir = tempdir("reference");
    let data = write_data(&dir);
    // Adapters that have trained (every B nonzero after two steps), as after a warm-up.
    let mut warm = Grpo::new(
        toy_config(&dir, &data, 2, "warm"),
        policy(),
        tokenizer(),
        Box::new(CountT5),
        false,
    )
    .unwrap();
    warm.step(&mut |_| {}).unwrap();
    warm.step(&mut |_| {}).unwrap();
    let start = warm.policy;
    let input =
        candle_core::Tensor::new(&[[1u32, 5, 9, 3, 7, 2]], &candle_core::Device::Cpu).unwrap();
    let logits = |m: &Model| {
        let t = m.forward(&input, None).unwrap();
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let (start_logits, base_logits) = (logits(&start), logits(&start.without_adapters()));
    assert_ne!(
        start_logits, base_logits,
        "the adapters should have trained"
    );
    let start_adapters = adapters(&start);
    let mut g = Grpo::new(
        toy_config(&dir, &data, 1, "run"),
        start,
        tokenizer(),
        Box::new(CountT5),
        false,
    )
    .unwrap();
    let reference = g.reference().unwrap().clone();
    assert!(reference.trainable_vars().is_empty());
    assert_eq!(
        logits(&reference),
        start_logits,
        "reference is not the starting policy"
    );
    // An update moves the policy but not the reference, whose adapters are copies.
    g.step(&mut |_| {}).unwrap();
    assert_ne!(adapters(&g.policy), start_adapters);
    assert_eq!(
        logits(g.reference().unwrap()),
        start_logits,
        "the reference moved"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `optim.activation_checkpointing` recomputes each layer in the backward pass and changes
/// nothing else: the same step gives the same loss and gradient norm.
#[test]
fn activation_checkpointing_leaves_a_lora_step_unchanged() {
    let dir = tempdir("recompute");
    let data = write_data(&dir);
    let mut records = Vec::new();
    for (on, out) in [(false, "plain"), (true, "checkpointed")] {
        let mut cfg = toy_config(&dir, &data, 1, out);
        cfg.optim.activation_checkpointing = on;
        let mut g = Grpo::new(cfg, policy(), tokenizer(), Box::new(CountT5), false).unwrap();
        assert_eq!(g.policy.activation_checkpointing(), on);
        records.push(g.step(&mut |_| {}).unwrap());
    }
    for key in ["actor/grad_norm", "actor/pg_loss", "actor/kl"] {
        let (a, b) = (records[0][key], records[1][key]);
        assert!(a != 0.0 || key == "actor/kl", "{key} is zero");
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1e-9),
            "{key}: {a} vs {b}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The warm-up applied no adapter dropout at all (its config said so); now its training passes
/// draw masks from the seed, the step and the micro-batch, so a rerun draws the same ones.
#[test]
fn the_lora_warm_up_applies_dropout_and_redraws_the_same_masks() {
    let dir = tempdir("lora-sft-dropout");
    let data = write_data(&dir);
    let run = |dropout: f64, out: &str| -> f64 {
        let mut c = medu1_rl::SftConfig {
            train: vec![DataFile {
                path: data.clone(),
                weight: 1.0,
                limit: None,
                skip: 0,
            }],
            steps: 1,
            batch_size: 4,
            out_dir: dir.join(out),
            export_hf: false,
            lora: Some(LoraConfig { dropout, ..lora() }),
            ..Default::default()
        };
        c.data.budget = "none".into();
        c.data.max_prompt_tokens = 2048;
        c.optim.micro_batch_size = 2;

        let policy =
            Model::from_tensors(config(), weights(&config(), 7), c.load_options()).unwrap();
        let mut sft = medu1_rl::Sft::new(c, policy, tokenizer(), false).unwrap();
        sft.step().unwrap()["sft/grad_norm"]
    };
    let (plain, a, b) = (run(0.0, "plain"), run(0.5, "a"), run(0.5, "b"));
    println!("warm-up grad norm: no dropout {plain:.6}, dropout 0.5 {a:.6} and {b:.6}");
    assert!(plain > 0.0 && a > 0.0);
    assert_ne!(plain.to_bits(), a.to_bits(), "dropout changed nothing");
    assert_eq!(a.to_bits(), b.to_bits(), "the masks were not redrawn alike");
    std::fs::remove_dir_all(&dir).unwrap();
}
