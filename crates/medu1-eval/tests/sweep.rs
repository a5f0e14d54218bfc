//! Budget sweeps: the statistics on hand-made records checked against values computed by hand,
//! and a sweep end to end with the fake backend (every item at every budget, the right budget
//! sentence, resume without regenerating).

mod common;

use std::cell::Cell;

use common::{FailingBackend, FakeBackend, config, write_dataset};
use medu1_core::FinishReason;
use medu1_eval::metrics::Z95;
use medu1_eval::resume::read_log;
use medu1_eval::runner::ITEMS_FILE;
use medu1_eval::suite::benchmark_for_file;
use medu1_eval::sweep::{
    Sweep, SweepMode, SweepProgress, average_ranks, pearson, run_sweep, spearman, sweep_stats,
    sweep_table,
};
use medu1_eval::{ItemRecord, ResponseRecord, wilson_interval};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn resp(tokens: usize, correct: bool, format_ok: bool) -> ResponseRecord {
    ResponseRecord {
        text: String::new(),
        tokens,
        finish: FinishReason::Stop,
        extracted: Some("A".into()),
        correct,
        format_ok,
        train_reward: None,
        error: None,
    }
}

fn item(bench: &str, index: usize, num_tokens: i64, responses: Vec<ResponseRecord>) -> ItemRecord {
    ItemRecord {
        benchmark: bench.into(),
        index,
        id: index.to_string(),
        source: "MedIQ".into(),
        kind: "multiple_choice".into(),
        rule: "medu1-eval letter".into(),
        num_tokens,
        ground_truth: "A".into(),
        prompt: String::new(),
        responses,
    }
}

/// Benchmark `a`: two items at exact budgets 100 and 200, two responses each; benchmark `b`: one
/// item at maximum budget 64; one record without a budget.
fn fixture() -> Vec<ItemRecord> {
    vec![
        item(
            "a",
            0,
            100,
            vec![resp(80, true, true), resp(100, false, true)],
        ),
        item(
            "a",
            1,
            100,
            vec![resp(130, true, false), resp(100, true, true)],
        ),
        item(
            "a",
            0,
            200,
            vec![resp(150, false, true), resp(250, false, true)],
        ),
        item(
            "a",
            1,
            200,
            vec![resp(200, true, true), resp(100, false, false)],
        ),
        item(
            "b",
            0,
            -64,
            vec![resp(64, true, true), resp(70, false, true)],
        ),
        item("b", 1, -1, vec![resp(10, true, true)]),
    ]
}

#[test]
fn rows_match_hand_computed_values() {
    let stats = sweep_stats(&fixture());
    assert_eq!(stats.skipped_items, 1);
    let budgets: Vec<(SweepMode, u64)> =
        stats.all.rows.iter().map(|r| (r.mode, r.budget)).collect();
    assert_eq!(
        budgets,
        [
            (SweepMode::Exact, 100),
            (SweepMode::Exact, 200),
            (SweepMode::Max, 64)
        ]
    );
    let r = &stats.all.rows[0];
    // L = 80, 100, 130, 100 against N = 100.
    assert_eq!((r.items, r.responses), (2, 4));
    assert!(close(r.tokens_mean, 102.5) && close(r.tokens_median, 100.0));
    // |L − N| / N = 0.2, 0, 0.3, 0.
    assert!(close(r.rel_error_mean, 0.125) && close(r.rel_error_median, 0.1));
    // 80 is exactly 20 % under: within.
    assert!(close(r.within_20pct, 0.75) && close(r.at_or_under, 0.75));
    assert!(close(r.format_rate, 0.75));
    // mean@2: item 0 1/2, item 1 2/2.
    assert!(close(r.accuracy, 0.75));
    // Wilson for p = 0.75 over 2 items, by hand: centre (p + z²/4)/(1 + z²/2), half-width
    // z/(1 + z²/2)·sqrt(p(1−p)/2 + z²/16).
    assert!((r.ci_low - 0.197_87).abs() < 1e-4, "{}", r.ci_low);
    assert!((r.ci_high - 0.973_33).abs() < 1e-4, "{}", r.ci_high);
    assert_eq!((r.ci_low, r.ci_high), wilson_interval(0.75, 2.0, Z95));

    let r = &stats.all.rows[1];
    // L = 150, 250, 200, 100 against N = 200.
    assert!(close(r.tokens_mean, 175.0) && close(r.tokens_median, 175.0));
    // 0.25, 0.25, 0, 0.5.
    assert!(close(r.rel_error_mean, 0.25) && close(r.rel_error_median, 0.25));
    assert!(close(r.within_20pct, 0.25) && close(r.at_or_under, 0.75));
    assert!(close(r.accuracy, 0.25) && close(r.format_rate, 0.75));

    let r = &stats.all.rows[2];
    // Max mode, L = 64 and 70 against N = 64: one at or under, both within 20 %.
    assert!(close(r.at_or_under, 0.5) && close(r.within_20pct, 1.0));
    assert!(close(r.rel_error_mean, 6.0 / 64.0 / 2.0));

    let names: Vec<Option<&str>> = stats
        .benchmarks
        .iter()
        .map(|t| t.benchmark.as_deref())
        .collect();
    assert_eq!(names, [Some("a"), Some("b")]);
    assert_eq!(stats.benchmarks[1].rows.len(), 1);
    // One budget only: no spread in N, so no correlation.
    assert_eq!(stats.benchmarks[1].spearman, None);
    assert_eq!(stats.benchmarks[1].pearson, None);
}

#[test]
fn correlations_match_hand_computed_values() {
    let recs = fixture();
    let a: Vec<&ItemRecord> = recs.iter().filter(|r| r.benchmark == "a").collect();
    let t = sweep_table(Some("a"), &a);
    assert_eq!(t.responses, 8);
    // N ranks: 2.5 ×4, 6.5 ×4. L = 80 100 130 100 | 150 250 200 100 ranks 1 3 5 3 | 6 8 7 3.
    // Deviations from 4.5: N ±2, L −3.5 −1.5 .5 −1.5 1.5 3.5 2.5 −1.5: Σxy = 24, Σx² = 32,
    // Σy² = 40, ρ = 24 / sqrt(1280) = 3 / sqrt(20).
    let rho = t.spearman.unwrap();
    assert!(close(rho, 3.0 / 20f64.sqrt()), "{rho}");
    // Raw values: N − 150 = ±50, mean L = 138.75; Σxy = 50 · (700 − 410) = 14500,
    // Σx² = 20000, Σy² = 178300 − 8 · 138.75² = 24287.5.
    let r = t.pearson.unwrap();
    assert!(close(r, 14_500.0 / (20_000.0f64 * 24_287.5).sqrt()), "{r}");
}

#[test]
fn ranks_average_ties_and_undefined_correlations_are_none() {
    assert_eq!(
        average_ranks(&[10.0, 20.0, 10.0, 30.0, 20.0, 20.0]),
        [1.5, 4.0, 1.5, 6.0, 4.0, 4.0]
    );
    assert_eq!(average_ranks(&[]), Vec::<f64>::new());
    // Monotone but not linear: ρ = 1, r < 1.
    let (x, y) = ([1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 9.0, 100.0]);
    assert!(close(spearman(&x, &y).unwrap(), 1.0));
    assert!(pearson(&x, &y).unwrap() < 0.99);
    assert!(close(spearman(&x, &[4.0, 3.0, 2.0, 1.0]).unwrap(), -1.0));
    // Zero variance in either variable, a single pair, no pairs, NaN, mismatched lengths.
    assert_eq!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0]), None);
    assert_eq!(pearson(&[1.0], &[2.0]), None);
    assert_eq!(spearman(&[], &[]), None);
    assert_eq!(pearson(&[1.0, f64::NAN], &[1.0, 2.0]), None);
    assert_eq!(spearman(&[1.0, 2.0], &[1.0]), None);
}

#[test]
fn sweep_budgets_are_checked() {
    let s = Sweep::new(vec![128, 32, 64, 32], SweepMode::Exact).unwrap();
    assert_eq!(s.budgets(), [32, 64, 128]);
    assert!(Sweep::new(vec![], SweepMode::Exact).is_err());
    assert!(Sweep::new(vec![0, 64], SweepMode::Exact).is_err());
    // "maximum 1" would be num_tokens −1, the encoding of "no budget".
    assert!(Sweep::new(vec![1], SweepMode::Max).is_err());
    assert!(Sweep::new(vec![1], SweepMode::Exact).is_ok());
    assert_eq!(SweepMode::Max.num_tokens(64), -64);
    assert_eq!("max".parse::<SweepMode>().unwrap(), SweepMode::Max);
    assert!("both".parse::<SweepMode>().is_err());
}

fn sweep_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("sweep.json")).unwrap()).unwrap()
}

#[test]
fn every_item_at_every_budget_and_a_rerun_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_dataset(tmp.path(), "mcq", 5, 2);
    let benches = vec![benchmark_for_file(&data)];
    let sweep = Sweep::new(vec![32, 64, 128], SweepMode::Exact).unwrap();

    let whole = tmp.path().join("whole");
    let mut seen: Vec<(usize, usize)> = Vec::new();
    let s = run_sweep(
        &FakeBackend,
        config(&whole, benches.clone(), 2),
        &sweep,
        &mut |p: &SweepProgress<'_>| seen.push((p.done, p.total)),
    )
    .unwrap();
    assert_eq!((s.resumed, s.generated), (0, 21));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    assert_eq!(seen.last(), Some(&(21, 21)));
    for n in [32, 64, 128] {
        let recs = read_log(&whole.join(format!("budget-{n}")).join(ITEMS_FILE)).unwrap();
        assert_eq!(recs.len(), 7, "budget {n}");
        for r in &recs {
            assert_eq!(r.num_tokens, n);
            assert!(
                r.prompt.contains(&format!("Think for {n} tokens.")),
                "{}",
                r.prompt
            );
            assert_eq!(r.responses.len(), 2);
        }
    }
    let v = sweep_json(&whole);
    let rows = v["all"]["rows"].as_array().unwrap();
    let budgets: Vec<u64> = rows.iter().map(|r| r["budget"].as_u64().unwrap()).collect();
    assert_eq!(budgets, [32, 64, 128]);
    assert!(rows.iter().all(|r| r["responses"] == 14 && r["items"] == 7));
    assert_eq!(v["meta"]["runs"][2], "budget-128");
    for f in ["sweep.md", "length_vs_budget.png", "accuracy_vs_budget.png"] {
        assert!(whole.join(f).is_file(), "{f}");
    }
    let png = std::fs::read(whole.join("length_vs_budget.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // Sub-runs do not draw their own bar chart; the sweep's charts replace it.
    assert!(!whole.join("budget-32").join("accuracy.png").exists());

    // The same command again has nothing to generate: a backend that refuses every request
    // would fail the run if it were asked.
    let refusing = FailingBackend {
        limit: 0,
        served: Cell::new(0),
    };
    let s = run_sweep(
        &refusing,
        config(&whole, benches.clone(), 2),
        &sweep,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((s.resumed, s.generated), (21, 0));
    assert_eq!(sweep_json(&whole), v);

    // Stopped in the second budget (batches of 3: 7 items of budget 32, then one batch of 64),
    // then resumed: the report is the uninterrupted one.
    let parts = tmp.path().join("parts");
    let failing = FailingBackend {
        limit: 10,
        served: Cell::new(0),
    };
    let err = run_sweep(
        &failing,
        config(&parts, benches.clone(), 2),
        &sweep,
        &mut |_| {},
    );
    assert!(err.unwrap_err().to_string().contains("killed"));
    assert_eq!(
        read_log(&parts.join("budget-64").join(ITEMS_FILE))
            .unwrap()
            .len(),
        3
    );
    assert!(!parts.join("sweep.json").exists());
    let s = run_sweep(
        &FakeBackend,
        config(&parts, benches, 2),
        &sweep,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((s.resumed, s.generated), (10, 11));
    assert_eq!(sweep_json(&parts)["all"], v["all"]);
}

#[test]
fn max_mode_sweep_uses_the_maximum_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_dataset(tmp.path(), "mcq", 3, 0);
    let out = tmp.path().join("out");
    let sweep = Sweep::new(vec![64, 256], SweepMode::Max).unwrap();
    let mut cfg = config(&out, vec![benchmark_for_file(&data)], 1);
    cfg.plot = false;
    let s = run_sweep(&FakeBackend, cfg, &sweep, &mut |_| {}).unwrap();
    assert_eq!(s.generated, 6);
    let recs = read_log(&out.join("budget-max-256").join(ITEMS_FILE)).unwrap();
    assert!(
        recs.iter()
            .all(|r| r.num_tokens == -256 && r.prompt.contains("Think for maximum 256 tokens."))
    );
    assert!(s.stats.all.rows.iter().all(|r| r.mode == SweepMode::Max));
    // The fake backend answers in 5–54 tokens: always within a maximum of 64.
    assert!(close(s.stats.all.rows[0].at_or_under, 1.0));
    assert!(!out.join("length_vs_budget.png").exists());
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(md.contains("| max 64 |") && md.contains("Spearman"), "{md}");
}
