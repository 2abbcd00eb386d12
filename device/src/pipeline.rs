//! The per-frame pipeline: `detect -> classify -> track`, with stage timings.

use std::time::Instant;

use fer_core::board::DetectionConfig;
use fer_core::preprocess::{to_gray8, FaceBox};
use serde::Serialize;

use crate::classify::{Classifier, ClassifyError};
use crate::detect::{resize_bilinear, Detector};
use crate::source::Frame;
use crate::track::{Detection, TrackedFace, Tracker};

/// Milliseconds spent per stage on one frame.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimes {
    pub detect_ms: f64,
    pub classify_ms: f64,
    pub track_ms: f64,
}

/// The result for one frame.
#[derive(Debug, Clone, Serialize)]
pub struct FrameResult {
    pub frame: u64,
    pub source: String,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<TrackedFace>,
    pub timings: StageTimes,
}

/// How faces are found.
pub enum FaceFinder<D> {
    /// Run a detector (on a frame downscaled to `detection.detect_width`).
    Detect(D),
    /// The whole frame is one face (inputs that are already face crops, as FER-2013 images).
    WholeFrame,
}

/// Detection, classification and tracking for a stream of frames.
pub struct Pipeline<D, C> {
    pub finder: FaceFinder<D>,
    pub classifier: C,
    pub tracker: Tracker,
    pub detection: DetectionConfig,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl<D: Detector, C: Classifier> Pipeline<D, C> {
    /// Faces in `frame`, largest first, at most `detection.max_faces`.
    pub fn find_faces(&mut self, frame: &Frame) -> Vec<FaceBox> {
        let (w, h) = (frame.image.width(), frame.image.height());
        let mut boxes = match &mut self.finder {
            FaceFinder::WholeFrame => vec![FaceBox { x: 0.0, y: 0.0, w: w as f32, h: h as f32 }],
            FaceFinder::Detect(d) => {
                let gray = to_gray8(&frame.image);
                let dw = self.detection.detect_width;
                let s = if dw > 0 && w > dw { dw as f32 / w as f32 } else { 1.0 };
                let small =
                    if s < 1.0 { resize_bilinear(&gray, dw, ((h as f32 * s).round() as u32).max(1)) } else { gray };
                let min_face = ((self.detection.min_face as f32 * s).round() as u32).max(1);
                d.detect(&small, min_face)
                    .into_iter()
                    .map(|b| FaceBox { x: b.x / s, y: b.y / s, w: b.w / s, h: b.h / s })
                    .collect()
            }
        };
        boxes.sort_by(|a, b| (b.w * b.h).total_cmp(&(a.w * a.h)));
        boxes.truncate(self.detection.max_faces);
        boxes
    }

    /// Runs every stage on one frame.
    pub fn process(&mut self, frame: &Frame) -> Result<FrameResult, ClassifyError> {
        let t = Instant::now();
        let boxes = self.find_faces(frame);
        let detect_ms = ms(t);
        let t = Instant::now();
        let probs = self.classifier.classify(&frame.image, &boxes)?;
        let classify_ms = ms(t);
        let t = Instant::now();
        let dets: Vec<Detection> = boxes.iter().zip(probs).map(|(b, p)| Detection { bbox: *b, probs: p }).collect();
        let faces = self.tracker.update(&dets);
        Ok(FrameResult {
            frame: frame.index,
            source: frame.name.clone(),
            width: frame.image.width(),
            height: frame.image.height(),
            faces,
            timings: StageTimes { detect_ms, classify_ms, track_ms: ms(t) },
        })
    }
}
