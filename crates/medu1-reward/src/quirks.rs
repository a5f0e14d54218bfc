//! The reference's quirks (spec §2.14), one named test each, so a change that "fixes" one by
//! accident fails loudly. Quirks 15–17 concern the trainer's data loader, the LR schedule and the
//! data script; they are tested in the crates that implement those.

#[cfg(test)]
mod tests {
    use crate::*;

    const SYS: &str = "<|im_start|>system\nProvide your detailed reasoning within the <think> </think> tags and final answer within the <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think><answer> final answer here </answer>.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n";

    fn input<'a>(ds: &'a str, sol: &'a str, gt: &'a str) -> Input<'a> {
        Input {
            data_source: ds,
            solution_str: sol,
            ground_truth: gt,
            lower_limit: Limit::Missing,
            upper_limit: Limit::Missing,
            num_tokens: -1,
            valid_response_length: 100.0,
        }
    }

    fn with(metric: RewardMetric, rtype: RewardType, check_think: bool) -> Profile {
        let mut p = Profile::med_u1();
        p.settings.reward_metric = metric;
        p.settings.reward_type = rtype;
        p.settings.check_think = check_think;
        p
    }

    #[test]
    fn quirk_01_assistant_colon_wins_over_chat_header() {
        let sol =
            format!("{SYS}<think>As the Assistant: I think</think><answer>B</answer><|im_end|>");
        let e = extract_solution(&sol);
        assert_eq!(e.header, Some(Header::Assistant));
        // The split drops `<think>`, so the format fails although the response is well formed.
        assert!(!validate_response_structure(e.processed));
        let r = compute_score(&Profile::med_u1(), &input("MedIQ", &sol, "B")).unwrap();
        assert_eq!(r, -1.0 + 1.0);
    }

    #[test]
    fn quirk_02_double_template_splits_on_inner_header() {
        let outer = "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\n";
        let resp = "<think>t</think><answer>C</answer><|im_end|>";
        let sol = format!("{outer}{SYS}<|im_end|>\n<|im_start|>assistant\n{resp}");
        let e = extract_solution(&sol);
        assert_eq!(e.header, Some(Header::Qwen));
        assert_eq!(
            e.processed,
            format!("\n<|im_end|>\n<|im_start|>assistant\n{resp}")
        );
        assert_eq!(e.answer, Some("C"));
        assert!(validate_response_structure(e.processed));
    }

    #[test]
    fn quirk_03_no_header_checks_format_on_whole_string_and_has_no_answer() {
        let bare = "<think>t</think><answer>B</answer>";
        let e = extract_solution(bare);
        assert_eq!((e.header, e.answer), (None, None));
        assert_eq!(
            compute_score(&Profile::med_u1(), &input("MedIQ", bare, "B")).unwrap(),
            -1.0
        );
        // With a system prompt in the string the tag counts break: -1 - 2.
        let prompt = SYS.replace("<|im_start|>assistant\n", "");
        let sol = format!("{prompt}{bare}");
        assert_eq!(
            compute_score(&Profile::med_u1(), &input("MedIQ", &sol, "B")).unwrap(),
            -3.0
        );
    }

    #[test]
    fn quirk_04_bleu_never_passes_45() {
        let gt = "the patient has acute heart failure with reduced ejection fraction";
        let sol = format!("Assistant:<think>x</think><answer>{gt}</answer>");
        let inp = input(FREE_TEXT_SOURCE, &sol, gt);
        assert_eq!(compute_bleu(gt, gt).mean, 1.0);
        let bleu = with(RewardMetric::Bleu, RewardType::Discrete, true);
        assert_eq!(compute_score(&bleu, &inp).unwrap(), 1.0 - 1.0);
        let mut fixed = bleu.clone();
        fixed.fixes.bleu_percent_scale = true;
        assert_eq!(compute_score(&fixed, &inp).unwrap(), 1.0 + 1.0);
        // Merge ≈ EMS/2: 50 + 0.5 here, passes only because EMS is 100.
        assert_eq!(components(&inp).merge, Some(0.5 * 100.0 + 0.5 * 1.0));
    }

    #[test]
    fn quirk_05_ems_counts_distinct_reference_words_and_articles_vanish() {
        assert!(calculate_exactmatch("blood blood pressure", "blood blood pressure") < 100.0);
        assert_eq!(calculate_exactmatch("The", "The"), 0.0);
        assert_eq!(calculate_exactmatch("A", "A"), 0.0);
    }

    #[test]
    fn quirk_06_one_token_exact_bleu_is_point_four() {
        let b = compute_bleu("aspirin", "aspirin");
        assert_eq!(b.ngram, [1.0, 0.1, 0.1]);
        assert_eq!(b.mean, (1.0 + 0.1 + 0.1) / 3.0);
    }

    #[test]
    fn quirk_07_only_32_periods_are_removed() {
        let s = "x.".repeat(40);
        let n = normalize_word(&s);
        assert_eq!(n.matches('.').count(), 40 - 32);
    }

    #[test]
    fn quirk_08_period_rule_is_a_lookahead_only() {
        // Intended: keep a period after a digit ("5.") — actually removed; kept only before one.
        assert_eq!(normalize_word("5."), "5");
        assert_eq!(normalize_word("3.14"), "3.14");
        assert_eq!(normalize_word("a.5"), "a.5");
    }

    #[test]
    fn quirk_09_digit_comma_digit_switches_punctuation_to_deletion() {
        assert_eq!(normalize_word("a-b"), "b");
        assert_eq!(normalize_word("x-ray 1,000"), "xray 1000");
        assert_eq!(normalize_word("x-ray 1, 000"), "x ray 1 000");
        // Unicode digits count for `\d`.
        assert_eq!(
            normalize_word("x-ray \u{0661},\u{0662}"),
            "xray \u{0661}\u{0662}"
        );
    }

    #[test]
    fn quirk_10_mcq_ground_truth_outside_a_to_n_is_neutral() {
        let sol = "Assistant:<think>x</think><answer>Z</answer>";
        assert_eq!(
            compute_score(&Profile::med_u1(), &input("MedIQ", sol, "Z")).unwrap(),
            1.0
        );
        assert_eq!(
            compute_score(&Profile::med_u1(), &input("MedIQ", sol, "O")).unwrap(),
            1.0
        );
    }

    #[test]
    fn quirk_11_max_budget_rewards_short_answers() {
        assert_eq!(length_delta(-2000, 1000.0), 1.0);
        assert_eq!(length_delta(-2000, 2000.0), 0.0);
        assert_eq!(length_delta(-2000, 2500.0), -1.0);
        let sol = "Assistant:<think>x</think><answer>B</answer>";
        let mut i = input("MedIQ", sol, "B");
        i.num_tokens = -2000;
        i.valid_response_length = 10.0;
        assert_eq!(
            compute_score(&Profile::med_u1(), &i).unwrap(),
            1.0 + (1.0 + 1.0)
        );
    }

    #[test]
    fn quirk_12_empty_answer_keeps_the_format_bonus() {
        let sol = "Assistant:<think>x</think><answer>  </answer>";
        let i = input("MedIQ", sol, "B");
        assert_eq!(compute_score(&Profile::med_u1(), &i).unwrap(), 1.0 - 2.0);
        let p = with(RewardMetric::Merge, RewardType::Discrete, false);
        assert_eq!(compute_score(&p, &i).unwrap(), 1.0 - 2.0);
    }

    #[test]
    fn quirk_13_validation_uses_merge_and_calc_val_has_no_answer_guard() {
        let gt = "heart failure";
        let sol = format!("Assistant:<answer>{gt}</answer>");
        let mut p = with(RewardMetric::Ems, RewardType::Discrete, true);
        p.settings.bleu_threshold = 60.0;
        // EMS 100 > 60, but Merge = 50 + 0.5 * BLEU < 60.
        assert_eq!(
            compute_score_val(&p, &input(FREE_TEXT_SOURCE, &sol, gt)).unwrap(),
            0.0
        );
        // No answer is compared as the string "None" against a non-numeric ground truth.
        let i = input(CALC_SOURCE, "no tags at all", "None");
        assert_eq!(compute_score_val_calc(&i).unwrap(), 1.0);
    }

    #[test]
    fn quirk_14_calc_limits_parse_outside_try_and_short_circuit() {
        let sol = "Assistant:<answer>5</answer>";
        let mut i = input(CALC_SOURCE, sol, "5");
        let e = compute_score_calc(&Profile::med_u1(), &i).unwrap_err();
        assert_eq!(e.py_exception(), PyException::TypeError);
        i.lower_limit = Limit::Str("abc");
        let e = compute_score_calc(&Profile::med_u1(), &i).unwrap_err();
        assert_eq!(e.py_exception(), PyException::ValueError);
        // `float(l) <= v <= float(u)` never parses u when v < l.
        i.lower_limit = Limit::Str("6");
        i.upper_limit = Limit::Str("xyz");
        assert_eq!(
            compute_score_calc(&Profile::med_u1(), &i).unwrap(),
            -1.0 - 1.0
        );
        // No answer: no parsing at all.
        i.solution_str = "Assistant: nothing";
        i.lower_limit = Limit::Missing;
        assert_eq!(
            compute_score_calc(&Profile::med_u1(), &i).unwrap(),
            -1.0 - 2.0
        );
    }

    #[test]
    fn quirk_18_eval_grades_the_whole_text_without_tags() {
        let sol = "Assistant: B";
        let r = eval_response(sol);
        assert!(r.is_processed_str);
        assert_eq!(r.generated, " B");
        assert_eq!(
            eval_score(&input("MedIQ", sol, "B"), EvalMetric::Ems).unwrap(),
            0.0
        );
        let sol = "Assistant:B";
        assert_eq!(
            eval_score(&input("MedIQ", sol, "B"), EvalMetric::Ems).unwrap(),
            1.0
        );
    }
}
