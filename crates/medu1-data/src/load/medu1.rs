//! Med-U1's processed items (`deepscaler/data/test/*.json`, `medu1/*.json`).
//!
//! The key holding the options varies (`options` in MediQ files, `choices` in MedXpertQA and
//! EHRNoteQA files, both in `medoption.json`, spec §1.1). Free-text answers keep their
//! `<answer>\n…\n</answer>\n` wrapper in the source; the sample's answer is the released
//! files' stripped form and the raw one is kept for the published-script variant.

use super::fields::{Ctx, check_letter, copy_extra, opt_text, options_field, req_str};
use crate::ovalue::OValue;
use crate::prompt::{RAW_ANSWER_KEY, strip_answer_tags};
use crate::record::FieldError;
use crate::source::kind_of_source;
use medu1_core::{Budget, CalcOutput, Sample, Task, TaskKind};

/// Parses one item; `index` is its position in the file (the id when the item has none).
pub fn parse(v: &OValue, index: usize, ctx: &Ctx) -> Result<Sample, FieldError> {
    sample_from_item(v, index, &ctx.split_for(None))
}

/// The conversion itself, usable without a file (the golden test builds items directly).
pub fn sample_from_item(v: &OValue, index: usize, split: &str) -> Result<Sample, FieldError> {
    if v.as_object().is_none() {
        return Err(FieldError::new(
            "",
            format!("expected an object, found {}", v.type_name()),
        ));
    }
    let source = req_str(v, "Source")?;
    let question = req_str(v, "problem")?;
    let raw_answer = opt_text(v, "answer")?.ok_or_else(|| FieldError::new("answer", "missing"))?;
    let opt_key = ["options", "choices"]
        .into_iter()
        .find(|k| v.get(k).is_some_and(|x| !x.is_null()));
    let kind = if opt_key.is_some() {
        TaskKind::MultipleChoice
    } else {
        kind_of_source(&source)
    };
    let mut extra = serde_json::Map::new();
    let mut answer = raw_answer.clone();
    let task = match kind {
        TaskKind::MultipleChoice => {
            let key = opt_key.ok_or_else(|| {
                FieldError::new("options", "missing (neither `options` nor `choices`)")
            })?;
            let options = options_field(v, key)?;
            check_letter(&answer, &options, "answer")?;
            Task::MultipleChoice { options }
        }
        TaskKind::Calculation => Task::Calculation {
            lower_limit: opt_text(v, "Lower Limit")?,
            upper_limit: opt_text(v, "Upper Limit")?,
            output: CalcOutput::classify(&answer),
        },
        TaskKind::FreeText => {
            answer = strip_answer_tags(&raw_answer);
            if answer != raw_answer {
                extra.insert(RAW_ANSWER_KEY.into(), raw_answer.clone().into());
            }
            Task::FreeText
        }
    };
    copy_extra(
        v,
        &[
            "solution",
            "problem_type",
            "medical_task",
            "body_system",
            "question_type",
            "Ground Truth Explanation",
        ],
        &mut extra,
    );
    Ok(Sample {
        source,
        id: opt_text(v, "id")?.unwrap_or_else(|| index.to_string()),
        split: split.to_string(),
        question,
        task,
        answer,
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: opt_text(v, "think")?,
        extra,
    })
}
