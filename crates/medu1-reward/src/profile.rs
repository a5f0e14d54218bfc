//! Reward settings and named profiles.
//!
//! A [`Profile`] is everything that changes what a sample scores: the trainer's reward settings
//! (the reference's `algorithm.*` keys) plus switches for deliberate deviations from the reference
//! ([`Fixes`]). Keeping them in one serde struct means a run's reward is reproducible from one
//! TOML/JSON file, and no fix is a code path hidden behind an ad-hoc flag.

use serde::{Deserialize, Serialize};

/// Which free-text metric the discrete/continuous reward uses (`algorithm.reward_metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RewardMetric {
    #[serde(rename = "BLEU", alias = "bleu")]
    Bleu,
    #[serde(rename = "EMS", alias = "ems")]
    Ems,
    #[serde(rename = "Merge", alias = "merge")]
    Merge,
}

/// `algorithm.reward_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RewardType {
    /// ±1 by `metric > bleu_threshold`.
    Discrete,
    /// `metric / scale_factor`.
    Continuous,
}

/// The reference's reward arguments. Defaults are the released training script's
/// (`run_medu1.sh`): Merge, discrete, threshold 45, scale 100, `check_think`, format reward 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub reward_metric: RewardMetric,
    pub reward_type: RewardType,
    /// Strict `>` threshold of the discrete free-text reward and of validation Merge.
    pub bleu_threshold: f64,
    /// Divisor of the continuous reward.
    pub scale_factor: f64,
    /// `true`: the format term uses the tag rule; `false`: it only asks that an answer exists.
    pub check_think: bool,
    /// Magnitude of the format term (+value when the format holds, −|value| otherwise).
    pub format_reward: f64,
    /// Divisor of the exact-mode length term `1 − |L − N| / scale` (reference: 1500).
    pub length_exact_scale: f64,
    /// Divisor of the maximum-mode length term `−(L − |N|) / scale` (reference: 500, its
    /// `beta = 1/500`).
    pub length_max_scale: f64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            reward_metric: RewardMetric::Merge,
            reward_type: RewardType::Discrete,
            bleu_threshold: 45.0,
            scale_factor: 100.0,
            check_think: true,
            format_reward: 1.0,
            length_exact_scale: 1500.0,
            length_max_scale: 500.0,
        }
    }
}

/// Per-field overrides of [`Settings`] (e.g. per request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsOverride {
    pub reward_metric: Option<RewardMetric>,
    pub reward_type: Option<RewardType>,
    pub bleu_threshold: Option<f64>,
    pub scale_factor: Option<f64>,
    pub check_think: Option<bool>,
    pub format_reward: Option<f64>,
    pub length_exact_scale: Option<f64>,
    pub length_max_scale: Option<f64>,
}

impl Settings {
    /// The length term's scales.
    pub fn length_scales(&self) -> crate::length::LengthScales {
        crate::length::LengthScales {
            exact: self.length_exact_scale,
            max: self.length_max_scale,
        }
    }

    /// These settings with the given overrides applied.
    pub fn with(mut self, o: &SettingsOverride) -> Settings {
        if let Some(v) = o.reward_metric {
            self.reward_metric = v;
        }
        if let Some(v) = o.reward_type {
            self.reward_type = v;
        }
        if let Some(v) = o.bleu_threshold {
            self.bleu_threshold = v;
        }
        if let Some(v) = o.scale_factor {
            self.scale_factor = v;
        }
        if let Some(v) = o.check_think {
            self.check_think = v;
        }
        if let Some(v) = o.format_reward {
            self.format_reward = v;
        }
        if let Some(v) = o.length_exact_scale {
            self.length_exact_scale = v;
        }
        if let Some(v) = o.length_max_scale {
            self.length_max_scale = v;
        }
        self
    }
}

/// Deliberate deviations from the reference. All off = the reference's behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fixes {
    /// Put BLEU on the 0–100 scale of EMS wherever it feeds a reward (the BLEU metric, Merge, and
    /// validation Merge).
    ///
    /// Why: the reference mixes EMS (0–100) with BLEU (0–1), so `BLEU > 45` can never pass (the
    /// BLEU metric always gives −1) and Merge is ≈ EMS/2 with BLEU contributing at most 0.5
    /// (§2.6, quirk 4). With the fix, `Merge = (EMS + 100·BLEU)/2` and the threshold 45 means what
    /// the configuration says. Trace components still report the reference's 0–1 BLEU.
    pub bleu_percent_scale: bool,
    /// Grade a multiple-choice answer written as `(B)`, `B)`, `B.` or `B:` as the bare letter `B`.
    ///
    /// Off in every preset: the prompt asks for "only the single option letter", so the
    /// reference's −1 for a wrapped letter is arguably the intended format pressure, and the
    /// released models were trained with it. Available for evaluation of other models.
    pub mcq_strip_wrappers: bool,
}

/// A named set of settings and fixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default = "custom_name")]
    pub name: String,
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub fixes: Fixes,
}

fn custom_name() -> String {
    "custom".into()
}

impl Default for Profile {
    fn default() -> Profile {
        Profile::med_u1()
    }
}

impl Profile {
    /// The names accepted by [`Profile::preset`].
    pub const PRESETS: [&'static str; 2] = ["med-u1", "corrected"];

    /// Exactly the reference's behaviour with the released training settings.
    pub fn med_u1() -> Profile {
        Profile {
            name: "med-u1".into(),
            settings: Settings::default(),
            fixes: Fixes::default(),
        }
    }

    /// The released settings with BLEU on the EMS scale (see [`Fixes::bleu_percent_scale`]).
    pub fn corrected() -> Profile {
        Profile {
            name: "corrected".into(),
            settings: Settings::default(),
            fixes: Fixes {
                bleu_percent_scale: true,
                mcq_strip_wrappers: false,
            },
        }
    }

    /// A preset by name.
    pub fn preset(name: &str) -> Option<Profile> {
        match name {
            "med-u1" | "med_u1" | "reference" => Some(Profile::med_u1()),
            "corrected" => Some(Profile::corrected()),
            _ => None,
        }
    }

    /// The same profile with settings overridden.
    pub fn with_overrides(&self, o: &SettingsOverride) -> Profile {
        Profile {
            name: self.name.clone(),
            settings: self.settings.with(o),
            fixes: self.fixes,
        }
    }

    /// Multiplier applied to BLEU where it feeds a reward.
    pub(crate) fn bleu_scale(&self) -> f64 {
        if self.fixes.bleu_percent_scale {
            100.0
        } else {
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_json_round_trip() {
        let p = Profile::corrected();
        let s = serde_json::to_string(&p).unwrap();
        let back: Profile = serde_json::from_str(&s).unwrap();
        assert_eq!(back, p);
        assert!(back.fixes.bleu_percent_scale);
        assert_eq!(
            Profile::preset("med-u1").unwrap().settings,
            Settings::default()
        );
        assert!(Profile::preset("nope").is_none());
    }

    #[test]
    fn partial_documents_fill_defaults_and_unknown_keys_fail() {
        let p: Profile =
            serde_json::from_str(r#"{"settings": {"reward_metric": "EMS", "bleu_threshold": 60}}"#)
                .unwrap();
        assert_eq!(p.settings.reward_metric, RewardMetric::Ems);
        assert_eq!(p.settings.bleu_threshold, 60.0);
        assert_eq!(p.settings.scale_factor, 100.0);
        assert_eq!(p.name, "custom");
        assert!(serde_json::from_str::<Profile>(r#"{"settings": {"metric": "EMS"}}"#).is_err());
    }

    #[test]
    fn overrides_apply_per_field() {
        let o = SettingsOverride {
            check_think: Some(false),
            ..Default::default()
        };
        let p = Profile::med_u1().with_overrides(&o);
        assert!(!p.settings.check_think);
        assert_eq!(p.settings.reward_metric, RewardMetric::Merge);
    }
}
