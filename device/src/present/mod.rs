//! Presenting results. Drawing code is generic over embedded-graphics' `DrawTarget`, so the same
//! overlay renders into a PNG snapshot here and onto a display panel on the board.

use embedded_graphics::mono_font::{ascii::FONT_6X10, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use fer_core::Emotion;

use crate::track::TrackedFace;

pub mod panels;
pub mod screen;
mod threaded;

pub use panels::{open_display, PngPresenter, PresentError, Presenter};
pub use threaded::ThreadedPresenter;

/// An `image::RgbImage` as an embedded-graphics draw target (for PNG snapshots).
pub struct RgbCanvas(pub image::RgbImage);

impl OriginDimensions for RgbCanvas {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for RgbCanvas {
    type Color = Rgb888;
    type Error = std::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        let (w, h) = self.0.dimensions();
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < w && (p.y as u32) < h {
                self.0.put_pixel(p.x as u32, p.y as u32, image::Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }

    // Rectangles a row slice at a time (the defaults go through `draw_iter` a pixel at a time).

    fn fill_solid(&mut self, area: &Rectangle, color: Rgb888) -> Result<(), Self::Error> {
        let size = self.size();
        let rgb = [color.r(), color.g(), color.b()];
        for row in panels::area_rows(size, area, true).into_iter().flatten() {
            self.0.as_mut()[row.start * 3..row.end * 3].chunks_exact_mut(3).for_each(|p| p.copy_from_slice(&rgb));
        }
        Ok(())
    }

    fn clear(&mut self, color: Rgb888) -> Result<(), Self::Error> {
        let rgb = [color.r(), color.g(), color.b()];
        self.0.as_mut().chunks_exact_mut(3).for_each(|p| p.copy_from_slice(&rgb));
        Ok(())
    }
}

/// Colour of each emotion on colour screens.
pub fn emotion_color(e: Emotion) -> Rgb888 {
    match e {
        Emotion::Angry => Rgb888::new(230, 40, 40),
        Emotion::Disgust => Rgb888::new(120, 170, 40),
        Emotion::Fear => Rgb888::new(150, 80, 200),
        Emotion::Happy => Rgb888::new(250, 200, 30),
        Emotion::Sad => Rgb888::new(60, 120, 230),
        Emotion::Surprise => Rgb888::new(250, 130, 30),
        Emotion::Neutral => Rgb888::new(200, 200, 200),
    }
}

/// Draws each face's box and a `#id label 93%` tag (`?` when uncertain).
pub fn draw_faces<D: DrawTarget<Color = Rgb888>>(target: &mut D, faces: &[TrackedFace]) -> Result<(), D::Error> {
    for f in faces {
        let color = emotion_color(f.label);
        let b = &f.bbox;
        let rect =
            Rectangle::new(Point::new(b.x as i32, b.y as i32), Size::new(b.w.max(1.0) as u32, b.h.max(1.0) as u32));
        rect.into_styled(PrimitiveStyle::with_stroke(color, 2)).draw(target)?;
        let tag = format!("#{} {}{} {:.0}%", f.id, f.label, if f.uncertain { "?" } else { "" }, f.confidence * 100.0);
        let y = (b.y as i32 - 11).max(0);
        Rectangle::new(Point::new(b.x as i32, y), Size::new(tag.len() as u32 * 6 + 2, 11))
            .into_styled(PrimitiveStyle::with_fill(color))
            .draw(target)?;
        Text::with_baseline(
            &tag,
            Point::new(b.x as i32 + 1, y),
            MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK),
            Baseline::Top,
        )
        .draw(target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::mock_display::MockDisplay;
    use fer_core::preprocess::FaceBox;

    #[test]
    fn box_outline_is_drawn_in_the_emotion_colour() {
        let face = TrackedFace {
            id: 1,
            bbox: FaceBox { x: 2.0, y: 20.0, w: 10.0, h: 8.0 },
            probs: [0.0; 7],
            smoothed: [0.0; 7],
            label: Emotion::Sad,
            confidence: 0.9,
            uncertain: false,
        };
        let mut canvas = RgbCanvas(image::RgbImage::new(64, 40));
        draw_faces(&mut canvas, std::slice::from_ref(&face)).unwrap();
        let sad = image::Rgb([60, 120, 230]);
        // Corners and edges of the 2-px stroke lie on the box; its inside stays black.
        assert_eq!(*canvas.0.get_pixel(2, 20), sad);
        assert_eq!(*canvas.0.get_pixel(11, 27), sad);
        assert_eq!(*canvas.0.get_pixel(7, 24), image::Rgb([0, 0, 0]));
        // The tag above the box is filled with the same colour.
        assert_eq!(*canvas.0.get_pixel(3, 10), sad);

        // Off-screen boxes are clipped, not a panic: MockDisplay checks out-of-bounds drawing.
        let mut mock: MockDisplay<Rgb888> = MockDisplay::new();
        mock.set_allow_out_of_bounds_drawing(true);
        mock.set_allow_overdraw(true);
        let far = TrackedFace { bbox: FaceBox { x: 50.0, y: 50.0, w: 30.0, h: 30.0 }, ..face };
        draw_faces(&mut mock, &[far]).unwrap();
        assert!(mock.affected_area().size.width > 0);
    }
}
