//! verl, OpenRLHF and TRL drive medu1's rewards through their own code
//! (`integrations/tests/test_frameworks.py`, `integrations/trl/test_trl.py`) in the venv that
//! `scripts/integrations_venv.sh` builds, named by MEDU1_FRAMEWORKS_PYTHON (scripts/test.sh sets
//! it). Without it the test skips, except under CI=true, where a missing venv is a failure.
#![allow(clippy::print_stdout)] // the test reports what it skipped and what python said

use std::path::PathBuf;
use std::process::Command;

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("MEDU1_FRAMEWORKS_PYTHON").map(PathBuf::from);
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match p {
        Some(p) if p.is_file() => Some(p),
        other => {
            assert!(
                !ci,
                "CI=true but MEDU1_FRAMEWORKS_PYTHON ({other:?}) names no python: run scripts/integrations_venv.sh"
            );
            medu1_core::testing::skip(
                "frameworks",
                "MEDU1_FRAMEWORKS_PYTHON not set (scripts/integrations_venv.sh builds the venv)",
            );
            None
        }
    }
}

fn model() -> Option<PathBuf> {
    let p = match std::env::var_os("MEDU1_MODEL_GGUF") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?)
            .join(".cache/medu1/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"),
    };
    p.is_file().then_some(p)
}

fn run_unittest(script: &str, expect: &str) {
    let Some(py) = python() else { return };
    let model = model().expect("the embedded model is not installed: run `medu1 setup`");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(py)
        .args([
            "-W",
            "ignore::ResourceWarning",
            "-W",
            "ignore::DeprecationWarning",
        ])
        .args(["-m", "unittest", "-v", script])
        .current_dir(root)
        .env("MEDU1_BIN", env!("CARGO_BIN_EXE_medu1"))
        .env("MEDU1_MODEL_GGUF", model)
        .env("TOKENIZERS_PARALLELISM", "false")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    println!("{text}");
    assert!(out.status.success(), "{script} failed:\n{text}");
    assert!(text.contains(expect), "expected `{expect}`: {text}");
}

#[test]
fn verl_and_openrlhf_score_every_sample_as_medu1_score() {
    run_unittest("integrations/tests/test_frameworks.py", "Ran 7 tests");
}

#[test]
fn trl_grpo_trainer_scores_every_completion_as_medu1_score() {
    run_unittest("integrations/trl/test_trl.py", "Ran 1 test");
}
