//! Helpers shared by the import parity tests.

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

/// The manifest `fer-train import` writes for `d` (f32, logits), named `name`.
pub fn deployable_manifest(d: &fer_trainer::import::Deployable, name: &str) -> fer_core::manifest::ModelManifest {
    use fer_core::manifest::{Activation, ModelManifest, OutputSpec, Quantization, SCHEMA_VERSION};
    ModelManifest {
        schema_version: SCHEMA_VERSION,
        name: name.into(),
        architecture: d.imported.architecture.name(),
        onnx_file: "model.onnx".into(),
        sha256: String::new(),
        input: d.input.clone(),
        labels: d.labels.clone(),
        output: OutputSpec { classes: 7, activation: Activation::Logits },
        quantization: Quantization::None,
        provenance: Default::default(),
        metrics: None,
    }
}

/// Runs a reference script of `scripts/` with the PyTorch venv (`$FER_TORCH_PYTHON` or
/// `.venv-torch-ref/bin/python`, made by scripts/torch-ref.sh) as `script MODEL IN OUT`, where IN
/// holds `x`; returns the tensors it wrote to OUT.
pub fn torch_reference(
    script: &str,
    model_file: &Path,
    x: &tch::Tensor,
    dir: &Path,
) -> std::collections::HashMap<String, tch::Tensor> {
    let (inp, out) = (dir.join("in.safetensors"), dir.join("out.safetensors"));
    tch::Tensor::write_safetensors(&[("x", x)], &inp).unwrap();
    let py = std::env::var_os("FER_TORCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv-torch-ref/bin/python"));
    let o = std::process::Command::new(&py)
        .arg(repo().join("scripts").join(script))
        .args([model_file, &inp, &out])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run scripts/torch-ref.sh): {e}", py.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{script} failed:\n{text}");
    tch::Tensor::read_safetensors(&out).unwrap().into_iter().collect()
}
