//! One error type for the crate, so callers (trainer, evaluator, CLI) can match on what went wrong
//! without depending on candle's or tokenizers' error types.

use std::path::PathBuf;

/// Everything that can fail while loading, running or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("tensor operation failed")]
    Candle(#[from] candle_core::Error),
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write gguf file {path}")]
    WriteGguf {
        path: PathBuf,
        source: Box<candle_core::Error>,
    },
    #[error("invalid json in {path}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid model config: {0}")]
    Config(String),
    #[error("missing gguf metadata key `{0}`")]
    MissingMetadata(String),
    #[error("missing weight `{0}`")]
    MissingWeight(String),
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }
}
