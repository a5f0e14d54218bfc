//! Training configuration: plain serde structs read from TOML, every field overridable on the
//! command line with `--set section.field=value`, and saved into the run folder so a run can be
//! reproduced and resumed from what it recorded.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use medu1_model::{DeviceSpec, LoadOptions, LoraConfig};

use crate::advantage::AdvantageEstimator;
use crate::loss::{KlEstimator, LossAgg, LossScope};
use crate::optim::LrSchedule;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("override `{0}`: expected section.field=value")]
    OverrideSyntax(String),
    #[error("override `{key}`: {message}")]
    Override { key: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// One training source and its share of the prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    pub path: PathBuf,
    #[serde(default = "one")]
    pub weight: f64,
    /// Read at most this many items of the file (after loading, in file order).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Skip this many items first (e.g. to hold out the head of a file for validation).
    #[serde(default)]
    pub skip: usize,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub train: Vec<DataFile>,
    pub val: Vec<DataFile>,
    /// `keep` (the file's own budget), or a budget mode: none, exact, max, log, both, both-both,
    /// fixed:K.
    pub budget: String,
    /// Where drawn budgets fall: `{ min, max, dist = "uniform" | "log-uniform" }`; the default
    /// is the reference's uniform 100–2000. Pair a short range with reward settings
    /// `length_exact_scale` / `length_max_scale` of about its width (L1's convention).
    pub budget_range: medu1_data::BudgetRange,
    /// `released` (the released parquet prompts, default) or `script`.
    pub variant: String,
    /// Prompts longer than this (in tokens) are filtered out, as the reference's dataset does.
    pub max_prompt_tokens: usize,
    /// `model` (the template stored with the model), `chatml`, `qwen25`, `llama3`, or a file.
    pub chat_template: String,
    /// Apply the chat template twice, as the reference's training does (spec §1.5).
    pub double_template: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            train: Vec::new(),
            val: Vec::new(),
            budget: "keep".into(),
            budget_range: Default::default(),
            variant: "released".into(),
            max_prompt_tokens: 1024,
            chat_template: "model".into(),
            double_template: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// `default` (the embedded SmolLM2), a GGUF file or a Hugging Face folder.
    pub path: String,
    /// Weight format of the rollout copy: `auto` (GGUF Q4_1/Q8_0 as stored where the packed
    /// kernels run, else Q8_0), `q8_0`, `f32`, `original`.
    pub rollout_quant: String,
    /// `cpu`, `cuda` or `cuda:N` (a GPU needs a medu1 built with `--features cuda`; there every
    /// weight is dense f32 and `rollout_quant` does not apply).
    pub device: DeviceSpec,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            path: "default".into(),
            rollout_quant: "auto".into(),
            device: DeviceSpec::Cpu,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutConfig {
    /// Prompts per step (the reference's `train_batch_size`).
    pub prompts_per_step: usize,
    /// Responses per prompt (the group size).
    pub n: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub max_response_tokens: usize,
    /// Text that starts the assistant turn (e.g. `<think>\n`): part of the prompt for the model,
    /// part of the response for the reward's format check and length.
    pub prefill: String,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig {
            prompts_per_step: 4,
            n: 8,
            temperature: 0.6,
            top_p: 1.0,
            top_k: 0,
            max_response_tokens: 512,
            prefill: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardSection {
    /// `med-u1`, `corrected` or a profile file.
    pub profile: String,
    /// Per-field changes to the profile's settings.
    pub settings: medu1_reward::SettingsOverride,
    /// Reward given when the reference scorer raises (unknown data source, bad limits).
    pub error_reward: f64,
    /// DAPO's soft overlong punishment: responses longer than `rollout.max_response_tokens −
    /// overlong_buffer` tokens lose up to `overlong_penalty_factor`, linearly, at the limit
    /// (verl's `reward_model.overlong_buffer.len`). 0 (default) turns it off. Training rewards
    /// only; validation reports the plain reward.
    pub overlong_buffer: usize,
    /// The penalty at `max_response_tokens` (verl's `overlong_buffer.penalty_factor`).
    pub overlong_penalty_factor: f64,
}

impl Default for RewardSection {
    fn default() -> Self {
        RewardSection {
            profile: "med-u1".into(),
            settings: Default::default(),
            error_reward: -3.0,
            overlong_buffer: 0,
            overlong_penalty_factor: 1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlgorithmConfig {
    pub advantage: AdvantageEstimator,
    pub epsilon: f32,
    pub clip_low: f64,
    pub clip_high: f64,
    pub use_kl_loss: bool,
    pub kl: KlEstimator,
    pub kl_coef: f64,
    pub entropy_coef: f64,
    pub loss_agg: LossAgg,
    /// What `loss_agg` averages over when a mini-batch is cut into micro-batches:
    /// `mini-batch` (the reference run's figures, default) or `micro-batch`.
    pub loss_scope: LossScope,
    /// Leave responses cut off at `rollout.max_response_tokens` out of the loss (DAPO's overlong
    /// filtering, TRL's `mask_truncated_completions`): their tokens carry no gradient, while
    /// their rewards still count in their group's baseline.
    pub mask_truncated: bool,
}

impl Default for AlgorithmConfig {
    /// The reference run (spec §4.7).
    fn default() -> Self {
        AlgorithmConfig {
            advantage: AdvantageEstimator::Grpo,
            epsilon: 1e-6,
            clip_low: 0.2,
            clip_high: 0.2,
            use_kl_loss: true,
            kl: KlEstimator::K3,
            kl_coef: 0.001,
            entropy_coef: 0.001,
            loss_agg: LossAgg::TokenMean,
            loss_scope: LossScope::MiniBatch,
            mask_truncated: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Global-norm gradient clipping (0 disables).
    pub grad_clip: f64,
    pub schedule: LrSchedule,
    /// Optimizer steps per rollout batch (the batch is split into this many mini-batches).
    pub mini_batches: usize,
    /// Sequences per forward/backward pass; gradients accumulate over a mini-batch.
    pub micro_batch_size: usize,
    /// Passes over each rollout batch.
    pub ppo_epochs: usize,
    /// Activation checkpointing: each decoder layer keeps only its input, and the backward pass
    /// recomputes it. About one more forward pass of compute, for activation memory that no
    /// longer grows with the depth: what lets a LoRA step on a 1.5B-parameter shape fit a small
    /// machine. Gradients are the same (up to summation order).
    pub activation_checkpointing: bool,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            lr: 1e-6,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            grad_clip: 1.0,
            schedule: LrSchedule::default(),
            mini_batches: 1,
            micro_batch_size: 4,
            ppo_epochs: 1,
            activation_checkpointing: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainerConfig {
    pub steps: usize,
    pub seed: u64,
    pub out_dir: PathBuf,
    /// Save a checkpoint every this many steps (0: only at the end).
    pub save_every: usize,
    /// Checkpoints kept (oldest deleted first).
    pub keep_last: usize,
    /// Validate every this many steps (0: never during training); also after the last step.
    pub val_every: usize,
    /// Validate before the first step too.
    pub val_before_train: bool,
    /// Validation responses per prompt.
    pub val_n: usize,
    pub val_temperature: f64,
    /// Also write a Hugging Face folder (safetensors + config.json + tokenizer) per checkpoint.
    pub export_hf: bool,
    /// Warn when at least this share of groups has zero reward variance.
    pub zero_variance_warn: f64,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            steps: 10,
            seed: 42,
            out_dir: PathBuf::from("runs/grpo"),
            save_every: 0,
            keep_last: 2,
            val_every: 0,
            val_before_train: true,
            val_n: 1,
            val_temperature: 0.6,
            export_hf: true,
            zero_variance_warn: 0.5,
        }
    }
}

/// The whole GRPO configuration (`configs/*.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub model: ModelSection,
    pub data: DataConfig,
    pub rollout: RolloutConfig,
    pub reward: RewardSection,
    pub algorithm: AlgorithmConfig,
    pub optim: OptimConfig,
    pub trainer: TrainerConfig,
    /// A supervised warm-up run on the policy before GRPO (cold start); its run folder defaults
    /// to `trainer.out_dir/warmup`.
    pub warmup: Option<SftConfig>,
    /// `[lora]`: train LoRA adapters over the frozen quantized base instead of every weight
    /// (the rollout model is then the policy's inference view, `model.rollout_quant` aside, the
    /// KL reference the base itself, and checkpoints hold the PEFT adapter in `adapter/`).
    pub lora: Option<LoraConfig>,
}

/// Reads a TOML file into `T` after applying `section.field=value` overrides (values are TOML:
/// `rollout.n=4`, `model.path="x.gguf"`, bare words are taken as strings). Relative data paths are
/// kept as written (relative to the working directory).
pub fn load_toml<T: serde::de::DeserializeOwned>(
    path: Option<&Path>,
    overrides: &[String],
) -> Result<T, ConfigError> {
    let mut doc: toml::Table = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                path: p.to_path_buf(),
                source: e,
            })?;
            toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: p.to_path_buf(),
                message: e.to_string(),
            })?
        }
        None => toml::Table::new(),
    };
    for o in overrides {
        apply_override(&mut doc, o)?;
    }
    let p = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("<defaults>"));
    toml::Value::Table(doc)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: p,
            message: e.to_string(),
        })
}

fn apply_override(doc: &mut toml::Table, o: &str) -> Result<(), ConfigError> {
    let (key, raw) = o
        .split_once('=')
        .ok_or_else(|| ConfigError::OverrideSyntax(o.to_string()))?;
    let key = key.trim();
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.trim().to_string()),
    };
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts
        .pop()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| ConfigError::OverrideSyntax(o.into()))?;
    let mut table = doc;
    for p in parts {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| ConfigError::Override {
            key: key.to_string(),
            message: format!("`{p}` is not a section"),
        })?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

/// How the policy is loaded: LoRA when a `[lora]` table is given, else every weight trains.
fn load_options(lora: &Option<LoraConfig>, device: DeviceSpec) -> LoadOptions {
    lora.map_or_else(LoadOptions::train, LoadOptions::lora)
        .on(device)
}

fn validate_lora(lora: &Option<LoraConfig>, prefix: &str) -> Result<(), ConfigError> {
    match lora {
        Some(l) => l
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("{prefix}{e}"))),
        None => Ok(()),
    }
}

impl TrainConfig {
    /// The policy's load options (`[lora]` or full fine-tuning).
    pub fn load_options(&self) -> LoadOptions {
        load_options(&self.lora, self.model.device)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_lora(&self.lora, "")?;
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.data.train.is_empty() {
            return bad("data.train lists no files");
        }
        if self.rollout.n < 2 {
            return Err(ConfigError::Invalid(format!(
                "rollout.n = {}: GRPO needs at least 2 responses per prompt (a group of one has no baseline to compare with)",
                self.rollout.n
            )));
        }
        if self.rollout.prompts_per_step == 0 {
            return bad("rollout.prompts_per_step must be at least 1");
        }
        if self.rollout.max_response_tokens == 0 {
            return bad("rollout.max_response_tokens must be at least 1");
        }
        let r = &self.rollout;
        in_range("rollout.temperature", r.temperature, 0.0, f64::MAX, false)?;
        in_range("rollout.top_p", r.top_p, 0.0, 1.0, false)?;
        let a = &self.algorithm;
        in_range("algorithm.clip_low", a.clip_low, 0.0, 1.0, true)?;
        in_range("algorithm.clip_high", a.clip_high, 0.0, f64::MAX, true)?;
        in_range("algorithm.kl_coef", a.kl_coef, 0.0, f64::MAX, true)?;
        in_range(
            "algorithm.entropy_coef",
            a.entropy_coef,
            f64::MIN,
            f64::MAX,
            true,
        )?;
        in_range(
            "trainer.val_temperature",
            self.trainer.val_temperature,
            0.0,
            f64::MAX,
            true,
        )?;
        self.optim.validate("optim")?;
        let rs = &self.reward.settings;
        for (name, v) in [
            ("reward.settings.length_exact_scale", rs.length_exact_scale),
            ("reward.settings.length_max_scale", rs.length_max_scale),
        ] {
            if let Some(v) = v {
                in_range(name, v, 0.0, f64::MAX, false)?;
            }
        }
        in_range(
            "reward.overlong_penalty_factor",
            self.reward.overlong_penalty_factor,
            0.0,
            f64::MAX,
            true,
        )?;
        if self.reward.overlong_buffer > self.rollout.max_response_tokens {
            return Err(ConfigError::Invalid(format!(
                "reward.overlong_buffer = {} is longer than rollout.max_response_tokens = {}",
                self.reward.overlong_buffer, self.rollout.max_response_tokens
            )));
        }
        if let Err(e) = self.data.budget_range.validate() {
            return Err(ConfigError::Invalid(format!("data.budget_range: {e}")));
        }
        if let Some(w) = &self.warmup {
            w.validate("warmup.")?;
        }
        let batch = self.rollout.n * self.rollout.prompts_per_step;
        // (micro-batch, mini-batch and epoch counts were checked with the optimizer settings)
        if !batch.is_multiple_of(self.optim.mini_batches) {
            return bad("rollout.n × rollout.prompts_per_step must divide into optim.mini_batches");
        }
        if self
            .data
            .train
            .iter()
            .any(|f| f.weight.is_nan() || f.weight <= 0.0)
        {
            return bad("every data.train weight must be positive");
        }
        Ok(())
    }
}

/// `value` must be finite and within `[low, high]` (`(low, high]` unless `low_inclusive`).
pub(crate) fn in_range(
    field: &str,
    value: f64,
    low: f64,
    high: f64,
    low_inclusive: bool,
) -> Result<(), ConfigError> {
    let above = if low_inclusive {
        value >= low
    } else {
        value > low
    };
    if value.is_finite() && above && value <= high {
        return Ok(());
    }
    let open = if low_inclusive { "[" } else { "(" };
    let range = match (low == f64::MIN, high == f64::MAX) {
        (true, true) => "a finite number".to_string(),
        (false, true) => format!("{} {low}", if low_inclusive { ">=" } else { ">" }),
        _ => format!("in {open}{low}, {high}]"),
    };
    Err(ConfigError::Invalid(format!(
        "{field} = {value}: must be {range}"
    )))
}

impl OptimConfig {
    /// Checks the optimizer settings; `section` names them in errors (`optim`, `warmup.optim`).
    pub fn validate(&self, section: &str) -> Result<(), ConfigError> {
        let f = |name: &str| format!("{section}.{name}");
        in_range(&f("lr"), self.lr, 0.0, f64::MAX, true)?;
        in_range(&f("beta1"), self.beta1, 0.0, 1.0, true)?;
        in_range(&f("beta2"), self.beta2, 0.0, 1.0, true)?;
        in_range(&f("eps"), self.eps, 0.0, f64::MAX, false)?;
        in_range(&f("weight_decay"), self.weight_decay, 0.0, f64::MAX, true)?;
        in_range(&f("grad_clip"), self.grad_clip, 0.0, f64::MAX, true)?;
        if self.micro_batch_size == 0 || self.mini_batches == 0 || self.ppo_epochs == 0 {
            return Err(ConfigError::Invalid(format!(
                "{0}.micro_batch_size, {0}.mini_batches and {0}.ppo_epochs must be at least 1",
                section
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(overrides: &[&str]) -> String {
        let mut cfg: TrainConfig = load_toml(
            None,
            &overrides.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        cfg.data.train.push(DataFile {
            path: "x.json".into(),
            weight: 1.0,
            limit: None,
            skip: 0,
        });
        cfg.validate().unwrap_err().to_string()
    }

    /// These were all accepted, and a group of one trained with no baseline.
    #[test]
    fn degenerate_settings_are_refused_naming_the_field() {
        for (set, field) in [
            ("optim.lr=-1e-5", "optim.lr"),
            ("optim.lr=nan", "optim.lr"),
            ("rollout.n=1", "rollout.n"),
            ("rollout.n=0", "rollout.n"),
            (
                "rollout.max_response_tokens=0",
                "rollout.max_response_tokens",
            ),
            ("rollout.temperature=0", "rollout.temperature"),
            ("algorithm.kl_coef=-0.1", "algorithm.kl_coef"),
            ("warmup.optim.lr=-1", "warmup.optim.lr"),
            ("warmup.batch_size=0", "warmup.batch_size"),
        ] {
            let e = invalid(&[set]);
            assert!(e.contains(field), "{set}: {e}");
        }
    }

    #[test]
    fn overrides_reach_nested_fields_and_types() {
        let cfg: TrainConfig = load_toml(
            None,
            &[
                "rollout.n=4".into(),
                "model.path=/tmp/x.gguf".into(),
                "algorithm.kl=\"k2\"".into(),
                "optim.schedule.kind=\"cosine\"".into(),
                "optim.schedule.warmup_steps=2".into(),
                "optim.schedule.total_steps=10".into(),
                "trainer.export_hf=false".into(),
            ],
        )
        .unwrap();
        assert_eq!(cfg.rollout.n, 4);
        assert_eq!(cfg.model.path, "/tmp/x.gguf");
        assert_eq!(cfg.algorithm.kl, KlEstimator::K2);
        assert!(!cfg.trainer.export_hf);
        assert_eq!(
            cfg.optim.schedule,
            LrSchedule::Cosine {
                warmup_steps: 2,
                total_steps: 10,
                min_ratio: 0.0
            }
        );
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let e = load_toml::<TrainConfig>(None, &["rollout.group_size=4".into()]).unwrap_err();
        assert!(e.to_string().contains("group_size"), "{e}");
        let e = load_toml::<TrainConfig>(None, &["nonsense".into()]).unwrap_err();
        assert!(matches!(e, ConfigError::OverrideSyntax(_)));
    }

    #[test]
    fn defaults_mirror_the_reference_run() {
        let c = TrainConfig::default();
        assert_eq!(c.optim.lr, 1e-6);
        assert_eq!(c.algorithm.kl_coef, 0.001);
        assert_eq!(c.algorithm.kl, KlEstimator::K3);
        assert_eq!(c.rollout.temperature, 0.6);
        assert_eq!(c.optim.schedule.multiplier(0), 0.0);
    }
}

/// The supervised warm-up (`medu1 sft`, or `[warmup]` before GRPO); see [`crate::sft`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// `default`, a GGUF file or a Hugging Face folder (ignored when the warm-up is part of a
    /// `medu1 train` run, which warms up the policy it trains).
    pub model: String,
    /// `cpu`, `cuda` or `cuda:N` (ignored inside `medu1 train`, whose `model.device` holds the
    /// policy).
    pub device: DeviceSpec,
    pub train: Vec<DataFile>,
    pub val: Vec<DataFile>,
    /// Prompt rendering, as in GRPO (`budget`, `variant`, `chat_template`).
    pub data: DataConfig,
    /// Examples longer than this (prompt + response tokens) are left out (and counted).
    pub max_seq_tokens: usize,
    pub steps: usize,
    /// Sequences per optimizer step.
    pub batch_size: usize,
    pub optim: OptimConfig,
    pub seed: u64,
    pub out_dir: PathBuf,
    pub save_every: usize,
    pub keep_last: usize,
    pub val_every: usize,
    /// Validation examples used (0: all).
    pub val_limit: usize,
    pub export_hf: bool,
    /// Budget-aware cold start: each benchmark example draws a budget with `data.budget` and
    /// `data.budget_range`, and its reasoning is fitted to that many response tokens (exact
    /// mode) or to 60–100 % of it (maximum mode) as `budget_scaffold` says.
    pub fit_budget: bool,
    /// With `fit_budget`: each benchmark example appears this many times, each with a budget of
    /// its own, so the same question is seen answered at several lengths.
    pub budget_copies: usize,
    /// With `fit_budget`: how a target spends its budget (`cut` or `steps`).
    pub budget_scaffold: BudgetScaffold,
    /// With `budget_scaffold = "steps"`: reasoning tokens per step (the step label aside).
    pub step_tokens: usize,
    /// With `budget_scaffold = "steps"`: how many times the loss counts the tokens of the plan's
    /// step count. The count is the one token of a ~150-token target that the budget decides;
    /// at weight 1 the 135M model learned the plan for some budgets and not others (the third
    /// run planned 6 steps at 128 and 1 at 32). 1 is the plain token mean.
    pub plan_weight: f64,
    /// `[lora]` for `medu1 sft` (inside `medu1 train` the policy's own setting applies). Adapter
    /// dropout applies to the training passes, not to validation.
    pub lora: Option<LoraConfig>,
}

/// How a budget-fitted warm-up target spends its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetScaffold {
    /// The reasoning is cut to the budget at a word boundary ([`crate::sft::fit_to_budget`]). A small model
    /// taught this way has to learn, from the budget's digits alone, where in running text to
    /// stop; the 135M demo model did not (issue 17's first run: Spearman 0.05). An exact budget
    /// is then set to the target's true length, so the prompt's sentence is true of it.
    #[default]
    Cut,
    /// The reasoning opens with the budget and a plan, "Budget 128: 3 steps." ("Max 128: 2
    /// steps." for a maximum), then comes in steps of about `step_tokens` tokens labelled with
    /// the steps left ("[3] ...", "[2] ...", "[1] ..."), then the conclusion
    /// ([`crate::sft::fit_steps_to_budget`]). The model has one decision to learn from the
    /// budget (K, a small number); copying K into the first label and counting down are easy,
    /// and the conclusion always follows "[1]". An exact budget keeps the step count nearest
    /// to it and stays as drawn; a maximum keeps the most steps within 60-100 % of it.
    Steps,
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig {
            model: "default".into(),
            train: Vec::new(),
            val: Vec::new(),
            data: DataConfig::default(),
            max_seq_tokens: 768,
            steps: 100,
            batch_size: 8,
            optim: OptimConfig {
                lr: 5e-5,
                micro_batch_size: 1,
                schedule: LrSchedule::Cosine {
                    warmup_steps: 10,
                    total_steps: 100,
                    min_ratio: 0.1,
                },
                ..OptimConfig::default()
            },
            seed: 42,
            out_dir: PathBuf::from("runs/sft"),
            save_every: 0,
            keep_last: 1,
            val_every: 25,
            val_limit: 64,
            export_hf: true,
            fit_budget: false,
            budget_copies: 1,
            budget_scaffold: BudgetScaffold::Cut,
            step_tokens: 24,
            plan_weight: 1.0,
            lora: None,
            device: DeviceSpec::Cpu,
        }
    }
}

impl SftConfig {
    /// The policy's load options (`[lora]` or full fine-tuning).
    pub fn load_options(&self) -> LoadOptions {
        load_options(&self.lora, self.device)
    }

    /// Checks the settings up front; `prefix` names the table they came from in errors
    /// (`warmup.` inside a `medu1 train` configuration, which checks them before either runs).
    pub fn validate(&self, prefix: &str) -> std::result::Result<(), ConfigError> {
        validate_lora(&self.lora, prefix)?;
        for (name, v) in [
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("max_seq_tokens", self.max_seq_tokens),
            ("step_tokens", self.step_tokens),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{prefix}{name} must be at least 1"
                )));
            }
        }
        if !(self.plan_weight.is_finite() && self.plan_weight > 0.0) {
            return Err(ConfigError::Invalid(format!(
                "{prefix}plan_weight must be a positive number, got {}",
                self.plan_weight
            )));
        }
        self.optim.validate(&format!("{prefix}optim"))
    }
}
