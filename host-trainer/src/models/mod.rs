//! Model architectures, one file each; parameter names follow torchvision so PyTorch weights map
//! one to one.

pub mod mobilenet_v2;

use serde::{Deserialize, Serialize};
use tch::nn;

use crate::export::OnnxBuilder;

/// A trainable network that can also write itself as ONNX.
pub trait FerModel: nn::ModuleT {
    /// Appends the eval-mode graph (BatchNorm folded) reading `input`; returns the logits' name.
    fn to_onnx(&self, g: &mut OnnxBuilder, input: &str) -> String;
}

/// An architecture and its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Architecture {
    MobilenetV2(mobilenet_v2::MobileNetV2Config),
}

impl Architecture {
    /// Short name for manifests and reports.
    pub fn name(&self) -> String {
        match self {
            Architecture::MobilenetV2(c) => format!("mobilenet_v2-{}", c.width),
        }
    }

    /// Builds the network under `p`.
    pub fn build(&self, p: &nn::Path) -> Box<dyn FerModel> {
        match self {
            Architecture::MobilenetV2(c) => Box::new(mobilenet_v2::MobileNetV2::new(p, c)),
        }
    }
}
