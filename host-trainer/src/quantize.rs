//! int8 post-training quantization of the project's own f32 ONNX graphs (after
//! [`crate::export`]): per-output-channel symmetric int8 weights, per-tensor asymmetric uint8
//! activations calibrated on sample images (min/max or percentile), written in one of three
//! layouts:
//!
//! - [`Layout::Qdq`]: `QuantizeLinear → DequantizeLinear` around every Conv/Gemm input and
//!   `DequantizeLinear` on int8 weights; a runtime may fuse these into int8 kernels or (tract)
//!   fold them back to f32 at load time;
//! - [`Layout::Qlinear`]: every Conv becomes `QLinearConv` (u8 × i8 → i32 → requantized u8),
//!   with `QuantizeLinear`/`DequantizeLinear` at the boundaries to the f32 ops around it;
//! - [`Layout::QlinearPointwise`]: only the 1×1 (pointwise) convolutions, which hold most of the
//!   multiply-adds of a depthwise-separable network, become `QLinearConv`; depthwise and stem
//!   convolutions stay f32.
//!
//! A Conv whose only consumer is `Relu` or `Clip(0, 6)` gets its output range cut to that
//! activation's, so u8 saturation performs the activation for free and no range is wasted.

use std::collections::{HashMap, HashSet};

use prost::Message;
use serde::{Deserialize, Serialize};
use tract_onnx::pb::{
    attribute_proto, tensor_proto, type_proto, AttributeProto, ModelProto, NodeProto, TensorProto, TypeProto,
    ValueInfoProto,
};

/// The layout `quantize` and `train-and-export` write by default. Measured (BENCHMARKS.md, "int8
/// on aarch64", QEMU icount, tract 0.23.9): no int8 layout is faster than f32 on Cortex-A72 or
/// A76 for our small CNNs (QDQ 1.5x the f32 instructions, pointwise QLinear 5-6x, full QLinear
/// 18-19x), so the boards run f32; the int8 model written is the QDQ one, the least slow and
/// 3.4x smaller on disk, for storage-bound uses. fer-device's plan runs its quantize-dequantize
/// pairs in f32 in the epilogue of the kernel before them or as one pass (`FakeQuant`, session
/// 20), which brings QDQ to 1.10-1.14x the f32 instructions on a Cortex-A72 (session 21), still
/// not below f32; on CPUs with an 8-bit dot product (Cortex-A76, x86-64 with AVX-512 VNNI) it
/// runs the QDQ model's 1x1 convolutions in 8-bit integers, and there QDQ is the faster
/// (MobileNetV2-0.5: 0.77x f32 on the A76, session 21; 0.70x on a Zen 4, session 22).
pub const SHIPPED_LAYOUT: Layout = Layout::Qdq;
/// The activation storage written by default (same measurement; uint8 is also the more
/// accurate on our models).
pub const SHIPPED_ACTIVATIONS: ActivationType = ActivationType::U8;

/// Where int8 goes in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Qdq,
    Qlinear,
    QlinearPointwise,
}

impl Layout {
    pub const ALL: [Layout; 3] = [Layout::Qdq, Layout::Qlinear, Layout::QlinearPointwise];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Qdq => "qdq",
            Layout::Qlinear => "qlinear",
            Layout::QlinearPointwise => "qlinear-pointwise",
        }
    }
}

/// How activation ranges are taken from the calibration images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Calibration {
    /// Smallest and largest value seen.
    MinMax,
    /// The 0.01th and 99.99th percentiles (robust to rare outliers).
    Percentile,
}

impl Calibration {
    pub fn name(self) -> &'static str {
        match self {
            Calibration::MinMax => "minmax",
            Calibration::Percentile => "percentile-99.99",
        }
    }
}

/// Observed range of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error("quantization: {0}")]
    Graph(String),
    #[error("quantization: running the calibration graph in tract: {0}")]
    Tract(String),
}

fn graph_err(m: impl Into<String>) -> QuantizeError {
    QuantizeError::Graph(m.into())
}

fn is_quantizable(n: &NodeProto) -> bool {
    n.op_type == "Conv" || n.op_type == "Gemm"
}

/// Tensors whose ranges quantization needs: inputs and outputs of every Conv and Gemm.
fn calibrated_tensors(model: &ModelProto) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for n in model.graph.iter().flat_map(|g| &g.node).filter(|n| is_quantizable(n)) {
        for t in [&n.input[0], &n.output[0]] {
            if seen.insert(t.clone()) {
                out.push(t.clone());
            }
        }
    }
    out
}

/// Calibration batch size; calibration uses whole batches (the remainder of the images is left
/// out, at least one batch is used).
pub const CALIBRATION_BATCH: usize = 32;

/// Collects the value ranges of every Conv/Gemm input and output over the images `x` (NCHW,
/// `chw` each), running the f32 model in tract with those tensors exposed as outputs.
pub fn calibrate(
    model: &ModelProto,
    x: &[f32],
    chw: [usize; 3],
    method: Calibration,
) -> Result<HashMap<String, Range>, QuantizeError> {
    use tract_onnx::prelude::*;
    let names = calibrated_tensors(model);
    let mut probe = model.clone();
    let graph = probe.graph.as_mut().ok_or_else(|| graph_err("model has no graph"))?;
    for name in &names {
        graph.output.push(ValueInfoProto {
            name: name.clone(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: tensor_proto::DataType::Float as i32,
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let bytes = probe.encode_to_vec();
    let tract_err = |e: anyhow::Error| QuantizeError::Tract(format!("{e:#}"));
    let per = chw.iter().product::<usize>();
    let n = x.len() / per;
    if n == 0 {
        return Err(graph_err("no calibration images"));
    }
    let batch = CALIBRATION_BATCH.min(n);
    let plan = tract_plan(&bytes, batch, chw)?;
    let batches = x[..(n / batch) * batch * per].chunks(batch * per).map(|c| (c, [batch, chw[0], chw[1], chw[2]]));
    let mut minmax: Vec<(f32, f32)> = vec![(f32::INFINITY, f32::NEG_INFINITY); names.len()];
    let mut samples: Vec<Vec<f32>> = vec![Vec::new(); names.len()];
    for (data, shape) in batches {
        let input = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), data.to_vec())
            .map_err(|e| QuantizeError::Tract(e.to_string()))?
            .into_tensor();
        let outs = plan.run(tvec![input.into()]).map_err(tract_err)?;
        for (i, t) in outs.iter().skip(1).enumerate() {
            let v = t.to_plain_array_view::<f32>().map_err(tract_err)?;
            let (lo, hi) = &mut minmax[i];
            for &x in v.iter() {
                *lo = lo.min(x);
                *hi = hi.max(x);
            }
            if method == Calibration::Percentile {
                // A strided sample keeps memory bounded (≤ ~32k values per tensor per batch).
                let stride = (v.len() / 32_768).max(1);
                samples[i].extend(v.iter().step_by(stride).copied());
            }
        }
    }
    let mut ranges = HashMap::new();
    for (i, name) in names.into_iter().enumerate() {
        let (lo, hi) = minmax[i];
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(graph_err(format!("no calibration data reached tensor {name}")));
        }
        let r = match method {
            Calibration::MinMax => Range { min: lo, max: hi },
            Calibration::Percentile => {
                let s = &mut samples[i];
                s.sort_by(|a, b| a.total_cmp(b));
                let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
                Range { min: at(0.0001), max: at(0.9999) }
            }
        };
        ranges.insert(name, r);
    }
    Ok(ranges)
}

/// How activations are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ActivationType {
    /// uint8 with a zero point: the full range of [min, max] (the ONNX default).
    U8,
    /// int8, zero point 0, scale max|x| / 127: no zero-point corrections in the int8 kernels.
    I8,
}

impl ActivationType {
    pub fn name(self) -> &'static str {
        match self {
            ActivationType::U8 => "uint8 asymmetric",
            ActivationType::I8 => "int8 symmetric",
        }
    }

    /// `(scale, zero-point byte, ONNX type)` covering `r`.
    fn params(self, r: Range) -> (f32, u8, tensor_proto::DataType) {
        match self {
            ActivationType::U8 => {
                let (s, zp) = activation_params(r);
                (s, zp, tensor_proto::DataType::Uint8)
            }
            ActivationType::I8 => {
                let m = r.min.abs().max(r.max.abs());
                (if m > 0.0 { m / 127.0 } else { 1.0 }, 0, tensor_proto::DataType::Int8)
            }
        }
    }
}

/// u8 asymmetric parameters covering `r` (and 0): `(scale, zero_point)`.
pub fn activation_params(r: Range) -> (f32, u8) {
    let lo = r.min.min(0.0);
    let hi = r.max.max(0.0);
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zp = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zp)
}

/// Symmetric per-output-channel int8 weights: `(values, scales)`, `q = round(w / s)` in
/// −127..=127 with `s = max|w_c| / 127`.
pub fn quantize_weights(w: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / channels.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(channels);
    for c in w.chunks(per) {
        let m = c.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if m > 0.0 { m / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(c.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8));
    }
    (q, scales)
}

struct Rewriter<'a> {
    inits: HashMap<String, &'a TensorProto>,
    nodes: Vec<NodeProto>,
    new_inits: Vec<TensorProto>,
    /// f32 tensor name → its u8 version `(name, scale name, zero-point name, scale)`: one
    /// QuantizeLinear per tensor, or a QLinearConv's output when chained.
    quantized: HashMap<String, (String, String, String, f32)>,
    counter: usize,
    act: ActivationType,
}

fn scalar_f32(name: &str, v: f32) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: tensor_proto::DataType::Float as i32,
        float_data: vec![v],
        ..Default::default()
    }
}

fn tensor_f32(name: &str, dims: Vec<i64>, v: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims,
        data_type: tensor_proto::DataType::Float as i32,
        float_data: v,
        ..Default::default()
    }
}

fn tensor_raw(name: &str, dims: Vec<i64>, dt: tensor_proto::DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto { name: name.into(), dims, data_type: dt as i32, raw_data: raw, ..Default::default() }
}

fn float_values(t: &TensorProto) -> Result<Vec<f32>, QuantizeError> {
    if !t.float_data.is_empty() {
        return Ok(t.float_data.clone());
    }
    if t.data_type == tensor_proto::DataType::Float as i32 && !t.raw_data.is_empty() {
        return Ok(t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
    }
    Err(graph_err(format!("initializer {} is not a float tensor", t.name)))
}

fn attr_i(n: &NodeProto, name: &str) -> Option<i64> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn attr_ints<'n>(n: &'n NodeProto, name: &str) -> Option<&'n [i64]> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.ints.as_slice())
}

impl Rewriter<'_> {
    fn fresh(&mut self, base: &str) -> String {
        self.counter += 1;
        format!("{base}#q{}", self.counter)
    }

    fn push(&mut self, op: &str, inputs: Vec<String>, output: String, attribute: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            name: output.clone(),
            op_type: op.into(),
            input: inputs,
            output: vec![output],
            attribute,
            ..Default::default()
        });
    }

    /// Scale and zero-point initializers for an activation range; returns their names.
    fn act_params(&mut self, base: &str, r: Range) -> (String, String, f32) {
        let (s, zp, dt) = self.act.params(r);
        let (sn, zn) = (self.fresh(&format!("{base}.scale")), self.fresh(&format!("{base}.zero_point")));
        self.new_inits.push(scalar_f32(&sn, s));
        self.new_inits.push(tensor_raw(&zn, vec![], dt, vec![zp]));
        (sn, zn, s)
    }

    /// The u8 version of `x` (one QuantizeLinear per tensor): `(q name, scale name, zero-point
    /// name, scale)`.
    fn quantize_input(&mut self, x: &str, r: Range) -> (String, String, String, f32) {
        if let Some(q) = self.quantized.get(x) {
            return q.clone();
        }
        let (s, zp, dt) = self.act.params(r);
        let q = self.fresh(&format!("{x}.q"));
        let (sn, zn) = (format!("{q}.scale"), format!("{q}.zero_point"));
        self.new_inits.push(scalar_f32(&sn, s));
        self.new_inits.push(tensor_raw(&zn, vec![], dt, vec![zp]));
        self.push("QuantizeLinear", vec![x.into(), sn.clone(), zn.clone()], q.clone(), vec![]);
        let entry = (q, sn, zn, s);
        self.quantized.insert(x.into(), entry.clone());
        entry
    }

    fn weight(&self, name: &str) -> Result<(Vec<i64>, Vec<f32>), QuantizeError> {
        let t = self.inits.get(name).ok_or_else(|| graph_err(format!("weight {name} is not an initializer")))?;
        Ok((t.dims.clone(), float_values(t)?))
    }
}

/// Rewrites the f32 `model` as int8 in `layout`, with activation `ranges` from [`calibrate`].
pub fn quantize(
    model: &ModelProto,
    ranges: &HashMap<String, Range>,
    layout: Layout,
    act: ActivationType,
) -> Result<ModelProto, QuantizeError> {
    let graph = model.graph.as_ref().ok_or_else(|| graph_err("model has no graph"))?;
    let range = |t: &str| ranges.get(t).copied().ok_or_else(|| graph_err(format!("no calibrated range for {t}")));
    // Consumers, to cut a Conv's output range to a following Relu / Clip(0, 6).
    let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            consumers.entry(i.as_str()).or_default().push(n);
        }
    }
    let clip_limits = |n: &NodeProto, inits: &HashMap<String, &TensorProto>| -> Option<(f32, f32)> {
        match n.op_type.as_str() {
            "Relu" => Some((0.0, f32::INFINITY)),
            "Clip" if n.input.len() == 3 => {
                let lo = float_values(inits.get(&n.input[1])?).ok()?.first().copied()?;
                let hi = float_values(inits.get(&n.input[2])?).ok()?.first().copied()?;
                Some((lo, hi))
            }
            _ => None,
        }
    };
    let mut rw = Rewriter {
        inits: graph.initializer.iter().map(|t| (t.name.clone(), t)).collect(),
        nodes: Vec::new(),
        new_inits: Vec::new(),
        quantized: HashMap::new(),
        counter: 0,
        act,
    };
    let mut replaced_weights = HashSet::new();
    let is_qlinear = |n: &NodeProto| {
        let pointwise = attr_ints(n, "kernel_shape").is_some_and(|k| k.iter().all(|&d| d == 1))
            && attr_i(n, "group").unwrap_or(1) == 1;
        n.op_type == "Conv" && (layout == Layout::Qlinear || (layout == Layout::QlinearPointwise && pointwise))
    };
    let graph_outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    // Activation nodes folded into a chained QLinearConv (u8 saturation does their work).
    let mut folded: HashSet<&str> = HashSet::new();
    for n in &graph.node {
        if folded.contains(n.name.as_str()) {
            continue;
        }
        let qlinear = is_qlinear(n);
        let qdq = layout == Layout::Qdq && is_quantizable(n);
        if !(qlinear || qdq) {
            rw.nodes.push(n.clone());
            continue;
        }
        let (x, wname) = (&n.input[0], &n.input[1]);
        let (dims, w) = rw.weight(wname)?;
        let channels = dims[0] as usize;
        let (wq, ws) = quantize_weights(&w, channels);
        replaced_weights.insert(wname.clone());
        let wq_name = rw.fresh(&format!("{wname}.i8"));
        rw.new_inits.push(tensor_raw(
            &wq_name,
            dims.clone(),
            tensor_proto::DataType::Int8,
            wq.iter().map(|v| *v as u8).collect(),
        ));
        let ws_name = rw.fresh(&format!("{wname}.scale"));
        rw.new_inits.push(tensor_f32(&ws_name, vec![channels as i64], ws.clone()));
        let wz_name = rw.fresh(&format!("{wname}.zero_point"));
        rw.new_inits.push(tensor_raw(&wz_name, vec![channels as i64], tensor_proto::DataType::Int8, vec![0; channels]));
        let (xq, xs_name, xz_name, xs) = rw.quantize_input(x, range(x)?);
        if qdq {
            let xdq = rw.fresh(&format!("{x}.dq"));
            rw.push("DequantizeLinear", vec![xq, xs_name, xz_name], xdq.clone(), vec![]);
            let wdq = rw.fresh(&format!("{wname}.dq"));
            let axis = AttributeProto {
                name: "axis".into(),
                r#type: attribute_proto::AttributeType::Int as i32,
                i: 0,
                ..Default::default()
            };
            rw.push("DequantizeLinear", vec![wq_name, ws_name, wz_name], wdq.clone(), vec![axis]);
            let mut node = n.clone();
            node.input[0] = xdq;
            node.input[1] = wdq;
            rw.nodes.push(node);
            continue;
        }
        // QLinearConv: output range, cut to a sole Relu/Clip consumer.
        let y = &n.output[0];
        let mut yr = range(y)?;
        let mut act: Option<&NodeProto> = None;
        if let [only] = consumers.get(y.as_str()).map(Vec::as_slice).unwrap_or_default() {
            if let Some((lo, hi)) = clip_limits(only, &rw.inits) {
                yr = Range { min: yr.min.max(lo), max: yr.max.min(hi) };
                act = Some(only);
            }
        }
        // Chain: when the (activated) output only feeds other QLinearConvs as their data input,
        // they read this u8 output directly; no Dequantize/activation/Quantize in between.
        // Saturation performs the activation only where the quantized range starts at its lower
        // limit: uint8 with the range cut above. int8 symmetric keeps the activation node.
        if act.is_some() && rw.act == ActivationType::I8 {
            act = None;
            yr = range(y)?;
        }
        let z = act.map_or(y, |a| &a.output[0]);
        let z_users = consumers.get(z.as_str()).map(Vec::as_slice).unwrap_or_default();
        let chain = !graph_outputs.contains(z.as_str())
            && !z_users.is_empty()
            && z_users.iter().all(|c| is_qlinear(c) && c.input[0] == *z && !c.input[1..].contains(z));
        let (ys_name, yz_name, ys) = rw.act_params(y, yr);
        let mut inputs = vec![xq, xs_name, xz_name, wq_name, ws_name, wz_name, ys_name.clone(), yz_name.clone()];
        if let Some(bname) = n.input.get(2) {
            let (_, b) = rw.weight(bname)?;
            replaced_weights.insert(bname.clone());
            let bias: Vec<u8> = b
                .iter()
                .zip(&ws)
                .flat_map(|(b, s)| ((*b as f64 / (xs as f64 * *s as f64)).round() as i32).to_le_bytes())
                .collect();
            let bq = rw.fresh(&format!("{bname}.i32"));
            rw.new_inits.push(tensor_raw(&bq, vec![channels as i64], tensor_proto::DataType::Int32, bias));
            inputs.push(bq);
        }
        let yq = rw.fresh(&format!("{y}.q"));
        let mut node = n.clone();
        node.op_type = "QLinearConv".into();
        node.input = inputs;
        node.output = vec![yq.clone()];
        node.name = yq.clone();
        rw.nodes.push(node);
        if chain {
            if let Some(a) = act {
                folded.insert(a.name.as_str());
            }
            rw.quantized.insert(z.clone(), (yq, ys_name, yz_name, ys));
        } else {
            rw.push("DequantizeLinear", vec![yq, ys_name, yz_name], y.clone(), vec![]);
        }
    }
    // Weights that every user now reads quantized are dropped; others stay.
    let still_used: HashSet<&str> = rw.nodes.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let mut out = model.clone();
    let g = out.graph.as_mut().expect("checked above");
    g.initializer.retain(|t| !replaced_weights.contains(&t.name) || still_used.contains(t.name.as_str()));
    g.initializer.extend(rw.new_inits);
    g.node = rw.nodes;
    out.doc_string = format!("{} [int8 {}]", out.doc_string, layout.name());
    Ok(out)
}

/// A model optimized by tract for `[batch, c, h, w]` input.
pub type Plan = std::sync::Arc<tract_onnx::prelude::TypedSimplePlan>;

/// Loads ONNX bytes in tract with a concrete batch size.
pub fn tract_plan(bytes: &[u8], batch: usize, chw: [usize; 3]) -> Result<Plan, QuantizeError> {
    use tract_onnx::prelude::*;
    let tract_err = |e: anyhow::Error| QuantizeError::Tract(format!("{e:#}"));
    let shape = [batch, chw[0], chw[1], chw[2]];
    fer_core::tract::onnx()
        .model_for_read(&mut &bytes[..])
        .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(tract_err)
}

/// Runs `plan` (batch size `batch`) over `x` (`n` images of `chw`); returns `[n, classes]` logits.
/// The tail that does not fill a batch is padded with zeros and dropped from the result.
pub fn run_batches(plan: &Plan, batch: usize, chw: [usize; 3], x: &[f32]) -> Result<Vec<Vec<f32>>, QuantizeError> {
    use tract_onnx::prelude::*;
    let per = chw.iter().product::<usize>();
    let n = x.len() / per;
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(batch) {
        let take = batch.min(n - start);
        let mut data = x[start * per..(start + take) * per].to_vec();
        data.resize(batch * per, 0.0);
        let input = tract_ndarray::ArrayD::from_shape_vec(vec![batch, chw[0], chw[1], chw[2]], data)
            .map_err(|e| QuantizeError::Tract(e.to_string()))?
            .into_tensor();
        let res = plan.run(tvec![input.into()]).map_err(|e| QuantizeError::Tract(format!("{e:#}")))?;
        let logits = res[0].to_plain_array_view::<f32>().map_err(|e| QuantizeError::Tract(format!("{e:#}")))?;
        let classes = logits.len() / batch;
        let flat: Vec<f32> = logits.iter().copied().collect();
        out.extend(flat.chunks(classes).take(take).map(<[f32]>::to_vec));
    }
    Ok(out)
}

/// Median wall time of one batch-1 inference over `runs` runs (after 5 warm-up runs), in ms.
pub fn latency_ms(plan: &Plan, chw: [usize; 3], runs: usize) -> Result<f64, QuantizeError> {
    let x = vec![0.1f32; chw.iter().product()];
    for _ in 0..5 {
        run_batches(plan, 1, chw, &x)?;
    }
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = std::time::Instant::now();
        run_batches(plan, 1, chw, &x)?;
        t.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_params_cover_zero_and_the_range() {
        // [-1, 3]: scale 4/255, zero point round(255/4) = 64; 0 maps exactly to the zero point.
        let (s, zp) = activation_params(Range { min: -1.0, max: 3.0 });
        assert!((s - 4.0 / 255.0).abs() < 1e-9);
        assert_eq!(zp, 64);
        // All-positive ranges start at 0 (zero point 0), as after ReLU.
        assert_eq!(activation_params(Range { min: 0.5, max: 6.0 }), (6.0 / 255.0, 0));
    }

    #[test]
    fn weights_are_symmetric_per_channel() {
        // Channel 0: max 1.27 → scale 0.01; channel 1: max 0.5 → scale 0.5/127.
        let (q, s) = quantize_weights(&[1.27, -0.635, 0.0, 0.5, -0.5, 0.25], 2);
        assert_eq!(q, vec![127, -64, 0, 127, -127, 64]);
        assert!((s[0] - 0.01).abs() < 1e-9 && (s[1] - 0.5 / 127.0).abs() < 1e-9);
    }
}
