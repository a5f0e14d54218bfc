//! Writing prepared rows: verl JSONL, verl parquet, and OpenRLHF JSONL with a `label` column.
//!
//! Every writer goes through [`medu1_core::atomic::AtomicFile`], so an interrupted run never leaves
//! a truncated training file behind.
//!
//! * **verl JSONL**: one record a line, as Python's `json.dumps` writes it, in the chosen key order.
//! * **verl parquet**: the schema pandas/pyarrow give these records (and the released
//!   `processed_data/*.parquet` files have): `data_source`, `ability`: string; `prompt`:
//!   `list<element: struct<content: string, role: string>>`; `reward_model`:
//!   `struct<ground_truth: string, lower_limit: string|null, num_tokens: int64, style: string,
//!   upper_limit: string|null>` (the limit columns have pyarrow's `null` type when every value is
//!   null, as in the released files); `extra_info`: `struct<index: int64, split: string>`, or, for
//!   records carrying [`crate::record::RewardInfo`], `struct<data_source: string, index: int64,
//!   lower_limit, num_tokens: int64, output_type: string, split: string, upper_limit>`. Snappy.
//! * **OpenRLHF JSONL**: `{"prompt": <templated prompt>, "label": <JSON string>}` per line, for
//!   `--input_key prompt --label_key label`. The label string is the JSON object
//!   `{"ground_truth": str, "data_source": str, "num_tokens": int, "lower_limit": str|null,
//!   "upper_limit": str|null, "eos": "in_text", "split": str, "index": int}` plus `output_type`
//!   when the record carries it; a reward server parses it to call the Med-U1 scorer with the same
//!   arguments verl's reward manager would pass. `eos: "in_text"` states OpenRLHF's convention:
//!   its agent executor decodes the query with special tokens kept, so a response that stopped on
//!   the end-of-sequence token already ends with it and one that was truncated does not.

use crate::record::{KeyOrder, VerlRecord};
use arrow_array::builder::OffsetBufferBuilder;
use arrow_array::{
    ArrayRef, Int64Array, ListArray, NullArray, RecordBatch, StringArray, StructArray,
};
use arrow_schema::{DataType, Field, Fields, Schema};
use medu1_core::atomic::AtomicFile;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub use crate::error::WriteError;

/// The on-disk layout of prepared rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    VerlJsonl,
    VerlParquet,
    OpenRlhfJsonl,
}

/// Writes `records` to `path` in `format` (JSONL key order `order`).
pub fn write_records(
    path: &Path,
    records: &[VerlRecord],
    format: OutputFormat,
    order: KeyOrder,
) -> Result<(), WriteError> {
    match format {
        OutputFormat::VerlJsonl => write_verl_jsonl(path, records, order),
        OutputFormat::VerlParquet => write_verl_parquet(path, records),
        OutputFormat::OpenRlhfJsonl => write_openrlhf_jsonl(path, records),
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Any serializable rows as JSON lines (Python separators), atomically.
pub fn write_jsonl<T: Serialize>(
    path: &Path,
    rows: impl IntoIterator<Item = T>,
) -> Result<(), WriteError> {
    let mut f = AtomicFile::create(path).map_err(io_err(path))?;
    for r in rows {
        crate::pyjson::to_writer(&mut f, &r).map_err(|e| io_err(path)(e.into()))?;
        f.write_all(b"\n").map_err(io_err(path))?;
    }
    f.commit().map_err(io_err(path))
}

/// verl rows as JSON lines.
pub fn write_verl_jsonl(
    path: &Path,
    records: &[VerlRecord],
    order: KeyOrder,
) -> Result<(), WriteError> {
    write_jsonl(path, records.iter().map(|r| r.keyed(order)))
}

/// The OpenRLHF label of one record (see the module docs).
pub fn openrlhf_label(r: &VerlRecord) -> String {
    #[derive(Serialize)]
    struct Label<'a> {
        ground_truth: &'a str,
        data_source: &'a str,
        num_tokens: i64,
        lower_limit: Option<&'a str>,
        upper_limit: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        output_type: Option<&'a str>,
        eos: &'a str,
        split: &'a str,
        index: i64,
    }
    let rm = &r.reward_model;
    serde_json::to_string(&Label {
        ground_truth: &rm.ground_truth,
        data_source: &r.data_source,
        num_tokens: rm.num_tokens,
        lower_limit: rm.lower_limit.as_deref(),
        upper_limit: rm.upper_limit.as_deref(),
        output_type: r.extra_info.reward.as_ref().map(|x| x.output_type.as_str()),
        eos: "in_text",
        split: &r.extra_info.split,
        index: r.extra_info.index,
    })
    .expect("label serializes")
}

/// OpenRLHF rows: `{"prompt", "label"}`.
pub fn write_openrlhf_jsonl(path: &Path, records: &[VerlRecord]) -> Result<(), WriteError> {
    #[derive(Serialize)]
    struct Row<'a> {
        prompt: &'a str,
        label: String,
    }
    write_jsonl(
        path,
        records.iter().map(|r| Row {
            prompt: r.content(),
            label: openrlhf_label(r),
        }),
    )
}

fn limit_column(values: Vec<Option<&str>>) -> (DataType, ArrayRef) {
    if values.iter().all(Option::is_none) {
        (DataType::Null, Arc::new(NullArray::new(values.len())))
    } else {
        (DataType::Utf8, Arc::new(StringArray::from(values)))
    }
}

/// The records as one arrow batch with the pyarrow schema of the module docs.
pub fn to_record_batch(records: &[VerlRecord]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, true);
    let strings = |f: &dyn Fn(&VerlRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(records.iter().map(f).collect::<Vec<_>>()))
    };

    // prompt: list<element: struct<content, role>>
    let msg_fields = Fields::from(vec![utf8("content"), utf8("role")]);
    let msgs: Vec<_> = records.iter().flat_map(|r| r.prompt.iter()).collect();
    let msg_struct = StructArray::try_new(
        msg_fields.clone(),
        vec![
            Arc::new(StringArray::from(
                msgs.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
            )) as ArrayRef,
            Arc::new(StringArray::from(
                msgs.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(),
            )),
        ],
        None,
    )?;
    let mut offsets = OffsetBufferBuilder::<i32>::new(records.len());
    for r in records {
        offsets.push_length(r.prompt.len());
    }
    let elem = Arc::new(Field::new("element", DataType::Struct(msg_fields), true));
    let prompt = ListArray::try_new(elem.clone(), offsets.finish(), Arc::new(msg_struct), None)?;

    // reward_model
    let (lo_t, lo) = limit_column(
        records
            .iter()
            .map(|r| r.reward_model.lower_limit.as_deref())
            .collect(),
    );
    let (hi_t, hi) = limit_column(
        records
            .iter()
            .map(|r| r.reward_model.upper_limit.as_deref())
            .collect(),
    );
    let rm_fields = Fields::from(vec![
        utf8("ground_truth"),
        Field::new("lower_limit", lo_t, true),
        Field::new("num_tokens", DataType::Int64, true),
        utf8("style"),
        Field::new("upper_limit", hi_t, true),
    ]);
    let rm = StructArray::try_new(
        rm_fields.clone(),
        vec![
            strings(&|r| &r.reward_model.ground_truth),
            lo,
            Arc::new(Int64Array::from(
                records
                    .iter()
                    .map(|r| r.reward_model.num_tokens)
                    .collect::<Vec<_>>(),
            )),
            strings(&|r| &r.reward_model.style),
            hi,
        ],
        None,
    )?;

    let (ei_fields, ei) = extra_info_columns(records)?;

    let schema = Schema::new(vec![
        utf8("data_source"),
        Field::new("prompt", DataType::List(elem), true),
        utf8("ability"),
        Field::new("reward_model", DataType::Struct(rm_fields), true),
        Field::new("extra_info", DataType::Struct(ei_fields.clone()), true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            strings(&|r| &r.data_source),
            Arc::new(prompt),
            strings(&|r| &r.ability),
            Arc::new(rm),
            Arc::new(StructArray::try_new(ei_fields, ei, None)?),
        ],
    )
}

/// `extra_info`'s fields and columns: the released pair, or with the reward's inputs when the
/// records carry them (all or none, so that the file has one schema).
fn extra_info_columns(
    records: &[VerlRecord],
) -> Result<(Fields, Vec<ArrayRef>), arrow_schema::ArrowError> {
    let index: ArrayRef = Arc::new(Int64Array::from(
        records
            .iter()
            .map(|r| r.extra_info.index)
            .collect::<Vec<_>>(),
    ));
    let split: ArrayRef = Arc::new(StringArray::from(
        records
            .iter()
            .map(|r| r.extra_info.split.as_str())
            .collect::<Vec<_>>(),
    ));
    let index_f = Field::new("index", DataType::Int64, true);
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, true);
    let infos: Vec<_> = records
        .iter()
        .filter_map(|r| r.extra_info.reward.as_ref())
        .collect();
    if infos.is_empty() {
        return Ok((
            Fields::from(vec![index_f, utf8("split")]),
            vec![index, split],
        ));
    }
    if infos.len() != records.len() {
        return Err(arrow_schema::ArrowError::InvalidArgumentError(format!(
            "{} of {} records carry reward info in extra_info; a file needs all or none",
            infos.len(),
            records.len()
        )));
    }
    let (lo_t, lo) = limit_column(infos.iter().map(|r| r.lower_limit.as_deref()).collect());
    let (hi_t, hi) = limit_column(infos.iter().map(|r| r.upper_limit.as_deref()).collect());
    let strings = |f: &dyn Fn(&crate::record::RewardInfo) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(
            infos.iter().map(|r| f(r)).collect::<Vec<_>>(),
        ))
    };
    Ok((
        Fields::from(vec![
            utf8("data_source"),
            index_f,
            Field::new("lower_limit", lo_t, true),
            Field::new("num_tokens", DataType::Int64, true),
            utf8("output_type"),
            utf8("split"),
            Field::new("upper_limit", hi_t, true),
        ]),
        vec![
            strings(&|r| &r.data_source),
            index,
            lo,
            Arc::new(Int64Array::from(
                infos.iter().map(|r| r.num_tokens).collect::<Vec<_>>(),
            )),
            strings(&|r| &r.output_type),
            split,
            hi,
        ],
    ))
}

/// verl rows as a snappy-compressed parquet file.
pub fn write_verl_parquet(path: &Path, records: &[VerlRecord]) -> Result<(), WriteError> {
    let pq = |e: &dyn std::fmt::Display| WriteError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let batch = to_record_batch(records).map_err(|e| pq(&e))?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let f = AtomicFile::create(path).map_err(io_err(path))?;
    let mut w =
        parquet::arrow::ArrowWriter::try_new(f, batch.schema(), Some(props)).map_err(|e| pq(&e))?;
    w.write(&batch).map_err(|e| pq(&e))?;
    let f = w.into_inner().map_err(|e| pq(&e))?;
    f.commit().map_err(io_err(path))
}
