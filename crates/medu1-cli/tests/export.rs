//! `medu1 export` on the embedded model: the GGUF it writes generates exactly what the source
//! generates, in medu1 and in llama.cpp (llama-cpp-python, `MEDU1_LLAMA_PYTHON`), from the
//! default model and from a checkpoint-like Hugging Face folder. Skips without the embedded
//! model (`medu1 setup`), and the llama.cpp checks without the venv.
#![allow(clippy::print_stdout)] // the test reports what it compared

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PROMPT: &str = "What is the first-line treatment for uncomplicated hypertension?";
const CHAT: &str = "<|im_start|>user\nWhich electrolyte disturbance causes peaked T waves?<|im_end|>\n<|im_start|>assistant\n";

fn default_model() -> Option<PathBuf> {
    let cache = match std::env::var_os("MEDU1_CACHE").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
            Some(x) => PathBuf::from(x).join("medu1"),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/medu1"),
        },
    };
    let p = cache.join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.is_file() {
        Some(p)
    } else {
        medu1_core::testing::skip(
            "model",
            &format!("no embedded model at {} (run `medu1 setup`)", p.display()),
        );
        None
    }
}

fn medu1<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medu1"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "medu1 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn export(model: &str, format: &str, quant: Option<&str>, out: &Path) {
    let mut args = vec!["export", "--model", model, "--format", format, "-o"];
    args.push(out.to_str().unwrap());
    if let Some(q) = quant {
        args.extend(["--quant", q]);
    }
    ok(medu1(&args));
}

/// Greedy text for PROMPT (chat template), as `medu1 generate` prints it.
fn greedy_text(model: &str, quant: &str) -> String {
    ok(medu1(&[
        "generate",
        "--model",
        model,
        "--quant",
        quant,
        "--temperature",
        "0",
        "--max-new-tokens",
        "48",
        "--prompt",
        PROMPT,
    ]))
}

#[test]
fn a_q8_0_export_generates_the_text_of_the_default_model_at_q8_0() {
    if default_model().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("smol-q8_0.gguf");
    export("default", "gguf", Some("q8_0"), &gguf);
    let want = greedy_text("default", "q8_0");
    assert!(want.split_whitespace().count() > 10, "{want}");
    let got = greedy_text(gguf.to_str().unwrap(), "auto");
    println!("default --quant q8_0 and its q8_0 export: {want}");
    assert_eq!(got, want);
    // The Q4_1 source keeps its text through a Q4_1 export (its blocks re-quantize to
    // themselves).
    let q4 = dir.path().join("smol-q4_1.gguf");
    export("default", "gguf", Some("q4_1"), &q4);
    assert_eq!(
        greedy_text(q4.to_str().unwrap(), "auto"),
        greedy_text("default", "auto")
    );
}

#[test]
fn a_checkpoint_folder_exports_to_the_same_gguf_model() {
    if default_model().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A checkpoint holds its Hugging Face export in hf/.
    let ckpt = dir.path().join("step-000001");
    export("default", "hf", None, &ckpt.join("hf"));
    let hf = ckpt.join("hf");
    assert_eq!(
        greedy_text(hf.to_str().unwrap(), "f32"),
        greedy_text("default", "f32")
    );
    let gguf = dir.path().join("from-hf.gguf");
    export(ckpt.to_str().unwrap(), "gguf", Some("q8_0"), &gguf);
    assert_eq!(
        greedy_text(gguf.to_str().unwrap(), "auto"),
        greedy_text("default", "q8_0")
    );
}

#[test]
fn export_refuses_bad_arguments_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.gguf");
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["export", "--random", "qwen9", "--format", "gguf", "-o", o],
            "unknown random model `qwen9`",
        ),
        (
            &[
                "export",
                "--model",
                "/nonexistent/m.gguf",
                "--format",
                "gguf",
                "-o",
                o,
            ],
            "/nonexistent/m.gguf does not exist",
        ),
        (
            &[
                "export", "--model", "default", "--format", "hf", "--quant", "q8_0", "-o", o,
            ],
            "--quant applies to --format gguf only",
        ),
    ];
    for (args, want) in cases {
        let out = medu1(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(!out.exists());
}

/// What llama.cpp does with CHAT on a GGUF file.
struct LlamaRun {
    prompt: Vec<u32>,
    /// Greedy ids (top-k 1, no repetition penalty).
    greedy: Vec<u32>,
    /// Its logits `[greedy.len(), vocab]` at the positions that predicted each greedy id
    /// (teacher-forced over prompt + greedy).
    logits: Vec<f32>,
}

fn llama_cpp_run(python: &Path, gguf: &Path, prompt: &str, n: usize, dir: &Path) -> LlamaRun {
    const SCRIPT: &str = r#"
import json, sys, numpy as np, llama_cpp
path, prompt, n, logits_out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
# An f32 KV cache (llama.cpp's default is f16), so that an F32 file is f32 throughout.
llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_threads=2, logits_all=True, verbose=False,
                      type_k=0, type_v=0)
ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
out = []
for t in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0):
    out.append(int(t))
    if len(out) == n:
        break
llm.reset()
llm.eval(ids + out)
np.asarray(llm.scores[len(ids) - 1 : len(ids) - 1 + n], dtype="<f4").tofile(logits_out)
print(json.dumps({"prompt": ids, "ids": out}))
"#;
    let logits_path = dir.join("llama-logits.f32");
    let out = Command::new(python)
        .args(["-c", SCRIPT])
        .arg(gguf)
        .args([prompt, &n.to_string()])
        .arg(&logits_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "llama.cpp failed on {}: {}",
        gguf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let ids = |k: &str| serde_json::from_value(v[k].clone()).unwrap();
    let logits = std::fs::read(&logits_path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    LlamaRun {
        prompt: ids("prompt"),
        greedy: ids("ids"),
        logits,
    }
}

/// medu1's greedy ids for `prompt` (raw, no stop) on `gguf`, through the CLI.
fn medu1_greedy(gguf: &Path, prompt: &str, n: usize, quant: &str) -> Vec<u32> {
    let n = n.to_string();
    let g = gguf.to_str().unwrap();
    let out = ok(medu1(&[
        "generate",
        "--model",
        g,
        "--quant",
        quant,
        "--raw",
        "--json",
        "--ignore-eos",
        "--temperature",
        "0",
        "--max-new-tokens",
        &n,
        "--prompt",
        prompt,
    ]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    serde_json::from_value(v["completions"][0]["token_ids"].clone()).unwrap()
}

/// medu1's logits (dense f32 matmuls on the file's weights) over `prompt + greedy`, at the
/// positions that predict each greedy id.
fn medu1_logits(gguf: &Path, prompt: &[u32], greedy: &[u32]) -> Vec<f32> {
    use medu1_model::{InferQuant, LoadOptions, Model};
    let opts = LoadOptions::infer_with(InferQuant::F32);
    let model = Model::from_gguf(gguf, opts).unwrap();
    let ids: Vec<u32> = prompt.iter().chain(greedy).copied().collect();
    let t = ids.len();
    let input = candle_core::Tensor::from_vec(ids, (1, t), &candle_core::Device::Cpu).unwrap();
    let logits = model.forward(&input, None).unwrap();
    logits
        .squeeze(0)
        .unwrap()
        .narrow(0, prompt.len() - 1, greedy.len())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn argmax_and_margin(row: &[f32]) -> (u32, f32) {
    let mut best = (0usize, f32::NEG_INFINITY, f32::NEG_INFINITY);
    for (i, &x) in row.iter().enumerate() {
        if x > best.1 {
            best = (i, x, best.1);
        } else if x > best.2 {
            best.2 = x;
        }
    }
    (best.0 as u32, best.1 - best.2)
}

/// Below this top-2 gap (in logits) two engines' rounding may pick different tokens: medu1's
/// packed kernels quantize activations to int8 per row, llama.cpp's Q8_0 dot products per block
/// of 32, and their sums differ by up to a few tenths of a logit on this model.
const TIE: f32 = 0.5;

#[test]
fn llama_cpp_runs_the_export_as_medu1_does() {
    let Some(python) = std::env::var_os("MEDU1_LLAMA_PYTHON").map(PathBuf::from) else {
        medu1_core::testing::skip(
            "llama",
            "set MEDU1_LLAMA_PYTHON to a python with llama-cpp-python (scripts/llama_server_venv.sh)",
        );
        return;
    };
    if default_model().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let from_gguf = dir.path().join("smol-q8_0.gguf");
    export("default", "gguf", Some("q8_0"), &from_gguf);
    // The Hugging Face route: tokenizer metadata rebuilt from tokenizer.json, q/k rows
    // un-permuted into the folder and permuted again into the GGUF.
    let hf = dir.path().join("hf");
    export("default", "hf", None, &hf);
    let from_hf = dir.path().join("from-hf.gguf");
    export(hf.to_str().unwrap(), "gguf", Some("q8_0"), &from_hf);
    let f16 = dir.path().join("smol-f16.gguf");
    export("default", "gguf", Some("f16"), &f16);
    let f32 = dir.path().join("smol-f32.gguf");
    export("default", "gguf", Some("f32"), &f32);
    let n = 24;
    let hypertension = format!("<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n");
    // Logit tolerances against medu1's dense f32 matmuls on the same file. llama.cpp rounds
    // activations to 8 bits per block of 32 in Q8_0 products (measured: max 1.3-1.7, mean
    // 0.17-0.24) and to f16 in F16 products (max 0.04, mean 0.006); a wrong rope layout or
    // tensor moves logits by whole units.
    // An F32 file is computed in f32 by both (medu1 with `--quant f32`, llama.cpp with an f32
    // KV cache): only summation order differs (measured: max 4e-4 over 24 positions), so
    // greedy decoding must agree unless the top two logits are within 1e-3.
    let q8 = (3.0, 0.35, "auto", TIE);
    let cases = [
        (&from_gguf, hypertension.as_str(), q8),
        (&from_gguf, CHAT, q8),
        (&from_hf, CHAT, q8),
        (&f16, CHAT, (0.3, 0.03, "auto", TIE)),
        (&f32, CHAT, (2e-3, 2e-4, "f32", 1e-3)),
        (&f32, hypertension.as_str(), (2e-3, 2e-4, "f32", 1e-3)),
    ];
    for (gguf, prompt, (tol_max, tol_mean, quant, tie)) in cases {
        {
            let l = llama_cpp_run(&python, gguf, prompt, n, dir.path());
            let prompt_ids = medu1_model::Tokenizer::from_gguf_file(gguf)
                .unwrap()
                .encode(prompt)
                .unwrap();
            assert_eq!(l.prompt, prompt_ids, "prompt ids, {}", gguf.display());
            // Teacher-forced logits: a wrong rope layout, epsilon or tensor would move them by
            // whole units.
            let m = medu1_logits(gguf, &prompt_ids, &l.greedy);
            assert_eq!(m.len(), l.logits.len());
            let diff: Vec<f32> = m
                .iter()
                .zip(&l.logits)
                .map(|(a, b)| (a - b).abs())
                .collect();
            let max = diff.iter().fold(0f32, |a, &b| a.max(b));
            let mean = diff.iter().sum::<f32>() / diff.len() as f32;
            let vocab = m.len() / n;
            // Free-running greedy ids agree up to the first near-tie.
            let ours = medu1_greedy(gguf, prompt, n, quant);
            let same = ours
                .iter()
                .zip(&l.greedy)
                .take_while(|(a, b)| a == b)
                .count();
            println!(
                "{}: medu1 vs llama.cpp logits max |Δ| {max:.2e}, mean {mean:.1e}; greedy ids \
                 agree for {same}/{n}",
                gguf.file_name().unwrap().to_string_lossy()
            );
            assert!(max < tol_max && mean < tol_mean, "max {max}, mean {mean}");
            for (i, (row_m, row_l)) in m.chunks(vocab).zip(l.logits.chunks(vocab)).enumerate() {
                let ((am, _), (al, gap)) = (argmax_and_margin(row_m), argmax_and_margin(row_l));
                // llama.cpp's one-token decoding and its batched pass round differently too.
                let g = l.greedy[i] as usize;
                assert!(
                    row_l[al as usize] - row_l[g] < tie,
                    "step {i}: llama.cpp decoded {g}, its batched argmax is {al}"
                );
                assert!(am == al || gap < tie, "step {i}: {am} vs {al}, gap {gap}");
            }
            if same < n {
                let row = &l.logits[same * vocab..(same + 1) * vocab];
                let gap = argmax_and_margin(row).1;
                println!("  first difference at step {same}: llama.cpp's top-2 gap {gap:.3}");
                assert!(
                    gap < tie,
                    "greedy ids differ at step {same} without a near-tie ({gap} >= {tie})"
                );
            }
        }
    }
}

/// `--adapter` merges a PEFT adapter into the export: the file has the merged model's logits,
/// which differ from the base's.
#[test]
fn an_adapter_is_merged_into_the_export() {
    use medu1_model::{InferQuant, LoadOptions, LoraConfig, Model};
    let Some(path) = default_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = LoraConfig {
        rank: 4,
        alpha: 8.0,
        ..LoraConfig::default()
    };
    let base = Model::from_gguf(&path, LoadOptions::lora(cfg)).unwrap();
    // A fresh adapter has B = 0; give every B values so that the merge shows.
    for (name, var) in base.trainable_vars() {
        if name.contains("lora_B") {
            let t = candle_core::Tensor::randn(0f32, 0.02, var.shape(), &candle_core::Device::Cpu)
                .unwrap();
            var.set(&t).unwrap();
        }
    }
    let adapter = dir.path().join("adapter");
    base.save_adapter(&adapter, "default").unwrap();
    let (merged_out, plain_out) = (
        dir.path().join("merged.gguf"),
        dir.path().join("plain.gguf"),
    );
    ok(medu1(&[
        "export",
        "--model",
        "default",
        "--adapter",
        adapter.to_str().unwrap(),
        "--format",
        "gguf",
        "--quant",
        "f32",
        "-o",
        merged_out.to_str().unwrap(),
    ]));
    export("default", "gguf", Some("f32"), &plain_out);
    let f32_infer = LoadOptions::infer_with(InferQuant::F32);
    let want = base.merge(f32_infer).unwrap();
    let ids = candle_core::Tensor::new(
        &[[1u32, 504, 3458, 314, 260, 1345]],
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let logits = |m: &Model| m.forward(&ids, None).unwrap().flatten_all().unwrap();
    let max_diff = |a: &candle_core::Tensor, b: &candle_core::Tensor| {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let merged = Model::from_gguf(&merged_out, f32_infer).unwrap();
    let plain = Model::from_gguf(&plain_out, f32_infer).unwrap();
    let (w, m, p) = (logits(&want), logits(&merged), logits(&plain));
    let to_merged = max_diff(&m, &w);
    let to_plain = max_diff(&p, &w);
    assert!(to_merged < 1e-3, "export vs in-memory merge: {to_merged}");
    assert!(to_plain > 1e-2, "the adapter changed nothing: {to_plain}");
}
