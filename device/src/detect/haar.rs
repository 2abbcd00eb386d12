//! OpenCV Haar cascades (the `opencv_storage/cascade` XML written by `opencv_traincascade`,
//! e.g. `haarcascade_frontalface_default.xml`), evaluated as OpenCV's `CascadeClassifier` does:
//! an image pyramid (each level resized bilinearly by `1/factor`, `factor *= scale_factor`), the
//! 24×24 window scanned with a step of 2 pixels (1 once `factor > 2`), integral and squared
//! integral images for variance normalisation, boosted stumps or trees per stage, and
//! `groupRectangles` (eps 0.2) to merge neighbouring hits.

use std::path::{Path, PathBuf};

use image::GrayImage;

use super::{Changed, Detector, GrayView, Search};
use fer_core::preprocess::FaceBox;

mod rows;

/// Cascade loading errors.
#[derive(Debug, thiserror::Error)]
pub enum CascadeError {
    #[error("{path}: cannot read cascade: {error} (install Debian's opencv-data package, or set detection.cascade)")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: not an OpenCV cascade XML: {message}")]
    Format { path: PathBuf, message: String },
}

/// An integer rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

/// A Haar feature (weighted rectangles), or an LBP feature: a 3×3 grid of `w × h` blocks at
/// `(x, y)` whose 8 outer block sums are compared with the centre's into an 8-bit code.
#[derive(Debug, Clone)]
enum Feature {
    Haar(Vec<(Rect, f32)>),
    Lbp(Rect),
}

#[derive(Debug, Clone, Copy)]
struct Node {
    left: i32,
    right: i32,
    feature: usize,
    threshold: f32,
    /// LBP: the 256-bit category subset (index into `HaarCascade::subsets`); bit set = leaf 0.
    subset: usize,
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
    leaves: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Stage {
    threshold: f32,
    trees: Vec<Tree>,
}

/// Detection parameters, as OpenCV's `detectMultiScale` arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectParams {
    pub scale_factor: f64,
    pub min_neighbors: usize,
    /// Smallest window side in pixels of the image passed to [`HaarCascade::detect_rects`].
    pub min_size: u32,
    /// Largest window side (0 = image size).
    pub max_size: u32,
    /// Only windows whose centre lies in this rectangle (pixels of the full image), as the
    /// pipeline's passes around a tracked face ask; `None`: everywhere (OpenCV).
    pub centres: Option<Rect>,
    /// Threads scanning pyramid levels in parallel (the result is the same for any count).
    pub threads: usize,
}

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams { scale_factor: 1.1, min_neighbors: 3, min_size: 0, max_size: 0, centres: None, threads: 1 }
    }
}

/// An OpenCV boosted cascade of Haar or LBP features (the name is historical: both
/// `haarcascades/*.xml` and `lbpcascades/*.xml` load).
#[derive(Debug, Clone)]
pub struct HaarCascade {
    width: i32,
    height: i32,
    stages: Vec<Stage>,
    features: Vec<Feature>,
    lbp: bool,
    subsets: Vec<[i32; 8]>,
    /// Parameters used by the [`Detector`] impl.
    pub params: DetectParams,
    /// The stump plans of the last few integral-image strides ([`STRIDE_STEP`]), so that a plan
    /// is made once, not on every call (for the default frontal-face cascade, 2913 stumps:
    /// making its plan was 0.42 M of a region pass's 5.18 M Cortex-A72 instructions;
    /// BENCHMARKS.md).
    plans: Kept<Vec<(usize, std::sync::Arc<Option<StumpPlan>>)>>,
    /// The threads that scan pyramid levels in parallel (`params.threads` - 1 of them), made on
    /// first use.
    pool: Kept<Option<std::sync::Arc<crate::pool::Pool>>>,
    /// The hits of the last [`Detector::detect_changed`] call.
    last: Option<LastScan>,
}

/// A window that passed every stage: its pyramid level (index among the levels searched), its
/// position in that level's pixels, and its rectangle in the image's.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Hit {
    level: usize,
    at: (u32, u32),
    rect: Rect,
}

/// The hits of a whole-image search, the image's size and the parameters.
#[derive(Debug, Clone)]
struct LastScan {
    image: (u32, u32),
    params: DetectParams,
    hits: Vec<Hit>,
}

/// The windows of a pyramid level that see changed pixels of the image (a level pixel is
/// resized from up to 2×2 of the image's): runs of positions `step` apart, `(y, first x, end
/// x)` in the level's pixels, row by row.
struct Fresh {
    runs: Vec<(u32, u32, u32)>,
}

impl Fresh {
    /// For a level `level` pixels in size resized from the `image`-sized image that `changed`
    /// is seen at, windows of `window` pixels at positions `step` apart.
    fn new(changed: &Changed, image: (u32, u32), level: (u32, u32), window: (usize, usize), step: usize) -> Fresh {
        // The cells under the window at each position on each axis (`None`: some outside the
        // grid).
        let axis = |axis: usize, n: u32, of: u32, win: usize| -> Vec<Option<(u32, u32)>> {
            let win = win as u32;
            (0..(n + 1).saturating_sub(win))
                .map(|x| {
                    let (first, last) = source_span(x, x + win - 1, n, of);
                    changed.cells(axis, first..last + 1)
                })
                .collect()
        };
        let (xs, ys) = (axis(0, level.0, image.0, window.0), axis(1, level.1, image.1, window.1));
        let mut runs = Vec::new();
        // Columns with a changed cell in the window rows' cells, counted from the left.
        let (mut columns, mut counted) = (Vec::new(), None);
        for (y, rows) in ys.iter().enumerate().step_by(step) {
            if let Some(r) = rows {
                if counted != Some(*r) {
                    changed.columns_changed(*r, &mut columns);
                    counted = Some(*r);
                }
            }
            let fresh = |x: usize| {
                rows.is_none() || xs[x].is_none_or(|(c0, c1)| columns[c1 as usize + 1] > columns[c0 as usize])
            };
            let mut x = 0;
            while x < xs.len() {
                if !fresh(x) {
                    x += step;
                    continue;
                }
                let first = x;
                while x < xs.len() && fresh(x) {
                    x += step;
                }
                runs.push((y as u32, first as u32, x as u32));
            }
        }
        Fresh { runs }
    }

    /// Whether the window at `(x, y)` (a position `step` apart) sees a changed pixel.
    fn at(&self, x: u32, y: u32) -> bool {
        let i = self.runs.partition_point(|r| (r.0, r.1) <= (y, x));
        i > 0 && self.runs[i - 1].0 == y && x < self.runs[i - 1].2
    }

    /// The level's pixels under the windows that see a changed pixel: columns and rows; `None`
    /// if there are none.
    fn bounds(&self, window: (usize, usize)) -> Option<[std::ops::Range<u32>; 2]> {
        let (first, last) = (self.runs.first()?, self.runs.last()?);
        let x0 = self.runs.iter().map(|r| r.1).min()?;
        // A run's end is one step past its last window.
        let x1 = self.runs.iter().map(|r| r.2).max()?;
        Some([x0..x1 - 1 + window.0 as u32, first.0..last.0 + window.1 as u32])
    }
}

/// What a cascade keeps between calls (its stump plans, its threads); a clone starts without.
#[derive(Default)]
struct Kept<T>(std::sync::Mutex<T>);

impl<T> Kept<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        // A panic while the lock was held left at worst a plan or pool missing: carry on.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Default> Clone for Kept<T> {
    fn clone(&self) -> Self {
        Kept::default()
    }
}

impl<T> std::fmt::Debug for Kept<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept(..)")
    }
}

/// Stump plans kept: a frame's full pass and its region passes need two or three strides.
const PLANS_KEPT: usize = 4;

/// Integral-image strides are rounded up to a multiple of this, so the regions searched around
/// a moving face (a few pixels wider or narrower each frame) share one plan.
const STRIDE_STEP: usize = 64;

fn numbers<T: std::str::FromStr>(text: &str) -> Option<Vec<T>> {
    text.split_ascii_whitespace().map(|t| t.parse().ok()).collect()
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn items<'a, 'i>(node: roxmltree::Node<'a, 'i>) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children().filter(|c| c.is_element())
}

impl HaarCascade {
    /// Reads a cascade XML file.
    pub fn load(path: &Path) -> Result<HaarCascade, CascadeError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| CascadeError::Io { path: path.to_path_buf(), error })?;
        HaarCascade::parse(&text).map_err(|message| CascadeError::Format { path: path.to_path_buf(), message })
    }

    /// Parses cascade XML text.
    pub fn parse(text: &str) -> Result<HaarCascade, String> {
        let doc = roxmltree::Document::parse(text).map_err(|e| format!("XML: {e}"))?;
        let cascade = doc
            .descendants()
            .find(|n| n.has_tag_name("cascade"))
            .ok_or("no <cascade> element (old-format cascades are not supported)")?;
        let text_of = |name: &str| -> Result<String, String> {
            child(cascade, name).and_then(|n| n.text()).map(|t| t.trim().to_string()).ok_or(format!("missing <{name}>"))
        };
        if text_of("stageType")? != "BOOST" {
            return Err("stageType is not BOOST".into());
        }
        let ft = text_of("featureType")?;
        let lbp = match ft.as_str() {
            "HAAR" => false,
            "LBP" => true,
            _ => return Err(format!("featureType {ft} is not supported (HAAR or LBP)")),
        };
        // Numbers per internal node: left, right, feature, then a threshold (Haar) or a 256-bit
        // category subset as 8 ints (LBP).
        let per_node = if lbp { 11 } else { 4 };
        let mut subsets: Vec<[i32; 8]> = Vec::new();
        let width: i32 = text_of("width")?.parse().map_err(|_| "bad <width>")?;
        let height: i32 = text_of("height")?.parse().map_err(|_| "bad <height>")?;
        let mut stages = Vec::new();
        for (si, s) in items(child(cascade, "stages").ok_or("missing <stages>")?).enumerate() {
            let threshold: f32 = child(s, "stageThreshold")
                .and_then(|n| n.text())
                .and_then(|t| t.trim().parse().ok())
                .ok_or(format!("stage {si}: bad stageThreshold"))?;
            let mut trees = Vec::new();
            for w in items(child(s, "weakClassifiers").ok_or(format!("stage {si}: no weakClassifiers"))?) {
                let internal: Vec<f64> = child(w, "internalNodes")
                    .and_then(|n| n.text())
                    .and_then(numbers)
                    .ok_or(format!("stage {si}: bad internalNodes"))?;
                let leaves: Vec<f32> = child(w, "leafValues")
                    .and_then(|n| n.text())
                    .and_then(numbers)
                    .ok_or(format!("stage {si}: bad leafValues"))?;
                if internal.is_empty() || !internal.len().is_multiple_of(per_node) {
                    return Err(format!(
                        "stage {si}: internalNodes length {} is not a multiple of {per_node}",
                        internal.len()
                    ));
                }
                let nodes = internal
                    .chunks(per_node)
                    .map(|c| {
                        let subset = if lbp {
                            let mut bits = [0i32; 8];
                            for (b, v) in bits.iter_mut().zip(&c[3..11]) {
                                *b = *v as i32;
                            }
                            subsets.push(bits);
                            subsets.len() - 1
                        } else {
                            usize::MAX
                        };
                        Node {
                            left: c[0] as i32,
                            right: c[1] as i32,
                            feature: c[2] as usize,
                            threshold: if lbp { 0.0 } else { c[3] as f32 },
                            subset,
                        }
                    })
                    .collect();
                if lbp && leaves.len() != 2 {
                    return Err(format!("stage {si}: an LBP stump needs 2 leaf values, got {}", leaves.len()));
                }
                trees.push(Tree { nodes, leaves });
            }
            // OpenCV subtracts 1e-5 from stage thresholds (THRESHOLD_EPS).
            stages.push(Stage { threshold: threshold - 1e-5, trees });
        }
        let mut features = Vec::new();
        for (fi, f) in items(child(cascade, "features").ok_or("missing <features>")?).enumerate() {
            if child(f, "tilted").and_then(|n| n.text()).is_some_and(|t| t.trim() != "0") {
                return Err(format!("feature {fi}: tilted features are not supported"));
            }
            if lbp {
                let v: Vec<i32> = child(f, "rect")
                    .and_then(|n| n.text())
                    .and_then(numbers)
                    .ok_or(format!("feature {fi}: bad LBP rect"))?;
                if v.len() != 4 || v[2] <= 0 || v[3] <= 0 {
                    return Err(format!("feature {fi}: LBP rect {v:?} is not x y w h"));
                }
                let r = Rect { x: v[0], y: v[1], w: v[2], h: v[3] };
                if r.x < 0 || r.y < 0 || r.x + 3 * r.w > width || r.y + 3 * r.h > height {
                    return Err(format!("feature {fi}: LBP blocks {r:?} outside the {width}x{height} window"));
                }
                features.push(Feature::Lbp(r));
                continue;
            }
            let mut rects = Vec::new();
            for r in items(child(f, "rects").ok_or(format!("feature {fi}: no rects"))?) {
                let v: Vec<f32> = r.text().and_then(numbers).ok_or(format!("feature {fi}: bad rect"))?;
                if v.len() != 5 {
                    return Err(format!("feature {fi}: rect has {} numbers, expected 5", v.len()));
                }
                let rect = Rect { x: v[0] as i32, y: v[1] as i32, w: v[2] as i32, h: v[3] as i32 };
                if rect.x < 0 || rect.y < 0 || rect.x + rect.w > width || rect.y + rect.h > height {
                    return Err(format!("feature {fi}: rect {rect:?} outside the {width}x{height} window"));
                }
                rects.push((rect, v[4]));
            }
            features.push(Feature::Haar(rects));
        }
        for (si, s) in stages.iter().enumerate() {
            for t in &s.trees {
                if t.nodes.iter().any(|n| n.feature >= features.len()) {
                    return Err(format!("stage {si}: feature index out of range"));
                }
                if t.leaves.is_empty() {
                    return Err(format!("stage {si}: tree without leaves"));
                }
            }
        }
        if stages.is_empty() {
            return Err("no stages".into());
        }
        Ok(HaarCascade {
            width,
            height,
            stages,
            features,
            lbp,
            subsets,
            params: DetectParams::default(),
            plans: Kept::default(),
            pool: Kept::default(),
            last: None,
        })
    }

    /// The stump plan for `stride`, made now if not kept.
    fn plan(&self, stride: usize) -> std::sync::Arc<Option<StumpPlan>> {
        let mut plans = self.plans.lock();
        if let Some((_, plan)) = plans.iter().find(|(s, _)| *s == stride) {
            return plan.clone();
        }
        let plan = std::sync::Arc::new(StumpPlan::new(self, stride));
        if plans.len() == PLANS_KEPT {
            plans.remove(0);
        }
        plans.push((stride, plan.clone()));
        plan
    }

    /// A pool of `workers` threads, made now if the last one had another number.
    fn pool(&self, workers: usize) -> std::sync::Arc<crate::pool::Pool> {
        let mut kept = self.pool.lock();
        match kept.as_ref() {
            Some(p) if p.workers() == workers => p.clone(),
            _ => kept.insert(std::sync::Arc::new(crate::pool::Pool::new(workers))).clone(),
        }
    }

    /// Window size of the cascade.
    pub fn window(&self) -> (u32, u32) {
        (self.width as u32, self.height as u32)
    }

    /// Stage result for the window at `(x, y)`: 1 = face, `-k` = rejected at stage k (0 for the
    /// first stage), -1 also for windows too flat to evaluate (OpenCV's variance check).
    fn window_result(&self, ii: &Integral, x: usize, y: usize) -> i32 {
        if self.lbp {
            // OpenCV's LBP evaluator has no variance normalisation.
            return self.classify(|fi, n| {
                let Feature::Lbp(r) = &self.features[fi] else { unreachable!("LBP cascade with a Haar feature") };
                let c = lbp_code(ii, x, y, r) as usize;
                let subset = &self.subsets[n.subset];
                // Bit set: the "left" leaf.
                (subset[c >> 5] & (1 << (c & 31))) != 0
            });
        }
        let norm = Rect { x: 1, y: 1, w: self.width - 2, h: self.height - 2 };
        let area = (norm.w * norm.h) as f64;
        let valsum = ii.sum(x, y, &norm) as f64;
        let nf = area * ii.sq(x, y, &norm) - valsum * valsum;
        // OpenCV rejects flat windows (area / sqrt(nf) >= 0.1) before any stage.
        if !(nf > 0.0 && area / nf.sqrt() < 0.1) {
            return -1;
        }
        let inv = (1.0 / nf.sqrt()) as f32;
        self.classify(|fi, n| {
            let Feature::Haar(rects) = &self.features[fi] else { unreachable!("Haar cascade with an LBP feature") };
            rects.iter().map(|(r, wgt)| wgt * ii.sum(x, y, r) as f32).sum::<f32>() * inv < n.threshold
        })
    }

    /// Runs the cascade at every position of one pyramid level, or of the part of one at
    /// `(ox, oy)` in the level (with `fresh`, only where a window sees a changed pixel); pushes
    /// hits, as hits of level `li` scaled by `factor` to the original image, into `out`. The
    /// level's integral image has row stride `stride` (at least its width + 1), the stride
    /// `plan` was made for.
    fn scan_level(
        &self,
        img: &GrayImage,
        (li, (ox, oy)): (usize, (u32, u32)),
        (factor, step): (f64, usize),
        (stride, plan): (usize, Option<&StumpPlan>),
        fresh: Option<&Fresh>,
        out: &mut Vec<Hit>,
    ) {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (ww, wh) = (self.width as usize, self.height as usize);
        if w < ww || h < wh {
            return;
        }
        let ii = Integral::with_squares(img, !self.lbp, stride);
        let (win_w, win_h) = (cvround(ww as f64 * factor), cvround(wh as f64 * factor));
        let hit = |x: usize, y: usize| {
            let at = (ox + x as u32, oy + y as u32);
            let rect = Rect { x: cvround(at.0 as f64 * factor), y: cvround(at.1 as f64 * factor), w: win_w, h: win_h };
            Hit { level: li, at, rect }
        };
        // Runs of windows: whole rows, or (`fresh`) those that see a change; `(y, first
        // position, end position)` in the part, positions `step` apart.
        let positions = (w - ww) / step + 1;
        let runs: Vec<(usize, usize, usize)> = match fresh {
            None => (0..=h - wh).step_by(step).map(|y| (y, 0, positions)).collect(),
            Some(f) => {
                let (ox, oy) = (ox as usize, oy as usize);
                f.runs
                    .iter()
                    .map(|&(y, a, b)| (y as usize - oy, (a as usize - ox) / step, (b as usize - ox) / step))
                    .collect()
            }
        };
        if let Some(plan) = plan {
            // A run's windows in batches (rows.rs), the same hits as the loop below.
            let mut xs = Vec::new();
            for (y, first, end) in runs {
                rows::scan_row(plan, &ii, (first * step, y), end - first, step, &mut xs);
                out.extend(xs.drain(..).map(|x| hit(x, y)));
            }
            return;
        }
        for (y, first, end) in runs {
            let mut x = first * step;
            while x < end * step {
                // Only cascades without a stump plan get here (deeper trees): the tree walk.
                let result = self.window_result(&ii, x, y);
                if result > 0 {
                    out.push(hit(x, y));
                }
                // As OpenCV: a window rejected by the first stage also skips the next position.
                x += if result == 0 { 2 * step } else { step };
            }
        }
    }

    /// 1 if the window passes every stage, otherwise `-stage` (0 for the first stage).
    /// `goes_left(feature, node)` evaluates a node's test.
    fn classify(&self, goes_left: impl Fn(usize, &Node) -> bool) -> i32 {
        for (si, s) in self.stages.iter().enumerate() {
            let mut total = 0.0f32;
            for t in &s.trees {
                let mut idx = 0usize;
                loop {
                    let n = &t.nodes[idx];
                    let next = if goes_left(n.feature, n) { n.left } else { n.right };
                    if next <= 0 {
                        total += t.leaves[(-next) as usize];
                        break;
                    }
                    idx = next as usize;
                }
            }
            if total < s.threshold {
                return -(si as i32);
            }
        }
        1
    }

    /// Detected rectangles before grouping, over all pyramid levels, in level order, in the full
    /// image's pixels. For a part of an image, the levels are the parts of the whole image's
    /// levels that its pixels determine (bit for bit the same pixels), and the windows those
    /// lying in them, at the whole image's positions: the hits are the whole image's hits there,
    /// except where OpenCV's rule of skipping the position after a first-stage rejection, which
    /// depends on the row's windows to the left of the part, visits other positions. With
    /// `p.threads` > 1 the levels are shared out to that many threads, this one and the
    /// cascade's pool of `p.threads - 1` kept between calls (largest first, each thread taking
    /// the next unscanned level), and the hits are still returned in level order.
    pub fn raw_detections<'a>(&self, img: impl Into<GrayView<'a>>, p: &DetectParams) -> Vec<Rect> {
        self.raw_hits(img.into(), p, None).into_iter().map(|h| h.rect).collect()
    }

    /// [`HaarCascade::raw_detections`], as hits. With `since`, where a whole image changed
    /// since a search with the same parameters, and that search's hits: only the windows that
    /// see a changed pixel are scanned (in runs, each starting OpenCV's skipping rule afresh),
    /// and the earlier hits of the others are kept; each level's hits in row order.
    fn raw_hits(&self, img: GrayView, p: &DetectParams, since: Option<(&Changed, &[Hit])>) -> Vec<Hit> {
        let (iw, ih) = (img.image.width() as f64, img.image.height() as f64);
        let max = if p.max_size == 0 { f64::MAX } else { p.max_size as f64 };
        let mut levels = Vec::new();
        let mut factor = 1.0f64;
        loop {
            let (ww, wh) = (cvround(self.width as f64 * factor) as f64, cvround(self.height as f64 * factor) as f64);
            if ww > max || wh > max || ww > iw || wh > ih {
                break;
            }
            if ww >= p.min_size as f64 && wh >= p.min_size as f64 {
                levels.push(factor);
            }
            factor *= p.scale_factor;
        }
        // One integral-image stride for every level (the widest level's, rounded up), so that
        // one stump plan serves the whole pyramid, and the next calls on images about as wide.
        let stride = (img.image.width() as usize + 1).next_multiple_of(STRIDE_STEP);
        let plan = self.plan(stride);
        let plan = plan.as_ref().as_ref();
        let (fw, fh) = (img.full.0 as f64, img.full.1 as f64);
        let window = (self.width as usize, self.height as usize);
        let scan = |li: usize| {
            let factor = levels[li];
            let (sw, sh) = (cvround(fw / factor).max(1) as u32, cvround(fh / factor).max(1) as u32);
            // OpenCV's window step: 2 pixels of the level, 1 once the level is under half size;
            // a part's level starts at a multiple of it, so its positions are the whole level's.
            let step = if factor > 2.0 { 1 } else { 2 };
            // The level's pixels under the windows centred in `p.centres`: positions `x` with
            // `(x + window / 2) * factor` in the rectangle, and the window's pixels after them.
            let (ww, wh) = (self.width as f64, self.height as f64);
            let want = match p.centres {
                None => [0..sw, 0..sh],
                Some(c) => {
                    let span = |c0: i32, len: i32, win: f64, n: u32| {
                        let first = (c0 as f64 / factor - win / 2.0).ceil().max(0.0);
                        let end = ((c0 + len) as f64 / factor - win / 2.0).floor() + win;
                        first.min(n as f64) as u32..end.clamp(0.0, n as f64) as u32
                    };
                    [span(c.x, c.w, ww, sw), span(c.y, c.h, wh, sh)]
                }
            };
            let mut hits = Vec::new();
            let fresh = since.map(|(changed, _)| Fresh::new(changed, img.full, (sw, sh), window, step));
            // With `since`, the pixels under windows that see a change.
            let want = match &fresh {
                None => Some(want),
                Some(f) => f.bounds(window),
            };
            if let Some((level, origin)) = want.and_then(|want| resize_bilinear_part(img, sw, sh, step as u32, want)) {
                self.scan_level(&level, (li, origin), (factor, step), (stride, plan), fresh.as_ref(), &mut hits);
            }
            if let (Some(fresh), Some((_, last))) = (&fresh, since) {
                hits.extend(last.iter().filter(|h| h.level == li && !fresh.at(h.at.0, h.at.1)));
                hits.sort_by_key(|h| (h.at.1, h.at.0));
            }
            hits
        };
        if p.threads <= 1 || levels.len() <= 1 {
            return (0..levels.len()).flat_map(scan).collect();
        }
        // Levels are taken in order, the largest first, by this thread and the pool's.
        let per_level: Vec<std::sync::OnceLock<Vec<Hit>>> = levels.iter().map(|_| Default::default()).collect();
        self.pool(p.threads - 1).run(levels.len(), &|i| {
            let _ = per_level[i].set(scan(i));
        });
        let per_level: Vec<Vec<Hit>> = per_level.into_iter().map(|l| l.into_inner().unwrap_or_default()).collect();
        per_level.concat()
    }

    /// OpenCV's `detectMultiScale`: raw detections grouped with `groupRectangles(min_neighbors, 0.2)`.
    pub fn detect_rects<'a>(&self, img: impl Into<GrayView<'a>>, p: &DetectParams) -> Vec<Rect> {
        group_rectangles(&self.raw_detections(img, p), p.min_neighbors, 0.2)
    }

    /// The parameters of a [`Detector`] call.
    fn search_params(&self, search: Search) -> DetectParams {
        DetectParams {
            min_size: search.min_face,
            max_size: search.max_face.unwrap_or(self.params.max_size),
            centres: search.centres,
            ..self.params
        }
    }
}

fn face_boxes(rects: Vec<Rect>) -> Vec<FaceBox> {
    rects.into_iter().map(|r| FaceBox { x: r.x as f32, y: r.y as f32, w: r.w as f32, h: r.h as f32 }).collect()
}

impl Detector for HaarCascade {
    fn detect(&mut self, gray: GrayView<'_>, search: Search) -> Vec<FaceBox> {
        face_boxes(self.detect_rects(gray, &self.search_params(search)))
    }

    /// Keeps the hits (before grouping) of each call; given where the image changed since the
    /// last call, scans only the windows that see a changed pixel and keeps the last call's
    /// hits elsewhere (a window's result depends on its own pixels only, as resized from the
    /// image: integral-image sums). The boxes are a whole scan's, but that a run of windows
    /// starts OpenCV's rule of skipping the position after a first-stage rejection afresh.
    fn detect_changed(&mut self, gray: GrayView<'_>, search: Search, changed: Option<&Changed>) -> Vec<FaceBox> {
        let p = self.search_params(search);
        let last = self.last.take();
        if p.centres.is_some() || gray.origin != (0, 0) || gray.image.dimensions() != gray.full {
            return self.detect(gray, search);
        }
        let since = match (changed, &last) {
            (Some(c), Some(l)) if c.view() == gray.full && l.image == gray.full && l.params == p => {
                Some((c, &l.hits[..]))
            }
            _ => None,
        };
        let hits = self.raw_hits(gray, &p, since);
        let rects: Vec<Rect> = hits.iter().map(|h| h.rect).collect();
        self.last = Some(LastScan { image: gray.full, params: p, hits });
        face_boxes(group_rectangles(&rects, p.min_neighbors, 0.2))
    }
}

/// A cascade whose weak classifiers are all stumps (as every face cascade of opencv-data),
/// flattened for one integral-image row stride: each feature is a fixed list of offsets from the
/// window's top-left corner, so a window costs straight-line loads and no index arithmetic (as
/// OpenCV's per-scale `OptFeature`s). Same arithmetic, in the same order, as
/// [`HaarCascade::window_result`], which stays the reference for cascades with deeper trees
/// (unit test `stump_plan_matches_the_tree_walk_on_every_window`).
struct StumpPlan {
    /// Per stage: end of its stumps in `haar` or `lbp`, and its threshold.
    stages: Vec<(usize, f32)>,
    haar: Vec<HaarStump>,
    lbp: Vec<LbpStump>,
    /// Corners of the variance-normalisation rectangle (Haar), and its area.
    norm: [usize; 4],
    area: f64,
    /// Largest offset from a window's top-left index (the window's bottom-right corner).
    span: usize,
}

#[derive(Clone, Copy)]
struct HaarStump {
    /// Corners (`+ - - +`) of up to three rectangles.
    offsets: [[usize; 4]; 3],
    weights: [f32; 3],
    three: bool,
    threshold: f32,
    /// Leaf for `value < threshold`, leaf otherwise.
    leaves: [f32; 2],
}

#[derive(Clone, Copy)]
struct LbpStump {
    /// The 4×4 grid of integral-image corners shared by the 3×3 blocks, row-major.
    grid: [usize; 16],
    subset: [i32; 8],
    /// Leaf for a code in the subset, leaf otherwise.
    leaves: [f32; 2],
}

impl StumpPlan {
    /// The plan for integral images of row stride `stride`, or `None` if a weak classifier is
    /// deeper than a stump.
    fn new(c: &HaarCascade, stride: usize) -> Option<StumpPlan> {
        let corners = |r: &Rect| corner_offsets(stride, 0, 0, r);
        let mut plan = StumpPlan {
            stages: Vec::with_capacity(c.stages.len()),
            haar: Vec::new(),
            lbp: Vec::new(),
            norm: corners(&Rect { x: 1, y: 1, w: c.width - 2, h: c.height - 2 }),
            area: ((c.width - 2) * (c.height - 2)) as f64,
            span: c.height as usize * stride + c.width as usize,
        };
        for s in &c.stages {
            for t in &s.trees {
                let [n] = t.nodes.as_slice() else { return None };
                let leaf = |next: i32| (next <= 0).then(|| t.leaves.get((-next) as usize).copied()).flatten();
                let leaves = [leaf(n.left)?, leaf(n.right)?];
                match &c.features[n.feature] {
                    Feature::Haar(rects) if (1..=3).contains(&rects.len()) => {
                        let mut h = HaarStump {
                            offsets: [[0; 4]; 3],
                            weights: [0.0; 3],
                            three: rects.len() == 3,
                            threshold: n.threshold,
                            leaves,
                        };
                        for (i, (r, w)) in rects.iter().enumerate() {
                            h.offsets[i] = corners(r);
                            h.weights[i] = *w;
                        }
                        plan.haar.push(h);
                    }
                    Feature::Lbp(r) => {
                        let mut grid = [0; 16];
                        for (k, g) in grid.iter_mut().enumerate() {
                            let (i, j) = ((k % 4) as i32, (k / 4) as i32);
                            *g = (r.y + j * r.h) as usize * stride + (r.x + i * r.w) as usize;
                        }
                        plan.lbp.push(LbpStump { grid, subset: c.subsets[n.subset], leaves });
                    }
                    Feature::Haar(_) => return None,
                }
            }
            plan.stages.push((plan.haar.len().max(plan.lbp.len()), s.threshold));
        }
        // window_result reads without bounds checks up to `span` (parse() keeps every rectangle
        // inside the window, so this holds for any cascade that loaded).
        let offsets =
            plan.haar.iter().flat_map(|h| h.offsets.iter().flatten()).chain(plan.lbp.iter().flat_map(|l| &l.grid));
        if offsets.chain(&plan.norm).any(|&o| o > plan.span) {
            return None;
        }
        Some(plan)
    }

    /// As [`HaarCascade::window_result`] for the window whose top-left integral-image index
    /// is `base`: one window at a time, the tests' reference for the row batches of rows.rs.
    #[cfg(test)]
    fn window_result(&self, ii: &Integral, base: usize) -> i32 {
        let win = &ii.sum[base..];
        // One check per window instead of one per load (~8 % of the detector's time).
        assert!(self.span < win.len(), "window at {base} outside the integral image");
        // SAFETY: every offset is <= self.span (checked in new()) and span < win.len().
        let at = |o: usize| unsafe { *win.get_unchecked(o) };
        let sum = |o: &[usize; 4]| at(o[0]) - at(o[1]) - at(o[2]) + at(o[3]);
        let mut start = 0;
        if !self.lbp.is_empty() {
            for (si, &(end, threshold)) in self.stages.iter().enumerate() {
                let mut total = 0.0f32;
                for st in &self.lbp[start..end] {
                    let g: [i32; 16] = std::array::from_fn(|k| at(st.grid[k]));
                    let block = |bx: usize, by: usize| {
                        g[(by + 1) * 4 + bx + 1] - g[by * 4 + bx + 1] - g[(by + 1) * 4 + bx] + g[by * 4 + bx]
                    };
                    let c = block(1, 1);
                    let code =
                        LBP_ORDER.iter().fold(0usize, |code, &(bx, by)| (code << 1) | (block(bx, by) >= c) as usize);
                    total += st.leaves[(st.subset[code >> 5] & (1 << (code & 31)) == 0) as usize];
                }
                if total < threshold {
                    return -(si as i32);
                }
                start = end;
            }
            return 1;
        }
        let sq = &ii.sq[base..];
        let n = &self.norm;
        let valsum = sum(n) as f64;
        let nf = self.area * (sq[n[0]] - sq[n[1]] - sq[n[2]] + sq[n[3]]) - valsum * valsum;
        if !(nf > 0.0 && self.area / nf.sqrt() < 0.1) {
            return -1;
        }
        let inv = (1.0 / nf.sqrt()) as f32;
        for (si, &(end, threshold)) in self.stages.iter().enumerate() {
            let mut total = 0.0f32;
            for st in &self.haar[start..end] {
                let [a, b, c] = &st.offsets;
                let mut v = st.weights[0] * sum(a) as f32 + st.weights[1] * sum(b) as f32;
                if st.three {
                    v += st.weights[2] * sum(c) as f32;
                }
                total += st.leaves[if v * inv < st.threshold { 0 } else { 1 }];
            }
            if total < threshold {
                return -(si as i32);
            }
            start = end;
        }
        1
    }
}

/// Integral-image indices (rows `stride` apart) of the corners of `r` offset by `(ox, oy)`, in
/// the order `+ - - +` of a rectangle sum.
fn corner_offsets(stride: usize, ox: usize, oy: usize, r: &Rect) -> [usize; 4] {
    let (x0, y0) = (ox + r.x as usize, oy + r.y as usize);
    let (x1, y1) = (x0 + r.w as usize, y0 + r.h as usize);
    [y1 * stride + x1, y0 * stride + x1, y1 * stride + x0, y0 * stride + x0]
}

/// Integral and squared-integral images, `(w + 1) × (h + 1)`.
struct Integral {
    stride: usize,
    sum: Vec<i32>,
    sq: Vec<f64>,
}

impl Integral {
    #[cfg(test)]
    fn new(img: &GrayImage) -> Integral {
        Integral::with_squares(img, true, img.width() as usize + 1)
    }

    /// Sums, and squared sums only if `squares` (Haar's variance normalisation; LBP has none),
    /// with rows `stride` (at least `img.width() + 1`) apart.
    fn with_squares(img: &GrayImage, squares: bool, stride: usize) -> Integral {
        let (w, h) = (img.width() as usize, img.height() as usize);
        assert!(stride > w, "integral stride {stride} for an image {w} wide");
        // Padded for the batches of rows::scan_row, which read past a row's last window.
        let mut sum = vec![0i32; stride * (h + 1) + rows::PAD];
        let mut sq = if squares { vec![0f64; stride * (h + 1) + rows::PAD] } else { Vec::new() };
        for (y, row) in img.as_raw().chunks_exact(w.max(1)).take(h).enumerate() {
            let (above, below) = sum[y * stride..(y + 2) * stride].split_at_mut(stride);
            let mut rs = 0i32;
            for (x, &v) in row.iter().enumerate() {
                rs += v as i32;
                below[x + 1] = above[x + 1] + rs;
            }
            if squares {
                let (above, below) = sq[y * stride..(y + 2) * stride].split_at_mut(stride);
                let mut rq = 0f64;
                for (x, &v) in row.iter().enumerate() {
                    rq += v as f64 * v as f64;
                    below[x + 1] = above[x + 1] + rq;
                }
            }
        }
        Integral { stride, sum, sq }
    }

    fn corners(&self, ox: usize, oy: usize, r: &Rect) -> [usize; 4] {
        corner_offsets(self.stride, ox, oy, r)
    }

    /// Sum of pixels of `r` offset by `(ox, oy)`.
    fn sum(&self, ox: usize, oy: usize, r: &Rect) -> i32 {
        let [a, b, c, d] = self.corners(ox, oy, r);
        self.sum[a] - self.sum[b] - self.sum[c] + self.sum[d]
    }

    /// Sum of squared pixels of `r` offset by `(ox, oy)`.
    fn sq(&self, ox: usize, oy: usize, r: &Rect) -> f64 {
        let [a, b, c, d] = self.corners(ox, oy, r);
        self.sq[a] - self.sq[b] - self.sq[c] + self.sq[d]
    }
}

/// OpenCV's LBP feature value (`LBPEvaluator::Feature::calc`): the 3×3 grid of `r.w × r.h`
/// blocks at `(ox + r.x, oy + r.y)`; bit set where an outer block's sum is >= the centre's, from
/// the most significant bit: top-left, top, top-right, right, bottom-right, bottom, bottom-left,
/// left (clockwise).
fn lbp_code(ii: &Integral, ox: usize, oy: usize, r: &Rect) -> u8 {
    // The 4×4 grid of integral-image corners shared by the 9 blocks (16 reads, as OpenCV).
    let (x0, y0, w, h) = (ox + r.x as usize, oy + r.y as usize, r.w as usize, r.h as usize);
    let p = |i: usize, j: usize| ii.sum[(y0 + j * h) * ii.stride + x0 + i * w];
    let mut g = [[0i32; 4]; 4];
    for (j, row) in g.iter_mut().enumerate() {
        for (i, v) in row.iter_mut().enumerate() {
            *v = p(i, j);
        }
    }
    let block = |bx: usize, by: usize| g[by + 1][bx + 1] - g[by][bx + 1] - g[by + 1][bx] + g[by][bx];
    let c = block(1, 1);
    LBP_ORDER.iter().fold(0u8, |code, &(bx, by)| (code << 1) | (block(bx, by) >= c) as u8)
}

/// The outer blocks of an LBP feature from the code's most significant bit (clockwise).
const LBP_ORDER: [(usize, usize); 8] = [(0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (1, 2), (0, 2), (0, 1)];

/// C's `cvRound`: round half to even, as `lrint` does by default.
fn cvround(v: f64) -> i32 {
    v.round_ties_even() as i32
}

/// Bilinear resize with half-pixel centres (OpenCV's INTER_LINEAR, in floating point), of a
/// whole image: [`resize_bilinear_part`] of all of it (the tests' pyramid levels).
#[cfg(test)]
pub(crate) fn resize_bilinear(img: &GrayImage, w: u32, h: u32) -> GrayImage {
    resize_bilinear_part(GrayView::whole(img), w, h, 1, [0..w, 0..h]).expect("a whole image determines its resize").0
}

/// The part of `src.full` resized to `w`×`h` (as a resize of the whole image makes it) that the
/// pixels of `src` determine, within `want` (columns, rows), from multiples of `align` on both
/// axes, with its origin in the resized image; the same pixels, bit for bit (unit test
/// `resize_part_is_that_part_of_the_resize`). `None` if no pixel is determined.
pub(crate) fn resize_bilinear_part(
    src: GrayView,
    w: u32,
    h: u32,
    align: u32,
    want: [std::ops::Range<u32>; 2],
) -> Option<(GrayImage, (u32, u32))> {
    let (iw, ih) = src.image.dimensions();
    let (x0, y0) = src.origin;
    let same = (w, h) == src.full;
    let axis = |m: u32, n: u32, v0: u32, len: u32, want: &std::ops::Range<u32>| -> Option<std::ops::Range<u32>> {
        let r = if same {
            // Not resized: every source pixel is its own.
            v0..v0 + len
        } else {
            let f = n as f32 / m as f32;
            let ok = |d: u32| {
                let (i0, i1, _) = bilinear_coord(d, f, n as usize);
                i0 >= v0 as usize && i1 < (v0 + len) as usize
            };
            let start = (want.start..want.end.min(m)).find(|&d| ok(d))?;
            start..(start..m).find(|&d| !ok(d)).unwrap_or(m)
        };
        let (start, end) = (r.start.max(want.start), r.end.min(want.end));
        let start = start.div_ceil(align.max(1)) * align.max(1);
        (start < end).then_some(start..end)
    };
    let xr = axis(w, src.full.0, x0, iw, &want[0])?;
    let yr = axis(h, src.full.1, y0, ih, &want[1])?;
    let origin = (xr.start, yr.start);
    let img = if same {
        image::imageops::crop_imm(src.image, xr.start - x0, yr.start - y0, xr.len() as u32, yr.len() as u32).to_image()
    } else {
        resize_rows(src, w, h, xr, yr)
    };
    Some((img, origin))
}

/// Pixels `xr`×`yr` of `src.full` resized bilinearly to `w`×`h`, from the pixels of `src`
/// (which must hold every source pixel they read). Each source row's horizontal interpolation is
/// computed once into a row of f32 (reused by the next output row when it starts there), then
/// the vertical one runs over whole rows; the same arithmetic per pixel as interpolating each
/// output pixel from its four neighbours (unit test
/// `bilinear_resize_matches_the_per_pixel_formula`).
fn resize_rows(src: GrayView, w: u32, h: u32, xr: std::ops::Range<u32>, yr: std::ops::Range<u32>) -> GrayImage {
    let (sw, sh) = (src.full.0 as usize, src.full.1 as usize);
    let (ox, oy) = (src.origin.0 as usize, src.origin.1 as usize);
    let iw = src.image.width() as usize;
    let (fx, fy) = (sw as f32 / w as f32, sh as f32 / h as f32);
    let data = src.image.as_raw();
    // Per output column: the two source columns (in `src.image`) and their weights (1 - tx, tx).
    let xs: Vec<_> = xr
        .clone()
        .map(|x| {
            let (x0, x1, tx) = bilinear_coord(x, fx, sw);
            (x0 - ox, x1 - ox, 1.0 - tx, tx)
        })
        .collect();
    let horizontal = |y: usize, out: &mut Vec<f32>| {
        let row = &data[(y - oy) * iw..(y - oy + 1) * iw];
        out.clear();
        out.extend(xs.iter().map(|&(x0, x1, a, b)| row[x0] as f32 * a + row[x1] as f32 * b));
    };
    let (ow, oh) = (xr.len(), yr.len());
    let (mut top, mut bot) = (Vec::with_capacity(ow), Vec::with_capacity(ow));
    // The source rows now in `top` and `bot`.
    let mut rows = (usize::MAX, usize::MAX);
    let mut out = Vec::with_capacity(ow * oh);
    for y in yr {
        let (y0, y1, ty) = bilinear_coord(y, fy, sh);
        if rows.0 != y0 {
            if rows.1 == y0 {
                std::mem::swap(&mut top, &mut bot);
                rows = (y0, usize::MAX);
            } else {
                horizontal(y0, &mut top);
                rows.0 = y0;
            }
        }
        if rows.1 != y1 {
            horizontal(y1, &mut bot);
            rows.1 = y1;
        }
        let (a, b) = (1.0 - ty, ty);
        out.extend(top.iter().zip(&bot).map(|(&t, &u)| (t * a + u * b + 0.5).min(255.0) as u8));
    }
    GrayImage::from_raw(ow as u32, oh as u32, out).expect("w*h pixels")
}

/// Output index `d` on an axis of `n` source pixels scaled by `f`: the two source indices and
/// the weight of the second.
pub(super) fn bilinear_coord(d: u32, f: f32, n: usize) -> (usize, usize, f32) {
    let s = ((d as f32 + 0.5) * f - 0.5).max(0.0);
    let i0 = (s.floor() as usize).min(n - 1);
    let i1 = (i0 + 1).min(n - 1);
    (i0, i1, s - i0 as f32)
}

/// The first and last source pixel that pixels `first..=last` of an axis `n` long, resized
/// bilinearly from `of` source pixels, are interpolated from (each from up to two).
pub(super) fn source_span(first: u32, last: u32, n: u32, of: u32) -> (u32, u32) {
    if n == of {
        return (first, last);
    }
    let f = of as f32 / n as f32;
    (bilinear_coord(first, f, of as usize).0 as u32, bilinear_coord(last, f, of as usize).1 as u32)
}

fn similar(a: &Rect, b: &Rect, eps: f64) -> bool {
    let delta = eps * (a.w.min(b.w) + a.h.min(b.h)) as f64 * 0.5;
    ((a.x - b.x).abs() as f64) <= delta
        && ((a.y - b.y).abs() as f64) <= delta
        && ((a.x + a.w - b.x - b.w).abs() as f64) <= delta
        && ((a.y + a.h - b.y - b.h).abs() as f64) <= delta
}

/// OpenCV's `groupRectangles`: cluster similar rectangles (union-find over the similarity
/// relation), average each cluster, keep clusters with more than `group_threshold` members, and
/// drop small clusters that lie inside a stronger one.
pub fn group_rectangles(rects: &[Rect], group_threshold: usize, eps: f64) -> Vec<Rect> {
    if group_threshold == 0 || rects.is_empty() {
        return rects.to_vec();
    }
    let n = rects.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for i in 0..n {
        for j in i + 1..n {
            if similar(&rects[i], &rects[j], eps) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a] = b;
                }
            }
        }
    }
    let mut label = vec![usize::MAX; n];
    let mut classes: Vec<([i64; 4], usize)> = Vec::new();
    for (i, r) in rects.iter().enumerate() {
        let root = find(&mut parent, i);
        if label[root] == usize::MAX {
            label[root] = classes.len();
            classes.push(([0; 4], 0));
        }
        let c = &mut classes[label[root]];
        c.0[0] += r.x as i64;
        c.0[1] += r.y as i64;
        c.0[2] += r.w as i64;
        c.0[3] += r.h as i64;
        c.1 += 1;
    }
    let avg: Vec<(Rect, usize)> = classes
        .iter()
        .map(|(s, k)| {
            let f = 1.0 / *k as f64;
            let r = |v: i64| cvround(v as f64 * f);
            (Rect { x: r(s[0]), y: r(s[1]), w: r(s[2]), h: r(s[3]) }, *k)
        })
        .collect();
    let mut out = Vec::new();
    for (i, (r1, n1)) in avg.iter().enumerate() {
        if *n1 <= group_threshold {
            continue;
        }
        let inside_stronger = avg.iter().enumerate().any(|(j, (r2, n2))| {
            if j == i || *n2 <= group_threshold {
                return false;
            }
            let dx = cvround(r2.w as f64 * eps);
            let dy = cvround(r2.h as f64 * eps);
            r1.x >= r2.x - dx
                && r1.y >= r2.y - dy
                && r1.x + r1.w <= r2.x + r2.w + dx
                && r1.y + r1.h <= r2.y + r2.h + dy
                && (*n2 > (*n1).max(3) || *n1 < 3)
        });
        if !inside_stronger {
            out.push(*r1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4×4 cascade with one stage of one stump on a two-rectangle feature (left half minus
    /// right half), hand-written in OpenCV's XML format.
    const TINY: &str = r#"<?xml version="1.0"?>
<opencv_storage><cascade type_id="opencv-cascade-classifier">
  <stageType>BOOST</stageType><featureType>HAAR</featureType><height>4</height><width>4</width>
  <stageParams><maxDepth>1</maxDepth></stageParams><featureParams><maxCatCount>0</maxCatCount></featureParams>
  <stageNum>1</stageNum>
  <stages><_><maxWeakCount>1</maxWeakCount><stageThreshold>0.5</stageThreshold>
    <weakClassifiers><_><internalNodes>0 -1 0 -0.1</internalNodes><leafValues>1.0 -1.0</leafValues></_></weakClassifiers></_></stages>
  <features><_><rects><_>0 0 2 4 -1.</_><_>2 0 2 4 1.</_></rects></_></features>
</cascade></opencv_storage>"#;

    #[test]
    fn tiny_cascade_fires_where_the_hand_computed_feature_is_negative() {
        let c = HaarCascade::parse(TINY).unwrap();
        assert_eq!(c.window(), (4, 4));
        // Window: left half bright (200), right half dark (0) → feature = -1*1600 + 0 = -1600.
        // normrect is the inner 2×2 (values 200, 0, 200, 0): sum 400, sq 80000, area 4 →
        // nf = sqrt(4*80000 - 400²) = 400; value = -1600 / 400 = -4 < -0.1 → leaf 1.0 ≥ 0.5 → face.
        let img = GrayImage::from_fn(4, 4, |x, _| image::Luma([if x < 2 { 200 } else { 0 }]));
        assert_eq!(c.classify_window_for_test(&img), 1);
        // Mirrored: value +4 → leaf -1.0 < 0.5 → rejected at stage 0.
        let img = GrayImage::from_fn(4, 4, |x, _| image::Luma([if x < 2 { 0 } else { 200 }]));
        assert_eq!(c.classify_window_for_test(&img), 0);
        // A flat window is rejected by the variance check.
        let flat = GrayImage::from_pixel(4, 4, image::Luma([100]));
        assert!(c.raw_detections(&flat, &DetectParams { min_neighbors: 0, ..Default::default() }).is_empty());
    }

    #[test]
    fn lbp_code_by_hand() {
        // 6x6 image, 2x2 blocks. Block sums (row-major): 4 8 0 / 40 16 16 / 0 20 100.
        // Centre 16; >= 16 clockwise from top-left: tl 4 no, t 8 no, tr 0 no, r 16 yes,
        // br 100 yes, b 20 yes, bl 0 no, l 40 yes -> 0b0001_1101 = 29.
        let blocks = [[1u8, 2, 0], [10, 4, 4], [0, 5, 25]];
        let img = GrayImage::from_fn(6, 6, |x, y| image::Luma([blocks[(y / 2) as usize][(x / 2) as usize]]));
        let ii = Integral::new(&img);
        assert_eq!(lbp_code(&ii, 0, 0, &Rect { x: 0, y: 0, w: 2, h: 2 }), 0b0001_1101);
        // A one-stump LBP cascade whose subset holds only code 29 accepts this window (leaf 0
        // = +1 beats the threshold 0) and rejects a flat one (code 255: leaf 1 = -1).
        let xml = r#"<opencv_storage><cascade><stageType>BOOST</stageType><featureType>LBP</featureType>
            <height>6</height><width>6</width><stages><_><stageThreshold>0.</stageThreshold>
            <weakClassifiers><_><internalNodes>0 -1 0 536870912 0 0 0 0 0 0 0</internalNodes>
            <leafValues>1. -1.</leafValues></_></weakClassifiers></_></stages>
            <features><_><rect>0 0 2 2</rect></_></features></cascade></opencv_storage>"#;
        let c = HaarCascade::parse(xml).unwrap();
        assert_eq!(c.window_result(&ii, 0, 0), 1);
        let flat = Integral::new(&GrayImage::from_pixel(6, 6, image::Luma([7])));
        assert_eq!(c.window_result(&flat, 0, 0), 0);
    }

    /// The astronaut photograph (scripts/fixtures.sh), gray.
    fn astronaut() -> GrayImage {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let photo = root.join(".cache/fixtures/astronaut.png");
        let img = image::open(&photo).unwrap_or_else(|e| panic!("{}: {e} (run scripts/fixtures.sh)", photo.display()));
        fer_core::preprocess::to_gray8(&img)
    }

    /// OpenCV's default frontal-face Haar cascade (opencv-data).
    fn frontal_face() -> HaarCascade {
        HaarCascade::load(Path::new("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml")).unwrap()
    }

    /// Plans are made once per rounded stride and kept, and a kept plan gives the hits a new
    /// one does: regions of the astronaut 100 and 110 px wide share one (stride 128), the whole
    /// photograph has its own; the oldest goes once more strides than PLANS_KEPT were used.
    #[test]
    fn stump_plans_are_kept_by_stride_and_give_the_same_hits() {
        let (gray, c) = (astronaut(), frontal_face());
        let p = DetectParams { min_size: 60, ..DetectParams::default() };
        let region = |w: u32| image::imageops::crop_imm(&gray, 170, 60, w, 110).to_image();
        let (a, b) = (region(100), region(110));
        let mut kept = Vec::new();
        for im in [&a, &b, &gray, &a] {
            let view = GrayView { image: im, origin: (170, 60), full: (512, 512) };
            let view = if im.width() == 512 { GrayView::whole(im) } else { view };
            kept.push(c.raw_detections(view, &p));
            // A clone starts without plans: it makes its own.
            assert_eq!(c.clone().raw_detections(view, &p), *kept.last().unwrap());
        }
        assert!(kept[2].len() > 3, "the face's hits: {:?}", kept[2]);
        assert_eq!(kept[0], kept[3]);
        let strides = |c: &HaarCascade| c.plans.lock().iter().map(|p| p.0).collect::<Vec<_>>();
        assert_eq!(strides(&c), [128, 576]);
        for w in [200, 260, 330] {
            c.raw_detections(&region(w), &p);
        }
        assert_eq!(strides(&c), [576, 256, 320, 384]);
    }

    /// `detect_changed`: with nothing changed, the last call's hits, whatever the pixels; with
    /// everything changed, a whole scan's; with the lower half changed, the last call's hits of
    /// windows above it and a whole scan's of windows that reach it.
    #[test]
    fn detect_changed_scans_only_the_windows_that_see_a_change() {
        let (a, mut c) = (astronaut(), frontal_face());
        c.params.scale_factor = 1.2;
        let search = Search { min_face: 40, ..Default::default() };
        let p = c.search_params(search);
        // B: the photograph's top half moved down, under flat gray: its face 256 px lower.
        let b =
            GrayImage::from_fn(512, 512, |x, y| if y < 256 { image::Luma([128]) } else { *a.get_pixel(x, y - 256) });
        let cells = |f: &dyn Fn(usize) -> bool| {
            Changed::new((512, 512), 16, 32, &(0..32 * 32).map(|i| f(i / 32)).collect::<Vec<_>>())
        };
        let (whole_a, whole_b) = (c.detect(GrayView::whole(&a), search), c.detect(GrayView::whole(&b), search));
        assert_eq!(whole_a.len(), 1, "{whole_a:?}");
        // (The pyramid's pixels fall otherwise on the face: a box a few pixels off.)
        let (fa, fb) = (whole_a[0], whole_b.first().copied().unwrap_or(whole_a[0]));
        assert!(
            whole_b.len() == 1 && (fb.y - fa.y - 256.0).abs() < 8.0 && (fb.x - fa.x).abs() < 8.0,
            "{whole_a:?} {whole_b:?}"
        );
        // No earlier call: the whole image.
        assert_eq!(c.detect_changed(GrayView::whole(&a), search, Some(&cells(&|_| false))), whole_a);
        // Nothing changed: A's face, though B's pixels are given.
        assert_eq!(c.detect_changed(GrayView::whole(&b), search, Some(&cells(&|_| false))), whole_a);
        // Everything changed: B's hits, as a whole scan finds them.
        assert_eq!(c.detect_changed(GrayView::whole(&b), search, Some(&cells(&|_| true))), whole_b);
        let b_hits = c.raw_hits(GrayView::whole(&b), &p, None);
        assert_eq!(c.last.as_ref().unwrap().hits, b_hits);
        // Other parameters or no changes given: a whole scan.
        assert_eq!(
            c.detect_changed(GrayView::whole(&a), Search { min_face: 41, ..search }, Some(&cells(&|_| false))),
            whole_a
        );
        assert_eq!(c.detect_changed(GrayView::whole(&a), search, None), whole_a);
        let a_hits = c.last.as_ref().unwrap().hits.clone();
        // Rows 256 on changed (cell rows 16-31): both faces, A's from the last call.
        let found = c.detect_changed(GrayView::whole(&b), search, Some(&cells(&|row| row >= 16)));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.contains(&whole_a[0]) && found.contains(&whole_b[0]), "{found:?}");
        let got = &c.last.as_ref().unwrap().hits;
        // A window's pixels are resized from up to a pixel or two below its rectangle: windows
        // ending within 4 px of row 256 may be either's.
        let bottom = |h: &Hit| h.rect.y + h.rect.h;
        for h in got {
            let from = if bottom(h) <= 252 {
                a_hits.contains(h)
            } else if bottom(h) >= 260 {
                b_hits.contains(h)
            } else {
                a_hits.contains(h) || b_hits.contains(h)
            };
            assert!(from, "{h:?}");
        }
        let above: Vec<&Hit> = a_hits.iter().filter(|h| bottom(h) <= 252).collect();
        let below: Vec<&Hit> = b_hits.iter().filter(|h| bottom(h) >= 260).collect();
        assert!(above.len() > 3 && below.len() > 3, "{} hits above, {} below", above.len(), below.len());
        assert!(above.iter().chain(&below).all(|h| got.contains(h)));
    }

    /// The flattened stump evaluation against the generic tree walk, on every window position
    /// of a real photograph at three pyramid levels, for OpenCV's Haar and LBP face cascades.
    #[test]
    fn stump_plan_matches_the_tree_walk_on_every_window() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let photo = root.join(".cache/fixtures/astronaut.png");
        let img = image::open(&photo).unwrap_or_else(|e| panic!("{}: {e} (run scripts/fixtures.sh)", photo.display()));
        let gray = fer_core::preprocess::to_gray8(&img);
        for xml in [
            "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
            "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml",
        ] {
            let c = HaarCascade::load(Path::new(xml)).unwrap();
            let (mut windows, mut deep) = (0, 0);
            for size in [200u32, 150, 96] {
                let level = resize_bilinear(&gray, size, size);
                // Rows padded as in raw_detections, where every level has the widest one's stride.
                let ii = Integral::with_squares(&level, !c.lbp, 201);
                let plan = StumpPlan::new(&c, ii.stride).expect("OpenCV's face cascades are stumps");
                for y in 0..=(size as usize - c.height as usize) {
                    for x in 0..=(size as usize - c.width as usize) {
                        let want = c.window_result(&ii, x, y);
                        assert_eq!(plan.window_result(&ii, y * ii.stride + x), want, "{xml}: {size} px, ({x}, {y})");
                        windows += 1;
                        deep += (want < -2 || want == 1) as usize;
                    }
                }
            }
            // The comparison reached past the first stages on some windows.
            assert!(deep > 0 && windows > 30_000, "{xml}: {windows} windows, {deep} past stage 2");
        }
        // A cascade with a two-level tree has no stump plan (it runs the tree walk).
        let tree = TINY.replace("0 -1 0 -0.1", "1 -1 0 -0.1 0 -2 0 0.3").replace("1.0 -1.0", "1.0 -1.0 0.5");
        let c = HaarCascade::parse(&tree).unwrap();
        assert!(StumpPlan::new(&c, 5).is_none());
    }

    #[test]
    fn malformed_cascades_are_errors() {
        assert!(HaarCascade::parse("<x/>").unwrap_err().contains("no <cascade>"));
        assert!(HaarCascade::parse(&TINY.replace("HAAR", "HOG")).unwrap_err().contains("HOG"));
        // A Haar file relabelled LBP: its 4-number nodes are not LBP stumps.
        assert!(HaarCascade::parse(&TINY.replace("HAAR", "LBP")).unwrap_err().contains("multiple of 11"));
        assert!(HaarCascade::parse(&TINY.replace("0 -1 0 -0.1", "0 -1 5 -0.1")).unwrap_err().contains("out of range"));
        assert!(HaarCascade::parse(&TINY.replace("2 0 2 4 1.", "3 0 2 4 1.")).unwrap_err().contains("outside"));
        assert!(HaarCascade::parse(&TINY[..200]).unwrap_err().contains("XML"));
        let e = HaarCascade::load(Path::new("/nonexistent/cascade.xml")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/cascade.xml") && e.contains("opencv-data"), "{e}");
    }

    #[test]
    fn group_rectangles_like_opencv() {
        let r = |x, y, w| Rect { x, y, w, h: w };
        // Three near-identical hits (a face), one lone hit, and a small cluster inside the face.
        let rects =
            [r(100, 100, 50), r(102, 98, 52), r(98, 101, 49), r(300, 300, 40), r(110, 110, 20), r(111, 110, 20)];
        let g = group_rectangles(&rects, 1, 0.2);
        // Face cluster: mean of x (100+102+98)/3 = 100, y (100+98+101)/3 = 99.67 → 100, w 50.33 → 50.
        // The 2-member small cluster lies inside the 3-member one, but n1 = 2 < 3 → dropped.
        assert_eq!(g, vec![r(100, 100, 50)]);
        assert_eq!(group_rectangles(&rects, 0, 0.2).len(), rects.len());
        assert_eq!(group_rectangles(&rects, 3, 0.2), vec![]);
    }

    #[test]
    fn bilinear_resize_halves_by_averaging() {
        let img = GrayImage::from_fn(4, 2, |x, _| image::Luma([(x * 40) as u8]));
        let r = resize_bilinear(&img, 2, 1);
        // Half-pixel centres: dst 0 samples src x = 0.5 → (0 + 40) / 2 = 20; dst 1 → x = 2.5 → 100.
        assert_eq!(r.as_raw(), &vec![20, 100]);
    }

    /// The row-wise resize against the per-pixel formula it replaced, on a noisy image, down and
    /// up, to sizes that do and do not reuse rows.
    #[test]
    fn bilinear_resize_matches_the_per_pixel_formula() {
        let img = GrayImage::from_fn(97, 61, |x, y| image::Luma([((x * 37 + y * 101) ^ (x * y)) as u8]));
        let per_pixel = |w: u32, h: u32| {
            let (fx, fy) = (97.0 / w as f32, 61.0 / h as f32);
            GrayImage::from_fn(w, h, |x, y| {
                let (x0, x1, tx) = bilinear_coord(x, fx, 97);
                let (y0, y1, ty) = bilinear_coord(y, fy, 61);
                let p = |x: usize, y: usize| img.get_pixel(x as u32, y as u32).0[0] as f32;
                let top = p(x0, y0) * (1.0 - tx) + p(x1, y0) * tx;
                let bot = p(x0, y1) * (1.0 - tx) + p(x1, y1) * tx;
                image::Luma([(top * (1.0 - ty) + bot * ty + 0.5).min(255.0) as u8])
            })
        };
        for (w, h) in [(48, 31), (88, 55), (24, 24), (30, 60), (150, 100), (97, 1), (1, 61)] {
            assert_eq!(resize_bilinear(&img, w, h), per_pixel(w, h), "{w}x{h}");
        }
    }

    /// A part of an image, resized as the whole image is, gives that part of the whole image's
    /// resize, bit for bit: parts at several places (inside, on each border), sizes down, up and
    /// unchanged, with and without alignment and a wanted range; and it is the largest such part
    /// (one pixel more on any side would read a source pixel outside the part).
    #[test]
    fn resize_part_is_that_part_of_the_resize() {
        let img = GrayImage::from_fn(97, 61, |x, y| image::Luma([((x * 37 + y * 101) ^ (x * y)) as u8]));
        let mut parts = 0;
        for (w, h) in [(48, 31), (88, 55), (97, 61), (150, 100), (24, 24)] {
            let whole = resize_bilinear(&img, w, h);
            for (x0, y0, pw, ph) in [(10, 7, 40, 30), (0, 0, 30, 61), (50, 20, 47, 41), (33, 0, 1, 61), (5, 5, 3, 3)] {
                let crop = image::imageops::crop_imm(&img, x0, y0, pw, ph).to_image();
                let view = GrayView { image: &crop, origin: (x0, y0), full: (97, 61) };
                for align in [1, 2] {
                    for want in [[0..w, 0..h], [w / 3..w / 2, 0..h / 4]] {
                        let Some((part, (ox, oy))) = resize_bilinear_part(view, w, h, align, want.clone()) else {
                            continue;
                        };
                        parts += 1;
                        let label = format!("{w}x{h} from {x0},{y0} {pw}x{ph}, align {align}, want {want:?}");
                        assert!(ox % align == 0 && oy % align == 0, "{label}: origin {ox},{oy}");
                        assert!(want[0].contains(&ox) && want[1].contains(&oy), "{label}: origin {ox},{oy}");
                        let expect = image::imageops::crop_imm(&whole, ox, oy, part.width(), part.height()).to_image();
                        assert_eq!(part, expect, "{label}");
                        // The part ends where the next column or row would read beyond `crop`
                        // (or at the wanted range's or the image's end).
                        let (fx, fy) = (97.0 / w as f32, 61.0 / h as f32);
                        let (ex, ey) = (ox + part.width(), oy + part.height());
                        let beyond_x = ex == want[0].end.min(w) || bilinear_coord(ex, fx, 97).1 >= (x0 + pw) as usize;
                        let beyond_y = ey == want[1].end.min(h) || bilinear_coord(ey, fy, 61).1 >= (y0 + ph) as usize;
                        assert!(
                            beyond_x && beyond_y,
                            "{label}: part {ox},{oy} {:?} could be larger",
                            part.dimensions()
                        );
                    }
                }
            }
        }
        assert!(parts > 40, "{parts} parts compared");
    }

    impl HaarCascade {
        fn classify_window_for_test(&self, img: &GrayImage) -> i32 {
            self.window_result(&Integral::new(img), 0, 0)
        }
    }
}
