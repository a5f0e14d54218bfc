//! Why a calculator could not produce an answer.

/// Why a calculator could not produce an answer. Messages are lowercase and name the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalcError {
    #[error("missing input `{0}`")]
    Missing(String),
    #[error("invalid input `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    #[error("unknown unit `{unit}` for `{field}`")]
    Unit { field: String, unit: String },
    #[error("unknown calculator `{0}`")]
    UnknownCalculator(String),
    #[error("relevant entities are not a python literal: {0}")]
    Entities(String),
}

impl CalcError {
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> CalcError {
        CalcError::Invalid {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}
