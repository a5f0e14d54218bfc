//! The verl RL row: what the reference stores per example and what verl's `RLHFDataset` reads.
//!
//! ```text
//! {"data_source", "prompt": [{"role": "user", "content"}], "ability": "medical",
//!  "reward_model": {"style": "rule", "ground_truth", "num_tokens", "lower_limit", "upper_limit"},
//!  "extra_info": {"split", "index"}}
//! ```
//!
//! verl hands a custom reward function only `reward_model.ground_truth` and the row's
//! `extra_info`, never the rest of `reward_model`. Rows written for training with medu1's rewards
//! therefore repeat what the reward needs in `extra_info` ([`RewardInfo`]); rows read from the
//! released files carry none.
//!
//! Two key orders exist in the wild and both are reproduced: the data script's dict-literal order
//! ([`KeyOrder::Script`]), and the sorted struct-field order that pyarrow gives the released
//! parquet files and the JSONL converted from them ([`KeyOrder::Sorted`]).

use crate::ovalue::OValue;
use crate::template::Message;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// One verl row.
#[derive(Debug, Clone, PartialEq)]
pub struct VerlRecord {
    pub data_source: String,
    /// The chat: one user message whose content is the fully templated prompt.
    pub prompt: Vec<Message>,
    pub ability: String,
    pub reward_model: RewardModel,
    pub extra_info: ExtraInfo,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RewardModel {
    pub style: String,
    pub ground_truth: String,
    pub num_tokens: i64,
    pub lower_limit: Option<String>,
    pub upper_limit: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExtraInfo {
    pub split: String,
    pub index: i64,
    /// The reward's inputs, for verl's reward functions; `None` keeps the released layout.
    pub reward: Option<RewardInfo>,
}

/// What the Med-U1 reward needs beyond the ground truth, repeated in `extra_info`.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardInfo {
    pub data_source: String,
    pub num_tokens: i64,
    pub lower_limit: Option<String>,
    pub upper_limit: Option<String>,
    /// `multiple_choice`, `numeric`, `date`, `week_day` or `free_text`: how the answer is graded.
    pub output_type: String,
}

impl VerlRecord {
    /// Copies the reward's inputs into `extra_info` (see the module docs).
    pub fn with_reward_info(mut self, output_type: &str) -> VerlRecord {
        self.extra_info.reward = Some(RewardInfo {
            data_source: self.data_source.clone(),
            num_tokens: self.reward_model.num_tokens,
            lower_limit: self.reward_model.lower_limit.clone(),
            upper_limit: self.reward_model.upper_limit.clone(),
            output_type: output_type.to_string(),
        });
        self
    }
}

/// Which key order a serialized record uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyOrder {
    /// Struct fields sorted, as in the released parquet files and `medu1_verl/*.jsonl`.
    #[default]
    Sorted,
    /// The order of the data script's dict literal.
    Script,
}

impl VerlRecord {
    /// The templated prompt text (the first message's content).
    pub fn content(&self) -> &str {
        self.prompt.first().map_or("", |m| m.content.as_str())
    }

    /// A serializable view with the given key order.
    pub fn keyed(&self, order: KeyOrder) -> Keyed<'_> {
        Keyed { rec: self, order }
    }

    /// One JSON line as Python's `json.dumps` writes it (no trailing newline).
    pub fn to_json_line(&self, order: KeyOrder) -> String {
        crate::pyjson::to_string(&self.keyed(order))
    }

    /// Reads a row from a parsed JSON object; the error names the offending field.
    pub fn from_ovalue(v: &OValue) -> Result<VerlRecord, FieldError> {
        let s = |obj: &OValue, key: &str, path: &str| -> Result<String, FieldError> {
            match obj.get(key) {
                Some(OValue::String(s)) => Ok(s.clone()),
                Some(other) => Err(FieldError::new(
                    path,
                    format!("expected a string, found {}", other.type_name()),
                )),
                None => Err(FieldError::new(path, "missing")),
            }
        };
        let opt = |obj: &OValue, key: &str, path: &str| -> Result<Option<String>, FieldError> {
            match obj.get(key) {
                None | Some(OValue::Null) => Ok(None),
                Some(other) => other.scalar_text().map(Some).ok_or_else(|| {
                    FieldError::new(
                        path,
                        format!("expected a string or null, found {}", other.type_name()),
                    )
                }),
            }
        };
        let int = |obj: &OValue, key: &str, path: &str| -> Result<i64, FieldError> {
            match obj.get(key) {
                Some(OValue::Number(n)) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                    .ok_or_else(|| {
                        FieldError::new(path, format!("expected an integer, found {n}"))
                    }),
                Some(other) => Err(FieldError::new(
                    path,
                    format!("expected an integer, found {}", other.type_name()),
                )),
                None => Err(FieldError::new(path, "missing")),
            }
        };
        if v.as_object().is_none() {
            return Err(FieldError::new(
                "",
                format!("expected an object, found {}", v.type_name()),
            ));
        }
        let prompt = match v.get("prompt") {
            Some(OValue::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    Ok(Message {
                        role: s(m, "role", &format!("prompt[{i}].role"))?,
                        content: s(m, "content", &format!("prompt[{i}].content"))?,
                    })
                })
                .collect::<Result<Vec<_>, FieldError>>()?,
            Some(other) => {
                return Err(FieldError::new(
                    "prompt",
                    format!("expected an array, found {}", other.type_name()),
                ));
            }
            None => return Err(FieldError::new("prompt", "missing")),
        };
        if prompt.is_empty() {
            return Err(FieldError::new("prompt", "no messages"));
        }
        let rm = v
            .get("reward_model")
            .ok_or_else(|| FieldError::new("reward_model", "missing"))?;
        let ei = v.get("extra_info");
        let null = OValue::Null;
        let ei = ei.unwrap_or(&null);
        Ok(VerlRecord {
            data_source: s(v, "data_source", "data_source")?,
            prompt,
            ability: opt(v, "ability", "ability")?.unwrap_or_else(|| "medical".into()),
            reward_model: RewardModel {
                style: opt(rm, "style", "reward_model.style")?.unwrap_or_else(|| "rule".into()),
                ground_truth: rm
                    .get("ground_truth")
                    .and_then(OValue::scalar_text)
                    .ok_or_else(|| {
                        FieldError::new("reward_model.ground_truth", "missing or not a string")
                    })?,
                num_tokens: match rm.get("num_tokens") {
                    None | Some(OValue::Null) => -1,
                    Some(_) => int(rm, "num_tokens", "reward_model.num_tokens")?,
                },
                lower_limit: opt(rm, "lower_limit", "reward_model.lower_limit")?,
                upper_limit: opt(rm, "upper_limit", "reward_model.upper_limit")?,
            },
            extra_info: ExtraInfo {
                split: opt(ei, "split", "extra_info.split")?.unwrap_or_default(),
                index: match ei.get("index") {
                    None | Some(OValue::Null) => -1,
                    Some(_) => int(ei, "index", "extra_info.index")?,
                },
                reward: None,
            },
        })
    }
}

pub use crate::error::FieldError;

/// [`VerlRecord`] serialized with a chosen key order.
#[derive(Debug, Clone, Copy)]
pub struct Keyed<'a> {
    rec: &'a VerlRecord,
    order: KeyOrder,
}

struct Msgs<'a>(&'a [Message], KeyOrder);
struct Msg<'a>(&'a Message, KeyOrder);
struct Rm<'a>(&'a RewardModel, KeyOrder);
struct Ei<'a>(&'a ExtraInfo, KeyOrder);

impl Serialize for Keyed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.rec;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("data_source", &r.data_source)?;
        m.serialize_entry("prompt", &Msgs(&r.prompt, self.order))?;
        m.serialize_entry("ability", &r.ability)?;
        m.serialize_entry("reward_model", &Rm(&r.reward_model, self.order))?;
        m.serialize_entry("extra_info", &Ei(&r.extra_info, self.order))?;
        m.end()
    }
}

impl Serialize for Msgs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for m in self.0 {
            seq.serialize_element(&Msg(m, self.1))?;
        }
        seq.end()
    }
}

impl Serialize for Msg<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        match self.1 {
            KeyOrder::Sorted => {
                m.serialize_entry("content", &self.0.content)?;
                m.serialize_entry("role", &self.0.role)?;
            }
            KeyOrder::Script => {
                m.serialize_entry("role", &self.0.role)?;
                m.serialize_entry("content", &self.0.content)?;
            }
        }
        m.end()
    }
}

impl Serialize for Rm<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(Some(5))?;
        match self.1 {
            KeyOrder::Sorted => {
                m.serialize_entry("ground_truth", &r.ground_truth)?;
                m.serialize_entry("lower_limit", &r.lower_limit)?;
                m.serialize_entry("num_tokens", &r.num_tokens)?;
                m.serialize_entry("style", &r.style)?;
                m.serialize_entry("upper_limit", &r.upper_limit)?;
            }
            KeyOrder::Script => {
                m.serialize_entry("style", &r.style)?;
                m.serialize_entry("ground_truth", &r.ground_truth)?;
                m.serialize_entry("num_tokens", &r.num_tokens)?;
                m.serialize_entry("lower_limit", &r.lower_limit)?;
                m.serialize_entry("upper_limit", &r.upper_limit)?;
            }
        }
        m.end()
    }
}

impl Serialize for Ei<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(Some(if e.reward.is_some() { 7 } else { 2 }))?;
        match (self.1, &e.reward) {
            (KeyOrder::Sorted, None) => {
                m.serialize_entry("index", &e.index)?;
                m.serialize_entry("split", &e.split)?;
            }
            (KeyOrder::Script, None) => {
                m.serialize_entry("split", &e.split)?;
                m.serialize_entry("index", &e.index)?;
            }
            (KeyOrder::Sorted, Some(r)) => {
                m.serialize_entry("data_source", &r.data_source)?;
                m.serialize_entry("index", &e.index)?;
                m.serialize_entry("lower_limit", &r.lower_limit)?;
                m.serialize_entry("num_tokens", &r.num_tokens)?;
                m.serialize_entry("output_type", &r.output_type)?;
                m.serialize_entry("split", &e.split)?;
                m.serialize_entry("upper_limit", &r.upper_limit)?;
            }
            (KeyOrder::Script, Some(r)) => {
                m.serialize_entry("split", &e.split)?;
                m.serialize_entry("index", &e.index)?;
                m.serialize_entry("data_source", &r.data_source)?;
                m.serialize_entry("num_tokens", &r.num_tokens)?;
                m.serialize_entry("lower_limit", &r.lower_limit)?;
                m.serialize_entry("upper_limit", &r.upper_limit)?;
                m.serialize_entry("output_type", &r.output_type)?;
            }
        }
        m.end()
    }
}
