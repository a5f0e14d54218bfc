//! The CUDA path against the CPU path on the tiny random Llama: training-mode logits and
//! log-probs, greedy generation, a LoRA forward and backward, one GRPO loss with its gradient
//! norm and AdamW update, and two whole GRPO steps on the GPU.
//!
//! Built with `--features cuda` only; every test returns early, saying so, where no GPU is
//! visible (bench/gpu.sh runs them on a GPU machine). Tolerances: the GPU runs the composite
//! candle ops and cuBLAS f32 matmuls where the CPU runs medu1's fused ops, so values agree to
//! float rounding (1e-4 absolute on logits of magnitude ~10), not bit for bit.

#![cfg(feature = "cuda")]
#![allow(clippy::print_stdout)] // the tests report what they measured

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use medu1_model::{
    DeviceSpec, InferQuant, LoadOptions, LoraConfig, Mode, Model, SamplingParams, generate,
};
use medu1_rl::Grpo;
use medu1_rl::batch::{Sequence, pack, response_logprobs};
use medu1_rl::optim::{AdamW, AdamWConfig, clip_grad_norm};

mod common;
use common::{
    CountT5, config, grpo_inputs, grpo_loss, tempdir, tokenizer, toy_config, two_sequences,
    weights, write_data,
};

/// GPU 0, or `None` (reported through `medu1_core::testing::skip`, fixture `gpu`) where none
/// is visible; bench/gpu.sh sets `MEDU1_REQUIRE_FIXTURES=gpu`, so there a missing GPU fails.
fn gpu(_test: &str) -> Option<DeviceSpec> {
    match DeviceSpec::Cuda(0).device() {
        Ok(_) => Some(DeviceSpec::Cuda(0)),
        Err(e) => {
            medu1_core::testing::skip("gpu", &format!("no CUDA GPU visible: {e}"));
            None
        }
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_device(&Device::Cpu).unwrap();
    let b = b.to_device(&Device::Cpu).unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn model(opts: LoadOptions, seed: u64) -> Model {
    Model::from_tensors(config(), weights(&config(), seed), opts).unwrap()
}

#[test]
fn training_logits_and_logprobs_match_the_cpu() {
    let Some(gpu) = gpu("training_logits_and_logprobs_match_the_cpu") else {
        return;
    };
    let cpu = model(LoadOptions::train(), 7);
    let cuda = model(LoadOptions::train().on(gpu), 7);
    assert!(cuda.device().is_cuda());
    let s = two_sequences();
    let refs: Vec<&Sequence> = s.iter().collect();
    let (pc, pg) = (
        pack(&refs, &Device::Cpu).unwrap(),
        pack(&refs, cuda.device()).unwrap(),
    );
    let (lc, _) = response_logprobs(&cpu, &pc, 0.8, true).unwrap();
    let (lg, _) = response_logprobs(&cuda, &pg, 0.8, true).unwrap();
    let d = max_diff(&lc, &lg);
    println!("log-probs: max |cpu - cuda| = {d:.2e}");
    assert!(d < 1e-4, "log-probs differ by {d}");
    // The padded path too (one shared prompt above, two different prompts here).
    let ids = Tensor::new(&[[0u32, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]], &Device::Cpu).unwrap();
    let att = Tensor::new(
        &[[0f32, 1., 1., 1., 1., 1.], [1., 1., 1., 1., 1., 1.]],
        &Device::Cpu,
    )
    .unwrap();
    let zc = cpu.forward(&ids, Some(&att)).unwrap();
    let dev = cuda.device().clone();
    let zg = cuda
        .forward(
            &ids.to_device(&dev).unwrap(),
            Some(&att.to_device(&dev).unwrap()),
        )
        .unwrap();
    let d = max_diff(&zc, &zg);
    println!("padded logits: max |cpu - cuda| = {d:.2e}");
    assert!(d < 1e-4, "logits differ by {d}");
}

#[test]
fn greedy_generation_matches_the_cpu() {
    let Some(gpu) = gpu("greedy_generation_matches_the_cpu") else {
        return;
    };
    let cpu = model(LoadOptions::infer_with(InferQuant::F32), 7);
    let cuda = model(LoadOptions::infer_with(InferQuant::F32).on(gpu), 7);
    let tok = tokenizer();
    let params = SamplingParams {
        temperature: 0.0,
        max_new_tokens: 12,
        ..SamplingParams::default()
    };
    let prompts = vec![vec![1u32, 2, 3, 4], vec![9, 3]];
    let gc = generate(&cpu, &tok, &prompts, 2, &params, &mut |_| {}).unwrap();
    let gg = generate(&cuda, &tok, &prompts, 2, &params, &mut |_| {}).unwrap();
    let ids = |g: &medu1_model::Generation| -> Vec<Vec<u32>> {
        g.completions
            .iter()
            .flatten()
            .map(|c| c.token_ids.clone())
            .collect()
    };
    assert_eq!(ids(&gc), ids(&gg));
    assert_eq!(ids(&gg).iter().map(Vec::len).sum::<usize>(), 4 * 12);
    // The sampled log-probs agree too.
    for (a, b) in gc
        .completions
        .iter()
        .flatten()
        .zip(gg.completions.iter().flatten())
    {
        for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
            assert!((x - y).abs() < 1e-4, "log-prob {x} vs {y}");
        }
    }
}

#[test]
fn a_lora_forward_and_its_gradients_match_the_cpu() {
    let Some(gpu) = gpu("a_lora_forward_and_its_gradients_match_the_cpu") else {
        return;
    };
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        ..LoraConfig::default()
    };
    // The CPU base dense as well, so both sides hold the same weights.
    let cpu_opts = LoadOptions {
        quant: InferQuant::F32,
        ..LoadOptions::lora(lora)
    };
    let cpu = model(cpu_opts, 7);
    let cuda = model(LoadOptions::lora(lora).on(gpu), 7);
    assert_eq!(cuda.mode(), Mode::Lora);
    let s = two_sequences();
    let refs: Vec<&Sequence> = s.iter().collect();
    let loss = |m: &Model| {
        let p = pack(&refs, m.device()).unwrap();
        let (lp, _) = response_logprobs(m, &p, 1.0, false).unwrap();
        let loss = (lp * &p.advantages).unwrap().sum_all().unwrap();
        let grads = m.backward(&loss).unwrap();
        (loss.to_scalar::<f32>().unwrap(), grads)
    };
    let (lc, gc) = loss(&cpu);
    let (lg, gg) = loss(&cuda);
    assert!((lc - lg).abs() < 1e-4 * lc.abs().max(1.0), "{lc} vs {lg}");
    let mut checked = 0;
    for ((name, vc), (_, vg)) in cpu.trainable_vars().iter().zip(cuda.trainable_vars()) {
        let (a, b) = (gc.get(vc), gg.get(vg));
        assert_eq!(a.is_some(), b.is_some(), "{name}");
        if let (Some(a), Some(b)) = (a, b) {
            let scale = max_diff(a, &a.zeros_like().unwrap()).max(1e-3);
            let d = max_diff(a, b);
            assert!(d < 1e-4 * scale.max(1.0), "{name}: {d} (scale {scale})");
            checked += 1;
        }
    }
    assert!(checked > 0);
    println!("lora: {checked} adapter gradients agree");
}

#[test]
fn a_grpo_loss_its_gradient_norm_and_the_adamw_step_match_the_cpu() {
    let Some(gpu) = gpu("a_grpo_loss_its_gradient_norm_and_the_adamw_step_match_the_cpu") else {
        return;
    };
    let run = |opts: LoadOptions| -> (f32, f64, HashMap<String, Tensor>) {
        let policy = model(opts, 7);
        let reference = model(opts, 8);
        let (p, old, rf) = grpo_inputs(&policy, &reference);
        let loss = grpo_loss(&policy, &p, &old, &rf);
        let mut grads = policy.backward(&loss).unwrap();
        let vars: Vec<_> = policy
            .trainable_vars()
            .iter()
            .map(|(_, v)| v.clone())
            .collect();
        let norm = clip_grad_norm(&vars, &mut grads, 1.0).unwrap();
        let mut opt = AdamW::new(vars, AdamWConfig::default()).unwrap();
        opt.step(&grads, 1e-3).unwrap();
        opt.step(&grads, 1e-3).unwrap();
        let after = policy
            .trainable_vars()
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().to_device(&Device::Cpu).unwrap()))
            .collect();
        (loss.to_scalar::<f32>().unwrap(), norm, after)
    };
    let (lc, nc, wc) = run(LoadOptions::train());
    let (lg, ng, wg) = run(LoadOptions::train().on(gpu));
    println!("loss cpu {lc:.6} cuda {lg:.6}; grad norm cpu {nc:.6} cuda {ng:.6}");
    assert!(
        (lc - lg).abs() < 1e-5 * lc.abs().max(1.0),
        "loss {lc} vs {lg}"
    );
    assert!(
        (nc - ng).abs() < 1e-4 * nc.max(1.0),
        "grad norm {nc} vs {ng}"
    );
    assert!(nc > 0.0);
    let worst = wc
        .iter()
        .map(|(n, t)| max_diff(t, &wg[n]))
        .fold(0f32, f32::max);
    println!("weights after two AdamW steps: max |cpu - cuda| = {worst:.2e}");
    assert!(worst < 1e-5, "updated weights differ by {worst}");
}

#[test]
fn two_grpo_steps_run_on_the_gpu_and_checkpoint() {
    let Some(gpu) = gpu("two_grpo_steps_run_on_the_gpu_and_checkpoint") else {
        return;
    };
    let dir = tempdir("cuda-grpo");
    let data = write_data(&dir);
    let mut c = toy_config(&dir, &data, 2);
    c.model.device = gpu;
    c.trainer.save_every = 2;
    let policy = model(c.load_options(), 7);
    assert!(policy.device().is_cuda());
    let mut t = Grpo::new(c.clone(), policy, tokenizer(), Box::new(CountT5), false).unwrap();
    for _ in 0..2 {
        let rec = t.step(&mut |_| {}).unwrap();
        println!(
            "cuda step: pg loss {:.4} grad norm {:.4} reward {:.3}",
            rec["actor/pg_loss"], rec["actor/grad_norm"], rec["train/reward/mean"]
        );
        assert!(rec["actor/grad_norm"].is_finite() && rec["actor/grad_norm"] > 0.0);
        assert!(rec["actor/pg_loss"].is_finite());
    }
    assert!(medu1_rl::checkpoint::checkpoint_dir(&dir.join("run"), 2).is_dir());
    // A resume on the GPU reads the checkpoint back onto the device.
    let policy = model(c.load_options(), 7);
    let r = Grpo::new(c, policy, tokenizer(), Box::new(CountT5), true).unwrap();
    assert_eq!(r.step, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
