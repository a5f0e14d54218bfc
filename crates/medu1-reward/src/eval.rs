//! The offline evaluation path (§2.12: `vllm_inference.extract_solution` + `extract_to_eval`),
//! which reports benchmark numbers after training and is never part of the reward.
//!
//! It differs from training in two ways: the extractor falls back to `</answer>(.*?)</answer>`,
//! and a response without an answer is graded on its whole processed text (quirk 18).

use serde::{Deserialize, Serialize};

use crate::ems::ems_normalized;
use crate::error::RewardError;
use crate::extract::extract_solution_eval;
use crate::normalize::Normalized;
use crate::rouge::rouge_l_normalized;
use crate::score::{CALC_SOURCE, FREE_TEXT_SOURCE, Input, MCQ_SOURCES, val_calc_answer};

/// The free-text metric of the evaluation script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EvalMetric {
    #[serde(rename = "EMS")]
    Ems,
    #[serde(rename = "Rouge-L")]
    RougeL,
}

/// What the evaluation extractor hands to the grader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalResponse<'a> {
    /// The extracted answer (with the closing-tag fallback), possibly empty.
    pub extracted_answer: Option<&'a str>,
    /// The graded text: the answer if non-empty, else the whole processed string.
    pub generated: &'a str,
    /// `true` when the whole processed string is graded.
    pub is_processed_str: bool,
}

/// Extraction as the evaluation script does it.
pub fn eval_response(solution_str: &str) -> EvalResponse<'_> {
    let ext = extract_solution_eval(solution_str);
    match ext.answer {
        Some(a) if !a.is_empty() => EvalResponse {
            extracted_answer: Some(a),
            generated: a,
            is_processed_str: false,
        },
        other => EvalResponse {
            extracted_answer: other,
            generated: ext.processed,
            is_processed_str: true,
        },
    }
}

/// `eval_other(data_source, generated, ground_truth, metric)`: EMS or Rouge-L (0–100) for free
/// text, exact match 0/1 for MCQ sources and `MMLU-Pro`.
pub fn eval_other(
    data_source: &str,
    generated: &str,
    ground_truth: &str,
    metric: EvalMetric,
) -> Result<f64, RewardError> {
    if data_source == FREE_TEXT_SOURCE {
        let mut c = Normalized::new();
        let mut r = Normalized::new();
        c.normalize(generated);
        r.normalize(ground_truth);
        Ok(match metric {
            EvalMetric::Ems => ems_normalized(&c, &r),
            EvalMetric::RougeL => rouge_l_normalized(&c, &r),
        })
    } else if MCQ_SOURCES.contains(&data_source) || data_source == "MMLU-Pro" {
        Ok(if generated == ground_truth { 1.0 } else { 0.0 })
    } else {
        Err(RewardError::UnknownDataSource {
            data_source: data_source.to_owned(),
        })
    }
}

/// `select_eval_fn(data_source)(...)` on a full decoded sequence.
pub fn eval_score(input: &Input<'_>, metric: EvalMetric) -> Result<f64, RewardError> {
    let r = eval_response(input.solution_str);
    if input.data_source == CALC_SOURCE {
        val_calc_answer(Some(r.generated), input)
    } else {
        eval_other(input.data_source, r.generated, input.ground_truth, metric)
    }
}
