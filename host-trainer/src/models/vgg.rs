//! VGG-16 with BatchNorm (Simonyan & Zisserman 2015), laid out exactly as torchvision's
//! `vgg16_bn` (`features.N` conv/BN pairs, `classifier.0/3/6`), so a PyTorch `state_dict` maps
//! one to one; one of the seeds' comparison models. torchvision pools the last feature map to
//! 7×7 and uses 4096-wide hidden layers; both are configurable (`pool`, `hidden`) because a 48×48
//! face leaves a 1×1 map, where 7×7 pooling only repeats it 49 times into a 102M-weight layer.
//! The export folds the adaptive pooling into the first classifier layer (exact: both are linear).

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{fold, kaiming_fan_out, FerModel};
use crate::export::{OnnxBuilder, Padding, Weights};

/// torchvision's configuration "D": output channels, `None` = 2×2 max-pool.
const LAYOUT: [Option<i64>; 18] = [
    Some(64),
    Some(64),
    None,
    Some(128),
    Some(128),
    None,
    Some(256),
    Some(256),
    Some(256),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
];

/// VGG-16-bn hyper-parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VggConfig {
    pub in_channels: i64,
    pub classes: i64,
    /// Side of the adaptive average pooling before the classifier (torchvision: 7).
    pub pool: i64,
    /// Width of the two hidden classifier layers (torchvision: 4096).
    pub hidden: i64,
    pub dropout: f64,
    /// Input side in pixels (the export folds the pooling for this size).
    pub input_size: i64,
}

impl Default for VggConfig {
    fn default() -> Self {
        VggConfig { in_channels: 3, classes: 1000, pool: 7, hidden: 4096, dropout: 0.5, input_size: 224 }
    }
}

/// One conv → BN → ReLU stage with its torchvision index.
#[derive(Debug)]
struct ConvBn {
    index: usize,
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

/// The network.
#[derive(Debug)]
pub struct Vgg {
    /// `Some` = conv stage, `None` = max-pool.
    features: Vec<Option<ConvBn>>,
    fc: [nn::Linear; 3],
    cfg: VggConfig,
}

impl Vgg {
    pub fn new(p: &nn::Path, cfg: &VggConfig) -> Vgg {
        let f = p / "features";
        let mut features = Vec::new();
        let (mut index, mut cin) = (0, cfg.in_channels);
        for layer in LAYOUT {
            match layer {
                Some(cout) => {
                    let c = nn::ConvConfig {
                        padding: 1,
                        ws_init: kaiming_fan_out(),
                        bs_init: nn::Init::Const(0.0),
                        ..Default::default()
                    };
                    features.push(Some(ConvBn {
                        index,
                        conv: nn::conv2d(&f / index.to_string(), cin, cout, 3, c),
                        bn: nn::batch_norm2d(&f / (index + 1).to_string(), cout, Default::default()),
                    }));
                    index += 3;
                    cin = cout;
                }
                None => {
                    features.push(None);
                    index += 1;
                }
            }
        }
        // torchvision: normal(0, 0.01) weights, zero biases.
        let lin = nn::LinearConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.01 },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        let c = p / "classifier";
        let flat = cin * cfg.pool * cfg.pool;
        let fc = [
            nn::linear(&c / "0", flat, cfg.hidden, lin),
            nn::linear(&c / "3", cfg.hidden, cfg.hidden, lin),
            nn::linear(&c / "6", cfg.hidden, cfg.classes, lin),
        ];
        Vgg { features, fc, cfg: cfg.clone() }
    }

    /// Side of the last feature map for the configured input size.
    fn feature_side(&self) -> i64 {
        self.features.iter().filter(|l| l.is_none()).fold(self.cfg.input_size, |s, _| s / 2)
    }
}

impl ModuleT for Vgg {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for layer in &self.features {
            x = match layer {
                Some(l) => x.apply(&l.conv).apply_t(&l.bn, train).relu(),
                None => x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
            };
        }
        let p = self.cfg.pool;
        x = x.adaptive_avg_pool2d([p, p]).flatten(1, -1);
        x = x.apply(&self.fc[0]).relu().dropout(self.cfg.dropout, train);
        x = x.apply(&self.fc[1]).relu().dropout(self.cfg.dropout, train);
        x.apply(&self.fc[2])
    }
}

/// PyTorch's adaptive pooling bin of output cell `i` over `n` inputs: `[floor(i n / p), ceil((i+1) n / p))`.
fn bin(i: i64, n: i64, p: i64) -> std::ops::Range<i64> {
    (i * n / p)..((i + 1) * n + p - 1) / p
}

/// Folds `adaptive_avg_pool2d(p×p)` on an `s×s` map of `c` channels into the following linear
/// layer `w` (`[out, c·p·p]`): returns `[out, c·s·s]` acting on the unpooled map.
pub(crate) fn fold_adaptive_pool(w: &Weights, c: i64, s: i64, p: i64) -> Weights {
    let out = w.dims[0];
    let mut data = vec![0f32; (out * c * s * s) as usize];
    for o in 0..out {
        for ch in 0..c {
            for i in 0..p {
                for j in 0..p {
                    let (rows, cols) = (bin(i, s, p), bin(j, s, p));
                    let area = ((rows.end - rows.start) * (cols.end - cols.start)) as f32;
                    let v = w.data[(((o * c + ch) * p + i) * p + j) as usize] / area;
                    for u in rows.clone() {
                        for x in cols.clone() {
                            data[(((o * c + ch) * s + u) * s + x) as usize] += v;
                        }
                    }
                }
            }
        }
    }
    Weights { dims: vec![out, c * s * s], data }
}

impl FerModel for Vgg {
    fn to_onnx(&self, g: &mut OnnxBuilder, input: &str) -> String {
        let mut x = input.to_string();
        let mut channels = self.cfg.in_channels;
        for layer in &self.features {
            x = match layer {
                Some(l) => {
                    let (w, b) = fold(&l.conv, &l.bn, 1e-5);
                    channels = w.dims[0];
                    let y = g.conv(&x, &format!("features.{}", l.index), &w, Some(&b), 1, 1, Padding::Symmetric);
                    g.relu(&y)
                }
                None => g.max_pool(&x, 2, 2, Padding::Explicit([0; 4])),
            };
        }
        let flat = g.flatten(&x);
        let bias = |l: &nn::Linear| Weights::from_tch(l.bs.as_ref().expect("linear layer with bias"));
        let w0 = fold_adaptive_pool(&Weights::from_tch(&self.fc[0].ws), channels, self.feature_side(), self.cfg.pool);
        let h = g.gemm(&flat, "classifier.0", &w0, &bias(&self.fc[0]));
        let h = g.relu(&h);
        let h = g.gemm(&h, "classifier.3", &Weights::from_tch(&self.fc[1].ws), &bias(&self.fc[1]));
        let h = g.relu(&h);
        g.gemm(&h, "classifier.6", &Weights::from_tch(&self.fc[2].ws), &bias(&self.fc[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn vgg16_bn_has_torchvisions_parameter_count() {
        // torchvision.models.vgg16_bn(): 138,365,992 parameters (its documented size).
        let vs = nn::VarStore::new(Device::Cpu);
        let _m = Vgg::new(&vs.root(), &VggConfig::default());
        let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 138_365_992);
    }

    #[test]
    fn folded_pooling_equals_libtorchs_adaptive_pooling_then_linear() {
        // Second implementation: libtorch's adaptive_avg_pool2d + linear, on maps where the
        // bins overlap (5 -> 3), tile (1 -> 7) and shrink (4 -> 2).
        tch::manual_seed(3);
        for (s, p) in [(5, 3), (1, 7), (4, 2)] {
            let c = 3;
            let x = Tensor::randn([2, c, s, s], (Kind::Float, Device::Cpu));
            let w = Tensor::randn([4, c * p * p], (Kind::Float, Device::Cpu));
            let want = x.adaptive_avg_pool2d([p, p]).flatten(1, -1).matmul(&w.tr());
            let folded = fold_adaptive_pool(&Weights::from_tch(&w), c, s, p);
            let wf = Tensor::from_slice(&folded.data).view([4, c * s * s]);
            let got = x.flatten(1, -1).matmul(&wf.tr());
            let scale = want.abs().max().double_value(&[]).max(1.0);
            let diff = (got - want).abs().max().double_value(&[]);
            // f32 sums of up to 147 products in a different order: relative tolerance.
            assert!(diff < 1e-6 * scale * 10.0, "s={s} p={p}: {diff} (outputs up to {scale})");
        }
    }
}
