//! Face detection. [`HaarCascade`] evaluates OpenCV's own cascade XML files (Debian's
//! `opencv-data`) in Rust; [`Detector`] is the trait the pipeline uses.
//!
//! ```
//! use fer_core::preprocess::FaceBox;
//! use fer_device::detect::{Detector, GrayView, Search};
//! /// Reports the whole frame as one face (for images that are already face crops).
//! struct WholeFrame;
//! impl Detector for WholeFrame {
//!     fn detect(&mut self, gray: GrayView<'_>, _search: Search) -> Vec<FaceBox> {
//!         let ((x, y), (w, h)) = (gray.origin, gray.image.dimensions());
//!         vec![FaceBox { x: x as f32, y: y as f32, w: w as f32, h: h as f32 }]
//!     }
//! }
//! ```

mod haar;

pub use haar::{group_rectangles, CascadeError, DetectParams, HaarCascade, Rect};

use fer_core::preprocess::FaceBox;

pub(crate) use haar::resize_bilinear_part;

use image::GrayImage;

/// A gray image, or a part of one: `image` holds the pixels from `origin` of an image `full`
/// wide and high.
#[derive(Debug, Clone, Copy)]
pub struct GrayView<'a> {
    pub image: &'a GrayImage,
    pub origin: (u32, u32),
    pub full: (u32, u32),
}

impl<'a> GrayView<'a> {
    /// All of `image`.
    pub fn whole(image: &'a GrayImage) -> Self {
        GrayView { image, origin: (0, 0), full: image.dimensions() }
    }
}

impl<'a> From<&'a GrayImage> for GrayView<'a> {
    fn from(image: &'a GrayImage) -> Self {
        GrayView::whole(image)
    }
}

/// What a detector looks for, in pixels of the full image.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Search {
    /// Smallest face width.
    pub min_face: u32,
    /// Largest face width, if any.
    pub max_face: Option<u32>,
    /// Only faces centred in this rectangle, if given (the pipeline's passes around a tracked
    /// face).
    pub centres: Option<Rect>,
}

/// Finds faces in a gray frame.
pub trait Detector {
    /// The faces of `search`, in the full image's pixel coordinates. Given a part of an image, a
    /// detector should find what it finds there in the whole image (the same scales and window
    /// positions), so that the pipeline's passes over regions around tracked faces agree with
    /// its passes over whole frames.
    fn detect(&mut self, gray: GrayView<'_>, search: Search) -> Vec<FaceBox>;

    /// [`Detector::detect`] on a whole image, one of a series: `changed` marks where the image
    /// may differ from the one of the last call of this method (`None`: anywhere). A detector
    /// that keeps what it saw may look again only where the image changed, and find what it
    /// found elsewhere; this one searches all of it.
    fn detect_changed(&mut self, gray: GrayView<'_>, search: Search, changed: Option<&Changed>) -> Vec<FaceBox> {
        let _ = changed;
        self.detect(gray, search)
    }
}

/// Where a frame changed: a grid of `cell`-pixel square cells from its top-left corner, each
/// changed or not (the pipeline's still blocks), seen in the frame resized to `view` (bilinearly,
/// as detection resizes it). Pixels outside the grid (a last partial row or column of cells)
/// count as changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    frame: (u32, u32),
    view: (u32, u32),
    cell: u32,
    cols: usize,
    rows: usize,
    /// Changed cells above and left of each grid corner: `(rows + 1) × (cols + 1)`.
    counts: Vec<u32>,
}

impl Changed {
    /// A `frame`-sized frame's cells, `cols` a row, row by row: `changed[i]` whether cell `i`
    /// changed.
    pub fn new(frame: (u32, u32), cell: u32, cols: usize, changed: &[bool]) -> Changed {
        let rows = changed.len() / cols.max(1);
        let mut counts = vec![0u32; (rows + 1) * (cols + 1)];
        for r in 0..rows {
            let mut line = 0;
            for c in 0..cols {
                line += changed[r * cols + c] as u32;
                counts[(r + 1) * (cols + 1) + c + 1] = counts[r * (cols + 1) + c + 1] + line;
            }
        }
        Changed { frame, view: frame, cell, cols, rows, counts }
    }

    /// The same cells seen in the frame resized to `view`.
    pub fn seen_at(self, view: (u32, u32)) -> Changed {
        Changed { view, ..self }
    }

    /// The size of the image the cells are seen in.
    pub fn view(&self) -> (u32, u32) {
        self.view
    }

    /// The first and last cell (columns on `axis` 0, rows on 1) under the non-empty range `r` of
    /// view pixels, counting the frame pixels each is resized from; `None` if one lies outside
    /// the grid.
    pub fn cells(&self, axis: usize, r: std::ops::Range<u32>) -> Option<(u32, u32)> {
        let (view, frame, n) = match axis {
            0 => (self.view.0, self.frame.0, self.cols),
            _ => (self.view.1, self.frame.1, self.rows),
        };
        let (first, last) = (r.start.min(view - 1), (r.end.max(r.start + 1) - 1).min(view - 1));
        let (first, last) = haar::source_span(first, last, view, frame);
        let (c0, c1) = (first / self.cell, last / self.cell);
        ((c1 as usize) < n).then_some((c0, c1))
    }

    /// Into `out`: for each column boundary from the left, how many of the columns before it
    /// have a changed cell in rows `r.0..=r.1`.
    pub fn columns_changed(&self, r: (u32, u32), out: &mut Vec<u32>) {
        let n = |r: u32, c: usize| self.counts[r as usize * (self.cols + 1) + c];
        out.clear();
        out.push(0);
        for c in 0..self.cols {
            let here = n(r.1 + 1, c + 1) + n(r.0, c) > n(r.0, c + 1) + n(r.1 + 1, c);
            out.push(out[c] + here as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_cells_by_hand() {
        // 64×48 frame, 16-px cells: 4×3; cells (1, 0) and (3, 2) changed.
        let mut flags = vec![false; 12];
        flags[1] = true;
        flags[2 * 4 + 3] = true;
        let c = Changed::new((64, 48), 16, 4, &flags);
        let mut cols = Vec::new();
        c.columns_changed((0, 0), &mut cols);
        assert_eq!(cols, [0, 0, 1, 1, 1]);
        c.columns_changed((1, 2), &mut cols);
        assert_eq!(cols, [0, 0, 0, 0, 1]);
        c.columns_changed((0, 2), &mut cols);
        assert_eq!(cols, [0, 0, 1, 1, 2]);
        // Seen at the frame's size: pixels are cells' own.
        assert_eq!(c.cells(0, 0..16), Some((0, 0)));
        assert_eq!(c.cells(0, 15..17), Some((0, 1)));
        assert_eq!(c.cells(1, 40..48), Some((2, 2)));
        // Seen at half size: view pixel d is resized from frame pixels (d + 0.5) * 2 - 0.5 and
        // the next: 5 from 10, 11; 7 from 14, 15; 8 from 16, 17.
        let half = c.clone().seen_at((32, 24));
        assert_eq!(half.view(), (32, 24));
        assert_eq!(half.cells(0, 5..8), Some((0, 0)));
        assert_eq!(half.cells(0, 7..9), Some((0, 1)));
        assert_eq!(half.cells(1, 0..1), Some((0, 0)));
        // Twice the size: 0 from 0 and 1 (-0.25, clamped), 63 from 31.25: 31 and 32.
        let double = c.clone().seen_at((128, 96));
        assert_eq!(double.cells(0, 0..1), Some((0, 0)));
        assert_eq!(double.cells(0, 63..64), Some((1, 2)));
        // A 40-px-wide frame has 2 whole cells a row; pixels 32-39 lie outside the grid.
        let narrow = Changed::new((40, 16), 16, 2, &[false, false]);
        assert_eq!(narrow.cells(0, 0..32), Some((0, 1)));
        assert_eq!(narrow.cells(0, 30..33), None);
    }
}
