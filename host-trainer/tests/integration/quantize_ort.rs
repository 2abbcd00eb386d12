//! int8 quantization checked against an independent runtime: every layout × activation type of a
//! small MobileNetV2 (non-trivial BatchNorm) runs in tract and in onnxruntime
//! (`scripts/ort_reference.py`, `.venv-ref`), which implements QuantizeLinear, QLinearConv and
//! DequantizeLinear on its own. Their logits must agree to within a few quantization steps, the
//! f32 export to 1e-4, and each int8 model must stay close to the f32 model it came from.

use crate::common;

use std::path::Path;
use std::process::Command;

use fer_trainer::datasets::builtin::{generate, BuiltinConfig};
use fer_trainer::quantize::{self as fq, ActivationType, Calibration, Layout};
use prost::Message;

const CHW: [usize; 3] = [1, 48, 48];

fn ort(model: &Path, x: &[f32], n: usize, dir: &Path) -> Vec<f32> {
    let inp = dir.join("in.f32");
    let out = dir.join("out.f32");
    std::fs::write(&inp, x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let py = common::repo().join(".venv-ref/bin/python");
    let o = Command::new(&py)
        .arg(common::repo().join("scripts/ort_reference.py"))
        .args(["run".as_ref(), model.as_os_str(), inp.as_os_str()])
        .args([n, CHW[0], CHW[1], CHW[2]].map(|d| d.to_string()))
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run scripts/setup.sh): {e}", py.display()));
    assert!(o.status.success(), "onnxruntime failed on {}:\n{}", model.display(), String::from_utf8_lossy(&o.stderr));
    std::fs::read(&out).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn argmax(r: &[f32]) -> usize {
    r.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).unwrap().0
}

/// Top-1 agreement of `q` with `reference` (rows of 7 logits): (rows that agree, rows counted),
/// counting only the rows where `reference`'s top two logits are at least `margin` apart. Where
/// they are closer, a rounding error far below any useful bound can swap them, so agreement there
/// measures the network's luck rather than the quantizer.
fn confident_agreement(q: &[f32], reference: &[f32], margin: f32) -> (usize, usize) {
    let confident = |r: &[f32]| {
        let mut s = r.to_vec();
        s.sort_by(|a, b| b.total_cmp(a));
        s[0] - s[1] >= margin
    };
    let rows: Vec<_> = q.chunks(7).zip(reference.chunks(7)).filter(|(_, r)| confident(r)).collect();
    (rows.iter().filter(|(q, r)| argmax(q) == argmax(r)).count(), rows.len())
}

/// A MobileNetV2-0.35 (1x48x48 → 7) exported as f32 ONNX, its weights drawn from `seed` alone
/// (see [`common::seeded_weights`]); `realistic`: random BatchNorm statistics and logits scaled to
/// a trained network's few units (torchvision's classifier init, std 0.01, gives ~0.1), so that
/// rounding errors are judged against realistic values.
fn tiny_mobilenet(seed: u64, realistic: bool) -> tract_onnx::pb::ModelProto {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let model = common::mobilenet_v2(0.35, 2).build(&vs.root());
    let (bn_spread, classifier_gain) = if realistic { (0.1, 300.0) } else { (0.0, 1.0) };
    common::seeded_weights(&vs, seed, bn_spread, classifier_gain);
    let mut g = fer_trainer::export::OnnxBuilder::default();
    let logits = model.to_onnx(&mut g, "input");
    g.finish(&logits, [1, 48, 48], 7, "quantization test")
}

#[test]
fn int8_layouts_agree_with_onnxruntime_and_stay_close_to_f32() {
    let dir = std::env::temp_dir().join(format!("fer-quant-ort-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f32_model = tiny_mobilenet(21, true);
    let f32_path = dir.join("f32.onnx");
    std::fs::write(&f32_path, f32_model.encode_to_vec()).unwrap();

    // Real (synthetic) faces, normalised as the trainer does: calibration and evaluation sets.
    let ds = generate(&BuiltinConfig { seed: 9, size: 48, train: 64, val: 0, test: 32, ..Default::default() });
    let spec = fer_core::preprocess::InputSpec { face_margin: 0.0, ..fer_core::preprocess::InputSpec::gray(48) };
    let flat = |s: &[fer_trainer::datasets::Sample]| {
        let t = fer_trainer::train::to_tensors(s, &spec, tch::Device::Cpu).unwrap();
        Vec::<f32>::try_from(t.x.flatten(0, -1)).unwrap()
    };
    let (calib, test) = (flat(&ds.train), flat(&ds.test));
    let n = ds.test.len();

    let f32_plan = fq::tract_plan(&f32_model.encode_to_vec(), 8, CHW).unwrap();
    let f32_tract: Vec<f32> = fq::run_batches(&f32_plan, 8, CHW, &test).unwrap().concat();
    let f32_ort = ort(&f32_path, &test, n, &dir);
    let d = max_abs_diff(&f32_tract, &f32_ort);
    eprintln!("f32: tract vs onnxruntime {d:.2e}");
    assert!(d <= 1e-4, "f32 export: tract and onnxruntime differ by {d}");
    let spread = f32_tract.iter().fold(0f32, |m, v| m.max(v.abs()));
    // The top-1 check below judges only faces that f32 separates by MARGIN of the logit range:
    // enough of them for it to mean something.
    const MARGIN: f32 = 0.1;
    let confident = confident_agreement(&f32_tract, &f32_tract, MARGIN * spread).1;
    eprintln!("f32: {confident} of {n} faces with a top-2 margin over {:.2}", MARGIN * spread);
    assert!(
        confident >= n / 4,
        "the test network separates only {confident} of {n} faces by {MARGIN} of its logit range: draw it from another seed"
    );

    for method in [Calibration::MinMax, Calibration::Percentile] {
        let ranges = fq::calibrate(&f32_model, &calib, CHW, method).unwrap();
        for layout in Layout::ALL {
            for act in [ActivationType::U8, ActivationType::I8] {
                let q = fq::quantize(&f32_model, &ranges, layout, act).unwrap();
                let path = dir.join(format!("{}-{}-{act:?}.onnx", layout.name(), method.name()));
                std::fs::write(&path, q.encode_to_vec()).unwrap();
                let plan = fq::tract_plan(&q.encode_to_vec(), 8, CHW).unwrap();
                let tract: Vec<f32> = fq::run_batches(&plan, 8, CHW, &test).unwrap().concat();
                let reference = ort(&path, &test, n, &dir);
                let d_ort = max_abs_diff(&tract, &reference);
                let d_f32 = max_abs_diff(&tract, &f32_tract);
                let (agree, confident) = confident_agreement(&tract, &f32_tract, MARGIN * spread);
                let all = confident_agreement(&tract, &f32_tract, 0.0).0;
                eprintln!(
                    "{} {} {act:?}: tract vs onnxruntime {d_ort:.3e}, vs f32 {d_f32:.3e} (logit range {spread:.2}), top-1 agreement with f32 {agree}/{confident} confident faces, {all}/{n} in all",
                    layout.name(),
                    method.name()
                );
                // Same integer arithmetic: differences come from rounding in requantization only.
                assert!(d_ort <= 0.05 * spread, "{}: tract and onnxruntime differ by {d_ort}", path.display());
                assert!(d_f32 <= 0.25 * spread, "{}: int8 strays {d_f32} from f32", path.display());
                // An int8 error up to the bound above could still swap two logits a tenth of the
                // range apart; on the faces where f32 is that sure, int8 must pick the same class.
                assert!(
                    agree == confident,
                    "{}: top-1 differs from f32 on {} of {confident} faces with a top-2 margin over {:.2}",
                    path.display(),
                    confident - agree,
                    MARGIN * spread
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn quantized_graph_has_the_layout_it_claims() {
    let f32_model = tiny_mobilenet(3, false);
    let x: Vec<f32> = (0..64 * 48 * 48).map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect();
    let ranges = fq::calibrate(&f32_model, &x, CHW, Calibration::MinMax).unwrap();
    let count = |m: &tract_onnx::pb::ModelProto, op: &str| {
        m.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type == op).count()
    };
    let convs = count(&f32_model, "Conv");
    let pointwise = f32_model
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .filter(|n| {
            n.op_type == "Conv"
                && n.attribute.iter().any(|a| a.name == "kernel_shape" && a.ints == [1, 1])
                && n.attribute.iter().any(|a| a.name == "group" && a.i == 1)
        })
        .count();
    let qdq = fq::quantize(&f32_model, &ranges, Layout::Qdq, ActivationType::U8).unwrap();
    assert_eq!(count(&qdq, "Conv"), convs);
    assert_eq!(count(&qdq, "QLinearConv"), 0);
    // One weight DequantizeLinear per Conv and for the Gemm, plus activations.
    assert!(count(&qdq, "DequantizeLinear") > convs);
    let all = fq::quantize(&f32_model, &ranges, Layout::Qlinear, ActivationType::U8).unwrap();
    assert_eq!((count(&all, "QLinearConv"), count(&all, "Conv")), (convs, 0));
    let pw = fq::quantize(&f32_model, &ranges, Layout::QlinearPointwise, ActivationType::U8).unwrap();
    assert_eq!((count(&pw, "QLinearConv"), count(&pw, "Conv")), (pointwise, convs - pointwise));
    // Chained QLinearConvs (expand -> ReLU6 -> depthwise) need no Clip between them in uint8.
    assert!(count(&all, "Clip") < count(&f32_model, "Clip"));
}
