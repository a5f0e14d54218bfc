//! Shared fixtures of the integration tests: a small Med-U1-format data set and deterministic
//! backends (the real-server test does not use them).
#![allow(dead_code)]

use std::cell::Cell;
use std::path::{Path, PathBuf};

use medu1_core::FinishReason;
use medu1_data::{ChatTemplate, Variant};
use medu1_eval::runner::{BudgetSpec, RunConfig};
use medu1_eval::{Backend, BackendError, Benchmark, GenParams, Generation, Prompt, Rule};
use medu1_reward::Profile;

/// Writes `items` multiple-choice questions and `calc` calculation items (Med-U1 validation
/// format) to `dir/name.json`.
pub(crate) fn write_dataset(dir: &Path, name: &str, items: usize, calc: usize) -> PathBuf {
    let mut rows = Vec::new();
    for i in 0..items {
        let answer = ["A", "B", "C", "D"][i % 4];
        rows.push(serde_json::json!({
            "Source": "MedIQ",
            "id": format!("q{i}"),
            "problem": format!("Question {i}: which option is right for patient {i}?"),
            "options": {"A": "alpha", "B": "beta", "C": "gamma", "D": "delta"},
            "answer": answer,
        }));
    }
    for i in 0..calc {
        rows.push(serde_json::json!({
            "Source": "MedCalc-Bench",
            "id": format!("c{i}"),
            "problem": format!("Compute the score {i}."),
            "Lower Limit": format!("{}", 10 + i),
            "Upper Limit": format!("{}", 12 + i),
            "answer": format!("{}", 11 + i),
        }));
    }
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec(&rows).unwrap()).unwrap();
    path
}

/// A hash of the prompt, so answers are deterministic but vary between items and samples.
pub(crate) fn fnv(s: &str, salt: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Answers every prompt with a letter or a number picked from the prompt's hash.
#[derive(Debug, Default)]
pub(crate) struct FakeBackend;

impl Backend for FakeBackend {
    fn describe(&self) -> String {
        "fake".into()
    }
    fn preferred_batch(&self) -> usize {
        3
    }
    fn generate(
        &self,
        prompts: &[Prompt],
        _params: &GenParams,
        n: usize,
    ) -> Result<Vec<Vec<Generation>>, BackendError> {
        Ok(prompts
            .iter()
            .map(|p| {
                (0..n)
                    .map(|j| {
                        let h = fnv(&p.text, j as u64);
                        let answer = if p.text.contains("Compute the score") {
                            format!("{}", 9 + h % 5)
                        } else {
                            ["A", "B", "C", "D"][(h % 4) as usize].to_string()
                        };
                        let text = if h.is_multiple_of(5) {
                            format!("I think {answer}")
                        } else {
                            format!("<think>hmm</think><answer>{answer}</answer>")
                        };
                        Generation {
                            tokens: 5 + (h % 50) as usize,
                            text,
                            finish: FinishReason::Stop,
                            error: None,
                        }
                    })
                    .collect()
            })
            .collect())
    }
}

/// Fails (like a server going away or the process being killed) once `limit` prompts have been
/// answered.
#[derive(Debug)]
pub(crate) struct FailingBackend {
    pub limit: usize,
    pub served: Cell<usize>,
}

impl Backend for FailingBackend {
    fn describe(&self) -> String {
        "fake".into()
    }
    fn preferred_batch(&self) -> usize {
        3
    }
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &GenParams,
        n: usize,
    ) -> Result<Vec<Vec<Generation>>, BackendError> {
        if self.served.get() + prompts.len() > self.limit {
            return Err(BackendError::Other("killed".into()));
        }
        self.served.set(self.served.get() + prompts.len());
        FakeBackend.generate(prompts, params, n)
    }
}

pub(crate) fn config(out: &Path, benchmarks: Vec<Benchmark>, n: usize) -> RunConfig {
    RunConfig {
        out_dir: out.to_path_buf(),
        benchmarks,
        limit: None,
        n,
        params: GenParams {
            temperature: 0.7,
            max_tokens: 64,
            ..Default::default()
        },
        budget: BudgetSpec::Mode(medu1_data::BudgetMode::BothBoth),
        budget_seed: 7,
        rule: Rule::MedU1,
        profile: Profile::med_u1(),
        variant: Variant::ReleasedParquet,
        template: ChatTemplate::qwen25(),
        template_name: "qwen25".into(),
        plot: true,
    }
}
