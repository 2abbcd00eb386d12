//! Rewrites of a decluttered tract model before it is optimised, each measured against tract's
//! own plan (BENCHMARKS.md, "Classifier: channel-last depthwise and direct convolutions"):
//!
//! - [`fake_quants`], first: a QDQ (int8) model's quantize-dequantize pairs on activations
//!   become one f32 pass each, [`FakeQuant`] (tract runs them as two, with a scalar rounding);
//! - [`direct_convs`]: a dense convolution with few output channels (the 3x3 stems of
//!   mini-XCEPTION, MobileNetV2's and face-api.js's strided, padded ones) becomes
//!   [`DirectConv`], computed straight from the input rows instead of tract's im2col gather and
//!   matrix product, with the ReLU or ReLU6 that follows fused;
//! - [`subsamples`]: tract's strided-slice `Downsample`s (what a strided 1x1 convolution
//!   declutters to, one per axis) become one [`Subsample`] that copies the kept points directly and,
//!   unlike `Downsample`, follows layout changes, so a residual branch can go channel-last too;
//! - [`channel_last`]: depthwise convolutions of any width (tract itself only moves those of 16
//!   channels or more) and max-pools run NHWC, where the channel-inner depthwise kernel (ours,
//!   [`super::kernels`]) and tract's channel-last pool vectorise over channels. tract's declutter
//!   then cancels the layout moves between neighbours;
//! - [`sliding_windows`]: every depthwise convolution (channel-last, or channel-first where
//!   tract kept it so) and channel-last max-pool becomes a [`SlidingWindow`] that runs the
//!   whole image itself (tract's own runs a kernel per row and border zone, and its max-pool
//!   is a generic loop) and fuses the ReLU / ReLU6 that follows;
//! - [`sums`]: tract's `Reduce<Sum>` over neighbouring axes (a global average pool's sum) becomes
//!   [`SumAxes`], a plain loop;
//! - [`pointwise_convs`], last: each 1x1 convolution (a matrix-product `EinSum` once decluttered)
//!   becomes [`PointwiseConv`], which reads its input where it lies in whatever layout tract left
//!   it (tract packs it into panels for every run) and fuses the bias and a following ReLU or
//!   ReLU6, and a residual sum after it (with the ReLU of that sum, the sum itself kept as a
//!   second output where more use it: face-api.js's dense blocks), and a [`FakeQuant`] that alone
//!   reads its output (QDQ models).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::conv::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::cnn::MaxPool;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::{Add, Max, Min};
use tract_onnx::tract_core::ops::nn::DataFormat;
use tract_onnx::tract_core::ops::Downsample;

use super::kernels;

/// All the rewrites, in order, each followed by tract's declutter (which cancels the layout moves
/// that meet and lets tract's own channel-last choices for wide depthwise convolutions spread).
///
/// On 32-bit ARM the dense and 1x1 convolutions stay tract's: its armv7 NEON matrix kernels
/// (assembly) beat our kernels there, which run portable code (Rust has no stable NEON
/// intrinsics on arm, and the compiler does not vectorise f32 for armv7's NEON): mini-XCEPTION
/// 56.0 M Cortex-A72 instructions (AArch32) with them, 25.6 M in tract's own plan (BENCHMARKS.md).
pub fn tune(model: TypedModel) -> TractResult<TypedModel> {
    tune_with(model, !cfg!(target_arch = "arm"), kernels::int8_build().is_some())
}

/// [`tune`], with [`direct_convs`] and [`pointwise_convs`] where `matmuls` says so and
/// [`integer_pointwise`] last where `integers` does.
fn tune_with(model: TypedModel, matmuls: bool, integers: bool) -> TractResult<TypedModel> {
    let mut model = model;
    fake_quants(&mut model)?;
    if matmuls {
        direct_convs(&mut model)?;
    }
    subsamples(&mut model)?;
    let mut model = model.into_decluttered()?;
    channel_last(&mut model)?;
    let mut model = model.into_decluttered()?;
    sliding_windows(&mut model)?;
    sums(&mut model)?;
    if matmuls {
        pointwise_convs(&mut model)?;
    }
    if integers {
        integer_pointwise(&mut model)?;
    }
    Ok(model)
}

/// Widest output-channel count [`DirectConv`] takes (mini-XCEPTION's stems have 8, face-api.js's
/// 32: 0.173 ms in tract's im2col, matrix product and ReLU, 0.088 ms direct; wider layers are left
/// to tract, whose tiles they fill).
const DIRECT_MAX_COUT: usize = 32;

/// A dense f32 NCHW convolution with unit dilation, computed directly: `y[n, co, oy, ox] =
/// clamp(bias[co] + Σ w[co, ci, ky, kx] · x[n, ci, oy·sh + ky − top, ox·sw + kx − left])`, zero
/// padding, the clamp (ReLU, ReLU6) that follows fused.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectConv {
    pub cin: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    /// Strides along rows and columns.
    pub strides: (usize, usize),
    /// Zero padding: rows above and below, columns left and right.
    pub pads: [usize; 4],
    /// Weights as `[ci][ky][kx][co]`, `co` padded to a multiple of [`kernels::DIRECT_LANES`].
    pub packed: Arc<Vec<f32>>,
    /// Bias per output channel, padded like `packed`.
    pub bias: Arc<Vec<f32>>,
    /// Lower and upper bound of the output (infinite when nothing is fused).
    pub clamp: (f32, f32),
    /// The convolution in integers ([`kernels::direct_int8`]), where [`integer_pointwise`]
    /// found its input quantized, its weights int8 and its geometry unit-strided and unpadded.
    pub int8: Option<Arc<kernels::Int8Direct>>,
}

impl Eq for DirectConv {}

impl std::hash::Hash for DirectConv {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.cin, self.cout, self.kh, self.kw, self.strides, self.pads).hash(state);
        (self.clamp.0.to_bits(), self.clamp.1.to_bits(), self.int8.is_some()).hash(state);
        self.packed.iter().for_each(|v| v.to_bits().hash(state));
        self.bias.iter().for_each(|v| v.to_bits().hash(state));
    }
}

impl DirectConv {
    /// From OIHW weights and a bias per output channel, unit strides, no padding (see
    /// [`Self::strides`], [`Self::pads`]).
    pub fn new(cin: usize, cout: usize, kh: usize, kw: usize, oihw: &[f32], bias: &[f32]) -> DirectConv {
        let lanes = kernels::DIRECT_LANES;
        let cpad = cout.div_ceil(lanes) * lanes;
        let mut packed = vec![0.0; cin * kh * kw * cpad];
        for co in 0..cout {
            for tap in 0..cin * kh * kw {
                packed[tap * cpad + co] = oihw[co * cin * kh * kw + tap];
            }
        }
        let mut b = vec![0.0; cpad];
        b[..cout].copy_from_slice(bias);
        let (strides, pads, clamp) = ((1, 1), [0; 4], kernels::NO_CLAMP);
        DirectConv { cin, cout, kh, kw, strides, pads, packed: Arc::new(packed), bias: Arc::new(b), clamp, int8: None }
    }

    /// The kernel's geometry for an `h` x `w` input, if it takes it.
    fn geometry(&self, h: usize, w: usize) -> Option<kernels::DirectGeometry> {
        let [top, bottom, left, right] = self.pads;
        let (sh, sw) = self.strides;
        let oh = (h + top + bottom).checked_sub(self.kh)? / sh.max(1) + 1;
        let ow = (w + left + right).checked_sub(self.kw)? / sw.max(1) + 1;
        let (cin, cout, kh, kw) = (self.cin, self.cout, self.kh, self.kw);
        (sh > 0 && sw > 0 && kw <= kernels::DIRECT_MAX_KW && ow >= kernels::DIRECT_LANES).then_some(
            kernels::DirectGeometry { cin, h, w, cout, kh, kw, sh, sw, pad_top: top, pad_left: left, oh, ow },
        )
    }
}

impl Op for DirectConv {
    fn name(&self) -> StaticName {
        "DirectConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}x{} {} -> {} channels, strides {:?}, padding {:?}, clamp {:?}{}",
            self.kh,
            self.kw,
            self.cin,
            self.cout,
            self.strides,
            self.pads,
            self.clamp,
            if self.int8.is_some() { ", in integers (int8 x int8 -> int32)" } else { "" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DirectConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let &[n, c, h, w] = input.shape() else { bail!("DirectConv: input {:?} is not NCHW", input.shape()) };
        ensure!(c == self.cin, "DirectConv: {c} input channels, expected {}", self.cin);
        let Some(geo) = self.geometry(h, w) else { bail!("DirectConv: input {h}x{w} too small") };
        let (oh, ow) = (geo.oh, geo.ow);
        let x = input.try_as_plain_ram()?;
        let x = x.as_slice::<f32>()?;
        // SAFETY: the kernel writes every element.
        let mut out = unsafe { Tensor::uninitialized::<f32>(&[n, self.cout, oh, ow])? };
        {
            let mut o = out.try_as_plain_ram_mut()?;
            let o = o.as_slice_mut::<f32>()?;
            for (x, o) in x.chunks_exact(c * h * w).zip(o.chunks_exact_mut(self.cout * oh * ow)) {
                match &self.int8 {
                    Some(q) => kernels::direct_int8(x, q, (h, w), self.clamp, o),
                    None => kernels::direct_conv(x, &self.packed, &self.bias, &geo, self.clamp, None, o),
                }
            }
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for DirectConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = inputs[0].shape.as_concrete().context("DirectConv needs a concrete input shape")?;
        let &[n, _, h, w] = s else { bail!("DirectConv: input {s:?} is not NCHW") };
        let g = self.geometry(h, w).context("DirectConv: input too small")?;
        Ok(tvec!(f32::fact([n, self.cout, g.oh, g.ow])))
    }

    as_op!();
}

/// Replaces each convolution [`DirectConv`] handles (f32, NCHW, group 1, OIHW constant weights,
/// unit dilations, at most [`DIRECT_MAX_COUT`] output channels, an output row of at least
/// [`kernels::DIRECT_LANES`]). Returns how many it replaced.
pub fn direct_convs(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    let ids: Vec<usize> = model.nodes().iter().filter(|n| n.op_is::<Conv>()).map(|n| n.id).collect();
    for id in ids {
        let node = model.node(id).clone();
        let op = node.op_as::<Conv>().unwrap();
        let x = model.outlet_fact(node.inputs[0])?;
        let Some(shape) = x.shape.as_concrete().map(|s| s.to_vec()) else { continue };
        let spec = &op.pool_spec;
        if op.q_params.is_some()
            || x.datum_type != f32::datum_type()
            || op.group != 1
            || op.kernel_fmt != KernelFormat::OIHW
            || spec.data_format != DataFormat::NCHW
            || spec.rank() != 2
            || shape.len() != 4
            || node.inputs.len() != 3
            || op.output_channels() > DIRECT_MAX_COUT
            || (0..2).any(|a| spec.dilation(a) != 1)
        {
            continue;
        }
        let (Some(k), Some(b)) =
            (model.outlet_fact(node.inputs[1])?.konst.clone(), model.outlet_fact(node.inputs[2])?.konst.clone())
        else {
            continue;
        };
        let (cin, cout) = (op.input_channels(), op.output_channels());
        let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
        if k.shape() != [cout, cin, kh, kw]
            || k.datum_type() != f32::datum_type()
            || b.datum_type() != f32::datum_type()
        {
            continue;
        }
        let b = b.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
        let bias = match b.len() {
            1 => vec![b[0]; cout],
            l if l == cout => b,
            _ => continue,
        };
        let mut direct = DirectConv::new(cin, cout, kh, kw, k.try_as_plain_ram()?.as_slice::<f32>()?, &bias);
        let pad = spec.computed_padding(&shape[2..]);
        direct.strides = (spec.stride(0), spec.stride(1));
        direct.pads = [pad[0].pad_before, pad[0].pad_after, pad[1].pad_before, pad[1].pad_after];
        let Some(g) = direct.geometry(shape[2], shape[3]) else { continue };
        if (g.oh, g.ow) != (pad[0].convoluted, pad[1].convoluted) {
            continue;
        }
        let end = fuse_epilogue(model, id.into(), &[shape[0], cout, g.oh, g.ow], 1, None, &mut direct.clamp)?;
        let mut patch = TypedModelPatch::default();
        let input = patch.tap_model(model, node.inputs[0])?;
        let y = patch.wire_node(&node.name, direct, &[input])?;
        patch.shunt_outside(model, end, y[0])?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// A pointwise (1x1) f32 convolution with its bias and a clamp (ReLU, ReLU6) fused:
/// [`kernels::pointwise_conv`] on the input where it lies and into the output layout tract
/// chose, each channel-last or channel-first.
#[derive(Debug, Clone, PartialEq)]
pub struct PointwiseConv {
    pub geometry: kernels::PointwiseGeometry,
    /// Weights as `[ci][co]`.
    pub weights: Arc<Vec<f32>>,
    /// The same, as this machine's kernel reads them best where that differs
    /// ([`kernels::pointwise_blocked_weights`]).
    pub blocked: Option<Arc<Vec<f32>>>,
    pub bias: Arc<Vec<f32>>,
    /// Lower and upper bound of the output (infinite when nothing is fused).
    pub clamp: (f32, f32),
    /// The output's shape (the points' axes and the output channels, in either order).
    pub output_shape: TVec<usize>,
    /// The output channels' axis in `output_shape`.
    pub channel_axis: usize,
    /// Images, one after the other in input and output, each `geometry` (1 where channel-last
    /// data lets the batch run as more points).
    pub batch: usize,
    /// Channel-first input and output with a row of points at least 16 long: the same
    /// convolution as a 1x1 [`DirectConv`] over the points as one row, whose blocks run along
    /// the points (16 points x 4 channels, stored as vectors) where [`kernels::pointwise_conv`]
    /// runs along the output channels and would store each channel-first value alone.
    pub by_points: Option<DirectConv>,
    /// Whether a second input, laid out like the output, is added before the clamp (a residual
    /// connection's `Add`).
    pub residual: bool,
    /// Whether the sum is also a second output, unclamped (where it feeds a ReLU and more).
    pub keep_sum: bool,
    /// A QDQ model's quantize-dequantize of the (clamped) output, where a [`FakeQuant`] was its
    /// only reader: fused into the kernels' epilogue.
    pub quant: Option<kernels::FakeQuantParams>,
    /// The convolution in integers ([`kernels::pointwise_int8`], the bias included), where
    /// [`integer_pointwise`] found its input quantized and its weights int8.
    pub int8: Option<Arc<kernels::Int8Pointwise>>,
}

impl Eq for PointwiseConv {}

impl std::hash::Hash for PointwiseConv {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (
            self.geometry,
            &self.output_shape,
            self.channel_axis,
            self.batch,
            (self.residual, self.keep_sum),
            self.clamp.0.to_bits(),
            self.clamp.1.to_bits(),
        )
            .hash(state);
        self.quant.map(FakeQuant).hash(state);
        self.int8.is_some().hash(state);
        self.weights.iter().chain(self.bias.iter()).for_each(|v| v.to_bits().hash(state));
    }
}

impl Op for PointwiseConv {
    fn name(&self) -> StaticName {
        "PointwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = &self.geometry;
        let layout = |first: bool| if first { "channel-first" } else { "channel-last" };
        Ok(vec![format!(
            "{} x {} points, {} -> {} channels, {} input, {} output, clamp {:?}{}{}{}",
            self.batch,
            g.points,
            g.cin,
            g.cout,
            layout(g.channel_stride != 1),
            layout(g.out_channel_first),
            self.clamp,
            match (&self.int8, &self.by_points) {
                (Some(_), _) => ", in integers (int8 x int8 -> int32)",
                (None, Some(_)) => ", blocks along the points",
                (None, None) => "",
            },
            match (self.residual, self.keep_sum) {
                (false, _) => "",
                (true, false) => ", residual added",
                (true, true) => ", residual added, sum kept unclamped",
            },
            fake_quantized(&self.quant)?
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for PointwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 1 + self.residual as usize, "PointwiseConv: {} inputs", inputs.len());
        let input = &inputs[0];
        let g = &self.geometry;
        ensure!(
            input.len() == self.batch * g.points * g.cin,
            "PointwiseConv: input {:?}, expected {} x {} points of {} channels",
            input.shape(),
            self.batch,
            g.points,
            g.cin
        );
        let x = input.try_as_plain_ram()?;
        let residual = match inputs.get(1) {
            Some(r) => {
                ensure!(r.shape() == &*self.output_shape, "PointwiseConv: residual {:?}", r.shape());
                Some(r.try_as_plain_ram()?)
            }
            None => None,
        };
        let residual = residual.as_ref().map(|r| r.as_slice::<f32>()).transpose()?;
        // SAFETY: the kernel writes every element (of both).
        let mut out = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        let mut sum =
            if self.keep_sum { Some(unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? }) } else { None };
        {
            let mut o = out.try_as_plain_ram_mut()?;
            let (x, o) = (x.as_slice::<f32>()?, o.as_slice_mut::<f32>()?);
            let mut s = sum.as_mut().map(|s| s.try_as_plain_ram_mut()).transpose()?;
            let mut s = s.as_mut().map(|s| s.as_slice_mut::<f32>()).transpose()?;
            let (xn, on) = (g.points * g.cin, g.points * g.cout);
            let rows = self.by_points.as_ref().and_then(|d| Some((d, d.geometry(1, g.points)?)));
            for (i, (x, o)) in x.chunks_exact(xn.max(1)).zip(o.chunks_exact_mut(on.max(1))).enumerate() {
                let image = i * on..(i + 1) * on;
                let r = residual.map(|r| kernels::Residual {
                    add: &r[image.clone()],
                    keep: s.as_mut().map(|s| &mut s[image.clone()]),
                });
                match (&self.int8, rows) {
                    (Some(q), _) => kernels::pointwise_int8(x, q, g, self.clamp, self.quant, r, o),
                    (None, Some((d, geo))) => {
                        kernels::direct_conv(x, &d.packed, &d.bias, &geo, self.clamp, r, o);
                        // The direct kernel has no quantizing epilogue: a pass while `o` is hot.
                        if let Some(q) = &self.quant {
                            kernels::fake_quant(o, q);
                        }
                    }
                    (None, None) => {
                        let blocked = self.blocked.as_deref().map(|b| &b[..]);
                        let (clamp, quant) = (self.clamp, self.quant);
                        kernels::pointwise_conv(x, &self.weights, blocked, &self.bias, g, clamp, quant, r, o)
                    }
                }
            }
        }
        Ok(std::iter::once(out).chain(sum).map(|t| t.into_tvalue()).collect())
    }
}

impl TypedOp for PointwiseConv {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok((0..1 + self.keep_sum as usize).map(|_| f32::fact(&*self.output_shape)).collect())
    }

    as_op!();
}

/// The constant scalar (or all-ones-shaped tensor of one value) on the other side of `node`, a
/// binary op on `from`.
fn scalar_operand(model: &TypedModel, node: &TypedNode, from: OutletId) -> Option<f32> {
    let other = *node.inputs.iter().find(|i| **i != from)?;
    let k = model.outlet_fact(other).ok()?.konst.clone()?;
    (k.datum_type() == f32::datum_type() && k.len() == 1)
        .then(|| k.try_as_plain_ram().ok()?.as_slice::<f32>().ok()?.first().copied())?
}

/// Fuses the `Add` of a constant (one value or one per channel along `channel_axis`; only where
/// `bias` is given, before any clamp) and `Max` / `Min` with constant scalars that follow `from`
/// alone and keep its `shape` into `bias` and `clamp`. Returns the outlet the fused op replaces.
fn fuse_epilogue(
    model: &TypedModel,
    from: OutletId,
    shape: &[usize],
    channel_axis: usize,
    mut bias: Option<&mut Vec<f32>>,
    clamp: &mut (f32, f32),
) -> TractResult<OutletId> {
    let mut end = from;
    loop {
        let next = model.outlet_successors(end);
        if next.len() != 1 || model.output_outlets()?.contains(&end) {
            return Ok(end);
        }
        let succ = model.node(next[0].node);
        let Some(bin) = succ.op_as::<TypedBinOp>() else { return Ok(end) };
        // Only what keeps the shape (checked before anything is fused).
        if succ.inputs.len() != 2
            || succ.outputs.len() != 1
            || model.outlet_fact(OutletId::new(succ.id, 0))?.shape.as_concrete() != Some(shape)
        {
            return Ok(end);
        }
        if bin.0.is::<Add>() && bias.is_some() && *clamp == kernels::NO_CLAMP {
            let other = succ.inputs[1 - next[0].slot];
            let Some(k) = model.outlet_fact(other)?.konst.clone() else { return Ok(end) };
            let b = bias.take().unwrap();
            let cout = b.len();
            // One value, or one per output channel along the output's channel axis.
            let rank = shape.len();
            let shape_ok = k.rank() <= rank
                && k.shape()
                    .iter()
                    .enumerate()
                    .all(|(a, d)| *d == 1 || (rank - k.rank() + a == channel_axis && *d == cout));
            if k.datum_type() != f32::datum_type() || !shape_ok {
                return Ok(end);
            }
            let k = k.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
            for (c, b) in b.iter_mut().enumerate() {
                *b += k[if k.len() == 1 { 0 } else { c }];
            }
        } else if bin.0.is::<Max>() {
            let Some(v) = scalar_operand(model, succ, end) else { return Ok(end) };
            clamp.0 = clamp.0.max(v);
            clamp.1 = clamp.1.max(v);
        } else if bin.0.is::<Min>() {
            let Some(v) = scalar_operand(model, succ, end) else { return Ok(end) };
            clamp.0 = clamp.0.min(v);
            clamp.1 = clamp.1.min(v);
        } else {
            return Ok(end);
        }
        end = OutletId::new(succ.id, 0);
    }
}

/// Replaces each f32 matrix-product `EinSum` that is a pointwise convolution with a constant
/// weight matrix by [`PointwiseConv`], fusing the bias `Add`, `Max` and `Min` with constants
/// that follow it alone, then a residual `Add` of a same-shaped tensor that follows it alone
/// together with the clamps after that sum (where the sum also has other users: one `Max` or
/// `Min` chain among them, the unclamped sum kept as a second output for the rest; a sum with
/// no clamp after it is left to tract). Input and output may each be channel-last or
/// channel-first (size-1 axes aside). Returns how many it replaced.
pub fn pointwise_convs(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    let ids: Vec<usize> = model.nodes().iter().filter(|n| n.op_is::<EinSum>()).map(|n| n.id).collect();
    for id in ids {
        let Some(op) = pointwise_of(model, id)? else { continue };
        let node = model.node(id).clone();
        let mut op = op;
        let mut bias = op.bias.to_vec();
        let mut end =
            fuse_epilogue(model, id.into(), &op.output_shape, op.channel_axis, Some(&mut bias), &mut op.clamp)?;
        let (mut residual, mut kept) = (None, None);
        // A residual sum only with the clamp of the sum: a plain sum left to tract's own `Add`
        // cost fewer instructions (cortex-a72, mini-XCEPTION: 6.455 M with tract's, 6.525 M fused).
        if op.clamp == kernels::NO_CLAMP {
            if let Some((sum, other)) = residual_add(model, id, end, &op.output_shape)? {
                let (shape, axis) = (&op.output_shape, op.channel_axis);
                let mut clamp = kernels::NO_CLAMP;
                let after = fuse_epilogue(model, sum, shape, axis, None, &mut clamp)?;
                let clamped = if after != sum { Some((after, None)) } else { None };
                let clamped = match clamped {
                    Some(c) => Some(c),
                    None => clamp_beside(model, sum, shape, axis, &mut clamp)?.map(|c| (c, Some(sum))),
                };
                if let Some((clamped, keep)) = clamped {
                    (op.residual, residual, op.clamp) = (true, Some(other), clamp);
                    (op.keep_sum, kept, end) = (keep.is_some(), keep, clamped);
                }
            }
        }
        // A QDQ model's quantize-dequantize of the output, alone after it: into the epilogue.
        if let Some((q, after)) = fake_quant_after(model, end)? {
            (op.quant, end) = (Some(q), after);
        }
        let g = op.geometry;
        if g.point_stride == 1 && g.out_channel_first && g.points >= 2 * kernels::DIRECT_LANES {
            // OIHW (`[co][ci]`) from `[ci][co]`.
            let oi: Vec<f32> = (0..g.cout * g.cin).map(|i| op.weights[(i % g.cin) * g.cout + i / g.cin]).collect();
            op.by_points = Some(DirectConv::new(g.cin, g.cout, 1, 1, &oi, &bias));
        }
        op.bias = Arc::new(bias);
        let mut patch = TypedModelPatch::default();
        let mut inputs = tvec![patch.tap_model(model, node.inputs[0])?];
        if let Some(r) = residual {
            inputs.push(patch.tap_model(model, r)?);
        }
        let y = patch.wire_node(&node.name, op, &inputs)?;
        patch.shunt_outside(model, end, y[0])?;
        if let Some(sum) = kept {
            patch.shunt_outside(model, sum, y[1])?;
        }
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// The quantize-dequantize whose output `x` is: a [`FakeQuant`]'s, or one fused into the op that
/// computed `x`, or either of those subsampled (a [`Subsample`] keeps values as they are).
fn fake_quantized_by(model: &TypedModel, x: OutletId) -> Option<kernels::FakeQuantParams> {
    let node = model.node(x.node);
    if node.op_is::<Subsample>() {
        return fake_quantized_by(model, node.inputs[0]);
    }
    if let Some(f) = node.op_as::<FakeQuant>() {
        return Some(f.0);
    }
    if let Some(p) = node.op_as::<PointwiseConv>() {
        // Its second output, the unclamped sum, is not quantized.
        return p.quant.filter(|_| x.slot == 0);
    }
    node.op_as::<SlidingWindow>().and_then(|w| w.quant)
}

/// Gives each [`PointwiseConv`] whose input is the output of a quantize-dequantize and whose
/// weights are int8 levels (a QDQ model's 1x1 convolutions) its integer form,
/// [`PointwiseConv::int8`], and each such [`DirectConv`] with unit strides and no padding
/// (mini-XCEPTION's second stem) [`DirectConv::int8`]. Returns how many. (`tune` runs it where [`kernels::int8_build`] says
/// the machine has integer kernels faster than its f32 ones.)
pub fn integer_pointwise(model: &mut TypedModel) -> TractResult<usize> {
    let mut converted = 0;
    for id in 0..model.nodes().len() {
        let node = model.node(id);
        if let Some(op) = node.op_as::<DirectConv>() {
            // Whole groups of 4 input channels: a 1-channel stem (the image) would multiply 3 of
            // 4 bytes by zero, and pack one value at a time.
            let in_place = op.strides == (1, 1) && op.pads == [0; 4] && op.cin.is_multiple_of(4);
            let shape = model.outlet_fact(node.inputs[0])?.shape.as_concrete().map(|s| s.to_vec());
            let wide = match shape.as_deref() {
                Some(&[_, _, h, w]) => op.geometry(h, w).is_some_and(|g| kernels::direct_int8_applies(g.ow)),
                _ => false,
            };
            let levels = fake_quantized_by(model, node.inputs[0]).as_ref().and_then(kernels::Levels::of);
            let Some(levels) = levels.filter(|_| in_place && wide) else { continue };
            let shape = (op.cin, op.cout, op.kh, op.kw);
            let Some(q) = kernels::Int8Direct::new(&op.packed, op.bias.len(), &op.bias, shape, levels) else {
                continue;
            };
            let op = DirectConv { int8: Some(Arc::new(q)), ..op.clone() };
            model.node_mut(id).op = Box::new(op);
            converted += 1;
            continue;
        }
        // A layer run by points (channel-first both sides) stays f32: its direct kernel stores
        // whole vectors of points where the integer blocks would transpose (Cortex-A76,
        // MobileNetV2-0.25's 576-point 8 -> 8 layer: 0.029 M instructions f32, 0.040 M in integers).
        let Some(op) = node.op_as::<PointwiseConv>().filter(|op| op.by_points.is_none()) else { continue };
        let Some(levels) = fake_quantized_by(model, node.inputs[0]).as_ref().and_then(kernels::Levels::of) else {
            continue;
        };
        let g = op.geometry;
        let Some(q) = kernels::Int8Pointwise::new(&op.weights, &op.bias, g.cin, g.cout, levels) else { continue };
        let op = PointwiseConv { int8: Some(Arc::new(q)), ..op.clone() };
        model.node_mut(id).op = Box::new(op);
        converted += 1;
    }
    Ok(converted)
}

/// The `Add` that alone follows `end` (the output of node `from`, or of what is fused into it)
/// with another f32 tensor of `shape` that is not a constant and does not depend on `from`: its
/// output and that other operand.
fn residual_add(
    model: &TypedModel,
    from: usize,
    end: OutletId,
    shape: &[usize],
) -> TractResult<Option<(OutletId, OutletId)>> {
    let next = model.outlet_successors(end);
    if next.len() != 1 || model.output_outlets()?.contains(&end) {
        return Ok(None);
    }
    let add = model.node(next[0].node);
    let is_add = add.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<Add>());
    if !is_add || add.inputs.len() != 2 || add.outputs.len() != 1 {
        return Ok(None);
    }
    let other = add.inputs[1 - next[0].slot];
    let fact = model.outlet_fact(other)?;
    if fact.konst.is_some()
        || fact.datum_type != f32::datum_type()
        || fact.shape.as_concrete() != Some(shape)
        || model.outlet_fact(OutletId::new(add.id, 0))?.shape.as_concrete() != Some(shape)
    {
        return Ok(None);
    }
    // `other` must not be computed from `from` (it becomes an input of the fused op).
    let mut todo = vec![other.node];
    let mut seen = std::collections::HashSet::new();
    while let Some(n) = todo.pop() {
        if n == from {
            return Ok(None);
        }
        if seen.insert(n) {
            todo.extend(model.node(n).inputs.iter().map(|i| i.node));
        }
    }
    Ok(Some((OutletId::new(add.id, 0), other)))
}

/// Among the several users of `sum`, the first `Max` or `Min` with a constant scalar: fuses it
/// and the clamps that follow it alone into `clamp`, and returns the outlet they end at.
fn clamp_beside(
    model: &TypedModel,
    sum: OutletId,
    shape: &[usize],
    channel_axis: usize,
    clamp: &mut (f32, f32),
) -> TractResult<Option<OutletId>> {
    for next in model.outlet_successors(sum) {
        let succ = model.node(next.node);
        let Some(bin) = succ.op_as::<TypedBinOp>() else { continue };
        let out = OutletId::new(succ.id, 0);
        if succ.inputs.len() != 2 || model.outlet_fact(out)?.shape.as_concrete() != Some(shape) {
            continue;
        }
        let Some(v) = scalar_operand(model, succ, sum) else { continue };
        if bin.0.is::<Max>() {
            *clamp = (clamp.0.max(v), clamp.1.max(v));
        } else if bin.0.is::<Min>() {
            *clamp = (clamp.0.min(v), clamp.1.min(v));
        } else {
            continue;
        }
        return Ok(Some(fuse_epilogue(model, out, shape, channel_axis, None, clamp)?));
    }
    Ok(None)
}

/// The [`PointwiseConv`] an `EinSum` node is (no bias or clamp yet), if it is one.
fn pointwise_of(model: &TypedModel, id: usize) -> TractResult<Option<PointwiseConv>> {
    let node = model.node(id);
    let op = node.op_as::<EinSum>().unwrap();
    if op.q_params.is_some() || op.operating_dt != f32::datum_type() || node.inputs.len() != 2 {
        return Ok(None);
    }
    let x = model.outlet_fact(node.inputs[0])?;
    let out = model.outlet_fact(OutletId::new(id, 0))?;
    let (Some(xs), Some(os), Some(k)) =
        (x.shape.as_concrete(), out.shape.as_concrete(), model.outlet_fact(node.inputs[1])?.konst.clone())
    else {
        return Ok(None);
    };
    if x.datum_type != f32::datum_type() || k.datum_type() != f32::datum_type() || k.rank() != 2 || os.is_empty() {
        return Ok(None);
    }
    // One contracted axis (input channels), one axis only the weights and the output have (output
    // channels), and the points' axes, in the same order on both sides.
    let (mut contracted, mut produced, mut shared) = (None, None, vec![]);
    for axis in op.axes.iter_all_axes() {
        let (a, b, o) = (&axis.inputs[0], &axis.inputs[1], &axis.outputs[0]);
        match (a.len(), b.len(), o.len()) {
            (1, 1, 0) if contracted.is_none() => contracted = Some((a[0], b[0])),
            (0, 1, 1) if produced.is_none() => produced = Some((b[0], o[0])),
            (1, 0, 1) => shared.push((a[0], o[0])),
            (1, 0, 0) if xs[a[0]] == 1 => {}
            (0, 0, 1) if os[o[0]] == 1 => {}
            _ => return Ok(None),
        }
    }
    let (Some((ci_x, ci_k)), Some((co_k, co_o))) = (contracted, produced) else { return Ok(None) };
    let (in_channel_first, out_channel_first) = (ci_x != xs.len() - 1, co_o != os.len() - 1);
    if ci_k == co_k {
        return Ok(None);
    }
    shared.retain(|&(a, _)| xs[a] != 1);
    shared.sort();
    if shared.windows(2).any(|w| w[0].1 > w[1].1) || shared.iter().any(|&(a, o)| xs[a] != os[o]) {
        return Ok(None);
    }
    // Channel-first data may have one axis before its channels: the outermost of the points' axes
    // (a batch), run image by image.
    let leading = |dims: &[usize], first: bool| if first { dims.iter().filter(|d| **d != 1).count() } else { 0 };
    let batch = match leading(&xs[..ci_x], in_channel_first).max(leading(&os[..co_o], out_channel_first)) {
        0 => 1,
        1 => xs[shared[0].0],
        _ => return Ok(None),
    };
    let (cin, cout) = (xs[ci_x], os[co_o]);
    let points: usize = os.iter().product::<usize>() / (cout * batch).max(1);
    if batch * points * cin != xs.iter().product::<usize>() || k.shape()[ci_k] != cin || k.shape()[co_k] != cout {
        return Ok(None);
    }
    let (point_stride, channel_stride) = if in_channel_first { (1, points) } else { (cin, 1) };
    let k = k.try_as_plain_ram()?;
    let k = k.as_slice::<f32>()?;
    let mut weights = vec![0.0; cin * cout];
    for ci in 0..cin {
        for co in 0..cout {
            weights[ci * cout + co] = if ci_k == 1 { k[co * cin + ci] } else { k[ci * cout + co] };
        }
    }
    let geometry = kernels::PointwiseGeometry { points, cin, cout, point_stride, channel_stride, out_channel_first };
    Ok(Some(PointwiseConv {
        geometry,
        blocked: kernels::pointwise_blocked_weights(&weights, &geometry).map(Arc::new),
        weights: Arc::new(weights),
        bias: Arc::new(vec![0.0; cout]),
        clamp: kernels::NO_CLAMP,
        output_shape: os.into(),
        channel_axis: co_o,
        batch,
        by_points: None,
        residual: false,
        keep_sum: false,
        quant: None,
        int8: None,
    }))
}

/// Runs depthwise convolutions and max-pools channel-last: each f32 NCHW one is wrapped in a
/// move of the channel axis to last and back, and runs NHWC; tract's declutter then cancels the
/// moves that meet. Dense convolutions keep their layout (channel-last they cost more moves than
/// they save: face-api.js's dense blocks).
pub fn channel_last(model: &mut TypedModel) -> TractResult<()> {
    let ids: Vec<usize> = model.nodes().iter().map(|n| n.id).collect();
    for id in ids {
        let node = model.node(id);
        let Some(x) = node.inputs.first().and_then(|i| model.outlet_fact(*i).ok()) else { continue };
        if x.datum_type != f32::datum_type() || x.rank() != 4 || node.outputs.len() != 1 {
            continue;
        }
        let nhwc: Box<dyn TypedOp> = if let Some(conv) = node.op_as::<Conv>() {
            let c = conv.input_channels();
            if conv.q_params.is_some()
                || conv.pool_spec.data_format != DataFormat::NCHW
                || conv.group != c
                || conv.output_channels() != c
            {
                continue;
            }
            let mut conv = conv.clone();
            conv.pool_spec.data_format = DataFormat::NHWC;
            Box::new(conv)
        } else if let Some(pool) = node.op_as::<MaxPool>() {
            if pool.with_index_outputs.is_some() || pool.pool_spec.data_format != DataFormat::NCHW {
                continue;
            }
            let mut pool = pool.clone();
            pool.pool_spec.data_format = DataFormat::NHWC;
            Box::new(pool)
        } else {
            continue;
        };
        let node = node.clone();
        let mut patch = TypedModelPatch::default();
        let mut inputs = patch.taps(model, &node.inputs)?;
        inputs[0] = patch.wire_node(format!("{}.nhwc_in", node.name), AxisOp::Move(1, 3), &inputs[..1])?[0];
        let y = patch.wire_node(&node.name, nhwc, &inputs)?;
        let y = patch.wire_node(format!("{}.nhwc_out", node.name), AxisOp::Move(3, 1), &y)?;
        patch.shunt_outside(model, id.into(), y[0])?;
        patch.apply(model)?;
    }
    Ok(())
}

/// An f32 depthwise convolution (with its bias) or max-pool, with a clamp (ReLU, ReLU6) fused,
/// image by image: channel-last [`kernels::depthwise_hwc`] or [`kernels::max_pool_hwc`], or
/// channel-first [`kernels::depthwise_chw`].
#[derive(Debug, Clone, PartialEq)]
pub struct SlidingWindow {
    pub geometry: kernels::WindowGeometry,
    pub batch: usize,
    /// Whether input and output have a batch axis (NHWC, NCHW) or not (HWC, CHW: one image).
    pub batch_axis: bool,
    /// Channel-first (NCHW, CHW: depthwise convolutions only) rather than channel-last.
    pub channel_first: bool,
    /// A depthwise convolution's weights; `None` for a max-pool.
    pub conv: Option<DepthwiseWeights>,
    /// Lower and upper bound of the output (infinite when nothing is fused).
    pub clamp: (f32, f32),
    /// A QDQ model's quantize-dequantize of the (clamped) output, where a [`FakeQuant`] was its
    /// only reader: in the channel-last depthwise kernel's epilogue, a pass after the others.
    pub quant: Option<kernels::FakeQuantParams>,
}

/// A depthwise convolution's kernel (`[ky][kx][c]` for channel-last data, `[c][ky][kx]` for
/// channel-first) and bias.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthwiseWeights {
    pub kernel: Arc<Vec<f32>>,
    pub bias: Arc<Vec<f32>>,
}

impl Eq for SlidingWindow {}

impl std::hash::Hash for SlidingWindow {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.geometry, self.batch, self.batch_axis, self.channel_first).hash(state);
        (self.clamp.0.to_bits(), self.clamp.1.to_bits()).hash(state);
        self.quant.map(FakeQuant).hash(state);
        if let Some(DepthwiseWeights { kernel, bias }) = &self.conv {
            kernel.iter().chain(bias.iter()).for_each(|v| v.to_bits().hash(state));
        }
    }
}

impl SlidingWindow {
    fn shape(&self, h: usize, w: usize) -> TVec<usize> {
        let c = self.geometry.c;
        let mut s: TVec<usize> = if self.channel_first { tvec![c, h, w] } else { tvec![h, w, c] };
        if self.batch_axis {
            s.insert(0, self.batch);
        }
        s
    }

    fn output_shape(&self) -> TVec<usize> {
        self.shape(self.geometry.oh, self.geometry.ow)
    }
}

impl Op for SlidingWindow {
    fn name(&self) -> StaticName {
        match (self.conv.is_some(), self.channel_first) {
            (true, false) => "DepthwiseNhwc",
            (true, true) => "DepthwiseNchw",
            (false, _) => "MaxPoolNhwc",
        }
        .into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = &self.geometry;
        Ok(vec![format!(
            "{} x {}x{}x{}, {}x{} window, strides {}x{}, padding {}x{} before, clamp {:?}{}",
            self.batch,
            g.h,
            g.w,
            g.c,
            g.kh,
            g.kw,
            g.sh,
            g.sw,
            g.pad_top,
            g.pad_left,
            self.clamp,
            fake_quantized(&self.quant)?
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for SlidingWindow {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let g = &self.geometry;
        let want = self.shape(g.h, g.w);
        ensure!(input.shape() == &*want, "{}: input {:?}, expected {want:?}", self.name(), input.shape());
        let x = input.try_as_plain_ram()?;
        // SAFETY: the kernels write every element.
        let mut out = unsafe { Tensor::uninitialized::<f32>(&self.output_shape())? };
        {
            let mut o = out.try_as_plain_ram_mut()?;
            let (x, o) = (x.as_slice::<f32>()?, o.as_slice_mut::<f32>()?);
            let (xn, on) = (g.h * g.w * g.c, g.oh * g.ow * g.c);
            for (x, o) in x.chunks_exact(xn.max(1)).zip(o.chunks_exact_mut(on.max(1))) {
                match &self.conv {
                    Some(DepthwiseWeights { kernel: k, bias: b }) if self.channel_first => {
                        kernels::depthwise_chw(x, k, b, g, self.clamp, o);
                        if let Some(q) = &self.quant {
                            kernels::fake_quant(o, q);
                        }
                    }
                    Some(DepthwiseWeights { kernel: k, bias: b }) => {
                        kernels::depthwise_hwc(x, k, b, g, self.clamp, self.quant, o)
                    }
                    None => {
                        kernels::max_pool_hwc(x, g, self.clamp, o);
                        if let Some(q) = &self.quant {
                            kernels::fake_quant(o, q);
                        }
                    }
                }
            }
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for SlidingWindow {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*self.output_shape())))
    }

    as_op!();
}

/// Replaces each f32 depthwise convolution (constant OIHW weights and bias, no dilation) and
/// channel-last max-pool (no index output, no dilation) by a [`SlidingWindow`], fusing the clamps
/// that follow it. Returns how many it replaced.
pub fn sliding_windows(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    let ids: Vec<usize> = model.nodes().iter().map(|n| n.id).collect();
    for id in ids {
        let node = model.node(id);
        let Some(x) = node.inputs.first().and_then(|i| model.outlet_fact(*i).ok()) else { continue };
        // With or without a batch axis (tract removes it from a single image's data).
        let (batch_axis, (n, dims)) = match x.shape.as_concrete() {
            Some(&[n, a, b, c]) => (true, (n, [a, b, c])),
            Some(&[a, b, c]) => (false, (1, [a, b, c])),
            _ => continue,
        };
        let format = |first: bool| match (batch_axis, first) {
            (true, false) => DataFormat::NHWC,
            (true, true) => DataFormat::NCHW,
            (false, false) => DataFormat::HWC,
            (false, true) => DataFormat::CHW,
        };
        let Some(channel_first) = [false, true].into_iter().find(|first| {
            let spec = node.op_as::<Conv>().map(|c| &c.pool_spec).or(node.op_as::<MaxPool>().map(|p| &p.pool_spec));
            spec.is_some_and(|s| s.data_format == format(*first))
        }) else {
            continue;
        };
        let [h, w, c] = if channel_first { [dims[1], dims[2], dims[0]] } else { dims };
        if x.datum_type != f32::datum_type() || node.outputs.len() != 1 {
            continue;
        }
        let (spec, conv) = if let Some(conv) = node.op_as::<Conv>() {
            if conv.q_params.is_some()
                || conv.group != c
                || conv.output_channels() != c
                || conv.kernel_fmt != KernelFormat::OIHW
                || node.inputs.len() != 3
            {
                continue;
            }
            let (Some(k), Some(b)) =
                (model.outlet_fact(node.inputs[1])?.konst.clone(), model.outlet_fact(node.inputs[2])?.konst.clone())
            else {
                continue;
            };
            let (kh, kw) = (conv.pool_spec.kernel_shape[0], conv.pool_spec.kernel_shape[1]);
            if k.shape() != [c, 1, kh, kw] || k.datum_type() != f32::datum_type() || b.datum_type() != f32::datum_type()
            {
                continue;
            }
            let k = k.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
            let b = b.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
            let bias = match b.len() {
                1 => vec![b[0]; c],
                l if l == c => b,
                _ => continue,
            };
            // `[c][ky][kx]` as it comes for channel-first data, `[ky][kx][c]` for channel-last.
            let k = if channel_first {
                k
            } else {
                let mut hwc = vec![0.0; c * kh * kw];
                for ch in 0..c {
                    for tap in 0..kh * kw {
                        hwc[tap * c + ch] = k[ch * kh * kw + tap];
                    }
                }
                hwc
            };
            (&conv.pool_spec, Some(DepthwiseWeights { kernel: Arc::new(k), bias: Arc::new(bias) }))
        } else if let Some(pool) = node.op_as::<MaxPool>() {
            // (Channel-first max-pools stay tract's.)
            if pool.with_index_outputs.is_some() || channel_first {
                continue;
            }
            (&pool.pool_spec, None)
        } else {
            continue;
        };
        if spec.rank() != 2 || (0..2).any(|a| spec.dilation(a) != 1) {
            continue;
        }
        let pad = spec.computed_padding(&[h, w]);
        let geometry = kernels::WindowGeometry {
            h,
            w,
            c,
            kh: spec.kernel_shape[0],
            kw: spec.kernel_shape[1],
            sh: spec.stride(0),
            sw: spec.stride(1),
            pad_top: pad[0].pad_before,
            pad_left: pad[1].pad_before,
            oh: pad[0].convoluted,
            ow: pad[1].convoluted,
        };
        let clamp = kernels::NO_CLAMP;
        let mut op = SlidingWindow { geometry, batch: n, batch_axis, channel_first, conv, clamp, quant: None };
        if !geometry.is_valid() || model.outlet_fact(id.into())?.shape.as_concrete() != Some(&op.output_shape()[..]) {
            continue;
        }
        let input = node.inputs[0];
        let name = node.name.clone();
        let shape = op.output_shape();
        let channel_axis = if channel_first { shape.len() - 3 } else { shape.len() - 1 };
        let mut end = fuse_epilogue(model, id.into(), &shape, channel_axis, None, &mut op.clamp)?;
        if let Some((q, after)) = fake_quant_after(model, end)? {
            (op.quant, end) = (Some(q), after);
        }
        let mut patch = TypedModelPatch::default();
        let input = patch.tap_model(model, input)?;
        let y = patch.wire_node(name, op, &[input])?;
        patch.shunt_outside(model, end, y[0])?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// Keeps every `strides[axis]`-th point along each axis, starting at 0 (f32).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subsample {
    pub strides: TVec<usize>,
}

impl Subsample {
    fn output_shape(&self, input: &[usize]) -> TVec<usize> {
        input.iter().zip(&self.strides).map(|(d, s)| d.div_ceil(*s)).collect()
    }
}

impl Op for Subsample {
    fn name(&self) -> StaticName {
        "Subsample".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("strides {:?}", self.strides)])
    }

    op_as_typed_op!();
}

impl EvalOp for Subsample {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        ensure!(
            input.rank() == self.strides.len(),
            "Subsample: rank {} input, {} strides",
            input.rank(),
            self.strides.len()
        );
        let shape = input.shape().to_vec();
        let out_shape = self.output_shape(&shape);
        let x = input.try_as_plain_ram()?;
        let x = x.as_slice::<f32>()?;
        let mut in_strides = vec![1usize; shape.len()];
        for a in (0..shape.len().saturating_sub(1)).rev() {
            in_strides[a] = in_strides[a + 1] * shape[a + 1];
        }
        /// Copies the kept points of the block at `off` along axes `a..` to `out`, returns how
        /// many.
        fn copy(a: usize, off: usize, x: &[f32], s: &[usize], is: &[usize], os: &[usize], out: &mut [f32]) -> usize {
            if a + 1 == os.len() {
                let out = &mut out[..os[a]];
                if s[a] == 1 {
                    out.copy_from_slice(&x[off..off + os[a]]);
                } else if s[a] == 2 {
                    kernels::every_other(&x[off..], out);
                } else {
                    for (o, x) in out.iter_mut().zip(x[off..].iter().step_by(s[a])) {
                        *o = *x;
                    }
                }
                return os[a];
            }
            let mut n = 0;
            for i in 0..os[a] {
                n += copy(a + 1, off + i * s[a] * is[a], x, s, is, os, &mut out[n..]);
            }
            n
        }
        let mut y = Tensor::zero::<f32>(&out_shape)?;
        if !out_shape.is_empty() && out_shape.iter().all(|d| *d > 0) {
            let mut o = y.try_as_plain_ram_mut()?;
            let out = o.as_slice_mut::<f32>()?;
            let n = copy(0, 0, x, &self.strides, &in_strides, &out_shape, out);
            ensure!(n == out.len(), "Subsample: {n} of {} points copied", out.len());
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for Subsample {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = inputs[0].shape.as_concrete().context("Subsample needs a concrete input shape")?;
        ensure!(s.len() == self.strides.len());
        Ok(tvec!(f32::fact(self.output_shape(s))))
    }

    /// Follows any move, insertion or removal (of an unsampled axis) of its axes: what lets a
    /// residual branch go channel-last with its block.
    fn change_axes(
        &self,
        model: &TypedModel,
        node: &TypedNode,
        _io: InOut,
        change: &AxisOp,
    ) -> TractResult<Option<AxisChangeConsequence>> {
        if matches!(change, AxisOp::Reshape(..)) || matches!(change, AxisOp::Rm(a) if self.strides[*a] != 1) {
            return Ok(None);
        }
        let mut strides = self.strides.clone();
        change.change_shape_array(&mut strides, false)?;
        let op = Subsample { strides };
        Ok(Some(AxisChangeConsequence::new(model, node, Some(Box::new(op)), change)))
    }

    as_op!();
}

/// Replaces tract's f32 `Downsample`s (stride > 0, modulo 0), a chain of them by one
/// [`Subsample`]. Returns how many `Subsample`s it wired.
pub fn subsamples(model: &mut TypedModel) -> TractResult<usize> {
    let simple = |n: &TypedNode| n.op_as::<Downsample>().filter(|d| d.stride > 0 && d.modulo == 0).cloned();
    let mut wired = 0;
    loop {
        // A chain's head: a simple Downsample whose input is not one.
        let head = model.nodes().iter().find(|n| {
            simple(n).is_some()
                && simple(model.node(n.inputs[0].node)).is_none()
                && model
                    .outlet_fact(n.inputs[0])
                    .is_ok_and(|f| f.datum_type == f32::datum_type() && f.shape.as_concrete().is_some())
        });
        let Some(head) = head else { break };
        let rank = model.outlet_fact(head.inputs[0])?.rank();
        let mut strides: TVec<usize> = tvec![1; rank];
        let mut last = head.id;
        loop {
            let d = simple(model.node(last)).unwrap();
            strides[d.axis] *= d.stride as usize;
            let succ = &model.node(last).outputs[0].successors;
            if succ.len() != 1 || model.output_outlets()?.contains(&OutletId::new(last, 0)) {
                break;
            }
            let next = model.node(succ[0].node);
            if simple(next).is_none() {
                break;
            }
            last = next.id;
        }
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, head.inputs[0])?;
        let name = format!("{}.subsample", model.node(head.id).name);
        let y = patch.wire_node(name, Subsample { strides }, &[x])?;
        patch.shunt_outside(model, last.into(), y[0])?;
        patch.apply(model)?;
        model.compact()?;
        wired += 1;
    }
    Ok(wired)
}

/// A QDQ model's quantize-dequantize pair on an f32 activation (tract's `QuantizeLinearU8` or
/// `I8` and the `DequantizeLinearF32`s reading it) as one f32 pass, [`kernels::fake_quant`], in
/// place where the input is not shared. Same results bit for bit; what the int8 (QDQ) model
/// computes is unchanged, only its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeQuant(pub kernels::FakeQuantParams);

impl Eq for FakeQuant {}

impl std::hash::Hash for FakeQuant {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let p = &self.0;
        [p.inv_scale, p.lo, p.hi, p.offset, p.scale].iter().for_each(|v| v.to_bits().hash(state));
    }
}

impl Op for FakeQuant {
    fn name(&self) -> StaticName {
        "FakeQuant".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let p = &self.0;
        Ok(vec![format!("x {}, levels {}..={}, offset {}, scale {}", p.inv_scale, p.lo, p.hi, p.offset, p.scale)])
    }

    op_as_typed_op!();
}

impl EvalOp for FakeQuant {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let mut t = args_1!(inputs).into_tensor();
        {
            let mut x = t.try_as_plain_ram_mut()?;
            kernels::fake_quant(x.as_slice_mut::<f32>()?, &self.0);
        }
        Ok(tvec!(t.into_tvalue()))
    }
}

impl TypedOp for FakeQuant {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == f32::datum_type(), "FakeQuant: {:?} input", inputs[0].datum_type);
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    fn axes_mapping(&self, inputs: &[&TypedFact], outputs: &[&TypedFact]) -> TractResult<AxesMapping> {
        AxesMapping::natural(inputs, outputs)
    }

    /// Element-wise: follows any layout change, so layout moves cross it as they crossed tract's
    /// quantize and dequantize ops.
    fn change_axes(
        &self,
        model: &TypedModel,
        node: &TypedNode,
        _io: InOut,
        change: &AxisOp,
    ) -> TractResult<Option<AxisChangeConsequence>> {
        Ok(Some(AxisChangeConsequence::new(model, node, None, change)))
    }

    as_op!();
}

/// The [`FakeQuant`] that alone reads `end` (not a model output), and its output: what an op
/// that takes the quantize-dequantize into its epilogue then stands for.
fn fake_quant_after(model: &TypedModel, end: OutletId) -> TractResult<Option<(kernels::FakeQuantParams, OutletId)>> {
    let [only] = model.outlet_successors(end) else { return Ok(None) };
    let Some(fq) = model.node(only.node).op_as::<FakeQuant>() else { return Ok(None) };
    if model.output_outlets()?.contains(&end) {
        return Ok(None);
    }
    Ok(Some((fq.0, OutletId::new(only.node, 0))))
}

/// ", fake-quantized (...)" for an op's info where it has a quantize-dequantize fused.
fn fake_quantized(quant: &Option<kernels::FakeQuantParams>) -> TractResult<String> {
    Ok(match quant {
        Some(q) => format!(", fake-quantized ({})", FakeQuant(*q).info()?.join("")),
        None => String::new(),
    })
}

/// The `DequantizeLinearF32` that node `id` is, or that a chain of `Downsample`s from `id`, each
/// alone read and none a model output, ends in: the chain, its id and the op.
fn dequantizer_after(
    model: &TypedModel,
    outputs: &[OutletId],
    mut id: usize,
) -> Option<(Vec<Downsample>, usize, tract_onnx::tract_core::ops::quant::DequantizeLinearF32)> {
    use tract_onnx::tract_core::ops::quant::DequantizeLinearF32;
    let mut chain = vec![];
    while let Some(d) = model.node(id).op_as::<Downsample>() {
        let [next] = &*model.node(id).outputs[0].successors else { return None };
        if outputs.contains(&OutletId::new(id, 0)) {
            return None;
        }
        chain.push(d.clone());
        id = next.node;
    }
    Some((chain, id, model.node(id).op_as::<DequantizeLinearF32>()?.clone()))
}

/// Replaces each f32 `QuantizeLinearU8`/`I8` whose readers are all `DequantizeLinearF32`s of one
/// zero point and scale (and which is not a model output) by one [`FakeQuant`]. A reader may also
/// be a chain of tract `Downsample`s ending in such a dequantizer: tract's declutter moves the
/// subsample of a strided 1x1 convolution (a residual branch) up across the dequantizer; the
/// chain then follows the [`FakeQuant`], on f32 (an element-wise op and a subsample commute).
/// Returns how many.
pub fn fake_quants(model: &mut TypedModel) -> TractResult<usize> {
    use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
    use tract_onnx::tract_core::ops::quant::{DequantizeLinearF32, QuantizeLinearI8, QuantizeLinearU8};
    let quantize = |n: &TypedNode| {
        let e = n.op_as::<ElementWiseOp>()?;
        if let Some(q) = e.0.downcast_ref::<QuantizeLinearU8>() {
            Some((q.scale, q.zero_point as f32, 0.0, 255.0))
        } else {
            e.0.downcast_ref::<QuantizeLinearI8>().map(|q| (q.scale, q.zero_point as f32, -128.0, 127.0))
        }
    };
    let mut replaced = 0;
    let ids: Vec<usize> = model.nodes().iter().filter(|n| quantize(n).is_some()).map(|n| n.id).collect();
    let outputs = model.output_outlets()?.to_vec();
    for id in ids {
        let node = model.node(id).clone();
        let (inv_scale, zq, qmin, qmax) = quantize(&node).unwrap();
        if model.outlet_fact(node.inputs[0])?.datum_type != f32::datum_type() || outputs.contains(&OutletId::new(id, 0))
        {
            continue;
        }
        // Each reader: the dequantizer, after the subsamples on the way to it.
        let readers: Option<Vec<_>> =
            node.outputs[0].successors.iter().map(|s| dequantizer_after(model, &outputs, s.node)).collect();
        let Some(readers) = readers.filter(|r| !r.is_empty()) else { continue };
        let dq: Vec<&DequantizeLinearF32> = readers.iter().map(|r| &r.2).collect();
        if dq.iter().any(|d| *d != dq[0]) {
            continue;
        }
        let p = kernels::FakeQuantParams {
            inv_scale,
            lo: qmin - zq,
            hi: qmax - zq,
            offset: zq - dq[0].zero_point as f32,
            scale: dq[0].scale,
        };
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, node.inputs[0])?;
        let y = patch.wire_node(format!("{}.fake_quant", node.name), FakeQuant(p), &[x])?;
        for (chain, dq, _) in readers {
            let mut z = y[0];
            for (i, d) in chain.into_iter().enumerate() {
                z = patch.wire_node(format!("{}.subsample.{i}", model.node(dq).name), d, &[z])?[0];
            }
            patch.shunt_outside(model, dq.into(), z)?;
        }
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// The f32 sum over a run of neighbouring axes (tract's `Reduce<Sum>`, the sum of a global
/// average pool), the summed axes kept with size 1: `y[o, 0, i] = Σ_r x[o, r, i]` with `o` the
/// axes before the run, `r` the run, `i` the axes after it. (tract's generic reduction took
/// 0.068 M cortex-a72 instructions for MobileNetV2-0.5's 1280 x 4 values.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SumAxes {
    /// The input's shape.
    pub shape: TVec<usize>,
    /// The first and one past the last summed axis.
    pub axes: std::ops::Range<usize>,
}

impl SumAxes {
    fn output_shape(&self) -> TVec<usize> {
        let mut s = self.shape.clone();
        s[self.axes.clone()].iter_mut().for_each(|d| *d = 1);
        s
    }
}

impl Op for SumAxes {
    fn name(&self) -> StaticName {
        "SumAxes".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}, axes {:?}", self.shape, self.axes)])
    }

    op_as_typed_op!();
}

impl EvalOp for SumAxes {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        ensure!(input.shape() == &*self.shape, "SumAxes: input {:?}, expected {:?}", input.shape(), self.shape);
        let x = input.try_as_plain_ram()?;
        let x = x.as_slice::<f32>()?;
        let run: usize = self.shape[self.axes.clone()].iter().product();
        let inner: usize = self.shape[self.axes.end..].iter().product();
        let mut y = Tensor::zero::<f32>(&self.output_shape())?;
        {
            let mut o = y.try_as_plain_ram_mut()?;
            let out = o.as_slice_mut::<f32>()?;
            if inner == 1 {
                kernels::sum_runs(x, run, out);
            } else if run > 0 && inner > 0 {
                for (src, dst) in x.chunks_exact(run * inner).zip(out.chunks_exact_mut(inner)) {
                    for row in src.chunks_exact(inner) {
                        for (d, v) in dst.iter_mut().zip(row) {
                            *d += v;
                        }
                    }
                }
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for SumAxes {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(self.output_shape())))
    }

    as_op!();
}

/// Replaces each f32 `Reduce<Sum>` over a run of neighbouring axes of a tensor of known shape
/// by [`SumAxes`]. Returns how many it replaced.
pub fn sums(model: &mut TypedModel) -> TractResult<usize> {
    use tract_onnx::tract_core::ops::nn::{Reduce, Reducer};
    let mut replaced = 0;
    let ids: Vec<usize> = model.nodes().iter().filter(|n| n.op_is::<Reduce>()).map(|n| n.id).collect();
    for id in ids {
        let node = model.node(id);
        let reduce = node.op_as::<Reduce>().unwrap();
        let x = model.outlet_fact(node.inputs[0])?;
        let Some(shape) = x.shape.as_concrete() else { continue };
        let mut axes = reduce.axes.clone();
        axes.sort_unstable();
        let run = axes.first().map(|&a| a..a + axes.len());
        let Some(run) = run.filter(|r| axes.iter().copied().eq(r.clone()) && r.end <= shape.len()) else { continue };
        if !matches!(reduce.reducer, Reducer::Sum) || x.datum_type != f32::datum_type() {
            continue;
        }
        let op = SumAxes { shape: shape.into(), axes: run };
        if model.outlet_fact(OutletId::new(id, 0))?.shape.as_concrete() != Some(&op.output_shape()[..]) {
            continue;
        }
        let node = node.clone();
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, node.inputs[0])?;
        let y = patch.wire_node(&node.name, op, &[x])?;
        patch.shunt_outside(model, id.into(), y[0])?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::kernels::tests::values;
    use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::element_wise::{ElementWiseMiniOp, ElementWiseOp};

    fn tensor(shape: &[usize], seed: u32) -> Tensor {
        Tensor::from_shape(shape, &values(shape.iter().product(), seed)).unwrap()
    }

    fn tensor1(shape: &[usize], v: f32) -> Tensor {
        Tensor::from_shape(shape, &vec![v; shape.iter().product()]).unwrap()
    }

    /// The convolution by its definition, in f64, on NCHW / OIHW arrays: strides `(sh, sw)`,
    /// zero padding `[top, bottom, left, right]`.
    fn conv_reference(
        x: &[f32],
        (c, h, w): (usize, usize, usize),
        k: &[f32],
        (o, kh, kw): (usize, usize, usize),
        b: &[f32],
        (sh, sw): (usize, usize),
        [top, bottom, left, right]: [usize; 4],
    ) -> Vec<f32> {
        let (oh, ow) = ((h + top + bottom - kh) / sh + 1, (w + left + right - kw) / sw + 1);
        let mut y = vec![0.0; o * oh * ow];
        for co in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = b[co] as f64;
                    for ci in 0..c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let (iy, ix) = ((oy * sh + ky).wrapping_sub(top), (ox * sw + kx).wrapping_sub(left));
                                if iy < h && ix < w {
                                    s += k[((co * c + ci) * kh + ky) * kw + kx] as f64
                                        * x[(ci * h + iy) * w + ix] as f64;
                                }
                            }
                        }
                    }
                    y[(co * oh + oy) * ow + ox] = s as f32;
                }
            }
        }
        y
    }

    #[test]
    fn direct_conv_matches_the_definition() {
        let unpadded = ((1, 1), [0; 4]);
        for ((c, h, w, o, kh, kw), (strides, pads)) in [
            ((1, 12, 10, 8, 3, 3), unpadded),
            ((8, 9, 17, 8, 3, 3), unpadded),
            ((3, 6, 8, 5, 1, 1), unpadded),
            ((2, 5, 13, 16, 2, 3), unpadded),
            ((4, 7, 11, 11, 3, 2), unpadded),
            // Rows of 16 points or more (the 16-point blocks; on aarch64 the NEON block with
            // its taps unrolled for 3 and 1 columns, and not for 5).
            ((8, 5, 19, 8, 3, 3), unpadded),
            ((3, 4, 21, 6, 1, 1), unpadded),
            ((2, 6, 22, 7, 2, 5), unpadded),
            // MobileNetV2's stem, then lopsided padding and strides.
            ((1, 48, 48, 16, 3, 3), ((2, 2), [1, 1, 1, 1])),
            ((3, 17, 25, 5, 3, 3), ((2, 3), [0, 1, 2, 1])),
            ((2, 9, 20, 8, 5, 5), ((1, 2), [2, 2, 2, 2])),
            ((1, 6, 9, 9, 2, 2), ((3, 1), [1, 0, 0, 0])),
            // Column stride 2 with no padding (a copy split by phase from column 0) and a
            // ResNet-like 7x7 stem (3 columns of padding: both phases start past column 0).
            ((2, 8, 23, 8, 3, 3), ((1, 2), [0, 0, 0, 0])),
            ((1, 5, 30, 8, 7, 7), ((2, 2), [3, 3, 3, 3])),
            // Rows of 32 points or more (the AVX-512 build's blocks of 2 x 16 points x 8
            // channels): a face-api.js-like strided stem with 20 channels (a last block of 4),
            // an unpadded row of 38 (a last block overlapping by 26), and a 1x1 convolution
            // along 100 points, as channel-first pointwise layers run.
            ((3, 9, 70, 20, 3, 3), ((2, 2), [0, 1, 0, 1])),
            ((2, 4, 40, 8, 3, 3), unpadded),
            ((5, 1, 100, 13, 1, 1), unpadded),
            // Last 32-point blocks overlapping the one before by 8 (face-api.js's stem rows of
            // 56 points, stride 2, padded after the image), 16, 20 and 3 points.
            ((3, 5, 112, 16, 3, 3), ((2, 2), [0, 0, 1, 1])),
            ((2, 2, 48, 8, 1, 1), unpadded),
            ((2, 3, 46, 8, 3, 3), unpadded),
            ((1, 3, 63, 9, 3, 3), unpadded),
        ] {
            let x = values(c * h * w, 7);
            let k = values(o * c * kh * kw, 8);
            let b = values(o, 9);
            for clamp in [kernels::NO_CLAMP, (0.0, 0.5)] {
                let mut op = DirectConv::new(c, o, kh, kw, &k, &b);
                (op.clamp, op.strides, op.pads) = (clamp, strides, pads);
                let input = Tensor::from_shape(&[1, c, h, w], &x).unwrap();
                let got = op.eval(&EvalContext::out_of_plan(), tvec!(input.into_tvalue())).unwrap().remove(0);
                let got = got.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec();
                let want = conv_reference(&x, (c, h, w), &k, (o, kh, kw), &b, strides, pads);
                assert_eq!(got.len(), want.len());
                for (i, (g, v)) in got.iter().zip(&want).enumerate() {
                    let v = v.max(clamp.0).min(clamp.1);
                    assert!(
                        (g - v).abs() < 1e-5,
                        "{c}x{h}x{w} -> {o}, {kh}x{kw} {strides:?} {pads:?} {clamp:?}: element {i}: {g} vs {v}"
                    );
                }
                // Every build this machine has, without and with a residual added before the
                // clamp (the sum kept unclamped).
                let geo = op.geometry(h, w).unwrap();
                let add = values(want.len(), 10);
                for &build in kernels::Build::all().iter().filter(|b| b.available()) {
                    let context = format!("{build:?} {c}x{h}x{w} -> {o}, {kh}x{kw} {strides:?} {pads:?} {clamp:?}");
                    let mut got = vec![f32::NAN; want.len()];
                    kernels::direct_conv_in(build, &x, &op.packed, &op.bias, &geo, clamp, None, &mut got);
                    for (i, (g, v)) in got.iter().zip(&want).enumerate() {
                        assert!((g - v.max(clamp.0).min(clamp.1)).abs() < 1e-5, "{context}: element {i}: {g}");
                    }
                    let (mut got, mut kept) = (vec![f32::NAN; want.len()], vec![f32::NAN; want.len()]);
                    let r = kernels::Residual { add: &add, keep: Some(&mut kept) };
                    kernels::direct_conv_in(build, &x, &op.packed, &op.bias, &geo, clamp, Some(r), &mut got);
                    for (i, ((g, k), (v, a))) in got.iter().zip(&kept).zip(want.iter().zip(&add)).enumerate() {
                        let context = format!("{context} + residual");
                        assert!((k - (v + a)).abs() < 1e-5, "{context}: element {i} kept {k} vs {}", v + a);
                        assert!((g - (v + a).max(clamp.0).min(clamp.1)).abs() < 1e-5, "{context}: element {i}: {g}");
                    }
                }
            }
        }
    }

    #[test]
    fn subsample_keeps_every_strided_point() {
        // Channel-first with a strided last axis (stride 2: rows whose last point is the
        // tensor's last value, rows of 21 and of 16 points: the aarch64 four-at-a-time load and
        // what it leaves); channel-last with runs of channels that are and are not a multiple of 8.
        for (shape, strides) in [
            ([2, 3, 7, 5], [1, 2, 2, 3]),
            ([1, 2, 6, 21], [1, 1, 2, 2]),
            ([1, 1, 3, 16], [1, 1, 1, 2]),
            ([1, 7, 6, 13], [1, 2, 2, 1]),
            ([2, 5, 5, 16], [1, 2, 3, 1]),
        ] {
            let x = values(shape.iter().product(), 4);
            let op = Subsample { strides: strides.into_iter().collect() };
            let input = Tensor::from_shape(&shape, &x).unwrap();
            let got = op.eval(&EvalContext::out_of_plan(), tvec!(input.into_tvalue())).unwrap().remove(0);
            let out: Vec<usize> = shape.iter().zip(strides).map(|(d, s)| d.div_ceil(s)).collect();
            assert_eq!(got.shape(), &out[..]);
            let got = got.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec();
            let mut want = vec![];
            for a in (0..shape[0]).step_by(strides[0]) {
                for b in (0..shape[1]).step_by(strides[1]) {
                    for c in (0..shape[2]).step_by(strides[2]) {
                        for d in (0..shape[3]).step_by(strides[3]) {
                            want.push(x[((a * shape[1] + b) * shape[2] + c) * shape[3] + d]);
                        }
                    }
                }
            }
            assert_eq!(got, want, "{shape:?} strides {strides:?}");
        }
    }

    fn conv(
        model: &mut TypedModel,
        name: &str,
        x: OutletId,
        (cin, cout, group, k, stride): (usize, usize, usize, usize, usize),
        padding: PaddingSpec,
    ) -> OutletId {
        let seed = name.bytes().map(u32::from).sum::<u32>();
        conv_of(model, name, x, (cin, cout, group, k, stride), padding, tensor(&[cout, cin / group, k, k], seed))
    }

    /// [`conv`] with the given kernel (OIHW).
    fn conv_of(
        model: &mut TypedModel,
        name: &str,
        x: OutletId,
        (cin, cout, group, k, stride): (usize, usize, usize, usize, usize),
        padding: PaddingSpec,
        kernel: Tensor,
    ) -> OutletId {
        let seed = name.bytes().map(u32::from).sum::<u32>();
        let kernel = model.add_const(format!("{name}.k"), kernel).unwrap();
        let bias = model.add_const(format!("{name}.b"), tensor(&[cout], seed + 1)).unwrap();
        let pool_spec = PoolSpec {
            data_format: DataFormat::NCHW,
            kernel_shape: tvec!(k, k),
            padding,
            dilations: None,
            strides: Some(tvec!(stride, stride)),
            input_channels: cin,
            output_channels: cout,
        };
        let op = Conv { pool_spec, kernel_fmt: KernelFormat::OIHW, group, q_params: None };
        model.wire_node(name, op, &[x, kernel, bias]).unwrap()[0]
    }

    fn relu(model: &mut TypedModel, name: &str, x: OutletId) -> OutletId {
        let zero = model.add_const(format!("{name}.k"), tensor1(&[1, 1, 1, 1], 0.0)).unwrap();
        model.wire_node(name, tract_onnx::tract_core::ops::math::max(), &[x, zero]).unwrap()[0]
    }

    /// A mini-XCEPTION in small: two 3x3 stems (the first strided and padded like MobileNetV2's,
    /// with a ReLU6 after it, the second unpadded with a ReLU after it), separable
    /// blocks (depthwise of 8 and 32 channels, a ReLU after the second block's first, pointwise),
    /// "same" max-pools and strided 1x1 residual branches.
    fn mini_xception(batch: usize) -> TypedModel {
        use PaddingSpec::{SameUpper, Valid};
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([batch, 1, 44, 44])).unwrap();
        let x = conv(&mut m, "stem1", x, (1, 8, 1, 3, 2), PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]));
        let x = relu(&mut m, "stem1.relu", x);
        let six = m.add_const("stem1.six", tensor1(&[1, 1, 1, 1], 6.0)).unwrap();
        let x = m.wire_node("stem1.relu6", tract_onnx::tract_core::ops::math::min(), &[x, six]).unwrap()[0];
        let x = conv(&mut m, "stem2", x, (8, 8, 1, 3, 1), Valid);
        let mut x = relu(&mut m, "stem2.relu", x);
        for (i, (cin, cout)) in [(8, 16), (16, 32)].into_iter().enumerate() {
            let residual = conv(&mut m, &format!("res{i}"), x, (cin, cout, 1, 1, 2), Valid);
            let mut y = conv(&mut m, &format!("dw{i}a"), x, (cin, cin, cin, 3, 1), SameUpper);
            if i == 1 {
                y = relu(&mut m, "dw1a.relu", y);
            }
            let mut y = conv(&mut m, &format!("pw{i}a"), y, (cin, cout, 1, 1, 1), Valid);
            // ReLU6 after the first block's first pointwise convolution, ReLU after the second's.
            let bounds: &[(f32, bool)] = if i == 0 { &[(0.0, true), (6.0, false)] } else { &[(0.0, true)] };
            for (j, &(v, is_max)) in bounds.iter().enumerate() {
                let k = m.add_const(format!("act{i}.{j}.k"), tensor1(&[1, 1, 1, 1], v)).unwrap();
                let op = if is_max {
                    tract_onnx::tract_core::ops::math::max()
                } else {
                    tract_onnx::tract_core::ops::math::min()
                };
                y = m.wire_node(format!("act{i}.{j}"), op, &[y, k]).unwrap()[0];
            }
            let y = conv(&mut m, &format!("dw{i}b"), y, (cout, cout, cout, 3, 1), SameUpper);
            let y = conv(&mut m, &format!("pw{i}b"), y, (cout, cout, 1, 1, 1), Valid);
            let pool = PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec!(3, 3),
                padding: SameUpper,
                dilations: None,
                strides: Some(tvec!(2, 2)),
                input_channels: cout,
                output_channels: cout,
            };
            let y = m.wire_node(format!("pool{i}"), MaxPool::new(pool, None), &[y]).unwrap()[0];
            x = m.wire_node(format!("add{i}"), tract_onnx::tract_core::ops::math::add(), &[y, residual]).unwrap()[0];
        }
        m.select_output_outlets(&[x]).unwrap();
        m
    }

    /// face-api.js's dense block in small: a strided stem with a ReLU (`s1`), then three
    /// separable convolutions whose outputs are summed with all before them, each fed the ReLU
    /// of the sum so far: `s2 = s1 + pw(dw(s1))`, `s3 = s2 + pw(dw(relu(s2)))`, `y = relu(s3 +
    /// pw(dw(relu(s3))))`. The sums `s2` and `s3` each feed a ReLU and the next sum.
    fn dense_block(batch: usize) -> TypedModel {
        use PaddingSpec::{SameUpper, Valid};
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([batch, 3, 20, 20])).unwrap();
        let x = conv(&mut m, "stem", x, (3, 16, 1, 3, 2), SameUpper);
        let mut sum = relu(&mut m, "stem.relu", x);
        let mut input = sum;
        for i in 0..3 {
            let y = conv(&mut m, &format!("dw{i}"), input, (16, 16, 16, 3, 1), SameUpper);
            let y = conv(&mut m, &format!("pw{i}"), y, (16, 16, 1, 1, 1), Valid);
            sum = m.wire_node(format!("add{i}"), tract_onnx::tract_core::ops::math::add(), &[sum, y]).unwrap()[0];
            input = relu(&mut m, &format!("add{i}.relu"), sum);
        }
        m.select_output_outlets(&[input]).unwrap();
        m
    }

    /// `x → QuantizeLinear → DequantizeLinear` as tract holds it (the quantizer's `scale` is the
    /// multiplier, 1 / the ONNX scale), with `readers` dequantizers of the same parameters summed
    /// when more than one.
    fn qdq_model(shape: &[usize], q: Box<dyn ElementWiseMiniOp>, dq: (f32, i32), readers: usize) -> TypedModel {
        use tract_onnx::tract_core::ops::quant::DequantizeLinearF32;
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact(shape)).unwrap();
        let q = m.wire_node("q", ElementWiseOp(q, None), &[x]).unwrap()[0];
        let mut y = m.wire_node("dq0", DequantizeLinearF32::new(dq.0, dq.1), &[q]).unwrap()[0];
        for r in 1..readers {
            let d = m.wire_node(format!("dq{r}"), DequantizeLinearF32::new(dq.0, dq.1), &[q]).unwrap()[0];
            y = m.wire_node(format!("sum{r}"), tract_onnx::tract_core::ops::math::add(), &[y, d]).unwrap()[0];
        }
        m.select_output_outlets(&[y]).unwrap();
        m
    }

    /// One `FakeQuant` computes what tract's quantize and dequantize ops compute (an independent
    /// implementation), value for value: ties rounded to even, saturation at both ends, u8 and
    /// i8, a dequantizer whose zero point and scale differ from the quantizer's, two readers; and
    /// a hand-computed case.
    #[test]
    fn fake_quant_is_tracts_quantize_dequantize() {
        use tract_onnx::tract_core::ops::quant::{QuantizeLinearI8, QuantizeLinearU8};
        let shape = [1, 4, 6, 11];
        // x · 4 runs over every half integer from -132 to 131.5: ties, and both saturations.
        let mut xs: Vec<f32> = (0..264).map(|i| (i as f32 - 264.0) / 8.0 + (i % 2) as f32 * 33.0).collect();
        xs[0] = 1e6;
        xs[1] = -1e6;
        let input = Tensor::from_shape(&shape, &xs).unwrap();
        let mut first = None;
        let u8q = |z| -> Box<dyn ElementWiseMiniOp> { Box::new(QuantizeLinearU8 { scale: 4.0, zero_point: z }) };
        let i8q = |z| -> Box<dyn ElementWiseMiniOp> { Box::new(QuantizeLinearI8 { scale: 4.0, zero_point: z }) };
        for (q, dq, readers) in [
            (u8q(100), (0.25, 100), 1),
            (u8q(0), (0.25, 0), 2),
            (i8q(-3), (0.25, -3), 1),
            (i8q(5), (0.07, -2), 3),
            (u8q(200), (1.5, 17), 1),
        ] {
            let label = format!("{q:?} {dq:?} x{readers}");
            let model = qdq_model(&shape, q, dq, readers).into_decluttered().unwrap();
            let (want, _) = run(model.clone(), &input);
            let mut tuned = model;
            assert_eq!(fake_quants(&mut tuned).unwrap(), 1, "{label}");
            let (got, ops) = run(tuned.into_decluttered().unwrap(), &input);
            assert!(ops.iter().any(|o| o.starts_with("FakeQuant")), "{label}: {ops:?}");
            assert!(!ops.iter().any(|o| o.contains("QuantizeLinear")), "{label}: {ops:?}");
            assert_eq!(got, want, "{label}");
            first.get_or_insert(want);
        }
        // The first case in every build of the kernel.
        let p = kernels::FakeQuantParams { inv_scale: 4.0, lo: -100.0, hi: 155.0, offset: 0.0, scale: 0.25 };
        for &build in kernels::Build::all().iter().filter(|b| b.available()) {
            let mut y = xs.clone();
            kernels::fake_quant_in(build, &mut y, &p);
            assert_eq!(Some(&y), first.as_ref(), "{build:?}");
        }
        // By hand, u8 with zero point 100 and scale 0.25 (multiplier 4): 0.125 · 4 = 0.5 rounds
        // to 0, 0.375 · 4 = 1.5 to 2, -0.375 · 4 = -1.5 to -2; 100 · 4 saturates at 255 - 100,
        // -100 · 4 at 0 - 100.
        let x = [0.125f32, 0.375, -0.375, 100.0, -100.0, 0.3];
        let mut y = x;
        kernels::fake_quant(&mut y, &p);
        assert_eq!(y, [0.0, 0.5, -0.5, 155.0 * 0.25, -25.0, 0.25]);
    }

    /// A quantized tensor read by a dequantizer and, through two subsamples (tract's declutter
    /// puts a strided 1x1 convolution's there), by another: one `FakeQuant`, the subsamples after
    /// it, tract's outputs bit for bit.
    #[test]
    fn fake_quant_takes_readers_through_subsamples() {
        use tract_onnx::tract_core::ops::quant::{DequantizeLinearF32, QuantizeLinearU8};
        let shape = [1, 4, 6, 8];
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact(shape)).unwrap();
        let q = QuantizeLinearU8 { scale: 8.0, zero_point: 20 };
        let q = m.wire_node("q", ElementWiseOp(Box::new(q), None), &[x]).unwrap()[0];
        let a = m.wire_node("dq", DequantizeLinearF32::new(0.125, 20), &[q]).unwrap()[0];
        let b = m.wire_node("down.h", Downsample { axis: 2, stride: 2, modulo: 0 }, &[q]).unwrap()[0];
        let b = m.wire_node("down.w", Downsample { axis: 3, stride: 2, modulo: 0 }, &[b]).unwrap()[0];
        let b = m.wire_node("dq.down", DequantizeLinearF32::new(0.125, 20), &[b]).unwrap()[0];
        m.select_output_outlets(&[a, b]).unwrap();
        let input = tensor(&shape, 5);
        let (want, _) = run(m.clone(), &input);
        let mut tuned = m;
        assert_eq!(fake_quants(&mut tuned).unwrap(), 1);
        let (got, ops) = run(tuned, &input);
        assert!(!ops.iter().any(|o| o.contains("QuantizeLinear")), "{ops:#?}");
        assert_eq!(got, want);
    }

    /// [`tuned_model_checked_against_tract`] for a QDQ model. tract's sums and ours differ in
    /// their last bits, and where a value lies that close to a rounding boundary of a quantizer
    /// the two round it one level apart (1/32 in these tests), which then spreads: most outputs
    /// must agree to 1e-5, every one to a few levels.
    fn qdq_checked_against_tract(model: TypedModel, shape: &[usize], integers: bool) -> Vec<String> {
        let input = tensor(shape, 99);
        let model = model.into_decluttered().unwrap();
        let (want, _) = run(model.clone(), &input);
        let (got, ops) = run(tune_with(model, true, integers).unwrap(), &input);
        assert_eq!(got.len(), want.len());
        let diffs: Vec<f32> = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).collect();
        let close = diffs.iter().filter(|d| **d <= 1e-5).count();
        let worst = diffs.iter().fold(0.0f32, |a, d| a.max(*d));
        eprintln!("QDQ model: {close} of {} outputs within 1e-5 of tract's, worst {worst}", got.len());
        assert!(close * 10 >= got.len() * 9 && worst <= 0.5, "{close} of {} within 1e-5, worst {worst}", got.len());
        ops
    }

    /// A channel-first 1x1 convolution long enough to run by points (the direct kernel, which
    /// has no quantizing epilogue) with a quantize-dequantize after its ReLU: fused all the same,
    /// tract's outputs.
    #[test]
    fn qdq_pointwise_by_points_is_fused() {
        use tract_onnx::tract_core::ops::quant::{DequantizeLinearF32, QuantizeLinearU8};
        let shape = [1, 8, 6, 6];
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact(shape)).unwrap();
        let y = conv(&mut m, "pw", x, (8, 16, 1, 1, 1), PaddingSpec::Valid);
        let y = relu(&mut m, "pw.relu", y);
        let q = QuantizeLinearU8 { scale: 32.0, zero_point: 3 };
        let y = m.wire_node("q", ElementWiseOp(Box::new(q), None), &[y]).unwrap();
        let y = m.wire_node("dq", DequantizeLinearF32::new(1.0 / 32.0, 3), &y).unwrap();
        m.select_output_outlets(&y).unwrap();
        let ops = qdq_checked_against_tract(m, &shape, false);
        let fused = ops.iter().filter(|o| o.contains("blocks along the points") && o.contains("fake-quantized"));
        assert_eq!(fused.count(), 1, "{ops:#?}");
        assert!(!ops.iter().any(|o| o.starts_with("FakeQuant") || o.contains("QuantizeLinear")), "{ops:#?}");
    }

    /// A quantize-dequantize (u8, scale 1/32, zero point `zero`) of `x`.
    fn qdq(m: &mut TypedModel, name: &str, x: OutletId, zero: u8) -> OutletId {
        use tract_onnx::tract_core::ops::quant::{DequantizeLinearF32, QuantizeLinearU8};
        let q = QuantizeLinearU8 { scale: 32.0, zero_point: zero };
        let y = m.wire_node(format!("{name}.q"), ElementWiseOp(Box::new(q), None), &[x]).unwrap();
        m.wire_node(format!("{name}.dq"), DequantizeLinearF32::new(1.0 / 32.0, zero as i32), &y).unwrap()[0]
    }

    /// A QDQ model's 1x1 convolutions with int8 weights (levels times a scale per output
    /// channel) on quantized inputs, a channel-last one (after a depthwise convolution) and
    /// channel-first ones, one with a ReLU and its quantize-dequantize fused, a strided one (its
    /// input a `Subsample` of a shared quantize-dequantize's output): in integers where
    /// [`integer_pointwise`] runs, with tract's outputs; the convolution whose input is not
    /// quantized, and the one whose weights are f32, stay f32, and so does, on 36 points, the
    /// channel-first to channel-first one (run by points); on 9 points it is in integers too.
    #[test]
    fn qdq_pointwise_in_integers() {
        for (shape, converted) in [([1, 8, 6, 6], 3), ([1, 8, 3, 3], 4)] {
            qdq_pointwise_in_integers_on(&shape, converted);
        }
    }

    /// OIHW `k` x `k` int8 kernels: levels times each output channel's scale 0.01 · (1 + o / 8),
    /// its largest level 127.
    fn int8_kernel(cout: usize, cin: usize, k: usize, seed: u32) -> Tensor {
        let n = cin * k * k;
        let v = values(cout * n, seed);
        let w: Vec<f32> = (0..cout * n)
            .map(|i| {
                let level = if i % n == 0 { 127.0 } else { (v[i] * 126.0).round() };
                level * 0.01 * (1.0 + (i / n) as f32 / 8.0)
            })
            .collect();
        Tensor::from_shape(&[cout, cin, k, k], &w).unwrap()
    }

    fn qdq_pointwise_in_integers_on(shape: &[usize], converted: usize) {
        let int8 = |cout: usize, cin: usize, seed: u32| int8_kernel(cout, cin, 1, seed);
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact(shape)).unwrap();
        let y = qdq(&mut m, "in", x, 3);
        let y = conv_of(&mut m, "pw1", y, (8, 24, 1, 1, 1), PaddingSpec::Valid, int8(24, 8, 1));
        let y = relu(&mut m, "pw1.relu", y);
        let y = qdq(&mut m, "pw1", y, 0);
        let y = conv(&mut m, "dw", y, (24, 24, 24, 3, 1), PaddingSpec::SameUpper);
        let y = relu(&mut m, "dw.relu", y);
        let y = qdq(&mut m, "dw", y, 0);
        let y = conv_of(&mut m, "pw2", y, (24, 16, 1, 1, 1), PaddingSpec::Valid, int8(16, 24, 2));
        let a = qdq(&mut m, "pw2", y, 128);
        let a = conv_of(&mut m, "pw3", a, (16, 20, 1, 1, 1), PaddingSpec::Valid, int8(20, 16, 3));
        // Not on levels: its input is not quantized; f32 weights.
        let b = conv_of(&mut m, "pw4", y, (16, 20, 1, 1, 1), PaddingSpec::Valid, int8(20, 16, 4));
        let c = qdq(&mut m, "pw2b", y, 128);
        let d = conv_of(&mut m, "pw6", c, (16, 12, 1, 1, 2), PaddingSpec::Valid, int8(12, 16, 6));
        let c = conv(&mut m, "pw5", c, (16, 20, 1, 1, 1), PaddingSpec::Valid);
        m.select_output_outlets(&[a, b, c, d]).unwrap();
        for integers in [false, true] {
            let ops = qdq_checked_against_tract(m.clone(), shape, integers);
            let pointwise = ops.iter().filter(|o| o.starts_with("PointwiseConv")).count();
            let int = ops.iter().filter(|o| o.starts_with("PointwiseConv") && o.contains("in integers")).count();
            let want = (6, if integers { converted } else { 0 });
            assert_eq!((pointwise, int), want, "{shape:?} integers {integers}: {ops:#?}");
        }
    }

    /// A QDQ model's unpadded 3x3 convolution (mini-XCEPTION's second stem) with int8 weights on
    /// a quantized input, with its ReLU: a [`DirectConv`] in integers where [`integer_pointwise`]
    /// runs, with tract's outputs; the same convolution padded stays f32, and so does an
    /// unpadded 7x7 one (14 output columns) where this machine's integer build has no blocks for
    /// rows that narrow (VNNI's are 16 points).
    #[test]
    fn qdq_direct_in_integers() {
        let shape = [1, 8, 12, 20];
        let int8 = |k: usize, seed: u32| int8_kernel(8, 8, k, seed);
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact(shape)).unwrap();
        let x = qdq(&mut m, "in", x, 7);
        let a = conv_of(&mut m, "stem", x, (8, 8, 1, 3, 1), PaddingSpec::Valid, int8(3, 1));
        let a = relu(&mut m, "stem.relu", a);
        let b = conv_of(&mut m, "padded", x, (8, 8, 1, 3, 1), PaddingSpec::SameUpper, int8(3, 2));
        let c = conv_of(&mut m, "narrow", x, (8, 8, 1, 7, 1), PaddingSpec::Valid, int8(7, 3));
        m.select_output_outlets(&[a, b, c]).unwrap();
        for integers in [false, true] {
            let ops = qdq_checked_against_tract(m.clone(), &shape, integers);
            let direct = ops.iter().filter(|o| o.starts_with("DirectConv")).count();
            let int = ops.iter().filter(|o| o.starts_with("DirectConv") && o.contains("in integers")).count();
            let want = if integers { 1 + usize::from(kernels::direct_int8_applies(14)) } else { 0 };
            assert_eq!((direct, int), (3, want), "integers {integers}: {ops:#?}");
        }
    }

    /// A QDQ model (every convolution's input quantized and dequantized, as `fer-train quantize`
    /// writes them): the quantize-dequantize pairs become `FakeQuant`s, those a pointwise
    /// convolution's output alone feeds fused into it, and every other rewrite still happens
    /// across them (the same counts as the f32 model's), with the outputs of tract's own plan.
    #[test]
    fn qdq_model_keeps_every_rewrite() {
        use tract_onnx::tract_core::ops::quant::{DequantizeLinearF32, QuantizeLinearU8};
        let f32_ops = tuned_ops_checked_against_tract(1);
        let mut model = mini_xception(1);
        let convs: Vec<usize> = model.nodes().iter().filter(|n| n.op_is::<Conv>()).map(|n| n.id).collect();
        for id in &convs {
            let node = model.node(*id).clone();
            let mut patch = TypedModelPatch::default();
            let inputs: TVec<OutletId> = node.inputs.iter().map(|i| patch.tap_model(&model, *i).unwrap()).collect();
            let q = QuantizeLinearU8 { scale: 32.0, zero_point: 128 };
            let x =
                patch.wire_node(format!("{}.q", node.name), ElementWiseOp(Box::new(q), None), &inputs[..1]).unwrap();
            let x =
                patch.wire_node(format!("{}.dq", node.name), DequantizeLinearF32::new(1.0 / 32.0, 128), &x).unwrap();
            let y = patch.wire_node(&node.name, node.op.clone(), &[x[0], inputs[1], inputs[2]]).unwrap();
            patch.shunt_outside(&model, OutletId::new(*id, 0), y[0]).unwrap();
            patch.apply(&mut model).unwrap();
        }
        let ops = qdq_checked_against_tract(model, &[1, 1, 44, 44], false);
        let count = |ops: &[String], what: &str| ops.iter().filter(|o| o.starts_with(what)).count();
        // Each pair a `FakeQuant`, or fused into the convolution whose output it alone reads:
        // the pointwise ones with a clamp after them, before the next depthwise convolution (2),
        // and every depthwise one (4, before a pointwise one).
        let fused = |what: &str| ops.iter().filter(|o| o.starts_with(what) && o.contains("fake-quantized")).count();
        assert_eq!(fused("PointwiseConv"), 2, "{ops:#?}");
        assert_eq!(fused("DepthwiseNhwc") + fused("DepthwiseNchw"), 4, "{ops:#?}");
        assert_eq!(count(&ops, "FakeQuant") + fused(""), convs.len(), "{ops:#?}");
        assert!(!ops.iter().any(|o| o.contains("QuantizeLinear")), "{ops:#?}");
        for what in ["DirectConv", "Subsample", "DepthwiseNhwc", "DepthwiseNchw", "MaxPoolNhwc", "PointwiseConv"] {
            assert_eq!(count(&ops, what), count(&f32_ops, what), "{what}: {ops:#?}");
        }
        assert!(count(&ops, "MoveAxis") <= count(&f32_ops, "MoveAxis"), "{ops:#?}");
    }

    /// The dense block's sums are fused into the pointwise convolutions before them: no `Add` or
    /// ReLU op left, the two sums with other users kept unclamped as second outputs, the same
    /// outputs as tract's plan (one image and a batch).
    #[test]
    fn dense_block_sums_are_fused() {
        for batch in [1, 2] {
            let ops = tuned_model_checked_against_tract(dense_block(batch), &[batch, 3, 20, 20]);
            let count = |what: &str| ops.iter().filter(|o| o.contains(what)).count();
            assert_eq!(count("PointwiseConv"), 3, "{ops:#?}");
            assert_eq!(count("residual added"), 3, "{ops:#?}");
            assert_eq!(count("sum kept unclamped"), 2, "{ops:#?}");
            let relu_fused = ops.iter().filter(|o| o.starts_with("PointwiseConv") && o.contains("clamp (0.0, inf)"));
            assert_eq!(relu_fused.count(), 3, "ReLUs fused: {ops:#?}");
            for op in ["Add", "Max", "BinChain"] {
                assert_eq!(count(op), 0, "{op} left: {ops:#?}");
            }
        }
    }

    fn run(model: TypedModel, input: &Tensor) -> (Vec<f32>, Vec<String>) {
        fer_core::tract::guard();
        let plan = model.into_optimized().unwrap().into_runnable().unwrap();
        let ops = plan
            .model()
            .nodes()
            .iter()
            .map(|n| format!("{} {:?}", n.op.name(), n.op.info().unwrap_or_default()))
            .collect();
        // Every output, one after the other.
        let ys = plan.run(tvec!(input.clone().into_tvalue())).unwrap();
        let y = ys.iter().flat_map(|y| y.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()).collect();
        (y, ops)
    }

    /// Runs the small mini-XCEPTION for `batch` images through tract's own plan and the tuned
    /// one, asserts they agree, and returns the tuned plan's ops.
    fn tuned_ops_checked_against_tract(batch: usize) -> Vec<String> {
        tuned_model_checked_against_tract(mini_xception(batch), &[batch, 1, 44, 44])
    }

    /// Runs `model` on an input of `shape` through tract's own plan and the tuned one, asserts
    /// they agree, and returns the tuned plan's ops.
    fn tuned_model_checked_against_tract(model: TypedModel, shape: &[usize]) -> Vec<String> {
        let (batch, input) = (shape[0], tensor(shape, 99));
        let model = model.into_decluttered().unwrap();
        let (want, _) = run(model.clone(), &input);
        // Every rewrite, on every target: our kernels are checked where they do not run too.
        let (got, ops) = run(tune_with(model, true, kernels::int8_build().is_some()).unwrap(), &input);
        assert_eq!(got.len(), want.len());
        let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
        let scale = want.iter().map(|w| w.abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5 * scale.max(1.0), "batch {batch}: max |diff| {worst} (outputs up to {scale})");
        ops
    }

    /// `SumAxes` computes what tract's `Reduce<Sum>` computes (its own generic reduction, an
    /// independent implementation) over runs of axes before, at and after the innermost, and
    /// replaces only sums over neighbouring axes.
    #[test]
    fn sums_over_neighbouring_axes_match_tracts_reduce() {
        use tract_onnx::tract_core::ops::nn::{Reduce, Reducer};
        for (shape, axes, replaced) in [
            (&[1, 64, 2, 2][..], &[2, 3][..], true),
            (&[1, 1, 11, 2, 2], &[3, 4], true),
            (&[2, 4, 4, 16], &[1, 2], true),
            (&[3, 5, 2], &[0], true),
            (&[2, 3, 5], &[0, 1, 2], true),
            (&[2, 3, 5], &[0, 2], false),
        ] {
            let mut model = TypedModel::default();
            let x = model.add_source("x", f32::fact(shape)).unwrap();
            let y = model.wire_node("sum", Reduce { axes: axes.into(), reducer: Reducer::Sum }, &[x]).unwrap();
            model.select_output_outlets(&y).unwrap();
            let ops = tuned_model_checked_against_tract(model, shape);
            assert_eq!(ops.iter().any(|o| o.starts_with("SumAxes")), replaced, "{shape:?} {axes:?}: {ops:?}");
        }
    }

    /// The tuned plan computes what tract's own plan computes, and the rewrites did happen:
    /// direct stems, one subsample per residual branch, channel-last depthwise convolutions and
    /// pools, and layout moves only at the edges: one after the (channel-first) stems, and one on
    /// each branch of the last sum, whose output is channel-first (the model's output).
    #[test]
    fn tuned_plan_matches_tracts_plan() {
        let ops = tuned_ops_checked_against_tract(1);
        let count = |what: &str| ops.iter().filter(|o| o.starts_with(what)).count();
        assert_eq!(count("DirectConv"), 2, "{ops:#?}");
        let stem1 = "DirectConv [\"3x3 1 -> 8 channels, strides (2, 2), padding [1, 1, 1, 1], clamp (0.0, 6.0)";
        assert_eq!(count(stem1), 1, "strided, padded stem, ReLU6 fused: {ops:#?}");
        let stem2 = "DirectConv [\"3x3 8 -> 8 channels, strides (1, 1), padding [0, 0, 0, 0], clamp (0.0, inf)";
        assert_eq!(count(stem2), 1, "stem ReLU fused: {ops:#?}");
        assert_eq!(count("Subsample"), 2, "{ops:#?}");
        // Every depthwise convolution and max-pool is a `SlidingWindow`, the ReLU fused.
        assert_eq!(count("DepthwiseNhwc") + count("DepthwiseNchw"), 4, "{ops:#?}");
        assert_eq!(count("DepthWiseConv"), 0, "{ops:#?}");
        assert_eq!(
            ops.iter().filter(|o| o.starts_with("Depthwise") && o.contains("clamp (0.0, inf)")).count(),
            1,
            "{ops:#?}"
        );
        assert_eq!(count("MaxPoolNhwc"), 2, "{ops:#?}");
        // Every pointwise convolution (two per separable pair, one per residual branch), with the
        // ReLU6 and the ReLU after the first of each pair fused, and no matrix product left.
        assert_eq!(count("PointwiseConv"), 6, "{ops:#?}");
        for clamp in ["clamp (0.0, 6.0)", "clamp (0.0, inf)"] {
            assert_eq!(
                ops.iter().filter(|o| o.starts_with("PointwiseConv") && o.contains(clamp)).count(),
                1,
                "{ops:#?}"
            );
        }
        assert_eq!(count("OptBinByScalar") + count("OptMaxByScalar") + count("OptMinByScalar"), 0, "{ops:#?}");
        assert_eq!(count("OptMatMul"), 0, "{ops:#?}");
        assert_eq!(count("OptMaxPool"), 0, "{ops:#?}");
        assert!(count("MoveAxis") <= 3, "layout moves left: {ops:#?}");
    }

    /// A batch of three: the same outputs as tract's plan, every 1x1 convolution still rewritten
    /// (channel-first data with a batch axis in front runs image by image).
    #[test]
    fn tuned_plan_of_a_batch_matches_tracts_plan() {
        let ops = tuned_ops_checked_against_tract(3);
        let count = |what: &str| ops.iter().filter(|o| o.starts_with(what)).count();
        assert_eq!(count("DirectConv"), 2, "{ops:#?}");
        assert_eq!(count("PointwiseConv"), 6, "{ops:#?}");
        assert!(ops.iter().any(|o| o.starts_with("PointwiseConv [\"3 x ")), "{ops:#?}");
        assert_eq!(count("OptMatMul"), 0, "{ops:#?}");
    }
}
