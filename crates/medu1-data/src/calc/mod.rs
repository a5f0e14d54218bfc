//! MedCalc-Bench calculators, re-implemented so calculation tasks have exact, verifiable answers.
//!
//! RL on calculation needs ground truth that can be recomputed, and MedCalc-Bench's 10,053-row
//! training split is not available to us. Implementing the calculators the way the benchmark does
//! them (its formulas, unit conversions, rounding and ±5 % limits, as documented in its one-shot
//! explanations) gives two things: an unlimited, license-free source of training rows
//! ([`synth`]), and a check of the benchmark's own labels ([`verify`]).
//!
//! A [`Calculator`] is a static description (id and name exactly as in the CSV, typed inputs keyed
//! by the `Relevant Entities` names, output type) plus a pure compute function over [`Inputs`], a
//! view of the entities as JSON (`{"creatinine": [1.2, "mg/dL"], "sex": "Male", ...}`).

pub mod dates;
pub(crate) mod formulas;
pub mod inputs;
mod scores;
pub mod synth;
pub mod units;
pub mod verify;

use medu1_core::CalcOutput;
use std::sync::LazyLock;

pub use dates::Date;
pub use inputs::Inputs;
pub use synth::{Difficulty, synth};
pub use units::Analyte;
pub use verify::{Disagreement, VerifyReport, verify_csv, verify_rows};

/// Why a calculator could not produce an answer. Messages are lowercase and name the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalcError {
    #[error("missing input `{0}`")]
    Missing(String),
    #[error("invalid input `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    #[error("unknown unit `{unit}` for `{field}`")]
    Unit { field: String, unit: String },
    #[error("unknown calculator `{0}`")]
    UnknownCalculator(String),
    #[error("relevant entities are not a python literal: {0}")]
    Entities(String),
}

impl CalcError {
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> CalcError {
        CalcError::Invalid {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// The benchmark's `Output Type` column. Gestational age is `integer` in the CSV although its
/// answer is a tuple; [`OutputType::WeekDay`] keeps that distinct here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputType {
    Decimal,
    Integer,
    Date,
    WeekDay,
}

impl OutputType {
    /// The string the CSV's `Output Type` column uses.
    pub fn csv_name(self) -> &'static str {
        match self {
            OutputType::Decimal => "decimal",
            OutputType::Integer | OutputType::WeekDay => "integer",
            OutputType::Date => "date",
        }
    }

    pub fn calc_output(self) -> CalcOutput {
        match self {
            OutputType::Decimal | OutputType::Integer => CalcOutput::Numeric,
            OutputType::Date => CalcOutput::Date,
            OutputType::WeekDay => CalcOutput::WeekDay,
        }
    }
}

/// A computed answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalcAnswer {
    /// Graded within ±5 %; written rounded to 3 decimals like the benchmark.
    Decimal(f64),
    /// Scores: exact.
    Integer(i64),
    /// Exact `MM/DD/YYYY`.
    Date(Date),
    /// Exact `('N weeks', 'M days')`.
    WeekDay { weeks: i64, days: i64 },
}

impl CalcAnswer {
    /// The answer string as the benchmark's `Ground Truth Answer` column writes it.
    pub fn to_answer_string(&self) -> String {
        match *self {
            CalcAnswer::Decimal(x) => format_decimal(x),
            CalcAnswer::Integer(n) => n.to_string(),
            CalcAnswer::Date(d) => d.to_string(),
            CalcAnswer::WeekDay { weeks, days } => format!("('{weeks} weeks', '{days} days')"),
        }
    }

    pub fn calc_output(&self) -> CalcOutput {
        match self {
            CalcAnswer::Decimal(_) | CalcAnswer::Integer(_) => CalcOutput::Numeric,
            CalcAnswer::Date(_) => CalcOutput::Date,
            CalcAnswer::WeekDay { .. } => CalcOutput::WeekDay,
        }
    }

    /// The numeric value, for decimal and integer answers.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            CalcAnswer::Decimal(x) => Some(x),
            CalcAnswer::Integer(n) => Some(n as f64),
            _ => None,
        }
    }
}

/// Rounds like Python's `round(x, digits)` on the decimal value (ties away from zero, which is
/// what the benchmark's values show; binary ties are vanishingly rare for computed values).
pub fn round_to(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    let r = (x * p).round() / p;
    if r == 0.0 { 0.0 } else { r }
}

/// A decimal answer as the benchmark writes it: rounded to 3 decimals without trailing zeros
/// (`100`, `56.667`, `-7`).
pub fn format_decimal(x: f64) -> String {
    let r = round_to(x, 3);
    let s = format!("{r:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// The benchmark's lower/upper limits for an answer: ±5 % of the rounded answer for decimals
/// (lower is the smaller, so a negative answer's lower limit is 1.05 × answer), the answer itself
/// for every exact type.
pub fn limits(answer: &CalcAnswer) -> (String, String) {
    match *answer {
        CalcAnswer::Decimal(x) => {
            let a = round_to(x, 3);
            // Rounding to 8 places removes binary noise (59.500350000000005) the way the
            // benchmark's stored limits show; `{}` then prints the shortest round-trip form.
            let lo = round_to(a * 0.95, 8);
            let hi = round_to(a * 1.05, 8);
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            (format_limit(lo), format_limit(hi))
        }
        _ => {
            let s = answer.to_answer_string();
            (s.clone(), s)
        }
    }
}

fn format_limit(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// What kind of value an input is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputKind {
    /// `[value, unit]`, converted per analyte.
    Quantity(Analyte),
    /// `True` / `False`; absent means false (the benchmark's convention for unmentioned findings).
    Flag,
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    /// A bare number (INR, cycle length, GCS, drinks per week).
    Number,
    /// A date string `MM/DD/YYYY`.
    Date,
}

/// One input of a calculator: its `Relevant Entities` key, kind, whether the calculator needs it,
/// a label for generated notes, and the range the generator draws from (in the analyte's canonical
/// unit; for choices and flags the range is ignored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputSpec {
    pub key: &'static str,
    pub kind: InputKind,
    pub required: bool,
    pub label: &'static str,
    pub range: (f64, f64),
}

/// A MedCalc-Bench calculator.
#[derive(Debug, Clone, Copy)]
pub struct Calculator {
    /// The CSV's `Calculator ID`.
    pub id: u32,
    /// The CSV's `Calculator Name`, exactly.
    pub name: &'static str,
    /// A short lowercase slug for command lines (`bmi`, `ckd-epi`).
    pub slug: &'static str,
    pub output: OutputType,
    /// The benchmark's question for this calculator, verbatim.
    pub question: &'static str,
    pub inputs: &'static [InputSpec],
    compute: fn(&Inputs) -> Result<CalcAnswer, CalcError>,
}

impl Calculator {
    pub fn compute(&self, inputs: &Inputs) -> Result<CalcAnswer, CalcError> {
        (self.compute)(inputs)
    }

    /// Computes from a `Relevant Entities` value (a JSON object).
    pub fn compute_json(&self, entities: &serde_json::Value) -> Result<CalcAnswer, CalcError> {
        self.compute(&Inputs::new(entities)?)
    }

    /// The inputs the calculator cannot do without.
    pub fn required_inputs(&self) -> impl Iterator<Item = &InputSpec> {
        self.inputs.iter().filter(|s| s.required)
    }
}

static ALL: LazyLock<Vec<Calculator>> = LazyLock::new(|| {
    let mut v: Vec<Calculator> = Vec::new();
    v.extend_from_slice(formulas::CALCULATORS);
    v.extend_from_slice(scores::CALCULATORS);
    v.extend_from_slice(dates::CALCULATORS);
    v.sort_by_key(|c| c.id);
    v
});

/// Every implemented calculator, by id.
pub fn all() -> &'static [Calculator] {
    &ALL
}

/// The calculator with this CSV `Calculator ID`.
pub fn by_id(id: u32) -> Option<&'static Calculator> {
    all().iter().find(|c| c.id == id)
}

/// Looks a calculator up by id (`"6"`), slug (`"bmi"`) or exact CSV name.
pub fn find(key: &str) -> Result<&'static Calculator, CalcError> {
    let k = key.trim();
    all()
        .iter()
        .find(|c| {
            k.parse::<u32>().ok() == Some(c.id)
                || c.slug.eq_ignore_ascii_case(k)
                || c.name.eq_ignore_ascii_case(k)
        })
        .ok_or_else(|| CalcError::UnknownCalculator(k.to_string()))
}

/// Parses a `Relevant Entities` cell (a Python literal) into JSON.
pub fn parse_entities(text: &str) -> Result<serde_json::Value, CalcError> {
    crate::pyliteral::parse(text)
        .map(|v| v.to_json())
        .map_err(|e| CalcError::Entities(e.to_string()))
}

/// Helper for the calculator tables: a required input.
pub(crate) const fn req(
    key: &'static str,
    kind: InputKind,
    label: &'static str,
    range: (f64, f64),
) -> InputSpec {
    InputSpec {
        key,
        kind,
        required: true,
        label,
        range,
    }
}

/// Helper for the calculator tables: an optional input (absent flags count as false).
pub(crate) const fn opt(
    key: &'static str,
    kind: InputKind,
    label: &'static str,
    range: (f64, f64),
) -> InputSpec {
    InputSpec {
        key,
        kind,
        required: false,
        label,
        range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_answers_are_written_like_the_benchmark() {
        assert_eq!(format_decimal(100.0), "100");
        assert_eq!(format_decimal(56.66666), "56.667");
        assert_eq!(format_decimal(-7.0), "-7");
        assert_eq!(format_decimal(-0.0001), "0");
        assert_eq!(format_decimal(22.5), "22.5");
    }

    #[test]
    fn limits_follow_the_five_percent_convention() {
        assert_eq!(
            limits(&CalcAnswer::Decimal(25.238)),
            ("23.9761".into(), "26.4999".into())
        );
        assert_eq!(
            limits(&CalcAnswer::Decimal(56.667)),
            ("53.83365".into(), "59.50035".into())
        );
        assert_eq!(
            limits(&CalcAnswer::Decimal(100.0)),
            ("95".into(), "105".into())
        );
        assert_eq!(
            limits(&CalcAnswer::Decimal(-0.828)),
            ("-0.8694".into(), "-0.7866".into())
        );
        assert_eq!(limits(&CalcAnswer::Integer(4)), ("4".into(), "4".into()));
        let d = CalcAnswer::Date(Date::new(2014, 9, 23).unwrap());
        assert_eq!(limits(&d), ("09/23/2014".into(), "09/23/2014".into()));
        let w = CalcAnswer::WeekDay { weeks: 14, days: 1 };
        assert_eq!(w.to_answer_string(), "('14 weeks', '1 days')");
    }

    #[test]
    fn registry_ids_are_unique_and_findable() {
        let mut ids: Vec<u32> = all().iter().map(|c| c.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), all().len());
        assert!(all().len() >= 25);
        assert_eq!(find("6").unwrap().slug, "bmi");
        assert_eq!(find("BMI").unwrap().id, 6);
        assert_eq!(find("Body Mass Index (BMI)").unwrap().id, 6);
        assert!(matches!(find("nope"), Err(CalcError::UnknownCalculator(_))));
        for c in all() {
            assert!(c.required_inputs().count() > 0, "{}", c.name);
        }
    }
}
