//! ResNet-18/34/50 (He et al. 2016), laid out exactly as torchvision's `resnet18/34/50` so
//! parameter names match a PyTorch `state_dict` (`conv1.weight`, `bn1.*`, `layer1.0.conv1.weight`,
//! `layer2.0.downsample.0.weight`, ..., `fc.weight`); the input may have 1 channel (gray faces).
//! The seeds' comparison baseline.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{fold, kaiming_fan_out, FerModel};
use crate::export::{OnnxBuilder, Padding};

/// ResNet hyper-parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResNetConfig {
    /// 18, 34 or 50.
    pub depth: u32,
    pub in_channels: i64,
    pub classes: i64,
}

impl ResNetConfig {
    /// Blocks per stage and whether they are bottlenecks (expansion 4).
    fn layout(&self) -> ([i64; 4], bool) {
        match self.depth {
            18 => ([2, 2, 2, 2], false),
            34 => ([3, 4, 6, 3], false),
            50 => ([3, 4, 6, 3], true),
            d => panic!("ResNet depth {d} is not 18, 34 or 50"),
        }
    }
}

fn conv(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig { stride, padding: k / 2, bias: false, ws_init: kaiming_fan_out(), ..Default::default() };
    nn::conv2d(p, cin, cout, k, cfg)
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, Default::default())
}

/// Conv + BN pair with its stride (for export).
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    stride: i64,
}

impl ConvBn {
    fn new(p: &nn::Path, conv_name: &str, bn_name: &str, cin: i64, cout: i64, k: i64, stride: i64) -> ConvBn {
        ConvBn { conv: conv(p / conv_name, cin, cout, k, stride), bn: bn(p / bn_name, cout), stride }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.apply(&self.conv).apply_t(&self.bn, train)
    }

    fn export(&self, g: &mut OnnxBuilder, x: &str, name: &str) -> String {
        let (w, b) = fold(&self.conv, &self.bn, 1e-5);
        g.conv(x, name, &w, Some(&b), self.stride, 1, Padding::Symmetric)
    }
}

/// BasicBlock (two 3×3) or Bottleneck (1×1, 3×3, 1×1 ×4), with the optional projection shortcut.
#[derive(Debug)]
struct Block {
    convs: Vec<ConvBn>,
    downsample: Option<ConvBn>,
}

/// The network.
#[derive(Debug)]
pub struct ResNet {
    stem: ConvBn,
    blocks: Vec<Block>,
    fc: nn::Linear,
}

impl ResNet {
    pub fn new(p: &nn::Path, cfg: &ResNetConfig) -> ResNet {
        let (counts, bottleneck) = cfg.layout();
        let expansion = if bottleneck { 4 } else { 1 };
        let stem = ConvBn::new(p, "conv1", "bn1", cfg.in_channels, 64, 7, 2);
        let mut cin = 64;
        let mut blocks = Vec::new();
        for (stage, &n) in counts.iter().enumerate() {
            let width = 64 << stage;
            for i in 0..n {
                let bp = p / format!("layer{}", stage + 1) / i.to_string();
                let stride = if i == 0 && stage > 0 { 2 } else { 1 };
                let cout = width * expansion;
                let convs = if bottleneck {
                    vec![
                        ConvBn::new(&bp, "conv1", "bn1", cin, width, 1, 1),
                        ConvBn::new(&bp, "conv2", "bn2", width, width, 3, stride),
                        ConvBn::new(&bp, "conv3", "bn3", width, cout, 1, 1),
                    ]
                } else {
                    vec![
                        ConvBn::new(&bp, "conv1", "bn1", cin, width, 3, stride),
                        ConvBn::new(&bp, "conv2", "bn2", width, width, 3, 1),
                    ]
                };
                let downsample = (stride != 1 || cin != cout)
                    .then(|| ConvBn::new(&(&bp / "downsample"), "0", "1", cin, cout, 1, stride));
                blocks.push(Block { convs, downsample });
                cin = cout;
            }
        }
        let fc = nn::linear(p / "fc", cin, cfg.classes, Default::default());
        ResNet { stem, blocks, fc }
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = self.stem.forward_t(xs, train).relu().max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for b in &self.blocks {
            let mut y = x.shallow_clone();
            let last = b.convs.len() - 1;
            for (i, c) in b.convs.iter().enumerate() {
                y = c.forward_t(&y, train);
                if i < last {
                    y = y.relu();
                }
            }
            let identity = match &b.downsample {
                Some(d) => d.forward_t(&x, train),
                None => x,
            };
            x = (y + identity).relu();
        }
        super::pooled_linear(&x, &self.fc, 0.0, train)
    }
}

impl FerModel for ResNet {
    fn to_onnx(&self, g: &mut OnnxBuilder, input: &str) -> String {
        let y = self.stem.export(g, input, "conv1");
        let y = g.relu(&y);
        let mut x = g.max_pool(&y, 3, 2, Padding::Symmetric);
        for (bi, b) in self.blocks.iter().enumerate() {
            let mut y = x.clone();
            let last = b.convs.len() - 1;
            for (i, c) in b.convs.iter().enumerate() {
                y = c.export(g, &y, &format!("block{bi}.conv{i}"));
                if i < last {
                    y = g.relu(&y);
                }
            }
            let identity = match &b.downsample {
                Some(d) => d.export(g, &x, &format!("block{bi}.downsample")),
                None => x.clone(),
            };
            let sum = g.add(&y, &identity);
            x = g.relu(&sum);
        }
        g.pooled_linear(&x, "fc", &self.fc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_torchvision() {
        // torchvision.models.resnet18/34/50(num_classes=1000): 11,689,512 / 21,797,672 /
        // 25,557,032 trainable parameters.
        for (depth, expected) in [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032)] {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let _m = ResNet::new(&vs.root(), &ResNetConfig { depth, in_channels: 3, classes: 1000 });
            let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
            assert_eq!(n, expected, "resnet{depth}");
        }
    }
}
