//! A tiny MobileNetV2 learns the built-in data: the training loss falls and the validation
//! accuracy beats chance after a few epochs on a few hundred faces (seconds on a CPU).

use fer_core::preprocess::InputSpec;
use fer_trainer::datasets::builtin::{generate, BuiltinConfig};
use fer_trainer::models::mobilenet_v2::MobileNetV2Config;
use fer_trainer::models::Architecture;
use fer_trainer::train::{evaluate, to_tensors, train, Augment, OptimizerKind, TrainConfig};

#[test]
fn tiny_mobilenet_learns_builtin_faces() {
    let ds = generate(&BuiltinConfig { seed: 1, size: 32, train: 1400, val: 140, test: 280, ..Default::default() });
    let cfg = TrainConfig {
        architecture: Architecture::MobilenetV2(MobileNetV2Config {
            width: 0.35,
            in_channels: 1,
            classes: 7,
            stem_stride: 1,
            dropout: 0.0,
        }),
        input: InputSpec { face_margin: 0.0, ..InputSpec::gray(32) },
        epochs: 10,
        batch_size: 50,
        optimizer: OptimizerKind::Adamw,
        lr: 5e-3,
        weight_decay: 0.0,
        momentum: 0.9,
        warmup_epochs: 0.5,
        label_smoothing: 0.0,
        class_weighted_loss: true,
        weighted_sampling: false,
        augment: Augment { flip: true, rotate_deg: 0.0, shift: 0.0, zoom: 0.0, brightness: 0.0, contrast: 0.0 },
        patience: 0,
        seed: 3,
        threads: 2,
        init: None,
    };
    let out = std::env::temp_dir().join(format!("fer-train-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let t = train(&cfg, &ds, tch::Device::Cpu, &out, |_| {}).unwrap();
    let first = t.history.first().unwrap().train_loss;
    let last = t.history.last().unwrap().train_loss;
    let losses: Vec<String> = t.history.iter().map(|h| format!("{:.3}/{:.3}", h.train_loss, h.val_accuracy)).collect();
    assert!(
        last < 0.85 * first,
        "training loss did not fall: {first} -> {last} (loss/val accuracy per epoch: {losses:?})"
    );
    let test = to_tensors(&ds.test, &cfg.input, tch::Device::Cpu).unwrap();
    let (_, conf) = evaluate(t.model.as_ref(), &test, 64);
    let acc = conf.report().accuracy;
    assert!(acc > 0.25, "test accuracy {acc} is not clearly above chance (1/7)");
    eprintln!("smoke: loss {first:.3} -> {last:.3}, test accuracy {acc:.3}");
    assert!(out.join("best.safetensors").exists());
    std::fs::remove_dir_all(&out).unwrap();
}
