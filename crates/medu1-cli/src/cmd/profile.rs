//! Resolving a `--profile` argument, shared by every subcommand that scores.

use anyhow::Context;
use medu1_reward::Profile;

/// A preset name (`med-u1`, `corrected`) or a TOML/JSON file holding a [`Profile`].
pub fn load_profile(arg: &str) -> anyhow::Result<Profile> {
    if let Some(p) = Profile::preset(arg) {
        return Ok(p);
    }
    let path = std::path::Path::new(arg);
    if !path.exists() {
        anyhow::bail!(
            "unknown reward profile `{arg}`: use one of {} or a TOML/JSON file",
            Profile::PRESETS.join(", ")
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let profile = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text)
            .with_context(|| format!("parsing profile {}", path.display()))?
    } else {
        toml::from_str(&text).with_context(|| format!("parsing profile {}", path.display()))?
    };
    Ok(profile)
}
