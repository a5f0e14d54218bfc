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
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
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

/// The newest complete checkpoint of a run.
pub fn latest(run_dir: &Path) -> Option<PathBuf> {
    let dir = run_dir.join("checkpoints");
    let mut best: Option<(u64, PathBuf)> = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_prefix("step-")
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        if e.path().join("state.json").is_file() && best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, e.path()));
        }
    }
    best.map(|(_, p)| p)
}

/// Writes a checkpoint; `export` may add files (the HF folder) into the temporary folder first.
pub fn save(
    run_dir: &Path,
    state: &TrainerState,
    vars: &[(String, Var)],
    moments: &[Moments],
    keep_last: usize,
    export: &dyn Fn(&Path) -> Result<(), String>,
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

    export(&tmp).map_err(|e| fmt_err(&tmp, e))?;

    let s = tmp.join("state.json");
    let json = serde_json::to_string_pretty(state).map_err(|e| fmt_err(&s, e))?;
    medu1_core::atomic::write_atomic(&s, json.as_bytes()).map_err(io(&s))?;

    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    prune(&parent, keep_last)?;
    Ok(final_dir)
}

/// Deletes all but the newest `keep` checkpoints.
fn prune(dir: &Path, keep: usize) -> Result<(), CheckpointError> {
    let mut steps: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map_err(io(dir))?
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
    let mut moments = Vec::with_capacity(vars.len());
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
        var.set(t).map_err(|e| fmt_err(&p, e))?;
        let get = |k: String| -> Result<Vec<f32>, CheckpointError> {
            opt.get(&k)
                .ok_or_else(|| fmt_err(&o, format!("no tensor `{k}`")))?
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| fmt_err(&o, e))
        };
        moments.push(Moments {
            m: get(format!("m.{name}"))?,
            v: get(format!("v.{name}"))?,
        });
    }
    Ok(Loaded { state, moments })
}
