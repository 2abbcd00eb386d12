//! The per-frame pipeline: `detect -> classify -> track`, with stage timings.

use std::time::Instant;

use fer_core::board::DetectionConfig;
use fer_core::preprocess::{crop_rect, to_gray8, to_gray8_region, FaceBox};
use serde::Serialize;

use crate::classify::{Classifier, ClassifyError};
use crate::detect::{resize_bilinear_part, Detector, GrayView, Rect, Search};
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
    /// A region pass lost a tracked face: the next frame gets a full pass.
    lost: bool,
}

impl<D, C> Pipeline<D, C> {
    pub fn new(finder: FaceFinder<D>, classifier: C, tracker: Tracker, detection: DetectionConfig) -> Self {
        Pipeline { finder, classifier, tracker, detection, frames: 0, lost: false }
    }
}

/// The size of the image that detection runs on for `w`×`h` frames: `detect_width` wide when
/// that is narrower than the frame.
fn detection_size(w: u32, h: u32, cfg: &DetectionConfig) -> (u32, u32) {
    if cfg.detect_width > 0 && w > cfg.detect_width {
        let s = cfg.detect_width as f32 / w as f32;
        (((w as f32 * s).round() as u32).max(1), ((h as f32 * s).round() as u32).max(1))
    } else {
        (w, h)
    }
}

/// Runs `d` on `gray` (a frame, or a region of one) resized as the whole frame is resized to
/// `size` for detection, for the faces of `search` (in frame pixels), and maps the boxes back to
/// frame pixels. A region sees the pixels and windows that the whole frame's pass sees there, so
/// its faces are found at the boxes that pass finds.
fn detect_in<D: Detector>(d: &mut D, gray: GrayView, size: (u32, u32), search: Search) -> Vec<FaceBox> {
    let resized;
    let view = if size == gray.full {
        gray
    } else {
        let want = [0..size.0, 0..size.1];
        let Some((image, origin)) = resize_bilinear_part(gray, size.0, size.1, 1, want) else { return Vec::new() };
        resized = image;
        GrayView { image: &resized, origin, full: size }
    };
    let s = size.0 as f32 / gray.full.0 as f32;
    let px = |size: u32| ((size as f32 * s).round() as u32).max(1);
    let centres = search.centres.map(|c| {
        let (x0, y0) = ((c.x as f32 * s).floor() as i32, (c.y as f32 * s).floor() as i32);
        let (x1, y1) = (((c.x + c.w) as f32 * s).ceil() as i32, ((c.y + c.h) as f32 * s).ceil() as i32);
        Rect { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }
    });
    d.detect(view, Search { min_face: px(search.min_face), max_face: search.max_face.map(px), centres })
        .into_iter()
        .map(|b| FaceBox { x: b.x / s, y: b.y / s, w: b.w / s, h: b.h / s })
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
                let lost = std::mem::take(&mut self.lost);
                let full =
                    self.frames.is_multiple_of(cfg.full_detect_every.max(1) as u64) || tracked.is_empty() || lost;
                let size = detection_size(w, h, cfg);
                if full {
                    let gray = to_gray8(&frame.image);
                    detect_in(d, GrayView::whole(&gray), size, Search { min_face: cfg.min_face, ..Default::default() })
                } else {
                    // Between full passes, look only around the tracked faces: windows centred
                    // within 0.2 face widths of the face's centre, for faces 0.6 to 1.35 times its
                    // width, at the full pass's scale. These are the full pass's pyramid pixels
                    // and windows there, and the sizes and places of the hits it groups into the
                    // face (Haar's 0.65-1.27x, LBP's 0.68-1.32x on the astronaut), so the box is
                    // the full pass's (it drifted when regions were rescaled to a 48-px face),
                    // within a detection pixel on a face moving 8 % of its width a frame (test
                    // region_passes_keep_the_full_pass_box; costs in BENCHMARKS.md). A face that
                    // moved, shrank or grew more is lost here, and the next frame gets a full pass.
                    let mut found: Vec<FaceBox> = Vec::new();
                    for b in tracked {
                        let (cx, cy, t) = (b.x + b.w / 2.0, b.y + b.h / 2.0, 0.2 * b.w);
                        let centres = Rect {
                            x: (cx - t).floor() as i32,
                            y: (cy - t).floor() as i32,
                            w: (2.0 * t).ceil() as i32,
                            h: (2.0 * t).ceil() as i32,
                        };
                        // The region under those windows: 0.2 + 1.35 / 2 widths from the
                        // centre, 0.375 beyond the box, and 4 px of the detection image (`px`
                        // frame pixels each) for the rounding of the centres and sizes to them
                        // and for the resize's second source pixel; only it is converted to gray.
                        let px = w as f32 / size.0 as f32;
                        let Ok(r) = crop_rect(w, h, b, 0.375 + 4.0 * px / b.w) else { continue };
                        let roi = to_gray8_region(&frame.image, &r);
                        let view = GrayView { image: &roi, origin: (r.x0, r.y0), full: (w, h) };
                        let search = Search {
                            // Never below the full pass's smallest face.
                            min_face: ((0.6 * b.w).round() as u32).max(cfg.min_face),
                            max_face: Some((1.35 * b.w).round() as u32),
                            centres: Some(centres),
                        };
                        let faces = detect_in(d, view, size, search);
                        self.lost |= faces.is_empty();
                        for f in faces {
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
    use image::{DynamicImage, GrayImage, Luma};

    /// Finds the bounding box of bright pixels, and remembers the sizes of the images it saw and
    /// the face sizes and centres it was asked for.
    struct BrightSquare(Vec<((u32, u32), Search)>, Vec<(u32, u32)>);
    impl Detector for BrightSquare {
        fn detect(&mut self, gray: GrayView<'_>, search: Search) -> Vec<FaceBox> {
            self.0.push((gray.image.dimensions(), search));
            self.1.push(gray.origin);
            let (ox, oy) = gray.origin;
            let pts: Vec<(u32, u32)> =
                gray.image.enumerate_pixels().filter(|p| p.2 .0[0] > 128).map(|p| (ox + p.0, oy + p.1)).collect();
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
    fn full_pass_downscaled_then_region_passes_follow_the_face_until_they_lose_it() {
        let det = DetectionConfig { detect_width: 320, full_detect_every: 3, min_face: 56, ..Default::default() };
        let mut p = Pipeline::new(
            FaceFinder::Detect(BrightSquare(vec![], vec![])),
            Uniform,
            Tracker::new(TrackingConfig::default()),
            det,
        );
        // The face moves 10 px a frame, then jumps 200 px at frame 4.
        let xs = [200, 210, 220, 230, 430, 440];
        let ids: Vec<Vec<FaceBox>> = (0..6)
            .map(|i| p.process(&frame(i as u64, xs[i])).unwrap().faces.iter().map(|f| f.bbox).collect())
            .collect();
        let FaceFinder::Detect(BrightSquare(seen, origins)) = &p.finder else { unreachable!() };
        // Frame 0: whole frame at 320 px, faces from min_face (halved) up; frames 1, 2: only the
        // region around the face (the 80-px face and 0.375 of it + 4 detection pixels, 8 px, on
        // each side: 156 px, 78 at 1/2), at the full pass's scale (1/2), faces 0.6-1.35x the
        // tracked one's width (48-108 px) but not below min_face (56-108 px, 28-54 at 1/2),
        // centred within 0.2 of its width (16 px, 8 at 1/2) of its centre; frame 3: full pass
        // again; frame 4: the region pass loses the face that jumped, so frame 5 gets a full
        // pass before its turn.
        let min = (p.detection.min_face as f32 * 0.5).round() as u32;
        let full = ((320, 240), Search { min_face: min, ..Default::default() });
        assert_eq!(seen.len(), 6);
        for (i, x) in [(1, 240), (2, 250), (4, 270)] {
            let c = Rect { x: x / 2 - 8, y: 140 / 2 - 8, w: 16, h: 16 };
            let search = Search { min_face: 28, max_face: Some(54), centres: Some(c) };
            assert_eq!(seen[i], ((78, 78), search), "frame {i}: ROI 156x156 scaled by 1/2");
            // The region holds every window searched: the largest, centred anywhere in `centres`.
            let (half, (ox, oy)) = (54 / 2, origins[i]);
            assert!(ox as i32 <= c.x - half && c.x + c.w + half <= (ox + 78) as i32, "frame {i}: x from {ox}");
            assert!(oy as i32 <= c.y - half && c.y + c.h + half <= (oy + 78) as i32, "frame {i}: y from {oy}");
        }
        assert_eq!(seen[0], full);
        assert_eq!(seen[3], full);
        assert_eq!(seen[5], full, "the frame after a lost face");
        assert!(ids[4].is_empty(), "frame 4: {:?}", ids[4]);
        let ids: Vec<_> = ids.into_iter().enumerate().filter(|(i, _)| *i != 4).collect();
        for (i, boxes) in ids {
            assert_eq!(boxes.len(), 1, "frame {i}");
            let b = boxes[0];
            let x = xs[i] as f32;
            assert!(
                (b.x - x).abs() <= 3.0 && (b.y - 100.0).abs() <= 3.0 && (b.w - 80.0).abs() <= 4.0,
                "frame {i}: {b:?}"
            );
        }
    }
}
