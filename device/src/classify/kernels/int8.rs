//! Pointwise convolutions of QDQ (int8) models in integers: where a convolution's input is the
//! output of a quantize-dequantize (so every value is a level times one scale) and its weights
//! are whole multiples of one scale per output channel (what a QDQ model's dequantized int8
//! weights are), the products are summed as 8-bit integers into 32-bit ones, which is exact,
//! and scaled back once per output. What the model computes is the same; its f32 form sums the
//! same products with a rounding at every step, so results differ from it by float rounding
//! (and a value at a quantization level's edge can land on the other level).
//!
//! The aarch64 build with the dot-product extension (Cortex-A76 and later: Raspberry Pi 5,
//! Jetson Orin) sums 4 products per lane in one `SDOT`, 16 per instruction where an f32
//! multiply-add does 4; the x86-64 build with AVX-512 VNNI (Intel since Ice Lake and Cascade
//! Lake, AMD since Zen 4) 64 per `VPDPBUSD` (16 lanes, unsigned input bytes: the levels plus
//! 128) where an f32 multiply-add does 16. [`int8_build`] offers the integer form only where
//! such a build exists. The portable build computes the same sums one by one (the reference,
//! and what other machines would run if asked). Module `direct` does the same for unpadded,
//! unit-stride dense convolutions ([`direct_int8`]).

use super::*;

mod direct;
pub use direct::{direct_int8, direct_int8_applies, direct_int8_in, Int8Direct};

/// How the f32 output of a quantize-dequantize is read back as its level: `x · inv_scale`
/// rounds to the level `m` (`x` is `m · scale` rounded to f32, `m` below 2^9), stored as the
/// 8-bit `m − zero`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    pub inv_scale: f32,
    /// The lowest level plus 128, so that the 256 levels are −128..=127.
    pub zero: i32,
    /// The dequantize's scale.
    pub scale: f32,
}

impl Levels {
    /// The levels of the output of a [`fake_quant`] with `p`; `None` where they span more than
    /// 256 or the scale is not a positive finite number.
    pub fn of(p: &FakeQuantParams) -> Option<Levels> {
        let lowest = p.lo + p.offset;
        let span = p.hi - p.lo;
        if !(p.scale > 0.0 && p.scale.is_finite() && (0.0..=255.0).contains(&span) && lowest.fract() == 0.0) {
            return None;
        }
        Some(Levels { inv_scale: (1.0 / p.scale as f64) as f32, zero: lowest as i32 + 128, scale: p.scale })
    }

    /// The 8-bit value of `x` (saturated, for a value that is not a level: none is, from a
    /// quantize-dequantize).
    #[inline(always)]
    pub fn level(&self, x: f32) -> i8 {
        ((x * self.inv_scale).round_ties_even() as i32).saturating_sub(self.zero).clamp(-128, 127) as i8
    }

    /// [`Levels::level`] of 16 values by vector, the same operations (`FCVTNS` rounds to nearest,
    /// ties to even, and saturates as `as i32` does; the narrowing saturates as the clamp).
    ///
    /// # Safety
    /// None beyond NEON, which aarch64 always has.
    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    unsafe fn levels_neon(&self, v: [std::arch::aarch64::float32x4_t; 4]) -> std::arch::aarch64::int8x16_t {
        use std::arch::aarch64::*;
        unsafe {
            let (inv, zero) = (vdupq_n_f32(self.inv_scale), vdupq_n_s32(self.zero));
            let q = |v| vqsubq_s32(vcvtnq_s32_f32(vmulq_f32(v, inv)), zero);
            let low = vqmovn_high_s32(vqmovn_s32(q(v[0])), q(v[1]));
            let high = vqmovn_high_s32(vqmovn_s32(q(v[2])), q(v[3]));
            vqmovn_high_s16(vqmovn_s16(low), high)
        }
    }

    /// The levels of 4 channels' vectors of 4 points as 4 points' groups of 4 channels
    /// (`[point][channel]`, 16 bytes): [`Levels::levels_neon`] transposed by one table lookup.
    ///
    /// # Safety
    /// None beyond NEON, which aarch64 always has.
    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    unsafe fn quad_neon(&self, v: [std::arch::aarch64::float32x4_t; 4]) -> std::arch::aarch64::int8x16_t {
        use std::arch::aarch64::*;
        const TRANSPOSE: [u8; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
        unsafe { vqtbl1q_s8(self.levels_neon(v), vld1q_u8(TRANSPOSE.as_ptr())) }
    }
}

/// Input channels per dot product.
const DEPTH: usize = 4;
/// Output channels per block.
const CHANNELS: usize = 16;
/// Points per block.
const POINTS_INT8: usize = 4;

/// A pointwise convolution (`[ci][co]` weights, bias) as integers, for input with [`Levels`]:
/// `out[p][co] = (acc0[co] + Σ_ci wq[ci][co] · xq[p][ci]) · mult[co] + bias[co]`, with `wq` the
/// weights' levels, `mult` their scale times the input's, `acc0` the input's zero times
/// `Σ_ci wq`. Weights are laid out as the kernels read them: per block of 16 output channels,
/// per 4 input channels, `[co][ci]` (64 bytes), zero-padded to whole blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Pointwise {
    pub cin: usize,
    pub cout: usize,
    pub input: Levels,
    weights: Vec<i8>,
    rescale: Rescale,
}

/// What turns an integer sum back into the f32 output, per output channel (padded with zeros):
/// `(acc0 + Σ wq · xq) · mult + bias`.
#[derive(Debug, Clone, PartialEq)]
struct Rescale {
    /// The input's zero times the channel's `Σ wq`.
    acc0: Vec<i32>,
    /// `acc0` for input bytes that are the levels plus 128 (unsigned, as x86's `VPDPBUSD`
    /// reads them): `acc0 − 128 · Σ wq`.
    acc0_unsigned: Vec<i32>,
    /// The weights' scale times the input's.
    mult: Vec<f32>,
    bias: Vec<f32>,
}

impl Rescale {
    /// Of each channel's weight levels and scale (from [`int8_columns`]) and `bias`, for input
    /// with `input`'s levels; `len` ≥ the channels.
    fn new(columns: &[(Vec<i8>, f32)], bias: &[f32], input: &Levels, len: usize) -> Rescale {
        let mut r =
            Rescale { acc0: vec![0; len], acc0_unsigned: vec![0; len], mult: vec![0.0; len], bias: vec![0.0; len] };
        for (co, (q, s)) in columns.iter().enumerate() {
            let wsum = q.iter().map(|&v| v as i32).sum::<i32>();
            r.acc0[co] = input.zero * wsum;
            r.acc0_unsigned[co] = (input.zero - 128) * wsum;
            r.mult[co] = s * input.scale;
            r.bias[co] = bias[co];
        }
        r
    }
}

impl Int8Pointwise {
    /// From f32 weights `w` (`[ci][co]`) that are, per output channel, whole multiples of one
    /// scale in −127..=127 (symmetric per-channel int8, as fer-train's quantizer writes them) or
    /// of one scale for all (per-tensor); `None` for anything else (f32 weights).
    pub fn new(w: &[f32], bias: &[f32], cin: usize, cout: usize, input: Levels) -> Option<Int8Pointwise> {
        if w.len() != cin * cout || bias.len() != cout || cin == 0 || cout == 0 {
            return None;
        }
        let columns = int8_columns(w, cin, cout, cout)?;
        let (cin4, cout8) = (cin.div_ceil(DEPTH) * DEPTH, cout.div_ceil(CHANNELS / 2) * (CHANNELS / 2));
        let mut weights = vec![0i8; cin4 * cout8];
        // Each block's weights: per 4 input channels, `[co][ci]`.
        let mut c = 0;
        while c < cout {
            let width = block_width(cout, c);
            for co in c..(c + width).min(cout) {
                for (ci, &v) in columns[co].0.iter().enumerate() {
                    weights[c * cin4 + ci / DEPTH * DEPTH * width + (co - c) * DEPTH + ci % DEPTH] = v;
                }
            }
            c += width;
        }
        let rescale = Rescale::new(&columns, bias, &input, cout8);
        Some(Int8Pointwise { cin, cout, input, weights, rescale })
    }

    /// The input channels rounded up to whole dot products.
    fn cin4(&self) -> usize {
        self.cin.div_ceil(DEPTH) * DEPTH
    }
}

/// Per output channel of `w` (`[k][co]`, rows `stride` apart): its int8 levels and their scale,
/// where every channel's weights are whole multiples in −127..=127 of its largest over 127
/// (symmetric per-channel int8) or all are of the largest over all (per-tensor); `None` for
/// anything else (f32 weights).
fn int8_columns(w: &[f32], k: usize, cout: usize, stride: usize) -> Option<Vec<(Vec<i8>, f32)>> {
    let column = |co: usize| (0..k).map(move |i| w[i * stride + co]);
    let max = |co: usize| column(co).fold(0f32, |m, v| m.max(v.abs()));
    let levels = |co: usize, s: f32| -> Option<Vec<i8>> {
        if s == 0.0 {
            return column(co).all(|v| v == 0.0).then(|| vec![0; k]);
        }
        column(co)
            .map(|v| {
                let q = v / s;
                let r = q.round();
                ((q - r).abs() <= 1e-3 && r.abs() <= 127.0).then_some(r as i8)
            })
            .collect()
    };
    let per_channel: Option<Vec<(Vec<i8>, f32)>> = (0..cout)
        .map(|co| {
            let s = max(co) / 127.0;
            Some((levels(co, s)?, s))
        })
        .collect();
    per_channel.or_else(|| {
        let s = (0..cout).map(max).fold(0f32, f32::max) / 127.0;
        (0..cout).map(|co| Some((levels(co, s)?, s))).collect()
    })
}

/// The builds of [`pointwise_int8`] and [`direct_int8`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Build {
    /// aarch64 with the dot-product extension (`SDOT`).
    #[cfg(target_arch = "aarch64")]
    Dotprod,
    /// x86-64 with AVX-512 VNNI (`VPDPBUSD`: Intel since Ice Lake and Cascade Lake, AMD since
    /// Zen 4).
    #[cfg(target_arch = "x86_64")]
    Vnni,
    Portable,
}

impl Int8Build {
    /// Whether this machine has the build's instructions.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "aarch64")]
            Int8Build::Dotprod => std::arch::is_aarch64_feature_detected!("dotprod"),
            #[cfg(target_arch = "x86_64")]
            Int8Build::Vnni => {
                super::Build::Avx512.available()
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni")
            }
            Int8Build::Portable => true,
        }
    }

    /// Every build, best first.
    pub fn all() -> &'static [Int8Build] {
        #[cfg(target_arch = "aarch64")]
        return &[Int8Build::Dotprod, Int8Build::Portable];
        #[cfg(target_arch = "x86_64")]
        return &[Int8Build::Vnni, Int8Build::Portable];
        #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
        return &[Int8Build::Portable];
    }
}

/// The integer build that beats the f32 kernels on this machine, if any: aarch64 with the dot
/// product, x86-64 with AVX-512 VNNI. `FER_INT8=off` in the environment says none (for
/// comparisons).
pub fn int8_build() -> Option<Int8Build> {
    static BUILD: std::sync::OnceLock<Option<Int8Build>> = std::sync::OnceLock::new();
    *BUILD.get_or_init(|| {
        if std::env::var("FER_INT8").is_ok_and(|v| v.eq_ignore_ascii_case("off")) {
            return None;
        }
        Int8Build::all().iter().copied().find(|b| *b != Int8Build::Portable && b.available())
    })
}

/// [`Int8Pointwise`] on `x` (geometry `g`: its input layout and output layout as in
/// [`pointwise_conv`]), then the epilogue of [`pointwise_conv`]: residual, clamp,
/// quantize-dequantize, store. In the best available build.
///
/// # Panics
/// If a slice is shorter than the geometry says, or `q` is not of `g`'s channels.
pub fn pointwise_int8(
    x: &[f32],
    q: &Int8Pointwise,
    g: &PointwiseGeometry,
    clamp: (f32, f32),
    quant: Option<FakeQuantParams>,
    residual: Option<Residual>,
    out: &mut [f32],
) {
    let build = int8_build().unwrap_or(Int8Build::Portable);
    pointwise_int8_in(build, x, q, g, clamp, quant, residual, out)
}

/// [`pointwise_int8`] in a given build.
///
/// # Panics
/// As [`pointwise_int8`], and if this machine lacks the build's instructions.
#[allow(clippy::too_many_arguments)]
pub fn pointwise_int8_in(
    build: Int8Build,
    x: &[f32],
    q: &Int8Pointwise,
    g: &PointwiseGeometry,
    clamp: (f32, f32),
    quant: Option<FakeQuantParams>,
    residual: Option<Residual>,
    out: &mut [f32],
) {
    assert!(build.available(), "{build:?} needs instructions this machine lacks");
    assert!(
        q.cin == g.cin && q.cout == g.cout,
        "pointwise_int8: weights of {} -> {} channels for {g:?}",
        q.cin,
        q.cout
    );
    if g.points == 0 {
        return;
    }
    let last = (g.points - 1) * g.point_stride + (g.cin - 1) * g.channel_stride;
    assert!(x.len() > last && out.len() >= g.points * g.cout, "pointwise_int8: input or output too short");
    let sum = Sum::of(residual, g.points * g.cout);
    let ep = Epilogue::new(clamp, quant);
    #[cfg(target_arch = "x86_64")]
    if build == Int8Build::Vnni {
        let out = out.as_mut_ptr();
        // SAFETY: as below; the machine has AVX-512 VNNI (asserted).
        unsafe {
            let xq = pack_avx512(x, g, &q.input);
            match (sum.add.is_null(), quant.is_some()) {
                (true, false) => blocks_vnni::<false, false>(&xq, q, g, ep, sum, out),
                (false, false) => blocks_vnni::<true, false>(&xq, q, g, ep, sum, out),
                (true, true) => blocks_vnni::<false, true>(&xq, q, g, ep, sum, out),
                (false, true) => blocks_vnni::<true, true>(&xq, q, g, ep, sum, out),
            }
        }
        return;
    }
    let xq = pack(x, g, &q.input);
    let out = out.as_mut_ptr();
    // SAFETY: the build's instructions are present (asserted); `pack` made whole blocks of
    // points and input channels, `q` holds whole blocks of channels, and the stores stay within
    // the points and channels of `g` (the asserts above bound them).
    unsafe {
        match (build, sum.add.is_null(), quant.is_some()) {
            #[cfg(target_arch = "aarch64")]
            (Int8Build::Dotprod, true, false) => blocks_dotprod::<false, false>(&xq, q, g, ep, sum, out),
            #[cfg(target_arch = "aarch64")]
            (Int8Build::Dotprod, false, false) => blocks_dotprod::<true, false>(&xq, q, g, ep, sum, out),
            #[cfg(target_arch = "aarch64")]
            (Int8Build::Dotprod, true, true) => blocks_dotprod::<false, true>(&xq, q, g, ep, sum, out),
            #[cfg(target_arch = "aarch64")]
            (Int8Build::Dotprod, false, true) => blocks_dotprod::<true, true>(&xq, q, g, ep, sum, out),
            (Int8Build::Portable, true, false) => blocks::<false, false, false>(&xq, q, g, ep, sum, out),
            (Int8Build::Portable, false, false) => blocks::<false, true, false>(&xq, q, g, ep, sum, out),
            (Int8Build::Portable, true, true) => blocks::<false, false, true>(&xq, q, g, ep, sum, out),
            (Int8Build::Portable, false, true) => blocks::<false, true, true>(&xq, q, g, ep, sum, out),
            #[cfg(target_arch = "x86_64")]
            (Int8Build::Vnni, ..) => unreachable!("the VNNI build returned above"),
        }
    }
}

/// The input's levels as the kernels read them: per block of 4 points, per 4 input channels,
/// `[point][channel]` (16 bytes), zero-padded to whole blocks. On aarch64 16 values at a time
/// where whole groups allow (channel-last: 16 channels of a point, their 4 groups stored apart;
/// channel-first: 4 points of 4 channels, transposed by one table lookup), the rest one by one.
fn pack(x: &[f32], g: &PointwiseGeometry, levels: &Levels) -> Vec<i8> {
    let cin4 = g.cin.div_ceil(DEPTH) * DEPTH;
    let points4 = g.points.div_ceil(POINTS_INT8) * POINTS_INT8;
    let mut xq = vec![0i8; points4 * cin4];
    let group = |p: usize, ci: usize| p / POINTS_INT8 * cin4 * POINTS_INT8 + p % POINTS_INT8 * DEPTH + ci * POINTS_INT8;
    #[cfg(target_arch = "aarch64")]
    // SAFETY: every load is of 4 values of `x` at a point and channel of `g` (4 channels
    // channel-last, 4 points channel-first) and every store of bytes within `xq`'s groups.
    unsafe {
        use std::arch::aarch64::*;
        let (xp, qp) = (x.as_ptr(), xq.as_mut_ptr());
        let whole = g.cin / DEPTH * DEPTH;
        if g.channel_stride == 1 {
            for p in 0..g.points {
                let row = xp.add(p * g.point_stride);
                let mut ci = 0;
                while ci < whole {
                    // 16 channels, or the last groups with some again.
                    let c0 = ci.min(whole.saturating_sub(16));
                    let n = if whole >= 16 { 4 } else { whole / DEPTH };
                    let v: [float32x4_t; 4] = std::array::from_fn(|k| vld1q_f32(row.add(c0 + DEPTH * k.min(n - 1))));
                    let b = vreinterpretq_s32_s8(levels.levels_neon(v));
                    let stores = [
                        |d: *mut i32, b| vst1q_lane_s32::<0>(d, b),
                        |d: *mut i32, b| vst1q_lane_s32::<1>(d, b),
                        |d: *mut i32, b| vst1q_lane_s32::<2>(d, b),
                        |d: *mut i32, b| vst1q_lane_s32::<3>(d, b),
                    ];
                    for (k, store) in stores.iter().enumerate().take(n) {
                        store(qp.add(group(p, c0 + DEPTH * k)) as *mut i32, b);
                    }
                    ci = c0 + DEPTH * n;
                }
                for ci in whole..g.cin {
                    *qp.add(group(p, ci / DEPTH * DEPTH) + ci % DEPTH) = levels.level(*row.add(ci));
                }
            }
            return xq;
        }
        if g.point_stride == 1 {
            let blocks = g.points / POINTS_INT8 * POINTS_INT8;
            for p in (0..blocks).step_by(POINTS_INT8) {
                for ci in (0..whole).step_by(DEPTH) {
                    let v: [float32x4_t; 4] =
                        std::array::from_fn(|c| vld1q_f32(xp.add((ci + c) * g.channel_stride + p)));
                    vst1q_s8(qp.add(group(p, ci)), levels.quad_neon(v));
                }
                for q in p..p + POINTS_INT8 {
                    for ci in whole..g.cin {
                        *qp.add(group(q, whole) + ci % DEPTH) = levels.level(*xp.add(ci * g.channel_stride + q));
                    }
                }
            }
            for p in blocks..g.points {
                for ci in 0..g.cin {
                    *qp.add(group(p, ci / DEPTH * DEPTH) + ci % DEPTH) =
                        levels.level(*xp.add(ci * g.channel_stride + p));
                }
            }
            return xq;
        }
    }
    for p in 0..g.points {
        for ci in 0..g.cin {
            let v = x[p * g.point_stride + ci * g.channel_stride];
            xq[group(p, ci / DEPTH * DEPTH) + ci % DEPTH] = levels.level(v);
        }
    }
    xq
}

/// The dot-product build of [`blocks`].
///
/// # Safety
/// As [`blocks`]; the machine has the dot-product extension.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "dotprod")]
unsafe fn blocks_dotprod<const SUM: bool, const QUANT: bool>(
    xq: &[i8],
    q: &Int8Pointwise,
    g: &PointwiseGeometry,
    ep: Epilogue,
    sum: Sum,
    out: *mut f32,
) {
    unsafe { blocks::<true, SUM, QUANT>(xq, q, g, ep, sum, out) }
}

/// The width of the block of output channels from `c`: 16, or 8 where 8 or fewer are left (the
/// narrow projections of a MobileNetV2-0.25 have 8).
#[inline(always)]
fn block_width(cout: usize, c: usize) -> usize {
    if cout - c > CHANNELS / 2 {
        CHANNELS
    } else {
        CHANNELS / 2
    }
}

/// Every block of 4 points x 16 (or, at the end, 8) output channels, [`block`].
///
/// # Safety
/// `xq` is `x` packed for `g`; the output (and residual) hold `g`'s points and channels.
#[inline(always)]
unsafe fn blocks<const DOT: bool, const SUM: bool, const QUANT: bool>(
    xq: &[i8],
    q: &Int8Pointwise,
    g: &PointwiseGeometry,
    ep: Epilogue,
    sum: Sum,
    out: *mut f32,
) {
    let cin4 = q.cin4();
    for (pb, xb) in xq.chunks_exact(cin4 * POINTS_INT8).enumerate() {
        let mut c = 0;
        while c < g.cout {
            let width = block_width(g.cout, c);
            let wb = &q.weights[c * cin4..(c + width) * cin4];
            // SAFETY: as the function's.
            unsafe {
                if width == CHANNELS {
                    block::<DOT, 4, SUM, QUANT>(xb, wb, q, g, ep, sum, out, pb * POINTS_INT8, c);
                } else {
                    block::<DOT, 2, SUM, QUANT>(xb, wb, q, g, ep, sum, out, pb * POINTS_INT8, c);
                }
            }
            c += width;
        }
    }
}

/// The block of 4 points from `p` x `4 J` output channels from `c`: the integer sums (with
/// `DOT`, `SDOT`s; else one product at a time), scaled back to f32, and the epilogue (whole
/// blocks on aarch64 from the registers, [`pointwise_store_neon`]; elsewhere and at the edges,
/// [`pointwise_store`] by 8, 4 and single channels).
///
/// # Safety
/// `xb` is the block's packed input, `wb` its weights; the output (and residual) hold `g`'s
/// points and channels.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<const DOT: bool, const J: usize, const SUM: bool, const QUANT: bool>(
    xb: &[i8],
    wb: &[i8],
    q: &Int8Pointwise,
    g: &PointwiseGeometry,
    ep: Epilogue,
    sum: Sum,
    out: *mut f32,
    p: usize,
    c: usize,
) {
    let width = 4 * J;
    let depth = xb.len() / (DEPTH * POINTS_INT8);
    #[cfg(target_arch = "aarch64")]
    if DOT {
        let whole = p + POINTS_INT8 <= g.points && c + width <= g.cout;
        use std::arch::aarch64::*;
        // SAFETY: the block's accumulators, scales and biases exist (padded to whole blocks);
        // the loads stay within `xb` and `wb`.
        unsafe {
            let zero = vdupq_n_s32(0);
            let init: [int32x4_t; 4] =
                std::array::from_fn(|j| if j < J { vld1q_s32(q.rescale.acc0.as_ptr().add(c + 4 * j)) } else { zero });
            let mut acc = [init; 4];
            for k in 0..depth {
                let xv = vld1q_s8(xb.as_ptr().add(16 * k));
                // (Indexing: the four points' accumulators of each vector of weights.)
                #[allow(clippy::needless_range_loop)]
                for j in 0..J {
                    let wv = vld1q_s8(wb.as_ptr().add(16 * J * k + 16 * j));
                    acc[0][j] = sdot::<0>(acc[0][j], wv, xv);
                    acc[1][j] = sdot::<1>(acc[1][j], wv, xv);
                    acc[2][j] = sdot::<2>(acc[2][j], wv, xv);
                    acc[3][j] = sdot::<3>(acc[3][j], wv, xv);
                }
            }
            let f = vdupq_n_f32(0.0);
            let m: [float32x4_t; 4] =
                std::array::from_fn(|j| if j < J { vld1q_f32(q.rescale.mult.as_ptr().add(c + 4 * j)) } else { f });
            let b: [float32x4_t; 4] =
                std::array::from_fn(|j| if j < J { vld1q_f32(q.rescale.bias.as_ptr().add(c + 4 * j)) } else { f });
            let a: [[float32x4_t; 4]; 4] = std::array::from_fn(|p| {
                std::array::from_fn(|j| vaddq_f32(vmulq_f32(vcvtq_f32_s32(acc[p][j]), m[j]), b[j]))
            });
            if whole {
                pointwise_store_neon::<J, SUM, QUANT>(a, g, ep, sum, out, p, c);
            } else {
                let v = std::mem::transmute::<[[float32x4_t; 4]; 4], [[f32; CHANNELS]; POINTS_INT8]>(a);
                store_edge::<SUM, QUANT>(&v, width, g, ep, sum, out, p, c);
            }
            return;
        }
    }
    let mut acc = [[0i32; CHANNELS]; POINTS_INT8];
    for acc in acc.iter_mut() {
        acc[..width].copy_from_slice(&q.rescale.acc0[c..c + width]);
    }
    for k in 0..depth {
        let (xk, wk) = (&xb[16 * k..16 * (k + 1)], &wb[16 * J * k..16 * J * (k + 1)]);
        for (acc, xp) in acc.iter_mut().zip(xk.chunks_exact(DEPTH)) {
            for (a, wc) in acc.iter_mut().zip(wk.chunks_exact(DEPTH)) {
                *a += wc.iter().zip(xp).map(|(w, x)| *w as i32 * *x as i32).sum::<i32>();
            }
        }
    }
    let v: [[f32; CHANNELS]; POINTS_INT8] = std::array::from_fn(|pq| {
        std::array::from_fn(|l| {
            if l < width {
                acc[pq][l] as f32 * q.rescale.mult[c + l] + q.rescale.bias[c + l]
            } else {
                0.0
            }
        })
    });
    // SAFETY: as the function's.
    unsafe { store_edge::<SUM, QUANT>(&v, width, g, ep, sum, out, p, c) };
}

/// The epilogue of a block of `width` channels from `c`, those of its points and channels
/// within `g`: 8, 4 and single channels at a time.
///
/// # Safety
/// As [`pointwise_store`] for each point and channel of `g` in the block.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn store_edge<const SUM: bool, const QUANT: bool>(
    v: &[[f32; CHANNELS]; POINTS_INT8],
    width: usize,
    g: &PointwiseGeometry,
    ep: Epilogue,
    sum: Sum,
    out: *mut f32,
    p: usize,
    c: usize,
) {
    let channels = (g.cout - c).min(width);
    for (pq, v) in v.iter().enumerate().take(g.points - p) {
        // SAFETY: point `p + pq` and the channels from `c` stored are within `g`.
        unsafe {
            let mut l = 0;
            while channels - l >= 8 {
                pointwise_store::<8, SUM, QUANT>(v[l..l + 8].try_into().unwrap(), g, ep, sum, out, p + pq, c + l);
                l += 8;
            }
            if channels - l >= 4 {
                pointwise_store::<4, SUM, QUANT>(v[l..l + 4].try_into().unwrap(), g, ep, sum, out, p + pq, c + l);
                l += 4;
            }
            for (l, v) in v.iter().enumerate().take(channels).skip(l) {
                pointwise_store::<1, SUM, QUANT>([*v], g, ep, sum, out, p + pq, c + l);
            }
        }
    }
}

/// [`pack`] for the VNNI build: the same layout, each byte the level plus 128, unsigned
/// (`VPDPBUSD` multiplies unsigned bytes by signed ones). 16 values at a time: channel-last, 4
/// points x 16 channels into 64 consecutive bytes (one permutation of 32-bit groups);
/// channel-first, 16 points x 4 channels (bytes interleaved by unpacking), the last points and
/// channels by masked loads. Each value as [`Levels::level`] computes it (clamped to the 256
/// levels before rounding instead of after: the same for every number; a NaN, which no
/// quantize-dequantize outputs, reads as the lowest level).
///
/// # Safety
/// The machine has AVX-512F, BW and VL; `x` holds `g`'s points and channels.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn pack_avx512(x: &[f32], g: &PointwiseGeometry, levels: &Levels) -> Vec<u8> {
    use std::arch::x86_64::*;
    let cin4 = g.cin.div_ceil(DEPTH) * DEPTH;
    let points4 = g.points.div_ceil(POINTS_INT8) * POINTS_INT8;
    let mut xq = vec![0u8; points4 * cin4];
    let group = |p: usize, ci: usize| p / POINTS_INT8 * cin4 * POINTS_INT8 + p % POINTS_INT8 * DEPTH + ci * POINTS_INT8;
    let mask = |n: usize| if n >= 16 { u16::MAX } else { (1u16 << n) - 1 };
    let (xp, qp) = (x.as_ptr(), xq.as_mut_ptr());
    // SAFETY: loads are masked to `g`'s points and channels; stores stay within `xq`'s blocks.
    unsafe {
        if g.channel_stride == 1 {
            // Element k·4 + q of the result is 32-bit group q·4 + k (point q, channels 4k..4k+4).
            let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
            for p in (0..g.points).step_by(POINTS_INT8) {
                for ci in (0..g.cin).step_by(16) {
                    let m = mask(g.cin - ci);
                    let point = |q: usize| {
                        if p + q < g.points {
                            levels_avx512(levels, _mm512_maskz_loadu_ps(m, xp.add((p + q) * g.point_stride + ci)))
                        } else {
                            _mm_setzero_si128()
                        }
                    };
                    let v = _mm512_castsi128_si512(point(0));
                    let v = _mm512_inserti32x4::<1>(v, point(1));
                    let v = _mm512_inserti32x4::<2>(v, point(2));
                    let v = _mm512_inserti32x4::<3>(v, point(3));
                    let groups = (cin4 - ci) / DEPTH;
                    let stored = mask(POINTS_INT8 * groups.min(4));
                    _mm512_mask_storeu_epi32(
                        qp.add(group(p, ci)) as *mut i32,
                        stored,
                        _mm512_permutexvar_epi32(order, v),
                    );
                }
            }
            return xq;
        }
        if g.point_stride == 1 {
            for p in (0..g.points).step_by(16) {
                let m = mask(g.points - p);
                for ci in (0..g.cin).step_by(DEPTH) {
                    let channel = |c: usize| {
                        if ci + c < g.cin {
                            levels_avx512(levels, _mm512_maskz_loadu_ps(m, xp.add((ci + c) * g.channel_stride + p)))
                        } else {
                            _mm_setzero_si128()
                        }
                    };
                    let quads = interleave_avx512([channel(0), channel(1), channel(2), channel(3)]);
                    for (b, quad) in quads.iter().enumerate().take((g.points - p).div_ceil(POINTS_INT8)) {
                        _mm_storeu_si128(qp.add(group(p + POINTS_INT8 * b, ci)) as *mut __m128i, *quad);
                    }
                }
            }
            return xq;
        }
    }
    for p in 0..g.points {
        for ci in 0..g.cin {
            let v = x[p * g.point_stride + ci * g.channel_stride];
            xq[group(p, ci / DEPTH * DEPTH) + ci % DEPTH] = levels.level(v) as u8 ^ 0x80;
        }
    }
    xq
}

/// 4 channels' bytes of 16 points as 4 quads of points, each `[point][channel]` (16 bytes).
///
/// # Safety
/// None beyond SSE2, which x86-64 always has.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn interleave_avx512(c: [std::arch::x86_64::__m128i; 4]) -> [std::arch::x86_64::__m128i; 4] {
    use std::arch::x86_64::*;
    let (t0, t1) = (_mm_unpacklo_epi8(c[0], c[1]), _mm_unpackhi_epi8(c[0], c[1]));
    let (t2, t3) = (_mm_unpacklo_epi8(c[2], c[3]), _mm_unpackhi_epi8(c[2], c[3]));
    [_mm_unpacklo_epi16(t0, t2), _mm_unpackhi_epi16(t0, t2), _mm_unpacklo_epi16(t1, t3), _mm_unpackhi_epi16(t1, t3)]
}

/// The unsigned bytes (level plus 128) of 16 values, for [`pack_avx512`].
///
/// # Safety
/// The machine has AVX-512F, BW and VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[inline]
unsafe fn levels_avx512(levels: &Levels, v: std::arch::x86_64::__m512) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::*;
    let lowest = levels.zero - 128;
    let v = _mm512_mul_ps(v, _mm512_set1_ps(levels.inv_scale));
    let v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(lowest as f32)), _mm512_set1_ps((lowest + 255) as f32));
    let r = _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
    _mm512_cvtepi32_epi8(_mm512_sub_epi32(r, _mm512_set1_epi32(lowest)))
}

/// The VNNI build of [`blocks`]: per block of 32 output channels (two blocks of 16 weights; a
/// last 16 or 8 alone), every block of 8 points (the last 4 alone), [`block_vnni`].
///
/// # Safety
/// As [`blocks`], `xq` packed by [`pack_avx512`]; the machine has AVX-512 VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
unsafe fn blocks_vnni<const SUM: bool, const QUANT: bool>(
    xq: &[u8],
    q: &Int8Pointwise,
    g: &PointwiseGeometry,
    ep: Epilogue,
    sum: Sum,
    out: *mut f32,
) {
    let quads = xq.len() / (q.cin4() * POINTS_INT8);
    let mut c = 0;
    while c < g.cout {
        let width = block_width(g.cout, c);
        let pair = width == CHANNELS && c + CHANNELS < g.cout && block_width(g.cout, c + CHANNELS) == CHANNELS;
        let mut b = 0;
        while b < quads {
            let p = b * POINTS_INT8;
            // SAFETY: as the function's.
            unsafe {
                match (pair, width, b + 1 < quads) {
                    (true, _, true) => block_vnni::<8, 2, 16, SUM, QUANT>(xq, q, g, ep, sum, out, p, c),
                    (true, _, false) => block_vnni::<4, 2, 16, SUM, QUANT>(xq, q, g, ep, sum, out, p, c),
                    (false, CHANNELS, true) => block_vnni::<8, 1, 16, SUM, QUANT>(xq, q, g, ep, sum, out, p, c),
                    (false, CHANNELS, false) => block_vnni::<4, 1, 16, SUM, QUANT>(xq, q, g, ep, sum, out, p, c),
                    (false, _, true) => block_vnni::<8, 1, 8, SUM, QUANT>(xq, q, g, ep, sum, out, p, c),
                    (false, _, false) => block_vnni::<4, 1, 8, SUM, QUANT>(xq, q, g, ep, sum, out, p, c),
                }
            }
            b += if b + 1 < quads { 2 } else { 1 };
        }
        c += if pair { 2 * CHANNELS } else { width };
    }
}

/// `P` (4 or 8) points from `p` x `J` blocks of `W` (16, or 8 at the end) output channels from
/// `c` of [`blocks_vnni`]: per 4 input channels, one load of each block's weights, one
/// broadcast of each point's 4 input bytes, `P · J` `VPDPBUSD`s; then scaled back as [`block`]
/// does (a multiply, then an add: the same roundings) and, for whole blocks of channel-last
/// output, [`store_avx512`]; otherwise [`store_edge`].
///
/// # Safety
/// As [`block`]; the machine has AVX-512 VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn block_vnni<const P: usize, const J: usize, const W: usize, const SUM: bool, const QUANT: bool>(
    xq: &[u8],
    q: &Int8Pointwise,
    g: &PointwiseGeometry,
    ep: Epilogue,
    sum: Sum,
    out: *mut f32,
    p: usize,
    c: usize,
) {
    use std::arch::x86_64::*;
    let cin4 = q.cin4();
    let lanes: __mmask16 = if W == CHANNELS { u16::MAX } else { 0xff };
    // SAFETY: `xq` holds whole quads of points from `p` and `q` whole blocks of channels from
    // `c` (its vectors padded to a multiple of 8 channels; loads of 8 are masked).
    unsafe {
        let x = xq.as_ptr().add(p * cin4);
        let w: [*const i8; J] = std::array::from_fn(|j| q.weights.as_ptr().add((c + CHANNELS * j) * cin4));
        let init: [__m512i; J] = std::array::from_fn(|j| {
            _mm512_maskz_loadu_epi32(lanes, q.rescale.acc0_unsigned.as_ptr().add(c + CHANNELS * j))
        });
        let mut acc = [init; P];
        for k in 0..cin4 / DEPTH {
            let wv: [__m512i; J] =
                std::array::from_fn(|j| _mm512_maskz_loadu_epi32(lanes, w[j].add(DEPTH * W * k) as *const i32));
            for (pq, acc) in acc.iter_mut().enumerate() {
                let at = x.add(pq / POINTS_INT8 * cin4 * POINTS_INT8 + 16 * k + DEPTH * (pq % POINTS_INT8));
                let xv = _mm512_set1_epi32((at as *const i32).read_unaligned());
                for j in 0..J {
                    acc[j] = _mm512_dpbusd_epi32(acc[j], xv, wv[j]);
                }
            }
        }
        let m: [__m512; J] =
            std::array::from_fn(|j| _mm512_maskz_loadu_ps(lanes, q.rescale.mult.as_ptr().add(c + CHANNELS * j)));
        let b: [__m512; J] =
            std::array::from_fn(|j| _mm512_maskz_loadu_ps(lanes, q.rescale.bias.as_ptr().add(c + CHANNELS * j)));
        let y: [[__m512; J]; P] = std::array::from_fn(|pq| {
            std::array::from_fn(|j| _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[pq][j]), m[j]), b[j]))
        });
        let whole = W == CHANNELS && p + P <= g.points && c + CHANNELS * J <= g.cout;
        if whole && !g.out_channel_first {
            let bounds = (_mm512_set1_ps(ep.bounds.0), _mm512_set1_ps(ep.bounds.1));
            let quant = ep.quant.as_ref().filter(|_| QUANT);
            for (pq, y) in y.iter().enumerate() {
                for (j, &y) in y.iter().enumerate() {
                    store_avx512::<SUM>(y, sum, bounds, quant, out, (p + pq) * g.cout + c + CHANNELS * j);
                }
            }
            return;
        }
        if whole {
            // Channel-first output: the block transposed in registers, then each channel's
            // points stored as a run.
            let bounds = (_mm512_set1_ps(ep.bounds.0), _mm512_set1_ps(ep.bounds.1));
            let quant = ep.quant.as_ref().filter(|_| QUANT);
            let row = |co: usize| co * g.points + p;
            for j in 0..J {
                let c0 = c + CHANNELS * j;
                // Per 4 points: `s[i]`'s 128-bit lane L is channel 4L + i of the 4 points.
                let quads = |r: &[__m512]| {
                    let t = [
                        _mm512_unpacklo_ps(r[0], r[1]),
                        _mm512_unpackhi_ps(r[0], r[1]),
                        _mm512_unpacklo_ps(r[2], r[3]),
                        _mm512_unpackhi_ps(r[2], r[3]),
                    ];
                    [
                        _mm512_shuffle_ps::<0x44>(t[0], t[2]),
                        _mm512_shuffle_ps::<0xee>(t[0], t[2]),
                        _mm512_shuffle_ps::<0x44>(t[1], t[3]),
                        _mm512_shuffle_ps::<0xee>(t[1], t[3]),
                    ]
                };
                let r: [__m512; P] = std::array::from_fn(|pq| y[pq][j]);
                let s = quads(&r[..4]);
                if P == 4 {
                    for (i, &s) in s.iter().enumerate() {
                        let rows = [row(c0 + i), row(c0 + 4 + i), row(c0 + 8 + i), row(c0 + 12 + i)];
                        rows_avx512::<SUM, 4>(s, rows, sum, bounds, quant, out);
                    }
                    continue;
                }
                let s4 = quads(&r[4..]);
                // Channels i and 8 + i, and 4 + i and 12 + i, of all 8 points.
                let even = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
                let odd = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
                for i in 0..4 {
                    let v = _mm512_permutex2var_ps(s[i], even, s4[i]);
                    rows_avx512::<SUM, 2>(v, [row(c0 + i), row(c0 + 8 + i)], sum, bounds, quant, out);
                    let v = _mm512_permutex2var_ps(s[i], odd, s4[i]);
                    rows_avx512::<SUM, 2>(v, [row(c0 + 4 + i), row(c0 + 12 + i)], sum, bounds, quant, out);
                }
            }
            return;
        }
        for j in 0..J {
            for quad in (0..P).step_by(POINTS_INT8) {
                let v: [[f32; CHANNELS]; POINTS_INT8] =
                    std::array::from_fn(|pq| std::mem::transmute::<__m512, [f32; CHANNELS]>(y[quad + pq][j]));
                if p + quad < g.points {
                    store_edge::<SUM, QUANT>(&v, W, g, ep, sum, out, p + quad, c + CHANNELS * j);
                }
            }
        }
    }
}

/// The epilogue of [`store_avx512`] on 16 values that go to `R` places: lanes `16/R · r` on
/// from `out + rows[r]` (and the residual's and kept sum's at the same offsets).
///
/// # Safety
/// The machine has AVX-512F; the `16/R` values from each row lie within the output (and the
/// residual's slices, with `SUM`). (The masked loads and stores touch no other lane.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn rows_avx512<const SUM: bool, const R: usize>(
    y: std::arch::x86_64::__m512,
    rows: [usize; R],
    sum: Sum,
    bounds: (std::arch::x86_64::__m512, std::arch::x86_64::__m512),
    quant: Option<&FakeQuantParams>,
    out: *mut f32,
) {
    use std::arch::x86_64::*;
    let lanes = CHANNELS / R;
    // Row r's lanes, and its address less the lanes before them.
    let piece = |r: usize| (((1u32 << lanes) - 1) << (r * lanes)) as __mmask16;
    let at = |base: *mut f32, r: usize| base.wrapping_add(rows[r]).wrapping_sub(r * lanes);
    // SAFETY: as the function's: only each row's own lanes are read and written.
    unsafe {
        let mut add = _mm512_setzero_ps();
        if SUM {
            for r in 0..R {
                add = _mm512_mask_loadu_ps(add, piece(r), at(sum.add as *mut f32, r));
            }
        }
        let (kept, y) = finish_avx512::<SUM>(y, add, bounds, quant);
        for r in 0..R {
            if SUM && !sum.keep.is_null() {
                _mm512_mask_storeu_ps(at(sum.keep, r), piece(r), kept);
            }
            _mm512_mask_storeu_ps(at(out, r), piece(r), y);
        }
    }
}

/// `a[i] + Σ_k w[4i + k] · x[4L + k]` for each lane `i` (signed bytes into 32-bit lanes): one
/// `SDOT` by element (no stable intrinsic yet, hence the assembly).
///
/// # Safety
/// The machine has the dot-product extension.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn sdot<const L: i32>(
    mut a: std::arch::aarch64::int32x4_t,
    w: std::arch::aarch64::int8x16_t,
    x: std::arch::aarch64::int8x16_t,
) -> std::arch::aarch64::int32x4_t {
    // SAFETY: register-only arithmetic; the caller has the extension.
    unsafe {
        std::arch::asm!(
            "sdot {a:v}.4s, {w:v}.16b, {x:v}.4b[{l}]",
            a = inout(vreg) a,
            w = in(vreg) w,
            x = in(vreg) x,
            l = const L,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    a
}

#[cfg(test)]
mod tests {
    use super::super::tests::values;
    use super::*;

    /// Input levels of a u8 quantize-dequantize with zero point 3 (levels −3..=252).
    pub(crate) const INPUT: FakeQuantParams =
        FakeQuantParams { inv_scale: 40.0, lo: -3.0, hi: 252.0, offset: 0.0, scale: 0.025 };

    /// `n` values on the levels of `p`, spread over all of them.
    pub(crate) fn on_levels(n: usize, p: &FakeQuantParams, seed: u32) -> Vec<f32> {
        let mut x = values(n, seed);
        fake_quant(&mut x.iter_mut().map(|v| *v * 6.0 + 1.5).collect::<Vec<_>>(), p);
        for v in x.iter_mut() {
            *v = p.apply(*v * 4.0 + 2.0);
        }
        x
    }

    /// Per-output-channel int8 weights `[ci][co]`: levels in −127..=127 (each channel's largest
    /// at ±127) times the channel's scale.
    pub(crate) fn int8_weights(cin: usize, cout: usize, seed: u32) -> Vec<f32> {
        let r = values(cin * cout, seed);
        let scales: Vec<f32> = values(cout, seed + 1).iter().map(|v| 0.002 + v.abs() * 0.01).collect();
        let mut w = vec![0.0; cin * cout];
        for co in 0..cout {
            let max = (0..cin).map(|ci| r[ci * cout + co].abs()).fold(0f32, f32::max);
            for ci in 0..cin {
                let q = (r[ci * cout + co] / max * 127.0).round();
                w[ci * cout + co] = q * scales[co];
            }
        }
        w
    }

    #[test]
    fn levels_read_back_every_level() {
        for p in [
            INPUT,
            // i8, symmetric; u8 with a zero point the dequantize does not share.
            FakeQuantParams { inv_scale: 1.0 / 0.0371, lo: -128.0, hi: 127.0, offset: 0.0, scale: 0.0371 },
            FakeQuantParams { inv_scale: 1000.0, lo: -40.0, hi: 215.0, offset: 2.0, scale: 0.001 },
        ] {
            let levels = Levels::of(&p).unwrap();
            // Every output of the quantize-dequantize: level `r + offset` for the rounded `r`.
            for r in p.lo as i32..=p.hi as i32 {
                let x = p.apply(r as f32 / p.inv_scale);
                let m = r + p.offset as i32;
                assert_eq!(levels.level(x) as i32, m - levels.zero, "{p:?}: level {m}");
            }
            assert_eq!(levels.level(-1e9), -128);
            assert_eq!(levels.level(1e9), 127);
        }
        // More than 256 levels cannot be bytes.
        assert_eq!(Levels::of(&FakeQuantParams { lo: 0.0, hi: 300.0, ..INPUT }), None);
    }

    #[test]
    fn int8_weights_are_recognised_and_f32_weights_refused() {
        let levels = Levels::of(&INPUT).unwrap();
        let (cin, cout) = (24, 20);
        let bias = values(cout, 3);
        let w = int8_weights(cin, cout, 5);
        assert!(Int8Pointwise::new(&w, &bias, cin, cout, levels).is_some(), "per-channel int8 weights");
        // One scale for all: the channels' largest levels are below 127.
        let mut per_tensor: Vec<f32> = values(cin * cout, 6).iter().map(|v| (v * 120.0).round() * 0.003).collect();
        per_tensor[5] = -127.0 * 0.003;
        assert!(Int8Pointwise::new(&per_tensor, &bias, cin, cout, levels).is_some(), "per-tensor int8 weights");
        assert_eq!(Int8Pointwise::new(&values(cin * cout, 7), &bias, cin, cout, levels), None, "f32 weights");
        let mut almost = w.clone();
        almost[17] *= 1.01;
        assert_eq!(Int8Pointwise::new(&almost, &bias, cin, cout, levels), None, "one weight off its level");
    }

    /// Every build against the sums in f64 of the dequantized values (which the integer sums are,
    /// exactly, up to the one rounding of each scaled output), and against each other bit for
    /// bit; with a quantize-dequantize fused, bit for bit the unfused output through
    /// `fake_quant`.
    #[test]
    fn int8_pointwise_matches_the_definition() {
        let levels = Levels::of(&INPUT).unwrap();
        for (points, cin, cout) in [
            (1, 1, 1),
            (4, 4, 16),
            (5, 3, 7),
            (9, 8, 48),
            (8, 16, 32),
            (7, 13, 40),
            (13, 48, 8),
            (4, 80, 130),
            (36, 5, 17),
            (5, 20, 9),
            (6, 36, 24),
            (3, 7, 33),
            // Whole blocks of points, the last block of 16 channels partly past the output's.
            (8, 24, 12),
            (12, 9, 28),
        ] {
            for (channel_last, out_channel_first) in [(true, false), (false, false), (true, true), (false, true)] {
                for (clamp, residual) in [(NO_CLAMP, 0), ((0.0, 6.0), 0), ((0.0, 6.0), 1), ((0.0, f32::INFINITY), 2)] {
                    let (point_stride, channel_stride) = if channel_last { (cin, 1) } else { (1, points) };
                    let g = PointwiseGeometry { points, cin, cout, point_stride, channel_stride, out_channel_first };
                    let x = on_levels(points * cin, &INPUT, 11);
                    let w = int8_weights(cin, cout, 12);
                    let bias = values(cout, 13);
                    let add = values(points * cout, 14);
                    let q = Int8Pointwise::new(&w, &bias, cin, cout, levels).expect("int8 weights");
                    let what = format!(
                        "{points}x{cin}->{cout} channel_last {channel_last} out_channel_first {out_channel_first} \
                         clamp {clamp:?} residual {residual}"
                    );
                    let run = |build, quant| {
                        let (mut out, mut kept) =
                            (vec![f32::NAN; points * cout + 3], vec![f32::NAN; points * cout + 3]);
                        let r = (residual > 0)
                            .then(|| Residual { add: &add, keep: (residual == 2).then_some(&mut kept[..]) });
                        pointwise_int8_in(build, &x, &q, &g, clamp, quant, r, &mut out);
                        (out, kept)
                    };
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    let (out, kept) = run(Int8Build::Portable, None);
                    let fq = FakeQuantParams { inv_scale: 50.0, lo: -125.0, hi: 130.0, offset: 3.0, scale: 0.0173 };
                    for &build in Int8Build::all().iter().filter(|b| b.available()) {
                        let (o, k) = run(build, None);
                        assert_eq!((bits(&o), bits(&k)), (bits(&out), bits(&kept)), "{build:?} vs portable: {what}");
                        let (oq, kq) = run(build, Some(fq));
                        let mut want = out.clone();
                        fake_quant(&mut want[..points * cout], &fq);
                        assert_eq!((bits(&oq), bits(&kq)), (bits(&want), bits(&kept)), "{build:?} quantized: {what}");
                    }
                    for p in 0..points {
                        for co in 0..cout {
                            let o = if out_channel_first { co * points + p } else { p * cout + co };
                            let mut s = bias[co] as f64
                                + (0..cin)
                                    .map(|ci| {
                                        w[ci * cout + co] as f64 * x[p * point_stride + ci * channel_stride] as f64
                                    })
                                    .sum::<f64>();
                            if residual > 0 {
                                s += add[o] as f64;
                                if residual == 2 {
                                    assert!((kept[o] as f64 - s).abs() <= 1e-5 * (1.0 + s.abs()), "{what}: kept sum");
                                }
                            }
                            let want = s.clamp(clamp.0 as f64, clamp.1 as f64);
                            assert!(
                                (out[o] as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                                "{what}: point {p} channel {co}: {} vs {want}",
                                out[o]
                            );
                        }
                    }
                    assert!(out[points * cout..].iter().all(|v| v.is_nan()), "{what}: wrote past the output");
                }
            }
        }
    }
}
