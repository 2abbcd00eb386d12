//! `train --init`: fine-tuning starts from imported weights. The face-api model's outputs come in
//! its own order (neutral, happy, …); after `load_init` the classifier rows are in FER-2013 order,
//! checked against the imported model's outputs permuted independently here. Then a short
//! fine-tuning run from each imported model (mini-XCEPTION 64×64 gray, face-api 112×112 RGB) on
//! built-in faces runs, and starts from the imported weights (the untrained model is checked
//! against the import before the first step).

use crate::common;

use fer_core::Emotion;
use fer_trainer::datasets::builtin::{generate, BuiltinConfig};
use fer_trainer::export::{read_trainable, save_trainable, write_model};
use fer_trainer::import::{self, Deployable, FACE_API_MANIFEST, FER_PACKAGE_HDF5};
use fer_trainer::train::{load_init, train, Init, TrainConfig};
use tch::nn;

/// Writes `d` as a model folder (as `fer-train import` does) and returns its path.
fn model_folder(d: &Deployable, tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fer-init-{tag}-{}", std::process::id()));
    let manifest = common::deployable_manifest(d, tag);
    write_model(d.imported.model.as_ref(), manifest, &dir).unwrap();
    save_trainable(&dir, &d.imported.architecture, &d.imported.vs).unwrap();
    dir
}

fn config(d: &Deployable, init: Init) -> TrainConfig {
    TrainConfig { lr: 1e-4, init: Some(init), ..common::train_config(d.imported.architecture.clone(), d.input.clone()) }
}

#[test]
fn face_api_init_reorders_outputs_to_fer_order_and_fine_tunes() {
    let d = import::face_api(&common::provided(FACE_API_MANIFEST, "scripts/pretrained.sh")).unwrap();
    assert_ne!(d.labels, Emotion::ALL.to_vec(), "face-api's own order differs from FER-2013's");
    let dir = model_folder(&d, "faceapi");
    let (arch, manifest, weights) = read_trainable(&dir).unwrap();
    assert_eq!(arch, d.imported.architecture);
    let init = Init { weights, labels: manifest.labels.clone() };

    let mut vs = nn::VarStore::new(tch::Device::Cpu);
    let model = arch.build(&vs.root());
    load_init(&mut vs, &arch, &init).unwrap();
    tch::manual_seed(2);
    let x = tch::Tensor::randn([4, 3, 112, 112], tch::kind::FLOAT_CPU) * 0.3;
    let original = tch::no_grad(|| d.imported.model.forward_t(&x, false));
    let reordered = tch::no_grad(|| model.forward_t(&x, false));
    for (i, e) in Emotion::ALL.iter().enumerate() {
        let j = manifest.labels.iter().position(|l| l == e).unwrap() as i64;
        let diff = (reordered.select(1, i as i64) - original.select(1, j)).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "{e:?}: FER column {i} is not face-api column {j} ({diff})");
    }

    let ds = generate(&BuiltinConfig { seed: 4, size: 112, train: 70, val: 35, test: 0, ..Default::default() });
    let out = dir.join("training");
    std::fs::create_dir_all(&out).unwrap();
    let t = train(&config(&d, init), &ds, tch::Device::Cpu, &out, |_| {}).unwrap();
    assert_eq!(t.history.len(), 1);
    assert!(t.history[0].train_loss.is_finite());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mini_xception_init_fine_tunes_from_the_imported_weights() {
    let d = import::fer_mini_xception(&common::provided(FER_PACKAGE_HDF5, "scripts/pretrained.sh")).unwrap();
    let dir = model_folder(&d, "minix");
    let (arch, manifest, weights) = read_trainable(&dir).unwrap();
    let init = Init { weights, labels: manifest.labels };
    // Before any step, the initialised model is the imported one.
    let mut vs = nn::VarStore::new(tch::Device::Cpu);
    let model = arch.build(&vs.root());
    load_init(&mut vs, &arch, &init).unwrap();
    let x = tch::Tensor::rand([2, 1, 64, 64], tch::kind::FLOAT_CPU) * 2.0 - 1.0;
    let a = tch::no_grad(|| model.forward_t(&x, false));
    let b = tch::no_grad(|| d.imported.model.forward_t(&x, false));
    assert!((a - b).abs().max().double_value(&[]) < 1e-6);

    let ds = generate(&BuiltinConfig { seed: 5, size: 64, train: 140, val: 35, test: 0, ..Default::default() });
    let out = dir.join("training");
    std::fs::create_dir_all(&out).unwrap();
    let t = train(&config(&d, init), &ds, tch::Device::Cpu, &out, |_| {}).unwrap();
    assert!(t.history[0].train_loss.is_finite() && t.history[0].val_accuracy >= 0.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_folder_without_trainable_weights_is_refused_with_its_path() {
    let dir = std::env::temp_dir().join(format!("fer-init-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = format!("{:#}", read_trainable(&dir).unwrap_err());
    assert!(err.contains(&dir.display().to_string()), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn efficientnet_lite0_gray_init_fine_tunes() {
    let d = import::efficientnet_lite0_init(
        &common::provided(import::EFFICIENTNET_LITE0_PTH, "scripts/pretrained.sh"),
        true,
        64,
    )
    .unwrap();
    let dir = model_folder(&d, "lite0");
    let (arch, manifest, weights) = read_trainable(&dir).unwrap();
    assert_eq!(manifest.input.channels, 1);
    let init = Init { weights, labels: manifest.labels };
    let ds = generate(&BuiltinConfig { seed: 6, size: 64, train: 70, val: 35, test: 0, ..Default::default() });
    let out = dir.join("training");
    std::fs::create_dir_all(&out).unwrap();
    let mut cfg = config(&d, init);
    cfg.architecture = arch;
    let t = train(&cfg, &ds, tch::Device::Cpu, &out, |_| {}).unwrap();
    assert!(t.history[0].train_loss.is_finite());
    std::fs::remove_dir_all(&dir).unwrap();
}
