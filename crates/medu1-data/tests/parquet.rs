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
        medu1_core::testing::skip("pyarrow", "set MEDU1_PYTHON to a python with pyarrow");
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

/// verl hands a reward function only the ground truth and `extra_info`: records carrying the
/// reward's inputs write them there, in parquet as in JSONL, and the released layout is unchanged.
#[test]
fn extra_info_carries_the_reward_inputs_in_parquet_and_jsonl() {
    use arrow_array::{Array, Int64Array, StringArray, StructArray};
    let dir = tempfile::tempdir().unwrap();
    let recs: Vec<VerlRecord> = records()
        .into_iter()
        .map(|r| r.with_reward_info("numeric"))
        .collect();
    let pq = dir.path().join("out.parquet");
    write_verl_parquet(&pq, &recs).unwrap();
    let f = std::fs::File::open(&pq).unwrap();
    let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let ei = batch
        .column_by_name("extra_info")
        .unwrap()
        .as_any()
        .downcast_ref::<StructArray>()
        .unwrap();
    let names: Vec<_> = ei.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "data_source",
            "index",
            "lower_limit",
            "num_tokens",
            "output_type",
            "split",
            "upper_limit"
        ]
    );
    let col = |n: &str| ei.column_by_name(n).unwrap().clone();
    let budgets = col("num_tokens");
    let budgets = budgets.as_any().downcast_ref::<Int64Array>().unwrap();
    let lower = col("lower_limit");
    let lower = lower.as_any().downcast_ref::<StringArray>().unwrap();
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(budgets.value(i), r.reward_model.num_tokens, "row {i}");
        assert_eq!(
            (!lower.is_null(i)).then(|| lower.value(i)),
            r.reward_model.lower_limit.as_deref(),
            "row {i}"
        );
    }
    assert!(budgets.iter().any(|b| b == Some(512)) && budgets.iter().any(|b| b == Some(-300)));
    // Reading the file back gives the same rows (the copies in extra_info are not part of them).
    let plain: Vec<VerlRecord> = records();
    assert_eq!(read_records(&pq).unwrap(), plain);

    let jl = dir.path().join("out.jsonl");
    write_verl_jsonl(&jl, &recs, KeyOrder::Sorted).unwrap();
    let line = std::fs::read_to_string(&jl).unwrap();
    let first: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["extra_info"]["num_tokens"],
        first["reward_model"]["num_tokens"]
    );
    assert_eq!(first["extra_info"]["data_source"], first["data_source"]);
    assert_eq!(first["extra_info"]["output_type"], "numeric");
    // Mixing rows with and without the copies would give one file two schemas.
    let mut mixed = recs.clone();
    mixed.extend(records());
    assert!(write_verl_parquet(&pq, &mixed).is_err());
}
