//! Errors of the reward functions. Where the reference raises, the port returns an error that
//! names the Python exception, so callers can reproduce (or deliberately handle) the reference's
//! crash behaviour instead of getting a silently invented score.

use serde::{Deserialize, Serialize};

/// The Python exception the reference would raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PyException {
    ValueError,
    TypeError,
}

impl PyException {
    pub fn as_str(self) -> &'static str {
        match self {
            PyException::ValueError => "ValueError",
            PyException::TypeError => "TypeError",
        }
    }
}

/// Which calculation limit failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSide {
    LowerLimit,
    UpperLimit,
}

impl std::fmt::Display for LimitSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitSide::LowerLimit => "lower_limit",
            LimitSide::UpperLimit => "upper_limit",
        })
    }
}

/// A reward function failed where the reference raises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RewardError {
    /// A non-empty answer for a data source the scorer has no branch for (reference:
    /// `ValueError("[Error] Invalid Data Source")`).
    #[error("invalid data source {data_source:?} (reference raises ValueError)")]
    UnknownDataSource { data_source: String },
    /// A calculation limit is not a Python float literal (reference: `ValueError` from `float()`).
    #[error("{side} {value:?} is not a number (reference raises ValueError)")]
    InvalidLimit { side: LimitSide, value: String },
    /// A calculation limit is missing (reference: `TypeError` from `float(None)`).
    #[error("{side} is missing (reference raises TypeError)")]
    MissingLimit { side: LimitSide },
}

impl RewardError {
    /// The exception the reference raises in this situation.
    pub fn py_exception(&self) -> PyException {
        match self {
            RewardError::UnknownDataSource { .. } | RewardError::InvalidLimit { .. } => {
                PyException::ValueError
            }
            RewardError::MissingLimit { .. } => PyException::TypeError,
        }
    }
}
