//! EfficientNet-B0 family (Tan & Le 2019) laid out exactly as torchvision's `efficientnet_b0`
//! (`features.0.0` stem conv, `features.S.I.block.J` MBConv layers with squeeze-and-excitation
//! `fc1`/`fc2`, `features.8` head conv, `classifier.1`), so a PyTorch `state_dict` maps one to
//! one. SiLU activations, BatchNorm epsilon 1e-5, stochastic depth scaled linearly per block.
//! Width/depth multipliers give B1..B7's shapes; the input may have 1 channel (gray faces).

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use super::{fold, kaiming_fan_out, make_divisible, FerModel};
use crate::export::{OnnxBuilder, Padding, Weights};

/// (expansion, kernel, stride, input channels, output channels, repeats) per stage (B0).
const STAGES: [(i64, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

/// EfficientNet hyper-parameters (B0: width 1.0, depth 1.0, dropout 0.2, stochastic depth 0.2).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EfficientNetConfig {
    pub width: f64,
    pub depth: f64,
    pub in_channels: i64,
    pub classes: i64,
    pub dropout: f64,
    /// Largest per-block drop probability of a residual branch (the last block's).
    pub stochastic_depth: f64,
}

impl Default for EfficientNetConfig {
    fn default() -> Self {
        EfficientNetConfig {
            width: 1.0,
            depth: 1.0,
            in_channels: 3,
            classes: 1000,
            dropout: 0.2,
            stochastic_depth: 0.2,
        }
    }
}

fn conv(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, groups: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding: (k - 1) / 2,
        groups,
        bias: false,
        ws_init: kaiming_fan_out(),
        ..Default::default()
    };
    nn::conv2d(p, cin, cout, k, cfg)
}

/// `Conv2dNormActivation`: conv (bias-free) → BN → optional SiLU, torchvision's `.0` / `.1`.
#[derive(Debug)]
struct ConvBnAct {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    stride: i64,
    groups: i64,
    act: bool,
}

impl ConvBnAct {
    #[allow(clippy::too_many_arguments)]
    fn new(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, groups: i64, act: bool) -> ConvBnAct {
        ConvBnAct {
            conv: conv(&p / "0", cin, cout, k, stride, groups),
            bn: nn::batch_norm2d(&p / "1", cout, Default::default()),
            stride,
            groups,
            act,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let y = xs.apply(&self.conv).apply_t(&self.bn, train);
        if self.act {
            y.silu()
        } else {
            y
        }
    }

    fn export(&self, g: &mut OnnxBuilder, x: &str, name: &str) -> String {
        let (w, b) = fold(&self.conv, &self.bn, 1e-5);
        let y = g.conv(x, name, &w, Some(&b), self.stride, self.groups, Padding::Symmetric);
        if self.act {
            g.silu(&y)
        } else {
            y
        }
    }
}

/// Squeeze-and-excitation: `x * sigmoid(fc2(silu(fc1(avgpool(x)))))`, fc1/fc2 1×1 convs with bias.
#[derive(Debug)]
struct SqueezeExcite {
    fc1: nn::Conv2D,
    fc2: nn::Conv2D,
}

impl SqueezeExcite {
    fn new(p: nn::Path, channels: i64, squeeze: i64) -> SqueezeExcite {
        let cfg = nn::ConvConfig { ws_init: kaiming_fan_out(), bs_init: nn::Init::Const(0.0), ..Default::default() };
        SqueezeExcite {
            fc1: nn::conv2d(&p / "fc1", channels, squeeze, 1, cfg),
            fc2: nn::conv2d(&p / "fc2", squeeze, channels, 1, cfg),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let s = xs.adaptive_avg_pool2d([1, 1]).apply(&self.fc1).silu().apply(&self.fc2).sigmoid();
        xs * s
    }

    fn export(&self, g: &mut OnnxBuilder, x: &str, name: &str) -> String {
        let conv = |g: &mut OnnxBuilder, x: &str, n: &str, c: &nn::Conv2D| {
            let b = Weights::from_tch(c.bs.as_ref().expect("SE conv with bias"));
            g.conv(x, &format!("{name}.{n}"), &Weights::from_tch(&c.ws), Some(&b), 1, 1, Padding::Symmetric)
        };
        let pooled = g.global_average_pool(x);
        let h = conv(g, &pooled, "fc1", &self.fc1);
        let h = g.silu(&h);
        let s = conv(g, &h, "fc2", &self.fc2);
        let s = g.sigmoid(&s);
        g.mul(x, &s)
    }
}

#[derive(Debug)]
struct MbConv {
    expand: Option<ConvBnAct>,
    depthwise: ConvBnAct,
    se: SqueezeExcite,
    project: ConvBnAct,
    residual: bool,
    /// Stochastic depth: probability of dropping the residual branch while training.
    drop: f64,
}

impl MbConv {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut y = match &self.expand {
            Some(e) => e.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        y = self.depthwise.forward_t(&y, train);
        y = self.se.forward(&y);
        y = self.project.forward_t(&y, train);
        if !self.residual {
            return y;
        }
        if train && self.drop > 0.0 {
            // torchvision's StochasticDepth(mode="row"): one Bernoulli per sample, rescaled.
            let keep = 1.0 - self.drop;
            let mask = Tensor::rand([y.size()[0], 1, 1, 1], (Kind::Float, y.device())).lt(keep).to_kind(y.kind());
            y = y * mask / keep;
        }
        y + xs
    }
}

/// The network.
#[derive(Debug)]
pub struct EfficientNet {
    stem: ConvBnAct,
    /// `(stage, index in stage, block)`.
    blocks: Vec<(usize, usize, MbConv)>,
    head: ConvBnAct,
    fc: nn::Linear,
    dropout: f64,
}

impl EfficientNet {
    pub fn new(p: &nn::Path, cfg: &EfficientNetConfig) -> EfficientNet {
        let f = p / "features";
        let adjust = |c: i64| make_divisible(c as f64 * cfg.width, 8);
        let repeats = |n: i64| (n as f64 * cfg.depth).ceil() as i64;
        let total: i64 = STAGES.iter().map(|s| repeats(s.5)).sum();
        let stem = ConvBnAct::new(&f / "0", cfg.in_channels, adjust(STAGES[0].3), 3, 2, 1, true);
        let mut blocks = Vec::new();
        let mut id = 0;
        let mut last = 0;
        for (s, (t, k, stride, cin, cout, n)) in STAGES.into_iter().enumerate() {
            let (cin0, cout) = (adjust(cin), adjust(cout));
            for i in 0..repeats(n) {
                let (cin, stride) = if i == 0 { (cin0, stride) } else { (cout, 1) };
                let bp = &f / (s + 1).to_string() / i.to_string() / "block";
                let hidden = make_divisible(cin as f64 * t as f64, 8);
                let mut j = 0;
                let mut next = || {
                    j += 1;
                    (j - 1).to_string()
                };
                let expand = (hidden != cin).then(|| ConvBnAct::new(&bp / next(), cin, hidden, 1, 1, 1, true));
                let depthwise = ConvBnAct::new(&bp / next(), hidden, hidden, k, stride, hidden, true);
                let se = SqueezeExcite::new(&bp / next(), hidden, (cin / 4).max(1));
                let project = ConvBnAct::new(&bp / next(), hidden, cout, 1, 1, 1, false);
                let drop = cfg.stochastic_depth * id as f64 / total as f64;
                blocks.push((
                    s + 1,
                    i as usize,
                    MbConv { expand, depthwise, se, project, residual: stride == 1 && cin == cout, drop },
                ));
                id += 1;
            }
            last = cout;
        }
        let head_c = 4 * last;
        let head = ConvBnAct::new(&f / (STAGES.len() + 1).to_string(), last, head_c, 1, 1, 1, true);
        let bound = 1.0 / (cfg.classes as f64).sqrt();
        let lin = nn::LinearConfig {
            ws_init: nn::Init::Uniform { lo: -bound, up: bound },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        EfficientNet {
            stem,
            blocks,
            head,
            fc: nn::linear(p / "classifier" / "1", head_c, cfg.classes, lin),
            dropout: cfg.dropout,
        }
    }
}

impl ModuleT for EfficientNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = self.stem.forward_t(xs, train);
        for (_, _, b) in &self.blocks {
            x = b.forward_t(&x, train);
        }
        x = self.head.forward_t(&x, train);
        super::pooled_linear(&x, &self.fc, self.dropout, train)
    }
}

impl FerModel for EfficientNet {
    fn to_onnx(&self, g: &mut OnnxBuilder, input: &str) -> String {
        let mut x = self.stem.export(g, input, "features.0.0");
        for (s, i, b) in &self.blocks {
            let n = format!("features.{s}.{i}.block");
            let mut j = 0;
            let mut name = || {
                j += 1;
                format!("{n}.{}", j - 1)
            };
            let mut y = match &b.expand {
                Some(e) => e.export(g, &x, &name()),
                None => x.clone(),
            };
            y = b.depthwise.export(g, &y, &name());
            y = b.se.export(g, &y, &name());
            y = b.project.export(g, &y, &name());
            x = if b.residual { g.add(&y, &x) } else { y };
        }
        x = self.head.export(g, &x, &format!("features.{}", STAGES.len() + 1));
        g.pooled_linear(&x, "classifier.1", &self.fc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b0_has_torchvisions_parameter_count() {
        // torchvision.models.efficientnet_b0(): 5,288,548 parameters (its documented size), with
        // the 3-channel stem and 1000 classes; BatchNorm running statistics are buffers, not
        // parameters, so they are left out here as torchvision's count leaves them out.
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _m = EfficientNet::new(&vs.root(), &EfficientNetConfig::default());
        let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 5_288_548);
    }
}
