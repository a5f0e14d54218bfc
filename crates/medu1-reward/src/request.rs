//! The wire format shared by `medu1 score` and the reward server: one [`ScoreRequest`] per sample
//! in, one [`ScoreOutput`] or a per-row [`RowError`] out, and [`score_batch`] for many rows on all
//! cores. A bad row never prevents the others from being scored.

use std::borrow::Cow;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{PyException, RewardError};
use crate::extract::{analyse, split_header};
use crate::profile::{Profile, SettingsOverride};
use crate::py_split;
use crate::score::{Input, Limit, Parts, Scorer, score_parts_extracted};
use crate::trace::{Components, Trace, trace_with};

/// A calculation limit on the wire: JSON `null`, a string (parsed like Python `float()`) or a
/// number.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LimitValue {
    #[default]
    Null,
    Str(String),
    Num(f64),
}

impl LimitValue {
    pub fn as_limit(&self) -> Limit<'_> {
        match self {
            LimitValue::Null => Limit::Missing,
            LimitValue::Str(s) => Limit::Str(s),
            LimitValue::Num(v) => Limit::Num(*v),
        }
    }
}

fn minus_one() -> i64 {
    -1
}

/// One sample to score.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// Selects the grading branch and the scorer (`MedCalc-Bench` -> `compute_score_calc`).
    pub data_source: String,
    /// The decoded prompt + response. Give either this or `prompt` + `response`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution_str: Option<String>,
    /// The prompt text (with its chat template); concatenated with `response`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    pub ground_truth: String,
    #[serde(default)]
    pub lower_limit: LimitValue,
    #[serde(default)]
    pub upper_limit: LimitValue,
    /// Token budget N (−1: none).
    #[serde(default = "minus_one")]
    pub num_tokens: i64,
    /// Response length in tokens including EOS. When absent, the number of whitespace-separated
    /// words of the response is used (see [`LengthSource::WordCount`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_response_length: Option<f64>,
    /// Per-request changes to the profile's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsOverride>,
}

/// Where the response length came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthSource {
    /// `valid_response_length` was given.
    Given,
    /// Not given: Python `str.split()` word count of the response (the `response` field, or the
    /// text after the response header of `solution_str`, or all of it without a header). A crude
    /// stand-in for a token count; send the real count whenever a budget is used.
    WordCount,
}

/// The reward of one sample and its terms: `reward = format + (answer + length)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreOutput {
    pub reward: f64,
    /// Format term F.
    pub format: f64,
    /// Answer term A before the length term.
    pub answer: f64,
    /// Length term Δ.
    pub length: f64,
    pub format_valid: bool,
    pub extracted_answer: Option<String>,
    pub scorer: Scorer,
    pub valid_response_length: f64,
    pub length_source: LengthSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Components>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
}

/// What a scored row should carry besides the reward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Compute all components (EMS, BLEU, Rouge-L, ...), costlier than the reward alone.
    pub components: bool,
    /// Attach the full [`Trace`].
    pub trace: bool,
    /// Skip Rouge-L (a component only, never part of the reward) when the answer or the ground
    /// truth has more normalised words than this; `None`: no cap. See
    /// [`crate::rouge::DEFAULT_MAX_ROUGE_WORDS`].
    pub max_rouge_words: Option<usize>,
}

/// Why a row could not be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RowError {
    /// The row is not a valid request (bad JSON, wrong type, unknown field).
    #[error("invalid request: {message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    /// Neither `solution_str` nor `prompt`/`response` was given.
    #[error("missing field: give solution_str or prompt and response")]
    MissingText,
    /// Both `solution_str` and `prompt`/`response` were given.
    #[error("conflicting fields: give solution_str or prompt and response, not both")]
    ConflictingText,
    /// The reference scorer raises on this row.
    #[error("{error}")]
    Reward {
        error: RewardError,
        python_exception: PyException,
    },
}

impl RowError {
    /// The request field at fault, if one is known.
    pub fn field(&self) -> Option<&str> {
        match self {
            RowError::Invalid { field, .. } => field.as_deref(),
            RowError::MissingText | RowError::ConflictingText => Some("solution_str"),
            RowError::Reward { error, .. } => Some(match error {
                RewardError::UnknownDataSource { .. } => "data_source",
                RewardError::InvalidLimit { side, .. } | RewardError::MissingLimit { side } => {
                    match side {
                        crate::error::LimitSide::LowerLimit => "lower_limit",
                        crate::error::LimitSide::UpperLimit => "upper_limit",
                    }
                }
            }),
        }
    }
}

impl From<RewardError> for RowError {
    fn from(error: RewardError) -> RowError {
        RowError::Reward {
            python_exception: error.py_exception(),
            error,
        }
    }
}

impl ScoreRequest {
    /// The scored string: `solution_str`, or `prompt + response`.
    pub fn solution_str(&self) -> Result<Cow<'_, str>, RowError> {
        match (&self.solution_str, &self.prompt, &self.response) {
            (Some(s), None, None) => Ok(Cow::Borrowed(s)),
            (Some(_), _, _) => Err(RowError::ConflictingText),
            (None, None, None) => Err(RowError::MissingText),
            (None, p, r) => Ok(Cow::Owned(format!(
                "{}{}",
                p.as_deref().unwrap_or(""),
                r.as_deref().unwrap_or("")
            ))),
        }
    }

    /// The response length and where it came from.
    pub fn response_length(&self, solution_str: &str) -> (f64, LengthSource) {
        if let Some(l) = self.valid_response_length {
            return (l, LengthSource::Given);
        }
        let text = match &self.response {
            Some(r) => r.as_str(),
            None => split_header(solution_str).1,
        };
        (py_split(text).count() as f64, LengthSource::WordCount)
    }
}

/// Scores one request with `profile` (plus the request's overrides).
pub fn score_request(
    profile: &Profile,
    req: &ScoreRequest,
    opts: ScoreOptions,
) -> Result<ScoreOutput, RowError> {
    let owned;
    let profile = match &req.settings {
        Some(o) => {
            owned = profile.with_overrides(o);
            &owned
        }
        None => profile,
    };
    let sol = req.solution_str()?;
    let (len, length_source) = req.response_length(&sol);
    let input = Input {
        data_source: &req.data_source,
        solution_str: &sol,
        ground_truth: &req.ground_truth,
        lower_limit: req.lower_limit.as_limit(),
        upper_limit: req.upper_limit.as_limit(),
        num_tokens: req.num_tokens,
        valid_response_length: len,
    };
    let scorer = Scorer::for_source(&req.data_source);
    let (ext, verdict) = analyse(&sol);
    let Parts {
        format_valid,
        format,
        answer,
        length,
        total,
    } = score_parts_extracted(scorer, profile, &input, &ext, verdict.is_valid())?;
    let tr = (opts.trace).then(|| trace_with(scorer, profile, &input, opts.max_rouge_words));
    let components = if opts.components {
        Some(match &tr {
            Some(t) => t.components.clone(),
            None => crate::trace::components_with(&input, opts.max_rouge_words),
        })
    } else {
        None
    };
    Ok(ScoreOutput {
        reward: total,
        format,
        answer,
        length,
        format_valid,
        extracted_answer: ext.answer.map(str::to_owned),
        scorer,
        valid_response_length: len,
        length_source,
        components,
        trace: tr,
    })
}

/// Scores many requests in parallel (rayon's global pool); results keep the input order and a
/// failing row only fails itself.
pub fn score_batch(
    profile: &Profile,
    reqs: &[ScoreRequest],
    opts: ScoreOptions,
) -> Vec<Result<ScoreOutput, RowError>> {
    reqs.par_iter()
        .map(|r| score_request(profile, r, opts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> ScoreRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn limits_accept_strings_numbers_and_null() {
        let r = req(
            r#"{"data_source":"MedCalc-Bench","solution_str":"Assistant:<think></think><answer>5</answer>",
                "ground_truth":"5","lower_limit":"4.5","upper_limit":5.5}"#,
        );
        assert_eq!(r.lower_limit, LimitValue::Str("4.5".into()));
        assert_eq!(r.upper_limit, LimitValue::Num(5.5));
        assert_eq!(r.num_tokens, -1);
        let out = score_request(&Profile::med_u1(), &r, ScoreOptions::default()).unwrap();
        assert_eq!(out.reward, 2.0);
        assert_eq!(out.scorer, Scorer::ComputeScoreCalc);
    }

    #[test]
    fn prompt_and_response_are_concatenated_and_counted() {
        let r = req(
            r#"{"data_source":"MedIQ","prompt":"<|im_start|>assistant\n","response":"<think>a b</think><answer>B</answer>",
                "ground_truth":"B","num_tokens":2}"#,
        );
        let out = score_request(&Profile::med_u1(), &r, ScoreOptions::default()).unwrap();
        assert_eq!(out.length_source, LengthSource::WordCount);
        assert_eq!(out.valid_response_length, 2.0);
        assert_eq!(out.reward, 1.0 + (1.0 + 1.0));
    }

    #[test]
    fn batch_keeps_order_and_isolates_errors() {
        let good = req(
            r#"{"data_source":"MedIQ","solution_str":"Assistant:<answer>A</answer>","ground_truth":"A"}"#,
        );
        let bad = req(
            r#"{"data_source":"MMLU-Pro","solution_str":"Assistant:<answer>A</answer>","ground_truth":"A"}"#,
        );
        let none = ScoreRequest {
            data_source: "MedIQ".into(),
            ..Default::default()
        };
        let out = score_batch(
            &Profile::med_u1(),
            &[good.clone(), bad, none, good],
            ScoreOptions::default(),
        );
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].as_ref().unwrap().reward, -1.0 + 1.0);
        let e = out[1].as_ref().unwrap_err();
        assert_eq!(e.field(), Some("data_source"));
        assert!(matches!(
            e,
            RowError::Reward {
                python_exception: PyException::ValueError,
                ..
            }
        ));
        assert_eq!(out[2].as_ref().unwrap_err(), &RowError::MissingText);
        assert!(out[3].is_ok());
    }

    #[test]
    fn per_request_overrides() {
        let mut r = req(
            r#"{"data_source":"MedIQ","solution_str":"Assistant:<answer>B</answer>","ground_truth":"B"}"#,
        );
        r.settings = Some(SettingsOverride {
            check_think: Some(false),
            ..Default::default()
        });
        let out = score_request(
            &Profile::med_u1(),
            &r,
            ScoreOptions {
                components: true,
                trace: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(out.reward, 2.0);
        assert!(out.trace.is_some());
        // "B" survives normalisation ("A" would not: it is an article, quirk 5).
        assert_eq!(out.components.unwrap().ems, Some(100.0));
    }

    #[test]
    fn rouge_l_over_the_word_cap_is_skipped_with_a_reason_and_the_reward_is_unchanged() {
        let long = vec!["fever"; 50].join(" ");
        let r = ScoreRequest {
            data_source: "medical-o1-reasoning-SFT".into(),
            solution_str: Some(format!("Assistant:<think>t</think><answer>{long}</answer>")),
            ground_truth: long.clone(),
            ..Default::default()
        };
        let opts = |cap| ScoreOptions {
            components: true,
            trace: true,
            max_rouge_words: cap,
        };
        let p = Profile::med_u1();
        let free = score_request(&p, &r, opts(None)).unwrap();
        let under = score_request(&p, &r, opts(Some(50))).unwrap();
        let over = score_request(&p, &r, opts(Some(49))).unwrap();
        assert_eq!(free, under);
        assert_eq!(under.components.as_ref().unwrap().rouge_l, Some(100.0));
        let c = over.components.as_ref().unwrap();
        assert_eq!(c.rouge_l, None);
        let why = c.rouge_l_skipped.as_deref().unwrap();
        assert!(
            why.contains("50 words") && why.contains("cap of 49"),
            "{why}"
        );
        assert_eq!(over.trace.as_ref().unwrap().components, *c);
        assert_eq!((over.reward, over.answer), (under.reward, under.answer));
        assert_eq!(c.ems, under.components.as_ref().unwrap().ems);
    }
}
