//! Plumbing shared by the GRPO and warm-up loops: the optimiser over a policy's weights, gradient
//! accumulation, resuming from and writing checkpoints, and opening a run folder. One copy, so the
//! two loops cannot drift apart in how they save or restore a run.

use std::path::{Path, PathBuf};

use candle_core::Var;
use candle_core::backprop::GradStore;
use medu1_model::{Mode, Model, Tokenizer};
use serde::Serialize;

use crate::checkpoint::{self, TrainerState};
use crate::config::OptimConfig;
use crate::error::{Result, TrainError};
use crate::metrics::{MetricsLog, Record};
use crate::optim::{AdamW, AdamWConfig};

/// A test hook called inside every checkpoint write, after the weights and before the Hugging
/// Face export; the CLI's fault injection (`MEDU1_FAULT_ABORT=checkpoint-export:N`) aborts there.
pub struct CheckpointHook(pub Box<dyn Fn(&Path) + Send>);

impl std::fmt::Debug for CheckpointHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointHook")
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

/// How a run starts in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new run; its folder must not hold another run's checkpoints or metrics.
    New,
    /// Continue from the newest checkpoint (a new run when the folder holds no run yet).
    Resume,
    /// A new run that first removes the checkpoints and metrics of a run already there.
    Overwrite,
}

impl From<bool> for Start {
    /// `true`: [`Start::Resume`]; `false`: [`Start::New`].
    fn from(resume: bool) -> Start {
        if resume { Start::Resume } else { Start::New }
    }
}

/// Steps logged in `run_dir/metrics.jsonl` (0 when there is no log).
fn logged_steps(run_dir: &Path) -> usize {
    crate::metrics::read_metrics(run_dir).map_or(0, |r| r.len())
}

/// Readies `run_dir` for a run that starts as `start`: removes the temporary folders of killed
/// checkpoint writes, and refuses a folder that holds another run, so a new run can neither
/// wipe an old run's metrics nor leave its later checkpoints for a `--resume` to pick up.
pub fn prepare_run_dir(run_dir: &Path, start: Start) -> Result<()> {
    checkpoint::remove_stale_temps(run_dir)?;
    let has_checkpoints = checkpoint::any(run_dir);
    let logged = logged_steps(run_dir);
    match start {
        Start::New if has_checkpoints || logged > 0 => Err(TrainError::RunExists {
            path: run_dir.to_path_buf(),
            what: if has_checkpoints {
                "checkpoints".into()
            } else {
                format!("metrics of {logged} steps")
            },
        }),
        Start::Resume if !has_checkpoints && logged > 0 => Err(TrainError::NothingToResume {
            path: run_dir.to_path_buf(),
            logged,
        }),
        Start::Overwrite => {
            for name in ["checkpoints", "metrics.jsonl", "metrics.csv"] {
                let p = run_dir.join(name);
                let gone = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                match gone {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(TrainError::Io { path: p, source: e });
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// What a resumed run continues from.
#[derive(Debug)]
pub struct Resumed {
    pub state: TrainerState,
    /// The checkpoint step's metrics row, for a log that stops short of it.
    pub metrics_row: Option<Record>,
}

/// Restores the newest checkpoint of `run_dir` into the policy and the optimiser, if there is
/// one; it must have been written by a run of `kind`.
pub fn resume(
    run_dir: &Path,
    kind: &str,
    policy: &Model,
    opt: &mut AdamW,
) -> Result<Option<Resumed>> {
    let Some(dir) = checkpoint::latest(run_dir)? else {
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
    Ok(Some(Resumed {
        state: loaded.state,
        metrics_row: loaded.metrics_row,
    }))
}

/// Opens the run's metrics log (dropping records after `step`, restoring the resumed
/// checkpoint's row when the log lacks it) and saves its configuration.
pub fn open_run<C: Serialize>(
    run_dir: &Path,
    step: u64,
    restored: Option<Record>,
    config_file: &str,
    cfg: &C,
) -> Result<MetricsLog> {
    let metrics =
        MetricsLog::open_with(run_dir, Some(step), restored).map_err(|e| TrainError::Io {
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
///
/// Only the variables' gradients are kept: candle's backward pass also leaves a gradient for
/// every constant input of an op (frozen weights, masks, detached tensors), which nothing reads
/// and which would otherwise stay alive through the next micro-batches.
pub fn accumulate(acc: &mut Option<GradStore>, mut g: GradStore, vars: &[Var]) -> Result<()> {
    let a = acc.get_or_insert_with(GradStore::default);
    for v in vars {
        if let Some(gv) = g.remove(v) {
            let sum = match a.remove(v) {
                Some(x) => (x + gv)?,
                None => gv,
            };
            a.insert(v, sum);
        }
    }
    Ok(())
}

/// Writes a checkpoint of `policy` and `opt`, with a Hugging Face export in `hf/` when
/// `hf_tokenizer` is given; for a LoRA policy the PEFT adapter in `adapter/` instead (its
/// `base_model_name_or_path` is `base_model`).
#[allow(clippy::too_many_arguments)]
pub fn save(
    run_dir: &Path,
    state: &TrainerState,
    (policy, base_model): (&Model, &str),
    opt: &AdamW,
    keep_last: usize,
    metrics_row: &Record,
    hf_tokenizer: Option<&Tokenizer>,
    hook: Option<&CheckpointHook>,
) -> Result<PathBuf> {
    let export = |dir: &Path| -> medu1_model::Result<()> {
        if let Some(h) = hook {
            (h.0)(dir);
        }
        // A LoRA policy's weights are its adapters: the checkpoint carries them in PEFT's layout
        // (megabytes), not a merged Hugging Face copy (four bytes a weight each time).
        if policy.mode() == Mode::Lora {
            let dir = dir.join("adapter");
            tracing::debug!(dir = %dir.display(), "writing the checkpoint's PEFT adapter");
            return policy.save_adapter(&dir, base_model);
        }
        match hf_tokenizer {
            Some(tok) => {
                let hf = dir.join("hf");
                tracing::debug!(dir = %hf.display(), "exporting the checkpoint's hf/ folder");
                medu1_model::save_hf_folder(policy, tok, &hf)
            }
            None => Ok(()),
        }
    };
    Ok(checkpoint::save(
        run_dir,
        state,
        policy.trainable_vars(),
        &opt.moments()?,
        keep_last,
        metrics_row,
        &export,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// The bug: the first micro-batch's whole `GradStore` became the accumulator, so the
    /// gradients candle leaves for constant inputs (a frozen LoRA base's activations, the
    /// entropy's detached maxima, ...) stayed alive through every later micro-batch: 2.1 GB
    /// more at the second micro-batch of a Qwen2.5-1.5B-shaped LoRA step.
    #[test]
    fn accumulated_gradients_hold_no_gradient_of_a_constant() {
        let dev = Device::Cpu;
        let v = Var::from_slice(&[1f32, 2., 3.], 3, &dev).unwrap();
        let c = Tensor::from_slice(&[4f32, 5., 6.], 3, &dev).unwrap();
        let mut acc = None;
        for _ in 0..2 {
            let g = (v.as_tensor() * &c)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            assert!(g.get(&c).is_some(), "candle keeps the constant's gradient");
            accumulate(&mut acc, g, std::slice::from_ref(&v)).unwrap();
        }
        let acc = acc.unwrap();
        assert!(acc.get(&c).is_none(), "a constant's gradient was kept");
        let gv = acc.get(&v).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(gv, vec![8., 10., 12.]);
    }
}
