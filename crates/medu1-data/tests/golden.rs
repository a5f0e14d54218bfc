//! Reproduces every case of `shared/golden/prompts.jsonl` byte for byte.
//!
//! The folder comes from `MEDU1_GOLDEN_DIR` (an error if set but unreadable), else the
//! workspace's sibling `../shared/golden` (skipped with a message when absent).
//!
//! `published_script` budgets are not read from the file: they are re-drawn from Python's
//! `random` seeded with 12345, walking the script calls in id order. The file holds only part of
//! those calls (the rest are held back for acceptance checks) but the ids keep their place: calls
//! `pr00250`..`pr00361` run in blocks of 14 per source file, two calls per mode in the order below,
//! so held-back calls are replayed with their block's mode to keep the random stream aligned.

#![allow(clippy::print_stdout)] // tests report what they checked or skipped

use medu1_core::Budget;
use medu1_data::budget::{BudgetMode, BudgetSampler};
use medu1_data::load::medu1::sample_from_item;
use medu1_data::ovalue::OValue;
use medu1_data::prompt::{PromptBuilder, Variant};
use serde_json::Value;
use std::path::PathBuf;

const SCRIPT_FIRST_ID: usize = 250;
const SCRIPT_LAST_ID: usize = 361;
const BLOCK: [&str; 14] = [
    "do_normal",
    "do_normal",
    "fixed_512",
    "fixed_512",
    "fixed_max_256",
    "fixed_max_256",
    "default_random",
    "default_random",
    "use_both",
    "use_both",
    "use_both_both",
    "use_both_both",
    "use_log",
    "use_log",
];

fn golden_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("MEDU1_GOLDEN_DIR") {
        let p = PathBuf::from(d);
        assert!(
            p.join("prompts.jsonl").is_file(),
            "MEDU1_GOLDEN_DIR={} has no readable prompts.jsonl",
            p.display()
        );
        return Some(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden");
    if p.join("prompts.jsonl").is_file() {
        Some(p)
    } else {
        None
    }
}

fn mode_by_name(name: &str) -> BudgetMode {
    match name {
        "do_normal" => BudgetMode::None,
        "fixed_512" => BudgetMode::Fixed(512),
        "fixed_max_256" => BudgetMode::Fixed(-256),
        "default_random" => BudgetMode::Exact,
        "use_both" => BudgetMode::Both,
        "use_both_both" => BudgetMode::BothBoth,
        "use_log" => BudgetMode::Log,
        other => panic!("unknown mode {other}"),
    }
}

/// The mode a record's script flags select.
fn mode_from_flags(m: &Value) -> BudgetMode {
    let flag = |k: &str| m[k].as_bool().unwrap_or(false);
    let k = m["NUM_TOKENS"].as_i64().unwrap_or(-1);
    if flag("USE_NORMAL") {
        BudgetMode::None
    } else if k != -1 {
        BudgetMode::Fixed(k)
    } else if flag("USE_LOG") {
        BudgetMode::Log
    } else if flag("USE_BOTH") {
        BudgetMode::Both
    } else if flag("USE_BOTH_BOTH") {
        BudgetMode::BothBoth
    } else {
        BudgetMode::Exact
    }
}

/// The golden input as a Med-U1 processed item (options in their listed order).
fn item(input: &Value) -> OValue {
    let s = |v: &Value| match v {
        Value::Null => OValue::Null,
        Value::String(s) => OValue::String(s.clone()),
        other => panic!("unexpected {other}"),
    };
    let mut o = vec![
        ("Source".to_string(), s(&input["Source"])),
        ("problem".to_string(), s(&input["problem"])),
        ("answer".to_string(), s(&input["answer"])),
        ("Lower Limit".to_string(), s(&input["Lower Limit"])),
        ("Upper Limit".to_string(), s(&input["Upper Limit"])),
    ];
    if let Some(opts) = input["options"].as_array() {
        let pairs = opts
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_string(),
                    OValue::String(p[1].as_str().unwrap().to_string()),
                )
            })
            .collect();
        o.push(("options".to_string(), OValue::Object(pairs)));
    }
    OValue::Object(o)
}

#[test]
fn prompts_jsonl_byte_for_byte() {
    let Some(dir) = golden_dir() else {
        medu1_core::testing::skip(
            "golden",
            "../shared/golden not found (set MEDU1_GOLDEN_DIR)",
        );
        return;
    };
    let text = std::fs::read_to_string(dir.join("prompts.jsonl")).expect("read prompts.jsonl");
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let cases: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();

    // Replay the script's random stream over every call id, visible or held back.
    let script: std::collections::HashMap<usize, &Value> = cases
        .iter()
        .filter(|c| c["origin"] == "published_script")
        .map(|c| (c["id"].as_str().unwrap()[2..].parse().unwrap(), c))
        .collect();
    let mut drawn = std::collections::HashMap::new();
    let mut sampler = BudgetSampler::new(BudgetMode::None, 12345);
    for id in SCRIPT_FIRST_ID..=SCRIPT_LAST_ID {
        let block_mode = BLOCK[(id - SCRIPT_FIRST_ID) % BLOCK.len()];
        let mode = match script.get(&id) {
            Some(c) => {
                assert_eq!(
                    c["mode"]["name"], block_mode,
                    "pr{id:05}: block structure assumption broken"
                );
                let m = mode_from_flags(&c["mode"]);
                assert_eq!(m, mode_by_name(block_mode));
                m
            }
            None => mode_by_name(block_mode),
        };
        sampler.set_mode(mode);
        drawn.insert(id, sampler.next());
    }
    assert!(
        script
            .keys()
            .all(|id| (SCRIPT_FIRST_ID..=SCRIPT_LAST_ID).contains(id))
    );

    let released = PromptBuilder::new(Variant::ReleasedParquet);
    let published = PromptBuilder::new(Variant::PublishedScript);
    let (mut checked, mut script_checked) = (0, 0);
    for (line, case) in lines.iter().zip(&cases) {
        let id = case["id"].as_str().unwrap();
        let input = &case["input"];
        let at = line
            .rfind("\"expected\": ")
            .expect("expected is the last key")
            + "\"expected\": ".len();
        let expected_text = &line[at..line.len() - 1];
        let index = input["index"].as_i64().unwrap();
        let sample = sample_from_item(
            &item(input),
            index as usize,
            input["split"].as_str().unwrap(),
        )
        .unwrap_or_else(|e| panic!("{id}: {e}"));
        let stated = Budget::from_num_tokens(input["num_tokens"].as_i64().unwrap());
        let (builder, budget) = match case["origin"].as_str().unwrap() {
            "shipped_parquet" => (&released, stated),
            "published_script" => {
                let n: usize = id[2..].parse().unwrap();
                let b = drawn[&n];
                assert_eq!(
                    b, stated,
                    "{id}: budget drawn from seed 12345 differs from input.num_tokens"
                );
                script_checked += 1;
                (&published, b)
            }
            other => panic!("{id}: unknown origin {other}"),
        };
        let rec = builder.record(&sample, budget, index).unwrap();
        let got = rec.to_json_line(builder.variant.key_order());
        if got != expected_text {
            let pos = got
                .bytes()
                .zip(expected_text.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(expected_text.len()));
            let lo = pos.saturating_sub(80);
            panic!(
                "{id}: record differs at byte {pos}\n got: …{}\nwant: …{}",
                &got[lo.min(got.len())..(pos + 80).min(got.len())],
                &expected_text[lo.min(expected_text.len())..(pos + 80).min(expected_text.len())]
            );
        }
        checked += 1;
    }
    println!(
        "golden prompts: {checked}/{} cases reproduced byte for byte ({script_checked} published_script budgets re-drawn from seed 12345)",
        lines.len()
    );
    assert_eq!(checked, lines.len());
}
