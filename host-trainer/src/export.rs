//! The project's own ONNX writer: builds a `ModelProto` with the prost types that
//! `tract_onnx::pb` exposes, independent of the training engine. Opset 13, IR 8, symbolic batch
//! dimension `N`; BatchNorm folded into the preceding convolution; ReLU6 as `Clip` with min/max
//! inputs; grouped/depthwise `Conv`; `Gemm` with `transB = 1`.

use prost::Message;
use tract_onnx::pb::{
    attribute_proto, tensor_proto, tensor_shape_proto, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// A float tensor to store as an initializer.
#[derive(Debug, Clone)]
pub struct Weights {
    pub dims: Vec<i64>,
    pub data: Vec<f32>,
}

impl Weights {
    pub fn from_tch(t: &tch::Tensor) -> Weights {
        let t = t.to_kind(tch::Kind::Float).to(tch::Device::Cpu).contiguous();
        Weights { dims: t.size(), data: Vec::<f32>::try_from(t.flatten(0, -1)).expect("float tensor") }
    }
}

/// Builds an ONNX graph node by node.
#[derive(Debug, Default)]
pub struct OnnxBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    counter: usize,
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: attribute_proto::AttributeType::Int as i32, i: v, ..Default::default() }
}

/// Padding of a Conv or MaxPool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// `(k - 1) / 2` on every side: PyTorch's "same" for odd kernels at stride 1.
    Symmetric,
    /// `[top, left, bottom, right]`.
    Explicit([i64; 4]),
    /// TensorFlow's "same" (`auto_pad = SAME_UPPER`: the odd pixel of padding goes after).
    SameUpper,
}

impl Padding {
    fn attribute(self, k: i64) -> AttributeProto {
        match self {
            Padding::Symmetric => {
                let p = (k - 1) / 2;
                attr_ints("pads", &[p, p, p, p])
            }
            Padding::Explicit(pads) => attr_ints("pads", &pads),
            Padding::SameUpper => AttributeProto {
                name: "auto_pad".into(),
                r#type: attribute_proto::AttributeType::String as i32,
                s: b"SAME_UPPER".to_vec(),
                ..Default::default()
            },
        }
    }
}

fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: tensor_proto::DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl OnnxBuilder {
    fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{what}_{}", self.counter)
    }

    /// Adds an initializer and returns its name.
    pub fn constant(&mut self, name: &str, w: &Weights) -> String {
        let name = format!("{name}#{}", self.initializers.len());
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: w.dims.clone(),
            data_type: tensor_proto::DataType::Float as i32,
            float_data: w.data.clone(),
            ..Default::default()
        });
        name
    }

    fn node(&mut self, op: &str, inputs: Vec<String>, attribute: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.nodes.push(NodeProto {
            name: out.clone(),
            op_type: op.into(),
            input: inputs,
            output: vec![out.clone()],
            attribute,
            ..Default::default()
        });
        out
    }

    /// `Conv` (`weight` is `[out, in/groups, kh, kw]`) with an optional bias.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        x: &str,
        name: &str,
        weight: &Weights,
        bias: Option<&Weights>,
        stride: i64,
        groups: i64,
        padding: Padding,
    ) -> String {
        let padding = padding.attribute(weight.dims[2]);
        let (kh, kw) = (weight.dims[2], weight.dims[3]);
        let mut inputs = vec![x.to_string(), self.constant(&format!("{name}.weight"), weight)];
        if let Some(b) = bias {
            inputs.push(self.constant(&format!("{name}.bias"), b));
        }
        self.node(
            "Conv",
            inputs,
            vec![
                attr_ints("kernel_shape", &[kh, kw]),
                attr_ints("strides", &[stride, stride]),
                padding,
                attr_ints("dilations", &[1, 1]),
                attr_int("group", groups),
            ],
        )
    }

    /// `MaxPool` (padded cells never win).
    pub fn max_pool(&mut self, x: &str, k: i64, stride: i64, padding: Padding) -> String {
        self.node(
            "MaxPool",
            vec![x.into()],
            vec![attr_ints("kernel_shape", &[k, k]), attr_ints("strides", &[stride, stride]), padding.attribute(k)],
        )
    }

    pub fn relu(&mut self, x: &str) -> String {
        self.node("Relu", vec![x.into()], vec![])
    }

    /// `Clip(x, lo, hi)`, limits as inputs (opset ≥ 11).
    pub fn clip(&mut self, x: &str, lo: f32, hi: f32) -> String {
        let lo = self.constant("clip.min", &Weights { dims: vec![], data: vec![lo] });
        let hi = self.constant("clip.max", &Weights { dims: vec![], data: vec![hi] });
        self.node("Clip", vec![x.into(), lo, hi], vec![])
    }

    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.node("Add", vec![a.into(), b.into()], vec![])
    }

    pub fn sigmoid(&mut self, x: &str) -> String {
        self.node("Sigmoid", vec![x.into()], vec![])
    }

    /// Element-wise product (broadcasting).
    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.node("Mul", vec![a.into(), b.into()], vec![])
    }

    /// SiLU / swish: `x * sigmoid(x)`.
    pub fn silu(&mut self, x: &str) -> String {
        let s = self.sigmoid(x);
        self.mul(x, &s)
    }

    pub fn global_average_pool(&mut self, x: &str) -> String {
        self.node("GlobalAveragePool", vec![x.into()], vec![])
    }

    pub fn flatten(&mut self, x: &str) -> String {
        self.node("Flatten", vec![x.into()], vec![attr_int("axis", 1)])
    }

    /// The usual classifier head: global average pooling, flatten, then `linear` as a Gemm.
    pub fn pooled_linear(&mut self, x: &str, name: &str, linear: &tch::nn::Linear) -> String {
        let pooled = self.global_average_pool(x);
        let flat = self.flatten(&pooled);
        let bias = linear.bs.as_ref().expect("linear layer with bias");
        self.gemm(&flat, name, &Weights::from_tch(&linear.ws), &Weights::from_tch(bias))
    }

    /// `Gemm(x, W, b)` with `transB = 1` (`W` is `[out, in]` as in PyTorch's Linear).
    pub fn gemm(&mut self, x: &str, name: &str, weight: &Weights, bias: &Weights) -> String {
        let w = self.constant(&format!("{name}.weight"), weight);
        let b = self.constant(&format!("{name}.bias"), bias);
        self.node("Gemm", vec![x.into(), w, b], vec![attr_int("transB", 1)])
    }

    /// Finishes the model: input `input` of shape `[N, c, h, w]`, the given output of `[N, classes]`.
    pub fn finish(self, output: &str, input_chw: [i64; 3], classes: i64, doc: &str) -> ModelProto {
        let mut nodes = self.nodes;
        // Name the graph output "logits".
        if let Some(last) = nodes.iter_mut().rev().find(|n| n.output.iter().any(|o| o == output)) {
            last.output = vec!["logits".into()];
        }
        let [c, h, w] = input_chw;
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
            producer_name: "fer-edge".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            graph: Some(GraphProto {
                name: "fer".into(),
                node: nodes,
                initializer: self.initializers,
                input: vec![value_info("input", &[None, Some(c), Some(h), Some(w)])],
                output: vec![value_info("logits", &[None, Some(classes)])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Serialises a model to ONNX bytes.
pub fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Folds an eval-mode BatchNorm into the preceding bias-free convolution:
/// `w' = w * g / sqrt(var + eps)`, `b' = beta - mean * g / sqrt(var + eps)`.
pub fn fold_bn(
    conv_w: &tch::Tensor,
    gamma: &tch::Tensor,
    beta: &tch::Tensor,
    mean: &tch::Tensor,
    var: &tch::Tensor,
    eps: f64,
) -> (Weights, Weights) {
    let scale = gamma / (var + eps).sqrt();
    let w = conv_w * scale.view([-1, 1, 1, 1]);
    let b = beta - mean * &scale;
    (Weights::from_tch(&w), Weights::from_tch(&b))
}

/// Writes `model` as `dir/model.onnx` plus `dir/manifest.json` (fer-core's manifest, with the
/// file's SHA-256). Returns the manifest path.
pub fn write_model(
    model: &dyn crate::models::FerModel,
    mut manifest: fer_core::manifest::ModelManifest,
    dir: &std::path::Path,
) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let spec = &manifest.input;
    let mut g = OnnxBuilder::default();
    let logits = model.to_onnx(&mut g, "input");
    let doc = format!("{} ({}), exported by fer-edge", manifest.name, manifest.architecture);
    let proto = g.finish(
        &logits,
        [spec.channels as i64, spec.height as i64, spec.width as i64],
        manifest.output.classes as i64,
        &doc,
    );
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let onnx = dir.join(&manifest.onnx_file);
    std::fs::write(&onnx, encode(&proto)).with_context(|| format!("writing {}", onnx.display()))?;
    manifest.sha256 = fer_core::manifest::sha256_file(&onnx).with_context(|| format!("hashing {}", onnx.display()))?;
    let path = dir.join(fer_core::manifest::MANIFEST_FILE);
    manifest.validate(&path)?;
    manifest.save(&path)?;
    Ok(path)
}

/// Architecture description beside a model's ONNX, for fine-tuning (`train --init`).
pub const ARCHITECTURE_FILE: &str = "architecture.json";
/// Trainable weights (trainer parameter names, FER-2013 or manifest label order) beside the ONNX.
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// Writes `architecture.json` and `weights.safetensors` into `dir`, so the model can be
/// fine-tuned later (`fer-train train --init dir`).
pub fn save_trainable(
    dir: &std::path::Path,
    arch: &crate::models::Architecture,
    vs: &tch::nn::VarStore,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let weights = dir.join(WEIGHTS_FILE);
    vs.save(&weights).with_context(|| format!("writing {}", weights.display()))?;
    let path = dir.join(ARCHITECTURE_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(arch)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads what [`save_trainable`] and [`write_model`] left in `dir`: the architecture, the
/// manifest (input spec and label order) and the weights' path.
pub fn read_trainable(
    dir: &std::path::Path,
) -> anyhow::Result<(crate::models::Architecture, fer_core::manifest::ModelManifest, std::path::PathBuf)> {
    use anyhow::Context;
    let manifest_path = dir.join(fer_core::manifest::MANIFEST_FILE);
    let manifest = fer_core::manifest::ModelManifest::load(&manifest_path)?;
    let arch_path = dir.join(ARCHITECTURE_FILE);
    let text = std::fs::read_to_string(&arch_path).with_context(|| {
        format!(
            "{}: cannot read (not a model folder from `fer-train import` or `train-and-export`?)",
            arch_path.display()
        )
    })?;
    let arch =
        serde_json::from_str(&text).with_context(|| format!("{}: not a valid architecture", arch_path.display()))?;
    let weights = dir.join(WEIGHTS_FILE);
    anyhow::ensure!(weights.exists(), "{}: missing", weights.display());
    Ok((arch, manifest, weights))
}

/// Runs an ONNX file in tract on `x` (`[n, c, h, w]`), returning `[n, classes]` row-major.
pub fn tract_run(path: &std::path::Path, x: &[f32], shape: [usize; 4]) -> anyhow::Result<Vec<f32>> {
    use tract_onnx::prelude::*;
    let model = fer_core::tract::onnx().model_for_path(path)?.into_optimized()?.into_runnable()?;
    let input = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), x.to_vec())?.into_tensor();
    let out = model.run(tvec![input.into()])?;
    Ok(out[0].to_plain_array_view::<f32>()?.iter().copied().collect())
}

/// Largest |tch − tract| over the logits of `x` (`[n, c, h, w]`, on the CPU).
pub fn tract_parity(
    model: &dyn crate::models::FerModel,
    onnx: &std::path::Path,
    x: &tch::Tensor,
) -> anyhow::Result<f32> {
    let shape: Vec<usize> = x.size().iter().map(|d| *d as usize).collect();
    let flat = Vec::<f32>::try_from(x.to_kind(tch::Kind::Float).to(tch::Device::Cpu).contiguous().flatten(0, -1))?;
    let theirs = tract_run(onnx, &flat, [shape[0], shape[1], shape[2], shape[3]])?;
    let ours = tch::no_grad(|| model.forward_t(x, false)).to(tch::Device::Cpu).contiguous().flatten(0, -1);
    let ours = Vec::<f32>::try_from(ours)?;
    anyhow::ensure!(ours.len() == theirs.len(), "tract gave {} values, tch {}", theirs.len(), ours.len());
    Ok(ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max))
}
