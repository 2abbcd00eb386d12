//! MobileNetV2 (Sandler et al. 2018) with a width multiplier, laid out exactly as torchvision's
//! `mobilenet_v2` so parameter names match a PyTorch `state_dict` (`features.0.0.weight`,
//! `features.1.conv.0.0.weight`, ..., `classifier.1.weight`). Differences, both configurable:
//! the input may have 1 channel (gray faces), and the stem stride may be 1 for small inputs.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{fold, kaiming_fan_out, FerModel};
use crate::export::{OnnxBuilder, Padding};

/// (expansion t, output channels c, repeats n, first stride s), torchvision's table.
const SETTINGS: [(i64, i64, i64, i64); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

pub use super::make_divisible;

/// MobileNetV2 hyper-parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MobileNetV2Config {
    pub width: f64,
    pub in_channels: i64,
    pub classes: i64,
    /// 2 as in ImageNet; 1 keeps more resolution for 48×48 faces.
    pub stem_stride: i64,
    pub dropout: f64,
}

/// Conv (no bias) → BatchNorm → ReLU6, torchvision's `Conv2dNormActivation` (indices 0 and 1).
#[derive(Debug)]
struct ConvBnAct {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    act: bool,
    stride: i64,
    groups: i64,
}

impl ConvBnAct {
    fn new(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, groups: i64, act: bool) -> ConvBnAct {
        let cfg = nn::ConvConfig {
            stride,
            padding: (k - 1) / 2,
            groups,
            bias: false,
            ws_init: kaiming_fan_out(),
            ..Default::default()
        };
        ConvBnAct {
            conv: nn::conv2d(&p / "0", cin, cout, k, cfg),
            bn: nn::batch_norm2d(&p / "1", cout, bn_cfg()),
            act,
            stride,
            groups,
        }
    }

    fn export(&self, g: &mut OnnxBuilder, x: &str, name: &str) -> String {
        let (w, b) = fold(&self.conv, &self.bn, 1e-5);
        let y = g.conv(x, name, &w, Some(&b), self.stride, self.groups, Padding::Symmetric);
        if self.act {
            g.clip(&y, 0.0, 6.0)
        } else {
            y
        }
    }
}

/// PyTorch's BatchNorm2d defaults: eps 1e-5, momentum 0.1.
fn bn_cfg() -> nn::BatchNormConfig {
    nn::BatchNormConfig { eps: 1e-5, momentum: 0.1, ..Default::default() }
}

impl ModuleT for ConvBnAct {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let y = xs.apply(&self.conv).apply_t(&self.bn, train);
        if self.act {
            y.relu6()
        } else {
            y
        }
    }
}

/// The inverted residual block; `conv.{0,1,2,3}` as torchvision names them.
#[derive(Debug)]
struct InvertedResidual {
    expand: Option<ConvBnAct>,
    depthwise: ConvBnAct,
    project: nn::Conv2D,
    project_bn: nn::BatchNorm,
    residual: bool,
}

impl InvertedResidual {
    fn new(p: nn::Path, cin: i64, cout: i64, stride: i64, t: i64) -> InvertedResidual {
        let hidden = cin * t;
        let c = &p / "conv";
        let mut i = 0;
        let mut next = || {
            i += 1;
            (i - 1).to_string()
        };
        let expand = (t != 1).then(|| ConvBnAct::new(&c / next(), cin, hidden, 1, 1, 1, true));
        let depthwise = ConvBnAct::new(&c / next(), hidden, hidden, 3, stride, hidden, true);
        let project = nn::conv2d(
            &c / next(),
            hidden,
            cout,
            1,
            nn::ConvConfig { bias: false, ws_init: kaiming_fan_out(), ..Default::default() },
        );
        let project_bn = nn::batch_norm2d(&c / next(), cout, bn_cfg());
        InvertedResidual { expand, depthwise, project, project_bn, residual: stride == 1 && cin == cout }
    }
}

impl InvertedResidual {
    fn export(&self, g: &mut OnnxBuilder, x: &str, name: &str) -> String {
        let mut y = match &self.expand {
            Some(e) => e.export(g, x, &format!("{name}.expand")),
            None => x.to_string(),
        };
        y = self.depthwise.export(g, &y, &format!("{name}.dw"));
        let (w, b) = fold(&self.project, &self.project_bn, 1e-5);
        y = g.conv(&y, &format!("{name}.project"), &w, Some(&b), 1, 1, Padding::Symmetric);
        if self.residual {
            g.add(&y, x)
        } else {
            y
        }
    }
}

impl ModuleT for InvertedResidual {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut y = match &self.expand {
            Some(e) => e.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        y = self.depthwise.forward_t(&y, train);
        y = y.apply(&self.project).apply_t(&self.project_bn, train);
        if self.residual {
            y + xs
        } else {
            y
        }
    }
}

/// The network.
#[derive(Debug)]
pub struct MobileNetV2 {
    stem: ConvBnAct,
    blocks: Vec<InvertedResidual>,
    head: ConvBnAct,
    classifier: nn::Linear,
    dropout: f64,
}

impl MobileNetV2 {
    pub fn new(p: &nn::Path, cfg: &MobileNetV2Config) -> MobileNetV2 {
        let f = p / "features";
        let mut cin = make_divisible(32.0 * cfg.width, 8);
        let last = make_divisible(1280.0 * cfg.width.max(1.0), 8);
        let stem = ConvBnAct::new(&f / "0", cfg.in_channels, cin, 3, cfg.stem_stride, 1, true);
        let mut blocks = Vec::new();
        let mut idx = 1;
        for (t, c, n, s) in SETTINGS {
            let cout = make_divisible(c as f64 * cfg.width, 8);
            for i in 0..n {
                blocks.push(InvertedResidual::new(&f / idx.to_string(), cin, cout, if i == 0 { s } else { 1 }, t));
                cin = cout;
                idx += 1;
            }
        }
        let head = ConvBnAct::new(&f / idx.to_string(), cin, last, 1, 1, 1, true);
        // torchvision: Linear init normal(0, 0.01), bias 0; convs kaiming_normal(fan_out); BN 1/0.
        let classifier = nn::linear(
            p / "classifier" / "1",
            last,
            cfg.classes,
            nn::LinearConfig {
                ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.01 },
                bs_init: Some(nn::Init::Const(0.0)),
                bias: true,
            },
        );
        MobileNetV2 { stem, blocks, head, classifier, dropout: cfg.dropout }
    }
}

impl ModuleT for MobileNetV2 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut y = self.stem.forward_t(xs, train);
        for b in &self.blocks {
            y = b.forward_t(&y, train);
        }
        y = self.head.forward_t(&y, train);
        super::pooled_linear(&y, &self.classifier, self.dropout, train)
    }
}

impl FerModel for MobileNetV2 {
    fn to_onnx(&self, g: &mut OnnxBuilder, input: &str) -> String {
        let mut y = self.stem.export(g, input, "features.0");
        for (i, b) in self.blocks.iter().enumerate() {
            y = b.export(g, &y, &format!("features.{}", i + 1));
        }
        y = self.head.export(g, &y, "head");
        g.pooled_linear(&y, "classifier", &self.classifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_torchvision() {
        // Values from torchvision's _make_divisible for width 0.5 / 0.35 / 1.0.
        assert_eq!(make_divisible(16.0, 8), 16);
        assert_eq!(make_divisible(32.0 * 0.5, 8), 16);
        assert_eq!(make_divisible(24.0 * 0.5, 8), 16);
        assert_eq!(make_divisible(96.0 * 0.35, 8), 32);
        assert_eq!(make_divisible(160.0 * 0.5, 8), 80);
        assert_eq!(make_divisible(1280.0, 8), 1280);
    }

    #[test]
    fn parameter_count_matches_torchvision() {
        // torchvision.models.mobilenet_v2(num_classes=1000) has 3,504,872 parameters.
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let cfg = MobileNetV2Config { width: 1.0, in_channels: 3, classes: 1000, stem_stride: 2, dropout: 0.2 };
        let _m = MobileNetV2::new(&vs.root(), &cfg);
        let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 3_504_872);
        let names = vs.variables();
        for k in [
            "features.0.0.weight",
            "features.1.conv.0.0.weight",
            "features.1.conv.1.weight",
            "features.2.conv.0.0.weight",
            "features.2.conv.3.running_mean",
            "features.18.0.weight",
            "classifier.1.bias",
        ] {
            assert!(names.contains_key(k), "missing {k}");
        }
    }

    #[test]
    fn forward_shape_on_gray_48() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let cfg = MobileNetV2Config { width: 0.5, in_channels: 1, classes: 7, stem_stride: 1, dropout: 0.2 };
        let m = MobileNetV2::new(&vs.root(), &cfg);
        let y = m.forward_t(&Tensor::zeros([2, 1, 48, 48], (tch::Kind::Float, tch::Device::Cpu)), false);
        assert_eq!(y.size(), [2, 7]);
    }
}
