//! Face preprocessing shared by the trainer and the device: crop a face box with margin (clamped to
//! the image) → gray or RGB planes → resize → normalise → NCHW `f32`.
//!
//! The resize is Pillow's convolution resampler (`Image.resize` on mode `F` images): a separable
//! filter whose support widens with the downscale factor, so shrinking a 200-pixel face to 48×48
//! averages every source pixel instead of aliasing. Gray is ITU-R BT.601 luma computed in `f32`
//! (`0.299 R + 0.587 G + 0.114 B`, not rounded to 8 bits). `scripts/preprocess_reference.py`
//! implements the same steps with Pillow/NumPy and produces the goldens in `core/tests/golden/`.

use image::DynamicImage;
use serde::{Deserialize, Serialize};

/// Colour layout the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    /// One channel, BT.601 luma.
    Gray,
    /// Three channels, R, G, B.
    Rgb,
}

impl ColorMode {
    /// Number of tensor channels.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Gray => 1,
            ColorMode::Rgb => 3,
        }
    }
}

/// Resize filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMethod {
    /// Pillow's BILINEAR (triangle filter, antialiased when shrinking).
    Bilinear,
    /// Pillow's NEAREST: source pixel `floor((dst + 0.5) * in / out)` (positions accumulated as Pillow does).
    Nearest,
}

/// Per-channel normalisation: `value = (pixel * scale - mean[c]) / std[c]`, `pixel` in 0..=255.
///
/// Examples: mini-XCEPTION's `(x/255 - 0.5) * 2` is `scale = 1/255, mean = [0.5], std = [0.5]`;
/// ImageNet is `scale = 1/255, mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalisation {
    /// Multiplier applied to the 0..=255 pixel first.
    pub scale: f32,
    /// Subtracted after scaling; one value, or one per channel.
    pub mean: Vec<f32>,
    /// Divisor applied last; one value, or one per channel; never 0.
    pub std: Vec<f32>,
}

impl Normalisation {
    /// Pixels scaled to 0..1, nothing else.
    pub fn unit() -> Self {
        Normalisation { scale: 1.0 / 255.0, mean: vec![0.0], std: vec![1.0] }
    }

    /// Pixels scaled to -1..1 (`(x / 255 - 0.5) / 0.5`): the trainer's and the fer package's.
    pub fn symmetric() -> Self {
        Normalisation { scale: 1.0 / 255.0, mean: vec![0.5], std: vec![0.5] }
    }

    fn channel(&self, c: usize) -> (f32, f32) {
        let pick = |v: &[f32]| if v.len() == 1 { v[0] } else { v[c] };
        (pick(&self.mean), pick(&self.std))
    }
}

/// Everything about the input a model expects; lives in the model manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Tensor channels: 1 for gray, 3 for RGB.
    pub channels: usize,
    /// Tensor height in pixels.
    pub height: usize,
    /// Tensor width in pixels.
    pub width: usize,
    /// Colour conversion applied before resizing.
    pub color: ColorMode,
    /// Resize filter.
    pub resize: ResizeMethod,
    /// Normalisation applied after resizing.
    pub normalisation: Normalisation,
    /// Margin added on every side of a detected face box, as a fraction of the box's width
    /// (left/right) and height (top/bottom), before cropping. Matches how training faces were cut.
    #[serde(default)]
    pub face_margin: f32,
}

/// A face box in image pixels (top-left corner and size).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl FaceBox {
    /// The box's centre.
    pub fn centre(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
}

/// Integer crop rectangle `[x0, x1) × [y0, y1)`, inside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropRect {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl CropRect {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }
}

/// An NCHW `f32` tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor4 {
    /// `[batch, channels, height, width]`.
    pub shape: [usize; 4],
    pub data: Vec<f32>,
}

/// Preprocessing errors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    #[error("face box {0:?} has a non-finite or non-positive size")]
    BadBox(FaceBox),
    #[error("face box {face:?} (with margin) lies outside the {width}x{height} image")]
    OutsideImage { face: FaceBox, width: u32, height: u32 },
    #[error("image is empty (0x0)")]
    EmptyImage,
    #[error("input spec: {0}")]
    BadSpec(String),
}

/// The crop rectangle for `face` grown by `margin` (fraction of the box size on each side),
/// rounded outwards to whole pixels and clamped to the image.
pub fn crop_rect(width: u32, height: u32, face: FaceBox, margin: f32) -> Result<CropRect, PreprocessError> {
    let ok = |v: f32| v.is_finite();
    if !(ok(face.x) && ok(face.y) && ok(face.w) && ok(face.h) && face.w > 0.0 && face.h > 0.0 && ok(margin)) {
        return Err(PreprocessError::BadBox(face));
    }
    let (mx, my) = (margin * face.w, margin * face.h);
    let x0 = (face.x - mx).floor().max(0.0);
    let y0 = (face.y - my).floor().max(0.0);
    let x1 = (face.x + face.w + mx).ceil().min(width as f32);
    let y1 = (face.y + face.h + my).ceil().min(height as f32);
    if x1 <= x0 || y1 <= y0 {
        return Err(PreprocessError::OutsideImage { face, width, height });
    }
    Ok(CropRect { x0: x0 as u32, y0: y0 as u32, x1: x1 as u32, y1: y1 as u32 })
}

/// A single-channel `f32` image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

/// Extracts `rect` from `img` as one plane (gray) or three (R, G, B), pixel values 0..=255.
pub fn planes(img: &DynamicImage, rect: CropRect, color: ColorMode) -> Vec<Plane> {
    let (w, h) = (rect.width() as usize, rect.height() as usize);
    let new = || Plane { width: w, height: h, data: Vec::with_capacity(w * h) };
    let rows = rect.y0..rect.y1;
    match (img, color) {
        (DynamicImage::ImageLuma8(g), _) => {
            let mut p = new();
            let (stride, x0) = (g.width() as usize, rect.x0 as usize);
            for y in rows {
                // A row at a time (vectorised; a pixel at a time cost 0.3 M of the 6.1 M Cortex-A72
                // instructions of a frame's classification).
                p.data.extend(g.as_raw()[y as usize * stride + x0..][..w].iter().map(|&v| f32::from(v)));
            }
            vec![p; color.channels()]
        }
        (_, ColorMode::Gray) => {
            let rgb = rgb_view(img);
            let mut p = Plane { width: w, height: h, data: vec![0.0; w * h] };
            if w > 0 {
                let (stride, x0) = (rgb.width() as usize * 3, rect.x0 as usize * 3);
                let src = rgb.as_raw()[rect.y0 as usize * stride..].chunks_exact(stride);
                for (row, dst) in src.zip(p.data.chunks_exact_mut(w)) {
                    luma_row(&row[x0..x0 + 3 * w], dst);
                }
            }
            vec![p]
        }
        (_, ColorMode::Rgb) => {
            let rgb = rgb_view(img);
            let mut out = vec![new(), new(), new()];
            for y in rows {
                for x in rect.x0..rect.x1 {
                    let px = rgb.get_pixel(x, y).0;
                    for c in 0..3 {
                        out[c].data.push(px[c] as f32);
                    }
                }
            }
            out
        }
    }
}

/// Whether `path` names an image file fer-edge reads (PNG or JPEG, by extension, any case).
/// Dataset folders and device frame folders both use it, so they accept the same files.
pub fn is_image_path(path: &std::path::Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg"))
}

/// BT.601 luma of an RGB pixel, in `f32` (the one gray conversion fer-edge uses).
pub fn luma(r: u8, g: u8, b: u8) -> f32 {
    0.299f32 * r as f32 + 0.587f32 * g as f32 + 0.114f32 * b as f32
}

/// Converts any image to 8-bit gray with [`luma`], rounded (datasets store faces this way).
pub fn to_gray8(img: &DynamicImage) -> image::GrayImage {
    if let DynamicImage::ImageLuma8(g) = img {
        return g.clone();
    }
    let rgb = rgb_view(img);
    let mut gray = vec![0; rgb.as_raw().len() / 3];
    gray_row(rgb.as_raw(), &mut gray);
    image::GrayImage::from_raw(rgb.width(), rgb.height(), gray).expect("one gray byte per RGB pixel")
}

/// [`to_gray8`], borrowing an image that is gray already (a camera frame decoded to gray).
pub fn as_gray8(img: &DynamicImage) -> std::borrow::Cow<'_, image::GrayImage> {
    match img {
        DynamicImage::ImageLuma8(g) => std::borrow::Cow::Borrowed(g),
        _ => std::borrow::Cow::Owned(to_gray8(img)),
    }
}

/// [`to_gray8`] of the region `r` of `img`, read in place from an RGB or gray image (a camera
/// frame) instead of through a copy of the region (1.0 M of the 4.5 M x86 instructions of a
/// region re-detection pass, by callgrind).
///
/// # Panics
/// If `r` is not inside `img` (as [`crop_rect`] makes it).
pub fn to_gray8_region(img: &DynamicImage, r: &CropRect) -> image::GrayImage {
    assert!(r.x1 <= img.width() && r.y1 <= img.height() && r.x0 <= r.x1 && r.y0 <= r.y1, "{r:?} outside the image");
    if let DynamicImage::ImageLuma8(g) = img {
        let (stride, w) = (g.width() as usize, r.width() as usize);
        let mut gray = Vec::with_capacity(w * r.height() as usize);
        for y in r.y0 as usize..r.y1 as usize {
            gray.extend_from_slice(&g.as_raw()[y * stride + r.x0 as usize..][..w]);
        }
        return image::GrayImage::from_raw(r.width(), r.height(), gray).expect("one byte per pixel");
    }
    let DynamicImage::ImageRgb8(rgb) = img else {
        return to_gray8(&img.crop_imm(r.x0, r.y0, r.width(), r.height()));
    };
    let stride = rgb.width() as usize * 3;
    let (x0, x1) = (r.x0 as usize * 3, r.x1 as usize * 3);
    let w = r.width() as usize;
    let mut gray = vec![0; w * r.height() as usize];
    if w > 0 {
        let src = rgb.as_raw()[r.y0 as usize * stride..r.y1 as usize * stride].chunks_exact(stride);
        for (row, dst) in src.zip(gray.chunks_exact_mut(w)) {
            gray_row(&row[x0..x1], dst);
        }
    }
    image::GrayImage::from_raw(r.width(), r.height(), gray).expect("one gray byte per RGB pixel")
}

/// [`luma`] of each RGB pixel of `src` into `dst` (one per pixel). A plain zip over the pixels:
/// the compiler vectorises it (`LD3` on aarch64), the same arithmetic in the same order as
/// [`luma`], so bit for bit its values.
fn luma_row(src: &[u8], dst: &mut [f32]) {
    for (d, p) in dst.iter_mut().zip(src.chunks_exact(3)) {
        *d = luma(p[0], p[1], p[2]);
    }
}

/// [`luma`] of each RGB pixel of `src`, rounded, into `dst` (as [`luma_row`]).
fn gray_row(src: &[u8], dst: &mut [u8]) {
    for (d, p) in dst.iter_mut().zip(src.chunks_exact(3)) {
        *d = (luma(p[0], p[1], p[2]) + 0.5).min(255.0) as u8;
    }
}

fn rgb_view(img: &DynamicImage) -> std::borrow::Cow<'_, image::RgbImage> {
    match img {
        DynamicImage::ImageRgb8(rgb) => std::borrow::Cow::Borrowed(rgb),
        other => std::borrow::Cow::Owned(to_rgb8(other)),
    }
}

/// Any image as 8-bit RGB; a gray one (a camera frame decoded to gray) by repeating each level
/// in a loop the compiler vectorises (the `image` crate's generic conversion took 2.1 M
/// Cortex-A72 instructions for a 640x480 frame, 20x more).
pub fn to_rgb8(img: &DynamicImage) -> image::RgbImage {
    match img {
        DynamicImage::ImageLuma8(g) => {
            let mut rgb = vec![0; g.as_raw().len() * 3];
            for (px, &v) in rgb.chunks_exact_mut(3).zip(g.as_raw()) {
                px.copy_from_slice(&[v, v, v]);
            }
            image::RgbImage::from_raw(g.width(), g.height(), rgb).expect("three bytes per gray pixel")
        }
        other => other.to_rgb8(),
    }
}

/// Pillow's resampling coefficients for one axis: for each output index, the first input index
/// and the normalised weights, `taps` of them (the most any output has; the others padded with
/// zeros, and their first index moved back so the padding stays inside the input).
struct Coefficients {
    taps: usize,
    first: Vec<usize>,
    /// `first.len()` rows of `taps` weights.
    weights: Vec<f64>,
}

impl Coefficients {
    /// The output index `i`'s first input index and weights.
    fn of(&self, i: usize) -> (usize, &[f64]) {
        (self.first[i], &self.weights[i * self.taps..][..self.taps])
    }
}

fn pil_coefficients(in_size: usize, out_size: usize) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 1.0 * filterscale; // triangle filter, support 1
    let ss = 1.0 / filterscale;
    let center = |xx: usize| (xx as f64 + 0.5) * scale;
    // Pillow truncates with a C cast after adding 0.5.
    let bounds = |xx: usize| {
        let xmin = ((center(xx) - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center(xx) + support + 0.5) as i64).min(in_size as i64) as usize;
        (xmin, xmax.max(xmin))
    };
    let taps = (0..out_size).map(|xx| bounds(xx).1 - bounds(xx).0).max().unwrap_or(0).min(in_size);
    let mut c = Coefficients { taps, first: Vec::with_capacity(out_size), weights: vec![0.0; out_size * taps] };
    for xx in 0..out_size {
        let (xmin, xmax) = bounds(xx);
        // Padding goes after the weights, or before them at the input's end: +0.0 terms, which
        // leave every sum as it is (its terms are products of non-negative weights and pixels).
        let first = xmin.min(in_size - taps);
        let k = &mut c.weights[xx * taps + (xmin - first)..][..xmax - xmin];
        for (x, w) in (xmin..xmax).zip(k.iter_mut()) {
            let t = ((x as f64 - center(xx) + 0.5) * ss).abs();
            *w = if t < 1.0 { 1.0 - t } else { 0.0 };
        }
        let ww: f64 = k.iter().sum();
        if ww != 0.0 {
            k.iter_mut().for_each(|v| *v /= ww);
        }
        c.first.push(first);
    }
    c
}

/// The rows of `c.first.len()` outputs, each `len` values: output row `i` is the sum of rows
/// `first[i]..` of `src` (rows of `len` values) times output `i`'s weights, added in f64 in the
/// weights' order and stored as f32 (Pillow's vertical pass over a mode "F" image). A row at a
/// time, so the sums are vectorised across the row.
fn combine_rows(src: &[f32], len: usize, c: &Coefficients) -> Vec<f32> {
    let mut out = vec![0.0f32; c.first.len() * len];
    let mut sums = vec![0.0f64; len];
    for (i, dst) in out.chunks_exact_mut(len.max(1)).enumerate() {
        let (first, k) = c.of(i);
        sums.fill(-0.0);
        for (j, w) in k.iter().enumerate() {
            for (s, v) in sums.iter_mut().zip(&src[(first + j) * len..][..len]) {
                *s += w * f64::from(*v);
            }
        }
        for (o, s) in dst.iter_mut().zip(&sums) {
            *o = *s as f32;
        }
    }
    out
}

/// `data` (`height` rows of `width`) transposed: `width` rows of `height`.
fn transpose(data: &[f32], width: usize, height: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; data.len()];
    for (y, row) in data.chunks_exact(width.max(1)).enumerate() {
        for (x, v) in row.iter().enumerate() {
            out[x * height + y] = *v;
        }
    }
    out
}

/// Resizes a plane to `width × height`.
pub fn resize_plane(p: &Plane, width: usize, height: usize, method: ResizeMethod) -> Plane {
    match method {
        ResizeMethod::Nearest => {
            // Pillow tabulates source positions by repeated addition (ImagingScaleAffine), not by
            // multiplication; the rounding differs at exact pixel boundaries, so do the same.
            let table = |in_size: usize, out_size: usize| {
                let step = in_size as f64 / out_size as f64;
                let mut pos = step * 0.5;
                (0..out_size)
                    .map(|_| {
                        let i = (pos as usize).min(in_size - 1);
                        pos += step;
                        i
                    })
                    .collect::<Vec<usize>>()
            };
            let (xs, ys) = (table(p.width, width), table(p.height, height));
            let mut data = Vec::with_capacity(width * height);
            for y in ys {
                let row = &p.data[y * p.width..(y + 1) * p.width];
                data.extend(xs.iter().map(|x| row[*x]));
            }
            Plane { width, height, data }
        }
        ResizeMethod::Bilinear => {
            // Horizontal pass first, then vertical, each skipped when that size is unchanged, as
            // Pillow does; intermediate values are stored as f32 like mode "F" images, and each
            // output is the f64 sum of its taps in order, as Pillow sums them (so the result is
            // Pillow's: test bilinear_resize_is_the_tap_by_tap_sum). Both passes add whole rows
            // (vectorised across them): with a pixel at a time, preprocessing took 0.72 M of a
            // face's 5.84 M Cortex-A72 instructions of classification, now 0.39 M (BENCHMARKS.md).
            let horizontal = (width != p.width).then(|| {
                // Columns are rows of the transposed plane: the same sums, vectorised.
                let c = pil_coefficients(p.width, width);
                let columns = combine_rows(&transpose(&p.data, p.width, p.height), p.height, &c);
                Plane { width, height: p.height, data: transpose(&columns, p.height, width) }
            });
            if height == p.height {
                return horizontal.unwrap_or_else(|| p.clone());
            }
            let cur = horizontal.as_ref().unwrap_or(p);
            Plane { width, height, data: combine_rows(&cur.data, width, &pil_coefficients(p.height, height)) }
        }
    }
}

impl InputSpec {
    /// The trainer's input: `size`x`size` gray, bilinear, [`Normalisation::symmetric`], the
    /// detector's box widened by 0.1 of its side.
    pub fn gray(size: usize) -> InputSpec {
        InputSpec {
            channels: 1,
            height: size,
            width: size,
            color: ColorMode::Gray,
            resize: ResizeMethod::Bilinear,
            normalisation: Normalisation::symmetric(),
            face_margin: 0.1,
        }
    }

    /// Checks the spec's internal consistency; `Err` holds a field name and the problem.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.channels != self.color.channels() {
            return Err((
                "channels",
                format!(
                    "{} channels do not match color {:?} ({} channels)",
                    self.channels,
                    self.color,
                    self.color.channels()
                ),
            ));
        }
        for (name, v) in [("height", self.height), ("width", self.width)] {
            if !(8..=1024).contains(&v) {
                return Err((name, format!("{v} is outside 8..=1024")));
            }
        }
        let n = &self.normalisation;
        if !(n.scale.is_finite() && n.scale > 0.0) {
            return Err(("normalisation.scale", format!("{} must be finite and > 0", n.scale)));
        }
        for (name, v) in [("normalisation.mean", &n.mean), ("normalisation.std", &n.std)] {
            if v.len() != 1 && v.len() != self.channels {
                return Err((name, format!("has {} values; expected 1 or {}", v.len(), self.channels)));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err((name, "values must be finite".into()));
            }
        }
        if n.std.contains(&0.0) {
            return Err(("normalisation.std", "a standard deviation of 0 divides by zero".into()));
        }
        if !(0.0..=1.0).contains(&self.face_margin) {
            return Err(("face_margin", format!("{} is outside 0..=1", self.face_margin)));
        }
        Ok(())
    }

    /// Preprocesses one face (or the whole image when `face` is `None`) into `out`, which must
    /// hold `channels * height * width` values (CHW order).
    pub fn preprocess_into(
        &self,
        img: &DynamicImage,
        face: Option<FaceBox>,
        out: &mut [f32],
    ) -> Result<(), PreprocessError> {
        self.check().map_err(|(f, p)| PreprocessError::BadSpec(format!("{f}: {p}")))?;
        if img.width() == 0 || img.height() == 0 {
            return Err(PreprocessError::EmptyImage);
        }
        let rect = match face {
            Some(f) => crop_rect(img.width(), img.height(), f, self.face_margin)?,
            None => CropRect { x0: 0, y0: 0, x1: img.width(), y1: img.height() },
        };
        let plane_len = self.height * self.width;
        assert_eq!(out.len(), self.channels * plane_len, "output buffer size");
        for (c, plane) in planes(img, rect, self.color).iter().enumerate() {
            let r = resize_plane(plane, self.width, self.height, self.resize);
            let (mean, std) = self.normalisation.channel(c);
            let scale = self.normalisation.scale;
            for (o, v) in out[c * plane_len..(c + 1) * plane_len].iter_mut().zip(&r.data) {
                *o = (v * scale - mean) / std;
            }
        }
        Ok(())
    }

    /// Preprocesses every face of one image into a `[faces.len(), C, H, W]` batch.
    pub fn preprocess_batch(&self, img: &DynamicImage, faces: &[FaceBox]) -> Result<Tensor4, PreprocessError> {
        let per = self.channels * self.height * self.width;
        let mut data = vec![0.0; per * faces.len()];
        for (f, chunk) in faces.iter().zip(data.chunks_mut(per)) {
            self.preprocess_into(img, Some(*f), chunk)?;
        }
        Ok(Tensor4 { shape: [faces.len(), self.channels, self.height, self.width], data })
    }

    /// Preprocesses a whole image (already a face crop, as in FER-2013) into `[1, C, H, W]`.
    pub fn preprocess_image(&self, img: &DynamicImage) -> Result<Tensor4, PreprocessError> {
        let mut data = vec![0.0; self.channels * self.height * self.width];
        self.preprocess_into(img, None, &mut data)?;
        Ok(Tensor4 { shape: [1, self.channels, self.height, self.width], data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn spec(color: ColorMode, w: usize, h: usize, resize: ResizeMethod) -> InputSpec {
        InputSpec {
            channels: color.channels(),
            height: h,
            width: w,
            color,
            resize,
            normalisation: Normalisation { scale: 1.0, mean: vec![0.0], std: vec![1.0] },
            face_margin: 0.0,
        }
    }

    /// Pillow's separable bilinear resampling written out directly, one output at a time: each
    /// output's weights from the triangle filter, the f64 sum of its taps in order (as
    /// `ImagingResampleHorizontal/Vertical_32bpc` sum them), stored as f32 between the passes.
    fn bilinear_reference(p: &Plane, width: usize, height: usize) -> Plane {
        let weights = |in_size: usize, out: usize, o: usize| -> (usize, Vec<f64>) {
            let scale = in_size as f64 / out as f64;
            let support = scale.max(1.0);
            let center = (o as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            // Pillow multiplies by the reciprocal of the support (`ss`).
            let k: Vec<f64> =
                (lo..hi).map(|x| (1.0 - ((x as f64 - center + 0.5) * (1.0 / support)).abs()).max(0.0)).collect();
            let total: f64 = k.iter().sum();
            (lo, k.iter().map(|v| if total != 0.0 { v / total } else { *v }).collect())
        };
        let pass = |src: &Plane, w: usize, h: usize, horizontal: bool| {
            let mut data = Vec::new();
            for y in 0..h {
                for x in 0..w {
                    let (lo, k) = if horizontal { weights(src.width, w, x) } else { weights(src.height, h, y) };
                    let mut sum = 0.0f64;
                    for (i, wt) in k.iter().enumerate() {
                        let (sx, sy) = if horizontal { (lo + i, y) } else { (x, lo + i) };
                        sum += wt * src.data[sy * src.width + sx] as f64;
                    }
                    data.push(sum as f32);
                }
            }
            Plane { width: w, height: h, data }
        };
        let mut cur = p.clone();
        if width != cur.width {
            cur = pass(&cur, width, cur.height, true);
        }
        if height != cur.height {
            cur = pass(&cur, width, height, false);
        }
        cur
    }

    #[test]
    fn bilinear_resize_is_the_tap_by_tap_sum() {
        // Faces as the classifier gets them (a 117-px crop to 64 and 48), upscaling, sizes that
        // do not divide, one-pixel planes, and one side unchanged.
        let sizes = [((117, 117), (64, 64)), ((117, 121), (48, 48)), ((31, 17), (64, 48)), ((5, 9), (3, 2))];
        let more = [((1, 1), (4, 3)), ((7, 1), (1, 1)), ((40, 30), (40, 13)), ((40, 30), (11, 30)), ((9, 9), (9, 9))];
        for ((w, h), (ow, oh)) in sizes.into_iter().chain(more) {
            let data = (0..w * h).map(|i| ((i * 7919 + i / w * 31) % 256) as f32).collect();
            let p = Plane { width: w, height: h, data };
            let got = resize_plane(&p, ow, oh, ResizeMethod::Bilinear);
            let want = bilinear_reference(&p, ow, oh);
            assert_eq!((got.width, got.height), (ow, oh));
            // Bit for bit: the same sums in the same order.
            let differ = got.data.iter().zip(&want.data).position(|(a, b)| a.to_bits() != b.to_bits());
            assert!(
                differ.is_none(),
                "{w}x{h} -> {ow}x{oh}: at {differ:?}: {got:?} vs {want:?}",
                got = differ.map(|i| got.data[i]),
                want = differ.map(|i| want.data[i])
            );
            assert_eq!(got.data.len(), want.data.len());
        }
    }

    /// The region read in place against the whole conversion of a copy of the region, for an
    /// RGB frame and, through the fallback, an RGBA one; regions touching every edge.
    #[test]
    fn gray_region_equals_the_gray_of_the_cropped_copy() {
        let rgb = RgbImage::from_fn(37, 23, |x, y| Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, (255 - x * 5) as u8]));
        let rgba = DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(rgb.clone()).to_rgba8());
        let rgb = DynamicImage::ImageRgb8(rgb);
        for img in [&rgb, &rgba] {
            for r in [
                CropRect { x0: 0, y0: 0, x1: 37, y1: 23 },
                CropRect { x0: 5, y0: 3, x1: 19, y1: 22 },
                CropRect { x0: 30, y0: 0, x1: 37, y1: 1 },
            ] {
                let want = to_gray8(&img.crop_imm(r.x0, r.y0, r.width(), r.height()));
                assert_eq!(to_gray8_region(img, &r), want, "{r:?}");
            }
        }
        // Not all one gray: the comparison saw distinct values.
        let gray = to_gray8(&rgb);
        assert!(gray.pixels().any(|p| p != gray.get_pixel(0, 0)));
    }

    /// A frame decoded to gray (a camera's luma): its regions, its planes (gray and the three
    /// equal ones of a colour model) and its RGB copy against the `image` crate's pixel access
    /// and conversion.
    #[test]
    fn gray_frames_read_in_place_equal_the_image_crates_views() {
        let g = GrayImage::from_fn(37, 23, |x, y| Luma([(x * 7 + y * 11) as u8]));
        let img = DynamicImage::ImageLuma8(g.clone());
        assert!(matches!(as_gray8(&img), std::borrow::Cow::Borrowed(b) if *b == g));
        assert_eq!(to_rgb8(&img), img.to_rgb8());
        for r in [
            CropRect { x0: 0, y0: 0, x1: 37, y1: 23 },
            CropRect { x0: 5, y0: 3, x1: 19, y1: 22 },
            CropRect { x0: 30, y0: 0, x1: 37, y1: 1 },
        ] {
            let want = img.crop_imm(r.x0, r.y0, r.width(), r.height()).to_luma8();
            assert_eq!(to_gray8_region(&img, &r), want, "{r:?}");
            let want: Vec<f32> = want.as_raw().iter().map(|&v| f32::from(v)).collect();
            for color in [ColorMode::Gray, ColorMode::Rgb] {
                let planes = planes(&img, r, color);
                assert_eq!(planes.len(), color.channels());
                assert!(planes.iter().all(|p| p.data == want && p.width == r.width() as usize), "{r:?} {color:?}");
            }
        }
    }

    /// The row conversions (written for the vectoriser) against `luma` pixel by pixel: every
    /// red/green pair with blues across the range, on whole images and on odd-width regions
    /// (vector tails).
    #[test]
    fn row_conversions_equal_luma_pixel_by_pixel() {
        let rgb = RgbImage::from_fn(256, 256, |x, y| Rgb([x as u8, y as u8, ((x * 7 + y * 13) % 256) as u8]));
        let img = DynamicImage::ImageRgb8(rgb.clone());
        let round = |p: &Rgb<u8>| (luma(p[0], p[1], p[2]) + 0.5).min(255.0) as u8;
        let gray = to_gray8(&img);
        for (x, y, p) in rgb.enumerate_pixels() {
            assert_eq!(gray.get_pixel(x, y)[0], round(p), "({x}, {y}) {p:?}");
        }
        for r in [CropRect { x0: 3, y0: 5, x1: 40, y1: 9 }, CropRect { x0: 250, y0: 0, x1: 256, y1: 256 }] {
            let region = to_gray8_region(&img, &r);
            let plane = &planes(&img, r, ColorMode::Gray)[0];
            assert_eq!((plane.width, plane.height), (r.width() as usize, r.height() as usize));
            for (i, (x, y)) in (r.y0..r.y1).flat_map(|y| (r.x0..r.x1).map(move |x| (x, y))).enumerate() {
                let p = rgb.get_pixel(x, y);
                assert_eq!(region.as_raw()[i], round(p), "{r:?} ({x}, {y})");
                assert_eq!(plane.data[i].to_bits(), luma(p[0], p[1], p[2]).to_bits(), "{r:?} ({x}, {y})");
            }
        }
        // Roundings up and down both happened (values near .5 are in the set).
        assert!(rgb.pixels().any(|p| round(p) as f32 > luma(p[0], p[1], p[2])));
        assert!(rgb.pixels().any(|p| (round(p) as f32) < luma(p[0], p[1], p[2])));
    }

    #[test]
    fn image_paths_by_extension() {
        use std::path::Path;
        assert!(
            is_image_path(Path::new("a/b.PNG"))
                && is_image_path(Path::new("x.jpeg"))
                && is_image_path(Path::new("y.Jpg"))
        );
        assert!(!is_image_path(Path::new("notes.txt")) && !is_image_path(Path::new("png")));
    }

    #[test]
    fn crop_rect_margin_rounds_outwards_and_clamps() {
        // 10x10 box at (2.5, 3) with 10% margin: 1 px each side → [1.5, 13.5) x [2, 14) → [1, 14) x [2, 14).
        let r = crop_rect(100, 100, FaceBox { x: 2.5, y: 3.0, w: 10.0, h: 10.0 }, 0.1).unwrap();
        assert_eq!(r, CropRect { x0: 1, y0: 2, x1: 14, y1: 14 });
        // Sticking out on the left/bottom: clamped.
        let r = crop_rect(20, 20, FaceBox { x: -5.0, y: 15.0, w: 10.0, h: 10.0 }, 0.0).unwrap();
        assert_eq!(r, CropRect { x0: 0, y0: 15, x1: 5, y1: 20 });
        assert!(matches!(
            crop_rect(20, 20, FaceBox { x: 30.0, y: 0.0, w: 5.0, h: 5.0 }, 0.0),
            Err(PreprocessError::OutsideImage { .. })
        ));
        assert!(matches!(
            crop_rect(20, 20, FaceBox { x: 0.0, y: 0.0, w: f32::NAN, h: 5.0 }, 0.0),
            Err(PreprocessError::BadBox(_))
        ));
        assert!(matches!(
            crop_rect(20, 20, FaceBox { x: 0.0, y: 0.0, w: 0.0, h: 5.0 }, 0.0),
            Err(PreprocessError::BadBox(_))
        ));
    }

    #[test]
    fn bilinear_halving_averages_pairs() {
        // 4 → 2 with Pillow's triangle filter: scale 2, support 2. Output 0 has centre 1.0 and taps
        // x = 0, 1, 2 at t = |x + 0.5 - 1| / 2 = 0.25, 0.25, 0.75 → weights 0.75, 0.75, 0.25 (sum
        // 1.75); output 1 has centre 3.0 and taps x = 1, 2, 3 with weights 0.25, 0.75, 0.75.
        let p = Plane { width: 4, height: 1, data: vec![0.0, 10.0, 20.0, 30.0] };
        let r = resize_plane(&p, 2, 1, ResizeMethod::Bilinear);
        let out0 = (0.75 * 0.0 + 0.75 * 10.0 + 0.25 * 20.0) / 1.75;
        let out1 = (0.25 * 10.0 + 0.75 * 20.0 + 0.75 * 30.0) / 1.75;
        assert!((r.data[0] - out0).abs() < 1e-5, "{:?}", r.data);
        assert!((r.data[1] - out1).abs() < 1e-5, "{:?}", r.data);
    }

    #[test]
    fn bilinear_upscale_interpolates_and_identity_is_exact() {
        // 2 → 4 upscale: scale 0.5, support 1, centers 0.25, 0.75, 1.25, 1.75.
        // out0: center 0.25 → taps x=0 (t=0.25 → 0.75), x=1 (t=1.25 → 0): value a.
        // out1: center 0.75 → x=0 t=0.25 → .75, x=1 t=0.75 → .25: 0.75a + 0.25b.
        let p = Plane { width: 2, height: 1, data: vec![100.0, 200.0] };
        let r = resize_plane(&p, 4, 1, ResizeMethod::Bilinear);
        assert_eq!(r.data, vec![100.0, 125.0, 175.0, 200.0]);
        let same = resize_plane(&p, 2, 1, ResizeMethod::Bilinear);
        assert_eq!(same, p);
    }

    #[test]
    fn nearest_picks_pixel_centres() {
        let p = Plane { width: 5, height: 1, data: vec![0.0, 1.0, 2.0, 3.0, 4.0] };
        // 5 → 2: centres (0.5 * 2.5) = 1.25 → 1, (1.5 * 2.5) = 3.75 → 3
        assert_eq!(resize_plane(&p, 2, 1, ResizeMethod::Nearest).data, vec![1.0, 3.0]);
        // 5 → 3: 0.833 → 0, 2.5 → 2, 4.166 → 4
        assert_eq!(resize_plane(&p, 3, 1, ResizeMethod::Nearest).data, vec![0.0, 2.0, 4.0]);
    }

    #[test]
    fn gray_conversion_normalisation_and_chw_layout() {
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, Rgb([255, 0, 0]));
        img.put_pixel(1, 0, Rgb([0, 0, 255]));
        let img = DynamicImage::ImageRgb8(img);
        let mut s = spec(ColorMode::Gray, 8, 8, ResizeMethod::Nearest);
        s.normalisation = Normalisation::symmetric();
        let t = s.preprocess_image(&img).unwrap();
        assert_eq!(t.shape, [1, 1, 8, 8]);
        let red = (0.299 - 0.5) / 0.5;
        let blue = (0.114 - 0.5) / 0.5;
        assert!((t.data[0] - red).abs() < 1e-6 && (t.data[3] - red).abs() < 1e-6);
        assert!((t.data[4] - blue).abs() < 1e-6 && (t.data[63] - blue).abs() < 1e-6);

        // RGB with per-channel mean/std, planes in R, G, B order.
        let mut s = spec(ColorMode::Rgb, 8, 8, ResizeMethod::Nearest);
        s.normalisation = Normalisation { scale: 1.0, mean: vec![10.0, 20.0, 30.0], std: vec![1.0, 2.0, 5.0] };
        let t = s.preprocess_image(&img).unwrap();
        assert_eq!(t.shape, [1, 3, 8, 8]);
        assert_eq!(t.data[0], 245.0); // R plane, red pixel: (255 - 10) / 1
        assert_eq!(t.data[64], -10.0); // G plane: (0 - 20) / 2
        assert_eq!(t.data[128 + 4], 45.0); // B plane, blue pixel: (255 - 30) / 5
    }

    #[test]
    fn gray_source_to_rgb_replicates_and_batch_crops_each_face() {
        let mut g = GrayImage::new(16, 8);
        for x in 8..16 {
            for y in 0..8 {
                g.put_pixel(x, y, Luma([200]));
            }
        }
        let img = DynamicImage::ImageLuma8(g);
        let s = spec(ColorMode::Rgb, 8, 8, ResizeMethod::Bilinear);
        let faces = [FaceBox { x: 0.0, y: 0.0, w: 8.0, h: 8.0 }, FaceBox { x: 8.0, y: 0.0, w: 8.0, h: 8.0 }];
        let t = s.preprocess_batch(&img, &faces).unwrap();
        assert_eq!(t.shape, [2, 3, 8, 8]);
        assert!(t.data[..192].iter().all(|v| *v == 0.0));
        assert!(t.data[192..].iter().all(|v| *v == 200.0));
    }

    #[test]
    fn spec_check_names_the_field() {
        let mut s = spec(ColorMode::Gray, 48, 48, ResizeMethod::Bilinear);
        assert!(s.check().is_ok());
        s.channels = 3;
        assert_eq!(s.check().unwrap_err().0, "channels");
        s.channels = 1;
        s.normalisation.std = vec![0.0];
        assert_eq!(s.check().unwrap_err().0, "normalisation.std");
        s.normalisation.std = vec![1.0, 1.0];
        assert_eq!(s.check().unwrap_err().0, "normalisation.std");
    }
}
