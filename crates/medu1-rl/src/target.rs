//! Warm-up targets: the response a sample is taught to give. Reasoning comes from the data
//! (medical-o1 chains, MedCalc-Bench explanations) or, for multiple choice, which ships none, a
//! review of the options and the case; budget-aware targets are fitted to a token budget by
//! cutting the reasoning (`cut`) or by the `steps` scaffold.

use medu1_core::{Sample, Task, TaskKind};
use medu1_model::Tokenizer;

/// The supervised target for a sample, or `None` when the data carries nothing to imitate.
pub fn sft_target(s: &Sample) -> Option<String> {
    let clean = |t: &str| {
        t.replace("<think>", "")
            .replace("</think>", "")
            .trim()
            .to_string()
    };
    match (&s.task, s.kind()) {
        (_, TaskKind::FreeText) => {
            let cot = clean(s.reasoning.as_deref()?);
            Some(format!(
                "<think>\n{cot}\n</think>\n<answer>\n{}\n</answer>",
                s.answer.trim()
            ))
        }
        (Task::Calculation { .. }, _) => {
            let expl = s.extra.get("Ground Truth Explanation")?.as_str()?;
            Some(format!(
                "<think>\n{}\n</think>\n<answer>{}</answer>",
                expl.trim(),
                s.answer.trim()
            ))
        }
        (Task::MultipleChoice { options }, _) => {
            let letter = s.answer.trim();
            let text = options
                .iter()
                .find(|c| c.letter == letter)
                .map(|c| c.text.clone())
                .or_else(|| {
                    s.extra
                        .get("solution")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            let named = if text.is_empty() {
                format!("option {letter}")
            } else {
                format!("option {letter}, {}", text.trim())
            };
            Some(format!(
                "<think>\nLet me weigh each option against the findings in the question. \
                 The best supported choice is {named}.\n</think>\n<answer>{letter}</answer>"
            ))
        }
        _ => None,
    }
}

/// A supervised target in three parts: reasoning that may be shortened (`body`), the reasoning's
/// conclusion that always stays (`tail`), and the answer block.
#[derive(Debug, Clone, PartialEq)]
pub struct LengthTarget {
    pub body: String,
    pub tail: String,
    pub answer: String,
}

impl LengthTarget {
    /// The response text with the body cut to `body` (a prefix of `self.body`).
    pub fn render(&self, body: &str) -> String {
        let think = match (body.is_empty(), self.tail.is_empty()) {
            (true, _) => self.tail.clone(),
            (false, true) => body.to_string(),
            (false, false) => format!("{body} {}", self.tail),
        };
        format!("<think>\n{think}\n</think>\n{}", self.answer)
    }
}

/// [`sft_target`] split for length fitting. Multiple choice, which ships no reasoning, reviews
/// the case and then every option, so that its reasoning can be as long as a budget asks.
pub fn length_target(s: &Sample) -> Option<LengthTarget> {
    let clean = plain_text;
    match (&s.task, s.kind()) {
        (_, TaskKind::FreeText) => Some(LengthTarget {
            body: clean(s.reasoning.as_deref()?),
            tail: String::new(),
            answer: format!("<answer>\n{}\n</answer>", s.answer.trim()),
        }),
        (Task::Calculation { .. }, _) => {
            let expl = clean(s.extra.get("Ground Truth Explanation")?.as_str()?);
            // The last sentence states the result: it stays whatever the budget.
            let trimmed = expl.trim_end_matches('.');
            let (body, tail) = match trimmed.rfind(". ") {
                Some(i) => (
                    expl[..=i].trim().to_string(),
                    expl[i + 1..].trim().to_string(),
                ),
                None => (String::new(), expl.clone()),
            };
            Some(LengthTarget {
                body,
                tail,
                answer: format!("<answer>{}</answer>", s.answer.trim()),
            })
        }
        (Task::MultipleChoice { options }, _) => {
            let letter = s.answer.trim();
            let text_of = |l: &str| {
                options
                    .iter()
                    .find(|c| c.letter == l)
                    .map(|c| c.text.trim().to_string())
                    .unwrap_or_default()
            };
            let mut body = format!(
                "Let me weigh each option against the findings in the question. The case: {}",
                clean(&s.question)
            );
            body.push(' ');
            body.push_str(&option_review(options, letter));
            let named = match text_of(letter) {
                t if t.is_empty() => format!("option {letter}"),
                t => format!("option {letter}, {t}"),
            };
            Some(LengthTarget {
                body,
                tail: format!("The best supported choice is {named}."),
                answer: format!("<answer>{letter}</answer>"),
            })
        }
        _ => None,
    }
}

/// Cuts `target`'s body so that the response (with `eos` end-of-sequence tokens after it, as
/// the length term counts it) has about `tokens` tokens, at a word boundary, and returns the response text
/// and its exact token count. A target whose fixed parts alone are longer stays at its minimum;
/// one whose whole reasoning is shorter stays whole.
pub fn fit_to_budget(
    target: &LengthTarget,
    tokens: usize,
    tok: &Tokenizer,
    eos: usize,
) -> medu1_model::Result<(String, usize)> {
    let count = |t: &str| -> medu1_model::Result<usize> { Ok(tok.encode(t)?.len() + eos) };
    let full = target.render(&target.body);
    let full_len = count(&full)?;
    if full_len <= tokens || target.body.is_empty() {
        return Ok((full, full_len));
    }
    let fixed = count(&target.render(""))?;
    let body_ids = tok.encode(&target.body)?;
    // Token boundaries shift a little when the text around them changes: start from the
    // arithmetic guess and step down until the whole response fits.
    let mut keep = tokens.saturating_sub(fixed).min(body_ids.len());
    loop {
        let text = if keep == 0 {
            String::new()
        } else {
            let cut = tok.decode(&body_ids[..keep], true)?;
            // End on a whole word: the cut is one when the next token starts a new word.
            let next = tok.decode(&body_ids[..(keep + 1).min(body_ids.len())], true)?;
            let at_boundary = keep == body_ids.len()
                || next
                    .get(cut.len()..)
                    .is_some_and(|rest| rest.starts_with(char::is_whitespace));
            let cut = cut.trim_end();
            match cut.rfind(char::is_whitespace) {
                Some(i) if !at_boundary => cut[..i].trim_end().to_string(),
                _ => cut.to_string(),
            }
        };
        let response = target.render(&text);
        let n = count(&response)?;
        if n <= tokens || keep == 0 {
            return Ok((response, n));
        }
        keep = keep.saturating_sub((n - tokens).max(1));
    }
}

/// "Option A, ..., fits them less well. Option B, ..., fits the findings best. ..."
fn option_review(options: &[medu1_core::Choice], letter: &str) -> String {
    let review: Vec<String> = options
        .iter()
        .map(|c| {
            let verdict = if c.letter == letter {
                "fits the findings best"
            } else {
                "fits them less well"
            };
            format!("Option {}, {}, {verdict}.", c.letter, c.text.trim())
        })
        .collect();
    review.join(" ")
}

/// Text without reasoning or question markup, whitespace collapsed.
fn plain_text(t: &str) -> String {
    let mut t = t.to_string();
    for tag in [
        "<think>",
        "</think>",
        "<Context>",
        "</Context>",
        "<Question>",
        "</Question>",
    ] {
        t = t.replace(tag, " ");
    }
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`length_target`] arranged for the `steps` scaffold. Multiple choice reviews the options
/// first and the case after them, so that a short budget still weighs the options rather than
/// restating the case, and concludes with the letter only ("So C."), so that the shortest
/// response, with its plan line, stays within a 32-token budget.
pub fn scaffold_target(s: &Sample) -> Option<LengthTarget> {
    let Task::MultipleChoice { options } = &s.task else {
        return length_target(s);
    };
    let letter = s.answer.trim();
    let mut body = option_review(options, letter);
    body.push(' ');
    let case = plain_text(&s.question);
    if !case.is_empty() {
        body.push_str("The case: ");
        body.push_str(&case);
    }
    Some(LengthTarget {
        body: body.trim().to_string(),
        tail: format!("So {letter}."),
        answer: format!("<answer>{letter}</answer>"),
    })
}

/// Which step count [`fit_steps_to_budget`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepFit {
    /// The most steps whose response stays at or under the budget (a maximum budget).
    Under,
    /// The step count whose response length is nearest the budget, the shorter on a tie (an
    /// exact budget: the error is at most half a step either way).
    Nearest,
}

/// The `steps` scaffold. The think block opens with `header` and the plan ("Budget 128: 3
/// steps.", or "Plan: 3 steps." when `header` is empty), then `target`'s body split at word
/// boundaries into steps of about `step_tokens` tokens, each labelled with the steps left
/// counting down ("[3] ...", "[2] ...", "[1] ..."), then the conclusion. Counting down makes the
/// model's stopping decision local: after the step labelled "[1]" comes the conclusion, which
/// needs no comparison with a number written earlier (labels counting up, "Step 2/4", taught
/// the 135M model its plan but not to stop after step 1 of several: Spearman 0.43).
///
/// Keeps the step count `fit` picks for `tokens` response tokens (with `eos` end-of-sequence
/// tokens after it) and returns the response text, its exact token count and the step count.
pub fn fit_steps_to_budget(
    target: &LengthTarget,
    header: &str,
    tokens: usize,
    fit: StepFit,
    step_tokens: usize,
    tok: &Tokenizer,
    eos: usize,
) -> medu1_model::Result<(String, usize, usize)> {
    let mut steps: Vec<String> = Vec::new();
    let (mut cur, mut cur_len) = (String::new(), 0);
    for w in target.body.split_whitespace() {
        let n = tok.encode(&format!(" {w}"))?.len();
        if cur_len > 0 && cur_len + n > step_tokens {
            steps.push(std::mem::take(&mut cur));
            cur_len = 0;
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
        cur_len += n;
    }
    if !cur.is_empty() {
        steps.push(cur);
    }
    let render = |k: usize| {
        let plural = if k == 1 { "" } else { "s" };
        let mut think = if header.is_empty() {
            format!("Plan: {k} step{plural}.")
        } else {
            format!("{header}: {k} step{plural}.")
        };
        for (i, c) in steps[..k].iter().enumerate() {
            think.push_str(&format!("\n[{}] {c}", k - i));
        }
        if !target.tail.is_empty() {
            think.push('\n');
            think.push_str(&target.tail);
        }
        format!("<think>\n{think}\n</think>\n{}", target.answer)
    };
    let count = |t: &str| -> medu1_model::Result<usize> { Ok(tok.encode(t)?.len() + eos) };
    let text = render(0);
    let n = count(&text)?;
    let mut best = (text, n, 0);
    for k in 1..=steps.len() {
        let text = render(k);
        let n = count(&text)?;
        let better = match fit {
            StepFit::Under => n <= tokens,
            StepFit::Nearest => n.abs_diff(tokens) < best.1.abs_diff(tokens),
        };
        if !better {
            // Lengths grow with k: neither rule can prefer a later count once one fails.
            break;
        }
        best = (text, n, k);
    }
    Ok(best)
}

/// The byte range of the step count in a `steps` scaffold's plan line ("3" in "<think>\nBudget
/// 128: 3 steps." or "<think>\nPlan: 1 step."), or `None` when the response has no plan.
pub fn plan_span(response: &str) -> Option<std::ops::Range<usize>> {
    let start = response
        .strip_prefix("<think>\n")
        .map(|_| "<think>\n".len())?;
    let line = response[start..].lines().next()?;
    let colon = line.find(": ")? + 2;
    let digits = line[colon..].bytes().take_while(u8::is_ascii_digit).count();
    let rest = &line[colon + digits..];
    (digits > 0 && (rest.starts_with(" step.") || rest.starts_with(" steps.")))
        .then(|| start + colon..start + colon + digits)
}
