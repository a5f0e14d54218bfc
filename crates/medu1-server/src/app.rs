//! The HTTP application: routes, limits and the blocking scoring work.
//!
//! Scoring is CPU-bound, so it runs on tokio's blocking pool (and on rayon for large batches)
//! under a per-request timeout; the async side only parses, dispatches and answers. A request that
//! times out (or whose client goes away) raises a cancellation flag that the scoring loop checks
//! before every sample, so the CPU is free again soon after the 504.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use medu1_reward::{
    Input, Profile, RowError, ScoreOptions, ScoreOutput, ScoreRequest, score_request, val_score,
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::metrics::{ErrorLabel, Metrics, RouteLabel};
use crate::protocol::{Eos, Label, RewardBody, RewardResponse, ScoreBody, ScoreResponse};

/// Counts response tokens for the length term when the client does not send the length.
pub trait TokenCounter: Send + Sync + std::fmt::Debug {
    fn count(&self, text: &str) -> usize;
}

/// Server settings (`medu1 serve` flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub profile: Profile,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most samples in one request.
    pub max_batch: usize,
    /// Scoring time limit per request.
    pub request_timeout: Duration,
    /// Data source for `/reward` labels that carry none.
    pub default_source: Option<String>,
    /// Reward given to a `/reward` sample the reference would raise on; `None` rejects the request.
    pub error_reward: Option<f64>,
    /// Tokens the end-of-sequence marker adds to a counted response length when the text was
    /// decoded without it (`eos: "stripped"`) and the response was not truncated.
    pub eos_tokens: usize,
    /// Batches at least this large are scored on all cores.
    pub parallel_threshold: usize,
    /// Time a client has to send a request's headers; the connection is closed after it.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body once the headers are in; answered 408 after it.
    pub body_read_timeout: Duration,
    /// How long a shutdown waits for requests in flight before the server stops anyway.
    pub shutdown_timeout: Duration,
    /// Rouge-L (a component of `/score`, never part of a reward) is skipped for an answer or
    /// ground truth longer than this many normalised words; `None`: no cap.
    pub max_rouge_words: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            profile: Profile::med_u1(),
            max_body_bytes: 64 << 20,
            max_batch: 8192,
            request_timeout: Duration::from_secs(30),
            default_source: None,
            error_reward: None,
            eos_tokens: 1,
            parallel_threshold: 64,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            max_rouge_words: Some(medu1_reward::DEFAULT_MAX_ROUGE_WORDS),
        }
    }
}

#[derive(Debug)]
pub struct AppState {
    pub config: ServerConfig,
    pub counter: Option<Arc<dyn TokenCounter>>,
    pub metrics: Metrics,
}

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

fn parse_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
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
async fn measured<F>(s: &AppState, route: &'static str, work: F) -> Response
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
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `f` on the blocking pool under the configured timeout; `f` gets the cancellation flag,
/// raised once the answer no longer matters.
async fn blocking<T: Send + 'static>(
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

fn check_batch(s: &AppState, n: usize, field: &str) -> Result<(), ApiError> {
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
fn score_all<T: Send>(
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
fn cancelled(s: &AppState) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        format!("scoring took longer than {:?}", s.config.request_timeout),
    )
}

fn parse_label(s: &AppState, row: usize, v: Option<&serde_json::Value>) -> Result<Label, ApiError> {
    let bad = |msg: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_label", msg)
            .field("labels")
            .row(row)
    };
    let default_source = || s.config.default_source.clone();
    let label: Label = match v {
        None => {
            return Err(bad(format!(
                "labels[{row}] is missing: the Med-U1 reward needs the ground truth"
            )));
        }
        Some(serde_json::Value::Object(_)) => {
            serde_json::from_value(v.cloned().unwrap_or_default())
                .map_err(|e| bad(format!("labels[{row}]: {e}")))?
        }
        Some(serde_json::Value::String(text)) => {
            if text.trim_start().starts_with('{') {
                serde_json::from_str(text).map_err(|e| bad(format!("labels[{row}]: {e}")))?
            } else {
                return Ok(Label::plain(text.clone(), default_source()));
            }
        }
        Some(other) => {
            return Err(bad(format!(
                "labels[{row}] must be a JSON string or object, got {other}"
            )));
        }
    };
    if let Some(key) = label.unknown_key() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_label",
            format!(
                "labels[{row}] has unknown key `{key}` (a misspelt field would silently change the \
                 reward; send \"allow_unknown_keys\": true in the label to accept extra keys)"
            ),
        )
        .field(format!("labels.{key}"))
        .row(row));
    }
    Ok(label)
}

/// The response length L the reference would have seen (spec §3: every generated token up to and
/// including the end-of-sequence token), counted with the server's tokenizer under the client's
/// `eos` convention. `Ok(None)` when the server has no tokenizer.
fn counted_length(
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

/// Builds the scorer's request from an OpenRLHF sample.
fn to_request(
    s: &AppState,
    row: usize,
    query: String,
    prompt: Option<&str>,
    label: Label,
) -> Result<ScoreRequest, ApiError> {
    let data_source = label
        .data_source
        .or_else(|| s.config.default_source.clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_label",
                format!("labels[{row}] has no data_source and the server has no --default-source"),
            )
            .field("labels.data_source")
            .row(row)
        })?;
    // OpenRLHF's query is prompt + response; the response is what follows the prompt.
    let (prompt, response) = match prompt {
        Some(p) if query.starts_with(p) => {
            let response = query[p.len()..].to_string();
            (Some(p.to_string()), response)
        }
        _ => (None, query),
    };
    let length = match label.response_length {
        Some(l) => Some(l),
        None if label.num_tokens != -1 => {
            let bad = |msg: String| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_label", msg).row(row)
            };
            let counted = counted_length(
                s,
                &response,
                label.eos.unwrap_or(Eos::InText),
                label.truncated,
                label.max_response_length,
            )
            .map_err(|m| bad(format!("labels[{row}]: {m}")).field("labels.eos"))?;
            // Without a length the scorer would fall back to a word count, silently far from the
            // token count the budget is about.
            Some(counted.ok_or_else(|| {
                bad(format!(
                    "labels[{row}] has a budget (num_tokens {}) but no response_length, and the \
                     server has no --tokenizer to count the response",
                    label.num_tokens
                ))
                .field("labels.response_length")
            })?)
        }
        None => None,
    };
    let (solution_str, prompt, response) = match prompt {
        Some(p) => (None, Some(p), Some(response)),
        None => (Some(response), None, None),
    };
    Ok(ScoreRequest {
        data_source,
        solution_str,
        prompt,
        response,
        ground_truth: label.ground_truth,
        lower_limit: label.lower_limit,
        upper_limit: label.upper_limit,
        num_tokens: label.num_tokens,
        valid_response_length: length,
        settings: label.settings,
    })
}

async fn reward(State(s): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let st = s.clone();
    measured(&s, "reward", async move {
        let body: RewardBody = parse_body(body)?;
        let n = body.query.len();
        check_batch(&st, n, "query")?;
        if let Some(p) = &body.prompts
            && p.len() != n
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("prompts has {} entries, query has {n}", p.len()),
            )
            .field("prompts"));
        }
        let labels = body.labels.unwrap_or_default();
        if labels.len() != n {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("labels has {} entries, query has {n}", labels.len()),
            )
            .field("labels"));
        }
        let mut reqs = Vec::with_capacity(n);
        for (i, (q, l)) in body.query.into_iter().zip(&labels).enumerate() {
            let prompt = body.prompts.as_ref().map(|p| p[i].as_str());
            let req = parse_label(&st, i, Some(l)).and_then(|label| to_request(&st, i, q, prompt, label));
            match req {
                // With --error-reward a bad label scores like a sample the scorer rejects: OpenRLHF
                // drops a 4xx answer and trains on `None`, never showing its body.
                Err(e) if st.config.error_reward.is_none() => return Err(e),
                r => reqs.push(r),
            }
        }
        let st2 = st.clone();
        let results = blocking(&st, move |cancel| {
            let profile = &st2.config.profile;
            score_all(reqs.len(), st2.config.parallel_threshold, cancel, |i| {
                let r = reqs[i].as_ref().map_err(|e| Failure::Label(e.message.clone()))?;
                score_request(profile, r, ScoreOptions::default())
                    .map(|o| (o.clone(), correctness(profile, r, &o)))
                    .map_err(Failure::Score)
            })
        })
        .await?
        .ok_or_else(|| cancelled(&st))?;
        let mut out = RewardResponse {
            rewards: Vec::with_capacity(n),
            scores: Vec::with_capacity(n),
            extra_logs: Default::default(),
        };
        let mut logs: [Vec<f64>; 4] = Default::default();
        let (mut errors, mut label_errors) = (0usize, 0usize);
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok((o, acc)) => {
                    out.rewards.push(o.reward);
                    out.scores.push(acc);
                    logs[0].push(o.format);
                    logs[1].push(o.answer);
                    logs[2].push(o.length);
                    logs[3].push(0.0);
                }
                Err(failure) => {
                    let Some(v) = st.config.error_reward else {
                        return Err(match failure {
                            Failure::Score(e) => row_error(i, &e),
                            // Unreachable: without --error-reward a bad label ends the request.
                            Failure::Label(m) => ApiError::new(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                "invalid_label",
                                m,
                            )
                            .row(i),
                        });
                    };
                    let message = match &failure {
                        Failure::Label(m) => {
                            label_errors += 1;
                            m.clone()
                        }
                        Failure::Score(e) => {
                            errors += 1;
                            e.to_string()
                        }
                    };
                    tracing::warn!(
                        row = i,
                        reward = v,
                        "/reward sample {i} cannot be scored ({message}); answered --error-reward {v}"
                    );
                    out.rewards.push(v);
                    out.scores.push(0.0);
                    logs[0].push(0.0);
                    logs[1].push(0.0);
                    logs[2].push(0.0);
                    logs[3].push(1.0);
                }
            }
        }
        if errors > 0 {
            st.metrics
                .errors
                .get_or_create(&ErrorLabel {
                    route: "reward",
                    kind: "sample",
                })
                .inc_by(errors as u64);
        }
        if label_errors > 0 {
            st.metrics
                .errors
                .get_or_create(&ErrorLabel {
                    route: "reward",
                    kind: "label",
                })
                .inc_by(label_errors as u64);
        }
        let [format, answer, length, error] = logs;
        out.extra_logs.insert("format_reward", format);
        out.extra_logs.insert("answer_reward", answer);
        out.extra_logs.insert("length_reward", length);
        out.extra_logs.insert("scoring_error", error);
        Ok((Json(out).into_response(), n))
    })
    .await
}

/// Why a `/reward` sample got no reward of its own.
enum Failure {
    Label(String),
    Score(RowError),
}

/// 0/1 correctness by the Med-U1 validation scorer (0 where it raises).
fn correctness(profile: &Profile, r: &ScoreRequest, _o: &ScoreOutput) -> f64 {
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

fn row_error(row: usize, e: &RowError) -> ApiError {
    let mut err = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "scoring_error",
        format!("sample {row}: {e} (start the server with --error-reward to score such samples)"),
    )
    .row(row);
    if let Some(f) = e.field() {
        err = err.field(f);
    }
    err
}

fn row_error_json(row: usize, e: &RowError) -> serde_json::Value {
    serde_json::json!({"error": {"row": row, "field": e.field(), "message": e.to_string(), "detail": e}})
}

async fn score(State(s): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let st = s.clone();
    measured(&s, "score", async move {
        let body: ScoreBody = parse_body(body)?;
        let n = body.requests.len();
        check_batch(&st, n, "requests")?;
        let opts = ScoreOptions {
            components: body.components,
            trace: body.explain,
            max_rouge_words: st.config.max_rouge_words,
        };
        let st2 = st.clone();
        let rows = body.requests;
        let (results, errors) = blocking(&st, move |cancel| {
            let profile = &st2.config.profile;
            let results = score_all(rows.len(), st2.config.parallel_threshold, cancel, |i| {
                let parsed = split_length_fields(&rows[i]).and_then(|(fields, row)| {
                    let mut r = ScoreRequest::deserialize_row(&row)?;
                    count_length(&st2, &mut r, fields)?;
                    Ok(r)
                });
                match parsed.and_then(|r| score_request(profile, &r, opts).map(|o| (r, o))) {
                    Ok((r, o)) => {
                        let accuracy = correctness(profile, &r, &o);
                        let mut v = serde_json::to_value(o).unwrap_or_default();
                        v["accuracy"] = accuracy.into();
                        (v, false)
                    }
                    Err(e) => (row_error_json(i, &e), true),
                }
            })?;
            let errors = results.iter().filter(|(_, e)| *e).count();
            Some((
                results.into_iter().map(|(v, _)| v).collect::<Vec<_>>(),
                errors,
            ))
        })
        .await?
        .ok_or_else(|| cancelled(&st))?;
        if errors > 0 {
            st.metrics
                .errors
                .get_or_create(&ErrorLabel {
                    route: "score",
                    kind: "sample",
                })
                .inc_by(errors as u64);
        }
        Ok((Json(ScoreResponse { results, errors }).into_response(), n))
    })
    .await
}

/// The server-side fields of a `/score` row that say how to count its length (see [`Eos`]).
#[derive(Debug, Default)]
struct LengthFields {
    eos: Option<Eos>,
    truncated: Option<bool>,
    max_response_length: Option<u64>,
}

/// Takes `eos`, `truncated` and `max_response_length` out of a `/score` row, leaving the
/// library's [`ScoreRequest`].
fn split_length_fields(
    row: &serde_json::Value,
) -> Result<(LengthFields, serde_json::Value), RowError> {
    let mut row = row.clone();
    let mut fields = LengthFields::default();
    if let Some(obj) = row.as_object_mut() {
        fn take<T: DeserializeOwned>(
            obj: &mut serde_json::Map<String, serde_json::Value>,
            key: &str,
        ) -> Result<Option<T>, RowError> {
            match obj.remove(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => serde_json::from_value(v)
                    .map(Some)
                    .map_err(|e| RowError::Invalid {
                        field: Some(key.to_string()),
                        message: format!("{key}: {e}"),
                    }),
            }
        }
        fields.eos = take(obj, "eos")?;
        fields.truncated = take(obj, "truncated")?;
        fields.max_response_length = take(obj, "max_response_length")?;
    }
    Ok((fields, row))
}

/// Counts the response's tokens with the server's tokenizer when the length term needs a length
/// the request did not send (only for requests that give `response` separately).
fn count_length(s: &AppState, r: &mut ScoreRequest, f: LengthFields) -> Result<(), RowError> {
    if r.valid_response_length.is_some() || r.num_tokens == -1 {
        return Ok(());
    }
    if let Some(resp) = &r.response {
        r.valid_response_length = counted_length(
            s,
            resp,
            f.eos.unwrap_or(Eos::InText),
            f.truncated,
            f.max_response_length,
        )
        .map_err(|message| RowError::Invalid {
            field: Some("eos".into()),
            message,
        })?;
    }
    Ok(())
}

trait DeserializeRow: Sized {
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
