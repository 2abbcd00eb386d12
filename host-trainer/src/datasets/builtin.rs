//! The built-in dataset: procedurally drawn gray faces whose expression is carried by the
//! geometry of brows, eyes and mouth (plus the wrinkles that go with them), over random identity
//! (head shape, skin tone, hair, eye spacing), pose (shift, scale, roll, yaw), lighting, noise and
//! partial occlusion (glasses, a hand-like patch). Deterministic from a seed; every sample has its
//! own RNG stream, so a sample does not depend on how many others are generated.
//!
//! Each emotion is a point in expression space (brow height and inner-end tilt, eye openness,
//! mouth width, corner curvature, opening, wrinkles); a sample takes the neutral face, moves a
//! random intensity (0.7–1.2) of the way to its emotion and adds per-parameter jitter, so weak
//! expressions sit near neutral as in real data. The geometry follows FACS descriptions: angry =
//! lowered, drawn-together brows and pressed lips; disgust = nose wrinkle, raised upper lip,
//! asymmetric mouth; fear = raised inner brows, wide eyes, stretched open mouth; happy = smile,
//! nasolabial folds, narrowed eyes; sad = raised inner brows, corners down; surprise = high brows,
//! wide eyes, round open mouth.

use fer_core::{Emotion, NUM_EMOTIONS};
use image::{GrayImage, Luma};

use super::{Dataset, Sample, Split};
use crate::rng::Rng;

/// Class proportions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassBalance {
    /// Equal counts per class.
    #[default]
    Uniform,
    /// FER-2013's training-set proportions (disgust ~1.5%, happy ~25%), to exercise balancing.
    Fer2013Like,
}

/// FER-2013 training-set class counts (angry .. neutral).
pub const FER2013_TRAIN_COUNTS: [usize; NUM_EMOTIONS] = [3995, 436, 4097, 7215, 4830, 3171, 4965];

/// What to generate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuiltinConfig {
    pub seed: u64,
    /// Image side in pixels (48 as FER-2013).
    pub size: u32,
    pub train: usize,
    pub val: usize,
    pub test: usize,
    pub balance: ClassBalance,
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        BuiltinConfig { seed: 7, size: 48, train: 14000, val: 2100, test: 2100, balance: ClassBalance::Uniform }
    }
}

/// Dataset name recorded in manifests.
pub const NAME: &str = "builtin-synthetic-v1";

/// Per-class counts for `n` samples under `balance` (largest-remainder rounding).
pub fn class_counts(n: usize, balance: ClassBalance) -> [usize; NUM_EMOTIONS] {
    let weights = match balance {
        ClassBalance::Uniform => [1; NUM_EMOTIONS],
        ClassBalance::Fer2013Like => FER2013_TRAIN_COUNTS,
    };
    let total: usize = weights.iter().sum();
    let mut counts = [0; NUM_EMOTIONS];
    let mut rema: Vec<(usize, usize)> = Vec::new();
    for c in 0..NUM_EMOTIONS {
        counts[c] = n * weights[c] / total;
        rema.push((n * weights[c] % total, c));
    }
    rema.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let short = n - counts.iter().sum::<usize>();
    for (_, c) in rema.into_iter().take(short) {
        counts[c] += 1;
    }
    counts
}

/// Generates the dataset.
pub fn generate(cfg: &BuiltinConfig) -> Dataset {
    let mut ds = Dataset { name: NAME.into(), ..Default::default() };
    for (split, n) in [(Split::Train, cfg.train), (Split::Val, cfg.val), (Split::Test, cfg.test)] {
        let counts = class_counts(n, cfg.balance);
        let out = ds.split_mut(split);
        let mut index = 0u64;
        for (c, &k) in counts.iter().enumerate() {
            for _ in 0..k {
                let mut rng = Rng::for_item(cfg.seed, split as u64 + 1, index);
                index += 1;
                let label = Emotion::ALL[c];
                out.push(Sample { image: render_face(label, &mut rng, cfg.size), label, subject: None });
            }
        }
    }
    ds
}

/// Expression parameters (face-local units: the head's half-height is 1, v grows downwards).
#[derive(Debug, Clone, Copy)]
struct Expression {
    brow_raise: f32,
    /// Inner brow ends lower (> 0, angry) or higher (< 0, sad/fear) than the outer ends.
    brow_inner: f32,
    eye_open: f32,
    mouth_w: f32,
    /// Mouth-corner lift: > 0 smile, < 0 frown.
    mouth_curv: f32,
    mouth_open: f32,
    forehead: f32,
    glabella: f32,
    nose_wrinkle: f32,
    nasolabial: f32,
    asym: f32,
    teeth: f32,
}

fn expression(e: Emotion) -> Expression {
    let x = |v: [f32; 12]| Expression {
        brow_raise: v[0],
        brow_inner: v[1],
        eye_open: v[2],
        mouth_w: v[3],
        mouth_curv: v[4],
        mouth_open: v[5],
        forehead: v[6],
        glabella: v[7],
        nose_wrinkle: v[8],
        nasolabial: v[9],
        asym: v[10],
        teeth: v[11],
    };
    match e {
        Emotion::Neutral => x([0.0, 0.0, 1.0, 0.27, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        Emotion::Angry => x([-0.05, 0.08, 0.65, 0.22, -0.03, 0.0, 0.0, 0.8, 0.1, 0.0, 0.0, 0.0]),
        Emotion::Disgust => x([-0.03, 0.04, 0.6, 0.25, -0.07, 0.03, 0.0, 0.2, 0.9, 0.3, 0.6, 0.3]),
        Emotion::Fear => x([0.07, -0.07, 1.45, 0.34, -0.03, 0.09, 0.7, 0.0, 0.0, 0.0, 0.0, 0.3]),
        Emotion::Happy => x([0.0, 0.0, 0.75, 0.36, 0.13, 0.05, 0.0, 0.0, 0.0, 0.8, 0.0, 0.8]),
        Emotion::Sad => x([0.01, -0.08, 0.75, 0.26, -0.11, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0]),
        Emotion::Surprise => x([0.12, -0.02, 1.6, 0.19, 0.0, 0.22, 0.9, 0.0, 0.0, 0.0, 0.0, 0.1]),
    }
}

fn sample_expression(e: Emotion, rng: &mut Rng) -> Expression {
    let n = expression(Emotion::Neutral);
    let t = expression(e);
    let k = rng.range(0.7, 1.2);
    let mix = |a: f32, b: f32| a + k * (b - a);
    let mut g = |sd: f32| sd * rng.normal();
    Expression {
        brow_raise: mix(n.brow_raise, t.brow_raise) + g(0.015),
        brow_inner: mix(n.brow_inner, t.brow_inner) + g(0.015),
        eye_open: (mix(n.eye_open, t.eye_open) + g(0.1)).max(0.25),
        mouth_w: (mix(n.mouth_w, t.mouth_w) + g(0.02)).max(0.14),
        mouth_curv: mix(n.mouth_curv, t.mouth_curv) + g(0.02),
        mouth_open: (mix(n.mouth_open, t.mouth_open) + g(0.015)).max(0.0),
        forehead: mix(n.forehead, t.forehead) * rng.range(0.5, 1.2),
        glabella: mix(n.glabella, t.glabella) * rng.range(0.5, 1.2),
        nose_wrinkle: mix(n.nose_wrinkle, t.nose_wrinkle) * rng.range(0.5, 1.2),
        nasolabial: mix(n.nasolabial, t.nasolabial) * rng.range(0.5, 1.2),
        asym: mix(n.asym, t.asym) * if rng.chance(0.5) { 1.0 } else { -1.0 },
        teeth: t.teeth,
    }
}

/// A gray canvas drawn in face-local coordinates with 3×3 supersampled coverage.
struct Canvas {
    size: usize,
    px: Vec<f32>,
    cx: f32,
    cy: f32,
    scale: f32,
    cos: f32,
    sin: f32,
}

impl Canvas {
    fn to_local(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = (x - self.cx, y - self.cy);
        ((dx * self.cos + dy * self.sin) / self.scale, (-dx * self.sin + dy * self.cos) / self.scale)
    }

    fn to_pixel(&self, u: f32, v: f32) -> (f32, f32) {
        let (u, v) = (u * self.scale, v * self.scale);
        (self.cx + u * self.cos - v * self.sin, self.cy + u * self.sin + v * self.cos)
    }

    /// Paints `value` with opacity `alpha` where `inside(u, v)`, within the local box
    /// `[u0, u1] × [v0, v1]`.
    fn paint(&mut self, bbox: [f32; 4], value: f32, alpha: f32, inside: impl Fn(f32, f32) -> bool) {
        if alpha <= 0.0 {
            return;
        }
        let [u0, v0, u1, v1] = bbox;
        let corners = [self.to_pixel(u0, v0), self.to_pixel(u1, v0), self.to_pixel(u0, v1), self.to_pixel(u1, v1)];
        let lim = self.size as f32;
        let xmin = corners.iter().map(|c| c.0).fold(f32::MAX, f32::min).floor().clamp(0.0, lim) as usize;
        let xmax = corners.iter().map(|c| c.0).fold(f32::MIN, f32::max).ceil().clamp(0.0, lim) as usize;
        let ymin = corners.iter().map(|c| c.1).fold(f32::MAX, f32::min).floor().clamp(0.0, lim) as usize;
        let ymax = corners.iter().map(|c| c.1).fold(f32::MIN, f32::max).ceil().clamp(0.0, lim) as usize;
        for y in ymin..ymax {
            for x in xmin..xmax {
                let mut hits = 0;
                for sy in 0..3 {
                    for sx in 0..3 {
                        let (u, v) =
                            self.to_local(x as f32 + (sx as f32 + 0.5) / 3.0, y as f32 + (sy as f32 + 0.5) / 3.0);
                        hits += inside(u, v) as u32;
                    }
                }
                if hits > 0 {
                    let a = alpha * hits as f32 / 9.0;
                    let p = &mut self.px[y * self.size + x];
                    *p = *p * (1.0 - a) + value * a;
                }
            }
        }
    }

    fn ellipse(&mut self, cu: f32, cv: f32, ru: f32, rv: f32, value: f32, alpha: f32) {
        self.paint([cu - ru, cv - rv, cu + ru, cv + rv], value, alpha, |u, v| {
            ((u - cu) / ru).powi(2) + ((v - cv) / rv).powi(2) <= 1.0
        });
    }

    /// A polyline of thickness `2r`.
    fn stroke(&mut self, pts: &[(f32, f32)], r: f32, value: f32, alpha: f32) {
        let u0 = pts.iter().map(|p| p.0).fold(f32::MAX, f32::min) - r;
        let u1 = pts.iter().map(|p| p.0).fold(f32::MIN, f32::max) + r;
        let v0 = pts.iter().map(|p| p.1).fold(f32::MAX, f32::min) - r;
        let v1 = pts.iter().map(|p| p.1).fold(f32::MIN, f32::max) + r;
        self.paint([u0, v0, u1, v1], value, alpha, |u, v| pts.windows(2).any(|s| seg_dist2(u, v, s[0], s[1]) <= r * r));
    }
}

fn seg_dist2(u: f32, v: f32, a: (f32, f32), b: (f32, f32)) -> f32 {
    let (du, dv) = (b.0 - a.0, b.1 - a.1);
    let len2 = du * du + dv * dv;
    let t = if len2 > 0.0 { (((u - a.0) * du + (v - a.1) * dv) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (pu, pv) = (a.0 + t * du - u, a.1 + t * dv - v);
    pu * pu + pv * pv
}

/// Points of `v = f(u)` for `u` in `[u0, u1]`.
fn curve(u0: f32, u1: f32, n: usize, f: impl Fn(f32) -> f32) -> Vec<(f32, f32)> {
    (0..=n).map(|i| u0 + (u1 - u0) * i as f32 / n as f32).map(|u| (u, f(u))).collect()
}

/// Draws one face showing `emotion` with identity, pose and photometry drawn from `rng`.
pub fn render_face(emotion: Emotion, rng: &mut Rng, size: u32) -> GrayImage {
    let s = size as f32;
    let ex = sample_expression(emotion, rng);
    let roll = rng.range(-0.2, 0.2);
    let mut c = Canvas {
        size: size as usize,
        px: vec![0.0; (size * size) as usize],
        cx: s * (0.5 + rng.range(-0.06, 0.06)),
        cy: s * (0.52 + rng.range(-0.06, 0.06)),
        scale: s * 0.42 * rng.range(0.85, 1.08),
        cos: roll.cos(),
        sin: roll.sin(),
    };
    // Background: a tone and a gradient in a random direction.
    let bg = rng.range(20.0, 235.0);
    let (gx, gy) = (rng.range(-40.0, 40.0), rng.range(-40.0, 40.0));
    for y in 0..c.size {
        for x in 0..c.size {
            c.px[y * c.size + x] = bg + gx * (x as f32 / s - 0.5) + gy * (y as f32 / s - 0.5);
        }
    }
    // Identity.
    let skin = rng.range(105.0, 215.0);
    let head_rx = rng.range(0.72, 0.88);
    let yaw = rng.range(-0.12, 0.12);
    let eye_dx = rng.range(0.32, 0.40);
    let eye_y = rng.range(-0.14, -0.04);
    let eye_w = rng.range(0.11, 0.14);
    let dark = (skin - rng.range(85.0, 120.0)).max(5.0);
    let mouth_y = rng.range(0.45, 0.55);

    // Neck, head, ears, hair.
    c.paint([-0.42, 0.7, 0.42, 3.0], skin * 0.85, 1.0, |u, v| u.abs() <= 0.42 && v >= 0.7);
    c.ellipse(-head_rx, -0.05, 0.1, 0.18, skin * 0.9, 1.0);
    c.ellipse(head_rx, -0.05, 0.1, 0.18, skin * 0.9, 1.0);
    c.ellipse(0.0, 0.0, head_rx, 1.0, skin, 1.0);
    if rng.chance(0.8) {
        let tone = rng.range(10.0, 200.0);
        let line = rng.range(-0.62, -0.42);
        let bulge = rng.range(0.0, 0.15);
        let hrx = head_rx * 1.06;
        c.paint([-hrx, -1.1, hrx, line + 0.2], tone, 1.0, |u, v| {
            (u / hrx).powi(2) + ((v + 0.02) / 1.07).powi(2) <= 1.0 && v <= line + bulge * (u / hrx).powi(2)
        });
    }
    // Cheek shading for smiles.
    let cheek = ex.nasolabial.min(1.0) * 0.25;
    for side in [-1.0f32, 1.0] {
        c.ellipse(side * 0.33 + yaw, 0.22, 0.16, 0.1, (skin + 30.0).min(255.0), cheek);
    }
    // Eyes: white, iris, upper lid.
    for side in [-1.0f32, 1.0] {
        let (eu, ev) = (side * eye_dx + yaw, eye_y);
        let rv = 0.055 * ex.eye_open;
        c.ellipse(eu, ev, eye_w, rv, (skin + 45.0).min(250.0), 1.0);
        let ir = 0.05;
        c.paint([eu - ir, ev - ir, eu + ir, ev + ir], dark * 0.5, 1.0, |u, v| {
            (u - eu).powi(2) + (v - ev).powi(2) <= ir * ir
                && ((u - eu) / eye_w).powi(2) + ((v - ev) / rv).powi(2) <= 1.0
        });
        let lid = curve(eu - eye_w, eu + eye_w, 8, |u| ev - rv * (1.0 - ((u - eu) / eye_w).powi(2)).max(0.0).sqrt());
        c.stroke(&lid, 0.018, dark, 0.9);
    }
    // Brows.
    let brow_y = eye_y - 0.17 - ex.brow_raise;
    for side in [-1.0f32, 1.0] {
        let inner = (side * 0.11 + yaw, brow_y + ex.brow_inner);
        let mid = (side * (eye_dx - 0.02) + yaw, brow_y - 0.03 + ex.brow_inner * 0.3);
        let outer = (side * (eye_dx + eye_w + 0.04) + yaw, brow_y + 0.01);
        c.stroke(&[inner, mid, outer], 0.032, dark, 1.0);
    }
    // Nose.
    c.stroke(&[(yaw, eye_y + 0.06), (yaw + 0.025, 0.22)], 0.014, skin - 35.0, 0.7);
    c.ellipse(yaw - 0.06, 0.25, 0.028, 0.016, dark, 0.8);
    c.ellipse(yaw + 0.06, 0.25, 0.028, 0.016, dark, 0.8);
    // Wrinkles.
    for (i, dv) in [0.13f32, 0.21, 0.29].iter().enumerate() {
        let v0 = brow_y - dv;
        let line = curve(-0.28 + yaw, 0.28 + yaw, 8, |u| v0 + 0.03 * (u - yaw).powi(2) * (i as f32 + 1.0));
        c.stroke(&line, 0.012, skin - 50.0, 0.6 * ex.forehead.min(1.0));
    }
    for side in [-1.0f32, 1.0] {
        let g = ex.glabella.min(1.0);
        c.stroke(&[(side * 0.04 + yaw, brow_y + 0.0), (side * 0.03 + yaw, brow_y + 0.12)], 0.012, skin - 55.0, 0.7 * g);
        let n = ex.nose_wrinkle.min(1.0);
        c.stroke(&[(side * 0.05 + yaw, 0.0), (side * 0.1 + yaw, 0.08)], 0.012, skin - 55.0, 0.75 * n);
        c.stroke(&[(side * 0.06 + yaw, 0.06), (side * 0.11 + yaw, 0.13)], 0.012, skin - 55.0, 0.6 * n);
        let l = ex.nasolabial.min(1.0);
        let fold = curve(0.0, 1.0, 6, |t| t);
        let pts: Vec<(f32, f32)> = fold
            .iter()
            .map(|(t, _)| {
                (
                    yaw + side * (0.1 + t * (ex.mouth_w - 0.04) + 0.06 * (t * std::f32::consts::PI).sin()),
                    0.24 + t * (mouth_y - 0.2),
                )
            })
            .collect();
        c.stroke(&pts, 0.012, skin - 45.0, 0.6 * l);
    }
    // Mouth: centre line v = f(u); open mouths are a dark region between two lips.
    let w = ex.mouth_w;
    let mu = yaw;
    let f = move |u: f32| {
        let t = ((u - mu) / w).clamp(-1.0, 1.0);
        mouth_y - ex.mouth_curv * t * t + ex.asym * 0.05 * t
    };
    let lip = skin - rng.range(45.0, 80.0);
    if ex.mouth_open > 0.015 {
        let o = ex.mouth_open;
        let top = move |u: f32| f(u) - 0.35 * o * (1.0 - ((u - mu) / w).powi(2)).max(0.0);
        let bot = move |u: f32| f(u) + o * (1.0 - ((u - mu) / w).powi(2)).max(0.0);
        c.paint([mu - w, mouth_y - 0.3, mu + w, mouth_y + 0.4], dark * 0.35, 1.0, |u, v| {
            (u - mu).abs() <= w && v >= top(u) && v <= bot(u)
        });
        if ex.teeth > 0.0 {
            c.paint([mu - w, mouth_y - 0.3, mu + w, mouth_y + 0.4], 225.0, 0.9 * ex.teeth, |u, v| {
                (u - mu).abs() <= w * 0.85 && v >= top(u) && v <= top(u) + 0.45 * (bot(u) - top(u))
            });
        }
        c.stroke(&curve(mu - w, mu + w, 12, top), 0.018, lip, 1.0);
        c.stroke(&curve(mu - w, mu + w, 12, bot), 0.022, lip, 1.0);
    } else {
        c.stroke(&curve(mu - w, mu + w, 12, f), 0.024, lip, 1.0);
    }
    // Partial occlusion: glasses, or a hand-like patch.
    if rng.chance(0.12) {
        let frame = rng.range(5.0, 60.0);
        for side in [-1.0f32, 1.0] {
            let (eu, ev) = (side * eye_dx + yaw, eye_y);
            let ring = curve(0.0, std::f32::consts::TAU, 20, |t| t)
                .iter()
                .map(|(t, _)| (eu + 0.17 * t.cos(), ev + 0.12 * t.sin()))
                .collect::<Vec<_>>();
            c.stroke(&ring, 0.018, frame, 1.0);
        }
        c.stroke(&[(yaw - eye_dx + 0.17, eye_y), (yaw + eye_dx - 0.17, eye_y)], 0.015, frame, 1.0);
    }
    let mut px = c.px;
    if rng.chance(0.1) {
        let (pw, ph) = (rng.range(0.15, 0.35) * s, rng.range(0.15, 0.35) * s);
        let (x0, y0) = (rng.range(0.0, s - pw), rng.range(0.0, s - ph));
        let tone = rng.range(40.0, 230.0);
        for y in y0 as usize..(y0 + ph) as usize {
            for x in x0 as usize..(x0 + pw) as usize {
                px[y * size as usize + x] = tone + 6.0 * rng.normal();
            }
        }
    }
    // Lighting, contrast and sensor noise.
    let light = rng.range(-0.35, 0.35);
    let contrast = rng.range(0.65, 1.25);
    let bright = rng.range(-25.0, 25.0);
    let noise = rng.range(1.0, 9.0);
    let n = size as usize;
    GrayImage::from_fn(size, size, |x, y| {
        let v = px[y as usize * n + x as usize];
        let lit = v * (1.0 + light * (x as f32 / s - 0.5) * 2.0);
        let out = (lit - 128.0) * contrast + 128.0 + bright + noise * rng.normal();
        Luma([out.round().clamp(0.0, 255.0) as u8])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_from_seed_and_independent_of_count() {
        let cfg = BuiltinConfig { seed: 3, size: 48, train: 14, val: 0, test: 7, balance: ClassBalance::Uniform };
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert!(a.train.iter().zip(&b.train).all(|(x, y)| x.image == y.image && x.label == y.label));
        let other = generate(&BuiltinConfig { seed: 4, ..cfg.clone() });
        assert!(a.train.iter().zip(&other.train).any(|(x, y)| x.image != y.image));
        assert_eq!(Dataset::class_counts(&a.train), [2; 7]);
        assert_eq!(Dataset::class_counts(&a.test), [1; 7]);
        assert_eq!(a.train[0].image.dimensions(), (48, 48));
    }

    #[test]
    fn class_counts_follow_the_balance() {
        assert_eq!(class_counts(10, ClassBalance::Uniform), [2, 2, 2, 1, 1, 1, 1]);
        let fer = class_counts(28709, ClassBalance::Fer2013Like);
        assert_eq!(fer, FER2013_TRAIN_COUNTS);
        let small = class_counts(1000, ClassBalance::Fer2013Like);
        assert_eq!(small.iter().sum::<usize>(), 1000);
        assert!(small[1] < small[3] / 10, "disgust rare, happy common: {small:?}");
    }

    /// The expression is in the picture: with identity, pose and lighting held fixed (same RNG
    /// stream), faces of different emotions differ, and mostly around brows, eyes and mouth.
    #[test]
    fn emotions_change_the_face() {
        let render = |e| render_face(e, &mut Rng::for_item(11, 1, 0), 48);
        let neutral = render(Emotion::Neutral);
        for e in Emotion::ALL.into_iter().filter(|e| *e != Emotion::Neutral) {
            let img = render(e);
            let diff: u32 = img.as_raw().iter().zip(neutral.as_raw()).map(|(a, b)| a.abs_diff(*b) as u32).sum();
            assert!(diff > 1500, "{e}: only {diff} total difference from neutral");
        }
    }

    #[test]
    fn images_use_the_dynamic_range() {
        let ds =
            generate(&BuiltinConfig { seed: 1, size: 48, train: 70, val: 0, test: 0, balance: ClassBalance::Uniform });
        for s in &ds.train {
            let (lo, hi) = s.image.as_raw().iter().fold((255u8, 0u8), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            assert!(hi - lo > 60, "flat image: {lo}..{hi}");
        }
    }
}
