//! `medu1 data prepare --label-format verl` writes rows whose `extra_info` carries what the reward
//! needs, since verl passes a reward function `extra_info` and the ground truth only.

use std::process::Command;

fn prepare(out: &std::path::Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let fx = concat!(env!("CARGO_MANIFEST_DIR"), "/../medu1-data/tests/fixtures");
    let status = Command::new(env!("CARGO_BIN_EXE_medu1"))
        .args(["data", "prepare", "--budget", "exact", "-o"])
        .arg(out)
        .args([
            format!("{fx}/medcalc.csv"),
            format!("{fx}/mediq.jsonl"),
            format!("{fx}/o1sft.json"),
        ])
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Before, `extra_info` held only index and split: verl's reward function saw no budget and no
/// limits (MedCalc rows failed with `lower_limit is missing`, budgets silently dropped).
#[test]
fn verl_rows_carry_budget_limits_and_output_type_in_extra_info() {
    let dir = std::env::temp_dir().join(format!("medu1-prepare-verl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rows = prepare(&dir.join("rows.jsonl"), &[]);
    assert!(rows.len() >= 4, "{}", rows.len());
    let mut types = Vec::new();
    for r in &rows {
        let (ei, rm) = (&r["extra_info"], &r["reward_model"]);
        assert_eq!(ei["num_tokens"], rm["num_tokens"], "{r}");
        assert_eq!(ei["lower_limit"], rm["lower_limit"], "{r}");
        assert_eq!(ei["upper_limit"], rm["upper_limit"], "{r}");
        assert_eq!(ei["data_source"], r["data_source"], "{r}");
        assert!(ei["index"].is_i64() && ei["split"].is_string(), "{r}");
        types.push(ei["output_type"].as_str().unwrap().to_string());
    }
    for t in ["numeric", "week_day", "multiple_choice", "free_text"] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    assert!(
        rows.iter()
            .any(|r| r["extra_info"]["lower_limit"].is_string())
    );

    // The released layout stays available byte for byte.
    let reference = prepare(
        &dir.join("ref.jsonl"),
        &["--label-format", "verl-reference"],
    );
    for r in &reference {
        let keys: Vec<_> = r["extra_info"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["index", "split"], "{r}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
