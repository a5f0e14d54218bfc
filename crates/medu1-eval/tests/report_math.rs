//! The report's numbers on hand-made per-item results, checked against values computed by hand.

use medu1_core::FinishReason;
use medu1_eval::metrics::{Z95, benchmark_stats, majority_correct, pass_at_k, pass_ks};
use medu1_eval::report::{ReportMeta, write_reports};
use medu1_eval::runner::RunMeta;
use medu1_eval::{GenParams, ItemRecord, ResponseRecord, wilson_interval};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-4
}

fn resp(answer: &str, correct: bool, tokens: usize) -> ResponseRecord {
    ResponseRecord {
        text: format!("<think>t</think><answer>{answer}</answer>"),
        tokens,
        finish: if tokens >= 100 {
            FinishReason::Length
        } else {
            FinishReason::Stop
        },
        extracted: Some(answer.to_string()),
        correct,
        format_ok: tokens.is_multiple_of(2),
        train_reward: Some(if correct { 2.0 } else { 0.0 }),
        error: None,
    }
}

fn item(index: usize, num_tokens: i64, responses: Vec<ResponseRecord>) -> ItemRecord {
    ItemRecord {
        benchmark: "hand".into(),
        index,
        id: index.to_string(),
        source: "MedIQ".into(),
        kind: "multiple_choice".into(),
        rule: "medu1-eval letter".into(),
        num_tokens,
        ground_truth: "B".into(),
        prompt: "p".into(),
        responses,
    }
}

#[test]
fn wilson_matches_known_values() {
    // 5/10: the textbook 95 % Wilson interval is [0.2366, 0.7634].
    let (lo, hi) = wilson_interval(0.5, 10.0, Z95);
    assert!(close(lo, 0.236_593) && close(hi, 0.763_407), "{lo} {hi}");
    // 0/3: the upper bound is z²/(n+z²).
    let (lo, hi) = wilson_interval(0.0, 3.0, Z95);
    assert_eq!(lo, 0.0);
    assert!(close(hi, Z95 * Z95 / (3.0 + Z95 * Z95)), "{hi}");
    // 1/1 and the empty benchmark.
    let (lo, hi) = wilson_interval(1.0, 1.0, Z95);
    assert!(close(lo, 1.0 / (1.0 + Z95 * Z95)) && close(hi, 1.0));
    assert_eq!(wilson_interval(0.0, 0.0, Z95), (0.0, 1.0));
}

#[test]
fn pass_at_k_is_the_unbiased_estimator() {
    // 1 − C(n−c, k) / C(n, k)
    assert!(close(pass_at_k(4, 1, 2), 1.0 - 3.0 / 6.0));
    assert!(close(pass_at_k(5, 2, 2), 1.0 - 3.0 / 10.0));
    assert!(close(pass_at_k(10, 3, 5), 1.0 - 21.0 / 252.0));
    assert_eq!(pass_at_k(4, 0, 4), 0.0);
    assert_eq!(pass_at_k(4, 3, 2), 1.0);
    assert!(close(pass_at_k(8, 3, 1), 3.0 / 8.0));
    assert_eq!(pass_ks(1), vec![1]);
    assert_eq!(pass_ks(8), vec![1, 2, 4, 8]);
    assert_eq!(pass_ks(5), vec![1, 2, 4, 5]);
}

#[test]
fn majority_vote_ties_and_empty_answers() {
    assert!(majority_correct(&[
        (Some("B"), true),
        (Some("C"), false),
        (Some("B"), true)
    ]));
    assert!(!majority_correct(&[
        (Some("C"), false),
        (Some("B"), true),
        (Some("C"), false)
    ]));
    // Tie: the first answer seen wins.
    assert!(!majority_correct(&[(Some("C"), false), (Some("B"), true)]));
    // Missing answers do not vote.
    assert!(majority_correct(&[
        (None, false),
        (None, false),
        (Some("B"), true)
    ]));
    assert!(!majority_correct(&[(None, false), (Some(" "), false)]));
}

#[test]
fn benchmark_row_from_hand_made_items() {
    let items = [
        // 2 of 4 correct, majority B (correct).
        item(
            0,
            -1,
            vec![
                resp("B", true, 10),
                resp("B", true, 20),
                resp("C", false, 30),
                resp("D", false, 40),
            ],
        ),
        // 0 of 4, majority C (wrong).
        item(
            1,
            200,
            vec![
                resp("C", false, 100),
                resp("C", false, 210),
                resp("A", false, 250),
                resp("D", false, 190),
            ],
        ),
        // 4 of 4; budget "maximum 50".
        item(
            2,
            -50,
            vec![
                resp("B", true, 11),
                resp("B", true, 60),
                resp("B", true, 50),
                resp("B", true, 49),
            ],
        ),
    ];
    let refs: Vec<&ItemRecord> = items.iter().collect();
    let s = benchmark_stats("hand", &refs);
    assert_eq!((s.items, s.n), (3, 4));
    // mean@4 = (0.5 + 0 + 1) / 3
    assert!(close(s.accuracy, 0.5));
    let (lo, hi) = wilson_interval(0.5, 3.0, Z95);
    assert!(close(s.ci_low, lo) && close(s.ci_high, hi));
    // pass@1 = mean@n; pass@2 = (1 − C(2,2)/C(4,2) + 0 + 1) / 3; pass@4 = 2/3.
    assert!(close(s.pass_at_k[&1], 0.5));
    assert!(close(s.pass_at_k[&2], (1.0 - 1.0 / 6.0 + 0.0 + 1.0) / 3.0));
    assert!(close(s.pass_at_k[&4], 2.0 / 3.0));
    assert!(close(s.maj_at_n, 2.0 / 3.0));
    // Even token counts are "format ok" in this fixture: 10 20 30 40 100 210 250 190 60 50.
    assert!(close(s.format_compliance, 10.0 / 12.0));
    // Tokens ≥ 100 are "length" finishes in this fixture: 100 210 250 190.
    assert!(close(s.truncated, 4.0 / 12.0));
    let toks = [10, 20, 30, 40, 100, 210, 250, 190, 11, 60, 50, 49];
    let mean = toks.iter().sum::<usize>() as f64 / 12.0;
    assert!(close(s.tokens_mean, mean));
    // Sorted: 10 11 20 30 40 49 | 50 60 100 190 210 250 -> (49 + 50) / 2.
    assert!(close(s.tokens_median, 49.5));
    assert!(close(s.train_reward_mean.unwrap(), 2.0 * 6.0 / 12.0));
    let b = s.budget.as_ref().unwrap();
    assert_eq!((b.exact_responses, b.max_responses), (4, 4));
    // |L − 200| / 200 for 100 210 250 190.
    assert!(close(
        b.exact_mean_rel_error,
        (0.5 + 0.05 + 0.25 + 0.05) / 4.0
    ));
    assert!(close(b.exact_within_20pct, 0.5));
    // L ≤ 50 for 11 60 50 49.
    assert!(close(b.max_adherence, 0.75));

    // The files agree with the numbers.
    let tmp = tempfile::tempdir().unwrap();
    let meta = ReportMeta {
        run: RunMeta {
            backend: "hand".into(),
            n: 4,
            params: GenParams::default(),
            budget: "file".into(),
            budget_seed: 0,
            rule: "medu1".into(),
            profile: "med-u1".into(),
            variant: "released".into(),
            template: "qwen25".into(),
        },
        limit: None,
    };
    let paths = write_reports(tmp.path(), &meta, std::slice::from_ref(&s), true).unwrap();
    let md = std::fs::read_to_string(&paths.markdown).unwrap();
    let ci = format!("50.0 ({:.1}–{:.1})", 100.0 * lo, 100.0 * hi);
    assert!(
        md.contains(&format!("| hand | medu1-eval letter | 3 | {ci} |")),
        "{md}"
    );
    assert!(md.contains("maj@4 %") && md.contains("pass@4 %"), "{md}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&paths.json).unwrap()).unwrap();
    assert!(close(
        json["benchmarks"][0]["accuracy"].as_f64().unwrap(),
        0.5
    ));
    assert_eq!(json["benchmarks"][0]["items"], 3);
    let mut rdr = csv::Reader::from_path(&paths.csv).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let row = rdr.records().next().unwrap().unwrap();
    let col = |name: &str| row[headers.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(col("accuracy"), "0.500000");
    assert_eq!(col("pass@4"), "0.666667");
    assert_eq!(col("tokens_median"), "49.5");
    let png = std::fs::read(paths.plot.unwrap()).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
