//! Golden test: every recorded value of `shared/golden/rewards.jsonl` (the reference functions run
//! on 1,756 cases) must be reproduced: all 13 training rows for both training scorers, the
//! validation rows, every component and the evaluation path. Floats within 1e-9, discrete values
//! exactly, errors by Python exception kind.
// The test reports how many cases and values it checked (or that it skipped).
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use medu1_reward::{
    DEFAULT_MAX_ROUGE_WORDS, EvalMetric, Fixes, Input, Limit, Profile, RewardError, RewardMetric,
    RewardType, Settings, components, components_with, compute_score, compute_score_calc,
    compute_score_val, compute_score_val_calc, eval_response, eval_score,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn golden_dir() -> Option<PathBuf> {
    match std::env::var_os("MEDU1_GOLDEN_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            assert!(
                d.join("rewards.jsonl").is_file(),
                "MEDU1_GOLDEN_DIR={} has no readable rewards.jsonl",
                d.display()
            );
            Some(d)
        }
        None => {
            let d = PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/golden"
            ));
            d.join("rewards.jsonl").is_file().then_some(d)
        }
    }
}

struct Checker {
    values: usize,
    /// Float values that matched within tolerance but not bit-for-bit, by field.
    inexact: std::collections::BTreeMap<String, usize>,
    failures: Vec<String>,
}

impl Checker {
    fn fail(&mut self, id: &str, what: &str, msg: String) {
        if self.failures.len() < 60 {
            self.failures.push(format!("{id} {what}: {msg}"));
        } else if self.failures.len() == 60 {
            self.failures.push("... more failures omitted".into());
        }
    }

    /// A float or an integer result; `discrete` demands exact equality.
    fn num(&mut self, id: &str, what: &str, expected: &Value, got: Option<f64>) {
        self.values += 1;
        match (expected.as_f64(), got) {
            (None, None) if expected.is_null() => {}
            (Some(e), Some(g)) => {
                // Python ints (discrete results) must match exactly, floats within 1e-9.
                let exact = expected.is_i64() || expected.is_u64();
                let ok = if exact { e == g } else { (e - g).abs() <= 1e-9 };
                if ok && e != g {
                    let field = what.split('[').next().unwrap_or(what).to_owned();
                    *self.inexact.entry(field).or_default() += 1;
                    if std::env::var_os("MEDU1_GOLDEN_VERBOSE").is_some() {
                        println!("inexact {id} {what}: expected {e:?}, got {g:?}");
                    }
                }
                if !ok {
                    self.fail(id, what, format!("expected {e:?}, got {g:?}"));
                }
            }
            _ => self.fail(id, what, format!("expected {expected}, got {got:?}")),
        }
    }

    /// A scorer result: a number or `{"error": "ValueError"|"TypeError"}`.
    fn result(&mut self, id: &str, what: &str, expected: &Value, got: Result<f64, RewardError>) {
        match (expected.get("error").and_then(Value::as_str), got) {
            (Some(kind), Err(e)) => {
                self.values += 1;
                if e.py_exception().as_str() != kind {
                    self.fail(id, what, format!("expected {kind}, got {e:?}"));
                }
            }
            (Some(kind), Ok(v)) => {
                self.values += 1;
                self.fail(id, what, format!("expected {kind}, got {v}"));
            }
            (None, Ok(v)) => self.num(id, what, expected, Some(v)),
            (None, Err(e)) => {
                self.values += 1;
                self.fail(id, what, format!("expected {expected}, got error {e:?}"));
            }
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, id: &str, what: &str, expected: T, got: T) {
        self.values += 1;
        if expected != got {
            self.fail(id, what, format!("expected {expected:?}, got {got:?}"));
        }
    }
}

fn limit(v: &Value) -> Limit<'_> {
    match v {
        Value::Null => Limit::Missing,
        Value::String(s) => Limit::Str(s),
        Value::Number(n) => Limit::Num(n.as_f64().expect("finite limit")),
        other => panic!("unexpected limit {other}"),
    }
}

fn settings(row: &Value) -> Settings {
    let metric = match row["reward_metric"].as_str().unwrap() {
        "BLEU" => RewardMetric::Bleu,
        "EMS" => RewardMetric::Ems,
        "Merge" => RewardMetric::Merge,
        m => panic!("unknown metric {m}"),
    };
    let rtype = match row["reward_type"].as_str().unwrap() {
        "discrete" => RewardType::Discrete,
        "continuous" => RewardType::Continuous,
        t => panic!("unknown reward type {t}"),
    };
    Settings {
        reward_metric: metric,
        reward_type: rtype,
        bleu_threshold: row["bleu_threshold"].as_f64().unwrap(),
        scale_factor: row["scale_factor"].as_f64().unwrap(),
        check_think: row["check_think"].as_bool().unwrap(),
        format_reward: row["format_reward"].as_f64().unwrap(),
        // The reference has no such settings: its constants.
        ..Settings::default()
    }
}

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

#[test]
fn golden_rewards() {
    let Some(dir) = golden_dir() else {
        medu1_core::testing::skip(
            "golden",
            "default folder ../shared/golden is absent (set MEDU1_GOLDEN_DIR)",
        );
        return;
    };
    let path = dir.join("rewards.jsonl");
    let text = std::fs::read_to_string(&path).expect("read rewards.jsonl");
    // Every non-empty line is one case; a folder of any size is complete when all are checked.
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    let mut ck = Checker {
        values: 0,
        inexact: Default::default(),
        failures: Vec::new(),
    };
    let mut cases = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("valid JSON line");
        cases += 1;
        let id = case["id"].as_str().unwrap().to_owned();
        let id = id.as_str();
        let inp = &case["input"];
        let input = Input {
            data_source: inp["data_source"].as_str().unwrap(),
            solution_str: inp["solution_str"].as_str().unwrap(),
            ground_truth: inp["ground_truth"].as_str().unwrap(),
            lower_limit: limit(&inp["lower_limit"]),
            upper_limit: limit(&inp["upper_limit"]),
            num_tokens: inp["num_tokens"].as_i64().unwrap(),
            valid_response_length: inp["valid_response_length"].as_f64().unwrap(),
        };

        for (i, row) in case["train"].as_array().unwrap().iter().enumerate() {
            let p = Profile {
                name: "golden".into(),
                settings: settings(row),
                fixes: Fixes::default(),
            };
            ck.result(
                id,
                &format!("train[{i}].compute_score"),
                &row["compute_score"],
                compute_score(&p, &input),
            );
            ck.result(
                id,
                &format!("train[{i}].compute_score_calc"),
                &row["compute_score_calc"],
                compute_score_calc(&p, &input),
            );
        }
        for (i, row) in case["val"].as_array().unwrap().iter().enumerate() {
            let mut p = Profile::med_u1();
            p.settings.bleu_threshold = row["bleu_threshold"].as_f64().unwrap();
            ck.result(
                id,
                &format!("val[{i}].compute_score_val"),
                &row["compute_score_val"],
                compute_score_val(&p, &input),
            );
            ck.result(
                id,
                &format!("val[{i}].compute_score_val_calc"),
                &row["compute_score_val_calc"],
                compute_score_val_calc(&input),
            );
        }

        let c = &case["components"];
        let got = components(&input);
        // The Rouge-L word cap of `medu1 score`/`serve` changes no golden case.
        assert_eq!(
            components_with(&input, Some(DEFAULT_MAX_ROUGE_WORDS)),
            got,
            "{id}: the default rouge-l cap changed a component"
        );
        ck.eq(
            id,
            "header",
            opt_str(&c["header"]),
            got.header.map(|h| h.as_str()),
        );
        ck.eq(
            id,
            "processed_str_len",
            c["processed_str_len"].as_u64().unwrap() as usize,
            got.processed_str_len,
        );
        {
            // The processed string itself is not exposed by `components`; recompute it.
            let processed = medu1_reward::extract_solution(input.solution_str).processed;
            let sha = hex::encode(Sha256::digest(processed.as_bytes()));
            ck.eq(
                id,
                "processed_str_sha256",
                c["processed_str_sha256"].as_str().unwrap(),
                sha.as_str(),
            );
        }
        ck.eq(
            id,
            "extracted_answer",
            opt_str(&c["extracted_answer"]),
            got.extracted_answer.as_deref(),
        );
        ck.eq(
            id,
            "format_valid",
            c["format_valid"].as_bool().unwrap(),
            got.format_valid,
        );
        ck.num(
            id,
            "length_delta_raw",
            &c["length_delta_raw"],
            got.length_delta_raw,
        );
        ck.num(
            id,
            "length_delta",
            &c["length_delta"],
            Some(got.length_delta),
        );
        ck.num(id, "ems", &c["ems"], got.ems);
        ck.num(id, "bleu", &c["bleu"], got.bleu);
        match (c["bleu_ngram"].as_array(), got.bleu_ngram) {
            (Some(e), Some(g)) => {
                for k in 0..3 {
                    ck.num(id, &format!("bleu_ngram[{k}]"), &e[k], Some(g[k]));
                }
            }
            (None, None) => ck.values += 1,
            (e, g) => ck.fail(id, "bleu_ngram", format!("expected {e:?}, got {g:?}")),
        }
        ck.num(id, "merge", &c["merge"], got.merge);
        ck.num(id, "rouge_l", &c["rouge_l"], got.rouge_l);
        ck.eq(
            id,
            "normalized_answer",
            opt_str(&c["normalized_answer"]),
            got.normalized_answer.as_deref(),
        );
        ck.eq(
            id,
            "normalized_ground_truth",
            opt_str(&c["normalized_ground_truth"]),
            got.normalized_ground_truth.as_deref(),
        );

        let e = &case["eval"];
        let r = eval_response(input.solution_str);
        ck.eq(
            id,
            "eval.extracted_answer",
            opt_str(&e["extracted_answer"]),
            r.extracted_answer,
        );
        ck.eq(
            id,
            "eval.predict_answer_is_processed_str",
            e["predict_answer_is_processed_str"].as_bool().unwrap(),
            r.is_processed_str,
        );
        ck.result(
            id,
            "eval.score_EMS",
            &e["score_EMS"],
            eval_score(&input, EvalMetric::Ems),
        );
        ck.result(
            id,
            "eval.score_Rouge-L",
            &e["score_Rouge-L"],
            eval_score(&input, EvalMetric::RougeL),
        );
    }
    println!(
        "golden: {cases} cases, {} values checked, {} failures",
        ck.values,
        ck.failures.len()
    );
    println!(
        "golden: floats equal within 1e-9 but not bit-for-bit: {:?}",
        ck.inexact
    );
    println!(
        "golden: read {cases} of {lines} lines of {}",
        path.display()
    );
    assert!(lines > 0, "{} holds no cases", path.display());
    assert_eq!(cases, lines, "a line of {} was not checked", path.display());
    assert!(
        ck.failures.is_empty(),
        "golden mismatches:\n{}",
        ck.failures.join("\n")
    );
}
