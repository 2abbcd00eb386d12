//! Face detection. [`HaarCascade`] evaluates OpenCV's own cascade XML files (Debian's
//! `opencv-data`) in Rust; [`Detector`] is the trait the pipeline uses.
//!
//! ```
//! use fer_core::preprocess::FaceBox;
//! use fer_device::detect::Detector;
//! /// Reports the whole frame as one face (for images that are already face crops).
//! struct WholeFrame;
//! impl Detector for WholeFrame {
//!     fn detect(&mut self, gray: &image::GrayImage, _min_face: u32, _max_face: Option<u32>) -> Vec<FaceBox> {
//!         vec![FaceBox { x: 0.0, y: 0.0, w: gray.width() as f32, h: gray.height() as f32 }]
//!     }
//! }
//! ```

mod haar;

pub use haar::{group_rectangles, CascadeError, DetectParams, HaarCascade, Rect};

use fer_core::preprocess::FaceBox;

pub(crate) use haar::resize_bilinear;

/// Finds faces in a gray frame.
pub trait Detector {
    /// Faces at least `min_face` and at most `max_face` (if given) pixels wide, in `gray`'s pixel
    /// coordinates.
    fn detect(&mut self, gray: &image::GrayImage, min_face: u32, max_face: Option<u32>) -> Vec<FaceBox>;
}
