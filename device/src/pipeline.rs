//! The per-frame pipeline: `detect -> classify -> track`, with stage timings.

use std::time::Instant;

use fer_core::board::DetectionConfig;
use fer_core::preprocess::{crop_rect, to_gray8, to_gray8_region, FaceBox};
use image::GrayImage;
use serde::Serialize;

use crate::classify::{Classifier, ClassifyError};
use crate::detect::{resize_bilinear, Detector};
use crate::source::Frame;
use crate::track::{iou, Detection, TrackedFace, Tracker};

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
    /// Frames processed so far (drives `full_detect_every`).
    pub frames: u64,
}

impl<D, C> Pipeline<D, C> {
    pub fn new(finder: FaceFinder<D>, classifier: C, tracker: Tracker, detection: DetectionConfig) -> Self {
        Pipeline { finder, classifier, tracker, detection, frames: 0 }
    }
}

/// Runs `d` on `gray` scaled by `s` (≤ 1) for faces `min_face` to `max_face` wide (in `gray`'s
/// pixels) and maps the boxes back, offset by `(ox, oy)`.
fn detect_scaled<D: Detector>(
    d: &mut D,
    gray: &GrayImage,
    s: f32,
    (min_face, max_face): (f32, Option<f32>),
    (ox, oy): (f32, f32),
) -> Vec<FaceBox> {
    let small = if s < 1.0 {
        let (w, h) =
            (((gray.width() as f32 * s).round() as u32).max(1), ((gray.height() as f32 * s).round() as u32).max(1));
        resize_bilinear(gray, w, h)
    } else {
        gray.clone()
    };
    let s = if s < 1.0 { small.width() as f32 / gray.width() as f32 } else { 1.0 };
    let px = |size: f32| ((size * s).round() as u32).max(1);
    d.detect(&small, px(min_face), max_face.map(px))
        .into_iter()
        .map(|b| FaceBox { x: ox + b.x / s, y: oy + b.y / s, w: b.w / s, h: b.h / s })
        .collect()
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
                let cfg = &self.detection;
                let tracked = self.tracker.boxes();
                let full = self.frames.is_multiple_of(cfg.full_detect_every.max(1) as u64) || tracked.is_empty();
                if full {
                    let gray = to_gray8(&frame.image);
                    let s = if cfg.detect_width > 0 && w > cfg.detect_width {
                        cfg.detect_width as f32 / w as f32
                    } else {
                        1.0
                    };
                    detect_scaled(d, &gray, s, (cfg.min_face as f32, None), (0.0, 0.0))
                } else {
                    // Between full passes, look only around the tracked faces: a region twice the
                    // face's size, scaled so the face is about 48 px (twice the cascade window),
                    // for faces 0.8 to 1.25 times the tracked size (0.6 cost 1.26x the
                    // instructions on aarch64; the levels above 1.25 were 17 % of the cascade's
                    // work on a face and found nothing: BENCHMARKS.md); a face that shrank or
                    // grew more waits for a full pass.
                    let mut found: Vec<FaceBox> = Vec::new();
                    for b in tracked {
                        let Ok(r) = crop_rect(w, h, b, 0.5) else { continue };
                        // Only the region is converted to gray (in place), not the whole frame.
                        let roi = to_gray8_region(&frame.image, &r);
                        let s = (48.0 / b.w).min(1.0);
                        let sizes = (0.8 * b.w, Some(1.25 * b.w));
                        for f in detect_scaled(d, &roi, s, sizes, (r.x0 as f32, r.y0 as f32)) {
                            if !found.iter().any(|g| iou(g, &f) > 0.5) {
                                found.push(f);
                            }
                        }
                    }
                    found
                }
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
        self.frames += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::Probs;
    use fer_core::board::TrackingConfig;
    use image::{DynamicImage, Luma};

    /// Finds the bounding box of bright pixels, and remembers the sizes of the images it saw and
    /// the face sizes it was asked for.
    struct BrightSquare(Vec<((u32, u32), u32, Option<u32>)>);
    impl Detector for BrightSquare {
        fn detect(&mut self, gray: &GrayImage, min_face: u32, max_face: Option<u32>) -> Vec<FaceBox> {
            self.0.push((gray.dimensions(), min_face, max_face));
            let pts: Vec<(u32, u32)> =
                gray.enumerate_pixels().filter(|p| p.2 .0[0] > 128).map(|p| (p.0, p.1)).collect();
            let Some(x0) = pts.iter().map(|p| p.0).min() else { return vec![] };
            let x1 = pts.iter().map(|p| p.0).max().unwrap() + 1;
            let y0 = pts.iter().map(|p| p.1).min().unwrap();
            let y1 = pts.iter().map(|p| p.1).max().unwrap() + 1;
            vec![FaceBox { x: x0 as f32, y: y0 as f32, w: (x1 - x0) as f32, h: (y1 - y0) as f32 }]
        }
    }

    struct Uniform;
    impl Classifier for Uniform {
        fn classify(&mut self, _f: &DynamicImage, faces: &[FaceBox]) -> Result<Vec<Probs>, ClassifyError> {
            Ok(vec![[1.0 / 7.0; 7]; faces.len()])
        }
    }

    fn frame(index: u64, x: u32) -> Frame {
        let img = GrayImage::from_fn(640, 480, |px, py| {
            Luma([if (x..x + 80).contains(&px) && (100..180).contains(&py) { 255 } else { 0 }])
        });
        Frame { index, name: format!("f{index}"), image: DynamicImage::ImageLuma8(img) }
    }

    #[test]
    fn full_pass_downscaled_then_roi_passes_follow_the_face() {
        let det = DetectionConfig { detect_width: 320, full_detect_every: 3, ..Default::default() };
        let mut p = Pipeline::new(
            FaceFinder::Detect(BrightSquare(vec![])),
            Uniform,
            Tracker::new(TrackingConfig::default()),
            det,
        );
        let ids: Vec<Vec<FaceBox>> = (0..4u64)
            .map(|i| p.process(&frame(i, 200 + 10 * i as u32)).unwrap().faces.iter().map(|f| f.bbox).collect())
            .collect();
        let FaceFinder::Detect(BrightSquare(seen)) = &p.finder else { unreachable!() };
        // Frame 0: whole frame at 320 px, faces from min_face (halved) up; frames 1, 2: only the
        // region around the face (2x the 80-px face, scaled to 48/80), faces 0.8-1.25x the
        // tracked one's width (64-100 px, 38-60 at 0.6); frame 3: full pass again.
        let min = (p.detection.min_face as f32 * 0.5).round() as u32;
        assert_eq!(seen[0], ((320, 240), min, None));
        assert_eq!(seen[1], ((96, 96), 38, Some(60)), "ROI 160x160 scaled by 0.6");
        assert_eq!(seen[2], ((96, 96), 38, Some(60)));
        assert_eq!(seen[3], ((320, 240), min, None));
        for (i, boxes) in ids.iter().enumerate() {
            assert_eq!(boxes.len(), 1, "frame {i}");
            let b = boxes[0];
            let x = 200.0 + 10.0 * i as f32;
            assert!(
                (b.x - x).abs() <= 3.0 && (b.y - 100.0).abs() <= 3.0 && (b.w - 80.0).abs() <= 4.0,
                "frame {i}: {b:?}"
            );
        }
    }
}
