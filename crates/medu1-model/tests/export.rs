//! GGUF and Hugging Face exports of small random models: the files load back (in medu1; llama.cpp
//! is checked by the CLI's tests) with the source's config, tokenizer and logits, and random
//! models in real shapes are written in a tiny shape here (the big ones are checked from their
//! configs alone, in `random::preset`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use medu1_model::export::{GgufBuilder, GgufTokenizer, export_gguf};
use medu1_model::random::{
    STD, random_tensor, synthetic_tokenizer, write_random_gguf, write_random_hf,
};
use medu1_model::{
    Arch, GgufQuant, InferQuant, LoadOptions, Model, ModelConfig, RopeLayout, Tokenizer,
};

const VOCAB: usize = 320;
const REGULAR: usize = 300;

fn tiny(arch: Arch, hidden: usize, tied: bool) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size: VOCAB,
        hidden_size: hidden,
        intermediate_size: 2 * hidden,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: hidden / 4,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-6,
        max_position_embeddings: 512,
        tie_word_embeddings: tied,
        attention_bias: arch == Arch::Qwen2,
        rope_layout: RopeLayout::HalfSplit,
        bos_token_id: None,
        eos_token_id: None,
    }
}

/// Weights large enough (std 0.4) that logits vary by several units.
fn tensors_of(cfg: &ModelConfig, seed: u64) -> HashMap<String, Tensor> {
    cfg.tensor_shapes()
        .into_iter()
        .map(|(n, s)| {
            let t = random_tensor(&n, &s, seed).unwrap();
            let t = if n.ends_with("norm.weight") {
                t
            } else {
                (t * f64::from(0.4 / STD)).unwrap()
            };
            (n, t)
        })
        .collect()
}

fn model_of(cfg: &ModelConfig, seed: u64) -> Model {
    Model::from_tensors(cfg.clone(), tensors_of(cfg, seed), LoadOptions::train()).unwrap()
}

fn input() -> Tensor {
    Tensor::new(&[[5u32, 17, 256, 301, 44, 299, 3, 3, 120]], &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

fn infer(path: &Path, quant: InferQuant) -> Model {
    medu1_model::load(path, LoadOptions::infer_with(quant))
        .unwrap()
        .0
}

/// A loaded config in the source's terms: GGUF stores the RMS epsilon as f32 (as llama.cpp
/// does), q/k rows in the architecture's layout, and the tokenizer's eos id.
fn comparable(c: &ModelConfig) -> ModelConfig {
    let mut c = c.clone();
    c.rms_norm_eps = format!("{}", c.rms_norm_eps as f32).parse().unwrap();
    c.rope_layout = RopeLayout::HalfSplit;
    c.eos_token_id = None;
    c
}

fn meta(tok: &Tokenizer) -> GgufTokenizer {
    GgufTokenizer::from_tokenizer(tok, VOCAB, None, None).unwrap()
}

#[test]
fn gguf_exports_reload_with_the_source_logits() {
    let tok = synthetic_tokenizer(VOCAB, REGULAR).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Llama's q/k rows are permuted on the way out and back in: a mistake in either direction
    // changes attention and so the logits.
    for (arch, tied) in [(Arch::Llama, false), (Arch::Qwen2, true)] {
        let cfg = tiny(arch, 64, tied);
        let source = model_of(&cfg, 1);
        // The reference of a Q8_0 file is the source quantized to Q8_0 in memory (matrices
        // as loaded, the embedding table rounded as the file stores it): the same blocks, so
        // only the order of additions (rope pairs) may differ.
        let reference = |quant| {
            let opts = LoadOptions::infer_with(quant);
            let mut tensors = tensors_of(&cfg, 1);
            if quant == InferQuant::Q8_0 {
                let e = tensors.get_mut("model.embed_tokens.weight").unwrap();
                *e = QTensor::quantize(e, GgmlDType::Q8_0)
                    .unwrap()
                    .dequantize(&Device::Cpu)
                    .unwrap();
            }
            let m = Model::from_tensors(cfg.clone(), tensors, opts).unwrap();
            m.forward(&input(), None).unwrap()
        };
        for (quant, tol, want) in [
            (GgufQuant::F32, 1e-4, reference(InferQuant::F32)),
            (GgufQuant::F16, 0.1, reference(InferQuant::F32)),
            (GgufQuant::Q8_0, 1e-3, reference(InferQuant::Q8_0)),
        ] {
            let path = dir.path().join(format!("{arch:?}-{}.gguf", quant.as_str()));
            let r = export_gguf(&source, &meta(&tok), quant, "tiny", &path).unwrap();
            assert!(r.f16_fallbacks.is_empty());
            assert_eq!(r.tensors, cfg.tensor_shapes().len());
            let back = infer(&path, InferQuant::Original);
            assert_eq!(back.config().rope_layout, arch.gguf_rope_layout());
            assert_eq!(comparable(back.config()), cfg, "{arch:?}");
            let d = max_diff(&back.forward(&input(), None).unwrap(), &want);
            eprintln!("{arch:?} {}: max |Δlogit| {d:.5}", quant.as_str());
            assert!(d < tol, "{arch:?} {}: max |Δlogit| {d}", quant.as_str());
        }
    }
}

#[test]
fn a_gguf_export_of_a_gguf_is_the_same_model() {
    // Interleaved (GGUF llama) source rows stay as they are on the way out.
    let tok = synthetic_tokenizer(VOCAB, REGULAR).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(Arch::Llama, 64, true);
    let first = dir.path().join("first.gguf");
    export_gguf(&model_of(&cfg, 2), &meta(&tok), GgufQuant::F32, "a", &first).unwrap();
    let loaded = Model::from_gguf(&first, LoadOptions::train()).unwrap();
    let second = dir.path().join("second.gguf");
    export_gguf(&loaded, &meta(&tok), GgufQuant::F32, "a", &second).unwrap();
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
}

#[test]
fn rows_that_are_not_whole_blocks_fall_back_to_f16() {
    let tok = synthetic_tokenizer(VOCAB, REGULAR).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // hidden 48: every matrix reading the hidden state has 48-wide rows (not 32-blocks); the
    // down projection's rows are 96 wide and stay Q8_0.
    let cfg = tiny(Arch::Qwen2, 48, true);
    let source = model_of(&cfg, 3);
    let path = dir.path().join("odd.gguf");
    let r = export_gguf(&source, &meta(&tok), GgufQuant::Q8_0, "odd", &path).unwrap();
    assert!(r.f16_fallbacks.contains(&"token_embd.weight".to_string()));
    assert!(r.f16_fallbacks.contains(&"blk.1.attn_q.weight".to_string()));
    assert!(!r.f16_fallbacks.iter().any(|n| n.contains("ffn_down")));
    let d = max_diff(
        &infer(&path, InferQuant::Original)
            .forward(&input(), None)
            .unwrap(),
        &source.forward(&input(), None).unwrap(),
    );
    eprintln!("q8_0 with f16 fallbacks: max |Δlogit| {d:.5}");
    assert!(d < 0.6, "{d}");
}

#[test]
fn an_incomplete_model_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let tok = synthetic_tokenizer(VOCAB, REGULAR).unwrap();
    let cfg = tiny(Arch::Llama, 64, false);
    let mut b = GgufBuilder::new(&cfg, GgufQuant::Q8_0).unwrap();
    let (n, s) = &cfg.tensor_shapes()[0];
    b.add(n, &random_tensor(n, s, 0).unwrap(), RopeLayout::HalfSplit)
        .unwrap();
    let path = dir.path().join("partial.gguf");
    let err = b.write(&path, "x", &meta(&tok)).unwrap_err();
    assert!(err.to_string().contains("missing weight"), "{err}");
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn the_tokenizer_travels_through_gguf_and_hf() {
    let tok = synthetic_tokenizer(VOCAB, REGULAR).unwrap();
    let cfg = tiny(Arch::Qwen2, 64, true);
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("m.gguf");
    write_random_gguf(&cfg, &tok, 5, GgufQuant::Q8_0, "m", &gguf).unwrap();
    let hf = dir.path().join("hf");
    write_random_hf(&cfg, &tok, 5, &hf).unwrap();
    let text = "<|im_start|>user\nWhat is 12 + 30? Ünïcode 🙂<|im_end|>\n<|im_start|>assistant\n";
    let want = tok.encode(text).unwrap();
    for loaded in [
        Tokenizer::from_gguf_file(&gguf).unwrap(),
        Tokenizer::from_hf_dir(&hf).unwrap(),
    ] {
        assert_eq!(loaded.encode(text).unwrap(), want);
        assert_eq!(loaded.decode(&want, false).unwrap(), text);
        assert_eq!(loaded.eos_id, tok.token_id("<|im_end|>"));
        assert_eq!(loaded.chat_template, tok.chat_template);
        assert_eq!(loaded.vocab_size(), VOCAB);
    }
    // The folder's tokenizer also converts back to the same GGUF metadata.
    let from_hf = GgufTokenizer::from_hf_dir(&hf, VOCAB, None).unwrap();
    let names: Vec<&str> = from_hf.entries().iter().map(|(k, _)| k.as_str()).collect();
    assert!(names.contains(&"tokenizer.ggml.pre"), "{names:?}");
    let pre = &from_hf.entries()[1].1;
    assert_eq!(pre.to_string().unwrap(), "qwen2");
}

#[test]
fn random_models_load_with_their_config_and_parameter_count() {
    let tok = synthetic_tokenizer(VOCAB, REGULAR).unwrap();
    let cfg = tiny(Arch::Qwen2, 64, true);
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("r.gguf");
    write_random_gguf(&cfg, &tok, 9, GgufQuant::F16, "r", &gguf).unwrap();
    let hf = dir.path().join("r-hf");
    write_random_hf(&cfg, &tok, 9, &hf).unwrap();
    let mut logits = Vec::new();
    for path in [&gguf, &hf] {
        let (m, _) = medu1_model::load(path, LoadOptions::train()).unwrap();
        assert_eq!(comparable(m.config()), cfg, "{}", path.display());
        let n: usize = m
            .trainable_vars()
            .iter()
            .map(|(_, v)| v.as_tensor().elem_count())
            .sum();
        assert_eq!(n, cfg.parameter_count());
        logits.push(m.forward(&input(), None).unwrap());
    }
    // The same seed gives the same weights in both formats (f16 against bf16 rounding).
    let d = max_diff(&logits[0], &logits[1]);
    assert!(d < 1e-2, "{d}");
    // Another seed, other weights.
    let other = dir.path().join("other.gguf");
    write_random_gguf(&cfg, &tok, 10, GgufQuant::F16, "r", &other).unwrap();
    let o = infer(&other, InferQuant::F32)
        .forward(&input(), None)
        .unwrap();
    assert!(max_diff(&o, &logits[0]) > 1e-3);
}
