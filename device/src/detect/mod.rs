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
}
