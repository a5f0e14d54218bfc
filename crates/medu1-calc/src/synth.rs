//! Synthetic MedCalc-Bench-style training rows with exact answers.
//!
//! MedCalc-Bench's training split is not available to us, but its calculators are: drawing the
//! inputs, writing them into a short note (in mixed units, with distractor values) and computing
//! the answer with the same [`Calculator`] that [`crate::verify`] checks against the benchmark
//! gives an unlimited, license-free, verifiable source of calculation tasks. Rows use the
//! benchmark's question wording, answer format and limits, and the `MedCalc-Bench` source name
//! (split `synthetic`) so the existing reward path grades them as calculations.

use crate::dates::Date;
use crate::error::CalcError;
use crate::inputs::Inputs;
use crate::spec::{CalcAnswer, Calculator, InputKind, InputSpec, limits};
use crate::units::Analyte;
use medu1_core::{Budget, Sample, Task};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

/// How hard a generated note is to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Difficulty {
    /// Canonical units, every finding stated, one distractor.
    Easy,
    /// Each value in an alternative unit half the time, some unmentioned findings, a few distractors.
    Mixed,
    /// Mostly alternative units, unmentioned findings, many distractors, shuffled order.
    Hard,
}

impl std::str::FromStr for Difficulty {
    type Err = CalcError;

    fn from_str(s: &str) -> Result<Difficulty, CalcError> {
        match s.trim().to_lowercase().as_str() {
            "easy" => Ok(Difficulty::Easy),
            "mixed" => Ok(Difficulty::Mixed),
            "hard" => Ok(Difficulty::Hard),
            other => Err(CalcError::invalid(
                "difficulty",
                format!("`{other}` is not easy, mixed or hard"),
            )),
        }
    }
}

impl Difficulty {
    fn alt_unit_p(self) -> f64 {
        match self {
            Difficulty::Easy => 0.0,
            Difficulty::Mixed => 0.5,
            Difficulty::Hard => 0.8,
        }
    }

    fn distractors(self) -> (usize, usize) {
        match self {
            Difficulty::Easy => (1, 1),
            Difficulty::Mixed => (2, 3),
            Difficulty::Hard => (4, 6),
        }
    }

    /// Probability that a negative finding is stated rather than left unmentioned.
    fn state_negative_p(self) -> f64 {
        match self {
            Difficulty::Easy => 1.0,
            Difficulty::Mixed => 0.6,
            Difficulty::Hard => 0.3,
        }
    }
}

/// Values that appear in notes without being inputs of the calculator asked about.
const DISTRACTORS: &[(&str, &str, Analyte, (f64, f64))] = &[
    ("Potassium", "potassium", Analyte::Potassium, (3.2, 5.4)),
    (
        "Hemoglobin",
        "hemoglobin",
        Analyte::Plain("g/dL"),
        (8.0, 16.5),
    ),
    (
        "Respiratory rate",
        "respiratory rate",
        Analyte::Plain("breaths per minute"),
        (12.0, 28.0),
    ),
    (
        "Temperature",
        "temperature",
        Analyte::Temperature,
        (36.2, 39.5),
    ),
    (
        "O2 saturation",
        "oxygen saturation",
        Analyte::Plain("%"),
        (88.0, 100.0),
    ),
    (
        "Heart Rate or Pulse",
        "heart rate",
        Analyte::Plain("beats per minute"),
        (55.0, 125.0),
    ),
    (
        "Systolic Blood Pressure",
        "systolic blood pressure",
        Analyte::Plain("mm Hg"),
        (95.0, 170.0),
    ),
    ("Glucose", "glucose", Analyte::Glucose, (75.0, 240.0)),
    (
        "creatinine",
        "serum creatinine",
        Analyte::Creatinine,
        (0.6, 2.5),
    ),
    (
        "Blood Urea Nitrogen (BUN)",
        "blood urea nitrogen",
        Analyte::Bun,
        (8.0, 40.0),
    ),
    ("Sodium", "sodium", Analyte::Sodium, (132.0, 146.0)),
    ("Albumin", "albumin", Analyte::Albumin, (2.5, 4.6)),
    (
        "Aspartate aminotransferase",
        "AST",
        Analyte::Plain("U/L"),
        (15.0, 90.0),
    ),
    ("weight", "weight", Analyte::Weight, (50.0, 110.0)),
];

/// Generates `n` rows, reproducibly from `seed`, each for one of `calculators` (all implemented
/// calculators when empty) chosen uniformly.
pub fn synth(
    n: usize,
    seed: u64,
    calculators: &[&Calculator],
    difficulty: Difficulty,
) -> Result<Vec<Sample>, CalcError> {
    let pool: Vec<&Calculator> = if calculators.is_empty() {
        crate::registry::all().iter().collect()
    } else {
        calculators.to_vec()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for index in 0..n {
        let calc = pool[rng.random_range(0..pool.len())];
        out.push(one(calc, &mut rng, difficulty, seed, index)?);
    }
    Ok(out)
}

fn one(
    calc: &Calculator,
    rng: &mut ChaCha8Rng,
    d: Difficulty,
    seed: u64,
    index: usize,
) -> Result<Sample, CalcError> {
    // Some draws have no answer (a delta ratio with bicarbonate exactly 24); draw again.
    let mut last = None;
    for _ in 0..50 {
        let (entities, question) = draw_entities(calc, rng, d);
        match calc.compute(&Inputs::from_map(entities.clone())) {
            Ok(answer) => {
                return Ok(sample(
                    calc, rng, d, seed, index, entities, question, answer,
                ));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| CalcError::invalid("synth", "no valid draw")))
}

/// Decimal places a generated value is written with, from its range's magnitude.
fn decimals(range: (f64, f64)) -> i32 {
    if range.1 >= 100.0 {
        0
    } else if range.1 >= 10.0 {
        1
    } else {
        2
    }
}

fn round(x: f64, digits: i32) -> f64 {
    crate::spec::round_to(x, digits)
}

fn draw_value(rng: &mut ChaCha8Rng, range: (f64, f64)) -> f64 {
    round(rng.random_range(range.0..=range.1), decimals(range))
}

/// A `[value, unit]` entity in a unit chosen by difficulty.
fn draw_quantity(
    rng: &mut ChaCha8Rng,
    a: Analyte,
    range: (f64, f64),
    d: Difficulty,
    key: &str,
) -> Value {
    // Counts, ages, rates and pressures are charted as whole numbers.
    let whole = matches!(
        a,
        Analyte::Age
            | Analyte::Plain(
                "beats per minute" | "breaths per minute" | "mm Hg" | "msec" | "%" | "U/L"
            )
            | Analyte::CellCount
    );
    let v = if whole {
        rng.random_range(range.0..=range.1).round()
    } else {
        draw_value(rng, range)
    };
    let alts = a.alternative_units();
    let canonical = a.canonical_unit();
    let unit = if alts.len() > 1 && rng.random_bool(d.alt_unit_p()) {
        // Feet alone are too coarse for a height, and grams only suit infants.
        let usable: Vec<&str> = alts
            .iter()
            .copied()
            .filter(|u| *u != canonical && *u != "ft" && !(*u == "g" && v >= 10.0))
            .collect();
        if usable.is_empty() {
            canonical
        } else {
            usable[rng.random_range(0..usable.len())]
        }
    } else {
        canonical
    };
    if unit == canonical {
        return json!([v, unit]);
    }
    let converted = a.convert(v, canonical, unit, key).unwrap_or(v);
    // Keep about three significant figures in the note's unit.
    let mag = converted.abs().max(1e-9).log10().floor() as i32;
    json!([round(converted, (2 - mag).clamp(0, 4)), unit])
}

fn random_date(rng: &mut ChaCha8Rng) -> Date {
    let start = Date {
        year: 2000,
        month: 1,
        day: 1,
    }
    .to_days();
    Date::from_days(start + rng.random_range(0..9000))
}

fn draw_entities(
    calc: &Calculator,
    rng: &mut ChaCha8Rng,
    d: Difficulty,
) -> (Map<String, Value>, String) {
    let mut m = Map::new();
    let mut question = calc.question.to_string();
    match calc.id {
        // Steroid conversion: an input drug and dose, and a target drug named in the question.
        24 => {
            let drugs = [
                "Betamethasone IV",
                "Cortisone PO",
                "Dexamethasone IV",
                "Dexamethasone PO",
                "Hydrocortisone IV",
                "Hydrocortisone PO",
                "MethylPrednisoLONE IV",
                "MethylPrednisoLONE PO",
                "PrednisoLONE PO",
                "PredniSONE PO",
                "Triamcinolone IV",
            ];
            let from = drugs[rng.random_range(0..drugs.len())];
            let mut to = drugs[rng.random_range(0..drugs.len())];
            while to == from {
                to = drugs[rng.random_range(0..drugs.len())];
            }
            let dose = round(rng.random_range(1.0..120.0), 1);
            m.insert("input steroid".into(), json!([from, dose, "mg"]));
            m.insert("target steroid".into(), json!(to));
            question = question.replace("{input}", from).replace("{target}", to);
            return (m, question);
        }
        // MME: one to three opioids with doses and doses per day.
        49 => {
            let mut drugs: Vec<(&str, f64)> = crate::formulas::OPIOIDS.to_vec();
            drugs.shuffle(rng);
            for (drug, _) in drugs.iter().take(rng.random_range(1..=3)) {
                let (dose, unit) = if drug.starts_with("Fenta") {
                    (f64::from(rng.random_range(1..=8) * 10), "µg")
                } else {
                    (f64::from(rng.random_range(1..=12) * 5), "mg")
                };
                m.insert(format!("{drug} Dose"), json!([dose, unit]));
                m.insert(
                    format!("{drug} Dose Per Day"),
                    json!([rng.random_range(1..=4), "per day"]),
                );
            }
            return (m, question);
        }
        _ => {}
    }
    let mut lmp = None;
    for spec in calc.inputs {
        if !spec.required && !matches!(spec.kind, InputKind::Flag) && !rng.random_bool(0.7) {
            continue;
        }
        let v = match spec.kind {
            InputKind::Quantity(a) => draw_quantity(rng, a, spec.range, d, spec.key),
            InputKind::Flag => json!(rng.random_bool(0.35)),
            InputKind::Choice(options) => json!(options[rng.random_range(0..options.len())]),
            InputKind::Number => {
                let x = draw_value(rng, spec.range);
                if spec.range.1 >= 10.0 {
                    json!(x.round() as i64)
                } else {
                    json!(x)
                }
            }
            InputKind::Date => {
                // Gestational age needs today's date after the LMP; other date inputs are the LMP.
                let date = match (spec.key, lmp) {
                    ("Current Date", _) => {
                        let l = random_date(rng);
                        lmp = Some(l);
                        l.add_days(rng.random_range(7..295))
                    }
                    (_, Some(l)) => l,
                    _ => random_date(rng),
                };
                json!(date.to_string())
            }
        };
        m.insert(spec.key.to_string(), v);
    }
    (m, question)
}

#[allow(clippy::too_many_arguments)]
fn sample(
    calc: &Calculator,
    rng: &mut ChaCha8Rng,
    d: Difficulty,
    seed: u64,
    index: usize,
    entities: Map<String, Value>,
    question: String,
    answer: CalcAnswer,
) -> Sample {
    let note = render_note(calc, rng, d, &entities);
    let (lower, upper) = limits(&answer);
    let mut extra = Map::new();
    extra.insert("calculator_id".into(), json!(calc.id.to_string()));
    extra.insert("calculator_name".into(), json!(calc.name));
    extra.insert("output_type".into(), json!(calc.output.csv_name()));
    extra.insert("relevant_entities".into(), Value::Object(entities));
    extra.insert(
        "generator".into(),
        json!({"name": "medu1-synth-calc", "seed": seed, "index": index}),
    );
    Sample {
        source: "MedCalc-Bench".into(),
        id: format!("synth-{seed}-{index}"),
        split: "synthetic".into(),
        question: format!("<Context> {note} </Context> <Question> {question} </Question>"),
        task: Task::Calculation {
            lower_limit: Some(lower),
            upper_limit: Some(upper),
            output: answer.calc_output(),
        },
        answer: answer.to_answer_string(),
        budget: Budget::None,
        rendered_prompt: None,
        reasoning: None,
        extra,
    }
}

fn fmt_num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
        Some(x) => format!("{x}"),
        None => v.to_string(),
    }
}

fn render_quantity(label: &str, v: &Value) -> String {
    match v.as_array().map(Vec::as_slice) {
        Some([x, u]) => {
            let unit = u.as_str().unwrap_or("");
            match unit {
                "µL" => format!("{label} {} /µL", fmt_num(x)),
                "L" => format!("{label} {} /L", fmt_num(x)),
                "per day" => format!("{label} {}", fmt_num(x)),
                "years" => format!("{label} {} years", fmt_num(x)),
                _ => format!("{label} {} {unit}", fmt_num(x)),
            }
        }
        _ => format!("{label} {}", fmt_num(v)),
    }
}

fn render_note(
    calc: &Calculator,
    rng: &mut ChaCha8Rng,
    d: Difficulty,
    e: &Map<String, Value>,
) -> String {
    let pregnant = calc.inputs.iter().any(|s| s.key == "Last menstrual date");
    let female = e
        .get("sex")
        .and_then(Value::as_str)
        .map(|s| s == "Female")
        .unwrap_or_else(|| pregnant || rng.random_bool(0.5));
    let age = match e
        .get("age")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_f64)
    {
        Some(a) => a,
        None if pregnant => f64::from(rng.random_range(19..42)),
        None => f64::from(rng.random_range(20..85)),
    };
    let who = if female { "woman" } else { "man" };
    let mut sentences = vec![format!(
        "A {}-year-old {who} presents for evaluation.",
        fmt_num(&json!(age))
    )];
    if let Some(r) = e.get("Race").and_then(Value::as_str) {
        sentences.push(format!("The patient identifies as {r}."));
    }
    let mut positives = Vec::new();
    let mut negatives = Vec::new();
    let mut measurements = Vec::new();
    for spec in calc.inputs {
        let Some(v) = e.get(spec.key) else { continue };
        match spec.kind {
            _ if matches!(spec.key, "sex" | "age" | "Race") => {}
            InputKind::Flag => {
                if v.as_bool() == Some(true) {
                    positives.push(spec.label.to_string());
                } else if rng.random_bool(d.state_negative_p()) {
                    negatives.push(spec.label.to_string());
                }
            }
            InputKind::Quantity(_) => measurements.push(render_quantity(spec.label, v)),
            InputKind::Number => measurements.push(format!("{} {}", spec.label, fmt_num(v))),
            InputKind::Choice(_) => sentences.push(format!(
                "Documented {}: {}.",
                spec.label,
                v.as_str().unwrap_or("")
            )),
            InputKind::Date => sentences.push(match spec.key {
                "Current Date" => format!("Today's date is {}.", v.as_str().unwrap_or("")),
                _ => format!(
                    "Her last menstrual period began on {}.",
                    v.as_str().unwrap_or("")
                ),
            }),
        }
    }
    // Inputs with special shapes (steroid conversion, MME).
    if let Some(arr) = e.get("input steroid").and_then(Value::as_array) {
        let name = arr.first().and_then(Value::as_str).unwrap_or("");
        let dose = arr.get(1).map(fmt_num).unwrap_or_default();
        sentences.push(
            format!("She is taking {name} {dose} mg daily.")
                .replace("She", if female { "She" } else { "He" }),
        );
    }
    for (drug, _) in crate::formulas::OPIOIDS {
        if let (Some(dose), Some(per_day)) = (
            e.get(&format!("{drug} Dose")),
            e.get(&format!("{drug} Dose Per Day")),
        ) {
            let amount = render_quantity("", dose);
            let times = per_day
                .as_array()
                .and_then(|a| a.first())
                .map(fmt_num)
                .unwrap_or_default();
            sentences.push(format!(
                "Current medications include {drug}{amount} taken {times} times a day."
            ));
        }
    }
    let (lo, hi) = d.distractors();
    let k = rng.random_range(lo..=hi);
    let mut pool: Vec<&(&str, &str, Analyte, (f64, f64))> = DISTRACTORS
        .iter()
        .filter(|(key, ..)| !calc.inputs.iter().any(|s: &InputSpec| s.key == *key))
        .collect();
    pool.shuffle(rng);
    for (key, label, a, range) in pool.into_iter().take(k) {
        let v = draw_quantity(rng, *a, *range, d, key);
        measurements.push(render_quantity(label, &v));
    }
    if d == Difficulty::Hard {
        measurements.shuffle(rng);
    }
    if !positives.is_empty() {
        sentences.push(format!("History is notable for {}.", positives.join(", ")));
    }
    if !negatives.is_empty() {
        sentences.push(format!("There is no {}.", negatives.join(", no ")));
    }
    if !measurements.is_empty() {
        sentences.push(format!("Measurements: {}.", measurements.join("; ")));
    }
    sentences.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_rows_different_seed_different_rows() {
        let a = synth(40, 7, &[], Difficulty::Mixed).unwrap();
        let b = synth(40, 7, &[], Difficulty::Mixed).unwrap();
        let c = synth(40, 8, &[], Difficulty::Mixed).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 40);
    }

    #[test]
    fn generated_answers_reverify_through_the_calculator() {
        for d in [Difficulty::Easy, Difficulty::Mixed, Difficulty::Hard] {
            for s in synth(300, 11, &[], d).unwrap() {
                let id: u32 = s.extra["calculator_id"].as_str().unwrap().parse().unwrap();
                let calc = crate::registry::by_id(id).unwrap();
                let answer = calc.compute_json(&s.extra["relevant_entities"]).unwrap();
                assert_eq!(answer.to_answer_string(), s.answer, "{}", s.question);
                let Task::Calculation {
                    lower_limit,
                    upper_limit,
                    output,
                } = &s.task
                else {
                    panic!("not a calculation")
                };
                assert_eq!(
                    (lower_limit.clone().unwrap(), upper_limit.clone().unwrap()),
                    limits(&answer)
                );
                assert_eq!(*output, medu1_core::CalcOutput::classify(&s.answer));
                assert_eq!(s.source, "MedCalc-Bench");
                assert_eq!(s.split, "synthetic");
                assert!(
                    s.question.starts_with("<Context> ") && s.question.ends_with(" </Question>")
                );
            }
        }
    }

    #[test]
    fn restricts_to_the_requested_calculators() {
        let bmi = crate::registry::find("bmi").unwrap();
        let rows = synth(20, 1, &[bmi], Difficulty::Hard).unwrap();
        assert!(rows.iter().all(|s| s.extra["calculator_id"] == "6"));
        assert!("medium".parse::<Difficulty>().is_err());
        assert_eq!("HARD".parse::<Difficulty>().unwrap(), Difficulty::Hard);
    }
}
