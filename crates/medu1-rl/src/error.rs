//! The training crate's error: what `Grpo`, `Sft` and a run's folder handling return.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Data(#[from] crate::dataset::DataError),
    #[error(transparent)]
    Model(#[from] medu1_model::ModelError),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error("i/o error on {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid model.rollout_quant `{0}`: use auto, q8_0, f32 or original")]
    Quant(String),
    #[error(
        "{path} already holds a run ({what}): pass --resume to continue it or --overwrite to replace it"
    )]
    RunExists { path: PathBuf, what: String },
    #[error(
        "{path}: nothing to resume: no checkpoint, but metrics.jsonl logs {logged} steps (pass --overwrite to start again)"
    )]
    NothingToResume { path: PathBuf, logged: usize },
    #[error("checkpoint {path} was written by a `{found}` run, not `{expected}`")]
    Kind {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

pub type Result<T> = std::result::Result<T, TrainError>;
