//! Exported ONNX models load in tract and give the trainer's logits (≤ 1e-4), on random inputs
//! and on built-in dataset faces, with non-trivial BatchNorm statistics folded into the convs.

use crate::common;

use fer_core::manifest::{Activation, ModelManifest, OutputSpec, Provenance, Quantization};
use fer_core::preprocess::InputSpec;
use fer_core::Emotion;
use fer_trainer::datasets::builtin::{generate, BuiltinConfig};
use fer_trainer::export::{tract_parity, write_model};
use fer_trainer::models::mobilenet_v2::MobileNetV2Config;
use fer_trainer::models::Architecture;
use fer_trainer::train::to_tensors;
use tch::nn;
use tch::{Device, Kind, Tensor};

fn spec(size: usize) -> InputSpec {
    InputSpec::gray(size)
}

fn manifest(input: InputSpec) -> ModelManifest {
    ModelManifest {
        schema_version: 1,
        name: "parity".into(),
        architecture: "mobilenet_v2".into(),
        onnx_file: "model.onnx".into(),
        sha256: "0".repeat(64),
        input,
        labels: Emotion::ALL.to_vec(),
        output: OutputSpec { classes: 7, activation: Activation::Logits },
        quantization: Quantization::None,
        provenance: Provenance { dataset: "none".into(), created_by: "export_tract.rs".into(), ..Default::default() },
        metrics: None,
    }
}

#[test]
fn exported_mobilenet_matches_tch_in_tract() {
    tch::manual_seed(5);
    for (stem, width) in [(2, 0.5), (1, 0.35)] {
        let vs = nn::VarStore::new(Device::Cpu);
        let arch = Architecture::MobilenetV2(MobileNetV2Config {
            width,
            in_channels: 1,
            classes: 7,
            stem_stride: stem,
            dropout: 0.2,
        });
        let model = arch.build(&vs.root());
        fer_trainer::models::randomize_batchnorm(&vs, 0.2);
        let dir = std::env::temp_dir().join(format!("fer-export-{stem}-{}", std::process::id()));
        let manifest_path = write_model(model.as_ref(), manifest(spec(48)), &dir).unwrap();
        let m = ModelManifest::load(&manifest_path).unwrap();
        let onnx = m.verified_onnx_path(&manifest_path).unwrap();

        let random = Tensor::randn([3, 1, 48, 48], (Kind::Float, Device::Cpu));
        let d = tract_parity(model.as_ref(), &onnx, &random).unwrap();
        assert!(d <= 1e-4, "stem {stem}: random inputs differ by {d}");
        let ds = generate(&BuiltinConfig { train: 0, val: 0, test: 14, ..Default::default() });
        let faces = to_tensors(&ds.test, &spec(48), Device::Cpu).unwrap();
        let d = tract_parity(model.as_ref(), &onnx, &faces.x).unwrap();
        assert!(d <= 1e-4, "stem {stem}: dataset faces differ by {d}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Exports `arch` (random BatchNorm statistics) and checks tract against tch on random 48x48
/// inputs, relative to the logits' size (random statistics make deep nets' logits large).
fn check_export(arch: Architecture) {
    let vs = nn::VarStore::new(Device::Cpu);
    let model = arch.build(&vs.root());
    fer_trainer::models::randomize_batchnorm(&vs, 0.2);
    let name = arch.name();
    let dir = std::env::temp_dir().join(format!("fer-export-{name}-{}", std::process::id()));
    let manifest_path = write_model(model.as_ref(), manifest(spec(48)), &dir).unwrap();
    let m = ModelManifest::load(&manifest_path).unwrap();
    let onnx = m.verified_onnx_path(&manifest_path).unwrap();
    let random = Tensor::randn([2, 1, 48, 48], (Kind::Float, Device::Cpu));
    let d = tract_parity(model.as_ref(), &onnx, &random).unwrap() as f64;
    let scale = tch::no_grad(|| model.forward_t(&random, false)).abs().max().double_value(&[]).max(1.0);
    eprintln!("{name}: max |Δ| {d:.2e} on logits up to {scale:.1}");
    assert!(d <= 1e-5 * scale, "{name}: random inputs differ by {d} (logits up to {scale})");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exported_resnet_matches_tch_in_tract() {
    // ResNet-18 and ResNet-50 (BasicBlock / Bottleneck, projection shortcuts, 3x3/2 max-pool).
    tch::manual_seed(6);
    for depth in [18, 50] {
        check_export(Architecture::Resnet(fer_trainer::models::resnet::ResNetConfig {
            depth,
            in_channels: 1,
            classes: 7,
        }));
    }
}

#[test]
fn exported_comparison_models_match_tch_in_tract() {
    // EfficientNet-B0 (SiLU, squeeze-and-excitation), VGG-16-bn with 7x7 pooling of a 1x1 map
    // folded into the classifier, and the seeds' custom CNN ("valid" convs, flatten + dense).
    use fer_trainer::models::{custom_cnn, efficientnet, vgg};
    tch::manual_seed(8);
    check_export(Architecture::EfficientNet(efficientnet::EfficientNetConfig {
        in_channels: 1,
        classes: 7,
        ..Default::default()
    }));
    check_export(Architecture::Vgg16Bn(vgg::VggConfig {
        in_channels: 1,
        classes: 7,
        pool: 7,
        hidden: 64,
        dropout: 0.5,
        input_size: 48,
    }));
    check_export(Architecture::CustomCnn(custom_cnn::CustomCnnConfig::default()));
}

#[test]
fn truncated_onnx_is_rejected_by_hash_and_by_tract() {
    let vs = nn::VarStore::new(Device::Cpu);
    let arch = common::mobilenet_v2(0.35, 2);
    let model = arch.build(&vs.root());
    let dir = std::env::temp_dir().join(format!("fer-export-trunc-{}", std::process::id()));
    let manifest_path = write_model(model.as_ref(), manifest(spec(48)), &dir).unwrap();
    let onnx = dir.join("model.onnx");
    let bytes = std::fs::read(&onnx).unwrap();
    std::fs::write(&onnx, &bytes[..bytes.len() / 2]).unwrap();
    let m = ModelManifest::load(&manifest_path).unwrap();
    let e = m.verified_onnx_path(&manifest_path).unwrap_err().to_string();
    assert!(e.contains("model.onnx") && e.contains("SHA-256"), "{e}");
    assert!(fer_trainer::export::tract_run(&onnx, &[0.0; 48 * 48], [1, 1, 48, 48]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
