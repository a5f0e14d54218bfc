//! Client-facing errors: every failure is a JSON body with a 4xx (or 503/504) status, never a 500,
//! so that a trainer's log says which field of which row was wrong.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// A short machine-readable kind: `invalid_json`, `invalid_field`, `too_large`, ...
    pub error: &'static str,
    /// What was wrong, naming the field (and row) where there is one.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            message: message.into(),
            field: None,
            row: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn row(mut self, row: usize) -> ApiError {
        self.row = Some(row);
        self
    }

    /// A body that is not valid JSON for the expected shape, with the path of the offending
    /// field (`labels[3]`, `query`) when serde can name it.
    pub fn from_json(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
        let inner = e.inner();
        let (status, kind) = match inner.classify() {
            serde_json::error::Category::Data => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
            }
            _ => (StatusCode::BAD_REQUEST, "invalid_json"),
        };
        let path = e.path().to_string();
        let mut err = ApiError::new(status, kind, inner.to_string());
        if path != "." && !path.is_empty() {
            err.field = Some(path);
        } else if let Some(f) = missing_field(&inner.to_string()) {
            err.field = Some(f);
        }
        err
    }
}

/// The field named by serde's "missing field `x`" / "unknown field `x`" messages.
fn missing_field(msg: &str) -> Option<String> {
    let rest = msg
        .strip_prefix("missing field `")
        .or_else(|| msg.strip_prefix("unknown field `"))?;
    Some(rest[..rest.find('`')?].to_string())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}
