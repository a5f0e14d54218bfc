//! The report users judge a model by: one row per benchmark in markdown (for reading), JSON (for
//! tools) and CSV (for spreadsheets), plus the bar chart. Every file is written atomically, so a
//! report on disk is always a complete one.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use medu1_core::atomic::{AtomicFile, write_atomic};
use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::metrics::BenchmarkStats;
use crate::record::RunMeta;

pub const MARKDOWN_FILE: &str = "report.md";
pub const JSON_FILE: &str = "report.json";
pub const CSV_FILE: &str = "report.csv";
pub const PLOT_FILE: &str = "accuracy.png";

/// What the report says about how it was produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportMeta {
    pub run: RunMeta,
    pub limit: Option<usize>,
}

/// The files written.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPaths {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub csv: PathBuf,
    pub plot: Option<PathBuf>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    meta: &'a ReportMeta,
    benchmarks: &'a [BenchmarkStats],
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

/// The markdown table (also what the CLI prints).
pub fn markdown(meta: &ReportMeta, stats: &[BenchmarkStats]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# medu1 evaluation\n");
    let _ = writeln!(s, "- backend: `{}`", meta.run.backend);
    let p = &meta.run.params;
    let _ = writeln!(
        s,
        "- samples per item n = {}, temperature {}, top-p {}, max tokens {}, seed {}",
        meta.run.n, p.temperature, p.top_p, p.max_tokens, p.seed
    );
    let _ = writeln!(
        s,
        "- prompts: variant `{}`, template `{}`, budget `{}` (seed {}); rules `{}`, reward profile `{}`",
        meta.run.variant,
        meta.run.template,
        meta.run.budget,
        meta.run.budget_seed,
        meta.run.rule,
        meta.run.profile
    );
    if let Some(l) = meta.limit {
        let _ = writeln!(s, "- first {l} items per benchmark");
    }
    let n = stats.iter().map(|b| b.n).max().unwrap_or(1);
    let ks: Vec<usize> = stats
        .first()
        .map(|b| b.pass_at_k.keys().copied().filter(|&k| k > 1).collect())
        .unwrap_or_default();
    let _ = write!(s, "\n| benchmark | rule | items | accuracy % (95% CI) |");
    for k in &ks {
        let _ = write!(s, " pass@{k} % |");
    }
    if n > 1 {
        let _ = write!(s, " maj@{n} % |");
    }
    let _ = writeln!(
        s,
        " format % | answered % | truncated % | tokens mean | tokens median | train reward |"
    );
    let cols = 10 + ks.len() + usize::from(n > 1);
    let _ = writeln!(s, "|{}", "---|".repeat(cols));
    for b in stats {
        let _ = write!(
            s,
            "| {} | {} | {} | {} ({}–{}) |",
            b.benchmark,
            b.rule,
            b.items,
            pct(b.accuracy),
            pct(b.ci_low),
            pct(b.ci_high)
        );
        for k in &ks {
            let v = b.pass_at_k.get(k).copied().unwrap_or(f64::NAN);
            let _ = write!(s, " {} |", pct(v));
        }
        if n > 1 {
            let _ = write!(s, " {} |", pct(b.maj_at_n));
        }
        let _ = writeln!(
            s,
            " {} | {} | {} | {:.1} | {:.1} | {} |",
            pct(b.format_compliance),
            pct(b.answered),
            pct(b.truncated),
            b.tokens_mean,
            b.tokens_median,
            b.train_reward_mean
                .map_or_else(|| "–".to_string(), |r| format!("{r:.3}"))
        );
    }
    if stats.len() > 1 {
        let m = stats.iter().map(|b| b.accuracy).sum::<f64>() / stats.len() as f64;
        let _ = writeln!(s, "\nMacro-average accuracy: {} %", pct(m));
    }
    let budgeted: Vec<&BenchmarkStats> = stats.iter().filter(|b| b.budget.is_some()).collect();
    if !budgeted.is_empty() {
        let _ = writeln!(
            s,
            "\n## Budget adherence\n\n| benchmark | exact-budget responses | mean abs. rel. error | within ±20 % | max-budget responses | within max % |\n|---|---|---|---|---|---|"
        );
        for b in budgeted {
            let g = b.budget.as_ref().expect("filtered");
            let _ = writeln!(
                s,
                "| {} | {} | {:.3} | {} | {} | {} |",
                b.benchmark,
                g.exact_responses,
                g.exact_mean_rel_error,
                pct(g.exact_within_20pct),
                g.max_responses,
                pct(g.max_adherence)
            );
        }
    }
    let errors: usize = stats.iter().map(|b| b.grading_errors).sum();
    if errors > 0 {
        let _ = writeln!(
            s,
            "\n{errors} responses failed (request rejected or grading error; counted wrong); see `error` in items.jsonl."
        );
    }
    let _ = writeln!(
        s,
        "\nAccuracy is mean@n; the interval is Wilson's over items. Per-item prompts, responses, \
         extracted answers and verdicts: `items.jsonl`."
    );
    s
}

fn write_csv(path: &Path, stats: &[BenchmarkStats]) -> Result<(), EvalError> {
    let csv_err = |source| EvalError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut f = AtomicFile::create(path).map_err(EvalError::io(path))?;
    {
        let mut w = csv::Writer::from_writer(&mut f);
        let ks: Vec<usize> = stats
            .first()
            .map(|b| b.pass_at_k.keys().copied().collect())
            .unwrap_or_default();
        let mut header: Vec<String> = [
            "benchmark",
            "rule",
            "items",
            "n",
            "accuracy",
            "ci_low",
            "ci_high",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        header.extend(ks.iter().map(|k| format!("pass@{k}")));
        header.extend(
            [
                "maj@n",
                "format_compliance",
                "answered",
                "truncated",
                "tokens_mean",
                "tokens_median",
                "train_reward_mean",
                "grading_errors",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        w.write_record(&header).map_err(csv_err)?;
        for b in stats {
            let mut row = vec![
                b.benchmark.clone(),
                b.rule.clone(),
                b.items.to_string(),
                b.n.to_string(),
                format!("{:.6}", b.accuracy),
                format!("{:.6}", b.ci_low),
                format!("{:.6}", b.ci_high),
            ];
            row.extend(ks.iter().map(|k| {
                b.pass_at_k
                    .get(k)
                    .map_or_else(String::new, |v| format!("{v:.6}"))
            }));
            row.extend([
                format!("{:.6}", b.maj_at_n),
                format!("{:.6}", b.format_compliance),
                format!("{:.6}", b.answered),
                format!("{:.6}", b.truncated),
                format!("{:.3}", b.tokens_mean),
                format!("{:.1}", b.tokens_median),
                b.train_reward_mean
                    .map_or_else(String::new, |r| format!("{r:.6}")),
                b.grading_errors.to_string(),
            ]);
            w.write_record(&row).map_err(csv_err)?;
        }
        w.flush().map_err(EvalError::io(path))?;
    }
    f.flush().map_err(EvalError::io(path))?;
    f.commit().map_err(EvalError::io(path))
}

/// Writes `report.md`, `report.json`, `report.csv` and (with `plot`) `accuracy.png` into `dir`.
pub fn write_reports(
    dir: &Path,
    meta: &ReportMeta,
    stats: &[BenchmarkStats],
    plot: bool,
) -> Result<ReportPaths, EvalError> {
    let paths = ReportPaths {
        markdown: dir.join(MARKDOWN_FILE),
        json: dir.join(JSON_FILE),
        csv: dir.join(CSV_FILE),
        plot: plot.then(|| dir.join(PLOT_FILE)),
    };
    write_atomic(&paths.markdown, markdown(meta, stats).as_bytes())
        .map_err(EvalError::io(&paths.markdown))?;
    let json = serde_json::to_vec_pretty(&JsonReport {
        meta,
        benchmarks: stats,
    })
    .expect("report serializes");
    write_atomic(&paths.json, &json).map_err(EvalError::io(&paths.json))?;
    write_csv(&paths.csv, stats)?;
    if let Some(p) = &paths.plot {
        crate::plot::accuracy_chart(p, stats)?;
    }
    Ok(paths)
}
