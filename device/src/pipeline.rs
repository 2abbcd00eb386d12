//! The per-frame pipeline: `detect -> classify -> track`, with stage timings.

use std::sync::Arc;
use std::time::Instant;

use fer_core::board::DetectionConfig;
use fer_core::preprocess::{as_gray8, crop_rect, to_gray8_region, FaceBox};
use serde::Serialize;

use crate::classify::{Classifier, ClassifyError};
use crate::detect::{resize_bilinear_part, Detector, GrayView, Rect, Search};
use crate::source::Frame;
use crate::still::Blocks;
use crate::track::{iou, Detection, Prediction, TrackedFace, Tracker};

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
    /// How faces were looked for in this frame.
    pub detection: Pass,
    pub timings: StageTimes,
}

/// How faces were looked for in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pass {
    /// The whole frame is the face (`FaceFinder::WholeFrame`).
    WholeFrame,
    /// A detection pass over the whole frame.
    Full,
    /// A full pass told where the frame changed since the full passes before
    /// (`detection.still_threshold`): a detector that keeps what it found (Haar, LBP) searched
    /// only there, and found the rest where it was.
    FullChanged,
    /// Only regions around where the faces of the last frame are predicted to be.
    Region,
    /// A region pass missed a face, so the whole frame was searched too.
    RegionThenFull,
    /// No face tracked, and the frame unchanged since the last full pass, which found none
    /// (`detection.still_threshold`): no detector ran.
    Unchanged,
    /// Every tracked face's surroundings unchanged since a detector found it there
    /// (`detection.still_threshold`): each keeps that box, and no detector ran.
    Kept,
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
    /// The last frame's width and height.
    size: Option<(u32, u32)>,
    /// While `detection.still_threshold` is set: the last full pass, and each face as last
    /// found by a detector.
    last_full: Option<FullPass>,
    found: Vec<Found>,
}

/// The full passes since the last one over the whole frame: the blocks as they saw them (each
/// block as of the last pass that searched around it: where it had moved), the faces the last
/// one found, and when (in frames processed) the whole frame was searched.
struct FullPass {
    blocks: Arc<Blocks>,
    faces: Vec<FaceBox>,
    frame: u64,
}

/// A face found by a detector: its box, the blocks of that frame, and when.
#[derive(Clone)]
struct Found {
    bbox: FaceBox,
    blocks: Arc<Blocks>,
    frame: u64,
}

impl<D, C> Pipeline<D, C> {
    pub fn new(finder: FaceFinder<D>, classifier: C, tracker: Tracker, detection: DetectionConfig) -> Self {
        Pipeline { finder, classifier, tracker, detection, frames: 0, size: None, last_full: None, found: Vec::new() }
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

/// Runs `detect` on `gray` (a frame, or a region of one) resized as the whole frame is resized
/// to `size` for detection, for the faces of `search` (in frame pixels), and maps the boxes back
/// to frame pixels. A region sees the pixels and windows that the whole frame's pass sees there,
/// so its faces are found at the boxes that pass finds.
fn detect_in(
    detect: impl FnOnce(GrayView, Search) -> Vec<FaceBox>,
    gray: GrayView,
    size: (u32, u32),
    search: Search,
) -> Vec<FaceBox> {
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
    detect(view, Search { min_face: px(search.min_face), max_face: search.max_face.map(px), centres })
        .into_iter()
        .map(|b| FaceBox { x: b.x / s, y: b.y / s, w: b.w / s, h: b.h / s })
        .collect()
}

/// Looks for each of the `predicted` faces only around it (see [`region_pass`]): first where it
/// will be. A face found off the centre of a search (more than 0.1 of its width, on either axis)
/// may have had hits beyond it (it moved off its predicted path): the search is centred on it
/// again. A face not found where it will be is looked for where it was (it stopped or turned).
/// At most three passes a face; `None` when a face is not found, or not settled by then (it
/// moved too far from where it was predicted, shrank, grew, or left): then the whole frame must
/// be searched.
fn region_passes<D: Detector>(
    d: &mut D,
    frame: &Frame,
    size: (u32, u32),
    min_face: u32,
    predicted: &[Prediction],
) -> Option<Vec<FaceBox>> {
    // How far `f`'s centre lies from `b`'s, on the farther axis, in `b`'s widths.
    let off = |b: &FaceBox, f: &FaceBox| {
        let ((bx, by), (fx, fy)) = (b.centre(), f.centre());
        (fx - bx).abs().max((fy - by).abs()) / b.w
    };
    let mut found: Vec<FaceBox> = Vec::new();
    for p in predicted {
        let (mut b, mut tried_last) = (p.next, off(&p.next, &p.last) <= REGION_SETTLED);
        let faces = 'settle: {
            for _ in 0..3 {
                let faces = region_pass(d, frame, size, min_face, &b).unwrap_or_default();
                match faces.iter().min_by(|f, g| off(&b, f).total_cmp(&off(&b, g))) {
                    Some(f) if off(&b, f) <= REGION_SETTLED => break 'settle faces,
                    Some(f) => b = *f,
                    None if !tried_last => (b, tried_last) = (p.last, true),
                    None => break,
                }
            }
            return None;
        };
        for f in faces {
            if !found.iter().any(|g| iou(g, &f) > 0.5) {
                found.push(f);
            }
        }
    }
    Some(found)
}

/// The part of the frame that a region pass around `b` searches: `b` and
/// `REGION_RADIUS + REGION_SIZES.1 / 2 - 0.5` of its width beyond it on each side.
fn region_searched(b: FaceBox) -> FaceBox {
    let m = (REGION_RADIUS + REGION_SIZES.1 / 2.0 - 0.5) * b.w;
    FaceBox { x: b.x - m, y: b.y - m, w: b.w + 2.0 * m, h: b.h + 2.0 * m }
}

/// A region pass's windows are centred within this fraction of the face's width of its centre.
const REGION_RADIUS: f32 = 0.2;
/// A region pass's faces are these fractions of the face's width.
const REGION_SIZES: (f32, f32) = (0.6, 1.45);
/// A face found within this fraction of its search's width of the search's centre (on either
/// axis) had all its hits inside the search (they spread 0.12 of its width around it).
const REGION_SETTLED: f32 = 0.1;

/// Looks for the face `b` only around it: windows centred within 0.2 face widths of its centre,
/// for faces 0.6 to 1.45 times its width, at the full pass's scale (`size`). These are the full
/// pass's pyramid pixels and windows there, and the sizes and places of the hits it groups into
/// the face (Haar's hits on the astronaut, shifted by 0-72 px: 0.64-1.39x its box, centres within
/// 0.12 of its width of its centre), so the box is the full pass's (it drifted when regions were
/// rescaled to a 48-px face), within a detection pixel (tests region_passes_*; costs in
/// BENCHMARKS.md). `None` when `b` lies off the frame.
fn region_pass<D: Detector>(
    d: &mut D,
    frame: &Frame,
    size: (u32, u32),
    min_face: u32,
    b: &FaceBox,
) -> Option<Vec<FaceBox>> {
    let (w, h) = (frame.image.width(), frame.image.height());
    let ((cx, cy), t) = (b.centre(), REGION_RADIUS * b.w);
    let centres = Rect {
        x: (cx - t).floor() as i32,
        y: (cy - t).floor() as i32,
        w: (2.0 * t).ceil() as i32,
        h: (2.0 * t).ceil() as i32,
    };
    // The region under those windows: 0.2 + 1.45 / 2 widths from the centre, 0.425 beyond the
    // box, and 4 px of the detection image (`px` frame pixels each) for the rounding of the
    // centres and sizes to them and for the resize's second source pixel; only it is converted to
    // gray.
    let px = w as f32 / size.0 as f32;
    let r = crop_rect(w, h, *b, REGION_RADIUS + REGION_SIZES.1 / 2.0 - 0.5 + 4.0 * px / b.w).ok()?;
    let roi = to_gray8_region(&frame.image, &r);
    let view = GrayView { image: &roi, origin: (r.x0, r.y0), full: (w, h) };
    let search = Search {
        // Never below the full pass's smallest face.
        min_face: ((REGION_SIZES.0 * b.w).round() as u32).max(min_face),
        max_face: Some((REGION_SIZES.1 * b.w).round() as u32),
        centres: Some(centres),
    };
    Some(detect_in(|v, s| d.detect(v, s), view, size, search))
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl<D: Detector, C: Classifier> Pipeline<D, C> {
    /// Faces in `frame`, largest first, at most `detection.max_faces`, and how they were found.
    /// A frame that starts a new scene (`frame.new_scene`, or a size other than the last frame's)
    /// ends the tracks of earlier frames first, so it gets a full pass.
    pub fn find_faces(&mut self, frame: &Frame) -> (Vec<FaceBox>, Pass) {
        let (w, h) = (frame.image.width(), frame.image.height());
        if frame.new_scene || self.size.replace((w, h)).is_some_and(|s| s != (w, h)) {
            self.tracker.end_scene();
            self.last_full = None;
            self.found.clear();
        }
        let (mut boxes, pass) = match &mut self.finder {
            FaceFinder::WholeFrame => (vec![FaceBox { x: 0.0, y: 0.0, w: w as f32, h: h as f32 }], Pass::WholeFrame),
            FaceFinder::Detect(d) => {
                let cfg = &self.detection;
                let size = detection_size(w, h, cfg);
                // Faces of the last frame, where their velocity will have taken them by this one.
                let predicted = self.tracker.predicted(frame.index);
                let due = self.frames.is_multiple_of(cfg.full_detect_every.max(1) as u64) || predicted.is_empty();
                let still_on = cfg.still_threshold > 0.0;
                let blocks = still_on.then(|| Arc::new(Blocks::of(&frame.image)));
                let recent = |then: u64| self.frames - then < cfg.still_full_every as u64;
                // A full pass over a frame that has not changed since the last one, away from the
                // faces tracked then and now, finds what that one found.
                let still = match (&blocks, &self.last_full) {
                    (Some(b), Some(last)) if due && recent(last.frame) => {
                        let around = predicted.iter().flat_map(|p| [p.last, p.next]).chain(last.faces.iter().copied());
                        let masks: Vec<FaceBox> = around.map(region_searched).collect();
                        !b.changed(&last.blocks, cfg.still_threshold, &masks)
                    }
                    _ => false,
                };
                // The blocks that moved since the full passes saw them: a full pass searches
                // only around them (`Detector::detect_changed`), and the whole frame again
                // after `still_full_every` frames.
                let mut moved = None;
                let mut full_pass = |d: &mut D| {
                    moved = match (&blocks, &self.last_full) {
                        (Some(b), Some(last)) if recent(last.frame) => {
                            b.moved_blocks(&last.blocks, cfg.still_threshold)
                        }
                        _ => None,
                    };
                    let search = Search { min_face: cfg.min_face, ..Default::default() };
                    let changed = blocks.as_ref().zip(moved.as_ref()).map(|(b, m)| b.changed_cells(m).seen_at(size));
                    let detect = |v: GrayView, s| d.detect_changed(v, s, changed.as_ref());
                    detect_in(detect, GrayView::whole(&as_gray8(&frame.image)), size, search)
                };
                // A tracked face whose surroundings (what a region pass searches) have not changed
                // since a detector found it there is where it was: it keeps that box.
                let kept_at = |p: &Prediction| {
                    let b = blocks.as_ref()?;
                    let around = region_searched(p.last);
                    self.found.iter().position(|f| {
                        f.bbox == p.last && recent(f.frame) && !b.changed_in(&f.blocks, cfg.still_threshold, &around)
                    })
                };
                let mut kept: Vec<(FaceBox, usize)> = Vec::new();
                let (found, pass) = if due && !still {
                    (full_pass(d), Pass::Full)
                } else if predicted.is_empty() {
                    (Vec::new(), Pass::Unchanged)
                } else {
                    let mut rest = Vec::new();
                    for p in predicted {
                        match kept_at(&p) {
                            Some(i) => kept.push((p.last, i)),
                            None => rest.push(p),
                        }
                    }
                    if rest.is_empty() {
                        (kept.iter().map(|k| k.0).collect(), Pass::Kept)
                    } else {
                        match region_passes(d, frame, size, cfg.min_face, &rest) {
                            Some(mut found) => {
                                for &(k, _) in &kept {
                                    if !found.iter().any(|f| iou(f, &k) > 0.5) {
                                        found.push(k);
                                    }
                                }
                                (found, Pass::Region)
                            }
                            None => {
                                kept.clear();
                                (full_pass(d), Pass::RegionThenFull)
                            }
                        }
                    }
                };
                let pass = if pass == Pass::Full && moved.is_some() { Pass::FullChanged } else { pass };
                if let Some(blocks) = blocks {
                    let now = self.frames;
                    if matches!(pass, Pass::Full | Pass::FullChanged | Pass::RegionThenFull) {
                        let faces = found.clone();
                        self.last_full = Some(match (moved, self.last_full.take()) {
                            (Some(m), Some(last)) => FullPass {
                                blocks: Arc::new(blocks.where_moved(&last.blocks, &m)),
                                faces,
                                frame: last.frame,
                            },
                            _ => FullPass { blocks: blocks.clone(), faces, frame: now },
                        });
                    }
                    if pass != Pass::Unchanged {
                        // Each face as found now, or (kept) as found before.
                        let before = std::mem::take(&mut self.found);
                        self.found = found
                            .iter()
                            .map(|&bbox| match kept.iter().find(|k| k.0 == bbox) {
                                Some(&(_, i)) => before[i].clone(),
                                None => Found { bbox, blocks: blocks.clone(), frame: now },
                            })
                            .collect();
                    }
                }
                (found, pass)
            }
        };
        boxes.sort_by(|a, b| (b.w * b.h).total_cmp(&(a.w * a.h)));
        boxes.truncate(self.detection.max_faces);
        (boxes, pass)
    }

    /// Runs every stage on one frame.
    pub fn process(&mut self, frame: &Frame) -> Result<FrameResult, ClassifyError> {
        let t = Instant::now();
        let (boxes, detection) = self.find_faces(frame);
        self.frames += 1;
        let detect_ms = ms(t);
        let t = Instant::now();
        let probs = self.classifier.classify(&frame.image, &boxes)?;
        let classify_ms = ms(t);
        let t = Instant::now();
        let dets: Vec<Detection> = boxes.iter().zip(probs).map(|(b, p)| Detection { bbox: *b, probs: p }).collect();
        let faces = self.tracker.update(frame.index, &dets);
        Ok(FrameResult {
            frame: frame.index,
            source: frame.name.clone(),
            width: frame.image.width(),
            height: frame.image.height(),
            faces,
            detection,
            timings: StageTimes { detect_ms, classify_ms, track_ms: ms(t) },
        })
    }
}

/// JSON lines to a writer, each line in one `write` call: a process killed between frames
/// leaves whole lines, never half of one, and a line costs one system call (formatting straight
/// into an unbuffered file wrote each fragment: ~565 calls a frame).
pub struct JsonLines<W: std::io::Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: std::io::Write> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines { out, line: Vec::new() }
    }

    /// Writes `value` and a newline, and flushes.
    pub fn write(&mut self, value: &serde_json::Value) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Changed;
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

    /// A detector, and the blocks (column, row) changed that each `detect_changed` call was
    /// given (640×480 frames: 40×30 blocks).
    struct Changes<D>(D, Vec<Option<Vec<(usize, usize)>>>);
    impl<D: Detector> Detector for Changes<D> {
        fn detect(&mut self, gray: GrayView<'_>, search: Search) -> Vec<FaceBox> {
            self.0.detect(gray, search)
        }
        fn detect_changed(&mut self, gray: GrayView<'_>, search: Search, changed: Option<&Changed>) -> Vec<FaceBox> {
            let cells = changed.map(|c| {
                let mut columns = Vec::new();
                (0..30)
                    .flat_map(|r| {
                        c.columns_changed((r, r), &mut columns);
                        (0..40)
                            .filter(|&c| columns[c + 1] > columns[c])
                            .map(move |c| (c, r as usize))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            });
            self.1.push(cells);
            self.0.detect_changed(gray, search, changed)
        }
    }

    struct Uniform;
    impl Classifier for Uniform {
        fn classify(&mut self, _f: &DynamicImage, faces: &[FaceBox]) -> Result<Vec<Probs>, ClassifyError> {
            Ok(vec![[1.0 / 7.0; 7]; faces.len()])
        }
    }

    /// Records every `write` call.
    struct Calls(Vec<Vec<u8>>);
    impl std::io::Write for Calls {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_json_line_is_one_write() {
        let mut lines = JsonLines::new(Calls(Vec::new()));
        let values = [
            serde_json::json!({"frame": 0, "faces": [{"id": 1, "probs": [0.5, 0.25]}], "source": "a\nb"}),
            serde_json::json!({"error": "not a decodable image", "source": "x.png"}),
        ];
        for v in &values {
            lines.write(v).unwrap();
        }
        let calls = &lines.out.0;
        assert_eq!(calls.len(), values.len(), "one write a line");
        for (call, v) in calls.iter().zip(&values) {
            assert_eq!(call.iter().filter(|&&b| b == b'\n').count(), 1, "a newline only at the end");
            assert_eq!(call.last(), Some(&b'\n'));
            assert_eq!(&serde_json::from_slice::<serde_json::Value>(call).unwrap(), v);
        }
    }

    /// A `w`×`h` frame with a bright 80-px square face at (`x`, 100).
    fn frame_of(index: u64, (w, h): (u32, u32), x: u32, new_scene: bool) -> Frame {
        let img = GrayImage::from_fn(w, h, |px, py| {
            Luma([if (x..x + 80).contains(&px) && (100..180).contains(&py) { 255 } else { 0 }])
        });
        Frame { index, name: format!("f{index}"), image: DynamicImage::ImageLuma8(img), new_scene }
    }

    fn frame(index: u64, x: u32) -> Frame {
        frame_of(index, (640, 480), x, false)
    }

    #[test]
    fn a_new_scene_or_frame_size_ends_the_tracks_and_gets_a_full_pass() {
        let det = DetectionConfig { full_detect_every: 100, min_face: 40, ..Default::default() };
        let mut p = Pipeline::new(
            FaceFinder::Detect(BrightSquare(vec![], vec![])),
            Uniform,
            Tracker::new(TrackingConfig::default()),
            det,
        );
        // The same face at the same place in every frame; frame 2 starts a new scene (another
        // photograph), frame 4 is smaller (another source), frame 5 is that size again.
        let frames = [
            frame_of(0, (640, 480), 200, false),
            frame_of(1, (640, 480), 200, false),
            frame_of(2, (640, 480), 200, true),
            frame_of(3, (640, 480), 200, false),
            frame_of(4, (400, 300), 200, false),
            frame_of(5, (400, 300), 200, false),
        ];
        let got: Vec<(Pass, Vec<u64>)> = frames
            .iter()
            .map(|f| p.process(f).unwrap())
            .map(|r| (r.detection, r.faces.iter().map(|f| f.id).collect()))
            .collect();
        use Pass::*;
        let want =
            [(Full, 1), (Region, 1), (Full, 2), (Region, 2), (Full, 3), (Region, 3)].map(|(p, id)| (p, vec![id]));
        assert_eq!(got, want);
    }

    #[test]
    fn region_passes_look_where_the_face_is_after_frames_left_unread() {
        let det = DetectionConfig { detect_width: 0, full_detect_every: 100, min_face: 40, ..Default::default() };
        let mut p = Pipeline::new(
            FaceFinder::Detect(BrightSquare(vec![], vec![])),
            Uniform,
            Tracker::new(TrackingConfig::default()),
            det,
        );
        // The face moves 10 px every camera frame; the pipeline gets frames 0, 1, 3 and 6 (it
        // took the newest and left the others).
        for i in [0, 1, 3, 6] {
            let r = p.process(&frame(i, 200 + 10 * i as u32)).unwrap();
            assert_eq!((r.faces.len(), r.faces[0].id), (1, 1), "frame {i}");
        }
        let FaceFinder::Detect(BrightSquare(seen, _)) = &p.finder else { unreachable!() };
        let centres: Vec<Option<i32>> = seen.iter().map(|(_, s)| s.centres.map(|c| c.x + c.w / 2)).collect();
        // Frame 1 at frame 0's face (no velocity yet), 240, found 10 px on, so again at 250;
        // then 10 px a camera frame from there: frame 3 at 250 + 2 * 10, frame 6 at 270 + 3 * 10,
        // each found at the centre of its one search.
        assert_eq!(centres, [None, Some(240), Some(250), Some(270), Some(300)]);
    }

    #[test]
    fn full_pass_downscaled_then_region_passes_where_the_face_will_be() {
        let det = DetectionConfig { detect_width: 320, full_detect_every: 3, min_face: 56, ..Default::default() };
        let mut p = Pipeline::new(
            FaceFinder::Detect(BrightSquare(vec![], vec![])),
            Uniform,
            Tracker::new(TrackingConfig::default()),
            det,
        );
        // The face moves 10 px a frame, then jumps 200 px at frame 4.
        let xs = [200, 210, 220, 230, 430, 440];
        let results: Vec<FrameResult> = (0..6).map(|i| p.process(&frame(i as u64, xs[i])).unwrap()).collect();
        let FaceFinder::Detect(BrightSquare(seen, origins)) = &p.finder else { unreachable!() };
        // Frame 0: whole frame at 320 px, faces from min_face (halved) up. Then only the region
        // around where the face will be (the 80-px face and 0.2 + 1.45 / 2 - 0.5 of it + 4
        // detection pixels, 8 px, on each side: 164 px, 82 at 1/2), at the full pass's scale
        // (1/2), faces 0.6-1.45x the tracked one's width (48-116 px) but not below min_face
        // (56-116 px, 28-58 at 1/2), centred within 0.2 of its width (16 px, 8 at 1/2) of its
        // predicted centre. Frame 1: at the centre of frame 0's face (no velocity yet), 240; the
        // face is found 10 px off it (more than 0.1 of its width), so again at 250. Frame 2: 10 px
        // on from frame 1's, 260, found there. Frame 3: full pass again. Frame 4: the face jumped:
        // region passes where it would be (280) and where it was (270) miss it, and a full pass
        // finds it. Frame 5: at the centre of frame 4's face (a new track: no velocity), 470,
        // found at 480, so again at 480.
        let min = (p.detection.min_face as f32 * 0.5).round() as u32;
        let full = ((320, 240), Search { min_face: min, ..Default::default() });
        let region = |x: i32| {
            let c = Rect { x: x / 2 - 8, y: 140 / 2 - 8, w: 16, h: 16 };
            ((82, 82), Search { min_face: 28, max_face: Some(58), centres: Some(c) })
        };
        let want = [
            full,
            region(240),
            region(250),
            region(260),
            full,
            region(280),
            region(270),
            full,
            region(470),
            region(480),
        ];
        assert_eq!(seen, &want);
        for (i, (_, s)) in want.iter().enumerate().filter(|w| w.1 .1.centres.is_some()) {
            // The region holds every window searched: the largest, centred anywhere in `centres`.
            let (c, half, (ox, oy)) = (s.centres.unwrap(), 58 / 2, origins[i]);
            assert!(ox as i32 <= c.x - half && c.x + c.w + half <= (ox + 82) as i32, "call {i}: x from {ox}");
            assert!(oy as i32 <= c.y - half && c.y + c.h + half <= (oy + 82) as i32, "call {i}: y from {oy}");
        }
        let passes: Vec<Pass> = results.iter().map(|r| r.detection).collect();
        use Pass::*;
        assert_eq!(passes, [Full, Region, Region, Full, RegionThenFull, Region]);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.faces.len(), 1, "frame {i}");
            let b = r.faces[0].bbox;
            let x = xs[i] as f32;
            assert!(
                (b.x - x).abs() <= 3.0 && (b.y - 100.0).abs() <= 3.0 && (b.w - 80.0).abs() <= 4.0,
                "frame {i}: {b:?}"
            );
            // The jump is too far for one track.
            assert_eq!(r.faces[0].id, if i < 4 { 1 } else { 2 }, "frame {i}");
        }
    }

    /// A 640×480 scene of gray 50 with, for frame `i`, sensor-like noise of up to 2 levels a
    /// pixel; `face`: a square face of `level` at (x, 100), 80 px; `patch`: a 40-px square of
    /// gray 90 at (500, 380), something put down (not a face to `BrightSquare`).
    fn scene(i: u64, face: Option<(u32, u8)>, patch: bool, new_scene: bool) -> Frame {
        let img = GrayImage::from_fn(640, 480, |x, y| {
            let level = match face {
                Some((fx, level)) if (fx..fx + 80).contains(&x) && (100..180).contains(&y) => level,
                _ if patch && (500..540).contains(&x) && (380..420).contains(&y) => 90,
                _ => 50 + ((x * 7 + y * 3 + i as u32 * 5) % 5) as u8 - 2,
            };
            Luma([level])
        });
        Frame { index: i, name: format!("f{i}"), image: DynamicImage::ImageLuma8(img), new_scene }
    }

    #[test]
    fn detection_that_would_see_a_still_scene_is_skipped() {
        let det = DetectionConfig {
            detect_width: 0,
            full_detect_every: 3,
            min_face: 40,
            still_threshold: 4.0,
            still_full_every: 5,
            ..Default::default()
        };
        let face = Some((200, 255));
        // 0-2: an empty room, noisy; 3: a face comes in; 4-6 it stays (5: its pixels change);
        // 7: something is put down away from the face; 8-14 nothing moves; 15: the same view
        // as a new scene.
        let frames: Vec<Frame> = (0..16)
            .map(|i| match i {
                0..=2 => scene(i, None, false, false),
                5 => scene(i, Some((200, 180)), false, false),
                3..=6 => scene(i, face, false, false),
                _ => scene(i, face, true, i == 15),
            })
            .collect();
        let run = |det: DetectionConfig| {
            let mut p = Pipeline::new(
                FaceFinder::Detect(Changes(BrightSquare(vec![], vec![]), vec![])),
                Uniform,
                Tracker::new(TrackingConfig::default()),
                det,
            );
            let results: Vec<FrameResult> = frames.iter().map(|f| p.process(f).unwrap()).collect();
            let FaceFinder::Detect(Changes(BrightSquare(seen, _), changes)) = p.finder else { unreachable!() };
            let full_calls = seen.iter().filter(|s| s.1.centres.is_none()).count();
            (results, full_calls, seen.len(), changes)
        };
        let (results, full_calls, calls, changes) = run(det.clone());
        use Pass::*;
        let passes: Vec<Pass> = results.iter().map(|r| r.detection).collect();
        // 1, 2: nothing tracked and nothing changed: no detector. 3: the face, searched for
        // where the frame changed since 0. 4: it and its surroundings as at 3: kept. 5: its
        // pixels changed: a region pass. 6: due, and the whole frame last searched 6 frames ago
        // (still_full_every 5): a full pass over all of it. 7: something put down away from the
        // face: kept. 9: due, and the patch came at 7: a full pass where it did. 12: due, the
        // whole frame searched 6 frames ago: all of it again. 13, 14: kept. 15: a new scene.
        let want = [
            Full,
            Unchanged,
            Unchanged,
            FullChanged,
            Kept,
            Region,
            Full,
            Kept,
            Kept,
            FullChanged,
            Kept,
            Kept,
            Full,
            Kept,
            Kept,
            Full,
        ];
        assert_eq!(passes, want);
        assert_eq!((full_calls, calls), (6, 7), "6 full passes and a region pass on frame 5");
        // The blocks each full pass was told had changed: at 3 those the face covers, any part
        // of them (columns 200-279, rows 100-179: blocks 12-17 and 6-11, 36 of them); at 9 the
        // patch's (500-539, 380-419; at least 48 of a block's 256 pixels 40 levels brighter:
        // blocks 31-33 and 23-26, 12). None: the whole frame, at 0, 6, 12 and the new scene.
        let blocks = |c: std::ops::RangeInclusive<usize>, r: std::ops::RangeInclusive<usize>| {
            r.flat_map(|r| c.clone().map(move |c| (c, r))).collect::<Vec<_>>()
        };
        let want = [None, Some(blocks(12..=17, 6..=11)), None, Some(blocks(31..=33, 23..=26)), None, None];
        assert_eq!(changes, want);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.faces.len(), usize::from(i >= 3), "frame {i}");
            if i >= 3 {
                let b = r.faces[0].bbox;
                assert_eq!(
                    (b.x, b.y, b.w, b.h, r.faces[0].id),
                    (200.0, 100.0, 80.0, 80.0, 1 + u64::from(i == 15)),
                    "frame {i}"
                );
            }
        }
        // A full pass at least every `still_full_every` frames: with 3, frame 9 (3 after 6)
        // over the whole frame.
        let (results, _, _, changes) = run(DetectionConfig { still_full_every: 3, ..det.clone() });
        let passes: Vec<Pass> = results.iter().map(|r| r.detection).collect();
        assert_eq!((passes[9], &changes[3]), (Full, &None), "{passes:?}");
        // Without the threshold, every due pass runs, and region passes on the other frames.
        let (results, full_calls, calls, changes) = run(DetectionConfig { still_threshold: 0.0, ..det });
        assert!(changes.iter().all(Option::is_none), "{changes:?}");
        let passes: Vec<Pass> = results.iter().map(|r| r.detection).collect();
        let want = [
            Full, Full, Full, Full, Region, Region, Full, Region, Region, Full, Region, Region, Full, Region, Region,
            Full,
        ];
        assert_eq!(passes, want);
        assert_eq!((full_calls, calls), (8, 16));
    }
}
