//! Frame sources: where frames come from. All implement [`FrameSource`]. The camera's
//! reconnection logic is in [`camera`]; its V4L2 driver (nokhwa) in `v4l` behind the `camera`
//! feature, and a Raspberry Pi Camera Module through rpicam-vid in [`rpicam`] (every build).
//!
//! ```
//! use fer_device::source::{Frame, FrameSource, SourceError};
//! /// A source that yields one gray frame.
//! struct Once(bool);
//! impl FrameSource for Once {
//!     fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
//!         if std::mem::replace(&mut self.0, true) { return Ok(None); }
//!         Ok(Some(Frame { index: 0, name: "blank".into(), image: image::DynamicImage::new_luma8(64, 48), new_scene: true }))
//!     }
//!     fn describe(&self) -> String { "one blank frame".into() }
//! }
//! ```

pub mod camera;
pub mod command;
mod folder;
mod mjpeg;
pub mod pixels;
mod raw;
#[cfg(feature = "camera")]
pub mod v4l;

use std::path::PathBuf;

pub use fer_core::preprocess::ColorMode;
pub use folder::{FolderSource, SingleImage};
pub use mjpeg::MjpegSource;
pub use raw::RawSource;

/// One frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// 0-based frame counter of the source.
    pub index: u64,
    /// File name, or `stream#N` / `camera#N`.
    pub name: String,
    pub image: image::DynamicImage,
    /// The first frame of a new scene: faces of earlier frames do not continue into it (every
    /// file of `photos:DIR`, a camera's first frame after it was reopened). A frame of another
    /// size than the last one starts a new scene too.
    pub new_scene: bool,
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

/// What [`FrameSource::poll_frame`] found.
#[derive(Debug)]
pub enum Polled {
    /// What [`FrameSource::next_frame`] returns.
    Next(Result<Option<Frame>, SourceError>),
    /// No frame came within the time given; ask again.
    Waiting,
}

/// A sequence of frames.
pub trait FrameSource {
    /// The next frame; `Ok(None)` at the end of a finite source.
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;
    /// Human-readable description for logs.
    fn describe(&self) -> String;
    /// The next frame, or [`Polled::Waiting`] after about `wait` without one, where the source
    /// can give up waiting (one read on another thread: [`Prefetch`]); others block as
    /// [`FrameSource::next_frame`] does.
    fn poll_frame(&mut self, wait: std::time::Duration) -> Polled {
        let _ = wait;
        Polled::Next(self.next_frame())
    }
    /// Frames left unread because a newer one came first ([`Prefetch::spawn_newest`]: a live
    /// camera faster than the pipeline).
    fn skipped(&self) -> u64 {
        0
    }
}

/// Decodes an in-memory PNG/JPEG to `color`, naming `path` in errors. JPEGs without Huffman
/// tables (frames saved from an MJPEG camera) get the standard ones ([`pixels::decode_jpeg_as`]).
pub(crate) fn decode(
    bytes: &[u8],
    path: &std::path::Path,
    color: ColorMode,
) -> Result<image::DynamicImage, SourceError> {
    let decoded = if bytes.starts_with(&[0xFF, 0xD8]) {
        pixels::decode_jpeg_as(bytes, color)
    } else {
        image::load_from_memory(bytes).map_err(|e| format!("not a decodable image: {e}")).map(|image| match color {
            ColorMode::Gray => image::DynamicImage::ImageLuma8(fer_core::preprocess::to_gray8(&image)),
            ColorMode::Rgb => image,
        })
    };
    decoded.map_err(|message| SourceError::Frame { path: path.to_path_buf(), message })
}

type Pending = Result<Option<Frame>, SourceError>;

/// Reads a source on a thread of its own, so that reading and decoding the next frame overlaps
/// detection and classification of this one on boards with more than one core. The source is
/// opened on that thread too, so it need not be `Send` (a camera handle).
///
/// [`Prefetch::spawn`] hands over every frame, in order, up to `depth` ahead (files,
/// recordings). [`Prefetch::spawn_newest`] reads a live camera as fast as it sends and hands
/// over only its newest frame: a pipeline slower than the camera works on what the camera sees
/// now, not on frames queued up in the driver, the camera program's buffers and the pipe
/// (which would lag more the slower the board). Per-frame errors and the end are never skipped.
///
/// Dropping it stops the thread at its next frame. It is not joined, so a camera that is being
/// reconnected (which may take forever) cannot hold up the exit.
pub struct Prefetch {
    handoff: Handoff,
    description: String,
    finished: bool,
}

enum Handoff {
    Queue(std::sync::mpsc::Receiver<Pending>),
    Newest(std::sync::Arc<Newest>),
}

/// The newest frame and what must not be skipped, between the reading thread and the reader.
#[derive(Default)]
struct Newest {
    state: std::sync::Mutex<NewestState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct NewestState {
    /// At most one frame (the newest), after the per-frame errors and before the end.
    items: std::collections::VecDeque<Pending>,
    skipped: u64,
    /// The reading thread has stopped (also by a panic).
    reader_done: bool,
    /// The [`Prefetch`] was dropped: the reading thread stops.
    reader_gone: bool,
}

/// Per-frame errors kept for a reader that has stopped reading (the oldest go first).
const MAX_PENDING: usize = 16;

impl Newest {
    fn lock(&self) -> std::sync::MutexGuard<'_, NewestState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the reading thread read; `false` once nobody reads any more.
    fn put(&self, next: Pending) -> bool {
        let mut s = self.lock();
        if s.reader_gone {
            return false;
        }
        if matches!(next, Ok(Some(_))) {
            let before = s.items.len();
            s.items.retain(|p| !matches!(p, Ok(Some(_))));
            s.skipped += (before - s.items.len()) as u64;
        }
        s.items.push_back(next);
        while s.items.len() > MAX_PENDING {
            s.items.pop_front();
        }
        self.changed.notify_all();
        true
    }

    /// The next item; `Some(None)`: the reading thread stopped without the end (a panic);
    /// `None`: nothing came within `wait`.
    fn take(&self, wait: Option<std::time::Duration>) -> Option<Option<Pending>> {
        let deadline = wait.map(|w| std::time::Instant::now() + w);
        let mut s = self.lock();
        loop {
            if let Some(p) = s.items.pop_front() {
                return Some(Some(p));
            }
            if s.reader_done {
                return Some(None);
            }
            s = match deadline {
                None => self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.changed.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }
}

/// Marks the reading thread stopped when it ends, also by unwinding from a panic.
struct ReaderDone(std::sync::Arc<Newest>);

impl Drop for ReaderDone {
    fn drop(&mut self) {
        self.0.lock().reader_done = true;
        self.0.changed.notify_all();
    }
}

impl Prefetch {
    /// Opens a source with `open` on a new thread, which reads up to `depth` frames ahead;
    /// `open`'s error is returned here.
    pub fn spawn<E: Send + 'static>(
        depth: usize,
        open: impl FnOnce() -> Result<Box<dyn FrameSource>, E> + Send + 'static,
    ) -> Result<Prefetch, E> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Pending>(depth.max(1));
        let serve = move |mut source: Box<dyn FrameSource>| loop {
            let next = source.next_frame();
            let last = matches!(next, Ok(None) | Err(SourceError::Fatal { .. }));
            // A send fails once the reader is gone: stop reading.
            if tx.send(next).is_err() || last {
                break;
            }
        };
        // Not joined (see above): the thread handle is dropped.
        let (description, _) = crate::worker::spawn_opened("frame-reading", open, |s| s.describe(), serve)?;
        Ok(Prefetch { handoff: Handoff::Queue(rx), description, finished: false })
    }

    /// Opens a live source with `open` on a new thread, which reads it as fast as it sends and
    /// keeps only the newest frame (see the type's notes); `open`'s error is returned here.
    pub fn spawn_newest<E: Send + 'static>(
        open: impl FnOnce() -> Result<Box<dyn FrameSource>, E> + Send + 'static,
    ) -> Result<Prefetch, E> {
        let newest = std::sync::Arc::new(Newest::default());
        let shared = newest.clone();
        let serve = move |mut source: Box<dyn FrameSource>| {
            let _done = ReaderDone(shared.clone());
            loop {
                let next = source.next_frame();
                let last = matches!(next, Ok(None) | Err(SourceError::Fatal { .. }));
                if !shared.put(next) || last {
                    break;
                }
            }
        };
        let (description, _) = crate::worker::spawn_opened("frame-reading", open, |s| s.describe(), serve)?;
        Ok(Prefetch { handoff: Handoff::Newest(newest), description, finished: false })
    }

    /// What the reading thread sent (`None`: it stopped without the end).
    fn received(&mut self, next: Option<Pending>) -> Pending {
        // The thread always sends the end (or a fatal error) before it stops; stopping without
        // one means it panicked, which must not pass for the end of the source.
        let next = next.unwrap_or_else(|| {
            Err(SourceError::Fatal {
                path: self.description.clone().into(),
                message: "the frame-reading thread stopped unexpectedly (a bug: see its panic message)".into(),
            })
        });
        self.finished = matches!(next, Ok(None) | Err(SourceError::Fatal { .. }));
        next
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Handoff::Newest(n) = &self.handoff {
            n.lock().reader_gone = true;
        }
    }
}

impl FrameSource for Prefetch {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.finished {
            return Ok(None);
        }
        let next = match &self.handoff {
            Handoff::Queue(rx) => rx.recv().ok(),
            Handoff::Newest(n) => n.take(None).flatten(),
        };
        self.received(next)
    }

    fn describe(&self) -> String {
        match self.handoff {
            Handoff::Queue(_) => format!("{} (read ahead on a second thread)", self.description),
            Handoff::Newest(_) => format!("{} (read on a second thread, newest frame first)", self.description),
        }
    }

    fn poll_frame(&mut self, wait: std::time::Duration) -> Polled {
        if self.finished {
            return Polled::Next(Ok(None));
        }
        let next = match &self.handoff {
            Handoff::Queue(rx) => match rx.recv_timeout(wait) {
                Ok(next) => Some(next),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Polled::Waiting,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            },
            Handoff::Newest(n) => match n.take(Some(wait)) {
                Some(next) => next,
                None => return Polled::Waiting,
            },
        };
        Polled::Next(self.received(next))
    }

    fn skipped(&self) -> u64 {
        match &self.handoff {
            Handoff::Queue(_) => 0,
            Handoff::Newest(n) => n.lock().skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames 0..n, a per-frame error at index `bad`, then the end.
    struct Counting {
        next: u64,
        n: u64,
        bad: u64,
    }

    impl FrameSource for Counting {
        fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
            let i = self.next;
            self.next += 1;
            if i == self.bad {
                return Err(SourceError::Frame { path: format!("f{i}").into(), message: "corrupt".into() });
            }
            Ok((i < self.n).then(|| Frame {
                index: i,
                name: format!("f{i}"),
                image: image::DynamicImage::new_luma8(2, 2),
                new_scene: false,
            }))
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    #[test]
    fn prefetch_keeps_order_errors_and_end() {
        let mut p = Prefetch::spawn(2, || Ok::<_, String>(Box::new(Counting { next: 0, n: 6, bad: 3 }) as _)).unwrap();
        assert!(p.describe().starts_with("counting"));
        let mut seen = Vec::new();
        loop {
            match p.next_frame() {
                Ok(Some(f)) => seen.push(f.name),
                Ok(None) => break,
                Err(e) => seen.push(format!("error {e}")),
            }
        }
        assert_eq!(seen, ["f0", "f1", "f2", "error f3: corrupt", "f4", "f5"]);
        assert!(p.next_frame().unwrap().is_none(), "stays at the end");
    }

    /// Two frames, then a panic (a bug in a source).
    struct Panicking(u64);

    impl FrameSource for Panicking {
        fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
            self.0 += 1;
            assert!(self.0 <= 2, "source bug");
            Ok(Some(Frame {
                index: self.0 - 1,
                name: "p".into(),
                image: image::DynamicImage::new_luma8(2, 2),
                new_scene: false,
            }))
        }
        fn describe(&self) -> String {
            "panicking".into()
        }
    }

    #[test]
    fn prefetch_reports_a_dead_reader_as_fatal_not_as_the_end() {
        let mut p = Prefetch::spawn(1, || Ok::<_, String>(Box::new(Panicking(0)) as _)).unwrap();
        assert_eq!(p.next_frame().unwrap().unwrap().index, 0);
        assert_eq!(p.next_frame().unwrap().unwrap().index, 1);
        let e = p.next_frame().unwrap_err();
        assert!(matches!(e, SourceError::Fatal { .. }) && e.to_string().contains("stopped unexpectedly"), "{e}");
        assert!(p.next_frame().unwrap().is_none());
    }

    /// One frame, then nothing ever again (a camera being reopened, a quiet pipe).
    struct Stalling(bool);

    impl FrameSource for Stalling {
        fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
            if std::mem::replace(&mut self.0, true) {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
            Ok(Some(Frame {
                index: 0,
                name: "s".into(),
                image: image::DynamicImage::new_luma8(2, 2),
                new_scene: false,
            }))
        }
        fn describe(&self) -> String {
            "stalling".into()
        }
    }

    #[test]
    fn polling_prefetch_gives_up_waiting_and_keeps_the_frames() {
        let mut p = Prefetch::spawn(1, || Ok::<_, String>(Box::new(Stalling(false)) as _)).unwrap();
        let wait = std::time::Duration::from_millis(100);
        assert!(matches!(p.poll_frame(wait), Polled::Next(Ok(Some(f))) if f.name == "s"));
        let t = std::time::Instant::now();
        assert!(matches!(p.poll_frame(wait), Polled::Waiting));
        assert!(t.elapsed() >= std::time::Duration::from_millis(90), "{:?}", t.elapsed());
        assert!(matches!(p.poll_frame(wait), Polled::Waiting), "and again");
        // A source read on the caller's thread cannot give up: it returns what it reads.
        let mut direct = Counting { next: 0, n: 1, bad: 9 };
        assert!(matches!(direct.poll_frame(wait), Polled::Next(Ok(Some(f))) if f.name == "f0"));
        assert!(matches!(direct.poll_frame(wait), Polled::Next(Ok(None))));
    }

    /// Whatever the test feeds it, as it comes; the end when the feed is dropped.
    struct Fed(std::sync::mpsc::Receiver<Result<u64, String>>);

    impl FrameSource for Fed {
        fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
            match self.0.recv() {
                Ok(Ok(i)) => Ok(Some(Frame {
                    index: i,
                    name: format!("f{i}"),
                    image: image::DynamicImage::new_luma8(2, 2),
                    new_scene: false,
                })),
                Ok(Err(message)) => Err(SourceError::Frame { path: "cam".into(), message }),
                Err(_) => Ok(None),
            }
        }
        fn describe(&self) -> String {
            "fed".into()
        }
    }

    /// Waits until `p` has skipped `n` frames (the reading thread has read what it was fed).
    fn until_skipped(p: &Prefetch, n: u64) {
        let t = std::time::Instant::now();
        while p.skipped() < n {
            assert!(t.elapsed().as_secs() < 10, "skipped {} of {n}", p.skipped());
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn a_live_source_hands_over_its_newest_frame_and_every_error() {
        let (feed, rx) = std::sync::mpsc::channel();
        let mut p = Prefetch::spawn_newest(|| Ok::<_, String>(Box::new(Fed(rx)) as _)).unwrap();
        assert!(p.describe().contains("newest frame first"), "{}", p.describe());
        let wait = std::time::Duration::from_millis(50);
        assert!(matches!(p.poll_frame(wait), Polled::Waiting), "nothing fed yet");
        // Three frames while the pipeline is busy: only the last is handed over.
        for i in 0..3 {
            feed.send(Ok(i)).unwrap();
        }
        until_skipped(&p, 2);
        assert_eq!(p.next_frame().unwrap().unwrap().index, 2);
        assert!(matches!(p.poll_frame(wait), Polled::Waiting), "frame 2 was handed over once");
        // A corrupt frame between two frames: the error comes out, the older frame does not.
        feed.send(Ok(3)).unwrap();
        feed.send(Err("corrupt".into())).unwrap();
        feed.send(Ok(5)).unwrap();
        until_skipped(&p, 3);
        assert_eq!(p.next_frame().unwrap_err().to_string(), "cam: corrupt");
        assert!(matches!(p.poll_frame(wait), Polled::Next(Ok(Some(f))) if f.index == 5));
        // A frame and then the end: both come out, the end stays.
        feed.send(Ok(6)).unwrap();
        drop(feed);
        assert_eq!(p.next_frame().unwrap().unwrap().index, 6);
        assert!(p.next_frame().unwrap().is_none());
        assert!(p.next_frame().unwrap().is_none(), "stays at the end");
        assert_eq!(p.skipped(), 3);
    }

    #[test]
    fn a_live_source_s_dead_reader_is_fatal_and_a_dropped_one_stops() {
        let mut p = Prefetch::spawn_newest(|| Ok::<_, String>(Box::new(Panicking(0)) as _)).unwrap();
        let mut frames = 0;
        let e = loop {
            match p.next_frame() {
                Ok(Some(_)) => frames += 1,
                Ok(None) => panic!("a panic passed for the end"),
                Err(e) => break e,
            }
        };
        assert!((1..=2).contains(&frames), "{frames} frames");
        assert!(matches!(e, SourceError::Fatal { .. }) && e.to_string().contains("stopped unexpectedly"), "{e}");
        assert!(p.next_frame().unwrap().is_none());
        // An endless source, dropped after a frame: the drop must not hang, the thread stops.
        let mut p =
            Prefetch::spawn_newest(|| Ok::<_, String>(Box::new(Counting { next: 0, n: u64::MAX, bad: u64::MAX }) as _))
                .unwrap();
        assert!(p.next_frame().unwrap().is_some());
        drop(p);
    }

    #[test]
    fn prefetch_reports_open_errors_and_stops_when_dropped_early() {
        let e = Prefetch::spawn(1, || Err::<Box<dyn FrameSource>, _>("no camera at /dev/video9".to_string()));
        assert_eq!(e.err().unwrap(), "no camera at /dev/video9");
        // An endless source, dropped after two frames: the drop must not hang.
        let mut p =
            Prefetch::spawn(2, || Ok::<_, String>(Box::new(Counting { next: 0, n: u64::MAX, bad: u64::MAX }) as _))
                .unwrap();
        assert_eq!(p.next_frame().unwrap().unwrap().index, 0);
        assert_eq!(p.next_frame().unwrap().unwrap().index, 1);
        drop(p);
    }
}
