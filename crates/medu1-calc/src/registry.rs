//! Every implemented calculator, looked up by id, slug or name.

use std::sync::LazyLock;

use crate::error::CalcError;
use crate::spec::Calculator;
use crate::{formulas, pregnancy, scores};

static ALL: LazyLock<Vec<Calculator>> = LazyLock::new(|| {
    let mut v: Vec<Calculator> = Vec::new();
    v.extend_from_slice(formulas::CALCULATORS);
    v.extend_from_slice(scores::CALCULATORS);
    v.extend_from_slice(pregnancy::CALCULATORS);
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

#[cfg(test)]
mod tests {
    use super::*;

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
