//! The server against hostile clients on loopback: oversized declared bodies, stalled headers and
//! bodies, shutdown with a request half sent, scoring that outlives its timeout. Every wait is
//! bounded, so a regression fails the test instead of hanging it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use medu1_server::{ServerConfig, TokenCounter};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any single wait in these tests may take before it counts as a hang.
const BOUND: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
struct SlowCounter {
    calls: AtomicUsize,
}
impl TokenCounter for SlowCounter {
    fn count(&self, text: &str) -> usize {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        text.split_whitespace().count()
    }
}

struct Server {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn start(config: ServerConfig, counter: Option<Arc<dyn TokenCounter>>) -> Server {
    let listener = medu1_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let state = medu1_server::state(config, counter);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        medu1_server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        addr,
        stop: Some(tx),
        done,
    }
}

/// Everything the server sends until it closes the connection (or `BOUND` passes: `None`).
async fn read_until_close(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&buf).into_owned())
}

async fn connect(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_over_the_limit_is_refused_before_the_body_is_sent() {
    let srv = start(ServerConfig::default(), None).await;
    let mut s = connect(
        srv.addr,
        b"POST /reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000000000\r\n\r\n",
    )
    .await;
    let resp = read_until_close(&mut s)
        .await
        .expect("the server waited for a body it will refuse");
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("too_large"), "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_with_half_sent_headers_is_disconnected() {
    let config = ServerConfig {
        header_read_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let srv = start(config, None).await;
    let mut s = connect(srv.addr, b"POST /reward HTTP/1.1\r\nHost: x\r\n").await;
    let resp = read_until_close(&mut s).await;
    assert!(
        resp.is_some(),
        "a client stalled in its headers was held open"
    );
    // The server still serves others.
    let mut ok = connect(
        srv.addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let health = read_until_close(&mut ok).await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_stalling_mid_body_gets_408() {
    let config = ServerConfig {
        body_read_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let srv = start(config, None).await;
    let mut s = connect(
        srv.addr,
        b"POST /reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"query\":",
    )
    .await;
    let resp = read_until_close(&mut s)
        .await
        .expect("a client stalled in its body was held open");
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(resp.contains("body_timeout"), "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_within_its_deadline_while_a_client_holds_a_half_sent_request() {
    let config = ServerConfig {
        shutdown_timeout: Duration::from_millis(500),
        header_read_timeout: Duration::from_secs(3600),
        body_read_timeout: Duration::from_secs(3600),
        ..ServerConfig::default()
    };
    let mut srv = start(config, None).await;
    let _half_headers = connect(srv.addr, b"POST /reward HTTP/1.1\r\nHost: x\r\n").await;
    let _half_body = connect(
        srv.addr,
        b"POST /reward HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    )
    .await;
    // Let the server start reading both.
    tokio::time::sleep(Duration::from_millis(200)).await;
    srv.stop.take().unwrap().send(()).unwrap();
    let finished = tokio::time::timeout(BOUND, &mut srv.done).await;
    assert!(
        finished.is_ok(),
        "the server did not stop while clients held half-sent requests"
    );
    // And it no longer accepts connections.
    assert!(TcpStream::connect(srv.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_scoring_stops_working_after_the_504() {
    let counter = Arc::new(SlowCounter::default());
    let config = ServerConfig {
        request_timeout: Duration::from_millis(300),
        max_batch: 20_000,
        ..ServerConfig::default()
    };
    let srv = start(config, Some(counter.clone())).await;
    // 20,000 rows whose lengths the (20 ms a call) tokenizer must count: 400 s of work on one core.
    let row = json!({"data_source": "MedIQ", "prompt": "Q", "response": "<think>a</think><answer>B</answer>",
                     "ground_truth": "B", "num_tokens": 10});
    let body = json!({"requests": vec![row; 20_000]}).to_string();
    let req = format!(
        "POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = connect(srv.addr, req.as_bytes()).await;
    let resp = read_until_close(&mut s).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 504"), "{resp}");
    // Rows already being counted may finish; after that no new row may start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = counter.calls.load(Ordering::SeqCst);
    let waited = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = counter.calls.load(Ordering::SeqCst);
    assert_eq!(
        later,
        settled,
        "scoring kept going {:?} after the 504 ({settled} -> {later} rows)",
        waited.elapsed()
    );
    assert!(settled < 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rouge_l_of_answers_over_the_word_cap_is_skipped_with_a_reason() {
    let config = ServerConfig {
        max_rouge_words: Some(100),
        ..ServerConfig::default()
    };
    let srv = start(config, None).await;
    // Distinct words, so that EMS (distinct reference words over answer words) passes.
    let words = |n: usize| {
        (0..n)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (long, short) = (words(101), words(100));
    let row = |t: &str| {
        json!({"data_source": "medical-o1-reasoning-SFT", "ground_truth": t,
               "solution_str": format!("Assistant:<think>a</think><answer>{t}</answer>")})
    };
    let body = json!({"requests": [row(&long), row(&short)], "components": true}).to_string();
    let req = format!(
        "POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = connect(srv.addr, req.as_bytes()).await;
    let resp = read_until_close(&mut s).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let v: Value = serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let over = &v["results"][0];
    let under = &v["results"][1];
    assert_eq!(over["reward"], 2.0, "{over}");
    assert_eq!(over["components"]["rouge_l"], Value::Null, "{over}");
    let why = over["components"]["rouge_l_skipped"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("101 words") && why.contains("cap of 100"),
        "{over}"
    );
    assert_eq!(under["components"]["rouge_l"], 100.0, "{under}");
}
