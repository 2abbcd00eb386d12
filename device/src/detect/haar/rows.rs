//! A [`StumpPlan`] run on [`LANES`] neighbouring windows of a row at once: the windows' corners
//! lie `step` integral-image elements apart, so each stump's rectangle sums (Haar) or 16 grid
//! corners (LBP) are a few vector loads instead of 8-16 scalar loads per window. Same
//! arithmetic, in the same order, as [`StumpPlan::window_result`] (no fused multiply-adds), so
//! the hits are bit for bit those of the window-by-window scan, which stays the reference (unit
//! test `row_scan_finds_the_windows_of_the_window_by_window_scan`).
//!
//! Positions are visited as OpenCV's scan does: `x = 0, step, ...`, skipping one position after
//! a window rejected by the first stage. A batch evaluates the first stage on all its lanes,
//! then follows that rule through them and runs the later stages only on the visited windows
//! that passed, while any is left.

use super::{HaarStump, Integral, LbpStump, StumpPlan, LBP_ORDER};

/// Windows evaluated together (8 f32 lanes: one AVX2 register, two NEON registers).
const LANES: usize = 8;

/// Integral-image elements past the last row that a batch may read: the lanes beyond a row's
/// last window (their results are discarded).
pub(super) const PAD: usize = 2 * LANES;

/// Appends to `hits` the x (level pixels) of every window of the integral-image row `y` from
/// `x0` that passes every stage: `positions` windows, `step` (1 or 2) pixels apart.
pub(super) fn scan_row(
    plan: &StumpPlan,
    ii: &Integral,
    (x0, y): (usize, usize),
    positions: usize,
    step: usize,
    hits: &mut Vec<usize>,
) {
    check(plan, ii, (x0, y), positions, step);
    let first = y * ii.stride + x0;
    let start = hits.len();
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present; `check` bounds every read of the batches.
            unsafe {
                if step == 1 {
                    scan_row_avx2::<1>(plan, ii, first, positions, hits)
                } else {
                    scan_row_avx2::<2>(plan, ii, first, positions, hits)
                }
                return shift(hits, start, x0);
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `check` bounds every read of the batches.
    unsafe {
        if step == 1 {
            scan_row_body::<1>(plan, ii, first, positions, hits, (neon::haar::<1>, neon::lbp::<1>))
        } else {
            scan_row_body::<2>(plan, ii, first, positions, hits, (neon::haar::<2>, neon::lbp::<2>))
        }
    }
    #[cfg(not(target_arch = "aarch64"))]
    // SAFETY: `check` bounds every read of the batches.
    unsafe {
        scan_row_portable(plan, ii, first, positions, step, hits)
    }
    shift(hits, start, x0);
}

/// Hits from `start` on, counted from `x0`.
fn shift(hits: &mut [usize], start: usize, x0: usize) {
    hits[start..].iter_mut().for_each(|x| *x += x0);
}

/// Panics unless every read of [`scan_row_body`] for this row lies inside the integral image.
fn check(plan: &StumpPlan, ii: &Integral, (x0, y): (usize, usize), positions: usize, step: usize) {
    assert!(step == 1 || step == 2, "row scan with step {step}");
    // The last batch's loads (LANES * step elements from each corner) reach up to here.
    let last = y * ii.stride + x0 + (positions.max(1) - 1 + LANES) * step - 1 + plan.span;
    let squares = plan.lbp.is_empty();
    assert!(
        last < ii.sum.len() && (!squares || last < ii.sq.len()),
        "row {y} of {positions} windows from {x0} outside the integral image"
    );
}

/// The lane-array build of the row scan, for targets without a vector build here (and as a
/// second implementation in tests).
///
/// # Safety
/// As [`scan_row_body`].
#[cfg_attr(target_arch = "aarch64", allow(dead_code))]
unsafe fn scan_row_portable(
    plan: &StumpPlan,
    ii: &Integral,
    first: usize,
    positions: usize,
    step: usize,
    hits: &mut Vec<usize>,
) {
    unsafe {
        if step == 1 {
            scan_row_body::<1>(plan, ii, first, positions, hits, (haar_portable::<1>, lbp_portable::<1>))
        } else {
            scan_row_body::<2>(plan, ii, first, positions, hits, (haar_portable::<2>, lbp_portable::<2>))
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_row_avx2<const STEP: usize>(
    plan: &StumpPlan,
    ii: &Integral,
    first: usize,
    positions: usize,
    hits: &mut Vec<usize>,
) {
    unsafe { scan_row_body::<STEP>(plan, ii, first, positions, hits, (avx2::haar::<STEP>, avx2::lbp::<STEP>)) }
}

/// A Haar stage on the batch: `(stumps, threshold, first window's integral-image element, each
/// window's 1 / standard deviation)` → bit k set if window k passes.
type HaarFn = unsafe fn(&[HaarStump], f32, *const i32, &[f32; LANES]) -> u32;
/// An LBP stage on the batch: `(stumps, threshold, first window's integral-image element)`.
type LbpFn = unsafe fn(&[LbpStump], f32, *const i32) -> u32;

/// # Safety
/// Every element up to `first + (positions - 1 + LANES) * STEP - 1 + span` of `ii.sum` and
/// `ii.sq` must exist (as [`check`] asserts). `first`: the integral-image element of the first
/// window's top-left corner; hits are counted from it.
#[inline(always)]
unsafe fn scan_row_body<const STEP: usize>(
    plan: &StumpPlan,
    ii: &Integral,
    first: usize,
    positions: usize,
    hits: &mut Vec<usize>,
    (haar, lbp): (HaarFn, LbpFn),
) {
    let (sum, sq) = (ii.sum.as_ptr(), ii.sq.as_ptr());
    let n = &plan.norm;
    // Next position index OpenCV's scan visits.
    let mut next = 0;
    let mut j0 = 0;
    while j0 < positions {
        let base = first + j0 * STEP;
        let lanes = LANES.min(positions - j0);
        // Variance normalisation, in f64 as the scalar scan; bit k of `alive`: window k is
        // still a candidate.
        let mut alive = 0u32;
        let mut inv = [0f32; LANES];
        if !plan.lbp.is_empty() {
            // OpenCV's LBP evaluator has no variance normalisation.
            alive = (1 << lanes) - 1;
        }
        for (k, inv) in inv.iter_mut().enumerate().take(if plan.lbp.is_empty() { lanes } else { 0 }) {
            let b = base + k * STEP;
            // SAFETY: b + n[i] <= b + span, within the caller's bound.
            let (valsum, sqsum) = unsafe {
                let s = |o: usize| *sum.add(b + o);
                let q = |o: usize| *sq.add(b + o);
                (s(n[0]) - s(n[1]) - s(n[2]) + s(n[3]), q(n[0]) - q(n[1]) - q(n[2]) + q(n[3]))
            };
            let valsum = valsum as f64;
            let nf = plan.area * sqsum - valsum * valsum;
            if nf > 0.0 && plan.area / nf.sqrt() < 0.1 {
                *inv = (1.0 / nf.sqrt()) as f32;
                alive |= 1 << k;
            }
        }
        let mut start = 0;
        for (si, &(end, threshold)) in plan.stages.iter().enumerate() {
            if si > 0 && alive == 0 {
                break;
            }
            // SAFETY: the caller's bound covers every lane of the batch.
            let pass = unsafe {
                if plan.lbp.is_empty() {
                    haar(&plan.haar[start..end], threshold, sum.add(base), &inv)
                } else {
                    lbp(&plan.lbp[start..end], threshold, sum.add(base))
                }
            };
            if si == 0 {
                // Follow the scan through the batch (even one of flat windows only, so that
                // `next` moves on): a window rejected here, not a flat one, makes the scan skip
                // the next position; skipped windows are dropped.
                for k in 0..lanes {
                    if j0 + k == next {
                        next += if (alive & !pass) >> k & 1 == 1 { 2 } else { 1 };
                    } else {
                        alive &= !(1 << k);
                    }
                }
            }
            alive &= pass;
            start = end;
        }
        while alive != 0 {
            hits.push((j0 + alive.trailing_zeros() as usize) * STEP);
            alive &= alive - 1;
        }
        j0 += LANES;
    }
}

/// [`HaarFn`] on lane arrays.
///
/// # Safety
/// `at + LANES * STEP - 1 + o` must be readable for every corner offset `o` of `stumps`.
unsafe fn haar_portable<const STEP: usize>(
    stumps: &[HaarStump],
    threshold: f32,
    at: *const i32,
    inv: &[f32; LANES],
) -> u32 {
    // The rectangle sum of each lane as f32 (wrapping: lanes past the row may read anything).
    let rect = |o: &[usize; 4]| -> [f32; LANES] {
        // SAFETY: the caller's bound.
        let v = |c: usize| -> [i32; LANES] { std::array::from_fn(|k| unsafe { *at.add(o[c] + k * STEP) }) };
        let (a, b, c, d) = (v(0), v(1), v(2), v(3));
        std::array::from_fn(|k| a[k].wrapping_sub(b[k]).wrapping_sub(c[k]).wrapping_add(d[k]) as f32)
    };
    let mut total = [0f32; LANES];
    for st in stumps {
        let (a, b) = (rect(&st.offsets[0]), rect(&st.offsets[1]));
        let mut v: [f32; LANES] = std::array::from_fn(|k| st.weights[0] * a[k] + st.weights[1] * b[k]);
        if st.three {
            let c = rect(&st.offsets[2]);
            for k in 0..LANES {
                v[k] += st.weights[2] * c[k];
            }
        }
        for k in 0..LANES {
            total[k] += if v[k] * inv[k] < st.threshold { st.leaves[0] } else { st.leaves[1] };
        }
    }
    (0..LANES).fold(0, |m, k| m | ((total[k] >= threshold) as u32) << k)
}

/// [`LbpFn`] on lane arrays.
///
/// # Safety
/// `at + LANES * STEP - 1 + o` must be readable for every grid offset `o` of `stumps`.
unsafe fn lbp_portable<const STEP: usize>(stumps: &[LbpStump], threshold: f32, at: *const i32) -> u32 {
    let mut total = [0f32; LANES];
    for st in stumps {
        // SAFETY: the caller's bound.
        let g: [[i32; LANES]; 16] = st.grid.map(|o| std::array::from_fn(|k| unsafe { *at.add(o + k * STEP) }));
        for (k, total) in total.iter_mut().enumerate() {
            let block = |bx: usize, by: usize| {
                let g = |i: usize| g[i][k];
                g((by + 1) * 4 + bx + 1)
                    .wrapping_sub(g(by * 4 + bx + 1))
                    .wrapping_sub(g((by + 1) * 4 + bx))
                    .wrapping_add(g(by * 4 + bx))
            };
            let c = block(1, 1);
            let code = LBP_ORDER.iter().fold(0usize, |code, &(bx, by)| (code << 1) | (block(bx, by) >= c) as usize);
            *total += st.leaves[(st.subset[code >> 5] & (1 << (code & 31)) == 0) as usize];
        }
    }
    (0..LANES).fold(0, |m, k| m | ((total[k] >= threshold) as u32) << k)
}

/// The stages in AVX2: one register of 8 lanes.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{HaarStump, LbpStump, LANES, LBP_ORDER};
    use std::arch::x86_64::*;

    /// The `STEP`-apart elements from `p`: 8 contiguous, or the even ones of 16.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn load<const STEP: usize>(p: *const i32) -> __m256i {
        unsafe {
            let lo = _mm256_loadu_si256(p.cast());
            if STEP == 1 {
                return lo;
            }
            let hi = _mm256_loadu_si256(p.add(8).cast());
            // [a0 a2 b0 b2 | a4 a6 b4 b6], then the 64-bit pairs in order 0 2 1 3.
            let even = _mm256_shuffle_ps::<0b10_00_10_00>(_mm256_castsi256_ps(lo), _mm256_castsi256_ps(hi));
            _mm256_castpd_si256(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(even)))
        }
    }

    // No `array::map` or `from_fn` in this module: those generic functions have no AVX2, so
    // the closures they call were not inlined, and every vector went through memory (the LBP
    // stage took 1.7x the time of the scalar scan).

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn rect<const STEP: usize>(at: *const i32, o: &[usize; 4]) -> __m256 {
        unsafe {
            let (a, b) = (load::<STEP>(at.add(o[0])), load::<STEP>(at.add(o[1])));
            let (c, d) = (load::<STEP>(at.add(o[2])), load::<STEP>(at.add(o[3])));
            _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_sub_epi32(_mm256_sub_epi32(a, b), c), d))
        }
    }

    /// The sum of LBP block `(bx, by)` from the grid of corners `g`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn block(g: &[__m256i; 16], bx: usize, by: usize) -> __m256i {
        let d = _mm256_sub_epi32(g[(by + 1) * 4 + bx + 1], g[by * 4 + bx + 1]);
        _mm256_add_epi32(_mm256_sub_epi32(d, g[(by + 1) * 4 + bx]), g[by * 4 + bx])
    }

    /// [`super::HaarFn`].
    ///
    /// # Safety
    /// AVX2, and the bound of [`super::haar_portable`].
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn haar<const STEP: usize>(
        stumps: &[HaarStump],
        threshold: f32,
        at: *const i32,
        inv: &[f32; LANES],
    ) -> u32 {
        unsafe {
            let inv = _mm256_loadu_ps(inv.as_ptr());
            let mut total = _mm256_setzero_ps();
            for st in stumps {
                let (w0, w1, w2) =
                    (_mm256_set1_ps(st.weights[0]), _mm256_set1_ps(st.weights[1]), _mm256_set1_ps(st.weights[2]));
                let mut v = _mm256_add_ps(
                    _mm256_mul_ps(w0, rect::<STEP>(at, &st.offsets[0])),
                    _mm256_mul_ps(w1, rect::<STEP>(at, &st.offsets[1])),
                );
                if st.three {
                    v = _mm256_add_ps(v, _mm256_mul_ps(w2, rect::<STEP>(at, &st.offsets[2])));
                }
                let below = _mm256_cmp_ps::<_CMP_LT_OQ>(_mm256_mul_ps(v, inv), _mm256_set1_ps(st.threshold));
                let leaf = _mm256_blendv_ps(_mm256_set1_ps(st.leaves[1]), _mm256_set1_ps(st.leaves[0]), below);
                total = _mm256_add_ps(total, leaf);
            }
            _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(total, _mm256_set1_ps(threshold))) as u32
        }
    }

    /// [`super::LbpFn`].
    ///
    /// # Safety
    /// AVX2, and the bound of [`super::lbp_portable`].
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn lbp<const STEP: usize>(stumps: &[LbpStump], threshold: f32, at: *const i32) -> u32 {
        unsafe {
            let (one, low5) = (_mm256_set1_epi32(1), _mm256_set1_epi32(31));
            let mut total = _mm256_setzero_ps();
            for st in stumps {
                let mut g = [_mm256_setzero_si256(); 16];
                for (g, &o) in g.iter_mut().zip(&st.grid) {
                    *g = load::<STEP>(at.add(o));
                }
                let c = block(&g, 1, 1);
                let mut code = _mm256_setzero_si256();
                for &(bx, by) in &LBP_ORDER {
                    // 1 where block >= c: (block < c ? -1 : 0) + 1.
                    let bit = _mm256_add_epi32(_mm256_cmpgt_epi32(c, block(&g, bx, by)), one);
                    code = _mm256_or_si256(_mm256_slli_epi32::<1>(code), bit);
                }
                // The subset's word code / 32, shifted so that bit code % 32 is the sign bit.
                let word = _mm256_i32gather_epi32::<4>(st.subset.as_ptr(), _mm256_srli_epi32::<5>(code));
                let top = _mm256_sllv_epi32(word, _mm256_sub_epi32(low5, _mm256_and_si256(code, low5)));
                let leaf = _mm256_blendv_ps(
                    _mm256_set1_ps(st.leaves[1]),
                    _mm256_set1_ps(st.leaves[0]),
                    _mm256_castsi256_ps(top),
                );
                total = _mm256_add_ps(total, leaf);
            }
            _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(total, _mm256_set1_ps(threshold))) as u32
        }
    }
}

/// The stages in NEON: two registers of 4 lanes.
#[cfg(target_arch = "aarch64")]
mod neon {
    use super::{HaarStump, LbpStump, LANES, LBP_ORDER};
    use std::arch::aarch64::*;

    /// Lanes 0-3 and 4-7: the `STEP`-apart elements from `p`.
    #[inline(always)]
    unsafe fn load<const STEP: usize>(p: *const i32) -> [int32x4_t; 2] {
        unsafe {
            // (De-interleaving loads for STEP 2: element 0 of each pair.)
            [load_half::<STEP>(p), load_half::<STEP>(p.add(4 * STEP))]
        }
    }

    /// 4 lanes: the `STEP`-apart elements from `p`.
    #[inline(always)]
    unsafe fn load_half<const STEP: usize>(p: *const i32) -> int32x4_t {
        unsafe {
            if STEP == 1 {
                vld1q_s32(p)
            } else {
                vld2q_s32(p).0
            }
        }
    }

    #[inline(always)]
    unsafe fn rect<const STEP: usize>(at: *const i32, o: &[usize; 4]) -> [float32x4_t; 2] {
        unsafe {
            let [a, b, c, d] = o.map(|o| load::<STEP>(at.add(o)));
            std::array::from_fn(|h| vcvtq_f32_s32(vaddq_s32(vsubq_s32(vsubq_s32(a[h], b[h]), c[h]), d[h])))
        }
    }

    /// [`super::HaarFn`].
    ///
    /// # Safety
    /// The bound of [`super::haar_portable`].
    pub(super) unsafe fn haar<const STEP: usize>(
        stumps: &[HaarStump],
        threshold: f32,
        at: *const i32,
        inv: &[f32; LANES],
    ) -> u32 {
        unsafe {
            let inv = [vld1q_f32(inv.as_ptr()), vld1q_f32(inv.as_ptr().add(4))];
            let mut total = [vdupq_n_f32(0.0); 2];
            for st in stumps {
                let (a, b) = (rect::<STEP>(at, &st.offsets[0]), rect::<STEP>(at, &st.offsets[1]));
                let mut v: [float32x4_t; 2] = std::array::from_fn(|h| {
                    vaddq_f32(vmulq_n_f32(a[h], st.weights[0]), vmulq_n_f32(b[h], st.weights[1]))
                });
                if st.three {
                    let c = rect::<STEP>(at, &st.offsets[2]);
                    v = std::array::from_fn(|h| vaddq_f32(v[h], vmulq_n_f32(c[h], st.weights[2])));
                }
                let (l0, l1, t) = (vdupq_n_f32(st.leaves[0]), vdupq_n_f32(st.leaves[1]), vdupq_n_f32(st.threshold));
                for h in 0..2 {
                    let below = vcltq_f32(vmulq_f32(v[h], inv[h]), t);
                    total[h] = vaddq_f32(total[h], vbslq_f32(below, l0, l1));
                }
            }
            let bits = vld1q_u32([1u32, 2, 4, 8].as_ptr());
            let t = vdupq_n_f32(threshold);
            let m = |h: usize| vaddvq_u32(vandq_u32(vcgeq_f32(total[h], t), bits));
            m(0) | m(1) << 4
        }
    }

    /// [`super::LbpFn`], 4 lanes at a time (16 grid registers each).
    ///
    /// # Safety
    /// The bound of [`super::lbp_portable`].
    pub(super) unsafe fn lbp<const STEP: usize>(stumps: &[LbpStump], threshold: f32, at: *const i32) -> u32 {
        unsafe {
            let mut total = [vdupq_n_f32(0.0); 2];
            for st in stumps {
                // The subset as 32 bytes: bit `code % 8` of byte `code / 8` (little-endian words).
                let table = vld1q_u8_x2(st.subset.as_ptr().cast());
                let (l0, l1) = (vdupq_n_f32(st.leaves[0]), vdupq_n_f32(st.leaves[1]));
                for (h, total) in total.iter_mut().enumerate() {
                    // A loop, not `array::map`: that was a call per stump, through the stack.
                    let mut g = [vdupq_n_s32(0); 16];
                    for (g, &o) in g.iter_mut().zip(&st.grid) {
                        *g = load_half::<STEP>(at.add(o + h * 4 * STEP));
                    }
                    let block = |bx: usize, by: usize| {
                        let d = vsubq_s32(g[(by + 1) * 4 + bx + 1], g[by * 4 + bx + 1]);
                        vaddq_s32(vsubq_s32(d, g[(by + 1) * 4 + bx]), g[by * 4 + bx])
                    };
                    let c = block(1, 1);
                    let mut code = vdupq_n_u32(0);
                    for &(bx, by) in &LBP_ORDER {
                        // (code << 1) | (block >= c).
                        code = vsliq_n_u32::<1>(vshrq_n_u32::<31>(vcgeq_s32(block(bx, by), c)), code);
                    }
                    // Byte code / 8 of the subset into each lane's low byte (its other bytes look
                    // up byte 0 and are masked off by the bit test).
                    let bytes = vreinterpretq_u32_u8(vqtbl2q_u8(table, vreinterpretq_u8_u32(vshrq_n_u32::<3>(code))));
                    let bit = vshlq_u32(vdupq_n_u32(1), vreinterpretq_s32_u32(vandq_u32(code, vdupq_n_u32(7))));
                    *total = vaddq_f32(*total, vbslq_f32(vtstq_u32(bytes, bit), l0, l1));
                }
            }
            let bits = vld1q_u32([1u32, 2, 4, 8].as_ptr());
            let t = vdupq_n_f32(threshold);
            let m = |h: usize| vaddvq_u32(vandq_u32(vcgeq_f32(total[h], t), bits));
            m(0) | m(1) << 4
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{resize_bilinear, HaarCascade};
    use super::*;
    use std::path::Path;

    /// The row scan against the window-by-window scan of the stump plan, with OpenCV's visiting
    /// rule, on rows of real photographs at several pyramid levels and both steps, for OpenCV's
    /// Haar and LBP face cascades.
    #[test]
    fn row_scan_finds_the_windows_of_the_window_by_window_scan() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let photos: Vec<_> = ["astronaut.png", "group.png"]
            .into_iter()
            .map(|photo| {
                let path = root.join(".cache/fixtures").join(photo);
                let img =
                    image::open(&path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/fixtures.sh)", path.display()));
                (photo, fer_core::preprocess::to_gray8(&img))
            })
            .collect();
        // Pyramid levels of each photograph (1 / scale) where the cascade finds faces: its
        // window (24 px Haar, 45 px LBP) near the faces' size.
        for (xml, levels) in [
            ("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml", [&[1.0, 2.6][..], &[3.3]]),
            ("/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml", [&[1.3, 1.6, 1.95][..], &[]]),
        ] {
            let c = HaarCascade::load(Path::new(xml)).unwrap();
            let (ww, wh) = (c.width as usize, c.height as usize);
            let (mut hits_seen, mut windows) = (0, 0);
            for ((photo, gray), scales) in photos.iter().zip(levels) {
                for &scale in scales {
                    let (w, h) = ((gray.width() as f64 / scale) as usize, (gray.height() as f64 / scale) as usize);
                    let level = resize_bilinear(gray, w as u32, h as u32);
                    // Rows padded as in raw_detections, where every level has the widest one's stride.
                    let ii = Integral::with_squares(&level, !c.lbp, gray.width() as usize + 1);
                    let plan = StumpPlan::new(&c, ii.stride).unwrap();
                    for step in [1, 2] {
                        // Every third row (the rows are independent): 8 s instead of 23 under QEMU;
                        // every other one from a position after the row's first.
                        for y in (0..=(h - wh)).step_by(3) {
                            let x0 = if y % 2 == 0 { 0 } else { step * (y % 7) };
                            let positions = (w - ww - x0) / step + 1;
                            let mut want = Vec::new();
                            let mut x = x0;
                            while x + ww <= w {
                                let r = plan.window_result(&ii, y * ii.stride + x);
                                if r > 0 {
                                    want.push(x);
                                }
                                x += if r == 0 { 2 * step } else { step };
                                windows += 1;
                            }
                            let mut got = Vec::new();
                            scan_row(&plan, &ii, (x0, y), positions, step, &mut got);
                            assert_eq!(got, want, "{xml}: {photo} at 1/{scale}, step {step}, row {y} from {x0}");
                            // The lane-array build too, where scan_row took a vector one.
                            got.clear();
                            // SAFETY: scan_row's check passed for this row.
                            unsafe { scan_row_portable(&plan, &ii, y * ii.stride + x0, positions, step, &mut got) };
                            got.iter_mut().for_each(|x| *x += x0);
                            assert_eq!(got, want, "portable: {xml}: {photo} at 1/{scale}, step {step}, row {y}");
                            hits_seen += want.len();
                        }
                    }
                }
            }
            // Faces were found, so the comparison covered windows through every stage.
            assert!(hits_seen > 20 && windows > 80_000, "{xml}: {hits_seen} hits in {windows} windows");
        }
    }
}
