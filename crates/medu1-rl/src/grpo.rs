//! The GRPO loop (spec §4.1): rollouts, rewards, group advantages, reference and old log-probs,
//! clipped policy updates with KL and entropy terms, metrics, validation and checkpoints.
//!
//! [`Grpo`] owns the policy (train mode, f32 `Var`s; or LoRA adapters over a frozen quantized
//! base), a frozen reference, a rollout model in the fast inference format (rebuilt from the
//! policy after each update; see `copies`), the optimiser and the schedule; [`Grpo::step`] runs
//! one step and returns its metrics.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use medu1_model::{InferQuant, Model, SamplingParams, Tokenizer};

use crate::advantage::{advantages, zero_variance_share};
use crate::batch::{Packed, Sequence, masked_sum, pack, response_logprobs};
use crate::checkpoint::TrainerState;
use crate::config::TrainConfig;
use crate::copies::dropout_view;
use crate::dataset::{PromptPool, PromptRenderer, load_sources};
pub use crate::error::{Result, TrainError};
use crate::loss::{
    ClipRange, Divisor, LossScope, aggregate_over, keep_rows, kl_penalty, policy_loss_over,
};
use crate::metrics::{MetricsLog, Record, mean_std};
use crate::optim::{AdamW, clip_grad_norm};
use crate::rollout::{Rewarder, Scored, rollout};
use crate::run::{self, CheckpointHook};

/// Progress events for a CLI to show.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Tokens generated in the current rollout.
    Tokens(usize),
    /// A phase of the step started.
    Phase(&'static str),
}

pub use crate::copies::{frozen_copy, rollout_quant, snapshot};

/// Per-sample outcome of a validation pass.
#[derive(Debug, Clone, Default)]
pub struct ValResult {
    pub records: Record,
}

#[derive(Debug)]
pub struct Grpo {
    pub cfg: TrainConfig,
    pub policy: Model,
    reference: Option<Model>,
    rollout_model: Option<Model>,
    quant: InferQuant,
    pub tokenizer: Tokenizer,
    pub train: PromptPool,
    pub val: Option<PromptPool>,
    pub opt: AdamW,
    rewarder: Box<dyn Rewarder + Send>,
    pub step: u64,
    pub run_dir: PathBuf,
    pub metrics: MetricsLog,
    /// Called inside every checkpoint write (fault-injection tests).
    pub checkpoint_hook: Option<CheckpointHook>,
}

impl Grpo {
    /// Builds the trainer from a loaded policy (train mode) and tokenizer. With `resume`, the
    /// newest checkpoint of `cfg.trainer.out_dir` is restored.
    pub fn new(
        cfg: TrainConfig,
        policy: Model,
        tokenizer: Tokenizer,
        rewarder: Box<dyn Rewarder + Send>,
        start: impl Into<run::Start>,
    ) -> Result<Grpo> {
        cfg.validate()?;
        let start = start.into();
        let quant = rollout_quant(&cfg.model.rollout_quant)?;
        let renderer = PromptRenderer::new(&cfg.data, &cfg.rollout.prefill, &tokenizer)?;
        let train = PromptPool::new(
            load_sources(&cfg.data.train, &cfg.data, &renderer, cfg.trainer.seed)?,
            cfg.trainer.seed,
        );
        let val = if cfg.data.val.is_empty() {
            None
        } else {
            Some(PromptPool::new(
                load_sources(
                    &cfg.data.val,
                    &cfg.data,
                    &renderer,
                    cfg.trainer.seed ^ 0x7a1,
                )?,
                cfg.trainer.seed,
            ))
        };
        // Built before a resume restores the checkpoint into the policy: the reference is the
        // run's starting model, never a later policy.
        let reference = if cfg.algorithm.use_kl_loss {
            Some(frozen_copy(&policy)?)
        } else {
            None
        };
        let mut policy = policy;
        policy.set_activation_checkpointing(cfg.optim.activation_checkpointing);
        let mut opt = run::optimizer(&policy, &cfg.optim)?;
        let run_dir = cfg.trainer.out_dir.clone();
        run::prepare_run_dir(&run_dir, start)?;
        let mut train = train;
        let (mut step, mut restored) = (0, None);
        if start == run::Start::Resume
            && let Some(r) = run::resume(&run_dir, "grpo", &policy, &mut opt)?
        {
            train.cursor = r.state.cursor;
            step = r.state.step;
            restored = r.metrics_row;
        }
        let metrics = run::open_run(&run_dir, step, restored, "config.toml", &cfg)?;
        Ok(Grpo {
            cfg,
            policy,
            reference,
            rollout_model: None,
            quant,
            tokenizer,
            train,
            val,
            opt,
            rewarder,
            step,
            run_dir,
            metrics,
            checkpoint_hook: None,
        })
    }

    /// The frozen reference model of the KL term (absent when `use_kl_loss` is off).
    pub fn reference(&self) -> Option<&Model> {
        self.reference.as_ref()
    }

    fn sampling(&self, temperature: f64, seed: u64) -> SamplingParams {
        sampling_params(&self.cfg.rollout, &self.tokenizer, temperature, seed)
    }

    fn rollout_model(&mut self) -> Result<&Model> {
        if self.rollout_model.is_none() {
            self.rollout_model = Some(snapshot(&self.policy, self.quant)?);
        }
        Ok(self.rollout_model.as_ref().expect("just built"))
    }

    /// One training step; returns its metrics (also appended to the run's metrics log).
    pub fn step(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<Record> {
        let t_step = Instant::now();
        let step = self.step + 1;
        let rc = self.cfg.rollout.clone();
        let draws = self.train.draw(step, rc.prompts_per_step);

        progress(Progress::Phase("rollout"));
        let t0 = Instant::now();
        let params = self.sampling(
            rc.temperature,
            self.cfg.trainer.seed.wrapping_mul(1_000_003) ^ step,
        );
        self.rollout_model()?;
        let items: Vec<_> = draws.iter().map(|&d| self.train.item(d)).collect();
        let model = self.rollout_model.as_ref().expect("built above");
        let (mut scored, gstats) = rollout(
            model,
            &self.tokenizer,
            &items,
            rc.n,
            &params,
            self.rewarder.as_ref(),
            &mut |k| progress(Progress::Tokens(k)),
        )?;
        let t_rollout = t0.elapsed().as_secs_f64();

        let rc_max = rc.max_response_tokens;
        let (buffer, factor) = (
            self.cfg.reward.overlong_buffer,
            self.cfg.reward.overlong_penalty_factor,
        );
        let mut penalties = Vec::with_capacity(scored.len());
        for s in &mut scored {
            let p = medu1_reward::overlong_penalty(s.length as f64, rc_max, buffer, factor);
            s.reward += p;
            penalties.push(p);
        }
        // DAPO's overlong filtering: a cut-off response keeps its reward (and its place in the
        // group's baseline) but teaches nothing.
        let keep: Vec<bool> = scored
            .iter()
            .map(|s| {
                !(self.cfg.algorithm.mask_truncated
                    && s.completion.finish == medu1_core::FinishReason::Length)
            })
            .collect();
        let rewards: Vec<f32> = scored.iter().map(|s| s.reward as f32).collect();
        let groups: Vec<usize> = (0..scored.len()).map(|i| i / rc.n).collect();
        let adv = advantages(
            self.cfg.algorithm.advantage,
            &rewards,
            &groups,
            self.cfg.algorithm.epsilon,
        );
        let seqs: Vec<Sequence> = scored
            .iter()
            .zip(&adv)
            .enumerate()
            .map(|(i, (s, &a))| Sequence {
                prompt: items[i / rc.n].ids.clone(),
                response: s.completion.token_ids.clone(),
                advantage: a,
            })
            .collect();

        let by_source: Vec<String> = items
            .iter()
            .flat_map(|it| std::iter::repeat_n(it.sample.source.clone(), rc.n))
            .collect();
        let budgets: Vec<i64> = items
            .iter()
            .flat_map(|it| std::iter::repeat_n(it.budget.num_tokens(), rc.n))
            .collect();
        drop(items);
        let by_source: Vec<&str> = by_source.iter().map(String::as_str).collect();

        let mut rec = Record::new();
        let (upd, times) = self.update(&seqs, &keep, progress)?;
        rec.extend(upd);
        self.step = step;
        self.rollout_model = None;

        rec.insert("step".into(), step as f64);
        rec.insert("time/rollout_s".into(), t_rollout);
        rec.insert("time/prefill_s".into(), gstats.prefill_secs);
        rec.insert("time/decode_s".into(), gstats.decode_secs);
        rec.insert("tokens_per_s/decode".into(), gstats.decode_tok_per_s());
        rec.insert("tokens_per_s/prefill".into(), gstats.prefill_tok_per_s());
        for (k, v) in times {
            rec.insert(k, v);
        }
        rec.extend(outcome_metrics("train", &scored, &by_source, &budgets));
        if buffer > 0 {
            rec.insert(
                "train/overlong_penalty/mean".into(),
                penalties.iter().sum::<f64>() / penalties.len().max(1) as f64,
            );
        }
        if self.cfg.algorithm.mask_truncated {
            rec.insert(
                "train/masked_share".into(),
                keep.iter().filter(|k| !**k).count() as f64 / keep.len().max(1) as f64,
            );
        }
        rec.insert(
            "zero_variance_share".into(),
            zero_variance_share(&rewards, &groups),
        );
        let (_, adv_std) = mean_std(&adv.iter().map(|&a| a as f64).collect::<Vec<_>>());
        rec.insert("advantage/std".into(), adv_std);

        let val_every = self.cfg.trainer.val_every;
        let last = step as usize == self.cfg.trainer.steps;
        if self.val.is_some()
            && ((val_every > 0 && (step as usize).is_multiple_of(val_every)) || last)
        {
            progress(Progress::Phase("validation"));
            rec.extend(self.validate(progress)?);
        }
        let save_every = self.cfg.trainer.save_every;
        if (save_every > 0 && (step as usize).is_multiple_of(save_every)) || last {
            progress(Progress::Phase("checkpoint"));
            let t = Instant::now();
            self.save(&rec)?;
            progress(Progress::Phase("checkpoint written"));
            rec.insert("time/checkpoint_s".into(), t.elapsed().as_secs_f64());
        }
        rec.insert("time/step_s".into(), t_step.elapsed().as_secs_f64());
        self.metrics.push(rec.clone()).map_err(|e| TrainError::Io {
            path: self.run_dir.join("metrics.jsonl"),
            source: e,
        })?;
        Ok(rec)
    }

    /// Reference and old log-probs, then the policy updates over mini- and micro-batches.
    fn update(
        &mut self,
        seqs: &[Sequence],
        keep: &[bool],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(Record, Vec<(String, f64)>)> {
        let alg = self.cfg.algorithm.clone();
        let o = self.cfg.optim.clone();
        let temp = self.cfg.rollout.temperature;
        let micro = o.micro_batch_size;
        let norm_len = self.cfg.rollout.max_response_tokens;
        let chunks: Vec<Vec<&Sequence>> = seqs.chunks(micro).map(|c| c.iter().collect()).collect();

        progress(Progress::Phase("reference"));
        let t = Instant::now();
        let mut ref_lp: Vec<Option<Tensor>> = vec![None; chunks.len()];
        let mut packed: Vec<Packed> = chunks
            .iter()
            .map(|c| pack(c, self.policy.device()))
            .collect::<candle_core::Result<_>>()?;
        if keep.iter().any(|k| !k) {
            for (p, k) in packed.iter_mut().zip(keep.chunks(micro)) {
                p.mask = keep_rows(&p.mask, k)?;
            }
        }
        if let Some(reference) = &self.reference {
            for (i, p) in packed.iter().enumerate() {
                ref_lp[i] = Some(response_logprobs(reference, p, temp, false)?.0.detach());
            }
        }
        let t_ref = t.elapsed().as_secs_f64();

        // With one on-policy update per rollout batch the old log-probs equal the current ones;
        // reuse the training forward's values instead of an extra pass (the ratio is exactly 1).
        let single_pass = o.ppo_epochs == 1 && o.mini_batches == 1;
        let t = Instant::now();
        let mut old_lp: Vec<Option<Tensor>> = vec![None; chunks.len()];
        if !single_pass {
            progress(Progress::Phase("old log-probs"));
            for (i, p) in packed.iter().enumerate() {
                old_lp[i] = Some(response_logprobs(&self.policy, p, temp, false)?.0.detach());
            }
        }
        let t_old = t.elapsed().as_secs_f64();

        progress(Progress::Phase("update"));
        let t = Instant::now();
        let per_mini = chunks.len().div_ceil(o.mini_batches);
        let vars: Vec<Var> = self.opt.vars().to_vec();
        let counts: Vec<Divisor> = packed
            .iter()
            .map(|p| Divisor::of(&p.mask))
            .collect::<candle_core::Result<_>>()?;
        let mut sums: BTreeMap<&'static str, (f64, f64)> = BTreeMap::new();
        let mut add = |k: &'static str, s: f64, n: f64| {
            let e = sums.entry(k).or_insert((0.0, 0.0));
            e.0 += s;
            e.1 += n;
        };
        let mut grad_norms = Vec::new();
        let mut lrs = Vec::new();
        let mut skipped = 0usize;
        for epoch in 0..o.ppo_epochs {
            for mini in (0..chunks.len())
                .collect::<Vec<_>>()
                .chunks(per_mini.max(1))
            {
                let accum = mini.len() as f64;
                let whole = Divisor::total(mini.iter().map(|&ci| counts[ci]));
                let mut grads: Option<GradStore> = None;
                let (mut mini_pg, mut mini_loss) = (0.0, 0.0);
                for &ci in mini {
                    let p = &packed[ci];
                    // Each micro-batch's loss is its share of the mini-batch's aggregate, so the
                    // shares add up to the loss of the whole mini-batch (or, per micro-batch, to
                    // the mean of the micro-batches' own aggregates).
                    let div = match alg.loss_scope {
                        LossScope::MiniBatch => whole,
                        LossScope::MicroBatch => counts[ci].times(accum),
                    };
                    // LoRA dropout masks drawn from the run's seed, the step, the epoch and the
                    // micro-batch, so a resumed run draws the same ones.
                    let key = [self.step + 1, epoch as u64, ci as u64];
                    let dropped = dropout_view(&self.policy, self.cfg.trainer.seed, key);
                    let policy = dropped.as_ref().unwrap_or(&self.policy);
                    let (lp, ent) = response_logprobs(policy, p, temp, alg.entropy_coef != 0.0)?;
                    let old = match &old_lp[ci] {
                        Some(t) => t.clone(),
                        None => lp.detach(),
                    };
                    let clip = ClipRange {
                        low: alg.clip_low,
                        high: alg.clip_high,
                    };
                    let pl = policy_loss_over(
                        &old,
                        &lp,
                        &p.advantages,
                        &p.mask,
                        clip,
                        alg.loss_agg,
                        norm_len,
                        div,
                    )?;
                    let mut loss = pl.loss.clone();
                    let n_tok = counts[ci].tokens;
                    mini_pg += pl.loss.to_scalar::<f32>()? as f64;
                    add("clip_frac", pl.clip_frac as f64 * n_tok, n_tok);
                    add("approx_kl", pl.approx_kl as f64 * n_tok, n_tok);
                    if let Some(ent) = &ent {
                        let e = aggregate_over(ent, &p.mask, alg.loss_agg, norm_len, div)?;
                        let (s, n) = masked_sum(&ent.detach(), &p.mask)?;
                        add("entropy", s, n);
                        loss = (loss - (e * alg.entropy_coef)?)?;
                    }
                    if let Some(r) = &ref_lp[ci] {
                        let kld = kl_penalty(&lp, r, alg.kl)?;
                        let (s, n) = masked_sum(&kld.detach(), &p.mask)?;
                        add("kl", s, n);
                        if alg.use_kl_loss {
                            let k = aggregate_over(&kld, &p.mask, alg.loss_agg, norm_len, div)?;
                            loss = (loss + (k * alg.kl_coef)?)?;
                        }
                    }
                    mini_loss += loss.to_scalar::<f32>()? as f64;
                    run::accumulate(&mut grads, policy.backward(&loss)?, &vars)?;
                }
                add("pg_loss", mini_pg, 1.0);
                add("loss", mini_loss, 1.0);
                let mut grads = grads.unwrap_or_default();
                let norm = clip_grad_norm(&vars, &mut grads, o.grad_clip)?;
                let lr = o.lr * o.schedule.multiplier(self.opt.step);
                if !norm.is_finite() {
                    // A deliberate deviation from the reference fork, which applies the update and
                    // corrupts the weights; current verl skips the step the same way.
                    tracing::warn!(
                        step = self.step + 1,
                        grad_norm = norm,
                        "non-finite gradient norm: optimizer step skipped, weights unchanged"
                    );
                    skipped += 1;
                    continue;
                }
                self.opt.step(&grads, lr)?;
                grad_norms.push(norm);
                lrs.push(lr);
            }
        }
        let t_update = t.elapsed().as_secs_f64();

        let mut rec = Record::new();
        for (k, (s, n)) in sums {
            rec.insert(format!("actor/{k}"), if n > 0.0 { s / n } else { 0.0 });
        }
        rec.insert(
            "actor/grad_norm".into(),
            grad_norms.iter().sum::<f64>() / grad_norms.len().max(1) as f64,
        );
        rec.insert("actor/lr".into(), lrs.last().copied().unwrap_or(0.0));
        rec.insert("actor/skipped_updates".into(), skipped as f64);
        let times = vec![
            ("time/reference_s".to_string(), t_ref),
            ("time/old_logprob_s".to_string(), t_old),
            ("time/update_s".to_string(), t_update),
        ];
        Ok((rec, times))
    }

    /// Generates on every validation prompt and reports reward, accuracy and format rate.
    pub fn validate(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<Record> {
        if self.val.is_none() {
            return Ok(Record::new());
        }
        let params = self.sampling(
            self.cfg.trainer.val_temperature,
            self.cfg.trainer.seed ^ 0x7a1,
        );
        self.rollout_model()?;
        let model = self.rollout_model.as_ref().expect("built above");
        let val = self.val.as_ref().expect("checked");
        validate_with(
            model,
            &self.tokenizer,
            val,
            self.cfg.trainer.val_n.max(1),
            &params,
            self.rewarder.as_ref(),
            progress,
        )
    }

    /// Writes a checkpoint of the current state, with `metrics_row`, the step's metrics.
    pub fn save(&self, metrics_row: &Record) -> Result<PathBuf> {
        let state = TrainerState {
            step: self.step,
            optimizer_step: self.opt.step,
            cursor: self.train.cursor.clone(),
            kind: "grpo".into(),
        };
        let hf = self.cfg.trainer.export_hf.then_some(&self.tokenizer);
        run::save(
            &self.run_dir,
            &state,
            (&self.policy, &self.cfg.model.path),
            &self.opt,
            self.cfg.trainer.keep_last,
            metrics_row,
            hf,
            self.checkpoint_hook.as_ref(),
        )
    }
}

/// Samples `n` responses for every prompt of `pool` with `model` and reports the `val/` figures.
pub fn validate_with(
    model: &Model,
    tokenizer: &Tokenizer,
    pool: &PromptPool,
    n: usize,
    params: &SamplingParams,
    rewarder: &dyn Rewarder,
    progress: &mut dyn FnMut(Progress),
) -> Result<Record> {
    let draws = pool.all();
    let items: Vec<_> = draws.iter().map(|&d| pool.item(d)).collect();
    let mut scored = Vec::new();
    // Chunks keep the KV cache small on long validation sets.
    for chunk in items.chunks(8) {
        let (s, _) = rollout(model, tokenizer, chunk, n, params, rewarder, &mut |k| {
            progress(Progress::Tokens(k))
        })?;
        scored.extend(s);
    }
    let by_source: Vec<&str> = items
        .iter()
        .flat_map(|it| std::iter::repeat_n(it.sample.source.as_str(), n))
        .collect();
    let budgets: Vec<i64> = items
        .iter()
        .flat_map(|it| std::iter::repeat_n(it.budget.num_tokens(), n))
        .collect();
    let mut rec = outcome_metrics("val", &scored, &by_source, &budgets);
    rec.insert("val/items".into(), items.len() as f64);
    Ok(rec)
}

/// Sampling settings of a rollout section.
pub fn sampling_params(
    r: &crate::config::RolloutConfig,
    tokenizer: &Tokenizer,
    temperature: f64,
    seed: u64,
) -> SamplingParams {
    SamplingParams {
        temperature: temperature as f32,
        top_p: r.top_p as f32,
        top_k: r.top_k,
        seed,
        max_new_tokens: r.max_response_tokens,
        stop_token_ids: tokenizer.default_stop_ids(),
        stop_strings: Vec::new(),
    }
}

/// Reward, accuracy, format, length and budget figures of scored responses, overall and by source.
pub fn outcome_metrics(
    prefix: &str,
    scored: &[Scored],
    sources: &[&str],
    budgets: &[i64],
) -> Record {
    let mut rec = Record::new();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in sources.iter().enumerate() {
        groups.entry(s).or_default().push(i);
    }
    let all: Vec<usize> = (0..scored.len()).collect();
    let mut put = |suffix: &str, idx: &[usize]| {
        if idx.is_empty() {
            return;
        }
        let n = idx.len() as f64;
        let r: Vec<f64> = idx.iter().map(|&i| scored[i].reward).collect();
        let (m, sd) = mean_std(&r);
        let frac =
            |f: &dyn Fn(&Scored) -> bool| idx.iter().filter(|&&i| f(&scored[i])).count() as f64 / n;
        rec.insert(format!("{prefix}/reward/mean{suffix}"), m);
        rec.insert(format!("{prefix}/reward/std{suffix}"), sd);
        rec.insert(format!("{prefix}/accuracy{suffix}"), frac(&|s| s.correct));
        rec.insert(
            format!("{prefix}/format_rate{suffix}"),
            frac(&|s| s.format_ok),
        );
        rec.insert(format!("{prefix}/error_rate{suffix}"), frac(&|s| s.error));
        let lens: Vec<f64> = idx.iter().map(|&i| scored[i].length as f64).collect();
        rec.insert(
            format!("{prefix}/response_len/mean{suffix}"),
            mean_std(&lens).0,
        );
        rec.insert(
            format!("{prefix}/response_len/max{suffix}"),
            lens.iter().copied().fold(0.0, f64::max),
        );
        rec.insert(
            format!("{prefix}/truncated_rate{suffix}"),
            frac(&|s| s.completion.finish == medu1_core::FinishReason::Length),
        );
        // Budget adherence: exact budgets by mean |L - N|, maximum budgets by the share within N.
        let exact: Vec<f64> = idx
            .iter()
            .filter(|&&i| budgets[i] >= 0)
            .map(|&i| (scored[i].length as f64 - budgets[i] as f64).abs())
            .collect();
        if !exact.is_empty() {
            rec.insert(
                format!("{prefix}/budget/exact_abs_err{suffix}"),
                mean_std(&exact).0,
            );
        }
        let maxed: Vec<bool> = idx
            .iter()
            .filter(|&&i| budgets[i] < -1)
            .map(|&i| scored[i].length as i64 <= -budgets[i])
            .collect();
        if !maxed.is_empty() {
            rec.insert(
                format!("{prefix}/budget/within_max{suffix}"),
                maxed.iter().filter(|b| **b).count() as f64 / maxed.len() as f64,
            );
        }
        rec.insert(format!("{prefix}/samples{suffix}"), n);
    };
    put("", &all);
    if groups.len() > 1 {
        for (src, idx) in &groups {
            put(&format!("/{src}"), idx);
        }
    }
    budget_bucket_metrics(prefix, scored, budgets, &mut rec);
    rec
}

/// The power-of-two bucket `[2^k, 2^(k+1) - 1]` a budget falls in, as `"lo-hi"`.
pub fn budget_bucket(n: u64) -> String {
    let lo = if n == 0 { 0 } else { 1u64 << n.ilog2() };
    let hi = if n == 0 { 0 } else { lo * 2 - 1 };
    format!("{lo}-{hi}")
}

/// Length, adherence and reward per budget bucket, so a curve can show whether short and long
/// budgets are learned alike: `{prefix}/budget/{exact|max}/{lo}-{hi}/{response_len, adherence,
/// reward}` and, for exact budgets, `rel_error` (mean |L − N| / N). Adherence is the share within
/// ±20 % of an exact budget, or at or under a maximum one.
pub fn budget_bucket_metrics(prefix: &str, scored: &[Scored], budgets: &[i64], rec: &mut Record) {
    let mut grouped: BTreeMap<(&str, String), Vec<usize>> = BTreeMap::new();
    for (i, &b) in budgets.iter().enumerate() {
        let (mode, n) = match medu1_core::Budget::from_num_tokens(b) {
            medu1_core::Budget::Exact(n) => ("exact", n),
            medu1_core::Budget::Maximum(n) => ("max", n),
            medu1_core::Budget::None => continue,
        };
        grouped.entry((mode, budget_bucket(n))).or_default().push(i);
    }
    for ((mode, bucket), idx) in grouped {
        let key = |m: &str| format!("{prefix}/budget/{mode}/{bucket}/{m}");
        let n = idx.len() as f64;
        let mean = |f: &dyn Fn(usize) -> f64| idx.iter().map(|&i| f(i)).sum::<f64>() / n;
        let len = |i: usize| scored[i].length as f64;
        let budget = |i: usize| budgets[i].unsigned_abs() as f64;
        rec.insert(key("response_len"), mean(&len));
        rec.insert(key("reward"), mean(&|i| scored[i].reward));
        if mode == "exact" {
            let rel = |i: usize| (len(i) - budget(i)).abs() / budget(i).max(1.0);
            rec.insert(key("rel_error"), mean(&rel));
            rec.insert(
                key("adherence"),
                mean(&|i| f64::from(u8::from(rel(i) <= 0.2))),
            );
        } else {
            rec.insert(
                key("adherence"),
                mean(&|i| f64::from(u8::from(len(i) <= budget(i)))),
            );
        }
    }
}
