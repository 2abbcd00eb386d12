//! A tiny MobileNetV2 learns the built-in data: the training loss falls and the validation
//! accuracy beats chance after a few epochs on a few hundred faces (seconds on a CPU). And
//! distillation from a teacher (`TrainConfig::distill`) trains on the teacher's softened outputs.

use crate::common;

use fer_core::preprocess::InputSpec;
use fer_core::Emotion;
use fer_trainer::datasets::builtin::{generate, BuiltinConfig};
use fer_trainer::train::{evaluate, to_tensors, train, Augment, Distill, Init, TrainConfig};
use tch::nn;

/// The smoke run's recipe: a MobileNetV2-0.35 on 32x32 faces, flips only.
fn tiny_config() -> TrainConfig {
    TrainConfig {
        epochs: 10,
        batch_size: 50,
        lr: 5e-3,
        warmup_epochs: 0.5,
        class_weighted_loss: true,
        augment: Augment { flip: true, rotate_deg: 0.0, shift: 0.0, zoom: 0.0, brightness: 0.0, contrast: 0.0 },
        seed: 3,
        ..common::train_config(common::mobilenet_v2(0.35, 1), InputSpec { face_margin: 0.0, ..InputSpec::gray(32) })
    }
}

#[test]
fn tiny_mobilenet_learns_builtin_faces() {
    let ds = generate(&BuiltinConfig { seed: 1, size: 32, train: 1400, val: 140, test: 280, ..Default::default() });
    let cfg = tiny_config();
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

/// Distillation: with alpha 1 the first step's loss is the distillation term alone, between the
/// untrained student and a teacher whose outputs are stored in reverse FER-2013 order (permuted
/// back by the trainer), recomputed here in f64 from the two networks' logits.
#[test]
fn distillation_trains_on_the_teachers_softened_outputs() {
    let ds = generate(&BuiltinConfig { seed: 2, size: 32, train: 60, val: 14, test: 0, ..Default::default() });
    let out = std::env::temp_dir().join(format!("fer-train-distill-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    tch::manual_seed(11);
    let tvs = nn::VarStore::new(tch::Device::Cpu);
    let teacher = common::mobilenet_v2(0.5, 1).build(&tvs.root());
    // Outputs that differ by class (a fresh head's are all near zero), so that the order of the
    // teacher's columns matters.
    tch::no_grad(|| {
        let vars = tvs.variables();
        vars["classifier.1.bias"].shallow_clone().copy_(&tch::Tensor::arange(7, tch::kind::FLOAT_CPU));
        let mut w = vars["classifier.1.weight"].shallow_clone();
        w *= 30.0;
    });
    let weights = out.join("teacher.safetensors");
    tvs.save(&weights).unwrap();
    let labels: Vec<Emotion> = Emotion::ALL.iter().rev().copied().collect();
    let student_weights = out.join("student.safetensors");
    let svs = nn::VarStore::new(tch::Device::Cpu);
    let student = tiny_config().architecture.build(&svs.root());
    svs.save(&student_weights).unwrap();
    let temperature = 3.0;
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 60,
        warmup_epochs: 0.0,
        class_weighted_loss: false,
        augment: Augment { flip: false, ..tiny_config().augment },
        seed: 5,
        // The student starts from saved weights rather than from the seed: torch's generator is
        // global, and another test's model built between the trainer's seeding and its student
        // would change the student (tests share one process).
        init: Some(Init { weights: student_weights.clone(), labels: Emotion::ALL.to_vec() }),
        distill: Some(Distill {
            teacher: common::mobilenet_v2(0.5, 1),
            weights: Init { weights, labels: labels.clone() },
            alpha: 1.0,
            temperature,
        }),
        ..tiny_config()
    };
    let t = train(&cfg, &ds, tch::Device::Cpu, &out, |_| {}).unwrap();
    let got = t.history[0].train_loss;

    // The student as the trainer starts it (the weights it loaded), in training mode as in the step
    // (batch statistics; one batch of every sample).
    let x = to_tensors(&ds.train, &cfg.input, tch::Device::Cpu).unwrap().x;
    let s = Vec::<Vec<f32>>::try_from(tch::no_grad(|| student.forward_t(&x, true))).unwrap();
    let raw = Vec::<Vec<f32>>::try_from(tch::no_grad(|| teacher.forward_t(&x, false))).unwrap();
    let log_softmax = |v: &[f64]| {
        let m = v.iter().cloned().fold(f64::MIN, f64::max);
        let z = v.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        v.iter().map(|x| x - m - z).collect::<Vec<f64>>()
    };
    let mut want = 0.0;
    for (s, raw) in s.iter().zip(&raw) {
        // Column i of the teacher in FER order is its stored column for emotion i.
        let tv: Vec<f64> = Emotion::ALL
            .iter()
            .map(|e| raw[labels.iter().position(|l| l == e).unwrap()] as f64 / temperature)
            .collect();
        let sv: Vec<f64> = s.iter().map(|v| *v as f64 / temperature).collect();
        let (lt, ls) = (log_softmax(&tv), log_softmax(&sv));
        want += lt.iter().zip(&ls).map(|(t, s)| t.exp() * (t - s)).sum::<f64>() * temperature * temperature;
    }
    want /= s.len() as f64;
    assert!(want > 0.1, "the check needs a student and teacher that disagree ({want})");
    assert!((got - want).abs() < 1e-4 * want, "first step's loss {got}, distillation term {want}");
    std::fs::remove_dir_all(&out).unwrap();
}
