//! Measures prefill/decode speed of the inference path on a GGUF file:
//! `cargo run --release -p medu1-model --example gen_speed -- MODEL.gguf [original|q8_0|f32]`.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use medu1_model::{InferQuant, LoadOptions, Mode, SamplingParams, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = PathBuf::from(&args[1]);
    let quant = match args.get(2).map(String::as_str) {
        Some("original") => InferQuant::Original,
        Some("f32") => InferQuant::F32,
        _ => InferQuant::Q8_0,
    };
    let (model, tok) = medu1_model::load(
        &path,
        LoadOptions {
            mode: Mode::Infer,
            quant,
        },
    )?;
    let prompt = "<|im_start|>system\nYou are a careful medical assistant. Think step by step, then answer with the letter of the best option.<|im_end|>\n<|im_start|>user\nA 45-year-old man presents with crushing chest pain radiating to the left arm, diaphoresis and nausea for the past hour. ECG shows ST elevation in leads II, III and aVF. Which coronary artery is most likely occluded? A) Left anterior descending B) Left circumflex C) Right coronary artery D) Left main<|im_end|>\n<|im_start|>assistant\n";
    let ids = tok.encode(prompt)?;
    println!("prompt tokens: {}", ids.len());
    let mut p = SamplingParams::greedy(128);
    // warm-up
    generate(
        &model,
        &tok,
        std::slice::from_ref(&ids),
        1,
        &SamplingParams::greedy(4),
        &mut |_| {},
    )?;
    let g = generate(&model, &tok, std::slice::from_ref(&ids), 1, &p, &mut |_| {})?;
    println!(
        "{quant:?} single: prefill {:.1} tok/s, decode {:.1} tok/s ({} tokens)",
        g.stats.prefill_tok_per_s(),
        g.stats.decode_tok_per_s(),
        g.stats.generated_tokens
    );
    p.temperature = 0.7;
    p.top_p = 0.95;
    p.seed = 1;
    let t = std::time::Instant::now();
    let g = generate(&model, &tok, std::slice::from_ref(&ids), 8, &p, &mut |_| {})?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{quant:?} 8x128: {} tokens in {secs:.2}s = {:.1} tok/s end to end (prefill {:.3}s)",
        g.stats.generated_tokens,
        g.stats.generated_tokens as f64 / secs,
        g.stats.prefill_secs
    );
    Ok(())
}
