//! The evaluation loop: load each benchmark, build Med-U1 prompts, generate with a [`Backend`],
//! grade, and append every finished item to the per-item log before moving on; then aggregate the
//! log into the reports.
//!
//! The log, not memory, is the source of truth for the report: a run that was killed and resumed
//! and a run that went through in one go read the same lines and produce the same report.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use medu1_core::{Budget, Sample};
use medu1_data::prompt::{ground_truth, messages};
use medu1_data::{BudgetMode, BudgetSampler, ChatTemplate, LoadOptions, Variant};
use medu1_reward::Profile;

use crate::backend::{Backend, GenParams, Prompt};
use crate::error::EvalError;
use crate::metrics::{BenchmarkStats, all_stats};
pub use crate::record::{ItemRecord, ResponseRecord, RunMeta};
use crate::report::{ReportMeta, ReportPaths, write_reports};
use crate::resume::{LogWriter, read_log};
use crate::score::{Rule, grade, rule_name};

/// The per-item log inside the output folder.
pub const ITEMS_FILE: &str = "items.jsonl";
/// The settings a log was produced with, checked on resume.
pub const RUN_FILE: &str = "run.json";

/// One benchmark file.
#[derive(Debug, Clone, PartialEq)]
pub struct Benchmark {
    pub name: String,
    pub path: PathBuf,
    /// Keep only samples of this split.
    pub split: Option<String>,
}

/// Where each item's length budget comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BudgetSpec {
    /// The budget the file carries (verl rows), and their rendered prompt verbatim.
    File,
    /// Drawn per item in file order, seeded, as the reference data script draws them.
    Mode(BudgetMode),
}

impl std::fmt::Display for BudgetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetSpec::File => f.write_str("file"),
            BudgetSpec::Mode(m) => write!(f, "{m}"),
        }
    }
}

/// Everything a run needs besides the backend.
#[derive(Debug)]
pub struct RunConfig {
    pub out_dir: PathBuf,
    pub benchmarks: Vec<Benchmark>,
    /// First `limit` items of each benchmark.
    pub limit: Option<usize>,
    /// Samples per item.
    pub n: usize,
    pub params: GenParams,
    pub budget: BudgetSpec,
    pub budget_seed: i64,
    pub rule: Rule,
    pub profile: Profile,
    pub variant: Variant,
    pub template: ChatTemplate,
    /// How the template was chosen (for the report and the resume check).
    pub template_name: String,
    /// Draw the PNG chart.
    pub plot: bool,
}

/// Progress of a run, for progress bars.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress<'a> {
    pub benchmark: &'a str,
    /// Items of this benchmark finished (including resumed ones).
    pub done: usize,
    pub total: usize,
    /// Items of this benchmark taken from an earlier run.
    pub resumed: usize,
}

/// What [`run`] produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub stats: Vec<BenchmarkStats>,
    pub paths: ReportPaths,
    /// Items taken from the log of an earlier run.
    pub resumed: usize,
    /// Items generated in this run.
    pub generated: usize,
    /// The records the report was computed from: this run's selection, one per item, sorted by
    /// benchmark and index (a budget sweep aggregates them across its sub-runs).
    pub records: Vec<ItemRecord>,
}

struct Item {
    index: usize,
    sample: Sample,
    budget: Budget,
    prompt: Prompt,
    ground_truth: String,
}

fn load_items(b: &Benchmark, cfg: &RunConfig) -> Result<Vec<Item>, EvalError> {
    let loaded = medu1_data::load_path(&b.path, &LoadOptions::default())?;
    let mut sampler = match cfg.budget {
        BudgetSpec::Mode(m) => Some(BudgetSampler::new(m, cfg.budget_seed)),
        BudgetSpec::File => None,
    };
    let mut items = Vec::new();
    for (index, sample) in loaded.samples.into_iter().enumerate() {
        // Drawn for every sample, kept or not, so an item's budget does not depend on --limit.
        let budget = match sampler.as_mut() {
            Some(s) => s.next(),
            None => sample.budget,
        };
        if b.split.as_ref().is_some_and(|s| *s != sample.split) {
            continue;
        }
        if cfg.limit.is_some_and(|l| items.len() >= l) {
            break;
        }
        let msgs = messages(&sample, cfg.variant, budget);
        // `PromptBuilder::render`, with the run's template.
        let text = match (&cfg.budget, &sample.rendered_prompt) {
            (BudgetSpec::File, Some(p)) => p.clone(),
            _ => cfg
                .template
                .render(&msgs, true)
                .map_err(|e| EvalError::Prompt {
                    path: b.path.clone(),
                    id: sample.id.clone(),
                    message: medu1_core::error::chain(&e),
                })?,
        };
        let prompt = Prompt {
            text,
            messages: msgs,
            seed: item_seed(cfg.params.seed, &b.name, index),
        };
        items.push(Item {
            index,
            ground_truth: ground_truth(&sample, cfg.variant),
            sample,
            budget,
            prompt,
        });
    }
    Ok(items)
}

/// splitmix64 over the run seed, the benchmark name and the item index.
fn item_seed(seed: u64, benchmark: &str, index: usize) -> u64 {
    let mut z = seed ^ (index as u64).wrapping_mul(medu1_core::seed::GOLDEN);
    for b in benchmark.bytes() {
        z = (z ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
    }
    medu1_core::seed::mix64(z)
}

fn check_meta(path: &Path, now: &RunMeta) -> Result<(), EvalError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let json = serde_json::to_vec_pretty(now).expect("meta serializes");
            return medu1_core::atomic::write_atomic(path, &json).map_err(EvalError::io(path));
        }
        Err(e) => return Err(EvalError::io(path)(e)),
    };
    let was: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| EvalError::Resume {
        path: path.to_path_buf(),
        line: e.line(),
        message: e.to_string(),
    })?;
    // Through text, as the file was written: `to_value` would widen f32 fields (0.8 becomes
    // 0.800000011920929) and never match what the file holds.
    let now_v: serde_json::Value =
        serde_json::from_slice(&serde_json::to_vec(now).expect("meta serializes"))
            .expect("meta round-trips");
    for (k, v) in now_v.as_object().expect("struct is an object") {
        let old = was.get(k).cloned().unwrap_or(serde_json::Value::Null);
        if old != *v {
            return Err(EvalError::ConfigMismatch {
                path: path.to_path_buf(),
                field: k.clone(),
                was: old.to_string(),
                now: v.to_string(),
            });
        }
    }
    Ok(())
}

/// Runs (or resumes) an evaluation and writes its reports. `on_progress` is called after every
/// batch.
pub fn run(
    backend: &dyn Backend,
    cfg: &RunConfig,
    on_progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<RunSummary, EvalError> {
    let meta = RunMeta {
        backend: backend.describe(),
        n: cfg.n,
        params: cfg.params.clone(),
        budget: cfg.budget.to_string(),
        budget_seed: cfg.budget_seed,
        rule: cfg.rule.to_string(),
        profile: cfg.profile.name.clone(),
        variant: cfg.variant.to_string(),
        template: cfg.template_name.clone(),
    };
    std::fs::create_dir_all(&cfg.out_dir).map_err(EvalError::io(&cfg.out_dir))?;
    check_meta(&cfg.out_dir.join(RUN_FILE), &meta)?;
    let log_path = cfg.out_dir.join(ITEMS_FILE);
    let mut records = read_log(&log_path)?;
    let done: HashSet<(String, usize)> = records
        .iter()
        .map(|r| (r.benchmark.clone(), r.index))
        .collect();
    let mut log = LogWriter::open(&log_path)?;
    let mut selected: HashSet<(String, usize)> = HashSet::new();
    let (mut resumed, mut generated) = (0, 0);
    let n = cfg.n.max(1);
    for b in &cfg.benchmarks {
        let items = load_items(b, cfg)?;
        let total = items.len();
        let (mut pending, old): (Vec<Item>, Vec<Item>) = items
            .into_iter()
            .partition(|it| !done.contains(&(b.name.clone(), it.index)));
        // Batches of similar prompt length: a batched prefill pads every prompt to the longest,
        // and benchmark prompts (MedCalc patient notes) vary several-fold in length. The order
        // of work does not change any result (per-item seeds, report sorted by index).
        pending.sort_by_key(|it| it.prompt.text.len());
        for it in &old {
            selected.insert((b.name.clone(), it.index));
        }
        resumed += old.len();
        let mut finished = old.len();
        on_progress(&Progress {
            benchmark: &b.name,
            done: finished,
            total,
            resumed: old.len(),
        });
        for chunk in pending.chunks(backend.preferred_batch().max(1)) {
            let prompts: Vec<Prompt> = chunk.iter().map(|it| it.prompt.clone()).collect();
            let gens = backend.generate(&prompts, &cfg.params, n)?;
            if gens.len() != chunk.len() || gens.iter().any(|g| g.len() != n) {
                return Err(EvalError::BackendShape {
                    expected: chunk.len(),
                    got: gens.len(),
                });
            }
            let new: Vec<ItemRecord> = chunk
                .iter()
                .zip(gens)
                .map(|(it, gs)| {
                    let num_tokens = it.budget.num_tokens();
                    let responses = gs
                        .into_iter()
                        .map(|g| {
                            let v = grade(
                                cfg.rule,
                                &cfg.profile,
                                &it.sample,
                                &it.ground_truth,
                                &it.prompt.text,
                                &g,
                                num_tokens,
                            );
                            ResponseRecord {
                                text: g.text,
                                tokens: g.tokens,
                                finish: g.finish,
                                extracted: v.extracted,
                                correct: v.correct,
                                format_ok: v.format_ok,
                                train_reward: v.train_reward,
                                error: g.error.or(v.error),
                            }
                        })
                        .collect();
                    ItemRecord {
                        benchmark: b.name.clone(),
                        index: it.index,
                        id: it.sample.id.clone(),
                        source: it.sample.source.clone(),
                        kind: it.sample.kind().to_string(),
                        rule: rule_name(cfg.rule, &it.sample).to_string(),
                        num_tokens,
                        ground_truth: it.ground_truth.clone(),
                        prompt: it.prompt.text.clone(),
                        responses,
                    }
                })
                .collect();
            log.append(&new)?;
            for r in &new {
                selected.insert((r.benchmark.clone(), r.index));
            }
            finished += new.len();
            generated += new.len();
            records.extend(new);
            on_progress(&Progress {
                benchmark: &b.name,
                done: finished,
                total,
                resumed: old.len(),
            });
        }
    }
    // The report covers exactly this run's selection, one record per item (the last written).
    let mut last: HashMap<(String, usize), ItemRecord> = HashMap::new();
    for r in records {
        let key = (r.benchmark.clone(), r.index);
        if selected.contains(&key) {
            last.insert(key, r);
        }
    }
    let mut chosen: Vec<ItemRecord> = last.into_values().collect();
    chosen.sort_by(|a, b| (&a.benchmark, a.index).cmp(&(&b.benchmark, b.index)));
    let order: Vec<String> = cfg.benchmarks.iter().map(|b| b.name.clone()).collect();
    let stats = all_stats(&order, &chosen);
    let report_meta = ReportMeta {
        run: meta,
        limit: cfg.limit,
    };
    let paths = write_reports(&cfg.out_dir, &report_meta, &stats, cfg.plot)?;
    Ok(RunSummary {
        stats,
        paths,
        resumed,
        generated,
        records: chosen,
    })
}

/// How many items a run of `cfg` covers (after `split` and `limit`), for a progress bar that
/// spans several runs. Loads every benchmark file once.
pub fn count_items(cfg: &RunConfig) -> Result<usize, EvalError> {
    let mut total = 0;
    for b in &cfg.benchmarks {
        total += load_items(b, cfg)?.len();
    }
    Ok(total)
}
