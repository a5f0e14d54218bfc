//! The GRPO loop on a tiny random Llama written by the test: the loss gradient against finite
//! differences, learning on a toy task, and bit-identical resume.

#![allow(clippy::print_stdout)] // the test reports what it measured

use candle_core::{Device, Tensor};
use medu1_model::{LoadOptions, Model};
use medu1_rl::batch::{pack, response_logprobs};
use medu1_rl::{Grpo, LossAgg, RewardInput, RewardOutput, Rewarder};

mod common;
use common::{
    CountT5, config, grpo_inputs, grpo_loss, tempdir, tokenizer, toy_config, two_sequences,
    weights, write_data,
};

fn policy() -> Model {
    Model::from_tensors(config(), weights(&config(), 7), LoadOptions::train()).unwrap()
}

#[test]
fn loss_gradient_matches_finite_differences() {
    let model = policy();
    let reference =
        Model::from_tensors(config(), weights(&config(), 8), LoadOptions::train()).unwrap();
    let (packed, old, ref_lp) = grpo_inputs(&model, &reference);
    let loss_of = |m: &Model| -> Tensor { grpo_loss(m, &packed, &old, &ref_lp) };
    let grads = loss_of(&model).backward().unwrap();
    let mut checked = 0;
    for (name, var) in model.trainable_vars().iter().filter(|(n, _)| {
        n.contains("layers.1.self_attn.q_proj")
            || n.contains("lm_head")
            || n.contains("mlp.down_proj")
    }) {
        let g = grads
            .get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let base = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // The element with the largest gradient: FD in f32 resolves it well.
        let (k, _) = g
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap();
        let h = 1e-2f32;
        let eval = |delta: f32| -> f64 {
            let mut v = base.clone();
            v[k] += delta;
            var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
            loss_of(&model).to_scalar::<f32>().unwrap() as f64
        };
        let fd = (eval(h) - eval(-h)) / (2.0 * h as f64);
        var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap())
            .unwrap();
        let an = g[k] as f64;
        assert!(an.abs() > 1e-4, "{name}: gradient vanished");
        assert!(
            (fd - an).abs() <= 0.05 * an.abs() + 1e-4,
            "{name}[{k}]: fd {fd} vs autograd {an}"
        );
        checked += 1;
    }
    assert!(checked >= 4, "checked {checked} weights");
}

#[test]
fn grpo_raises_the_toy_reward() {
    let dir = tempdir("toy");
    let data = write_data(&dir);
    let cfg = toy_config(&dir, &data, 30);
    let mut t = Grpo::new(cfg, policy(), tokenizer(), Box::new(CountT5), false).unwrap();
    let mut rewards = Vec::new();
    for _ in 0..30 {
        let rec = t.step(&mut |_| {}).unwrap();
        rewards.push(rec["train/reward/mean"]);
        assert!(rec["actor/grad_norm"].is_finite());
    }
    let first: f64 = rewards[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = rewards[25..].iter().sum::<f64>() / 5.0;
    println!("toy reward: first 5 steps {first:.3}, last 5 steps {last:.3}");
    assert!(last > first + 0.25, "GRPO did not learn: {rewards:?}");
    let metrics = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 30);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn var_values(m: &Model) -> Vec<(String, Vec<f32>)> {
    m.trainable_vars()
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        })
        .collect()
}

#[test]
fn four_steps_equal_two_plus_resume_plus_two() {
    let dir = tempdir("resume");
    let data = write_data(&dir);

    let mut straight_cfg = toy_config(&dir, &data, 4);
    straight_cfg.trainer.out_dir = dir.join("straight");
    let mut a = Grpo::new(
        straight_cfg,
        policy(),
        tokenizer(),
        Box::new(CountT5),
        false,
    )
    .unwrap();
    let mut recs_a = Vec::new();
    for _ in 0..4 {
        recs_a.push(a.step(&mut |_| {}).unwrap());
    }

    let mut cfg = toy_config(&dir, &data, 4);
    cfg.trainer.out_dir = dir.join("resumed");
    cfg.trainer.save_every = 2;
    let mut b = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), false).unwrap();
    b.step(&mut |_| {}).unwrap();
    b.step(&mut |_| {}).unwrap();
    drop(b);
    // A fresh process would start from the initial weights; resume must restore everything.
    let mut c = Grpo::new(cfg, policy(), tokenizer(), Box::new(CountT5), true).unwrap();
    assert_eq!(c.step, 2);
    let mut recs_c = Vec::new();
    for _ in 0..2 {
        recs_c.push(c.step(&mut |_| {}).unwrap());
    }
    assert_eq!(
        var_values(&a.policy),
        var_values(&c.policy),
        "weights differ after resume"
    );
    for (ra, rc) in recs_a[2..].iter().zip(&recs_c) {
        assert_eq!(ra["train/reward/mean"], rc["train/reward/mean"]);
        assert_eq!(ra["actor/loss"], rc["actor/loss"]);
    }
    let lines = std::fs::read_to_string(dir.join("resumed/metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Log-probs of a fixed batch under `m`, as raw values.
fn fixed_batch_logprobs(m: &Model) -> Vec<Vec<f32>> {
    let seqs = two_sequences();
    let packed = pack(&seqs.iter().collect::<Vec<_>>(), &Device::Cpu).unwrap();
    response_logprobs(m, &packed, 1.0, false)
        .unwrap()
        .0
        .to_vec2::<f32>()
        .unwrap()
}

/// The reference of the KL term once shared most of its storage with the policy (candle's
/// `detach` shares it), so the optimizer's in-place updates and a resumed checkpoint moved it.
#[test]
fn reference_stays_frozen() {
    let dir = tempdir("frozen");
    let data = write_data(&dir);
    let mut cfg = toy_config(&dir, &data, 2);
    cfg.trainer.save_every = 1;
    assert!(cfg.algorithm.use_kl_loss);
    let initial = var_values(&policy());

    let mut t = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), false).unwrap();
    let before = fixed_batch_logprobs(t.reference().unwrap());
    t.step(&mut |_| {}).unwrap();
    assert_ne!(var_values(&t.policy), initial, "the policy did not move");
    assert_eq!(
        fixed_batch_logprobs(t.reference().unwrap()),
        before,
        "the reference moved with the optimizer step"
    );
    drop(t);

    let c = Grpo::new(cfg, policy(), tokenizer(), Box::new(CountT5), true).unwrap();
    assert_eq!(c.step, 1);
    assert_ne!(
        var_values(&c.policy),
        initial,
        "the checkpoint was not restored"
    );
    assert_eq!(
        fixed_batch_logprobs(c.reference().unwrap()),
        before,
        "the reference became the resumed checkpoint's policy"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// medu1 once averaged per-micro-batch token-means, so cutting the same mini-batch into
/// micro-batches of other sizes changed the loss and its gradient.
#[test]
fn micro_batch_size_does_not_change_the_update() {
    let dir = tempdir("micro");
    let data = write_data(&dir);
    let run = |micro: usize, agg: LossAgg| {
        let mut cfg = toy_config(&dir, &data, 1);
        cfg.trainer.out_dir = dir.join(format!("micro-{micro}-{agg:?}"));
        cfg.optim.micro_batch_size = micro;
        cfg.algorithm.loss_agg = agg;
        cfg.algorithm.entropy_coef = 0.01;
        let mut t = Grpo::new(cfg, policy(), tokenizer(), Box::new(CountT5), false).unwrap();
        t.step(&mut |_| {}).unwrap()
    };
    for agg in [
        LossAgg::TokenMean,
        LossAgg::SeqMeanTokenMean,
        LossAgg::SeqMeanTokenSumNorm,
    ] {
        // 16 responses: one micro-batch, or 3 + 3 + 3 + 3 + 3 + 1.
        let whole = run(16, agg);
        let cut = run(3, agg);
        assert_eq!(whole["train/reward/mean"], cut["train/reward/mean"]);
        for k in ["actor/loss", "actor/pg_loss", "actor/kl", "actor/grad_norm"] {
            let (a, b) = (whole[k], cut[k]);
            assert!(
                (a - b).abs() <= 1e-5 * a.abs() + 1e-6,
                "{agg:?} {k}: one micro-batch {a}, micro-batches of 3 {b}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A reward that is NaN for every response of the first prompt.
#[derive(Debug)]
struct NanReward;
impl Rewarder for NanReward {
    fn reward(&self, x: &RewardInput<'_>) -> RewardOutput {
        let mut out = CountT5.reward(x);
        out.reward = f64::NAN;
        out
    }
}

/// A non-finite gradient norm once went through clipping (which leaves it as is) into AdamW and
/// turned every weight into NaN, as the reference fork does.
#[test]
fn non_finite_gradient_skips_the_step() {
    let dir = tempdir("nan");
    let data = write_data(&dir);
    let cfg = toy_config(&dir, &data, 1);
    let initial = var_values(&policy());
    let mut t = Grpo::new(cfg, policy(), tokenizer(), Box::new(NanReward), false).unwrap();
    let rec = t.step(&mut |_| {}).unwrap();
    assert_eq!(var_values(&t.policy), initial, "the weights changed");
    assert_eq!(t.opt.step, 0, "the optimizer counted a skipped step");
    assert_eq!(rec["actor/skipped_updates"], 1.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint whose metrics row never reached metrics.jsonl (killed in between) once lost that
/// row for good on resume.
#[test]
fn resume_restores_the_metrics_row_of_the_checkpoint_step() {
    let dir = tempdir("row");
    let data = write_data(&dir);
    let mut cfg = toy_config(&dir, &data, 3);
    cfg.trainer.save_every = 1;
    let mut t = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), false).unwrap();
    t.step(&mut |_| {}).unwrap();
    let second = t.step(&mut |_| {}).unwrap();
    drop(t);
    // As if killed right after checkpoint 2 was renamed into place.
    let log = cfg.trainer.out_dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let first_line = text.lines().next().unwrap().to_string();
    std::fs::write(&log, format!("{first_line}\n")).unwrap();

    let mut c = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), true).unwrap();
    assert_eq!(c.step, 2);
    c.step(&mut |_| {}).unwrap();
    let rows = medu1_rl::metrics::read_metrics(&cfg.trainer.out_dir).unwrap();
    let steps: Vec<f64> = rows.iter().map(|r| r["step"]).collect();
    assert_eq!(steps, [1.0, 2.0, 3.0]);
    assert_eq!(rows[1]["train/reward/mean"], second["train/reward/mean"]);
    assert_eq!(rows[1]["actor/loss"], second["actor/loss"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Hugging Face export in each checkpoint once came from a CLI callback, so a library user
/// with `trainer.export_hf = true` got no `hf/` folder; the trainer now writes it itself.
#[test]
fn checkpoints_carry_a_loadable_hf_export_without_a_cli() {
    let dir = tempdir("hf");
    let data = write_data(&dir);
    let mut cfg = toy_config(&dir, &data, 1);
    cfg.trainer.save_every = 1;
    cfg.trainer.export_hf = true;
    let mut t = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), false).unwrap();
    t.step(&mut |_| {}).unwrap();
    let hf = cfg.trainer.out_dir.join("checkpoints/step-000001/hf");
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        assert!(hf.join(f).is_file(), "{f} missing in {}", hf.display());
    }
    let (loaded, tok) = medu1_model::load(&hf, LoadOptions::train()).unwrap();
    assert_eq!(var_values(&loaded), var_values(&t.policy));
    assert_eq!(tok.vocab_size(), t.tokenizer.vocab_size());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A new run into a folder holding another run once wiped its metrics and kept the old run's
/// later checkpoints, which a later `--resume` then loaded.
#[test]
fn a_new_run_into_a_used_folder_is_refused_unless_overwriting() {
    use medu1_rl::run::Start;
    let dir = tempdir("used");
    let data = write_data(&dir);
    let mut cfg = toy_config(&dir, &data, 2);
    cfg.trainer.save_every = 1;
    let mut t = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), false).unwrap();
    t.step(&mut |_| {}).unwrap();
    t.step(&mut |_| {}).unwrap();
    drop(t);
    let log = cfg.trainer.out_dir.join("metrics.jsonl");
    let before = std::fs::read_to_string(&log).unwrap();

    let e = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), false).unwrap_err();
    assert!(e.to_string().contains("--overwrite"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        before,
        "metrics touched"
    );
    assert!(cfg.trainer.out_dir.join("checkpoints/step-000002").is_dir());

    let t = Grpo::new(
        cfg.clone(),
        policy(),
        tokenizer(),
        Box::new(CountT5),
        Start::Overwrite,
    )
    .unwrap();
    assert_eq!(t.step, 0);
    assert!(!cfg.trainer.out_dir.join("checkpoints").exists());
    assert!(std::fs::read_to_string(&log).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--resume` once skipped a newest checkpoint without `state.json` (restarting at step 0 and
/// emptying metrics.jsonl when it was the only one), and accepted NaN weights.
#[test]
fn resume_refuses_damaged_checkpoints_and_touches_nothing() {
    let dir = tempdir("damaged");
    let data = write_data(&dir);
    let mut cfg = toy_config(&dir, &data, 2);
    cfg.trainer.save_every = 1;
    let mut t = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), false).unwrap();
    t.step(&mut |_| {}).unwrap();
    drop(t);
    let run = cfg.trainer.out_dir.clone();
    let ck = run.join("checkpoints/step-000001");
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();

    // No state.json.
    let state = std::fs::read(ck.join("state.json")).unwrap();
    std::fs::remove_file(ck.join("state.json")).unwrap();
    let e = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), true).unwrap_err();
    assert!(e.to_string().contains("state.json"), "{e}");
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(),
        log
    );
    std::fs::write(ck.join("state.json"), state).unwrap();

    // A NaN weight.
    let p = ck.join("policy.safetensors");
    let mut tensors = candle_core::safetensors::load(&p, &Device::Cpu).unwrap();
    let name = "model.layers.0.mlp.down_proj.weight".to_string();
    let w = tensors[&name]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let mut bad = w.clone();
    bad[3] = f32::NAN;
    let shape = tensors[&name].shape().clone();
    tensors.insert(
        name.clone(),
        Tensor::from_vec(bad, shape, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, &p).unwrap();
    let e = Grpo::new(cfg.clone(), policy(), tokenizer(), Box::new(CountT5), true).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&name) && msg.contains("non-finite"), "{msg}");
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(),
        log
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint write killed halfway once left its `.tmp-step-*` folder (the size of the model)
/// behind forever.
#[test]
fn stale_checkpoint_temp_folders_are_removed_at_start() {
    let dir = tempdir("stale");
    let data = write_data(&dir);
    let cfg = toy_config(&dir, &data, 1);
    // PID 0 is never a writer's: as if the writer was killed.
    let stale = cfg.trainer.out_dir.join("checkpoints/.tmp-step-000003-0");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("policy.safetensors"), b"half").unwrap();
    let _t = Grpo::new(cfg, policy(), tokenizer(), Box::new(CountT5), true).unwrap();
    assert!(!stale.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
