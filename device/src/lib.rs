//! fer-device: the on-board program of fer-edge. Frames flow
//! `source -> detect -> classify -> track -> present`; every stage is behind a trait so the whole
//! pipeline runs on files, under qemu-user, and with fakes in tests.
//!
//! [`source`] (V4L2 camera, image folder, single image, MJPEG stream), [`detect`] (OpenCV's
//! Haar and LBP cascades evaluated in Rust), [`classify`] (tract with fer-edge's graph rewrites
//! and kernels), [`track`] (IoU tracking, EMA/window smoothing with hysteresis), [`present`]
//! (SSD1306, ST7789/ILI9341, framebuffer, PNG), [`pipeline`] (the frame loop, JSON lines), and
//! [`onnxruntime`] (Microsoft's runtime loaded at run time, the benchmarks' peer), and [`access`]
//! (can this process open the board's devices, and which group would let it), [`notify`]
//! (systemd's readiness, watchdog and status notifications).
//!
//! ```
//! use fer_core::board::TrackingConfig;
//! use fer_core::preprocess::FaceBox;
//! use fer_device::track::{Detection, Tracker};
//! let mut tracker = Tracker::new(TrackingConfig::default());
//! let mut probs = [0.0; 7];
//! probs[3] = 0.9;
//! let faces = tracker.update(0, &[Detection { bbox: FaceBox { x: 0.0, y: 0.0, w: 50.0, h: 50.0 }, probs }]);
//! assert_eq!(faces[0].label, fer_core::Emotion::Happy);
//! ```

pub mod access;
pub mod classify;
pub mod detect;
pub mod notify;
pub mod onnxruntime;
pub mod pipeline;
mod pool;
pub mod present;
pub mod source;
pub mod still;
pub mod track;
mod worker;
