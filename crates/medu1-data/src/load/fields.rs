//! What the per-format record parsers share: their context ([`Ctx`]), the records of a JSON or
//! JSONL file with their positions, and helpers that read one field of a record with the error
//! naming it.

use std::path::{Path, PathBuf};

use medu1_core::Sample;

use crate::error::{LoadError, Loc};
use crate::ovalue::OValue;
use crate::record::FieldError;

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
    /// The split for a record that may carry its own.
    pub fn split_for(&self, own: Option<&str>) -> String {
        match own {
            Some(s) if !self.split_forced && !s.is_empty() => s.to_string(),
            _ => self.split.clone(),
        }
    }
}

pub(crate) fn parse_whole(path: &Path, bytes: &[u8]) -> Result<OValue, LoadError> {
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
