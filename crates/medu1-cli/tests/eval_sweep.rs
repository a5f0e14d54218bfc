//! `medu1 eval --budgets` through the real binary against an in-process fake OpenAI-compatible
//! server whose response length follows the prompt's budget: every item is asked at every budget,
//! the table is printed, the report files are written, and a rerun sends no request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// Answers every completion with `usage.completion_tokens` = N / 2 for "Think for N tokens." in
/// the prompt, and records each prompt.
fn serve() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let seen = prompts.clone();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let prompt = req["prompt"].as_str().unwrap_or_default().to_string();
            let n: usize = prompt
                .split("Think for ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            seen.lock().unwrap().push(prompt);
            let payload = serde_json::json!({
                "choices": [{"text": "<think>x</think><answer>B</answer>", "finish_reason": "stop"}],
                "usage": {"completion_tokens": n / 2},
            })
            .to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                payload.len()
            );
        }
    });
    (url, prompts)
}

fn medu1(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medu1"))
        .args(args)
        .env_remove("MEDU1_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("run medu1")
}

fn write_data(dir: &Path) -> String {
    let rows: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            serde_json::json!({
                "Source": "MedIQ",
                "id": format!("q{i}"),
                "problem": format!("Question {i}?"),
                "options": {"A": "alpha", "B": "beta", "C": "gamma", "D": "delta"},
                "answer": "B",
            })
        })
        .collect();
    let p = dir.join("mcq.json");
    std::fs::write(&p, serde_json::to_vec(&rows).unwrap()).unwrap();
    p.display().to_string()
}

#[test]
fn budget_sweep_through_an_endpoint_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path());
    let out = dir.path().join("sweep");
    let (url, prompts) = serve();
    let args = [
        "eval",
        "--endpoint",
        &url,
        "--served-model",
        "m",
        "--data",
        &data,
        "--budgets",
        "64,16,32",
        "--retries",
        "0",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = medu1(&args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    {
        let p = prompts.lock().unwrap();
        assert_eq!(p.len(), 9, "3 items × 3 budgets");
        for n in [16, 32, 64] {
            let s = format!("Think for {n} tokens.");
            assert_eq!(p.iter().filter(|x| x.contains(&s)).count(), 3, "{n}");
        }
    }
    // L = N / 2 everywhere: relative error 0.5, all under budget, perfect rank correlation.
    assert!(
        stdout.contains("| 16 | 3 | 3 | 8.0 | 8.0 | 0.500 | 0.500 | 0.0 | 100.0 |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Spearman ρ = 1.000, Pearson r = 1.000"),
        "{stdout}"
    );
    for f in [
        "sweep.json",
        "sweep.md",
        "length_vs_budget.png",
        "accuracy_vs_budget.png",
        "budget-16/items.jsonl",
        "budget-64/report.md",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }

    let o = medu1(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        prompts.lock().unwrap().len(),
        9,
        "the rerun sent no request"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("resumed: 9"));

    // --budgets and --budget are two ways of choosing the budget: refused together.
    let o = medu1(&[
        "eval",
        "--endpoint",
        &url,
        "--data",
        &data,
        "--budgets",
        "8",
        "--budget",
        "exact",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
    // A maximum budget of 1 would be encoded as "no budget"; refused before any request.
    let o = medu1(&[
        "eval",
        "--endpoint",
        &url,
        "--data",
        &data,
        "--budgets",
        "1",
        "--budget-mode",
        "max",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("too small"));
    assert_eq!(prompts.lock().unwrap().len(), 9);
}
