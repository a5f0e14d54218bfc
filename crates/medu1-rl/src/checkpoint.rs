//! Checkpoints: everything needed to continue a run bit for bit, written atomically.
//!
//! A checkpoint is a folder `checkpoints/step-NNNNNN/` holding the policy weights in the model's
//! own layout (`policy.safetensors`), the AdamW moments (`optimizer.safetensors`), the trainer
//! state (`state.json`: step, optimizer step, data cursors) and, optionally, a Hugging Face folder
//! `hf/` that transformers loads. It is assembled under a temporary name and renamed into place,
//! so a crash never leaves a half-written checkpoint that `--resume` could pick up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::dataset::Cursor;
use crate::optim::Moments;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("i/o error on {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("cannot export the hugging face folder into {path}")]
    Export {
        path: PathBuf,
        source: medu1_model::ModelError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn fmt_err(path: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The trainer's own state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Training steps completed.
    pub step: u64,
    pub optimizer_step: u64,
    pub cursor: Cursor,
    /// What kind of run wrote it (`grpo`, `sft`).
    pub kind: String,
}

/// `checkpoints/step-NNNNNN` under `run_dir`.
pub fn checkpoint_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:06}"))
}

/// The `step-NNNNNN` folders of `run_dir/checkpoints` with their steps, oldest first.
fn step_dirs(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(run_dir.join("checkpoints")) else {
        return Vec::new();
    };
    let mut steps: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_string_lossy()
                .strip_prefix("step-")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    steps.sort();
    steps
}

/// Whether `run_dir` holds any checkpoint folder, complete or not.
pub fn any(run_dir: &Path) -> bool {
    !step_dirs(run_dir).is_empty()
}

/// The newest checkpoint of a run, `None` when there is none. A newest checkpoint folder that is
/// incomplete (no `state.json`: a damaged or hand-edited run) is an error, not a reason to fall
/// back silently to an older one or to a fresh start.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>, CheckpointError> {
    let Some((_, dir)) = step_dirs(run_dir).pop() else {
        return Ok(None);
    };
    for f in ["state.json", "policy.safetensors", "optimizer.safetensors"] {
        if !dir.join(f).is_file() {
            return Err(fmt_err(
                &dir,
                format!(
                    "incomplete checkpoint: no {f} (remove the folder to resume from the one before)"
                ),
            ));
        }
    }
    Ok(Some(dir))
}

/// Removes the temporary folders of checkpoint writes that were killed (`.tmp-step-*` whose
/// writing process is gone); returns how many.
pub fn remove_stale_temps(run_dir: &Path) -> Result<usize, CheckpointError> {
    let dir = run_dir.join("checkpoints");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".tmp-step-") else {
            continue;
        };
        let pid = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        // Only a writer that is provably gone: a live one may still be renaming its folder.
        if !pid.is_some_and(|p| p != std::process::id() && medu1_core::atomic::process_gone(p)) {
            continue;
        }
        let p = e.path();
        std::fs::remove_dir_all(&p).map_err(io(&p))?;
        removed += 1;
    }
    Ok(removed)
}

/// Writes a checkpoint; `export` may add files (the HF folder) into the temporary folder first.
pub fn save(
    run_dir: &Path,
    state: &TrainerState,
    vars: &[(String, Var)],
    moments: &[Moments],
    keep_last: usize,
    metrics_row: &crate::metrics::Record,
    export: &dyn Fn(&Path) -> medu1_model::Result<()>,
) -> Result<PathBuf, CheckpointError> {
    let final_dir = checkpoint_dir(run_dir, state.step);
    let parent = final_dir.parent().unwrap_or(run_dir).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let tmp = parent.join(format!(
        ".tmp-step-{:06}-{}",
        state.step,
        std::process::id()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;

    let policy: HashMap<String, Tensor> = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
        .collect();
    let p = tmp.join("policy.safetensors");
    candle_core::safetensors::save(&policy, &p).map_err(|e| fmt_err(&p, e))?;

    let mut opt: HashMap<String, Tensor> = HashMap::new();
    for ((name, var), m) in vars.iter().zip(moments) {
        let shape = var.shape().clone();
        let t = |v: &Vec<f32>| Tensor::from_slice(v, shape.clone(), &Device::Cpu);
        opt.insert(format!("m.{name}"), t(&m.m).map_err(|e| fmt_err(&tmp, e))?);
        opt.insert(format!("v.{name}"), t(&m.v).map_err(|e| fmt_err(&tmp, e))?);
    }
    let o = tmp.join("optimizer.safetensors");
    candle_core::safetensors::save(&opt, &o).map_err(|e| fmt_err(&o, e))?;

    export(&tmp).map_err(|source| CheckpointError::Export {
        path: tmp.clone(),
        source,
    })?;

    // The step's metrics row travels with its checkpoint: a run killed after the checkpoint and
    // before the row reached metrics.jsonl gets the row back on resume.
    let r = tmp.join(METRICS_ROW);
    let row = serde_json::to_string(metrics_row).map_err(|e| fmt_err(&r, e))?;
    medu1_core::atomic::write_atomic(&r, row.as_bytes()).map_err(io(&r))?;

    let s = tmp.join("state.json");
    let json = serde_json::to_string_pretty(state).map_err(|e| fmt_err(&s, e))?;
    medu1_core::atomic::write_atomic(&s, json.as_bytes()).map_err(io(&s))?;

    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    prune(run_dir, keep_last)?;
    Ok(final_dir)
}

/// The file of a checkpoint holding its step's metrics row.
pub const METRICS_ROW: &str = "metrics_row.json";

/// Deletes all but the newest `keep` checkpoints of `run_dir`.
fn prune(run_dir: &Path, keep: usize) -> Result<(), CheckpointError> {
    let steps = step_dirs(run_dir);
    let excess = steps.len().saturating_sub(keep.max(1));
    for (_, p) in steps.into_iter().take(excess) {
        std::fs::remove_dir_all(&p).map_err(io(&p))?;
    }
    Ok(())
}

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Loaded {
    pub state: TrainerState,
    pub moments: Vec<Moments>,
    /// The metrics row of the checkpoint's step (absent in checkpoints of older versions).
    pub metrics_row: Option<crate::metrics::Record>,
}

/// A NaN or infinite value in a checkpoint is damage, not a state to train on.
fn finite(path: &Path, name: &str, values: &[f32]) -> Result<(), CheckpointError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(fmt_err(
            path,
            format!(
                "`{name}` holds a non-finite value ({}) at index {i}",
                values[i]
            ),
        )),
    }
}

/// Restores the policy weights into `vars` and returns the optimizer moments and state.
pub fn load(dir: &Path, vars: &[(String, Var)]) -> Result<Loaded, CheckpointError> {
    let s = dir.join("state.json");
    let text = std::fs::read_to_string(&s).map_err(io(&s))?;
    let state: TrainerState = serde_json::from_str(&text).map_err(|e| fmt_err(&s, e))?;
    let p = dir.join("policy.safetensors");
    let policy = candle_core::safetensors::load(&p, &Device::Cpu).map_err(|e| fmt_err(&p, e))?;
    let o = dir.join("optimizer.safetensors");
    let opt = candle_core::safetensors::load(&o, &Device::Cpu).map_err(|e| fmt_err(&o, e))?;
    let mut checked = Vec::with_capacity(vars.len());
    for (name, var) in vars {
        let t = policy
            .get(name)
            .ok_or_else(|| fmt_err(&p, format!("no tensor `{name}`")))?;
        if t.shape() != var.shape() {
            return Err(fmt_err(
                &p,
                format!(
                    "`{name}` has shape {:?}, model has {:?}",
                    t.shape(),
                    var.shape()
                ),
            ));
        }
        let values = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| fmt_err(&p, e))?;
        finite(&p, name, &values)?;
        let get = |k: String| -> Result<Vec<f32>, CheckpointError> {
            let v = opt
                .get(&k)
                .ok_or_else(|| fmt_err(&o, format!("no tensor `{k}`")))?
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| fmt_err(&o, e))?;
            finite(&o, &k, &v)?;
            Ok(v)
        };
        let m = Moments {
            m: get(format!("m.{name}"))?,
            v: get(format!("v.{name}"))?,
        };
        checked.push((var, t, m));
    }
    // Nothing is written into the policy before every tensor has been checked, so a damaged
    // checkpoint leaves the policy as it was.
    let mut moments = Vec::with_capacity(vars.len());
    for (var, t, m) in checked {
        let t = t.to_device(var.device()).map_err(|e| fmt_err(&p, e))?;
        var.set(&t).map_err(|e| fmt_err(&p, e))?;
        moments.push(m);
    }
    let r = dir.join(METRICS_ROW);
    let metrics_row = match std::fs::read_to_string(&r) {
        Ok(text) => Some(crate::metrics::parse_row(&text).map_err(|e| fmt_err(&r, e))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&r)(e)),
    };
    Ok(Loaded {
        state,
        moments,
        metrics_row,
    })
}
