//! Tracking and smoothing: faces keep their id across frames (greedy IoU matching), their class
//! probabilities are smoothed (EMA or a window mean), and the shown label changes only when
//! another class leads by the hysteresis margin, so the display does not flicker. Each track
//! keeps its face's velocity (centre displacement per frame between its last two detections), so
//! the pipeline can look for the face where it will be, not where it was.

use std::collections::VecDeque;

use fer_core::board::{SmoothingKind, TrackingConfig};
use fer_core::preprocess::FaceBox;
use fer_core::{Emotion, NUM_EMOTIONS};
use serde::Serialize;

/// Probabilities in canonical emotion order.
pub type Probs = [f32; NUM_EMOTIONS];

/// Intersection over union of two boxes.
pub fn iou(a: &FaceBox, b: &FaceBox) -> f32 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.w).min(b.x + b.w);
    let y1 = (a.y + a.h).min(b.y + b.h);
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = a.w * a.h + b.w * b.h - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

fn argmax(p: &Probs) -> usize {
    p.iter().enumerate().fold(0, |best, (i, v)| if *v > p[best] { i } else { best })
}

/// One classified face in one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub bbox: FaceBox,
    pub probs: Probs,
}

/// A face as reported for one frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackedFace {
    pub id: u64,
    pub bbox: FaceBox,
    /// This frame's probabilities.
    pub probs: Probs,
    /// Smoothed probabilities.
    pub smoothed: Probs,
    /// The label shown (after hysteresis).
    pub label: Emotion,
    /// Smoothed probability of `label`.
    pub confidence: f32,
    /// `confidence` is below the board's `min_confidence`.
    pub uncertain: bool,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    bbox: FaceBox,
    smoothed: Probs,
    window: VecDeque<Probs>,
    shown: usize,
    /// Frames processed since the last detection.
    missed: u32,
    /// The source frame index of the last detection.
    seen: u64,
    /// Centre displacement per source frame between the last two detections, pixels.
    velocity: (f32, f32),
}

impl Track {
    /// Source frames from the last detection to the frame `index`: at least 1 (a source that
    /// starts counting again, as `bench` reopening it, moves on by one frame).
    fn frames_to(&self, index: u64) -> u64 {
        index.saturating_sub(self.seen).max(1)
    }

    /// `bbox` moved on at `velocity` to the frame `index`.
    fn ahead(&self, index: u64) -> FaceBox {
        let f = self.frames_to(index) as f32;
        FaceBox { x: self.bbox.x + f * self.velocity.0, y: self.bbox.y + f * self.velocity.1, ..self.bbox }
    }
}

/// A face detected in the last frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Its box in the last frame.
    pub last: FaceBox,
    /// Its box moved on by its velocity: where it will be in the frame asked about.
    pub next: FaceBox,
}

/// The tracker.
#[derive(Debug, Clone)]
pub struct Tracker {
    cfg: TrackingConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(cfg: TrackingConfig) -> Tracker {
        Tracker { cfg, tracks: Vec::new(), next_id: 1 }
    }

    /// Forgets every face (the next frame shows another scene); ids are not reused.
    pub fn end_scene(&mut self) {
        self.tracks.clear();
    }

    /// Where the faces detected in the last frame processed were, and where they will be in the
    /// source's frame `index`, moving on at their velocity (for re-detection around them).
    /// Tracks missed in the last frame processed are left out.
    pub fn predicted(&self, index: u64) -> Vec<Prediction> {
        self.tracks
            .iter()
            .filter(|t| t.missed == 0)
            .map(|t| Prediction { last: t.bbox, next: t.ahead(index) })
            .collect()
    }

    /// Feeds the detections of the source's frame `index`; returns the faces seen in it, in
    /// detection order.
    pub fn update(&mut self, index: u64, dets: &[Detection]) -> Vec<TrackedFace> {
        // Greedy matching: highest IoU pair first, against the track's last box or where its
        // velocity has taken it by now, whichever overlaps more (a face that stopped matches the
        // first, a fast one the second).
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            let ahead = t.ahead(index);
            for (di, d) in dets.iter().enumerate() {
                let v = iou(&t.bbox, &d.bbox).max(iou(&ahead, &d.bbox));
                if v >= self.cfg.iou_match {
                    pairs.push((v, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_of: Vec<Option<usize>> = vec![None; dets.len()];
        let mut used = vec![false; self.tracks.len()];
        for (_, ti, di) in pairs {
            if !used[ti] && track_of[di].is_none() {
                used[ti] = true;
                track_of[di] = Some(ti);
            }
        }
        for (ti, t) in self.tracks.iter_mut().enumerate() {
            if !used[ti] {
                t.missed += 1;
            }
        }
        let mut out = Vec::with_capacity(dets.len());
        for (di, d) in dets.iter().enumerate() {
            let ti = match track_of[di] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    let ((x0, y0), (x1, y1), frames) = (t.bbox.centre(), d.bbox.centre(), t.frames_to(index) as f32);
                    t.velocity = ((x1 - x0) / frames, (y1 - y0) / frames);
                    t.bbox = d.bbox;
                    t.missed = 0;
                    t.seen = index;
                    smooth(&self.cfg, t, &d.probs);
                    ti
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        bbox: d.bbox,
                        smoothed: d.probs,
                        window: VecDeque::from([d.probs]),
                        shown: argmax(&d.probs),
                        missed: 0,
                        seen: index,
                        velocity: (0.0, 0.0),
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            let t = &self.tracks[ti];
            let confidence = t.smoothed[t.shown];
            out.push(TrackedFace {
                id: t.id,
                bbox: t.bbox,
                probs: d.probs,
                smoothed: t.smoothed,
                label: Emotion::ALL[t.shown],
                confidence,
                uncertain: confidence < self.cfg.min_confidence,
            });
        }
        let max_missed = self.cfg.max_missed;
        self.tracks.retain(|t| t.missed <= max_missed);
        out
    }
}

fn smooth(cfg: &TrackingConfig, t: &mut Track, p: &Probs) {
    match cfg.smoothing {
        SmoothingKind::Ema => {
            for (s, v) in t.smoothed.iter_mut().zip(p) {
                *s = cfg.ema_alpha * v + (1.0 - cfg.ema_alpha) * *s;
            }
        }
        SmoothingKind::Window => {
            t.window.push_back(*p);
            while t.window.len() > cfg.window {
                t.window.pop_front();
            }
            let n = t.window.len() as f32;
            t.smoothed = [0.0; NUM_EMOTIONS];
            for w in &t.window {
                for (s, v) in t.smoothed.iter_mut().zip(w) {
                    *s += v / n;
                }
            }
        }
    }
    let lead = argmax(&t.smoothed);
    if lead != t.shown && t.smoothed[lead] > t.smoothed[t.shown] + cfg.hysteresis {
        t.shown = lead;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TrackingConfig {
        TrackingConfig {
            iou_match: 0.3,
            max_missed: 2,
            smoothing: SmoothingKind::Ema,
            ema_alpha: 0.5,
            window: 3,
            hysteresis: 0.1,
            min_confidence: 0.35,
        }
    }

    fn b(x: f32) -> FaceBox {
        FaceBox { x, y: 10.0, w: 100.0, h: 100.0 }
    }

    fn one_hot(e: Emotion, v: f32) -> Probs {
        let mut p = [(1.0 - v) / 6.0; NUM_EMOTIONS];
        p[e.index()] = v;
        p
    }

    #[test]
    fn iou_hand_cases() {
        assert_eq!(iou(&b(0.0), &b(0.0)), 1.0);
        assert_eq!(iou(&b(0.0), &b(200.0)), 0.0);
        // Shifted by half: intersection 50*100, union 150*100.
        assert!((iou(&b(0.0), &b(50.0)) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn ids_persist_while_faces_move_and_expire_after_max_missed() {
        let mut t = Tracker::new(cfg());
        let p = one_hot(Emotion::Happy, 0.9);
        let f1 = t.update(0, &[Detection { bbox: b(0.0), probs: p }, Detection { bbox: b(300.0), probs: p }]);
        assert_eq!(f1.iter().map(|f| f.id).collect::<Vec<_>>(), [1, 2]);
        // Both move by 20 px (IoU 0.67); listed in the other order.
        let f2 = t.update(1, &[Detection { bbox: b(320.0), probs: p }, Detection { bbox: b(20.0), probs: p }]);
        assert_eq!(f2.iter().map(|f| f.id).collect::<Vec<_>>(), [2, 1]);
        // Face 1 disappears for 2 frames (allowed), returns: same id.
        t.update(2, &[Detection { bbox: b(320.0), probs: p }]);
        t.update(3, &[Detection { bbox: b(320.0), probs: p }]);
        let f5 = t.update(4, &[Detection { bbox: b(20.0), probs: p }, Detection { bbox: b(320.0), probs: p }]);
        assert_eq!(f5[0].id, 1);
        // Gone for 3 frames (> max_missed 2): a new id.
        for i in 5..8 {
            t.update(i, &[Detection { bbox: b(320.0), probs: p }]);
        }
        let f9 = t.update(8, &[Detection { bbox: b(20.0), probs: p }]);
        assert_eq!(f9[0].id, 3);
    }

    #[test]
    fn velocity_predicts_the_next_box_and_keeps_ids_of_fast_faces() {
        let mut t = Tracker::new(cfg());
        let p = one_hot(Emotion::Happy, 0.9);
        let mut ids = Vec::new();
        // x 0 -> 40 -> 100 -> 160 -> 220, y half as much: the first step overlaps the last box
        // by IoU 4800/15200 = 0.32 >= iou_match 0.3; the steps of 60 px by 2800/17200 = 0.16,
        // but the box moved on by the last step by 7200/12800 = 0.56, then 1.
        for (i, x) in [0.0, 40.0, 100.0, 160.0, 220.0].into_iter().enumerate() {
            let f = t.update(i as u64, &[Detection { bbox: FaceBox { y: 10.0 + x / 2.0, ..b(x) }, probs: p }]);
            ids.push(f[0].id);
        }
        assert_eq!(ids, [1, 1, 1, 1, 1]);
        let last = FaceBox { y: 120.0, ..b(220.0) };
        assert_eq!(t.predicted(5), [Prediction { last, next: FaceBox { y: 10.0 + 140.0, ..b(280.0) } }]);
        // The face stops: it still matches its last box.
        let f = t.update(5, &[Detection { bbox: FaceBox { y: 120.0, ..b(220.0) }, probs: p }]);
        assert_eq!(f[0].id, 1);
        assert_eq!(t.predicted(6), [Prediction { last, next: last }]);
        // Missed in a frame: not predicted (the pipeline looks for it again only in a full
        // pass); found again 2 frames after its last detection, the velocity is per frame.
        t.update(6, &[]);
        assert_eq!(t.predicted(7), []);
        t.update(7, &[Detection { bbox: FaceBox { y: 120.0, ..b(260.0) }, probs: p }]);
        let (last, next) = (FaceBox { y: 120.0, ..b(260.0) }, FaceBox { y: 120.0, ..b(280.0) });
        assert_eq!(t.predicted(8), [Prediction { last, next }]);
        // Without the velocity the 60-px steps are new faces.
        let mut still = Tracker::new(cfg());
        let ids: Vec<u64> = [0.0, 60.0, 120.0]
            .into_iter()
            .enumerate()
            .map(|(i, x)| still.update(i as u64, &[Detection { bbox: b(x), probs: p }])[0].id)
            .collect();
        assert_eq!(ids, [1, 2, 3]);
    }

    #[test]
    fn velocity_counts_the_source_s_frames_not_the_frames_processed() {
        // A face moving 20 px every source frame (a camera), of which only some are processed
        // (the pipeline took the newest frame and left the others): frames 0, 1, 3, 4, 7, 8.
        let mut t = Tracker::new(cfg());
        let p = one_hot(Emotion::Happy, 0.9);
        let at = |i: u64| b(20.0 * i as f32);
        let mut predicted = Vec::new();
        for i in [0, 1, 3, 4, 7, 8] {
            predicted.push(t.predicted(i).first().map(|p| p.next.x));
            assert_eq!(t.update(i, &[Detection { bbox: at(i), probs: p }])[0].id, 1, "frame {i}");
        }
        // Frame 1: no velocity yet (where frame 0's face was); then 20 px a source frame from
        // the last detection: frame 3 at 20 + 2 * 20, frame 7 at 80 + 3 * 20.
        assert_eq!(predicted, [None, Some(0.0), Some(60.0), Some(80.0), Some(140.0), Some(160.0)]);
        // Missed in frame 9 (missed counts frames processed); found again at frame 12: the
        // velocity is over the 4 source frames since frame 8, and a source counting from 0
        // again (reopened) moves on by one frame.
        t.update(9, &[]);
        assert_eq!(t.update(12, &[Detection { bbox: at(12), probs: p }])[0].id, 1);
        assert_eq!(t.predicted(14)[0].next.x, at(14).x);
        assert_eq!(t.predicted(0)[0].next.x, at(13).x);
    }

    #[test]
    fn ema_is_hand_computed_and_hysteresis_stops_flicker() {
        let mut t = Tracker::new(cfg());
        let happy = one_hot(Emotion::Happy, 0.6);
        let f = t.update(1, &[Detection { bbox: b(0.0), probs: happy }]);
        assert_eq!(f[0].label, Emotion::Happy);
        // A single frame where surprise narrowly wins: EMA (alpha 0.5) gives happy 0.35 and
        // surprise (0.0667 + 0.55) / 2 = 0.308; no switch.
        let mut blip = [0.05; NUM_EMOTIONS];
        blip[Emotion::Surprise.index()] = 0.55;
        blip[Emotion::Happy.index()] = 0.1;
        let f = t.update(2, &[Detection { bbox: b(0.0), probs: blip }]);
        let expect_happy = 0.5 * 0.1 + 0.5 * 0.6;
        assert!((f[0].smoothed[Emotion::Happy.index()] - expect_happy).abs() < 1e-6);
        assert_eq!(f[0].label, Emotion::Happy);
        // Surprise persists: after the next frame surprise 0.429 vs happy 0.225: switch.
        let f = t.update(3, &[Detection { bbox: b(0.0), probs: blip }]);
        assert_eq!(f[0].label, Emotion::Surprise);
        // A lead smaller than the hysteresis does not switch back.
        let mut close = [0.0; NUM_EMOTIONS];
        close[Emotion::Happy.index()] = 0.5;
        close[Emotion::Surprise.index()] = 0.45;
        let mut tr = Tracker::new(TrackingConfig { ema_alpha: 1.0, ..cfg() });
        tr.update(4, &[Detection { bbox: b(0.0), probs: one_hot(Emotion::Surprise, 0.9) }]);
        let f = tr.update(5, &[Detection { bbox: b(0.0), probs: close }]);
        assert_eq!(f[0].label, Emotion::Surprise);
        assert!(!f[0].uncertain);
    }

    #[test]
    fn window_mean_and_uncertainty() {
        let mut t = Tracker::new(TrackingConfig { smoothing: SmoothingKind::Window, window: 2, ..cfg() });
        t.update(6, &[Detection { bbox: b(0.0), probs: one_hot(Emotion::Sad, 1.0) }]);
        t.update(7, &[Detection { bbox: b(0.0), probs: one_hot(Emotion::Sad, 0.0) }]);
        let f = t.update(8, &[Detection { bbox: b(0.0), probs: one_hot(Emotion::Sad, 0.2) }]);
        // window of the last 2: (0.0 + 0.2) / 2
        assert!((f[0].smoothed[Emotion::Sad.index()] - 0.1).abs() < 1e-6);
        // The other classes average 0.15: below sad + hysteresis (0.2), so sad stays, uncertain.
        assert_eq!(f[0].label, Emotion::Sad);
        assert!(f[0].uncertain);
    }
}
