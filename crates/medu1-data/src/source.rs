//! Data source names.
//!
//! The reference keys grading on the `data_source` string (`MedCalc-Bench` selects the
//! calculation scorer) and the prompt on the dataset type, so every loader must emit exactly the
//! reference's spelling. [`DataSource`] is the closed list medu1 knows; other strings pass through
//! unchanged as `Sample::source`.

use medu1_core::TaskKind;
use std::fmt;
use std::str::FromStr;

/// A benchmark medu1 can load, with its reference `data_source` spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataSource {
    MedIq,
    MedXpertQa,
    EhrNoteQa,
    MedCalcBench,
    MedicalO1,
    MmluPro,
    MedQa,
    MedMcQa,
    Mmlu,
    PubMedQa,
}

impl DataSource {
    pub const ALL: [DataSource; 10] = [
        DataSource::MedIq,
        DataSource::MedXpertQa,
        DataSource::EhrNoteQa,
        DataSource::MedCalcBench,
        DataSource::MedicalO1,
        DataSource::MmluPro,
        DataSource::MedQa,
        DataSource::MedMcQa,
        DataSource::Mmlu,
        DataSource::PubMedQa,
    ];

    /// The `data_source` string stored in records.
    pub fn as_str(self) -> &'static str {
        match self {
            DataSource::MedIq => "MedIQ",
            DataSource::MedXpertQa => "MedXpertQA",
            DataSource::EhrNoteQa => "EHRNoteQA",
            DataSource::MedCalcBench => "MedCalc-Bench",
            DataSource::MedicalO1 => "medical-o1-reasoning-SFT",
            DataSource::MmluPro => "MMLU-Pro",
            DataSource::MedQa => "MedQA",
            DataSource::MedMcQa => "MedMCQA",
            DataSource::Mmlu => "MMLU",
            DataSource::PubMedQa => "PubMedQA",
        }
    }

    /// The task kind every item of this source has.
    pub fn kind(self) -> TaskKind {
        match self {
            DataSource::MedCalcBench => TaskKind::Calculation,
            DataSource::MedicalO1 => TaskKind::FreeText,
            _ => TaskKind::MultipleChoice,
        }
    }

    /// Looks a `data_source` string up, accepting the reference spelling, the Med-U1 dataset type
    /// (`MEDIQ_TEST`, `HUATUO`, ...) and a few common aliases, case-insensitively.
    pub fn from_name(name: &str) -> Option<DataSource> {
        let n: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let n = n.strip_suffix("test").unwrap_or(&n);
        Some(match n {
            "mediq" | "craftmd" => DataSource::MedIq,
            "medxpertqa" => DataSource::MedXpertQa,
            "ehrnoteqa" => DataSource::EhrNoteQa,
            "medcalcbench" | "medcalc" => DataSource::MedCalcBench,
            "medicalo1reasoningsft" | "huatuo" | "medicalo1" => DataSource::MedicalO1,
            "mmlupro" => DataSource::MmluPro,
            "medqa" | "medqausmle" => DataSource::MedQa,
            "medmcqa" => DataSource::MedMcQa,
            "mmlu" | "mmlumedical" => DataSource::Mmlu,
            "pubmedqa" => DataSource::PubMedQa,
            _ => return None,
        })
    }
}

/// The task kind implied by a `data_source` string; unknown sources are multiple choice, as in
/// the reference (everything but MedCalc-Bench is graded by `compute_score`, whose free-text
/// branch only `medical-o1-reasoning-SFT` reaches).
pub fn kind_of_source(source: &str) -> TaskKind {
    DataSource::from_name(source).map_or(TaskKind::MultipleChoice, DataSource::kind)
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A data source name medu1 does not know.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown data source `{0}`")]
pub struct UnknownSource(pub String);

impl FromStr for DataSource {
    type Err = UnknownSource;
    fn from_str(s: &str) -> Result<DataSource, UnknownSource> {
        DataSource::from_name(s).ok_or_else(|| UnknownSource(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases() {
        for s in DataSource::ALL {
            assert_eq!(DataSource::from_name(s.as_str()), Some(s));
        }
        assert_eq!(DataSource::from_name("MEDIQ_TEST"), Some(DataSource::MedIq));
        assert_eq!(DataSource::from_name("HUATUO"), Some(DataSource::MedicalO1));
        assert_eq!(
            DataSource::from_name("MEDCALC_TEST"),
            Some(DataSource::MedCalcBench)
        );
        assert_eq!(kind_of_source("MedCalc-Bench"), TaskKind::Calculation);
        assert_eq!(kind_of_source("whatever"), TaskKind::MultipleChoice);
    }
}
