//! Fuzzing the Python-literal parser (MedCalc-Bench entities, MediQ options): it never panics
//! or overflows the stack, and what it accepts it reads back the same.
//!
//! Each target runs for `MEDU1_FUZZ_SECS` seconds (default 2, the CI budget) in proptest batches,
//! so failures shrink as usual; the number of cases run is printed.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use medu1_data::ovalue::OValue;
use medu1_data::pyliteral;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn fuzz_for<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let secs: f64 = std::env::var("MEDU1_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    // A runner counts its successes across calls, so each batch gets a fresh runner seeded from
    // one master runner (a new random seed per test run, as proptest does).
    let mut master = TestRunner::new(config.clone());
    let mut cases = 0u64;
    while cases == 0 || Instant::now() < deadline {
        let mut runner = TestRunner::new_with_rng(config.clone(), master.new_rng());
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        cases += 256;
    }
    println!("fuzz {name}: {cases} cases, 0 failures");
}

const PIECES: &[&str] = &[
    "{", "}", "[", "]", "(", ")", ",", ":", "'", "\"", "'''", "\"\"\"", "\\", "\\x4", "\\u00e9",
    "\\N", "\\777", "u'", "r'", "b'", "None", "True", "False", "-", "+", "1", "1.5e-3", "1_0",
    "0x1F", "inf", "nan", ".", " ", "\n", "é", "'a'", "[1, 2]", "(1,)", "{'k': [", "\u{0}",
];

fn literal_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(prop::sample::select(PIECES), 0..64).prop_map(|v| v.concat()),
        (
            1usize..400,
            prop::sample::select(&["[", "(", "{'k': ", "{1: "][..])
        )
            .prop_map(|(n, open)| open.repeat(n)),
    ]
}

/// Python `repr()` of a generated value, in the shapes MedCalc-Bench stores.
fn repr(v: &OValue) -> String {
    match v {
        OValue::Null => "None".into(),
        OValue::Bool(b) => if *b { "True" } else { "False" }.into(),
        OValue::Number(n) => n.to_string(),
        OValue::String(s) => format!(
            "'{}'",
            s.replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('\n', "\\n")
        ),
        OValue::Array(items) => format!(
            "[{}]",
            items.iter().map(repr).collect::<Vec<_>>().join(", ")
        ),
        OValue::Object(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", repr(&OValue::String(k.clone())), repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn value() -> impl Strategy<Value = OValue> {
    let leaf = prop_oneof![
        Just(OValue::Null),
        any::<bool>().prop_map(OValue::Bool),
        any::<i64>().prop_map(|i| OValue::Number(i.into())),
        "[a-z é'\\\\\n]{0,8}".prop_map(OValue::String),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(OValue::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| OValue::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn fuzz_pyliteral_never_panics() {
    fuzz_for("pyliteral", literal_text(), |s| {
        if let Err(e) = pyliteral::parse(&s) {
            prop_assert!(e.offset <= s.len());
        }
        Ok(())
    });
}

#[test]
fn fuzz_pyliteral_reads_back_what_repr_writes() {
    fuzz_for("pyliteral round trip", value(), |v| {
        let text = repr(&v);
        let back =
            pyliteral::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back.to_json(), v.to_json(), "{}", text);
        Ok(())
    });
}
