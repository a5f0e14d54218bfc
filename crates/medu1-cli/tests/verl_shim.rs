//! The verl shim (`integrations/verl/medu1_reward.py`) against a live `medu1 serve`.
#![allow(clippy::print_stdout)] // the test reports what it skipped and what python said

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn verl_shim_against_live_server() {
    if Command::new("python3").arg("--version").output().is_err() {
        medu1_core::testing::skip("python3", "python3 not found");
        return;
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut child = Command::new(env!("CARGO_BIN_EXE_medu1"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start medu1 serve");
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let out = Command::new("python3")
        .args([
            "-m",
            "unittest",
            "-v",
            "integrations/verl/test_medu1_reward.py",
        ])
        .current_dir(root)
        .env("MEDU1_REWARD_URL", &url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    println!("{text}");
    assert!(out.status.success(), "python shim tests failed:\n{text}");
    assert!(text.contains("Ran 12 tests"), "all shim tests ran: {text}");
    drop(server);
}
