//! Loads every file of the shared data folder and checks the row counts its README gives.
//!
//! The folder comes from `MEDU1_DATA_DIR` (an error if set but missing), else the workspace's
//! sibling `../shared/data` (skipped with a message when absent). Besides counts, verl rows must
//! rebuild byte for byte, the parquet files must equal their JSONL conversions, and medu1's
//! parquet writer must produce the same arrow schema as the pyarrow-written originals.

#![allow(clippy::print_stdout)] // tests report what they checked or skipped

use medu1_data::load::verl::read_records;
use medu1_data::load::{LoadOptions, load_path};
use medu1_data::prompt::{PromptBuilder, Variant};
use std::path::PathBuf;

fn data_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("MEDU1_DATA_DIR") {
        let p = PathBuf::from(d);
        assert!(
            p.is_dir(),
            "MEDU1_DATA_DIR={} is not a readable folder",
            p.display()
        );
        return Some(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if p.is_dir() { Some(p) } else { None }
}

const COUNTS: &[(&str, usize)] = &[
    ("medu1/medcalc.json", 1047),
    ("medu1/mediq.json", 115),
    ("medu1/medxpertqa.json", 221),
    ("medu1/huatuo.json", 1000),
    ("medu1_verl/medcalc.jsonl", 1047),
    ("medu1_verl/mediq.jsonl", 115),
    ("medu1_verl/medxpertqa.jsonl", 221),
    ("medu1_verl/huatuo.jsonl", 1000),
    ("medu1_verl/train_huatuo.jsonl", 8000),
    ("medu1_verl/train_medoption_no_ehrnoteqa.jsonl", 4286),
    ("medu1_parquet/mediq.parquet", 115),
    ("medu1_parquet/medxpertqa.parquet", 221),
    ("medu1_parquet/huatuo.parquet", 1000),
    ("medcalc_bench/test_data_v1.0.csv", 1047),
    ("medcalc_bench/one_shot_finalized_explanation.json", 55),
    ("mediq/all_dev_good.jsonl", 1272),
    ("mediq/all_craft_md.jsonl", 140),
    ("medxpertqa/medxpertqa_sampled_text_input.jsonl", 244),
    ("mmlu_pro/mmlu_pro_health_biology_sample.jsonl", 60),
    ("anchors/medqa/medqa_input.jsonl", 1273),
    ("anchors/medmcqa/medmcqa_input.jsonl", 4183),
    ("anchors/mmlu_medical/mmlu_medical_input.jsonl", 1089),
    ("anchors/pubmedqa/ori_pqal.json", 1000),
    ("anchors/pubmedqa/test_ground_truth.json", 500),
];

#[test]
fn every_file_loads_with_readme_row_counts() {
    let Some(dir) = data_dir() else {
        medu1_core::testing::skip(
            "shared-data",
            "../shared/data not found (set MEDU1_DATA_DIR)",
        );
        return;
    };
    let mut total = 0;
    for (rel, want) in COUNTS {
        let l = load_path(dir.join(rel), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.samples.len(), *want, "{rel} ({})", l.format);
        assert!(l.rejected.is_empty());
        println!("{rel}: {} rows ({})", l.samples.len(), l.format);
        total += l.samples.len();
    }
    // PubMedQA: the key marks exactly 500 items as test.
    let p = load_path(
        dir.join("anchors/pubmedqa/ori_pqal.json"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(p.samples.iter().filter(|s| s.split == "test").count(), 500);
    // MedCalc: 40 dates and 20 week/day tuples among the answers.
    let c = load_path(dir.join("medu1/medcalc.json"), &LoadOptions::default()).unwrap();
    let exact = c
        .samples
        .iter()
        .filter(|s| {
            !matches!(
                s.task,
                medu1_core::Task::Calculation {
                    output: medu1_core::CalcOutput::Numeric,
                    ..
                }
            )
        })
        .count();
    assert_eq!(exact, 60);
    println!("{} files, {total} rows", COUNTS.len());
}

#[test]
fn verl_rows_rebuild_byte_for_byte_and_parquet_matches_jsonl() {
    let Some(dir) = data_dir() else {
        medu1_core::testing::skip(
            "shared-data",
            "../shared/data not found (set MEDU1_DATA_DIR)",
        );
        return;
    };
    let b = PromptBuilder::new(Variant::ReleasedParquet);
    let mut rebuilt = 0;
    for f in [
        "medcalc",
        "mediq",
        "medxpertqa",
        "huatuo",
        "train_huatuo",
        "train_medoption_no_ehrnoteqa",
    ] {
        let path = dir.join(format!("medu1_verl/{f}.jsonl"));
        let recs = read_records(&path).unwrap();
        let l = load_path(&path, &LoadOptions::default()).unwrap();
        for (r, s) in recs.iter().zip(&l.samples) {
            let again = b.record(s, s.budget, r.extra_info.index).unwrap();
            assert_eq!(&again, r, "{f} index {}", r.extra_info.index);
            rebuilt += 1;
        }
        // The JSONL files were written by Python: our writer reproduces their lines.
        let text = std::fs::read_to_string(&path).unwrap();
        for (line, r) in text.lines().zip(&recs).take(50) {
            assert_eq!(r.to_json_line(medu1_data::KeyOrder::Sorted), line, "{f}");
        }
    }
    println!("{rebuilt} verl rows rebuilt byte for byte");

    let tmp = tempfile::tempdir().unwrap();
    for f in ["mediq", "medxpertqa", "huatuo"] {
        let pq = dir.join(format!("medu1_parquet/{f}.parquet"));
        let from_parquet = read_records(&pq).unwrap();
        let from_jsonl = read_records(dir.join(format!("medu1_verl/{f}.jsonl"))).unwrap();
        assert_eq!(from_parquet, from_jsonl, "{f}");
        // Our writer's schema equals pyarrow's (metadata aside).
        let out = tmp.path().join(format!("{f}.parquet"));
        medu1_data::write::write_verl_parquet(&out, &from_jsonl).unwrap();
        assert_eq!(read_records(&out).unwrap(), from_jsonl);
        let schema = |p: &std::path::Path| {
            let f = std::fs::File::open(p).unwrap();
            let b =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
            let s = b.schema().as_ref().clone();
            arrow_schema::Schema::new(s.fields().clone())
        };
        assert_eq!(
            schema(&out),
            schema(&pq),
            "{f}: schema differs from the pyarrow-written file"
        );
    }
}
