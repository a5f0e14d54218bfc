//! Tests against the embedded SmolLM2-135M-Instruct GGUF. They skip (with a message) when the
//! file is absent; CI runs `medu1 setup` first.

use std::path::PathBuf;

use candle_core::{D, Device, Tensor};
use medu1_model::{InferQuant, LoadOptions, Mode, Model, SamplingParams, Tokenizer, generate};

fn model_path() -> Option<PathBuf> {
    let p = match std::env::var_os("MEDU1_MODEL") {
        Some(p) => PathBuf::from(p),
        None => {
            let base = std::env::var_os("MEDU1_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("medu1"))
                })
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/medu1"))
                })?;
            base.join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        }
    };
    if p.exists() {
        Some(p)
    } else {
        medu1_core::testing::skip(
            "model",
            &format!(
                "embedded model not found at {} (run `medu1 setup`)",
                p.display()
            ),
        );
        None
    }
}

const CHAT: &str = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France? Answer in 12 words.<|im_end|>\n<|im_start|>assistant\n";

#[test]
fn tokenizer_ids_and_round_trip() {
    let Some(path) = model_path() else { return };
    let tok = Tokenizer::from_gguf_file(&path).unwrap();
    assert_eq!(tok.encode("Hello world").unwrap(), vec![19556, 905]);
    assert_eq!(
        tok.encode("12345").unwrap().len(),
        5,
        "digits are split one by one"
    );
    let ids = tok.encode(CHAT).unwrap();
    assert_eq!(ids[0], 1, "<|im_start|> is one special token");
    assert_eq!(tok.decode(&ids, false).unwrap(), CHAT);
    assert_eq!(tok.bos_id, Some(1));
    assert_eq!(tok.eos_id, Some(2));
    assert_eq!(tok.token_id("<|im_end|>"), Some(2));
    assert!(
        tok.chat_template
            .as_deref()
            .unwrap_or("")
            .contains("im_start")
    );
}

#[test]
fn dequantized_and_quantized_paths_agree() {
    let Some(path) = model_path() else { return };
    let tok = Tokenizer::from_gguf_file(&path).unwrap();
    let ids = tok.encode(CHAT).unwrap();
    let t = ids.len();
    let input = Tensor::from_vec(ids, (1, t), &Device::Cpu).unwrap();
    let dense = Model::from_gguf(&path, LoadOptions::train()).unwrap();
    let reference = dense.forward(&input, None).unwrap();
    for quant in [
        InferQuant::F32,
        InferQuant::Auto,
        InferQuant::Original,
        InferQuant::Q8_0,
    ] {
        let m = Model::from_gguf(
            &path,
            LoadOptions {
                mode: Mode::Infer,
                quant,
                lora: None,
                device: Default::default(),
            },
        )
        .unwrap();
        let logits = m.forward(&input, None).unwrap();
        let diff = (&logits - &reference).unwrap().abs().unwrap();
        let max = diff.max_all().unwrap().to_scalar::<f32>().unwrap();
        let mean = diff.mean_all().unwrap().to_scalar::<f32>().unwrap();
        eprintln!("{quant:?}: max |Δlogit| {max:.4}, mean {mean:.5}");
        // Measured here: max 2.9 / mean 0.24 with the packed kernels on the stored Q4_1 and
        // Q8_0 blocks, 2.2 / 0.33 requantized to Q8_0, 3.5 / 0.42 through candle's QMatMul.
        let (tol, mean_tol) = match quant {
            InferQuant::F32 => (1e-3, 1e-4),
            _ => (5.0, 0.5),
        };
        assert!(max < tol, "{quant:?}: max diff {max}");
        assert!(mean < mean_tol, "{quant:?}: mean diff {mean}");
        // The next-token choices agree almost everywhere, and always at the end of the prompt.
        let a = logits.argmax(D::Minus1).unwrap().to_vec2::<u32>().unwrap();
        let r = reference
            .argmax(D::Minus1)
            .unwrap()
            .to_vec2::<u32>()
            .unwrap();
        let same = a[0].iter().zip(&r[0]).filter(|(x, y)| x == y).count();
        eprintln!("{quant:?}: argmax agrees at {same}/{t} positions");
        assert!(same * 10 >= t * 9, "{quant:?}: argmax agrees at {same}/{t}");
        assert_eq!(a[0][t - 1], r[0][t - 1]);
    }
}

#[test]
fn greedy_generation_answers() {
    let Some(path) = model_path() else { return };
    let (model, tok) = medu1_model::load(&path, LoadOptions::infer()).unwrap();
    let prompt = tok.encode(CHAT).unwrap();
    let mut params = SamplingParams::greedy(24);
    params.stop_token_ids = tok.default_stop_ids();
    let g = generate(&model, &tok, &[prompt], 1, &params, &mut |_| {}).unwrap();
    let c = &g.completions[0][0];
    eprintln!("{:?} {:?}", c.text, g.stats);
    assert!(c.text.contains("Paris"), "{:?}", c.text);
    assert_eq!(c.logprobs.len(), c.token_ids.len());
    assert!(c.logprobs.iter().all(|l| l.is_finite() && *l <= 0.0));
}

/// The embedded model exported to F16 keeps its logits: the F16 rounding of the dequantized
/// Q4_1 / Q8_0 values is the only change (both sides run dense f32 matmuls).
#[test]
fn an_f16_export_keeps_the_logits() {
    let Some(path) = model_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("smol-f16.gguf");
    let source = Model::from_gguf(&path, LoadOptions::train()).unwrap();
    let meta = medu1_model::export::GgufTokenizer::from_gguf_file(&path).unwrap();
    medu1_model::export_gguf(&source, &meta, medu1_model::GgufQuant::F16, "f16", &out).unwrap();
    drop(source);
    let opts = LoadOptions::infer_with(InferQuant::F32);
    let tok = Tokenizer::from_gguf_file(&out).unwrap();
    let ids = tok.encode(CHAT).unwrap();
    assert_eq!(
        ids,
        Tokenizer::from_gguf_file(&path)
            .unwrap()
            .encode(CHAT)
            .unwrap()
    );
    let t = ids.len();
    let input = Tensor::from_vec(ids, (1, t), &Device::Cpu).unwrap();
    let want = Model::from_gguf(&path, opts)
        .unwrap()
        .forward(&input, None)
        .unwrap();
    let got = Model::from_gguf(&out, opts)
        .unwrap()
        .forward(&input, None)
        .unwrap();
    let diff = (&got - &want).unwrap().abs().unwrap();
    let max = diff.max_all().unwrap().to_scalar::<f32>().unwrap();
    let mean = diff.mean_all().unwrap().to_scalar::<f32>().unwrap();
    eprintln!("f16 export: max |Δlogit| {max:.5}, mean {mean:.6}");
    // Measured: max 0.045, mean 0.0069 (logits span about ±20).
    assert!(max < 0.1 && mean < 0.02, "max {max}, mean {mean}");
    let argmax = |x: &Tensor| x.argmax(D::Minus1).unwrap().to_vec2::<u32>().unwrap();
    assert_eq!(argmax(&got), argmax(&want));
}
