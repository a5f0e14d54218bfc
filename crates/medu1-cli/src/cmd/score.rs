//! `medu1 score`: score a JSONL file of responses with the Med-U1 reward.
//!
//! One [`ScoreRequest`] per input line, one output line per input line in the same order (reward,
//! terms and components; `--explain` adds the full trace). A line that cannot be scored still gets
//! an output line, with an `error` object naming the line and the field, so nothing is silently
//! dropped. A summary by data source goes to stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::status::note;
use anyhow::{Context, Result, bail};
use medu1_core::atomic::AtomicFile;
use medu1_reward::{Profile, RowError, ScoreOptions, ScoreOutput, ScoreRequest, score_request};
use rayon::prelude::*;
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// JSONL input: one request per line (`data_source`, `solution_str` or `prompt`+`response`,
    /// `ground_truth`, optional `lower_limit`/`upper_limit`, `num_tokens`,
    /// `valid_response_length`, `settings`).
    input: PathBuf,
    /// Output JSONL (written atomically); stdout when omitted.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// `med-u1` (the reference, default), `corrected`, or a TOML/JSON profile file.
    #[arg(long, default_value = "med-u1")]
    profile: String,
    /// Attach the full per-sample trace to every output line.
    #[arg(long)]
    explain: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Rouge-L (quadratic in length) only for answers and ground truths of at most this many
    /// normalised words, else the line's components carry `rouge_l_skipped`; 0: no cap.
    #[arg(long, default_value_t = medu1_reward::DEFAULT_MAX_ROUGE_WORDS)]
    max_rouge_words: usize,
    /// Exit with an error status when any line failed.
    #[arg(long)]
    strict: bool,
}

/// A preset name or a profile file.
pub fn load_profile(spec: &str) -> Result<Profile> {
    if let Some(p) = Profile::preset(spec) {
        return Ok(p);
    }
    let path = Path::new(spec);
    if !path.is_file() {
        bail!(
            "unknown profile {spec:?}: not a preset ({}) and not a file",
            Profile::PRESETS.join(", ")
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let profile: Profile = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
    } else {
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
    };
    Ok(profile)
}

/// The field named by serde's "missing field `x`" / "unknown field `x`" messages, the errors
/// raised on the object itself (other backticks in serde messages quote the bad value).
fn field_of(msg: &str) -> Option<String> {
    let rest = msg
        .strip_prefix("missing field `")
        .or_else(|| msg.strip_prefix("unknown field `"))?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// The input's lines, each decoded on its own so that one line of invalid UTF-8 fails only
/// itself. A leading UTF-8 byte-order mark (Windows editors write one) is skipped; `\r\n` endings
/// are accepted as by [`str::lines`].
fn split_lines(bytes: &[u8]) -> Vec<Result<&str, String>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            std::str::from_utf8(l).map_err(|e| {
                format!(
                    "line {}: invalid utf-8 at byte {} of the line",
                    i + 1,
                    e.valid_up_to()
                )
            })
        })
        .collect()
}

/// One scored or failed line.
struct Row {
    data_source: Option<String>,
    result: Result<ScoreOutput, RowError>,
}

/// The row of one line as [`split_lines`] decoded it: scored, or its decoding error.
fn score_decoded(profile: &Profile, line: &Result<&str, String>, opts: ScoreOptions) -> Row {
    match line {
        Ok(l) => score_line(profile, l, opts),
        Err(message) => Row {
            data_source: None,
            result: Err(RowError::Invalid {
                field: None,
                message: message.clone(),
            }),
        },
    }
}

fn score_line(profile: &Profile, line: &str, opts: ScoreOptions) -> Row {
    if line.trim().is_empty() {
        let e = RowError::Invalid {
            field: None,
            message: "empty line".into(),
        };
        return Row {
            data_source: None,
            result: Err(e),
        };
    }
    // serde_path_to_error names the field of a wrong-typed value (`num_tokens`,
    // `settings.bleu_threshold`); serde's own message quotes only the value.
    let mut de = serde_json::Deserializer::from_str(line);
    let parsed = match serde_path_to_error::deserialize::<_, ScoreRequest>(&mut de) {
        Ok(req) => de.end().map(|()| req).map_err(|e| (None, e.to_string())),
        Err(e) => {
            let message = e.inner().to_string();
            let path = e.path().to_string();
            let field = if path == "." {
                field_of(&message)
            } else {
                Some(path)
            };
            Err((field, message))
        }
    };
    match parsed {
        Ok(req) => {
            let result = score_request(profile, &req, opts);
            Row {
                data_source: Some(req.data_source),
                result,
            }
        }
        Err((field, message)) => {
            // Keep the data source for the summary when the line is JSON at all.
            let data_source = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("data_source")?.as_str().map(str::to_owned));
            Row {
                data_source,
                result: Err(RowError::Invalid { field, message }),
            }
        }
    }
}

fn output_line(n: usize, row: &Row) -> Result<String> {
    let v = match &row.result {
        Ok(out) => {
            let mut v = serde_json::to_value(out)?;
            if let Value::Object(m) = &mut v {
                m.insert("line".into(), json!(n));
                m.insert("data_source".into(), json!(row.data_source));
            }
            v
        }
        Err(e) => json!({
            "line": n,
            "data_source": row.data_source,
            "error": {
                "line": n,
                "field": e.field(),
                "message": e.to_string(),
                "detail": e,
            }
        }),
    };
    Ok(serde_json::to_string(&v)?)
}

#[derive(Default)]
struct Summary {
    n: usize,
    scored: usize,
    reward: f64,
    format_ok: usize,
    correct: usize,
    errors: usize,
}

pub fn run(a: ScoreArgs) -> Result<()> {
    let profile = load_profile(&a.profile)?;
    let bytes =
        std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    let lines = split_lines(&bytes);
    let opts = ScoreOptions {
        components: true,
        trace: a.explain,
        max_rouge_words: (a.max_rouge_words > 0).then_some(a.max_rouge_words),
    };
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()?;
    let rows: Vec<Row> = pool.install(|| {
        lines
            .par_iter()
            .map(|l| score_decoded(&profile, l, opts))
            .collect()
    });

    let mut out: Box<dyn Write> = Box::new(std::io::BufWriter::new(std::io::stdout().lock()));
    let mut file = None;
    if let Some(path) = &a.output {
        file =
            Some(AtomicFile::create(path).with_context(|| format!("creating {}", path.display()))?);
    }
    let mut summary: BTreeMap<String, Summary> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let line = output_line(i + 1, row)?;
        match file.as_mut() {
            Some(f) => writeln!(f, "{line}")?,
            None => writeln!(out, "{line}")?,
        }
        let key = row
            .data_source
            .clone()
            .unwrap_or_else(|| "(unknown)".into());
        let s = summary.entry(key).or_default();
        s.n += 1;
        match &row.result {
            Ok(o) => {
                s.scored += 1;
                s.reward += o.reward;
                s.format_ok += usize::from(o.format_valid);
                s.correct += usize::from(o.answer > 0.0);
            }
            Err(_) => s.errors += 1,
        }
    }
    out.flush()?;
    drop(out);
    if let Some(f) = file {
        f.commit().context("writing the output file")?;
    }

    let errors: usize = summary.values().map(|s| s.errors).sum();
    note!(
        "profile {} ({} lines, {errors} errors)",
        profile.name,
        rows.len()
    );
    note!(
        "{:<28} {:>7} {:>12} {:>12} {:>10} {:>7}",
        "data_source",
        "n",
        "mean reward",
        "format rate",
        "accuracy",
        "errors"
    );
    for (ds, s) in &summary {
        let d = s.scored.max(1) as f64;
        note!(
            "{:<28} {:>7} {:>12.4} {:>12.4} {:>10.4} {:>7}",
            ds,
            s.n,
            s.reward / d,
            s.format_ok as f64 / d,
            s.correct as f64 / d,
            s.errors
        );
    }
    if errors > 0 {
        note!("{errors} line(s) could not be scored; see their `error` objects");
        if a.strict {
            bail!("{errors} line(s) could not be scored");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_name_line_and_field() {
        let p = Profile::med_u1();
        let opts = ScoreOptions::default();
        let row = score_line(&p, r#"{"data_source":"MedIQ","solution_str":"x"}"#, opts);
        let line = output_line(7, &row).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["error"]["line"], 7);
        assert_eq!(v["error"]["field"], "ground_truth");
        assert_eq!(v["data_source"], "MedIQ");

        let row = score_line(
            &p,
            r#"{"data_source":"MedCalc-Bench","solution_str":"Assistant:<answer>5</answer>","ground_truth":"5","lower_limit":"abc"}"#,
            opts,
        );
        let v: Value = serde_json::from_str(&output_line(1, &row).unwrap()).unwrap();
        assert_eq!(v["error"]["field"], "lower_limit");
        assert_eq!(v["error"]["detail"]["python_exception"], "ValueError");
    }

    #[test]
    fn lines_split_like_str_lines_and_decode_one_by_one() {
        let got = split_lines(b"\xEF\xBB\xBFa\r\n\xff\nb\n\nc");
        assert_eq!(got.len(), 5);
        assert_eq!(got[0], Ok("a"));
        assert!(
            got[1]
                .as_ref()
                .unwrap_err()
                .starts_with("line 2: invalid utf-8")
        );
        assert_eq!(got[2..], [Ok("b"), Ok(""), Ok("c")]);
        assert!(split_lines(b"").is_empty());
        assert_eq!(split_lines(b"x\n"), [Ok("x")]);
    }

    #[test]
    fn good_lines_carry_terms() {
        let p = Profile::med_u1();
        let opts = ScoreOptions {
            components: true,
            ..Default::default()
        };
        let row = score_line(
            &p,
            r#"{"data_source":"MedIQ","solution_str":"Assistant:<think>x</think><answer>B</answer>","ground_truth":"B"}"#,
            opts,
        );
        let v: Value = serde_json::from_str(&output_line(1, &row).unwrap()).unwrap();
        assert_eq!(v["reward"], 2.0);
        assert_eq!(v["format"], 1.0);
        assert_eq!(v["components"]["ems"], 100.0);
    }

    #[test]
    fn profiles_load_from_presets_and_toml() {
        assert_eq!(load_profile("corrected").unwrap().name, "corrected");
        let dir = std::env::temp_dir().join(format!("medu1-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.toml");
        std::fs::write(&f, "name = \"mine\"\n[settings]\nreward_metric = \"EMS\"\n[fixes]\nbleu_percent_scale = true\n").unwrap();
        let p = load_profile(f.to_str().unwrap()).unwrap();
        assert_eq!(p.name, "mine");
        assert!(p.fixes.bleu_percent_scale);
        assert!(load_profile("nope-not-a-file").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Fuzzing the score-line path (`split_lines` + `score_line` + `output_line`) on arbitrary
    /// bytes for `MEDU1_FUZZ_SECS` seconds (default 2): no panic, and exactly one output line,
    /// carrying its line number, per input line.
    #[test]
    #[allow(clippy::print_stdout)]
    fn fuzz_score_lines() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestCaseError, TestRunner};
        const PIECES: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "\n",
            "\r\n",
            "\u{feff}",
            "\\u0000",
            "\"data_source\":",
            "\"MedIQ\"",
            "\"MedCalc-Bench\"",
            "\"medical-o1-reasoning-SFT\"",
            "\"solution_str\":",
            "\"Assistant:<think>a</think><answer>B</answer>\"",
            "\"ground_truth\":",
            "\"B\"",
            "3",
            "null",
            "\"lower_limit\":",
            "\"settings\":",
            "{\"check_think\":false}",
            "1e999",
            "\u{ff}",
        ];
        let bytes = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            prop::collection::vec(prop::sample::select(PIECES), 0..48)
                .prop_map(|v| v.concat().into_bytes()),
        ];
        let secs: f64 = std::env::var("MEDU1_FUZZ_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
        let config = Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        };
        // A runner counts its successes across calls: a fresh one per batch.
        let mut master = TestRunner::new(config.clone());
        let p = Profile::med_u1();
        let opts = ScoreOptions {
            components: true,
            trace: true,
            max_rouge_words: Some(medu1_reward::DEFAULT_MAX_ROUGE_WORDS),
        };
        let mut cases = 0u64;
        while cases == 0 || std::time::Instant::now() < deadline {
            TestRunner::new_with_rng(config.clone(), master.new_rng())
                .run(&bytes, |b| {
                    let lines = split_lines(&b);
                    let expected = {
                        let t = String::from_utf8_lossy(&b);
                        t.strip_prefix('\u{feff}').unwrap_or(&t).lines().count()
                    };
                    prop_assert_eq!(lines.len(), expected);
                    for (i, l) in lines.iter().enumerate() {
                        let row = score_decoded(&p, l, opts);
                        let out = output_line(i + 1, &row)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        let v: Value = serde_json::from_str(&out)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(&v["line"], &json!(i + 1));
                    }
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("score lines: {e}"));
            cases += 256;
        }
        println!("fuzz score lines: {cases} cases, 0 failures");
    }
}
