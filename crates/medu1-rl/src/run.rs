//! Plumbing shared by the GRPO and warm-up loops: the optimiser over a policy's weights, gradient
//! accumulation, resuming from and writing checkpoints, and opening a run folder. One copy, so the
//! two loops cannot drift apart in how they save or restore a run.

use std::path::{Path, PathBuf};

use candle_core::Var;
use candle_core::backprop::GradStore;
use medu1_model::Model;
use serde::Serialize;

use crate::checkpoint::{self, TrainerState};
use crate::config::OptimConfig;
use crate::grpo::{Result, TrainError};
use crate::metrics::MetricsLog;
use crate::optim::{AdamW, AdamWConfig};

/// Writes a Hugging Face folder for a policy (weights, config, tokenizer files).
pub struct Exporter(pub Box<ExportFn>);

/// The function behind an [`Exporter`].
pub type ExportFn = dyn Fn(&Model, &Path) -> std::result::Result<(), String> + Send;

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}

/// AdamW over every trainable weight of `policy`.
pub fn optimizer(policy: &Model, o: &OptimConfig) -> Result<AdamW> {
    let vars: Vec<Var> = policy
        .trainable_vars()
        .iter()
        .map(|(_, v)| v.clone())
        .collect();
    Ok(AdamW::new(
        vars,
        AdamWConfig {
            lr: o.lr,
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
        },
    )?)
}

/// Restores the newest checkpoint of `run_dir` into the policy and the optimiser, if there is
/// one; it must have been written by a run of `kind`.
pub fn resume(
    run_dir: &Path,
    kind: &str,
    policy: &Model,
    opt: &mut AdamW,
) -> Result<Option<TrainerState>> {
    let Some(dir) = checkpoint::latest(run_dir) else {
        return Ok(None);
    };
    let loaded = checkpoint::load(&dir, policy.trainable_vars())?;
    if loaded.state.kind != kind {
        return Err(TrainError::Kind {
            path: dir,
            found: loaded.state.kind,
            expected: kind.into(),
        });
    }
    opt.restore(loaded.moments, loaded.state.optimizer_step)?;
    Ok(Some(loaded.state))
}

/// Opens the run's metrics log (dropping records after `step`) and saves its configuration.
pub fn open_run<C: Serialize>(
    run_dir: &Path,
    step: u64,
    config_file: &str,
    cfg: &C,
) -> Result<MetricsLog> {
    let metrics = MetricsLog::open(run_dir, Some(step)).map_err(|e| TrainError::Io {
        path: run_dir.to_path_buf(),
        source: e,
    })?;
    let path = run_dir.join(config_file);
    let text = toml::to_string_pretty(cfg).unwrap_or_default();
    medu1_core::atomic::write_atomic(&path, text.as_bytes())
        .map_err(|e| TrainError::Io { path, source: e })?;
    Ok(metrics)
}

/// Adds the gradients of `vars` in `g` to the accumulated ones.
pub fn accumulate(acc: &mut Option<GradStore>, g: GradStore, vars: &[Var]) -> Result<()> {
    let Some(a) = acc else {
        *acc = Some(g);
        return Ok(());
    };
    for v in vars {
        if let Some(gv) = g.get(v) {
            let sum = match a.get(v) {
                Some(x) => (x + gv)?,
                None => gv.clone(),
            };
            a.insert(v, sum);
        }
    }
    Ok(())
}

/// Writes a checkpoint of `policy` and `opt`, with the Hugging Face export when enabled.
pub fn save(
    run_dir: &Path,
    state: &TrainerState,
    policy: &Model,
    opt: &AdamW,
    keep_last: usize,
    exporter: Option<&Exporter>,
) -> Result<PathBuf> {
    let export = |dir: &Path| -> std::result::Result<(), String> {
        match exporter {
            Some(f) => (f.0)(policy, &dir.join("hf")),
            None => Ok(()),
        }
    };
    Ok(checkpoint::save(
        run_dir,
        state,
        policy.trainable_vars(),
        &opt.moments(),
        keep_last,
        &export,
    )?)
}
