//! Helpers shared by the import parity tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use fer_core::preprocess::FaceBox;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A file that a set-up script provides; the assertion names the script.
pub fn provided(rel: &str, script: &str) -> PathBuf {
    let p = repo().join(rel);
    assert!(p.exists(), "{} missing: run {script}", p.display());
    p
}

/// scikit-image's astronaut photograph (public domain), from scripts/fixtures.sh.
pub fn astronaut() -> image::DynamicImage {
    image::open(provided(".cache/fixtures/astronaut.png", "scripts/fixtures.sh")).unwrap()
}

/// Face boxes on the astronaut: OpenCV's Haar box (from the device's golden file), a shifted
/// one and a wider one.
pub fn astronaut_boxes() -> [FaceBox; 3] {
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("device/tests/golden/haar.json")).unwrap()).unwrap();
    let b = &golden["cases"][0]["boxes"][0];
    let f = |i: usize| b[i].as_f64().unwrap() as f32;
    let face = FaceBox { x: f(0), y: f(1), w: f(2), h: f(3) };
    [face, FaceBox { x: face.x + 6.0, y: face.y - 4.0, ..face }, FaceBox { w: face.w * 1.3, ..face }]
}
