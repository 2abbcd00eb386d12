//! Model architectures, one file each; parameter names follow torchvision so PyTorch weights map
//! one to one.

pub mod custom_cnn;
pub mod efficientnet;
pub mod efficientnet_lite;
pub mod face_api;
pub mod mini_xception;
pub mod mobilenet_v2;
pub mod resnet;
pub mod vgg;

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
    FaceExpressionNet(face_api::FaceExpressionNetConfig),
    EfficientNetLite(efficientnet_lite::EfficientNetLiteConfig),
    Resnet(resnet::ResNetConfig),
    EfficientNet(efficientnet::EfficientNetConfig),
    Vgg16Bn(vgg::VggConfig),
    CustomCnn(custom_cnn::CustomCnnConfig),
}

impl Architecture {
    /// Short name for manifests and reports.
    pub fn name(&self) -> String {
        match self {
            Architecture::MobilenetV2(c) => format!("mobilenet_v2-{}", c.width),
            Architecture::MiniXception(_) => "mini_xception".into(),
            Architecture::FaceExpressionNet(_) => "face_expression_net".into(),
            Architecture::EfficientNetLite(c) => format!("efficientnet_lite-w{}-d{}", c.width, c.depth),
            Architecture::Resnet(c) => format!("resnet{}", c.depth),
            Architecture::EfficientNet(c) if c.width == 1.0 && c.depth == 1.0 => "efficientnet_b0".into(),
            Architecture::EfficientNet(c) => format!("efficientnet-w{}-d{}", c.width, c.depth),
            Architecture::Vgg16Bn(_) => "vgg16_bn".into(),
            Architecture::CustomCnn(_) => "custom_cnn".into(),
        }
    }

    /// The model folder name `train-and-export` gives this architecture trained on `dataset`
    /// when none is named: `mobilenetv2-0.5-builtin` for the default recipe,
    /// `mobilenetv2-0.25-builtin`, `efficientnet-b0-fer2013`, `mini-xception-folders` (so a
    /// narrower or other model never lands in, and replaces, the default model's folder).
    pub fn default_model_name(&self, dataset: &str) -> String {
        format!("{}-{dataset}", self.name().replace("mobilenet_v2", "mobilenetv2").replace('_', "-"))
    }

    /// The classifier's weight and bias (output classes along dimension 0).
    pub fn classifier_params(&self) -> [&'static str; 2] {
        match self {
            Architecture::MobilenetV2(_) => ["classifier.1.weight", "classifier.1.bias"],
            Architecture::MiniXception(_) => ["head.weight", "head.bias"],
            Architecture::FaceExpressionNet(_) => ["fc.weight", "fc.bias"],
            Architecture::EfficientNetLite(_) => ["_fc.weight", "_fc.bias"],
            Architecture::Resnet(_) => ["fc.weight", "fc.bias"],
            Architecture::EfficientNet(_) => ["classifier.1.weight", "classifier.1.bias"],
            Architecture::Vgg16Bn(_) => ["classifier.6.weight", "classifier.6.bias"],
            Architecture::CustomCnn(_) => ["fc2.weight", "fc2.bias"],
        }
    }

    /// Builds the network under `p`.
    pub fn build(&self, p: &nn::Path) -> Box<dyn FerModel> {
        match self {
            Architecture::MobilenetV2(c) => Box::new(mobilenet_v2::MobileNetV2::new(p, c)),
            Architecture::MiniXception(c) => Box::new(mini_xception::MiniXception::new(p, c)),
            Architecture::FaceExpressionNet(c) => Box::new(face_api::FaceExpressionNet::new(p, c)),
            Architecture::EfficientNetLite(c) => Box::new(efficientnet_lite::EfficientNetLite::new(p, c)),
            Architecture::Resnet(c) => Box::new(resnet::ResNet::new(p, c)),
            Architecture::EfficientNet(c) => Box::new(efficientnet::EfficientNet::new(p, c)),
            Architecture::Vgg16Bn(c) => Box::new(vgg::Vgg::new(p, c)),
            Architecture::CustomCnn(c) => Box::new(custom_cnn::CustomCnn::new(p, c)),
        }
    }
}

/// torchvision's `_make_divisible`: round to a multiple of `divisor`, never below 90% of `v`.
pub fn make_divisible(v: f64, divisor: i64) -> i64 {
    let d = divisor as f64;
    let mut new_v = ((v + d / 2.0) / d).floor() as i64 * divisor;
    new_v = new_v.max(divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// The usual classifier head: global average pooling, flatten, dropout (training only), then
/// `fc` (the forward twin of [`OnnxBuilder::pooled_linear`]).
pub(crate) fn pooled_linear(xs: &tch::Tensor, fc: &nn::Linear, dropout: f64, train: bool) -> tch::Tensor {
    xs.adaptive_avg_pool2d([1, 1]).flatten(1, -1).dropout(dropout, train).apply(fc)
}

/// torchvision's conv init: `kaiming_normal_(mode="fan_out")`.
pub(crate) fn kaiming_fan_out() -> nn::Init {
    nn::Init::Kaiming {
        dist: nn::init::NormalOrUniform::Normal,
        fan: nn::init::FanInOut::FanOut,
        non_linearity: nn::init::NonLinearity::ReLU,
    }
}

/// TensorFlow's "same" padding along one axis of `n` pixels for kernel `k`, stride `s`:
/// `(before, after)`, the odd pixel after.
pub(crate) fn tf_same_pads(n: i64, k: i64, s: i64) -> (i64, i64) {
    let out = (n + s - 1) / s;
    let total = ((out - 1) * s + k - n).max(0);
    (total / 2, total - total / 2)
}

/// Pads `xs` (NCHW) as TensorFlow's "same" does for kernel `k` and stride `s`, with `value`.
pub(crate) fn tf_same_pad(xs: &tch::Tensor, k: i64, s: i64, value: f64) -> tch::Tensor {
    let size = xs.size();
    let (top, bottom) = tf_same_pads(size[2], k, s);
    let (left, right) = tf_same_pads(size[3], k, s);
    if top + bottom + left + right == 0 {
        return xs.shallow_clone();
    }
    xs.pad([left, right, top, bottom], "constant", value)
}

/// Folds an eval-mode BatchNorm (epsilon `eps`) into the convolution before it; a conv bias `b`
/// is taken in as a shift of the running mean (`BN(Wx + b)` normalises by `mean - b`).
pub(crate) fn fold(conv: &nn::Conv2D, bn: &nn::BatchNorm, eps: f64) -> (Weights, Weights) {
    let (gamma, beta) = (bn.ws.as_ref().expect("affine BatchNorm"), bn.bs.as_ref().expect("affine BatchNorm"));
    let mean = match &conv.bs {
        Some(b) => &bn.running_mean - b,
        None => bn.running_mean.shallow_clone(),
    };
    crate::export::fold_bn(&conv.ws, gamma, beta, &mean, &bn.running_var, eps)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The default folder names: the default recipe keeps the name the boards' configs and the
    /// README use; other widths and architectures get their own.
    #[test]
    fn default_model_names_follow_architecture_and_dataset() {
        let mnv2 = |width| {
            Architecture::MobilenetV2(mobilenet_v2::MobileNetV2Config {
                width,
                in_channels: 1,
                classes: 7,
                stem_stride: 2,
                dropout: 0.2,
            })
        };
        assert_eq!(mnv2(0.5).default_model_name("builtin"), "mobilenetv2-0.5-builtin");
        assert_eq!(mnv2(0.25).default_model_name("builtin"), "mobilenetv2-0.25-builtin");
        assert_eq!(mnv2(1.0).default_model_name("fer2013"), "mobilenetv2-1-fer2013");
        let b0 = Architecture::EfficientNet(efficientnet::EfficientNetConfig::default());
        assert_eq!(b0.default_model_name("fer2013"), "efficientnet-b0-fer2013");
        let minix = Architecture::MiniXception(mini_xception::MiniXceptionConfig::default());
        assert_eq!(minix.default_model_name("folders"), "mini-xception-folders");
    }
}
