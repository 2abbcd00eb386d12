//! The model manifest: the JSON file written beside every exported ONNX model. It is the one
//! place that says what the model expects (input size, colour, resize, normalisation), what its
//! outputs mean (label order), how it was quantized, where it came from and how good it is.
//!
//! ```
//! # use fer_core::manifest::ModelManifest;
//! # fn f(p: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! let manifest = ModelManifest::load(p)?;           // parses and validates
//! let onnx = manifest.verified_onnx_path(p)?;       // checks the SHA-256 before use
//! # Ok(()) }
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::parse::{self, FileError, Syntax};
use crate::preprocess::InputSpec;
use crate::Emotion;

/// Manifest schema version written and read by this crate.
pub const SCHEMA_VERSION: u32 = 1;

/// File name of a model's manifest inside its folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// What the model's output values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Raw scores; the consumer applies softmax.
    Logits,
    /// Already probabilities (the graph ends in softmax).
    Softmax,
}

/// The model's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Number of output values per face; equals `labels.len()`.
    pub classes: usize,
    /// Logits or probabilities.
    pub activation: Activation,
}

/// How the model was quantized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Quantization {
    /// Plain f32 weights and activations.
    None,
    /// int8 post-training quantization.
    Int8 {
        /// Weight scheme, e.g. `per-channel-symmetric`.
        weights: String,
        /// Activation scheme, e.g. `per-tensor-minmax` or `per-tensor-percentile-99.99`.
        activations: String,
        /// Which operators are quantized and how they are expressed in ONNX, e.g.
        /// `qdq-pointwise+head` or `qlinear-all`.
        layout: String,
        /// Number of training images used for calibration.
        calibration_images: usize,
    },
}

/// Where the model came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Training dataset, e.g. `fer2013`, `ckplus`, `builtin-synthetic-v1`.
    pub dataset: String,
    /// The command that produced the model.
    pub created_by: String,
    /// Training epochs, when trained here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    /// Random seed, when trained here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Original source of imported weights (package and file), if imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Licence of the weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
}

/// Evaluation results of this model file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Which split these figures are measured on, e.g. `builtin test (seed 7, 2100 images)`.
    pub split: String,
    /// Top-1 accuracy in 0..=1.
    pub accuracy: f64,
    /// Unweighted mean of per-class F1 in 0..=1.
    pub macro_f1: f64,
    /// Per-class F1 in canonical order, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_class_f1: Option<Vec<f64>>,
    /// For a quantized model: the f32 model's accuracy on the same split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f32_accuracy: Option<f64>,
}

/// A model manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Schema version; must be [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Model name, e.g. `mobilenetv2-0.5-builtin`.
    pub name: String,
    /// Architecture, e.g. `mobilenet_v2`, `mini_xception`.
    pub architecture: String,
    /// ONNX file, relative to the manifest's folder.
    pub onnx_file: String,
    /// SHA-256 of the ONNX file, 64 lowercase hex digits.
    pub sha256: String,
    /// Expected input; the tensor is `[batch, channels, height, width]`, batch symbolic.
    pub input: InputSpec,
    /// Emotion of each output position, in the model's order.
    pub labels: Vec<Emotion>,
    /// Output size and activation.
    pub output: OutputSpec,
    /// Quantization.
    pub quantization: Quantization,
    /// Provenance.
    pub provenance: Provenance,
    /// Evaluation, if the model was evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

/// Manifest errors.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{onnx}: SHA-256 is {actual} but manifest {manifest} says {expected}; the model file does not belong to this manifest")]
    HashMismatch { manifest: PathBuf, onnx: PathBuf, expected: String, actual: String },
    #[error("{path}: cannot read model file: {error}")]
    OnnxIo { path: PathBuf, error: std::io::Error },
}

impl ModelManifest {
    /// Reads and validates a manifest.
    pub fn load(path: &Path) -> Result<ModelManifest, ManifestError> {
        let text = parse::read(path)?;
        Ok(Self::from_json(path, &text)?)
    }

    /// Parses and validates manifest JSON; `path` is used in errors.
    pub fn from_json(path: &Path, text: &str) -> Result<ModelManifest, FileError> {
        let m: ModelManifest = parse::parse(path, text, Syntax::Json)?;
        m.validate(path)?;
        Ok(m)
    }

    /// Checks every field; errors name `path` and the field.
    pub fn validate(&self, path: &Path) -> Result<(), FileError> {
        let bad = |field: &str, problem: String| Err(FileError::invalid(path, field, problem));
        if self.schema_version != SCHEMA_VERSION {
            return bad(
                "schema_version",
                format!("{} is not supported (this build reads {SCHEMA_VERSION})", self.schema_version),
            );
        }
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty".into());
        }
        if self.onnx_file.trim().is_empty() {
            return bad("onnx_file", "must not be empty".into());
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return bad("sha256", format!("{:?} is not 64 lowercase hex digits", self.sha256));
        }
        if let Err((field, problem)) = self.input.check() {
            return bad(&format!("input.{field}"), problem);
        }
        if self.labels.is_empty() {
            return bad("labels", "must list at least one emotion".into());
        }
        if self.labels.len() != self.output.classes {
            return bad(
                "labels",
                format!(
                    "{} labels but the model outputs {} classes (output.classes)",
                    self.labels.len(),
                    self.output.classes
                ),
            );
        }
        for (i, l) in self.labels.iter().enumerate() {
            if self.labels[..i].contains(l) {
                return bad(&format!("labels[{i}]"), format!("{l} appears twice"));
            }
        }
        if let Some(m) = &self.metrics {
            for (field, v) in [("metrics.accuracy", m.accuracy), ("metrics.macro_f1", m.macro_f1)] {
                if !(0.0..=1.0).contains(&v) {
                    return bad(field, format!("{v} is outside 0..=1"));
                }
            }
        }
        Ok(())
    }

    /// Writes the manifest as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        let text = serde_json::to_string_pretty(self).expect("manifest serializes");
        std::fs::write(path, text + "\n").map_err(|error| FileError::Io { path: path.to_path_buf(), error })
    }

    /// The ONNX path, resolved against the manifest's folder.
    pub fn onnx_path(&self, manifest_path: &Path) -> PathBuf {
        manifest_path.parent().unwrap_or(Path::new(".")).join(&self.onnx_file)
    }

    /// The ONNX path after checking that the file's SHA-256 matches [`ModelManifest::sha256`].
    pub fn verified_onnx_path(&self, manifest_path: &Path) -> Result<PathBuf, ManifestError> {
        let onnx = self.onnx_path(manifest_path);
        let actual = sha256_file(&onnx).map_err(|error| ManifestError::OnnxIo { path: onnx.clone(), error })?;
        if actual != self.sha256 {
            return Err(ManifestError::HashMismatch {
                manifest: manifest_path.to_path_buf(),
                onnx,
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(onnx)
    }
}

/// SHA-256 of a file as lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
