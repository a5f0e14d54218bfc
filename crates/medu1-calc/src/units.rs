//! Unit conversions, done the way MedCalc-Bench's explanations do them.
//!
//! Notes report the same quantity in many units (creatinine in mg/dL or µmol/L, weight in kg or
//! lbs, temperature in °C or °F). Each calculator asks for one canonical unit per analyte; the
//! molar masses and factors here are the benchmark's (e.g. BUN 28.02 g/mol, triglycerides
//! 861.338 g/mol, 1 in = 2.54 cm, 1 lb = 0.453592 kg), so converted values match its labels.

use crate::error::CalcError;

/// What a quantity measures, which decides its canonical unit and how other units convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Analyte {
    /// Canonical kg.
    Weight,
    /// Canonical cm.
    Height,
    /// Canonical years.
    Age,
    /// Canonical °C.
    Temperature,
    /// Canonical mg/dL.
    Creatinine,
    /// Canonical mg/dL.
    Glucose,
    /// Canonical mg/dL (urea nitrogen).
    Bun,
    /// Canonical mg/dL.
    Calcium,
    /// Canonical mg/dL.
    Bilirubin,
    /// Canonical mg/dL (total or HDL cholesterol).
    Cholesterol,
    /// Canonical mg/dL.
    Triglycerides,
    /// Canonical mEq/L.
    Sodium,
    /// Canonical mEq/L.
    Chloride,
    /// Canonical mEq/L.
    Bicarbonate,
    /// Canonical mEq/L.
    Potassium,
    /// Canonical g/dL.
    Albumin,
    /// Canonical count per µL (= per mm³).
    CellCount,
    /// A quantity whose unit never needs converting (mm Hg, beats per minute, msec, U/L, %, kg/m²).
    Plain(&'static str),
}

impl Analyte {
    /// The unit every calculator receives this analyte in.
    pub fn canonical_unit(self) -> &'static str {
        match self {
            Analyte::Weight => "kg",
            Analyte::Height => "cm",
            Analyte::Age => "years",
            Analyte::Temperature => "degrees celsius",
            Analyte::Creatinine
            | Analyte::Glucose
            | Analyte::Bun
            | Analyte::Calcium
            | Analyte::Bilirubin
            | Analyte::Cholesterol
            | Analyte::Triglycerides => "mg/dL",
            Analyte::Sodium | Analyte::Chloride | Analyte::Bicarbonate | Analyte::Potassium => {
                "mEq/L"
            }
            Analyte::Albumin => "g/dL",
            Analyte::CellCount => "µL",
            Analyte::Plain(u) => u,
        }
    }

    /// Other units a generated note may use for this analyte (first is canonical; empty when only
    /// the canonical unit exists).
    pub fn alternative_units(self) -> &'static [&'static str] {
        match self {
            Analyte::Weight => &["kg", "lbs", "g"],
            Analyte::Height => &["cm", "m", "in", "ft"],
            Analyte::Age => &["years"],
            Analyte::Temperature => &["degrees celsius", "degrees fahrenheit"],
            Analyte::Creatinine | Analyte::Bilirubin => &["mg/dL", "µmol/L"],
            Analyte::Glucose
            | Analyte::Bun
            | Analyte::Cholesterol
            | Analyte::Triglycerides
            | Analyte::Calcium => &["mg/dL", "mmol/L"],
            Analyte::Sodium | Analyte::Chloride | Analyte::Bicarbonate | Analyte::Potassium => {
                &["mEq/L", "mmol/L"]
            }
            Analyte::Albumin => &["g/dL", "g/L"],
            Analyte::CellCount => &["µL", "L"],
            // Units that never need converting: generated notes use the canonical one.
            Analyte::Plain(_) => &[],
        }
    }

    /// Molar mass (g/mol) and valence the benchmark uses for mass ↔ amount conversions.
    fn molar(self) -> Option<(f64, f64)> {
        match self {
            Analyte::Creatinine => Some((113.12, 1.0)),
            Analyte::Glucose => Some((180.16, 1.0)),
            Analyte::Bun => Some((28.02, 1.0)),
            Analyte::Calcium => Some((40.08, 2.0)),
            Analyte::Bilirubin => Some((548.66, 1.0)),
            Analyte::Cholesterol => Some((386.654, 1.0)),
            Analyte::Triglycerides => Some((861.338, 1.0)),
            Analyte::Sodium => Some((22.99, 1.0)),
            Analyte::Chloride => Some((35.45, 1.0)),
            Analyte::Bicarbonate => Some((61.02, 1.0)),
            Analyte::Potassium => Some((39.098, 1.0)),
            Analyte::Albumin => Some((66500.0, 1.0)),
            _ => None,
        }
    }

    /// Converts `value` in `unit` to this analyte's canonical unit. `field` names the input in
    /// errors.
    pub fn to_canonical(self, value: f64, unit: &str, field: &str) -> Result<f64, CalcError> {
        self.convert(value, unit, self.canonical_unit(), field)
    }

    /// Converts `value` from `from` to `to` (both units of this analyte).
    pub fn convert(self, value: f64, from: &str, to: &str, field: &str) -> Result<f64, CalcError> {
        let bad = |u: &str| CalcError::Unit {
            field: field.to_string(),
            unit: u.to_string(),
        };
        let f = norm(from);
        let t = norm(to);
        if f == t {
            return Ok(value);
        }
        match self {
            Analyte::Weight => {
                Ok(value * kg_per(&f).ok_or_else(|| bad(from))?
                    / kg_per(&t).ok_or_else(|| bad(to))?)
            }
            Analyte::Height => {
                Ok(value * cm_per(&f).ok_or_else(|| bad(from))?
                    / cm_per(&t).ok_or_else(|| bad(to))?)
            }
            Analyte::Age => Ok(value * years_per(&f).ok_or_else(|| bad(from))?
                / years_per(&t).ok_or_else(|| bad(to))?),
            Analyte::Temperature => {
                let c = match temp_scale(&f) {
                    Some('C') => value,
                    Some('F') => (value - 32.0) * 5.0 / 9.0,
                    _ => return Err(bad(from)),
                };
                match temp_scale(&t) {
                    Some('C') => Ok(c),
                    Some('F') => Ok(c * 9.0 / 5.0 + 32.0),
                    _ => Err(bad(to)),
                }
            }
            Analyte::CellCount => Ok(value * per_litre(&f).ok_or_else(|| bad(from))?
                / per_litre(&t).ok_or_else(|| bad(to))?),
            Analyte::Plain(_) => Err(bad(from)),
            _ => {
                let (mm, valence) = self.molar().ok_or_else(|| bad(from))?;
                let mg_per_l =
                    concentration_to_mg_per_l(value, &f, mm, valence).ok_or_else(|| bad(from))?;
                concentration_from_mg_per_l(mg_per_l, &t, mm, valence).ok_or_else(|| bad(to))
            }
        }
    }
}

/// Lowercases and unifies spellings (`mmhg`, `µ`/`u`/`mc`, `lb`/`lbs`).
fn norm(unit: &str) -> String {
    let u = unit
        .trim()
        .to_lowercase()
        .replace("μ", "µ")
        .replace("mcg", "µg")
        .replace(' ', "");
    match u.as_str() {
        "bpm" | "beats/min" | "/min" => "beatsperminute".to_string(),
        "mc/kg/min" => "µg/kg/min".to_string(),
        _ => u,
    }
}

fn kg_per(u: &str) -> Option<f64> {
    Some(match u {
        "kg" | "kgs" => 1.0,
        "g" => 0.001,
        "lb" | "lbs" | "pounds" => 0.453592,
        "oz" => 0.0283495,
        _ => return None,
    })
}

fn cm_per(u: &str) -> Option<f64> {
    Some(match u {
        "cm" => 1.0,
        "m" => 100.0,
        "mm" => 0.1,
        "in" | "inches" => 2.54,
        "ft" | "feet" => 30.48,
        _ => return None,
    })
}

fn years_per(u: &str) -> Option<f64> {
    Some(match u {
        "years" | "year" => 1.0,
        "months" | "month" => 1.0 / 12.0,
        "weeks" | "week" => 7.0 / 365.0,
        "days" | "day" => 1.0 / 365.0,
        _ => return None,
    })
}

/// `C` or `F`, tolerating the benchmark's misspellings (`celsisus`, `fahreinheit`).
fn temp_scale(u: &str) -> Option<char> {
    if u.contains("fahr") || u == "°f" || u == "f" {
        Some('F')
    } else if u.contains("cels") || u == "°c" || u == "c" {
        Some('C')
    } else {
        None
    }
}

/// Count units are "per volume": `µL` means count/µL, `L` count/L, `m^3` the benchmark's mm³.
fn per_litre(u: &str) -> Option<f64> {
    Some(match u {
        "µl" | "mm^3" | "mm3" | "m^3" | "count/µl" | "/µl" => 1e6,
        "l" | "/l" | "count/l" => 1.0,
        "ml" => 1e3,
        "dl" => 10.0,
        _ => return None,
    })
}

fn split_conc(u: &str) -> Option<(&str, &str)> {
    u.split_once('/')
}

/// mg of analyte per unit of the numerator.
fn numerator_mg(num: &str, molar_mass: f64, valence: f64) -> Option<f64> {
    Some(match num {
        "g" => 1000.0,
        "mg" => 1.0,
        "µg" | "ug" => 1e-3,
        "ng" => 1e-6,
        "mol" => molar_mass * 1000.0,
        "mmol" => molar_mass,
        "µmol" | "umol" => molar_mass / 1000.0,
        "nmol" => molar_mass / 1e6,
        "meq" => molar_mass / valence,
        _ => return None,
    })
}

fn volume_l(den: &str) -> Option<f64> {
    Some(match den {
        "l" => 1.0,
        "dl" => 0.1,
        "ml" => 0.001,
        _ => return None,
    })
}

fn concentration_to_mg_per_l(value: f64, unit: &str, mm: f64, valence: f64) -> Option<f64> {
    let (num, den) = split_conc(unit)?;
    Some(value * numerator_mg(num, mm, valence)? / volume_l(den)?)
}

fn concentration_from_mg_per_l(mg_per_l: f64, unit: &str, mm: f64, valence: f64) -> Option<f64> {
    let (num, den) = split_conc(unit)?;
    Some(mg_per_l * volume_l(den)? / numerator_mg(num, mm, valence)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn creatinine_umol_to_mg_per_dl() {
        // 88.4 µmol/L ≈ 1 mg/dL with the benchmark's 113.12 g/mol: 88.4 * 113.12 / 10000.
        let v = Analyte::Creatinine
            .to_canonical(88.4, "µmol/L", "creatinine")
            .unwrap();
        assert!(close(v, 88.4 * 113.12 / 10_000.0), "{v}");
    }

    #[test]
    fn bilirubin_example_from_the_child_pugh_explanation() {
        // "2.6 µmol/L converts to 0.143 mg bilirubin/dL" (548.66 g/mol).
        let v = Analyte::Bilirubin
            .to_canonical(2.6, "µmol/L", "bilirubin")
            .unwrap();
        assert!(close(v, 0.1426516), "{v}");
    }

    #[test]
    fn glucose_bun_and_lipids() {
        assert!(close(
            Analyte::Glucose.to_canonical(10.0, "mmol/L", "g").unwrap(),
            180.16
        ));
        assert!(close(
            Analyte::Bun.to_canonical(10.0, "mmol/L", "b").unwrap(),
            28.02
        ));
        assert!(close(
            Analyte::Triglycerides
                .to_canonical(1.0, "mmol/L", "t")
                .unwrap(),
            86.1338
        ));
        assert!(close(
            Analyte::Cholesterol
                .to_canonical(1.0, "mmol/L", "c")
                .unwrap(),
            38.6654
        ));
        assert!(close(
            Analyte::Glucose
                .convert(180.16, "mg/dL", "mmol/L", "g")
                .unwrap(),
            10.0
        ));
    }

    #[test]
    fn electrolytes_albumin_and_calcium() {
        assert!(close(
            Analyte::Sodium.to_canonical(140.0, "mmol/L", "na").unwrap(),
            140.0
        ));
        assert!(close(
            Analyte::Sodium.to_canonical(140.0, "mEq/L", "na").unwrap(),
            140.0
        ));
        assert!(close(
            Analyte::Albumin.to_canonical(33.0, "g/L", "alb").unwrap(),
            3.3
        ));
        assert!(close(
            Analyte::Albumin
                .to_canonical(3300.0, "mg/dL", "alb")
                .unwrap(),
            3.3
        ));
        assert!(close(
            Analyte::Calcium.to_canonical(2.0, "mmol/L", "ca").unwrap(),
            8.016
        ));
    }

    #[test]
    fn weight_height_age_temperature() {
        assert!(close(
            Analyte::Weight.to_canonical(100.0, "lbs", "w").unwrap(),
            45.3592
        ));
        assert!(close(
            Analyte::Weight.to_canonical(3500.0, "g", "w").unwrap(),
            3.5
        ));
        assert!(close(
            Analyte::Height.to_canonical(72.0, "in", "h").unwrap(),
            182.88
        ));
        assert!(close(
            Analyte::Height.to_canonical(1.75, "m", "h").unwrap(),
            175.0
        ));
        assert!(close(
            Analyte::Height.to_canonical(6.0, "ft", "h").unwrap(),
            182.88
        ));
        assert!(close(
            Analyte::Age.to_canonical(18.0, "months", "a").unwrap(),
            1.5
        ));
        assert!(close(
            Analyte::Temperature
                .to_canonical(103.0, "degrees fahreinheit", "t")
                .unwrap(),
            39.444444
        ));
        assert!(close(
            Analyte::Temperature
                .to_canonical(37.0, "degrees celsisus", "t")
                .unwrap(),
            37.0
        ));
        assert!(close(
            Analyte::Temperature
                .convert(37.0, "degrees celsius", "degrees fahrenheit", "t")
                .unwrap(),
            98.6
        ));
        assert!(close(
            Analyte::CellCount.to_canonical(181e9, "L", "p").unwrap(),
            181_000.0
        ));
        let bpm = Analyte::Plain("beats per minute");
        assert_eq!(bpm.to_canonical(87.0, "bpm", "hr").unwrap(), 87.0);
        assert_eq!(
            Analyte::Plain("mm Hg")
                .to_canonical(120.0, "mmhg", "sbp")
                .unwrap(),
            120.0
        );
    }

    #[test]
    fn unknown_units_name_the_field() {
        let e = Analyte::Weight
            .to_canonical(1.0, "stone", "weight")
            .unwrap_err();
        assert_eq!(e.to_string(), "unknown unit `stone` for `weight`");
    }
}
