//! The board's screen: the main face's crop, its (smoothed) emotion and confidence, a bar per
//! emotion, the face count and FPS. One layout code path for every panel, generic over the
//! panel's colour type: a compact text + bars layout for 128×64 / 128×32 monochrome OLEDs, and a
//! crop + large label + coloured bars layout for 240×240 and larger colour panels.

use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_4X6, FONT_6X10};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::{BinaryColor, Rgb565, Rgb888};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use fer_core::Emotion;
use image::GrayImage;

use super::emotion_color;
use crate::track::TrackedFace;

/// Colours a screen needs from a panel's colour type.
pub trait ScreenColor: PixelColor {
    fn background() -> Self;
    fn foreground() -> Self;
    /// Bar/label colour of an emotion.
    fn emotion(e: Emotion) -> Self;
    /// A gray level for the face crop; `x`, `y` select the dither threshold on 1-bit panels.
    fn gray(v: u8, x: u32, y: u32) -> Self;
}

impl ScreenColor for BinaryColor {
    fn background() -> Self {
        BinaryColor::Off
    }
    fn foreground() -> Self {
        BinaryColor::On
    }
    fn emotion(_: Emotion) -> Self {
        BinaryColor::On
    }
    fn gray(v: u8, x: u32, y: u32) -> Self {
        // Ordered (Bayer 4×4) dithering.
        const BAYER: [[u8; 4]; 4] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];
        let threshold = BAYER[(y % 4) as usize][(x % 4) as usize] * 16 + 8;
        if v > threshold {
            BinaryColor::On
        } else {
            BinaryColor::Off
        }
    }
}

impl ScreenColor for Rgb888 {
    fn background() -> Self {
        Rgb888::BLACK
    }
    fn foreground() -> Self {
        Rgb888::WHITE
    }
    fn emotion(e: Emotion) -> Self {
        emotion_color(e)
    }
    fn gray(v: u8, _: u32, _: u32) -> Self {
        Rgb888::new(v, v, v)
    }
}

impl ScreenColor for Rgb565 {
    fn background() -> Self {
        Rgb565::BLACK
    }
    fn foreground() -> Self {
        Rgb565::WHITE
    }
    fn emotion(e: Emotion) -> Self {
        emotion_color(e).into()
    }
    fn gray(v: u8, _: u32, _: u32) -> Self {
        Rgb888::new(v, v, v).into()
    }
}

/// What one screen shows.
pub struct Screen<'a> {
    /// Tracked faces of the frame; the first (largest) is the main one.
    pub faces: &'a [TrackedFace],
    pub fps: f32,
    /// Gray crop of the main face (any size; scaled to fit).
    pub crop: Option<&'a GrayImage>,
    /// A message instead of a frame's results (`stopped`, `no frames`), alone in the middle.
    pub status: Option<&'a str>,
}

/// The frame rate as the screens show it: whole frames a second (a tenth flickers with the
/// camera's frame timing, and every change is a redraw and a bus transfer).
fn rate(fps: f32) -> String {
    format!("{fps:.0}")
}

impl<'a> Screen<'a> {
    /// A hash of everything the screen shows: its faces (every field), crop and message, and
    /// the frame rate as shown ([`rate`]). Presenters skip a screen whose fingerprint is the
    /// last one's (an empty room's screens are all alike), keeping no copy of it.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.faces.len().hash(&mut h);
        for f in self.faces {
            (f.id, f.label, f.uncertain).hash(&mut h);
            let b = &f.bbox;
            for v in [b.x, b.y, b.w, b.h, f.confidence].iter().chain(&f.probs).chain(&f.smoothed) {
                v.to_bits().hash(&mut h);
            }
        }
        self.crop.map(|c| (c.dimensions(), c.as_raw())).hash(&mut h);
        (self.status, rate(self.fps)).hash(&mut h);
        h.finish()
    }

    /// A frame's results.
    pub fn frame(faces: &'a [TrackedFace], crop: Option<&'a GrayImage>, fps: f32) -> Screen<'a> {
        Screen { faces, fps, crop, status: None }
    }

    /// A message alone: no face, bars or frame rate (the results it replaces are stale).
    pub fn status(message: &'a str) -> Screen<'a> {
        Screen { faces: &[], fps: 0.0, crop: None, status: Some(message) }
    }
}

/// Short names that fit a 128-pixel-wide panel.
fn short(e: Emotion) -> &'static str {
    match e {
        Emotion::Angry => "ang",
        Emotion::Disgust => "dis",
        Emotion::Fear => "fea",
        Emotion::Happy => "hap",
        Emotion::Sad => "sad",
        Emotion::Surprise => "sur",
        Emotion::Neutral => "neu",
    }
}

/// A horizontal confidence bar: a 1-px outline `width` × `height` at `top_left`, filled from the
/// left in proportion to `value` (0..=1).
pub fn confidence_bar<D: DrawTarget>(
    target: &mut D,
    top_left: Point,
    width: u32,
    height: u32,
    value: f32,
    color: D::Color,
) -> Result<(), D::Error> {
    Rectangle::new(top_left, Size::new(width, height))
        .into_styled(PrimitiveStyle::with_stroke(color, 1))
        .draw(target)?;
    let inner = width.saturating_sub(2);
    let filled = (value.clamp(0.0, 1.0) * inner as f32).round() as u32;
    if filled > 0 && height > 2 {
        Rectangle::new(top_left + Point::new(1, 1), Size::new(filled, height - 2))
            .into_styled(PrimitiveStyle::with_fill(color))
            .draw(target)?;
    }
    Ok(())
}

fn text<D: DrawTarget>(
    target: &mut D,
    s: &str,
    at: Point,
    font: &MonoFont,
    color: D::Color,
    align: Alignment,
) -> Result<(), D::Error> {
    let style = TextStyleBuilder::new().alignment(align).baseline(Baseline::Top).build();
    Text::with_text_style(s, at, MonoTextStyle::new(font, color), style).draw(target)?;
    Ok(())
}

/// The main line: `happy 93%` (`?` when the smoothed label is uncertain) or `no face`.
fn headline(s: &Screen) -> String {
    match s.faces.first() {
        Some(f) => format!("{}{} {:.0}%", f.label, if f.uncertain { "?" } else { "" }, f.confidence * 100.0),
        None => "no face".into(),
    }
}

/// Draws `s` over the whole target (cleared first).
pub fn draw_screen<D>(target: &mut D, s: &Screen) -> Result<(), D::Error>
where
    D: DrawTarget + OriginDimensions,
    D::Color: ScreenColor,
{
    target.clear(D::Color::background())?;
    let size = target.size();
    if size.width >= 160 && size.height >= 120 {
        draw_large(target, s, size)
    } else {
        draw_compact(target, s, size)
    }
}

fn draw_compact<D>(target: &mut D, s: &Screen, size: Size) -> Result<(), D::Error>
where
    D: DrawTarget,
    D::Color: ScreenColor,
{
    let fg = D::Color::foreground();
    let (w, h) = (size.width as i32, size.height as i32);
    if let Some(status) = s.status {
        return text(target, status, Point::new(w / 2, h / 2 - 5), &FONT_6X10, fg, Alignment::Center);
    }
    text(target, &headline(s), Point::zero(), &FONT_6X10, fg, Alignment::Left)?;
    let mut shown = format!("{}fps", rate(s.fps));
    if s.faces.len() > 1 {
        shown.push_str(&format!(" x{}", s.faces.len()));
    }
    text(target, &shown, Point::new(w - 1, 0), &FONT_4X6, fg, Alignment::Right)?;
    let Some(face) = s.faces.first() else { return Ok(()) };
    // Rows of "abc [bar]" under the 11-px headline: all seven emotions where 6-px rows fit
    // (128×64), else the most probable ones (128×32: three).
    let top = 11;
    let mut rows: Vec<usize> = (0..Emotion::ALL.len()).collect();
    if (h - top) / 7 < 6 {
        rows.sort_by(|a, b| face.smoothed[*b].total_cmp(&face.smoothed[*a]));
        rows.truncate(((h - top) / 6).max(1) as usize);
    }
    let row = ((h - top) / rows.len() as i32).max(1);
    for (r, &i) in rows.iter().enumerate() {
        let e = Emotion::ALL[i];
        let y = top + r as i32 * row;
        text(target, short(e), Point::new(0, y), &FONT_4X6, fg, Alignment::Left)?;
        confidence_bar(
            target,
            Point::new(14, y),
            (w - 14) as u32,
            (row - 1).max(1) as u32,
            face.smoothed[i],
            D::Color::emotion(e),
        )?;
    }
    Ok(())
}

fn draw_large<D>(target: &mut D, s: &Screen, size: Size) -> Result<(), D::Error>
where
    D: DrawTarget,
    D::Color: ScreenColor,
{
    let fg = D::Color::foreground();
    let (w, h) = (size.width as i32, size.height as i32);
    if let Some(status) = s.status {
        return text(target, status, Point::new(w / 2, h / 2 - 10), &FONT_10X20, fg, Alignment::Center);
    }
    // Face crop in a square at the top left (nearest-neighbour scaled).
    let side = (w / 2).min(h - 24 - 7 * 14).max(0) as u32;
    if let (Some(crop), true) = (s.crop, side > 0) {
        let (cw, ch) = crop.dimensions();
        if cw > 0 && ch > 0 {
            // Each screen column's crop column, worked out once (not per pixel).
            let columns: Vec<u32> = (0..side).map(|x| x * cw / side).collect();
            let columns = &columns;
            let colors = (0..side).flat_map(|y| {
                let cy = y * ch / side;
                columns.iter().zip(0..).map(move |(&cx, x)| D::Color::gray(crop.get_pixel(cx, cy)[0], x, y))
            });
            target.fill_contiguous(&Rectangle::new(Point::zero(), Size::new(side, side)), colors)?;
        }
    }
    let right = side as i32 + 8;
    let label_color = s.faces.first().map(|f| D::Color::emotion(f.label)).unwrap_or(fg);
    text(target, &headline(s), Point::new(right, 4), &FONT_10X20, label_color, Alignment::Left)?;
    text(target, &format!("{} fps", rate(s.fps)), Point::new(right, 30), &FONT_6X10, fg, Alignment::Left)?;
    let count = match s.faces.len() {
        1 => "1 face".to_string(),
        n => format!("{n} faces"),
    };
    text(target, &count, Point::new(right, 44), &FONT_6X10, fg, Alignment::Left)?;
    let Some(face) = s.faces.first() else { return Ok(()) };
    let top = side as i32 + 8;
    let row = ((h - top) / 7).clamp(8, 24);
    for (i, e) in Emotion::ALL.iter().enumerate() {
        let y = top + i as i32 * row;
        text(target, e.name(), Point::new(0, y + (row - 10) / 2), &FONT_6X10, fg, Alignment::Left)?;
        let pct = format!("{:3.0}%", face.smoothed[i] * 100.0);
        text(target, &pct, Point::new(w - 1, y + (row - 10) / 2), &FONT_6X10, fg, Alignment::Right)?;
        let bar_w = (w - 56 - 30).max(4) as u32;
        confidence_bar(
            target,
            Point::new(56, y + 1),
            bar_w,
            (row - 3).max(2) as u32,
            face.smoothed[i],
            D::Color::emotion(*e),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::mock_display::MockDisplay;

    #[test]
    fn confidence_bar_fills_in_proportion() {
        // A 10×4 bar at 50%: outline, then 4 of the 8 inner columns filled.
        let mut d: MockDisplay<BinaryColor> = MockDisplay::new();
        confidence_bar(&mut d, Point::zero(), 10, 4, 0.5, BinaryColor::On).unwrap();
        d.assert_pattern(&[
            "##########", //
            "#####    #",
            "#####    #",
            "##########",
        ]);
        let mut d: MockDisplay<BinaryColor> = MockDisplay::new();
        confidence_bar(&mut d, Point::zero(), 6, 3, 1.0, BinaryColor::On).unwrap();
        d.assert_pattern(&["######", "######", "######"]);
        let mut d: MockDisplay<BinaryColor> = MockDisplay::new();
        confidence_bar(&mut d, Point::zero(), 6, 3, 0.0, BinaryColor::On).unwrap();
        d.assert_pattern(&["######", "#    #", "######"]);
    }

    #[test]
    fn dither_keeps_the_mean_gray_level() {
        // Over a 4×4 tile the Bayer dither turns level v into about v/255 of the pixels on.
        for v in [0u8, 64, 128, 192, 255] {
            let on = (0..16).filter(|i| BinaryColor::gray(v, i % 4, i / 4) == BinaryColor::On).count();
            let want = v as f32 / 255.0 * 16.0;
            assert!((on as f32 - want).abs() <= 1.0, "level {v}: {on} of 16 on");
        }
    }
}
