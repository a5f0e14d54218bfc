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
mod fields;
pub mod medcalc;
pub mod mediq;
pub mod medu1;
pub mod medxpertqa;
pub mod mmlupro;
pub mod o1sft;
pub mod pubmedqa;
pub mod verl;

pub use self::fields::Ctx;
use self::fields::{json_records, parse_whole};
pub use crate::error::{LoadError, Loc, RowError};
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
