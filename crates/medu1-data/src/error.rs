//! The errors of medu1-data: a field of a row ([`FieldError`]), why a benchmark file or one of its rows could not be read
//! ([`LoadError`] for the file, [`RowError`] for a row, at a [`Loc`]), why an output file could not
//! be written ([`WriteError`]), why a chat template could not be loaded or rendered
//! ([`TemplateError`]). Each names what failed and keeps the cause as its `source`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A field-level problem in one row; the loader adds file and line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Where in a file a record sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loc {
    /// 1-based line of a JSONL file.
    Line(usize),
    /// 0-based element of a top-level JSON array.
    Item(usize),
    /// 1-based data row of a CSV or parquet file (header excluded).
    Row(usize),
    /// An entry of a top-level JSON object keyed by id.
    Key(String),
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Line(n) => write!(f, "line {n}"),
            Loc::Item(n) => write!(f, "item {n}"),
            Loc::Row(n) => write!(f, "row {n}"),
            Loc::Key(k) => write!(f, "entry `{k}`"),
        }
    }
}

/// One rejected record: file, position, field and reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {loc}: {}{message}", path.display(), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct RowError {
    pub path: PathBuf,
    pub loc: Loc,
    pub field: Option<String>,
    pub message: String,
}

impl RowError {
    pub(crate) fn from_field(path: &Path, loc: Loc, e: FieldError) -> RowError {
        RowError {
            path: path.to_path_buf(),
            loc,
            field: if e.field.is_empty() {
                None
            } else {
                Some(e.field)
            },
            message: e.message,
        }
    }
}

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot detect the format: {reason}", path.display())]
    Detect { path: PathBuf, reason: String },
    #[error("{}: invalid json", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: parquet: {message}", path.display())]
    Parquet { path: PathBuf, message: String },
    #[error("{}: csv", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error(transparent)]
    Row(Box<RowError>),
}

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{}: cannot write", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: parquet: {message}", path.display())]
    Parquet { path: PathBuf, message: String },
}

/// Why a template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("chat template")]
    Jinja(#[from] minijinja::Error),
    #[error("{path}: cannot read chat template")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no `chat_template` field")]
    Missing { path: String },
    #[error("{path}: invalid json")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}
