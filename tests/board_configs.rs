//! Every board config shipped in `board-configs/` parses, validates, and says what it is for.

use fer_core::board::{BoardConfig, DisplayConfig};
use fer_e2e::{board_config_files, repo_root};

#[test]
fn every_shipped_board_config_is_valid() {
    let files = board_config_files();
    let stems: Vec<String> = files.iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    for expected in ["rpi4", "rpi5", "rpi-zero2w", "jetson-nano", "jetson-orin-nano"] {
        assert!(stems.iter().any(|s| s == expected), "board-configs/{expected}.toml missing; found {stems:?}");
    }
    for (path, stem) in files.iter().zip(&stems) {
        let cfg = BoardConfig::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&cfg.name, stem, "{}: `name` should match the file name", path.display());
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("# "), "{}: must start with a comment saying what it configures", path.display());
        assert!(
            cfg.model.manifest.starts_with("models/"),
            "{}: model.manifest should point into models/, got {}",
            path.display(),
            cfg.model.manifest
        );
    }
}

#[test]
fn shipped_configs_cover_each_display_kind() {
    let kinds: Vec<&'static str> = board_config_files()
        .iter()
        .map(|p| match BoardConfig::load(p).unwrap().display {
            DisplayConfig::None => "none",
            DisplayConfig::Ssd1306 { .. } => "ssd1306",
            DisplayConfig::St7789(_) => "st7789",
            DisplayConfig::Ili9341(_) => "ili9341",
            DisplayConfig::Framebuffer { .. } => "framebuffer",
        })
        .collect();
    for k in ["ssd1306", "st7789", "framebuffer"] {
        assert!(kinds.contains(&k), "no board config uses display kind {k}: {kinds:?}");
    }
}

#[test]
fn a_typo_in_a_shipped_config_is_reported_with_file_and_field() {
    let path = repo_root().join("board-configs/rpi4.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace("ema_alpha", "ema_alpah");
    let err = BoardConfig::from_toml(&path, &text).unwrap_err().to_string();
    assert!(err.contains("rpi4.toml"), "{err}");
    assert!(err.contains("tracking") && err.contains("ema_alpah"), "{err}");
}
