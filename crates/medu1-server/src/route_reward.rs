//! `POST /reward`: OpenRLHF's remote reward protocol (queries, prompts and labels in, one reward
//! per query out).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use medu1_reward::{RowError, ScoreOptions, ScoreRequest, score_request};

use crate::error::ApiError;
use crate::handling::{
    blocking, cancelled, check_batch, correctness, counted_length, measured, parse_body, score_all,
};
use crate::metrics::ErrorLabel;
use crate::protocol::{Eos, Label, RewardBody, RewardResponse};
use crate::state::AppState;

pub(crate) fn parse_label(
    s: &AppState,
    row: usize,
    v: Option<&serde_json::Value>,
) -> Result<Label, ApiError> {
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

/// Builds the scorer's request from an OpenRLHF sample.
pub(crate) fn to_request(
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

pub(crate) async fn reward(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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
pub(crate) enum Failure {
    Label(String),
    Score(RowError),
}

pub(crate) fn row_error(row: usize, e: &RowError) -> ApiError {
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
