//! Length control in training: budget-fitted warm-up targets, DAPO's overlong penalty (in the
//! reward crate's unit tests) and truncation masking, and the per-budget-bucket metrics.

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var};
use medu1_core::{Budget, Completion, FinishReason};
use medu1_model::Tokenizer;
use medu1_rl::config::{DataConfig, DataFile};
use medu1_rl::dataset::PromptRenderer;
use medu1_rl::grpo::{budget_bucket, budget_bucket_metrics};
use medu1_rl::loss::{Divisor, keep_rows, policy_loss_over};
use medu1_rl::rollout::Scored;
use medu1_rl::sft::{
    BudgetScaffold, LengthTarget, SftConfig, StepFit, fit_steps_to_budget, fit_to_budget,
    length_target, load_examples, scaffold_target,
};
use medu1_rl::{ClipRange, LossAgg};

/// A word-level tokenizer over the words of `texts` (one token per whitespace-separated word,
/// decoded with spaces), so token counts are word counts and easy to reason about.
fn word_tokenizer(texts: &[&str]) -> Tokenizer {
    use tokenizers::models::wordlevel::WordLevel;
    let mut vocab: HashMap<String, u32> = HashMap::new();
    vocab.insert("<unk>".into(), 0);
    vocab.insert("<eos>".into(), 1);
    for n in 0..1000 {
        // Numbers, and as the steps scaffold writes them: "Budget 40:", "[3]".
        for w in [n.to_string(), format!("{n}:"), format!("[{n}]")] {
            vocab.insert(w, vocab.len() as u32);
        }
    }
    for t in texts {
        for w in t.split_whitespace() {
            let n = vocab.len() as u32;
            vocab.entry(w.to_string()).or_insert(n);
        }
    }
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("<unk>".into())
        .build()
        .unwrap();
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(
        tokenizers::pre_tokenizers::whitespace::WhitespaceSplit {},
    ));
    tok.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
    Tokenizer::from_inner(tok)
}

fn target() -> LengthTarget {
    LengthTarget {
        body: (1..=40)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" "),
        tail: "so B.".into(),
        answer: "<answer>B</answer>".into(),
    }
}

#[test]
fn fitted_targets_have_the_length_asked_for() {
    let t = target();
    let full = t.render(&t.body);
    let tok = word_tokenizer(&[&full]);
    // Fixed part: "<think>" "so" "B." "</think>" "<answer>B</answer>" + EOS = 6 tokens.
    let (_, min) = fit_to_budget(&t, 0, &tok, 1).unwrap();
    assert_eq!(min, 6);
    for want in [6usize, 7, 10, 25, 46] {
        let (text, len) = fit_to_budget(&t, want, &tok, 1).unwrap();
        assert_eq!(len, want, "{text}");
        assert_eq!(tok.encode(&text).unwrap().len() + 1, len);
        assert!(text.starts_with("<think>\n") && text.ends_with("</answer>"));
        assert!(
            text.contains("so B.\n</think>"),
            "the tail always stays: {text}"
        );
    }
    // Longer than the whole target: the whole target.
    let (text, len) = fit_to_budget(&t, 500, &tok, 1).unwrap();
    assert_eq!((text, len), (full, 46));
    // The kept body is a prefix of words.
    let (text, _) = fit_to_budget(&t, 12, &tok, 1).unwrap();
    assert!(text.contains("w1 w2 w3 w4 w5 w6 so B."), "{text}");
}

#[test]
fn step_scaffold_plans_and_counts_its_steps_down() {
    let t = target();
    let tok = word_tokenizer(&[&t.render(&t.body)]);
    // Fixed: "<think>" "Plan:" "K" "steps." "so" "B." "</think>" "<answer>B</answer>" + EOS = 9;
    // each step of 8 words adds its label "[r]" and its words = 9.
    for (want, fit, k) in [
        (0usize, StepFit::Under, 0usize),
        (9, StepFit::Under, 0),
        (17, StepFit::Under, 0),
        (18, StepFit::Under, 1),
        (35, StepFit::Under, 2),
        (36, StepFit::Under, 3),
        (54, StepFit::Under, 5),
        (500, StepFit::Under, 5),
        (0, StepFit::Nearest, 0),
        (13, StepFit::Nearest, 0),
        (14, StepFit::Nearest, 1),
        (30, StepFit::Nearest, 2),
        (32, StepFit::Nearest, 3),
        (500, StepFit::Nearest, 5),
    ] {
        let (text, len, steps) = fit_steps_to_budget(&t, "", want, fit, 8, &tok, 1).unwrap();
        assert_eq!(steps, k, "want {want} ({fit:?}): {text}");
        assert_eq!(len, 9 + 9 * k, "{text}");
        assert_eq!(tok.encode(&text).unwrap().len() + 1, len);
        let plan = if k == 1 {
            "Plan: 1 step.".to_string()
        } else {
            format!("Plan: {k} steps.")
        };
        assert!(text.starts_with(&format!("<think>\n{plan}")), "{text}");
        assert!(
            text.ends_with("so B.\n</think>\n<answer>B</answer>"),
            "{text}"
        );
        // Labels count the steps left, down to [1], after which comes the conclusion.
        let labels: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix('[').and_then(|l| l.split(']').next()))
            .map(str::to_string)
            .collect();
        let down: Vec<String> = (1..=k).rev().map(|r| r.to_string()).collect();
        assert_eq!(labels, down, "{text}");
    }
    let (text, _, _) = fit_steps_to_budget(&t, "", 36, StepFit::Under, 8, &tok, 1).unwrap();
    assert!(
        text.contains("\n[2] w9 w10 w11 w12 w13 w14 w15 w16\n[1] w17"),
        "{text}"
    );
    assert!(text.contains("w24\nso B."), "{text}");
    // A header replaces "Plan".
    let (text, _, _) =
        fit_steps_to_budget(&t, "Budget 36", 36, StepFit::Nearest, 8, &tok, 1).unwrap();
    assert!(
        text.starts_with("<think>\nBudget 36: 3 steps.\n[3] w1"),
        "{text}"
    );
}

#[test]
fn step_scaffold_reviews_options_before_the_case() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "mcq.json", mcq_items(1));
    let loaded = medu1_data::load_path(&p, &Default::default()).unwrap();
    let t = scaffold_target(&loaded.samples[0]).unwrap();
    assert!(
        t.body.starts_with(
            "Option A, alpha drug, fits them less well. Option B, beta drug, fits the findings best. The case: finding0 finding1"
        ),
        "{}",
        t.body
    );
    assert!(!t.body.contains("<Context>") && !t.body.contains("<Question>"));
    assert!(t.body.ends_with("Which one?"), "{}", t.body);
    assert_eq!(t.tail, "So B.");
    assert_eq!(t.answer, "<answer>B</answer>");
}

fn write(dir: &std::path::Path, name: &str, v: serde_json::Value) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    p
}

fn mcq_items(k: usize) -> serde_json::Value {
    let case = (0..60)
        .map(|i| format!("finding{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    serde_json::Value::Array(
        (0..k)
            .map(|i| {
                serde_json::json!({
                    "Source": "MedIQ", "id": format!("{i}"),
                    "problem": format!("<Context>{case}</Context> <Question>Which one?</Question>"),
                    "problem_type": "multiple choice",
                    "options": {"A": "alpha drug", "B": "beta drug"},
                    "answer": "B", "solution": "beta drug"
                })
            })
            .collect(),
    )
}

#[test]
fn multiple_choice_reasoning_reviews_case_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "mcq.json", mcq_items(1));
    let loaded = medu1_data::load_path(&p, &Default::default()).unwrap();
    let t = length_target(&loaded.samples[0]).unwrap();
    assert!(t.body.contains("finding0 finding1"), "{}", t.body);
    assert!(!t.body.contains("<Context>"));
    assert!(
        t.body
            .contains("Option A, alpha drug, fits them less well.")
    );
    assert!(
        t.body
            .contains("Option B, beta drug, fits the findings best.")
    );
    assert_eq!(t.tail, "The best supported choice is option B, beta drug.");
    assert_eq!(t.answer, "<answer>B</answer>");
}

#[test]
fn budget_fitted_warmup_prompts_state_their_targets_length() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "mcq.json", mcq_items(40));
    let loaded = medu1_data::load_path(&p, &Default::default()).unwrap();
    let full = length_target(&loaded.samples[0]).unwrap();
    let tok = word_tokenizer(&[
        &full.render(&full.body),
        "Think for maximum tokens. Answer the following multiple choice question.",
        "Budget: at most tokens. Plan: step. steps. The best supported choice is option B. Budget Max So B.",
    ]);
    let mut cfg = SftConfig {
        fit_budget: true,
        max_seq_tokens: 100_000,
        data: DataConfig {
            budget: "both-both".into(),
            budget_range: medu1_data::BudgetRange {
                min: 12,
                max: 60,
                dist: medu1_data::BudgetDist::Uniform,
            },
            chat_template: "chatml".into(),
            ..DataConfig::default()
        },
        ..SftConfig::default()
    };
    let files = [DataFile {
        path: p.clone(),
        weight: 1.0,
        limit: None,
        skip: 0,
    }];
    let renderer = PromptRenderer::new(&cfg.data, "", &tok).unwrap();
    let (examples, dropped) = load_examples(&files, &cfg, &renderer).unwrap();
    assert_eq!((examples.len(), dropped), (40, 0));
    let (mut exact, mut max) = (0, 0);
    let mut lengths = Vec::new();
    for e in &examples {
        let prompt = tok.decode(&e.prompt, false).unwrap();
        let words: Vec<&str> = prompt.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| *w == "Think")
            .expect("a budget sentence");
        let len = e.response.len();
        lengths.push(len);
        if words[at + 2] == "maximum" {
            let m: usize = words[at + 3].parse().unwrap();
            assert!(len <= m, "max {m}, target {len}");
            assert!(len as f64 >= 0.6 * m as f64 - 1.0, "max {m}, target {len}");
            max += 1;
        } else {
            let n: usize = words[at + 2].parse().unwrap();
            assert_eq!(len, n, "exact budget = the target's length");
            exact += 1;
        }
    }
    assert!(exact > 5 && max > 5, "both modes drawn: {exact} {max}");
    assert!(lengths.iter().min() < lengths.iter().max());
    // Reproducible from the seed, different with another.
    let (again, _) = load_examples(&files, &cfg, &renderer).unwrap();
    assert!(
        again
            .iter()
            .zip(&examples)
            .all(|(a, b)| a.prompt == b.prompt && a.response == b.response)
    );
    cfg.seed += 1;
    let (other, _) = load_examples(&files, &cfg, &renderer).unwrap();
    assert!(
        other
            .iter()
            .zip(&examples)
            .any(|(a, b)| a.response != b.response)
    );
    // Copies: every item several times with budgets of their own; skip/limit count items.
    cfg.seed -= 1;
    cfg.budget_copies = 3;
    let sliced = [DataFile {
        skip: 10,
        limit: Some(5),
        ..files[0].clone()
    }];
    let (copies, _) = load_examples(&sliced, &cfg, &renderer).unwrap();
    assert_eq!(copies.len(), 15);
    let distinct: std::collections::HashSet<&Vec<u32>> =
        copies.iter().map(|e| &e.response).collect();
    assert!(
        distinct.len() > 5,
        "copies differ in length: {}",
        distinct.len()
    );
    // The steps scaffold: every target opens with its plan and still matches its budget.
    cfg.budget_copies = 1;
    cfg.budget_scaffold = BudgetScaffold::Steps;
    cfg.step_tokens = 8;
    let (steps, dropped) = load_examples(&files, &cfg, &renderer).unwrap();
    assert_eq!((steps.len(), dropped), (40, 0));
    let mut plans = std::collections::HashSet::new();
    for e in &steps {
        let prompt = tok.decode(&e.prompt, false).unwrap();
        let words: Vec<&str> = prompt.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "Think").unwrap();
        let response = tok.decode(&e.response, false).unwrap();
        let head: Vec<&str> = response.split_whitespace().take(4).collect();
        let len = e.response.len();
        let k: usize = head[3].parse().unwrap();
        plans.insert(k);
        // The think block opens with the prompt's budget, then plans.
        if words[at + 2] == "maximum" {
            let m = words[at + 3];
            assert_eq!(
                head[..3],
                ["<think>", "Max", &format!("{m}:")],
                "{response}"
            );
            assert!(len <= m.parse::<usize>().unwrap(), "{response}");
        } else {
            let n = words[at + 2];
            assert_eq!(
                head[..3],
                ["<think>", "Budget", &format!("{n}:")],
                "{response}"
            );
            // Within half a step (9 tokens here) of the budget, which stays as drawn, unless
            // even no step at all is longer.
            let n: usize = n.parse().unwrap();
            assert!(
                len.abs_diff(n) <= 5 || (k == 0 && len > n),
                "{n}: {response}"
            );
        }
        let labels: Vec<&str> = response
            .split_whitespace()
            .filter(|w| w.starts_with('['))
            .collect();
        let down: Vec<String> = (1..=k).rev().map(|r| format!("[{r}]")).collect();
        assert_eq!(labels, down, "{response}");
        // The plan's step count is the emphasised token (plan_weight).
        assert_eq!(e.emphasis.len(), 1, "{response}");
        let count = tok.decode(&e.response[e.emphasis.clone()], false).unwrap();
        assert_eq!(count, k.to_string(), "{response}");
    }
    assert!(plans.len() >= 3, "budgets give different plans: {plans:?}");
    // A budget mode that draws nothing cannot fit anything.
    cfg.data.budget = "keep".into();
    assert!(load_examples(&files, &cfg, &renderer).is_err());
}

#[test]
fn truncated_rows_carry_no_gradient() {
    let dev = Device::Cpu;
    let lp =
        Var::from_tensor(&Tensor::new(&[[-1.0f32, -2.0, -0.5], [-0.3, -0.7, -1.1]], &dev).unwrap())
            .unwrap();
    let old = lp.as_tensor().detach();
    let adv = Tensor::new(&[[1.0f32, 1.0, 1.0], [-2.0, -2.0, -2.0]], &dev).unwrap();
    let mask = Tensor::new(&[[1.0f32, 1.0, 1.0], [1.0, 1.0, 0.0]], &dev).unwrap();
    let kept = keep_rows(&mask, &[true, false]).unwrap();
    assert_eq!(
        kept.to_vec2::<f32>().unwrap(),
        vec![vec![1.0, 1.0, 1.0], vec![0.0, 0.0, 0.0]]
    );
    let clip = ClipRange {
        low: 0.2,
        high: 0.2,
    };
    let pl = policy_loss_over(
        &old,
        lp.as_tensor(),
        &adv,
        &kept,
        clip,
        LossAgg::TokenMean,
        3,
        Divisor::of(&kept).unwrap(),
    )
    .unwrap();
    // Token mean over the 3 kept tokens of -A * ratio (ratio 1): -1.
    assert!((pl.loss.to_scalar::<f32>().unwrap() + 1.0).abs() < 1e-6);
    let g = pl.loss.backward().unwrap();
    let g = g.get(lp.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
    // d/dlogp of -A * exp(logp - old) / 3 at ratio 1: -A / 3 on kept tokens, 0 elsewhere.
    for v in &g[0] {
        assert!((v + 1.0 / 3.0).abs() < 1e-6, "{g:?}");
    }
    assert_eq!(g[1], vec![0.0, 0.0, 0.0]);
    // Nothing kept: a zero loss, not NaN.
    let none = keep_rows(&mask, &[false, false]).unwrap();
    let pl = policy_loss_over(
        &old,
        lp.as_tensor(),
        &adv,
        &none,
        clip,
        LossAgg::TokenMean,
        3,
        Divisor::of(&none).unwrap(),
    )
    .unwrap();
    assert_eq!(pl.loss.to_scalar::<f32>().unwrap(), 0.0);
}

fn scored(length: usize, reward: f64) -> Scored {
    Scored {
        completion: Completion {
            text: String::new(),
            token_ids: vec![0; length],
            logprobs: Vec::new(),
            finish: FinishReason::Stop,
        },
        length,
        reward,
        correct: false,
        format_ok: true,
        error: false,
    }
}

#[test]
fn budget_buckets_report_length_adherence_and_reward() {
    assert_eq!(budget_bucket(32), "32-63");
    assert_eq!(budget_bucket(63), "32-63");
    assert_eq!(budget_bucket(64), "64-127");
    assert_eq!(budget_bucket(256), "256-511");
    let s = [
        scored(40, 1.0),  // exact 40: rel 0
        scored(60, 0.0),  // exact 50: rel 0.2 (within)
        scored(100, 2.0), // exact 70: rel 3/7
        scored(30, 1.0),  // max 64: under
        scored(90, -1.0), // max 80: over
        scored(10, 5.0),  // no budget: no bucket
    ];
    let budgets = [
        Budget::Exact(40).num_tokens(),
        Budget::Exact(50).num_tokens(),
        Budget::Exact(70).num_tokens(),
        Budget::Maximum(64).num_tokens(),
        Budget::Maximum(80).num_tokens(),
        -1,
    ];
    let mut rec = Default::default();
    budget_bucket_metrics("train", &s, &budgets, &mut rec);
    let get = |k: &str| *rec.get(k).unwrap_or_else(|| panic!("{k} missing: {rec:?}"));
    assert_eq!(get("train/budget/exact/32-63/response_len"), 50.0);
    assert_eq!(get("train/budget/exact/32-63/rel_error"), 0.1);
    assert_eq!(get("train/budget/exact/32-63/adherence"), 1.0);
    assert_eq!(get("train/budget/exact/32-63/reward"), 0.5);
    assert_eq!(get("train/budget/exact/64-127/adherence"), 0.0);
    assert!((get("train/budget/exact/64-127/rel_error") - 30.0 / 70.0).abs() < 1e-12);
    assert_eq!(get("train/budget/max/64-127/adherence"), 0.5);
    assert_eq!(get("train/budget/max/64-127/response_len"), 60.0);
    assert!(!rec.contains_key("train/budget/max/64-127/rel_error"));
    assert_eq!(rec.len(), 4 + 4 + 3);
}

#[test]
fn the_plans_step_count_is_found_in_the_response() {
    use medu1_rl::sft::plan_span;
    for (text, want) in [
        ("<think>\nBudget 128: 3 steps.\n[3] a", Some("3")),
        ("<think>\nMax 64: 1 step.\n[1] a", Some("1")),
        ("<think>\nPlan: 12 steps.\n[12] a", Some("12")),
        ("<think>\nBudget 128: three steps.\n", None),
        ("<think>\nThe case: 3 steps.\nno", Some("3")),
        ("Budget 128: 3 steps.", None),
        ("<think>\nBudget 128: 3 stops.", None),
    ] {
        let got = plan_span(text).map(|r| &text[r]);
        assert_eq!(got, want, "{text}");
    }
}
