//! Fuzzing the server's request handling through the router itself (no sockets): arbitrary
//! bodies, labels, methods, paths and headers never panic a handler and always get a 2xx or 4xx
//! answer (504 if the machine is very slow), never a 500 or the 503 of a panicked scoring task.
//!
//! Each target runs for `MEDU1_FUZZ_SECS` seconds (default 2, the CI budget) in proptest batches,
//! so failures shrink as usual; the number of cases run is printed.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use medu1_server::{ServerConfig, TokenCounter};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tower::ServiceExt;

fn fuzz_for<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let secs: f64 = std::env::var("MEDU1_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let config = Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    };
    // A runner counts its successes across calls, so each batch gets a fresh runner seeded from
    // one master runner (a new random seed per test run, as proptest does).
    let mut master = TestRunner::new(config.clone());
    let mut cases = 0u64;
    while cases == 0 || Instant::now() < deadline {
        let mut runner = TestRunner::new_with_rng(config.clone(), master.new_rng());
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        cases += 64;
    }
    println!("fuzz {name}: {cases} cases, 0 failures");
}

#[derive(Debug)]
struct WordCounter;
impl TokenCounter for WordCounter {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

/// One router for all cases, as in a real server, with small limits so that they are hit.
fn router() -> (tokio::runtime::Runtime, axum::Router) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ServerConfig {
        max_body_bytes: 64 << 10,
        max_batch: 16,
        default_source: Some("MedIQ".into()),
        ..ServerConfig::default()
    };
    let state = medu1_server::state(config, Some(Arc::new(WordCounter)));
    (rt, medu1_server::router(state))
}

fn send(
    rt: &tokio::runtime::Runtime,
    app: &axum::Router,
    req: Request<Body>,
) -> Result<(), TestCaseError> {
    let (status, body) = rt.block_on(async {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body)
    });
    prop_assert!(
        // 503 is what a panicking scoring task turns into, so it counts as a failure here.
        status.is_success() || status.is_client_error() || status.as_u16() == 504,
        "status {}: {}",
        status,
        String::from_utf8_lossy(&body)
    );
    if !status.is_success() {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| TestCaseError::fail(format!("error body is not json ({e}): {body:?}")))?;
        prop_assert!(v["error"].is_string(), "{}", v);
    }
    Ok(())
}

const PIECES: &[&str] = &[
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "Assistant:",
    "<|im_start|>assistant\n",
    "B",
    "5.2",
    "nan",
    "1e309",
    "-",
    " ",
    "\n",
    "é",
    "\u{0}",
    "\\",
    "\"",
    "{",
    "}",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|v| v.concat()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::from),
        prop::sample::select(
            &[
                "MedIQ",
                "MedCalc-Bench",
                "medical-o1-reasoning-SFT",
                "EHRNoteQA",
                "x"
            ][..]
        )
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(
                    &[
                        "ground_truth",
                        "data_source",
                        "num_tokens",
                        "lower_limit",
                        "upper_limit",
                        "response_length",
                        "settings",
                        "split",
                        "index",
                        "solution_str",
                        "prompt",
                        "response",
                        "valid_response_length",
                        "check_think",
                        "reward_metric",
                        "zz",
                    ][..]
                )
                .prop_map(str::to_string),
                inner,
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A label as OpenRLHF sends it: a JSON object, that object as a string, or anything else.
fn label() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        json_value().prop_map(|v| Value::String(v.to_string())),
        (
            text(),
            prop::sample::select(&["MedIQ", "MedCalc-Bench", "x"][..]),
            any::<i64>()
        )
            .prop_map(|(gt, ds, n)| Value::String(
                json!({"ground_truth": gt, "data_source": ds, "num_tokens": n}).to_string()
            )),
    ]
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

#[test]
fn fuzz_reward_bodies_and_labels() {
    let (rt, app) = router();
    let strategy = (
        prop::collection::vec(text(), 0..20),
        prop::option::of(prop::collection::vec(text(), 0..20)),
        prop::collection::vec(label(), 0..20),
    );
    fuzz_for("/reward labels", strategy, |(query, prompts, labels)| {
        let mut body = json!({"query": query, "labels": labels});
        if let Some(p) = prompts {
            body["prompts"] = json!(p);
        }
        send(&rt, &app, post("/reward", body.to_string()))
    });
}

#[test]
fn fuzz_score_bodies() {
    let (rt, app) = router();
    let strategy = (
        prop::collection::vec(json_value(), 0..20),
        any::<bool>(),
        any::<bool>(),
    );
    fuzz_for("/score rows", strategy, |(rows, explain, components)| {
        let body = json!({"requests": rows, "explain": explain, "components": components});
        send(&rt, &app, post("/score", body.to_string()))
    });
}

#[test]
fn fuzz_raw_requests() {
    let (rt, app) = router();
    let strategy = (
        prop::sample::select(&["GET", "POST", "PUT", "DELETE", "PATCH"][..]),
        prop::sample::select(
            &[
                "/reward", "/score", "/health", "/metrics", "/", "/nope", "/reward/",
            ][..],
        ),
        prop::option::of(prop::sample::select(
            &[
                "0",
                "1",
                "1000000000",
                "18446744073709551616",
                "-1",
                "abc",
                "70000",
            ][..],
        )),
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(prop::sample::select(PIECES), 0..32).prop_map(|v| v.concat()),
        any::<bool>(),
    );
    fuzz_for(
        "raw requests",
        strategy,
        |(method, path, length, bytes, pieces, use_bytes)| {
            let body: Vec<u8> = if use_bytes {
                bytes
            } else {
                pieces.into_bytes()
            };
            let mut req = Request::builder().method(method).uri(path);
            if let Some(l) = length {
                req = req.header("content-length", l);
            }
            let req = req.body(Body::from(body)).unwrap();
            let (status, body) = rt.block_on(async {
                let resp = app.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (status, body)
            });
            // Routing errors (404, 405) come from axum with an empty body; the rest are ours.
            prop_assert!(
                status.as_u16() < 500 || status.as_u16() == 504,
                "{} {}: {:?}",
                status,
                path,
                body
            );
            Ok(())
        },
    );
}
