//! MedCalc-Bench: the v1.0 CSV (14 columns) and the one-shot exemplars.
//!
//! The question is assembled as Med-U1 does (`<Context> {note} </Context> <Question> {question}
//! </Question>`). `Relevant Entities` is a Python-literal dict; it is parsed into JSON and kept,
//! with the calculator id/name, category, output type and note id, in `Sample::extra` for later
//! stages (never for grading).

use super::fields::Ctx;
use crate::error::{LoadError, Loc};
use crate::ovalue::OValue;
use crate::record::FieldError;
use medu1_core::{Budget, CalcOutput, Sample, Task};
use std::path::Path;

/// The columns of `test_data.csv`, in order.
pub const COLUMNS: [&str; 14] = [
    "Row Number",
    "Calculator ID",
    "Calculator Name",
    "Category",
    "Output Type",
    "Note ID",
    "Note Type",
    "Patient Note",
    "Question",
    "Relevant Entities",
    "Ground Truth Answer",
    "Lower Limit",
    "Upper Limit",
    "Ground Truth Explanation",
];

const SOURCE: &str = "MedCalc-Bench";

/// Reads every data row; a row with a bad field becomes an error entry.
pub(crate) fn read_csv(
    path: &Path,
    bytes: &[u8],
    ctx: &Ctx,
) -> Result<Vec<super::fields::SampleRow>, LoadError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let headers = rdr
        .headers()
        .map_err(|source| LoadError::Csv {
            path: path.to_path_buf(),
            source,
        })?
        .clone();
    let mut idx = [0usize; 14];
    for (slot, name) in idx.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                LoadError::Row(Box::new(crate::error::RowError {
                    path: path.to_path_buf(),
                    loc: Loc::Line(1),
                    field: Some(name.to_string()),
                    message: "column missing from the header".into(),
                }))
            })?;
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let loc = Loc::Row(i + 1);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                out.push((loc, Err(FieldError::new("", format!("csv: {e}")))));
                continue;
            }
        };
        let get = |c: usize| rec.get(idx[c]).unwrap_or("");
        out.push((loc, row(&get, i, ctx)));
    }
    Ok(out)
}

fn row<'a>(get: &dyn Fn(usize) -> &'a str, i: usize, ctx: &Ctx) -> Result<Sample, FieldError> {
    let nonempty = |c: usize| -> Result<String, FieldError> {
        let v = get(c);
        if v.is_empty() {
            Err(FieldError::new(COLUMNS[c], "empty"))
        } else {
            Ok(v.to_string())
        }
    };
    let opt = |c: usize| Some(get(c).to_string()).filter(|s| !s.is_empty());
    let note = nonempty(7)?;
    let question = nonempty(8)?;
    let answer = nonempty(10)?;
    let entities =
        crate::pyliteral::parse(get(9)).map_err(|e| FieldError::new(COLUMNS[9], e.to_string()))?;
    let mut extra = serde_json::Map::new();
    for (c, key) in [
        (1, "calculator_id"),
        (2, "calculator_name"),
        (3, "category"),
        (4, "output_type"),
        (5, "note_id"),
        (6, "note_type"),
    ] {
        extra.insert(key.into(), get(c).into());
    }
    extra.insert("relevant_entities".into(), entities.to_json());
    Ok(Sample {
        source: SOURCE.into(),
        id: opt(0).unwrap_or_else(|| (i + 1).to_string()),
        split: ctx.split_for(None),
        question: format!("<Context> {note} </Context> <Question> {question} </Question>"),
        task: Task::Calculation {
            lower_limit: opt(11),
            upper_limit: opt(12),
            output: CalcOutput::classify(&answer),
        },
        answer,
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: opt(13),
        extra,
    })
}

/// One exemplar of `one_shot_finalized_explanation.json` (keyed by calculator id).
pub(crate) fn parse_one_shot(
    key: &str,
    v: &OValue,
    _i: usize,
    ctx: &Ctx,
) -> Result<Sample, FieldError> {
    let note = super::fields::req_str(v, "Patient Note")?;
    let resp = v
        .get("Response")
        .ok_or_else(|| FieldError::new("Response", "missing"))?;
    let answer = match resp.get("answer") {
        // Gestational-age answers are stored as a list; MedCalc-Bench writes them as a tuple.
        Some(OValue::Array(parts)) => {
            let quoted: Option<Vec<String>> = parts
                .iter()
                .map(|p| p.as_str().map(|s| format!("'{s}'")))
                .collect();
            quoted
                .map(|q| format!("({})", q.join(", ")))
                .ok_or_else(|| FieldError::new("Response.answer", "expected a list of strings"))?
        }
        Some(v) => v
            .scalar_text()
            .ok_or_else(|| FieldError::new("Response.answer", "expected a number or text"))?,
        None => return Err(FieldError::new("Response.answer", "missing")),
    };
    let reasoning = resp
        .get("step_by_step_thinking")
        .and_then(OValue::scalar_text);
    let mut extra = serde_json::Map::new();
    extra.insert("calculator_id".into(), key.into());
    super::fields::copy_extra(v, &["input_parameters"], &mut extra);
    Ok(Sample {
        source: SOURCE.into(),
        id: key.to_string(),
        split: if ctx.split_forced {
            ctx.split.clone()
        } else {
            "one_shot".into()
        },
        question: format!("<Context> {note} </Context>"),
        task: Task::Calculation {
            lower_limit: None,
            upper_limit: None,
            output: CalcOutput::classify(&answer),
        },
        answer,
        budget: Budget::None,
        rendered_prompt: None,
        reasoning,
        extra,
    })
}
