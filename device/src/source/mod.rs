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

/// Reads a source on a thread of its own, up to `depth` frames ahead, so that reading and
/// decoding the next frame overlaps detection and classification of this one on boards with
/// more than one core. Frames, per-frame errors and the end come out in the source's order.
/// The source is opened on that thread too, so it need not be `Send` (a camera handle).
///
/// Dropping it closes the channel: the thread stops at its next frame. It is not joined, so a
/// camera that is being reconnected (which may take forever) cannot hold up the exit.
pub struct Prefetch {
    rx: std::sync::mpsc::Receiver<Pending>,
    description: String,
    finished: bool,
}

impl Prefetch {
    /// Opens a source with `open` on a new thread; `open`'s error is returned here.
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
        Ok(Prefetch { rx, description, finished: false })
    }

    /// What the reading thread sent (`None`: its channel closed).
    fn received(&mut self, next: Option<Pending>) -> Pending {
        // The thread always sends the end (or a fatal error) before it stops; a closed channel
        // without one means it panicked, which must not pass for the end of the source.
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

impl FrameSource for Prefetch {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.finished {
            return Ok(None);
        }
        let next = self.rx.recv().ok();
        self.received(next)
    }

    fn describe(&self) -> String {
        format!("{} (read ahead on a second thread)", self.description)
    }

    fn poll_frame(&mut self, wait: std::time::Duration) -> Polled {
        if self.finished {
            return Polled::Next(Ok(None));
        }
        match self.rx.recv_timeout(wait) {
            Ok(next) => Polled::Next(self.received(Some(next))),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Polled::Waiting,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Polled::Next(self.received(None)),
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
