//! For the workspace's tests: skipping a test whose fixture is absent, visibly, and refusing to
//! skip where the fixture must be there.
//!
//! A test that needs something outside the repository (`../shared/data`, the embedded model, a
//! Python venv) calls [`skip`] and returns when it is missing. The skip is written to stderr past
//! the test harness's output capture, one line per test (`SKIPPED <test> [<fixture>]: <why>`), so
//! a green `cargo test` shows what it did not check. `MEDU1_REQUIRE_FIXTURES` lists fixtures that
//! must be present (comma-separated, or `all`); `scripts/test.sh` sets it to what it installs, and
//! there a skip of a listed fixture fails the test instead.
//!
//! Fixture names: `shared-data` (`../shared/data`), `golden` (`../shared/golden`), `model` (the
//! embedded GGUF that `medu1 setup` installs), `pyarrow` (`MEDU1_PYTHON`), `llama`
//! (`MEDU1_LLAMA_PYTHON`), `frameworks` (`MEDU1_FRAMEWORKS_PYTHON`), `python3`.

use std::io::Write;

/// The variable naming the fixtures whose absence fails a test.
pub const REQUIRE_VAR: &str = "MEDU1_REQUIRE_FIXTURES";

/// Whether `MEDU1_REQUIRE_FIXTURES` requires `fixture`.
pub fn required(fixture: &str) -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|f| f == fixture || f == "all" || f == "1")
    })
}

/// Reports that the current test skips because `fixture` is missing (`why` says where it was
/// looked for and how to provide it); panics instead when the fixture is required. The caller
/// returns after this.
pub fn skip(fixture: &str, why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("test");
    assert!(
        !required(fixture),
        "{test}: fixture `{fixture}` is required ({REQUIRE_VAR}) but missing: {why}"
    );
    // Straight to the stderr handle: the harness captures print!/eprint!, not this.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test} [{fixture}]: {why}");
}
