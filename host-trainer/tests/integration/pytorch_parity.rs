//! Parity with PyTorch/torchvision: the same weights give the same logits (≤ 1e-4), and one
//! optimizer step gives the same updated weights and BatchNorm statistics (≤ 1e-4).
//! The reference is `scripts/pytorch_parity.py`, run with the venv that `scripts/torch-ref.sh`
//! creates (`.venv-torch-ref`, torch 2.13.0 + torchvision from PyPI).

use std::path::{Path, PathBuf};
use std::process::Command;

use fer_trainer::models::mobilenet_v2::MobileNetV2Config;
use fer_trainer::models::Architecture;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn python() -> PathBuf {
    std::env::var_os("FER_TORCH_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo().join(".venv-torch-ref/bin/python"))
}

/// Writes the case for `arch` + optimizer into `dir` and runs the PyTorch reference on it.
fn check(name: &str, arch: Architecture, arch_json: serde_json::Value, opt_json: serde_json::Value) {
    tch::manual_seed(11);
    let dir = std::env::temp_dir().join(format!("fer-parity-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = arch.build(&vs.root());
    fer_trainer::models::randomize_batchnorm(&vs, 0.1);
    vs.save(dir.join("weights.safetensors")).unwrap();
    let x = Tensor::randn([4, 1, 48, 48], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 3, 6, 2]);
    let logits = tch::no_grad(|| model.forward_t(&x, false));
    Tensor::write_safetensors(&[("x", &x), ("y", &y), ("logits_eval", &logits)], dir.join("io.safetensors")).unwrap();

    let lr = opt_json["lr"].as_f64().unwrap();
    let wd = opt_json["weight_decay"].as_f64().unwrap();
    let mut opt = match opt_json["kind"].as_str().unwrap() {
        "adamw" => nn::AdamW { wd, ..Default::default() }.build(&vs, lr).unwrap(),
        _ => nn::Sgd { momentum: opt_json["momentum"].as_f64().unwrap(), wd, nesterov: true, ..Default::default() }
            .build(&vs, lr)
            .unwrap(),
    };
    let loss = model.forward_t(&x, true).cross_entropy_for_logits(&y);
    opt.backward_step(&loss);
    vs.save(dir.join("after.safetensors")).unwrap();
    let case = serde_json::json!({ "architecture": arch_json, "optimizer": opt_json });
    std::fs::write(dir.join("case.json"), case.to_string()).unwrap();

    let py = python();
    let out = Command::new(&py)
        .arg(repo().join("scripts/pytorch_parity.py"))
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run scripts/torch-ref.sh): {e}", py.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{name}:\n{text}");
    assert!(out.status.success(), "{name}: PyTorch parity failed:\n{text}");
    assert!(text.contains("parity ok"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn mobilenet(stem_stride: i64) -> (Architecture, serde_json::Value) {
    let c = MobileNetV2Config { width: 0.5, in_channels: 1, classes: 7, stem_stride, dropout: 0.0 };
    let json = serde_json::json!({
        "name": "mobilenet_v2", "width": c.width, "in_channels": c.in_channels, "classes": c.classes,
        "stem_stride": c.stem_stride, "dropout": 0.0
    });
    (Architecture::MobilenetV2(c), json)
}

#[test]
fn mobilenet_v2_matches_torchvision_adamw() {
    let (a, j) = mobilenet(2);
    check("mnv2-adamw", a, j, serde_json::json!({"kind": "adamw", "lr": 1e-2, "weight_decay": 1e-2}));
}

#[test]
fn mobilenet_v2_stem1_matches_torchvision_sgd() {
    let (a, j) = mobilenet(1);
    check("mnv2-sgd", a, j, serde_json::json!({"kind": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4}));
}

#[test]
fn resnet18_matches_torchvision_adamw() {
    let c = fer_trainer::models::resnet::ResNetConfig { depth: 18, in_channels: 1, classes: 7 };
    let json = serde_json::json!({"name": "resnet", "depth": 18, "in_channels": 1, "classes": 7});
    check(
        "resnet18-adamw",
        Architecture::Resnet(c),
        json,
        serde_json::json!({"kind": "adamw", "lr": 1e-3, "weight_decay": 1e-2}),
    );
}

#[test]
fn efficientnet_b0_matches_torchvision_adamw() {
    // Dropout and stochastic depth off: both draw random numbers that libtorch's two front ends
    // do not share.
    let c = fer_trainer::models::efficientnet::EfficientNetConfig {
        width: 1.0,
        depth: 1.0,
        in_channels: 1,
        classes: 7,
        dropout: 0.0,
        stochastic_depth: 0.0,
    };
    let json = serde_json::json!({"name": "efficient_net", "width": 1.0, "depth": 1.0, "in_channels": 1, "classes": 7});
    check(
        "effnet-b0-adamw",
        Architecture::EfficientNet(c),
        json,
        serde_json::json!({"kind": "adamw", "lr": 1e-3, "weight_decay": 1e-2}),
    );
}

#[test]
fn vgg16_bn_matches_torchvision_sgd() {
    let c = fer_trainer::models::vgg::VggConfig {
        in_channels: 1,
        classes: 7,
        pool: 2,
        hidden: 64,
        dropout: 0.0,
        input_size: 48,
    };
    let json = serde_json::json!({"name": "vgg16_bn", "in_channels": 1, "classes": 7, "pool": 2, "hidden": 64});
    check(
        "vgg16bn-sgd",
        Architecture::Vgg16Bn(c),
        json,
        serde_json::json!({"kind": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4}),
    );
}
