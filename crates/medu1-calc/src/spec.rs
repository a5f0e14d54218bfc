//! What a calculator is: its static description ([`Calculator`]: id and name as in the CSV,
//! typed inputs, output type) and its answer ([`CalcAnswer`]), written and bounded like the
//! benchmark's (rounding, ±5 % limits).

use medu1_core::CalcOutput;

use crate::dates::Date;
use crate::error::CalcError;
use crate::inputs::Inputs;
use crate::units::Analyte;

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
    pub(crate) compute: fn(&Inputs) -> Result<CalcAnswer, CalcError>,
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
    use crate::dates::Date;

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
}
