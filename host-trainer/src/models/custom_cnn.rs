//! The seeds' "custom CNN" baseline (seed 002, after the widely copied Keras FER-2013 model):
//! conv 32 → conv 64 → max-pool → dropout 0.25 → conv 128 → max-pool → conv 128 → max-pool →
//! dropout 0.25 → dense 1024 → dropout 0.5 → dense 7; 3×3 "valid" convolutions with ReLU, trained
//! with Adam. On a 48×48 face the last map is 128×4×4.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::FerModel;
use crate::export::{OnnxBuilder, Padding, Weights};

/// Custom CNN hyper-parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomCnnConfig {
    pub in_channels: i64,
    pub classes: i64,
    /// Input side in pixels (sets the width of the first dense layer).
    pub input_size: i64,
}

impl Default for CustomCnnConfig {
    fn default() -> Self {
        CustomCnnConfig { in_channels: 1, classes: 7, input_size: 48 }
    }
}

const CONVS: [i64; 4] = [32, 64, 128, 128];
/// Max-pool after these convs (0-based).
const POOL_AFTER: [bool; 4] = [false, true, true, true];

/// The network.
#[derive(Debug)]
pub struct CustomCnn {
    convs: Vec<nn::Conv2D>,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl CustomCnn {
    pub fn new(p: &nn::Path, cfg: &CustomCnnConfig) -> CustomCnn {
        let (mut cin, mut side) = (cfg.in_channels, cfg.input_size);
        let mut convs = Vec::new();
        for (i, cout) in CONVS.into_iter().enumerate() {
            convs.push(nn::conv2d(p / "features" / i.to_string(), cin, cout, 3, Default::default()));
            side -= 2;
            if POOL_AFTER[i] {
                side /= 2;
            }
            cin = cout;
        }
        assert!(side > 0, "custom CNN: input {} px is too small", cfg.input_size);
        CustomCnn {
            convs,
            fc1: nn::linear(p / "fc1", cin * side * side, 1024, Default::default()),
            fc2: nn::linear(p / "fc2", 1024, cfg.classes, Default::default()),
        }
    }
}

impl ModuleT for CustomCnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (i, c) in self.convs.iter().enumerate() {
            x = x.apply(c).relu();
            if POOL_AFTER[i] {
                x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
            if i == 1 || i == 3 {
                x = x.dropout(0.25, train);
            }
        }
        x.flatten(1, -1).apply(&self.fc1).relu().dropout(0.5, train).apply(&self.fc2)
    }
}

impl FerModel for CustomCnn {
    fn to_onnx(&self, g: &mut OnnxBuilder, input: &str) -> String {
        let mut x = input.to_string();
        let w = |t: &Tensor| Weights::from_tch(t);
        for (i, c) in self.convs.iter().enumerate() {
            let bias = w(c.bs.as_ref().expect("conv with bias"));
            let y = g.conv(&x, &format!("features.{i}"), &w(&c.ws), Some(&bias), 1, 1, Padding::Explicit([0; 4]));
            x = g.relu(&y);
            if POOL_AFTER[i] {
                x = g.max_pool(&x, 2, 2, Padding::Explicit([0; 4]));
            }
        }
        let flat = g.flatten(&x);
        let b1 = w(self.fc1.bs.as_ref().expect("bias"));
        let h = g.gemm(&flat, "fc1", &w(&self.fc1.ws), &b1);
        let h = g.relu(&h);
        g.gemm(&h, "fc2", &w(&self.fc2.ws), &w(self.fc2.bs.as_ref().expect("bias")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_on_48px_faces() {
        // Hand count: convs 1*32*9+32 = 320, 32*64*9+64 = 18,496, 64*128*9+128 = 73,856,
        // 128*128*9+128 = 147,584; dense 2048*1024+1024 = 2,098,176, 1024*7+7 = 7,175.
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _m = CustomCnn::new(&vs.root(), &CustomCnnConfig::default());
        let n: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 320 + 18_496 + 73_856 + 147_584 + 2_098_176 + 7_175);
    }
}
