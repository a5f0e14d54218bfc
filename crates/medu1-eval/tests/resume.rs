//! A run stopped part-way (backend failure, kill with a torn last line) and resumed must end with
//! exactly one record per item and the same report as an uninterrupted run.

mod common;

use std::collections::HashSet;
use std::io::Write;

use common::{FailingBackend, FakeBackend, config, write_dataset};
use medu1_eval::resume::read_log;
use medu1_eval::runner::ITEMS_FILE;
use medu1_eval::suite::benchmark_for_file;

fn report_rows(dir: &std::path::Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    v["benchmarks"].clone()
}

#[test]
fn resumed_run_matches_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write_dataset(tmp.path(), "mcq", 10, 4);
    let b = write_dataset(tmp.path(), "small", 5, 0);
    let benches = vec![benchmark_for_file(&a), benchmark_for_file(&b)];

    let whole = tmp.path().join("whole");
    let s = medu1_eval::run(
        &FakeBackend,
        &config(&whole, benches.clone(), 3),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(s.generated, 19);
    assert!(whole.join("accuracy.png").is_file());

    let parts = tmp.path().join("parts");
    let failing = FailingBackend {
        limit: 7,
        served: Default::default(),
    };
    let err =
        medu1_eval::run(&failing, &config(&parts, benches.clone(), 3), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("killed"), "{err}");
    // Batches of 3: two batches (6 items) got through before the third was refused.
    let log = parts.join(ITEMS_FILE);
    assert_eq!(read_log(&log).unwrap().len(), 6);

    // A kill in the middle of a write leaves a torn last line.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(br#"{"benchmark":"mcq","index":6,"id":"q6","sou"#)
        .unwrap();
    drop(f);

    let s = medu1_eval::run(
        &FakeBackend,
        &config(&parts, benches.clone(), 3),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((s.resumed, s.generated), (6, 13));
    let records = read_log(&log).unwrap();
    let keys: HashSet<(String, usize)> = records
        .iter()
        .map(|r| (r.benchmark.clone(), r.index))
        .collect();
    assert_eq!(records.len(), 19, "no duplicates, nothing lost");
    assert_eq!(keys.len(), 19);
    assert_eq!(report_rows(&whole), report_rows(&parts));
    assert_eq!(
        std::fs::read_to_string(whole.join("report.csv")).unwrap(),
        std::fs::read_to_string(parts.join("report.csv")).unwrap()
    );

    // A third run has nothing left to do and changes nothing.
    let s = medu1_eval::run(&FakeBackend, &config(&parts, benches, 3), &mut |_| {}).unwrap();
    assert_eq!((s.resumed, s.generated), (19, 0));
    assert_eq!(report_rows(&whole), report_rows(&parts));
}

#[test]
fn resume_refuses_a_different_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write_dataset(tmp.path(), "mcq", 4, 0);
    let out = tmp.path().join("out");
    medu1_eval::run(
        &FakeBackend,
        &config(&out, vec![benchmark_for_file(&a)], 1),
        &mut |_| {},
    )
    .unwrap();
    let err = medu1_eval::run(
        &FakeBackend,
        &config(&out, vec![benchmark_for_file(&a)], 2),
        &mut |_| {},
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("run.json") && msg.contains("`n`"), "{msg}");
}

#[test]
fn corrupt_line_in_the_middle_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write_dataset(tmp.path(), "mcq", 4, 0);
    let out = tmp.path().join("out");
    medu1_eval::run(
        &FakeBackend,
        &config(&out, vec![benchmark_for_file(&a)], 1),
        &mut |_| {},
    )
    .unwrap();
    let log = out.join(ITEMS_FILE);
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1] = "{not json";
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let err = read_log(&log).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}
