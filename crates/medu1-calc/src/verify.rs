//! Recomputes MedCalc-Bench's labels from each row's `Relevant Entities`.
//!
//! This is how the calculators are shown to follow the benchmark (agreement per calculator), and
//! how the benchmark's own label errors are found: a disagreement is reported with its reason,
//! never hidden by bending a formula. Rows whose cause has been traced by hand carry that finding
//! ([`known_finding`]).

use crate::error::CalcError;
use crate::inputs::{Inputs, parse_entities};
use crate::registry::{all, by_id};
use crate::spec::CalcAnswer;
use crate::units::Analyte;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One CSV row, reduced to what verification needs.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    pub row_number: String,
    pub calculator_id: u32,
    pub calculator_name: String,
    pub relevant_entities: String,
    pub answer: String,
    pub lower: String,
    pub upper: String,
}

/// Agreement for one calculator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    pub id: u32,
    pub name: String,
    pub rows: usize,
    pub agree: usize,
}

impl Agreement {
    pub fn percent(&self) -> f64 {
        if self.rows == 0 {
            100.0
        } else {
            100.0 * self.agree as f64 / self.rows as f64
        }
    }
}

/// A row where the recomputed answer is not accepted by the row's own limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disagreement {
    pub row_number: String,
    pub calculator_id: u32,
    pub calculator: String,
    pub expected: String,
    /// `None` when the calculator could not compute (the reason says why).
    pub computed: Option<String>,
    pub lower: String,
    pub upper: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub per_calculator: Vec<Agreement>,
    pub disagreements: Vec<Disagreement>,
    /// Rows of calculators not implemented here.
    pub skipped_rows: usize,
}

impl VerifyReport {
    pub fn total_rows(&self) -> usize {
        self.per_calculator.iter().map(|a| a.rows).sum()
    }

    pub fn total_agree(&self) -> usize {
        self.per_calculator.iter().map(|a| a.agree).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read medcalc csv {path}")]
    Csv { path: String, source: csv::Error },
    #[error("medcalc csv {path} has no column `{column}`")]
    Column { path: String, column: String },
    #[error("medcalc csv {path} row {row}: invalid calculator id `{id}`")]
    Id {
        path: String,
        row: usize,
        id: String,
    },
}

/// Reads the benchmark CSV (`test_data_v1.0.csv` layout).
pub fn read_rows(path: &Path) -> Result<Vec<BenchRow>, VerifyError> {
    let p = path.display().to_string();
    let csv_err = |source| VerifyError::Csv {
        path: p.clone(),
        source,
    };
    let mut rdr = csv::Reader::from_path(path).map_err(csv_err)?;
    let headers = rdr.headers().map_err(csv_err)?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| VerifyError::Column {
                path: p.clone(),
                column: name.to_string(),
            })
    };
    let (c_row, c_id, c_name, c_ent, c_ans, c_lo, c_hi) = (
        col("Row Number")?,
        col("Calculator ID")?,
        col("Calculator Name")?,
        col("Relevant Entities")?,
        col("Ground Truth Answer")?,
        col("Lower Limit")?,
        col("Upper Limit")?,
    );
    let mut out = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(csv_err)?;
        let f = |c: usize| rec.get(c).unwrap_or("").to_string();
        let id = f(c_id);
        let calculator_id = id.trim().parse().map_err(|_| VerifyError::Id {
            path: p.clone(),
            row: n + 1,
            id: id.clone(),
        })?;
        out.push(BenchRow {
            row_number: f(c_row),
            calculator_id,
            calculator_name: f(c_name),
            relevant_entities: f(c_ent),
            answer: f(c_ans),
            lower: f(c_lo),
            upper: f(c_hi),
        });
    }
    Ok(out)
}

/// Verifies every implemented calculator against the CSV at `path`.
pub fn verify_csv(path: &Path) -> Result<VerifyReport, VerifyError> {
    Ok(verify_rows(&read_rows(path)?))
}

/// Verifies rows already read.
pub fn verify_rows(rows: &[BenchRow]) -> VerifyReport {
    let mut per: BTreeMap<u32, Agreement> = BTreeMap::new();
    let mut disagreements = Vec::new();
    let mut skipped = 0;
    for row in rows {
        let Some(calc) = by_id(row.calculator_id) else {
            skipped += 1;
            continue;
        };
        let entry = per.entry(calc.id).or_insert_with(|| Agreement {
            id: calc.id,
            name: calc.name.to_string(),
            rows: 0,
            agree: 0,
        });
        entry.rows += 1;
        let inputs = parse_entities(&row.relevant_entities).and_then(|e| Inputs::new(&e));
        let computed = inputs
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|i| calc.compute(i));
        match check(&computed, row) {
            Ok(()) => entry.agree += 1,
            Err(reason) => {
                let traced = known_finding(&row.row_number, calc.id).or_else(|| {
                    inputs
                        .as_ref()
                        .ok()
                        .and_then(|i| reproduce_label(calc.id, i, row))
                });
                let reason = match traced {
                    Some(f) => format!("{reason}; benchmark label error: {f}"),
                    None => reason,
                };
                disagreements.push(Disagreement {
                    row_number: row.row_number.clone(),
                    calculator_id: calc.id,
                    calculator: calc.name.to_string(),
                    expected: row.answer.clone(),
                    computed: computed.as_ref().ok().map(CalcAnswer::to_answer_string),
                    lower: row.lower.clone(),
                    upper: row.upper.clone(),
                    reason,
                });
            }
        }
    }
    // Calculators with no rows in this file still appear, with zero rows.
    for c in all() {
        per.entry(c.id).or_insert_with(|| Agreement {
            id: c.id,
            name: c.name.to_string(),
            rows: 0,
            agree: 0,
        });
    }
    VerifyReport {
        per_calculator: per.into_values().collect(),
        disagreements,
        skipped_rows: skipped,
    }
}

/// Whether a computed answer is accepted by the row; `Err` carries the mechanical reason.
pub fn check(computed: &Result<CalcAnswer, CalcError>, row: &BenchRow) -> Result<(), String> {
    let answer = match computed {
        Ok(a) => a,
        Err(e) => return Err(format!("cannot compute: {e}")),
    };
    match answer {
        CalcAnswer::Decimal(_) | CalcAnswer::Integer(_) => {
            let x = answer.as_f64().unwrap_or(f64::NAN);
            let lo: f64 = row
                .lower
                .trim()
                .parse()
                .map_err(|_| format!("unparsable lower limit `{}`", row.lower))?;
            let hi: f64 = row
                .upper
                .trim()
                .parse()
                .map_err(|_| format!("unparsable upper limit `{}`", row.upper))?;
            // The benchmark compares the (rounded) answer, so compare what would be written.
            let written: f64 = answer.to_answer_string().parse().unwrap_or(x);
            if (lo - 1e-9..=hi + 1e-9).contains(&written) {
                Ok(())
            } else {
                let expected: f64 = row.answer.trim().parse().unwrap_or(f64::NAN);
                let rel = if expected != 0.0 {
                    100.0 * (written - expected) / expected.abs()
                } else {
                    f64::INFINITY
                };
                Err(format!("outside limits ({rel:+.1} % from the label)"))
            }
        }
        CalcAnswer::Date(_) | CalcAnswer::WeekDay { .. } => {
            let norm = |s: &str| {
                s.chars()
                    .filter(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
                    .collect::<String>()
            };
            if norm(&answer.to_answer_string()) == norm(&row.answer) {
                Ok(())
            } else {
                let kind = if matches!(answer, CalcAnswer::Date(_)) {
                    "date"
                } else {
                    "gestational age"
                };
                Err(format!("{kind} differs"))
            }
        }
    }
}

/// Causes traced by hand (reading the row's note and Ground Truth Explanation) for rows where the
/// benchmark's label disagrees with its own documented formula.
pub fn known_finding(row_number: &str, calculator_id: u32) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|(r, c, _)| *r == row_number && *c == calculator_id)
        .map(|(_, _, f)| *f)
}

const KNOWN: &[(&str, u32, &str)] = &[
    (
        "23",
        3,
        "creatinine 80.4 µmol/L rounded to 0.9 mg/dL, then kappa 0.7 (the female constant) used for a male",
    ),
    (
        "209",
        15,
        "omits the ascites points and scores albumin 2.8 g/dL as < 2.8 (3 points instead of 2)",
    ),
    (
        "214",
        15,
        "omits both the ascites and the bilirubin (2.0 mg/dL) points",
    ),
    (
        "114",
        7,
        "calcium 2.26 mmol/L converted with the mole amount rounded to 0.002 mol (8.0 mg/dL instead of 9.06)",
    ),
    (
        "117",
        7,
        "calcium 2.6 mmol/L converted with the mole amount rounded to 0.003 mol (12.0 mg/dL instead of 10.42)",
    ),
    (
        "513",
        44,
        "total cholesterol 4.75 mmol/L converted with the mole amount rounded to 0.005 mol (193.3 mg/dL instead of 183.7)",
    ),
    (
        "521",
        44,
        "total cholesterol 4.5 mmol/L converted with the mole amount rounded to 0.005 mol (193.3 mg/dL instead of 174.0)",
    ),
];

/// Recomputes the label with each systematic error the benchmark's explanations were found to
/// make for a calculator; the description of the first that reproduces the label is the reason.
fn reproduce_label(id: u32, i: &Inputs, row: &BenchRow) -> Option<&'static str> {
    let variant: Result<CalcAnswer, CalcError> = match id {
        3 => ckd_epi_male_kappa_07(i),
        13 => due_date_reversed(i),
        15 => child_pugh_without_ascites(i),
        21 => gcs_verbal_twice(i),
        23 => meld_rounded_to_integer(i),
        51 => sirs_wbc_always_met(i),
        _ => return None,
    };
    check(&variant, row).is_ok().then_some(match id {
        3 => "uses kappa 0.7 (the female constant) for a male with creatinine <= 0.9 mg/dL",
        13 => "applies the cycle-length adjustment with the reversed sign (28 - cycle instead of cycle - 28)",
        15 => "omits the ascites points (the explanation never scores ascites)",
        21 => "adds the verbal response points twice (scoring \"not testable\" as 4, not the full 5)",
        23 => "rounds MELD(i) to an integer before x10, although the stated rule is to the nearest tenth",
        51 => "converts the WBC count per µL to per m^3 (x1e9), so the WBC criterion is always met (and writes that step as 1 + 1 when nothing was counted before)",
        _ => "",
    })
}

fn ckd_epi_male_kappa_07(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let female = i.female()?;
    let scr = i.quantity("creatinine", Analyte::Creatinine)?;
    if female || scr > 0.9 {
        return Err(CalcError::invalid(
            "sex",
            "variant only for males with low creatinine",
        ));
    }
    let gfr = 142.0 * (scr / 0.7).powf(-0.302) * 0.9938f64.powf(i.age()?);
    Ok(CalcAnswer::Decimal(gfr))
}

fn due_date_reversed(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let lmp = i.date("Last menstrual date")?;
    let cycle = i.number_opt("cycle length")?.unwrap_or(28.0).round() as i64;
    Ok(CalcAnswer::Date(lmp.add_days(280 - (cycle - 28))))
}

fn child_pugh_without_ascites(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let full = by_id(15)
        .ok_or(CalcError::UnknownCalculator("15".into()))?
        .compute(i)?;
    let ascites = match i.choice("Ascites")?.as_deref() {
        Some("slight" | "mild") => 2,
        Some("moderate" | "severe" | "true") => 3,
        _ => 1,
    };
    match full {
        CalcAnswer::Integer(n) => Ok(CalcAnswer::Integer(n - ascites)),
        other => Ok(other),
    }
}

/// The labels add the verbal points twice, and score a "not testable" verbal response 4 (each
/// time) instead of the full 5 the explanation's own rule gives.
fn gcs_verbal_twice(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let (correct, labelled) = match i.choice("Best verbal response")?.as_deref() {
        Some("confused") => (4, 4),
        Some("inappropriate words") => (3, 3),
        Some("incomprehensible sounds") => (2, 2),
        Some("no verbal response") => (1, 1),
        Some("not testable") => (5, 4),
        _ => (5, 5),
    };
    match by_id(21)
        .ok_or(CalcError::UnknownCalculator("21".into()))?
        .compute(i)?
    {
        CalcAnswer::Integer(n) => Ok(CalcAnswer::Integer(n - correct + 2 * labelled)),
        other => Ok(other),
    }
}

fn meld_rounded_to_integer(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let dialysis = i.flag("Dialysis at least twice in the past week")?
        || i.flag("Continuous veno-venous hemodialysis for ≥24 hours in the past week")?;
    let mut cr = i.quantity("creatinine", Analyte::Creatinine)?;
    if dialysis || cr > 4.0 {
        cr = 4.0;
    }
    let cr = cr.max(1.0);
    let bili = i.quantity("Bilirubin", Analyte::Bilirubin)?.max(1.0);
    let inr = i.number("international normalized ratio")?.max(1.0);
    let na = i.quantity("Sodium", Analyte::Sodium)?.clamp(125.0, 137.0);
    let meld_i = 0.957 * cr.ln() + 0.378 * bili.ln() + 1.120 * inr.ln() + 0.643;
    let mut meld = meld_i.round() * 10.0;
    if meld > 11.0 {
        meld = meld + 1.32 * (137.0 - na) - 0.033 * meld_i * (137.0 - na);
    }
    Ok(CalcAnswer::Decimal(meld.round().min(40.0)))
}

/// The labels always count the WBC criterion (the count is "converted" to per m³), and when no
/// criterion was met before it they write the step as `1 + 1 = 2`.
fn sirs_wbc_always_met(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let temp = i
        .quantity_opt("Temperature", Analyte::Temperature)?
        .is_some_and(|t| !(36.0..=38.0).contains(&t));
    let hr = i
        .quantity_opt("Heart Rate or Pulse", Analyte::Plain("beats per minute"))?
        .is_some_and(|h| h > 90.0);
    let rr = i.number_opt("respiratory rate")?.is_some_and(|r| r > 20.0)
        || i.number_opt("PaCO₂")?.is_some_and(|p| p < 32.0);
    let before = i64::from(temp) + i64::from(hr);
    let after_wbc = if before == 0 { 2 } else { before + 1 };
    Ok(CalcAnswer::Integer(after_wbc + i64::from(rr)))
}
