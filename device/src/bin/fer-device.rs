//! `fer-device`: the on-board program. Implemented so far: `check-config`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use fer_core::board::{BoardConfig, DetectorKind, DisplayConfig};
use fer_core::manifest::ModelManifest;

#[derive(Parser)]
#[command(name = "fer-device", version, about = "fer-edge on-board program")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate board configs and report, for each, whether its model, cascade, camera and
    /// display can be found on this machine. Exits 1 if a config is invalid.
    ///
    /// Example: fer-device check-config board-configs/*.toml
    CheckConfig {
        /// Board config files.
        #[arg(required = true)]
        boards: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Debian's opencv-data location of the cascade for `kind`.
fn default_cascade(kind: DetectorKind) -> &'static str {
    match kind {
        DetectorKind::Haar => "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
        DetectorKind::Lbp => "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml",
    }
}

fn presence(path: &str) -> &'static str {
    if Path::new(path).exists() {
        "present"
    } else {
        "not found on this machine"
    }
}

fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::CheckConfig { boards } => {
            let mut all_valid = true;
            for path in boards {
                match BoardConfig::load(&path) {
                    Err(e) => {
                        all_valid = false;
                        println!("INVALID {e}");
                    }
                    Ok(cfg) => {
                        println!("ok      {}: {} ({})", path.display(), cfg.name, cfg.description);
                        let manifest = Path::new(&cfg.model.manifest);
                        let model = match ModelManifest::load(manifest) {
                            Ok(m) => match m.verified_onnx_path(manifest) {
                                Ok(onnx) => format!("{} ({}, hash verified)", onnx.display(), m.name),
                                Err(e) => format!("unusable: {e}"),
                            },
                            Err(e) => format!("unusable: {e}"),
                        };
                        println!("        model    {model}");
                        let cascade = if cfg.detection.cascade.is_empty() {
                            default_cascade(cfg.detection.detector)
                        } else {
                            cfg.detection.cascade.as_str()
                        };
                        println!("        cascade  {cascade}: {}", presence(cascade));
                        println!("        camera   {}: {}", cfg.camera.device, presence(&cfg.camera.device));
                        let display = match &cfg.display {
                            DisplayConfig::None => "none".to_string(),
                            DisplayConfig::Ssd1306 { i2c_bus, address, .. } => {
                                format!("ssd1306 at {address:#04x} on {i2c_bus}: {}", presence(i2c_bus))
                            }
                            DisplayConfig::St7789(p) | DisplayConfig::Ili9341(p) => {
                                format!("SPI panel on {}: {}", p.spi, presence(&p.spi))
                            }
                            DisplayConfig::Framebuffer { device } => {
                                format!("framebuffer {device}: {}", presence(device))
                            }
                        };
                        println!("        display  {display}");
                    }
                }
            }
            Ok(all_valid)
        }
    }
}
