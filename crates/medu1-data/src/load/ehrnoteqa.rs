//! EHRNoteQA (PhysioNet, credentialed access): the official JSONL.
//!
//! Its data use agreement forbids redistribution, so medu1 ships no EHRNoteQA data; users point
//! the loader at their own copy. Records carry `question`, `choice_A`..`choice_E`, `answer` (a
//! letter, or the text of a choice), patient/category metadata, and the discharge summaries in
//! one of several fields depending on the release (`clinical_notes`, `discharge summary`,
//! `discharge_summary`, `notes`, `note`, `text`, or numbered `note_1`, `note_2`, …). The question
//! is written like Med-U1's other MCQ items: `<Context>{notes}</Context> <Question>{q}</Question>`.

use super::fields::{Ctx, copy_extra, opt_text, req_str};
use crate::ovalue::OValue;
use crate::record::FieldError;
use medu1_core::{Budget, Choice, Sample, Task};

const NOTE_FIELDS: [&str; 6] = [
    "clinical_notes",
    "discharge summary",
    "discharge_summary",
    "notes",
    "note",
    "text",
];

pub fn parse(v: &OValue, index: usize, ctx: &Ctx) -> Result<Sample, FieldError> {
    let q = req_str(v, "question")?;
    let mut options = Vec::new();
    for l in ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'] {
        let key = format!("choice_{l}");
        if let Some(t) = opt_text(v, &key)? {
            options.push(Choice {
                letter: l.to_string(),
                text: t,
            });
        }
    }
    if options.is_empty() {
        return Err(FieldError::new(
            "choice_A",
            "missing (no choice_A..choice_E fields)",
        ));
    }
    let notes = notes(v)?;
    let raw = opt_text(v, "answer")?.ok_or_else(|| FieldError::new("answer", "missing"))?;
    let a = raw.trim();
    let a = a.strip_prefix("choice_").unwrap_or(a);
    let answer = options
        .iter()
        .find(|c| c.letter == a || c.text.trim() == a)
        .map(|c| c.letter.clone())
        .ok_or_else(|| {
            FieldError::new(
                "answer",
                format!("`{raw}` is neither an option letter nor an option text"),
            )
        })?;
    let mut extra = serde_json::Map::new();
    copy_extra(
        v,
        &["patient_id", "category", "num_notes", "clinician"],
        &mut extra,
    );
    let id = opt_text(v, "id")?
        .or(opt_text(v, "patient_id")?.map(|p| format!("{p}-{index}")))
        .unwrap_or_else(|| index.to_string());
    Ok(Sample {
        source: ctx.source.clone().unwrap_or_else(|| "EHRNoteQA".into()),
        id,
        split: ctx.split_for(None),
        question: format!("<Context>{notes}</Context> <Question>{q}</Question>"),
        task: Task::MultipleChoice { options },
        answer,
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: None,
        extra,
    })
}

fn notes(v: &OValue) -> Result<String, FieldError> {
    for key in NOTE_FIELDS {
        match v.get(key) {
            None | Some(OValue::Null) => continue,
            Some(OValue::String(s)) => return Ok(s.clone()),
            Some(OValue::Array(items)) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|it| match it {
                        OValue::String(s) => Ok(s.clone()),
                        OValue::Object(_) => it
                            .get("text")
                            .or_else(|| it.get("note"))
                            .and_then(OValue::scalar_text)
                            .ok_or_else(|| FieldError::new(key, "note object without `text`")),
                        other => Err(FieldError::new(
                            key,
                            format!("expected note text, found {}", other.type_name()),
                        )),
                    })
                    .collect::<Result<_, _>>()?;
                return Ok(parts.join("\n\n"));
            }
            Some(other) => {
                return Err(FieldError::new(
                    key,
                    format!("expected note text, found {}", other.type_name()),
                ));
            }
        }
    }
    let numbered: Vec<String> = (1..=10)
        .filter_map(|i| v.get(&format!("note_{i}")).and_then(OValue::scalar_text))
        .collect();
    if numbered.is_empty() {
        Err(FieldError::new(
            "clinical_notes",
            "missing (no note text field)",
        ))
    } else {
        Ok(numbered.join("\n\n"))
    }
}
