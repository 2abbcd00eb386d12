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
    /// One run state (plan + per-op scratch) per batch size, built on first use of each size
    /// and reused: a fresh state per run cost ~10 % of a mini-XCEPTION inference.
    states: std::collections::HashMap<usize, TypedSimpleState>,
}

impl TractClassifier {
    /// Loads the model a manifest describes, after checking its SHA-256, and refuses it when the
    /// ONNX input or output shape disagrees with the manifest. `threads` as in [`run_options`].
    pub fn load(manifest_path: &Path, threads: usize) -> Result<TractClassifier, ClassifyError> {
        let manifest = ModelManifest::load(manifest_path)?;
        let onnx = manifest.verified_onnx_path(manifest_path)?;
        let bad = |message: String| ClassifyError::Model { path: onnx.clone(), message };
        let model =
            tract_onnx::onnx().model_for_path(&onnx).map_err(|e| bad(format!("not a loadable ONNX model: {e:#}")))?;
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
            states: Default::default(),
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

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Raw model outputs for `n` preprocessed faces (`n * C * H * W` values).
    pub fn run(&mut self, batch: &[f32], n: usize) -> Result<Vec<f32>, ClassifyError> {
        let s = &self.manifest.input;
        let shape = [n, s.channels, s.height, s.width];
        let input = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), batch.to_vec())
            .map_err(|e| ClassifyError::Inference(e.to_string()))?
            .into_tensor();
        let state = match self.states.entry(n) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let state =
                    optimized_plan(&self.model, &shape, &self.options, PlanKind::Fer).and_then(|p| p.spawn()).map_err(
                        |e| ClassifyError::Model { path: self.onnx.clone(), message: format!("batch {n}: {e:#}") },
                    )?;
                v.insert(state)
            }
        };
        let out = state.run(tvec![input.into()]).map_err(|e| ClassifyError::Inference(format!("{e:#}")))?;
        let view = out[0].to_plain_array_view::<f32>().map_err(|e| ClassifyError::Inference(format!("{e:#}")))?;
        Ok(view.iter().copied().collect())
    }
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
        let out = self.run(&batch.data, faces.len())?;
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
    fn missing_manifest_is_a_clear_error() {
        let e = TractClassifier::load(Path::new("/nonexistent/manifest.json"), 1).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/manifest.json"), "{e}");
    }
}
