//! The OpenAI backend against a real OpenAI-compatible server: llama-cpp-python's server on the
//! embedded SmolLM2 GGUF, started by the test. Runs when `MEDU1_LLAMA_PYTHON` names a python with
//! `llama_cpp.server` installed (`scripts/llama_server_venv.sh` builds one); skips with a message
//! otherwise. The GGUF is `MEDU1_TEST_GGUF`, else the `medu1 setup` cache location.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{config, write_dataset};
use medu1_data::ChatTemplate;
use medu1_eval::Backend;
use medu1_eval::backend::openai::{Api, OpenAiBackend, OpenAiConfig};
use medu1_eval::resume::read_log;
use medu1_eval::runner::ITEMS_FILE;
use medu1_eval::suite::benchmark_for_file;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gguf() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MEDU1_TEST_GGUF") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("MEDU1_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/medu1")))?;
    let p = cache.join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    p.is_file().then_some(p)
}

fn start() -> Option<(Server, String)> {
    let Some(python) = std::env::var_os("MEDU1_LLAMA_PYTHON") else {
        medu1_core::testing::skip(
            "llama",
            "set MEDU1_LLAMA_PYTHON to a python with llama-cpp-python[server] \
             (scripts/llama_server_venv.sh)",
        );
        return None;
    };
    let Some(model) = gguf() else {
        medu1_core::testing::skip(
            "model",
            "no GGUF (run `medu1 setup` or set MEDU1_TEST_GGUF)",
        );
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python)
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(&model)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--n_ctx", "2048", "--n_threads", "2", "--verbose", "false"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting llama_cpp.server");
    let mut server = Server(child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("llama_cpp.server exited during start-up: {status}");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "llama_cpp.server did not start in 180 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    Some((server, url))
}

#[test]
fn eval_through_completions_and_chat_on_a_real_server() {
    let Some((_server, url)) = start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = write_dataset(tmp.path(), "tiny", 3, 1);
    for api in [Api::Completions, Api::Chat] {
        let mut cfg = OpenAiConfig::new(url.clone(), api);
        cfg.concurrency = 2;
        cfg.max_retries = 6;
        // Model discovery goes through the same retrying client: the port may accept
        // connections a moment before the app answers.
        let backend = OpenAiBackend::connect(cfg).unwrap();
        assert!(backend.model().ends_with(".gguf"), "{}", backend.model());
        let out = tmp.path().join(format!("{api:?}"));
        let mut rc = config(&out, vec![benchmark_for_file(&data)], 2);
        rc.params.max_tokens = 24;
        rc.params.temperature = 0.8;
        rc.template = ChatTemplate::smollm2();
        rc.template_name = "smollm2".into();
        let s = medu1_eval::run(&backend, &rc, &mut |_| {}).unwrap();
        assert_eq!(s.generated, 4);
        let st = &s.stats[0];
        assert_eq!((st.items, st.n), (4, 2));
        assert!(st.tokens_mean > 0.0 && st.tokens_mean <= 24.0, "{st:?}");
        assert!(st.ci_low <= st.accuracy && st.accuracy <= st.ci_high);
        let log = read_log(&out.join(ITEMS_FILE)).unwrap();
        assert_eq!(log.len(), 4);
        for r in &log {
            assert_eq!(r.responses.len(), 2);
            for x in &r.responses {
                // usage.completion_tokens is the length of exactly this sample.
                assert!(x.tokens >= 1 && x.tokens <= 24, "{x:?}");
                assert!(!x.text.is_empty(), "{x:?}");
            }
        }
        let md = std::fs::read_to_string(&s.paths.markdown).unwrap();
        assert!(
            md.contains("| tiny |") && md.contains(&backend.describe()),
            "{md}"
        );
        // Everything is on disk: a rerun generates nothing.
        let s = medu1_eval::run(&backend, &rc, &mut |_| {}).unwrap();
        assert_eq!((s.resumed, s.generated), (4, 0));
    }
}
