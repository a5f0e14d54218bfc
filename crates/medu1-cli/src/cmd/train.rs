//! `medu1 train`: GRPO on a TOML configuration (see `configs/`), with `--set` overrides, a progress
//! bar, a warning when most groups carry no learning signal, and `--resume`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use medu1_model::{Model, Tokenizer};
use medu1_rl::run::Start;
use medu1_rl::{CheckpointHook, Grpo, MedU1Rewarder, Progress, TrainConfig};

use super::profile::load_profile;
use super::sft::run_sft;
use super::trainer::start_mode;
use crate::status::{note, say, steps_bar};

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Configuration file (TOML); see configs/demo.toml and configs/med-u1.toml.
    #[arg(long)]
    config: PathBuf,
    /// Override a field: `--set rollout.n=4 --set model.path=my.gguf` (values are TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Device of the policy (the same as `--set model.device=...`): cpu, cuda or cuda:N (a GPU needs medu1 built with `--features cuda`).
    #[arg(long)]
    device: Option<String>,
    /// Continue from the newest checkpoint in the run folder.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Start a new run in a run folder that holds another one, removing its checkpoints and
    /// metrics (without this flag such a folder is refused).
    #[arg(long)]
    overwrite: bool,
}

/// A test hook, `MEDU1_FAULT_ABORT=PHASE:STEP`: the process aborts (as under `kill -9`: no
/// destructor, no flush) when step STEP enters PHASE (`rollout`, `reference`, `update`,
/// `validation`, `checkpoint`, `checkpoint written`) or, for `checkpoint-export`, in the middle
/// of writing that step's checkpoint. The kill tests use it to stop the trainer at chosen points.
#[derive(Debug, Clone, Default)]
pub struct FaultPoint {
    phase: String,
    step: u64,
    /// Set when the export of the armed step's checkpoint should abort.
    in_export: Arc<AtomicBool>,
}

impl FaultPoint {
    pub fn from_env() -> Option<FaultPoint> {
        let v = std::env::var("MEDU1_FAULT_ABORT").ok()?;
        let (phase, step) = v.rsplit_once(':')?;
        Some(FaultPoint {
            phase: phase.to_string(),
            step: step.parse().ok()?,
            in_export: Arc::default(),
        })
    }

    /// Called at every phase of step `step`.
    pub fn at(&self, step: u64, phase: &str) {
        if step != self.step {
            return;
        }
        if self.phase == phase {
            note!("MEDU1_FAULT_ABORT: aborting at {phase} of step {step}");
            std::process::abort();
        }
        if self.phase == "checkpoint-export" && phase == "checkpoint" {
            self.in_export.store(true, Ordering::SeqCst);
        }
    }

    /// Called from inside a checkpoint write.
    pub fn in_export(&self) {
        if self.in_export.load(Ordering::SeqCst) {
            note!("MEDU1_FAULT_ABORT: aborting inside a checkpoint write");
            std::process::abort();
        }
    }
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let cfg: TrainConfig = medu1_rl::load_toml(
        Some(&a.config),
        &super::trainer::with_device(&a.set, "model.device", &a.device),
    )?;
    // Everything that can be refused is refused before the model loads and the warm-up runs.
    cfg.validate()
        .with_context(|| format!("{}", a.config.display()))?;
    let start = start_mode(a.resume, a.overwrite);
    medu1_rl::run::prepare_run_dir(&cfg.trainer.out_dir, start)?;
    if cfg.warmup.is_some() {
        medu1_rl::run::prepare_run_dir(&cfg.trainer.out_dir.join("warmup"), start)?;
    }
    tracing::info!(
        config = %a.config.display(),
        run_dir = %cfg.trainer.out_dir.display(),
        steps = cfg.trainer.steps,
        start = ?start,
        warmup = cfg.warmup.is_some(),
        "train: run start"
    );
    let fault = FaultPoint::from_env();
    let model_path = super::setup::resolve_model(&cfg.model.path)?;
    note!("loading {} for training", model_path.display());
    let (policy, tokenizer) = medu1_model::load(&model_path, cfg.load_options())
        .with_context(|| format!("loading {}", model_path.display()))?;
    let profile = load_profile(&cfg.reward.profile)?.with_overrides(&cfg.reward.settings);
    let rewarder = MedU1Rewarder {
        profile,
        error_reward: cfg.reward.error_reward,
    };
    let steps = cfg.trainer.steps as u64;
    let warn_at = cfg.trainer.zero_variance_warn;
    let policy = warm_up(&cfg, policy, &tokenizer, &rewarder, start == Start::Resume)?;
    let mut t = Grpo::new(cfg, policy, tokenizer.clone(), Box::new(rewarder), start)?;
    if let Some(f) = fault.clone() {
        t.checkpoint_hook = Some(CheckpointHook(Box::new(move |_| f.in_export())));
    }
    note!(
        "{} training prompts ({} filtered as too long), {} validation prompts; run folder {}",
        t.train.len(),
        t.train.sources.iter().map(|s| s.filtered).sum::<usize>(),
        t.val.as_ref().map_or(0, |v| v.len()),
        t.run_dir.display()
    );
    if t.step == 0 && t.cfg.trainer.val_before_train && t.val.is_some() {
        note!("validating before training...");
        let rec = t.validate(&mut |_| {})?;
        log_validation("train", "before training", 0, &rec);
        print_val("before training", &rec);
        let path = t.run_dir.join("val_before.json");
        medu1_core::atomic::write_atomic(&path, serde_json::to_string_pretty(&rec)?.as_bytes())?;
    }

    let bar = steps_bar(steps, t.step);
    let mut warned = false;
    while t.step < steps {
        let mut tokens = 0usize;
        let mut phase = "";
        let next = t.step + 1;
        let rec = t.step(&mut |p| match p {
            Progress::Phase(name) => {
                if let Some(f) = &fault {
                    f.at(next, name);
                }
                tracing::debug!(step = next, phase = name, "train: phase");
                if name == "checkpoint written" {
                    tracing::info!(step = next, "train: checkpoint saved");
                }
                phase = name;
                bar.set_message(name);
            }
            Progress::Tokens(k) => {
                tokens += k;
                if tokens % 64 < k {
                    bar.set_message(format!("{phase}: {tokens} tokens"));
                }
            }
        })?;
        bar.inc(1);
        let get = |k: &str| rec.get(k).copied().unwrap_or(f64::NAN);
        tracing::debug!(
            step = get("step"),
            reward = get("train/reward/mean"),
            accuracy = get("train/accuracy"),
            format = get("train/format_rate"),
            kl = get("actor/kl"),
            secs = get("time/step_s"),
            "train: step done"
        );
        if rec.contains_key("val/reward/mean") {
            log_validation("train", "during training", t.step, &rec);
        }
        say(
            &bar,
            format!(
                "step {:>4}  reward {:+.3}  acc {:.2}  format {:.2}  len {:>5.0}  kl {:.4}  zero-var {:.2}  {:.1}s",
                get("step"),
                get("train/reward/mean"),
                get("train/accuracy"),
                get("train/format_rate"),
                get("train/response_len/mean"),
                get("actor/kl"),
                get("zero_variance_share"),
                get("time/step_s"),
            ),
        );
        if rec.contains_key("val/reward/mean") {
            say(
                &bar,
                format!(
                    "           validation: reward {:+.3}  acc {:.3}  format {:.3}",
                    get("val/reward/mean"),
                    get("val/accuracy"),
                    get("val/format_rate")
                ),
            );
        }
        if !warned && get("zero_variance_share") >= warn_at {
            warned = true;
            say(
                &bar,
                format!(
                    "warning: {:.0}% of the groups got identical rewards, so their advantages are 0 and \
                 GRPO learns nothing from them. Remedies: warm the model up with `medu1 sft` \
                 (configs/demo-coldstart.toml), start responses with a prefill \
                 (--set 'rollout.prefill=\"<think>\\n\"'), raise rollout.temperature or rollout.n.",
                    100.0 * get("zero_variance_share")
                ),
            );
        }
    }
    bar.finish_with_message("done");
    let records = t.metrics.records().to_vec();
    if let Some(last) = records
        .iter()
        .rev()
        .find(|r| r.contains_key("val/reward/mean"))
    {
        print_val("after training", last);
    }
    let png = t.run_dir.join("curves.png");
    let records = medu1_rl::metrics::with_validation_baseline(&t.run_dir, &records)?;
    medu1_eval::curves::training_curves(&png, &records)?;
    println!(
        "run folder {}: metrics.jsonl, metrics.csv, curves.png, checkpoints/",
        t.run_dir.display()
    );
    tracing::info!(steps = t.step, run_dir = %t.run_dir.display(), "train: run end");
    Ok(())
}

/// The `validation done` event of a run (`what`: train or sft), from a metrics row with `val/` keys.
pub fn log_validation(what: &str, when: &str, step: u64, rec: &medu1_rl::metrics::Record) {
    let get = |k: &str| rec.get(k).copied().unwrap_or(f64::NAN);
    tracing::info!(
        run = what,
        when,
        step,
        samples = get("val/samples"),
        reward = get("val/reward/mean"),
        accuracy = get("val/accuracy"),
        format = get("val/format_rate"),
        "validation done"
    );
}

fn print_val(label: &str, rec: &medu1_rl::metrics::Record) {
    let get = |k: &str| rec.get(k).copied().unwrap_or(f64::NAN);
    println!(
        "validation {label}: {} samples  reward {:+.3} (std {:.3})  accuracy {:.3}  format {:.3}  length {:.0}",
        get("val/samples"),
        get("val/reward/mean"),
        get("val/reward/std"),
        get("val/accuracy"),
        get("val/format_rate"),
        get("val/response_len/mean")
    );
}

/// Runs the configured supervised warm-up on `policy` before GRPO (skipped when resuming a GRPO
/// run that already has checkpoints, whose weights replace the policy's anyway).
fn warm_up(
    cfg: &TrainConfig,
    policy: Model,
    tokenizer: &Tokenizer,
    rewarder: &MedU1Rewarder,
    resume: bool,
) -> anyhow::Result<Model> {
    let Some(w) = &cfg.warmup else {
        return Ok(policy);
    };
    if resume && medu1_rl::checkpoint::latest(&cfg.trainer.out_dir)?.is_some() {
        // The GRPO checkpoint replaces the policy's weights, but the frozen reference is built
        // from the policy first and must be the model GRPO started from: the warm-up's result.
        let dir = cfg.trainer.out_dir.join("warmup");
        let ck = medu1_rl::checkpoint::latest(&dir)?.with_context(|| {
            format!(
                "resuming a run with a [warmup]: no warm-up checkpoint in {} to rebuild the reference model from",
                dir.join("checkpoints").display()
            )
        })?;
        let loaded = medu1_rl::checkpoint::load(&ck, policy.trainable_vars())?;
        anyhow::ensure!(
            loaded.state.kind == "sft" && loaded.state.step == w.steps as u64,
            "{}: not the final warm-up checkpoint (kind `{}`, step {} of {})",
            ck.display(),
            loaded.state.kind,
            loaded.state.step,
            w.steps
        );
        return Ok(policy);
    }
    let mut w = w.clone();
    w.out_dir = cfg.trainer.out_dir.join("warmup");
    w.data = cfg.data.clone();
    if !cfg.data.val.is_empty() {
        let rec = validate_policy(cfg, &policy, tokenizer, rewarder)?;
        log_validation("train", "before the warm-up", 0, &rec);
        print_val("before the warm-up", &rec);
        let path = cfg.trainer.out_dir.join("val_before_warmup.json");
        medu1_core::atomic::write_atomic(&path, serde_json::to_string_pretty(&rec)?.as_bytes())?;
    }
    // A fresh run's warm-up folder was checked (or cleared by --overwrite) before we got here.
    let sft = medu1_rl::Sft::new(w, policy, tokenizer.clone(), resume)?;
    Ok(run_sft(sft)?.into_policy())
}

/// Validation of a policy outside a GRPO run (before the warm-up).
fn validate_policy(
    cfg: &TrainConfig,
    policy: &Model,
    tokenizer: &Tokenizer,
    rewarder: &MedU1Rewarder,
) -> anyhow::Result<medu1_rl::metrics::Record> {
    use medu1_rl::dataset::{PromptPool, PromptRenderer, load_sources};
    let renderer = PromptRenderer::new(&cfg.data, &cfg.rollout.prefill, tokenizer)?;
    let pool = PromptPool::new(
        load_sources(
            &cfg.data.val,
            &cfg.data,
            &renderer,
            cfg.trainer.seed ^ 0x7a1,
        )?,
        cfg.trainer.seed,
    );
    let model = medu1_rl::grpo::snapshot(
        policy,
        medu1_rl::grpo::rollout_quant(&cfg.model.rollout_quant)?,
    )?;
    let params = medu1_rl::grpo::sampling_params(
        &cfg.rollout,
        tokenizer,
        cfg.trainer.val_temperature,
        cfg.trainer.seed ^ 0x7a1,
    );
    Ok(medu1_rl::grpo::validate_with(
        &model,
        tokenizer,
        &pool,
        cfg.trainer.val_n.max(1),
        &params,
        rewarder,
        &mut |_| {},
    )?)
}
