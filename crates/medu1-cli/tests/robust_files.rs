//! `medu1 score` and `medu1 data prepare` on damaged inputs and reruns, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn medu1(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medu1"))
        .args(args)
        .output()
        .expect("run medu1")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../medu1-data/tests/fixtures")
        .join(name)
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const GOOD: &str = r#"{"data_source":"MedIQ","solution_str":"Assistant:<think>x</think><answer>B</answer>","ground_truth":"B"}"#;

#[test]
fn score_invalid_utf8_line_is_a_row_error_and_a_bom_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(GOOD.as_bytes());
    bytes.extend_from_slice(
        b"\r\n{\"data_source\":\"MedIQ\",\"solution_str\":\"\xff\xfe\",\"ground_truth\":\"B\"}\n",
    );
    bytes.extend_from_slice(GOOD.as_bytes());
    bytes.push(b'\n');
    std::fs::write(&input, bytes).unwrap();
    let output = dir.path().join("out.jsonl");
    let out = medu1(&[Path::new("score"), &input, Path::new("-o"), &output]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = jsonl(&output);
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0]["reward"], 2.0,
        "the BOM line is scored: {}",
        rows[0]
    );
    assert_eq!(rows[2]["reward"], 2.0);
    let e = &rows[1]["error"];
    assert_eq!(e["line"], 2);
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("line 2") && msg.contains("utf-8"), "{msg}");
}

#[test]
fn score_wrong_type_error_names_the_field_not_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"data_source\":\"MedIQ\",\"solution_str\":\"x\",\"ground_truth\":3}\n\
         {\"data_source\":\"MedIQ\",\"solution_str\":\"x\",\"ground_truth\":\"B\",\"num_tokens\":\"3\"}\n\
         {\"data_source\":\"MedIQ\",\"solution_str\":\"x\",\"ground_truth\":\"B\",\"settings\":{\"bleu_threshold\":\"x\"}}\n\
         {\"data_source\":\"MedIQ\",\"solution_str\":\"x\"}\n",
    )
    .unwrap();
    let output = dir.path().join("out.jsonl");
    let out = medu1(&[Path::new("score"), &input, Path::new("-o"), &output]);
    assert!(out.status.success());
    let rows = jsonl(&output);
    let fields: Vec<&Value> = rows.iter().map(|r| &r["error"]["field"]).collect();
    assert_eq!(
        fields,
        [
            "ground_truth",
            "num_tokens",
            "settings.bleu_threshold",
            "ground_truth"
        ]
    );
}

#[test]
fn prepare_rerun_without_rejects_removes_the_old_rejected_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("train.jsonl");
    let rejected = dir.path().join("train.jsonl.rejected.jsonl");
    let bad = fixture("medcalc_bad.csv");
    let args = |input: &Path| -> Vec<PathBuf> {
        ["data", "prepare"]
            .iter()
            .map(PathBuf::from)
            .chain([input.to_path_buf()])
            .chain(["-o".into(), output.clone(), "--skip-invalid".into()])
            .collect()
    };
    let run = |input: &Path| {
        let a = args(input);
        let a: Vec<&Path> = a.iter().map(PathBuf::as_path).collect();
        let out = medu1(&a);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&bad);
    assert_eq!(jsonl(&rejected).len(), 1);
    run(&fixture("medcalc.csv"));
    assert!(
        !rejected.exists(),
        "a rejected file from an earlier run survived a run with no rejects"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["train.jsonl"]);
}
