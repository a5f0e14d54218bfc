//! Per-step metrics: one JSON object a line in `metrics.jsonl` (appended and flushed each step, so a
//! crash loses nothing) and the same table as `metrics.csv` (rewritten atomically each step, with
//! the union of all columns, for spreadsheets and pandas).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One step's figures by name (`reward/mean`, `reward/mean/MedIQ`, `time/rollout_s`, ...).
pub type Record = BTreeMap<String, f64>;

#[derive(Debug)]
pub struct MetricsLog {
    dir: PathBuf,
    records: Vec<Record>,
    jsonl: File,
}

impl MetricsLog {
    /// Opens `dir/metrics.jsonl`, keeping the records of steps `<= keep_through` (a resumed run
    /// drops what the interrupted run logged after its checkpoint) and rewriting the file.
    pub fn open(dir: &Path, keep_through: Option<u64>) -> std::io::Result<MetricsLog> {
        Self::open_with(dir, keep_through, None)
    }

    /// [`MetricsLog::open`], then appends `restored` (the resumed checkpoint's own row) when the
    /// log stops short of its step: the run was killed between the checkpoint and the row.
    pub fn open_with(
        dir: &Path,
        keep_through: Option<u64>,
        restored: Option<Record>,
    ) -> std::io::Result<MetricsLog> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("metrics.jsonl");
        let mut records = Vec::new();
        if let (Ok(f), Some(last)) = (File::open(&path), keep_through) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                // A torn last line from a crash is dropped: its step is redone.
                let Ok(rec) = parse_row(&line) else {
                    continue;
                };
                if rec.get("step").is_some_and(|s| *s as u64 <= last) {
                    records.push(rec);
                }
            }
        }
        if let Some(row) = restored {
            let step = row.get("step").copied();
            let logged = |s: f64| records.iter().any(|r| r.get("step") == Some(&s));
            if step.is_some_and(|s| !logged(s)) {
                records.push(row);
            }
        }
        let mut body = String::new();
        for r in &records {
            body.push_str(&serde_json::to_string(r).unwrap_or_default());
            body.push('\n');
        }
        medu1_core::atomic::write_atomic(&path, body.as_bytes())?;
        let jsonl = OpenOptions::new().append(true).open(&path)?;
        Ok(MetricsLog {
            dir: dir.to_path_buf(),
            records,
            jsonl,
        })
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    pub fn push(&mut self, rec: Record) -> std::io::Result<()> {
        let line = serde_json::to_string(&rec).map_err(std::io::Error::other)?;
        writeln!(self.jsonl, "{line}")?;
        self.jsonl.flush()?;
        self.records.push(rec);
        self.write_csv()
    }

    fn write_csv(&self) -> std::io::Result<()> {
        let cols: BTreeSet<&str> = self
            .records
            .iter()
            .flat_map(|r| r.keys().map(String::as_str))
            .collect();
        let mut cols: Vec<&str> = cols.into_iter().collect();
        cols.retain(|c| *c != "step");
        cols.insert(0, "step");
        let mut out = cols.join(",");
        out.push('\n');
        for r in &self.records {
            let row: Vec<String> = cols
                .iter()
                .map(|c| r.get(*c).map(|v| format!("{v}")).unwrap_or_default())
                .collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
        medu1_core::atomic::write_atomic(self.dir.join("metrics.csv"), out.as_bytes())
    }
}

/// Reads a run's `metrics.jsonl` (for plotting); torn or foreign lines are skipped.
pub fn read_metrics(run_dir: &Path) -> std::io::Result<Vec<Record>> {
    let f = File::open(run_dir.join("metrics.jsonl"))?;
    Ok(BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| parse_row(&l).ok())
        .collect())
}

/// One metrics row as written by [`MetricsLog::push`]. JSON has no NaN or infinity, so
/// serde_json writes them as `null`; they are read back as NaN instead of failing the row
/// (which dropped a step that had a NaN reward from the log on resume).
pub fn parse_row(line: &str) -> serde_json::Result<Record> {
    let raw: BTreeMap<String, Option<f64>> = serde_json::from_str(line)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

/// `records` preceded by the validation before training (`val_before.json`, written when
/// `trainer.val_before_train` is set) as step 0, so curves start from the baseline the run
/// is judged against. Without that file the records are returned as they are; a file that is
/// there but unreadable is an error naming it, not a curve silently missing its start.
pub fn with_validation_baseline(
    run_dir: &Path,
    records: &[Record],
) -> std::io::Result<Vec<Record>> {
    let path = run_dir.join("val_before.json");
    let mut out = Vec::with_capacity(records.len() + 1);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut b: Record = serde_json::from_str(&text).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            b.insert("step".into(), 0.0);
            out.push(b);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ));
        }
    }
    out.extend(records.iter().cloned());
    Ok(out)
}

/// Mean and population standard deviation.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, v.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_start_from_the_validation_before_training() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Record::new();
        r.insert("step".into(), 1.0);
        assert_eq!(
            with_validation_baseline(dir.path(), &[r.clone()])
                .unwrap()
                .len(),
            1
        );
        std::fs::write(
            dir.path().join("val_before.json"),
            r#"{"val/reward/mean": -0.5, "val/format_rate": 0.6}"#,
        )
        .unwrap();
        let out = with_validation_baseline(dir.path(), &[r.clone()]).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["step"], 0.0);
        assert_eq!(out[0]["val/reward/mean"], -0.5);
        assert_eq!(out[1]["step"], 1.0);
        std::fs::write(dir.path().join("val_before.json"), "{\"val/reward/mean\": ").unwrap();
        let err = with_validation_baseline(dir.path(), &[r]).unwrap_err();
        assert!(err.to_string().contains("val_before.json"), "{err}");
    }

    #[test]
    fn resume_truncates_later_steps_and_torn_lines() {
        let dir = std::env::temp_dir().join(format!("medu1-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut log = MetricsLog::open(&dir, None).unwrap();
        for s in 1..=3 {
            log.push(Record::from([
                ("step".into(), s as f64),
                ("x".into(), s as f64 * 2.0),
            ]))
            .unwrap();
        }
        drop(log);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("metrics.jsonl"))
            .unwrap();
        write!(f, "{{\"step\": 4, \"x\"").unwrap();
        drop(f);
        let log = MetricsLog::open(&dir, Some(2)).unwrap();
        assert_eq!(log.records().len(), 2);
        let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap_or_default();
        assert!(csv.is_empty() || csv.starts_with("step,"));
        assert_eq!(read_metrics(&dir).unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
