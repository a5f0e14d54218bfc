//! Errors of the evaluation harness. Backend failures are kept apart from local I/O and data
//! errors because the runner treats them differently: a backend failure ends the run with every
//! finished item already on disk, so a rerun resumes.

use std::path::PathBuf;

/// A generation backend failed (after its retries).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("request to {url} failed after {attempts} attempts: {message}")]
    Request {
        url: String,
        attempts: u32,
        message: String,
    },
    #[error("response from {url}: field `{field}`: {message}")]
    Response {
        url: String,
        field: String,
        message: String,
    },
    #[error("request to {url} rejected: {message}")]
    Rejected { url: String, message: String },
    #[error("local model: {0}")]
    Model(String),
    #[error("backend: {0}")]
    Other(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Load(#[from] medu1_data::LoadError),
    #[error("{}: rendering the prompt of item `{id}`: {message}", path.display())]
    Prompt {
        path: PathBuf,
        id: String,
        message: String,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("backend returned {got} prompts' generations for {expected} prompts")]
    BackendShape { expected: usize, got: usize },
    #[error("{}: line {line}: {message}", path.display())]
    Resume {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{}: the results there were produced with a different configuration (field `{field}`: \
         {was} there, {now} now); use another --out folder or remove it",
        path.display()
    )]
    ConfigMismatch {
        path: PathBuf,
        field: String,
        was: String,
        now: String,
    },
    #[error("unknown suite `{0}` (expected medu1-val, anchors or ood)")]
    UnknownSuite(String),
    #[error("suite `{suite}`: benchmark file {} is missing", path.display())]
    MissingSuiteFile { suite: String, path: PathBuf },
    #[error("budget sweep: {0}")]
    InvalidSweep(String),
    #[error("unknown api `{0}` (expected completions or chat)")]
    UnknownApi(String),
    #[error("unknown rule `{0}` (expected medu1, medu1-val or official)")]
    UnknownRule(String),
    #[error("plot {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
    #[error("{}: csv", path.display())]
    Csv { path: PathBuf, source: csv::Error },
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EvalError {
        let path = path.into();
        move |source| EvalError::Io { path, source }
    }
}
