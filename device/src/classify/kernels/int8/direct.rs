//! Dense convolutions of QDQ (int8) models in integers: the direct convolution of
//! [`direct_conv`] (channel-first in and out) with unit strides and no padding (mini-XCEPTION's
//! second stem, 3x3 8 -> 8 on 62x62), where its input is the output of a quantize-dequantize and
//! its weights are int8 levels, as [`Int8Pointwise`] is for 1x1 convolutions: each output point's
//! products summed exactly in 32-bit integers, scaled back once, clamped.
//!
//! The input is packed as bytes `[row][channel group][column][4 channels]`, so that 4 channels
//! of a run of points along a row are one contiguous vector; the products of one tap and 4 input
//! channels for 16 points (x86 VNNI, `VPDPBUSD` with the channel's 4 weights broadcast) or 4
//! points (aarch64 `SDOT` by element) are then one instruction per output channel.

use super::*;

/// Output channels per block (accumulators per run of points).
const GROUP: usize = 8;

/// A direct convolution (`kh` x `kw`, unit strides, no padding) as integers, for input with
/// [`Levels`]: `out[co][oy][ox] = clamp((acc0[co] + Σ wq[co][ci][ky][kx] · xq[ci][oy + ky][ox +
/// kx]) · mult[co] + bias[co])`. Weights laid out `[ky][kx][ci / 4][co][ci % 4]`, `co` padded to
/// a multiple of 8 and `ci` to one of 4 with zeros.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Direct {
    pub cin: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub input: Levels,
    weights: Vec<i8>,
    rescale: Rescale,
}

impl Int8Direct {
    /// From f32 weights `packed` as [`direct_conv`] takes them (`[ci][ky][kx][co]`, rows of
    /// `stride` ≥ `cout`) that are int8 levels times a scale per output channel (or one for
    /// all), as [`Int8Pointwise::new`] recognises them; `None` otherwise.
    pub fn new(
        packed: &[f32],
        stride: usize,
        bias: &[f32],
        (cin, cout, kh, kw): (usize, usize, usize, usize),
        input: Levels,
    ) -> Option<Int8Direct> {
        let k = cin * kh * kw;
        if k == 0 || cout == 0 || stride < cout || packed.len() < k * stride || bias.len() < cout {
            return None;
        }
        let columns = int8_columns(packed, k, cout, stride)?;
        let (groups, cout8) = (cin.div_ceil(DEPTH), cout.div_ceil(GROUP) * GROUP);
        let mut weights = vec![0i8; kh * kw * groups * cout8 * DEPTH];
        for (co, (q, _)) in columns.iter().enumerate() {
            for (i, &v) in q.iter().enumerate() {
                let (ci, tap) = (i / (kh * kw), i % (kh * kw));
                weights[((tap * groups + ci / DEPTH) * cout8 + co) * DEPTH + ci % DEPTH] = v;
            }
        }
        let rescale = Rescale::new(&columns, bias, &input, cout8);
        Some(Int8Direct { cin, cout, kh, kw, input, weights, rescale })
    }

    fn groups(&self) -> usize {
        self.cin.div_ceil(DEPTH)
    }

    fn cout8(&self) -> usize {
        self.cout.div_ceil(GROUP) * GROUP
    }
}

/// [`Int8Direct`] on one `h` x `w` image `x` (`[ci][row][col]`), output `[co][oy][ox]` with `oh
/// = h − kh + 1`, `ow = w − kw + 1`, each value clamped to `clamp`. In the best available build.
///
/// # Panics
/// If a slice is shorter than the geometry says or the image is smaller than the kernel.
pub fn direct_int8(x: &[f32], q: &Int8Direct, (h, w): (usize, usize), clamp: (f32, f32), out: &mut [f32]) {
    let build = int8_build().unwrap_or(Int8Build::Portable);
    direct_int8_in(build, x, q, (h, w), clamp, out)
}

/// Whether [`direct_int8`] has vector blocks for output rows of `ow` points in this machine's
/// integer build (16 points for VNNI, 8 for the dot product; narrower rows would run the
/// portable loops, slower than the f32 kernel). Without an integer build, yes: the portable
/// build was asked for.
pub fn direct_int8_applies(ow: usize) -> bool {
    let narrowest = match int8_build() {
        #[cfg(target_arch = "x86_64")]
        Some(Int8Build::Vnni) => LANES_VNNI,
        #[cfg(target_arch = "aarch64")]
        Some(Int8Build::Dotprod) => 2 * POINTS_INT8,
        _ => 0,
    };
    ow >= narrowest
}

/// [`direct_int8`] in a given build.
///
/// # Panics
/// As [`direct_int8`], and if this machine lacks the build's instructions.
pub fn direct_int8_in(
    build: Int8Build,
    x: &[f32],
    q: &Int8Direct,
    (h, w): (usize, usize),
    clamp: (f32, f32),
    out: &mut [f32],
) {
    assert!(build.available(), "{build:?} needs instructions this machine lacks");
    assert!(h >= q.kh && w >= q.kw, "direct_int8: a {h}x{w} image is smaller than the {}x{} kernel", q.kh, q.kw);
    let (oh, ow) = (h - q.kh + 1, w - q.kw + 1);
    assert!(x.len() >= q.cin * h * w && out.len() >= q.cout * oh * ow, "direct_int8: input or output too short");
    let g = Plane { h, w, oh, ow };
    let out = out.as_mut_ptr();
    #[cfg(target_arch = "x86_64")]
    if build == Int8Build::Vnni && ow >= LANES_VNNI {
        // SAFETY: the machine has AVX-512 VNNI (asserted); the slices hold the geometry's values.
        unsafe { direct_vnni(&pack_rows(x, q, &g, true), q, &g, clamp, out) };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if build == Int8Build::Dotprod && ow >= 2 * POINTS_INT8 {
        // SAFETY: the machine has the dot product (asserted); the slices hold the geometry's values.
        unsafe { direct_dotprod(&pack_rows(x, q, &g, false), q, &g, clamp, out) };
        return;
    }
    let xq = pack_rows(x, q, &g, false);
    direct_portable(&xq, q, &g, clamp, out);
}

/// An image's rows and columns, in and out.
struct Plane {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

/// Per tap and group of 4 input channels, in the order the kernels sum them: the offset of its
/// bytes in the packed input from the output point's (row `oy`, column `ox`, group 0), and of
/// its weights from output channel 0's.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn taps(q: &Int8Direct, g: &Plane) -> Vec<(usize, usize)> {
    let groups = q.groups();
    let mut taps = Vec::with_capacity(q.kh * q.kw * groups);
    for ky in 0..q.kh {
        for kx in 0..q.kw {
            for group in 0..groups {
                let x = packed_at(q, g, ky, group, kx);
                taps.push((x, ((ky * q.kw + kx) * groups + group) * q.cout8() * DEPTH));
            }
        }
    }
    taps
}

/// Where input channel group `group`'s 4 bytes at `row`, `col` start in the packed input.
#[inline(always)]
fn packed_at(q: &Int8Direct, g: &Plane, row: usize, group: usize, col: usize) -> usize {
    ((row * q.groups() + group) * g.w + col) * DEPTH
}

/// The input's levels as bytes `[row][channel group][column][4 channels]` (channels past `cin`
/// zero): signed (the level as [`Levels::level`] gives it) or, with `unsigned`, plus 128.
/// Vectorised where whole groups of 4 channels and 4 (NEON) or 16 (AVX-512) columns allow.
fn pack_rows(x: &[f32], q: &Int8Direct, g: &Plane, unsigned: bool) -> Vec<i8> {
    let groups = q.groups();
    let mut xq = vec![0i8; g.h * groups * g.w * DEPTH];
    let plane = g.h * g.w;
    let flip = if unsigned { 0x80u8 as i8 } else { 0 };
    for row in 0..g.h {
        for group in 0..groups {
            let at = packed_at(q, g, row, group, 0);
            let channels = (q.cin - group * DEPTH).min(DEPTH);
            #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_mut))]
            let mut col = 0;
            #[cfg(target_arch = "x86_64")]
            if unsigned && channels == DEPTH {
                // SAFETY: AVX-512 BW and VL come with VNNI (the only caller with `unsigned`);
                // the loads are masked to the row's columns and the stores stay within its groups.
                unsafe { col = pack_row_avx512(x, q, g, row, group, &mut xq[at..at + g.w * DEPTH]) };
            }
            #[cfg(target_arch = "aarch64")]
            if channels == DEPTH {
                use std::arch::aarch64::*;
                while col + POINTS_INT8 <= g.w {
                    // SAFETY: 4 columns from `col` of 4 channels' rows, and their 16 bytes.
                    unsafe {
                        let v: [float32x4_t; 4] = std::array::from_fn(|c| {
                            vld1q_f32(x.as_ptr().add((group * DEPTH + c) * plane + row * g.w + col))
                        });
                        vst1q_s8(xq.as_mut_ptr().add(at + col * DEPTH), q.input.quad_neon(v));
                    }
                    col += POINTS_INT8;
                }
            }
            for col in col..g.w {
                for c in 0..channels {
                    let v = x[(group * DEPTH + c) * plane + row * g.w + col];
                    xq[at + col * DEPTH + c] = q.input.level(v) ^ flip;
                }
            }
        }
    }
    xq
}

/// 16 columns at a time (the last few by masked loads and stores) of one row and channel group
/// of [`pack_rows`], unsigned; returns the first column not packed (the row's end).
///
/// # Safety
/// The machine has AVX-512 F, BW and VL; group `group` has 4 channels; `dst` is the row's group.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn pack_row_avx512(x: &[f32], q: &Int8Direct, g: &Plane, row: usize, group: usize, dst: &mut [i8]) -> usize {
    use std::arch::x86_64::*;
    let plane = g.h * g.w;
    let mut col = 0;
    // SAFETY: as the function's; every load is of 16 columns of the row.
    unsafe {
        while col < g.w {
            let n = (g.w - col).min(16);
            let m = ((1u32 << n) - 1) as __mmask16;
            let at = |c: usize| x.as_ptr().add((group * DEPTH + c) * plane + row * g.w + col);
            let channel = |c: usize| levels_avx512(&q.input, _mm512_maskz_loadu_ps(m, at(c)));
            let quads = interleave_avx512([channel(0), channel(1), channel(2), channel(3)]);
            for (b, quad) in quads.iter().enumerate() {
                // The quad's columns within the row: all 4, or the last few.
                let left = n.saturating_sub(POINTS_INT8 * b).min(POINTS_INT8);
                let d = dst.as_mut_ptr().add((col + POINTS_INT8 * b) * DEPTH) as *mut i32;
                _mm_mask_storeu_epi32(d, ((1u32 << left) - 1) as __mmask8, *quad);
            }
            col += n;
        }
    }
    col
}

/// The definition, one output at a time from the signed bytes: the reference for the others.
fn direct_portable(xq: &[i8], q: &Int8Direct, g: &Plane, clamp: (f32, f32), out: *mut f32) {
    let (groups, cout8) = (q.groups(), q.cout8());
    for co in 0..q.cout {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut acc = q.rescale.acc0[co];
                for ky in 0..q.kh {
                    for kx in 0..q.kw {
                        for group in 0..groups {
                            let xs = &xq[packed_at(q, g, oy + ky, group, ox + kx)..][..DEPTH];
                            let at = (((ky * q.kw + kx) * groups + group) * cout8 + co) * DEPTH;
                            let ws = &q.weights[at..at + DEPTH];
                            acc += xs.iter().zip(ws).map(|(x, w)| *x as i32 * *w as i32).sum::<i32>();
                        }
                    }
                }
                let v = (acc as f32 * q.rescale.mult[co] + q.rescale.bias[co]).max(clamp.0).min(clamp.1);
                // SAFETY: within the output (asserted by the caller).
                unsafe { *out.add((co * g.oh + oy) * g.ow + ox) = v };
            }
        }
    }
}

/// Output points per vector of the VNNI build.
#[cfg(target_arch = "x86_64")]
const LANES_VNNI: usize = 16;

/// The VNNI build: per output row, runs of 32 points (16 where fewer are left; a last run
/// overlaps the one before), per group of 8 output channels, [`direct_block_vnni`].
///
/// # Safety
/// The machine has AVX-512 VNNI; `xq` is packed unsigned; `ow` ≥ 16; the output holds the
/// geometry's values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
unsafe fn direct_vnni(xq: &[i8], q: &Int8Direct, g: &Plane, clamp: (f32, f32), out: *mut f32) {
    use std::arch::x86_64::*;
    let bounds = (_mm512_set1_ps(clamp.0), _mm512_set1_ps(clamp.1));
    let taps = taps(q, g);
    for oy in 0..g.oh {
        let mut ox = 0;
        while ox < g.ow {
            let wide = g.ow >= 2 * LANES_VNNI && g.ow - ox > LANES_VNNI;
            let n = if wide { 2 } else { 1 } * LANES_VNNI;
            let start = ox.min(g.ow - n);
            for c in (0..q.cout).step_by(GROUP) {
                // SAFETY: as the function's: the run lies within the row.
                unsafe {
                    if wide {
                        direct_block_vnni::<2>(xq, q, g, &taps, bounds, out, (oy, start, c));
                    } else {
                        direct_block_vnni::<1>(xq, q, g, &taps, bounds, out, (oy, start, c));
                    }
                }
            }
            ox = start + n;
        }
    }
}

/// `N` vectors of 16 points from `ox` of row `oy` x the 8 output channels from `c`: per tap and
/// group of 4 input channels, `N` loads of the points' bytes and 8 broadcasts of a channel's 4
/// weights, `8 N` `VPDPBUSD`s; then `acc · mult + bias` (a multiply, then an add), the clamp,
/// and a store of each channel's run.
///
/// # Safety
/// As [`direct_vnni`], the run within the row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
#[inline]
#[allow(clippy::needless_range_loop)]
unsafe fn direct_block_vnni<const N: usize>(
    xq: &[i8],
    q: &Int8Direct,
    g: &Plane,
    taps: &[(usize, usize)],
    (lo, hi): (std::arch::x86_64::__m512, std::arch::x86_64::__m512),
    out: *mut f32,
    (oy, ox, c): (usize, usize, usize),
) {
    use std::arch::x86_64::*;
    // SAFETY: the loads stay within the packed rows oy..oy + kh and columns ox..ox + 16 N + kw − 1
    // (< w), the weights within their padded channels; the stores within the output's channels.
    unsafe {
        let init: [__m512i; GROUP] = std::array::from_fn(|j| _mm512_set1_epi32(q.rescale.acc0_unsigned[c + j]));
        let mut acc = [init; N];
        let (x0, w0) = (xq.as_ptr().add(packed_at(q, g, oy, 0, ox)), q.weights.as_ptr().add(c * DEPTH));
        for &(xo, wo) in taps {
            let (xp, wp) = (x0.add(xo), w0.add(wo));
            let xv: [__m512i; N] = std::array::from_fn(|n| _mm512_loadu_si512(xp.add(64 * n) as *const _));
            for j in 0..GROUP {
                let wv = _mm512_set1_epi32((wp.add(DEPTH * j) as *const i32).read_unaligned());
                for n in 0..N {
                    acc[n][j] = _mm512_dpbusd_epi32(acc[n][j], xv[n], wv);
                }
            }
        }
        for j in 0..GROUP.min(q.cout - c) {
            let (m, b) = (_mm512_set1_ps(q.rescale.mult[c + j]), _mm512_set1_ps(q.rescale.bias[c + j]));
            for n in 0..N {
                let y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[n][j]), m), b);
                let y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
                _mm512_storeu_ps(out.add(((c + j) * g.oh + oy) * g.ow + ox + LANES_VNNI * n), y);
            }
        }
    }
}

/// The dot-product build: per output row, runs of 8 points (a last run overlapping the one
/// before), per group of 8 output channels, [`direct_block_dotprod`].
///
/// # Safety
/// The machine has the dot-product extension; `xq` is packed signed; `ow` ≥ 8; the output holds
/// the geometry's values.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "dotprod")]
unsafe fn direct_dotprod(xq: &[i8], q: &Int8Direct, g: &Plane, clamp: (f32, f32), out: *mut f32) {
    const RUN: usize = 2 * POINTS_INT8;
    let taps = taps(q, g);
    for oy in 0..g.oh {
        let mut ox = 0;
        while ox < g.ow {
            let start = ox.min(g.ow - RUN);
            for c in (0..q.cout).step_by(GROUP) {
                // SAFETY: as the function's: the run lies within the row.
                unsafe { direct_block_dotprod(xq, q, g, &taps, clamp, out, (oy, start, c)) };
            }
            ox = start + RUN;
        }
    }
}

/// 8 points (two vectors of 4) from `ox` of row `oy` x the 8 output channels from `c`: per tap
/// and group of 4 input channels, two loads of the points' bytes and two of the 8 channels'
/// weights, 16 `SDOT`s by element; then as [`direct_block_vnni`].
///
/// # Safety
/// As [`direct_dotprod`], the run within the row.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "dotprod")]
#[inline]
unsafe fn direct_block_dotprod(
    xq: &[i8],
    q: &Int8Direct,
    g: &Plane,
    taps: &[(usize, usize)],
    clamp: (f32, f32),
    out: *mut f32,
    (oy, ox, c): (usize, usize, usize),
) {
    use std::arch::aarch64::*;
    // SAFETY: as [`direct_block_vnni`]'s.
    unsafe {
        let init: [int32x4_t; GROUP] = std::array::from_fn(|j| vdupq_n_s32(q.rescale.acc0[c + j]));
        let mut acc = [init; 2];
        let (x0, w0) = (xq.as_ptr().add(packed_at(q, g, oy, 0, ox)), q.weights.as_ptr().add(c * DEPTH));
        for &(xo, wo) in taps {
            let (xp, wp) = (x0.add(xo), w0.add(wo));
            let xv = [vld1q_s8(xp), vld1q_s8(xp.add(16))];
            let wv = [vld1q_s8(wp), vld1q_s8(wp.add(16))];
            for (acc, &xv) in acc.iter_mut().zip(&xv) {
                acc[0] = sdot::<0>(acc[0], xv, wv[0]);
                acc[1] = sdot::<1>(acc[1], xv, wv[0]);
                acc[2] = sdot::<2>(acc[2], xv, wv[0]);
                acc[3] = sdot::<3>(acc[3], xv, wv[0]);
                acc[4] = sdot::<0>(acc[4], xv, wv[1]);
                acc[5] = sdot::<1>(acc[5], xv, wv[1]);
                acc[6] = sdot::<2>(acc[6], xv, wv[1]);
                acc[7] = sdot::<3>(acc[7], xv, wv[1]);
            }
        }
        let (lo, hi) = (vdupq_n_f32(clamp.0), vdupq_n_f32(clamp.1));
        for j in 0..GROUP.min(q.cout - c) {
            let (m, b) = (vdupq_n_f32(q.rescale.mult[c + j]), vdupq_n_f32(q.rescale.bias[c + j]));
            for (n, acc) in acc.iter().enumerate() {
                let y = vaddq_f32(vmulq_f32(vcvtq_f32_s32(acc[j]), m), b);
                let y = vminq_f32(vmaxq_f32(y, lo), hi);
                vst1q_f32(out.add(((c + j) * g.oh + oy) * g.ow + ox + POINTS_INT8 * n), y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::tests::values;
    use super::super::tests::{int8_weights, on_levels, INPUT};
    use super::*;

    /// Every build against the sums in f64 of the dequantized values and bit for bit against the
    /// portable build, on images whose rows need overlapping runs, with and without a clamp,
    /// channels not a multiple of 4 or 8.
    #[test]
    fn int8_direct_matches_the_definition() {
        let levels = Levels::of(&INPUT).unwrap();
        for (cin, cout, k, h, w) in [
            (8, 8, 3, 12, 62),
            (8, 8, 3, 5, 20),
            (3, 5, 3, 6, 11),
            (4, 16, 3, 4, 40),
            (5, 13, 2, 7, 35),
            (8, 9, 1, 3, 17),
            (1, 8, 3, 5, 9),
        ] {
            for clamp in [NO_CLAMP, (0.0, f32::INFINITY), (0.0, 6.0)] {
                let (oh, ow) = (h - k + 1, w - k + 1);
                let x = on_levels(cin * h * w, &INPUT, 21);
                // `[ci][ky][kx][co]` in rows of `stride`.
                let stride = cout + 3;
                let wk = int8_weights(cin * k * k, cout, 22);
                let mut packed = vec![0.0; cin * k * k * stride];
                for (i, row) in wk.chunks_exact(cout).enumerate() {
                    packed[i * stride..i * stride + cout].copy_from_slice(row);
                }
                let bias = values(cout, 23);
                let q = Int8Direct::new(&packed, stride, &bias, (cin, cout, k, k), levels).expect("int8 weights");
                let what = format!("{cin} -> {cout}, {k}x{k} on {h}x{w}, clamp {clamp:?}");
                let run = |build| {
                    let mut out = vec![f32::NAN; cout * oh * ow + 3];
                    direct_int8_in(build, &x, &q, (h, w), clamp, &mut out);
                    out
                };
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let out = run(Int8Build::Portable);
                for &build in Int8Build::all().iter().filter(|b| b.available()) {
                    assert_eq!(bits(&run(build)), bits(&out), "{build:?} vs portable: {what}");
                }
                for co in 0..cout {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut s = bias[co] as f64;
                            for ci in 0..cin {
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let wv = wk[((ci * k + ky) * k + kx) * cout + co] as f64;
                                        s += wv * x[(ci * h + oy + ky) * w + ox + kx] as f64;
                                    }
                                }
                            }
                            let want = s.clamp(clamp.0 as f64, clamp.1 as f64);
                            let got = out[(co * oh + oy) * ow + ox] as f64;
                            assert!(
                                (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                                "{what}: channel {co} at {oy},{ox}: {got} vs {want}"
                            );
                        }
                    }
                }
                assert!(out[cout * oh * ow..].iter().all(|v| v.is_nan()), "{what}: wrote past the output");
            }
        }
    }
}
