//! Error text. The crates' error types give each cause once: a variant that wraps another error
//! says what failed in its own message and keeps the cause as its `source`, so an anyhow chain
//! (`medu1`'s exit message) prints every cause once. Where an error is kept as text instead (a
//! per-row message, a JSON field, a `String` error of another API), [`chain`] writes the message
//! and all its causes on one line.

use std::error::Error;

/// `error: cause: cause's cause`, the whole [`Error::source`] chain on one line.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let text = e.to_string();
        // A cause already spelled out by the message above it is not repeated.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("reading x.json")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn every_cause_once_on_one_line() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(chain(&e), "reading x.json: disk on fire");
        let io = std::io::Error::other("plain");
        assert_eq!(chain(&io), "plain");
    }
}
