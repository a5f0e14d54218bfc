//! MedXpertQA Text, in its Hugging Face form (`options` as a `{letter: text}` object, `label` a
//! letter) and its eval-input form (`options` a list of `{letter, content}`, `label` a list).
//!
//! The question is kept verbatim, inline `Answer Choices:` included, as Med-U1's MedXpertQA items
//! are (the released prompts therefore list the options twice, spec §1.1).

use super::fields::{Ctx, check_letter, copy_extra, opt_text, options_field, req_str};
use crate::ovalue::OValue;
use crate::record::FieldError;
use medu1_core::{Budget, Sample, Task};

pub fn parse(v: &OValue, index: usize, ctx: &Ctx) -> Result<Sample, FieldError> {
    let question = req_str(v, "question")?;
    let options = options_field(v, "options")?;
    let answer = label(v)?;
    check_letter(&answer, &options, "label")?;
    let mut extra = serde_json::Map::new();
    copy_extra(
        v,
        &["medical_task", "body_system", "question_type"],
        &mut extra,
    );
    Ok(Sample {
        source: ctx.source.clone().unwrap_or_else(|| "MedXpertQA".into()),
        id: opt_text(v, "id")?.unwrap_or_else(|| index.to_string()),
        split: ctx.split_for(None),
        question,
        task: Task::MultipleChoice { options },
        answer,
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: None,
        extra,
    })
}

/// `label` as a letter, or a one-element list of one.
pub(crate) fn label(v: &OValue) -> Result<String, FieldError> {
    match v.get("label") {
        Some(OValue::String(s)) => Ok(s.trim().to_string()),
        Some(OValue::Array(items)) => match items.as_slice() {
            [OValue::String(s)] => Ok(s.trim().to_string()),
            _ => Err(FieldError::new(
                "label",
                format!("expected one letter, found {} labels", items.len()),
            )),
        },
        Some(other) => Err(FieldError::new(
            "label",
            format!("expected a letter, found {}", other.type_name()),
        )),
        None => Err(FieldError::new("label", "missing")),
    }
}
