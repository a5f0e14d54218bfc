//! Named benchmark suites and where their files live under a data folder, so that a user types
//! `--suite anchors` instead of four paths, and every report names benchmarks the same way.

use std::path::{Path, PathBuf};

use crate::error::EvalError;
use crate::runner::Benchmark;

/// A named set of benchmark files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// The Med-U1 validation splits (`medu1/{mediq,medxpertqa,medcalc,huatuo}.json`).
    Medu1Val,
    /// General medical QA anchors: MedQA, MedMCQA, MMLU medical, PubMedQA (test key).
    Anchors,
    /// Out of distribution: MMLU-Pro health and biology.
    Ood,
}

impl std::str::FromStr for Suite {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<Suite, EvalError> {
        match s {
            "medu1-val" | "medu1" => Ok(Suite::Medu1Val),
            "anchors" => Ok(Suite::Anchors),
            "ood" => Ok(Suite::Ood),
            _ => Err(EvalError::UnknownSuite(s.to_string())),
        }
    }
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Medu1Val => "medu1-val",
            Suite::Anchors => "anchors",
            Suite::Ood => "ood",
        }
    }

    /// `(benchmark name, path relative to the data folder)`.
    pub fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Suite::Medu1Val => &[
                ("MediQ", "medu1/mediq.json"),
                ("MedXpertQA", "medu1/medxpertqa.json"),
                ("MedCalc-Bench", "medu1/medcalc.json"),
                ("HuaTuo-o1", "medu1/huatuo.json"),
            ],
            Suite::Anchors => &[
                ("MedQA", "anchors/medqa/medqa_input.jsonl"),
                ("MedMCQA", "anchors/medmcqa/medmcqa_input.jsonl"),
                (
                    "MMLU-medical",
                    "anchors/mmlu_medical/mmlu_medical_input.jsonl",
                ),
                ("PubMedQA", "anchors/pubmedqa/ori_pqal.json"),
            ],
            Suite::Ood => &[(
                "MMLU-Pro-health-bio",
                "mmlu_pro/mmlu_pro_health_biology_sample.jsonl",
            )],
        }
    }

    /// The suite's benchmarks under `data_dir`; every file must exist.
    pub fn benchmarks(self, data_dir: &Path) -> Result<Vec<Benchmark>, EvalError> {
        self.files()
            .iter()
            .map(|(name, rel)| {
                let path = data_dir.join(rel);
                if !path.is_file() {
                    return Err(EvalError::MissingSuiteFile {
                        suite: self.name().to_string(),
                        path,
                    });
                }
                Ok(Benchmark {
                    name: (*name).to_string(),
                    path,
                    // PubMedQA's labelled set doubles as training data; only the keyed test
                    // questions are a benchmark.
                    split: (*name == "PubMedQA").then(|| "test".to_string()),
                })
            })
            .collect()
    }
}

/// A benchmark for a file given with `--data`: named by its file stem.
pub fn benchmark_for_file(path: &Path) -> Benchmark {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Benchmark {
        name,
        path: PathBuf::from(path),
        split: None,
    }
}
