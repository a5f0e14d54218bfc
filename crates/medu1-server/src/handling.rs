//! What the scoring routes share: reading a JSON body, accounting for each request (counts,
//! latency, errors, debug events), running the scoring on the blocking pool under the timeout with
//! cancellation, batch limits, parallel scoring, token counting, and the validation-score
//! correctness both routes report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use medu1_reward::{Input, Profile, RowError, ScoreOutput, ScoreRequest, val_score};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::metrics::{ErrorLabel, RouteLabel};
use crate::protocol::Eos;
use crate::state::AppState;

pub(crate) fn parse_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| {
        let status = r.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "invalid_body"
        };
        ApiError::new(status, kind, r.body_text())
    })?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| ApiError::from_json(&e))?;
    de.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("trailing data: {e}"),
        )
    })?;
    Ok(value)
}

/// Wraps a handler's work with request/latency/error accounting.
pub(crate) async fn measured<F>(s: &AppState, route: &'static str, work: F) -> Response
where
    F: Future<Output = Result<(Response, usize), ApiError>>,
{
    let start = Instant::now();
    s.metrics
        .requests
        .get_or_create(&RouteLabel { route })
        .inc();
    let resp = match work.await {
        Ok((resp, n)) => {
            s.metrics
                .samples
                .get_or_create(&RouteLabel { route })
                .inc_by(n as u64);
            tracing::debug!(
                route,
                samples = n,
                status = resp.status().as_u16(),
                secs = start.elapsed().as_secs_f64(),
                "request served"
            );
            resp
        }
        Err(e) => {
            tracing::debug!(
                route,
                error = e.error,
                secs = start.elapsed().as_secs_f64(),
                "request refused"
            );
            s.metrics
                .errors
                .get_or_create(&ErrorLabel {
                    route,
                    kind: e.error,
                })
                .inc();
            e.into_response()
        }
    };
    s.metrics
        .latency
        .get_or_create(&RouteLabel { route })
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// Raises the flag when dropped: on a timeout, and when the client disconnects and axum drops
/// the handler's future.
pub(crate) struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `f` on the blocking pool under the configured timeout; `f` gets the cancellation flag,
/// raised once the answer no longer matters.
pub(crate) async fn blocking<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&AtomicBool) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let handle = tokio::task::spawn_blocking(move || f(&cancel));
    match tokio::time::timeout(s.config.request_timeout, handle).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "scoring_failed",
            format!("scoring task failed: {e}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("scoring took longer than {:?}", s.config.request_timeout),
        )),
    }
}

pub(crate) fn check_batch(s: &AppState, n: usize, field: &str) -> Result<(), ApiError> {
    if n > s.config.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "batch of {n} samples exceeds the server's limit of {}",
                s.config.max_batch
            ),
        )
        .field(field));
    }
    Ok(())
}

/// Scores requests in order, on all cores (rayon) when the batch is large enough to pay for it.
/// `None` once `cancel` is raised: the samples not started by then are skipped.
pub(crate) fn score_all<T: Send>(
    n: usize,
    threshold: usize,
    cancel: &AtomicBool,
    f: impl Fn(usize) -> T + Send + Sync,
) -> Option<Vec<T>> {
    use rayon::prelude::*;
    let one = |i| (!cancel.load(Ordering::Relaxed)).then(|| f(i));
    if n >= threshold {
        (0..n).into_par_iter().map(one).collect()
    } else {
        (0..n).map(one).collect()
    }
}

/// The answer for work cancelled before it finished (only reachable after the timeout fired).
pub(crate) fn cancelled(s: &AppState) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        format!("scoring took longer than {:?}", s.config.request_timeout),
    )
}

/// The response length L the reference would have seen (spec §3: every generated token up to and
/// including the end-of-sequence token), counted with the server's tokenizer under the client's
/// `eos` convention. `Ok(None)` when the server has no tokenizer.
pub(crate) fn counted_length(
    s: &AppState,
    text: &str,
    eos: Eos,
    truncated: Option<bool>,
    max_response_length: Option<u64>,
) -> Result<Option<f64>, String> {
    let Some(counter) = &s.counter else {
        return Ok(None);
    };
    let n = counter.count(text);
    let added = match eos {
        // A trailing end-of-sequence token is in the text and counted there, exactly once.
        Eos::InText => 0,
        Eos::Stripped => {
            let cut = truncated.or(max_response_length.map(|m| n as u64 >= m));
            match cut {
                Some(true) => 0,
                Some(false) => s.config.eos_tokens,
                None => {
                    return Err(
                        "eos \"stripped\" needs `truncated` or `max_response_length` to tell \
                         whether the response ended with the end-of-sequence token"
                            .into(),
                    );
                }
            }
        }
    };
    Ok(Some((n + added) as f64))
}

/// 0/1 correctness by the Med-U1 validation scorer (0 where it raises).
pub(crate) fn correctness(profile: &Profile, r: &ScoreRequest, _o: &ScoreOutput) -> f64 {
    let Ok(sol) = r.solution_str() else {
        return 0.0;
    };
    let input = Input {
        data_source: &r.data_source,
        solution_str: &sol,
        ground_truth: &r.ground_truth,
        lower_limit: r.lower_limit.as_limit(),
        upper_limit: r.upper_limit.as_limit(),
        num_tokens: r.num_tokens,
        valid_response_length: r.valid_response_length.unwrap_or(0.0),
    };
    val_score(profile, &input).unwrap_or(0.0)
}

pub(crate) trait DeserializeRow: Sized {
    fn deserialize_row(v: &serde_json::Value) -> Result<Self, RowError>;
}

impl DeserializeRow for ScoreRequest {
    fn deserialize_row(v: &serde_json::Value) -> Result<ScoreRequest, RowError> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            let field = if path != "." {
                Some(path)
            } else {
                message
                    .split_once("field `")
                    .and_then(|(_, rest)| rest.split('`').next())
                    .map(str::to_string)
            };
            RowError::Invalid { field, message }
        })
    }
}
