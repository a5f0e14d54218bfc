//! `POST /score`: medu1's native batch form (score requests in, a result or a per-row error for
//! each).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use medu1_reward::{RowError, ScoreOptions, ScoreRequest, score_request};
use serde::de::DeserializeOwned;

use crate::handling::{
    DeserializeRow, blocking, cancelled, check_batch, correctness, counted_length, measured,
    parse_body, score_all,
};
use crate::metrics::ErrorLabel;
use crate::protocol::{Eos, ScoreBody, ScoreResponse};
use crate::state::AppState;

pub(crate) fn row_error_json(row: usize, e: &RowError) -> serde_json::Value {
    serde_json::json!({"error": {"row": row, "field": e.field(), "message": e.to_string(), "detail": e}})
}

pub(crate) async fn score(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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
pub(crate) struct LengthFields {
    eos: Option<Eos>,
    truncated: Option<bool>,
    max_response_length: Option<u64>,
}

/// Takes `eos`, `truncated` and `max_response_length` out of a `/score` row, leaving the
/// library's [`ScoreRequest`].
pub(crate) fn split_length_fields(
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
pub(crate) fn count_length(
    s: &AppState,
    r: &mut ScoreRequest,
    f: LengthFields,
) -> Result<(), RowError> {
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
