//! Supervised warm-up (cold start): cross-entropy on response tokens only, so a small model learns
//! the `<think>…</think><answer>…</answer>` format before GRPO. Without it the embedded 135M model
//! answers in no format at all, every GRPO group gets identical rewards and learns nothing.
//!
//! Targets are built in [`crate::target`]; any JSONL of
//! `{"prompt", "response"}` pairs works too. Examples are drawn per step from a seeded permutation
//! and bucketed by length into micro-batches; checkpoints and resume work as in GRPO.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Tensor;
use candle_core::backprop::GradStore;
use medu1_core::{Budget, Sample};
use medu1_data::BudgetSampler;
use medu1_model::{Model, Tokenizer};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::batch::{Sequence, masked_sum, pack, response_logprobs};
use crate::checkpoint::TrainerState;
use crate::config::DataFile;
pub use crate::config::{BudgetScaffold, SftConfig};
use crate::copies::dropout_view;
use crate::dataset::{Cursor, DataError, PromptRenderer};
use crate::error::{Result, TrainError};
use crate::metrics::{MetricsLog, Record};
use crate::optim::{AdamW, clip_grad_norm};
use crate::run::{self, CheckpointHook};
pub use crate::target::{
    LengthTarget, StepFit, fit_steps_to_budget, fit_to_budget, length_target, plan_span,
    scaffold_target, sft_target,
};

/// The second word of the warm-up's dropout keys (GRPO's is the PPO epoch, a small number).
const SFT_DROPOUT_KEY: u64 = 0x5f7_d40_u64;

/// One tokenized example.
#[derive(Debug, Clone)]
pub struct Example {
    pub prompt: Vec<u32>,
    /// Target tokens, ending with the end-of-sequence token.
    pub response: Vec<u32>,
    /// Response tokens whose loss counts `plan_weight` times (the step count of a `steps`
    /// scaffold's plan); empty for none.
    pub emphasis: std::ops::Range<usize>,
}

/// Loads examples: Med-U1-style sources through the prompt builder, or `{"prompt", "response"}`
/// JSONL pairs (the prompt is a user message, templated with the chat template).
pub fn load_examples(
    files: &[DataFile],
    cfg: &SftConfig,
    renderer: &PromptRenderer<'_>,
) -> Result<(Vec<Example>, usize)> {
    let tok = renderer.tokenizer;
    let eos = tok
        .eos_id
        .or_else(|| tok.default_stop_ids().first().copied());
    let mut out = Vec::new();
    let mut dropped = 0;
    for (fi, f) in files.iter().enumerate() {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let pairs_file = read_pairs(&f.path)?;
        let sliced = pairs_file.is_none();
        if let Some(p) = pairs_file {
            let template = &renderer.builder.template;
            for (user, response) in p {
                let prompt = template
                    .render(&[medu1_data::Message::user(user)], true)
                    .map_err(|e| DataError::Render {
                        path: f.path.clone(),
                        index: pairs.len(),
                        message: e.to_string(),
                    })?;
                pairs.push((prompt, response));
            }
        } else {
            let loaded = medu1_data::load_path(&f.path, &medu1_data::LoadOptions::default())
                .map_err(DataError::from)?;
            let mut fitter = if cfg.fit_budget {
                Some(BudgetFitter::new(cfg, fi)?)
            } else {
                None
            };
            let copies = if cfg.fit_budget {
                cfg.budget_copies.max(1)
            } else {
                1
            };
            // skip/limit count items of the file (not targets or copies), as in GRPO.
            let take = f.limit.unwrap_or(usize::MAX);
            for (index, s) in loaded.samples.iter().enumerate().skip(f.skip).take(take) {
                for _ in 0..copies {
                    let fitted = match &mut fitter {
                        Some(fit) => {
                            fit.target(s, tok, usize::from(eos.is_some()))
                                .map_err(|e| DataError::Tokenize {
                                    path: f.path.clone(),
                                    index,
                                    message: e.to_string(),
                                })?
                        }
                        None => sft_target(s).map(|t| (t, s.budget)),
                    };
                    let Some((target, budget)) = fitted else {
                        dropped += 1;
                        continue;
                    };
                    let prompt =
                        renderer
                            .builder
                            .render(s, budget)
                            .map_err(|e| DataError::Render {
                                path: f.path.clone(),
                                index,
                                message: e.to_string(),
                            })?;
                    pairs.push((prompt, target));
                }
            }
        }
        let (skip, take) = if sliced {
            (0, usize::MAX)
        } else {
            (f.skip, f.limit.unwrap_or(usize::MAX))
        };
        for (index, (prompt, response)) in pairs.into_iter().enumerate().skip(skip).take(take) {
            let enc = |t: &str| {
                tok.encode(t).map_err(|e| DataError::Tokenize {
                    path: f.path.clone(),
                    index,
                    message: e.to_string(),
                })
            };
            let p = enc(&prompt)?;
            let mut r = enc(&response)?;
            r.extend(eos);
            if p.len() + r.len() > cfg.max_seq_tokens {
                dropped += 1;
                continue;
            }
            let emphasis = match cfg.budget_scaffold {
                BudgetScaffold::Steps if cfg.fit_budget => plan_tokens(&response, &r, tok)
                    .map_err(|e| DataError::Tokenize {
                        path: f.path.clone(),
                        index,
                        message: e.to_string(),
                    })?,
                _ => 0..0,
            };
            out.push(Example {
                prompt: p,
                response: r,
                emphasis,
            });
        }
    }
    Ok((out, dropped))
}

/// `mask` (`[b, R]`) with each example's emphasised tokens weighted `plan_weight`.
fn weighted_mask(examples: &[&Example], mask: &Tensor, plan_weight: f64) -> Result<Tensor> {
    if plan_weight == 1.0 || examples.iter().all(|e| e.emphasis.is_empty()) {
        return Ok(mask.clone());
    }
    let (b, r) = mask.dims2()?;
    let mut w = mask.flatten_all()?.to_vec1::<f32>()?;
    for (i, e) in examples.iter().enumerate() {
        for j in e.emphasis.clone().filter(|&j| j < r) {
            w[i * r + j] *= plan_weight as f32;
        }
    }
    Ok(Tensor::from_vec(w, (b, r), mask.device())?)
}

/// The response tokens that spell the plan's step count ("3" in "Budget 128: 3 steps."), or an
/// empty range when the text has no plan or its tokens do not split at the number's edges.
fn plan_tokens(
    text: &str,
    ids: &[u32],
    tok: &Tokenizer,
) -> medu1_model::Result<std::ops::Range<usize>> {
    let Some(span) = plan_span(text) else {
        return Ok(0..0);
    };
    let before = tok.encode(&text[..span.start])?;
    let through = tok.encode(&text[..span.end])?;
    let splits = ids.starts_with(&through) && through.starts_with(&before);
    Ok(if splits && through.len() > before.len() {
        before.len()..through.len()
    } else {
        0..0
    })
}

/// Draws each example's budget and fits its target to it (`fit_budget`).
#[derive(Debug)]
struct BudgetFitter {
    sampler: BudgetSampler,
    rng: ChaCha8Rng,
    scaffold: BudgetScaffold,
    step_tokens: usize,
}

impl BudgetFitter {
    fn new(cfg: &SftConfig, file: usize) -> Result<BudgetFitter> {
        let (data, seed) = (&cfg.data, cfg.seed);
        let mode = crate::dataset::budget_mode(data)?.ok_or_else(|| {
            crate::config::ConfigError::Invalid(
                "fit_budget needs a drawing data.budget mode (exact, max, both, both-both, ...), not `keep`"
                    .into(),
            )
        })?;
        let s = (seed as i64).wrapping_add(file as i64);
        Ok(BudgetFitter {
            sampler: BudgetSampler::with_range(mode, s, data.budget_range),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xb0d6e7 ^ file as u64),
            scaffold: cfg.budget_scaffold,
            step_tokens: cfg.step_tokens,
        })
    }

    /// The target and the budget its prompt states, or `None` when the sample has no target.
    fn target(
        &mut self,
        s: &Sample,
        tok: &Tokenizer,
        eos: usize,
    ) -> medu1_model::Result<Option<(String, Budget)>> {
        let budget = self.sampler.next();
        let target = match self.scaffold {
            BudgetScaffold::Cut => length_target(s),
            BudgetScaffold::Steps => scaffold_target(s),
        };
        let Some(t) = target else {
            return Ok(None);
        };
        let (scaffold, step_tokens) = (self.scaffold, self.step_tokens);
        let fit = |want: usize, header: &str, rule: StepFit| match scaffold {
            BudgetScaffold::Cut => fit_to_budget(&t, want, tok, eos),
            BudgetScaffold::Steps => {
                fit_steps_to_budget(&t, header, want, rule, step_tokens, tok, eos)
                    .map(|(t, n, _)| (t, n))
            }
        };
        Ok(Some(match budget {
            Budget::None => (fit(usize::MAX, "", StepFit::Under)?.0, Budget::None),
            Budget::Exact(n) => match scaffold {
                // A cut target is as long as its budget (a word either way), and the budget is
                // then set to its true length, so the prompt's sentence is true of it.
                BudgetScaffold::Cut => {
                    let (text, len) = fit(n as usize, "", StepFit::Under)?;
                    (text, Budget::Exact(len as u64))
                }
                // A stepped target is within half a step of its budget, which stays as drawn:
                // relabelling it to the true length would leave every budget between two step
                // counts unseen in training (the second run's model then planned one step at
                // 32 and 64 alike).
                BudgetScaffold::Steps => {
                    let header = format!("Budget {n}");
                    (fit(n as usize, &header, StepFit::Nearest)?.0, budget)
                }
            },
            Budget::Maximum(m) => {
                let share = self.rng.random_range(0.6..=1.0);
                let want = ((m as f64 * share).round() as usize).max(1);
                let header = |m: u64| format!("Max {m}");
                let mut stated = m;
                let (mut text, mut len) = fit(want, &header(stated), StepFit::Under)?;
                // A target that cannot be cut below the maximum gets a maximum it keeps.
                for _ in 0..4 {
                    if len as u64 <= stated {
                        break;
                    }
                    stated = len as u64;
                    (text, len) = fit(want, &header(stated), StepFit::Under)?;
                }
                (text, Budget::Maximum(stated.max(len as u64)))
            }
        }))
    }
}

/// `{"prompt": ..., "response": ...}` lines, if the file is such a JSONL (else `None`).
fn read_pairs(path: &Path) -> Result<Option<Vec<(String, String)>>> {
    if path.extension().is_none_or(|e| e != "jsonl") {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| TrainError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("line {}: {e}", i + 1)),
        })?;
        let (Some(p), Some(r)) = (v.get("prompt"), v.get("response")) else {
            // Not a pairs file: let the benchmark loaders handle it.
            return Ok(None);
        };
        match (p.as_str(), r.as_str()) {
            (Some(p), Some(r)) => out.push((p.to_string(), r.to_string())),
            _ => {
                return Err(TrainError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::other(format!(
                        "line {}: field `prompt`/`response`: expected strings",
                        i + 1
                    )),
                });
            }
        }
    }
    Ok(Some(out))
}

#[derive(Debug)]
pub struct Sft {
    pub cfg: SftConfig,
    pub policy: Model,
    pub tokenizer: Tokenizer,
    pub train: Vec<Example>,
    pub val: Vec<Example>,
    pub dropped: usize,
    pub opt: AdamW,
    pub step: u64,
    consumed: u64,
    pub run_dir: PathBuf,
    pub metrics: MetricsLog,
    /// Called inside every checkpoint write (fault-injection tests).
    pub checkpoint_hook: Option<CheckpointHook>,
}

impl Sft {
    pub fn new(
        cfg: SftConfig,
        policy: Model,
        tokenizer: Tokenizer,
        start: impl Into<run::Start>,
    ) -> Result<Sft> {
        let start = start.into();
        cfg.validate("")?;
        let renderer = PromptRenderer::new(&cfg.data, "", &tokenizer)?;
        let (train, d1) = load_examples(&cfg.train, &cfg, &renderer)?;
        let (mut val, d2) = load_examples(&cfg.val, &cfg, &renderer)?;
        if cfg.val_limit > 0 {
            val.truncate(cfg.val_limit);
        }
        if train.is_empty() {
            return Err(crate::config::ConfigError::Invalid(
                "the warm-up has no training example (check sft train files and max_seq_tokens)"
                    .into(),
            )
            .into());
        }
        let mut policy = policy;
        policy.set_activation_checkpointing(cfg.optim.activation_checkpointing);
        let mut opt = run::optimizer(&policy, &cfg.optim)?;
        let run_dir = cfg.out_dir.clone();
        run::prepare_run_dir(&run_dir, start)?;
        let (mut step, mut consumed, mut restored) = (0, 0, None);
        if start == run::Start::Resume
            && let Some(r) = run::resume(&run_dir, "sft", &policy, &mut opt)?
        {
            step = r.state.step;
            consumed = r.state.cursor.consumed.first().copied().unwrap_or(0);
            restored = r.metrics_row;
        }
        let metrics = run::open_run(&run_dir, step, restored, "sft_config.toml", &cfg)?;
        Ok(Sft {
            cfg,
            policy,
            tokenizer,
            train,
            val,
            dropped: d1 + d2,
            opt,
            step,
            consumed,
            run_dir,
            metrics,
            checkpoint_hook: None,
        })
    }

    fn example(&self, k: u64) -> &Example {
        let n = self.train.len() as u64;
        let mut order: Vec<usize> = (0..n as usize).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            self.cfg.seed ^ (k / n).wrapping_mul(0x9e37),
        ));
        &self.train[order[(k % n) as usize]]
    }

    /// An example's total loss weight: its tokens, the emphasised ones `plan_weight` times.
    fn weight_of(&self, e: &Example) -> f64 {
        e.response.len() as f64 + (self.cfg.plan_weight - 1.0) * e.emphasis.len() as f64
    }

    /// Mean token cross-entropy of `examples` under `policy` (this trainer's policy, or a view of
    /// it with dropout masks drawn); with `grads`, also accumulates the gradient of the weighted
    /// loss.
    fn loss_of(
        &self,
        policy: &Model,
        examples: &[&Example],
        grads: Option<(f64, &mut Option<GradStore>)>,
    ) -> Result<(f64, f64)> {
        let seqs: Vec<Sequence> = examples
            .iter()
            .map(|e| Sequence {
                prompt: e.prompt.clone(),
                response: e.response.clone(),
                advantage: 0.0,
            })
            .collect();
        let packed = pack(&seqs.iter().collect::<Vec<_>>(), policy.device())?;
        let (lp, _) = response_logprobs(policy, &packed, 1.0, false)?;
        let (s, n) = masked_sum(&lp.detach(), &packed.mask)?;
        if let Some((total_weight, acc)) = grads {
            let weights = weighted_mask(examples, &packed.mask, self.cfg.plan_weight)?;
            // Σ w·(-log p) / (weight of the whole step): micro-batches add up to the step's
            // weighted token mean (the plain token mean when no token is emphasised).
            let loss = ((lp * &weights)?.sum_all()?.neg()? / total_weight)?;
            let vars = self.opt.vars().to_vec();
            run::accumulate(acc, policy.backward(&loss)?, &vars)?;
        }
        Ok((-s, n))
    }

    pub fn step(&mut self) -> Result<Record> {
        let t = Instant::now();
        let step = self.step + 1;
        let bs = self.cfg.batch_size.max(1);
        let mut batch: Vec<Example> = (0..bs as u64)
            .map(|i| self.example(self.consumed + i).clone())
            .collect();
        self.consumed += bs as u64;
        // Length buckets: similar lengths share a micro-batch, so little compute goes to padding.
        batch.sort_by_key(|e| e.prompt.len() + e.response.len());
        let total_weight: f64 = batch.iter().map(|e| self.weight_of(e)).sum();
        let mut grads = None;
        let (mut nll, mut tok) = (0.0, 0.0);
        for (ci, chunk) in batch
            .chunks(self.cfg.optim.micro_batch_size.max(1))
            .enumerate()
        {
            let refs: Vec<&Example> = chunk.iter().collect();
            // LoRA dropout masks drawn from the seed, the step and the micro-batch (as GRPO
            // draws them, under a key of its own), so a resumed warm-up draws the same ones.
            let key = [step, SFT_DROPOUT_KEY, ci as u64];
            let dropped = dropout_view(&self.policy, self.cfg.seed, key);
            let policy = dropped.as_ref().unwrap_or(&self.policy);
            let (s, n) = self.loss_of(policy, &refs, Some((total_weight, &mut grads)))?;
            nll += s;
            tok += n;
        }
        let mut grads = grads.unwrap_or_default();
        let vars = self.opt.vars().to_vec();
        let norm = clip_grad_norm(&vars, &mut grads, self.cfg.optim.grad_clip)?;
        let lr = self.cfg.optim.lr * self.cfg.optim.schedule.multiplier(self.opt.step);
        let skipped = !norm.is_finite();
        if skipped {
            // As in GRPO: a non-finite gradient would turn every weight into NaN.
            tracing::warn!(
                step,
                grad_norm = norm,
                "non-finite gradient norm: warm-up step skipped, weights unchanged"
            );
        } else {
            self.opt.step(&grads, lr)?;
        }
        self.step = step;
        let secs = t.elapsed().as_secs_f64();
        let mut rec = Record::new();
        rec.insert("step".into(), step as f64);
        rec.insert("sft/loss".into(), nll / tok.max(1.0));
        rec.insert("sft/grad_norm".into(), norm);
        rec.insert("sft/lr".into(), lr);
        rec.insert("sft/tokens".into(), tok);
        rec.insert("sft/skipped_updates".into(), f64::from(u8::from(skipped)));
        rec.insert("tokens_per_s/train".into(), tok / secs.max(1e-9));
        let last = step as usize == self.cfg.steps;
        let ve = self.cfg.val_every;
        if !self.val.is_empty() && ((ve > 0 && (step as usize).is_multiple_of(ve)) || last) {
            rec.insert("sft/val_loss".into(), self.validate()?);
        }
        let se = self.cfg.save_every;
        if (se > 0 && (step as usize).is_multiple_of(se)) || last {
            self.save(&rec)?;
        }
        rec.insert("time/step_s".into(), t.elapsed().as_secs_f64());
        self.metrics.push(rec.clone()).map_err(|e| TrainError::Io {
            path: self.run_dir.join("metrics.jsonl"),
            source: e,
        })?;
        Ok(rec)
    }

    /// Mean token cross-entropy over the validation examples.
    pub fn validate(&self) -> Result<f64> {
        let (mut s, mut n) = (0.0, 0.0);
        for e in &self.val {
            let (a, b) = self.loss_of(&self.policy, &[e], None)?;
            s += a;
            n += b;
        }
        Ok(s / n.max(1.0))
    }

    /// Writes a checkpoint of the current state, with `metrics_row`, the step's metrics.
    pub fn save(&self, metrics_row: &Record) -> Result<PathBuf> {
        let state = TrainerState {
            step: self.step,
            optimizer_step: self.opt.step,
            cursor: Cursor {
                consumed: vec![self.consumed],
            },
            kind: "sft".into(),
        };
        let hf = self.cfg.export_hf.then_some(&self.tokenizer);
        run::save(
            &self.run_dir,
            &state,
            (&self.policy, &self.cfg.model),
            &self.opt,
            self.cfg.keep_last,
            metrics_row,
            hf,
            self.checkpoint_hook.as_ref(),
        )
    }

    /// Hands the trained policy on (to GRPO).
    pub fn into_policy(self) -> Model {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emphasised_tokens_weigh_plan_weight_times_and_padding_nothing() {
        let ex = |n: usize, emphasis| Example {
            prompt: vec![1],
            response: vec![2; n],
            emphasis,
        };
        let (a, b) = (ex(3, 1..2), ex(2, 0..0));
        let mask = Tensor::new(&[[1f32, 1., 1.], [1., 1., 0.]], &candle_core::Device::Cpu).unwrap();
        let w = weighted_mask(&[&a, &b], &mask, 10.0).unwrap();
        assert_eq!(w.to_vec2::<f32>().unwrap(), [[1., 10., 1.], [1., 1., 0.]]);
        let same = weighted_mask(&[&a, &b], &mask, 1.0).unwrap();
        assert_eq!(
            same.to_vec2::<f32>().unwrap(),
            mask.to_vec2::<f32>().unwrap()
        );
    }
}
