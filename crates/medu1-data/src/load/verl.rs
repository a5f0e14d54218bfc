//! verl RL rows (`medu1_verl/*.jsonl`, `processed_data/*.parquet`).
//!
//! These rows carry only the rendered prompt, so the question and budget are recovered by
//! splitting the user turn at the answer-type instruction. Rebuilding such a sample with the
//! released variant reproduces the row's prompt byte for byte (MCQ options stay inline in the
//! question, so the sample's option list is empty).

use super::fields::Ctx;
use crate::error::{LoadError, Loc};
use crate::ovalue::OValue;
use crate::prompt::parse_user_message;
use crate::record::{FieldError, VerlRecord};
use crate::source::kind_of_source;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use medu1_core::{Budget, CalcOutput, Sample, Task, TaskKind};
use std::path::Path;

/// Parses one row.
pub fn parse(v: &OValue, ctx: &Ctx) -> Result<Sample, FieldError> {
    let rec = VerlRecord::from_ovalue(v)?;
    Ok(sample_from_record(&rec, ctx))
}

/// Converts a verl row into a sample.
pub fn sample_from_record(rec: &VerlRecord, ctx: &Ctx) -> Sample {
    let kind = kind_of_source(&rec.data_source);
    let content = rec.content();
    let budget = Budget::from_num_tokens(rec.reward_model.num_tokens);
    let question = user_turn(content)
        .and_then(|u| parse_user_message(u, kind))
        .map(|(q, _)| q)
        .unwrap_or_else(|| content.to_string());
    let rm = &rec.reward_model;
    let task = match kind {
        TaskKind::MultipleChoice => Task::MultipleChoice {
            options: Vec::new(),
        },
        TaskKind::Calculation => Task::Calculation {
            lower_limit: rm.lower_limit.clone(),
            upper_limit: rm.upper_limit.clone(),
            output: CalcOutput::classify(&rm.ground_truth),
        },
        TaskKind::FreeText => Task::FreeText,
    };
    let mut extra = serde_json::Map::new();
    extra.insert("index".into(), rec.extra_info.index.into());
    Sample {
        source: rec.data_source.clone(),
        id: rec.extra_info.index.to_string(),
        split: ctx.split_for(Some(&rec.extra_info.split)),
        question,
        task,
        answer: rm.ground_truth.clone(),
        budget,
        rendered_prompt: Some(content.to_string()),
        reasoning: None,
        extra,
    }
}

/// The user turn of a ChatML-rendered `[system, user]` prompt.
fn user_turn(content: &str) -> Option<&str> {
    const USER: &str = "<|im_start|>user\n";
    const END: &str = "<|im_end|>\n<|im_start|>assistant\n";
    let start = content.find(USER)? + USER.len();
    let end = content.rfind(END)?;
    content.get(start..end)
}

/// Reads a parquet file of verl rows into JSON-like records, one per row.
pub(crate) fn read_parquet_values(path: &Path) -> Result<Vec<super::fields::Record>, LoadError> {
    let err = |e: &dyn std::fmt::Display| LoadError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let data = std::fs::File::open(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(|e| err(&e))?
        .build()
        .map_err(|e| err(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(&e))?;
        for row in 0..batch.num_rows() {
            let loc = Loc::Row(out.len() + 1);
            out.push((loc, batch_row(&batch, row)));
        }
    }
    Ok(out)
}

fn batch_row(batch: &RecordBatch, row: usize) -> Result<OValue, FieldError> {
    let schema = batch.schema();
    let mut obj = Vec::with_capacity(batch.num_columns());
    for (field, col) in schema.fields().iter().zip(batch.columns()) {
        obj.push((field.name().clone(), cell(col.as_ref(), row, field.name())?));
    }
    Ok(OValue::Object(obj))
}

/// One arrow cell as a JSON-like value (the types pandas/pyarrow use for verl rows).
fn cell(col: &dyn Array, row: usize, name: &str) -> Result<OValue, FieldError> {
    if col.is_null(row) {
        return Ok(OValue::Null);
    }
    Ok(match col.data_type() {
        DataType::Null => OValue::Null,
        DataType::Boolean => OValue::Bool(col.as_boolean().value(row)),
        DataType::Int64 => OValue::Number(col.as_primitive::<Int64Type>().value(row).into()),
        DataType::Int32 => OValue::Number(col.as_primitive::<Int32Type>().value(row).into()),
        DataType::Float64 => {
            serde_json::Number::from_f64(col.as_primitive::<Float64Type>().value(row))
                .map_or(OValue::Null, OValue::Number)
        }
        DataType::Utf8 => OValue::String(col.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => OValue::String(col.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => OValue::String(col.as_string_view().value(row).to_string()),
        DataType::List(_) => {
            let l = col.as_list::<i32>().value(row);
            OValue::Array(
                (0..l.len())
                    .map(|i| cell(l.as_ref(), i, name))
                    .collect::<Result<_, _>>()?,
            )
        }
        DataType::LargeList(_) => {
            let l = col.as_list::<i64>().value(row);
            OValue::Array(
                (0..l.len())
                    .map(|i| cell(l.as_ref(), i, name))
                    .collect::<Result<_, _>>()?,
            )
        }
        DataType::Struct(fields) => {
            let s = col.as_struct();
            let mut obj = Vec::with_capacity(fields.len());
            for (f, c) in fields.iter().zip(s.columns()) {
                obj.push((f.name().clone(), cell(c.as_ref(), row, f.name())?));
            }
            OValue::Object(obj)
        }
        other => {
            return Err(FieldError::new(
                name,
                format!("unsupported parquet type {other}"),
            ));
        }
    })
}

/// Reads verl rows (JSONL, a JSON array, or parquet) as records, failing on the first bad row.
pub fn read_records(path: impl AsRef<Path>) -> Result<Vec<VerlRecord>, LoadError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let rows = if bytes.starts_with(b"PAR1") {
        read_parquet_values(path)?
    } else {
        super::fields::json_records(path, &bytes)?
    };
    rows.into_iter()
        .map(|(loc, v)| {
            v.and_then(|v| VerlRecord::from_ovalue(&v)).map_err(|e| {
                LoadError::Row(Box::new(crate::error::RowError::from_field(path, loc, e)))
            })
        })
        .collect()
}
