//! `medu1 data prepare` and `medu1 data inspect`: the command-line face of `medu1-data`.
//!
//! `prepare` reads benchmark files in any supported format, builds Med-U1 prompts (released or
//! published-script variant, a budget mode drawn with Python's `random`), and writes verl JSONL,
//! verl parquet or OpenRLHF JSONL. Rejected rows go to `OUT.rejected.jsonl` so nothing disappears
//! silently. `inspect` summarises files: counts by source, task kind and split, the answer-type
//! mix, and prompt-length percentiles.

use crate::status::{self, note};
use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use medu1_core::{CalcOutput, Sample, Task, TaskKind};
use medu1_data::budget::{BudgetDist, BudgetMode, BudgetRange, BudgetSampler};
use medu1_data::load::{Format, LoadOptions, load_path};
use medu1_data::prompt::{PromptBuilder, Variant};
use medu1_data::template::ChatTemplate;
use medu1_data::write::{OutputFormat, write_jsonl, write_records};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Build Med-U1 prompts from benchmark files and write verl / OpenRLHF training data.
    Prepare(PrepareArgs),
    /// Counts by source, task kind and split; answer-type mix; prompt length percentiles.
    Inspect {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Read every file as this format instead of detecting it.
        #[arg(long)]
        format: Option<Format>,
    },
    /// The former name of `medu1 calc verify`, kept working but hidden from help: one name per
    /// command.
    #[command(hide = true)]
    VerifyCalc(super::calc::VerifyArgs),
    /// The former name of `medu1 calc synth` (hidden, as `verify-calc`).
    #[command(hide = true)]
    SynthCalc(super::calc::SynthArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LabelFormat {
    /// verl rows (`reward_model`, `extra_info`), with the reward's inputs (data source, budget,
    /// limits, output type) repeated in `extra_info`, the only part of a row besides the ground
    /// truth that verl hands to a reward function.
    Verl,
    /// verl rows exactly as the released Med-U1 files lay them out (`extra_info` holds only
    /// `index` and `split`); a reward function then needs the rows themselves to find budgets
    /// and limits (see integrations/verl).
    VerlReference,
    /// `{"prompt", "label"}` rows, the label a JSON string (see `medu1_data::write`).
    Openrlhf,
}

#[derive(Debug, clap::Args)]
pub struct PrepareArgs {
    /// Input files (format detected from content unless --format is given).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output file: `.jsonl` or `.parquet`.
    #[arg(short, long)]
    output: PathBuf,
    /// Read every input as this format.
    #[arg(long)]
    format: Option<Format>,
    /// `released` (what the released parquet files contain) or `script` (the published script).
    #[arg(long, default_value = "released")]
    variant: Variant,
    /// none | exact | max | log | both | both-both | fixed:K | keep (keep each row's own budget,
    /// e.g. from verl inputs; rows without one get none).
    #[arg(long, default_value = "exact")]
    budget: String,
    /// Seed of Python's `random` for budget draws (one draw sequence over all rows, in order).
    #[arg(long, default_value_t = 12345)]
    seed: i64,
    /// Smallest budget drawn (the reference's 100).
    #[arg(long, default_value_t = 100)]
    budget_min: i64,
    /// Largest budget drawn (the reference's 2000).
    #[arg(long, default_value_t = 2000)]
    budget_max: i64,
    /// How budgets are drawn in that range: `uniform` (the reference's randint) or
    /// `log-uniform` (as many in 32-64 as in 128-256).
    #[arg(long, default_value = "uniform", value_parser = parse_dist)]
    budget_dist: BudgetDist,
    /// Override every row's split.
    #[arg(long)]
    split: Option<String>,
    /// chatml (Qwen2.5) | smollm2 | llama3 | a tokenizer_config.json / .jinja file.
    #[arg(long, default_value = "chatml")]
    chat_template: String,
    /// Store the training-time double template (spec §1.5) instead of the single one.
    #[arg(long)]
    double_template: bool,
    /// Write bad rows to OUT.rejected.jsonl instead of failing.
    #[arg(long)]
    skip_invalid: bool,
    #[arg(long, value_enum, default_value = "verl")]
    label_format: LabelFormat,
}

pub fn run(c: DataCommand) -> anyhow::Result<()> {
    match c {
        DataCommand::Prepare(a) => prepare(a),
        DataCommand::Inspect { files, format } => inspect(&files, format),
        DataCommand::VerifyCalc(a) => super::calc::run(super::calc::CalcCommand::Verify(a)),
        DataCommand::SynthCalc(a) => super::calc::run(super::calc::CalcCommand::Synth(a)),
    }
}

fn rejected_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".rejected.jsonl");
    out.with_file_name(name)
}

fn prepare(a: PrepareArgs) -> anyhow::Result<()> {
    let ext = a.output.extension().and_then(|e| e.to_str()).unwrap_or("");
    let out_format = match (ext, a.label_format) {
        ("parquet", LabelFormat::Verl | LabelFormat::VerlReference) => OutputFormat::VerlParquet,
        ("jsonl", LabelFormat::Verl | LabelFormat::VerlReference) => OutputFormat::VerlJsonl,
        ("jsonl", LabelFormat::Openrlhf) => OutputFormat::OpenRlhfJsonl,
        ("parquet", LabelFormat::Openrlhf) => {
            bail!("--label-format openrlhf writes JSONL; use a .jsonl output")
        }
        _ => bail!(
            "{}: output must end in .jsonl or .parquet",
            a.output.display()
        ),
    };
    let mode = match a.budget.as_str() {
        "keep" => None,
        m => Some(m.parse::<BudgetMode>()?),
    };
    let template = ChatTemplate::from_name_or_file(&a.chat_template)?;
    let builder = PromptBuilder::new(a.variant).with_template(template);
    let opts = LoadOptions {
        format: a.format,
        skip_invalid: a.skip_invalid,
        split: a.split.clone(),
        source: None,
    };

    let mut files = Vec::new();
    let mut rejected = Vec::new();
    for input in &a.inputs {
        let l = load_path(input, &opts)?;
        note!(
            "{}: {} rows ({}), {} rejected",
            input.display(),
            l.samples.len(),
            l.format,
            l.rejected.len()
        );
        rejected.extend(l.rejected);
        files.push(l.samples);
    }
    let total: usize = files.iter().map(Vec::len).sum();
    let bar = status::plain_bar(total as u64, total >= 5_000);
    let range = BudgetRange {
        min: a.budget_min,
        max: a.budget_max,
        dist: a.budget_dist,
    };
    range.validate()?;
    let mut sampler = mode.map(|m| BudgetSampler::with_range(m, a.seed, range));
    let mut records = Vec::with_capacity(total);
    for samples in &files {
        // `extra_info.index` is the row's position in its source file, as in the reference.
        for (i, s) in samples.iter().enumerate() {
            let budget = match sampler.as_mut() {
                Some(smp) => smp.next(),
                None => s.budget,
            };
            let mut rec = builder.record(s, budget, i as i64)?;
            if a.label_format != LabelFormat::VerlReference {
                rec = rec.with_reward_info(output_type(s));
            }
            if a.double_template {
                let twice = builder.template.render_training_prompt(rec.content())?;
                rec.prompt[0].content = twice;
            }
            records.push(rec);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    write_records(&a.output, &records, out_format, a.variant.key_order())
        .with_context(|| format!("writing {}", a.output.display()))?;
    let rej = rejected_path(&a.output);
    if !rejected.is_empty() {
        let rows = rejected.iter().map(|r| {
            serde_json::json!({
                "file": r.path.display().to_string(),
                "location": r.loc.to_string(),
                "field": r.field,
                "error": r.message,
            })
        });
        write_jsonl(&rej, rows)?;
    } else {
        // A rejected file from an earlier run would describe rows this output no longer lacks.
        match std::fs::remove_file(&rej) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing the stale {}", rej.display()));
            }
        }
    }
    println!(
        "wrote {} rows to {} ({} rejected{})",
        records.len(),
        a.output.display(),
        rejected.len(),
        if rejected.is_empty() {
            String::new()
        } else {
            format!(", see {}", rej.display())
        }
    );
    Ok(())
}

/// How the reward grades the answer, as written to `extra_info.output_type` and OpenRLHF labels.
fn output_type(s: &Sample) -> &'static str {
    match &s.task {
        Task::MultipleChoice { .. } => "multiple_choice",
        Task::Calculation { output, .. } => match output {
            CalcOutput::Numeric => "numeric",
            CalcOutput::Date => "date",
            CalcOutput::WeekDay => "week_day",
        },
        Task::FreeText => "free_text",
    }
}

/// The answer-type label `inspect` groups by.
fn answer_type(s: &Sample) -> String {
    match &s.task {
        Task::MultipleChoice { options } if options.is_empty() => "mcq (options inline)".into(),
        Task::MultipleChoice { options } => format!("mcq, {} options", options.len()),
        Task::Calculation { output, .. } => format!("calc, {output:?}").to_lowercase(),
        Task::FreeText => "free text".into(),
    }
}

fn percentiles(mut v: Vec<usize>) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:>6}  p90 {:>6}  p99 {:>6}  max {:>6}",
        p(0.5),
        p(0.9),
        p(0.99),
        v[v.len() - 1]
    )
}

fn table(title: &str, counts: &BTreeMap<String, usize>) {
    let total: usize = counts.values().sum();
    let w = counts
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(title.len());
    println!("{title:<w$}  {:>8}  {:>6}", "rows", "share");
    for (k, n) in counts {
        println!(
            "{k:<w$}  {n:>8}  {:>5.1}%",
            100.0 * *n as f64 / total.max(1) as f64
        );
    }
    println!();
}

fn inspect(files: &[PathBuf], format: Option<Format>) -> anyhow::Result<()> {
    let opts = LoadOptions {
        format,
        skip_invalid: true,
        ..Default::default()
    };
    let builder = PromptBuilder::default();
    let (mut by_source, mut by_kind, mut by_split, mut by_answer, mut by_file) = (
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
    );
    let (mut chars, mut words) = (Vec::new(), Vec::new());
    let mut rejected = 0;
    for f in files {
        let l = load_path(f, &opts)?;
        rejected += l.rejected.len();
        by_file.insert(format!("{} ({})", f.display(), l.format), l.samples.len());
        for s in &l.samples {
            *by_source.entry(s.source.clone()).or_insert(0) += 1;
            *by_kind.entry(kind_name(s.kind()).to_string()).or_insert(0) += 1;
            *by_split.entry(s.split.clone()).or_insert(0) += 1;
            *by_answer.entry(answer_type(s)).or_insert(0) += 1;
            let prompt = match &s.rendered_prompt {
                Some(p) => p.clone(),
                None => builder.render(s, s.budget)?,
            };
            chars.push(prompt.chars().count());
            words.push(medu1_core::pywhite::py_split(&prompt).count());
        }
    }
    table("file", &by_file);
    table("source", &by_source);
    table("task kind", &by_kind);
    table("split", &by_split);
    table("answer type", &by_answer);
    println!("prompt length (characters)        {}", percentiles(chars));
    println!("prompt length (whitespace tokens) {}", percentiles(words));
    if rejected > 0 {
        println!(
            "\n{rejected} rows could not be read (run `medu1 data prepare --skip-invalid` to list them)"
        );
    }
    Ok(())
}

fn kind_name(k: TaskKind) -> &'static str {
    match k {
        TaskKind::MultipleChoice => "multiple choice",
        TaskKind::Calculation => "calculation",
        TaskKind::FreeText => "free text",
    }
}

fn parse_dist(s: &str) -> Result<BudgetDist, String> {
    match s {
        "uniform" => Ok(BudgetDist::Uniform),
        "log-uniform" | "log_uniform" => Ok(BudgetDist::LogUniform),
        _ => Err(format!("`{s}`: expected uniform or log-uniform")),
    }
}
