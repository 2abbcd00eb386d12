//! Helpers shared by the integration tests.

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

/// The largest absolute difference between two tensors of the same shape.
pub fn max_diff(a: &tch::Tensor, b: &tch::Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// A MobileNetV2 for 1-channel faces and 7 classes, without dropout.
pub fn mobilenet_v2(width: f64, stem_stride: i64) -> fer_trainer::models::Architecture {
    use fer_trainer::models::{mobilenet_v2::MobileNetV2Config, Architecture};
    Architecture::MobilenetV2(MobileNetV2Config { width, in_channels: 1, classes: 7, stem_stride, dropout: 0.0 })
}

/// The tests' base recipe, each test changing what it is about: one epoch of AdamW at 1e-3 in
/// batches of 35, no warm-up, schedule tricks or class weighting, the default augmentation,
/// seed 1, from scratch; libtorch's threads left as they are (the tests of this binary share a
/// process, and libtorch's thread count is global: a test setting it while another trains is a
/// race inside libtorch, the suspect of one CI run that died of SIGSEGV, see BENCHMARKS.md, CI,
/// session 19).
pub fn train_config(
    architecture: fer_trainer::models::Architecture,
    input: fer_core::preprocess::InputSpec,
) -> fer_trainer::train::TrainConfig {
    use fer_trainer::train::{Augment, OptimizerKind, TrainConfig};
    TrainConfig {
        architecture,
        input,
        epochs: 1,
        batch_size: 35,
        optimizer: OptimizerKind::Adamw,
        lr: 1e-3,
        weight_decay: 0.0,
        momentum: 0.9,
        warmup_epochs: 0.0,
        label_smoothing: 0.0,
        class_weighted_loss: false,
        weighted_sampling: false,
        augment: Augment::default(),
        patience: 0,
        seed: 1,
        threads: 0,
        init: None,
        distill: None,
    }
}

/// Sets every variable of `vs` from `seed` alone, in name order (torch's own generator is global
/// and shared by the tests of this process, so a model drawn from it depends on what the other
/// tests draw meanwhile): weights uniform within ±1/√fan-in (libtorch's default), the classifier's with
/// torchvision's std 0.01 times `classifier_gain`, biases 0; BatchNorm at its defaults, or with
/// `bn_spread` > 0 random statistics (means and shifts of std `bn_spread`, scales and variances
/// in [0.5, 1.5)).
pub fn seeded_weights(vs: &tch::nn::VarStore, seed: u64, bn_spread: f32, classifier_gain: f32) {
    let mut vars: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (i, (name, mut v)) in vars.into_iter().enumerate() {
            if v.kind() != tch::Kind::Float {
                continue; // BatchNorm's step counter
            }
            let mut rng = fer_trainer::rng::Rng::for_item(seed, 0x5eed, i as u64);
            let n = v.numel();
            let size = v.size();
            let uniform = |rng: &mut fer_trainer::rng::Rng, bound: f32| rng.range(-bound, bound);
            let values: Vec<f32> = if size.len() >= 2 {
                let bound = if name.starts_with("classifier") {
                    0.01 * 3f32.sqrt() * classifier_gain
                } else {
                    1.0 / ((n / size[0] as usize) as f32).sqrt()
                };
                (0..n).map(|_| uniform(&mut rng, bound)).collect()
            } else if name.starts_with("classifier") || bn_spread == 0.0 {
                let one = name.ends_with("weight") || name.ends_with("running_var");
                vec![if one && !name.starts_with("classifier") { 1.0 } else { 0.0 }; n]
            } else if name.ends_with("running_mean") || name.ends_with("bias") {
                (0..n).map(|_| uniform(&mut rng, bn_spread * 3f32.sqrt())).collect()
            } else {
                (0..n).map(|_| rng.range(0.5, 1.5)).collect()
            };
            v.copy_(&tch::Tensor::from_slice(&values).view(size.as_slice()));
        }
    });
}
