//! `medu1 train` killed at chosen points (the `MEDU1_FAULT_ABORT` hook aborts the process as
//! `kill -9` would: no destructor, no flush), then resumed: the final weights must be
//! bit-identical to an uninterrupted run's and `metrics.jsonl` must log every step exactly once.
#![allow(clippy::print_stdout)] // the test reports what it ran

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{Device, Tensor};
use medu1_model::{Arch, LoadOptions, Model, ModelConfig, RopeLayout};

const VOCAB: usize = 16;
const STEPS: u64 = 4;

/// A tiny random Llama with a word-level tokenizer, as a Hugging Face folder.
fn write_tiny_model(dir: &Path) {
    let cfg = ModelConfig {
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
        max_position_embeddings: 4096,
        tie_word_embeddings: false,
        attention_bias: false,
        rope_layout: RopeLayout::HalfSplit,
        bos_token_id: None,
        eos_token_id: None,
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let (d, i) = (cfg.hidden_size, cfg.intermediate_size);
    let mut w: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, shape: &[usize], scale: f32, offset: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| offset + scale * next()).collect();
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
        put(format!("{p}.self_attn.q_proj.weight"), &[32, d], 0.3, 0.0);
        put(format!("{p}.self_attn.k_proj.weight"), &[16, d], 0.3, 0.0);
        put(format!("{p}.self_attn.v_proj.weight"), &[16, d], 0.3, 0.0);
        put(format!("{p}.self_attn.o_proj.weight"), &[d, 32], 0.3, 0.0);
        put(format!("{p}.mlp.gate_proj.weight"), &[i, d], 0.3, 0.0);
        put(format!("{p}.mlp.up_proj.weight"), &[i, d], 0.3, 0.0);
        put(format!("{p}.mlp.down_proj.weight"), &[d, i], 0.3, 0.0);
    }
    put("model.norm.weight".into(), &[d], 0.1, 1.0);
    put("lm_head.weight".into(), &[VOCAB, d], 0.5, 0.0);
    let model = Model::from_tensors(cfg, w, LoadOptions::train()).unwrap();
    model.save_hf(dir).unwrap();

    use tokenizers::models::wordlevel::WordLevel;
    let vocab: HashMap<String, u32> = (0..VOCAB as u32).map(|i| (format!("t{i}"), i)).collect();
    let wl = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("t0".into())
        .build()
        .unwrap();
    let mut tok = tokenizers::Tokenizer::new(wl);
    tok.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
    tok.save(dir.join("tokenizer.json"), false).unwrap();
}

fn write_config(dir: &Path, model: &Path) -> PathBuf {
    let items: Vec<serde_json::Value> = (0..6)
        .map(|i| {
            serde_json::json!({
                "Source": "MedIQ", "id": format!("{i}"),
                "problem": format!("q{i}"), "problem_type": "multiple choice",
                "options": "{'A': 'x', 'B': 'y'}", "answer": "A", "solution": "x"
            })
        })
        .collect();
    let data = dir.join("toy.json");
    std::fs::write(&data, serde_json::to_string(&items).unwrap()).unwrap();
    let toml = format!(
        r#"
[model]
path = "{model}"
rollout_quant = "f32"

[data]
budget = "none"
max_prompt_tokens = 4096
chat_template = "chatml"
train = [{{ path = "{data}" }}]

[rollout]
prompts_per_step = 1
n = 4
temperature = 1.0
max_response_tokens = 6

[algorithm]
entropy_coef = 0.01

[optim]
lr = 0.01
micro_batch_size = 3
schedule = {{ kind = "constant-with-warmup", warmup_steps = 0, skip_zero_first_step = true }}

[trainer]
steps = {STEPS}
save_every = 1
keep_last = 10
val_before_train = false
export_hf = true
"#,
        model = model.display(),
        data = data.display(),
    );
    let p = dir.join("train.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

fn train(config: &Path, out: &Path, resume: bool, fault: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medu1"));
    cmd.args(["train", "--config"])
        .arg(config)
        .arg("--set")
        .arg(format!("trainer.out_dir=\"{}\"", out.display()))
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("MEDU1_FAULT_ABORT");
    if resume {
        cmd.arg("--resume");
    }
    if let Some(f) = fault {
        cmd.env("MEDU1_FAULT_ABORT", f);
    }
    cmd.output().expect("run medu1 train")
}

fn logged_steps(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_f64()
                .unwrap() as u64
        })
        .collect()
}

fn final_weights(run: &Path) -> Vec<u8> {
    std::fs::read(run.join(format!("checkpoints/step-{STEPS:06}/policy.safetensors"))).unwrap()
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    write_tiny_model(&model);
    let config = write_config(dir.path(), &model);

    let straight = dir.path().join("straight");
    let out = train(&config, &straight, false, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(logged_steps(&straight), (1..=STEPS).collect::<Vec<_>>());
    let expected = final_weights(&straight);

    for fault in [
        "rollout:2",
        "update:3",
        "checkpoint-export:2",
        "checkpoint written:2",
        "checkpoint written:3",
    ] {
        let run = dir.path().join(fault.replace([':', ' '], "-"));
        let killed = train(&config, &run, false, Some(fault));
        assert!(!killed.status.success(), "{fault}: the fault did not fire");
        let stderr = String::from_utf8_lossy(&killed.stderr);
        assert!(stderr.contains("MEDU1_FAULT_ABORT"), "{fault}: {stderr}");
        let resumed = train(&config, &run, true, None);
        assert!(
            resumed.status.success(),
            "{fault}: resume failed: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        assert_eq!(
            logged_steps(&run),
            (1..=STEPS).collect::<Vec<_>>(),
            "{fault}: metrics.jsonl"
        );
        assert!(
            final_weights(&run) == expected,
            "{fault}: final weights differ"
        );
        let leftovers: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{fault}: left {leftovers:?}");
        println!("{fault}: killed, resumed, identical weights, {STEPS} metrics rows");
    }

    // A new run into a used folder is refused and leaves it as it was.
    let before = std::fs::read(straight.join("metrics.jsonl")).unwrap();
    let again = train(&config, &straight, false, None);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("--overwrite"), "{stderr}");
    assert_eq!(
        std::fs::read(straight.join("metrics.jsonl")).unwrap(),
        before
    );
}

/// `MEDU1_LOG=debug medu1 train` shows the run's events on stderr: start, every step, validation,
/// each checkpoint, the end (issue 19: --log / MEDU1_LOG had nothing to show).
#[test]
fn debug_log_shows_the_run_events() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    write_tiny_model(&model);
    let config = write_config(dir.path(), &model);
    let out = dir.path().join("logged");
    let toy = dir.path().join("toy.json");
    let run = Command::new(env!("CARGO_BIN_EXE_medu1"))
        .args(["train", "--config"])
        .arg(&config)
        .arg("--set")
        .arg(format!("trainer.out_dir=\"{}\"", out.display()))
        .arg("--set")
        .arg(format!("data.val=[{{ path = \"{}\" }}]", toy.display()))
        .args(["--set", "trainer.val_every=2", "--set", "trainer.steps=2"])
        .env("RAYON_NUM_THREADS", "1")
        .env("MEDU1_LOG", "medu1=debug")
        .env_remove("MEDU1_FAULT_ABORT")
        .output()
        .expect("run medu1 train");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    for event in [
        "train: run start",
        "train: phase",
        "train: step done",
        "validation done",
        "train: checkpoint saved",
        "train: run end",
    ] {
        assert!(stderr.contains(event), "no `{event}` event in:\n{stderr}");
    }
    let shown = stderr.lines().filter(|l| l.contains("medu1::")).count();
    println!("MEDU1_LOG=medu1=debug: {shown} event lines");
}
