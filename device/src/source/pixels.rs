//! Camera frames as the driver delivers them, decoded to images: the pixel formats a V4L2
//! camera offers through nokhwa (MJPEG, YUYV 4:2:2, NV12, 8-bit gray, RGB, BGR), and planar
//! YUV 4:2:0 (I420) in limited range, as ffmpeg's `yuv420p`, and in full range, as ffmpeg's
//! `yuvj420p` and what `rpicam-vid --codec yuv420` writes for a Raspberry Pi Camera Module (which
//! is no plain V4L2 camera). Built on every
//! target, not behind the `camera` feature, so that it is tested and benchmarked without a
//! camera (`fer-device bench-decode`); nokhwa's own decoders are not used (its MJPEG decoder is
//! libjpeg through the `mozjpeg` C crate, which the default build leaves out).
//!
//! JPEG goes through the `image` crate's decoder, as file and MJPEG-stream frames do. Many UVC
//! cameras send MJPEG frames without Huffman tables (the JPEG "abbreviated" form of Motion-JPEG,
//! which assumes the tables of ITU T.81 Annex K.3); [`decode_jpeg`] puts those tables in front
//! of the scan when a frame has none. YUV frames are ITU-R BT.601 with limited ("video") range,
//! as V4L2 delivers YUYV and NV12 by default, except [`RawFormat::Yuvj420`]: full range, as
//! JPEG (JFIF) codes colour; rpicam-vid asks libcamera for that colour space (`ColorSpace::Sycc`)
//! when its codec is yuv420. Converted in 8.8 fixed point.

use std::borrow::Cow;

use image::{DynamicImage, GrayImage, RgbImage};

pub use fer_core::board::RawFormat;
pub use fer_core::preprocess::ColorMode;

/// The DHT segment with the four tables of ITU T.81 Annex K.3 (luminance and chrominance, DC
/// and AC) that Motion-JPEG frames without tables are coded with.
const STANDARD_DHT: [u8; 420] = [
    0xFF, 0xC4, 0x01, 0xA2, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x01, 0x00, 0x03, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
    0x07, 0x08, 0x09, 0x0A, 0x0B, 0x10, 0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00,
    0x00, 0x01, 0x7D, 0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62,
    0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37,
    0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A,
    0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85,
    0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6,
    0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7,
    0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7,
    0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0x11, 0x00, 0x02, 0x01, 0x02, 0x04,
    0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21,
    0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1,
    0x09, 0x23, 0x33, 0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19,
    0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74,
    0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6,
    0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7,
    0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA,
];

/// `data` with the standard Huffman tables inserted after its start-of-image marker when no
/// DHT segment comes before its first scan; otherwise (or when the headers cannot be walked:
/// the decoder reports that) `data` itself.
pub fn with_huffman_tables(data: &[u8]) -> Cow<'_, [u8]> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Cow::Borrowed(data);
    }
    let mut pos = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while data.get(pos) == Some(&0xFF) && data.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let (Some(0xFF), Some(&marker)) = (data.get(pos), data.get(pos + 1)) else {
            return Cow::Borrowed(data);
        };
        match marker {
            0xC4 => return Cow::Borrowed(data),
            0xDA => break,
            // Segments without a length.
            0x01 | 0xD0..=0xD7 => pos += 2,
            _ => {
                let Some(len) = data.get(pos + 2..pos + 4) else { return Cow::Borrowed(data) };
                pos += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
            }
        }
    }
    let mut out = Vec::with_capacity(data.len() + STANDARD_DHT.len());
    out.extend_from_slice(&data[..2]);
    out.extend_from_slice(&STANDARD_DHT);
    out.extend_from_slice(&data[2..]);
    Cow::Owned(out)
}

/// Decodes one JPEG image, with or without Huffman tables (see the module notes).
pub fn decode_jpeg(data: &[u8]) -> Result<DynamicImage, String> {
    decode_jpeg_as(data, ColorMode::Rgb)
}

/// [`decode_jpeg`] to `color`. Gray is the image's Y component, decoded by the same decoder
/// (zune-jpeg, which the `image` crate wraps) told to output luma only: it leaves out the chroma
/// components' upsampling and colour conversion. Y is BT.601 luma of the colours the JPEG codes
/// (JFIF), so it is [`fer_core::preprocess::to_gray8`] of the colour image up to rounding.
pub fn decode_jpeg_as(data: &[u8], color: ColorMode) -> Result<DynamicImage, String> {
    let data = with_huffman_tables(data);
    let err = |e: &dyn std::fmt::Display| format!("not a decodable image (JPEG): {e}");
    if color == ColorMode::Rgb {
        return image::load_from_memory_with_format(&data, image::ImageFormat::Jpeg).map_err(|e| err(&e));
    }
    // The options the `image` crate decodes with, and luma out.
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX)
        .jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::Luma);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(&data[..]), options);
    let pixels = decoder.decode().map_err(|e| err(&e))?;
    let (w, h) = decoder.dimensions().ok_or_else(|| err(&"no frame header"))?;
    let too_big = || err(&format!("{w}x{h} pixels"));
    let (w, h) = (u32::try_from(w).map_err(|_| too_big())?, u32::try_from(h).map_err(|_| too_big())?);
    GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8).ok_or_else(|| err(&"fewer pixels than its size"))
}

/// Bytes per unpadded row and rows (NV12, YUV420: the luma rows and the half as many chroma
/// rows) of an uncompressed frame; an error for an empty frame, an odd width for YUYV/NV12/YUV420,
/// an odd height for NV12/YUV420, or MJPEG (no fixed size).
fn layout(format: RawFormat, width: u32, height: u32) -> Result<(usize, usize), String> {
    if width == 0 || height == 0 {
        return Err(format!("a {width}x{height} {format} frame has no pixels"));
    }
    let (w, h) = (width as usize, height as usize);
    Ok(match format {
        RawFormat::Mjpeg => return Err("MJPEG frames have no fixed size".into()),
        RawFormat::Yuyv | RawFormat::Nv12 | RawFormat::Yuv420 | RawFormat::Yuvj420 if !w.is_multiple_of(2) => {
            return Err(format!("{format} frames need an even width, not {width}"));
        }
        RawFormat::Nv12 | RawFormat::Yuv420 | RawFormat::Yuvj420 if !h.is_multiple_of(2) => {
            return Err(format!("{format} frames need an even height, not {height}"))
        }
        RawFormat::Yuyv => (2 * w, h),
        RawFormat::Nv12 | RawFormat::Yuv420 | RawFormat::Yuvj420 => (w, h + h / 2),
        RawFormat::Gray => (w, h),
        RawFormat::Rgb | RawFormat::Bgr => (3 * w, h),
    })
}

/// The size in bytes of an unpadded uncompressed frame (errors as [`decode_raw`]'s).
pub fn frame_bytes(format: RawFormat, width: u32, height: u32) -> Result<usize, String> {
    layout(format, width, height).map(|(row, rows)| row * rows)
}

/// Decodes a `width` x `height` camera frame of `format`. Uncompressed rows may be padded: the
/// row stride is the frame's length divided by its rows (NV12 and YUV420 frames must be
/// unpadded). A frame shorter than its size needs, an odd width for YUYV/NV12/YUV420 or an odd
/// height for NV12/YUV420 is an error naming the sizes.
pub fn decode_raw(format: RawFormat, width: u32, height: u32, data: &[u8]) -> Result<DynamicImage, String> {
    decode_raw_as(format, width, height, data, ColorMode::Rgb)
}

/// [`decode_raw`] to `color`. Gray frames are the luma the camera sent, with no colour
/// conversion (a gray model and the face detector need nothing else): YUV formats' Y samples
/// (limited range stretched to 0..=255 as the RGB decoding does, full range as they are), a
/// JPEG's Y component ([`decode_jpeg_as`]); RGB and BGR frames through
/// [`fer_core::preprocess::to_gray8`]. Each is that function of the RGB decoding up to rounding
/// (tests `gray_frames_are_the_luma_of_the_colour_ones`).
pub fn decode_raw_as(
    format: RawFormat,
    width: u32,
    height: u32,
    data: &[u8],
    color: ColorMode,
) -> Result<DynamicImage, String> {
    if format == RawFormat::Mjpeg {
        return decode_jpeg_as(data, color);
    }
    let (row, rows) = layout(format, width, height)?;
    let (w, h) = (width as usize, height as usize);
    if data.len() < row * rows {
        return Err(format!(
            "a {width}x{height} {format} frame needs {} bytes, this one has {} (truncated?)",
            row * rows,
            data.len()
        ));
    }
    let planar = matches!(format, RawFormat::Nv12 | RawFormat::Yuv420 | RawFormat::Yuvj420);
    let stride = if !planar && data.len().is_multiple_of(rows) { data.len() / rows } else { row };
    let rows_of = |n: usize| (0..n).map(move |r| &data[r * stride..r * stride + row]);
    // The first `n` rows without their padding.
    let packed_rows = |n: usize| -> Vec<u8> {
        if stride == row {
            return data[..n * row].to_vec();
        }
        let mut out = Vec::with_capacity(n * row);
        rows_of(n).for_each(|r| out.extend_from_slice(r));
        out
    };
    let image = match format {
        RawFormat::Yuyv | RawFormat::Nv12 | RawFormat::Yuv420 | RawFormat::Yuvj420 if color == ColorMode::Gray => {
            let mut gray = vec![0; w * h];
            if format == RawFormat::Yuvj420 {
                // Full range: the luma plane as it is.
                gray.copy_from_slice(&data[..w * h]);
            } else {
                for (r, dst) in gray.chunks_exact_mut(w).enumerate() {
                    let src = &data[r * stride..];
                    match format {
                        RawFormat::Yuyv => limited_luma_row::<2>(&src[..2 * w], dst),
                        _ => limited_luma_row::<1>(&src[..w], dst),
                    }
                }
            }
            DynamicImage::ImageLuma8(GrayImage::from_raw(width, height, gray).expect("w*h bytes"))
        }
        RawFormat::Rgb | RawFormat::Bgr if color == ColorMode::Gray => {
            let rgb = decode_raw_as(format, width, height, data, ColorMode::Rgb)?;
            DynamicImage::ImageLuma8(fer_core::preprocess::to_gray8(&rgb))
        }
        RawFormat::Yuyv | RawFormat::Nv12 | RawFormat::Yuv420 | RawFormat::Yuvj420 => {
            let mut rgb = RgbImage::new(width, height);
            yuv_to_rgb(format, data, (w, h, stride), &mut rgb);
            DynamicImage::ImageRgb8(rgb)
        }
        RawFormat::Gray => {
            let pixels = packed_rows(h);
            DynamicImage::ImageLuma8(GrayImage::from_raw(width, height, pixels).expect("w*h bytes"))
        }
        RawFormat::Rgb | RawFormat::Bgr => {
            let mut pixels = packed_rows(h);
            if format == RawFormat::Bgr {
                pixels.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
            }
            DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels).expect("3*w*h bytes"))
        }
        RawFormat::Mjpeg => unreachable!("decoded above"),
    };
    Ok(image)
}

/// Every `STEP`-th byte of `src` (the Y samples: 2 in a YUYV row, 1 in a planar luma row) into
/// `dst`, limited range stretched to 0..=255 as [`stretch_limited`] does. On
/// aarch64 16 at a time with NEON, in one pass: `LD2` de-interleaves YUYV (the compiler
/// vectorised neither a zip over the pairs nor a loop over fixed-size blocks), and the stretch is
/// a saturating subtract, a widening multiply and a saturating rounding narrowing shift (a 640x480
/// YUYV frame to gray: 0.22 M Cortex-A72 instructions, 0.53 M as two passes, LD2 then the
/// compiler's vectorised stretch; 0.40 M as one `while` loop over indices, which the compiler
/// filled with bookkeeping: BENCHMARKS.md).
fn limited_luma_row<const STEP: usize>(src: &[u8], dst: &mut [u8]) {
    let n = dst.len().min(src.len() / STEP);
    // The pixels done in vectors.
    #[cfg(not(target_arch = "aarch64"))]
    let done = 0;
    #[cfg(target_arch = "aarch64")]
    let done = {
        use std::arch::aarch64::*;
        for (s, d) in src[..STEP * n].chunks_exact(16 * STEP).zip(dst[..n].chunks_exact_mut(16)) {
            // SAFETY: reads the 16 * STEP bytes of `s` and writes the 16 of `d`; NEON is part of
            // the aarch64 baseline.
            unsafe {
                let y = if STEP == 2 { vld2q_u8(s.as_ptr()).0 } else { vld1q_u8(s.as_ptr()) };
                // (149 (y - 16) + 64) >> 7, saturated to 255: (y - 16) * 149 <= 239 * 149 fits u16.
                let y = vqsubq_u8(y, vdupq_n_u8(16));
                let lo = vmull_u8(vget_low_u8(y), vdup_n_u8(149));
                let hi = vmull_high_u8(y, vdupq_n_u8(149));
                vst1q_u8(d.as_mut_ptr(), vqrshrn_high_n_u16::<7>(vqrshrn_n_u16::<7>(lo), hi));
            }
        }
        n / 16 * 16
    };
    for (o, p) in dst[done..n].iter_mut().zip(src[STEP * done..].chunks_exact(STEP)) {
        *o = p[0];
    }
    stretch_limited(&mut dst[done..n]);
}

/// Limited-range luma (16..=235) stretched to 0..=255 in place, as [`block_to_rgb`] does for a
/// pixel without chroma: `(298 (y - 16) + 128) >> 8`, clamped, computed as the equal
/// `(149 (y - 16) + 64) >> 7` in 16 bits (vectorised 8 or 16 lanes wide).
fn stretch_limited(luma: &mut [u8]) {
    for y in luma {
        let v = (u16::from(y.saturating_sub(16)) * 149 + 64) >> 7;
        *y = v.min(255) as u8;
    }
}

/// A YUYV, NV12 or YUV420 frame (`data`, its width, height and row stride) to RGB, with AVX2 where an
/// x86 CPU has it (2.3x faster than the x86-64 baseline's SSE2; BENCHMARKS.md); on aarch64 the
/// baseline has NEON.
fn yuv_to_rgb(format: RawFormat, data: &[u8], size: (usize, usize, usize), rgb: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { yuv_to_rgb_avx2(format, data, size, rgb) };
    }
    yuv_rows_to_rgb(format, data, size, rgb)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn yuv_to_rgb_avx2(format: RawFormat, data: &[u8], size: (usize, usize, usize), rgb: &mut [u8]) {
    yuv_rows_to_rgb(format, data, size, rgb)
}

#[inline(always)]
fn yuv_rows_to_rgb(format: RawFormat, data: &[u8], (w, h, stride): (usize, usize, usize), rgb: &mut [u8]) {
    let rows = rgb.chunks_exact_mut(3 * w).take(h).enumerate();
    if format == RawFormat::Nv12 {
        let (luma, chroma) = data.split_at(w * h);
        for (r, dst) in rows {
            nv12_row_to_rgb(&luma[r * w..(r + 1) * w], &chroma[(r / 2) * w..(r / 2 + 1) * w], dst);
        }
    } else if matches!(format, RawFormat::Yuv420 | RawFormat::Yuvj420) {
        let (luma, chroma) = data.split_at(w * h);
        let (u, v) = chroma.split_at((w / 2) * (h / 2));
        let c = w / 2;
        for (r, dst) in rows {
            let q = r / 2;
            let (y, u, v) = (&luma[r * w..(r + 1) * w], &u[q * c..(q + 1) * c], &v[q * c..(q + 1) * c]);
            if format == RawFormat::Yuvj420 {
                i420_row_to_rgb::<true>(y, u, v, dst);
            } else {
                i420_row_to_rgb::<false>(y, u, v, dst);
            }
        }
    } else {
        for (r, dst) in rows {
            yuyv_row_to_rgb(&data[r * stride..r * stride + 2 * w], dst);
        }
    }
}

/// Pixels converted per block: 16, sharing 8 chroma pairs.
const BLOCK: usize = 16;

/// `BLOCK` pixels to RGB (BT.601, limited range or with `FULL` full range, 8.8 fixed point,
/// rounded), pixel `k` with the chroma of pair `k / 2`; over fixed-size arrays, which the
/// compiler turns into vector code.
#[inline(always)]
fn block_to_rgb<const FULL: bool>(
    y: &[u8; BLOCK],
    u: &[u8; BLOCK / 2],
    v: &[u8; BLOCK / 2],
    out: &mut [u8; 3 * BLOCK],
) {
    let (mut r, mut g, mut b) = ([0u8; BLOCK], [0u8; BLOCK], [0u8; BLOCK]);
    let (mut du, mut dv) = ([0i32; BLOCK], [0i32; BLOCK]);
    for k in 0..BLOCK {
        (du[k], dv[k]) = (i32::from(u[k / 2]), i32::from(v[k / 2]));
    }
    for k in 0..BLOCK {
        let (d, e) = (du[k] - 128, dv[k] - 128);
        // Limited: 255/219 Y, 1.596 Cr, 0.392 Cb + 0.813 Cr, 2.017 Cb (x256). Full (JFIF): Y,
        // 1.402 Cr, 0.344136 Cb + 0.714136 Cr, 1.772 Cb (x256).
        let (c, rv, gu, gv, bu) = if FULL {
            (256 * i32::from(y[k]) + 128, 359, 88, 183, 454)
        } else {
            (298 * (i32::from(y[k]) - 16) + 128, 409, 100, 208, 516)
        };
        r[k] = ((c + rv * e) >> 8).clamp(0, 255) as u8;
        g[k] = ((c - gu * d - gv * e) >> 8).clamp(0, 255) as u8;
        b[k] = ((c + bu * d) >> 8).clamp(0, 255) as u8;
    }
    for k in 0..BLOCK {
        out[3 * k] = r[k];
        out[3 * k + 1] = g[k];
        out[3 * k + 2] = b[k];
    }
}

/// One row of YUYV (Y0 U Y1 V per two pixels) to RGB; a last partial block is converted from
/// a zero-padded copy.
#[inline(always)]
fn yuyv_row_to_rgb(src: &[u8], dst: &mut [u8]) {
    #[inline(always)]
    fn convert(q: &[u8], px: &mut [u8; 3 * BLOCK]) {
        let (mut y, mut u, mut v) = ([0u8; BLOCK], [0u8; BLOCK / 2], [0u8; BLOCK / 2]);
        for k in 0..BLOCK / 2 {
            (y[2 * k], u[k], y[2 * k + 1], v[k]) = (q[4 * k], q[4 * k + 1], q[4 * k + 2], q[4 * k + 3]);
        }
        block_to_rgb::<false>(&y, &u, &v, px);
    }
    let mut src_blocks = src.chunks_exact(2 * BLOCK);
    let mut dst_blocks = dst.chunks_exact_mut(3 * BLOCK);
    for (q, px) in (&mut src_blocks).zip(&mut dst_blocks) {
        convert(q, px.try_into().expect("3 * BLOCK bytes"));
    }
    let (q, px) = (src_blocks.remainder(), dst_blocks.into_remainder());
    if !q.is_empty() {
        let (mut padded, mut out) = ([0u8; 2 * BLOCK], [0u8; 3 * BLOCK]);
        padded[..q.len()].copy_from_slice(q);
        convert(&padded, &mut out);
        px.copy_from_slice(&out[..px.len()]);
    }
}

/// One row of NV12 to RGB: its luma row and the chroma row (U V pairs) it shares with its
/// neighbour; a last partial block as in [`yuyv_row_to_rgb`].
#[inline(always)]
fn nv12_row_to_rgb(luma: &[u8], chroma: &[u8], dst: &mut [u8]) {
    #[inline(always)]
    fn convert(y: &[u8], uv: &[u8], px: &mut [u8; 3 * BLOCK]) {
        let (mut u, mut v) = ([0u8; BLOCK / 2], [0u8; BLOCK / 2]);
        for k in 0..BLOCK / 2 {
            (u[k], v[k]) = (uv[2 * k], uv[2 * k + 1]);
        }
        block_to_rgb::<false>(y.try_into().expect("BLOCK bytes"), &u, &v, px);
    }
    let mut y_blocks = luma.chunks_exact(BLOCK);
    let mut uv_blocks = chroma.chunks_exact(BLOCK);
    let mut dst_blocks = dst.chunks_exact_mut(3 * BLOCK);
    for ((y, uv), px) in (&mut y_blocks).zip(&mut uv_blocks).zip(&mut dst_blocks) {
        convert(y, uv, px.try_into().expect("3 * BLOCK bytes"));
    }
    let (y, uv, px) = (y_blocks.remainder(), uv_blocks.remainder(), dst_blocks.into_remainder());
    if !y.is_empty() {
        let (mut py, mut puv, mut out) = ([0u8; BLOCK], [0u8; BLOCK], [0u8; 3 * BLOCK]);
        py[..y.len()].copy_from_slice(y);
        puv[..uv.len()].copy_from_slice(uv);
        convert(&py, &puv, &mut out);
        px.copy_from_slice(&out[..px.len()]);
    }
}

/// One row of YUV420 (I420; full range with `FULL`) to RGB: its luma row and the U and V rows
/// (one sample per two pixels) it shares with its neighbour; a last partial block as in
/// [`yuyv_row_to_rgb`].
#[inline(always)]
fn i420_row_to_rgb<const FULL: bool>(luma: &[u8], u: &[u8], v: &[u8], dst: &mut [u8]) {
    let mut y_blocks = luma.chunks_exact(BLOCK);
    let mut u_blocks = u.chunks_exact(BLOCK / 2);
    let mut v_blocks = v.chunks_exact(BLOCK / 2);
    let mut dst_blocks = dst.chunks_exact_mut(3 * BLOCK);
    for (((y, u), v), px) in (&mut y_blocks).zip(&mut u_blocks).zip(&mut v_blocks).zip(&mut dst_blocks) {
        let (y, u, v) =
            (y.try_into().expect("BLOCK"), u.try_into().expect("BLOCK / 2"), v.try_into().expect("BLOCK / 2"));
        block_to_rgb::<FULL>(y, u, v, px.try_into().expect("3 * BLOCK bytes"));
    }
    let (y, u, v, px) = (y_blocks.remainder(), u_blocks.remainder(), v_blocks.remainder(), dst_blocks.into_remainder());
    if !y.is_empty() {
        let (mut py, mut pu, mut pv, mut out) = ([0u8; BLOCK], [0u8; BLOCK / 2], [0u8; BLOCK / 2], [0u8; 3 * BLOCK]);
        py[..y.len()].copy_from_slice(y);
        pu[..u.len()].copy_from_slice(u);
        pv[..v.len()].copy_from_slice(v);
        block_to_rgb::<FULL>(&py, &pu, &pv, &mut out);
        px.copy_from_slice(&out[..px.len()]);
    }
}

/// The BT.601 limited-range Y, U, V of an RGB pixel, rounded (the inverse of the decoding, in
/// floating point: camera-like test and benchmark frames are made with it).
pub fn rgb_to_yuv([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
    let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    let u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    [y, u, v].map(|x| x.round().clamp(0.0, 255.0) as u8)
}

/// The full-range (JFIF) Y, Cb, Cr of an RGB pixel, rounded.
pub fn rgb_to_yuv_full([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let u = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
    let v = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    [y, u, v].map(|x| x.round().clamp(0.0, 255.0) as u8)
}

/// An RGB image as a camera's frame of `format` (JPEG: quality 85, Huffman tables left out as
/// UVC cameras do). YUYV and NV12 take each pair's (block's) chroma from its first pixel. For
/// tests and `bench-decode`.
pub fn encode_raw(rgb: &RgbImage, format: RawFormat) -> Result<Vec<u8>, String> {
    if format != RawFormat::Mjpeg {
        // The same size rules as decoding (YUYV pairs never straddle rows, NV12 blocks fit).
        frame_bytes(format, rgb.width(), rgb.height())?;
    }
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let to_yuv = if format == RawFormat::Yuvj420 { rgb_to_yuv_full } else { rgb_to_yuv };
    let yuv: Vec<[u8; 3]> = rgb.pixels().map(|p| to_yuv(p.0)).collect();
    Ok(match format {
        RawFormat::Mjpeg => {
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
                .encode_image(rgb)
                .map_err(|e| format!("cannot encode a JPEG: {e}"))?;
            strip_huffman_tables(&out)
        }
        RawFormat::Yuyv => yuv.chunks_exact(2).flat_map(|p| [p[0][0], p[0][1], p[1][0], p[0][2]]).collect(),
        RawFormat::Nv12 => {
            let mut out: Vec<u8> = yuv.iter().map(|p| p[0]).collect();
            for r in (0..h).step_by(2) {
                for c in (0..w).step_by(2) {
                    let p = yuv[r * w + c];
                    out.extend([p[1], p[2]]);
                }
            }
            out
        }
        RawFormat::Yuv420 | RawFormat::Yuvj420 => {
            let mut out: Vec<u8> = yuv.iter().map(|p| p[0]).collect();
            for plane in [1, 2] {
                for r in (0..h).step_by(2) {
                    out.extend((0..w).step_by(2).map(|c| yuv[r * w + c][plane]));
                }
            }
            out
        }
        RawFormat::Gray => DynamicImage::ImageRgb8(rgb.clone()).to_luma8().into_raw(),
        RawFormat::Rgb => rgb.as_raw().clone(),
        RawFormat::Bgr => rgb.pixels().flat_map(|p| [p.0[2], p.0[1], p.0[0]]).collect(),
    })
}

/// A JPEG without its DHT segments (as an MJPEG camera sends it), its header walked as in
/// [`with_huffman_tables`]; anything after the first scan's header is kept as it is.
fn strip_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos + 1] != 0xDA {
        let len = 2 + usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if jpeg[pos + 1] != 0xC4 {
            out.extend_from_slice(&jpeg[pos..pos + len]);
        }
        pos += len;
    }
    out.extend_from_slice(&jpeg[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured test picture: gradients, and a deterministic pattern constant over 2x2 blocks
    /// (the chroma that YUYV and NV12 share).
    fn picture(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let n = (x / 2 * 7919 + y / 2 * 104_729) % 61;
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, (n * 4) as u8])
        })
    }

    /// The DHT segments' tables (class/id byte, counts, values) of a JPEG, in order.
    fn huffman_tables(jpeg: &[u8]) -> Vec<Vec<u8>> {
        let mut tables = Vec::new();
        let mut pos = 2;
        while jpeg[pos + 1] != 0xDA {
            let len = 2 + usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
            if jpeg[pos + 1] == 0xC4 {
                let mut t = &jpeg[pos + 4..pos + len];
                while !t.is_empty() {
                    let n = 17 + t[1..17].iter().map(|&c| usize::from(c)).sum::<usize>();
                    tables.push(t[..n].to_vec());
                    t = &t[n..];
                }
            }
            pos += len;
        }
        tables
    }

    #[test]
    fn the_standard_tables_are_those_a_baseline_encoder_writes() {
        // image's encoder codes with the tables of T.81 Annex K.3; ours must be the same four.
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode_image(&picture(32, 16)).unwrap();
        let mut theirs = huffman_tables(&jpeg);
        let mut ours = huffman_tables(&[[0xFF, 0xD8].as_slice(), &STANDARD_DHT, &[0xFF, 0xDA]].concat());
        theirs.sort();
        ours.sort();
        assert_eq!(ours.len(), 4);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_camera_jpeg_without_huffman_tables_decodes_like_the_whole_file() {
        let rgb = picture(64, 48);
        let mut full = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut full, 85).encode_image(&rgb).unwrap();
        let stripped = encode_raw(&rgb, RawFormat::Mjpeg).unwrap();
        assert!(huffman_tables(&stripped).is_empty() && stripped.len() < full.len() - 400);
        let want = image::load_from_memory(&full).unwrap().to_rgb8();
        let got = decode_raw(RawFormat::Mjpeg, 64, 48, &stripped).unwrap().to_rgb8();
        assert_eq!(got, want);
        // A frame that has tables is passed through untouched.
        assert!(matches!(with_huffman_tables(&full), Cow::Borrowed(_)));
        assert_eq!(decode_jpeg(&full).unwrap().to_rgb8(), want);
        let Err(err) = decode_jpeg(&stripped[2..]) else { panic!("decoded a JPEG without its start marker") };
        assert!(err.contains("JPEG"), "{err}");
    }

    /// ITU-R BT.601 100 % colour bars: (Y, Cb, Cr) in limited range and their RGB.
    const BARS: [([u8; 3], [u8; 3]); 8] = [
        ([235, 128, 128], [255, 255, 255]),
        ([210, 16, 146], [255, 255, 0]),
        ([170, 166, 16], [0, 255, 255]),
        ([145, 54, 34], [0, 255, 0]),
        ([106, 202, 222], [255, 0, 255]),
        ([81, 90, 240], [255, 0, 0]),
        ([41, 240, 110], [0, 0, 255]),
        ([16, 128, 128], [0, 0, 0]),
    ];

    fn near(a: [u8; 3], b: [u8; 3], tolerance: i32) -> bool {
        a.iter().zip(b).all(|(&x, y)| (i32::from(x) - i32::from(y)).abs() <= tolerance)
    }

    #[test]
    fn yuyv_nv12_and_yuv420_colour_bars_decode_to_their_colours() {
        // One row of 16 pixels, two per bar; the second pixel of each pair gets the bar's Y and
        // the first Y 16 (black whatever the chroma... nearly): Y0 and Y1 must not swap.
        let mut yuyv = Vec::new();
        for ([y, u, v], _) in BARS {
            yuyv.extend([y, u, y, v]);
        }
        let img = decode_raw(RawFormat::Yuyv, 16, 1, &yuyv).unwrap().to_rgb8();
        for (i, (_, want)) in BARS.iter().enumerate() {
            for x in [2 * i, 2 * i + 1] {
                let got = img.get_pixel(x as u32, 0).0;
                assert!(near(got, *want, 2), "bar {i} pixel {x}: {got:?} vs {want:?}");
            }
        }
        // Y0 then Y1: white then black under neutral chroma.
        let pair = decode_raw(RawFormat::Yuyv, 2, 1, &[235, 128, 16, 128]).unwrap().to_rgb8();
        assert_eq!((pair.get_pixel(0, 0).0, pair.get_pixel(1, 0).0), ([255; 3], [0; 3]));
        // NV12: the same bars as 2x2 blocks (16 x 2 pixels), chroma in the second plane.
        let mut nv12: Vec<u8> = [0, 1].iter().flat_map(|_| BARS.iter().flat_map(|(p, _)| [p[0], p[0]])).collect();
        nv12.extend(BARS.iter().flat_map(|(p, _)| [p[1], p[2]]));
        let img = decode_raw(RawFormat::Nv12, 16, 2, &nv12).unwrap().to_rgb8();
        for (i, (_, want)) in BARS.iter().enumerate() {
            for (x, y) in [(2 * i, 0), (2 * i + 1, 1)] {
                let got = img.get_pixel(x as u32, y).0;
                assert!(near(got, *want, 2), "NV12 bar {i} ({x}, {y}): {got:?} vs {want:?}");
            }
        }
        // YUV420: the same blocks with the U plane, then the V plane; and the same pixels as NV12.
        let mut i420: Vec<u8> = nv12[..32].to_vec();
        i420.extend(BARS.iter().map(|(p, _)| p[1]));
        i420.extend(BARS.iter().map(|(p, _)| p[2]));
        let planar = decode_raw(RawFormat::Yuv420, 16, 2, &i420).unwrap().to_rgb8();
        assert_eq!(planar, img, "YUV420 and NV12 of the same samples");
    }

    /// The colour bars in full range (JFIF: Y = 0.299 R + 0.587 G + 0.114 B, Cb and Cr centred
    /// on 128 with +-0.5 at blue and red), as JPEG and rpicam-vid's yuv420 code them.
    const FULL_BARS: [([u8; 3], [u8; 3]); 8] = [
        ([255, 128, 128], [255, 255, 255]),
        ([226, 0, 149], [255, 255, 0]),
        ([179, 171, 1], [0, 255, 255]),
        ([150, 44, 21], [0, 255, 0]),
        ([105, 212, 235], [255, 0, 255]),
        ([76, 85, 255], [255, 0, 0]),
        ([29, 255, 107], [0, 0, 255]),
        ([0, 128, 128], [0, 0, 0]),
    ];

    #[test]
    fn full_range_yuv420_colour_bars_and_grays_decode_to_their_colours() {
        // 16 x 2 pixels: each bar a 2x2 block.
        let mut frame: Vec<u8> = [0, 1].iter().flat_map(|_| FULL_BARS.iter().flat_map(|(p, _)| [p[0], p[0]])).collect();
        frame.extend(FULL_BARS.iter().map(|(p, _)| p[1]));
        frame.extend(FULL_BARS.iter().map(|(p, _)| p[2]));
        let img = decode_raw(RawFormat::Yuvj420, 16, 2, &frame).unwrap().to_rgb8();
        for (i, (_, want)) in FULL_BARS.iter().enumerate() {
            for (x, y) in [(2 * i, 0), (2 * i + 1, 1)] {
                let got = img.get_pixel(x as u32, y).0;
                assert!(near(got, *want, 2), "full-range bar {i} ({x}, {y}): {got:?} vs {want:?}");
            }
        }
        // Grays are Y itself in full range; read as limited range they would be stretched
        // ((Y - 16) * 255 / 219: 64 -> 56, 200 -> 214).
        for (yv, limited) in [(64u8, 56u8), (200, 214)] {
            let gray = [[yv; 4].as_slice(), &[128, 128]].concat();
            assert_eq!(decode_raw(RawFormat::Yuvj420, 2, 2, &gray).unwrap().to_rgb8().get_pixel(1, 1).0, [yv; 3]);
            assert_eq!(decode_raw(RawFormat::Yuv420, 2, 2, &gray).unwrap().to_rgb8().get_pixel(1, 1).0, [limited; 3]);
        }
    }

    #[test]
    fn every_format_round_trips_a_picture() {
        let rgb = picture(40, 30);
        for (format, tolerance) in [
            (RawFormat::Rgb, 0.0),
            (RawFormat::Bgr, 0.0),
            (RawFormat::Yuyv, 2.5),
            (RawFormat::Nv12, 4.0),
            (RawFormat::Yuv420, 4.0),
            (RawFormat::Yuvj420, 4.0),
            (RawFormat::Mjpeg, 7.0),
        ] {
            let frame = encode_raw(&rgb, format).unwrap();
            let got = decode_raw(format, 40, 30, &frame).unwrap().to_rgb8();
            let mean =
                got.as_raw().iter().zip(rgb.as_raw()).map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs()).sum::<f64>()
                    / rgb.as_raw().len() as f64;
            assert!(mean <= tolerance, "{format}: mean error {mean}");
        }
        // The dispatched build (AVX2 on most x86) and the generic code agree bit for bit.
        for format in [RawFormat::Yuyv, RawFormat::Nv12, RawFormat::Yuv420, RawFormat::Yuvj420] {
            let frame = encode_raw(&rgb, format).unwrap();
            let (mut generic, mut dispatched) = (vec![0; 40 * 30 * 3], vec![0; 40 * 30 * 3]);
            yuv_rows_to_rgb(format, &frame, (40, 30, 80), &mut generic);
            yuv_to_rgb(format, &frame, (40, 30, 80), &mut dispatched);
            assert_eq!(generic, dispatched, "{format}");
        }
        // 40 px: two whole blocks and a partial one per row.
        let planar = decode_raw(RawFormat::Yuv420, 40, 30, &encode_raw(&rgb, RawFormat::Yuv420).unwrap()).unwrap();
        let packed = decode_raw(RawFormat::Nv12, 40, 30, &encode_raw(&rgb, RawFormat::Nv12).unwrap()).unwrap();
        assert_eq!(planar, packed);
        let gray = decode_raw(RawFormat::Gray, 40, 30, &encode_raw(&rgb, RawFormat::Gray).unwrap()).unwrap();
        assert_eq!(gray.to_luma8(), DynamicImage::ImageRgb8(rgb.clone()).to_luma8());
        // Within a YUYV pair only the chroma is shared: luminance survives pixel for pixel.
        let yuyv = decode_raw(RawFormat::Yuyv, 40, 30, &encode_raw(&rgb, RawFormat::Yuyv).unwrap()).unwrap();
        let luma = |i: &DynamicImage| i.to_luma8().into_raw();
        let worst = luma(&yuyv)
            .iter()
            .zip(luma(&DynamicImage::ImageRgb8(rgb)))
            .map(|(&a, b)| (i32::from(a) - i32::from(b)).abs())
            .max();
        assert!(worst.unwrap() <= 3, "{worst:?}");
    }

    #[test]
    fn every_luma_level_decodes_to_gray_as_its_colour_decoding_without_chroma() {
        // All 256 Y levels with neutral chroma (U = V = 128), in rows 16 to 50 wide, so each
        // level lands both in the 16-pixel vector blocks (on aarch64) and in a row's tail: gray
        // must equal the RGB decoding's channels (block_to_rgb, another implementation).
        for w in [16usize, 34, 48, 50] {
            let h = 256usize.div_ceil(w).next_multiple_of(2);
            let ys: Vec<u8> = (0..w * h).map(|i| (i * 7 % 256) as u8).collect();
            let yuyv: Vec<u8> = ys.iter().flat_map(|&y| [y, 128]).collect();
            let planar = [ys.clone(), vec![128; w * h / 2]].concat();
            for (format, data) in [(RawFormat::Yuyv, &yuyv), (RawFormat::Nv12, &planar), (RawFormat::Yuv420, &planar)] {
                let (wu, hu) = (w as u32, h as u32);
                let gray = decode_raw_as(format, wu, hu, data, ColorMode::Gray).unwrap().to_luma8();
                let rgb = decode_raw_as(format, wu, hu, data, ColorMode::Rgb).unwrap().to_rgb8();
                let want: Vec<u8> = rgb.pixels().map(|p| p[0]).collect();
                assert!(rgb.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "{format} {w}: neutral chroma is gray");
                assert_eq!(gray.as_raw(), &want, "{format} {w} wide");
            }
        }
    }

    #[test]
    fn gray_frames_are_the_luma_of_the_colour_ones() {
        use fer_core::preprocess::to_gray8;
        let rgb = picture(40, 30);
        // Against the rounded luma of the frame decoded to RGB: within 1 level (the RGB decoding
        // rounds each channel, luma rounds again), but for JPEG at pixels whose colour its
        // compression pushed out of range (clipped in RGB, not in Y): at most 2 % of them.
        for (format, far_allowed) in [
            (RawFormat::Yuyv, 0.0),
            (RawFormat::Nv12, 0.0),
            (RawFormat::Yuv420, 0.0),
            (RawFormat::Yuvj420, 0.0),
            (RawFormat::Mjpeg, 0.02),
            (RawFormat::Rgb, 0.0),
            (RawFormat::Bgr, 0.0),
            (RawFormat::Gray, 0.0),
        ] {
            let frame = encode_raw(&rgb, format).unwrap();
            let want = to_gray8(&decode_raw(format, 40, 30, &frame).unwrap());
            let DynamicImage::ImageLuma8(got) = decode_raw_as(format, 40, 30, &frame, ColorMode::Gray).unwrap() else {
                panic!("{format}: not decoded to gray");
            };
            assert_eq!(got.dimensions(), (40, 30), "{format}");
            let d: Vec<i32> =
                got.as_raw().iter().zip(want.as_raw()).map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs()).collect();
            let far = d.iter().filter(|&&d| d > 1).count() as f64 / d.len() as f64;
            let mean = f64::from(d.iter().sum::<i32>()) / d.len() as f64;
            assert!(
                far <= far_allowed && mean < 0.2,
                "{format}: {far} of the pixels more than 1 level off, mean {mean}"
            );
        }
        // RGB frames: exactly the rounded luma.
        let frame = encode_raw(&rgb, RawFormat::Rgb).unwrap();
        assert_eq!(
            decode_raw_as(RawFormat::Rgb, 40, 30, &frame, ColorMode::Gray).unwrap().to_luma8(),
            to_gray8(&DynamicImage::ImageRgb8(rgb))
        );
        // Limited range by hand, (Y - 16) * 255 / 219 rounded and clamped: black and white
        // levels, mid gray, the two grays of the full-range test, and beyond the levels.
        let ys = [16u8, 235, 126, 64, 200, 0, 255];
        let want = [0u8, 255, 128, 56, 214, 0, 255];
        let pairs: Vec<u8> = want.iter().flat_map(|&v| [v, v]).collect();
        let yuyv: Vec<u8> = ys.iter().flat_map(|&y| [y, 128, y, 128]).collect();
        let got = decode_raw_as(RawFormat::Yuyv, 14, 1, &yuyv, ColorMode::Gray).unwrap().to_luma8();
        assert_eq!(got.as_raw(), &pairs);
        // Two rows of the same Y pairs and 7 x 1 U and V samples; full range keeps Y as it is.
        let luma: Vec<u8> = ys.iter().flat_map(|&y| [y, y]).collect();
        let i420 = [luma.clone(), luma.clone(), vec![128; 14]].concat();
        for (format, want) in [(RawFormat::Yuv420, &pairs), (RawFormat::Nv12, &pairs), (RawFormat::Yuvj420, &luma)] {
            let got = decode_raw_as(format, 14, 2, &i420, ColorMode::Gray).unwrap().to_luma8();
            assert_eq!(got.as_raw(), &[want.clone(), want.clone()].concat(), "{format}");
        }
        // Padded YUYV rows are skipped as in the RGB decoding; a JPEG that is none is named.
        let yuyv = encode_raw(&picture(6, 4), RawFormat::Yuyv).unwrap();
        let padded: Vec<u8> = yuyv.chunks_exact(12).flat_map(|r| r.iter().copied().chain([0xEE; 4])).collect();
        let gray = |d: &[u8]| decode_raw_as(RawFormat::Yuyv, 6, 4, d, ColorMode::Gray).unwrap().to_luma8();
        assert_eq!(gray(&padded), gray(&yuyv));
        let err = decode_raw_as(RawFormat::Mjpeg, 6, 4, &[0xFF, 0xD8, 1, 2, 3], ColorMode::Gray).unwrap_err();
        assert!(err.contains("not a decodable image (JPEG)"), "{err}");
    }

    #[test]
    fn padded_rows_are_skipped_and_bad_sizes_named() {
        let rgb = picture(6, 4);
        let yuyv = encode_raw(&rgb, RawFormat::Yuyv).unwrap();
        let padded: Vec<u8> = yuyv.chunks_exact(12).flat_map(|r| r.iter().copied().chain([0xEE; 4])).collect();
        assert_eq!(
            decode_raw(RawFormat::Yuyv, 6, 4, &padded).unwrap().to_rgb8(),
            decode_raw(RawFormat::Yuyv, 6, 4, &yuyv).unwrap().to_rgb8()
        );
        let short = decode_raw(RawFormat::Yuyv, 6, 4, &yuyv[..40]).unwrap_err();
        assert!(short.contains("6x4 YUYV") && short.contains("48 bytes") && short.contains("40"), "{short}");
        assert!(encode_raw(&picture(5, 4), RawFormat::Yuyv).unwrap_err().contains("even width"));
        let odd = decode_raw(RawFormat::Nv12, 5, 4, &[0; 40]).unwrap_err();
        assert!(odd.contains("even width"), "{odd}");
        assert!(decode_raw(RawFormat::Nv12, 6, 3, &[0; 40]).unwrap_err().contains("even height"));
        assert!(decode_raw(RawFormat::Yuv420, 6, 3, &[0; 40])
            .unwrap_err()
            .contains("YUV420 frames need an even height"));
        let short = decode_raw(RawFormat::Yuv420, 6, 4, &[0; 35]).unwrap_err();
        assert!(short.contains("6x4 YUV420 frame needs 36 bytes, this one has 35"), "{short}");
        assert!(decode_raw(RawFormat::Gray, 0, 4, &[]).unwrap_err().contains("no pixels"));
    }
}
