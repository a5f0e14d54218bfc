//! Typed access to a row's `Relevant Entities`.
//!
//! The benchmark stores inputs as a Python dict keyed by display names, with quantities as
//! `[value, unit]`, findings as booleans and categories as strings. Calculators read them through
//! [`Inputs`], which converts units and reports a missing or malformed field by name.

use crate::dates::Date;
use crate::error::CalcError;
use crate::units::Analyte;
use serde_json::{Map, Value};

/// A view of one row's entities.
#[derive(Debug, Clone)]
pub struct Inputs {
    map: Map<String, Value>,
}

impl Inputs {
    /// Wraps an entities object; anything else is an error.
    pub fn new(entities: &Value) -> Result<Inputs, CalcError> {
        match entities {
            Value::Object(m) => Ok(Inputs { map: m.clone() }),
            other => Err(CalcError::Entities(format!(
                "expected an object, got {other}"
            ))),
        }
    }

    pub fn from_map(map: Map<String, Value>) -> Inputs {
        Inputs { map }
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.map
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    fn get(&self, key: &str) -> Result<&Value, CalcError> {
        self.map
            .get(key)
            .filter(|v| !v.is_null())
            .ok_or_else(|| CalcError::Missing(key.to_string()))
    }

    /// `(value, unit)` of a quantity `[value, unit]` (a bare number has an empty unit).
    pub fn raw_quantity(&self, key: &str) -> Result<(f64, String), CalcError> {
        match self.get(key)? {
            Value::Array(a) if a.len() >= 2 => {
                let v =
                    num(&a[0]).ok_or_else(|| CalcError::invalid(key, "value is not a number"))?;
                let u = a[1]
                    .as_str()
                    .ok_or_else(|| CalcError::invalid(key, "unit is not a string"))?;
                Ok((v, u.to_string()))
            }
            v => num(v)
                .map(|x| (x, String::new()))
                .ok_or_else(|| CalcError::invalid(key, "expected [value, unit]")),
        }
    }

    /// A quantity in the analyte's canonical unit. A bare number is taken as already canonical.
    pub fn quantity(&self, key: &str, analyte: Analyte) -> Result<f64, CalcError> {
        let (v, unit) = self.raw_quantity(key)?;
        if unit.is_empty() {
            Ok(v)
        } else {
            analyte.to_canonical(v, &unit, key)
        }
    }

    /// Like [`Inputs::quantity`], `None` when absent.
    pub fn quantity_opt(&self, key: &str, analyte: Analyte) -> Result<Option<f64>, CalcError> {
        if self.has(key) {
            self.quantity(key, analyte).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A bare number, or the value of `[value, unit]`.
    pub fn number(&self, key: &str) -> Result<f64, CalcError> {
        self.raw_quantity(key).map(|(v, _)| v)
    }

    pub fn number_opt(&self, key: &str) -> Result<Option<f64>, CalcError> {
        if self.has(key) {
            self.number(key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A finding: absent means false, as the benchmark assumes for anything the note does not
    /// mention.
    pub fn flag(&self, key: &str) -> Result<bool, CalcError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => match s.trim().to_lowercase().as_str() {
                "true" | "yes" | "present" => Ok(true),
                // The CSV has `'Not mentinoed'` for some findings: absent.
                _ => Ok(false),
            },
            Some(v) => num(v)
                .map(|x| x != 0.0)
                .ok_or_else(|| CalcError::invalid(key, "expected true or false")),
        }
    }

    /// A categorical value, lowercased and trimmed; `None` when absent.
    pub fn choice(&self, key: &str) -> Result<Option<String>, CalcError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_lowercase())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(CalcError::invalid(key, "expected a string")),
        }
    }

    /// The patient's sex: `true` for female. The benchmark writes `'Male'` / `'Female'`.
    pub fn female(&self) -> Result<bool, CalcError> {
        match self.choice("sex")?.as_deref() {
            Some("female" | "f") => Ok(true),
            Some("male" | "m") => Ok(false),
            Some(other) => Err(CalcError::invalid("sex", format!("unknown sex `{other}`"))),
            None => Err(CalcError::Missing("sex".to_string())),
        }
    }

    /// Age in years.
    pub fn age(&self) -> Result<f64, CalcError> {
        self.quantity("age", Analyte::Age)
    }

    /// A date `MM/DD/YYYY`.
    pub fn date(&self, key: &str) -> Result<Date, CalcError> {
        let s = self
            .get(key)?
            .as_str()
            .ok_or_else(|| CalcError::invalid(key, "expected a date string"))?;
        Date::parse_mdy(s)
            .ok_or_else(|| CalcError::invalid(key, format!("`{s}` is not MM/DD/YYYY")))
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses a `Relevant Entities` cell (a Python literal) into JSON.
pub fn parse_entities(text: &str) -> Result<serde_json::Value, CalcError> {
    medu1_data::pyliteral::parse(text)
        .map(|v| v.to_json())
        .map_err(|e| CalcError::Entities(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_quantities_flags_and_choices() {
        let e = json!({"creatinine": [88.4, "µmol/L"], "sex": "Female", "Stroke": true, "cycle length": 30,
                       "Ascites": "Slight", "age": [18, "months"]});
        let i = Inputs::new(&e).unwrap();
        assert!((i.quantity("creatinine", Analyte::Creatinine).unwrap() - 0.99998).abs() < 1e-3);
        assert!(i.female().unwrap());
        assert!(i.flag("Stroke").unwrap());
        assert!(!i.flag("Hemoptysis").unwrap());
        assert_eq!(i.number("cycle length").unwrap(), 30.0);
        assert_eq!(i.choice("Ascites").unwrap().as_deref(), Some("slight"));
        assert!((i.age().unwrap() - 1.5).abs() < 1e-12);
    }

    #[test]
    fn errors_name_the_field() {
        let i = Inputs::new(&json!({"weight": ["x", "kg"]})).unwrap();
        assert_eq!(
            i.quantity("height", Analyte::Height)
                .unwrap_err()
                .to_string(),
            "missing input `height`"
        );
        assert_eq!(
            i.quantity("weight", Analyte::Weight)
                .unwrap_err()
                .to_string(),
            "invalid input `weight`: value is not a number"
        );
        assert!(Inputs::new(&json!([1, 2])).is_err());
    }
}
