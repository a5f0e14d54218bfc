//! The HTTP application: routes, limits and the blocking scoring work.
//!
//! Scoring is CPU-bound, so it runs on tokio's blocking pool (and on rayon for large batches)
//! under a per-request timeout; the async side only parses, dispatches and answers. A request that
//! times out (or whose client goes away) raises a cancellation flag that the scoring loop checks
//! before every sample, so the CPU is free again soon after the 504.
//!
//! This module builds the router and reads request bodies; `state.rs` holds the configuration,
//! `handling.rs` what the scoring routes share, `route_reward.rs` and `route_score.rs` the two
//! scoring routes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::error::ApiError;
use crate::metrics::ErrorLabel;
use crate::route_reward::reward;
use crate::route_score::score;
pub use crate::state::{AppState, ServerConfig, TokenCounter};

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/reward", post(reward))
        .route("/score", post(score))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            read_body,
        ))
        .with_state(state)
}

/// How far past the body limit a declared body is still drained before the 413 (see below).
const DRAIN_MAX: u64 = 16 << 20;

/// Reads the whole request body before any handler runs: a declared `Content-Length` over the
/// limit is refused (413) before a byte of the body is read, the body is read under
/// `body_read_timeout` (408 for a client that stalls mid-body) and never past the limit (413 for
/// chunked bodies that grow too large).
async fn read_body(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    use http_body_util::{BodyExt, LengthLimitError, Limited};
    let limit = s.config.max_body_bytes;
    let refuse = |e: ApiError| {
        s.metrics
            .errors
            .get_or_create(&ErrorLabel {
                route: "http",
                kind: e.error,
            })
            .inc();
        e.into_response()
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if let Some(n) = declared
        && n > limit as u64
    {
        // A client still writing its body when the connection closes sees a broken pipe, not
        // this answer; a body at most DRAIN_MAX over the limit is read and discarded first
        // (under the body timeout) so the client gets to read the 413. Anything larger is
        // refused at once, unread.
        if n <= limit as u64 + DRAIN_MAX {
            let mut body = req.into_body();
            let drain = async {
                while let Some(frame) = body.frame().await {
                    if frame.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(s.config.body_read_timeout, drain).await;
        }
        return refuse(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("content-length {n} exceeds the server's limit of {limit} bytes"),
        ));
    }
    let (parts, body) = req.into_parts();
    let timeout = s.config.body_read_timeout;
    let bytes = match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return refuse(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body exceeds the server's limit of {limit} bytes"),
            ));
        }
        Ok(Err(e)) => {
            return refuse(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("reading the request body failed: {e}"),
            ));
        }
        Err(_) => {
            return refuse(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {timeout:?}"),
            ));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn health(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "profile": s.config.profile.name,
        "version": env!("CARGO_PKG_VERSION"),
        "tokenizer": s.counter.is_some(),
    }))
}

async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
}
