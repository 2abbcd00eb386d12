//! Frame sources: where frames come from. All implement [`FrameSource`]. The camera's
//! reconnection logic is in [`camera`]; its V4L2 driver (nokhwa) in `v4l` behind the `camera`
//! feature.
//!
//! ```
//! use fer_device::source::{Frame, FrameSource, SourceError};
//! /// A source that yields one gray frame.
//! struct Once(bool);
//! impl FrameSource for Once {
//!     fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
//!         if std::mem::replace(&mut self.0, true) { return Ok(None); }
//!         Ok(Some(Frame { index: 0, name: "blank".into(), image: image::DynamicImage::new_luma8(64, 48) }))
//!     }
//!     fn describe(&self) -> String { "one blank frame".into() }
//! }
//! ```

pub mod camera;
mod folder;
mod mjpeg;
#[cfg(feature = "camera")]
pub mod v4l;

use std::path::PathBuf;

pub use folder::{FolderSource, SingleImage};
pub use mjpeg::MjpegSource;

/// One frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// 0-based frame counter of the source.
    pub index: u64,
    /// File name, or `stream#N` / `camera#N`.
    pub name: String,
    pub image: image::DynamicImage,
}

/// Source errors. [`SourceError::Frame`] concerns one frame only: the source can go on.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A frame could not be decoded; the next call moves on to the next frame.
    #[error("{path}: {message}")]
    Frame { path: PathBuf, message: String },
    /// The source cannot produce frames at all.
    #[error("{path}: {message}")]
    Fatal { path: PathBuf, message: String },
}

/// A sequence of frames.
pub trait FrameSource {
    /// The next frame; `Ok(None)` at the end of a finite source.
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;
    /// Human-readable description for logs.
    fn describe(&self) -> String;
}

/// Decodes an in-memory PNG/JPEG, naming `path` in errors.
pub(crate) fn decode(bytes: &[u8], path: &std::path::Path) -> Result<image::DynamicImage, SourceError> {
    image::load_from_memory(bytes)
        .map_err(|e| SourceError::Frame { path: path.to_path_buf(), message: format!("not a decodable image: {e}") })
}
