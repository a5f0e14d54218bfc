//! Reading benchmark files into [`Sample`]s.
//!
//! Every source Med-U1 uses ships in its own shape (JSON arrays, JSONL, CSV with Python-literal
//! columns, parquet, keyed JSON objects). This module detects the shape from the file's content
//! (a [`Format`] can override), hands each record to the loader for that format (one submodule per
//! format) and reports problems with file, line/row and field. Rows are never dropped silently:
//! a bad row fails the load, or with [`LoadOptions::skip_invalid`] is returned in
//! [`Loaded::rejected`] with its error.

pub mod ehrnoteqa;
pub mod evalinput;
pub mod medcalc;
pub mod mediq;
pub mod medu1;
pub mod medxpertqa;
pub mod mmlupro;
pub mod o1sft;
pub mod pubmedqa;
pub mod verl;

use crate::ovalue::OValue;
use crate::record::FieldError;
use medu1_core::Sample;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A record schema medu1 can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Med-U1 processed items (`deepscaler/data/test/*.json`): `Source`, `problem`,
    /// `options`/`choices`, `answer`, MedCalc limits.
    Medu1,
    /// verl RL rows as JSON (JSONL or an array).
    Verl,
    /// verl RL rows as parquet.
    VerlParquet,
    /// MedCalc-Bench `test_data.csv` (14 columns).
    MedCalcCsv,
    /// MedCalc-Bench one-shot exemplars (`one_shot_finalized_explanation.json`).
    MedCalcOneShot,
    /// MediQ / CRAFT-MD JSONL (`context`, `question`, `options`, `answer_idx`).
    Mediq,
    /// MedXpertQA, Hugging Face form or eval-input form.
    MedXpertQa,
    /// The MedQA / MedMCQA / MMLU eval inputs (`question` with `Answer Choices:`, `label`).
    EvalInput,
    /// MMLU-Pro rows (`question_id`, `options` list, `answer`).
    MmluPro,
    /// PubMedQA PQA-L (`ori_pqal.json`, keyed by PMID).
    PubMedQa,
    /// PubMedQA's test key (`test_ground_truth.json`: PMID → decision).
    PubMedQaKey,
    /// medical-o1-reasoning-SFT (`Question`, `Complex_CoT`, `Response`).
    MedicalO1Sft,
    /// EHRNoteQA's official JSONL (`question`, `choice_A`..`choice_E`, `answer`, notes).
    EhrNoteQa,
}

impl Format {
    pub const ALL: [Format; 13] = [
        Format::Medu1,
        Format::Verl,
        Format::VerlParquet,
        Format::MedCalcCsv,
        Format::MedCalcOneShot,
        Format::Mediq,
        Format::MedXpertQa,
        Format::EvalInput,
        Format::MmluPro,
        Format::PubMedQa,
        Format::PubMedQaKey,
        Format::MedicalO1Sft,
        Format::EhrNoteQa,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Medu1 => "medu1",
            Format::Verl => "verl",
            Format::VerlParquet => "verl-parquet",
            Format::MedCalcCsv => "medcalc-csv",
            Format::MedCalcOneShot => "medcalc-one-shot",
            Format::Mediq => "mediq",
            Format::MedXpertQa => "medxpertqa",
            Format::EvalInput => "eval-input",
            Format::MmluPro => "mmlu-pro",
            Format::PubMedQa => "pubmedqa",
            Format::PubMedQaKey => "pubmedqa-key",
            Format::MedicalO1Sft => "medical-o1",
            Format::EhrNoteQa => "ehrnoteqa",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name medu1 does not know.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "unknown format `{0}` (expected one of: medu1, verl, verl-parquet, medcalc-csv, medcalc-one-shot, mediq, medxpertqa, eval-input, mmlu-pro, pubmedqa, pubmedqa-key, medical-o1, ehrnoteqa)"
)]
pub struct FormatError(pub String);

impl FromStr for Format {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Format, FormatError> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| FormatError(s.to_string()))
    }
}

/// Where in a file a record sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loc {
    /// 1-based line of a JSONL file.
    Line(usize),
    /// 0-based element of a top-level JSON array.
    Item(usize),
    /// 1-based data row of a CSV or parquet file (header excluded).
    Row(usize),
    /// An entry of a top-level JSON object keyed by id.
    Key(String),
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Line(n) => write!(f, "line {n}"),
            Loc::Item(n) => write!(f, "item {n}"),
            Loc::Row(n) => write!(f, "row {n}"),
            Loc::Key(k) => write!(f, "entry `{k}`"),
        }
    }
}

/// One rejected record: file, position, field and reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {loc}: {}{message}", path.display(), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct RowError {
    pub path: PathBuf,
    pub loc: Loc,
    pub field: Option<String>,
    pub message: String,
}

impl RowError {
    pub(crate) fn from_field(path: &Path, loc: Loc, e: FieldError) -> RowError {
        RowError {
            path: path.to_path_buf(),
            loc,
            field: if e.field.is_empty() {
                None
            } else {
                Some(e.field)
            },
            message: e.message,
        }
    }
}

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot detect the format: {reason}", path.display())]
    Detect { path: PathBuf, reason: String },
    #[error("{}: invalid json: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: parquet: {message}", path.display())]
    Parquet { path: PathBuf, message: String },
    #[error("{}: csv: {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error(transparent)]
    Row(Box<RowError>),
}

/// How to load a file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Skip detection and read this format.
    pub format: Option<Format>,
    /// Collect bad rows in [`Loaded::rejected`] instead of failing.
    pub skip_invalid: bool,
    /// Override the split every sample gets (otherwise the file's own, or a default per format).
    pub split: Option<String>,
    /// Override the `data_source` (for formats that cannot tell, e.g. eval inputs).
    pub source: Option<String>,
}

/// The result of loading one file.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub format: Format,
    pub samples: Vec<Sample>,
    pub rejected: Vec<RowError>,
}

/// What a per-format record parser gets besides the record itself.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub path: PathBuf,
    /// The split to use when the record has none.
    pub split: String,
    /// True when the split was given explicitly and overrides the record's.
    pub split_forced: bool,
    pub source: Option<String>,
}

impl Ctx {
    fn new(path: &Path, opts: &LoadOptions) -> Ctx {
        let stem = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let default_split = if stem.contains("train") {
            "train"
        } else if stem.contains("dev") || stem.contains("val") {
            "validation"
        } else {
            "test"
        };
        Ctx {
            path: path.to_path_buf(),
            split: opts
                .split
                .clone()
                .unwrap_or_else(|| default_split.to_string()),
            split_forced: opts.split.is_some(),
            source: opts.source.clone(),
        }
    }

    /// The split for a record that may carry its own.
    pub fn split_for(&self, own: Option<&str>) -> String {
        match own {
            Some(s) if !self.split_forced && !s.is_empty() => s.to_string(),
            _ => self.split.clone(),
        }
    }
}

/// Loads `path`, detecting its format unless `opts.format` is set.
pub fn load_path(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let path = path.as_ref();
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let ctx = Ctx::new(path, opts);
    let format = match opts.format {
        Some(f) => f,
        None => detect_bytes(path, &bytes)?,
    };
    let mut out = Loaded {
        path: path.to_path_buf(),
        format,
        samples: Vec::new(),
        rejected: Vec::new(),
    };
    let mut accept = |loc: Loc, r: Result<Sample, FieldError>| -> Result<(), LoadError> {
        match r {
            Ok(s) => out.samples.push(s),
            Err(e) => {
                let err = RowError::from_field(path, loc, e);
                if opts.skip_invalid {
                    out.rejected.push(err);
                } else {
                    return Err(LoadError::Row(Box::new(err)));
                }
            }
        }
        Ok(())
    };
    match format {
        Format::VerlParquet => {
            for (loc, rec) in verl::read_parquet_values(path)? {
                accept(loc, rec.and_then(|v| verl::parse(&v, &ctx)))?;
            }
        }
        Format::MedCalcCsv => {
            for (loc, r) in medcalc::read_csv(path, &bytes, &ctx)? {
                accept(loc, r)?;
            }
        }
        Format::PubMedQa | Format::PubMedQaKey | Format::MedCalcOneShot => {
            let v = parse_whole(path, &bytes)?;
            let entries = v.as_object().ok_or_else(|| LoadError::Detect {
                path: path.to_path_buf(),
                reason: format!("{format} expects a json object keyed by id"),
            })?;
            let key = if format == Format::PubMedQa {
                pubmedqa::sibling_key(path)
            } else {
                None
            };
            for (i, (k, item)) in entries.iter().enumerate() {
                let r = match format {
                    Format::PubMedQa => pubmedqa::parse(k, item, &ctx, key.as_ref()),
                    Format::PubMedQaKey => pubmedqa::parse_key_entry(k, item, &ctx),
                    _ => medcalc::parse_one_shot(k, item, i, &ctx),
                };
                accept(Loc::Key(k.clone()), r)?;
            }
        }
        _ => {
            let records = json_records(path, &bytes)?;
            let source = match format {
                Format::EvalInput => Some(evalinput::source_for(
                    path,
                    records.first().and_then(|r| r.1.as_ref().ok()),
                    &ctx,
                )),
                _ => None,
            };
            for (i, (loc, rec)) in records.into_iter().enumerate() {
                let r = rec.and_then(|v| match format {
                    Format::Medu1 => medu1::parse(&v, i, &ctx),
                    Format::Verl => verl::parse(&v, &ctx),
                    Format::Mediq => mediq::parse(&v, i, &ctx),
                    Format::MedXpertQa => medxpertqa::parse(&v, i, &ctx),
                    Format::EvalInput => {
                        evalinput::parse(&v, i, &ctx, source.as_deref().unwrap_or("MedQA"))
                    }
                    Format::MmluPro => mmlupro::parse(&v, i, &ctx),
                    Format::MedicalO1Sft => o1sft::parse(&v, i, &ctx),
                    Format::EhrNoteQa => ehrnoteqa::parse(&v, i, &ctx),
                    _ => unreachable!("handled above"),
                });
                accept(loc, r)?;
            }
        }
    }
    Ok(out)
}

/// Detects the format of a file from its content (and, for parquet/CSV, its name).
pub fn detect_format(path: impl AsRef<Path>) -> Result<Format, LoadError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    detect_bytes(path, &bytes)
}

fn detect_bytes(path: &Path, bytes: &[u8]) -> Result<Format, LoadError> {
    let fail = |reason: &str| LoadError::Detect {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if bytes.starts_with(b"PAR1") {
        return Ok(Format::VerlParquet);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| fail("not utf-8 text and not parquet"))?;
    let text = text.trim_start_matches('\u{feff}');
    let first_line = text.lines().next().unwrap_or("");
    if first_line.contains("Calculator ID") && first_line.contains("Patient Note") {
        return Ok(Format::MedCalcCsv);
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let v = parse_whole(path, bytes)?;
        let first = v
            .as_array()
            .and_then(|a| a.first())
            .ok_or_else(|| fail("empty json array"))?;
        return detect_record(first).ok_or_else(|| {
            fail(&format!(
                "unrecognised record fields {}",
                field_names(first)
            ))
        });
    }
    if trimmed.starts_with('{') {
        // A single JSON document keyed by id, or JSONL.
        if let Ok(v) = OValue::from_json_str(trimmed)
            && let Some(entries) = v.as_object()
        {
            {
                if let Some((_, first)) = entries.first() {
                    if first.get("QUESTION").is_some() && first.get("final_decision").is_some() {
                        return Ok(Format::PubMedQa);
                    }
                    if first.get("Patient Note").is_some() && first.get("Response").is_some() {
                        return Ok(Format::MedCalcOneShot);
                    }
                    if entries
                        .iter()
                        .all(|(_, d)| matches!(d.as_str(), Some("yes" | "no" | "maybe")))
                    {
                        return Ok(Format::PubMedQaKey);
                    }
                }
                return detect_record(&v).ok_or_else(|| {
                    fail(&format!("unrecognised record fields {}", field_names(&v)))
                });
            }
        }
        let line = trimmed.lines().next().unwrap_or("");
        let v = OValue::from_json_str(line).map_err(|source| LoadError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        return detect_record(&v)
            .ok_or_else(|| fail(&format!("unrecognised record fields {}", field_names(&v))));
    }
    Err(fail(
        "expected parquet, csv, a json array, a json object or json lines",
    ))
}

fn field_names(v: &OValue) -> String {
    match v.as_object() {
        Some(o) => format!(
            "[{}]",
            o.iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => v.type_name().to_string(),
    }
}

/// Which format one record belongs to, from its field names.
pub fn detect_record(v: &OValue) -> Option<Format> {
    let has = |k: &str| v.get(k).is_some();
    Some(
        if has("data_source") && has("prompt") && has("reward_model") {
            Format::Verl
        } else if has("Source") && has("problem") {
            Format::Medu1
        } else if has("Question") && has("Response") {
            Format::MedicalO1Sft
        } else if has("choice_A") || has("patient_id") {
            Format::EhrNoteQa
        } else if has("question") && has("options") && has("answer_idx") {
            Format::Mediq
        } else if has("question_id") && has("options") && has("answer") {
            Format::MmluPro
        } else if has("question") && has("options") && (has("medical_task") || has("body_system")) {
            Format::MedXpertQa
        } else if has("question") && has("label") {
            Format::EvalInput
        } else {
            return None;
        },
    )
}

fn parse_whole(path: &Path, bytes: &[u8]) -> Result<OValue, LoadError> {
    serde_json::from_slice(bytes).map_err(|source| LoadError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// One record with its position: the parsed value, or why it could not be read.
pub(crate) type Record = (Loc, Result<OValue, FieldError>);
/// One converted record with its position.
pub(crate) type SampleRow = (Loc, Result<Sample, FieldError>);

/// The records of a JSON array or JSONL file; a line that is not JSON becomes a per-row error.
pub(crate) fn json_records(path: &Path, bytes: &[u8]) -> Result<Vec<Record>, LoadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| LoadError::Detect {
        path: path.to_path_buf(),
        reason: format!("not utf-8: {e}"),
    })?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('[') {
        let v = parse_whole(path, text.as_bytes())?;
        let OValue::Array(items) = v else {
            unreachable!("starts with [")
        };
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Loc::Item(i), Ok(v)))
            .collect());
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let r = OValue::from_json_str(l)
                .map_err(|e| FieldError::new("", format!("invalid json: {e}")));
            (Loc::Line(i + 1), r)
        })
        .collect())
}

// ---- field helpers shared by the per-format parsers ----

/// A required string field.
pub(crate) fn req_str(v: &OValue, key: &str) -> Result<String, FieldError> {
    match v.get(key) {
        Some(OValue::String(s)) => Ok(s.clone()),
        Some(OValue::Null) | None => Err(FieldError::new(key, "missing")),
        Some(other) => Err(FieldError::new(
            key,
            format!("expected a string, found {}", other.type_name()),
        )),
    }
}

/// An optional scalar field as text (`None` when absent or null).
pub(crate) fn opt_text(v: &OValue, key: &str) -> Result<Option<String>, FieldError> {
    match v.get(key) {
        None | Some(OValue::Null) => Ok(None),
        Some(other) => other.scalar_text().map(Some).ok_or_else(|| {
            FieldError::new(
                key,
                format!("expected a string or number, found {}", other.type_name()),
            )
        }),
    }
}

/// Options given as a `{letter: text}` object, a Python-literal string of one, a list of
/// `{letter, content}` objects, or a plain list of texts (lettered A, B, ...).
pub(crate) fn options_field(v: &OValue, key: &str) -> Result<Vec<medu1_core::Choice>, FieldError> {
    let val = v.get(key).ok_or_else(|| FieldError::new(key, "missing"))?;
    let parsed;
    let val = if let OValue::String(s) = val {
        parsed = crate::pyliteral::parse(s).map_err(|e| FieldError::new(key, e.to_string()))?;
        &parsed
    } else {
        val
    };
    let text_of = |x: &OValue, what: &str| -> Result<String, FieldError> {
        x.scalar_text().ok_or_else(|| {
            FieldError::new(
                key,
                format!("{what}: expected text, found {}", x.type_name()),
            )
        })
    };
    let out = match val {
        OValue::Object(entries) => entries
            .iter()
            .map(|(k, t)| {
                Ok(medu1_core::Choice {
                    letter: k.clone(),
                    text: text_of(t, &format!("option {k}"))?,
                })
            })
            .collect::<Result<Vec<_>, FieldError>>()?,
        OValue::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                if it.as_object().is_some() {
                    let letter = it
                        .get("letter")
                        .or_else(|| it.get("key"))
                        .and_then(OValue::scalar_text)
                        .ok_or_else(|| FieldError::new(key, format!("option {i}: no `letter`")))?;
                    let text = it
                        .get("content")
                        .or_else(|| it.get("text"))
                        .and_then(OValue::scalar_text)
                        .ok_or_else(|| FieldError::new(key, format!("option {i}: no `content`")))?;
                    Ok(medu1_core::Choice { letter, text })
                } else {
                    Ok(medu1_core::Choice {
                        letter: letter_at(i, key)?,
                        text: text_of(it, &format!("option {i}"))?,
                    })
                }
            })
            .collect::<Result<Vec<_>, FieldError>>()?,
        other => {
            return Err(FieldError::new(
                key,
                format!("expected options, found {}", other.type_name()),
            ));
        }
    };
    if out.is_empty() {
        return Err(FieldError::new(key, "no options"));
    }
    Ok(out)
}

/// The letter of the `i`-th option (A..Z).
pub(crate) fn letter_at(i: usize, field: &str) -> Result<String, FieldError> {
    u8::try_from(i)
        .ok()
        .filter(|&i| i < 26)
        .map(|i| char::from(b'A' + i).to_string())
        .ok_or_else(|| FieldError::new(field, "more than 26 options"))
}

/// Checks that an MCQ answer letter names one of the options.
pub(crate) fn check_letter(
    answer: &str,
    options: &[medu1_core::Choice],
    field: &str,
) -> Result<(), FieldError> {
    if options.iter().any(|c| c.letter == answer) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "answer `{answer}` is not one of the option letters [{}]",
                options
                    .iter()
                    .map(|c| c.letter.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

/// Copies the listed fields (when present and not null) into a sample's `extra` map.
pub(crate) fn copy_extra(
    v: &OValue,
    keys: &[&str],
    extra: &mut serde_json::Map<String, serde_json::Value>,
) {
    for k in keys {
        if let Some(x) = v.get(k).filter(|x| !x.is_null()) {
            extra.insert((*k).to_string(), x.to_json());
        }
    }
}
