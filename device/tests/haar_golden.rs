//! The Rust Haar and LBP cascades against OpenCV's `detectMultiScale` on real photographs
//! (goldens: `scripts/haar_reference.py [--lbp]`; photographs: `scripts/fixtures.sh`; cascade: Debian's
//! opencv-data).

use std::path::{Path, PathBuf};

use fer_core::board::{DetectionConfig, TrackingConfig};
use fer_core::preprocess::FaceBox;
use fer_device::classify::{Classifier, ClassifyError};
use fer_device::detect::{group_rectangles, Changed, DetectParams, Detector, GrayView, HaarCascade, Rect, Search};
use fer_device::pipeline::{FaceFinder, Pass, Pipeline};
use fer_device::source::Frame;
use fer_device::track::{Probs, Tracker};
use image::DynamicImage;
use serde::Deserialize;
use Pass::{Full, FullChanged, Kept, Region};

#[derive(Deserialize)]
struct Doc {
    cascade: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    image: String,
    scale_factor: f64,
    min_neighbors: usize,
    min_size: u32,
    boxes: Vec<[i32; 4]>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn iou(a: &Rect, b: &[i32; 4]) -> f32 {
    let (x0, y0) = (a.x.max(b[0]), a.y.max(b[1]));
    let (x1, y1) = ((a.x + a.w).min(b[0] + b[2]), (a.y + a.h).min(b[1] + b[3]));
    let inter = ((x1 - x0).max(0) * (y1 - y0).max(0)) as f32;
    inter / ((a.w * a.h + b[2] * b[3]) as f32 - inter)
}

#[test]
fn haar_matches_opencv_on_real_photographs() {
    matches_opencv("haar.json");
}

#[test]
fn lbp_matches_opencv_on_real_photographs() {
    matches_opencv("lbp.json");
}

fn matches_opencv(golden: &str) {
    let doc: Doc =
        serde_json::from_str(&std::fs::read_to_string(repo().join("device/tests/golden").join(golden)).unwrap())
            .unwrap();
    let cascade = HaarCascade::load(Path::new(&doc.cascade)).unwrap();
    for (i, case) in doc.cases.iter().enumerate() {
        let path = repo().join(".cache/fixtures").join(&case.image);
        let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/fixtures.sh)", path.display()));
        let gray = fer_core::preprocess::to_gray8(&img);
        let p = DetectParams {
            scale_factor: case.scale_factor,
            min_neighbors: case.min_neighbors,
            min_size: case.min_size,
            ..Default::default()
        };
        // `detect_rects` is these two steps; the raw detections are needed for the thread check
        // below too, and each pass is seconds under qemu-user.
        let one = cascade.raw_detections(&gray, &p);
        let ours = group_rectangles(&one, p.min_neighbors, 0.2);
        // Levels scanned by several threads give exactly the one-thread detections, in order
        // (2 threads, and more threads than levels). On each golden's first case only (the
        // astronaut at scale 1.1, ~30 levels): the group photograph has 7x its pixels, and its
        // two extra passes were most of this test's ~70 s under qemu-user.
        let thread_counts: &[usize] = if i == 0 { &[2, 64] } else { &[] };
        for &threads in thread_counts {
            let raw = cascade.raw_detections(&gray, &DetectParams { threads, ..p });
            assert_eq!(raw, one, "{}: {threads} threads", case.image);
        }
        // A largest face size (as the pipeline's region passes ask for) drops exactly the levels
        // whose window is wider, as OpenCV's maxSize (its loop stops at the first such level).
        if i == 0 {
            let mut widths: Vec<i32> = one.iter().map(|r| r.w).collect();
            widths.sort_unstable();
            let max_size = widths[widths.len() / 2] as u32;
            let small = cascade.raw_detections(&gray, &DetectParams { max_size, ..p });
            let want: Vec<Rect> = one.iter().copied().filter(|r| r.w <= max_size as i32).collect();
            assert!(!want.is_empty() && want.len() < one.len(), "{}: {} of {}", case.image, want.len(), one.len());
            assert_eq!(small, want, "{}: max_size {max_size}", case.image);
        }
        // Windows centred in a rectangle (the region passes' `centres`): the whole image's hits
        // whose window centre lies in it, found from the parts of the levels under them.
        if i == 0 {
            let c = one[one.len() / 2];
            let centres = Rect { x: c.x + c.w / 2 - 15, y: c.y + c.h / 2 - 10, w: 30, h: 20 };
            let win = cascade.window().0 as f64;
            let inside = |r: &Rect| {
                // The hit's level (factor scale^k, the one whose rounded window is its width),
                // its position in the level, and the window's centre there, scaled back: the
                // rule of `centres` (the rounded rectangle's centre can differ by a pixel).
                let f = (0..64).map(|k| p.scale_factor.powi(k)).find(|f| (win * f).round_ties_even() as i32 == r.w);
                let f = f.unwrap();
                let (x, y) = ((r.x as f64 / f).round(), (r.y as f64 / f).round());
                let (cx, cy) = ((x + win / 2.0) * f, (y + win / 2.0) * f);
                cx >= centres.x as f64
                    && cx <= (centres.x + centres.w) as f64
                    && cy >= centres.y as f64
                    && cy <= (centres.y + centres.h) as f64
            };
            let want: Vec<Rect> = one.iter().copied().filter(inside).collect();
            let got = cascade.raw_detections(&gray, &DetectParams { centres: Some(centres), ..p });
            assert!(!want.is_empty() && want.len() < one.len(), "{}: {} of {}", case.image, want.len(), one.len());
            assert_eq!(got, want, "{}: centres {centres:?}", case.image);
        }
        let label = format!("{} (scale {}, neighbours {})", case.image, case.scale_factor, case.min_neighbors);
        eprintln!("{label}: ours {ours:?}\n  opencv {:?}", case.boxes);
        // Every OpenCV face is found by us at nearly the same box.
        let matched = case.boxes.iter().filter(|b| ours.iter().any(|r| iou(r, b) >= 0.8)).count();
        if case.boxes.len() <= 2 {
            assert_eq!(matched, case.boxes.len(), "{label}: missed OpenCV faces");
            assert_eq!(ours.len(), case.boxes.len(), "{label}: different number of faces");
            for b in &case.boxes {
                let r = ours.iter().max_by(|x, y| iou(x, b).total_cmp(&iou(y, b))).unwrap();
                let d = [(r.x - b[0]).abs(), (r.y - b[1]).abs(), (r.w - b[2]).abs(), (r.h - b[3]).abs()];
                assert!(d.iter().all(|v| *v <= 4), "{label}: {r:?} vs OpenCV {b:?}");
            }
        } else {
            assert!(
                matched * 10 >= case.boxes.len() * 9,
                "{label}: only {matched}/{} OpenCV faces matched",
                case.boxes.len()
            );
            assert!(
                ours.len() <= case.boxes.len() + 2,
                "{label}: {} detections vs OpenCV's {}",
                ours.len(),
                case.boxes.len()
            );
        }
    }
}

fn box_iou(a: &FaceBox, b: &FaceBox) -> f32 {
    let (x0, y0) = (a.x.max(b.x), a.y.max(b.y));
    let (x1, y1) = ((a.x + a.w).min(b.x + b.w), (a.y + a.h).min(b.y + b.h));
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    inter / (a.w * a.h + b.w * b.h - inter)
}

/// Gives every face the same probabilities (the pipeline test below is about boxes).
struct Uniform;
impl Classifier for Uniform {
    fn classify(&mut self, _frame: &DynamicImage, faces: &[FaceBox]) -> Result<Vec<Probs>, ClassifyError> {
        Ok(vec![[1.0 / 7.0; 7]; faces.len()])
    }
}

/// The pipeline's passes around a tracked face find it where the full pass finds it (within a
/// pixel of the image detection runs on), on a still photograph (frames 0-2: the first is the
/// full pass) and moving 8 px a frame (frames 3, 4, against full passes of those frames): Haar
/// at full resolution and downscaled (as rpi4.toml), LBP likewise (as rpi-zero2w.toml). When the
/// region was rescaled to a 48-px face and searched for 0.8-1.25x the face's width, Haar's box
/// grew 95 -> 109 px on still frames.
#[test]
fn region_passes_keep_the_full_pass_box() {
    for c in configs() {
        let (passes, calls) = follow(&c, &[0, 0, 0, 8, 16]);
        assert_eq!(passes, [Full, Region, Region, Region, Region], "{}", c.0);
        // Frame 3's move from rest, 8 px, is a tenth of LBP's box: it may take a second look.
        assert_eq!(calls[..3], [1, 1, 1], "{}", c.0);
    }
}

/// A face moving 24 px right a frame (a quarter of Haar's 95-px box, a third of LBP's 77): in
/// frame 1 the region pass centred on frame 0's face (no velocity yet) finds it off centre and
/// looks again centred on it (Haar), or misses it, and a full pass finds it (LBP at full
/// resolution); from then on the tracker has its velocity, and one region pass centred where it
/// will be finds it, at the full pass's box. Centred on where it was, every frame would need at
/// least two. When it stops, it is not found where it would have been, but where it was.
#[test]
fn region_passes_follow_a_fast_face_at_its_velocity() {
    for c in configs() {
        let (passes, calls) = follow(&c, &[0, 24, 48, 72, 96, 96, 96]);
        assert_eq!(passes[0], Full, "{}", c.0);
        assert_eq!(passes[2..], [Region; 5], "{}", c.0);
        assert_eq!(calls[2..5], [1; 3], "{}", c.0);
        // It stops: not found where it would be (24 px on), found where it was.
        assert_eq!(calls[5..], [2, 1], "{}", c.0);
    }
}

#[test]
fn region_passes_follow_a_face_across_camera_frames_left_unread() {
    // 12 px every camera frame, of which the pipeline gets 0, 2, 3, 5, 8 and 9 (it took the
    // newest frame and left the others): from frame 3 on (the track has a velocity), one region
    // pass a frame, centred where the face is (more than 0.1 of its width off, 12 px or more,
    // would take a second pass, and 36 px a third or a full pass).
    let frames: Vec<(u64, u32)> = [0, 2, 3, 5, 8, 9].into_iter().map(|i| (i, 12 * i as u32)).collect();
    for c in configs() {
        let (passes, calls, _) = follow_frames(&c, &frames, &shifted());
        assert_eq!(passes[0], Full, "{}", c.0);
        assert_eq!(passes[2..], [Region; 4], "{}", c.0);
        assert_eq!(calls[2..], [1; 4], "{}", c.0);
    }
}

#[test]
fn a_still_face_keeps_its_box_until_it_moves() {
    // Full passes due every second frame. The face stays (frames 1, 2: no detector; 2 was due),
    // moves 16 px, the whole photograph with it (3: a region pass; 4: due, and the frame changed
    // away from the face since the last full pass: a full pass where it did), and stays (5): every frame's
    // box is the full pass's on that frame (follow_frames checks it).
    for (label, cascade, detection) in configs() {
        let every_2 = DetectionConfig { full_detect_every: 2, still_threshold: 4.0, ..detection };
        let (passes, calls) = follow(&(label.clone(), cascade, every_2), &[0, 0, 0, 16, 16, 16]);
        assert_eq!(passes, [Full, Kept, Kept, Region, FullChanged, Kept], "{label}");
        // (Frame 3: one or two region passes, as the face is found more than 0.1 of its width
        // off the first's centre.)
        assert_eq!([calls[0], calls[1], calls[2], calls[4], calls[5]], [1, 0, 0, 1, 0], "{label}: {calls:?}");
        assert!((1..=2).contains(&calls[3]), "{label}: {calls:?}");
    }
}

#[test]
fn full_passes_search_where_a_still_room_changed() {
    // A still room (the photograph's lower half, the suit and the flag, at twice the size) and
    // a 240x300 part of the photograph around the face, coming 10 px right a frame, in front of
    // it: region passes on frames 1, 3; full passes due on 2 and 4, the frame changed away from
    // the face (the part's edges): each searches where the frame changed since the last. Every
    // frame's box is the one a full pass over the whole frame finds (follow_frames checks it).
    let rgb = astronaut();
    let scene = |dx: u32| {
        image::RgbImage::from_fn(512, 512, |x, y| match (x.checked_sub(dx + 40), y.checked_sub(20)) {
            (Some(px), Some(py)) if px < 240 && py < 300 => *rgb.get_pixel(px + 60, py + 10),
            _ => *rgb.get_pixel(x / 2, 256 + y / 2),
        })
    };
    // The downscaled configs only: the changed blocks seen in the resized frame (the cascade's
    // own test covers full resolution; under qemu-user each config here takes ~40 s).
    for (label, cascade, detection) in configs().into_iter().filter(|c| c.2.detect_width > 0) {
        let still = DetectionConfig { full_detect_every: 2, still_threshold: 4.0, ..detection };
        let moves: Vec<(u64, u32)> = (0..5).map(|i| (i, i as u32 * 10)).collect();
        let (passes, _, told) = follow_frames(&(label.clone(), cascade, still), &moves, &scene);
        assert_eq!(passes, [Full, Region, FullChanged, Region, FullChanged], "{label}");
        assert_eq!(told, 2, "{label}: the full passes on frames 2 and 4");
    }
}

/// Counts the calls to a detector, and the whole-image calls told where the image changed.
#[derive(Clone)]
struct Counting(HaarCascade, usize, usize);
impl Detector for Counting {
    fn detect(&mut self, gray: GrayView<'_>, search: Search) -> Vec<FaceBox> {
        self.1 += 1;
        self.0.detect(gray, search)
    }
    fn detect_changed(&mut self, gray: GrayView<'_>, search: Search, changed: Option<&Changed>) -> Vec<FaceBox> {
        self.1 += 1;
        self.2 += usize::from(changed.is_some());
        self.0.detect_changed(gray, search, changed)
    }
}

/// Haar at full resolution and downscaled (as rpi4.toml), LBP likewise (as rpi-zero2w.toml):
/// (label, cascade, detection config).
fn configs() -> Vec<(String, HaarCascade, DetectionConfig)> {
    let haar = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";
    let lbp = "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml";
    [(haar, 0, 1.1, 3), (haar, 320, 1.15, 4), (lbp, 0, 1.2, 3), (lbp, 384, 1.1, 3)]
        .into_iter()
        .map(|(xml, detect_width, scale_factor, min_neighbors)| {
            let mut cascade = HaarCascade::load(Path::new(xml)).unwrap();
            cascade.params = DetectParams { scale_factor, min_neighbors, ..Default::default() };
            let detection =
                DetectionConfig { detect_width, full_detect_every: 100, min_face: 48, ..Default::default() };
            (format!("{xml} at width {detect_width}"), cascade, detection)
        })
        .collect()
}

/// Runs the pipeline of `c` on the astronaut shifted right by each of `moves` in turn (frames
/// 0, 1, 2, ...); see [`follow_frames`].
fn follow(c: &(String, HaarCascade, DetectionConfig), moves: &[u32]) -> (Vec<Pass>, Vec<usize>) {
    let (passes, calls, _) =
        follow_frames(c, &moves.iter().enumerate().map(|(i, &dx)| (i as u64, dx)).collect::<Vec<_>>(), &shifted());
    (passes, calls)
}

/// The astronaut shifted right by `dx`.
fn shifted() -> impl Fn(u32) -> image::RgbImage {
    let rgb = astronaut();
    move |dx| image::RgbImage::from_fn(512, 512, |x, y| *rgb.get_pixel(x.saturating_sub(dx), y))
}

fn astronaut() -> image::RgbImage {
    let path = repo().join(".cache/fixtures/astronaut.png");
    let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/fixtures.sh)", path.display()));
    assert_eq!(img.width(), 512);
    img.to_rgb8()
}

/// Runs the pipeline of `c` on the camera frames `(index, dx)` of `moves` in turn, `scene(dx)`,
/// and checks that every frame has the one face, at the box a full pass over the whole frame
/// finds on that frame within a detection pixel; returns the frames' passes, the detector's
/// calls in each, and the full passes told where the frame changed.
fn follow_frames(
    c: &(String, HaarCascade, DetectionConfig),
    moves: &[(u64, u32)],
    scene: &dyn Fn(u32) -> image::RgbImage,
) -> (Vec<Pass>, Vec<usize>, usize) {
    let (label, cascade, detection) = c;
    let w = 512;
    let tracker = Tracker::new(TrackingConfig::default());
    let every = DetectionConfig { full_detect_every: 1, still_threshold: 0.0, ..detection.clone() };
    let counting = Counting(cascade.clone(), 0, 0);
    let mut p = Pipeline::new(FaceFinder::Detect(counting), Uniform, tracker.clone(), detection.clone());
    let mut full_passes = Pipeline::new(FaceFinder::Detect(cascade.clone()), Uniform, tracker, every);
    let px = if detection.detect_width > 0 { w as f32 / detection.detect_width as f32 } else { 1.0 };
    let (mut passes, mut calls) = (Vec::new(), Vec::new());
    let mut seen: Vec<(u32, Vec<FaceBox>)> = Vec::new();
    for &(index, dx) in moves {
        let frame = Frame { index, name: format!("astronaut#{index}"), image: scene(dx).into(), new_scene: false };
        let r = p.process(&frame).unwrap();
        assert_eq!(r.faces.len(), 1, "{label}: frame {index}: {:?}", r.faces);
        let b = r.faces[0].bbox;
        // One full pass per distinct frame (these are slow under qemu-user).
        let want = match seen.iter().find(|s| s.0 == dx) {
            Some(s) => s.1.clone(),
            None => {
                let boxes: Vec<FaceBox> = full_passes.process(&frame).unwrap().faces.iter().map(|f| f.bbox).collect();
                seen.push((dx, boxes.clone()));
                boxes
            }
        };
        let full = *want.iter().max_by(|x, y| box_iou(x, &b).total_cmp(&box_iou(y, &b))).unwrap();
        eprintln!("{label}: frame {index}: {:?} {b:?}, full pass {full:?}", r.detection);
        let d = [b.x - full.x, b.y - full.y, b.w - full.w, b.h - full.h];
        assert!(d.iter().all(|v| v.abs() <= px * 1.01), "{label}: frame {index}: {b:?}, full pass {full:?}");
        assert_eq!(r.faces[0].id, 1, "{label}: frame {index}: one track");
        passes.push(r.detection);
        let FaceFinder::Detect(Counting(_, n, _)) = &mut p.finder else { unreachable!() };
        calls.push(std::mem::take(n));
    }
    let FaceFinder::Detect(Counting(_, _, told)) = p.finder else { unreachable!() };
    (passes, calls, told)
}
