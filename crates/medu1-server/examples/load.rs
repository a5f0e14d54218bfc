//! Load generator for `medu1 serve` (loopback only; bounded in requests and time).
//!
//! Sends OpenRLHF `/reward` requests built from a golden rewards file (the golden mix of multiple
//! choice, free text and calculation; each label carries its response length) in batches of the
//! given sizes, from `--connections` keep-alive connections, and prints samples/s and latency
//! percentiles per batch size. Bodies are serialised once up front so the client spends its CPU on
//! HTTP, not JSON.
//!
//! `cargo run --release -p medu1-server --example load -- --url http://127.0.0.1:8000 \
//!     --golden ../shared/golden/rewards.jsonl --batches 1,32,256 --seconds 10`

#![allow(clippy::print_stdout)] // a command-line tool: its output is the report

use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Args {
    url: String,
    golden: String,
    batches: Vec<usize>,
    seconds: f64,
    max_requests: usize,
    connections: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8000".into(),
        golden: "../shared/golden/rewards.jsonl".into(),
        batches: vec![1, 32, 256],
        seconds: 10.0,
        max_requests: 200_000,
        connections: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--url" => a.url = v,
            "--golden" => a.golden = v,
            "--batches" => {
                a.batches = v
                    .split(',')
                    .map(|x| x.parse().expect("batch size"))
                    .collect()
            }
            "--seconds" => a.seconds = v.parse().expect("seconds"),
            "--max-requests" => a.max_requests = v.parse().expect("max requests"),
            "--connections" => a.connections = v.parse().expect("connections"),
            _ => panic!("unknown argument {k}"),
        }
    }
    assert!(
        a.url.starts_with("http://127.")
            || a.url.starts_with("http://localhost")
            || a.url.starts_with("http://[::1]"),
        "the load generator only targets loopback addresses"
    );
    a
}

/// One OpenRLHF sample per golden case: query = solution_str, label with everything the reward needs.
fn samples(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("golden line");
            let i = &v["input"];
            let label = json!({
                "ground_truth": i["ground_truth"],
                "data_source": i["data_source"],
                "num_tokens": i["num_tokens"],
                "lower_limit": i["lower_limit"],
                "upper_limit": i["upper_limit"],
                "response_length": i["valid_response_length"],
            });
            (
                i["solution_str"].as_str().unwrap().to_string(),
                label.to_string(),
            )
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = parse_args();
    let all = samples(&a.golden);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.connections)
        .build()
        .unwrap();
    let url = format!("{}/reward", a.url.trim_end_matches('/'));
    println!("batch  requests  samples   seconds  samples/s  p50_ms  p99_ms  max_ms  errors");
    for &batch in &a.batches {
        // Pre-built bodies cycling through the golden mix.
        let n_bodies = (all.len() / batch).clamp(1, 64);
        let bodies: Vec<bytes::Bytes> = (0..n_bodies)
            .map(|b| {
                let rows: Vec<&(String, String)> = (0..batch)
                    .map(|k| &all[(b * batch + k) % all.len()])
                    .collect();
                let body = json!({
                    "query": rows.iter().map(|r| &r.0).collect::<Vec<_>>(),
                    "labels": rows.iter().map(|r| &r.1).collect::<Vec<_>>(),
                });
                bytes::Bytes::from(serde_json::to_vec(&body).unwrap())
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
        let per_conn = a.max_requests / a.connections.max(1);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..a.connections {
            let client = client.clone();
            let url = url.clone();
            let bodies = bodies.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0usize;
                let mut k = c;
                while Instant::now() < deadline && lat.len() + errors < per_conn {
                    let body = bodies[k % bodies.len()].clone();
                    k += 1;
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    match r {
                        Ok(resp) if resp.status().is_success() => {
                            let _ = resp.bytes().await;
                            lat.push(t.elapsed().as_secs_f64() * 1e3);
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            }));
        }
        let mut lat = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            lat.extend(l);
            errors += e;
        }
        let secs = start.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let reqs = lat.len();
        let samples = reqs * batch;
        println!(
            "{batch:>5}  {reqs:>8}  {samples:>7}  {secs:>8.2}  {:>9.0}  {:>6.2}  {:>6.2}  {:>6.2}  {errors:>6}",
            samples as f64 / secs,
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(f64::NAN),
        );
    }
}
