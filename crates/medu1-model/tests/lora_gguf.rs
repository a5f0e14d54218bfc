//! LoRA over the embedded SmolLM2-135M-Instruct GGUF (Q4_1): the base keeps its blocks (no
//! dense matrix anywhere), zero adapters give the inference model's logits bit for bit, and
//! (`--ignored`) the time of one training pass against full fine-tuning. Skips when the file is
//! absent; CI runs `medu1 setup` first.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use medu1_model::{LoadOptions, LoraConfig, Model};

fn model_path() -> Option<PathBuf> {
    let p = match std::env::var_os("MEDU1_MODEL") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("MEDU1_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("medu1")))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/medu1")))?
            .join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"),
    };
    if p.exists() {
        Some(p)
    } else {
        medu1_core::testing::skip(
            "model",
            &format!("embedded model not found at {}", p.display()),
        );
        None
    }
}

/// `[rows, len]` token ids, varied and inside the vocabulary.
fn batch(rows: usize, len: usize) -> Tensor {
    let ids: Vec<u32> = (0..rows * len)
        .map(|i| (i as u32 * 7919 + 13) % 49_000)
        .collect();
    Tensor::from_vec(ids, (rows, len), &Device::Cpu).unwrap()
}

#[test]
fn the_embedded_model_trains_adapters_over_its_q4_1_blocks() {
    let Some(path) = model_path() else { return };
    let lora = Model::from_gguf(&path, LoadOptions::lora(LoraConfig::default())).unwrap();
    let m = lora.memory();
    let adapters: usize = lora
        .trainable_vars()
        .iter()
        .map(|(_, v)| 4 * v.elem_count())
        .sum();
    eprintln!(
        "LoRA r=16, all seven projections: {m:?}, {} MB in all",
        m.total() / 1_000_000
    );
    assert_eq!(m.dense_matrices, 0, "{m:?}");
    // The tied table is read from the packed head, as in inference.
    assert_eq!(m.embedding, 0, "{m:?}");
    assert_eq!(m.adapters, adapters);
    // Zero adapters: the inference model's bits (24 tokens: the full-sequence attention path).
    let infer = Model::from_gguf(&path, LoadOptions::infer()).unwrap();
    let input = batch(1, 24);
    let want = infer.forward(&input, None).unwrap().flatten_all().unwrap();
    let got = lora.forward(&input, None).unwrap().flatten_all().unwrap();
    assert_eq!(
        got.to_vec1::<f32>().unwrap(),
        want.to_vec1::<f32>().unwrap()
    );
    let full = Model::from_gguf(&path, LoadOptions::train()).unwrap();
    let f = full.memory();
    let trainable: usize = full
        .trainable_vars()
        .iter()
        .map(|(_, v)| 4 * v.elem_count())
        .sum();
    eprintln!(
        "full fine-tuning: {f:?}, {} MB in all; trainable {} MB (+ 2x for AdamW) vs LoRA {} MB",
        f.total() / 1_000_000,
        trainable / 1_000_000,
        adapters / 1_000_000
    );
    assert!(m.total() * 3 < f.total());
}

/// Forward and backward of token log-probs on 8 sequences of 128 tokens: LoRA against full
/// fine-tuning. A measurement, not a check: `cargo test --release --test lora_gguf -- --ignored`.
#[test]
#[ignore]
fn time_one_training_pass_lora_vs_full() {
    let Some(path) = model_path() else { return };
    let input = batch(8, 128);
    for (name, opts) in [
        ("lora", LoadOptions::lora(LoraConfig::default())),
        ("full", LoadOptions::train()),
    ] {
        let model = Model::from_gguf(&path, opts).unwrap();
        for round in 0..2 {
            let t0 = Instant::now();
            let lp = model.token_logprobs(&input, None, 1.0).unwrap();
            let loss = lp.to_dtype(DType::F32).unwrap().sum_all().unwrap();
            let t1 = Instant::now();
            let grads = loss.backward().unwrap();
            let t2 = Instant::now();
            assert!(grads.get(&model.trainable_vars()[0].1).is_some());
            eprintln!(
                "{name} round {round}: forward {:.2}s, backward {:.2}s",
                (t1 - t0).as_secs_f64(),
                (t2 - t1).as_secs_f64()
            );
        }
    }
}
