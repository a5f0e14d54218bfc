//! `medu1 generate`: sample completions from a model (the embedded SmolLM2 GGUF by default, any
//! llama/qwen2 GGUF or Hugging Face folder otherwise), to try a model by hand and to measure
//! generation speed against other runtimes (`bench/generate_vs_llamacpp.sh`).
//!
//! Prompts are rendered with the model's own chat template (GGUF `tokenizer.chat_template` or
//! `tokenizer_config.json`) unless `--raw`. Text goes to stdout (or JSON lines with `--json`);
//! the progress bar and tokens/s go to stderr.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use crate::status::{self, note};
use anyhow::{Context, bail};
use medu1_data::{ChatTemplate, Message};
use medu1_model::{DeviceSpec, InferQuant, LoadOptions, SamplingParams, Tokenizer, generate};

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// `default` (the embedded SmolLM2-135M-Instruct GGUF), a `.gguf` file or a Hugging Face folder.
    #[arg(long, default_value = "default")]
    model: String,
    /// One prompt.
    #[arg(long, conflicts_with = "input")]
    prompt: Option<String>,
    /// JSONL prompts: each line a string, or an object with `prompt` (text) or `messages`
    /// (`[{"role", "content"}]`), and optionally `id`.
    #[arg(long)]
    input: Option<PathBuf>,
    /// System message (chat mode).
    #[arg(long)]
    system: Option<String>,
    /// Render prompts with the model's chat template (the default).
    #[arg(long, overrides_with = "raw")]
    chat: bool,
    /// Feed prompts to the model verbatim.
    #[arg(long, overrides_with = "chat")]
    raw: bool,
    /// Samples per prompt (they share the prompt's prefill).
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// 0 disables top-k.
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Stop when the completion contains this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Text the response starts with (appended to the rendered prompt; printed before the
    /// completion but not part of it in JSON).
    #[arg(long)]
    prefill: Option<String>,
    /// Do not stop at the model's end-of-turn tokens (fixed-length runs for benchmarks).
    #[arg(long)]
    ignore_eos: bool,
    /// One JSON object per prompt on stdout.
    #[arg(long)]
    json: bool,
    /// Matmul weights of the inference path: auto (GGUF Q4_1/Q8_0 as stored where the packed
    /// int8 kernels run, i.e. on x86-64; everything else Q8_0), q8_0, original or f32.
    #[arg(long, default_value = "auto")]
    quant: String,
    /// Device: cpu, cuda or cuda:N (a GPU needs medu1 built with `--features cuda`). On a GPU every weight is dense f32 and `--quant` does not apply.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Prompts per batch (each expands to `n` rows).
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// Compute threads (default: candle's, one per physical core). candle sizes its pools from
    /// `RAYON_NUM_THREADS` when the process starts, so a value different from the environment's
    /// re-runs medu1 with it set. Use fewer when other work shares the CPUs: candle's pool
    /// spin-waits between products.
    #[arg(long)]
    threads: Option<usize>,
}

/// Re-runs this process with `RAYON_NUM_THREADS=threads` unless it is already set that way.
/// Returns `Some(exit code)` when it did.
fn reexec_with_threads(threads: usize) -> anyhow::Result<Option<i32>> {
    let want = threads.max(1).to_string();
    if std::env::var("RAYON_NUM_THREADS").ok().as_deref() == Some(want.as_str()) {
        return Ok(None);
    }
    let exe = std::env::current_exe().context("locating the medu1 executable")?;
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("RAYON_NUM_THREADS", &want)
        .env("CANDLE_NUM_THREADS", &want)
        .status()
        .context("re-running medu1 with RAYON_NUM_THREADS set")?;
    Ok(Some(status.code().unwrap_or(1)))
}

struct Item {
    id: Option<serde_json::Value>,
    text: Option<String>,
    messages: Option<Vec<Message>>,
}

fn read_items(a: &GenerateArgs) -> anyhow::Result<Vec<Item>> {
    if let Some(p) = &a.prompt {
        return Ok(vec![Item {
            id: None,
            text: Some(p.clone()),
            messages: None,
        }]);
    }
    let Some(path) = &a.input else {
        bail!("give --prompt TEXT or --input PROMPTS.jsonl");
    };
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut items = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: invalid json", path.display(), i + 1))?;
        let item = match v {
            serde_json::Value::String(s) => Item {
                id: None,
                text: Some(s),
                messages: None,
            },
            serde_json::Value::Object(o) => {
                let messages = match o.get("messages") {
                    Some(m) => Some(serde_json::from_value(m.clone()).with_context(|| {
                        format!("{}:{}: invalid `messages`", path.display(), i + 1)
                    })?),
                    None => None,
                };
                let text = o.get("prompt").and_then(|p| p.as_str()).map(str::to_string);
                if text.is_none() && messages.is_none() {
                    bail!("{}:{}: needs `prompt` or `messages`", path.display(), i + 1);
                }
                Item {
                    id: o.get("id").cloned(),
                    text,
                    messages,
                }
            }
            _ => bail!(
                "{}:{}: expected a string or an object",
                path.display(),
                i + 1
            ),
        };
        items.push(item);
    }
    Ok(items)
}

fn chat_template(tok: &Tokenizer) -> ChatTemplate {
    let name = |id: Option<u32>| {
        id.and_then(|i| tok.inner().id_to_token(i))
            .unwrap_or_default()
    };
    if let Some(src) = &tok.chat_template {
        match ChatTemplate::from_jinja(src, &name(tok.bos_id), &name(tok.eos_id)) {
            Ok(t) => return t,
            Err(e) => {
                note!("warning: the model's chat template does not compile ({e}); using ChatML")
            }
        }
    }
    ChatTemplate::ChatMl {
        default_system: None,
    }
}

pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    if let Some(t) = a.threads
        && let Some(code) = reexec_with_threads(t)?
    {
        std::process::exit(code);
    }
    let path = super::setup::resolve_model(&a.model)?;
    let quant: InferQuant = a.quant.parse().context("--quant")?;
    let device: DeviceSpec = a.device.parse().context("--device")?;
    let items = read_items(&a)?;
    let t_load = std::time::Instant::now();
    let (model, tok) = medu1_model::load(&path, LoadOptions::infer_with(quant).on(device))
        .with_context(|| format!("loading {}", path.display()))?;
    note!(
        "loaded {} in {:.2}s",
        path.display(),
        t_load.elapsed().as_secs_f64()
    );
    let template = (!a.raw).then(|| chat_template(&tok));
    let mut prompts = Vec::with_capacity(items.len());
    for it in &items {
        let mut text = match (&template, &it.messages) {
            (Some(t), msgs) => {
                let mut m = Vec::new();
                if let Some(s) = &a.system {
                    m.push(Message::system(s.clone()));
                }
                match msgs {
                    Some(ms) => m.extend(ms.iter().cloned()),
                    None => m.push(Message::user(it.text.clone().unwrap_or_default())),
                }
                t.render(&m, true)?
            }
            (None, Some(ms)) => ms
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            (None, None) => it.text.clone().unwrap_or_default(),
        };
        if let Some(p) = &a.prefill {
            text.push_str(p);
        }
        prompts.push(tok.encode(&text)?);
    }
    let params = SamplingParams {
        temperature: a.temperature,
        top_p: a.top_p,
        top_k: a.top_k,
        seed: a.seed,
        max_new_tokens: a.max_new_tokens,
        stop_token_ids: if a.ignore_eos {
            Vec::new()
        } else {
            tok.default_stop_ids()
        },
        stop_strings: a.stop.clone(),
    };
    let n = a.n.max(1);
    let total = (prompts.len() * n * a.max_new_tokens) as u64;
    let bar = status::bar(total, "{bar:40} {pos}/{len} tokens {per_sec} eta {eta}");
    let mut stdout = std::io::stdout().lock();
    let (mut pt, mut ps, mut gt, mut gs) = (0usize, 0f64, 0usize, 0f64);
    let bs = a.batch_size.max(1);
    for (chunk_i, chunk) in prompts.chunks(bs).enumerate() {
        let mut done_in_chunk = 0u64;
        let g = generate(&model, &tok, chunk, n, &params, &mut |k| {
            done_in_chunk += k as u64;
            bar.inc(k as u64);
        })?;
        // Rows that stopped early never produce their remaining budget: account for it.
        bar.inc((chunk.len() * n * a.max_new_tokens) as u64 - done_in_chunk);
        pt += g.stats.prompt_tokens;
        ps += g.stats.prefill_secs;
        gt += g.stats.generated_tokens;
        gs += g.stats.decode_secs;
        for (j, comps) in g.completions.iter().enumerate() {
            let item = &items[chunk_i * bs + j];
            if a.json {
                let v = serde_json::json!({
                    "id": item.id,
                    "prompt": item.text,
                    "prefill": a.prefill,
                    "completions": comps,
                });
                writeln!(stdout, "{v}")?;
            } else {
                for (k, c) in comps.iter().enumerate() {
                    bar.suspend(|| -> std::io::Result<()> {
                        if n > 1 {
                            writeln!(stdout, "--- sample {k} ({:?})", c.finish)?;
                        }
                        writeln!(stdout, "{}{}", a.prefill.as_deref().unwrap_or(""), c.text)
                    })?;
                }
            }
        }
    }
    bar.finish_and_clear();
    note!(
        "prefill: {pt} tokens in {ps:.3}s = {:.1} tok/s; decode: {gt} tokens in {gs:.3}s = {:.1} tok/s",
        pt as f64 / ps.max(1e-9),
        gt as f64 / gs.max(1e-9)
    );
    Ok(())
}
