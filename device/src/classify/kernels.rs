//! A channel-inner depthwise convolution kernel for tract, registered in tract-linalg's routine
//! table. tract 0.23.9 ships one for aarch64 (NEON, one output point at a time) and wasm; x86-64
//! and armv7 had none.
//!
//! With a channel-inner kernel present, tract runs depthwise convolutions channel-last: its
//! declutter moves a depthwise conv of 16 or more channels to NHWC and the neighbouring
//! pointwise convolutions follow, and [`crate::classify`] moves the narrower ones and the
//! max-pools the same way. Without one, tract's channel-last depthwise is a generic loop that is
//! slower than its channel-first one, so it never chooses that layout. BENCHMARKS.md has the
//! figures.
//!
//! The kernel follows tract's contract for [`tract_linalg::routines::DepthwiseCF32`]: output
//! point `i`, channel `c`, is `bias[c]` plus `kernel[tap_indices[t] * k_stride + c] *
//! input[i * in_stride + offsets[t] + c]` over the taps `t`. It is one Rust body compiled twice on
//! x86-64 (plain SSE2, and AVX2 + FMA picked at run time through tract's ISA detection) and once
//! elsewhere (scalar VFP on armv7, whose Rust target has no NEON; NEON with fused multiply-adds
//! on aarch64, where it is declared to outrank tract's own kernel: 7.59 vs 8.10 M instructions
//! for mini-XCEPTION on a Cortex-A72, BENCHMARKS.md). Blocks of 8 channels and 4 output points
//! give 4 independent accumulator chains, so a narrow layer (8 channels, one vector) is not bound
//! by the adder's latency.
//!
//! The same blocks also drive [`depthwise_hwc`] and [`max_pool_hwc`], whole channel-last images
//! with any padding and stride and a clamp fused, which the classifier's plan runs instead of
//! tract's depthwise convolution and max-pool ops; [`depthwise_chw`] is its channel-first
//! counterpart (vectorised along rows), and [`direct_conv`] and [`pointwise_conv`] are the
//! dense stems and the 1x1 convolutions; [`pointwise_int8`] computes a QDQ model's 1x1
//! convolutions in integers where the machine has a dot product (`SDOT`, AVX-512 VNNI; module
//! `int8`).

use tract_linalg::isa::IsaReq;
use tract_linalg::routines::{Func, Routine, RoutineFactory};

mod int8;
pub use int8::{
    direct_int8, direct_int8_applies, direct_int8_in, int8_build, pointwise_int8, pointwise_int8_in, Int8Build,
    Int8Direct, Int8Pointwise, Levels,
};

/// The clamp of an op with nothing fused: no bounds.
pub const NO_CLAMP: (f32, f32) = (f32::NEG_INFINITY, f32::INFINITY);

/// A residual connection fused into [`direct_conv`] or [`pointwise_conv`]: `add` (laid out like
/// the output) is added to the result before its clamp, and where `keep` is given the sum is
/// also stored there unclamped (for a sum that feeds both a ReLU and a later sum, as in
/// face-api.js's dense blocks).
pub struct Residual<'a> {
    pub add: &'a [f32],
    pub keep: Option<&'a mut [f32]>,
}

/// [`Residual`] as the kernels read it: null pointers where absent.
#[derive(Clone, Copy)]
struct Sum {
    add: *const f32,
    keep: *mut f32,
}

impl Sum {
    /// Of `residual`, whose slices must hold `len` values.
    ///
    /// # Panics
    /// If one is shorter.
    fn of(residual: Option<Residual>, len: usize) -> Sum {
        let Some(r) = residual else { return Sum { add: std::ptr::null(), keep: std::ptr::null_mut() } };
        assert!(r.add.len() >= len, "residual shorter than the output");
        let keep = match r.keep {
            Some(k) => {
                assert!(k.len() >= len, "unclamped sum's output shorter than the output");
                k.as_mut_ptr()
            }
            None => std::ptr::null_mut(),
        };
        Sum { add: r.add.as_ptr(), keep }
    }

    /// Adds the residual to `v`, the output values at `o, o + stride, ...`, and keeps the sum.
    ///
    /// # Safety
    /// Those offsets are within the slices [`Sum::of`] was given, which had a residual.
    #[inline(always)]
    unsafe fn apply<const N: usize>(self, v: &mut [f32; N], o: usize, stride: usize) {
        unsafe {
            if stride == 1 {
                // Contiguous: whole-vector loads and stores.
                let r = (self.add.add(o) as *const [f32; N]).read_unaligned();
                for (v, r) in v.iter_mut().zip(r) {
                    *v += r;
                }
                if !self.keep.is_null() {
                    (self.keep.add(o) as *mut [f32; N]).write_unaligned(*v);
                }
                return;
            }
            for (l, v) in v.iter_mut().enumerate() {
                *v += *self.add.add(o + l * stride);
            }
            if !self.keep.is_null() {
                for (l, v) in v.iter().enumerate() {
                    *self.keep.add(o + l * stride) = *v;
                }
            }
        }
    }
}

/// Channels per block (one AVX2 vector, two NEON vectors).
const LANES: usize = 8;
/// Output points per block: independent accumulators for each tap's multiply-add.
const POINTS: usize = 4;

/// `acc + x * k`; with `FUSED`, one rounding (only where the target has a fused multiply-add
/// instruction; elsewhere `mul_add` would be a call to the C library's software `fmaf`).
#[inline(always)]
fn madd<const FUSED: bool>(acc: f32, x: f32, k: f32) -> f32 {
    if FUSED {
        x.mul_add(k, acc)
    } else {
        acc + x * k
    }
}

/// Taps whose (kernel, input) offsets a call keeps on its stack; a larger kernel allocates them.
const STACK_TAPS: usize = 25;

/// One block of the kernel: `P` output points from point `i`, `W` channels from channel `c`.
/// `taps` holds each tap's kernel offset (its index times `k_stride`) and input offset. With
/// `POOL`, the block is a max-pool's instead: the maximum of the taps' inputs (`kernel` and
/// `bias` are not read). With `CLAMP` the result is clamped to `lo..=hi` (ReLU, ReLU6 fused),
/// with `QUANT` then quantized and dequantized ([`FakeQuantParams::apply`]).
///
/// # Safety
/// tract's contract for `DepthwiseCF32` (see the module documentation), for these points and
/// channels.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<
    const FUSED: bool,
    const POOL: bool,
    const CLAMP: bool,
    const QUANT: bool,
    const W: usize,
    const P: usize,
>(
    input: *const f32,
    output: *mut f32,
    kernel: *const f32,
    taps: &[(isize, isize)],
    bias: *const f32,
    ep: Epilogue,
    c: usize,
    i: usize,
    in_stride: isize,
    out_stride: isize,
) {
    unsafe {
        let input = input.offset(i as isize * in_stride).add(c);
        let init = if POOL { [f32::NEG_INFINITY; W] } else { (bias.add(c) as *const [f32; W]).read_unaligned() };
        let mut acc = [init; P];
        for &(k_off, in_off) in taps {
            let k = if POOL { [0.0; W] } else { (kernel.add(c).offset(k_off) as *const [f32; W]).read_unaligned() };
            for (p, acc) in acc.iter_mut().enumerate() {
                let x = (input.offset(p as isize * in_stride + in_off) as *const [f32; W]).read_unaligned();
                for l in 0..W {
                    acc[l] = if POOL { acc[l].max(x[l]) } else { madd::<FUSED>(acc[l], x[l], k[l]) };
                }
            }
        }
        let output = output.offset(i as isize * out_stride).add(c);
        for (p, acc) in acc.iter().enumerate() {
            let mut v = *acc;
            if CLAMP {
                let (lo, hi) = ep.bounds;
                for v in v.iter_mut() {
                    *v = v.max(lo).min(hi);
                }
            }
            if let Some(q) = ep.quant.as_ref().filter(|_| QUANT) {
                for v in v.iter_mut() {
                    *v = q.apply(*v);
                }
            }
            (output.offset(p as isize * out_stride) as *mut [f32; W]).write_unaligned(v);
        }
    }
}

/// The kernel body. `FUSED`: one rounding per multiply-add (only where the target has a
/// fused multiply-add instruction; elsewhere `mul_add` would be a libm call).
///
/// Runs of `POINTS` output points go through blocks of `2 * LANES` channels, then `LANES`
/// (8 or 4 independent chains, each tap's kernel vectors loaded once per block: 4 chains left
/// a 16-channel layer bound by the adder's latency); the points left over (tract calls once per
/// row and zone, so a short border zone is all leftovers) through blocks of `2 * LANES`
/// channels of one point, then `LANES`; the channels left over one at a time.
///
/// # Safety
/// tract's contract for `DepthwiseCF32` (see the module documentation).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn body<const FUSED: bool, const POOL: bool>(
    input: *const f32,
    output: *mut f32,
    kernel: *const f32,
    tap_indices: &[usize],
    offsets: &[isize],
    bias: *const f32,
    clamp: Epilogue,
    channels: usize,
    k_stride: usize,
    len: usize,
    in_stride: isize,
    out_stride: isize,
) {
    let n_taps = tap_indices.len().min(offsets.len());
    let tap = |t: usize| ((tap_indices[t] * k_stride) as isize, offsets[t]);
    let mut stack = [(0isize, 0isize); STACK_TAPS];
    let heap: Vec<(isize, isize)>;
    let taps: &[(isize, isize)] = if n_taps <= STACK_TAPS {
        for (t, slot) in stack[..n_taps].iter_mut().enumerate() {
            *slot = tap(t);
        }
        &stack[..n_taps]
    } else {
        heap = (0..n_taps).map(tap).collect();
        &heap
    };
    // Without a clamp, builds that skip it (mini-XCEPTION's depthwise convolutions and pools);
    // with a QDQ model's quantize-dequantize after the clamp (or the clamp folded into it,
    // `Epilogue::new`), builds of their own.
    let (x, o, k) = (input, output, kernel);
    let (n, s) = (channels, (len, in_stride, out_stride));
    unsafe {
        match (clamp.bounds == NO_CLAMP, clamp.quant.is_some()) {
            (true, false) => blocks::<FUSED, POOL, false, false>(x, o, k, taps, bias, clamp, n, s),
            (false, false) => blocks::<FUSED, POOL, true, false>(x, o, k, taps, bias, clamp, n, s),
            (true, true) => blocks::<FUSED, POOL, false, true>(x, o, k, taps, bias, clamp, n, s),
            (false, true) => blocks::<FUSED, POOL, true, true>(x, o, k, taps, bias, clamp, n, s),
        }
    }
}

/// The blocks of [`body`], given the taps.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn blocks<const FUSED: bool, const POOL: bool, const CLAMP: bool, const QUANT: bool>(
    input: *const f32,
    output: *mut f32,
    kernel: *const f32,
    taps: &[(isize, isize)],
    bias: *const f32,
    clamp: Epilogue,
    channels: usize,
    (len, in_stride, out_stride): (usize, isize, isize),
) {
    let full = channels - channels % LANES;
    let wide = channels - channels % (2 * LANES);
    let blocked = len - len % POINTS;
    unsafe {
        for c in (0..wide).step_by(2 * LANES) {
            for i in (0..blocked).step_by(POINTS) {
                block::<FUSED, POOL, CLAMP, QUANT, { 2 * LANES }, POINTS>(
                    input, output, kernel, taps, bias, clamp, c, i, in_stride, out_stride,
                );
            }
        }
        for c in (wide..full).step_by(LANES) {
            for i in (0..blocked).step_by(POINTS) {
                block::<FUSED, POOL, CLAMP, QUANT, LANES, POINTS>(
                    input, output, kernel, taps, bias, clamp, c, i, in_stride, out_stride,
                );
            }
        }
        for i in blocked..len {
            let mut c = 0;
            while c + 2 * LANES <= full {
                block::<FUSED, POOL, CLAMP, QUANT, { 2 * LANES }, 1>(
                    input, output, kernel, taps, bias, clamp, c, i, in_stride, out_stride,
                );
                c += 2 * LANES;
            }
            if c < full {
                block::<FUSED, POOL, CLAMP, QUANT, LANES, 1>(
                    input, output, kernel, taps, bias, clamp, c, i, in_stride, out_stride,
                );
            }
        }
        for c in full..channels {
            for i in 0..len {
                block::<FUSED, POOL, CLAMP, QUANT, 1, 1>(
                    input, output, kernel, taps, bias, clamp, c, i, in_stride, out_stride,
                );
            }
        }
    }
}

/// The portable build of the kernel (fused multiply-adds on aarch64, where they are baseline).
///
/// # Safety
/// tract's contract for `DepthwiseCF32` (see the module documentation).
#[allow(clippy::too_many_arguments)]
pub unsafe fn depthwise_c_f32_portable(
    input: *const f32,
    output: *mut f32,
    kernel: *const f32,
    tap_indices: &[usize],
    offsets: &[isize],
    bias: *const f32,
    channels: usize,
    k_stride: usize,
    len: usize,
    in_stride: isize,
    out_stride: isize,
) {
    const FUSED: bool = cfg!(target_arch = "aarch64");
    unsafe {
        let clamp = Epilogue { bounds: NO_CLAMP, quant: None };
        body::<FUSED, false>(
            input,
            output,
            kernel,
            tap_indices,
            offsets,
            bias,
            clamp,
            channels,
            k_stride,
            len,
            in_stride,
            out_stride,
        )
    }
}

/// The AVX2 + FMA build of the kernel.
///
/// # Safety
/// tract's contract for `DepthwiseCF32`, and a CPU with AVX2 and FMA (tract only picks it on one).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn depthwise_c_f32_avx2_fma(
    input: *const f32,
    output: *mut f32,
    kernel: *const f32,
    tap_indices: &[usize],
    offsets: &[isize],
    bias: *const f32,
    channels: usize,
    k_stride: usize,
    len: usize,
    in_stride: isize,
    out_stride: isize,
) {
    unsafe {
        let clamp = Epilogue { bounds: NO_CLAMP, quant: None };
        body::<true, false>(
            input,
            output,
            kernel,
            tap_indices,
            offsets,
            bias,
            clamp,
            channels,
            k_stride,
            len,
            in_stride,
            out_stride,
        )
    }
}

tract_onnx::tract_core::internal::inventory::submit! {
    Routine {
        func: Func::DepthwiseC,
        arch: None,
        isa: IsaReq::ANY,
        boost: 0,
        round_trip: false,
        factory: RoutineFactory::DepthwiseCF32 { name: "fer_edge_depthwise_c_f32", run: depthwise_c_f32_portable },
    }
}

// On aarch64 the same build (NEON there, with fused multiply-adds) declared as an architecture
// kernel with a boost, so that it outranks tract's own `arm64simd_depthwise_c_f32`, which
// blocks 16 channels of one output point and reloads the taps for every point.
#[cfg(target_arch = "aarch64")]
tract_onnx::tract_core::internal::inventory::submit! {
    Routine {
        func: Func::DepthwiseC,
        arch: Some(tract_linalg::isa::Arch::Aarch64),
        isa: IsaReq::ANY,
        boost: 1,
        round_trip: false,
        factory: RoutineFactory::DepthwiseCF32 { name: "fer_edge_neon_depthwise_c_f32", run: depthwise_c_f32_portable },
    }
}

#[cfg(target_arch = "x86_64")]
tract_onnx::tract_core::internal::inventory::submit! {
    Routine {
        func: Func::DepthwiseC,
        arch: Some(tract_linalg::isa::Arch::X86_64),
        isa: IsaReq::ANY.needing(&[tract_linalg::isa::Isa::X86_64Avx2, tract_linalg::isa::Isa::X86_64Fma]),
        boost: 0,
        round_trip: false,
        factory: RoutineFactory::DepthwiseCF32 { name: "fer_edge_avx2_fma_depthwise_c_f32", run: depthwise_c_f32_avx2_fma },
    }
}

/// The channel-inner depthwise kernel tract runs on this machine (ours, by its name), `None`
/// if the registration did not reach tract's table. Calling it also keeps this module linked.
pub fn active_depthwise_c() -> Option<&'static str> {
    let isa = tract_linalg::isa::native();
    tract_linalg::routines::best_for(Func::DepthwiseC, tract_onnx::prelude::DatumType::F32, &isa).map(|r| r.name())
}

/// Shapes of one image of a channel-last (HWC) window operation: a depthwise convolution
/// ([`depthwise_hwc`]) or a max-pool ([`max_pool_hwc`]), any kernel size, stride and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowGeometry {
    pub h: usize,
    pub w: usize,
    /// Channels (of input and output).
    pub c: usize,
    pub kh: usize,
    pub kw: usize,
    /// Strides along rows and columns.
    pub sh: usize,
    pub sw: usize,
    /// Padding rows above and columns left of the image (the padding after it follows from
    /// `oh` and `ow`); padded points are left out (zero for a convolution, ignored by a pool).
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
}

impl WindowGeometry {
    /// Whether the kernels take it: non-zero kernel and strides, every window starting inside
    /// the padded image.
    pub fn is_valid(&self) -> bool {
        self.sh > 0
            && self.sw > 0
            && self.kh > 0
            && self.kw > 0
            && (self.oh == 0 || (self.oh - 1) * self.sh < self.h + self.pad_top)
            && (self.ow == 0 || (self.ow - 1) * self.sw < self.w + self.pad_left)
    }

    /// A 3x3 window at unit strides with one row and column of padding on every side (the
    /// output as large as the input): what [`depthwise_chw`]'s AVX-512 build reads in place.
    pub fn is_same_3x3(&self) -> bool {
        (self.kh, self.kw, self.sh, self.sw, self.pad_top, self.pad_left) == (3, 3, 1, 1, 1, 1)
            && (self.oh, self.ow) == (self.h, self.w)
    }

    /// A 3x3 window at strides of 2 with no padding before the image and at most one row and
    /// column after it (TensorFlow's "same" at stride 2, as face-api.js's strided layers): what
    /// [`depthwise_chw`]'s AVX-512 build reads in place, on rows of 16 points or more.
    pub fn is_same_upper_3x3_s2(&self) -> bool {
        (self.kh, self.kw, self.sh, self.sw, self.pad_top, self.pad_left) == (3, 3, 2, 2, 0, 0)
            && self.oh > 0
            && self.ow >= 16
            && 2 * self.oh <= self.h
            && 2 * self.ow <= self.w
    }

    /// Asserts the slices' lengths and [`Self::is_valid`].
    fn check(&self, x: usize, out: usize) {
        assert!(x >= self.h * self.w * self.c && out >= self.oh * self.ow * self.c, "window slices too short");
        assert!(self.is_valid(), "window geometry {self:?}");
    }
}

/// One image of a channel-last depthwise convolution with its bias and a clamp fused:
/// `out[oy, ox, c] = clamp(bias[c] + Σ k[ky, kx, c] · x[oy·sh + ky − pad_top, ox·sw + kx −
/// pad_left, c], lo, hi)` over the taps inside the image, then `quant` ([`fake_quant`]) where
/// given. `k` is `[ky][kx][c]`.
///
/// # Panics
/// If a slice is shorter than the geometry says.
pub fn depthwise_hwc(
    x: &[f32],
    k: &[f32],
    bias: &[f32],
    g: &WindowGeometry,
    clamp: (f32, f32),
    quant: Option<FakeQuantParams>,
    out: &mut [f32],
) {
    assert!(k.len() >= g.kh * g.kw * g.c && bias.len() >= g.c, "depthwise weights too short");
    window::<false>(x, k.as_ptr(), bias.as_ptr(), g, Epilogue::new(clamp, quant), out)
}

/// One image of a channel-last max-pool, clamped: `out[oy, ox, c] = clamp(max x[oy·sh + ky −
/// pad_top, ox·sw + kx − pad_left, c], lo, hi)` over the taps inside the image.
///
/// # Panics
/// If a slice is shorter than the geometry says.
pub fn max_pool_hwc(x: &[f32], g: &WindowGeometry, clamp: (f32, f32), out: &mut [f32]) {
    window::<true>(x, std::ptr::null(), std::ptr::null(), g, Epilogue { bounds: clamp, quant: None }, out)
}

fn window<const POOL: bool>(
    x: &[f32],
    k: *const f32,
    bias: *const f32,
    g: &WindowGeometry,
    clamp: Epilogue,
    out: &mut [f32],
) {
    g.check(x.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the features are present; `check` and the callers' asserts bound every access.
            unsafe { window_avx2_fma::<POOL>(x.as_ptr(), k, bias, g, clamp, out.as_mut_ptr()) };
            return;
        }
    }
    // SAFETY: `check` and the callers' asserts bound every access.
    unsafe { window_portable::<POOL>(x.as_ptr(), k, bias, g, clamp, out.as_mut_ptr()) }
}

/// A build of an image kernel `body(x, weights, bias, geometry, clamp, out)`: a function of its
/// own with the given attributes, `$fused` as `body`'s `FUSED` and `$generics` its const
/// parameters after it; `$clamp` is the type of what the body applies to its results (the
/// bounds, or an [`Epilogue`]).
macro_rules! kernel_build {
    ($(#[$attr:meta])* $name:ident $(<$(const $p:ident: $t:ty),*>)?, $fused:expr, $body:ident, $geometry:ty, $clamp:ty) => {
        $(#[$attr])*
        unsafe fn $name$(<$(const $p: $t),*>)?(
            x: *const f32,
            weights: *const f32,
            bias: *const f32,
            g: &$geometry,
            clamp: $clamp,
            out: *mut f32,
        ) {
            unsafe { $body::<{ $fused } $($(, $p)*)?>(x, weights, bias, g, clamp, out) }
        }
    };
}

/// The AVX2 + FMA build of an image kernel (see [`kernel_build`]).
macro_rules! avx2_fma_build {
    ($name:ident $(<$(const $p:ident: $t:ty),*>)?, $body:ident, $geometry:ty, $clamp:ty) => {
        kernel_build!(
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            $name $(<$(const $p: $t),*>)?, true, $body, $geometry, $clamp
        );
    };
}

/// The portable build of an image kernel (fused multiply-adds on aarch64), never inlined:
/// inlined into its caller, the same body lost most of its NEON vectorisation on aarch64 after
/// an unrelated change elsewhere in this file (the channel-first depthwise kernel went from 300
/// to 102 `fmla`s and 4.6x the instructions).
macro_rules! portable_build {
    ($name:ident $(<$(const $p:ident: $t:ty),*>)?, $body:ident, $geometry:ty, $clamp:ty) => {
        kernel_build!(
            #[inline(never)] $name $(<$(const $p: $t),*>)?, cfg!(target_arch = "aarch64"), $body, $geometry, $clamp
        );
    };
}

avx2_fma_build!(window_avx2_fma<const POOL: bool>, window_body, WindowGeometry, Epilogue);
portable_build!(window_portable<const POOL: bool>, window_body, WindowGeometry, Epilogue);

/// The taps `ky × kx` of the window at row `iy0`, column `ix0` (either may be outside the
/// image): their indices and input offsets from the image's first point, less `ix0` columns.
fn window_taps(
    g: &WindowGeometry,
    ky: std::ops::Range<usize>,
    kx: std::ops::Range<usize>,
    iy0: isize,
    ix0: isize,
    tap_indices: &mut Vec<usize>,
    offsets: &mut Vec<isize>,
) {
    tap_indices.clear();
    offsets.clear();
    for ky in ky {
        for kx in kx.clone() {
            tap_indices.push(ky * g.kw + kx);
            offsets.push(((iy0 + ky as isize) * g.w as isize + ix0 + kx as isize) * g.c as isize);
        }
    }
}

/// Row by row: the run of output points whose windows lie inside the image in one call of the
/// channel-inner [`body`] (blocks of points × channels), each point of the left and right
/// borders in a call of its own with its taps.
#[inline(always)]
unsafe fn window_body<const FUSED: bool, const POOL: bool>(
    x: *const f32,
    k: *const f32,
    bias: *const f32,
    g: &WindowGeometry,
    clamp: Epilogue,
    out: *mut f32,
) {
    let c = g.c;
    // Output columns whose every tap lies inside the image.
    let ox_lo = g.pad_left.div_ceil(g.sw).min(g.ow);
    let ox_hi = match (g.w + g.pad_left).checked_sub(g.kw) {
        Some(last) => (last / g.sw + 1).clamp(ox_lo, g.ow),
        None => ox_lo,
    };
    let mut tap_indices = Vec::with_capacity(g.kh * g.kw);
    let mut offsets = Vec::with_capacity(g.kh * g.kw);
    unsafe {
        for oy in 0..g.oh {
            let iy0 = (oy * g.sh) as isize - g.pad_top as isize;
            let ky_lo = (-iy0).max(0) as usize;
            let ky_hi = (g.h as isize - iy0).clamp(0, g.kh as isize) as usize;
            let out_row = out.add(oy * g.ow * c);
            // (Loops, not closures: a closure inside a `#[target_feature]` function does not get
            // its features.)
            for ox in (0..ox_lo).chain(ox_hi..g.ow) {
                let ix0 = (ox * g.sw) as isize - g.pad_left as isize;
                let kx_lo = (-ix0).max(0) as usize;
                let kx_hi = (g.w as isize - ix0).clamp(0, g.kw as isize) as usize;
                window_taps(g, ky_lo..ky_hi, kx_lo..kx_hi, iy0, ix0, &mut tap_indices, &mut offsets);
                let o = out_row.add(ox * c);
                body::<FUSED, POOL>(x, o, k, &tap_indices, &offsets, bias, clamp, c, c, 1, 0, 0);
            }
            if ox_lo < ox_hi {
                let ix0 = (ox_lo * g.sw - g.pad_left) as isize;
                window_taps(g, ky_lo..ky_hi, 0..g.kw, iy0, 0, &mut tap_indices, &mut offsets);
                let (input, o) = (x.offset(ix0 * c as isize), out_row.add(ox_lo * c));
                let (in_stride, len) = ((g.sw * c) as isize, ox_hi - ox_lo);
                body::<FUSED, POOL>(input, o, k, &tap_indices, &offsets, bias, clamp, c, c, len, in_stride, c as isize);
            }
        }
    }
}

/// Output points along a row per vector of the channel-first depthwise convolution.
const CHW_LANES: usize = 8;

/// One image of a channel-first depthwise convolution with its bias and a clamp fused:
/// `out[c, oy, ox] = clamp(bias[c] + Σ k[c, ky, kx] · x[c, oy·sh + ky − pad_top, ox·sw + kx −
/// pad_left], lo, hi)` over the taps inside the image. `k` is `[c][ky][kx]` (ONNX's own order).
///
/// Each channel's plane is convolved on its own, from a zero-padded copy when the geometry pads
/// (so that no window needs bounds: border points cost as much as the others). Each block is a
/// row's runs of 8 output points (up to 8 vectors; a last vector that would overrun the row
/// overlaps the one before it), two rows at once where a row has 4 vectors or fewer: every tap
/// is a multiply-add of 8 input points by one weight, on 4 to 8 independent accumulator chains
/// (MobileNetV2's 24-point rows: 3 vectors x 2 rows). A row narrower than 8 goes point by point.
///
/// # Panics
/// If a slice is shorter than the geometry says.
pub fn depthwise_chw(x: &[f32], k: &[f32], bias: &[f32], g: &WindowGeometry, clamp: (f32, f32), out: &mut [f32]) {
    depthwise_chw_in(build(), x, k, bias, g, clamp, out)
}

/// [`depthwise_chw`] in a given build (the AVX-512 one runs 3x3 kernels with column stride 1 or
/// 2 on rows of 8 points or more, and leaves the rest to the AVX2 build).
///
/// # Panics
/// As [`depthwise_chw`], and if this machine lacks the build's instruction sets.
pub(crate) fn depthwise_chw_in(
    build: Build,
    x: &[f32],
    k: &[f32],
    bias: &[f32],
    g: &WindowGeometry,
    clamp: (f32, f32),
    out: &mut [f32],
) {
    assert!(build.available(), "{build:?} needs instructions this machine lacks");
    g.check(x.len(), out.len());
    assert!(k.len() >= g.kh * g.kw * g.c && bias.len() >= g.c, "depthwise weights too short");
    #[cfg(target_arch = "x86_64")]
    let x3 = g.kh == 3 && g.kw == 3 && g.ow >= CHW_LANES && (g.sw == 1 || g.sw == 2);
    #[cfg(target_arch = "x86_64")]
    if build == Build::Avx512 && x3 && g.is_same_3x3() {
        let zero = vec![0.0; g.w];
        let (x, k, bias, out) = (x.as_ptr(), k.as_ptr(), bias.as_ptr(), out.as_mut_ptr());
        for c in 0..g.c {
            // SAFETY: `g.check` bounds the channel's plane in `x` and `out` (`oh == h`, `ow ==
            // w`); `zero` holds a row; the build's features are present.
            unsafe {
                let (src, dst) = (x.add(c * g.h * g.w), out.add(c * g.oh * g.ow));
                chw_3x3_same_avx512(src, k.add(c * 9), *bias.add(c), g, zero.as_ptr(), clamp, dst);
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if build == Build::Avx512 && g.is_same_upper_3x3_s2() {
        let zero = vec![0.0; g.w];
        let (x, k, bias, out) = (x.as_ptr(), k.as_ptr(), bias.as_ptr(), out.as_mut_ptr());
        for c in 0..g.c {
            // SAFETY: `g.check` bounds the channel's plane in `x` and `out`; every window lies
            // in the plane or its one row and column after it (read from `zero`, or zeroed);
            // the build's features are present.
            unsafe {
                let (src, dst) = (x.add(c * g.h * g.w), out.add(c * g.oh * g.ow));
                chw_3x3_s2_avx512(src, k.add(c * 9), *bias.add(c), g, zero.as_ptr(), clamp, dst);
            }
        }
        return;
    }
    let plane = ChwPlane::of(g);
    let mut scratch = if plane.in_place { Vec::new() } else { vec![0.0; plane.rows * plane.cols] };
    let (x, k, bias, out) = (x.as_ptr(), k.as_ptr(), bias.as_ptr(), out.as_mut_ptr());
    for c in 0..g.c {
        // SAFETY: `g.check` bounds the channel's plane in `x` and `out`; `ChwPlane::of` sizes
        // the padded copy for every window; the build's features are present.
        unsafe {
            let src = x.add(c * g.h * g.w);
            let src = if plane.in_place { src } else { plane.copy(src, &mut scratch) };
            let (kc, b, dst) = (k.add(c * g.kh * g.kw), bias.add(c), out.add(c * g.oh * g.ow));
            match build {
                #[cfg(target_arch = "x86_64")]
                Build::Avx512 if x3 && g.sw == 1 => chw_3x3_avx512::<1>(src, kc, *b, &plane, clamp, dst),
                #[cfg(target_arch = "x86_64")]
                Build::Avx512 if x3 => chw_3x3_avx512::<2>(src, kc, *b, &plane, clamp, dst),
                #[cfg(target_arch = "x86_64")]
                Build::Avx512 | Build::Avx2Fma => depthwise_chw_avx2_fma(src, kc, b, &plane, clamp, dst),
                Build::Portable => depthwise_chw_portable(src, kc, b, &plane, clamp, dst),
            }
        }
    }
}

/// One channel of [`depthwise_chw`] for a 3x3 kernel with column stride `SW` (1 or 2) and rows
/// of 8 points or more, in AVX-512 (VL: 32 registers of 8 lanes), on the plane or its padded
/// copy: blocks of up to 2 rows x 4 vectors of 8 points (a last vector that would overrun the
/// row moved back to end at its end) with the 9 weights in registers; for stride 2 each tap's 8
/// points are the even lanes of one 16-point load, gathered by a permute. (The AVX2 build of
/// the portable kernel runs the taps as run-time loops and reads stride 2 lane by lane:
/// face-api.js's 56x56x32 layers 0.057 ms. Reading the plane in place instead of a padded copy,
/// with the border vectors' loads masked or the border points one by one, was slower.)
///
/// # Safety
/// As [`depthwise_chw_plane`], with `g.kh == g.kw == 3`, `g.sw == SW`, `g.ow >= 8`; the
/// machine has AVX-512F and VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn chw_3x3_avx512<const SW: usize>(
    origin: *const f32,
    k: *const f32,
    b: f32,
    plane: &ChwPlane,
    clamp: (f32, f32),
    out: *mut f32,
) {
    use std::arch::x86_64::*;
    const L: usize = CHW_LANES;
    let g = &plane.g;
    let vectors = g.ow.div_ceil(L);
    unsafe {
        let w: [[__m256; 3]; 3] =
            std::array::from_fn(|ky| std::array::from_fn(|kx| _mm256_set1_ps(*k.add(ky * 3 + kx))));
        let mut oy = 0;
        while oy < g.oh {
            let rows = (g.oh - oy).min(2);
            let mut v0 = 0;
            while v0 < vectors {
                let v = (vectors - v0).min(4);
                let x0 = v0 * L;
                let at = (oy, x0, (x0 + (v - 1) * L).min(g.ow - L));
                match (v, rows) {
                    (1, 1) => chw_3x3_block_avx512::<SW, 1, 1>(origin, &w, b, plane, clamp, out, at),
                    (2, 1) => chw_3x3_block_avx512::<SW, 2, 1>(origin, &w, b, plane, clamp, out, at),
                    (3, 1) => chw_3x3_block_avx512::<SW, 3, 1>(origin, &w, b, plane, clamp, out, at),
                    (_, 1) => chw_3x3_block_avx512::<SW, 4, 1>(origin, &w, b, plane, clamp, out, at),
                    (1, _) => chw_3x3_block_avx512::<SW, 1, 2>(origin, &w, b, plane, clamp, out, at),
                    (2, _) => chw_3x3_block_avx512::<SW, 2, 2>(origin, &w, b, plane, clamp, out, at),
                    (3, _) => chw_3x3_block_avx512::<SW, 3, 2>(origin, &w, b, plane, clamp, out, at),
                    _ => chw_3x3_block_avx512::<SW, 4, 2>(origin, &w, b, plane, clamp, out, at),
                }
                v0 += v;
            }
            oy += rows;
        }
    }
}

/// `R` rows from output row `oy` x `V` vectors of 8 points from point `x0` of
/// [`chw_3x3_avx512`], the last from point `last`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn chw_3x3_block_avx512<const SW: usize, const V: usize, const R: usize>(
    origin: *const f32,
    w: &[[std::arch::x86_64::__m256; 3]; 3],
    b: f32,
    plane: &ChwPlane,
    (lo, hi): (f32, f32),
    out: *mut f32,
    (oy, x0, last): (usize, usize, usize),
) {
    use std::arch::x86_64::*;
    const L: usize = CHW_LANES;
    let g = &plane.g;
    let start = |v: usize| if v + 1 == V { last } else { x0 + v * L };
    unsafe {
        let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
        let mut acc = [[_mm256_set1_ps(b); V]; R];
        for (r, acc) in acc.iter_mut().enumerate() {
            for (ky, w) in w.iter().enumerate() {
                let row = origin.add(((oy + r) * g.sh + ky) * plane.cols);
                for (kx, w) in w.iter().enumerate() {
                    for (v, acc) in acc.iter_mut().enumerate() {
                        let p = row.add(start(v) * SW + kx);
                        let xv = if SW == 1 {
                            _mm256_loadu_ps(p)
                        } else {
                            _mm512_castps512_ps256(_mm512_permutexvar_ps(evens, _mm512_loadu_ps(p)))
                        };
                        *acc = _mm256_fmadd_ps(xv, *w, *acc);
                    }
                }
            }
        }
        store_rows_avx512(&acc, (lo, hi), out, g.ow, oy, start);
    }
}

/// Stores a channel-first depthwise block's `R` rows x `V` vectors of 8 points, clamped: row
/// `oy + r` of an output plane `ow` wide, vector `v` from point `start(v)`.
///
/// # Safety
/// Every point stored lies in `out`'s plane; the machine has AVX-512F and VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[inline]
unsafe fn store_rows_avx512<const V: usize, const R: usize>(
    acc: &[[std::arch::x86_64::__m256; V]; R],
    (lo, hi): (f32, f32),
    out: *mut f32,
    ow: usize,
    oy: usize,
    start: impl Fn(usize) -> usize,
) {
    use std::arch::x86_64::*;
    let (lo, hi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
    for (r, acc) in acc.iter().enumerate() {
        for (v, &acc) in acc.iter().enumerate() {
            let y = _mm256_min_ps(_mm256_max_ps(acc, lo), hi);
            // SAFETY: as the caller says.
            unsafe { _mm256_storeu_ps(out.add((oy + r) * ow + start(v)), y) };
        }
    }
}

/// One channel of [`depthwise_chw`] for a 3x3 kernel at unit strides with one row and column of
/// zero padding on each side ([`WindowGeometry::is_same_3x3`], rows of 8 points or more), in
/// AVX-512 (VL), reading the plane where it lies: rows outside it are a row of zeros, and the
/// columns outside it enter a row's first and last vectors by a lane shift of the vector
/// loaded beside them. (The padded copy it replaces cost face-api.js's 56x56x32 layers 9 of
/// their 36 us.) Blocks of up to 2 rows x 4 vectors of 8 points, as [`chw_3x3_avx512`]'s.
///
/// # Safety
/// `x` and `out` hold the channel's `h` x `w` planes, `k` its 9 taps, `zero` `w` zeros; `g` is
/// as said; the machine has AVX-512F and VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn chw_3x3_same_avx512(
    x: *const f32,
    k: *const f32,
    b: f32,
    g: &WindowGeometry,
    zero: *const f32,
    clamp: (f32, f32),
    out: *mut f32,
) {
    use std::arch::x86_64::*;
    const L: usize = CHW_LANES;
    let vectors = g.ow.div_ceil(L);
    unsafe {
        let w: [[__m256; 3]; 3] =
            std::array::from_fn(|ky| std::array::from_fn(|kx| _mm256_set1_ps(*k.add(ky * 3 + kx))));
        let mut oy = 0;
        while oy < g.oh {
            let rows = (g.oh - oy).min(2);
            // Input rows oy - 1 to oy + 2 (the last read only by a second output row).
            let src: [*const f32; 4] = std::array::from_fn(|j| {
                let iy = (oy + j).wrapping_sub(1);
                if iy < g.h {
                    x.add(iy * g.w)
                } else {
                    zero
                }
            });
            let mut v0 = 0;
            while v0 < vectors {
                let v = (vectors - v0).min(4);
                let at = (oy, v0 * L);
                macro_rules! block {
                    ($($v:literal $r:literal)*) => {
                        match (v, rows, v0 == 0, v0 + v == vectors) {
                            $(
                                ($v, $r, false, false) => chw_same_block_avx512::<$v, $r, false, false>(&src, &w, b, g, clamp, out, at),
                                ($v, $r, true, false) => chw_same_block_avx512::<$v, $r, true, false>(&src, &w, b, g, clamp, out, at),
                                ($v, $r, false, true) => chw_same_block_avx512::<$v, $r, false, true>(&src, &w, b, g, clamp, out, at),
                                ($v, $r, true, true) => chw_same_block_avx512::<$v, $r, true, true>(&src, &w, b, g, clamp, out, at),
                            )*
                            _ => unreachable!("blocks of 1 to 4 vectors and 1 or 2 rows"),
                        }
                    };
                }
                block!(1 1 2 1 3 1 4 1 1 2 2 2 3 2 4 2);
                v0 += v;
            }
            oy += rows;
        }
    }
}

/// `R` rows from output row `oy` x `V` vectors from point `x0` of [`chw_3x3_same_avx512`];
/// `LEFT`: the first vector starts the row (its left neighbours shifted in, a zero first);
/// `RIGHT`: the last vector ends it (moved back to end at the row's end; its right neighbours
/// shifted in, a zero last).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[inline]
unsafe fn chw_same_block_avx512<const V: usize, const R: usize, const LEFT: bool, const RIGHT: bool>(
    src: &[*const f32; 4],
    w: &[[std::arch::x86_64::__m256; 3]; 3],
    b: f32,
    g: &WindowGeometry,
    (lo, hi): (f32, f32),
    out: *mut f32,
    (oy, x0): (usize, usize),
) {
    use std::arch::x86_64::*;
    const L: usize = CHW_LANES;
    let start = |v: usize| if RIGHT && v + 1 == V { g.ow - L } else { x0 + v * L };
    unsafe {
        let zero = _mm256_setzero_si256();
        let mut acc = [[_mm256_set1_ps(b); V]; R];
        for (r, acc) in acc.iter_mut().enumerate() {
            for (ky, w) in w.iter().enumerate() {
                let row = src[r + ky];
                for (v, acc) in acc.iter_mut().enumerate() {
                    let p = row.add(start(v));
                    let c = _mm256_loadu_ps(p);
                    let left = if LEFT && v == 0 {
                        _mm256_castsi256_ps(_mm256_alignr_epi32::<7>(_mm256_castps_si256(c), zero))
                    } else {
                        _mm256_loadu_ps(p.sub(1))
                    };
                    let right = if RIGHT && v + 1 == V {
                        _mm256_castsi256_ps(_mm256_alignr_epi32::<1>(zero, _mm256_castps_si256(c)))
                    } else {
                        _mm256_loadu_ps(p.add(1))
                    };
                    *acc = _mm256_fmadd_ps(left, w[0], *acc);
                    *acc = _mm256_fmadd_ps(c, w[1], *acc);
                    *acc = _mm256_fmadd_ps(right, w[2], *acc);
                }
            }
        }
        store_rows_avx512(&acc, (lo, hi), out, g.ow, oy, start);
    }
}

/// One channel of [`depthwise_chw`] for [`WindowGeometry::is_same_upper_3x3_s2`], in AVX-512,
/// reading the plane where it lies: 16 output points per vector from 32 input points (two
/// loads) split by two permutes into the even (tap 0) and odd (tap 1) columns, tap 2 the even
/// ones moved by a lane with the 33rd point (zero past the image) shifted in; rows past the
/// image read a row of zeros. Blocks of 2 output rows (sharing their middle input row) x 2
/// vectors. (The padded copy and one 8-lane permute per tap it replaces took 28-30 us for
/// face-api.js's 56x56x32 -> 28 layer, this 9-13 us.)
///
/// # Safety
/// `x` and `out` hold the channel's `h` x `w` and `oh` x `ow` planes, `k` its 9 taps, `zero`
/// `w` zeros (a row: loads end at column `2 ow <= w`); `g` is as said; the machine has
/// AVX-512F and VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn chw_3x3_s2_avx512(
    x: *const f32,
    k: *const f32,
    b: f32,
    g: &WindowGeometry,
    zero: *const f32,
    clamp: (f32, f32),
    out: *mut f32,
) {
    use std::arch::x86_64::*;
    const L: usize = 16;
    let vectors = g.ow.div_ceil(L);
    unsafe {
        let w: [[__m512; 3]; 3] =
            std::array::from_fn(|ky| std::array::from_fn(|kx| _mm512_set1_ps(*k.add(ky * 3 + kx))));
        let mut oy = 0;
        while oy < g.oh {
            let rows = (g.oh - oy).min(2);
            // Input rows 2 oy to 2 oy + 4 (the last two only for a second output row).
            let src: [*const f32; 5] = std::array::from_fn(|j| {
                let iy = 2 * oy + j;
                if iy < g.h {
                    x.add(iy * g.w)
                } else {
                    zero
                }
            });
            let mut v0 = 0;
            while v0 < vectors {
                let v = (vectors - v0).min(2);
                // Each vector's first output point (the row's last vector ends at its end).
                let at: [usize; 2] = std::array::from_fn(|i| ((v0 + i) * L).min(g.ow - L));
                match (v, rows) {
                    (1, 1) => chw_s2_block_avx512::<1, 1>(&src, &w, b, g, clamp, out, oy, at),
                    (2, 1) => chw_s2_block_avx512::<2, 1>(&src, &w, b, g, clamp, out, oy, at),
                    (1, _) => chw_s2_block_avx512::<1, 2>(&src, &w, b, g, clamp, out, oy, at),
                    _ => chw_s2_block_avx512::<2, 2>(&src, &w, b, g, clamp, out, oy, at),
                }
                v0 += v;
            }
            oy += rows;
        }
    }
}

/// `R` output rows from `oy` x `V` vectors of 16 points from `at` of [`chw_3x3_s2_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn chw_s2_block_avx512<const V: usize, const R: usize>(
    src: &[*const f32; 5],
    w: &[[std::arch::x86_64::__m512; 3]; 3],
    b: f32,
    g: &WindowGeometry,
    (lo, hi): (f32, f32),
    out: *mut f32,
    oy: usize,
    at: [usize; 2],
) {
    use std::arch::x86_64::*;
    unsafe {
        let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let mut acc = [[_mm512_set1_ps(b); V]; R];
        for (j, &row) in src.iter().enumerate().take(2 * R + 1) {
            for v in 0..V {
                let c0 = 2 * at[v];
                let p = row.add(c0);
                let (a, bb) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)));
                let even = _mm512_permutex2var_ps(a, evens, bb);
                let odd = _mm512_permutex2var_ps(a, odds, bb);
                // Input column c0 + 32, or the padding after the image.
                let next = if c0 + 32 < g.w { _mm512_set1_ps(*p.add(32)) } else { _mm512_setzero_ps() };
                let even2 =
                    _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(_mm512_castps_si512(next), _mm512_castps_si512(even)));
                // Input row j is tap row j of output row 0 and j - 2 of output row 1.
                for (r, acc) in acc.iter_mut().enumerate() {
                    let Some(ky) = j.checked_sub(2 * r).filter(|&ky| ky < 3) else { continue };
                    acc[v] = _mm512_fmadd_ps(even, w[ky][0], acc[v]);
                    acc[v] = _mm512_fmadd_ps(odd, w[ky][1], acc[v]);
                    acc[v] = _mm512_fmadd_ps(even2, w[ky][2], acc[v]);
                }
            }
        }
        let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
        for (r, acc) in acc.iter().enumerate() {
            for (v, &acc) in acc.iter().enumerate() {
                let y = _mm512_min_ps(_mm512_max_ps(acc, lo), hi);
                _mm512_storeu_ps(out.add((oy + r) * g.ow + at[v]), y);
            }
        }
    }
}

/// One channel of [`depthwise_chw`]: the geometry and the plane the kernel reads (the input
/// plane itself, or its zero-padded copy of `rows` x `cols`, every window inside).
struct ChwPlane {
    g: WindowGeometry,
    in_place: bool,
    rows: usize,
    cols: usize,
}

impl ChwPlane {
    fn of(g: &WindowGeometry) -> ChwPlane {
        // Rows and columns every window reads, plus the overreach of a stride-2 vector load.
        let rows = (g.oh.max(1) - 1) * g.sh + g.kh;
        let cols = (g.ow.max(1) - 1) * g.sw + g.kw + if g.sw == 2 { CHW_LANES } else { 0 };
        let in_place = g.pad_top == 0 && g.pad_left == 0 && rows <= g.h && cols <= g.w;
        let (rows, cols) = if in_place { (g.h, g.w) } else { (rows, cols) };
        ChwPlane { g: *g, in_place, rows, cols }
    }

    /// Copies the plane at `src` into `scratch` (its zero border stays zero from one channel to
    /// the next) and returns where the copy starts.
    unsafe fn copy(&self, src: *const f32, scratch: &mut [f32]) -> *const f32 {
        let g = &self.g;
        // SAFETY: the caller passes a plane of `g.h` x `g.w`.
        let src = unsafe { std::slice::from_raw_parts(src, g.h * g.w) };
        pad_plane(src, (g.h, g.w), (g.pad_top, g.pad_left), 1, (self.rows, self.cols), scratch);
        scratch.as_ptr()
    }
}

/// Copies an `h` x `w` plane into `dst`, `rows` x `phases` x `cols`, with `top` rows and `left`
/// columns of padding before it, each padded row split into `phases` (column `phase + j ·
/// phases` at `[phase][j]`: a strided run of columns becomes contiguous). What lies outside the
/// plane is left as `dst` has it (zeros).
fn pad_plane(
    src: &[f32],
    (h, w): (usize, usize),
    (top, left): (usize, usize),
    phases: usize,
    (rows, cols): (usize, usize),
    dst: &mut [f32],
) {
    let image_rows = top..rows.min(top + h);
    if phases == 1 {
        let n = w.min(cols.saturating_sub(left));
        if n > 0 {
            for y in image_rows {
                dst[y * cols + left..][..n].copy_from_slice(&src[(y - top) * w..][..n]);
            }
        }
        return;
    }
    // Phase `phase` holds padded columns `phase + j · phases`: source column `ix0 + (j − j0) ·
    // phases` from its first inside the plane, `j0`, for `n` columns (worked out once per phase:
    // the divisions, per row, took a sixth of face-api.js's stem copy).
    for phase in 0..phases {
        let j0 = left.saturating_sub(phase).div_ceil(phases);
        let ix0 = phase + j0 * phases - left;
        let n = cols.saturating_sub(j0).min(w.saturating_sub(ix0).div_ceil(phases));
        if n == 0 {
            continue;
        }
        for y in image_rows.clone() {
            let src = &src[(y - top) * w..][ix0..w];
            let dst = &mut dst[(y * phases + phase) * cols + j0..][..n];
            if phases == 2 {
                every_other(src, dst);
            } else {
                for (d, s) in dst.iter_mut().zip(src.iter().step_by(phases)) {
                    *d = *s;
                }
            }
        }
    }
}

avx2_fma_build!(depthwise_chw_avx2_fma, depthwise_chw_plane, ChwPlane, (f32, f32));
portable_build!(depthwise_chw_portable, depthwise_chw_plane, ChwPlane, (f32, f32));

/// One channel of [`depthwise_chw`]: `origin` is where the window of output (0, 0) starts (the
/// plane, or its padded copy), `k` the channel's taps, `bias` its bias.
#[inline(always)]
unsafe fn depthwise_chw_plane<const FUSED: bool>(
    origin: *const f32,
    k: *const f32,
    bias: *const f32,
    plane: &ChwPlane,
    clamp: (f32, f32),
    out: *mut f32,
) {
    const L: usize = CHW_LANES;
    let g = &plane.g;
    unsafe {
        #[cfg(target_arch = "aarch64")]
        if g.sw == 1 && g.kh == 3 && g.kw == 3 && g.ow >= 4 {
            chw_plane_neon::<3, 3>(origin, k, *bias, plane, clamp, out);
            return;
        }
        let b = *bias;
        if g.ow < L {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut acc = b;
                    for ky in 0..g.kh {
                        let row = origin.add((oy * g.sh + ky) * plane.cols + ox * g.sw);
                        for kx in 0..g.kw {
                            acc = madd::<FUSED>(acc, *row.add(kx), *k.add(ky * g.kw + kx));
                        }
                    }
                    *out.add(oy * g.ow + ox) = acc.max(clamp.0).min(clamp.1);
                }
            }
            return;
        }
        let vectors = g.ow.div_ceil(L);
        let mut oy = 0;
        while oy < g.oh {
            let pair = vectors <= 4 && oy + 1 < g.oh;
            let mut v0 = 0;
            while v0 < vectors {
                let v = (vectors - v0).min(8);
                macro_rules! block {
                    ($($n:literal)*) => {
                        match (v, pair) {
                            $(($n, false) => chw_rows::<FUSED, $n, 1>(origin, k, b, plane, clamp, out, oy, v0),)*
                            (1, true) => chw_rows::<FUSED, 1, 2>(origin, k, b, plane, clamp, out, oy, v0),
                            (2, true) => chw_rows::<FUSED, 2, 2>(origin, k, b, plane, clamp, out, oy, v0),
                            (3, true) => chw_rows::<FUSED, 3, 2>(origin, k, b, plane, clamp, out, oy, v0),
                            _ => chw_rows::<FUSED, 4, 2>(origin, k, b, plane, clamp, out, oy, v0),
                        }
                    };
                }
                block!(1 2 3 4 5 6 7 8);
                v0 += v;
            }
            oy += if pair { 2 } else { 1 };
        }
    }
}

/// One channel of [`depthwise_chw`] on aarch64 for a `KH` x `KW` kernel with unit column stride
/// (4 points or more per row): each row in blocks of up to 8 NEON vectors of 4 points, every tap
/// one load and one multiply-add by a weight held in a register per vector. (The portable
/// kernel's blocks of 8 points left this in scalar and lane-by-lane code: mini-XCEPTION's
/// 60x60x8 layer at 1.3 instructions per multiply-add.)
///
/// # Safety
/// As [`depthwise_chw_plane`], with `g.sw == 1`, `g.kh == KH`, `g.kw == KW`, `g.ow >= 4`.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn chw_plane_neon<const KH: usize, const KW: usize>(
    origin: *const f32,
    k: *const f32,
    b: f32,
    plane: &ChwPlane,
    clamp: (f32, f32),
    out: *mut f32,
) {
    let g = &plane.g;
    unsafe {
        let kt: [[f32; KW]; KH] = std::array::from_fn(|ky| std::array::from_fn(|kx| *k.add(ky * KW + kx)));
        for oy in 0..g.oh {
            let mut x0 = 0;
            while x0 + 32 <= g.ow {
                chw_block_neon::<KH, KW, 8>(origin, &kt, b, plane, clamp, out, oy, x0);
                x0 += 32;
            }
            if x0 < g.ow {
                // Up to 8 vectors for the rest of the row, the last one ending at its end.
                let x0 = x0.min(g.ow - 4);
                match (g.ow - x0).div_ceil(4) {
                    1 => chw_block_neon::<KH, KW, 1>(origin, &kt, b, plane, clamp, out, oy, x0),
                    2 => chw_block_neon::<KH, KW, 2>(origin, &kt, b, plane, clamp, out, oy, x0),
                    3 => chw_block_neon::<KH, KW, 3>(origin, &kt, b, plane, clamp, out, oy, x0),
                    4 => chw_block_neon::<KH, KW, 4>(origin, &kt, b, plane, clamp, out, oy, x0),
                    5 => chw_block_neon::<KH, KW, 5>(origin, &kt, b, plane, clamp, out, oy, x0),
                    6 => chw_block_neon::<KH, KW, 6>(origin, &kt, b, plane, clamp, out, oy, x0),
                    7 => chw_block_neon::<KH, KW, 7>(origin, &kt, b, plane, clamp, out, oy, x0),
                    _ => chw_block_neon::<KH, KW, 8>(origin, &kt, b, plane, clamp, out, oy, x0),
                }
            }
        }
    }
}

/// `V` vectors of 4 points of output row `oy` from point `x0` (the last vector moved back to end
/// at the row's last point) of [`chw_plane_neon`].
#[cfg(target_arch = "aarch64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn chw_block_neon<const KH: usize, const KW: usize, const V: usize>(
    origin: *const f32,
    kt: &[[f32; KW]; KH],
    b: f32,
    plane: &ChwPlane,
    clamp: (f32, f32),
    out: *mut f32,
    oy: usize,
    x0: usize,
) {
    use std::arch::aarch64::*;
    let g = &plane.g;
    let start = |v: usize| if v + 1 == V { (x0 + 4 * v).min(g.ow - 4) } else { x0 + 4 * v };
    unsafe {
        let mut acc = [vdupq_n_f32(b); V];
        for (ky, kt) in kt.iter().enumerate() {
            let row = origin.add((oy * g.sh + ky) * plane.cols);
            for (kx, &w) in kt.iter().enumerate() {
                for (v, acc) in acc.iter_mut().enumerate() {
                    *acc = vfmaq_n_f32(*acc, vld1q_f32(row.add(start(v) + kx)), w);
                }
            }
        }
        if clamp != NO_CLAMP {
            let (lo, hi) = (vdupq_n_f32(clamp.0), vdupq_n_f32(clamp.1));
            for acc in acc.iter_mut() {
                *acc = vminnmq_f32(vmaxnmq_f32(*acc, lo), hi);
            }
        }
        for (v, acc) in acc.iter().enumerate() {
            vst1q_f32(out.add(oy * g.ow + start(v)), *acc);
        }
    }
}

/// `R` output rows from `oy` × `V` vectors of [`CHW_LANES`] points from vector `v0` of one
/// channel of [`depthwise_chw`] (a vector that would overrun the row is moved back to end at
/// its last point, overlapping the one before).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn chw_rows<const FUSED: bool, const V: usize, const R: usize>(
    origin: *const f32,
    k: *const f32,
    b: f32,
    plane: &ChwPlane,
    (lo, hi): (f32, f32),
    out: *mut f32,
    oy: usize,
    v0: usize,
) {
    const L: usize = CHW_LANES;
    let g = &plane.g;
    // Vectors start `L` points apart, but for a last one that would overrun the row (written
    // out per vector so that, unrolled, each load is the row's base plus a constant).
    let last = ((v0 + V - 1) * L).min(g.ow - L);
    let start = |v: usize| if v + 1 == V { last } else { (v0 + v) * L };
    unsafe {
        let mut acc = [[[b; L]; V]; R];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let kv = *k.add(ky * g.kw + kx);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = origin.add(((oy + r) * g.sh + ky) * plane.cols + kx);
                    for (v, acc) in acc.iter_mut().enumerate() {
                        let first = row.add(start(v) * g.sw);
                        let xv: [f32; L] = match g.sw {
                            1 => (first as *const [f32; L]).read_unaligned(),
                            // Every other point of 15 (a shuffle, not 8 loads): the copy's
                            // columns reach that far.
                            2 => {
                                let x2 = (first as *const [f32; 2 * L - 1]).read_unaligned();
                                std::array::from_fn(|l| x2[2 * l])
                            }
                            _ => std::array::from_fn(|l| *first.add(l * g.sw)),
                        };
                        for l in 0..L {
                            acc[l] = madd::<FUSED>(acc[l], xv[l], kv);
                        }
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                let mut y = *acc;
                for y in y.iter_mut() {
                    *y = y.max(lo).min(hi);
                }
                (out.add((oy + r) * g.ow + start(v)) as *mut [f32; L]).write_unaligned(y);
            }
        }
    }
}

/// Output points (along a row) and output channels per block of the direct convolution.
pub const DIRECT_LANES: usize = 8;

/// Shapes of one image's direct convolution (see [`direct_conv`]).
#[derive(Debug, Clone, Copy)]
pub struct DirectGeometry {
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    /// Strides along rows and columns.
    pub sh: usize,
    pub sw: usize,
    /// Zero rows above and columns left of the image (the padding after it follows from `oh`
    /// and `ow`).
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
}

/// Widest kernel row [`direct_conv`] takes.
pub const DIRECT_MAX_KW: usize = 16;

impl DirectGeometry {
    /// Unit strides, no padding: the kernel reads the input where it lies.
    fn reads_in_place(&self) -> bool {
        self.sh == 1
            && self.sw == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && self.oh + self.kh == self.h + 1
            && self.ow + self.kw == self.w + 1
    }
}

/// What [`direct_body`] reads: the input as `[ci][row][phase][col]`, each padded row split into
/// `sw` phases (columns `phase`, `phase + sw`, ...), so that a run of output points of a strided
/// convolution reads a contiguous run of each phase.
struct DirectInput {
    g: DirectGeometry,
    /// The residual connection fused, if any.
    sum: Sum,
    /// Rows and columns per phase.
    rows: usize,
    cols: usize,
}

impl DirectInput {
    fn at(g: &DirectGeometry, sum: Sum) -> DirectInput {
        if g.reads_in_place() {
            DirectInput { g: *g, sum, rows: g.h, cols: g.w }
        } else {
            let rows = (g.oh - 1) * g.sh + g.kh;
            let cols = ((g.ow - 1) * g.sw + g.kw).div_ceil(g.sw);
            DirectInput { g: *g, sum, rows, cols }
        }
    }

    /// The padded, phase-split copy of `x` (zeros outside the image).
    fn copy(&self, x: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let plane = self.rows * g.sw * self.cols;
        let mut buf = vec![0.0; g.cin * plane];
        for (src, dst) in x.chunks_exact((g.h * g.w).max(1)).zip(buf.chunks_exact_mut(plane.max(1))) {
            pad_plane(src, (g.h, g.w), (g.pad_top, g.pad_left), g.sw, (self.rows, self.cols), dst);
        }
        buf
    }
}

/// One image of a dense convolution: `out[co, oy, ox] = clamp(bias[co] + Σ packed[(ci, ky, kx),
/// co] · x[ci, oy·sh + ky − pad_top, ox·sw + kx − pad_left], lo, hi)`, zero outside the image.
/// `packed` is `[ci][ky][kx][co]` with `co` padded to a multiple of [`DIRECT_LANES`], `bias`
/// padded the same way.
///
/// Blocks of 16 output points of a row × 4 output channels (8 × 8 on rows narrower than 16;
/// 32 × 8 in the AVX-512 build on rows of 32 or more) stay in registers across all taps (64
/// accumulators: 8 AVX2 or 16 NEON registers; 256 in 16 AVX-512 registers); each tap
/// loads the block's runs of input points and broadcasts one weight per channel. A row whose
/// width is not a multiple of the block ends with a block that overlaps the previous one.
/// With unit strides and no padding it reads the input where it lies; otherwise from a padded
/// copy whose rows are split by column phase (see [`DirectInput`]). A `residual` is added before
/// the clamp.
///
/// # Panics
/// If a slice is shorter than the geometry says, the output row is narrower than 8, a stride is
/// zero or the kernel is wider than [`DIRECT_MAX_KW`].
pub fn direct_conv(
    x: &[f32],
    packed: &[f32],
    bias: &[f32],
    g: &DirectGeometry,
    clamp: (f32, f32),
    residual: Option<Residual>,
    out: &mut [f32],
) {
    direct_conv_in(build(), x, packed, bias, g, clamp, residual, out)
}

/// [`direct_conv`] in a given build (the AVX-512 one runs rows of 32 points or more, and leaves
/// narrower ones to the AVX2 build).
///
/// # Panics
/// As [`direct_conv`], and if this machine lacks the build's instruction sets.
#[allow(clippy::too_many_arguments)]
pub(crate) fn direct_conv_in(
    build: Build,
    x: &[f32],
    packed: &[f32],
    bias: &[f32],
    g: &DirectGeometry,
    clamp: (f32, f32),
    residual: Option<Residual>,
    out: &mut [f32],
) {
    assert!(build.available(), "{build:?} needs instructions this machine lacks");
    let cpad = g.cout.div_ceil(DIRECT_LANES) * DIRECT_LANES;
    assert!(
        g.ow >= DIRECT_LANES && g.oh > 0 && g.sh > 0 && g.sw > 0 && g.kh > 0 && (1..=DIRECT_MAX_KW).contains(&g.kw)
    );
    assert!(x.len() >= g.cin * g.h * g.w && out.len() >= g.cout * g.oh * g.ow);
    assert!(packed.len() >= g.cin * g.kh * g.kw * cpad && bias.len() >= cpad);
    let input = DirectInput::at(g, Sum::of(residual, g.cout * g.oh * g.ow));
    let copy;
    let x = if g.reads_in_place() {
        x
    } else {
        copy = input.copy(x);
        &copy[..]
    };
    let (x, packed, bias, out) = (x.as_ptr(), packed.as_ptr(), bias.as_ptr(), out.as_mut_ptr());
    match build {
        // SAFETY (all three): the build's features are present; the asserts above and
        // `DirectInput` bound every access.
        #[cfg(target_arch = "x86_64")]
        Build::Avx512 if g.ow >= 32 => unsafe {
            if input.sum.add.is_null() {
                direct_rows_avx512::<false>(x, packed, bias, &input, clamp, out)
            } else {
                direct_rows_avx512::<true>(x, packed, bias, &input, clamp, out)
            }
        },
        #[cfg(target_arch = "x86_64")]
        Build::Avx512 | Build::Avx2Fma => unsafe { direct_avx2_fma(x, packed, bias, &input, clamp, out) },
        Build::Portable => unsafe { direct_portable(x, packed, bias, &input, clamp, out) },
    }
}

avx2_fma_build!(direct_avx2_fma, direct_body, DirectInput, (f32, f32));
portable_build!(direct_portable, direct_body, DirectInput, (f32, f32));

/// The AVX-512 build of [`direct_rows`], for rows of 32 points or more: blocks of 2 vectors of
/// 16 points x 8 output channels (16 accumulators of the 32 registers), in intrinsics (the
/// portable body's arrays of 16 lanes made LLVM spill: face-api.js's 32 -> 32 1x1 layers 0.096 ->
/// 0.27 ms, against 0.071 ms here).
///
/// # Safety
/// As [`direct_rows`], with `input.g.ow >= 32` and `input.sum`'s residual present when `SUM`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn direct_rows_avx512<const SUM: bool>(
    x: *const f32,
    packed: *const f32,
    bias: *const f32,
    input: &DirectInput,
    (lo, hi): (f32, f32),
    out: *mut f32,
) {
    use std::arch::x86_64::*;
    const L: usize = 16;
    const V: usize = 2;
    const C: usize = 8;
    let g = &input.g;
    let sum = input.sum;
    let cpad = g.cout.div_ceil(DIRECT_LANES) * DIRECT_LANES;
    let mut tap = [0; DIRECT_MAX_KW];
    for (kx, t) in tap.iter_mut().enumerate().take(g.kw) {
        *t = (kx % g.sw) * input.cols + kx / g.sw;
    }
    let row_len = g.sw * input.cols;
    unsafe {
        let (vlo, vhi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
        for cb in (0..g.cout).step_by(C) {
            let nco = (g.cout - cb).min(C);
            for oy in 0..g.oh {
                let mut ox = 0;
                loop {
                    let x0 = ox.min(g.ow - V * L);
                    let mut acc: [[__m512; V]; C] = std::array::from_fn(|co| [_mm512_set1_ps(*bias.add(cb + co)); V]);
                    let mut w = packed.add(cb);
                    for ci in 0..g.cin {
                        for ky in 0..g.kh {
                            let row = x.add((ci * input.rows + oy * g.sh + ky) * row_len + x0);
                            for &t in &tap[..g.kw] {
                                let xv = [_mm512_loadu_ps(row.add(t)), _mm512_loadu_ps(row.add(t + L))];
                                for (co, acc) in acc.iter_mut().enumerate() {
                                    let wc = _mm512_set1_ps(*w.add(co));
                                    acc[0] = _mm512_fmadd_ps(xv[0], wc, acc[0]);
                                    acc[1] = _mm512_fmadd_ps(xv[1], wc, acc[1]);
                                }
                                w = w.add(cpad);
                            }
                        }
                    }
                    for (co, acc) in acc.iter().enumerate().take(nco) {
                        for (v, &acc) in acc.iter().enumerate() {
                            let o = ((cb + co) * g.oh + oy) * g.ow + x0 + v * L;
                            store_avx512::<SUM>(acc, sum, (vlo, vhi), None, out, o);
                        }
                    }
                    if x0 + V * L >= g.ow {
                        break;
                    }
                    ox += V * L;
                }
            }
        }
    }
}

#[inline(always)]
unsafe fn direct_body<const FUSED: bool>(
    x: *const f32,
    packed: *const f32,
    bias: *const f32,
    input: &DirectInput,
    clamp: (f32, f32),
    out: *mut f32,
) {
    unsafe {
        if input.g.ow >= 2 * DIRECT_LANES {
            if input.sum.add.is_null() {
                direct_rows::<FUSED, 2, { DIRECT_LANES / 2 }, false>(x, packed, bias, input, clamp, out)
            } else {
                direct_rows::<FUSED, 2, { DIRECT_LANES / 2 }, true>(x, packed, bias, input, clamp, out)
            }
        } else {
            if input.sum.add.is_null() {
                direct_rows::<FUSED, 1, DIRECT_LANES, false>(x, packed, bias, input, clamp, out)
            } else {
                direct_rows::<FUSED, 1, DIRECT_LANES, true>(x, packed, bias, input, clamp, out)
            }
        }
    }
}

/// [`direct_body`] in blocks of `V` vectors of [`DIRECT_LANES`] points of a row × `C` output
/// channels (`V * C` accumulators; each tap loads `V` input vectors and broadcasts `C` weights:
/// 2 x 4 takes 6 loads per 8 multiply-adds where 1 x 8 took 9). With `SUM`, adds `input.sum`'s
/// residual (a separate build, so that the kernel without one is unchanged).
#[inline(always)]
unsafe fn direct_rows<const FUSED: bool, const V: usize, const C: usize, const SUM: bool>(
    x: *const f32,
    packed: *const f32,
    bias: *const f32,
    input: &DirectInput,
    (lo, hi): (f32, f32),
    out: *mut f32,
) {
    const L: usize = DIRECT_LANES;
    let g = &input.g;
    let sum = input.sum;
    let cpad = g.cout.div_ceil(L) * L;
    // Where tap column `kx` starts in a row's phases.
    let mut tap = [0; DIRECT_MAX_KW];
    for (kx, t) in tap.iter_mut().enumerate().take(g.kw) {
        *t = (kx % g.sw) * input.cols + kx / g.sw;
    }
    let row_len = g.sw * input.cols;
    unsafe {
        for cb in (0..g.cout).step_by(C) {
            let b: [f32; C] = *(bias.add(cb) as *const [f32; C]);
            let nco = (g.cout - cb).min(C);
            for oy in 0..g.oh {
                let mut ox = 0;
                loop {
                    let x0 = ox.min(g.ow - V * L);
                    let mut acc = [[[0f32; L]; V]; C];
                    for (co, acc) in acc.iter_mut().enumerate() {
                        *acc = [[b[co]; L]; V];
                    }
                    let mut w = packed.add(cb);
                    #[cfg(not(target_arch = "aarch64"))]
                    let cin = g.cin;
                    #[cfg(target_arch = "aarch64")]
                    let cin = if V == 2 && C == 4 && L == 8 {
                        // `acc` is `[[[f32; 8]; 2]; 4]` here.
                        let row0 = x.add(oy * g.sh * row_len + x0);
                        let a = acc.as_mut_ptr() as *mut f32;
                        match g.kw {
                            3 => direct_16x4_neon::<3>(row0, w, input, &tap, a),
                            1 => direct_16x4_neon::<1>(row0, w, input, &tap, a),
                            _ => direct_16x4_neon::<0>(row0, w, input, &tap, a),
                        }
                        0
                    } else {
                        g.cin
                    };
                    for ci in 0..cin {
                        for ky in 0..g.kh {
                            let row = x.add((ci * input.rows + oy * g.sh + ky) * row_len + x0);
                            for &t in &tap[..g.kw] {
                                let xv: [[f32; L]; V] =
                                    std::array::from_fn(|v| (row.add(t + v * L) as *const [f32; L]).read_unaligned());
                                for (co, acc) in acc.iter_mut().enumerate() {
                                    let wc = *w.add(co);
                                    for (acc, xv) in acc.iter_mut().zip(&xv) {
                                        for l in 0..L {
                                            acc[l] = madd::<FUSED>(acc[l], xv[l], wc);
                                        }
                                    }
                                }
                                w = w.add(cpad);
                            }
                        }
                    }
                    for (co, acc) in acc.iter().enumerate().take(nco) {
                        for (v, acc) in acc.iter().enumerate() {
                            let mut y = *acc;
                            let o = ((cb + co) * g.oh + oy) * g.ow + x0 + v * L;
                            if SUM {
                                sum.apply(&mut y, o, 1);
                            }
                            for y in y.iter_mut() {
                                *y = y.max(lo).min(hi);
                            }
                            (out.add(o) as *mut [f32; L]).write_unaligned(y);
                        }
                    }
                    if x0 + V * L >= g.ow {
                        break;
                    }
                    ox += V * L;
                }
            }
        }
    }
}

/// The 16-point x 4-channel block of [`direct_rows`] on aarch64, all input channels and taps,
/// added to `acc` (`[channel][point]`): one load of the tap's 4 weights serves 16 multiply-adds
/// by vector lane, where the portable body broadcasts each weight alone. `KW` is the kernel's
/// width where known when compiled (its taps unrolled), 0 otherwise. `row0` is the block's
/// first input row (input channel 0, tap row 0) at its first point, `w` the first tap's weights.
///
/// # Safety
/// As [`direct_rows`] for one block; `acc` holds 64 values.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn direct_16x4_neon<const KW: usize>(
    row0: *const f32,
    w: *const f32,
    input: &DirectInput,
    tap: &[usize; DIRECT_MAX_KW],
    acc: *mut f32,
) {
    use std::arch::aarch64::*;
    let g = &input.g;
    let kw = if KW == 0 { g.kw } else { KW };
    let row_len = g.sw * input.cols;
    let plane = input.rows * row_len;
    let cpad = g.cout.div_ceil(DIRECT_LANES) * DIRECT_LANES;
    unsafe {
        let mut a: [[float32x4_t; 4]; 4] =
            std::array::from_fn(|c| std::array::from_fn(|j| vld1q_f32(acc.add(c * 16 + 4 * j))));
        let mut w = w;
        for ci in 0..g.cin {
            for ky in 0..g.kh {
                let row = row0.add(ci * plane + ky * row_len);
                for &t in &tap[..kw] {
                    let r = row.add(t);
                    let xv: [float32x4_t; 4] = std::array::from_fn(|j| vld1q_f32(r.add(4 * j)));
                    let wv = vld1q_f32(w);
                    for (j, xv) in xv.iter().enumerate() {
                        a[0][j] = vfmaq_laneq_f32::<0>(a[0][j], *xv, wv);
                        a[1][j] = vfmaq_laneq_f32::<1>(a[1][j], *xv, wv);
                        a[2][j] = vfmaq_laneq_f32::<2>(a[2][j], *xv, wv);
                        a[3][j] = vfmaq_laneq_f32::<3>(a[3][j], *xv, wv);
                    }
                    w = w.add(cpad);
                }
            }
        }
        for (c, a) in a.iter().enumerate() {
            for (j, a) in a.iter().enumerate() {
                vst1q_f32(acc.add(c * 16 + 4 * j), *a);
            }
        }
    }
}

/// The parameters of [`fake_quant`]: ONNX `QuantizeLinear` (multiplier `inv_scale`, zero point
/// `zq`, range `qmin..=qmax`) followed by `DequantizeLinear` (`scale`, zero point `zd`), held as
/// `lo = qmin − zq`, `hi = qmax − zq`, `offset = zq − zd`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FakeQuantParams {
    pub inv_scale: f32,
    pub lo: f32,
    pub hi: f32,
    pub offset: f32,
    pub scale: f32,
}

impl FakeQuantParams {
    /// Adding and subtracting it rounds an f32 of magnitude below 2^22 to an integer, ties to
    /// even (1.5 · 2^23).
    pub const ROUND: f32 = 12_582_912.0;

    /// `ROUND − offset`: `(v + ROUND) − back` is `round(v) + offset` exactly (both integers
    /// below 2^24).
    #[inline(always)]
    pub fn back(&self) -> f32 {
        Self::ROUND - self.offset
    }

    /// One value of [`fake_quant`].
    #[inline(always)]
    pub fn apply(&self, x: f32) -> f32 {
        let v = x * self.inv_scale;
        // The same values either way (a NaN becomes `lo`, and ±0 round alike): on aarch64
        // `max`/`min` are one instruction each (`fmaxnm`, `fminnm`) where the comparisons are
        // two; elsewhere they are the more (x86 builds them from a comparison and a blend, and
        // armv7's NEON has no `vmaxnm`).
        #[cfg(target_arch = "aarch64")]
        let v = v.max(self.lo).min(self.hi);
        #[cfg(not(target_arch = "aarch64"))]
        let v = {
            let v = if v > self.lo { v } else { self.lo };
            if v < self.hi {
                v
            } else {
                self.hi
            }
        };
        ((v + Self::ROUND) - self.back()) * self.scale
    }
}

/// What a pointwise or channel-last depthwise kernel does to its sums before it stores them: the
/// clamp (ReLU, ReLU6), then a QDQ model's quantize-dequantize where the convolution's only
/// reader was one.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Epilogue {
    bounds: (f32, f32),
    quant: Option<FakeQuantParams>,
}

impl Epilogue {
    /// The clamp to `bounds`, then `quant`; with a quantizer, the clamp folded into its bounds
    /// where that gives the same values (then `bounds` is [`NO_CLAMP`], and the kernels that skip
    /// an absent clamp do one step less per value). Exact: for a positive multiplier rounding
    /// is monotonic, so `round(clamp(y, a, b) · m)` is `clamp(round(y · m), round(a · m),
    /// round(b · m))`, and two clamps whose ranges overlap are one to the intersection (a NaN
    /// still ends at the lower bound).
    fn new(bounds: (f32, f32), quant: Option<FakeQuantParams>) -> Epilogue {
        if let Some(q) = quant.filter(|q| q.inv_scale > 0.0 && q.inv_scale.is_finite()) {
            let (a, b) = (bounds.0 * q.inv_scale, bounds.1 * q.inv_scale);
            if a <= q.hi && b >= q.lo {
                return Epilogue {
                    bounds: NO_CLAMP,
                    quant: Some(FakeQuantParams { lo: q.lo.max(a), hi: q.hi.min(b), ..q }),
                };
            }
        }
        Epilogue { bounds, quant }
    }
}

/// A quantize-dequantize pair in place: `x ← (clamp(round(x · inv_scale) + zq, qmin, qmax) − zd)
/// · scale`, rounding half to even, which is what tract's `QuantizeLinearU8`/`I8` and
/// `DequantizeLinearF32` compute in two passes (a u8 or i8 tensor between them, a branchy scalar
/// rounding: 59 % of a QDQ MobileNetV2-0.5's time). Computed as `(round(clamp(x · inv_scale, lo,
/// hi)) + offset) · scale`: clamping to integer bounds commutes with rounding, and the rounding
/// adds and subtracts 1.5 · 2^23 (exact for |v| < 2^22, here ≤ 2^9), so the results are the same
/// bit for bit; one branch-free loop the compiler vectorises. A NaN becomes `lo`'s value.
pub fn fake_quant(xs: &mut [f32], p: &FakeQuantParams) {
    fake_quant_in(build(), xs, p)
}

/// [`fake_quant`] in a given build (AVX-512 on x86-64 where the machine has it, the portable
/// loop otherwise).
///
/// # Panics
/// If the machine lacks the build's instruction sets.
pub fn fake_quant_in(build: Build, xs: &mut [f32], p: &FakeQuantParams) {
    assert!(build.available(), "fake_quant: this machine cannot run the {build:?} build");
    #[cfg(target_arch = "x86_64")]
    if build == Build::Avx512 {
        // SAFETY: the machine has AVX-512F (asserted).
        unsafe { fake_quant_avx512(xs, p) };
        return;
    }
    fake_quant_body(xs, p)
}

/// [`fake_quant`] in 16 lanes (the same operations: no fused multiply-add is formed).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fake_quant_avx512(xs: &mut [f32], p: &FakeQuantParams) {
    fake_quant_body(xs, p)
}

#[inline(always)]
fn fake_quant_body(xs: &mut [f32], p: &FakeQuantParams) {
    for x in xs {
        *x = p.apply(*x);
    }
}

/// `out[i] = x[2 * i]` for every `i` of `out` (a stride-2 subsample of a row; on aarch64 four at
/// a time by a de-interleaving load).
///
/// # Panics
/// If `x` is shorter than `2 * out.len() - 1`.
pub fn every_other(x: &[f32], out: &mut [f32]) {
    assert!(out.is_empty() || x.len() > 2 * (out.len() - 1), "every_other: {} values for {}", x.len(), out.len());
    #[cfg(target_arch = "aarch64")]
    let i = {
        use std::arch::aarch64::*;
        let mut i = 0;
        // Each load reads 8 values from x[2 * i].
        while i + 4 <= out.len() && 2 * i + 8 <= x.len() {
            // SAFETY: the loop condition bounds both accesses.
            unsafe { vst1q_f32(out.as_mut_ptr().add(i), vld2q_f32(x.as_ptr().add(2 * i)).0) };
            i += 4;
        }
        i
    };
    #[cfg(target_arch = "x86_64")]
    let i = {
        use std::arch::x86_64::*;
        let mut i = 0;
        // Two loads of 4 values from x[2 * i], their even lanes shuffled together (SSE, which
        // every x86-64 has: the `step_by` loop below took ~20 us of face-api.js's 83 us stem).
        while i + 4 <= out.len() && 2 * i + 8 <= x.len() {
            // SAFETY: the loop condition bounds both accesses.
            unsafe {
                let (a, b) = (_mm_loadu_ps(x.as_ptr().add(2 * i)), _mm_loadu_ps(x.as_ptr().add(2 * i + 4)));
                _mm_storeu_ps(out.as_mut_ptr().add(i), _mm_shuffle_ps::<0b10_00_10_00>(a, b));
            }
            i += 4;
        }
        i
    };
    #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
    let i = 0;
    for (j, o) in out.iter_mut().enumerate().skip(i) {
        *o = x[2 * j];
    }
}

/// `out[o] = Σ x[o * run .. (o + 1) * run]` for every `o` of `out` (a sum over the innermost
/// axes: MobileNetV2's global average pool of 1280 channel-first channels of 2x2 points; on
/// aarch64 and x86-64 runs of 4 take 4 outputs at a time).
///
/// # Panics
/// If `x` is shorter than `run * out.len()`.
pub fn sum_runs(x: &[f32], run: usize, out: &mut [f32]) {
    assert!(x.len() >= run * out.len(), "sum_runs: {} values for {} runs of {run}", x.len(), out.len());
    #[cfg(target_arch = "aarch64")]
    let o = if run == 4 {
        use std::arch::aarch64::*;
        let mut o = 0;
        while o + 4 <= out.len() {
            // SAFETY: 16 values from x[4 * o] and 4 to out[o], within the lengths asserted.
            unsafe {
                let v = vld4q_f32(x.as_ptr().add(4 * o));
                vst1q_f32(out.as_mut_ptr().add(o), vaddq_f32(vaddq_f32(v.0, v.1), vaddq_f32(v.2, v.3)));
            }
            o += 4;
        }
        o
    } else {
        0
    };
    // The same on x86-64 in SSE (part of its baseline): four loads of four runs, transposed.
    #[cfg(target_arch = "x86_64")]
    let o = if run == 4 {
        use std::arch::x86_64::*;
        let mut o = 0;
        while o + 4 <= out.len() {
            // SAFETY: 16 values from x[4 * o] and 4 to out[o], within the lengths asserted.
            unsafe {
                let p = x.as_ptr().add(4 * o);
                let (a, b, c, d) =
                    (_mm_loadu_ps(p), _mm_loadu_ps(p.add(4)), _mm_loadu_ps(p.add(8)), _mm_loadu_ps(p.add(12)));
                // [a0 b0 a1 b1], [a2 b2 a3 b3], [c0 d0 c1 d1], [c2 d2 c3 d3]
                let (ab01, ab23) = (_mm_unpacklo_ps(a, b), _mm_unpackhi_ps(a, b));
                let (cd01, cd23) = (_mm_unpacklo_ps(c, d), _mm_unpackhi_ps(c, d));
                // Element k of each run, for the four runs: summed as on aarch64, (0 + 1) + (2 + 3).
                let (e0, e1) = (_mm_movelh_ps(ab01, cd01), _mm_movehl_ps(cd01, ab01));
                let (e2, e3) = (_mm_movelh_ps(ab23, cd23), _mm_movehl_ps(cd23, ab23));
                _mm_storeu_ps(out.as_mut_ptr().add(o), _mm_add_ps(_mm_add_ps(e0, e1), _mm_add_ps(e2, e3)));
            }
            o += 4;
        }
        o
    } else {
        0
    };
    #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
    let o = 0;
    if run > 0 {
        for (y, x) in out[o..].iter_mut().zip(x[o * run..].chunks_exact(run)) {
            *y = x.iter().sum();
        }
    }
}

/// Points per block of the pointwise convolution.
const POINTWISE_POINTS: usize = 4;

/// Shapes and input strides of a pointwise (1x1) convolution (see [`pointwise_conv`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PointwiseGeometry {
    pub points: usize,
    pub cin: usize,
    pub cout: usize,
    /// Input elements between neighbouring points: `cin` channel-last, 1 channel-first.
    pub point_stride: usize,
    /// Input elements between neighbouring channels: 1 channel-last, `points` channel-first.
    pub channel_stride: usize,
    /// Whether the output is channel-first (`[co][p]`) rather than channel-last (`[p][co]`).
    pub out_channel_first: bool,
}

/// A pointwise convolution with bias and clamp fused: `out[p * cout + co]` (channel-last output;
/// `out[co * points + p]` channel-first) `= clamp(bias[co] + Σ w[ci * cout + co] · x[p *
/// point_stride + ci * channel_stride], lo, hi)`. `w` is `[ci][co]`.
///
/// Blocks of 4 points × 16 output channels (32 in the AVX-512 build, on 8 points where the
/// output is channel-last and its channels whole blocks of 32) stay in registers across
/// all input channels; each input channel loads one run of weights and broadcasts one input
/// value per point (on aarch64 one load of 4 input values serves 16 multiply-adds by vector
/// lane, `pointwise_16x4_neon`). Unlike a matrix product it packs nothing per run: the weights
/// are laid out once, when the plan is made, and the input is read where it lies. A `residual`
/// is added before the clamp.
///
/// # Panics
/// If a slice is shorter than the geometry says.
#[allow(clippy::too_many_arguments)]
pub fn pointwise_conv(
    x: &[f32],
    w: &[f32],
    blocked: Option<&[f32]>,
    bias: &[f32],
    g: &PointwiseGeometry,
    clamp: (f32, f32),
    quant: Option<FakeQuantParams>,
    residual: Option<Residual>,
    out: &mut [f32],
) {
    pointwise_conv_in(build(), x, w, blocked, bias, g, clamp, quant, residual, out)
}

/// The weights `w` (`[ci][co]`) of [`pointwise_conv`] as its AVX-512 build reads them best,
/// where it can: `[co / 32][ci][co % 32]`, each block of 32 output channels' weights one
/// contiguous run (32 KB for 256 input channels, kept in L1 while every point's block runs; as
/// `[ci][co]`, rows 1 KB apart, 256 of them mapped onto 8 of L1's 64 sets and came from L2 for
/// every block of points). `None` where that build would not use them: other builds,
/// channel-first output, output channels not whole blocks of 32, fewer than 8 points.
pub fn pointwise_blocked_weights(w: &[f32], g: &PointwiseGeometry) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    if build() == Build::Avx512 && blocked_applies(g) {
        let mut b = Vec::with_capacity(g.cin * g.cout);
        for c in (0..g.cout).step_by(32) {
            for ci in 0..g.cin {
                b.extend_from_slice(&w[ci * g.cout + c..][..32]);
            }
        }
        return Some(b);
    }
    let _ = (w, g);
    None
}

/// Whether the AVX-512 build of [`pointwise_conv`] runs `g` on blocked weights.
#[cfg(target_arch = "x86_64")]
fn blocked_applies(g: &PointwiseGeometry) -> bool {
    !g.out_channel_first && g.cout.is_multiple_of(32) && g.points >= 2 * POINTWISE_POINTS
}

/// [`pointwise_conv`] in a given build.
///
/// # Panics
/// As [`pointwise_conv`], and if this machine lacks the build's instruction sets.
#[allow(clippy::too_many_arguments)]
fn pointwise_conv_in(
    build: Build,
    x: &[f32],
    w: &[f32],
    blocked: Option<&[f32]>,
    bias: &[f32],
    g: &PointwiseGeometry,
    clamp: (f32, f32),
    quant: Option<FakeQuantParams>,
    residual: Option<Residual>,
    out: &mut [f32],
) {
    assert!(build.available(), "{build:?} needs instructions this machine lacks");
    let clamp = Epilogue::new(clamp, quant);
    if g.points == 0 || g.cout == 0 {
        return;
    }
    let last = (g.points - 1) * g.point_stride + g.cin.saturating_sub(1) * g.channel_stride;
    assert!(g.cin == 0 || x.len() > last, "pointwise input too short");
    assert!(w.len() >= g.cin * g.cout && bias.len() >= g.cout && out.len() >= g.points * g.cout);
    let sum = Sum::of(residual, g.points * g.cout);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = blocked;
    let (x, w, bias, out) = (x.as_ptr(), w.as_ptr(), bias.as_ptr(), out.as_mut_ptr());
    match build {
        // SAFETY (all three): the build's features are present; the asserts above bound every
        // access.
        #[cfg(target_arch = "x86_64")]
        Build::Avx512 => match blocked.filter(|_| blocked_applies(g)) {
            Some(b) => {
                assert!(b.len() >= g.cin * g.cout, "blocked pointwise weights too short");
                let b = b.as_ptr();
                unsafe {
                    match (sum.add.is_null(), clamp.quant.is_some()) {
                        (true, false) => pointwise_blocked_avx512::<false, false>(x, b, bias, g, clamp, sum, out),
                        (false, false) => pointwise_blocked_avx512::<true, false>(x, b, bias, g, clamp, sum, out),
                        (true, true) => pointwise_blocked_avx512::<false, true>(x, b, bias, g, clamp, sum, out),
                        (false, true) => pointwise_blocked_avx512::<true, true>(x, b, bias, g, clamp, sum, out),
                    }
                }
            }
            None => unsafe { pointwise_avx512(x, w, bias, g, clamp, sum, out) },
        },
        #[cfg(target_arch = "x86_64")]
        Build::Avx2Fma => unsafe { pointwise_avx2_fma(x, w, bias, g, clamp, sum, out) },
        Build::Portable => unsafe { pointwise_portable(x, w, bias, g, clamp, sum, out) },
    }
}

/// [`pointwise_conv`]'s AVX-512 build on [`pointwise_blocked_weights`]: per block of 32 output
/// channels (its weights one run, read from L1 after the first block of points), every block
/// of 8 points; where 8 does not divide the points, the last 8 + r are two blocks of 4 to 8.
///
/// # Safety
/// As [`pointwise_conv`], with [`blocked_applies`] and `w` blocked; the machine has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pointwise_blocked_avx512<const SUM: bool, const QUANT: bool>(
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    g: &PointwiseGeometry,
    clamp: Epilogue,
    sum: Sum,
    out: *mut f32,
) {
    const P: usize = 2 * POINTWISE_POINTS;
    // Whole blocks of P points, then the last P + r (0 < r < P) as two blocks of 4 to P:
    // exactly the points there are (an overlapping last block of P computed 9-point layers
    // as 16).
    let (full, rest) = match g.points % P {
        0 => (g.points / P, 0),
        r => (g.points / P - 1, P + r),
    };
    let (first, second) = (rest.div_ceil(2), rest / 2);
    unsafe {
        for c in (0..g.cout).step_by(32) {
            let wc = w.add(c * g.cin);
            macro_rules! block {
                ($n:tt, $p:expr) => {{
                    let p = $p;
                    pointwise_32_avx512::<$n, SUM, QUANT>(
                        x.add(p * g.point_stride),
                        wc,
                        32,
                        bias.add(c),
                        g,
                        clamp,
                        sum,
                        out,
                        p,
                        c,
                    )
                }};
            }
            for b in 0..full {
                block!(P, b * P);
            }
            for (p, n) in [(full * P, first), (full * P + first, second)] {
                match n {
                    0 => {}
                    4 => block!(4, p),
                    5 => block!(5, p),
                    6 => block!(6, p),
                    7 => block!(7, p),
                    _ => block!(P, p),
                }
            }
        }
    }
}

/// The x86-64 builds of [`pointwise_conv`] and [`direct_conv`] (the other kernels have one AVX2
/// build and one portable build).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    Portable,
}

impl Build {
    /// Whether this machine has the build's instruction sets.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Build::Avx512 => {
                Build::Avx2Fma.available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(target_arch = "x86_64")]
            Build::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            Build::Portable => true,
        }
    }

    /// What the build runs on, for reports: its instruction sets (the portable build has NEON
    /// blocks on aarch64).
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Build::Avx512 => "AVX-512",
            #[cfg(target_arch = "x86_64")]
            Build::Avx2Fma => "AVX2+FMA",
            Build::Portable if cfg!(target_arch = "aarch64") => "NEON",
            Build::Portable => "portable",
        }
    }

    /// Every build, best first.
    pub fn all() -> &'static [Build] {
        #[cfg(target_arch = "x86_64")]
        return &[Build::Avx512, Build::Avx2Fma, Build::Portable];
        #[cfg(not(target_arch = "x86_64"))]
        return &[Build::Portable];
    }
}

/// The build of [`pointwise_conv`] and [`direct_conv`] this machine runs: its best, or the one
/// the environment variable `FER_KERNELS` names (`avx512`, `avx2fma`, `portable`; for
/// comparisons), or the next available after it.
pub fn build() -> Build {
    static BUILD: std::sync::OnceLock<Build> = std::sync::OnceLock::new();
    *BUILD.get_or_init(|| {
        let wanted = std::env::var("FER_KERNELS").unwrap_or_default().to_lowercase();
        let builds = Build::all().iter().filter(|b| b.available());
        let mut builds =
            builds.skip_while(|b| !wanted.is_empty() && !format!("{b:?}").to_lowercase().starts_with(&wanted));
        builds.next().copied().unwrap_or(Build::Portable)
    })
}

/// An x86-64 build of [`pointwise_body`]: its target features and block widths.
macro_rules! pointwise_x86_build {
    ($name:ident, $features:literal, $w:literal, $h:literal, $q:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(
            x: *const f32,
            w: *const f32,
            bias: *const f32,
            g: &PointwiseGeometry,
            clamp: Epilogue,
            sum: Sum,
            out: *mut f32,
        ) {
            unsafe { pointwise_body::<true, $w, $h, $q>(x, w, bias, g, clamp, sum, out) }
        }
    };
}

pointwise_x86_build!(pointwise_avx512, "avx512f,avx2,fma", 32, 16, 8);
pointwise_x86_build!(pointwise_avx2_fma, "avx2,fma", 16, 8, 4);

/// The portable build of [`pointwise_body`], never inlined (see [`portable_build`]).
#[inline(never)]
unsafe fn pointwise_portable(
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    g: &PointwiseGeometry,
    clamp: Epilogue,
    sum: Sum,
    out: *mut f32,
) {
    unsafe { pointwise_body::<{ cfg!(target_arch = "aarch64") }, 16, 8, 4>(x, w, bias, g, clamp, sum, out) }
}

/// [`pointwise_conv`] in blocks of `W` output channels, then `H` (`W / 2`) and `Q` (`W / 4`)
/// for the channels left over, then a block that overlaps the one before (or, with fewer
/// channels than `Q`, blocks of 4 or single channels).
#[inline(always)]
unsafe fn pointwise_body<const FUSED: bool, const W: usize, const H: usize, const Q: usize>(
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    g: &PointwiseGeometry,
    clamp: Epilogue,
    sum: Sum,
    out: *mut f32,
) {
    // With a residual or without, with a quantize-dequantize or without, each its own build (so
    // that the kernel without them is unchanged: a run-time check in the block made
    // mini-XCEPTION's 1x1 convolutions 1.4x slower, and one for the quantizer 3 % slower).
    unsafe {
        match (sum.add.is_null(), clamp.quant.is_some()) {
            (true, false) => pointwise_rows::<FUSED, W, H, Q, false, false>(x, w, bias, g, clamp, sum, out),
            (false, false) => pointwise_rows::<FUSED, W, H, Q, true, false>(x, w, bias, g, clamp, sum, out),
            (true, true) => pointwise_rows::<FUSED, W, H, Q, false, true>(x, w, bias, g, clamp, sum, out),
            (false, true) => pointwise_rows::<FUSED, W, H, Q, true, true>(x, w, bias, g, clamp, sum, out),
        }
    }
}

/// [`pointwise_body`] without (`SUM` false) or with a residual: blocks of
/// [`POINTWISE_POINTS`], then the points left one at a time.
#[inline(always)]
unsafe fn pointwise_rows<
    const FUSED: bool,
    const W: usize,
    const H: usize,
    const Q: usize,
    const SUM: bool,
    const QUANT: bool,
>(
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    g: &PointwiseGeometry,
    clamp: Epilogue,
    sum: Sum,
    out: *mut f32,
) {
    const P: usize = POINTWISE_POINTS;
    // The AVX-512 build (blocks of 32 channels) with channel-last output and whole blocks of
    // channels first takes blocks of twice as many points: 16 accumulators of its 32 registers.
    // (Its 16-channel blocks of 8 points, in arrays, ran mini-XCEPTION's 16-channel layers at
    // half speed.)
    let wide =
        if W == 32 && !g.out_channel_first && g.cout.is_multiple_of(W) { g.points - g.points % (2 * P) } else { 0 };
    let blocked = g.points - (g.points - wide) % P;
    unsafe {
        for p in (0..wide).step_by(2 * P) {
            pointwise_points::<FUSED, W, H, Q, { 2 * P }, SUM, QUANT>(x, w, bias, g, clamp, sum, out, p);
        }
        for p in (wide..blocked).step_by(P) {
            pointwise_points::<FUSED, W, H, Q, P, SUM, QUANT>(x, w, bias, g, clamp, sum, out, p);
        }
        for p in blocked..g.points {
            pointwise_points::<FUSED, W, H, Q, 1, SUM, QUANT>(x, w, bias, g, clamp, sum, out, p);
        }
    }
}

/// Every output channel of `P` points from point `p` of [`pointwise_conv`] (see
/// [`pointwise_body`]). (A function, not a closure: a closure inside a `#[target_feature]`
/// function does not get its features, and `mul_add` there would be a call to the C library's
/// software `fmaf`.)
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pointwise_points<
    const FUSED: bool,
    const W: usize,
    const H: usize,
    const Q: usize,
    const P: usize,
    const SUM: bool,
    const QUANT: bool,
>(
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    g: &PointwiseGeometry,
    clamp: Epilogue,
    sum: Sum,
    out: *mut f32,
    p: usize,
) {
    unsafe {
        let mut c = 0;
        while c + W <= g.cout {
            pointwise_block::<FUSED, W, P, SUM, QUANT>(x, w, bias, g, clamp, sum, out, p, c);
            c += W;
        }
        if c + H <= g.cout {
            pointwise_block::<FUSED, H, P, SUM, QUANT>(x, w, bias, g, clamp, sum, out, p, c);
            c += H;
        }
        if c + Q <= g.cout {
            pointwise_block::<FUSED, Q, P, SUM, QUANT>(x, w, bias, g, clamp, sum, out, p, c);
            c += Q;
        }
        // The channels left over: a block that ends at the last channel and overlaps the one
        // before it (recomputing a few channels beats a scalar chain per channel: MobileNetV2's
        // 1280 -> 7 classifier took 0.010 ms one channel at a time).
        if c < g.cout {
            if g.cout >= Q {
                pointwise_block::<FUSED, Q, P, SUM, QUANT>(x, w, bias, g, clamp, sum, out, p, g.cout - Q);
            } else if g.cout >= Q / 2 && Q >= 8 {
                pointwise_block::<FUSED, 4, P, SUM, QUANT>(x, w, bias, g, clamp, sum, out, p, 0);
                pointwise_block::<FUSED, 4, P, SUM, QUANT>(x, w, bias, g, clamp, sum, out, p, g.cout - 4);
            } else {
                for c in c..g.cout {
                    pointwise_block::<FUSED, 1, P, SUM, QUANT>(x, w, bias, g, clamp, sum, out, p, c);
                }
            }
        }
    }
}

/// `P` points from point `p` × `N` output channels from channel `c` of [`pointwise_conv`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pointwise_block<const FUSED: bool, const N: usize, const P: usize, const SUM: bool, const QUANT: bool>(
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    g: &PointwiseGeometry,
    ep: Epilogue,
    sum: Sum,
    out: *mut f32,
    p: usize,
    c: usize,
) {
    unsafe {
        let x = x.add(p * g.point_stride);
        let mut acc = [(bias.add(c) as *const [f32; N]).read_unaligned(); P];
        let mut wp = w.add(c);
        let mut ci = 0;
        #[cfg(target_arch = "aarch64")]
        if N == 16 && P == 4 {
            pointwise_16x4_neon::<SUM, QUANT>(x, wp, bias.add(c), g, ep, sum, out, p, c);
            return;
        }
        // Only the AVX-512 build has blocks of 32 channels.
        #[cfg(target_arch = "x86_64")]
        if N == 32 && P > 1 && !g.out_channel_first {
            pointwise_32_avx512::<P, SUM, QUANT>(x, wp, g.cout, bias.add(c), g, ep, sum, out, p, c);
            return;
        }
        #[cfg(target_arch = "aarch64")]
        if P == 1 && N.is_multiple_of(4) {
            // `acc` is `[[f32; N]; 1]` here.
            pointwise_1_neon::<N>(x, wp, g, acc.as_mut_ptr() as *mut f32);
            ci = g.cin;
        }
        if P == 1 {
            // One point: four partial sums over the input channels, so that the chain of
            // dependent multiply-adds is a quarter as long (MobileNetV2's 1280-channel classifier).
            let mut part = [[0f32; N]; 3];
            while ci + 4 <= g.cin {
                for (k, acc) in [&mut acc[0]].into_iter().chain(part.iter_mut()).enumerate() {
                    let wv = (wp.add(k * g.cout) as *const [f32; N]).read_unaligned();
                    let xv = *x.add((ci + k) * g.channel_stride);
                    for l in 0..N {
                        acc[l] = madd::<FUSED>(acc[l], xv, wv[l]);
                    }
                }
                wp = wp.add(4 * g.cout);
                ci += 4;
            }
            for l in 0..N {
                acc[0][l] += (part[0][l] + part[1][l]) + part[2][l];
            }
        }
        for ci in ci..g.cin {
            let wv = (wp as *const [f32; N]).read_unaligned();
            let xc = x.add(ci * g.channel_stride);
            for (q, acc) in acc.iter_mut().enumerate() {
                let xv = *xc.add(q * g.point_stride);
                for l in 0..N {
                    acc[l] = madd::<FUSED>(acc[l], xv, wv[l]);
                }
            }
            wp = wp.add(g.cout);
        }
        for (q, acc) in acc.iter().enumerate() {
            pointwise_store::<N, SUM, QUANT>(*acc, g, ep, sum, out, p + q, c);
        }
    }
}

/// The epilogue of [`pointwise_conv`] for the sums `v` of `N` output channels from channel `c`
/// at point `p`: with `SUM` the residual added (and the sum kept where `sum` keeps it), the clamp,
/// with `QUANT` the quantize-dequantize, and the store.
///
/// # Safety
/// Those outputs lie within the output and, with `SUM`, the residual's slices.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pointwise_store<const N: usize, const SUM: bool, const QUANT: bool>(
    mut v: [f32; N],
    g: &PointwiseGeometry,
    ep: Epilogue,
    sum: Sum,
    out: *mut f32,
    p: usize,
    c: usize,
) {
    let (lo, hi) = ep.bounds;
    unsafe {
        if SUM && g.out_channel_first {
            sum.apply(&mut v, c * g.points + p, g.points);
        } else if SUM {
            sum.apply(&mut v, p * g.cout + c, 1);
        }
        for v in v.iter_mut() {
            *v = v.max(lo).min(hi);
        }
        if let Some(q) = ep.quant.as_ref().filter(|_| QUANT) {
            for v in v.iter_mut() {
                *v = q.apply(*v);
            }
        }
        if g.out_channel_first {
            for (l, v) in v.iter().enumerate() {
                *out.add((c + l) * g.points + p) = *v;
            }
        } else {
            (out.add(p * g.cout + c) as *mut [f32; N]).write_unaligned(v);
        }
    }
}

/// Stores 16 results of an AVX-512 kernel at `out + o`: with `SUM`, the residual at `o` added
/// (and the sum kept where `sum` keeps it), then the clamp.
///
/// # Safety
/// The 16 values from `o` lie within the output and, with `SUM`, the residual's slices.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store_avx512<const SUM: bool>(
    y: std::arch::x86_64::__m512,
    sum: Sum,
    bounds: (std::arch::x86_64::__m512, std::arch::x86_64::__m512),
    quant: Option<&FakeQuantParams>,
    out: *mut f32,
    o: usize,
) {
    use std::arch::x86_64::*;
    unsafe {
        let add = if SUM { _mm512_loadu_ps(sum.add.add(o)) } else { _mm512_setzero_ps() };
        let (kept, y) = finish_avx512::<SUM>(y, add, bounds, quant);
        if SUM && !sum.keep.is_null() {
            _mm512_storeu_ps(sum.keep.add(o), kept);
        }
        _mm512_storeu_ps(out.add(o), y);
    }
}

/// The epilogue of [`store_avx512`] on 16 values in registers: with `SUM`, `add` added (the
/// first result, the sum to keep), then the clamp and the quantize-dequantize (the second).
///
/// # Safety
/// None beyond AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn finish_avx512<const SUM: bool>(
    y: std::arch::x86_64::__m512,
    add: std::arch::x86_64::__m512,
    (lo, hi): (std::arch::x86_64::__m512, std::arch::x86_64::__m512),
    quant: Option<&FakeQuantParams>,
) -> (std::arch::x86_64::__m512, std::arch::x86_64::__m512) {
    use std::arch::x86_64::*;
    let y = if SUM { _mm512_add_ps(y, add) } else { y };
    let mut clamped = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
    if let Some(q) = quant {
        // FakeQuantParams::apply in 16 lanes, the same operations in the same order.
        let v = _mm512_mul_ps(clamped, _mm512_set1_ps(q.inv_scale));
        let v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(q.lo)), _mm512_set1_ps(q.hi));
        let r = _mm512_sub_ps(_mm512_add_ps(v, _mm512_set1_ps(FakeQuantParams::ROUND)), _mm512_set1_ps(q.back()));
        clamped = _mm512_mul_ps(r, _mm512_set1_ps(q.scale));
    }
    (y, clamped)
}

/// `P` points x 32 channels of [`pointwise_block`] with channel-last output in AVX-512
/// intrinsics: per input channel two loads of 16 weights and one broadcast per point.
///
/// # Safety
/// As [`pointwise_block`]; the machine has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn pointwise_32_avx512<const P: usize, const SUM: bool, const QUANT: bool>(
    x: *const f32,
    w: *const f32,
    w_stride: usize,
    bias: *const f32,
    g: &PointwiseGeometry,
    ep: Epilogue,
    sum: Sum,
    out: *mut f32,
    p: usize,
    c: usize,
) {
    use std::arch::x86_64::*;
    let (lo, hi) = ep.bounds;
    unsafe {
        let b = [_mm512_loadu_ps(bias), _mm512_loadu_ps(bias.add(16))];
        let mut acc = [b; P];
        let mut wp = w;
        for ci in 0..g.cin {
            let wv = [_mm512_loadu_ps(wp), _mm512_loadu_ps(wp.add(16))];
            let xc = x.add(ci * g.channel_stride);
            for (q, acc) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*xc.add(q * g.point_stride));
                acc[0] = _mm512_fmadd_ps(xv, wv[0], acc[0]);
                acc[1] = _mm512_fmadd_ps(xv, wv[1], acc[1]);
            }
            wp = wp.add(w_stride);
        }
        let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
        for (q, acc) in acc.iter().enumerate() {
            for (h, &y) in acc.iter().enumerate() {
                let quant = ep.quant.as_ref().filter(|_| QUANT);
                store_avx512::<SUM>(y, sum, (lo, hi), quant, out, (p + q) * g.cout + c + 16 * h);
            }
        }
    }
}

/// One point x `N` (a multiple of 4, at most 16) channels of [`pointwise_block`] on aarch64, all
/// input channels, added to `acc`: 4 input channels at a time (one load channel-last) serve `N`
/// multiply-adds by vector lane into 4 independent sums (MobileNetV2's 1280 -> 7 classifier, the
/// single point left over by 9-point layers).
///
/// # Safety
/// As [`pointwise_block`] for 1 point from `x` and `N` channels from `w`; `acc` holds `N` values.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn pointwise_1_neon<const N: usize>(x: *const f32, w: *const f32, g: &PointwiseGeometry, acc: *mut f32) {
    use std::arch::aarch64::*;
    debug_assert!(N <= 16, "pointwise_1_neon: {N} channels");
    unsafe {
        // [4 output channels][input channel mod 4]
        let mut a = [[vdupq_n_f32(0.0); 4]; 4];
        let mut ci = 0;
        while ci + 4 <= g.cin {
            let xv = if g.channel_stride == 1 {
                vld1q_f32(x.add(ci))
            } else {
                let xs: [f32; 4] = std::array::from_fn(|k| *x.add((ci + k) * g.channel_stride));
                vld1q_f32(xs.as_ptr())
            };
            let wp = w.add(ci * g.cout);
            for (jj, a) in a.iter_mut().enumerate().take(N / 4) {
                let wv = |k: usize| vld1q_f32(wp.add(k * g.cout + 4 * jj));
                a[0] = vfmaq_laneq_f32::<0>(a[0], wv(0), xv);
                a[1] = vfmaq_laneq_f32::<1>(a[1], wv(1), xv);
                a[2] = vfmaq_laneq_f32::<2>(a[2], wv(2), xv);
                a[3] = vfmaq_laneq_f32::<3>(a[3], wv(3), xv);
            }
            ci += 4;
        }
        for ci in ci..g.cin {
            let xs = *x.add(ci * g.channel_stride);
            for (jj, a) in a.iter_mut().enumerate().take(N / 4) {
                a[0] = vfmaq_n_f32(a[0], vld1q_f32(w.add(ci * g.cout + 4 * jj)), xs);
            }
        }
        for (jj, a) in a.iter().enumerate().take(N / 4) {
            let s = vaddq_f32(vaddq_f32(a[0], a[1]), vaddq_f32(a[2], a[3]));
            vst1q_f32(acc.add(4 * jj), vaddq_f32(vld1q_f32(acc.add(4 * jj)), s));
        }
    }
}

/// The 4-point x 16-channel block of [`pointwise_block`] on aarch64, whole: NEON multiply-adds by
/// vector lane, so that one load of 4 input values (a point's 4 channels channel-last, a
/// channel's 4 points channel-first) serves 16 multiply-adds, where the portable body loads or
/// broadcasts each value alone; then the residual, the clamp (skipped where there is none) and
/// the stores from the registers (channel-first output through 4x4 transposes), where the
/// portable epilogue went through the stack one value at a time.
///
/// # Safety
/// As [`pointwise_block`] for 4 points from `x` (at point `p`) and 16 channels from `w` and
/// `bias` (at channel `c`).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pointwise_16x4_neon<const SUM: bool, const QUANT: bool>(
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    g: &PointwiseGeometry,
    clamp: Epilogue,
    sum: Sum,
    out: *mut f32,
    p: usize,
    c: usize,
) {
    use std::arch::aarch64::*;
    unsafe {
        let b: [float32x4_t; 4] = std::array::from_fn(|j| vld1q_f32(bias.add(4 * j)));
        let mut a: [[float32x4_t; 4]; 4] = [b; 4];
        let weights = |wp: *const f32| -> [float32x4_t; 4] { std::array::from_fn(|j| vld1q_f32(wp.add(4 * j))) };
        let mut wp = w;
        if g.channel_stride == 1 {
            let mut ci = 0;
            while ci + 4 <= g.cin {
                let xv: [float32x4_t; 4] = std::array::from_fn(|q| vld1q_f32(x.add(q * g.point_stride + ci)));
                macro_rules! channel {
                    ($k:literal) => {
                        let wv = weights(wp.add($k * g.cout));
                        for (a, xv) in a.iter_mut().zip(&xv) {
                            for (a, wv) in a.iter_mut().zip(&wv) {
                                *a = vfmaq_laneq_f32::<$k>(*a, *wv, *xv);
                            }
                        }
                    };
                }
                channel!(0);
                channel!(1);
                channel!(2);
                channel!(3);
                wp = wp.add(4 * g.cout);
                ci += 4;
            }
            for ci in ci..g.cin {
                let wv = weights(wp);
                for (q, a) in a.iter_mut().enumerate() {
                    let xs = *x.add(q * g.point_stride + ci);
                    for (a, wv) in a.iter_mut().zip(&wv) {
                        *a = vfmaq_n_f32(*a, *wv, xs);
                    }
                }
                wp = wp.add(g.cout);
            }
        } else if g.point_stride == 1 {
            for ci in 0..g.cin {
                let xv = vld1q_f32(x.add(ci * g.channel_stride));
                let wv = weights(wp);
                for (j, wv) in wv.iter().enumerate() {
                    a[0][j] = vfmaq_laneq_f32::<0>(a[0][j], *wv, xv);
                    a[1][j] = vfmaq_laneq_f32::<1>(a[1][j], *wv, xv);
                    a[2][j] = vfmaq_laneq_f32::<2>(a[2][j], *wv, xv);
                    a[3][j] = vfmaq_laneq_f32::<3>(a[3][j], *wv, xv);
                }
                wp = wp.add(g.cout);
            }
        } else {
            for ci in 0..g.cin {
                let wv = weights(wp);
                for (q, a) in a.iter_mut().enumerate() {
                    let xs = *x.add(q * g.point_stride + ci * g.channel_stride);
                    for (a, wv) in a.iter_mut().zip(&wv) {
                        *a = vfmaq_n_f32(*a, *wv, xs);
                    }
                }
                wp = wp.add(g.cout);
            }
        }
        pointwise_store_neon::<4, SUM, QUANT>(a, g, clamp, sum, out, p, c);
    }
}

/// The epilogue of [`pointwise_16x4_neon`] (`J` = 4) and of the integer kernels' blocks of 8 or
/// 16 channels for their sums `a` (`[point][4 channels]`, the first `J` of each point's, the
/// block of 4 points from `p` and `4 J` channels from `c`), from the registers: the residual, the clamp
/// (skipped where there is none), the quantize-dequantize, and the stores (channel-first output
/// through 4x4 transposes).
///
/// # Safety
/// As [`pointwise_store`] for the block.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pointwise_store_neon<const J: usize, const SUM: bool, const QUANT: bool>(
    a: [[std::arch::aarch64::float32x4_t; 4]; 4],
    g: &PointwiseGeometry,
    clamp: Epilogue,
    sum: Sum,
    out: *mut f32,
    p: usize,
    c: usize,
) {
    use std::arch::aarch64::*;
    unsafe {
        // The output vectors in the order they are stored: channel-first, the 4 points of each
        // channel in turn (`a` transposed 4x4 at a time), one channel's run `points` after the
        // one before; channel-last, each point's `4 J` channels 4 at a time, points `cout` apart.
        let mut v = [vdupq_n_f32(0.0); 16];
        let n = 4 * J;
        if g.out_channel_first {
            let (f, d) = (vreinterpretq_f64_f32, vreinterpretq_f32_f64);
            for j in 0..J {
                let t0 = vtrn1q_f32(a[0][j], a[1][j]);
                let t1 = vtrn2q_f32(a[0][j], a[1][j]);
                let t2 = vtrn1q_f32(a[2][j], a[3][j]);
                let t3 = vtrn2q_f32(a[2][j], a[3][j]);
                v[4 * j] = d(vtrn1q_f64(f(t0), f(t2)));
                v[4 * j + 1] = d(vtrn1q_f64(f(t1), f(t3)));
                v[4 * j + 2] = d(vtrn2q_f64(f(t0), f(t2)));
                v[4 * j + 3] = d(vtrn2q_f64(f(t1), f(t3)));
            }
        } else {
            for (k, v) in v.iter_mut().enumerate().take(n) {
                *v = a[k / J][k % J];
            }
        }
        #[inline(always)]
        fn each<const J: usize>(g: &PointwiseGeometry, p: usize, c: usize, mut f: impl FnMut(usize, usize)) {
            if g.out_channel_first {
                let mut o = c * g.points + p;
                for k in 0..4 * J {
                    f(k, o);
                    o += g.points;
                }
            } else {
                for q in 0..4 {
                    let o = (p + q) * g.cout + c;
                    for j in 0..J {
                        f(J * q + j, o + 4 * j);
                    }
                }
            }
        }
        if SUM {
            each::<J>(g, p, c, |k, o| v[k] = vaddq_f32(v[k], vld1q_f32(sum.add.add(o))));
            if !sum.keep.is_null() {
                each::<J>(g, p, c, |k, o| vst1q_f32(sum.keep.add(o), v[k]));
            }
        }
        let bounds = clamp.bounds;
        if bounds != NO_CLAMP {
            let (lo, hi) = (vdupq_n_f32(bounds.0), vdupq_n_f32(bounds.1));
            for v in v.iter_mut().take(n) {
                *v = vmaxnmq_f32(*v, lo);
            }
            // A ReLU's upper bound is infinite: the minimum would change nothing (the maximum
            // with a number leaves no NaN).
            if bounds.1 != f32::INFINITY {
                for v in v.iter_mut().take(n) {
                    *v = vminnmq_f32(*v, hi);
                }
            }
        }
        if let Some(q) = clamp.quant.as_ref().filter(|_| QUANT) {
            // FakeQuantParams::apply by vector, the same operations in the same order.
            let (inv, lo, hi) = (vdupq_n_f32(q.inv_scale), vdupq_n_f32(q.lo), vdupq_n_f32(q.hi));
            let (round, back, scale) =
                (vdupq_n_f32(FakeQuantParams::ROUND), vdupq_n_f32(q.back()), vdupq_n_f32(q.scale));
            for v in v.iter_mut().take(n) {
                let u = vminnmq_f32(vmaxnmq_f32(vmulq_f32(*v, inv), lo), hi);
                *v = vmulq_f32(vsubq_f32(vaddq_f32(u, round), back), scale);
            }
        }
        each::<J>(g, p, c, |k, o| vst1q_f32(out.add(o), v[k]));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    pub(crate) fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Every build of the pointwise convolution this machine has, against its definition in f64:
    /// channel-last and channel-first input and output, every block shape and leftover, with and
    /// without a clamp, without and with a residual sum (kept unclamped, or not).
    #[test]
    fn pointwise_conv_matches_the_definition() {
        for (points, cin, cout) in [
            (1, 1, 1),
            (5, 3, 7),
            (9, 8, 16),
            (4, 16, 24),
            (7, 13, 40),
            (13, 32, 31),
            (6, 5, 60),
            (1, 301, 7),
            (3, 64, 9),
            (2, 9, 3),
            // Blocks of 8 points x 32 channels (AVX-512), then of 4 and single points, and
            // channels left over.
            (23, 12, 70),
            (16, 5, 32),
            // Blocks of 8 points x 32 channels, the last 8 + r points as two blocks: 49 (face-api,
            // 5 + 4 at the end), 13 (7 + 6), 9 (MobileNetV2's 3x3 layers, 5 + 4), 11 (6 + 5),
            // 31 (8 + 7 after two blocks), 36 (6 + 6).
            (49, 7, 64),
            (13, 6, 32),
            (9, 4, 32),
            (11, 3, 64),
            (31, 3, 32),
            (36, 5, 32),
        ] {
            for (channel_last, out_channel_first) in [(true, false), (false, false), (true, true), (false, true)] {
                for (clamp, residual) in [
                    (NO_CLAMP, 0),
                    (NO_CLAMP, 1),
                    ((0.0, 0.5), 0),
                    ((0.0, 0.5), 1),
                    ((0.0, 0.5), 2),
                    ((0.0, f32::INFINITY), 0),
                    ((0.0, f32::INFINITY), 1),
                ] {
                    let (point_stride, channel_stride) = if channel_last { (cin, 1) } else { (1, points) };
                    let g = PointwiseGeometry { points, cin, cout, point_stride, channel_stride, out_channel_first };
                    let x = values(points * cin, 7);
                    let w = values(cin * cout, 8);
                    let bias = values(cout, 9);
                    let add = values(points * cout, 10);
                    // The weights blocked by 32 output channels, element by element.
                    let blocked = cout.is_multiple_of(32).then(|| {
                        (0..cin * cout).map(|i| w[(i / 32 % cin) * cout + i / (32 * cin) * 32 + i % 32]).collect()
                    });
                    if let Some(b) = pointwise_blocked_weights(&w, &g) {
                        assert_eq!(Some(b), blocked, "{points}x{cin}->{cout}: blocked weights");
                    }
                    let builds = Build::all().iter().filter(|b| b.available());
                    for (build, blocked) in builds.flat_map(|&b| [(b, None), (b, blocked.as_deref())]) {
                        let mut out = vec![f32::NAN; points * cout + 3];
                        let mut kept = vec![f32::NAN; points * cout + 3];
                        let r = (residual > 0)
                            .then(|| Residual { add: &add, keep: (residual == 2).then_some(&mut kept[..]) });
                        pointwise_conv_in(build, &x, &w, blocked, &bias, &g, clamp, None, r, &mut out);
                        // With a quantize-dequantize in the epilogue: bit for bit the output
                        // above through `fake_quant` (some values saturate at each end), and
                        // the same unclamped sum kept.
                        let q = FakeQuantParams { inv_scale: 50.0, lo: -125.0, hi: 130.0, offset: 3.0, scale: 0.0173 };
                        let mut quantized = vec![f32::NAN; points * cout + 3];
                        let mut kept_q = vec![f32::NAN; points * cout + 3];
                        let r = (residual > 0)
                            .then(|| Residual { add: &add, keep: (residual == 2).then_some(&mut kept_q[..]) });
                        pointwise_conv_in(build, &x, &w, blocked, &bias, &g, clamp, Some(q), r, &mut quantized);
                        let mut want_q = out.clone();
                        fake_quant_in(Build::Portable, &mut want_q[..points * cout], &q);
                        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(
                            same(&quantized, &want_q) && same(&kept_q, &kept),
                            "{build:?} blocked {} {points}x{cin}->{cout} channel_last {channel_last} out_channel_first \
                             {out_channel_first} clamp {clamp:?} residual {residual}: quantized\n{quantized:?}\nvs\n{want_q:?}",
                            blocked.is_some()
                        );
                        for p in 0..points {
                            for co in 0..cout {
                                let o = if out_channel_first { co * points + p } else { p * cout + co };
                                let sum = bias[co] as f64
                                    + (0..cin)
                                        .map(|ci| {
                                            w[ci * cout + co] as f64 * x[p * point_stride + ci * channel_stride] as f64
                                        })
                                        .sum::<f64>()
                                    + if residual > 0 { add[o] as f64 } else { 0.0 };
                                let want = sum.max(clamp.0 as f64).min(clamp.1 as f64);
                                let got = out[o];
                                let context = format!(
                                    "{build:?} blocked {} {points}x{cin}->{cout} channel_last {channel_last} out_channel_first \
                                     {out_channel_first} clamp {clamp:?} residual {residual}: point {p} channel {co}",
                                    blocked.is_some()
                                );
                                assert!((got as f64 - want).abs() < 1e-5, "{context}: {got} vs {want}");
                                if residual == 2 {
                                    assert!(
                                        (kept[o] as f64 - sum).abs() < 1e-5,
                                        "{context}: kept {} vs {sum}",
                                        kept[o]
                                    );
                                }
                            }
                        }
                        assert!(out[points * cout..].iter().all(|v| v.is_nan()), "{build:?} wrote past the output");
                        let untouched = if residual == 2 { &kept[points * cout..] } else { &kept[..] };
                        assert!(untouched.iter().all(|v| v.is_nan()), "{build:?} kept what it should not");
                    }
                }
            }
        }
    }

    /// The depthwise convolution (`k` as `[c][ky][kx]`) or, without `k`, the max-pool of one
    /// image, by its definition in f64, channel-last or channel-first.
    fn window_reference(
        x: &[f32],
        k: Option<(&[f32], &[f32])>,
        g: &WindowGeometry,
        clamp: (f32, f32),
        channel_first: bool,
    ) -> Vec<f32> {
        let at = |c: usize, y: usize, xx: usize, h: usize, w: usize| {
            if channel_first {
                (c * h + y) * w + xx
            } else {
                (y * w + xx) * g.c + c
            }
        };
        let mut out = vec![0.0; g.oh * g.ow * g.c];
        for c in 0..g.c {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut acc = match k {
                        Some((_, b)) => b[c] as f64,
                        None => f64::NEG_INFINITY,
                    };
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let iy = (oy * g.sh + ky) as isize - g.pad_top as isize;
                            let ix = (ox * g.sw + kx) as isize - g.pad_left as isize;
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let v = x[at(c, iy as usize, ix as usize, g.h, g.w)] as f64;
                            acc = match k {
                                Some((k, _)) => acc + k[(c * g.kh + ky) * g.kw + kx] as f64 * v,
                                None => acc.max(v),
                            };
                        }
                    }
                    out[at(c, oy, ox, g.oh, g.ow)] = acc.max(clamp.0 as f64).min(clamp.1 as f64) as f32;
                }
            }
        }
        out
    }

    /// The channel-last depthwise convolution and max-pool and the channel-first depthwise
    /// convolution against their definitions: kernel sizes, strides (1, 2, 3), paddings (none,
    /// "same", lopsided), rows narrower and wider than the vector blocks, channel counts around
    /// the blocks' widths, with and without a clamp.
    #[test]
    fn window_kernels_match_the_definition() {
        // (h, w, kh, kw, sh, sw, pad_top, pad_left, pad_bottom, pad_right)
        let shapes = [
            (6, 7, 3, 3, 1, 1, 1, 1, 1, 1),
            (9, 40, 3, 3, 1, 1, 1, 1, 1, 1),
            (11, 75, 3, 3, 2, 2, 0, 0, 1, 1),
            (8, 37, 3, 3, 2, 2, 1, 1, 1, 1),
            (5, 23, 2, 5, 1, 3, 0, 2, 1, 2),
            (4, 4, 3, 3, 1, 1, 0, 0, 0, 0),
            (3, 70, 1, 1, 1, 1, 0, 0, 0, 0),
            (15, 15, 3, 3, 2, 2, 1, 1, 1, 1),
            (7, 24, 3, 3, 1, 1, 1, 1, 1, 1),
            (5, 130, 3, 3, 1, 1, 1, 1, 1, 1),
            (9, 33, 3, 3, 2, 1, 1, 1, 1, 1),
            (6, 64, 3, 3, 1, 1, 0, 0, 0, 0),
            (2, 2, 3, 3, 1, 1, 1, 1, 1, 1),
            (3, 3, 3, 3, 2, 2, 1, 1, 1, 1),
            (12, 12, 3, 3, 1, 1, 1, 1, 1, 1),
            (7, 19, 3, 3, 1, 2, 1, 1, 1, 1),
            (6, 13, 3, 3, 1, 1, 2, 2, 0, 0),
            (10, 10, 3, 3, 2, 2, 0, 0, 1, 1),
            // "Same" 3x3 rows that the AVX-512 build reads in place: one vector (the row's
            // first and last), two overlapping by 7 points, whole blocks of 4 then 3 vectors.
            (5, 8, 3, 3, 1, 1, 1, 1, 1, 1),
            (4, 9, 3, 3, 1, 1, 1, 1, 1, 1),
            (7, 56, 3, 3, 1, 1, 1, 1, 1, 1),
            // Stride 2 with no padding before, which the AVX-512 build reads in place in
            // vectors of 16 points: the padding row and column after (face-api.js's 56 -> 28),
            // none (odd sizes: the 33rd input point inside the image), one whole vector.
            (8, 56, 3, 3, 2, 2, 0, 0, 1, 1),
            (7, 47, 3, 3, 2, 2, 0, 0, 0, 0),
            (6, 34, 3, 3, 2, 2, 0, 0, 0, 0),
            (5, 32, 3, 3, 2, 2, 0, 0, 1, 1),
        ];
        for (h, w, kh, kw, sh, sw, pt, pl, pb, pr) in shapes {
            for c in [1, 3, 4, 8, 12, 13, 16, 40] {
                let (oh, ow) = ((h + pt + pb - kh) / sh + 1, (w + pl + pr - kw) / sw + 1);
                let g = WindowGeometry { h, w, c, kh, kw, sh, sw, pad_top: pt, pad_left: pl, oh, ow };
                assert!(g.is_valid(), "{g:?}");
                let x = values(h * w * c, 11);
                let k = values(c * kh * kw, 12);
                let b = values(c, 13);
                // The channel-last kernel takes its weights as [ky][kx][c].
                let mut k_hwc = vec![0.0; k.len()];
                for ch in 0..c {
                    for t in 0..kh * kw {
                        k_hwc[t * c + ch] = k[ch * kh * kw + t];
                    }
                }
                for clamp in [NO_CLAMP, (0.0, 0.6)] {
                    let n = oh * ow * c;
                    let check = |name: &str, got: &[f32], want: &[f32]| {
                        for (i, (g_, w_)) in got[..n].iter().zip(want).enumerate() {
                            assert!((g_ - w_).abs() < 1e-5, "{name} {g:?} clamp {clamp:?}: element {i}: {g_} vs {w_}");
                        }
                        assert!(got[n..].iter().all(|v| v.is_nan()), "{name} {g:?}: wrote past the output");
                    };
                    let mut out = vec![f32::NAN; n + 3];
                    depthwise_hwc(&x, &k_hwc, &b, &g, clamp, None, &mut out);
                    check("depthwise_hwc", &out, &window_reference(&x, Some((&k, &b)), &g, clamp, false));
                    // With a quantize-dequantize in the epilogue: bit for bit that output through
                    // `fake_quant` (saturating at both ends; the second's range is wider than the
                    // clamp's, whose upper bound then counts).
                    for q in [
                        FakeQuantParams { inv_scale: 40.0, lo: -20.0, hi: 10.0, offset: -2.0, scale: 0.0231 },
                        FakeQuantParams { inv_scale: 40.0, lo: -20.0, hi: 60.0, offset: -2.0, scale: 0.0231 },
                    ] {
                        let mut quantized = vec![f32::NAN; n + 3];
                        depthwise_hwc(&x, &k_hwc, &b, &g, clamp, Some(q), &mut quantized);
                        let mut want = out.clone();
                        fake_quant_in(Build::Portable, &mut want[..n], &q);
                        assert!(
                            quantized.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "depthwise_hwc {g:?} clamp {clamp:?} {q:?} quantized:\n{quantized:?}\nvs\n{want:?}"
                        );
                    }
                    let mut out = vec![f32::NAN; n + 3];
                    max_pool_hwc(&x, &g, clamp, &mut out);
                    check("max_pool_hwc", &out, &window_reference(&x, None, &g, clamp, false));
                    let want = window_reference(&x, Some((&k, &b)), &g, clamp, true);
                    for &build in Build::all().iter().filter(|b| b.available()) {
                        let mut out = vec![f32::NAN; n + 3];
                        depthwise_chw_in(build, &x, &k, &b, &g, clamp, &mut out);
                        check(&format!("depthwise_chw {build:?}"), &out, &want);
                    }
                }
            }
        }
    }

    type Kernel =
        unsafe fn(*const f32, *mut f32, *const f32, &[usize], &[isize], *const f32, usize, usize, usize, isize, isize);

    /// Every build of the channel-inner kernel this machine can run, against the contract's
    /// formula evaluated in f64.
    #[test]
    fn depthwise_c_matches_the_contract() {
        #[allow(unused_mut)] // only x86-64 adds a build
        let mut builds: Vec<(&str, Kernel)> = vec![("portable", depthwise_c_f32_portable)];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            builds.push(("avx2+fma", depthwise_c_f32_avx2_fma));
        }
        for (name, kernel) in builds {
            for channels in [1, 3, 8, 13, 16, 40] {
                for len in [0, 1, 3, 4, 5, 9] {
                    for (in_stride, out_stride) in
                        [(channels as isize, channels as isize), (2 * channels as isize + 3, channels as isize + 1)]
                    {
                        // A 3x3 kernel over an image `row` points wide, channel-inner, stride
                        // `k_stride` between taps (a block of a wider kernel).
                        let (row, k_stride) = (in_stride as usize * 12, channels + 5);
                        let tap_indices: Vec<usize> = vec![0, 2, 3, 4, 5, 8]; // a border zone: some taps dropped
                        let offsets: Vec<isize> = tap_indices
                            .iter()
                            .map(|t| ((t / 3) * row + (t % 3) * in_stride as usize) as isize)
                            .collect();
                        let input = values(3 * row + in_stride as usize * (len + 3) + channels, 1);
                        let kern = values(9 * k_stride, 2);
                        let bias = values(channels, 3);
                        let out_len = (len.max(1) - 1) * out_stride as usize + channels;
                        let mut out = vec![f32::NAN; out_len];
                        unsafe {
                            kernel(
                                input.as_ptr(),
                                out.as_mut_ptr(),
                                kern.as_ptr(),
                                &tap_indices,
                                &offsets,
                                bias.as_ptr(),
                                channels,
                                k_stride,
                                len,
                                in_stride,
                                out_stride,
                            )
                        };
                        for i in 0..len {
                            for c in 0..channels {
                                let want = bias[c] as f64
                                    + tap_indices
                                        .iter()
                                        .zip(&offsets)
                                        .map(|(&t, &o)| {
                                            kern[t * k_stride + c] as f64
                                                * input[i * in_stride as usize + o as usize + c] as f64
                                        })
                                        .sum::<f64>();
                                let got = out[i * out_stride as usize + c];
                                assert!(
                                    (got as f64 - want).abs() < 1e-5,
                                    "{name}: channels {channels} len {len} point {i} channel {c}: {got} vs {want}"
                                );
                            }
                        }
                        if len == 0 {
                            assert!(out.iter().all(|v| v.is_nan()), "{name}: wrote with len 0");
                        }
                    }
                }
            }
        }
    }

    /// tract runs our channel-inner kernel everywhere (on aarch64 over its own NEON kernel; on an
    /// x86-64 with AVX2 and FMA, our AVX2 build).
    #[test]
    fn tract_runs_a_channel_inner_kernel() {
        let name = active_depthwise_c().expect("no channel-inner depthwise kernel registered");
        if cfg!(target_arch = "aarch64") {
            assert_eq!(name, "fer_edge_neon_depthwise_c_f32");
        } else {
            assert!(name.starts_with("fer_edge_"), "tract picked {name}");
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            assert_eq!(name, "fer_edge_avx2_fma_depthwise_c_f32");
        }
    }
}
