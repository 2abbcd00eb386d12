//! `--resume` continues a run from its checkpoint, refuses another run's checkpoint, and the
//! report of a run is one self-contained HTML file whose numbers are the run's metrics.

use crate::common;

use fer_core::preprocess::InputSpec;
use fer_trainer::datasets::builtin::{generate, BuiltinConfig};
use fer_trainer::models::custom_cnn::CustomCnnConfig;
use fer_trainer::models::Architecture;
use fer_trainer::train::{evaluate, to_tensors, train_resumable, TrainConfig};

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 70,
        seed: 5,
        ..common::train_config(
            Architecture::CustomCnn(CustomCnnConfig { in_channels: 1, classes: 7, input_size: 32 }),
            InputSpec { face_margin: 0.0, ..InputSpec::gray(32) },
        )
    }
}

#[test]
fn resume_continues_the_schedule_and_refuses_other_runs() {
    let ds = generate(&BuiltinConfig { seed: 2, size: 32, train: 280, val: 70, test: 70, ..Default::default() });
    let out = std::env::temp_dir().join(format!("fer-resume-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let dev = tch::Device::Cpu;
    let first = train_resumable(&config(2), &ds, dev, &out, false, |_| {}, |_| {}).unwrap();
    assert_eq!(first.history.len(), 2);
    // Steps seen by the resumed run: it must start at epoch 3 with the schedule at step 2 * 4.
    let mut epochs_seen = Vec::new();
    let resumed =
        train_resumable(&config(3), &ds, dev, &out, true, |_| {}, |e| epochs_seen.push((e.epoch, e.lr))).unwrap();
    assert_eq!(epochs_seen.iter().map(|e| e.0).collect::<Vec<_>>(), vec![3]);
    assert_eq!(resumed.history.len(), 3);
    for (a, b) in first.history.iter().zip(&resumed.history) {
        assert_eq!((a.epoch, a.train_loss, a.val_accuracy), (b.epoch, b.train_loss, b.val_accuracy));
    }
    // Cosine schedule over 3 epochs of 4 steps, no warm-up: the last step (11) has lr ~ 0.
    let expected = fer_trainer::train::lr_at(1e-3, 11, 0, 12);
    assert!((epochs_seen[0].1 - expected).abs() < 1e-12, "{} vs {expected}", epochs_seen[0].1);
    let ckpt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint.json")).unwrap()).unwrap();
    assert_eq!(ckpt["epoch"], 3);
    assert_eq!(ckpt["step"], 12);

    // Another configuration's checkpoint is refused, naming the file.
    let mut other = config(4);
    other.lr = 5e-3;
    let err = train_resumable(&other, &ds, dev, &out, true, |_| {}, |_| {}).err().unwrap();
    assert!(format!("{err:#}").contains("checkpoint.json"), "{err:#}");

    // The report: numbers in the HTML are the run's own metrics; nothing is fetched.
    let test = to_tensors(&ds.test, &config(3).input, dev).unwrap();
    let (_, conf) = evaluate(resumed.model.as_ref(), &test, 64);
    let report = conf.report();
    fer_trainer::report::write_run(&out, "resume test", &report, &resumed.history, "notes").unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(&format!("{:.4}", report.macro_f1)));
    for c in &report.per_class {
        assert!(
            html.contains(&format!("<td>{}</td><td>{:.4}</td>", c.label.name(), c.precision)),
            "{}",
            c.label.name()
        );
    }
    assert!(
        !html.contains("http://")
            || html.matches("http://").count() == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(!html.contains("https://") && !html.contains("<script"));
    assert_eq!(html.matches("<svg").count(), 3, "loss, accuracy, confusion");
    for f in ["loss.svg", "accuracy.svg", "confusion.svg"] {
        roxmltree::Document::parse(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap();
    }
    std::fs::remove_dir_all(&out).unwrap();
}
