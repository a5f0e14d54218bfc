//! Retry behaviour of the OpenAI backend against an in-process fake HTTP server (the real-server
//! test is `openai_server.rs`): 5xx and 429 are retried with backoff, 400 rejects one request,
//! other errors stop at once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use medu1_eval::backend::openai::{Api, OpenAiBackend, OpenAiConfig};
use medu1_eval::{Backend, BackendError, GenParams, Prompt};

/// Serves `statuses` in turn (then 200s) and counts requests.
fn serve(statuses: Vec<u16>) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let mut s = stream.unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 {
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
            r.read_exact(&mut body).unwrap();
            let i = c.fetch_add(1, Ordering::SeqCst);
            let status = statuses.get(i).copied().unwrap_or(200);
            let payload = if status == 200 {
                r#"{"choices":[{"text":"<answer>B</answer>","finish_reason":"stop"}],"usage":{"completion_tokens":7}}"#
            } else {
                r#"{"error":"busy"}"#
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                payload.len()
            );
        }
    });
    (url, count)
}

fn backend(url: &str) -> OpenAiBackend {
    let mut cfg = OpenAiConfig::new(url, Api::Completions);
    cfg.model = Some("m".into());
    cfg.max_retries = 3;
    cfg.backoff = Duration::from_millis(10);
    OpenAiBackend::connect(cfg).unwrap()
}

fn prompt() -> Prompt {
    Prompt {
        text: "Assistant:".into(),
        messages: Vec::new(),
        seed: 1,
    }
}

#[test]
fn transient_statuses_are_retried() {
    let (url, count) = serve(vec![503, 429, 500]);
    let out = backend(&url)
        .generate(&[prompt()], &GenParams::default(), 1)
        .unwrap();
    assert_eq!(out[0][0].text, "<answer>B</answer>");
    assert_eq!(out[0][0].tokens, 7);
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[test]
fn retries_run_out_and_client_errors_fail_at_once() {
    let (url, count) = serve(vec![503, 503, 503, 503, 503]);
    let err = backend(&url)
        .generate(&[prompt()], &GenParams::default(), 1)
        .unwrap_err();
    assert!(
        matches!(err, BackendError::Request { attempts: 4, .. }),
        "{err}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 4);

    // A rejected request (e.g. a prompt beyond the context) is that item's error, not the run's.
    let (url, count) = serve(vec![400]);
    let out = backend(&url)
        .generate(&[prompt()], &GenParams::default(), 1)
        .unwrap();
    let g = &out[0][0];
    assert!(g.text.is_empty() && g.tokens == 0);
    assert!(
        g.error.as_deref().is_some_and(|e| e.contains("400")),
        "{g:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // Authentication failures stop the run at once, without retries.
    let (url, count) = serve(vec![401]);
    let err = backend(&url)
        .generate(&[prompt()], &GenParams::default(), 1)
        .unwrap_err();
    assert!(
        matches!(err, BackendError::Request { attempts: 1, .. }) && err.to_string().contains("401"),
        "{err}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}
