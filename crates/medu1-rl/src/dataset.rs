//! The prompt pool: training and validation items loaded from any supported file, rendered into
//! Med-U1 prompts with the model's chat template, tokenized once, and drawn per step by weight.
//!
//! Drawing is a pure function of (seed, step) plus per-source cursors, so a resumed run draws
//! exactly the prompts an uninterrupted one would.

use std::path::PathBuf;

use medu1_core::{Budget, Sample, Task};
use medu1_data::{BudgetMode, BudgetSampler, ChatTemplate, PromptBuilder, Variant};
use medu1_model::Tokenizer;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{DataConfig, DataFile};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Load(#[from] medu1_data::LoadError),
    #[error("{path}: rendering the prompt of item {index}: {message}")]
    Render {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error("{path}: tokenizing item {index}: {message}")]
    Tokenize {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error(
        "invalid data.budget `{0}`: use keep, none, exact, max, log, both, both-both or fixed:K"
    )]
    Budget(String),
    #[error("invalid data.budget_range")]
    BudgetRange(#[from] medu1_data::BudgetRangeError),
    #[error("invalid data.variant `{0}`: use released or script")]
    Variant(String),
    #[error(
        "{path}: no item left after skip/limit and the {max} token prompt filter ({filtered} filtered)"
    )]
    Empty {
        path: PathBuf,
        max: usize,
        filtered: usize,
    },
}

/// One prompt ready for rollouts.
#[derive(Debug, Clone)]
pub struct PromptItem {
    pub sample: Sample,
    /// The templated prompt text (plus the prefill), exactly what the model continues.
    pub text: String,
    pub ids: Vec<u32>,
    /// Tokens of the prefill at the end of `ids` (they count as response for the length term).
    pub prefill_tokens: usize,
    pub budget: Budget,
    /// The ground truth as the reward receives it.
    pub ground_truth: String,
}

impl PromptItem {
    pub fn limits(&self) -> (Option<&str>, Option<&str>) {
        match &self.sample.task {
            Task::Calculation {
                lower_limit,
                upper_limit,
                ..
            } => (lower_limit.as_deref(), upper_limit.as_deref()),
            _ => (None, None),
        }
    }
}

/// Items of one file.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub weight: f64,
    pub items: Vec<PromptItem>,
    /// Items dropped by the prompt-length filter.
    pub filtered: usize,
}

/// How prompts are rendered and tokenized.
#[derive(Debug)]
pub struct PromptRenderer<'a> {
    pub builder: PromptBuilder,
    pub double_template: bool,
    pub prefill: String,
    pub tokenizer: &'a Tokenizer,
}

impl PromptRenderer<'_> {
    pub fn new<'a>(
        cfg: &DataConfig,
        prefill: &str,
        tokenizer: &'a Tokenizer,
    ) -> Result<PromptRenderer<'a>, DataError> {
        let variant = match cfg.variant.as_str() {
            "released" | "released-parquet" | "parquet" => Variant::ReleasedParquet,
            "script" | "published-script" => Variant::PublishedScript,
            v => return Err(DataError::Variant(v.to_string())),
        };
        let template = chat_template(&cfg.chat_template, tokenizer);
        Ok(PromptRenderer {
            builder: PromptBuilder::new(variant).with_template(template),
            double_template: cfg.double_template,
            prefill: prefill.to_string(),
            tokenizer,
        })
    }
}

/// The chat template named by `data.chat_template`; `model` uses the model's own (falling back to
/// ChatML when it ships none or its template cannot be parsed).
pub fn chat_template(name: &str, tokenizer: &Tokenizer) -> ChatTemplate {
    if name == "model" {
        if let Some(src) = &tokenizer.chat_template {
            let tok = |id: Option<u32>| {
                id.and_then(|i| tokenizer.decode(&[i], false).ok())
                    .unwrap_or_default()
            };
            if let Ok(t) =
                ChatTemplate::from_jinja(src, &tok(tokenizer.bos_id), &tok(tokenizer.eos_id))
            {
                return t;
            }
        }
        return ChatTemplate::smollm2();
    }
    ChatTemplate::from_name_or_file(name).unwrap_or_else(|_| ChatTemplate::smollm2())
}

/// The budget mode `data.budget` names (`None` for `keep`), its range checked.
pub fn budget_mode(cfg: &DataConfig) -> Result<Option<BudgetMode>, DataError> {
    cfg.budget_range.validate()?;
    match cfg.budget.as_str() {
        "keep" => Ok(None),
        m => Ok(Some(
            m.parse().map_err(|_| DataError::Budget(m.to_string()))?,
        )),
    }
}

/// Loads, renders and tokenizes every file of `files`.
pub fn load_sources(
    files: &[DataFile],
    cfg: &DataConfig,
    renderer: &PromptRenderer<'_>,
    seed: u64,
) -> Result<Vec<Source>, DataError> {
    let mode = budget_mode(cfg)?;
    let mut out = Vec::with_capacity(files.len());
    for (fi, f) in files.iter().enumerate() {
        let loaded = medu1_data::load_path(&f.path, &medu1_data::LoadOptions::default())?;
        let mut sampler = mode.map(|m| {
            BudgetSampler::with_range(m, (seed as i64).wrapping_add(fi as i64), cfg.budget_range)
        });
        let take = f.limit.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut filtered = 0;
        for (index, sample) in loaded
            .samples
            .into_iter()
            .enumerate()
            .skip(f.skip)
            .take(take)
        {
            let budget = match &mut sampler {
                Some(s) => s.next(),
                None => sample.budget,
            };
            let rendered = if renderer.double_template {
                renderer.builder.render_training(&sample, budget)
            } else {
                renderer.builder.render(&sample, budget)
            }
            .map_err(|e| DataError::Render {
                path: f.path.clone(),
                index,
                message: e.to_string(),
            })?;
            let text = format!("{rendered}{}", renderer.prefill);
            let ids = renderer
                .tokenizer
                .encode(&text)
                .map_err(|e| DataError::Tokenize {
                    path: f.path.clone(),
                    index,
                    message: e.to_string(),
                })?;
            if ids.len() > cfg.max_prompt_tokens {
                filtered += 1;
                continue;
            }
            let prefill_tokens = if renderer.prefill.is_empty() {
                0
            } else {
                renderer
                    .tokenizer
                    .encode(&renderer.prefill)
                    .map(|v| v.len())
                    .unwrap_or(0)
            };
            let ground_truth = medu1_data::prompt::ground_truth(&sample, renderer.builder.variant);
            items.push(PromptItem {
                sample,
                text,
                ids,
                prefill_tokens,
                budget,
                ground_truth,
            });
        }
        if items.is_empty() {
            return Err(DataError::Empty {
                path: f.path.clone(),
                max: cfg.max_prompt_tokens,
                filtered,
            });
        }
        out.push(Source {
            path: f.path.clone(),
            weight: f.weight,
            items,
            filtered,
        });
    }
    Ok(out)
}

/// Where each source's walk through its shuffled items stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Items drawn so far from each source (across epochs).
    pub consumed: Vec<u64>,
}

/// Deterministic weighted drawing of prompts.
#[derive(Debug)]
pub struct PromptPool {
    pub sources: Vec<Source>,
    seed: u64,
    pub cursor: Cursor,
}

fn mix(a: u64, b: u64) -> u64 {
    medu1_model::sampling::stream_seed(a, b as usize, 0x5eed)
}

impl PromptPool {
    pub fn new(sources: Vec<Source>, seed: u64) -> PromptPool {
        let n = sources.len();
        PromptPool {
            sources,
            seed,
            cursor: Cursor {
                consumed: vec![0; n],
            },
        }
    }

    pub fn len(&self) -> usize {
        self.sources.iter().map(|s| s.items.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k`-th item of `source` in its shuffled order (a fresh permutation each epoch).
    fn nth(&self, source: usize, k: u64) -> (usize, usize) {
        let items = self.sources[source].items.len() as u64;
        let epoch = k / items;
        let mut order: Vec<usize> = (0..items as usize).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed ^ (source as u64) << 32, epoch));
        order.shuffle(&mut rng);
        (source, order[(k % items) as usize])
    }

    /// The `count` prompts of training step `step` (source by weight, then the next item of that
    /// source), advancing the cursor.
    pub fn draw(&mut self, step: u64, count: usize) -> Vec<(usize, usize)> {
        let total: f64 = self.sources.iter().map(|s| s.weight).sum();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, step));
        (0..count)
            .map(|_| {
                let mut x = rng.random::<f64>() * total;
                let mut src = self.sources.len() - 1;
                for (i, s) in self.sources.iter().enumerate() {
                    if x < s.weight {
                        src = i;
                        break;
                    }
                    x -= s.weight;
                }
                let k = self.cursor.consumed[src];
                self.cursor.consumed[src] += 1;
                self.nth(src, k)
            })
            .collect()
    }

    pub fn item(&self, at: (usize, usize)) -> &PromptItem {
        &self.sources[at.0].items[at.1]
    }

    /// Every item, in file order (validation).
    pub fn all(&self) -> Vec<(usize, usize)> {
        self.sources
            .iter()
            .enumerate()
            .flat_map(|(s, src)| (0..src.items.len()).map(move |i| (s, i)))
            .collect()
    }
}
