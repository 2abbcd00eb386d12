//! Bad manifests and board configs give errors that name the file and the field, never a panic.

use std::path::Path;

use fer_core::board::BoardConfig;
use fer_core::manifest::{ManifestError, ModelManifest};
use fer_core::FileError;

const GOOD_MANIFEST: &str = r#"{
  "schema_version": 1,
  "name": "tiny",
  "architecture": "mobilenet_v2",
  "onnx_file": "model.onnx",
  "sha256": "PLACEHOLDER",
  "input": {
    "channels": 1, "height": 48, "width": 48, "color": "gray", "resize": "bilinear",
    "normalisation": { "scale": 0.003921569, "mean": [0.5], "std": [0.5] },
    "face_margin": 0.1
  },
  "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
  "output": { "classes": 7, "activation": "logits" },
  "quantization": { "kind": "none" },
  "provenance": { "dataset": "test", "created_by": "bad_input.rs" }
}"#;

fn good(sha: &str) -> String {
    GOOD_MANIFEST.replace("PLACEHOLDER", sha)
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn manifest_err(text: &str) -> FileError {
    ModelManifest::from_json(Path::new("models/x/manifest.json"), text).unwrap_err()
}

#[test]
fn good_manifest_parses() {
    let m = ModelManifest::from_json(Path::new("m.json"), &good(ZERO_SHA)).unwrap();
    assert_eq!(m.labels.len(), 7);
    assert_eq!(m.input.height, 48);
}

#[test]
fn manifest_missing_field() {
    let text = good(ZERO_SHA).replace(r#""architecture": "mobilenet_v2","#, "");
    let e = manifest_err(&text);
    let msg = e.to_string();
    assert!(msg.starts_with("models/x/manifest.json: "), "{msg}");
    assert!(msg.contains("missing field `architecture`"), "{msg}");
}

#[test]
fn manifest_unknown_field() {
    let text = good(ZERO_SHA).replace(r#""face_margin": 0.1"#, r#""face_margin": 0.1, "colour": "gray""#);
    let e = manifest_err(&text);
    assert_eq!(e.field(), Some("input.colour"), "{e}");
    assert!(e.to_string().contains("unknown field `colour`"), "{e}");
}

#[test]
fn manifest_wrong_type() {
    let text = good(ZERO_SHA).replace(r#""height": 48"#, r#""height": "48""#);
    let e = manifest_err(&text);
    assert_eq!(e.field(), Some("input.height"), "{e}");
    assert!(e.to_string().contains("invalid type"), "{e}");
}

#[test]
fn manifest_unknown_label() {
    let text = good(ZERO_SHA).replace(r#""sad""#, r#""bored""#);
    let e = manifest_err(&text);
    assert_eq!(e.field(), Some("labels[4]"), "{e}");
    assert!(e.to_string().contains("bored"), "{e}");
}

#[test]
fn manifest_label_count_mismatch() {
    let text = good(ZERO_SHA).replace(r#""classes": 7"#, r#""classes": 8"#);
    let e = manifest_err(&text);
    assert_eq!(e.field(), Some("labels"), "{e}");
    assert!(e.to_string().contains("7 labels but the model outputs 8"), "{e}");
}

#[test]
fn manifest_duplicate_label_and_bad_hash_and_bad_spec() {
    let e = manifest_err(&good(ZERO_SHA).replace(r#""neutral""#, r#""angry""#));
    assert_eq!(e.field(), Some("labels[6]"), "{e}");
    let e = manifest_err(&good("abc"));
    assert_eq!(e.field(), Some("sha256"), "{e}");
    let e = manifest_err(&good(ZERO_SHA).replace(r#""channels": 1"#, r#""channels": 3"#));
    assert_eq!(e.field(), Some("input.channels"), "{e}");
    let e = manifest_err(&good(ZERO_SHA).replace(r#""std": [0.5]"#, r#""std": [0.0]"#));
    assert_eq!(e.field(), Some("input.normalisation.std"), "{e}");
}

#[test]
fn manifest_truncated_json() {
    let text = good(ZERO_SHA);
    let e = manifest_err(&text[..text.len() / 2]);
    assert!(matches!(e, FileError::Parse { .. }), "{e}");
    assert!(e.to_string().contains("EOF"), "{e}");
}

#[test]
fn manifest_hash_is_verified_against_the_onnx_file() {
    let dir = std::env::temp_dir().join(format!("fer-core-hash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.onnx"), b"abc").unwrap();
    // SHA-256("abc") from FIPS 180-2, appendix B.1.
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let path = dir.join("manifest.json");
    std::fs::write(&path, good(abc)).unwrap();
    let m = ModelManifest::load(&path).unwrap();
    assert_eq!(m.verified_onnx_path(&path).unwrap(), dir.join("model.onnx"));

    std::fs::write(dir.join("model.onnx"), b"abd").unwrap();
    match m.verified_onnx_path(&path) {
        Err(ManifestError::HashMismatch { expected, .. }) => assert_eq!(expected, abc),
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    std::fs::remove_file(dir.join("model.onnx")).unwrap();
    let e = m.verified_onnx_path(&path).unwrap_err();
    assert!(e.to_string().contains("model.onnx"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn manifest_round_trips_through_save() {
    let dir = std::env::temp_dir().join(format!("fer-core-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let m = ModelManifest::from_json(Path::new("m.json"), &good(ZERO_SHA)).unwrap();
    let path = dir.join("manifest.json");
    m.save(&path).unwrap();
    assert_eq!(ModelManifest::load(&path).unwrap(), m);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_manifest_file_names_the_path() {
    let e = ModelManifest::load(Path::new("/nonexistent/manifest.json")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/manifest.json"), "{e}");
}

const GOOD_BOARD: &str = r#"
name = "test"
[camera]
width = 640
height = 480
[display]
kind = "ssd1306"
i2c_bus = "/dev/i2c-1"
[model]
manifest = "models/m/manifest.json"
threads = 2
"#;

fn board_err(text: &str) -> FileError {
    BoardConfig::from_toml(Path::new("board-configs/test.toml"), text).unwrap_err()
}

#[test]
fn board_good_config_gets_defaults() {
    let c = BoardConfig::from_toml(Path::new("t.toml"), GOOD_BOARD).unwrap();
    assert_eq!(c.camera.device, "/dev/video0");
    assert_eq!(c.detection.scale_factor, 1.1);
    assert_eq!(c.detection.still_threshold, 0.0, "full passes never skipped unless asked");
    assert_eq!(c.model.face_threads, 1, "faces of a frame on the pipeline's thread unless asked");
    match c.display {
        fer_core::board::DisplayConfig::Ssd1306 { address, height, .. } => assert_eq!((address, height), (0x3C, 64)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn board_missing_field() {
    let e = board_err(&GOOD_BOARD.replace("manifest = \"models/m/manifest.json\"", ""));
    let msg = e.to_string();
    assert!(msg.starts_with("board-configs/test.toml: "), "{msg}");
    assert_eq!(e.field(), Some("model"), "{msg}");
    assert!(msg.contains("missing field `manifest`"), "{msg}");
}

#[test]
fn board_unknown_field() {
    let e = board_err(&GOOD_BOARD.replace("threads = 2", "threads = 2\nthread = 3"));
    assert_eq!(e.field(), Some("model.thread"), "{e}");
    assert!(e.to_string().contains("unknown field `thread`"), "{e}");
    let e = board_err(&GOOD_BOARD.replace("i2c_bus", "i2c_bus = \"/dev/i2c-0\"\npins = 3\nx"));
    assert!(e.to_string().contains("pins"), "{e}");
}

#[test]
fn board_wrong_type() {
    let e = board_err(&GOOD_BOARD.replace("width = 640", "width = \"640\""));
    assert_eq!(e.field(), Some("camera.width"), "{e}");
    assert!(e.to_string().contains("invalid type"), "{e}");
}

#[test]
fn board_unknown_display_kind() {
    let e = board_err(&GOOD_BOARD.replace("kind = \"ssd1306\"", "kind = \"hd44780\""));
    assert!(e.to_string().contains("hd44780"), "{e}");
    assert!(e.to_string().contains("ssd1306"), "the error should list the valid kinds: {e}");
}

#[test]
fn board_invalid_values() {
    let e = board_err(&GOOD_BOARD.replace("threads = 2", "threads = 0"));
    assert_eq!(e.field(), Some("model.threads"), "{e}");
    let e = board_err(&GOOD_BOARD.replace("threads = 2", "threads = 2\nface_threads = 0"));
    assert_eq!(e.field(), Some("model.face_threads"), "{e}");
    let e = board_err(&GOOD_BOARD.replace("i2c_bus = \"/dev/i2c-1\"", "i2c_bus = \"/dev/i2c-1\"\naddress = 0x80"));
    assert_eq!(e.field(), Some("display.address"), "{e}");
    let e = board_err(&format!("{GOOD_BOARD}\n[detection]\nscale_factor = 1.0\n"));
    assert_eq!(e.field(), Some("detection.scale_factor"), "{e}");
    let e = board_err(&format!("{GOOD_BOARD}\n[detection]\nstill_threshold = -1.0\n"));
    assert_eq!(e.field(), Some("detection.still_threshold"), "{e}");
    let e = board_err(&format!("{GOOD_BOARD}\n[detection]\nstill_threshold = 4.0\nstill_full_every = 0\n"));
    assert_eq!(e.field(), Some("detection.still_full_every"), "{e}");
    let e = board_err(&format!("{GOOD_BOARD}\n[tracking]\nema_alpha = 0.0\n"));
    assert_eq!(e.field(), Some("tracking.ema_alpha"), "{e}");
    let e = board_err(&GOOD_BOARD.replace("i2c_bus = \"/dev/i2c-1\"", "i2c_bus = \"/dev/i2c-1\"\nrotation = \"45\""));
    assert!(e.to_string().contains("45"), "{e}");
}

#[test]
fn board_rpicam_camera_settings_are_checked() {
    let rpicam = GOOD_BOARD.replace("width = 640", "kind = \"rpicam\"\nwidth = 640");
    let c = BoardConfig::from_toml(Path::new("t.toml"), &rpicam).unwrap();
    assert_eq!(c.camera.kind, fer_core::board::CameraKind::Rpicam);
    assert_eq!((c.camera.rpicam_command.as_str(), c.camera.stall_ms), ("rpicam-vid", 5000));
    assert!(c.camera.rpicam_args.is_empty());
    // libcamera pads rows of widths that are not a multiple of 64: refused for rpicam only.
    let e = board_err(&rpicam.replace("width = 640", "width = 600"));
    assert_eq!(e.field(), Some("camera.width"), "{e}");
    assert!(e.to_string().contains("600x480") && e.to_string().contains("multiple of 64"), "{e}");
    BoardConfig::from_toml(Path::new("t.toml"), &GOOD_BOARD.replace("width = 640", "width = 600")).unwrap();
    let e = board_err(&rpicam.replace("height = 480", "height = 481"));
    assert_eq!(e.field(), Some("camera.width"), "{e}");
    let e = board_err(&rpicam.replace("height = 480", "height = 480\nrpicam_command = \" \""));
    assert_eq!(e.field(), Some("camera.rpicam_command"), "{e}");
    let e = board_err(&rpicam.replace("height = 480", "height = 480\nstall_ms = 10"));
    assert_eq!(e.field(), Some("camera.stall_ms"), "{e}");
    let e = board_err(&rpicam.replace("kind = \"rpicam\"", "kind = \"libcamera\""));
    assert!(e.to_string().contains("libcamera") && e.to_string().contains("rpicam"), "{e}");
}

#[test]
fn board_command_camera_settings_are_checked() {
    let command = GOOD_BOARD.replace(
        "width = 640",
        "kind = \"command\"\ncommand = [\"ffmpeg\", \"-i\", \"rtsp://cam\", \"-f\", \"rawvideo\", \"-\"]\nwidth = 640",
    );
    let c = BoardConfig::from_toml(Path::new("t.toml"), &command).unwrap();
    assert_eq!(c.camera.kind, fer_core::board::CameraKind::Command);
    assert_eq!(c.camera.command_format, fer_core::board::RawFormat::Yuv420, "ffmpeg's yuv420p by default");
    assert_eq!(c.camera.command.len(), 6);
    let c = BoardConfig::from_toml(
        Path::new("t.toml"),
        &command.replace("width = 640", "width = 640\ncommand_format = \"bgr\""),
    )
    .unwrap();
    assert_eq!(c.camera.command_format, fer_core::board::RawFormat::Bgr);
    let e = board_err(&command.replace("width = 640", "width = 640\ncommand_format = \"mjpeg\""));
    assert_eq!(e.field(), Some("camera.command_format"), "{e}");
    let e = board_err(&command.replace("width = 640", "width = 640\ncommand_format = \"h264\""));
    assert!(e.to_string().contains("h264") && e.to_string().contains("yuvj420"), "{e}");
    let e = board_err(&command.replace("[\"ffmpeg\", \"-i\", \"rtsp://cam\", \"-f\", \"rawvideo\", \"-\"]", "[]"));
    assert_eq!(e.field(), Some("camera.command"), "{e}");
    // A width of 600 is fine here: ffmpeg's frames carry no padding.
    BoardConfig::from_toml(Path::new("t.toml"), &command.replace("width = 640", "width = 600")).unwrap();
}

#[test]
fn board_syntax_error_names_line() {
    let e = board_err("name = \"x\"\n[camera\n");
    assert!(matches!(e, FileError::Parse { .. }), "{e}");
    assert!(e.to_string().contains("line 2"), "{e}");
}
