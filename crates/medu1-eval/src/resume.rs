//! The per-item log: one JSON line per finished item, appended and flushed as soon as the item is
//! graded, so a killed run loses at most the batch in flight and a rerun continues where it
//! stopped.
//!
//! A kill can tear the last line; [`read_log`] drops an unterminated or unparsable final line
//! and truncates the file to its last complete line, so the next append starts on a clean line.
//! A bad line anywhere else is corruption, reported with its line number, never silently skipped.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::EvalError;
use crate::record::ItemRecord;

/// The log's records, in file order; an absent file is an empty log.
pub fn read_log(path: &Path) -> Result<Vec<ItemRecord>, EvalError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EvalError::io(path)(e)),
    };
    let mut out = Vec::new();
    let mut good_len = 0usize;
    let mut start = 0usize;
    let mut line_no = 0usize;
    while start < bytes.len() {
        line_no += 1;
        let end = bytes[start..].iter().position(|&b| b == b'\n');
        let (line, terminated) = match end {
            Some(e) => (&bytes[start..start + e], true),
            None => (&bytes[start..], false),
        };
        let next = start + line.len() + usize::from(terminated);
        let is_last = next >= bytes.len();
        if line.iter().all(u8::is_ascii_whitespace) {
            start = next;
            if terminated {
                good_len = next;
            }
            continue;
        }
        match serde_json::from_slice::<ItemRecord>(line) {
            Ok(r) if terminated => {
                out.push(r);
                good_len = next;
            }
            // A complete record without its newline, or a torn one: only the last line may be
            // either, and it is rewritten by the resumed run.
            Ok(_) | Err(_) if is_last => break,
            Err(e) => {
                return Err(EvalError::Resume {
                    path: path.to_path_buf(),
                    line: line_no,
                    message: e.to_string(),
                });
            }
            Ok(_) => unreachable!("unterminated lines are last"),
        }
        start = next;
    }
    if good_len < bytes.len() {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(EvalError::io(path))?;
        f.set_len(good_len as u64).map_err(EvalError::io(path))?;
        f.sync_all().map_err(EvalError::io(path))?;
    }
    Ok(out)
}

/// An append-only writer of the log that makes every record durable before returning.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    w: BufWriter<File>,
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<LogWriter, EvalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(EvalError::io(dir))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(EvalError::io(path))?;
        Ok(LogWriter {
            path: path.to_path_buf(),
            w: BufWriter::new(f),
        })
    }

    /// Appends the records and flushes them to the OS (and the disk) before returning.
    pub fn append(&mut self, records: &[ItemRecord]) -> Result<(), EvalError> {
        let io = |e| EvalError::Io {
            path: self.path.clone(),
            source: e,
        };
        for r in records {
            let line = serde_json::to_string(r).map_err(|e| io(std::io::Error::other(e)))?;
            self.w.write_all(line.as_bytes()).map_err(io)?;
            self.w.write_all(b"\n").map_err(io)?;
        }
        self.w.flush().map_err(io)?;
        self.w.get_ref().sync_data().map_err(io)
    }
}
