//! Whole-or-nothing file output.
//!
//! Every file medu1 writes (prepared data, checkpoints, reports) goes through here: the bytes land in
//! a temporary file beside the target, are flushed and synced, and only then renamed over it, so a
//! crash or a full disk never leaves a half-written output behind. A failed commit removes its
//! temporary file, and creating a file removes the temporaries that killed writers of the same
//! target left behind (see [`remove_stale_temps`]).

use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A buffered writer to a temporary sibling of `target`; [`AtomicFile::commit`] renames it into
/// place. Dropping it without committing removes the temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(target: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let target = target.as_ref().to_path_buf();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        remove_stale_temps(&dir, &name);
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp)?;
        Ok(AtomicFile {
            target,
            tmp,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Flushes, syncs and renames the temporary file over the target.
    /// On failure the temporary file is removed and the target is left as it was.
    pub fn commit(mut self) -> io::Result<()> {
        let writer = self.writer.take().expect("writer present until commit");
        let finish = || {
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            fs::rename(&self.tmp, &self.target)
        };
        let result = finish();
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("writer present").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("writer present").flush()
    }
}

/// Writers that go back to patch a header (GGUF's) seek within the temporary file.
impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.writer.as_mut().expect("writer present").seek(pos)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Removes `.{name}.{pid}.tmp` files in `dir` whose writer process is gone (killed before it
/// could commit or clean up). Only temporaries of this target are touched, and only when the PID
/// is provably not running: on Linux, when `/proc/{pid}` does not exist. A writer in another PID
/// namespace (a container sharing the directory) would look dead, but it writes the same target,
/// so its commit would race ours anyway. Elsewhere nothing is removed. Best effort: errors are
/// ignored, since a leftover temporary never changes an output.
pub fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    let me = std::process::id();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != me && process_gone(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` is provably not running: on Linux, `/proc/{pid}` does not exist.
/// Elsewhere (no `/proc`) nothing is provable and this is `false`, so callers leave its files be.
pub fn process_gone(pid: u32) -> bool {
    let proc = Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// Writes `bytes` to `target` atomically.
pub fn write_atomic(target: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(target)?;
    f.write_all(bytes)?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_write_leaves_no_file() {
        let dir = std::env::temp_dir().join(format!("medu1-atomic-{}", std::process::id()));
        let target = dir.join("x.txt");
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        write_atomic(&target, b"whole").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"whole");
        fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("medu1-atomic-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn failed_commit_removes_the_temp_file() {
        let dir = scratch("failed-commit");
        // A non-empty directory at the target makes the final rename fail.
        let target = dir.join("out.jsonl");
        fs::create_dir_all(target.join("occupied")).unwrap();
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"rows").unwrap();
        assert!(f.commit().is_err());
        assert_eq!(names(&dir), ["out.jsonl"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn killed_writers_temp_files_are_cleaned_up_but_live_ones_kept() {
        let dir = scratch("stale");
        let target = dir.join("out.jsonl");
        // PIDs above the kernel's pid_max (at most 2^22) can never be alive.
        let dead = dir.join(".out.jsonl.999999999.tmp");
        fs::write(&dead, b"half a file").unwrap();
        // Our parent (the test harness's launcher) is alive while we run.
        let live = dir.join(format!(
            ".out.jsonl.{}.tmp",
            std::os::unix::process::parent_id()
        ));
        fs::write(&live, b"another writer").unwrap();
        let other = dir.join(".other.jsonl.999999999.tmp");
        fs::write(&other, b"not ours").unwrap();
        write_atomic(&target, b"whole").unwrap();
        assert!(!dead.exists(), "stale temp of a dead writer survived");
        assert!(live.exists(), "a live writer's temp was removed");
        assert!(other.exists(), "a temp of another target was removed");
        assert_eq!(fs::read(&target).unwrap(), b"whole");
        fs::remove_dir_all(&dir).unwrap();
    }
}
