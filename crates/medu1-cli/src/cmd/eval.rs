//! `medu1 eval`: the benchmark table of a model, generated locally (`--model`) or by an
//! OpenAI-compatible server (`--endpoint`: vLLM, SGLang, llama.cpp), graded and reported by
//! `medu1-eval`. This module only turns flags and environment into a [`RunConfig`] and a backend,
//! and draws the progress bar; the API key is read here because library crates never read the
//! environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use medu1_data::{BudgetMode, ChatTemplate, Variant};
use medu1_eval::backend::local::LocalBackend;
use medu1_eval::backend::openai::{Api, OpenAiBackend, OpenAiConfig};
use medu1_eval::runner::{BudgetSpec, Progress, RunConfig};
use medu1_eval::suite::benchmark_for_file;
use medu1_eval::sweep::{Sweep, SweepMode, SweepProgress, run_sweep};
use medu1_eval::{Backend, GenParams, Rule, Suite};

use super::profile::load_profile;
use crate::status::{self, note};

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Local model: `default` (the embedded SmolLM2-135M-Instruct GGUF), a `.gguf` file or a
    /// Hugging Face folder.
    #[arg(
        long,
        conflicts_with = "endpoint",
        required_unless_present = "endpoint"
    )]
    model: Option<String>,
    /// OpenAI-compatible server, e.g. `http://127.0.0.1:8000` (with or without `/v1`). The API key
    /// comes from `MEDU1_API_KEY` or `OPENAI_API_KEY`.
    #[arg(long)]
    endpoint: Option<String>,
    /// `completions` (the templated Med-U1 prompt, as the reference's vLLM inference) or `chat`
    /// (system + user messages; the server applies its template).
    #[arg(long, default_value = "completions")]
    api: Api,
    /// Served model name (default: the first one `/v1/models` lists).
    #[arg(long)]
    served_model: Option<String>,
    /// Requests in flight at once (endpoint).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Retries of a failed request (connection errors, timeouts, 429, 5xx), with exponential
    /// backoff.
    #[arg(long, default_value_t = 4)]
    retries: u32,
    /// Per-request timeout in seconds (endpoint).
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
    /// Benchmark files (any format medu1 reads); each becomes a benchmark named by its file stem.
    #[arg(long, num_args = 1.., required_unless_present = "suite")]
    data: Vec<PathBuf>,
    /// A named suite: medu1-val, anchors or ood (repeatable).
    #[arg(long)]
    suite: Vec<String>,
    /// Folder the suites live in (default: ../shared/data when present, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// First N items of each benchmark.
    #[arg(long)]
    limit: Option<usize>,
    /// Samples per item (mean@n, pass@k, maj@n).
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// 0 disables top-k.
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 512)]
    max_tokens: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Budget sentence: none, exact, max, log, both, both-both, fixed:K, or `file` (the budget and
    /// rendered prompt the data carries).
    #[arg(long, default_value = "none")]
    budget: String,
    /// Budget sweep: evaluate every item at each of these budgets (comma-separated, e.g.
    /// 32,64,128,256), one resumable run per budget in OUT/budget-N/, then write OUT/sweep.json,
    /// OUT/sweep.md and the length and accuracy plots.
    #[arg(long, value_delimiter = ',', num_args = 1.., conflicts_with = "budget")]
    budgets: Vec<u64>,
    /// Sentence of a sweep: `exact` ("Think for N tokens.", the default) or `max` ("Think for
    /// maximum N tokens.").
    #[arg(long, requires = "budgets")]
    budget_mode: Option<SweepMode>,
    /// Seed of the budget draws.
    #[arg(long, default_value_t = 42)]
    budget_seed: i64,
    /// Grading: `medu1` (Med-U1 evaluation rules), `medu1-val` (the trainer's validation rule) or
    /// `official` (MMLU-Pro, MedXpertQA, MedCalc-Bench official rules; Med-U1's elsewhere).
    #[arg(long, default_value = "medu1")]
    rule: Rule,
    /// Reward profile for the training-reward column: `med-u1`, `corrected` or a file.
    #[arg(long, default_value = "med-u1")]
    profile: String,
    /// Prompt variant: `released` (what the released models saw) or `script`.
    #[arg(long, default_value = "released")]
    variant: Variant,
    /// Chat template: `auto` (local: the model's own; endpoint: Qwen2.5 ChatML as the reference),
    /// qwen25, smollm2, llama3 or a Jinja / tokenizer_config.json file.
    #[arg(long, default_value = "auto")]
    template: String,
    /// Prompts per local generation call.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Device of a local model: cpu, cuda or cuda:N (a GPU needs medu1 built with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output folder (reports, per-item log); a rerun with the same folder resumes.
    #[arg(long, default_value = "eval-out")]
    out: PathBuf,
    /// Skip the PNG chart.
    #[arg(long)]
    no_plot: bool,
}

fn data_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(|| {
        let shared = Path::new("../shared/data");
        if shared.is_dir() {
            shared.to_path_buf()
        } else {
            PathBuf::from("data")
        }
    })
}

fn model_template(tok: &medu1_model::Tokenizer) -> Option<ChatTemplate> {
    let name = |id: Option<u32>| {
        id.and_then(|i| tok.inner().id_to_token(i))
            .unwrap_or_default()
    };
    let src = tok.chat_template.as_ref()?;
    ChatTemplate::from_jinja(src, &name(tok.bos_id), &name(tok.eos_id)).ok()
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    // Checked before a model is loaded or a server contacted.
    let sweep = if a.budgets.is_empty() {
        None
    } else {
        Some(Sweep::new(
            a.budgets.clone(),
            a.budget_mode.unwrap_or(SweepMode::Exact),
        )?)
    };
    let budget = if a.budget == "file" {
        BudgetSpec::File
    } else {
        BudgetSpec::Mode(a.budget.parse::<BudgetMode>()?)
    };
    let mut benchmarks = Vec::new();
    if !a.suite.is_empty() {
        let dir = data_dir(a.data_dir.clone());
        for s in &a.suite {
            let suite: Suite = s.parse()?;
            benchmarks.extend(
                suite
                    .benchmarks(&dir)
                    .with_context(|| format!("data folder {}", dir.display()))?,
            );
        }
    }
    benchmarks.extend(a.data.iter().map(|p| benchmark_for_file(p)));

    let (backend, auto_template): (Box<dyn Backend>, (ChatTemplate, String)) =
        if let Some(url) = &a.endpoint {
            let mut cfg = OpenAiConfig::new(url.clone(), a.api);
            cfg.model = a.served_model.clone();
            cfg.api_key = ["MEDU1_API_KEY", "OPENAI_API_KEY"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
            cfg.concurrency = a.concurrency.max(1);
            cfg.max_retries = a.retries;
            cfg.timeout = Duration::from_secs(a.timeout_s);
            let b = OpenAiBackend::connect(cfg).with_context(|| format!("connecting to {url}"))?;
            (Box::new(b), (ChatTemplate::qwen25(), "qwen25".into()))
        } else {
            let arg = a.model.as_deref().unwrap_or("default");
            let path = super::setup::resolve_model(arg)?;
            note!("loading {}", path.display());
            let device = a.device.parse().context("--device")?;
            let b = LocalBackend::load(&path, device)?.with_batch(a.batch);
            let t = if arg == "default" {
                (ChatTemplate::smollm2(), "smollm2".to_string())
            } else {
                match model_template(b.tokenizer()) {
                    Some(t) => (t, "model".to_string()),
                    None => (ChatTemplate::qwen25(), "qwen25".to_string()),
                }
            };
            (Box::new(b), t)
        };
    let (template, template_name) = if a.template == "auto" {
        auto_template
    } else {
        (
            ChatTemplate::from_name_or_file(&a.template)
                .with_context(|| format!("--template {}", a.template))?,
            a.template.clone(),
        )
    };
    let cfg = RunConfig {
        out_dir: a.out.clone(),
        benchmarks,
        limit: a.limit,
        n: a.n,
        params: GenParams {
            temperature: a.temperature,
            top_p: a.top_p,
            top_k: a.top_k,
            max_tokens: a.max_tokens,
            seed: a.seed,
            stop: Vec::new(),
        },
        budget,
        budget_seed: a.budget_seed,
        rule: a.rule,
        profile: load_profile(&a.profile)?,
        variant: a.variant,
        template,
        template_name,
        plot: !a.no_plot,
    };
    note!("backend: {}", backend.describe());
    tracing::info!(
        backend = %backend.describe(),
        out_dir = %cfg.out_dir.display(),
        sweep = sweep.is_some(),
        "eval: run start"
    );
    if let Some(sweep) = sweep {
        return eval_sweep(backend.as_ref(), cfg, &sweep);
    }
    let mut bar: Option<(String, ProgressBar)> = None;
    let style = status::style("{prefix:>20} {bar:40} {pos}/{len} items {elapsed} eta {eta}");
    let summary = medu1_eval::run(backend.as_ref(), &cfg, &mut |p: &Progress<'_>| {
        if bar.as_ref().is_none_or(|(name, _)| name != p.benchmark) {
            if let Some((_, b)) = bar.take() {
                b.finish();
            }
            let b = ProgressBar::new(p.total as u64).with_style(style.clone());
            b.set_prefix(p.benchmark.to_string());
            bar = Some((p.benchmark.to_string(), b));
        }
        if let Some((_, b)) = &bar {
            b.set_position(p.done as u64);
        }
    })
    .with_context(|| {
        format!(
            "evaluation stopped; finished items are kept in {} and a rerun resumes",
            a.out.join(medu1_eval::runner::ITEMS_FILE).display()
        )
    })?;
    if let Some((_, b)) = bar.take() {
        b.finish();
    }
    tracing::info!(
        resumed = summary.resumed,
        generated = summary.generated,
        report = %summary.paths.markdown.display(),
        "eval: run end"
    );
    if summary.resumed > 0 {
        note!(
            "resumed: {} items from an earlier run, {} generated now",
            summary.resumed,
            summary.generated
        );
    }
    print!(
        "{}",
        std::fs::read_to_string(&summary.paths.markdown)
            .with_context(|| format!("reading {}", summary.paths.markdown.display()))?
    );
    note!(
        "wrote {}, {}, {}{}",
        summary.paths.markdown.display(),
        summary.paths.json.display(),
        summary.paths.csv.display(),
        summary
            .paths
            .plot
            .as_ref()
            .map_or_else(String::new, |p| format!(", {}", p.display()))
    );
    Ok(())
}

/// `--budgets`: one progress bar over every item at every budget, then the sweep table.
fn eval_sweep(backend: &dyn Backend, cfg: RunConfig, sweep: &Sweep) -> anyhow::Result<()> {
    let out = cfg.out_dir.clone();
    let bar = status::bar(
        0,
        "{prefix:>16} {bar:40} {pos}/{len} item-budgets {elapsed} eta {eta} {msg}",
    );
    let summary = run_sweep(backend, cfg, sweep, &mut |p: &SweepProgress<'_>| {
        bar.set_length(p.total as u64);
        bar.set_prefix(format!("budget {}", p.budget));
        bar.set_message(p.benchmark.to_string());
        bar.set_position(p.done as u64);
    })
    .with_context(|| {
        format!(
            "budget sweep stopped; finished items are kept in {}/budget-*/{} and a rerun of the \
             same command resumes",
            out.display(),
            medu1_eval::runner::ITEMS_FILE
        )
    })?;
    bar.finish();
    tracing::info!(
        resumed = summary.resumed,
        generated = summary.generated,
        report = %summary.paths.markdown.display(),
        "eval: sweep end"
    );
    if summary.resumed > 0 {
        note!(
            "resumed: {} item-budgets from an earlier run, {} generated now",
            summary.resumed,
            summary.generated
        );
    }
    let p = &summary.paths;
    print!(
        "{}",
        std::fs::read_to_string(&p.markdown)
            .with_context(|| format!("reading {}", p.markdown.display()))?
    );
    let mut wrote = vec![
        p.markdown.display().to_string(),
        p.json.display().to_string(),
    ];
    wrote.extend(p.length_plot.iter().map(|x| x.display().to_string()));
    wrote.extend(p.accuracy_plot.iter().map(|x| x.display().to_string()));
    note!(
        "wrote {} (per-budget runs in {}/budget-*)",
        wrote.join(", "),
        out.display()
    );
    Ok(())
}
