//! face-api.js's `FaceExpressionNet` (vladmandic/face-api, MIT): a `FaceFeatureExtractor` of four
//! dense blocks (32, 64, 128, 256 channels) and a fully connected layer to 7 expressions. Laid out
//! as its tfjs weights (`dense{b}/conv{i}/…`, `fc/…`; see `crate::import::tfjs`):
//!
//! - a dense block: `out1 = relu(conv0(x))` (stride 2; block 0 a plain 3×3 conv, the others
//!   depthwise-separable), then three separable convs each reading `relu` of the sum of all
//!   earlier outputs: `out2 = c1(out1)`, `out3 = c2(relu(out1 + out2))`,
//!   `out4 = c3(relu(out1 + out2 + out3))`, output `relu(out1 + out2 + out3 + out4)`;
//! - every conv has a bias and TensorFlow "same" padding (stride 2: the odd pixel after);
//! - at 112×112 input the last map is 7×7 and face-api's `avgPool(7, 2, 'valid')` is a global
//!   average; then `fc` (256 → 7). Output order: neutral, happy, sad, angry, fearful, disgusted,
//!   surprised (fer-core's `LabelOrder::FaceApi`).

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{tf_same_pad, FerModel};
use crate::export::{OnnxBuilder, Padding, Weights};

/// FaceExpressionNet hyper-parameters; the defaults are the published model's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FaceExpressionNetConfig {
    pub in_channels: i64,
    pub classes: i64,
    /// Channels of the dense blocks (32, 64, 128, 256).
    pub widths: Vec<i64>,
}

impl Default for FaceExpressionNetConfig {
    fn default() -> Self {
        FaceExpressionNetConfig { in_channels: 3, classes: 7, widths: vec![32, 64, 128, 256] }
    }
}

/// A 3×3 conv with bias and "same" padding: plain (`weight`, `bias`) or depthwise-separable
/// (`dw.weight`, `pw.weight`, `pw.bias`; the bias follows the pointwise conv).
#[derive(Debug)]
struct Conv {
    first: nn::Conv2D,
    pointwise: Option<nn::Conv2D>,
    stride: i64,
    groups: i64,
}

impl Conv {
    fn plain(p: nn::Path, cin: i64, cout: i64, stride: i64) -> Conv {
        Conv {
            first: nn::conv2d(p, cin, cout, 3, nn::ConvConfig { stride, ..Default::default() }),
            pointwise: None,
            stride,
            groups: 1,
        }
    }

    fn separable(p: nn::Path, cin: i64, cout: i64, stride: i64) -> Conv {
        let dw = nn::conv2d(
            &p / "dw",
            cin,
            cin,
            3,
            nn::ConvConfig { stride, groups: cin, bias: false, ..Default::default() },
        );
        Conv {
            first: dw,
            pointwise: Some(nn::conv2d(&p / "pw", cin, cout, 1, Default::default())),
            stride,
            groups: cin,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let y = tf_same_pad(xs, 3, self.stride, 0.0).apply(&self.first);
        match &self.pointwise {
            Some(pw) => y.apply(pw),
            None => y,
        }
    }

    fn export(&self, g: &mut OnnxBuilder, x: &str, name: &str) -> String {
        let w = Weights::from_tch(&self.first.ws);
        match &self.pointwise {
            None => {
                let b = Weights::from_tch(self.first.bs.as_ref().expect("conv bias"));
                g.conv(x, name, &w, Some(&b), self.stride, 1, Padding::SameUpper)
            }
            Some(pw) => {
                let y = g.conv(x, &format!("{name}.dw"), &w, None, self.stride, self.groups, Padding::SameUpper);
                let b = Weights::from_tch(pw.bs.as_ref().expect("pointwise bias"));
                g.conv(&y, &format!("{name}.pw"), &Weights::from_tch(&pw.ws), Some(&b), 1, 1, Padding::SameUpper)
            }
        }
    }
}

/// The network.
#[derive(Debug)]
pub struct FaceExpressionNet {
    blocks: Vec<[Conv; 4]>,
    fc: nn::Linear,
}

impl FaceExpressionNet {
    pub fn new(p: &nn::Path, cfg: &FaceExpressionNetConfig) -> FaceExpressionNet {
        let mut cin = cfg.in_channels;
        let mut blocks = Vec::new();
        for (b, &w) in cfg.widths.iter().enumerate() {
            let d = p / format!("dense{b}");
            let conv0 =
                if b == 0 { Conv::plain(&d / "conv0", cin, w, 2) } else { Conv::separable(&d / "conv0", cin, w, 2) };
            blocks.push([
                conv0,
                Conv::separable(&d / "conv1", w, w, 1),
                Conv::separable(&d / "conv2", w, w, 1),
                Conv::separable(&d / "conv3", w, w, 1),
            ]);
            cin = w;
        }
        FaceExpressionNet { blocks, fc: nn::linear(p / "fc", cin, cfg.classes, Default::default()) }
    }
}

impl ModuleT for FaceExpressionNet {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for [c0, c1, c2, c3] in &self.blocks {
            let out1 = c0.forward(&x).relu();
            let out2 = c1.forward(&out1);
            let s2 = &out1 + &out2;
            let out3 = c2.forward(&s2.relu());
            let s3 = s2 + out3;
            let out4 = c3.forward(&s3.relu());
            x = (s3 + out4).relu();
        }
        x.mean_dim([2i64, 3].as_slice(), false, x.kind()).apply(&self.fc)
    }
}

impl FerModel for FaceExpressionNet {
    fn to_onnx(&self, g: &mut OnnxBuilder, input: &str) -> String {
        let mut x = input.to_string();
        for (b, [c0, c1, c2, c3]) in self.blocks.iter().enumerate() {
            let n = |i: usize| format!("dense{b}.conv{i}");
            let y = c0.export(g, &x, &n(0));
            let out1 = g.relu(&y);
            let out2 = c1.export(g, &out1, &n(1));
            let s2 = g.add(&out1, &out2);
            let r2 = g.relu(&s2);
            let out3 = c2.export(g, &r2, &n(2));
            let s3 = g.add(&s2, &out3);
            let r3 = g.relu(&s3);
            let out4 = c3.export(g, &r3, &n(3));
            let s4 = g.add(&s3, &out4);
            x = g.relu(&s4);
        }
        g.pooled_linear(&x, "fc", &self.fc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_matches_the_weights_manifest() {
        // Sum of the shapes in face-api's face_expression_model-weights_manifest.json.
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _m = FaceExpressionNet::new(&vs.root(), &FaceExpressionNetConfig::default());
        let n: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        let dense = |cin: i64, w: i64, first_plain: bool| {
            let conv0 = if first_plain { 9 * cin * w + w } else { 9 * cin + cin * w + w };
            conv0 + 3 * (9 * w + w * w + w)
        };
        let expected =
            dense(3, 32, true) + dense(32, 64, false) + dense(64, 128, false) + dense(128, 256, false) + 256 * 7 + 7;
        assert_eq!(n, expected);
        // The manifest's shapes sum to 323,687 (python3 -c over the JSON).
        assert_eq!(n, 323_687);
    }

    #[test]
    fn forward_shape_on_112() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let m = FaceExpressionNet::new(&vs.root(), &FaceExpressionNetConfig::default());
        let y = m.forward_t(&Tensor::zeros([2, 3, 112, 112], tch::kind::FLOAT_CPU), false);
        assert_eq!(y.size(), [2, 7]);
    }
}
