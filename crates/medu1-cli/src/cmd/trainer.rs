//! What `medu1 train` and `medu1 sft` share: the start mode from `--resume` / `--overwrite`.

use medu1_rl::run::Start;

/// `--resume` / `--overwrite` / neither, as the trainer's start mode.
pub fn start_mode(resume: bool, overwrite: bool) -> Start {
    match (resume, overwrite) {
        (true, _) => Start::Resume,
        (false, true) => Start::Overwrite,
        (false, false) => Start::New,
    }
}

/// `--set` overrides with `--device` appended as `key="..."` (a later `--set` of the same key
/// wins over an earlier one, so `--device` wins over `--set`).
pub(crate) fn with_device(set: &[String], key: &str, device: &Option<String>) -> Vec<String> {
    let mut out = set.to_vec();
    if let Some(d) = device {
        out.push(format!("{key}={}", toml::Value::String(d.clone())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use medu1_model::DeviceSpec;

    #[test]
    fn device_flag_overrides_the_configs_device() {
        let set = vec!["model.device=\"cpu\"".to_string()];
        let sets = with_device(&set, "model.device", &Some("cuda:1".into()));
        let cfg: medu1_rl::TrainConfig = medu1_rl::load_toml(None, &sets).unwrap();
        assert_eq!(cfg.model.device, DeviceSpec::Cuda(1));
        assert_eq!(cfg.load_options().device, DeviceSpec::Cuda(1));
        let sft: medu1_rl::SftConfig =
            medu1_rl::load_toml(None, &with_device(&[], "device", &Some("cuda".into()))).unwrap();
        assert_eq!(sft.load_options().device, DeviceSpec::Cuda(0));
        let bad = with_device(&[], "model.device", &Some("tpu".into()));
        let e = medu1_rl::load_toml::<medu1_rl::TrainConfig>(None, &bad).unwrap_err();
        assert!(format!("{e:#}").contains("unknown device `tpu`"), "{e:#}");
    }
}
