//! Per-format loader tests on the tiny fixtures in `tests/fixtures/` (EHRNoteQA's is synthetic).

use medu1_core::{Budget, CalcOutput, Task, TaskKind};
use medu1_data::load::{Format, LoadOptions, detect_format, load_path};
use medu1_data::prompt::{PromptBuilder, Variant};
use std::path::PathBuf;

fn fx(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(name: &str) -> medu1_data::Loaded {
    load_path(fx(name), &LoadOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn letters(t: &Task) -> Vec<String> {
    match t {
        Task::MultipleChoice { options } => options
            .iter()
            .map(|c| format!("{}={}", c.letter, c.text))
            .collect(),
        _ => panic!("not mcq"),
    }
}

#[test]
fn detects_every_fixture_format() {
    for (name, f) in [
        ("medu1_mixed.json", Format::Medu1),
        ("verl_rows.jsonl", Format::Verl),
        ("medcalc.csv", Format::MedCalcCsv),
        ("medcalc_one_shot.json", Format::MedCalcOneShot),
        ("mediq.jsonl", Format::Mediq),
        ("medxpertqa_hf.jsonl", Format::MedXpertQa),
        ("medxpertqa_input.jsonl", Format::MedXpertQa),
        ("mmlu_pro.jsonl", Format::MmluPro),
        ("medqa_input.jsonl", Format::EvalInput),
        ("medmcqa_input.jsonl", Format::EvalInput),
        ("mmlu_input.jsonl", Format::EvalInput),
        ("pubmedqa/ori_pqal.json", Format::PubMedQa),
        ("pubmedqa/test_ground_truth.json", Format::PubMedQaKey),
        ("o1sft.json", Format::MedicalO1Sft),
        ("ehrnoteqa_synthetic.jsonl", Format::EhrNoteQa),
    ] {
        assert_eq!(detect_format(fx(name)).unwrap(), f, "{name}");
    }
}

#[test]
fn medu1_items_all_kinds() {
    let l = load("medu1_mixed.json");
    let s = &l.samples;
    assert_eq!(s.len(), 4);
    assert_eq!(
        (s[0].source.as_str(), s[0].id.as_str(), s[0].answer.as_str()),
        ("MedIQ", "7", "B")
    );
    // `choices` key, source order kept (B before A).
    assert_eq!(letters(&s[1].task), ["B=y", "A=x"]);
    assert_eq!(s[1].id, "1");
    assert_eq!(
        s[2].task,
        Task::Calculation {
            lower_limit: Some("19.0".into()),
            upper_limit: Some("21.0".into()),
            output: CalcOutput::Numeric
        }
    );
    assert_eq!(s[3].kind(), TaskKind::FreeText);
    assert_eq!(s[3].answer, "Because.\n");
    assert_eq!(s[3].reasoning.as_deref(), Some("<think>\nhmm\n</think>\n"));
    // Published script keeps the raw tags.
    let gt = PromptBuilder::new(Variant::PublishedScript)
        .record(&s[3], Budget::None, 3)
        .unwrap();
    assert_eq!(
        gt.reward_model.ground_truth,
        "<answer>\nBecause.\n</answer>\n"
    );
    assert!(s.iter().all(|x| x.split == "test"));
}

#[test]
fn verl_rows_rebuild_exactly() {
    let l = load("verl_rows.jsonl");
    assert_eq!(l.samples.len(), 2);
    let b = PromptBuilder::new(Variant::ReleasedParquet);
    for s in &l.samples {
        assert_eq!(s.split, "train");
        let r = b.record(s, s.budget, s.id.parse().unwrap()).unwrap();
        assert_eq!(Some(r.content()), s.rendered_prompt.as_deref());
    }
    assert_eq!(l.samples[1].budget, Budget::Exact(2000));
    assert_eq!(l.samples[0].question, "Q1?\nA: a\nB: b");
}

#[test]
fn medcalc_csv_parses_python_literal_entities() {
    let l = load("medcalc.csv");
    assert_eq!(l.samples.len(), 2);
    let s = &l.samples[0];
    assert_eq!(s.source, "MedCalc-Bench");
    assert_eq!(
        s.question,
        "<Context> A 50-year-old man, 70 kg. </Context> <Question> What is the CrCl? </Question>"
    );
    assert_eq!(
        s.extra["relevant_entities"],
        serde_json::json!({"sex": "Male", "age": [50, "years"], "note": "it's"})
    );
    for k in [
        "calculator_id",
        "calculator_name",
        "category",
        "output_type",
        "note_id",
    ] {
        assert!(s.extra.contains_key(k), "{k}");
    }
    assert!(matches!(
        l.samples[1].task,
        Task::Calculation {
            output: CalcOutput::WeekDay,
            ..
        }
    ));
    let one = load("medcalc_one_shot.json");
    assert_eq!(
        (
            one.samples[0].answer.as_str(),
            one.samples[0].split.as_str()
        ),
        ("67.0", "one_shot")
    );
}

#[test]
fn mcq_sources() {
    let m = &load("mediq.jsonl").samples[0];
    assert_eq!(
        m.question,
        "<Context>A man has fever. Culture grows cocci.</Context> <Question>Which drug?</Question>"
    );
    assert_eq!((m.source.as_str(), m.answer.as_str()), ("MedIQ", "B"));

    for f in ["medxpertqa_hf.jsonl", "medxpertqa_input.jsonl"] {
        let x = &load(f).samples[0];
        assert_eq!(x.source, "MedXpertQA");
        assert_eq!(letters(&x.task), ["A=a", "B=b"]);
        assert!(
            x.question.contains("Answer Choices"),
            "MedXpertQA keeps inline choices like Med-U1"
        );
    }
    let p = &load("mmlu_pro.jsonl").samples[0];
    assert_eq!(
        (p.source.as_str(), p.answer.as_str(), p.id.as_str()),
        ("MMLU-Pro", "C", "1")
    );
    assert_eq!(letters(&p.task), ["A=p", "B=q", "C=r"]);

    for (f, src, ans, n) in [
        ("medqa_input.jsonl", "MedQA", "B", 4),
        ("medmcqa_input.jsonl", "MedMCQA", "D", 4),
        ("mmlu_input.jsonl", "MMLU", "B", 2),
    ] {
        let s = &load(f).samples[0];
        assert_eq!((s.source.as_str(), s.answer.as_str()), (src, ans), "{f}");
        assert_eq!(letters(&s.task).len(), n);
        assert!(!s.question.contains("Answer Choices"));
    }
    let q = &load("medqa_input.jsonl").samples[0];
    let r = PromptBuilder::default()
        .render(q, Budget::Exact(100))
        .unwrap();
    assert!(r.contains("Next step?\nA: Wait\nB: Operate\nC: Refer\nD: Discharge  Please"));
}

#[test]
fn pubmedqa_with_key_sets_splits() {
    let l = load("pubmedqa/ori_pqal.json");
    let by_id: std::collections::HashMap<_, _> =
        l.samples.iter().map(|s| (s.id.as_str(), s)).collect();
    assert_eq!(
        (by_id["111"].split.as_str(), by_id["111"].answer.as_str()),
        ("train", "A")
    );
    assert_eq!(
        (by_id["222"].split.as_str(), by_id["222"].answer.as_str()),
        ("test", "C")
    );
    assert_eq!(load("pubmedqa/test_ground_truth.json").samples.len(), 1);
}

#[test]
fn o1_sft_keeps_reasoning() {
    let s = &load("o1sft.json").samples[0];
    assert_eq!(s.source, "medical-o1-reasoning-SFT");
    assert_eq!(
        s.reasoning.as_deref(),
        Some("Vitamin C is needed for collagen...")
    );
    assert_eq!(s.answer, "Vitamin C deficiency.\n");
}

#[test]
fn ehrnoteqa_official_layout() {
    let l = load("ehrnoteqa_synthetic.jsonl");
    assert_eq!(l.samples.len(), 2);
    assert_eq!(l.samples[0].source, "EHRNoteQA");
    assert_eq!(l.samples[0].answer, "A");
    assert_eq!(
        l.samples[1].answer, "B",
        "answer given as option text maps to its letter"
    );
    assert!(
        l.samples[1]
            .question
            .starts_with("<Context>Synthetic note one.\n\nSynthetic note two")
    );
    assert_eq!(letters(&l.samples[0].task).len(), 5);
}

#[test]
fn errors_name_file_line_and_field() {
    let e = load_path(fx("verl_bad.jsonl"), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("verl_bad.jsonl")
            && e.contains("line 2")
            && e.contains("reward_model.num_tokens"),
        "{e}"
    );

    let e = load_path(fx("medu1_bad.json"), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("medu1_bad.json") && e.contains("item 0") && e.contains("field `answer`"),
        "{e}"
    );

    let e = load_path(fx("medcalc_bad.csv"), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("medcalc_bad.csv") && e.contains("row 2") && e.contains("Relevant Entities"),
        "{e}"
    );

    let e = load_path(
        fx("mediq.jsonl"),
        &LoadOptions {
            format: Some(Format::MmluPro),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("mediq.jsonl") && e.contains("line 1") && e.contains("field `answer`"),
        "{e}"
    );
}

#[test]
fn skip_invalid_collects_rejected_rows() {
    let opts = LoadOptions {
        skip_invalid: true,
        ..Default::default()
    };
    let l = load_path(fx("verl_bad.jsonl"), &opts).unwrap();
    assert_eq!(l.samples.len(), 1);
    assert_eq!(l.rejected.len(), 2);
    assert!(l.rejected[1].to_string().contains("line 3"));
    assert!(l.rejected[1].message.contains("invalid json"));
    let l = load_path(fx("medcalc_bad.csv"), &opts).unwrap();
    assert_eq!((l.samples.len(), l.rejected.len()), (1, 1));
    assert_eq!(l.rejected[0].field.as_deref(), Some("Relevant Entities"));
}

#[test]
fn deeply_nested_python_literal_is_a_rejected_row_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fx("medcalc.csv")).unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    // Row 1's Relevant Entities replaced by a literal nested 100,000 deep.
    let deep = format!("\"{}\"", "[".repeat(100_000));
    let row1 = &lines[1];
    let start = row1.find("\"{'sex'").unwrap();
    let end = row1[start..].find("}\"").unwrap() + start + 2;
    lines[1] = format!("{}{deep}{}", &row1[..start], &row1[end..]);
    let path = dir.path().join("medcalc_deep.csv");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let e = load_path(&path, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("medcalc_deep.csv")
            && e.contains("row 1")
            && e.contains("Relevant Entities")
            && e.contains("nested too deeply"),
        "{e}"
    );
    let opts = LoadOptions {
        skip_invalid: true,
        ..Default::default()
    };
    let l = load_path(&path, &opts).unwrap();
    assert_eq!((l.samples.len(), l.rejected.len()), (1, 1));
    assert_eq!(l.rejected[0].field.as_deref(), Some("Relevant Entities"));

    // The same through a MediQ options field (a Python-literal string).
    let mediq = dir.path().join("mediq_deep.jsonl");
    let row = serde_json::json!({"id": 0, "question": "Which drug?", "context": ["x"],
        "options": "{'A': ".repeat(100_000), "answer": "x", "answer_idx": "A"});
    std::fs::write(&mediq, format!("{row}\n")).unwrap();
    let opts = LoadOptions {
        skip_invalid: true,
        format: Some(Format::Mediq),
        ..Default::default()
    };
    let l = load_path(&mediq, &opts).unwrap();
    assert_eq!((l.samples.len(), l.rejected.len()), (0, 1));
    assert!(
        l.rejected[0].to_string().contains("line 1"),
        "{}",
        l.rejected[0]
    );
    assert_eq!(l.rejected[0].field.as_deref(), Some("options"));
}
