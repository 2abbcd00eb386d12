//! face-api.js's expression net (tfjs weights, uint8-quantized), imported in Rust, against
//! face-api.js itself: `scripts/faceapi_reference.cjs` runs face-api.js 1.7.15 on TensorFlow.js
//! 4.22.0 (CPU backend; `scripts/node-ref.sh`) on the same RGB face crops of scikit-image's
//! astronaut photograph and on random images, normalising them its own way. The imported network
//! (tch, fed by fer-core's preprocessing with the manifest's normalisation) and its ONNX export
//! (tract) must match face-api's logits and probabilities to <= 1e-4.

use crate::common;

use std::process::Command;

use fer_core::preprocess::{InputSpec, Normalisation};
use fer_trainer::import::{self, tfjs, FACE_API_MANIFEST};
use tch::{Kind, Tensor};

#[test]
fn face_api_matches_tfjs_on_real_faces() {
    let manifest = common::provided(FACE_API_MANIFEST, "scripts/pretrained.sh");
    let d = import::face_api(&manifest).unwrap();
    assert_eq!(d.imported.input_chw, [3, 112, 112]);
    // Pixels 0..255 (no normalisation) for face-api, which normalises them itself.
    let raw_spec =
        InputSpec { normalisation: Normalisation { scale: 1.0, mean: vec![0.0], std: vec![1.0] }, ..d.input.clone() };
    let img = common::astronaut();
    let boxes = common::astronaut_boxes();
    let faces = raw_spec.preprocess_batch(&img, &boxes).unwrap();
    let mut pixels = Tensor::from_slice(&faces.data).view([boxes.len() as i64, 3, 112, 112]);
    tch::manual_seed(5);
    let random = (Tensor::rand([3, 3, 112, 112], tch::kind::FLOAT_CPU) * 255.0).round();
    pixels = Tensor::cat(&[pixels, random], 0);
    let n = pixels.size()[0];

    let dir = std::env::temp_dir().join(format!("fer-faceapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let nhwc = Vec::<f32>::try_from(pixels.permute([0, 2, 3, 1]).contiguous().flatten(0, -1)).unwrap();
    let bytes: Vec<u8> = nhwc.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("in.f32"), bytes).unwrap();
    let out = Command::new("node")
        .arg(common::repo().join("scripts/faceapi_reference.cjs"))
        .arg(&manifest)
        .arg(dir.join("in.f32"))
        .arg(n.to_string())
        .arg(dir.join("out.json"))
        .output()
        .expect("cannot run node (run scripts/node-ref.sh)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "face-api reference failed (run scripts/node-ref.sh):\n{text}");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).unwrap()).unwrap();
    let matrix = |key: &str| {
        let rows: Vec<f32> = reference[key]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
            .collect();
        Tensor::from_slice(&rows).view([n, 7])
    };
    let (f_logits, f_probs) = (matrix("logits"), matrix("probs"));

    // Our side: fer-core's normalisation from the manifest's spec, then the imported network.
    let norm = &d.input.normalisation;
    let mean = Tensor::from_slice(&norm.mean).view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&norm.std).view([1, 3, 1, 1]);
    let x = ((&pixels * norm.scale as f64) - mean) / std;
    // The same through fer-core for the photo crops (the random images have no photo).
    let via_core = d.input.preprocess_batch(&img, &boxes).unwrap();
    let via_core = Tensor::from_slice(&via_core.data).view([boxes.len() as i64, 3, 112, 112]);
    assert!(common::max_diff(&via_core, &x.narrow(0, 0, boxes.len() as i64)) < 1e-5);

    let ours = tch::no_grad(|| d.imported.model.forward_t(&x.to_kind(Kind::Float), false));
    let d_logits = common::max_diff(&ours, &f_logits);
    let d_probs = common::max_diff(&ours.softmax(-1, Kind::Float), &f_probs);
    eprintln!("tch vs face-api.js: logits {d_logits:.2e}, probs {d_probs:.2e}");
    assert!(d_logits <= 1e-4 && d_probs <= 1e-4, "tch differs from face-api.js: logits {d_logits}, probs {d_probs}");

    let m = common::deployable_manifest(&d, "face-api-test");
    fer_trainer::export::write_model(d.imported.model.as_ref(), m, &dir).unwrap();
    let flat = Vec::<f32>::try_from(x.to_kind(Kind::Float).flatten(0, -1)).unwrap();
    let tract = fer_trainer::export::tract_run(&dir.join("model.onnx"), &flat, [n as usize, 3, 112, 112]).unwrap();
    let d_tract = common::max_diff(&Tensor::from_slice(&tract).view([n, 7]), &f_logits);
    eprintln!("tract vs face-api.js: logits {d_tract:.2e}");
    assert!(d_tract <= 1e-4, "tract differs from face-api.js by {d_tract}");

    // The astronaut smiles: face-api's "happy" (output 1) wins on the photo crops.
    let happy = d.labels.iter().position(|e| *e == fer_core::Emotion::Happy).unwrap() as i64;
    assert_eq!(happy, 1);
    for i in 0..boxes.len() as i64 {
        assert_eq!(f_probs.get(i).argmax(0, false).int64_value(&[]), happy, "crop {i}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_shards_and_bad_manifests_are_refused_with_the_path() {
    let manifest = common::provided(FACE_API_MANIFEST, "scripts/pretrained.sh");
    let dir = std::env::temp_dir().join(format!("fer-faceapi-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let m = dir.join("face_expression_model-weights_manifest.json");
    std::fs::copy(&manifest, &m).unwrap();
    let bin = std::fs::read(manifest.with_file_name("face_expression_model.bin")).unwrap();
    std::fs::write(dir.join("face_expression_model.bin"), &bin[..bin.len() - 100]).unwrap();
    let err = tfjs::face_expression_net(&m).unwrap_err().to_string();
    assert!(err.contains(&m.display().to_string()) && err.contains("truncated"), "{err}");

    std::fs::write(dir.join("face_expression_model.bin"), [bin.as_slice(), &[0u8; 4]].concat()).unwrap();
    let err = tfjs::face_expression_net(&m).unwrap_err().to_string();
    assert!(err.contains("the manifest describes"), "{err}");

    std::fs::write(&m, "{\"not\": \"a manifest\"}").unwrap();
    let err = tfjs::face_expression_net(&m).unwrap_err().to_string();
    assert!(err.contains(&m.display().to_string()) && err.contains("not a tfjs weights manifest"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
