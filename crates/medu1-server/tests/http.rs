//! The server over real HTTP on loopback: malformed input gets a 4xx naming the field and the
//! server keeps serving; OpenRLHF's protocol round-trips; limits hold.

#![allow(clippy::print_stdout)] // the golden check reports how many cases it compared

use std::sync::Arc;
use std::time::Duration;

use medu1_server::{ServerConfig, TokenCounter};
use serde_json::{Value, json};

#[derive(Debug)]
struct WordCounter;
impl TokenCounter for WordCounter {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

async fn start(config: ServerConfig) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = medu1_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let state = medu1_server::state(config, Some(Arc::new(WordCounter)));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        medu1_server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (format!("http://{addr}"), tx)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post_raw(url: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const PROMPT: &str = "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openrlhf_protocol_scores_with_labels() {
    let (base, _stop) = start(ServerConfig::default()).await;
    let label = json!({"ground_truth": "C", "data_source": "MedIQ", "num_tokens": -1}).to_string();
    let body = json!({
        "query": [
            format!("{PROMPT}<think>hmm</think><answer>C</answer>"),
            format!("{PROMPT}<think>hmm</think><answer>D</answer>"),
            format!("{PROMPT}no tags"),
        ],
        "prompts": [PROMPT, PROMPT, PROMPT],
        "labels": [label, label, label],
    });
    let (status, v) = post_raw(&format!("{base}/reward"), body.to_string()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rewards"], json!([2.0, 0.0, -3.0]));
    assert_eq!(v["scores"], json!([1.0, 0.0, 0.0]));
    assert_eq!(v["extra_logs"]["format_reward"], json!([1.0, 1.0, -1.0]));

    let (status, v) = post_raw(&format!("{base}/reward"), r#"{"query":[],"labels":[]}"#).await;
    assert_eq!(status, 200);
    assert_eq!(v["rewards"], json!([]));
}

async fn reward(base: &str, queries: Vec<String>, labels: Vec<Value>) -> (u16, Value) {
    let n = queries.len();
    let labels: Vec<String> = labels.iter().map(Value::to_string).collect();
    let body = json!({"query": queries, "prompts": vec![PROMPT; n], "labels": labels});
    post_raw(&format!("{base}/reward"), body.to_string()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_term_uses_the_tokenizer_when_the_label_has_no_length() {
    let (base, _stop) = start(ServerConfig::default()).await;
    // 100 words of thinking + the answer: the counter sees 103 "tokens"; the text decoded with its
    // special tokens (OpenRLHF) ends with the EOS, the 104th.
    let think = vec!["w"; 100].join(" ");
    let label = json!({"ground_truth": "C", "data_source": "MedIQ", "num_tokens": 104});
    let query = format!("{PROMPT}<think> {think} </think> <answer>C</answer> <|im_end|>");
    let (status, v) = reward(&base, vec![query], vec![label]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["extra_logs"]["length_reward"], json!([1.0]));
}

/// OpenRLHF decodes the query with special tokens kept, so a response that stopped on EOS already
/// ends with it; the server used to count it and then add `--eos-tokens 1` on top.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eos_in_the_openrlhf_query_is_not_counted_twice() {
    let (base, _stop) = start(ServerConfig::default()).await;
    let think = vec!["w"; 100].join(" ");
    let stopped = format!("{PROMPT}<think> {think} </think> <answer>C</answer> <|im_end|>");
    let truncated = format!("{PROMPT}<think> {think} </think> <answer>C</answer>");
    // Budget 1604: |L - N| / 1500 is 1 - Δ, so Δ shows L exactly.
    let label =
        json!({"ground_truth": "C", "data_source": "MedIQ", "num_tokens": 1604, "eos": "in_text"});
    let (status, v) = reward(&base, vec![stopped, truncated], vec![label.clone(), label]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(lengths_under_1604(&v), vec![104.0, 103.0], "{v}");
}

/// The response lengths L behind `/reward`'s length terms for budget N = 1604 (exact mode, L < N):
/// Δ = 1 - (N - L) / 1500.
fn lengths_under_1604(v: &Value) -> Vec<f64> {
    v["extra_logs"]["length_reward"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| ((1604.0 - 1500.0 * (1.0 - x.as_f64().unwrap())) * 1e6).round() / 1e6)
        .collect()
}

/// verl and TRL decode without special tokens: the EOS is added only to a response that was not
/// truncated, as the label says (`truncated`) or as `max_response_length` shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripped_eos_is_added_only_to_responses_that_were_not_truncated() {
    let (base, _stop) = start(ServerConfig::default()).await;
    let think = vec!["w"; 100].join(" ");
    let q = format!("{PROMPT}<think> {think} </think> <answer>C</answer>");
    let l = |extra: Value| {
        let mut v = json!({"ground_truth": "C", "data_source": "MedIQ", "num_tokens": 1604, "eos": "stripped"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let labels = vec![
        l(json!({"truncated": false})),
        l(json!({"truncated": true})),
        l(json!({"max_response_length": 103})),
        l(json!({"max_response_length": 4096})),
    ];
    let (status, v) = reward(&base, vec![q.clone(); 4], labels).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        lengths_under_1604(&v),
        vec![104.0, 103.0, 103.0, 104.0],
        "{v}"
    );

    // Without either the server cannot know; it says so instead of guessing.
    let (status, v) = reward(&base, vec![q.clone()], vec![l(json!({}))]).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["field"], "labels.eos", "{v}");
    assert!(v["message"].as_str().unwrap().contains("truncated"), "{v}");

    // The same convention on /score.
    let row = |extra: Value| {
        let mut v = json!({"data_source": "MedIQ", "prompt": PROMPT,
            "response": format!("<think> {think} </think> <answer>C</answer>"),
            "ground_truth": "C", "num_tokens": 104});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let body = json!({"requests": [
        row(json!({"eos": "stripped", "truncated": false})),
        row(json!({"eos": "stripped", "max_response_length": 103})),
        row(json!({})),
        row(json!({"eos": "stripped"})),
        row(json!({"eos": "sometimes"})),
    ]});
    let (s, v) = post_raw(&format!("{base}/score"), body.to_string()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["valid_response_length"], 104.0, "{v}");
    assert_eq!(v["results"][1]["valid_response_length"], 103.0, "{v}");
    assert_eq!(v["results"][2]["valid_response_length"], 103.0, "{v}");
    assert_eq!(v["results"][3]["error"]["field"], "eos", "{v}");
    assert_eq!(v["results"][4]["error"]["field"], "eos", "{v}");
    assert_eq!(v["errors"], 2);
}

/// A misspelt label key (`num_token`) used to be ignored: the budget was lost and a correct
/// answer scored 2.0 instead of 2 + Δ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_label_keys_are_rejected_naming_the_key() {
    let (base, _stop) = start(ServerConfig::default()).await;
    let q = format!("{PROMPT}<think>a b</think><answer>C</answer> <|im_end|>");
    let typo = json!({"ground_truth": "C", "data_source": "MedIQ", "num_token": 200});
    let (status, v) = reward(&base, vec![q.clone()], vec![typo.clone()]).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["field"], "labels.num_token", "{v}");
    assert_eq!(v["row"], 0, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("`num_token`"),
        "{v}"
    );

    // The keys verl adds to extra_info pass; the opt-out accepts anything else.
    let verl = json!({"ground_truth": "C", "data_source": "MedIQ", "num_tokens": -1,
        "num_turns": null, "rollout_reward_scores": {}, "split": "train", "index": 3});
    let opted = json!({"ground_truth": "C", "data_source": "MedIQ", "num_token": 200,
        "allow_unknown_keys": true});
    let (status, v) = reward(&base, vec![q.clone(), q], vec![verl, opted]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rewards"], json!([2.0, 2.0]));
}

/// OpenRLHF retries a 4xx and then trains on `reward=None` without showing the body; with
/// --error-reward a bad label gets that reward, a log line and a metric instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_reward_also_answers_bad_labels_and_counts_them() {
    let config = ServerConfig {
        error_reward: Some(-3.0),
        ..ServerConfig::default()
    };
    let (base, _stop) = start(config).await;
    let q = format!("{PROMPT}<think>a</think><answer>C</answer>");
    let labels = vec![
        json!({"ground_truth": "C", "data_source": "MedIQ", "num_token": 200}),
        json!({"ground_truth": "C", "data_source": "MedIQ"}),
    ];
    let (status, v) = reward(&base, vec![q.clone(), q], labels).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rewards"], json!([-3.0, 2.0]));
    assert_eq!(v["extra_logs"]["scoring_error"], json!([1.0, 0.0]));
    let metrics = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"medu1_errors_total{route="reward",kind="label"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_naming_the_field_and_the_server_keeps_serving() {
    let config = ServerConfig {
        max_body_bytes: 1 << 20,
        max_batch: 100,
        ..ServerConfig::default()
    };
    let (base, _stop) = start(config).await;
    let url = format!("{base}/reward");

    let (s, v) = post_raw(&url, r#"{"query": ["a", "b"#).await;
    assert_eq!(s, 400, "truncated json: {v}");
    assert_eq!(v["error"], "invalid_json");

    let (s, v) = post_raw(&url, r#"{"query": [1], "labels": ["C"]}"#).await;
    assert_eq!(s, 422, "wrong type: {v}");
    assert_eq!(v["field"], "query[0]");

    let (s, v) = post_raw(&url, r#"{"labels": ["C"]}"#).await;
    assert_eq!(s, 422, "missing field: {v}");
    assert_eq!(v["field"], "query");

    let (s, v) = post_raw(
        &url,
        b"{\"query\": [\"\xff\xfe\"], \"labels\": [\"C\"]}".to_vec(),
    )
    .await;
    assert_eq!(s, 400, "invalid utf-8: {v}");

    let huge = format!(
        r#"{{"query": ["{}"], "labels": ["C"]}}"#,
        "x".repeat(2 << 20)
    );
    let (s, v) = post_raw(&url, huge).await;
    assert_eq!(s, 413, "huge body: {v}");

    let many = json!({"query": vec!["x"; 101], "labels": vec!["C"; 101]});
    let (s, v) = post_raw(&url, many.to_string()).await;
    assert_eq!(s, 413, "batch limit: {v}");
    assert_eq!(v["field"], "query");

    let (s, v) = post_raw(&url, r#"{"query": ["x"], "labels": ["C"]}"#).await;
    assert_eq!(s, 422, "no data source: {v}");
    assert_eq!(v["field"], "labels.data_source");

    let bad_label = json!({"query": ["x"], "labels": ["{\"ground_truth\": 3}"]});
    let (s, v) = post_raw(&url, bad_label.to_string()).await;
    assert_eq!(s, 422, "label of wrong type: {v}");
    assert_eq!(v["row"], 0);

    // The reference raises on an unknown data source with an answer: the request names the row.
    let raising = json!({
        "query": [format!("{PROMPT}<think>a</think><answer>B</answer>")],
        "labels": [json!({"ground_truth": "B", "data_source": "NoSuchSet"}).to_string()],
    });
    let (s, v) = post_raw(&url, raising.to_string()).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["field"], "data_source");

    // Still serving.
    let r = client().get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let metrics = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("medu1_errors_total{route=\"reward\",kind=\"invalid_json\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("medu1_request_duration_seconds_bucket"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_reward_keeps_the_batch_going() {
    let config = ServerConfig {
        error_reward: Some(-3.0),
        ..ServerConfig::default()
    };
    let (base, _stop) = start(config).await;
    let body = json!({
        "query": [format!("{PROMPT}<think>a</think><answer>B</answer>"), format!("{PROMPT}<think>a</think><answer>B</answer>")],
        "labels": [
            json!({"ground_truth": "B", "data_source": "NoSuchSet"}).to_string(),
            json!({"ground_truth": "B", "data_source": "MedXpertQA"}).to_string(),
        ],
    });
    let (s, v) = post_raw(&format!("{base}/reward"), body.to_string()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["rewards"], json!([-3.0, 2.0]));
    assert_eq!(v["extra_logs"]["scoring_error"], json!([1.0, 0.0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_route_reports_per_row_errors() {
    let (base, _stop) = start(ServerConfig::default()).await;
    let body = json!({"requests": [
        {"data_source": "MedCalc-Bench", "solution_str": "Assistant:<think>t</think><answer>5.2</answer>",
         "ground_truth": "5", "lower_limit": "4.75", "upper_limit": 5.25},
        {"data_source": "MedCalc-Bench", "solution_str": "Assistant:<think>t</think><answer>5</answer>",
         "ground_truth": "5"},
        {"data_source": "MedIQ", "ground_truth": 7},
    ], "explain": true});
    let (s, v) = post_raw(&format!("{base}/score"), body.to_string()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["errors"], 2);
    assert_eq!(v["results"][0]["reward"], 2.0);
    assert!(v["results"][0]["trace"].is_object());
    assert_eq!(v["results"][1]["error"]["field"], "lower_limit");
    assert_eq!(v["results"][2]["error"]["field"], "ground_truth");
}

fn golden_file() -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("MEDU1_GOLDEN_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden"),
    };
    let f = dir.join("rewards.jsonl");
    f.is_file().then_some(f)
}

/// Every golden case through `/score` equals the library and the reference's recorded value for
/// the released training settings (Merge, discrete, threshold 45, scale 100, check_think).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_rewards_through_http_equal_the_library() {
    let Some(path) = golden_file() else {
        medu1_core::testing::skip("golden", "no golden rewards.jsonl (set MEDU1_GOLDEN_DIR)");
        return;
    };
    let (base, _stop) = start(ServerConfig::default()).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let cases: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let profile = medu1_reward::Profile::med_u1();
    let mut checked = 0;
    for chunk in cases.chunks(256) {
        let reqs: Vec<Value> = chunk
            .iter()
            .map(|c| {
                let i = &c["input"];
                json!({
                    "data_source": i["data_source"], "solution_str": i["solution_str"],
                    "ground_truth": i["ground_truth"], "lower_limit": i["lower_limit"],
                    "upper_limit": i["upper_limit"], "num_tokens": i["num_tokens"],
                    "valid_response_length": i["valid_response_length"],
                })
            })
            .collect();
        let (s, v) = post_raw(
            &format!("{base}/score"),
            json!({"requests": reqs}).to_string(),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        for ((case, req), got) in chunk
            .iter()
            .zip(&reqs)
            .zip(v["results"].as_array().unwrap())
        {
            let lib = medu1_reward::score_request(
                &profile,
                &serde_json::from_value(req.clone()).unwrap(),
                medu1_reward::ScoreOptions::default(),
            );
            let func = case["dispatch"]["train"].as_str().unwrap();
            let row = &case["train"][4];
            assert_eq!(
                (
                    row["reward_metric"].as_str(),
                    row["reward_type"].as_str(),
                    row["check_think"].as_bool()
                ),
                (Some("Merge"), Some("discrete"), Some(true))
            );
            let expected = &row[func];
            match lib {
                Ok(o) => {
                    assert_eq!(got["reward"].as_f64(), Some(o.reward), "{}", case["id"]);
                    assert_eq!(expected.as_f64(), Some(o.reward), "{}", case["id"]);
                }
                Err(_) => {
                    assert!(got["error"].is_object(), "{}: {got}", case["id"]);
                    assert!(
                        expected["error"].is_string(),
                        "{}: golden {expected}",
                        case["id"]
                    );
                }
            }
            checked += 1;
        }
    }
    println!("golden through HTTP: {checked} cases checked");
    assert_eq!(checked, cases.len());
}
