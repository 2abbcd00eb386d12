//! Classification: a batch of face crops → per-face probabilities in canonical emotion order.
//! [`TractClassifier`] runs any ONNX model described by a fer-core manifest with tract.
//!
//! ```
//! use fer_core::preprocess::FaceBox;
//! use fer_device::classify::{Classifier, ClassifyError};
//! use fer_device::track::Probs;
//! /// Always says "happy" (for pipeline tests without weights).
//! struct AlwaysHappy;
//! impl Classifier for AlwaysHappy {
//!     fn classify(&mut self, _frame: &image::DynamicImage, faces: &[FaceBox]) -> Result<Vec<Probs>, ClassifyError> {
//!         let mut p = [0.0; 7];
//!         p[3] = 1.0;
//!         Ok(vec![p; faces.len()])
//!     }
//! }
//! ```

use std::path::{Path, PathBuf};

use fer_core::emotion::to_canonical;
use fer_core::manifest::{Activation, ManifestError, ModelManifest};
use fer_core::preprocess::{FaceBox, PreprocessError};
use image::DynamicImage;
use tract_onnx::prelude::*;

use crate::track::Probs;

pub mod kernels;
pub mod rewrite;

/// Classifier errors.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("preprocessing: {0}")]
    Preprocess(#[from] PreprocessError),
    #[error("inference: {0}")]
    Inference(String),
}

/// Classifies faces of a frame.
pub trait Classifier {
    fn classify(&mut self, frame: &DynamicImage, faces: &[FaceBox]) -> Result<Vec<Probs>, ClassifyError>;
}

/// tract's run options for `threads`: above 1, one pool of that many threads runs the matrix
/// products (tract's only multithreaded kernels). Build once and share: each call makes a pool.
pub fn run_options(threads: usize) -> RunOptions {
    RunOptions {
        executor: (threads > 1).then(|| tract_linalg::multithread::Executor::multithread(threads)),
        ..Default::default()
    }
}

/// How a plan is built from the ONNX model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// tract's optimiser after our rewrites ([`rewrite::tune`]): what the classifier runs (tract's
    /// own plan, with a warning, for a model the rewrites fail on).
    Fer,
    /// tract's optimiser alone (for comparison in `bench-models`); it still runs our registered
    /// depthwise kernel ([`kernels`]) where tract chooses channel-last on its own.
    Tract,
}

/// A tract plan of `model` optimised for the concrete input `shape` (tract runs a concrete-shape
/// plan ~9x faster than a symbolic-batch one: BENCHMARKS.md).
pub fn optimized_plan(
    model: &InferenceModel,
    shape: &[usize],
    options: &RunOptions,
    kind: PlanKind,
) -> TractResult<Arc<TypedSimplePlan>> {
    let typed = model.clone().with_input_fact(0, f32::fact(shape).into())?.into_typed()?.into_decluttered()?;
    let typed = match kind {
        // A model our rewrites cannot take still runs, on tract's own plan.
        PlanKind::Fer => rewrite::tune(typed.clone()).unwrap_or_else(|e| {
            eprintln!("warning: fer-edge's plan rewrites failed ({e:#}); running tract's own plan");
            typed
        }),
        PlanKind::Tract => typed,
    };
    typed.into_optimized()?.into_runnable_with_options(options)
}

/// An ONNX model in tract, optimised once at load.
pub struct TractClassifier {
    manifest: ModelManifest,
    onnx: PathBuf,
    /// The parsed model with its symbolic batch, kept to build a plan per batch size.
    model: InferenceModel,
    /// Shared by the plans of every batch size (one thread pool, not one per plan).
    options: RunOptions,
    /// One plan per batch size, built on first use of each size.
    plans: std::collections::HashMap<usize, Arc<TypedSimplePlan>>,
    /// Per worker ([`TractClassifier::with_face_threads`]; each group of faces on whichever
    /// thread takes it): one run state (plan + per-op scratch) per batch size, built on first
    /// use and reused: a fresh state per run cost ~10 % of a mini-XCEPTION inference.
    workers: Vec<std::collections::HashMap<usize, TypedSimpleState>>,
    /// The threads besides the caller's (`workers.len() - 1` of them), kept between frames.
    pool: Option<crate::pool::Pool>,
}

impl TractClassifier {
    /// Loads the model a manifest describes, after checking its SHA-256, and refuses it when the
    /// ONNX input or output shape disagrees with the manifest. `threads` as in [`run_options`].
    pub fn load(manifest_path: &Path, threads: usize) -> Result<TractClassifier, ClassifyError> {
        let manifest = ModelManifest::load(manifest_path)?;
        let onnx = manifest.verified_onnx_path(manifest_path)?;
        let bad = |message: String| ClassifyError::Model { path: onnx.clone(), message };
        let model = fer_core::tract::onnx()
            .model_for_path(&onnx)
            .map_err(|e| bad(format!("not a loadable ONNX model: {e:#}")))?;
        let typed = model.clone().into_optimized().map_err(|e| bad(format!("cannot optimise: {e:#}")))?;
        let s = &manifest.input;
        let fact = typed.input_fact(0).map_err(|e| bad(format!("{e:#}")))?;
        let dims: Vec<Option<i64>> = fact.shape.iter().map(|d| d.to_i64().ok()).collect();
        let want = [s.channels as i64, s.height as i64, s.width as i64];
        if dims.len() != 4 || dims[1..].iter().zip(want).any(|(d, w)| d.is_some_and(|d| d != w)) {
            return Err(bad(format!(
                "input shape {:?} does not match the manifest's [N, {}, {}, {}]",
                fact.shape, want[0], want[1], want[2]
            )));
        }
        // One probe run (building the batch-1 plan) proves the output size matches the labels.
        let probe = vec![0.0f32; s.channels * s.height * s.width];
        let mut c = TractClassifier {
            manifest,
            onnx: onnx.clone(),
            model,
            options: run_options(threads),
            plans: Default::default(),
            workers: vec![Default::default()],
            pool: None,
        };
        let out = c.run(&probe, 1).map_err(|e| bad(format!("probe run failed: {e}")))?;
        if out.len() != c.manifest.labels.len() {
            return Err(bad(format!(
                "model outputs {} values per face but the manifest lists {} labels",
                out.len(),
                c.manifest.labels.len()
            )));
        }
        Ok(c)
    }

    /// Classifies the faces of a frame on up to `n` threads at once (the caller's and `n - 1`
    /// more, kept between frames): each takes an even share of the faces, in order, as one batch
    /// (BENCHMARKS.md: several faces on a 4-core board). Each thread's batch-1 state is made
    /// here, from the plan the load built, so frames of up to `n` faces build no plan.
    pub fn with_face_threads(mut self, n: usize) -> Result<TractClassifier, ClassifyError> {
        self.workers.resize_with(n.max(1), Default::default);
        self.pool = (n > 1).then(|| crate::pool::Pool::new(n - 1));
        for w in 0..self.workers.len() {
            self.state(w, 1)?;
        }
        Ok(self)
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// The run state of worker `w` for batches of `n`, making the plan and the state on first use.
    fn state(&mut self, w: usize, n: usize) -> Result<&mut TypedSimpleState, ClassifyError> {
        if !self.workers[w].contains_key(&n) {
            let model_error =
                |e: TractError| ClassifyError::Model { path: self.onnx.clone(), message: format!("batch {n}: {e:#}") };
            let plan = match self.plans.get(&n) {
                Some(p) => p.clone(),
                None => {
                    let s = &self.manifest.input;
                    let shape = [n, s.channels, s.height, s.width];
                    let p = optimized_plan(&self.model, &shape, &self.options, PlanKind::Fer).map_err(model_error)?;
                    self.plans.insert(n, p.clone());
                    p
                }
            };
            let state = plan.spawn().map_err(model_error)?;
            self.workers[w].insert(n, state);
        }
        Ok(self.workers[w].get_mut(&n).expect("inserted above"))
    }

    /// Raw model outputs for `n` preprocessed faces (`n * C * H * W` values).
    pub fn run(&mut self, batch: &[f32], n: usize) -> Result<Vec<f32>, ClassifyError> {
        self.run_split(batch, &[n])
    }

    /// Raw model outputs for consecutive groups of preprocessed faces, `sizes[i]` faces on worker
    /// `i` (worker 0 on this thread), all at once; in the faces' order.
    fn run_split(&mut self, batch: &[f32], sizes: &[usize]) -> Result<Vec<f32>, ClassifyError> {
        let s = &self.manifest.input;
        let (face, dims) = (s.channels * s.height * s.width, [s.channels, s.height, s.width]);
        let total: usize = sizes.iter().sum();
        if batch.len() != total * face || sizes.len() > self.workers.len() {
            return Err(ClassifyError::Inference(format!(
                "{} values for {total} faces of {face} on {} workers",
                batch.len(),
                self.workers.len()
            )));
        }
        for (w, &n) in sizes.iter().enumerate() {
            self.state(w, n)?;
        }
        let mut rest = batch;
        let mut jobs = Vec::with_capacity(sizes.len());
        for (states, &n) in self.workers.iter_mut().zip(sizes) {
            let (x, after) = rest.split_at(n * face);
            rest = after;
            jobs.push((states.get_mut(&n).expect("made above"), x, n));
        }
        let run = |(state, x, n): (&mut TypedSimpleState, &[f32], usize)| -> Result<Vec<f32>, ClassifyError> {
            let inference = |e: TractError| ClassifyError::Inference(format!("{e:#}"));
            let shape = [n, dims[0], dims[1], dims[2]];
            let input = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), x.to_vec())
                .map_err(|e| ClassifyError::Inference(e.to_string()))?
                .into_tensor();
            let out = state.run(tvec![input.into()]).map_err(inference)?;
            let view = out[0].to_plain_array_view::<f32>().map_err(inference)?;
            Ok(view.iter().copied().collect())
        };
        let pool = match &self.pool {
            Some(pool) if jobs.len() > 1 => pool,
            // One group (one face, or one thread): on this thread.
            _ => return jobs.into_iter().map(run).collect::<Result<Vec<_>, _>>().map(|o| o.concat()),
        };
        // Each group once, on whichever thread takes it; results in the groups' order.
        let jobs: Vec<std::sync::Mutex<Option<_>>> = jobs.into_iter().map(|j| std::sync::Mutex::new(Some(j))).collect();
        let outs: Vec<std::sync::OnceLock<Result<Vec<f32>, ClassifyError>>> =
            jobs.iter().map(|_| Default::default()).collect();
        pool.run(jobs.len(), &|i| {
            let job = jobs[i].lock().unwrap_or_else(|e| e.into_inner()).take().expect("each group runs once");
            let _ = outs[i].set(run(job));
        });
        let mut out = Vec::new();
        for o in outs {
            out.extend(o.into_inner().expect("every group ran")?);
        }
        Ok(out)
    }
}

/// `n` faces shared out to `workers` groups as evenly as possible, larger groups first.
fn split(n: usize, workers: usize) -> Vec<usize> {
    let k = workers.clamp(1, n.max(1));
    (0..k).map(|i| n / k + usize::from(i < n % k)).collect()
}

/// Softmax of one row.
pub fn softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

impl Classifier for TractClassifier {
    fn classify(&mut self, frame: &DynamicImage, faces: &[FaceBox]) -> Result<Vec<Probs>, ClassifyError> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.manifest.input.preprocess_batch(frame, faces)?;
        let out = self.run_split(&batch.data, &split(faces.len(), self.workers.len()))?;
        let k = self.manifest.labels.len();
        Ok(out
            .chunks(k)
            .map(|row| {
                let p = match self.manifest.output.activation {
                    Activation::Logits => softmax(row),
                    Activation::Softmax => row.to_vec(),
                };
                to_canonical(&self.manifest.labels, &p)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_hand_case() {
        let p = softmax(&[0.0, (2.0f32).ln()]);
        assert!((p[0] - 1.0 / 3.0).abs() < 1e-6 && (p[1] - 2.0 / 3.0).abs() < 1e-6);
        let big = softmax(&[1000.0, 1000.0]);
        assert!((big[0] - 0.5).abs() < 1e-6, "stable for large logits");
    }

    #[test]
    fn faces_are_shared_out_evenly_in_order() {
        assert_eq!(split(5, 1), [5]);
        assert_eq!(split(5, 2), [3, 2]);
        assert_eq!(split(5, 3), [2, 2, 1]);
        assert_eq!(split(3, 4), [1, 1, 1]);
        assert_eq!(split(1, 4), [1]);
    }

    /// A linear classifier as ONNX: x [N, 1, 8, 8] (batch `N` symbolic) -> Flatten -> MatMul
    /// `w` [64, 7] -> Add `b` [7] = logits [N, 7]; and its manifest (gray, 1/255, no margin).
    fn linear_model(dir: &Path, w: &[f32], b: &[f32]) -> PathBuf {
        use prost::Message;
        use tract_onnx::pb::{tensor_proto::DataType, tensor_shape_proto::dimension::Value, *};
        let info = |name: &str, dims: &[Value]| ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|d| tensor_shape_proto::Dimension { value: Some(d.clone()), ..Default::default() })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let node = |op: &str, input: &[&str], output: &str| NodeProto {
            op_type: op.into(),
            input: input.iter().map(|i| i.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        };
        let tensor = |name: &str, dims: &[i64], data: &[f32]| TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            float_data: data.to_vec(),
            ..Default::default()
        };
        let n = Value::DimParam("N".into());
        let model = ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
            graph: Some(GraphProto {
                name: "linear".into(),
                node: vec![
                    node("Flatten", &["x"], "flat"),
                    node("MatMul", &["flat", "w"], "wx"),
                    node("Add", &["wx", "b"], "y"),
                ],
                initializer: vec![tensor("w", &[64, 7], w), tensor("b", &[7], b)],
                input: vec![info("x", &[n.clone(), Value::DimValue(1), Value::DimValue(8), Value::DimValue(8)])],
                output: vec![info("y", &[n, Value::DimValue(7)])],
                ..Default::default()
            }),
            ..Default::default()
        };
        std::fs::create_dir_all(dir).unwrap();
        let onnx = dir.join("model.onnx");
        std::fs::write(&onnx, model.encode_to_vec()).unwrap();
        let manifest = serde_json::json!({
            "schema_version": 1, "name": "linear", "architecture": "linear", "onnx_file": "model.onnx",
            "sha256": fer_core::manifest::sha256_file(&onnx).unwrap(),
            "input": {"channels": 1, "height": 8, "width": 8, "color": "gray", "resize": "bilinear",
                      "normalisation": {"scale": 1.0 / 255.0, "mean": [0.0], "std": [1.0]}, "face_margin": 0.0},
            "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
            "output": {"classes": 7, "activation": "logits"},
            "quantization": {"kind": "none"},
            "provenance": {"dataset": "none", "created_by": "classify::tests"},
        });
        let path = dir.join("manifest.json");
        std::fs::write(&path, manifest.to_string()).unwrap();
        path
    }

    #[test]
    fn faces_classified_on_several_threads_are_each_their_own_softmax_of_w_x_plus_b() {
        let w: Vec<f32> = (0..64 * 7).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
        let b: Vec<f32> = (0..7).map(|i| i as f32 * 0.25 - 0.5).collect();
        let dir = std::env::temp_dir().join(format!("fer-classify-test-{}", std::process::id()));
        let manifest = linear_model(&dir, &w, &b);
        let frame = DynamicImage::ImageLuma8(image::GrayImage::from_fn(64, 48, |x, y| {
            image::Luma([((x * 7 + y * 13) % 256) as u8])
        }));
        let faces: Vec<FaceBox> = (0..5)
            .map(|i| FaceBox { x: (i * 11) as f32, y: (i * 5) as f32, w: 8.0 + i as f32, h: 8.0 + i as f32 })
            .collect();
        // The reference: each face preprocessed alone, logits by the sums, softmax.
        let spec = ModelManifest::load(&manifest).unwrap().input;
        let want: Vec<Vec<f32>> = faces
            .iter()
            .map(|f| {
                let x = spec.preprocess_batch(&frame, std::slice::from_ref(f)).unwrap().data;
                let logits: Vec<f32> =
                    (0..7).map(|k| b[k] + (0..64).map(|i| x[i] * w[i * 7 + k]).sum::<f32>()).collect();
                softmax(&logits)
            })
            .collect();
        assert!(want.windows(2).all(|p| p[0] != p[1]), "faces that tell each other apart");
        for threads in [1, 2, 3, 8] {
            let mut c = TractClassifier::load(&manifest, 1).unwrap().with_face_threads(threads).unwrap();
            for n in [5, 3, 1] {
                let got = c.classify(&frame, &faces[..n]).unwrap();
                assert_eq!(got.len(), n);
                for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        g.iter().zip(r).all(|(g, r)| (g - r).abs() < 1e-5),
                        "{threads} threads, {n} faces, face {i}: {g:?} vs {r:?}"
                    );
                }
            }
            // Up to one face a thread, the batch-1 plan of the load is the only plan.
            let sizes: std::collections::BTreeSet<usize> = c.plans.keys().copied().collect();
            let want_sizes: std::collections::BTreeSet<usize> =
                [5, 3, 1].iter().flat_map(|&n| split(n, threads)).collect();
            assert_eq!(sizes, want_sizes, "{threads} threads");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_manifest_is_a_clear_error() {
        let e = TractClassifier::load(Path::new("/nonexistent/manifest.json"), 1).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/manifest.json"), "{e}");
    }
}
