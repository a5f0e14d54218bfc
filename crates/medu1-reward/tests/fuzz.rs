//! Property tests: the extractor, normaliser, BLEU, the Python float parser and the full scorers
//! never panic on arbitrary UTF-8, and a few invariants hold. Case counts are modest so the suite
//! stays fast; set `PROPTEST_CASES` for longer runs.

use medu1_reward::{
    EvalMetric, Input, Limit, Profile, RewardMetric, RewardType, Scorer, check_format,
    compute_bleu, compute_rouge_l, compute_score_val, compute_score_val_calc, eval_score,
    extract_solution, extract_solution_eval, normalize_word, py_float, score_parts, trace,
};
use proptest::prelude::*;

/// Pieces that steer random strings into the interesting branches.
const PIECES: &[&str] = &[
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "Assistant:",
    "<|im_start|>assistant",
    "<|start_header_id|>assistant<|end_header_id|>",
    "<|im_end|>",
    " ",
    "\n",
    "\u{1c}",
    "\u{2028}",
    "1,000",
    "3.14",
    ".",
    "..",
    "-",
    " - ",
    "(",
    ")",
    "/",
    "the",
    "a",
    "dont",
    "İ",
    "Σ",
    "ς",
    "\u{FF14}\u{FF12}",
    "\u{0664}",
    "_",
    "1_0",
    "e",
    "nan",
    "inf",
    "B",
    "heart",
    "failure",
    "é",
    "\u{200b}",
    "\u{0}",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(PIECES).prop_map(str::to_owned),
                any::<String>()
            ],
            0..40
        )
        .prop_map(|v| v.concat()),
    ]
}

fn source() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "medical-o1-reasoning-SFT",
            "MedIQ",
            "MedXpertQA",
            "EHRNoteQA",
            "MedCalc-Bench",
            "MMLU-Pro",
            "other",
        ][..],
    )
}

fn profile() -> impl Strategy<Value = Profile> {
    (
        0..3usize,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        -10.0..110.0f64,
    )
        .prop_map(|(m, cont, think, fix, thr)| {
            let mut p = Profile::med_u1();
            p.settings.reward_metric =
                [RewardMetric::Bleu, RewardMetric::Ems, RewardMetric::Merge][m];
            p.settings.reward_type = if cont {
                RewardType::Continuous
            } else {
                RewardType::Discrete
            };
            p.settings.check_think = think;
            p.settings.bleu_threshold = thr;
            p.fixes.bleu_percent_scale = fix;
            p
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn helpers_never_panic(s in text(), t in text()) {
        let e = extract_solution(&s);
        prop_assert!(s.ends_with(e.processed));
        if let Some(a) = e.answer {
            prop_assert!(e.processed.contains(a));
        }
        let _ = extract_solution_eval(&s);
        // The single-scan header split and tag replay agree with the plain ordered searches.
        prop_assert_eq!(
            medu1_reward::extract::split_header(&s),
            medu1_reward::extract::split_header_reference(&s)
        );
        prop_assert_eq!(
            medu1_reward::extract::find_answer(&s),
            medu1_reward::extract::find_answer_reference(&s)
        );
        let _ = check_format(&s);
        let n = normalize_word(&s);
        prop_assert!(!n.contains(','));
        prop_assert!(!n.starts_with(' ') && !n.ends_with(' '));
        let b = compute_bleu(&s, &t);
        prop_assert!((0.0..=1.0).contains(&b.mean));
        let r = compute_rouge_l(&s, &t);
        prop_assert!((0.0..=100.0).contains(&r));
        let _ = py_float(&s);
    }

    #[test]
    fn scorers_never_panic(
        body in text(), gt in text(), ds in source(), p in profile(),
        n in -5000i64..5000, l in 0.0..10_000.0f64, lo in text(), hi in text(),
    ) {
        let sol = format!("<|im_start|>assistant\n{body}");
        let input = Input {
            data_source: ds,
            solution_str: &sol,
            ground_truth: &gt,
            lower_limit: Limit::Str(&lo),
            upper_limit: Limit::Str(&hi),
            num_tokens: n,
            valid_response_length: l,
        };
        for scorer in [Scorer::ComputeScore, Scorer::ComputeScoreCalc] {
            let fast = score_parts(scorer, &p, &input);
            let t = trace(scorer, &p, &input);
            match (&fast, &t.parts) {
                (Ok(a), Some(b)) => prop_assert!(a == b || (a.total.is_nan() && b.total.is_nan())),
                (Err(e), None) => prop_assert_eq!(Some(e), t.error.as_ref()),
                _ => prop_assert!(false, "fast {:?} vs trace {:?}", fast, t.parts),
            }
            // The fast path skips BLEU and stops normalising long answers when the decision is
            // already known; the trace computes every component. Both must decide the same.
            if let (Ok(parts), Some(mv)) = (&fast, t.metric_value) {
                let st = &p.settings;
                let expected = match st.reward_type {
                    RewardType::Discrete => if mv > st.bleu_threshold { 1.0 } else { -1.0 },
                    RewardType::Continuous => mv / st.scale_factor,
                };
                prop_assert_eq!(parts.answer.to_bits(), expected.to_bits());
            }
        }
        let _ = compute_score_val(&p, &input);
        let _ = compute_score_val_calc(&input);
        let _ = eval_score(&input, EvalMetric::Ems);
        let _ = eval_score(&input, EvalMetric::RougeL);
    }

    #[test]
    fn python_floats_round_trip(x in any::<f64>()) {
        let s = format!("{x:?}");
        let v = py_float(&s).unwrap();
        prop_assert!(v == x || (v.is_nan() && x.is_nan()));
        let padded = format!(" \u{3000}{s}\n");
        prop_assert_eq!(py_float(&padded).map(f64::to_bits).ok(), py_float(&s).map(f64::to_bits).ok());
    }
}
