//! Grading one response: Med-U1's rules through the reward crate by default, and the benchmarks'
//! own published rules where they differ, so a number can be compared with a leaderboard.
//!
//! The Med-U1 rules grade the full decoded sequence (prompt + response: the extractor splits on
//! the assistant header), exactly as the reference does; the official rules read the response
//! only, as the benchmarks' scripts do. Every verdict names its rule, which the report prints.

use std::sync::LazyLock;

use medu1_core::{Sample, Task, TaskKind};
use medu1_reward::{
    CALC_SOURCE, EvalMetric, FREE_TEXT_SOURCE, Input, Limit, MCQ_SOURCES, Profile, check_format,
    eval_response, eval_score, extract_solution_eval, py_float, train_score, val_score,
};
use regex::Regex;

use crate::backend::Generation;

/// Which grading rules a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rule {
    /// Med-U1's offline evaluation (`extract_solution_eval`, letter / limit match); free text by
    /// the validation rule (Merge > threshold), since the evaluation script has no 0/1 for it.
    #[default]
    MedU1,
    /// Med-U1's validation rule (`val_score`) for everything: what the trainer logs.
    MedU1Val,
    /// The benchmark's official rule where one is implemented (MMLU-Pro, MedXpertQA,
    /// MedCalc-Bench), else [`Rule::MedU1`].
    Official,
}

impl std::str::FromStr for Rule {
    type Err = crate::EvalError;
    fn from_str(s: &str) -> Result<Rule, crate::EvalError> {
        match s {
            "medu1" | "medu1-eval" => Ok(Rule::MedU1),
            "medu1-val" | "val" => Ok(Rule::MedU1Val),
            "official" => Ok(Rule::Official),
            _ => Err(crate::EvalError::UnknownRule(s.to_string())),
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rule::MedU1 => "medu1",
            Rule::MedU1Val => "medu1-val",
            Rule::Official => "official",
        })
    }
}

/// The concrete rule applied to one sample, named in the report.
pub fn rule_name(rule: Rule, sample: &Sample) -> &'static str {
    match (rule, sample.kind()) {
        (Rule::Official, _) if sample.source == "MMLU-Pro" => "mmlu-pro-official",
        (Rule::Official, TaskKind::MultipleChoice) if sample.source == "MedXpertQA" => {
            "medxpertqa-letter"
        }
        (Rule::Official, TaskKind::Calculation) => "medcalc-official",
        (Rule::MedU1Val, TaskKind::MultipleChoice) => "medu1-val letter",
        (Rule::MedU1Val, TaskKind::Calculation) => "medu1-val limits",
        (Rule::MedU1Val, TaskKind::FreeText) => "medu1-val merge",
        (_, TaskKind::MultipleChoice) => "medu1-eval letter",
        (_, TaskKind::Calculation) => "medu1-eval limits",
        (_, TaskKind::FreeText) => "medu1-val merge",
    }
}

/// The verdict on one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub correct: bool,
    /// The answer the rule extracted (`None`: nothing found).
    pub extracted: Option<String>,
    /// Med-U1's `<think>…</think><answer>…</answer>` format rule.
    pub format_ok: bool,
    /// The Med-U1 training reward (format + answer + length terms); `None` when the reward crate
    /// rejects the item (e.g. a calculation without limits).
    pub train_reward: Option<f64>,
    /// Why grading failed, if it did (the response then counts as wrong).
    pub error: Option<String>,
}

/// The data source the reward crate dispatches on: benchmarks outside Med-U1's training mix are
/// graded by the rule of their task kind (every MCQ source uses the same letter rule).
fn reward_source(sample: &Sample) -> &str {
    match sample.kind() {
        TaskKind::Calculation => CALC_SOURCE,
        TaskKind::FreeText => FREE_TEXT_SOURCE,
        TaskKind::MultipleChoice if MCQ_SOURCES.contains(&sample.source.as_str()) => &sample.source,
        TaskKind::MultipleChoice => "MedIQ",
    }
}

fn limits(sample: &Sample) -> (Limit<'_>, Limit<'_>) {
    match &sample.task {
        Task::Calculation {
            lower_limit,
            upper_limit,
            ..
        } => (
            lower_limit.as_deref().map_or(Limit::Missing, Limit::Str),
            upper_limit.as_deref().map_or(Limit::Missing, Limit::Str),
        ),
        _ => (Limit::Missing, Limit::Missing),
    }
}

/// Grades `generation` for `sample`, whose templated prompt was `prompt`; the response length and
/// `num_tokens` (the budget, −1: none) feed the training reward.
pub fn grade(
    rule: Rule,
    profile: &Profile,
    sample: &Sample,
    ground_truth: &str,
    prompt: &str,
    generation: &Generation,
    num_tokens: i64,
) -> Verdict {
    let (response, tokens) = (generation.text.as_str(), generation.tokens);
    let solution = format!("{prompt}{response}");
    let (lower_limit, upper_limit) = limits(sample);
    let input = Input {
        data_source: reward_source(sample),
        solution_str: &solution,
        ground_truth,
        lower_limit,
        upper_limit,
        num_tokens,
        valid_response_length: tokens as f64,
    };
    let ext = extract_solution_eval(&solution);
    let format_ok = check_format(ext.processed).is_valid();
    let train_reward = train_score(profile, &input).ok();
    let med_extracted = ext.answer.map(str::to_string);
    let (correct, extracted, error) = match (rule, sample.kind()) {
        (Rule::Official, _) if sample.source == "MMLU-Pro" => {
            let a = mmlu_pro_extract(response);
            (a.as_deref() == Some(ground_truth), a, None)
        }
        (Rule::Official, TaskKind::MultipleChoice) if sample.source == "MedXpertQA" => {
            let a = medxpertqa_extract(response);
            (a.as_deref() == Some(ground_truth), a, None)
        }
        (Rule::Official, TaskKind::Calculation) => {
            let a = med_extracted.clone();
            match medcalc_official(a.as_deref(), ground_truth, lower_limit, upper_limit) {
                Ok(ok) => (ok, a, None),
                Err(e) => (false, a, Some(e.to_string())),
            }
        }
        (Rule::MedU1Val, _) | (_, TaskKind::FreeText) => match val_score(profile, &input) {
            Ok(v) => (v > 0.5, med_extracted, None),
            Err(e) => (false, med_extracted, Some(e.to_string())),
        },
        (_, TaskKind::MultipleChoice) => {
            let r = eval_response(&solution);
            (r.generated == ground_truth, med_extracted, None)
        }
        (_, TaskKind::Calculation) => match eval_score(&input, EvalMetric::Ems) {
            Ok(v) => (v > 0.5, med_extracted, None),
            Err(e) => (false, med_extracted, Some(e.to_string())),
        },
    };
    Verdict {
        correct,
        extracted,
        format_ok,
        train_reward,
        error,
    }
}

static MMLU_PRO_1: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"answer is \(?([A-J])\)?").expect("valid regex"));
static MMLU_PRO_2: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r".*[aA]nswer:\s*([A-J])").expect("valid regex"));
static LETTER_A_J: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-J]\b").expect("valid regex"));
static ANSWER_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<answer>(.*?)</answer>").expect("valid regex"));
static LETTER_A_Z: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([A-Z])\b").expect("valid regex"));
static ANSWER_IS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)answer(?: is|:)\s*\**\(?([A-Z])\)?\b").expect("valid regex"));

/// MMLU-Pro's `extract_answer` (evaluate_from_api.py): `answer is (X)`, else the first line's
/// last `answer: X`, else the last standalone letter A–J (the `(?!.*\b[A-J]\b)` look-ahead).
pub fn mmlu_pro_extract(text: &str) -> Option<String> {
    if let Some(c) = MMLU_PRO_1.captures(text) {
        return Some(c[1].to_string());
    }
    if let Some(c) = MMLU_PRO_2.captures(text) {
        return Some(c[1].to_string());
    }
    LETTER_A_J
        .find_iter(text)
        .last()
        .map(|m| m.as_str().to_string())
}

/// MedXpertQA letter extraction: the letter in the last `<answer>` block, else `answer is (X)` /
/// `answer: X`, else the last standalone capital letter. (The benchmark grades the option letter;
/// this follows its evaluation's order of patterns for a model prompted with answer tags.)
pub fn medxpertqa_extract(text: &str) -> Option<String> {
    if let Some(c) = ANSWER_TAG.captures_iter(text).last()
        && let Some(m) = LETTER_A_Z.captures(&c[1])
    {
        return Some(m[1].to_string());
    }
    if let Some(c) = ANSWER_IS.captures_iter(text).last() {
        return Some(c[1].to_string());
    }
    LETTER_A_Z
        .captures_iter(text)
        .last()
        .map(|c| c[1].to_string())
}

/// MedCalc-Bench's `check_correctness` by output type: dates compare as dates (`1/5/2020` equals
/// `01/05/2020`), gestational age as (weeks, days), integer scores (equal limits, integral
/// answer) after rounding the answer, decimals within the inclusive limits.
pub fn medcalc_official(
    answer: Option<&str>,
    ground_truth: &str,
    lower: Limit<'_>,
    upper: Limit<'_>,
) -> Result<bool, medu1_reward::RewardError> {
    let Some(answer) = answer.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(false);
    };
    let gt = ground_truth.trim();
    if gt.starts_with('(') {
        return Ok(numbers(answer) == numbers(gt) && numbers(gt).len() == 2);
    }
    if gt.contains('/') {
        return Ok(parse_date(answer).is_some() && parse_date(answer) == parse_date(gt));
    }
    let Some(value) = first_number(answer) else {
        return Ok(false);
    };
    let lo = lower.to_f64(medu1_reward::LimitSide::LowerLimit)?;
    let hi = upper.to_f64(medu1_reward::LimitSide::UpperLimit)?;
    let integral_gt = py_float(gt).is_ok_and(|g| g.fract() == 0.0) && !gt.contains('.');
    if lo == hi && integral_gt {
        Ok(value.round() == lo)
    } else {
        Ok(lo <= value && value <= hi)
    }
}

static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-?\d+(?:\.\d+)?").expect("valid regex"));

fn numbers(s: &str) -> Vec<f64> {
    NUMBER
        .find_iter(s)
        .filter_map(|m| m.as_str().parse().ok())
        .collect()
}

fn first_number(s: &str) -> Option<f64> {
    py_float(s)
        .ok()
        .or_else(|| NUMBER.find(s).and_then(|m| m.as_str().parse().ok()))
}

fn parse_date(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.trim().split('/').map(|p| p.trim().parse::<u32>());
    let (m, d, y) = (it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?);
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some((m, d, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmlu_pro_patterns_in_order() {
        assert_eq!(mmlu_pro_extract("so the answer is (C)."), Some("C".into()));
        assert_eq!(
            mmlu_pro_extract("Answer: B\nthen Answer: D"),
            Some("B".into())
        );
        assert_eq!(mmlu_pro_extract("A or maybe E, we think"), Some("E".into()));
        assert_eq!(mmlu_pro_extract("no letters here"), None);
    }

    #[test]
    fn medxpertqa_prefers_answer_tags() {
        assert_eq!(
            medxpertqa_extract("I pick B. <answer>(D)</answer>"),
            Some("D".into())
        );
        assert_eq!(
            medxpertqa_extract("The answer is (H) clearly"),
            Some("H".into())
        );
    }

    #[test]
    fn medcalc_official_by_output_type() {
        let l = |s| Limit::Str(s);
        assert_eq!(
            medcalc_official(
                Some("1/5/2020"),
                "01/05/2020",
                Limit::Missing,
                Limit::Missing
            ),
            Ok(true)
        );
        assert_eq!(
            medcalc_official(
                Some("(17 weeks, 6 days)"),
                "('17 weeks', '6 days')",
                Limit::Missing,
                Limit::Missing
            ),
            Ok(true)
        );
        assert_eq!(medcalc_official(Some("3.4"), "3", l("3"), l("3")), Ok(true));
        assert_eq!(
            medcalc_official(Some("3.6"), "3", l("3"), l("3")),
            Ok(false)
        );
        assert_eq!(
            medcalc_official(Some("25.0 mL/min"), "25.238", l("23.9761"), l("26.4999")),
            Ok(true)
        );
        assert_eq!(medcalc_official(None, "25.238", l("1"), l("2")), Ok(false));
    }
}
