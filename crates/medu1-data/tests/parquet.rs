//! Parquet output: a round trip through medu1's own writer and reader, and (when `MEDU1_PYTHON`
//! names a Python with pyarrow) a check that pyarrow reads the same rows as the JSONL output.

#![allow(clippy::print_stdout)] // tests report what they checked or skipped

use medu1_core::Budget;
use medu1_data::load::verl::read_records;
use medu1_data::load::{LoadOptions, load_path};
use medu1_data::prompt::{PromptBuilder, Variant};
use medu1_data::write::{write_verl_jsonl, write_verl_parquet};
use medu1_data::{KeyOrder, VerlRecord};
use std::path::PathBuf;

/// Records covering every task kind, null and non-null limits, and both budget signs.
fn records() -> Vec<VerlRecord> {
    let fx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut samples = load_path(fx.join("medu1_mixed.json"), &LoadOptions::default())
        .unwrap()
        .samples;
    samples.extend(
        load_path(fx.join("medcalc.csv"), &LoadOptions::default())
            .unwrap()
            .samples,
    );
    let b = PromptBuilder::new(Variant::ReleasedParquet);
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let budget = [Budget::None, Budget::Exact(512), Budget::Maximum(300)][i % 3];
            b.record(s, budget, i as i64).unwrap()
        })
        .collect()
}

#[test]
fn parquet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records();
    let pq = dir.path().join("out.parquet");
    write_verl_parquet(&pq, &recs).unwrap();
    assert_eq!(read_records(&pq).unwrap(), recs);
    // Same through the sample loader: parquet and JSONL give identical samples.
    let jl = dir.path().join("out.jsonl");
    write_verl_jsonl(&jl, &recs, KeyOrder::Sorted).unwrap();
    let a = load_path(&pq, &LoadOptions::default()).unwrap().samples;
    let b = load_path(&jl, &LoadOptions::default()).unwrap().samples;
    assert_eq!(a, b);
    // All-null limits use pyarrow's null type and still round-trip.
    let mcq: Vec<_> = recs
        .iter()
        .filter(|r| r.reward_model.lower_limit.is_none())
        .cloned()
        .collect();
    write_verl_parquet(&pq, &mcq).unwrap();
    assert_eq!(read_records(&pq).unwrap(), mcq);
}

#[test]
fn pyarrow_reads_the_same_rows_as_the_jsonl() {
    let Ok(python) = std::env::var("MEDU1_PYTHON") else {
        println!("skipping pyarrow check: set MEDU1_PYTHON to a python with pyarrow");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let recs = records();
    let pq = dir.path().join("out.parquet");
    let jl = dir.path().join("out.jsonl");
    write_verl_parquet(&pq, &recs).unwrap();
    write_verl_jsonl(&jl, &recs, KeyOrder::Sorted).unwrap();
    let script = r#"
import json, sys
import pyarrow.parquet as pq
rows = pq.read_table(sys.argv[1]).to_pylist()
want = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert rows == want, (rows[:1], want[:1])
print(len(rows))
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&pq)
        .arg(&jl)
        .output()
        .unwrap_or_else(|e| panic!("cannot run MEDU1_PYTHON={python}: {e}"));
    assert!(
        out.status.success(),
        "pyarrow check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(n, recs.len());
    println!("pyarrow read {n} rows equal to the JSONL");
}
