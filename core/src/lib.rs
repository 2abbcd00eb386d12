//! fer-core: the one source of truth shared by the host trainer and the on-board program, so the
//! two cannot drift apart.
//!
//! - [`Emotion`]: the seven emotions in FER-2013 order, and mappings from CK+ and face-api labels.
//! - [`manifest::ModelManifest`]: the JSON file beside every ONNX model (input spec, labels,
//!   quantization, provenance, metrics, SHA-256).
//! - [`preprocess`]: face crop with margin → gray/RGB → resize → normalise → NCHW `f32`.
//! - [`board::BoardConfig`]: the per-board TOML schema.
//! - [`tract`]: tract's ONNX loader, with the kernel choices every fer-edge plan shares.
//!
//! ```
//! use fer_core::{Emotion, preprocess::{InputSpec, ColorMode, ResizeMethod, Normalisation, FaceBox}};
//! let spec = InputSpec {
//!     channels: 1, height: 48, width: 48, color: ColorMode::Gray,
//!     resize: ResizeMethod::Bilinear, normalisation: Normalisation::unit(), face_margin: 0.1,
//! };
//! let frame = image::DynamicImage::new_rgb8(640, 480);
//! let batch = spec.preprocess_batch(&frame, &[FaceBox { x: 100.0, y: 80.0, w: 120.0, h: 120.0 }]).unwrap();
//! assert_eq!(batch.shape, [1, 1, 48, 48]);
//! assert_eq!(Emotion::ALL[3], Emotion::Happy);
//! ```

pub mod board;
pub mod emotion;
pub mod manifest;
mod parse;
pub mod preprocess;
pub mod tract;

pub use emotion::{CkLabel, ContemptPolicy, Emotion, LabelError, LabelOrder, NUM_EMOTIONS};
pub use parse::FileError;
