//! Model architectures, one file each; parameter names follow torchvision so PyTorch weights map
//! one to one.

pub mod mini_xception;
pub mod mobilenet_v2;

use serde::{Deserialize, Serialize};
use tch::nn;

use crate::export::{OnnxBuilder, Weights};

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
    MiniXception(mini_xception::MiniXceptionConfig),
}

impl Architecture {
    /// Short name for manifests and reports.
    pub fn name(&self) -> String {
        match self {
            Architecture::MobilenetV2(c) => format!("mobilenet_v2-{}", c.width),
            Architecture::MiniXception(_) => "mini_xception".into(),
        }
    }

    /// Builds the network under `p`.
    pub fn build(&self, p: &nn::Path) -> Box<dyn FerModel> {
        match self {
            Architecture::MobilenetV2(c) => Box::new(mobilenet_v2::MobileNetV2::new(p, c)),
            Architecture::MiniXception(c) => Box::new(mini_xception::MiniXception::new(p, c)),
        }
    }
}

/// Folds an eval-mode BatchNorm (epsilon `eps`) into its bias-free convolution.
pub(crate) fn fold(conv: &nn::Conv2D, bn: &nn::BatchNorm, eps: f64) -> (Weights, Weights) {
    let (gamma, beta) = (bn.ws.as_ref().expect("affine BatchNorm"), bn.bs.as_ref().expect("affine BatchNorm"));
    crate::export::fold_bn(&conv.ws, gamma, beta, &bn.running_mean, &bn.running_var, eps)
}

/// Gives every BatchNorm non-trivial statistics and affine parameters (running mean and bias
/// ~ N(0, `spread`), weight and running variance ~ U(0.5, 1.5)), so that parity checks exercise
/// them; the classifier is left as initialised.
pub fn randomize_batchnorm(vs: &nn::VarStore, spread: f64) {
    use tch::{Device, Kind, Tensor};
    tch::no_grad(|| {
        for (k, mut v) in vs.variables() {
            if v.dim() != 1 || k.starts_with("classifier") {
                continue;
            }
            let shape = (Kind::Float, Device::Cpu);
            let value = if k.ends_with("running_mean") || k.ends_with("bias") {
                Tensor::randn(v.size(), shape) * spread
            } else {
                Tensor::rand(v.size(), shape) + 0.5
            };
            v.copy_(&value.to(v.device()));
        }
    });
}
